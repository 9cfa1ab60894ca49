//! `ossa-events demo`: the demo agent run as JSON Lines on stdout.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use ossa_events::{demo, format::json, FastIds, SystemClock};

const HELP: &str = "\
Emit a realistic OSSA agent run as JSON Lines (one CloudEvent per line) on stdout.

The run: workflow started → agent started → turn 1 (web_search succeeds,
fetch_url fails with a timeout, state updated) → turn 2 (summarize) → agent
completed → workflow completed; 15 events linked by ossatraceid, ossaspanid and
ossainteractionid.

Usage: ossa-events demo [--source URI-REF]

Options:
      --source URI-REF  The events' source attribute [default: /ossa/demo/researcher]
  -h, --help            Show this help
";

pub(crate) fn run(args: Vec<OsString>) -> ExitCode {
    let mut source = String::from("/ossa/demo/researcher");
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("-h" | "--help") => {
                print!("{HELP}");
                return ExitCode::SUCCESS;
            }
            Some("--source") => match it.next().and_then(|v| v.into_string().ok()) {
                Some(v) => source = v,
                None => return super::usage_error("--source needs a value"),
            },
            Some(other) => {
                return super::usage_error(&format!("demo: unexpected argument '{other}'"))
            }
            None => return super::usage_error("demo: argument is not valid UTF-8"),
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut line = Vec::with_capacity(1024);
    let r = demo::agent_run(&source, &SystemClock, &mut FastIds, |ev| {
        line.clear();
        json::write_jsonl(ev, &mut line).map_err(|e| e.to_string())?;
        out.write_all(&line).map_err(|e| e.to_string())
    });
    let r = r
        .map_err(|e| e.to_string())
        .and_then(|_| out.flush().map_err(|e| e.to_string()));
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.contains("Broken pipe") => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ossa-events: demo: {e}");
            ExitCode::from(super::EXIT_FAILURE)
        }
    }
}
