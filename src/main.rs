//! The `cutover` binary: everything a process does is the edge's ([`cutover::app::main`]).

fn main() -> std::process::ExitCode {
    cutover::app::main()
}
