//! What sits between a connection's socket (or TLS stream) and hyper.
//!
//! hyper parses and answers the requests; this wrapper makes two promises
//! hyper does not:
//!
//! - **Time.** A client that starts a request head must keep sending (at
//!   most `read_timeout` between reads) and finish it within
//!   `request_timeout`, or it is answered `408` and closed; a connection with
//!   no request in progress is closed after `idle_timeout`; a write that
//!   cannot progress for `write_timeout` fails. While the service reads a body
//!   it applies the body's own timeouts (see `service.rs`).
//! - **Strict framing.** Every request's head and chunked framing is read by a
//!   small lexer before hyper sees a byte of it. A head is held back until it
//!   is complete and valid, so hyper never starts on a head we refuse. What
//!   hyper (and RFC 9112 for an origin server) would tolerate but a proxy in
//!   front of us might read differently is refused: bytes that cannot begin
//!   a request line (refused as they arrive, as hyper does, not held until
//!   the head's deadline), bare-LF line ends (§2.2),
//!   both `Content-Length` and `Transfer-Encoding` (§6.3), conflicting
//!   lengths, a coding other than `chunked` (`400` when `chunked` is not
//!   the last, once, §6.3; `501` for one before it), a chunk-size line without
//!   digits, with control bytes, or not ended by CRLF (§7.1), heads over the
//!   byte or header-count limit (`431`), versions other than 1.0 and 1.1
//!   (`505`). A refused head is answered here (hyper has not seen it); a fault
//!   inside a body is reported to hyper as a read error, which the service
//!   turns into `400`. Lists hyper reads more narrowly than RFC 9110 (it
//!   looks only at the last `Transfer-Encoding` or `Expect` line, whole) are
//!   handed to it as one plain line: `chunked,` is chunked, and
//!   `100-continue, 100-continue` gets its `100 Continue`.
//!
//! Closing lingers: before the socket is closed its write side is shut and
//! unread bytes are drained for a moment, so an error response is not
//! destroyed by a TCP reset when the client is still sending.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::server::{ConnCtl, Shared};
use super::{add, reason};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Longest chunk-size line (with extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 4096;
/// Bytes read and discarded before closing (so a response is not destroyed
/// by a TCP reset), and the longest time spent doing so.
const LINGER_BYTES: usize = 256 * 1024;
const LINGER_TIME: Duration = Duration::from_millis(500);
/// Capacity kept in the hand-over buffer between requests.
const KEEP_CAPACITY: usize = 64 * 1024;
/// Longest request target hyper parses (its `MAX_URI_LEN`); a longer one is
/// answered `414` here (it only arrives when `max_header_bytes` is larger).
const MAX_TARGET: usize = u16::MAX as usize - 1;
/// Longest header name hyper takes (shorter than 64 KiB).
const MAX_HEADER_NAME: usize = u16::MAX as usize;
/// Largest `Content-Length` hyper takes (its `MAX_LEN`); a larger one it
/// answers `431` itself. Over any body limit: refused here with `413`.
const MAX_CONTENT_LENGTH: u64 = u64::MAX - 2;

/// A request the lexer refuses from its head: answered here, then closed.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) status: u16,
    pub(super) reason: &'static str,
}

/// What the lexer found wrong.
#[derive(Debug)]
enum Fault {
    /// In a head: answer with this status and close.
    Head(Refusal),
    /// Inside a chunked body: fail hyper's read (the service answers with
    /// this [`BodyFault`]'s status).
    Body(BodyFault),
}

/// A fault inside a body, carried to the service inside the `io::Error` of
/// hyper's failed read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BodyFault {
    pub(super) status: u16,
    pub(super) reason: &'static str,
}

impl std::fmt::Display for BodyFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for BodyFault {}

fn malformed(reason: &'static str) -> Fault {
    Fault::Body(BodyFault {
        status: 400,
        reason,
    })
}

fn refuse(status: u16, reason: &'static str) -> Fault {
    Fault::Head(Refusal { status, reason })
}

/// The start of a request line, read byte by byte: what cannot begin one
/// (a TLS handshake sent to the plain port, a line of text) is refused with
/// `400` as its byte arrives, as hyper refuses it, rather than held back as
/// an unfinished head until the head's deadline and answered `408`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// Nothing of the line yet.
    Start,
    /// A CR: an empty line before the request line, if an LF follows.
    EmptyLine,
    /// Inside the method (a token, RFC 9112 section 3.1).
    Token,
    /// Past the method's SP: the rest is checked when the head is complete.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between requests (nothing buffered) or inside a head.
    Head,
    /// A `Content-Length` body with this many bytes left.
    Body(u64),
    /// Reading a chunk-size line.
    ChunkSize,
    /// Inside a chunk's data, this many bytes left.
    ChunkData(u64),
    /// After a chunk's data: the CR, then the LF.
    ChunkCr,
    ChunkLf,
    /// Reading the trailer section.
    Trailer,
}

