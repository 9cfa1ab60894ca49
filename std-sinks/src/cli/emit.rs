//! `ossa-events emit`: deliver JSON Lines events (or the demo run) to a sink.

use std::ffi::OsString;
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ossa_events::sink::{HttpMode, HttpSink, WriterSink};
use ossa_events::{Emitter, EmitterBuilder, Overflow, Scratch, SystemClock, demo};

use super::args::{Command, Opt, Parsed, parse_count, parse_secs};
use super::progress::{NO_PROGRESS_OPT, PROGRESS_OPT, Progress, Snapshot, note};
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
/// Largest `--timeout` and `--deadline`, in seconds (one day).
const MAX_SECS: f64 = 86_400.0;

/// `emit`'s arguments and help.
pub(crate) static CMD: Command = Command {
    name: "emit",
    about: "\
Deliver CloudEvents to a sink: JSON Lines read from stdin (one event per line,
attributes, extensions and data sent as given), or the demo agent run.",
    usage: &[
        "emit [--sink stdout] [OPTIONS] < events.jsonl",
        "emit --sink http --url URL [--mode structured|binary|batched] [--header HEADER]... [--gzip] [OPTIONS]",
        "emit --sink kafka --brokers BROKERS --topic T [--mode binary|structured] [--key-field ATTR] [OPTIONS]",
        "emit --demo [--source URI-REF] [--sink ...] [OPTIONS]",
    ],
    details: "\
Invalid input lines are reported on stderr with their line number, counted and
not sent; blank lines are skipped. Events not delivered are reported on stderr
(the first 10) with their id and reason.

While it runs, a progress line on stderr shows what was read and delivered and
the rate (redrawn every 250 ms, cleared at the end), when stderr is a terminal.
At the end a summary line goes to stderr:
  emit: read N, delivered N, retried N, failed N, dropped N, invalid N",
    opts: &[
        Opt::value(
            "--sink",
            "SINK",
            "stdout (JSON Lines), http or kafka [default: stdout]",
        ),
        Opt::value(
            "--url",
            "URL",
            "Collector URL, http:// or https://\n(required with --sink http)",
        )
        .env("OSSA_COLLECTOR_URL"),
        Opt::value(
            "--mode",
            "MODE",
            "Content mode; http: structured, binary or batched\n\
             [default: batched]; kafka: binary or structured\n\
             [default: binary]",
        ),
        Opt::value(
            "--header",
            "HEADER",
            "Extra HTTP header 'Name: value' (repeatable),\n\
             e.g. --header 'Authorization: Bearer …'; when none\n\
             is given the variable is read, one header a line (a\n\
             token there stays out of ps and shell history)",
        )
        .repeatable()
        .env("OSSA_HTTP_HEADERS"),
        Opt::value(
            "--header-file",
            "FILE",
            "HTTP headers from FILE, one 'Name: value' a line\n\
             (blank lines and lines starting with # skipped)",
        ),
        Opt::switch("--gzip", "Gzip HTTP request bodies"),
        Opt::value(
            "--brokers",
            "BROKERS",
            "Kafka bootstrap servers, e.g. 127.0.0.1:9092\n(required with --sink kafka)",
        )
        .env("OSSA_KAFKA_BROKERS"),
        Opt::value("--topic", "T", "Kafka topic (required with --sink kafka)")
            .env("OSSA_KAFKA_TOPIC"),
        Opt::value(
            "--key-field",
            "ATTR",
            "Kafka record key: this attribute's value when the event\n\
             has no partitionkey extension (which is used first)",
        ),
        Opt::value(
            "--batch-size",
            "N",
            "Events per batch, 1 to 10000 [default: 100]",
        ),
        Opt::value(
            "--timeout",
            "SECS",
            "http: request timeout [default: 10]; kafka: delivery\n\
             timeout [default: 30] (fractions allowed, at most 86400)",
        ),
        Opt::value(
            "--deadline",
            "SECS",
            "Give up on what is not delivered after this long\n\
             (fractions allowed, at most 86400) [default: 300]",
        ),
        Opt::switch(
            "--demo",
            "Send the demo agent run (15 events) instead of\nreading stdin",
        ),
        Opt::value(
            "--source",
            "URI-REF",
            "Source of the demo events (with --demo)\n[default: /ossa/demo/researcher]",
        ),
        PROGRESS_OPT,
        NO_PROGRESS_OPT,
    ],
    positional: None,
    conflicts: &[("--progress", "--no-progress")],
    footer: "\
--url, --header and --gzip go with --sink http; --brokers, --topic and
--key-field with --sink kafka; --mode with http or kafka.

