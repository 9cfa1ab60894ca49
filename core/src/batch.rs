//! A fixed-capacity batch: events encoded once, at push, into a byte arena.
//!
//! [`Batch<N, B>`] holds at most `N` events in at most `B` bytes of encoded
//! JSON. Draining it ([`Batch::write_to`], [`Batch::write_to_async`]) frames
//! the stored events as JSON Lines (`e1\ne2\n`) or as a JSON batch on a line of
//! its own (`[e1,e2]\n`) and writes them to a byte pipe; only when every byte
//! is written and the writer's `flush` succeeds are the events removed and
//! counted. A failed drain keeps every event for the next one.
//!
//! ```
//! use ossa_events_core::{batch::{Batch, BatchFormat}, Event};
//! let mut batch: Batch<8, 1024> = Batch::new(BatchFormat::JsonLines);
//! let ev = Event::builder().id("1").source("/s").ty("t").build()?;
//! batch.push(ev).map_err(|e| e.kind)?;
//! let mut out = [0u8; 1024];
//! let mut w: &mut [u8] = &mut out;
//! assert_eq!(batch.write_to(&mut w).ok(), Some(1));
//! assert!(batch.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # A drain's life
//!
//! The progress of a drain is kept in the batch, not in the drain's stack
//! frame, so an error return and a dropped future (embassy `select`, a
//! timeout) leave the same record. One framing routine (`next_chunk`,
//! `wrote`, `flushed`, `recovered`) decides every byte; `write_to` and
//! `write_to_async` only call it around the I/O. Before every `write` the
//! batch is marked torn; the mark is cleared when the write returns `Ok(n)`,
//! so a write that fails or never returns leaves it set.
//!
//! ```text
//!             drain            every byte taken            flush Ok
//!   clean ------------> writing ----------------> flushing ---------> clean
//!     ^                 |  ^  |                      |           (delivered,
//!     |      Ok(n): on  +--+  | write Err, or the    | flush Err   removed)
//!    push                     | future dropped while | (the writer may have
//!                             | a write was in flight| lost what it took)
//!                             v                      v
//!                           torn                  rewound
//!                             |  next drain          |  next drain
//!                             v                      v
//!                    recovered: `\n` ends the reader's line, then the cut
//!                    event (JSON Lines) or the whole array (JSON batch),
//!                    or, if rewound, every event ---------------> writing
//! ```
//!
//! What a reader of the byte pipe sees, reading line by line:
//!
//! - **JSON Lines**: every event is one line. A drain cut short resumes after
//!   the last line the writer took whole: those lines are not written again.
//!   If the cut fell inside a line, the reader holds a fragment of that one
//!   event; the next drain writes `\n` first (ending the fragment's line: it
//!   does not parse, skip it) and then the event whole. If the cut fell on a
//!   line boundary the reader gets an empty line instead, and if only an
//!   event's `\n` was missing that `\n` completes it. A short write (`Ok(n)`)
//!   is not a cut: the drain continues at the exact byte.
//! - **JSON batch**: every drain is one array on one line, `[e1,e2]\n`. A
//!   drain cut inside the array leaves an unterminated `[…` fragment; the next
//!   drain writes `\n` and the whole array again (with any events pushed
//!   since): the torn line does not parse as an array, drop it whole; the next
//!   line holds every event of it. A cut after the closing `]` only owes the
//!   `\n`.
//! - **Duplicates** never come from a cut the writer reported truthfully: a
//!   failed `write` that passed nothing on (what `std::io::Write` promises),
//!   a dropped future of a cancel-safe async writer (what `embedded-io-async`
//!   asks for), a short write. They come only from (a) a failed `flush`, (b)
//!   a [`rewind`](Batch::rewind) (the emitter's writer replaced mid-drain), both
//!   of which write every event again because the writer may have lost what
//!   it took, and (c) a writer that passes on part of a write it then fails
//!   or whose future is dropped (a DMA transfer): the events that part held
//!   whole arrive again. In every case nothing is counted delivered that was
//!   not written whole and flushed, nothing is lost, order is kept, and no two
//!   events ever share a line.

use core::fmt;

use embedded_io::Write;

use crate::error::{EncodeError, PayloadError};
use crate::event::Event;
use crate::io::WriteError;

/// How a drained batch is framed.
///
/// ```
/// use ossa_events_core::{io::SliceWriter, Batch, BatchFormat, Event};
/// let a = Event::builder().id("1").source("/s").ty("t").build()?;
/// let b = Event::builder().id("2").source("/s").ty("t").build()?;
/// let mut batch: Batch<4, 512> = Batch::new(BatchFormat::JsonBatch);
/// batch.push_ref(&a)?;
/// batch.push_ref(&b)?;
/// let mut buf = [0u8; 512];
/// let mut w = SliceWriter::new(&mut buf);
/// batch.write_to(&mut w)?;
/// assert!(w.written().starts_with(br#"[{"specversion":"1.0","id":"1""#));
/// assert!(w.written().ends_with(b"}]\n")); // one array per line
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum BatchFormat {
    /// A JSON batch: `[event,event,…]` (`application/cloudevents-batch+json`),
    /// each drain's array ending in `\n`, so that a stream of them can be read
    /// line by line and a torn one dropped.
    JsonBatch,
    /// JSON Lines: one event per line, each ending in `\n`.
    #[default]
    JsonLines,
}

