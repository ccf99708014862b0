//! TCP input (issue 6) on real loopback sockets: 50 concurrent connections
//! keeping their own order, Debian's rsyslog forwarding RFC 6587
//! octet-counted syslog (and, to a `,tls` input, RFC 5425 over TLS through
//! its openssl driver, which checks ringway's certificate), newline-framing
//! edge cases, the octet-counting fallback after a bad frame header,
//! backpressure through TCP flow control with nothing lost, the connection
//! limit and idle timeout, and the drain at SIGTERM.
//!
//! The rsyslog test runs Debian's `rsyslogd` unpacked (never installed, never
//! a service) by scripts/fetch-rsyslog.sh into target/rsyslog/root, or from
//! `RINGWAY_TEST_RSYSLOG_ROOT`. Without it the test prints "not run: ..." and
//! passes, except under CI, where it fails.

use crate::common::*;
use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

// ---------------------------------------------------------------------------
// Starting and stopping ringway

/// Spawns `ringway run --input tcp:127.0.0.1:0OPTIONS --output OUTPUT ...`
/// and waits for its "listening on" line.
fn start(dir: &TempDir, options: &str, output: &str, extra: &[&str]) -> (Ringway, SocketAddr) {
    start_listening(dir, &format!("tcp:127.0.0.1:0{options}"), output, extra)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream =
        TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to ringway at {addr}: {e}"));
    stream.set_nodelay(true).unwrap();
    stream
}

/// Waits until `output` is exactly `expected` bytes long, then checks it
/// holds exactly `expected`; panics with what did arrive otherwise.
fn wait_for_output(ringway: &mut Ringway, output: &Path, expected: &[u8], context: &str) {
    let arrived = wait_until(Duration::from_secs(30), || {
        file_len(output) >= expected.len() as u64
    });
    if !arrived {
        ringway.assert_running(context);
    }
    let got = fs::read(output).unwrap_or_default();
    assert!(
        arrived,
        "{context}: {} of {} bytes arrived; output so far ends with {:?}",
        got.len(),
        expected.len(),
        String::from_utf8_lossy(&got[got.len().saturating_sub(300)..])
    );
    assert_bytes_identical(expected, &got, context);
}

/// True if the peer closes `stream` (EOF or reset) within `timeout`.
/// ringway never sends anything on a TCP input connection.
fn closed_within(stream: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => panic!(
                "ringway sent {n} bytes on a TCP input connection: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                return false;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading from ringway: {e}"),
        }
    }
}

/// One RFC 6587 octet-counted frame: `MSG-LEN SP MSG`.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = format!("{} ", message.len()).into_bytes();
    out.extend_from_slice(message);
    out
}

// ---------------------------------------------------------------------------
// Many connections

#[test]
fn fifty_concurrent_connections_keep_each_connections_order_and_deliver_every_line_once() {
    const CONNECTIONS: usize = 50;
    const LINES: u64 = 4_000;
    let dir = TempDir::new("tcp-fifty");
    let output = dir.join("out.log");
    let (mut ringway, addr) = start(&dir, "", &file_output(&output), &[]);
    let names: Vec<String> = (0..CONNECTIONS).map(|c| format!("conn{c:02}")).collect();
    let data: Vec<Vec<u8>> = names.iter().map(|n| numbered_lines(n, 0..LINES)).collect();
    let total: u64 = data.iter().map(|d| d.len() as u64).sum();
    // Every connection is open before any sends, so all 50 are concurrent.
    let streams: Vec<TcpStream> = (0..CONNECTIONS).map(|_| connect(addr)).collect();
    let barrier = Barrier::new(CONNECTIONS);
    thread::scope(|scope| {
        for (c, mut stream) in streams.into_iter().enumerate() {
            let bytes = &data[c];
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                // Writes of random sizes split lines anywhere.
                let mut rng = Rng::new(c as u64 + 1);
                let mut at = 0;
                while at < bytes.len() {
                    let n = (1 + rng.below(16 * 1024) as usize).min(bytes.len() - at);
                    stream
                        .write_all(&bytes[at..at + n])
                        .unwrap_or_else(|e| panic!("connection {c}: write: {e}"));
                    at += n;
                }
                stream.shutdown(Shutdown::Write).unwrap();
            });
        }
    });
    let arrived = wait_until(Duration::from_secs(60), || file_len(&output) >= total);
    ringway.assert_running("after the senders finished");
    assert!(
        arrived,
        "{} of {total} bytes arrived within 60 s",
        file_len(&output)
    );
    let summary = stop(ringway, &dir);
    let out = read_output(&output);
    let sources: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&data)
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    assert_interleaving_of(&sources, &out, "50 concurrent connections");
    assert_eq!(
        summary.input(0, "records"),
        CONNECTIONS as u64 * LINES,
        "{summary}"
    );
    assert_eq!(summary.input(0, "bytes"), total, "{summary}");
    assert_eq!(
        summary.input(0, "connections_accepted"),
        CONNECTIONS as u64,
        "{summary}"
    );
    assert_eq!(summary.input(0, "connections_refused"), 0, "{summary}");
    assert_eq!(summary.input(0, "invalid"), 0, "{summary}");
    assert_eq!(summary.input(0, "truncated"), 0, "{summary}");
    assert_eq!(summary.output(0, "records"), CONNECTIONS as u64 * LINES);
}

