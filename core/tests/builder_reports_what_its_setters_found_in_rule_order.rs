//! The builder checks JSON data, `data_base64` text, `time_str` and
//! `datacontenttype` when they are set (so code that never sets them carries
//! no validator), but `build`
//! reports what it found where it always did: after a missing attribute,
//! after the other attributes' rules, and the last setter wins.
#![allow(clippy::unwrap_used)]

use ossa_events_core::{Attribute, Data, Event, Rule};

#[test]
fn a_missing_attribute_comes_before_bad_data_or_time() {
    let err = Event::builder()
        .id("1")
        .source("/s")
        .data_json("{")
        .build()
        .unwrap_err();
    assert_eq!((err.attribute, err.rule), (Attribute::Type, Rule::Missing));
    let err = Event::builder()
        .id("1")
        .ty("t")
        .time_str("yesterday")
        .build()
        .unwrap_err();
    assert_eq!(
        (err.attribute, err.rule),
        (Attribute::Source, Rule::Missing)
    );
}

#[test]
fn attribute_rules_come_before_bad_data_and_bad_time_before_both() {
    let b = || Event::builder().id("1").ty("t");
    let err = b().source("not a uri").data_json("{").build().unwrap_err();
    assert_eq!(
        (err.attribute, err.rule),
        (Attribute::Source, Rule::NotUriReference)
    );
    let err = b()
        .source("/s")
        .subject("")
        .data(Data::Base64("%%"))
        .build()
        .unwrap_err();
    assert_eq!((err.attribute, err.rule), (Attribute::Subject, Rule::Empty));
    let err = b()
        .source("not a uri")
        .time_str("yesterday")
        .build()
        .unwrap_err();
    assert_eq!(err.attribute, Attribute::Time);
    assert!(matches!(err.rule, Rule::InvalidTimestamp(_)));
}

#[test]
fn bad_data_is_reported_under_its_member() {
    let b = || Event::builder().id("1").source("/s").ty("t");
    let err = b().data_json("{").build().unwrap_err();
    assert_eq!(err.attribute, Attribute::Data);
    assert!(matches!(err.rule, Rule::InvalidJson(_)));
    let err = b().data(Data::Json("[1,")).build().unwrap_err();
    assert!(matches!(err.rule, Rule::InvalidJson(_)));
    let err = b().data(Data::Base64("%%")).build().unwrap_err();
    assert_eq!(err.attribute, Attribute::DataBase64);
    assert!(matches!(err.rule, Rule::InvalidBase64(_)));
}

