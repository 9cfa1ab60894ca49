//! `ossa-events-core` on a Cortex-M4 with no allocator and no OS.
//!
//! A superloop emits one OSSA agent run (workflow → agent → turn → a tool call
//! that times out → turn, agent and workflow completed) through the core
//! crate's [`Emitter`], which batches the events and writes them as JSON
//! Lines to a UART. Here the "UART" is semihosting stdout, so the firmware
//! runs under QEMU:
//!
//! ```text
//! cargo build --release
//! qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
//!   -semihosting-config enable=on,target=native \
//!   -kernel target/thumbv7em-none-eabihf/release/ossa-firmware-example
//! ```
//!
//! Time comes from a software tick counter (250 ms per tick) and event ids
//! from a xorshift PRNG with a fixed seed, so the output is the same on every
//! run. Lines starting with `#` are not events: one per flush (what triggered
//! it) and a final summary of the emitter's counters. The firmware then ends
//! QEMU through semihosting with status 0, or prints the error and exits with
//! status 1.
//!
//! With `--features spool` the emitter is a `SpoolEmitter` over a NOR flash
//! (emulated in RAM here; on a device, the HAL's flash driver): the "UART"
//! is unplugged from the tool call until the turn completes, the events of
//! that outage wait in flash, and when it is plugged back in they are written
//! out first, in order (`# uart down` / `# uart up` mark the outage; the
//! summary adds the spool's counters).
//!
//! The core is built without its `traceparent` feature: the events carry
//! their trace in `ossatraceid` and `ossaspanid`, and the flash does not
//! carry the code that derives a W3C `traceparent` from them (1 372 B, with
//! the check that one agrees with the OSSA ids);
//! `--features traceparent` puts it back.

#![no_std]
#![no_main]

use core::cell::Cell;
use core::fmt;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};
use ossa_events_core::batch::BatchFormat;
#[cfg(not(feature = "spool"))]
use ossa_events_core::emitter::Emitter;
use ossa_events_core::emitter::{Config, EmitError};
use ossa_events_core::ossa::{self, ErrorInfo, TokenUsage};
#[cfg(feature = "spool")]
use ossa_events_core::spool::{FlashSpool, RamFlash, SpoolEmitter};
use ossa_events_core::{Clock, EventId, IdSource, RawJson, Timestamp};

mod mem;

/// The emitter's settings: a `const`, so `Config::new` checks the source
/// (a URI-reference) at compile time, and the firmware does not carry the
/// RFC 3986 grammar to check it on every event.
const CONFIG: Config<'static> = Config::new("/devices/greenhouse-7/agents/thermo-agent")
    .batch_size(BATCH_SIZE)
    .flush_interval_ms(FLUSH_INTERVAL_MS)
    .format(BatchFormat::JsonLines);
/// Events pending at most.
const MAX_EVENTS: usize = 4;
/// Bytes pending at most (the batch arena, inside the emitter on the stack).
const ARENA_BYTES: usize = 2048;
/// Flush when this many events are pending.
const BATCH_SIZE: usize = 3;
/// ...or when the oldest pending event is this old (checked by `poll`).
const FLUSH_INTERVAL_MS: u64 = 1000;
/// Software tick period.
const TICK_MS: i64 = 250;
/// The clock at tick 0: 2026-11-25T12:00:00Z.
const BOOT_UNIX_MS: i64 = 1_795_608_000_000;
/// Seed of the id generator (fixed: deterministic output).
const ID_SEED: u64 = 0x0553_A0E7_0F1A_2026;

// --- the vector table's interrupts -------------------------------------------

/// External interrupts of the chip: the AN386 image's NVIC has 32 (QEMU
/// configures `num-irq` 32 for it in `hw/arm/mps2.c`).
const IRQS: usize = 32;

extern "C" {
    /// cortex-m-rt's handler for every interrupt nobody claims.
    fn DefaultHandler();
}

/// The interrupt part of the vector table, right after the 16 core
/// exception entries. On a real board the device crate (PAC) provides it,
/// one entry per interrupt of the chip; without one, cortex-m-rt would place
/// a 240-entry placeholder (960 B of flash, 832 B more than this chip has
/// interrupts for). The example enables none, so every entry is the default.
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
static __INTERRUPTS: [unsafe extern "C" fn(); IRQS] = [DefaultHandler; IRQS];