// ---------------------------------------------------------------------------
// rsyslog as a real octet-counting sender

/// The unpacked rsyslog tree: RINGWAY_TEST_RSYSLOG_ROOT, else
/// target/rsyslog/root (scripts/fetch-rsyslog.sh). Without a working
/// rsyslogd: fails under CI, else prints "not run: ..." and returns None.
fn rsyslog_root() -> Option<PathBuf> {
    let root = std::env::var_os("RINGWAY_TEST_RSYSLOG_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/rsyslog/root"));
    let rsyslogd = root.join("usr/sbin/rsyslogd");
    let why = if !rsyslogd.exists() {
        format!("{} does not exist", rsyslogd.display())
    } else {
        match Command::new(&rsyslogd)
            .arg("-v")
            .env("LD_LIBRARY_PATH", rsyslog_library_path(&root))
            .output()
        {
            Ok(o) if o.status.success() => return Some(root),
            Ok(o) => format!(
                "{} -v failed ({}): {}",
                rsyslogd.display(),
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => format!("{} does not run: {e}", rsyslogd.display()),
        }
    };
    not_run(&format!(
        "Debian's rsyslogd ({why}; scripts/fetch-rsyslog.sh unpacks it into target/rsyslog)"
    ));
    None
}

/// The library directories of the unpacked tree (rsyslog's own libraries
/// that the base system lacks), then any inherited LD_LIBRARY_PATH.
fn rsyslog_library_path(root: &Path) -> String {
    let mut dirs = Vec::new();
    for base in ["usr/lib", "lib"] {
        if let Ok(entries) = fs::read_dir(root.join(base)) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() && path.to_string_lossy().ends_with("-linux-gnu") {
                    dirs.push(p(&path));
                }
            }
        }
    }
    if let Some(inherited) = std::env::var_os("LD_LIBRARY_PATH") {
        dirs.push(inherited.to_string_lossy().into_owned());
    }
    dirs.join(":")
}

/// The directory holding rsyslog's input/output modules (imudp.so, …).
fn rsyslog_module_dir(root: &Path) -> PathBuf {
    for base in ["usr/lib", "lib"] {
        if let Ok(entries) = fs::read_dir(root.join(base)) {
            for entry in entries.flatten() {
                let candidate = entry.path().join("rsyslog");
                if candidate.join("imudp.so").exists() {
                    return candidate;
                }
            }
        }
    }
    panic!("no rsyslog/imudp.so under {}/usr/lib", root.display());
}

/// A running `rsyslogd -n`; killed on drop.
struct Rsyslog {
    child: Option<Child>,
    stderr: PathBuf,
    log: PathBuf,
}

