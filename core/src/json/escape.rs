//! JSON string escaping: scan for the bytes that need it, copy whole runs between them.

use crate::io::{WriteError, write_all};

/// Bytes [`ESCAPE`] has an entry for: every byte on 64-bit targets (no
/// bound to check in the scans' byte loops), the bytes up to `\\` on the
/// others (the last byte that needs escaping; every byte after it is copied
/// as is): 93 bytes of a device's flash rather than 256.
const ESCAPE_LEN: usize = if cfg!(target_pointer_width = "64") {
    256
} else {
    b'\\' as usize + 1
};

/// For each byte: 0 = copy as is, otherwise the escape letter (`u` =
/// `\u00XX`). Read it through [`escape`].
static ESCAPE: [u8; ESCAPE_LEN] = escape_table();

/// The escape letters of the first `N` bytes.
const fn escape_table<const N: usize>() -> [u8; N] {
    let mut t = [0u8; N];
    let mut i = 0;
    while i < N {
        t[i] = match i as u8 {
            0x08 => b'b',
            0x09 => b't',
            0x0a => b'n',
            0x0c => b'f',
            0x0d => b'r',
            0..0x20 => b'u',
            b'"' => b'"',
            b'\\' => b'\\',
            _ => 0,
        };
        i += 1;
    }
    t
}

/// The escape letter of `b` (see [`ESCAPE`]), 0 for a byte copied as is.
/// The lexer's string scan reads it too (non-zero: a byte a string cannot
/// hold as is).
#[inline(always)]
pub(crate) fn escape(b: u8) -> u8 {
    lookup(&ESCAPE, b)
}

#[inline(always)]
fn lookup(table: &[u8], b: u8) -> u8 {
    match table.get(usize::from(b)) {
        Some(&e) => e,
        None => 0,
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `s` as a JSON string, quotes included.
#[inline]
pub(crate) fn write_str<W: embedded_io::Write + ?Sized>(
    w: &mut W,
    s: &str,
) -> Result<(), WriteError<W::Error>> {
    write_all(w, b"\"")?;
    write_str_body(w, s.as_bytes())?;
    write_all(w, b"\"")
}

/// Writes the escaped contents of a JSON string, without quotes.
///
/// Strings of up to 16 bytes with nothing to escape, most keys and
/// attribute values, are checked and written inline (64-bit targets): the
/// call into the general case cost more than its work for them. Devices
/// (32-bit) leave inlining to the compiler, as before: smaller code.
#[cfg_attr(target_pointer_width = "64", inline(always))]
pub(crate) fn write_str_body<W: embedded_io::Write + ?Sized>(
    w: &mut W,
    bytes: &[u8],
) -> Result<(), WriteError<W::Error>> {
    #[cfg(target_pointer_width = "64")]
    if crate::swar::short_json_plain(bytes) {
        return write_all(w, bytes);
    }
    write_str_body_any(w, bytes)
}

/// Whether `v` is a JSON string's contents as it is (nothing to escape):
/// short strings in one or two words, longer ones by the word scan.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
pub(crate) fn is_json_plain(v: &[u8]) -> bool {
    if v.len() <= 16 {
        crate::swar::short_json_plain(v)
    } else {
        crate::swar::json_plain_prefix(v) == v.len()
    }
}

/// [`write_str_body`] for any string.
#[cfg_attr(target_pointer_width = "64", inline(never))]
fn write_str_body_any<W: embedded_io::Write + ?Sized>(
    w: &mut W,
    bytes: &[u8],
) -> Result<(), WriteError<W::Error>> {
    let plain = crate::swar::json_plain_prefix(bytes);
    if plain == bytes.len() {
        return write_all(w, bytes);
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(plain) {
        let esc = escape(b);
        if esc == 0 {
            continue;
        }
        if start < i {
            write_all(w, bytes.get(start..i).unwrap_or(&[]))?;
        }
        if esc == b'u' {
            let seq = [
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ];
            write_all(w, &seq)?;
        } else {
            write_all(w, &[b'\\', esc])?;
        }
        start = i + 1;
    }
    if start < bytes.len() {
        write_all(w, bytes.get(start..).unwrap_or(&[]))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut v: Vec<u8> = Vec::new();
        write_str(&mut v, s).unwrap();
        String::from_utf8(v).unwrap()
    }

    /// The device's short table (up to `\\`) escapes every byte as the
    /// whole one does, whichever of the two this target built.
    #[test]
    fn short_table_agrees_with_the_whole_one() {
        let (short, whole) = (
            escape_table::<{ b'\\' as usize + 1 }>(),
            escape_table::<256>(),
        );
        for b in 0..=255u8 {
            assert_eq!(lookup(&short, b), lookup(&whole, b), "{b:#04x}");
            assert_eq!(escape(b), lookup(&whole, b), "{b:#04x}");
            let needs = b < 0x20 || b == b'"' || b == b'\\';
            assert_eq!(escape(b) != 0, needs, "{b:#04x}");
        }
    }

    #[test]
    fn escapes_like_serde_json() {
        for s in [
            "",
            "plain",
            "q\"b\\s",
            "\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}",
            "é€😀",
            "<much wow=\"xml\"/>",
        ] {
            assert_eq!(esc(s), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    /// The inline path for short plain strings and the general one agree
    /// with serde_json for every length around the 16-byte cut and every
    /// kind of byte at every position.
    #[test]
    fn every_short_length_and_position_escapes_like_serde_json() {
        for len in 0..=34 {
            for at in 0..len.max(1) {
                for special in ["\"", "\\", "\n", "\u{1}", "\u{1f}", " ", "~", "\u{7f}", "é"] {
                    let mut s: String = "k".repeat(len);
                    if len > 0 {
                        s.replace_range(at..at + 1, special);
                    }
                    assert_eq!(esc(&s), serde_json::to_string(&s).unwrap(), "{s:?}");
                }
            }
        }
    }
}
