//! Every command's `--help` and its argument parser agree, and every kind of
//! bad argument gives one line on stderr and exit 2.
//!
//! The options are read from each command's help (its `Options:` section) and
//! each one is put to the real binary (`CARGO_BIN_EXE_ossa-events`): an option
//! shown with a value must say it needs one when given without, a switch must
//! refuse a value, and neither may be an "unknown option". The other way round,
//! every `--option` written anywhere in a command's source file, and every one
//! the help or the README mentions, must be in that command's `Options:`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use std::time::Duration;

const COMMANDS: [&str; 5] = ["demo", "validate", "listen", "emit", "consume"];

mod common;

/// What a run of the binary gave: its exit code and output.
struct Ran {
    status: Code,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// An exit code, read as `ExitStatus::code` is.
struct Code(Option<i32>);

impl Code {
    fn code(&self) -> Option<i32> {
        self.0
    }
}

/// Runs the binary with `args` and no stdin; kills it after 20 s (a bad
/// argument that is taken as good would otherwise hang `listen`).
fn run(args: &[&str]) -> Ran {
    let (code, stdout, stderr) = common::tansu::run_cli(
        env!("CARGO_BIN_EXE_ossa-events"),
        args,
        Duration::from_secs(20),
    );
    Ran {
        status: Code(code),
        stdout: stdout.into_bytes(),
        stderr: stderr.into_bytes(),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// One option as the help shows it.
#[derive(Debug, Clone)]
struct HelpOpt {
    short: Option<String>,
    long: String,
    value: Option<String>,
}

fn help_of(cmd: &str) -> String {
    let o = run(&[cmd, "--help"]);
    assert_eq!(o.status.code(), Some(0), "{cmd} --help");
    assert!(o.stderr.is_empty(), "{cmd} --help wrote to stderr");
    text(&o.stdout)
}

/// The options of the help's `Options:` section.
fn options_of(help: &str) -> Vec<HelpOpt> {
    let section = help
        .split_once("\nOptions:\n")
        .unwrap_or_else(|| panic!("no Options section:\n{help}"))
        .1;
    let mut opts = Vec::new();
    for line in section.lines().take_while(|l| !l.trim().is_empty()) {
        let t = line.trim_start();
        if !t.starts_with('-') {
            continue; // a continuation line
        }
        let head: Vec<&str> = t
            .split("  ")
            .next()
            .unwrap()
            .split([' ', ','])
            .filter(|w| !w.is_empty())
            .collect();
        let (short, rest) = match head.as_slice() {
            [s, rest @ ..] if !s.starts_with("--") => (Some(s.to_string()), rest),
            rest => (None, rest),
        };
        let (long, value) = match rest {
            [l] => (l.to_string(), None),
            [l, v] => (l.to_string(), Some(v.to_string())),
            other => panic!("cannot read option line {line:?}: {other:?}"),
        };
        assert!(long.starts_with("--"), "{line:?}");
        if let Some(v) = &value {
            assert!(
                v.chars().all(|c| c.is_ascii_uppercase() || c == '-'),
                "value placeholder {v:?} in {line:?}"
            );
        }
        opts.push(HelpOpt { short, long, value });
    }
    assert!(!opts.is_empty(), "no options in:\n{help}");
    opts
}

/// Every `--word` in `s`.
fn long_flags_in(s: &str) -> BTreeSet<String> {
    let b = s.as_bytes();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i + 2 < b.len() {
        let starts = b[i] == b'-'
            && b[i + 1] == b'-'
            && b[i + 2].is_ascii_lowercase()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'-'));
        if starts {
            let end = (i + 2..b.len())
                .find(|&j| !(b[j].is_ascii_lowercase() || b[j].is_ascii_digit() || b[j] == b'-'))
                .unwrap_or(b.len());
            out.insert(s[i..end].trim_end_matches('-').to_string());
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

fn assert_usage_error(args: &[&str], o: &Ran, want: &str) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err:?}");
    assert!(err.ends_with('\n'), "{args:?}: {err:?}");
    assert!(err.starts_with("ossa-events: "), "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: {err:?} lacks {want:?}");
    assert!(o.stdout.is_empty(), "{args:?}: wrote to stdout");
}

/// Each option of each help is accepted by the parser with the value form
/// the help gives it.
#[test]
fn every_option_in_the_help_is_accepted_as_shown() {
    for cmd in COMMANDS {
        let help = help_of(cmd);
        assert_eq!(
            text(&run(&["help", cmd]).stdout),
            help,
            "`help {cmd}` differs from `{cmd} --help`"
        );
        let opts = options_of(&help);
        assert!(
            opts.iter()
                .any(|o| o.long == "--help" && o.short.as_deref() == Some("-h")),
            "{cmd}: -h, --help missing"
        );
        for o in &opts {
            if o.long == "--help" {
                assert_eq!(text(&run(&[cmd, "-h"]).stdout), help);
                continue;
            }
            let names = std::iter::once(o.long.as_str()).chain(o.short.as_deref());
            for name in names {
                match &o.value {
                    // Shown with a value: without one it must say so.
                    Some(v) => {
                        let args = [cmd, name];
                        let out = run(&args);
                        assert_usage_error(
                            &args,
                            &out,
                            &format!("{cmd}: {} needs a value {v}", o.long),
                        );
                    }
                    // Shown as a switch: it must refuse a value.
                    None => {
                        let arg = format!("{name}=yes");
                        let args = [cmd, arg.as_str()];
                        let out = run(&args);
                        assert_usage_error(
                            &args,
                            &out,
                            &format!("{cmd}: {} takes no value", o.long),
                        );
                    }
                }
            }
        }
    }
}

/// Every option a command's source names, and every option its help or the
/// README mentions, is listed in its help's `Options:`.
#[test]
fn every_option_the_parser_knows_is_in_the_help() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/cli");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    for cmd in COMMANDS {
        let help = help_of(cmd);
        let listed: BTreeSet<String> = options_of(&help).into_iter().map(|o| o.long).collect();
        let source = std::fs::read_to_string(format!("{dir}/{cmd}.rs")).unwrap();
        let in_source = long_flags_in(&source);
        assert!(
            !in_source.is_empty(),
            "{cmd}: no options found in its source"
        );
        // Old names kept as unlisted aliases (accepted, see below).
        let missing: Vec<_> = in_source
            .difference(&listed)
            .filter(|f| !HIDDEN_ALIASES.contains(&(cmd, f.as_str())))
            .collect();
        assert!(
            missing.is_empty(),
            "{cmd}.rs knows {missing:?}, --help does not list them"
        );

        let mentioned = long_flags_in(&help);
        let unknown: Vec<_> = mentioned.difference(&listed).collect();
        assert!(
            unknown.is_empty(),
            "{cmd} --help mentions unlisted {unknown:?}"
        );

        let synopsis: String = readme
            .lines()
            .filter(|l| l.trim_start().starts_with(&format!("ossa-events {cmd} ")))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            !synopsis.is_empty(),
            "README has no `ossa-events {cmd}` line"
        );
        let unknown: Vec<_> = long_flags_in(&synopsis)
            .into_iter()
            .filter(|f| !listed.contains(f))
            .collect();
        assert!(
            unknown.is_empty(),
            "README's {cmd} line has unknown {unknown:?}"
        );
    }
}

