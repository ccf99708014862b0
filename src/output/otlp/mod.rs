//! NDJSON batches to OTLP/HTTP protobuf bodies (`ExportLogsServiceRequest`),
//! for the `otlp` output.
//!
//! An [`Encoder`] belongs to one output worker and writes a whole batch into
//! its reused `out` buffer, with protobuf primitives and no allocation per
//! record: each line is read by a small borrowing JSON reader ([`Json`]),
//! strings are unescaped straight into `out`, and the length of every nested
//! message is written after its content (one byte reserved, the content
//! moved up in the rare case the length needs more).
//!
//! Each line becomes one LogRecord:
//! - a line in the shape ringway's OTLP input writes (it starts with
//!   `{"time_unix_nano":`) is rebuilt field by field, and consecutive
//!   records with the same `resource` and `scope` share one ResourceLogs /
//!   ScopeLogs, so OTLP in → ringway → OTLP out gives back the records;
//! - any other JSON object maps by convention: body from `message` (else
//!   `msg`, else the whole line), severity from `level` (else `severity`),
//!   time from `timestamp`, `time`, `ts` or `@timestamp`, every other key an
//!   attribute (typed);
//! - a line that is not a JSON object becomes a record whose body is the
//!   line as a string.
//!
//! Each line is read twice: once to check it and find the keys that matter
//! ([`Fields`]), once to write it.

mod fields;
mod json;
mod proto;

use fields::*;
use json::*;
use proto::*;
use std::ops::Range;

/// Deepest nesting of arrays and maps written out; deeper values are left
/// out (like `null`).
const MAX_DEPTH: usize = 32;
/// Deepest nesting read at all; a deeper line is not read as JSON (it
/// becomes a string body), which bounds the reader's recursion.
const MAX_READ_DEPTH: usize = 128;

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

// Field numbers of opentelemetry/proto/{collector/logs,logs,common,resource}/v1.
const REQUEST_RESOURCE_LOGS: u64 = 1;
const RESOURCE_LOGS_RESOURCE: u64 = 1;
const RESOURCE_LOGS_SCOPE_LOGS: u64 = 2;
const RESOURCE_ATTRIBUTES: u64 = 1;
const SCOPE_LOGS_SCOPE: u64 = 1;
const SCOPE_LOGS_LOG_RECORDS: u64 = 2;
const SCOPE_NAME: u64 = 1;
const SCOPE_VERSION: u64 = 2;
const SCOPE_ATTRIBUTES: u64 = 3;
const RECORD_TIME: u64 = 1;
const RECORD_SEVERITY_NUMBER: u64 = 2;
const RECORD_SEVERITY_TEXT: u64 = 3;
const RECORD_BODY: u64 = 5;
const RECORD_ATTRIBUTES: u64 = 6;
const RECORD_FLAGS: u64 = 8;
const RECORD_TRACE_ID: u64 = 9;
const RECORD_SPAN_ID: u64 = 10;
const RECORD_OBSERVED_TIME: u64 = 11;
const ANY_STRING: u64 = 1;
const ANY_BOOL: u64 = 2;
const ANY_INT: u64 = 3;
const ANY_DOUBLE: u64 = 4;
const ANY_ARRAY: u64 = 5;
const ANY_KVLIST: u64 = 6;
const ARRAY_VALUES: u64 = 1;
const KVLIST_VALUES: u64 = 1;
const KV_KEY: u64 = 1;
const KV_VALUE: u64 = 2;

/// How ringway's OTLP input starts every line it writes.
const OTLP_LINE_PREFIX: &[u8] = b"{\"time_unix_nano\":";

// ---------------------------------------------------------------------------
// The encoder

/// One output worker's encoder: `out` holds the last batch's request body.
/// Encoded bytes after which a request is closed and the rest of the batch
/// goes in the next one. Every message takes at least 2 bytes (tag and
/// length), so a request holds at most about 262,144 messages — what an
/// OTLP receiver such as ringway's own accepts — whatever the lines are
/// (a batch of empty lines encodes 15 times larger than itself).
pub(crate) const REQUEST_BYTES: usize = 512 * 1024;

pub(crate) struct Encoder {
    pub out: Vec<u8>,
    /// Content starts of the open ResourceLogs and ScopeLogs.
    resource_logs: Option<usize>,
    scope_logs: Option<usize>,
    /// The open group's resource and scope values, as ranges of the batch.
    group: (Option<Range<usize>>, Option<Range<usize>>),
}

impl Encoder {
    pub fn new(capacity: usize) -> Self {
        Self {
            out: Vec::with_capacity(capacity),
            resource_logs: None,
            scope_logs: None,
            group: (None, None),
        }
    }

