//! Sinks: where an output worker writes a batch (`file:`, `stdout`, `null`,
//! `tcp:`, `http` and `otlp`).
//!
//! A [`Sink`] is shared by the workers of one output; each worker keeps its
//! own [`Connection`] to it (the HTTP and OTLP outputs' keep-alive
//! connection and encode buffers, allocated once per worker and reused). A
//! write either succeeds or fails with a [`Failure`]: worth retrying
//! (connection errors, timeouts, 5xx, 408, and 429/503 with their
//! `Retry-After`), or a permanent reject (any other status) that the worker
//! sends to the [`DeadLetterFile`]. `file:` is opened by
//! the first worker that writes, inside the worker thread, so a FIFO with no
//! reader stalls that output instead of failing start-up.
//!
//! A regular `file:` output never gets a line appended onto a partial one
//! (a `kill -9` cut a write). With `--data-dir`, on its first open such a
//! file is truncated back to its last newline: that tail was never acked,
//! so it is written again from the checkpoint. Otherwise (no `--data-dir`,
//! where nothing is written again, or a later open such as a SIGHUP
//! reopen) the partial line is ended with a newline and counted
//! (`torn_lines`). The `--dead-letter` file's partial lines are ended too.
//!
//! SIGHUP ([`request_reopen`]) makes every `file:` output and the
//! dead-letter file close and reopen their path before their next write, so
//! logrotate can rename them away: the batch being written finishes in the
//! old file, the next one goes to a new file at the path.

use crate::config::OutputKind;
use crate::metrics::OutputCounters;
use crate::output::http::{Client, Endpoint, Gzip};
use crate::output::otlp::Encoder;
use crate::output::tcp::TcpSink;
use std::fs::File;
use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Bumped at every SIGHUP; a file opened under an older value is reopened
/// before its next write.
static REOPEN_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Makes every file output reopen its path before its next write (SIGHUP).
pub(crate) fn request_reopen() {
    REOPEN_GENERATION.fetch_add(1, Ordering::SeqCst);
}

pub(crate) fn reopen_generation() -> u64 {
    REOPEN_GENERATION.load(Ordering::SeqCst)
}

pub(crate) enum Sink {
    /// Opened on first write; reopened after a write error.
    File {
        path: PathBuf,
        file: Mutex<FileState>,
        /// fsync after each batch, before it is acked (`--fsync`).
        fsync: bool,
        /// The output's counters (`torn_lines`).
        counters: Arc<OutputCounters>,
    },
    Stdout,
    Null,
    Tcp(TcpSink),
    /// `http` (NDJSON bodies) and `otlp` (protobuf bodies) outputs.
    Http {
        endpoint: Endpoint,
        otlp: bool,
        gzip: bool,
    },
}

/// Why a write did not go through.
pub(crate) enum Failure {
    /// Worth trying again: after `retry_after` when the server gave one,
    /// else after the worker's backoff.
    Retry {
        error: io::Error,
        retry_after: Option<Duration>,
    },
    /// The receiver refused the bytes `range` of the batch for good (HTTP
    /// `status`); `detail` is the start of its answer. What comes after
    /// `range` is still to be sent.
    Reject {
        status: u16,
        detail: String,
        range: std::ops::Range<usize>,
    },
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure::Retry {
            error,
            retry_after: None,
        }
    }
}

/// One output worker's own side of its sink.
pub(crate) struct Connection {
    http: Option<HttpWorker>,
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

pub(crate) struct FileState {
    file: Option<File>,
    /// Cut a torn last line at the first open (with `--data-dir`, where
    /// the cut bytes are read again from the checkpoint); otherwise a torn
    /// last line is ended with a newline.
    repair_torn: bool,
    /// Opened before: later opens must not truncate, since what this run
    /// wrote was acked and will not be written again.
    opened_before: bool,
    /// [`REOPEN_GENERATION`] when `file` was opened.
    generation: u64,
}

impl Sink {
    pub fn new(
        kind: &OutputKind,
        fsync: bool,
        repair_torn: bool,
        timeout: Duration,
        counters: Arc<OutputCounters>,
    ) -> Self {
        match kind {
            OutputKind::File(path) => Sink::File {
                path: path.clone(),
                file: Mutex::new(FileState {
                    file: None,
                    repair_torn,
                    opened_before: false,
                    generation: 0,
                }),
                fsync,
                counters,
            },
            OutputKind::Stdout => Sink::Stdout,
            OutputKind::Null => Sink::Null,
            OutputKind::Tcp { host, port } => Sink::Tcp(TcpSink::new(host, *port, timeout)),
            OutputKind::Http(target) | OutputKind::Otlp(target) => Sink::Http {
                endpoint: Endpoint::new(&target.host, target.port, &target.path, timeout),
                otlp: matches!(kind, OutputKind::Otlp(_)),
                gzip: target.gzip,
            },
        }
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
        }
    }

