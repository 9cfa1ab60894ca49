//! `ossa-events validate`: check CloudEvents and print each valid one as a canonical JSON line.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use ossa_events::parse::json::{BatchParser, parse_event};
use ossa_events::{Event, ParseError, Scratch, format::json};

use super::args::HelpFlag;
use super::emit::{Chunk, LineChunks, LineError, MAX_LINE};
use super::progress::note;
use super::schemas::{FETCH_WAIT, SchemaArgs};
use ossa_events::schema::SchemaError;

/// Check CloudEvents v1.0 in the JSON format and print each valid event as one line
/// of canonical structured JSON on stdout.
///
/// Reads each FILE in turn, or stdin when none is given (or FILE is '-'); after
/// '--' every argument is a FILE, even one that starts with '-'.
///
/// Formats:
///   event   one structured event (application/cloudevents+json)
///   batch   a JSON batch (application/cloudevents-batch+json): a JSON array of events
///   jsonl   JSON Lines: one event, or one batch (a JSON array), per line (blank
///           lines are skipped)
///   auto    tell them apart from the content [default]: '[' starts a batch, or
///           JSON Lines when its first line is a whole array and more follows; more
///           than one line is JSON Lines when the first line is a whole JSON value,
///           or the next non-blank line is a whole JSON object with a
///           'specversion' (the first one broken, and not an object going on
///           after ':', '[' or ','); anything else is one event
///
/// Every invalid event is reported on stderr with where it is (file, line, batch
/// element) and which attribute broke which rule; validation goes on with the next
/// line of JSON Lines input but stops at the first error of an event or batch
/// (a batch whose JSON is broken is one JSON error: none of its events is
/// printed). A line of JSON Lines over 64 MiB is not kept: it is reported with
/// its line number, as emit reports it, and reading goes on.
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
unreadable, or stdout cannot be written (a closed pipe, as with `| head`,
is not a failure), or, with --sequence, when a number is missing,
conflicting or not a number; 2 on bad arguments.

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
    /// number them with EmitterBuilder::sequence, from 1; decimal
    /// digits only, zero-padded or not): report
    /// the range, the numbers missing (events lost) and repeated
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
    // Standard input reads once: a second '-' would check nothing and say
    // the input was empty.
    if files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        return super::usage_error(
            Some("validate"),
            "validate: '-' (standard input) is given more than once",
        );
    }

    let stdout = std::io::stdout();
    let mut out = Output {
        // Not locked: the threads checking the input print from their turns.
        w: stdout,
        buf: Vec::with_capacity(OUT_CHUNK + 1024),
        broken: false,
        failed: None,
        sequences: a.sequence.then(Sequences::default),
    };
    let check = Check {
        schemas: schemas.as_ref(),
        sequence: a.sequence,
        lanes: super::lanes::lanes(),
    };
    let mut ok = true;
    for f in &files {
        let r = if f == "-" {
            let mut stdin = super::SkipBom::new(std::io::stdin());
            validate_stream("<stdin>", &mut stdin, format, check, &mut out)
        } else {
            let name = f.to_string_lossy().into_owned();
            match std::fs::File::open(f) {
                Ok(file) => {
                    let mut file = super::SkipBom::new(file);
                    validate_stream(&name, &mut file, format, check, &mut out)
                }
                Err(e) => Err((name, e)),
            }
        };
        match r {
            Ok(valid) => ok &= valid,
            Err((name, e)) => {
                note!("ossa-events: validate: {name}: {e}");
                ok = false;
            }
        }
        if out.broken {
            break;
        }
    }
    out.write_out();
    if let Some(e) = &out.failed {
        // Not a reader gone (`| head`): the lines were lost where they were
        // to be kept (a full disk).
        note!("ossa-events: validate: cannot write to stdout: {e}");
        ok = false;
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

/// Bytes of output gathered before they are written: one `write` per
/// 64 KiB (about 150 events), not one per line.
const OUT_CHUNK: usize = 64 * 1024;
/// Bytes of input read at a time. JSON Lines are checked as they arrive, in
/// one buffer of about this size, so a large input neither waits to be read
/// whole nor costs its size in memory (and in fresh pages).
const IN_CHUNK: usize = 256 * 1024;

struct Output<W: Write> {
    w: W,
    /// Lines not yet written.
    buf: Vec<u8>,
    /// stdout took no more: nothing more is written.
    broken: bool,
    /// Why, when it was not a closed pipe.
    failed: Option<std::io::Error>,
    sequences: Option<Sequences>,
}

/// What each event is checked against, and on how many threads.
#[derive(Clone, Copy)]
struct Check<'r> {
    /// `--schemas`: each payload against its type's schema.
    schemas: Option<&'r ossa_events::schema::SchemaRegistry>,
    /// `--sequence`: the numbers are gathered.
    sequence: bool,
    /// Threads checking JSON Lines input (see [`super::lanes`]).
    lanes: usize,
}

