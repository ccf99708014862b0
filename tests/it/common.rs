//! Shared helpers for ringway's integration tests.
//!
//! Every test runs the real binary (`CARGO_BIN_EXE_ringway`) on real files in
//! a fresh `TempDir`. `Ringway` wraps a spawned process whose stdout and
//! stderr go to files (so a chatty process can never block on a full pipe);
//! `Ringway::wait` enforces a timeout and kills the process on expiry, so a
//! hang fails the test instead of hanging CI. `Summary` reads the
//! `--summary-json` file; the generators write deterministic test data.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// A generous bound for anything that should take a few seconds: the tests
/// run in parallel on a small machine.
pub const TIMEOUT: Duration = Duration::from_secs(120);

pub fn ringway_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ringway")
}

/// The project's `../shared/data` directory (absent outside CI).
pub fn shared_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

// ---------------------------------------------------------------------------
// Temporary directories

/// Taken by the tests that race a writer against rotations at full speed
/// (tests/it/rotation.rs), so that no two of them run at once: each one's
/// timing is what it tests, and two together on a 2-core machine starve the
/// ringway under test until a rotated file lives and goes between two of
/// its scans (a name-based tailer cannot see a file that was never there
/// when it looked). Other tests still run beside them.
pub fn one_rotation_race_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static RACE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    RACE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir, removed on drop (unless
/// `RINGWAY_TEST_KEEP` is set, for debugging).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "ringway-test-{}-{}-{}",
            std::process::id(),
            n,
            label
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join<P: AsRef<Path>>(&self, p: P) -> PathBuf {
        self.path.join(p)
    }

    /// A sub-directory, created.
    pub fn subdir(&self, name: &str) -> PathBuf {
        let p = self.path.join(name);
        fs::create_dir_all(&p).expect("create sub dir");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("RINGWAY_TEST_KEEP").is_some() {
            eprintln!("keeping {}", self.path.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

pub fn p(path: &Path) -> String {
    path.to_str().expect("utf-8 path").to_string()
}

// ---------------------------------------------------------------------------
// Running ringway

static SPAWN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A running ringway process. Killed on drop if still alive.
pub struct Ringway {
    child: Option<Child>,
    pub args: Vec<String>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

/// How a ringway process ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub args: Vec<String>,
    pub elapsed: Duration,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics unless the process exited with `code`, showing its stderr.
    pub fn assert_code(&self, code: i32) {
        assert_eq!(
            self.status.code(),
            Some(code),
            "ringway {:?}\nexpected exit code {code}, got {:?}\n--- stderr ---\n{}",
            self.args,
            self.status,
            tail(&self.stderr, 4000)
        );
    }

    pub fn assert_success(&self) {
        self.assert_code(0);
    }
}

/// Spawns `ringway ARGS...` with stdout/stderr captured into files in `dir`.
pub fn spawn(dir: &TempDir, args: &[&str]) -> Ringway {
    spawn_configured(dir, args, |_| {})
}

/// As [`spawn`], after `configure` adjusted the command (e.g. a `pre_exec`
/// that installs a seccomp filter in the child).
pub fn spawn_configured(
    dir: &TempDir,
    args: &[&str],
    configure: impl FnOnce(&mut Command),
) -> Ringway {
    let n = SPAWN_COUNTER.fetch_add(1, Ordering::SeqCst);
    let stdout_path = dir.join(format!("ringway-{n}.stdout"));
    let stderr_path = dir.join(format!("ringway-{n}.stderr"));
    let stdout = File::create(&stdout_path).expect("create stdout file");
    let stderr = File::create(&stderr_path).expect("create stderr file");
    let mut command = Command::new(ringway_bin());
    command
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    configure(&mut command);
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", ringway_bin()));
    Ringway {
        child: Some(child),
        args: args.iter().map(|s| s.to_string()).collect(),
        stdout_path,
        stderr_path,
    }
}

/// Runs `ringway run --input file:INPUT --output file:OUTPUT --exit-on-eof
/// --summary-json SUMMARY` to completion (bounded by [`TIMEOUT`]).
pub fn run_to_eof(dir: &TempDir, input: &Path, output: &Path, summary: &Path) -> Finished {
    run(
        dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(input)),
            "--output",
            &format!("file:{}", p(output)),
            "--exit-on-eof",
            "--summary-json",
            &p(summary),
        ],
        TIMEOUT,
    )
}

/// Runs `ringway ARGS...` to completion (bounded by `timeout`).
pub fn run(dir: &TempDir, args: &[&str], timeout: Duration) -> Finished {
    spawn(dir, args).wait(timeout)
}

impl Ringway {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("child").id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a pid we spawned and have not reaped yet.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid());
    }

    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().expect("child").try_wait(), Ok(None))
    }

    pub fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.stderr_path).unwrap_or_default()).into_owned()
    }

    /// The stderr lines written so far, without a last line still being
    /// written: stderr is unbuffered, so `eprintln!` may reach the file in
    /// pieces, and half an address can parse as another port.
    pub fn stderr_whole_lines(&self) -> String {
        let mut text = self.stderr_now();
        text.truncate(text.rfind('\n').map_or(0, |at| at + 1));
        text
    }

    /// Panics (with stderr) if the process has already exited.
    pub fn assert_running(&mut self, context: &str) {
        let status = self
            .child
            .as_mut()
            .expect("child")
            .try_wait()
            .expect("try_wait");
        if let Some(status) = status {
            panic!(
                "ringway {:?} exited early ({status}) {context}\n--- stderr ---\n{}",
                self.args,
                tail(&self.stderr_now(), 4000)
            );
        }
    }

    /// Waits for exit; on timeout kills the process (SIGKILL) and panics.
    pub fn wait(mut self, timeout: Duration) -> Finished {
        let start = Instant::now();
        let mut child = self.child.take().expect("child");
        loop {
            match child.try_wait().expect("try_wait") {
                Some(status) => {
                    return Finished {
                        status,
                        stdout: fs::read(&self.stdout_path).unwrap_or_default(),
                        stderr: String::from_utf8_lossy(
                            &fs::read(&self.stderr_path).unwrap_or_default(),
                        )
                        .into_owned(),
                        args: self.args.clone(),
                        elapsed: start.elapsed(),
                    };
                }
                None if start.elapsed() > timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "ringway {:?} did not exit within {:?}; killed\n--- stderr ---\n{}",
                        self.args,
                        timeout,
                        tail(&self.stderr_now(), 4000)
                    );
                }
                None => thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for Ringway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

pub fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

// ---------------------------------------------------------------------------
// Summary JSON

pub struct Summary {
    pub json: serde_json::Value,
}

pub fn read_summary(path: &Path) -> Summary {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("summary {} not readable: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("summary {} is not JSON ({e}):\n{text}", path.display()));
    Summary { json }
}

impl Summary {
    fn entry(&self, list: &str, i: usize) -> &serde_json::Value {
        self.json
            .get(list)
            .and_then(|l| l.as_array())
            .and_then(|l| l.get(i))
            .unwrap_or_else(|| panic!("summary has no {list}[{i}]:\n{}", self.json))
    }

    fn number(&self, list: &str, i: usize, key: &str) -> u64 {
        self.entry(list, i)
            .get(key)
            .and_then(|v| v.as_u64())
            .unwrap_or_else(|| {
                panic!(
                    "summary {list}[{i}] has no unsigned integer {key:?}:\n{}",
                    self.json
                )
            })
    }

    pub fn input(&self, i: usize, key: &str) -> u64 {
        self.number("inputs", i, key)
    }

    pub fn output(&self, i: usize, key: &str) -> u64 {
        self.number("outputs", i, key)
    }

    pub fn input_name(&self, i: usize) -> String {
        self.entry("inputs", i)["name"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn output_name(&self, i: usize) -> String {
        self.entry("outputs", i)["name"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn inputs_len(&self) -> usize {
        self.json["inputs"].as_array().map(|a| a.len()).unwrap_or(0)
    }

    pub fn outputs_len(&self) -> usize {
        self.json["outputs"]
            .as_array()
            .map(|a| a.len())
            .unwrap_or(0)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.json)
    }
}

// ---------------------------------------------------------------------------
// Data generation

/// xorshift64*: deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn alnum(&mut self, out: &mut String, n: usize) {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        for _ in 0..n {
            out.push(CHARS[self.below(CHARS.len() as u64) as usize] as char);
        }
    }
}

const WORDS: &[&str] = &[
    "café",
    "naïve",
    "日本語",
    "🚀",
    "Straße",
    "αβγ",
    "plain",
    "Ωmega",
    "ünïcödé",
    "emoji😀",
];

/// One NDJSON line (no newline) of ~200 bytes with 9 fields, escaped quotes,
/// escaped backslashes, `\uXXXX` escapes, a `\t` escape and raw non-ASCII
/// UTF-8. Valid JSON.
pub fn json_line(i: u64, rng: &mut Rng) -> String {
    let mut pad = String::new();
    let pad_len = 20 + rng.below(40) as usize;
    rng.alnum(&mut pad, pad_len);
    format!(
        r#"{{"ts":"2024-05-{:02}T{:02}:{:02}:{:02}.{:03}Z","seq":{},"level":"{}","host":"web-{:02}","msg":"user \"{}\" read C:\\logs\\app{}.log \u00e9\u2603\ud83d\ude00 {}","latency_ms":{}.{:03},"ok":{},"tags":["a\tb","x\\y"],"pad":"{}"}}"#,
        1 + i % 28,
        (i / 3600) % 24,
        (i / 60) % 60,
        i % 60,
        i % 1000,
        i,
        rng.pick(&["debug", "info", "warn", "error"]),
        rng.below(100),
        rng.pick(WORDS),
        rng.below(1000),
        rng.pick(WORDS),
        rng.below(5000),
        rng.below(1000),
        rng.below(2) == 0,
        pad
    )
}

/// One plain-text log line (no newline) of ~200 bytes: tabs, quotes,
/// backslashes and non-ASCII UTF-8, never CR or LF.
pub fn raw_line(i: u64, rng: &mut Rng) -> String {
    let mut pad = String::new();
    let pad_len = 20 + rng.below(60) as usize;
    rng.alnum(&mut pad, pad_len);
    format!(
        "2024-05-{:02} {:02}:{:02}:{:02}.{:03} host-{:02} app[{}]: seq={} level={} msg=\"user '{}' opened C:\\temp\\f{}\"\tpath=/var/log/{}.log {} {}",
        1 + i % 28,
        (i / 3600) % 24,
        (i / 60) % 60,
        i % 60,
        i % 1000,
        rng.below(100),
        1000 + rng.below(30000),
        i,
        rng.pick(&["DEBUG", "INFO", "WARN", "ERROR"]),
        rng.pick(WORDS),
        rng.below(100000),
        rng.pick(WORDS),
        rng.pick(WORDS),
        pad
    )
}

/// Writes `n` lines produced by `line(i)`, each followed by `\n`. Returns the
/// file size.
pub fn write_lines(path: &Path, n: u64, mut line: impl FnMut(u64) -> String) -> u64 {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).expect("create data file"));
    let mut bytes = 0u64;
    for i in 0..n {
        let l = line(i);
        w.write_all(l.as_bytes()).unwrap();
        w.write_all(b"\n").unwrap();
        bytes += l.len() as u64 + 1;
    }
    w.flush().unwrap();
    bytes
}