    /// Forgets the previous batch's request body: a new batch starts.
    pub fn prepare(&self, connection: &mut Connection, _bytes: &[u8]) {
        if let Some(worker) = &mut connection.http {
            worker.prepared = None;
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
    pub fn send(
        &self,
        connection: &mut Connection,
        bytes: &[u8],
        written: &mut usize,
    ) -> Result<(), Failure> {
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
                        status,
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
            Sink::Http { .. } => Err(io::Error::other("HTTP sinks send with Sink::send")),
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
                let result = write_from(&mut stdout, bytes, written);
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
            Sink::File {
                path,
                file,
                fsync,
                counters,
            } => {
                let mut state = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                // Under the lock: a batch another worker is writing ends in
                // the old file before this one starts in the new.
                if state.generation != reopen_generation() {
                    state.file = None;
                }
                // A retry that resumes inside the batch continues a line
                // of its own: the file's end is not a torn line then.
                let out = state.open(path, *written > 0, counters)?;
                let mut result = write_from(out, bytes, written);
                if result.is_ok() && *fsync {
                    result = out.sync_data();
                    if result.is_err() {
                        // After a failed fsync the kernel may have dropped
                        // the dirty pages: a retry rewrites the whole batch
                        // (lines may repeat) rather than trust them.
                        *written = 0;
                    }
                }
                if result.is_err() {
                    state.file = None;
                }
                result
            }
        }
    }

    /// Opens a regular `file:` output now (cutting or ending a torn last
    /// line), so a crash's leftovers are repaired even before new data
    /// arrives. A FIFO or other special file is left to open on first write.
    pub fn open_early(&self) {
        if let Sink::File {
            path,
            file,
            counters,
            ..
        } = self
        {
            let regular = match std::fs::metadata(path) {
                Ok(metadata) => metadata.is_file(),
                Err(error) => error.kind() == io::ErrorKind::NotFound,
            };
            if !regular {
                return;
            }
            let mut state = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Err(error) = state.open(path, false, counters) {
                // The first write retries and reports it.
                eprintln!(
                    "ringway: warning: cannot open output {} yet; error = {error}",
                    path.display()
                );
            }
        }
    }
}

/// The `--dead-letter` file as the outputs use it: batches a receiver
/// rejected are appended, whole, by whichever worker got the reject.
pub(crate) struct DeadLetterFile {
    pub path: PathBuf,
    /// The open file and the [`REOPEN_GENERATION`] it was opened under.
    file: Mutex<Option<(File, u64)>>,
}

impl DeadLetterFile {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            file: Mutex::new(None),
        }
    }

    /// Appends `bytes` (whole lines); opens the file on first use and again
    /// after an error.
    pub fn append(&self, bytes: &[u8]) -> io::Result<()> {
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let generation = reopen_generation();
        if file
            .as_ref()
            .is_none_or(|(_, opened)| *opened != generation)
        {
            // A crash may have cut the last append: end that line, so the
            // rejected lines that follow stay whole.
            let (opened, _) = open_whole_lines(&self.path, false)?;
            *file = Some((opened, generation));
        }
        let result = file.as_mut().expect("opened above").0.write_all(bytes);
        if result.is_err() {
            *file = None;
        }
        result
    }
}

impl FileState {
    /// The open file, opened (at the end of whole lines) when it is not.
    /// `resuming`: a retry continues inside its batch, so a partial last
    /// line is this run's own and is left as it is.
    fn open(
        &mut self,
        path: &Path,
        resuming: bool,
        counters: &OutputCounters,
    ) -> io::Result<&mut File> {
        if self.file.is_none() {
            self.generation = reopen_generation();
            let (file, tail) = if resuming {
                (open_for_append(path, false)?, TornTail::Whole)
            } else {
                open_whole_lines(path, self.repair_torn && !self.opened_before)?
            };
            if tail == TornTail::Ended {
                counters.torn_lines.fetch_add(1, Ordering::Relaxed);
            }
            self.opened_before = true;
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }
}

/// What an open found at the end of a regular file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TornTail {
    /// Empty, whole lines, not a regular file, or not readable (warned).
    Whole,
    /// A partial last line was cut off (it is written again).
    Cut,
    /// A partial last line was ended with a newline.
    Ended,
}