Environment: with --sink http, HTTPS_PROXY, HTTP_PROXY, ALL_PROXY (or their
lower-case forms) name a proxy and NO_PROXY the hosts that bypass it.

SIGINT or SIGTERM stops reading: what is in hand gets --deadline, then the
summary is printed (delivered counts only what the sink confirmed) and emit
exits 130 (143 for SIGTERM). A second signal exits at once with the counts
so far.

Exit status: 0 only when every event was delivered; 1 otherwise (invalid
lines, events failed or dropped); 2 on bad arguments (or --sink kafka in a
build without the kafka feature); 130/143 when stopped by SIGINT/SIGTERM.

Examples:
  ossa-events emit --demo
  ossa-events emit --sink http --url http://127.0.0.1:8080/ < events.jsonl
  ossa-events emit --sink http --url https://collector.example/events --mode binary \\
      --header 'Authorization: Bearer TOKEN' --gzip < events.jsonl
  ossa-events emit --sink kafka --brokers 127.0.0.1:9092 --topic agent-events --demo",
};

#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
struct Args {
    sink: String,
    url: Option<String>,
    mode: Option<String>,
    brokers: Option<String>,
    topic: Option<String>,
    key_field: Option<String>,
    headers: Vec<(String, String)>,
    gzip: bool,
    batch_size: usize,
    timeout: Option<Duration>,
    deadline: Duration,
    demo: bool,
    source: String,
    progress: bool,
}