// --- the "UART" ---------------------------------------------------------------

/// A UART transmitter stand-in: every byte goes to the host's stdout through
/// semihosting (`SYS_WRITE`). While `unplugged` is set, writes fail.
struct Uart<'a> {
    host: hio::HostStream,
    unplugged: &'a Cell<bool>,
}

/// The host refused a semihosting write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UartError;

impl fmt::Display for UartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semihosting write refused")
    }
}

impl core::error::Error for UartError {}

impl embedded_io::Error for UartError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

impl embedded_io::ErrorType for Uart<'_> {
    type Error = UartError;
}

impl embedded_io::Write for Uart<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, UartError> {
        if self.unplugged.get() {
            return Err(UartError);
        }
        self.host.write_all(buf).map_err(|()| UartError)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), UartError> {
        // SYS_WRITE returns once the host has the bytes: nothing is buffered here.
        if self.unplugged.get() {
            return Err(UartError);
        }
        Ok(())
    }
}

// --- time and ids ---------------------------------------------------------------

/// A clock driven by a software tick counter instead of a hardware timer.
struct TickClock {
    ticks: Cell<i64>,
}

impl TickClock {
    const fn new() -> Self {
        TickClock {
            ticks: Cell::new(0),
        }
    }
    /// One timer tick (what a `SysTick` interrupt handler would do).
    fn tick(&self) {
        self.ticks.set(self.ticks.get() + 1);
    }
    fn now_ms(&self) -> i64 {
        BOOT_UNIX_MS + self.ticks.get() * TICK_MS
    }
}

impl Clock for TickClock {
    fn now(&self) -> Timestamp {
        // `None` only beyond the year 9999: thousands of years of ticks away.
        Timestamp::from_unix_millis(self.now_ms()).unwrap_or_else(|| halt_with("clock overflow"))
    }
}

/// UUID v4 event ids from a xorshift64 PRNG (16 bytes per id).
struct XorShiftIds {
    state: u64,
}

impl XorShiftIds {
    const fn new(seed: u64) -> Self {
        // xorshift never leaves 0.
        XorShiftIds {
            state: if seed == 0 { 1 } else { seed },
        }
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }
}

impl IdSource for XorShiftIds {
    fn next_id(&mut self) -> EventId {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        EventId::from_random_bytes(bytes)
    }
}

// --- the agent run --------------------------------------------------------------

