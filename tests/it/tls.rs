//! Syslog over TLS on the TCP input (issue 17, `tcp:ADDR:PORT,tls`) with a
//! real TLS client: `openssl s_client` sending RFC 5425 octet-counted
//! frames and newline-framed lines over TLS 1.3 and TLS 1.2; plaintext and
//! random bytes sent to the TLS port and a stalled handshake, each closed
//! and counted while the port keeps serving good clients; and the start-up
//! refusal of a missing, wrong or mismatched certificate or key.
//!
//! Certificates are made in each test with `openssl req -x509` (see
//! `certs`).

use crate::certs::*;
use crate::common::*;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Starts ringway with one `tcp:127.0.0.1:0,tls` input serving `cert`.
fn start(
    dir: &TempDir,
    cert: &Path,
    key: &Path,
    output: &Path,
    extra: &[&str],
) -> (Ringway, SocketAddr) {
    let pair = (cert.to_path_buf(), key.to_path_buf());
    start_tls(dir, "tcp", "", &pair, output, extra)
}

/// RFC 5425 octet-counted frames (`MSG-LEN SP SYSLOG-MSG`) of `lines`.
fn octet_counted(lines: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in split_lines(lines) {
        out.extend_from_slice(format!("{} ", line.len()).as_bytes());
        out.extend_from_slice(line);
    }
    out
}

