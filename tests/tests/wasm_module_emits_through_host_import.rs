//! The `no_std` emitter compiled to `wasm32-unknown-unknown` (examples/wasm-agent)
//! and run in a real WebAssembly runtime (wasmi): every event it emits arrives
//! through its `host.write` import, parses, and is in order; a host whose
//! writes fail for a while still gets every event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use ossa_events::parse::json::parse_event;
use ossa_events::{Data, Scratch, ossa};
use serde_json::{Value, json};
use wasmi::{Caller, Engine, Extern, Linker, Module, Store};

/// Where the simulated clock starts: 2025-11-25T12:00:00Z.
const START_MS: i64 = 1_764_072_000_000;

/// Builds the example once (both tests share it) and returns its `.wasm`.
///
/// The example is its own workspace with its own `target/`, so this nested
/// cargo never waits on the lock of the build running these tests.
fn wasm_module() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wasm-agent");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(&dir)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "--message-format=json-render-diagnostics",
            ])
            // Settings of the outer build that must not leak into this one.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "building {} failed: {}",
            dir.display(),
            out.status
        );
        // The artifact path, wherever the target dir is configured to be.
        let stdout = String::from_utf8(out.stdout).unwrap();
        stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact")
            .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
            .filter_map(|f| f.as_str().map(PathBuf::from))
            .find(|f| f.extension().is_some_and(|e| e == "wasm"))
            .expect("cargo reported no .wasm artifact")
    })
}

/// The host's side of the imports, kept in the wasmi `Store`.
#[derive(Default)]
struct Host {
    /// Everything `host.write` accepted, in order.
    out: Vec<u8>,
    /// `host.write` calls so far.
    write_calls: u32,
    /// The first this-many `host.write` calls fail with -1.
    fail_first: u32,
    /// Most bytes accepted per `host.write` call (0: no limit).
    max_chunk: usize,
    now_ms: i64,
    now_calls: u32,
    /// Seeded counter behind `host.random`.
    rng: u64,
    random_calls: u32,
}

impl Host {
    fn new(fail_first: u32, max_chunk: usize) -> Self {
        Host {
            fail_first,
            max_chunk,
            now_ms: START_MS,
            rng: 0x5EED,
            ..Host::default()
        }
    }
}

/// splitmix64: the bytes `host.random` hands out.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn guest_memory(caller: &Caller<'_, Host>) -> Result<wasmi::Memory, wasmi::Error> {
    caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| wasmi::Error::new("the module exports no memory"))
}

/// Loads the module, links `host.write`, `host.now_ms` and `host.random`,
/// calls `run(turns)` and returns its result and the host state.
fn run_agent(turns: u32, host: Host) -> (i32, Host) {
    let engine = Engine::default();
    let module = Module::new(&engine, std::fs::read(wasm_module()).unwrap()).unwrap();
    let mut store = Store::new(&engine, host);
    let mut linker = <Linker<Host>>::new(&engine);
    linker
        .func_wrap(
            "host",
            "write",
            |mut caller: Caller<'_, Host>, ptr: i32, len: i32| -> Result<i32, wasmi::Error> {
                let memory = guest_memory(&caller)?;
                let (mem, host) = memory.data_and_store_mut(&mut caller);
                host.write_calls += 1;
                if host.write_calls <= host.fail_first {
                    return Ok(-1);
                }
                let (ptr, mut len) = (ptr as u32 as usize, len as u32 as usize);
                if host.max_chunk > 0 {
                    len = len.min(host.max_chunk);
                }
                let bytes = mem
                    .get(ptr..ptr + len)
                    .ok_or_else(|| wasmi::Error::new("host.write out of bounds"))?;
                host.out.extend_from_slice(bytes);
                Ok(len as i32)
            },
        )
        .unwrap()
        .func_wrap("host", "now_ms", |mut caller: Caller<'_, Host>| -> i64 {
            let host = caller.data_mut();
            host.now_calls += 1;
            host.now_ms += 100;
            host.now_ms
        })
        .unwrap()
        .func_wrap(
            "host",
            "random",
            |mut caller: Caller<'_, Host>, ptr: i32| -> Result<(), wasmi::Error> {
                let memory = guest_memory(&caller)?;
                let host = caller.data_mut();
                host.random_calls += 1;
                let mut bytes = [0u8; 16];
                bytes[..8].copy_from_slice(&splitmix(&mut host.rng).to_le_bytes());
                bytes[8..].copy_from_slice(&splitmix(&mut host.rng).to_le_bytes());
                memory
                    .write(&mut caller, ptr as u32 as usize, &bytes)
                    .map_err(wasmi::Error::from)
            },
        )
        .unwrap();
    let instance = linker.instantiate_and_start(&mut store, &module).unwrap();
    let run = instance.get_typed_func::<u32, i32>(&store, "run").unwrap();
    let ret = run.call(&mut store, turns).unwrap();
    (ret, store.into_data())
}

