//! TLS and headers on the network outputs (issue 17, client side):
//! ringway → `otlp:https://` → a second ringway's `otlp:…,tls` input, and
//! `tcp:…,tls` → a ringway `tcp:…,tls` input, both with mutual TLS (the
//! receiver requires a client certificate); `https://` NDJSON posts to
//! Python's HTTPS server (tests/outputs/receiver.py with `--tls-cert`),
//! with `--output-header`; a CA that did not sign the server's
//! certificate is retried, counted and logged, and delivers nothing;
//! `server_name=` decides the name checked; `insecure_skip_verify=true`
//! delivers and warns; a bearer token required by the receiver arrives
//! as a header. Bad values of each option and flag are one line and exit 2,
//! and `ringway check` never prints a header's value.
//!
//! Certificates are made in each test with `openssl req`/`openssl x509`;
//! without openssl a test prints "not run" and passes, except under CI.

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const OPENSSL_CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = ringway test
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:logs.ringway.test
";

/// A certificate and its key (PEM files).
struct Pair {
    cert: PathBuf,
    key: PathBuf,
}

/// The test's PKI: a CA, a server certificate for 127.0.0.1, localhost and
/// logs.ringway.test and a client certificate it signed, and a second CA
/// that signed nothing of the server's.
struct Pki {
    ca: Pair,
    server: Pair,
    client: Pair,
    other_ca: Pair,
}

fn openssl(args: &[&str]) -> Option<()> {
    match Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) => {
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            Some(())
        }
        Err(error) => {
            not_run(&format!("openssl ({error}; scripts/test.sh installs it)"));
            None
        }
    }
}