/// The checked arguments, or a one-line error.
fn parse_args(p: &Parsed) -> Result<Args, String> {
    let opt = |n: &str| p.value(n).map(str::to_string);
    let sink = opt("--sink").unwrap_or_else(|| "stdout".into());
    // Environment variables stand in for the options of the sink in use only:
    // a collector URL in the environment does not make `--sink stdout` fail.
    let for_sink = |name: &str, wanted: &str| {
        if sink == wanted {
            p.value_or_env(name)
        } else {
            opt(name)
        }
    };
    let mut header_lines: Vec<(String, String)> = p
        .values("--header")
        .into_iter()
        .map(|h| ("--header".to_string(), h.to_string()))
        .collect();
    if sink == "http"
        && !p.has("--header")
        && let Ok(env) = std::env::var("OSSA_HTTP_HEADERS")
    {
        header_lines.extend(
            env.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| ("OSSA_HTTP_HEADERS".to_string(), l.to_string())),
        );
    }
    if let Some(file) = p.value("--header-file") {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("emit: --header-file '{file}': {e}"))?;
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
    let batch_size = match p.value("--batch-size") {
        None => EmitterBuilder::DEFAULT_BATCH_SIZE,
        Some(v) => parse_count(v, 1, MAX_BATCH_SIZE)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                format!("emit: --batch-size must be a number from 1 to {MAX_BATCH_SIZE}, not '{v}'")
            })?,
    };
    let secs = |name: &str| -> Result<Option<Duration>, String> {
        p.value(name)
            .map(|v| {
                parse_secs(v, MAX_SECS).ok_or_else(|| {
                    format!(
                        "emit: {name} must be a number of seconds above 0 and at most {MAX_SECS}, not '{v}'"
                    )
                })
            })
            .transpose()
    };
    let a = Args {
        url: for_sink("--url", "http"),
        mode: opt("--mode"),
        brokers: for_sink("--brokers", "kafka"),
        topic: for_sink("--topic", "kafka"),
        sink,
        key_field: opt("--key-field"),
        headers,
        gzip: p.has("--gzip"),
        batch_size,
        timeout: secs("--timeout")?,
        deadline: secs("--deadline")?.unwrap_or(Duration::from_secs(DEFAULT_DEADLINE_SECS)),
        demo: p.has("--demo"),
        source: opt("--source").unwrap_or_else(|| DEFAULT_SOURCE.into()),
        progress: super::progress::wanted(p),
    };
    let empty = |v: &Option<String>| v.as_deref().is_some_and(|v| v.trim().is_empty());
    for (name, v) in [
        ("--url", &a.url),
        ("--brokers", &a.brokers),
        ("--topic", &a.topic),
        ("--key-field", &a.key_field),
        ("--source", &opt("--source")),
    ] {
        if empty(v) {
            return Err(format!("emit: {name} needs a non-empty value"));
        }
    }
    match a.sink.as_str() {
        "stdout" => {}
        "http" if a.url.is_some() => {}
        "http" => return Err("emit: --sink http needs --url".into()),
        "kafka" if a.brokers.is_none() || a.topic.is_none() => {
            return Err("emit: --sink kafka needs --brokers and --topic".into())
        }
        "kafka" if !cfg!(feature = "kafka") => {
            return Err("emit: --sink kafka: this build has no kafka feature (build or install it with the cargo feature `kafka`)".into())
        }
        "kafka" => {}
        s => {
            return Err(format!(
                "emit: unknown sink '{s}': use stdout, http or kafka"
            ))
        }
    }
    if a.sink != "http" && (a.url.is_some() || !a.headers.is_empty() || a.gzip) {
        return Err("emit: --url, --header, --header-file and --gzip go with --sink http".into());
    }
    if a.sink != "kafka" && (a.brokers.is_some() || a.topic.is_some() || a.key_field.is_some()) {
        return Err("emit: --brokers, --topic and --key-field go with --sink kafka".into());
    }
    if p.has("--source") && !a.demo {
        return Err(
            "emit: --source goes with --demo (events read from stdin keep their own source)".into(),
        );
    }
    if let Some(m) = &a.mode {
        match (a.sink.as_str(), m.as_str()) {
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
    Ok(a)
}

pub(crate) fn run(args: Vec<OsString>) -> ExitCode {
    let p = match super::parse(&CMD, args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let a = match parse_args(&p) {
        Ok(a) => a,
        Err(e) => return super::usage_error(Some(&CMD), &e),
    };
    let failures = Arc::new(AtomicU64::new(0));
    let f2 = failures.clone();
    let builder = Emitter::builder(a.source.clone())
        .batch_size(a.batch_size)
        .flush_interval(Duration::from_millis(200))
        .overflow(Overflow::Block(a.deadline))
        .shutdown_timeout(Duration::from_secs(5))
        .flush_timeout(a.deadline)
        .on_undelivered(move |u| {
            if f2.fetch_add(1, Ordering::Relaxed) < 10 {
                note!(
                    "ossa-events: emit: event {} not delivered ({:?}): {}",
                    u.id,
                    u.reason,
                    u.error
                );
            }
        });
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
            .max_batch(a.batch_size);
        for (n, v) in &a.headers {
            hs = hs.header(n.clone(), v.clone());
        }
        match hs.build() {
            Ok(s) => builder.sink(s),
            Err(e) => return super::usage_error(Some(&CMD), &format!("emit: {e}")),
        }
    } else {
        builder.sink(WriterSink::stdout())
    };
    let em = match builder.build() {
        Ok(em) => em,
        Err(e) => return super::usage_error(Some(&CMD), &format!("emit: {e}")),
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
    let (tx, rx) = signals::channel::<Input>(256);
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
        let reader = std::thread::Builder::new()
            .name("ossa-events-stdin".into())
            .spawn(move || read_lines(&tx));
        if let Err(e) = reader {
            note!("ossa-events: emit: cannot start the stdin reader: {e}");
        }
        let mut scratch = Vec::new();
        let mut lineno = 0u64;
        for msg in rx.iter() {
            if let Some(sig) = signalled() {
                stopped_by = Some(sig);
                break;
            }
            let line = match msg {
                Input::Line(line) => line,
                Input::End => break,
                Input::Signal(sig) => {
                    stopped_by = Some(sig);
                    break;
                }
            };
            lineno += 1;
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            read.fetch_add(1, Ordering::Relaxed);
            scratch.resize(text.len(), 0);
            match ossa_events::parse::json::parse_event(text, &mut Scratch::new(&mut scratch)) {
                Ok(ev) => {
                    // Refusals are counted by the emitter and reported by the callback.
                    let _ = em.emit_event(&ev);
                }
                Err(e) => {
                    invalid.fetch_add(1, Ordering::Relaxed);
                    note!("ossa-events: emit: <stdin>:{lineno}: {e}");
                }
            };
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
    if let Some(sig) = stopped_by {
        return ExitCode::from(signals::exit_code(sig));
    }
    let undelivered = m.failed + m.shutdown_timeout + m.dropped + m.rejected;
    if invalid == 0 && m.delivered == read && undelivered == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILURE)
    }
}

/// What the stdin reader and the signal watcher tell `emit`'s main loop.
enum Input {
    Line(Vec<u8>),
    End,
    Signal(i32),
}

/// Reads stdin line by line into `tx` until its end (or a read error, said once).
fn read_lines(tx: &std::sync::mpsc::SyncSender<Input>) {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    loop {
        let mut line = Vec::new();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                if tx.send(Input::Line(line)).is_err() {
                    return; // the main loop stopped
                }
            }
            Err(e) => {
                note!("ossa-events: emit: <stdin>: {e}");
                break;
            }
        }
    }
    let _ = tx.send(Input::End);
}

