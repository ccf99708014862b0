//! OTLP/HTTP over HTTPS (issue 17, `otlp:ADDR:PORT,tls`): the OpenTelemetry
//! Python SDK exporting with `certificate_file`, and curl with `--cacert`
//! (a 200 and the record delivered), a wrong CA (refused by the client,
//! counted as a failed handshake), plaintext HTTP on the HTTPS port
//! (counted as plaintext) and mutual TLS (a client certificate from the
//! client CA delivers; none is refused and counted), while the input keeps
//! serving good clients.
//!
//! Certificates are made in each test (`certs`): a CA, and a server
//! certificate it signed with the subjectAltName IP:127.0.0.1, which
//! clients check. Without openssl, curl or the SDK's venv a test prints
//! "not run" and passes, except under CI.

use crate::certs::*;
use crate::common::*;
use crate::otlp::{
    assert_sdk_delivered, check_sdk_records, curl_available, http_count, parse_records, sdk_python,
    sdk_spawn,
};
use std::io::Read;
use std::net::SocketAddr;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// Starts ringway with one `otlp:127.0.0.1:0,tls{options}` input serving
/// `server`, writing to the file `output`, with `extra` flags.
fn start_https(
    dir: &TempDir,
    options: &str,
    server: &KeyPair,
    output: &Path,
    extra: &[&str],
) -> (Ringway, SocketAddr) {
    start_tls(dir, "otlp", options, server, output, extra)
}

#[test]
fn the_sdk_exports_over_https_with_certificate_file() {
    let Some(python) = sdk_python() else { return };
    let dir = TempDir::new("otlp-https-sdk");
    let Some((server_ca, server)) = make_https_certificate(&dir, "server") else {
        return;
    };
    let output = dir.join("out.ndjson");
    let (ringway, addr) = start_https(&dir, "", &server, &output, &[]);
    let endpoint = format!("https://{addr}/v1/logs");
    let certificate = p(&server_ca);
    let sdk = sdk_spawn(
        &dir,
        &python,
        addr,
        2_000,
        &[
            "--endpoint",
            &endpoint,
            "--certificate-file",
            &certificate,
            "--timeout",
            "30",
        ],
    );
    let (result, sdk_stderr) = sdk.finish(Duration::from_secs(90));
    assert_sdk_delivered(&result, 2_000, &sdk_stderr);
    let summary = stop(ringway, &dir);
    let records = parse_records(&read_output(&output), false, "SDK over HTTPS");
    check_sdk_records(&records, "record", 2_000, "SDK over HTTPS");
    assert_eq!(summary.input(0, "records_accepted"), 2_000, "{summary}");
    assert_eq!(
        http_count(&summary, "200"),
        result["export_calls"].as_u64().unwrap(),
        "one 200 per export call: {summary} {result}"
    );
    assert!(summary.input(0, "tls_handshakes") >= 1, "{summary}");
    for key in [
        "tls_handshake_errors",
        "tls_handshake_timeouts",
        "tls_plaintext",
        "tls_bad_records",
    ] {
        assert_eq!(summary.input(0, key), 0, "{key}: {summary}");
    }
}

