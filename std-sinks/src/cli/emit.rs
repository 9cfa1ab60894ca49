//! `ossa-events emit`: deliver JSON Lines events or batches (or the demo run) to a sink.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::ArgMatches;
use ossa_events::sink::otlp::OtlpStats;
use ossa_events::sink::{HttpMode, HttpSink, OtlpSink, WriterSink};
use ossa_events::{
    Emitter, EmitterBuilder, Event, Overflow, ParseError, Scratch, SystemClock, demo,
};

use super::args::{HelpFlag, count, from_env, secs, unless_blank_env};
use super::lanes::lock;
use super::progress::{Progress, ProgressFlags, Snapshot, note};
use super::signals;

/// The default `--source` (with `--demo`).
const DEFAULT_SOURCE: &str = "/ossa/demo/researcher";
/// The default `--deadline`, in seconds.
const DEFAULT_DEADLINE_SECS: u64 = 300;
/// The default `--timeout` of `--sink http`, in seconds.
const DEFAULT_HTTP_TIMEOUT_SECS: u64 = 10;
/// The default `--timeout` of `--sink kafka` (the Kafka sink's delivery timeout), in seconds.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
const DEFAULT_KAFKA_TIMEOUT_SECS: u64 = 30;
/// Largest `--batch-size`: the emitter's queue, which a batch must fit in.
const MAX_BATCH_SIZE: u64 = EmitterBuilder::DEFAULT_QUEUE_EVENTS as u64;
/// The default `--in-flight` of `--sink http`.
const DEFAULT_IN_FLIGHT: usize = 1;
/// Largest `--in-flight`.
const MAX_IN_FLIGHT: u64 = ossa_events::sink::http::MAX_PIPELINE as u64;
/// Largest `--timeout` and `--deadline`, in seconds (one day).
const MAX_SECS: f64 = 86_400.0;

/// Deliver CloudEvents to a sink: JSON Lines (one event, or one JSON batch of
/// events, per line; attributes, extensions and data sent as given) read from
/// each FILE in turn, or stdin when none is given (or FILE is '-'), or the
/// demo agent run. After '--' every argument is a FILE, even one that starts
/// with '-'. A FILE that cannot be opened or read to its end is said on stderr
/// (the rest of it is not read) and the next one is read.
///
/// Invalid input lines are reported on stderr with their file and line number, counted and
/// not sent (so is a line over 64 MiB, not kept in memory; a batch line is sent
/// whole or not at all); blank lines are skipped. Events not delivered are reported on stderr
/// (the first 10) with their id and reason.
///
/// While it runs, a progress line on stderr shows what was read and delivered and
/// the rate (redrawn every 250 ms, cleared at the end), when stderr is a terminal.
/// At the end a summary line goes to stderr:
///   emit: read N, delivered N, retried N, failed N, dropped N, invalid N
/// where failed counts the events given up at the shutdown deadline too, and
/// dropped those refused at emit (a full queue, or an event that breaks a
/// rule or a schema).
#[derive(Debug, clap::Parser)]
#[command(
    name = "emit",
    verbatim_doc_comment,
    override_usage = "\
emit [--sink stdout] [OPTIONS] [FILE]...
emit --sink http --url URL [--mode structured|binary|batched] [--header HEADER]... [--gzip] [OPTIONS] [FILE]...
emit --sink kafka --brokers BROKERS --topic T [--mode binary|structured] [--key-field ATTR] [OPTIONS] [FILE]...
emit --sink otlp (--url URL | --otlp-file FILE) [--service-name NAME] [--header HEADER]... [--gzip] [OPTIONS] [FILE]...
emit --demo [--source URI-REF] [--sink ...] [OPTIONS]",
    after_help = "\
--url, --header, --gzip and --ca-cert go with --sink http or otlp; --in-flight with
--sink http; --otlp-file and --service-name with
--sink otlp; --brokers, --topic and --key-field with --sink kafka; --mode
with http or kafka; --timeout with http, kafka or otlp --url.

--sink otlp turns lifecycle events into OpenTelemetry spans (GenAI semantic
conventions) and posts them with OTLP/HTTP JSON to URL/v1/traces (URL as
given when it ends in /v1/traces), or writes them to FILE, one
ExportTraceServiceRequest a line. Spans still open at the end are sent
unfinished. A second summary line counts the spans:
  emit: otlp: spans N (unfinished N, evicted N), span events N, lost N

Environment: with --sink http, HTTPS_PROXY, HTTP_PROXY, ALL_PROXY (or their
lower-case forms) name a proxy and NO_PROXY the hosts that bypass it.

An event that waits --deadline for room in the full queue (the sink took
none in that time) is dropped, and the rest of the input is not read.

SIGINT or SIGTERM stops reading: what is in hand gets --deadline, then the
summary is printed (delivered counts only what the sink confirmed) and emit
exits 130 (143 for SIGTERM). A second signal exits at once with the counts
so far.

Exit status: 0 only when every event was delivered (with --spool: also
those an earlier run left); 1 otherwise (invalid lines, events failed,
dropped or left in the spool, a spool directory in use); 2 on bad arguments
(or --sink kafka in a build without the kafka feature); 130/143 when stopped
by SIGINT/SIGTERM.

