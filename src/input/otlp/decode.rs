//! Request bodies to prost messages: [`protobuf`] and [`json`] decode an
//! `ExportLogsServiceRequest` under the same two limits, so a request
//! means the same in both encodings.
//!
//! - **Nesting.** Arrays and maps (`ArrayValue`, `KeyValueList`) nest up
//!   to [`MAX_DEPTH`] levels below a body or attribute value; a deeper
//!   one is not decoded: its value is left empty (written as `null`) and
//!   counted in [`Decoded::values_too_deep`], and the rest of the request
//!   is kept. That is also what bounds recursion: arrays and maps are the
//!   only messages that nest without end, so no input can reach a stack
//!   overflow, whatever its depth.
//! - **Messages.** A request may hold at most [`MAX_MESSAGES_PER_REQUEST`]
//!   messages (records, attributes, values, …), counted before anything is
//!   built (protobuf) or as they are built (JSON), so a small body cannot
//!   grow a hundred-fold in memory.
//!
//! Protobuf is walked once over its wire format first: the walk counts
//! messages and, for a value nested too deep, rewrites the field number
//! of its array or map (5 or 6) to 15, unknown to `AnyValue`, in place and
//! at the same length; prost then skips it as an unknown field without
//! looking inside. prost's own recursion limit (100 messages, fewer than
//! a value 32 levels deep in an attribute needs) is turned off
//! (`no-recursion-limit`): the walk is what bounds it.
//!
//! OTLP/JSON (lowerCamelCase keys, hex ids, 64-bit integers as strings or
//! numbers) is read with serde seeds that carry the nesting level; a value
//! nested too deep is skipped with `IgnoredAny`, which serde_json walks
//! without recursion. serde_json's own recursion limit (128, fewer than a
//! value 32 levels deep needs: each level is four JSON containers) is
//! turned off for this one deserializer, for the same reason.

use super::encode::MAX_DEPTH;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// Messages one request may hold (records, attributes, values, …): about
/// 40 MiB of decoded structures at most, and over 25,000 records of a
/// typical shape (the OTel SDKs send 512 per request).
pub(crate) const MAX_MESSAGES_PER_REQUEST: usize = 256 * 1024;

/// A decoded request.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub logs: Vec<ResourceLogs>,
    /// Arrays and maps nested deeper than [`MAX_DEPTH`], left out (their
    /// values are written as `null`).
    pub values_too_deep: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Not a valid request in its encoding: 400.
    Invalid,
    /// More than [`MAX_MESSAGES_PER_REQUEST`] messages: 413.
    TooManyMessages,
}

// ---------------------------------------------------------------------------
// Protobuf

/// The wire type of a length-delimited field.
const LENGTH_DELIMITED: u64 = 2;
/// An `AnyValue` field number that prost does not know (it uses 1 to 8):
/// an array or map too deep is renamed to it and so skipped unread.
const SKIPPED_FIELD: u8 = 15;

/// The kinds of message in a logs request, for the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Request,
    ResourceLogs,
    Resource,
    ScopeLogs,
    Scope,
    Record,
    KeyValue,
    AnyValue,
    Array,
    KeyValueList,
    /// A message without message fields (`EntityRef`): counted only.
    Leaf,
}

/// The kind of the message in field `field` of a `kind`, if it holds one.
fn child(kind: Kind, field: u64) -> Option<Kind> {
    use Kind::*;
    match (kind, field) {
        (Request, 1) => Some(ResourceLogs),
        (ResourceLogs, 1) => Some(Resource),
        (ResourceLogs, 2) => Some(ScopeLogs),
        (Resource, 1) | (Scope, 3) | (Record, 6) | (KeyValueList, 1) => Some(KeyValue),
        (Resource, 3) => Some(Leaf),
        (ScopeLogs, 1) => Some(Scope),
        (ScopeLogs, 2) => Some(Record),
        (Record, 5) | (KeyValue, 2) | (Array, 1) => Some(AnyValue),
        (AnyValue, 5) => Some(Array),
        (AnyValue, 6) => Some(KeyValueList),
        _ => None,
    }
}

