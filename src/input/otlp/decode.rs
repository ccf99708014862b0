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

mod seeds {
    use super::*;
    use serde::de::{
        self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
    };
    use std::cell::Cell;
    use std::fmt;
    use std::marker::PhantomData;

    /// What the seeds of one request share.
    #[derive(Default)]
    pub(super) struct Context {
        messages: Cell<usize>,
        pub values_too_deep: Cell<u64>,
        /// The decode stopped at [`MAX_MESSAGES_PER_REQUEST`].
        pub too_many: Cell<bool>,
    }

    impl Context {
        fn count_message<E: de::Error>(&self) -> Result<(), E> {
            let messages = self.messages.get() + 1;
            self.messages.set(messages);
            if messages > MAX_MESSAGES_PER_REQUEST {
                self.too_many.set(true);
                return Err(E::custom("too many messages"));
            }
            Ok(())
        }
    }

    /// The top-level document.
    #[derive(Default)]
    pub(super) struct Request {
        pub resource_logs: Vec<ResourceLogs>,
    }

    /// A message read from a JSON object, key by key.
    pub(super) trait Object: Default + Sized {
        /// Its keys; others are skipped.
        const KEYS: &'static [&'static str];
        /// Reads the value of `key` (one of `KEYS`). `level`: the arrays
        /// and maps around this message.
        fn field<'de, A: MapAccess<'de>>(
            &mut self,
            key: &'static str,
            map: &mut A,
            context: &Context,
            level: usize,
        ) -> Result<(), A::Error>;
    }

    /// Reads a key as one of `KEYS` (`None`: unknown), without allocating.
    struct KeySeed(&'static [&'static str]);

    impl<'de> DeserializeSeed<'de> for KeySeed {
        type Value = Option<&'static str>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl Visitor<'_> for KeySeed {
        type Value = Option<&'static str>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
            Ok(self.0.iter().copied().find(|known| *known == key))
        }
    }

    /// One message `T` from a JSON object.
    pub(super) struct ObjectSeed<'a, T> {
        context: &'a Context,
        level: usize,
        kind: PhantomData<T>,
    }

    impl<'a, T> ObjectSeed<'a, T> {
        pub fn new(context: &'a Context, level: usize) -> Self {
            Self {
                context,
                level,
                kind: PhantomData,
            }
        }
    }

    impl<'de, T: Object> DeserializeSeed<'de> for ObjectSeed<'_, T> {
        type Value = T;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de, T: Object> Visitor<'de> for ObjectSeed<'_, T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an OTLP/JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
            self.context.count_message()?;
            let mut message = T::default();
            while let Some(key) = map.next_key_seed(KeySeed(T::KEYS))? {
                match key {
                    Some(key) => message.field(key, &mut map, self.context, self.level)?,
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(message)
        }
    }

    /// A list of messages `T` from a JSON array.
    struct ListSeed<'a, T>(ObjectSeed<'a, T>);

    impl<'de, T: Object> DeserializeSeed<'de> for ListSeed<'_, T> {
        type Value = Vec<T>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de, T: Object> Visitor<'de> for ListSeed<'_, T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of OTLP/JSON objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut list = Vec::new();
            while let Some(item) =
                seq.next_element_seed(ObjectSeed::<T>::new(self.0.context, self.0.level))?
            {
                list.push(item);
            }
            Ok(list)
        }
    }

    /// `null` or what `S` reads.
    struct Nullable<S>(S);

    impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nullable<S> {
        type Value = Option<S::Value>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_option(self)
        }
    }

    impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Nullable<S> {
        type Value = Option<S::Value>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a value or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            self.0.deserialize(d).map(Some)
        }
    }

    /// Skips a value of any depth (serde_json does so without recursion).
    struct Skip;

    impl<'de> DeserializeSeed<'de> for Skip {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_ignored_any(IgnoredAny).map(|_| ())
        }
    }

    /// The scalar forms of the OTLP/JSON mapping (proto3 JSON): 64-bit
    /// integers as numbers or strings, doubles also as "NaN" and
    /// "±Infinity", enums as numbers or names, bytes as hex (ids) or
    /// base64 (values).
    #[derive(Clone, Copy)]
    enum Scalar {
        U64,
        I64,
        F64,
        Severity,
        Hex,
        Base64,
    }

    enum ScalarValue {
        U64(u64),
        I64(i64),
        F64(f64),
        Bytes(Vec<u8>),
    }

    impl<'de> DeserializeSeed<'de> for Scalar {
        type Value = ScalarValue;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ScalarValue, D::Error> {
            d.deserialize_any(self)
        }
    }

    fn hex_digit(byte: u8) -> Option<u8> {
        match byte {
            b'0'..=b'9' => Some(byte - b'0'),
            b'a'..=b'f' => Some(byte - b'a' + 10),
            b'A'..=b'F' => Some(byte - b'A' + 10),
            _ => None,
        }
    }

    fn decode_hex(text: &str) -> Option<Vec<u8>> {
        let text = text.strip_prefix("0x").unwrap_or(text).as_bytes();
        if !text.len().is_multiple_of(2) {
            return None;
        }
        text.chunks(2)
            .map(|pair| Some(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?))
            .collect()
    }

    /// Standard or URL-safe base64, with or without padding (proto3 JSON).
    fn decode_base64(text: &str) -> Option<Vec<u8>> {
        let text = text.trim_end_matches('=').as_bytes();
        let sextet = |byte: u8| -> Option<u32> {
            Some(u32::from(match byte {
                b'A'..=b'Z' => byte - b'A',
                b'a'..=b'z' => byte - b'a' + 26,
                b'0'..=b'9' => byte - b'0' + 52,
                b'+' | b'-' => 62,
                b'/' | b'_' => 63,
                _ => return None,
            }))
        };
        if text.len() % 4 == 1 {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
        for group in text.chunks(4) {
            let mut bits = 0u32;
            for (index, &byte) in group.iter().enumerate() {
                bits |= sextet(byte)? << (18 - 6 * index);
            }
            out.extend_from_slice(&bits.to_be_bytes()[1..group.len()]);
        }
        Some(out)
    }

    impl Visitor<'_> for Scalar {
        type Value = ScalarValue;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(match self {
                Scalar::U64 => "an unsigned integer, as a number or a string",
                Scalar::I64 => "an integer, as a number or a string",
                Scalar::F64 => "a number, \"NaN\" or \"Infinity\"",
                Scalar::Severity => "a severity number or name",
                Scalar::Hex => "a hex string",
                Scalar::Base64 => "a base64 string",
            })
        }
        fn visit_u64<E: de::Error>(self, value: u64) -> Result<ScalarValue, E> {
            match self {
                Scalar::U64 => Ok(ScalarValue::U64(value)),
                Scalar::I64 | Scalar::Severity => i64::try_from(value)
                    .map(ScalarValue::I64)
                    .map_err(|_| E::custom("integer out of range")),
                Scalar::F64 => Ok(ScalarValue::F64(value as f64)),
                _ => Err(E::invalid_type(de::Unexpected::Unsigned(value), &self)),
            }
        }
        fn visit_i64<E: de::Error>(self, value: i64) -> Result<ScalarValue, E> {
            match self {
                Scalar::U64 => u64::try_from(value)
                    .map(ScalarValue::U64)
                    .map_err(|_| E::custom("negative unsigned integer")),
                Scalar::I64 | Scalar::Severity => Ok(ScalarValue::I64(value)),
                Scalar::F64 => Ok(ScalarValue::F64(value as f64)),
                _ => Err(E::invalid_type(de::Unexpected::Signed(value), &self)),
            }
        }
        fn visit_f64<E: de::Error>(self, value: f64) -> Result<ScalarValue, E> {
            match self {
                Scalar::F64 => Ok(ScalarValue::F64(value)),
                _ => Err(E::invalid_type(de::Unexpected::Float(value), &self)),
            }
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<ScalarValue, E> {
            let bad = || E::invalid_value(de::Unexpected::Str(text), &self);
            match self {
                Scalar::U64 => text.parse().map(ScalarValue::U64).map_err(|_| bad()),
                Scalar::I64 => text.parse().map(ScalarValue::I64).map_err(|_| bad()),
                Scalar::F64 => match text {
                    "NaN" => Ok(ScalarValue::F64(f64::NAN)),
                    "Infinity" => Ok(ScalarValue::F64(f64::INFINITY)),
                    "-Infinity" => Ok(ScalarValue::F64(f64::NEG_INFINITY)),
                    _ => text.parse().map(ScalarValue::F64).map_err(|_| bad()),
                },
                Scalar::Severity => SeverityNumber::from_str_name(text)
                    .map(|severity| ScalarValue::I64(severity as i64))
                    .ok_or_else(bad),
                Scalar::Hex => decode_hex(text).map(ScalarValue::Bytes).ok_or_else(bad),
                Scalar::Base64 => decode_base64(text).map(ScalarValue::Bytes).ok_or_else(bad),
            }
        }
    }

    fn u64_field<'de, A: MapAccess<'de>>(map: &mut A) -> Result<u64, A::Error> {
        match map.next_value_seed(Nullable(Scalar::U64))? {
            Some(ScalarValue::U64(value)) => Ok(value),
            _ => Ok(0),
        }
    }

    fn u32_field<'de, A: MapAccess<'de>>(map: &mut A) -> Result<u32, A::Error> {
        u32::try_from(u64_field(map)?).map_err(|_| de::Error::custom("integer out of range"))
    }

    fn i64_field<'de, A: MapAccess<'de>>(map: &mut A, kind: Scalar) -> Result<i64, A::Error> {
        match map.next_value_seed(Nullable(kind))? {
            Some(ScalarValue::I64(value)) => Ok(value),
            _ => Ok(0),
        }
    }

    fn i32_field<'de, A: MapAccess<'de>>(map: &mut A, kind: Scalar) -> Result<i32, A::Error> {
        i32::try_from(i64_field(map, kind)?).map_err(|_| de::Error::custom("integer out of range"))
    }

    fn bytes_field<'de, A: MapAccess<'de>>(map: &mut A, kind: Scalar) -> Result<Vec<u8>, A::Error> {
        match map.next_value_seed(Nullable(kind))? {
            Some(ScalarValue::Bytes(bytes)) => Ok(bytes),
            _ => Ok(Vec::new()),
        }
    }

    fn string_field<'de, A: MapAccess<'de>>(map: &mut A) -> Result<String, A::Error> {
        Ok(map.next_value::<Option<String>>()?.unwrap_or_default())
    }

    fn list_field<'de, A: MapAccess<'de>, T: Object>(
        map: &mut A,
        context: &Context,
        level: usize,
    ) -> Result<Vec<T>, A::Error> {
        let seed = ListSeed(ObjectSeed::<T>::new(context, level));
        Ok(map.next_value_seed(Nullable(seed))?.unwrap_or_default())
    }

    fn object_field<'de, A: MapAccess<'de>, T: Object>(
        map: &mut A,
        context: &Context,
        level: usize,
    ) -> Result<Option<T>, A::Error> {
        map.next_value_seed(Nullable(ObjectSeed::<T>::new(context, level)))
    }

    impl Object for Request {
        const KEYS: &'static [&'static str] = &["resourceLogs"];
        fn field<'de, A: MapAccess<'de>>(
            &mut self,
            _key: &'static str,
            map: &mut A,
            context: &Context,
            level: usize,
        ) -> Result<(), A::Error> {
            self.resource_logs = list_field(map, context, level)?;
            Ok(())
        }
    }

    impl Object for ResourceLogs {
        const KEYS: &'static [&'static str] = &["resource", "scopeLogs", "schemaUrl"];
        fn field<'de, A: MapAccess<'de>>(
            &mut self,
            key: &'static str,
            map: &mut A,
            context: &Context,
            level: usize,
        ) -> Result<(), A::Error> {
            match key {
                "resource" => self.resource = object_field(map, context, level)?,
                "scopeLogs" => self.scope_logs = list_field(map, context, level)?,
                _ => self.schema_url = string_field(map)?,
            }
            Ok(())
        }
    }

    impl Object for Resource {
        // `entityRefs` is not written out: skipped like an unknown key.
        const KEYS: &'static [&'static str] = &["attributes", "droppedAttributesCount"];
        fn field<'de, A: MapAccess<'de>>(
            &mut self,
            key: &'static str,
            map: &mut A,
            context: &Context,
            level: usize,
        ) -> Result<(), A::Error> {
            match key {
                "attributes" => self.attributes = list_field(map, context, level)?,
                _ => self.dropped_attributes_count = u32_field(map)?,
            }
            Ok(())
        }
    }

    impl Object for ScopeLogs {
        const KEYS: &'static [&'static str] = &["scope", "logRecords", "schemaUrl"];
        fn field<'de, A: MapAccess<'de>>(
            &mut self,
            key: &'static str,
            map: &mut A,
            context: &Context,
            level: usize,
        ) -> Result<(), A::Error> {
            match key {
                "scope" => self.scope = object_field(map, context, level)?,
                "logRecords" => self.log_records = list_field(map, context, level)?,
                _ => self.schema_url = string_field(map)?,
            }
            Ok(())
        }
    }

    impl Object for InstrumentationScope {
        const KEYS: &'static [&'static str] =
            &["name", "version", "attributes", "droppedAttributesCount"];
        fn field<'de, A: MapAccess<'de>>(
            &mut self,
            key: &'static str,
            map: &mut A,
            context: &Context,
            level: usize,
        ) -> Result<(), A::Error> {
            match key {
                "name" => self.name = string_field(map)?,
                "version" => self.version = string_field(map)?,
                "attributes" => self.attributes = list_field(map, context, level)?,
                _ => self.dropped_attributes_count = u32_field(map)?,
            }
            Ok(())
        }
    }

    impl Object for LogRecord {
        const KEYS: &'static [&'static str] = &[
            "timeUnixNano",
            "observedTimeUnixNano",
            "severityNumber",
            "severityText",
            "body",
            "attributes",
            "droppedAttributesCount",
            "flags",
            "traceId",
            "spanId",
            "eventName",
        ];
        fn field<'de, A: MapAccess<'de>>(
            &mut self,
            key: &'static str,
            map: &mut A,
            context: &Context,
            level: usize,
        ) -> Result<(), A::Error> {
            match key {
                "timeUnixNano" => self.time_unix_nano = u64_field(map)?,
                "observedTimeUnixNano" => self.observed_time_unix_nano = u64_field(map)?,
                "severityNumber" => self.severity_number = i32_field(map, Scalar::Severity)?,
                "severityText" => self.severity_text = string_field(map)?,
                "body" => self.body = object_field(map, context, level)?,
                "attributes" => self.attributes = list_field(map, context, level)?,
                "droppedAttributesCount" => self.dropped_attributes_count = u32_field(map)?,
                "flags" => self.flags = u32_field(map)?,
                "traceId" => self.trace_id = bytes_field(map, Scalar::Hex)?,
                "spanId" => self.span_id = bytes_field(map, Scalar::Hex)?,
                _ => self.event_name = string_field(map)?,
            }
            Ok(())
        }
    }

    impl Object for KeyValue {
        const KEYS: &'static [&'static str] = &["key", "value", "keyStrindex"];
        fn field<'de, A: MapAccess<'de>>(
            &mut self,
            key: &'static str,
            map: &mut A,
            context: &Context,
            level: usize,
        ) -> Result<(), A::Error> {
            match key {
                "key" => self.key = string_field(map)?,
                "value" => self.value = object_field(map, context, level)?,
                _ => self.key_strindex = i32_field(map, Scalar::I64)?,
            }
            Ok(())
        }
    }

    impl Object for AnyValue {
        const KEYS: &'static [&'static str] = &[
            "stringValue",
            "boolValue",
            "intValue",
            "doubleValue",
            "arrayValue",
            "kvlistValue",
            "bytesValue",
        ];
        /// Like prost's oneof: the last key present wins; `null` leaves
        /// the value as it was.
        fn field<'de, A: MapAccess<'de>>(
            &mut self,
            key: &'static str,
            map: &mut A,
            context: &Context,
            level: usize,
        ) -> Result<(), A::Error> {
            use any_value::Value;
            let value = match key {
                "arrayValue" | "kvlistValue" if level >= MAX_DEPTH => {
                    // Too deep: skipped unread and counted, like a
                    // protobuf array or map at this depth.
                    if map.next_value_seed(Nullable(Skip))?.is_some() {
                        context
                            .values_too_deep
                            .set(context.values_too_deep.get() + 1);
                    }
                    None
                }
                "arrayValue" => {
                    object_field::<_, ArrayValue>(map, context, level + 1)?.map(Value::ArrayValue)
                }
                "kvlistValue" => object_field::<_, KeyValueList>(map, context, level + 1)?
                    .map(Value::KvlistValue),
                "stringValue" => map.next_value::<Option<String>>()?.map(Value::StringValue),
                "boolValue" => map.next_value::<Option<bool>>()?.map(Value::BoolValue),
                "intValue" => match map.next_value_seed(Nullable(Scalar::I64))? {
                    Some(ScalarValue::I64(value)) => Some(Value::IntValue(value)),
                    _ => None,
                },
                "doubleValue" => match map.next_value_seed(Nullable(Scalar::F64))? {
                    Some(ScalarValue::F64(value)) => Some(Value::DoubleValue(value)),
                    _ => None,
                },
                _ => match map.next_value_seed(Nullable(Scalar::Base64))? {
                    Some(ScalarValue::Bytes(bytes)) => Some(Value::BytesValue(bytes)),
                    _ => None,
                },
            };
            if value.is_some() {
                self.value = value;
            }
            Ok(())
        }
    }

    impl Object for ArrayValue {
        const KEYS: &'static [&'static str] = &["values"];
        fn field<'de, A: MapAccess<'de>>(
            &mut self,
            _key: &'static str,
            map: &mut A,
            context: &Context,
            level: usize,
        ) -> Result<(), A::Error> {
            self.values = list_field(map, context, level)?;
            Ok(())
        }
    }

    impl Object for KeyValueList {
        const KEYS: &'static [&'static str] = &["values"];
        fn field<'de, A: MapAccess<'de>>(
            &mut self,
            _key: &'static str,
            map: &mut A,
            context: &Context,
            level: usize,
        ) -> Result<(), A::Error> {
            self.values = list_field(map, context, level)?;
            Ok(())
        }
    }
}

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
