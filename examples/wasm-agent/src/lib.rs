//! An OSSA agent compiled to `wasm32-unknown-unknown` that emits CloudEvents
//! through host imports: no wasm-bindgen, no WASI, no allocator.
//!
//! The host provides three functions in the import module `host`:
//!
//! | import | signature | meaning |
//! |---|---|---|
//! | `write` | `(ptr: i32, len: i32) -> i32` | takes bytes of JSON Lines; returns how many it accepted (more than `len` counts as `len`; 0 as a failure), or a negative value on error (having taken none of them) |
//! | `now_ms` | `() -> i64` | Unix time in milliseconds (outside years 0000–9999: the events carry 1970-01-01T00:00:00Z) |
//! | `random` | `(ptr: i32)` | fills 16 bytes at `ptr` with randomness (event ids; each is also mixed with a count of the ids this instance made, so a `random` that repeats itself, a sandbox with no entropy, still gives distinct ids in an instance) |
//!
//! and calls the export `run(turns: u32) -> i32`, which plays a whole agent
//! run through [`Emitter`] and returns the number of events delivered, or a
//! negative error code (see [`ERR_INVALID`] and friends). A run that returns
//! an error code stops there: the events it still held are not written, and
//! the export [`dropped`]`() -> u32` says how many. Everything else lives on
//! the stack of that one call; that count is the only state the module keeps
//! between calls.
//!
//! Delivery is at-least-once for a run that returns a count: a flush whose
//! write fails keeps its place in the emitter. The next flush does not write
//! again the lines the host took whole; it ends a line the failure cut with a
//! newline, then writes the cut event whole, so a host that parses line by
//! line and skips a line that does not parse gets each delivered event once,
//! never two on one line. A `write` that returns an error after passing on
//! bytes breaks that "once": the events those bytes held come again, under
//! the same ids.
#![no_std]

use core::sync::atomic::{AtomicU32, Ordering};

use embedded_io::{ErrorKind, ErrorType, Write};
use ossa_events_core::emitter::{Config, EmitError, Emitter};
use ossa_events_core::{ossa, BatchFormat, Clock, RandomIds, RawJson, Timestamp};

/// The host imports.
mod host {
    #[link(wasm_import_module = "host")]
    unsafe extern "C" {
        /// Writes `len` bytes at `ptr`; returns the bytes accepted or a negative error.
        pub(crate) fn write(ptr: *const u8, len: usize) -> i32;
        /// Unix time in milliseconds.
        pub(crate) fn now_ms() -> i64;
        /// Fills the 16 bytes at `ptr` with randomness.
        pub(crate) fn random(ptr: *mut u8);
    }
}

/// An event was refused as invalid, its payload failed, or it was too large.
pub const ERR_INVALID: i32 = -1;
/// An event was dropped: the batch was full and the host kept failing writes
/// ([`FLUSH_ATTEMPTS`] tries). The run stops; [`dropped`] counts that event
/// and the ones the batch held.
pub const ERR_DROPPED: i32 = -2;
/// The final flush still failed after [`FLUSH_ATTEMPTS`] tries; [`dropped`]
/// counts the events it held.
pub const ERR_FLUSH: i32 = -3;

/// What [`dropped`] returns: set by each [`run`].
static DROPPED: AtomicU32 = AtomicU32::new(0);

/// Events per flush.
const BATCH_SIZE: usize = 4;
/// Capacity of the emitter's batch: events and bytes.
const MAX_EVENTS: usize = 16;
const MAX_BYTES: usize = 8 * 1024;
/// How often an emit that found the batch full, or the final flush, is retried.
const FLUSH_ATTEMPTS: u32 = 16;

const SOURCE: &str = "/agents/wasm-researcher";
/// The emitter's settings: a `const`, so `Config::new` checks `SOURCE` at
/// compile time and the module does not carry the URI grammar.
const CONFIG: Config<'static> = Config::new(SOURCE)
    .batch_size(BATCH_SIZE)
    .flush_interval_ms(1000)
    .format(BatchFormat::JsonLines);
const AGENT_ID: &str = "wasm-researcher";
const WORKFLOW_ID: &str = "wf-wasm-1";

/// The host's `write` returned a negative value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostWriteError(pub i32);

impl core::fmt::Display for HostWriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "host write failed with {}", self.0)
    }
}

impl core::error::Error for HostWriteError {}

