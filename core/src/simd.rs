//! Sixteen-bytes-at-a-time scans on x86-64, where SSE2 is always there.
//!
//! The same questions as [`crate::swar`] asks of a word, asked of 16 bytes
//! with SSE2 compares through `safe_arch`'s safe wrappers (no `unsafe` here).
//! Each function returns a mask with bit `i` set when byte `i` is one the
//! caller stops at, exactly (no false positives, unlike the SWAR tests), so
//! `trailing_zeros` is the first such byte.

use safe_arch::{
    bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, m128i, max_u8_m128i, min_u8_m128i,
    move_mask_i8_m128i, set_splat_i8_m128i, sub_i8_m128i,
};

#[inline(always)]
fn splat(b: u8) -> m128i {
    set_splat_i8_m128i(b as i8)
}

/// Bytes `<= n`.
#[inline(always)]
fn at_most(v: m128i, n: u8) -> m128i {
    cmp_eq_mask_i8_m128i(min_u8_m128i(v, splat(n)), v)
}

/// Bytes `>= n`.
#[inline(always)]
fn at_least(v: m128i, n: u8) -> m128i {
    cmp_eq_mask_i8_m128i(max_u8_m128i(v, splat(n)), v)
}

#[inline(always)]
fn mask(v: m128i) -> u32 {
    // Only the low 16 bits can be set.
    move_mask_i8_m128i(v) as u32
}

/// The bytes a JSON string cannot hold as they are: `"`, `\` and those below
/// 0x20.
#[inline(always)]
pub(crate) fn json_special(chunk: &[u8; 16]) -> u32 {
    let v = load_unaligned_m128i(chunk);
    let q = cmp_eq_mask_i8_m128i(v, splat(b'"'));
    let b = cmp_eq_mask_i8_m128i(v, splat(b'\\'));
    mask(bitor_m128i(bitor_m128i(q, b), at_most(v, 0x1f)))
}

/// The bytes outside printable ASCII: below 0x21 (0x20 when `space`) or
/// at and above 0x7f.
#[inline(always)]
pub(crate) fn not_printable(chunk: &[u8; 16], space: bool) -> u32 {
    let v = load_unaligned_m128i(chunk);
    let low = if space { 0x1f } else { 0x20 };
    mask(bitor_m128i(at_most(v, low), at_least(v, 0x7f)))
}

/// The bytes outside `unreserved` (RFC 3986: ASCII letters and digits,
/// `-._~`) and `/`.
#[inline(always)]
pub(crate) fn not_path_simple(chunk: &[u8; 16]) -> u32 {
    let v = load_unaligned_m128i(chunk);
    // `-./0-9` is one run (0x2d..=0x39); then A-Z, a-z, `_` and `~`.
    let within = |lo: u8, hi: u8| at_most(sub_i8_m128i(v, splat(lo)), hi - lo);
    let ok = bitor_m128i(
        bitor_m128i(within(b'-', b'9'), within(b'A', b'Z')),
        bitor_m128i(
            within(b'a', b'z'),
            bitor_m128i(
                cmp_eq_mask_i8_m128i(v, splat(b'_')),
                cmp_eq_mask_i8_m128i(v, splat(b'~')),
            ),
        ),
    );
    !mask(ok) & 0xffff
}

/// The offset of the first byte of `s` at or after `from` that `stop`
/// flags, looking 16 bytes at a time: `Ok(offset)`, or `Err(at)` with `at`
/// the first offset from which fewer than 16 bytes are left (the caller
/// checks those its own way).
#[inline(always)]
pub(crate) fn first_flagged(
    s: &[u8],
    from: usize,
    stop: impl Fn(&[u8; 16]) -> u32,
) -> Result<usize, usize> {
    let mut at = from;
    while let Some(chunk) = s.get(at..).and_then(|r| r.first_chunk::<16>()) {
        let m = stop(chunk);
        if m != 0 {
            return Ok(at + m.trailing_zeros() as usize);
        }
        at += 16;
    }
    Err(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_flagged_finds_the_first_flagged_byte_or_where_whole_chunks_end() {
        for len in 0..50 {
            for from in 0..=len {
                let clean = vec![b'a'; len];
                let end = from + (len - from) / 16 * 16;
                assert_eq!(first_flagged(&clean, from, json_special), Err(end));
                for at in from..len {
                    let mut s = clean.clone();
                    s[at] = b'"';
                    if at < len - 1 {
                        s[len - 1] = b'\\'; // a later flagged byte is not the answer
                    }
                    let want = if at < end { Ok(at) } else { Err(end) };
                    assert_eq!(
                        first_flagged(&s, from, json_special),
                        want,
                        "{len} {from} {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn masks_agree_with_byte_tests_for_every_byte_at_every_lane() {
        for b in 0..=255u8 {
            for lane in 0..16 {
                let mut c = [b'a'; 16];
                c[lane] = b;
                let bit = 1u32 << lane;
                let special = b == b'"' || b == b'\\' || b < 0x20;
                assert_eq!(json_special(&c), if special { bit } else { 0 }, "{b:#x}");
                for space in [false, true] {
                    let lo = if space { 0x20 } else { 0x21 };
                    let bad = b < lo || b >= 0x7f;
                    assert_eq!(
                        not_printable(&c, space),
                        if bad { bit } else { 0 },
                        "{b:#x}"
                    );
                }
            }
        }
    }
}
