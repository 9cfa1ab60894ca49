//! The std crate's error type.

use std::fmt;
use std::time::Duration;

use ossa_events_core::ValidationError;

/// Where a time limit was hit.
///
/// ```
/// use ossa_events::{Error, Phase};
/// // A deadline hit while waiting for a flush:
/// let err = Error::Timeout(Phase::Flush);
/// assert_eq!(err.to_string(), "timed out during flush");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Connecting to the collector.
    Connect,
    /// Sending a request or reading its response.
    Send,
    /// Waiting for [`crate::Emitter::flush`] to deliver.
    Flush,
    /// Waiting for the worker to stop at shutdown.
    Shutdown,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::Send => "send",
            Phase::Flush => "flush",
            Phase::Shutdown => "shutdown",
        })
    }
}

/// Everything that can go wrong in the std crate.
///
/// Match the causes you handle; it is `#[non_exhaustive]`, so keep a
/// catch-all arm:
///
/// ```
/// use ossa_events::{sink::NullSink, Emitter, Error, EventBuilder};
/// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
/// match emitter.emit(EventBuilder::new()) {
///     Ok(()) => unreachable!("an event needs a type"),
///     Err(Error::Invalid(why)) => assert!(why.to_string().contains("type")),
///     Err(Error::QueueFull | Error::ShutDown) => { /* back off, or drop it */ }
///     Err(other) => return Err(other),
/// }
/// // Every error says what went wrong in a short lowercase line.
/// assert_eq!(Error::QueueFull.to_string(), "queue full: event dropped");
/// # Ok::<(), ossa_events::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error (stdout, a file, a socket).
    Io(std::io::Error),
    /// The collector answered with a status that is not 2xx.
    HttpStatus {
        /// The status code.
        status: u16,
        /// The start of the response body, for the log.
        body: String,
    },
    /// The HTTP client failed below the status level (DNS, TLS, connection reset…).
    Transport(String),
    /// A time limit was reached.
    Timeout(Phase),
    /// The event breaks a CloudEvents rule.
    Invalid(Box<ValidationError>),
    /// The event could not be encoded (its `T: Serialize` payload failed).
    Encode(String),
    /// Kafka (librdkafka) refused a record or reported it undelivered: the
    /// error names the cause, and
    /// [`rdkafka_error_code`](rdkafka::error::KafkaError::rdkafka_error_code)
    /// gives librdkafka's code (`UnknownTopicOrPartition`,
    /// `TopicAuthorizationFailed`, `MsgSizeTooLarge`…). A record that timed out
    /// is an [`Error::Timeout`] instead.
    #[cfg(feature = "kafka")]
    #[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
    Kafka(Box<rdkafka::error::KafkaError>),
    /// The event's data breaks its JSON Schema, or its schema cannot be had
    /// now (see [`crate::schema`] and [`EmitterBuilder::schemas`](crate::EmitterBuilder::schemas)).
    #[cfg(feature = "schemas")]
    #[cfg_attr(docsrs, doc(cfg(feature = "schemas")))]
    Schema(Box<crate::schema::SchemaError>),
    /// The emitter is shut down.
    ShutDown,
    /// The queue is at its capacity (events or bytes) and the overflow policy
    /// dropped the event.
    QueueFull,
    /// The spool is at its byte cap ([`WhenFull`](crate::spool::WhenFull)):
    /// the event was dropped (the newest, or with `DropOldest` an old one
    /// that was never sent); or the event is larger than the spool takes
    /// (its cap, or 64 MiB).
    SpoolFull,
    /// The spool directory is held by another emitter, in this process or
    /// another (its `lock` file): two writers would interleave their
    /// records. An emitter whose shutdown timed out holds it until its
    /// worker's last send returns.
    SpoolLocked(std::path::PathBuf),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "io: {e}"),
            Error::HttpStatus { status, body } if body.is_empty() => {
                write!(f, "http status {status}")
            }
            Error::HttpStatus { status, body } => write!(f, "http status {status}: {body}"),
            Error::Transport(e) => write!(f, "transport: {e}"),
            Error::Timeout(p) => write!(f, "timed out during {p}"),
            Error::Invalid(e) => write!(f, "invalid event: {e}"),
            Error::Encode(e) => write!(f, "encode: {e}"),
            #[cfg(feature = "kafka")]
            Error::Kafka(e) => write!(f, "kafka: {e}"),
            #[cfg(feature = "schemas")]
            // A schema that could not be had leaves the payload unchecked,
            // not invalid (its text says `schema unavailable: …`).
            Error::Schema(e) => match **e {
                crate::schema::SchemaError::Unavailable { .. } => write!(f, "{e}"),
                _ => write!(f, "invalid payload: {e}"),
            },
            Error::ShutDown => f.write_str("emitter is shut down"),
            Error::QueueFull => f.write_str("queue full: event dropped"),
            Error::SpoolFull => f.write_str("spool full: event dropped"),
            Error::SpoolLocked(dir) => {
                write!(f, "{}: spool in use by another emitter", dir.display())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Invalid(e) => Some(&**e),
            #[cfg(feature = "schemas")]
            Error::Schema(e) => Some(&**e),
            #[cfg(feature = "kafka")]
            Error::Kafka(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<ValidationError> for Error {
    fn from(e: ValidationError) -> Self {
        Error::Invalid(Box::new(e))
    }
}

/// What became of the events of a batch that a sink could not deliver: one
/// entry per run of events that share an outcome, each with its own error.
///
/// A sink answers for every event it was handed: an event named in no
/// [`Failure`] was delivered (but an error whose ranges name no event of the
/// batch at all, empty or past its end, counts for every event of it: the
/// emitter never counts delivered what a sink did not confirm). A collector that refuses one event of forty
/// fails that one; the other thirty-nine are delivered, and a retry sends
/// only what is marked [`Retry::Yes`]:
///
/// ```
/// use std::time::Duration;
/// use ossa_events::{Error, Retry, SendError};
/// // Of a batch of 40: the 6th refused for good, the last 10 to try again in 2 s.
/// let err = SendError::fatal_at(5..6, Error::HttpStatus { status: 400, body: "bad id".into() })
///     .and(30..40, Retry::Yes { after: Some(Duration::from_secs(2)) }, Error::HttpStatus { status: 503, body: String::new() });
/// assert_eq!(err.failures().len(), 2);
/// assert!(err.failure_of(5).is_some_and(|f| f.retry == Retry::No));
/// assert!(err.failure_of(6).is_none()); // delivered
/// assert!(err.failure_of(35).is_some_and(|f| matches!(f.retry, Retry::Yes { .. })));
/// assert_eq!(err.to_string(), "http status 400: bad id (events 5..6; 1 more failure)");
/// ```
#[derive(Debug)]
pub struct SendError {
    /// Never empty.
    failures: Vec<Failure>,
}

/// Events of a batch, by position, that share an outcome: to be retried, or
/// failed for good; part of a [`SendError`].
///
/// ```
/// use ossa_events::{Error, Retry, SendError};
/// let err = SendError::retryable(Error::Transport("connection refused".into()), None);
/// let f = &err.failures()[0];
/// // The whole batch, whatever its length.
/// assert!(f.events.contains(&0) && f.events.contains(&1_000_000));
/// assert!(matches!(f.retry, Retry::Yes { after: None }));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Failure {
    /// Positions in the batch handed to the sink (`start..end`, `end`
    /// clamped to the batch's length; [`SendError::retryable`] and
    /// [`SendError::fatal`] name `0..usize::MAX`, the whole batch).
    pub events: std::ops::Range<usize>,
    /// Whether trying these events again may help.
    pub retry: Retry,
    /// What went wrong.
    pub error: Error,
}

/// Whether a failed send may succeed later.
///
/// ```
/// use ossa_events::{Error, Retry, SendError};
/// let bad_request = SendError::fatal(Error::HttpStatus { status: 400, body: "no type".into() });
/// assert_eq!(bad_request.failures()[0].retry, Retry::No);
/// let reset = SendError::retryable(Error::Transport("connection reset".into()), None);
/// assert!(matches!(reset.failures()[0].retry, Retry::Yes { after: None }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Retry {
    /// Try again (connect errors, timeouts, 408, 429, 5xx but 501), not before
    /// `after` when the collector said so (`Retry-After`).
    Yes {
        /// The collector's `Retry-After`, if any.
        after: Option<Duration>,
    },
    /// Do not (other 4xx, 501, an event the collector rejects): count the events failed.
    No,
}

