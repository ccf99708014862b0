//! What the TLS tests share (`tls`, `mtls`, `otlp_tls`, `otlp_auth`,
//! `tls_reload`): certificates made with `openssl req`, `openssl x509
//! -req` and `openssl ca` (a self-signed one, a CA, client and server
//! certificates it signed, an expired one), ringway started with a TLS
//! input, the real clients (`openssl s_client`, curl) driven the same way
//! everywhere, and what the tests read back (stderr, a /metrics sample).
//!
//! openssl is installed by scripts/test.sh; without it
//! [`make_certificate`] (which every test calls first) prints "not run:
//! ..." and the test passes, except under CI, where it fails.

use crate::common::*;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A certificate and its private key, as files.
pub(crate) type KeyPair = (PathBuf, PathBuf);

/// The openssl config the test CAs and certificates are made with: a CA
/// that may sign, a client certificate for client auth and a server
/// certificate for 127.0.0.1 (clients check its subjectAltName), each as
/// strict X.509 checkers (Python's, OpenSSL's strict mode) want them; and
/// a minimal `openssl ca` set-up for certificates with given dates.
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
subjectAltName = IP:127.0.0.1,DNS:localhost
[dated]
database = ca-db/index.txt
new_certs_dir = ca-db
serial = ca-db/serial
default_md = sha256
policy = any
[any]
commonName = supplied
";

/// Runs openssl in `dir` with `args`; panics with its stderr when it fails.
fn openssl(dir: &TempDir, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// [`OPENSSL_CONFIG`], written into `dir` once.
fn config(dir: &TempDir) -> String {
    let path = dir.join("openssl.cnf");
    if !path.exists() {
        std::fs::write(&path, OPENSSL_CONFIG).unwrap();
    }
    p(&path)
}

/// A new P-256 key for `name` and, with `x509`, a self-signed certificate
/// (else a certificate request) with `extra` arguments.
fn new_key(dir: &TempDir, name: &str, x509: bool, extra: &[&str]) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let out = dir.join(format!("{name}.{}", if x509 { "crt" } else { "csr" }));
    let config = config(dir);
    let mut args = vec!["req", if x509 { "-x509" } else { "-new" }, "-config"];
    args.extend([config.as_str(), "-newkey", "ec", "-pkeyopt"]);
    args.extend(["ec_paramgen_curve:P-256", "-nodes"]);
    args.extend_from_slice(extra);
    let (key_arg, out_arg) = (p(&key), p(&out));
    args.extend(["-keyout", &key_arg, "-out", &out_arg]);
    openssl(dir, &args);
    (out, key)
}

/// A self-signed certificate for CN=localhost and its key, made by
/// `openssl req` in `dir`; `None` (after "not run") when openssl is
/// missing.
pub(crate) fn make_certificate(dir: &TempDir, name: &str) -> Option<KeyPair> {
    if let Err(error) = Command::new("openssl").arg("version").output() {
        not_run(&format!("openssl ({error}; scripts/test.sh installs it)"));
        return None;
    }
    // openssl's own config: its v3_ca extensions let the certificate be
    // its own trust anchor (rsyslog's TLS driver is given it as its CA).
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let (cert_arg, key_arg) = (p(&cert), p(&key));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &key_arg,
            "-out",
            &cert_arg,
        ],
    );
    Some((cert, key))
}

/// A CA named `name` (certificate and key) in `dir`. Called after
/// [`make_certificate`], which says "not run" when openssl is missing.
pub(crate) fn make_ca(dir: &TempDir, name: &str) -> KeyPair {
    let subject = format!("/CN={name}");
    new_key(
        dir,
        name,
        true,
        &["-extensions", "ca", "-days", "2", "-subj", &subject],
    )
}

/// A client certificate named `name` that the CA `ca` signed.
pub(crate) fn make_client(dir: &TempDir, name: &str, ca: &KeyPair) -> KeyPair {
    make_signed(dir, name, ca, "client")
}

/// A server certificate for 127.0.0.1 with CN=`name` that the CA `ca`
/// signed (a new key each time).
pub(crate) fn make_server(dir: &TempDir, name: &str, ca: &KeyPair) -> KeyPair {
    make_signed(dir, name, ca, "server")
}