/// Short numbered lines `"{tag} {i:08} ..."`, easy to check for order.
pub fn numbered_line(tag: &str, i: u64) -> String {
    format!("{tag} {i:08} the quick brown fox jumps over the lazy dog")
}

pub fn numbered_lines(tag: &str, range: std::ops::Range<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    for i in range {
        out.extend_from_slice(numbered_line(tag, i).as_bytes());
        out.push(b'\n');
    }
    out
}

/// Appends `bytes` to `path` (creating it) in one write.
pub fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(bytes).expect("append");
}

/// Truncates `path` to 0 bytes in place (same inode), as copytruncate does.
pub fn truncate_in_place(path: &Path) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(0))
        .unwrap_or_else(|e| panic!("truncate {}: {e}", path.display()));
}

/// Reads the FIFO to EOF on a thread; reports progress and sends the bytes.
///
/// The thread is never joined: if ringway never opens the FIFO, the thread
/// stays blocked in open(2) and dies with the test process.
pub fn attach_fifo_reader(fifo: PathBuf, progress: Arc<AtomicU64>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut f = File::open(&fifo).expect("open FIFO for reading");
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    progress.store(got.len() as u64, Ordering::SeqCst);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("reading FIFO: {e}"),
            }
        }
        let _ = tx.send(got);
    });
    rx
}

