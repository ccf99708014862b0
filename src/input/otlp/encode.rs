//! OTLP log records to NDJSON lines, written straight into batch buffers.
//!
//! [`write_record`] writes one `LogRecord` (with its resource and scope) as
//! one JSON object and a newline into a [`Writer`] over the free part of a
//! batch buffer. It never allocates and never writes past the buffer: when
//! the record does not fit, the writer reports overflow and the caller
//! starts a new batch (or, for a record larger than any batch, writes it
//! again cut down with [`write_cut_record`]).
//!
//! The keys, always present and in this order: `time_unix_nano`,
//! `observed_time_unix_nano`, `severity_text`, `severity_number`, `body`
//! (a string, or JSON for structured bodies), `attributes`, `resource`,
//! `scope` (`{name, version}`), `trace_id`, `span_id` (hex) and `flags`.
//! With source fields (`source=true`) `resource` also holds the client's
//! `client.address` and `client.port`, unless the resource has the key.

use crate::source::{CLIENT_ADDRESS_KEY, CLIENT_PORT_KEY};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::io::Write;
use std::net::SocketAddr;

/// Deepest nesting of arrays and maps written out: a body or attribute
/// value may be a map in a map … 32 arrays or maps in all. Deeper ones
/// are not even decoded (`decode`) and become `null` (protobuf allows any
/// depth, a JSON reader may not).
pub(crate) const MAX_DEPTH: usize = 32;

