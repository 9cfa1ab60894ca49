//! CloudEvents over Kafka (the [Kafka protocol binding]) with [`rdkafka`]
//! (librdkafka): binary or structured content mode, one idempotent producer
//! per sink.
//!
//! An event counts as delivered only once its **delivery report** is in:
//! [`Sink::send`] produces every event of the batch (a full librdkafka queue
//! is waited out, not dropped), then waits for every report, bounded by the
//! delivery timeout (librdkafka's `message.timeout.ms`, within which
//! librdkafka itself retries, without duplicates thanks to idempotence).
//! The sink then classifies what happened; further retries, backoff and the
//! circuit breaker are the emitter's worker's.
//!
//! | delivery report | [`Retry`] | [`Error`] |
//! | --- | --- | --- |
//! | every report successful | — (delivered) | — |
//! | message timed out, or no report within the delivery timeout | `Yes { after: None }` | [`Error::Timeout`] ([`Phase::Send`]) |
//! | topic missing, not authorized, message too large, invalid record or topic, bad configuration | `No` | [`Error::Kafka`] |
//! | any other error (broker down, not leader, not enough replicas, purged…) | `Yes { after: None }` | [`Error::Kafka`] |
//! | the emitter's shutdown deadline passed while waiting ([`Sink::send_by`]) | `Yes { after: None }` (the worker then gives up) | [`Error::Timeout`] ([`Phase::Shutdown`]) |
//!
//! When shutdown's deadline passes in the middle of a send, the sink stops
//! waiting at once: it purges the records librdkafka has not sent yet (they
//! are certainly not delivered), and the emitter counts every event without
//! a successful report as not delivered
//! ([`Reason::ShutdownTimeout`](crate::Reason::ShutdownTimeout)). Dropping
//! the sink after that waits only briefly for records already on the wire.
//!
//! Every event gets its own outcome from its own report: in a batch where
//! one record fails, the records whose reports succeeded are delivered and
//! only the failed ones are retried or failed. Pipelined batches are settled
//! by the [`Ticket`] that [`Sink::start`] handed out; a ticket the sink does
//! not know, or events that are not that batch's, fail the call for good.
//!
//! **Duplicates.** librdkafka's own retries within the delivery timeout are
//! deduplicated by the broker (idempotent producer). A record whose report
//! says *timed out* (or that got no report in time) may still have been
//! stored: when the emitter retries it, it is produced again as a new record,
//! and the topic can hold it twice (same CloudEvents `id`). Set a delivery
//! timeout of 0 (no limit: librdkafka retries until delivered, and the sink
//! waits as long, up to the emitter's shutdown deadline) to rule that out at
//! the cost of waiting out long outages.
//!
//! [Kafka protocol binding]: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/kafka-protocol-binding.md

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig,
};

use ossa_events_core::Scratch;
use ossa_events_core::format::binary::{self, Binding};
use ossa_events_core::parse::json::parse_event;

use crate::errors::{Error, Phase, Retry, SendError};
use crate::sink::writer::trim;
use crate::sink::{Encoded, Encoding, SendDeadline, Sink, Ticket};

/// The delivery timeout (librdkafka's `message.timeout.ms`): how long
/// librdkafka keeps trying to deliver one event before reporting it failed.
/// 30 seconds.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Most events per [`Sink::send`]. 1 000.
pub const DEFAULT_MAX_BATCH: usize = 1000;
/// Most batches in flight at once: 64 (the emitter's queue bounds the memory, not this).
pub const DEFAULT_PIPELINE: usize = 64;
/// The content mode: [`KafkaMode::Binary`], the binding's compact form.
pub const DEFAULT_MODE: KafkaMode = KafkaMode::Binary;
/// The `client.id` the producer gives the brokers. `ossa-events`.
pub const DEFAULT_CLIENT_ID: &str = "ossa-events";

/// `content-type` header of a structured-mode record.
const STRUCTURED_CT: &str = "application/cloudevents+json; charset=UTF-8";
/// The extension the binding maps to the record key.
const PARTITION_KEY_HEADER: &str = "ce_partitionkey";
/// How long the sink sleeps between two looks at librdkafka's ready events
/// (delivery reports) while it waits for a batch's reports or for queue
/// room; so also the most a settle waits past its last report. Not a
/// blocking `BaseProducer::poll(t)`: in rdkafka 0.39 it returns only when
/// `t` has passed, and once an event came it polls librdkafka's queue with
/// whole milliseconds left, so 0, in a loop that spins to the end
/// (`clock_gettime` was 17 % of the `kafka_sink` bench's samples, on a
/// machine where librdkafka's and the broker's threads need the cores).
const WAIT_STEP: Duration = Duration::from_micros(100);
/// Records produced between two looks at the delivery reports already in.
const SERVE_EVERY: usize = 64;
/// Most librdkafka events served in one look at what is ready.
const SERVE_MAX: usize = 64;
/// Polls in a row that bring no delivery report before a look at what is
/// ready ends (a log line or statistics may sit before the reports).
const SERVE_IDLE: usize = 3;
/// How often librdkafka's ready events are served while the sink sends
/// nothing (see [`IdleServer`]).
const IDLE_SERVE: Duration = Duration::from_millis(100);
/// Extra time, past the delivery timeout, that [`Sink::send`] waits for the
/// reports librdkafka owes: it reports every message by then.
const REPORT_GRACE: Duration = Duration::from_secs(5);
/// How long a sink whose send was cut short by shutdown waits, when dropped,
/// for the records already on the wire before purging them (those not sent
/// yet are purged at once).
const ABANDON_GRACE: Duration = Duration::from_millis(200);

/// How events are put into Kafka records.
///
/// Both modes round-trip every event; `Binary` keeps the data as the record
/// value as is (consumers that only want the payload read it directly),
/// `Structured` keeps the whole event in the value. Against librdkafka's
/// in-process mock cluster:
///
/// ```
/// use ossa_events::sink::{KafkaMode, KafkaSink};
/// use ossa_events::{Emitter, EventBuilder};
/// let cluster = rdkafka::mocking::MockCluster::new(1)?;
/// cluster.create_topic("agent-events", 1, 1)?;
/// for mode in [KafkaMode::Binary, KafkaMode::Structured] {
///     let sink = KafkaSink::builder(cluster.bootstrap_servers(), "agent-events")
///         .mode(mode)
///         .build()?;
///     let emitter = Emitter::builder("/agents/a").sink(sink).build()?;
///     emitter.emit(EventBuilder::new().ty("dev.example.tick").data_json(r#"{"n":1}"#))?;
///     // Delivered means: the broker acknowledged it (its delivery report).
///     assert_eq!(emitter.shutdown()?.delivered, 1);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum KafkaMode {
    /// Attributes as `ce_` headers (raw UTF-8), the data's content type as
    /// `content-type`, the data as the value (no value when there is no data).
    #[default]
    Binary,
    /// The whole event as JSON in the value, with
    /// `content-type: application/cloudevents+json; charset=UTF-8`.
    Structured,
}

/// What a delivery report said, by the sequence number given at produce.
type Report = (usize, Result<(), KafkaError>);

/// One batch produced and not yet settled.
struct Flight {
    /// Sequence number of its first event; its events follow in order.
    base: usize,
    /// What each event's report said (`None`: none yet).
    outcomes: Vec<Option<Result<(), KafkaError>>>,
    /// Events handed to librdkafka (or already delivered), from the front.
    produced: usize,
    /// Events handed (or being handed) to librdkafka whose report is not in
    /// yet: a record counts before it is handed over (see `launch`).
    waiting: usize,
    /// Why producing stopped at `produced`, if it did.
    local: Option<SendError>,
    /// Events before `produced` refused for good before they were produced
    /// (too large, no key): their own outcome; the others went on.
    refused: Vec<(usize, Error)>,
    /// When to stop waiting for its reports (`None`: no limit).
    deadline: Option<Instant>,
    /// A fingerprint of its events' ids, to check `settle` is given them.
    check: u64,
}

