//! A fixed-capacity batch: events encoded once, at push, into a byte arena.
//!
//! [`Batch<N, B>`] holds at most `N` events in at most `B` bytes of encoded
//! JSON. Draining it ([`Batch::write_to`]) frames the stored events as a JSON
//! batch (`[e1,e2]`) or as JSON Lines (`e1\ne2\n`) and writes them to any
//! [`embedded_io::Write`]; only when the writer and its `flush` both succeed
//! are the events removed. A failed write keeps every event for the next try.
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

use core::fmt;

use embedded_io::Write;

use crate::error::{EncodeError, PayloadError};
use crate::event::Event;
use crate::io::{write_all, WriteError};

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
/// assert!(w.written().ends_with(b"}]"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum BatchFormat {
    /// A JSON batch: `[event,event,…]` (`application/cloudevents-batch+json`).
    JsonBatch,
    /// JSON Lines: one event per line, each ending in `\n`.
    #[default]
    JsonLines,
}

impl BatchFormat {
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

/// `write_all` over an async writer that reports `Ok(0)` instead of panicking.
#[cfg(feature = "async")]
async fn write_all_async<W: embedded_io_async::Write + ?Sized>(
    w: &mut W,
    mut buf: &[u8],
) -> Result<(), DrainError<W::Error>> {
    while !buf.is_empty() {
        match w.write(buf).await {
            Ok(0) => return Err(DrainError::WriteZero),
            Ok(n) => buf = buf.get(n..).unwrap_or(&[]),
            Err(e) => return Err(DrainError::Io(e)),
        }
    }
    Ok(())
}

/// Appends to the arena, refusing (rather than splitting) a write that does not fit.
struct Arena<'v, const B: usize>(&'v mut heapless::Vec<u8, B>);

#[derive(Debug)]
struct ArenaFull;

impl fmt::Display for ArenaFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("arena full")
    }
}
impl core::error::Error for ArenaFull {}
impl embedded_io::Error for ArenaFull {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::OutOfMemory
    }
}

impl<const B: usize> embedded_io::ErrorType for Arena<'_, B> {
    type Error = ArenaFull;
}

impl<const B: usize> Write for Arena<'_, B> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> Result<usize, ArenaFull> {
        self.0.extend_from_slice(buf).map_err(|_| ArenaFull)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ArenaFull> {
        Ok(())
    }
}

/// Up to `N` events encoded as compact JSON in a `B`-byte arena.
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
    bytes: heapless::Vec<u8, B>,
    /// End offset of each event in `bytes` (after its `\n` in JSON Lines).
    ends: heapless::Vec<usize, N>,
    format: BatchFormat,
    /// A write failed after possibly writing part of the batch: the next
    /// JSON Lines drain starts with `\n`, so a torn line stays on a line of its own.
    torn: bool,
}