impl embedded_io::Error for HostWriteError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// Writes to the host through `host::write`.
#[derive(Debug)]
struct HostWriter;

impl ErrorType for HostWriter {
    type Error = HostWriteError;
}

impl Write for HostWriter {
    fn write(&mut self, buf: &[u8]) -> Result<usize, HostWriteError> {
        if buf.is_empty() {
            return Ok(0);
        }
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call.
        let n = unsafe { host::write(buf.as_ptr(), buf.len()) };
        if n < 0 {
            return Err(HostWriteError(n));
        }
        // A host claiming more than it was given is clamped.
        Ok((n as usize).min(buf.len()))
    }

    fn flush(&mut self) -> Result<(), HostWriteError> {
        // Every `write` is handed to the host at once; nothing is buffered here.
        Ok(())
    }
}

/// Time from the host.
#[derive(Debug, Clone, Copy)]
struct HostClock;

impl Clock for HostClock {
    fn now(&self) -> Timestamp {
        // SAFETY: a host import without arguments.
        let ms = unsafe { host::now_ms() };
        Timestamp::from_unix_millis(ms).unwrap_or(Timestamp::UNIX_EPOCH)
    }
}

/// Ids this instance has made: mixed into each (see [`host_random`]).
static IDS_MADE: AtomicU32 = AtomicU32::new(0);

fn host_random(bytes: &mut [u8; 16]) {
    // SAFETY: `bytes` is valid for writes of 16 bytes.
    unsafe { host::random(bytes.as_mut_ptr()) }
    // XOR with a value no two ids of this instance share: random bytes
    // stay random (XOR with a fixed value is a bijection), and bytes that
    // repeat (a host with no entropy answering zeros) no longer make the
    // same id twice, which a consumer would take for one event sent twice.
    let n = IDS_MADE.fetch_add(1, Ordering::Relaxed);
    if let Some(tail) = bytes.last_chunk_mut::<4>() {
        *tail = (u32::from_le_bytes(*tail) ^ n).to_le_bytes();
    }
}

/// `prefix` followed by `n` in decimal, in `buf`.
fn numbered<'b>(buf: &'b mut [u8; 32], prefix: &str, n: u32) -> &'b str {
    let p = prefix.len().min(buf.len() - 10);
    buf[..p].copy_from_slice(&prefix.as_bytes()[..p]);
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let d = digits.len() - i;
    buf[p..p + d].copy_from_slice(&digits[i..]);
    core::str::from_utf8(&buf[..p + d]).unwrap_or("")
}

/// Records what a run that stops with `code` drops: the events still in
/// the batch, and the event that a full batch refused.
fn stop<I: ossa_events_core::IdSource>(em: &HostEmitter<'_, I>, code: i32) -> i32 {
    let n = em.pending() + usize::from(code == ERR_DROPPED);
    DROPPED.store(u32::try_from(n).unwrap_or(u32::MAX), Ordering::Relaxed);
    code
}

fn code<E>(e: &EmitError<E>) -> i32 {
    match e {
        EmitError::Full(_) => ERR_DROPPED,
        _ => ERR_INVALID,
    }
}

type HostEmitter<'a, I> = Emitter<'a, HostWriter, I, HostClock, MAX_EVENTS, MAX_BYTES>;

