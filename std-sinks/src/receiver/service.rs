//! The hyper service: one request in, one response out.
//!
//! Refusals decided from the head come first (nothing of the body is read,
//! so `413` is sent before a large body is); then the body is read under its
//! timeouts and size limit, decompressed, parsed and validated whole, and
//! only then are its events handed to the handler, on a blocking thread
//! (the handler may write to a pipe or lock a file).

use std::convert::Infallible;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};

use ossa_events_core::parse::http::{ContentMode, Message, content_mode};
use ossa_events_core::parse::json::BatchParser;
use ossa_events_core::{ParseError, Scratch};

use super::add;
use super::guard::{BodyFault, continue_only};
use super::server::{ConnCtl, Shared};
use crate::http_types::{Coding, GunzipError, gunzip};

thread_local! {
    /// The parser's scratch space, kept per blocking thread between requests.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Scratch kept between requests at most (larger is freed after use).
const KEEP_SCRATCH: usize = 4 << 20;

/// A response before it becomes an `http::Response`.
pub(super) struct Reply {
    status: u16,
    body: String,
    allow: bool,
    close: bool,
    retry_after: bool,
    /// A `415` for the request's content coding: `Accept-Encoding` says
    /// which are taken (RFC 9110, section 15.5.16).
    accept_encoding: bool,
    /// The webhook validation handshake's answer: the origin granted.
    allowed_origin: Option<HeaderValue>,
}

impl Reply {
    fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: String::new(),
            allow: false,
            close: false,
            retry_after: false,
            accept_encoding: false,
            allowed_origin: None,
        }
    }

    fn text(status: u16, body: impl Into<String>) -> Reply {
        let mut body = body.into();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        Reply {
            body,
            ..Reply::empty(status)
        }
    }

    fn closing(mut self) -> Reply {
        self.close = true;
        self
    }

    fn into_http(self) -> Response<Full<Bytes>> {
        let text = !self.body.is_empty();
        let mut res = Response::new(Full::new(Bytes::from(self.body)));
        *res.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = res.headers_mut();
        if text {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
        if self.allow {
            h.insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
        }
        if self.close {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.accept_encoding {
            h.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("gzip, identity"),
            );
        }
        if let Some(origin) = self.allowed_origin {
            h.insert(WEBHOOK_ALLOWED_ORIGIN, origin);
            // No rate limit is granted because none is enforced: `*` (a
            // MUST when the sender asked for a rate, a SHOULD otherwise).
            h.insert(WEBHOOK_ALLOWED_RATE, HeaderValue::from_static("*"));
        }
        res
    }
}

/// The methods the receiver answers (the `Allow` of a `405` and of an
/// `OPTIONS` answer): `POST` and `PUT` carry events, `OPTIONS` says so and
/// takes the webhook handshake (RFC 9110, section 10.2.1: a `405`'s `Allow`
/// lists every method the target supports).
const ALLOWED_METHODS: &str = "OPTIONS, POST, PUT";

/// The CloudEvents webhook validation handshake's headers ("HTTP 1.1 Web
/// Hooks for Event Delivery", section 4).
const WEBHOOK_REQUEST_ORIGIN: header::HeaderName =
    header::HeaderName::from_static("webhook-request-origin");
const WEBHOOK_ALLOWED_ORIGIN: header::HeaderName =
    header::HeaderName::from_static("webhook-allowed-origin");
const WEBHOOK_ALLOWED_RATE: header::HeaderName =
    header::HeaderName::from_static("webhook-allowed-rate");

/// The service hyper calls for each request of a connection.
pub(super) async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    ctl: Arc<ConnCtl>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let _in_service = ctl.service();
    let reply = respond(req, &shared, &ctl).await;
    let c = &shared.counters;
    add(&c.requests, 1);
    match reply.status {
        200..=299 => add(&c.accepted, 1),
        400..=499 => add(&c.rejected_4xx, 1),
        500..=599 => add(&c.rejected_5xx, 1),
        _ => {}
    }
    if reply.status >= 400 {
        tracing::debug!(
            status = reply.status,
            reason = reply.body.trim_end(),
            "request refused"
        );
    }
    Ok(reply.into_http())
}

