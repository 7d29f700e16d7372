//! The `cutover` binary: parse arguments, hand over to the library, exit with its code.

use clap::Parser;

fn main() {
    let cli = cutover::cli::Cli::parse();
    let code = cutover::cli::run(cli);
    std::process::exit(code);
}
