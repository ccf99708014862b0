//! A minimal HTTP/1.1 client for the `http` and `otlp` outputs.
//!
//! An [`Endpoint`] is where an output posts (host, port, path, timeout); a
//! [`Client`] is one output worker's keep-alive connection to it, with a
//! request head and a response buffer allocated once and reused. A POST
//! returns the [`Response`]'s status, its `Retry-After` and the first bytes
//! of its body (for logs); the body is read to its end (`Content-Length`,
//! chunked, or to the close) so the connection can carry the next request.
//! A keep-alive connection the server closed is noticed before a request is
//! sent. Any failed attempt is returned to the output worker, which retries
//! it with its backoff and counts it: a request that reached a server that
//! then failed to answer may be processed twice (at-least-once). A
//! response whose body is cut short still counts (its status is known),
//! and an answer sent while the body was still going out is read. Host
//! names are resolved at every connect. An `https://` endpoint speaks TLS
//! (see `connect`): the handshake is part of the connect, so a refused
//! certificate is a failed attempt like a refused connection. The
//! endpoint's extra headers ([`Endpoint::with_headers`]) are formatted
//! once, and copied into every request's head.
//!
//! [`Gzip`] compresses a body into a reused buffer with a reused deflate
//! state (no allocation per batch once the buffer has grown).

use crate::config::Header;
use crate::output::connect::{Stream, connect};
use crate::tls::Connector;
use std::io::{self, Read, Write};
use std::time::{Duration, SystemTime};

/// Bytes of a response head (status line and headers) we accept, and of
/// the buffer that reads responses.
const RESPONSE_BUFFER_BYTES: usize = 16 * 1024;
/// Response headers parsed at most (more: the response is refused).
const MAX_RESPONSE_HEADERS: usize = 64;
/// How long to look for a response the server sent before it stopped
/// reading our body.
const EARLY_RESPONSE_WAIT: Duration = Duration::from_secs(1);
/// Bytes of a response body kept for log messages.
pub(crate) const SNIPPET_BYTES: usize = 200;

pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
    /// The `Host` header's value.
    host_header: String,
    pub timeout: Duration,
    /// The extra header lines of every request, each ending in CRLF
    /// (`--output-header`, `[[output]] headers`).
    extra_headers: String,
    /// Whether `extra_headers` names its own User-Agent.
    own_user_agent: bool,
    /// `Some` for `https://`.
    tls: Option<Connector>,
}

impl Endpoint {
    pub fn new(host: &str, port: u16, path: &str, timeout: Duration) -> Self {
        let host_header = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Self {
            host: host.to_string(),
            port,
            path: path.to_string(),
            host_header,
            timeout,
            extra_headers: String::new(),
            own_user_agent: false,
            tls: None,
        }
    }

    /// Sends `headers` with every request (checked by
    /// `config::parse_header`: no CR or LF, none ringway sets itself but
    /// User-Agent, which they may replace).
    pub(crate) fn with_headers(mut self, headers: &[Header]) -> Self {
        for header in headers {
            debug_assert!(
                !(header.name.contains(['\r', '\n']) || header.value.contains(['\r', '\n']))
            );
            self.own_user_agent |= header.name.eq_ignore_ascii_case("user-agent");
            self.extra_headers.push_str(&header.name);
            self.extra_headers.push_str(": ");
            self.extra_headers.push_str(&header.value);
            self.extra_headers.push_str("\r\n");
        }
        self
    }

    /// Connects over TLS with `connector` (`https://`).
    pub(crate) fn with_tls(mut self, connector: Option<Connector>) -> Self {
        self.tls = connector;
        self
    }

    /// Connects over TLS, checking the server's certificate against the CA
    /// certificates in `ca` (PEM) and `server_name`: what an `https://`
    /// output with `ca=` and `server_name=` does (the load generator's
    /// HTTPS sender uses it). `Err` is one line naming the file at fault.
    pub fn with_tls_ca(self, ca: &std::path::Path, server_name: &str) -> Result<Self, String> {
        let options = crate::config::TlsClientOptions {
            ca: Some(ca.to_path_buf()),
            server_name: Some(server_name.to_string()),
            ..Default::default()
        };
        let connector = crate::tls::connector(&options, &self.host, true)?;
        Ok(self.with_tls(Some(connector)))
    }
}

/// What a server answered to one POST.
pub struct Response {
    pub status: u16,
    /// `Retry-After`, as a wait from now (seconds or an HTTP-date).
    pub retry_after: Option<Duration>,
}

/// How a response body is delimited.
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

pub struct Client {
    stream: Option<Stream>,
    /// The request head, rebuilt for each request in the same allocation.
    head: Vec<u8>,
    /// Response bytes; `buf[start..end]` are read but not yet parsed.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The first bytes of the last response's body.
    snippet: Vec<u8>,
}