/// Collects delivery reports. librdkafka hands them over on the thread that
/// polls the producer (a [`BaseProducer`], as the raw producer it is
/// measured against): while the sink sends, that is the sink's own, so a
/// record is mostly allocated and freed by one thread and no polling thread
/// competes for the cores ([`IdleServer`] looks ten times a second). (With
/// rdkafka's `ThreadedProducer` every report came on its polling thread,
/// which freed the records the sink's thread had allocated.)
#[derive(Default)]
struct Reports {
    done: Mutex<Vec<Report>>,
    /// The vector `done` was last swapped for, emptied: kept, so reports do
    /// not grow a new one from nothing for every batch.
    spare: Mutex<Vec<Report>>,
    /// librdkafka log lines served (for the tests to see them served).
    #[cfg(test)]
    logs: AtomicU64,
    /// Delivery reports served, ever (only grows: `done` is emptied by
    /// `route` while another thread may serve).
    served: AtomicU64,
}

impl ClientContext for Reports {
    /// librdkafka's log lines (they come through its queue, served by
    /// [`serve`]) go to `tracing`, as the rest of this crate's, under the
    /// target `librdkafka`.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        #[cfg(test)]
        self.logs.fetch_add(1, Ordering::Relaxed);
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility = fac, "{message}");
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", facility = fac, "{message}");
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility = fac, "{message}");
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", facility = fac, "{message}");
            }
        }
    }

    /// librdkafka's global errors (a broker down, all brokers down…), to
    /// `tracing` as well. (rdkafka 0.39 hands each error event over twice
    /// in `BaseProducer::poll`, so each is logged twice.)
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::error!(target: "librdkafka", %error, "{reason}");
    }
}

/// Serves the events librdkafka has ready (delivery reports, log lines,
/// errors, statistics: they share its queue), without waiting:
/// `BaseProducer::poll(0)` serves one event, so it is called again until
/// [`SERVE_IDLE`] calls in a row bring no report, [`SERVE_MAX`] times at
/// most. Returns whether any report came.
fn serve(producer: &BaseProducer<Reports>) -> bool {
    let count = || producer.context().served.load(Ordering::Relaxed);
    let first = count();
    let mut before = first;
    let mut idle = 0;
    for _ in 0..SERVE_MAX {
        producer.poll(Duration::ZERO);
        let now = count();
        if now == before {
            idle += 1;
            if idle == SERVE_IDLE {
                break;
            }
        } else {
            idle = 0;
        }
        before = now;
    }
    before != first
}

/// A thread that serves what librdkafka has ready every [`IDLE_SERVE`],
/// all the time, for when the sink does not poll (it sends nothing): log
/// lines and errors of a broker that is down would otherwise wait in
/// librdkafka's queue, and pile up, until the next send. While the sink
/// sends, it polls too; either thread may serve an event (librdkafka pops
/// each under its queue's lock), and reports go through [`Reports`].
struct IdleServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl IdleServer {
    fn start(producer: &Arc<BaseProducer<Reports>>) -> IdleServer {
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (producer.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("ossa-kafka-idle".into())
            .spawn(move || {
                while !s.load(Ordering::Acquire) {
                    let _ = serve(&p);
                    std::thread::park_timeout(IDLE_SERVE);
                }
            })
            .map_err(|e| tracing::warn!(error = %e, "kafka: no idle server thread"))
            .ok();
        IdleServer { stop, thread }
    }

    /// Stops the thread and waits for it (it is parked or serving what is
    /// ready: no wait of its own to sit out).
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for IdleServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let r = match result {
            Ok(_) => Ok(()),
            Err((e, _)) => Err(e.clone()),
        };
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        done.push((seq, r));
        self.served.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sends events to a Kafka topic. Built by [`KafkaSink::builder`].
///
/// The producer is idempotent with `acks=all` and `linger.ms=5` unless
/// configured otherwise through [`KafkaSinkBuilder::set`]. The record key is the event's
/// `partitionkey` extension when it has one (as the binding says), else the
/// attribute named by [`KafkaSinkBuilder::key_field`], else none. Dropping
/// the sink waits for what librdkafka still holds (up to the delivery
/// timeout) instead of purging it.
///
/// ```no_run
/// use std::time::Duration;
/// use ossa_events::sink::{KafkaMode, KafkaSink};
/// let sink = KafkaSink::builder("broker1:9092,broker2:9092", "agent-events")
///     .mode(KafkaMode::Structured)
///     .key_field("ossaagentid")
///     .set("compression.type", "lz4")
///     .delivery_timeout(Duration::from_secs(10))
///     .build()?;
/// # let _ = sink;
/// # Ok::<(), ossa_events::Error>(())
/// ```
pub struct KafkaSink {
    producer: Arc<BaseProducer<Reports>>,
    /// Serves librdkafka's queue ten times a second, for while the sink
    /// does not poll.
    idle: IdleServer,
    /// Kept to make a new producer after a fatal producer error.
    config: ClientConfig,
    topic: String,
    mode: KafkaMode,
    /// `ce_<key_field>`.
    key_header: Option<String>,
    /// librdkafka's delivery timeout; `None`: no limit (`0`).
    delivery_timeout: Option<Duration>,
    max_batch: usize,
    /// Sequence number of the next record produced.
    next_seq: usize,
    /// Reused: the structured-mode parse scratch.
    scratch: Vec<u8>,
    /// Reused: the outcomes of the last flight concluded, emptied (for a
    /// batch of 100 a large block to glibc, whose every allocation first
    /// consolidates the small blocks freed since, such as the headers of
    /// the records reported).
    spare_outcomes: Vec<Option<Result<(), KafkaError>>>,
    /// Batches produced and not yet settled, oldest first.
    flights: VecDeque<Flight>,
    /// Most batches in flight at once ([`KafkaSinkBuilder::pipeline`]).
    pipeline: usize,
    /// A send gave up at the emitter's shutdown deadline: drop waits briefly.
    abandoned: bool,
    /// A flight given up on at that deadline waited for the reports of the
    /// purge (the flights settled after it need not wait again).
    purge_waited: bool,
}

impl fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Configuration values stay out: they may hold credentials.
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .field("mode", &self.mode)
            .field("key_header", &self.key_header)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

/// Configures a [`KafkaSink`]; from [`KafkaSink::builder`].
///
/// ```
/// use std::time::Duration;
/// use ossa_events::sink::{KafkaMode, KafkaSink};
/// let config = KafkaSink::builder("127.0.0.1:9092", "agent-events")
///     .mode(KafkaMode::Structured)
///     .delivery_timeout(Duration::from_secs(10));
/// let sink = config.clone().build()?; // connects in the background, not here
/// assert_eq!(sink.topic(), "agent-events");
/// // Values stay out of Debug output: they may hold credentials.
/// let secret = config.set("sasl.password", "s3cret");
/// assert!(!format!("{secret:?}").contains("s3cret"));
/// # Ok::<(), ossa_events::Error>(())
/// ```
#[derive(Clone)]
pub struct KafkaSinkBuilder {
    bootstrap_servers: String,
    topic: String,
    mode: KafkaMode,
    client_id: String,
    key_field: Option<String>,
    delivery_timeout: Duration,
    max_batch: usize,
    pipeline: usize,
    properties: Vec<(String, String)>,
}

impl fmt::Debug for KafkaSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.properties.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("KafkaSinkBuilder")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("topic", &self.topic)
            .field("mode", &self.mode)
            .field("client_id", &self.client_id)
            .field("key_field", &self.key_field)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("max_batch", &self.max_batch)
            .field("pipeline", &self.pipeline)
            .field("properties", &names)
            .finish()
    }
}

