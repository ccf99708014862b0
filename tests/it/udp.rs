//! UDP and syslog input on real loopback sockets: exact delivery at a pace,
//! exact drop accounting under overload, real `logger` messages, the loghub
//! samples as datagrams, and malformed datagrams.

use crate::common::*;
use std::fs;
use std::net::UdpSocket;
use std::time::Duration;

/// A port no one holds right now (tests run in parallel).
fn free_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

/// Waits until ringway's socket is bound (a datagram sent earlier is lost).
fn wait_bound(port: u16, ipv6: bool) {
    let bound = wait_until(Duration::from_secs(20), || {
        let address = if ipv6 { "[::1]:0" } else { "127.0.0.1:0" };
        let probe = UdpSocket::bind(address).unwrap();
        let target = if ipv6 {
            format!("[::1]:{port}")
        } else {
            format!("127.0.0.1:{port}")
        };
        // Binding the same port fails while ringway holds it.
        UdpSocket::bind(&target).is_err() && probe.local_addr().is_ok()
    });
    assert!(bound, "ringway did not bind port {port}");
}

fn start(dir: &TempDir, input: &str, output: &std::path::Path, extra: &[&str]) -> Ringway {
    let summary = dir.join("summary.json");
    let mut args = vec![
        "run".to_string(),
        "--input".into(),
        input.into(),
        "--output".into(),
        format!("file:{}", p(output)),
        "--stats-interval".into(),
        "0".into(),
        "--summary-json".into(),
        p(&summary),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn(dir, &args)
}

#[test]
fn datagrams_at_a_pace_arrive_exactly_once_in_order() {
    let dir = TempDir::new("udp-pace");
    let port = free_port();
    let output = dir.join("out.log");
    let ringway = start(&dir, &format!("udp:127.0.0.1:{port}"), &output, &[]);
    wait_bound(port, false);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut expected = Vec::new();
    for i in 0..20_000u32 {
        // Every other datagram carries its own trailing newline: it must
        // not be doubled.
        let payload = if i % 2 == 0 {
            format!("seq {i:08} payload")
        } else {
            format!("seq {i:08} payload with newline\n")
        };
        sender
            .send_to(payload.as_bytes(), ("127.0.0.1", port))
            .unwrap();
        expected.extend_from_slice(payload.trim_end_matches('\n').as_bytes());
        expected.push(b'\n');
        if i % 200 == 199 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(
        wait_until(Duration::from_secs(30), || file_len(&output)
            == expected.len() as u64),
        "only {} of {} bytes arrived",
        file_len(&output),
        expected.len()
    );
    let summary = stop(ringway, &dir);
    assert_bytes_identical(&expected, &fs::read(&output).unwrap(), "paced datagrams");
    assert_eq!(summary.input(0, "records"), 20_000);
    assert_eq!(summary.input(0, "kernel_drops"), 0);
}

#[test]
fn ipv6_loopback_input_receives() {
    let dir = TempDir::new("udp-v6");
    let port = free_port();
    let output = dir.join("out.log");
    let ringway = start(&dir, &format!("udp:[::1]:{port}"), &output, &[]);
    wait_bound(port, true);
    let sender = UdpSocket::bind("[::1]:0").unwrap();
    for i in 0..100 {
        sender
            .send_to(format!("v6 {i}").as_bytes(), ("::1", port))
            .unwrap();
    }
    assert!(wait_until(Duration::from_secs(20), || split_lines(
        &fs::read(&output).unwrap_or_default()
    )
    .len()
        == 100));
    let summary = stop(ringway, &dir);
    assert_eq!(summary.input(0, "records"), 100);
}

#[test]
fn overload_accounts_for_every_datagram_exactly() {
    let dir = TempDir::new("udp-overload");
    let port = free_port();
    let fifo = dir.join("out.fifo");
    mkfifo(&fifo);
    let ringway = start(
        &dir,
        &format!("udp:127.0.0.1:{port}"),
        &fifo,
        &["--udp-rcvbuf", "1MiB", "--shutdown-timeout", "60s"],
    );
    wait_bound(port, false);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let payload = vec![b'x'; 200];
    let mut sent = 0u64;
    for _ in 0..300_000 {
        if sender.send_to(&payload, ("127.0.0.1", port)).is_ok() {
            sent += 1;
        }
    }
    // Stalled output: the process holds on, within its pool bound.
    let rss = vm_rss_kib(ringway.pid()).expect("a live process has VmRSS");
    assert!(rss < 64 * 1024, "RSS {rss} KiB while stalled");
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = attach_fifo_reader(fifo.clone(), progress);
    let summary = stop(ringway, &dir);
    let received = reader.recv_timeout(TIMEOUT).unwrap();
    let lines = split_lines(&received).len() as u64;
    let drops = summary.input(0, "kernel_drops");
    assert_eq!(
        summary.input(0, "records"),
        lines,
        "every received datagram written"
    );
    assert!(drops > 0, "the overload made the kernel drop");
    assert_eq!(lines + drops, sent, "received + kernel_drops == sent");
}

#[test]
fn malformed_datagrams_are_counted_and_good_ones_still_flow() {
    let dir = TempDir::new("udp-malformed");
    let port = free_port();
    let output = dir.join("out.log");
    let ringway = start(
        &dir,
        &format!("udp:127.0.0.1:{port},format=syslog"),
        &output,
        &[],
    );
    wait_bound(port, false);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut huge = b"<13>Jun 14 15:16:01 host app: ".to_vec();
    huge.resize(65_507, b'z');
    let malformed: Vec<Vec<u8>> = vec![
        Vec::new(),
        huge,
        vec![0, 1, 2, 0xff, 0xfe, b'\n', 0x80],
        b"<999>Jun 14 15:16:01 host app: bad pri".to_vec(),
        b"<13>1 2026-11-29T10:00:00Z".to_vec(),
        b"<13>Jun 14 15:16:01 host app: bad \xc3\x28 utf8".to_vec(),
    ];
    for datagram in &malformed {
        sender.send_to(datagram, ("127.0.0.1", port)).unwrap();
    }
    sender
        .send_to(
            b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - good one",
            ("127.0.0.1", port),
        )
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || {
            String::from_utf8_lossy(&fs::read(&output).unwrap_or_default()).contains("good one")
        }),
        "the good datagram after the malformed ones arrived"
    );
    let summary = stop(ringway, &dir);
    let out = fs::read(&output).unwrap();
    let lines = split_lines(&out);
    assert_eq!(lines.len(), malformed.len() + 1, "one record per datagram");
    for line in &lines {
        let value: serde_json::Value = serde_json::from_slice(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(line)));
        assert!(value.get("message").is_some(), "{value}");
    }
    assert_eq!(summary.input(0, "records"), malformed.len() as u64 + 1);
    assert!(
        summary.input(0, "invalid") >= 3,
        "bad PRI, truncated header and garbage are counted"
    );
    let last: serde_json::Value = serde_json::from_slice(lines.last().unwrap()).unwrap();
    assert_eq!(last["facility"], "local4");
    assert_eq!(last["severity"], "notice");
}

