//! The engine's flush thread: writes what a store holds back on a timer of its own, so that no
//! call deciding a request falls due for that write (`store.flush_ms`).

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Store;
use crate::error::{Error, Result};

/// Flushes a store every interval until dropped; dropping it stops and joins the thread.
///
/// A flush that fails is not reported here: the store keeps what it held for the next flush,
/// and the next call that falls due (or the host's own `flush`) reports the failure.
pub struct Flusher {
    /// Dropped to stop the thread (its receiver then disconnects).
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// The process that started the thread: in a child forked since, there is no thread to join.
    pid: u32,
}

impl Flusher {
    /// Starts a thread (`astack-flush`) that calls `flush` every `every` until the `Flusher` is
    /// dropped.
    pub fn start(every: Duration, mut flush: impl FnMut() + Send + 'static) -> Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("astack-flush".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    flush();
                }
            })
            .map_err(|e| Error::Unavailable(format!("cannot start the flush thread: {e}")))?;
        Ok(Flusher { stop: Some(stop), thread: Some(thread), pid: std::process::id() })
    }

    /// Starts a thread that flushes `store` every `every`.
    pub fn for_store(store: Arc<dyn Store>, every: Duration) -> Result<Self> {
        Self::start(every, move || {
            let _ = store.flush();
        })
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if std::process::id() == self.pid {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    #[test]
    fn flushes_on_its_timer_until_dropped_then_releases_what_it_held() {
        let flushes = Arc::new(AtomicUsize::new(0));
        let counted = flushes.clone();
        let flusher = Flusher::start(Duration::from_millis(10), move || {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while flushes.load(Ordering::SeqCst) < 3 {
            assert!(Instant::now() < deadline, "three flushes in 10 s");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(flusher);
        assert_eq!(Arc::strong_count(&flushes), 1, "the thread is joined, its closure dropped");
        let flushed = flushes.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(flushes.load(Ordering::SeqCst), flushed, "no flush after the drop");
    }
}
