mod auth;
mod cli;
mod hostile;
mod malformed;
mod maps_format;
mod plan;
mod props;
mod schema;
