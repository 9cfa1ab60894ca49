//! The HTTP schema registry against a real HTTP server on loopback: fetched
//! once, off the caller's thread, cached and refreshed; 404, slow, broken
//! and failing answers give an error with a reason, never a pass; the
//! Confluent subject/version API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ossa_events::schema::{Checked, HttpRegistry, SchemaError, SchemaRegistry};
use ossa_events::sink::NullSink;
use ossa_events::{Emitter, Error, Event, EventBuilder};

/// What the server answers on a path.
#[derive(Clone)]
enum Answer {
    Json(String),
    Status(u16),
    /// Waits this long, then answers.
    Slow(Duration, String),
    /// Waits until the gate opens, then answers.
    Held(String),
    /// Writes these bytes and closes the connection.
    Raw(&'static str),
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Answer>,
    hits: HashMap<String, usize>,
    open: bool,
}

/// A real HTTP/1.1 server on a free loopback port, one thread per connection.
struct Server {
    base: String,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl Server {
    fn start() -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/", l.local_addr().unwrap());
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        Server { base, state }
    }
    fn route(&self, path: &str, a: Answer) {
        self.state
            .0
            .lock()
            .unwrap()
            .routes
            .insert(path.to_string(), a);
    }
    fn hits(&self, path: &str) -> usize {
        *self.state.0.lock().unwrap().hits.get(path).unwrap_or(&0)
    }
    fn open_gate(&self) {
        self.state.0.lock().unwrap().open = true;
        self.state.1.notify_all();
    }
}

fn serve(mut conn: TcpStream, state: &(Mutex<State>, Condvar)) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
    let answer = {
        let mut st = state.0.lock().unwrap();
        *st.hits.entry(path.clone()).or_default() += 1;
        st.routes.get(&path).cloned().unwrap_or(Answer::Status(404))
    };
    let ok = |body: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let text = match answer {
        Answer::Json(b) => ok(&b),
        Answer::Status(s) => {
            format!("HTTP/1.1 {s} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}")
        }
        Answer::Slow(d, b) => {
            std::thread::sleep(d);
            ok(&b)
        }
        Answer::Held(b) => {
            let mut st = state.0.lock().unwrap();
            while !st.open {
                st = state.1.wait(st).unwrap();
            }
            ok(&b)
        }
        Answer::Raw(r) => r.to_string(),
    };
    let _ = conn.write_all(text.as_bytes());
}

const ORDER: &str = r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["order"],"properties":{"order":{"type":"string"}}}"#;
const SKU: &str = r#"{"type":"object","required":["sku"]}"#;
const TY: &str = "com.acme.order.placed";

fn event<'a>(data: &'a str, dataschema: Option<&'a str>) -> Event<'a> {
    let mut b = Event::builder()
        .id("1")
        .source("/shop")
        .ty(TY)
        .data_json(data);
    if let Some(u) = dataschema {
        b = b.dataschema(u);
    }
    b.build().unwrap()
}

/// An event of type `ty` with `data`.
fn of_type(ty: &'static str, data: &'static str) -> Event<'static> {
    Event::builder()
        .id("1")
        .source("/s")
        .ty(ty)
        .data_json(data)
        .build()
        .unwrap()
}

fn registry(s: &Server, h: HttpRegistry) -> SchemaRegistry {
    let _ = s;
    SchemaRegistry::builder().http(h).build().unwrap()
}

const WAIT: Duration = Duration::from_secs(10);

