//! Eight-bytes-at-a-time scans for the hot paths (escaping, validation).
//!
//! Each function answers "could this chunk contain a byte of interest?"
//! exactly (no false negatives); callers fall back to a byte loop for the
//! chunks and tail where the answer is yes.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

#[inline(always)]
fn has_zero(v: u64) -> bool {
    v.wrapping_sub(ONES) & !v & HIGHS != 0
}

#[inline(always)]
fn has_less_than(v: u64, n: u8) -> bool {
    v.wrapping_sub(ONES.wrapping_mul(u64::from(n))) & !v & HIGHS != 0
}

#[inline(always)]
fn word(chunk: &[u8]) -> u64 {
    // Every caller passes 8 bytes; `try_from` rather than `copy_from_slice`,
    // whose length check is a panic path in the firmware.
    <[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes)
}

/// Whether the word has a `"`, a `\` or a byte below 0x20.
#[inline(always)]
fn json_special(v: u64) -> bool {
    // The three tests of `has_less_than` and `has_zero`, their high bits
    // or-ed before the one branch.
    let q = v ^ (ONES * u64::from(b'"'));
    let b = v ^ (ONES * u64::from(b'\\'));
    let lt = v.wrapping_sub(ONES * 0x20);
    let zq = q.wrapping_sub(ONES) & !q;
    let zb = b.wrapping_sub(ONES) & !b;
    (lt | zq | zb) & !v & HIGHS != 0
}

/// Length of the prefix of `s` in which no byte is `"`, `\` or below 0x20:
/// bytes a JSON string can hold as they are. It is `s.len()` when all of
/// `s` is plain (the common case, a string written in one piece), else a
/// multiple of 8 at or before the first special byte.
#[inline]
pub(crate) fn json_plain_prefix(s: &[u8]) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if let Some(last) = s.last_chunk::<16>() {
        return sse_prefix(s, last, crate::simd::json_special);
    }
    // Shorter than 16 bytes: at most two words cover it (most attribute
    // values and payload keys), so no loop and no byte-by-byte tail.
    #[cfg(target_pointer_width = "64")]
    if s.len() <= 16 {
        return if short_any(s, json_special, sse_json_special) {
            0
        } else {
            s.len()
        };
    }
    let mut n = 0;
    let mut chunks = s.chunks_exact(8);
    for chunk in chunks.by_ref() {
        if json_special(word(chunk)) {
            return n;
        }
        n += 8;
    }
    let rest = chunks.remainder();
    if rest.is_empty() {
        return n;
    }
    // The tail as one word: the last 8 bytes (overlapping bytes already
    // checked), or for a shorter string its bytes over plain padding (built
    // with shifts: a loop that copied them into an array became a call to
    // `memcpy`). On a 32-bit device, where 64-bit shifts are calls, a byte
    // loop is 200 bytes smaller.
    #[cfg(target_pointer_width = "64")]
    let special = json_special(match s.len().checked_sub(8).and_then(|at| s.get(at..)) {
        Some(last) => word(last),
        None => rest
            .iter()
            .enumerate()
            .fold(ONES * u64::from(b'a'), |v, (i, &b)| {
                v & !(0xff << (8 * i)) | u64::from(b) << (8 * i)
            }),
    });
    #[cfg(not(target_pointer_width = "64"))]
    let special = rest.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
    if special { n } else { s.len() }
}

/// Whether `s`, at most 16 bytes, is a JSON string's contents as they are
/// (no `"`, `\` or byte below 0x20); `false` for longer strings. Small
/// enough to inline where strings are written.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
pub(crate) fn short_json_plain(s: &[u8]) -> bool {
    s.len() <= 16 && !short_any(s, json_special, sse_json_special)
}

/// Whether `test` holds for a word made of bytes of `s` (at most 16 long):
/// the first and last 8 bytes; for fewer than 8, the first and last 4, or
/// the first, middle and last byte, repeated to fill the word. Every byte
/// of `s` is in a word tested, and only bytes of `s` are, so a test for
/// "some byte is special" answers for `s` exactly.
#[cfg(all(
    target_pointer_width = "64",
    not(all(target_arch = "x86_64", target_feature = "sse2"))
))]
#[inline(always)]
fn short_any(s: &[u8], test: impl Fn(u64) -> bool, _: impl Fn(&[u8; 16]) -> u32) -> bool {
    let n = s.len();
    if let (Some(a), Some(b)) = (s.first_chunk::<8>(), s.last_chunk::<8>()) {
        return test(u64::from_le_bytes(*a)) || test(u64::from_le_bytes(*b));
    }
    if let (Some(a), Some(b)) = (s.first_chunk::<4>(), s.last_chunk::<4>()) {
        return test(u64::from(u32::from_le_bytes(*a)) | u64::from(u32::from_le_bytes(*b)) << 32);
    }
    match (s.first(), s.get(n / 2), s.last()) {
        (Some(&a), Some(&m), Some(&z)) => test(u64::from_le_bytes([a, m, z, a, a, a, a, a])),
        _ => false,
    }
}