/// A bounded writer over a byte slice: writes that do not fit set
/// `overflow` and are dropped, so a caller checks once per record.
pub(crate) struct Writer<'a> {
    out: &'a mut [u8],
    pub len: usize,
    pub overflow: bool,
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut [u8]) -> Self {
        Self {
            out,
            len: 0,
            overflow: false,
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if end > self.out.len() {
            self.overflow = true;
            return;
        }
        self.out[self.len..end].copy_from_slice(bytes);
        self.len = end;
    }

    fn byte(&mut self, byte: u8) {
        if self.len < self.out.len() {
            self.out[self.len] = byte;
            self.len += 1;
        } else {
            self.overflow = true;
        }
    }

    fn unsigned(&mut self, value: u64) {
        let mut digits = [0u8; 20];
        self.bytes(crate::escape::decimal(value, &mut digits));
    }

    fn signed(&mut self, value: i64) {
        if value < 0 {
            self.byte(b'-');
        }
        self.unsigned(value.unsigned_abs());
    }

    fn double(&mut self, value: f64) {
        if value.is_finite() {
            // Rust's shortest round-trip form; integral values get ".0" so a
            // reader keeps them floating point.
            let mut text = [0u8; 32];
            let mut cursor = std::io::Cursor::new(&mut text[..]);
            let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{value:?}"));
            let written = cursor.position() as usize;
            self.bytes(&text[..written]);
        } else {
            // JSON has no NaN or infinity: write them as strings.
            self.string(if value.is_nan() {
                "NaN"
            } else if value > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            });
        }
    }

    /// A JSON string, escaped; at most `max_bytes` of `text` (cut at a
    /// character boundary).
    fn string_cut(&mut self, text: &str, max_bytes: usize) {
        let mut end = text.len().min(max_bytes);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.byte(b'"');
        crate::escape::json_string_content(&text.as_bytes()[..end], |part| self.bytes(part));
        self.byte(b'"');
    }

    fn string(&mut self, text: &str) {
        self.string_cut(text, usize::MAX);
    }

    fn hex(&mut self, bytes: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.byte(b'"');
        for &byte in bytes {
            self.bytes(&[HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 15)]]);
        }
        self.byte(b'"');
    }

    /// Bytes as a JSON string of standard, padded base64 (proto3 JSON).
    fn base64(&mut self, bytes: &[u8]) {
        use base64::Engine;
        self.byte(b'"');
        match base64::engine::general_purpose::STANDARD
            .encode_slice(bytes, &mut self.out[self.len..])
        {
            Ok(written) => self.len += written,
            Err(_) => self.overflow = true,
        }
        self.byte(b'"');
    }

    fn value(&mut self, value: Option<&AnyValue>, depth: usize) {
        let Some(value) = value.and_then(|value| value.value.as_ref()) else {
            self.bytes(b"null");
            return;
        };
        match value {
            any_value::Value::StringValue(text) => self.string(text),
            any_value::Value::BoolValue(flag) => self.bytes(if *flag { b"true" } else { b"false" }),
            any_value::Value::IntValue(number) => self.signed(*number),
            any_value::Value::DoubleValue(number) => self.double(*number),
            any_value::Value::BytesValue(bytes) => self.base64(bytes),
            any_value::Value::ArrayValue(array) if depth < MAX_DEPTH => {
                self.byte(b'[');
                for (index, item) in array.values.iter().enumerate() {
                    if index > 0 {
                        self.byte(b',');
                    }
                    self.value(Some(item), depth + 1);
                }
                self.byte(b']');
            }
            any_value::Value::KvlistValue(list) if depth < MAX_DEPTH => {
                self.object(&list.values, depth + 1);
            }
            _ => self.bytes(b"null"),
        }
    }

    /// Key-value pairs as one JSON object. Duplicate keys are written as
    /// they came (OTLP forbids them; a JSON reader keeps the last).
    fn object(&mut self, pairs: &[KeyValue], depth: usize) {
        self.byte(b'{');
        self.members(pairs, depth);
        self.byte(b'}');
    }

    fn members(&mut self, pairs: &[KeyValue], depth: usize) {
        for (index, pair) in pairs.iter().enumerate() {
            if index > 0 {
                self.byte(b',');
            }
            self.string(&pair.key);
            self.byte(b':');
            self.value(pair.value.as_ref(), depth);
        }
    }

    /// The resource's attributes as one JSON object, with the client's
    /// address and port added after them (each unless the resource has
    /// that key: the sender's own word wins).
    fn resource(&mut self, pairs: &[KeyValue], client: Option<SocketAddr>) {
        self.byte(b'{');
        self.members(pairs, 0);
        if let Some(client) = client {
            let mut separate = !pairs.is_empty();
            let has = |key: &str| pairs.iter().any(|pair| pair.key == key);
            if !has(CLIENT_ADDRESS_KEY) {
                if separate {
                    self.byte(b',');
                }
                self.string(CLIENT_ADDRESS_KEY);
                self.byte(b':');
                // Without brackets; an IPv4-mapped IPv6 address as IPv4.
                let mut text = [0u8; 64];
                let mut cursor = std::io::Cursor::new(&mut text[..]);
                let _ = write!(cursor, "\"{}\"", client.ip().to_canonical());
                let written = cursor.position() as usize;
                self.bytes(&text[..written]);
                separate = true;
            }
            if !has(CLIENT_PORT_KEY) {
                if separate {
                    self.byte(b',');
                }
                self.string(CLIENT_PORT_KEY);
                self.byte(b':');
                self.unsigned(u64::from(client.port()));
            }
        }
        self.byte(b'}');
    }
}

const TRACE_ID_BYTES: usize = 16;
const SPAN_ID_BYTES: usize = 8;

/// The id when it is valid (`len` bytes, not all zero), else empty.
fn valid_id(id: &[u8], len: usize) -> &[u8] {
    if id.len() == len && id.iter().any(|&byte| byte != 0) {
        id
    } else {
        &[]
    }
}

/// Where a record came from: its resource and scope, and (source fields)
/// the client that sent it.
#[derive(Clone, Copy, Default)]
pub(crate) struct Context<'a> {
    pub resource: Option<&'a Resource>,
    pub scope: Option<&'a InstrumentationScope>,
    pub client: Option<SocketAddr>,
}

/// Longest a short field (severity text, scope name and version) is
/// written in a cut record; whole otherwise.
pub(crate) const CUT_FIELD_BYTES: usize = 128;

/// `max_field`: the most bytes of each short field written.
fn head(out: &mut Writer<'_>, record: &LogRecord, max_field: usize) {
    out.bytes(b"{\"time_unix_nano\":");
    out.unsigned(record.time_unix_nano);
    out.bytes(b",\"observed_time_unix_nano\":");
    out.unsigned(record.observed_time_unix_nano);
    out.bytes(b",\"severity_text\":");
    out.string_cut(&record.severity_text, max_field);
    out.bytes(b",\"severity_number\":");
    out.signed(i64::from(record.severity_number));
    out.bytes(b",\"body\":");
}

