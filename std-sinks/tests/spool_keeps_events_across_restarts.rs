//! The disk spool (`EmitterBuilder::spool`): events a stopped emitter could
//! not deliver are sent by the next one on the same directory, in order and
//! before new ones; the spool holds what the in-memory queue cannot; a
//! second emitter cannot open it; corruption, a lost ledger and a full cap
//! lose only what they must, and say so.
//!
//! Segments written with `write(2)` (the default); the `_mapped` twin runs
//! the same cases with `SpoolConfig::mapped(true)`.

/// How the cases' spools write their segments.
const MAPPED: bool = false;

mod spool_cases;
mod spool_support;
