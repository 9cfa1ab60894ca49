//! Counters of what the emitter did, readable at any time as a [`Metrics`] snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of an emitter's counters.
///
/// Read it at any time, e.g. for a health check or a periodic log line:
///
/// ```
/// use ossa_events::{sink::NullSink, Emitter, EventBuilder, Metrics};
/// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).build()?;
/// assert_eq!(emitter.metrics(), Metrics::default());
/// emitter.emit(EventBuilder::new().ty("dev.example.tick"))?;
/// let _ = emitter.emit(EventBuilder::new()); // no type: rejected
/// emitter.flush()?;
/// let m = emitter.metrics();
/// assert_eq!((m.emitted, m.delivered, m.rejected, m.batches), (1, 1, 1, 1));
/// // Every emitted event is delivered, failed, timed out at shutdown or still waiting.
/// assert_eq!(m.emitted, m.delivered + m.failed + m.shutdown_timeout + m.queue_depth);
/// # Ok::<(), ossa_events::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Events accepted into the queue. Events the `tracing` layer
    /// (`OssaLayer`, feature `tracing`) has put off are counted
    /// once they are built (by the worker before it takes a batch, or by
    /// `emit`, `flush`, `shutdown`), not when their span starts or ends:
    /// after [`Emitter::flush`](crate::Emitter::flush) every event of a span
    /// that ended before it is counted.
    pub emitted: u64,
    /// Events the sink confirmed delivered.
    pub delivered: u64,
    /// Event sends retried (an event retried twice counts twice).
    pub retried: u64,
    /// Events given up on: a non-retryable error, or retries exhausted.
    pub failed: u64,
    /// Events still unconfirmed when shutdown's time ran out. Every accepted
    /// event ends in exactly one of `delivered`, `failed` or this, or is still
    /// in `queue_depth`.
    pub shutdown_timeout: u64,
    /// Events refused at emit: the queue was full, or the emitter was shut
    /// down. With a spool under [`WhenFull::DropOldest`](crate::spool::WhenFull),
    /// also the accepted events dropped from disk later (see `evicted`).
    pub dropped: u64,
    /// Events refused at emit because they broke a CloudEvents rule or could not be encoded.
    pub rejected: u64,
    /// Events waiting (queued or being sent); not those `OssaLayer` has put
    /// off and not built yet.
    pub queue_depth: u64,
    /// Bytes those events hold.
    pub queue_bytes: u64,
    /// Sink calls that delivered at least one event.
    pub batches: u64,
    /// Bytes of events delivered, in their wire form.
    pub bytes: u64,
    /// Events read back from the spool at start (left unconfirmed by an
    /// earlier emitter) and sent again. With a spool,
    /// `emitted + replayed == delivered + failed + shutdown_timeout +
    /// spooled + evicted + queue_depth`.
    pub replayed: u64,
    /// Events still in the spool when this emitter stopped (not delivered in
    /// time), those of a segment that could not be read while running
    /// included (an I/O error, counted in `spool_errors` too; the segment is
    /// not confirmed, and until the stop they count in `queue_depth`): the
    /// next emitter on the spool sends them. Not reported to
    /// `on_undelivered`: they are not lost.
    pub spooled: u64,
    /// Spool writes or reads that failed (disk full, I/O error, read-only):
    /// an event whose write failed went to the in-memory queue instead; a
    /// segment that could not be read waits on disk until it reads again
    /// (tried again in the run: 1 s later, then twice as long each time up
    /// to a minute; what is still unread at shutdown counts in `spooled`).
    pub spool_errors: u64,
    /// Corrupt spool records skipped (found at start or while reading).
    pub spool_corrupt: u64,
    /// Accepted events that the spool, full under
    /// [`WhenFull::DropOldest`](crate::spool::WhenFull), dropped with their
    /// segment while they were only on disk (also counted in `dropped`, and
    /// reported [`Reason::Dropped`](crate::Reason::Dropped)).
    pub evicted: u64,
    /// Bytes of spool segment files on disk while the spool is open (0 once
    /// the worker has closed it at shutdown, whatever it left on disk for
    /// the next emitter).
    pub spool_bytes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) delivered: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) shutdown_timeout: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) spooled: AtomicU64,
    pub(crate) spool_errors: AtomicU64,
    pub(crate) spool_corrupt: AtomicU64,
    pub(crate) evicted: AtomicU64,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    /// The counters with what the worker's state holds (read under its
    /// lock): `emitted` is counted there, as events are queued.
    pub(crate) fn snapshot(
        &self,
        emitted: u64,
        queue_depth: u64,
        queue_bytes: u64,
        spool_bytes: u64,
    ) -> Metrics {
        Metrics {
            emitted,
            delivered: self.delivered.load(Relaxed),
            retried: self.retried.load(Relaxed),
            failed: self.failed.load(Relaxed),
            shutdown_timeout: self.shutdown_timeout.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            queue_depth,
            queue_bytes,
            batches: self.batches.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            replayed: self.replayed.load(Relaxed),
            spooled: self.spooled.load(Relaxed),
            spool_errors: self.spool_errors.load(Relaxed),
            spool_corrupt: self.spool_corrupt.load(Relaxed),
            evicted: self.evicted.load(Relaxed),
            spool_bytes,
        }
    }
}
