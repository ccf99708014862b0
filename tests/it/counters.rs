//! One counter table (issue 15): every number of every input's and
//! output's `--summary-json` entry is a sample of `/metrics` with the same
//! value at exit, for file, UDP, TCP and OTLP inputs and two outputs. The
//! key → sample mapping is read from docs/metrics.md, which a unit test
//! keeps equal to what `src/metrics/table.rs` generates; `/metrics` is read
//! by the Prometheus client's parser (see `metrics.rs`).

use crate::common::*;
use crate::metrics::{Parsed, get, prometheus_parse, prometheus_python, sample, start, value};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(30);

/// A sample as docs/metrics.md names it: the family and its labels, each
/// with its fixed value or `None` (the entry's name for `input`/`output`,
/// else the key of the summary's map, e.g. an HTTP status `code`).
type SampleName = (String, Vec<(String, Option<String>)>);

/// docs/metrics.md's summary table: (`input`|`output`, key) → sample.
fn summary_mapping() -> BTreeMap<(String, String), SampleName> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
    let text = fs::read_to_string(&path).expect("read docs/metrics.md");
    let table = text
        .split("<!-- BEGIN summary table -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- END summary table -->").next())
        .expect("docs/metrics.md has a summary table");
    let mut mapping = BTreeMap::new();
    for row in table.lines().filter(|line| line.starts_with("| ")).skip(1) {
        let cells: Vec<&str> = row
            .split(" | ")
            .map(|cell| cell.trim_matches('|').trim())
            .collect();
        let (entry, key, sample) = (
            cells[0],
            cells[1].trim_matches('`'),
            cells[3].trim_matches('`'),
        );
        let (family, labels) = sample
            .strip_suffix('}')
            .and_then(|s| s.split_once('{'))
            .unwrap_or_else(|| panic!("a sample with labels in {row:?}"));
        let labels = labels
            .split(',')
            .map(|label| match label.split_once('=') {
                Some((name, fixed)) => {
                    (name.to_string(), Some(fixed.trim_matches('"').to_string()))
                }
                None => (label.to_string(), None),
            })
            .collect();
        let previous = mapping.insert(
            (entry.to_string(), key.to_string()),
            (family.to_string(), labels),
        );
        // One key may be carried by several kinds (TCP's and OTLP's
        // connection counters): it must be the same sample.
        if let Some(previous) = previous {
            assert_eq!(
                previous,
                mapping[&(entry.to_string(), key.to_string())],
                "{row}"
            );
        }
    }
    mapping
}

/// Checks that every number of `entry` (of the summary's `list`) is its
/// sample in `parsed`; returns the keys checked.
fn assert_entry_in_metrics(
    parsed: &Parsed,
    mapping: &BTreeMap<(String, String), SampleName>,
    list: &str,
    entry: &serde_json::Map<String, Value>,
) -> Vec<(String, String)> {
    let name = entry["name"].as_str().expect("a name").to_string();
    let mut checked = Vec::new();
    for (key, summary_value) in entry.iter().filter(|(key, _)| *key != "name") {
        let Some((family, labels)) = mapping.get(&(list.to_string(), key.clone())) else {
            panic!("{list} {name}: the summary's {key:?} has no sample in docs/metrics.md's table");
        };
        // A number is one sample; a map (`http_responses`) one per key.
        let values: Vec<(Option<&str>, u64)> = match summary_value {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (Some(k.as_str()), v.as_u64().expect("a count")))
                .collect(),
            other => vec![(
                None,
                other.as_u64().unwrap_or_else(|| panic!("{key}: {other}")),
            )],
        };
        for (map_key, want) in values {
            let labels: Vec<(&str, &str)> = labels
                .iter()
                .map(|(label, fixed)| {
                    let value = match fixed {
                        Some(fixed) => fixed.as_str(),
                        None if label == list => name.as_str(),
                        None => map_key.unwrap_or_else(|| panic!("{key}: no map key for {label}")),
                    };
                    (label.as_str(), value)
                })
                .collect();
            assert_eq!(
                value(parsed, family, &labels),
                want,
                "{list} {name}: summary {key}{} and {family}{labels:?}",
                map_key.map(|k| format!("[{k}]")).unwrap_or_default()
            );
        }
        checked.push((list.to_string(), key.clone()));
    }
    checked
}

/// The address from "input 'SPEC' listening on ADDR".
fn announced(stderr: &str, spec: &str) -> Option<SocketAddr> {
    let prefix = format!("ringway: input '{spec}' listening on ");
    stderr
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok())
}