Examples:
  ossa-events emit --demo
  ossa-events emit --sink http --url http://127.0.0.1:8080/ < events.jsonl
  ossa-events emit --sink http --url http://127.0.0.1:8080/ monday.jsonl tuesday.jsonl
  ossa-events emit --sink http --url http://127.0.0.1:8080/ --spool /var/spool/agent < events.jsonl
  ossa-events emit --sink http --url https://collector.example/events --mode binary \\
      --header 'Authorization: Bearer TOKEN' --gzip < events.jsonl
  ossa-events emit --sink http --url https://localhost:8443/ --ca-cert cert.pem < events.jsonl
  ossa-events emit --sink kafka --brokers 127.0.0.1:9092 --topic agent-events --demo
  ossa-events emit --sink otlp --url http://127.0.0.1:4318 --demo
  ossa-events emit --sink otlp --otlp-file spans.jsonl < events.jsonl"
)]
pub(crate) struct Args {
    /// stdout (JSON Lines), http, kafka or otlp [default: stdout]
    #[arg(long, value_name = "SINK")]
    sink: Option<String>,
    /// Collector URL, http:// or https:// (required with --sink
    /// http; the OTLP/HTTP endpoint with --sink otlp)
    #[arg(
        long,
        value_name = "URL",
        verbatim_doc_comment,
        env = "OSSA_COLLECTOR_URL",
        hide_env_values = true
    )]
    url: Option<OsString>,
    /// Content mode; http: structured, binary or batched
    /// [default: batched]; kafka: binary or structured
    /// [default: binary]
    #[arg(long, value_name = "MODE", verbatim_doc_comment)]
    mode: Option<String>,
    /// Extra HTTP header 'Name: value' (repeatable),
    /// e.g. --header 'Authorization: Bearer …'; when none
    /// is given the variable is read, one header a line, #
    /// lines skipped (a token there stays out of ps and shell
    /// history)
    #[arg(
        long,
        value_name = "HEADER",
        verbatim_doc_comment,
        env = "OSSA_HTTP_HEADERS",
        hide_env_values = true
    )]
    header: Vec<OsString>,
    /// HTTP headers from FILE, one 'Name: value' a line
    /// (blank lines and lines starting with # skipped)
    #[arg(long, value_name = "FILE", verbatim_doc_comment)]
    header_file: Option<String>,
    /// Gzip HTTP request bodies
    #[arg(long)]
    gzip: bool,
    /// Trust only the certificates in FILE (PEM) for an
    /// https:// --url: a private CA, or a collector's
    /// self-signed certificate [default: the web's roots]
    #[arg(long, value_name = "FILE", verbatim_doc_comment)]
    ca_cert: Option<std::path::PathBuf>,
    /// With --sink http: requests in flight at once, each on
    /// its own connection, 1 to 64; above 1 the collector may
    /// get batches out of the order read [default: 1]
    #[arg(
        long,
        value_name = "N",
        verbatim_doc_comment,
        allow_negative_numbers = true,
        value_parser = count::<usize>(1, MAX_IN_FLIGHT, "a number")
    )]
    in_flight: Option<usize>,
    /// With --sink otlp: write the OTLP JSON to FILE
    /// (one ExportTraceServiceRequest a line) instead of
    /// posting it
    #[arg(long, value_name = "FILE", verbatim_doc_comment)]
    otlp_file: Option<std::path::PathBuf>,
    /// With --sink otlp: the service.name of the spans'
    /// resource (the agent or service they come from)
    /// [default: ossa-events]
    #[arg(long, value_name = "NAME", verbatim_doc_comment)]
    service_name: Option<String>,
    /// Kafka bootstrap servers, e.g. 127.0.0.1:9092
    /// (required with --sink kafka)
    #[arg(
        long,
        value_name = "BROKERS",
        verbatim_doc_comment,
        env = "OSSA_KAFKA_BROKERS",
        hide_env_values = true
    )]
    brokers: Option<OsString>,
    /// Kafka topic (required with --sink kafka)
    #[arg(
        long,
        value_name = "T",
        env = "OSSA_KAFKA_TOPIC",
        hide_env_values = true
    )]
    topic: Option<OsString>,
    /// Kafka record key: this attribute's value when the event
    /// has no partitionkey extension (which is used first)
    #[arg(long, value_name = "ATTR", verbatim_doc_comment)]
    key_field: Option<String>,
    /// Events per batch, 1 to 10000 [default: 100]
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = count::<usize>(1, MAX_BATCH_SIZE, "a number")
    )]
    batch_size: Option<usize>,
    /// http, otlp: request timeout [default: 10]; kafka: delivery
    /// timeout [default: 30] (fractions allowed, at most 86400)
    #[arg(
        long,
        value_name = "SECS",
        verbatim_doc_comment,
        allow_negative_numbers = true,
        value_parser = secs(MAX_SECS)
    )]
    timeout: Option<Duration>,
    /// Give up on what is not delivered after this long
    /// (fractions allowed, at most 86400) [default: 300]
    #[arg(
        long,
        value_name = "SECS",
        verbatim_doc_comment,
        allow_negative_numbers = true,
        value_parser = secs(MAX_SECS)
    )]
    deadline: Option<Duration>,
    /// Send the demo agent run (15 events) instead of
    /// reading input
    #[arg(long, verbatim_doc_comment)]
    demo: bool,
    /// Source of the demo events (with --demo)
    /// [default: /ossa/demo/researcher]
    #[arg(long, value_name = "URI-REF", verbatim_doc_comment)]
    source: Option<String>,
    /// Keep every event in a disk spool in DIR until it is
    /// delivered: a killed or stopped run leaves what it could
    /// not deliver there, and the next run on DIR sends it first
    #[arg(long, value_name = "DIR", verbatim_doc_comment)]
    spool: Option<std::path::PathBuf>,
    /// With --spool: write the spool through a memory map
    /// (Linux): no system call per event, but a disk that
    /// fails under it ends the run (SIGBUS), not an error
    #[arg(long, requires = "spool", verbatim_doc_comment)]
    spool_mapped: bool,
    #[command(flatten)]
    progress: ProgressFlags,
    #[command(flatten)]
    pub(super) help: HelpFlag,
    /// JSON Lines files, read in turn ('-' or none: stdin)
    #[arg(value_name = "FILE")]
    files: Vec<OsString>,
}

/// `emit`'s arguments, checked against each other.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
struct Settings {
    sink: String,
    url: Option<String>,
    mode: Option<String>,
    brokers: Option<String>,
    topic: Option<String>,
    key_field: Option<String>,
    headers: Vec<(String, String)>,
    gzip: bool,
    /// `--ca-cert`'s text, read when the arguments are checked.
    ca_cert: Option<Vec<u8>>,
    in_flight: Option<usize>,
    otlp_file: Option<std::path::PathBuf>,
    service_name: Option<String>,
    batch_size: usize,
    timeout: Option<Duration>,
    deadline: Duration,
    demo: bool,
    source: String,
    progress: bool,
    spool: Option<std::path::PathBuf>,
    spool_mapped: bool,
    /// The input, in order: `-` is stdin.
    files: Vec<OsString>,
}

