//! A flash spool for the `no_std` emitter (feature `flash-spool`): events that
//! cannot be written now wait in NOR flash, survive a power cut, and are
//! written in order when the writer works again.
//!
//! [`SpoolEmitter`] is the [`Emitter`](crate::emitter::Emitter) with a
//! [`FlashSpool`] behind its batch. The spool is a FIFO of encoded events in
//! a range of NOR flash pages, written through the [`embedded-storage`]
//! `NorFlash` trait, so it runs on any MCU flash or external NOR chip with
//! a driver for it. Records carry a length, a CRC-32 and a removal mark;
//! pages are used in a ring (wear spreads evenly over the range, one erase
//! per page per turn). No allocator; the spool adds one buffer
//! of `R` bytes (the largest event it takes) and a few words of state.
//!
//! - [`SpoolMode::WhenDown`] (default): events are batched in RAM as usual;
//!   when a write fails, the batch goes to flash, and so does every event
//!   emitted while flash holds any. A power cut loses what was only in RAM
//!   (events emitted since the last failed write, while the writer worked).
//! - [`SpoolMode::Always`]: every event is in flash before `emit` returns
//!   `Ok`. A power cut loses nothing that was accepted, unless the flash
//!   itself failed (below).
//!
//! Draining: a flush loads the oldest events from flash into the batch,
//! writes them, and removes them from flash only once the writer's `flush`
//! succeeded. A power cut between that flush and the removal writes those
//! events again after the restart: delivery is at least once, in order, and
//! each event keeps its `id`, so a reader can drop the repeats.
//!
//! Power cuts: whatever flash operation a cut interrupts, the next
//! [`FlashSpool::open`] finds every record written whole; one a cut left
//! half written (its `emit` had not returned) or whose bytes changed since
//! fails its length or CRC check and is set aside, counted in
//! [`SpoolCounters::damaged`], never written out.
//!
//! When the flash is full, [`WhenFull`] decides: drop the oldest event
//! ([`WhenFull::DropOldest`], default) or the new one. Every drop is counted
//! in [`Counters::dropped`](crate::emitter::Counters::dropped). A flash that
//! fails (a driver error) is counted in [`SpoolCounters::flash_errors`] and
//! the emitter goes on from RAM: it loses nothing it still holds, but events
//! in RAM may then be written before older ones in flash. A driver that
//! reports an error after it did program a record is covered too: the
//! record is marked removed, or, when that mark fails as well, read as
//! removed until a mark takes (its event goes out once, from RAM).
//!
//! Damage that appears at run time, after `open`, is set aside where the
//! oldest event is read, counted once in [`SpoolCounters::damaged`], and
//! draining goes on with the next event, in order:
//! - a record whose JSON changed fails its CRC (one event);
//! - a record the driver fails to read more than 8 times in a row, with
//!   no whole read of it between (a bad sector; each failure is a flash
//!   error, tried again at the next flush or poll, and at once by an
//!   eviction): that record, or, when its header is what cannot be read,
//!   the rest of its page;
//! - a length word that changed (it no longer matches its complement):
//!   the rest of its page, which can no longer be walked. No new record
//!   goes to that page.
//!
//! Where a page's rest is set aside, the events it held are the spool's
//! count minus the events waiting in the pages after it (read then); those
//! that had already gone out (delivered, waiting to be removed) are told
//! apart as the oldest of them. With damage in two places at once (a page
//! after also unwalkable) that split can be wrong: an event that went out
//! may go out again while another is lost, the counts still adding up.
//! A bad sector still there at the next `open` makes it fail with
//! [`SpoolError::Flash`].
//!
//! Why not `sequential-storage`'s queue: it is async (a blocking driver
//! went through an adapter and a poll loop) and it cost the firmware
//! example 5 068 bytes of `.text` plus 3 262 of glue; the ring here, with
//! the emitter's glue, is measured in the README's code-size table.
//!
//! ```
//! use ossa_events_core::emitter::Config;
//! use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
//! use ossa_events_core::{io::SliceWriter, ossa, FixedClock, RandomIds, Timestamp};
//!
//! // Any `embedded_storage` NOR flash; a RAM one here (4 pages of 1 KiB).
//! let spool: FlashSpool<_, 512> = FlashSpool::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
//! let mut out = [0u8; 4096];
//! let ids = RandomIds(|b: &mut [u8; 16]| b.fill(7));
//! let clock = FixedClock(Timestamp::UNIX_EPOCH);
//! let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> =
//!     SpoolEmitter::new(Config::new("/devices/7"), SliceWriter::new(&mut out), spool, ids, clock);
//! em.emit_ossa(&ossa::TurnStarted { turn: 1, input: None })?;
//! em.flush()?;
//! assert_eq!(em.counters().delivered, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`embedded-storage`]: https://docs.rs/embedded-storage

use core::fmt;
use core::ops::Range;

use embedded_io::Write;
use embedded_storage::nor_flash::{self as blocking, NorFlash, NorFlashError, NorFlashErrorKind};

use crate::batch::{Batch, DrainError};
use crate::emitter::{Config, Counters, EmitError, Inner, Staged, millis};
use crate::event::EventBuilder;
use crate::id::IdSource;
use crate::json::ser::JsonPayload;
use crate::ossa;
use crate::time::{Clock, Timestamp};

// --- a flash in RAM ---------------------------------------------------------------

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
        crate::io::copy_into(bytes, self.bytes.get(r).ok_or(RamFlashError::OutOfBounds)?);
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
    /// accepted. Costs a flash write per event. When the flash write fails
    /// (a driver error, counted in [`SpoolCounters::flash_errors`]), the
    /// event is kept in RAM and `emit` still returns `Ok`: it is sent, but
    /// a power cut before then loses it, and it may go out before older
    /// events in flash. Watch `flash_errors` where that matters.
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
/// use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolError};
/// let flash = RamFlash::<4096, 1024>::new();
/// // 100..4096 does not start on a page boundary.
/// let err = FlashSpool::<_, 512>::open(flash, 100..4096).unwrap_err();
/// assert!(matches!(err, SpoolError::Range));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpoolError<E> {
    /// The flash driver failed.
    Flash(E),
    /// The flash range is not usable: not page-aligned, under two pages,
    /// past the flash's capacity, or a flash whose word is over 32 bytes.
    Range,
    /// `R`, the largest event, does not fit in one flash page with the
    /// headers, or is not a multiple of the flash word: `max` would.
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
}

impl<E: fmt::Debug> fmt::Display for SpoolError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpoolError::Flash(e) => write!(f, "flash driver error: {e:?}"),
            SpoolError::Range => f.write_str(
                "unusable spool flash range (page-aligned, at least two pages, inside the flash)",
            ),
            SpoolError::EventLimit { max } => write!(
                f,
                "the spool's event limit does not fit a flash page (at most {max} bytes, a multiple of the flash word)"
            ),
            SpoolError::StoredEventTooLarge { len } => write!(
                f,
                "an event in flash is {len} bytes, more than the spool's event limit"
            ),
            SpoolError::Full => f.write_str("the spool's flash range is full"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for SpoolError<E> {}

/// A buffer aligned for flash drivers that want aligned buffers.
#[repr(C, align(32))]
struct Aligned<const R: usize>([u8; R]);

/// The largest flash word (write or read size) the spool handles.
const MAX_WORD: usize = 32;

/// Reads of the record at the head that may fail in a row (with no whole
/// read of it between): the next failure sets it aside as unreadable (a
/// bad sector). A failure or two is the driver's, retried; this many is
/// the flash's.
const GIVE_UP: u8 = 8;

/// What a record slot in flash holds.
#[derive(Clone, Copy)]
enum Slot {
    /// No record here: the page's records end (`erased`: the rest of the
    /// page is free; otherwise a damaged length and the rest is unusable).
    End { erased: bool },
    /// A record of `len` bytes of JSON.
    Record { len: u32, state: State },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Written whole (its checksum is there), not yet removed.
    Written(u32),
    /// Removed (delivered, evicted, or found damaged).
    Removed,
    /// Half written: the power or the flash failed before its checksum.
    Torn,
}

/// The newest page in use.
#[derive(Debug, Clone, Copy)]
struct Tail {
    page: u32,
    seq: u32,
    /// Where the next record goes in it.
    off: u32,
}

/// The CRC-32 (IEEE) of `data`, bit by bit (no table: this runs on
/// microcontrollers, where 1 KiB of table costs more than the time), never
/// `0xFFFF_FFFF` (the erased word, which marks a torn record).
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = (c >> 1) ^ (0xEDB8_8320 & (c & 1).wrapping_neg());
        }
    }
    match !c {
        u32::MAX => 0,
        c => c,
    }
}

