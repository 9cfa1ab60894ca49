//! What `cloudevents-sdk` 0.9's HTTP binding sends, read by our receiver
//! (`ossa_events::receiver`, what `ossa-events listen` runs) over a real
//! loopback socket.
//!
//! * binary mode: `http::Request::try_from(event)` (the sdk's
//!   `binding::http` serializer: `ce-` headers, `Content-Type`, the data as
//!   the body);
//! * structured mode: `StructuredDeserializer::deserialize_structured` into
//!   the sdk's `binding::http::Serializer` (`Content-Type:
//!   application/cloudevents+json`, the event as JSON).
//!
//! Each request is sent with ureq, must be answered `202`, and the event our
//! handler got must be the sdk's: every attribute (`dataschema`, `subject`, a
//! `time` with fractional seconds and an offset), extensions of each sdk type
//! (string, integer, boolean), JSON, text and binary data and none, and
//! non-ASCII text in attributes and data.
//!
//! SDK DEVIATION: the sdk writes attribute values into headers without the
//! percent-encoding HTTP binding §3.1.3.2 requires (non-ASCII as raw UTF-8,
//! `"`, space and `%` as they are; see `roundtrip_with_cloudevents_sdk.rs`,
//! `sdk_does_not_percent_encode`). We read raw UTF-8 as it is; a raw `%`
//! cannot be told from an encoded one, so the binary-mode fixtures hold none.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sdk_compare;

use std::sync::{Arc, Mutex};

use cloudevents::binding::http::{Builder, Serializer};
use cloudevents::event::ExtensionValue;
use cloudevents::message::StructuredDeserializer as _;
use cloudevents::{AttributesReader as _, Event as SdkEvent, EventBuilder as _, EventBuilderV10};
use ossa_events::receiver::{Receiver, ReceiverConfig};
use ossa_events::{Event, ExtValue, Scratch};
use sdk_compare::{norm_ours, norm_sdk, same_instant, sdk_events};

/// The sdk's `binding::http::Builder` over an `http::request::Builder`, for
/// its structured-mode `Serializer`.
struct RequestBuilder(Option<http::request::Builder>);

impl Builder<http::Request<Vec<u8>>> for RequestBuilder {
    fn header(&mut self, key: &str, value: http::HeaderValue) {
        self.0 = self.0.take().map(|b| b.header(key, value));
    }
    fn body(&mut self, bytes: Vec<u8>) -> cloudevents::message::Result<http::Request<Vec<u8>>> {
        Ok(self.0.take().unwrap().body(bytes).unwrap())
    }
    fn finish(&mut self) -> cloudevents::message::Result<http::Request<Vec<u8>>> {
        self.body(Vec::new())
    }
}