/// What checking a piece of the input gave, kept until it is its turn to
/// be printed: pieces of JSON Lines are checked on several threads at once
/// and printed in input order.
struct Part {
    /// The valid events, as canonical lines.
    out: Vec<u8>,
    /// The messages for stderr, in input order.
    errs: String,
    /// Whether every event was valid.
    ok: bool,
    /// The `--sequence` numbers seen.
    sequences: Option<Sequences>,
}

impl Part {
    fn new(check: Check<'_>) -> Part {
        Part {
            out: Vec::new(),
            errs: String::new(),
            ok: true,
            sequences: check.sequence.then(Sequences::default),
        }
    }

    /// Checks `ev`'s payload (with `--schemas`) and keeps its line; `false`,
    /// with the reason under `at()`, when its payload breaks its schema.
    fn checked(&mut self, check: Check<'_>, ev: &Event<'_>, at: impl FnOnce() -> String) -> bool {
        if let Some(r) = check.schemas
            && let Err(e) = r.check_within(ev, FETCH_WAIT)
        {
            // Not checked is not invalid: the schema could not be had
            // (`schema unavailable: …` says so), as `listen` answers 503.
            let what = match e {
                SchemaError::Unavailable { .. } => "",
                _ => "invalid payload: ",
            };
            self.say(format_args!("{}: {what}{e}", at()));
            return false;
        }
        if let Some(seqs) = &mut self.sequences {
            seqs.see(ev);
        }
        // Writing to a Vec cannot fail, and parsed events carry no serde payloads.
        let _ = json::write_jsonl(ev, &mut self.out);
        true
    }

    /// Keeps a message for stderr.
    fn say(&mut self, msg: std::fmt::Arguments<'_>) {
        use std::fmt::Write as _;
        let _ = writeln!(self.errs, "ossa-events: validate: {msg}");
    }

    /// Keeps the report of a parse error.
    fn report(&mut self, name: &str, bytes: &[u8], base_line: usize, e: &ParseError) {
        self.ok = false;
        self.say(format_args!("{}: {e}", locate(name, bytes, base_line, e)));
    }
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
    /// The first value that is not a number, for the report.
    first_not_number: Option<String>,
}

impl Sequences {
    /// Adds what `other` saw.
    fn merge(&mut self, other: Sequences) {
        for (source, s) in other.by_source {
            let e = self.by_source.entry(source).or_default();
            e.numbers.extend(s.numbers);
            e.unnumbered += s.unnumbered;
            e.not_numbers += s.not_numbers;
            if e.first_not_number.is_none() {
                e.first_not_number = s.first_not_number;
            }
        }
    }