impl KafkaSink {
    /// Starts configuring a sink that produces to `topic` through the
    /// brokers `bootstrap_servers` (`host:port[,host:port…]`).
    ///
    /// ```
    /// use ossa_events::sink::{KafkaMode, KafkaSink};
    /// let sink = KafkaSink::builder("broker1:9092,broker2:9092", "agent-events").build()?;
    /// assert_eq!(sink.mode(), KafkaMode::Binary);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn builder(
        bootstrap_servers: impl Into<String>,
        topic: impl Into<String>,
    ) -> KafkaSinkBuilder {
        KafkaSinkBuilder {
            bootstrap_servers: bootstrap_servers.into(),
            topic: topic.into(),
            mode: DEFAULT_MODE,
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            key_field: None,
            delivery_timeout: DEFAULT_DELIVERY_TIMEOUT,
            max_batch: DEFAULT_MAX_BATCH,
            pipeline: DEFAULT_PIPELINE,
            properties: Vec::new(),
        }
    }

    /// The topic.
    ///
    /// ```
    /// use ossa_events::sink::KafkaSink;
    /// let sink = KafkaSink::builder("127.0.0.1:9092", "agent-events").build()?;
    /// assert_eq!(sink.topic(), "agent-events");
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The content mode.
    ///
    /// ```
    /// use ossa_events::sink::{Encoding, KafkaMode, KafkaSink, Sink};
    /// let sink = KafkaSink::builder("127.0.0.1:9092", "agent-events").build()?;
    /// assert_eq!(sink.mode(), KafkaMode::Binary);
    /// assert_eq!(sink.encoding(), Encoding::KafkaBinary);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn mode(&self) -> KafkaMode {
        self.mode
    }
}

impl KafkaSinkBuilder {
    /// The content mode. Defaults to [`KafkaMode::Binary`] ([`DEFAULT_MODE`]).
    ///
    /// ```
    /// use ossa_events::sink::{Encoding, KafkaMode, KafkaSink, Sink};
    /// let sink = KafkaSink::builder("127.0.0.1:9092", "agent-events")
    ///     .mode(KafkaMode::Structured)
    ///     .build()?;
    /// assert_eq!(sink.encoding(), Encoding::Json);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn mode(mut self, mode: KafkaMode) -> Self {
        self.mode = mode;
        self
    }

    /// The producer's `client.id`. Defaults to `ossa-events` ([`DEFAULT_CLIENT_ID`]).
    ///
    /// ```
    /// use ossa_events::sink::KafkaSink;
    /// // Name the service in broker logs and quotas.
    /// let sink = KafkaSink::builder("127.0.0.1:9092", "agent-events")
    ///     .client_id("researcher-agent")
    ///     .build()?;
    /// # drop(sink);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// The attribute (e.g. `ossaagentid`, `subject`, `source`) whose value is
    /// the record key of events without a `partitionkey` extension; events
    /// with neither have no key. Defaults to none. [`build`](Self::build)
    /// refuses a name no attribute of a `ce_` header has (upper case, `_`,
    /// `datacontenttype`, `data`).
    ///
    /// Keyed by agent, each agent's events stay in order on one partition:
    ///
    /// ```
    /// use ossa_events::sink::KafkaSink;
    /// let sink = KafkaSink::builder("127.0.0.1:9092", "agent-events")
    ///     .key_field("ossaagentid")
    ///     .build()?;
    /// # drop(sink);
    /// // An empty attribute name is refused.
    /// assert!(KafkaSink::builder("127.0.0.1:9092", "agent-events").key_field("").build().is_err());
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn key_field(mut self, attribute: impl Into<String>) -> Self {
        self.key_field = Some(attribute.into());
        self
    }

    /// How long librdkafka tries to deliver one event (its
    /// `message.timeout.ms`, retrying within it) before the event's report
    /// says it failed; [`Sink::send`] waits for the reports at most this long
    /// plus a few seconds. Keep it below the emitter's shutdown timeout for a
    /// shutdown that ends with every event settled. Defaults to 30 seconds
    /// ([`DEFAULT_DELIVERY_TIMEOUT`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::sink::KafkaSink;
    /// use ossa_events::Emitter;
    /// // Below the emitter's shutdown timeout: shutdown sees every report.
    /// let sink = KafkaSink::builder("127.0.0.1:9092", "agent-events")
    ///     .delivery_timeout(Duration::from_secs(4))
    ///     .build()?;
    /// let emitter = Emitter::builder("/agents/a")
    ///     .sink(sink)
    ///     .shutdown_timeout(Duration::from_secs(5))
    ///     .build()?;
    /// # drop(emitter);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }

    /// Most batches the emitter's worker keeps in flight at once: it hands
    /// the sink the next batch ([`Sink::start`]) while earlier ones still
    /// wait for their delivery reports, and counts each batch when its
    /// reports are in ([`Sink::settle`]), oldest first. `1` makes every send
    /// wait for its reports before the next. 0 counts as 1. Defaults to 64
    /// ([`DEFAULT_PIPELINE`]).
    ///
    /// Order: librdkafka keeps records in order per partition through its
    /// own retries (idempotent producer). Only a batch that fails for good
    /// within the delivery timeout and is then retried by the emitter can
    /// land after batches started behind it; use `pipeline(1)` when order
    /// must hold even across such an outage.
    ///
    /// Each batch waits at least librdkafka's `linger.ms` (5 ms by
    /// default) for its reports: with few batches in flight that wait
    /// bounds the throughput (one batch every 5 ms with `pipeline(1)`), so
    /// lower it with [`set`](Self::set)`("linger.ms", "0")` there.
    ///
    /// ```
    /// use ossa_events::sink::{KafkaSink, Sink};
    /// let sink = KafkaSink::builder("127.0.0.1:9092", "agent-events").pipeline(1).build()?;
    /// assert_eq!(sink.pipeline(), 1);
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn pipeline(mut self, batches: usize) -> Self {
        self.pipeline = batches.max(1);
        self
    }

    /// Most events per [`Sink::send`]; 0 counts as 1. Defaults to 1 000
    /// ([`DEFAULT_MAX_BATCH`]).
    ///
    /// ```
    /// use ossa_events::sink::{KafkaSink, Sink};
    /// let sink = KafkaSink::builder("127.0.0.1:9092", "agent-events").max_batch(0).build()?;
    /// assert_eq!(sink.max_batch(), 1); // 0 counts as 1
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }

    /// Sets any librdkafka producer property (`compression.type`,
    /// `security.protocol`, `sasl.username`, `linger.ms`…), over the sink's
    /// own defaults (`enable.idempotence=true`, `acks=all`, `linger.ms=5`,
    /// `message.timeout.ms` from [`delivery_timeout`](Self::delivery_timeout),
    /// `bootstrap.servers`, `client.id`); checked by [`build`](Self::build).
    /// Defaults to none.
    ///
    /// ```
    /// use ossa_events::sink::KafkaSink;
    /// let sink = KafkaSink::builder("broker1:9093", "agent-events")
    ///     .set("security.protocol", "sasl_plaintext")
    ///     .set("sasl.mechanism", "PLAIN")
    ///     .set("sasl.username", "agent")
    ///     .set("sasl.password", "s3cret")
    ///     .set("compression.type", "lz4")
    ///     .set("linger.ms", "5")
    ///     .build()?;
    /// # drop(sink);
    /// // A property librdkafka does not know is refused at build, by name.
    /// let refused = KafkaSink::builder("127.0.0.1:9092", "t").set("no.such.property", "1").build();
    /// assert!(matches!(refused, Err(ossa_events::Error::Kafka(e)) if e.to_string().contains("no.such.property")));
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((key.into(), value.into()));
        self
    }

    /// Checks the configuration and makes the producer (which connects in the
    /// background). Fails with [`Error::Io`] of kind
    /// [`InvalidInput`](std::io::ErrorKind::InvalidInput) for an empty topic or
    /// server list, a key field that is empty or no `ce_` attribute (see
    /// [`key_field`](Self::key_field)), and with [`Error::Kafka`] for a
    /// property librdkafka refuses (the message names it).
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use ossa_events::sink::KafkaSink;
    /// use ossa_events::Error;
    /// // No broker needed to build: the producer connects in the background.
    /// let sink = KafkaSink::builder("127.0.0.1:9092", "agent-events").build()?;
    /// # drop(sink);
    /// let empty_topic = KafkaSink::builder("127.0.0.1:9092", "").build();
    /// assert!(matches!(empty_topic, Err(Error::Io(e)) if e.kind() == ErrorKind::InvalidInput));
    /// # Ok::<(), ossa_events::Error>(())
    /// ```
    pub fn build(self) -> Result<KafkaSink, Error> {
        if self.topic.is_empty() {
            return Err(invalid("kafka: empty topic".into()));
        }
        if self.bootstrap_servers.trim().is_empty() {
            return Err(invalid("kafka: empty bootstrap servers".into()));
        }
        if self.key_field.as_deref() == Some("") {
            return Err(invalid("kafka: empty key field".into()));
        }
        // An attribute whose value is a `ce_` header: a name of a–z and 0–9
        // (no event has another), not `datacontenttype` (the `content-type`
        // header) nor `data` (the value). Any other would key no record.
        if let Some(f) = self.key_field.as_deref().filter(|f| {
            !ossa_events_core::attr::is_valid_name(f) || matches!(*f, "datacontenttype" | "data")
        }) {
            return Err(invalid(format!(
                "kafka: key field {f:?} is no attribute a record can be keyed by \
                 (a lower-case a-z/0-9 name, not datacontenttype or data)"
            )));
        }
        // The sink ends each event by its report: without those of
        // successes, every delivered event would be reported timed out and
        // sent again.
        if let Some((k, v)) = self
            .properties
            .iter()
            .rev()
            .find(|(k, _)| k == "delivery.report.only.error")
            .filter(|(_, v)| v.trim() != "false")
        {
            return Err(invalid(format!(
                "kafka: {k}={v:?}: the sink needs the delivery report of every record"
            )));
        }
        // Milliseconds, rounded up: a sub-millisecond timeout is not 0 ("no limit").
        let timeout_ms = self
            .delivery_timeout
            .as_nanos()
            .div_ceil(1_000_000)
            .min(i32::MAX as u128);
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // librdkafka's own default, set here as it is part of what the
            // sink promises. With 64 batches in flight a 5 ms linger costs
            // no throughput (it did with 8: 3-5x fewer events/s, when this
            // was 1 ms), and it makes fewer, larger requests: at 1 ms the
            // idempotent producer reached its 5 requests in flight per
            // partition and librdkafka's broker thread spun in `poll(2)`
            // with no timeout until one came back (376 k calls against
            // 251 k at 5 ms, 4 rounds of 50 000 events on tansu), and
            // tansu spent 1.05 µs of CPU per record against 0.82 µs.
            .set("linger.ms", "5")
            .set("message.timeout.ms", timeout_ms.to_string());
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config.set_log_level(log_level(self.properties.iter().any(|(k, _)| k == "debug")));
        // `delivery.timeout.ms` is librdkafka's alias of
        // `message.timeout.ms`: keep one key, so the value librdkafka uses is
        // the one the sink waits by (the map's order would pick one at random).
        let last = self
            .properties
            .iter()
            .rev()
            .find(|(n, _)| n == "delivery.timeout.ms" || n == "message.timeout.ms");
        if let Some((_, v)) = last {
            config.remove("delivery.timeout.ms");
            config.set("message.timeout.ms", v.as_str());
        }
        // What librdkafka will use, whoever set it; 0 is "no limit".
        let ms = config.get("message.timeout.ms").unwrap_or("").trim();
        let delivery_timeout = match ms.parse::<u64>() {
            Ok(0) => None,
            Ok(ms) => Some(Duration::from_millis(ms)),
            Err(_) => {
                return Err(invalid(format!(
                    "kafka: message.timeout.ms {ms:?} is not a number of milliseconds"
                )));
            }
        };
        let producer = Arc::new(make_producer(&config)?);
        let idle = IdleServer::start(&producer);
        Ok(KafkaSink {
            producer,
            idle,
            config,
            topic: self.topic,
            mode: self.mode,
            key_header: self.key_field.map(|f| format!("ce_{f}")),
            delivery_timeout,
            max_batch: self.max_batch,
            next_seq: 0,
            scratch: Vec::new(),
            spare_outcomes: Vec::new(),
            flights: VecDeque::new(),
            pipeline: self.pipeline,
            abandoned: false,
            purge_waited: false,
        })
    }
}

