//! The HTTP/1.1 side of the OTLP receiver: request heads parsed with
//! `httparse`, chunked bodies decoded in place, and responses written into
//! a connection's fixed response buffer.
//!
//! Nothing here allocates: a [`Head`] keeps only what the receiver decides
//! on (method, path, content type, encoding, length, keep-alive).

/// Longest request head (request line and headers) accepted; longer → 431.
pub(crate) const HEADER_LIMIT_BYTES: usize = 16 * 1024;
/// Headers parsed per request; more → 431.
const MAX_HEADERS: usize = 64;
/// Room for one response: status line, headers and a short body.
pub(crate) const RESPONSE_BYTES: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    Protobuf,
    Json,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLength {
    Fixed(usize),
    Chunked,
    /// A POST with neither: 411.
    Missing,
}

/// What the receiver needs from a request head.
#[derive(Clone, Copy, Debug)]
pub struct Head {
    /// Bytes of the head, blank line included.
    pub len: usize,
    pub is_post: bool,
    pub logs_path: bool,
    pub content_type: ContentType,
    /// `Content-Encoding: gzip`.
    pub gzip: bool,
    /// An encoding other than gzip and identity: 415.
    pub unknown_encoding: bool,
    pub length: BodyLength,
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for an interim response
    /// before it sends the body.
    pub expect_continue: bool,
    /// Header values that cannot be trusted (two Content-Lengths, a
    /// Content-Length with chunked, a bad number): 400 and close.
    pub malformed: bool,
    /// Where the (first) `Authorization` header's value is in the head's
    /// bytes: its start and length.
    pub authorization: Option<(usize, usize)>,
}

pub enum HeadResult {
    Partial,
    Complete(Head),
    /// Not HTTP/1.x, or a head past the limits: respond and close.
    Invalid(u16),
}

fn eq_ignore_case(value: &[u8], expected: &str) -> bool {
    value.trim_ascii().eq_ignore_ascii_case(expected.as_bytes())
}

/// Parses the request head at the start of `bytes`.
pub fn parse_head(bytes: &[u8]) -> HeadResult {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if bytes.len() >= HEADER_LIMIT_BYTES {
                HeadResult::Invalid(431)
            } else {
                HeadResult::Partial
            };
        }
        Err(httparse::Error::TooManyHeaders) => return HeadResult::Invalid(431),
        Err(_) => return HeadResult::Invalid(400),
    };
    if len > HEADER_LIMIT_BYTES {
        return HeadResult::Invalid(431);
    }
    let method = request.method.unwrap_or("");
    let path = request.path.unwrap_or("");
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let http_10 = request.version == Some(0);
    let mut head = Head {
        len,
        is_post: method == "POST",
        logs_path: path == "/v1/logs",
        content_type: ContentType::Other,
        gzip: false,
        unknown_encoding: false,
        length: BodyLength::Missing,
        keep_alive: !http_10,
        expect_continue: false,
        malformed: false,
        authorization: None,
    };
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    for header in request.headers.iter() {
        let name = header.name;
        let value = header.value;
        if name.eq_ignore_ascii_case("content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .map(str::trim)
                .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|text| text.parse::<usize>().ok());
            match (parsed, content_length) {
                (Some(length), None) => content_length = Some(length),
                (Some(length), Some(earlier)) if length == earlier => {}
                _ => head.malformed = true,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if eq_ignore_case(value, "chunked") {
                chunked = true;
            } else {
                head.malformed = true;
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            let media = value.split(|&b| b == b';').next().unwrap_or_default();
            head.content_type = if eq_ignore_case(media, "application/x-protobuf")
                || eq_ignore_case(media, "application/protobuf")
            {
                ContentType::Protobuf
            } else if eq_ignore_case(media, "application/json") {
                ContentType::Json
            } else {
                ContentType::Other
            };
        } else if name.eq_ignore_ascii_case("content-encoding") {
            if eq_ignore_case(value, "gzip") || eq_ignore_case(value, "x-gzip") {
                head.gzip = true;
            } else if !eq_ignore_case(value, "identity") {
                head.unknown_encoding = true;
            }
        } else if name.eq_ignore_ascii_case("authorization") {
            if head.authorization.is_none() {
                // `value` is a piece of `bytes`.
                let start = value.as_ptr() as usize - bytes.as_ptr() as usize;
                head.authorization = Some((start, value.len()));
            }
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue = eq_ignore_case(value, "100-continue");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',') {
                if eq_ignore_case(token, "close") {
                    head.keep_alive = false;
                } else if eq_ignore_case(token, "keep-alive") {
                    head.keep_alive = true;
                }
            }
        }
    }
    head.length = match (content_length, chunked) {
        (Some(_), true) => {
            // Request smuggling territory (RFC 9112 §6.3): refuse.
            head.malformed = true;
            BodyLength::Missing
        }
        (Some(length), false) => BodyLength::Fixed(length),
        (None, true) => BodyLength::Chunked,
        (None, false) if head.is_post => BodyLength::Missing,
        (None, false) => BodyLength::Fixed(0),
    };
    HeadResult::Complete(head)
}