/// What the test keeps of one delivered event.
#[derive(Debug)]
struct Seen {
    id: String,
    ty: String,
    subject: Option<String>,
    time_ms: i64,
    data: Value,
}

/// Parses every JSON Lines line with the crate's own parser and checks what
/// every event must carry: source, the four OSSA extensions, JSON data.
/// Blank lines are skipped: after a failed write the batch starts its retry
/// with a newline, so a torn line can never fuse with the next event.
fn parse_lines(bytes: &[u8]) -> Vec<Seen> {
    assert!(bytes.ends_with(b"\n"), "output ends with a newline");
    let mut seen = Vec::new();
    for (i, line) in bytes[..bytes.len() - 1]
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
    {
        let mut buf = vec![0u8; line.len()];
        let ev = parse_event(line, &mut Scratch::new(&mut buf)).unwrap_or_else(|e| {
            panic!(
                "line {i} does not parse ({e}): {}",
                String::from_utf8_lossy(line)
            )
        });
        assert_eq!(ev.source(), "/agents/wasm-researcher", "line {i}");
        assert_eq!(ev.ossa_agent_id(), Some("wasm-researcher"), "line {i}");
        assert_eq!(ev.ossa_interaction_id(), Some("session-wasm-1"), "line {i}");
        assert_eq!(
            ev.ossa_trace_id(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736"),
            "line {i}"
        );
        assert_eq!(ev.ossa_span_id(), Some("00f067aa0ba902b7"), "line {i}");
        assert_eq!(ev.datacontenttype(), Some("application/json"), "line {i}");
        let data = match ev.data() {
            Some(Data::Json(s)) => serde_json::from_str(s).unwrap(),
            other => panic!("line {i}: data {other:?}"),
        };
        let time = ev.time().expect("time set from host.now_ms");
        seen.push(Seen {
            id: ev.id().to_owned(),
            ty: ev.ty().to_owned(),
            subject: ev.subject().map(str::to_owned),
            time_ms: time.unix_seconds() * 1000 + i64::from(time.nanos() / 1_000_000),
            data,
        });
    }
    seen
}

/// The event types `run(turns)` emits, in order.
fn expected_types(turns: u32) -> Vec<&'static str> {
    let mut t = vec![ossa::WORKFLOW_STARTED, ossa::AGENT_STARTED];
    for turn in 1..=turns {
        t.extend([ossa::TURN_STARTED, ossa::TOOL_CALLED, ossa::TOOL_COMPLETED]);
        if turn == turns {
            t.extend([ossa::TOOL_CALLED, ossa::TOOL_FAILED]);
        }
        t.push(ossa::TURN_COMPLETED);
    }
    t.extend([ossa::AGENT_COMPLETED, ossa::WORKFLOW_COMPLETED]);
    t
}

