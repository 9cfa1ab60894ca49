//! What every command's arguments share. Each command is a
//! `#[derive(clap::Parser)]` struct (in its own module) whose doc comments
//! are its help; this module renders that help from the derived
//! [`clap::Command`], turns clap's errors into this tool's one-line
//! messages, and holds the value parsers for numbers and seconds.
//!
//! Where a command's texts live in the derived command:
//!
//! ```text
//!  struct doc, 1st paragraph  about        "Emit a realistic OSSA agent run …"
//!  override_usage             Usage:       one synopsis line per line
//!  struct doc, the rest       long_about   (after the about) the details
//!  field docs, value_name     Options:     "  -f, --format FORMAT  Input …"
//!  env = "…"                               "[env: VAR]" under the option
//!  after_help                 the footer   environment, exit status, examples
//! ```
//!
//! The help is rendered here rather than by clap (whose `help` feature stays
//! off) so that it reads as before: value names without angle brackets and
//! the line breaks of the doc comments kept (`verbatim_doc_comment`).

use std::ffi::OsString;
use std::fmt::Write as _;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches};

/// `-h, --help`, flattened into every command (clap's own help flag is
/// disabled: the help is ours, see [`help`]).
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct HelpFlag {
    /// Show this help
    #[arg(short, long, action = clap::ArgAction::SetTrue)]
    pub(crate) help: bool,
}

/// The whole `--help` text of `cmd` (a command of [`super::Cli`]).
pub(crate) fn help(cmd: &clap::Command) -> String {
    let mut s = String::new();
    let about = cmd.get_about().map(ToString::to_string).unwrap_or_default();
    s.push_str(about.trim_end());
    s.push_str("\n\n");
    let usage = cmd
        .get_overridden_usage()
        .map(ToString::to_string)
        .unwrap_or_else(|| cmd.get_name().to_string());
    for (i, u) in usage.lines().enumerate() {
        s.push_str(if i == 0 { "Usage: " } else { "       " });
        s.push_str("ossa-events ");
        s.push_str(u.trim());
        s.push('\n');
    }
    let long = cmd
        .get_long_about()
        .map(ToString::to_string)
        .unwrap_or_default();
    let details = long.strip_prefix(about.as_str()).unwrap_or("");
    if !details.trim().is_empty() {
        s.push('\n');
        s.push_str(details.trim_matches('\n').trim_end());
        s.push('\n');
    }
    s.push_str("\nOptions:\n");
    let heads: Vec<(String, &Arg)> = options(cmd)
        .map(|a| {
            let long = a.get_long().unwrap_or_default();
            let mut h = match a.get_short() {
                Some(sh) => format!("-{sh}, --{long}"),
                None => format!("    --{long}"),
            };
            if let Some(v) = value_name(a) {
                h.push(' ');
                h.push_str(v);
            }
            (h, a)
        })
        .collect();
    let width = heads
        .iter()
        .map(|(h, _)| h.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    for (h, a) in &heads {
        let text = a.get_help().map(ToString::to_string).unwrap_or_default();
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("");
        let _ = writeln!(s, "  {h:<width$}{first}");
        for l in lines {
            let _ = writeln!(s, "  {:<width$}{l}", "");
        }
        if let Some(var) = a.get_env() {
            let _ = writeln!(s, "  {:<width$}[env: {}]", "", var.to_string_lossy());
        }
    }
    if let Some(footer) = cmd.get_after_help().map(ToString::to_string)
        && !footer.trim().is_empty()
    {
        s.push('\n');
        s.push_str(footer.trim_end());
        s.push('\n');
    }
    s
}

/// The options of `cmd` that its help lists: the named, unhidden ones.
pub(crate) fn options(cmd: &clap::Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments()
        .filter(|a| a.get_long().is_some() && !a.is_hide_set())
}

/// The placeholder of an option's value (`FORMAT`), `None` for a switch.
pub(crate) fn value_name(a: &Arg) -> Option<&str> {
    if !a.get_action().takes_values() {
        return None;
    }
    Some(
        a.get_value_names()
            .and_then(|v| v.first())
            .map_or("VALUE", |s| s.as_str()),
    )
}

/// Whether `args` (a command's arguments) ask for its help: `-h` or
/// `--help` before any `--`. Help wins wherever it is asked for, even among
/// arguments that are otherwise wrong.
pub(crate) fn asks_help(args: &[OsString]) -> bool {
    args.iter()
        .take_while(|a| a.as_encoded_bytes() != b"--")
        .any(|a| a == "--help" || a == "-h")
}

/// The option of `cmd` that `s` names: `--format <FORMAT>`, `--format=x`,
/// `-f` or an alias.
fn find<'c>(cmd: &'c clap::Command, s: &str) -> Option<&'c Arg> {
    let name = s.split([' ', '=']).next().unwrap_or(s);
    if let Some(long) = name.strip_prefix("--") {
        return cmd.get_arguments().find(|a| {
            a.get_long() == Some(long) || a.get_all_aliases().is_some_and(|al| al.contains(&long))
        });
    }
    let mut chars = name.strip_prefix('-')?.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return None;
    };
    cmd.get_arguments().find(|a| a.get_short() == Some(c))
}

