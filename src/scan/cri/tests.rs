//! Tests of the container line parsers, the record writer and the path
//! grammar of [`k8s_fields`](super::k8s_fields).

use super::*;
use serde_json::{Value, json};

fn cri(line: &str) -> Option<(String, Stream, bool, String)> {
    parse_cri(line.as_bytes()).map(|parsed| {
        (
            String::from_utf8(parsed.time.to_vec()).unwrap(),
            parsed.stream,
            parsed.partial,
            String::from_utf8(parsed.message.to_vec()).unwrap(),
        )
    })
}

#[test]
fn cri_lines_of_containerd_and_cri_o_split_into_their_parts() {
    // containerd: UTC, nanoseconds with trailing zeros trimmed.
    assert_eq!(
        cri("2026-12-02T04:09:29.123456789Z stdout F hello world"),
        Some((
            "2026-12-02T04:09:29.123456789Z".into(),
            Stream::Stdout,
            false,
            "hello world".into()
        ))
    );
    assert_eq!(
        cri("2026-12-02T04:09:29.1Z stderr P part ").map(|c| (c.0, c.2, c.3)),
        Some(("2026-12-02T04:09:29.1Z".into(), true, "part ".into()))
    );
    assert_eq!(
        cri("2026-12-02T04:09:29Z stdout F x").map(|c| c.0),
        Some("2026-12-02T04:09:29Z".into())
    );
    // CRI-O: a local offset.
    assert_eq!(
        cri("2026-12-02T05:09:29.123456789+01:00 stdout F msg").map(|c| (c.0, c.3)),
        Some(("2026-12-02T05:09:29.123456789+01:00".into(), "msg".into()))
    );
    // A tag with a suffix, as kubelet accepts.
    assert_eq!(
        cri("2026-12-02T04:09:29Z stdout F:xyz tagged").map(|c| (c.2, c.3)),
        Some((false, "tagged".into()))
    );
    assert_eq!(
        cri("2026-12-02T04:09:29Z stdout P:1 p").map(|c| c.2),
        Some(true)
    );
    // Empty messages: with and without the space after the tag.
    assert_eq!(
        cri("2026-12-02T04:09:29Z stdout F ").map(|c| c.3),
        Some("".into())
    );
    assert_eq!(
        cri("2026-12-02T04:09:29Z stdout F").map(|c| c.3),
        Some("".into())
    );
    // The message is every byte after the tag's space.
    assert_eq!(
        cri("2026-12-02T04:09:29Z stdout F  two  spaces\r").map(|c| c.3),
        Some(" two  spaces\r".into())
    );
}

#[test]
fn malformed_cri_lines_are_refused() {
    for line in [
        "",
        "plain text",
        "2026-12-02T04:09:29Z stdin F x",
        "2026-12-02T04:09:29Z stdout X x",
        "2026-12-02T04:09:29Z stdout FP x",
        "2026-12-02T04:09:29Z stdout",
        "2026-12-02 04:09:29Z stdout F x",
        "2026-12-02T04:09:29 stdout F x",
        "2026-12-02T04:09:29.Z stdout F x",
        "2026-12-02T04:09:29.1234567890Z stdout F x",
        "2026-12-02T04:09:29+0100 stdout F x",
        "2026-12-0xT04:09:29Z stdout F x",
        "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-02T04:09:29Z\"}",
    ] {
        assert_eq!(cri(line), None, "{line:?}");
    }
}

#[test]
fn every_byte_of_a_cri_times_date_and_clock_is_checked() {
    let valid = "2026-12-02T04:09:29.5+01:00";
    assert!(cri(&format!("{valid} stdout F x")).is_some());
    assert!(cri(&format!("{} stdout F x", valid.replace('T', "t"))).is_some());
    for at in 0..19 {
        // The characters just outside the digits ('/' and ':') among them.
        for wrong in ['/', ':', '-', 'a', 'T'] {
            if valid[at..].starts_with(wrong) {
                continue;
            }
            let mut time = valid.to_string();
            time.replace_range(at..at + 1, &wrong.to_string());
            assert_eq!(cri(&format!("{time} stdout F x")), None, "{time}");
        }
    }
}

