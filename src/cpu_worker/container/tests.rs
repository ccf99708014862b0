//! Unit tests of the container join in a CPU worker: the records it sends,
//! the file marks it holds back while a message is pending, and that the
//! per-record path allocates nothing.

use super::*;
use crate::checkpoint::AckLog;
use crate::config::Format;
use crate::metrics::InputCounters;
use crate::ring::{Gauge, RingReceiver, Waker, ring};

/// A `format=cri` CPU worker of one file (slot 0, generation 1, at
/// `path`), with its ack log, its ring(16)'s far end and a pool to make
/// input batches from.
fn cri_worker(
    path: &str,
    timeout: Duration,
) -> (CpuWorker, RingReceiver<Batch>, Arc<BufferPool>, Arc<AckLog>) {
    let waker = Waker::for_test();
    let offsets = AckedOffsets::new(MAX_PENDING_RUNS);
    offsets.reset(0, 1, 0, 0);
    offsets.set_path(0, 1, std::path::Path::new(path));
    let log = AckLog::new(64, Arc::clone(&offsets), Waker::for_test());
    let (_to_cpu, from_reader) = ring(4, Waker::for_test(), Arc::clone(&waker), Arc::default());
    let (to_dispatcher, from_cpu) = ring(
        16,
        Arc::clone(&waker),
        Waker::for_test(),
        Arc::new(Gauge::default()),
    );
    let encode = BufferPool::new(8, 4096, Arc::clone(&waker)).unwrap();
    let worker = CpuWorker {
        format: Format::Cri,
        on_invalid: OnInvalid::Drop,
        from_reader,
        to_dispatcher,
        waker: Arc::clone(&waker),
        counters: Arc::new(InputCounters::default()),
        json: None,
        dead_letter: None,
        batch_bytes: 4096,
        max_line_bytes: 1024,
        linger: Duration::ZERO,
        pending: None,
        syslog: None,
        container: Some(ContainerConverter {
            parser: LineParser::Cri,
            joiner: Joiner::new(encode, timeout, 1024, true, Some(offsets)),
        }),
        acks: Some((Arc::clone(&log), 1)),
        all_outputs: 1,
        transform: None,
        source: None,
    };
    let input = BufferPool::new(8, 4096, waker).unwrap();
    (worker, from_cpu, input, log)
}

/// A read of the worker's file: `text` starting at `from`.
fn read(pool: &Arc<BufferPool>, text: &[u8], from: u64) -> Batch {
    let mut buf = pool.take().unwrap();
    buf[..text.len()].copy_from_slice(text);
    let mut batch = Batch::new(buf, text.len());
    batch.file_offset = from;
    batch.marks = Marks::one(Mark {
        slot: 0,
        generation: 1,
        end: from + text.len() as u64,
    });
    batch
}

/// Takes every batch sent: (its text, its mark's end), acking each.
fn sent(from_cpu: &mut RingReceiver<Batch>) -> Vec<(String, Option<u64>)> {
    let mut out = Vec::new();
    while let Some(batch) = from_cpu.pop() {
        if let Some(ack) = &batch.ack {
            ack.delivered();
        }
        out.push((
            String::from_utf8(batch.bytes().to_vec()).unwrap(),
            batch.marks.as_slice().first().map(|mark| mark.end),
        ));
    }
    out
}

const POD: &str = "/var/log/pods/ns_pod_uid/app/0.log";
const FIELDS: &str = r#","k8s.namespace.name":"ns","k8s.pod.name":"pod","k8s.pod.uid":"uid","k8s.container.name":"app","k8s.container.restart_count":0"#;

#[test]
fn marks_hold_at_the_first_part_of_a_pending_message() {
    let (mut worker, mut from_cpu, pool, _log) = cri_worker(POD, Duration::from_secs(60));
    let first = b"2026-12-02T04:09:29Z stdout F a\n2026-12-02T04:09:30Z stdout P b\n";
    worker.take(read(&pool, first, 0));
    let held = "2026-12-02T04:09:29Z stdout F a\n".len() as u64;
    assert_eq!(
        sent(&mut from_cpu),
        [(
            format!(
                "{{\"time\":\"2026-12-02T04:09:29Z\",\"stream\":\"stdout\",\"body\":\"a\"{FIELDS}}}\n"
            ),
            Some(held)
        )]
    );
    // A read with a stderr line only: the stdout run still holds the mark.
    let second = b"2026-12-02T04:09:31Z stderr F e\n";
    let end = (first.len() + second.len()) as u64;
    worker.take(read(&pool, second, first.len() as u64));
    assert_eq!(sent(&mut from_cpu)[0].1, Some(held));
    let third = b"2026-12-02T04:09:32Z stdout F c\n";
    worker.take(read(&pool, third, end));
    let total = end + third.len() as u64;
    assert_eq!(
        sent(&mut from_cpu),
        [(
            format!(
                "{{\"time\":\"2026-12-02T04:09:30Z\",\"stream\":\"stdout\",\"body\":\"bc\"{FIELDS}}}\n"
            ),
            Some(total)
        )]
    );
}