/// The SSE2 tests [`short_any`] takes on x86-64. Other 64-bit targets
/// use the word tests and never call these; their byte loops only say what
/// the SSE2 masks mean. (Two tidier shapes without them, a two-word helper
/// shared with [`short_chunk`] and one `cfg`'d wrapper per test, changed
/// what the inliner kept in line in the encoder: +5.5 % and +48 %
/// instructions in build + encode, callgrind.)
#[cfg(target_pointer_width = "64")]
#[inline(always)]
fn sse_json_special(c: &[u8; 16]) -> u32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    return crate::simd::json_special(c);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    return u32::from(c.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\'));
}

/// See [`sse_json_special`]: the bytes outside 0x20..=0x7e.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
fn sse_not_printable(c: &[u8; 16]) -> u32 {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    return crate::simd::not_printable(c, true);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    return u32::from(c.iter().any(|&b| !(0x20..0x7f).contains(&b)));
}

/// [`short_any`] on x86-64: the same bytes of `s` (at most 16 long), in
/// one 16-byte chunk given to the SSE2 form of the test. Two word tests
/// and their `||` were about 25 instructions; one SSE2 test is about 10,
/// and the encoder asks it of every key and short value.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn short_any(s: &[u8], _: impl Fn(u64) -> bool, test: impl Fn(&[u8; 16]) -> u32) -> bool {
    short_chunk(s).is_some_and(|c| test(&c) != 0)
}

/// The bytes of `s` (1 to 16 long) in one 16-byte chunk: the first and
/// last 8; for fewer than 8, the first and last 4, or the first, middle
/// and last byte, repeated. Every byte of the chunk is a byte of `s` and
/// every byte of `s` is in it, so "some byte is flagged" and "every byte
/// is allowed" answer for `s` exactly. `None` for an empty or longer `s`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
pub(crate) fn short_chunk(s: &[u8]) -> Option<[u8; 16]> {
    let halves = |a: u64, b: u64| {
        let mut c = [0u8; 16];
        let (lo, hi) = c.split_at_mut(8);
        lo.copy_from_slice(&a.to_le_bytes());
        hi.copy_from_slice(&b.to_le_bytes());
        c
    };
    let n = s.len();
    if n > 16 {
        return None;
    }
    Some(
        if let (Some(a), Some(b)) = (s.first_chunk::<8>(), s.last_chunk::<8>()) {
            halves(u64::from_le_bytes(*a), u64::from_le_bytes(*b))
        } else if let (Some(a), Some(b)) = (s.first_chunk::<4>(), s.last_chunk::<4>()) {
            let w = u64::from(u32::from_le_bytes(*a)) | u64::from(u32::from_le_bytes(*b)) << 32;
            halves(w, w)
        } else if let (Some(&a), Some(&m), Some(&z)) = (s.first(), s.get(n / 2), s.last()) {
            let w = u64::from_le_bytes([a, m, z, a, a, a, a, a]);
            halves(w, w)
        } else {
            return None;
        },
    )
}

/// Whether the word has a byte outside printable ASCII: below 0x20, or at
/// or above 0x7f.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
fn not_printable_word(v: u64) -> bool {
    has_less_than(v, 0x20) || (v | v.wrapping_add(ONES)) & HIGHS != 0
}

/// The fast path of the `String` check: `None` when all of `s` is
/// printable ASCII (0x20..=0x7e), else where the check must look closer,
/// an offset at or before the first byte that is not (everything before
/// it is printable ASCII, so it is a char boundary).
#[inline]
pub(crate) fn printable_until(s: &[u8]) -> Option<usize> {
    #[cfg(target_pointer_width = "64")]
    if s.len() <= 16 {
        return short_any(s, not_printable_word, sse_not_printable).then_some(0);
    }
    // 16 bytes or more on x86-64: the SSE2 scan covers the tail too (its
    // last 16 bytes), so no byte loop over it.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if let Some(last) = s.last_chunk::<16>() {
        let n = sse_prefix(s, last, |c| crate::simd::not_printable(c, true));
        return (n != s.len()).then_some(n);
    }
    let start = printable_prefix(s, true);
    let rest_printable = s
        .get(start..)
        .is_some_and(|rest| rest.iter().all(|&b| (0x20..0x7f).contains(&b)));
    (!rest_printable).then_some(start)
}

