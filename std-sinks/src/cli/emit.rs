//! `ossa-events emit`: deliver JSON Lines events (or the demo run) to a sink.

use std::ffi::OsString;
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ossa_events::sink::{HttpMode, HttpSink, WriterSink};
use ossa_events::{demo, Emitter, EmitterBuilder, Overflow, Scratch, SystemClock};

const HELP: &str = "\
Deliver CloudEvents to a sink: JSON Lines read from stdin (one event per line,
attributes, extensions and data sent as given), or the demo agent run.

Usage: ossa-events emit [--sink stdout|http|kafka] [--url URL] [--mode MODE] [OPTIONS]
       ossa-events emit --sink kafka --brokers BROKERS --topic T [--mode MODE] [--key-field ATTR]

Options:
      --sink SINK         stdout (JSON Lines), http or kafka [default: stdout]
      --url URL           Collector URL (required with --sink http)
      --mode MODE         HTTP content mode: structured, binary or batched [default: batched];
                          Kafka content mode: binary or structured [default: binary]
      --header 'N: V'     Extra HTTP header (repeatable), e.g. 'Authorization: Bearer …'
      --gzip              Gzip HTTP request bodies
      --brokers BROKERS   Kafka bootstrap servers (required with --sink kafka)
      --topic T           Kafka topic (required with --sink kafka)
      --key-field ATTR    Kafka record key: this attribute's value when the event has
                          no partitionkey extension (which is used first)
      --batch-size N      Events per batch [default: 100]
      --timeout SECS      HTTP request timeout [default: 10]; Kafka delivery timeout
                          [default: the sink's]
      --deadline SECS     Give up on what is not delivered after this long [default: 300]
      --demo              Send the demo agent run instead of reading stdin
      --source URI-REF    Source of the demo events [default: /ossa/demo/researcher]
  -h, --help              Show this help

Invalid input lines are reported on stderr with their line number, counted and
not sent. At the end a summary line goes to stderr:
  emit: read N, delivered N, retried N, failed N, dropped N, invalid N

Exit status: 0 only when every event was delivered; 1 otherwise; 2 on bad
arguments.
";

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
}

fn parse_args(args: Vec<OsString>) -> Result<Option<Args>, String> {
    let mut a = Args {
        sink: "stdout".into(),
        url: None,
        mode: None,
        brokers: None,
        topic: None,
        key_field: None,
        headers: Vec::new(),
        gzip: false,
        batch_size: EmitterBuilder::DEFAULT_BATCH_SIZE,
        timeout: None,
        deadline: Duration::from_secs(300),
        demo: false,
        source: "/ossa/demo/researcher".into(),
    };
    let mut it = args.into_iter().map(|s| s.to_string_lossy().into_owned());
    while let Some(flag) = it.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (flag, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("emit: {name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--sink" => a.sink = value("--sink")?,
            "--url" => a.url = Some(value("--url")?),
            "--mode" => a.mode = Some(value("--mode")?),
            "--brokers" => a.brokers = Some(value("--brokers")?),
            "--topic" => a.topic = Some(value("--topic")?),
            "--key-field" => a.key_field = Some(value("--key-field")?),
            "--header" => {
                let h = value("--header")?;
                let (n, v) = h
                    .split_once(':')
                    .ok_or_else(|| format!("emit: --header '{h}' is not 'Name: value'"))?;
                a.headers.push((n.trim().to_string(), v.trim().to_string()));
            }
            "--gzip" => a.gzip = true,
            "--batch-size" => {
                a.batch_size = value("--batch-size")?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("emit: --batch-size must be a positive number")?
            }
            "--timeout" => {
                a.timeout = value("--timeout")?
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .map(Some)
                    .ok_or("emit: --timeout must be a positive number of seconds")?;
            }
            "--deadline" => {
                a.deadline = value("--deadline")?
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or("emit: --deadline must be a positive number of seconds")?;
            }
            "--demo" => a.demo = true,
            "--source" => a.source = value("--source")?,
            other => return Err(format!("emit: unexpected argument '{other}'")),
        }
    }
    match a.sink.as_str() {
        "stdout" => {}
        "http" if a.url.is_some() => {}
        "http" => return Err("emit: --sink http needs --url".into()),
        "kafka" if a.brokers.is_none() || a.topic.is_none() => {
            return Err("emit: --sink kafka needs --brokers and --topic".into())
        }
        "kafka" => {}
        s => {
            return Err(format!(
                "emit: unknown sink '{s}': use stdout, http or kafka"
            ))
        }
    }
    if a.sink != "http" && (a.url.is_some() || !a.headers.is_empty() || a.gzip) {
        return Err("emit: --url, --header and --gzip go with --sink http".into());
    }
    if a.sink != "kafka" && (a.brokers.is_some() || a.topic.is_some() || a.key_field.is_some()) {
        return Err("emit: --brokers, --topic and --key-field go with --sink kafka".into());
    }
    if let Some(m) = &a.mode {
        match (a.sink.as_str(), m.as_str()) {
            ("http", "structured" | "binary" | "batched") | ("kafka", "structured" | "binary") => {}
            ("http", m) => {
                return Err(format!(
                    "emit: unknown mode '{m}': use structured, binary or batched"
                ))
            }
            ("kafka", m) => {
                return Err(format!(
                    "emit: unknown mode '{m}': use binary or structured"
                ))
            }
            _ => return Err("emit: --mode goes with --sink http or kafka".into()),
        }
    }
    Ok(Some(a))
}

