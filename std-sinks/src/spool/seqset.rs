//! The seqs confirmed above the spool's low-water mark, kept as runs.
//!
//! Confirmations come nearly in order, so above the low-water mark there are
//! few runs, however many seqs: while a segment that could not be read holds
//! the mark (see `Spool::skip_unreadable`), every later confirmation joins
//! one run. A set of single seqs grew by one entry per event for the rest
//! of the run, in memory and in the ledger written at each sync.

use std::collections::BTreeMap;
use std::ops::Range;

/// A set of `u64` seqs as disjoint runs that do not touch: first seq of a
/// run → its last seq (inclusive, so that `u64::MAX` fits).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SeqSet {
    runs: BTreeMap<u64, u64>,
}

impl SeqSet {
    /// An empty set.
    pub(crate) fn new() -> SeqSet {
        SeqSet::default()
    }

    /// The run holding `seq`, if any: `(first, last)`.
    fn run_of(&self, seq: u64) -> Option<(u64, u64)> {
        self.runs
            .range(..=seq)
            .next_back()
            .filter(|(_, last)| seq <= **last)
            .map(|(first, last)| (*first, *last))
    }

    /// Whether `seq` is in the set.
    pub(crate) fn contains(&self, seq: u64) -> bool {
        self.run_of(seq).is_some()
    }

    /// Adds `seq`; `false` when it was in already.
    pub(crate) fn insert(&mut self, seq: u64) -> bool {
        if self.contains(seq) {
            return false;
        }
        // The run that ends just before it, and the one that starts just
        // after it, join it.
        let before = self
            .runs
            .range(..seq)
            .next_back()
            .filter(|(_, last)| last.checked_add(1) == Some(seq))
            .map(|(first, _)| *first);
        let after = seq
            .checked_add(1)
            .and_then(|next| self.runs.remove(&next).map(|last| (next, last)));
        let last = after.map_or(seq, |(_, last)| last);
        match before {
            Some(first) => {
                self.runs.insert(first, last);
            }
            None => {
                self.runs.insert(seq, last);
            }
        }
        true
    }

    /// Adds every seq of `from..=to`.
    pub(crate) fn insert_run(&mut self, from: u64, to: u64) {
        if from > to {
            return;
        }
        // Runs inside or touching `from..=to` are taken in.
        let mut first = from;
        let mut last = to;
        if let Some((f, l)) = self
            .runs
            .range(..=from)
            .next_back()
            .map(|(f, l)| (*f, *l))
            .filter(|(_, l)| l.checked_add(1).is_none_or(|n| n >= from))
        {
            first = f;
            last = last.max(l);
        }
        let end = to.checked_add(1);
        let inside: Vec<u64> = match end {
            Some(e) => self.runs.range(first..=e).map(|(f, _)| *f).collect(),
            None => self.runs.range(first..).map(|(f, _)| *f).collect(),
        };
        for f in inside {
            if let Some(l) = self.runs.remove(&f) {
                last = last.max(l);
            }
        }
        self.runs.insert(first, last);
    }

    /// The smallest seq in the set.
    #[cfg(test)]
    pub(crate) fn first(&self) -> Option<u64> {
        self.runs.keys().next().copied()
    }

    /// The largest seq in the set.
    pub(crate) fn last(&self) -> Option<u64> {
        self.runs.values().next_back().copied()
    }

    /// When the set starts at `low`: takes the run that starts there out
    /// and returns the seq after it (where the low-water mark goes, at most
    /// `u64::MAX`); else `low`.
    pub(crate) fn advance(&mut self, low: u64) -> u64 {
        match self.runs.first_key_value() {
            Some((&first, &last)) if first == low => {
                self.runs.remove(&first);
                last.saturating_add(1)
            }
            _ => low,
        }
    }

    /// Drops every seq below `seq`.
    pub(crate) fn remove_below(&mut self, seq: u64) {
        let straddling = self
            .runs
            .range(..seq)
            .next_back()
            .map(|(f, l)| (*f, *l))
            .filter(|(_, l)| *l >= seq);
        self.runs = self.runs.split_off(&seq);
        if let Some((_, last)) = straddling {
            self.runs.insert(seq, last);
        }
    }

    /// How many seqs of `seqs` are in the set.
    pub(crate) fn count_in(&self, seqs: Range<u64>) -> u64 {
        if seqs.start >= seqs.end {
            return 0;
        }
        let from = self
            .run_of(seqs.start)
            .map_or(seqs.start, |(first, _)| first);
        self.runs
            .range(from..seqs.end)
            .map(|(&first, &last)| {
                let lo = first.max(seqs.start);
                // `last < end` here unless the run goes past it.
                let hi = last.min(seqs.end - 1);
                (hi - lo).saturating_add(1)
            })
            .sum()
    }

