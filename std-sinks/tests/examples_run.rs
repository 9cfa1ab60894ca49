//! Runs each program of `std-sinks/examples/` as built by cargo
//! and checks what it prints, parsing every JSON line with the crate's own
//! parser:
//!
//! * `basic_emission`: three OSSA events on stdout, in order, with the agent id;
//! * `event_batching`: 12 events, sent as batches of 5, 5, then 2 once the
//!   flush interval passed (with no `flush()`);
//! * `http_sink`: the 15 demo events reach the in-process receiver (printed
//!   by it), and reach `ossa-events listen` when its URL is given in
//!   `OSSA_COLLECTOR_URL`; to a collector that never answers it says how
//!   many were delivered and exits 1;
//! * `kafka_sink` (feature `kafka`): the 15 demo events reach a real tansu
//!   broker and `ossa-events consume` reads them back; without brokers it
//!   explains how to start one and exits 2;
//! * `agent_workflow`: one trace, one interaction, spans that open and close
//!   nested (workflow ⊃ agent ⊃ turn ⊃ tool call), a failed tool call;
//! * `custom_events`: the user's types, serde payloads and typed extensions,
//!   and the refused extension name.
//!
//! `cargo test` builds the examples before it runs integration tests, into
//! `target/<profile>/examples/`, next to the `deps/` folder this test runs
//! from. Selecting targets (`--test examples_run`, even with `--examples`,
//! which builds them as tests into `deps/`) does not: then a missing example,
//! or one older than its source, fails with the command to run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::example;

use std::collections::HashSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use ossa_events::parse::json::parse_event;
use ossa_events::{ExtValue, FastIds, Scratch, SystemClock, demo, ossa};

/// One example run, start to exit.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// What a program did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to its end within [`RUN_TIMEOUT`] (killed and failed past it).
fn run(mut cmd: Command) -> Run {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).map(|_| s)
    });
    let mut err = child.stderr.take().unwrap();
    let err = thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).map(|_| s)
    });
    let end = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {RUN_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    }
}

/// A command for example `name`, without the variables the examples read
/// from the environment (set them on it where wanted).
fn example_cmd(name: &str) -> Command {
    let mut cmd = Command::new(example(name));
    for var in [
        "OSSA_COLLECTOR_URL",
        "OSSA_KAFKA_BROKERS",
        "OSSA_KAFKA_TOPIC",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs example `name` with `args`, asserting it exits 0.
fn run_ok(name: &str, args: &[&str]) -> Run {
    let mut cmd = example_cmd(name);
    cmd.args(args);
    let r = run(cmd);
    assert_eq!(
        r.code,
        Some(0),
        "{name} failed\nstdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    r
}

/// Each line of `out`, checked with our parser (every CloudEvents rule) and
/// against its payload schema (the built-in OSSA ones), and returned as JSON
/// for the field checks.
fn events(out: &str) -> Vec<Value> {
    let mut scratch = vec![0u8; 16 * 1024];
    let schemas = ossa_events::schema::SchemaRegistry::builtin();
    out.lines()
        .enumerate()
        .map(|(i, line)| {
            let ev = parse_event(line.as_bytes(), &mut Scratch::new(&mut scratch))
                .unwrap_or_else(|e| panic!("line {}: not a valid CloudEvent ({e}): {line}", i + 1));
            if let Err(e) = schemas.check(&ev) {
                panic!("line {}: payload breaks its schema ({e}): {line}", i + 1);
            }
            serde_json::from_str(line).unwrap()
        })
        .collect()
}

fn types(evs: &[Value]) -> Vec<&str> {
    evs.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// The attribute `name` of every event, asserted to be one and the same string.
fn shared<'v>(evs: &'v [Value], name: &str) -> &'v str {
    let first = evs[0][name].as_str().unwrap_or_else(|| panic!("no {name}"));
    for e in evs {
        assert_eq!(e[name].as_str(), Some(first), "{name} differs: {e}");
    }
    first
}

/// The types of the demo run, in order.
fn demo_types() -> Vec<String> {
    let mut t = Vec::new();
    demo::agent_run("/s", &SystemClock, &mut FastIds, |ev| {
        t.push(ev.ty().to_owned());
        Ok::<(), ()>(())
    })
    .unwrap();
    t
}

/// The 15 events of the demo run, as sent: types in order, one trace.
fn assert_demo_run(evs: &[Value]) {
    assert_eq!(types(evs), demo_types());
    shared(evs, "ossatraceid");
    shared(evs, "ossainteractionid");
    shared(evs, "source");
    let ids: HashSet<&str> = evs.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), evs.len(), "each event once");
}