#[test]
fn the_last_setter_wins() {
    let b = || Event::builder().id("1").source("/s").ty("t");
    assert!(b().data_json("{").data_json("{}").build().is_ok());
    assert!(
        b().data_json("{")
            .data_text("text/plain", "{")
            .build()
            .is_ok()
    );
    assert!(b().data_json("{").no_data().build().is_ok());
    assert!(
        b().data(Data::Base64("%%"))
            .data_binary("image/png", &[1])
            .build()
            .is_ok()
    );
    assert!(b().data_json("{}").data_json("{").build().is_err());
    let t = ossa_events_core::Timestamp::UNIX_EPOCH;
    assert_eq!(
        b().time_str("yesterday").time(t).build().unwrap().time(),
        Some(t)
    );
    assert!(b().time(t).time_str("yesterday").build().is_err());
    // An event's own data was checked when it was built.
    let ev = b().data_json(r#"{"a":1}"#).build().unwrap();
    assert!(ev.to_builder().id("2").build().is_ok());
}

#[test]
fn a_content_type_is_reported_between_source_and_subject() {
    let b = || Event::builder().id("1").ty("t");
    let err = b()
        .source("not a uri")
        .datacontenttype("json")
        .build()
        .unwrap_err();
    assert_eq!(
        (err.attribute, err.rule),
        (Attribute::Source, Rule::NotUriReference)
    );
    let err = b()
        .source("/s")
        .datacontenttype("json")
        .subject("")
        .build()
        .unwrap_err();
    assert_eq!(
        (err.attribute, err.rule),
        (Attribute::DataContentType, Rule::NotMediaType)
    );
    let err = b()
        .source("/s")
        .datacontenttype(" text/plain")
        .build()
        .unwrap_err();
    assert_eq!(err.rule, Rule::MediaTypeWhitespace);
    // Replaced or removed: the last setter wins.
    assert!(
        b().source("/s")
            .datacontenttype("json")
            .data_json("{}")
            .build()
            .is_ok()
    );
    assert!(
        b().source("/s")
            .datacontenttype("json")
            .no_data()
            .build()
            .is_ok()
    );
    let ev = b()
        .source("/s")
        .datacontenttype("json")
        .data_text("text/plain", "x")
        .build()
        .unwrap();
    assert_eq!(ev.datacontenttype(), Some("text/plain"));
    assert!(
        b().source("/s")
            .data_json("{}")
            .datacontenttype("json")
            .build()
            .is_err()
    );
}

#[test]
fn extensions_are_reported_in_their_order_and_replacing_one_clears_its_failure() {
    use ossa_events_core::ExtValue;
    let b = || Event::builder().id("1").source("/s").ty("t");
    let err = b()
        .extension_str("first", "a\nb")
        .ossa_agent_id("bad\u{1}")
        .build()
        .unwrap_err();
    assert_eq!(
        (err.attribute.name(), err.rule),
        ("first", Rule::InvalidCharacter)
    );
    let err = b()
        .ossa_agent_id("bad\u{1}")
        .extension("policy", ExtValue::Uri("/relative"))
        .build()
        .unwrap_err();
    assert_eq!(
        (err.attribute.name(), err.rule),
        ("ossaagentid", Rule::InvalidCharacter)
    );
    let err = b()
        .ossa_agent_id("fine")
        .extension("policy", ExtValue::Uri("/relative"))
        .build()
        .unwrap_err();
    assert_eq!(
        (err.attribute.name(), err.rule),
        ("policy", Rule::NotAbsoluteUri)
    );
    // A subject rule comes first, as before.
    let err = b()
        .ossa_agent_id("bad\u{1}")
        .subject("")
        .build()
        .unwrap_err();
    assert_eq!(err.attribute, Attribute::Subject);
    // Replaced by a good value: no failure left.
    assert!(
        b().ossa_agent_id("bad\u{1}")
            .ossa_agent_id("good")
            .build()
            .is_ok()
    );
    assert!(
        b().extension("policy", ExtValue::Uri("/relative"))
            .extension("policy", ExtValue::Uri("https://example.com/p"))
            .build()
            .is_ok()
    );
    // ...and the other way round.
    assert!(
        b().ossa_trace_id("t")
            .extension_str("ossatraceid", "x\ny")
            .build()
            .is_err()
    );
    let err = b().traceparent("00-zz").build().unwrap_err();
    assert!(matches!(err.rule, Rule::InvalidTraceParent(_)));
    let err = b().extension_str("tracestate", "=").build().unwrap_err();
    assert!(matches!(err.rule, Rule::InvalidTraceState(_)));
}

#[test]
fn source_and_dataschema_are_checked_where_they_always_were() {
    let b = || Event::builder().id("1").ty("t");
    let err = b().source("a b").dataschema("rel").build().unwrap_err();
    assert_eq!(
        (err.attribute, err.rule),
        (Attribute::Source, Rule::NotUriReference)
    );
    let err = b()
        .source("/s")
        .dataschema("rel")
        .subject("")
        .build()
        .unwrap_err();
    assert_eq!(
        (err.attribute, err.rule),
        (Attribute::DataSchema, Rule::NotAbsoluteUri)
    );
    let err = b().source("/s").dataschema("").build().unwrap_err();
    assert_eq!(
        (err.attribute, err.rule),
        (Attribute::DataSchema, Rule::Empty)
    );
    let err = b()
        .source("/s")
        .dataschema("https://x/s#v1")
        .build()
        .unwrap_err();
    assert_eq!(err.rule, Rule::UriFragment);
    assert!(b().source("a b").source("/s").build().is_ok());
    assert!(
        b().source("/s")
            .dataschema("rel")
            .dataschema("urn:x:y")
            .build()
            .is_ok()
    );
    // `defaults` checks a source it fills in; one already set stays checked.
    let now = ossa_events_core::Timestamp::UNIX_EPOCH;
    let err = b().defaults("1", "a b", now).build().unwrap_err();
    assert_eq!(err.rule, Rule::NotUriReference);
    assert!(b().source("/s").defaults("1", "a b", now).build().is_ok());
    assert!(b().source("a b").defaults("1", "/s", now).build().is_err());
}

#[test]
fn an_emitter_rejects_events_of_a_config_source_that_is_not_a_uri_reference() {
    use ossa_events_core::emitter::{Config, EmitError, Emitter};
    use ossa_events_core::{FixedClock, RandomIds, Timestamp, io::SliceWriter};
    let mut out = [0u8; 1024];
    let ids = RandomIds(|b: &mut [u8; 16]| b.fill(7));
    let clock = FixedClock(Timestamp::UNIX_EPOCH);
    let mut em: Emitter<'_, _, _, _, 4, 1024> = Emitter::new(
        Config::new("not a uri"),
        SliceWriter::new(&mut out),
        ids,
        clock,
    );
    let err = em.emit(Event::builder().ty("t")).unwrap_err();
    assert!(matches!(err, EmitError::Invalid(ref v) if v.rule == Rule::NotUriReference));
    // Its own source wins, and is checked.
    assert!(em.emit(Event::builder().ty("t").source("/s")).is_ok());
    const CONFIG: Config<'static> = Config::new("/devices/7");
    let mut out = [0u8; 1024];
    let ids = RandomIds(|b: &mut [u8; 16]| b.fill(7));
    let mut em: Emitter<'_, _, _, _, 4, 1024> =
        Emitter::new(CONFIG, SliceWriter::new(&mut out), ids, clock);
    assert!(em.emit(Event::builder().ty("t")).is_ok());
}