impl Retry {
    /// Try again after the usual backoff: `Retry::Yes { after: None }`.
    pub const LATER: Retry = Retry::Yes { after: None };
}

const WHOLE: std::ops::Range<usize> = 0..usize::MAX;

impl SendError {
    /// Every event of the batch failed, and a retry may help.
    ///
    /// ```
    /// use ossa_events::{Error, Phase, SendError};
    /// // A timeout: nothing confirmed, try again after the usual backoff.
    /// let err = SendError::retryable(Error::Timeout(Phase::Send), None);
    /// assert!(err.failure_of(0).is_some());
    /// ```
    pub fn retryable(error: Error, after: Option<Duration>) -> Self {
        Self::at(WHOLE, Retry::Yes { after }, error)
    }
    /// Every event of the batch failed for good.
    ///
    /// ```
    /// use ossa_events::{Error, Retry, SendError};
    /// let err = SendError::fatal(Error::HttpStatus { status: 422, body: "bad data".into() });
    /// assert_eq!(err.failure_of(3).map(|f| f.retry), Some(Retry::No));
    /// ```
    pub fn fatal(error: Error) -> Self {
        Self::at(WHOLE, Retry::No, error)
    }
    /// The events at `events` (positions in the batch) failed; the others
    /// of the batch were delivered (unless [`and`](Self::and) names them).
    ///
    /// ```
    /// use ossa_events::{Error, Retry, SendError};
    /// // The first of three delivered, the other two to retry.
    /// let err = SendError::at(1..3, Retry::LATER, Error::Transport("reset".into()));
    /// assert!(err.failure_of(0).is_none());
    /// assert!(err.failure_of(2).is_some());
    /// ```
    pub fn at(events: std::ops::Range<usize>, retry: Retry, error: Error) -> Self {
        SendError {
            failures: vec![Failure {
                events,
                retry,
                error,
            }],
        }
    }
    /// [`at`](Self::at) with [`Retry::No`].
    ///
    /// ```
    /// use ossa_events::{Error, Retry, SendError};
    /// let err = SendError::fatal_at(4..5, Error::HttpStatus { status: 400, body: String::new() });
    /// assert_eq!(err.failure_of(4).map(|f| f.retry), Some(Retry::No));
    /// ```
    pub fn fatal_at(events: std::ops::Range<usize>, error: Error) -> Self {
        Self::at(events, Retry::No, error)
    }
    /// Adds the events at `events`: an event named twice keeps its first
    /// failure.
    ///
    /// ```
    /// use ossa_events::{Error, Retry, SendError};
    /// let err = SendError::fatal_at(0..1, Error::Transport("a".into()))
    ///     .and(0..3, Retry::LATER, Error::Transport("b".into()));
    /// assert_eq!(err.failure_of(0).map(|f| f.retry), Some(Retry::No));
    /// assert_eq!(err.failure_of(2).map(|f| f.retry), Some(Retry::LATER));
    /// ```
    pub fn and(mut self, events: std::ops::Range<usize>, retry: Retry, error: Error) -> Self {
        self.failures.push(Failure {
            events,
            retry,
            error,
        });
        self
    }
    /// Every run of failed events, in the order the sink named them.
    ///
    /// ```
    /// use ossa_events::{Error, SendError};
    /// let err = SendError::fatal(Error::Transport("gone".into()));
    /// assert_eq!(err.failures()[0].error.to_string(), "transport: gone");
    /// ```
    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }
    /// The failure of the event at position `index`, or `None` when it was delivered.
    ///
    /// ```
    /// use ossa_events::{Error, Retry, SendError};
    /// let err = SendError::at(2..usize::MAX, Retry::LATER, Error::Transport("reset".into()));
    /// assert!(err.failure_of(1).is_none());
    /// assert!(err.failure_of(2).is_some());
    /// ```
    pub fn failure_of(&self, index: usize) -> Option<&Failure> {
        self.failures.iter().find(|f| f.events.contains(&index))
    }
    /// The first failure's error: what went wrong, for a log line.
    ///
    /// ```
    /// use ossa_events::{Error, Phase, SendError};
    /// let err = SendError::retryable(Error::Timeout(Phase::Send), None);
    /// assert!(matches!(err.error(), Error::Timeout(Phase::Send)));
    /// ```
    pub fn error(&self) -> &Error {
        // `failures` is never empty; the fallback is for the type system only.
        static NONE: Error = Error::ShutDown;
        self.failures.first().map_or(&NONE, |f| &f.error)
    }
    /// Moves every position up by `by`: what a sink that sends a batch in
    /// parts does with the error of a part that starts at `by`.
    #[cfg(any(feature = "http", feature = "kafka"))]
    pub(crate) fn shifted(mut self, by: usize) -> Self {
        for f in &mut self.failures {
            f.events = f.events.start.saturating_add(by)..f.events.end.saturating_add(by);
        }
        self
    }
    /// Cuts every range to a batch of `len` events (drops what falls outside).
    pub(crate) fn clamped(mut self, len: usize) -> Self {
        for f in &mut self.failures {
            f.events = f.events.start.min(len)..f.events.end.min(len);
        }
        if self.failures.iter().all(|f| f.events.is_empty()) {
            // A sink that named no event of the batch failed all of it.
            if let Some(f) = self.failures.first_mut() {
                f.events = 0..len;
            }
        }
        self
    }
    /// Counts `elapsed` off every `Retry-After` (down to zero): what a
    /// pipelined sink does with an answer that waited that long to be
    /// settled, as a `Retry-After` counts from the answer.
    #[cfg(feature = "http")]
    pub(crate) fn aged(mut self, elapsed: Duration) -> Self {
        for f in &mut self.failures {
            if let Retry::Yes { after: Some(a) } = &mut f.retry {
                *a = a.saturating_sub(elapsed);
            }
        }
        self
    }
    /// The first failure's error, by value.
    #[cfg(feature = "kafka")]
    pub(crate) fn into_error(self) -> Error {
        self.failures
            .into_iter()
            .next()
            .map_or(Error::ShutDown, |f| f.error)
    }
    /// Appends the failures of `other`.
    pub(crate) fn merge(mut self, other: SendError) -> Self {
        self.failures.extend(other.failures);
        self
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.failures.first() {
            Some(first) if first.events == WHOLE => write!(f, "{}", first.error)?,
            Some(first) => write!(
                f,
                "{} (events {}..{}",
                first.error, first.events.start, first.events.end
            )?,
            None => return f.write_str("send failed"),
        }
        let more = self.failures.len() - 1;
        let whole = self.failures.first().is_some_and(|x| x.events == WHOLE);
        match (whole, more) {
            (true, 0) => Ok(()),
            (true, n) => write!(f, " ({n} more failure{})", if n == 1 { "" } else { "s" }),
            (false, 0) => f.write_str(")"),
            (false, n) => write!(f, "; {n} more failure{})", if n == 1 { "" } else { "s" }),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stays_small() {
        assert!(
            std::mem::size_of::<Error>() <= 40,
            "{}",
            std::mem::size_of::<Error>()
        );
    }

    /// A schema that could not be had is said as such, not as a payload
    /// that is invalid (which the check never found out).
    #[cfg(feature = "schemas")]
    #[test]
    fn a_schema_error_says_invalid_payload_only_when_the_payload_is() {
        use crate::schema::SchemaError;
        let unavailable = Error::Schema(Box::new(SchemaError::Unavailable {
            schema: "https://r.example/s.json".into(),
            reason: "fetch failed".into(),
        }));
        assert_eq!(
            unavailable.to_string(),
            "schema unavailable: https://r.example/s.json: fetch failed"
        );
        let no_schema = Error::Schema(Box::new(SchemaError::NoSchema { ty: "t".into() }));
        assert!(
            no_schema.to_string().starts_with("invalid payload: "),
            "{no_schema}"
        );
    }
}
