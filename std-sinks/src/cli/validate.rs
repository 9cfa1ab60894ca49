//! `ossa-events validate`: check CloudEvents and print each valid one as a canonical JSON line.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::ExitCode;

use ossa_events::parse::json::{BatchParser, parse_event};
use ossa_events::{Event, ParseError, Scratch, format::json};

use super::args::HelpFlag;
use super::schemas::{FETCH_WAIT, SchemaArgs};

/// Check CloudEvents v1.0 in the JSON format and print each valid event as one line
/// of canonical structured JSON on stdout.
///
/// Reads each FILE in turn, or stdin when none is given (or FILE is '-'); after
/// '--' every argument is a FILE, even one that starts with '-'.
///
/// Formats:
///   event   one structured event (application/cloudevents+json)
///   batch   a JSON batch (application/cloudevents-batch+json): a JSON array of events
///   jsonl   JSON Lines: one event per line (blank lines are skipped)
///   auto    tell them apart from the content [default]: '[' starts a batch; a first
///           line that is a whole JSON value followed by more lines is JSON Lines;
///           anything else is one event
///
/// Every invalid event is reported on stderr with where it is (file, line, batch
/// element) and which attribute broke which rule; validation goes on with the next
/// line of JSON Lines input but stops at the first error of an event or batch.
///
/// With --schemas, each event's data is also checked against the JSON Schema of
/// its type (or of its 'dataschema' URI): a payload that breaks it is reported
/// with the JSON pointer of the bad value and the schema keyword, and not printed.
// This doc comment is the command's help, plain text rather than Markdown.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(Debug, clap::Parser)]
#[command(
    name = "validate",
    verbatim_doc_comment,
    override_usage = "validate [--format auto|event|batch|jsonl] [--schemas DIR|URL] [FILE]...",
    after_help = "\
Exit status: 0 when every event is valid, 1 when any input is invalid or
unreadable (or, with --sequence, when a number is missing, conflicting or
not a number), 2 on bad arguments.

Examples:
  ossa-events demo | ossa-events validate
  ossa-events validate --format batch batch.json
  ossa-events validate -f jsonl events-1.jsonl events-2.jsonl
  ossa-events validate --sequence received.jsonl
  ossa-events demo | ossa-events validate --schemas builtin
  ossa-events validate --schemas ./schemas --require-schema events.jsonl
  ossa-events validate --schemas http://registry:8081 --schema-api confluent events.jsonl"
)]
pub(crate) struct Args {
    /// Input format: auto, event, batch or jsonl [default: auto]
    #[arg(short, long, value_name = "FORMAT")]
    format: Option<String>,
    /// Also check each source's 'sequence' numbers (as emitters
    /// number them with EmitterBuilder::sequence): report the
    /// range, the numbers missing (events lost) and repeated
    /// (duplicates; a number on two different ids is a conflict)
    #[arg(long, verbatim_doc_comment)]
    sequence: bool,
    #[command(flatten)]
    schemas: SchemaArgs,
    #[command(flatten)]
    pub(super) help: HelpFlag,
    /// The inputs (stdin when none, or '-')
    #[arg(value_name = "FILE")]
    files: Vec<OsString>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Auto,
    Event,
    Batch,
    Jsonl,
}

