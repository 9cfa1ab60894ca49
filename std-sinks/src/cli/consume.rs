//! `ossa-events consume`: read CloudEvents from a Kafka topic and print each
//! valid one as a canonical JSON line.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

const HELP: &str = "\
Read CloudEvents from a Kafka topic (binary and structured records, per the
Kafka binding) and print each valid event as one line of canonical structured
JSON on stdout.

Usage: ossa-events consume --kafka BROKERS --topic T [OPTIONS]

Without --group, every partition of the topic is assigned directly (no consumer
group, nothing committed) and reading starts at the end, or at the beginning
with --from-beginning. With --group, the consumer joins group G, commits its
offsets, and --from-beginning applies where G has no committed offset.

A record that is not a valid CloudEvent is reported on stderr as
'partition P offset O: <error>' and skipped; it does not count toward
--max-events. At the end a summary line goes to stderr:
  consume: printed N, invalid N

Options:
      --kafka BROKERS     Bootstrap servers, e.g. 127.0.0.1:9092 (required)
      --topic T           Topic to read (required)
      --group G           Consumer group [default: none, partitions assigned]
      --from-beginning    Start at the earliest offset instead of the end
      --max-events N      Stop after N valid events
      --timeout SECS      Stop after SECS without a record (fractions allowed)
  -h, --help              Show this help

Exit status: 0 when stopped by --max-events or --timeout; 1 when the topic
cannot be read or stdout is closed; 2 on bad arguments (or a build without
the kafka feature).
";

/// Largest `--timeout` accepted, in seconds (one day).
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
struct Args {
    brokers: String,
    topic: String,
    group: Option<String>,
    from_beginning: bool,
    max_events: Option<u64>,
    timeout: Option<Duration>,
}

fn parse_args(args: Vec<OsString>) -> Result<Option<Args>, String> {
    let mut brokers = None;
    let mut topic = None;
    let mut group = None;
    let mut from_beginning = false;
    let mut max_events = None;
    let mut timeout = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let Some(s) = a.to_str() else {
            return Err("consume: argument is not valid UTF-8".into());
        };
        let (flag, inline) = match s.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (s.to_string(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--from-beginning" if inline.is_none() => {
                from_beginning = true;
                continue;
            }
            "--kafka" | "--topic" | "--group" | "--max-events" | "--timeout" => {}
            f if f.starts_with('-') => return Err(format!("consume: unknown option '{f}'")),
            f => return Err(format!("consume: unexpected argument '{f}'")),
        }
        let value = inline
            .or_else(|| it.next().and_then(|v| v.into_string().ok()))
            .ok_or_else(|| format!("consume: {flag} needs a value"))?;
        match flag.as_str() {
            "--kafka" if !value.trim().is_empty() => brokers = Some(value),
            "--topic" if !value.trim().is_empty() => topic = Some(value),
            "--group" if !value.trim().is_empty() => group = Some(value),
            "--max-events" => {
                max_events = Some(
                    value
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            format!("consume: --max-events must be a positive number, not '{value}'")
                        })?,
                )
            }
            "--timeout" => {
                timeout = Some(
                    value
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s > 0.0 && *s <= MAX_TIMEOUT_SECS)
                        .map(Duration::from_secs_f64)
                        .ok_or_else(|| {
                            format!(
                                "consume: --timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT_SECS}, not '{value}'"
                            )
                        })?,
                )
            }
            f => return Err(format!("consume: {f} needs a non-empty value")),
        }
    }
    let brokers = brokers.ok_or("consume: --kafka BROKERS is required")?;
    let topic = topic.ok_or("consume: --topic T is required")?;
    Ok(Some(Args {
        brokers,
        topic,
        group,
        from_beginning,
        max_events,
        timeout,
    }))
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
    consume(&a)
}

#[cfg(not(feature = "kafka"))]
fn consume(_: &Args) -> ExitCode {
    eprintln!("ossa-events: consume: built without the kafka feature");
    ExitCode::from(super::EXIT_USAGE)
}

