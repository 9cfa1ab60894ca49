//! `ossa-events consume`: read CloudEvents from a Kafka topic and print each
//! valid one as a canonical JSON line.

use std::process::ExitCode;
use std::time::Duration;

use clap::ArgMatches;

use super::args::{HelpFlag, positive, secs, unless_blank_env};
use super::progress::ProgressFlags;

/// Read CloudEvents from a Kafka topic (binary and structured records, per the
/// Kafka binding) and print each valid event as one line of canonical structured
/// JSON on stdout.
///
/// Without --group, every partition of the topic is assigned directly (no consumer
/// group, nothing committed) and reading starts at the end, or at the beginning
/// with --from-beginning. With --group, the consumer joins group G, commits its
/// offsets, and --from-beginning applies where G has no committed offset.
///
/// A record that is not a valid CloudEvent is reported on stderr as
/// 'partition P offset O: <error>' and skipped; it does not count toward
/// --max-events. Without --max-events and --timeout it runs until stopped (SIGINT or SIGTERM).
///
/// While it runs, a progress line on stderr shows the events printed, the invalid
/// records and the rate (redrawn every 250 ms, cleared at the end), when stderr is
/// a terminal. At the end a summary line goes to stderr:
///   consume: printed N, invalid N
// This doc comment is the command's help, plain text rather than Markdown.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, clap::Parser)]
#[command(
    name = "consume",
    verbatim_doc_comment,
    override_usage = "consume --brokers BROKERS --topic T [--group G] [--from-beginning] [--max-events N] [--timeout SECS]",
    after_help = "\
SIGINT or SIGTERM stops it at the next poll (or while it waits for the
brokers): offsets are committed (with --group; brokers that do not answer
are waited for 5 s at most), the summary printed, and it exits 130 (143 for
SIGTERM); a second signal exits at once.

Exit status: 0 when stopped by --max-events or --timeout; 1 when the topic
cannot be read (missing, or its brokers never answered by --timeout) or
stdout is closed; 2 on bad arguments (or a build without
the kafka feature); 130/143 when stopped by SIGINT/SIGTERM.

Examples:
  ossa-events consume --brokers 127.0.0.1:9092 --topic agent-events
  ossa-events consume --brokers 127.0.0.1:9092 --topic agent-events --from-beginning --timeout 5
  ossa-events consume --brokers 127.0.0.1:9092 --topic agent-events --group audit --max-events 100"
)]
pub(crate) struct Args {
    /// Bootstrap servers, e.g. 127.0.0.1:9092 (required)
    #[arg(
        long,
        value_name = "BROKERS",
        alias = "kafka",
        env = "OSSA_KAFKA_BROKERS",
        hide_env_values = true
    )]
    brokers: Option<String>,
    /// Topic to read (required)
    #[arg(
        long,
        value_name = "T",
        env = "OSSA_KAFKA_TOPIC",
        hide_env_values = true
    )]
    topic: Option<String>,
    /// Consumer group [default: none, partitions assigned]
    #[arg(long, value_name = "G")]
    group: Option<String>,
    /// Start at the earliest offset instead of the end
    #[arg(long)]
    from_beginning: bool,
    /// Stop after N valid events (N ≥ 1)
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = positive
    )]
    max_events: Option<u64>,
    /// Stop after SECS without a record (fractions allowed,
    /// at most 86400)
    #[arg(
        long,
        value_name = "SECS",
        verbatim_doc_comment,
        allow_negative_numbers = true,
        value_parser = secs(MAX_TIMEOUT_SECS)
    )]
    timeout: Option<Duration>,
    #[command(flatten)]
    progress: ProgressFlags,
    #[command(flatten)]
    pub(super) help: HelpFlag,
}

/// Largest `--timeout` accepted, in seconds (one day).
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// `consume`'s arguments, checked.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
struct Settings {
    brokers: String,
    topic: String,
    group: Option<String>,
    from_beginning: bool,
    max_events: Option<u64>,
    timeout: Option<Duration>,
    progress: bool,
}

