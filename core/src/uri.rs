//! Validators for URIs (RFC 3986) and media types (RFC 2045 / RFC 2046).
//!
//! CloudEvents types `URI` and `URI-reference` (spec "Type System") and the
//! `datacontenttype` attribute are strings with a grammar; these functions
//! check that grammar exactly, with hand-written iterative scanners (no
//! regular expressions, no recursion, no allocation). Only ASCII is accepted:
//! IRIs (RFC 3987) are not URIs.
//!
//! ```
//! use ossa_events_core::uri;
//!
//! assert!(uri::is_uri_reference("/sensors/tn-1234567/alerts"));
//! assert!(uri::is_absolute_uri("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"));
//! assert!(!uri::is_absolute_uri("/relative"));
//! assert!(uri::is_media_type("text/plain; charset=\"utf-8\""));
//! assert!(uri::is_json_media_type("application/cloudevents+json"));
//! ```

/// Character classes of RFC 3986, as bit flags in [`CLASS`].
const UNRESERVED: u8 = 1;
/// `sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="`
const SUB_DELIM: u8 = 2;
/// `":"`, `"@"`: the rest of `pchar`.
const COLON_AT: u8 = 4;
/// `"/"`, `"?"`: the rest of `query` / `fragment`.
const SLASH_QMARK: u8 = 8;
/// `HEXDIG`.
const HEX: u8 = 16;
/// RFC 2045 `token` characters.
const TOKEN: u8 = 32;

/// Bytes [`CLASS`] has flags for: every byte on 64-bit targets (no bound
/// to check per byte: the URI scans of the build + encode path cost 0.8 %
/// more with one), the ASCII bytes on the others (devices: 128 bytes of
/// flash saved). Bytes past the table have no flags.
const CLASS_LEN: usize = if cfg!(target_pointer_width = "64") {
    256
} else {
    128
};

/// Per-byte class flags (0 for every non-ASCII byte).
const CLASS: [u8; CLASS_LEN] = {
    let mut t = [0u8; CLASS_LEN];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        let mut f = 0;
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            f |= UNRESERVED;
        }
        if matches!(
            b,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
        ) {
            f |= SUB_DELIM;
        }
        if matches!(b, b':' | b'@') {
            f |= COLON_AT;
        }
        if matches!(b, b'/' | b'?') {
            f |= SLASH_QMARK;
        }
        if b.is_ascii_hexdigit() {
            f |= HEX;
        }
        // token: CHAR except SPACE, CTLs and tspecials ()<>@,;:\"/[]?=
        if b > b' '
            && b < 0x7f
            && !matches!(
                b,
                b'(' | b')'
                    | b'<'
                    | b'>'
                    | b'@'
                    | b','
                    | b';'
                    | b':'
                    | b'\\'
                    | b'"'
                    | b'/'
                    | b'['
                    | b']'
                    | b'?'
                    | b'='
            )
        {
            f |= TOKEN;
        }
        t[c] = f;
        c += 1;
    }
    t
};

/// `pchar = unreserved / pct-encoded / sub-delims / ":" / "@"`.
const PCHAR: u8 = UNRESERVED | SUB_DELIM | COLON_AT;
/// `query = fragment = *( pchar / "/" / "?" )`.
const QCHAR: u8 = PCHAR | SLASH_QMARK;
/// `userinfo = *( unreserved / pct-encoded / sub-delims / ":" )`; the `@`
/// never reaches the check because the userinfo ends at the first `@`.
const USERINFO: u8 = PCHAR;
/// `reg-name = *( unreserved / pct-encoded / sub-delims )`.
const REG_NAME: u8 = UNRESERVED | SUB_DELIM;

/// Class flags of `b`.
#[inline]
const fn class(b: u8) -> u8 {
    if (b as usize) < CLASS_LEN {
        CLASS[b as usize]
    } else {
        0
    }
}

// The grammar below is `const fn` (loops over slice patterns, no indexing
// that could panic), so a constant `emitter::Config` checks its `source` at
// compile time and a firmware does not carry this code.

/// Whether every byte of `s` is in `allowed` or part of a `pct-encoded`
/// triplet (`"%" HEXDIG HEXDIG`).
const fn all_in(s: &[u8], allowed: u8) -> bool {
    let mut rest = s;
    while let [b, tail @ ..] = rest {
        if class(*b) & allowed != 0 {
            rest = tail;
        } else if let [b'%', h, l, tail @ ..] = rest
            && class(*h) & class(*l) & HEX != 0
        {
            rest = tail;
        } else {
            return false;
        }
    }
    true
}

/// Whether every byte of `s` is an ASCII hex digit.
const fn all_hex(s: &[u8]) -> bool {
    let mut rest = s;
    while let [b, tail @ ..] = rest {
        if !b.is_ascii_hexdigit() {
            return false;
        }
        rest = tail;
    }
    true
}

/// Whether every byte of `s` is an ASCII digit.
const fn all_digits(s: &[u8]) -> bool {
    let mut rest = s;
    while let [b, tail @ ..] = rest {
        if !b.is_ascii_digit() {
            return false;
        }
        rest = tail;
    }
    true
}