fn erased(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0xFF)
}

fn word(bytes: &[u8]) -> u32 {
    let mut w = [0xFF; 4];
    if let Some(b) = bytes.get(..4) {
        w.copy_from_slice(b);
    }
    u32::from_le_bytes(w)
}

/// A FIFO of encoded events in a range of NOR flash (see the
/// [module](self) docs). `R` is the largest event it takes, in bytes of
/// JSON: a multiple of the flash word that fits in one flash page with the
/// headers; the spool holds one buffer of that size.
///
/// Opening counts the events already in flash (left by the last run) so
/// they are written first, and sets aside what a power cut left half
/// written or what was damaged ([`damaged`](Self::damaged)).
///
/// ```
/// use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolMode, WhenFull};
/// let flash = RamFlash::<8192, 2048>::new();
/// let spool = FlashSpool::<_, 1024>::open(flash, 0..8192)?
///     .mode(SpoolMode::Always)
///     .when_full(WhenFull::DropNewest);
/// assert!(spool.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FlashSpool<F: NorFlash, const R: usize> {
    flash: F,
    /// First byte of the range.
    start: u32,
    pages: u32,
    buf: Aligned<R>,
    /// Bytes of the event staged in `buf`.
    staged: usize,
    /// Events in flash not yet removed.
    len: usize,
    /// Events at the head that went out and left `len`, whose records a
    /// flash error kept from being passed: passed before the head is read
    /// again, so that they are not written out twice in this run.
    owed: usize,
    /// The address of a record slot whose write and removal mark both
    /// failed: it may hold the whole event, which also waits in RAM. Read
    /// as removed until its mark is written (the next push tries first) or
    /// its page is erased. After a restart it is read again (at least
    /// once, as a record whose mark failed).
    doubt: Option<u32>,
    /// The oldest page in use and where its next record is.
    head: u32,
    head_off: u32,
    /// Reads that failed in a row at the head record (its address in
    /// `bad_at`): at [`GIVE_UP`] the record, or the rest of its page, is
    /// set aside.
    bad_at: u32,
    bad_reads: u8,
    /// Reads that failed where the spool went on without returning the
    /// error (a give-up, the settle after a new page): the emitter counts
    /// them in [`SpoolCounters::flash_errors`] with those it was given.
    quiet_errors: u32,
    /// The newest page in use; `None` while no page is.
    tail: Option<Tail>,
    damaged: u64,
    mode: SpoolMode,
    when_full: WhenFull,
}

impl<F: NorFlash, const R: usize> fmt::Debug for FlashSpool<F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlashSpool")
            .field("events", &self.len)
            .field("max_event", &R)
            .field("damaged", &self.damaged)
            .field("mode", &self.mode)
            .field("when_full", &self.when_full)
            .finish_non_exhaustive()
    }
}

impl<F: NorFlash, const R: usize> FlashSpool<F, R> {
    /// The flash word every field is written in: the write and read sizes,
    /// at least 4 bytes.
    const W: usize = {
        let w = if F::READ_SIZE > F::WRITE_SIZE {
            F::READ_SIZE
        } else {
            F::WRITE_SIZE
        };
        if w < 4 { 4 } else { w }
    };
    /// Page header: the page's sequence number, then its complement; the
    /// page ends with the same two words (the footer).
    const PAGE_HEADER: u32 = 2 * Self::W as u32;
    /// Where the footer starts: the end of the records' room.
    const END: u32 = Self::PAGE - Self::PAGE_HEADER;
    /// Record header: length (and its complement), checksum, removal mark,
    /// each in a word of its own (written one at a time, in that order).
    const RECORD_HEADER: u32 = 3 * Self::W as u32;
    const PAGE: u32 = F::ERASE_SIZE as u32;
    /// The largest `R` a flash of this type takes.
    const MAX_EVENT: usize = {
        let room = F::ERASE_SIZE.saturating_sub(7 * Self::W);
        // The length is a 16-bit field.
        let room = if room > 0xFFFF { 0xFFFF } else { room };
        room - room % Self::W
    };

    /// Opens the spool in `range` of `flash` (page-aligned, at least two
    /// pages; erased flash is an empty spool) and counts the events a
    /// previous run left there.
    ///
    /// ```
    /// use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolError};
    /// let flash = RamFlash::<4096, 1024>::new();
    /// // A 1 KiB page cannot hold a 2 KiB event.
    /// let err = FlashSpool::<_, 2048>::open(flash, 0..4096).unwrap_err();
    /// assert!(matches!(err, SpoolError::EventLimit { .. }));
    /// ```
    pub fn open(flash: F, range: Range<u32>) -> Result<Self, SpoolError<F::Error>> {
        let (w, page) = (Self::W, F::ERASE_SIZE);
        let bytes = range.end.saturating_sub(range.start) as usize;
        let usable = w <= MAX_WORD
            && page > 0
            && page.is_multiple_of(w)
            && w.is_multiple_of(F::WRITE_SIZE.max(1))
            && w.is_multiple_of(F::READ_SIZE.max(1))
            && (range.start as usize).is_multiple_of(page)
            && bytes.is_multiple_of(page)
            && bytes >= 2 * page
            && range.end as usize <= flash.capacity();
        if !usable {
            return Err(SpoolError::Range);
        }
        if R == 0 || R > Self::MAX_EVENT || !R.is_multiple_of(w) {
            return Err(SpoolError::EventLimit {
                max: Self::MAX_EVENT,
            });
        }
        let mut spool = FlashSpool {
            flash,
            start: range.start,
            pages: (bytes / page) as u32,
            buf: Aligned([0; R]),
            staged: 0,
            len: 0,
            owed: 0,
            doubt: None,
            head: 0,
            head_off: Self::PAGE_HEADER,
            bad_at: 0,
            bad_reads: 0,
            quiet_errors: 0,
            tail: None,
            damaged: 0,
            mode: SpoolMode::default(),
            when_full: WhenFull::default(),
        };
        spool.recover()?;
        Ok(spool)
    }

