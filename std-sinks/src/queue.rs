//! The emitter's in-memory queue: events in emit order, kept in runs of at
//! most a batch, so that the worker takes a batch by moving one run.
//!
//! Why: the queue is behind the lock every `emit()` takes. Taken event by
//! event, a batch of 100 held that lock 1.3 µs (0.75 µs with one emitting
//! thread) and a batch of 1 000 9.5 µs, moving entries other cores had just
//! written (issue 16's 4-thread `emit()` tail; measured in `emit_tail`).
//! Every run but the last is full, so the front run is the next batch (but
//! for events read back from the spool after newer ones were queued: their
//! runs go before those, in `seq` order).

use std::collections::VecDeque;

use crate::sink::Encoded;

/// Consecutive queued events: the `seq`s `first_seq..first_seq + len`.
#[derive(Debug, Default)]
pub(crate) struct Run {
    /// `seq` of the first event.
    pub(crate) first_seq: u64,
    pub(crate) events: Vec<Encoded>,
    /// Each event's number in the spool, if it is in one. (Kept for every
    /// event even without a spool. Allocating it only once a run held a
    /// spooled event was slower: the 4-thread `emit()` p99 of `emit_tail`
    /// was 2.13 µs against 2.00 µs this way, medians of 12 interleaved runs.
    /// Nor is it allocated per batch: a settled flight's goes round with its
    /// batch's events vector, see [`Run::from_parts`].)
    pub(crate) spooled: Vec<Option<u64>>,
}

/// Most events a buffer is made for up front: a queue of (say) a million
/// events does not reserve room for that many per run; a larger run grows.
pub(crate) const PREALLOC_MAX: usize = 1 << 16;

impl Run {
    /// An empty run with room for `cap` events (at most [`PREALLOC_MAX`]).
    pub(crate) fn with_capacity(cap: usize) -> Run {
        let cap = cap.min(PREALLOC_MAX);
        Run {
            first_seq: 0,
            events: Vec::with_capacity(cap),
            spooled: Vec::with_capacity(cap),
        }
    }

    /// An empty run in the room of a settled batch's vectors (emptied):
    /// its events' and its spool numbers' (the worker gets both back, so
    /// that batches do not each allocate them: a batch of 100 needs 1.6 KB
    /// of spool numbers, a block that large sends glibc's `malloc` through
    /// `malloc_consolidate`, which was 4 % of the Kafka sink's thread in
    /// `kafka_sink`, allocated and freed once a batch).
    pub(crate) fn from_parts(mut events: Vec<Encoded>, mut spooled: Vec<Option<u64>>) -> Run {
        events.clear();
        spooled.clear();
        Run {
            first_seq: 0,
            events,
            spooled,
        }
    }

    /// Adds `event`, numbered `spooled` in the spool if it is in one.
    fn push(&mut self, event: Encoded, spooled: Option<u64>) {
        self.events.push(event);
        self.spooled.push(spooled);
    }

    fn len(&self) -> usize {
        self.events.len()
    }
}

/// Runs of at most `cap` events, oldest first.
#[derive(Debug)]
pub(crate) struct Queue {
    runs: VecDeque<Run>,
    len: usize,
    /// Events per run: the worker's batch.
    cap: usize,
    /// Empty runs the worker made ahead (outside the lock), for the next
    /// run to start without allocating.
    spare: Vec<Run>,
}

impl Default for Queue {
    /// Runs of one event, until [`set_cap`](Queue::set_cap).
    fn default() -> Queue {
        Queue::new(1)
    }
}

/// Empty runs kept at most.
const SPARE: usize = 2;

impl Queue {
    /// A queue whose runs hold `cap` events (at least 1).
    pub(crate) fn new(cap: usize) -> Queue {
        Queue {
            runs: VecDeque::new(),
            len: 0,
            cap: cap.max(1),
            spare: Vec::with_capacity(SPARE),
        }
    }

    /// Events queued.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `seq` of the oldest queued event.
    pub(crate) fn front_seq(&self) -> Option<u64> {
        self.runs.front().map(|r| r.first_seq)
    }

    /// Sets the events per run from now on (the worker's batch: its sink
    /// may take fewer than the configured batch size).
    pub(crate) fn set_cap(&mut self, cap: usize) {
        self.cap = cap.max(1);
    }

