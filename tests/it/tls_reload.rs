//! Issue 17's server side under change and under attack: certificate
//! rotation by SIGHUP while clients keep sending (nothing lost; a new
//! handshake sees the new certificate; a bad replacement keeps the old
//! one and is counted), the client CA of mutual TLS and bearer tokens
//! reloaded the same way, curl refusing
//! an expired server certificate, and 500 concurrent stalled handshakes
//! (raw TCP connections sending a real ClientHello, captured once from
//! `openssl s_client`) while a good client gets through and RSS stays
//! bounded: on the TCP input within `--tcp-max-connections` and past its
//! default, and on the OTLP input past `--otlp-max-connections` (the oldest
//! evicted).
//!
//! Certificates are made in each test (`certs`); without openssl or curl
//! a test prints "not run" and passes, except under CI.

use crate::certs::*;
use crate::common::*;
use crate::otlp::curl_available;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Copies `pair` over the files `live` the way an operator's tooling
/// does: each written beside and renamed into place.
fn install(pair: &KeyPair, live: &KeyPair) {
    for (from, to) in [(&pair.0, &live.0), (&pair.1, &live.1)] {
        let staged = to.with_extension("new");
        std::fs::copy(from, &staged).unwrap();
        std::fs::rename(&staged, to).unwrap();
    }
}

/// The CN of the certificate a new TLS handshake with `addr` is served,
/// checked against the CA `ca` (`openssl s_client -showcerts`, which must
/// say `Verify return code: 0 (ok)`).
fn served_cn(addr: SocketAddr, ca: &Path) -> String {
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-showcerts"])
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(ca)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Verify return code: 0 (ok)"),
        "s_client -showcerts: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // "subject=CN = server-first": the leaf the server sent.
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("subject=CN = "))
        .unwrap_or_else(|| panic!("no subject in {stdout}"))
        .trim()
        .to_string()
}

/// Waits (30 s at most) until /metrics at `metrics` shows `value` for the
/// credential reloads with `outcome`.
fn wait_for_reloads(ringway: &mut Ringway, metrics: SocketAddr, outcome: &str, value: u64) {
    let label = format!("outcome=\"{outcome}\"");
    let family = "ringway_input_credential_reloads_total";
    let seen = wait_until(Duration::from_secs(30), || {
        metric_sample(metrics, family, &label) == Some(value)
    });
    ringway.assert_running("after SIGHUP");
    assert!(
        seen,
        "{family}{{{label}}} is {:?}, not {value}",
        metric_sample(metrics, family, &label)
    );
}

/// A ringway whose `{kind}:127.0.0.1:0,tls` input serves the files
/// `live` (a copy of `pair`), with /metrics: the process, its /metrics
/// address, its input's address and `live`.
struct Rotatable {
    ringway: Ringway,
    metrics: SocketAddr,
    addr: SocketAddr,
    live: KeyPair,
}

fn start_rotatable(dir: &TempDir, kind: &str, pair: &KeyPair, output: &Path) -> Rotatable {
    let live = (dir.join("live.crt"), dir.join("live.key"));
    install(pair, &live);
    let extra = ["--metrics", "127.0.0.1:0"];
    let (mut ringway, _) = start_tls(dir, kind, "", &live, output, &extra);
    let metrics = metrics_address(&mut ringway);
    let addr = input_addr(&mut ringway, &format!("{kind}:127.0.0.1:0,tls"));
    Rotatable {
        ringway,
        metrics,
        addr,
        live,
    }
}

/// A CA named `ca_name`, the certificate `first` makes with it and a
/// server certificate `second` it signed: a rotation from one to the
/// other. `None` (after "not run") without openssl.
fn rotation_certificates(
    dir: &TempDir,
    ca_name: &str,
    first: impl FnOnce(&KeyPair) -> KeyPair,
    second: &str,
) -> Option<(KeyPair, KeyPair, KeyPair)> {
    make_certificate(dir, "probe")?;
    let ca = make_ca(dir, ca_name);
    let (first, second) = (first(&ca), make_server(dir, second, &ca));
    Some((ca, first, second))
}

