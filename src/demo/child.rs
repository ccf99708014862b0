//! The child `ringway run` the demo drives ([`Pipeline`]), and the
//! temporary directory it runs in ([`TempDir`]).

use super::{Light, Sample};
use crate::demo::sources::SourceCounters;
use crate::top::{self, Snapshot};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest the child may take to start and say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// The child's own `--shutdown-timeout`, and how much longer this process
/// waits for it before killing it.
const CHILD_SHUTDOWN: Duration = Duration::from_secs(10);
const CHILD_EXIT_GRACE: Duration = Duration::from_secs(5);
/// Receive buffer of the UDP input: under the kernel's default
/// net.core.rmem_max, so every box drops alike, and small enough that a
/// red light fills it within the cycle; large enough (about 250 ms of the
/// sender's datagrams) that a busy machine's scheduling stalls of the I/O
/// thread do not drop on green (128 KiB, 60 ms, dropped in CI at 100%).
const UDP_RCVBUF: &str = "512KiB";
/// Reads, batches and lines of the pipeline are small, so what its
/// buffers can hold beyond the rings (a reader's reads ahead, a partly
/// filled batch) is small beside what a red light holds back: the sources
/// feel the red within the cycle.
const BUFFER_SIZE: &str = "8KiB";
const MAX_LINE: &str = "4KiB";
/// Lines of the child's stderr shown when it fails.
const LOG_TAIL_LINES: usize = 20;

/// What the child's `--summary-json` says at its exit.
pub(super) struct Summary {
    pub(super) kernel_drops: u64,
    /// 429s the OTLP input answered.
    pub(super) http_429: u64,
}

/// The child `ringway run` and how to reach it.
pub(crate) struct Pipeline {
    pub(super) child: Child,
    /// The light's switch; dropping it turns the light green and stops the
    /// child.
    pub(super) stdin: Option<ChildStdin>,
    /// Whether the child was last told green.
    pub(super) told_green: Option<bool>,
    pub metrics: SocketAddr,
    pub(super) udp: SocketAddr,
    pub(super) otlp: SocketAddr,
    /// Names of the three inputs, as typed: file, UDP, OTLP.
    pub input_names: [String; 3],
    pub(super) log: PathBuf,
    pub(super) summary: PathBuf,
    pub command_line: String,
}