fn make_ca(dir: &TempDir, name: &str) -> Option<Pair> {
    let config = dir.join("openssl.cnf");
    fs::write(&config, OPENSSL_CONFIG).unwrap();
    let pair = Pair {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    openssl(&[
        "req",
        "-x509",
        "-config",
        &p(&config),
        "-extensions",
        "ca",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        &p(&pair.key),
        "-out",
        &p(&pair.cert),
    ])?;
    Some(pair)
}

fn make_signed(dir: &TempDir, name: &str, ca: &Pair, extensions: &str) -> Option<Pair> {
    let config = dir.join("openssl.cnf");
    let pair = Pair {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    let request = dir.join(format!("{name}.csr"));
    openssl(&[
        "req",
        "-new",
        "-config",
        &p(&config),
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        &p(&pair.key),
        "-out",
        &p(&request),
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p(&request),
        "-CA",
        &p(&ca.cert),
        "-CAkey",
        &p(&ca.key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p(&config),
        "-extensions",
        extensions,
        "-out",
        &p(&pair.cert),
    ])?;
    Some(pair)
}

fn make_pki(dir: &TempDir) -> Option<Pki> {
    let ca = make_ca(dir, "ca")?;
    let server = make_signed(dir, "server", &ca, "server")?;
    let client = make_signed(dir, "client", &ca, "client")?;
    let other_ca = make_ca(dir, "other-ca")?;
    Some(Pki {
        ca,
        server,
        client,
        other_ca,
    })
}

/// A ringway receiving on `KIND:127.0.0.1:0,tls` with the PKI's server
/// certificate (`options` appended to the SPEC), writing to `output`.
fn start_receiver(
    dir: &TempDir,
    kind: &str,
    pki: &Pki,
    options: &str,
    output: &Path,
) -> (Ringway, std::net::SocketAddr) {
    let input = format!(
        "{kind}:127.0.0.1:0,tls,cert={},key={}{options}",
        p(&pki.server.cert),
        p(&pki.server.key)
    );
    start_listening(dir, &input, &file_output(output), &[])
}

/// `ringway run` of the file `input` to `output` with `--exit-on-eof`;
/// its summary (`DIR/sender.json`) and stderr.
fn send_file(dir: &TempDir, input: &Path, output: &str, extra: &[&str]) -> (Summary, String) {
    let summary = dir.join("sender.json");
    let input_spec = format!("file:{}", p(input));
    let summary_arg = p(&summary);
    let mut args = vec![
        "run",
        "--input",
        &input_spec,
        "--output",
        output,
        "--exit-on-eof",
        "--stats-interval",
        "0",
        "--summary-json",
        &summary_arg,
    ];
    args.extend_from_slice(extra);
    let done = run(dir, &args, TIMEOUT);
    done.assert_success();
    (read_summary(&summary), done.stderr)
}

/// The bodies of the OTLP input's NDJSON records in `path`.
fn bodies(path: &Path) -> Vec<String> {
    split_lines(&fs::read(path).unwrap_or_default())
        .iter()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_slice(line).unwrap();
            record["body"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Every line of `input` is among `got` exactly once, and nothing else is.
fn assert_each_line_once(input: &[u8], got: &[String], context: &str) {
    let mut want: Vec<&str> = std::str::from_utf8(input).unwrap().lines().collect();
    let mut got: Vec<&str> = got.iter().map(String::as_str).collect();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got.len(), want.len(), "{context}: line count");
    assert!(got == want, "{context}: the lines differ");
}

/// Waits until the file `path` has `count` lines.
fn wait_for_lines(path: &Path, count: usize) -> bool {
    wait_until(Duration::from_secs(30), || {
        split_lines(&fs::read(path).unwrap_or_default()).len() >= count
    })
}

#[test]
fn otlp_https_output_delivers_each_record_once_to_a_tls_otlp_input_requiring_a_client_certificate()
{
    let dir = TempDir::new("out-tls-otlp-mtls");
    let Some(pki) = make_pki(&dir) else { return };
    let received = dir.join("received.ndjson");
    let client_ca = format!(",client_ca={}", p(&pki.ca.cert));
    let (receiver, addr) = start_receiver(&dir, "otlp", &pki, &client_ca, &received);
    let input = dir.join("in.log");
    let count = 50_000;
    let lines = numbered_lines("otlp-mtls", 0..count);
    fs::write(&input, &lines).unwrap();
    let output = format!(
        "otlp:https://127.0.0.1:{}/v1/logs,gzip,ca={},cert={},key={}",
        addr.port(),
        p(&pki.ca.cert),
        p(&pki.client.cert),
        p(&pki.client.key)
    );
    let (sender, _) = send_file(&dir, &input, &output, &[]);
    assert_eq!(sender.output(0, "records"), count, "{sender}");
    assert_eq!(sender.output(0, "rejects"), 0, "{sender}");
    assert!(wait_for_lines(&received, count as usize));
    let summary = stop(receiver, &dir);
    assert_eq!(summary.input(0, "records"), count, "{summary}");
    assert_each_line_once(&lines, &bodies(&received), "otlp over mutual TLS");
}

#[test]
fn tcp_tls_output_delivers_every_line_in_order_to_a_tls_tcp_input_requiring_a_client_certificate() {
    let dir = TempDir::new("out-tls-tcp-mtls");
    let Some(pki) = make_pki(&dir) else { return };
    let received = dir.join("received.log");
    let client_ca = format!(",client_ca={}", p(&pki.ca.cert));
    let (receiver, addr) = start_receiver(&dir, "tcp", &pki, &client_ca, &received);
    let input = dir.join("in.log");
    // Several MiB: many TLS records, and batches larger than rustls's
    // send buffer.
    let count = 200_000;
    let lines = numbered_lines("tcp-mtls", 0..count);
    fs::write(&input, &lines).unwrap();
    let output = format!(
        "tcp:127.0.0.1:{},tls,ca={},cert={},key={}",
        addr.port(),
        p(&pki.ca.cert),
        p(&pki.client.cert),
        p(&pki.client.key)
    );
    let (sender, _) = send_file(&dir, &input, &output, &["--output-workers", "3"]);
    assert_eq!(sender.output(0, "records"), count, "{sender}");
    assert!(wait_for_lines(&received, count as usize));
    stop(receiver, &dir);
    assert_bytes_identical(&lines, &fs::read(&received).unwrap(), "tcp over mutual TLS");
}

#[test]
fn tcp_tls_output_without_the_client_certificate_the_receiver_requires_delivers_nothing_and_retries()
 {
    let dir = TempDir::new("out-tls-tcp-no-client-cert");
    let Some(pki) = make_pki(&dir) else { return };
    let received = dir.join("received.log");
    let client_ca = format!(",client_ca={}", p(&pki.ca.cert));
    let (receiver, addr) = start_receiver(&dir, "tcp", &pki, &client_ca, &received);
    let input = dir.join("in.log");
    fs::write(&input, numbered_lines("no-cert", 0..100)).unwrap();
    let output = format!("tcp:127.0.0.1:{},tls,ca={}", addr.port(), p(&pki.ca.cert));
    let (stderr, summary) = send_until_failing(&dir, &input, &output, &[]);
    assert!(summary.output(0, "retries") > 0, "{summary}");
    assert!(
        stderr.contains("failed to write"),
        "the failure is logged: {stderr}"
    );
    stop(receiver, &dir);
    assert_eq!(file_len(&received), 0, "nothing arrived");
}

/// Runs ringway from the file `input` to `output` (which must keep
/// failing), waits for its retry warning, stops it (SIGTERM, a 1 s drain
/// that cannot finish) and returns its stderr and summary.
fn send_until_failing(
    dir: &TempDir,
    input: &Path,
    output: &str,
    extra: &[&str],
) -> (String, Summary) {
    let summary = dir.join("failing.json");
    let input_spec = format!("file:{}", p(input));
    let summary_arg = p(&summary);
    let mut args = vec![
        "run",
        "--input",
        &input_spec,
        "--output",
        output,
        "--stats-interval",
        "0",
        "--summary-json",
        &summary_arg,
        "--retry-initial",
        "50ms",
        "--retry-max",
        "200ms",
        "--shutdown-timeout",
        "1s",
    ];
    args.extend_from_slice(extra);
    let ringway = spawn(dir, &args);
    let warned = wait_until(Duration::from_secs(30), || {
        ringway.stderr_now().matches("failed to write").count() >= 2
    });
    assert!(warned, "no retry warning: {}", ringway.stderr_now());
    ringway.terminate();
    let done = ringway.wait(TIMEOUT);
    assert_eq!(
        done.code(),
        Some(1),
        "the drain cannot finish: {}",
        done.stderr
    );
    (done.stderr, read_summary(&summary))
}

#[test]
fn a_ca_that_did_not_sign_the_servers_certificate_is_retried_counted_and_logged_and_delivers_nothing()
 {
    let dir = TempDir::new("out-tls-wrong-ca");
    let Some(pki) = make_pki(&dir) else { return };
    let received = dir.join("received.ndjson");
    let (receiver, addr) = start_receiver(&dir, "otlp", &pki, "", &received);
    let input = dir.join("in.log");
    fs::write(&input, numbered_lines("wrong-ca", 0..100)).unwrap();
    let output = format!(
        "otlp:https://127.0.0.1:{}/v1/logs,ca={}",
        addr.port(),
        p(&pki.other_ca.cert)
    );
    let (stderr, summary) = send_until_failing(&dir, &input, &output, &[]);
    assert!(summary.output(0, "retries") >= 2, "{summary}");
    assert!(summary.output(0, "write_errors") >= 2, "{summary}");
    assert_eq!(summary.output(0, "records"), 0, "{summary}");
    let line = stderr
        .lines()
        .find(|line| line.contains("failed to write"))
        .unwrap_or_default();
    assert!(
        line.contains("TLS handshake with 127.0.0.1") && line.contains("UnknownIssuer"),
        "the log line says why: {stderr}"
    );
    stop(receiver, &dir);
    assert_eq!(file_len(&received), 0, "nothing arrived");
}

#[test]
fn server_name_sets_the_name_checked_and_a_name_the_certificate_lacks_is_refused() {
    let dir = TempDir::new("out-tls-server-name");
    let Some(pki) = make_pki(&dir) else { return };
    let received = dir.join("received.log");
    let (receiver, addr) = start_receiver(&dir, "tcp", &pki, "", &received);
    let input = dir.join("in.log");
    let lines = numbered_lines("server-name", 0..1_000);
    fs::write(&input, &lines).unwrap();
    let ca = p(&pki.ca.cert);
    let port = addr.port();
    // The certificate's DNS name, though the address is 127.0.0.1.
    let (sender, _) = send_file(
        &dir,
        &input,
        &format!("tcp:127.0.0.1:{port},tls,ca={ca},server_name=logs.ringway.test"),
        &[],
    );
    assert_eq!(sender.output(0, "records"), 1_000, "{sender}");
    assert!(wait_for_lines(&received, 1_000));
    // A name the certificate does not carry.
    let (stderr, summary) = send_until_failing(
        &dir,
        &input,
        &format!("tcp:127.0.0.1:{port},tls,ca={ca},server_name=other.ringway.test"),
        &[],
    );
    assert!(summary.output(0, "retries") > 0, "{summary}");
    assert!(
        stderr.contains("not valid for name"),
        "the log line says why: {stderr}"
    );
    stop(receiver, &dir);
    assert_bytes_identical(&lines, &fs::read(&received).unwrap(), "only the good run");
}

#[test]
fn insecure_skip_verify_delivers_to_an_unknown_certificate_and_warns_in_run_and_check() {
    let dir = TempDir::new("out-tls-insecure");
    let Some(pki) = make_pki(&dir) else { return };
    let received = dir.join("received.ndjson");
    let (receiver, addr) = start_receiver(&dir, "otlp", &pki, "", &received);
    let input = dir.join("in.log");
    let lines = numbered_lines("insecure", 0..1_000);
    fs::write(&input, &lines).unwrap();
    // No ca=: the system's CAs did not sign the test's certificate.
    let output = format!(
        "otlp:https://127.0.0.1:{}/v1/logs,insecure_skip_verify=true",
        addr.port()
    );
    let (sender, stderr) = send_file(&dir, &input, &output, &[]);
    assert_eq!(sender.output(0, "records"), 1_000, "{sender}");
    assert!(
        stderr.contains("warning") && stderr.contains("insecure_skip_verify=true"),
        "run warns: {stderr}"
    );
    let checked = run(
        &dir,
        &[
            "check",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &output,
        ],
        TIMEOUT,
    );
    checked.assert_success();
    assert!(
        checked.stderr.contains("warning") && checked.stderr.contains("insecure_skip_verify=true"),
        "check warns: {}",
        checked.stderr
    );
    assert!(wait_for_lines(&received, 1_000));
    // Without it, the same server is refused: its CA is not the system's.
    let (stderr, _) = send_until_failing(
        &dir,
        &input,
        &format!("otlp:https://127.0.0.1:{}/v1/logs", addr.port()),
        &[],
    );
    assert!(stderr.contains("TLS handshake"), "{stderr}");
    stop(receiver, &dir);
    assert_each_line_once(&lines, &bodies(&received), "insecure_skip_verify");
}

#[test]
fn a_bearer_token_the_receiver_requires_arrives_only_with_output_header() {
    let dir = TempDir::new("out-tls-bearer");
    let Some(pki) = make_pki(&dir) else { return };
    let tokens = dir.join("tokens");
    fs::write(&tokens, "t0ken-for-ringway\n").unwrap();
    let received = dir.join("received.ndjson");
    let auth = format!(",auth_token_file={}", p(&tokens));
    let (receiver, addr) = start_receiver(&dir, "otlp", &pki, &auth, &received);
    let input = dir.join("in.log");
    let lines = numbered_lines("bearer", 0..2_000);
    fs::write(&input, &lines).unwrap();
    let output = format!(
        "otlp:https://localhost:{}/v1/logs,ca={}",
        addr.port(),
        p(&pki.ca.cert)
    );
    // Without the header: 401, a reject (not retried), nothing delivered.
    let (refused, _) = send_file(&dir, &input, &output, &[]);
    assert!(refused.output(0, "rejects") > 0, "{refused}");
    assert_eq!(refused.output(0, "records"), 0, "{refused}");
    assert_eq!(file_len(&received), 0);
    // With it: every record, once.
    let (sender, stderr) = send_file(
        &dir,
        &input,
        &output,
        &[
            "--output-header",
            "1=Authorization: Bearer t0ken-for-ringway",
        ],
    );
    assert_eq!(sender.output(0, "records"), 2_000, "{sender}");
    assert_eq!(sender.output(0, "rejects"), 0, "{sender}");
    assert!(
        !stderr.contains("t0ken"),
        "the token is never printed: {stderr}"
    );
    assert!(wait_for_lines(&received, 2_000));
    stop(receiver, &dir);
    assert_each_line_once(&lines, &bodies(&received), "with the bearer token");
}

/// tests/outputs/receiver.py serving HTTPS in NDJSON mode; its "ready
/// PORT" line read. Returns the child, the port, and its --out and --log.
fn python_https_receiver(dir: &TempDir, pki: &Pki) -> Option<(Child, u16, PathBuf, PathBuf)> {
    let python = test_python(
        "import opentelemetry.proto.collector.logs.v1.logs_service_pb2, ssl",
        "opentelemetry-proto",
    )?;
    let (out, log, stdout) = (
        dir.join("py-received.ndjson"),
        dir.join("py-requests.ndjson"),
        dir.join("py.stdout"),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/outputs/receiver.py");
    let child = Command::new(python)
        .arg(script)
        .args(["--mode", "ndjson", "--port", "0"])
        .arg("--out")
        .arg(&out)
        .arg("--log")
        .arg(&log)
        .arg("--tls-cert")
        .arg(&pki.server.cert)
        .arg("--tls-key")
        .arg(&pki.server.key)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout).unwrap())
        .stderr(fs::File::create(dir.join("py.stderr")).unwrap())
        .spawn()
        .expect("spawn receiver.py");
    let mut port = 0;
    let ready = wait_until(Duration::from_secs(20), || {
        let text = fs::read_to_string(&stdout).unwrap_or_default();
        match text.strip_prefix("ready ").map(|rest| rest.trim().parse()) {
            Some(Ok(bound)) => {
                port = bound;
                true
            }
            _ => false,
        }
    });
    assert!(
        ready,
        "receiver.py did not start: {}",
        fs::read_to_string(dir.join("py.stderr")).unwrap_or_default()
    );
    Some((child, port, out, log))
}

#[test]
fn https_output_posts_ndjson_with_its_headers_to_pythons_https_server() {
    let dir = TempDir::new("out-tls-https-python");
    let Some(pki) = make_pki(&dir) else { return };
    let Some((mut child, port, out, log)) = python_https_receiver(&dir, &pki) else {
        return;
    };
    let input = dir.join("in.log");
    let lines = numbered_lines("https-ndjson", 0..20_000);
    fs::write(&input, &lines).unwrap();
    let config = dir.join("ringway.toml");
    fs::write(
        &config,
        format!(
            "[[output]]\nkind = \"http\"\nurl = \"https://localhost:{port}/ingest\"\nca = \"{}\"\nheaders = {{ X-Tenant = \"team-a\", User-Agent = \"from-config\" }}\n",
            p(&pki.ca.cert)
        ),
    )
    .unwrap();
    let summary = dir.join("https.json");
    let done = run(
        &dir,
        &[
            "run",
            "--config",
            &p(&config),
            "--input",
            &format!("file:{}", p(&input)),
            "--exit-on-eof",
            "--stats-interval",
            "0",
            "--batch-bytes",
            "64KiB",
            "--summary-json",
            &p(&summary),
            "--output-header",
            "1=Authorization: Bearer py-secret",
            "--output-header",
            "1=User-Agent: ringway-test",
        ],
        TIMEOUT,
    );
    let _ = child.kill();
    let _ = child.wait();
    done.assert_success();
    assert_eq!(read_summary(&summary).output(0, "records"), 20_000);
    let got: Vec<String> = split_lines(&fs::read(&out).unwrap())
        .iter()
        .map(|line| String::from_utf8(line.to_vec()).unwrap())
        .collect();
    assert_each_line_once(&lines, &got, "https NDJSON");
    let requests: Vec<serde_json::Value> = split_lines(&fs::read(&log).unwrap())
        .iter()
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    assert!(requests.len() > 1, "several requests: {}", requests.len());
    for request in &requests {
        assert_eq!(request["authorization"], "Bearer py-secret", "{request}");
        // The command line's User-Agent replaced the file's and ringway's.
        assert_eq!(request["user_agent"], "ringway-test", "{request}");
        assert_eq!(request["content_type"], "application/x-ndjson");
    }
}

#[test]
fn check_prints_header_names_and_tls_keys_but_never_a_header_value() {
    let dir = TempDir::new("out-tls-check-redacts");
    let Some(pki) = make_pki(&dir) else { return };
    let config = dir.join("ringway.toml");
    fs::write(
        &config,
        format!(
            "[[input]]\nkind = \"file\"\npath = \"/var/log/x.log\"\n\n[[output]]\nkind = \"otlp\"\nurl = \"https://collector.example:4318/v1/logs\"\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\nserver_name = \"logs.ringway.test\"\nheaders = {{ Authorization = \"Bearer file-secret\" }}\n\n[[output]]\nkind = \"tcp\"\naddress = \"127.0.0.1:6514\"\ntls = true\nca = \"{ca}\"\n",
            ca = p(&pki.ca.cert),
            cert = p(&pki.client.cert),
            key = p(&pki.client.key)
        ),
    )
    .unwrap();
    let done = run(
        &dir,
        &[
            "check",
            "--config",
            &p(&config),
            "--output-header",
            "1=X-Api-Key: flag-secret",
        ],
        TIMEOUT,
    );
    done.assert_success();
    let stdout = String::from_utf8_lossy(&done.stdout);
    for secret in ["file-secret", "flag-secret"] {
        assert!(
            !stdout.contains(secret) && !done.stderr.contains(secret),
            "{secret} printed:\n{stdout}\n{}",
            done.stderr
        );
    }
    for shown in [
        "url = \"https://collector.example:4318/v1/logs\"",
        "Authorization = \"<redacted>\"",
        "X-Api-Key = \"<redacted>\"",
        "server_name = \"logs.ringway.test\"",
        "tls = true",
        &format!("ca = \"{}\"", p(&pki.ca.cert)),
    ] {
        assert!(stdout.contains(shown), "{shown}:\n{stdout}");
    }
}

#[test]
fn bad_tls_options_and_headers_are_one_line_and_exit_2() {
    let dir = TempDir::new("out-tls-bad-values");
    let Some(pki) = make_pki(&dir) else { return };
    let input = dir.join("in.log");
    fs::write(&input, "x\n").unwrap();
    let not_pem = dir.join("not.pem");
    fs::write(&not_pem, "hello\n").unwrap();
    let missing = p(&dir.join("missing.pem"));
    let (ca, cert, key) = (p(&pki.ca.cert), p(&pki.client.cert), p(&pki.client.key));
    let other_key = p(&pki.other_ca.key);
    let url = "https://127.0.0.1:1/in";
    let cases: Vec<(String, Vec<String>, &str)> = vec![
        (format!("{url},ca={missing}"), vec![], "missing.pem"),
        (
            format!("{url},ca={}", p(&not_pem)),
            vec![],
            "no certificate",
        ),
        (
            format!("{url},cert={missing},key={key}"),
            vec![],
            "missing.pem",
        ),
        (
            format!("{url},cert={cert},key={}", p(&not_pem)),
            vec![],
            "no private key",
        ),
        (
            format!("{url},cert={cert},key={other_key}"),
            vec![],
            "does not go with",
        ),
        (
            format!("{url},cert={cert}"),
            vec![],
            "both cert=FILE and key=FILE",
        ),
        (format!("{url},server_name=bad name"), vec![], "server_name"),
        (
            format!("{url},insecure_skip_verify=yes"),
            vec![],
            "true or false",
        ),
        (format!("{url},ca="), vec![], "ca= needs a value"),
        (format!("http://127.0.0.1:1/in,ca={ca}"), vec![], "need TLS"),
        (format!("tcp:127.0.0.1:1,ca={ca}"), vec![], "need TLS"),
        (
            format!("tcp:127.0.0.1:1,tls,ca={ca},verify=no"),
            vec![],
            "unknown option 'verify'",
        ),
        (
            url.to_string(),
            vec!["--output-header".into(), "Authorization: x".into()],
            "not N=NAME: VALUE",
        ),
        (
            url.to_string(),
            vec!["--output-header".into(), "2=X-A: b".into()],
            "no output 2",
        ),
        (
            url.to_string(),
            vec!["--output-header".into(), "1=Content-Length: 5".into()],
            "set by ringway itself",
        ),
        (
            url.to_string(),
            vec!["--output-header".into(), "1=Host: evil".into()],
            "set by ringway itself",
        ),
        (
            url.to_string(),
            vec!["--output-header".into(), "1=X-A: a\rX-B: b".into()],
            "CR or LF",
        ),
        (
            url.to_string(),
            vec!["--output-header".into(), "1=Bad Name: b".into()],
            "not a valid HTTP header name",
        ),
        (
            url.to_string(),
            vec![
                "--output-header".into(),
                "1=X-A: 1".into(),
                "--output-header".into(),
                "1=x-a: 2".into(),
            ],
            "given twice",
        ),
        (
            format!("tcp:127.0.0.1:1,tls,ca={ca}"),
            vec!["--output-header".into(), "1=X-A: b".into()],
            "not an http or otlp output",
        ),
        (
            "stdout".to_string(),
            vec!["--output-header".into(), "1=X-A: b".into()],
            "not an http or otlp output",
        ),
    ];
    let input_spec = format!("file:{}", p(&input));
    for subcommand in ["run", "check"] {
        for (output, extra, says) in &cases {
            let mut args = vec![subcommand, "--input", &input_spec, "--output", output];
            if subcommand == "run" {
                args.push("--exit-on-eof");
            }
            args.extend(extra.iter().map(String::as_str));
            let done = run(&dir, &args, TIMEOUT);
            done.assert_code(2);
            let lines: Vec<&str> = done.stderr.lines().collect();
            assert_eq!(
                lines.len(),
                1,
                "{subcommand} {output} {extra:?}: {}",
                done.stderr
            );
            assert!(lines[0].contains(says), "{output} {extra:?}: {}", lines[0]);
        }
    }
    // The same in a config file: the key is named.
    for (table, says) in [
        (
            "kind = \"http\"\nurl = \"https://h/\"\nheaders = { \"Bad Name\" = \"x\" }",
            "headers",
        ),
        (
            "kind = \"http\"\nurl = \"https://h/\"\nheaders = { Connection = \"close\" }",
            "set by ringway itself",
        ),
        (
            "kind = \"http\"\nurl = \"https://h/\"\nheaders = { X-A = 1 }",
            "must be a string",
        ),
        (
            "kind = \"http\"\nurl = \"https://h/\"\nheaders = \"X-A: 1\"",
            "must be a table",
        ),
        (
            "kind = \"tcp\"\naddress = \"h:1\"\nheaders = { X-A = \"1\" }",
            "'headers' does not apply",
        ),
        (
            "kind = \"file\"\npath = \"/tmp/x\"\nca = \"/ca.pem\"",
            "'ca' does not apply",
        ),
        (
            "kind = \"http\"\nurl = \"https://h/\"\ninsecure_skip_verify = \"yes\"",
            "true or false",
        ),
        (
            "kind = \"http\"\nurl = \"http://h/\"\ntls = true",
            "'tls' does not apply",
        ),
        (
            "kind = \"tcp\"\naddress = \"h:1\"\nca = \"/ca.pem\"",
            "need TLS",
        ),
        (
            &format!("kind = \"otlp\"\nurl = \"https://h/\"\nca = \"{missing}\""),
            "missing.pem",
        ),
    ] {
        let config = dir.join("bad.toml");
        fs::write(
            &config,
            format!(
                "[[input]]\nkind = \"file\"\npath = \"{}\"\n[[output]]\n{table}\n",
                p(&input)
            ),
        )
        .unwrap();
        let done = run(&dir, &["check", "--config", &p(&config)], TIMEOUT);
        done.assert_code(2);
        let lines: Vec<&str> = done.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{table}: {}", done.stderr);
        assert!(lines[0].contains(says), "{table}: {}", lines[0]);
    }
}

/// Python's TLS server (its ssl module, i.e. OpenSSL) with the PKI's
/// server certificate and a small receive buffer: it reads one piece,
/// stops reading for `pause_s` seconds, then reads to the end into
/// `out`, and writes "second connection" to its stderr if another came.
const PAUSING_SERVER: &str = r#"
import socket, ssl, sys, time
cert, key, out, pause = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
listener.bind(("127.0.0.1", 0))
listener.listen()
print("ready %d" % listener.getsockname()[1], flush=True)
connection = context.wrap_socket(listener.accept()[0], server_side=True)
with open(out, "wb") as received:
    received.write(connection.recv(65536))
    time.sleep(pause)
    while True:
        try:
            piece = connection.recv(65536)
        except (ssl.SSLEOFError, ConnectionResetError):
            break
        if not piece:
            break
        received.write(piece)
listener.settimeout(0.5)
try:
    listener.accept()
    print("second connection", file=sys.stderr, flush=True)
except OSError:
    pass
"#;

#[test]
fn tcp_tls_output_rides_out_a_receiver_that_stops_reading_without_repeating_or_losing_a_byte() {
    // A send timeout over TLS is backpressure too: the records rustls
    // could not send stay in it and go first on the same connection, so
    // the TLS stream stays intact (a repeated or missing record would
    // fail its authentication) and every line arrives once, in order.
    // The server is Python's (OpenSSL), which also sends session tickets
    // and answers the key update of the handshake's confirmation.
    let dir = TempDir::new("out-tls-tcp-pause");
    let Some(pki) = make_pki(&dir) else { return };
    let Some(python) = test_python("import ssl", "Python's ssl module") else {
        return;
    };
    let (received, stdout, stderr) = (
        dir.join("received.log"),
        dir.join("server.stdout"),
        dir.join("server.stderr"),
    );
    let mut server = Command::new(python)
        .args(["-c", PAUSING_SERVER])
        .arg(&pki.server.cert)
        .arg(&pki.server.key)
        .arg(&received)
        .arg("4")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout).unwrap())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("spawn python");
    let mut port = 0u16;
    let ready = wait_until(Duration::from_secs(20), || {
        let text = fs::read_to_string(&stdout).unwrap_or_default();
        match text.strip_prefix("ready ").map(|rest| rest.trim().parse()) {
            Some(Ok(bound)) => {
                port = bound;
                true
            }
            _ => false,
        }
    });
    assert!(ready, "{}", fs::read_to_string(&stderr).unwrap_or_default());
    let input = dir.join("in.log");
    // Far more than the kernel's socket buffers hold, so writes must wait.
    let lines = numbered_lines("tls-pause", 0..1_000_000);
    fs::write(&input, &lines).unwrap();
    let started = std::time::Instant::now();
    let (summary, _) = send_file(
        &dir,
        &input,
        &format!("tcp:localhost:{port},tls,ca={}", p(&pki.ca.cert)),
        &["--output-timeout", "1s"],
    );
    assert_eq!(summary.output(0, "records"), 1_000_000, "{summary}");
    // The pause was felt: ringway could not finish before the server
    // read again. (Whether a send timed out with nothing sent, a retry,
    // or each send ended a second later with a few KiB, as the kernel
    // frees them, varies from run to run: either way no send waits past
    // --output-timeout without progress.)
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "finished in {:?}: {summary}",
        started.elapsed()
    );
    let status = server.wait().unwrap();
    let errors = fs::read_to_string(&stderr).unwrap_or_default();
    assert!(status.success(), "{errors}");
    assert!(
        !errors.contains("second connection"),
        "the connection was kept"
    );
    assert_bytes_identical(
        &lines,
        &fs::read(&received).unwrap(),
        "tcp over TLS across a pause",
    );
}