/// Counts and, where a value nests too deep, rewrites a protobuf request.
#[derive(Default)]
struct Walk {
    messages: usize,
    values_too_deep: u64,
}

fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, DecodeError> {
    let mut rest = &bytes[*at..];
    let before = rest.len();
    let value = prost::encoding::decode_varint(&mut rest).map_err(|_| DecodeError::Invalid)?;
    *at += before - rest.len();
    Ok(value)
}

impl Walk {
    /// Walks the fields of one message of `kind`. `level`: the arrays and
    /// maps around it. Recursion follows message fields only, and the
    /// only ones that nest without end (an `AnyValue`'s array or map)
    /// stop at `MAX_DEPTH`: at most about 3 × 32 + 6 calls deep.
    fn message(&mut self, bytes: &mut [u8], kind: Kind, level: usize) -> Result<(), DecodeError> {
        let mut at = 0;
        while at < bytes.len() {
            let tag_at = at;
            let key = varint(bytes, &mut at)?;
            let field = key >> 3;
            let end = match key & 7 {
                0 => {
                    varint(bytes, &mut at)?;
                    continue;
                }
                1 => at.checked_add(8),
                5 => at.checked_add(4),
                LENGTH_DELIMITED => {
                    let len = usize::try_from(varint(bytes, &mut at)?)
                        .map_err(|_| DecodeError::Invalid)?;
                    at.checked_add(len)
                }
                // Groups (3, 4) are not used by OTLP; prost would recurse
                // into them.
                _ => return Err(DecodeError::Invalid),
            };
            let end = end
                .filter(|&end| end <= bytes.len())
                .ok_or(DecodeError::Invalid)?;
            if key & 7 == LENGTH_DELIMITED
                && let Some(inner) = child(kind, field)
            {
                if kind == Kind::AnyValue && level >= MAX_DEPTH {
                    // Field 5 or 6 becomes 15, same wire type: the low
                    // four bits of the number sit in bits 3..7 of the
                    // first byte (a padded, longer varint holds zeros
                    // above them).
                    bytes[tag_at] |= SKIPPED_FIELD << 3;
                    self.values_too_deep += 1;
                } else {
                    self.messages += 1;
                    if self.messages > MAX_MESSAGES_PER_REQUEST {
                        return Err(DecodeError::TooManyMessages);
                    }
                    if inner != Kind::Leaf {
                        let level = if kind == Kind::AnyValue {
                            level + 1
                        } else {
                            level
                        };
                        self.message(&mut bytes[at..end], inner, level)?;
                    }
                }
            }
            at = end;
        }
        Ok(())
    }
}

/// Decodes a protobuf `ExportLogsServiceRequest`. The bytes are changed
/// in place: arrays and maps nested too deep are renamed away.
pub(crate) fn protobuf(bytes: &mut [u8]) -> Result<Decoded, DecodeError> {
    let mut walk = Walk::default();
    walk.message(bytes, Kind::Request, 0)?;
    // The walk above bounds prost's recursion (built without its limit).
    let request = <ExportLogsServiceRequest as prost::Message>::decode(&bytes[..])
        .map_err(|_| DecodeError::Invalid)?;
    Ok(Decoded {
        logs: request.resource_logs,
        values_too_deep: walk.values_too_deep,
    })
}

// ---------------------------------------------------------------------------
// OTLP/JSON

/// Decodes an OTLP/JSON `ExportLogsServiceRequest`. A document without
/// `resourceLogs` is an empty request; unknown keys are ignored and `null`
/// is the default of any field.
pub(crate) fn json(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let context = seeds::Context::default();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    // The seeds bound the nesting they follow (see the module comment);
    // everything else is skipped by serde_json without recursion.
    deserializer.disable_recursion_limit();
    let decoded = serde::de::DeserializeSeed::deserialize(
        seeds::ObjectSeed::<seeds::Request>::new(&context, 0),
        &mut deserializer,
    )
    .and_then(|request| deserializer.end().map(|()| request));
    match decoded {
        Ok(request) => Ok(Decoded {
            logs: request.resource_logs,
            values_too_deep: context.values_too_deep.get(),
        }),
        Err(_) if context.too_many.get() => Err(DecodeError::TooManyMessages),
        Err(_) => Err(DecodeError::Invalid),
    }
}

