//! Spans as an OTLP/HTTP JSON `ExportTraceServiceRequest`, by the OTLP JSON
//! rules: trace and span ids as lowercase hex strings (not base64), enums
//! (span kind, status code) as integers, 64-bit integers (times, `intValue`)
//! as decimal strings, field names in lowerCamelCase.

use std::io::Write as _;

use super::semconv::SCHEMA_URL;
use super::spans::{Attrs, Span, Val};

/// `SPAN_KIND_INTERNAL`.
const KIND_INTERNAL: u8 = 1;
/// `STATUS_CODE_ERROR`.
const STATUS_ERROR: u8 = 2;

/// Appends the request carrying `spans` to `out`.
pub(crate) fn write_request<'s>(
    out: &mut Vec<u8>,
    service_name: &str,
    spans: impl Iterator<Item = &'s Span>,
) {
    out.extend_from_slice(br#"{"resourceSpans":[{"resource":{"attributes":["#);
    attr(
        out,
        "service.name",
        &Val::Str(service_name.to_owned()),
        true,
    );
    out.extend_from_slice(br#"]},"scopeSpans":[{"scope":{"name":"ossa-events","version":""#);
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    out.extend_from_slice(br#""},"schemaUrl":"#);
    string(out, SCHEMA_URL);
    out.extend_from_slice(br#","spans":["#);
    for (i, s) in spans.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        span(out, s);
    }
    out.extend_from_slice(b"]}]}]}");
}

fn span(out: &mut Vec<u8>, s: &Span) {
    out.extend_from_slice(br#"{"traceId":""#);
    hex(out, &s.trace);
    out.extend_from_slice(br#"","spanId":""#);
    hex(out, &s.id);
    out.push(b'"');
    if let Some(ts) = &s.trace_state {
        out.extend_from_slice(br#","traceState":"#);
        string(out, ts);
    }
    if let Some(p) = &s.parent {
        out.extend_from_slice(br#","parentSpanId":""#);
        hex(out, p);
        out.push(b'"');
    }
    out.extend_from_slice(br#","name":"#);
    string(out, &s.name);
    let _ = write!(out, ",\"kind\":{KIND_INTERNAL}");
    time(out, "startTimeUnixNano", s.start_ns);
    time(out, "endTimeUnixNano", s.end_ns);
    attrs(out, &s.attrs);
    if !s.events.is_empty() {
        out.extend_from_slice(br#","events":["#);
        for (i, e) in s.events.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let _ = write!(out, "{{\"timeUnixNano\":\"{}\",\"name\":", e.time_ns);
            string(out, &e.name);
            attrs(out, &e.attrs);
            out.push(b'}');
        }
        out.push(b']');
    }
    if let Some(msg) = &s.error {
        out.extend_from_slice(br#","status":{"message":"#);
        string(out, msg);
        let _ = write!(out, ",\"code\":{STATUS_ERROR}}}");
    }
    out.push(b'}');
}

fn time(out: &mut Vec<u8>, name: &str, ns: u64) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, ",\"{name}\":\"{ns}\"");
}

/// Lowercase hex of `b`.
fn hex(out: &mut Vec<u8>, b: &[u8]) {
    const H: &[u8; 16] = b"0123456789abcdef";
    for &x in b {
        out.push(H[usize::from(x >> 4)]);
        out.push(H[usize::from(x & 15)]);
    }
}

fn attrs(out: &mut Vec<u8>, a: &Attrs) {
    if a.is_empty() {
        return;
    }
    out.extend_from_slice(br#","attributes":["#);
    for (i, (k, v)) in a.iter().enumerate() {
        attr(out, k, v, i == 0);
    }
    out.push(b']');
}

fn attr(out: &mut Vec<u8>, key: &str, v: &Val, first: bool) {
    if !first {
        out.push(b',');
    }
    out.extend_from_slice(br#"{"key":"#);
    string(out, key);
    match v {
        Val::Str(s) => {
            out.extend_from_slice(br#","value":{"stringValue":"#);
            string(out, s);
            out.extend_from_slice(b"}}");
        }
        Val::Int(n) => {
            let _ = write!(out, ",\"value\":{{\"intValue\":\"{n}\"}}}}");
        }
    }
}

/// `s` as a JSON string.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    // Most strings need no escape: copy them whole.
    if !b.iter().any(|&c| c == b'"' || c == b'\\' || c < 0x20) {
        out.extend_from_slice(b);
        out.push(b'"');
        return;
    }
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: Option<&[u8]> = match c {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(b.get(run..i).unwrap_or(&[]));
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                let _ = write!(out, "\\u{c:04x}");
            }
        }
        run = i + 1;
    }
    out.extend_from_slice(b.get(run..).unwrap_or(&[]));
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_json() {
        let mut out = Vec::new();
        string(&mut out, "a\"b\\c\nd\u{1}é");
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
        let mut plain = Vec::new();
        string(&mut plain, "plain é");
        assert_eq!(plain, "\"plain é\"".as_bytes());
    }
}