/// Longest chunk-size line (size, extensions and CRLF) and longest trailer
/// section of a chunked body; longer → 400. This is all the framing a
/// connection's region holds at once beyond the decoded body: chunk data
/// is decoded as it arrives and consumed framing is dropped, so the
/// region needs `--max-body` plus this, whatever the chunk sizes.
pub(crate) const CHUNK_FRAMING_LIMIT_BYTES: usize = 4 * 1024;

/// Where the decoder of a chunked body stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ChunkStep {
    /// At the start of a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data: this many bytes still to come.
    Data(usize),
    /// After a chunk's data, at its CRLF.
    DataEnd,
    /// After the last (zero-size) chunk: trailers up to a blank line.
    Trailers,
}

/// Progress of decoding a chunked body in place.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Chunked {
    /// Wire bytes (after the head) consumed so far.
    pub read: usize,
    /// Body bytes decoded so far, compacted to the start of the body;
    /// never more than `read`.
    pub written: usize,
    step: ChunkStep,
}

pub(crate) enum ChunkedResult {
    /// More bytes are needed.
    Partial,
    /// The whole body is decoded; `read` wire bytes were consumed.
    Complete,
    Invalid,
    TooLarge,
}

/// Whether `bytes` (a chunk-size line or a trailer section, CRLFs
/// included) is free of control characters other than HTAB and of line
/// feeds that do not end a CRLF. A bare LF or CR is where parsers disagree
/// on where a chunk ends (request smuggling), so it is refused.
fn framing_text_is_clean(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(at, &byte)| match byte {
        b'\t' => true,
        b'\r' => bytes.get(at + 1) == Some(&b'\n'),
        b'\n' => at > 0 && bytes[at - 1] == b'\r',
        0..=0x1f | 0x7f => false,
        _ => true,
    })
}

