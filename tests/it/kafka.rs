//! The `kafka:` output against a real Kafka-protocol broker: tansu 0.6 (a
//! Kafka-compatible broker written in Rust) with its in-memory storage,
//! started here on 127.0.0.1, one per test. `scripts/fetch-tansu.sh`
//! builds it once into a cache outside the clone; `RINGWAY_TEST_TANSU`
//! names the binary (scripts/test.sh sets it). Topics are read back with an
//! independent client, confluent-kafka (tests/kafka/consume.py, in the
//! test venv). Without either: "not run" here, a failure under CI.

use crate::common::*;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tansu binary, or None ("not run").
fn tansu_bin() -> Option<PathBuf> {
    let cached = std::env::var_os("HOME").map(|home| {
        let cache = std::env::var_os("RINGWAY_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("ringway"))
            })
            .unwrap_or_else(|| PathBuf::from(home).join(".cache/ringway"));
        cache.join("tansu-0.6.0/bin/tansu")
    });
    let candidate = std::env::var_os("RINGWAY_TEST_TANSU")
        .map(PathBuf::from)
        .or(cached)
        .filter(|path| path.exists());
    if candidate.is_none() {
        not_run(
            "the tansu 0.6.0 broker (scripts/fetch-tansu.sh builds it; RINGWAY_TEST_TANSU names it)",
        );
    }
    candidate
}