#[test]
fn the_timeout_and_the_exit_send_pending_messages_with_their_marks() {
    let (mut worker, mut from_cpu, pool, _log) = cri_worker("/plain.log", Duration::from_millis(1));
    let text = b"2026-12-02T04:09:30Z stdout P alone\n";
    worker.take(read(&pool, text, 0));
    assert_eq!(sent(&mut from_cpu), [(String::new(), Some(0))]);
    let deadline = worker.container.as_ref().unwrap().joiner.deadline();
    assert!(deadline.is_some());
    std::thread::sleep(Duration::from_millis(5));
    worker.flush_container_runs(false);
    assert_eq!(
        sent(&mut from_cpu),
        [(
            "{\"time\":\"2026-12-02T04:09:30Z\",\"stream\":\"stdout\",\"body\":\"alone\"}\n"
                .to_string(),
            Some(text.len() as u64)
        )]
    );
    assert!(
        worker
            .container
            .as_ref()
            .unwrap()
            .joiner
            .deadline()
            .is_none()
    );
    // At exit, whatever the timeout.
    let (mut worker, mut from_cpu, pool, _log) = cri_worker("/plain.log", Duration::ZERO);
    worker.take(read(&pool, text, 0));
    assert!(
        worker
            .container
            .as_ref()
            .unwrap()
            .joiner
            .deadline()
            .is_none()
    );
    sent(&mut from_cpu);
    worker.flush_container_runs(true);
    assert_eq!(sent(&mut from_cpu).len(), 1);
}

/// A read of `text` from the file in `slot` (generation `generation`).
fn read_of(pool: &Arc<BufferPool>, text: &[u8], slot: u32, generation: u16) -> Batch {
    let mut batch = read(pool, text, 0);
    batch.marks = Marks::one(Mark {
        slot,
        generation,
        end: text.len() as u64,
    });
    batch
}

/// The records among what was sent (empty batches carry marks only).
fn records(from_cpu: &mut RingReceiver<Batch>) -> Vec<String> {
    sent(from_cpu)
        .into_iter()
        .flat_map(|(text, _)| text.lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[test]
fn more_pending_messages_than_runs_send_the_oldest_and_a_new_file_ends_the_old_ones() {
    let (mut worker, mut from_cpu, pool, _log) = cri_worker("/plain.log", Duration::from_secs(60));
    let text = b"2026-12-02T04:09:30Z stdout P out\n2026-12-02T04:09:30Z stderr P err\n";
    // Two runs a file: the ninth file's take the two oldest runs' places.
    let files = MAX_PENDING_RUNS as u32 / 2 + 1;
    let mut early = Vec::new();
    for slot in 0..files {
        worker.take(read_of(&pool, text, slot, 1));
        early.extend(records(&mut from_cpu));
    }
    assert_eq!(
        early,
        [
            "{\"time\":\"2026-12-02T04:09:30Z\",\"stream\":\"stdout\",\"body\":\"out\"}",
            "{\"time\":\"2026-12-02T04:09:30Z\",\"stream\":\"stderr\",\"body\":\"err\"}",
        ]
    );
    // Slot 1 holds another file now: its old runs go, then its line.
    worker.take(read_of(&pool, b"2026-12-02T04:09:31Z stdout F new\n", 1, 2));
    let sent = records(&mut from_cpu);
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent[2].contains("\"body\":\"new\""));
}

#[test]
fn joining_allocates_nothing_after_warm_up() {
    let (mut worker, mut from_cpu, pool, _log) = cri_worker(POD, Duration::from_secs(60));
    let text = b"2026-12-02T04:09:30Z stdout P one \n2026-12-02T04:09:30Z stderr F err\n2026-12-02T04:09:30Z stdout P two \n2026-12-02T04:09:30Z stdout F:x three\nnot cri\n";
    let mut from = 0;
    for round in 0..4 {
        let batch = read(&pool, text, from);
        from += text.len() as u64;
        let before = crate::test_alloc::allocations_on_this_thread();
        worker.take(batch);
        let allocations = crate::test_alloc::allocations_on_this_thread() - before;
        if round > 0 {
            assert_eq!(allocations, 0, "round {round}");
        }
        let records = sent(&mut from_cpu);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].0.lines().count(), 2);
        assert!(records[0].0.contains("\"body\":\"one two three\""));
    }
    assert_eq!(worker.counters.invalid.load(Ordering::Relaxed), 4);
    assert_eq!(worker.counters.records.load(Ordering::Relaxed), 20);
}