    /// Keeps `run` (emptied) for a run to come, if fewer than [`SPARE`]
    /// are kept.
    pub(crate) fn give_spare(&mut self, mut run: Run) {
        if self.spare.len() < SPARE {
            run.events.clear();
            run.spooled.clear();
            self.spare.push(run);
        }
    }

    /// Whether a run for the worker to give ([`give_spare`](Self::give_spare)) is wanted.
    pub(crate) fn wants_spare(&self) -> bool {
        self.spare.len() < SPARE
    }

    /// Queues `event` as `seq`. Events come in `seq` order but in one case:
    /// events read back from the spool after a newer event was queued in
    /// memory (its spool write failed while they waited on disk). Those go
    /// before it, so that the queue stays in `seq` order, its front is its
    /// oldest event, and a flush sees them.
    pub(crate) fn push(&mut self, seq: u64, event: Encoded, spooled: Option<u64>) {
        let cap = self.cap;
        // The common case first (under the lock every `emit()` takes): the
        // back run goes on.
        if let Some(r) = self.runs.back_mut()
            && r.len() < cap
            && r.first_seq + r.len() as u64 == seq
        {
            r.push(event, spooled);
            self.len += 1;
            return;
        }
        // A new run after the last run that starts before `seq` (the back
        // one, but for events read back late).
        let at = match self.runs.back() {
            Some(r) if r.first_seq > seq => self
                .runs
                .iter()
                .rposition(|r| r.first_seq < seq)
                .map_or(0, |i| i + 1),
            _ => self.runs.len(),
        };
        // Or into that run, when `seq` follows its last event.
        let into = at.checked_sub(1).filter(|&i| {
            at < self.runs.len()
                && self
                    .runs
                    .get(i)
                    .is_some_and(|r| r.len() < cap && r.first_seq + r.len() as u64 == seq)
        });
        let i = match into {
            Some(i) => i,
            None => {
                let mut run = self.spare.pop().unwrap_or_else(|| Run::with_capacity(cap));
                run.first_seq = seq;
                self.runs.insert(at, run);
                at
            }
        };
        if let Some(r) = self.runs.get_mut(i) {
            r.push(event, spooled);
            self.len += 1;
        }
    }

    /// Takes the oldest `max` events at most: the front run, whole when it
    /// holds no more (every run but the last is full, so that is a batch,
    /// unless events read back from the spool went before newer ones), else
    /// its first `max` events.
    pub(crate) fn take_front(&mut self, max: usize) -> Option<Run> {
        let max = max.max(1);
        let front = self.runs.front_mut()?;
        if front.len() <= max {
            let run = self.runs.pop_front()?;
            self.len -= run.len();
            return Some(run);
        }
        // Runs made before the worker set a smaller batch: split.
        let mut run = self.spare.pop().unwrap_or_default();
        run.first_seq = front.first_seq;
        run.events.extend(front.events.drain(..max));
        run.spooled.extend(front.spooled.drain(..max));
        front.first_seq += max as u64;
        self.len -= max;
        Some(run)
    }