/// Like [`attach_fifo_reader`], but what arrived so far can be looked at
/// while the reader runs (to wait for a particular last line).
pub fn attach_fifo_collector(
    fifo: PathBuf,
) -> (Arc<std::sync::Mutex<Vec<u8>>>, mpsc::Receiver<Vec<u8>>) {
    let arrived = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let shared = Arc::clone(&arrived);
    thread::spawn(move || {
        let mut f = File::open(&fifo).expect("open FIFO for reading");
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => shared.lock().unwrap().extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("reading FIFO: {e}"),
            }
        }
        let got = std::mem::take(&mut *shared.lock().unwrap());
        let _ = tx.send(got);
    });
    (arrived, rx)
}

pub fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(
        rc,
        0,
        "mkfifo {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

// ---------------------------------------------------------------------------
// Comparing outputs

/// Splits on `\n`; the piece after a final `\n` is not a line.
pub fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn show(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(&line[..line.len().min(300)]).into_owned();
    if line.len() > 300 {
        format!("{s:?}… ({} bytes)", line.len())
    } else {
        format!("{s:?}")
    }
}

/// Panics unless `actual == expected`, naming the first differing line.
pub fn assert_bytes_identical(expected: &[u8], actual: &[u8], context: &str) {
    if expected == actual {
        return;
    }
    let mut e = BufReader::new(expected);
    let mut a = BufReader::new(actual);
    report_first_difference(
        &mut e,
        &mut a,
        expected.len() as u64,
        actual.len() as u64,
        context,
    );
}

/// Panics unless the two files have identical bytes, naming the first
/// differing line. Streams both files, so large files are fine.
pub fn assert_files_identical(expected: &Path, actual: &Path, context: &str) {
    let el = file_len(expected);
    let al = fs::metadata(actual)
        .unwrap_or_else(|e| panic!("{context}: output {} missing: {e}", actual.display()))
        .len();
    let mut e = BufReader::with_capacity(1 << 20, File::open(expected).unwrap());
    let mut a = BufReader::with_capacity(1 << 20, File::open(actual).unwrap());
    if el == al {
        // Fast path: compare in chunks first.
        let mut eb = vec![0u8; 1 << 20];
        let mut ab = vec![0u8; 1 << 20];
        let mut same = true;
        loop {
            let n = read_full(&mut e, &mut eb);
            let m = read_full(&mut a, &mut ab);
            if n != m || eb[..n] != ab[..m] {
                same = false;
                break;
            }
            if n == 0 {
                break;
            }
        }
        if same {
            return;
        }
        e = BufReader::with_capacity(1 << 20, File::open(expected).unwrap());
        a = BufReader::with_capacity(1 << 20, File::open(actual).unwrap());
    }
    report_first_difference(&mut e, &mut a, el, al, context);
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

fn report_first_difference(
    e: &mut impl BufRead,
    a: &mut impl BufRead,
    expected_len: u64,
    actual_len: u64,
    context: &str,
) {
    let mut el = Vec::new();
    let mut al = Vec::new();
    let mut line_no = 0u64;
    loop {
        el.clear();
        al.clear();
        let n = e.read_until(b'\n', &mut el).unwrap();
        let m = a.read_until(b'\n', &mut al).unwrap();
        line_no += 1;
        if el != al {
            panic!(
                "{context}: outputs differ (expected {expected_len} bytes, got {actual_len}); \
                 first difference at line {line_no}:\n  expected: {}\n  actual:   {}",
                if n == 0 {
                    "<end of data>".to_string()
                } else {
                    show(&el)
                },
                if m == 0 {
                    "<end of data>".to_string()
                } else {
                    show(&al)
                },
            );
        }
        if n == 0 {
            panic!("{context}: outputs differ but no differing line found");
        }
    }
}

/// Checks that `output` holds every line of every `(name, lines)` source
/// exactly once, each source's lines in their original order, and nothing
/// else. Lines from different sources may interleave.
pub fn assert_interleaving_of(sources: &[(&str, &[u8])], output: &[u8], context: &str) {
    let arrived = check_interleaving(sources, output, context);
    for (s, (name, bytes)) in sources.iter().enumerate() {
        let expected = split_lines(bytes).len();
        assert_eq!(
            arrived[s], expected,
            "{context}: only {} of {expected} lines of {name} arrived",
            arrived[s]
        );
    }
}

/// Checks that every line of `output` comes from one of the sources, and
/// that each source's lines appear at most once and in order, as a prefix
/// of that source. Returns how many lines of each source arrived.
pub fn check_interleaving(sources: &[(&str, &[u8])], output: &[u8], context: &str) -> Vec<usize> {
    use std::collections::HashMap;
    // Map each line to (source index, position); lines are unique per test.
    let mut owner: HashMap<&[u8], (usize, usize)> = HashMap::new();
    for (s, (name, bytes)) in sources.iter().enumerate() {
        for (i, l) in split_lines(bytes).into_iter().enumerate() {
            let prev = owner.insert(l, (s, i));
            assert!(prev.is_none(), "test data for {name} has a duplicate line");
        }
    }
    let mut next = vec![0usize; sources.len()];
    for (k, l) in split_lines(output).into_iter().enumerate() {
        match owner.get(l) {
            None => panic!(
                "{context}: output line {} is in no input: {}",
                k + 1,
                show(l)
            ),
            Some(&(s, i)) => {
                if i != next[s] {
                    panic!(
                        "{context}: output line {} is line {} of {} but line {} of it was expected next \
                         (lost, duplicated or reordered): {}",
                        k + 1,
                        i + 1,
                        sources[s].0,
                        next[s] + 1,
                        show(l)
                    );
                }
                next[s] += 1;
            }
        }
    }
    assert!(
        output.is_empty() || output.ends_with(b"\n"),
        "{context}: output does not end with a newline"
    );
    next
}

// ---------------------------------------------------------------------------
// /proc

/// VmRSS of `pid` in KiB.
pub fn vm_rss_kib(pid: i32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// RSS of `pid` in KiB, and the part of it in ringway's buffer pools: the
/// anonymous mappings whose size is a whole number of `buffer_kib` buffers
/// (each pool is one such mapping, made at start and sized by the flags,
/// whose pages are touched as its buffers are first used). The pools'
/// share grows as more of their buffers see use (in 2 MiB steps with
/// transparent huge pages) up to their size, which is no leak.
pub fn rss_and_pools_kib(pid: i32, buffer_kib: u64) -> Option<(u64, u64)> {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let (mut total, mut pools) = (0, 0);
    let mut anonymous = false;
    let mut size = 0;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: range, perms, offset, device, inode[, path].
            anonymous = line.split_whitespace().nth(4) == Some("0")
                && line.split_whitespace().nth(5).is_none();
            continue;
        }
        let value: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        match first {
            "Size:" => size = value,
            "Rss:" => {
                total += value;
                if anonymous && size > 0 && size.is_multiple_of(buffer_kib) {
                    pools += value;
                }
            }
            _ => {}
        }
    }
    Some((total, pools))
}

/// Flags that shrink ringway's buffer pools to a few MiB, for tests that
/// fill the whole pipeline and need it to hold little.
pub const SMALL_POOLS: &[&str] = &[
    "--read-buf",
    "256KiB",
    "--max-line",
    "64KiB",
    "--batch-bytes",
    "256KiB",
];

/// Lines of `width` bytes that a sender must write before a stalled
/// ringway started with [`SMALL_POOLS`] stops it: more than the largest
/// TCP receive and send buffers the kernel may grow to on its own
/// (net.ipv4.tcp_rmem and tcp_wmem, 32 MiB and 4 MiB here, 6 MiB and
/// 4 MiB by default elsewhere) plus ringway's pools, with 32 MiB to spare.
pub fn lines_past_tcp_buffers(width: usize) -> u64 {
    let largest = |name: &str| -> u64 {
        fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
            .ok()
            .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or(32 << 20)
    };
    let bytes = largest("tcp_rmem") + largest("tcp_wmem") + (48 << 20);
    bytes.div_ceil(width as u64)
}

/// utime + stime of the whole process (all threads), in clock ticks.
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// The bytes of an output file; panics with a clear message if it is missing.
pub fn read_output(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("output file {} not readable: {e}", path.display()))
}

