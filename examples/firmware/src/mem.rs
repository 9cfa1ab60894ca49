//! Size-optimised memory routines: a byte loop each, as a size-built C
//! library has (newlib-nano's `memcpy` is one), instead of the word-at-a-time
//! versions `compiler_builtins` links by default.
//!
//! The compiler calls these for every copy or zeroing it does not do in
//! line: slices copied into the batch arena, struct moves. Its own versions
//! (`memcpy` with its aligned and unaligned paths, `__aeabi_memcpy4`,
//! `__aeabi_memclr4`, `__aeabi_memclr8`, `memcmp`) took 1 362 B of the
//! plain build's flash, and `__aeabi_memset`/`__aeabi_memset8` 404 B more
//! of the spool build's; these take 60 B of code and a 12-byte table
//! (`memcmp` is inlined where it is used). Measured with
//! `arm-none-eabi-size`: the image went from 19 332 B to 18 148 B, the spool
//! build's from 25 508 B to 23 692 B. They are slower per byte (one load
//! and one store a byte), which costs nothing that matters here: an event is
//! a few hundred bytes and a UART at 115 200 baud sends about 11 bytes a
//! millisecond.
//!
//! `compiler_builtins` defines its versions as weak symbols, so these replace
//! them at link time. They are written in assembly so the compiler cannot
//! turn the loops back into calls to themselves (it recognises a copy loop
//! as `memcpy`). A firmware that links a C library has these routines from
//! it already and does not need this module.
//!
//! The QEMU test (`tests/tests/firmware_runs_under_qemu.rs`) runs the
//! firmware and parses every event it writes: every byte of them went
//! through these loops.

use core::arch::asm;

/// Defines each name as: copy `n` bytes from `src` to `dest`, one at a time,
/// first to last (the `__aeabi_memcpy*` contract; the aligned variants take
/// the byte loop too).
macro_rules! copy_bytes {
    ($($name:ident),*) => {$(
        /// Copies `n` bytes from `src` to `dest` (regions must not overlap).
        ///
        /// # Safety
        ///
        /// `dest` valid for `n` writes, `src` for `n` reads, not overlapping.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(dest: *mut u8, src: *const u8, n: usize) {
            // SAFETY: the caller's contract; the loop touches exactly
            // dest[..n] and src[..n] and no other memory or stack.
            unsafe {
                asm!(
                    "cmp {n}, #0",
                    "beq 2f",
                    "1:",
                    "ldrb {t}, [{s}], #1",
                    "strb {t}, [{d}], #1",
                    "subs {n}, {n}, #1",
                    "bne 1b",
                    "2:",
                    d = inout(reg) dest => _,
                    s = inout(reg) src => _,
                    n = inout(reg) n => _,
                    t = out(reg) _,
                    options(nostack),
                );
            }
        }
    )*};
}

/// Sets `n` bytes at `dest` to `byte`.
///
/// # Safety
///
/// `dest` valid for `n` writes.
#[inline(always)]
unsafe fn fill(dest: *mut u8, n: usize, byte: u8) {
    // SAFETY: the caller's contract; the loop writes exactly dest[..n].
    unsafe {
        asm!(
            "cmp {n}, #0",
            "beq 2f",
            "1:",
            "strb {b}, [{d}], #1",
            "subs {n}, {n}, #1",
            "bne 1b",
            "2:",
            d = inout(reg) dest => _,
            n = inout(reg) n => _,
            b = in(reg) byte,
            options(nostack),
        );
    }
}

/// Defines each name as: set `n` bytes at `dest` to zero (the
/// `__aeabi_memclr*` contract).
macro_rules! zero_bytes {
    ($($name:ident),*) => {$(
        /// Sets `n` bytes at `dest` to zero.
        ///
        /// # Safety
        ///
        /// `dest` valid for `n` writes.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(dest: *mut u8, n: usize) {
            // SAFETY: the caller's contract, passed on.
            unsafe { fill(dest, n, 0) }
        }
    )*};
}

/// Defines each name as: set `n` bytes at `dest` to the low byte of `c`
/// (the `__aeabi_memset*` contract: the length comes before the value,
/// unlike C's `memset`).
macro_rules! set_bytes {
    ($($name:ident),*) => {$(
        /// Sets `n` bytes at `dest` to `c as u8`.
        ///
        /// # Safety
        ///
        /// `dest` valid for `n` writes.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(dest: *mut u8, n: usize, c: i32) {
            // SAFETY: the caller's contract, passed on.
            unsafe { fill(dest, n, c as u8) }
        }
    )*};
}

copy_bytes!(__aeabi_memcpy, __aeabi_memcpy4, __aeabi_memcpy8);
zero_bytes!(__aeabi_memclr, __aeabi_memclr4, __aeabi_memclr8);
set_bytes!(__aeabi_memset, __aeabi_memset4, __aeabi_memset8);

/// Compares `n` bytes: 0 when equal, else the difference of the first
/// bytes that differ (negative when `a`'s is smaller), as C's `memcmp`.
///
/// # Safety
///
/// `a` and `b` valid for `n` reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let diff: i32;
    // SAFETY: the caller's contract; the loop reads at most a[..n] and b[..n].
    unsafe {
        asm!(
            "movs {r}, #0",
            "cmp {n}, #0",
            "beq 2f",
            "1:",
            "ldrb {r}, [{a}], #1",
            "ldrb {t}, [{b}], #1",
            "subs {r}, {r}, {t}",
            "bne 2f",
            "subs {n}, {n}, #1",
            "bne 1b",
            "2:",
            a = inout(reg) a => _,
            b = inout(reg) b => _,
            n = inout(reg) n => _,
            t = out(reg) _,
            r = out(reg) diff,
            options(nostack, readonly),
        );
    }
    diff
}

/// Keeps the `memset` family through link-time optimisation. The compiler
/// emits its calls to these names only when it generates code, after LTO has
/// dropped definitions nothing referred to yet; without this use the linker
/// would take `compiler_builtins`' versions (412 B in the spool build, which
/// fills a flash word's padding). The copy and zeroing routines are kept
/// without it (LTO preserves those names).
#[used]
static KEEP_MEMSET: [unsafe extern "C" fn(*mut u8, usize, i32); 3] =
    [__aeabi_memset, __aeabi_memset4, __aeabi_memset8];