/// A certificate with CN=`name` and the `extensions` section of
/// [`OPENSSL_CONFIG`], signed by the CA `ca`.
fn make_signed(dir: &TempDir, name: &str, ca: &KeyPair, extensions: &str) -> KeyPair {
    let subject = format!("/CN={name}");
    let (request, key) = new_key(dir, name, false, &["-subj", &subject]);
    let cert = dir.join(format!("{name}.crt"));
    let (config, request, cert_arg) = (config(dir), p(&request), p(&cert));
    let (ca_cert, ca_key) = (p(&ca.0), p(&ca.1));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &request,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-set_serial",
            "7",
            "-days",
            "2",
            "-extfile",
            &config,
            "-extensions",
            extensions,
            "-out",
            &cert_arg,
        ],
    );
    (cert, key)
}

/// A server certificate for 127.0.0.1 with CN=`name` that the CA `ca`
/// signed, valid only on 1 January 2020: long expired (`openssl ca` with
/// explicit dates, so no clock needs faking).
pub(crate) fn make_expired_server(dir: &TempDir, name: &str, ca: &KeyPair) -> KeyPair {
    let subject = format!("/CN={name}");
    let (request, key) = new_key(dir, name, false, &["-subj", &subject]);
    let database = dir.join("ca-db");
    std::fs::create_dir_all(&database).unwrap();
    std::fs::write(database.join("index.txt"), "").unwrap();
    std::fs::write(database.join("serial"), "01\n").unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let (config, request, cert_arg) = (config(dir), p(&request), p(&cert));
    let (ca_cert, ca_key) = (p(&ca.0), p(&ca.1));
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            &config,
            "-name",
            "dated",
            "-cert",
            &ca_cert,
            "-keyfile",
            &ca_key,
            "-extfile",
            &config,
            "-extensions",
            "server",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
            "-in",
            &request,
            "-out",
            &cert_arg,
        ],
    );
    (cert, key)
}

/// A CA named `{name}-ca` and a server certificate for 127.0.0.1 that it
/// signed: the CA's certificate (what clients trust) and the server's
/// certificate and key. `None` (after "not run") when openssl is missing.
pub(crate) fn make_https_certificate(dir: &TempDir, name: &str) -> Option<(PathBuf, KeyPair)> {
    make_certificate(dir, "probe")?;
    let ca = make_ca(dir, &format!("{name}-ca"));
    let server = make_server(dir, name, &ca);
    Some((ca.0, server))
}

