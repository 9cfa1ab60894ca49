//! Allocations per operation, counted by the bench's counting global
//! allocator (`stats_alloc`), shared by `core_vs_sdk` and `sdk_shaped`
//! (each includes this file with `#[path]`).

use std::alloc::System;
use std::hint::black_box;

use stats_alloc::{Region, StatsAlloc};

/// Allocations (allocs + reallocs) per call of `f`, after one warm-up call.
pub(crate) fn allocs_per_op<O>(
    alloc: &'static StatsAlloc<System>,
    n: usize,
    mut f: impl FnMut() -> O,
) -> f64 {
    black_box(f());
    let region = Region::new(alloc);
    for _ in 0..n {
        black_box(f());
    }
    let s = region.change();
    (s.allocations + s.reallocations) as f64 / n as f64
}

/// Allocations per call of `routine`, inputs made by `setup` outside the count
/// and outputs dropped outside it.
#[allow(dead_code)] // not every bench that includes this file uses it
pub(crate) fn allocs_per_op_batched<I, O>(
    alloc: &'static StatsAlloc<System>,
    n: usize,
    mut setup: impl FnMut() -> I,
    mut routine: impl FnMut(I) -> O,
) -> f64 {
    black_box(routine(setup()));
    let inputs: Vec<I> = (0..n).map(|_| setup()).collect();
    let mut outputs = Vec::with_capacity(n);
    let region = Region::new(alloc);
    for i in inputs {
        outputs.push(routine(i));
    }
    let s = region.change();
    drop(outputs);
    (s.allocations + s.reallocations) as f64 / n as f64
}