/// The lowest level of the lines librdkafka writes: what `tracing` takes
/// for the target `librdkafka` now (they go there, see [`Reports`]), or
/// debug when librdkafka's `debug` property is set. rdkafka takes it from
/// the `log` crate's level, which an application on `tracing` alone leaves
/// at errors only, and applies it over `debug`'s.
fn log_level(debug: bool) -> RDKafkaLogLevel {
    use tracing::Level;
    if debug || tracing::enabled!(target: "librdkafka", Level::DEBUG) {
        RDKafkaLogLevel::Debug
    } else if tracing::enabled!(target: "librdkafka", Level::INFO) {
        RDKafkaLogLevel::Info
    } else if tracing::enabled!(target: "librdkafka", Level::WARN) {
        RDKafkaLogLevel::Warning
    } else {
        RDKafkaLogLevel::Error
    }
}

fn make_producer(config: &ClientConfig) -> Result<BaseProducer<Reports>, Error> {
    config
        .create_with_context(Reports::default())
        .map_err(|e| Error::Kafka(Box::new(e)))
}

fn invalid(msg: String) -> Error {
    Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg))
}

/// Whether a failed report is worth retrying.
fn retryable(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    let Some(code) = e.rdkafka_error_code() else {
        return true;
    };
    !matches!(
        code,
        C::UnknownTopic
            | C::UnknownTopicOrPartition
            | C::UnknownTopicId
            | C::UnknownPartition
            | C::InvalidTopic
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication
            | C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::InvalidMessage
            | C::InvalidRecord
            | C::BadMessage
            | C::InvalidRequiredAcks
            | C::UnsupportedForMessageFormat
            | C::PolicyViolation
            | C::InvalidArgument
    )
}

/// Whether a failed report says this producer can deliver nothing more:
/// librdkafka's fatal error, or the broker fencing its producer id
/// (`ProducerFenced`, `InvalidProducerEpoch`). A fenced idempotent producer
/// is not fatal to librdkafka, which bumps its epoch and sends again; a
/// broker that fences the bumped epoch too (tansu after a freeze longer than
/// the delivery timeout) then failed every later record, the broker up, and
/// the emitter's retries all with it. A new producer gets a new id.
fn producer_is_spent(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(C::Fatal | C::ProducerFenced | C::InvalidProducerEpoch)
    )
}