/// Decodes as much of a chunked body as `wire` (the bytes after the head)
/// holds, moving chunk data down to `wire[..state.written]` as it arrives,
/// also when a chunk is only partly received. `limit` bounds the decoded
/// body (`--max-body`); the framing does not count against it.
pub(crate) fn decode_chunked(wire: &mut [u8], state: &mut Chunked, limit: usize) -> ChunkedResult {
    loop {
        let rest = &wire[state.read..];
        match state.step {
            ChunkStep::Size => {
                let window = &rest[..rest.len().min(CHUNK_FRAMING_LIMIT_BYTES)];
                let Some(newline) = memchr::memchr(b'\n', window) else {
                    return if rest.len() >= CHUNK_FRAMING_LIMIT_BYTES {
                        ChunkedResult::Invalid
                    } else {
                        ChunkedResult::Partial
                    };
                };
                let line = &rest[..newline + 1];
                if !framing_text_is_clean(line) {
                    return ChunkedResult::Invalid;
                }
                // More than 16 hex digits is invalid to httparse (400); a
                // size that fits 64 bits but not the limit is 413.
                let size = match httparse::parse_chunk_size(line) {
                    Ok(httparse::Status::Complete((len, size))) if len == line.len() => size,
                    _ => return ChunkedResult::Invalid,
                };
                state.read += line.len();
                if size == 0 {
                    state.step = ChunkStep::Trailers;
                    continue;
                }
                // A hostile size (up to 2^64 - 1) must not overflow the
                // sums below: it is compared, never added.
                match usize::try_from(size) {
                    Ok(size) if size <= limit.saturating_sub(state.written) => {
                        state.step = ChunkStep::Data(size);
                    }
                    _ => return ChunkedResult::TooLarge,
                }
            }
            ChunkStep::Data(left) => {
                let take = rest.len().min(left);
                if take == 0 {
                    return ChunkedResult::Partial;
                }
                wire.copy_within(state.read..state.read + take, state.written);
                state.written += take;
                state.read += take;
                state.step = if take == left {
                    ChunkStep::DataEnd
                } else {
                    ChunkStep::Data(left - take)
                };
            }
            ChunkStep::DataEnd => match rest {
                [] | [b'\r'] => return ChunkedResult::Partial,
                [b'\r', b'\n', ..] => {
                    state.read += 2;
                    state.step = ChunkStep::Size;
                }
                _ => return ChunkedResult::Invalid,
            },
            ChunkStep::Trailers => {
                let window = &rest[..rest.len().min(CHUNK_FRAMING_LIMIT_BYTES)];
                let Some(end) = trailer_end(window) else {
                    return if rest.len() >= CHUNK_FRAMING_LIMIT_BYTES {
                        ChunkedResult::Invalid
                    } else {
                        ChunkedResult::Partial
                    };
                };
                if !framing_text_is_clean(&window[..end]) {
                    return ChunkedResult::Invalid;
                }
                state.read += end;
                return ChunkedResult::Complete;
            }
        }
    }
}

/// After a `Partial` decode: moves the wire bytes not yet consumed (at
/// most a partial size line, CRLF or trailer section: under
/// [`CHUNK_FRAMING_LIMIT_BYTES`]) down to the end of the decoded body, so
/// consumed framing takes no room. Returns how many bytes of `wire` are
/// left in use. Only while no receive is writing past them.
pub(crate) fn compact_chunked(wire: &mut [u8], state: &mut Chunked) -> usize {
    let left = wire.len() - state.read;
    wire.copy_within(state.read.., state.written);
    state.read = state.written;
    state.written + left
}

/// Length of the trailer section including its final blank line, if whole.
fn trailer_end(bytes: &[u8]) -> Option<usize> {
    if bytes.starts_with(b"\r\n") {
        return Some(2);
    }
    memchr::memmem::find(bytes, b"\r\n\r\n").map(|at| at + 4)
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A response in a connection's fixed buffer.
pub(crate) struct Response {
    pub bytes: [u8; RESPONSE_BYTES],
    pub len: usize,
}

impl Default for Response {
    fn default() -> Self {
        Self {
            bytes: [0; RESPONSE_BYTES],
            len: 0,
        }
    }
}

/// How an error body is written: matching the request's content type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyStyle {
    Protobuf,
    Json,
    Text,
}

impl BodyStyle {
    pub fn of(content_type: ContentType) -> Self {
        match content_type {
            ContentType::Protobuf => BodyStyle::Protobuf,
            ContentType::Json => BodyStyle::Json,
            ContentType::Other => BodyStyle::Text,
        }
    }
}

/// The gRPC status code an HTTP error maps to, for the `Status` body.
fn grpc_code(status: u16) -> u64 {
    match status {
        400 | 411 | 413 | 415 | 431 => 3, // INVALID_ARGUMENT
        401 => 16,                        // UNAUTHENTICATED
        404 => 5,                         // NOT_FOUND
        405 => 12,                        // UNIMPLEMENTED
        408 => 4,                         // DEADLINE_EXCEEDED
        429 => 8,                         // RESOURCE_EXHAUSTED
        _ => 14,                          // UNAVAILABLE
    }
}