/// Position of the first `c` in `s`.
const fn find(s: &[u8], c: u8) -> Option<usize> {
    let mut i = 0;
    let mut rest = s;
    while let [b, tail @ ..] = rest {
        if *b == c {
            return Some(i);
        }
        i += 1;
        rest = tail;
    }
    None
}

/// `s` split at `mid` (`mid` <= `s.len()`; else all of `s` and nothing).
const fn split(s: &[u8], mid: usize) -> (&[u8], &[u8]) {
    match s.split_at_checked(mid) {
        Some(parts) => parts,
        None => (s, &[]),
    }
}

/// Splits `s` at the first `c`: `(before, Some(after))` or `(s, None)`.
#[inline]
const fn split_once(s: &[u8], c: u8) -> (&[u8], Option<&[u8]>) {
    match find(s, c) {
        Some(i) => {
            let (before, at) = split(s, i);
            match at {
                [_, after @ ..] => (before, Some(after)),
                [] => (before, None),
            }
        }
        None => (s, None),
    }
}

/// Length of a `scheme` prefix (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`)
/// followed by `":"`, if `s` starts with one.
const fn scheme_len(s: &[u8]) -> Option<usize> {
    match s.first() {
        Some(b) if b.is_ascii_alphabetic() => {}
        _ => return None,
    }
    let mut n = 0;
    let mut rest = s;
    while let [b, tail @ ..] = rest {
        if !(b.is_ascii_alphanumeric() || matches!(*b, b'+' | b'-' | b'.')) {
            return if *b == b':' { Some(n) } else { None };
        }
        n += 1;
        rest = tail;
    }
    None
}

/// `dec-octet "." dec-octet "." dec-octet "." dec-octet` (no leading zeros).
const fn is_ipv4(s: &[u8]) -> bool {
    let mut parts = 0;
    let mut rest = s;
    loop {
        let (part, tail) = split_once(rest, b'.');
        parts += 1;
        let ok = match *part {
            [a] => a.is_ascii_digit(),
            [a, b] => a >= b'1' && a <= b'9' && b.is_ascii_digit(),
            [a, b, c] => {
                a.is_ascii_digit()
                    && b.is_ascii_digit()
                    && c.is_ascii_digit()
                    && a != b'0'
                    && (a < b'2' || (a == b'2' && (b < b'5' || (b == b'5' && c <= b'5'))))
            }
            _ => false,
        };
        if !ok || parts > 4 {
            return false;
        }
        match tail {
            Some(t) => rest = t,
            None => break,
        }
    }
    parts == 4
}

/// RFC 3986 `IPv6address` (all nine forms, including a trailing IPv4
/// `ls32`).
const fn is_ipv6(s: &[u8]) -> bool {
    let mut rest = s;
    let mut groups = 0u32;
    let mut elided = false;
    if let [b':', b':', r @ ..] = rest {
        elided = true;
        rest = r;
        if rest.is_empty() {
            return true;
        }
    }
    loop {
        let end = match find(rest, b':') {
            Some(i) => i,
            None => rest.len(),
        };
        let (group, tail) = split(rest, end);
        if tail.is_empty() && find(group, b'.').is_some() {
            if !is_ipv4(group) {
                return false;
            }
            groups += 2;
            break;
        }
        if group.is_empty() || group.len() > 4 || !all_hex(group) {
            return false;
        }
        groups += 1;
        match tail {
            [] => break,
            [b':', b':', r @ ..] => {
                if elided {
                    return false;
                }
                elided = true;
                rest = r;
                if rest.is_empty() {
                    break;
                }
            }
            [b':', r @ ..] if !r.is_empty() => rest = r,
            _ => return false,
        }
        if groups > 8 {
            return false;
        }
    }
    if elided { groups <= 7 } else { groups == 8 }
}

/// `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`.
const fn is_ipvfuture(s: &[u8]) -> bool {
    let [b'v' | b'V', rest @ ..] = s else {
        return false;
    };
    let (ver, tail) = split_once(rest, b'.');
    let Some(tail) = tail else {
        return false;
    };
    if ver.is_empty() || !all_hex(ver) || tail.is_empty() {
        return false;
    }
    let mut rest = tail;
    while let [b, t @ ..] = rest {
        if class(*b) & (UNRESERVED | SUB_DELIM) == 0 && *b != b':' {
            return false;
        }
        rest = t;
    }
    true
}

/// `authority = [ userinfo "@" ] host [ ":" port ]`.
const fn is_authority(a: &[u8]) -> bool {
    let hostport = match split_once(a, b'@') {
        (userinfo, Some(hostport)) => {
            if !all_in(userinfo, USERINFO) {
                return false;
            }
            hostport
        }
        (hostport, None) => hostport,
    };
    let port = if let [b'[', lit @ ..] = hostport {
        // IP-literal = "[" ( IPv6address / IPvFuture ) "]"
        let (inner, after) = split_once(lit, b']');
        let Some(after) = after else {
            return false;
        };
        if !(is_ipv6(inner) || is_ipvfuture(inner)) {
            return false;
        }
        match after {
            [] => return true,
            [b':', port @ ..] => port,
            _ => return false,
        }
    } else {
        // IPv4address is a subset of reg-name.
        let (host, port) = split_once(hostport, b':');
        if !all_in(host, REG_NAME) {
            return false;
        }
        match port {
            Some(p) => p,
            None => return true,
        }
    };
    all_digits(port)
}