/// Opens a dead-letter file for appending on a line of its own (a partial
/// last line left by a crash is ended with a newline first): the CPU
/// workers' writer of invalid lines opens it this way too.
pub(crate) fn open_dead_letter(path: &Path) -> io::Result<File> {
    open_whole_lines(path, false).map(|(file, _)| file)
}

fn open_for_append(path: &Path, read: bool) -> io::Result<File> {
    File::options()
        .create(true)
        .append(true)
        .read(read)
        .open(path)
}

/// Opens `path` for appending so that what is appended starts on a line of
/// its own: a regular file that ends in a partial line (an interrupted
/// write) is cut back to its last `\n` when `cut` (the caller writes that
/// tail again), else ended with a `\n`. Fails when the file cannot be
/// made to end in a whole line: appending onto the partial line would
/// corrupt the next record.
fn open_whole_lines(path: &Path, cut: bool) -> io::Result<(File, TornTail)> {
    // Regular files are opened readable too, to see their last byte;
    // anything else (a FIFO) write-only, or ringway would be its own reader.
    let regular = match std::fs::metadata(path) {
        Ok(metadata) => metadata.is_file(),
        Err(error) => error.kind() == io::ErrorKind::NotFound,
    };
    if !regular {
        return Ok((open_for_append(path, false)?, TornTail::Whole));
    }
    let file = match open_for_append(path, true) {
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
            let file = open_for_append(path, false)?;
            eprintln!(
                "ringway: warning: output {} is not readable, so a partial last line left by a crash cannot be found and ended",
                path.display()
            );
            return Ok((file, TornTail::Whole));
        }
        other => other?,
    };
    let size = match partial_line_size(&file) {
        Ok(None) => return Ok((file, TornTail::Whole)),
        Ok(Some(size)) => size,
        Err(error) => {
            eprintln!(
                "ringway: warning: output {}: cannot check for a partial last line (writing on after it); error = {error}",
                path.display()
            );
            return Ok((file, TornTail::Whole));
        }
    };
    if cut {
        match cut_torn_line(&file, size) {
            Ok(keep) => {
                eprintln!(
                    "ringway: warning: output {} ended in a partial line (an interrupted write); cut {} bytes back to its last complete line, they are written again from the checkpoint",
                    path.display(),
                    size - keep
                );
                return Ok((file, TornTail::Cut));
            }
            Err(error) => {
                eprintln!(
                    "ringway: warning: output {}: cannot cut a partial last line, ending it with a newline instead; error = {error}",
                    path.display()
                );
                // The cut may have happened before the error (a failed
                // fsync): then there is no partial line left to end.
                if partial_line_size(&file)?.is_none() {
                    return Ok((file, TornTail::Cut));
                }
            }
        }
    }
    (&file).write_all(b"\n")?;
    eprintln!(
        "ringway: warning: output {} ended in a partial line (an interrupted write); ended it with a newline so new lines do not continue it (counted as torn_lines)",
        path.display()
    );
    Ok((file, TornTail::Ended))
}

/// The file's size when it ends in a partial line (it is not empty and
/// its last byte is not `\n`); `None` when it holds whole lines.
fn partial_line_size(file: &File) -> io::Result<Option<u64>> {
    let size = file.metadata()?.len();
    if size == 0 {
        return Ok(None);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, size - 1)?;
    Ok((last[0] != b'\n').then_some(size))
}

/// Truncates a regular file of `size` bytes that does not end in `\n`
/// back to just after its last `\n` (to empty when it has none); returns
/// the size kept.
fn cut_torn_line(file: &File, size: u64) -> io::Result<u64> {
    let mut chunk = [0u8; 64 * 1024];
    let mut end = size;
    let mut keep = 0;
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.read_exact_at(part, start)?;
        if let Some(newline) = memchr::memrchr(b'\n', part) {
            keep = start + newline as u64 + 1;
            break;
        }
        end = start;
    }
    file.set_len(keep)?;
    file.sync_data()?;
    Ok(keep)
}

/// `write_all` that records its progress in `written`.
fn write_from(out: &mut File, bytes: &[u8], written: &mut usize) -> io::Result<()> {
    while *written < bytes.len() {
        match out.write(&bytes[*written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(count) => *written += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
