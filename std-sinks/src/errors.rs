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
    /// The emitter is shut down.
    ShutDown,
    /// The queue is at its capacity (events or bytes) and the overflow policy
    /// dropped the event.
    QueueFull,
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
            Error::ShutDown => f.write_str("emitter is shut down"),
            Error::QueueFull => f.write_str("queue full: event dropped"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Invalid(e) => Some(&**e),
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

/// A failed delivery, as a sink reports it to the worker.
///
/// ```
/// use std::time::Duration;
/// use ossa_events::{Error, Retry, SendError};
/// // 3 events of the batch went through; the collector asked to wait 2 s.
/// let err = SendError::retryable(3, Error::HttpStatus { status: 503, body: String::new() }, Some(Duration::from_secs(2)));
/// assert_eq!(err.to_string(), "http status 503 (3 delivered before it)");
/// assert_eq!(err.retry, Retry::Yes { after: Some(Duration::from_secs(2)) });
/// ```
#[derive(Debug)]
pub struct SendError {
    /// How many events from the front of the batch were delivered before the failure.
    pub delivered: usize,
    /// Whether trying again may help.
    pub retry: Retry,
    /// What went wrong.
    pub error: Error,
}

/// Whether a failed send may succeed later.
///
/// ```
/// use ossa_events::{Error, Retry, SendError};
/// let bad_request = SendError::fatal(0, Error::HttpStatus { status: 400, body: "no type".into() });
/// assert_eq!(bad_request.retry, Retry::No);
/// let reset = SendError::retryable(0, Error::Transport("connection reset".into()), None);
/// assert!(matches!(reset.retry, Retry::Yes { after: None }));
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

impl SendError {
    /// A failure worth retrying.
    ///
    /// ```
    /// use ossa_events::{Error, Phase, SendError};
    /// // A timeout: nothing confirmed, try again after the usual backoff.
    /// let err = SendError::retryable(0, Error::Timeout(Phase::Send), None);
    /// assert_eq!(err.delivered, 0);
    /// ```
    pub fn retryable(delivered: usize, error: Error, after: Option<Duration>) -> Self {
        SendError {
            delivered,
            retry: Retry::Yes { after },
            error,
        }
    }
    /// A failure not worth retrying.
    ///
    /// ```
    /// use ossa_events::{Error, Retry, SendError};
    /// // The collector refused the 2nd event for good: the 1st was delivered.
    /// let err = SendError::fatal(1, Error::HttpStatus { status: 422, body: "bad data".into() });
    /// assert_eq!((err.delivered, err.retry), (1, Retry::No));
    /// ```
    pub fn fatal(delivered: usize, error: Error) -> Self {
        SendError {
            delivered,
            retry: Retry::No,
            error,
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} delivered before it)", self.error, self.delivered)
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
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
}
