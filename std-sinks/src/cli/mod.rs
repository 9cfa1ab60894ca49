//! Command dispatch and shared helpers of the `ossa-events` tool.

mod args;
mod consume;
mod demo;
mod emit;
mod lanes;
mod listen;
mod progress;
mod schemas;
mod signals;
mod validate;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use progress::note;

const USAGE: &str = "\
ossa-events — CloudEvents v1.0 for OSSA agents

Usage: ossa-events [-v...] <COMMAND> [OPTIONS] [ARGS]
       ossa-events help [COMMAND]
       ossa-events --version

Commands:
  demo         Emit a realistic OSSA agent run as JSON Lines on stdout
  validate     Check CloudEvents (JSON event, batch or JSON Lines) and print them canonically
  listen       Receive CloudEvents over HTTP (all content modes) and print them as JSON Lines
  emit         Deliver JSON Lines (files or stdin, or the demo run) to stdout, HTTP, Kafka or OTLP
  consume      Read CloudEvents from a Kafka topic and print them as JSON Lines
  completions  Print a shell completion script: ossa-events completions SHELL
               (bash, zsh, fish, elvish or powershell)
  help         Show this help, or a command's help: ossa-events help <COMMAND>

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

/// The `ossa-events` command line: the `-v` flags, then a command. The
/// parser (clap, derived) and the completion scripts come from it; the
/// tool's own `--help` and `--version` are answered before it (see [`run`]).
///
/// clap's help flag and `help` subcommand are off: the help is ours (see
/// [`args::help`]), and clap would add its own when its `help` feature is
/// on (which feature unification in a workspace can do).
#[derive(Debug, clap::Parser)]
#[command(
    name = "ossa-events",
    about = "CloudEvents v1.0 for OSSA agents",
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true
)]
pub(crate) struct Cli {
    /// Log diagnostics on stderr (-vv, -vvv for more)
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// The command.
    #[command(subcommand)]
    command: Cmd,
}

/// The commands of [`Cli`]. Those that take a struct get their about,
/// details and options from its doc comments (a doc comment here would
/// replace its about).
// One value a process, parsed once: boxing `emit`'s arguments would save
// nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Cmd {
    #[command(name = "demo")]
    Demo(demo::Args),
    #[command(name = "validate")]
    Validate(validate::Args),
    #[command(name = "listen")]
    Listen(listen::Args),
    #[command(name = "emit")]
    Emit(emit::Args),
    #[command(name = "consume")]
    Consume(consume::Args),
    /// Print a shell completion script on stdout
    ///
    /// The script completes every command and option of this tool; it is made
    /// from the same definitions as the help.
    #[command(
        verbatim_doc_comment,
        override_usage = "completions SHELL",
        after_help = "\
Exit status: 0 on success; 2 when SHELL is missing or not one of bash, zsh,
fish, elvish or powershell.

Examples:
  ossa-events completions bash > ~/.local/share/bash-completion/completions/ossa-events
  ossa-events completions zsh > ~/.zfunc/_ossa-events"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell
        #[arg(value_name = "SHELL")]
        shell: Option<clap_complete::Shell>,
        #[command(flatten)]
        help: args::HelpFlag,
    },
    /// Show the help of the tool or of a command
    Help {
        /// The command
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
}

impl Cmd {
    /// Whether the command's `-h`/`--help` was given (in a form that
    /// [`args::asks_help`] does not see, such as `-fh`).
    fn asks_help(&self) -> bool {
        match self {
            Cmd::Demo(a) => a.help.help,
            Cmd::Validate(a) => a.help.help,
            Cmd::Listen(a) => a.help.help,
            Cmd::Emit(a) => a.help.help,
            Cmd::Consume(a) => a.help.help,
            Cmd::Completions { help, .. } => help.help,
            Cmd::Help { .. } => false,
        }
    }
}

/// The names of the commands that do the work, in the order of the
/// top-level help.
const COMMANDS: [&str; 5] = ["demo", "validate", "listen", "emit", "consume"];

