//! The OTLP/JSON decoder: serde seeds that build the `opentelemetry-proto`
//! messages straight from the request body, following the proto3 JSON
//! mapping (ids as hex, bytes as base64, 64-bit integers as strings or
//! numbers), counting messages against [`MAX_MESSAGES_PER_REQUEST`] and
//! leaving values nested too deep out ([`Context`]).

use super::*;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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
/// The URL-safe letters are read as the standard ones, so either
/// alphabet (or a mix) decodes.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    let text = text.trim_end_matches('=');
    if text.contains(['-', '_']) {
        LENIENT
            .decode(text.replace('-', "+").replace('_', "/"))
            .ok()
    } else {
        LENIENT.decode(text).ok()
    }
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

/// Writes `impl Object` for a message whose keys each fill one field:
/// `"jsonKey" => field: reader`, the reader one of `object`, `list`,
/// `string`, `u32`, `u64`, `i32(Scalar)` or `bytes(Scalar)`. The last key
/// is the match's catch-all, as `KeySeed` hands over only keys in `KEYS`.
///
/// `object!(@impl Type [keys] |this, key, map, context, level| body)`
/// writes one whose `field` is `body` (for a message read otherwise).
macro_rules! object {
    ($($ty:ident { $($key:literal => $field:ident: $read:ident $(($arg:ident))?),+ $(,)? })+) => {$(
        object!(@impl $ty [$($key),+] |this, key, map, context, level| {
            object!(@arms this key map context level []
                $($key => $field: $read $(($arg))?,)+);
            Ok(())
        });
    )+};
    (@impl $ty:ident [$($key:literal),+ $(,)?]
        |$s:ident, $k:ident, $m:ident, $c:ident, $l:ident| $body:block) => {
        impl Object for $ty {
            const KEYS: &'static [&'static str] = &[$($key),+];
            fn field<'de, A: MapAccess<'de>>(
                &mut self,
                $k: &'static str,
                $m: &mut A,
                $c: &Context,
                $l: usize,
            ) -> Result<(), A::Error> {
                let $s = self;
                $body
            }
        }
    };
    // One key: nothing to match.
    (@arms $s:ident $k:ident $m:ident $c:ident $l:ident []
        $key:literal => $field:ident: $read:ident $(($arg:ident))?,) => {{
        let _ = $k;
        $s.$field = object!(@read $m $c $l $read $($arg)?)?;
    }};
    (@arms $s:ident $k:ident $m:ident $c:ident $l:ident [$($done:tt)*]
        $key:literal => $field:ident: $read:ident $(($arg:ident))?,) => {
        match $k {
            $($done)*
            _ => $s.$field = object!(@read $m $c $l $read $($arg)?)?,
        }
    };
    (@arms $s:ident $k:ident $m:ident $c:ident $l:ident [$($done:tt)*]
        $key:literal => $field:ident: $read:ident $(($arg:ident))?, $($rest:tt)+) => {
        object!(@arms $s $k $m $c $l
            [$($done)* $key => $s.$field = object!(@read $m $c $l $read $($arg)?)?,]
            $($rest)+)
    };
    (@read $m:ident $c:ident $l:ident object) => { object_field($m, $c, $l) };
    (@read $m:ident $c:ident $l:ident list) => { list_field($m, $c, $l) };
    (@read $m:ident $c:ident $l:ident string) => { string_field($m) };
    (@read $m:ident $c:ident $l:ident u32) => { u32_field($m) };
    (@read $m:ident $c:ident $l:ident u64) => { u64_field($m) };
    (@read $m:ident $c:ident $l:ident i32 $kind:ident) => { i32_field($m, Scalar::$kind) };
    (@read $m:ident $c:ident $l:ident bytes $kind:ident) => { bytes_field($m, Scalar::$kind) };
}

object! {
    Request {
        "resourceLogs" => resource_logs: list,
    }
    ResourceLogs {
        "resource" => resource: object,
        "scopeLogs" => scope_logs: list,
        "schemaUrl" => schema_url: string,
    }
    // `entityRefs` is not written out: skipped like an unknown key.
    Resource {
        "attributes" => attributes: list,
        "droppedAttributesCount" => dropped_attributes_count: u32,
    }
    ScopeLogs {
        "scope" => scope: object,
        "logRecords" => log_records: list,
        "schemaUrl" => schema_url: string,
    }
    InstrumentationScope {
        "name" => name: string,
        "version" => version: string,
        "attributes" => attributes: list,
        "droppedAttributesCount" => dropped_attributes_count: u32,
    }
    LogRecord {
        "timeUnixNano" => time_unix_nano: u64,
        "observedTimeUnixNano" => observed_time_unix_nano: u64,
        "severityNumber" => severity_number: i32(Severity),
        "severityText" => severity_text: string,
        "body" => body: object,
        "attributes" => attributes: list,
        "droppedAttributesCount" => dropped_attributes_count: u32,
        "flags" => flags: u32,
        "traceId" => trace_id: bytes(Hex),
        "spanId" => span_id: bytes(Hex),
        "eventName" => event_name: string,
    }
    KeyValue {
        "key" => key: string,
        "value" => value: object,
        "keyStrindex" => key_strindex: i32(I64),
    }
    ArrayValue {
        "values" => values: list,
    }
    KeyValueList {
        "values" => values: list,
    }
}

// Like prost's oneof: the last key present wins; `null` leaves the value
// as it was.
object!(@impl AnyValue [
        "stringValue",
        "boolValue",
        "intValue",
        "doubleValue",
        "arrayValue",
        "kvlistValue",
        "bytesValue",
    ]
    |this, key, map, context, level| {
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
            "kvlistValue" => {
                object_field::<_, KeyValueList>(map, context, level + 1)?.map(Value::KvlistValue)
            }
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
            this.value = value;
        }
        Ok(())
    }
);

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_reads_either_alphabet_with_or_without_padding() {
        let cases: [(&str, Option<&[u8]>); 11] = [
            ("", Some(b"")),
            ("Zm9v", Some(b"foo")),
            ("Zm9vYg", Some(b"foob")),
            ("Zm9vYg==", Some(b"foob")),
            ("Zm9vYmE=", Some(b"fooba")),
            ("+/8=", Some(&[0xfb, 0xff])),
            ("-_8", Some(&[0xfb, 0xff])),
            ("+_8", Some(&[0xfb, 0xff])),
            ("QQ====", Some(b"A")),
            ("Zm9vY", None),
            ("Zm9v!", None),
        ];
        for (text, expected) in cases {
            assert_eq!(decode_base64(text).as_deref(), expected, "{text:?}");
        }
        // Bits past the last byte are ignored, as before.
        assert_eq!(decode_base64("QR").as_deref(), Some(&b"A"[..]));
    }
}
