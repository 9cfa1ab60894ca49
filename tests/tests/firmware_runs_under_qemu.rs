//! The `no_std` firmware example (examples/firmware) builds for
//! thumbv7em-none-eabihf, boots in QEMU (Cortex-M4, mps2-an386), and writes
//! through its semihosted "UART" exactly the OSSA agent run it emits, as
//! CloudEvents JSON Lines that our parser accepts, then exits with status 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ossa_events::parse::json::parse_event;
use ossa_events::{Data, Scratch, ossa};

const QEMU: &str = "qemu-system-arm";
const QEMU_TIMEOUT: Duration = Duration::from_secs(120);
const TARGET: &str = "thumbv7em-none-eabihf";
const BIN: &str = "ossa-firmware-example";

/// Event types of the run, in order, with the span each is emitted in.
const EXPECTED: [(&str, &str); 8] = [
    (ossa::WORKFLOW_STARTED, WORKFLOW_SPAN),
    (ossa::AGENT_STARTED, AGENT_SPAN),
    (ossa::TURN_STARTED, TURN_SPAN),
    (ossa::TOOL_CALLED, TOOL_SPAN),
    (ossa::TOOL_FAILED, TOOL_SPAN),
    (ossa::TURN_COMPLETED, TURN_SPAN),
    (ossa::AGENT_COMPLETED, AGENT_SPAN),
    (ossa::WORKFLOW_COMPLETED, WORKFLOW_SPAN),
];
const AGENT_ID: &str = "thermo-agent";
const INTERACTION_ID: &str = "int-7f3a";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const WORKFLOW_SPAN: &str = "00f067aa0ba902b7";
const AGENT_SPAN: &str = "a3ce929d0e0e4736";
const TURN_SPAN: &str = "53995c3f42cd8ad8";
const TOOL_SPAN: &str = "1f2e3d4c5b6a7988";
const SOURCE: &str = "/devices/greenhouse-7/agents/thermo-agent";

fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/firmware")
}

/// Fails (never skips) when QEMU is missing.
fn require_qemu() {
    match Command::new(QEMU).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`{QEMU} --version` failed ({}): {}\nrun `bash scripts/test.sh`, which installs qemu-system-arm",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "{QEMU} is not installed: run `bash scripts/test.sh`, which installs it \
             (apt-get install -y qemu-system-arm)"
        ),
        Err(e) => panic!("cannot run {QEMU}: {e}\nrun `bash scripts/test.sh`"),
    }
}