    fn see(&mut self, ev: &Event<'_>) {
        use std::hash::{Hash, Hasher};
        let entry = self.by_source.entry(ev.source().to_owned()).or_default();
        // A number given as a JSON number (an Integer extension) is the
        // same number: in binary mode the same event carries it as a string.
        // A string is a number when it is decimal digits only, zero-padded
        // or not (the sequence extension orders values as strings, and asks
        // for leading zeros to make them sort; emitters pad to 20): `+2` or
        // ` 2` is no number an emitter writes, and would be counted as the
        // `2` it does not sort with.
        let Some(v) = ev.extension("sequence") else {
            entry.unnumbered += 1;
            return;
        };
        let n = match v {
            ossa_events::ExtValue::Integer(i) => u64::try_from(i).ok(),
            v => v
                .as_str()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok()),
        };
        match n {
            None => {
                entry.not_numbers += 1;
                if entry.first_not_number.is_none() {
                    entry.first_not_number = Some(match v {
                        ossa_events::ExtValue::Integer(i) => i.to_string(),
                        v => match v.as_str() {
                            Some(s) => format!("{s:?}"),
                            None => format!("{v:?}"),
                        },
                    });
                }
            }
            Some(n) => {
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
            // Emitters number each source from 1: numbers below the first
            // one seen are events lost too.
            if let Some(&(first, _)) = v.first()
                && first > 1
            {
                missing += first - 1;
                gaps.push((1, first - 1));
            }
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
            note!(
                "sequence {source}: {range}, {} numbered, {missing} missing, {dups} duplicates, {conflicts} conflicts, {} unnumbered, {} not a number",
                v.len(),
                s.unnumbered,
                s.not_numbers
            );
            for (a, b) in gaps.iter().take(10) {
                note!("sequence {source}: missing {a}..={b} ({})", b - a + 1);
            }
            if gaps.len() > 10 {
                note!("sequence {source}: … and {} more gaps", gaps.len() - 10);
            }
            if let Some(v) = &s.first_not_number {
                note!(
                    "sequence {source}: {v} is not a sequence number (decimal digits 0-9 only, zero-padded or not, at most {})",
                    u64::MAX
                );
            }
            ok &= missing == 0 && conflicts == 0 && s.not_numbers == 0;
        }
        ok
    }
}

impl<W: Write> Output<W> {
    /// Prints `part`: its messages on stderr, its lines on stdout (once
    /// 64 KiB are gathered, or at once with `now`); `part.ok`.
    fn commit(&mut self, part: Part, now: bool) -> bool {
        if !part.errs.is_empty() {
            let _ = std::io::stderr().lock().write_all(part.errs.as_bytes());
        }
        if let (Some(all), Some(seen)) = (&mut self.sequences, part.sequences) {
            all.merge(seen);
        }
        if !self.broken {
            if self.buf.is_empty() {
                self.buf = part.out;
            } else {
                self.buf.extend_from_slice(&part.out);
            }
            if now || self.buf.len() >= OUT_CHUNK {
                self.write_out();
            }
        }
        part.ok
    }

    /// Writes the lines gathered so far (and flushes `w`). A failed write
    /// stops the writing; stdout closed (piped into `head`) is the reader's
    /// choice, and stops the reading too (as SIGPIPE would), any other
    /// failure (a full disk) is kept for `run` to report and fail on, and
    /// validation goes on.
    fn write_out(&mut self) {
        if !self.broken
            && let Err(e) = self.w.write_all(&self.buf).and_then(|()| self.w.flush())
        {
            self.broken = true;
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                self.failed = Some(e);
            }
        }
        self.buf.clear();
    }
}

