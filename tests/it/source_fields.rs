//! Source fields (`source=true`, issue 18): each input kind on real
//! loopback sockets with real clients — util-linux `logger` over UDP and
//! TCP (its source port is its own, so the exact port is checked with a
//! socket of ours beside it), a real file, the OpenTelemetry Python SDK
//! for OTLP (`RINGWAY_TEST_PYTHON`, see `otlp`) — on IPv4 and IPv6; the
//! default leaves output byte for byte as it was; a bad value is one
//! usage error line.

use crate::common::*;
use crate::otlp::{assert_sdk_delivered, parse_records, sdk_python, sdk_spawn};
use serde_json::{Value, json};
use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Runs `ringway run --input file:INPUT{options} --exit-on-eof` to a file
/// output; returns what it wrote.
fn run_file(dir: &TempDir, input: &Path, options: &str, extra: &[&str]) -> Vec<u8> {
    let output = dir.join(format!("out-{}.log", options.len() + extra.len()));
    let _ = fs::remove_file(&output);
    let spec = format!("file:{}{options}", p(input));
    let out = format!("file:{}", p(&output));
    let mut args = vec!["run", "--input", &spec, "--output", &out, "--exit-on-eof"];
    args.extend_from_slice(extra);
    run(dir, &args, Duration::from_secs(60)).assert_success();
    fs::read(&output).unwrap()
}

fn records(bytes: &[u8]) -> Vec<Value> {
    split_lines(bytes)
        .iter()
        .map(|line| {
            serde_json::from_slice(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(line)))
        })
        .collect()
}

#[test]
fn file_records_carry_their_path_in_every_format() {
    let dir = TempDir::new("source-file");
    let raw = dir.join("app \"one\".log");
    fs::write(&raw, "plain line\nsecond \"quoted\"\r\n").unwrap();
    let path = p(&raw);
    assert_eq!(
        records(&run_file(&dir, &raw, ",source=true", &[])),
        [
            json!({"body": "plain line", "log.file.path": path}),
            json!({"body": "second \"quoted\"\r", "log.file.path": path}),
        ]
    );

    // JSON objects take the key unless they have it at their top level;
    // a line that is not an object passes as it is.
    let ndjson = dir.join("app.ndjson");
    fs::write(
        &ndjson,
        "{\"a\":1}\n{\"log.file.path\":\"mine\"}\n{\"n\":{\"log.file.path\":1}}\n[1]\n",
    )
    .unwrap();
    let path = p(&ndjson);
    let out = run_file(&dir, &ndjson, ",format=json,source=true", &[]);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!(
            "{{\"a\":1,\"log.file.path\":\"{path}\"}}\n{{\"log.file.path\":\"mine\"}}\n{{\"n\":{{\"log.file.path\":1}},\"log.file.path\":\"{path}\"}}\n[1]\n"
        )
    );

    let syslog = dir.join("messages");
    fs::write(&syslog, "<13>Jun 14 15:16:01 host app: hi\n").unwrap();
    let got = records(&run_file(&dir, &syslog, ",format=syslog,source=true", &[]));
    assert_eq!(got[0]["message"], "hi");
    assert_eq!(got[0]["log.file.path"], p(&syslog));

    // Container logs: after the Kubernetes fields.
    let pod_dir = dir.subdir("var/log/pods/shop_web-1_0b1c2d3e/nginx");
    let pod_log = pod_dir.join("0.log");
    fs::write(&pod_log, "2026-12-02T04:09:29Z stdout F from pods\n").unwrap();
    let out = run_file(&dir, &pod_log, ",format=cri,source=true", &[]);
    assert!(
        String::from_utf8_lossy(&out).ends_with(&format!(
            "\"k8s.container.restart_count\":0,\"log.file.path\":\"{}\"}}\n",
            p(&pod_log)
        )),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(records(&out)[0]["k8s.pod.name"], "web-1");
}

#[test]
fn without_source_or_with_source_false_output_is_the_input_byte_for_byte() {
    let dir = TempDir::new("source-off");
    let raw = dir.join("raw.log");
    let text = b"one\n{\"a\":1}\r\nthree \"x\"\n";
    fs::write(&raw, text).unwrap();
    for (options, extra) in [
        ("", &[][..]),
        (",source=false", &[][..]),
        (",format=json,source=false", &["--on-invalid", "raw"][..]),
    ] {
        let out = run_file(&dir, &raw, options, extra);
        assert_bytes_identical(text, &out, &format!("file input{options}"));
    }
    // UDP syslog: the same records with the key set to false as without it.
    let mut outputs = Vec::new();
    for options in ["", ",source=false"] {
        let output = dir.join(format!("udp{}.log", options.len()));
        let (mut ringway, addr) = start_listening(
            &dir,
            &format!("udp:127.0.0.1:0,format=syslog{options}"),
            &file_output(&output),
            &[],
        );
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        for message in [
            "<13>Jun 14 15:16:01 host app: one",
            "not syslog",
            "raw\nline",
        ] {
            socket.send_to(message.as_bytes(), addr).unwrap();
        }
        wait_records(&mut ringway, &output, 3);
        stop(ringway, &dir);
        outputs.push(fs::read(&output).unwrap());
    }
    assert_bytes_identical(&outputs[0], &outputs[1], "udp input,source=false");
    assert!(!String::from_utf8_lossy(&outputs[1]).contains("client."));
}

