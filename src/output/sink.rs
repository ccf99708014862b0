//! Sinks: where an output worker writes a batch (`file:`, `stdout`, `null`,
//! `tcp:`, `http` and `otlp`).
//!
//! A [`Sink`] is shared by the workers of one output; each worker keeps its
//! own [`Connection`] to it (the HTTP and OTLP outputs' keep-alive
//! connection and encode buffers, allocated once per worker and reused). A
//! write either succeeds or fails with a [`Failure`]: worth retrying
//! (connection errors, timeouts, 5xx, 408, and 429/503 with their
//! `Retry-After`), or a permanent reject (any other status) that the worker
//! sends to the dead-letter file ([`crate::dead_letter::SharedDeadLetter`]).
//! The `file:` sink is [`FileSink`] (in `output/file.rs`), the `tcp:` one
//! [`TcpSink`]; HTTP and OTLP bodies are built here, once per request.

use crate::config::{Header, OutputKind};
use crate::metrics::OutputCounters;
use crate::output::failure::Failure;
use crate::output::file::FileSink;
use crate::output::http::{Client, Endpoint, Gzip};
use crate::output::kafka::{KafkaSink, KafkaWorker};
use crate::output::otlp::Encoder;
use crate::output::tcp::TcpSink;
use std::fs::File;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub(crate) enum Sink {
    /// Opened on first write; reopened after a write error.
    File(FileSink),
    Stdout,
    Null,
    Tcp(TcpSink),
    /// `http` (NDJSON bodies) and `otlp` (protobuf bodies) outputs.
    Http {
        endpoint: Endpoint,
        otlp: bool,
        gzip: bool,
    },
    Kafka(KafkaSink),
}

/// One output worker's own side of its sink.
pub(crate) struct Connection {
    http: Option<HttpWorker>,
    kafka: Option<KafkaWorker>,
}

/// An HTTP or OTLP output worker's keep-alive connection and the buffers
/// its bodies are built in; [`Sink::prepare`] fills them once per batch.
struct HttpWorker {
    client: Client,
    encoder: Option<Encoder>,
    gzip: Option<Gzip>,
    /// A failure of preparing the body (gzip), reported by the write.
    prepare_error: Option<String>,
    /// The batch bytes the prepared body holds (`from..end`).
    prepared: Option<std::ops::Range<usize>>,
}