fn consumer_python() -> Option<PathBuf> {
    test_python("import confluent_kafka", "confluent-kafka")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running tansu broker on 127.0.0.1 (killed on drop).
struct Broker {
    bin: PathBuf,
    /// Where it listens (plaintext).
    port: u16,
    /// The port it tells clients to connect to: `port`, or a TLS front's.
    advertised: u16,
    /// `--authentication`: clients must log in with SASL.
    authentication: bool,
    child: Option<Child>,
    log: PathBuf,
}

impl Broker {
    fn start(bin: &Path, dir: &TempDir) -> Broker {
        Broker::start_advertising(bin, dir, 0, false)
    }

    /// A broker that tells clients to connect to `advertised` (a TLS
    /// front's port; 0: its own), with SASL logins required when
    /// `authentication`.
    fn start_advertising(
        bin: &Path,
        dir: &TempDir,
        advertised: u16,
        authentication: bool,
    ) -> Broker {
        let port = free_port();
        let mut broker = Broker {
            bin: bin.to_path_buf(),
            port,
            advertised: if advertised == 0 { port } else { advertised },
            authentication,
            child: None,
            log: dir.join("tansu.log"),
        };
        broker.launch();
        broker
    }

    fn launch(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
                "--storage-engine",
                "memory://tansu/",
            ])
            .args(self.authentication.then_some("--authentication"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        assert!(
            wait_until(Duration::from_secs(30), || TcpStream::connect(
                self.listener()
            )
            .is_ok()),
            "tansu did not listen on {}:\n{}",
            self.listener(),
            fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Where clients connect (the advertised port).
    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.advertised)
    }

    /// Where the broker itself listens (plaintext; `tansu topic`).
    fn listener(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    fn create_topic(&self, topic: &str, partitions: u32) {
        let status = Command::new(&self.bin)
            .args([
                "topic",
                "create",
                topic,
                "--broker",
                &format!("tcp://{}", self.listener()),
                "--partitions",
                &partitions.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run tansu topic create");
        assert!(status.success(), "tansu topic create {topic}: {status}");
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A frozen broker must be thawed to die cleanly.
            // SAFETY: kill(2) on our own child's pid; no memory involved.
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
        }
        self.kill();
    }
}

/// One message read back: partition, key (None: no key), value.
struct Message {
    partition: u32,
    key: Option<String>,
    value: String,
}

/// Reads `topic` from its start with confluent-kafka until `expected`
/// messages came and then a second of quiet (or 30 s of quiet).
fn consume(
    python: &Path,
    broker: &Broker,
    topic: &str,
    expected: usize,
    dir: &TempDir,
) -> Vec<Message> {
    consume_patiently(python, broker, topic, expected, dir, 30)
}

/// [`consume`], giving up after `patience` seconds of quiet.
fn consume_patiently(
    python: &Path,
    broker: &Broker,
    topic: &str,
    expected: usize,
    dir: &TempDir,
    patience: u32,
) -> Vec<Message> {
    consume_with(python, broker, topic, expected, dir, patience, &[])
}

/// [`consume_patiently`] with more options for consume.py (`--ca …`).
fn consume_with(
    python: &Path,
    broker: &Broker,
    topic: &str,
    expected: usize,
    dir: &TempDir,
    patience: u32,
    extra: &[&str],
) -> Vec<Message> {
    let out = dir.join(format!("consumed-{topic}.tsv"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/consume.py");
    let status = Command::new(python)
        .arg(&script)
        .args([&broker.address(), topic, &expected.to_string(), &p(&out)])
        .args(["--patience", &patience.to_string()])
        .args(extra)
        .status()
        .expect("run consume.py");
    assert!(status.success(), "consume.py: {status}");
    fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|line| {
            let mut fields = line.splitn(4, '\t');
            let partition = fields.next().unwrap().parse().unwrap();
            let _offset = fields.next().unwrap();
            let key = fields.next().unwrap();
            Message {
                partition,
                key: (key != "-").then(|| key.to_string()),
                value: fields.next().unwrap().to_string(),
            }
        })
        .collect()
}

/// Lines of varied shapes: nested JSON, escapes, non-ASCII, numbers.
fn varied_line(i: u64, rng: &mut Rng) -> String {
    match i % 4 {
        0 | 1 => json_line(i, rng),
        2 => format!(
            r#"{{"seq":{i},"host":"web-{:02}","nested":{{"a":[1,2,{{"b":"c\"d"}}]}},"msg":"short"}}"#,
            i % 7
        ),
        _ => format!(
            r#"{{"seq":{i},"host":"db-{}","msg":"{}"}}"#,
            i % 3,
            "x".repeat((i % 300) as usize)
        ),
    }
}

/// The `seq` of a line ringway wrote (every line here has one).
fn seq_of(line: &str) -> u64 {
    let at = line.find("\"seq\":").expect("a seq") + 6;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Every line of `expected` is in `messages` exactly once, and each
/// partition holds its lines in file order.
fn assert_exactly_once_in_order(expected: &[String], messages: &[Message]) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for message in messages {
        *counts.entry(message.value.as_str()).or_default() += 1;
    }
    let missing = expected
        .iter()
        .filter(|line| !counts.contains_key(line.as_str()))
        .count();
    let doubled = counts.values().filter(|&&n| n > 1).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} lines never arrived",
        expected.len()
    );
    assert_eq!(doubled, 0, "{doubled} lines arrived more than once");
    assert_eq!(
        messages.len(),
        expected.len(),
        "extra messages in the topic"
    );
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for message in messages {
        let seq = seq_of(&message.value);
        if let Some(previous) = last.insert(message.partition, seq) {
            assert!(
                seq > previous,
                "partition {}: seq {seq} after {previous}",
                message.partition
            );
        }
    }
}

fn setup(label: &str) -> Option<(PathBuf, PathBuf, TempDir)> {
    let tansu = tansu_bin()?;
    let python = consumer_python()?;
    Some((tansu, python, TempDir::new(label)))
}

#[test]
fn hundred_thousand_lines_arrive_once_in_order_per_partition() {
    let Some((tansu, python, dir)) = setup("kafka-100k") else {
        return;
    };
    let broker = Broker::start(&tansu, &dir);
    broker.create_topic("logs", 3);
    let input = dir.join("in.ndjson");
    let mut rng = Rng::new(19);
    let mut expected = Vec::new();
    write_lines(&input, 100_000, |i| {
        let line = varied_line(i, &mut rng);
        expected.push(line.clone());
        line
    });
    let summary = dir.join("summary.json");
    let output = format!("kafka:{}/logs", broker.address());
    let finished = run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{},format=json", p(&input)),
            "--output",
            &output,
            "--exit-on-eof",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    );
    finished.assert_success();
    let summary = read_summary(&summary);
    assert_eq!(summary.output(0, "records"), 100_000);
    assert_eq!(summary.output(0, "rejects"), 0);
    let messages = consume(&python, &broker, "logs", expected.len(), &dir);
    assert_exactly_once_in_order(&expected, &messages);
    let partitions: std::collections::BTreeSet<u32> =
        messages.iter().map(|message| message.partition).collect();
    assert!(
        partitions.len() > 1,
        "every message in one partition: {partitions:?}"
    );
    assert!(messages.iter().all(|message| message.key.is_none()));
}

#[test]
fn the_key_field_keys_each_message_and_a_key_stays_on_one_partition() {
    let Some((tansu, python, dir)) = setup("kafka-key") else {
        return;
    };
    let broker = Broker::start(&tansu, &dir);
    broker.create_topic("keyed", 4);
    let input = dir.join("in.ndjson");
    let mut rng = Rng::new(7);
    let mut expected = Vec::new();
    write_lines(&input, 20_000, |i| {
        let line = varied_line(i, &mut rng);
        expected.push(line.clone());
        line
    });
    run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{},format=json", p(&input)),
            "--output",
            &format!("kafka:{}/keyed,key=host,compression=zstd", broker.address()),
            "--exit-on-eof",
        ],
        TIMEOUT,
    )
    .assert_success();
    let messages = consume(&python, &broker, "keyed", expected.len(), &dir);
    assert_exactly_once_in_order(&expected, &messages);
    let mut partition_of: HashMap<String, u32> = HashMap::new();
    for message in &messages {
        let key = message.key.clone().expect("every line has a host");
        let host = serde_json::from_str::<serde_json::Value>(&message.value).unwrap()["host"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(key, host);
        let partition = *partition_of.entry(key.clone()).or_insert(message.partition);
        assert_eq!(partition, message.partition, "key {key} on two partitions");
    }
    let used: std::collections::BTreeSet<u32> = partition_of.values().copied().collect();
    assert!(
        used.len() > 1,
        "{} keys all on one partition",
        partition_of.len()
    );
}