/// Checks a URI (`has_scheme`) or relative reference after any scheme:
/// `hier-part` / `relative-part`, then `[ "?" query ] [ "#" fragment ]`.
const fn is_tail(s: &[u8], has_scheme: bool) -> bool {
    let (s, fragment) = split_once(s, b'#');
    if let Some(f) = fragment
        && !all_in(f, QCHAR)
    {
        return false;
    }
    let (s, query) = split_once(s, b'?');
    if let Some(q) = query
        && !all_in(q, QCHAR)
    {
        return false;
    }
    if let [b'/', b'/', rest @ ..] = s {
        // "//" authority path-abempty
        let end = match find(rest, b'/') {
            Some(i) => i,
            None => rest.len(),
        };
        let (authority, path) = split(rest, end);
        return is_authority(authority) && all_in(path, PCHAR | SLASH_QMARK);
    }
    // path-absolute / path-rootless / path-noscheme / path-empty. The `?`
    // of SLASH_QMARK cannot occur here: the query was split off above.
    if !has_scheme && !matches!(s, [b'/', ..]) {
        // path-noscheme: the first segment has no ":".
        let end = match find(s, b'/') {
            Some(i) => i,
            None => s.len(),
        };
        if find(split(s, end).0, b':').is_some() {
            return false;
        }
    }
    all_in(s, PCHAR | SLASH_QMARK)
}

/// Whether `s` is a non-empty RFC 3986 `URI-reference` (§4.1): a URI or a
/// relative reference, such as `https://github.com/cloudevents`,
/// `urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66` or
/// `/cloudevents/spec/pull/123`.
///
/// The full grammar is checked (scheme, authority with userinfo, IP literals
/// including IPv6 and IPvFuture, reg-name and port, the path forms, query and
/// fragment, and `%` followed by two hex digits). The empty string, which
/// RFC 3986 allows, is rejected because CloudEvents requires a non-empty
/// `source` (an extension of type URI-reference may be empty:
/// [`ExtValue::validate`](crate::ExtValue::validate) allows it); any
/// non-ASCII byte is rejected.
///
/// ```
/// use ossa_events_core::uri::is_uri_reference;
/// assert!(is_uri_reference("https://github.com/cloudevents"));
/// assert!(is_uri_reference("/agents/planner"));
/// assert!(is_uri_reference("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"));
/// assert!(!is_uri_reference(""));            // CloudEvents needs a value
/// assert!(!is_uri_reference("/a b"));        // space must be %20
/// assert!(!is_uri_reference("/caf\u{e9}"));  // non-ASCII
/// ```
pub const fn is_uri_reference(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    // Fast path for the common `/agents/x`, `a/b-c_d.e~f`: only unreserved
    // characters and `/`, not starting with `//` (an authority) — always a
    // path-absolute, path-noscheme or path-rootless relative reference.
    if !matches!(b, [b'/', b'/', ..]) {
        let mut rest = b;
        let mut simple = true;
        while let [c, tail @ ..] = rest {
            // One table load per byte (alphanumerics and `-._~` are
            // `unreserved`): the chain of range tests cost ~13 instructions
            // a byte.
            if class(*c) & UNRESERVED == 0 && *c != b'/' {
                simple = false;
                break;
            }
            rest = tail;
        }
        if simple {
            return true;
        }
    }
    match scheme_len(b) {
        // A leading `scheme ":"` can only be a URI: in a relative-ref that
        // ":" would fall into the first path segment, which path-noscheme
        // forbids.
        Some(n) => match b.split_at_checked(n + 1) {
            Some((_, t)) => is_tail(t, true),
            None => false,
        },
        None => is_tail(b, false),
    }
}

/// [`is_uri_reference`] at run time: on x86-64 its fast path (only
/// `unreserved` characters and `/`, not starting with `//`) is asked of 16
/// bytes at a time with SSE2 rather than a byte at a time (~10
/// instructions rather than ~120 for `ossa/my-agent`); anything else goes
/// to the full grammar.
#[inline]
pub(crate) fn is_uri_reference_rt(s: &str) -> bool {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if simple_path(s.as_bytes()) {
        return true;
    }
    is_uri_reference(s)
}

/// Whether `b` is non-empty, does not start with `//` and has only
/// `unreserved` characters and `/`: a relative reference that is all path.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn simple_path(b: &[u8]) -> bool {
    if matches!(b, [b'/', b'/', ..]) {
        return false;
    }
    if let Some(c) = crate::swar::short_chunk(b) {
        return crate::simd::not_path_simple(&c) == 0;
    }
    b.last_chunk::<16>().is_some_and(|last| {
        crate::swar::sse_prefix(b, last, crate::simd::not_path_simple) == b.len()
    })
}