#[test]
fn curl_over_https_needs_the_right_ca_and_plaintext_http_is_refused() {
    if !curl_available() {
        return;
    }
    let dir = TempDir::new("otlp-https-curl");
    let Some((server_ca, server)) = make_https_certificate(&dir, "server") else {
        return;
    };
    let stranger_ca = make_ca(&dir, "stranger-ca").0;
    let output = dir.join("out.ndjson");
    let (mut ringway, addr) = start_https(&dir, "", &server, &output, &[]);
    let https = format!("https://{addr}/v1/logs");
    let server_ca = p(&server_ca);
    let cacert: [&str; 2] = ["--cacert", &server_ca];

    let first = json_request(&dir, "first-over-https");
    assert_eq!(curl(&https, &first, &cacert).outcome(), (0, "200"));
    // The client does not trust the server's certificate: it refuses the
    // handshake (curl's exit 60) and ringway counts a failed handshake.
    let wrong = curl(&https, &first, &["--cacert", &p(&stranger_ca)]);
    assert_eq!(wrong.code, 60, "curl with the wrong CA: {}", wrong.stderr);
    // Plaintext HTTP on the HTTPS port: closed without an answer.
    let plain = curl(&format!("http://{addr}/v1/logs"), &first, &[]);
    assert_ne!(plain.status, "200", "plaintext HTTP was answered");
    // The input keeps serving.
    let second = json_request(&dir, "second-over-https");
    assert_eq!(curl(&https, &second, &cacert).outcome(), (0, "200"));
    let arrived = wait_until(Duration::from_secs(30), || {
        String::from_utf8_lossy(&read_output(&output)).contains("second-over-https")
    });
    ringway.assert_running("after the clients");
    assert!(arrived, "the second record did not arrive");

    let summary = stop(ringway, &dir);
    let records = parse_records(&read_output(&output), false, "curl over HTTPS");
    let bodies: Vec<&str> = records
        .iter()
        .map(|record| record["body"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(bodies, ["first-over-https", "second-over-https"]);
    assert_eq!(summary.input(0, "tls_handshakes"), 2, "{summary}");
    assert_eq!(summary.input(0, "tls_handshake_errors"), 1, "{summary}");
    assert_eq!(summary.input(0, "tls_plaintext"), 1, "{summary}");
    assert_eq!(http_count(&summary, "200"), 2, "{summary}");
}

#[test]
fn mutual_tls_on_https_refuses_a_client_without_a_certificate() {
    if !curl_available() {
        return;
    }
    let dir = TempDir::new("otlp-https-mtls");
    let Some((server_ca, server)) = make_https_certificate(&dir, "server") else {
        return;
    };
    let ca = make_ca(&dir, "clients-ca");
    let client = make_client(&dir, "client", &ca);
    let output = dir.join("out.ndjson");
    let options = format!(",client_ca={}", p(&ca.0));
    let (ringway, addr) = start_https(&dir, &options, &server, &output, &[]);
    let https = format!("https://{addr}/v1/logs");
    let server_ca = p(&server_ca);
    let request = json_request(&dir, "with-a-client-certificate");
    let (cert, key) = (p(&client.0), p(&client.1));
    let good: [&str; 6] = ["--cacert", &server_ca, "--cert", &cert, "--key", &key];
    assert_eq!(curl(&https, &request, &good).outcome(), (0, "200"));
    // The server refuses the handshake: curl fails (no HTTP status).
    let refused = curl(&https, &request, &["--cacert", &server_ca]);
    assert_ne!(refused.code, 0, "a client without a certificate got in");
    assert_eq!(refused.status, "000", "{}", refused.stderr);
    // And a good client still gets through.
    assert_eq!(curl(&https, &request, &good).outcome(), (0, "200"));
    let summary = stop(ringway, &dir);
    assert_eq!(summary.input(0, "tls_client_cert_refused"), 1, "{summary}");
    assert_eq!(summary.input(0, "tls_handshakes"), 2, "{summary}");
    assert_eq!(http_count(&summary, "200"), 2, "{summary}");
    let records = parse_records(&read_output(&output), false, "mutual TLS");
    assert_eq!(records.len(), 2, "{records:?}");
}

#[test]
fn a_stalled_https_handshake_is_closed_at_the_timeout_while_curl_gets_through() {
    if !curl_available() {
        return;
    }
    let dir = TempDir::new("otlp-https-stalled");
    let Some((server_ca, server)) = make_https_certificate(&dir, "server") else {
        return;
    };
    let output = dir.join("out.ndjson");
    let extra = ["--tls-handshake-timeout", "600ms"];
    let (ringway, addr) = start_https(&dir, "", &server, &output, &extra);
    let started = Instant::now();
    // A client that connects and says nothing holds a slot until the
    // handshake timeout; meanwhile a good client is served.
    let mut silent = TcpStream::connect(addr).unwrap();
    let request = json_request(&dir, "meanwhile");
    let server_ca = p(&server_ca);
    let https = format!("https://{addr}/v1/logs");
    let good = curl(&https, &request, &["--cacert", &server_ca]);
    assert_eq!(good.outcome(), (0, "200"));
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    let closed = match silent.read(&mut buf) {
        Ok(0) => true,
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    };
    let took = started.elapsed();
    assert!(closed, "the silent connection was not closed within 10 s");
    assert!(
        took >= Duration::from_millis(500),
        "closed after {took:?}, before the 600ms handshake timeout"
    );
    let summary = stop(ringway, &dir);
    assert_eq!(summary.input(0, "tls_handshake_timeouts"), 1, "{summary}");
    assert_eq!(summary.input(0, "tls_handshakes"), 1, "{summary}");
    assert_eq!(http_count(&summary, "200"), 1, "{summary}");
}