/// Whether every byte of `s` is below 0x7f: ASCII with no DEL. No early
/// exit, so the loop is branch-free (the parsers ask it once per input).
#[inline]
pub(crate) fn all_below_del(s: &[u8]) -> bool {
    let mut chunks = s.chunks_exact(8);
    let mut acc = 0u64;
    for chunk in chunks.by_ref() {
        let v = word(chunk);
        // A byte >= 0x7f sets its high bit in v or in v + 1 (below 0x80
        // everywhere, the + 1 carries into no other byte).
        acc |= v | v.wrapping_add(ONES);
    }
    acc & HIGHS == 0 && chunks.remainder().iter().all(|&b| b < 0x7f)
}

/// The SSE2 form of the prefix scans for `s` of 16 bytes or more (`last`:
/// its last 16): `s.len()` when `stop` flags no byte, else the first
/// flagged byte's offset rounded down to a multiple of 8.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
pub(crate) fn sse_prefix(s: &[u8], last: &[u8; 16], stop: impl Fn(&[u8; 16]) -> u32) -> usize {
    match crate::simd::first_flagged(s, 0, &stop) {
        Ok(at) => return at / 8 * 8,
        Err(at) if at == s.len() => return at,
        Err(_) => {}
    }
    // The tail as the last 16 bytes (the overlapping ones already passed).
    match stop(last) {
        0 => s.len(),
        m => (s.len() - 16 + m.trailing_zeros() as usize) / 8 * 8,
    }
}

/// Length of the prefix of `s` (a multiple of 8) made of printable ASCII
/// (0x21..=0x7e when `space` is false, 0x20..=0x7e when true).
#[inline]
pub(crate) fn printable_prefix(s: &[u8], space: bool) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if let Some(last) = s.last_chunk::<16>() {
        let n = sse_prefix(s, last, |c| crate::simd::not_printable(c, space));
        // Whole words only, as below (the callers check the rest).
        return if n == s.len() { n / 8 * 8 } else { n };
    }
    let low = if space { 0x20 } else { 0x21 };
    let mut n = 0;
    for chunk in s.chunks_exact(8) {
        let v = word(chunk);
        // Any byte >= 0x7f sets its high bit in v or in v + 1.
        if has_less_than(v, low) || (v | v.wrapping_add(ONES)) & HIGHS != 0 {
            break;
        }
        n += 8;
    }
    n
}

/// Length of the prefix of `s` (a multiple of 8) that an HTTP header value
/// carries as it is: printable ASCII 0x21..=0x7e other than `"` and `%`
/// (what `format::binary::needs_percent` leaves alone).
#[inline]
pub(crate) fn header_plain_prefix(s: &[u8]) -> usize {
    let mut n = 0;
    for chunk in s.chunks_exact(8) {
        let v = word(chunk);
        if has_less_than(v, 0x21)
            || (v | v.wrapping_add(ONES)) & HIGHS != 0
            || has_zero(v ^ (ONES * u64::from(b'"')))
            || has_zero(v ^ (ONES * u64::from(b'%')))
        {
            break;
        }
        n += 8;
    }
    n
}

