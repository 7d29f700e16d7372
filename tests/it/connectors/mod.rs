mod auth;
mod bad_json;
mod counts;
mod dmf;
mod dual_write;
mod faults;
mod next_link;
