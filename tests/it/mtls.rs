//! Mutual TLS on the TLS TCP input (issue 17, `client_ca=` and
//! `--tls-client-ca`): `openssl s_client` with a certificate the client CA
//! signed delivers; without a certificate, or with one another CA signed,
//! it is refused, counted (`tls_client_cert_refused`, the
//! `client_cert_refused` reason in /metrics) and warned about at powers of
//! two, while the input keeps serving good clients. A client CA file that
//! is missing or holds no certificate is one line and exit 2.
//!
//! The CAs and client certificates are made in each test with `openssl
//! req` and `openssl x509 -req`; without openssl a test prints "not run"
//! and passes, except under CI.

use crate::common::*;
use crate::tls::{make_certificate, start_tls};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The openssl config the test CAs and certificates are made with: a CA
/// that may sign, a client certificate for client auth and a server
/// certificate for 127.0.0.1 (clients check its subjectAltName), each as
/// strict X.509 checkers (Python's, OpenSSL's strict mode) want them.
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
";

/// Runs openssl with `args`; panics with its stderr when it fails.
fn openssl(args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA named `name` (certificate and key) in `dir`. Called after
/// `make_certificate`, which says "not run" when openssl is missing.
pub(crate) fn make_ca(dir: &TempDir, name: &str) -> (PathBuf, PathBuf) {
    let config = dir.join("openssl.cnf");
    std::fs::write(&config, OPENSSL_CONFIG).unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let subject = format!("/CN={name}");
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
        &subject,
        "-keyout",
        &p(&key),
        "-out",
        &p(&cert),
    ]);
    (cert, key)
}

/// A client certificate named `name` that the CA `ca` signed.
pub(crate) fn make_client(
    dir: &TempDir,
    name: &str,
    ca: &(PathBuf, PathBuf),
) -> (PathBuf, PathBuf) {
    make_signed(dir, name, ca, "client")
}

/// A server certificate for 127.0.0.1 named `name` that the CA `ca` signed.
pub(crate) fn make_server(
    dir: &TempDir,
    name: &str,
    ca: &(PathBuf, PathBuf),
) -> (PathBuf, PathBuf) {
    make_signed(dir, name, ca, "server")
}

/// A certificate named `name` with the `extensions` section of
/// [`OPENSSL_CONFIG`], signed by the CA `ca`.
fn make_signed(
    dir: &TempDir,
    name: &str,
    ca: &(PathBuf, PathBuf),
    extensions: &str,
) -> (PathBuf, PathBuf) {
    let config = dir.join("openssl.cnf");
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let request = dir.join(format!("{name}.csr"));
    let subject = format!("/CN={name}");
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
        &subject,
        "-keyout",
        &p(&key),
        "-out",
        &p(&request),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p(&request),
        "-CA",
        &p(&ca.0),
        "-CAkey",
        &p(&ca.1),
        "-set_serial",
        "7",
        "-days",
        "2",
        "-extfile",
        &p(&config),
        "-extensions",
        extensions,
        "-out",
        &p(&cert),
    ]);
    (cert, key)
}

