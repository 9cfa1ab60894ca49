//! The events both Kafka test files send: a mix of keys, data kinds and a
//! non-ASCII subject, and the record key the sink must give each.

use ossa_events::Event;

/// What one test event is made of.
pub(crate) struct Spec {
    pub(crate) id: String,
    pub(crate) partitionkey: Option<String>,
    pub(crate) agent: Option<String>,
    pub(crate) subject: String,
    pub(crate) data: u8,
    /// Sent through a sink with `key_field("ossaagentid")`.
    pub(crate) keyed: bool,
}

/// `n` events named `{prefix}-{i}`.
pub(crate) fn specs(prefix: &str, n: usize, keyed: bool) -> Vec<Spec> {
    (0..n)
        .map(|i| Spec {
            id: format!("{prefix}-{i}"),
            partitionkey: (i % 3 == 0).then(|| format!("pk-{}", i % 11)),
            agent: (i % 5 != 0).then(|| format!("agent-{}", i % 7)),
            subject: format!("Euro € {i} 😀"),
            data: (i % 4) as u8,
            keyed,
        })
        .collect()
}

/// The event a spec describes.
pub(crate) fn event(s: &Spec) -> Event<'_> {
    let mut b = Event::builder()
        .id(&s.id)
        .source("/agents/kafka-test")
        .ty("org.ossa.test")
        .subject(&s.subject)
        .time_str("2025-01-02T03:04:05.678Z");
    if let Some(a) = &s.agent {
        b = b.ossa_agent_id(a);
    }
    if let Some(pk) = &s.partitionkey {
        b = b.extension_str("partitionkey", pk);
    }
    b = match s.data {
        0 => b.data_json(r#"{"step":1,"text":"hello \"kafka\""}"#),
        1 => b.data_text("text/plain", "plain text data"),
        2 => b.no_data(),
        _ => b.data_binary("application/octet-stream", &[0, 1, 2, 255, 254]),
    };
    b.build().unwrap()
}

/// The record key the sink must give `s`: `partitionkey`, else (when keyed)
/// `ossaagentid`, else none.
pub(crate) fn expected_key(s: &Spec) -> Option<String> {
    if s.keyed {
        s.partitionkey.clone().or_else(|| s.agent.clone())
    } else {
        s.partitionkey.clone()
    }
}

/// `content-type` of a structured-mode record.
#[cfg(feature = "kafka")]
pub(crate) const STRUCTURED_CT: &[u8] = b"application/cloudevents+json; charset=UTF-8";

/// Parses one record read back (`at` names it in a failure) with our Kafka
/// binding parser and checks it against its spec: the same event, the key
/// (`partitionkey`, else with `key_field` the spec's `expected_key`), and the
/// headers and value the sink writes in `mode`. Returns the spec.
#[cfg(feature = "kafka")]
pub(crate) fn check_record<'s>(
    headers: &[(String, Vec<u8>)],
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    by_id: &std::collections::HashMap<&str, &'s Spec>,
    mode: ossa_events::sink::KafkaMode,
    key_field: bool,
    at: &str,
) -> &'s Spec {
    use ossa_events::sink::{Encoded, Encoding, KafkaMode};
    let mut scratch = vec![0u8; 4096];
    let pairs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let back = ossa_events::parse::kafka::parse(
        pairs.iter().copied(),
        key,
        value,
        &mut ossa_events::Scratch::new(&mut scratch),
    )
    .unwrap_or_else(|e| panic!("{at}: {e}"));
    let spec = by_id[back.event.id()];
    let ev = event(spec);
    assert!(
        back.event.same_as(&ev, false),
        "{:?} vs {:?}",
        back.event,
        ev
    );
    let want_key = if key_field {
        expected_key(spec)
    } else {
        spec.partitionkey.clone()
    };
    assert_eq!(
        key,
        want_key.as_deref().map(str::as_bytes),
        "key of {}",
        spec.id
    );
    match mode {
        KafkaMode::Binary => {
            let enc = Encoded::new(&ev, Encoding::KafkaBinary).unwrap();
            let mut want: Vec<(String, Vec<u8>)> = enc
                .headers()
                .map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec()))
                .collect();
            if let Some(ct) = enc.content_type() {
                want.push(("content-type".into(), ct.as_bytes().to_vec()));
            }
            assert_eq!(headers, want, "headers of {}", spec.id);
            let body = enc.body();
            assert_eq!(value, (!body.is_empty()).then_some(body));
        }
        _ => {
            assert_eq!(
                headers,
                vec![("content-type".to_owned(), STRUCTURED_CT.to_vec())]
            );
            let enc = Encoded::new(&ev, Encoding::Json).unwrap();
            assert_eq!(value, Some(enc.json()));
        }
    }
    spec
}