/// The checked arguments, or a one-line error. `m` tells which values came
/// from the environment: those stand in for the options of the sink in use
/// only (a collector URL in the environment does not make `--sink stdout`
/// fail), and a blank one counts as unset.
fn settings(a: Args, m: &ArgMatches) -> Result<Settings, String> {
    let sink = a.sink.unwrap_or_else(|| "stdout".into());
    // Read as given (not as UTF-8 by clap): a variable of a sink not in use
    // is ignored whatever its bytes, and one in use that is not UTF-8 is
    // named.
    let utf8 = |id: &str, v: OsString| {
        v.into_string().map_err(|_| {
            let (flag, var) = match id {
                "url" => ("--url", "OSSA_COLLECTOR_URL"),
                "header" => ("--header", "OSSA_HTTP_HEADERS"),
                "brokers" => ("--brokers", "OSSA_KAFKA_BROKERS"),
                _ => ("--topic", "OSSA_KAFKA_TOPIC"),
            };
            let from = if from_env(m, id) { var } else { flag };
            format!("emit: {from} value is not valid UTF-8")
        })
    };
    let for_sink = |id: &str, wanted: &str, v: Option<OsString>| {
        if sink != wanted && from_env(m, id) {
            Ok(None)
        } else {
            let v = v.map(|v| utf8(id, v)).transpose()?;
            Ok::<_, String>(unless_blank_env(m, id, v))
        }
    };
    // `--otlp-file` posts nothing: the HTTP variables do not apply to it.
    let posts = |wanted: &'static str| {
        if a.otlp_file.is_some() {
            "--otlp-file"
        } else {
            wanted
        }
    };
    let url = if sink == "otlp" {
        for_sink("url", posts("otlp"), a.url)?
    } else {
        for_sink("url", "http", a.url)?
    };
    let brokers = for_sink("brokers", "kafka", a.brokers)?;
    let topic = for_sink("topic", "kafka", a.topic)?;
    let mut header_lines: Vec<(String, String)> = if !from_env(m, "header") {
        a.header
            .into_iter()
            .map(|h| Ok(("--header".to_string(), utf8("header", h)?)))
            .collect::<Result<_, String>>()?
    } else if sink == "http" || (sink == "otlp" && a.otlp_file.is_none()) {
        // OSSA_HTTP_HEADERS: one header a line, blank lines and lines
        // starting with # skipped (as in --header-file).
        let text = a
            .header
            .into_iter()
            .map(|v| utf8("header", v))
            .collect::<Result<Vec<_>, _>>()?;
        text.iter()
            .flat_map(|v| v.lines())
            .filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#'))
            .map(|l| ("OSSA_HTTP_HEADERS".to_string(), l.to_string()))
            .collect()
    } else {
        Vec::new()
    };
    if let Some(file) = &a.header_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("emit: --header-file '{file}': {e}"))?;
        // Editors on Windows start a file with a byte order mark: it is
        // not part of the first header's name.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        for (i, l) in text.lines().enumerate() {
            let t = l.trim();
            if !t.is_empty() && !t.starts_with('#') {
                header_lines.push((format!("{file}:{}", i + 1), t.to_string()));
            }
        }
    }
    let mut headers = Vec::new();
    for (from, h) in header_lines {
        let (n, v) = h
            .split_once(':')
            .filter(|(n, _)| !n.trim().is_empty())
            .ok_or_else(|| {
                // A file or variable line may hold a secret: name where it
                // is, not what it says.
                if from == "--header" {
                    format!("emit: --header '{h}' is not 'Name: value'")
                } else {
                    format!("emit: header at {from} is not 'Name: value'")
                }
            })?;
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    // Read here, so that a file that cannot be read is a usage error
    // naming it, before anything is sent.
    let ca_cert = match &a.ca_cert {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| format!("emit: --ca-cert '{}': {e}", path.display()))?,
        ),
        None => None,
    };
    let source_given = a.source.is_some();
    let files_given = !a.files.is_empty();
    let s = Settings {
        url,
        mode: a.mode,
        brokers,
        topic,
        sink,
        key_field: a.key_field,
        headers,
        gzip: a.gzip,
        ca_cert,
        in_flight: a.in_flight,
        otlp_file: a.otlp_file,
        service_name: a.service_name,
        batch_size: a.batch_size.unwrap_or(EmitterBuilder::DEFAULT_BATCH_SIZE),
        timeout: a.timeout,
        deadline: a
            .deadline
            .unwrap_or(Duration::from_secs(DEFAULT_DEADLINE_SECS)),
        demo: a.demo,
        source: a.source.unwrap_or_else(|| DEFAULT_SOURCE.into()),
        progress: a.progress.wanted(),
        spool: a.spool,
        spool_mapped: a.spool_mapped,
        files: if a.files.is_empty() {
            vec!["-".into()]
        } else {
            a.files
        },
    };
    let empty = |v: Option<&str>| v.is_some_and(|v| v.trim().is_empty());
    for (name, v) in [
        ("--url", s.url.as_deref()),
        ("--brokers", s.brokers.as_deref()),
        ("--topic", s.topic.as_deref()),
        ("--key-field", s.key_field.as_deref()),
        ("--source", Some(s.source.as_str())),
    ] {
        if empty(v) {
            return Err(format!("emit: {name} needs a non-empty value"));
        }
    }
    match s.sink.as_str() {
        "stdout" => {}
        "http" if s.url.is_some() => {}
        "http" => return Err("emit: --sink http needs --url".into()),
        "kafka" if s.brokers.is_none() || s.topic.is_none() => {
            return Err("emit: --sink kafka needs --brokers and --topic".into())
        }
        "kafka" if !cfg!(feature = "kafka") => {
            return Err("emit: --sink kafka: this build has no kafka feature (build or install it with the cargo feature `kafka`)".into())
        }
        "kafka" => {}
        "otlp" if s.url.is_some() == s.otlp_file.is_some() => {
            return Err("emit: --sink otlp needs --url or --otlp-file (one of them)".into())
        }
        "otlp" => {}
        other => {
            return Err(format!(
                "emit: unknown sink '{other}': use stdout, http, kafka or otlp"
            ))
        }
    }
    let http_like = s.sink == "http" || s.sink == "otlp";
    if !http_like && (s.url.is_some() || !s.headers.is_empty() || s.gzip) {
        return Err(
            "emit: --url, --header, --header-file and --gzip go with --sink http or otlp".into(),
        );
    }
    if s.ca_cert.is_some() && !(s.sink == "http" || (s.sink == "otlp" && s.url.is_some())) {
        return Err("emit: --ca-cert goes with --sink http or otlp --url".into());
    }
    if s.sink != "http" && s.in_flight.is_some() {
        return Err("emit: --in-flight goes with --sink http".into());
    }
    // Stdout and a file have no request that could time out: the option
    // would be taken and do nothing.
    if s.sink == "stdout" && s.timeout.is_some() {
        return Err("emit: --timeout goes with --sink http, kafka or otlp --url".into());
    }
    if s.sink == "otlp"
        && s.otlp_file.is_some()
        && (!s.headers.is_empty() || s.gzip || s.timeout.is_some())
    {
        return Err(
            "emit: --header, --header-file, --gzip and --timeout go with --url, not --otlp-file"
                .into(),
        );
    }
    if s.sink != "otlp" && s.service_name.is_some() {
        return Err("emit: --service-name goes with --sink otlp".into());
    }
    if s.service_name
        .as_deref()
        .is_some_and(|n| n.trim().is_empty())
    {
        return Err("emit: --service-name must not be empty".into());
    }
    if s.sink != "otlp" && s.otlp_file.is_some() {
        return Err("emit: --otlp-file goes with --sink otlp".into());
    }
    if s.sink != "kafka" && (s.brokers.is_some() || s.topic.is_some() || s.key_field.is_some()) {
        return Err("emit: --brokers, --topic and --key-field go with --sink kafka".into());
    }
    if source_given && !s.demo {
        return Err(
            "emit: --source goes with --demo (events read from input keep their own source)".into(),
        );
    }
    if s.demo && files_given {
        return Err("emit: --demo sends the demo run: no FILE is read beside it".into());
    }
    // Standard input reads once: a second '-' would send nothing more.
    if s.files.iter().filter(|f| *f == "-").count() > 1 {
        return Err("emit: '-' (standard input) is given more than once".into());
    }
    if let Some(m) = &s.mode {
        match (s.sink.as_str(), m.as_str()) {
            ("http", "structured" | "binary" | "batched") | ("kafka", "structured" | "binary") => {}
            ("http", m) => {
                return Err(format!(
                    "emit: unknown mode '{m}': use structured, binary or batched"
                ));
            }
            ("kafka", m) => {
                return Err(format!(
                    "emit: unknown mode '{m}': use binary or structured"
                ));
            }
            _ => return Err("emit: --mode goes with --sink http or kafka".into()),
        }
    }
    Ok(s)
}