impl Rsyslog {
    fn diagnostics(&self) -> String {
        format!(
            "--- rsyslogd output ---\n{}\n--- rsyslogd's own log (every message it handled) ---\n{}",
            tail(
                &String::from_utf8_lossy(&fs::read(&self.stderr).unwrap_or_default()),
                3000
            ),
            tail(
                &String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()),
                3000
            )
        )
    }

    /// SIGTERM and wait (bounded) for rsyslogd to exit.
    fn stop(&mut self) {
        let mut child = self.child.take().expect("rsyslogd child");
        // SAFETY: kill(2) on a pid we spawned and have not reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while child.try_wait().expect("try_wait").is_none() {
            if start.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("rsyslogd ignored SIGTERM for 20 s");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// rsyslogd in the foreground with its own configuration: imudp on
/// 127.0.0.1:`udp_port` (no imuxsock, no /dev/log, no klog, and its own
/// messages through its rules, not to /dev/log: it touches nothing of the
/// machine's logging), every message logged to a file in
/// `dir` for diagnostics, a 16 MiB UDP receive buffer (the test sends at
/// a pace, but tests run in parallel), and two omfwd actions to ringway with
/// `TCP_Framing="octet-counted"`: app `rwtest` in rsyslog's default
/// (traditional, RFC 3164) forward format, app `rwtest5424` in
/// RSYSLOG_SyslogProtocol23Format (RFC 5424). Control characters are not
/// escaped on receive, so an embedded newline reaches ringway inside a frame.
/// With `tls_ca` (a CA file: the test's self-signed certificate), both
/// actions speak TLS through the openssl driver and check that ringway's
/// certificate is signed by it and names `localhost` (x509/name).
fn spawn_rsyslog(
    root: &Path,
    dir: &TempDir,
    udp_port: u16,
    ringway: SocketAddr,
    tls_ca: Option<&Path>,
) -> Rsyslog {
    let work = dir.subdir("rsyslog-work");
    let log = dir.join("rsyslog-all.log");
    let conf = dir.join("rsyslog.conf");
    let driver = match tls_ca {
        Some(_) => {
            " StreamDriver=\"ossl\" StreamDriverMode=\"1\" \
             StreamDriverAuthMode=\"x509/name\" StreamDriverPermittedPeers=\"localhost\""
        }
        None => "",
    };
    let forward = |app: &str, template: &str| {
        format!(
            "if $programname == '{app}' then action(type=\"omfwd\" target=\"{}\" port=\"{}\" \
             protocol=\"tcp\" TCP_Framing=\"octet-counted\"{driver}{template})\n",
            ringway.ip(),
            ringway.port()
        )
    };
    let ca = tls_ca.map_or(String::new(), |ca| {
        format!(" DefaultNetstreamDriverCAFile=\"{}\"", p(ca))
    });
    let config = format!(
        "global(workDirectory=\"{work}\" parser.escapeControlCharactersOnReceive=\"off\" \
         processInternalMessages=\"on\"{ca})\n\
         main_queue(queue.workerThreads=\"1\")\n\
         module(load=\"imudp\")\n\
         input(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp_port}\" rcvbufSize=\"16m\")\n\
         *.* action(type=\"omfile\" file=\"{log}\")\n\
         {}{}",
        forward("rwtest", ""),
        forward("rwtest5424", " template=\"RSYSLOG_SyslogProtocol23Format\""),
        work = p(&work),
        log = p(&log),
    );
    fs::write(&conf, config).unwrap();
    let stderr = dir.join("rsyslogd.out");
    let child = Command::new(root.join("usr/sbin/rsyslogd"))
        .args(["-n", "-f", &p(&conf), "-i", &p(&dir.join("rsyslogd.pid"))])
        .arg("-M")
        .arg(rsyslog_module_dir(root))
        .env("LD_LIBRARY_PATH", rsyslog_library_path(root))
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stderr).unwrap())
        .stderr(fs::File::create(dir.join("rsyslogd.stderr")).unwrap())
        .spawn()
        .expect("spawn rsyslogd");
    let mut rsyslog = Rsyslog {
        child: Some(child),
        stderr,
        log,
    };
    // Ready once its UDP port is taken.
    let bound = wait_until(Duration::from_secs(20), || {
        let exited = rsyslog
            .child
            .as_mut()
            .unwrap()
            .try_wait()
            .unwrap()
            .is_some();
        exited || UdpSocket::bind(("127.0.0.1", udp_port)).is_err()
    });
    let exited = rsyslog
        .child
        .as_mut()
        .unwrap()
        .try_wait()
        .unwrap()
        .is_some();
    assert!(
        bound && !exited,
        "rsyslogd did not bind 127.0.0.1:{udp_port} (exited: {exited})\n{}\n--- stderr ---\n{}",
        rsyslog.diagnostics(),
        String::from_utf8_lossy(&fs::read(dir.join("rsyslogd.stderr")).unwrap_or_default())
    );
    rsyslog
}

/// One message of the rsyslog test and what ringway must make of it.
struct SyslogCase {
    datagram: Vec<u8>,
    rfc5424: bool,
    host: String,
    procid: String,
    /// The message as ringway writes it (embedded newlines as "#012").
    message: String,
    facility: String,
    severity: &'static str,
    severity_code: u64,
}

