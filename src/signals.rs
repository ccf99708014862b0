//! Signals: SIGINT and SIGTERM (stop and drain; a second one exits at once)
//! and SIGHUP (reopen ringway's own files, for logrotate; reload the
//! network inputs' certificates, keys and token files).
//!
//! [`block_termination_signals`] blocks them in the main thread before any
//! other starts, so every thread inherits the mask and one thread
//! ([`spawn_signal_thread`]) takes them with `sigwait`. A SIGHUP bumps the
//! reopen generation ([`request_reopen`]); every file writer (`file:`
//! outputs, the dead-letter file) compares the generation it opened under
//! with [`reopen_generation`] before its next write. The same SIGHUP reloads
//! every input's [`Credentials`] here, on the signal thread, so no I/O
//! worker reads a file: each picks the new ones up at its next accept.

use crate::reload::Credentials;
use crate::ring::Waker;
use nix::sys::signal::{SigSet, Signal};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// A second SIGINT/SIGTERM within this time of the first is the same stop
/// request delivered twice (`timeout` and some supervisors signal the
/// process and then its group at once), not a request to skip the drain.
/// Far shorter than a person's quickest double Ctrl-C (about 100 ms apart),
/// which must exit at once.
const REPEAT_SIGNAL_GRACE: Duration = Duration::from_millis(30);

/// Bumped at every SIGHUP; a file opened under an older value is reopened
/// before its next write.
static REOPEN_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Makes every file output reopen its path before its next write (SIGHUP).
pub(crate) fn request_reopen() {
    REOPEN_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// The current reopen generation (see [`request_reopen`]).
pub(crate) fn reopen_generation() -> u64 {
    REOPEN_GENERATION.load(Ordering::SeqCst)
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and so in every
/// thread it spawns); a dedicated thread takes them with `sigwait`.
pub(crate) fn block_termination_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    // Fails only for an invalid `how`, which SIG_BLOCK is not.
    let _ = set.thread_block();
    set
}

pub(crate) fn spawn_signal_thread(
    set: SigSet,
    shutdown: Arc<AtomicBool>,
    wake_on_shutdown: Vec<Arc<Waker>>,
    supervisor: Thread,
    credentials: Vec<Arc<Credentials>>,
) {
    let spawned = thread::Builder::new()
        .name("ringway-signals".into())
        .spawn(move || {
            let mut first: Option<Instant> = None;
            loop {
                // `set` holds SIGINT, SIGTERM and SIGHUP, blocked in every thread.
                let Ok(signal) = set.wait() else {
                    continue;
                };
                // SIGHUP (logrotate, `systemctl reload`): reopen file
                // outputs, reload the inputs' credentials.
                if signal == Signal::SIGHUP {
                    request_reopen();
                    eprintln!("ringway: SIGHUP received; reopening file outputs before their next write");
                    for input in &credentials {
                        input.reload();
                    }
                    continue;
                }
                // One stop request often arrives twice at once (sent to the
                // process and to its group, as `timeout` does): a signal
                // more than REPEAT_SIGNAL_GRACE after the first means "exit
                // now".
                if let Some(first) = first {
                    if first.elapsed() < REPEAT_SIGNAL_GRACE {
                        continue;
                    }
                    eprintln!("ringway: second signal; exiting now without draining");
                    std::process::exit(130);
                }
                first = Some(Instant::now());
                eprintln!("ringway: signal {} received; stopping inputs and draining (send again to exit at once)", signal as i32);
                shutdown.store(true, Ordering::SeqCst);
                for waker in &wake_on_shutdown {
                    waker.wake_now();
                }
                supervisor.unpark();
            }
        });
    if let Err(error) = spawned {
        eprintln!(
            "ringway: warning: no signal thread, SIGINT/SIGTERM will not drain; error = {error}"
        );
    }
}