    /// Encodes every line of `batch` (whole lines, each ending in `\n`)
    /// into `out` as one `ExportLogsServiceRequest`. Records without an
    /// observed time get `observed_nanos`.
    /// Encodes the lines of `batch` from offset `from` (a line start) into
    /// one request, stopping after the line that takes the request past
    /// [`REQUEST_BYTES`]; returns the offset after the last line encoded.
    pub fn encode(&mut self, batch: &[u8], from: usize, observed_nanos: u64) -> usize {
        self.out.clear();
        self.resource_logs = None;
        self.scope_logs = None;
        let mut start = from;
        while start < batch.len() && self.out.len() < REQUEST_BYTES {
            let end = memchr::memchr(b'\n', &batch[start..]).map_or(batch.len(), |at| start + at);
            let mut line = &batch[start..end];
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            self.line(batch, start, line, observed_nanos);
            start = (end + 1).min(batch.len());
        }
        self.close_scope();
        self.close_resource();
        start
    }

    fn line(&mut self, batch: &[u8], offset: usize, line: &[u8], observed: u64) {
        let fields = survey(line).ok();
        let otlp = fields.is_some() && line.starts_with(OTLP_LINE_PREFIX);
        let absolute = |range: &Option<Range<usize>>| {
            range
                .as_ref()
                .map(|range| offset + range.start..offset + range.end)
        };
        let (resource, scope) = match &fields {
            Some(fields) if otlp => (absolute(&fields.resource), absolute(&fields.scope)),
            _ => (None, None),
        };
        self.enter_group(batch, resource, scope);
        let mark = self.out.len();
        let written = match &fields {
            Some(_) if otlp => self.otlp_record(line, observed),
            Some(fields) => self.json_record(line, fields, observed),
            None => Err(Bad),
        };
        if written.is_err() {
            self.out.truncate(mark);
            self.text_record(line, observed);
        }
    }

    fn close_scope(&mut self) {
        if let Some(start) = self.scope_logs.take() {
            end(&mut self.out, start);
        }
    }

    fn close_resource(&mut self) {
        self.close_scope();
        if let Some(start) = self.resource_logs.take() {
            end(&mut self.out, start);
        }
    }

