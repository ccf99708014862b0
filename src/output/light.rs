//! The traffic light of `ringway demo`: a [`TrafficLight`] that the output
//! workers pass before each write, switched green and red by
//! [`spawn_control_thread`] from lines on standard input.
//!
//! It exists only under the hidden `run --traffic-light` flag, which
//! `ringway demo` gives the pipeline it starts; without it the workers hold
//! `None` and pay nothing (no check, no atomic). With it, a worker loads one
//! atomic per batch while green, and sleeps on a condition variable while
//! red, so a red light stops every write and the rings behind the workers
//! fill, as a slow exit would fill them.

use std::io::{BufRead, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Longest line the control thread reads (`green`, `red`); a longer one is
/// read in parts and ignored.
const MAX_CONTROL_LINE_BYTES: usize = 64;

/// Green (writes go) or red (every worker waits before its next write).
pub(crate) struct TrafficLight {
    /// The fast path: workers read this alone while it is green.
    green: AtomicBool,
    /// Guards the red → green change, so a worker that saw red and is about
    /// to wait cannot miss the wake-up.
    lock: Mutex<()>,
    changed: Condvar,
}

impl TrafficLight {
    /// A light that starts green.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            green: AtomicBool::new(true),
            lock: Mutex::new(()),
            changed: Condvar::new(),
        })
    }

    pub fn set(&self, green: bool) {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        self.green.store(green, Ordering::Release);
        if green {
            self.changed.notify_all();
        }
    }

    /// Returns once the light is green (at once while it is).
    pub fn wait_for_green(&self) {
        if self.green.load(Ordering::Acquire) {
            return;
        }
        let mut guard = self
            .lock
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        while !self.green.load(Ordering::Acquire) {
            guard = self
                .changed
                .wait(guard)
                .unwrap_or_else(|poison| poison.into_inner());
        }
    }
}

/// Reads standard input line by line: `green` and `red` switch `light`.
/// At its end (the demo quit, or died) the light turns green for good, so
/// the drain can finish, and the process stops as at SIGTERM: a pipeline
/// started by the demo never outlives it.
pub(crate) fn spawn_control_thread(light: Arc<TrafficLight>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("ringway-light".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut line = Vec::with_capacity(MAX_CONTROL_LINE_BYTES);
            loop {
                line.clear();
                match (&mut stdin)
                    .take(MAX_CONTROL_LINE_BYTES as u64)
                    .read_until(b'\n', &mut line)
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) => match line.trim_ascii() {
                        b"green" => light.set(true),
                        b"red" => light.set(false),
                        _ => {}
                    },
                }
            }
            light.set(true);
            // SAFETY: kill with our own pid and a valid signal number has no
            // memory effects; SIGTERM is blocked in every thread and taken by
            // the signal thread, which starts the drain.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGTERM);
            }
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_red_light_holds_a_worker_until_it_turns_green() {
        let light = TrafficLight::new();
        light.wait_for_green();
        light.set(false);
        let passed = Arc::new(AtomicBool::new(false));
        let worker = {
            let (light, passed) = (Arc::clone(&light), Arc::clone(&passed));
            std::thread::spawn(move || {
                light.wait_for_green();
                passed.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(!passed.load(Ordering::SeqCst), "passed a red light");
        light.set(true);
        worker.join().unwrap();
        assert!(passed.load(Ordering::SeqCst));
    }
}