/// Numbered lines padded to exactly `width` bytes each, newline included.
pub fn padded_lines(tag: &str, range: std::ops::Range<u64>, width: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity((range.end - range.start) as usize * width);
    for i in range {
        let start = out.len();
        out.extend_from_slice(format!("{tag} {i:010} ").as_bytes());
        assert!(out.len() - start < width, "width too small");
        out.resize(start + width - 1, b'.');
        out.push(b'\n');
    }
    out
}

/// The test venv's Python (RINGWAY_TEST_PYTHON, else target/otel-venv),
/// when it can run `import_check` (a Python statement, e.g. an import).
/// Without one: [`not_run`] (a failure under CI), and None.
pub fn test_python(import_check: &str, what: &str) -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/otel-venv/bin/python");
    let candidate = std::env::var_os("RINGWAY_TEST_PYTHON")
        .map(PathBuf::from)
        .or_else(|| venv.exists().then_some(venv));
    let why = match &candidate {
        None => "RINGWAY_TEST_PYTHON is unset and target/otel-venv does not exist".to_string(),
        Some(python) => {
            let imports = std::process::Command::new(python)
                .args(["-c", import_check])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            match imports {
                Ok(status) if status.success() => return candidate,
                Ok(_) => format!("{} cannot import {what}", python.display()),
                Err(e) => format!("{} does not run: {e}", python.display()),
            }
        }
    };
    not_run(&format!(
        "{what} in a Python venv ({why}; scripts/test.sh installs it into target/otel-venv)"
    ));
    None
}

