//! Backpressure: a stalled output pauses the file reader with bounded
//! memory, and everything drains in order once the output moves again.
//! An idle pipeline sleeps.

use crate::common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const RSS_LIMIT_KIB: u64 = 64 * 1024;

/// 100-byte lines (99 + "\n") numbered from `start`.
fn hundred_byte_lines(start: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity((n * 100) as usize);
    for i in start..start + n {
        let line = format!("seq {i:010} {}", "x".repeat(84));
        assert_eq!(line.len(), 99);
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

#[test]
fn fifo_output_stall_pauses_reader_and_bounds_memory() {
    let dir = TempDir::new("fifo-stall");
    let input = dir.join("in.log");
    let fifo = dir.join("out.fifo");
    let summary = dir.join("summary.json");
    mkfifo(&fifo);

    // 1,000,000 lines = 100 MB: more than the RSS bound, so a process that
    // stays under the bound and later delivers every line must have left
    // the rest on disk (paused its reader) rather than buffered it.
    const LINES: u64 = 1_000_000;
    const CHUNK_LINES: u64 = 20_000; // 2 MB per append, every 50 ms ≈ 2.5 s
    let expected = Arc::new(hundred_byte_lines(0, LINES));
    assert!(expected.len() as u64 > 64 * 1024 * 1024 + (16 << 20));
    std::fs::write(&input, &expected[..(CHUNK_LINES * 100) as usize]).unwrap();

    let mut rw = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &format!("file:{}", p(&fifo)),
            "--summary-json",
            &p(&summary),
            "--stats-interval",
            "1s",
        ],
    );
    let pid = rw.pid();

    let writer_done = Arc::new(AtomicBool::new(false));
    let writer = {
        let expected = Arc::clone(&expected);
        let input = input.clone();
        let writer_done = Arc::clone(&writer_done);
        thread::spawn(move || {
            let chunk = (CHUNK_LINES * 100) as usize;
            for piece in expected[chunk..].chunks(chunk) {
                thread::sleep(Duration::from_millis(50));
                append(&input, piece);
            }
            writer_done.store(true, Ordering::SeqCst);
        })
    };

    // Nobody reads the FIFO for at least 4 s and until the writer is done.
    let stall_start = Instant::now();
    let mut samples = Vec::new();
    while stall_start.elapsed() < Duration::from_secs(4) || !writer_done.load(Ordering::SeqCst) {
        // The sampling period: RSS is watched across the whole stall.
        thread::sleep(Duration::from_millis(400));
        rw.assert_running("while its output FIFO had no reader (a stall is not a failure)");
        samples.push(vm_rss_kib(pid).expect("read VmRSS from /proc/PID/status"));
        assert!(
            stall_start.elapsed() < Duration::from_secs(60),
            "writer thread took too long"
        );
    }
    writer.join().unwrap();
    assert!(samples.len() >= 5, "too few RSS samples: {samples:?}");
    let max_rss = *samples.iter().max().unwrap();
    assert!(
        max_rss <= RSS_LIMIT_KIB,
        "VmRSS while the output was stalled went to {max_rss} KiB (> {RSS_LIMIT_KIB} KiB); samples {samples:?}\n\
         --- stderr ---\n{}",
        tail(&rw.stderr_now(), 3000)
    );
    let stderr_during_stall = rw.stderr_now();
    println!("VmRSS samples while stalled (KiB): {samples:?}");

    // Attach a reader: everything must now drain, in order, exactly once.
    let progress = Arc::new(AtomicU64::new(0));
    let rx = attach_fifo_reader(fifo.clone(), Arc::clone(&progress));
    let total = expected.len() as u64;
    let caught_up = wait_until(Duration::from_secs(120), || {
        progress.load(Ordering::SeqCst) >= total
    });
    let delivered_before_sigterm = progress.load(Ordering::SeqCst);
    rw.terminate();
    let done = rw.wait(TIMEOUT);
    done.assert_success();
    let got = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("FIFO reader did not see EOF after ringway exited");
    assert!(
        caught_up,
        "only {delivered_before_sigterm} of {total} bytes drained within 120 s of attaching a reader\n\
         --- stderr during stall ---\n{}",
        tail(&stderr_during_stall, 3000)
    );
    assert_bytes_identical(&expected, &got, "FIFO output after the stall");
    let s = read_summary(&summary);
    assert_eq!(s.input(0, "records"), LINES, "{s}");
    assert_eq!(s.output(0, "records"), LINES, "{s}");
    assert_eq!(s.output(0, "bytes"), total, "{s}");
}