/// Why the run stopped.
enum RunError {
    Emit(&'static str, EmitError<UartError>),
    Flush(&'static str),
    Counters,
}

impl RunError {
    /// Writes `# error: …` to `out` without `core::fmt` (which would cost
    /// several KiB of flash): the step and a short reason.
    fn report(&self, out: &mut hio::HostStream) {
        let (what, reason) = match self {
            RunError::Emit(what, e) => (*what, emit_reason(e)),
            RunError::Flush(when) => (*when, "flush failed"),
            RunError::Counters => ("", "events were rejected, dropped or not delivered"),
        };
        line(
            out,
            &[
                "# error: ",
                what,
                if what.is_empty() { "" } else { ": " },
                reason,
            ],
        );
        if let RunError::Emit(_, EmitError::Invalid(v)) = self {
            line(out, &["# error: attribute `", v.attribute.name(), "`"]);
        }
    }
}

/// What went wrong with an emit, in a few words.
fn emit_reason<E>(e: &EmitError<E>) -> &'static str {
    match e {
        EmitError::Invalid(_) => "event rejected: it breaks a CloudEvents rule",
        EmitError::Payload(_) => "event rejected: its payload failed",
        EmitError::TooLarge => "event rejected: larger than the batch capacity",
        EmitError::Full(_) => "event dropped: batch full and flush failed",
        _ => "event dropped",
    }
}

/// Writes `parts` and a newline to `out`. Console output is best effort; the
/// events themselves go through the emitter.
fn line(out: &mut hio::HostStream, parts: &[&str]) {
    for p in parts {
        let _ = out.write_all(p.as_bytes());
    }
    let _ = out.write_all(b"\n");
}

/// `n` in decimal, in a `heapless::String` (whose `as_str` needs no
/// UTF-8 check: `core::str::from_utf8` would add ~600 B of flash).
fn decimal(n: u64) -> heapless::String<20> {
    let mut text = heapless::String::new();
    push_decimal(&mut text, n);
    text
}

/// Appends the digits of `n`, most significant first (recursing once per
/// digit: at most 20 deep). A `u64` division is a software routine on a
/// Cortex-M (about 1 KiB of flash), so `n` is divided by ten 16 bits at a
/// time with the core's 32-bit divider.
fn push_decimal(text: &mut heapless::String<20>, n: u64) {
    let (mut q, mut r) = (0u64, 0u32);
    for shift in [48, 32, 16, 0] {
        let cur = (r << 16) | ((n >> shift) as u32 & 0xffff);
        q |= u64::from(cur / 10) << shift;
        r = cur % 10;
    }
    if q > 0 {
        push_decimal(text, q);
    }
    // At most 20 digits into a 20-byte string: cannot fail.
    let _ = text.push(char::from(b'0' + r as u8));
}

const WORKFLOW_ID: &str = "wf-greenhouse-0001";
const AGENT_ID: &str = "thermo-agent";
const INTERACTION_ID: &str = "int-7f3a";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// One span per level of the run: the context's span id follows the nesting.
const WORKFLOW_SPAN: &str = "00f067aa0ba902b7";
const AGENT_SPAN: &str = "a3ce929d0e0e4736";
const TURN_SPAN: &str = "53995c3f42cd8ad8";
const TOOL_SPAN: &str = "1f2e3d4c5b6a7988";

#[cfg(not(feature = "spool"))]
type Em<'a> = Emitter<'a, Uart<'a>, XorShiftIds, &'a TickClock, MAX_EVENTS, ARENA_BYTES>;

/// The spool's flash: 8 pages of 2 KiB (emulated in RAM under QEMU).
#[cfg(feature = "spool")]
type Flash = RamFlash<FLASH_BYTES, FLASH_PAGE>;
#[cfg(feature = "spool")]
const FLASH_BYTES: usize = 8 * 2048;
#[cfg(feature = "spool")]
const FLASH_PAGE: usize = 2048;
/// The largest event the spool takes.
#[cfg(feature = "spool")]
const MAX_EVENT: usize = 1024;
#[cfg(feature = "spool")]
type Em<'a> = SpoolEmitter<
    'a,
    Uart<'a>,
    Flash,
    XorShiftIds,
    &'a TickClock,
    MAX_EVENTS,
    ARENA_BYTES,
    MAX_EVENT,
>;

/// The superloop: emits, lets time pass, polls, and reports each flush.
struct Run<'a> {
    em: Em<'a>,
    clock: &'a TickClock,
    console: hio::HostStream,
    unplugged: &'a Cell<bool>,
}

impl<'a> Run<'a> {
    fn span(&mut self, span_id: &'a str) {
        self.em.set_context(ossa::Context {
            agent_id: Some(AGENT_ID),
            interaction_id: Some(INTERACTION_ID),
            trace_id: Some(TRACE_ID),
            span_id: Some(span_id),
        });
    }

    /// Emits one event; notes a flush that the batch size triggered.
    fn emit<P: ossa::Payload>(&mut self, what: &'static str, p: &P) -> Result<(), RunError> {
        let before = self.em.counters().delivered;
        let r = self.em.emit_ossa(p);
        self.emitted(what, before, r)
    }

    /// What `emit` does after the emit: out of line, so it is in flash once
    /// rather than once per payload type.
    #[inline(never)]
    fn emitted(
        &mut self,
        what: &'static str,
        before: u64,
        r: Result<(), EmitError<UartError>>,
    ) -> Result<(), RunError> {
        r.map_err(|e| RunError::Emit(what, e))?;
        let c = self.em.counters();
        if c.failed_writes != 0 && !cfg!(feature = "spool") {
            return Err(RunError::Flush("size-triggered"));
        }
        if c.delivered > before {
            self.note("size", c.delivered - before);
        }
        Ok(())
    }