#[test]
fn basic_emission_prints_three_ossa_events() {
    let r = run_ok("basic_emission", &[]);
    let evs = events(&r.stdout);
    assert_eq!(
        types(&evs),
        [
            ossa::AGENT_STARTED,
            ossa::TOOL_CALLED,
            ossa::AGENT_COMPLETED
        ]
    );
    assert_eq!(shared(&evs, "source"), "/agents/my-agent");
    assert_eq!(shared(&evs, "ossaagentid"), "my-agent");
    assert_eq!(
        evs[1]["data"],
        json!({"tool": "search", "call_id": "call-1", "arguments": {"query": "test"}})
    );
    assert_eq!(evs[2]["data"]["status"], "success");
    assert!(evs.iter().all(|e| e["time"].is_string()));
    assert!(
        r.stderr.contains("delivered 3 events, 0 failed"),
        "{}",
        r.stderr
    );
}

#[test]
fn event_batching_sends_full_batches_then_a_partial_one_on_the_timer() {
    let r = run_ok("event_batching", &[]);
    let evs = events(&r.stdout);
    assert_eq!(evs.len(), 12);
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e["type"], ossa::TOOL_CALLED);
        assert_eq!(e["data"]["arguments"]["iteration"], i, "in order");
    }
    // "[ 251 ms] batch 3: 2 events (…)" → (251, "batch 3: 2 events (…)")
    let batches: Vec<(u64, &str)> = r
        .stderr
        .lines()
        .filter_map(|l| {
            let (ms, rest) = l.strip_prefix('[')?.split_once(" ms] ")?;
            Some((ms.trim().parse().ok()?, rest))
        })
        .collect();
    let said: Vec<&str> = batches.iter().map(|b| b.1).collect();
    assert_eq!(
        said,
        [
            "batch 1: 5 events (full)",
            "batch 2: 5 events (full)",
            "batch 3: 2 events (partial: the flush interval passed)"
        ],
        "{}",
        r.stderr
    );
    assert!(
        batches[2].0 >= 250,
        "the partial batch went out before the 250 ms interval: {}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("metrics: emitted 12, delivered 12, batches 3, failed 0, dropped 0"),
        "{}",
        r.stderr
    );
}

#[cfg(feature = "http")]
#[test]
fn http_sink_delivers_the_demo_run_to_its_in_process_receiver() {
    let r = run_ok("http_sink", &[]);
    // The receiver prints each event it got: all 15, in order.
    assert_demo_run(&events(&r.stdout));
    assert!(r.stderr.contains("(in-process receiver)"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("delivered 15 of 15 events in 2 batches (retried 0, failed 0)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("receiver: 15 events in 2 requests, 2 accepted, 0 rejected"),
        "{}",
        r.stderr
    );
}

/// A collector that takes the connection and never answers: the events
/// are retried until the example's flush gives up. The example then still
/// says how many were delivered and which URL it tried, instead of ending
/// on `Error: Timeout(Flush)` alone.
#[cfg(feature = "http")]
#[test]
fn http_sink_says_what_was_not_delivered_when_the_collector_does_not_answer() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    let mut cmd = example_cmd("http_sink");
    cmd.arg(&url);
    let r = run(cmd);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr.contains("delivered 0 of 15 events"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains(&format!("15 of 15 events not delivered to {url}")),
        "{}",
        r.stderr
    );
    drop(silent);
}

#[cfg(feature = "http")]
#[test]
fn http_sink_delivers_to_the_listen_command_named_in_the_environment() {
    let listen = common::Listen::start(&[], Duration::from_secs(10));
    let mut cmd = example_cmd("http_sink");
    cmd.env("OSSA_COLLECTOR_URL", listen.url());
    let r = run(cmd);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains(&format!("collector: {}", listen.url())),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("delivered 15 of 15 events"),
        "{}",
        r.stderr
    );
    assert_demo_run(&listen.events(15));
    listen.no_more_lines();
}

