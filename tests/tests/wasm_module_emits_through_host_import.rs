//! The `no_std` emitter compiled to `wasm32-unknown-unknown` (examples/wasm-agent)
//! and run in a real WebAssembly runtime (wasmi): every event it emits arrives
//! through its `host.write` import, parses (with the crate's parser and with
//! `serde_json`), and is in order; a host whose writes fail for a while still
//! gets every event; a host import returning garbage gets an error code or a
//! well-formed event, never a trap; a run that gives up says, through the
//! `dropped` export, how many events it dropped.
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
    /// This `host.write` call takes the bytes and still returns -1 (0: none).
    take_then_fail: u32,
    /// Every `host.write` call from this one on fails with -1 (0: none).
    fail_from: u32,
    /// Most bytes accepted per `host.write` call (0: no limit).
    max_chunk: usize,
    now_ms: i64,
    now_calls: u32,
    /// Seeded counter behind `host.random`.
    rng: u64,
    /// `host.random` answers zeros (a sandbox with no entropy).
    no_entropy: bool,
    random_calls: u32,
    /// What `host.write` returns in place of the byte count, after taking
    /// the bytes (a host returning garbage).
    write_returns: Option<i32>,
    /// What `host.now_ms` returns, by call number, in place of the clock.
    clock: Option<fn(u32) -> i64>,
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
    let (mut store, instance) = instantiate(host);
    let run = instance.get_typed_func::<u32, i32>(&store, "run").unwrap();
    let ret = run.call(&mut store, turns).unwrap();
    (ret, store.into_data())
}

/// The module instantiated with `host` behind its imports.
fn instantiate(host: Host) -> (Store<Host>, wasmi::Instance) {
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
                if host.write_calls <= host.fail_first
                    || (host.fail_from > 0 && host.write_calls >= host.fail_from)
                {
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
                if host.write_calls == host.take_then_fail {
                    return Ok(-1);
                }
                Ok(host.write_returns.unwrap_or(len as i32))
            },
        )
        .unwrap()
        .func_wrap("host", "now_ms", |mut caller: Caller<'_, Host>| -> i64 {
            let host = caller.data_mut();
            host.now_calls += 1;
            host.now_ms += 100;
            match host.clock {
                Some(f) => f(host.now_calls),
                None => host.now_ms,
            }
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
                if !host.no_entropy {
                    bytes[..8].copy_from_slice(&splitmix(&mut host.rng).to_le_bytes());
                    bytes[8..].copy_from_slice(&splitmix(&mut host.rng).to_le_bytes());
                }
                memory
                    .write(&mut caller, ptr as u32 as usize, &bytes)
                    .map_err(wasmi::Error::from)
            },
        )
        .unwrap();
    let instance = linker.instantiate_and_start(&mut store, &module).unwrap();
    (store, instance)
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

/// Checks one JSON Lines line with `serde_json` alone (not the crate's
/// parser): a JSON object in the structured JSON format (json-format.md §3)
/// carrying the required attributes of spec.md §3.1, `time` in RFC 3339, and
/// `data` as JSON (the `datacontenttype` is `application/json`). Returns its id.
fn check_line_with_serde(line: &[u8]) -> String {
    let text = std::str::from_utf8(line).expect("a line is UTF-8");
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {text}"));
    assert_eq!(obj["specversion"], "1.0", "{text}");
    for name in ["id", "source", "type"] {
        let s = obj[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {text}"));
        assert!(!s.is_empty(), "{name} is empty: {text}");
    }
    for (name, value) in obj {
        if name == "data" {
            continue;
        }
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "attribute name {name:?}: {text}"
        );
        assert!(
            value.is_string() || value.is_boolean() || value.is_i64(),
            "attribute {name} = {value}: {text}"
        );
    }
    assert_eq!(obj["datacontenttype"], "application/json", "{text}");
    assert!(obj["data"].is_object(), "data is JSON: {text}");
    let time = obj["time"]
        .as_str()
        .unwrap_or_else(|| panic!("time: {text}"));
    let rfc3339 = regex::Regex::new(
        r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$",
    )
    .unwrap();
    assert!(rfc3339.is_match(time), "time {time:?} is not RFC 3339");
    chrono::DateTime::parse_from_rfc3339(time).unwrap_or_else(|e| panic!("time {time:?}: {e}"));
    obj["id"].as_str().unwrap().to_owned()
}

/// The non-empty lines of `out`, each checked by both parsers; their ids.
fn ids_checked_by_both_parsers(out: &[u8]) -> Vec<String> {
    let _ = parse_lines(out);
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(check_line_with_serde)
        .collect()
}

#[test]
fn every_line_is_cloudevents_json_to_serde_json_and_ids_are_unique_across_calls() {
    let (mut store, instance) = instantiate(Host::new(0, 0));
    let run = instance.get_typed_func::<u32, i32>(&store, "run").unwrap();
    assert_eq!(run.call(&mut store, 3).unwrap(), 18);
    let first = store.data().out.len();
    assert_eq!(run.call(&mut store, 2).unwrap(), 14);
    let host = store.into_data();
    let ids = ids_checked_by_both_parsers(&host.out);
    assert_eq!(ids.len(), 32);
    assert_eq!(ids_checked_by_both_parsers(&host.out[..first]).len(), 18);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "ids are unique across calls of run"
    );
}