/// ringway tailing `input`, producing to `topic`, with `extra` flags.
fn tail_into_kafka(
    dir: &TempDir,
    input: &Path,
    broker: &Broker,
    topic: &str,
    extra: &[&str],
) -> Ringway {
    let mut args = vec![
        "run".to_string(),
        "--input".to_string(),
        format!("file:{},format=json", p(input)),
        "--output".to_string(),
        format!("kafka:{}/{topic}", broker.address()),
        "--retry-max".to_string(),
        "1s".to_string(),
    ];
    if !extra.contains(&"--output-timeout") {
        args.extend(["--output-timeout".to_string(), "2s".to_string()]);
    }
    args.extend(extra.iter().map(|arg| arg.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn(dir, &args)
}

fn append_lines(path: &Path, lines: &[String]) {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

fn generate(from: u64, count: u64, rng: &mut Rng) -> Vec<String> {
    (from..from + count).map(|i| varied_line(i, rng)).collect()
}

#[test]
fn a_broker_frozen_for_ten_seconds_loses_nothing() {
    let Some((tansu, python, dir)) = setup("kafka-frozen") else {
        return;
    };
    let broker = Broker::start(&tansu, &dir);
    broker.create_topic("frozen", 2);
    let input = dir.join("in.ndjson");
    let mut rng = Rng::new(3);
    let first = generate(0, 20_000, &mut rng);
    append_lines(&input, &first);
    // 3 s attempts: the producer is replaced only after 5 of them without
    // an acknowledgement (15 s), longer than the freeze.
    let mut ringway = tail_into_kafka(&dir, &input, &broker, "frozen", &["--output-timeout", "3s"]);
    let started = Instant::now();
    // Freeze the broker mid-run, keep writing, thaw it after 10 s.
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child's pid; no memory involved.
    unsafe { libc::kill(broker.pid(), libc::SIGSTOP) };
    let second = generate(20_000, 30_000, &mut rng);
    append_lines(&input, &second);
    std::thread::sleep(Duration::from_secs(10));
    ringway.assert_running("while the broker was frozen");
    // SAFETY: as above.
    unsafe { libc::kill(broker.pid(), libc::SIGCONT) };
    let third = generate(50_000, 10_000, &mut rng);
    append_lines(&input, &third);
    let expected: Vec<String> = first.into_iter().chain(second).chain(third).collect();
    let messages = consume(&python, &broker, "frozen", expected.len(), &dir);
    ringway.terminate();
    let finished = ringway.wait(TIMEOUT);
    finished.assert_success();
    assert_exactly_once_in_order(&expected, &messages);
    assert!(
        finished.stderr.contains("failed to write"),
        "no retry was logged while frozen ({:?}):\n{}",
        started.elapsed(),
        tail(&finished.stderr, 3000)
    );
}

#[test]
fn a_restarted_broker_is_reconnected_and_rss_stays_flat() {
    let Some((tansu, python, dir)) = setup("kafka-restart") else {
        return;
    };
    let mut broker = Broker::start(&tansu, &dir);
    broker.create_topic("restart", 1);
    let input = dir.join("in.ndjson");
    let mut rng = Rng::new(5);
    // Small batches, so both output workers take part from the start.
    let first = generate(0, 2_000, &mut rng);
    append_lines(&input, &first);
    let mut ringway = tail_into_kafka(
        &dir,
        &input,
        &broker,
        "restart",
        &["--batch-bytes", "16KiB"],
    );
    let before = consume(&python, &broker, "restart", first.len(), &dir);
    assert_exactly_once_in_order(&first, &before);
    // Three times: kill the broker (its memory store is gone with it)
    // while lines keep coming, start it again, and check that everything
    // written after the kill arrives. After a restart the broker hands out
    // producer ids from 1 again; a trickle of lines then moves the new
    // producer's sequence numbers on, past those an old producer holding
    // the same id would send next. Had ringway kept an old producer open
    // beside the new one (as when each worker had its own, before it
    // replaced them all), the broker would answer its next batch with
    // DUPLICATE_SEQUENCE_NUMBER, which librdkafka reports as delivered: a
    // batch acknowledged and never stored (lost here before ringway did).
    // RSS after the later outages is compared with RSS after the first.
    let mut rss_after = Vec::new();
    let mut next = 2_000;
    for outage in 0..3 {
        broker.kill();
        let mut expected = generate(next, 500, &mut rng);
        next += 500;
        append_lines(&input, &expected);
        std::thread::sleep(Duration::from_secs(2));
        ringway.assert_running("while the broker was down");
        // ringway is held (SIGSTOP) while the new broker starts and the
        // topic is made again: tansu acknowledges produce requests for a
        // topic it does not have, and those records are gone (seen with
        // confluent-kafka's producer, idempotence off). Making the topic is
        // the operator's part; what is tested is ringway's.
        // SAFETY: kill(2) on our own child's pid; no memory involved.
        unsafe { libc::kill(ringway.pid(), libc::SIGSTOP) };
        broker.launch();
        broker.create_topic("restart", 1);
        // SAFETY: as above.
        unsafe { libc::kill(ringway.pid(), libc::SIGCONT) };
        // The old producer's retries are answered with UNKNOWN_PRODUCER_ID
        // until 5 attempts without an acknowledgement replace it (10-15 s
        // with 2 s attempts, longer on a busy CI).
        let recovered = consume_patiently(&python, &broker, "restart", expected.len(), &dir, 90);
        assert!(
            !recovered.is_empty(),
            "outage {outage}: nothing arrived after the restart"
        );
        let trickle_until = Instant::now() + Duration::from_secs(12);
        while Instant::now() < trickle_until {
            let some = generate(next, 20, &mut rng);
            next += 20;
            append_lines(&input, &some);
            expected.extend(some);
            std::thread::sleep(Duration::from_millis(100));
        }
        let burst = generate(next, 3_000, &mut rng);
        next += 3_000;
        append_lines(&input, &burst);
        expected.extend(burst);
        let messages = consume_patiently(&python, &broker, "restart", expected.len(), &dir, 90);
        let got: std::collections::HashSet<&str> = messages
            .iter()
            .map(|message| message.value.as_str())
            .collect();
        let missing = expected
            .iter()
            .filter(|line| !got.contains(line.as_str()))
            .count();
        let duplicate_answers = fs::read_to_string(&broker.log)
            .unwrap_or_default()
            .matches("DuplicateSequenceNumber")
            .count();
        assert_eq!(
            missing,
            0,
            "outage {outage}: {missing} of {} lines written after the kill never arrived (the broker's log has {duplicate_answers} DuplicateSequenceNumber answers)",
            expected.len()
        );
        // Default --read-buf and --max-line (1 MiB): buffers of 1 MiB and
        // a page.
        rss_after.push(rss_and_pools_kib(ringway.pid(), 1028).unwrap());
        println!(
            "outage {outage}: {} messages for {} lines; RSS and its part in the buffer pools after each outage: {rss_after:?} KiB",
            messages.len(),
            expected.len()
        );
    }
    ringway.terminate();
    let finished = ringway.wait(TIMEOUT);
    finished.assert_success();
    // What a replaced producer could leave behind is outside the pools
    // (librdkafka's threads and buffers, ringway's heap); the pools'
    // share only grows as more of their buffers first see use, up to
    // their size: in 6 loaded runs it went from 4.5-8.7 to 8.4-14.8 MiB
    // while the rest grew by 0.1-2.4 MiB.
    let outside = |&(total, pools): &(u64, u64)| total - pools;
    for after in &rss_after[1..] {
        assert!(
            outside(after) <= outside(&rss_after[0]) + 8 * 1024,
            "RSS outside the buffer pools grew from {} KiB after the first outage: {rss_after:?} KiB (RSS, pools)",
            outside(&rss_after[0])
        );
    }
    assert!(
        rss_after.iter().all(|&(rss, _)| rss < 160 * 1024),
        "RSS {rss_after:?} KiB"
    );
}

#[test]
fn kill_9_during_production_with_a_data_dir_loses_nothing() {
    let Some((tansu, python, dir)) = setup("kafka-kill9") else {
        return;
    };
    let broker = Broker::start(&tansu, &dir);
    broker.create_topic("kill9", 3);
    let input = dir.join("in.ndjson");
    let data = dir.join("data");
    let mut rng = Rng::new(11);
    let mut expected = Vec::new();
    write_lines(&input, 200_000, |i| {
        let line = varied_line(i, &mut rng);
        expected.push(line.clone());
        line
    });
    let data_dir = p(&data);
    let first = tail_into_kafka(
        &dir,
        &input,
        &broker,
        "kill9",
        &[
            "--data-dir",
            &data_dir,
            "--checkpoint-interval",
            "100ms",
            "--stats-interval",
            "100ms",
        ],
    );
    // Kill -9 once some, not all, is produced: when a checkpoint holds an
    // offset past 0 (the broker acknowledged what it covers).
    let checkpoints = data.join("checkpoints.json");
    let checkpointed = || {
        fs::read_to_string(&checkpoints).is_ok_and(|text| {
            serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|value| {
                value.to_string().contains("\"offset\":")
                    && !value.to_string().contains("\"offset\":0")
            })
        })
    };
    assert!(
        wait_until(TIMEOUT, checkpointed),
        "no checkpoint past offset 0:\n{}\n{}",
        fs::read_to_string(&checkpoints).unwrap_or_default(),
        first.stderr_now()
    );
    first.signal(libc::SIGKILL);
    drop(first);
    let summary = dir.join("summary.json");
    let finished = run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{},format=json", p(&input)),
            "--output",
            &format!("kafka:{}/kill9", broker.address()),
            "--data-dir",
            &data_dir,
            "--exit-on-eof",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    );
    finished.assert_success();
    let resumed = read_summary(&summary).output(0, "records");
    assert!(
        resumed < expected.len() as u64,
        "the second run produced everything again ({resumed}): it did not resume"
    );
    let messages = consume(&python, &broker, "kill9", expected.len(), &dir);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for message in &messages {
        *counts.entry(message.value.as_str()).or_default() += 1;
    }
    let missing = expected
        .iter()
        .filter(|line| !counts.contains_key(line.as_str()))
        .count();
    assert_eq!(missing, 0, "{missing} lines lost across kill -9");
    let duplicates = messages.len() - counts.len();
    println!(
        "kill -9: {} messages for {} lines: {duplicates} duplicates; the second run produced {resumed}",
        messages.len(),
        expected.len()
    );
}

#[test]
fn an_oversized_message_goes_to_the_dead_letter_file() {
    let Some((tansu, python, dir)) = setup("kafka-oversized") else {
        return;
    };
    let broker = Broker::start(&tansu, &dir);
    broker.create_topic("big", 1);
    let input = dir.join("in.ndjson");
    let dead = dir.join("dead.ndjson");
    let big = format!(
        r#"{{"seq":5,"host":"big","msg":"{}"}}"#,
        "y".repeat(2_000_000)
    );
    let mut expected = Vec::new();
    write_lines(&input, 10, |i| {
        let line = if i == 5 {
            big.clone()
        } else {
            format!(r#"{{"seq":{i},"host":"h","msg":"small"}}"#)
        };
        if i != 5 {
            expected.push(line.clone());
        }
        line
    });
    let summary = dir.join("summary.json");
    let finished = run(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{},format=json", p(&input)),
            "--output",
            &format!("kafka:{}/big", broker.address()),
            "--max-line",
            "4MiB",
            "--dead-letter",
            &p(&dead),
            "--exit-on-eof",
            "--summary-json",
            &p(&summary),
        ],
        TIMEOUT,
    );
    finished.assert_success();
    let summary = read_summary(&summary);
    assert_eq!(summary.output(0, "dead_lettered"), 1);
    assert_eq!(summary.output(0, "records"), 9);
    assert_eq!(fs::read_to_string(&dead).unwrap(), format!("{big}\n"));
    assert!(
        finished.stderr.contains("MessageSizeTooLarge") || finished.stderr.contains("too large"),
        "{}",
        tail(&finished.stderr, 2000)
    );
    let messages = consume(&python, &broker, "big", expected.len(), &dir);
    assert_exactly_once_in_order(&expected, &messages);
}

#[test]
fn a_topic_that_does_not_exist_is_waited_for_and_nothing_is_lost() {
    let Some((tansu, python, dir)) = setup("kafka-notopic") else {
        return;
    };
    let broker = Broker::start(&tansu, &dir);
    let input = dir.join("in.ndjson");
    let mut rng = Rng::new(13);
    let lines = generate(0, 5_000, &mut rng);
    append_lines(&input, &lines);
    let mut ringway = tail_into_kafka(&dir, &input, &broker, "later", &[]);
    assert!(
        wait_until(Duration::from_secs(30), || ringway
            .stderr_now()
            .contains("failed to write")),
        "no warning about the missing topic:\n{}",
        ringway.stderr_now()
    );
    ringway.assert_running("while the topic is missing");
    broker.create_topic("later", 1);
    let messages = consume(&python, &broker, "later", lines.len(), &dir);
    ringway.terminate();
    let finished = ringway.wait(TIMEOUT);
    finished.assert_success();
    assert_exactly_once_in_order(&lines, &messages);
    assert!(
        finished.stderr.contains("recovered"),
        "{}",
        tail(&finished.stderr, 2000)
    );
}

#[test]
fn bad_kafka_specs_are_one_line_and_exit_2() {
    let dir = TempDir::new("kafka-bad");
    for (spec, says) in [
        ("kafka:127.0.0.1:9092", "no topic"),
        ("kafka:127.0.0.1:9092/bad topic", "not a Kafka topic name"),
        ("kafka:127.0.0.1/logs", "broker '127.0.0.1'"),
        (
            "kafka:127.0.0.1:9092/logs,compression=snappy",
            "none, gzip, lz4 or zstd",
        ),
        ("kafka:127.0.0.1:9092/logs,acks=0", "acks must be all or 1"),
        ("kafka:127.0.0.1:9092/logs,key=", "key= needs a field name"),
        ("kafka:127.0.0.1:9092/logs,ca=/etc/ca.pem", "need tls"),
        (
            "kafka:127.0.0.1:9092/logs,sasl=scram-sha-512,username=u",
            "needs username= and password=",
        ),
    ] {
        let finished = run(
            &dir,
            &["run", "--input", "stdin", "--output", spec],
            Duration::from_secs(20),
        );
        finished.assert_code(2);
        let lines: Vec<&str> = finished.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{spec}: {}", finished.stderr);
        assert!(lines[0].contains(says), "{spec}: {}", lines[0]);
    }
}

/// A TLS front (tests/kafka/tls_proxy.py) on `port` for the broker's
/// plaintext listener, with `server` as its certificate and, with
/// `client_ca`, client certificates required; killed on drop.
struct TlsFront(Child);

impl TlsFront {
    fn start(
        python: &Path,
        port: u16,
        broker: &Broker,
        server: &crate::certs::KeyPair,
        client_ca: &Path,
    ) -> TlsFront {
        use std::io::{BufRead, BufReader};
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/tls_proxy.py");
        let mut child = Command::new(python)
            .arg(&script)
            .args([&port.to_string(), &broker.port.to_string()])
            .args([p(&server.0), p(&server.1)])
            .args(["--client-ca", &p(client_ca)])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tls_proxy.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "listening", "tls_proxy.py did not start");
        TlsFront(child)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// tansu 0.6 cannot serve TLS itself (its --cert and --key options refuse
/// each other, and its listener never uses the TLS acceptor), so the broker
/// is reached through a TLS front that requires a client certificate:
/// every connection librdkafka makes, to bootstrap and to the advertised
/// broker, is TLS with the client certificate from cert= and tls_key=.
#[test]
fn tls_with_a_client_certificate_reaches_the_broker_and_a_wrong_ca_is_refused() {
    let Some((tansu, python, dir)) = setup("kafka-tls") else {
        return;
    };
    if crate::certs::make_certificate(&dir, "probe").is_none() {
        return;
    }
    let ca = crate::certs::make_ca(&dir, "kafka-ca");
    let server = crate::certs::make_server(&dir, "broker", &ca);
    let client = crate::certs::make_client(&dir, "ringway", &ca);
    let stranger = crate::certs::make_ca(&dir, "stranger-ca");
    let front_port = free_port();
    let broker = Broker::start_advertising(&tansu, &dir, front_port, false);
    broker.create_topic("secure", 2);
    let _front = TlsFront::start(&python, front_port, &broker, &server, &ca.0);
    let input = dir.join("in.ndjson");
    let mut rng = Rng::new(17);
    let lines = generate(0, 5_000, &mut rng);
    append_lines(&input, &lines);
    let files = format!("cert={},tls_key={}", p(&client.0), p(&client.1));
    // A CA that did not sign the broker's certificate: refused, and
    // nothing is produced.
    let mut refused = tail_into_kafka(
        &dir,
        &input,
        &broker,
        &format!("secure,tls,ca={},{files}", p(&stranger.0)),
        &[],
    );
    assert!(
        wait_until(Duration::from_secs(30), || refused
            .stderr_now()
            .contains("certificate verify failed")),
        "no certificate error:\n{}",
        refused.stderr_now()
    );
    refused.assert_running("while the broker's certificate is refused");
    refused.signal(libc::SIGKILL);
    drop(refused);
    let tls_reader = [
        "--ca",
        &p(&ca.0),
        "--cert",
        &p(&client.0),
        "--key",
        &p(&client.1),
    ];
    let nothing = consume_with(&python, &broker, "secure", 0, &dir, 5, &tls_reader);
    assert!(
        nothing.is_empty(),
        "{} messages went past a refused certificate",
        nothing.len()
    );
    // The broker's CA and a client certificate: everything arrives.
    let ringway = tail_into_kafka(
        &dir,
        &input,
        &broker,
        &format!("secure,tls,ca={},{files}", p(&ca.0)),
        &[],
    );
    let messages = consume_with(
        &python,
        &broker,
        "secure",
        lines.len(),
        &dir,
        30,
        &tls_reader,
    );
    ringway.terminate();
    let finished = ringway.wait(TIMEOUT);
    finished.assert_success();
    assert_exactly_once_in_order(&lines, &messages);
}

/// tansu 0.6 offers SCRAM-SHA-256 and SCRAM-SHA-512 (not PLAIN) with
/// --authentication, but with its memory store no user can be made while
/// logins are required (its `user create` does not log in itself), so no
/// login can succeed here. What is shown against the real broker: the
/// SCRAM exchange ringway starts reaches the broker's user lookup ("unknown
/// user" comes back), a broker without SASL refuses the mechanism, ringway
/// says so in its log and keeps running with the records held. That the
/// password reaches librdkafka is a unit test (output::kafka).
#[test]
fn sasl_logins_reach_the_broker_and_a_refusal_is_logged_while_ringway_keeps_running() {
    let Some((tansu, _python, dir)) = setup("kafka-sasl") else {
        return;
    };
    let input = dir.join("in.ndjson");
    let mut rng = Rng::new(23);
    append_lines(&input, &generate(0, 1_000, &mut rng));
    let secured = Broker::start_advertising(&tansu, &dir, 0, true);
    let open = Broker::start(&tansu, &dir);
    open.create_topic("logs", 1);
    for (broker, mechanism, says) in [
        (
            &secured,
            "scram-sha-512",
            "SASL SCRAM authentication failed: broker responded with unknown-user",
        ),
        (
            &secured,
            "scram-sha-256",
            "SASL SCRAM authentication failed: broker responded with unknown-user",
        ),
        (&open, "scram-sha-512", "Unsupported SASL mechanism"),
    ] {
        let mut ringway = tail_into_kafka(
            &dir,
            &input,
            broker,
            &format!("logs,sasl={mechanism},username=ringway,password=not-shown-%2C-anywhere"),
            &[],
        );
        assert!(
            wait_until(Duration::from_secs(30), || ringway
                .stderr_now()
                .contains(says)),
            "{mechanism}: no '{says}':\n{}",
            ringway.stderr_now()
        );
        ringway.assert_running("while its login is refused");
        let stderr = ringway.stderr_now();
        assert!(
            !stderr.contains("not-shown"),
            "the password was printed:\n{stderr}"
        );
        assert!(stderr.contains("password=<redacted>"), "{stderr}");
        ringway.signal(libc::SIGKILL);
    }
}

/// `ringway check` prints a kafka table's TLS and SASL keys back (the
/// client key as tls_key, the message key as key) and never the password,
/// which comes from the environment.
#[test]
fn check_prints_kafka_tls_and_sasl_keys_back_without_the_password() {
    let dir = TempDir::new("kafka-check-sasl");
    let Some(ca) = crate::certs::make_certificate(&dir, "ca") else {
        return;
    };
    let client = crate::certs::make_certificate(&dir, "client").unwrap();
    let config = dir.join("ringway.toml");
    fs::write(
        &config,
        format!(
            "[[input]]\nkind = \"stdin\"\n\n[[output]]\nkind = \"kafka\"\nbrokers = [\"127.0.0.1:9093\"]\n\
             topic = \"logs\"\nkey = \"host\"\ntls = true\nca = \"{}\"\ncert = \"{}\"\ntls_key = \"{}\"\n\
             sasl = \"scram-sha-512\"\nusername = \"ringway\"\npassword = \"${{KAFKA_PASSWORD}}\"\n",
            p(&ca.0),
            p(&client.0),
            p(&client.1)
        ),
    )
    .unwrap();
    let secret = "kafka-s3cret,with%comma";
    let done = Command::new(ringway_bin())
        .args(["check", "--config", &p(&config)])
        .env("KAFKA_PASSWORD", secret)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&done.stdout);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stdout}\n{stderr}");
    for line in [
        "kind = \"kafka\"",
        "key = \"host\"",
        "tls = true",
        &format!("tls_key = \"{}\"", p(&client.1)),
        "sasl = \"scram-sha-512\"",
        "username = \"ringway\"",
        "password = \"<redacted>\"",
    ] {
        assert!(stdout.contains(line), "no {line}:\n{stdout}");
    }
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains("kafka-s3cret"),
            "the password was printed:\n{text}"
        );
    }
}
