//! A flash spool for the `no_std` emitter (feature `flash-spool`): events that
//! cannot be written now wait in NOR flash, survive a power cut, and are
//! written in order when the writer works again.
//!
//! [`SpoolEmitter`] is the [`Emitter`](crate::emitter::Emitter) with a
//! [`FlashSpool`] behind its batch. The spool is a FIFO of encoded events in
//! a range of NOR flash, kept by [`sequential-storage`]'s queue (power-fail
//! safe, wear-levelling, CRC-checked items) through the
//! [`embedded-storage`] traits, so it runs on any MCU flash or external NOR
//! chip with a driver for them. No allocator; the spool adds one read buffer
//! of `R` bytes (the largest event it takes) and a few words of state.
//!
//! - [`SpoolMode::WhenDown`] (default): events are batched in RAM as usual;
//!   when a write fails, the batch goes to flash, and so does every event
//!   emitted while flash holds any. A power cut loses what was only in RAM
//!   (events emitted since the last failed write, while the writer worked).
//! - [`SpoolMode::Always`]: every event is in flash before `emit` returns
//!   `Ok`. A power cut loses nothing that was accepted.
//!
//! Draining: a flush loads the oldest events from flash into the batch,
//! writes them, and removes them from flash only once the writer's `flush`
//! succeeded. A power cut between that flush and the removal writes those
//! events again after the restart: delivery is at least once, in order, and
//! each event keeps its `id`, so a reader can drop the repeats.
//!
//! When the flash is full, [`WhenFull`] decides: drop the oldest event
//! ([`WhenFull::DropOldest`], default) or the new one. Every drop is counted
//! in [`Counters::dropped`](crate::emitter::Counters::dropped). A flash that
//! fails (a driver error, corruption the crate cannot repair) is counted in
//! [`SpoolCounters::flash_errors`] and the emitter goes on from RAM: it loses
//! nothing it still holds, but events in RAM may then be written before older
//! ones in flash.
//!
//! ```
//! use ossa_events_core::emitter::Config;
//! use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
//! use ossa_events_core::{io::SliceWriter, ossa, FixedClock, RandomIds, Timestamp};
//!
//! // Any `embedded_storage` NOR flash; a RAM one here (4 pages of 1 KiB).
//! let flash = BlockingFlash(RamFlash::<4096, 1024>::new());
//! let spool: FlashSpool<_, _, 512> = FlashSpool::open(flash, 0..4096, Cache::new_uncached())?;
//! let mut out = [0u8; 4096];
//! let ids = RandomIds(|b: &mut [u8; 16]| b.fill(7));
//! let clock = FixedClock(Timestamp::UNIX_EPOCH);
//! let mut em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> =
//!     SpoolEmitter::new(Config::new("/devices/7"), SliceWriter::new(&mut out), spool, ids, clock);
//! em.emit_ossa(&ossa::TurnStarted { turn: 1, input: None })?;
//! em.flush()?;
//! assert_eq!(em.counters().delivered, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`sequential-storage`]: https://docs.rs/sequential-storage
//! [`embedded-storage`]: https://docs.rs/embedded-storage

use core::fmt;
use core::future::Future;
use core::ops::Range;
use core::task::{Context, Poll, Waker};

use embedded_io::Write;
use embedded_storage::nor_flash as blocking;
use embedded_storage_async::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use sequential_storage::cache::CacheImpl;
use sequential_storage::queue::{QueueConfig, QueueConfigError, QueueStorage};

use crate::batch::{Batch, DrainError};
use crate::emitter::{Config, Counters, EmitError, Inner, Staged, millis};
use crate::event::EventBuilder;
use crate::id::IdSource;
use crate::json::ser::JsonPayload;
use crate::ossa;
use crate::time::{Clock, Timestamp};

/// `sequential-storage`'s caches, to pass to [`FlashSpool::open`]
/// (`Cache::new_uncached()` needs no RAM; the others trade RAM for fewer
/// flash reads).
pub use sequential_storage::cache;

/// Runs a future to completion by polling it. The flash futures of a
/// [`BlockingFlash`] are ready at their first poll; a truly async flash is
/// polled until it is (busy-waiting, as a blocking call would).
fn block_on<T>(f: impl Future<Output = T>) -> T {
    let mut f = core::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

// --- flash adapters -------------------------------------------------------------

/// A blocking [`embedded_storage`] NOR flash seen through the async traits
/// that `sequential-storage` is written against. Each call is the blocking
/// one; the futures are ready at once.
///
/// ```
/// use ossa_events_core::spool::{BlockingFlash, RamFlash};
/// // Wrap your HAL's flash (it implements `embedded_storage::nor_flash::NorFlash`).
/// let flash = BlockingFlash(RamFlash::<2048, 1024>::new());
/// assert_eq!(flash.0.as_bytes().len(), 2048);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockingFlash<F>(pub F);

impl<F: blocking::ErrorType> ErrorType for BlockingFlash<F> {
    type Error = F::Error;
}

impl<F: blocking::ReadNorFlash> ReadNorFlash for BlockingFlash<F> {
    const READ_SIZE: usize = F::READ_SIZE;
    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), F::Error> {
        self.0.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl<F: blocking::NorFlash> NorFlash for BlockingFlash<F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;
    async fn erase(&mut self, from: u32, to: u32) -> Result<(), F::Error> {
        self.0.erase(from, to)
    }
    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), F::Error> {
        self.0.write(offset, bytes)
    }
}

