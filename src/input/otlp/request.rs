//! One OTLP request on a connection: its head and body framed in place
//! ([`super::http`]), checked against the limits, and decoded
//! ([`super::decode`]) into the [`super::Emission`] that writes it into
//! batches.

use super::decode::{self, DecodeError, Decoded};
use super::http::{self, BodyLength, BodyStyle, ChunkedResult, ContentType, Head, HeadResult};
use super::{Emission, OtlpReceiver, Phase, RELEASE_AFTER_BYTES};
use crate::ack::RequestDelivery;
use crate::config::OtlpAck;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

impl OtlpReceiver {
    /// Parses what `slot` received; answers a whole request or reads on.
    pub(super) fn process(&mut self, slot: usize) {
        if self.conns[slot].send_posted {
            // The interim response is still going out; its completion
            // comes back here.
            return;
        }
        let offset = self.slots.offset(slot);
        let max_body = self.settings.max_body_bytes;
        let conn_bytes = self.slots.conn_bytes();
        let conn = &mut self.conns[slot];
        if conn.filled == 0 {
            conn.request_started = None;
            self.post_recv(slot);
            return;
        }
        let filled = conn.filled;
        let head = match conn.head {
            Some(head) => head,
            None => {
                let bytes = &self.slots.slice(offset, filled)[..];
                match http::parse_head(bytes) {
                    HeadResult::Partial => {
                        self.post_recv(slot);
                        return;
                    }
                    HeadResult::Invalid(status) => {
                        self.conns[slot].style = BodyStyle::Text;
                        let message = if status == 431 {
                            "request head too large"
                        } else {
                            "malformed HTTP request"
                        };
                        self.respond(slot, status, message, true);
                        return;
                    }
                    HeadResult::Complete(head) => {
                        let conn = &mut self.conns[slot];
                        conn.head = Some(head);
                        conn.style = BodyStyle::of(head.content_type);
                        head
                    }
                }
            }
        };
        if head.malformed {
            self.respond(
                slot,
                400,
                "conflicting or invalid message framing headers",
                true,
            );
            return;
        }
        let body = match head.length {
            BodyLength::Fixed(length) if length > max_body => {
                // Not read: the connection closes after the answer.
                self.respond(slot, 413, "request body larger than --max-body", true);
                return;
            }
            BodyLength::Fixed(length) => {
                if filled < head.len + length {
                    self.send_continue(slot, head);
                    self.post_recv(slot);
                    return;
                }
                self.conns[slot].consumed = head.len + length;
                head.len..head.len + length
            }
            BodyLength::Chunked => {
                let conn = &mut self.conns[slot];
                let mut state = conn.chunked;
                let recv_posted = conn.recv_posted;
                let wire = &mut self.slots.slice(offset, filled)[head.len..];
                let result = http::decode_chunked(wire, &mut state, max_body);
                // Consumed framing gives its room back, so only the decoded
                // body counts against --max-body (not while a receive is
                // writing after `filled`: the next pass compacts).
                let kept = match result {
                    ChunkedResult::Partial if !recv_posted => {
                        http::compact_chunked(wire, &mut state)
                    }
                    _ => filled - head.len,
                };
                let conn = &mut self.conns[slot];
                conn.chunked = state;
                conn.filled = head.len + kept;
                match result {
                    ChunkedResult::Partial if conn.filled >= conn_bytes => {
                        // Unreachable: the region has room for a head, the
                        // body and the longest framing a decode leaves.
                        debug_assert!(false, "a compacted chunked body fills its region");
                        self.respond(slot, 413, "request body larger than --max-body", true);
                        return;
                    }
                    ChunkedResult::Partial => {
                        self.send_continue(slot, head);
                        self.post_recv(slot);
                        return;
                    }
                    ChunkedResult::Invalid => {
                        self.respond(slot, 400, "malformed chunked body", true);
                        return;
                    }
                    ChunkedResult::TooLarge => {
                        self.respond(slot, 413, "request body larger than --max-body", true);
                        return;
                    }
                    ChunkedResult::Complete => {
                        conn.consumed = head.len + state.read;
                        head.len..head.len + state.written
                    }
                }
            }
            BodyLength::Missing => {
                self.respond(
                    slot,
                    411,
                    "POST needs Content-Length or chunked encoding",
                    true,
                );
                return;
            }
        };
        self.on_request(slot, head, body);
    }