/// True under CI: `CI` is set to anything but "", "0" or "false" (CI
/// services set `CI=true`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

/// This test cannot run here: it needs `needs` (a tool, a package, the
/// shared data set), which scripts/test.sh installs or CI provides. Under CI
/// ([`under_ci`]) that is a failure. Elsewhere the test passes without
/// checking anything, and says so with a line "not run: TEST: needs …"
/// written straight to stderr, past the test harness's capture of test
/// output, so that it is never silent.
pub fn not_run(needs: &str) {
    if under_ci() {
        panic!(
            "needs {needs}: this is CI, where a missing tool or data set fails the test \
             (scripts/test.sh installs the tools)"
        );
    }
    let current = thread::current();
    let test = current.name().unwrap_or("a test");
    // `io::stderr()` itself, not eprintln!: the harness captures the macro.
    let _ = std::io::stderr().write_all(format!("not run: {test}: needs {needs}\n").as_bytes());
}

/// The loghub samples (`../shared/data/loghub`), or None after [`not_run`]:
/// under CI their absence fails the test, elsewhere it prints "not run".
pub fn loghub_samples() -> Option<PathBuf> {
    let loghub = shared_data_dir().join("loghub");
    if loghub.is_dir() {
        return Some(loghub);
    }
    not_run(&format!(
        "the loghub samples in {} (the project's shared data set)",
        loghub.display()
    ));
    None
}