/// The top-level help names every command, and `help` without one shows it.
#[test]
fn top_level_help_lists_every_command() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let usage = text(&o.stdout);
    assert_eq!(text(&run(&["help"]).stdout), usage);
    assert_eq!(text(&run(&["-h"]).stdout), usage);
    for cmd in COMMANDS {
        assert!(usage.contains(&format!("\n  {cmd} ")), "USAGE lacks {cmd}");
    }
    for flag in ["-h, --help", "-V, --version", "Exit status:", "Examples:"] {
        assert!(usage.contains(flag), "USAGE lacks {flag}");
    }
    // The command list names every sink `emit` delivers to.
    let emit_line = usage
        .lines()
        .find(|l| l.starts_with("  emit "))
        .unwrap()
        .to_ascii_lowercase();
    for sink in ["stdout", "http", "kafka", "otlp"] {
        assert!(
            emit_line.contains(sink),
            "USAGE's emit line lacks {sink}: {emit_line}"
        );
    }
    let v = run(&["--version"]);
    assert_eq!(v.status.code(), Some(0));
    assert_eq!(
        text(&v.stdout),
        format!(
            "ossa-events {}\nfeatures: {}\n",
            env!("CARGO_PKG_VERSION"),
            built_features().join(", ")
        )
    );
    assert_eq!(text(&run(&["-V"]).stdout), text(&v.stdout));
    // Every help states its exit status and gives examples.
    for cmd in COMMANDS {
        let h = help_of(cmd);
        for s in [
            "Usage: ossa-events ",
            "Exit status:",
            "Examples:\n  ossa-events ",
        ] {
            assert!(h.contains(s), "{cmd} --help lacks {s:?}");
        }
    }
}