/// `--long` of `a`.
fn long_of(a: &Arg) -> String {
    format!("--{}", a.get_long().unwrap_or_else(|| a.get_id().as_str()))
}

/// The name of `a` as the user typed it: an alias when that is what was
/// given, else the long name.
fn as_typed(a: &Arg, typed: &[OsString]) -> String {
    a.get_all_aliases()
        .unwrap_or_default()
        .into_iter()
        .map(|al| format!("--{al}"))
        .find(|al| {
            typed.iter().any(|t| {
                t.to_str()
                    .is_some_and(|t| t == al || t.starts_with(&format!("{al}=")))
            })
        })
        .unwrap_or_else(|| long_of(a))
}

/// clap's error about the arguments of `cmd` as this tool's one-line
/// message, in the wording users and the tests know: "unknown option '--x';
/// did you mean '--y'?", "--gzip takes no value", "--topic needs a value T",
/// "--max-body must be a number of bytes from 1 to …, not 'lots'".
pub(crate) fn one_line(cmd: &clap::Command, e: &clap::Error, typed: &[OsString]) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let ctx = |k: ContextKind| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    let arg = || ctx(ContextKind::InvalidArg).and_then(|s| find(cmd, &s));
    match e.kind() {
        ErrorKind::UnknownArgument => {
            let given = ctx(ContextKind::InvalidArg).unwrap_or_default();
            // After `--` it is no option, whatever it looks like (`emit --
            // --demo` is not "--demo takes no value").
            let past_dashes = || {
                let mut typed = typed.iter().map(|t| t.as_encoded_bytes());
                let before = typed.by_ref().take_while(|t| *t != b"--").any(|t| {
                    t == given.as_bytes() || t.starts_with(format!("{given}=").as_bytes())
                });
                !before && typed.any(|t| t == given.as_bytes())
            };
            if !given.starts_with('-') || given == "-" || past_dashes() {
                return format!("unexpected argument '{given}'");
            }
            match find(cmd, &given) {
                // `--gzip=yes`: a switch given a value.
                Some(a) if value_name(a).is_none() => format!("{} takes no value", long_of(a)),
                _ => {
                    let name = given.split('=').next().unwrap_or(&given);
                    match ctx(ContextKind::SuggestedArg) {
                        Some(near) => format!("unknown option '{name}'; did you mean '{near}'?"),
                        None => format!("unknown option '{name}'"),
                    }
                }
            }
        }
        ErrorKind::InvalidValue | ErrorKind::NoEquals => match arg() {
            Some(a) => format!(
                "{} needs a value {}",
                as_typed(a, typed),
                value_name(a).unwrap_or("VALUE")
            ),
            None => first_line(e),
        },
        // A value parser's refusal (see `count` and `secs`): it says what
        // the option must be.
        ErrorKind::ValueValidation => {
            let why = std::error::Error::source(e).map(ToString::to_string);
            match (arg(), why) {
                (Some(a), Some(why)) => format!(
                    "{} must be {why}, not '{}'",
                    as_typed(a, typed),
                    ctx(ContextKind::InvalidValue).unwrap_or_default()
                ),
                _ => first_line(e),
            }
        }
        ErrorKind::TooManyValues => match arg() {
            Some(a) if value_name(a).is_none() => format!("{} takes no value", long_of(a)),
            _ => first_line(e),
        },
        ErrorKind::ArgumentConflict => {
            let a = arg();
            let b = ctx(ContextKind::PriorArg).and_then(|s| find(cmd, &s));
            match (a, b) {
                (Some(a), Some(b)) if a.get_id() == b.get_id() => {
                    format!("{} given more than once", long_of(a))
                }
                (Some(a), None) => format!("{} given more than once", long_of(a)),
                (Some(a), Some(b)) => {
                    // In the order the help lists them.
                    let pos = |x: &Arg| cmd.get_arguments().position(|y| y.get_id() == x.get_id());
                    let (x, y) = if pos(b) < pos(a) { (b, a) } else { (a, b) };
                    format!("{} and {} cannot be used together", long_of(x), long_of(y))
                }
                _ => first_line(e),
            }
        }
        // An option that needs another (`--tls-cert` without `--tls-key`).
        ErrorKind::MissingRequiredArgument => match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::Strings(v)) if !v.is_empty() => {
                format!("{} must be given too", v.join(", ").replace(['<', '>'], ""))
            }
            _ => first_line(e),
        },
        // clap's error names no option: it is found from what was typed.
        ErrorKind::InvalidUtf8 => {
            let name = ctx(ContextKind::InvalidArg)
                .or_else(|| not_utf8_option(cmd, typed))
                .unwrap_or_else(|| "an option's".to_string());
            format!("{name} value is not valid UTF-8")
        }
        _ => first_line(e),
    }
}

