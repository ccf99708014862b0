//! `--metrics ADDR`: a small HTTP/1.1 server on its own thread serving
//! `GET /metrics` (Prometheus text exposition format 0.0.4, rendered from
//! the [`Registry`] by [`render`], which iterates the counter table
//! `metrics::table`) and `GET /healthz` ([`Registry::health`]);
//! `HEAD` gets the same answer without its body.
//!
//! It takes one connection at a time, reads at most [`MAX_REQUEST_BYTES`]
//! within [`IO_TIMEOUT`], answers and closes. It only loads atomics: it
//! never takes a lock the data path holds, so a slow scraper cannot stall
//! the pipeline.

use crate::metrics::{LATENCY_BUCKETS_SECONDS, Registry, table};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Longest a client may take to send its whole request, or to read the
/// answer.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest request head read; a longer one gets 431.
const MAX_REQUEST_BYTES: usize = 8192;
/// Headers parsed per request; more get 431.
const MAX_HEADERS: usize = 32;
/// Pause after a failed accept (out of descriptors), so the thread does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binds the metrics address (port 0 picks a free port); returns the
/// listener and the address it is bound to.
pub(crate) fn bind(address: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(address)?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

/// Serves the registry on its own thread until the process exits.
pub(crate) fn spawn(listener: TcpListener, registry: Arc<Registry>) -> std::io::Result<()> {
    thread::Builder::new()
        .name("ringway-metrics".into())
        .spawn(move || {
            loop {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &registry),
                    Err(_) => thread::sleep(ACCEPT_BACKOFF),
                }
            }
        })
        .map(|_| ())
}

fn serve(mut stream: TcpStream, registry: &Registry) {
    if stream.set_write_timeout(Some(IO_TIMEOUT)).is_err() {
        return;
    }
    let mut head_only = false;
    let (status, content_type, body) = match read_request(&mut stream) {
        Ok((method, path)) => {
            // HEAD is GET without the body (RFC 9110 §9.3.2): load
            // balancers and `curl -I` probe health with it.
            head_only = method == "HEAD";
            respond(&method, &path, registry)
        }
        Err(RequestError::TooLarge) => (431, TEXT, "request header too large\n".to_string()),
        Err(RequestError::Malformed) => (400, TEXT, "malformed request\n".to_string()),
        // Closed or timed out before a whole request: nothing to answer.
        Err(RequestError::Gone) => return,
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    let body = if head_only { "" } else { body.as_str() };
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()));
}

const TEXT: &str = "text/plain; charset=utf-8";
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

enum RequestError {
    TooLarge,
    Malformed,
    Gone,
}

/// Reads one request head within [`IO_TIMEOUT`] of the first read (a
/// client that trickles bytes cannot hold the server longer); returns its
/// method and path (query dropped).
fn read_request(stream: &mut TcpStream) -> Result<(String, String), RequestError> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buffer = [0u8; MAX_REQUEST_BYTES];
    let mut filled = 0;
    loop {
        if filled == buffer.len() {
            return Err(RequestError::TooLarge);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(RequestError::Gone);
        }
        match stream.read(&mut buffer[filled..]) {
            Ok(0) | Err(_) => return Err(RequestError::Gone),
            Ok(read) => filled += read,
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buffer[..filled]) {
            Ok(httparse::Status::Complete(_)) => {
                let method = request.method.unwrap_or_default().to_string();
                let target = request.path.unwrap_or_default();
                let path = target.split('?').next().unwrap_or_default().to_string();
                return Ok((method, path));
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooLarge),
            Err(_) => return Err(RequestError::Malformed),
        }
    }
}

fn respond(method: &str, path: &str, registry: &Registry) -> (u16, &'static str, String) {
    if path != "/metrics" && path != "/healthz" {
        return (
            404,
            TEXT,
            "not found: try /metrics or /healthz\n".to_string(),
        );
    }
    if method != "GET" && method != "HEAD" {
        return (405, TEXT, "only GET and HEAD are supported\n".to_string());
    }
    if path == "/metrics" {
        return (200, EXPOSITION, render(registry));
    }
    match registry.health() {
        Ok(()) => (200, TEXT, "ok\n".to_string()),
        Err(reason) => (503, TEXT, format!("{reason}\n")),
    }
}

/// One sample of a family of the counter table: the entry it belongs to
/// (`input`, `output` or `stage` and its name), the counter's own labels
/// and its value.
struct Sample<'a> {
    entry: (&'static str, &'a str),
    labels: &'static [(&'static str, &'static str)],
    value: u64,
}

