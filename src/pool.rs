//! Fixed buffer pools, allocated at start-up and recycled through the stages.
//!
//! A [`BufferPool`] maps one arena holding every buffer an input will ever
//! use. A [`PooledBuffer`] owns one slice of it while it travels I/O → CPU →
//! outputs; dropping it (when the last output is done with its batch) puts
//! the slice back and wakes the pool's owner, the input's I/O worker, if it
//! sleeps waiting for one.
//!
//! A network input's pool with source fields also holds, per buffer, a
//! side table of [`SenderRuns`] (who sent each record), made with the pool
//! and travelling with the buffer it belongs to.
//!
//! The arena is an anonymous mapping: its pages are zero and cost nothing
//! until first written, so start-up touches no memory and RSS grows only to
//! what the pipeline actually fills — never past the arena. Free buffers
//! are handed out last in, first out: the one returned most recently (its
//! pages resident already) is reused first, so RSS stays at the buffers
//! in flight at once, not the pool's size (a queue would cycle through,
//! and so touch, every buffer of the pool). The free stack is lock-free
//! ([`FreeStack`]): taking and returning a buffer is one compare-and-swap,
//! so no thread ever waits on another that the scheduler put to sleep.

use crate::ring::Waker;
use crate::source::SenderRuns;
use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

pub(crate) struct BufferPool {
    /// `count * buffer_bytes` bytes, mapped for the life of the pool.
    arena: NonNull<u8>,
    buffer_bytes: usize,
    /// The arena's mapping, unmapped with the pool (every `PooledBuffer`
    /// holds an `Arc` to the pool, so none is alive then).
    _map: memmap2::MmapRaw,
    /// Indexes of free buffers, last in first out (see the module's doc).
    free: FreeStack,
    /// Woken when a buffer comes back.
    owner: Arc<Waker>,
    /// One per buffer (same index), or none: the senders of the records a
    /// network input with `source=true` put in that buffer.
    senders: Box<[UnsafeCell<SenderRuns>]>,
}

// SAFETY: the arena is only read and written through `PooledBuffer`s, and
// each buffer index is owned by at most one `PooledBuffer` at a time (it is
// either in `free` or held by exactly one), so no two threads ever touch the
// same bytes without the handoff a ring or the free stack provides.
unsafe impl Send for BufferPool {}
// SAFETY: as above; `&BufferPool` only gives access to the stack and sizes.
unsafe impl Sync for BufferPool {}

impl BufferPool {
    /// Maps `count` buffers of `buffer_bytes`.
    pub fn new(count: usize, buffer_bytes: usize, owner: Arc<Waker>) -> std::io::Result<Arc<Self>> {
        Self::with_senders(count, buffer_bytes, 0, owner)
    }

    /// Maps `count` buffers of `buffer_bytes`, each with a table of up to
    /// `sender_runs` sender runs (none when 0).
    pub fn with_senders(
        count: usize,
        buffer_bytes: usize,
        sender_runs: usize,
        owner: Arc<Waker>,
    ) -> std::io::Result<Arc<Self>> {
        assert!(count > 0 && buffer_bytes > 0 && count < u32::MAX as usize);
        let arena_bytes = count
            .checked_mul(buffer_bytes)
            .ok_or_else(|| std::io::Error::other("buffer pool size overflows"))?;
        let map: memmap2::MmapRaw = memmap2::MmapOptions::new()
            .len(arena_bytes)
            .map_anon()?
            .into();
        // Fewer TLB misses for the scanners; a hint only, so errors are ignored.
        let _ = map.advise(memmap2::Advice::HugePage);
        Ok(Arc::new(Self {
            arena: NonNull::new(map.as_mut_ptr()).expect("a mapping is never at null"),
            buffer_bytes,
            _map: map,
            free: FreeStack::full(count),
            owner,
            senders: (0..if sender_runs > 0 { count } else { 0 })
                .map(|_| UnsafeCell::new(SenderRuns::with_capacity(sender_runs)))
                .collect(),
        }))
    }

    pub fn take(self: &Arc<Self>) -> Option<PooledBuffer> {
        self.free.pop().map(|index| PooledBuffer {
            index,
            pool: Arc::clone(self),
        })
    }

    /// Free buffers now (a buffer being returned may count already).
    pub fn available(&self) -> usize {
        self.free.len()
    }

    pub fn buffer_bytes(&self) -> usize {
        self.buffer_bytes
    }

    /// Who is woken when a buffer comes back.
    pub fn owner(&self) -> &Arc<Waker> {
        &self.owner
    }

    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.free.below.len()
    }

    fn buffer_start(&self, index: u32) -> *mut u8 {
        // SAFETY: index < count, so the offset stays inside the arena.
        unsafe { self.arena.as_ptr().add(index as usize * self.buffer_bytes) }
    }
}

/// A lock-free stack of the free buffers' indexes: a Treiber stack over
/// links fixed at start-up (one per buffer), so pushing and popping are one
/// compare-and-swap each and nothing is ever allocated. The top carries a
/// tag that every push and pop bumps, so a pop that raced a pop and a push
/// of the same index (ABA) fails its compare-and-swap and tries again.
struct FreeStack {
    /// Low 32 bits: the top's index + 1 (0: empty); high 32 bits: the tag.
    head: AtomicU64,
    /// `below[i]`: index + 1 of the entry under buffer `i` while `i` is in
    /// the stack (0: the bottom).
    below: Box<[AtomicU32]>,
    /// Entries, counted before a push and after a pop, so never fewer than
    /// the stack holds.
    len: AtomicUsize,
}