impl<F: blocking::MultiwriteNorFlash> MultiwriteNorFlash for BlockingFlash<F> {}

/// A NOR flash in RAM: `BYTES` bytes in pages of `PAGE` bytes, 4-byte words.
/// It behaves as NOR does (erase sets a page to `0xFF`, a write can only
/// clear bits), so what works on it works on a chip. Use it in host tests,
/// and on a device with no flash to spare, where it still keeps events
/// through writer outages (not through power cuts).
///
/// ```
/// use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
/// use ossa_events_core::spool::RamFlash;
/// let mut f = RamFlash::<2048, 1024>::new();
/// f.write(0, &[0x0F, 0xFF, 0xFF, 0xFF])?;
/// f.write(0, &[0xF0, 0xFF, 0xFF, 0xFF])?; // NOR: bits only clear
/// let mut word = [0u8; 4];
/// f.read(0, &mut word)?;
/// assert_eq!(word, [0x00, 0xFF, 0xFF, 0xFF]);
/// f.erase(0, 1024)?;
/// assert!(f.as_bytes()[..1024].iter().all(|&b| b == 0xFF));
/// # Ok::<(), ossa_events_core::spool::RamFlashError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RamFlash<const BYTES: usize, const PAGE: usize> {
    bytes: [u8; BYTES],
}

impl<const BYTES: usize, const PAGE: usize> fmt::Debug for RamFlash<BYTES, PAGE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RamFlash")
            .field("bytes", &BYTES)
            .field("page", &PAGE)
            .finish_non_exhaustive()
    }
}

impl<const BYTES: usize, const PAGE: usize> Default for RamFlash<BYTES, PAGE> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const BYTES: usize, const PAGE: usize> RamFlash<BYTES, PAGE> {
    /// An erased flash (every byte `0xFF`).
    ///
    /// ```
    /// use ossa_events_core::spool::RamFlash;
    /// // `const`: it can be a `static` in firmware.
    /// const F: RamFlash<1024, 512> = RamFlash::new();
    /// assert!(F.as_bytes().iter().all(|&b| b == 0xFF));
    /// ```
    pub const fn new() -> Self {
        RamFlash {
            bytes: [0xFF; BYTES],
        }
    }

    /// The flash contents.
    ///
    /// ```
    /// use ossa_events_core::spool::RamFlash;
    /// assert_eq!(RamFlash::<1024, 512>::new().as_bytes().len(), 1024);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The flash contents, to change by hand: a test can corrupt them or
    /// leave an operation half done, as a power cut would.
    ///
    /// ```
    /// use ossa_events_core::spool::RamFlash;
    /// let mut f = RamFlash::<1024, 512>::new();
    /// f.as_bytes_mut()[0] = 0;
    /// assert_eq!(f.as_bytes()[0], 0);
    /// ```
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    fn range(&self, offset: u32, len: usize, align: usize) -> Result<Range<usize>, RamFlashError> {
        let start = offset as usize;
        if !start.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(RamFlashError::NotAligned);
        }
        match start.checked_add(len) {
            Some(end) if end <= BYTES => Ok(start..end),
            _ => Err(RamFlashError::OutOfBounds),
        }
    }
}

/// Why a [`RamFlash`] refused an operation.
///
/// ```
/// use embedded_storage::nor_flash::NorFlash;
/// use ossa_events_core::spool::{RamFlash, RamFlashError};
/// let mut f = RamFlash::<1024, 512>::new();
/// assert_eq!(f.erase(0, 100), Err(RamFlashError::NotAligned));
/// assert_eq!(f.write(1024, &[0; 4]), Err(RamFlashError::OutOfBounds));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RamFlashError {
    /// The address or length is not a multiple of the word or page size.
    NotAligned,
    /// The range goes past the end of the flash.
    OutOfBounds,
}

impl fmt::Display for RamFlashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RamFlashError::NotAligned => "flash operation not aligned",
            RamFlashError::OutOfBounds => "flash operation out of bounds",
        })
    }
}

impl core::error::Error for RamFlashError {}

impl NorFlashError for RamFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            RamFlashError::NotAligned => NorFlashErrorKind::NotAligned,
            RamFlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
        }
    }
}

impl<const BYTES: usize, const PAGE: usize> blocking::ErrorType for RamFlash<BYTES, PAGE> {
    type Error = RamFlashError;
}

impl<const BYTES: usize, const PAGE: usize> blocking::ReadNorFlash for RamFlash<BYTES, PAGE> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), RamFlashError> {
        let r = self.range(offset, bytes.len(), 1)?;
        bytes.copy_from_slice(self.bytes.get(r).ok_or(RamFlashError::OutOfBounds)?);
        Ok(())
    }
    fn capacity(&self) -> usize {
        BYTES
    }
}

impl<const BYTES: usize, const PAGE: usize> blocking::NorFlash for RamFlash<BYTES, PAGE> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), RamFlashError> {
        let len = (to as usize)
            .checked_sub(from as usize)
            .ok_or(RamFlashError::OutOfBounds)?;
        let r = self.range(from, len, PAGE)?;
        self.bytes
            .get_mut(r)
            .ok_or(RamFlashError::OutOfBounds)?
            .fill(0xFF);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), RamFlashError> {
        let r = self.range(offset, bytes.len(), 4)?;
        let cells = self.bytes.get_mut(r).ok_or(RamFlashError::OutOfBounds)?;
        for (cell, b) in cells.iter_mut().zip(bytes) {
            *cell &= *b;
        }
        Ok(())
    }
}