/// The Prometheus text exposition (format 0.0.4) of every metric: every
/// counter of the table, for every input, output and ring stage, grouped
/// by family in the table's order; a family no entry carries is left out.
pub(crate) fn render(registry: &Registry) -> String {
    let mut samples: Vec<(&'static table::Family, Sample<'_>)> = Vec::new();
    // One entry's counters, each a sample labelled with the entry.
    let mut add = |entry, counters: &mut dyn Iterator<Item = (&'static table::Meta, u64)>| {
        for (meta, value) in counters {
            let labels = meta.labels;
            samples.push((
                meta.family,
                Sample {
                    entry,
                    labels,
                    value,
                },
            ));
        }
    };
    for (index, name) in registry.input_names.iter().enumerate() {
        let entry = (table::INPUT.entry, name.as_str());
        add(entry, &mut registry.input_counters(index).into_iter());
    }
    for (index, name) in registry.output_names.iter().enumerate() {
        let entry = (table::OUTPUT.entry, name.as_str());
        add(entry, &mut registry.output_counters(index).into_iter());
    }
    for stage in &table::RING_STAGES {
        let entry = (table::RINGS.entry, stage.label);
        add(
            entry,
            &mut table::RINGS.read((stage.gauge)(&registry.rings)),
        );
    }

    let mut text = Exposition::default();
    for family in table::FAMILIES {
        if family.name == table::BUILD_INFO.name {
            build_info(&mut text);
        } else if family.name == table::HTTP_RESPONSES.name {
            http_responses(&mut text, registry);
        } else if family.name == table::BATCH_LATENCY.name {
            batch_latency(&mut text, registry);
        } else {
            let mut of_family = samples
                .iter()
                .filter(|(of, _)| std::ptr::eq(*of, family))
                .peekable();
            if of_family.peek().is_none() {
                continue;
            }
            text.family(family);
            for (_, sample) in of_family {
                let mut labels = vec![sample.entry];
                labels.extend_from_slice(sample.labels);
                text.sample(family.name, &labels, sample.value);
            }
        }
    }
    text.0
}

/// `ringway_build_info`: which build runs, in its labels.
fn build_info(text: &mut Exposition) {
    text.family(&table::BUILD_INFO);
    text.sample(
        table::BUILD_INFO.name,
        &[
            ("version", crate::metrics::BUILD_VERSION),
            ("commit", crate::metrics::BUILD_COMMIT),
            ("profile", crate::metrics::BUILD_PROFILE),
        ],
        1,
    );
}

/// `ringway_http_responses_total`: one sample per OTLP input and status
/// code; nothing without an OTLP input.
fn http_responses(text: &mut Exposition, registry: &Registry) {
    if registry.otlp.iter().all(Option::is_none) {
        return;
    }
    let family = &table::HTTP_RESPONSES;
    text.family(family);
    for (name, otlp) in registry.input_names.iter().zip(&registry.otlp) {
        let Some(otlp) = otlp else { continue };
        for code in crate::metrics::HTTP_STATUS_CODES {
            let code_text = code.to_string();
            let labels = [("input", name.as_str()), ("code", code_text.as_str())];
            text.sample(family.name, &labels, otlp.responses(code));
        }
    }
}

/// `ringway_batch_latency_seconds`: cumulative buckets, sum and count.
fn batch_latency(text: &mut Exposition, registry: &Registry) {
    let latency = table::BATCH_LATENCY.name;
    text.family(&table::BATCH_LATENCY);
    let (buckets, sum_seconds) = registry.latency.snapshot();
    let mut cumulative = 0u64;
    for (index, count) in buckets.iter().enumerate() {
        cumulative += count;
        let bound = LATENCY_BUCKETS_SECONDS
            .get(index)
            .map_or_else(|| "+Inf".to_string(), |bound| bound.to_string());
        text.sample(&format!("{latency}_bucket"), &[("le", &bound)], cumulative);
    }
    text.sample(&format!("{latency}_sum"), &[], sum_seconds);
    text.sample(&format!("{latency}_count"), &[], cumulative);
}

/// Text being rendered: families with their HELP and TYPE, then samples.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    fn family(&mut self, family: &table::Family) {
        let help = family.help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.0, "# HELP {} {help}", family.name);
        let _ = writeln!(self.0, "# TYPE {} {}", family.name, family.kind.as_str());
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (index, (label, value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{label}=\"{}\"", escape_label_value(value));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// A label value as the exposition format wants it: `\`, `"` and newline
/// escaped.
fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(
            escape_label_value("file:C:\\logs\\\"a\"\nb"),
            "file:C:\\\\logs\\\\\\\"a\\\"\\nb"
        );
    }

    #[test]
    fn latency_histogram_puts_each_observation_in_its_bucket() {
        let histogram = crate::metrics::LatencyHistogram::default();
        histogram.observe(Duration::from_micros(500));
        histogram.observe(Duration::from_millis(1));
        histogram.observe(Duration::from_millis(40));
        histogram.observe(Duration::from_secs(60));
        let (buckets, sum) = histogram.snapshot();
        assert_eq!(buckets[0], 2, "0.5ms and 1ms are in le=0.001");
        assert_eq!(buckets[5], 1, "40ms is in le=0.05");
        assert_eq!(buckets[LATENCY_BUCKETS_SECONDS.len()], 1, "60s is in +Inf");
        assert_eq!(buckets.iter().sum::<u64>(), 4);
        assert!((sum - 60.0415).abs() < 1e-9, "sum {sum}");
    }
}