/// Whether command `name` has a help of its own (`--help`, `help NAME`):
/// the [`COMMANDS`] and `completions`.
fn has_help(name: &str) -> bool {
    COMMANDS.contains(&name) || name == "completions"
}

/// The shells `completions` knows.
const SHELLS: &str = "bash, zsh, fish, elvish or powershell";

/// The cargo features this binary was built with (`--version` says them:
/// a build without `kafka` has no `emit --sink kafka` and no `consume`).
const FEATURES: &[&str] = &[
    "cli",
    "http",
    "otlp",
    "receiver",
    "receiver-tls",
    "schemas",
    #[cfg(feature = "kafka")]
    "kafka",
    #[cfg(feature = "http-types")]
    "http-types",
    #[cfg(feature = "axum")]
    "axum",
    #[cfg(feature = "tracing")]
    "tracing",
    #[cfg(feature = "opentelemetry")]
    "opentelemetry",
    #[cfg(feature = "cloudevents-sdk")]
    "cloudevents-sdk",
];

/// Exit code for bad command-line arguments.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit code for invalid input or I/O failure.
pub(crate) const EXIT_FAILURE: u8 = 1;

/// Writes `text` on stdout. A reader that left first (`--help | head -1`)
/// is no failure, and not a panic as `print!` would make it.
fn out(text: &str) {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
}

/// Prints a one-line usage error for command `cmd` (`None`: the tool) and
/// returns exit code 2. `msg` starts with the command's name.
pub(crate) fn usage_error(cmd: Option<&str>, msg: &str) -> ExitCode {
    let msg = msg.replace(['\n', '\r'], " ");
    match cmd {
        Some(c) => note!("ossa-events: {msg} (see 'ossa-events {c} --help')"),
        None => note!("ossa-events: {msg} (see 'ossa-events --help')"),
    }
    ExitCode::from(EXIT_USAGE)
}

/// The derived command `name` of [`Cli`] (one of [`COMMANDS`]).
fn command_of(name: &str) -> Option<clap::Command> {
    Cli::command().find_subcommand(name).cloned()
}

/// The `--help` text of command `name`.
#[cfg(test)]
pub(crate) fn help_of(name: &str) -> String {
    command_of(name).map(|c| args::help(&c)).unwrap_or_default()
}

/// Runs the tool on `args` (without the program name).
/// What [`grow_stdout_pipe`] asks for: `/proc/sys/fs/pipe-max-size`'s
/// default, so any user gets it.
const STDOUT_PIPE_BYTES: usize = 1 << 20;

/// When stdout is a pipe, makes it hold [`STDOUT_PIPE_BYTES`] instead of
/// 64 KiB, so that the program reading the events (`| jq`, `| wc -l`, a
/// collector) is woken once a megabyte, not once every 64 KiB: `validate`
/// and `emit` write faster than a reader drains a small pipe. Anything
/// else (a file, a terminal, a kernel that says no) stays as it is.
fn grow_stdout_pipe() {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsFd as _;
        let out = std::io::stdout();
        let _ = rustix::pipe::fcntl_setpipe_size(out.as_fd(), STDOUT_PIPE_BYTES);
    }
}