/// Every kind of bad argument, for every command: one line on stderr, exit 2.
#[test]
fn bad_arguments_give_one_line_and_exit_2() {
    let table: &[(&[&str], &str)] = &[
        // The tool itself.
        (&[], "no command given"),
        (&["nope"], "no such command 'nope'"),
        (&["--bogus"], "unknown option '--bogus'"),
        (&["help", "nope"], "help: no such command 'nope'"),
        (
            &["help", "emit", "extra"],
            "help: unexpected argument 'extra'",
        ),
        (&["--version", "extra"], "unexpected argument 'extra'"),
        // demo
        (&["demo", "--bogus"], "demo: unknown option '--bogus'"),
        (&["demo", "--sorce", "x"], "did you mean '--source'?"),
        (
            &["demo", "--source"],
            "demo: --source needs a value URI-REF",
        ),
        (&["demo", "extra"], "demo: unexpected argument 'extra'"),
        (
            &["demo", "--source", "a", "--source", "b"],
            "given more than once",
        ),
        (&["demo", "--help=yes"], "demo: --help takes no value"),
        // validate
        (
            &["validate", "--bogus"],
            "validate: unknown option '--bogus'",
        ),
        (&["validate", "-x"], "validate: unknown option '-x'"),
        (
            &["validate", "--format"],
            "validate: --format needs a value FORMAT",
        ),
        (
            &["validate", "-f"],
            "validate: --format needs a value FORMAT",
        ),
        (
            &["validate", "--format", "xml"],
            "validate: unknown format 'xml'",
        ),
        (&["validate", "-fxml"], "validate: unknown format 'xml'"),
        (
            &["validate", "--format=event", "--format=batch"],
            "given more than once",
        ),
        // listen
        (&["listen"], "listen: --http ADDR is required"),
        (&["listen", "--http"], "listen: --http needs a value ADDR"),
        (
            &["listen", "--http", "--max-body", "9"],
            "listen: --http needs a value ADDR",
        ),
        (&["listen", "--http", ""], "listen: --http needs an address"),
        (
            &["listen", "--http", "127.0.0.1:0", "--max-body", "lots"],
            "--max-body must be a number",
        ),
        (
            &["listen", "--http", "127.0.0.1:0", "--max-body", "0"],
            "--max-body must be a number",
        ),
        (
            &["listen", "--http", "127.0.0.1:0", "--max-body=2147483648"],
            "--max-body must be",
        ),
        (
            &["listen", "--http", "127.0.0.1:0", "--max-connections", "-3"],
            "--max-connections must be",
        ),
        (
            &["listen", "--http", "127.0.0.1:0", "--timeout", "0"],
            "--timeout must be",
        ),
        (
            &["listen", "--http", "127.0.0.1:0", "--timeout", "NaN"],
            "--timeout must be",
        ),
        (
            &["listen", "--http", "127.0.0.1:0", "--timeout", "86401"],
            "--timeout must be",
        ),
        (
            &["listen", "--http", "127.0.0.1:0", "--bogus"],
            "listen: unknown option '--bogus'",
        ),
        (
            &["listen", "--http", "127.0.0.1:0", "stray"],
            "listen: unexpected argument 'stray'",
        ),
        (
            &["listen", "--http", "127.0.0.1:0", "--http", "127.0.0.1:0"],
            "given more than once",
        ),
        // emit
        (&["emit", "--bogus"], "emit: unknown option '--bogus'"),
        (&["emit", "--gzp"], "did you mean '--gzip'?"),
        // Arguments are input files: none is read beside the demo run, and
        // stdin only once.
        (
            &["emit", "--demo", "events.jsonl"],
            "emit: --demo sends the demo run: no FILE is read beside it",
        ),
        (
            &["emit", "--demo", "-"],
            "emit: --demo sends the demo run: no FILE is read beside it",
        ),
        (
            &["emit", "-", "-"],
            "emit: '-' (standard input) is given more than once",
        ),
        (&["emit", "--sink"], "emit: --sink needs a value SINK"),
        (&["emit", "--sink", "ftp"], "emit: unknown sink 'ftp'"),
        (&["emit", "--sink", "http"], "emit: --sink http needs --url"),
        (
            &["emit", "--sink", "kafka", "--topic", "t"],
            "emit: --sink kafka needs --brokers and --topic",
        ),
        (
            &["emit", "--url", "http://x/"],
            "emit: --url, --header, --header-file and --gzip go with --sink http",
        ),
        (&["emit", "--gzip"], "go with --sink http"),
        (&["emit", "--topic", "t"], "go with --sink kafka"),
        (
            &["emit", "--mode", "binary"],
            "emit: --mode goes with --sink http or kafka",
        ),
        (
            &[
                "emit",
                "--sink",
                "http",
                "--url",
                "http://x/",
                "--mode",
                "raw",
            ],
            "emit: unknown mode 'raw'",
        ),
        (
            &[
                "emit",
                "--sink",
                "http",
                "--url",
                "http://x/",
                "--header",
                "nocolon",
            ],
            "is not 'Name: value'",
        ),
        (
            &["emit", "--batch-size", "0"],
            "emit: --batch-size must be a number from 1 to",
        ),
        (
            &["emit", "--batch-size", "many"],
            "emit: --batch-size must be",
        ),
        (
            &["emit", "--batch-size", "10001"],
            "emit: --batch-size must be",
        ),
        (&["emit", "--timeout", "-1"], "emit: --timeout must be"),
        // Stdout has no timeout: the option was taken and did nothing.
        (
            &["emit", "--timeout", "5"],
            "emit: --timeout goes with --sink http, kafka or otlp --url",
        ),
        (&["emit", "--deadline", "soon"], "emit: --deadline must be"),
        (&["emit", "--deadline=inf"], "emit: --deadline must be"),
        // Above 0, but under a nanosecond: it was taken as no time at all.
        (&["emit", "--timeout", "1e-10"], "emit: --timeout must be"),
        (
            &["emit", "--deadline", "0.0000000001"],
            "emit: --deadline must be",
        ),
        (
            &["emit", "--source", "/x"],
            "emit: --source goes with --demo",
        ),
        (
            &["emit", "--demo", "--demo"],
            "emit: --demo given more than once",
        ),
        (&["emit", "--demo=1"], "emit: --demo takes no value"),
        (
            &["emit", "--progress", "--no-progress"],
            "--progress and --no-progress cannot be used together",
        ),
        (&["emit", "--sink", "http", "--url", "not a url"], "emit: "),
        // consume
        (&["consume"], "consume: --brokers BROKERS is required"),
        (
            &["consume", "--kafka", "b:9092"],
            "consume: --topic T is required",
        ),
        (
            &["consume", "--kafka"],
            "consume: --kafka needs a value BROKERS",
        ),
        (
            &["consume", "--kafka", "", "--topic", "t"],
            "consume: --brokers needs a non-empty value",
        ),
        (
            &["consume", "--kafka", "b:9092", "--topic", "t", "--bogus"],
            "consume: unknown option '--bogus'",
        ),
        (
            &["consume", "--kafka", "b:9092", "--topic", "t", "extra"],
            "consume: unexpected argument 'extra'",
        ),
        (
            &[
                "consume",
                "--kafka",
                "b:9092",
                "--topic",
                "t",
                "--max-events",
                "0",
            ],
            "--max-events must be a positive number",
        ),
        (
            &[
                "consume",
                "--kafka",
                "b:9092",
                "--topic",
                "t",
                "--max-events",
                "-5",
            ],
            "--max-events must be",
        ),
        (
            &[
                "consume",
                "--kafka",
                "b:9092",
                "--topic",
                "t",
                "--timeout",
                "soon",
            ],
            "--timeout must be",
        ),
        (
            &[
                "consume",
                "--kafka",
                "b:9092",
                "--topic",
                "t",
                "--from-beginning=yes",
            ],
            "--from-beginning takes no value",
        ),
        (
            &[
                "consume", "--kafka", "b:9092", "--topic", "t", "--topic", "u",
            ],
            "--topic given more than once",
        ),
        (
            &[
                "consume",
                "--kafka",
                "b:9092",
                "--topic",
                "t",
                "--progress",
                "--no-progress",
            ],
            "cannot be used together",
        ),
    ];
    let mut seen = BTreeSet::new();
    for (args, want) in table {
        let o = run(args);
        assert_usage_error(args, &o, want);
        // Each error points at the right help.
        let err = text(&o.stderr);
        match args.first().filter(|c| COMMANDS.contains(c)) {
            Some(c) => {
                assert!(
                    err.contains(&format!("(see 'ossa-events {c} --help')")),
                    "{err}"
                );
                seen.insert(*c);
            }
            None => assert!(err.contains("(see 'ossa-events --help')"), "{err}"),
        }
    }
    assert_eq!(
        seen.len(),
        COMMANDS.len(),
        "a command has no rows: {seen:?}"
    );
}