pub(crate) fn run(args: Vec<OsString>) -> ExitCode {
    let a = match parse_args(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => return super::usage_error(&e),
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
                eprintln!(
                    "ossa-events: emit: event {} not delivered ({:?}): {}",
                    u.id, u.reason, u.error
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
            .timeout(a.timeout.unwrap_or(Duration::from_secs(10)))
            .gzip(a.gzip)
            .max_batch(a.batch_size);
        for (n, v) in &a.headers {
            hs = hs.header(n.clone(), v.clone());
        }
        match hs.build() {
            Ok(s) => builder.sink(s),
            Err(e) => return super::usage_error(&format!("emit: {e}")),
        }
    } else {
        builder.sink(WriterSink::stdout())
    };
    let em = match builder.build() {
        Ok(em) => em,
        Err(e) => return super::usage_error(&format!("emit: {e}")),
    };

    let mut read = 0u64;
    let mut invalid = 0u64;
    if a.demo {
        let r = demo::agent_run(&a.source, &SystemClock, &mut ossa_events::FastIds, |ev| {
            read += 1;
            em.emit_event(ev)
        });
        if let Err(e) = r {
            eprintln!("ossa-events: emit: {e}");
        }
    } else {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let mut line = Vec::new();
        let mut scratch = Vec::new();
        let mut lineno = 0u64;
        loop {
            line.clear();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("ossa-events: emit: <stdin>: {e}");
                    break;
                }
            }
            lineno += 1;
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            read += 1;
            scratch.resize(text.len(), 0);
            match ossa_events::parse::json::parse_event(text, &mut Scratch::new(&mut scratch)) {
                Ok(ev) => {
                    // Refusals are counted by the emitter and reported by the callback.
                    let _ = em.emit_event(&ev);
                }
                Err(e) => {
                    invalid += 1;
                    eprintln!("ossa-events: emit: <stdin>:{lineno}: {e}");
                }
            }
        }
    }
    let _ = em.flush();
    let _ = em.shutdown();
    let m = em.metrics();
    eprintln!(
        "emit: read {read}, delivered {}, retried {}, failed {}, dropped {}, invalid {invalid}",
        m.delivered,
        m.retried,
        m.failed,
        m.dropped + m.rejected
    );
    if invalid == 0 && m.delivered == read && m.failed == 0 && m.dropped == 0 && m.rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILURE)
    }
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
    if let Some(t) = a.timeout {
        ks = ks.delivery_timeout(t);
    }
    ks.build()
        .map_err(|e| super::usage_error(&format!("emit: {e}")))
}

/// Without the `kafka` feature there is no Kafka sink.
#[cfg(not(feature = "kafka"))]
fn kafka_sink(_: &Args) -> Result<WriterSink<std::io::Stdout>, ExitCode> {
    eprintln!("ossa-events: emit: built without the kafka feature");
    Err(ExitCode::from(super::EXIT_USAGE))
}
