//! The rings between stages, and how a thread waits on them.
//!
//! [`ring`] makes a fixed-capacity `rtrb` SPSC ring split into a
//! [`RingSender`] and a [`RingReceiver`]. Each end knows the [`Waker`] of the
//! thread on the other side: a push wakes the consumer, a pop wakes the
//! producer, and dropping an end wakes the other so it sees the ring
//! abandoned. A [`Gauge`] mirrors the occupancy for stats; one made with
//! [`Gauge::sum_of`] reads the sum of others (a stage's rings, per input).
//!
//! Sleep protocol (both sides of every ring follow it):
//! 1. the waiting thread spins briefly, re-checking its condition;
//! 2. it sets `sleeping`, issues a SeqCst fence and re-checks the condition;
//! 3. only if still not ready it sleeps (`park_timeout`, or `io_uring_enter`
//!    for an I/O worker, whose waker writes an eventfd it keeps a read on).
//!
//! The other side publishes (push/pop), fences SeqCst, and wakes only when it
//! sees `sleeping` set. Either the sleeper's re-check sees the publication or
//! the waker sees the flag, so no wake-up is lost. Parks also time out after
//! [`PARK_MAX`] as a safety net; idle threads therefore cost ~0% CPU.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// Longest a parked thread sleeps before re-checking on its own.
pub(crate) const PARK_MAX: Duration = Duration::from_millis(250);
/// Spins before a waiting thread parks. Short: this host has few cores and a
/// spinning thread steals them from the stage it waits for.
const SPIN_LIMIT: u32 = 64;

enum WakeTarget {
    /// A thread that parks; set by the thread itself when it starts.
    Thread(OnceLock<Thread>),
    /// An I/O worker that sleeps in `io_uring_enter` with a read posted on
    /// this eventfd. Owned here, so it stays open while anyone can wake.
    EventFd(OwnedFd),
    #[cfg(test)]
    Nobody,
}

/// Wakes one sleeping thread. Shared by every producer that may wake it.
pub(crate) struct Waker {
    sleeping: AtomicBool,
    /// The owner's last park slept out the whole safety-net timeout
    /// ([`PARK_MAX`]) and its condition is still false: it is idle, so its
    /// next wait parks at once instead of spinning again. Only the owning
    /// thread touches it.
    idle: AtomicBool,
    target: WakeTarget,
}

impl Waker {
    pub fn for_thread() -> Arc<Self> {
        Arc::new(Self {
            sleeping: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            target: WakeTarget::Thread(OnceLock::new()),
        })
    }

    pub fn for_eventfd(fd: OwnedFd) -> Arc<Self> {
        Arc::new(Self {
            sleeping: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            target: WakeTarget::EventFd(fd),
        })
    }

    #[cfg(test)]
    pub fn for_test() -> Arc<Self> {
        Arc::new(Self {
            sleeping: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            target: WakeTarget::Nobody,
        })
    }

    /// The eventfd an I/O worker keeps a read posted on.
    pub fn eventfd(&self) -> Option<RawFd> {
        match &self.target {
            WakeTarget::EventFd(fd) => Some(fd.as_raw_fd()),
            _ => None,
        }
    }

    /// Called once by the thread this waker wakes, before it first sleeps.
    pub fn register_current_thread(&self) {
        if let WakeTarget::Thread(cell) = &self.target {
            let _ = cell.set(thread::current());
        }
    }