/// The crate docs name the feature the manifest requires for the binary.
#[test]
fn crate_docs_name_the_feature_of_the_binary() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let bin = manifest.split("\n[[bin]]\n").nth(1).unwrap();
    let required = bin
        .lines()
        .find_map(|l| l.strip_prefix("required-features = "))
        .unwrap();
    assert_eq!(required, r#"["cli"]"#);
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    assert!(
        lib.contains("//! The binary (feature `cli`"),
        "src/lib.rs names another feature for the binary"
    );
}

/// The crate docs' "Cargo features" list has every feature of the manifest.
#[test]
fn crate_docs_list_every_feature() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    let section = lib.split("//! # Cargo features\n").nth(1).unwrap();
    let section = section.split("//! # ").next().unwrap();
    let table = manifest.split("\n[features]\n").nth(1).unwrap();
    let table = table.split("\n[").next().unwrap();
    let features: Vec<&str> = table
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = ").map(|(name, _)| name.trim()))
        .filter(|name| *name != "default")
        .collect();
    assert!(features.contains(&"cli"), "{features:?}");
    for f in features {
        assert!(
            section.contains(&format!("//! - `{f}`")),
            "src/lib.rs's Cargo features lack `{f}`"
        );
    }
}

/// The features this test binary's crate was built with, as `--version`
/// lists them.
fn built_features() -> Vec<&'static str> {
    let mut f = vec!["cli", "http", "otlp", "receiver", "receiver-tls", "schemas"];
    if cfg!(feature = "kafka") {
        f.push("kafka");
    }
    if cfg!(feature = "http-types") {
        f.push("http-types");
    }
    if cfg!(feature = "axum") {
        f.push("axum");
    }
    if cfg!(feature = "tracing") {
        f.push("tracing");
    }
    if cfg!(feature = "opentelemetry") {
        f.push("opentelemetry");
    }
    if cfg!(feature = "cloudevents-sdk") {
        f.push("cloudevents-sdk");
    }
    f
}