fn syslog_case(i: u64) -> SyslogCase {
    const SEVERITIES: [&str; 8] = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    let facility = 16 + i % 8; // local0..local7
    let severity = (i / 8) % 8;
    let pri = facility * 8 + severity;
    let host = format!("rwhost-{}", i % 5);
    let procid = (1000 + i).to_string();
    let mut text = format!("message {i:04} from rsyslog: caf\u{e9} \"quoted\" \\ tab\there");
    if i.is_multiple_of(10) {
        text.push_str("\nits second line");
    }
    let rfc5424 = i % 4 == 3;
    let datagram = if rfc5424 {
        format!(
            "<{pri}>1 2026-11-29T10:{:02}:{:02}.123Z {host} rwtest5424 {procid} ID{i} - {text}",
            (i / 60) % 60,
            i % 60
        )
    } else {
        format!(
            "<{pri}>Nov 29 10:{:02}:{:02} {host} rwtest[{procid}]: {text}",
            (i / 60) % 60,
            i % 60
        )
    };
    SyslogCase {
        datagram: datagram.into_bytes(),
        rfc5424,
        host,
        procid,
        message: text.replace('\n', "#012"),
        facility: format!("local{}", facility - 16),
        severity: SEVERITIES[severity as usize],
        severity_code: severity,
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn rsyslog_forwards_octet_counted_syslog() {
    rsyslog_forwards(false);
}

#[test]
fn rsyslog_forwards_octet_counted_syslog_over_tls() {
    rsyslog_forwards(true);
}

/// Debian's rsyslog forwards 1,000 messages, RFC 3164 and RFC 5424, over
/// two octet-counted connections; with `tls`, to a `,tls` input through its
/// openssl driver, which verifies ringway's certificate.
fn rsyslog_forwards(tls: bool) {
    let Some(root) = rsyslog_root() else {
        return;
    };
    if tls && !rsyslog_module_dir(&root).join("lmnsd_ossl.so").exists() {
        not_run(
            "rsyslog's TLS driver lmnsd_ossl.so (Debian's rsyslog-openssl; scripts/fetch-rsyslog.sh unpacks it)",
        );
        return;
    }
    const MESSAGES: u64 = 1_000;
    let dir = TempDir::new("tcp-rsyslog");
    let output = dir.join("out.ndjson");
    let certificate = match tls {
        true => match crate::certs::make_certificate(&dir, "server") {
            Some(pair) => Some(pair),
            None => return,
        },
        false => None,
    };
    let (mut ringway, addr) = match &certificate {
        Some(pair) => crate::certs::start_tls(&dir, "tcp", ",format=syslog", pair, &output, &[]),
        None => start(&dir, ",format=syslog", &file_output(&output), &[]),
    };
    let udp_port = free_udp_port();
    let ca = certificate.as_ref().map(|(cert, _)| cert.as_path());
    let mut rsyslog = spawn_rsyslog(&root, &dir, udp_port, addr, ca);
    let cases: Vec<SyslogCase> = (0..MESSAGES).map(syslog_case).collect();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (i, case) in cases.iter().enumerate() {
        sender
            .send_to(&case.datagram, ("127.0.0.1", udp_port))
            .unwrap();
        // A pace rsyslog's UDP socket keeps up with.
        if i % 20 == 19 {
            thread::sleep(Duration::from_millis(2));
        }
    }
    let count = |out: &Path| split_lines(&fs::read(out).unwrap_or_default()).len() as u64;
    let arrived = wait_until(Duration::from_secs(30), || count(&output) >= MESSAGES);
    ringway.assert_running("while rsyslog forwarded");
    assert!(
        arrived,
        "{} of {MESSAGES} messages reached ringway's output within 30 s\n{}",
        count(&output),
        rsyslog.diagnostics()
    );
    rsyslog.stop();
    let summary = stop(ringway, &dir);
    let out = read_output(&output);
    let lines = split_lines(&out);
    assert_eq!(lines.len() as u64, MESSAGES, "one line per message");
    // Index the output by the sequence number in the message.
    let mut seen: HashMap<u64, Value> = HashMap::new();
    let mut last_seq: HashMap<bool, u64> = HashMap::new();
    let mut trailing_lf_kept = 0;
    for line in &lines {
        let value: Value = serde_json::from_slice(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(line)));
        let message = value["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message: {value}"));
        let seq: u64 = message
            .strip_prefix("message ")
            .and_then(|m| m.get(..4))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a message ringway made up: {value}"));
        let case = &cases[seq as usize];
        // Each of rsyslog's two forwarding connections sends in order.
        if let Some(previous) = last_seq.insert(case.rfc5424, seq) {
            assert!(
                seq > previous,
                "message {seq} after {previous} on one connection: {value}"
            );
        }
        let context = String::from_utf8_lossy(&case.datagram).into_owned();
        assert_eq!(
            value["app"],
            if case.rfc5424 { "rwtest5424" } else { "rwtest" },
            "{context} → {value}"
        );
        assert_eq!(value["host"], case.host.as_str(), "{context} → {value}");
        assert_eq!(value["procid"], case.procid.as_str(), "{context} → {value}");
        assert_eq!(
            value["facility"],
            case.facility.as_str(),
            "{context} → {value}"
        );
        assert_eq!(value["severity"], case.severity, "{context} → {value}");
        assert_eq!(
            value["severity_code"], case.severity_code,
            "{context} → {value}"
        );
        assert!(value["timestamp"].is_string(), "{context} → {value}");
        if case.rfc5424 {
            assert_eq!(value["msgid"], format!("ID{seq}"), "{context} → {value}");
        }
        // RSYSLOG_SyslogProtocol23Format ends each frame with "\n"; the
        // contract does not say whether that final newline is dropped (as
        // rsyslog's own receiver does) or kept as "#012".
        if case.rfc5424 && message == format!("{}#012", case.message) {
            trailing_lf_kept += 1;
        } else {
            assert_eq!(message, case.message, "{context} → {value}");
        }
        assert!(value.get("parse_error").is_none(), "{context} → {value}");
        assert!(
            seen.insert(seq, value.clone()).is_none(),
            "message {seq} arrived twice"
        );
    }
    println!(
        "RFC 5424 frames from RSYSLOG_SyslogProtocol23Format whose trailing newline \
         ringway kept as #012: {trailing_lf_kept}"
    );
    assert_eq!(summary.input(0, "records"), MESSAGES, "{summary}");
    assert_eq!(summary.input(0, "invalid"), 0, "{summary}");
    assert_eq!(summary.input(0, "truncated"), 0, "{summary}");
    assert_eq!(
        summary.input(0, "connections_accepted"),
        2,
        "one connection per omfwd action: {summary}"
    );
    let handshakes = if tls { 2 } else { 0 };
    assert_eq!(summary.input(0, "tls_handshakes"), handshakes, "{summary}");
}

