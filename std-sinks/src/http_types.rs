//! CloudEvents in the [`http`] crate's types, which hyper, axum, reqwest,
//! tonic and (through `actix-http`'s conversions) actix share: parse an event
//! or a batch from an [`http::Request`], an [`http::Response`] or a
//! [`HeaderMap`] and body bytes, and put an event or a batch into a request or
//! a response, in each content mode of the HTTP protocol binding.
//!
//! Parsing is the core's [`parse::http`](crate::parse::http) (zero-copy:
//! events borrow the headers and body, escapes go into a [`Scratch`] buffer),
//! with the header map adapted to it; nothing here allocates but the bodies
//! that are built.
//!
//! ```
//! use ossa_events::http_types::{self, Message};
//! use ossa_events::parse::http::ContentMode;
//! use ossa_events::{Event, Scratch};
//!
//! let ev = Event::builder().id("1").source("/agents/a").ty("dev.ossa.agent.started")
//!     .data_json(r#"{"ok":true}"#).build()?;
//! // A producer: one event as a binary-mode POST.
//! let req = http_types::to_request(&ev, ContentMode::Binary, "http://collector/events")?;
//! assert_eq!(req.headers()["ce-id"], "1");
//! assert_eq!(req.headers()["content-type"], "application/json");
//!
//! // A receiver (a hyper service, an axum handler…): the same request back.
//! let mut buf = [0u8; 256];
//! match http_types::parse_request(&req, &mut Scratch::new(&mut buf))? {
//!     Message::Event(got) => assert!(got.same_as(&ev, false)),
//!     other => unreachable!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;

use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use ossa_events_core::format::binary::{self, Binding};
use ossa_events_core::format::json;
use ossa_events_core::{Attribute, Event, ParseError, Rule, Scratch, ValidationError};

pub use ossa_events_core::parse::http::{ContentMode, Message};

use crate::Error;

/// `Content-Type` of a structured-mode message.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=utf-8";
/// `Content-Type` of a batched-mode message.
pub const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json; charset=utf-8";

/// Parses the message that `headers` and `body` carry, in the content mode
/// its `Content-Type` selects: one event (binary or structured mode) or a
/// batch to read event by event. `body` is the content: a body sent with a
/// `Content-Encoding` (gzip) is decoded first, as the
/// `axum` extractor and the receiver do. A message with more than one
/// `Content-Type` is refused (`datacontenttype` [`Rule::Duplicate`]: which
/// of them picks the content mode is anyone's guess), and so is one whose
/// `Content-Type` has bytes outside visible ASCII
/// ([`ParseError::InvalidHeader`]), in every content mode.
///
/// ```
/// use http::HeaderMap;
/// use ossa_events::http_types::{self, Message};
/// use ossa_events::Scratch;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("ce-specversion", "1.0".parse()?);
/// headers.insert("ce-id", "42".parse()?);
/// headers.insert("ce-source", "/agents/a".parse()?);
/// headers.insert("ce-type", "dev.ossa.turn.started".parse()?);
/// let mut buf = [0u8; 64];
/// let Message::Event(ev) = http_types::parse(&headers, b"", &mut Scratch::new(&mut buf))? else {
///     unreachable!("binary mode")
/// };
/// assert_eq!(ev.id(), "42");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse<'a>(
    headers: &'a HeaderMap,
    body: &'a [u8],
    scratch: &mut Scratch<'a>,
) -> Result<Message<'a>, ParseError> {
    // A `HeaderMap` iterator is not `Clone`: the map looks up the
    // `Content-Type` itself. Of two, the first would pick the content mode
    // (and a proxy may read the other): refused in every mode, as binary
    // mode refuses them, and as the receiver and the axum extractor do. A
    // value outside visible ASCII is no media type (RFC 9110, 8.3).
    let mut types = headers.get_all(CONTENT_TYPE).iter();
    let content_type = match (types.next(), types.next()) {
        (Some(_), Some(_)) => {
            return Err(ValidationError::new(Attribute::DataContentType, Rule::Duplicate).into());
        }
        (Some(v), None) if v.to_str().is_err() => return Err(ParseError::InvalidHeader),
        (v, _) => v.map(HeaderValue::as_bytes),
    };
    ossa_events_core::parse::http::parse_with_content_type(
        content_type,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
        body,
        scratch,
    )
}