impl Client {
    #[allow(clippy::new_without_default, reason = "pub only for bench_api")]
    pub fn new() -> Self {
        Self {
            stream: None,
            head: Vec::with_capacity(512),
            buf: vec![0u8; RESPONSE_BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            snippet: Vec::with_capacity(SNIPPET_BYTES),
        }
    }

    /// The first bytes of the last response's body, for a log line.
    pub fn snippet(&self) -> String {
        String::from_utf8_lossy(&self.snippet)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    }

    /// POSTs `body` and reads the whole response. An error is a connection
    /// failure or timeout (worth retrying); any status is an `Ok`.
    pub fn post(
        &mut self,
        endpoint: &Endpoint,
        content_type: &str,
        gzip: bool,
        body: &[u8],
    ) -> io::Result<Response> {
        if self.stream.as_mut().is_some_and(Stream::peer_closed) {
            self.stream = None;
        }
        if self.stream.is_none() {
            self.stream = Some(connect(
                &endpoint.host,
                endpoint.port,
                endpoint.timeout,
                endpoint.tls.as_ref(),
                // The response tells whether the server took us.
                false,
            )?);
            self.start = 0;
            self.end = 0;
        }
        // Any failure is the caller's to retry, with its backoff and its
        // counters: a request is never sent again behind its back (a server
        // that was slow, not gone, would get it twice unseen).
        match self.exchange(endpoint, content_type, gzip, body) {
            Ok((response, keep)) => {
                if !keep {
                    self.stream = None;
                }
                Ok(response)
            }
            Err(error) => {
                self.stream = None;
                Err(error)
            }
        }
    }

    fn exchange(
        &mut self,
        endpoint: &Endpoint,
        content_type: &str,
        gzip: bool,
        body: &[u8],
    ) -> io::Result<(Response, bool)> {
        self.head.clear();
        let _ = write!(
            self.head,
            "POST {} HTTP/1.1\r\nHost: {}\r\n",
            endpoint.path, endpoint.host_header,
        );
        if !endpoint.own_user_agent {
            let _ = write!(
                self.head,
                "User-Agent: ringway/{}\r\n",
                env!("CARGO_PKG_VERSION")
            );
        }
        let _ = write!(
            self.head,
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n{}{}\r\n",
            body.len(),
            if gzip {
                "Content-Encoding: gzip\r\n"
            } else {
                ""
            },
            endpoint.extra_headers,
        );
        self.start = 0;
        self.end = 0;
        self.snippet.clear();
        let stream = self.stream.as_mut().expect("connected above");
        let sent = stream
            .write_all(&self.head)
            .and_then(|()| stream.write_all(body))
            .and_then(|()| stream.flush());
        if let Err(error) = sent {
            // A server may answer early and close while the body is still
            // going out (413 for a body too large, say): read that answer
            // before calling the attempt a failure, or a refused batch
            // would be retried forever.
            let _ = stream.socket().set_read_timeout(Some(EARLY_RESPONSE_WAIT));
            return match self.read_final_head() {
                Ok((response, _, _)) => Ok((response, false)),
                Err(_) => Err(error),
            };
        }
        let (response, framing, mut keep) = self.read_final_head()?;
        // From here the outcome is known: a body cut short only makes the
        // connection unusable for the next request.
        let body_read = match framing {
            Framing::None => Ok(()),
            Framing::Length(length) => self.skip_body(length),
            Framing::Chunked => self.skip_chunked(),
            Framing::UntilClose => {
                keep = false;
                self.skip_to_close()
            }
        };
        if body_read.is_err() {
            keep = false;
        }
        Ok((response, keep))
    }

    /// Reads response heads until the final one (1xx precede it).
    fn read_final_head(&mut self) -> io::Result<(Response, Framing, bool)> {
        loop {
            let head = self.read_head()?;
            // 1xx (other than a protocol switch we never ask for) precede the answer.
            if !(100..200).contains(&head.0.status) {
                return Ok(head);
            }
        }
    }

    /// Reads more bytes after `end`, moving unparsed bytes to the front
    /// first. End of stream is an error.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "response line or head too long",
            ));
        }
        let stream = self.stream.as_mut().expect("connected");
        loop {
            match stream.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ));
                }
                Ok(count) => {
                    self.end += count;
                    return Ok(());
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// Reads and parses a response head; returns the response, how its body
    /// is delimited, and whether the connection stays open after it.
    fn read_head(&mut self) -> io::Result<(Response, Framing, bool)> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            let parsed = response
                .parse(&self.buf[self.start..self.end])
                .map_err(|error| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad HTTP response: {error}"),
                    )
                })?;
            let httparse::Status::Complete(head_len) = parsed else {
                self.fill()?;
                continue;
            };
            let status = response.code.unwrap_or(0);
            let mut keep = response.version == Some(1);
            let mut framing = Framing::UntilClose;
            let mut chunked = false;
            let mut retry_after = None;
            for header in response.headers.iter() {
                let value = header.value;
                if header.name.eq_ignore_ascii_case("content-length") {
                    let length = std::str::from_utf8(value)
                        .ok()
                        .and_then(|text| text.trim().parse::<u64>().ok())
                        .ok_or_else(|| {
                            io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length")
                        })?;
                    framing = Framing::Length(length);
                } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = contains_token(value, b"chunked");
                } else if header.name.eq_ignore_ascii_case("connection") {
                    if contains_token(value, b"close") {
                        keep = false;
                    } else if contains_token(value, b"keep-alive") {
                        keep = true;
                    }
                } else if header.name.eq_ignore_ascii_case("retry-after") {
                    retry_after = parse_retry_after(value, SystemTime::now());
                }
            }
            if chunked {
                framing = Framing::Chunked;
            }
            if (100..200).contains(&status) || status == 204 || status == 304 {
                framing = Framing::None;
            }
            self.start += head_len;
            return Ok((
                Response {
                    status,
                    retry_after,
                },
                framing,
                keep,
            ));
        }
    }

    fn keep_snippet(&mut self, count: usize) {
        let room = SNIPPET_BYTES - self.snippet.len();
        let take = count.min(room);
        self.snippet
            .extend_from_slice(&self.buf[self.start..self.start + take]);
    }

    fn skip_body(&mut self, mut length: u64) -> io::Result<()> {
        while length > 0 {
            if self.start == self.end {
                self.fill()?;
            }
            let count = (self.end - self.start).min(usize::try_from(length).unwrap_or(usize::MAX));
            self.keep_snippet(count);
            self.start += count;
            length -= count as u64;
        }
        Ok(())
    }

    /// One line (without its CRLF) as a range of `buf`.
    fn read_line(&mut self) -> io::Result<(usize, usize)> {
        loop {
            if let Some(at) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let line_start = self.start;
                let mut line_end = self.start + at;
                self.start = line_end + 1;
                if line_end > line_start && self.buf[line_end - 1] == b'\r' {
                    line_end -= 1;
                }
                return Ok((line_start, line_end));
            }
            self.fill()?;
        }
    }

    fn skip_chunked(&mut self) -> io::Result<()> {
        loop {
            let (start, end) = self.read_line()?;
            let line = &self.buf[start..end];
            let digits = line.split(|&byte| byte == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(digits)
                .ok()
                .and_then(|text| u64::from_str_radix(text.trim(), 16).ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers, up to an empty line.
                loop {
                    let (start, end) = self.read_line()?;
                    if start == end {
                        return Ok(());
                    }
                }
            }
            self.skip_body(size)?;
            let (start, end) = self.read_line()?;
            if start != end {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a chunk does not end with CRLF",
                ));
            }
        }
    }

    fn skip_to_close(&mut self) -> io::Result<()> {
        loop {
            let count = self.end - self.start;
            self.keep_snippet(count);
            self.start = self.end;
            match self.fill() {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(error) => return Err(error),
            }
        }
    }
}

