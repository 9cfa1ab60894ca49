//! The receiver's runtime, accept loop, connection registry and connection
//! tasks.
//!
//! Each connection is a tokio task, not a thread: until its first byte it
//! costs its socket and that task; then hyper serves it through a [`Guard`].
//! The registry knows every open connection and since when it has been idle,
//! so that at the cap the oldest idle one is closed to make room (a slow or
//! busy one never is), and it counts connections per peer address.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use super::guard::Guard;
use super::{Counters, Handler, ReceiverConfig, add, service};

/// Listen backlog: a burst of connections waits in the kernel while the
/// accept loop catches up (Linux caps it at `net.core.somaxconn`).
pub(super) const BACKLOG: u32 = 4096;

/// State shared by the accept loop, the connection tasks and the handle.
pub(super) struct Shared {
    pub(super) config: ReceiverConfig,
    pub(super) handler: Arc<dyn Handler>,
    pub(super) counters: Arc<Counters>,
    registry: Mutex<Registry>,
    epoch: Instant,
    /// `true` once the receiver is stopping.
    stop: watch::Sender<bool>,
    /// Notified when the last connection closes.
    all_closed: Notify,
    #[cfg(feature = "receiver-tls")]
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
}

#[derive(Default)]
struct Registry {
    conns: HashMap<u64, Arc<ConnCtl>>,
    per_peer: HashMap<IpAddr, usize>,
    /// Connections asked to close that have not closed yet.
    evicting: usize,
    next_id: u64,
}

/// At the cap, the oldest idle connections are closed in batches of up to
/// this many (at least one, at most 1/64 of the cap), so that the scan for
/// them is paid once per batch rather than once per new connection.
const EVICT_BATCH: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the accept loop does with a new connection.
enum Admit {
    Serve(Arc<ConnCtl>),
    /// Over the cap with no idle connection to close, or over the peer's cap.
    Refuse(&'static str),
}

impl Shared {
    pub(super) fn new(
        config: ReceiverConfig,
        handler: Arc<dyn Handler>,
        counters: Arc<Counters>,
        #[cfg(feature = "receiver-tls")] tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Shared {
        Shared {
            config,
            handler,
            counters,
            registry: Mutex::new(Registry::default()),
            epoch: Instant::now(),
            stop: watch::Sender::new(false),
            all_closed: Notify::new(),
            #[cfg(feature = "receiver-tls")]
            tls,
        }
    }

    /// Asks the accept loop and every connection to stop.
    pub(super) fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Resolves when no connection is open.
    pub(super) async fn closed(&self) {
        loop {
            let notified = self.all_closed.notified();
            if lock(&self.registry).conns.is_empty() {
                return;
            }
            notified.await;
        }
    }

    fn admit(&self, peer: IpAddr) -> Admit {
        let cfg = &self.config;
        let mut reg = lock(&self.registry);
        if reg.per_peer.get(&peer).copied().unwrap_or(0) >= cfg.max_connections_per_peer {
            return Admit::Refuse("connection cap for this address reached");
        }
        if reg.conns.len() - reg.evicting >= cfg.max_connections {
            let batch = (cfg.max_connections / 64).clamp(1, EVICT_BATCH);
            if evict_oldest_idle(&mut reg, batch, &self.counters) == 0 {
                return Admit::Refuse("connection cap reached, none idle");
            }
        }
        let id = reg.next_id;
        reg.next_id = reg.next_id.wrapping_add(1);
        let ctl = Arc::new(ConnCtl::new(id, peer, self.epoch));
        reg.conns.insert(id, ctl.clone());
        *reg.per_peer.entry(peer).or_insert(0) += 1;
        add(&self.counters.connections, 1);
        Admit::Serve(ctl)
    }