    /// When events go to flash (default [`SpoolMode::WhenDown`]).
    ///
    /// ```
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolMode};
    /// let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?.mode(SpoolMode::Always);
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
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, WhenFull};
    /// let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?.when_full(WhenFull::DropNewest);
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
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolMode};
    /// let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// assert_eq!(spool.get_mode(), SpoolMode::WhenDown);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_mode(&self) -> SpoolMode {
        self.mode
    }

    /// The policy set with [`when_full`](Self::when_full).
    ///
    /// ```
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, WhenFull};
    /// let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// assert_eq!(spool.get_when_full(), WhenFull::DropOldest);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_when_full(&self) -> WhenFull {
        self.when_full
    }

    /// Events in flash.
    ///
    /// ```
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash};
    /// let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// assert_eq!(spool.len(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no event is in flash.
    ///
    /// ```
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash};
    /// let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// assert!(spool.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Events set aside since [`open`](Self::open) because they could not
    /// be read back whole: one a power cut (or a failing write) left half
    /// written — an event whose `emit` had not returned — one whose bytes
    /// changed in flash since, or one the driver could not read (see the
    /// [module](self) docs; a page whose rest is set aside counts the
    /// events it held, except at `open`, where one such page counts one).
    /// Each is skipped, never written out.
    ///
    /// ```
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash};
    /// let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// assert_eq!(spool.damaged(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn damaged(&self) -> u64 {
        self.damaged
    }

    /// Gives the flash back (to reopen, or for another use).
    ///
    /// ```
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash};
    /// let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// let flash = spool.into_flash();
    /// assert_eq!(flash.as_bytes().len(), 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_flash(self) -> F {
        self.flash
    }

    // --- flash layout ----------------------------------------------------------------
    //
    // The range is a ring of pages. A page in use starts and ends with its
    // sequence number and that number's complement (either copy names the
    // page if the other is damaged); the pages in use are the run of
    // consecutive numbers that ends at the highest one (the newest page,
    // where records are appended). A page is erased just before it is used
    // again, once nothing in it waits (one erase per turn of the ring).
    // A record is three words and the JSON, padded to a word:
    //
    //   [len | !len << 16] [CRC-32 of the JSON] [removal mark] [JSON ..]
    //
    // written as: the length word, the JSON, the CRC word. A power cut in
    // the length word leaves a length that fails its complement (the rest
    // of the page is not used again); in the JSON or the CRC, a record
    // whose check fails (set aside at the next open). Removing writes zeros
    // over the removal mark: a cut there leaves at worst a record that is
    // written out again (at least once). Every word is written once between
    // erases (no multiwrite needed), new records after an open start a new
    // page; the one exception is a removal mark a cut left partly
    // programmed yet reading as erased, programmed again after the restart.

    fn addr(&self, page: u32, off: u32) -> u32 {
        self.start + page * Self::PAGE + off
    }

    fn next_page(&self, page: u32) -> u32 {
        if page + 1 >= self.pages { 0 } else { page + 1 }
    }

    /// The page `back` pages before `page` in the ring (`back <= pages`).
    /// `checked_rem`: `open` refuses fewer than two pages, which the compiler
    /// does not see, and a `%` would link a division-by-zero panic.
    fn page_before(&self, page: u32, back: u32) -> u32 {
        (page + self.pages - back)
            .checked_rem(self.pages)
            .unwrap_or(0)
    }

    fn padded(len: u32) -> u32 {
        let w = Self::W as u32;
        len.div_ceil(w) * w
    }

    fn erase_page(&mut self, page: u32) -> Result<(), F::Error> {
        let at = self.addr(page, 0);
        // A page erased is free (past the head): nothing reads its slots
        // until they are written again, and the doubt must not outlive it.
        if self
            .doubt
            .is_some_and(|d| (at..at + Self::PAGE).contains(&d))
        {
            self.doubt = None;
        }
        // Nor the failed reads counted there: a record written at that
        // address since is another, with tries of its own.
        if (at..at + Self::PAGE).contains(&self.bad_at) {
            self.bad_reads = 0;
        }
        self.flash.erase(at, at + Self::PAGE)
    }

    /// Writes `value` as the first bytes of a word at `at` (the rest `0xFF`).
    fn write_word(&mut self, at: u32, value: u32) -> Result<(), F::Error> {
        let mut w = Aligned([0xFF; MAX_WORD]);
        w.0[..4].copy_from_slice(&value.to_le_bytes());
        self.flash.write(at, &w.0[..Self::W])
    }

    /// The sequence number of a page in use, `None` for any other page.
    /// (From the header, or from the footer if the header is damaged.)
    fn page_seq(&mut self, page: u32) -> Result<Option<u32>, F::Error> {
        match self.header_seq(page)? {
            Some(seq) => Ok(Some(seq)),
            None => self.seq_at(page, Self::END),
        }
    }

    fn header_seq(&mut self, page: u32) -> Result<Option<u32>, F::Error> {
        self.seq_at(page, 0)
    }

    fn seq_at(&mut self, page: u32, off: u32) -> Result<Option<u32>, F::Error> {
        let mut h = Aligned([0; 2 * MAX_WORD]);
        let at = self.addr(page, off);
        self.flash.read(at, &mut h.0[..2 * Self::W])?;
        let seq = word(&h.0);
        Ok((word(h.0.get(Self::W..).unwrap_or_default()) == !seq).then_some(seq))
    }

    fn slot(&mut self, page: u32, off: u32) -> Result<Slot, F::Error> {
        if off + Self::RECORD_HEADER > Self::END {
            return Ok(Slot::End { erased: false });
        }
        let w = Self::W;
        let mut h = Aligned([0; 3 * MAX_WORD]);
        let at = self.addr(page, off);
        self.flash.read(at, &mut h.0[..3 * w])?;
        let (lw, crc, mark) = (&h.0[..w], &h.0[w..2 * w], &h.0[2 * w..3 * w]);
        if erased(lw) {
            return Ok(Slot::End { erased: true });
        }
        let len = word(lw) & 0xFFFF;
        if word(lw) >> 16 != !len & 0xFFFF
            || len == 0
            || off + Self::RECORD_HEADER + Self::padded(len) > Self::END
        {
            return Ok(Slot::End { erased: false });
        }
        let state = if !erased(mark) || self.doubt == Some(at) {
            State::Removed
        } else if erased(crc) {
            State::Torn
        } else {
            State::Written(word(crc))
        };
        Ok(Slot::Record { len, state })
    }

    /// Reads a written record's JSON into the buffer; whether its CRC holds.
    fn read_back(&mut self, page: u32, off: u32, len: u32, crc: u32) -> Result<bool, F::Error> {
        let at = self.addr(page, off + Self::RECORD_HEADER);
        let Some(buf) = self.buf.0.get_mut(..Self::padded(len) as usize) else {
            return Ok(false);
        };
        self.flash.read(at, buf)?;
        Ok(buf.get(..len as usize).map(crc32) == Some(crc))
    }

    /// Whether a page holds an event not removed whose check holds.
    fn holds_events(&mut self, page: u32) -> Result<bool, F::Error> {
        let mut off = Self::PAGE_HEADER;
        while let Slot::Record { len, state } = self.slot(page, off)? {
            if let State::Written(crc) = state
                && len as usize <= R
                && self.read_back(page, off, len, crc)?
            {
                return Ok(true);
            }
            off += Self::RECORD_HEADER + Self::padded(len);
        }
        Ok(false)
    }

    /// A free page that neither its header nor its footer names (or a page
    /// when none is named): if records that were not removed are in it, or
    /// records that cannot be read, its names were damaged while it was in
    /// use, and what it held is lost: counted once in `damaged` (how many
    /// events it held cannot be told). A page with nothing in its records'
    /// room, or only removed records, is free as it looks: erased, or named
    /// by a cut in the writing of its names before any record.
    fn count_nameless(&mut self, page: u32) -> Result<(), F::Error> {
        if self.page_seq(page)?.is_some() {
            return Ok(());
        }
        let mut off = Self::PAGE_HEADER;
        let lost = loop {
            match self.slot(page, off)? {
                Slot::End { erased } => break self.lost_from(page, off, erased)?,
                Slot::Record {
                    state: State::Removed,
                    len,
                } => off += Self::RECORD_HEADER + Self::padded(len),
                Slot::Record { .. } => break true,
            }
        };
        self.damaged += u64::from(lost);
        Ok(())
    }

    /// Where a page's records end at `off` (a slot that is no record):
    /// whether something there was lost. If the length word reads erased,
    /// the records end there when the rest of the page is erased too; if
    /// not, a length word was lost. A length a cut left half written, or
    /// damaged, leaves the rest of the page unreadable (unless no record
    /// fits there).
    fn lost_from(&mut self, page: u32, off: u32, erased: bool) -> Result<bool, F::Error> {
        if erased {
            Ok(!self.rest_erased(page, off)?)
        } else {
            Ok(Self::broken_at(off, erased))
        }
    }

    /// Whether a slot at `off` that is no record is a length word that
    /// does not check (not erased) where a record fits: the rest of its
    /// page cannot be walked.
    fn broken_at(off: u32, erased: bool) -> bool {
        !erased && off + Self::RECORD_HEADER <= Self::END
    }

    /// Whether the page is erased from `off` to its end.
    fn rest_erased(&mut self, page: u32, mut off: u32) -> Result<bool, F::Error> {
        while off < Self::END {
            let n = (R as u32).min(Self::END - off);
            let at = self.addr(page, off);
            let Some(buf) = self.buf.0.get_mut(..n as usize) else {
                return Ok(false);
            };
            self.flash.read(at, buf)?;
            if !erased(buf) {
                return Ok(false);
            }
            off += n;
        }
        Ok(true)
    }

    /// Marks a record removed.
    fn remove_at(&mut self, page: u32, off: u32) -> Result<(), F::Error> {
        let at = self.addr(page, off + 2 * Self::W as u32);
        self.write_word(at, 0)
    }

    /// Finds the pages in use and the records waiting in them.
    fn recover(&mut self) -> Result<(), SpoolError<F::Error>> {
        let mut newest: Option<(u32, u32)> = None;
        for page in 0..self.pages {
            // Newer in serial-number order (RFC 1982), so the numbers wrap.
            if let Some(seq) = self.page_seq(page).map_err(SpoolError::Flash)?
                && newest.is_none_or(|(_, s)| (seq.wrapping_sub(s) as i32) > 0)
            {
                newest = Some((page, seq));
            }
        }
        let fl = SpoolError::Flash;
        let Some((mut tail, mut seq)) = newest else {
            // No page is named: every page is free, but one whose header
            // and footer were both damaged may still hold records.
            for page in 0..self.pages {
                self.count_nameless(page).map_err(fl)?;
            }
            return Ok(());
        };
        // A page after the newest with a damaged header but events in it
        // is the newest. (A page a cut left half erased has none: a page
        // is reused only once every event in it was removed.)
        let ahead = self.next_page(tail);
        if self.page_seq(ahead).map_err(fl)?.is_none() && self.holds_events(ahead).map_err(fl)? {
            (tail, seq) = (ahead, seq.wrapping_add(1));
        }
        // The oldest page in use: the farthest back from the newest whose
        // number is the newest's minus its distance (a page between with a
        // damaged header is read all the same: its records check
        // themselves), or the one before it if that one has a damaged
        // header but events in it.
        let mut back = 0;
        for k in 1..self.pages {
            let page = self.page_before(tail, k);
            if self.page_seq(page).map_err(fl)? == Some(seq.wrapping_sub(k)) {
                back = k;
            }
        }
        if back + 1 < self.pages {
            let page = self.page_before(tail, back + 1);
            if self.page_seq(page).map_err(fl)?.is_none() && self.holds_events(page).map_err(fl)? {
                back += 1;
            }
        }
        let head = self.page_before(tail, back);
        // The free pages, after the newest up to the oldest: one with
        // neither name but records in it was in use (a page gets its
        // records only after both names are written), its names damaged.
        let mut free = self.next_page(tail);
        while free != head {
            self.count_nameless(free).map_err(fl)?;
            free = self.next_page(free);
        }
        let mut page = head;
        loop {
            let header = self.header_seq(page).map_err(fl)?;
            let named = header.is_some() || self.seq_at(page, Self::END).map_err(fl)?.is_some();
            let mut lost = u64::from(!named);
            let mut waiting = false;
            let mut off = Self::PAGE_HEADER;
            loop {
                let (len, state) = match self.slot(page, off).map_err(fl)? {
                    Slot::End { erased } => {
                        lost += u64::from(self.lost_from(page, off, erased).map_err(fl)?);
                        break;
                    }
                    Slot::Record { len, state } => (len, state),
                };
                let whole = match state {
                    State::Removed => true,
                    State::Torn => false,
                    State::Written(_) if len as usize > R => {
                        return Err(SpoolError::StoredEventTooLarge { len: len as usize });
                    }
                    State::Written(crc) => self.read_back(page, off, len, crc).map_err(fl)?,
                };
                if state != State::Removed {
                    waiting = true;
                }
                if !whole {
                    self.remove_at(page, off).map_err(fl)?;
                    lost += 1;
                } else if state != State::Removed {
                    self.len += 1;
                }
                off += Self::RECORD_HEADER + Self::padded(len);
            }
            // The oldest page, right after the newest, named by its footer
            // alone, with no event waiting: the page a cut stopped erasing
            // (every event in it was removed before). Its unreadable rest
            // is not counted.
            let quiet =
                page == head && back + 1 == self.pages && !waiting && header.is_none() && named;
            if !quiet {
                self.damaged += lost;
            }
            if page == tail {
                break;
            }
            page = self.next_page(page);
        }
        // New records go to a new page, never after the last one found: a
        // cut in the write of a length word can leave it looking erased
        // while it is partly programmed, and a word is never programmed
        // twice between erases.
        self.tail = Some(Tail {
            page: tail,
            seq,
            off: Self::PAGE,
        });
        (self.head, self.head_off) = (head, Self::PAGE_HEADER);
        self.settle(true).map(drop).map_err(SpoolError::Flash)
    }

    /// Moves the head past removed records and past pages with nothing
    /// waiting (but not past the newest page); the length of the record
    /// waiting at the head, if one is. Damage found at the head (a length
    /// word that does not check where a record fits, a header that failed
    /// [`GIVE_UP`] reads in a row, or the newest page's end while events
    /// are still counted) sets aside the rest of the page when `aside`
    /// (no copy of the oldest events is held elsewhere: they would be
    /// written out and counted damaged); else the head stops there.
    fn settle(&mut self, aside: bool) -> Result<Option<u32>, F::Error> {
        let Some(tail) = self.tail else {
            return Ok(None);
        };
        loop {
            let give_up = aside && self.giving_up();
            let slot = match self.slot(self.head, self.head_off) {
                Ok(slot) => slot,
                Err(_) if give_up => {
                    self.quiet_errors += 1;
                    Slot::End { erased: false }
                }
                Err(e) => return Err(self.failed_at_head(e)),
            };
            match slot {
                Slot::Record {
                    len,
                    state: State::Written(_),
                } => return Ok(Some(len)),
                Slot::Record { len, .. } => {
                    self.head_off += Self::RECORD_HEADER + Self::padded(len);
                }
                Slot::End { erased } => {
                    let last = self.head == tail.page;
                    let damaged = Self::broken_at(self.head_off, erased);
                    if damaged || (last && self.len + self.owed > 0) {
                        if !aside {
                            return Ok(None);
                        }
                        if let Err(e) = self.set_aside_rest(tail, give_up) {
                            return Err(self.failed_at_head(e));
                        }
                    }
                    if last {
                        return Ok(None);
                    }
                    // Erased when it is used again (one erase per turn).
                    self.head = self.next_page(self.head);
                    self.head_off = Self::PAGE_HEADER;
                }
            }
        }
    }

    /// Counts a failed read at the head record; gives `e` back.
    fn failed_at_head(&mut self, e: F::Error) -> F::Error {
        let at = self.addr(self.head, self.head_off);
        if self.bad_at != at {
            (self.bad_at, self.bad_reads) = (at, 0);
        }
        self.bad_reads = self.bad_reads.saturating_add(1);
        e
    }

    /// Whether the head record failed [`GIVE_UP`] reads in a row.
    fn giving_up(&self) -> bool {
        self.bad_at == self.addr(self.head, self.head_off) && self.bad_reads >= GIVE_UP
    }

    /// The records from the head to the end of its page cannot be walked
    /// (a length word changed in flash, or a header that cannot be read):
    /// sets them aside. How many events they held is what the count holds
    /// beyond the events waiting in the pages after (walked here; a page
    /// whose slot cannot be read counts as ending there once `lenient`).
    /// The oldest of them are the events that went out and wait to be
    /// passed (`owed`); the others are counted in `damaged`, once. No new
    /// record goes to this page after them.
    fn set_aside_rest(&mut self, tail: Tail, lenient: bool) -> Result<(), F::Error> {
        let mut later = 0;
        let mut page = self.head;
        while page != tail.page {
            page = self.next_page(page);
            let mut off = Self::PAGE_HEADER;
            loop {
                match self.slot(page, off) {
                    Ok(Slot::Record { len, state }) => {
                        later += usize::from(matches!(state, State::Written(_)));
                        off += Self::RECORD_HEADER + Self::padded(len);
                    }
                    Ok(Slot::End { .. }) => break,
                    Err(e) if !lenient => return Err(e),
                    Err(_) => {
                        self.quiet_errors += 1;
                        break;
                    }
                }
            }
        }
        let lost = (self.len + self.owed).saturating_sub(later);
        let sent = self.owed.min(lost);
        self.owed -= sent;
        let lost = (lost - sent).min(self.len);
        self.len -= lost;
        self.damaged += lost as u64;
        if self.head == tail.page {
            self.tail = Some(Tail {
                off: Self::PAGE,
                ..tail
            });
        }
        // Past the records' room: the walks go on at the next page.
        self.head_off = Self::END;
        Ok(())
    }

    /// Copies an event into the aligned buffer (some drivers refuse
    /// unaligned sources), ready for [`push_staged`](Self::push_staged).
    fn stage(&mut self, event: &[u8]) -> Result<(), ()> {
        let buf = self.buf.0.get_mut(..event.len()).ok_or(())?;
        crate::io::copy_into(buf, event);
        self.staged = event.len();
        Ok(())
    }

    /// The event staged last.
    fn staged(&self) -> &[u8] {
        self.buf.0.get(..self.staged).unwrap_or_default()
    }

    /// Starts a new page after the newest; `Full` when it is the oldest.
    fn new_page(&mut self) -> Result<Tail, SpoolError<F::Error>> {
        let (page, seq) = match self.tail {
            Some(t) if self.next_page(t.page) == self.head => return Err(SpoolError::Full),
            Some(t) => (self.next_page(t.page), t.seq.wrapping_add(1)),
            None => (self.head, 0),
        };
        self.erase_page(page).map_err(SpoolError::Flash)?;
        for off in [0, Self::END] {
            let at = self.addr(page, off);
            self.write_word(at, seq).map_err(SpoolError::Flash)?;
            self.write_word(at + Self::W as u32, !seq)
                .map_err(SpoolError::Flash)?;
        }
        let tail = Tail {
            page,
            seq,
            off: Self::PAGE_HEADER,
        };
        if self.tail.is_none() {
            self.head_off = Self::PAGE_HEADER;
        }
        self.tail = Some(tail);
        // The page before may now be one with nothing waiting. Nothing is
        // set aside here (the emitter may hold copies of the oldest
        // events), and a read that fails is not the new record's: it still
        // goes to flash, in order (the next pop or load settles the head);
        // it is counted all the same.
        if self.settle(false).is_err() {
            self.quiet_errors += 1;
        }
        Ok(tail)
    }

    /// Appends the staged event.
    fn push_staged(&mut self) -> Result<(), SpoolError<F::Error>> {
        if let Some(at) = self.doubt {
            // One slot in doubt at most: its mark first, unless the failed
            // one took (no word is programmed twice).
            let mark = at + 2 * Self::W as u32;
            let mut w = Aligned([0; MAX_WORD]);
            self.flash
                .read(mark, &mut w.0[..Self::W])
                .map_err(SpoolError::Flash)?;
            if erased(&w.0[..Self::W]) {
                self.write_word(mark, 0).map_err(SpoolError::Flash)?;
            }
            self.doubt = None;
        }
        let len = self.staged as u32;
        let size = Self::RECORD_HEADER + Self::padded(len);
        let tail = match self.tail {
            Some(t) if t.off + size <= Self::END => t,
            _ => self.new_page()?,
        };
        let at = self.addr(tail.page, tail.off);
        // Whatever happens next, this slot is used.
        self.tail = Some(Tail {
            off: Self::PAGE,
            ..tail
        });
        let crc = self.buf.0.get(..self.staged).map_or(0, crc32);
        let padded = Self::padded(len) as usize;
        if let Some(pad) = self.buf.0.get_mut(self.staged..padded) {
            pad.fill(0xFF);
        }
        self.write_word(at, len | (!len << 16))
            .map_err(SpoolError::Flash)?;
        let data = self.buf.0.get(..padded).unwrap_or_default();
        let written = match self.flash.write(at + Self::RECORD_HEADER, data) {
            Ok(()) => self.write_word(at + Self::W as u32, crc),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            // The length is there: the walks would take the slot for a
            // record (whole, if the driver failed after writing it). The
            // event stays in RAM; mark the slot removed (best effort).
            // When the mark fails too, the slot is held in doubt: read as
            // removed until a mark takes (else a record the driver did
            // write whole was read out as the next event, twice with its
            // RAM copy, and the newest event was never read: lost).
            if self.remove_at(tail.page, tail.off).is_err() {
                self.doubt = Some(at);
            }
            return Err(SpoolError::Flash(e));
        }
        self.tail = Some(Tail {
            off: tail.off + size,
            ..tail
        });
        self.len += 1;
        Ok(())
    }

    /// Removes up to `n` of the oldest events; returns how many went.
    /// `aside`: whether damage at the head may be set aside (see
    /// [`settle`](Self::settle)).
    fn pop(&mut self, n: usize, aside: bool) -> (usize, Result<(), SpoolError<F::Error>>) {
        let mut popped = 0;
        let r = self.pop_counted(n, &mut popped, aside);
        (popped, r.map_err(SpoolError::Flash))
    }

    /// Removes the `n` oldest events, which the writer delivered; returns
    /// how many left the count: all of them. They are owed, passed first;
    /// those a flash error kept in place (a read of the head failed) are
    /// passed by the next pop or load: the events went out, not again in
    /// this run (after a restart, at least once).
    fn pop_sent(&mut self, n: usize) -> (usize, Result<(), SpoolError<F::Error>>) {
        // Owed from the start: if the head's page is found damaged on the
        // way, the events that went out are told from those lost.
        let n = n.min(self.len);
        self.len -= n;
        self.owed += n;
        let r = self.pop_counted(0, &mut 0, true);
        (n, r.map_err(SpoolError::Flash))
    }

    fn pop_counted(&mut self, n: usize, popped: &mut usize, aside: bool) -> Result<(), F::Error> {
        let mut failed = None;
        loop {
            // (At the end, every owed event was passed or set aside.)
            let Some(len) = self.settle(aside)? else {
                break;
            };
            // (Asked after `settle`: events owed may have been set aside.)
            if self.owed == 0 && (*popped >= n || self.len == 0) {
                break;
            }
            let (page, off) = (self.head, self.head_off);
            // Gone from the count first: a removal mark the driver failed
            // to write whole may read as removed (or not: then it is
            // written out again after a restart, at least once).
            self.head_off += Self::RECORD_HEADER + Self::padded(len);
            if self.owed > 0 {
                self.owed -= 1;
            } else {
                self.len -= 1;
                *popped += 1;
            }
            // A mark that fails is counted by the caller; the others are
            // still written (the events went out: not again in this run).
            if let Err(e) = self.remove_at(page, off) {
                failed.get_or_insert(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Copies the oldest events into `batch`, as many as fit; returns how
    /// many. A record that fails its check is set aside, unless it is one
    /// of the first `held` (lines the writer holds: the load stops there).
    fn load<const N: usize, const B: usize>(
        &mut self,
        batch: &mut Batch<N, B>,
        held: usize,
    ) -> (usize, Result<(), SpoolError<F::Error>>) {
        let mut loaded = 0;
        let r = self.load_counted(batch, &mut loaded, held);
        (loaded, r.map_err(SpoolError::Flash))
    }

    fn load_counted<const N: usize, const B: usize>(
        &mut self,
        batch: &mut Batch<N, B>,
        loaded: &mut usize,
        held: usize,
    ) -> Result<(), F::Error> {
        let Some(tail) = self.tail else {
            return Ok(());
        };
        // Events that went out come first in flash: pass them, and any
        // damage at the head (not where lines the writer holds are).
        self.pop_counted(0, &mut 0, held == 0)?;
        let (mut page, mut off) = (self.head, self.head_off);
        while *loaded < self.len {
            let (len, state) = match self.slot(page, off)? {
                // The end, or damage the head has not reached: the events
                // before it are loaded, and `settle` sets it aside when
                // they are passed (a walk past it would load events the
                // pop could not tell from those lost). No new record goes
                // after damage on the newest page: it would be lost too.
                Slot::End { erased } if page == tail.page => {
                    if Self::broken_at(off, erased) {
                        self.tail = Some(Tail {
                            off: Self::PAGE,
                            ..tail
                        });
                    }
                    break;
                }
                Slot::End { erased } if Self::broken_at(off, erased) => break,
                Slot::End { .. } => {
                    (page, off) = (self.next_page(page), Self::PAGE_HEADER);
                    continue;
                }
                Slot::Record { len, state } => (len, state),
            };
            if let State::Written(crc) = state {
                let at_head = (page, off) == (self.head, self.head_off);
                let whole = match self.read_back(page, off, len, crc) {
                    Ok(whole) => whole,
                    Err(_) if at_head && *loaded >= held && self.giving_up() => {
                        // Unreadable (a bad sector): set aside, counted
                        // once, passed in RAM (its mark is best effort:
                        // after a restart it is read again).
                        self.quiet_errors += 1;
                        let _ = self.remove_at(page, off);
                        self.head_off = off + Self::RECORD_HEADER + Self::padded(len);
                        self.len -= 1;
                        self.damaged += 1;
                        self.bad_reads = 0;
                        off = self.head_off;
                        continue;
                    }
                    Err(e) if at_head => return Err(self.failed_at_head(e)),
                    Err(e) => return Err(e),
                };
                if at_head {
                    self.bad_reads = 0;
                }
                if !whole && *loaded < held {
                    break;
                } else if !whole {
                    // Changed in flash since it was counted: set aside, and
                    // counted once its mark reads back (a mark the flash
                    // failed to write leaves it to be found again by the
                    // next load: counted then, not twice).
                    let marked = self.remove_at(page, off);
                    if let Slot::Record {
                        state: State::Removed,
                        ..
                    } = self.slot(page, off)?
                    {
                        self.len = self.len.saturating_sub(1);
                        self.damaged += 1;
                    }
                    marked?;
                } else if batch
                    .push_encoded(self.buf.0.get(..len as usize).unwrap_or_default())
                    .is_err()
                {
                    break;
                } else {
                    *loaded += 1;
                }
            }
            off += Self::RECORD_HEADER + Self::padded(len);
        }
        // A record set aside may have been the last waiting in its page.
        self.settle(held == 0).map(drop)
    }
}

// --- the emitter -------------------------------------------------------------------

/// What a [`SpoolEmitter`]'s flash has done so far.
///
/// ```
/// use ossa_events_core::spool::SpoolCounters;
/// let c = SpoolCounters::default();
/// assert_eq!((c.spooled, c.replayed, c.evicted, c.flash_errors, c.damaged), (0, 0, 0, 0, 0));
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
    /// Events in flash set aside as unreadable: half written by a power
    /// cut or a failed write, changed since, or on a part of the flash
    /// that no longer reads (see [`FlashSpool::damaged`]).
    pub damaged: u64,
}

/// The [`Emitter`](crate::emitter::Emitter) with a [`FlashSpool`]: the
/// same batching, validation, counters and framing, and events that cannot
/// be written now wait in flash (see the [module](self) docs). `N` and `B`
/// size the RAM batch, `R` the largest event (that of the spool); `R` must
/// be below `B` (checked at compile time), so that any record loads.
///
/// A superloop calls [`poll`](Self::poll) as it does for the `Emitter`: it
/// flushes on the interval, and while flash holds events it writes them out,
/// one batch per call, retrying a failed writer once per flush interval.
///
/// ```
/// use ossa_events_core::emitter::Config;
/// use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
/// use ossa_events_core::{io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
///
/// let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
/// let mut down = [0u8; 0]; // a writer that fails: the link is down
/// let mut n = 0u8;
/// let ids = RandomIds(move |b: &mut [u8; 16]| { n += 1; b.fill(n) });
/// let config = Config::new("/devices/7").batch_size(2);
/// let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> =
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
    F: NorFlash,
    I: IdSource,
    K: Clock,
    const N: usize,
    const B: usize,
    const R: usize,
> {
    inner: Inner<'a, I, K, N, B>,
    writer: W,
    spool: FlashSpool<F, R>,
    /// The first `mirrored` events of the batch are copies of the first
    /// `mirrored` events in flash (loaded to be written, or spilled).
    mirrored: usize,
    /// The first `taken` events in flash are lines the writer took whole
    /// in a drain whose batch was cleared for room (they wait for its
    /// flush): when they are loaded again the drain goes on after them
    /// (when they cannot all be, the writer's flush delivers them as they
    /// are), and until then they are not evicted.
    taken: usize,
    /// When a write last failed: the next try waits a flush interval.
    failed_at_ms: Option<i64>,
    spool_counters: SpoolCounters,
}

impl<W: Write, F: NorFlash, I: IdSource, K: Clock, const N: usize, const B: usize, const R: usize>
    fmt::Debug for SpoolEmitter<'_, W, F, I, K, N, B, R>
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
    F: NorFlash,
    I: IdSource,
    K: Clock,
    const N: usize,
    const B: usize,
    const R: usize,
> SpoolEmitter<'a, W, F, I, K, N, B, R>
{
    /// An emitter writing to `writer`, keeping events in `spool` when it
    /// cannot. Events a previous run left in the spool are written first.
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// let mut out = [0u8; 1024];
    /// let em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    ///     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    ///     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// assert_eq!(em.pending(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A spool whose records may not fit the batch (`R >= B`) does not
    /// compile:
    ///
    /// ```compile_fail
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// let spool = FlashSpool::<_, 1024>::open(RamFlash::<8192, 2048>::new(), 0..8192)?;
    /// let mut out = [0u8; 1024];
    /// let em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 1024> = SpoolEmitter::new(
    ///     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    ///     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(config: Config<'a>, writer: W, spool: FlashSpool<F, R>, ids: I, clock: K) -> Self {
        // A record of up to `R` bytes loads into the batch with its
        // terminator: with `R >= B` a record from a build with a larger
        // batch would never load, and the spool would stop there for good.
        const {
            assert!(
                R < B,
                "SpoolEmitter needs R < B: a spooled record must fit the batch"
            )
        };
        SpoolEmitter {
            inner: Inner::new(config, ids, clock),
            writer,
            spool,
            mirrored: 0,
            taken: 0,
            failed_at_ms: None,
            spool_counters: SpoolCounters::default(),
        }
    }

    /// Sets the OSSA extensions added to every event that does not set them
    /// itself (as [`Emitter::set_context`](crate::emitter::Emitter::set_context)).
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
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
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut out = [0u8; 1024];
    /// # let em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
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
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut out = [0u8; 1024];
    /// # let em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
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
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut out = [0u8; 1024];
    /// # let em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// assert_eq!(em.spool_counters().spooled, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spool_counters(&self) -> SpoolCounters {
        SpoolCounters {
            damaged: self.spool.damaged(),
            flash_errors: self.spool_counters.flash_errors + u64::from(self.spool.quiet_errors),
            ..self.spool_counters
        }
    }

    /// The spool (its length, its settings).
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut out = [0u8; 1024];
    /// # let em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// assert!(em.spool().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spool(&self) -> &FlashSpool<F, R> {
        &self.spool
    }

    /// Events not yet delivered: in RAM only, or in flash.
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
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
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut out = [0u8; 1024];
    /// # let em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// assert!(em.writer().written().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writer(&self) -> &W {
        &self.writer
    }

    /// The writer, mutably (e.g. to repair a connection; a new one is
    /// better put in with [`replace_writer`](Self::replace_writer), which
    /// also gives the old one back). As with
    /// [`Emitter::writer_mut`](crate::emitter::Emitter::writer_mut), a write
    /// in progress starts over: the writer may be a new connection that
    /// never got the lines the old one took (at least once).
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// assert_eq!(em.writer_mut().len(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn writer_mut(&mut self) -> &mut W {
        self.forget_progress();
        &mut self.writer
    }

    /// The writer may be replaced: what the old one took is written again.
    fn forget_progress(&mut self) {
        self.inner.batch.rewind();
        // Lines the old writer held for its flush: written again.
        self.taken = 0;
    }

    /// Puts a new writer in (a reconnected link) and returns the old one. A
    /// write in progress starts over on the new one (the old one may have
    /// lost what it took), and the next flush tries it at once.
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut a = [0u8; 1024];
    /// # let mut b = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut a), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// let old = em.replace_writer(SliceWriter::new(&mut b));
    /// assert_eq!(old.len(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replace_writer(&mut self, writer: W) -> W {
        self.forget_progress();
        self.failed_at_ms = None;
        core::mem::replace(&mut self.writer, writer)
    }

    /// Takes the emitter apart: the writer and the spool. Events not yet
    /// delivered stay in flash for the next run; those only in RAM are
    /// written to flash first. When some cannot be (the flash is full or
    /// failing, or, after a flash error, it holds events the batch does not
    /// and the RAM ones would go out of order), the emitter is given back,
    /// nothing lost: flush it, or
    /// [`discard_pending`](Self::discard_pending) to give them up, counted
    /// as dropped.
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// em.emit(Event::builder().ty("t"))?; // in RAM, not flushed
    /// let (_writer, spool) = em.into_parts().ok().ok_or("the flash has room")?;
    /// assert_eq!(spool.len(), 1); // kept for the next run
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    // The emitter is the error on purpose: it holds the events.
    #[allow(clippy::result_large_err)]
    pub fn into_parts(mut self) -> Result<(W, FlashSpool<F, R>), Self> {
        self.spill();
        if self.ram_only() > 0 {
            return Err(self);
        }
        Ok((self.writer, self.spool))
    }

    /// Drops the events only in RAM (those the flash could not take), counted
    /// in [`Counters::dropped`]; returns how many. Events in flash stay.
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// em.emit(Event::builder().ty("t"))?;
    /// assert_eq!(em.discard_pending(), 1);
    /// assert_eq!((em.pending(), em.counters().dropped), (0, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [`Counters::dropped`]: crate::emitter::Counters::dropped
    pub fn discard_pending(&mut self) -> usize {
        let mut n = 0;
        while self.ram_only() > 0 {
            self.inner.batch.pop_last();
            self.inner.counters.dropped += 1;
            n += 1;
        }
        if self.inner.batch.is_empty() {
            self.inner.oldest_ms = None;
        }
        n
    }

    /// Milliseconds until [`poll`](Self::poll) has work at `now`: 0 while
    /// flash holds events and the writer is not waiting out a failure;
    /// `None` when nothing is pending.
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7").flush_interval_ms(500), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// assert_eq!(em.next_flush_in_ms(Timestamp::UNIX_EPOCH), None);
    /// em.emit(Event::builder().ty("t"))?;
    /// assert_eq!(em.next_flush_in_ms(Timestamp::UNIX_EPOCH), Some(500));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_flush_in_ms(&self, now: Timestamp) -> Option<u64> {
        // A clock that went back past the writer's failure: 0, as the
        // batch's wait says then. The next `poll` starts the wait over (this
        // takes `&self`); a superloop that slept a whole interval first
        // found that `poll` starting the wait, not ending it, and tried the
        // writer an interval late.
        let behind = self.failed_at_ms.is_some_and(|t| millis(now) < t);
        let retry = if behind { 0 } else { self.retry_in_ms(now) };
        // The batch's interval, and no try before the failure's wait is over.
        let ram = self.inner.next_flush_in_ms(now).map(|a| a.max(retry));
        let flash = (!self.spool.is_empty()).then_some(retry);
        match (ram, flash) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Emits an OSSA event from its typed payload (see [`emit`](Self::emit)).
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
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
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter, SpoolMode};
    /// # use ossa_events_core::{io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?
    ///     .mode(SpoolMode::Always);
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
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
        let mut event = event;
        let ev = self.inner.complete(&mut event, id.as_str(), now, &mut tp)?;
        if let Staged::NoRoom = self.inner.stage(ev, now)? {
            // One the spool could never take is refused before room is made
            // for it (which may drop older events).
            if crate::batch::encoded_len(ev).is_ok_and(|len| len > R) {
                self.inner.counters.rejected += 1;
                return Err(EmitError::TooLarge);
            }
            self.make_room(now);
            if let Staged::NoRoom = self.inner.stage(ev, now)? {
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
    /// delivered. A wait that `now` is before the start of (the clock went
    /// back) starts over at `now`.
    ///
    /// ```
    /// # use ossa_events_core::emitter::Config;
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
    /// #     Config::new("/devices/7"), SliceWriter::new(&mut out), spool,
    /// #     RandomIds(|b: &mut [u8; 16]| b.fill(1)), FixedClock(Timestamp::UNIX_EPOCH));
    /// em.emit(Event::builder().ty("t"))?; // default interval 1000 ms
    /// assert_eq!(em.poll(Timestamp::from_unix(1, 0).ok_or("range")?)?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll(&mut self, now: Timestamp) -> Result<usize, DrainError<W::Error>> {
        // A clock that went back past the failure starts the wait over
        // (as `due` does for the batch), not held until it catches up.
        let now_ms = millis(now);
        if let Some(t) = self.failed_at_ms.as_mut() {
            *t = (*t).min(now_ms);
        }
        // A writer that failed is tried again a flush interval later, for
        // the events in RAM as for those in flash.
        let due = self.inner.due_at(now).is_some() || !self.spool.is_empty();
        if due && self.writer_may_work(now) {
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
    /// # use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
    /// # use ossa_events_core::{io::SliceWriter, Event, FixedClock, RandomIds, Timestamp};
    /// # let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)?;
    /// # let mut out = [0u8; 1024];
    /// # let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
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

    /// Events at the head of flash whose lines the writer took whole and
    /// holds for its flush.
    fn taken_whole(&self) -> usize {
        if self.mirrored > 0 {
            self.inner.batch.taken().max(self.taken)
        } else {
            self.taken
        }
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
                    if self.taken_whole() > 0 {
                        // The oldest events are lines the writer holds for
                        // its flush: evicted, they would be delivered and
                        // counted dropped. The new event is refused instead.
                        self.inner.unaccept_last();
                        self.inner.counters.dropped += 1;
                        return Err(EmitError::SpoolFull);
                    }
                    if last > self.mirrored {
                        // Events only in RAM come before it (the flash
                        // failed to take them; only in `Always`). The
                        // copies go (the oldest is about to leave flash);
                        // those events stay, to go out before older ones
                        // in flash (as the docs allow for them), and this
                        // one still goes to flash: `Always` promised it.
                        // (None of the copies is a line the writer took.)
                        while self.mirrored > 0 {
                            self.inner.batch.pop_first();
                            self.mirrored -= 1;
                            last -= 1;
                        }
                    }
                    if self.mirrored > 0 {
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
    /// room. `false` if the flash failed; `true` also when damage set aside
    /// on the way emptied the spool (room made, nothing evicted).
    ///
    /// A read of the head that fails is tried again at once: past
    /// [`GIVE_UP`] failures in a row its record is set aside and the next
    /// one goes, so that the new event still goes to flash, in order (not
    /// held in RAM, where it would be written before older events).
    fn evict_oldest(&mut self) -> bool {
        for _ in 0..=GIVE_UP {
            // Copies of the oldest events in the batch: none set aside.
            match self.spool.pop(1, self.mirrored == 0) {
                (1, r) => {
                    if r.is_err() {
                        self.flash_failed(); // its mark: it may come back after a restart
                    }
                    self.inner.counters.dropped += 1;
                    self.spool_counters.evicted += 1;
                    return true;
                }
                // Nothing left to evict: the set-aside made the room (in
                // `Always` the new event must still reach flash). With
                // copies in the batch (`drop_oldest_copies`) nothing is set
                // aside and the spool is not empty: `false`.
                (_, Ok(())) => return self.spool.is_empty(),
                _ => self.flash_failed(),
            }
        }
        false
    }

    /// After a failed write: the events only in RAM go to flash (in order,
    /// after what flash holds), and become copies. A full flash leaves the
    /// rest in RAM (no eviction here: they are older than what it holds).
    /// `true` when it stopped because the flash is full.
    fn spill(&mut self) -> bool {
        while self.ram_only() > 0 && self.spool.len() == self.mirrored {
            let Some(ev) = self.inner.batch.event(self.mirrored) else {
                return false;
            };
            if self.spool.stage(ev).is_err() {
                return false;
            }
            match self.spool.push_staged() {
                Ok(()) => {
                    self.spool_counters.spooled += 1;
                    self.mirrored += 1;
                }
                Err(SpoolError::Full) => return true,
                Err(_) => {
                    self.flash_failed();
                    return false;
                }
            }
        }
        false
    }

    /// With [`WhenFull::DropOldest`], after a [`spill`](Self::spill) that
    /// found the flash full of copies of the batch's first events (a flash
    /// that holds fewer events than the batch): drops those oldest events,
    /// from flash and batch, until the events only in RAM are in flash too.
    /// Not the lines the writer holds for its flush.
    fn drop_oldest_copies(&mut self) {
        while self.ram_only() > 0
            && self.mirrored > 0
            && self.spool.len() == self.mirrored
            && self.taken_whole() == 0
        {
            if !self.evict_oldest() {
                return;
            }
            self.inner.batch.pop_first();
            self.mirrored -= 1;
            if !self.spill() {
                return;
            }
        }
    }

    /// The batch has no room for a new event: write it out, or else put it
    /// in flash and keep RAM for the new one.
    fn make_room(&mut self, now: Timestamp) {
        if self.writer_may_work(now) && self.round(now).is_ok() {
            return;
        }
        if self.spill() && self.spool.when_full == WhenFull::DropOldest {
            self.drop_oldest_copies();
        }
        if self.ram_only() == 0 {
            // Everything in RAM is also in flash: the copies can go (a write
            // cut short goes on from flash, after a `\n`, past the lines the
            // writer took whole: they are not written twice).
            self.taken = self.inner.batch.clear_taken().max(self.taken);
            self.inner.oldest_ms = None;
            self.mirrored = 0;
        }
    }

    /// One write: loads the oldest events from flash if the batch is empty,
    /// writes the batch, and on success removes the copies from flash. On
    /// failure the events only in RAM go to flash.
    fn round(&mut self, now: Timestamp) -> Result<usize, DrainError<W::Error>> {
        let from_flash = self.inner.batch.is_empty() && !self.spool.is_empty();
        let mut flush_only = false;
        if from_flash {
            // The first `taken` come back as they are (the writer holds
            // their lines): none of them is set aside.
            let (loaded, r) = self.spool.load(&mut self.inner.batch, self.taken);
            self.mirrored = loaded;
            if r.is_err() {
                self.flash_failed();
            }
            if loaded < self.taken {
                // Not every line the writer holds is back (a read failed,
                // or one of them is damaged since): written now, some
                // would go out twice. Its flush delivers them as they are
                // (waiting instead, a record that never reads again, or
                // reads damaged, kept the spool from draining for good).
                self.inner.batch.clear();
                self.mirrored = 0;
                flush_only = true;
            } else {
                // The same events as when the batch was cleared.
                self.inner.batch.resume(self.taken);
                self.taken = 0;
            }
        }
        let r = if flush_only {
            self.writer.flush().map(|()| 0).map_err(DrainError::Io)
        } else {
            self.inner.batch.write_to(&mut self.writer)
        };
        if matches!(r, Err(DrainError::Io(_))) && (flush_only || !self.inner.batch.write_failed()) {
            // The flush failed, and may have lost the lines the writer
            // held: written again. (A failed `write` leaves them held.)
            self.taken = 0;
        }
        let r = self.inner.drained(r);
        match r {
            Ok(n) => {
                self.failed_at_ms = None;
                // Events only in RAM (the flash failed to take them) went
                // out before older ones in flash: the writer's flush
                // delivered the lines it held of these too.
                let held = if n > 0 || flush_only {
                    core::mem::take(&mut self.taken)
                } else {
                    0
                };
                self.inner.counters.delivered += held as u64;
                let copies = core::mem::take(&mut self.mirrored) + held;
                if copies > 0 {
                    let (popped, r) = self.spool.pop_sent(copies);
                    self.spool_counters.replayed += popped as u64;
                    if r.is_err() {
                        // A removal mark failed: written again after a
                        // restart (at least once).
                        self.flash_failed();
                    }
                }
                Ok(n + held)
            }
            Err(e) => {
                self.failed_at_ms = Some(millis(now));
                let _full = self.spill();
                Err(e)
            }
        }
    }
}
