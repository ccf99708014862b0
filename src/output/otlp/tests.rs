use super::*;
use crate::input::otlp::encode::{Context, Writer, write_record};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

fn value(value: any_value::Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(value) })
}

fn pair(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value(v),
        ..Default::default()
    }
}

fn text(s: &str) -> any_value::Value {
    any_value::Value::StringValue(s.into())
}

fn encode(batch: &str) -> ExportLogsServiceRequest {
    let mut encoder = Encoder::new(0);
    encoder.encode(batch.as_bytes(), 0, 42);
    ExportLogsServiceRequest::decode(&encoder.out[..]).expect("valid protobuf")
}

fn records(request: &ExportLogsServiceRequest) -> Vec<&LogRecord> {
    request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .collect()
}

fn attribute<'a>(record: &'a LogRecord, key: &str) -> Option<&'a any_value::Value> {
    record
        .attributes
        .iter()
        .find(|pair| pair.key == key)
        .and_then(|pair| pair.value.as_ref()?.value.as_ref())
}

#[test]
fn lengths_past_one_byte_are_written_as_longer_varints() {
    for len in [0usize, 127, 128, 300, 16_383, 16_384, 3_000_000] {
        let mut out = vec![9u8];
        let start = begin(&mut out, 1);
        out.extend(std::iter::repeat_n(7u8, len));
        end(&mut out, start);
        let mut rest = &out[2..];
        let decoded = prost::encoding::decode_varint(&mut rest).unwrap();
        assert_eq!(decoded as usize, len);
        assert_eq!(rest.len(), len);
        assert!(rest.iter().all(|&b| b == 7));
    }
}

#[test]
fn otlp_input_lines_round_trip_to_the_same_records() {
    let resource = Resource {
        attributes: vec![pair("service.name", text("api"))],
        ..Default::default()
    };
    let other_resource = Resource {
        attributes: vec![pair("service.name", text("db"))],
        ..Default::default()
    };
    let scope = InstrumentationScope {
        name: "lib".into(),
        version: "1.2".into(),
        ..Default::default()
    };
    let record = |n: u64| LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000 + n,
        observed_time_unix_nano: 1_700_000_000_000_000_500 + n,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: value(text(&format!("hello \"{n}\"\n\u{1}é😀"))),
        attributes: vec![
            pair("int", any_value::Value::IntValue(-42)),
            pair("big", any_value::Value::IntValue(i64::MAX)),
            pair("double", any_value::Value::DoubleValue(0.5)),
            pair("whole", any_value::Value::DoubleValue(3.0)),
            pair("tiny", any_value::Value::DoubleValue(1e-300)),
            pair("bool", any_value::Value::BoolValue(false)),
            pair(
                "list",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![value(text("a")).unwrap(), AnyValue { value: None }],
                }),
            ),
            pair(
                "map",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![pair("k", any_value::Value::IntValue(1))],
                }),
            ),
            pair("long", text(&"x".repeat(20_000))),
        ],
        flags: 1,
        trace_id: vec![0xab; 16],
        span_id: vec![0x01; 8],
        ..Default::default()
    };
    let mut lines = Vec::new();
    let mut expected = Vec::new();
    for (index, res) in [&resource, &resource, &other_resource]
        .into_iter()
        .enumerate()
    {
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Writer::new(&mut buf);
        let rec = record(index as u64);
        write_record(
            &mut out,
            &rec,
            Context {
                resource: Some(res),
                scope: Some(&scope),
                client: None,
            },
        );
        assert!(!out.overflow);
        let len = out.len;
        lines.extend_from_slice(&buf[..len]);
        expected.push((res.clone(), rec));
    }
    let mut encoder = Encoder::new(0);
    encoder.encode(&lines, 0, 42);
    let request = ExportLogsServiceRequest::decode(&encoder.out[..]).unwrap();
    let want = ExportLogsServiceRequest {
        resource_logs: vec![
            ResourceLogs {
                resource: Some(resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope.clone()),
                    log_records: vec![expected[0].1.clone(), expected[1].1.clone()],
                    ..Default::default()
                }],
                ..Default::default()
            },
            ResourceLogs {
                resource: Some(other_resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(scope.clone()),
                    log_records: vec![expected[2].1.clone()],
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
    };
    assert_eq!(request, want);
}