impl<const BYTES: usize, const PAGE: usize> blocking::MultiwriteNorFlash for RamFlash<BYTES, PAGE> {}

// --- the spool ---------------------------------------------------------------------

/// When a [`SpoolEmitter`] puts events in flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpoolMode {
    /// Only when a write failed, and then every event until flash is empty
    /// again. Flash wears only during outages; a power cut loses the events
    /// that were in RAM only.
    #[default]
    WhenDown,
    /// Every event, before `emit` returns `Ok`: a power cut loses nothing
    /// accepted. Costs a flash write per event.
    Always,
}

/// What a full spool does with a new event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// The oldest events in flash are dropped until the new one fits.
    #[default]
    DropOldest,
    /// The new event is dropped; `emit` returns [`EmitError::SpoolFull`].
    DropNewest,
}

/// Why a [`FlashSpool`] could not be opened or used.
///
/// ```
/// use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolError};
/// let flash = BlockingFlash(RamFlash::<4096, 1024>::new());
/// // 100..4096 does not start on a page boundary.
/// let err = FlashSpool::<_, _, 512>::open(flash, 100..4096, Cache::new_uncached()).unwrap_err();
/// assert!(matches!(err, SpoolError::Range(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpoolError<E> {
    /// The flash driver failed.
    Flash(E),
    /// The flash range is not usable: not page-aligned, or under a page.
    Range(QueueConfigError),
    /// `R`, the largest event, does not fit in one flash page with the item
    /// header, or is not a multiple of the flash word: `max` would.
    EventLimit {
        /// The largest `R` this flash takes.
        max: usize,
    },
    /// An event in flash is longer than `R` (written by firmware with a larger
    /// limit): it cannot be read. Open with that limit, or erase the range.
    StoredEventTooLarge {
        /// Bytes the stored event needs.
        len: usize,
    },
    /// No room in the flash range.
    Full,
    /// The flash holds data `sequential-storage` cannot repair.
    Corrupted,
    /// Any other failure `sequential-storage` reports.
    Other,
}

impl<E: fmt::Debug> fmt::Display for SpoolError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpoolError::Flash(e) => write!(f, "flash driver error: {e:?}"),
            SpoolError::Range(e) => write!(f, "unusable spool flash range: {e:?}"),
            SpoolError::EventLimit { max } => write!(
                f,
                "the spool's event limit does not fit a flash page (at most {max} bytes, a multiple of the flash word)"
            ),
            SpoolError::StoredEventTooLarge { len } => write!(
                f,
                "an event in flash is {len} bytes, more than the spool's event limit"
            ),
            SpoolError::Full => f.write_str("the spool's flash range is full"),
            SpoolError::Corrupted => f.write_str("the spool's flash is corrupted beyond repair"),
            SpoolError::Other => f.write_str("the spool's flash queue failed"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for SpoolError<E> {}

impl<E> From<sequential_storage::Error<E>> for SpoolError<E> {
    fn from(e: sequential_storage::Error<E>) -> Self {
        match e {
            sequential_storage::Error::Storage { value, .. } => SpoolError::Flash(value),
            sequential_storage::Error::FullStorage => SpoolError::Full,
            sequential_storage::Error::Corrupted { .. } => SpoolError::Corrupted,
            sequential_storage::Error::BufferTooSmall(len) => {
                SpoolError::StoredEventTooLarge { len }
            }
            _ => SpoolError::Other,
        }
    }
}

/// A read buffer aligned for flash drivers that want aligned buffers.
#[repr(C, align(32))]
struct Aligned<const R: usize>([u8; R]);

/// A FIFO of encoded events in a range of NOR flash (see the
/// [module](self) docs). `R` is the largest event it takes, in bytes of
/// JSON: a multiple of the flash word that fits in one flash page with the
/// item header; the spool holds one buffer of that size.
///
/// Opening counts the events already in flash (left by the last run) so
/// they are written first.
///
/// ```
/// use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolMode, WhenFull};
/// let flash = BlockingFlash(RamFlash::<8192, 2048>::new());
/// let spool = FlashSpool::<_, _, 1024>::open(flash, 0..8192, Cache::new_uncached())?
///     .mode(SpoolMode::Always)
///     .when_full(WhenFull::DropNewest);
/// assert!(spool.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FlashSpool<F: MultiwriteNorFlash, C: CacheImpl<()>, const R: usize> {
    queue: QueueStorage<F, C>,
    buf: Aligned<R>,
    /// Bytes of the event staged in `buf`.
    staged: usize,
    len: usize,
    mode: SpoolMode,
    when_full: WhenFull,
}

impl<F: MultiwriteNorFlash, C: CacheImpl<()>, const R: usize> fmt::Debug for FlashSpool<F, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlashSpool")
            .field("events", &self.len)
            .field("max_event", &R)
            .field("mode", &self.mode)
            .field("when_full", &self.when_full)
            .finish_non_exhaustive()
    }
}

