#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests: any *valid* CloudEvent survives every format and binding
//! this crate writes and reads, and encoding is byte-reproducible.
//!
//! Generated events use arbitrary valid CloudEvents Strings (any Unicode
//! except control characters and noncharacters, with quotes, backslashes,
//! `%`, spaces and emoji favoured), URI-references built from the RFC 3986
//! grammar, random RFC 3339 timestamps (offsets, 0–9 fraction digits,
//! `-00:00`, leap seconds), up to 16 extensions of every type, and every
//! kind of data.
//!
//! Set `PROPTEST_CASES` to change the number of cases (default 256).

use std::collections::BTreeMap;

use ossa_events_core::format::binary::{self, Binding};
use ossa_events_core::format::json;
use ossa_events_core::parse::{self, json::BatchParser};
use ossa_events_core::{Data, Event, ExtValue, Scratch, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------
// generators
// ---------------------------------------------------------------------------

/// Whether `c` may appear in a CloudEvents String (spec "Type System"): no
/// control characters (U+0000–U+001F, U+007F–U+009F) and no noncharacters.
fn is_string_char(c: char) -> bool {
    let u = c as u32;
    !(u < 0x20
        || (0x7f..=0x9f).contains(&u)
        || (0xfdd0..=0xfdef).contains(&u)
        || (u & 0xfffe) == 0xfffe)
}

/// Characters that escape or encode specially somewhere.
const TRICKY: [char; 14] = [
    '"', '\\', '%', ' ', '/', '{', '}', ':', '\'', '+', '=', '?', '#', '&',
];
/// Non-ASCII characters of every UTF-8 length.
const WIDE: [char; 10] = [
    'é',
    '€',
    '😀',
    '✓',
    '\u{a0}',
    '\u{2028}',
    '\u{fffd}',
    '\u{10fffd}',
    '中',
    'ß',
];

/// One character of a valid CloudEvents String, with the tricky ones
/// favoured: a category selector and a raw number mapped into it (cheaper to
/// generate than a union of strategies, which matters in debug builds).
fn string_char() -> impl Strategy<Value = char> {
    (0u8..16, any::<u32>()).prop_map(|(sel, r)| {
        let c = match sel {
            0..=7 => char::from(0x20 + (r % 0x5f) as u8),
            8..=10 => TRICKY[r as usize % TRICKY.len()],
            11..=12 => WIDE[r as usize % WIDE.len()],
            13 => char::from_u32(0x1f300 + r % 0x800).unwrap_or('😀'),
            // Anywhere in Unicode; invalid code points and forbidden characters fall back.
            _ => char::from_u32(r % 0x11_0000)
                .filter(|&c| is_string_char(c))
                .unwrap_or('\u{e000}'),
        };
        debug_assert!(is_string_char(c));
        c
    })
}

/// Any text of up to `max` characters: control characters, noncharacters and
/// all (data is not restricted to the String type).
fn any_text(max: usize) -> impl Strategy<Value = String> {
    let ch = (0u8..8, any::<u32>()).prop_map(|(sel, r)| match sel {
        0 => char::from_u32(r % 0x20).unwrap_or('\0'),
        1 => char::from_u32(0x7f + r % 0x21).unwrap_or('\u{7f}'),
        2 => char::from_u32(r % 0x11_0000).unwrap_or('\u{fffe}'),
        _ => char::from(0x20 + (r % 0x5f) as u8),
    });
    prop::collection::vec(prop_oneof![3 => ch, 1 => string_char()], 0..=max)
        .prop_map(String::from_iter)
}

/// A valid CloudEvents String of `min..=max` characters.
fn ce_string(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(string_char(), min..=max).prop_map(String::from_iter)
}

/// `min..=max` units, each a character of `class` or (when `pct`) a
/// percent-encoded octet `%XY` in either case; mapped from raw numbers
/// because proptest's regex strategies are slow in debug builds.
fn chars_of(
    class: &'static str,
    pct: bool,
    min: usize,
    max: usize,
) -> impl Strategy<Value = String> {
    let class: Vec<char> = class.chars().collect();
    prop::collection::vec((0u8..10, any::<u32>()), min..=max).prop_map(move |units| {
        let mut s = String::new();
        for (sel, r) in units {
            if pct && sel == 0 {
                let hex = if r & 0x1_0000 == 0 {
                    b"0123456789ABCDEF"
                } else {
                    b"0123456789abcdef"
                };
                s.push('%');
                s.push(char::from(hex[(r >> 4) as usize % 16]));
                s.push(char::from(hex[r as usize % 16]));
            } else {
                s.push(class[r as usize % class.len()]);
            }
        }
        s
    })
}

const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const SCHEME_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-";
/// RFC 3986 unreserved and sub-delims (`reg-name` minus pct-encoded).
const UNRESERVED_SUB: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=";
/// `userinfo` minus pct-encoded.
const USERINFO: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:";
/// `pchar` minus pct-encoded.
const PCHAR: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@";
/// `pchar` without ':' (`segment-nz-nc`, first segment of a relative path).
const PCHAR_NC: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=@";
/// `query` / `fragment` characters minus pct-encoded.
const QCHAR: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/?";

/// `segment`: `*pchar`
fn segment() -> impl Strategy<Value = String> {
    chars_of(PCHAR, true, 0, 8)
}

/// An IPv4 address: four `dec-octet`s.
fn ipv4() -> impl Strategy<Value = String> {
    prop::array::uniform4(any::<u8>()).prop_map(|[a, b, c, d]| format!("{a}.{b}.{c}.{d}"))
}

/// `authority` (RFC 3986 §3.2): optional userinfo, a host (reg-name, IPv4,
/// IPv6 or IPvFuture literal), optional port.
fn authority() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        4 => chars_of(UNRESERVED_SUB, true, 0, 12).boxed(),
        1 => ipv4().boxed(),
        1 => prop::sample::select(vec![
            "[::1]", "[2001:db8::7]", "[fe80::1:2:3:4]", "[::ffff:192.0.2.1]",
            "[1:2:3:4:5:6:7:8]", "[::]", "[v1.fe80::a+en1]",
        ])
        .prop_map(String::from),
    ];
    (
        prop::option::of(chars_of(USERINFO, true, 0, 6)),
        host,
        prop::option::of(chars_of("0123456789", false, 0, 5)),
    )
        .prop_map(|(user, host, port)| {
            let mut s = String::from("//");
            if let Some(u) = user {
                s.push_str(&u);
                s.push('@');
            }
            s.push_str(&host);
            if let Some(p) = port {
                s.push(':');
                s.push_str(&p);
            }
            s
        })
}

