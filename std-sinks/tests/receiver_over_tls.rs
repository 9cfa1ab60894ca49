//! The receiver (and `listen`) over TLS: a certificate made at test time,
//! written as PEM files, loaded with `tls_config_from_pem`, and real rustls
//! handshakes from our own HTTP sink and from clients that should fail.
#![cfg(all(feature = "receiver-tls", feature = "http"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ossa_events::receiver::{self, Receiver, ReceiverConfig};
use ossa_events::sink::{HttpMode, HttpSink};
use ossa_events::{Emitter, Event, EventBuilder, RetryPolicy};

const IO_LIMIT: Duration = Duration::from_secs(5);

/// A certificate for localhost and 127.0.0.1: its PEM text and the paths of
/// its certificate and key files.
struct Pem {
    cert: String,
    cert_path: PathBuf,
    key_path: PathBuf,
}

fn pem_files(name: &str) -> Pem {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("receiver_tls_{name}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, ck.cert.pem()).unwrap();
    std::fs::write(&key_path, ck.signing_key.serialize_pem()).unwrap();
    Pem {
        cert: ck.cert.pem(),
        cert_path,
        key_path,
    }
}

fn tls_receiver(pem: &Pem) -> (receiver::ReceiverHandle, Arc<Mutex<Vec<String>>>) {
    let tls = receiver::tls_config_from_pem(&pem.cert_path, &pem.key_path).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let handle = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())
        .unwrap()
        .tls(tls)
        .spawn(move |ev: &Event<'_>| keep.lock().unwrap().push(ev.id().to_string()))
        .unwrap();
    (handle, seen)
}

fn emitter(url: String, root_pem: Option<&str>, mode: HttpMode) -> Emitter {
    let mut b = HttpSink::builder(url).timeout(IO_LIMIT).mode(mode);
    if let Some(pem) = root_pem {
        b = b.root_certificates_pem(pem);
    }
    Emitter::builder("/agents/tls")
        .sink(b.build().unwrap())
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
}

#[test]
fn events_arrive_over_https_in_every_mode() {
    let pem = pem_files("modes");
    let (rx, seen) = tls_receiver(&pem);
    let port = rx.local_addr().port();
    for (host, mode, n) in [
        ("localhost", HttpMode::Structured, 2),
        ("127.0.0.1", HttpMode::Binary, 2),
        ("localhost", HttpMode::Batched, 3),
    ] {
        let em = emitter(
            format!("https://{host}:{port}/events"),
            Some(&pem.cert),
            mode,
        );
        for i in 0..n {
            let id = format!("{mode:?}-{i}");
            em.emit(EventBuilder::new().ty("dev.example.tick").id(&id))
                .unwrap();
        }
        let report = em.flush().unwrap();
        assert_eq!((report.delivered, report.failed), (n as u64, 0), "{mode:?}");
    }
    let stats = rx.shutdown();
    assert_eq!(stats.events, 7, "{stats:?}");
    assert_eq!(stats.tls_failures, 0, "{stats:?}");
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 7);
    assert!(got.contains(&"Batched-2".to_string()), "{got:?}");
}

#[test]
fn clients_that_do_not_speak_tls_or_do_not_trust_the_certificate_deliver_nothing() {
    let pem = pem_files("refused");
    let (rx, seen) = tls_receiver(&pem);
    let addr = rx.local_addr();

    // Plain HTTP to the TLS port: no HTTP response, the connection closes.
    let mut plain = TcpStream::connect_timeout(&addr, IO_LIMIT).unwrap();
    plain.set_read_timeout(Some(IO_LIMIT)).unwrap();
    let body = r#"{"specversion":"1.0","id":"plain","source":"/s","type":"t"}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // The server may refuse the handshake and close after the first bytes,
    // before the rest is written: the write then fails (EPIPE or a reset),
    // which is the connection closing as it should, not a test failure.
    if let Err(e) = plain.write_all(request.as_bytes()) {
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{e:?}"
        );
    }
    let mut resp = Vec::new();
    let _ = plain.read_to_end(&mut resp);
    assert!(
        !resp.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&resp)
    );

    // A client with the webpki roots does not trust a self-signed certificate.
    let em = emitter(
        format!("https://localhost:{}/events", addr.port()),
        None,
        HttpMode::Structured,
    );
    em.emit(EventBuilder::new().ty("dev.example.tick")).unwrap();
    assert_eq!(em.flush().unwrap().failed, 1);

    let stats = rx.shutdown();
    assert_eq!(stats.events, 0, "{stats:?}");
    assert!(stats.tls_failures >= 2, "{stats:?}");
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn pem_errors_name_the_file_and_the_problem() {
    let a = pem_files("errors_a");
    let b = pem_files("errors_b");
    // A key that belongs to another certificate.
    let err = receiver::tls_config_from_pem(&a.cert_path, &b.key_path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(b.key_path.to_str().unwrap()), "{msg}");
    assert!(msg.contains("does not fit"), "{msg}");
    // A key file given as the certificate: no certificate in it.
    let err = receiver::tls_config_from_pem(&a.key_path, &a.key_path).unwrap_err();
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
    // A certificate file given as the key.
    let err = receiver::tls_config_from_pem(&a.cert_path, &a.cert_path).unwrap_err();
    assert!(
        err.to_string().contains(a.cert_path.to_str().unwrap()),
        "{err}"
    );
    // A file that is not there.
    let err =
        receiver::tls_config_from_pem("/nonexistent/c.pem".as_ref(), &a.key_path).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/c.pem"), "{err}");
}

