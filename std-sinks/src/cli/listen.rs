//! `ossa-events listen`: a CloudEvents HTTP receiver that prints each valid
//! event as a canonical JSON line.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ossa_events::receiver::{Handler, Receiver, ReceiverConfig, Refusal};
use ossa_events::{Event, format::json};

use super::args::{HelpFlag, count, secs};
use super::progress::note;
use super::schemas::{FETCH_WAIT, SchemaArgs};

/// Receive CloudEvents v1.0 over HTTP and print each valid event as one line of
/// canonical structured JSON on stdout.
///
/// Listens on ADDR (host:port; port 0 picks a free one), over HTTP or, with
/// --tls-cert and --tls-key, HTTPS, and accepts POST or PUT
/// requests on any path, in all three content modes of the HTTP binding, told apart
/// by Content-Type:
///   application/cloudevents+json        structured: one event in the body
///   application/cloudevents-batch+json  batched: a JSON array of events
///   anything else (or none)             binary: attributes in ce-* headers
///                                       (percent-encoded, possibly quoted), the
///                                       body is the data, Content-Type its type
/// A body may be gzip-compressed (Content-Encoding: gzip).
///
/// A request whose events are all valid is answered 202 Accepted after its events
/// were printed (and stdout flushed); if any event of it is invalid the answer is
/// 400 Bad Request with the reason in the body, and none of its events is printed.
/// Other answers: 200 to OPTIONS (the allowed methods, or the CloudEvents
/// webhook handshake), 405 (method other than POST/PUT/OPTIONS), 413 (body over --max-body,
/// refused before it is read), 415 (event format other than JSON, or a
/// Content-Encoding other than gzip), 431 (request head over 16 KiB or 64
/// headers), 408 (request not received in time), 503 with Retry-After: 1 (over
/// --max-connections with no idle connection to close, or over
/// --max-connections-per-peer from one address, or while 16 MiB of printed
/// events wait for a slow or stopped stdout), 417 (an Expect other than
/// 100-continue). These close the connection: 400 for a malformed request
/// (bad framing, a version not HTTP/d.d), 414 (request line over the head
/// limit), 501 (a transfer coding before chunked), 505 (an HTTP version other
/// than 1.0 and 1.1). An OPTIONS request with WebHook-Request-Origin (the
/// CloudEvents webhook validation handshake) is answered 200, granting every
/// origin.
///
/// Hostile clients are cheap: an idle connection costs about 2 KiB, not a
/// thread. A request must keep arriving (--timeout between reads, 3 times that
/// in all); at --max-connections the connection idle the longest is closed
/// to make room, one in the middle of a request never is.
///
/// With --schemas, each event's data is also checked against the JSON Schema of
/// its type (or of its 'dataschema' URI) before the request is accepted: a
/// payload that breaks it gets 400 with the JSON pointer of the bad value and the
/// schema keyword in the body; a schema the registry cannot deliver, 503 with
/// Retry-After: 1.
///
/// At start it raises its soft limit of open files to the hard limit (each
/// connection is a file descriptor), and says so on stderr when it could not.
/// Once bound, prints 'listening on http://HOST:PORT' (the real port) on stderr.
/// Runs until stopped (SIGINT or SIGTERM).
#[derive(Debug, clap::Parser)]
#[command(
    name = "listen",
    verbatim_doc_comment,
    override_usage = "listen --http ADDR [--max-body BYTES] [--max-connections N] [--timeout SECS] [--schemas DIR|URL]\nlisten --http ADDR --tls-cert FILE --tls-key FILE [OPTIONS]",
    after_help = "\
Whole numbers may use '_' between digits (--max-body 4_194_304; not durations).

Exit status: 1 when ADDR cannot be bound or stdout is closed, 2 on bad
arguments or a TLS file that cannot be used; otherwise it runs until SIGINT
or SIGTERM, then stops accepting, closes idle connections, finishes the
requests in progress (for up to 10 s), prints its counts and exits 130 (143
for SIGTERM); a second signal exits at once.