#[test]
fn sighup_rotates_the_certificate_while_clients_keep_sending_and_a_bad_file_keeps_the_old_one() {
    const LINES: u64 = 1_000;
    let dir = TempDir::new("tls-reload-rotation");
    let first = |ca: &KeyPair| make_server(&dir, "server-first", ca);
    let Some((ca, first, second)) =
        rotation_certificates(&dir, "rotation-ca", first, "server-second")
    else {
        return;
    };
    let output = dir.join("out.log");
    let Rotatable {
        mut ringway,
        metrics,
        addr,
        live,
    } = start_rotatable(&dir, "tcp", &first, &output);
    assert_eq!(served_cn(addr, &ca.0), "server-first");

    // Three senders connect under the first certificate and send half
    // their lines; they keep their connections through the reloads.
    let halves: Vec<(Vec<u8>, Vec<u8>)> = (0..3)
        .map(|client| {
            let tag = format!("kept{client}");
            (
                numbered_lines(&tag, 0..LINES),
                numbered_lines(&tag, LINES..2 * LINES),
            )
        })
        .collect();
    let mut kept: Vec<_> = halves
        .iter()
        .map(|(before, _)| {
            let mut client = spawn_s_client(addr, "-tls1_3", None, &[]);
            let mut stdin = client.stdin.take().unwrap();
            stdin.write_all(before).unwrap();
            stdin.flush().unwrap();
            (client, stdin)
        })
        .collect();
    let mut expected_len: u64 = halves.iter().map(|(before, _)| before.len() as u64).sum();
    let arrived = wait_until(Duration::from_secs(60), || {
        file_len(&output) >= expected_len
    });
    assert!(arrived, "the first halves did not arrive");

    // Rotation: new files (new CN, new key), then SIGHUP.
    install(&second, &live);
    ringway.signal(libc::SIGHUP);
    wait_for_reloads(&mut ringway, metrics, "ok", 1);
    assert_eq!(served_cn(addr, &ca.0), "server-second");
    let after = numbered_lines("after-rotation", 0..LINES);
    s_client_send(addr, "-tls1_2", &after);
    expected_len += after.len() as u64;
    // The kept connections go on with the session they had.
    for ((client, mut stdin), (_, rest)) in kept.drain(..).zip(&halves) {
        stdin.write_all(rest).unwrap();
        drop(stdin);
        let (ok, stderr) = finish_s_client(client, Duration::from_secs(60));
        assert!(ok, "a sender kept across the reload: {stderr}");
        expected_len += rest.len() as u64;
    }

    // Bad replacements: a key file that holds no key, then a key that does
    // not go with the certificate. Each keeps the second certificate.
    std::fs::write(&live.1, "not a key\n").unwrap();
    ringway.signal(libc::SIGHUP);
    wait_for_reloads(&mut ringway, metrics, "failed", 1);
    install(&(second.0.clone(), first.1.clone()), &live);
    ringway.signal(libc::SIGHUP);
    wait_for_reloads(&mut ringway, metrics, "failed", 2);
    assert_eq!(served_cn(addr, &ca.0), "server-second");
    let after_bad = numbered_lines("after-bad-files", 0..LINES);
    s_client_send(addr, "-tls1_3", &after_bad);
    expected_len += after_bad.len() as u64;
    let arrived = wait_until(Duration::from_secs(60), || {
        file_len(&output) >= expected_len
    });
    ringway.assert_running("after the senders");
    assert!(
        arrived,
        "{} of {expected_len} bytes arrived",
        file_len(&output)
    );

    let summary = stop(ringway, &dir);
    let kept_lines: Vec<Vec<u8>> = halves
        .iter()
        .map(|(before, rest)| [before.as_slice(), rest].concat())
        .collect();
    let mut sources: Vec<(&str, &[u8])> = vec![
        ("after the rotation", &after),
        ("after the bad files", &after_bad),
    ];
    for (client, lines) in kept_lines.iter().enumerate() {
        sources.push((["kept 0", "kept 1", "kept 2"][client], lines));
    }
    assert_interleaving_of(&sources, &read_output(&output), "through the reloads");
    assert_eq!(summary.input(0, "records"), 8 * LINES, "{summary}");
    assert_eq!(summary.input(0, "credential_reloads"), 1, "{summary}");
    assert_eq!(
        summary.input(0, "credential_reload_failures"),
        2,
        "{summary}"
    );
    // Three certificate checks, three kept senders, two more senders.
    assert_eq!(summary.input(0, "tls_handshakes"), 8, "{summary}");
    let stderr = read_stderr(&dir);
    let input = "input 'tcp:127.0.0.1:0,tls'";
    assert!(
        stderr.contains(&format!(
            "{input}: SIGHUP: reloaded its TLS certificate and key; new connections"
        )),
        "{stderr}"
    );
    let refused = format!(
        "ringway: warning: {input}: SIGHUP: cannot reload its TLS certificate and key, keeping the ones loaded before; error = "
    );
    let (key, cert) = (p(&live.1), p(&live.0));
    assert!(
        stderr.contains(&format!("{refused}TLS key {key}: no private key in it")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{refused}TLS key {key} does not go with certificate {cert}"
        )),
        "{stderr}"
    );
}