/// The bytes of the header names and values: room enough for what binary
/// mode decodes from them (decoding never makes a string longer).
#[cfg_attr(not(any(feature = "axum", feature = "receiver")), allow(dead_code))]
pub(crate) fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum()
}

/// A body's `Content-Encoding`, as the receivers read it.
#[cfg(any(feature = "axum", feature = "receiver"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    /// None, or `identity`: the body is the content.
    Identity,
    /// `gzip` (or its old name `x-gzip`), one or more members.
    Gzip,
}

/// The `Content-Encoding` of `headers`: `None` for a coding the receivers do
/// not read, or for more than one coding (a chain). The field is a list,
/// over one line or several, whose empty elements do not count (RFC 9110,
/// sections 5.6.1 and 8.4): `gzip,` and a `gzip` line beside an empty one
/// are gzip, an empty value is no coding at all.
#[cfg(any(feature = "axum", feature = "receiver"))]
pub(crate) fn content_coding(headers: &HeaderMap) -> Option<Coding> {
    let mut codings = headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty());
    match (codings.next(), codings.next()) {
        (None, _) => Some(Coding::Identity),
        (Some(v), None) => {
            if v.eq_ignore_ascii_case(b"identity") {
                Some(Coding::Identity)
            } else if v.eq_ignore_ascii_case(b"gzip") || v.eq_ignore_ascii_case(b"x-gzip") {
                Some(Coding::Gzip)
            } else {
                None
            }
        }
        (Some(_), Some(_)) => None,
    }
}

/// Why a gzip body was not decoded.
#[cfg(any(feature = "axum", feature = "receiver"))]
#[derive(Debug)]
pub(crate) enum GunzipError {
    /// Not gzip, or cut short.
    Invalid(io::Error),
    /// Decoded, it is over the limit it was given.
    TooLarge,
}

/// Decodes a gzip body (every member) of at most `max` bytes once decoded;
/// stops reading at `max + 1`, so a small body that inflates without end
/// costs no more than that.
#[cfg(any(feature = "axum", feature = "receiver"))]
pub(crate) fn gunzip(body: &[u8], max: usize) -> Result<Vec<u8>, GunzipError> {
    use std::io::Read as _;
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::MultiGzDecoder::new(body)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(GunzipError::Invalid)?;
    if out.len() > max {
        return Err(GunzipError::TooLarge);
    }
    Ok(out)
}

/// Parses a request: [`parse`] on its headers and body. The method and URI
/// are not looked at: a server routes before it parses.
///
/// ```
/// use ossa_events::http_types::{self, Message};
/// use ossa_events::Scratch;
///
/// let body = r#"[{"specversion":"1.0","id":"1","source":"/s","type":"t"},
///                {"specversion":"1.0","id":"2","source":"/s","type":"t"}]"#;
/// let req = http::Request::post("/events")
///     .header("content-type", "application/cloudevents-batch+json")
///     .body(body.as_bytes())?;
/// let mut buf = [0u8; 64];
/// let Message::Batch(mut events) = http_types::parse_request(&req, &mut Scratch::new(&mut buf))? else {
///     unreachable!("batched mode")
/// };
/// let mut ids = Vec::new();
/// let mut scratch = [0u8; 64];
/// while let Some(ev) = events.next_event(&mut scratch) {
///     ids.push(ev?.id().to_owned());
/// }
/// assert_eq!(ids, ["1", "2"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_request<'a, B: AsRef<[u8]>>(
    req: &'a Request<B>,
    scratch: &mut Scratch<'a>,
) -> Result<Message<'a>, ParseError> {
    parse(req.headers(), req.body().as_ref(), scratch)
}

