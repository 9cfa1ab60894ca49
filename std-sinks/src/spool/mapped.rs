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
//!   locked (`DIR/lock`); nothing of ours truncates it before
//!   [`Mapped::close`], which gives up the spool's use of the mapping first;
//! - its blocks are reserved (`fallocate`) for the whole mapped length
//!   before mapping: a write through the map never needs disk space, so a
//!   full disk cannot turn into `SIGBUS`; where the reservation fails (no
//!   space, a file-size limit, a file system without `fallocate`) the
//!   segment is written with `write(2)` instead;
//! - every access is bounds-checked against the mapped length, and Rust
//!   references into the mapping exist only through `&self` (reads) while
//!   writes take `&mut self`, under the emitter's lock;
//! - the one other user is a short-lived thread that asks the kernel to
//!   fault the pages in ahead of the writer (`MADV_POPULATE_WRITE`), which
//!   touches no byte and reports a page it cannot back as an error rather
//!   than a signal (so it is harmless after the file is cut).
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
        rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, size)?;
        let map = Arc::new(MmapOptions::new().len(len).map_raw(&file)?);
        Ok(Mapped { file, map })
    }

    /// Faults every page in, writable, on this thread (a segment prepared
    /// ahead). The first fault of a new file costs ~3 ms on ext4, the rest
    /// ~1 ms per MiB: none of it is then paid by `emit()`. Best effort: a
    /// kernel before 5.14 refuses, and the writer takes the faults itself.
    pub(super) fn prefault(&self) {
        let _ = self.map.advise(Advice::PopulateWrite);
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
            .spawn(move || ahead.advise(Advice::PopulateWrite));
    }

    /// The mapped bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `self.map.len()` bytes, readable, and alive
        // while `self.map` is; no `&mut` to it exists while `&self` is
        // borrowed (writes take `&mut self`), and the file is not cut while
        // mapped (module doc).
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.map.len()) }
    }

    /// The file (for `fsync`, which also writes back what the map changed).
    pub(super) fn file(&self) -> &File {
        &self.file
    }

    /// Copies `record` (which starts with its 4 magic bytes) to `at`. The
    /// magic goes last: a process killed in the middle leaves zeros where
    /// a reader looks for it, which reads as the end of the segment, never
    /// as a record. `false` when it does not fit.
    pub(super) fn write(&mut self, at: usize, record: &[u8]) -> bool {
        if at
            .checked_add(record.len())
            .is_none_or(|end| end > self.map.len())
        {
            return false;
        }
        let head = 4.min(record.len());
        let base = self.map.as_mut_ptr();
        // SAFETY: `at..at + record.len()` is inside the mapping (checked
        // above), which is writable and alive while `self.map` is; `&mut
        // self` means no reference from `bytes` is alive; `record` is not in
        // the mapping (it is the spool's own buffer).
        unsafe {
            std::ptr::copy_nonoverlapping(
                record.as_ptr().add(head),
                base.add(at + head),
                record.len() - head,
            );
        }
        // A store the compiler moved before the copy could make a torn
        // record look whole; the CPU's own order does not matter, as a
        // killed thread's stores all reach the page cache.
        compiler_fence(Ordering::Release);
        // SAFETY: as above, for `at..at + head`.
        unsafe { std::ptr::copy_nonoverlapping(record.as_ptr(), base.add(at), head) };
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