// ---------------------------------------------------------------------------
// Framing

#[test]
fn newline_framing_edge_cases() {
    let dir = TempDir::new("tcp-newline");
    let output = dir.join("out.log");
    let (mut ringway, addr) = start(&dir, "", &file_output(&output), &["--max-line", "1KiB"]);
    let mut rng = Rng::new(7);
    // Random bytes (NUL, CR, invalid UTF-8, …) but no LF, under --max-line.
    let mut garbage = vec![0u8; 1000];
    rng.fill(&mut garbage);
    garbage.retain(|&b| b != b'\n');
    let long = vec![b'L'; 5000];

    // Connection 1: every case, sent in small writes that split lines.
    let mut sent = Vec::new();
    let mut expected = Vec::new();
    let mut case = |send: &[u8], want: &[u8]| {
        sent.extend_from_slice(send);
        expected.extend_from_slice(want);
    };
    case(b"crlf line\r\n", b"crlf line\r\n");
    case(b"\n", b"\n");
    case(b"\n", b"\n");
    case(b"a lone CR\rinside\n", b"a lone CR\rinside\n");
    let mut long_line = long.clone();
    long_line.push(b'\n');
    let mut cut = long[..1024].to_vec();
    cut.push(b'\n');
    case(&long_line, &cut);
    case(b"after the long line\n", b"after the long line\n");
    let mut garbage_line = garbage.clone();
    garbage_line.push(b'\n');
    case(&garbage_line, &garbage_line);
    case(b"\r\n", b"\r\n");
    case(b"no newline at close", b"no newline at close\n");
    let mut conn = connect(addr);
    for chunk in sent.chunks(333) {
        conn.write_all(chunk).unwrap();
        thread::sleep(Duration::from_millis(1));
    }
    drop(conn);
    wait_for_output(&mut ringway, &output, &expected, "connection 1");

    // Connection 2 starts with digits and a space but no '<': newline framed.
    let mut conn = connect(addr);
    conn.write_all(b"200 OK is not a frame header\nsecond line\n")
        .unwrap();
    drop(conn);
    expected.extend_from_slice(b"200 OK is not a frame header\nsecond line\n");
    wait_for_output(&mut ringway, &output, &expected, "connection 2");

    // Connection 3: only garbage and a final partial line; then a fourth is
    // still served.
    let mut conn = connect(addr);
    conn.write_all(&garbage).unwrap();
    drop(conn);
    expected.extend_from_slice(&garbage);
    expected.push(b'\n');
    wait_for_output(&mut ringway, &output, &expected, "connection 3 (garbage)");
    ringway.assert_running("after the garbage");
    let mut conn = connect(addr);
    conn.write_all(b"the next connection is served\n").unwrap();
    drop(conn);
    expected.extend_from_slice(b"the next connection is served\n");
    wait_for_output(&mut ringway, &output, &expected, "connection 4");

    let summary = stop(ringway, &dir);
    assert_bytes_identical(&expected, &read_output(&output), "newline framing");
    assert_eq!(
        summary.input(0, "records"),
        split_lines(&expected).len() as u64,
        "{summary}"
    );
    assert_eq!(summary.input(0, "truncated"), 1, "{summary}");
    assert_eq!(summary.input(0, "invalid"), 0, "{summary}");
    assert_eq!(summary.input(0, "connections_accepted"), 4, "{summary}");
}