/// The option of `cmd` whose value in `typed` (`--x V`, `--x=V`, `-xV`,
/// `-x V`), or in its environment variable, is not UTF-8: `--x`, or the
/// variable's name. A file name that is not UTF-8 is no option's value and
/// is passed over.
fn not_utf8_option(cmd: &clap::Command, typed: &[OsString]) -> Option<String> {
    let takes_value = |a: &&Arg| value_name(a).is_some();
    let as_option = |s: &str| find(cmd, s).filter(takes_value).map(|a| as_typed(a, typed));
    let mut prev: Option<&OsString> = None;
    for t in typed {
        if t.as_encoded_bytes() == b"--" {
            break;
        }
        if t.to_str().is_none() {
            let b = t.as_encoded_bytes();
            // `--x=V`, or `-xV`: the name is the ASCII before the value.
            let attached = if b.starts_with(b"--") {
                b.iter()
                    .position(|&c| c == b'=')
                    .and_then(|eq| std::str::from_utf8(b.get(..eq)?).ok())
            } else {
                b.get(..2)
                    .filter(|n| {
                        n.first() == Some(&b'-') && n.get(1).is_some_and(u8::is_ascii_alphanumeric)
                    })
                    .and_then(|n| std::str::from_utf8(n).ok())
            };
            // `--x V`: the option before it takes the value.
            let before = prev.and_then(|p| p.to_str()).filter(|p| p.starts_with('-'));
            if let Some(name) = attached.or(before).and_then(as_option) {
                return Some(name);
            }
        }
        prev = Some(t);
    }
    cmd.get_arguments().find_map(|a| {
        let var = a.get_env()?;
        std::env::var_os(var)
            .filter(|v| v.to_str().is_none())
            .map(|_| var.to_string_lossy().into_owned())
    })
}