Examples:
  ossa-events listen --http 127.0.0.1:8080
  ossa-events listen --http 0.0.0.0:8080 --max-body 4_194_304 --timeout 30 > events.jsonl
  ossa-events listen --http 127.0.0.1:0 | ossa-events validate
  ossa-events listen --http 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem
  ossa-events listen --http 127.0.0.1:8080 --schemas ./schemas --require-schema"
)]
pub(crate) struct Args {
    /// Address to listen on, e.g. 127.0.0.1:8080 (required)
    #[arg(long, value_name = "ADDR")]
    http: Option<String>,
    /// Largest request body accepted, 1 to 1073741824
    /// [default: 1048576]
    #[arg(
        long,
        value_name = "BYTES",
        verbatim_doc_comment,
        allow_negative_numbers = true,
        value_parser = count::<usize>(1, MAX_BODY_LIMIT, "a number of bytes")
    )]
    max_body: Option<usize>,
    /// Connections open at once, 1 to 100000; at the cap
    /// the one idle the longest is closed for a new one
    /// [default: 10000]
    #[arg(
        long,
        value_name = "N",
        verbatim_doc_comment,
        allow_negative_numbers = true,
        value_parser = count::<usize>(1, MAX_CONNECTIONS_LIMIT, "a number")
    )]
    max_connections: Option<usize>,
    /// Connections open at once from one IP address, 1 to
    /// 100000 (behind a proxy: raise it) [default: 1000]
    #[arg(
        long,
        value_name = "N",
        verbatim_doc_comment,
        allow_negative_numbers = true,
        value_parser = count::<usize>(1, MAX_CONNECTIONS_LIMIT, "a number")
    )]
    max_connections_per_peer: Option<usize>,
    /// Serve HTTPS with this PEM certificate chain (leaf
    /// first); needs --tls-key
    #[arg(long, value_name = "FILE", verbatim_doc_comment, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or
    /// SEC1); needs --tls-cert
    #[arg(long, value_name = "FILE", verbatim_doc_comment, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Seconds a client may stay silent, mid-request or
    /// idle between requests (fractions allowed, at most
    /// 86400); a whole request must arrive within 3 times
    /// this [default: 10]
    #[arg(
        long,
        value_name = "SECS",
        verbatim_doc_comment,
        allow_negative_numbers = true,
        value_parser = secs(MAX_TIMEOUT_SECS)
    )]
    timeout: Option<Duration>,
    #[command(flatten)]
    schemas: SchemaArgs,
    #[command(flatten)]
    pub(super) help: HelpFlag,
}

/// Largest `--max-body` accepted (memory per connection grows with it).
const MAX_BODY_LIMIT: u64 = 1 << 30;
/// Largest `--max-connections` accepted.
const MAX_CONNECTIONS_LIMIT: u64 = 100_000;
/// Raises the soft limit of open files to the hard one: a receiver holds a
/// descriptor per connection, and distributions start processes at 1 024.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open files limit"),
        Err(e) => note!("ossa-events: listen: could not raise the open files limit: {e}"),
    }
}

/// Largest `--timeout` accepted, in seconds (one day).
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// Whether `addr` ends in `:PORT` after a host (a port number up to 65535,
/// read as `ToSocketAddrs` reads it, so a `+` sign is allowed).
fn has_port(addr: &str) -> bool {
    addr.rsplit_once(':')
        .is_some_and(|(host, port)| !host.trim().is_empty() && port.parse::<u16>().is_ok())
}

