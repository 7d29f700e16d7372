//! `cutover completions SHELL`: a shell completion script on stdout.

use clap::CommandFactory;

use super::{Cli, exit};

pub fn run(shell: clap_complete::Shell) -> i32 {
    clap_complete::generate(shell, &mut Cli::command(), "cutover", &mut std::io::stdout());
    exit::OK
}
