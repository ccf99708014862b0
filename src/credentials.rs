//! The credentials of the network inputs as the I/O workers see them:
//! values that a reload at SIGHUP replaces (`crate::reload`), and the
//! bounded read of the small files they come from.
//!
//! A [`Published`] cell holds the current value (a TLS server
//! configuration, an OTLP input's bearer tokens); an I/O worker holds a
//! [`Latest`] view of it and asks it for the value at an accept or a
//! request's token check: one atomic load while nothing changed, and a
//! mutex taken only for the pointer copy after a reload. The one writer,
//! the signal thread, reads and checks the files before it takes the
//! mutex, so no I/O worker ever waits on a file. Connections open at the
//! reload keep the configuration their session started with.
//!
//! Bounds: a cell holds one value; a reload replaces it (the old one is
//! freed once the last connection using it ends). Files are read with
//! [`read_bounded`].

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A value that a reload replaces: the one writer (the signal thread)
/// stores a new `Arc` and bumps the generation; readers hold a [`Latest`].
pub(crate) struct Published<T> {
    /// Bumped after each store of `value` (Release), read by [`Latest`]
    /// (Acquire): a reader that sees a new generation finds its value.
    generation: AtomicU64,
    /// Locked only to copy or replace the pointer.
    value: Mutex<Arc<T>>,
}

impl<T> Published<T> {
    pub fn new(value: T) -> Arc<Self> {
        Arc::new(Self {
            generation: AtomicU64::new(0),
            value: Mutex::new(Arc::new(value)),
        })
    }

    /// Replaces the value (the signal thread, at a reload).
    pub fn store(&self, value: T) {
        let value = Arc::new(value);
        // The old value is dropped after the lock is let go.
        let old = std::mem::replace(&mut *self.lock(), value);
        self.generation.fetch_add(1, Ordering::Release);
        drop(old);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Arc<T>> {
        // A panic while the lock is held cannot leave the pointer half
        // written: take it as it is.
        self.value
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A reader's view, starting at the current value.
    pub fn latest(self: &Arc<Self>) -> Latest<T> {
        let generation = self.generation.load(Ordering::Acquire);
        let value = Arc::clone(&self.lock());
        Latest {
            source: Arc::clone(self),
            generation,
            value,
        }
    }
}

/// An I/O worker's view of a [`Published`] value.
pub(crate) struct Latest<T> {
    source: Arc<Published<T>>,
    /// The generation `value` was taken at.
    generation: u64,
    value: Arc<T>,
}

impl<T> Latest<T> {
    /// The current value: the one held, or the one a reload published
    /// since (taken now).
    pub fn get(&mut self) -> &Arc<T> {
        let generation = self.source.generation.load(Ordering::Acquire);
        if generation != self.generation {
            self.value = Arc::clone(&self.source.lock());
            self.generation = generation;
        }
        &self.value
    }
}

/// The bytes of the small file `path` (a certificate, a key, a token
/// file): a regular file of at most `max_bytes`. `Err` is `{what}
/// {path}: why`.
pub(crate) fn read_bounded(what: &str, path: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let metadata = std::fs::metadata(path).map_err(|error| format!("{what} {shown}: {error}"))?;
    if !metadata.is_file() || metadata.len() > max_bytes {
        return Err(format!(
            "{what} {shown}: not a regular file of at most {max_bytes} bytes"
        ));
    }
    std::fs::read(path).map_err(|error| format!("{what} {shown}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_sees_a_published_value_at_its_next_get_and_keeps_its_own_until_then() {
        let published = Published::new(1);
        let mut first = published.latest();
        let held = Arc::clone(first.get());
        assert_eq!(*held, 1);
        published.store(2);
        // What a connection took before the reload stays as it was.
        assert_eq!(*held, 1);
        assert_eq!(**first.get(), 2);
        let mut second = published.latest();
        assert_eq!(**second.get(), 2);
        published.store(3);
        published.store(4);
        assert_eq!(**second.get(), 4);
        assert_eq!(**first.get(), 4);
    }
}