/// Whether `s` is an RFC 3986 §4.3 `absolute-URI`:
/// `scheme ":" hier-part [ "?" query ]`, e.g. `http://example.com/schema` or
/// `urn:x:y`: the CloudEvents type `URI` ("Absolute uniform resource
/// identifier", spec "Type System").
///
/// The scheme is required and a fragment (`#…`) is not allowed: a `#`
/// anywhere rejects the value, since the grammar has no other place for it.
/// Use [`is_uri_with_fragment`] to tell that case apart for an error message.
///
/// ```
/// use ossa_events_core::uri::is_absolute_uri;
/// assert!(is_absolute_uri("https://example.com/schema.json?v=1"));
/// assert!(is_absolute_uri("urn:x:y"));
/// assert!(!is_absolute_uri("/schemas/v1")); // no scheme
/// assert!(!is_absolute_uri("https://example.com/schema.json#v1")); // fragment
/// ```
pub fn is_absolute_uri(s: &str) -> bool {
    let b = s.as_bytes();
    if b.contains(&b'#') {
        return false;
    }
    match scheme_len(b) {
        Some(n) => b.get(n + 1..).is_some_and(|t| is_tail(t, true)),
        None => false,
    }
}

/// Whether `s` is an RFC 3986 `URI` (§3) that has a fragment:
/// `scheme ":" hier-part [ "?" query ] "#" fragment`. Such a value is a valid
/// URI but not an `absolute-URI` ([`is_absolute_uri`]), so it is not a value
/// of the CloudEvents type `URI`.
///
/// ```
/// use ossa_events_core::uri::is_uri_with_fragment;
/// assert!(is_uri_with_fragment("https://example.com/schema.json#v1"));
/// assert!(is_uri_with_fragment("http:#//example.com"));
/// assert!(!is_uri_with_fragment("https://example.com/schema.json"));
/// assert!(!is_uri_with_fragment("/schema.json#v1")); // no scheme
/// ```
pub fn is_uri_with_fragment(s: &str) -> bool {
    let b = s.as_bytes();
    b.contains(&b'#')
        && match scheme_len(b) {
            Some(n) => b.get(n + 1..).is_some_and(|t| is_tail(t, true)),
            None => false,
        }
}

/// The rule a value of the CloudEvents type `URI` breaks, if any:
/// [`Rule::UriFragment`] for a URI with a fragment, else
/// [`Rule::NotAbsoluteUri`].
///
/// [`Rule::UriFragment`]: crate::Rule::UriFragment
/// [`Rule::NotAbsoluteUri`]: crate::Rule::NotAbsoluteUri
pub(crate) fn absolute_uri_rule(s: &str) -> Option<crate::Rule> {
    if is_absolute_uri(s) {
        None
    } else if is_uri_with_fragment(s) {
        Some(crate::Rule::UriFragment)
    } else {
        Some(crate::Rule::NotAbsoluteUri)
    }
}

/// The rule a `datacontenttype` value breaks, if any: [`Rule::Empty`];
/// [`Rule::InvalidCharacter`] for a tab (a media type may have one around
/// `;`, a CloudEvents String may not: it is a control character);
/// [`Rule::MediaTypeWhitespace`] for a media type with spaces around it; else
/// [`Rule::NotMediaType`].
///
/// [`Rule::Empty`]: crate::Rule::Empty
/// [`Rule::InvalidCharacter`]: crate::Rule::InvalidCharacter
/// [`Rule::MediaTypeWhitespace`]: crate::Rule::MediaTypeWhitespace
/// [`Rule::NotMediaType`]: crate::Rule::NotMediaType
pub(crate) fn content_type_rule(s: &str) -> Option<crate::Rule> {
    // What nearly every event carries: a valid media type, no grammar walk
    // (~230 instructions per parsed event).
    if s == "application/json" {
        return None;
    }
    if s.is_empty() {
        Some(crate::Rule::Empty)
    } else if is_media_type(s) {
        // The grammar admits no control character other than HTAB.
        s.contains('\t').then_some(crate::Rule::InvalidCharacter)
    } else if !crate::attr::is_valid_string(s) {
        Some(crate::Rule::InvalidCharacter)
    } else if is_media_type(s.trim_matches(' ')) {
        Some(crate::Rule::MediaTypeWhitespace)
    } else {
        Some(crate::Rule::NotMediaType)
    }
}

/// Whether `b` is optional whitespace (SP / HTAB).
#[inline]
fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without leading and trailing SP / HTAB.
fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ows(b)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or(&[])
}

/// Index of the first byte at or after `i` that is not a `token` character.
#[inline]
fn token_end(s: &[u8], mut i: usize) -> usize {
    while s.get(i).is_some_and(|&b| class(b) & TOKEN != 0) {
        i += 1;
    }
    i
}

/// Index after the optional whitespace starting at `i`.
#[inline]
fn skip_ows(s: &[u8], mut i: usize) -> usize {
    while s.get(i).is_some_and(|&b| is_ows(b)) {
        i += 1;
    }
    i
}