/// Parses a response (a webhook's answer, an event pulled from a server):
/// [`parse`] on its headers and body.
///
/// ```
/// use ossa_events::http_types::{self, Message};
/// use ossa_events::Scratch;
///
/// let res = http::Response::builder()
///     .header("content-type", "application/cloudevents+json")
///     .body(br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#.to_vec())?;
/// let mut buf = [0u8; 64];
/// assert!(matches!(
///     http_types::parse_response(&res, &mut Scratch::new(&mut buf))?,
///     Message::Event(ev) if ev.id() == "1"
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_response<'a, B: AsRef<[u8]>>(
    res: &'a Response<B>,
    scratch: &mut Scratch<'a>,
) -> Result<Message<'a>, ParseError> {
    parse(res.headers(), res.body().as_ref(), scratch)
}

/// Writes `ev` in `mode` into `headers` (the `Content-Type` and, in binary
/// mode, the `ce-` headers; an existing `Content-Type` is replaced, and every
/// existing `ce-` header, `Content-Length` and `Content-Encoding` removed, as
/// they describe another event or body) and returns the body, not
/// content-coded. [`ContentMode::Batched`] gives a batch of one event.
/// An event whose `datacontenttype` is one of CloudEvents' own formats
/// (`application/cloudevents+json`…: it carries an event) is written
/// structured whatever `mode` says: as a binary message its `Content-Type`
/// would make every receiver read the body as the event (HTTP binding, 3.).
/// So is one whose bytes (`data_base64`) are not JSON under a JSON
/// `datacontenttype`: as a binary body, they would be read as JSON and the
/// message refused; and one whose data is empty (`""`, no bytes): an empty
/// binary body is read as no data.
///
/// For a request or a response that the caller builds: [`to_request`] and
/// [`to_response`] are this with the rest filled in.
///
/// ```
/// use http::HeaderMap;
/// use ossa_events::http_types::{self, ContentMode};
/// use ossa_events::Event;
///
/// let ev = Event::builder().id("1").source("/s").ty("t").data_text("text/plain", "hi").build()?;
/// let mut headers = HeaderMap::new();
/// let body = http_types::encode(&ev, ContentMode::Binary, &mut headers)?;
/// assert_eq!(body, b"hi");
/// assert_eq!(headers["content-type"], "text/plain");
/// assert_eq!(headers["ce-type"], "t");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode(
    ev: &Event<'_>,
    mode: ContentMode,
    headers: &mut HeaderMap,
) -> Result<Vec<u8>, Error> {
    remove_stale_headers(headers);
    match mode {
        ContentMode::Binary if !crate::sink::names_a_format(ev.datacontenttype()) => {
            let mut body = Vec::new();
            binary::write_body(ev, &mut body).map_err(|e| Error::Encode(e.to_string()))?;
            let ct = binary::content_type(ev);
            if !crate::sink::binary_body_reads_back(ev, &body) {
                // Bytes under a JSON type: a receiver reads a binary body of
                // that type as JSON (and refuses it). Empty data: a receiver
                // (this crate's, the sdk's) reads an empty body as none. The
                // structured form keeps either as it is.
                return encode(ev, ContentMode::Structured, headers);
            }
            for h in binary::headers(ev, Binding::Http) {
                let name = HeaderName::try_from(h.name().to_string()).map_err(invalid)?;
                let value = HeaderValue::try_from(h.value().to_string()).map_err(invalid)?;
                headers.insert(name, value);
            }
            match ct {
                Some(ct) => {
                    headers.insert(CONTENT_TYPE, HeaderValue::try_from(ct).map_err(invalid)?);
                }
                None => {
                    headers.remove(CONTENT_TYPE);
                }
            }
            Ok(body)
        }
        ContentMode::Batched => encode_batch([ev], headers),
        // An event that carries an event, and (`ContentMode` is
        // non-exhaustive) a mode added later: written as the one every
        // receiver accepts.
        _ => {
            let body = json::to_vec(ev).map_err(|e| Error::Encode(e.to_string()))?;
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static(STRUCTURED_CONTENT_TYPE),
            );
            Ok(body)
        }
    }
}