/// Validates what `input` holds, named `name` in messages: JSON Lines (given,
/// or found by `auto`) as they are read, in chunks checked on `check.lanes`
/// threads and printed in input order, every line printed before the next
/// read waits for input; an event or a batch once it is read whole. `Err`
/// with `name` when reading fails (what was read is checked).
fn validate_stream<W: Write + Send>(
    name: &str,
    input: &mut (impl Read + Send),
    format: Format,
    check: Check<'_>,
    out: &mut Output<W>,
) -> Result<bool, (String, std::io::Error)> {
    let mut buf: Vec<u8> = Vec::with_capacity(IN_CHUNK);
    let mut eof = false;
    let mut read_more = |buf: &mut Vec<u8>, eof: &mut bool| {
        let len = buf.len();
        buf.resize(len + IN_CHUNK, 0);
        let r = loop {
            match input.read(buf.get_mut(len..).unwrap_or(&mut [])) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                r => break r,
            }
        };
        let n = *r.as_ref().unwrap_or(&0);
        buf.truncate(len + n);
        *eof = n == 0;
        r.map(|_| ()).map_err(|e| (name.to_string(), e))
    };
    // Read until the format is known.
    let mut seen_start = Decided::default();
    let format = loop {
        match format {
            Format::Jsonl => break Format::Jsonl,
            Format::Auto if eof || decided(&buf, &mut seen_start) => break detect(&buf),
            // Still undecided past `MAX_LINE`: a first line with no end in
            // sight is not read whole to find out (an input with no
            // newline would take all memory). It is JSON Lines, where that
            // line is dropped as too long, unless it opens a batch (read
            // whole, as `--format batch` reads one).
            Format::Auto if buf.len() > MAX_LINE => {
                let start = buf
                    .iter()
                    .position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'));
                break match start.and_then(|i| buf.get(i)) {
                    Some(b'[') => Format::Batch,
                    _ => Format::Jsonl,
                };
            }
            Format::Auto => {}
            // One event or one batch: it is read whole.
            Format::Event | Format::Batch if eof => break format,
            Format::Event | Format::Batch => {}
        }
        read_more(&mut buf, &mut eof)?;
    };
    if format != Format::Jsonl {
        while !eof {
            read_more(&mut buf, &mut eof)?;
        }
        return Ok(validate_input(name, &buf, format, check, out));
    }
    let mut seen = false;
    let mut line = 1usize;
    let mut failed = None;
    let mut done = false;
    // stdout's reader left (`| head`): nothing more can be printed, and an
    // input that does not end (`tail -f`) would be read forever.
    let gone = AtomicBool::new(false);
    // What was read to tell the format comes first. Lines are cut as
    // `emit` cuts them: a line over `MAX_LINE` is dropped as it is read (a
    // file with no newline piped in by mistake would take all memory).
    let mut input = std::io::Cursor::new(std::mem::take(&mut buf)).chain(input);
    let mut chunks = LineChunks::new(MAX_LINE, IN_CHUNK);
    // The whole lines in hand, the number of the first, and those too long.
    let next = || {
        if done || gone.load(Ordering::Relaxed) {
            return None;
        }
        match chunks.next(&mut input) {
            // Handed out before reading on: a line is checked and printed
            // without waiting for the next to arrive.
            Ok(Some(chunk)) => {
                seen |= !chunk.too_long.is_empty() || !is_blank(&chunk.bytes);
                let first = line;
                line += memchr::memchr_iter(b'\n', &chunk.bytes).count();
                Some((first, chunk))
            }
            Ok(None) => {
                done = true;
                None
            }
            Err(e) => {
                failed = Some((name.to_string(), e));
                done = true;
                None
            }
        }
    };
    let out = Mutex::new(out);
    let ok = AtomicBool::new(true);
    super::lanes::in_order(check.lanes, next, |(first, chunk): (usize, Chunk), w| {
        let mut scratch = Vec::new();
        let mut part = Part::new(check);
        validate_lines(
            name,
            &chunk.bytes,
            &chunk.too_long,
            first,
            &mut scratch,
            check,
            &mut part,
        );
        let _turn = w.turn();
        // What this input gave so far is printed before waiting for more.
        let mut o = super::lanes::lock(&out);
        let fine = o.commit(part, true);
        if o.broken && o.failed.is_none() {
            gone.store(true, Ordering::Relaxed);
        }
        drop(o);
        ok.fetch_and(fine, Ordering::Relaxed);
    });
    if let Some(e) = failed {
        return Err(e);
    }
    if !seen {
        note!("ossa-events: validate: {name}: empty input: expected a CloudEvent");
        return Ok(false);
    }
    Ok(ok.into_inner())
}

/// How far [`decided`] has looked into the input, so that each call only
/// looks at what was read since the last one: a first line of 100 MiB was
/// 400 reads, each scanning all of it again (~20 GB, half a minute).
#[derive(Default)]
struct Decided {
    /// Bytes at the start known to be whitespace only.
    blank: usize,
    /// Bytes searched for the newline that ends the first line: its
    /// offset once found, else the whole input so far.
    newline: usize,
    /// Whether `newline` is the first line's newline.
    found: bool,
    /// Bytes after that newline known to be whitespace only.
    blank_after: usize,
    /// Whether the first line is a whole JSON value, once looked at.
    first_whole: Option<bool>,
    /// Bytes searched for the newline that ends the second non-blank line
    /// (looked for only when the first line is no whole JSON value).
    second_scan: usize,
}