impl Response {
    /// Writes a whole response. `message` is the error text (ignored for
    /// 200); the body is an empty `ExportLogsServiceResponse` for 200 and a
    /// `google.rpc.Status` (or its JSON, or text) for errors.
    pub fn write(
        &mut self,
        status: u16,
        style: BodyStyle,
        message: &str,
        retry_after_s: Option<u64>,
        close: bool,
    ) {
        let mut body = [0u8; 256];
        let message = &message[..message.len().min(200)];
        let (content_type, body_len) = match (status, style) {
            (200, BodyStyle::Protobuf) => ("application/x-protobuf", 0),
            (200, _) => {
                body[..2].copy_from_slice(b"{}");
                ("application/json", 2)
            }
            (_, BodyStyle::Protobuf) => {
                // google.rpc.Status { code = 1 (varint), message = 2 }.
                let code = grpc_code(status);
                body[0] = 0x08;
                body[1] = code as u8;
                body[2] = 0x12;
                body[3] = message.len() as u8; // < 128: one varint byte
                body[4..4 + message.len()].copy_from_slice(message.as_bytes());
                ("application/x-protobuf", 4 + message.len())
            }
            (_, BodyStyle::Json) => {
                let mut cursor = std::io::Cursor::new(&mut body[..]);
                let _ = std::io::Write::write_fmt(
                    &mut cursor,
                    format_args!(
                        "{{\"code\":{},\"message\":{}}}",
                        grpc_code(status),
                        serde_json::Value::from(message)
                    ),
                );
                ("application/json", cursor.position() as usize)
            }
            (_, BodyStyle::Text) => {
                body[..message.len()].copy_from_slice(message.as_bytes());
                body[message.len()] = b'\n';
                ("text/plain; charset=utf-8", message.len() + 1)
            }
        };
        let mut cursor = std::io::Cursor::new(&mut self.bytes[..]);
        let _ = std::io::Write::write_fmt(
            &mut cursor,
            format_args!(
                "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {body_len}\r\n",
                reason(status)
            ),
        );
        if let Some(seconds) = retry_after_s {
            let _ =
                std::io::Write::write_fmt(&mut cursor, format_args!("Retry-After: {seconds}\r\n"));
        }
        if status == 405 {
            let _ = std::io::Write::write_all(&mut cursor, b"Allow: POST\r\n");
        }
        if status == 401 {
            let _ = std::io::Write::write_all(&mut cursor, b"WWW-Authenticate: Bearer\r\n");
        }
        if close {
            let _ = std::io::Write::write_all(&mut cursor, b"Connection: close\r\n");
        }
        let _ = std::io::Write::write_all(&mut cursor, b"\r\n");
        let _ = std::io::Write::write_all(&mut cursor, &body[..body_len]);
        self.len = cursor.position() as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        match parse_head(text.as_bytes()) {
            HeadResult::Complete(head) => head,
            _ => panic!("not a complete head: {text:?}"),
        }
    }