/// Mutual TLS: the client CA is reloaded too. A client of the old CA is
/// refused (and counted) after the rotation, one of the new CA served.
#[test]
fn sighup_reloads_the_client_ca_of_mutual_tls() {
    let dir = TempDir::new("tls-reload-client-ca");
    let Some(server) = make_certificate(&dir, "server") else {
        return;
    };
    let (old_ca, new_ca) = (make_ca(&dir, "old-ca"), make_ca(&dir, "new-ca"));
    let old_client = make_client(&dir, "old-client", &old_ca);
    let new_client = make_client(&dir, "new-client", &new_ca);
    let client_ca = dir.join("clients-ca.pem");
    std::fs::copy(&old_ca.0, &client_ca).unwrap();
    let output = dir.join("out.log");
    let options = format!(",client_ca={}", p(&client_ca));
    let extra = ["--metrics", "127.0.0.1:0"];
    let (mut ringway, _) = start_tls(&dir, "tcp", &options, &server, &output, &extra);
    let metrics = metrics_address(&mut ringway);
    let addr = input_addr(&mut ringway, &format!("tcp:127.0.0.1:0,tls{options}"));
    let mut expected = Vec::new();
    let send = |name: &str, client: &KeyPair, expected: &mut Vec<u8>| {
        let lines = numbered_lines(name, 0..100);
        let (ok, stderr) = s_client(addr, "-tls1_3", Some(client), &lines);
        assert!(ok, "{name}: {stderr}");
        expected.extend_from_slice(&lines);
        let arrived = wait_until(Duration::from_secs(30), || {
            file_len(&output) >= expected.len() as u64
        });
        assert!(arrived, "{name}: its lines did not arrive");
    };
    send("old-ca-before", &old_client, &mut expected);
    std::fs::copy(&new_ca.0, &client_ca).unwrap();
    ringway.signal(libc::SIGHUP);
    wait_for_reloads(&mut ringway, metrics, "ok", 1);
    let refused = numbered_lines("old-ca-after", 0..100);
    s_client(addr, "-tls1_3", Some(&old_client), &refused);
    let counted = wait_until(Duration::from_secs(30), || {
        metric_sample(
            metrics,
            "ringway_input_tls_closed_total",
            "client_cert_refused",
        ) == Some(1)
    });
    assert!(counted, "the old CA's client was not refused");
    send("new-ca-after", &new_client, &mut expected);
    let summary = stop(ringway, &dir);
    assert_bytes_identical(&expected, &read_output(&output), "the accepted clients");
    assert_eq!(summary.input(0, "tls_client_cert_refused"), 1, "{summary}");
    assert_eq!(summary.input(0, "tls_handshakes"), 2, "{summary}");
    assert_eq!(summary.input(0, "credential_reloads"), 1, "{summary}");
    assert!(
        read_stderr(&dir).contains("SIGHUP: reloaded its TLS certificate, key and client CA"),
        "{}",
        read_stderr(&dir)
    );
}