#[test]
fn any_host_clock_reading_gives_a_well_formed_time() {
    let clocks: [fn(u32) -> i64; 9] = [
        |_| 0,
        |_| -1,
        |n| -i64::from(n) * 7,
        |_| -62_167_219_200_000, // 0000-01-01T00:00:00Z
        |_| 253_402_300_799_999, // 9999-12-31T23:59:59.999Z
        |_| 253_402_300_800_000, // year 10000: beyond RFC 3339
        |_| -62_167_219_200_001, // before year 0
        |_| i64::MAX,
        |_| i64::MIN,
    ];
    for clock in clocks {
        let mut host = Host::new(0, 0);
        host.clock = Some(clock);
        let (ret, host) = run_agent(2, host);
        assert_eq!(ret, 14, "clock {}", clock(1));
        assert_eq!(ids_checked_by_both_parsers(&host.out).len(), 14);
        // A reading outside RFC 3339's years 0000-9999 gives the epoch, as
        // the module's docs say.
        if !(-62_167_219_200_000..=253_402_300_799_999).contains(&clock(1)) {
            let text = String::from_utf8(host.out).unwrap();
            assert_eq!(text.matches(r#""time":"1970-01-01T00:00:00Z""#).count(), 14);
        }
    }
}

#[test]
fn a_host_write_returning_garbage_gives_an_error_code_not_a_trap() {
    // Claims more than it was given: taken as all of it.
    let mut host = Host::new(0, 0);
    host.write_returns = Some(i32::MAX);
    let (ret, host) = run_agent(3, host);
    assert_eq!(ret, 18);
    check_run(&parse_lines(&host.out), 3, &host);
    // Zero bytes taken, or any negative value: an error code.
    for garbage in [0, -7, i32::MIN] {
        let mut host = Host::new(0, 0);
        host.write_returns = Some(garbage);
        let (ret, _) = run_agent(3, host);
        assert!(ret < 0, "write returning {garbage}: run returned {ret}");
    }
}

/// A host whose writes fail for longer than the module retries: `run` gives
/// up with an error code, and the events it held then, which the host never
/// got, are not lost silently: `dropped()` says how many.
#[test]
fn a_run_that_gives_up_reports_how_many_events_it_dropped() {
    for fail_first in [12, 29, 40, u32::MAX] {
        let (mut store, instance) = instantiate(Host::new(fail_first, 0));
        let run = instance.get_typed_func::<u32, i32>(&store, "run").unwrap();
        let dropped = instance
            .get_typed_func::<(), u32>(&store, "dropped")
            .expect("the module exports dropped()");
        let ret = run.call(&mut store, 3).unwrap();
        let lost = dropped.call(&mut store, ()).unwrap();
        let out = &store.data().out;
        let got = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        if ret >= 0 {
            assert_eq!((ret, lost, got), (18, 0, 18), "fail_first = {fail_first}");
        } else {
            assert_eq!(ret, -2, "fail_first = {fail_first}");
            // Every event it made before it gave up: the 15 its 8 KiB batch
            // held, and the one that batch had no room for.
            assert_eq!((lost, got), (16, 0), "fail_first = {fail_first}");
        }
        // The next run starts the count again.
        store.data_mut().fail_first = 0;
        assert_eq!(run.call(&mut store, 1).unwrap(), 10);
        assert_eq!(dropped.call(&mut store, ()).unwrap(), 0);
    }
    // One turn: two flushes of 4 events go through; the host fails from its
    // third write, the final flush's, on: the last 2 events are dropped.
    let mut host = Host::new(0, 0);
    host.fail_from = 3;
    let (mut store, instance) = instantiate(host);
    let run = instance.get_typed_func::<u32, i32>(&store, "run").unwrap();
    let dropped = instance
        .get_typed_func::<(), u32>(&store, "dropped")
        .unwrap();
    assert_eq!(run.call(&mut store, 1).unwrap(), -3);
    assert_eq!(dropped.call(&mut store, ()).unwrap(), 2);
    assert_eq!(parse_lines(&store.data().out).len(), 8);
}

/// The module's docs promise each event once only to a host whose failed
/// `write` took none of the bytes: one that passes them on and still
/// returns an error gets those events again, under the same ids, each whole
/// on a line of its own.
#[test]
fn a_host_write_that_takes_the_bytes_and_fails_gets_them_again_under_the_same_ids() {
    let mut host = Host::new(0, 0);
    host.take_then_fail = 1;
    let (ret, host) = run_agent(3, host);
    assert_eq!(ret, 18);
    let seen = parse_lines(&host.out);
    assert_eq!(seen.len(), 18 + 4, "the first batch of 4 arrives twice");
    let ids: Vec<&str> = seen.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids[..4], ids[4..8]);
    check_run(&seen[4..], 3, &host);
}

/// A host whose `random` answers zeros (a sandbox with no entropy) still
/// gets a distinct id for every event, in one run and across runs of the
/// same instance: a consumer that drops repeated ids as duplicates would
/// otherwise keep one event of the whole run.
#[test]
fn a_host_random_with_no_entropy_still_gives_distinct_ids() {
    let host = Host {
        no_entropy: true,
        ..Host::new(0, 0)
    };
    let (mut store, instance) = instantiate(host);
    let run = instance.get_typed_func::<u32, i32>(&store, "run").unwrap();
    let first = run.call(&mut store, 3).unwrap();
    let second = run.call(&mut store, 3).unwrap();
    assert!(first > 0 && second > 0, "{first} {second}");
    let host = store.into_data();
    let ids = ids_checked_by_both_parsers(&host.out);
    assert_eq!(ids.len(), (first + second) as usize);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
}
