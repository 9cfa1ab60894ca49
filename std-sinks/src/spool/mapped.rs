//! The segment being written, mapped into memory
//! ([`SpoolConfig::mapped`](super::SpoolConfig::mapped), Linux): `emit()`
//! copies its record into the page cache, where a killed process cannot
//! take it back, without a system call.
//!
//! This is the crate's only `unsafe` code: the copy into the mapping and
//! the view of what was written (raw pointers into a [`MmapRaw`]). Mapped
//! memory changes, or stops being backed (`SIGBUS`), when the file does.
//! Why that cannot happen here:
//!
//! - the file is a segment this spool created, in a directory it holds
//!   locked (`DIR/lock`); nothing of ours writes it by other means or
//!   truncates it before [`Mapped::close`], which gives up the spool's use
//!   of the mapping first. The lock is advisory: another process that
//!   writes or truncates a segment anyway breaks this (documented);
//! - its blocks are reserved (`fallocate`) for the whole mapped length
//!   before mapping, and only on file systems where a reservation means a
//!   write into it needs no more space (ext4, XFS, tmpfs: not btrfs or ZFS,
//!   which allocate on write): a write through the map never meets a full
//!   disk. Where the reservation cannot be made (no space, a file-size
//!   limit, which is checked first because passing it raises `SIGXFSZ`,
//!   another file system) the segment is written with `write(2)` instead;
//! - every access is bounds-checked against the mapped length, and Rust
//!   references into the mapping exist only through `&self` (reads) while
//!   writes take `&mut self`, under the emitter's lock;
//! - the other users are a helper thread that asks the kernel to fault the
//!   pages in ahead of the writer (`MADV_POPULATE_READ`) and the spool's
//!   syncer (`msync` of what is written): neither touches a byte, and both
//!   get an error, not a signal, for a page that can no longer be backed.
//!
//! What remains is documented on `SpoolConfig::mapped`: another process
//! truncating a segment, or the disk failing to read back a page the kernel
//! had dropped from its cache, ends the process with `SIGBUS` instead of an
//! error. That is why mapping is off by default.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{Ordering, compiler_fence};

use memmap2::{Advice, MmapOptions, MmapRaw};

/// Segments at least this large have their pages faulted in by a helper
/// thread when they had to be made on the writer's thread: a fault costs
/// the writer ~5 µs per 4 KiB page (~0.75 µs per event of 600 bytes).
const PREFAULT_FROM: u64 = 256 << 10;

/// Pages are faulted in this many bytes at a time: a populate holds the
/// process's memory-map lock, which an `mmap` or `munmap` elsewhere in the
/// process waits for (7-10 ms for a whole 8 MiB segment at once).
const PREFAULT_CHUNK: usize = 256 << 10;

/// File systems whose `fallocate` reserves the blocks a later write into
/// them uses (`statfs` magic numbers): ext2/3/4, XFS, tmpfs.
const RESERVING_FILE_SYSTEMS: [u64; 3] = [0xEF53, 0x5846_5342, 0x0102_1994];

/// A segment file mapped for appending.
pub(super) struct Mapped {
    file: File,
    map: Arc<MmapRaw>,
}