/// `attributes`: written (a whole record) or left out (a cut one, whose
/// scope name and version are cut to `max_field` bytes).
fn tail(
    out: &mut Writer<'_>,
    record: &LogRecord,
    context: Context<'_>,
    attributes: bool,
    max_field: usize,
) {
    out.bytes(b",\"attributes\":");
    if attributes {
        out.object(&record.attributes, 0);
    } else {
        out.bytes(b"{}");
    }
    out.bytes(b",\"resource\":");
    match context.resource {
        Some(resource) if attributes => out.resource(&resource.attributes, context.client),
        _ => out.resource(&[], context.client),
    }
    out.bytes(b",\"scope\":{\"name\":");
    let (name, version) = context
        .scope
        .map_or(("", ""), |scope| (&scope.name, &scope.version));
    out.string_cut(name, max_field);
    out.bytes(b",\"version\":");
    out.string_cut(version, max_field);
    // An id of the wrong length or all zeroes is invalid: OTLP asks
    // receivers to treat it as absent, not to reject the record.
    out.bytes(b"},\"trace_id\":");
    out.hex(valid_id(&record.trace_id, TRACE_ID_BYTES));
    out.bytes(b",\"span_id\":");
    out.hex(valid_id(&record.span_id, SPAN_ID_BYTES));
    out.bytes(b",\"flags\":");
    out.unsigned(u64::from(record.flags));
    out.bytes(b"}\n");
}

/// Writes one record as one JSON line. Check `out.overflow` afterwards: on
/// overflow the caller discards what was written (`out.len` is not
/// meaningful then).
pub(crate) fn write_record(out: &mut Writer<'_>, record: &LogRecord, context: Context<'_>) {
    head(out, record, usize::MAX);
    out.value(record.body.as_ref(), 0);
    tail(out, record, context, true, usize::MAX);
}