/// Whether a comma-separated header value holds `token` (case-insensitive).
fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&byte| byte == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token))
}

/// `Retry-After`: a number of seconds, or an HTTP-date (IMF-fixdate, RFC
/// 850 or asctime) turned into the wait from `now` (zero when past).
pub(crate) fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Some(Duration::from_secs(text.parse().unwrap_or(u64::MAX)));
    }
    // Whole seconds on both sides, as an HTTP date has.
    let at = httpdate::parse_http_date(text)
        .ok()?
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Gzip into a reused buffer with a reused deflate state.
pub(crate) struct Gzip {
    deflate: flate2::Compress,
    pub out: Vec<u8>,
}

impl Gzip {
    pub fn new() -> Self {
        Self {
            deflate: flate2::Compress::new(flate2::Compression::fast(), false),
            out: Vec::new(),
        }
    }

    /// Replaces `out` with the gzip member of `input`.
    pub fn compress(&mut self, input: &[u8]) -> io::Result<()> {
        const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        self.out.clear();
        self.out.extend_from_slice(&HEADER);
        self.deflate.reset();
        let mut consumed = 0usize;
        loop {
            if self.out.capacity() - self.out.len() < 64 * 1024 {
                self.out.reserve(64 * 1024 + (input.len() - consumed) / 2);
            }
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(
                    &input[consumed..],
                    &mut self.out,
                    flate2::FlushCompress::Finish,
                )
                .map_err(io::Error::other)?;
            consumed += (self.deflate.total_in() - before) as usize;
            if status == flate2::Status::StreamEnd {
                break;
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(input);
        self.out.extend_from_slice(&crc.sum().to_le_bytes());
        self.out
            .extend_from_slice(&(input.len() as u32).to_le_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after(b"120", now),
            Some(Duration::from_secs(120))
        );
        for date in [
            "Sun, 06 Nov 1994 08:49:47 GMT",
            "Sunday, 06-Nov-94 08:49:47 GMT",
            "Sun Nov  6 08:49:47 1994",
        ] {
            assert_eq!(
                parse_retry_after(date.as_bytes(), now),
                Some(Duration::from_secs(10)),
                "{date}"
            );
        }
        assert_eq!(
            parse_retry_after(b"Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO),
            "a past date means now"
        );
        assert_eq!(parse_retry_after(b"soon", now), None);
        assert_eq!(parse_retry_after(b"", now), None);
        assert_eq!(parse_retry_after(b"-1", now), None);
    }

    #[test]
    fn gzip_output_inflates_to_the_input() {
        let mut gzip = Gzip::new();
        for input in [&b""[..], b"hello\n", &[7u8; 300_000][..]] {
            gzip.compress(input).unwrap();
            let mut inflated = Vec::new();
            flate2::read::GzDecoder::new(&gzip.out[..])
                .read_to_end(&mut inflated)
                .unwrap();
            assert_eq!(inflated, input);
        }
    }

    /// A server that answers each request on one connection with the
    /// next canned response, then closes.
    fn serve(responses: Vec<&'static str>) -> (Endpoint, std::thread::JoinHandle<Vec<Vec<u8>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            let mut requests = Vec::new();
            // A keep-alive answer keeps its connection for the next request,
            // as a real server does: closing it instead raced the client's
            // next request on it (a reset, seen in CI).
            let mut kept: Option<std::net::TcpStream> = None;
            for response in responses {
                let mut stream = match kept.take() {
                    Some(stream) => stream,
                    None => listener.accept().unwrap().0,
                };
                // The head and the body may come in separate reads: read
                // until the head's Content-Length is in.
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let count = stream.read(&mut chunk).unwrap();
                    request.extend_from_slice(&chunk[..count]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    let Some(head_end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = text
                        .lines()
                        .find_map(|line| line.strip_prefix("Content-Length: "))
                        .map_or(0, |value| value.trim().parse().unwrap());
                    if count == 0 || request.len() >= head_end + 4 + length {
                        break;
                    }
                }
                requests.push(request);
                stream.write_all(response.as_bytes()).unwrap();
                let closes =
                    response.starts_with("HTTP/1.0") || response.contains("Connection: close");
                if !closes {
                    kept = Some(stream);
                }
            }
            requests
        });
        (
            Endpoint::new("127.0.0.1", port, "/in", Duration::from_secs(5)),
            handle,
        )
    }

    #[test]
    fn responses_are_read_whole_with_any_framing() {
        let (endpoint, server) = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfine!",
            "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbad \r\n7;x=y\r\nrequest\r\n0\r\nTrailer: 1\r\n\r\n",
            "HTTP/1.0 503 Busy\r\nRetry-After: 7\r\n\r\nbusy until closed",
        ]);
        let mut client = Client::new();
        let first = client
            .post(&endpoint, "application/x-ndjson", false, b"{}\n")
            .unwrap();
        assert_eq!(first.status, 200);
        assert_eq!(client.snippet(), "fine!");
        assert!(client.stream.is_none(), "Connection: close is honoured");
        let second = client
            .post(&endpoint, "application/x-ndjson", true, b"x")
            .unwrap();
        assert_eq!(second.status, 400);
        assert_eq!(client.snippet(), "bad request");
        let third = client
            .post(&endpoint, "application/x-ndjson", false, b"x")
            .unwrap();
        assert_eq!(third.status, 503);
        assert_eq!(third.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(client.snippet(), "busy until closed");
        let requests = server.join().unwrap();
        let first = String::from_utf8_lossy(&requests[0]);
        assert!(first.starts_with("POST /in HTTP/1.1\r\n"), "{first}");
        assert!(first.contains("Content-Length: 3\r\n"), "{first}");
        assert!(first.ends_with("\r\n\r\n{}\n"), "{first}");
        assert!(String::from_utf8_lossy(&requests[1]).contains("Content-Encoding: gzip\r\n"));
    }

    #[test]
    fn a_refused_connection_is_an_error() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let endpoint = Endpoint::new("127.0.0.1", port, "/", Duration::from_secs(1));
        assert!(
            Client::new()
                .post(&endpoint, "text/plain", false, b"x")
                .is_err()
        );
    }
}
