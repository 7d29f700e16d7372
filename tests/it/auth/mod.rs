//! Sign-in: every credential kind end to end, device-code sign-in, approvals signed by who pressed
//! the key, and the console showing who is signed in.

mod approvals;
mod console;
mod device_code;
mod kinds;