impl Sink {
    /// The sink of an output of `kind`; `headers` go with every request of
    /// an HTTP or OTLP output (validation refused them elsewhere). A TLS
    /// output's client configuration is built here, once for all its
    /// connections; `Err` is a TLS file or name validation accepted that
    /// is refused now (a file changed since), in one line. `queue_bytes`:
    /// what a `kafka:` output's producer may queue.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: &OutputKind,
        name: &str,
        headers: &[Header],
        fsync: bool,
        repair_torn: bool,
        timeout: Duration,
        queue_bytes: usize,
        counters: Arc<OutputCounters>,
    ) -> Result<Self, String> {
        let http = matches!(kind, OutputKind::Http(_) | OutputKind::Otlp(_));
        let connector = match (kind.tls(), kind.host()) {
            (Some(options), Some(host)) => Some(crate::tls::connector(options, host, http)?),
            _ => None,
        };
        Ok(match kind {
            OutputKind::File(path) => {
                Sink::File(FileSink::new(path.clone(), fsync, repair_torn, counters))
            }
            OutputKind::Stdout => Sink::Stdout,
            OutputKind::Null => Sink::Null,
            OutputKind::Tcp { host, port, .. } => {
                Sink::Tcp(TcpSink::new(host, *port, timeout, connector))
            }
            OutputKind::Http(target) | OutputKind::Otlp(target) => Sink::Http {
                endpoint: Endpoint::new(&target.host, target.port, &target.path, timeout)
                    .with_headers(headers)
                    .with_tls(connector),
                otlp: matches!(kind, OutputKind::Otlp(_)),
                gzip: target.gzip,
            },
            OutputKind::Kafka(target) => Sink::Kafka(KafkaSink::new(
                target,
                name,
                queue_bytes,
                timeout,
                counters,
            )?),
        })
    }

    /// Whether batches must be written in the order they were dispatched.
    /// HTTP and OTLP batches may complete out of order (their acks keep
    /// checkpoints right).
    pub fn ordered(&self) -> bool {
        !matches!(self, Sink::Null | Sink::Http { .. })
    }

    /// A worker's own connection state for this sink.
    pub fn connection(&self) -> Connection {
        Connection {
            http: match self {
                Sink::Http { otlp, gzip, .. } => Some(HttpWorker {
                    client: Client::new(),
                    encoder: otlp.then(|| Encoder::new(0)),
                    gzip: gzip.then(Gzip::new),
                    prepare_error: None,
                    prepared: None,
                }),
                _ => None,
            },
            kafka: match self {
                Sink::Kafka(kafka) => Some(kafka.worker()),
                _ => None,
            },
        }
    }

    /// Forgets the previous batch's request body: a new batch starts.
    pub fn prepare(&self, connection: &mut Connection, _bytes: &[u8]) {
        if let Some(worker) = &mut connection.http {
            worker.prepared = None;
        }
        if let Some(worker) = &mut connection.kafka {
            worker.start_batch();
        }
    }

    /// Builds the request body for the batch bytes from `from` on, once
    /// per request (OTLP encoding, gzip); the records' observed time is
    /// when it is built. An OTLP batch may take several requests
    /// (see `otlp::REQUEST_BYTES`); an NDJSON batch is one.
    fn build(worker: &mut HttpWorker, bytes: &[u8], from: usize) {
        if worker
            .prepared
            .as_ref()
            .is_some_and(|range| range.start == from)
        {
            return;
        }
        let mut body = &bytes[from..];
        let mut end = bytes.len();
        if let Some(encoder) = &mut worker.encoder {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos() as u64);
            end = encoder.encode(bytes, from, now);
            body = &encoder.out;
        }
        worker.prepare_error = None;
        if let Some(gzip) = &mut worker.gzip
            && let Err(error) = gzip.compress(body)
        {
            worker.prepare_error = Some(error.to_string());
        }
        worker.prepared = Some(from..end);
    }

    /// Sends a batch (network sinks: from `*written`, request by request,
    /// advancing `*written` past each accepted one) or writes it (files);
    /// see [`Sink::write`].
    ///
    /// `handed` is called when the batch's order no longer matters to the
    /// sink: a `kafka:` output calls it once every line is with its
    /// producer (the next batch may be handed while this one waits for
    /// the broker); the others never call it (the worker passes the turn
    /// when the batch is written).
    pub fn send(
        &self,
        connection: &mut Connection,
        bytes: &[u8],
        written: &mut usize,
        handed: &mut dyn FnMut(),
    ) -> Result<(), Failure> {
        if let Sink::Kafka(kafka) = self {
            let worker = connection.kafka.as_mut().expect("made by Sink::connection");
            return kafka.send(worker, bytes, written, handed);
        }
        let Sink::Http { endpoint, otlp, .. } = self else {
            return Ok(self.write(bytes, written)?);
        };
        let worker = connection.http.as_mut().expect("made by Sink::connection");
        while *written < bytes.len() {
            Self::build(worker, bytes, *written);
            let range = worker.prepared.clone().expect("built above");
            if let Some(error) = &worker.prepare_error {
                return Err(io::Error::other(format!("cannot compress the body: {error}")).into());
            }
            let (body, gzip) = match (&worker.gzip, &worker.encoder) {
                (Some(gzip), _) => (&gzip.out[..], true),
                (None, Some(encoder)) => (&encoder.out[..], false),
                (None, None) => (&bytes[range.clone()], false),
            };
            let content_type = if *otlp {
                "application/x-protobuf"
            } else {
                "application/x-ndjson"
            };
            let response = worker.client.post(endpoint, content_type, gzip, body)?;
            match response.status {
                200..=299 => *written = range.end,
                408 | 429 | 500..=599 => {
                    return Err(Failure::Retry {
                        error: io::Error::other(format!(
                            "HTTP {}: {}",
                            response.status,
                            worker.client.snippet()
                        )),
                        retry_after: if matches!(response.status, 429 | 503) {
                            response.retry_after
                        } else {
                            None
                        },
                    });
                }
                status => {
                    return Err(Failure::Reject {
                        why: format!("HTTP {status}"),
                        detail: worker.client.snippet(),
                        range,
                    });
                }
            }
        }
        Ok(())
    }

    /// Writes `bytes[*written..]`, advancing `*written` as bytes go out, so
    /// a retry after an error resumes exactly where the write stopped: no
    /// duplicate, no torn line. A file is reopened on the next attempt.
    pub fn write(&self, bytes: &[u8], written: &mut usize) -> io::Result<()> {
        match self {
            Sink::Tcp(tcp) => tcp.write(bytes, written),
            Sink::Http { .. } | Sink::Kafka(_) => Err(io::Error::other(
                "HTTP and Kafka sinks send with Sink::send",
            )),
            Sink::Null => {
                *written = bytes.len();
                Ok(())
            }
            Sink::Stdout => {
                // Raw fd 1: std's stdout is line-buffered, which would split
                // every batch into a write per line.
                // SAFETY: fd 1 is open for the life of the process; the
                // ManuallyDrop keeps us from closing it.
                let mut stdout = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
                let result = crate::append::write_from(&mut stdout, bytes, written);
                if let Err(error) = &result
                    && error.kind() == io::ErrorKind::BrokenPipe
                {
                    // Nobody will ever read stdout again: retrying forever
                    // would only hide that.
                    eprintln!(
                        "ringway: error: stdout was closed by its reader (broken pipe); exiting"
                    );
                    std::process::exit(1);
                }
                result
            }
            Sink::File(file) => file.write(bytes, written),
        }
    }

    /// Opens a regular `file:` output now (see [`FileSink::open_early`]).
    pub fn open_early(&self) {
        if let Sink::File(file) = self {
            file.open_early();
        }
    }
}