/// JSON data needs a JSON media type (or none). The builder learns whether
/// `datacontenttype` is one when it is set, not at `build`: every order of
/// setters, and a builder made from an event, gives what the media-type
/// check says.
#[test]
fn json_data_under_a_content_type_that_is_not_json_is_refused_in_any_order() {
    use ossa_events_core::uri::is_json_media_type;
    let types = [
        "application/json",
        "APPLICATION/JSON; charset=utf-8",
        "application/cloudevents+json",
        "text/plain",
        "application/jsonl",
        "application/octet-stream",
    ];
    let b = || Event::builder().id("1").source("/s").ty("t");
    let verdict = |r: Result<Event<'_>, ossa_events_core::ValidationError>| {
        r.map(|_| ()).map_err(|e| (e.attribute, e.rule))
    };
    for ct in types {
        let want = if is_json_media_type(ct) {
            Ok(())
        } else {
            Err((Attribute::Data, Rule::DataNotString))
        };
        // The content type before the data, after it, on a builder made
        // from an event, and set back to JSON or removed.
        assert_eq!(
            verdict(b().datacontenttype(ct).data(Data::Json("1")).build()),
            want,
            "{ct}"
        );
        assert_eq!(
            verdict(b().data_json("1").datacontenttype(ct).build()),
            want,
            "{ct}"
        );
        let ev = b().data_json("1").build().unwrap();
        assert_eq!(
            verdict(ev.to_builder().datacontenttype(ct).build()),
            want,
            "{ct}"
        );
        let text = b().data_text(ct, "1").build().unwrap();
        assert_eq!(
            verdict(text.to_builder().data(Data::Json("1")).build()),
            want,
            "{ct}"
        );
        assert_eq!(
            verdict(text.to_builder().data_json("1").build()),
            Ok(()),
            "{ct}"
        );
        assert_eq!(
            verdict(
                b().datacontenttype(ct)
                    .no_data()
                    .data(Data::Json("1"))
                    .build()
            ),
            Ok(()),
            "{ct}"
        );
        // Text data is fine under any media type.
        assert_eq!(
            verdict(b().datacontenttype(ct).data(Data::Text("1")).build()),
            Ok(())
        );
    }
}