/// Runs `validate` with its parsed arguments.
pub(crate) fn run(a: Args) -> ExitCode {
    let format = match a.format.as_deref().unwrap_or("auto") {
        "auto" => Format::Auto,
        "event" => Format::Event,
        "batch" => Format::Batch,
        "jsonl" => Format::Jsonl,
        other => {
            return super::usage_error(
                Some("validate"),
                &format!("validate: unknown format '{other}': use auto, event, batch or jsonl"),
            );
        }
    };
    let schemas = match a.schemas.registry() {
        Ok(r) => r,
        Err(e) => return super::usage_error(Some("validate"), &format!("validate: {e}")),
    };
    let mut files = a.files;
    if files.is_empty() {
        files.push("-".into());
    }

    let stdout = std::io::stdout();
    let mut out = Output {
        w: std::io::BufWriter::new(stdout.lock()),
        line: Vec::with_capacity(1024),
        broken: false,
        sequences: a.sequence.then(Sequences::default),
        schemas,
    };
    let mut ok = true;
    for f in &files {
        let (name, bytes) = if f == "-" {
            let mut v = Vec::new();
            if let Err(e) = std::io::stdin().lock().read_to_end(&mut v) {
                eprintln!("ossa-events: validate: <stdin>: {e}");
                ok = false;
                continue;
            }
            ("<stdin>".to_string(), v)
        } else {
            let name = f.to_string_lossy().into_owned();
            match std::fs::read(f) {
                Ok(v) => (name, v),
                Err(e) => {
                    eprintln!("ossa-events: validate: {name}: {e}");
                    ok = false;
                    continue;
                }
            }
        };
        ok &= validate_input(&name, &bytes, format, &mut out);
        if out.broken {
            break;
        }
    }
    if out.w.flush().is_err() {
        out.broken = true;
    }
    if let Some(seqs) = &out.sequences {
        ok &= seqs.report();
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILURE)
    }
}

struct Output<W: Write> {
    w: W,
    line: Vec<u8>,
    broken: bool,
    sequences: Option<Sequences>,
    schemas: Option<ossa_events::schema::SchemaRegistry>,
}

/// The `sequence` numbers seen per source (`--sequence`).
#[derive(Default)]
struct Sequences {
    /// Per source: (number, hash of the id) of each numbered event, and how
    /// many events had no number or one that is not a number.
    by_source: std::collections::BTreeMap<String, SourceSeqs>,
}

#[derive(Default)]
struct SourceSeqs {
    numbers: Vec<(u64, u64)>,
    unnumbered: u64,
    not_numbers: u64,
}

impl Sequences {
    fn see(&mut self, ev: &Event<'_>) {
        use std::hash::{Hash, Hasher};
        let entry = self.by_source.entry(ev.source().to_owned()).or_default();
        match ev
            .extension("sequence")
            .map(|v| v.as_str().and_then(|s| s.parse::<u64>().ok()))
        {
            None => entry.unnumbered += 1,
            Some(None) => entry.not_numbers += 1,
            Some(Some(n)) => {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                ev.id().hash(&mut h);
                entry.numbers.push((n, h.finish()));
            }
        }
    }

    /// Prints one line per source (and the missing ranges) on stderr;
    /// `false` when a number is missing, conflicting or not a number.
    fn report(&self) -> bool {
        let mut ok = true;
        for (source, s) in &self.by_source {
            let mut v = s.numbers.clone();
            v.sort_unstable();
            let (mut dups, mut conflicts, mut missing) = (0u64, 0u64, 0u64);
            let mut gaps: Vec<(u64, u64)> = Vec::new();
            for w in v.windows(2) {
                let ((a, ida), (b, idb)) = (w[0], w[1]);
                if a == b {
                    if ida == idb {
                        dups += 1;
                    } else {
                        conflicts += 1;
                    }
                } else if b > a + 1 {
                    missing += b - a - 1;
                    gaps.push((a + 1, b - 1));
                }
            }
            let range = match (v.first(), v.last()) {
                (Some(f), Some(l)) => format!("{}..={}", f.0, l.0),
                _ => "none".into(),
            };
            eprintln!(
                "sequence {source}: {range}, {} numbered, {missing} missing, {dups} duplicates, {conflicts} conflicts, {} unnumbered, {} not a number",
                v.len(),
                s.unnumbered,
                s.not_numbers
            );
            for (a, b) in gaps.iter().take(10) {
                eprintln!("sequence {source}: missing {a}..={b} ({})", b - a + 1);
            }
            if gaps.len() > 10 {
                eprintln!("sequence {source}: … and {} more gaps", gaps.len() - 10);
            }
            ok &= missing == 0 && conflicts == 0 && s.not_numbers == 0;
        }
        ok
    }
}