/// The strict reader of request framing (see the module doc).
#[derive(Debug)]
pub(super) struct Lexer {
    state: State,
    /// The head read so far (held back from hyper until complete and valid),
    /// or the chunk-size / trailer line read so far.
    held: Vec<u8>,
    /// Bytes of empty lines skipped before the current request line: they
    /// count toward the head limit, and do not renew the idle deadline,
    /// though hyper never sees them.
    preamble: usize,
    trailer_bytes: usize,
    /// How far the request line's method has been read (see [`Method`]).
    method: Method,
    /// Sum of the chunk sizes announced so far in this body.
    chunked_total: u64,
    max_header_bytes: usize,
    max_headers: usize,
    max_body_bytes: u64,
}

impl Lexer {
    pub(super) fn new(max_header_bytes: usize, max_headers: usize, max_body_bytes: usize) -> Lexer {
        Lexer {
            state: State::Head,
            held: Vec::new(),
            preamble: 0,
            trailer_bytes: 0,
            method: Method::Start,
            chunked_total: 0,
            max_header_bytes,
            max_headers,
            max_body_bytes: max_body_bytes as u64,
        }
    }

    /// Whether no request is in progress (nothing of a next one read yet).
    fn idle(&self) -> bool {
        self.state == State::Head && self.held.is_empty() && self.preamble == 0
    }

    /// Whether no request line has started: idle, or only empty lines read.
    fn between_requests(&self) -> bool {
        self.state == State::Head && self.held.is_empty()
    }

    /// Whether a request head has started and is not complete yet.
    fn in_head(&self) -> bool {
        self.state == State::Head && !self.held.is_empty()
    }

    /// Bytes of body data that may pass unread (inside a `Content-Length`
    /// body or a chunk's data), if that is where the lexer is.
    fn passable(&self) -> Option<u64> {
        match self.state {
            State::Body(n) | State::ChunkData(n) => Some(n),
            _ => None,
        }
    }

    /// `n` bytes (at most [`passable`](Self::passable)) went by unread.
    fn pass(&mut self, n: u64) {
        self.state = match self.state {
            State::Body(left) if left > n => State::Body(left - n),
            State::Body(_) => State::Head,
            State::ChunkData(left) if left > n => State::ChunkData(left - n),
            State::ChunkData(_) => State::ChunkCr,
            other => other,
        };
    }