#[test]
fn sighup_reloads_the_bearer_tokens_and_an_empty_token_file_keeps_them() {
    if !curl_available() {
        return;
    }
    let dir = TempDir::new("otlp-auth-reload");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "old-token\n").unwrap();
    let output = dir.join("out.ndjson");
    let input = format!("otlp:127.0.0.1:0,auth_token_file={}", p(&tokens));
    let extra = ["--metrics", "127.0.0.1:0"];
    let (mut ringway, _) = start_listening(&dir, &input, &file_output(&output), &extra);
    let metrics = metrics_address(&mut ringway);
    let addr = input_addr(&mut ringway, &input);
    let url = format!("http://{addr}/v1/logs");
    let status = |token: &str| {
        let request = json_request(&dir, &format!("sent-with-{token}"));
        let header = format!("Authorization: Bearer {token}");
        let said = curl(&url, &request, &["-H", &header]);
        assert_eq!(said.code, 0, "curl: {}", said.stderr);
        said.status
    };
    assert_eq!(status("old-token"), "200");
    assert_eq!(status("new-token"), "401");
    std::fs::write(&tokens, "new-token\n").unwrap();
    ringway.signal(libc::SIGHUP);
    wait_for_reloads(&mut ringway, metrics, "ok", 1);
    assert_eq!(status("old-token"), "401");
    assert_eq!(status("new-token"), "200");
    // Emptied by mistake: refused at the reload; the tokens stay.
    std::fs::write(&tokens, "# none yet\n").unwrap();
    ringway.signal(libc::SIGHUP);
    wait_for_reloads(&mut ringway, metrics, "failed", 1);
    assert_eq!(status("new-token"), "200");
    let summary = stop(ringway, &dir);
    assert_eq!(summary.input(0, "auth_refused"), 2, "{summary}");
    assert_eq!(summary.input(0, "credential_reloads"), 1, "{summary}");
    assert_eq!(
        summary.input(0, "credential_reload_failures"),
        1,
        "{summary}"
    );
    let stderr = read_stderr(&dir);
    assert!(
        stderr.contains(&format!(
            "SIGHUP: cannot reload its auth_token_file, keeping the ones loaded before; error = auth_token_file {}: no token in it",
            p(&tokens)
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("new-token"),
        "a token was printed: {stderr}"
    );
}

#[test]
fn curl_refuses_an_expired_server_certificate_until_a_sighup_installs_a_valid_one() {
    if !curl_available() {
        return;
    }
    let dir = TempDir::new("otlp-https-expired");
    let expired = |ca: &KeyPair| make_expired_server(&dir, "server-expired", ca);
    let Some((ca, expired, valid)) =
        rotation_certificates(&dir, "expiry-ca", expired, "server-valid")
    else {
        return;
    };
    let output = dir.join("out.ndjson");
    let Rotatable {
        mut ringway,
        metrics,
        addr,
        live,
    } = start_rotatable(&dir, "otlp", &expired, &output);
    let https = format!("https://{addr}/v1/logs");
    let cacert = ["--cacert", &p(&ca.0)];
    let request = json_request(&dir, "over-https");
    // curl's exit 60: the peer's certificate cannot be authenticated.
    let refused = curl(&https, &request, &cacert);
    assert_eq!(refused.code, 60, "curl: {}", refused.stderr);
    assert!(refused.stderr.contains("expired"), "{}", refused.stderr);
    let errors = wait_until(Duration::from_secs(10), || {
        metric_sample(metrics, "ringway_input_tls_closed_total", "handshake_error") == Some(1)
    });
    assert!(errors, "the refused handshake was not counted");
    install(&valid, &live);
    ringway.signal(libc::SIGHUP);
    wait_for_reloads(&mut ringway, metrics, "ok", 1);
    assert_eq!(curl(&https, &request, &cacert).outcome(), (0, "200"));
    let summary = stop(ringway, &dir);
    assert_eq!(summary.input(0, "tls_handshake_errors"), 1, "{summary}");
    assert_eq!(summary.input(0, "tls_handshakes"), 1, "{summary}");
    assert_eq!(summary.input(0, "records_accepted"), 1, "{summary}");
}

/// One real ClientHello record, as `openssl s_client` sends it first
/// (captured from a listener of the test's own).
fn capture_client_hello() -> Vec<u8> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut client = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string()])
        .args(["-servername", "localhost"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openssl s_client");
    let (mut stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(header[0], 0x16, "not a handshake record");
    let mut record = header.to_vec();
    record.resize(
        5 + usize::from(u16::from_be_bytes([header[3], header[4]])),
        0,
    );
    stream.read_exact(&mut record[5..]).unwrap();
    let _ = client.kill();
    let _ = client.wait();
    record
}

/// Opens `count` connections to `addr`, each sending `hello` and then
/// nothing (a handshake that stalls).
fn stall_handshakes(addr: SocketAddr, hello: &[u8], count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            // A refused connection may be closed before this is sent.
            let _ = stream.write_all(hello);
            stream
        })
        .collect()
}