/// Runs `emit` with its parsed arguments; `m` is their matches (see
/// [`settings`]).
pub(crate) fn run(a: Args, m: &ArgMatches) -> ExitCode {
    let a = match settings(a, m) {
        Ok(a) => a,
        Err(e) => return super::usage_error(Some("emit"), &e),
    };
    let failures = Arc::new(AtomicU64::new(0));
    let f2 = failures.clone();
    // stdout's reader left (`| head`): nothing more can be delivered, and
    // an input that does not end (`tail -f`) would be read forever.
    let gone = Arc::new(AtomicBool::new(false));
    let g2 = gone.clone();
    let builder = Emitter::builder(a.source.clone())
        .batch_size(a.batch_size)
        .flush_interval(Duration::from_millis(200))
        .overflow(Overflow::Block(a.deadline))
        .shutdown_timeout(Duration::from_secs(5))
        .flush_timeout(a.deadline)
        .on_undelivered(move |u| {
            if matches!(u.error, ossa_events::Error::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe) {
                g2.store(true, Ordering::Relaxed);
            }
            if f2.fetch_add(1, Ordering::Relaxed) < 10 {
                note!(
                    "ossa-events: emit: event {} not delivered ({:?}): {}",
                    u.id,
                    u.reason,
                    u.error
                );
            }
        });
    let mut otlp_stats: Option<OtlpStats> = None;
    let builder = if a.sink == "kafka" {
        match kafka_sink(&a) {
            Ok(b) => builder.sink(b),
            Err(e) => return e,
        }
    } else if a.sink == "http" {
        let mode = match a.mode.as_deref() {
            Some("structured") => HttpMode::Structured,
            Some("binary") => HttpMode::Binary,
            _ => HttpMode::Batched,
        };
        let mut hs = HttpSink::builder(a.url.clone().unwrap_or_default())
            .mode(mode)
            .timeout(
                a.timeout
                    .unwrap_or(Duration::from_secs(DEFAULT_HTTP_TIMEOUT_SECS)),
            )
            .gzip(a.gzip)
            .max_batch(a.batch_size)
            .pipeline(a.in_flight.unwrap_or(DEFAULT_IN_FLIGHT));
        for (n, v) in &a.headers {
            hs = hs.header(n.clone(), v.clone());
        }
        if let Some(pem) = &a.ca_cert {
            hs = hs.root_certificates_pem(pem);
        }
        match hs.build() {
            Ok(s) => builder.sink(s),
            Err(e) => return super::usage_error(Some("emit"), &format!("emit: {e}")),
        }
    } else if a.sink == "otlp" {
        match otlp_sink(&a) {
            Ok(s) => {
                otlp_stats = Some(s.stats());
                builder.sink(s)
            }
            Err(e) => return e,
        }
    } else {
        // stdout that fails for a reason other than its reader leaving (a
        // full disk: ENOSPC, EIO) fails each batch once, as `cat` would,
        // instead of backing off before each of its ten tries: into
        // /dev/full, 200 events took 2.5 minutes, 30 000 over 11. Nor does
        // the circuit breaker hold the rest back after a few such failures
        // (it counts failed attempts, retried or not).
        builder
            .retry(ossa_events::RetryPolicy::default().max_attempts(1))
            .circuit_breaker(ossa_events::BreakerConfig::default().threshold(u32::MAX))
            .sink(WriterSink::stdout())
    };
    let builder = match &a.spool {
        Some(dir) => {
            // Past a file-size limit (`ulimit -f`) a write fails with EFBIG
            // and the kernel sends SIGXFSZ, whose default ends the process:
            // a handler (that does nothing) lets the spool see the error and
            // keep the event in memory instead.
            #[cfg(unix)]
            let _ = signal_hook::flag::register(
                signal_hook::consts::SIGXFSZ,
                Arc::new(std::sync::atomic::AtomicBool::new(false)),
            );
            builder.spool(ossa_events::spool::SpoolConfig::new(dir).mapped(a.spool_mapped))
        }
        None => builder,
    };
    let em = match builder.build() {
        Ok(em) => em,
        // The spool directory cannot be used (in use, not writable).
        Err(ossa_events::Error::Io(e)) => {
            note!("ossa-events: emit: spool: {e}");
            return ExitCode::from(super::EXIT_FAILURE);
        }
        Err(e @ ossa_events::Error::SpoolLocked(_)) => {
            note!("ossa-events: emit: spool: {e}");
            return ExitCode::from(super::EXIT_FAILURE);
        }
        Err(e) => return super::usage_error(Some("emit"), &format!("emit: {e}")),
    };

    let read = Arc::new(AtomicU64::new(0));
    let progress = {
        let (read, em) = (read.clone(), em.clone());
        Progress::start(a.progress, "emit", move || {
            let delivered = em.metrics().delivered;
            Snapshot {
                text: format!(
                    "read {} · delivered {delivered}",
                    read.load(Ordering::Relaxed)
                ),
                count: delivered,
            }
        })
    };
    let invalid = Arc::new(AtomicU64::new(0));
    // A second SIGINT/SIGTERM exits at once with the counts known so far.
    let (tx, rx) = signals::channel::<Input>(16);
    let summarized = Arc::new(AtomicBool::new(false));
    let stop = {
        let (em, read, invalid) = (em.clone(), read.clone(), invalid.clone());
        let (em1, tx1, deadline) = (em.clone(), tx.clone(), a.deadline);
        let done = summarized.clone();
        signals::watch(
            move |sig| {
                // Wake the main loop, and begin shutdown at once: emits
                // blocked on a full queue are refused, the worker delivers
                // what is in hand within --deadline.
                let _ = tx1.try_send(Input::Signal(sig));
                let em = em1.clone();
                let _ = std::thread::Builder::new()
                    .name("ossa-events-stop".into())
                    .spawn(move || em.shutdown_within(deadline));
            },
            move |sig| {
                if !done.swap(true, Ordering::SeqCst) {
                    let (r, i) = (
                        read.load(Ordering::Relaxed),
                        invalid.load(Ordering::Relaxed),
                    );
                    summary(&em, r, i, Some(sig));
                }
            },
        )
    };
    let signalled = || stop.as_ref().and_then(signals::Stop::signal);
    let mut stopped_by = None;
    // An input could not be read to its end: what it still held is not
    // counted.
    let mut input_failed = false;
    if a.demo {
        let r = demo::agent_run(&a.source, &SystemClock, &mut ossa_events::FastIds, |ev| {
            read.fetch_add(1, Ordering::Relaxed);
            em.emit_event(ev)
        });
        if let Err(e) = r {
            note!("ossa-events: emit: {e}");
        }
    } else {
        // Lines are read on a thread of their own, so that a signal stops
        // the emitting at once even while stdin blocks.
        let files = a.files.clone();
        let reader = std::thread::Builder::new()
            .name("ossa-events-input".into())
            .spawn(move || read_lines(&files, &tx));
        if let Err(e) = reader {
            note!("ossa-events: emit: cannot start the input reader: {e}");
        }
        let names: Vec<_> = a.files.iter().map(|f| input_name(f)).collect();
        let names = &names;
        // Chunks of lines are parsed on every core at once; each chunk's
        // events are then emitted (and its bad lines reported) in its turn,
        // so they keep the input's order.
        // The input file being read and its lines numbered so far, and the
        // signal that stopped the reading.
        let state = Mutex::new((0usize, 0u64, None::<i32>));
        let read_failed = AtomicBool::new(false);
        let failed_flag = &read_failed;
        // An event waited the whole --deadline for room in the full queue
        // and was dropped: the sink took nothing in that time. Every later
        // line would wait --deadline again before being dropped (20 000
        // lines past a full queue are 70 days at the default 300 s), so
        // the reading stops, as when stdout's reader is gone.
        let stalled = AtomicBool::new(false);
        let stalled = &stalled;
        let mut ended = false;
        let shared = &state;
        // Takes the receiver: a `&Receiver` cannot go to another thread.
        let gone = &*gone;
        let next = move || {
            loop {
                if ended
                    || lock(shared).2.is_some()
                    || gone.load(Ordering::Relaxed)
                    || stalled.load(Ordering::Relaxed)
                {
                    return None;
                }
                match rx.recv() {
                    Ok(Input::Lines(file, chunk)) => return Some((file, chunk)),
                    Ok(Input::Signal(sig)) => lock(shared).2 = Some(sig),
                    // The reader goes on with the next file.
                    Ok(Input::ReadFailed) => {
                        failed_flag.store(true, Ordering::Relaxed);
                        continue;
                    }
                    Ok(Input::End) | Err(_) => {}
                }
                ended = true;
                return None;
            }
        };
        super::lanes::in_order(
            super::lanes::lanes(),
            next,
            |(file, chunk): (usize, Chunk), w| {
                let Chunk {
                    bytes: chunk,
                    too_long,
                } = chunk;
                // Each line unescapes into its own part of one buffer, at most
                // its own length: the chunk's events all stay alive together.
                let mut buf = vec![0u8; chunk.len()];
                let mut scratch = Scratch::new(&mut buf);
                // Sized up front: an event is ~800 bytes, and growing the list
                // (copying them) took 3 % of `emit`'s time.
                let lines = memchr::memchr_iter(b'\n', &chunk).count() + 1;
                let mut parsed: Vec<Option<Result<Line<'_>, LineError>>> =
                    Vec::with_capacity(lines);
                parsed.extend(lines_of(&chunk).enumerate().map(|(i, line)| {
                    if too_long.contains(&i) {
                        return Some(Err(LineError::TooLong));
                    }
                    let text = line.strip_suffix(b"\n").unwrap_or(line);
                    let text = text.strip_suffix(b"\r").unwrap_or(text);
                    (!super::validate::is_blank(text)).then(|| parse_line(text, &mut scratch))
                }));
                let _turn = w.turn();
                let mut st = lock(&state);
                let (reading, lineno, stopped) = &mut *st;
                if *reading != file {
                    // The first lines of the next file.
                    *reading = file;
                    *lineno = 0;
                }
                let name = names.get(file).map_or("<input>", |n| n.as_ref());
                for p in parsed {
                    if stopped.is_some()
                        || gone.load(Ordering::Relaxed)
                        || stalled.load(Ordering::Relaxed)
                    {
                        return;
                    }
                    if let Some(sig) = signalled() {
                        *stopped = Some(sig);
                        return;
                    }
                    *lineno += 1;
                    let Some(p) = p else { continue }; // blank
                    // Refusals are counted by the emitter and reported by the callback.
                    let emit = |ev: &Event<'_>| {
                        read.fetch_add(1, Ordering::Relaxed);
                        if let Err(ossa_events::Error::QueueFull) = em.emit_event(ev) {
                            stalled.store(true, Ordering::Relaxed);
                        }
                    };
                    match p {
                        Ok(Line::One(ev)) => emit(&ev),
                        Ok(Line::Batch(events)) => {
                            for ev in &events {
                                // A stall stops the reading here, mid-batch:
                                // the events left are not read.
                                if stalled.load(Ordering::Relaxed) || gone.load(Ordering::Relaxed) {
                                    return;
                                }
                                emit(ev);
                            }
                        }
                        Err(e) => {
                            read.fetch_add(1, Ordering::Relaxed);
                            invalid.fetch_add(1, Ordering::Relaxed);
                            note!("ossa-events: emit: {name}:{lineno}{}: {e}", e.column());
                        }
                    }
                }
            },
        );
        stopped_by = lock(&state).2;
        input_failed = read_failed.load(Ordering::Relaxed);
        if stalled.load(Ordering::Relaxed) && stopped_by.is_none() {
            note!(
                "ossa-events: emit: the sink took no event for --deadline ({} s): the rest of the input is not read",
                a.deadline.as_secs_f64()
            );
        }
    }
    let mut stopped_by = stopped_by.or_else(signalled);
    if stopped_by.is_none() {
        // Everything is read: deliver what is pending within --deadline (a
        // flush then a shutdown would allow --deadline plus the shutdown
        // timeout).
        let _ = em.shutdown_within(a.deadline);
        stopped_by = signalled();
    } else {
        // Stopped by a signal: what is in hand gets `--deadline`, then is
        // counted as not delivered (never claimed delivered).
        let _ = em.shutdown_within(a.deadline);
    }
    progress.finish();
    let read = read.load(Ordering::Relaxed);
    let invalid = invalid.load(Ordering::Relaxed);
    if summarized.swap(true, Ordering::SeqCst) {
        // A second signal printed the summary and is ending the process.
        std::thread::park();
    }
    let m = summary(&em, read, invalid, stopped_by);
    // The OTLP sink sends its open spans when the emitter drops it, within
    // its shutdown timeout.
    let lost_spans = otlp_stats.map_or(0, |st| {
        st.wait_closed(otlp_close_limit(a.deadline) + Duration::from_secs(1));
        let c = st.get();
        note!(
            "emit: otlp: spans {} (unfinished {}, evicted {}), span events {}, lost {}",
            c.spans,
            c.unfinished,
            c.evicted,
            c.span_events,
            c.lost
        );
        c.lost
    });
    if let Some(sig) = stopped_by {
        return ExitCode::from(signals::exit_code(sig));
    }
    let undelivered = m.failed + m.shutdown_timeout + m.dropped + m.rejected + m.spooled;
    if !input_failed
        && invalid == 0
        && m.delivered == read + m.replayed
        && undelivered == 0
        && lost_spans == 0
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILURE)
    }
}