    /// Reads `data`, appending what hyper may see to `out`.
    fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), Fault> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::Head => {
                    let b = data[i];
                    i += 1;
                    self.held.push(b);
                    // Every byte counts, a line's LF too (a head one byte
                    // over whose last byte was an LF passed).
                    if self.preamble + self.held.len() > self.max_header_bytes {
                        // Still inside the request line: its target is what
                        // is too long (RFC 9112 §3: 414, not 431).
                        if !self.held.contains(&b'\n') {
                            return Err(refuse(414, "request target too long"));
                        }
                        return Err(too_large_head());
                    }
                    if b == b'\n' {
                        self.head_line(out)?;
                    } else {
                        self.method_byte(b)?;
                    }
                }
                State::Body(left) | State::ChunkData(left) => {
                    let take = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(data.len() - i);
                    out.extend_from_slice(&data[i..i + take]);
                    i += take;
                    let left = left - take as u64;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), n) => State::Body(n),
                        (_, 0) => State::ChunkCr,
                        (_, n) => State::ChunkData(n),
                    };
                }
                State::ChunkCr | State::ChunkLf => {
                    let want = if self.state == State::ChunkCr {
                        b'\r'
                    } else {
                        b'\n'
                    };
                    if data[i] != want {
                        return Err(malformed("chunk data not followed by CRLF"));
                    }
                    out.push(want);
                    i += 1;
                    self.state = if want == b'\r' {
                        State::ChunkLf
                    } else {
                        State::ChunkSize
                    };
                }
                State::ChunkSize | State::Trailer => {
                    let b = data[i];
                    i += 1;
                    self.held.push(b);
                    if b == b'\n' {
                        if self.state == State::ChunkSize {
                            self.chunk_size_line(out)?;
                        } else {
                            self.trailer_line(out)?;
                        }
                    } else if self.state == State::ChunkSize && self.held.len() > MAX_CHUNK_LINE {
                        return Err(malformed("chunk size line too long"));
                    } else if self.state == State::Trailer
                        && self.trailer_bytes + self.held.len() > self.max_header_bytes
                    {
                        return Err(malformed("trailer section too large"));
                    }
                }
            }
        }
        Ok(())
    }

    /// A byte of a head other than an LF (line ends are `head_line`'s):
    /// checked while the request line's method is being read.
    fn method_byte(&mut self, b: u8) -> Result<(), Fault> {
        self.method = match (self.method, b) {
            (Method::Done, _) => Method::Done,
            (Method::Start, b'\r') => Method::EmptyLine,
            (Method::Start | Method::Token, b) if is_tchar(b) => Method::Token,
            (Method::Token, b' ') => Method::Done,
            _ => return Err(refuse(400, "malformed request head")),
        };
        Ok(())
    }

    /// A head line ended (the LF is the last held byte).
    fn head_line(&mut self, out: &mut Vec<u8>) -> Result<(), Fault> {
        let n = self.held.len();
        if n < 2 || self.held[n - 2] != b'\r' {
            return Err(refuse(400, "request head lines must end in CRLF"));
        }
        if n == 2 {
            // An empty line before the request line (RFC 9112 section 2.2):
            // skipped, but counted toward the head limit; the idle deadline
            // runs from the first one (see `Guard::read_deadline`).
            self.preamble += n;
            self.held.clear();
            self.method = Method::Start;
            if self.preamble > self.max_header_bytes {
                return Err(too_large_head());
            }
            return Ok(());
        }
        if !self.held.ends_with(b"\r\n\r\n") {
            return Ok(());
        }
        let next = self.head_complete()?;
        out.extend_from_slice(&self.held);
        self.held.clear();
        self.preamble = 0;
        self.method = Method::Start;
        if self.held.capacity() > 4 * 1024 {
            self.held.shrink_to(1024);
        }
        self.state = next;
        Ok(())
    }

    /// The held bytes are a whole head: checks it and says how its body is framed.
    fn head_complete(&mut self) -> Result<State, Fault> {
        let mut slots = vec![httparse::EMPTY_HEADER; self.max_headers];
        let mut req = httparse::Request::new(&mut slots);
        match req.parse(&self.held) {
            Ok(httparse::Status::Complete(n)) if n == self.held.len() => {}
            Err(httparse::Error::TooManyHeaders) => return Err(too_large_head()),
            // A version of the form `HTTP/` DIGIT "." DIGIT (RFC 9112
            // section 2.3) that is not 1.0 or 1.1 is unsupported (`505`,
            // RFC 9110 section 15.6.6); anything else there (`http/1.1`,
            // `HTTP/11`) is a malformed request line (`400`).
            Err(httparse::Error::Version) if version_well_formed(&self.held) => {
                return Err(refuse(505, "only HTTP/1.0 and HTTP/1.1"));
            }
            _ => return Err(refuse(400, "malformed request head")),
        }
        // hyper parses the target into an `http::Uri` and answers `400` (or
        // `414` past its own length cap) itself when that fails: such a
        // request was answered but not counted, nor logged. Refused here, as
        // hyper would, so that every answer is the receiver's own.
        let target = req.path.unwrap_or_default();
        if target.len() > MAX_TARGET {
            return Err(refuse(414, "request target too long"));
        }
        if http::Uri::try_from(target).is_err() {
            return Err(refuse(400, "invalid request target"));
        }
        let http10 = req.version == Some(0);
        let mut length: Option<u64> = None;
        // The transfer codings of every `Transfer-Encoding` line, in order
        // (a list; empty elements do not count, RFC 9110 section 5.6.1):
        // how many, how many are `chunked`, and whether the last one is.
        let mut transfer_encoding = false;
        let (mut codings, mut chunked_codings, mut chunked_last) = (0usize, 0usize, false);
        // Whether hyper reads the body as chunked: it looks only at the last
        // element of the last line, empty or not.
        let mut hyper_chunked = false;
        // `Expect`: whether every line asks only `100-continue` (what the
        // service meets; anything else it answers `417`), and whether hyper,
        // which compares only the last line whole, sends `100 Continue`.
        let (mut expect, mut expect_continue, mut hyper_continue) = (false, true, false);
        for h in req.headers.iter() {
            // hyper answers `431` itself for a name this long (possible only
            // with `max_header_bytes` over 64 KiB): refused here, counted.
            if h.name.len() > MAX_HEADER_NAME {
                return Err(too_large_head());
            }
            if h.name.eq_ignore_ascii_case("content-length") {
                let v = h.value.trim_ascii();
                // Digits past u64 are a length too large, not an invalid
                // one (RFC 9110 §8.6: no parse error from an overflow):
                // over `MAX_CONTENT_LENGTH`, so `413` below.
                let n = std::str::from_utf8(v)
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .map(|s| s.parse::<u64>().unwrap_or(u64::MAX));
                let Some(n) = n else {
                    return Err(refuse(400, "invalid Content-Length"));
                };
                if length.is_some_and(|l| l != n) {
                    return Err(refuse(400, "conflicting Content-Length headers"));
                }
                length = Some(n);
            } else if h.name.eq_ignore_ascii_case("expect") {
                expect = true;
                expect_continue &= continue_only(h.value);
                hyper_continue = h.value.eq_ignore_ascii_case(b"100-continue");
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                transfer_encoding = true;
                hyper_chunked = h
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                for c in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                    if !c.is_empty() {
                        chunked_last = c.eq_ignore_ascii_case(b"chunked");
                        codings += 1;
                        chunked_codings += usize::from(chunked_last);
                    }
                }
            }
        }
        let chunked = if !transfer_encoding {
            false
        } else if http10 {
            // RFC 9112 section 6.1: in HTTP/1.0, faulty framing.
            return Err(refuse(400, "Transfer-Encoding in an HTTP/1.0 request"));
        } else if chunked_last && chunked_codings == 1 {
            if codings > 1 {
                // Section 6.1: a coding not understood.
                return Err(refuse(501, "only Transfer-Encoding: chunked is supported"));
            }
            true
        } else {
            // Section 6.3 (4): without `chunked` last the length is unknown,
            // a 400 the server MUST send; `chunked` twice is never sent
            // (section 6.1).
            return Err(refuse(
                400,
                "Transfer-Encoding does not end in chunked, once",
            ));
        };
        if expect && expect_continue && !hyper_continue {
            // `100-continue, 100-continue`, `100-continue,`, a second line
            // ending so: one expectation the service meets, which hyper
            // would not answer with `100`, the client waiting for it.
            self.held = with_one_line(&self.held, b"expect:", b"Expect:100-continue\r\n");
        }
        match (chunked, length) {
            // Both framings at once is the classic request-smuggling shape.
            (true, Some(_)) => Err(refuse(
                400,
                "both Transfer-Encoding and Content-Length are present",
            )),
            (true, None) => {
                if !hyper_chunked {
                    // `chunked` among empty list elements: one line hyper
                    // reads as chunked (the lines taken out hold `chunked`
                    // and a comma or a line more).
                    self.held = with_one_line(
                        &self.held,
                        b"transfer-encoding:",
                        b"Transfer-Encoding:chunked\r\n",
                    );
                }
                self.chunked_total = 0;
                Ok(State::ChunkSize)
            }
            (false, None | Some(0)) => Ok(State::Head),
            (false, Some(n)) if n > MAX_CONTENT_LENGTH => {
                Err(refuse(413, "request body larger than the limit"))
            }
            (false, Some(n)) => Ok(State::Body(n)),
        }
    }

    /// A chunk-size line ended.
    fn chunk_size_line(&mut self, out: &mut Vec<u8>) -> Result<(), Fault> {
        let n = self.held.len();
        if n < 2 || self.held[n - 2] != b'\r' {
            return Err(malformed("chunk size line not ended by CRLF"));
        }
        let line = &self.held[..n - 2];
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let rest = &line[digits..];
        // HTAB, SP, VCHAR and obs-text (a quoted extension value may hold
        // bytes 0x80 to 0xFF, RFC 9112 §7.1.1): anything but a control byte.
        let visible = |b: &u8| *b == b'\t' || (b' '..=b'~').contains(b) || *b >= 0x80;
        let ext = rest.trim_ascii_start();
        if digits == 0 || !rest.iter().all(visible) || !(ext.is_empty() || ext[0] == b';') {
            return Err(malformed("invalid chunk size line"));
        }
        // Leading zeros are allowed; the value must fit in 64 bits.
        let significant = line[..digits]
            .iter()
            .skip_while(|&&b| b == b'0')
            .collect::<Vec<_>>();
        if significant.len() > 16 {
            return Err(malformed("chunk size too large"));
        }
        let size = significant.iter().fold(0u64, |acc, &&b| {
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => b - b'A' + 10,
            };
            (acc << 4) | u64::from(d)
        });
        // A chunk announced past the body limit is refused before its data
        // arrives (the service answers 413).
        self.chunked_total = self.chunked_total.saturating_add(size);
        if self.chunked_total > self.max_body_bytes {
            return Err(Fault::Body(BodyFault {
                status: 413,
                reason: "request body larger than the limit",
            }));
        }
        out.extend_from_slice(&self.held);
        self.held.clear();
        if size == 0 {
            self.trailer_bytes = 0;
            self.state = State::Trailer;
        } else {
            self.state = State::ChunkData(size);
        }
        Ok(())
    }

    /// A trailer line (or the empty line ending the body) ended.
    fn trailer_line(&mut self, out: &mut Vec<u8>) -> Result<(), Fault> {
        let n = self.held.len();
        // Lines end in CRLF, and a CR never stands alone inside one.
        if n < 2 || self.held[n - 2] != b'\r' || self.held[..n - 2].contains(&b'\r') {
            return Err(malformed("trailer line not ended by CRLF"));
        }
        out.extend_from_slice(&self.held);
        self.trailer_bytes += n;
        self.held.clear();
        if n == 2 {
            self.state = State::Head;
        }
        Ok(())
    }
}

