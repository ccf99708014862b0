//! The checkpoint writer thread: [`CheckpointWriter`] writes the
//! [`Checkpointer`]'s state every `--checkpoint-interval`, sooner after a
//! run's first delivery and after every [`CHECKPOINT_BYTES`] delivered, and
//! writes the last checkpoint when the run ends ([`CheckpointWriter::finish`]).

use crate::checkpoint::Checkpointer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How often the checkpoint thread looks at how much was delivered.
const CHECKPOINT_POLL: Duration = Duration::from_millis(100);
/// Delivered bytes that make a checkpoint due before its interval.
const CHECKPOINT_BYTES: u64 = 32 << 20;

/// The thread that writes checkpoints, and the checkpointer it shares with
/// the final write.
pub(crate) struct CheckpointWriter {
    checkpointer: Arc<Mutex<Checkpointer>>,
    /// The thread and its stop flag; `None` when it could not be started
    /// (checkpoints are then written only at exit).
    thread: Option<(Arc<AtomicBool>, thread::JoinHandle<()>)>,
}

impl CheckpointWriter {
    /// Starts writing checkpoints every `interval` (never when it is zero),
    /// sooner after a run's first delivery and after every CHECKPOINT_BYTES
    /// delivered, until [`finish`](Self::finish). Failures are warned about
    /// when they start and when they end.
    pub fn start(checkpointer: Checkpointer, interval: Duration) -> Self {
        let checkpointer = Arc::new(Mutex::new(checkpointer));
        let thread = spawn(Arc::clone(&checkpointer), interval);
        Self {
            checkpointer,
            thread,
        }
    }

    /// Stops the thread and writes the last checkpoint: every file at its
    /// delivered watermark (after a drain that timed out, what was not
    /// delivered is read again next run).
    pub fn finish(self) -> std::io::Result<()> {
        if let Some((stop, thread)) = self.thread {
            stop.store(true, Ordering::Release);
            thread.thread().unpark();
            let _ = thread.join();
        }
        lock(&self.checkpointer).write()
    }
}

fn lock(checkpointer: &Mutex<Checkpointer>) -> std::sync::MutexGuard<'_, Checkpointer> {
    checkpointer
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn spawn(
    checkpointer: Arc<Mutex<Checkpointer>>,
    interval: Duration,
) -> Option<(Arc<AtomicBool>, thread::JoinHandle<()>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let spawned = thread::Builder::new()
        .name("ringway-checkpoint".into())
        .spawn(move || {
            let mut failing = false;
            let mut last_write = Instant::now();
            let mut last_total = lock(&checkpointer).delivered_total();
            let mut written_once = false;
            while !stopped.load(Ordering::Acquire) {
                if interval.is_zero() {
                    thread::park();
                    continue;
                }
                thread::park_timeout(interval.min(CHECKPOINT_POLL));
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                // Due every interval; sooner once CHECKPOINT_BYTES more were
                // delivered (a fast catch-up), and for the first delivery
                // of the run (a run killed young must not replay again all
                // that the run before it replayed).
                let total = lock(&checkpointer).delivered_total();
                let moved = total.abs_diff(last_total);
                // (While writes fail, only once per interval.)
                let due = last_write.elapsed() >= interval
                    || (!failing && (moved >= CHECKPOINT_BYTES || (!written_once && moved > 0)));
                if !due {
                    continue;
                }
                last_write = Instant::now();
                let written = lock(&checkpointer).write();
                if written.is_ok() {
                    last_total = total;
                    written_once = true;
                }
                match written {
                    Ok(()) if failing => {
                        eprintln!("ringway: info: checkpoints are written again");
                        failing = false;
                    }
                    Ok(()) => {}
                    Err(error) if !failing => {
                        eprintln!(
                            "ringway: warning: cannot write a checkpoint (retrying every interval); error = {error}"
                        );
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        });
    match spawned {
        Ok(handle) => Some((stop, handle)),
        Err(error) => {
            eprintln!(
                "ringway: warning: no checkpoint thread; checkpoints are written only at exit; error = {error}"
            );
            None
        }
    }
}
