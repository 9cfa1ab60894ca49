//! An emitter used at the end of a thread's life: from the destructor of a
//! thread-local (a per-thread agent context that says "stopped" when its
//! thread ends). The library's own thread-locals may be gone by then; one
//! reached with `with` panics there, and a panic in a thread-local's
//! destructor aborts the whole process.

#![cfg(feature = "schemas")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use ossa_events::schema::SchemaRegistry;
use ossa_events::sink::NullSink;
use ossa_events::{Emitter, EventBuilder};

#[derive(serde::Serialize)]
struct ToolCalled {
    tool: &'static str,
}

fn called<'a>(payload: &'a ToolCalled) -> EventBuilder<'a> {
    EventBuilder::new()
        .ty("dev.ossa.tool.called")
        .data_serialize(payload)
}

/// Emits a checked `T: Serialize` payload when its thread ends, and says
/// how that went.
struct SaysStopped(Emitter, Arc<Mutex<Vec<String>>>);

impl Drop for SaysStopped {
    fn drop(&mut self) {
        let r = self.0.emit(called(&ToolCalled { tool: "stop" }));
        self.1.lock().unwrap().push(format!("{r:?}"));
        let r = self
            .0
            .emit(called(&ToolCalled { tool: "" }).data_json("{}"));
        self.1.lock().unwrap().push(format!("{}", r.is_err()));
    }
}

thread_local! {
    static CONTEXT: RefCell<Option<SaysStopped>> = const { RefCell::new(None) };
}

/// The schema check of a `T: Serialize` payload writes it into a buffer of
/// the thread's; in a thread-local's destructor that buffer may be gone
/// (its destructor ran first: it was made later). The emit aborted the
/// process ("cannot access a Thread Local Storage value during or after
/// destruction"); it now checks the payload in a buffer of its own.
#[test]
fn a_checked_serialize_payload_emitted_from_a_thread_locals_destructor() {
    let em = Emitter::builder("/agents/a")
        .sink(NullSink::new())
        .schemas(SchemaRegistry::builtin())
        .build()
        .unwrap();
    let said = Arc::new(Mutex::new(Vec::new()));
    let (mine, log) = (em.clone(), said.clone());
    std::thread::spawn(move || {
        // Set first: its destructor runs after those of the thread-locals
        // the library makes below.
        CONTEXT.with(|c| *c.borrow_mut() = Some(SaysStopped(mine.clone(), log)));
        mine.emit(called(&ToolCalled { tool: "search" })).unwrap();
    })
    .join()
    .unwrap();
    // Delivered, and the one whose data breaks its schema refused.
    assert_eq!(*said.lock().unwrap(), ["Ok(())", "true"]);
    let m = em.shutdown().map(|_| em.metrics()).unwrap();
    assert_eq!((m.emitted, m.delivered, m.rejected), (2, 2, 1), "{m:?}");
}