    /// Lets `ticks` timer ticks pass, polling the emitter after each; notes a
    /// flush that the interval triggered.
    fn wait(&mut self, ticks: u32) -> Result<(), RunError> {
        for _ in 0..ticks {
            self.clock.tick();
            let n = match self.em.poll(self.clock.now()) {
                Ok(n) => n,
                // With a spool, a failed write while unplugged is expected:
                // the events wait in flash.
                Err(_) if cfg!(feature = "spool") && self.unplugged.get() => 0,
                Err(_) => return Err(RunError::Flush("interval-triggered")),
            };
            if n > 0 {
                self.note("interval", n as u64);
            }
        }
        Ok(())
    }

    /// Unplugs (`true`) or plugs back in the UART. Without a spool the
    /// outage is not simulated: the plain emitter would drop what it cannot
    /// write once its batch is full.
    fn unplug(&mut self, unplugged: bool) {
        if cfg!(feature = "spool") {
            self.unplugged.set(unplugged);
            let what = if unplugged { "down" } else { "up" };
            line(&mut self.console, &["# uart ", what]);
        }
    }

    fn note(&mut self, trigger: &str, events: u64) {
        let events = decimal(events);
        line(
            &mut self.console,
            &["# flush trigger=", trigger, " events=", &events],
        );
    }
}