/// The checked arguments, or a one-line error (`m` tells which values came
/// from the environment: a blank one counts as unset).
fn settings(a: Args, m: &ArgMatches) -> Result<Settings, String> {
    let non_empty = |name: &str, v: Option<String>| -> Result<Option<String>, String> {
        match v {
            Some(v) if v.trim().is_empty() => {
                Err(format!("consume: {name} needs a non-empty value"))
            }
            v => Ok(v),
        }
    };
    let brokers = non_empty("--brokers", unless_blank_env(m, "brokers", a.brokers))?
        .ok_or("consume: --brokers BROKERS is required")?;
    let topic = non_empty("--topic", unless_blank_env(m, "topic", a.topic))?
        .ok_or("consume: --topic T is required")?;
    let group = non_empty("--group", a.group)?;
    if !cfg!(feature = "kafka") {
        return Err(
            "consume: this build has no kafka feature (build or install it with the cargo feature `kafka`)"
                .into(),
        );
    }
    Ok(Settings {
        brokers,
        topic,
        group,
        from_beginning: a.from_beginning,
        max_events: a.max_events,
        timeout: a.timeout,
        progress: a.progress.wanted(),
    })
}

/// Runs `consume` with its parsed arguments; `m` is their matches (see
/// [`settings`]).
pub(crate) fn run(a: Args, m: &ArgMatches) -> ExitCode {
    match settings(a, m) {
        Ok(a) => consume(&a),
        Err(e) => super::usage_error(Some("consume"), &e),
    }
}

/// Without the `kafka` feature there is no consumer (refused by `parse_args`).
#[cfg(not(feature = "kafka"))]
fn consume(_: &Settings) -> ExitCode {
    super::usage_error(
        Some("consume"),
        "consume: this build has no kafka feature (build or install it with the cargo feature `kafka`)",
    )
}

/// The headers of `m` as `(name, value)` pairs (no value is an empty
/// one); `None` when a header's name is not UTF-8. rdkafka 0.39 reads each
/// name with `CStr::to_str().unwrap()` (`BorrowedHeaders::try_get`), so such
/// a record panics there: the panic is caught, kept off stderr (this thread
/// only), and the record counted invalid instead of ending the command.
#[cfg(feature = "kafka")]
fn headers_of<'m>(
    m: &'m rdkafka::message::BorrowedMessage<'_>,
) -> Option<Vec<(&'m str, &'m [u8])>> {
    use rdkafka::message::{Headers as _, Message as _};
    use std::cell::Cell;
    thread_local! {
        static READING: Cell<bool> = const { Cell::new(false) };
    }
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !READING.with(Cell::get) {
                previous(info);
            }
        }));
    });
    READING.with(|r| r.set(true));
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // A header with a null value carries no value: left out, as if
        // absent. Read as empty, a null `content-type` beside a
        // `ce_datacontenttype` was "datacontenttype appears more than
        // once", and a null `ce_subject` an empty (invalid) subject.
        m.headers()
            .map(|h| h.iter().filter_map(|h| Some((h.key, h.value?))).collect())
            .unwrap_or_default()
    }));
    READING.with(|r| r.set(false));
    read.ok()
}

/// The consumer's context: keeps the result of the last offset commit
/// (an auto-commit's or the final one's), but "nothing to commit".
#[cfg(feature = "kafka")]
#[derive(Default)]
struct Commits(std::sync::Mutex<Option<rdkafka::error::KafkaResult<()>>>);

#[cfg(feature = "kafka")]
impl Commits {
    /// Forgets the last result.
    fn clear(&self) {
        if let Ok(mut r) = self.0.lock() {
            *r = None;
        }
    }

    /// The error of the last commit, if it failed.
    fn error(&self) -> Option<rdkafka::error::KafkaError> {
        self.0.lock().ok()?.clone()?.err()
    }
}

#[cfg(feature = "kafka")]
impl rdkafka::ClientContext for Commits {}

#[cfg(feature = "kafka")]
impl rdkafka::consumer::ConsumerContext for Commits {
    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _: &rdkafka::TopicPartitionList,
    ) {
        if result.as_ref().err().and_then(|e| e.rdkafka_error_code())
            == Some(rdkafka::types::RDKafkaErrorCode::NoOffset)
        {
            return;
        }
        if let Ok(mut r) = self.0.lock() {
            *r = Some(result);
        }
    }
}