#[test]
fn agent_workflow_links_every_event_by_trace_and_nested_spans() {
    let r = run_ok("agent_workflow", &[]);
    let evs = events(&r.stdout);
    use ossa::*;
    assert_eq!(
        types(&evs),
        [
            WORKFLOW_STARTED,
            AGENT_STARTED,
            TURN_STARTED,
            TOOL_CALLED,
            TOOL_COMPLETED,
            TOOL_CALLED,
            TOOL_FAILED,
            TURN_COMPLETED,
            TURN_STARTED,
            TOOL_CALLED,
            TOOL_COMPLETED,
            TURN_COMPLETED,
            AGENT_COMPLETED,
            WORKFLOW_COMPLETED,
        ]
    );
    let trace = shared(&evs, "ossatraceid");
    assert_eq!(trace.len(), 32);
    assert!(trace.bytes().all(|b| b.is_ascii_hexdigit()), "{trace}");
    assert!(shared(&evs, "ossainteractionid").starts_with("session-"));
    assert_eq!(shared(&evs, "ossaagentid"), "researcher");

    // Spans: a started/called event opens one, its completed/failed event
    // closes it; they nest, so each close matches the innermost open span.
    let mut open: Vec<(&str, &str)> = Vec::new();
    let mut spans = HashSet::new();
    for e in &evs {
        let span = e["ossaspanid"].as_str().unwrap();
        assert_eq!(span.len(), 16, "{e}");
        let ty = e["type"].as_str().unwrap();
        let (kind, phase) = ty
            .strip_prefix("dev.ossa.")
            .and_then(|t| t.split_once('.'))
            .unwrap();
        match phase {
            "started" | "called" => {
                assert!(spans.insert(span), "span {span} reused: {e}");
                open.push((kind, span));
            }
            "completed" | "failed" => {
                assert_eq!(open.pop(), Some((kind, span)), "{e}");
            }
            _ => panic!("unexpected {ty}"),
        }
    }
    assert!(open.is_empty(), "spans left open: {open:?}");
    assert_eq!(spans.len(), 7);

    let failed = &evs[6];
    assert_eq!(failed["subject"], "fetch_url");
    assert_eq!(failed["data"]["call_id"], "call-2");
    assert_eq!(failed["data"]["error"]["code"], "timeout");
    assert_eq!(failed["data"]["error"]["retryable"], true);
    assert_eq!(evs[4]["data"]["result"], json!({"hits": 5}));
    assert!(
        r.stderr.contains(&format!(
            "trace {trace}: 14 events in 7 spans, 1 of 3 tool calls failed"
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn tokio_agent_reports_concurrent_tools_without_blocking() {
    let r = run_ok("tokio_agent", &[]);
    let evs = events(&r.stdout);
    assert_eq!(evs.len(), 8, "{}", r.stdout);
    assert_eq!(evs[0]["type"], ossa::AGENT_STARTED);
    assert_eq!(evs[7]["type"], ossa::AGENT_COMPLETED);
    assert_eq!(shared(&evs, "ossaagentid"), "planner");
    // Each tool's call comes before its completion; the calls of all three
    // come before any completion (they run concurrently).
    for call in ["call-0", "call-1", "call-2"] {
        let pos = |ty: &str| {
            evs.iter()
                .position(|e| e["type"] == ty && e["data"]["call_id"] == call)
                .unwrap_or_else(|| panic!("{ty} {call} missing"))
        };
        assert!(pos(ossa::TOOL_CALLED) < pos(ossa::TOOL_COMPLETED), "{call}");
        assert!(pos(ossa::TOOL_CALLED) <= 3, "{call}");
    }
    assert!(
        r.stderr.contains("flushed 7, delivered 8 events, 0 failed"),
        "{}",
        r.stderr
    );
}

#[test]
fn custom_events_carry_the_users_types_payloads_and_extensions() {
    let r = run_ok("custom_events", &[]);
    let evs = events(&r.stdout);
    assert_eq!(
        types(&evs),
        [
            "com.example.deploy.requested",
            "com.example.deploy.approved"
        ]
    );
    let req = &evs[0];
    assert_eq!(
        req["data"],
        json!({
            "service": "checkout",
            "version": "2.14.0",
            "replicas": 6,
            "regions": ["eu-west-1", "us-east-1"],
            "change_ticket": "CHG-1042"
        })
    );
    assert_eq!(req["datacontenttype"], "application/json");
    assert_eq!(
        req["dataschema"],
        "https://schemas.example.com/deploy/requested/v1.json"
    );
    assert_eq!(req["subject"], "checkout");
    assert_eq!(req["ossaagentid"], "release-bot");
    assert_eq!(
        evs[1]["data"]["approved_by"],
        json!(["alice", "ops-policy-bot"])
    );
    assert_eq!(shared(&evs, "tenant"), "acme");

    // The extensions keep their CloudEvents types through the wire.
    let line = r.stdout.lines().next().unwrap();
    let mut scratch = vec![0u8; 4096];
    let ev = parse_event(line.as_bytes(), &mut Scratch::new(&mut scratch)).unwrap();
    assert_eq!(ev.extension("priority"), Some(ExtValue::Integer(2)));
    assert_eq!(ev.extension("dryrun"), Some(ExtValue::Boolean(false)));
    assert_eq!(ev.extension("tenant"), Some(ExtValue::String("acme")));

    assert!(r.stderr.contains("refused: "), "{}", r.stderr);
    assert!(r.stderr.contains("Tenant-ID"), "{}", r.stderr);
    assert!(
        r.stderr.contains("emitted 2, rejected 1, delivered 2"),
        "{}",
        r.stderr
    );
}

#[cfg(feature = "kafka")]
mod kafka {
    use super::*;
    use common::tansu::Tansu;

    #[test]
    fn kafka_sink_delivers_the_demo_run_to_a_tansu_broker() {
        let broker = Tansu::start();
        let bootstrap = broker.bootstrap();
        broker.create_topic("agent-events", 1);

        let r = run_ok(
            "kafka_sink",
            &["--brokers", &bootstrap, "--topic", "agent-events"],
        );
        assert!(
            r.stderr.contains(&format!(
                "delivered 15 of 15 events to topic agent-events at {bootstrap} (retried 0, failed 0)"
            )),
            "{}\ntansu:\n{}",
            r.stderr,
            broker.log_text()
        );

        // Read back with the CLI's consumer: the 15 demo events, in order
        // (one partition).
        let mut consume = common::bin();
        consume.args(["consume", "--kafka", &bootstrap, "--topic", "agent-events"]);
        consume.args(["--from-beginning", "--max-events", "15", "--timeout", "20"]);
        let c = run(consume);
        assert_eq!(c.code, Some(0), "{}", c.stderr);
        let evs = events(&c.stdout);
        assert_demo_run(&evs);
        assert!(c.stderr.contains("printed 15, invalid 0"), "{}", c.stderr);
    }

    #[test]
    fn kafka_sink_without_brokers_tells_how_to_start_one() {
        let r = run(example_cmd("kafka_sink"));
        assert_eq!(r.code, Some(2), "{}", r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        assert!(r.stderr.contains("no Kafka brokers given"), "{}", r.stderr);
        assert!(
            r.stderr
                .contains("tansu broker --listener-url tcp://127.0.0.1:9092"),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains("--brokers 127.0.0.1:9092"),
            "{}",
            r.stderr
        );
    }
}