/// Prints `emit`'s summary line (and, when a signal stopped it, what was
/// left unconfirmed); returns the metrics it printed.
fn summary(em: &Emitter, read: u64, invalid: u64, signal: Option<i32>) -> ossa_events::Metrics {
    let m = em.metrics();
    eprintln!(
        "emit: read {read}, delivered {}, retried {}, failed {}, dropped {}, invalid {invalid}",
        m.delivered,
        m.retried,
        m.failed + m.shutdown_timeout,
        m.dropped + m.rejected
    );
    if let Some(sig) = signal {
        eprintln!(
            "emit: stopped by {}: {} not confirmed delivered ({} given up at the deadline, {} still in hand)",
            signals::name(sig),
            m.shutdown_timeout + m.queue_depth,
            m.shutdown_timeout,
            m.queue_depth
        );
    }
    m
}

/// The Kafka sink `a` asks for.
#[cfg(feature = "kafka")]
fn kafka_sink(a: &Args) -> Result<ossa_events::sink::KafkaSink, ExitCode> {
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
        .map_err(|e| super::usage_error(Some(&CMD), &format!("emit: {e}")))
}

/// Without the `kafka` feature there is no Kafka sink (refused by `parse_args`).
#[cfg(not(feature = "kafka"))]
fn kafka_sink(_: &Args) -> Result<WriterSink<std::io::Stdout>, ExitCode> {
    Err(super::usage_error(
        Some(&CMD),
        "emit: --sink kafka: this build has no kafka feature (build or install it with the cargo feature `kafka`)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults the help states are the ones used.
    #[test]
    fn help_defaults_match_the_library() {
        let h = CMD.help();
        assert!(h.contains(&format!(
            "[default: {}]",
            EmitterBuilder::DEFAULT_BATCH_SIZE
        )));
        assert!(h.contains(&format!("[default: {DEFAULT_DEADLINE_SECS}]")));
        assert!(h.contains(&format!("[default: {DEFAULT_HTTP_TIMEOUT_SECS}]")));
        assert!(h.contains(&format!("[default: {DEFAULT_KAFKA_TIMEOUT_SECS}]")));
        assert!(h.contains(&format!("[default: {DEFAULT_SOURCE}]")));
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