/// Checks the whole run: order, payloads, ids, clock.
fn check_run(seen: &[Seen], turns: u32, host: &Host) {
    let types: Vec<&str> = seen.iter().map(|s| s.ty.as_str()).collect();
    assert_eq!(types, expected_types(turns));

    let ids: HashSet<&str> = seen.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), seen.len(), "every id is unique");
    for s in seen {
        assert_eq!(uuid::Uuid::parse_str(&s.id).unwrap().get_version_num(), 4);
    }
    assert_eq!(
        host.random_calls as usize,
        seen.len(),
        "one host.random per event"
    );

    // Each event's time is a fresh host.now_ms reading: strictly increasing.
    assert!(seen.windows(2).all(|w| w[0].time_ms < w[1].time_ms));
    assert!(seen[0].time_ms > START_MS);
    assert!(seen.last().unwrap().time_ms <= host.now_ms);

    let failed: Vec<&Seen> = seen.iter().filter(|s| s.ty == ossa::TOOL_FAILED).collect();
    assert_eq!(failed.len(), 1, "exactly one tool failure");
    let failed = failed[0];
    assert_eq!(failed.subject.as_deref(), Some("fetch_url"));
    let call_id = format!("fetch-{turns}");
    assert_eq!(
        failed.data,
        json!({
            "tool": "fetch_url",
            "call_id": call_id,
            "error": {"message": "upstream timed out", "code": "timeout", "retryable": true},
            "duration_ms": 5000
        })
    );
    // The failing call was announced just before it.
    let called = seen
        .iter()
        .find(|s| s.ty == ossa::TOOL_CALLED && s.data["call_id"] == call_id.as_str())
        .expect("tool.called for the failing call");
    assert_eq!(called.subject.as_deref(), Some("fetch_url"));

    // Every web_search call is completed under its own call id.
    for turn in 1..=turns {
        let id = format!("call-{turn}");
        let by_id: Vec<&str> = seen
            .iter()
            .filter(|s| s.data["call_id"] == id.as_str())
            .map(|s| s.ty.as_str())
            .collect();
        assert_eq!(by_id, [ossa::TOOL_CALLED, ossa::TOOL_COMPLETED], "{id}");
    }
    let turns_seen: Vec<u64> = seen
        .iter()
        .filter(|s| s.ty == ossa::TURN_COMPLETED)
        .map(|s| s.data["turn"].as_u64().unwrap())
        .collect();
    assert_eq!(turns_seen, (1..=u64::from(turns)).collect::<Vec<_>>());
    assert_eq!(seen[0].subject.as_deref(), Some("wf-wasm-1"));
    assert_eq!(
        seen.last().unwrap().data,
        json!({"workflow_id": "wf-wasm-1", "status": "success", "duration_ms": u64::from(turns) * 400 + 100})
    );
}

#[test]
fn every_event_arrives_through_host_write_in_order() {
    let (ret, host) = run_agent(3, Host::new(0, 0));
    let seen = parse_lines(&host.out);
    assert_eq!(ret, 18, "2 + 3 turns x 4 + 2 for the failure + 2");
    assert_eq!(ret as usize, seen.len(), "run returns the events delivered");
    check_run(&seen, 3, &host);
    // Batches of 4: the emitter flushed several times, not once per event
    // (each event is two writes: its JSON and its newline).
    assert!(host.write_calls as usize <= 2 * seen.len());
}

#[test]
fn a_host_that_accepts_a_few_bytes_per_write_gets_the_same_events() {
    let (ret, host) = run_agent(3, Host::new(0, 50));
    let seen = parse_lines(&host.out);
    assert_eq!(ret as usize, seen.len());
    check_run(&seen, 3, &host);
    assert!(
        host.write_calls as usize > 2 * seen.len(),
        "short writes were continued"
    );
}

/// The host's `write` fails for the first calls, then recovers. The emitter
/// keeps the place of a flush whose write failed and goes on from there at
/// the next flush (on the next full batch, `poll` or the final flush in
/// `run`): lines the host took whole are not written again, and a cut event
/// is written whole on a line of its own. Here every failure is the first
/// `host.write` of a flush attempt, so no failed attempt left any bytes
/// behind and each event arrives exactly once.
#[test]
fn a_host_write_that_fails_then_recovers_loses_and_duplicates_nothing() {
    for fail_first in [1, 3, 6, 12] {
        let (ret, host) = run_agent(3, Host::new(fail_first, 0));
        let seen = parse_lines(&host.out);
        assert_eq!(
            ret, 18,
            "fail_first = {fail_first}: run delivers everything"
        );
        assert_eq!(ret as usize, seen.len(), "fail_first = {fail_first}");
        check_run(&seen, 3, &host);
        assert!(host.write_calls > fail_first);
    }
}

#[test]
fn a_host_that_never_recovers_gets_an_error_code_not_a_trap() {
    let (ret, host) = run_agent(3, Host::new(u32::MAX, 0));
    assert!(ret < 0, "run returned {ret}");
    assert!(host.out.is_empty());
    assert!(host.now_calls > 0);
}