#[test]
fn octet_counting_with_a_bad_frame_header_falls_back_and_keeps_going() {
    let dir = TempDir::new("tcp-octet");
    let output = dir.join("out.log");
    let (mut ringway, addr) = start(&dir, "", &file_output(&output), &["--max-line", "1KiB"]);
    let mut expected = Vec::new();
    let mut send = |bytes: &[u8], want: &[u8], context: &str| {
        let mut conn = connect(addr);
        conn.write_all(bytes).unwrap();
        drop(conn);
        expected.extend_from_slice(want);
        wait_for_output(&mut ringway, &output, &expected, context);
    };

    // Frames, one with an embedded newline, then a header that is not
    // digits + space: the rest is newline framed from that header on, even
    // what looks like a frame header again.
    let mut bytes = frame(b"<13>first frame");
    bytes.extend(frame(b"<13>second\nframe, one record"));
    bytes.extend(frame(b"<13>third frame"));
    bytes.extend_from_slice(b"xx not a header\nnewline framed now\n12 <13>not a frame\n");
    send(
        &bytes,
        b"<13>first frame\n<13>second#012frame, one record\n<13>third frame\n\
          xx not a header\nnewline framed now\n12 <13>not a frame\n",
        "bad header: not digits",
    );

    // A length of 0.
    let mut bytes = frame(b"<14>before zero");
    bytes.extend_from_slice(b"0 <14>zero length\nafter zero\n");
    send(
        &bytes,
        b"<14>before zero\n0 <14>zero length\nafter zero\n",
        "bad header: length 0",
    );

    // A length over 1 GiB.
    let mut bytes = frame(b"<15>before huge");
    bytes.extend_from_slice(b"2000000000 <15>huge length\nafter huge\n");
    send(
        &bytes,
        b"<15>before huge\n2000000000 <15>huge length\nafter huge\n",
        "bad header: length > 1 GiB",
    );

    // A frame longer than --max-line is cut, and the next frame is still
    // found right after it (its tail is not read as a header).
    let mut big = b"<16>".to_vec();
    big.resize(3000, b'F');
    let mut bytes = frame(&big);
    bytes.extend(frame(b"<16>after the big frame"));
    let mut want = big[..1024].to_vec();
    want.extend_from_slice(b"\n<16>after the big frame\n");
    send(&bytes, &want, "frame over --max-line");

    // A header arriving one byte at a time is still detected.
    let mut conn = connect(addr);
    let first = frame(b"<17>slow header");
    for byte in &first[..6] {
        conn.write_all(std::slice::from_ref(byte)).unwrap();
        thread::sleep(Duration::from_millis(30));
    }
    conn.write_all(&first[6..]).unwrap();
    conn.write_all(&frame(b"<17>fast one")).unwrap();
    drop(conn);
    expected.extend_from_slice(b"<17>slow header\n<17>fast one\n");
    wait_for_output(&mut ringway, &output, &expected, "header byte by byte");

    let summary = stop(ringway, &dir);
    assert_bytes_identical(&expected, &read_output(&output), "octet counting");
    assert_eq!(
        summary.input(0, "records"),
        split_lines(&expected).len() as u64,
        "{summary}"
    );
    assert_eq!(
        summary.input(0, "invalid"),
        3,
        "one per connection with a bad header: {summary}"
    );
    assert_eq!(summary.input(0, "truncated"), 1, "{summary}");
}

// ---------------------------------------------------------------------------
// Backpressure

