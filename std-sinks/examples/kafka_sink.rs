//! Kafka sink: deliver an agent run to a Kafka topic, one record per event in
//! binary content mode (`ce_` headers, the data as the value), keyed by
//! `ossaagentid`. An event counts as delivered only once the broker
//! acknowledged it.
//!
//! ```sh
//! cargo run -p ossa-events --features kafka --example kafka_sink -- --brokers 127.0.0.1:9092 --topic ossa-events
//! OSSA_KAFKA_BROKERS=127.0.0.1:9092 cargo run -p ossa-events --features kafka --example kafka_sink
//! ```
//!
//! The brokers come from `--brokers` or `OSSA_KAFKA_BROKERS`, the topic from
//! `--topic` or `OSSA_KAFKA_TOPIC` (default `ossa-events`). Prints on stderr:
//!
//! ```text
//! delivered 15 of 15 events to topic ossa-events at 127.0.0.1:9092 (retried 0, failed 0)
//! ```
//!
//! Read them back with
//! `cargo run -p ossa-events --features kafka -- consume --brokers 127.0.0.1:9092 --topic ossa-events --from-beginning`.
//! With no brokers given it prints how to start a local broker and exits with
//! status 2; when not every event is delivered (no broker there, no such
//! topic) it says so and exits with status 1 after about 10 seconds.

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use ossa_events::sink::{KafkaMode, KafkaSink};
use ossa_events::{Emitter, FastIds, RetryPolicy, SystemClock, demo};

const DEFAULT_TOPIC: &str = "ossa-events";

const NO_BROKERS: &str = "\
kafka_sink: no Kafka brokers given (--brokers HOST:PORT or OSSA_KAFKA_BROKERS).

Any Kafka broker will do. A single-binary one for local use is tansu
(https://github.com/tansu-io/tansu; `bash scripts/test.sh` installs it in
~/.cache/ossa-events-tools/bin):

    tansu broker --listener-url tcp://127.0.0.1:9092 \\
        --advertised-listener-url tcp://127.0.0.1:9092 \\
        --storage-engine memory://tansu/
    tansu topic create ossa-events --broker tcp://127.0.0.1:9092 --partitions 1

then:

    cargo run -p ossa-events --features kafka --example kafka_sink -- --brokers 127.0.0.1:9092";

fn main() -> Result<ExitCode, Box<dyn Error>> {
    let mut brokers = std::env::var("OSSA_KAFKA_BROKERS").ok();
    let mut topic = std::env::var("OSSA_KAFKA_TOPIC").ok();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--brokers" => &mut brokers,
            "--topic" => &mut topic,
            _ => return Err(format!("unknown argument {arg:?} (use --brokers, --topic)").into()),
        };
        *slot = Some(args.next().ok_or(format!("{arg} needs a value"))?);
    }
    let Some(brokers) = brokers.filter(|b| !b.is_empty()) else {
        eprintln!("{NO_BROKERS}");
        return Ok(ExitCode::from(2));
    };
    let topic = topic
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| DEFAULT_TOPIC.to_owned());

    let sink = KafkaSink::builder(&brokers, &topic)
        .mode(KafkaMode::Binary)
        .key_field("ossaagentid")
        // librdkafka properties pass through as they are (here a longer
        // linger than the sink's default of 5 ms).
        .set("linger.ms", "10")
        // librdkafka retries within this time; the emitter then once more.
        .delivery_timeout(Duration::from_secs(5))
        .build()?;
    let emitter = Emitter::builder("/ossa/demo/researcher")
        .sink(sink)
        .retry(RetryPolicy::default().max_attempts(2))
        .build()?;

    let emitted = demo::agent_run("/ossa/demo/researcher", &SystemClock, &mut FastIds, |ev| {
        emitter.emit_event(ev)
    })?;
    // Waits for every delivery report, or for the worker to give up.
    let flushed = emitter.flush_within(Duration::from_secs(30));
    let m = emitter.metrics();
    eprintln!(
        "delivered {} of {emitted} events to topic {topic} at {brokers} (retried {}, failed {})",
        m.delivered, m.retried, m.failed
    );
    if flushed.is_err() || m.delivered != emitted as u64 {
        eprintln!("kafka_sink: is a broker listening at {brokers}, and does topic {topic} exist?");
        return Ok(ExitCode::FAILURE);
    }
    emitter.shutdown()?;
    Ok(ExitCode::SUCCESS)
}