/// Whether the start of an input, `bytes`, tells its format as [`detect`]
/// would on the whole: it starts with `[`, or its first line is followed by
/// more that is not blank and is a whole JSON value, or is not and the next
/// non-blank line is whole too (ends in a newline). `d` carries what
/// earlier calls on the same (grown) input found.
fn decided(bytes: &[u8], d: &mut Decided) -> bool {
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let tail = bytes.get(d.blank..).unwrap_or(&[]);
    let Some(p) = tail.iter().position(|c| !ws(c)) else {
        d.blank = bytes.len();
        return false;
    };
    let start = d.blank + p;
    d.blank = start;
    let array = bytes.get(start) == Some(&b'[');
    if !d.found {
        let from = d.newline.max(start);
        match memchr::memchr(b'\n', bytes.get(from..).unwrap_or(&[])) {
            Some(i) => {
                d.newline = from + i;
                d.found = true;
                d.blank_after = d.newline;
            }
            None => {
                d.newline = bytes.len();
                return false;
            }
        }
    }
    // An array whose first line is not a whole value is one batch; one
    // that is, a batch, or the first line of a stream of them (whether
    // more follows tells).
    if array
        && !*d
            .first_whole
            .get_or_insert_with(|| whole_value(bytes.get(start..d.newline).unwrap_or(&[])))
    {
        return true;
    }
    let after = bytes.get(d.blank_after..).unwrap_or(&[]);
    let Some(q) = after.iter().position(|c| !ws(c)) else {
        d.blank_after = bytes.len();
        return false;
    };
    let second = d.blank_after + q;
    d.blank_after = second;
    let first = bytes.get(start..d.newline).unwrap_or(&[]);
    if *d.first_whole.get_or_insert_with(|| whole_value(first)) {
        return true;
    }
    let from = d.second_scan.max(second);
    if memchr::memchr(b'\n', bytes.get(from..).unwrap_or(&[])).is_some() {
        return true;
    }
    d.second_scan = bytes.len();
    false
}

/// Whether `line` is one whole JSON value (as deep as an event may be).
fn whole_value(line: &[u8]) -> bool {
    // An event is one level deeper than its data, and a batch one more: a
    // batch line whose events' data is nested as deep as it may be is
    // still a whole JSON value (a line nested deeper is reported when its
    // event is parsed).
    ossa_events::json::validate(line, ossa_events::MAX_DATA_DEPTH + 2).is_ok()
}

/// Validates JSON Lines `bytes` whose first line is line `first_line` of
/// the input into `part`: each event kept, each invalid line reported.
/// The lines (by index) in `too_long` were over [`MAX_LINE`] and left out
/// by [`LineChunks`]: reported as `emit` reports them.
fn validate_lines(
    name: &str,
    bytes: &[u8],
    too_long: &[usize],
    first_line: usize,
    scratch: &mut Vec<u8>,
    check: Check<'_>,
    part: &mut Part,
) {
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
    for (i, end) in ends.enumerate() {
        let line = bytes.get(start..end).unwrap_or(&[]);
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if is_blank(line) {
            if too_long.contains(&i) {
                part.ok = false;
                let n = first_line + i;
                part.say(format_args!("{name}:{n}: {}", LineError::TooLong));
            }
            continue;
        }
        // Unescaped strings are never longer than the input.
        if scratch.len() < line.len() {
            scratch.resize(line.len(), 0);
        }
        let n = first_line + i;
        // A line that is an array is a JSON batch: a stream of them, one a
        // line, is what `BatchFormat::JsonBatch` writes.
        if line.trim_ascii_start().starts_with(b"[") {
            validate_batch(name, line, n, scratch, check, part);
            continue;
        }
        match parse_event(line, &mut Scratch::new(scratch)) {
            Ok(ev) => part.ok &= part.checked(check, &ev, || format!("{name}:{n}")),
            Err(e) => part.report(name, line, n, &e),
        }
    }
}