impl<const N: usize, const B: usize> fmt::Debug for Batch<N, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("events", &self.ends.len())
            .field("bytes", &self.bytes.len())
            .field("format", &self.format)
            .field("torn", &self.torn)
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
    pub const fn new(format: BatchFormat) -> Self {
        Batch {
            bytes: heapless::Vec::new(),
            ends: heapless::Vec::new(),
            format,
            torn: false,
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
    /// Encoded bytes held (without framing).
    ///
    /// ```
    /// # use ossa_events_core::{Batch, BatchFormat, Event};
    /// # let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let mut batch: Batch<4, 512> = Batch::new(BatchFormat::JsonBatch);
    /// batch.push_ref(&ev)?;
    /// assert_eq!(batch.bytes_len(), ossa_events_core::format::json::encoded_len(&ev)?);
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
        let lines = self.format == BatchFormat::JsonLines;
        self.ends.iter().map(move |&end| {
            let ev = self.bytes.get(start..end).unwrap_or(&[]);
            start = end;
            if lines {
                ev.strip_suffix(b"\n").unwrap_or(ev)
            } else {
                ev
            }
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
        if self.ends.is_full() {
            return Err(PushErrorKind::FullCount);
        }
        let start = self.bytes.len();
        let mut arena = Arena(&mut self.bytes);
        let mut written = crate::format::json::write_json(event, &mut arena);
        if written.is_ok() && self.format == BatchFormat::JsonLines {
            written = crate::io::write_all(&mut arena, b"\n").map_err(Into::into);
        }
        match written {
            Ok(()) => {
                let end = self.bytes.len();
                // Cannot fail: checked not full above.
                if self.ends.push(end).is_err() {
                    self.bytes.truncate(start);
                    return Err(PushErrorKind::FullCount);
                }
                Ok(())
            }
            Err(e) => {
                self.bytes.truncate(start);
                Err(match e {
                    EncodeError::Payload(p) => PushErrorKind::Payload(p),
                    _ if start == 0 => PushErrorKind::TooLarge,
                    _ => {
                        // Would it fit in an empty arena? Measure without storing.
                        match crate::format::json::encoded_len(event) {
                            Ok(n) if n > B => PushErrorKind::TooLarge,
                            Ok(_) => PushErrorKind::FullBytes,
                            Err(p) => PushErrorKind::Payload(p),
                        }
                    }
                })
            }
        }
    }

    /// Drops every event.
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
        self.torn = false;
    }

    /// Size of the framed output [`write_to`](Self::write_to) would write.
    ///
    /// ```
    /// # use ossa_events_core::{Batch, BatchFormat, Event};
    /// # let ev = Event::builder().id("1").source("/s").ty("t").build()?;
    /// let mut batch: Batch<4, 512> = Batch::new(BatchFormat::JsonBatch);
    /// batch.push_ref(&ev)?;
    /// batch.push_ref(&ev)?;
    /// let framed = batch.framed_len();
    /// assert_eq!(framed, batch.bytes_len() + 3); // `[`, `,` and `]`
    /// let mut out = [0u8; 512];
    /// let mut w = ossa_events_core::io::SliceWriter::new(&mut out);
    /// batch.write_to(&mut w)?;
    /// assert_eq!(w.len(), framed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn framed_len(&self) -> usize {
        let n = self.ends.len();
        match self.format {
            BatchFormat::JsonLines => self.bytes.len() + usize::from(self.torn),
            BatchFormat::JsonBatch => self.bytes.len() + 2 + n.saturating_sub(1),
        }
    }

    /// Writes every event, framed, then flushes the writer. On success the batch
    /// is emptied and the number of events written is returned; on failure
    /// every event stays (the next call writes them again: at-least-once).
    /// An empty batch writes nothing and does not flush.
    ///
    /// In JSON Lines the stored events are one contiguous buffer written with
    /// as few `write` calls as the writer allows; after a failure, the next
    /// drain starts with a `\n`, so bytes of a torn line that did reach the
    /// other side end up on a line of their own instead of fused with the
    /// retried event.
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
        let r = self.write_framed(w).map_err(DrainError::from);
        let r = r.and_then(|()| w.flush().map_err(DrainError::Io));
        if let Err(e) = r {
            self.torn = true;
            return Err(e);
        }
        let n = self.len();
        self.clear();
        Ok(n)
    }

    /// [`write_to`](Self::write_to) over an [`embedded_io_async::Write`].
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
        let r = self.write_framed_async(w).await;
        let r = match r {
            Ok(()) => w.flush().await.map_err(DrainError::Io),
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            self.torn = true;
            return Err(e);
        }
        let n = self.len();
        self.clear();
        Ok(n)
    }

    #[cfg(feature = "async")]
    async fn write_framed_async<W: embedded_io_async::Write + ?Sized>(
        &self,
        w: &mut W,
    ) -> Result<(), DrainError<W::Error>> {
        match self.format {
            BatchFormat::JsonLines => {
                if self.torn {
                    write_all_async(w, b"\n").await?;
                }
                write_all_async(w, &self.bytes).await
            }
            BatchFormat::JsonBatch => {
                write_all_async(w, b"[").await?;
                for (i, ev) in self.events().enumerate() {
                    if i > 0 {
                        write_all_async(w, b",").await?;
                    }
                    write_all_async(w, ev).await?;
                }
                write_all_async(w, b"]").await
            }
        }
    }

    fn write_framed<W: Write + ?Sized>(&self, w: &mut W) -> Result<(), WriteError<W::Error>> {
        match self.format {
            BatchFormat::JsonLines => {
                if self.torn {
                    write_all(w, b"\n")?;
                }
                write_all(w, &self.bytes)?;
            }
            BatchFormat::JsonBatch => {
                write_all(w, b"[")?;
                for (i, ev) in self.events().enumerate() {
                    if i > 0 {
                        write_all(w, b",")?;
                    }
                    write_all(w, ev)?;
                }
                write_all(w, b"]")?;
            }
        }
        Ok(())
    }
}