fn unavailable(r: Result<Checked, SchemaError>) -> String {
    match r {
        Err(SchemaError::Unavailable { reason, .. }) => reason,
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[test]
fn a_remote_schema_is_fetched_once_in_the_background_then_checks_every_event() {
    let s = Server::start();
    s.route(&format!("/{TY}.json"), Answer::Json(ORDER.into()));
    let r = registry(&s, HttpRegistry::new(&s.base));
    // The first check does not wait: the schema is being fetched.
    let reason = unavailable(r.check(&event(r#"{"order":"o-1"}"#, None)));
    assert!(reason.contains("being fetched"), "{reason}");
    let good = r.check_within(&event(r#"{"order":"o-1"}"#, None), WAIT);
    let Ok(Checked::Valid { schema }) = good else {
        panic!("{good:?}")
    };
    assert_eq!(&*schema, format!("{}{TY}.json", s.base));
    for _ in 0..100 {
        match r.check(&event(r#"{"order":7}"#, None)) {
            Err(SchemaError::Violation(v)) => {
                assert_eq!(
                    (v.instance_path.as_str(), v.keyword.as_str()),
                    ("/order", "type")
                )
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(s.hits(&format!("/{TY}.json")), 1, "cached: fetched once");
    assert_eq!(r.schema_uri(TY).as_deref(), Some(&*schema));
    // An event that names that schema as its `dataschema` (as an emitter
    // with `dataschema(true)` stamps it) is checked with it at once, not
    // refused "being fetched" while the same URL is fetched again.
    let named = r.check(&event(r#"{"order":"o-1"}"#, Some(&schema)));
    assert!(matches!(named, Ok(Checked::Valid { .. })), "{named:?}");
    assert_eq!(s.hits(&format!("/{TY}.json")), 1, "not fetched again");
}

#[test]
fn emit_never_waits_for_the_registry_and_never_lets_an_unchecked_event_pass() {
    let s = Server::start();
    s.route(&format!("/{TY}.json"), Answer::Held(ORDER.into()));
    let schemas = registry(&s, HttpRegistry::new(&s.base));
    let emitter = Emitter::builder("/shop")
        .sink(NullSink::new())
        .schemas(schemas.clone())
        .build()
        .unwrap();
    let ev = || EventBuilder::new().ty(TY).data_json(r#"{"order":"o-1"}"#);
    // The registry holds its answer until the gate opens: emit returns
    // anyway, refusing the event with the reason.
    let r = emitter.emit(ev());
    let Err(Error::Schema(e)) = r else {
        panic!("{r:?}")
    };
    assert!(
        e.to_string().contains("schema unavailable") && e.to_string().contains("being fetched"),
        "{e}"
    );
    assert!(
        !s.state.0.lock().unwrap().open,
        "emit returned before the answer"
    );
    s.open_gate();
    schemas.prefetch(&[TY], &[], WAIT).unwrap();
    emitter.emit(ev()).unwrap();
    let m = emitter.metrics();
    assert_eq!((m.rejected, m.emitted), (1, 1));
    assert_eq!(emitter.flush().unwrap().delivered, 1);
}

#[test]
fn a_404_for_a_type_means_no_schema_and_for_a_declared_schema_an_error() {
    let s = Server::start();
    let r = registry(&s, HttpRegistry::new(&s.base));
    assert_eq!(
        r.check_within(&event("{}", None), WAIT).unwrap(),
        Checked::NoSchema
    );
    let strict = SchemaRegistry::builder()
        .http(HttpRegistry::new(&s.base))
        .require_schema(true)
        .build()
        .unwrap();
    assert!(matches!(
        strict.check_within(&event("{}", None), WAIT),
        Err(SchemaError::NoSchema { .. })
    ));
    // A dataschema under the registry's URL must be there.
    let declared = format!("{}orders/v2.json", s.base);
    let reason = unavailable(r.check_within(&event("{}", Some(&declared)), WAIT));
    assert!(reason.contains("404"), "{reason}");
    // Served: then it is the one that applies (not the type's).
    s.route("/orders/v2.json", Answer::Json(SKU.into()));
    let r = registry(&s, HttpRegistry::new(&s.base));
    let e = r.check_within(&event(r#"{"order":"o"}"#, Some(&declared)), WAIT);
    assert!(
        matches!(&e, Err(SchemaError::Violation(v)) if v.keyword == "required" && v.schema == declared),
        "{e:?}"
    );
}

#[test]
fn slow_broken_and_failing_answers_are_errors_with_a_reason_then_retried() {
    let s = Server::start();
    let cases: [(&str, Answer, &str); 7] = [
        (
            "com.slow",
            Answer::Slow(Duration::from_secs(30), ORDER.into()),
            "timed out",
        ),
        ("com.err", Answer::Status(500), "answered 500"),
        ("com.text", Answer::Json("<html>".into()), "not JSON"),
        (
            "com.cut",
            Answer::Raw(
                "HTTP/1.1 200 OK\r\nContent-Length: 500\r\nConnection: close\r\n\r\n{\"type\":",
            ),
            "reading the answer failed",
        ),
        (
            "com.garbage",
            Answer::Raw("HTTP/9 what\r\n\r\n"),
            "fetch failed",
        ),
        (
            "com.badschema",
            Answer::Json(r#"{"type":3}"#.into()),
            "not a valid JSON Schema",
        ),
        // Not followed (it was, to any host, with the registry's headers).
        (
            "com.moved",
            Answer::Raw(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/x.json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            ),
            "redirects are not followed",
        ),
    ];
    // Only the slow answer is to time out: with 300 ms, a loaded machine's
    // server thread answered the others later than that ("com.garbage:
    // timed out after 300ms", not "fetch failed").
    let r = registry(
        &s,
        HttpRegistry::new(&s.base)
            .timeout(Duration::from_secs(2))
            .retry_after(Duration::from_millis(200)),
    );
    for (ty, answer, want) in &cases {
        s.route(&format!("/{ty}.json"), answer.clone());
        let ev = Event::builder()
            .id("1")
            .source("/s")
            .ty(ty)
            .data_json("{}")
            .build()
            .unwrap();
        let reason = unavailable(r.check_within(&ev, WAIT));
        assert!(reason.contains(want), "{ty}: {reason}");
    }
    // Fixed on the server: tried again after `retry_after`, then used.
    s.route("/com.err.json", Answer::Json(SKU.into()));
    let ev = Event::builder()
        .id("1")
        .source("/s")
        .ty("com.err")
        .data_json(r#"{"sku":"x"}"#)
        .build()
        .unwrap();
    let until = Instant::now() + WAIT;
    loop {
        match r.check_within(&ev, Duration::from_millis(50)) {
            Ok(Checked::Valid { .. }) => break,
            Err(SchemaError::Unavailable { .. }) if Instant::now() < until => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(s.hits("/com.err.json") >= 2);
}

/// A schema whose `$ref`s chain without end (each served document refers
/// to a next one) is refused after a bounded number of them; it kept the
/// fetch thread for good (thousands of requests), and every other type
/// waited "being fetched" behind it.
#[test]
fn an_endless_chain_of_references_is_refused_and_others_still_load() {
    let s = Server::start();
    s.route(
        "/com.chain.json",
        Answer::Json(format!(r#"{{"$ref":"{}chain/0.json"}}"#, s.base)),
    );
    for i in 0..200 {
        s.route(
            &format!("/chain/{i}.json"),
            Answer::Json(format!(r#"{{"$ref":"{}chain/{}.json"}}"#, s.base, i + 1)),
        );
    }
    s.route("/com.ok.json", Answer::Json(SKU.into()));
    let r = registry(&s, HttpRegistry::new(&s.base));
    let ev = of_type;
    let reason = unavailable(r.check_within(&ev("com.chain", "{}"), WAIT));
    assert!(reason.contains("schemas referenced"), "{reason}");
    assert!(
        s.hits("/chain/100.json") == 0,
        "the chain was followed past its bound"
    );
    assert!(matches!(
        r.check_within(&ev("com.ok", r#"{"sku":"x"}"#), WAIT),
        Ok(Checked::Valid { .. })
    ));
}

#[test]
fn confluent_subject_versions_api() {
    let s = Server::start();
    let envelope = serde_json::json!({
        "subject": TY, "version": 3, "id": 17, "schemaType": "JSON", "schema": ORDER
    })
    .to_string();
    s.route(
        &format!("/subjects/{TY}/versions/latest"),
        Answer::Json(envelope),
    );
    s.route(
        "/subjects/com.avro/versions/latest",
        Answer::Json(r#"{"schemaType":"AVRO","schema":"{}"}"#.into()),
    );
    // The API leaves `schemaType` out for AVRO, its default: an Avro
    // record schema was compiled as a JSON Schema and failed as "not a
    // valid JSON Schema", which named the wrong cause.
    s.route(
        "/subjects/com.avro2/versions/latest",
        Answer::Json(r#"{"subject":"com.avro2","version":1,"id":5,"schema":"{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}"}"#.into()),
    );
    let r = registry(&s, HttpRegistry::confluent(s.base.trim_end_matches('/')));
    assert!(matches!(
        r.check_within(&event(r#"{"order":"o"}"#, None), WAIT),
        Ok(Checked::Valid { .. })
    ));
    assert!(matches!(
        r.check(&event("{}", None)),
        Err(SchemaError::Violation(v)) if v.keyword == "required"
    ));
    let avro = Event::builder()
        .id("1")
        .source("/s")
        .ty("com.avro")
        .data_json("{}")
        .build()
        .unwrap();
    assert!(unavailable(r.check_within(&avro, WAIT)).contains("AVRO"));
    let avro2 = Event::builder()
        .id("2")
        .source("/s")
        .ty("com.avro2")
        .data_json("{}")
        .build()
        .unwrap();
    assert!(unavailable(r.check_within(&avro2, WAIT)).contains("no schemaType, which is AVRO"));
    // A pinned version that is not there is an error, not "no schema".
    s.route(
        &format!("/subjects/{TY}/versions/9"),
        Answer::Raw(
            "HTTP/1.1 404 Not Found\r\nContent-Length: 56\r\nConnection: close\r\n\r\n{\"error_code\":40402,\"message\":\"Version 9 not found.\"}   ",
        ),
    );
    let missing = registry(
        &s,
        HttpRegistry::confluent(s.base.trim_end_matches('/')).version("9"),
    );
    assert!(unavailable(missing.check_within(&event("{}", None), WAIT)).contains("40402"));
    // A pinned version is another URL.
    s.route(
        &format!("/subjects/{TY}/versions/2"),
        Answer::Json(serde_json::json!({ "schemaType": "JSON", "schema": SKU }).to_string()),
    );
    let pinned = registry(
        &s,
        HttpRegistry::confluent(s.base.trim_end_matches('/')).version("2"),
    );
    assert!(matches!(
        pinned.check_within(&event(r#"{"order":"o"}"#, None), WAIT),
        Err(SchemaError::Violation(v)) if v.message.contains("sku")
    ));
}

#[test]
fn a_refresh_replaces_the_schema_in_the_background_and_a_failed_one_keeps_it() {
    let s = Server::start();
    let path = format!("/{TY}.json");
    s.route(&path, Answer::Json(ORDER.into()));
    let r = registry(
        &s,
        HttpRegistry::new(&s.base)
            .refresh(Duration::from_millis(100))
            .retry_after(Duration::from_millis(100)),
    );
    let data = r#"{"order":"o"}"#;
    assert!(matches!(
        r.check_within(&event(data, None), WAIT),
        Ok(Checked::Valid { .. })
    ));
    // A new version on the server: picked up by a background refresh.
    s.route(&path, Answer::Json(SKU.into()));
    let until = Instant::now() + WAIT;
    while r.check(&event(data, None)).is_ok() {
        assert!(Instant::now() < until, "never refreshed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The registry fails from now on: the schema it had stays in use.
    s.route(&path, Answer::Status(503));
    let hits = s.hits(&path);
    while s.hits(&path) < hits + 2 {
        let e = r.check(&event(data, None));
        assert!(
            matches!(&e, Err(SchemaError::Violation(v)) if v.message.contains("sku")),
            "{e:?}"
        );
        assert!(Instant::now() < until, "no refresh tried");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn made_up_types_cannot_grow_the_cache_or_the_requests_past_the_cap() {
    let s = Server::start();
    let r = registry(&s, HttpRegistry::new(&s.base).max_schemas(2));
    let ev = |ty: &'static str| {
        Event::builder()
            .id("1")
            .source("/s")
            .ty(ty)
            .data_json("{}")
            .build()
            .unwrap()
    };
    for ty in ["com.a", "com.b"] {
        assert_eq!(r.check_within(&ev(ty), WAIT).unwrap(), Checked::NoSchema);
    }
    let reason = unavailable(r.check_within(&ev("com.c"), WAIT));
    assert!(reason.contains("schema cache full"), "{reason}");
    assert_eq!(s.hits("/com.c.json"), 0, "not asked of the registry");
    // Those already known still answer.
    assert_eq!(r.check(&ev("com.a")).unwrap(), Checked::NoSchema);
}

/// A served schema without `$id` has the URL it was fetched from as the base
/// of its relative `$ref`s (before, `"$ref": "defs/sku.json"` had no base
/// and the schema failed to compile), and a served schema's `file:` `$ref`
/// reads no local file, even with schema directories configured.
#[test]
fn a_served_schema_resolves_relative_refs_against_its_url_and_reads_no_local_file() {
    let s = Server::start();
    route_relative_ref(&s);
    let root = std::env::temp_dir().join(format!("ossa-schema-local-{}", std::process::id()));
    let dir = root.join("schemas");
    std::fs::create_dir_all(&dir).unwrap();
    // Outside the schema directory (its own files are schemas for anyone).
    let secret = root.join("secret.json");
    std::fs::write(&secret, r#"{"type":"string"}"#).unwrap();
    s.route(
        "/com.local.json",
        Answer::Json(format!(
            r#"{{"properties":{{"x":{{"$ref":"file://{}"}}}}}}"#,
            secret.display()
        )),
    );
    let r = SchemaRegistry::builder()
        .dir(&dir)
        .http(HttpRegistry::new(&s.base))
        .build()
        .unwrap();
    let ev = of_type;
    let good = r.check_within(&ev("com.rel", r#"{"sku":"SKU-1"}"#), WAIT);
    assert!(matches!(good, Ok(Checked::Valid { .. })), "{good:?}");
    match r.check_within(&ev("com.rel", r#"{"sku":"X"}"#), WAIT) {
        Err(SchemaError::Violation(v)) => assert_eq!(v.instance_path, "/sku"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.hits("/defs/sku.json"), 1);
    let reason = unavailable(r.check_within(&ev("com.local", r#"{"x":"y"}"#), WAIT));
    assert!(reason.contains("may not read local"), "{reason}");
    let _ = std::fs::remove_dir_all(&root);
}

/// An event's `dataschema` that starts with the registry's URL but climbs
/// out of its path with dot segments (`../`, or `%2e%2e/` that servers
/// decode the same) is not the registry's to fetch: before, the registry
/// fetched it, with its configured headers (a token), from wherever on the
/// registry's host the sender pointed, while a type naming the same path was
/// kept to one segment.
#[test]
fn a_dataschema_climbing_out_of_the_registry_path_is_not_fetched() {
    let s = Server::start();
    let base = format!("{}schemas/", s.base);
    let r = SchemaRegistry::builder()
        .http(HttpRegistry::new(&base).header("Authorization", "Bearer t0ken"))
        .build()
        .unwrap();
    for escape in [
        "../admin/token.json",
        "%2e%2e/admin/token.json",
        "a/%2E%2e/../admin/token.json",
        "..%5Cadmin",
    ] {
        let declared = format!("{base}{escape}");
        let _ = r.check_within(&event("{}", Some(&declared)), WAIT);
    }
    let state = s.state.0.lock().unwrap();
    let outside: Vec<&String> = state
        .hits
        .keys()
        .filter(|p| {
            let p = p.to_ascii_lowercase();
            p.contains("..") || p.contains("%2e")
        })
        .collect();
    assert!(outside.is_empty(), "fetched {outside:?}");
}

/// A type of `.` or `..` (valid CloudEvents types) is not asked of a
/// Confluent registry: as the subject segment of
/// `subjects/{type}/versions/latest` it is a dot segment, which the server
/// resolves to another of its resources (`subjects/versions/latest`: the
/// schema of the subject `versions`). Before, the request went out as is,
/// although a type is meant to stay one path segment.
#[test]
fn confluent_types_that_are_dot_segments_are_not_asked_for() {
    let s = Server::start();
    let r = registry(&s, HttpRegistry::confluent(s.base.trim_end_matches('/')));
    for ty in [".", ".."] {
        let got = r.check_within(&of_type(ty, "{}"), WAIT);
        assert_eq!(got, Ok(Checked::NoSchema), "{ty}");
    }
    let state = s.state.0.lock().unwrap();
    let dotted: Vec<&String> = state
        .hits
        .keys()
        .filter(|p| p.split('/').any(|seg| seg == "." || seg == ".."))
        .collect();
    assert!(dotted.is_empty(), "asked for {dotted:?}");
}

/// Credentials in the registry URL (`http://user:password@host/`, sent as
/// `Authorization: Basic`) stay out of `Debug` output and of the errors that
/// name the schema being fetched, as header values do.
#[test]
fn registry_url_credentials_stay_out_of_debug_and_errors() {
    // Port 1 on loopback: nothing listens, every fetch fails at once.
    let h = HttpRegistry::new("http://alice:s3cret@127.0.0.1:1/schemas");
    let d = format!("{h:?}");
    assert!(
        !d.contains("s3cret") && d.contains("***@127.0.0.1:1"),
        "{d}"
    );
    let r = SchemaRegistry::builder().http(h).build().unwrap();
    let first = r.check(&event(r#"{"order":"o-1"}"#, None));
    let failed = r.check_within(&event(r#"{"order":"o-1"}"#, None), WAIT);
    for e in [first, failed] {
        let Err(e) = e else { panic!("{e:?}") };
        let (shown, debug) = (e.to_string(), format!("{e:?}"));
        assert!(shown.contains("***@127.0.0.1:1"), "{shown}");
        assert!(
            !shown.contains("s3cret") && !debug.contains("s3cret"),
            "{debug}"
        );
    }
}

/// A schema whose `$id` ends with an empty fragment (`…/order.json#`, the
/// draft-04/07 habit) or is relative (`rel.json`) is known by that `$id`
/// made absolute, without the fragment (JSON Schema 2020-12 §8.2.1: `$id`
/// is resolved against the base URI and has no fragment): that is the URI
/// an emitter with `dataschema(true)` stamps (before, `…/order.json#` or
/// `rel.json`, which a CloudEvents `dataschema` may not be: every event of
/// those types was refused at emit), the URI a `dataschema` names it by,
/// and the one other schemas' `$ref`s find it by (before, a `$ref` to
/// `…/order.json` found no source, and the registry did not build).
#[test]
fn a_schema_id_with_an_empty_fragment_or_relative_is_known_absolute() {
    let s = Server::start();
    let d7 = "http://json-schema.org/draft-07/schema#";
    s.route(
        "/com.served.json",
        Answer::Json(format!(
            r#"{{"$schema":"{d7}","$id":"served.json#","type":"object"}}"#
        )),
    );
    let dir = std::env::temp_dir().join(format!("ossa-schema-ids-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        (
            "com.hash.json",
            format!(
                r#"{{"$schema":"{d7}","$id":"http://e.example/order.json#","type":"object","properties":{{"x":{{"type":"string"}}}}}}"#
            ),
        ),
        (
            "com.rel.json",
            r#"{"$id":"rel.json","type":"object"}"#.to_owned(),
        ),
        (
            "com.ref.json",
            format!(
                r#"{{"$schema":"{d7}","properties":{{"o":{{"$ref":"http://e.example/order.json"}}}}}}"#
            ),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let r = SchemaRegistry::builder()
        .dir(&dir)
        .http(HttpRegistry::new(&s.base))
        .build();
    let canon = std::fs::canonicalize(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let r = r.unwrap();
    r.prefetch(&["com.served"], &[], WAIT).unwrap();
    let want = [
        ("com.hash", "http://e.example/order.json".to_owned()),
        ("com.rel", format!("file://{}/rel.json", canon.display())),
        ("com.served", format!("{}served.json", s.base)),
    ];
    for (ty, uri) in &want {
        assert_eq!(r.schema_uri(ty).as_deref(), Some(uri.as_str()), "{ty}");
    }
    let ev = |ty: &'static str, data: &'static str, ds: Option<&'static str>| {
        let mut b = Event::builder().id("1").source("/s").ty(ty).data_json(data);
        if let Some(u) = ds {
            b = b.dataschema(u);
        }
        b.build().unwrap()
    };
    // Named by `dataschema`, the absolute `$id` picks the schema.
    let got = r.check(&ev(
        "com.other",
        r#"{"x":1}"#,
        Some("http://e.example/order.json"),
    ));
    assert!(
        matches!(&got, Err(SchemaError::Violation(v)) if v.instance_path == "/x"),
        "{got:?}"
    );
    ref_checked_and_stamped(r, &want);
}

/// A draft-07 schema whose `$id` has a fragment that is not empty (a
/// plain-name fragment: `#order` alone, or `…/v.json#v1`) is a location
/// for an anchor, not the document's URI (draft-07 §8.2.3; JSON Schema
/// 2020-12 §8.2.1: the base URI has no fragment): the schema is known by
/// the URI without it, the one an emitter with `dataschema(true)` stamps
/// (a CloudEvents `dataschema` is an absolute URI, without fragment:
/// before, `file://…#order` or `…/v.json#v1` was stamped and every event
/// of those types refused at emit) and the one other schemas' `$ref`s find
/// it by (before, it found no source and the registry did not build).
#[test]
fn a_schema_id_with_a_plain_name_fragment_is_known_without_it() {
    let d7 = "http://json-schema.org/draft-07/schema#";
    let dir = std::env::temp_dir().join(format!("ossa-schema-anchors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        (
            "com.anchor.json",
            format!(r##"{{"$schema":"{d7}","$id":"#order","type":"object"}}"##),
        ),
        (
            "com.v1.json",
            format!(
                r##"{{"$schema":"{d7}","$id":"http://e.example/v.json#v1","type":"object","properties":{{"x":{{"type":"string"}}}}}}"##
            ),
        ),
        (
            "com.ref.json",
            format!(
                r#"{{"$schema":"{d7}","properties":{{"o":{{"$ref":"http://e.example/v.json"}}}}}}"#
            ),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let r = SchemaRegistry::builder().dir(&dir).build();
    let canon = std::fs::canonicalize(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let r = r.unwrap();
    let want = [
        (
            "com.anchor",
            format!("file://{}/com.anchor.json", canon.display()),
        ),
        ("com.v1", "http://e.example/v.json".to_owned()),
    ];
    for (ty, uri) in &want {
        assert_eq!(r.schema_uri(ty).as_deref(), Some(uri.as_str()), "{ty}");
    }
    ref_checked_and_stamped(r, &want);
}

/// The scheme and host of a URI are case-insensitive (RFC 3986 §3.1,
/// §3.2.2, §6.2.2.1): a `dataschema` under the registry's URL written
/// with another case (`HTTP://`, `LocalHost`) is the registry's, so one
/// that answers 404 is an error, not a pass checked against the type's
/// schema; and the relative `$ref`s of a schema served by a registry
/// configured as `http://LocalHost:…/` (which `jsonschema` resolves to
/// `http://localhost:…/…`) are fetched from it. Before, both were "not
/// under the registry's URL": the declared schema was ignored, and the
/// served schema failed "no schema source has it".
#[test]
fn the_scheme_and_host_of_a_registry_url_match_in_any_case() {
    let s = Server::start();
    let port = s.base.rsplit(':').next().unwrap().trim_end_matches('/');
    s.route(&format!("/{TY}.json"), Answer::Json(ORDER.into()));
    route_relative_ref(&s);
    let r = registry(&s, HttpRegistry::new(format!("http://LocalHost:{port}/")));
    for declared in [
        format!("HTTP://localhost:{port}/nope.json"),
        format!("http://LOCALHOST:{port}/nope.json"),
    ] {
        let reason = unavailable(r.check_within(&event(r#"{"order":"o"}"#, Some(&declared)), WAIT));
        assert!(reason.contains("404"), "{declared}: {reason}");
    }
    let declared = format!("Http://localHost:{port}/{TY}.json");
    let got = r.check_within(&event("{}", Some(&declared)), WAIT);
    assert!(
        matches!(&got, Err(SchemaError::Violation(v)) if v.keyword == "required"),
        "{got:?}"
    );
    let got = r.check_within(&of_type("com.rel", r#"{"sku":"X"}"#), WAIT);
    assert!(
        matches!(&got, Err(SchemaError::Violation(v)) if v.instance_path == "/sku"),
        "{got:?}"
    );
}

/// `com.rel`, a served schema whose `sku` is a relative `$ref` to
/// `defs/sku.json` (a string starting `SKU-`), served beside it.
fn route_relative_ref(s: &Server) {
    s.route(
        "/com.rel.json",
        Answer::Json(r#"{"type":"object","properties":{"sku":{"$ref":"defs/sku.json"}}}"#.into()),
    );
    s.route(
        "/defs/sku.json",
        Answer::Json(r#"{"type":"string","pattern":"^SKU-"}"#.into()),
    );
}

/// `com.ref`'s `$ref` to a schema known by its absolute `$id` finds it
/// (`{"o":{"x":1}}` breaks it at `/o/x`), and an emitter stamping
/// `dataschema` takes an event of each type in `want` (the URI it stamps
/// is an absolute URI without fragment, as CloudEvents requires).
fn ref_checked_and_stamped(r: SchemaRegistry, want: &[(&str, String)]) {
    let got = r.check(
        &Event::builder()
            .id("1")
            .source("/s")
            .ty("com.ref")
            .data_json(r#"{"o":{"x":1}}"#)
            .build()
            .unwrap(),
    );
    assert!(
        matches!(&got, Err(SchemaError::Violation(v)) if v.instance_path == "/o/x"),
        "{got:?}"
    );
    let emitter = Emitter::builder("/s")
        .sink(NullSink::new())
        .schemas(r)
        .dataschema(true)
        .build()
        .unwrap();
    for (ty, _) in want {
        let sent = emitter.emit(EventBuilder::new().ty(ty).data_json(r#"{"x":"a"}"#));
        assert!(sent.is_ok(), "{ty}: {sent:?}");
    }
}

/// A `dataschema` naming a built-in or directory schema by its `$id` with
/// the scheme or host in another case (`HTTPS://OSSA.DEV/…`, the same URI
/// by RFC 3986 §6.2.2.1, as the registry's own URLs already match) is
/// checked against that schema. Before, it was not found, the event fell
/// back to its type, and one with no schema passed unchecked.
#[test]
fn the_scheme_and_host_of_a_declared_known_schema_match_in_any_case() {
    let dir = std::env::temp_dir().join(format!("ossa-schema-case-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("order.json"),
        r#"{"$id":"https://Acme.Example/schemas/Order-v2.json","type":"object","required":["order"]}"#,
    )
    .unwrap();
    let r = SchemaRegistry::builder().dir(&dir).build().unwrap();
    let tool = ossa_events::ossa::schema_uri("dev.ossa.tool.called").unwrap();
    for (declared, keyword_of) in [
        (
            "https://acme.example/schemas/Order-v2.json".to_owned(),
            "order",
        ),
        (
            "HTTPS://ACME.EXAMPLE/schemas/Order-v2.json".to_owned(),
            "order",
        ),
        (tool.replace("https://ossa.dev", "HTTPS://OSSA.Dev"), "tool"),
    ] {
        let ev = Event::builder()
            .id("1")
            .source("/s")
            .ty("com.acme.unlisted")
            .dataschema(&declared)
            .data_json("{}")
            .build()
            .unwrap();
        let got = r.check(&ev);
        assert!(
            matches!(&got, Err(SchemaError::Violation(v)) if v.keyword == "required" && v.message.contains(keyword_of)),
            "{declared}: {got:?}"
        );
    }
    // The path stays case-sensitive.
    let other = Event::builder()
        .id("1")
        .source("/s")
        .ty("com.acme.unlisted")
        .dataschema("https://acme.example/schemas/order-v2.json")
        .data_json("{}")
        .build()
        .unwrap();
    assert_eq!(r.check(&other), Ok(Checked::NoSchema));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `HttpRegistry::timeout(Duration::MAX)`, "no limit" as `check_within`
/// and `prefetch` read it, fetches the schema. Before, the HTTP client
/// panicked adding it to the clock on every fetch (caught: every schema
/// was "unavailable: fetching or compiling it panicked").
#[test]
fn a_fetch_timeout_of_duration_max_is_no_limit() {
    let s = Server::start();
    s.route(&format!("/{TY}.json"), Answer::Json(ORDER.into()));
    for t in [Duration::MAX, Duration::from_secs(u64::MAX / 4)] {
        let r = registry(&s, HttpRegistry::new(&s.base).timeout(t));
        let got = r.check_within(&event(r#"{"order":"o"}"#, None), WAIT);
        assert!(matches!(got, Ok(Checked::Valid { .. })), "{t:?}: {got:?}");
    }
}

/// `prefetch` of a URI that no source has (not a built-in or directory
/// `$id`, not under the registry's URL) says so; before, it returned
/// `Ok(())` as if the schema were at hand, while events declaring it were
/// checked by their type (unchecked if it had none). A known `$id` is fine.
#[test]
fn prefetching_a_uri_no_source_has_is_an_error() {
    let s = Server::start();
    let r = registry(&s, HttpRegistry::new(&s.base));
    let elsewhere = "https://elsewhere.example/schemas/order.json";
    let got = r.prefetch(&[], &[elsewhere], WAIT);
    assert!(
        matches!(&got, Err(SchemaError::Unavailable { schema, reason }) if schema == elsewhere && reason.contains("no schema source has it")),
        "{got:?}"
    );
    let builtin = ossa_events::ossa::schema_uri("dev.ossa.tool.called").unwrap();
    assert_eq!(r.prefetch(&[], &[builtin], WAIT), Ok(()));
    assert_eq!(
        SchemaRegistry::builtin().prefetch(&[], &[builtin], WAIT),
        Ok(())
    );
    assert!(
        SchemaRegistry::builtin()
            .prefetch(&[], &[elsewhere], WAIT)
            .is_err()
    );
}