/// Starts ringway with one `{kind}:127.0.0.1:0,tls{options}` input (`kind`:
/// `tcp` or `otlp`) serving `cert` with `--tls-cert`/`--tls-key`, writing
/// to the file `output`, with `extra` flags.
pub(crate) fn start_tls(
    dir: &TempDir,
    kind: &str,
    options: &str,
    (cert, key): &KeyPair,
    output: &Path,
    extra: &[&str],
) -> (Ringway, SocketAddr) {
    let (cert, key) = (p(cert), p(key));
    let mut args = vec!["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
    args.extend_from_slice(extra);
    let input = format!("{kind}:127.0.0.1:0,tls{options}");
    start_listening(dir, &input, &file_output(output), &args)
}

/// The address the input (not `--metrics`) listens on, from its line
/// (waited for: with `--metrics`, the metrics line can come first).
pub(crate) fn input_addr(ringway: &mut Ringway, input: &str) -> SocketAddr {
    let needle = format!("ringway: input '{input}' listening on ");
    let mut addr = None;
    wait_until(Duration::from_secs(20), || {
        addr = ringway
            .stderr_whole_lines()
            .lines()
            .find_map(|line| line.strip_prefix(needle.as_str())?.trim().parse().ok());
        addr.is_some()
    });
    addr.expect("the input's listening line")
}

/// Every stderr file of the ringway processes run in `dir`, joined.
pub(crate) fn read_stderr(dir: &TempDir) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        if entry.path().extension().is_some_and(|ext| ext == "stderr") {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    text
}

/// The value of the /metrics sample of `family` whose labels contain
/// `label` (e.g. `reason="client_cert_refused"`), if any.
pub(crate) fn metric_sample(addr: SocketAddr, family: &str, label: &str) -> Option<u64> {
    metrics_text(addr)?.lines().find_map(|line| {
        let rest = line.strip_prefix(family)?.strip_prefix('{')?;
        let (labels, value) = rest.split_once("} ")?;
        labels.contains(label).then(|| value.trim().parse().ok())?
    })
}

/// `openssl s_client` to `addr` (`version`: `-tls1_3` or `-tls1_2`) that
/// sends what is written to its stdin and closes (close_notify) at its
/// end, presenting `client` (certificate and key) if given; `extra` args.
pub(crate) fn spawn_s_client(
    addr: SocketAddr,
    version: &str,
    client: Option<&KeyPair>,
    extra: &[&str],
) -> std::process::Child {
    let mut command = Command::new("openssl");
    command
        .args(["s_client", "-connect", &addr.to_string(), version])
        // -quiet implies -ign_eof; -no_ign_eof ends at the input's end.
        // -nocommands: a read of stdin that starts with Q, R or K is
        // data, not a command (quit, renegotiate, key update).
        .args(["-quiet", "-no_ign_eof", "-nocommands"])
        .args(["-servername", "localhost"])
        .args(extra);
    if let Some((cert, key)) = client {
        command.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl s_client")
}

/// Waits (at most `limit`) for an s_client to end: whether it exited 0,
/// and its stderr; panics when it does not end in time.
pub(crate) fn finish_s_client(mut child: std::process::Child, limit: Duration) -> (bool, String) {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
            return (status.success(), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("openssl s_client did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `bytes` over TLS to `addr` with `openssl s_client`, presenting
/// `client` if given, and waits (at most 60 s) for it to end: whether it
/// exited 0, and its stderr. A refused client may end either way, so
/// callers check what arrived.
pub(crate) fn s_client(
    addr: SocketAddr,
    version: &str,
    client: Option<&KeyPair>,
    bytes: &[u8],
) -> (bool, String) {
    let mut child = spawn_s_client(addr, version, client, &[]);
    let mut stdin = child.stdin.take().unwrap();
    // A refused client's writes may fail once the server closed.
    let _ = stdin.write_all(bytes);
    drop(stdin);
    finish_s_client(child, Duration::from_secs(60))
}

/// Sends `bytes` over TLS to `addr` with `openssl s_client` (`version`:
/// `-tls1_3` or `-tls1_2`) in pieces of odd sizes (so frames and lines
/// straddle TLS records), adding each piece to `written` once s_client
/// took it; panics unless it exits 0 within 120 s of the end of its input.
pub(crate) fn s_client_send_counted(
    addr: SocketAddr,
    version: &str,
    bytes: &[u8],
    written: &std::sync::atomic::AtomicU64,
) {
    let mut client = spawn_s_client(addr, version, None, &[]);
    let mut stdin = client.stdin.take().unwrap();
    for piece in bytes.chunks(7_001) {
        stdin.write_all(piece).expect("write to s_client");
        written.fetch_add(piece.len() as u64, std::sync::atomic::Ordering::SeqCst);
    }
    drop(stdin);
    let (ok, stderr) = finish_s_client(client, Duration::from_secs(120));
    assert!(ok, "s_client {version}: {stderr}");
}

/// [`s_client_send_counted`] without the count.
pub(crate) fn s_client_send(addr: SocketAddr, version: &str, bytes: &[u8]) {
    s_client_send_counted(addr, version, bytes, &std::sync::atomic::AtomicU64::new(0));
}

/// An OTLP/JSON request of one record whose body is `body`, as a file.
pub(crate) fn json_request(dir: &TempDir, body: &str) -> PathBuf {
    let path = dir.join(format!("{body}.json"));
    let request = serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"stringValue": body}}
    ]}]}]});
    std::fs::write(&path, request.to_string()).unwrap();
    path
}

/// What curl said: its exit code, the HTTP status it printed (`000`:
/// none), its stderr and the response's headers.
pub(crate) struct Curl {
    pub code: i32,
    pub status: String,
    pub stderr: String,
    pub headers: String,
}

impl Curl {
    /// The exit code and the HTTP status.
    pub fn outcome(&self) -> (i32, &str) {
        (self.code, &self.status)
    }
}

/// `curl URL` posting `request` as OTLP/JSON with `args` before the URL.
pub(crate) fn curl(url: &str, request: &Path, args: &[&str]) -> Curl {
    let headers = request.with_extension("headers");
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-o", "/dev/null"])
        .args(["-w", "%{http_code}", "-D"])
        .arg(&headers)
        .args(["-H", "Expect:", "-H", "Content-Type: application/json"])
        .arg("--data-binary")
        .arg(format!("@{}", p(request)))
        .args(args)
        .arg(url)
        .output()
        .expect("run curl");
    Curl {
        code: output.status.code().unwrap_or(-1),
        status: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
    }
}