fn report_error(e: &KafkaError) -> Error {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageTimedOut) => Error::Timeout(Phase::Send),
        _ => Error::Kafka(Box::new(e.clone())),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

impl Sink for KafkaSink {
    fn takes_structured(&self) -> bool {
        true
    }

    fn encoding(&self) -> Encoding {
        match self.mode {
            KafkaMode::Binary => Encoding::KafkaBinary,
            KafkaMode::Structured => Encoding::Json,
        }
    }

    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn send(&mut self, events: &[Encoded]) -> Result<(), SendError> {
        self.send_by(events, SendDeadline::NONE)
    }

    fn send_by(&mut self, events: &[Encoded], deadline: SendDeadline<'_>) -> Result<(), SendError> {
        let want = self.encoding();
        super::send_in_encoding(events, want, "Kafka", |ev| self.send_checked(ev, deadline))
    }

    fn flush(&mut self) -> Result<(), SendError> {
        // `send` and `settle` return only once every report is in: nothing
        // is held that the emitter counts as delivered.
        Ok(())
    }

    fn pipeline(&self) -> usize {
        self.pipeline
    }

    fn start(
        &mut self,
        events: &[Encoded],
        deadline: SendDeadline<'_>,
    ) -> Result<Ticket, SendError> {
        let want = self.encoding();
        if events.iter().any(|e| !super::takes(want, e.encoding())) {
            // Settled here, as `send` settles it: the misencoded events fail,
            // the others are sent and waited for.
            return self.send_by(events, deadline).map(|()| Ticket::new(0));
        }
        let base = self.launch(events, deadline);
        Ok(ticket_of(base))
    }

    fn settle(
        &mut self,
        ticket: Ticket,
        events: &[Encoded],
        deadline: SendDeadline<'_>,
    ) -> Result<(), SendError> {
        if ticket.get() == 0 {
            // `start` settled it already (events not in this sink's
            // encoding: sent there, as `send` sends them).
            return Ok(());
        }
        let known = self
            .flights
            .iter()
            .find(|f| ticket_of(f.base) == ticket)
            .map(|f| f.outcomes.len() == events.len() && f.check == id_check(events));
        match known {
            Some(true) => match self.land(ticket.get().wrapping_sub(1) as usize, deadline) {
                Some((flight, phase)) => self.conclude(flight, phase),
                None => Err(lost_flight()),
            },
            Some(false) => Err(SendError::fatal(Error::Transport(
                "kafka: settle with events that are not the batch of its ticket".into(),
            ))),
            None => Err(SendError::fatal(Error::Transport(
                "kafka: settle of a ticket this sink did not hand out".into(),
            ))),
        }
    }

    /// Serves librdkafka's reports until the flight of `ticket` has all of
    /// its own or its delivery timeout has passed (`settle` then answers at
    /// once), or until `until`.
    fn wait_ready(&mut self, ticket: Ticket, until: Instant) -> bool {
        let base = ticket.get().wrapping_sub(1) as usize;
        loop {
            let Some((_, waiting, deadline)) = self.look(base) else {
                return true;
            };
            let now = Instant::now();
            if waiting == 0 || deadline.is_some_and(|d| now >= d) {
                return true;
            }
            if now >= until {
                return false;
            }
            // As `land` waits: a step, whether or not reports came.
            std::thread::sleep(wait_step(now, deadline).min(until.saturating_duration_since(now)));
        }
    }
}

/// The ticket of the flight that starts at record `base`: never 0, which
/// stands for a batch `start` settled itself (the first flight's base is 0:
/// its ticket was taken for that, and a settle of such a batch found the
/// first flight, or none, and failed events that had been delivered).
fn ticket_of(base: usize) -> Ticket {
    Ticket::new((base as u64).wrapping_add(1))
}

/// How long to sleep before the next look at a flight's reports: a
/// [`WAIT_STEP`], or less when its `deadline` comes sooner.
fn wait_step(now: Instant, deadline: Option<Instant>) -> Duration {
    deadline.map_or(WAIT_STEP, |d| {
        d.saturating_duration_since(now).min(WAIT_STEP)
    })
}

/// A flight the sink cannot find again (a bug): nothing can be said of its events.
fn lost_flight() -> SendError {
    SendError::fatal(Error::Transport("kafka: a started batch was lost".into()))
}

/// A fingerprint of the ids of `events`, in order, taken 8 bytes at a time
/// (FNV-1a's step on words): it is taken at `start` and again at `settle`,
/// and byte by byte its chain of multiplications cost ~80 ns an event.
/// A check that `settle` is given the batch `start` was, not a defence
/// against crafted ids.
fn id_check(events: &[Encoded]) -> u64 {
    let step = |h: u64, w: u64| (h ^ w).wrapping_mul(0x100_0000_01b3);
    events.iter().fold(crate::ids::FNV_START, |h, e| {
        let id = e.id_bytes();
        let mut words = id.chunks_exact(8);
        let h = words.by_ref().fold(h, |h, w| {
            step(h, <[u8; 8]>::try_from(w).map_or(0, u64::from_le_bytes))
        });
        let mut last = [0u8; 8];
        let rest = words.remainder();
        last[..rest.len()].copy_from_slice(rest);
        // The length ends each id, so ids cannot run into each other.
        step(step(h, u64::from_le_bytes(last)), id.len() as u64)
    })
}

impl KafkaSink {
    /// The record key of structured event `e`: `partitionkey`, else the key
    /// field, else none (binary mode finds it among the headers it builds).
    fn key_of(&mut self, e: &Encoded) -> Result<Option<String>, Error> {
        let json = e.json();
        if self.key_header.is_none() && !contains(json, b"\"partitionkey\"") {
            return Ok(None);
        }
        // Unescaped strings never outgrow their JSON.
        self.scratch.clear();
        self.scratch.resize(json.len() + 64, 0);
        let mut scratch = Scratch::new(&mut self.scratch);
        let ev = parse_event(json, &mut scratch).map_err(|err| {
            Error::Encode(format!("kafka: event {:?} for its key: {err}", e.id()))
        })?;
        let mut field = None;
        for h in binary::headers(&ev, Binding::Kafka) {
            let name = h.name().to_string();
            if name == PARTITION_KEY_HEADER {
                return Ok(Some(h.value().to_string()));
            }
            if self.key_header.as_deref() == Some(name.as_str()) {
                field = Some(h.value().to_string());
            }
        }
        Ok(field)
    }