/// A validated media type: `(type, subtype)`; calls `on_param(attribute,
/// raw value)` for each parameter (a quoted value keeps its quotes).
fn parse_media_type<'a>(
    s: &'a [u8],
    mut on_param: impl FnMut(&'a [u8], &'a [u8]),
) -> Option<(&'a [u8], &'a [u8])> {
    let t0 = 0;
    let t1 = token_end(s, t0);
    if t1 == t0 || s.get(t1) != Some(&b'/') {
        return None;
    }
    let s0 = t1 + 1;
    let s1 = token_end(s, s0);
    if s1 == s0 {
        return None;
    }
    let essence = (s.get(t0..t1)?, s.get(s0..s1)?);
    let mut i = s1;
    loop {
        // OWS is allowed only around the `;` (RFC 9110 §8.3.1), not at the end.
        let semi = skip_ows(s, i);
        match s.get(semi) {
            None if semi == i => return Some(essence),
            Some(b';') => {}
            _ => return None,
        }
        let a0 = skip_ows(s, semi + 1);
        let a1 = token_end(s, a0);
        if a1 == a0 || s.get(a1) != Some(&b'=') {
            return None;
        }
        let v0 = a1 + 1;
        let v1 = if s.get(v0) == Some(&b'"') {
            // quoted-string: qdtext = HTAB / SP / VCHAR except '"' and '\';
            // quoted-pair = "\" ( HTAB / SP / VCHAR ).
            let mut j = v0 + 1;
            loop {
                match s.get(j) {
                    Some(b'"') => break j + 1,
                    Some(b'\\') => match s.get(j + 1) {
                        Some(&c) if c == b'\t' || (b' '..0x7f).contains(&c) => j += 2,
                        _ => return None,
                    },
                    Some(&c) if c == b'\t' || (b' '..0x7f).contains(&c) => j += 1,
                    _ => return None,
                }
            }
        } else {
            token_end(s, v0)
        };
        if v1 == v0 {
            return None;
        }
        on_param(s.get(a0..a1)?, s.get(v0..v1)?);
        i = v1;
    }
}

/// Whether `s` is a media type per RFC 2045 §5.1 (as used by CloudEvents'
/// `datacontenttype`): `type "/" subtype *( OWS ";" OWS attribute "=" value )`
/// where type, subtype and attribute are `token`s and a value is a token or a
/// quoted-string with `\` escapes. Optional SP / HTAB is allowed around each
/// `;` (RFC 9110 §8.3.1 `media-type`) and nowhere else: a value that starts or
/// ends with whitespace is not a media type. Non-ASCII is rejected.
///
/// ```
/// use ossa_events_core::uri::is_media_type;
/// assert!(is_media_type("application/json"));
/// assert!(is_media_type("text/plain; charset=\"utf-8\""));
/// assert!(!is_media_type("json"));
/// assert!(!is_media_type("text/plain;"));
/// assert!(!is_media_type(" application/json")); // whitespace around it
/// assert!(!is_media_type("text/plain;charset=utf-8 "));
/// ```
pub fn is_media_type(s: &str) -> bool {
    if s == "application/json" {
        return true;
    }
    parse_media_type(s.as_bytes(), |_, _| {}).is_some()
}

/// The `(type, subtype)` before any `;`, trimmed, if both are non-empty
/// tokens. Parameters are not examined.
fn essence(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let (e, _) = split_once(s, b';');
    let (t, sub) = split_once(trim_ows(e), b'/');
    let sub = sub?;
    let tok = |x: &[u8]| !x.is_empty() && x.iter().all(|&b| class(b) & TOKEN != 0);
    (tok(t) && tok(sub)).then_some((t, sub))
}

/// Whether `s` ends with `suffix`, ignoring ASCII case.
#[inline]
fn ends_with_ignore_case(s: &[u8], suffix: &[u8]) -> bool {
    s.len() >= suffix.len()
        && s.get(s.len() - suffix.len()..)
            .is_some_and(|t| t.eq_ignore_ascii_case(suffix))
}

/// Whether the media type's subtype is `json` or ends in `+json`, ignoring
/// case (CloudEvents JSON event format §3.1.1), e.g. `application/json`,
/// `APPLICATION/JSON`, `application/cloudevents+json; charset=utf-8`. Only the
/// `type/subtype` before any `;` is examined (surrounding whitespace allowed);
/// use [`is_media_type`] to validate the parameters too.
///
/// ```
/// use ossa_events_core::uri::is_json_media_type;
/// assert!(is_json_media_type("application/json"));
/// assert!(is_json_media_type("application/vnd.api+JSON; charset=utf-8"));
/// assert!(!is_json_media_type("application/jsonl"));
/// assert!(!is_json_media_type("text/plain"));
/// ```
pub fn is_json_media_type(s: &str) -> bool {
    if s == "application/json" {
        return true;
    }
    match essence(s.as_bytes()) {
        Some((_, sub)) => sub.eq_ignore_ascii_case(b"json") || ends_with_ignore_case(sub, b"+json"),
        None => false,
    }
}