/// The first line of clap's message, without its `error: ` prefix.
pub(crate) fn first_line(e: &clap::Error) -> String {
    let s = e.to_string();
    let line = s.lines().next().unwrap_or("bad arguments");
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// Whether the value of option `id` in `m` came from its environment variable.
pub(crate) fn from_env(m: &ArgMatches, id: &str) -> bool {
    m.value_source(id) == Some(ValueSource::EnvVariable)
}

/// `value` of option `id`, with a blank value from the environment taken as
/// no value (an empty `OSSA_KAFKA_TOPIC=` is unset, not an empty topic).
pub(crate) fn unless_blank_env(m: &ArgMatches, id: &str, value: Option<String>) -> Option<String> {
    value.filter(|v| !(from_env(m, id) && v.trim().is_empty()))
}

/// A value parser for an integer in `min..=max` (underscores allowed as
/// digit separators); refused as "must be `what` from `min` to `max`".
pub(crate) fn count<T>(
    min: u64,
    max: u64,
    what: &'static str,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    move |s: &str| {
        parse_count(s, min, max)
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| format!("{what} from {min} to {max}"))
    }
}

/// A value parser for a number of at least 1 (underscores allowed as digit
/// separators); refused as "must be a positive number".
pub(crate) fn positive(s: &str) -> Result<u64, String> {
    parse_count(s, 1, u64::MAX).ok_or_else(|| "a positive number".to_string())
}

/// A value parser for a positive number of seconds (fractions allowed) of
/// at most `max`.
pub(crate) fn secs(
    max: f64,
) -> impl Fn(&str) -> Result<std::time::Duration, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        parse_secs(s, max).ok_or_else(|| format!("a number of seconds above 0 and at most {max}"))
    }
}

/// A positive number of seconds (fractions allowed) of at most `max`.
fn parse_secs(s: &str, max: f64) -> Option<std::time::Duration> {
    let secs: f64 = s.trim().parse().ok()?;
    if !secs.is_finite() || secs <= 0.0 || secs > max {
        return None;
    }
    // A value under a nanosecond (`1e-10`) is above 0 but comes out as no
    // time at all: every request would time out at once.
    std::time::Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
}