impl<F: MultiwriteNorFlash, C: CacheImpl<()>, const R: usize> FlashSpool<F, C, R> {
    /// The largest `R` a flash of this type takes.
    const MAX_EVENT: usize = {
        let word = if F::READ_SIZE > F::WRITE_SIZE {
            F::READ_SIZE
        } else {
            F::WRITE_SIZE
        };
        let word = if word == 0 { 1 } else { word };
        let overhead = QueueStorage::<F, C>::item_overhead_size() as usize;
        let room = F::ERASE_SIZE.saturating_sub(2 * word + overhead);
        room - room % word
    };

    /// Opens the spool in `range` of `flash` (page-aligned, at least one
    /// page; erased flash is an empty spool) and counts the events a previous
    /// run left there. `cache` is one of [`cache`]'s; a new one.
    ///
    /// ```
    /// use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolError};
    /// let flash = BlockingFlash(RamFlash::<4096, 1024>::new());
    /// // A 1 KiB page cannot hold a 2 KiB event.
    /// let err = FlashSpool::<_, _, 2048>::open(flash, 0..4096, Cache::new_uncached()).unwrap_err();
    /// assert!(matches!(err, SpoolError::EventLimit { .. }));
    /// ```
    pub fn open(flash: F, range: Range<u32>, cache: C) -> Result<Self, SpoolError<F::Error>> {
        let config = QueueConfig::try_new(range).map_err(SpoolError::Range)?;
        let word = F::READ_SIZE.max(F::WRITE_SIZE).max(1);
        if R == 0 || R > Self::MAX_EVENT || !R.is_multiple_of(word) {
            return Err(SpoolError::EventLimit {
                max: Self::MAX_EVENT,
            });
        }
        let mut spool = FlashSpool {
            queue: QueueStorage::new(flash, config, cache),
            buf: Aligned([0; R]),
            staged: 0,
            len: 0,
            mode: SpoolMode::default(),
            when_full: WhenFull::default(),
        };
        spool.len = spool.count()?;
        Ok(spool)
    }

    /// When events go to flash (default [`SpoolMode::WhenDown`]).
    ///
    /// ```
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolMode};
    /// # let flash = BlockingFlash(RamFlash::<4096, 1024>::new());
    /// let spool = FlashSpool::<_, _, 512>::open(flash, 0..4096, Cache::new_uncached())?.mode(SpoolMode::Always);
    /// assert_eq!(spool.get_mode(), SpoolMode::Always);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mode(mut self, mode: SpoolMode) -> Self {
        self.mode = mode;
        self
    }

    /// What a full spool drops (default [`WhenFull::DropOldest`]).
    ///
    /// ```
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, WhenFull};
    /// # let flash = BlockingFlash(RamFlash::<4096, 1024>::new());
    /// let spool = FlashSpool::<_, _, 512>::open(flash, 0..4096, Cache::new_uncached())?.when_full(WhenFull::DropNewest);
    /// assert_eq!(spool.get_when_full(), WhenFull::DropNewest);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn when_full(mut self, when_full: WhenFull) -> Self {
        self.when_full = when_full;
        self
    }

    /// The mode set with [`mode`](Self::mode).
    ///
    /// ```
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolMode};
    /// # let flash = BlockingFlash(RamFlash::<4096, 1024>::new());
    /// let spool = FlashSpool::<_, _, 512>::open(flash, 0..4096, Cache::new_uncached())?;
    /// assert_eq!(spool.get_mode(), SpoolMode::WhenDown);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_mode(&self) -> SpoolMode {
        self.mode
    }

    /// The policy set with [`when_full`](Self::when_full).
    ///
    /// ```
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, WhenFull};
    /// # let flash = BlockingFlash(RamFlash::<4096, 1024>::new());
    /// let spool = FlashSpool::<_, _, 512>::open(flash, 0..4096, Cache::new_uncached())?;
    /// assert_eq!(spool.get_when_full(), WhenFull::DropOldest);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_when_full(&self) -> WhenFull {
        self.when_full
    }

    /// Events in flash.
    ///
    /// ```
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash};
    /// # let flash = BlockingFlash(RamFlash::<4096, 1024>::new());
    /// let spool = FlashSpool::<_, _, 512>::open(flash, 0..4096, Cache::new_uncached())?;
    /// assert_eq!(spool.len(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no event is in flash.
    ///
    /// ```
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash};
    /// # let flash = BlockingFlash(RamFlash::<4096, 1024>::new());
    /// let spool = FlashSpool::<_, _, 512>::open(flash, 0..4096, Cache::new_uncached())?;
    /// assert!(spool.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Gives the flash and cache back (to reopen, or for another use).
    ///
    /// ```
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash};
    /// # let flash = BlockingFlash(RamFlash::<4096, 1024>::new());
    /// let spool = FlashSpool::<_, _, 512>::open(flash, 0..4096, Cache::new_uncached())?;
    /// let (flash, _cache) = spool.into_flash();
    /// assert_eq!(flash.0.as_bytes().len(), 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_flash(self) -> (F, C) {
        self.queue.destroy()
    }

    /// Counts the events in flash (reading each: the queue has no count).
    fn count(&mut self) -> Result<usize, SpoolError<F::Error>> {
        let mut it = block_on(self.queue.iter())?;
        let mut n = 0;
        while block_on(it.next(&mut self.buf.0))?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    /// Copies an event into the aligned buffer (some drivers refuse
    /// unaligned sources), ready for [`push_staged`](Self::push_staged).
    fn stage(&mut self, event: &[u8]) -> Result<(), ()> {
        let buf = self.buf.0.get_mut(..event.len()).ok_or(())?;
        buf.copy_from_slice(event);
        self.staged = event.len();
        Ok(())
    }

    /// The event staged last.
    fn staged(&self) -> &[u8] {
        self.buf.0.get(..self.staged).unwrap_or_default()
    }

    /// Appends the staged event.
    fn push_staged(&mut self) -> Result<(), SpoolError<F::Error>> {
        let event = self.buf.0.get(..self.staged).unwrap_or_default();
        block_on(self.queue.push(event, false))?;
        self.len += 1;
        Ok(())
    }

    /// Removes up to `n` of the oldest events; returns how many went.
    fn pop(&mut self, n: usize) -> (usize, Result<(), SpoolError<F::Error>>) {
        let mut it = match block_on(self.queue.iter()) {
            Ok(it) => it,
            Err(e) => return (0, Err(e.into())),
        };
        let mut popped = 0;
        while popped < n {
            let entry = match block_on(it.next(&mut self.buf.0)) {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(e) => {
                    self.len -= popped.min(self.len);
                    return (popped, Err(e.into()));
                }
            };
            if let Err(e) = block_on(entry.pop()) {
                self.len -= popped.min(self.len);
                return (popped, Err(e.into()));
            }
            popped += 1;
        }
        self.len -= popped.min(self.len);
        (popped, Ok(()))
    }

    /// Copies the oldest events into `batch`, as many as fit; returns how many.
    fn load<const N: usize, const B: usize>(
        &mut self,
        batch: &mut Batch<N, B>,
    ) -> (usize, Result<(), SpoolError<F::Error>>) {
        let mut it = match block_on(self.queue.iter()) {
            Ok(it) => it,
            Err(e) => return (0, Err(e.into())),
        };
        let mut loaded = 0;
        while loaded < self.len {
            match block_on(it.next(&mut self.buf.0)) {
                Ok(Some(entry)) => {
                    if batch.push_encoded(&entry).is_err() {
                        break;
                    }
                    loaded += 1;
                }
                Ok(None) => break,
                Err(e) => return (loaded, Err(e.into())),
            }
        }
        (loaded, Ok(()))
    }
}