/// Waits until `output` holds `lines` lines; returns them as JSON.
fn wait_records(ringway: &mut Ringway, output: &Path, lines: usize) -> Vec<Value> {
    let arrived = wait_until(Duration::from_secs(20), || {
        split_lines(&fs::read(output).unwrap_or_default()).len() >= lines
    });
    if !arrived {
        ringway.assert_running("waiting for records");
    }
    let got = fs::read(output).unwrap_or_default();
    assert!(
        arrived,
        "{} of {lines} records arrived: {}",
        split_lines(&got).len(),
        String::from_utf8_lossy(&got)
    );
    records(&got)
}

fn logger(args: &[&str]) {
    let status = Command::new("logger")
        .args(args)
        .status()
        .expect("util-linux logger is needed (apt-get install bsdutils)");
    assert!(status.success(), "logger {args:?}");
}

/// `client.port` as a port number (nonzero).
fn port_of(record: &Value) -> u16 {
    let port = record["client.port"]
        .as_u64()
        .unwrap_or_else(|| panic!("client.port is not a number: {record}"));
    assert!((1..=65535).contains(&port), "{record}");
    port as u16
}

#[test]
fn udp_records_carry_each_senders_address_and_port_on_ipv4_and_ipv6() {
    for (host, bind) in [("127.0.0.1", "127.0.0.1:0"), ("::1", "[::1]:0")] {
        let dir = TempDir::new("source-udp");
        let output = dir.join("out.log");
        let (mut ringway, addr) = start_listening(
            &dir,
            &format!("udp:{bind},format=syslog,source=true"),
            &file_output(&output),
            &[],
        );
        let port = addr.port().to_string();
        logger(&[
            "-n",
            host,
            "-P",
            &port,
            "-d",
            "--rfc5424",
            "-t",
            "ringway-test",
            "from logger",
        ]);
        // Two senders of ours, alternating: each record gets its own.
        let ours = [
            UdpSocket::bind(bind).unwrap(),
            UdpSocket::bind(bind).unwrap(),
        ];
        for i in 0..6 {
            let socket = &ours[i % 2];
            let message = format!("<14>Jun 14 15:16:01 host app: ours {i}");
            socket.send_to(message.as_bytes(), addr).unwrap();
        }
        let got = wait_records(&mut ringway, &output, 7);
        stop(ringway, &dir);
        let from_logger = got.iter().find(|r| r["message"] == "from logger").unwrap();
        assert_eq!(from_logger["client.address"], host, "{from_logger}");
        assert_eq!(from_logger["app"], "ringway-test");
        port_of(from_logger);
        for i in 0..6 {
            let record = got
                .iter()
                .find(|r| r["message"] == format!("ours {i}"))
                .unwrap_or_else(|| panic!("ours {i} missing: {got:?}"));
            let sender = ours[i % 2].local_addr().unwrap();
            assert_eq!(record["client.address"], host, "{record}");
            assert_eq!(port_of(record), sender.port(), "{record}");
        }
    }
}

#[test]
fn udp_batches_of_more_senders_than_their_table_holds_keep_each_records_sender() {
    // 8 KiB batch buffers hold 32 sender runs: 40 senders taking turns
    // fill a batch's table long before its bytes, so batches are cut at
    // the table, and every record must still name its own sender.
    let dir = TempDir::new("source-udp-many");
    let output = dir.join("out.log");
    let (mut ringway, addr) = start_listening(
        &dir,
        "udp:127.0.0.1:0,source=true",
        &file_output(&output),
        &["--read-buf", "4KiB", "--max-line", "4KiB"],
    );
    let senders: Vec<UdpSocket> = (0..40)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for round in 0..3 {
        for (index, socket) in senders.iter().enumerate() {
            let message = format!("{index} {round}");
            socket.send_to(message.as_bytes(), addr).unwrap();
        }
    }
    let got = wait_records(&mut ringway, &output, 120);
    stop(ringway, &dir);
    assert_eq!(got.len(), 120);
    for record in &got {
        let body = record["body"].as_str().unwrap();
        let index: usize = body.split(' ').next().unwrap().parse().unwrap();
        let sender = senders[index].local_addr().unwrap();
        assert_eq!(record["client.address"], "127.0.0.1", "{record}");
        assert_eq!(port_of(record), sender.port(), "{record}");
    }
}