pub(crate) fn run(args: Vec<OsString>) -> ExitCode {
    // The command is the first argument after the -v flags.
    let at = args
        .iter()
        .position(|a| a.to_str().and_then(verbose_level).is_none());
    let Some(at) = at else {
        return usage_error(
            None,
            "no command given: use demo, validate, listen, emit or consume",
        );
    };
    let rest = &args[at + 1..];
    let Some(first) = args[at].to_str() else {
        return usage_error(None, "command is not valid UTF-8");
    };
    match first {
        "-h" | "--help" => {
            out(USAGE);
            return ExitCode::SUCCESS;
        }
        "-V" | "--version" => {
            return match rest.first() {
                None => {
                    out(&format!(
                        "ossa-events {}\nfeatures: {}\n",
                        env!("CARGO_PKG_VERSION"),
                        FEATURES.join(", ")
                    ));
                    ExitCode::SUCCESS
                }
                Some(a) => usage_error(
                    None,
                    &format!("unexpected argument '{}'", a.to_string_lossy()),
                ),
            };
        }
        other if other.starts_with('-') => {
            return usage_error(None, &format!("unknown option '{other}'"));
        }
        _ => {}
    }
    grow_stdout_pipe();
    let top = Cli::command();
    let Some(sub) = top.find_subcommand(first) else {
        // clap's suggestion for a misspelled command.
        let near = top
            .clone()
            .try_get_matches_from(["ossa-events", first])
            .err()
            .and_then(
                |e| match e.get(clap::error::ContextKind::SuggestedSubcommand) {
                    Some(clap::error::ContextValue::Strings(v)) => v.first().cloned(),
                    _ => None,
                },
            );
        let msg = match near {
            Some(n) => format!("no such command '{first}'; did you mean '{n}'?"),
            None => {
                format!("no such command '{first}': use demo, validate, listen, emit or consume")
            }
        };
        return usage_error(None, &msg);
    };
    let is_command = COMMANDS.contains(&first);
    if has_help(first) && args::asks_help(rest) {
        out(&args::help(sub));
        return ExitCode::SUCCESS;
    }
    let m = top.clone().try_get_matches_from(
        std::iter::once(OsString::from("ossa-events")).chain(args.iter().cloned()),
    );
    let parsed = m.and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)));
    let (cli, m) = match parsed {
        Ok(p) => p,
        Err(e) => {
            let msg = args::one_line(sub, &e, rest);
            return if is_command {
                usage_error(Some(first), &format!("{first}: {msg}"))
            } else if first == "completions" {
                // Every usage error of `completions` points to its own help.
                // The shell is the value clap refused, not the first
                // argument (`completions -- tcsh` named `--`).
                let shell = match e.get(clap::error::ContextKind::InvalidValue) {
                    Some(clap::error::ContextValue::String(s))
                        if e.kind() == clap::error::ErrorKind::InvalidValue =>
                    {
                        Some(s.clone())
                    }
                    _ => None,
                };
                let msg = match shell {
                    Some(shell) => format!("completions: unknown shell '{shell}': use {SHELLS}"),
                    None => format!("{first}: {msg}"),
                };
                usage_error(Some("completions"), &msg)
            } else {
                usage_error(None, &format!("{first}: {msg}"))
            };
        }
    };
    if cli.command.asks_help() {
        out(&args::help(sub));
        return ExitCode::SUCCESS;
    }
    init_logging(cli.verbose);
    let sub_m = m.subcommand().map_or(&m, |(_, m)| m);
    match cli.command {
        Cmd::Demo(a) => demo::run(a),
        Cmd::Validate(a) => validate::run(a),
        Cmd::Listen(a) => listen::run(a),
        Cmd::Emit(a) => emit::run(a, sub_m),
        Cmd::Consume(a) => consume::run(a, sub_m),
        Cmd::Completions { shell, .. } => completions(shell),
        Cmd::Help { command: None } => {
            out(USAGE);
            ExitCode::SUCCESS
        }
        Cmd::Help {
            command: Some(name),
        } => match command_of(&name) {
            Some(c) if has_help(&name) => {
                out(&args::help(&c));
                ExitCode::SUCCESS
            }
            _ => usage_error(None, &format!("help: no such command '{name}'")),
        },
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
            note!("ossa-events: RUST_LOG ignored: {e}");
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
/// clap_complete from the derived [`Cli`].
fn completions(shell: Option<clap_complete::Shell>) -> ExitCode {
    let Some(shell) = shell else {
        return usage_error(
            Some("completions"),
            &format!("completions: name a shell: {SHELLS}"),
        );
    };
    // Into memory, then out: clap_complete's writers panic when a write
    // fails (a reader that has left, `| head -1`), which exited 101.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ossa-events", &mut script);
    out(&String::from_utf8_lossy(&script));
    ExitCode::SUCCESS
}

/// Reads `R` without a UTF-8 byte order mark at its very start (editors on
/// Windows write one; RFC 8259 §8.1 lets a JSON reader ignore it): the
/// first line of such a file is then read as the event it is.
pub(crate) struct SkipBom<R> {
    inner: R,
    /// The first bytes, kept until they are known not to be a BOM.
    head: [u8; 3],
    /// Bytes of `head` read so far / handed on so far; `None` once it is
    /// settled (no BOM, or the BOM skipped, and `head` all handed on).
    state: Option<(usize, usize)>,
}

impl<R> SkipBom<R> {
    const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

    pub(crate) fn new(inner: R) -> Self {
        SkipBom {
            inner,
            head: [0; 3],
            state: Some((0, 0)),
        }
    }
}

impl<R: std::io::Read> std::io::Read for SkipBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let Some((got, given)) = self.state else {
                return self.inner.read(buf);
            };
            if got < 3 && self.head.get(..got) == Self::BOM.get(..got) {
                // Could still be a BOM: read on until 3 bytes or the end.
                let n = self
                    .inner
                    .read(self.head.get_mut(got..).unwrap_or_default())?;
                if n > 0 {
                    self.state = Some((got + n, 0));
                    continue;
                }
            }
            if self.head.get(..got) == Some(&Self::BOM[..]) {
                self.state = None; // the BOM, skipped
                continue;
            }
            // Not a BOM (or the end came first): hand `head` on as it is.
            let rest = self.head.get(given..got).unwrap_or_default();
            if rest.is_empty() {
                self.state = None;
                continue;
            }
            let n = rest.len().min(buf.len());
            buf.get_mut(..n)
                .unwrap_or_default()
                .copy_from_slice(rest.get(..n).unwrap_or_default());
            self.state = Some((got, given + n));
            return Ok(n);
        }
    }
}

