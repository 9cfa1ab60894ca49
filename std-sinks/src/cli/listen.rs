//! `ossa-events listen`: a CloudEvents HTTP receiver that prints each valid
//! event as a canonical JSON line.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use ossa_events::receiver::{Handler, Receiver, ReceiverConfig};
use ossa_events::{format::json, Event};

const HELP: &str = "\
Receive CloudEvents v1.0 over HTTP and print each valid event as one line of
canonical structured JSON on stdout.

Usage: ossa-events listen --http ADDR [OPTIONS]

Listens on ADDR (host:port; port 0 picks a free one) and accepts POST or PUT
requests on any path, in all three content modes of the HTTP binding, told apart
by Content-Type:
  application/cloudevents+json        structured: one event in the body
  application/cloudevents-batch+json  batched: a JSON array of events
  anything else (or none)             binary: attributes in ce-* headers
                                      (percent-encoded, possibly quoted), the
                                      body is the data, Content-Type its type

A request whose events are all valid is answered 202 Accepted after its events
were printed (and stdout flushed); if any event of it is invalid the answer is
400 Bad Request with the reason in the body, and none of its events is printed.
Other answers: 405 (method other than POST/PUT), 413 (body over --max-body,
refused before it is read), 415 (event format other than JSON, or a
Content-Encoding other than gzip), 431 (request head over 16 KiB or 64 headers), 408 (request
not received in time), 503 with Retry-After: 1 (over --max-connections).

Once bound, prints 'listening on http://HOST:PORT' (the real port) on stderr.
Runs until killed.

Options:
      --http ADDR            Address to listen on, e.g. 127.0.0.1:8080 (required)
      --max-body BYTES       Largest request body accepted [default: 1048576]
      --max-connections N    Connections served at once [default: 64]
      --timeout SECS         Seconds a client may stay silent, mid-request or idle
                             between requests (fractions allowed); a whole request
                             must arrive within 3 times this [default: 10]
  -h, --help                 Show this help

Exit status: 1 when ADDR cannot be bound or stdout is closed, 2 on bad arguments.
";

/// Largest `--max-body` accepted (memory per connection grows with it).
const MAX_BODY_LIMIT: u64 = 1 << 30;
/// Largest `--max-connections` accepted.
const MAX_CONNECTIONS_LIMIT: u64 = 100_000;
/// Largest `--timeout` accepted, in seconds (one day).
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

pub(crate) fn run(args: Vec<OsString>) -> ExitCode {
    let mut addr: Option<String> = None;
    let mut config = ReceiverConfig::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let Some(s) = a.to_str() else {
            return super::usage_error("listen: argument is not valid UTF-8");
        };
        let (flag, inline) = match s.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (s.to_string(), None),
        };
        if flag == "-h" || flag == "--help" {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        if !matches!(
            flag.as_str(),
            "--http" | "--max-body" | "--max-connections" | "--timeout"
        ) {
            return if flag.starts_with('-') {
                super::usage_error(&format!("listen: unknown option '{flag}'"))
            } else {
                super::usage_error(&format!("listen: unexpected argument '{flag}'"))
            };
        }
        let value = match inline.or_else(|| it.next().and_then(|v| v.into_string().ok())) {
            Some(v) => v,
            None => return super::usage_error(&format!("listen: {flag} needs a value")),
        };
        match flag.as_str() {
            "--http" => {
                if value.is_empty() {
                    return super::usage_error("listen: --http needs an address like 127.0.0.1:8080");
                }
                addr = Some(value);
            }
            "--max-body" => match parse_count(&value, 1, MAX_BODY_LIMIT) {
                Some(n) => config = config.max_body_bytes(n),
                None => {
                    return super::usage_error(&format!(
                        "listen: --max-body must be a number of bytes from 1 to {MAX_BODY_LIMIT}, not '{value}'"
                    ))
                }
            },
            "--max-connections" => match parse_count(&value, 1, MAX_CONNECTIONS_LIMIT) {
                Some(n) => config = config.max_connections(n),
                None => {
                    return super::usage_error(&format!(
                        "listen: --max-connections must be a number from 1 to {MAX_CONNECTIONS_LIMIT}, not '{value}'"
                    ))
                }
            },
            _ => match parse_secs(&value) {
                Some(t) => {
                    config = config
                        .read_timeout(t)
                        .idle_timeout(t)
                        .request_timeout(t.saturating_mul(3))
                        .write_timeout(t);
                }
                None => {
                    return super::usage_error(&format!(
                        "listen: --timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT_SECS}, not '{value}'"
                    ))
                }
            },
        }
    }
    let Some(addr) = addr else {
        return super::usage_error("listen: --http ADDR is required, e.g. --http 127.0.0.1:8080");
    };

    let receiver = match Receiver::bind(addr.as_str(), config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ossa-events: listen: cannot listen on {addr}: {e}");
            return ExitCode::from(super::EXIT_FAILURE);
        }
    };
    match receiver.local_addr() {
        Ok(local) => eprintln!("listening on http://{local}"),
        Err(e) => {
            eprintln!("ossa-events: listen: {addr}: {e}");
            return ExitCode::from(super::EXIT_FAILURE);
        }
    }
    receiver.serve_with(PrintEvents)
}

/// An integer in `min..=max` (underscores allowed as digit separators).
fn parse_count(s: &str, min: u64, max: u64) -> Option<usize> {
    let digits: String = s.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    if n < min || n > max {
        return None;
    }
    usize::try_from(n).ok()
}

/// Seconds, fractions allowed, above 0 and at most a day.
fn parse_secs(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().parse().ok()?;
    if !secs.is_finite() || secs <= 0.0 || secs > MAX_TIMEOUT_SECS {
        return None;
    }
    Some(Duration::from_secs_f64(secs))
}

/// Prints each event as one JSON line on stdout; flushes at the end of each
/// request, before the client is answered.
struct PrintEvents;

impl PrintEvents {
    fn stdout_failed(e: &std::io::Error) -> ! {
        // Nowhere to deliver events any more (e.g. piped into `head`): stop, so
        // clients are not told 2xx for events nobody sees.
        eprintln!("ossa-events: listen: cannot write to stdout: {e}");
        std::process::exit(i32::from(super::EXIT_FAILURE));
    }
}

impl Handler for PrintEvents {
    fn on_event(&self, event: &Event<'_>) {
        let mut line = Vec::with_capacity(512);
        // Writing to a Vec cannot fail, and parsed events carry no serde payloads.
        if json::write_jsonl(event, &mut line).is_ok() {
            // One locked write per event: lines never interleave.
            if let Err(e) = std::io::stdout().lock().write_all(&line) {
                Self::stdout_failed(&e);
            }
        }
    }

    fn on_request_done(&self, _events: usize) {
        if let Err(e) = std::io::stdout().lock().flush() {
            Self::stdout_failed(&e);
        }
    }
}