#[test]
fn backpressure_stops_reading_and_loses_nothing() {
    const LINE: usize = 200;
    // More than the kernel's socket buffers and the pipeline hold.
    let lines = lines_past_tcp_buffers(LINE);
    let dir = TempDir::new("tcp-backpressure");
    let fifo = dir.join("out.fifo");
    mkfifo(&fifo);
    let (mut ringway, addr) = start(&dir, "", &file_output(&fifo), SMALL_POOLS);
    let data = Arc::new(padded_lines("bp", 0..lines, LINE));
    let total = data.len() as u64;
    let written = Arc::new(AtomicU64::new(0));
    let mut conn = connect(addr);
    let sender = {
        let data = Arc::clone(&data);
        let written = Arc::clone(&written);
        thread::spawn(move || {
            for chunk in data.chunks(64 * 1024) {
                conn.write_all(chunk).expect("write to ringway");
                written.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
            // Closing the connection ends ringway's last line, if any.
            drop(conn);
        })
    };
    // Nobody reads the FIFO: the sender must stall, not ringway's memory grow.
    let mut last = (Instant::now(), 0u64);
    let stalled = wait_until(Duration::from_secs(30), || {
        let now = written.load(Ordering::SeqCst);
        if now != last.1 {
            last = (Instant::now(), now);
        }
        last.0.elapsed() > Duration::from_secs(2)
    });
    let at_stall = written.load(Ordering::SeqCst);
    assert!(
        stalled,
        "the sender never stopped making progress: {at_stall} of {total} bytes written"
    );
    assert!(
        at_stall < total,
        "the sender wrote everything ({total} bytes) into a stalled pipeline"
    );
    println!("the sender stalled after {at_stall} of {total} bytes");
    ringway.assert_running("while stalled");
    let rss = vm_rss_kib(ringway.pid()).expect("a live process has VmRSS");
    println!("VmRSS while stalled: {rss} KiB");
    assert!(
        rss < 96 * 1024,
        "VmRSS {rss} KiB while stalled (bound 96 MiB)"
    );
    // Time passes on purpose: the sender must make no progress in it.
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        written.load(Ordering::SeqCst),
        at_stall,
        "the sender made progress while nobody read the output"
    );

    let progress = Arc::new(AtomicU64::new(0));
    let reader = attach_fifo_reader(fifo.clone(), Arc::clone(&progress));
    sender
        .join()
        .expect("the sender finished once the output drained");
    assert_eq!(written.load(Ordering::SeqCst), total);
    let drained = wait_until(Duration::from_secs(60), || {
        progress.load(Ordering::SeqCst) >= total
    });
    assert!(
        drained,
        "{} of {total} bytes reached the FIFO",
        progress.load(Ordering::SeqCst)
    );
    let summary = stop(ringway, &dir);
    let received = reader.recv_timeout(TIMEOUT).expect("FIFO reader finished");
    assert_bytes_identical(&data, &received, "through a stalled output");
    assert_eq!(summary.input(0, "records"), lines, "{summary}");
    assert_eq!(summary.input(0, "bytes"), total, "{summary}");
}

// ---------------------------------------------------------------------------
// Connection limit and idle timeout

