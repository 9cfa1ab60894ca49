//! Shared checks for the fuzz targets: every event a parser accepts must
//! survive re-encoding, in the JSON format exactly (typed extensions) and in
//! HTTP and Kafka binary mode up to what binary mode can carry.

use ossa_events_core::embedded_io::{ErrorType, Write};
use ossa_events_core::format::binary::{self, Binding};
use ossa_events_core::format::json;
use ossa_events_core::uri::{
    charset_reads_utf8, is_json_media_type, is_text_media_type, starts_with_ignore_ascii_case,
};
use ossa_events_core::{parse, Data, Event, ParseError, Scratch};

/// Scratch size the targets parse with; `ScratchFull` is a normal error.
pub const SCRATCH: usize = 4096;

/// An `embedded_io::Write` into a `Vec` (the core is built without `alloc`).
#[derive(Default)]
pub struct VecWriter(pub Vec<u8>);

impl ErrorType for VecWriter {
    type Error = core::convert::Infallible;
}

impl Write for VecWriter {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Splits `input` like an HTTP message: `name: value` lines up to the first
/// empty line, then the body. A line without `:` is a header with an empty
/// value; a name that is not UTF-8 ends the header block. Values keep their
/// bytes (leading spaces, quotes, `%` escapes) for the parser to deal with.
pub fn split_message(input: &[u8]) -> (Vec<(&str, &[u8])>, &[u8]) {
    let mut headers = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let (line, tail) = (&rest[..end], rest.get(end + 1..).unwrap_or(&[]));
        rest = tail;
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        let Ok(name) = core::str::from_utf8(&line[..colon]) else {
            break;
        };
        headers.push((name, line.get(colon + 1..).unwrap_or(&[])));
    }
    (headers, rest)
}

/// Runs every re-encoding check on `ev`, after checking that the full
/// rule check agrees with the parser that accepted it (the parsers take
/// shortcuts, e.g. no `String` check of escape-free values in an input with
/// no byte at or above 0x7f; `validate` takes none).
pub fn check_event(ev: &Event<'_>) {
    if let Err(e) = ev.validate() {
        panic!("a parser accepted an event that validate() rejects: {e:?}\n{ev:?}");
    }
    check_json(ev);
    check_binary(ev, Binding::Http);
    check_binary(ev, Binding::Kafka);
}

/// Structured JSON: encoding is exact-sized, parses back to the same event
/// (typed), and is canonical (encoding the re-parsed event gives the same bytes).
pub fn check_json(ev: &Event<'_>) {
    let len = json::encoded_len(ev).expect("parsed events have no Serialize payload");
    let mut out = vec![0u8; len];
    let n = json::to_slice(ev, &mut out).expect("encoded_len is exact");
    assert_eq!(n, len, "to_slice wrote other than encoded_len bytes");
    // Unescaped strings are never longer than the JSON that holds them.
    let mut buf = vec![0u8; n];
    let text = String::from_utf8_lossy(&out);
    let back = parse::json::parse_event(&out, &mut Scratch::new(&mut buf))
        .unwrap_or_else(|e| panic!("re-parsing our own JSON failed: {e:?}\n{text}\n{ev:?}"));
    assert!(
        back.same_as(ev, true),
        "JSON round trip changed the event\n{text}\n{ev:?}\n{back:?}"
    );
    let mut again = vec![0u8; n];
    assert_eq!(json::to_slice(&back, &mut again).ok(), Some(n), "{text}");
    assert_eq!(again, out, "JSON encoding is not canonical\n{text}");
}

/// Binary mode: headers + content type + body parse back to the same event,
/// compared by canonical strings, after what binary mode cannot carry is
/// normalised away: the implied `application/json` content type becomes
/// explicit, surrounding whitespace of the content type is trimmed, empty data
/// is no data (in HTTP, and in Kafka under a JSON content type; else Kafka
/// sends it as an empty value, which is empty data), and data is re-typed by
/// the content type.
pub fn check_binary(ev: &Event<'_>, binding: Binding) {
    let ct = binary::content_type(ev);
    if binding == Binding::Kafka
        && ct.is_some_and(|c| starts_with_ignore_ascii_case(c.trim(), "application/cloudevents"))
    {
        return; // a Kafka record with this content type is structured by definition
    }
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for h in binary::headers(ev, binding) {
        let value = h.value().to_string();
        if let Some(plain) = h.value().as_plain_str() {
            assert_eq!(plain, value, "as_plain_str differs from the written value");
        }
        headers.push((h.name().to_string(), value.into_bytes()));
    }
    if let Some(ct) = ct {
        headers.push((binding.content_type_header().into(), ct.as_bytes().to_vec()));
    }
    let mut body = VecWriter::default();
    binary::write_body(ev, &mut body).expect("a parsed event writes its body");
    let body = body.0;
    if let Some(b) = binary::body_slice(ev) {
        assert_eq!(b, &body[..], "body_slice differs from write_body");
    }

    let mut buf = vec![0u8; body.len() + headers.iter().map(|(_, v)| v.len()).sum::<usize>()];
    let hs = headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
    let mut scratch = Scratch::new(&mut buf);
    // What the Kafka sink sends: no value for no data, else the body, empty
    // or not (`Encoded::has_data`).
    let empty_value = binding == Binding::Kafka && body.is_empty() && ev.data().is_some();
    let back = match binding {
        Binding::Http => parse::http::parse_binary(hs, &body, &mut scratch),
        _ => {
            let value = (!body.is_empty() || empty_value).then_some(&body[..]);
            parse::kafka::parse(hs, None, value, &mut scratch).map(|r| r.event)
        }
    };
    let json_ct = ct.is_some_and(is_json_media_type);
    let back = match back {
        Ok(b) => b,
        // Base64 data under a JSON content type: binary mode must carry the
        // decoded bytes as a JSON body, which they need not be.
        Err(ParseError::Invalid(_)) if json_ct && ev.data().is_some_and(|d| d.is_binary()) => {
            return
        }
        Err(e) => panic!("{binding:?} round trip failed: {e:?}\n{headers:?}\n{body:?}\n{ev:?}"),
    };

    let data = match ev.data() {
        // JSON text is never empty: the reader takes it for no data.
        _ if empty_value && json_ct => None,
        _ if empty_value && ct.is_some_and(is_text_media_type) => Some(Data::Text("")),
        _ if empty_value => Some(Data::Binary(&[])),
        _ if body.is_empty() => None,
        // Under a charset that reads UTF-8 as other text, the body is bytes.
        _ if ct.is_some_and(|c| !charset_reads_utf8(c.trim(), &body)) => Some(Data::Binary(&body)),
        Some(Data::Json(raw)) if !json_ct => Some(Data::Text(raw)),
        Some(d) if d.is_binary() && json_ct => Some(Data::Json(
            core::str::from_utf8(&body).expect("parsed as JSON"),
        )),
        d => d.copied(),
    };
    let mut expected = ev.to_builder().no_data();
    if let Some(ct) = ct {
        expected = expected.datacontenttype(ct.trim());
    }
    if let Some(d) = data {
        expected = expected.data(d);
    }
    let expected = expected.build().expect("normalised event is valid");
    assert!(
        back.same_as(&expected, false),
        "{binding:?} round trip changed the event\n{headers:?}\n{body:?}\n{ev:?}\n{back:?}"
    );
}