/// Whether data of this media type is text: `text/*`, `*/xml`, `*/*+xml`,
/// `application/javascript`, or any valid media type with a `charset`
/// parameter. Case-insensitive.
///
/// ```
/// use ossa_events_core::uri::is_text_media_type;
/// assert!(is_text_media_type("text/csv"));
/// assert!(is_text_media_type("application/atom+xml"));
/// assert!(is_text_media_type("application/octet-stream; charset=utf-8"));
/// assert!(!is_text_media_type("image/png"));
/// ```
pub fn is_text_media_type(s: &str) -> bool {
    let b = s.as_bytes();
    if let Some((t, sub)) = essence(b)
        && (t.eq_ignore_ascii_case(b"text")
            || sub.eq_ignore_ascii_case(b"xml")
            || ends_with_ignore_case(sub, b"+xml")
            || (t.eq_ignore_ascii_case(b"application") && sub.eq_ignore_ascii_case(b"javascript")))
    {
        return true;
    }
    let mut charset = false;
    let valid = parse_media_type(b, |name, _| {
        charset |= name.eq_ignore_ascii_case(b"charset");
    });
    valid.is_some() && charset
}

/// Whether the UTF-8 bytes `utf8` spell the same text under the `charset`
/// parameter of media type `s` as under UTF-8: `s` has no `charset` (or is
/// no media type), it names UTF-8 (`utf-8`, `utf8`), or the bytes are ASCII
/// and it names a charset that agrees with ASCII (`us-ascii`, `iso-8859-*`,
/// `windows-125*`, and the aliases `ascii`, `latin1`, `iso_8859-*`,
/// `iso8859-*`, `cp125*`). Names are compared ignoring case, quoted or not;
/// a `charset` given twice must read the bytes as UTF-8 both times.
///
/// Under any other charset (`utf-16`, `shift_jis`, or non-ASCII under
/// `iso-8859-1`) text is other bytes than its UTF-8: a binary-mode body of
/// such a type is not read as UTF-8 text even where its bytes happen to be
/// valid UTF-8, and UTF-8 text is not sent as such a body.
///
/// ```
/// use ossa_events_core::uri::charset_reads_utf8;
/// assert!(charset_reads_utf8("text/plain", "é".as_bytes()));
/// assert!(charset_reads_utf8("text/plain; charset=\"UTF-8\"", "é".as_bytes()));
/// assert!(charset_reads_utf8("text/plain; charset=iso-8859-1", b"plain"));
/// assert!(charset_reads_utf8("text/plain; charset=Latin1", b"plain"));
/// assert!(charset_reads_utf8("text/plain; charset=cp1252", b"plain"));
/// assert!(!charset_reads_utf8("text/plain; charset=iso-8859-1", "é".as_bytes()));
/// assert!(!charset_reads_utf8("text/plain; charset=utf-16le", b"h\0i\0"));
/// ```
pub fn charset_reads_utf8(s: &str, utf8: &[u8]) -> bool {
    // No parameters, no charset: the usual `application/json` costs one
    // scan of its bytes here, on every binary body read and written.
    if !s.as_bytes().contains(&b';') {
        return true;
    }
    // A `charset` given twice (an error, RFC 6838 §4.3) is read by peers
    // as either one (Python's `email` takes the first, others the last):
    // each must read the bytes as UTF-8 does.
    let mut reads = true;
    let _ = parse_media_type(s.as_bytes(), |name, value| {
        if name.eq_ignore_ascii_case(b"charset") {
            reads &= charset_name_reads_utf8(value, utf8);
        }
    });
    reads
}

/// Whether the `charset` parameter value `name` reads the UTF-8 bytes
/// `utf8` as UTF-8 does ([`charset_reads_utf8`]).
fn charset_name_reads_utf8(mut name: &[u8], utf8: &[u8]) -> bool {
    // A quoted name: a charset name has no `"` or `\` to escape.
    if let [b'"', inner @ .., b'"'] = name {
        name = inner;
    }
    let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
    let starts = |p: &[u8]| {
        name.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    };
    // ASCII-compatible charsets by their IANA names and the aliases in
    // common use (`latin1`, `cp1252`): any other name is taken to read
    // the bytes otherwise, so they stay bytes, not misread text.
    is(b"utf-8")
        || is(b"utf8")
        || (utf8.is_ascii()
            && (is(b"us-ascii")
                || is(b"ascii")
                || is(b"latin1")
                || starts(b"iso-8859-")
                || starts(b"iso_8859-")
                || starts(b"iso8859-")
                || starts(b"windows-125")
                || starts(b"cp125")))
}

/// Whether `s`'s `type/subtype` equals `essence`, ignoring ASCII case,
/// parameters and surrounding whitespace; e.g.
/// `media_type_essence_eq("Application/JSON; charset=utf-8", "application/json")`.
///
/// ```
/// use ossa_events_core::uri::media_type_essence_eq;
/// assert!(media_type_essence_eq(" Application/JSON; charset=utf-8", "application/json"));
/// assert!(!media_type_essence_eq("application/json-seq", "application/json"));
/// ```
pub fn media_type_essence_eq(s: &str, essence: &str) -> bool {
    let (e, _) = split_once(s.as_bytes(), b';');
    let e = trim_ows(e);
    !e.is_empty() && e.eq_ignore_ascii_case(essence.as_bytes())
}