/// `*( "/" segment )`
fn path_abempty() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 0..4)
        .prop_map(|segs| segs.iter().map(|s| format!("/{s}")).collect())
}

/// A path starting with a non-empty segment from `first`, then `*( "/" segment )`.
fn path_from(first_class: &'static str) -> impl Strategy<Value = String> {
    (chars_of(first_class, true, 1, 8), path_abempty()).prop_map(|(a, b)| a + &b)
}

/// `"/" [ segment-nz *( "/" segment ) ]`
fn path_absolute() -> impl Strategy<Value = String> {
    prop::option::of(path_from(PCHAR)).prop_map(|p| format!("/{}", p.unwrap_or_default()))
}

/// `[ "?" query ] [ "#" fragment ]`
fn query_fragment() -> impl Strategy<Value = String> {
    query_then(prop::option::of(chars_of(QCHAR, true, 0, 12)))
}

/// `[ "?" query ]`: no fragment.
fn query_only() -> impl Strategy<Value = String> {
    query_then(Just(None))
}

/// `[ "?" query ]` then the fragment `fragment` gives, if any.
fn query_then(fragment: impl Strategy<Value = Option<String>>) -> impl Strategy<Value = String> {
    (prop::option::of(chars_of(QCHAR, true, 0, 12)), fragment).prop_map(|(q, f)| {
        let mut s = String::new();
        if let Some(q) = q {
            s.push('?');
            s.push_str(&q);
        }
        if let Some(f) = f {
            s.push('#');
            s.push_str(&f);
        }
        s
    })
}

/// An RFC 3986 §4.3 `absolute-URI` (scheme required, no fragment): the
/// CloudEvents type `URI`.
fn absolute_uri() -> impl Strategy<Value = String> {
    uri_with(query_only())
}

/// An RFC 3986 `URI` (scheme required, a fragment allowed).
fn uri() -> impl Strategy<Value = String> {
    uri_with(query_fragment())
}

/// `scheme ":" hier-part` followed by what `tail` gives.
fn uri_with(tail: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    let hier = prop_oneof![
        3 => (authority(), path_abempty()).prop_map(|(a, p)| a + &p),
        1 => path_absolute(),
        1 => path_from(PCHAR),
        1 => Just(String::new()),
    ];
    let scheme = (
        chars_of(LETTERS, false, 1, 1),
        chars_of(SCHEME_CHARS, false, 0, 7),
    )
        .prop_map(|(a, b)| a + &b);
    (scheme, hier, tail).prop_map(|(s, h, qf)| format!("{s}:{h}{qf}"))
}

