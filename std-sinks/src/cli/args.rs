//! One table per command drives its argument parser (clap, built from the
//! table), its shell completions and the Options section of its `--help`, so
//! the three cannot drift apart.

use std::ffi::OsString;
use std::fmt::Write as _;

/// One option a command accepts.
#[derive(Debug)]
pub(crate) struct Opt {
    /// The long name with its dashes, e.g. `--sink`.
    pub(crate) long: &'static str,
    /// The short name with its dash, e.g. `-f`.
    pub(crate) short: Option<&'static str>,
    /// The value's placeholder (`SINK`), or `None` for a switch.
    pub(crate) value: Option<&'static str>,
    /// Whether the option may be given more than once.
    pub(crate) repeatable: bool,
    /// Help text; `\n` starts a continuation line.
    pub(crate) help: &'static str,
    /// The environment variable read when the option is not given (where
    /// the command applies it: see [`Parsed::value_or_env`]).
    pub(crate) env: Option<&'static str>,
    /// Other names accepted for the option, not shown in the help (an old
    /// name kept working).
    pub(crate) aliases: &'static [&'static str],
}

impl Opt {
    /// A switch (takes no value).
    pub(crate) const fn switch(long: &'static str, help: &'static str) -> Opt {
        Opt {
            long,
            short: None,
            value: None,
            repeatable: false,
            help,
            env: None,
            aliases: &[],
        }
    }

    /// An option that takes a value.
    pub(crate) const fn value(long: &'static str, value: &'static str, help: &'static str) -> Opt {
        Opt {
            long,
            short: None,
            value: Some(value),
            repeatable: false,
            help,
            env: None,
            aliases: &[],
        }
    }

    /// The same option with a short name.
    pub(crate) const fn short(mut self, short: &'static str) -> Opt {
        self.short = Some(short);
        self
    }

    /// The same option, allowed more than once.
    pub(crate) const fn repeatable(mut self) -> Opt {
        self.repeatable = true;
        self
    }

    /// The same option, read from environment variable `var` when not given.
    pub(crate) const fn env(mut self, var: &'static str) -> Opt {
        self.env = Some(var);
        self
    }

    /// The same option, also accepted (unlisted) under `names`.
    pub(crate) const fn aliases(mut self, names: &'static [&'static str]) -> Opt {
        self.aliases = names;
        self
    }
}

/// `-h, --help`, accepted by every command.
pub(crate) const HELP_OPT: Opt = Opt::switch("--help", "Show this help").short("-h");

/// A command's arguments and help.
#[derive(Debug)]
pub(crate) struct Command {
    /// The command's name, e.g. `emit`.
    pub(crate) name: &'static str,
    /// What the command does; the help's opening paragraph(s).
    pub(crate) about: &'static str,
    /// The synopsis lines, each after `ossa-events `.
    pub(crate) usage: &'static [&'static str],
    /// Text between the synopsis and the options.
    pub(crate) details: &'static str,
    /// The options (without `--help`, which every command has).
    pub(crate) opts: &'static [Opt],
    /// The positional arguments' placeholder (`FILE`), or `None` when the
    /// command takes none.
    pub(crate) positional: Option<&'static str>,
    /// Pairs of options that cannot be used together.
    pub(crate) conflicts: &'static [(&'static str, &'static str)],
    /// Text after the options: environment, exit status, examples.
    pub(crate) footer: &'static str,
}

impl Command {
    /// The whole `--help` text.
    pub(crate) fn help(&self) -> String {
        let mut s = String::new();
        s.push_str(self.about.trim_end());
        s.push_str("\n\n");
        for (i, u) in self.usage.iter().enumerate() {
            s.push_str(if i == 0 { "Usage: " } else { "       " });
            s.push_str("ossa-events ");
            s.push_str(u);
            s.push('\n');
        }
        if !self.details.trim().is_empty() {
            s.push('\n');
            s.push_str(self.details.trim_end());
            s.push('\n');
        }
        s.push_str("\nOptions:\n");
        let heads: Vec<(String, &Opt)> = self
            .opts
            .iter()
            .chain(std::iter::once(&HELP_OPT))
            .map(|o| {
                let mut h = match o.short {
                    Some(sh) => format!("{sh}, {}", o.long),
                    None => format!("    {}", o.long),
                };
                if let Some(v) = o.value {
                    h.push(' ');
                    h.push_str(v);
                }
                (h, o)
            })
            .collect();
        let width = heads
            .iter()
            .map(|(h, _)| h.chars().count())
            .max()
            .unwrap_or(0)
            + 2;
        for (h, o) in &heads {
            let mut lines = o.help.lines();
            let first = lines.next().unwrap_or("");
            let _ = writeln!(s, "  {h:<width$}{first}");
            for l in lines {
                let _ = writeln!(s, "  {:<width$}{l}", "");
            }
            if let Some(var) = o.env {
                let _ = writeln!(s, "  {:<width$}[env: {var}]", "");
            }
        }
        if !self.footer.trim().is_empty() {
            s.push('\n');
            s.push_str(self.footer.trim_end());
            s.push('\n');
        }
        s
    }