/// Validates the JSON batch `bytes`, whose first line is line `first_line`
/// of the input, into `part`: each event kept, up to the first error.
fn validate_batch(
    name: &str,
    bytes: &[u8],
    first_line: usize,
    scratch: &mut [u8],
    check: Check<'_>,
    part: &mut Part,
) {
    let mut batch = match BatchParser::new(bytes) {
        Ok(b) => b,
        Err(e) => return part.report(name, bytes, first_line, &e),
    };
    // What `part` held before this batch: a batch whose JSON turns out
    // broken is one JSON error, and none of its elements is printed (nor
    // counted, nor reported), as `emit` sends nothing of a broken line.
    let (out_len, errs_len) = (part.out.len(), part.errs.len());
    let before = part.sequences.as_mut().map(std::mem::take);
    let broken = |part: &mut Part, before: Option<Sequences>, e: &ParseError| {
        part.out.truncate(out_len);
        part.errs.truncate(errs_len);
        part.sequences = before;
        part.report(name, bytes, first_line, e);
    };
    // Counted from 0, as a parse error names the element; an element's
    // line is where it starts (a pretty-printed batch has one per line or
    // more), counted on as reading goes.
    let mut i = 0usize;
    let mut lines = Lines::default();
    while let Some(r) = batch.next_event(scratch) {
        let element = i;
        i += 1;
        let at = batch.element_offset();
        match r {
            Ok(ev) => {
                part.ok &= part.checked(check, &ev, || {
                    let line = first_line + lines.at(bytes, at) - 1;
                    format!("{name}:{line}: batch element {element}")
                });
            }
            // A JSON error has its own place.
            Err(e @ ParseError::Json(_)) => return broken(part, before, &e),
            Err(e) => {
                // Reading stops at the first error: the JSON after it is
                // checked too (only here, at no cost to valid batches).
                if let Err(j) = ossa_events::json::validate(bytes, usize::MAX) {
                    return broken(part, before, &ParseError::Json(j));
                }
                part.report(name, bytes, first_line + lines.at(bytes, at) - 1, &e);
                break;
            }
        }
    }
    // A whole batch: what it numbered joins what came before it.
    if let (Some(all), Some(before)) = (&mut part.sequences, before) {
        let batch = std::mem::replace(all, before);
        all.merge(batch);
    }
}

/// Line and column (1-based) of byte `offset`.
fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, col)
}

/// The line of a byte offset, counted on from the last one asked for
/// (offsets only grow): a batch whose every element fails reads its input
/// once, not once an element.
#[derive(Default)]
struct Lines {
    offset: usize,
    newlines: usize,
}