impl<W: Write> Output<W> {
    /// Checks `ev`'s payload (with `--schemas`) and prints it; `false`, with
    /// the reason on stderr under `at()`, when its payload breaks its schema.
    fn checked(&mut self, ev: &Event<'_>, at: impl FnOnce() -> String) -> bool {
        if let Some(r) = &self.schemas
            && let Err(e) = r.check_within(ev, FETCH_WAIT)
        {
            eprintln!("ossa-events: validate: {}: invalid payload: {e}", at());
            return false;
        }
        self.event(ev);
        true
    }

    fn event(&mut self, ev: &Event<'_>) {
        if let Some(seqs) = &mut self.sequences {
            seqs.see(ev);
        }
        if self.broken {
            return;
        }
        self.line.clear();
        // Writing to a Vec cannot fail, and parsed events carry no serde payloads.
        if json::write_jsonl(ev, &mut self.line).is_ok() && self.w.write_all(&self.line).is_err() {
            // stdout closed (e.g. piped into `head`): stop writing, keep validating.
            self.broken = true;
        }
    }
}

/// Line and column (1-based) of byte `offset`.
fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, col)
}

/// Where in the input an error is, for the message.
fn locate(name: &str, bytes: &[u8], base_line: usize, e: &ParseError) -> String {
    match e {
        ParseError::Json(j) => {
            let (l, c) = line_col(bytes, j.offset);
            format!("{name}:{}:{c}", base_line + l - 1)
        }
        _ => format!("{name}:{base_line}"),
    }
}

fn report(name: &str, bytes: &[u8], base_line: usize, e: &ParseError) {
    eprintln!(
        "ossa-events: validate: {}: {e}",
        locate(name, bytes, base_line, e)
    );
}

fn is_blank(b: &[u8]) -> bool {
    b.iter().all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
}

fn detect(bytes: &[u8]) -> Format {
    let start = bytes
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'));
    let Some(start) = start else {
        return Format::Event;
    };
    if bytes[start] == b'[' {
        return Format::Batch;
    }
    let rest = &bytes[start..];
    let first_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let first = &rest[..first_end];
    let more = !is_blank(&rest[first_end..]);
    if more && ossa_events::json::validate(first, ossa_events::MAX_DATA_DEPTH).is_ok() {
        Format::Jsonl
    } else {
        Format::Event
    }
}

fn validate_input<W: Write>(name: &str, bytes: &[u8], format: Format, out: &mut Output<W>) -> bool {
    if is_blank(bytes) {
        eprintln!("ossa-events: validate: {name}: empty input: expected a CloudEvent");
        return false;
    }
    let format = if format == Format::Auto {
        detect(bytes)
    } else {
        format
    };
    // Unescaped strings are never longer than the input.
    let mut scratch = vec![0u8; bytes.len()];
    match format {
        Format::Event | Format::Auto => match parse_event(bytes, &mut Scratch::new(&mut scratch)) {
            Ok(ev) => out.checked(&ev, || name.to_string()),
            Err(e) => {
                report(name, bytes, 1, &e);
                false
            }
        },
        Format::Batch => {
            let mut batch = match BatchParser::new(bytes) {
                Ok(b) => b,
                Err(e) => {
                    report(name, bytes, 1, &e);
                    return false;
                }
            };
            let mut ok = true;
            let mut i = 0usize;
            while let Some(r) = batch.next_event(&mut scratch) {
                i += 1;
                match r {
                    Ok(ev) => ok &= out.checked(&ev, || format!("{name}: batch event {i}")),
                    Err(e) => {
                        report(name, bytes, 1, &e);
                        return false;
                    }
                }
            }
            ok
        }
        Format::Jsonl => {
            let mut ok = true;
            for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if is_blank(line) {
                    continue;
                }
                match parse_event(line, &mut Scratch::new(&mut scratch)) {
                    Ok(ev) => ok &= out.checked(&ev, || format!("{name}:{}", i + 1)),
                    Err(e) => {
                        report(name, line, i + 1, &e);
                        ok = false;
                    }
                }
            }
            ok
        }
    }
}
