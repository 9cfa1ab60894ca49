//! A real Kafka-protocol broker for tests: `tansu` with in-memory storage,
//! started on a free loopback port and killed when its guard drops.
//!
//! tansu is found through `OSSA_TANSU`, then
//! `$HOME/.cache/ossa-events-tools/bin/tansu`, then `PATH`; when it is
//! missing the test fails (it does not skip), telling how to install it:
//! `bash scripts/test.sh` builds it there.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The broker accepting connections, a topic being created.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The tansu binary: `OSSA_TANSU`, the tools folder of `scripts/test.sh`, or `PATH`.
pub(crate) fn tansu_path() -> PathBuf {
    if let Some(p) = std::env::var_os("OSSA_TANSU").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "OSSA_TANSU={} is not a file; `bash scripts/test.sh` installs tansu",
            p.display()
        );
        return p;
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = PathBuf::from(home).join(".cache/ossa-events-tools/bin/tansu");
        if p.is_file() {
            return p;
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("tansu");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "the tansu broker was not found (OSSA_TANSU, $HOME/.cache/ossa-events-tools/bin/tansu, \
         PATH): `bash scripts/test.sh` installs it"
    );
}

/// A loopback port nothing listens on (bound, read, closed).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback port nothing listens on, for a broker a test starts only
/// later: below the kernel's ephemeral range, where [`free_port`]'s ports
/// come from, so that another test's broker cannot be given it meanwhile.
/// (Once, another broker took it: the test's producer sent to that one,
/// which then went away with its own test, and the flush timed out.)
///
/// Each call in a process gets a port of its own: tests that run side by
/// side in one test binary share the start below, and two of them were
/// given the same port (both free when looked at), so that a test's "broker
/// never started" could be another test's broker, started there later or
/// restarted there.
pub(crate) fn free_port_for_later() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let (first, span) = (10_000u32, low.saturating_sub(10_000).max(1));
    // A start of its own per process, so that runs side by side differ.
    let start = std::process::id() % span;
    let mut given = GIVEN.lock().unwrap_or_else(PoisonError::into_inner);
    let port = (0..span)
        .filter_map(|i| u16::try_from(first + (start + i) % span).ok())
        .filter(|p| !given.contains(p))
        .find(|&p| TcpListener::bind(("127.0.0.1", p)).is_ok())
        .unwrap_or_else(free_port);
    given.push(port);
    port
}

/// Why a broker did not start.
enum Start {
    /// Another process had its port.
    PortTaken(String),
    /// Anything else.
    Failed(String),
}

/// A running tansu broker; killed when dropped.
pub(crate) struct Tansu {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Tansu {
    /// Starts tansu on a free loopback port and waits until it accepts
    /// connections. A port found free can be taken before tansu binds it
    /// (tests start brokers side by side): then it tries another, 5 in all.
    pub(crate) fn start() -> Self {
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start_on(free_port()) {
                Ok(t) => return t,
                Err(Start::PortTaken(why)) => last = why,
                Err(Start::Failed(why)) => panic!("{why}"),
            }
        }
        panic!("5 ports were taken before tansu could bind them; the last:\n{last}");
    }

    /// Starts tansu on `port` and waits until it accepts connections.
    pub(crate) fn start_on(port: u16) -> Self {
        match Self::try_start_on(port) {
            Ok(t) => t,
            Err(Start::PortTaken(why) | Start::Failed(why)) => panic!("{why}"),
        }
    }

    fn try_start_on(port: u16) -> Result<Self, Start> {
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!(
            "ossa-events-tansu-{}-{port}.log",
            std::process::id()
        ));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(tansu_path())
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            // Both to the log: tansu writes its errors (an address in use)
            // on stdout.
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut t = Tansu { child, port, log };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let end = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                // Another process may be the one listening: ours then
                // exits, unable to bind.
                thread::sleep(Duration::from_millis(100));
                if let Some(st) = t.child.try_wait().unwrap() {
                    return Err(Start::PortTaken(format!(
                        "tansu exited ({st}) though {addr} answered: another process listens \
                         there:\n{}",
                        t.log_text()
                    )));
                }
                return Ok(t);
            }
            if let Some(st) = t.child.try_wait().unwrap() {
                let why = format!("tansu exited ({st}) before listening:\n{}", t.log_text());
                return Err(if why.contains("in use") {
                    Start::PortTaken(why)
                } else {
                    Start::Failed(why)
                });
            }
            if Instant::now() >= end {
                return Err(Start::Failed(format!(
                    "tansu did not listen on {addr} within {START_TIMEOUT:?}:\n{}",
                    t.log_text()
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends the broker `sig` (`-STOP` freezes it, `-CONT` resumes it).
    pub(crate) fn signal(&self, sig: &str) {
        let pid = self.child.id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub(crate) fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What tansu wrote on stderr so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `tansu topic create NAME --partitions N`, within [`START_TIMEOUT`].
    pub(crate) fn create_topic(&self, name: &str, partitions: u32) {
        let mut c = Command::new(tansu_path())
            .args(["topic", "create", name])
            .args(["--broker", &format!("tcp://127.0.0.1:{}", self.port)])
            .args(["--partitions", &partitions.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let st = wait_within(&mut c, START_TIMEOUT, "tansu topic create");
        assert!(st.success(), "tansu topic create {name}: {st}");
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Waits for `c` within `limit`, killing it (and failing) past that.
pub(crate) fn wait_within(c: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            return st;
        }
        if Instant::now() >= end {
            let _ = c.kill();
            let _ = c.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `c` within `limit` (as [`wait_within`]), then reads what is
/// left of its stderr: its exit status and stderr.
pub(crate) fn finish_within(c: &mut Child, limit: Duration, what: &str) -> (ExitStatus, String) {
    use std::io::Read;
    let st = wait_within(c, limit, what);
    let mut err = String::new();
    if let Some(mut e) = c.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    (st, err)
}

/// Sends SIGINT to `c` and waits for it within `limit`: its exit status,
/// how long it took to exit, and its stderr.
pub(crate) fn interrupt(c: &mut Child, limit: Duration) -> (ExitStatus, Duration, String) {
    let ok = Command::new("kill")
        .args(["-INT", &c.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let t = Instant::now();
    let (st, err) = finish_within(c, limit, "the command after SIGINT");
    (st, t.elapsed(), err)
}

/// Runs the `ossa-events` binary `bin` with `args` within `limit` (killed,
/// and failing, past it): its exit code, stdout and stderr.
pub(crate) fn run_cli(bin: &str, args: &[&str], limit: Duration) -> (Option<i32>, String, String) {
    use std::io::Read;
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let read = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let st = wait_within(&mut child, limit, &format!("ossa-events {args:?}"));
    (st.code(), out.join().unwrap(), err.join().unwrap())
}