/// What the input reader and the signal watcher tell `emit`'s main loop.
enum Input {
    /// Whole lines (each ends in `\n`, but the last line of a file may
    /// not), as many as one read brought in, of the input file at this
    /// index.
    Lines(usize, Chunk),
    End,
    /// A file could not be opened, or a read of it failed (said on
    /// stderr): the rest of it was not read.
    ReadFailed,
    Signal(i32),
}

/// A line of `emit`'s input, read.
// Nearly every line is `One`: boxing it would cost an allocation an event
// and save nothing.
#[allow(clippy::large_enum_variant)]
enum Line<'a> {
    One(Event<'a>),
    /// A JSON batch (an array of events), as `BatchFormat::JsonBatch`
    /// writes them, one a line.
    Batch(Vec<Event<'a>>),
}

/// Reads one line of input: an event, or a JSON batch whose every element
/// is one (an element that is not fails the whole line, so nothing of a
/// line goes out unless all of it can).
fn parse_line<'s>(text: &'s [u8], scratch: &mut Scratch<'s>) -> Result<Line<'s>, LineError> {
    use ossa_events::parse::json::{BatchParser, looks_like_batch, parse_event};
    if !looks_like_batch(text) {
        return parse_event(text, scratch)
            .map(Line::One)
            .map_err(LineError::Parse);
    }
    let mut batch = BatchParser::new(text).map_err(LineError::Parse)?;
    let mut events = Vec::new();
    while let Some(ev) = batch.next_event_in(scratch) {
        events.push(ev.map_err(LineError::Parse)?);
    }
    Ok(Line::Batch(events))
}

/// Why a line of `emit`'s input is no event (`validate` says
/// [`LineError::TooLong`] in the same words).
pub(super) enum LineError {
    Parse(ParseError),
    /// Longer than [`MAX_LINE`] bytes: not read.
    TooLong,
}

impl LineError {
    /// `:COLUMN` (1-based, in bytes, as `validate` counts it) of a JSON
    /// syntax error, for the `<stdin>:LINE:COLUMN` of its report; empty
    /// for an error of the whole line.
    fn column(&self) -> String {
        match self {
            LineError::Parse(ParseError::Json(j)) => format!(":{}", j.offset + 1),
            _ => String::new(),
        }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::Parse(e) => e.fmt(f),
            LineError::TooLong => write!(f, "line longer than {MAX_LINE} bytes: not read"),
        }
    }
}