impl BatchFormat {
    /// What follows each event in the arena: its line's `\n`, or the `,`
    /// before the next array element (the last one is left out when writing).
    const fn terminator(self) -> &'static [u8] {
        match self {
            BatchFormat::JsonBatch => b",",
            BatchFormat::JsonLines => b"\n",
        }
    }

    /// The media type of the drained bytes.
    ///
    /// ```
    /// use ossa_events_core::BatchFormat;
    /// assert_eq!(BatchFormat::JsonBatch.content_type(), "application/cloudevents-batch+json");
    /// assert_eq!(BatchFormat::JsonLines.content_type(), "application/jsonl");
    /// ```
    pub const fn content_type(self) -> &'static str {
        match self {
            BatchFormat::JsonBatch => crate::format::json::BATCH_CONTENT_TYPE,
            BatchFormat::JsonLines => crate::format::json::JSONL_CONTENT_TYPE,
        }
    }
}

/// Why [`Batch::push`] did not take an event.
///
/// ```
/// use ossa_events_core::{batch::PushErrorKind, Batch, Event};
/// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
/// let mut tiny: Batch<4, 32> = Batch::default();
/// // This event is 55 bytes of JSON: it can never fit a 32-byte arena.
/// assert_eq!(tiny.push_ref(&ev), Err(PushErrorKind::TooLarge));
/// let mut one: Batch<1, 512> = Batch::default();
/// one.push_ref(&ev)?;
/// assert_eq!(one.push_ref(&ev), Err(PushErrorKind::FullCount));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushErrorKind {
    /// The batch already holds `N` events.
    FullCount,
    /// The event's bytes do not fit in the space left.
    FullBytes,
    /// The event alone is larger than the whole arena: it can never fit.
    TooLarge,
    /// A `T: Serialize` payload failed to serialize.
    Payload(PayloadError),
}

impl fmt::Display for PushErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushErrorKind::FullCount => f.write_str("batch full: event count limit reached"),
            PushErrorKind::FullBytes => f.write_str("batch full: not enough bytes left"),
            PushErrorKind::TooLarge => f.write_str("event larger than the batch's byte capacity"),
            PushErrorKind::Payload(p) => fmt::Display::fmt(p, f),
        }
    }
}

impl core::error::Error for PushErrorKind {}

/// [`Batch::push`] refused an event; here it is back.
///
/// ```
/// use ossa_events_core::{batch::PushErrorKind, Batch, Event};
/// let mut batch: Batch<1, 512> = Batch::default();
/// batch.push(Event::builder().id("1").source("/s").ty("t").build()?).map_err(|e| e.kind)?;
/// let err = batch.push(Event::builder().id("2").source("/s").ty("t").build()?).unwrap_err();
/// assert_eq!(err.kind, PushErrorKind::FullCount);
/// let returned = err.event; // not lost: drain the batch and push it again
/// assert_eq!(returned.id(), "2");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PushError<'a> {
    /// Why.
    pub kind: PushErrorKind,
    /// The event, untouched.
    pub event: Event<'a>,
}

impl PushError<'_> {
    /// Whether draining the batch would make room for the event.
    ///
    /// ```
    /// use ossa_events_core::{Batch, Event};
    /// let mut batch: Batch<1, 512> = Batch::default();
    /// batch.push(Event::builder().id("1").source("/s").ty("t").build()?).map_err(|e| e.kind)?;
    /// let err = batch.push(Event::builder().id("2").source("/s").ty("t").build()?).unwrap_err();
    /// assert!(err.is_full()); // flushing the batch would make room
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(
            self.kind,
            PushErrorKind::FullCount | PushErrorKind::FullBytes
        )
    }
}

impl fmt::Display for PushError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

/// Writing a batch failed; the events stay in the batch.
///
/// ```
/// use ossa_events_core::{batch::DrainError, io::{SliceFull, SliceWriter}, Batch, Event};
/// let mut batch: Batch<4, 512> = Batch::default();
/// batch.push_ref(&Event::builder().id("1").source("/s").ty("t").build()?)?;
/// let mut small = [0u8; 8];
/// assert_eq!(batch.write_to(&mut SliceWriter::new(&mut small)), Err(DrainError::Io(SliceFull)));
/// assert_eq!(batch.len(), 1); // kept for the next try
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DrainError<E> {
    /// The writer failed (in `write` or `flush`).
    Io(E),
    /// The writer accepted zero bytes of a non-empty buffer.
    WriteZero,
}

/// Calls in a row that may answer [`ErrorKind::Interrupted`] before it
/// counts as a failure (see [`interrupted`]).
///
/// [`ErrorKind::Interrupted`]: embedded_io::ErrorKind::Interrupted
pub(crate) const INTERRUPTED_TRIES: u8 = 8;

/// Whether `r` is an [`ErrorKind::Interrupted`] to try again: `embedded_io`
/// says such an operation "can typically be retried", and `std`'s
/// `write_all` retries it (a signal during a `write(2)` behind
/// `embedded_io_adapters`' `FromStd` is one). Counted in `tries`, reset by
/// any other answer; past [`INTERRUPTED_TRIES`] in a row it is an error like
/// another, so a writer that only ever answers it cannot hold the caller
/// forever. A writer whose error type is `Infallible` compiles this away.
///
/// [`ErrorKind::Interrupted`]: embedded_io::ErrorKind::Interrupted
#[inline]
pub(crate) fn interrupted<T, E: embedded_io::Error>(r: &Result<T, E>, tries: &mut u8) -> bool {
    match r {
        Err(e) if e.kind() == embedded_io::ErrorKind::Interrupted && *tries < INTERRUPTED_TRIES => {
            *tries += 1;
            true
        }
        _ => {
            *tries = 0;
            false
        }
    }
}