#[test]
fn logger_rfc3164_and_rfc5424_messages_parse_into_fields() {
    if std::process::Command::new("logger")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("util-linux logger is needed (apt-get install bsdutils)");
    }
    let dir = TempDir::new("udp-logger");
    let port = free_port();
    let output = dir.join("out.log");
    let ringway = start(
        &dir,
        &format!("udp:127.0.0.1:{port},format=syslog"),
        &output,
        &[],
    );
    wait_bound(port, false);
    for (form, text) in [
        ("--rfc3164", "classic message"),
        ("--rfc5424", "modern message"),
    ] {
        let status = std::process::Command::new("logger")
            .args([
                "-n",
                "127.0.0.1",
                "-P",
                &port.to_string(),
                "-d",
                form,
                "-p",
                "local3.warning",
                "-t",
                "ringway-test",
                text,
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert!(wait_until(Duration::from_secs(20), || split_lines(
        &fs::read(&output).unwrap_or_default()
    )
    .len()
        == 2));
    let summary = stop(ringway, &dir);
    assert_eq!(summary.input(0, "invalid"), 0);
    let out = fs::read(&output).unwrap();
    for (line, text) in split_lines(&out)
        .iter()
        .zip(["classic message", "modern message"])
    {
        let value: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(value["facility"], "local3", "{value}");
        assert_eq!(value["severity"], "warning", "{value}");
        assert_eq!(value["severity_code"], 4, "{value}");
        assert_eq!(value["app"], "ringway-test", "{value}");
        assert_eq!(value["message"], text, "{value}");
        assert!(value["timestamp"].is_string(), "{value}");
        assert!(value["host"].is_string(), "{value}");
        assert!(value.get("parse_error").is_none(), "{value}");
    }
}

#[test]
fn every_loghub_line_as_a_datagram_parses_or_is_flagged() {
    let Some(loghub) = loghub_samples() else {
        return;
    };
    let dir = TempDir::new("udp-loghub");
    let port = free_port();
    let output = dir.join("out.log");
    let ringway = start(
        &dir,
        &format!("udp:127.0.0.1:{port},format=syslog"),
        &output,
        &[],
    );
    wait_bound(port, false);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sent = 0u64;
    let mut per_file = Vec::new();
    for name in ["Linux_2k.log", "OpenSSH_2k.log", "Thunderbird_2k.log"] {
        let data = fs::read(loghub.join(name)).unwrap();
        let lines = split_lines(&data);
        for (i, line) in lines.iter().enumerate() {
            sender.send_to(line, ("127.0.0.1", port)).unwrap();
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        sent += lines.len() as u64;
        per_file.push((name, lines.len()));
    }
    assert!(wait_until(Duration::from_secs(30), || split_lines(
        &fs::read(&output).unwrap_or_default()
    )
    .len() as u64
        == sent));
    let summary = stop(ringway, &dir);
    assert_eq!(summary.input(0, "records"), sent, "no datagram lost");
    assert_eq!(summary.input(0, "kernel_drops"), 0);
    let out = fs::read(&output).unwrap();
    let lines = split_lines(&out);
    let mut at = 0;
    for (name, count) in per_file {
        let mut flagged = 0;
        for line in &lines[at..at + count] {
            let value: serde_json::Value =
                serde_json::from_slice(line).unwrap_or_else(|e| panic!("{name}: not JSON ({e})"));
            assert!(value["message"].is_string(), "{name}: {value}");
            flagged += usize::from(value.get("parse_error").is_some());
        }
        if name != "Thunderbird_2k.log" {
            assert_eq!(flagged, 0, "{name}: BSD syslog lines all parse");
        }
        at += count;
    }
}

#[test]
fn several_reuseport_sockets_share_one_port_and_lose_nothing() {
    let dir = TempDir::new("udp-sockets");
    let port = free_port();
    let output = dir.join("out.log");
    let ringway = start(
        &dir,
        &format!("udp:127.0.0.1:{port},sockets=3"),
        &output,
        &[],
    );
    wait_bound(port, false);
    // The kernel spreads by flow: many senders (source ports) reach all sockets.
    let mut expected = 0u64;
    for sender_index in 0..30u64 {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..200u64 {
            sender
                .send_to(
                    format!("s{sender_index} {i}").as_bytes(),
                    ("127.0.0.1", port),
                )
                .unwrap();
            expected += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(wait_until(Duration::from_secs(30), || split_lines(
        &fs::read(&output).unwrap_or_default()
    )
    .len() as u64
        == expected));
    let summary = stop(ringway, &dir);
    assert_eq!(summary.input(0, "records"), expected);
    assert_eq!(summary.input(0, "kernel_drops"), 0);
    // Each sender's datagrams stay in order (one flow, one socket).
    let out = fs::read(&output).unwrap();
    let mut last = std::collections::HashMap::new();
    for line in split_lines(&out) {
        let text = String::from_utf8_lossy(line);
        let (sender, seq) = text.split_once(' ').unwrap();
        let seq: u64 = seq.parse().unwrap();
        if let Some(previous) = last.insert(sender.to_string(), seq) {
            assert!(seq > previous, "{sender} out of order");
        }
    }
    assert_eq!(last.len(), 30);
}

/// The address from ringway's "input 'SPEC' listening on ADDR" line (the
/// wording TCP and OTLP inputs use too).
fn announced_addr(stderr: &str, spec: &str) -> Option<std::net::SocketAddr> {
    let prefix = format!("ringway: input '{spec}' listening on ");
    stderr
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok())
}

/// UDP sockets in /proc/net/udp bound to local `port`.
fn udp_sockets_on_port(port: u16) -> usize {
    let table = fs::read_to_string("/proc/net/udp").expect("read /proc/net/udp");
    let wanted = format!("{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            line.split_whitespace()
                .nth(1)
                .and_then(|local| local.rsplit(':').next())
                .is_some_and(|hex| hex == wanted)
        })
        .count()
}

#[test]
fn udp_input_on_port_0_announces_its_port_and_receives_there() {
    let dir = TempDir::new("udp-port0");
    let output = dir.join("out.log");
    let spec = "udp:127.0.0.1:0,sockets=2";
    let mut ringway = start(&dir, spec, &output, &[]);
    let mut addr = None;
    wait_until(Duration::from_secs(20), || {
        addr = announced_addr(&ringway.stderr_whole_lines(), spec);
        addr.is_some() || !ringway.is_running()
    });
    let addr = addr.unwrap_or_else(|| {
        panic!(
            "no \"input '{spec}' listening on ADDR\" line\n--- stderr ---\n{}",
            ringway.stderr_now()
        )
    });
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0, "the announced port is the one bound");
    // Both SO_REUSEPORT sockets share that one port (with port 0 each
    // would otherwise get a port of its own). The port is announced when
    // the first socket is bound; the second lane binds it a moment later
    // (a busy machine showed the count at 1 right after the line).
    wait_until(Duration::from_secs(5), || {
        udp_sockets_on_port(addr.port()) == 2
    });
    assert_eq!(
        udp_sockets_on_port(addr.port()),
        2,
        "two sockets on the announced port {addr}"
    );
    let status = std::process::Command::new("logger")
        .args([
            "-n",
            "127.0.0.1",
            "-P",
            &addr.port().to_string(),
            "-d",
            "-t",
            "ringway-test",
            "sent to the announced port",
        ])
        .status()
        .expect("util-linux logger is needed (apt-get install bsdutils)");
    assert!(status.success());
    assert!(
        wait_until(Duration::from_secs(20), || split_lines(
            &fs::read(&output).unwrap_or_default()
        )
        .len()
            == 1),
        "the datagram did not arrive"
    );
    let summary = stop(ringway, &dir);
    assert_eq!(summary.input(0, "records"), 1);
    let out = String::from_utf8(fs::read(&output).unwrap()).unwrap();
    assert!(out.contains("sent to the announced port"), "{out}");
}
