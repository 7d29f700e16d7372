mod auth;
mod cli;
mod hostile;
mod malformed;
mod plan;
mod props;
mod schema;