/// Runs `listen` with its parsed arguments.
pub(crate) fn run(a: Args) -> ExitCode {
    let bad = |msg: &str| super::usage_error(Some("listen"), msg);
    let addr = match a.http {
        // `HOST:PORT` (an IPv6 host in brackets): what is not of that form
        // is a usage error (2); a host that does not resolve or an address
        // that cannot be bound is found when binding (1).
        Some(a) if has_port(&a) => a,
        Some(a) if !a.trim().is_empty() => {
            return bad(&format!(
                "listen: --http needs HOST:PORT, like 127.0.0.1:8080, not '{a}'"
            ));
        }
        Some(_) => return bad("listen: --http needs an address like 127.0.0.1:8080"),
        None => return bad("listen: --http ADDR is required, e.g. --http 127.0.0.1:8080"),
    };
    let schemas = match a.schemas.registry() {
        Ok(r) => r,
        Err(e) => return bad(&format!("listen: {e}")),
    };
    raise_open_files_limit();
    let mut config = ReceiverConfig::new();
    if let Some(n) = a.max_body {
        config = config.max_body_bytes(n);
    }
    if let Some(n) = a.max_connections {
        config = config.max_connections(n);
    }
    if let Some(n) = a.max_connections_per_peer {
        config = config.max_connections_per_peer(n);
    }
    // Read before binding: a certificate that cannot be used is an error
    // at once, not at the first client.
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => match ossa_events::receiver::tls_config_from_pem(cert, key) {
            Ok(t) => Some(t),
            Err(e) => {
                note!("ossa-events: listen: TLS: {e}");
                return ExitCode::from(super::EXIT_USAGE);
            }
        },
        _ => None,
    };
    if let Some(t) = a.timeout {
        config = config
            .read_timeout(t)
            .idle_timeout(t)
            .request_timeout(t.saturating_mul(3))
            .write_timeout(t);
    }

    let receiver = match Receiver::bind(addr.as_str(), config) {
        Ok(r) => match tls.clone() {
            Some(t) => r.tls(t),
            None => r,
        },
        Err(e) => {
            note!("ossa-events: listen: cannot listen on {addr}: {e}");
            return ExitCode::from(super::EXIT_FAILURE);
        }
    };
    match receiver.local_addr() {
        Ok(local) => note!(
            "listening on {}://{local}",
            if tls.is_some() { "https" } else { "http" }
        ),
        Err(e) => {
            note!("ossa-events: listen: {addr}: {e}");
            return ExitCode::from(super::EXIT_FAILURE);
        }
    }
    // SIGINT/SIGTERM: stop accepting, answer the requests being handled, print
    // the counts and exit 130/143; a second signal exits at once.
    let (tx, rx) = super::signals::channel::<i32>(1);
    let first = move |sig| {
        let _ = tx.try_send(sig);
    };
    let stop = super::signals::watch(first, |sig| {
        note!(
            "listen: stopped by {} before requests in progress ended",
            super::signals::name(sig)
        );
    });
    let print = PrintEvents {
        schemas,
        waiting: AtomicUsize::new(0),
    };
    if stop.is_none() {
        receiver.serve_with(print)
    }
    let handle = match receiver.spawn_with(print) {
        Ok(h) => h,
        Err(e) => {
            note!("ossa-events: listen: {addr}: {e}");
            return ExitCode::from(super::EXIT_FAILURE);
        }
    };
    let sig = rx.recv().unwrap_or(signal_hook::consts::SIGTERM);
    let stats = handle.shutdown();
    // No flush of stdout here: each request's lines were flushed before it
    // was answered, and a request still writing into a stdout nobody reads
    // (a paused `| less`) holds its lock: waiting for it kept `listen`
    // from ending on SIGTERM until a second signal.
    note!(
        "listen: stopped by {}: {} requests, {} events accepted",
        super::signals::name(sig),
        stats.requests,
        stats.events
    );
    ExitCode::from(super::signals::exit_code(sig))
}

/// Prints each event as one JSON line on stdout: a request's lines are
/// gathered and written with one locked write (lines of concurrent requests
/// never interleave; one system call per request, not per event), and
/// stdout is flushed, before the client is answered.
struct PrintEvents {
    /// `--schemas`: each event's payload is checked before the request is accepted.
    schemas: Option<ossa_events::schema::SchemaRegistry>,
    /// Bytes of lines waiting for stdout (see [`MAX_WAITING`]).
    waiting: AtomicUsize,
}

/// Bytes of lines that may wait for stdout before new requests are answered
/// 503 with `Retry-After: 1`. Each waiting request holds its lines and its
/// body until stdout takes them, also after its client has given up: with
/// a reader that has stopped (a paused `| less`), a sender that retries
/// made `listen` grow by a request's size each time, without bound (1.1 GB
/// after 400 requests of 1 MB). A reader that keeps up leaves a request's
/// lines waiting for a moment only.
const MAX_WAITING: usize = 16 << 20;