#[cfg(test)]
mod tests {
    /// A leading BOM is skipped whatever the reads cut; anything else,
    /// also a BOM's prefix or a BOM later on, is handed on as it is.
    #[test]
    fn skip_bom_drops_a_leading_bom_only() {
        use super::emit::tests::Trickle;
        use std::io::Read as _;
        let cases: [(&[u8], &[u8]); 7] = [
            (b"\xEF\xBB\xBF{\"a\":1}\n", b"{\"a\":1}\n"),
            (b"\xEF\xBB\xBF", b""),
            (b"\xEF\xBB", b"\xEF\xBB"),
            (b"\xEF\xBBx", b"\xEF\xBBx"),
            (b"{}\xEF\xBB\xBF", b"{}\xEF\xBB\xBF"),
            (b"ab", b"ab"),
            (b"", b""),
        ];
        for (input, want) in cases {
            for step in [1, 2, 3, 4, 64] {
                let mut got = Vec::new();
                SkipBom::new(Trickle(input, step))
                    .read_to_end(&mut got)
                    .unwrap();
                assert_eq!(got, want, "{input:?} step {step}");
            }
        }
    }

    use super::*;

    /// clap's own checks of the derived command (duplicate names, bad
    /// conflicts, ...), which it otherwise runs only in debug builds on use.
    #[test]
    fn the_derived_command_is_valid() {
        Cli::command().debug_assert();
    }