    /// A whole request arrived: decide its answer, or start its emission.
    pub(super) fn on_request(&mut self, slot: usize, head: Head, body: std::ops::Range<usize>) {
        self.conns[slot].request_started = None;
        if !self.authorized(slot, head) {
            self.respond(
                slot,
                401,
                "a bearer token is required: Authorization: Bearer <token>",
                false,
            );
            return;
        }
        if !head.logs_path {
            self.respond(
                slot,
                404,
                "not found: OTLP logs are posted to /v1/logs",
                false,
            );
            return;
        }
        if !head.is_post {
            self.respond(slot, 405, "method not allowed: use POST", false);
            return;
        }
        if head.content_type == ContentType::Other {
            self.respond(
                slot,
                415,
                "unsupported content type: use application/x-protobuf or application/json",
                false,
            );
            return;
        }
        if head.unknown_encoding {
            self.respond(
                slot,
                415,
                "unsupported content encoding: use gzip or none",
                false,
            );
            return;
        }
        if self.stopping {
            self.respond(slot, 503, "shutting down", true);
            return;
        }
        // The 429 decision (DESIGN §2): the request is refused when its
        // first batch could not enter ring(4) right now.
        if self.emission.is_some() || !self.to_cpu.has_room() || self.pool.available() == 0 {
            self.respond(slot, 429, "pipeline full, retry later", false);
            return;
        }
        let wire_bytes = body.len();
        let decoded = match self.decode(slot, head, body) {
            Ok(decoded) => decoded,
            Err((status, message)) => {
                self.bad_bodies += 1;
                if self.bad_bodies.is_power_of_two() {
                    eprintln!(
                        "ringway: warning: OTLP request refused with {status} ({} times so far): {message}",
                        self.bad_bodies
                    );
                }
                self.respond(slot, status, message, false);
                return;
            }
        };
        let conn = &mut self.conns[slot];
        conn.phase = Phase::Busy;
        conn.emitting = true;
        conn.last_active = Instant::now();
        let mut held = std::mem::take(&mut self.spare_held);
        held.clear();
        self.emission = Some(Emission {
            slot: slot as u32,
            serial: conn.serial,
            logs: decoded.logs,
            values_too_deep: decoded.values_too_deep,
            resource: 0,
            scope: 0,
            record: 0,
            batch: None,
            held,
            committed: false,
            wire_bytes,
            client: conn.peer,
            truncated: 0,
            // One reference is the emission's own, let go when it ends, so
            // the count reaches zero only once every batch is out and back.
            delivery: (self.settings.ack == OtlpAck::Delivered).then(|| {
                Arc::new(RequestDelivery {
                    token: (slot as u64) << 32 | u64::from(conn.serial),
                    pending: AtomicU32::new(1),
                })
            }),
        });
        self.drive_emission();
    }

    /// Whether the request may go on: the input takes any, or its
    /// `Authorization` header has one of the input's bearer tokens (a
    /// refusal is counted and warned about at 1, 2, 4, … times; the token
    /// is never printed).
    fn authorized(&mut self, slot: usize, head: Head) -> bool {
        let Some(tokens) = &mut self.auth else {
            return true;
        };
        let offset = self.slots.offset(slot);
        let authorization = match head.authorization {
            Some((start, len)) => Some(&self.slots.slice(offset + start, len)[..]),
            None => None,
        };
        // The tokens of the last reload (SIGHUP), on every request.
        if tokens.get().accepts(authorization) {
            return true;
        }
        let what = if authorization.is_some() {
            "a wrong bearer token"
        } else {
            "no Authorization header"
        };
        self.otlp.auth_refused.fetch_add(1, Ordering::Relaxed);
        if let Some(count) = crate::input::net::count_failure(&mut self.auth_refusals) {
            eprintln!(
                "ringway: warning: input '{}': a request with {what} refused with 401 ({count} so far)",
                self.name
            );
        }
        false
    }

    /// Decodes a body (inflating it first when gzipped): see [`decode`]
    /// for its limits.
    pub(super) fn decode(
        &mut self,
        slot: usize,
        head: Head,
        body: std::ops::Range<usize>,
    ) -> Result<Decoded, (u16, &'static str)> {
        let offset = self.slots.offset(slot);
        let max_body = self.settings.max_body_bytes;
        let wire = self.slots.slice(offset + body.start, body.len());
        let mut inflated_bytes = 0;
        // Mutable: decoding protobuf renames values nested too deep.
        let bytes: &mut [u8] = if head.gzip {
            let out = self.inflate_region.slice(0, max_body + 1);
            let mut decoder = flate2::read::MultiGzDecoder::new(&*wire);
            let mut total = 0;
            loop {
                match std::io::Read::read(&mut decoder, &mut out[total..]) {
                    Ok(0) => break,
                    Ok(count) => {
                        total += count;
                        if total > max_body {
                            return Err((413, "inflated body larger than --max-body"));
                        }
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return Err((400, "body is not valid gzip")),
                }
            }
            inflated_bytes = total;
            &mut out[..total]
        } else {
            wire
        };
        let decoded = match head.content_type {
            ContentType::Protobuf => decode::protobuf(bytes),
            ContentType::Json => decode::json(bytes),
            ContentType::Other => {
                debug_assert!(false, "other content types are answered 415 first");
                Err(DecodeError::Invalid)
            }
        };
        if inflated_bytes > RELEASE_AFTER_BYTES {
            // Only now: released pages read back as zeros.
            self.inflate_region.release(0, inflated_bytes);
        }
        decoded.map_err(|error| match (error, head.content_type) {
            (DecodeError::TooManyMessages, _) => (
                413,
                "request holds too many OTLP messages (records, attributes, values)",
            ),
            (DecodeError::Invalid, ContentType::Json) => (
                400,
                "body is not a valid OTLP/JSON ExportLogsServiceRequest",
            ),
            (DecodeError::Invalid, _) => (
                400,
                "body is not a valid OTLP ExportLogsServiceRequest protobuf",
            ),
        })
    }
}