impl Pipeline {
    pub(super) fn start(dir: &TempDir) -> Result<Self, String> {
        let source = dir.source_file();
        std::fs::write(&source, b"")
            .map_err(|error| format!("cannot create {}: {error}", source.display()))?;
        let input_names = [
            format!("file:{}", source.display()),
            format!("udp:127.0.0.1:0,format=syslog,rcvbuf={UDP_RCVBUF}"),
            "otlp:127.0.0.1:0".to_string(),
        ];
        let sink = dir.sink_file();
        let summary = dir.path.join("summary.json");
        let log = dir.path.join("ringway.log");
        let shutdown = format!("{}s", CHILD_SHUTDOWN.as_secs());
        let mut arguments: Vec<String> = vec!["run".into()];
        for name in &input_names {
            arguments.extend(["--input".into(), name.clone()]);
        }
        arguments.extend(
            [
                "--output",
                &format!("file:{}", sink.display()),
                "--metrics",
                "127.0.0.1:0",
                "--summary-json",
                &summary.display().to_string(),
                "--stats-interval",
                "0",
                "--read-buf",
                BUFFER_SIZE,
                "--batch-bytes",
                BUFFER_SIZE,
                "--max-line",
                MAX_LINE,
                "--shutdown-timeout",
                &shutdown,
                "--traffic-light",
            ]
            .map(String::from),
        );
        let executable = std::env::current_exe()
            .map_err(|error| format!("cannot find ringway's own executable: {error}"))?;
        let log_file = std::fs::File::create(&log)
            .map_err(|error| format!("cannot create {}: {error}", log.display()))?;
        let mut command = Command::new(&executable);
        command
            .args(&arguments)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log_file);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", executable.display()))?;
        let stdin = child.stdin.take();
        let command_line = format!("ringway {}", arguments.join(" "));
        let mut pipeline = Self {
            child,
            stdin,
            told_green: None,
            metrics: SocketAddr::from(([127, 0, 0, 1], 0)),
            udp: SocketAddr::from(([127, 0, 0, 1], 0)),
            otlp: SocketAddr::from(([127, 0, 0, 1], 0)),
            input_names,
            log,
            summary,
            command_line,
        };
        if let Err(message) = pipeline.find_addresses() {
            pipeline.show_log();
            return Err(message);
        }
        Ok(pipeline)
    }

    /// Reads the addresses the child announces on stderr (it binds port 0).
    pub(super) fn find_addresses(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let announced = |prefix: &str| {
                log.lines()
                    .find_map(|line| line.strip_prefix(prefix)?.trim().parse::<SocketAddr>().ok())
            };
            let udp = announced(&format!(
                "ringway: input '{}' listening on ",
                self.input_names[1]
            ));
            let otlp = announced(&format!(
                "ringway: input '{}' listening on ",
                self.input_names[2]
            ));
            let metrics = announced("ringway: metrics listening on ");
            if let (Some(udp), Some(otlp), Some(metrics)) = (udp, otlp, metrics) {
                (self.udp, self.otlp, self.metrics) = (udp, otlp, metrics);
                // Ready once /metrics answers: every stage has started.
                if top::fetch(metrics).is_ok() {
                    return Ok(());
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the demo's pipeline exited at start ({status})"));
            }
            if Instant::now() >= deadline {
                return Err("the demo's pipeline did not start in time".to_string());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Tells the child the light's colour, when it changed.
    pub(super) fn set_light(&mut self, green: bool) -> Result<(), String> {
        if self.told_green == Some(green) {
            return Ok(());
        }
        let stdin = self.stdin.as_mut().ok_or("the traffic light is closed")?;
        stdin
            .write_all(if green { b"green\n" } else { b"red\n" })
            .map_err(|error| format!("the demo's pipeline stopped listening ({error})"))?;
        self.told_green = Some(green);
        Ok(())
    }

    /// Reads `/metrics` and the sources' counters.
    pub(super) fn sample(
        &mut self,
        counters: &[Arc<SourceCounters>; 3],
        light: &mut Light,
        now: Instant,
    ) -> Result<(Sample, Snapshot), String> {
        let text = self.fetch()?;
        let samples = top::parse(&text);
        let snapshot = Snapshot::from_samples(&samples);
        let input = |index: usize| {
            snapshot
                .inputs
                .iter()
                .find(|(name, _)| *name == self.input_names[index])
                .map(|(_, flow)| *flow)
                .unwrap_or_default()
        };
        let rings =
            top::STAGES.map(|(label, _)| snapshot.rings.get(label).copied().unwrap_or_default());
        let refused = samples
            .iter()
            .filter(|sample| {
                sample.name == "ringway_http_responses_total" && sample.label("code") == Some("429")
            })
            .map(|sample| sample.value)
            .sum();
        let written = samples
            .iter()
            .filter(|sample| sample.name == "ringway_output_records_total")
            .map(|sample| sample.value)
            .sum();
        let file_read_bytes = input(0).bytes;
        let get = |counter: &std::sync::atomic::AtomicU64| SourceCounters::get(counter) as f64;
        let sample = Sample {
            at_seconds: now.duration_since(light.epoch).as_secs_f64(),
            green_share: light.take_green_share(),
            rings,
            file_behind_bytes: (get(&counters[0].bytes) - file_read_bytes).max(0.0),
            udp_sent: get(&counters[1].records),
            udp_kernel_drops: snapshot
                .dropped
                .get("kernel_drops")
                .copied()
                .unwrap_or_default(),
            otlp_sent: get(&counters[2].records),
            otlp_refused: refused,
            otlp_retries: get(&counters[2].retries),
            written,
        };
        Ok((sample, snapshot))
    }

    pub(super) fn fetch(&self) -> Result<String, String> {
        top::fetch(self.metrics).map_err(|error| {
            format!(
                "the demo's pipeline does not answer at {}: {error}",
                self.metrics
            )
        })
    }

    /// True once every source's records are accounted for inside ringway
    /// and the output wrote everything read.
    pub(super) fn settled(&self, counters: &[Arc<SourceCounters>; 3]) -> Result<bool, String> {
        let samples = top::parse(&self.fetch()?);
        let value = |name: &str, input: Option<&str>| -> u64 {
            samples
                .iter()
                .filter(|sample| {
                    sample.name == name
                        && input.is_none_or(|input| sample.label("input") == Some(input))
                })
                .map(|sample| sample.value as u64)
                .sum()
        };
        let names = &self.input_names;
        let file_read = value("ringway_input_bytes_total", Some(&names[0]));
        let udp_received = value("ringway_input_records_total", Some(&names[1]));
        let udp_dropped = samples
            .iter()
            .filter(|sample| {
                sample.name == "ringway_dropped_records_total"
                    && sample.label("reason") == Some("kernel_drops")
            })
            .map(|sample| sample.value as u64)
            .sum::<u64>();
        let otlp_accepted = value("ringway_otlp_records_accepted_total", Some(&names[2]));
        let read = value("ringway_input_records_total", None);
        let written = value("ringway_output_records_total", None);
        Ok(file_read == SourceCounters::get(&counters[0].bytes)
            && udp_received + udp_dropped == SourceCounters::get(&counters[1].records)
            && otlp_accepted == SourceCounters::get(&counters[2].records)
            && written == read)
    }

    /// Closes the light's pipe (the child turns it green and drains), waits
    /// for the child's exit and reads its summary.
    pub(super) fn stop(&mut self) -> Result<Summary, String> {
        self.stdin = None;
        let deadline = Instant::now() + CHILD_SHUTDOWN + CHILD_EXIT_GRACE;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) | Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("the demo's pipeline did not stop in time (killed)".to_string());
                }
            }
        };
        if !status.success() {
            return Err(format!("the demo's pipeline ended with {status}"));
        }
        let text = std::fs::read_to_string(&self.summary)
            .map_err(|error| format!("cannot read the pipeline's summary: {error}"))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|error| format!("the pipeline's summary is not JSON: {error}"))?;
        let inputs = &json["inputs"];
        Ok(Summary {
            kernel_drops: inputs[1]["kernel_drops"].as_u64().unwrap_or_default(),
            http_429: inputs[2]["http_responses"]["429"]
                .as_u64()
                .unwrap_or_default(),
        })
    }

    /// The last lines of the child's stderr, for a failure.
    pub(super) fn show_log(&self) {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        if !tail.is_empty() {
            eprintln!("ringway: the demo pipeline's last messages:");
            for line in tail {
                eprintln!("  {line}");
            }
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Closing the pipe stops the child; a child that does not stop in
        // time (or was never told) is killed: nothing outlives the demo.
        self.stdin = None;
        if matches!(self.child.try_wait(), Ok(None)) {
            let deadline = Instant::now() + CHILD_SHUTDOWN + CHILD_EXIT_GRACE;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The demo's temporary directory (the source file, the output file, the
/// child's log and summary), removed with everything in it when dropped.
pub(crate) struct TempDir {
    pub(super) path: PathBuf,
}

impl TempDir {
    pub(super) fn create() -> std::io::Result<Self> {
        let base = std::env::temp_dir();
        let mut attempt = 0;
        loop {
            let path = base.join(format!("ringway-demo-{}-{attempt}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(error)
                    if error.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 =>
                {
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    pub(super) fn source_file(&self) -> PathBuf {
        self.path.join("source.log")
    }

    pub(super) fn sink_file(&self) -> PathBuf {
        self.path.join("output.log")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
