//! `ossa-events demo`: the demo agent run as JSON Lines on stdout.

use std::io::Write;
use std::process::ExitCode;

use ossa_events::demo::DemoError;
use ossa_events::{Event, FastIds, SystemClock, demo, format::json};

use super::args::HelpFlag;
use super::progress::note;

/// The default `--source`.
pub(crate) const DEFAULT_SOURCE: &str = "/ossa/demo/researcher";

/// Emit a realistic OSSA agent run as JSON Lines (one CloudEvent per line) on stdout.
///
/// The run: workflow started → agent started → turn 1 (web_search succeeds,
/// fetch_url fails with a timeout, state updated) → turn 2 (summarize) → agent
/// completed → workflow completed; 15 events linked by ossatraceid, ossaspanid and
/// ossainteractionid. Ids and times are new on every run.
#[derive(Debug, clap::Parser)]
#[command(
    name = "demo",
    verbatim_doc_comment,
    override_usage = "demo [--source URI-REF]",
    after_help = "\
Exit status: 0 on success (also when stdout is closed early, e.g. by 'head');
1 when stdout cannot be written; 2 on bad arguments.

Examples:
  ossa-events demo
  ossa-events demo --source /agents/researcher-7 | ossa-events validate"
)]
pub(crate) struct Args {
    /// The events' source attribute [default: /ossa/demo/researcher]
    #[arg(long, value_name = "URI-REF")]
    source: Option<String>,
    #[command(flatten)]
    pub(super) help: HelpFlag,
}

/// Runs `demo` with its parsed arguments.
pub(crate) fn run(a: Args) -> ExitCode {
    let source = a.source.unwrap_or_else(|| DEFAULT_SOURCE.to_string());
    // A source that is no URI-reference is a bad argument (2), as it is to
    // `emit` sending the demo run, not a failure of the run (1, as a full
    // disk is).
    if let Err(e) = Event::builder().id("1").source(&source).ty("t").build() {
        return super::usage_error(Some("demo"), &format!("demo: --source: {e}"));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut line = Vec::with_capacity(1024);
    let r = demo::agent_run(&source, &SystemClock, &mut FastIds, |ev| {
        line.clear();
        // Writing to a Vec cannot fail, and the demo's events carry no
        // serde payloads.
        json::write_jsonl(ev, &mut line).map_err(|e| std::io::Error::other(e.to_string()))?;
        out.write_all(&line)
    });
    // The write's own error is kept (not its text): its kind tells a
    // reader gone from a failure.
    let r = match r {
        Ok(_) => out.flush(),
        Err(DemoError::Emit(e)) => Err(e),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        // stdout closed early (`| head -1`): the reader's choice, not a
        // failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            note!("ossa-events: demo: {e}");
            ExitCode::from(super::EXIT_FAILURE)
        }
    }
}
