//! Bearer tokens on the OTLP input (issue 17, `auth_token_file=PATH`):
//! curl and the OpenTelemetry Python SDK with the token deliver; without
//! it, or with a wrong one, the request gets 401 with `WWW-Authenticate:
//! Bearer`, is counted (`auth_refused`) and warned about at powers of two,
//! and no token is ever printed. A token file that is missing or holds no
//! token is one error line and exit 2. Over HTTPS (`otlp:…,tls`) the SDK
//! exports with `certificate_file` and the token, and is refused without it.

use crate::certs::{curl, json_request, make_https_certificate, read_stderr, start_tls};
use crate::common::*;
use crate::otlp::{
    assert_sdk_delivered, check_sdk_records, curl_available, http_count, parse_records, sdk_python,
    sdk_spawn,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TOKEN: &str = "s3cr3t-token_for.ringway";
const OTHER_TOKEN: &str = "second/token+2==";

/// A token file with both tokens, a comment and blank lines.
fn token_file(dir: &TempDir) -> PathBuf {
    let path = dir.join("tokens");
    std::fs::write(
        &path,
        format!("# collectors of team A\n{TOKEN}\n\n   # and B\n  {OTHER_TOKEN}  \n"),
    )
    .unwrap();
    path
}

fn start(dir: &TempDir, tokens: &Path, output: &Path) -> (Ringway, SocketAddr) {
    let input = format!("otlp:127.0.0.1:0,auth_token_file={}", p(tokens));
    start_listening(dir, &input, &file_output(output), &[])
}

/// curl posting a one-record OTLP/JSON request whose body is `body` with
/// `headers`: the HTTP status and the response's headers.
fn post(addr: SocketAddr, dir: &TempDir, body: &str, headers: &[&str]) -> (String, String) {
    let mut args = Vec::new();
    for header in headers {
        args.extend(["-H", *header]);
    }
    let said = curl(
        &format!("http://{addr}/v1/logs"),
        &json_request(dir, body),
        &args,
    );
    assert_eq!(said.code, 0, "curl failed: {}", said.stderr);
    (said.status, said.headers)
}

#[test]
fn curl_needs_a_bearer_token_from_the_file_and_refusals_are_401_and_counted() {
    if !curl_available() {
        return;
    }
    let dir = TempDir::new("otlp-auth-curl");
    let tokens = token_file(&dir);
    let output = dir.join("out.ndjson");
    let (ringway, addr) = start(&dir, &tokens, &output);
    let with = |token: &str| format!("Authorization: Bearer {token}");
    let (status, headers) = post(addr, &dir, "no-token", &[]);
    assert_eq!(status, "401", "{headers}");
    assert!(
        headers.contains("WWW-Authenticate: Bearer\r\n"),
        "401 without WWW-Authenticate: {headers}"
    );
    let (status, _) = post(
        addr,
        &dir,
        "wrong-token",
        &[&with("s3cr3t-token_for.ringwax")],
    );
    assert_eq!(status, "401");
    let (status, _) = post(addr, &dir, "basic", &["Authorization: Basic czNjcjN0"]);
    assert_eq!(status, "401");
    let (status, _) = post(addr, &dir, "first-token", &[&with(TOKEN)]);
    assert_eq!(status, "200");
    let (status, _) = post(addr, &dir, "second-token", &[&with(OTHER_TOKEN)]);
    assert_eq!(status, "200");
    let summary = stop(ringway, &dir);
    let records = parse_records(&read_output(&output), false, "bearer tokens");
    let bodies: Vec<&str> = records
        .iter()
        .map(|record| record["body"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(bodies, ["first-token", "second-token"]);
    assert_eq!(summary.input(0, "auth_refused"), 3, "{summary}");
    assert_eq!(http_count(&summary, "401"), 3, "{summary}");
    assert_eq!(http_count(&summary, "200"), 2, "{summary}");
    let stderr = read_stderr(&dir);
    assert!(
        stderr.contains("a request with no Authorization header refused with 401 (1 so far)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("a request with a wrong bearer token refused with 401 (2 so far)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("(3 so far)"),
        "warned at powers of two only: {stderr}"
    );
    assert!(!stderr.contains("s3cr3t"), "a token was printed: {stderr}");
}

#[test]
fn the_sdk_sends_its_bearer_token_in_headers_and_without_it_gets_401() {
    let Some(python) = sdk_python() else { return };
    let dir = TempDir::new("otlp-auth-sdk");
    let tokens = token_file(&dir);
    let output = dir.join("out.ndjson");
    let (ringway, addr) = start(&dir, &tokens, &output);
    let header = format!("Authorization: Bearer {TOKEN}");
    let sdk = sdk_spawn(&dir, &python, addr, 1_000, &["--header", &header]);
    let (result, sdk_stderr) = sdk.finish(Duration::from_secs(90));
    assert_sdk_delivered(&result, 1_000, &sdk_stderr);
    // Without the header every export is refused (401 is not retried).
    let refused = sdk_spawn(&dir, &python, addr, 10, &["--prefix", "refused"]);
    let (refused, _) = refused.finish(Duration::from_secs(90));
    assert_eq!(refused["exported_ok"], 0, "{refused}");
    assert_eq!(refused["export_failed"], 10, "{refused}");
    let summary = stop(ringway, &dir);
    let records = parse_records(&read_output(&output), false, "SDK with a token");
    check_sdk_records(&records, "record", 1_000, "SDK with a token");
    let failed_calls = refused["failed_calls"].as_u64().unwrap();
    assert!(failed_calls >= 1, "{refused}");
    assert_eq!(summary.input(0, "auth_refused"), failed_calls, "{summary}");
    assert_eq!(http_count(&summary, "401"), failed_calls, "{summary}");
}

#[test]
fn the_sdk_over_https_with_certificate_file_needs_its_bearer_token() {
    let Some(python) = sdk_python() else { return };
    let dir = TempDir::new("otlp-auth-https-sdk");
    let Some((server_ca, server)) = make_https_certificate(&dir, "server") else {
        return;
    };
    let tokens = token_file(&dir);
    let output = dir.join("out.ndjson");
    let options = format!(",auth_token_file={}", p(&tokens));
    let (ringway, addr) = start_tls(&dir, "otlp", &options, &server, &output, &[]);
    let endpoint = format!("https://{addr}/v1/logs");
    let certificate = p(&server_ca);
    let https = [
        "--endpoint",
        endpoint.as_str(),
        "--certificate-file",
        certificate.as_str(),
        "--timeout",
        "30",
    ];
    let header = format!("Authorization: Bearer {OTHER_TOKEN}");
    let mut with_token = https.to_vec();
    with_token.extend(["--header", header.as_str()]);
    let sdk = sdk_spawn(&dir, &python, addr, 1_000, &with_token);
    let (result, sdk_stderr) = sdk.finish(Duration::from_secs(90));
    assert_sdk_delivered(&result, 1_000, &sdk_stderr);
    let mut without_token = https.to_vec();
    without_token.extend(["--prefix", "refused"]);
    let refused = sdk_spawn(&dir, &python, addr, 10, &without_token);
    let (refused, _) = refused.finish(Duration::from_secs(90));
    assert_eq!(refused["exported_ok"], 0, "{refused}");
    assert_eq!(refused["export_failed"], 10, "{refused}");
    let summary = stop(ringway, &dir);
    let records = parse_records(&read_output(&output), false, "SDK over HTTPS with a token");
    check_sdk_records(&records, "record", 1_000, "SDK over HTTPS with a token");
    let failed_calls = refused["failed_calls"].as_u64().unwrap();
    assert!(failed_calls >= 1, "{refused}");
    assert_eq!(summary.input(0, "auth_refused"), failed_calls, "{summary}");
    assert_eq!(http_count(&summary, "401"), failed_calls, "{summary}");
    assert!(summary.input(0, "tls_handshakes") >= 2, "{summary}");
    assert_eq!(summary.input(0, "tls_handshake_errors"), 0, "{summary}");
}

#[test]
fn a_missing_or_empty_token_file_is_one_line_and_exit_2_and_check_hides_tokens() {
    let dir = TempDir::new("otlp-auth-files");
    let missing = dir.join("missing-tokens");
    let empty = dir.join("empty-tokens");
    std::fs::write(&empty, "# nothing here yet\n\n").unwrap();
    for (path, says) in [
        (&missing, "No such file or directory"),
        (&empty, "no token in it"),
    ] {
        let input = format!("otlp:127.0.0.1:0,auth_token_file={}", p(path));
        for command in ["run", "check"] {
            let finished = run(
                &dir,
                &[command, "--input", &input, "--output", "null"],
                TIMEOUT,
            );
            finished.assert_code(2);
            let lines: Vec<&str> = finished.stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{command} {input}: {lines:?}");
            let expected = format!("input '{input}': auth_token_file {}: {says}", p(path));
            assert!(
                lines[0].starts_with("ringway: error: ") && lines[0].contains(&expected),
                "{command}: expected {expected:?} in {lines:?}"
            );
        }
    }
    let tokens = token_file(&dir);
    let input = format!("otlp:127.0.0.1:0,auth_token_file={}", p(&tokens));
    let finished = run(&dir, &["check", "--input", &input], TIMEOUT);
    finished.assert_success();
    let printed = String::from_utf8_lossy(&finished.stdout);
    assert!(
        printed.contains(&format!("auth_token_file = \"{}\"", p(&tokens))),
        "{printed}"
    );
    assert!(
        !printed.contains(TOKEN) && !printed.contains(OTHER_TOKEN),
        "{printed}"
    );
}