impl<E> From<WriteError<E>> for DrainError<E> {
    fn from(e: WriteError<E>) -> Self {
        match e {
            WriteError::Io(e) => DrainError::Io(e),
            WriteError::WriteZero => DrainError::WriteZero,
        }
    }
}

impl<E: fmt::Debug> fmt::Display for DrainError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DrainError::Io(e) => write!(f, "batch write failed: {e:?}"),
            DrainError::WriteZero => f.write_str("batch write failed: writer accepted zero bytes"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for DrainError<E> {}

/// Appends to the arena until a write does not fit; from then on it only
/// counts the bytes it is given (`over`), so one encoding pass both stores an
/// event that fits and measures one that does not. It works on the arena's
/// [`VecView`](heapless::vec::VecView), so the encoder is compiled once for
/// every batch size.
struct Arena<'v> {
    bytes: &'v mut heapless::vec::VecView<u8>,
    over: usize,
}

impl embedded_io::ErrorType for Arena<'_> {
    type Error = core::convert::Infallible;
}

impl Write for Arena<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        if self.over != 0 || self.bytes.extend_from_slice(buf).is_err() {
            self.over = self.over.saturating_add(buf.len());
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Encodes `event` and `terminator` at the end of `bytes` (of capacity `B`);
/// on failure `bytes` is as it was. Not generic: one copy of the encoder.
fn encode_into(
    bytes: &mut heapless::vec::VecView<u8>,
    event: &Event<'_>,
    terminator: &[u8],
) -> Result<(), PushErrorKind> {
    let start = bytes.len();
    let mut arena = Arena { bytes, over: 0 };
    let written = encode_arena(&mut arena, event, terminator);
    let over = arena.over;
    let err = match written {
        Err(EncodeError::Payload(p)) => PushErrorKind::Payload(p),
        // The arena never fails a write.
        Err(_) => PushErrorKind::TooLarge,
        Ok(()) if over == 0 => return Ok(()),
        // Would it fit in an empty arena?
        Ok(()) if (bytes.len() - start).saturating_add(over) > bytes.capacity() => {
            PushErrorKind::TooLarge
        }
        Ok(()) => PushErrorKind::FullBytes,
    };
    bytes.truncate(start);
    Err(err)
}

/// The length of `event`'s compact JSON, measured by the encoder the batch
/// uses (an arena with no room only counts), so that firmware links no
/// second copy of it.
#[cfg(feature = "flash-spool")]
pub(crate) fn encoded_len(event: &Event<'_>) -> Result<usize, PayloadError> {
    let mut none: heapless::Vec<u8, 0> = heapless::Vec::new();
    let mut arena = Arena {
        bytes: none.as_mut_view(),
        over: 0,
    };
    match encode_arena(&mut arena, event, b"") {
        Err(EncodeError::Payload(p)) => Err(p),
        _ => Ok(arena.over),
    }
}

/// The encoder's one call: `event`, then `terminator`, into `arena` (with
/// two callers, firmware with the flash spool would link a second, inlined
/// copy of the JSON writer: 1.2 KB).
#[inline(never)]
fn encode_arena(
    arena: &mut Arena<'_>,
    event: &Event<'_>,
    terminator: &[u8],
) -> Result<(), EncodeError<core::convert::Infallible>> {
    crate::format::json::write_json_unbuffered(event, arena)
        .and_then(|()| crate::io::write_all(arena, terminator).map_err(Into::into))
}

/// Up to `N` events encoded as compact JSON in a `B`-byte arena (each event
/// takes its JSON's length and one byte for the `\n` or `,` after it).
///
/// A drain that fails or is cancelled part-way keeps its place in the batch;
/// the module docs show what the next drain writes and what a reader sees.
///
/// ```
/// use ossa_events_core::{io::SliceWriter, Batch, BatchFormat, Event};
/// // 8 events or 1 KiB of JSON, whichever comes first; no heap.
/// let mut batch: Batch<8, 1024> = Batch::new(BatchFormat::JsonLines);
/// for id in ["1", "2", "3"] {
///     batch.push(Event::builder().id(id).source("/s").ty("t").build()?).map_err(|e| e.kind)?;
/// }
/// let mut buf = [0u8; 1024];
/// let mut w = SliceWriter::new(&mut buf);
/// assert_eq!(batch.write_to(&mut w)?, 3);
/// assert_eq!(w.written().split(|&b| b == b'\n').filter(|l| !l.is_empty()).count(), 3);
/// assert!(batch.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Batch<const N: usize, const B: usize> {
    /// Each event's JSON followed by its terminator (`\n` or `,`).
    bytes: heapless::Vec<u8, B>,
    /// End offset of each event in `bytes`, after its terminator.
    ends: heapless::Vec<usize, N>,
    format: BatchFormat,
    progress: Progress,
}