#[test]
fn json_lines_map_message_level_time_and_attributes() {
    let request = encode(concat!(
        r#"{"timestamp":"2024-01-02T03:04:05.5+01:00","level":"WARNING","message":"disk \"full\"","host":"a","n":3,"f":1.5,"ok":true,"tags":["x",1],"ctx":{"k":null}}"#,
        "\n",
        r#"{"msg":{"structured":1},"severity":"bogus","ts":1700000000123,"message2":"m"}"#,
        "\n",
        r#"{"time":"yesterday","level":30,"msg":"pino"}"#,
        "\n",
        r#"{"@timestamp":1700000000.25,"level":{"odd":1}}"#,
        "\n",
        "plain text line\r\n",
        "[1,2]\n",
        "{\"broken\": \n",
        "\n",
    ));
    let records = records(&request);
    assert_eq!(records.len(), 8);
    let first = records[0];
    assert_eq!(first.time_unix_nano, 1_704_161_045_500_000_000);
    assert_eq!(first.severity_number, 13);
    assert_eq!(first.severity_text, "WARNING");
    assert_eq!(first.body, value(text("disk \"full\"")));
    assert_eq!(first.observed_time_unix_nano, 42);
    let keys: Vec<&str> = first.attributes.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["host", "n", "f", "ok", "tags", "ctx"]);
    assert_eq!(attribute(first, "n"), Some(&any_value::Value::IntValue(3)));
    assert_eq!(
        attribute(first, "f"),
        Some(&any_value::Value::DoubleValue(1.5))
    );
    assert_eq!(
        attribute(first, "ok"),
        Some(&any_value::Value::BoolValue(true))
    );
    let second = records[1];
    assert_eq!(second.time_unix_nano, 1_700_000_000_123_000_000);
    assert_eq!(second.severity_number, 0);
    assert_eq!(second.severity_text, "bogus");
    assert_eq!(
        second.body,
        value(any_value::Value::KvlistValue(KeyValueList {
            values: vec![pair("structured", any_value::Value::IntValue(1))]
        }))
    );
    assert_eq!(attribute(second, "message2"), Some(&text("m")));
    let third = records[2];
    assert_eq!(third.time_unix_nano, 0, "an unparseable time is left");
    assert_eq!(attribute(third, "time"), Some(&text("yesterday")));
    assert_eq!(third.severity_number, 9);
    assert_eq!(third.severity_text, "");
    let fourth = records[3];
    assert_eq!(fourth.time_unix_nano, 1_700_000_000_250_000_000);
    assert_eq!(
        fourth.body,
        value(text(r#"{"@timestamp":1700000000.25,"level":{"odd":1}}"#))
    );
    assert!(attribute(fourth, "level").is_some(), "a map level stays");
    assert_eq!(records[4].body, value(text("plain text line")));
    assert_eq!(records[5].body, value(text("[1,2]")));
    assert_eq!(records[6].body, value(text("{\"broken\": ")));
    assert_eq!(records[7].body, value(text("")));
}

#[test]
fn escapes_and_bad_utf8_become_valid_strings() {
    let mut line =
        br#"{"message":"tab\t quote\" u\u00e9 pair\ud83d\ude00 lone\ud800 end"}"#.to_vec();
    line.extend_from_slice(b"\n\xff\xferaw\n");
    let mut encoder = Encoder::new(0);
    encoder.encode(&line, 0, 1);
    let request = ExportLogsServiceRequest::decode(&encoder.out[..]).unwrap();
    let records = records(&request);
    assert_eq!(
        records[0].body,
        value(text("tab\t quote\" ué pair😀 lone\u{FFFD} end"))
    );
    assert_eq!(records[1].body, value(text("\u{FFFD}\u{FFFD}raw")));
}

#[test]
fn deep_or_hostile_lines_never_panic() {
    let deep = format!("{{\"message\":{}{}}}\n", "[".repeat(5000), "]".repeat(5000));
    let nested = format!("{{\"a\":{}1{}}}\n", "[".repeat(60), "]".repeat(60));
    for line in [
        deep.as_str(),
        nested.as_str(),
        "{\"a\":\"\\\n",
        "{\"a\":\"\\u12\"}\n",
        "{\"time_unix_nano\":\"x\"}\n",
        "{\"time_unix_nano\":1,\"trace_id\":\"zz\",\"flags\":-1}\n",
        "{\"a\":1e999999}\n",
        "{\"a\":-}\n",
    ] {
        let request = encode(line);
        assert_eq!(records(&request).len(), 1, "{line}");
    }
}

#[test]
fn times_parse_in_every_documented_form() {
    assert_eq!(parse_time(b"\"1970-01-01T00:00:01Z\""), Some(1_000_000_000));
    assert_eq!(
        parse_time(b"\"2024-01-02 03:04:05.123456789123z\""),
        Some(1_704_164_645_123_456_789)
    );
    assert_eq!(
        parse_time(b"\"2024-01-02T03:04:05-00:30\""),
        Some(1_704_166_445_000_000_000)
    );
    assert_eq!(parse_time(b"1700000000"), Some(1_700_000_000_000_000_000));
    assert_eq!(
        parse_time(b"1700000000123"),
        Some(1_700_000_000_123_000_000)
    );
    assert_eq!(
        parse_time(b"1700000000123456"),
        Some(1_700_000_000_123_456_000)
    );
    assert_eq!(
        parse_time(b"1700000000123456789"),
        Some(1_700_000_000_123_456_789)
    );
    for bad in [
        &b"\"2024-01-02\""[..],
        b"\"Oct 11 22:14:15\"",
        b"-5",
        b"true",
        b"\"2024-13-02T03:04:05Z\"",
    ] {
        assert_eq!(parse_time(bad), None);
    }
}

#[test]
fn a_large_batch_goes_in_requests_of_bounded_size_that_cover_it_once() {
    let mut batch = Vec::new();
    for i in 0..20_000 {
        let pad = "x".repeat(i % 150);
        let line = format!("2024-05-01 line {i} \"q\" C:\\t\tpath=/var/{i}.log ünï {pad}\n");
        batch.extend_from_slice(line.as_bytes());
    }
    let mut encoder = Encoder::new(0);
    let mut from = 0;
    let mut requests = 0;
    let mut bodies = Vec::new();
    while from < batch.len() {
        let end = encoder.encode(&batch, from, 1);
        assert!(end > from, "every request takes at least one line");
        assert!(
            encoder.out.len() < REQUEST_BYTES + 4096,
            "a request stops after the line that passes REQUEST_BYTES"
        );
        let request = ExportLogsServiceRequest::decode(&encoder.out[..]).unwrap();
        bodies.extend(records(&request).into_iter().map(|record| {
            match record.body.clone().and_then(|body| body.value) {
                Some(any_value::Value::StringValue(text)) => text,
                other => panic!("not a string body: {other:?}"),
            }
        }));
        // Lengths past 2^14 take three-byte varints.
        assert!(requests > 0 || encoder.out.len() > 1 << 17);
        from = end;
        requests += 1;
    }
    assert!(requests > 4, "{requests} requests");
    assert_eq!(bodies.len(), 20_000, "every line once, in order");
    for (i, body) in bodies.iter().enumerate() {
        assert!(body.starts_with(&format!("2024-05-01 line {i} ")), "{body}");
    }
    let mut gzip = crate::output::http::Gzip::new();
    gzip.compress(&encoder.out).unwrap();
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&gzip.out[..]),
        &mut inflated,
    )
    .unwrap();
    assert_eq!(inflated, encoder.out);
}