    fn release(&self, ctl: &ConnCtl) {
        let mut reg = lock(&self.registry);
        reg.conns.remove(&ctl.id);
        if ctl.evicting.load(Ordering::Relaxed) {
            reg.evicting -= 1;
        }
        if let Some(n) = reg.per_peer.get_mut(&ctl.peer) {
            *n -= 1;
            if *n == 0 {
                reg.per_peer.remove(&ctl.peer);
            }
        }
        if reg.conns.is_empty() {
            self.all_closed.notify_waiters();
        }
    }
}

/// Asks the (at most) `n` connections idle the longest, and not asked
/// already, to close. Returns how many were asked: 0 when none is idle.
fn evict_oldest_idle(reg: &mut Registry, n: usize, counters: &Counters) -> usize {
    let mut idle: Vec<(u64, &Arc<ConnCtl>)> = reg
        .conns
        .values()
        .filter(|c| !c.evicting.load(Ordering::Relaxed))
        .filter_map(|c| c.idle_ms().map(|ms| (ms, c)))
        .collect();
    let n = n.min(idle.len());
    if n == 0 {
        return 0;
    }
    if n < idle.len() {
        idle.select_nth_unstable_by_key(n - 1, |(ms, _)| *ms);
    }
    for (_, c) in &idle[..n] {
        c.evicting.store(true, Ordering::Relaxed);
        c.evict.notify_one();
    }
    tracing::debug!(
        n,
        "connection cap reached: closing the oldest idle connections"
    );
    reg.evicting += n;
    add(&counters.connections_evicted, n as u64);
    n
}

/// One connection as the registry, its [`Guard`] and its service see it.
pub(super) struct ConnCtl {
    id: u64,
    peer: IpAddr,
    epoch: Instant,
    /// Milliseconds since `epoch` + 1 when it became idle; 0 while a request
    /// is in progress.
    idle_since: AtomicU64,
    /// Milliseconds since `epoch` + 1 when the first byte of the request
    /// being read arrived (0 before any): the guard sets it, the service
    /// counts the body's share of the request deadline from it.
    request_started: AtomicU64,
    /// Milliseconds since `epoch` + 1 when the last service call ended (0
    /// before any).
    service_ended: AtomicU64,
    in_service: AtomicBool,
    evicting: AtomicBool,
    /// Notified to close the connection (at the cap, it is the oldest idle).
    evict: Notify,
    /// Woken when a service call ends (the guard waits for that to answer a
    /// refused pipelined request after the earlier response).
    waker: Mutex<Option<Waker>>,
}

impl ConnCtl {
    fn new(id: u64, peer: IpAddr, epoch: Instant) -> ConnCtl {
        let c = ConnCtl {
            id,
            peer,
            epoch,
            idle_since: AtomicU64::new(0),
            request_started: AtomicU64::new(0),
            service_ended: AtomicU64::new(0),
            in_service: AtomicBool::new(false),
            evicting: AtomicBool::new(false),
            evict: Notify::new(),
            waker: Mutex::new(None),
        };
        c.mark_idle();
        c
    }

    fn idle_ms(&self) -> Option<u64> {
        match self.idle_since.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n - 1),
        }
    }

    /// Since when the connection has had no request in progress.
    pub(super) fn idle_since(&self) -> Option<Instant> {
        self.idle_ms()
            .map(|ms| self.epoch + Duration::from_millis(ms))
    }

    /// `at` in milliseconds since `epoch`, plus 1 (0 stands for none).
    fn stamp(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX - 1)
            + 1
    }

    /// The first byte of a request arrived at `at`.
    pub(super) fn mark_request_started(&self, at: Instant) {
        self.request_started
            .store(self.stamp(at), Ordering::Relaxed);
    }

    /// Since when the request being read counts against its deadline
    /// (rounded down to the millisecond), if one has started: its first
    /// byte's arrival, or the end of the previous request's service call
    /// when that is later. A pipelined request whose bytes came in with the
    /// one before it waited for the server, not the other way round; a slow
    /// handler must not eat its time.
    pub(super) fn request_started(&self) -> Option<Instant> {
        let started = self.request_started.load(Ordering::Relaxed);
        if started == 0 {
            return None;
        }
        let n = started.max(self.service_ended.load(Ordering::Relaxed));
        Some(self.epoch + Duration::from_millis(n - 1))
    }

    /// Bytes of a request arrived.
    pub(super) fn mark_busy(&self) {
        self.idle_since.store(0, Ordering::Relaxed);
    }

    fn mark_idle(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.idle_since.store(ms + 1, Ordering::Relaxed);
    }

    /// Whether the service is handling a request of this connection.
    pub(super) fn in_service(&self) -> bool {
        self.in_service.load(Ordering::Acquire)
    }

    /// Wakes `waker` when the current service call ends.
    pub(super) fn wake_on_idle(&self, waker: &Waker) {
        *lock(&self.waker) = Some(waker.clone());
    }

    /// Marks a service call; it ends when the returned guard drops.
    pub(super) fn service(self: &Arc<Self>) -> InService {
        self.mark_busy();
        self.in_service.store(true, Ordering::Release);
        InService(self.clone())
    }
}

/// A service call in progress (see [`ConnCtl::service`]).
pub(super) struct InService(Arc<ConnCtl>);

impl Drop for InService {
    fn drop(&mut self) {
        let ended = self.0.stamp(Instant::now());
        self.0.service_ended.store(ended, Ordering::Relaxed);
        self.0.mark_idle();
        self.0.in_service.store(false, Ordering::Release);
        if let Some(w) = lock(&self.0.waker).take() {
            w.wake();
        }
    }
}

/// Removes a connection from the registry when its task ends, however.
struct Registered {
    shared: Arc<Shared>,
    ctl: Arc<ConnCtl>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.release(&self.ctl);
    }
}

/// Accepts connections until the receiver stops.
pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut stop = shared.stop.subscribe();
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(5);
                a
            }
            Err(e) => {
                // Out of file descriptors and the like: close an idle
                // connection to free one, wait, retry.
                tracing::warn!(error = %e, ?backoff, "accept failed; retrying");
                evict_oldest_idle(&mut lock(&shared.registry), 1, &shared.counters);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        match shared.admit(peer.ip()) {
            Admit::Serve(ctl) => {
                tokio::spawn(connection(shared.clone(), stream, ctl));
            }
            Admit::Refuse(why) => {
                add(&shared.counters.connections_refused, 1);
                tracing::warn!(%peer, why, "connection refused: 503");
                tokio::spawn(refuse(stream, shared.counters.clone()));
            }
        }
    }
}