impl Mapped {
    /// Creates `path` (emptied if it exists) as a segment of `size` bytes,
    /// reserved and mapped. `Err` when the blocks cannot be reserved or
    /// mapped, the file removed again: the caller writes the segment with
    /// `write(2)` then.
    pub(super) fn create(path: &Path, size: u64) -> io::Result<Mapped> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)?;
        Mapped::new(f, size).inspect_err(|_| {
            let _ = std::fs::remove_file(path);
        })
    }

    /// Reserves `size` bytes of disk for `file` (opened for reading and
    /// writing) and maps them.
    fn new(file: File, size: u64) -> io::Result<Mapped> {
        let len =
            usize::try_from(size).map_err(|_| io::Error::other("segment too large to map"))?;
        let fs = rustix::fs::fstatfs(&file)?;
        // `f_type`'s integer type differs between architectures.
        #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
        let kind = fs.f_type as u64;
        if !RESERVING_FILE_SYSTEMS.contains(&kind) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("file system {kind:#x} does not reserve blocks for a mapping"),
            ));
        }
        // Past the file-size limit `fallocate` fails, but also raises
        // SIGXFSZ, whose default ends the process.
        if rustix::process::getrlimit(rustix::process::Resource::Fsize)
            .current
            .is_some_and(|limit| size > limit)
        {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "segment larger than the file-size limit",
            ));
        }
        rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, size)?;
        let map = Arc::new(MmapOptions::new().len(len).map_raw(&file)?);
        Ok(Mapped { file, map })
    }

    /// Faults every page in on this thread (a segment prepared ahead): the
    /// page cache pages are made and zeroed here, not in `emit()` (the
    /// first fault of a new file costs ~3 ms on ext4, the rest ~1 ms per
    /// MiB). Read faults, not write faults: the pages stay clean until
    /// written, so only written pages are ever dirty. The writer's first
    /// store to each page then takes a write-protect fault (the file
    /// system's `page_mkwrite`), a few µs per 4 KiB, about 7 events.
    /// Populating writable instead moved that to this thread (per-call mean
    /// 1.6-2.2 µs instead of 2.2-2.9 µs, p50 1.1-1.7 µs either way) but
    /// dirtied every page ahead of the writer, and events/s through the
    /// spool fell to 0.74-0.90x of no spool (11 runs, 7 of them under
    /// 0.8x), against 0.82-0.94x (8 runs) with read faults. Best effort: a
    /// kernel before 5.14 refuses, and the writer takes the faults itself.
    pub(super) fn prefault(&self) {
        populate(&self.map);
    }

    /// [`prefault`](Self::prefault) on a helper thread, ahead of the writer
    /// (a segment that had to be made on the writer's thread).
    pub(super) fn prefault_in_background(&self) {
        if (self.map.len() as u64) < PREFAULT_FROM {
            return;
        }
        let ahead = Arc::clone(&self.map);
        let _ = std::thread::Builder::new()
            .name("ossa-events-prefault".into())
            .spawn(move || populate(&ahead));
    }

    /// The mapped length.
    pub(super) fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// The mapped bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `self.map.len()` bytes, readable, and alive
        // while `self.map` is; no `&mut` to it exists while `&self` is
        // borrowed (writes take `&mut self`), and the file is not written
        // by other means or cut while mapped (module doc).
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.map.len()) }
    }

    /// What makes bytes `from..to` durable (`msync`), to run outside the
    /// emitter's lock or now. Only the written range: `fsync` of the file
    /// would also flush the segment's reserved, still empty rest.
    pub(super) fn range_sync(&self, from: u64, to: u64) -> RangeSync {
        let at = |n: u64| usize::try_from(n).unwrap_or(usize::MAX).min(self.map.len());
        RangeSync {
            map: Arc::clone(&self.map),
            from: at(from),
            to: at(to),
        }
    }

    /// Copies `record` (which starts with its 4 magic bytes) to `at`. The
    /// magic goes last, in one store: a process killed in the middle leaves
    /// zeros where a reader looks for it, which reads as the end of the
    /// segment, never as a record. `false` when it does not fit.
    pub(super) fn write(&mut self, at: usize, record: &[u8]) -> bool {
        let Some((magic, rest)) = record.split_first_chunk::<4>() else {
            return false;
        };
        if at
            .checked_add(record.len())
            .is_none_or(|end| end > self.map.len())
        {
            return false;
        }
        let base = self.map.as_mut_ptr();
        // SAFETY: `at..at + record.len()` is inside the mapping (checked
        // above), which is writable and alive while `self.map` is; `&mut
        // self` means no reference from `bytes` is alive; `record` is not in
        // the mapping (it is the spool's own buffer).
        unsafe {
            std::ptr::copy_nonoverlapping(rest.as_ptr(), base.add(at + 4), rest.len());
        }
        // A store the compiler moved before the copy could make a torn
        // record look whole; the CPU's own order does not matter, as a
        // killed thread's stores all reach the page cache.
        compiler_fence(Ordering::Release);
        // SAFETY: as above, for `at..at + 4`; unaligned, as `at` may be.
        unsafe { std::ptr::write_unaligned(base.add(at).cast::<[u8; 4]>(), *magic) };
        true
    }

    /// Gives up the mapping and cuts the file to the `len` bytes of records
    /// written (the reserved rest is given back); the file is returned for
    /// its last sync.
    pub(super) fn close(self, len: u64) -> io::Result<File> {
        let Mapped { file, map } = self;
        drop(map);
        file.set_len(len)?;
        Ok(file)
    }
}

/// `MADV_POPULATE_READ` over `map`, a chunk at a time.
fn populate(map: &MmapRaw) {
    let mut at = 0;
    while at < map.len() {
        let n = PREFAULT_CHUNK.min(map.len() - at);
        if map.advise_range(Advice::PopulateRead, at, n).is_err() {
            return;
        }
        at += n;
    }
}

/// Makes the written start of a mapped segment durable (see
/// [`Mapped::range_sync`]).
pub(super) struct RangeSync {
    map: Arc<MmapRaw>,
    from: usize,
    to: usize,
}

impl RangeSync {
    /// `msync(MS_SYNC)` of the range: on Linux the same as `fdatasync` of
    /// those bytes.
    pub(super) fn run(&self) -> io::Result<()> {
        if self.to <= self.from {
            return Ok(());
        }
        self.map.flush_range(self.from, self.to - self.from)
    }
}