    /// Step 2 of the protocol: announce the sleep. The caller must re-check
    /// its condition afterwards and call [`Waker::sleep_done`] when awake.
    pub fn announce_sleep(&self) {
        self.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    pub fn sleep_done(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Wakes the owner if it announced a sleep. Cheap when it did not: a
    /// fence and a load.
    pub fn wake(&self) {
        fence(Ordering::SeqCst);
        if !self.sleeping.load(Ordering::Relaxed) || !self.sleeping.swap(false, Ordering::AcqRel) {
            return;
        }
        self.wake_now();
    }

    /// Wakes the owner unconditionally (shutdown, signals).
    pub fn wake_now(&self) {
        match &self.target {
            WakeTarget::Thread(cell) => {
                if let Some(thread) = cell.get() {
                    thread.unpark();
                }
            }
            WakeTarget::EventFd(fd) => {
                let one: u64 = 1;
                // SAFETY: `fd` is owned by this waker, so it is open while
                // `self` lives; we write 8 bytes from a live u64.
                unsafe {
                    libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8);
                }
            }
            #[cfg(test)]
            WakeTarget::Nobody => {}
        }
    }

    /// Parks the current thread (which must own this waker) until `ready`
    /// holds, `deadline` passes or `PARK_MAX` elapses, following the sleep
    /// protocol. Returns without parking when `ready` already holds.
    ///
    /// An idle thread (its last park timed out with nothing to do) skips
    /// the spin: without that, every [`PARK_MAX`] re-check of every idle
    /// stage spun and yielded 64 times, about 0.13% CPU per idle pipeline.
    pub fn wait(&self, ready: impl Fn() -> bool, deadline: Option<Instant>) {
        let spins = if self.idle.load(Ordering::Relaxed) {
            0
        } else {
            SPIN_LIMIT
        };
        for spin in 0..spins {
            if ready() {
                self.idle.store(false, Ordering::Relaxed);
                return;
            }
            if spin < SPIN_LIMIT / 2 {
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        self.announce_sleep();
        let mut slept_out = false;
        if !ready() {
            let mut timeout = PARK_MAX;
            if let Some(deadline) = deadline {
                timeout = timeout.min(deadline.saturating_duration_since(Instant::now()));
            }
            if !timeout.is_zero() {
                let parked_at = Instant::now();
                thread::park_timeout(timeout);
                // Only the safety net's full PARK_MAX marks the thread
                // idle: a deadline (a linger) or an early wake-up for
                // someone else's turn is the rhythm of a busy thread.
                slept_out = timeout == PARK_MAX && parked_at.elapsed() >= PARK_MAX;
            }
        }
        self.sleep_done();
        self.idle.store(slept_out && !ready(), Ordering::Relaxed);
    }
}

/// Occupancy of the rings that share it, for stats and metrics only (never
/// for control).
#[derive(Default)]
pub(crate) struct Gauge {
    occupancy: AtomicUsize,
    capacity: AtomicUsize,
    /// Gauges whose readings are added to this one's: a stage's total over
    /// its inputs is read from theirs, so a push still updates one gauge.
    parts: Vec<Arc<Gauge>>,
}

impl Gauge {
    /// A gauge that reads as the sum of `parts` (no ring updates it).
    pub fn sum_of(parts: Vec<Arc<Gauge>>) -> Self {
        Self {
            parts,
            ..Self::default()
        }
    }

    pub fn occupancy(&self) -> usize {
        self.occupancy.load(Ordering::Relaxed)
            + self
                .parts
                .iter()
                .map(|part| part.occupancy())
                .sum::<usize>()
    }
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
            + self.parts.iter().map(|part| part.capacity()).sum::<usize>()
    }
}

pub(crate) struct RingSender<T> {
    producer: rtrb::Producer<T>,
    consumer_waker: Arc<Waker>,
    gauge: Arc<Gauge>,
}

pub(crate) struct RingReceiver<T> {
    consumer: rtrb::Consumer<T>,
    producer_waker: Arc<Waker>,
    gauge: Arc<Gauge>,
}

/// A ring of `capacity` items between the thread woken by `producer_waker`
/// and the thread woken by `consumer_waker`.
pub(crate) fn ring<T>(
    capacity: usize,
    producer_waker: Arc<Waker>,
    consumer_waker: Arc<Waker>,
    gauge: Arc<Gauge>,
) -> (RingSender<T>, RingReceiver<T>) {
    assert!(capacity > 0, "a ring holds at least one item");
    gauge.capacity.fetch_add(capacity, Ordering::Relaxed);
    let (producer, consumer) = rtrb::RingBuffer::new(capacity);
    (
        RingSender {
            producer,
            consumer_waker,
            gauge: Arc::clone(&gauge),
        },
        RingReceiver {
            consumer,
            producer_waker,
            gauge,
        },
    )
}

impl<T> RingSender<T> {
    /// Full is a value, not a wait: the item comes back and the caller
    /// applies its stage's policy.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        // Count before publishing, so the consumer's decrement can never
        // run first and wrap the gauge.
        self.gauge.occupancy.fetch_add(1, Ordering::Relaxed);
        match self.producer.push(item) {
            Ok(()) => {
                self.consumer_waker.wake();
                Ok(())
            }
            Err(rtrb::PushError::Full(item)) => {
                self.gauge.occupancy.fetch_sub(1, Ordering::Relaxed);
                Err(item)
            }
        }
    }

    pub fn has_room(&self) -> bool {
        self.producer.slots() > 0
    }

    /// Items that can be pushed now.
    pub fn free_slots(&self) -> usize {
        self.producer.slots()
    }

    pub fn is_abandoned(&self) -> bool {
        self.producer.is_abandoned()
    }
}

impl<T> Drop for RingSender<T> {
    fn drop(&mut self) {
        // The consumer may sleep waiting for an item that will never come.
        self.consumer_waker.wake_now();
    }
}

impl<T> RingReceiver<T> {
    pub fn pop(&mut self) -> Option<T> {
        let item = self.consumer.pop().ok()?;
        self.gauge.occupancy.fetch_sub(1, Ordering::Relaxed);
        self.producer_waker.wake();
        Some(item)
    }

    pub fn is_empty(&self) -> bool {
        self.consumer.is_empty()
    }

    /// True once the producer is gone and nothing is left to pop.
    pub fn is_finished(&self) -> bool {
        self.consumer.is_abandoned() && self.consumer.is_empty()
    }
}

impl<T> Drop for RingReceiver<T> {
    fn drop(&mut self) {
        self.producer_waker.wake_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_capacity_is_honoured_and_gauged() {
        let gauge = Arc::new(Gauge::default());
        let (mut tx, mut rx) = ring::<u32>(4, Waker::for_test(), Waker::for_test(), gauge.clone());
        for i in 0..4 {
            assert!(tx.push(i).is_ok());
        }
        assert_eq!(tx.push(9), Err(9), "a full ring hands the item back");
        assert!(!tx.has_room());
        assert_eq!(gauge.occupancy(), 4);
        assert_eq!(gauge.capacity(), 4);
        assert_eq!(rx.pop(), Some(0));
        assert_eq!(gauge.occupancy(), 3);
        drop(tx);
        assert!(!rx.is_finished(), "items left after the producer went");
        while rx.pop().is_some() {}
        assert!(rx.is_finished());
        assert_eq!(gauge.occupancy(), 0);
    }

    #[test]
    fn a_parked_consumer_is_woken_by_a_push() {
        let gauge = Arc::new(Gauge::default());
        let consumer_waker = Waker::for_thread();
        let (mut tx, mut rx) = ring::<u32>(1, Waker::for_test(), consumer_waker.clone(), gauge);
        let handle = thread::spawn(move || {
            consumer_waker.register_current_thread();
            let started = Instant::now();
            loop {
                if let Some(value) = rx.pop() {
                    return (value, started.elapsed());
                }
                consumer_waker.wait(|| !rx.is_empty(), None);
            }
        });
        thread::sleep(Duration::from_millis(50));
        tx.push(7).unwrap();
        let (value, _) = handle.join().unwrap();
        assert_eq!(value, 7);
    }
}