mod seeds;

#[cfg(test)]
mod tests {
    use super::*;
    use any_value::Value;

    /// The shape of one link of a chain of nested values.
    #[derive(Clone, Copy)]
    enum Link {
        Map,
        Array,
    }

    fn varint(out: &mut Vec<u8>, mut value: usize) {
        while value >= 0x80 {
            out.push(value as u8 | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    fn varint_len(value: usize) -> usize {
        let mut out = Vec::new();
        varint(&mut out, value);
        out.len()
    }

    /// An `AnyValue` protobuf of `depth` nested maps or arrays around the
    /// string "leaf", written outside in without recursion (a chain
    /// 100,000 deep would overflow a recursive encoder).
    fn chain_protobuf(link: Link, depth: usize) -> Vec<u8> {
        const LEAF: &[u8] = b"\x0a\x04leaf";
        // Each link's prefix, from the innermost out: its size follows
        // from the size of what it holds.
        let mut prefixes: Vec<Vec<u8>> = Vec::with_capacity(depth);
        let mut inner = LEAF.len();
        for _ in 0..depth {
            let mut prefix = Vec::new();
            match link {
                Link::Map => {
                    // AnyValue{6: KeyValueList{1: KeyValue{1: "k", 2: inner}}}
                    let key_value = 3 + 1 + varint_len(inner) + inner;
                    let list = 1 + varint_len(key_value) + key_value;
                    prefix.push(0x32);
                    varint(&mut prefix, list);
                    prefix.push(0x0a);
                    varint(&mut prefix, key_value);
                    prefix.extend_from_slice(b"\x0a\x01k\x12");
                    varint(&mut prefix, inner);
                }
                Link::Array => {
                    // AnyValue{5: ArrayValue{1: inner}}
                    let array = 1 + varint_len(inner) + inner;
                    prefix.push(0x2a);
                    varint(&mut prefix, array);
                    prefix.push(0x0a);
                    varint(&mut prefix, inner);
                }
            }
            inner += prefix.len();
            prefixes.push(prefix);
        }
        let mut out = Vec::with_capacity(inner);
        for prefix in prefixes.iter().rev() {
            out.extend_from_slice(prefix);
        }
        out.extend_from_slice(LEAF);
        out
    }

    /// The same value in OTLP/JSON.
    fn chain_json(link: Link, depth: usize) -> String {
        let (open, close) = match link {
            Link::Map => (r#"{"kvlistValue":{"values":[{"key":"k","value":"#, "}]}}"),
            Link::Array => (r#"{"arrayValue":{"values":["#, "]}}"),
        };
        format!(
            "{}{}{}",
            open.repeat(depth),
            r#"{"stringValue":"leaf"}"#,
            close.repeat(depth)
        )
    }

    /// The value decoding should give: `depth` links, the 33rd empty.
    fn chain_value(link: Link, depth: usize) -> AnyValue {
        let mut value = AnyValue {
            value: Some(Value::StringValue("leaf".into())),
        };
        if depth > MAX_DEPTH {
            value = AnyValue { value: None };
        }
        for _ in 0..depth.min(MAX_DEPTH) {
            value = AnyValue {
                value: Some(match link {
                    Link::Map => Value::KvlistValue(KeyValueList {
                        values: vec![KeyValue {
                            key: "k".into(),
                            value: Some(value),
                            ..Default::default()
                        }],
                    }),
                    Link::Array => Value::ArrayValue(ArrayValue {
                        values: vec![value],
                    }),
                }),
            };
        }
        value
    }

    fn length_delimited(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
        out.push(field << 3 | 2);
        varint(out, bytes.len());
        out.extend_from_slice(bytes);
    }

    /// One record: `value` as its body and as its attribute "a".
    fn request_protobuf(value: &[u8]) -> Vec<u8> {
        let mut attribute = Vec::new();
        length_delimited(&mut attribute, 1, b"a");
        length_delimited(&mut attribute, 2, value);
        let mut record = Vec::new();
        length_delimited(&mut record, 5, value);
        length_delimited(&mut record, 6, &attribute);
        let mut scope_logs = Vec::new();
        length_delimited(&mut scope_logs, 2, &record);
        let mut resource_logs = Vec::new();
        length_delimited(&mut resource_logs, 2, &scope_logs);
        let mut request = Vec::new();
        length_delimited(&mut request, 1, &resource_logs);
        request
    }

    fn request_json(value: &str) -> String {
        format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{value},"attributes":[{{"key":"a","value":{value}}}]}}]}}]}}]}}"#
        )
    }

    fn only_record(decoded: &Decoded) -> &LogRecord {
        &decoded.logs[0].scope_logs[0].log_records[0]
    }

    #[test]
    fn both_encodings_keep_32_levels_and_empty_the_33rd() {
        for link in [Link::Map, Link::Array] {
            for depth in [0, 1, 31, 32, 33, 34, 100, 100_000] {
                let protobuf = super::protobuf(&mut request_protobuf(&chain_protobuf(link, depth)))
                    .unwrap_or_else(|error| panic!("protobuf, depth {depth}: {error:?}"));
                let json = super::json(request_json(&chain_json(link, depth)).as_bytes())
                    .unwrap_or_else(|error| panic!("JSON, depth {depth}: {error:?}"));
                let expected = chain_value(link, depth);
                let too_deep = if depth > MAX_DEPTH { 2 } else { 0 };
                for (encoding, decoded) in [("protobuf", &protobuf), ("JSON", &json)] {
                    let record = only_record(decoded);
                    assert_eq!(record.body.as_ref(), Some(&expected), "{encoding} {depth}");
                    assert_eq!(
                        record.attributes[0].value.as_ref(),
                        Some(&expected),
                        "{encoding} {depth}"
                    );
                    assert_eq!(decoded.values_too_deep, too_deep, "{encoding} {depth}");
                }
            }
        }
    }

    #[test]
    fn a_value_too_deep_in_a_oneof_leaves_the_value_before_it() {
        // `{"stringValue": "s", "kvlistValue": <too deep>}`: like prost,
        // which skips the renamed field and keeps the string.
        let inner = chain_json(Link::Map, MAX_DEPTH - 1);
        let value = format!(
            r#"{{"stringValue":"s","kvlistValue":{{"values":[{{"key":"k","value":{inner}}}]}}}}"#
        );
        let decoded = super::json(request_json(&value).as_bytes()).unwrap();
        assert_eq!(decoded.values_too_deep, 0, "32 levels are not too deep");
        let deeper = format!(
            r#"{{"stringValue":"s","kvlistValue":{{"values":[{{"key":"k","value":{}}}]}}}}"#,
            chain_json(Link::Map, MAX_DEPTH)
        );
        let decoded = super::json(request_json(&deeper).as_bytes()).unwrap();
        assert_eq!(decoded.values_too_deep, 2);
    }

    #[test]
    fn too_many_messages_are_refused_in_both_encodings() {
        let mut scope_logs = Vec::new();
        for _ in 0..MAX_MESSAGES_PER_REQUEST {
            scope_logs.extend_from_slice(&[0x12, 0x00]);
        }
        let mut resource_logs = Vec::new();
        length_delimited(&mut resource_logs, 2, &scope_logs);
        let mut request = Vec::new();
        length_delimited(&mut request, 1, &resource_logs);
        assert_eq!(
            super::protobuf(&mut request).unwrap_err(),
            DecodeError::TooManyMessages
        );
        let records = vec!["{}"; MAX_MESSAGES_PER_REQUEST].join(",");
        let json =
            format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{records}]}}]}}]}}"#);
        assert_eq!(
            super::json(json.as_bytes()).unwrap_err(),
            DecodeError::TooManyMessages
        );
    }

    #[test]
    fn json_follows_the_otlp_json_mapping() {
        let json = r#"{"resourceLogs":[{
            "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}],
                        "entityRefs":[{"type":"x"}]},
            "scopeLogs":[{"scope":{"name":"lib","version":"1.2","attributes":null},
              "logRecords":[{
                "timeUnixNano":"1700000000000000001","observedTimeUnixNano":2,
                "severityNumber":"SEVERITY_NUMBER_WARN","severityText":"WARN",
                "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174",
                "flags":1,"unknown":[[[{"deep":1}]]],"eventName":null,
                "body":{"kvlistValue":{"values":[
                  {"key":"i","value":{"intValue":"-42"}},
                  {"key":"j","value":{"intValue":7}},
                  {"key":"d","value":{"doubleValue":"NaN"}},
                  {"key":"e","value":{"doubleValue":3}},
                  {"key":"b","value":{"boolValue":true}},
                  {"key":"y","value":{"bytesValue":"aGkhPw=="}},
                  {"key":"u","value":{"bytesValue":"aGkhPw"}},
                  {"key":"n","value":{}},
                  {"key":"z","value":null}]}}}]}]}]}"#;
        let decoded = super::json(json.as_bytes()).unwrap();
        let resource_logs = &decoded.logs[0];
        assert_eq!(
            resource_logs.resource.as_ref().unwrap().attributes[0].key,
            "service.name"
        );
        let scope_logs = &resource_logs.scope_logs[0];
        assert_eq!(scope_logs.scope.as_ref().unwrap().version, "1.2");
        let record = &scope_logs.log_records[0];
        assert_eq!(record.time_unix_nano, 1_700_000_000_000_000_001);
        assert_eq!(record.observed_time_unix_nano, 2);
        assert_eq!(record.severity_number, 13);
        assert_eq!(record.trace_id[..2], [0x5b, 0x8e]);
        assert_eq!(record.span_id.len(), 8);
        assert_eq!(record.flags, 1);
        let Some(Value::KvlistValue(list)) = record.body.as_ref().unwrap().value.as_ref() else {
            panic!("body is not a map: {:?}", record.body);
        };
        let values: Vec<Option<&Value>> = list
            .values
            .iter()
            .map(|pair| pair.value.as_ref().and_then(|value| value.value.as_ref()))
            .collect();
        assert_eq!(values[0], Some(&Value::IntValue(-42)));
        assert_eq!(values[1], Some(&Value::IntValue(7)));
        assert!(matches!(values[2], Some(Value::DoubleValue(d)) if d.is_nan()));
        assert_eq!(values[3], Some(&Value::DoubleValue(3.0)));
        assert_eq!(values[4], Some(&Value::BoolValue(true)));
        assert_eq!(values[5], Some(&Value::BytesValue(b"hi!?".to_vec())));
        assert_eq!(values[6], Some(&Value::BytesValue(b"hi!?".to_vec())));
        assert_eq!(values[7], None);
        assert_eq!(values[8], None);
        for bad in [
            r#"{"resourceLogs":[{"scopeLogs":"#,
            r#"{"resourceLogs":{}}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz"}]}]}]}"#,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":-1}]}]}]}"#,
            r#"{"resourceLogs":[]} trailing"#,
            "[]",
        ] {
            assert_eq!(
                super::json(bad.as_bytes()).unwrap_err(),
                DecodeError::Invalid,
                "{bad}"
            );
        }
        assert!(super::json(b"{}").unwrap().logs.is_empty());
    }

    #[test]
    fn protobuf_groups_and_truncation_are_invalid() {
        let mut request = request_protobuf(&chain_protobuf(Link::Map, 3));
        let cut = request.len() - 3;
        assert_eq!(
            super::protobuf(&mut request[..cut]).unwrap_err(),
            DecodeError::Invalid
        );
        // Field 1 as a start-group (wire type 3).
        assert_eq!(
            super::protobuf(&mut [0x0b, 0x0c]).unwrap_err(),
            DecodeError::Invalid
        );
    }
}