/// The sdk's request for `ev` in binary or structured mode, as a POST to `url`.
fn sdk_request(ev: &SdkEvent, binary: bool, url: &str) -> http::Request<Vec<u8>> {
    if binary {
        let req: http::Request<Option<Vec<u8>>> = http::Request::try_from(ev.clone()).unwrap();
        let (mut parts, body) = req.into_parts();
        parts.method = http::Method::POST;
        parts.uri = url.parse().unwrap();
        http::Request::from_parts(parts, body.unwrap_or_default())
    } else {
        let b = http::Request::builder().method("POST").uri(url);
        ev.clone()
            .deserialize_structured(Serializer::new(RequestBuilder(Some(b))))
            .unwrap()
    }
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// `ours` (what the receiver handed us) is the sdk's event `sdk`. `binary`:
/// it went in binary mode, where every extension is a string.
fn assert_same(what: &str, ours: &Event<'_>, sdk: &SdkEvent, binary: bool) {
    assert_eq!(ours.id(), sdk.id(), "{what}: id");
    assert_eq!(ours.source(), sdk.source().as_str(), "{what}: source");
    assert_eq!(ours.ty(), sdk.ty(), "{what}: type");
    assert_eq!(ours.subject(), sdk.subject(), "{what}: subject");
    assert_eq!(
        ours.dataschema(),
        sdk.dataschema().map(|u| u.as_str()),
        "{what}: dataschema"
    );
    match (ours.time(), sdk.time()) {
        (None, None) => {}
        (Some(a), Some(b)) => assert!(same_instant(a, b), "{what}: time {a} vs {b}"),
        (a, b) => panic!("{what}: time {a:?} vs {b:?}"),
    }
    assert_eq!(
        ours.datacontenttype(),
        sdk.datacontenttype(),
        "{what}: datacontenttype"
    );
    assert_eq!(
        ours.extensions().len(),
        sdk.iter_extensions().count(),
        "{what}: extension count"
    );
    for (name, v) in sdk.iter_extensions() {
        let e = ours
            .extensions()
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{what}: extension {name} lost"));
        match (v, &e.value) {
            (ExtensionValue::String(s), ExtValue::String(o)) => assert_eq!(s, o, "{what}: {name}"),
            (ExtensionValue::Integer(i), ExtValue::Integer(o)) if !binary => {
                assert_eq!(*i, i64::from(*o), "{what}: {name}");
            }
            (ExtensionValue::Boolean(b), ExtValue::Boolean(o)) if !binary => {
                assert_eq!(b, o, "{what}: {name}");
            }
            // Binary mode: the header's string, the canonical form.
            (v, o) if binary => assert_eq!(v.to_string(), o.canonical().to_string(), "{name}"),
            (v, o) => panic!("{what}: extension {name}: sdk {v:?}, ours {o:?}"),
        }
    }
    assert_eq!(norm_ours(ours), norm_sdk(sdk), "{what}: data");
}

fn sdk_requests_are_read_by_the_receiver(binary: bool) {
    let (handle, url, got) = ossa_events_tests::collecting_receiver();
    // No `%` in attribute values (see the module docs).
    let sent = sdk_events(false);
    for ev in &sent {
        let req = sdk_request(ev, binary, &url);
        let resp =
            ureq::run(req).unwrap_or_else(|e| panic!("binary={binary} {}: refused: {e}", ev.id()));
        assert_eq!(resp.status(), 202, "binary={binary} {}", ev.id());
    }
    handle.shutdown();
    let got = got.lock().unwrap();
    assert_eq!(
        got.len(),
        sent.len(),
        "binary={binary}: one event per request"
    );
    for (json, sdk) in got.iter().zip(&sent) {
        let mut scratch = vec![0u8; json.len()];
        let ours =
            ossa_events::parse::json::parse_event(json, &mut Scratch::new(&mut scratch)).unwrap();
        assert_same(&format!("binary={binary} {}", sdk.id()), &ours, sdk, binary);
    }
}

#[test]
fn binary_requests_of_the_sdk_are_read_by_the_receiver() {
    sdk_requests_are_read_by_the_receiver(true);
}

#[test]
fn structured_requests_of_the_sdk_are_read_by_the_receiver() {
    sdk_requests_are_read_by_the_receiver(false);
}

#[test]
fn an_unencoded_percent_from_the_sdk_is_read_as_the_spec_requires() {
    // SDK DEVIATION: the sdk writes `%` into a `ce-` header as it is (HTTP
    // binding §3.1.3.2 requires `%25`). The receiver must percent-decode
    // header values, so `%41` is read as `A`, and a `%` not followed by two
    // hex digits is no valid encoding: the request is refused (`400`). The
    // sdk's own reader, which does not decode, would read both as written.
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let got2 = Arc::clone(&got);
    let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new()).unwrap();
    let handle = rx
        .spawn(move |ev: &Event<'_>| got2.lock().unwrap().push(ev.subject().unwrap().to_owned()))
        .unwrap();
    let url = format!("http://{}/events", handle.local_addr());
    for (subject, status) in [("%41", 202), ("100% done", 400), ("x%zz", 400)] {
        let ev = EventBuilderV10::new()
            .id("1")
            .source("/s")
            .ty("t")
            .subject(subject)
            .build()
            .unwrap();
        let req = sdk_request(&ev, true, &url);
        assert_eq!(req.headers()["ce-subject"], subject, "sent unencoded");
        let answer = match ureq::run(req) {
            Ok(r) => r.status().as_u16(),
            Err(ureq::Error::StatusCode(s)) => s,
            Err(e) => panic!("{subject}: {e}"),
        };
        assert_eq!(answer, status, "{subject}");
    }
    handle.shutdown();
    assert_eq!(*got.lock().unwrap(), ["A"]);
}