impl Lines {
    /// The line (from 1) that byte `offset` of `bytes` is on.
    fn at(&mut self, bytes: &[u8], offset: usize) -> usize {
        let offset = offset.min(bytes.len());
        if offset < self.offset {
            *self = Lines::default();
        }
        let seen = bytes.get(self.offset..offset).unwrap_or(&[]);
        self.newlines += seen.iter().filter(|&&b| b == b'\n').count();
        self.offset = offset;
        self.newlines + 1
    }
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

/// Whether `b` is only JSON's whitespace (a form feed is not: a line of
/// one is an invalid line, in `validate` and `emit` alike).
pub(super) fn is_blank(b: &[u8]) -> bool {
    b.iter().all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
}

fn detect(bytes: &[u8]) -> Format {
    let start = bytes
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'));
    let Some(start) = start else {
        return Format::Event;
    };
    let rest = &bytes[start..];
    let first_end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    let first = &rest[..first_end];
    let after = &rest[first_end..];
    let s2 = after
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'));
    if bytes[start] == b'[' {
        // A batch; or, its first line a whole array with more after it, a
        // stream of batches, one a line (what `BatchFormat::JsonBatch`
        // writes), read as JSON Lines.
        return if s2.is_some() && whole_value(first) {
            Format::Jsonl
        } else {
            Format::Batch
        };
    }
    let Some(s2) = s2 else {
        return Format::Event;
    };
    // More lines follow: JSON Lines when the first is a whole value, or,
    // the first broken (cut short, a stray log line), when the next one is
    // an event on its own: a whole JSON object naming `specversion`. (A
    // line of a pretty-printed event may be a whole object, an element of
    // its data, but hardly one with a `specversion`.)
    let second = &after[s2..];
    let second = &second[..memchr::memchr(b'\n', second).unwrap_or(second.len())];
    let an_event = |line: &[u8]| {
        line.trim_ascii().starts_with(b"{")
            && memchr::memmem::find(line, b"\"specversion\"").is_some()
            && whole_value(line)
    };
    // A first line that opens an object and ends where a value begins
    // (`"data":`, `[`, `1,`) may go on in that object on the next line:
    // an event whose data is an event is one event.
    let goes_on = |line: &[u8]| {
        let line = line.trim_ascii();
        line.starts_with(b"{") && matches!(line.last(), Some(b':' | b'[' | b','))
    };
    if whole_value(first) || (an_event(second) && !goes_on(first)) {
        Format::Jsonl
    } else {
        Format::Event
    }
}

fn validate_input<W: Write>(
    name: &str,
    bytes: &[u8],
    format: Format,
    check: Check<'_>,
    out: &mut Output<W>,
) -> bool {
    if is_blank(bytes) {
        note!("ossa-events: validate: {name}: empty input: expected a CloudEvent");
        return false;
    }
    let format = if format == Format::Auto {
        detect(bytes)
    } else {
        format
    };
    // Unescaped strings are never longer than the input.
    let mut scratch = vec![0u8; bytes.len()];
    let mut part = Part::new(check);
    match format {
        Format::Event | Format::Auto => match parse_event(bytes, &mut Scratch::new(&mut scratch)) {
            Ok(ev) => part.ok = part.checked(check, &ev, || name.to_string()),
            Err(e) => part.report(name, bytes, 1, &e),
        },
        Format::Batch => validate_batch(name, bytes, 1, &mut scratch, check, &mut part),
        Format::Jsonl => validate_lines(name, bytes, &[], 1, &mut scratch, check, &mut part),
    }
    out.commit(part, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`decided`] on an input read in pieces answers as a look at the
    /// whole of what was read so far would, and once it says the format is
    /// known, [`detect`] on what was read tells the format of the whole.
    #[test]
    fn decided_by_pieces_answers_as_on_the_whole() {
        let whole = |bytes: &[u8]| {
            let Some(start) = bytes
                .iter()
                .position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
            else {
                return false;
            };
            let rest = &bytes[start..];
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                return false;
            };
            if rest[0] == b'[' && !whole_value(&rest[..nl]) {
                return true;
            }
            let Some(s2) = rest[nl..].iter().position(|c| !c.is_ascii_whitespace()) else {
                return false;
            };
            whole_value(&rest[..nl]) || memchr::memchr(b'\n', &rest[nl + s2..]).is_some()
        };
        let inputs: [&[u8]; 20] = [
            b"",
            b"  \r\n \t",
            b" [1]",
            b"{\"a\":1}",
            b"{\"a\":1}\n",
            b"{\"a\":1}\r\n \n\t\n{}",
            b"\n\n{}\n[",
            b"{\n}",
            b"x\n \n  y\n",
            b"{\"a\":\n{\"b\":2}\n{}\n",
            b"{\"a\":\n{\"specversion\":2}\n{}\n",
            b"{\n  \"a\": 1,\n  \"b\": {\"c\": 2}\n}\n",
            b"cut\"\n\n {\"a\":1} \r\n{\"a\":2}",
            b"cut\n{\"a\":1",
            b"{\"data\":\r\n{\"specversion\":2}\r\n}\r\n",
            b"[{\"a\":1}]\r\n[{\"a\":2}]\r\n",
            b"[{\"a\":1}]\n \n",
            b"[\n{\"a\":1}]\n[]",
            b" [1,\n2]\n",
            b"[1]\n[2",
        ];
        for input in inputs {
            for step in 1..=input.len().max(1) {
                let mut d = Decided::default();
                let mut end = 0;
                loop {
                    end = (end + step).min(input.len());
                    let got = decided(&input[..end], &mut d);
                    assert_eq!(got, whole(&input[..end]), "{input:?} step {step} at {end}");
                    if got {
                        assert_eq!(
                            detect(&input[..end]),
                            detect(input),
                            "{input:?} step {step} at {end}"
                        );
                    }
                    if got || end == input.len() {
                        break;
                    }
                }
            }
        }
    }
}
