//! One table per command drives both its argument parser and the Options
//! section of its `--help`, so the two cannot drift apart.

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

    /// Parses `args`: `Ok(None)` when help was asked for, `Err` with a
    /// one-line message (prefixed with the command's name) on bad arguments.
    pub(crate) fn parse(&'static self, args: Vec<OsString>) -> Result<Option<Parsed>, String> {
        let err = |m: String| format!("{}: {m}", self.name);
        let mut p = Parsed {
            cmd: self,
            given: Vec::new(),
            positionals: Vec::new(),
        };
        let mut it = args.into_iter().peekable();
        let mut only_positionals = false;
        while let Some(arg) = it.next() {
            let is_option = !only_positionals
                && arg.as_encoded_bytes().first() == Some(&b'-')
                && arg.as_encoded_bytes() != b"-";
            if !is_option {
                if self.positional.is_none() {
                    return Err(err(format!(
                        "unexpected argument '{}'",
                        arg.to_string_lossy()
                    )));
                }
                p.positionals.push(arg);
                continue;
            }
            let Some(s) = arg.to_str() else {
                return Err(err(format!(
                    "option '{}' is not valid UTF-8",
                    arg.to_string_lossy()
                )));
            };
            if s == "--" {
                if self.positional.is_none() {
                    return Err(err("unexpected argument '--'".into()));
                }
                only_positionals = true;
                continue;
            }
            // `--name=value`, `-xVALUE` or a bare name.
            let (name, inline) = if s.starts_with("--") {
                match s.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (s, None),
                }
            } else if s.len() > 2
                && s.is_char_boundary(2)
                && self.opts.iter().any(|o| o.short == Some(&s[..2]))
            {
                (&s[..2], Some(s[2..].to_string()))
            } else {
                (s, None)
            };
            let Some(opt) = self.find(name) else {
                return Err(err(unknown_option(self, name)));
            };
            // Errors name the option as typed when it was an old alias.
            let shown = if opt.aliases.contains(&name) {
                name
            } else {
                opt.long
            };
            let value = match (opt.value, inline) {
                (None, None) => None,
                (None, Some(_)) => {
                    return Err(err(format!("{shown} takes no value")));
                }
                (Some(_), Some(v)) => Some(v),
                (Some(placeholder), None) => {
                    // A following option is a forgotten value, not the value;
                    // `--name=--value` passes a value that starts with `--`.
                    let next_is_value = it
                        .peek()
                        .is_some_and(|n| !n.as_encoded_bytes().starts_with(b"--"));
                    match it.next().filter(|_| next_is_value) {
                        Some(v) => match v.into_string() {
                            Ok(v) => Some(v),
                            Err(v) => {
                                return Err(err(format!(
                                    "{} value '{}' is not valid UTF-8",
                                    opt.long,
                                    v.to_string_lossy()
                                )));
                            }
                        },
                        None => return Err(err(format!("{shown} needs a value {placeholder}"))),
                    }
                }
            };
            if opt.long == HELP_OPT.long {
                return Ok(None);
            }
            if !opt.repeatable && p.given.iter().any(|(o, _)| o == &opt.long) {
                return Err(err(format!("{} given more than once", opt.long)));
            }
            p.given.push((opt.long, value));
        }
        for (a, b) in self.conflicts {
            if p.has(a) && p.has(b) {
                return Err(err(format!("{a} and {b} cannot be used together")));
            }
        }
        Ok(Some(p))
    }
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
