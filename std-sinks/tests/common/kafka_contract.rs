//! What the Kafka tests against a real tansu broker share: the
//! `on_undelivered` record and its checks (each id reported at most once,
//! the reports agree with the metrics), and reading the ids a topic holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ossa_events::sink::KafkaSink;
use ossa_events::{EmitterBuilder, Metrics, Reason};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::tansu::{Tansu, free_port_for_later};

/// What `on_undelivered` was told: (reason, id, error).
pub(crate) type Reported = Arc<Mutex<Vec<(Reason, String, String)>>>;

pub(crate) fn reporting(b: EmitterBuilder) -> (EmitterBuilder, Reported) {
    let r: Reported = Arc::default();
    let r2 = r.clone();
    let b = b.on_undelivered(move |u| {
        r2.lock()
            .unwrap()
            .push((u.reason, u.id.to_owned(), u.error.to_string()))
    });
    (b, r)
}

/// Each id reported at most once; the counts by reason.
pub(crate) fn reported_once(r: &Reported) -> HashMap<String, u64> {
    let got = r.lock().unwrap();
    let mut ids = HashMap::new();
    let mut by = HashMap::new();
    for (reason, id, err) in got.iter() {
        if let Some(first) = ids.insert(id.clone(), (reason, err.clone())) {
            panic!("{id} reported twice: {first:?}, then {reason:?} {err}");
        }
        *by.entry(format!("{reason:?}")).or_default() += 1;
    }
    by
}

/// Waits until `n` events were reported, or `limit` passed.
pub(crate) fn wait_reported(r: &Reported, n: usize, limit: Duration) {
    let end = Instant::now() + limit;
    while r.lock().unwrap().len() < n && Instant::now() < end {
        thread::sleep(Duration::from_millis(10));
    }
}

/// Every accepted event in exactly one place, and the reports agree.
pub(crate) fn accounted(m: &Metrics, n: u64, by: &HashMap<String, u64>) {
    assert_eq!(m.emitted, n, "{m:?}");
    assert_eq!(
        m.delivered + m.failed + m.shutdown_timeout + m.queue_depth,
        n,
        "{m:?}"
    );
    assert_eq!(m.queue_depth, 0, "{m:?}");
    let get = |r: Reason| by.get(&format!("{r:?}")).copied().unwrap_or(0);
    assert_eq!(get(Reason::Failed), m.failed, "{m:?} {by:?}");
    assert_eq!(
        get(Reason::ShutdownTimeout),
        m.shutdown_timeout,
        "{m:?} {by:?}"
    );
    assert_eq!(get(Reason::Dropped), 0, "{by:?}");
}

/// Reads every id in `topic` (1 partition) from the beginning, until `want`
/// came (then 500 ms more) or `limit` passed.
pub(crate) fn read_ids(
    bootstrap: &str,
    topic: &str,
    group: &str,
    want: usize,
    limit: Duration,
) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let end = Instant::now() + limit;
    let mut out = Vec::new();
    let mut quiet_until: Option<Instant> = None;
    while Instant::now() < end && quiet_until.is_none_or(|q| Instant::now() < q) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            let id = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "ce_id"))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            out.push(id);
            if out.len() >= want && quiet_until.is_none() {
                quiet_until = Some(Instant::now() + Duration::from_millis(500));
            }
        }
    }
    out
}

/// A broker on a port kept for [`restart`], with `topic` (one partition),
/// its bootstrap address, and a sink to it that reconnects within 100 ms
/// (delivery timeout 8 s).
pub(crate) fn restartable_broker_with_sink(topic: &str) -> (u16, Tansu, String, KafkaSink) {
    let port = free_port_for_later();
    let broker = Tansu::start_on(port);
    broker.create_topic(topic, 1);
    let bootstrap = format!("127.0.0.1:{port}");
    let sink = KafkaSink::builder(&bootstrap, topic)
        .delivery_timeout(Duration::from_secs(8))
        .set("reconnect.backoff.max.ms", "100")
        .build()
        .unwrap();
    (port, broker, bootstrap, sink)
}

/// Kills `broker` and starts another on its `port`, with `topic` again.
pub(crate) fn restart(broker: Tansu, port: u16, topic: &str) -> Tansu {
    drop(broker);
    let broker = Tansu::start_on(port);
    broker.create_topic(topic, 1);
    broker
}