/// Refusals decided from the head alone.
fn inspect(req: &Request<Incoming>, shared: &Shared) -> Result<(ContentMode, Coding), Reply> {
    let cfg = &shared.config;
    let h = req.headers();
    if let Some(why) = host_fault(req.version(), h) {
        return Err(Reply::text(400, why));
    }
    // RFC 9112 section 3.2.4: the asterisk form is only for `OPTIONS`; with
    // any other method the request line is malformed (not a `405`: the
    // method might be allowed, the target is what is wrong).
    if req.uri() == "*" && req.method() != Method::OPTIONS {
        return Err(Reply::text(400, "request target * is only for OPTIONS"));
    }
    if req.method() == Method::OPTIONS {
        // What the server can do for the target (RFC 9110, section 9.3.7),
        // or the webhook handshake; an expectation it cannot meet is a
        // `417` here as anywhere (section 10.1.1).
        if !expectations_met(h) {
            return Err(Reply::text(417, "only Expect: 100-continue is supported"));
        }
        let mut origins = h.get_all(WEBHOOK_REQUEST_ORIGIN).iter();
        return Err(match (origins.next(), origins.next()) {
            (None, _) => Reply {
                allow: true,
                ..Reply::empty(200)
            },
            (Some(origin), None) => webhook_handshake(origin),
            // Section 4.1.1: one DNS name; two lines name two senders, and
            // granting one of them would be a guess.
            (Some(_), Some(_)) => Reply::text(400, "more than one WebHook-Request-Origin header"),
        });
    }
    if req.method() != Method::POST && req.method() != Method::PUT {
        let mut r = Reply::text(405, "only POST and PUT carry events");
        r.allow = true;
        return Err(r);
    }
    if !expectations_met(h) {
        return Err(Reply::text(417, "only Expect: 100-continue is supported"));
    }
    let Some(encoding) = crate::http_types::content_coding(h) else {
        // One coding other than gzip, or a chain of them: not worth supporting.
        let mut r = Reply::text(415, "only Content-Encoding: gzip or identity is supported");
        r.accept_encoding = true;
        return Err(r);
    };
    if req
        .body()
        .size_hint()
        .exact()
        .is_some_and(|n| n > cfg.max_body_bytes as u64)
    {
        return Err(Reply::text(
            413,
            format!("request body larger than {} bytes", cfg.max_body_bytes),
        ));
    }
    let mut types = h.get_all(header::CONTENT_TYPE).iter();
    let mode = match (types.next(), types.next()) {
        (None, _) => content_mode(None),
        (Some(v), None) => match v.to_str() {
            Ok(s) => content_mode(Some(s)),
            Err(_) => Err(ParseError::InvalidHeader),
        },
        (Some(_), Some(_)) => return Err(Reply::text(400, "more than one Content-Type header")),
    };
    match mode {
        Ok(m) => Ok((m, encoding)),
        Err(e) => Err(response_for(&e)),
    }
}

/// The answer to a webhook validation handshake (an `OPTIONS` request with
/// `WebHook-Request-Origin`; CloudEvents "HTTP 1.1 Web Hooks for Event
/// Delivery", section 4.2): `200`, delivery granted to the origin asked
/// for, at any rate, with `POST` (and `PUT`) allowed. A sender such as
/// Azure Event Grid delivers only after this answer.
///
/// The receiver takes events from anyone who can reach it (it has no
/// authentication of its own), so it grants every origin: it echoes the
/// origin asked for (section 4.2.1 allows that or `*`; an empty one gets
/// `*`). A `WebHook-Request-Callback` is not called: the synchronous answer grants
/// already, and calling a URL a request names would let anyone make the
/// receiver send requests where they like.
fn webhook_handshake(origin: &HeaderValue) -> Reply {
    let origin = if origin.as_bytes().trim_ascii().is_empty() {
        HeaderValue::from_static("*")
    } else {
        origin.clone()
    };
    Reply {
        allow: true,
        allowed_origin: Some(origin),
        ..Reply::empty(200)
    }
}

