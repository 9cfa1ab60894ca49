//! An event that carries its own W3C `traceparent` (an agent passing on the
//! trace of the request it serves) keeps it: the emitter's context does not
//! add `ossatraceid`/`ossaspanid` of another trace beside it. Before, the
//! context's ids contradicted the event's `traceparent` and the event was
//! refused (`TraceContextConflict`, counted `rejected`): valid on its own,
//! lost for a default the emitter added.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ossa_events_core::emitter::{Config, Emitter};
use ossa_events_core::{Event, FixedClock, RandomIds, Timestamp, batch::BatchFormat, ossa};

const THEIRS: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const OUR_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const OUR_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn the_context_adds_no_trace_ids_beside_an_events_own_traceparent() {
    let mut out = [0u8; 4096];
    let mut w: &mut [u8] = &mut out;
    let clock = FixedClock(Timestamp::parse("2026-11-25T12:00:00Z").unwrap());
    let ids = RandomIds(|b: &mut [u8; 16]| b.fill(7));
    let config = Config::new("/agents/a").format(BatchFormat::JsonLines);
    let mut em: Emitter<'_, _, _, _, 4, 2048> = Emitter::new(config, &mut w, ids, clock);
    em.set_context(ossa::Context {
        agent_id: Some("planner"),
        trace_id: Some(OUR_TRACE),
        span_id: Some(OUR_SPAN),
        ..Default::default()
    });
    em.emit(Event::builder().ty("t").traceparent(THEIRS))
        .unwrap();
    // Without one, the context's trace (and, with the `traceparent`
    // feature, the traceparent made from it).
    em.emit(Event::builder().ty("t")).unwrap();
    em.flush().unwrap();
    assert_eq!((em.counters().delivered, em.counters().rejected), (2, 0));
    drop(em);
    let text = core::str::from_utf8(&out).unwrap().trim_end_matches('\0');
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["traceparent"], THEIRS);
    assert_eq!(
        lines[0]["ossaagentid"], "planner",
        "the rest of the context still fills"
    );
    assert!(lines[0].get("ossatraceid").is_none(), "{}", lines[0]);
    assert!(lines[0].get("ossaspanid").is_none(), "{}", lines[0]);
    assert_eq!(lines[1]["ossatraceid"], OUR_TRACE);
    #[cfg(feature = "traceparent")]
    assert_eq!(
        lines[1]["traceparent"],
        format!("00-{OUR_TRACE}-{OUR_SPAN}-01")
    );
}