/// The time check as first written (the fraction's digits counted from
/// the front, the zone after them), and the time as a search for the
/// line's first space finds it: what `parse_cri` must agree with.
fn time_by_search(line: &[u8]) -> Option<&[u8]> {
    let time = &line[..memchr::memchr(b' ', line)?];
    if time.len() < 20 || time.len() > MAX_TIME_BYTES {
        return None;
    }
    let head = &time[..19];
    for (at, &byte) in head.iter().enumerate() {
        let ok = match at {
            4 | 7 => byte == b'-',
            10 => byte | 0x20 == b't',
            13 | 16 => byte == b':',
            _ => byte.is_ascii_digit(),
        };
        if !ok {
            return None;
        }
    }
    let mut rest = &time[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        rest = &fraction[digits..];
    }
    let zone = match rest {
        b"Z" | b"z" => true,
        [sign, h1, h2, b':', m1, m2] => {
            matches!(sign, b'+' | b'-') && [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit())
        }
        _ => false,
    };
    zone.then_some(time)
}

#[test]
fn cri_times_are_found_and_checked_as_a_search_from_the_front_would() {
    let mut lines = Vec::new();
    for digits in 0..=11 {
        for zone in [
            "Z", "z", "+01:00", "-05:30", "+0100", "+01:0a", "", "ZZ", "+01:00Z",
        ] {
            let fraction = match digits {
                0 => String::new(),
                n => format!(".{}", &"123456789012"[..n]),
            };
            let line = format!("2026-12-02T04:09:29{fraction}{zone} stdout F msg x");
            // Each byte of the time and the space after it, changed.
            for at in 0..line.len().min(40) {
                for byte in [
                    b' ', b'/', b':', b';', b',', b'-', b'a', b't', b'T', b'.', b'Z', b'+', b'0',
                    0x80, 0xff,
                ] {
                    let mut changed = line.clone().into_bytes();
                    changed[at] = byte;
                    lines.push(changed);
                }
            }
            // Cut at every length (short lines are searched differently).
            for len in 0..line.len() {
                lines.push(line.as_bytes()[..len].to_vec());
            }
            lines.push(line.into_bytes());
        }
    }
    let mut valid = 0;
    for line in &lines {
        let want = time_by_search(line);
        let got = parse_cri(line).map(|parsed| parsed.time);
        let text = String::from_utf8_lossy(line);
        match want {
            None => assert_eq!(got, None, "{text:?}"),
            // With the stream and tag as written, the line is CRI.
            Some(time) if line[time.len()..].starts_with(b" stdout F ") => {
                assert_eq!(got, Some(time), "{text:?}")
            }
            Some(time) => assert!(got.is_none() || got == Some(time), "{text:?}"),
        }
        valid += usize::from(got.is_some());
    }
    // Both kinds are among the lines.
    assert!(
        valid > 100 && valid < lines.len() / 2,
        "{valid} of {}",
        lines.len()
    );
}

fn docker(line: &str) -> Option<(String, Stream, bool, String)> {
    let mut parser = DockerParser::new(4096);
    parser.parse(line.as_bytes(), |parsed| {
        (
            String::from_utf8(parsed.time.to_vec()).unwrap(),
            parsed.stream,
            parsed.partial,
            String::from_utf8(parsed.message.to_vec()).unwrap(),
        )
    })
}

#[test]
fn docker_json_file_lines_split_into_their_parts() {
    assert_eq!(
        docker(
            r#"{"log":"hello \"you\"\n","stream":"stderr","time":"2026-12-02T04:09:29.123456789Z"}"#
        ),
        Some((
            "2026-12-02T04:09:29.123456789Z".into(),
            Stream::Stderr,
            false,
            "hello \"you\"".into()
        ))
    );
    // Without the trailing newline: a partial. Other keys are skipped,
    // nested values included.
    assert_eq!(
        docker(
            r#"{"log":"part","attrs":{"a":["b",{"c":1}]},"stream":"stdout","time":"2026-12-02T04:09:29Z"}"#
        ),
        Some((
            "2026-12-02T04:09:29Z".into(),
            Stream::Stdout,
            true,
            "part".into()
        ))
    );
    for line in [
        r#"{"log":"x\n","stream":"stdin","time":"2026-12-02T04:09:29Z"}"#,
        r#"{"log":"x\n","stream":"stdout","time":"yesterday"}"#,
        r#"{"log":"x\n","stream":"stdout"}"#,
        r#"{"log":1,"stream":"stdout","time":"t"}"#,
        r#"{"log":"x\n","stream":"stdout","time":"t""#,
        r#"["log","x"]"#,
        "2026-12-02T04:09:29Z stdout F x",
    ] {
        assert_eq!(docker(line), None, "{line}");
    }
}