thread_local! {
    /// The lines of the request this thread is handling. The receiver calls
    /// `on_event` for each of a request's events, then `on_request_done`, on
    /// one thread.
    static LINES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Capacity kept for the next request's lines (a larger batch's is freed).
const KEEP_LINES: usize = 1 << 20;

impl PrintEvents {
    fn stdout_failed(e: &std::io::Error) -> ! {
        // Nowhere to deliver events any more (e.g. piped into `head`): stop, so
        // clients are not told 2xx for events nobody sees.
        note!("ossa-events: listen: cannot write to stdout: {e}");
        std::process::exit(i32::from(super::EXIT_FAILURE));
    }
}

impl Handler for PrintEvents {
    fn check(&self, event: &Event<'_>) -> Result<(), Refusal> {
        use ossa_events::schema::SchemaError;
        let waiting = self.waiting.load(Ordering::Relaxed);
        if waiting >= MAX_WAITING {
            return Err(Refusal::unavailable(format!(
                "{waiting} bytes of events wait for stdout to be read"
            )));
        }
        let Some(r) = &self.schemas else {
            return Ok(());
        };
        // On a blocking thread of the receiver: waiting for a schema being
        // fetched holds this request only.
        match r.check_within(event, FETCH_WAIT) {
            Ok(_) => Ok(()),
            Err(e @ SchemaError::Unavailable { .. }) => {
                Err(Refusal::unavailable(format!("event {}: {e}", event.id())))
            }
            Err(e) => Err(Refusal::bad_request(format!(
                "event {}: invalid payload: {e}",
                event.id()
            ))),
        }
    }

    fn on_event(&self, event: &Event<'_>) {
        LINES.with(|lines| {
            let mut lines = lines.borrow_mut();
            // Writing to a Vec cannot fail, and parsed events carry no serde payloads.
            let _ = json::write_jsonl(event, &mut *lines);
        });
    }

    fn on_request_done(&self, _events: usize) {
        LINES.with(|lines| {
            let mut lines = lines.borrow_mut();
            let n = lines.len();
            self.waiting.fetch_add(n, Ordering::Relaxed);
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(&lines).and_then(|()| out.flush()) {
                Self::stdout_failed(&e);
            }
            drop(out);
            self.waiting.fetch_sub(n, Ordering::Relaxed);
            lines.clear();
            if lines.capacity() > KEEP_LINES {
                *lines = Vec::new();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ossa_events::receiver;

    /// The defaults and limits the help states are the library's and the parser's.
    #[test]
    fn help_defaults_match_the_library() {
        let h = super::super::help_of("listen");
        let secs = receiver::DEFAULT_READ_TIMEOUT.as_secs();
        for want in [
            format!("[default: {}]", receiver::DEFAULT_MAX_BODY_BYTES),
            format!("[default: {}]", receiver::DEFAULT_MAX_CONNECTIONS),
            format!("[default: {}]", receiver::DEFAULT_MAX_CONNECTIONS_PER_PEER),
            format!(
                "(for up to {} s)",
                receiver::DEFAULT_SHUTDOWN_TIMEOUT.as_secs()
            ),
            format!("this [default: {secs}]"),
            format!("1 to {MAX_BODY_LIMIT}"),
            format!("1 to {MAX_CONNECTIONS_LIMIT}"),
            format!("{MAX_TIMEOUT_SECS}); a whole request"),
            format!(
                "head over {} KiB or {}",
                receiver::DEFAULT_MAX_HEADER_BYTES / 1024,
                receiver::DEFAULT_MAX_HEADERS
            ),
        ] {
            assert!(h.contains(&want), "help lacks {want:?}:\n{h}");
        }
        assert_eq!(receiver::DEFAULT_IDLE_TIMEOUT.as_secs(), secs);
        assert_eq!(receiver::DEFAULT_WRITE_TIMEOUT.as_secs(), secs);
        assert_eq!(receiver::DEFAULT_REQUEST_TIMEOUT.as_secs(), 3 * secs);
    }
}
