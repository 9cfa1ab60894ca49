//! `SpoolEmitter::writer_mut`, used as `Emitter::writer_mut` is (to repair
//! a connection: `*em.writer_mut() = reconnected`), must not count as
//! delivered the lines the old connection took before it failed: the new
//! one never got them. The `Emitter`'s writes them again (at least once);
//! so must the spool's.
#![cfg(feature = "flash-spool")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use common::flash::{TestClock, fill_ids, reading};
use ossa_events_core::RandomIds;
use ossa_events_core::batch::BatchFormat;
use ossa_events_core::emitter::Config;
use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter, SpoolMode};

#[derive(Debug)]
struct Broken;

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection broken")
    }
}

impl std::error::Error for Broken {}

impl embedded_io::Error for Broken {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::ConnectionReset
    }
}

/// A connection: takes up to the end of the first line when `one_line`,
/// then breaks; what it took reaches the reader (`wire`) only at a `flush`.
#[derive(Clone, Default)]
struct Conn {
    one_line: bool,
    broken: Rc<Cell<bool>>,
    held: Rc<RefCell<Vec<u8>>>,
    wire: Rc<RefCell<Vec<u8>>>,
}

impl embedded_io::ErrorType for Conn {
    type Error = Broken;
}

impl embedded_io::Write for Conn {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Broken> {
        if self.broken.get() {
            return Err(Broken);
        }
        let n = if self.one_line {
            self.broken.set(true);
            buf.iter()
                .position(|&b| b == b'\n')
                .map_or(buf.len(), |i| i + 1)
        } else {
            buf.len()
        };
        self.held.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> Result<(), Broken> {
        if self.broken.get() {
            return Err(Broken);
        }
        let held = std::mem::take(&mut *self.held.borrow_mut());
        self.wire.borrow_mut().extend_from_slice(&held);
        Ok(())
    }
}

#[test]
fn reconnecting_through_writer_mut_writes_the_lines_the_old_connection_took_again() {
    for mode in [SpoolMode::WhenDown, SpoolMode::Always] {
        let spool = FlashSpool::<_, 512>::open(RamFlash::<4096, 1024>::new(), 0..4096)
            .unwrap()
            .mode(mode);
        let old = Conn {
            one_line: true,
            ..Conn::default()
        };
        let config = Config::new("/devices/7")
            .batch_size(3)
            .format(BatchFormat::JsonLines);
        let mut em: SpoolEmitter<'_, _, _, _, _, 4, 1024, 512> = SpoolEmitter::new(
            config,
            old.clone(),
            spool,
            RandomIds(fill_ids as fn(&mut [u8; 16])),
            TestClock::default(),
        );
        // The third event flushes: the connection takes line `a`, then breaks.
        for id in ["a", "b", "c"] {
            em.emit(reading(id)).unwrap();
        }
        assert_eq!(em.counters().failed_writes, 1);
        // Reconnect, as with the `Emitter`.
        let new = Conn::default();
        *em.writer_mut() = new.clone();
        em.flush().unwrap();
        let got = common::read(BatchFormat::JsonLines, &new.wire.borrow()).ids;
        let c = em.counters();
        assert_eq!(
            got.len() as u64,
            c.delivered,
            "{mode:?}: what the new connection's reader parses is what was counted delivered: {got:?} {c:?}"
        );
        assert_eq!(got, ["a", "b", "c"], "{mode:?}");
        assert!(old.wire.borrow().is_empty());
    }
}