/// Bytes stdin is read in. A read hands over every whole line it brought
/// in, in one message: at this size a message holds about 150 events of
/// 420 bytes, so the reader and the main loop meet once per 150 lines, not
/// once per line, while a slow writer's lines still go on at once.
const READ_CHUNK: usize = 64 * 1024;

/// How `emit` names input `f` in what it says: `<stdin>` for `-`.
fn input_name(f: &OsStr) -> std::borrow::Cow<'_, str> {
    if f == "-" {
        "<stdin>".into()
    } else {
        f.to_string_lossy()
    }
}

/// Reads each of `files` in turn (`-` is stdin) into `tx`, to its end: every
/// read's whole lines as one message (with the file's index in `files`), a
/// line cut by the read kept for the next. A file that cannot be opened, or
/// a read that fails, is said once and sent as [`Input::ReadFailed`]; the
/// next file is read. Then [`Input::End`].
fn read_lines(files: &[OsString], tx: &std::sync::mpsc::SyncSender<Input>) {
    for (i, f) in files.iter().enumerate() {
        let send = |lines| tx.send(Input::Lines(i, lines)).is_ok();
        let read = if f == "-" {
            let stdin = std::io::stdin();
            read_chunks(&mut super::SkipBom::new(stdin.lock()), MAX_LINE, send)
        } else {
            match std::fs::File::open(f) {
                Ok(file) => read_chunks(&mut super::SkipBom::new(file), MAX_LINE, send),
                Err(e) => {
                    note!("ossa-events: emit: {}: {e}; not read", input_name(f));
                    if tx.send(Input::ReadFailed).is_err() {
                        return;
                    }
                    continue;
                }
            }
        };
        match read {
            Ok(true) => {}
            // The main loop stopped: nothing more is read.
            Ok(false) => return,
            Err(e) => {
                note!(
                    "ossa-events: emit: {}: {e}; the rest of this input is not read",
                    input_name(f)
                );
                if tx.send(Input::ReadFailed).is_err() {
                    return;
                }
            }
        }
    }
    let _ = tx.send(Input::End);
}

/// Longest line `emit` reads, in bytes: a line held whole while it grows
/// without end (a file with no newline piped in by mistake) would take all
/// memory. A longer line is not kept: it is reported as invalid, and the
/// lines after it are read. 64 MiB is far past what collectors take (a
/// Kafka broker's default is 1 MB, the CloudEvents spec asks intermediaries
/// to forward 64 KB); an event that long and one of 100 MiB are the same
/// mistake.
pub(super) const MAX_LINE: usize = 64 * 1024 * 1024;

/// Whole lines of the input, in order, as one read brought them in.
#[derive(Default)]
pub(super) struct Chunk {
    /// The lines, each with its `\n` (the input's last may lack it).
    pub(super) bytes: Vec<u8>,
    /// Lines of `bytes` (by index) that stand for a line over [`MAX_LINE`]
    /// bytes: an empty line in its place, its bytes not kept.
    pub(super) too_long: Vec<usize>,
}

/// Reads `input` to its end, handing `send` whole lines: what each read
/// brought up to its last `\n` (and, at the end, a last line without one),
/// as [`LineChunks`] cuts them. Stops early when `send` says the receiver is
/// gone (then `Ok(false)`). A read error ends it (the line it cut is not
/// handed over: it is not whole).
fn read_chunks(
    input: &mut impl std::io::Read,
    max_line: usize,
    mut send: impl FnMut(Chunk) -> bool,
) -> std::io::Result<bool> {
    let mut chunks = LineChunks::new(max_line, READ_CHUNK);
    while let Some(chunk) = chunks.next(input)? {
        if !send(chunk) {
            return Ok(false); // the main loop stopped
        }
    }
    Ok(true)
}

/// Cuts an input into [`Chunk`]s of whole lines, one read at a time, with
/// lines over a limit dropped as they are read (`emit` and `validate` both
/// read JSON Lines through it, so both keep a line to the same bound).
///
/// A line that grows past `max_line` bytes ([`MAX_LINE`]; at least the
/// read size: a line within one read is not measured) is dropped as it is
/// read and handed over as an empty line marked in [`Chunk::too_long`].
/// Each read goes into the buffer that is handed over, after the start of
/// a line the last read cut: only that start is copied, not every line
/// (a copy of each read cost `validate` about a tenth more CPU).
pub(super) struct LineChunks {
    /// The start of a line a read cut (no newline in it), then what the
    /// next read brings: its first `valid` bytes. The rest is room for
    /// reads, zeroed once, not before every read (a read of one line
    /// zeroed 64 KiB).
    pending: Vec<u8>,
    valid: usize,
    read_size: usize,
    /// The line being read is over `max_line`: its bytes are dropped up to
    /// its end.
    skipping: bool,
    max_line: usize,
    /// The input's end was reached (and its last line handed over).
    ended: bool,
}

impl LineChunks {
    /// Lines of at most `max_line` bytes, read `read_size` bytes at a time.
    pub(super) fn new(max_line: usize, read_size: usize) -> LineChunks {
        LineChunks {
            pending: Vec::new(),
            valid: 0,
            read_size,
            skipping: false,
            max_line,
            ended: false,
        }
    }