#[cfg(feature = "kafka")]
fn consume(a: &Settings) -> ExitCode {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    use super::progress::{Progress, Snapshot, note};

    use ossa_events::{Scratch, format::json};
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};

    use super::signals;
    use rdkafka::message::Message;
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};

    /// How long the topic's metadata may take to come.
    const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
    /// How long the final commit and the close (leaving the group) may
    /// take: with the brokers gone, librdkafka waited 45 s for each.
    const CLOSE_WAIT: Duration = Duration::from_secs(5);
    /// One poll: the granularity of `--timeout`.
    const POLL: Duration = Duration::from_millis(100);
    /// One metadata request: how soon a signal stops the wait for it.
    const METADATA_SLICE: Duration = Duration::from_millis(250);
    /// How long the topic is looked for at `--timeout` when the brokers
    /// never answered for it.
    const UNSEEN_CHECK: Duration = Duration::from_millis(500);
    /// How many different errors are remembered as said.
    const MAX_SAID: usize = 16;

    let fail = |msg: String| {
        note!("ossa-events: consume: {msg}");
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
            // An offset is stored (for the auto-commit and the commit at
            // the end) once its record was printed or reported, not when
            // polled: a record that could not be printed (stdout closed)
            // is read again by the group, not committed unprinted.
            config
                .set("group.id", g)
                .set("enable.auto.commit", "true")
                .set("enable.auto.offset.store", "false");
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
    let consumer: BaseConsumer<Commits> = match config.create_with_context(Commits::default()) {
        Ok(c) => c,
        Err(e) => return super::usage_error(Some("consume"), &format!("consume: {e}")),
    };

    // The topic must exist, with or without a group (subscribed to a
    // missing topic, a group consumer waited for it, and `--timeout` then
    // ended in success). A group consumer whose brokers cannot be reached
    // yet still waits for them, as a service started before them does.
    // Within `--timeout` too: it bounds the whole run when no record comes.
    let started = Instant::now();
    let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    // SIGINT/SIGTERM: stop at the next poll, commit, print the summary; a
    // second signal exits at once with the counts so far.
    let stop = {
        let counts = counts.clone();
        signals::watch(
            |_| {},
            move |sig| {
                note!(
                    "consume: printed {}, invalid {}",
                    counts.0.load(Ordering::Relaxed),
                    counts.1.load(Ordering::Relaxed)
                );
                note!("consume: stopped by {}", signals::name(sig));
            },
        )
    };
    let progress = {
        let counts = counts.clone();
        Progress::start(a.progress, "consume", move || {
            let (printed, invalid) = (
                counts.0.load(Ordering::Relaxed),
                counts.1.load(Ordering::Relaxed),
            );
            Snapshot {
                text: format!("printed {printed} · invalid {invalid}"),
                count: printed,
            }
        })
    };
    let signalled = || stop.as_ref().and_then(signals::Stop::signal);
    let wait = a
        .timeout
        .map_or(METADATA_TIMEOUT, |t| t.min(METADATA_TIMEOUT));
    // Asked in slices, so that a signal stops the wait (as it stops a poll).
    let metadata = loop {
        let asked = Instant::now();
        let left = wait.saturating_sub(started.elapsed());
        let got = consumer.fetch_metadata(Some(&a.topic), left.min(METADATA_SLICE));
        if got.is_ok() || signalled().is_some() || started.elapsed() >= wait {
            break got;
        }
        // An error given at once is not asked again at once.
        std::thread::sleep(POLL.saturating_sub(asked.elapsed()));
    };
    if let Some(sig) = signalled() {
        progress.finish();
        note!("consume: printed 0, invalid 0");
        note!("consume: stopped by {}", signals::name(sig));
        return ExitCode::from(signals::exit_code(sig));
    }
    let partitions: Option<Vec<i32>> = match metadata {
        Ok(md) => Some(
            md.topics()
                .iter()
                .filter(|t| t.name() == a.topic && t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect(),
        ),
        Err(e) if a.group.is_some() => {
            note!("ossa-events: consume: {e}; waiting for the brokers");
            None
        }
        Err(e) => return fail(format!("cannot read the metadata of {}: {e}", a.topic)),
    };
    let not_found = || {
        note!(
            "ossa-events: consume: topic '{}' not found on {}",
            a.topic,
            a.brokers
        );
        super::EXIT_FAILURE
    };
    if partitions.as_ref().is_some_and(Vec::is_empty) {
        return ExitCode::from(not_found());
    }
    // Whether the brokers said the topic exists (or a record came from it):
    // until then a group consumer is waiting for its brokers.
    let mut topic_seen = partitions.is_some();
    if a.group.is_some() {
        if let Err(e) = consumer.subscribe(&[a.topic.as_str()]) {
            return fail(format!("cannot subscribe to {}: {e}", a.topic));
        }
    } else {
        let start = if a.from_beginning {
            Offset::Beginning
        } else {
            Offset::End
        };
        let mut tpl = TopicPartitionList::new();
        for p in partitions.unwrap_or_default() {
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
    // A record printed or reported: its offset may be committed (with a
    // group). A store refused (the partition was just revoked) leaves the
    // record to be read again, by this group's new owner of it.
    let done = |m: &rdkafka::message::BorrowedMessage<'_>| {
        if a.group.is_some() {
            let _ = consumer.store_offset_from_message(m);
        }
    };
    let mut stopped_by = None;
    let mut scratch: Vec<u8> = Vec::new();
    let mut line: Vec<u8> = Vec::with_capacity(1024);
    // `--timeout` counts from the start: the metadata wait is part of it.
    let mut last_record = started;
    // The errors said since the last record: a broker that is down gives
    // the same errors at every poll (two, in turn): each is said once.
    let mut said: Vec<String> = Vec::new();
    let stdout = std::io::stdout();
    let code: u8 = loop {
        if let Some(sig) = signalled() {
            stopped_by = Some(sig);
            break signals::exit_code(sig);
        }
        if a.max_events.is_some_and(|n| printed >= n) {
            break 0;
        }
        if a.timeout.is_some_and(|t| last_record.elapsed() >= t) {
            if !topic_seen {
                // The brokers never answered for the topic: it was not read.
                match consumer.fetch_metadata(Some(&a.topic), UNSEEN_CHECK) {
                    Ok(md)
                        if !md
                            .topics()
                            .iter()
                            .any(|t| t.name() == a.topic && t.error().is_none()) =>
                    {
                        break not_found();
                    }
                    Ok(_) => {}
                    Err(e) => {
                        note!(
                            "ossa-events: consume: cannot read the metadata of {}: {e}",
                            a.topic
                        );
                        break super::EXIT_FAILURE;
                    }
                }
            }
            break 0;
        }
        let m = match consumer.poll(POLL) {
            None => continue,
            Some(Err(e)) => {
                // The topic is missing once late brokers answer: refused,
                // as when they answer at once.
                if !topic_seen
                    && e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition)
                {
                    break not_found();
                }
                let msg = e.to_string();
                if !said.contains(&msg) {
                    note!("ossa-events: consume: {msg}");
                    if said.len() < MAX_SAID {
                        said.push(msg);
                    }
                }
                continue;
            }
            Some(Ok(m)) => m,
        };
        last_record = Instant::now();
        topic_seen = true;
        said.clear();
        let Some(headers) = headers_of(&m) else {
            invalid += 1;
            counts.1.store(invalid, Ordering::Relaxed);
            note!(
                "partition {} offset {}: a header name is not UTF-8",
                m.partition(),
                m.offset()
            );
            done(&m);
            continue;
        };
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
        // An event that cannot be written out (none is known) is reported
        // as an invalid record, not skipped without a word.
        let rec = rec.map_err(|e| e.to_string()).and_then(|rec| {
            line.clear();
            json::write_jsonl(&rec.event, &mut line)
                .map(|()| rec)
                .map_err(|e| format!("cannot be written as JSON: {e}"))
        });
        match rec {
            Ok(_) => {
                let mut out = stdout.lock();
                if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
                    // Ended as any other stop: commit (what was printed), summary.
                    note!("ossa-events: consume: cannot write to stdout: {e}");
                    break super::EXIT_FAILURE;
                }
                printed += 1;
                counts.0.store(printed, Ordering::Relaxed);
            }
            Err(e) => {
                invalid += 1;
                counts.1.store(invalid, Ordering::Relaxed);
                note!("partition {} offset {}: {e}", m.partition(), m.offset());
            }
        }
        done(&m);
    };
    if a.group.is_some() && printed + invalid > 0 {
        // What was printed is committed before the exit (auto-commit would
        // only get to it on its next interval); the close below waits for it.
        consumer.context().clear();
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Async) {
            note!("ossa-events: consume: commit: {e}");
        }
    }
    // Closed (the group left) within CLOSE_WAIT; dropping the consumer
    // closes it too, but waits as long as the brokers do not answer.
    let closed = consumer.close_queue().is_ok() && {
        let end = Instant::now() + CLOSE_WAIT;
        while !consumer.closed() && Instant::now() < end {
            let _ = consumer.poll(POLL);
        }
        consumer.closed()
    };
    if let Some(e) = consumer.context().error() {
        note!("ossa-events: consume: commit: {e}");
    }
    if !closed && a.group.is_some() {
        note!(
            "ossa-events: consume: the brokers did not answer within {}s: offsets may not be committed",
            CLOSE_WAIT.as_secs()
        );
    }
    progress.finish();
    note!("consume: printed {printed}, invalid {invalid}");
    if let Some(sig) = stopped_by {
        note!("consume: stopped by {}", signals::name(sig));
    }
    if !closed {
        // Dropping the consumer would wait for the brokers again.
        std::process::exit(i32::from(code));
    }
    ExitCode::from(code)
}