/// `head` (complete and valid) with its header lines named `name` (lower
/// case, with the colon) taken out and `line` added as its last header
/// line: the form hyper reads as the lexer does. The callers make sure the
/// lines taken out are longer than `line`, so what hyper is handed is
/// never longer than what came in.
fn with_one_line(head: &[u8], name: &[u8], line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len());
    let lines = head.strip_suffix(b"\r\n").unwrap_or(head);
    for l in lines.split_inclusive(|&b| b == b'\n') {
        // A method is a token (no colon): only header lines can match.
        if !l
            .get(..name.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
        {
            out.extend_from_slice(l);
        }
    }
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
    out
}

/// Whether an `Expect` line asks `100-continue` and nothing else: one or
/// more members (empty ones do not count, RFC 9110 section 5.6.1), each
/// `100-continue`. A line with no member at all is not.
pub(super) fn continue_only(value: &[u8]) -> bool {
    let mut members = value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|m| !m.is_empty())
        .peekable();
    members.peek().is_some() && members.all(|m| m.eq_ignore_ascii_case(b"100-continue"))
}

/// Whether the version at the end of `head`'s request line has the form
/// `HTTP/` DIGIT "." DIGIT (RFC 9112, section 2.3; `HTTP` case-sensitive).
fn version_well_formed(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    matches!(version, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
        if major.is_ascii_digit() && minor.is_ascii_digit())
}

/// A byte of a token (`tchar`, RFC 9110 section 5.6.2), as httparse reads a method.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn too_large_head() -> Fault {
    refuse(431, "request head too large or too many headers")
}