// --- the emitter -------------------------------------------------------------------

/// What a [`SpoolEmitter`]'s flash has done so far.
///
/// ```
/// use ossa_events_core::spool::SpoolCounters;
/// let c = SpoolCounters::default();
/// assert_eq!((c.spooled, c.replayed, c.evicted, c.flash_errors), (0, 0, 0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolCounters {
    /// Events written to flash.
    pub spooled: u64,
    /// Events written out from flash (delivered, then removed from flash).
    pub replayed: u64,
    /// Events dropped from flash to make room ([`WhenFull::DropOldest`]);
    /// also counted in [`Counters::dropped`].
    pub evicted: u64,
    /// Flash operations that failed (the emitter went on from RAM).
    pub flash_errors: u64,
}

/// The [`Emitter`](crate::emitter::Emitter) with a [`FlashSpool`]: the
/// same batching, validation, counters and framing, and events that cannot
/// be written now wait in flash (see the [module](self) docs). `N` and `B`
/// size the RAM batch, `R` the largest event (that of the spool).
///
/// A superloop calls [`poll`](Self::poll) as it does for the `Emitter`: it
/// flushes on the interval, and while flash holds events it writes them out,
/// one batch per call, retrying a failed writer once per flush interval.
///
/// ```
/// use ossa_events_core::emitter::Config;
/// use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
/// use ossa_events_core::{io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
///
/// let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
/// let mut down = [0u8; 0]; // a writer that fails: the link is down
/// let mut n = 0u8;
/// let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
/// let config = Config::new("/devices/7").batch_size(2);
/// let mut em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> =
///     SpoolEmitter::new(config, SliceWriter::new(&mut down), spool, ids, FixedClock(Timestamp::UNIX_EPOCH));
/// for _ in 0..3 {
///     em.emit(Event::builder().ty("reading"))?;
/// }
/// assert_eq!(em.spool().len(), 3); // the failed write sent the batch to flash
/// // The link is back: a new writer, and everything comes out in order.
/// let mut out = [0u8; 2048];
/// em.replace_writer(SliceWriter::new(&mut out));
/// assert_eq!(em.flush()?, 3);
/// assert_eq!(em.spool_counters().replayed, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SpoolEmitter<
    'a,
    W: Write,
    F: MultiwriteNorFlash,
    C: CacheImpl<()>,
    I: IdSource,
    K: Clock,
    const N: usize,
    const B: usize,
    const R: usize,
> {
    inner: Inner<'a, I, K, N, B>,
    writer: W,
    spool: FlashSpool<F, C, R>,
    /// The first `mirrored` events of the batch are copies of the first
    /// `mirrored` events in flash (loaded to be written, or spilled).
    mirrored: usize,
    /// When a write last failed: the next try waits a flush interval.
    failed_at_ms: Option<i64>,
    spool_counters: SpoolCounters,
}

impl<
    W: Write,
    F: MultiwriteNorFlash,
    C: CacheImpl<()>,
    I: IdSource,
    K: Clock,
    const N: usize,
    const B: usize,
    const R: usize,
