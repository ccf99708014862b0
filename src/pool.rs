//! Fixed buffer pools, allocated at start-up and recycled through the stages.
//!
//! A [`BufferPool`] holds every buffer an input will ever use. A
//! [`PooledBuffer`] owns one of them while it travels I/O → CPU → outputs;
//! dropping it (when the last output is done with its batch) puts the buffer
//! back and wakes the pool's owner, the input's I/O worker, if it sleeps
//! waiting for one.

use crate::ring::Waker;
use crossbeam_queue::ArrayQueue;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

pub(crate) struct BufferPool {
    /// Free buffers. Its capacity equals `count`, so returning a buffer can
    /// never fail: every buffer that exists fits.
    free: ArrayQueue<Box<[u8]>>,
    #[cfg_attr(not(test), allow(dead_code))]
    count: usize,
    /// Woken when a buffer comes back.
    owner: Arc<Waker>,
}

impl BufferPool {
    /// Allocates `count` buffers of `buffer_bytes`. The pages are touched
    /// only when first written, so RSS grows to the pool size at most.
    pub fn new(count: usize, buffer_bytes: usize, owner: Arc<Waker>) -> Arc<Self> {
        assert!(count > 0 && buffer_bytes > 0);
        let free = ArrayQueue::new(count);
        for _ in 0..count {
            let pushed = free.push(vec![0u8; buffer_bytes].into_boxed_slice());
            assert!(pushed.is_ok(), "pool queue holds every buffer");
        }
        Arc::new(Self { free, count, owner })
    }

    pub fn take(self: &Arc<Self>) -> Option<PooledBuffer> {
        self.free.pop().map(|data| PooledBuffer {
            data: Some(data),
            pool: Arc::clone(self),
        })
    }

    pub fn available(&self) -> usize {
        self.free.len()
    }

    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.count
    }
}

/// One buffer of a pool; returns itself to the pool when dropped.
pub(crate) struct PooledBuffer {
    /// Always `Some` until `drop` takes it back to the pool.
    data: Option<Box<[u8]>>,
    pool: Arc<BufferPool>,
}

impl Deref for PooledBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.data.as_deref().expect("buffer present until drop")
    }
}

impl DerefMut for PooledBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.data.as_deref_mut().expect("buffer present until drop")
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(data) = self.data.take() {
            let returned = self.pool.free.push(data);
            assert!(returned.is_ok(), "a pool never holds more than it made");
            self.pool.owner.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_buffer_returns_to_its_pool() {
        let pool = BufferPool::new(3, 64, Waker::for_test());
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        let c = pool.take().unwrap();
        assert!(
            pool.take().is_none(),
            "a pool hands out no more than it holds"
        );
        assert_eq!(pool.available(), 0);
        drop(b);
        assert_eq!(pool.available(), 1);
        let shared = Arc::new(a);
        let clone = Arc::clone(&shared);
        drop(shared);
        assert_eq!(pool.available(), 1, "still referenced by one output");
        drop(clone);
        drop(c);
        assert_eq!(pool.available(), pool.count());
        assert_eq!(pool.take().unwrap().len(), 64);
    }
}