/// Answers a connection over a cap with `503` and closes it.
async fn refuse(mut stream: TcpStream, counters: Arc<Counters>) {
    const BODY: &str = "too many connections, retry later\n";
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\nDate: {}\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        // As hyper's responses and the guard's have it (RFC 9110 6.6.1).
        httpdate::fmt_http_date(std::time::SystemTime::now()),
        BODY.len()
    );
    let t = Duration::from_secs(1);
    if let Ok(Ok(())) = tokio::time::timeout(t, stream.write_all(resp.as_bytes())).await {
        add(&counters.bytes_sent, resp.len() as u64);
    }
    let _ = stream.shutdown().await;
    // Read what arrives for a moment, so closing does not reset the
    // connection (which could destroy the 503 before the client reads it).
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        for _ in 0..16 {
            match stream.read(&mut sink).await {
                Ok(n) if n > 0 => add(&counters.bytes_received, n as u64),
                _ => break,
            }
        }
    })
    .await;
}

/// Serves one connection.
async fn connection(shared: Arc<Shared>, stream: TcpStream, ctl: Arc<ConnCtl>) {
    let _registered = Registered {
        shared: shared.clone(),
        ctl: ctl.clone(),
    };
    let _ = stream.set_nodelay(true);
    let mut stop = shared.stop.subscribe();
    // Until its first byte a connection costs its socket and this task.
    let idle = shared.config.idle_timeout;
    // (`peek`, not `readable`: readiness may be reported falsely, and an idle
    // connection must not get hyper's buffers for nothing.)
    let mut first = [0u8; 1];
    tokio::select! {
        r = stream.peek(&mut first) => if !matches!(r, Ok(1..)) { return },
        () = tokio::time::sleep(idle) => {
            add(&shared.counters.timeouts, 1);
            return;
        }
        () = ctl.evict.notified() => return,
        _ = stop.wait_for(|s| *s) => return,
    }
    #[cfg(feature = "receiver-tls")]
    if let Some(acceptor) = shared.tls.clone() {
        let handshake = Box::pin(acceptor.accept(stream));
        // Still idle until the handshake ends: closed at the cap, or when the
        // receiver stops, like a connection waiting for its first byte. A
        // handshake cut off so did not finish: a TLS failure too (one whose
        // client had just given up, its alert not read yet, was otherwise
        // counted or not by a race with the stop).
        let cut = || add(&shared.counters.tls_failures, 1);
        let shaken = tokio::select! {
            r = tokio::time::timeout(shared.config.request_timeout, handshake) => r,
            () = ctl.evict.notified() => return cut(),
            _ = stop.wait_for(|s| *s) => return cut(),
        };
        let tls = match shaken {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                add(&shared.counters.tls_failures, 1);
                tracing::debug!(peer = %ctl.peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                add(&shared.counters.tls_failures, 1);
                add(&shared.counters.timeouts, 1);
                return;
            }
        };
        return Box::pin(serve_http(shared, ctl, tls, stop)).await;
    }
    // Boxed: the waiting task above stays small (a few hundred bytes) while
    // hyper's connection state is only allocated once bytes arrive.
    Box::pin(serve_http(shared, ctl, stream, stop)).await;
}

async fn serve_http<S>(
    shared: Arc<Shared>,
    ctl: Arc<ConnCtl>,
    io: S,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cfg = &shared.config;
    let guard = Guard::new(io, ctl.clone(), shared.clone());
    let (svc_shared, svc_ctl) = (shared.clone(), ctl.clone());
    let svc = hyper::service::service_fn(move |req| {
        service::handle(req, svc_shared.clone(), svc_ctl.clone())
    });
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        // A client may shut its write side once the request is sent (`nc
        // -N`, `printf … | nc`): it still gets its answer. (Without this,
        // hyper dropped a connection whose read ended during the request's
        // handling: the event printed, no answer sent, a retry duplicates.)
        .half_close(true)
        // The guard enforces the head limits and timeouts (and answers 408
        // and 431 itself); hyper's own would only be looser.
        .header_read_timeout(None)
        .max_headers(cfg.max_headers)
        .max_buf_size((cfg.max_header_bytes + 64 * 1024).max(400 * 1024));
    let conn = builder.serve_connection(TokioIo::new(guard), svc);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::trace!(peer = %ctl.peer, error = %e, "connection ended");
                }
                break;
            }
            () = ctl.evict.notified(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = stop.wait_for(|s| *s), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Binds a listener with a deep backlog (as `std` does, with `SO_REUSEADDR`).
/// Must run inside the receiver's runtime.
pub(super) fn listen(addrs: &[SocketAddr]) -> io::Result<TcpListener> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to bind to");
    for addr in addrs {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        };
        let bound = socket.and_then(|s| {
            s.set_reuseaddr(true)?;
            s.bind(*addr)?;
            s.listen(BACKLOG)
        });
        match bound {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(last)
}
