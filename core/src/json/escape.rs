//! JSON string escaping: scan for the bytes that need it, copy whole runs between them.

use crate::io::{WriteError, write_all};

/// For each byte: 0 = copy as is, otherwise the escape letter (`u` = `\u00XX`).
/// The lexer's string scan reads it too (non-zero: a byte a string cannot
/// hold as is).
pub(crate) static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

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
        let esc = ESCAPE[b as usize];
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