/// Emits `payload`; when the batch is full and the host refuses the flush that
/// would make room, tries again up to [`FLUSH_ATTEMPTS`] times.
fn emit<I, P>(em: &mut HostEmitter<'_, I>, payload: &P) -> Result<(), i32>
where
    I: ossa_events_core::IdSource,
    P: ossa::Payload,
{
    let mut attempts = 0;
    loop {
        match em.emit_ossa(payload) {
            Ok(()) => return Ok(()),
            Err(EmitError::Full(_)) if attempts + 1 < FLUSH_ATTEMPTS => attempts += 1,
            Err(e) => return Err(stop(em, code(&e))),
        }
    }
}

/// A JSON literal of this module. `RawJson::trusted`, not `RawJson::new`:
/// a JSON validator would add ~4 KiB to the module only to check constants;
/// the host test (tests/tests/wasm_module_emits_through_host_import.rs)
/// parses every event this module writes, so a typo here fails it.
const fn json(s: &'static str) -> RawJson<'static> {
    RawJson::trusted(s)
}

fn agent(turns: u32) -> Result<u64, i32> {
    let config = CONFIG;
    let mut em: HostEmitter<'_, _> =
        Emitter::new(config, HostWriter, RandomIds(host_random), HostClock);
    em.set_context(ossa::Context {
        agent_id: Some(AGENT_ID),
        interaction_id: Some("session-wasm-1"),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        span_id: Some("00f067aa0ba902b7"),
    });

    emit(
        &mut em,
        &ossa::WorkflowStarted {
            workflow_id: WORKFLOW_ID,
            name: Some("research"),
            input: Some(json(r#"{"topic":"no_std CloudEvents"}"#)),
        },
    )?;
    emit(
        &mut em,
        &ossa::AgentStarted {
            agent_id: AGENT_ID,
            name: Some("Researcher"),
            version: Some("0.1.0"),
            input: None,
        },
    )?;

    let mut call_id = [0u8; 32];
    for turn in 1..=turns {
        emit(
            &mut em,
            &ossa::TurnStarted {
                turn: u64::from(turn),
                input: Some(json(r#"{"role":"user","content":"search more"}"#)),
            },
        )?;
        let id = numbered(&mut call_id, "call-", turn);
        emit(
            &mut em,
            &ossa::ToolCalled {
                tool: "web_search",
                call_id: Some(id),
                arguments: Some(json(r#"{"query":"rust no_std wasm"}"#)),
            },
        )?;
        emit(
            &mut em,
            &ossa::ToolCompleted {
                tool: "web_search",
                call_id: Some(id),
                result: Some(json(r#"{"hits":3}"#)),
                duration_ms: Some(100),
            },
        )?;
        if turn == turns {
            let mut fetch_id = [0u8; 32];
            let id = numbered(&mut fetch_id, "fetch-", turn);
            emit(
                &mut em,
                &ossa::ToolCalled {
                    tool: "fetch_url",
                    call_id: Some(id),
                    arguments: Some(json(r#"{"url":"https://example.com/paper"}"#)),
                },
            )?;
            emit(
                &mut em,
                &ossa::ToolFailed {
                    tool: "fetch_url",
                    call_id: Some(id),
                    error: ossa::ErrorInfo {
                        message: "upstream timed out",
                        code: Some("timeout"),
                        retryable: Some(true),
                    },
                    duration_ms: Some(5000),
                },
            )?;
        }
        emit(
            &mut em,
            &ossa::TurnCompleted {
                turn: u64::from(turn),
                output: Some(json(r#"{"role":"assistant","content":"found 3 papers"}"#)),
                usage: Some(ossa::TokenUsage {
                    input_tokens: 120,
                    output_tokens: 48,
                }),
                duration_ms: Some(400),
            },
        )?;
        // A superloop would sleep `next_flush_in_ms` here; a host-driven
        // agent just polls between turns. A failed poll keeps the events.
        let _ = em.poll(HostClock.now());
    }

    emit(
        &mut em,
        &ossa::AgentCompleted {
            agent_id: AGENT_ID,
            status: "success",
            output: Some(json(r#"{"papers":3}"#)),
            duration_ms: Some(u64::from(turns) * 400),
        },
    )?;
    emit(
        &mut em,
        &ossa::WorkflowCompleted {
            workflow_id: WORKFLOW_ID,
            status: "success",
            output: None,
            duration_ms: Some(u64::from(turns) * 400 + 100),
        },
    )?;

    let mut attempts = 0;
    while em.pending() > 0 {
        if em.flush().is_err() {
            attempts += 1;
            if attempts >= FLUSH_ATTEMPTS {
                return Err(stop(&em, ERR_FLUSH));
            }
        }
    }
    Ok(em.counters().delivered)
}

/// Runs an agent for `turns` turns, emitting every event through the host's
/// `write`. Returns the number of events delivered, or a negative error code.
#[no_mangle]
pub extern "C" fn run(turns: u32) -> i32 {
    DROPPED.store(0, Ordering::Relaxed);
    match agent(turns) {
        Ok(n) => i32::try_from(n).unwrap_or(i32::MAX),
        Err(code) => code,
    }
}

/// How many events the last [`run`] dropped: 0 after one that returned a
/// count; after an error code, the events it made and still held when it
/// stopped, with the one [`ERR_DROPPED`] refused. They were never counted
/// as delivered, but a host whose `write` took some bytes and then failed
/// may hold some of them whole (at-least-once). Events of the turns the
/// run did not reach were never made and are not counted.
#[no_mangle]
pub extern "C" fn dropped() -> u32 {
    DROPPED.load(Ordering::Relaxed)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