/// An integer in `min..=max` (underscores allowed as digit separators).
fn parse_count(s: &str, min: u64, max: u64) -> Option<u64> {
    let digits: String = s.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (min..=max).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    /// Test.
    ///
    /// Details.
    #[derive(Debug, clap::Parser)]
    #[command(
        name = "t",
        no_binary_name = true,
        disable_help_flag = true,
        disable_version_flag = true,
        verbatim_doc_comment,
        override_usage = "t [OPTIONS] [FILE]...",
        after_help = "Exit status: 0."
    )]
    struct T {
        /// Format
        /// second line
        #[arg(short, long, value_name = "FORMAT", verbatim_doc_comment)]
        format: Option<String>,
        /// Gzip
        #[arg(long)]
        gzip: bool,
        /// Header
        #[arg(long, value_name = "H")]
        header: Vec<String>,
        /// Count
        #[arg(long, value_name = "N", value_parser = count::<usize>(1, 9, "a number"))]
        n: Option<usize>,
        /// On
        #[arg(long, conflicts_with = "no_progress")]
        progress: bool,
        /// Off
        #[arg(long)]
        no_progress: bool,
        /// Old name
        #[arg(long, value_name = "B", alias = "kafka")]
        brokers: Option<String>,
        #[command(flatten)]
        help: HelpFlag,
        /// Files
        #[arg(value_name = "FILE")]
        files: Vec<OsString>,
    }

    fn parse(args: &[&str]) -> Result<T, String> {
        let typed: Vec<OsString> = args.iter().map(OsString::from).collect();
        let cmd = T::command();
        cmd.clone()
            .try_get_matches_from(&typed)
            .and_then(|m| T::from_arg_matches(&m))
            .map_err(|e| one_line(&cmd, &e, &typed))
    }

    #[test]
    fn values_in_every_spelling() {
        for args in [
            &["--format", "x"][..],
            &["--format=x"],
            &["-f", "x"],
            &["-fx"],
        ] {
            let p = parse(args).unwrap();
            assert_eq!(p.format.as_deref(), Some("x"), "{args:?}");
        }
        let p = parse(&["--header", "a", "--header=b", "-", "--", "--gzip"]).unwrap();
        assert_eq!(p.header, ["a", "b"]);
        assert_eq!(p.files, ["-", "--gzip"]);
        assert!(!p.gzip);
        assert_eq!(
            parse(&["--n", "1_0"]).map(|p| p.n),
            Err("--n must be a number from 1 to 9, not '1_0'".into())
        );
        assert_eq!(
            parse(&["--kafka", "b"]).unwrap().brokers.as_deref(),
            Some("b")
        );
        assert!(asks_help(&[
            "--gzip".into(),
            "--help".into(),
            "--bogus".into()
        ]));
        assert!(!asks_help(&["--".into(), "-h".into()]));
    }

    #[test]
    fn bad_arguments() {
        for (args, want) in [
            (&["--bogus"][..], "unknown option '--bogus'"),
            (&["--gzp"], "unknown option '--gzp'; did you mean '--gzip'?"),
            (&["--format"], "--format needs a value FORMAT"),
            (&["--format", "--gzip"], "--format needs a value FORMAT"),
            (&["--kafka"], "--kafka needs a value B"),
            (&["--gzip=yes"], "--gzip takes no value"),
            (&["--help=yes"], "--help takes no value"),
            (&["--gzip", "--gzip"], "--gzip given more than once"),
            (&["--n", "0"], "--n must be a number from 1 to 9, not '0'"),
            (
                &["--no-progress", "--progress"],
                "--progress and --no-progress cannot be used together",
            ),
        ] {
            assert_eq!(parse(args).unwrap_err(), want, "{args:?}");
        }
    }

    /// A value that is not UTF-8 is refused naming its option, however it
    /// was given (clap's error does not say which option it was).
    #[test]
    #[cfg(unix)]
    fn a_value_not_utf8_names_its_option() {
        use std::os::unix::ffi::OsStringExt as _;
        let bad = |pre: &[u8]| OsString::from_vec([pre, b"\xff"].concat());
        for (args, want) in [
            (vec!["--format".into(), bad(b"")], "--format"),
            (vec![bad(b"--format=")], "--format"),
            (vec!["-f".into(), bad(b"")], "--format"),
            (vec![bad(b"-f")], "--format"),
            (vec!["--gzip".into(), "--kafka".into(), bad(b"")], "--kafka"),
            // A file name need not be UTF-8: the option after it is named.
            (vec![bad(b""), "--header".into(), bad(b"")], "--header"),
        ] {
            let cmd = T::command();
            let e = cmd.clone().try_get_matches_from(&args).unwrap_err();
            assert_eq!(
                one_line(&cmd, &e, &args),
                format!("{want} value is not valid UTF-8"),
                "{args:?}"
            );
        }
    }

    #[test]
    fn help_lists_every_option_aligned() {
        let h = help(&T::command());
        assert!(
            h.starts_with(
                "Test.\n\nUsage: ossa-events t [OPTIONS] [FILE]...\n\nDetails.\n\nOptions:\n"
            ),
            "{h}"
        );
        assert!(h.contains("  -f, --format FORMAT  Format\n"), "{h}");
        assert!(h.contains("\n                       second line\n"), "{h}");
        assert!(h.contains("      --gzip           Gzip\n"), "{h}");
        assert!(h.contains("  -h, --help           Show this help\n"), "{h}");
        assert!(!h.contains("kafka") && !h.contains("Files"), "{h}");
        assert!(h.ends_with("\n\nExit status: 0.\n"), "{h}");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_count("1_000", 1, 1000), Some(1000));
        assert_eq!(parse_count("1001", 1, 1000), None);
        assert_eq!(parse_count("-3", 1, 1000), None);
        assert_eq!(
            parse_secs("0.5", 10.0),
            Some(std::time::Duration::from_millis(500))
        );
        for bad in ["0", "-1", "NaN", "inf", "11", "x", "1e-10", "0.0000000001"] {
            assert_eq!(parse_secs(bad, 10.0), None, "{bad}");
        }
    }
}
