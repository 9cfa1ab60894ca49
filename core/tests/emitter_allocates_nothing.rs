//! emit, poll and flush make no heap allocation.
#![allow(unsafe_code, clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ossa_events_core::emitter::{Config, Emitter};
use ossa_events_core::{Clock, Event, RandomIds, RawJson, Timestamp, ossa};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

struct Tick(Cell<i64>);
impl Clock for &Tick {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0.get()).unwrap()
    }
}

#[test]
fn counter_works() {
    let before = allocs();
    let v = std::hint::black_box(Vec::<u8>::with_capacity(8));
    assert_eq!(allocs() - before, 1);
    drop(v);
}

#[test]
fn emit_poll_flush_allocate_nothing() {
    let mut out = [0u8; 64 * 1024];
    let clock = Tick(Cell::new(1_764_000_000_000));
    let mut n = 0u128;
    let ids = RandomIds(|b: &mut [u8; 16]| {
        n += 1;
        *b = n.to_le_bytes();
    });
    let mut sink: &mut [u8] = &mut out;
    let args = RawJson::new(r#"{"query":"no_std","max_results":5}"#).unwrap();
    let call = ossa::ToolCalled {
        tool: "web_search",
        call_id: Some("c1"),
        arguments: Some(args),
    };

    let before = allocs();
    {
        let mut em: Emitter<'_, _, _, _, 8, 4096> = Emitter::new(
            Config::new("/dev/1").batch_size(4).flush_interval_ms(100),
            &mut sink,
            ids,
            &clock,
        );
        em.set_context(ossa::Context {
            agent_id: Some("a"),
            trace_id: Some("t"),
            span_id: Some("s"),
            interaction_id: Some("i"),
        });
        for i in 0..10 {
            em.emit_ossa(&call).unwrap();
            em.emit(
                Event::builder()
                    .ty("x.custom")
                    .data_text("text/plain", "hi"),
            )
            .unwrap();
            clock.0.set(clock.0.get() + 60);
            let _ = em.poll((&clock).now()).unwrap();
            if i % 3 == 0 {
                em.flush().unwrap();
            }
        }
        em.flush().unwrap();
        assert_eq!(em.counters().delivered, 20);
    }
    assert_eq!(allocs() - before, 0);
}

/// The same with the flash spool in `Always` mode (every event through NOR
/// flash, emulated in RAM), and an outage in the middle: still no heap.
#[cfg(feature = "flash-spool")]
#[test]
fn the_spool_emitter_allocates_nothing_through_an_outage() {
    use ossa_events_core::io::SliceWriter;
    use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter, SpoolMode};

    let clock = Tick(Cell::new(1_764_000_000_000));
    let mut n = 0u128;
    let ids = RandomIds(|b: &mut [u8; 16]| {
        n += 1;
        *b = n.to_le_bytes();
    });
    let mut down = [0u8; 0];
    let mut out = vec![0u8; 64 * 1024];
    let before = allocs();
    {
        let flash = RamFlash::<16384, 2048>::new();
        let spool = FlashSpool::<_, 1024>::open(flash, 0..16384)
            .unwrap()
            .mode(SpoolMode::Always);
        let mut em: SpoolEmitter<'_, _, _, _, _, 8, 4096, 1024> = SpoolEmitter::new(
            Config::new("/dev/1").batch_size(4).flush_interval_ms(100),
            SliceWriter::new(&mut down),
            spool,
            ids,
            &clock,
        );
        for _ in 0..10 {
            em.emit(
                Event::builder()
                    .ty("x.reading")
                    .data_text("text/plain", "21.5"),
            )
            .unwrap();
            clock.0.set(clock.0.get() + 60);
            let _ = em.poll((&clock).now());
        }
        assert_eq!(em.spool().len(), 10, "the outage's events are in flash");
        em.replace_writer(SliceWriter::new(&mut out));
        em.flush().unwrap();
        assert_eq!(em.counters().delivered, 10);
        assert!(em.spool().is_empty());
    }
    assert_eq!(allocs() - before, 0);
}