/// Writes `events` as one batched-mode body (a JSON array) and sets the
/// batch `Content-Type` in `headers` (removing what [`encode`] removes).
///
/// ```
/// use http::HeaderMap;
/// use ossa_events::{http_types, Event};
///
/// let a = Event::builder().id("1").source("/s").ty("t").build()?;
/// let b = Event::builder().id("2").source("/s").ty("t").build()?;
/// let mut headers = HeaderMap::new();
/// let body = http_types::encode_batch([&a, &b], &mut headers)?;
/// assert!(body.starts_with(b"[{") && body.ends_with(b"}]"));
/// assert_eq!(headers["content-type"], http_types::BATCH_CONTENT_TYPE);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn encode_batch<'e, 'a: 'e>(
    events: impl IntoIterator<Item = &'e Event<'a>>,
    headers: &mut HeaderMap,
) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    json::write_batch(events, &mut body).map_err(|e| Error::Encode(e.to_string()))?;
    remove_stale_headers(headers);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(BATCH_CONTENT_TYPE));
    Ok(body)
}

/// Removes every `ce-` header from `headers`, and `Content-Length` and
/// `Content-Encoding`. Left from another event (a map reused, or copied from
/// a message being answered), a binary-mode receiver would read the `ce-`
/// headers as attributes of this one, and in structured mode they would
/// contradict the body (HTTP binding, 3.2.3: the same headers as the
/// event's, if any); the other two describe another body (a stale length
/// cuts this one short or leaves the receiver waiting for more).
fn remove_stale_headers(headers: &mut HeaderMap) {
    headers.remove(CONTENT_LENGTH);
    headers.remove(CONTENT_ENCODING);
    // `HeaderName`s are lower case: `CE-Id` is stored as `ce-id`.
    let stale: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with("ce-"))
        .cloned()
        .collect();
    for name in stale {
        headers.remove(name);
    }
}

/// A `POST` request to `uri` carrying `ev` in `mode`.
///
/// Errors: [`Error::Encode`] when the event's `T: Serialize` payload fails,
/// [`Error::Io`] with [`InvalidInput`](io::ErrorKind::InvalidInput) for a URI
/// that is not one.
///
/// ```
/// use ossa_events::http_types::{self, ContentMode};
/// use ossa_events::Event;
///
/// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
/// let req = http_types::to_request(&ev, ContentMode::Structured, "https://collector.example/e")?;
/// assert_eq!(req.method(), http::Method::POST);
/// assert_eq!(req.headers()["content-type"], http_types::STRUCTURED_CONTENT_TYPE);
/// assert!(http_types::to_request(&ev, ContentMode::Structured, "not a uri").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_request<U>(ev: &Event<'_>, mode: ContentMode, uri: U) -> Result<Request<Vec<u8>>, Error>
where
    U: TryInto<Uri>,
    U::Error: std::fmt::Display,
{
    post(uri, |headers| encode(ev, mode, headers))
}

/// A `POST` request to `uri` carrying `events` as one batch.
///
/// ```
/// use ossa_events::{http_types, Event};
///
/// let evs: Vec<Event<'_>> = (0..3)
///     .map(|i| Event::builder().id(if i == 0 { "a" } else { "b" }).source("/s").ty("t").build())
///     .collect::<Result<_, _>>()?;
/// let req = http_types::batch_request(&evs, "http://collector/events")?;
/// assert_eq!(req.headers()["content-type"], http_types::BATCH_CONTENT_TYPE);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn batch_request<'e, 'a: 'e, U>(
    events: impl IntoIterator<Item = &'e Event<'a>>,
    uri: U,
) -> Result<Request<Vec<u8>>, Error>
where
    U: TryInto<Uri>,
    U::Error: std::fmt::Display,
{
    post(uri, |headers| encode_batch(events, headers))
}