/// Whether every expectation of the request is `100-continue` (or it has
/// none). Field lines of one name are one list (RFC 9110, section 5.3):
/// `Expect: 100-continue` and `Expect: foo` on two lines ask what `Expect:
/// 100-continue, foo` asks, and a member not understood is a `417` (section
/// 10.1.1). A line with no member at all is one too (as it always was).
fn expectations_met(h: &http::HeaderMap) -> bool {
    h.get_all(header::EXPECT)
        .iter()
        .all(|v| continue_only(v.as_bytes()))
}

/// What is wrong with the request's `Host` header, if anything: RFC 9112
/// (section 3.2) has a server answer `400` to an HTTP/1.1 request without
/// one, and to any request with more than one or with a value that is not
/// a host and optional port (`uri-host [ ":" port ]`; empty is allowed).
fn host_fault(version: Version, h: &http::HeaderMap) -> Option<&'static str> {
    let mut hosts = h.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if version == Version::HTTP_11 => Some("HTTP/1.1 request without a Host header"),
        (None, _) => None,
        (Some(_), Some(_)) => Some("more than one Host header"),
        (Some(v), None) if !v.as_bytes().iter().all(|&b| host_byte(b)) => {
            Some("Host header is not a host and port")
        }
        (Some(_), None) => None,
    }
}

/// A byte of `uri-host [ ":" port ]` (RFC 3986: a reg-name's unreserved,
/// percent-encoded and sub-delims bytes, an IP literal's brackets, the
/// port's colon).
fn host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:[]".contains(&b)
}