/// Whether `s` starts with `prefix`, ignoring ASCII case.
///
/// ```
/// use ossa_events_core::uri::starts_with_ignore_ascii_case;
/// assert!(starts_with_ignore_ascii_case("Application/CloudEvents+json", "application/cloudevents"));
/// assert!(!starts_with_ignore_ascii_case("app", "application"));
/// ```
pub fn starts_with_ignore_ascii_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cloudevents_sources() {
        for s in [
            "https://github.com/cloudevents",
            "mailto:cncf-wg-serverless@lists.cncf.io",
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "/cloudevents/spec/pull/123",
            "/sensors/tn-1234567/alerts",
            "1-555-123-4567",
            "cloudevents/spec/pull/123",
        ] {
            assert!(is_uri_reference(s), "{s}");
        }
    }

    #[test]
    fn uri_reference_forms() {
        for s in [
            "a",
            ".",
            "..",
            "?",
            "#",
            "?q#f",
            "//",
            "//host",
            "//user:pw@host:80/p",
            "//@host",
            "//host:",
            "///p",
            "/",
            "a/b:c",
            "./a:b",
            "%41",
            "a%2fb%2F",
            "ftp://ftp.is.co.za/rfc/rfc1808.txt",
            "http://www.ietf.org/rfc/rfc2396.txt",
            "ldap://[2001:db8::7]/c=GB?objectClass?one",
            "mailto:John.Doe@example.com",
            "news:comp.infosystems.www.servers.unix",
            "tel:+1-816-555-1212",
            "telnet://192.0.2.16:80/",
            "urn:oasis:names:specification:docbook:dtd:xml:4.1.2",
            "http://[v7.fe80::a+en1]/",
            "http://[::]/",
            "http://[::ffff:192.0.2.1]/",
            "http://[1:2:3:4:5:6:7:8]/",
            "http://[1:2:3:4:5:6:1.2.3.4]/",
            "http://[1::8]:8080",
            "http://[1:2:3:4:5:6:7::]",
            "http://[::2:3:4:5:6:7:8]",
            "s://h/p?q/?#f/?",
            "x:",
            "a+b-c.d:e",
        ] {
            assert!(is_uri_reference(s), "{s}");
        }
    }

    #[test]
    fn uri_reference_rejects() {
        for s in [
            "",
            "has space",
            "a%zz",
            "%4",
            "%",
            "http://[::1",
            "http://[::1]x",
            "http://[::1]:x",
            "http://[1:2:3:4:5:6:7:8:9]/",
            "http://[1:2:3:4:5:6:7]/",
            "http://[1::2::3]/",
            "http://[:1::2]/",
            "http://[1::2:]/",
            "http://[12345::]/",
            "http://[::1.2.3]/",
            "http://[::1.2.3.256]/",
            "http://[::01.2.3.4]/",
            "http://[1.2.3.4::]/",
            "http://[1:2:3:4:5:6:7::1.2.3.4]/",
            "http://[v.x]/",
            "http://[v1.]/",
            "http://[fe80::1%25en0]/",
            "http://h:8o/",
            "http://a@b@c/",
            "http://a b/",
            "http://h/a b",
            "http://h/#a#b",
            "http://h/^",
            "é",
            "http://é.com",
            "<x>",
            "a\\b",
            ":nope",
            "1http://x",
            "a[b]",
            "\"q\"",
            "a{b}",
            "a|b",
            "a\nb",
        ] {
            assert!(!is_uri_reference(s), "{s:?}");
        }
    }

    #[test]
    fn absolute() {
        for s in [
            "http://example.com/schema",
            "urn:x:y",
            "https://h:8080/p?q",
            "http://[2001:db8::7]/c=GB?objectClass?one",
            "HTTP://EXAMPLE.COM",
            "file:///etc/hosts",
        ] {
            assert!(is_absolute_uri(s), "{s}");
        }
        for s in [
            "",
            "/relative",
            "example.com/x",
            "1http://x",
            ":x",
            "#f",
            "http://[x]/",
            "https://h:8080/p?q#f",
            "http://ex.com/s.json#frag",
            "http:#//ex.com/s.json",
            "http://e#x.com/s.json",
            "urn:x#",
        ] {
            assert!(!is_absolute_uri(s), "{s}");
        }
        for s in [
            "https://h:8080/p?q#f",
            "http://ex.com/s.json#frag",
            "http:#//ex.com/s.json",
            "http://e#x.com/s.json",
            "urn:x#",
        ] {
            assert!(is_uri_with_fragment(s), "{s}");
        }
        for s in [
            "/p#f",
            "http://ex.com/",
            "http://h/#a#b",
            "#f",
            "http://[x]/#f",
        ] {
            assert!(!is_uri_with_fragment(s), "{s}");
        }
    }

    #[test]
    fn media_types() {
        for s in [
            "application/json",
            "application/json; charset=utf-8",
            "text/plain;charset=\"utf-8\"",
            "application/cloudevents+json",
            "text/plain ;\tcharset=us-ascii ; format=flowed",
            "multipart/mixed; boundary=\"a \\\" b; c\"",
            "application/vnd.api+json",
            "x-foo/x-bar",
            "*/*",
        ] {
            assert!(is_media_type(s), "{s}");
        }
        for s in [
            "",
            " ",
            " text/plain",
            "text/plain ",
            "text/plain\t",
            "text/plain; a=b ",
            "text/plain ;\tcharset=us-ascii ; format=flowed ",
            "application",
            "application/",
            "/json",
            "text/plain; charset",
            "text/plain; charset=",
            "text/plain; =x",
            "text/plain;",
            "text/plain; a=b;",
            "a b/c",
            "a/b c",
            "text /plain",
            "text/ plain",
            "text/plain; charset = utf-8",
            "text/plain; charset=\"utf-8",
            "text/plain; charset=\"a\\",
            "text/plain; charset=\"é\"",
            "text/plain; charset=a\"b\"",
            "text/plain; a=b c=d",
            "text/plain/x",
            "a(b)/c",
            "té/x",
        ] {
            assert!(!is_media_type(s), "{s:?}");
        }
    }

    #[test]
    fn json_and_text() {
        for s in [
            "application/json",
            "APPLICATION/JSON",
            "application/vnd.foo+json; x=y",
            "application/cloudevents+JSON",
            " text/json ",
        ] {
            assert!(is_json_media_type(s), "{s}");
        }
        for s in [
            "application/jsonx",
            "application/json-seq",
            "application/+jsonx",
            "json",
            "application/",
            "/json",
            "text/plain",
            "",
        ] {
            assert!(!is_json_media_type(s), "{s}");
        }
        for s in [
            "text/plain",
            "TEXT/csv; x=y",
            "application/xml",
            "application/atom+xml",
            "application/javascript",
            "application/octet-stream; charset=utf-8",
            "image/x; CHARSET=\"latin1\"",
        ] {
            assert!(is_text_media_type(s), "{s}");
        }
        for s in [
            "application/json",
            "application/octet-stream",
            "image/png",
            "application/xmlx",
            "application/x; charset",
            "",
        ] {
            assert!(!is_text_media_type(s), "{s}");
        }
        assert!(media_type_essence_eq(
            "Application/JSON; charset=utf-8",
            "application/json"
        ));
        assert!(media_type_essence_eq(" text/plain ", "TEXT/PLAIN"));
        assert!(!media_type_essence_eq("text/plain", "text/html"));
        assert!(!media_type_essence_eq("", ""));
        assert!(starts_with_ignore_ascii_case(
            "Application/JSON",
            "application/"
        ));
        assert!(starts_with_ignore_ascii_case("abc", ""));
        assert!(!starts_with_ignore_ascii_case("ab", "abc"));
        assert!(!starts_with_ignore_ascii_case("é", "e"));
    }

    /// The run-time form (SSE2 fast path on x86-64) agrees with the const
    /// one for every byte at every position of short and long paths, and
    /// at the `//` and empty edges.
    #[test]
    fn run_time_form_agrees_with_the_grammar() {
        for len in 0..=40 {
            for at in 0..len.max(1) {
                for b in 0..=255u8 {
                    let mut v = vec![b'p'; len];
                    if len > 0 {
                        v[at] = b;
                    }
                    let Ok(s) = core::str::from_utf8(&v) else {
                        continue;
                    };
                    assert_eq!(is_uri_reference_rt(s), is_uri_reference(s), "{s:?}");
                    let mut rooted = String::from("/");
                    rooted.push_str(s);
                    assert_eq!(
                        is_uri_reference_rt(&rooted),
                        is_uri_reference(&rooted),
                        "{rooted:?}"
                    );
                }
            }
        }
        for s in [
            "",
            "/",
            "//",
            "//a",
            "///",
            "a//b",
            "~",
            "-._~/AZaz09",
            "a:b",
            "%41",
            "a b",
        ] {
            assert_eq!(is_uri_reference_rt(s), is_uri_reference(s), "{s:?}");
        }
    }

    #[test]
    fn fuzz_never_panics() {
        let alphabet = b"ab1:/?#[]@%.fF:v -\"=;\\\t\xc3\xa9";
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut buf = [0u8; 24];
        for round in 0..50_000usize {
            let len = round % buf.len();
            for b in buf.iter_mut().take(len) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = alphabet[(x % alphabet.len() as u64) as usize];
            }
            let s = String::from_utf8_lossy(&buf[..len]);
            let r = is_uri_reference(&s);
            assert_eq!(is_uri_reference_rt(&s), r, "{s:?}");
            if is_absolute_uri(&s) {
                assert!(r, "{s:?}");
            }
            let _ = is_media_type(&s);
            let _ = is_json_media_type(&s);
            let _ = is_text_media_type(&s);
            let _ = media_type_essence_eq(&s, "a/b");
        }
    }
}