    /// Every command's options are listed by its help with their value,
    /// the help states exit status and examples, and the top-level help
    /// lists every command.
    #[test]
    fn help_lists_every_option_and_command() {
        let top = Cli::command();
        let names: Vec<&str> = top.get_subcommands().map(|c| c.get_name()).collect();
        assert_eq!(names[..5], COMMANDS);
        for name in COMMANDS {
            let c = command_of(name).unwrap();
            let h = help_of(name);
            for a in c.get_arguments().filter(|a| !a.is_positional()) {
                let long = format!("--{}", a.get_long().unwrap());
                match args::value_name(a) {
                    Some(v) => assert!(h.contains(&format!("{long} {v}")), "{name}: {long}"),
                    None => assert!(h.contains(&long), "{name}: {long}"),
                }
                assert!(a.get_help().is_some(), "{name}: {long} has no help");
                if let Some(var) = a.get_env() {
                    let var = var.to_string_lossy();
                    assert!(h.contains(&format!("[env: {var}]")), "{name}: {var}");
                }
                // Hidden aliases stay hidden.
                for al in a.get_all_aliases().unwrap_or_default() {
                    assert!(!h.contains(&format!("--{al}")), "{name}: --{al}");
                }
            }
            assert!(h.contains("Exit status:"), "{name}");
            assert!(h.contains("Examples:"), "{name}");
            assert!(USAGE.contains(&format!("\n  {name:<11}")), "{name}");
            let usage = c.get_overridden_usage().unwrap().to_string();
            for u in usage.lines() {
                assert!(u.starts_with(name), "{name}: {u}");
            }
        }
    }

    /// `--version` names every cargo feature of the package this build
    /// has (`cli` brings `http`, `otlp`, `receiver`, `receiver-tls` and
    /// `schemas` along), and no other.
    #[test]
    fn version_lists_every_feature_built_in() {
        let built = [
            ("cli", cfg!(feature = "cli")),
            ("http", cfg!(feature = "http")),
            ("otlp", cfg!(feature = "otlp")),
            ("receiver", cfg!(feature = "receiver")),
            ("receiver-tls", cfg!(feature = "receiver-tls")),
            ("schemas", cfg!(feature = "schemas")),
            ("kafka", cfg!(feature = "kafka")),
            ("http-types", cfg!(feature = "http-types")),
            ("axum", cfg!(feature = "axum")),
            ("tracing", cfg!(feature = "tracing")),
            ("opentelemetry", cfg!(feature = "opentelemetry")),
            ("cloudevents-sdk", cfg!(feature = "cloudevents-sdk")),
        ];
        // The table above covers every feature the manifest declares.
        let manifest = include_str!("../../Cargo.toml");
        let declared: std::collections::BTreeSet<&str> = manifest
            .split("\n[features]\n")
            .nth(1)
            .and_then(|t| t.split("\n[").next())
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(" = ").map(|(name, _)| name.trim()))
            .filter(|name| *name != "default")
            .collect();
        let known: std::collections::BTreeSet<&str> = built.iter().map(|(f, _)| *f).collect();
        assert_eq!(known, declared);
        let on: std::collections::BTreeSet<&str> = built
            .iter()
            .filter(|(_, on)| *on)
            .map(|(f, _)| *f)
            .collect();
        let listed: std::collections::BTreeSet<&str> = FEATURES.iter().copied().collect();
        assert_eq!(listed, on);
        assert_eq!(listed.len(), FEATURES.len(), "{FEATURES:?}");
    }

    /// `completions`, listed among the commands, has a help like theirs.
    #[test]
    fn completions_has_a_help() {
        let h = help_of("completions");
        for want in [
            "Print a shell completion script on stdout\n\nUsage: ossa-events completions SHELL\n",
            "  -h, --help  Show this help\n",
            "Exit status:",
            "Examples:\n  ossa-events completions ",
        ] {
            assert!(h.contains(want), "lacks {want:?}:\n{h}");
        }
    }

    /// No two options of a command share a name (long, short or alias), and
    /// `-h, --help` is every command's.
    #[test]
    fn no_duplicate_option_names() {
        for name in COMMANDS {
            let c = command_of(name).unwrap();
            let mut names: Vec<String> = Vec::new();
            for a in c.get_arguments().filter(|a| !a.is_positional()) {
                names.extend(a.get_long().map(|l| format!("--{l}")));
                names.extend(a.get_short().map(|s| format!("-{s}")));
                names.extend(
                    a.get_all_aliases()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|al| format!("--{al}")),
                );
            }
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "{name}: {names:?}");
            assert!(
                names.contains(&"--help".to_string()) && names.contains(&"-h".to_string()),
                "{name}"
            );
        }
    }
}