impl FreeStack {
    /// Every index of `count` in the stack, 0 on top.
    fn full(count: usize) -> Self {
        let below = (0..count)
            .map(|index| {
                AtomicU32::new(if index + 1 < count {
                    index as u32 + 2
                } else {
                    0
                })
            })
            .collect();
        Self {
            head: AtomicU64::new(1),
            below,
            len: AtomicUsize::new(count),
        }
    }

    fn pop(&self) -> Option<u32> {
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            let top = head as u32;
            if top == 0 {
                return None;
            }
            let index = top - 1;
            // A stale value here comes with a stale head: the exchange
            // below fails, as the tag moved on.
            let below = self.below[index as usize].load(Ordering::Relaxed);
            let next = (head >> 32).wrapping_add(1) << 32 | u64::from(below);
            match self
                .head
                .compare_exchange_weak(head, next, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => {
                    self.len.fetch_sub(1, Ordering::Relaxed);
                    return Some(index);
                }
                Err(now) => head = now,
            }
        }
    }

    /// Puts back `index`, which is not in the stack.
    fn push(&self, index: u32) {
        let before = self.len.fetch_add(1, Ordering::Relaxed);
        assert!(
            before < self.below.len(),
            "a pool never holds more than it made"
        );
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            self.below[index as usize].store(head as u32, Ordering::Relaxed);
            let next = (head >> 32).wrapping_add(1) << 32 | u64::from(index + 1);
            // Release: the buffer's bytes and its link are written before a
            // pop (Acquire) can hand it out again.
            match self
                .head
                .compare_exchange_weak(head, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

/// One buffer of a pool; returns itself to the pool when dropped.
pub(crate) struct PooledBuffer {
    /// Owned exclusively: not in the free stack while this exists.
    index: u32,
    pool: Arc<BufferPool>,
}

impl PooledBuffer {
    /// The senders of this buffer's records, when its pool keeps them.
    pub fn senders(&self) -> Option<&SenderRuns> {
        let cell = self.pool.senders.get(self.index as usize)?;
        // SAFETY: this buffer's entry is owned by `self` alone, like its
        // bytes (see BufferPool's Send/Sync).
        Some(unsafe { &*cell.get() })
    }

    /// As [`Self::senders`], to note senders in.
    pub fn senders_mut(&mut self) -> Option<&mut SenderRuns> {
        let cell = self.pool.senders.get(self.index as usize)?;
        // SAFETY: as in `senders`, and `&mut self` makes it exclusive.
        Some(unsafe { &mut *cell.get() })
    }
}

impl Deref for PooledBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: this buffer's bytes are owned by `self` alone (see
        // BufferPool's Send/Sync), lie inside the live arena, and are
        // initialised (anonymous mappings are zero-filled).
        unsafe {
            std::slice::from_raw_parts(self.pool.buffer_start(self.index), self.pool.buffer_bytes)
        }
    }
}

impl DerefMut for PooledBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.pool.buffer_start(self.index),
                self.pool.buffer_bytes,
            )
        }
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        self.pool.free.push(self.index);
        self.pool.owner.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_buffer_returns_to_its_pool() {
        let pool = BufferPool::new(3, 64, Waker::for_test()).unwrap();
        let mut a = pool.take().unwrap();
        let b = pool.take().unwrap();
        let c = pool.take().unwrap();
        assert!(
            pool.take().is_none(),
            "a pool hands out no more than it holds"
        );
        assert_eq!(pool.available(), 0);
        a[..5].copy_from_slice(b"hello");
        assert!(b.iter().all(|&byte| byte == 0), "buffers do not overlap");
        drop(b);
        assert_eq!(pool.available(), 1);
        let shared = Arc::new(a);
        let clone = Arc::clone(&shared);
        drop(shared);
        assert_eq!(pool.available(), 1, "still referenced by one output");
        assert_eq!(&clone[..5], b"hello");
        drop(clone);
        drop(c);
        assert_eq!(pool.available(), pool.count());
        assert_eq!(pool.take().unwrap().len(), 64);
    }

    #[test]
    fn the_buffer_returned_last_is_taken_first() {
        let pool = BufferPool::new(4, 64, Waker::for_test()).unwrap();
        let held = pool.take().unwrap();
        let recycled = pool.take().unwrap().index;
        // A pool cycled one buffer at a time touches only that buffer.
        for _ in 0..8 {
            let buffer = pool.take().unwrap();
            assert_eq!(buffer.index, recycled);
        }
        let other = pool.take().unwrap();
        let third = pool.take().unwrap();
        drop(third);
        drop(other);
        assert_ne!(held.index, recycled);
        assert_eq!(pool.take().unwrap().index, recycled, "returned last");
    }

    #[test]
    fn threads_taking_and_returning_at_once_never_share_a_buffer() {
        let pool = BufferPool::new(8, 64, Waker::for_test()).unwrap();
        let threads: Vec<_> = (0..4u8)
            .map(|thread| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    for round in 0..20_000u32 {
                        let Some(mut buffer) = pool.take() else {
                            continue;
                        };
                        let mark = [thread, round as u8, (round >> 8) as u8, 0x5a];
                        buffer[..4].copy_from_slice(&mark);
                        std::hint::spin_loop();
                        assert_eq!(buffer[..4], mark, "a buffer held by two threads at once");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(pool.available(), pool.count());
        let held: Vec<_> = (0..8).map(|_| pool.take().unwrap()).collect();
        let distinct: std::collections::HashSet<u32> = held.iter().map(|b| b.index).collect();
        assert_eq!(distinct.len(), 8, "every buffer once");
        assert!(pool.take().is_none());
    }
}