    /// The seqs of `seqs` not in the set, as ranges, lowest first: as
    /// many ranges as runs, whatever the number of seqs the runs hold.
    pub(crate) fn gaps_in(&self, seqs: Range<u64>) -> impl Iterator<Item = Range<u64>> + '_ {
        let end = seqs.end.max(seqs.start);
        let from = self
            .run_of(seqs.start)
            .map_or(seqs.start, |(first, _)| first);
        let mut runs = self.runs.range(from..end);
        let mut at = seqs.start;
        std::iter::from_fn(move || {
            while at < end {
                let Some((&first, &last)) = runs.next() else {
                    let gap = at..end;
                    at = end;
                    return Some(gap);
                };
                // `first < end`: the runs are taken below it.
                let gap = (first > at).then_some(at..first);
                // (A run to `u64::MAX` ends every range: `end` is at most that.)
                at = at.max(last.saturating_add(1));
                if gap.is_some() {
                    return gap;
                }
            }
            None
        })
    }

    /// How many seqs the set holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.runs
            .iter()
            .map(|(&first, &last)| (last - first).saturating_add(1))
            .sum()
    }

    /// The runs, lowest first: `(first, last)`, both in the set.
    pub(crate) fn runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.runs.iter().map(|(f, l)| (*f, *l))
    }

    /// How many runs the set holds.
    pub(crate) fn run_count(&self) -> usize {
        self.runs.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::ops::Range;

    use proptest::prelude::*;

    use super::SeqSet;

    /// A step on both sets.
    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        InsertRun(u64, u64),
        Advance(u64),
        RemoveBelow(u64),
    }

    fn op(max: u64) -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..max).prop_map(Op::Insert),
            1 => (0..max, 0..8u64).prop_map(|(a, n)| Op::InsertRun(a, a + n)),
            1 => (0..max).prop_map(Op::Advance),
            1 => (0..max).prop_map(Op::RemoveBelow),
        ]
    }

    /// The runs a plain set of seqs makes.
    fn runs_of(model: &BTreeSet<u64>) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for &s in model {
            match runs.last_mut() {
                Some((_, last)) if *last + 1 == s => *last = s,
                _ => runs.push((s, s)),
            }
        }
        runs
    }

    proptest! {
        /// Every operation agrees with a `BTreeSet` of single seqs, and the
        /// runs are as few as the seqs allow (none touch).
        #[test]
        fn agrees_with_a_set_of_single_seqs(ops in proptest::collection::vec(op(64), 0..200)) {
            let mut set = SeqSet::new();
            let mut model = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Insert(s) => prop_assert_eq!(set.insert(s), model.insert(s)),
                    Op::InsertRun(a, b) => {
                        set.insert_run(a, b);
                        model.extend(a..=b);
                    }
                    Op::Advance(low) => {
                        let mut want = low;
                        while model.first() == Some(&want) {
                            model.pop_first();
                            want += 1;
                        }
                        prop_assert_eq!(set.advance(low), want);
                    }
                    Op::RemoveBelow(s) => {
                        set.remove_below(s);
                        model = model.split_off(&s);
                    }
                }
                prop_assert_eq!(set.runs().collect::<Vec<_>>(), runs_of(&model));
                prop_assert_eq!(set.len(), model.len() as u64);
                prop_assert_eq!(set.first(), model.first().copied());
                prop_assert_eq!(set.last(), model.last().copied());
                for s in 0..72 {
                    prop_assert_eq!(set.contains(s), model.contains(&s));
                }
                for (a, b) in [(0, 72), (3, 9), (10, 11), (20, 20), (30, 64)] {
                    prop_assert_eq!(set.count_in(a..b), model.range(a..b).count() as u64);
                    let gaps: Vec<u64> = set.gaps_in(a..b).flatten().collect();
                    let open: Vec<u64> = (a..b).filter(|s| !model.contains(s)).collect();
                    prop_assert_eq!(gaps, open);
                }
                prop_assert_eq!(set.gaps_in(Range { start: 9, end: 3 }).count(), 0);
            }
        }
    }

    #[test]
    fn the_largest_seqs_do_not_overflow() {
        let mut set = SeqSet::new();
        assert!(set.insert(u64::MAX));
        assert!(set.insert(u64::MAX - 1));
        assert_eq!(set.runs().collect::<Vec<_>>(), [(u64::MAX - 1, u64::MAX)]);
        assert_eq!(set.len(), 2);
        assert_eq!(set.count_in(0..u64::MAX), 1);
        assert_eq!(
            set.gaps_in(u64::MAX - 3..u64::MAX)
                .flatten()
                .collect::<Vec<_>>(),
            [u64::MAX - 3, u64::MAX - 2]
        );
        assert_eq!(set.gaps_in(u64::MAX - 1..u64::MAX).count(), 0);
        set.insert_run(u64::MAX - 5, u64::MAX);
        assert_eq!(set.run_count(), 1);
        assert_eq!(set.advance(u64::MAX - 5), u64::MAX);
        assert_eq!(set.first(), None);
    }

    /// A million seqs confirmed in order above a held low-water mark are
    /// one run.
    #[test]
    fn seqs_confirmed_in_order_above_a_gap_are_one_run() {
        let mut set = SeqSet::new();
        for s in 10..1_000_010 {
            set.insert(s);
        }
        assert_eq!(set.run_count(), 1);
        assert_eq!(set.len(), 1_000_000);
        assert_eq!(set.advance(0), 0);
        assert_eq!(set.advance(10), 1_000_010);
    }
}