// ---------------------------------------------------------------------------
// Waiting on real signals: a line on stderr, a metric, a descriptor, a lock

/// Waits (bounded by `timeout`) until `ringway`'s stderr contains `needle`
/// or the process exits; true when the line came.
pub fn wait_for_stderr(ringway: &mut Ringway, needle: &str, timeout: Duration) -> bool {
    wait_until(timeout, || {
        ringway.stderr_now().contains(needle) || !ringway.is_running()
    });
    ringway.stderr_now().contains(needle)
}

/// The address of `ringway`'s `/metrics` (run with `--metrics 127.0.0.1:0`),
/// from its "metrics listening on ADDR" line; panics after [`TIMEOUT`].
pub fn metrics_address(ringway: &mut Ringway) -> std::net::SocketAddr {
    let needle = "ringway: metrics listening on ";
    let parse = |stderr: &str| {
        stderr
            .lines()
            .find_map(|line| line.strip_prefix(needle)?.trim().parse().ok())
    };
    let mut addr = None;
    wait_until(TIMEOUT, || {
        addr = parse(&ringway.stderr_whole_lines());
        addr.is_some() || !ringway.is_running()
    });
    addr.unwrap_or_else(|| {
        panic!(
            "ringway {:?} printed no '{needle}ADDR' line\n--- stderr ---\n{}",
            ringway.args,
            tail(&ringway.stderr_now(), 4000)
        )
    })
}