#[test]
fn records_escape_the_body_once_and_replace_invalid_utf8() {
    let body = "tab\there \"q\" é \u{1}".as_bytes();
    let metadata = br#","k8s.pod.name":"p""#;
    let len = record_len(
        b"2026-12-02T04:09:29Z",
        Stream::Stdout,
        Body::Text(body),
        metadata,
    );
    let mut out = vec![0u8; len];
    let written = write_record(
        &mut out,
        b"2026-12-02T04:09:29Z",
        Stream::Stdout,
        Body::Text(body),
        metadata,
    );
    assert_eq!(written, len, "record_len is exact");
    let value: Value = serde_json::from_slice(&out[..written]).unwrap();
    assert_eq!(
        value,
        json!({"time":"2026-12-02T04:09:29Z","stream":"stdout","body":"tab\there \"q\" é \u{1}","k8s.pod.name":"p"})
    );
    let invalid = b"a\xff\xfeb\xe2\x82";
    let time = b"2026-12-02T04:09:29.5+01:00";
    let mut out = vec![0u8; record_len(time, Stream::Stderr, Body::Text(invalid), b"")];
    let written = write_record(&mut out, time, Stream::Stderr, Body::Text(invalid), b"");
    let value: Value = serde_json::from_slice(&out[..written]).unwrap();
    assert_eq!(value["body"], json!("a\u{FFFD}\u{FFFD}b\u{FFFD}"));
    // A plain line's record: its body and metadata only.
    let len = record_len(b"", Stream::Plain, Body::Text(b"a\nb"), metadata);
    let mut out = vec![0u8; len];
    assert_eq!(
        write_record(&mut out, b"", Stream::Plain, Body::Text(b"a\nb"), metadata),
        len
    );
    assert_eq!(out, b"{\"body\":\"a\\nb\",\"k8s.pod.name\":\"p\"}\n");
}

fn fields(path: &str) -> Value {
    let mut out = Vec::new();
    k8s_fields(Path::new(path), &mut out);
    let mut text = b"{\"x\":0".to_vec();
    text.extend_from_slice(&out);
    text.push(b'}');
    let mut value: Value = serde_json::from_slice(&text).unwrap();
    value.as_object_mut().unwrap().remove("x");
    value
}

#[test]
fn pod_log_paths_give_pod_and_container_fields() {
    let expected = json!({
        "k8s.namespace.name": "kube-system",
        "k8s.pod.name": "coredns-5d78c9869d-8x2lq",
        "k8s.pod.uid": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
        "k8s.container.name": "coredns",
        "k8s.container.restart_count": 3,
    });
    let dir = "/var/log/pods/kube-system_coredns-5d78c9869d-8x2lq_0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/coredns";
    assert_eq!(fields(&format!("{dir}/3.log")), expected);
    // The kubelet's rotation keeps the container.
    assert_eq!(fields(&format!("{dir}/3.log.20261202-040929")), expected);
    // Any directory above pods/: the tail is what is matched.
    assert_eq!(fields(&format!("/tmp/t{dir}/3.log")), expected);
    // A static pod: a config hash where the UID stands, kept as written.
    assert_eq!(
        fields("/var/log/pods/kube-system_etcd-node1_5a0e9f0c1f0e2d3c4b5a69788796a5b4/etcd/0.log"),
        json!({
            "k8s.namespace.name": "kube-system",
            "k8s.pod.name": "etcd-node1",
            "k8s.pod.uid": "5a0e9f0c1f0e2d3c4b5a69788796a5b4",
            "k8s.container.name": "etcd",
            "k8s.container.restart_count": 0,
        })
    );
}

#[test]
fn container_symlink_paths_give_the_container_id() {
    let id = "8f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b";
    assert_eq!(
        fields(&format!(
            "/var/log/containers/coredns-5d78c9869d-8x2lq_kube-system_coredns-{id}.log"
        )),
        json!({
            "k8s.namespace.name": "kube-system",
            "k8s.pod.name": "coredns-5d78c9869d-8x2lq",
            "k8s.container.name": "coredns",
            "container.id": id,
        })
    );
}

