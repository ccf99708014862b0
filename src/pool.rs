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
//! and so touch, every buffer of the pool).

use crate::ring::Waker;
use crate::source::SenderRuns;
use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub(crate) struct BufferPool {
    /// `count * buffer_bytes` bytes, mapped for the life of the pool.
    arena: NonNull<u8>,
    buffer_bytes: usize,
    buffer_count: usize,
    /// The arena's mapping, unmapped with the pool (every `PooledBuffer`
    /// holds an `Arc` to the pool, so none is alive then).
    _map: memmap2::MmapRaw,
    /// Indexes of free buffers, a stack (see the module's doc). Its
    /// capacity, reserved at start, equals the buffer count, so returning
    /// a buffer never grows it: every buffer that exists fits. A lock is
    /// taken once per buffer handed over (one per up to a MiB of records),
    /// by the pool's owner and the threads returning buffers.
    free: Mutex<Vec<u32>>,
    /// Woken when a buffer comes back.
    owner: Arc<Waker>,
    /// One per buffer (same index), or none: the senders of the records a
    /// network input with `source=true` put in that buffer.
    senders: Box<[UnsafeCell<SenderRuns>]>,
}

// SAFETY: the arena is only read and written through `PooledBuffer`s, and
// each buffer index is owned by at most one `PooledBuffer` at a time (it is
// either in `free` or held by exactly one), so no two threads ever touch the
// same bytes without the handoff a ring or the free stack's lock provides.
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
        assert!(count > 0 && buffer_bytes > 0 && count <= u32::MAX as usize);
        let arena_bytes = count
            .checked_mul(buffer_bytes)
            .ok_or_else(|| std::io::Error::other("buffer pool size overflows"))?;
        let map: memmap2::MmapRaw = memmap2::MmapOptions::new()
            .len(arena_bytes)
            .map_anon()?
            .into();
        // Fewer TLB misses for the scanners; a hint only, so errors are ignored.
        let _ = map.advise(memmap2::Advice::HugePage);
        // Buffer 0 on top: handed out first.
        let mut free = Vec::with_capacity(count);
        free.extend((0..count as u32).rev());
        Ok(Arc::new(Self {
            arena: NonNull::new(map.as_mut_ptr()).expect("a mapping is never at null"),
            buffer_bytes,
            buffer_count: count,
            _map: map,
            free: Mutex::new(free),
            owner,
            senders: (0..if sender_runs > 0 { count } else { 0 })
                .map(|_| UnsafeCell::new(SenderRuns::with_capacity(sender_runs)))
                .collect(),
        }))
    }

    pub fn take(self: &Arc<Self>) -> Option<PooledBuffer> {
        self.free_buffers().pop().map(|index| PooledBuffer {
            index,
            pool: Arc::clone(self),
        })
    }

    pub fn available(&self) -> usize {
        self.free_buffers().len()
    }

    /// The free stack. Nothing panics while holding it, but a poisoned
    /// lock would still guard a consistent stack: it is used as it is.
    fn free_buffers(&self) -> MutexGuard<'_, Vec<u32>> {
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
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
        self.buffer_count
    }

    fn buffer_start(&self, index: u32) -> *mut u8 {
        // SAFETY: index < count, so the offset stays inside the arena.
        unsafe { self.arena.as_ptr().add(index as usize * self.buffer_bytes) }
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
        {
            let mut free = self.pool.free_buffers();
            assert!(
                free.len() < self.pool.buffer_count,
                "a pool never holds more than it made"
            );
            free.push(self.index);
        }
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
}