    /// The whole lines the next read (or reads: one that ends no line
    /// hands over nothing) brought in; `None` at the end of `input`. A read
    /// error is returned as it is (the line it cut is not handed over).
    pub(super) fn next(
        &mut self,
        input: &mut impl std::io::Read,
    ) -> std::io::Result<Option<Chunk>> {
        while !self.ended {
            let carry = self.valid;
            if self.pending.len() < carry + self.read_size {
                self.pending.resize(carry + self.read_size, 0);
            }
            let room = self.pending.get_mut(carry..carry + self.read_size);
            let n = match input.read(room.unwrap_or_default()) {
                Ok(0) => {
                    self.ended = true;
                    self.pending.truncate(carry);
                    return Ok(if self.skipping {
                        Some(Chunk {
                            bytes: b"\n".to_vec(),
                            too_long: vec![0],
                        })
                    } else if !self.pending.is_empty() {
                        Some(Chunk {
                            bytes: std::mem::take(&mut self.pending),
                            too_long: Vec::new(),
                        })
                    } else {
                        None
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.valid = carry + n;
            let mut too_long = Vec::new();
            // The handed-over lines are `pending[start..end]`; only the
            // bytes this read brought (from `fresh`) are searched.
            let (mut start, mut fresh) = (0, carry);
            if self.skipping {
                // `pending` holds only this read: the carry was dropped.
                let read = self.pending.get(..self.valid).unwrap_or_default();
                let Some(nl) = memchr::memchr(b'\n', read) else {
                    self.valid = 0;
                    continue;
                };
                self.skipping = false;
                // Its newline stands for it: an empty line, marked.
                too_long.push(0);
                (start, fresh) = (nl, nl + 1);
            }
            let tail = self.pending.get(fresh..self.valid).unwrap_or_default();
            let end = match memchr::memrchr(b'\n', tail) {
                Some(last) => {
                    // The line the carry begins ends in this read: over the
                    // limit with what this read adds (the carry alone was
                    // not), it is dropped as one that grew past it is.
                    let first = fresh + memchr::memchr(b'\n', tail).unwrap_or(last);
                    if too_long.is_empty() && first > self.max_line {
                        too_long.push(0);
                        start = first;
                    }
                    fresh + last + 1
                }
                // No line ends here: all of it is carried, but for the
                // newline that ended a line too long.
                None if too_long.is_empty() => 0,
                None => fresh,
            };
            let mut chunk = Chunk {
                bytes: Vec::new(),
                too_long,
            };
            if end > 0 && end * 4 < self.pending.len() {
                // A few lines (a slow writer's): copied out, the buffer kept.
                let lines = self.pending.get(start..end).unwrap_or_default();
                chunk.bytes = lines.to_vec();
                self.pending.copy_within(end..self.valid, 0);
                self.valid -= end;
            } else if end > 0 {
                // A read's worth: the buffer itself is handed over, and
                // the start of the line it cut goes on in a new one.
                let rest = self.pending.get(end..self.valid).unwrap_or_default();
                let rest = rest.to_vec();
                self.valid = rest.len();
                let mut bytes = std::mem::replace(&mut self.pending, rest);
                bytes.truncate(end);
                if start > 0 {
                    // Only after a line too long: what it left is dropped.
                    bytes.drain(..start);
                }
                chunk.bytes = bytes;
            }
            if self.valid > self.max_line {
                self.pending = Vec::new();
                self.valid = 0;
                self.skipping = true;
            }
            if !chunk.bytes.is_empty() {
                return Ok(Some(chunk));
            }
        }
        Ok(None)
    }
}

/// The lines of `chunk`, each with its `\n` (the last may lack it).
pub(super) fn lines_of(chunk: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', chunk);
    std::iter::from_fn(move || {
        let end = ends.next().map_or(chunk.len(), |nl| nl + 1);
        let line = chunk.get(start..end).filter(|l| !l.is_empty())?;
        start = end;
        Some(line)
    })
}

/// Prints `emit`'s summary line (and, when a signal stopped it, what was
/// left unconfirmed); returns the metrics it printed.
fn summary(em: &Emitter, read: u64, invalid: u64, signal: Option<i32>) -> ossa_events::Metrics {
    let m = em.metrics();
    note!(
        "emit: read {read}, delivered {}, retried {}, failed {}, dropped {}, invalid {invalid}",
        m.delivered,
        m.retried,
        m.failed + m.shutdown_timeout,
        m.dropped + m.rejected
    );
    if m.replayed > 0 || m.spooled > 0 || m.spool_errors > 0 || m.spool_corrupt > 0 {
        note!(
            "emit: spool: replayed {} from an earlier run, {} left for the next run, {} write errors, {} corrupt records skipped",
            m.replayed,
            m.spooled,
            m.spool_errors,
            m.spool_corrupt
        );
    }
    if let Some(sig) = signal {
        note!(
            "emit: stopped by {}: {} not confirmed delivered ({} given up at the deadline, {} still in hand)",
            signals::name(sig),
            m.shutdown_timeout + m.queue_depth,
            m.shutdown_timeout,
            m.queue_depth
        );
    }
    m
}

/// How long the OTLP sink may take at the end to send the spans still open:
/// its default, or `--deadline` when that is shorter.
fn otlp_close_limit(deadline: Duration) -> Duration {
    deadline.min(ossa_events::sink::otlp::DEFAULT_SHUTDOWN_TIMEOUT)
}

/// The OTLP sink `a` asks for: to `--url`, or into `--otlp-file`.
fn otlp_sink(a: &Settings) -> Result<OtlpSink, ExitCode> {
    let b = match &a.otlp_file {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => OtlpSink::to_writer(std::io::BufWriter::new(f)),
            Err(e) => {
                note!("ossa-events: emit: --otlp-file '{}': {e}", path.display());
                return Err(ExitCode::from(super::EXIT_FAILURE));
            }
        },
        None => {
            let mut b = OtlpSink::builder(a.url.as_deref().unwrap_or_default())
                .timeout(
                    a.timeout
                        .unwrap_or(Duration::from_secs(DEFAULT_HTTP_TIMEOUT_SECS)),
                )
                .gzip(a.gzip);
            for (n, v) in &a.headers {
                b = b.header(n.clone(), v.clone());
            }
            match &a.ca_cert {
                Some(pem) => b.root_certificates_pem(pem),
                None => b,
            }
        }
    };
    let b = match &a.service_name {
        Some(name) => b.service_name(name.clone()),
        None => b,
    };
    b.max_batch(a.batch_size)
        .shutdown_timeout(otlp_close_limit(a.deadline))
        .build()
        .map_err(|e| super::usage_error(Some("emit"), &format!("emit: {e}")))
}

/// The Kafka sink `a` asks for.
#[cfg(feature = "kafka")]
fn kafka_sink(a: &Settings) -> Result<ossa_events::sink::KafkaSink, ExitCode> {
    use ossa_events::sink::{KafkaMode, KafkaSink};
    let mode = match a.mode.as_deref() {
        Some("structured") => KafkaMode::Structured,
        _ => KafkaMode::Binary,
    };
    let mut ks = KafkaSink::builder(
        a.brokers.as_deref().unwrap_or_default(),
        a.topic.as_deref().unwrap_or_default(),
    )
    .mode(mode)
    .client_id("ossa-events-emit")
    .max_batch(a.batch_size);
    if let Some(k) = &a.key_field {
        ks = ks.key_field(k.clone());
    }
    ks = ks.delivery_timeout(
        a.timeout
            .unwrap_or(Duration::from_secs(DEFAULT_KAFKA_TIMEOUT_SECS)),
    );
    ks.build()
        .map_err(|e| super::usage_error(Some("emit"), &format!("emit: {e}")))
}

/// Without the `kafka` feature there is no Kafka sink (refused by `parse_args`).
#[cfg(not(feature = "kafka"))]
fn kafka_sink(_: &Settings) -> Result<WriterSink<std::io::Stdout>, ExitCode> {
    Err(super::usage_error(
        Some("emit"),
        "emit: --sink kafka: this build has no kafka feature (build or install it with the cargo feature `kafka`)",
    ))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A reader that gives at most `step` bytes per read (also for the
    /// other commands' tests).
    pub(in crate::cli) struct Trickle<'a>(pub(in crate::cli) &'a [u8], pub(in crate::cli) usize);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            let (head, rest) = self.0.split_at(n);
            buf[..n].copy_from_slice(head);
            self.0 = rest;
            Ok(n)
        }
    }

    /// Every line arrives whole, once, in order, whatever the reads cut,
    /// and a last line without a newline is kept.
    #[test]
    fn chunks_hold_whole_lines() {
        let mut input = Vec::new();
        for i in 0..3_000 {
            input.extend_from_slice(format!("line {i} {}\n", "y".repeat(i % 500)).as_bytes());
        }
        input.extend_from_slice(b"last without newline");
        for step in [1, 7, 4096, READ_CHUNK, usize::MAX] {
            let mut lines: Vec<Vec<u8>> = Vec::new();
            read_chunks(&mut Trickle(&input, step), MAX_LINE, |chunk| {
                assert!(
                    chunk.bytes.ends_with(b"\n") || chunk.bytes.ends_with(b"newline"),
                    "a chunk ends inside a line"
                );
                assert!(chunk.too_long.is_empty());
                lines.extend(lines_of(&chunk.bytes).map(<[u8]>::to_vec));
                true
            })
            .unwrap();
            assert_eq!(lines.concat(), input, "step {step}");
            assert_eq!(lines.len(), 3_001, "step {step}");
        }
        assert_eq!(lines_of(b"").count(), 0);
        assert_eq!(lines_of(b"\n\n").collect::<Vec<_>>(), [b"\n", b"\n"]);
    }

    /// A line limit for the tests (the real one is 64 MiB; `read_chunks`
    /// wants one over a read, as a line within one read is not measured).
    const LIMIT: usize = 3 * READ_CHUNK + 5;

    /// A line that grows past the limit is not kept: it comes as an empty
    /// line marked too long, in its place, and the lines around it whole;
    /// so too when it is the input's last, without a newline.
    #[test]
    fn a_line_over_the_limit_is_dropped_as_it_is_read() {
        let long = vec![b'x'; 3 * LIMIT + 7];
        for last in [false, true] {
            let mut input = b"first\n".to_vec();
            input.extend_from_slice(&long);
            if !last {
                input.extend_from_slice(b"\nafter\nend");
            }
            for step in [1, 4096, READ_CHUNK, usize::MAX] {
                let mut lines: Vec<Vec<u8>> = Vec::new();
                let mut marked = Vec::new();
                let mut biggest = 0;
                read_chunks(&mut Trickle(&input, step), LIMIT, |chunk| {
                    biggest = biggest.max(chunk.bytes.len());
                    let at = lines.len();
                    marked.extend(chunk.too_long.iter().map(|i| at + i));
                    lines.extend(lines_of(&chunk.bytes).map(<[u8]>::to_vec));
                    true
                })
                .unwrap();
                let want: &[&[u8]] = if last {
                    &[b"first\n", b"\n"]
                } else {
                    &[b"first\n", b"\n", b"after\n", b"end"]
                };
                assert_eq!(lines, want, "step {step}");
                assert_eq!(marked, [1], "step {step}");
                assert!(
                    biggest < 2 * READ_CHUNK,
                    "step {step}: a chunk of {biggest}"
                );
            }
        }
    }

    /// A line just over the limit whose newline comes in the read that
    /// takes it over (the carry itself never passed the limit) is dropped
    /// too, whatever the reads cut: it was handed over whole, so the same
    /// input was sent or refused depending on where the pipe's reads fell.
    #[test]
    fn a_line_just_over_the_limit_is_dropped_whatever_the_reads_cut() {
        for over in [1, 10, 1000] {
            let mut input = b"first\n".to_vec();
            input.extend_from_slice(&vec![b'x'; LIMIT + over]);
            input.extend_from_slice(b"\nafter\n");
            for step in [1, 4096, 65_000, READ_CHUNK] {
                let mut lines: Vec<Vec<u8>> = Vec::new();
                let mut marked = Vec::new();
                read_chunks(&mut Trickle(&input, step), LIMIT, |chunk| {
                    let at = lines.len();
                    marked.extend(chunk.too_long.iter().map(|i| at + i));
                    lines.extend(lines_of(&chunk.bytes).map(<[u8]>::to_vec));
                    true
                })
                .unwrap();
                let lens: Vec<usize> = lines.iter().map(Vec::len).collect();
                assert_eq!(lens, [6, 1, 6], "over {over}, step {step}");
                assert_eq!(marked, [1], "over {over}, step {step}");
            }
        }
        // A line of exactly the limit is kept.
        let mut input = vec![b'y'; LIMIT];
        input.extend_from_slice(b"\nafter\n");
        let mut lines = 0;
        read_chunks(&mut Trickle(&input, 4096), LIMIT, |chunk| {
            assert!(chunk.too_long.is_empty());
            lines += lines_of(&chunk.bytes).count();
            true
        })
        .unwrap();
        assert_eq!(lines, 2);
    }

    /// The defaults the help states are the ones used.
    #[test]
    fn help_defaults_match_the_library() {
        let h = super::super::help_of("emit");
        assert!(h.contains(&format!(
            "[default: {}]",
            EmitterBuilder::DEFAULT_BATCH_SIZE
        )));
        assert!(h.contains(&format!("[default: {DEFAULT_DEADLINE_SECS}]")));
        assert!(h.contains(&format!("[default: {DEFAULT_HTTP_TIMEOUT_SECS}]")));
        assert!(h.contains(&format!("[default: {DEFAULT_KAFKA_TIMEOUT_SECS}]")));
        assert!(h.contains(&format!("[default: {DEFAULT_SOURCE}]")));
        assert!(h.contains(&format!("[default: {DEFAULT_IN_FLIGHT}]")));
        assert!(h.contains(&format!("1 to {MAX_IN_FLIGHT}")));
        assert!(h.contains(&format!("1 to {MAX_BATCH_SIZE}")));
        #[cfg(feature = "http")]
        assert_eq!(
            ossa_events::sink::http::DEFAULT_TIMEOUT,
            Duration::from_secs(DEFAULT_HTTP_TIMEOUT_SECS)
        );
        #[cfg(feature = "kafka")]
        assert_eq!(
            ossa_events::sink::kafka::DEFAULT_DELIVERY_TIMEOUT,
            Duration::from_secs(DEFAULT_KAFKA_TIMEOUT_SECS)
        );
        assert_eq!(super::super::demo::DEFAULT_SOURCE, DEFAULT_SOURCE);
    }
}