> fmt::Debug for SpoolEmitter<'_, W, F, C, I, K, N, B, R>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpoolEmitter")
            .field("config", &self.inner.config)
            .field("batch", &self.inner.batch)
            .field("spool", &self.spool)
            .field("mirrored", &self.mirrored)
            .field("counters", &self.inner.counters)
            .field("spool_counters", &self.spool_counters)
            .finish_non_exhaustive()
    }
}

impl<
    'a,
    W: Write,
    F: MultiwriteNorFlash,
    C: CacheImpl<()>,
    I: IdSource,
    K: Clock,
    const N: usize,
    const B: usize,
    const R: usize,
> SpoolEmitter<'a, W, F, C, I, K, N, B, R>
{
    /// An emitter writing to `writer`, keeping events in `spool` when it
    /// cannot. Events a previous run left in the spool are written first.
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// let mut out = [0u8; 1024];
    /// let em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    ///     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    ///     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// assert_eq!(em.pending(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        config: Config<'a>,
        writer: W,
        spool: FlashSpool<F, C, R>,
        ids: I,
        clock: K,
    ) -> Self {
        SpoolEmitter {
            inner: Inner::new(config, ids, clock),
            writer,
            spool,
            mirrored: 0,
            failed_at_ms: None,
            spool_counters: SpoolCounters::default(),
        }
    }

    /// Sets the OSSA extensions added to every event that does not set them
    /// itself (as [`Emitter::set_context`](crate::emitter::Emitter::set_context)).
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// use ossa_events_core::ossa;
    /// em.set_context(ossa::Context { agent_id: Some("thermo"), ..Default::default() });
    /// assert_eq!(em.context().agent_id, Some("thermo"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_context(&mut self, context: ossa::Context<'a>) {
        self.inner.set_context(context);
    }

    /// The OSSA context set with [`set_context`](Self::set_context).
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// # let mut out = [0u8; 1024];
    /// # let em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// assert_eq!(em.context().agent_id, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn context(&self) -> &ossa::Context<'a> {
        &self.inner.context
    }

    /// What the emitter has done (as the `Emitter`'s; `dropped` also counts
    /// events a full spool dropped).
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// # let mut out = [0u8; 1024];
    /// # let em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// assert_eq!(em.counters().emitted, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn counters(&self) -> Counters {
        self.inner.counters
    }

    /// What the flash has done.
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// # let mut out = [0u8; 1024];
    /// # let em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// assert_eq!(em.spool_counters().spooled, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spool_counters(&self) -> SpoolCounters {
        self.spool_counters
    }

    /// The spool (its length, its settings).
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// # let mut out = [0u8; 1024];
    /// # let em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// assert!(em.spool().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spool(&self) -> &FlashSpool<F, C, R> {
        &self.spool
    }

    /// Events not yet delivered: in RAM only, or in flash.
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// em.emit(Event::builder().ty("t"))?;
    /// assert_eq!(em.pending(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pending(&self) -> usize {
        self.ram_only() + self.spool.len()
    }

    /// The writer.
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// # let mut out = [0u8; 1024];
    /// # let em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// assert!(em.writer().written().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writer(&self) -> &W {
        &self.writer
    }

    /// The writer, mutably (to reconfigure it; to reconnect it, prefer
    /// [`replace_writer`](Self::replace_writer)).
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// assert_eq!(em.writer_mut().len(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writer_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// Puts a new writer in (a reconnected link) and returns the old one. A
    /// write in progress starts over on the new one (the old one may have
    /// lost what it took), and the next flush tries it at once.
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// # let mut a = [0u8; 1024];
    /// # let mut b = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut a), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// let old = em.replace_writer(SliceWriter::new(&mut b));
    /// assert_eq!(old.len(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replace_writer(&mut self, writer: W) -> W {
        self.inner.batch.rewind();
        self.failed_at_ms = None;
        core::mem::replace(&mut self.writer, writer)
    }

    /// Takes the emitter apart: the writer and the spool (events not yet
    /// delivered stay in flash for the next run; those only in RAM are lost
    /// unless [`flush`](Self::flush) succeeded first).
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// # let mut out = [0u8; 1024];
    /// # let em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// let (_writer, spool) = em.into_parts();
    /// assert!(spool.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_parts(self) -> (W, FlashSpool<F, C, R>) {
        (self.writer, self.spool)
    }

    /// Milliseconds until [`poll`](Self::poll) has work at `now`: 0 while
    /// flash holds events and the writer is not waiting out a failure;
    /// `None` when nothing is pending.
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7").flush_interval_ms(500), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// assert_eq!(em.next_flush_in_ms(Timestamp::UNIX_EPOCH), None);
    /// em.emit(Event::builder().ty("t"))?;
    /// assert_eq!(em.next_flush_in_ms(Timestamp::UNIX_EPOCH), Some(500));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_flush_in_ms(&self, now: Timestamp) -> Option<u64> {
        let retry = (!self.spool.is_empty()).then(|| self.retry_in_ms(now));
        match (self.inner.next_flush_in_ms(now), retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Emits an OSSA event from its typed payload (see [`emit`](Self::emit)).
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// use ossa_events_core::ossa;
    /// em.emit_ossa(&ossa::ToolCalled { tool: "read_sensor", ..Default::default() })?;
    /// assert_eq!(em.counters().emitted, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn emit_ossa<P: ossa::Payload>(&mut self, payload: &P) -> Result<(), EmitError<W::Error>> {
        self.emit_ossa_parts(P::TYPE, payload.subject(), payload)
    }

    /// [`emit_ossa`](Self::emit_ossa) past the payload's type: compiled once
    /// per emitter, not once per payload type (flash on firmware).
    #[inline(never)]
    fn emit_ossa_parts(
        &mut self,
        ty: &'static str,
        subject: Option<&str>,
        payload: &dyn JsonPayload,
    ) -> Result<(), EmitError<W::Error>> {
        self.emit(EventBuilder::new().ossa_parts(ty, subject, payload))
    }

    /// Completes, validates and encodes `event` as the `Emitter` does, then:
    /// in [`SpoolMode::Always`], or while flash holds events, appends it to
    /// flash before returning `Ok`; otherwise keeps it in the RAM batch. A
    /// batch with no room is flushed, or, when the writer fails, sent to
    /// flash. Events longer than `R` are refused ([`EmitError::TooLarge`]).
    /// A full spool drops per [`WhenFull`] (counted in `dropped`).
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter, SpoolMode};
    /// # use ossa_events_core::{io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?
    ///     .mode(SpoolMode::Always);
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// em.emit(Event::builder().ty("t"))?;
    /// assert_eq!(em.spool().len(), 1); // in flash before `emit` returned
    /// em.flush()?;
    /// assert!(em.spool().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn emit(&mut self, event: EventBuilder<'_>) -> Result<(), EmitError<W::Error>> {
        let id = self.inner.ids.next_id();
        let now = self.inner.clock.now();
        let mut tp = crate::trace::TraceParentText::new();
        let ev = self.inner.complete(event, id.as_str(), now, &mut tp)?;
        if let Staged::NoRoom = self.inner.stage(&ev, now)? {
            self.make_room(now);
            if let Staged::NoRoom = self.inner.stage(&ev, now)? {
                self.inner.counters.dropped += 1;
                return Err(EmitError::SpoolFull);
            }
        }
        let Some(last) = self.inner.batch.len().checked_sub(1) else {
            return Ok(());
        };
        if self.inner.batch.event(last).map_or(0, <[u8]>::len) > R {
            self.inner.unaccept_last();
            self.inner.counters.rejected += 1;
            return Err(EmitError::TooLarge);
        }
        let to_flash = self.spool.mode == SpoolMode::Always
            || (!self.spool.is_empty() && last == self.mirrored);
        if to_flash {
            self.spool_last(now)?;
        }
        let size = self.inner.config.batch_size.min(N);
        let due = self.ram_only() >= size || self.spool.len() >= size;
        if due && self.writer_may_work(now) {
            // Counted (failed_writes); the events wait in RAM or flash.
            let _ = self.round(now);
        }
        Ok(())
    }

    /// Flushes when the oldest event in RAM has waited a flush interval, and,
    /// while flash holds events, writes out one batch of them (a failed
    /// writer is tried again once per flush interval). Returns the events
    /// delivered.
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// em.emit(Event::builder().ty("t"))?; // default interval 1000 ms
    /// assert_eq!(em.poll(Timestamp::from_unix(1, 0).ok_or("range")?)?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll(&mut self, now: Timestamp) -> Result<usize, DrainError<W::Error>> {
        let spooled = !self.spool.is_empty() && self.retry_in_ms(now) == 0;
        if self.inner.due(now) || spooled {
            self.round(now)
        } else {
            Ok(0)
        }
    }

    /// Writes everything pending now, flash first, until the writer fails
    /// (then the events wait, in flash if the mode says so). Returns the
    /// events delivered. With much in flash this takes as long as writing it
    /// all; a superloop that must stay responsive calls [`poll`](Self::poll).
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{cache::Cache, BlockingFlash, FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, _, 512>::open(BlockingFlash(RamFlash::<4096, 1024>::new()), 0..4096, Cache::new_uncached())?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// em.emit(Event::builder().ty("t"))?;
    /// assert_eq!(em.flush()?, 1);
    /// assert_eq!(em.flush()?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&mut self) -> Result<usize, DrainError<W::Error>> {
        let now = self.inner.clock.now();
        let mut total = 0;
        loop {
            let errors = self.spool_counters.flash_errors;
            let n = self.round(now)?;
            total += n;
            // Nothing left, or a flash that fails (events it could not give
            // up would be written again and again): stop here.
            if n == 0 || self.spool_counters.flash_errors != errors {
                return Ok(total);
            }
        }
    }

    // --- internals ---------------------------------------------------------------

    /// Events in the batch that are not copies of events in flash.
    fn ram_only(&self) -> usize {
        self.inner.batch.len().saturating_sub(self.mirrored)
    }

    fn retry_in_ms(&self, now: Timestamp) -> u64 {
        let Some(t) = self.failed_at_ms else {
            return 0;
        };
        let waited = u64::try_from(millis(now).saturating_sub(t)).unwrap_or(0);
        self.inner.config.flush_interval_ms.saturating_sub(waited)
    }

    fn writer_may_work(&self, now: Timestamp) -> bool {
        self.retry_in_ms(now) == 0
    }

    fn flash_failed(&mut self) {
        self.spool_counters.flash_errors += 1;
    }

    /// Appends the event just staged (the batch's last) to flash. It stays
    /// in the batch as a copy when every event in flash is one; otherwise it
    /// leaves RAM. A full spool drops per the policy; a failing flash leaves
    /// it in RAM.
    fn spool_last(&mut self, now: Timestamp) -> Result<(), EmitError<W::Error>> {
        let Some(mut last) = self.inner.batch.len().checked_sub(1) else {
            return Ok(());
        };
        loop {
            // (Staged again on every pass: an eviction reads through the buffer.)
            let staged = self.inner.batch.event(last).map(|ev| self.spool.stage(ev));
            if staged != Some(Ok(())) {
                return Ok(()); // longer than R: refused before this point
            }
            let keep = self.spool.len() == self.mirrored && last == self.mirrored;
            match self.spool.push_staged() {
                Ok(()) => {
                    self.spool_counters.spooled += 1;
                    if keep {
                        self.mirrored += 1;
                    } else {
                        self.inner.batch.pop_last();
                        if self.inner.batch.is_empty() {
                            self.inner.oldest_ms = None;
                        }
                    }
                    return Ok(());
                }
                Err(SpoolError::Full)
                    if self.spool.when_full == WhenFull::DropOldest && !self.spool.is_empty() =>
                {
                    if self.mirrored > 0 {
                        if last > self.mirrored {
                            // Events only in RAM come before it: it waits
                            // with them, in RAM.
                            return Ok(());
                        }
                        // The batch holds copies and this event: the copies
                        // can go (the oldest is about to leave flash); the
                        // event moves to the front, from the staging buffer.
                        self.inner.batch.clear();
                        self.mirrored = 0;
                        last = 0;
                        if self.inner.batch.push_encoded(self.spool.staged()).is_err() {
                            // Cannot happen: it fitted before, and the batch is empty.
                            self.inner.counters.emitted =
                                self.inner.counters.emitted.saturating_sub(1);
                            self.inner.counters.dropped += 1;
                            return Err(EmitError::SpoolFull);
                        }
                        self.inner.oldest_ms = Some(millis(now));
                    }
                    if !self.evict_oldest() {
                        return Ok(()); // the flash failed: it waits in RAM
                    }
                }
                Err(SpoolError::Full) => {
                    self.inner.unaccept_last();
                    self.inner.counters.dropped += 1;
                    return Err(EmitError::SpoolFull);
                }
                Err(_) => {
                    self.flash_failed();
                    return Ok(());
                }
            }
        }
    }

    /// Drops the oldest event in flash (it has no copy in the batch) to make
    /// room. `false` if the flash failed.
    fn evict_oldest(&mut self) -> bool {
        match self.spool.pop(1) {
            (1, _) => {
                self.inner.counters.dropped += 1;
                self.spool_counters.evicted += 1;
                true
            }
            _ => {
                self.flash_failed();
                false
            }
        }
    }

    /// After a failed write: the events only in RAM go to flash (in order,
    /// after what flash holds), and become copies. A full flash leaves the
    /// rest in RAM (no eviction here: they are older than what it holds).
    fn spill(&mut self) {
        while self.ram_only() > 0 && self.spool.len() == self.mirrored {
            let Some(ev) = self.inner.batch.event(self.mirrored) else {
                return;
            };
            if self.spool.stage(ev).is_err() {
                return;
            }
            match self.spool.push_staged() {
                Ok(()) => {
                    self.spool_counters.spooled += 1;
                    self.mirrored += 1;
                }
                Err(SpoolError::Full) => return,
                Err(_) => {
                    self.flash_failed();
                    return;
                }
            }
        }
    }

    /// The batch has no room for a new event: write it out, or else put it
    /// in flash and keep RAM for the new one.
    fn make_room(&mut self, now: Timestamp) {
        if self.writer_may_work(now) && self.round(now).is_ok() {
            return;
        }
        self.spill();
        if self.ram_only() == 0 {
            // Everything in RAM is also in flash: the copies can go (a write
            // cut short starts over from flash, after a `\n`).
            self.inner.batch.clear();
            self.inner.oldest_ms = None;
            self.mirrored = 0;
        }
    }

    /// One write: loads the oldest events from flash if the batch is empty,
    /// writes the batch, and on success removes the copies from flash. On
    /// failure the events only in RAM go to flash.
    fn round(&mut self, now: Timestamp) -> Result<usize, DrainError<W::Error>> {
        if self.inner.batch.is_empty() && !self.spool.is_empty() {
            let (loaded, r) = self.spool.load(&mut self.inner.batch);
            self.mirrored = loaded;
            if r.is_err() {
                self.flash_failed();
            }
        }
        let r = self.inner.batch.write_to(&mut self.writer);
        let r = self.inner.drained(r);
        match r {
            Ok(n) => {
                self.failed_at_ms = None;
                let copies = core::mem::take(&mut self.mirrored);
                if copies > 0 {
                    let (popped, r) = self.spool.pop(copies);
                    self.spool_counters.replayed += popped as u64;
                    if r.is_err() {
                        // Delivered but still in flash: written again later.
                        self.flash_failed();
                    }
                }
                Ok(n)
            }
            Err(e) => {
                self.failed_at_ms = Some(millis(now));
                self.spill();
                Err(e)
            }
        }
    }
}