/// Writes a record too large for a whole batch (or for `--max-line`): its
/// attributes and resource are left out, its severity text and scope name
/// and version cut to `max_field` bytes, and a string body cut to what
/// fits (a structured body is written as the string "<cut>"). The line
/// still parses and keeps the record's time, severity number and ids.
/// With `max_field` 0 it needs about 300 bytes (with both ids); a shorter
/// `--max-line` overflows (`out.overflow`).
pub(crate) fn write_cut_record(
    out: &mut Writer<'_>,
    record: &LogRecord,
    context: Context<'_>,
    max_field: usize,
) {
    let start = out.len;
    // Everything but the body, measured on a scratch writer.
    // (3 cut fields, escaped at most six-fold, plus fixed keys and ids.)
    let mut scratch = [0u8; 4096];
    let mut measure = Writer::new(&mut scratch);
    head(&mut measure, record, max_field);
    measure.bytes(b"\"\"");
    tail(&mut measure, record, context, false, max_field);
    let fixed = if measure.overflow {
        usize::MAX
    } else {
        measure.len
    };
    let room = out.out.len().saturating_sub(start);
    // Escaping can grow a byte six-fold: keep the cut body well inside.
    let body_bytes = room.saturating_sub(fixed).saturating_sub(16) / 6;
    head(out, record, max_field);
    match record.body.as_ref().and_then(|body| body.value.as_ref()) {
        Some(any_value::Value::StringValue(text)) => out.string_cut(text, body_bytes),
        _ => out.string_cut("<cut>", body_bytes),
    }
    tail(out, record, context, false, max_field);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn text(value: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        })
    }

    fn pair(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn sample() -> (LogRecord, Resource, InstrumentationScope) {
        let record = LogRecord {
            time_unix_nano: 1_700_000_000_000_000_001,
            observed_time_unix_nano: 2,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: text("hello \"world\"\n\u{1}"),
            attributes: vec![
                pair("int", any_value::Value::IntValue(-42)),
                pair("double", any_value::Value::DoubleValue(0.5)),
                pair("whole", any_value::Value::DoubleValue(3.0)),
                pair("nan", any_value::Value::DoubleValue(f64::NAN)),
                pair("bool", any_value::Value::BoolValue(true)),
                pair("bytes", any_value::Value::BytesValue(b"hi!?".to_vec())),
                pair(
                    "list",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![text("a").unwrap(), AnyValue { value: None }],
                    }),
                ),
                pair(
                    "map",
                    any_value::Value::KvlistValue(KeyValueList {
                        values: vec![pair("k", any_value::Value::IntValue(1))],
                    }),
                ),
            ],
            flags: 1,
            trace_id: vec![0xab; 16],
            span_id: vec![0x01; 8],
            ..Default::default()
        };
        let resource = Resource {
            attributes: vec![pair(
                "service.name",
                any_value::Value::StringValue("svc".into()),
            )],
            ..Default::default()
        };
        let scope = InstrumentationScope {
            name: "lib".into(),
            version: "1.2".into(),
            ..Default::default()
        };
        (record, resource, scope)
    }

    #[test]
    fn a_record_becomes_one_json_line_with_every_key() {
        let (record, resource, scope) = sample();
        let mut buf = vec![0u8; 4096];
        let mut out = Writer::new(&mut buf);
        let context = Context {
            resource: Some(&resource),
            scope: Some(&scope),
            client: None,
        };
        write_record(&mut out, &record, context);
        assert!(!out.overflow);
        let len = out.len;
        let line = &buf[..len];
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(line.ends_with(b"\n"));
        let value: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(value["time_unix_nano"], 1_700_000_000_000_000_001u64);
        assert_eq!(value["severity_text"], "INFO");
        assert_eq!(value["severity_number"], 9);
        assert_eq!(value["body"], "hello \"world\"\n\u{1}");
        let attributes = &value["attributes"];
        assert_eq!(attributes["int"], -42);
        assert_eq!(attributes["double"], 0.5);
        assert!(attributes["whole"].is_f64());
        assert_eq!(attributes["nan"], "NaN");
        assert_eq!(attributes["bool"], true);
        assert_eq!(attributes["bytes"], "aGkhPw==");
        assert_eq!(attributes["list"], serde_json::json!(["a", null]));
        assert_eq!(attributes["map"], serde_json::json!({"k": 1}));
        assert_eq!(value["resource"]["service.name"], "svc");
        assert_eq!(
            value["scope"],
            serde_json::json!({"name": "lib", "version": "1.2"})
        );
        assert_eq!(value["trace_id"], "ab".repeat(16));
        assert_eq!(value["span_id"], "01".repeat(8));
        assert_eq!(value["flags"], 1);
    }

    #[test]
    fn the_client_joins_the_resource_unless_the_resource_has_its_key() {
        let (record, mut resource, scope) = sample();
        let mut buf = vec![0u8; 4096];
        let mut resource_of = |resource: Option<&Resource>, client: &str| {
            let mut out = Writer::new(&mut buf);
            let context = Context {
                resource,
                scope: Some(&scope),
                client: Some(client.parse().unwrap()),
            };
            write_record(&mut out, &record, context);
            assert!(!out.overflow);
            let len = out.len;
            let value: serde_json::Value = serde_json::from_slice(&buf[..len]).unwrap();
            value["resource"].clone()
        };
        assert_eq!(
            resource_of(None, "[::1]:4000"),
            serde_json::json!({"client.address": "::1", "client.port": 4000})
        );
        resource.attributes = vec![pair(
            "client.address",
            any_value::Value::StringValue("proxy".into()),
        )];
        assert_eq!(
            resource_of(Some(&resource), "127.0.0.1:5"),
            serde_json::json!({"client.address": "proxy", "client.port": 5})
        );
    }

    #[test]
    fn a_record_that_does_not_fit_overflows_and_a_cut_one_fits() {
        let (mut record, resource, scope) = sample();
        record.body = text(&"x".repeat(10_000));
        let context = Context {
            resource: Some(&resource),
            scope: Some(&scope),
            client: None,
        };
        let mut buf = vec![0u8; 1024];
        let mut out = Writer::new(&mut buf);
        write_record(&mut out, &record, context);
        assert!(out.overflow);
        let mut out = Writer::new(&mut buf);
        write_cut_record(&mut out, &record, context, CUT_FIELD_BYTES);
        assert!(!out.overflow);
        let len = out.len;
        let value: serde_json::Value = serde_json::from_slice(&buf[..len]).unwrap();
        assert!(value["body"].as_str().unwrap().starts_with("xxx"));
        assert_eq!(value["attributes"], serde_json::json!({}));
    }

    #[test]
    fn strings_escape_like_serde_json_at_every_position() {
        let specials = ["\"", "\\", "\n", "\u{1}", "\u{1f}", "é", "\u{7f}", " ", "~"];
        for special in specials {
            for at in 0..20 {
                let text = format!("{}{special}{}", "a".repeat(at), "b".repeat(19 - at));
                let mut buf = [0u8; 128];
                let mut out = Writer::new(&mut buf);
                out.string(&text);
                let len = out.len;
                let parsed: String = serde_json::from_slice(&buf[..len]).unwrap();
                assert_eq!(parsed, text);
            }
        }
        for word in [*b"abcdefgh", *b"abc\"efgh", *b"\x1fbcdefgh", *b"abcdefg\\"] {
            let expected = word.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
            assert_eq!(crate::escape::find_json_escape(&word).is_some(), expected);
        }
    }

    #[test]
    fn invalid_ids_are_written_as_absent() {
        let (mut record, _, _) = sample();
        for (trace_id, span_id) in [
            (vec![0xab; 5], vec![1; 3]),
            (vec![0; 16], vec![0; 8]),
            (vec![], vec![]),
        ] {
            record.trace_id = trace_id;
            record.span_id = span_id;
            let mut buf = vec![0u8; 4096];
            let mut out = Writer::new(&mut buf);
            write_record(&mut out, &record, Context::default());
            let len = out.len;
            let value: serde_json::Value = serde_json::from_slice(&buf[..len]).unwrap();
            assert_eq!(value["trace_id"], "");
            assert_eq!(value["span_id"], "");
        }
    }

    #[test]
    fn a_cut_record_fits_a_short_line_without_its_short_fields() {
        let (mut record, resource, mut scope) = sample();
        scope.name = "n".repeat(500);
        record.severity_text = "s".repeat(5000);
        let context = Context {
            resource: Some(&resource),
            scope: Some(&scope),
            client: None,
        };
        let mut buf = vec![0u8; 320];
        let mut out = Writer::new(&mut buf);
        write_cut_record(&mut out, &record, context, CUT_FIELD_BYTES);
        assert!(out.overflow, "three 128-byte fields do not fit 320 bytes");
        let mut out = Writer::new(&mut buf);
        write_cut_record(&mut out, &record, context, 0);
        assert!(!out.overflow);
        let len = out.len;
        let value: serde_json::Value = serde_json::from_slice(&buf[..len]).unwrap();
        assert_eq!(value["scope"]["name"], "");
        assert_eq!(value["severity_number"], 9);
        let mut buf = vec![0u8; 2048];
        let mut out = Writer::new(&mut buf);
        write_cut_record(&mut out, &record, context, CUT_FIELD_BYTES);
        assert!(!out.overflow);
        let len = out.len;
        let value: serde_json::Value = serde_json::from_slice(&buf[..len]).unwrap();
        assert_eq!(value["scope"]["name"], "n".repeat(128));
        assert_eq!(value["severity_text"], "s".repeat(128));
    }

    #[test]
    fn base64_pads_like_rfc_4648() {
        for (input, expected) in [
            (&b""[..], "\"\""),
            (b"f", "\"Zg==\""),
            (b"fo", "\"Zm8=\""),
            (b"foo", "\"Zm9v\""),
            (b"foob", "\"Zm9vYg==\""),
        ] {
            let mut buf = [0u8; 32];
            let mut out = Writer::new(&mut buf);
            out.base64(input);
            let len = out.len;
            assert_eq!(std::str::from_utf8(&buf[..len]).unwrap(), expected);
        }
    }
}