#[test]
fn every_summary_counter_of_every_input_kind_and_output_is_in_metrics() {
    let Some(python) = prometheus_python() else {
        return;
    };
    let mapping = summary_mapping();
    let dir = TempDir::new("counters-every-kind");
    let input = dir.join("in.log");
    fs::write(&input, "{\"file\":1}\n{\"file\":2}\nnot json\n").unwrap();
    let file_spec = format!("file:{}", p(&input));
    let output_spec = format!("file:{}", p(&dir.join("out.log")));
    let summary_path = dir.join("summary.json");
    let (udp_spec, tcp_spec, otlp_spec) =
        ("udp:127.0.0.1:0", "tcp:127.0.0.1:0", "otlp:127.0.0.1:0");
    let (ringway, metrics) = start(
        &dir,
        &[
            "run",
            "--input",
            &file_spec,
            "--input",
            udp_spec,
            "--input",
            tcp_spec,
            "--input",
            otlp_spec,
            "--output",
            &output_spec,
            "--output",
            "null",
            "--format",
            "json",
            "--on-invalid",
            "drop",
            "--summary-json",
            &p(&summary_path),
        ],
    );
    let mut addrs = None;
    wait_until(SETTLE, || {
        let stderr = ringway.stderr_now();
        addrs = announced(&stderr, udp_spec)
            .zip(announced(&stderr, tcp_spec))
            .zip(announced(&stderr, otlp_spec));
        addrs.is_some()
    });
    let ((udp, tcp), otlp) = addrs.unwrap_or_else(|| {
        panic!(
            "the network inputs announced no address\n{}",
            ringway.stderr_now()
        )
    });

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..3 {
        socket
            .send_to(format!("{{\"udp\":{i}}}\n").as_bytes(), udp)
            .unwrap();
    }
    let mut stream = TcpStream::connect(tcp).unwrap();
    stream.write_all(b"{\"tcp\":1}\n{\"tcp\":2}\n").unwrap();
    drop(stream);
    let body =
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"otlp"}}]}]}]}"#;
    let mut stream = TcpStream::connect(otlp).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /v1/logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the OTLP input answered {answer:?}"
    );
    drop(stream);

    // Everything delivered by both outputs, and /metrics steady: read it
    // then, and stop.
    let records = |text: &str, metric: &str, label: &str, name: &str| {
        sample(text, &format!("{metric}{{{label}=\"{name}\"}}")).unwrap_or(-1.0)
    };
    let mut text = String::new();
    let steady = wait_until(SETTLE, || {
        let before = text.clone();
        text = get(metrics, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default();
        let input = |spec| records(&text, "ringway_input_records_total", "input", spec);
        let output = |spec| records(&text, "ringway_output_records_total", "output", spec);
        input(&file_spec) == 3.0
            && input(udp_spec) == 3.0
            && input(tcp_spec) == 2.0
            && input(otlp_spec) == 1.0
            && output(&output_spec) == 8.0
            && output("null") == 8.0
            && records(&text, "ringway_checkpoint_lag_bytes", "input", &file_spec) == 0.0
            && text == before
    });
    assert!(
        steady,
        "not everything was delivered, or /metrics kept changing:\n{text}"
    );
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    let summary = read_summary(&summary_path);
    let parsed = prometheus_parse(&python, &text);

    let mut checked = std::collections::BTreeSet::new();
    for list in ["input", "output"] {
        let entries = summary.json[format!("{list}s")].as_array().expect("a list");
        assert_eq!(
            entries.len(),
            if list == "input" { 4 } else { 2 },
            "{summary}"
        );
        for entry in entries {
            let entry = entry.as_object().expect("an entry is an object");
            checked.extend(assert_entry_in_metrics(&parsed, &mapping, list, entry));
        }
    }
    // A run of every kind carries every key of the table's summary rows.
    let every: std::collections::BTreeSet<_> = mapping.keys().cloned().collect();
    assert_eq!(checked, every, "summary keys checked against the table's");
    // Counters that moved, so the comparison is not of zeros only.
    assert_eq!(summary.input(0, "files_opened"), 1);
    assert_eq!(summary.input(0, "invalid"), 1);
    assert_eq!(summary.input(2, "connections_accepted"), 1);
    assert_eq!(summary.input(3, "records_accepted"), 1);
    assert_eq!(summary.input(3, "connections_accepted"), 1);
}
