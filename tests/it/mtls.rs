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

use crate::certs::*;
use crate::common::*;
use std::time::Duration;

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
    let extra = ["--metrics", "127.0.0.1:0"];
    let (mut ringway, _) = start_tls(&dir, "tcp", &options, &(cert, key), &output, &extra);
    let metrics = metrics_address(&mut ringway);
    // (The metrics line says "listening on" too: the input's own line.)
    let addr = input_addr(&mut ringway, &format!("tcp:127.0.0.1:0,tls{options}"));
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
    let refused: [(&str, Option<&KeyPair>); 3] = [
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
    let stderr = read_stderr(&dir);
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