    /// Makes the open ScopeLogs the one for `resource` and `scope` (values
    /// in `batch`), opening new ones when they differ from the last line's.
    fn enter_group(
        &mut self,
        batch: &[u8],
        resource: Option<Range<usize>>,
        scope: Option<Range<usize>>,
    ) {
        let same = |a: &Option<Range<usize>>, b: &Option<Range<usize>>| match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => batch[a.clone()] == batch[b.clone()],
            _ => false,
        };
        let same_resource = self.resource_logs.is_some() && same(&self.group.0, &resource);
        if same_resource && self.scope_logs.is_some() && same(&self.group.1, &scope) {
            return;
        }
        if same_resource {
            self.close_scope();
        } else {
            self.close_resource();
            self.resource_logs = Some(begin(&mut self.out, REQUEST_RESOURCE_LOGS));
            if let Some(range) = &resource {
                let mark = self.out.len();
                let field = begin(&mut self.out, RESOURCE_LOGS_RESOURCE);
                let mut json = Json::at(batch, range);
                if self.pairs(&mut json, RESOURCE_ATTRIBUTES, 0).is_ok() {
                    end(&mut self.out, field);
                } else {
                    self.out.truncate(mark);
                }
            }
        }
        self.scope_logs = Some(begin(&mut self.out, RESOURCE_LOGS_SCOPE_LOGS));
        if let Some(range) = &scope {
            let mark = self.out.len();
            let field = begin(&mut self.out, SCOPE_LOGS_SCOPE);
            if self.scope(&mut Json::at(batch, range)).is_ok() {
                end(&mut self.out, field);
            } else {
                self.out.truncate(mark);
            }
        }
        self.group = (resource, scope);
    }

    fn scope(&mut self, json: &mut Json<'_>) -> Parse<()> {
        json.expect(b'{')?;
        let mut first = true;
        while let Some(key) = json.next_key(&mut first)? {
            match key.raw {
                b"name" | b"version" if !key.escaped && json.peek() == Some(b'"') => {
                    let field = if key.raw == b"name" {
                        SCOPE_NAME
                    } else {
                        SCOPE_VERSION
                    };
                    let text = json.string()?;
                    if !text.raw.is_empty() {
                        self.string_field(field, text);
                    }
                }
                _ => self.key_value(SCOPE_ATTRIBUTES, key, json, 0)?,
            }
        }
        Ok(())
    }

    fn string_field(&mut self, field: u64, text: Text<'_>) {
        let start = begin(&mut self.out, field);
        text.write(&mut self.out);
        end(&mut self.out, start);
    }

    /// Writes the next value as the fields of an AnyValue.
    fn any_value(&mut self, json: &mut Json<'_>, depth: usize) -> Parse<()> {
        match json.peek().ok_or(Bad)? {
            b'"' => {
                let text = json.string()?;
                self.string_field(ANY_STRING, text);
            }
            b't' => {
                json.literal(b"true")?;
                tag(&mut self.out, ANY_BOOL, VARINT);
                self.out.push(1);
            }
            b'f' => {
                json.literal(b"false")?;
                tag(&mut self.out, ANY_BOOL, VARINT);
                self.out.push(0);
            }
            b'n' => json.literal(b"null")?,
            b'[' | b'{' if depth >= MAX_DEPTH => json.skip(depth)?,
            b'[' => {
                json.at += 1;
                let array = begin(&mut self.out, ANY_ARRAY);
                let mut first = true;
                while json.next_item(&mut first)? {
                    let item = begin(&mut self.out, ARRAY_VALUES);
                    self.any_value(json, depth + 1)?;
                    end(&mut self.out, item);
                }
                end(&mut self.out, array);
            }
            b'{' => {
                let list = begin(&mut self.out, ANY_KVLIST);
                self.pairs(json, KVLIST_VALUES, depth + 1)?;
                end(&mut self.out, list);
            }
            _ => match number_value(json.number()?)? {
                Number::Int(int) => {
                    tag(&mut self.out, ANY_INT, VARINT);
                    varint(&mut self.out, int as u64);
                }
                Number::Double(double) => fixed64(&mut self.out, ANY_DOUBLE, double.to_bits()),
            },
        }
        Ok(())
    }

    /// Writes an object's pairs as KeyValues in `field`.
    fn pairs(&mut self, json: &mut Json<'_>, field: u64, depth: usize) -> Parse<()> {
        json.expect(b'{')?;
        let mut first = true;
        while let Some(key) = json.next_key(&mut first)? {
            self.key_value(field, key, json, depth)?;
        }
        Ok(())
    }

    fn key_value(
        &mut self,
        field: u64,
        key: Text<'_>,
        json: &mut Json<'_>,
        depth: usize,
    ) -> Parse<()> {
        let pair = begin(&mut self.out, field);
        self.string_field(KV_KEY, key);
        let value = begin(&mut self.out, KV_VALUE);
        self.any_value(json, depth)?;
        end(&mut self.out, value);
        end(&mut self.out, pair);
        Ok(())
    }

    /// A line as ringway's OTLP input writes it, field by field.
    fn otlp_record(&mut self, line: &[u8], observed: u64) -> Parse<()> {
        let record = begin(&mut self.out, SCOPE_LOGS_LOG_RECORDS);
        let mut json = Json::new(line);
        json.expect(b'{')?;
        let mut first = true;
        let mut observed_given = false;
        while let Some(key) = json.next_key(&mut first)? {
            let raw = if key.escaped { &b""[..] } else { key.raw };
            match raw {
                b"time_unix_nano" | b"observed_time_unix_nano" => {
                    // fixed64 on the wire: the whole u64 range.
                    let nanos = std::str::from_utf8(json.number()?)
                        .ok()
                        .and_then(|text| text.parse::<u64>().ok())
                        .ok_or(Bad)?;
                    if nanos != 0 {
                        let field = if raw == b"time_unix_nano" {
                            RECORD_TIME
                        } else {
                            observed_given = true;
                            RECORD_OBSERVED_TIME
                        };
                        fixed64(&mut self.out, field, nanos as u64);
                    }
                }
                b"severity_text" => {
                    let text = json.string()?;
                    if !text.raw.is_empty() {
                        self.string_field(RECORD_SEVERITY_TEXT, text);
                    }
                }
                b"severity_number" => {
                    let Number::Int(number) = number_value(json.number()?)? else {
                        return Err(Bad);
                    };
                    if number != 0 {
                        tag(&mut self.out, RECORD_SEVERITY_NUMBER, VARINT);
                        varint(&mut self.out, number as u64);
                    }
                }
                b"body" => {
                    if json.peek() == Some(b'n') {
                        json.literal(b"null")?;
                    } else {
                        let body = begin(&mut self.out, RECORD_BODY);
                        self.any_value(&mut json, 0)?;
                        end(&mut self.out, body);
                    }
                }
                b"attributes" => self.pairs(&mut json, RECORD_ATTRIBUTES, 0)?,
                b"resource" | b"scope" => json.skip(0)?,
                b"trace_id" => {
                    if let Some(id) = parse_hex_id::<16>(&json.string()?) {
                        tag(&mut self.out, RECORD_TRACE_ID, LEN);
                        varint(&mut self.out, 16);
                        self.out.extend_from_slice(&id);
                    }
                }
                b"span_id" => {
                    if let Some(id) = parse_hex_id::<8>(&json.string()?) {
                        tag(&mut self.out, RECORD_SPAN_ID, LEN);
                        varint(&mut self.out, 8);
                        self.out.extend_from_slice(&id);
                    }
                }
                b"flags" => {
                    let Number::Int(flags) = number_value(json.number()?)? else {
                        return Err(Bad);
                    };
                    let flags = u32::try_from(flags).map_err(|_| Bad)?;
                    if flags != 0 {
                        tag(&mut self.out, RECORD_FLAGS, FIXED32);
                        self.out.extend_from_slice(&flags.to_le_bytes());
                    }
                }
                _ => self.key_value(RECORD_ATTRIBUTES, key, &mut json, 0)?,
            }
        }
        if !observed_given {
            fixed64(&mut self.out, RECORD_OBSERVED_TIME, observed);
        }
        end(&mut self.out, record);
        Ok(())
    }

    /// Any other JSON object, by the conventions of the module comment.
    fn json_record(&mut self, line: &[u8], fields: &Fields, observed: u64) -> Parse<()> {
        let body = fields.message.as_ref().or(fields.msg.as_ref());
        let time_at = fields.times.iter().flatten().next();
        let time = time_at.and_then(|range| parse_time(&line[range.clone()]));
        // A level taken into the severity is not also an attribute.
        let mut level_taken = None;
        let mut severity_number = 0;
        let mut severity_text = None;
        if let Some(range) = fields.level.as_ref().or(fields.severity.as_ref()) {
            let mut json = Json::at(line, range);
            if json.peek() == Some(b'"') {
                let text = json.string()?;
                severity_number = if text.escaped {
                    0
                } else {
                    severity_of_name(text.raw)
                };
                severity_text = Some(text);
                level_taken = Some(range.start);
            } else if let Ok(Number::Int(number)) = number_value(&line[range.clone()])
                && let Some(number) = severity_of_number(number)
            {
                severity_number = number;
                level_taken = Some(range.start);
            }
        }
        let record = begin(&mut self.out, SCOPE_LOGS_LOG_RECORDS);
        if let Some(nanos) = time {
            fixed64(&mut self.out, RECORD_TIME, nanos);
        }
        if severity_number != 0 {
            tag(&mut self.out, RECORD_SEVERITY_NUMBER, VARINT);
            varint(&mut self.out, severity_number as u64);
        }
        if let Some(text) = severity_text {
            self.string_field(RECORD_SEVERITY_TEXT, text);
        }
        let field = begin(&mut self.out, RECORD_BODY);
        match body {
            Some(range) => self.any_value(&mut Json::at(line, range), 0)?,
            None => {
                let text = begin(&mut self.out, ANY_STRING);
                push_utf8_lossy(&mut self.out, line);
                end(&mut self.out, text);
            }
        }
        end(&mut self.out, field);
        let body_at = body.map(|range| range.start);
        let time_at = time.and(time_at.map(|range| range.start));
        let mut json = Json::new(line);
        json.expect(b'{')?;
        let mut first = true;
        while let Some(key) = json.next_key(&mut first)? {
            json.peek();
            let at = Some(json.at);
            if at == body_at || at == level_taken || at == time_at {
                json.skip(0)?;
            } else {
                self.key_value(RECORD_ATTRIBUTES, key, &mut json, 0)?;
            }
        }
        fixed64(&mut self.out, RECORD_OBSERVED_TIME, observed);
        end(&mut self.out, record);
        Ok(())
    }

    /// A line that is not a JSON object: its text is the body.
    fn text_record(&mut self, line: &[u8], observed: u64) {
        let record = begin(&mut self.out, SCOPE_LOGS_LOG_RECORDS);
        let body = begin(&mut self.out, RECORD_BODY);
        let text = begin(&mut self.out, ANY_STRING);
        push_utf8_lossy(&mut self.out, line);
        end(&mut self.out, text);
        end(&mut self.out, body);
        fixed64(&mut self.out, RECORD_OBSERVED_TIME, observed);
        end(&mut self.out, record);
    }
}

#[cfg(test)]
mod tests;
