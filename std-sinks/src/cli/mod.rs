//! Command dispatch and shared helpers of the `ossa-events` tool.

mod consume;
mod demo;
mod emit;
mod listen;
mod validate;

use std::ffi::OsString;
use std::process::ExitCode;

const USAGE: &str = "\
ossa-events — CloudEvents v1.0 for OSSA agents

Usage: ossa-events <COMMAND> [OPTIONS]

Commands:
  demo       Emit a realistic OSSA agent run as JSON Lines on stdout
  validate   Check CloudEvents (JSON event, batch or JSON Lines) and print them canonically
  listen     Receive CloudEvents over HTTP (all content modes) and print them as JSON Lines
  emit       Deliver JSON Lines events from stdin (or the demo run) to stdout, HTTP or Kafka
  consume    Read CloudEvents from a Kafka topic and print them as JSON Lines
  help       Show this help, or a command's help: ossa-events help <COMMAND>

Options:
  -h, --help     Show help
  -V, --version  Show the version

Exit status: 0 on success, 1 when input is invalid or an I/O error occurs, 2 on bad arguments.
";

/// Exit code for bad command-line arguments.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit code for invalid input or I/O failure.
pub(crate) const EXIT_FAILURE: u8 = 1;

/// Prints a one-line usage error and returns exit code 2.
pub(crate) fn usage_error(msg: &str) -> ExitCode {
    eprintln!("ossa-events: {msg} (see --help)");
    ExitCode::from(EXIT_USAGE)
}

pub(crate) fn run(args: Vec<OsString>) -> ExitCode {
    let mut it = args.into_iter();
    let Some(cmd) = it.next() else {
        eprint!("{USAGE}");
        return ExitCode::from(EXIT_USAGE);
    };
    let rest: Vec<OsString> = it.collect();
    match cmd.to_str() {
        Some("demo") => demo::run(rest),
        Some("validate") => validate::run(rest),
        Some("listen") => listen::run(rest),
        Some("emit") => emit::run(rest),
        Some("consume") => consume::run(rest),
        Some("help") => match rest.first().and_then(|s| s.to_str()) {
            None => {
                print!("{USAGE}");
                ExitCode::SUCCESS
            }
            Some("demo") => demo::run(vec!["--help".into()]),
            Some("validate") => validate::run(vec!["--help".into()]),
            Some("listen") => listen::run(vec!["--help".into()]),
            Some("emit") => emit::run(vec!["--help".into()]),
            Some("consume") => consume::run(vec!["--help".into()]),
            Some(other) => usage_error(&format!("no such command: {other}")),
        },
        Some("-h" | "--help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            println!("ossa-events {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => usage_error(&format!("no such command: {other}")),
        None => usage_error("command is not valid UTF-8"),
    }
}