#[test]
fn sigterm_with_stalled_output_exits_1_after_shutdown_timeout() {
    // DESIGN §7: --shutdown-timeout bounds the drain at exit, then exit
    // non-zero (contract: 1). The output FIFO never gets a reader.
    let dir = TempDir::new("stalled-shutdown");
    let input = dir.join("in.log");
    let fifo = dir.join("out.fifo");
    let summary = dir.join("summary.json");
    mkfifo(&fifo);
    let data = hundred_byte_lines(0, 600_000); // 60 MB, about twice the buffer pool
    std::fs::write(&input, &data).unwrap();

    let mut rw = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &format!("file:{}", p(&fifo)),
            "--summary-json",
            &p(&summary),
            "--shutdown-timeout",
            "2s",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    // The reader has filled what the stalled pipeline holds and paused: its
    // byte count stops growing (memory is then at its peak).
    let metrics = metrics_address(&mut rw);
    let paused_at = wait_until_steady(
        Duration::from_secs(60),
        Duration::from_secs(1),
        || metric_sum(metrics, "ringway_input_bytes_total"),
        |bytes| bytes > 0,
    );
    rw.assert_running("while its output FIFO had no reader");
    let paused_at = paused_at.unwrap_or_else(|| {
        panic!(
            "the reader never paused while the output was stalled\n--- stderr ---\n{}",
            tail(&rw.stderr_now(), 3000)
        )
    });
    let rss = vm_rss_kib(rw.pid()).expect("read VmRSS from /proc/PID/status");
    rw.terminate();
    let done = rw.wait(Duration::from_secs(60));
    done.assert_code(1);
    assert!(
        done.elapsed < Duration::from_secs(20),
        "exit took {:?} after SIGTERM with --shutdown-timeout 2s",
        done.elapsed
    );
    assert!(rss <= RSS_LIMIT_KIB, "VmRSS {rss} KiB while stalled");
    assert!(
        paused_at < data.len() as u64,
        "reader did not pause: it read all {paused_at} bytes while the output was stalled"
    );
    println!("VmRSS while stalled: {rss} KiB; the reader paused at {paused_at} bytes");
    // The summary is written after a timed-out drain too (exit 1 is still
    // an orderly exit): it shows the reader paused, nothing written.
    let s = read_summary(&summary);
    println!("summary after the timed-out drain: {s}");
    assert!(
        s.input(0, "bytes") < data.len() as u64,
        "reader did not pause: it read the whole file while the output was stalled: {s}"
    );
    assert_eq!(
        s.output(0, "records"),
        0,
        "nothing can have been written: {s}"
    );
}

#[test]
fn idle_pipeline_uses_almost_no_cpu() {
    let dir = TempDir::new("idle-cpu");
    let input = dir.join("in.log");
    let output = dir.join("out.log");
    let data = numbered_lines("idle", 0..10);
    std::fs::write(&input, &data).unwrap();
    let mut rw = spawn(
        &dir,
        &[
            "run",
            "--input",
            &format!("file:{}", p(&input)),
            "--output",
            &format!("file:{}", p(&output)),
        ],
    );
    let arrived = wait_until(Duration::from_secs(60), || {
        file_len(&output) >= data.len() as u64
    });
    assert!(
        arrived,
        "the 10 lines never arrived; stderr:\n{}",
        rw.stderr_now()
    );
    // Warm-up: let the start-up work (thread spawn, first rescan) pass
    // before measuring; nothing is waited for here.
    thread::sleep(Duration::from_secs(1));
    rw.assert_running("while tailing an idle file");
    let pid = rw.pid();
    let t0 = Instant::now();
    let ticks0 = cpu_ticks(pid).expect("read /proc/PID/stat");
    // The measured interval: time has to pass to show no CPU is spent.
    thread::sleep(Duration::from_secs(3));
    let ticks1 = cpu_ticks(pid).expect("read /proc/PID/stat");
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (ticks1 - ticks0) as f64 / clock_ticks_per_second() as f64;
    let share = cpu / wall;
    println!("idle CPU: {cpu:.3} s in {wall:.2} s");
    rw.terminate();
    let done = rw.wait(TIMEOUT);
    assert!(
        share < 0.05,
        "idle ringway used {:.1}% of a core ({cpu:.3} s CPU in {wall:.2} s); it must not busy-loop",
        share * 100.0
    );
    done.assert_success();
}