/// How far the drain in hand got. It lives in the batch, so an error return
/// and a dropped future leave the same record (see the module docs).
///
/// The drain writes the *document* of the events after `done`: in JSON Lines
/// their lines, in JSON batch `[`, their JSON joined by `,`, `]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Progress {
    /// Events the writer took whole in this unfinished drain; they wait for
    /// the flush (and are not written again unless it fails).
    done: usize,
    /// Bytes of the document the writer took (`Ok(n)`).
    pos: usize,
    /// A `\n` goes out before anything else: it ends a torn fragment, or the
    /// line of a JSON batch array whose `]` was taken.
    newline: bool,
    /// Set before every `write` call and cleared when it returns `Ok`: still
    /// set means the call failed or its future was dropped, and an unknown
    /// part of it may have reached the reader.
    torn: bool,
}

impl Progress {
    /// Nothing of the events held has been written.
    fn is_clean(self) -> bool {
        self == Progress::default()
    }
}

impl<const N: usize, const B: usize> fmt::Debug for Batch<N, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("events", &self.ends.len())
            .field("bytes", &self.bytes.len())
            .field("format", &self.format)
            .field("progress", &self.progress)
            .finish()
    }
}

impl<const N: usize, const B: usize> Default for Batch<N, B> {
    fn default() -> Self {
        Self::new(BatchFormat::default())
    }
}

impl<const N: usize, const B: usize> Batch<N, B> {
    /// An empty batch drained in `format`.
    ///
    /// ```
    /// use ossa_events_core::{Batch, BatchFormat};
    /// // `const`: a batch can live in a `static` buffer.
    /// const EMPTY: Batch<16, 4096> = Batch::new(BatchFormat::JsonBatch);
    /// assert!(EMPTY.is_empty());
    /// ```
    ///
    /// A batch for no events (`N` = 0) does not compile: it could take
    /// none, yet report each push as [`FullCount`](PushErrorKind::FullCount),
    /// which draining never cures (nor, for an emitter, its
    /// [`TooLarge`](crate::emitter::EmitError::TooLarge)).
    ///
    /// ```compile_fail,E0080
    /// use ossa_events_core::{Batch, BatchFormat};
    /// let batch: Batch<0, 4096> = Batch::new(BatchFormat::JsonLines);
    /// ```
    pub const fn new(format: BatchFormat) -> Self {
        const { assert!(N > 0, "a Batch needs room for at least one event (N > 0)") };
        Batch {
            bytes: heapless::Vec::new(),
            ends: heapless::Vec::new(),
            format,
            progress: Progress {
                done: 0,
                pos: 0,
                newline: false,
                torn: false,
            },
        }
    }