/// `ossa-events listen --tls-cert --tls-key` on a free loopback port: the
/// child, the port it serves HTTPS on and a reader of its stdout.
#[cfg(feature = "cli")]
fn listen_https(
    pem: &Pem,
) -> (
    std::process::Child,
    String,
    std::io::BufReader<std::process::ChildStdout>,
) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ossa-events"))
        .args(["listen", "--http", "127.0.0.1:0", "--tls-cert"])
        .arg(&pem.cert_path)
        .arg("--tls-key")
        .arg(&pem.key_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on https://")
        .unwrap_or_else(|| panic!("{first:?}"))
        .to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    // The rest of its stderr is read until it ends, so that nothing it
    // writes there meets a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    (child, port, out)
}

/// `ossa-events listen --tls-cert --tls-key`: HTTPS from the command line.
#[cfg(feature = "cli")]
#[test]
fn listen_serves_https_with_pem_files_from_the_command_line() {
    use std::io::BufRead;
    use std::process::Command;
    let pem = pem_files("cli");
    let bin = env!("CARGO_BIN_EXE_ossa-events");
    let (mut child, port, mut out) = listen_https(&pem);
    let em = emitter(
        format!("https://localhost:{port}/events"),
        Some(&pem.cert),
        HttpMode::Batched,
    );
    em.emit(EventBuilder::new().ty("dev.example.tick").id("cli-1"))
        .unwrap();
    em.emit(EventBuilder::new().ty("dev.example.tick").id("cli-2"))
        .unwrap();
    assert_eq!(em.flush().unwrap().delivered, 2);
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        lines.push(l);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines[0].contains(r#""id":"cli-1""#), "{lines:?}");
    assert!(lines[1].contains(r#""id":"cli-2""#), "{lines:?}");

    // A key that does not fit the certificate: exit 2 at start, naming the file.
    let other = pem_files("cli_other");
    let out = Command::new(bin)
        .args(["listen", "--http", "127.0.0.1:0", "--tls-cert"])
        .arg(&pem.cert_path)
        .arg("--tls-key")
        .arg(&other.key_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains(other.key_path.to_str().unwrap()), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
}

/// `emit --ca-cert FILE`: the command line trusts a collector's self-signed
/// certificate (here `listen`'s), which the web's roots do not.
#[cfg(feature = "cli")]
#[test]
fn emit_trusts_a_self_signed_collector_given_with_ca_cert() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let pem = pem_files("emit_ca");
    let (mut listen, port, mut out) = listen_https(&pem);
    let url = format!("https://localhost:{port}/events");
    let input = concat!(
        r#"{"specversion":"1.0","id":"ca-1","source":"/s","type":"t"}"#,
        "\n",
        r#"{"specversion":"1.0","id":"ca-2","source":"/s","type":"t"}"#,
        "\n",
    );
    let emit = |extra: &[&std::ffi::OsStr]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ossa-events"))
            .args(["emit", "--sink", "http", "--deadline", "2", "--url", &url])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };

    // Without it the certificate is not trusted: nothing is delivered.
    let o = emit(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("delivered 0,"), "{err}");
    assert!(err.contains("certificate"), "{err}");

    // With it both events arrive, and they are the first `listen` prints.
    let o = emit(&["--ca-cert".as_ref(), pem.cert_path.as_os_str()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("delivered 2,"), "{err}");
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        lines.push(l);
    }
    let _ = listen.kill();
    let _ = listen.wait();
    assert!(lines[0].contains(r#""id":"ca-1""#), "{lines:?}");
    assert!(lines[1].contains(r#""id":"ca-2""#), "{lines:?}");

    // A file that cannot be read, or holds no certificate (the key), and
    // the option beside a sink that makes no HTTPS request: exit 2, one
    // line, before anything is sent.
    let missing = pem.cert_path.with_file_name("missing.pem");
    for (args, says) in [
        (
            vec!["--ca-cert".as_ref(), missing.as_os_str()],
            missing.to_str().unwrap().to_string(),
        ),
        (
            vec!["--ca-cert".as_ref(), pem.key_path.as_os_str()],
            "no PEM certificate".to_string(),
        ),
    ] {
        let o = emit(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(&says), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_ossa-events"))
        .args(["emit", "--ca-cert"])
        .arg(&pem.cert_path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--ca-cert goes with --sink http or otlp --url"),
        "{err}"
    );
}

/// Whether the server closes `conn` (end of stream or reset) within `within`.
fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
    conn.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn a_stalled_handshake_is_closed_at_the_cap_and_on_shutdown() {
    let pem = pem_files("stalled");
    let tls = receiver::tls_config_from_pem(&pem.cert_path, &pem.key_path).unwrap();
    let config = ReceiverConfig::new()
        .max_connections(1)
        .request_timeout(Duration::from_secs(30));
    let rx = Receiver::bind("127.0.0.1:0", config)
        .unwrap()
        .tls(tls)
        .spawn(|_: &Event<'_>| {})
        .unwrap();
    let addr = rx.local_addr();
    // The first byte of a ClientHello, then nothing: an idle connection,
    // which a new one displaces at the cap.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(&[0x16]).unwrap();
    // Admitted before the next one comes (not a sleep that hopes it was).
    let admitted = common::wait_for(|| rx.stats().connections >= 1, Duration::from_secs(5));
    assert!(admitted, "{:?}", rx.stats());
    let mut next = TcpStream::connect(addr).unwrap();
    assert!(
        closed_within(&mut stalled, Duration::from_secs(3)),
        "a connection stalled in its handshake stayed open at the cap"
    );
    assert_eq!(rx.stats().connections_evicted, 1);
    // Shutting down does not wait for a stalled handshake either.
    next.write_all(&[0x16]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let start = std::time::Instant::now();
    let stats = rx.shutdown();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "shutdown waited {:?} for a stalled handshake",
        start.elapsed()
    );
    assert_eq!(stats.connections, 2);
    assert!(closed_within(&mut next, Duration::from_secs(1)));
}

/// The receiver speaks HTTP/1.1 only: a rustls configuration handed to
/// [`Receiver::tls`] that also offers `h2` in ALPN (as rustls and hyper
/// examples do) must not have a client agree on HTTP/2 (RFC 7301, section
/// 3.2: the protocol selected is the one the server then speaks). Before,
/// an h2 client (curl, Go's and Java's HTTP clients) selected `h2`, sent the
/// HTTP/2 preface and got an HTTP/1.1 `505`.
#[test]
fn a_tls_config_offering_h2_negotiates_http_1_1() {
    use ossa_events::receiver::rustls;
    let pem = pem_files("alpn");
    let mut server =
        (*receiver::tls_config_from_pem(&pem.cert_path, &pem.key_path).unwrap()).clone();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let rx = Receiver::bind("127.0.0.1:0", ReceiverConfig::new())
        .unwrap()
        .tls(Arc::new(server))
        .spawn(move |ev: &Event<'_>| keep.lock().unwrap().push(ev.id().to_string()))
        .unwrap();
    let addr = rx.local_addr();

    let mut roots = rustls::RootCertStore::empty();
    let der = {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(pem.cert.as_bytes()).unwrap()
    };
    roots.add(der).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
    let tcp = TcpStream::connect_timeout(&addr, IO_LIMIT).unwrap();
    tcp.set_read_timeout(Some(IO_LIMIT)).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let body = r#"{"specversion":"1.0","id":"alpn-1","source":"/s","type":"t"}"#;
    write!(
        tls,
        "POST / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/cloudevents+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    tls.flush().unwrap();
    let alpn = tls.conn.alpn_protocol().map(<[u8]>::to_vec);
    assert_ne!(alpn.as_deref(), Some(&b"h2"[..]), "HTTP/2 agreed on");
    let mut resp = Vec::new();
    let _ = tls.read_to_end(&mut resp);
    assert!(
        resp.starts_with(b"HTTP/1.1 202"),
        "{:?}",
        String::from_utf8_lossy(&resp)
    );
    assert_eq!(*seen.lock().unwrap(), ["alpn-1"]);
}