    /// Takes every queued event, oldest first.
    pub(crate) fn drain_all(&mut self) -> impl Iterator<Item = (Encoded, Option<u64>)> + '_ {
        self.len = 0;
        self.runs
            .drain(..)
            .flat_map(|r| r.events.into_iter().zip(r.spooled))
    }

    /// The spool numbers of the queued events, to change.
    pub(crate) fn spooled_mut(&mut self) -> impl Iterator<Item = &mut Option<u64>> + '_ {
        self.runs.iter_mut().flat_map(|r| r.spooled.iter_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::minimal_event as event;

    fn ids(run: &Run) -> Vec<&str> {
        run.events.iter().map(Encoded::id).collect()
    }

    #[test]
    fn batches_come_out_whole_in_order_with_their_seqs_and_spool_numbers() {
        let mut q = Queue::new(3);
        for seq in 10..17 {
            q.push(
                seq,
                event(&seq.to_string()),
                (seq % 2 == 0).then_some(seq * 100),
            );
        }
        assert_eq!((q.len(), q.front_seq()), (7, Some(10)));
        let a = q.take_front(3).unwrap();
        assert_eq!((a.first_seq, ids(&a)), (10, vec!["10", "11", "12"]));
        assert_eq!(a.spooled, [Some(1000), None, Some(1200)]);
        let b = q.take_front(3).unwrap();
        assert_eq!((b.first_seq, ids(&b)), (13, vec!["13", "14", "15"]));
        // The last run, not full: taken as it is; pushes after it start anew.
        let c = q.take_front(3).unwrap();
        assert_eq!((c.first_seq, ids(&c)), (16, vec!["16"]));
        assert!(q.is_empty() && q.take_front(3).is_none());
        q.push(17, event("17"), None);
        assert_eq!((q.len(), q.front_seq()), (1, Some(17)));
    }

    #[test]
    fn a_smaller_batch_splits_the_runs_made_before_it() {
        let mut q = Queue::new(4);
        for seq in 0..6 {
            q.push(seq, event(&seq.to_string()), None);
        }
        q.set_cap(2);
        let a = q.take_front(2).unwrap();
        assert_eq!((a.first_seq, ids(&a)), (0, vec!["0", "1"]));
        assert_eq!((q.len(), q.front_seq()), (4, Some(2)));
        let b = q.take_front(2).unwrap();
        assert_eq!((b.first_seq, ids(&b)), (2, vec!["2", "3"]));
        // New runs hold 2.
        q.push(6, event("6"), None);
        q.push(7, event("7"), None);
        let c = q.take_front(2).unwrap();
        assert_eq!((c.first_seq, ids(&c)), (4, vec!["4", "5"]));
        let d = q.take_front(5).unwrap();
        assert_eq!((d.first_seq, ids(&d)), (6, vec!["6", "7"]));
    }

    #[test]
    fn a_gap_in_seqs_starts_a_new_run_and_spares_are_reused() {
        let mut q = Queue::new(10);
        let spare = Run::with_capacity(10);
        let kept = spare.events.as_ptr();
        q.give_spare(spare);
        q.push(0, event("0"), None);
        q.push(5, event("5"), None);
        let a = q.take_front(10).unwrap();
        assert_eq!(
            (a.first_seq, ids(&a), a.events.as_ptr()),
            (0, vec!["0"], kept)
        );
        let b = q.take_front(10).unwrap();
        assert_eq!((b.first_seq, ids(&b)), (5, vec!["5"]));
        assert!(q.wants_spare());
    }

    #[test]
    fn a_run_made_of_a_settled_batchs_vectors_grows_nothing() {
        let mut q = Queue::new(4);
        // A settled batch's vectors, as the worker gets them back.
        let mut events = vec![event("old")];
        events.reserve_exact(3);
        let mut spooled: Vec<Option<u64>> = Vec::with_capacity(4);
        spooled.extend([Some(7), None]);
        let (e, s) = (events.as_ptr(), spooled.as_ptr());
        q.give_spare(Run::from_parts(events, spooled));
        for seq in 0..4 {
            q.push(seq, event(&seq.to_string()), Some(seq + 10));
        }
        let run = q.take_front(4).unwrap();
        assert_eq!(ids(&run), ["0", "1", "2", "3"], "emptied first");
        assert_eq!(run.spooled, [Some(10), Some(11), Some(12), Some(13)]);
        assert_eq!((run.events.as_ptr(), run.spooled.as_ptr()), (e, s));
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Queue the next event; `gap` skips that many seqs first.
        Push {
            gap: u8,
            spooled: bool,
        },
        /// The next seq goes to an event kept on disk, read back later.
        Withhold,
        /// The oldest event kept on disk is read back (after newer ones
        /// were queued, as when their spool writes failed).
        ReadBack,
        Take(usize),
        SetCap(usize),
        GiveSpare,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (prop_oneof![9 => Just(0u8), 1 => 1u8..3], any::<bool>())
                .prop_map(|(gap, spooled)| Op::Push { gap, spooled }),
            2 => (1usize..8).prop_map(Op::Take),
            1 => (1usize..8).prop_map(Op::SetCap),
            1 => Just(Op::GiveSpare),
            1 => Just(Op::Withhold),
            1 => Just(Op::ReadBack),
        ]
    }

    proptest::proptest! {
        /// Against a plain list of (seq, id, spool number) in seq order:
        /// whatever the pushes (and events read back late, older than
        /// others queued), takes, batch sizes and spares, every batch is
        /// the oldest events in order, no longer than asked, with
        /// consecutive seqs from its `first_seq`, and draining gives the
        /// rest; `len` and `front_seq` agree with the list all along.
        #[test]
        fn the_queue_gives_each_event_once_in_order_in_batches_of_consecutive_seqs(
            cap in 1usize..8,
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let mut q = Queue::new(cap);
            let mut model: std::collections::VecDeque<(u64, String, Option<u64>)> =
                std::collections::VecDeque::new();
            let mut next = 0u64;
            let mut on_disk = std::collections::VecDeque::new();
            for op in ops {
                match op {
                    Op::Push { gap, spooled } => {
                        next += u64::from(gap);
                        let id = format!("e{next}");
                        let sp = spooled.then_some(next * 10);
                        q.push(next, event(&id), sp);
                        model.push_back((next, id, sp));
                        next += 1;
                    }
                    Op::Withhold => {
                        on_disk.push_back(next);
                        next += 1;
                    }
                    Op::ReadBack => {
                        let Some(seq) = on_disk.pop_front() else { continue };
                        let id = format!("e{seq}");
                        q.push(seq, event(&id), Some(seq * 10));
                        let at = model.partition_point(|m| m.0 < seq);
                        model.insert(at, (seq, id, Some(seq * 10)));
                    }
                    Op::Take(max) => {
                        let Some(run) = q.take_front(max) else {
                            proptest::prop_assert!(model.is_empty());
                            continue;
                        };
                        proptest::prop_assert!(!run.events.is_empty() && run.events.len() <= max);
                        proptest::prop_assert_eq!(run.events.len(), run.spooled.len());
                        for (i, (e, sp)) in run.events.iter().zip(&run.spooled).enumerate() {
                            let (seq, id, msp) = model.pop_front().unwrap();
                            proptest::prop_assert_eq!(run.first_seq + i as u64, seq);
                            proptest::prop_assert_eq!(e.id(), id.as_str());
                            proptest::prop_assert_eq!(*sp, msp);
                        }
                    }
                    Op::SetCap(c) => q.set_cap(c),
                    Op::GiveSpare => q.give_spare(Run::with_capacity(cap)),
                }
                proptest::prop_assert_eq!(q.len(), model.len());
                proptest::prop_assert_eq!(q.front_seq(), model.front().map(|m| m.0));
            }
            let rest: Vec<(String, Option<u64>)> =
                q.drain_all().map(|(e, sp)| (e.id().to_owned(), sp)).collect();
            let want: Vec<(String, Option<u64>)> =
                model.into_iter().map(|(_, id, sp)| (id, sp)).collect();
            proptest::prop_assert_eq!(rest, want);
            proptest::prop_assert!(q.is_empty());
        }
    }

    #[test]
    fn events_read_back_from_the_spool_go_before_a_newer_one_queued_meanwhile() {
        let mut q = Queue::new(4);
        // 5..=7 wait on disk; 8's spool write failed, so it is queued first.
        q.push(8, event("8"), None);
        q.push(9, event("9"), None);
        q.push(5, event("5"), Some(50));
        assert_eq!(q.front_seq(), Some(5));
        q.push(6, event("6"), Some(60));
        q.push(7, event("7"), Some(70));
        assert_eq!(q.len(), 5);
        let old = q.take_front(4).unwrap();
        assert_eq!((old.first_seq, ids(&old)), (5, vec!["5", "6", "7"]));
        assert_eq!(old.spooled, [Some(50), Some(60), Some(70)]);
        let new = q.take_front(4).unwrap();
        assert_eq!((new.first_seq, ids(&new)), (8, vec!["8", "9"]));
        assert!(q.is_empty());
    }

    #[test]
    fn draining_gives_every_event_once_in_order_and_spool_numbers_can_change() {
        let mut q = Queue::new(2);
        for seq in 0..5 {
            q.push(seq, event(&seq.to_string()), Some(seq));
        }
        for s in q.spooled_mut() {
            if *s == Some(3) {
                *s = None;
            }
        }
        let all: Vec<(String, Option<u64>)> =
            q.drain_all().map(|(e, s)| (e.id().to_owned(), s)).collect();
        let want: Vec<(String, Option<u64>)> = (0..5)
            .map(|i| (i.to_string(), (i != 3).then_some(i)))
            .collect();
        assert_eq!(all, want);
        assert!(q.is_empty() && q.front_seq().is_none());
    }
}