/// What 500 stalled handshakes may add to ringway's RSS: each holds a
/// rustls session (its ClientHello and its reply flight) and touches a
/// page of each of its TLS buffer ranges, some KiB (about 20 KiB measured);
/// 64 KiB each is well above that and far below what an unbounded buffer
/// would take.
const STALLED_HANDSHAKE_RSS_KIB: u64 = 500 * 64;

/// A ringway with a `{kind}:127.0.0.1:0,tls` input and /metrics, and 500
/// connections to it that each sent a real ClientHello and stall, all
/// accepted.
struct Flood {
    ringway: Ringway,
    metrics: SocketAddr,
    addr: SocketAddr,
    /// VmRSS before the flood, KiB.
    before_kib: u64,
    stalled: Vec<TcpStream>,
}

impl Flood {
    fn start(dir: &TempDir, kind: &str, pair: &KeyPair, output: &Path, extra: &[&str]) -> Flood {
        let hello = capture_client_hello();
        let mut args = vec!["--metrics", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let (mut ringway, _) = start_tls(dir, kind, "", pair, output, &args);
        let metrics = metrics_address(&mut ringway);
        let addr = input_addr(&mut ringway, &format!("{kind}:127.0.0.1:0,tls"));
        let before_kib = Self::rss_kib(&mut ringway);
        let stalled = stall_handshakes(addr, &hello, 500);
        let accepted = wait_until(Duration::from_secs(30), || {
            metric_sum(metrics, "ringway_input_connections_accepted_total") == Some(500)
        });
        assert!(accepted, "the 500 connections were not all accepted");
        Flood {
            ringway,
            metrics,
            addr,
            before_kib,
            stalled,
        }
    }

    fn rss_kib(ringway: &mut Ringway) -> u64 {
        ringway.assert_running("while measuring RSS");
        vm_rss_kib(ringway.pid()).expect("a live process has VmRSS")
    }

    /// VmRSS now is within [`STALLED_HANDSHAKE_RSS_KIB`] of before.
    fn assert_rss_bounded(&mut self) {
        let (before, during) = (self.before_kib, Self::rss_kib(&mut self.ringway));
        eprintln!("VmRSS {before} KiB before, {during} KiB with 500 stalled handshakes");
        assert!(
            during < before + STALLED_HANDSHAKE_RSS_KIB,
            "VmRSS grew from {before} KiB to {during} KiB with 500 stalled handshakes (bound +{STALLED_HANDSHAKE_RSS_KIB} KiB)"
        );
    }

    /// The /metrics sample of the TLS connections closed for `reason`.
    fn tls_closed(&self, reason: &str) -> Option<u64> {
        metric_sample(self.metrics, "ringway_input_tls_closed_total", reason)
    }

    /// Closes the stalled connections and stops ringway: its summary.
    fn stop(self, dir: &TempDir) -> Summary {
        drop(self.stalled);
        stop(self.ringway, dir)
    }
}

/// The good client's lines, sent until they arrive (a refused attempt
/// leaves nothing: it does not get past the handshake). Returns the
/// attempts it took.
fn send_until_delivered(addr: SocketAddr, output: &Path, lines: &[u8], limit: Duration) -> u32 {
    let mut attempts = 0;
    let delivered = wait_until(limit, || {
        attempts += 1;
        let (ok, _) = s_client(addr, "-tls1_3", None, lines);
        ok && wait_until(Duration::from_secs(5), || {
            file_len(output) >= lines.len() as u64
        })
    });
    assert!(delivered, "the good client did not get through");
    attempts
}

/// A test directory with a self-signed certificate and an output path;
/// `None` (after "not run") without openssl.
fn flood_dir(label: &str) -> Option<(TempDir, KeyPair, PathBuf)> {
    let dir = TempDir::new(label);
    let pair = make_certificate(&dir, "server")?;
    let output = dir.join("out.log");
    Some((dir, pair, output))
}

/// `--tcp-max-connections` above the flood: every stalled handshake holds
/// a slot until `--tls-handshake-timeout`, and a good client is served
/// beside them at once.
#[test]
fn five_hundred_stalled_handshakes_within_the_limit_leave_room_for_a_good_client() {
    let Some((dir, pair, output)) = flood_dir("tls-flood-within") else {
        return;
    };
    let extra = [
        "--tcp-max-connections",
        "1024",
        "--tls-handshake-timeout",
        "20s",
    ];
    let mut flood = Flood::start(&dir, "tcp", &pair, &output, &extra);
    let lines = numbered_lines("good", 0..200);
    let attempts = send_until_delivered(flood.addr, &output, &lines, Duration::from_secs(15));
    assert_eq!(
        attempts, 1,
        "the good client was refused while there was room"
    );
    // Every stalled handshake is still open (none timed out yet).
    assert_eq!(flood.tls_closed("handshake_timeout"), Some(0));
    flood.assert_rss_bounded();
    let summary = flood.stop(&dir);
    assert_bytes_identical(&lines, &read_output(&output), "the good client");
    assert_eq!(summary.input(0, "connections_accepted"), 501, "{summary}");
    assert_eq!(summary.input(0, "connections_refused"), 0, "{summary}");
    assert_eq!(summary.input(0, "tls_handshakes"), 1, "{summary}");
}

/// The default `--tcp-max-connections 256`: handshakes count against it,
/// and when the table is full a new connection evicts the oldest one still
/// in its handshake, so the last 244 of the flood evict the first 244 and
/// a good client, arriving last, is served at once, long before
/// `--tls-handshake-timeout`.
#[test]
fn five_hundred_stalled_handshakes_past_the_default_limit_evict_the_oldest_and_a_good_client_gets_through()
 {
    let Some((dir, pair, output)) = flood_dir("tls-flood-past") else {
        return;
    };
    let extra = ["--tls-handshake-timeout", "1m"];
    let mut flood = Flood::start(&dir, "tcp", &pair, &output, &extra);
    let evicted = || metric_sum(flood.metrics, "ringway_input_connections_evicted_total");
    let all_evicted = wait_until(Duration::from_secs(10), || evicted() == Some(244));
    assert!(all_evicted, "evicted: {:?}", evicted());
    flood.assert_rss_bounded();
    let lines = numbered_lines("good", 0..200);
    let attempts = send_until_delivered(flood.addr, &output, &lines, Duration::from_secs(15));
    assert_eq!(attempts, 1, "the good client was turned away");
    assert_eq!(flood.tls_closed("handshake_timeout"), Some(0));
    let summary = flood.stop(&dir);
    assert_bytes_identical(&lines, &read_output(&output), "the good client");
    assert_eq!(summary.input(0, "connections_accepted"), 501, "{summary}");
    assert_eq!(summary.input(0, "connections_evicted"), 245, "{summary}");
    assert_eq!(summary.input(0, "connections_refused"), 0, "{summary}");
    assert_eq!(summary.input(0, "tls_handshakes"), 1, "{summary}");
}

/// The OTLP input at its default `--otlp-max-connections 256`: a new
/// connection closes the one idle longest when the table is full, and a
/// connection still in its handshake counts as idle, so 500 stalled
/// handshakes evict each other and a good client is served at once.
#[test]
fn five_hundred_stalled_https_handshakes_are_evicted_and_curl_gets_through() {
    if !curl_available() {
        return;
    }
    let dir = TempDir::new("otlp-https-flood");
    let Some((server_ca, server)) = make_https_certificate(&dir, "server") else {
        return;
    };
    let output = dir.join("out.ndjson");
    let extra = ["--tls-handshake-timeout", "1m"];
    let mut flood = Flood::start(&dir, "otlp", &server, &output, &extra);
    let evicted = || metric_sum(flood.metrics, "ringway_input_connections_evicted_total");
    let all_evicted = wait_until(Duration::from_secs(10), || evicted() == Some(244));
    assert!(all_evicted, "evicted: {:?}", evicted());
    flood.assert_rss_bounded();
    let https = format!("https://{}/v1/logs", flood.addr);
    let request = json_request(&dir, "beside-the-flood");
    let good = curl(&https, &request, &["--cacert", &p(&server_ca)]);
    assert_eq!(good.outcome(), (0, "200"), "{}", good.stderr);
    let summary = flood.stop(&dir);
    assert_eq!(summary.input(0, "connections_accepted"), 501, "{summary}");
    assert_eq!(summary.input(0, "connections_evicted"), 245, "{summary}");
    assert_eq!(summary.input(0, "connections_refused"), 0, "{summary}");
    assert_eq!(summary.input(0, "tls_handshakes"), 1, "{summary}");
    assert_eq!(summary.input(0, "records_accepted"), 1, "{summary}");
}