/// A `POST` to `uri` whose headers and body `fill` writes.
fn post<U>(
    uri: U,
    fill: impl FnOnce(&mut HeaderMap) -> Result<Vec<u8>, Error>,
) -> Result<Request<Vec<u8>>, Error>
where
    U: TryInto<Uri>,
    U::Error: std::fmt::Display,
{
    let mut req = Request::new(Vec::new());
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri.try_into().map_err(invalid)?;
    *req.body_mut() = fill(req.headers_mut())?;
    Ok(req)
}

/// A `200 OK` response carrying `ev` in `mode` (a webhook answering with an
/// event).
///
/// ```
/// use ossa_events::http_types::{self, ContentMode};
/// use ossa_events::Event;
///
/// let ev = Event::builder().id("1").source("/s").ty("t").build()?;
/// let res = http_types::to_response(&ev, ContentMode::Binary)?;
/// assert_eq!(res.status(), http::StatusCode::OK);
/// assert_eq!(res.headers()["ce-source"], "/s");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn to_response(ev: &Event<'_>, mode: ContentMode) -> Result<Response<Vec<u8>>, Error> {
    let mut res = Response::new(Vec::new());
    *res.status_mut() = StatusCode::OK;
    *res.body_mut() = encode(ev, mode, res.headers_mut())?;
    Ok(res)
}