/// What the wrapper is doing besides passing bytes.
enum Mode {
    Open,
    /// A refused head (or one not received in time) to answer ourselves
    /// once nothing of hyper's is in flight. Counted only when its answer
    /// is written: hyper may close first (an earlier request's answer said
    /// `Connection: close`), and then it was never answered.
    Refused(Refusal),
    /// Answering a refused head ourselves: the response, how much is
    /// written, since when a write has waited for the socket.
    Refusing(Vec<u8>, usize, Option<Instant>),
    /// Shutting the write side, then draining until `.0` (or EOF).
    Lingering(Instant, usize),
    /// Reads end (hyper sees end of stream).
    Eof,
    /// A fault inside a body: every read fails with this.
    Failed(BodyFault),
}

/// A connection's I/O as hyper sees it (see the module doc).
pub(super) struct Guard<S> {
    io: S,
    lexer: Lexer,
    /// Bytes checked and not yet handed to hyper, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    ctl: Arc<ConnCtl>,
    shared: Arc<Shared>,
    mode: Mode,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    /// When the current request's first byte arrived.
    started: Option<Instant>,
    last_read: Instant,
    /// Since when a write has been waiting for the socket.
    write_wait: Option<Instant>,
    /// Whether `poll_shutdown` has shut the write side already.
    shut: bool,
}

impl<S> Guard<S> {
    pub(super) fn new(io: S, ctl: Arc<ConnCtl>, shared: Arc<Shared>) -> Guard<S> {
        let cfg = &shared.config;
        let now = Instant::now();
        Guard {
            io,
            lexer: Lexer::new(cfg.max_header_bytes, cfg.max_headers, cfg.max_body_bytes),
            out: Vec::new(),
            out_pos: 0,
            ctl,
            mode: Mode::Open,
            sleep: Box::pin(tokio::time::sleep_until(now.into())),
            armed: None,
            started: None,
            last_read: now,
            write_wait: None,
            shut: false,
            shared,
        }
    }

    /// Polls the timer for `deadline`: ready when it has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        if self.armed != Some(deadline) {
            self.sleep.as_mut().reset(deadline.into());
            self.armed = Some(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Guard<S> {
    /// Reads once from the socket: body data straight into hyper's `buf`
    /// (nothing to check in it), anything else through the lexer.
    fn poll_fill(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<Fill>> {
        if let Some(left) = self.lexer.passable() {
            let limit = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(buf.remaining());
            if limit > 0 {
                let mut rb = ReadBuf::new(buf.initialize_unfilled_to(limit));
                ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb))?;
                let n = rb.filled().len();
                if n == 0 {
                    return Poll::Ready(Ok(Fill::Eof));
                }
                buf.advance(n);
                self.lexer.pass(n as u64);
                self.read_some(n);
                return Poll::Ready(Ok(Fill::Direct));
            }
        }
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut rb = ReadBuf::uninit(&mut chunk);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb))?;
        let data = rb.filled();
        if data.is_empty() {
            return Poll::Ready(Ok(Fill::Eof));
        }
        let now = self.read_some(data.len());
        if self.lexer.idle() {
            self.started = Some(now);
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        match self.lexer.feed(data, &mut self.out) {
            Ok(()) => {}
            Err(Fault::Head(r)) => {
                // The bytes of earlier, complete requests still go to hyper
                // first; this one is answered once they are.
                self.mode = Mode::Refused(r);
            }
            Err(Fault::Body(fault)) => self.mode = Mode::Failed(fault),
        }
        if self.lexer.idle() {
            self.started = None;
        } else if self.started.is_none() {
            self.started = Some(now);
        }
        if let Some(started) = self.started {
            // The service reads the body against the same deadline the head
            // was read against: one `request_timeout` for the whole request.
            self.ctl.mark_request_started(started);
        }
        Poll::Ready(Ok(Fill::Lexed))
    }

    /// Counts `n` bytes read; the time they arrived.
    fn read_some(&mut self, n: usize) -> Instant {
        let now = Instant::now();
        self.last_read = now;
        // Busy first, then counted (`Release`; stats load `Acquire`): whoever
        // sees the bytes in the stats sees the connection mid-request.
        self.ctl.mark_busy();
        self.shared
            .counters
            .bytes_received
            .fetch_add(n as u64, std::sync::atomic::Ordering::Release);
        now
    }

    /// Counts the refused request and renders its response.
    fn count_refusal(&self, r: &Refusal) -> Vec<u8> {
        let c = &self.shared.counters;
        add(&c.requests, 1);
        add(
            if r.status >= 500 {
                &c.rejected_5xx
            } else {
                &c.rejected_4xx
            },
            1,
        );
        tracing::debug!(status = r.status, reason = r.reason, "request refused");
        format!(
            "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}\n",
            r.status,
            reason(r.status),
            // RFC 9110 §6.6.1: an origin server with a clock sends Date in
            // every 4xx response (as hyper does in the service's).
            httpdate::fmt_http_date(std::time::SystemTime::now()),
            r.reason.len() + 1,
            r.reason
        )
        .into_bytes()
    }