async fn respond(req: Request<Incoming>, shared: &Arc<Shared>, ctl: &ConnCtl) -> Reply {
    let cfg = &shared.config;
    let (mode, encoding) = match inspect(&req, shared) {
        Ok(x) => x,
        Err(mut r) => {
            // The body was not read: the connection cannot carry another request.
            r.close |= req.body().size_hint().exact() != Some(0);
            return r;
        }
    };
    let (parts, mut body) = req.into_parts();
    // One deadline for the whole request, counted from its first byte (as
    // the guard counts the head's): a head trickled in just under it leaves
    // the body only what is left, not a second `request_timeout`.
    let started = ctl
        .request_started()
        .map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std);
    let deadline = started + cfg.request_timeout;
    let hint = usize::try_from(body.size_hint().lower()).unwrap_or(0);
    let mut buf: Vec<u8> = Vec::with_capacity(hint.min(cfg.max_body_bytes));
    loop {
        let wait = (tokio::time::Instant::now() + cfg.read_timeout).min(deadline);
        match tokio::time::timeout_at(wait, body.frame()).await {
            Err(_) => {
                add(&shared.counters.timeouts, 1);
                return Reply::text(408, "request not received in time").closing();
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                // The innermost cause says what was wrong: the guard's
                // `BodyFault` (a bad chunk line, a chunk past the limit) or
                // hyper's own finding.
                let mut cause: &(dyn std::error::Error + 'static) = &e;
                while let Some(next) = cause.source() {
                    cause = next;
                }
                let fault = cause
                    .downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .and_then(|inner| inner.downcast_ref::<BodyFault>());
                return match fault {
                    Some(f) if f.status == 413 => Reply::text(
                        413,
                        format!("request body larger than {} bytes", cfg.max_body_bytes),
                    ),
                    Some(f) => Reply::text(f.status, format!("malformed request body: {f}")),
                    None => Reply::text(400, format!("malformed request body: {cause}")),
                }
                .closing();
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if data.len() > cfg.max_body_bytes - buf.len().min(cfg.max_body_bytes) {
                        return Reply::text(
                            413,
                            format!("request body larger than {} bytes", cfg.max_body_bytes),
                        )
                        .closing();
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
    let worker = shared.clone();
    let done = tokio::task::spawn_blocking(move || {
        let body = match encoding {
            Coding::Identity => buf,
            Coding::Gzip => match gunzip(&buf, worker.config.max_body_bytes) {
                Ok(b) => b,
                Err(GunzipError::Invalid(e)) => {
                    return Reply::text(400, format!("invalid gzip body: {e}"));
                }
                Err(GunzipError::TooLarge) => {
                    return Reply::text(
                        413,
                        format!(
                            "decompressed request body larger than {} bytes",
                            worker.config.max_body_bytes
                        ),
                    );
                }
            },
        };
        // Decoded strings never outgrow their source (body or headers).
        let need = body.len() + crate::http_types::header_bytes(&parts.headers) + 64;
        SCRATCH.with(|cell| {
            // Reused by this blocking thread's next request (no allocation,
            // no zeroing); a handler that re-enters the receiver gets its own.
            let mut own = Vec::new();
            let mut borrowed = cell.try_borrow_mut();
            let scratch = match borrowed.as_deref_mut() {
                Ok(s) => s,
                Err(_) => &mut own,
            };
            if scratch.len() < need {
                scratch.resize(need, 0);
            }
            let reply = handle_request(mode, &parts.headers, &body, &mut scratch[..need], &worker);
            if scratch.len() > KEEP_SCRATCH {
                *scratch = Vec::new();
            }
            reply
        })
    })
    .await;
    done.unwrap_or_else(|_| Reply::text(500, "event handler failed").closing())
}

fn refused(r: &super::Refusal) -> Reply {
    let mut reply = Reply::text(r.status(), r.reason());
    reply.retry_after = r.status() == 503;
    reply
}

fn response_for(e: &ParseError) -> Reply {
    match e {
        ParseError::UnsupportedFormat => Reply::text(415, e.to_string()),
        ParseError::TooLarge { .. } => Reply::text(413, e.to_string()),
        // The scratch is sized so this cannot happen.
        ParseError::ScratchFull => Reply::text(500, e.to_string()),
        _ => Reply::text(400, e.to_string()),
    }
}

/// Parses and validates the whole request, then hands its events over.
fn handle_request<'a>(
    mode: ContentMode,
    headers: &'a http::HeaderMap,
    body: &'a [u8],
    scratch: &'a mut [u8],
    shared: &Shared,
) -> Reply {
    let handler = &*shared.handler;
    let counters = &shared.counters;
    // `events` is how many the request holds: when the handler panics, all
    // of them count as failed, those it got before the panic too (the
    // client is answered `500`, so it takes none as delivered).
    let run = |events: usize, f: &mut dyn FnMut() -> usize| -> Reply {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(n) => {
                add(&counters.events, n as u64);
                Reply::empty(202)
            }
            Err(_) => {
                add(&counters.events_failed, events as u64);
                tracing::error!(events, "event handler panicked: 500");
                Reply::text(500, "event handler failed").closing()
            }
        }
    };
    match mode {
        ContentMode::Batched => {
            // First pass: validate every element, so that a bad one anywhere
            // rejects the whole batch before anything is handed over.
            let mut batch = match BatchParser::new(body) {
                Ok(b) => b,
                Err(e) => return response_for(&e),
            };
            let mut count = 0usize;
            while let Some(r) = batch.next_event(scratch) {
                // The size limit first: the element past it is not looked
                // at, so a batch too long is `413` whatever that element is
                // (it was checked first, and a schema refusal or an invalid
                // element there answered `503` or `400` instead).
                count += 1;
                if count > shared.config.max_batch_events {
                    return Reply::text(
                        413,
                        format!(
                            "batch has more than {} events",
                            shared.config.max_batch_events
                        ),
                    );
                }
                match r {
                    Err(e) => return response_for(&e),
                    Ok(ev) => {
                        if let Err(r) = handler.check(&ev) {
                            return refused(&r);
                        }
                    }
                }
            }
            // Second pass: hand the (now known valid) events over.
            run(count, &mut || {
                let mut n = 0;
                if let Ok(mut batch) = BatchParser::new(body) {
                    while let Some(Ok(ev)) = batch.next_event(scratch) {
                        handler.on_event(&ev);
                        n += 1;
                    }
                }
                handler.on_request_done(n);
                n
            })
        }
        _ => match crate::http_types::parse(headers, body, &mut Scratch::new(scratch)) {
            Ok(Message::Event(ev)) => match handler.check(&ev) {
                Err(r) => refused(&r),
                Ok(()) => run(1, &mut || {
                    handler.on_event(&ev);
                    handler.on_request_done(1);
                    1
                }),
            },
            Ok(_) => Reply::text(500, "unexpected message kind"),
            Err(e) => response_for(&e),
        },
    }
}