    /// The framing used when draining.
    ///
    /// ```
    /// use ossa_events_core::{Batch, BatchFormat};
    /// let batch: Batch<4, 256> = Batch::default();
    /// assert_eq!(batch.format(), BatchFormat::JsonLines); // the default framing
    /// ```
    pub fn format(&self) -> BatchFormat {
        self.format
    }
    /// Events held.
    ///
    /// ```
    /// # use ossa_events_core::{Batch, BatchFormat, Event};
    /// # let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let mut batch: Batch<4, 512> = Batch::new(BatchFormat::JsonLines);
    /// batch.push_ref(&ev)?;
    /// batch.push_ref(&ev)?;
    /// assert_eq!(batch.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.ends.len()
    }
    /// Whether no event is held.
    ///
    /// ```
    /// # use ossa_events_core::{Batch, BatchFormat, Event};
    /// # let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let mut batch: Batch<4, 512> = Batch::new(BatchFormat::JsonLines);
    /// assert!(batch.is_empty());
    /// batch.push_ref(&ev)?;
    /// assert!(!batch.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    /// Whether the count limit `N` is reached.
    ///
    /// ```
    /// # use ossa_events_core::{Batch, BatchFormat, Event};
    /// # let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let mut batch: Batch<2, 512> = Batch::new(BatchFormat::JsonLines);
    /// batch.push_ref(&ev)?;
    /// batch.push_ref(&ev)?;
    /// assert!(batch.is_full()); // `N` = 2 events reached
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_full(&self) -> bool {
        self.ends.is_full()
    }
    /// Encoded bytes held: each event's JSON and what follows it (its line's
    /// `\n` in JSON Lines, a `,` in JSON batch).
    ///
    /// ```
    /// # use ossa_events_core::{Batch, BatchFormat, Event};
    /// # let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let mut batch: Batch<4, 512> = Batch::new(BatchFormat::JsonBatch);
    /// batch.push_ref(&ev)?;
    /// assert_eq!(batch.bytes_len(), ossa_events_core::format::json::encoded_len(&ev)? + 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bytes_len(&self) -> usize {
        self.bytes.len()
    }
    /// Bytes of arena left.
    ///
    /// ```
    /// # use ossa_events_core::{Batch, BatchFormat, Event};
    /// # let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let mut batch: Batch<4, 512> = Batch::new(BatchFormat::JsonLines);
    /// batch.push_ref(&ev)?;
    /// assert_eq!(batch.bytes_free(), 512 - batch.bytes_len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bytes_free(&self) -> usize {
        B - self.bytes.len()
    }
    /// The encoded events, each as its compact JSON.
    ///
    /// ```
    /// use ossa_events_core::{parse, Batch, Event, Scratch};
    /// let mut batch: Batch<4, 512> = Batch::default();
    /// batch.push_ref(&Event::builder().id("7").source("/s").ty("t").build()?)?;
    /// for json in batch.events() {
    ///     let mut buf = [0u8; 64];
    ///     let ev = parse::json::parse_event(json, &mut Scratch::new(&mut buf))?; // no `\n`
    ///     assert_eq!(ev.id(), "7");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn events(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut start = 0;
        let terminator = self.format.terminator();
        self.ends.iter().map(move |&end| {
            let ev = self.bytes.get(start..end).unwrap_or(&[]);
            start = end;
            ev.strip_suffix(terminator).unwrap_or(ev)
        })
    }

    /// Encodes `event` into the arena. On failure the batch is unchanged and the
    /// event comes back in the error.
    ///
    /// ```
    /// use ossa_events_core::{io::SliceWriter, Batch, Event};
    /// let mut batch: Batch<2, 512> = Batch::default();
    /// let mut out = [0u8; 1024];
    /// let mut w = SliceWriter::new(&mut out);
    /// for id in ["1", "2", "3"] {
    ///     let ev = Event::builder().id(id).source("/s").ty("t").build()?;
    ///     if let Err(full) = batch.push(ev) {
    ///         assert!(full.is_full());
    ///         batch.write_to(&mut w)?; // make room, then retry the same event
    ///         batch.push(full.event).map_err(|e| e.kind)?;
    ///     }
    /// }
    /// assert_eq!(batch.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::result_large_err)]
    pub fn push<'a>(&mut self, event: Event<'a>) -> Result<(), PushError<'a>> {
        match self.push_ref(&event) {
            Ok(()) => Ok(()),
            Err(kind) => Err(PushError { kind, event }),
        }
    }

    /// Like [`push`](Self::push), borrowing the event.
    ///
    /// ```
    /// # use ossa_events_core::{Batch, BatchFormat, Event};
    /// # let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let mut batch: Batch<4, 512> = Batch::new(BatchFormat::JsonLines);
    /// batch.push_ref(&ev)?; // the event is encoded now; `ev` stays usable
    /// batch.push_ref(&ev)?;
    /// assert_eq!(batch.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    // The error hands the event back (heapless style); no_std has no Box to shrink it.
    pub fn push_ref(&mut self, event: &Event<'_>) -> Result<(), PushErrorKind> {
        let start = self.bytes.len();
        // Encoded before the count is checked: an event that can never be
        // stored (`TooLarge`, a failing payload) is refused for that even
        // when the batch holds `N` events, not as `FullCount`, which would
        // send the caller to flush and retry an event no flush makes room
        // for. Only a full batch pays for the encoding it then undoes.
        encode_into(self.bytes.as_mut_view(), event, self.format.terminator())?;
        let end = self.bytes.len();
        if self.ends.push(end).is_err() {
            self.bytes.truncate(start);
            return Err(PushErrorKind::FullCount);
        }
        Ok(())
    }

    /// Appends an event's JSON as it was encoded before (read back from a
    /// spool), with its terminator. On failure the batch is unchanged.
    #[cfg(feature = "flash-spool")]
    pub(crate) fn push_encoded(&mut self, json: &[u8]) -> Result<(), PushErrorKind> {
        if self.ends.is_full() {
            return Err(PushErrorKind::FullCount);
        }
        let start = self.bytes.len();
        let terminator = self.format.terminator();
        if self.bytes.extend_from_slice(json).is_err()
            || self.bytes.extend_from_slice(terminator).is_err()
            || self.ends.push(self.bytes.len()).is_err()
        {
            self.bytes.truncate(start);
            return Err(PushErrorKind::FullBytes);
        }
        Ok(())
    }

    /// The JSON of event `i` (without its terminator).
    #[cfg(feature = "flash-spool")]
    pub(crate) fn event(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let ev = self.bytes.get(self.start_of(i)..end)?;
        Some(ev.strip_suffix(self.format.terminator()).unwrap_or(ev))
    }

    /// Removes the last event. It should not be part of a drain in progress
    /// (it was pushed after the last one). If the writer took it whole, the
    /// drain starts over; if it took part of it (a cut or stopped write),
    /// the next drain ends that line with `\n` first (JSON Lines: the lines
    /// taken before it are not written again; JSON batch: the whole array
    /// is, the one the reader holds part of is not the one left).
    #[cfg(feature = "flash-spool")]
    pub(crate) fn pop_last(&mut self) {
        if self.ends.pop().is_some() {
            let start = self.ends.last().copied().unwrap_or(0);
            self.bytes.truncate(start);
            let p = self.progress;
            let last = self.ends.len();
            if p.done > last {
                self.rewind();
            } else if self.format == BatchFormat::JsonLines {
                if p.done == last && (p.pos > 0 || p.torn) {
                    self.progress = Progress {
                        done: last,
                        pos: 0,
                        newline: true,
                        torn: false,
                    };
                }
            } else if !p.torn && !p.newline && p.pos > start {
                // The `,` after the event before it was taken (a cut write
                // makes the next drain write the whole array anyway).
                self.rewind();
            }
        }
    }

    /// Removes the first event (a copy of a record in flash that is being
    /// dropped). Only for a drain in which the writer took no event whole:
    /// the next drain starts over, after a `\n` if anything was written.
    #[cfg(feature = "flash-spool")]
    pub(crate) fn pop_first(&mut self) {
        let Some(&first) = self.ends.first() else {
            return;
        };
        // Byte by byte, with no slice index that can fail: firmware links
        // neither a panic path nor `memmove` (1.7 KB on Cortex-M) for it.
        let len = self.bytes.len();
        for to in 0..len.saturating_sub(first) {
            if let Some(b) = self.bytes.get(to + first).copied()
                && let Some(d) = self.bytes.get_mut(to)
            {
                *d = b;
            }
        }
        self.bytes.truncate(len.saturating_sub(first));
        for i in 1..self.ends.len() {
            if let Some(end) = self.ends.get(i).copied()
                && let Some(d) = self.ends.get_mut(i - 1)
            {
                *d = end.saturating_sub(first);
            }
        }
        self.ends.pop();
        self.rewind();
    }

    /// Drops every event (they are copies of records in flash), returning
    /// how many of them, from the first, the writer took whole in the drain
    /// in hand: their lines wait in the writer for its flush. A `\n` owed
    /// to the reader stays owed, as with [`clear`](Self::clear); give the
    /// count to [`resume`](Self::resume) once the same events are back.
    #[cfg(feature = "flash-spool")]
    pub(crate) fn clear_taken(&mut self) -> usize {
        let taken = self.taken();
        self.clear();
        taken
    }

    /// Events the writer took whole in the drain in hand (their lines, or
    /// their whole array, wait for the flush; a cut array counts none).
    /// In JSON Lines that includes an event whose JSON it took whole with
    /// only its `\n` missing (a drain stopped by `Ok(0)`): the `\n` a
    /// cleared batch owes the reader ends its line.
    #[cfg(feature = "flash-spool")]
    pub(crate) fn taken(&self) -> usize {
        let p = self.recovered();
        match (self.format, self.ends.get(p.done)) {
            (BatchFormat::JsonLines, Some(&end))
                if !p.newline
                    && p.pos > 0
                    && self.start_of(p.done) + p.pos >= end.saturating_sub(1) =>
            {
                p.done + 1
            }
            _ => p.done,
        }
    }

    /// After a drain that failed with [`DrainError::Io`]: whether a `write`
    /// failed (the writer still holds what it took whole), not its `flush`
    /// (which may have lost it).
    #[cfg(feature = "flash-spool")]
    pub(crate) fn write_failed(&self) -> bool {
        self.progress.torn
    }

    /// Goes on with a drain that [`clear_taken`](Self::clear_taken) set
    /// aside, the same events loaded again in the same order: its first
    /// `taken` events are not written again (they are counted when the
    /// writer's flush succeeds). A writer whose flush failed since may have
    /// lost them: the caller forgets `taken` then.
    #[cfg(feature = "flash-spool")]
    pub(crate) fn resume(&mut self, taken: usize) {
        if taken > 0 && taken <= self.len() && self.progress.pos == 0 && !self.progress.torn {
            self.progress.done = taken;
        }
    }

    /// Drops every event. If a drain was cut short, the next one still starts
    /// with `\n`, so whatever the reader got of the dropped events stays on a
    /// line of its own.
    ///
    /// ```
    /// # use ossa_events_core::{Batch, BatchFormat, Event};
    /// # let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let mut batch: Batch<4, 512> = Batch::new(BatchFormat::JsonLines);
    /// batch.push_ref(&ev)?;
    /// batch.clear();
    /// assert_eq!((batch.len(), batch.bytes_free()), (0, 512));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.rewind();
    }

    /// Forgets how far an unfinished drain got: the next drain writes every
    /// event again, after a `\n`. Call it when the writer is replaced or
    /// reconnected in the middle of a drain: bytes the old one took but never
    /// flushed may be lost, and at-least-once means writing them again (what
    /// the old one did pass on then arrives twice). A batch with no drain in
    /// progress is left as it is.
    ///
    /// ```
    /// use ossa_events_core::{io::SliceWriter, Batch, Event};
    /// let mut batch: Batch<4, 512> = Batch::default();
    /// for id in ["1", "2"] {
    ///     batch.push_ref(&Event::builder().id(id).source("/s").ty("t").build()?)?;
    /// }
    /// // The first line fits, the second does not: the drain stops after one line.
    /// let first = batch.events().next().map_or(0, |e| e.len() + 1);
    /// let mut small = vec![0u8; first + 10];
    /// assert!(batch.write_to(&mut SliceWriter::new(&mut small)).is_err());
    /// // A new connection never saw the first line: send both again.
    /// batch.rewind();
    /// let mut out = [0u8; 512];
    /// let mut w = SliceWriter::new(&mut out);
    /// assert_eq!(batch.write_to(&mut w)?, 2);
    /// assert_eq!(w.written().iter().filter(|&&b| b == b'\n').count(), 3); // `\n` first
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rewind(&mut self) {
        if !self.progress.is_clean() {
            self.progress = Progress {
                newline: true,
                ..Progress::default()
            };
        }
    }

    /// Whether a drain stopped part-way through a line of the reader's: a
    /// write failed or its future was dropped (the flag is set before every
    /// write and cleared only when the write returns), or a JSON batch array
    /// still lacks its `\n`. The next drain then starts with `\n`.
    ///
    /// ```
    /// use ossa_events_core::{io::SliceWriter, Batch, Event};
    /// let mut batch: Batch<4, 512> = Batch::default();
    /// batch.push_ref(&Event::builder().id("1").source("/s").ty("t").build()?)?;
    /// let mut small = [0u8; 10];
    /// assert!(batch.write_to(&mut SliceWriter::new(&mut small)).is_err());
    /// assert!(batch.is_torn()); // the reader may hold 10 bytes of the line
    /// let mut out = [0u8; 512];
    /// let mut w = SliceWriter::new(&mut out);
    /// assert_eq!(batch.write_to(&mut w)?, 1);
    /// assert!(w.written().starts_with(b"\n{")); // the fragment's line ends first
    /// assert!(!batch.is_torn());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_torn(&self) -> bool {
        self.recovered().newline
    }

    /// Size of the output the next [`write_to`](Self::write_to) would write:
    /// the framed events not yet written, and the `\n` that ends a torn line.
    ///
    /// ```
    /// # use ossa_events_core::{Batch, BatchFormat, Event};
    /// # let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let mut batch: Batch<4, 512> = Batch::new(BatchFormat::JsonBatch);
    /// batch.push_ref(&ev)?;
    /// batch.push_ref(&ev)?;
    /// let framed = batch.framed_len();
    /// // `[`, `]` and the line's `\n`; each event's `,` is stored with it (the last one is left out).
    /// assert_eq!(framed, batch.bytes_len() + 2);
    /// let mut out = [0u8; 512];
    /// let mut w = ossa_events_core::io::SliceWriter::new(&mut out);
    /// batch.write_to(&mut w)?;
    /// assert_eq!(w.len(), framed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn framed_len(&self) -> usize {
        if self.is_empty() {
            return 0;
        }
        let p = self.recovered();
        let document: usize = self.document(p.done).iter().map(|piece| piece.len()).sum();
        let line_end = usize::from(self.format == BatchFormat::JsonBatch && document > 0);
        usize::from(p.newline) + document.saturating_sub(p.pos) + line_end
    }

    /// Writes every event, framed, then flushes the writer. On success the
    /// batch is emptied and the number of events written is returned; on
    /// failure every event stays, and the next call goes on from where this one
    /// stopped (see the module docs for what a reader sees):
    ///
    /// - a short write (`Ok(n)`) is followed exactly; so is `Ok(0)`, which
    ///   fails the drain with [`DrainError::WriteZero`];
    /// - a write error (or, async, a dropped future) cuts the drain: in JSON
    ///   Lines the lines the writer took whole are not written again, the cut
    ///   event is, after a `\n`; in JSON batch the whole array is, after a `\n`;
    /// - a flush error means the writer may have lost what it took: everything
    ///   is written again, after a `\n` (what it had passed on arrives twice);
    /// - [`ErrorKind::Interrupted`](embedded_io::ErrorKind::Interrupted) from
    ///   `write` or `flush` (nothing written, as `std` defines it: a signal
    ///   during the call) is tried again at once, up to 8 times in a row, as
    ///   `std`'s `write_all` does; the 9th is an error as above.
    ///
    /// Give the next call the same writer, or call [`rewind`](Self::rewind).
    /// An empty batch writes nothing and does not flush. In JSON Lines the
    /// events are one contiguous buffer, written with as few `write` calls as
    /// the writer allows; a JSON batch takes three (`[`, the events, `]`) and
    /// one for its `\n`.
    ///
    /// ```
    /// use ossa_events_core::{batch::DrainError, io::SliceWriter, Batch, Event};
    /// let mut batch: Batch<4, 512> = Batch::default();
    /// batch.push_ref(&Event::builder().id("1").source("/s").ty("t").build()?)?;
    /// // A failed write keeps the events...
    /// let mut small = [0u8; 10];
    /// assert!(matches!(batch.write_to(&mut SliceWriter::new(&mut small)), Err(DrainError::Io(_))));
    /// assert_eq!(batch.len(), 1);
    /// // ...and the retry delivers them (at-least-once).
    /// let mut big = [0u8; 512];
    /// assert_eq!(batch.write_to(&mut SliceWriter::new(&mut big))?, 1);
    /// assert!(batch.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_to<W: Write + ?Sized>(
        &mut self,
        w: &mut W,
    ) -> Result<usize, DrainError<W::Error>> {
        if self.is_empty() {
            return Ok(0);
        }
        self.progress = self.recovered();
        let mut tries = 0;
        while let Some(chunk) = self.next_chunk() {
            let asked = chunk.len();
            let r = w.write(chunk);
            if interrupted(&r, &mut tries) {
                continue;
            }
            self.wrote(asked, r)?;
        }
        loop {
            let r = w.flush();
            if !interrupted(&r, &mut tries) {
                return self.flushed(r);
            }
        }
    }

    /// [`write_to`](Self::write_to) over an [`embedded_io_async::Write`]: the
    /// same framing routine, with `.await` on the I/O. Dropping the future
    /// (a `select`, a timeout) at any await point loses nothing and glues
    /// nothing: the batch records that the write in flight may have been cut,
    /// and the next drain recovers as from a write error.
    ///
    /// ```
    /// # fn block_on<F: core::future::Future>(f: F) -> F::Output {
    /// #     let mut f = core::pin::pin!(f);
    /// #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    /// #     loop {
    /// #         if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #     }
    /// # }
    /// use ossa_events_core::{Batch, Event};
    /// let mut batch: Batch<4, 512> = Batch::default();
    /// batch.push_ref(&Event::builder().id("1").source("/s").ty("t").build()?)?;
    /// let mut out = [0u8; 512];
    /// let mut w: &mut [u8] = &mut out; // any `embedded_io_async::Write`, e.g. an embassy UART
    /// let written = block_on(batch.write_to_async(&mut w))?;
    /// assert_eq!(written, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub async fn write_to_async<W: embedded_io_async::Write + ?Sized>(
        &mut self,
        w: &mut W,
    ) -> Result<usize, DrainError<W::Error>> {
        if self.is_empty() {
            return Ok(0);
        }
        self.progress = self.recovered();
        let mut tries = 0;
        while let Some(chunk) = self.next_chunk() {
            let asked = chunk.len();
            let r = w.write(chunk).await;
            if interrupted(&r, &mut tries) {
                continue;
            }
            self.wrote(asked, r)?;
        }
        loop {
            let r = w.flush().await;
            if !interrupted(&r, &mut tries) {
                return self.flushed(r);
            }
        }
    }

    // The framing routine shared by `write_to` and `write_to_async`.

    /// The progress to go on from. After a cut write (`torn`) the reader
    /// holds what the writer confirmed, and perhaps part of the cut write:
    /// end that line with `\n`, then write the cut event (JSON Lines) or the
    /// whole array (JSON batch) again. An event whose JSON was confirmed
    /// whole, only its `\n` missing, is not written again: the `\n` ends it.
    fn recovered(&self) -> Progress {
        let p = self.progress;
        if !p.torn {
            return p;
        }
        let cut = Progress {
            pos: 0,
            newline: true,
            torn: false,
            ..p
        };
        match (self.format, self.ends.get(p.done)) {
            (BatchFormat::JsonLines, Some(&end)) if !p.newline => {
                let json_end = end.saturating_sub(1);
                if self.start_of(p.done) + p.pos >= json_end {
                    return Progress {
                        done: p.done + 1,
                        ..cut
                    };
                }
                cut
            }
            _ => cut,
        }
    }

    /// Where event `i` starts in the arena.
    fn start_of(&self, i: usize) -> usize {
        i.checked_sub(1)
            .and_then(|j| self.ends.get(j))
            .copied()
            .unwrap_or(0)
    }

    /// The document of the events after `done`, in the pieces it is written
    /// in: JSON Lines, their lines; JSON batch, `[`, their JSON joined by `,`
    /// (the last event's `,` left out), `]`. Empty when no event is left.
    fn document(&self, done: usize) -> [&[u8]; 3] {
        let rest = self.bytes.get(self.start_of(done)..).unwrap_or(&[]);
        match (self.format, rest.split_last()) {
            (_, None) => [&[], &[], &[]],
            (BatchFormat::JsonLines, Some(_)) => [&[], rest, &[]],
            (BatchFormat::JsonBatch, Some((_, events))) => [b"[", events, b"]"],
        }
    }

    /// The bytes to write next, `None` once every byte is written (flush
    /// then). Marks the batch torn until [`wrote`](Self::wrote) hears back, so
    /// a write that never returns (its future dropped) leaves the mark.
    fn next_chunk(&mut self) -> Option<&[u8]> {
        let p = self.progress;
        let [a, b, c] = self.document(p.done);
        let newline: &[u8] = if p.newline { b"\n" } else { &[] };
        let pieces = [newline, a, b, c];
        let mut at = if p.newline { 0 } else { p.pos };
        let k = pieces.iter().position(|piece| {
            let here = at < piece.len();
            if !here {
                at -= piece.len();
            }
            here
        })?;
        self.progress.torn = true;
        let [a, b, c] = self.document(p.done);
        let piece = [newline, a, b, c].get(k).copied().unwrap_or_default();
        // `at` is inside `piece`; were it not, an empty write fails the drain
        // (`WriteZero`) rather than flushing what was not written.
        Some(piece.get(at..).unwrap_or_default())
    }

    /// Records what a `write` of `asked` bytes returned.
    fn wrote<E>(&mut self, asked: usize, r: Result<usize, E>) -> Result<(), DrainError<E>> {
        // An error leaves `torn` set: the call may have passed bytes on.
        let n = r.map_err(DrainError::Io)?.min(asked);
        self.progress.torn = false;
        if n == 0 {
            return Err(DrainError::WriteZero);
        }
        let mut p = self.progress;
        if p.newline {
            p.newline = false;
        } else {
            p.pos += n;
            match self.format {
                BatchFormat::JsonLines => {
                    // Lines taken whole wait for the flush, never to be written again.
                    let reached = self.start_of(p.done) + p.pos;
                    let done = self.ends.partition_point(|&end| end <= reached);
                    p.pos = reached.saturating_sub(self.start_of(done));
                    p.done = done;
                }
                BatchFormat::JsonBatch => {
                    let document: usize = self.document(p.done).iter().map(|x| x.len()).sum();
                    if document > 0 && p.pos >= document {
                        // The array is whole at the reader; its line owes a `\n`.
                        p = Progress {
                            done: self.len(),
                            pos: 0,
                            newline: true,
                            torn: false,
                        };
                    }
                }
            }
        }
        self.progress = p;
        Ok(())
    }

    /// Records what the `flush` after the last write returned.
    fn flushed<E>(&mut self, r: Result<(), E>) -> Result<usize, DrainError<E>> {
        match r {
            Ok(()) => {
                let n = self.len();
                self.bytes.clear();
                self.ends.clear();
                self.progress = Progress::default();
                Ok(n)
            }
            Err(e) => {
                // The writer may have lost what it took: all of it again.
                self.progress = Progress {
                    newline: true,
                    ..Progress::default()
                };
                Err(DrainError::Io(e))
            }
        }
    }
}
