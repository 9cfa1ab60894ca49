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