/// The body of a GET of `/metrics` at `addr` (None when nothing answers).
pub fn metrics_text(addr: std::net::SocketAddr) -> Option<String> {
    use std::net::TcpStream;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some(body.to_string())
}

/// The sum over all label sets of the samples named `name` in a GET of
/// `/metrics` at `addr` (None when nothing answers or no sample is named so).
pub fn metric_sum(addr: std::net::SocketAddr, name: &str) -> Option<u64> {
    let body = metrics_text(addr)?;
    let mut found = false;
    let mut sum = 0u64;
    for line in body.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue; // another metric whose name starts with `name`
        }
        let value: f64 = line.rsplit(' ').next()?.parse().ok()?;
        sum += value as u64;
        found = true;
    }
    found.then_some(sum)
}

/// Waits (bounded by `timeout`) until `value` gives the same reading on
/// every poll for `steady` and that reading satisfies `ok`; returns it.
/// The signal that a stage stopped moving, e.g. a reader paused by a
/// stalled output: its byte counter stops growing.
pub fn wait_until_steady(
    timeout: Duration,
    steady: Duration,
    mut value: impl FnMut() -> Option<u64>,
    ok: impl Fn(u64) -> bool,
) -> Option<u64> {
    let start = Instant::now();
    let mut last: Option<(u64, Instant)> = None;
    while start.elapsed() < timeout {
        let now = value();
        match (now, last) {
            (Some(v), Some((prev, since))) if v == prev => {
                if ok(v) && since.elapsed() >= steady {
                    return Some(v);
                }
            }
            (Some(v), _) => last = Some((v, Instant::now())),
            (None, _) => last = None,
        }
        thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Descriptors of `pid` that point at `path` (a deleted file shows as
/// "PATH (deleted)"). Panics when /proc/PID/fd cannot be read: a check
/// built on it must not pass by reading nothing.
pub fn open_descriptors_to(pid: i32, path: &Path) -> usize {
    descriptor_targets(pid)
        .iter()
        .filter(|target| target.to_string_lossy().starts_with(&p(path)))
        .count()
}

/// Sockets `pid` has open.
pub fn open_sockets(pid: i32) -> usize {
    descriptor_targets(pid)
        .iter()
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

fn descriptor_targets(pid: i32) -> Vec<PathBuf> {
    let dir = format!("/proc/{pid}/fd");
    fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {dir}: {e}"))
        .flatten()
        .filter_map(|entry| fs::read_link(entry.path()).ok())
        .collect()
}

/// Whether `pid` holds a flock(2) on `path`, from /proc/locks (read only:
/// trying the lock from the test could make ringway's own attempt fail).
pub fn holds_flock(pid: i32, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::metadata(path) else {
        return false;
    };
    let locks = fs::read_to_string("/proc/locks")
        .unwrap_or_else(|e| panic!("cannot read /proc/locks: {e}"));
    // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF": pid, then
    // major:minor:inode.
    locks.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&"FLOCK")
            && fields.get(4) == Some(&pid.to_string().as_str())
            && fields
                .get(5)
                .and_then(|dev_inode| dev_inode.rsplit(':').next())
                == Some(meta.ino().to_string().as_str())
    })
}

/// The address from ringway's "input '…' listening on ADDR" line.
pub fn listening_addr(stderr: &str) -> Option<SocketAddr> {
    stderr.lines().find_map(|line| {
        let rest = &line[line.find("listening on ")? + "listening on ".len()..];
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Spawns `ringway run --input INPUT --output OUTPUT --stats-interval 0
/// --summary-json DIR/summary.json EXTRA...` for a network input and waits
/// for its "listening on" line; returns the address it listens on.
pub fn start_listening(
    dir: &TempDir,
    input: &str,
    output: &str,
    extra: &[&str],
) -> (Ringway, SocketAddr) {
    let summary = p(&dir.join("summary.json"));
    let mut args = vec![
        "run",
        "--input",
        input,
        "--output",
        output,
        "--stats-interval",
        "0",
        "--summary-json",
        &summary,
    ];
    args.extend_from_slice(extra);
    let mut ringway = spawn(dir, &args);
    let mut addr = None;
    let mut exited = false;
    wait_until(Duration::from_secs(20), || {
        addr = listening_addr(&ringway.stderr_whole_lines());
        exited = !ringway.is_running();
        addr.is_some() || exited
    });
    match addr {
        Some(addr) => (ringway, addr),
        None => panic!(
            "ringway {args:?} printed no 'listening on ADDR' line ({})\n--- stderr ---\n{}",
            if exited { "it exited" } else { "within 20 s" },
            tail(&ringway.stderr_now(), 4000)
        ),
    }
}

/// The SPEC of a `file:` output at `path`.
pub fn file_output(path: &Path) -> String {
    format!("file:{}", p(path))
}

/// SIGTERM, an orderly exit 0, and the summary (`DIR/summary.json`).
pub fn stop(ringway: Ringway, dir: &TempDir) -> Summary {
    ringway.terminate();
    ringway.wait(TIMEOUT).assert_success();
    read_summary(&dir.join("summary.json"))
}

/// A tmux server of its own (`-L`) running one session of 80 columns,
/// killed on drop: for the terminal views (`ringway top`, `ringway demo`).
pub struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Whether tmux is installed; if not, says the test did not run (see
    /// [`not_run`]).
    pub fn available() -> bool {
        let found = Command::new("tmux").arg("-V").output().is_ok();
        if !found {
            not_run("tmux");
        }
        found
    }

    /// Starts `command` (run by tmux's shell) in a detached session `name`
    /// of 80 columns and `rows` rows.
    pub fn start(name: &str, rows: u16, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("ringway-test-{name}-{}", std::process::id()),
            session: name.to_string(),
        };
        let started = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "80",
            "-y",
            &rows.to_string(),
            command,
        ]);
        assert!(
            started.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&started.stderr)
        );
        tmux
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    /// The screen as text (no colours).
    pub fn capture(&self) -> String {
        let output = self.run(&["capture-pane", "-p", "-t", &self.session]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn alive(&self) -> bool {
        self.run(&["has-session", "-t", &self.session])
            .status
            .success()
    }

    /// Types `keys` (tmux key names: `q`, `Left`, `Space`).
    pub fn send_keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend(keys);
        let sent = self.run(&args);
        assert!(sent.status.success(), "tmux send-keys {keys:?}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}