// The payloads' JSON literals. `RawJson::trusted`, not `RawJson::new`: a
// JSON validator would cost ~4 KiB of flash only to check constants. The
// QEMU test (tests/tests/firmware_runs_under_qemu.rs) parses every event
// this firmware writes, so a typo here fails it.
const WORKFLOW_INPUT: RawJson<'static> = RawJson::trusted(r#"{"zone":"north","target_c":21.5}"#);
const TURN_INPUT: RawJson<'static> = RawJson::trusted(r#"{"reading_c":17.2}"#);
const TOOL_ARGUMENTS: RawJson<'static> = RawJson::trusted(r#"{"power_pct":60}"#);
const TURN_OUTPUT: RawJson<'static> =
    RawJson::trusted(r#"{"action":"none","reason":"tool failed"}"#);

/// The agent run, one event per step, with time passing between steps.
fn agent_run(run: &mut Run<'_>) -> Result<(), RunError> {
    let t0 = run.clock.now_ms();

    run.span(WORKFLOW_SPAN);
    run.emit(
        "workflow.started",
        &ossa::WorkflowStarted {
            workflow_id: WORKFLOW_ID,
            name: Some("greenhouse-climate"),
            input: Some(WORKFLOW_INPUT),
        },
    )?;
    run.wait(1)?;

    run.span(AGENT_SPAN);
    run.emit(
        "agent.started",
        &ossa::AgentStarted {
            agent_id: AGENT_ID,
            name: Some("Thermostat agent"),
            version: Some("0.1.0"),
            input: None,
        },
    )?;
    run.wait(1)?;

    // Third pending event: the batch size (3) flushes here.
    run.span(TURN_SPAN);
    run.emit(
        "turn.started",
        &ossa::TurnStarted {
            turn: 1,
            input: Some(TURN_INPUT),
        },
    )?;
    run.wait(1)?;

    run.span(TOOL_SPAN);
    run.unplug(true);
    let tool_t0 = run.clock.now_ms();
    run.emit(
        "tool.called",
        &ossa::ToolCalled {
            tool: "set_heater",
            call_id: Some("call-1"),
            arguments: Some(TOOL_ARGUMENTS),
        },
    )?;
    // The tool does not answer for 4 ticks (1 s): the flush interval passes
    // with one event pending, and `poll` flushes it.
    run.wait(4)?;
    run.emit(
        "tool.failed",
        &ossa::ToolFailed {
            tool: "set_heater",
            call_id: Some("call-1"),
            error: ErrorInfo {
                message: "heater relay did not acknowledge within 1000 ms",
                code: Some("timeout"),
                retryable: Some(true),
            },
            duration_ms: Some(elapsed(tool_t0, run.clock.now_ms())),
        },
    )?;
    run.wait(1)?;

    run.span(TURN_SPAN);
    run.emit(
        "turn.completed",
        &ossa::TurnCompleted {
            turn: 1,
            output: Some(TURN_OUTPUT),
            usage: Some(TokenUsage {
                input_tokens: 182,
                output_tokens: 41,
            }),
            duration_ms: Some(elapsed(t0, run.clock.now_ms())),
        },
    )?;
    run.wait(1)?;

    run.unplug(false);
    // Third pending event again: size-triggered flush.
    run.span(AGENT_SPAN);
    run.emit(
        "agent.completed",
        &ossa::AgentCompleted {
            agent_id: AGENT_ID,
            status: "failed",
            output: None,
            duration_ms: Some(elapsed(t0, run.clock.now_ms())),
        },
    )?;
    run.wait(1)?;

    run.span(WORKFLOW_SPAN);
    run.emit(
        "workflow.completed",
        &ossa::WorkflowCompleted {
            workflow_id: WORKFLOW_ID,
            status: "failed",
            output: None,
            duration_ms: Some(elapsed(t0, run.clock.now_ms())),
        },
    )?;

    // Shutting down: deliver what is still pending.
    let n = run.em.flush().map_err(|_| RunError::Flush("final"))?;
    if n > 0 {
        run.note("shutdown", n as u64);
    }
    Ok(())
}

fn elapsed(from_ms: i64, to_ms: i64) -> u64 {
    u64::try_from(to_ms - from_ms).unwrap_or(0)
}

#[entry]
fn main() -> ! {
    let (Ok(uart_host), Ok(console)) = (hio::hstdout(), hio::hstdout()) else {
        halt_with("semihosting stdout is not available");
    };

    let clock = TickClock::new();
    let config = CONFIG;
    let unplugged = Cell::new(false);
    let uart = Uart {
        host: uart_host,
        unplugged: &unplugged,
    };
    #[cfg(not(feature = "spool"))]
    let em: Em<'_> = Emitter::new(config, uart, XorShiftIds::new(ID_SEED), &clock);
    #[cfg(feature = "spool")]
    let em: Em<'_> = {
        let range = 0..FLASH_BYTES as u32;
        match FlashSpool::open(RamFlash::new(), range) {
            Ok(spool) => SpoolEmitter::new(config, uart, spool, XorShiftIds::new(ID_SEED), &clock),
            Err(_) => halt_with("the spool's flash cannot be opened"),
        }
    };
    let mut run = Run {
        em,
        clock: &clock,
        console,
        unplugged: &unplugged,
    };

    let result = agent_run(&mut run).and_then(|()| {
        let c = run.em.counters();
        let ok = c.rejected == 0
            && c.dropped == 0
            && (c.failed_writes == 0 || cfg!(feature = "spool"))
            && c.delivered == c.emitted
            && run.em.pending() == 0;
        if ok {
            Ok(())
        } else {
            Err(RunError::Counters)
        }
    });

    let c = run.em.counters();
    line(
        &mut run.console,
        &[
            "# emitted=",
            &decimal(c.emitted),
            " delivered=",
            &decimal(c.delivered),
            " rejected=",
            &decimal(c.rejected),
            " failed_writes=",
            &decimal(c.failed_writes),
        ],
    );
    #[cfg(feature = "spool")]
    {
        let s = run.em.spool_counters();
        line(
            &mut run.console,
            &[
                "# spooled=",
                &decimal(s.spooled),
                " replayed=",
                &decimal(s.replayed),
                " flash_errors=",
                &decimal(s.flash_errors),
            ],
        );
    }
    match result {
        Ok(()) => exit(true),
        Err(e) => {
            e.report(&mut run.console);
            exit(false)
        }
    }
}

/// Ends the QEMU session with the given status (on hardware without a
/// debugger attached, parks the core instead).
fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

/// Prints `# error: {msg}` if it can and exits with failure.
fn halt_with(msg: &str) -> ! {
    if let Ok(mut out) = hio::hstdout() {
        line(&mut out, &["# error: ", msg]);
    }
    exit(false)
}

/// Reports the panic's location on the console, exits QEMU with failure,
/// then halts. (Its message would need `core::fmt`: several KiB of flash.)
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if let Ok(mut out) = hio::hstdout() {
        let (file, at) = match info.location() {
            Some(l) => (l.file(), decimal(u64::from(l.line()))),
            None => ("?", heapless::String::new()),
        };
        line(&mut out, &["# panic at ", file, ":", &at]);
    }
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