/// A non-empty RFC 3986 `URI-reference`: a URI or a relative reference.
fn uri_reference() -> impl Strategy<Value = String> {
    let relative = (
        prop_oneof![
            2 => (authority(), path_abempty()).prop_map(|(a, p)| a + &p),
            3 => path_absolute(),
            2 => path_from(PCHAR_NC),
            1 => Just(String::new()),
        ],
        query_fragment(),
    )
        .prop_map(|(p, qf)| p + &qf)
        .prop_filter("non-empty", |s| !s.is_empty());
    prop_oneof![
        1 => prop::sample::select(vec![
            "/agents/researcher", "https://github.com/cloudevents/spec/pull", "urn:event:from:myapi/resource/123",
            "mailto:cncf-wg-serverless@lists.cncf.io", "#", "?", "//", ".", "..", "a",
        ]).prop_map(String::from),
        2 => uri(),
        3 => relative,
    ]
}

fn days_in_month(y: u16, m: u8) -> u8 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400)) => 29,
        2 => 28,
        _ => 31,
    }
}

/// A random valid RFC 3339 `date-time`: years 0000–9999, `T`/`t`, 0–9 fraction
/// digits, `Z`/`z`, `±hh:mm` or `-00:00`, now and then a leap second
/// (second 60 at 23:59 UTC).
fn rfc3339() -> impl Strategy<Value = String> {
    let offset = prop_oneof![
        2 => prop::sample::select(vec!["Z", "z", "-00:00", "+00:00"]).prop_map(|s| (s.to_string(), 0i32)),
        3 => (any::<bool>(), 0i32..24, 0i32..60).prop_map(|(neg, h, m)| {
            let mins = if neg { -(h * 60 + m) } else { h * 60 + m };
            // "-00:00" means "unknown local offset": UTC, offset 0.
            (format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' }), mins)
        }),
    ];
    (
        (0u16..=9999, 1u8..=12, 1u8..=31),
        (0u8..24, 0u8..60, 0u8..60),
        chars_of("0123456789", false, 0, 9),
        offset,
        any::<bool>(),
        prop::bool::weighted(0.05),
    )
        .prop_map(
            |((y, mo, d), (mut h, mut mi, mut s), frac, (off, off_mins), lower_t, leap)| {
                let d = d.min(days_in_month(y, mo));
                if leap {
                    // Local time whose UTC time is 23:59.
                    let local = (23 * 60 + 59 + off_mins).rem_euclid(1440);
                    h = (local / 60) as u8;
                    mi = (local % 60) as u8;
                    s = 60;
                }
                let frac = if frac.is_empty() {
                    String::new()
                } else {
                    format!(".{frac}")
                };
                let t = if lower_t { 't' } else { 'T' };
                format!("{y:04}-{mo:02}-{d:02}{t}{h:02}:{mi:02}:{s:02}{frac}{off}")
            },
        )
}

/// An extension value of any CloudEvents type, owned.
#[derive(Debug, Clone)]
enum ExtSpec {
    String(String),
    Integer(i32),
    Boolean(bool),
    Uri(String),
    UriRef(String),
    Timestamp(Timestamp),
    Binary(Vec<u8>),
}

impl ExtSpec {
    fn value(&self) -> ExtValue<'_> {
        match self {
            ExtSpec::String(s) => ExtValue::String(s),
            ExtSpec::Integer(i) => ExtValue::Integer(*i),
            ExtSpec::Boolean(b) => ExtValue::Boolean(*b),
            ExtSpec::Uri(s) => ExtValue::Uri(s),
            ExtSpec::UriRef(s) => ExtValue::UriRef(s),
            ExtSpec::Timestamp(t) => ExtValue::Timestamp(*t),
            ExtSpec::Binary(b) => ExtValue::Binary(b),
        }
    }
}

fn ext_value() -> impl Strategy<Value = ExtSpec> {
    prop_oneof![
        3 => ce_string(0, 24).prop_map(ExtSpec::String),
        2 => prop_oneof![any::<i32>(), Just(i32::MIN), Just(i32::MAX), Just(0), -10i32..10].prop_map(ExtSpec::Integer),
        1 => any::<bool>().prop_map(ExtSpec::Boolean),
        1 => absolute_uri().prop_map(ExtSpec::Uri),
        1 => uri_reference().prop_map(ExtSpec::UriRef),
        1 => rfc3339().prop_map(|s| ExtSpec::Timestamp(Timestamp::parse(&s).expect("generated timestamp parses"))),
        1 => prop::collection::vec(any::<u8>(), 0..24).prop_map(ExtSpec::Binary),
    ]
}

