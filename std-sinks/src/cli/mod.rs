//! Command dispatch and shared helpers of the `ossa-events` tool.

mod args;
mod consume;
mod demo;
mod emit;
mod listen;
mod progress;
mod signals;
mod validate;

use std::ffi::OsString;
use std::process::ExitCode;

use args::Command;

const USAGE: &str = "\
ossa-events — CloudEvents v1.0 for OSSA agents

Usage: ossa-events [-v...] <COMMAND> [OPTIONS] [ARGS]
       ossa-events help [COMMAND]
       ossa-events --version

Commands:
  demo       Emit a realistic OSSA agent run as JSON Lines on stdout
  validate   Check CloudEvents (JSON event, batch or JSON Lines) and print them canonically
  listen     Receive CloudEvents over HTTP (all content modes) and print them as JSON Lines
  emit       Deliver JSON Lines events from stdin (or the demo run) to stdout, HTTP or Kafka
  consume    Read CloudEvents from a Kafka topic and print them as JSON Lines
  completions  Print a shell completion script: ossa-events completions SHELL
             (bash, zsh, fish, elvish or powershell)
  help       Show this help, or a command's help: ossa-events help <COMMAND>

Options:
  -h, --help     Show this help (after a command: that command's help)
  -V, --version  Show the version and the cargo features built in
  -v, --verbose  Before the command: log diagnostics on stderr (retries, the
                 circuit breaker, undelivered events, refused requests);
                 -vv and -vvv for more. RUST_LOG (e.g. RUST_LOG=debug) sets
                 the filter instead

An option's value goes after it or after '=': '--topic T' or '--topic=T'.
Events go to stdout; errors, reports and summaries to stderr.

Exit status: 0 on success, 1 when input is invalid, an event is not delivered
or an I/O error occurs, 2 on bad arguments (a one-line error on stderr).

Examples:
  ossa-events demo | ossa-events validate
  ossa-events listen --http 127.0.0.1:8080 > events.jsonl
  ossa-events emit --demo --sink http --url http://127.0.0.1:8080/
";

/// The cargo features this binary was built with (`--version` says them:
/// a build without `kafka` has no `emit --sink kafka` and no `consume`).
const FEATURES: &[&str] = &[
    "cli",
    "http",
    #[cfg(feature = "kafka")]
    "kafka",
    #[cfg(feature = "http-types")]
    "http-types",
    #[cfg(feature = "axum")]
    "axum",
    #[cfg(feature = "cloudevents-sdk")]
    "cloudevents-sdk",
];

/// Every command, in the order of the top-level help.
const COMMANDS: [&Command; 5] = [
    &demo::CMD,
    &validate::CMD,
    &listen::CMD,
    &emit::CMD,
    &consume::CMD,
];

/// Exit code for bad command-line arguments.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit code for invalid input or I/O failure.
pub(crate) const EXIT_FAILURE: u8 = 1;

/// Prints a one-line usage error for command `cmd` (`None`: the tool) and
/// returns exit code 2. `msg` starts with the command's name.
pub(crate) fn usage_error(cmd: Option<&Command>, msg: &str) -> ExitCode {
    let msg = msg.replace(['\n', '\r'], " ");
    match cmd {
        Some(c) => eprintln!("ossa-events: {msg} (see 'ossa-events {} --help')", c.name),
        None => eprintln!("ossa-events: {msg} (see 'ossa-events --help')"),
    }
    ExitCode::from(EXIT_USAGE)
}

/// Parses `args` for `cmd`: the parsed arguments, or the exit code when help
/// was printed or the arguments are bad.
pub(crate) fn parse(cmd: &'static Command, args: Vec<OsString>) -> Result<args::Parsed, ExitCode> {
    match cmd.parse(args) {
        Ok(Some(p)) => Ok(p),
        Ok(None) => {
            print!("{}", cmd.help());
            Err(ExitCode::SUCCESS)
        }
        Err(e) => Err(usage_error(Some(cmd), &e)),
    }
}

pub(crate) fn run(args: Vec<OsString>) -> ExitCode {
    let mut it = args.into_iter().peekable();
    let mut verbosity = 0u8;
    while let Some(v) = it.peek().and_then(|a| a.to_str()).and_then(verbose_level) {
        verbosity = verbosity.saturating_add(v);
        it.next();
    }
    init_logging(verbosity);
    let Some(first) = it.next() else {
        return usage_error(
            None,
            "no command given: use demo, validate, listen, emit or consume",
        );
    };
    let rest: Vec<OsString> = it.collect();
    let Some(first) = first.to_str() else {
        return usage_error(None, "command is not valid UTF-8");
    };
    if let Some(cmd) = COMMANDS.iter().find(|c| c.name == first) {
        return run_command(cmd.name, rest);
    }
    let extra = rest.first().map(|a| a.to_string_lossy().into_owned());
    match first {
        "completions" => completions(&rest),
        "help" => match rest.first().map(|s| s.to_str()) {
            None => {
                print!("{USAGE}");
                ExitCode::SUCCESS
            }
            Some(Some(name)) => match COMMANDS.iter().find(|c| c.name == name) {
                Some(c) if rest.len() == 1 => {
                    print!("{}", c.help());
                    ExitCode::SUCCESS
                }
                Some(_) => usage_error(
                    None,
                    &format!("help: unexpected argument '{}'", rest[1].to_string_lossy()),
                ),
                None => usage_error(None, &format!("help: no such command '{name}'")),
            },
            Some(None) => usage_error(None, "help: command is not valid UTF-8"),
        },
        "-h" | "--help" => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        "-V" | "--version" => match extra {
            None => {
                println!("ossa-events {}", env!("CARGO_PKG_VERSION"));
                println!("features: {}", FEATURES.join(", "));
                ExitCode::SUCCESS
            }
            Some(a) => usage_error(None, &format!("unexpected argument '{a}'")),
        },
        other if other.starts_with('-') => usage_error(None, &format!("unknown option '{other}'")),
        other => usage_error(
            None,
            &format!("no such command '{other}': use demo, validate, listen, emit or consume"),
        ),
    }
}

/// How much `arg` raises the log level: `-v` 1, `-vv` 2, `--verbose` 1;
/// `None` for anything else.
fn verbose_level(arg: &str) -> Option<u8> {
    if arg == "--verbose" {
        return Some(1);
    }
    let vs = arg.strip_prefix('-')?;
    (!vs.is_empty() && vs.bytes().all(|b| b == b'v'))
        .then(|| u8::try_from(vs.len()).unwrap_or(u8::MAX))
}

/// Diagnostics on stderr: off unless `-v` was given or `RUST_LOG` is set.
/// `-v` shows this crate's info and everyone's warnings, `-vv` this crate's
/// debug, `-vvv` everything; `RUST_LOG` replaces the filter. The `log`
/// records of ureq and librdkafka come along.
fn init_logging(verbosity: u8) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let from_env = std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty());
    if verbosity == 0 && !from_env {
        return;
    }
    let fallback = match verbosity {
        0 | 1 => "warn,ossa_events=info",
        2 => "info,ossa_events=debug",
        _ => "trace",
    };
    let filter = if from_env {
        EnvFilter::try_from_default_env().unwrap_or_else(|e| {
            eprintln!("ossa-events: RUST_LOG ignored: {e}");
            EnvFilter::new(fallback)
        })
    } else {
        EnvFilter::new(fallback)
    };
    let color = std::io::stderr().is_terminal()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .try_init();
}

