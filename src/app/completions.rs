//! `cutover completions SHELL`: a shell completion script on stdout.

use clap::CommandFactory;

use super::{Cli, exit};

pub fn run(shell: clap_complete::Shell) -> i32 {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "cutover", &mut buf);
    super::write_stdout(&String::from_utf8_lossy(&buf));
    exit::OK
}