    /// Writes our own refusal once nothing of hyper's is in flight, then lingers.
    fn poll_refusing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.ctl.in_service() || self.write_wait.is_some() {
            // A response to an earlier request is still to be written: ours
            // goes after it. The service's end wakes us.
            self.ctl.wake_on_idle(cx.waker());
            if !self.ctl.in_service() && self.write_wait.is_none() {
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
        if let Mode::Refused(r) = &self.mode {
            let bytes = self.count_refusal(r);
            self.mode = Mode::Refusing(bytes, 0, None);
        }
        loop {
            let Mode::Refusing(bytes, pos, waiting) = &mut self.mode else {
                return Poll::Ready(Ok(()));
            };
            if *pos == bytes.len() {
                let _ = ready!(Pin::new(&mut self.io).poll_flush(cx));
                self.mode = Mode::Lingering(Instant::now() + LINGER_TIME, 0);
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.io).poll_write(cx, &bytes[*pos..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    self.mode = Mode::Eof;
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(n)) => {
                    *pos += n;
                    *waiting = None;
                    add(&self.shared.counters.bytes_sent, n as u64);
                }
                Poll::Pending => {
                    let since = *waiting.get_or_insert_with(Instant::now);
                    let deadline = since + self.shared.config.write_timeout;
                    if self.poll_deadline(cx, deadline).is_ready() {
                        self.mode = Mode::Eof;
                        return Poll::Ready(Ok(()));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Shuts the write side and drains what the client still sends, for at
    /// most [`LINGER_TIME`] and [`LINGER_BYTES`]. Ready when done.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.shut {
            let _ = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
            self.shut = true;
        }
        loop {
            let (until, drained) = match self.mode {
                Mode::Lingering(u, d) => (u, d),
                _ => {
                    let until = Instant::now() + LINGER_TIME;
                    self.mode = Mode::Lingering(until, 0);
                    (until, 0)
                }
            };
            if drained >= LINGER_BYTES {
                break;
            }
            let mut chunk = [0u8; 4096];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                    let n = rb.filled().len();
                    add(&self.shared.counters.bytes_received, n as u64);
                    self.mode = Mode::Lingering(until, drained + n);
                }
                Poll::Ready(_) => break,
                Poll::Pending => {
                    if self.poll_deadline(cx, until).is_ready() {
                        break;
                    }
                    return Poll::Pending;
                }
            }
        }
        self.mode = Mode::Eof;
        Poll::Ready(())
    }

    /// The deadline for the next bytes, and what happens when it passes.
    fn read_deadline(&self) -> Option<(Instant, Expiry)> {
        if self.ctl.in_service() {
            // The service reads the body under its own timeouts.
            return None;
        }
        let cfg = &self.shared.config;
        if self.lexer.between_requests() && self.out_pos == self.out.len() {
            // Empty lines before a request line do not renew the wait: a
            // client sending only those is closed like an idle one.
            let since = if self.lexer.idle() {
                self.ctl.idle_since().unwrap_or(self.last_read)
            } else {
                self.started.unwrap_or(self.last_read)
            };
            return Some((since + cfg.idle_timeout, Expiry::Idle));
        }
        let started = self.started.unwrap_or(self.last_read);
        let deadline = (started + cfg.request_timeout).min(self.last_read + cfg.read_timeout);
        let expiry = if self.lexer.in_head() {
            Expiry::Head
        } else {
            Expiry::Body
        };
        Some((deadline, expiry))
    }
}

/// What one read from the socket did.
enum Fill {
    /// End of stream.
    Eof,
    /// Body bytes went straight into hyper's buffer.
    Direct,
    /// Bytes went through the lexer (some may be waiting in `out`).
    Lexed,
}

/// What a passed read deadline means.
#[derive(Clone, Copy)]
enum Expiry {
    /// No request in progress: close quietly.
    Idle,
    /// Inside a head: answer `408`.
    Head,
    /// Inside a body nobody reads any more: close.
    Body,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_pos < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.out_pos);
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() && this.lexer.idle() {
                    this.out.clear();
                    this.out_pos = 0;
                    if this.out.capacity() > KEEP_CAPACITY {
                        this.out = Vec::new();
                    }
                }
                return Poll::Ready(Ok(()));
            }
            match this.mode {
                Mode::Open => {}
                Mode::Refused(_) | Mode::Refusing(..) => {
                    ready!(this.poll_refusing(cx))?;
                    continue;
                }
                Mode::Lingering(..) => {
                    ready!(this.poll_linger(cx));
                    continue;
                }
                Mode::Eof => return Poll::Ready(Ok(())),
                Mode::Failed(fault) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, fault)));
                }
            }
            match this.poll_fill(cx, buf) {
                Poll::Ready(Ok(Fill::Lexed)) => {
                    this.armed = None;
                    continue;
                }
                Poll::Ready(Ok(Fill::Direct)) => {
                    this.armed = None;
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(Fill::Eof)) => return Poll::Ready(Ok(())),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
            let Some((deadline, expiry)) = this.read_deadline() else {
                return Poll::Pending;
            };
            ready!(this.poll_deadline(cx, deadline));
            this.armed = None;
            match expiry {
                Expiry::Idle => {
                    add(&this.shared.counters.timeouts, 1);
                    this.mode = Mode::Eof;
                }
                Expiry::Head => {
                    add(&this.shared.counters.timeouts, 1);
                    let r = Refusal {
                        status: 408,
                        reason: "request not received in time",
                    };
                    this.mode = Mode::Refused(r);
                }
                Expiry::Body => this.mode = Mode::Eof,
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => this.poll_write_deadline(cx).map_ok(|_| ()),
            r => {
                this.write_wait = None;
                r
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_linger(cx));
        Poll::Ready(Ok(()))
    }
}