#[test]
fn tcp_records_carry_their_connections_peer() {
    let dir = TempDir::new("source-tcp");
    let output = dir.join("out.log");
    let (mut ringway, addr) =
        start_listening(&dir, "tcp:[::1]:0,source=true", &file_output(&output), &[]);
    let mut stream = TcpStream::connect(addr).unwrap();
    let local: SocketAddr = stream.local_addr().unwrap();
    stream.write_all(b"first\n{\"a\":1}\n").unwrap();
    drop(stream);
    let got = wait_records(&mut ringway, &output, 2);
    stop(ringway, &dir);
    let fields = json!({"client.address": "::1", "client.port": local.port()});
    for (record, body) in got.iter().zip(["first", "{\"a\":1}"]) {
        let mut expected = fields.clone();
        expected["body"] = json!(body);
        assert_eq!(record, &expected);
    }

    // logger over TCP (octet-counted syslog) to an IPv4 listener.
    let dir = TempDir::new("source-tcp-logger");
    let output = dir.join("out.log");
    let (mut ringway, addr) = start_listening(
        &dir,
        "tcp:127.0.0.1:0,format=syslog,source=true",
        &file_output(&output),
        &[],
    );
    logger(&[
        "-T",
        "--octet-count",
        "-n",
        "127.0.0.1",
        "-P",
        &addr.port().to_string(),
        "--rfc5424",
        "-t",
        "ringway-test",
        "over tcp",
    ]);
    let got = wait_records(&mut ringway, &output, 1);
    stop(ringway, &dir);
    assert_eq!(got[0]["message"], "over tcp", "{}", got[0]);
    assert_eq!(got[0]["client.address"], "127.0.0.1", "{}", got[0]);
    port_of(&got[0]);
}

#[test]
fn otlp_records_carry_the_client_in_their_resource() {
    let Some(python) = sdk_python() else { return };
    let dir = TempDir::new("source-otlp");
    let output = dir.join("out.ndjson");
    let (ringway, addr) =
        start_listening(&dir, "otlp:[::1]:0,source=true", &file_output(&output), &[]);
    let sdk = sdk_spawn(&dir, &python, addr, 20, &["--timeout", "30"]);
    let (result, sdk_stderr) = sdk.finish(Duration::from_secs(90));
    assert_sdk_delivered(&result, 20, &sdk_stderr);
    stop(ringway, &dir);
    let records = parse_records(&read_output(&output), false, "SDK export with source");
    assert_eq!(records.len(), 20);
    for record in &records {
        let resource = &record["resource"];
        assert_eq!(resource["client.address"], "::1", "{record}");
        port_of(resource);
        // The SDK's own resource attributes are kept.
        assert!(resource["service.name"].is_string(), "{record}");
        assert!(record.get("client.address").is_none(), "{record}");
    }
}

#[test]
fn a_bad_source_value_is_one_usage_error_and_check_shows_the_key() {
    let dir = TempDir::new("source-bad");
    for spec in ["udp:127.0.0.1:0,source=maybe", "file:/tmp/x.log,source=1"] {
        let done = run(
            &dir,
            &["run", "--input", spec, "--output", "null"],
            Duration::from_secs(20),
        );
        done.assert_code(2);
        let stderr = done.stderr.trim_end();
        assert!(!stderr.contains('\n'), "one line: {stderr}");
        assert!(
            stderr.starts_with("ringway: error:")
                && stderr.contains("source must be true or false"),
            "{stderr}"
        );
    }
    let config = dir.join("ringway.toml");
    fs::write(
        &config,
        "[[input]]\nkind = \"udp\"\naddress = \"127.0.0.1:5514\"\nsource = \"maybe\"\n",
    )
    .unwrap();
    let done = run(
        &dir,
        &["check", "--config", &p(&config)],
        Duration::from_secs(20),
    );
    done.assert_code(2);
    assert!(
        done.stderr.contains("key 'source' must be true or false"),
        "{}",
        done.stderr
    );

    fs::write(
        &config,
        "[[input]]\nkind = \"tcp\"\naddress = \"127.0.0.1:6514\"\nsource = true\n\n[[output]]\nkind = \"null\"\n",
    )
    .unwrap();
    let done = run(
        &dir,
        &["check", "--config", &p(&config)],
        Duration::from_secs(20),
    );
    done.assert_success();
    let shown = String::from_utf8_lossy(&done.stdout);
    assert!(shown.contains("source = true"), "{shown}");
}