    /// Produces `e` as record number `seq`, waiting out a full queue.
    fn produce(
        &mut self,
        e: &Encoded,
        seq: usize,
        deadline: Option<Instant>,
        outer: SendDeadline<'_>,
    ) -> Result<(), SendError> {
        let mut headers;
        let parsed_key;
        let key: Option<&[u8]>;
        // An event that carries events goes structured (see `Encoded::for_sink`).
        let structured = self.mode == KafkaMode::Structured || e.encoding() == Encoding::Json;
        let payload: Option<&[u8]> = if structured {
            parsed_key = self.key_of(e).map_err(SendError::fatal)?;
            key = parsed_key.as_deref().map(str::as_bytes);
            headers = OwnedHeaders::new_with_capacity(1).insert(Header {
                key: "content-type",
                value: Some(STRUCTURED_CT.as_bytes()),
            });
            Some(e.json())
        } else {
            // One pass: the headers, and the key among them.
            headers = OwnedHeaders::new_with_capacity(12);
            let (mut partition_key, mut field) = (None, None);
            for (name, value) in e.header_bytes() {
                if name == PARTITION_KEY_HEADER {
                    partition_key = Some(value);
                } else if self.key_header.as_deref() == Some(name) {
                    field = Some(value);
                }
                headers = headers.insert(Header {
                    key: name,
                    value: Some(value),
                });
            }
            key = partition_key.or(field);
            if let Some(ct) = e.content_type() {
                headers = headers.insert(Header {
                    key: "content-type",
                    value: Some(ct.as_bytes()),
                });
            }
            // No data is no value (a tombstone where the topic is
            // compacted); empty data, an empty value (3.2.2).
            e.has_data().then(|| e.body())
        };
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&self.topic, seq).headers(headers);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(p) = payload {
            record = record.payload(p);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Backpressure: wait for reports to make room, then again.
                    if outer.passed() {
                        // What was produced is given up on too.
                        self.give_up_unsent();
                        let e = Error::Timeout(Phase::Shutdown);
                        return Err(SendError::retryable(e, None));
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(SendError::retryable(Error::Timeout(Phase::Send), None));
                    }
                    if !self.serve_ready() {
                        std::thread::sleep(WAIT_STEP);
                    }
                    route(self.producer.context(), &mut self.flights);
                    record = back;
                }
                Err((err, _)) => {
                    let error = report_error(&err);
                    if matches!(err.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal)) {
                        self.reset_producer();
                    }
                    return Err(if retryable(&err) {
                        SendError::retryable(error, None)
                    } else {
                        SendError::fatal(error)
                    });
                }
            }
        }
    }

    /// At shutdown's deadline: purges what librdkafka has not sent yet
    /// (certainly not delivered), before the emitter counts and reports it
    /// as not delivered; left queued until drop, it went out if the broker
    /// came back during drop's wait. Drop then waits only briefly.
    fn give_up_unsent(&mut self) {
        self.abandoned = true;
        self.producer
            .purge(PurgeConfig::default().queue().non_blocking());
    }

    /// Produces `events` as a new flight at the back of the queue of
    /// flights; returns its base sequence number (its ticket).
    fn launch(&mut self, events: &[Encoded], outer: SendDeadline<'_>) -> usize {
        let base = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(events.len());
        let deadline = self
            .delivery_timeout
            .and_then(|t| Instant::now().checked_add(t + REPORT_GRACE));
        let mut outcomes = std::mem::take(&mut self.spare_outcomes);
        outcomes.clear();
        outcomes.resize_with(events.len(), || None);
        // The flight is in place before its first record is produced: a
        // report served and routed while librdkafka's queue is full, or
        // when a fatal error replaces the producer, finds it (routed with
        // no flight to go to, it would be dropped, and the flight would
        // wait for it until its deadline, then have a delivered record sent
        // again). A record counts as waiting before it is handed over, so
        // its report can never come before its count.
        self.flights.push_back(Flight {
            base,
            outcomes,
            produced: 0,
            waiting: 0,
            local: None,
            refused: Vec::new(),
            deadline,
            check: id_check(events),
        });
        for (i, e) in events.iter().enumerate() {
            if let Some(f) = self.flights.back_mut() {
                f.waiting += 1;
            }
            let result = self.produce(e, base.wrapping_add(i), deadline, outer);
            // Nothing adds or removes flights while one is launched.
            let Some(f) = self.flights.back_mut().filter(|f| f.base == base) else {
                break;
            };
            match result {
                Ok(()) => {}
                // Refused for good: this event's outcome; the next ones go on.
                Err(err) if err.failures().iter().all(|f| f.retry == Retry::No) => {
                    f.waiting = f.waiting.saturating_sub(1);
                    f.refused.push((i, err.into_error()));
                }
                // Full queue past the deadline, a retryable error: stop here.
                Err(err) => {
                    f.waiting = f.waiting.saturating_sub(1);
                    f.local = Some(err);
                    break;
                }
            }
            f.produced = i + 1;
            if f.produced % SERVE_EVERY == 0 {
                // The reports already in, as a producer that polls itself
                // does: librdkafka counts a record against its queue until
                // its report is served.
                let _ = self.serve_ready();
            }
        }
        // librdkafka gives each record the delivery timeout from when it
        // was handed over: the flight waits for the last one as long. (Its
        // deadline taken before the first, a record handed over late, after
        // waiting out a full queue, had less, and one the broker stored
        // was reported timed out, to be sent again.)
        if let Some(f) = self.flights.back_mut().filter(|f| f.base == base) {
            f.deadline = self
                .delivery_timeout
                .and_then(|t| Instant::now().checked_add(t + REPORT_GRACE));
        }
        // One huge structured event does not keep its parse buffer.
        trim(&mut self.scratch);
        base
    }

    /// Serves the reports ready, then looks at the flight that starts at
    /// `base`: its place in the queue of flights, the reports it still
    /// waits for and its deadline (`None`: no such flight).
    fn look(&mut self, base: usize) -> Option<(usize, usize, Option<Instant>)> {
        let _ = self.serve_ready();
        self.take_reports();
        let pos = self.flights.iter().position(|f| f.base == base)?;
        let f = self.flights.get(pos)?;
        Some((pos, f.waiting, f.deadline))
    }

    /// Waits until the flight that starts at `base` has every report it is
    /// owed, or its deadline or `outer` passes (then purges what librdkafka
    /// has not sent, at shutdown); removes it and returns it with the phase
    /// a missing report is put down to.
    fn land(&mut self, base: usize, outer: SendDeadline<'_>) -> Option<(Flight, Phase)> {
        loop {
            let (pos, waiting, deadline) = self.look(base)?;
            if waiting == 0 {
                let f = self.flights.remove(pos)?;
                return Some((f, Phase::Send));
            }
            if outer.passed() {
                // Shutdown's deadline: collect the reports of what is
                // purged, then let the emitter count the rest. (Only the
                // first flight given up on waits for them: the emitter then
                // settles every flight it started, and their reports of the
                // purge came in during that wait.)
                self.give_up_unsent();
                let wait = if self.purge_waited {
                    Duration::ZERO
                } else {
                    Duration::from_millis(20)
                };
                self.purge_waited = true;
                let end = Instant::now() + wait;
                while Instant::now() < end {
                    if !self.serve_ready() {
                        std::thread::sleep(WAIT_STEP);
                    }
                    self.take_reports();
                    if self.flights.get(pos).is_none_or(|f| f.waiting == 0) {
                        break;
                    }
                }
                let f = self.flights.remove(pos)?;
                return Some((f, Phase::Shutdown));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                let f = self.flights.remove(pos)?;
                return Some((f, Phase::Send));
            }
            let mut step = wait_step(now, deadline);
            if let Some(o) = outer.get() {
                step = step.min(
                    o.saturating_duration_since(now)
                        .max(Duration::from_millis(1)),
                );
            }
            std::thread::sleep(step);
        }
    }

    fn send_checked(
        &mut self,
        events: &[Encoded],
        outer: SendDeadline<'_>,
    ) -> Result<(), SendError> {
        if events.is_empty() {
            return Ok(());
        }
        let base = self.launch(events, outer);
        match self.land(base, outer) {
            Some((flight, phase)) => self.conclude(flight, phase),
            None => Err(lost_flight()),
        }
    }

    /// Turns a flight's reports into one outcome per event: runs of events
    /// with the same outcome share one failure.
    fn conclude(&mut self, flight: Flight, phase: Phase) -> Result<(), SendError> {
        let Flight {
            mut outcomes,
            produced,
            mut local,
            mut refused,
            ..
        } = flight;
        let n = outcomes.len();
        let mut failed: Option<SendError> = None;
        let mut add = |range: std::ops::Range<usize>, retry: Retry, error: Error| {
            failed = Some(match failed.take() {
                Some(f) => f.and(range, retry, error),
                None => SendError::at(range, retry, error),
            });
        };
        let mut reset = false;
        let mut i = 0;
        while i < produced.min(n) {
            if let Some(pos) = refused.iter().position(|(j, _)| *j == i) {
                let (_, error) = refused.swap_remove(pos);
                add(i..i + 1, Retry::No, error);
                i += 1;
                continue;
            }
            let Some(o) = outcomes.get(i) else { break };
            // The run of events from `i` with the same kind of outcome.
            let same = |x: &Option<Result<(), KafkaError>>| match (o, x) {
                (Some(Ok(())), Some(Ok(()))) | (None, None) => true,
                (Some(Err(a)), Some(Err(b))) => a.rdkafka_error_code() == b.rdkafka_error_code(),
                _ => false,
            };
            let is_refused = |j: usize| refused.iter().any(|(r, _)| *r == j);
            let run = outcomes.get(i..produced.min(n)).map_or(1, |r| {
                r.iter()
                    .enumerate()
                    .take_while(|&(k, x)| !is_refused(i + k) && same(x))
                    .count()
                    .max(1)
            });
            let range = i..i + run;
            match o {
                Some(Ok(())) => {}
                // Purged by the sink itself when shutdown's deadline passed
                // (this flight's, or an earlier one's: it purges them all).
                Some(Err(e))
                    if (phase == Phase::Shutdown || self.abandoned)
                        && matches!(
                            e.rdkafka_error_code(),
                            Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight)
                        ) =>
                {
                    add(range, Retry::LATER, Error::Timeout(Phase::Shutdown));
                }
                Some(Err(e)) => {
                    reset |= producer_is_spent(e);
                    let retry = if retryable(e) {
                        Retry::LATER
                    } else {
                        Retry::No
                    };
                    add(range, retry, report_error(e));
                }
                // Produced, no report in time.
                None => add(range, Retry::LATER, Error::Timeout(phase)),
            }
            i += run;
        }
        if produced < n {
            // Never produced: the local failure says why.
            match local.take() {
                Some(e) => {
                    let e = e.clamped(n - produced).shifted(produced);
                    failed = Some(match failed {
                        Some(f) => f.merge(e),
                        None => e,
                    });
                }
                None => add(produced..n, Retry::LATER, Error::Timeout(phase)),
            }
        }
        // librdkafka's fatal idempotence error fails the records with its
        // cause (`UnknownProducerId`, `OutOfOrderSequenceNumber`…), not
        // `Fatal`: ask the producer. Kept, it refused every later record
        // with `Fatal`, so the emitter's next attempt was lost too.
        if reset || (failed.is_some() && self.producer.client().fatal_error().is_some()) {
            self.reset_producer();
        }
        outcomes.clear();
        self.spare_outcomes = outcomes;
        failed.map_or(Ok(()), Err)
    }

    /// [`serve`] on this sink's producer.
    fn serve_ready(&self) -> bool {
        serve(&self.producer)
    }

    /// Hands the reports that came in to their flights.
    fn take_reports(&mut self) {
        route(self.producer.context(), &mut self.flights);
    }

    /// After librdkafka's fatal error (the idempotent producer cannot go on):
    /// a new producer for the next send.
    fn reset_producer(&mut self) {
        if let Ok(p) = make_producer(&self.config) {
            self.idle.stop();
            let old = std::mem::replace(&mut self.producer, Arc::new(p));
            self.idle = IdleServer::start(&self.producer);
            // Its messages all failed with the fatal error already; their
            // reports go to their flights, and a record of the old producer
            // that still has none never will: it is put down to a timeout
            // (retried), not waited for.
            let _ = old.flush(Duration::from_millis(100));
            route(old.context(), &mut self.flights);
            for f in &mut self.flights {
                let produced = f.produced;
                for slot in f.outcomes.iter_mut().take(produced) {
                    if slot.is_none() {
                        *slot = Some(Err(KafkaError::MessageProduction(
                            RDKafkaErrorCode::MessageTimedOut,
                        )));
                    }
                }
                f.waiting = 0;
            }
        }
    }
}