impl<S> Guard<S> {
    /// Counts what a write to the socket took, or starts (and checks) its
    /// wait for the socket.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(Ok(n)) => {
                self.write_wait = None;
                add(&self.shared.counters.bytes_sent, n as u64);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.poll_write_deadline(cx),
        }
    }

    /// A write is waiting for the socket: fails it after `write_timeout`.
    fn poll_write_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let since = *self.write_wait.get_or_insert_with(Instant::now);
        let deadline = since + self.shared.config.write_timeout;
        ready!(self.poll_deadline(cx, deadline));
        self.armed = None;
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client did not read the response in time",
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(input: &[u8]) -> Result<Vec<u8>, Fault> {
        let mut l = Lexer::new(16 * 1024, 64, 1 << 20);
        let mut out = Vec::new();
        // One byte at a time: every split point must give the same answer.
        for b in input {
            l.feed(std::slice::from_ref(b), &mut out)?;
        }
        let mut l2 = Lexer::new(16 * 1024, 64, 1 << 20);
        let mut out2 = Vec::new();
        l2.feed(input, &mut out2)?;
        assert_eq!(out, out2);
        Ok(out)
    }

    /// The lexer's answer for `input` fed in pieces cut at `cuts`.
    fn lex_split(input: &[u8], cuts: &[usize]) -> (Result<(), String>, Vec<u8>) {
        let mut l = Lexer::new(1024, 16, 4096);
        let mut out = Vec::new();
        let mut at = 0;
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.sort_unstable();
        points.push(input.len());
        for p in points {
            if let Err(f) = l.feed(&input[at..p], &mut out) {
                return (Err(format!("{f:?}")), out);
            }
            at = p;
        }
        (Ok(()), out)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any bytes, cut anywhere: no panic, and the same verdict and the
        /// same bytes handed on as in one piece. What is handed on is never
        /// more than what came in.
        #[test]
        fn any_input_any_split_same_answer(
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            cuts in proptest::collection::vec(0usize..700, 0..6),
        ) {
            let whole = lex_split(&input, &[]);
            let split = lex_split(&input, &cuts);
            proptest::prop_assert_eq!(&whole, &split);
            proptest::prop_assert!(whole.1.len() <= input.len());
        }

        /// Well-formed requests (a head, then a length or chunked body)
        /// mutated in one byte: same answer whole or split, no panic.
        #[test]
        fn mutated_requests_same_answer(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            chunked in proptest::prelude::any::<bool>(),
            at in 0usize..400,
            to in proptest::prelude::any::<u8>(),
            cuts in proptest::collection::vec(0usize..500, 0..6),
        ) {
            let mut req = if chunked {
                let mut r = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for part in body.chunks(7) {
                    r.extend_from_slice(format!("{:x};e=1\r\n", part.len()).as_bytes());
                    r.extend_from_slice(part);
                    r.extend_from_slice(b"\r\n");
                }
                r.extend_from_slice(b"0\r\nT: 1\r\n\r\n");
                r
            } else {
                let mut r = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                r.extend_from_slice(&body);
                r
            };
            let unmutated = lex_split(&req, &[]);
            proptest::prop_assert_eq!(&unmutated, &(Ok(()), req.clone()));
            let i = at % req.len();
            req[i] = to;
            proptest::prop_assert_eq!(lex_split(&req, &[]), lex_split(&req, &cuts));
        }
    }

    #[test]
    fn valid_requests_pass_unchanged() {
        let reqs: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\"b c\"\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
            b"\r\nPOST / HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
        ];
        for r in reqs {
            let out = lex(r).unwrap();
            let want = r.strip_prefix(b"\r\n").unwrap_or(r);
            assert_eq!(out, want);
        }
    }

    /// Empty list elements do not count (RFC 9110, section 5.6.1): a
    /// `chunked` among them is chunked, and hyper is handed one plain
    /// `Transfer-Encoding` line it reads so; `Expect` likewise. A `Content-Length` hyper
    /// cannot count is `413` here.
    #[test]
    fn lists_hyper_reads_narrowly_are_handed_over_as_one_line() {
        let body = b"2\r\nhi\r\n0\r\n\r\n";
        for te in [
            "transfer-encoding: chunked,\r\n",
            "Transfer-Encoding: chunked\r\nX: 1\r\nTransfer-Encoding:\r\n",
            "TRANSFER-ENCODING: ,,chunked, \r\n",
        ] {
            let req = format!("POST / HTTP/1.1\r\nHost: x\r\n{te}A: b\r\n\r\n");
            let out = lex(&[req.as_bytes(), body].concat()).unwrap();
            let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let head = String::from_utf8_lossy(&out[..head_end]);
            assert!(head.starts_with("POST / HTTP/1.1\r\nHost: x\r\n"), "{head}");
            assert!(
                head.ends_with("A: b\r\nTransfer-Encoding:chunked\r\n\r\n"),
                "{head}"
            );
            assert_eq!(head.matches("ransfer-").count(), 1, "{head}");
            assert_eq!(&out[head_end..], body);
        }
        // `Expect` as a list of `100-continue`: one line hyper answers.
        let req = b"POST / HTTP/1.1\r\nExpect: 100-continue,\r\nexpect: 100-continue\r\nA: b\r\nExpect:100-continue, 100-continue\r\n\r\n";
        assert_eq!(
            lex(req).unwrap(),
            b"POST / HTTP/1.1\r\nA: b\r\nExpect:100-continue\r\n\r\n"
        );
        // Other expectations are left for the service to answer `417`.
        let other = b"POST / HTTP/1.1\r\nExpect: 100-continue, foo\r\n\r\n";
        assert_eq!(lex(other).unwrap(), other);
        // What hyper already reads as chunked passes unchanged.
        let plain = b"POST / HTTP/1.1\r\nTransfer-Encoding: , chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(lex(plain).unwrap(), plain);
        // Past u64 too: a length is a decimal of any size (RFC 9110
        // §8.6), not an invalid one.
        for n in [
            u64::MAX.to_string(),
            (u64::MAX - 1).to_string(),
            "18446744073709551616".to_owned(),
            "9".repeat(40),
        ] {
            let req = format!("POST / HTTP/1.1\r\nContent-Length: {n}\r\n\r\n");
            match lex(req.as_bytes()) {
                Err(Fault::Head(h)) => assert_eq!(h.status, 413),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn heads_are_held_back_until_complete() {
        let mut l = Lexer::new(1024, 8, 1 << 20);
        let mut out = Vec::new();
        l.feed(b"POST / HTTP/1.1\r\nContent-Len", &mut out).unwrap();
        assert!(out.is_empty() && l.in_head());
        l.feed(b"gth: 2\r\n\r\nab", &mut out).unwrap();
        assert_eq!(out, b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nab");
        assert!(l.idle());
    }

    #[test]
    fn refusals_carry_their_status() {
        let status = |r: &[u8]| match lex(r) {
            Err(Fault::Head(h)) => h.status,
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(r)),
        };
        assert_eq!(status(b"POST / HTTP/1.1\nHost: x\r\n\r\n"), 400);
        assert_eq!(status(b"POST / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            501
        );
        let long = format!("POST / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
        assert_eq!(status(long.as_bytes()), 431);
        // A target hyper would refuse to parse into a URI.
        assert_eq!(status(b"POST http:///x HTTP/1.1\r\n\r\n"), 400);
        let mut roomy = Lexer::new(128 * 1024, 8, 1 << 20);
        let target = format!("POST /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_TARGET));
        match roomy.feed(target.as_bytes(), &mut Vec::new()) {
            Err(Fault::Head(h)) => assert_eq!(h.status, 414),
            other => panic!("{other:?}"),
        }
        let mut roomy = Lexer::new(128 * 1024, 8, 1 << 20);
        let name = format!(
            "POST / HTTP/1.1\r\n{}: v\r\n\r\n",
            "n".repeat(MAX_HEADER_NAME + 1)
        );
        match roomy.feed(name.as_bytes(), &mut Vec::new()) {
            Err(Fault::Head(h)) => assert_eq!(h.status, 431),
            other => panic!("{other:?}"),
        }
        let many: String = (0..65).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            status(format!("POST / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            431
        );
    }

    /// What cannot begin a request line is refused at its byte, before any
    /// line end: a TLS ClientHello on the plain port, a line of text, a
    /// method with a control byte, a CR not followed by LF.
    #[test]
    fn bytes_that_cannot_begin_a_request_are_refused_as_they_arrive() {
        for start in [
            &b"\x16\x03\x01\x02\x00\x01"[..],
            b"GARBAGE\r",
            b"POST\x01",
            b" POST",
            b"\r\r",
            b"\r\n\r\nPO(",
        ] {
            let mut l = Lexer::new(16 * 1024, 64, 1 << 20);
            match l.feed(start, &mut Vec::new()) {
                Err(Fault::Head(h)) => assert_eq!(h.status, 400, "{start:?}"),
                other => panic!("{other:?} for {start:?}"),
            }
        }
        // Still possible requests wait for more.
        for start in [&b"GARBAGE"[..], b"\r\nPOST", b"M-SEARCH / HTT", b"\r"] {
            let mut l = Lexer::new(16 * 1024, 64, 1 << 20);
            assert!(l.feed(start, &mut Vec::new()).is_ok(), "{start:?}");
        }
    }

    #[test]
    fn bad_chunk_lines_fail_the_body() {
        let head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        for line in [
            "\r\n",
            ";x\r\n",
            " 3\r\n",
            "x3\r\n",
            "3;x\nQ\r\n",
            "3;a=\x01\r\n",
            "3\n",
            "3 x\r\n",
            "11111111111111111\r\n",
        ] {
            match lex(format!("{head}{line}abc\r\n0\r\n\r\n").as_bytes()) {
                Err(Fault::Body(_)) => {}
                other => panic!("{other:?} for {line:?}"),
            }
        }
        match lex(format!("{head}3\r\nabcX").as_bytes()) {
            Err(Fault::Body(_)) => {}
            other => panic!("{other:?}"),
        }
        match lex(format!("{head}0\r\nX: a\n\r\n").as_bytes()) {
            Err(Fault::Body(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}