/// Sends `bytes` over TLS to `addr` with `openssl s_client` (`version`:
/// `-tls1_3` or `-tls1_2`), presenting `client` (certificate and key) if
/// given, and waits (at most 60 s) for it to end; whether it exited 0,
/// and its stderr. A refused client may end either way, so callers check
/// what arrived.
fn s_client(
    addr: SocketAddr,
    version: &str,
    client: Option<&(PathBuf, PathBuf)>,
    bytes: &[u8],
) -> (bool, String) {
    let mut command = Command::new("openssl");
    command
        .args(["s_client", "-connect", &addr.to_string(), version])
        .args([
            "-quiet",
            "-no_ign_eof",
            "-nocommands",
            "-servername",
            "localhost",
        ]);
    if let Some((cert, key)) = client {
        command.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl s_client");
    let mut stdin = child.stdin.take().unwrap();
    // A refused client's writes may fail once the server closed.
    let _ = stdin.write_all(bytes);
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
            return (status.success(), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("openssl s_client {version} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of the /metrics sample of `family` whose labels contain
/// `label` (e.g. `reason="client_cert_refused"`), if any.
fn metric_sample(addr: SocketAddr, family: &str, label: &str) -> Option<u64> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.lines().find_map(|line| {
        let rest = line.strip_prefix(family)?.strip_prefix('{')?;
        let (labels, value) = rest.split_once("} ")?;
        labels.contains(label).then(|| value.trim().parse().ok())?
    })
}

#[test]
fn a_client_needs_a_certificate_from_the_client_ca_and_refusals_are_counted() {
    let dir = TempDir::new("mtls");
    let Some((cert, key)) = make_certificate(&dir, "server") else {
        return;
    };
    let ca = make_ca(&dir, "clients-ca");
    let other_ca = make_ca(&dir, "other-ca");
    let good = make_client(&dir, "good-client", &ca);
    let stranger = make_client(&dir, "stranger", &other_ca);
    let output = dir.join("out.log");
    // The CA given on the input itself (client_ca=).
    let options = format!(",client_ca={}", p(&ca.0));
    let (mut ringway, _) = start_tls(
        &dir,
        &options,
        &cert,
        &key,
        &output,
        &["--metrics", "127.0.0.1:0"],
    );
    let metrics = metrics_address(&mut ringway);
    // (The metrics line says "listening on" too: the input's own line.)
    let input_line = format!("ringway: input 'tcp:127.0.0.1:0,tls{options}' listening on ");
    let addr: SocketAddr = ringway
        .stderr_whole_lines()
        .lines()
        .find_map(|line| line.strip_prefix(input_line.as_str())?.trim().parse().ok())
        .expect("the input's listening line");
    let refused_so_far = || {
        metric_sample(
            metrics,
            "ringway_input_tls_closed_total",
            "reason=\"client_cert_refused\"",
        )
    };
    let mut expected = Vec::new();
    let send_good = |round: u64, version: &str, expected: &mut Vec<u8>| {
        let lines = numbered_lines(&format!("good{round}"), 0..200);
        let (ok, stderr) = s_client(addr, version, Some(&good), &lines);
        assert!(
            ok,
            "s_client {version} with a good client certificate: {stderr}"
        );
        expected.extend_from_slice(&lines);
        let arrived = wait_until(Duration::from_secs(30), || {
            file_len(&output) >= expected.len() as u64
        });
        assert!(
            arrived,
            "round {round}: the good client's lines did not arrive"
        );
    };
    send_good(0, "-tls1_3", &mut expected);
    send_good(1, "-tls1_2", &mut expected);

    // Refused: no certificate (TLS 1.3 and 1.2), and one another CA signed.
    let refused: [(&str, Option<&(PathBuf, PathBuf)>); 3] = [
        ("-tls1_3", None),
        ("-tls1_2", None),
        ("-tls1_3", Some(&stranger)),
    ];
    for (count, (version, client)) in (1..).zip(refused) {
        let lines = numbered_lines(&format!("refused{count}"), 0..50);
        s_client(addr, version, client, &lines);
        let counted = wait_until(Duration::from_secs(30), || refused_so_far() == Some(count));
        ringway.assert_running("after a refused client");
        assert!(
            counted,
            "refused client {count} ({version}, certificate: {}): /metrics says {:?}",
            client.is_some(),
            refused_so_far()
        );
    }
    // The input keeps serving.
    send_good(2, "-tls1_3", &mut expected);

    let summary = stop(ringway, &dir);
    assert_bytes_identical(
        &expected,
        &read_output(&output),
        "the good clients' lines only",
    );
    assert_eq!(summary.input(0, "tls_client_cert_refused"), 3, "{summary}");
    assert_eq!(summary.input(0, "tls_handshakes"), 3, "{summary}");
    assert_eq!(summary.input(0, "tls_handshake_errors"), 0, "{summary}");
    assert_eq!(summary.input(0, "records"), 600, "{summary}");
    let stderr = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "stderr"))
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
        .collect::<String>();
    let warning =
        "a TLS client without a valid certificate from the client CA refused, connection closed";
    assert!(
        stderr.contains(&format!("{warning} (1 so far)")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{warning} (2 so far)")),
        "{stderr}"
    );
    // Warned at powers of two only.
    assert!(
        !stderr.contains(&format!("{warning} (3 so far)")),
        "{stderr}"
    );
}

#[test]
fn a_bad_client_ca_is_one_line_and_exit_2_and_check_prints_a_good_one() {
    let dir = TempDir::new("mtls-files");
    let Some((cert, key)) = make_certificate(&dir, "server") else {
        return;
    };
    let (ca, _) = make_ca(&dir, "clients-ca");
    let missing = dir.join("missing-ca.pem");
    let (cert, key, ca, missing) = (p(&cert), p(&key), p(&ca), p(&missing));
    let input = "tcp:127.0.0.1:0,tls";
    let tls = ["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
    for (ca_file, says) in [
        (
            missing.as_str(),
            format!("input '{input}': TLS client CA {missing}: No such file or directory"),
        ),
        (
            key.as_str(),
            format!("input '{input}': TLS client CA {key}: no certificate in it"),
        ),
    ] {
        for command in ["run", "check"] {
            let mut words = vec![command, "--output", "null", "--input", input];
            words.extend_from_slice(&tls);
            words.extend_from_slice(&["--tls-client-ca", ca_file]);
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
    // --tls-client-ca without any ,tls input: the operator meant TLS.
    let finished = run(
        &dir,
        &[
            "check",
            "--input",
            "tcp:127.0.0.1:0",
            "--tls-client-ca",
            &ca,
        ],
        TIMEOUT,
    );
    finished.assert_code(2);
    assert!(
        finished
            .stderr
            .contains("--tls-client-ca is given but no input has ,tls"),
        "{}",
        finished.stderr
    );
    // A good one, per input or from the flag, is printed back by check.
    for (spec, flag) in [
        (format!("{input},client_ca={ca}"), None),
        (input.to_string(), Some(ca.as_str())),
    ] {
        let mut words = vec!["check", "--input", spec.as_str()];
        words.extend_from_slice(&tls);
        if let Some(ca) = flag {
            words.extend_from_slice(&["--tls-client-ca", ca]);
        }
        let finished = run(&dir, &words, TIMEOUT);
        finished.assert_success();
        let printed = String::from_utf8_lossy(&finished.stdout);
        assert!(
            printed.contains(&format!(
                "tls = true\ncert = \"{cert}\"\nkey = \"{key}\"\nclient_ca = \"{ca}\"\n"
            )),
            "{words:?}: {printed}"
        );
    }
}