/// True if the peer closes `stream` (EOF or reset) within `timeout`;
/// what it sends before (a TLS alert) is read and ignored.
pub(crate) fn closed_within(stream: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
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

fn wait_for_len(ringway: &mut Ringway, output: &Path, len: u64, context: &str) {
    let arrived = wait_until(Duration::from_secs(30), || file_len(output) >= len);
    ringway.assert_running(context);
    assert!(
        arrived,
        "{context}: {} of {len} bytes arrived",
        file_len(output)
    );
}

#[test]
fn s_client_octet_counted_and_newline_framed_over_tls_arrive_once_in_order() {
    const LINES: u64 = 3_000;
    let dir = TempDir::new("tls-s-client");
    let Some((cert, key)) = make_certificate(&dir, "server") else {
        return;
    };
    let output = dir.join("out.log");
    let (mut ringway, addr) = start(&dir, &cert, &key, &output, &[]);
    // RFC 5425 octet counting over TLS 1.3, newline framing over TLS 1.2,
    // both connections open at once.
    let framed = numbered_lines("<13>1 - host app - - - framed", 0..LINES);
    let lined = numbered_lines("lined", 0..LINES);
    std::thread::scope(|scope| {
        scope.spawn(|| s_client_send(addr, "-tls1_3", &octet_counted(&framed)));
        scope.spawn(|| s_client_send(addr, "-tls1_2", &lined));
    });
    let total = (framed.len() + lined.len()) as u64;
    wait_for_len(&mut ringway, &output, total, "after both clients closed");
    let summary = stop(ringway, &dir);
    let out = read_output(&output);
    assert_interleaving_of(
        &[("octet-counted", &framed), ("newline-framed", &lined)],
        &out,
        "two TLS connections",
    );
    assert_eq!(summary.input(0, "records"), 2 * LINES, "{summary}");
    // Bytes are the decrypted stream, frame headers included.
    assert_eq!(
        summary.input(0, "bytes"),
        (octet_counted(&framed).len() + lined.len()) as u64,
        "{summary}"
    );
    assert_eq!(summary.input(0, "connections_accepted"), 2, "{summary}");
    assert_eq!(summary.input(0, "tls_handshakes"), 2, "{summary}");
    for key in [
        "invalid",
        "truncated",
        "tls_handshake_timeouts",
        "tls_handshake_errors",
        "tls_plaintext",
        "tls_bad_records",
    ] {
        assert_eq!(summary.input(0, key), 0, "{key}: {summary}");
    }
}

#[test]
fn plaintext_and_random_bytes_on_a_tls_port_are_counted_and_good_clients_still_get_through() {
    let dir = TempDir::new("tls-bad-input");
    let Some((cert, key)) = make_certificate(&dir, "server") else {
        return;
    };
    let output = dir.join("out.log");
    let (mut ringway, _) = start(&dir, &cert, &key, &output, &["--metrics", "127.0.0.1:0"]);
    let metrics = metrics_address(&mut ringway);
    // (The metrics line says "listening on" too: the input's own line.)
    let addr = input_addr(&mut ringway, "tcp:127.0.0.1:0,tls");
    let mut expected = Vec::new();
    let good = |round: u64, expected: &mut Vec<u8>| {
        let lines = numbered_lines(&format!("good{round}"), 0..100);
        s_client_send(addr, "-tls1_3", &lines);
        expected.extend_from_slice(&lines);
    };
    good(0, &mut expected);

    // A plaintext syslog sender on the TLS port.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .write_all(b"<13>1 2024-01-01T00:00:00Z host app - - - plaintext\n")
        .unwrap();
    assert!(
        closed_within(&mut plain, Duration::from_secs(10)),
        "a plaintext connection was not closed"
    );
    good(1, &mut expected);

    // Random bytes (seeded), which are neither TLS nor text.
    let mut random = vec![0u8; 4096];
    Rng::new(17).fill(&mut random);
    assert!(
        random[0] != 0x16 && !random[..16].iter().all(|b| b.is_ascii_graphic()),
        "the seed should give bytes that are neither a TLS record nor text"
    );
    let mut garbage = TcpStream::connect(addr).unwrap();
    // The server may close while this is still being sent.
    let _ = garbage.write_all(&random);
    assert!(
        closed_within(&mut garbage, Duration::from_secs(10)),
        "a connection sending random bytes was not closed"
    );
    // A record header that claims a handshake, then garbage: rustls
    // itself refuses it.
    let mut fake = TcpStream::connect(addr).unwrap();
    let mut record = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    record.extend_from_slice(&random[..0x40]);
    let _ = fake.write_all(&record);
    assert!(
        closed_within(&mut fake, Duration::from_secs(10)),
        "a connection sending a garbage handshake record was not closed"
    );
    good(2, &mut expected);

    wait_for_len(
        &mut ringway,
        &output,
        expected.len() as u64,
        "after the good clients",
    );
    let closed = metric_sum(metrics, "ringway_input_tls_closed_total");
    let summary = stop(ringway, &dir);
    assert_bytes_identical(&expected, &read_output(&output), "the good clients' lines");
    assert_eq!(summary.input(0, "tls_plaintext"), 1, "{summary}");
    assert_eq!(summary.input(0, "tls_handshakes"), 3, "{summary}");
    assert_eq!(summary.input(0, "connections_accepted"), 6, "{summary}");
    let refused = summary.input(0, "tls_bad_records") + summary.input(0, "tls_handshake_errors");
    assert_eq!(
        summary.input(0, "tls_bad_records"),
        2,
        "random bytes and the garbage record are bad records: {summary}"
    );
    assert_eq!(
        closed,
        Some(1 + refused),
        "/metrics agrees with the summary"
    );
    assert_eq!(summary.input(0, "records"), 300, "{summary}");
    let stderr = read_stderr(&dir);
    assert!(
        stderr.contains(
            "input 'tcp:127.0.0.1:0,tls': plaintext sent to a TLS port, connection closed (1 so far)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("a bad TLS record, connection closed (1 so far)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("a bad TLS record, connection closed (2 so far)"),
        "{stderr}"
    );
}

#[test]
fn a_stalled_handshake_is_closed_after_the_handshake_timeout_and_counted() {
    let dir = TempDir::new("tls-stalled");
    let Some((cert, key)) = make_certificate(&dir, "server") else {
        return;
    };
    let output = dir.join("out.log");
    let (mut ringway, addr) = start(
        &dir,
        &cert,
        &key,
        &output,
        &["--tls-handshake-timeout", "600ms"],
    );
    let started = Instant::now();
    // One client says nothing; one sends the first bytes of a ClientHello
    // record and stalls.
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut partial = TcpStream::connect(addr).unwrap();
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    // Meanwhile a good client gets through.
    let lines = numbered_lines("meanwhile", 0..50);
    s_client_send(addr, "-tls1_3", &lines);
    for (name, stream) in [("silent", &mut silent), ("partial", &mut partial)] {
        assert!(
            closed_within(stream, Duration::from_secs(10)),
            "the {name} handshake was not closed"
        );
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500),
        "closed after {took:?}, before the 600ms timeout"
    );
    wait_for_len(
        &mut ringway,
        &output,
        lines.len() as u64,
        "after the good client",
    );
    let summary = stop(ringway, &dir);
    assert_bytes_identical(&lines, &read_output(&output), "the good client's lines");
    assert_eq!(summary.input(0, "tls_handshake_timeouts"), 2, "{summary}");
    assert_eq!(summary.input(0, "tls_handshakes"), 1, "{summary}");
    let stderr = read_stderr(&dir);
    assert!(
        stderr.contains(
            "a TLS handshake did not finish within --tls-handshake-timeout 600ms, connection closed (2 so far)"
        ),
        "{stderr}"
    );
}

/// An `openssl s_client` connection to `addr` that stays open (its input
/// is not closed), having sent `lines`.
fn open_s_client(addr: SocketAddr, lines: &[u8]) -> std::process::Child {
    let mut client = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-tls1_3"])
        .args(["-quiet", "-nocommands", "-servername", "localhost"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openssl s_client");
    let stdin = client.stdin.as_mut().unwrap();
    stdin.write_all(lines).unwrap();
    stdin.flush().unwrap();
    client
}

/// At --tcp-max-connections, a new connection closes the oldest one
/// still in its TLS handshake (evicted) and never one past it; with none
/// in its handshake left, it is refused.
#[test]
fn at_the_limit_the_oldest_handshake_is_evicted_and_established_connections_stay() {
    let dir = TempDir::new("tls-limit");
    let Some((cert, key)) = make_certificate(&dir, "server") else {
        return;
    };
    let output = dir.join("out.log");
    let (mut ringway, addr) = start(
        &dir,
        &cert,
        &key,
        &output,
        &[
            "--tcp-max-connections",
            "2",
            "--tls-handshake-timeout",
            "1m",
        ],
    );
    let first = numbered_lines("first", 0..10);
    let mut established = open_s_client(addr, &first);
    wait_for_len(
        &mut ringway,
        &output,
        first.len() as u64,
        "the first client",
    );
    // Two connections that never start their handshake: the second takes
    // the place of the first, the older.
    let mut a = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut b = TcpStream::connect(addr).unwrap();
    assert!(
        closed_within(&mut a, Duration::from_secs(10)),
        "the older stalled handshake was not evicted"
    );
    assert!(
        !closed_within(&mut b, Duration::from_millis(500)),
        "the newer stalled handshake was closed"
    );
    // A second real client evicts b, and then the table holds two
    // established connections: a newcomer is refused.
    let second = numbered_lines("second", 0..10);
    let mut also_established = open_s_client(addr, &second);
    let both = (first.len() + second.len()) as u64;
    wait_for_len(&mut ringway, &output, both, "the second client");
    assert!(closed_within(&mut b, Duration::from_secs(10)), "b stayed");
    let mut c = TcpStream::connect(addr).unwrap();
    assert!(
        closed_within(&mut c, Duration::from_secs(10)),
        "a connection was let in past two established ones"
    );
    // The established connections still carry records.
    let more = numbered_lines("first-more", 0..10);
    let stdin = established.stdin.as_mut().unwrap();
    stdin.write_all(&more).unwrap();
    stdin.flush().unwrap();
    wait_for_len(&mut ringway, &output, both + more.len() as u64, "after");
    let summary = stop(ringway, &dir);
    for client in [&mut established, &mut also_established] {
        let _ = client.kill();
        let _ = client.wait();
    }
    assert_eq!(summary.input(0, "connections_accepted"), 5, "{summary}");
    assert_eq!(summary.input(0, "connections_evicted"), 2, "{summary}");
    assert_eq!(summary.input(0, "connections_refused"), 1, "{summary}");
    assert_eq!(summary.input(0, "tls_handshakes"), 2, "{summary}");
    assert_eq!(summary.input(0, "records"), 30, "{summary}");
}

#[test]
fn a_missing_wrong_or_mismatched_certificate_or_key_is_one_line_and_exit_2() {
    let dir = TempDir::new("tls-bad-files");
    let Some((cert, key)) = make_certificate(&dir, "server") else {
        return;
    };
    let Some((_, other_key)) = make_certificate(&dir, "other") else {
        return;
    };
    let missing = dir.join("missing.crt");
    let (cert, key, other_key, missing) = (p(&cert), p(&key), p(&other_key), p(&missing));
    let input = "tcp:127.0.0.1:0,tls";
    for (args, says) in [
        (
            vec!["--input", input, "--tls-cert", &missing, "--tls-key", &key],
            format!("input '{input}': TLS certificate {missing}: No such file or directory"),
        ),
        (
            vec!["--input", input, "--tls-cert", &key, "--tls-key", &key],
            format!("TLS certificate {key}: no certificate in it"),
        ),
        (
            vec!["--input", input, "--tls-cert", &cert, "--tls-key", &cert],
            format!("TLS key {cert}: no private key in it"),
        ),
        (
            vec![
                "--input",
                input,
                "--tls-cert",
                &cert,
                "--tls-key",
                &other_key,
            ],
            format!("TLS key {other_key} does not go with certificate {cert}"),
        ),
        (
            vec!["--input", "tcp:127.0.0.1:0,tls", "--tls-cert", &cert],
            format!("input '{input}': ,tls needs a private key"),
        ),
        (
            vec![
                "--input",
                "tcp:127.0.0.1:0",
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
            ],
            "--tls-cert/--tls-key are given but no input has ,tls".to_string(),
        ),
    ] {
        for command in ["run", "check"] {
            let mut words = vec![command, "--output", "null"];
            words.extend_from_slice(&args);
            let finished = run(&dir, &words, TIMEOUT);
            finished.assert_code(2);
            let lines: Vec<&str> = finished.stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{words:?}: {lines:?}");
            assert!(
                lines[0].starts_with("ringway: error: ") && lines[0].contains(&says),
                "{words:?}: expected {says:?} in {lines:?}"
            );
        }
    }
    // The same files given per input (cert=, key=) are checked the same way,
    // and check prints them back.
    let spec = format!("tcp:127.0.0.1:0,tls,cert={cert},key={missing}");
    let finished = run(&dir, &["check", "--input", &spec], TIMEOUT);
    finished.assert_code(2);
    assert!(
        finished
            .stderr
            .contains(&format!("TLS key {missing}: No such file")),
        "{}",
        finished.stderr
    );
    let spec = format!("tcp:127.0.0.1:0,tls,cert={cert},key={key}");
    let finished = run(&dir, &["check", "--input", &spec], TIMEOUT);
    finished.assert_success();
    let printed = String::from_utf8_lossy(&finished.stdout);
    assert!(
        printed.contains(&format!("tls = true\ncert = \"{cert}\"\nkey = \"{key}\"\n")),
        "{printed}"
    );
}

#[test]
fn a_stalled_output_stalls_a_tls_sender_and_loses_nothing() {
    const LINE: usize = 200;
    // More than the kernel's socket buffers and the pipeline hold.
    let lines = lines_past_tcp_buffers(LINE);
    let dir = TempDir::new("tls-backpressure");
    let Some((cert, key)) = make_certificate(&dir, "server") else {
        return;
    };
    let fifo = dir.join("out.fifo");
    mkfifo(&fifo);
    let (mut ringway, addr) = start(&dir, &cert, &key, &fifo, SMALL_POOLS);
    let data = Arc::new(padded_lines("tlsbp", 0..lines, LINE));
    let total = data.len() as u64;
    let written = Arc::new(AtomicU64::new(0));
    let sender = {
        let (data, written) = (Arc::clone(&data), Arc::clone(&written));
        std::thread::spawn(move || s_client_send_counted(addr, "-tls1_3", &data, &written))
    };
    // Nobody reads the FIFO: the sender must stall, not ringway's memory
    // grow (the decrypted bytes wait in rustls and the connection's range,
    // the rest in the kernel and in s_client).
    let mut last = (Instant::now(), 0u64);
    let stalled = wait_until(Duration::from_secs(60), || {
        let now = written.load(Ordering::SeqCst);
        if now != last.1 {
            last = (Instant::now(), now);
        }
        last.0.elapsed() > Duration::from_secs(2)
    });
    let at_stall = written.load(Ordering::SeqCst);
    assert!(
        stalled && at_stall < total,
        "the sender did not stall: {at_stall} of {total} bytes written"
    );
    ringway.assert_running("while stalled");
    let rss = vm_rss_kib(ringway.pid()).expect("a live process has VmRSS");
    assert!(
        rss < 96 * 1024,
        "VmRSS {rss} KiB while stalled (bound 96 MiB)"
    );
    let progress = Arc::new(AtomicU64::new(0));
    let reader = attach_fifo_reader(fifo.clone(), Arc::clone(&progress));
    sender
        .join()
        .expect("s_client finished once the output drained");
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
    assert_bytes_identical(&data, &received, "TLS through a stalled output");
    assert_eq!(summary.input(0, "records"), lines, "{summary}");
    assert_eq!(summary.input(0, "bytes"), total, "{summary}");
}

#[test]
fn lines_sent_over_tls_before_sigterm_arrive_with_the_partial_last_one() {
    let dir = TempDir::new("tls-sigterm");
    let Some((cert, key)) = make_certificate(&dir, "server") else {
        return;
    };
    let output = dir.join("out.log");
    let (mut ringway, addr) = start(&dir, &cert, &key, &output, &[]);
    // s_client keeps the connection open: its input is not closed.
    let mut client = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-tls1_3"])
        .args(["-quiet", "-nocommands", "-servername", "localhost"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openssl s_client");
    let lines = numbered_lines("open", 0..1_000);
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(&lines).unwrap();
    stdin.write_all(b"a last line without its newline").unwrap();
    stdin.flush().unwrap();
    wait_for_len(&mut ringway, &output, lines.len() as u64, "before SIGTERM");
    // The partial line is decrypted and waiting in the connection's range.
    std::thread::sleep(Duration::from_millis(200));
    let summary = stop(ringway, &dir);
    let _ = client.kill();
    let _ = client.wait();
    let mut expected = lines.clone();
    expected.extend_from_slice(b"a last line without its newline\n");
    assert_bytes_identical(&expected, &read_output(&output), "at SIGTERM");
    assert_eq!(summary.input(0, "records"), 1_001, "{summary}");
}