/// Whether `s` has no byte at or below 0x20 (no JSON whitespace, no control).
#[inline]
pub(crate) fn no_space_or_control(s: &[u8]) -> bool {
    let mut chunks = s.chunks_exact(8);
    for chunk in chunks.by_ref() {
        if has_less_than(word(chunk), 0x21) {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| b > 0x20)
}

/// Whether every byte of the word is `a`–`z` or `0`–`9`.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
fn lower_alnum(v: u64) -> bool {
    // Each byte with its high bit cleared is at most 0x7f, and no constant
    // below is above 0x50, so no sum carries into the next byte: the high
    // bit of each sum says on which side of a bound its byte lies.
    let low = v & !HIGHS;
    let above_z = low.wrapping_add(ONES * u64::from(0x7f - b'z'));
    let from_a = low.wrapping_add(ONES * u64::from(0x80 - b'a'));
    let above_9 = low.wrapping_add(ONES * u64::from(0x7f - b'9'));
    let from_0 = low.wrapping_add(ONES * u64::from(0x80 - b'0'));
    ((from_a & !above_z) | (from_0 & !above_9)) & !v & HIGHS == HIGHS
}

/// Whether every byte of `s` is `a`–`z` or `0`–`9` (the attribute naming
/// rule; `true` for an empty `s`). On 64-bit targets eight bytes at a time,
/// the tail as one overlapping word; on 32-bit devices a byte loop, which is
/// smaller there.
#[inline]
pub(crate) fn all_lower_alnum(s: &[u8]) -> bool {
    let byte = |b: &u8| matches!(b, b'a'..=b'z' | b'0'..=b'9');
    #[cfg(target_pointer_width = "64")]
    {
        let mut chunks = s.chunks_exact(8);
        for chunk in chunks.by_ref() {
            if !lower_alnum(word(chunk)) {
                return false;
            }
        }
        let rest = chunks.remainder();
        match s.len().checked_sub(8).and_then(|at| s.get(at..)) {
            _ if rest.is_empty() => true,
            Some(last) => lower_alnum(word(last)),
            None => rest.iter().all(byte),
        }
    }
    #[cfg(not(target_pointer_width = "64"))]
    s.iter().all(byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_below_del_finds_every_high_byte_at_every_position() {
        for len in 1..24 {
            for at in 0..len {
                for b in 0x7e..=0xffu8 {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    assert_eq!(all_below_del(&s), b < 0x7f, "{b:#x} at {at} of {len}");
                    // Next to a byte that would carry (0xff + 1) and to the
                    // largest plain byte.
                    if at + 1 < len {
                        s[at + 1] = 0x7e;
                        assert_eq!(all_below_del(&s), b < 0x7f, "{b:#x} at {at} of {len}");
                    }
                }
            }
        }
        assert!(all_below_del(b""));
    }

    #[test]
    fn short_strings_are_covered_at_every_position() {
        for len in 1..=33 {
            for at in 0..len {
                for b in [
                    0x00, 0x1f, 0x20, 0x21, b'"', b'\\', 0x5b, 0x7e, 0x7f, 0x80, 0xff,
                ] {
                    let mut s = vec![b'k'; len];
                    s[at] = b;
                    let special = b == b'"' || b == b'\\' || b < 0x20;
                    let got = json_plain_prefix(&s);
                    if special {
                        assert!(
                            got.is_multiple_of(8) && got <= at,
                            "{b:#x} at {at} of {len}: {got}"
                        );
                    } else {
                        assert_eq!(got, len, "{b:#x} at {at} of {len}");
                    }
                    assert_printable_until(&s);
                }
            }
        }
        assert_eq!(json_plain_prefix(b""), 0);
        assert_eq!(printable_until(b""), None);
    }

    /// `printable_until`'s contract: `None` exactly when all of `s` is
    /// printable ASCII, else an offset at or before the first other byte.
    fn assert_printable_until(s: &[u8]) {
        let first = s.iter().position(|b| !(0x20..0x7f).contains(b));
        match (printable_until(s), first) {
            (None, None) => {}
            (Some(at), Some(first)) => assert!(at <= first, "{at} > {first} in {s:?}"),
            (got, _) => panic!("{got:?} for {s:?}"),
        }
    }

    #[test]
    fn scans_agree_with_byte_loops() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..64 {
            for _ in 0..200 {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // Mostly printable, sometimes special.
                        match seed % 23 {
                            0 => b'"',
                            1 => b'\\',
                            2 => (seed >> 8) as u8 % 0x20,
                            3 => 0x7f,
                            6 => b'%',
                            4 => 0x80 | (seed >> 8) as u8,
                            5 => b' ',
                            _ => 0x21 + (seed >> 8) as u8 % 0x5e,
                        }
                    })
                    .collect();
                let plain = s
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                    .unwrap_or(s.len());
                // The contract: all of `s` when it is plain, else a
                // multiple of 8 at or before the first special byte.
                let got = json_plain_prefix(&s);
                if plain == s.len() {
                    assert_eq!(got, plain, "{s:?}");
                } else {
                    assert!(got.is_multiple_of(8) && got <= plain, "{got} for {s:?}");
                }
                assert_eq!(all_below_del(&s), s.iter().all(|&b| b < 0x7f), "{s:?}");
                assert_printable_until(&s);
                for space in [false, true] {
                    let lo = if space { 0x20 } else { 0x21 };
                    let p = s
                        .iter()
                        .position(|&b| b < lo || b >= 0x7f)
                        .unwrap_or(s.len());
                    assert_eq!(printable_prefix(&s, space), p / 8 * 8, "{s:?}");
                }
                assert_eq!(no_space_or_control(&s), s.iter().all(|&b| b > 0x20));
                let h = s
                    .iter()
                    .position(|&b| b <= 0x20 || b >= 0x7f || b == b'"' || b == b'%')
                    .unwrap_or(s.len());
                assert_eq!(header_plain_prefix(&s), h / 8 * 8, "{s:?}");
            }
        }
    }

    #[test]
    fn lower_alnum_agrees_with_a_byte_loop() {
        let byte = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        // Every byte value at every position of names of every length to
        // 24, the rest of the name valid: each bound of both ranges, the
        // high bit, and the overlapping tail word.
        for len in 0..24usize {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut s: Vec<u8> = (0..len).map(|i| b"az09mq5"[i % 7]).collect();
                    s[at] = b;
                    assert_eq!(all_lower_alnum(&s), byte(b), "{s:?}");
                }
            }
            let s: Vec<u8> = (0..len).map(|i| b"z0a9"[i % 4]).collect();
            assert!(all_lower_alnum(&s), "{s:?}");
        }
    }
}