#[cfg(feature = "kafka")]
fn consume(a: &Args) -> ExitCode {
    use std::io::Write;
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    use ossa_events::{format::json, Scratch};
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    /// How long the topic's metadata may take to come.
    const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
    /// One poll: the granularity of `--timeout`.
    const POLL: Duration = Duration::from_millis(100);

    let fail = |msg: String| {
        eprintln!("ossa-events: consume: {msg}");
        ExitCode::from(super::EXIT_FAILURE)
    };

    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &a.brokers)
        .set("client.id", "ossa-events-consume")
        .set(
            "auto.offset.reset",
            if a.from_beginning {
                "earliest"
            } else {
                "latest"
            },
        );
    match &a.group {
        Some(g) => {
            config.set("group.id", g).set("enable.auto.commit", "true");
        }
        None => {
            // Never joined nor committed (partitions are assigned), but
            // librdkafka wants a group id for a consumer.
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            config
                .set(
                    "group.id",
                    format!("ossa-events-consume-{}-{nanos}", std::process::id()),
                )
                .set("enable.auto.commit", "false");
        }
    }
    let consumer: BaseConsumer = match config.create() {
        Ok(c) => c,
        Err(e) => return super::usage_error(&format!("consume: {e}")),
    };

    if a.group.is_some() {
        if let Err(e) = consumer.subscribe(&[a.topic.as_str()]) {
            return fail(format!("cannot subscribe to {}: {e}", a.topic));
        }
    } else {
        let md = match consumer.fetch_metadata(Some(&a.topic), METADATA_TIMEOUT) {
            Ok(md) => md,
            Err(e) => return fail(format!("cannot read the metadata of {}: {e}", a.topic)),
        };
        let partitions: Vec<i32> = md
            .topics()
            .iter()
            .filter(|t| t.name() == a.topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return fail(format!("topic '{}' not found on {}", a.topic, a.brokers));
        }
        let start = if a.from_beginning {
            Offset::Beginning
        } else {
            Offset::End
        };
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            if let Err(e) = tpl.add_partition_offset(&a.topic, p, start) {
                return fail(format!("{e}"));
            }
        }
        if let Err(e) = consumer.assign(&tpl) {
            return fail(format!("cannot assign the partitions of {}: {e}", a.topic));
        }
    }

    let mut printed = 0u64;
    let mut invalid = 0u64;
    let mut scratch: Vec<u8> = Vec::new();
    let mut line: Vec<u8> = Vec::with_capacity(1024);
    let mut last_record = Instant::now();
    let stdout = std::io::stdout();
    let code = loop {
        if a.max_events.is_some_and(|n| printed >= n) {
            break ExitCode::SUCCESS;
        }
        if a.timeout.is_some_and(|t| last_record.elapsed() >= t) {
            break ExitCode::SUCCESS;
        }
        let m = match consumer.poll(POLL) {
            None => continue,
            Some(Err(e)) => {
                eprintln!("ossa-events: consume: {e}");
                continue;
            }
            Some(Ok(m)) => m,
        };
        last_record = Instant::now();
        let headers: Vec<(&str, &[u8])> = m
            .headers()
            .map(|h| h.iter().map(|h| (h.key, h.value.unwrap_or(&[]))).collect())
            .unwrap_or_default();
        let need = 1024
            + m.payload_len()
            + m.key().map_or(0, <[u8]>::len)
            + headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>();
        if scratch.len() < need {
            scratch.resize(need, 0);
        }
        let rec = ossa_events::parse::kafka::parse(
            headers.iter().copied(),
            m.key(),
            m.payload(),
            &mut Scratch::new(&mut scratch),
        );
        match rec {
            Ok(rec) => {
                line.clear();
                if json::write_jsonl(&rec.event, &mut line).is_err() {
                    continue;
                }
                let mut out = stdout.lock();
                if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
                    return fail(format!("cannot write to stdout: {e}"));
                }
                printed += 1;
            }
            Err(e) => {
                invalid += 1;
                eprintln!("partition {} offset {}: {e}", m.partition(), m.offset());
            }
        }
    };
    eprintln!("consume: printed {printed}, invalid {invalid}");
    code
}