    #[test]
    fn heads_give_what_the_receiver_decides_on() {
        let h = head(
            "POST /v1/logs?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-protobuf\r\nContent-Length: 12\r\nContent-Encoding: gzip\r\n\r\nbody",
        );
        assert!(h.is_post && h.logs_path && h.gzip && h.keep_alive && !h.malformed);
        assert_eq!(h.content_type, ContentType::Protobuf);
        assert_eq!(h.length, BodyLength::Fixed(12));
        let h = head(
            "POST /v1/logs HTTP/1.0\r\nContent-Type: application/json; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert!(!h.keep_alive);
        assert_eq!(h.content_type, ContentType::Json);
        assert_eq!(h.length, BodyLength::Chunked);
        let h = head("GET /v1/metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(!h.is_post && !h.logs_path && !h.keep_alive);
        assert_eq!(h.length, BodyLength::Fixed(0));
        assert_eq!(
            head("POST /v1/logs HTTP/1.1\r\n\r\n").length,
            BodyLength::Missing
        );
        assert!(
            head("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").malformed
        );
        assert!(head("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").malformed);
        assert!(
            head("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
                .malformed
        );
        assert!(matches!(
            parse_head(b"POST /v1/logs HTTP/1.1\r\nHost"),
            HeadResult::Partial
        ));
        assert!(matches!(
            parse_head(b"\x00\x01garbage\r\n\r\n"),
            HeadResult::Invalid(400)
        ));
        let long = format!("POST / HTTP/1.1\r\nX: {}", "a".repeat(HEADER_LIMIT_BYTES));
        assert!(matches!(
            parse_head(long.as_bytes()),
            HeadResult::Invalid(431)
        ));
    }

    #[test]
    fn chunked_bodies_decode_in_place_across_partial_reads() {
        let wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for split in 1..wire.len() {
            let mut buf = wire.to_vec();
            let mut state = Chunked::default();
            let first = decode_chunked(&mut buf[..split], &mut state, 100);
            if matches!(first, ChunkedResult::Complete) {
                assert!(split >= wire.len() - 4);
            } else {
                assert!(matches!(first, ChunkedResult::Partial), "split {split}");
                // The rest of the bytes arrive (already in place in `buf`).
                assert!(matches!(
                    decode_chunked(&mut buf, &mut state, 100),
                    ChunkedResult::Complete
                ));
            }
            assert_eq!(&buf[..state.written], b"hello world");
            assert_eq!(&wire[state.read..], b"NEXT");
        }
        let mut state = Chunked::default();
        assert!(matches!(
            decode_chunked(&mut b"ff\r\n".to_vec(), &mut state, 10),
            ChunkedResult::TooLarge
        ));
        let mut state = Chunked::default();
        assert!(matches!(
            decode_chunked(&mut b"zz\r\n".to_vec(), &mut state, 10),
            ChunkedResult::Invalid
        ));
        // Sizes near 2^64 after a first chunk: refused, never an overflow.
        for size in ["ffffffffffffffed", "ffffffffffffffff", "fffffffffffffffe"] {
            let mut wire = format!("2\r\nab\r\n{size}\r\nxy").into_bytes();
            let mut state = Chunked::default();
            assert!(matches!(
                decode_chunked(&mut wire, &mut state, 100),
                ChunkedResult::TooLarge
            ));
        }
    }

    /// Feeds `wire` to the decoder `step` bytes at a time into a buffer
    /// of `room` bytes, compacting after every partial decode like the
    /// receiver does; the decoded body, or the result that ended it.
    fn decode_in_steps(
        wire: &[u8],
        step: usize,
        room: usize,
        limit: usize,
    ) -> Result<Vec<u8>, &'static str> {
        let mut buf = vec![0u8; room];
        let mut filled = 0;
        let mut fed = 0;
        let mut state = Chunked::default();
        loop {
            let take = step.min(wire.len() - fed).min(room - filled);
            buf[filled..filled + take].copy_from_slice(&wire[fed..fed + take]);
            filled += take;
            fed += take;
            match decode_chunked(&mut buf[..filled], &mut state, limit) {
                ChunkedResult::Complete => return Ok(buf[..state.written].to_vec()),
                ChunkedResult::Invalid => return Err("invalid"),
                ChunkedResult::TooLarge => return Err("too large"),
                ChunkedResult::Partial if fed == wire.len() => return Err("partial at the end"),
                ChunkedResult::Partial => {
                    filled = compact_chunked(&mut buf[..filled], &mut state);
                    if filled == room {
                        return Err("buffer full");
                    }
                }
            }
        }
    }

    #[test]
    fn only_the_decoded_body_takes_room_whatever_the_chunk_sizes() {
        let body: Vec<u8> = (0..20_000u32).map(|n| (n % 251) as u8).collect();
        for chunk in [1, 2, 7, 4096, 20_000] {
            let mut wire = Vec::new();
            for piece in body.chunks(chunk) {
                wire.extend_from_slice(format!("{:x};e=1\r\n", piece.len()).as_bytes());
                wire.extend_from_slice(piece);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\nX-Trailer: 1\r\n\r\n");
            // Room for the body and one framing line: 1-byte chunks need
            // eight times that on the wire.
            let room = body.len() + CHUNK_FRAMING_LIMIT_BYTES;
            for step in [1, 3, 1000, 65_536] {
                assert_eq!(
                    decode_in_steps(&wire, step, room, body.len()).as_deref(),
                    Ok(&body[..]),
                    "chunks of {chunk}, received {step} at a time"
                );
            }
            // One byte over the limit, however it is framed: too large.
            assert_eq!(
                decode_in_steps(&wire, 1000, room, body.len() - 1),
                Err("too large"),
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn hostile_chunk_framing_is_invalid() {
        let long_extension = format!(
            "1;{}\r\na\r\n0\r\n\r\n",
            "e".repeat(CHUNK_FRAMING_LIMIT_BYTES)
        );
        let long_trailer = format!(
            "1\r\na\r\n0\r\nX: {}\r\n\r\n",
            "t".repeat(CHUNK_FRAMING_LIMIT_BYTES)
        );
        let endless_size = "0".repeat(CHUNK_FRAMING_LIMIT_BYTES + 10);
        let cases: [(&str, &[u8]); 10] = [
            ("17 hex digits", b"10000000000000000\r\na\r\n0\r\n\r\n"),
            ("no CRLF after the data", b"3\r\nabcX\r\n0\r\n\r\n"),
            ("LF only after the data", b"3\r\nabc\n0\r\n\r\n"),
            ("bare LF ending the size line", b"3\nabc\r\n0\r\n\r\n"),
            ("bare LF in an extension", b"3;a\nb\r\nabc\r\n0\r\n\r\n"),
            (
                "control byte in an extension",
                b"3;a\x01\r\nabc\r\n0\r\n\r\n",
            ),
            (
                "extension over the framing limit",
                long_extension.as_bytes(),
            ),
            ("trailers over the framing limit", long_trailer.as_bytes()),
            ("a size line that never ends", endless_size.as_bytes()),
            ("not hex", b"zz\r\n"),
        ];
        for (what, wire) in cases {
            for step in [1, 7, wire.len()] {
                assert_eq!(
                    decode_in_steps(wire, step, 64 * 1024, 1 << 20),
                    Err("invalid"),
                    "{what}, received {step} at a time"
                );
            }
        }
        // A well-formed extension is allowed (RFC 9112 §7.1.1).
        assert_eq!(
            decode_in_steps(b"3;name=\"v a\"\t;x\r\nabc\r\n0\r\n\r\n", 1, 1024, 10).as_deref(),
            Ok(&b"abc"[..])
        );
    }

    #[test]
    fn responses_carry_status_retry_after_and_a_status_body() {
        let mut response = Response::default();
        response.write(429, BodyStyle::Protobuf, "pipeline full", Some(1), false);
        let text = String::from_utf8_lossy(&response.bytes[..response.len]).into_owned();
        assert!(text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
        assert!(text.contains("\r\nRetry-After: 1\r\n"));
        assert!(text.ends_with("pipeline full"));
        response.write(200, BodyStyle::Json, "", None, true);
        let text = String::from_utf8_lossy(&response.bytes[..response.len]).into_owned();
        assert!(text.contains("Content-Length: 2\r\nConnection: close\r\n\r\n{}"));
        response.write(401, BodyStyle::Text, "bearer token required", None, false);
        let text = String::from_utf8_lossy(&response.bytes[..response.len]).into_owned();
        assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
        assert!(text.contains("\r\nWWW-Authenticate: Bearer\r\n"), "{text}");
    }

    #[test]
    fn the_authorization_header_is_located_in_the_head() {
        let text = "POST /v1/logs HTTP/1.1\r\nauthorization:  Bearer abc \r\nAuthorization: Bearer second\r\n\r\n";
        let (start, len) = head(text).authorization.unwrap();
        assert_eq!(text[start..start + len].trim_end(), "Bearer abc");
        assert_eq!(head("POST /v1/logs HTTP/1.1\r\n\r\n").authorization, None);
    }
}
