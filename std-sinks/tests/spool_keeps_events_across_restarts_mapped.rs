//! The cases of `spool_keeps_events_across_restarts` with segments written
//! through a memory map (`SpoolConfig::mapped(true)`, Linux): the same
//! guarantees, the same counts.

/// How the cases' spools write their segments.
const MAPPED: bool = true;

mod spool_cases;
mod spool_support;
