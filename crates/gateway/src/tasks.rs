//! The gateway's background tasks (outbox drain, catalog, links, deadline
//! recompute, refusal log, latency log, the command center's listener, the
//! archiver's workers and quarantine upload, each live recording's upload
//! and the live watchdog):
//! owned in one `JoinSet`, stopped together by one cancellation token and
//! joined on shutdown, so none outlives the gateway that started it and a
//! task that panicked is reported rather than lost.
//!
//! Cancelling a task drops it at its next await. Every one of them keeps
//! its state in the spool or in storage and resumes from there, exactly as
//! after a crash, so stopping one mid-operation loses nothing.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct Tasks {
    cancel: CancellationToken,
    set: Mutex<JoinSet<()>>,
    /// Tasks found panicked when reaped before shutdown.
    panicked: std::sync::atomic::AtomicUsize,
}

impl Tasks {
    pub fn new() -> Tasks {
        Tasks::default()
    }

    /// Cancelled when the gateway shuts down.
    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Runs `task` until it ends or the gateway shuts down.
    pub fn spawn(&self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let cancel = self.cancel.clone();
        let mut set = self.set.lock().expect("tasks");
        // Tasks that ended are reaped here (one per live recording over
        // days would otherwise pile up until shutdown), a panic reported.
        while let Some(r) = set.try_join_next() {
            if let Err(e) = r
                && e.is_panic()
            {
                tracing::error!("a background task panicked: {e}");
                self.panicked
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        set.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = task => tracing::info!(task = name, "background task ended"),
            }
        });
    }

    /// How many tasks are running.
    pub fn len(&self) -> usize {
        self.set.lock().expect("tasks").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cancels every task and waits up to `grace` for them to stop; any
    /// still running then is aborted. Returns how many panicked in all.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        self.cancel.cancel();
        let mut set = std::mem::take(&mut *self.set.lock().expect("tasks"));
        let mut panicked = self.panicked.load(std::sync::atomic::Ordering::Relaxed);
        let joined = tokio::time::timeout(grace, async {
            while let Some(r) = set.join_next().await {
                if let Err(e) = r
                    && e.is_panic()
                {
                    tracing::error!("a background task panicked: {e}");
                    panicked += 1;
                }
            }
        })
        .await;
        if joined.is_err() {
            tracing::warn!(left = set.len(), "background tasks still running; aborted");
            set.abort_all();
            while set.join_next().await.is_some() {}
        }
        panicked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_stops_every_task_and_counts_panics() {
        let tasks = Tasks::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        // A task that would run forever, and one that ends by itself.
        tasks.spawn("forever", async move {
            let _keep = tx;
            std::future::pending::<()>().await
        });
        tasks.spawn("short", async {});
        tasks.spawn("panics", async { panic!("boom") });
        assert_eq!(tasks.len(), 3);
        // Let the short and the panicking task finish first.
        tokio::task::yield_now().await;
        let panicked = tasks.shutdown(Duration::from_secs(10)).await;
        assert_eq!(panicked, 1);
        assert!(tasks.is_empty());
        // The forever task was dropped: its sender is gone.
        assert!(rx.recv().await.is_none());
        assert!(tasks.token().is_cancelled());
    }

    #[tokio::test]
    async fn a_task_that_ignores_cancellation_is_aborted_after_the_grace() {
        let tasks = Tasks::new();
        // Cancellation drops the future at its next await, so even a
        // stubborn future stops; the grace bounds the wait regardless.
        tasks.spawn("stubborn", async {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert_eq!(tasks.shutdown(Duration::from_secs(5)).await, 0);
        assert!(tasks.is_empty());
    }

    #[tokio::test]
    async fn tasks_that_ended_are_reaped_as_new_ones_start_and_panics_still_count() {
        let tasks = Tasks::new();
        for _ in 0..50 {
            tasks.spawn("short", async {});
        }
        tasks.spawn("panics", async { panic!("boom") });
        // Let them all run to their end.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        tasks.spawn("forever", std::future::pending());
        assert_eq!(tasks.len(), 1, "only the running task is held");
        assert_eq!(tasks.shutdown(Duration::from_secs(5)).await, 1);
    }
}