/// `cargo build --release` in examples/firmware, in its own workspace and
/// target dir (no fight over the outer build's lock), with none of the outer
/// build's flags (they would replace the example's `-Tlink.x`). With
/// `features`, in a target dir of its own (`target/<features>`), so the two
/// builds never overwrite each other's binary.
fn build_firmware(features: Option<&str>) -> PathBuf {
    let dir = firmware_dir();
    let target_dir = match features {
        None => dir.join("target"),
        Some(f) => dir.join("target").join(f),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target-dir"])
        .arg(&target_dir);
    if let Some(f) = features {
        cmd.args(["--features", f]);
    }
    let out = cmd
        .current_dir(&dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .stdin(Stdio::null())
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building the firmware failed ({}); `bash scripts/test.sh` installs the \
         {TARGET} target\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let elf = target_dir.join(TARGET).join("release").join(BIN);
    assert!(elf.is_file(), "no firmware at {}", elf.display());
    elf
}

/// Boots `elf` in QEMU; its stdout and exit status (killed after the timeout).
fn run_qemu(elf: &Path) -> (ExitStatus, String, String) {
    let mut child = Command::new(QEMU)
        .args(["-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).map(|_| s)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for qemu") {
            break status;
        }
        if start.elapsed() > QEMU_TIMEOUT {
            child.kill().expect("kill qemu");
            child.wait().expect("reap qemu");
            panic!(
                "the firmware did not exit within {QEMU_TIMEOUT:?}; output so far:\n{}",
                out.join().unwrap().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().unwrap().expect("qemu stdout is UTF-8");
    let stderr = err.join().unwrap().unwrap_or_default();
    (status, stdout, stderr)
}

/// `key=value` of a `# ...` line.
fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.parse().expect("a number"))
}

/// Boots the firmware built with `features`, checks that it exits 0 and
/// wrote the agent run exactly (every event once, in order, with its context
/// and a rising time), and that its summary counts them. Returns the `#` lines.
fn run_and_check(features: Option<&str>) -> (String, Vec<String>) {
    require_qemu();
    let elf = build_firmware(features);
    let (status, stdout, stderr) = run_qemu(&elf);
    assert!(
        status.success(),
        "firmware exited with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let mut seen = Vec::new();
    let mut ids = HashSet::new();
    let mut last_time = None;
    let mut comments = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with('#') {
            comments.push(line);
            continue;
        }
        let mut buf = vec![0u8; line.len()];
        let ev = parse_event(line.as_bytes(), &mut Scratch::new(&mut buf))
            .unwrap_or_else(|e| panic!("not a valid event ({e}): {line}"));
        let i = seen.len();
        assert!(i < EXPECTED.len(), "more events than expected: {line}");
        let (ty, span) = EXPECTED[i];
        assert_eq!(ev.ty(), ty, "event {i}: {line}");
        assert_eq!(ev.source(), SOURCE);
        assert!(ids.insert(ev.id().to_owned()), "duplicate id: {line}");

        for (name, want) in [
            (ossa::EXT_AGENT_ID, AGENT_ID),
            (ossa::EXT_INTERACTION_ID, INTERACTION_ID),
            (ossa::EXT_TRACE_ID, TRACE_ID),
            (ossa::EXT_SPAN_ID, span),
        ] {
            let got = ev.extension(name).and_then(|v| v.as_str());
            assert_eq!(got, Some(want), "extension {name} of event {i}: {line}");
        }

        let t = ev.time().unwrap_or_else(|| panic!("no time: {line}"));
        let t = (t.unix_seconds(), t.nanos());
        if let Some(prev) = last_time {
            assert!(t > prev, "time does not increase at event {i}: {line}");
        }
        last_time = Some(t);

        let Some(Data::Json(data)) = ev.data() else {
            panic!("event {i} has no JSON data: {line}");
        };
        let data: serde_json::Value = serde_json::from_str(data).unwrap();
        if ty == ossa::TOOL_FAILED {
            assert_eq!(data["error"]["code"], "timeout", "{line}");
            assert_eq!(ev.subject(), Some("set_heater"));
        }
        seen.push(ev.ty().to_owned());
    }
    assert_eq!(
        seen,
        EXPECTED.map(|(ty, _)| ty),
        "event types in order; output:\n{stdout}"
    );

    let summary: Vec<_> = comments
        .iter()
        .filter(|l| l.starts_with("# emitted="))
        .collect();
    assert_eq!(summary.len(), 1, "one summary line; output:\n{stdout}");
    let summary = summary[0];
    let n = seen.len() as u64;
    assert_eq!(field(summary, "emitted"), Some(n), "{summary}");
    assert_eq!(field(summary, "delivered"), Some(n), "{summary}");
    assert_eq!(field(summary, "rejected"), Some(0), "{summary}");
    let comments = comments.into_iter().map(str::to_owned).collect();
    (stdout, comments)
}

#[test]
fn firmware_emits_the_agent_run_under_qemu() {
    let (stdout, comments) = run_and_check(None);
    let n = EXPECTED.len() as u64;
    let summary = comments
        .iter()
        .find(|l| l.starts_with("# emitted="))
        .unwrap();
    assert_eq!(field(summary, "failed_writes"), Some(0), "{summary}");

    // Both flush triggers fired: the batch size (3) and the interval (1 s, via poll).
    let flushes: Vec<_> = comments
        .iter()
        .filter(|l| l.starts_with("# flush "))
        .map(|l| {
            let trigger = l
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix("trigger="));
            (trigger.unwrap().to_owned(), field(l, "events").unwrap())
        })
        .collect();
    assert!(flushes.iter().any(|(t, _)| t == "size"), "{stdout}");
    assert!(flushes.iter().any(|(t, _)| t == "interval"), "{stdout}");
    assert_eq!(flushes.iter().map(|(_, n)| n).sum::<u64>(), n, "{stdout}");
}

/// The firmware built with `--features spool`: its "UART" is unplugged from
/// the tool call until the turn completes. The writes of that outage fail,
/// the events wait in the flash spool, and once the UART is back they are
/// written out first: the reader still gets the whole run, once, in order.
#[test]
fn firmware_with_a_flash_spool_drains_it_after_its_uart_comes_back_under_qemu() {
    let (stdout, comments) = run_and_check(Some("spool"));
    let at = |what: &str| {
        comments
            .iter()
            .position(|l| l == what)
            .unwrap_or_else(|| panic!("no `{what}` line:\n{stdout}"))
    };
    assert!(at("# uart down") < at("# uart up"), "{stdout}");
    let summary = comments
        .iter()
        .find(|l| l.starts_with("# emitted="))
        .unwrap();
    assert!(
        field(summary, "failed_writes").unwrap() > 0,
        "writes failed while unplugged: {summary}"
    );
    let spool = comments
        .iter()
        .find(|l| l.starts_with("# spooled="))
        .unwrap_or_else(|| panic!("no spool summary:\n{stdout}"));
    let spooled = field(spool, "spooled").unwrap();
    assert!(spooled >= 3, "the outage's events went to flash: {spool}");
    assert_eq!(
        field(spool, "replayed"),
        Some(spooled),
        "and came back out: {spool}"
    );
    assert_eq!(field(spool, "flash_errors"), Some(0), "{spool}");
    // Nothing was written while unplugged: every event line comes before
    // `# uart down` or after `# uart up`.
    let lines: Vec<&str> = stdout.lines().collect();
    let down = lines.iter().position(|l| *l == "# uart down").unwrap();
    let up = lines.iter().position(|l| *l == "# uart up").unwrap();
    assert!(
        lines[down..up].iter().all(|l| l.starts_with('#')),
        "{stdout}"
    );
}