/// `ossa-events completions SHELL`: the completion script, generated by
/// clap_complete from the same option tables the commands parse with.
fn completions(rest: &[OsString]) -> ExitCode {
    use clap_complete::Shell;
    let shells = "bash, zsh, fish, elvish or powershell";
    let shell = match rest {
        [s] => match s.to_str().and_then(|s| s.parse::<Shell>().ok()) {
            Some(sh) => sh,
            None => {
                return usage_error(
                    None,
                    &format!(
                        "completions: unknown shell '{}': use {shells}",
                        s.to_string_lossy()
                    ),
                );
            }
        },
        [] => return usage_error(None, &format!("completions: name a shell: {shells}")),
        [_, extra, ..] => {
            return usage_error(
                None,
                &format!(
                    "completions: unexpected argument '{}'",
                    extra.to_string_lossy()
                ),
            );
        }
    };
    // Our own `help` subcommand: clap adds one too when its `help` feature is
    // on (feature unification can turn it on), and two would clash.
    let mut top = clap::Command::new("ossa-events")
        .about("CloudEvents v1.0 for OSSA agents")
        .disable_help_subcommand(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(
            clap::Arg::new("verbose")
                .short('v')
                .long("verbose")
                .action(clap::ArgAction::Count)
                .help("Log diagnostics on stderr"),
        )
        .subcommands(COMMANDS.iter().map(|c| c.clap()))
        .subcommand(clap::Command::new("help").about("Show the help of a command"));
    clap_complete::generate(shell, &mut top, "ossa-events", &mut std::io::stdout());
    ExitCode::SUCCESS
}

fn run_command(name: &str, rest: Vec<OsString>) -> ExitCode {
    match name {
        "demo" => demo::run(rest),
        "validate" => validate::run(rest),
        "listen" => listen::run(rest),
        "emit" => emit::run(rest),
        _ => consume::run(rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command's options are listed by its help, and the top-level help
    /// lists every command.
    #[test]
    fn help_lists_every_option_and_command() {
        for c in COMMANDS {
            let h = c.help();
            for o in c.opts {
                assert!(h.contains(o.long), "{}: {}", c.name, o.long);
                if let Some(v) = o.value {
                    assert!(
                        h.contains(&format!("{} {v}", o.long)),
                        "{}: {}",
                        c.name,
                        o.long
                    );
                }
            }
            assert!(h.contains("Exit status:"), "{}", c.name);
            assert!(h.contains("Examples:"), "{}", c.name);
            assert!(USAGE.contains(&format!("\n  {:<11}", c.name)), "{}", c.name);
            for u in c.usage {
                assert!(u.starts_with(c.name), "{}: {u}", c.name);
            }
        }
    }

    /// No two options of a command share a name, and every conflict names
    /// options of the command.
    #[test]
    fn option_tables_are_consistent() {
        for c in COMMANDS {
            let mut names: Vec<&str> = c.opts.iter().map(|o| o.long).collect();
            names.extend(c.opts.iter().filter_map(|o| o.short));
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "{}", c.name);
            assert!(
                !names.contains(&"--help") && !names.contains(&"-h"),
                "{}",
                c.name
            );
            for (a, b) in c.conflicts {
                assert!(
                    names.contains(a) && names.contains(b),
                    "{}: {a} {b}",
                    c.name
                );
            }
        }
    }
}