#[test]
fn connection_limit_and_idle_timeout() {
    // --tcp-max-connections 4: a fifth connection is closed at once.
    let dir = TempDir::new("tcp-limit");
    let output = dir.join("out.log");
    let (mut ringway, addr) = start(
        &dir,
        "",
        &file_output(&output),
        &["--tcp-max-connections", "4"],
    );
    let mut expected = Vec::new();
    let mut held: Vec<TcpStream> = Vec::new();
    for i in 0..4 {
        let mut conn = connect(addr);
        let line = format!("held {i}\n");
        conn.write_all(line.as_bytes()).unwrap();
        held.push(conn);
        expected.extend_from_slice(line.as_bytes());
        // In order, so the output is exactly `expected`.
        wait_for_output(&mut ringway, &output, &expected, "the first four");
    }
    let mut fifth = connect(addr);
    assert!(
        closed_within(&mut fifth, Duration::from_secs(5)),
        "a fifth connection over --tcp-max-connections 4 was not closed"
    );
    // The four stay served.
    for (i, conn) in held.iter_mut().enumerate() {
        let line = format!("held {i} still served\n");
        conn.write_all(line.as_bytes()).unwrap();
        expected.extend_from_slice(line.as_bytes());
        wait_for_output(
            &mut ringway,
            &output,
            &expected,
            "the four after the refusal",
        );
    }
    // Closing one frees its slot (once ringway has seen the close: until
    // then a new connection may still be refused, and is counted).
    drop(held.remove(0));
    let mut refused_again = 0u64;
    let start_time = Instant::now();
    let mut late = loop {
        let mut conn = connect(addr);
        if !closed_within(&mut conn, Duration::from_millis(500)) {
            break conn;
        }
        refused_again += 1;
        assert!(
            start_time.elapsed() < Duration::from_secs(15),
            "no slot freed within 15 s of closing a connection"
        );
    };
    late.write_all(b"a freed slot serves a new connection\n")
        .unwrap();
    expected.extend_from_slice(b"a freed slot serves a new connection\n");
    wait_for_output(&mut ringway, &output, &expected, "the late connection");
    drop(late);
    drop(held);
    let summary = stop(ringway, &dir);
    let refused = summary.input(0, "connections_refused");
    assert_eq!(refused, 1 + refused_again, "{summary}");
    // Whether a refused connection also counts as accepted is not in the
    // contract (the OTLP input counts every accept(2)); either reading is
    // allowed, nothing else.
    let accepted = summary.input(0, "connections_accepted");
    assert!(
        accepted == 5 || accepted == 5 + refused,
        "connections_accepted {accepted}: 5 served connections, {refused} refused: {summary}"
    );
    assert_eq!(summary.input(0, "idle_closed"), 0, "{summary}");

    // --tcp-idle-timeout 1s: an idle connection is closed, a busy one is not.
    let dir = TempDir::new("tcp-idle");
    let output = dir.join("out.log");
    let (mut ringway, addr) = start(
        &dir,
        "",
        &file_output(&output),
        &["--tcp-idle-timeout", "1s"],
    );
    let mut idle = connect(addr);
    idle.write_all(b"then idle\n").unwrap();
    wait_for_output(
        &mut ringway,
        &output,
        b"then idle\n",
        "the idle connection's line",
    );
    let busy_done = Arc::new(AtomicBool::new(false));
    let busy = {
        let mut conn = connect(addr);
        let done = Arc::clone(&busy_done);
        thread::spawn(move || {
            // A line every 250 ms for 4 s: never idle for 1 s.
            for i in 0..16 {
                conn.write_all(format!("busy {i:02}\n").as_bytes())
                    .expect("the busy connection stays open");
                thread::sleep(Duration::from_millis(250));
            }
            let closed = closed_within(&mut conn, Duration::from_millis(1));
            done.store(true, Ordering::SeqCst);
            closed
        })
    };
    let idle_start = Instant::now();
    assert!(
        closed_within(&mut idle, Duration::from_secs(15)),
        "an idle connection was not closed with --tcp-idle-timeout 1s"
    );
    println!("idle connection closed after {:?}", idle_start.elapsed());
    let busy_closed = busy.join().unwrap();
    assert!(busy_done.load(Ordering::SeqCst));
    assert!(
        !busy_closed,
        "a connection sending every 250 ms was closed by --tcp-idle-timeout 1s"
    );
    let mut expected = b"then idle\n".to_vec();
    for i in 0..16 {
        expected.extend_from_slice(format!("busy {i:02}\n").as_bytes());
    }
    wait_for_output(
        &mut ringway,
        &output,
        &expected,
        "the busy connection's lines",
    );
    let summary = stop(ringway, &dir);
    assert_eq!(summary.input(0, "idle_closed"), 1, "{summary}");
    assert_eq!(summary.input(0, "connections_accepted"), 2, "{summary}");
    assert_eq!(summary.input(0, "records"), 17, "{summary}");
}

// ---------------------------------------------------------------------------
// Shutdown

#[test]
fn lines_sent_before_sigterm_arrive() {
    const CONNECTIONS: usize = 4;
    const LINES: u64 = 5_000;
    let dir = TempDir::new("tcp-drain");
    let output = dir.join("out.log");
    let (ringway, addr) = start(&dir, "", &file_output(&output), &[]);
    let names: Vec<String> = (0..CONNECTIONS).map(|c| format!("drain{c}")).collect();
    let data: Vec<Vec<u8>> = names.iter().map(|n| numbered_lines(n, 0..LINES)).collect();
    // The connections stay open: ringway must not wait for their close.
    let mut conns: Vec<TcpStream> = (0..CONNECTIONS).map(|_| connect(addr)).collect();
    for (conn, bytes) in conns.iter_mut().zip(&data) {
        conn.write_all(bytes).unwrap();
    }
    ringway.terminate();
    let finished = ringway.wait(TIMEOUT);
    finished.assert_success();
    drop(conns);
    let summary = read_summary(&dir.join("summary.json"));
    let out = read_output(&output);
    let sources: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&data)
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    assert_interleaving_of(&sources, &out, "sent before SIGTERM");
    assert_eq!(
        summary.input(0, "records"),
        CONNECTIONS as u64 * LINES,
        "{summary}"
    );
    assert_eq!(
        summary.input(0, "connections_accepted"),
        CONNECTIONS as u64,
        "{summary}"
    );
}