    fn find(&self, name: &str) -> Option<&'static Opt> {
        self.opts
            .iter()
            .chain(std::iter::once(&HELP_OPT))
            .find(|o| o.long == name || o.short == Some(name) || o.aliases.contains(&name))
    }

    /// The clap command for this table: the same names, values, aliases,
    /// repetition and conflicts. It parses (and generates completions);
    /// [`Command::help`] stays the help, from the same table.
    pub(crate) fn clap(&'static self) -> clap::Command {
        use clap::{Arg, ArgAction};
        let mut c = clap::Command::new(self.name)
            .about(self.about.lines().next().unwrap_or(""))
            .disable_help_flag(true)
            .disable_version_flag(true);
        for o in self.opts.iter().chain(std::iter::once(&HELP_OPT)) {
            let id = arg_id(o.long);
            let mut a = Arg::new(id)
                .long(id)
                .help(o.help.lines().next().unwrap_or(""));
            if let Some(sh) = o.short.and_then(|s| s.chars().nth(1)) {
                a = a.short(sh);
            }
            for alias in o.aliases {
                a = a.alias(arg_id(alias));
            }
            a = match o.value {
                None => a.action(ArgAction::SetTrue),
                Some(v) => a
                    .value_name(v)
                    .num_args(1)
                    // `--max-connections -3` is a bad number, not an option.
                    .allow_negative_numbers(true)
                    .action(if o.repeatable {
                        ArgAction::Append
                    } else {
                        ArgAction::Set
                    }),
            };
            c = c.arg(a);
        }
        if let Some(p) = self.positional {
            c = c.arg(
                Arg::new(POSITIONAL)
                    .value_name(p)
                    .num_args(0..)
                    .action(ArgAction::Append)
                    .value_parser(clap::value_parser!(OsString)),
            );
        }
        for (a, b) in self.conflicts {
            c = c.mut_arg(arg_id(a), |x| x.conflicts_with(arg_id(b)));
        }
        c
    }

    /// Parses `args` (with clap): `Ok(None)` when help was asked for, `Err`
    /// with a one-line message (prefixed with the command's name) on bad
    /// arguments.
    pub(crate) fn parse(&'static self, args: Vec<OsString>) -> Result<Option<Parsed>, String> {
        // Help wins wherever it is asked for (before `--`), even among
        // arguments that are otherwise wrong.
        let asks_help = args
            .iter()
            .take_while(|a| a.as_encoded_bytes() != b"--")
            .any(|a| a == "--help" || a == "-h");
        if asks_help {
            return Ok(None);
        }
        let typed = args.clone();
        let m = self
            .clap()
            .no_binary_name(true)
            .try_get_matches_from(args)
            .map_err(|e| format!("{}: {}", self.name, self.one_line(&e, &typed)))?;
        if m.get_flag(arg_id(HELP_OPT.long)) {
            return Ok(None);
        }
        let mut given: Vec<(usize, &'static str, Option<String>)> = Vec::new();
        for o in self.opts {
            let id = arg_id(o.long);
            let Some(indices) = m.indices_of(id) else {
                continue;
            };
            match o.value {
                None => {
                    if m.get_flag(id) {
                        given.extend(indices.map(|i| (i, o.long, None)));
                    }
                }
                Some(_) => {
                    let values = m.get_many::<String>(id).into_iter().flatten();
                    given.extend(
                        indices
                            .zip(values)
                            .map(|(i, v)| (i, o.long, Some(v.clone()))),
                    );
                }
            }
        }
        given.sort_by_key(|(i, _, _)| *i);
        Ok(Some(Parsed {
            cmd: self,
            given: given.into_iter().map(|(_, o, v)| (o, v)).collect(),
            positionals: m
                .try_get_many::<OsString>(POSITIONAL)
                .ok()
                .flatten()
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
        }))
    }

    /// The option as the user typed it, for a message about `id`: an alias
    /// when that is what was given, else the long name.
    fn as_typed(&self, o: &'static Opt, typed: &[OsString]) -> &'static str {
        o.aliases
            .iter()
            .find(|a| {
                typed.iter().any(|t| {
                    t.to_str()
                        .is_some_and(|t| t == **a || t.starts_with(&format!("{a}=")))
                })
            })
            .copied()
            .unwrap_or(o.long)
    }

    /// clap's error as this tool's one-line message (the wording the tests
    /// and users know: "unknown option '--x'; did you mean '--y'?").
    fn one_line(&'static self, e: &clap::Error, typed: &[OsString]) -> String {
        use clap::error::{ContextKind, ContextValue, ErrorKind};
        let ctx = |k: ContextKind| match e.get(k) {
            Some(ContextValue::String(s)) => Some(s.clone()),
            Some(ContextValue::Strings(v)) => v.first().cloned(),
            _ => None,
        };
        // "--format <FORMAT>" -> the table's option.
        let opt_of = |s: &str| self.find(s.split([' ', '=']).next().unwrap_or(s));
        match e.kind() {
            ErrorKind::UnknownArgument => {
                let arg = ctx(ContextKind::InvalidArg).unwrap_or_default();
                if arg.starts_with('-') && arg != "-" {
                    let name = arg.split('=').next().unwrap_or(&arg);
                    match opt_of(&arg) {
                        // `--gzip=yes`: a switch given a value.
                        Some(o) if o.value.is_none() => format!("{} takes no value", o.long),
                        _ => unknown_option(self, name),
                    }
                } else {
                    format!("unexpected argument '{arg}'")
                }
            }
            ErrorKind::InvalidValue | ErrorKind::NoEquals => {
                match ctx(ContextKind::InvalidArg).as_deref().and_then(opt_of) {
                    Some(o) => format!(
                        "{} needs a value {}",
                        self.as_typed(o, typed),
                        o.value.unwrap_or("VALUE")
                    ),
                    None => first_line(e),
                }
            }
            ErrorKind::TooManyValues => {
                match ctx(ContextKind::InvalidArg).as_deref().and_then(opt_of) {
                    Some(o) if o.value.is_none() => format!("{} takes no value", o.long),
                    _ => first_line(e),
                }
            }
            ErrorKind::ArgumentConflict => {
                let a = ctx(ContextKind::InvalidArg).as_deref().and_then(opt_of);
                let b = ctx(ContextKind::PriorArg).as_deref().and_then(opt_of);
                match (a, b) {
                    (Some(a), Some(b)) if a.long == b.long => {
                        format!("{} given more than once", a.long)
                    }
                    (Some(a), None) => format!("{} given more than once", a.long),
                    (Some(a), Some(b)) => {
                        // In table order, as the conflicts list them.
                        let (x, y) = if self
                            .conflicts
                            .iter()
                            .any(|(p, q)| *p == b.long && *q == a.long)
                        {
                            (b.long, a.long)
                        } else {
                            (a.long, b.long)
                        };
                        format!("{x} and {y} cannot be used together")
                    }
                    _ => first_line(e),
                }
            }
            ErrorKind::InvalidUtf8 => {
                let name = ctx(ContextKind::InvalidArg).unwrap_or_default();
                format!("{name} value is not valid UTF-8")
            }
            _ => first_line(e),
        }
    }
}

/// The clap id of an option: its long name without the dashes.
fn arg_id(long: &str) -> &str {
    long.trim_start_matches('-')
}

/// The clap id of the positional arguments.
const POSITIONAL: &str = "positional";

/// The first line of clap's message, without its `error: ` prefix.
fn first_line(e: &clap::Error) -> String {
    let s = e.to_string();
    let line = s.lines().next().unwrap_or("bad arguments");
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// "unknown option", with the nearest known one when it is close.
fn unknown_option(cmd: &Command, name: &str) -> String {
    let near = cmd
        .opts
        .iter()
        .chain(std::iter::once(&HELP_OPT))
        .map(|o| (edit_distance(o.long, name), o.long))
        .filter(|(d, _)| *d <= 2)
        .min();
    match near {
        Some((_, long)) => format!("unknown option '{name}'; did you mean '{long}'?"),
        None => format!("unknown option '{name}'"),
    }
}

/// Levenshtein distance between two short ASCII-ish strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Parsed arguments: the options given, in order, and the positionals.
#[derive(Debug)]
pub(crate) struct Parsed {
    cmd: &'static Command,
    given: Vec<(&'static str, Option<String>)>,
    /// The positional arguments, in order.
    pub(crate) positionals: Vec<OsString>,
}

impl Parsed {
    fn check(&self, long: &str) {
        debug_assert!(
            self.cmd.opts.iter().any(|o| o.long == long),
            "{}: '{long}' is not in the option table",
            self.cmd.name
        );
    }

    /// Whether option `long` was given.
    pub(crate) fn has(&self, long: &str) -> bool {
        self.check(long);
        self.given.iter().any(|(o, _)| *o == long)
    }

    /// The value of option `long`, when given.
    pub(crate) fn value(&self, long: &str) -> Option<&str> {
        self.values(long).pop()
    }

    /// The value of option `long` when given, else the non-empty value of its
    /// environment variable (see [`Opt::env`]).
    pub(crate) fn value_or_env(&self, long: &str) -> Option<String> {
        if let Some(v) = self.value(long) {
            return Some(v.to_string());
        }
        let var = self.cmd.opts.iter().find(|o| o.long == long)?.env?;
        std::env::var(var).ok().filter(|v| !v.trim().is_empty())
    }

    /// Every value of a repeatable option `long`, in order.
    pub(crate) fn values(&self, long: &str) -> Vec<&str> {
        self.check(long);
        self.given
            .iter()
            .filter(|(o, _)| *o == long)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }
}

/// A positive number of seconds (fractions allowed) of at most `max`.
pub(crate) fn parse_secs(s: &str, max: f64) -> Option<std::time::Duration> {
    let secs: f64 = s.trim().parse().ok()?;
    if !secs.is_finite() || secs <= 0.0 || secs > max {
        return None;
    }
    std::time::Duration::try_from_secs_f64(secs).ok()
}

/// An integer in `min..=max` (underscores allowed as digit separators).
pub(crate) fn parse_count(s: &str, min: u64, max: u64) -> Option<u64> {
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

    static CMD: Command = Command {
        name: "t",
        about: "Test.",
        usage: &["t [OPTIONS] [FILE]..."],
        details: "",
        opts: &[
            Opt::value("--format", "FORMAT", "Format\nsecond line").short("-f"),
            Opt::switch("--gzip", "Gzip"),
            Opt::value("--header", "H", "Header").repeatable(),
            Opt::switch("--progress", "On"),
            Opt::switch("--no-progress", "Off"),
        ],
        positional: Some("FILE"),
        conflicts: &[("--progress", "--no-progress")],
        footer: "",
    };

    fn parse(args: &[&str]) -> Result<Option<Parsed>, String> {
        CMD.parse(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn values_in_every_spelling() {
        for args in [
            &["--format", "x"][..],
            &["--format=x"],
            &["-f", "x"],
            &["-fx"],
        ] {
            let p = parse(args).unwrap().unwrap();
            assert_eq!(p.value("--format"), Some("x"), "{args:?}");
        }
        let p = parse(&["--header", "a", "--header=b", "-", "--", "--gzip"])
            .unwrap()
            .unwrap();
        assert_eq!(p.values("--header"), ["a", "b"]);
        assert_eq!(p.positionals, ["-", "--gzip"]);
        assert!(!p.has("--gzip"));
        assert!(parse(&["--gzip", "--help", "--bogus"]).unwrap().is_none());
    }

    #[test]
    fn bad_arguments() {
        for (args, want) in [
            (&["--bogus"][..], "t: unknown option '--bogus'"),
            (
                &["--gzp"],
                "t: unknown option '--gzp'; did you mean '--gzip'?",
            ),
            (&["--format"], "t: --format needs a value FORMAT"),
            (&["--format", "--gzip"], "t: --format needs a value FORMAT"),
            (&["--gzip=yes"], "t: --gzip takes no value"),
            (&["--gzip", "--gzip"], "t: --gzip given more than once"),
            (
                &["--progress", "--no-progress"],
                "t: --progress and --no-progress cannot be used together",
            ),
        ] {
            assert_eq!(parse(args).unwrap_err(), want, "{args:?}");
        }
    }

    #[test]
    fn help_lists_every_option_aligned() {
        let h = CMD.help();
        assert!(h.contains("  -f, --format FORMAT  Format\n"), "{h}");
        assert!(h.contains("\n                       second line\n"), "{h}");
        assert!(h.contains("      --gzip           Gzip\n"), "{h}");
        assert!(h.contains("  -h, --help           Show this help\n"), "{h}");
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
        for bad in ["0", "-1", "NaN", "inf", "11", "x"] {
            assert_eq!(parse_secs(bad, 10.0), None, "{bad}");
        }
    }
}