/// Hands the reports in `reports` to their flights. Reports of flights
/// already landed (timed out) are of no use now and are dropped.
fn route(reports: &Reports, flights: &mut VecDeque<Flight>) {
    let lock = |m: &Mutex<Vec<Report>>| {
        let mut v = m.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *v)
    };
    let mut got = lock(&reports.spare);
    std::mem::swap(
        &mut *reports.done.lock().unwrap_or_else(|p| p.into_inner()),
        &mut got,
    );
    for (seq, r) in got.drain(..) {
        let flight = flights
            .iter_mut()
            .find(|f| seq.wrapping_sub(f.base) < f.outcomes.len());
        if let Some(f) = flight {
            let i = seq.wrapping_sub(f.base);
            if let Some(slot) = f.outcomes.get_mut(i).filter(|s| s.is_none()) {
                *slot = Some(r);
                f.waiting = f.waiting.saturating_sub(1);
            }
        }
    }
    *reports.spare.lock().unwrap_or_else(|p| p.into_inner()) = got;
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        // The producer is this sink's own from here (the thread held it too).
        self.idle.stop();
        // librdkafka's own drop purges: wait for what it still holds instead
        // (only after a send that timed out is there anything). After a send
        // cut short by shutdown, those events are already counted as not
        // delivered: wait only briefly, then purge. So too for flights never
        // settled: the emitter gave up on them (at its shutdown deadline)
        // and counted their events; delivered after, they were reported as
        // not delivered.
        let abandoned = self.abandoned || !self.flights.is_empty();
        if abandoned && self.producer.in_flight_count() > 0 {
            // Not sent yet: certainly not delivered, as counted. Only the
            // records on the wire are waited for.
            self.producer
                .purge(PurgeConfig::default().queue().non_blocking());
        }
        if self.producer.in_flight_count() > 0 {
            let limit = match (abandoned, self.delivery_timeout) {
                (true, _) => ABANDON_GRACE,
                (false, Some(t)) => t,
                (false, None) => DEFAULT_DELIVERY_TIMEOUT,
            };
            if self.producer.flush(limit).is_err() {
                self.producer
                    .purge(PurgeConfig::default().queue().inflight().non_blocking());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::Failure;
    use ossa_events_core::Event;

    fn sink(props: &[(&str, &str)]) -> KafkaSink {
        let mut b = KafkaSink::builder("127.0.0.1:9", "t").delivery_timeout(Duration::from_secs(7));
        for (k, v) in props {
            b = b.set(*k, *v);
        }
        b.build().unwrap()
    }

    fn events(n: usize) -> Vec<Encoded> {
        (0..n)
            .map(|i| {
                let id = format!("e{i}");
                let ev = Event::builder()
                    .id(&id)
                    .source("/s")
                    .ty("t")
                    .build()
                    .unwrap();
                Encoded::new(&ev, Encoding::KafkaBinary).unwrap()
            })
            .collect()
    }

    /// Without the reports of successes every delivered event would be
    /// reported timed out and sent again: the property is refused, named.
    #[test]
    fn a_producer_that_reports_only_errors_is_refused() {
        let build = |v: &str| {
            KafkaSink::builder("127.0.0.1:9", "t")
                .set("delivery.report.only.error", v)
                .build()
        };
        let err = build("true").map(|_| ()).unwrap_err();
        assert!(
            err.to_string().contains("delivery.report.only.error"),
            "{err}"
        );
        assert!(build("false").is_ok());
    }

    #[test]
    fn librdkafka_writes_the_lines_tracing_takes() {
        assert!(matches!(log_level(true), RDKafkaLogLevel::Debug));
        // No subscriber: nothing is taken but errors.
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::new(), || {
            assert!(matches!(log_level(false), RDKafkaLogLevel::Error));
        });
        #[cfg(feature = "tracing")]
        {
            use tracing_subscriber::layer::SubscriberExt as _;
            let level = |max| {
                let sub = tracing_subscriber::registry().with(max);
                tracing::subscriber::with_default(sub, || log_level(false))
            };
            use tracing::level_filters::LevelFilter;
            assert!(matches!(level(LevelFilter::WARN), RDKafkaLogLevel::Warning));
            assert!(matches!(level(LevelFilter::INFO), RDKafkaLogLevel::Info));
            assert!(matches!(level(LevelFilter::TRACE), RDKafkaLogLevel::Debug));
        }
    }

    #[test]
    fn librdkafka_log_lines_are_served_while_nothing_is_sent() {
        // librdkafka's log lines wait in its queue until it is polled; the
        // sink sends nothing here, so only its idle server can serve them.
        let s = sink(&[("debug", "generic,broker")]);
        let end = Instant::now() + Duration::from_secs(10);
        while s.producer.context().logs.load(Ordering::Relaxed) == 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(s.producer.context().logs.load(Ordering::Relaxed) > 0);
        // Dropping stops the server's thread (joined, not left behind).
        let t = Instant::now();
        drop(s);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    /// Issue 11, problem 3: the sink waits by the value librdkafka uses,
    /// whichever of the two names set it, and 0 means no limit.
    #[test]
    fn the_delivery_timeout_is_read_from_either_name_and_zero_is_no_limit() {
        assert_eq!(sink(&[]).delivery_timeout, Some(Duration::from_secs(7)));
        let s = sink(&[("delivery.timeout.ms", "1500")]);
        assert_eq!(s.delivery_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(s.config.get("message.timeout.ms"), Some("1500"));
        assert_eq!(s.config.get("delivery.timeout.ms"), None);
        // The last one set wins, as in librdkafka.
        let s = sink(&[
            ("delivery.timeout.ms", "1500"),
            ("message.timeout.ms", "2500"),
        ]);
        assert_eq!(s.delivery_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(sink(&[("delivery.timeout.ms", "0")]).delivery_timeout, None);
        assert_eq!(sink(&[("message.timeout.ms", "0")]).delivery_timeout, None);
        let bad = KafkaSink::builder("127.0.0.1:9", "t")
            .set("message.timeout.ms", "soon")
            .build();
        assert!(bad.is_err());
    }

    /// Issue 11, problems 4 and 10: each record's report is its event's
    /// outcome (records delivered behind a failed one are delivered), and a
    /// batch is settled by its ticket, checked against its events.
    #[test]
    fn each_record_gets_its_own_outcome_and_settle_goes_by_ticket() {
        let mut s = sink(&[]);
        let evs = events(6);
        let auth = KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed);
        let down = KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas);
        let flight = Flight {
            base: 0,
            outcomes: vec![
                Some(Ok(())),
                Some(Err(auth)),
                Some(Ok(())),
                Some(Err(down)),
                None,
                None,
            ],
            produced: 6,
            waiting: 1,
            local: None,
            // Refused before it was produced (too large): its own outcome.
            refused: vec![(5, Error::Encode("too large".into()))],
            deadline: None,
            check: id_check(&evs),
        };
        let err = s.conclude(flight, Phase::Send).unwrap_err();
        assert!(err.failure_of(0).is_none());
        assert_eq!(err.failure_of(1).map(|f| f.retry), Some(Retry::No));
        assert!(
            err.failure_of(2).is_none(),
            "delivered behind a failure: {err:?}"
        );
        assert_eq!(err.failure_of(3).map(|f| f.retry), Some(Retry::LATER));
        assert!(matches!(
            err.failure_of(4).map(|f| &f.error),
            Some(Error::Timeout(Phase::Send))
        ));
        assert!(matches!(
            err.failure_of(5),
            Some(Failure {
                retry: Retry::No,
                error: Error::Encode(_),
                ..
            })
        ));

        // Tickets: an unknown one, or events that are not its batch, fail.
        let unknown = s
            .settle(Ticket::new(99), &evs, SendDeadline::NONE)
            .unwrap_err();
        assert!(
            unknown.to_string().contains("did not hand out"),
            "{unknown}"
        );
        s.flights.push_back(Flight {
            base: 40,
            outcomes: vec![None, None],
            produced: 0,
            waiting: 0,
            local: None,
            refused: Vec::new(),
            deadline: None,
            check: id_check(&evs[..2]),
        });
        let wrong = s
            .settle(ticket_of(40), &evs[2..4], SendDeadline::NONE)
            .unwrap_err();
        assert!(
            wrong.to_string().contains("not the batch of its ticket"),
            "{wrong}"
        );
    }

    /// `wait_ready`: a flight whose reports have not come (no broker) is
    /// not ready, and the wait ends at `until`; one with every report in,
    /// or past its delivery timeout, or a ticket the sink does not know, is.
    #[test]
    fn wait_ready_says_when_settle_would_answer_at_once() {
        let mut s = sink(&[]);
        let evs = events(2);
        let t = s.start(&evs, SendDeadline::NONE).unwrap();
        let asked = Instant::now();
        assert!(!s.wait_ready(t, asked + Duration::from_millis(150)));
        assert!(asked.elapsed() >= Duration::from_millis(150));
        // No wait at all with `until` passed.
        let asked = Instant::now();
        assert!(!s.wait_ready(t, asked));
        assert!(asked.elapsed() < Duration::from_millis(100));
        assert!(s.wait_ready(Ticket::new(1_000), Instant::now()));
        let flight = |base, waiting, deadline| Flight {
            base,
            outcomes: vec![None, None],
            produced: 2,
            waiting,
            local: None,
            refused: Vec::new(),
            deadline,
            check: id_check(&evs),
        };
        s.flights.push_back(flight(40, 0, None));
        assert!(s.wait_ready(ticket_of(40), Instant::now()));
        s.flights.push_back(flight(50, 2, Some(Instant::now())));
        assert!(s.wait_ready(ticket_of(50), Instant::now() + Duration::from_secs(5)));
        // The started batch is still settled as before (timed out: retry).
        s.flights.retain(|f| ticket_of(f.base) == t);
        if let Some(f) = s.flights.front_mut() {
            f.deadline = Some(Instant::now());
        }
        let err = s.settle(t, &evs, SendDeadline::NONE).unwrap_err();
        assert_eq!(err.failure_of(0).map(|f| f.retry), Some(Retry::LATER));
        // Given up on: the drop does not wait out the delivery timeout.
        s.abandoned = true;
    }

    /// Ticket 0 is a batch `start` settled itself (as `HttpSink`'s is):
    /// `settle` answers for it at once, and no flight has it, the first
    /// one (record 0 on) included.
    #[test]
    fn ticket_zero_is_settled_at_start_and_no_flight_has_it() {
        let mut s = sink(&[]);
        let evs = events(2);
        let t = s.start(&evs, SendDeadline::NONE).unwrap();
        assert_eq!(s.flights.front().map(|f| f.base), Some(0));
        assert_ne!(t.get(), 0);
        assert!(
            s.settle(Ticket::new(0), &evs[..1], SendDeadline::NONE)
                .is_ok()
        );
        assert!(s.wait_ready(Ticket::new(0), Instant::now()));
        assert_eq!(
            s.flights.len(),
            1,
            "the first flight was taken for ticket 0"
        );
        s.abandoned = true;
    }
}