#[test]
fn paths_of_other_shapes_add_nothing() {
    let id = "8f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b";
    for path in [
        "/var/log/app.log",
        "/var/log/pods/ns_pod_uid/c/x.log",
        "/var/log/pods/ns_pod_uid/c/0.txt",
        "/var/log/pods/ns_pod_uid/c/0.logs",
        "/var/log/pods/ns_pod/c/0.log",
        "/var/log/pods/_pod_uid/c/0.log",
        "/var/log/notpods/ns_pod_uid/c/0.log",
        &format!("/var/log/containers/pod_ns_c-{}.log", &id[1..]),
        &format!("/var/log/containers/pod_ns-{id}.log"),
        &format!("/var/log/containers/pod_ns_c_d-{id}.log"),
        &format!("/var/log/containers/pod_ns_c-{id}.log.1"),
        &format!("/var/log/other/pod_ns_c-{id}.log"),
    ] {
        assert_eq!(fields(path), json!({}), "{path}");
    }
}

#[test]
fn parsing_and_writing_allocate_nothing_after_warm_up() {
    let mut parser = DockerParser::new(4096);
    let docker =
        br#"{"log":"a \"quoted\" line\n","stream":"stdout","time":"2026-12-02T04:09:29Z"}"#;
    let cri = b"2026-12-02T04:09:29.5Z stdout F message \xc3\xa9";
    let mut out = vec![0u8; 4096];
    let run = |parser: &mut DockerParser, out: &mut [u8]| {
        let line = parse_cri(cri).unwrap();
        write_record(out, line.time, line.stream, Body::Text(line.message), b"");
        parser.parse(docker, |line| {
            write_record(
                out,
                line.time,
                line.stream,
                Body::Text(line.message),
                b",\"a\":1",
            );
        });
    };
    run(&mut parser, &mut out);
    let before = crate::test_alloc::allocations_on_this_thread();
    for _ in 0..100 {
        run(&mut parser, &mut out);
    }
    assert_eq!(crate::test_alloc::allocations_on_this_thread() - before, 0);
}

/// A record of `message` with `json=merge`.
fn merged(message: &str, metadata: &[u8]) -> String {
    let mut objects = ObjectMessages::new(1024);
    let body = objects
        .members(message.as_bytes())
        .map_or(Body::Text(message.as_bytes()), Body::Members);
    let len = record_len(b"2026-12-02T04:09:29Z", Stream::Stdout, body, metadata);
    let mut out = vec![0u8; len];
    let written = write_record(
        &mut out,
        b"2026-12-02T04:09:29Z",
        Stream::Stdout,
        body,
        metadata,
    );
    assert_eq!(written, len, "record_len is exact");
    String::from_utf8(out).unwrap()
}

#[test]
fn json_merge_writes_an_object_message_as_the_record_members() {
    let pod = br#","k8s.pod.name":"p""#;
    assert_eq!(
        merged(r#" {"level":"warn","n":[1,{"a":2}]} "#, pod),
        "{\"time\":\"2026-12-02T04:09:29Z\",\"stream\":\"stdout\",\"level\":\"warn\",\"n\":[1,{\"a\":2}],\"k8s.pod.name\":\"p\"}\n"
    );
    // The message's own time and stream win.
    assert_eq!(
        merged(r#"{"time":1,"msg":"x","stream":"audit"}"#, b""),
        "{\"time\":1,\"msg\":\"x\",\"stream\":\"audit\"}\n"
    );
    assert_eq!(
        merged("{}", pod),
        "{\"time\":\"2026-12-02T04:09:29Z\",\"stream\":\"stdout\",\"k8s.pod.name\":\"p\"}\n"
    );
    // Not an object, or not valid: the message stays the body.
    for text in [
        r#"{"unclosed":1"#,
        "[1,2]",
        "{} trailing",
        "plain",
        r#""{}""#,
    ] {
        let record: Value = serde_json::from_str(&merged(text, b"")).unwrap();
        assert_eq!(record["body"], json!(text), "{text}");
    }
}