/// An [`Error::Io`] of kind `InvalidInput` saying what was wrong.
fn invalid(e: impl std::fmt::Display) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ossa_events_core::Data;

    /// `headers` and `body` parsed back into one event, given to `check`.
    fn parsed(headers: &HeaderMap, body: &[u8], check: impl FnOnce(&Event<'_>)) {
        let mut buf = vec![0u8; body.len() + header_bytes(headers)];
        match parse(headers, body, &mut Scratch::new(&mut buf)) {
            Ok(Message::Event(ev)) => check(&ev),
            other => panic!("{other:?}"),
        }
    }

    /// A map that carried one event in binary mode, reused for another:
    /// the first one's `ce-subject` and extension must not become the
    /// second's (they did: only the second's own header names were replaced),
    /// nor its body's `Content-Length` and `Content-Encoding` the second body's
    /// (they stayed).
    #[test]
    fn encode_leaves_no_ce_header_of_an_earlier_event() {
        let first = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .subject("old")
            .extension_str("tenant", "a")
            .build()
            .unwrap();
        let second = Event::builder()
            .id("2")
            .source("/s")
            .ty("t")
            .build()
            .unwrap();
        for mode in [
            ContentMode::Binary,
            ContentMode::Structured,
            ContentMode::Batched,
        ] {
            let mut headers = HeaderMap::new();
            let old = encode(&first, ContentMode::Binary, &mut headers).unwrap();
            headers.insert("x-request-id", HeaderValue::from_static("r"));
            // What a caller that sent the first one with its length and a
            // content coding has left in the map.
            headers.insert(CONTENT_LENGTH, HeaderValue::from(old.len() + 20));
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            let body = encode(&second, mode, &mut headers).unwrap();
            assert_eq!(headers["x-request-id"], "r", "not ours to remove");
            assert!(
                headers.get("ce-subject").is_none() && headers.get("ce-tenant").is_none(),
                "{mode:?}: {headers:?}"
            );
            assert!(
                headers.get(CONTENT_LENGTH).is_none() && headers.get(CONTENT_ENCODING).is_none(),
                "{mode:?}: the length and coding of another body: {headers:?}"
            );
            if mode != ContentMode::Batched {
                parsed(&headers, &body, |got| {
                    assert!(got.same_as(&second, true), "{got:?}")
                });
            }
        }
    }

    /// Two `Content-Type`s: the first picked the content mode, so a
    /// structured event followed by a second type was taken while the same
    /// two types the other way round were refused (binary mode saw the
    /// duplicate), and the receiver and the axum extractor refuse both. A
    /// value outside visible ASCII (UTF-8 in a parameter) was read as a
    /// structured message's type; the receivers refuse it too.
    #[test]
    fn an_ambiguous_or_non_ascii_content_type_is_refused_in_every_mode() {
        let event = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;
        let duplicate = ParseError::Invalid(ossa_events_core::ValidationError::new(
            ossa_events_core::Attribute::DataContentType,
            ossa_events_core::Rule::Duplicate,
        ));
        let binary = [
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "/s"),
            ("ce-type", "t"),
        ];
        for types in [
            ["application/cloudevents+json", "text/plain"],
            ["application/cloudevents-batch+json", "text/plain"],
            ["text/plain", "application/cloudevents+json"],
        ] {
            let mut headers = HeaderMap::new();
            for (n, v) in binary {
                headers.insert(n, HeaderValue::from_static(v));
            }
            for t in types {
                headers.append(CONTENT_TYPE, HeaderValue::from_static(t));
            }
            let mut buf = [0u8; 256];
            let got = parse(&headers, event, &mut Scratch::new(&mut buf)).map(|_| ());
            assert_eq!(got, Err(duplicate.clone()), "{types:?}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_bytes("application/cloudevents+json; x=\u{e9}".as_bytes()).unwrap(),
        );
        let mut buf = [0u8; 256];
        let got = parse(&headers, event, &mut Scratch::new(&mut buf)).map(|_| ());
        assert_eq!(got, Err(ParseError::InvalidHeader));
    }

    /// `data_base64` under `application/json` whose bytes are not JSON: as
    /// a binary body the receiver reads them as JSON and refuses the message
    /// (400), so it goes structured; bytes that are JSON still go binary.
    #[test]
    fn bytes_that_are_not_json_under_a_json_type_go_structured() {
        let ev = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .datacontenttype("application/json")
            .data(Data::Base64("AAEC"))
            .build()
            .unwrap();
        let mut headers = HeaderMap::new();
        let body = encode(&ev, ContentMode::Binary, &mut headers).unwrap();
        assert_eq!(headers[CONTENT_TYPE], STRUCTURED_CONTENT_TYPE);
        parsed(&headers, &body, |got| {
            assert!(got.same_as(&ev, true), "{got:?}")
        });

        let json = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .datacontenttype("application/json")
            .data(Data::Binary(br#"{"a":1}"#))
            .build()
            .unwrap();
        let mut headers = HeaderMap::new();
        let body = encode(&json, ContentMode::Binary, &mut headers).unwrap();
        assert_eq!(headers[CONTENT_TYPE], "application/json");
        assert_eq!(body, br#"{"a":1}"#);
        parsed(&headers, &body, |got| assert_eq!(got.id(), "1"));
    }

    /// Empty data (`""` text, no bytes) in binary mode is an empty body,
    /// which every receiver reads as no data: it goes structured, where
    /// `"data":""` / `"data_base64":""` keep it.
    #[test]
    fn empty_data_is_not_lost_in_binary_mode() {
        let text = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .data_text("text/plain", "")
            .build()
            .unwrap();
        let bytes = Event::builder()
            .id("2")
            .source("/s")
            .ty("t")
            .data(Data::Binary(&[]))
            .build()
            .unwrap();
        for ev in [&text, &bytes] {
            let mut headers = HeaderMap::new();
            let body = encode(ev, ContentMode::Binary, &mut headers).unwrap();
            parsed(&headers, &body, |got| {
                assert!(got.data().is_some() && got.same_as(ev, true), "{got:?}");
            });
        }
        // JSON text `""` is two bytes: still binary.
        let json = Event::builder()
            .id("3")
            .source("/s")
            .ty("t")
            .data_text("application/json", "")
            .build()
            .unwrap();
        let mut headers = HeaderMap::new();
        let body = encode(&json, ContentMode::Binary, &mut headers).unwrap();
        assert_eq!(
            (headers[CONTENT_TYPE].as_bytes(), &body[..]),
            (&b"application/json"[..], &b"\"\""[..])
        );
    }
}