const RESERVED: [&str; 9] = [
    "id",
    "source",
    "specversion",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
];

/// 0..=16 extensions with unique valid names (`[a-z0-9]{1,20}`, not reserved), in random order.
fn extensions() -> impl Strategy<Value = Vec<(String, ExtSpec)>> {
    let name = prop_oneof![
        4 => chars_of("abcdefghijklmnopqrstuvwxyz0123456789", false, 1, 20),
        // (`traceparent` and `tracestate` have a grammar of their own and must
        // agree with the OSSA ids: core/tests/trace_context_follows_w3c.rs.)
        1 => prop::sample::select(vec!["ossaagentid", "ossainteractionid", "ossatraceid", "ossaspanid", "a", "0", "trace"])
            .prop_map(String::from),
    ]
    .prop_filter("not reserved", |n| !RESERVED.contains(&n.as_str()));
    prop::collection::btree_map(name, ext_value(), 0..=16)
        .prop_map(|m: BTreeMap<String, ExtSpec>| m.into_iter().collect::<Vec<_>>())
        .prop_shuffle()
}

/// A JSON value (serde_json), any shape.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any_text(12).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(any_text(8), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Padded standard Base64 (RFC 4648 §4), written independently of the core.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = u32::from(c[0]) << 16
            | u32::from(*c.get(1).unwrap_or(&0)) << 8
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The payload of a generated event, owned.
#[derive(Debug, Clone)]
enum DataSpec {
    /// No data.
    None,
    /// `datacontenttype` without data.
    TypeOnly(&'static str),
    /// JSON text (`application/json`), compact or pretty.
    Json(String),
    /// Text with a `text/plain` content type.
    Text(&'static str, String),
    /// Bytes, with or without a content type.
    Binary(Option<&'static str>, Vec<u8>),
    /// Bytes already Base64-encoded, with or without a content type.
    Base64(Option<&'static str>, String),
}

fn data() -> impl Strategy<Value = DataSpec> {
    let binary_ct = prop::option::of(prop::sample::select(vec![
        "application/octet-stream",
        "image/png",
    ]));
    prop_oneof![
        2 => Just(DataSpec::None),
        1 => prop::sample::select(vec!["application/json", "text/plain", "application/xml"]).prop_map(DataSpec::TypeOnly),
        // Top-level `null` is left to `explicit_null_json_data_survives_structured_json`.
        3 => (json_value().prop_filter("not null", |v| !v.is_null()), any::<bool>()).prop_map(|(v, pretty)| {
            DataSpec::Json(if pretty { serde_json::to_string_pretty(&v).unwrap() } else { v.to_string() })
        }),
        2 => (
            prop::sample::select(vec!["text/plain", "text/plain; charset=utf-8", "TEXT/PLAIN;charset=\"UTF-8\""]),
            any_text(40),
        )
            .prop_map(|(ct, s)| DataSpec::Text(ct, s)),
        2 => (binary_ct.clone(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(ct, b)| DataSpec::Binary(ct, b)),
        1 => (binary_ct, prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(ct, b)| DataSpec::Base64(ct, base64(&b))),
    ]
}

/// Everything needed to build one event (the event borrows from it).
#[derive(Debug, Clone)]
struct Spec {
    id: String,
    source: String,
    ty: String,
    dataschema: Option<String>,
    subject: Option<String>,
    time: Option<String>,
    exts: Vec<(String, ExtSpec)>,
    data: DataSpec,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (ce_string(1, 40), uri_reference(), ce_string(1, 40)),
        (
            prop::option::of(absolute_uri()),
            prop::option::of(ce_string(1, 40)),
            prop::option::of(rfc3339()),
        ),
        extensions(),
        data(),
    )
        .prop_map(
            |((id, source, ty), (dataschema, subject, time), exts, data)| Spec {
                id,
                source,
                ty,
                dataschema,
                subject,
                time,
                exts,
                data,
            },
        )
}

impl Spec {
    /// Builds the event; the generators only produce valid events, so the
    /// builder must accept it.
    fn event(&self) -> Event<'_> {
        let mut b = Event::builder()
            .id(&self.id)
            .source(&self.source)
            .ty(&self.ty);
        if let Some(s) = &self.dataschema {
            b = b.dataschema(s);
        }
        if let Some(s) = &self.subject {
            b = b.subject(s);
        }
        if let Some(t) = &self.time {
            b = b.time_str(t);
        }
        for (n, v) in &self.exts {
            b = b.extension(n, v.value());
        }
        b = match &self.data {
            DataSpec::None => b,
            DataSpec::TypeOnly(ct) => b.datacontenttype(ct),
            DataSpec::Json(s) => b.data_json(s),
            DataSpec::Text(ct, s) => b.data_text(ct, s),
            DataSpec::Binary(ct, bytes) => match ct {
                Some(ct) => b.data_binary(ct, bytes),
                None => b.data(Data::Binary(bytes)),
            },
            DataSpec::Base64(ct, s) => {
                let b = b.data(Data::Base64(s));
                match ct {
                    Some(ct) => b.datacontenttype(ct),
                    None => b,
                }
            }
        };
        b.build()
            .unwrap_or_else(|e| panic!("generated event rejected: {e}\n{self:#?}"))
    }
}

// ---------------------------------------------------------------------------
// encoders and comparisons
// ---------------------------------------------------------------------------

fn to_json(ev: &Event<'_>) -> Vec<u8> {
    json::to_vec(ev).unwrap()
}

/// A scratch buffer large enough for anything decoded out of `input`.
fn scratch_for(input_len: usize) -> Vec<u8> {
    vec![0u8; input_len + 64]
}

/// The JSON format keeps Integer and Boolean extension types and carries every
/// other type as a JSON string of its canonical form.
fn check_json_same(orig: &Event<'_>, parsed: &Event<'_>) -> Result<(), TestCaseError> {
    prop_assert!(
        parsed.same_as(orig, false),
        "not same_as (untyped)\norig:   {orig:?}\nparsed: {parsed:?}"
    );
    prop_assert!(
        parsed.same_as(orig, true),
        "not same_as (typed)\norig:   {orig:?}\nparsed: {parsed:?}"
    );
    prop_assert!(orig.same_as(parsed, true), "typed same_as not symmetric");
    prop_assert_eq!(parsed.extensions().len(), orig.extensions().len());
    for (e, p) in orig.extensions().iter().zip(parsed.extensions()) {
        prop_assert_eq!(e.name, p.name, "extension order");
        let canonical = e.value.canonical().to_string();
        let want = match e.value {
            ExtValue::Integer(_) | ExtValue::Boolean(_) => e.value,
            _ => ExtValue::String(&canonical),
        };
        prop_assert_eq!(p.value, want, "extension {}", e.name);
    }
    Ok(())
}

/// What binary mode can carry: an empty payload is an empty body, which reads
/// back as "no data" (the content type stays). Binary mode cannot tell the two
/// apart, so the expectation drops empty payloads.
fn binary_mode_expected<'a>(ev: &Event<'a>) -> Event<'a> {
    let empty = match ev.data() {
        Some(Data::Text(s)) => s.is_empty(),
        Some(Data::Binary(b)) => b.is_empty(),
        Some(Data::Base64(s)) => s.is_empty(),
        _ => false,
    };
    if !empty {
        return ev.clone();
    }
    let b = ev.to_builder().no_data();
    match ev.datacontenttype() {
        Some(ct) => b.datacontenttype(ct).build().unwrap(),
        None => b.build().unwrap(),
    }
}

/// Our binary-mode message for `binding`: `(name, value)` headers (content
/// type included) and the body.
fn binary_message(ev: &Event<'_>, binding: Binding) -> (Vec<(String, Vec<u8>)>, Vec<u8>) {
    let mut headers: Vec<(String, Vec<u8>)> = binary::headers(ev, binding)
        .map(|h| {
            let mut v = Vec::new();
            h.value().write_to(&mut v).unwrap();
            assert_eq!(
                v,
                h.value().to_string().as_bytes(),
                "write_to agrees with Display"
            );
            (h.name().to_string(), v)
        })
        .collect();
    if let Some(ct) = binary::content_type(ev) {
        headers.push((
            binding.content_type_header().to_string(),
            ct.as_bytes().to_vec(),
        ));
    }
    let mut body = Vec::new();
    binary::write_body(ev, &mut body).unwrap();
    (headers, body)
}

fn pairs(h: &[(String, Vec<u8>)]) -> impl Iterator<Item = (&str, &[u8])> + Clone {
    h.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
}

/// Checks that HTTP header values are what HTTP binding §3.1.3.2 allows:
/// printable US-ASCII, with space, `"` and `%` only as percent-escapes.
fn check_http_header_values(headers: &[(String, Vec<u8>)]) -> Result<(), TestCaseError> {
    for (n, v) in headers {
        if n == "Content-Type" {
            continue;
        }
        prop_assert!(
            v.iter().all(|&b| (0x21..=0x7e).contains(&b) && b != b'"'),
            "header {} not encoded: {:?}",
            n,
            String::from_utf8_lossy(v)
        );
        let mut i = 0;
        while i < v.len() {
            if v[i] == b'%' {
                prop_assert!(
                    v.len() >= i + 3
                        && v[i + 1].is_ascii_hexdigit()
                        && v[i + 2].is_ascii_hexdigit(),
                    "bad escape in {}",
                    n
                );
                i += 3;
            } else {
                i += 1;
            }
        }
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        // Do not write regression files into the shared source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// The generators produce what they claim (checked against the core's validators).
    #[test]
    fn generators_produce_valid_values(
        s in ce_string(0, 40),
        u in uri_reference(),
        a in absolute_uri(),
        t in rfc3339(),
    ) {
        prop_assert!(ossa_events_core::attr::is_valid_string(&s), "{:?}", s);
        prop_assert!(ossa_events_core::uri::is_uri_reference(&u), "URI-reference rejected: {:?}", u);
        prop_assert!(ossa_events_core::uri::is_absolute_uri(&a), "URI rejected: {:?}", a);
        let ts = Timestamp::parse(&t);
        prop_assert!(ts.is_ok(), "timestamp rejected: {} ({:?})", t, ts);
        // A canonical timestamp (upper-case T and Z) writes back exactly as read.
        let canon = t.replace('t', "T").replace('z', "Z");
        prop_assert_eq!(ts.unwrap().to_string(), canon);
    }

    #[test]
    fn structured_json(s in spec()) {
        let ev = s.event();
        let bytes = to_json(&ev);
        let mut buf = scratch_for(bytes.len());
        let parsed = parse::json::parse_event(&bytes, &mut Scratch::new(&mut buf));
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, String::from_utf8_lossy(&bytes));
        check_json_same(&ev, &parsed.unwrap())?;
    }

    #[test]
    fn structured_json_is_reproducible_and_idempotent(s in spec()) {
        let ev = s.event();
        let first = to_json(&ev);
        prop_assert_eq!(&first, &to_json(&ev), "encoding twice differs");
        let mut big = vec![0u8; first.len() + 16];
        let n = json::to_slice(&ev, &mut big).unwrap();
        prop_assert_eq!(&big[..n], &first[..], "to_slice differs from to_vec");
        prop_assert_eq!(json::encoded_len(&ev).unwrap(), first.len());
        // Exactly sized buffer is enough; one byte less is not.
        let mut exact = vec![0u8; first.len()];
        prop_assert_eq!(json::to_slice(&ev, &mut exact).unwrap(), first.len());
        let mut short = vec![0u8; first.len() - 1];
        prop_assert!(json::to_slice(&ev, &mut short).is_err());
        // The output is valid JSON for serde_json too.
        prop_assert!(serde_json::from_slice::<serde_json::Value>(&first).is_ok());

        let mut buf = scratch_for(first.len());
        let parsed = parse::json::parse_event(&first, &mut Scratch::new(&mut buf)).unwrap();
        let reencoded = to_json(&parsed);
        prop_assert_eq!(
            String::from_utf8_lossy(&reencoded),
            String::from_utf8_lossy(&first),
            "encode(parse(encode(e))) != encode(e)"
        );
    }

    #[test]
    fn json_batch(specs in prop::collection::vec(spec(), 1..5)) {
        let events: Vec<Event<'_>> = specs.iter().map(Spec::event).collect();
        let mut out = Vec::new();
        json::write_batch(&events, &mut out).unwrap();
        let mut again = Vec::new();
        json::write_batch(&events, &mut again).unwrap();
        prop_assert_eq!(&out, &again, "batch encoding not reproducible");
        prop_assert!(parse::json::looks_like_batch(&out));

        let mut parser = BatchParser::new(&out).unwrap();
        let mut buf = scratch_for(out.len());
        let mut n = 0;
        while let Some(r) = parser.next_event(&mut buf) {
            prop_assert!(r.is_ok(), "event {}: {:?}", n, r);
            prop_assert!(n < events.len(), "too many events");
            check_json_same(&events[n], &r.unwrap())?;
            n += 1;
        }
        prop_assert_eq!(n, events.len());

        // The same batch over HTTP (batched content mode).
        let headers = [("Content-Type", &b"application/cloudevents-batch+json"[..])];
        let mut sbuf = [0u8; 0];
        let msg = parse::http::parse(headers, &out, &mut Scratch::new(&mut sbuf)).unwrap();
        match msg {
            parse::http::Message::Batch(mut p) => {
                let mut n = 0;
                while let Some(r) = p.next_event(&mut buf) {
                    check_json_same(&events[n], &r.unwrap())?;
                    n += 1;
                }
                prop_assert_eq!(n, events.len());
            }
            other => prop_assert!(false, "expected a batch, got {:?}", other),
        }
    }

    #[test]
    fn json_lines(specs in prop::collection::vec(spec(), 1..5)) {
        let events: Vec<Event<'_>> = specs.iter().map(Spec::event).collect();
        let mut out = Vec::new();
        for ev in &events {
            json::write_jsonl(ev, &mut out).unwrap();
        }
        prop_assert_eq!(out.last(), Some(&b'\n'));
        let lines: Vec<&[u8]> = out[..out.len() - 1].split(|&b| b == b'\n').collect();
        prop_assert_eq!(lines.len(), events.len(), "a record spans lines");
        for (ev, line) in events.iter().zip(lines) {
            let mut buf = scratch_for(line.len());
            let parsed = parse::json::parse_event(line, &mut Scratch::new(&mut buf));
            prop_assert!(parsed.is_ok(), "{:?}", parsed);
            check_json_same(ev, &parsed.unwrap())?;
        }
    }

    #[test]
    fn http_binary(s in spec()) {
        let ev = s.event();
        let (headers, body) = binary_message(&ev, Binding::Http);
        check_http_header_values(&headers)?;
        let again = binary_message(&ev, Binding::Http);
        prop_assert_eq!(&(headers.clone(), body.clone()), &again, "HTTP encoding not reproducible");
        if let Some(b) = binary::body_slice(&ev) {
            prop_assert_eq!(b, &body[..], "body_slice disagrees with write_body");
        }

        let input_len = headers.iter().map(|(_, v)| v.len()).sum::<usize>();
        let mut buf = scratch_for(input_len);
        let parsed = parse::http::parse(pairs(&headers), &body, &mut Scratch::new(&mut buf));
        prop_assert!(parsed.is_ok(), "{:?}\nheaders {:?}", parsed, headers);
        let parse::http::Message::Event(parsed) = parsed.unwrap() else {
            return Err(TestCaseError::fail("expected one event"));
        };
        let expected = binary_mode_expected(&ev);
        prop_assert!(parsed.same_as(&expected, false), "\norig:   {:?}\nparsed: {:?}", expected, parsed);

        // parse_binary directly gives the same, and re-encoding reproduces the message.
        let mut buf2 = scratch_for(input_len);
        let direct = parse::http::parse_binary(pairs(&headers), &body, &mut Scratch::new(&mut buf2)).unwrap();
        prop_assert!(direct.same_as(&parsed, true));
        prop_assert_eq!(&binary_message(&parsed, Binding::Http), &again, "re-encoding differs");
    }

    #[test]
    fn http_structured(s in spec()) {
        let ev = s.event();
        let bytes = to_json(&ev);
        let headers = [("content-type", &b"application/cloudevents+json; charset=UTF-8"[..])];
        let mut buf = scratch_for(bytes.len());
        let msg = parse::http::parse(headers, &bytes, &mut Scratch::new(&mut buf)).unwrap();
        match msg {
            parse::http::Message::Event(parsed) => check_json_same(&ev, &parsed)?,
            other => prop_assert!(false, "expected one event, got {:?}", other),
        }
    }

    #[test]
    fn kafka_binary(s in spec(), key in prop::option::of(prop::collection::vec(any::<u8>(), 0..8))) {
        let ev = s.event();
        let (headers, body) = binary_message(&ev, Binding::Kafka);
        prop_assert!(headers.iter().all(|(n, _)| n.starts_with("ce_") || n == "content-type"));
        let again = binary_message(&ev, Binding::Kafka);
        prop_assert_eq!(&(headers.clone(), body.clone()), &again, "Kafka encoding not reproducible");
        // An empty value and a missing (null) value both mean "no data".
        let value = if body.is_empty() { None } else { Some(&body[..]) };
        let mut buf = scratch_for(64);
        let rec = parse::kafka::parse(pairs(&headers), key.as_deref(), value, &mut Scratch::new(&mut buf));
        prop_assert!(rec.is_ok(), "{:?}\nheaders {:?}", rec, headers);
        let rec = rec.unwrap();
        prop_assert_eq!(rec.key, key.as_deref());
        let expected = binary_mode_expected(&ev);
        prop_assert!(rec.event.same_as(&expected, false), "\norig:   {:?}\nparsed: {:?}", expected, rec.event);
        prop_assert_eq!(&binary_message(&rec.event, Binding::Kafka), &again, "re-encoding differs");
    }

    #[test]
    fn kafka_structured(s in spec()) {
        let ev = s.event();
        let bytes = to_json(&ev);
        let headers = [("content-type", &b"application/cloudevents+json"[..])];
        let mut buf = scratch_for(bytes.len());
        let rec = parse::kafka::parse(headers, Some(&b"k"[..]), Some(&bytes[..]), &mut Scratch::new(&mut buf));
        prop_assert!(rec.is_ok(), "{:?}", rec);
        let rec = rec.unwrap();
        prop_assert_eq!(rec.key, Some(&b"k"[..]));
        check_json_same(&ev, &rec.event)?;
    }

    /// The sdk-independent oracle: serde_json reads our JSON to the same values.
    #[test]
    fn structured_json_matches_serde_json(s in spec()) {
        let ev = s.event();
        let v: serde_json::Value = serde_json::from_slice(&to_json(&ev)).unwrap();
        prop_assert_eq!(&v["specversion"], "1.0");
        prop_assert_eq!(&v["id"], ev.id());
        prop_assert_eq!(&v["source"], ev.source());
        prop_assert_eq!(&v["type"], ev.ty());
        if let Some(sub) = ev.subject() {
            prop_assert_eq!(&v["subject"], sub);
        }
        for e in ev.extensions() {
            let want = match e.value {
                ExtValue::Integer(i) => serde_json::Value::from(i),
                ExtValue::Boolean(b) => serde_json::Value::from(b),
                other => serde_json::Value::from(other.canonical().to_string()),
            };
            prop_assert_eq!(&v[e.name], &want, "extension {}", e.name);
        }
        match &s.data {
            DataSpec::Json(raw) => {
                prop_assert_eq!(&v["data"], &serde_json::from_str::<serde_json::Value>(raw).unwrap());
            }
            DataSpec::Text(_, t) => prop_assert_eq!(&v["data"], t.as_str()),
            DataSpec::Binary(_, b) => {
                let b64 = base64(b);
                prop_assert_eq!(&v["data_base64"], b64.as_str());
            }
            DataSpec::Base64(_, b) => prop_assert_eq!(&v["data_base64"], b.as_str()),
            DataSpec::None | DataSpec::TypeOnly(_) => {
                prop_assert!(v.get("data").is_none() && v.get("data_base64").is_none());
            }
        }
    }
}

/// JSON format §3.1.1: "the `data` member MAY have a value of `null`,
/// representing an explicit `null` payload as distinct from the absence of the
/// `data` member". (Kept out of the generators so that it cannot mask other
/// failures.)
#[test]
fn explicit_null_json_data_survives_structured_json() {
    let ev = Event::builder()
        .id("1")
        .source("/s")
        .ty("t")
        .data_json("null")
        .build()
        .unwrap();
    let bytes = to_json(&ev);
    assert_eq!(
        bytes,
        br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":null}"#
    );
    let mut buf = [0u8; 64];
    let parsed = parse::json::parse_event(&bytes, &mut Scratch::new(&mut buf)).unwrap();
    assert!(
        matches!(parsed.data(), Some(Data::Json("null"))),
        "explicit null data lost: {:?}",
        parsed.data()
    );
}

/// Binary modes keep an explicit `null` JSON body.
#[test]
fn explicit_null_json_data_survives_binary_modes() {
    let ev = Event::builder()
        .id("1")
        .source("/s")
        .ty("t")
        .data_json("null")
        .build()
        .unwrap();
    for binding in [Binding::Http, Binding::Kafka] {
        let (headers, body) = binary_message(&ev, binding);
        assert_eq!(body, b"null");
        let mut buf = [0u8; 64];
        let parsed = match binding {
            Binding::Http => {
                parse::http::parse_binary(pairs(&headers), &body, &mut Scratch::new(&mut buf))
                    .unwrap()
            }
            _ => {
                parse::kafka::parse(
                    pairs(&headers),
                    None,
                    Some(&body),
                    &mut Scratch::new(&mut buf),
                )
                .unwrap()
                .event
            }
        };
        assert!(parsed.same_as(&ev, false), "{binding:?}: {parsed:?}");
    }
}
