//! The `ossa-events` command line tool.

mod cli;

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    cli::run(args)
}