/// `(command, old name)` of the options renamed with the old name kept as an
/// alias the help does not list: `consume --kafka` is `--brokers`, as in
/// `emit`.
const HIDDEN_ALIASES: &[(&str, &str)] = &[("consume", "--kafka")];

#[test]
fn hidden_aliases_are_accepted_as_their_option() {
    for (cmd, alias) in HIDDEN_ALIASES {
        // Parsed as the option (a value is wanted), not refused as unknown.
        let o = run(&[cmd, alias]);
        assert_eq!(o.status.code(), Some(2));
        let e = text(&o.stderr);
        assert!(e.contains("needs a value"), "{cmd} {alias}: {e}");
        assert!(!help_of(cmd).contains(alias), "{cmd}: {alias} is listed");
    }
}

/// `completions` is listed among the commands: `help completions`,
/// `completions --help` and `completions -h` show its help (exit 0), as for
/// every other command, even beside a shell that is not known.
#[test]
fn completions_has_a_help_like_every_command() {
    let o = run(&["help", "completions"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let h = text(&o.stdout);
    for s in [
        "Usage: ossa-events completions SHELL",
        "-h, --help",
        "Exit status:",
        "Examples:\n  ossa-events ",
    ] {
        assert!(h.contains(s), "completions help lacks {s:?}:\n{h}");
    }
    for args in [
        &["completions", "--help"][..],
        &["completions", "-h"],
        &["completions", "bash", "--help"],
        &["completions", "tcsh", "--help"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), h, "{args:?}");
    }
}

#[test]
fn completions_cover_every_command_and_option() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = run(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", text(&o.stderr));
        let script = text(&o.stdout);
        for cmd in COMMANDS {
            assert!(script.contains(cmd), "{shell}: no {cmd}");
            // Every option of the command's help is completed.
            for opt in options_of(&help_of(cmd)) {
                if opt.long == "--help" {
                    continue;
                }
                let bare = opt.long.trim_start_matches('-');
                assert!(script.contains(bare), "{shell}: {cmd} {}", opt.long);
            }
        }
    }
    let o = run(&["completions", "bash"]);
    assert!(text(&o.stdout).contains("--header-file"));
    // Each points to the command's own help, as every other command's
    // usage errors do (it named the top-level help).
    for (args, want) in [
        (&["completions"][..], "completions: name a shell"),
        (
            &["completions", "tcsh"][..],
            "completions: unknown shell 'tcsh'",
        ),
        // The shell named is the one given, after `--` too (it named `--`).
        (
            &["completions", "--", "tcsh"][..],
            "completions: unknown shell 'tcsh'",
        ),
        // Its other usage errors too (they named the top-level help).
        (
            &["completions", "bash", "extra"][..],
            "completions: unexpected argument 'extra'",
        ),
        (
            &["completions", "--bogus"][..],
            "completions: unknown option '--bogus'",
        ),
    ] {
        let o = run(args);
        assert_usage_error(args, &o, want);
        assert!(
            text(&o.stderr).contains("(see 'ossa-events completions --help')"),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }
}

/// A value that is not UTF-8, on the command line or in a variable, is
/// refused with a line that names the option or the variable (it named
/// nothing: "emit:  value is not valid UTF-8").
#[test]
#[cfg(unix)]
fn a_value_not_utf8_names_its_option_or_variable() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt as _;
    let bad = |pre: &[u8]| OsString::from_vec([pre, b"\xff"].concat());
    let cases: [(Vec<OsString>, Option<&str>, &str); 5] = [
        (
            vec!["emit".into(), "--sink".into(), bad(b"")],
            None,
            "emit: --sink",
        ),
        (vec!["emit".into(), bad(b"--url=")], None, "emit: --url"),
        (
            vec!["validate".into(), bad(b"-f")],
            None,
            "validate: --format",
        ),
        (
            vec!["listen".into(), "--http".into(), bad(b"")],
            None,
            "listen: --http",
        ),
        (
            vec!["emit".into(), "--sink".into(), "http".into()],
            Some("OSSA_COLLECTOR_URL"),
            "emit: OSSA_COLLECTOR_URL",
        ),
    ];
    for (args, var, want) in cases {
        let mut c = common::bin();
        c.args(&args)
            .env_remove("OSSA_COLLECTOR_URL")
            .stdin(std::process::Stdio::null());
        if let Some(v) = var {
            c.env(v, bad(b"http://"));
        }
        let o = c.output().unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(&format!("{want} value is not valid UTF-8")),
            "{args:?}: {err}"
        );
    }
}
