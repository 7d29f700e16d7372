//! A task that follows the journal beside the run (the alert dispatcher, the checkpoint witnesses): started
//! on a subscription of its own, told to finish at the run's end, and given a bounded time to send what it
//! still holds.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Follower {
    finish: CancellationToken,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Follower {
    /// Spawns `run(finish)`: the task reads its feed until `finish` is cancelled, then drains what is queued.
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(run: impl FnOnce(CancellationToken) -> F) -> Self {
        let finish = CancellationToken::new();
        let task = tokio::spawn(run(finish.clone()));
        Self {
            finish,
            task: tokio::sync::Mutex::new(Some(task)),
        }
    }

    /// Tells the task to finish and waits at most `limit` for it; false when it had to be stopped then
    /// (what it still held is not sent). Idempotent: a second call finds nothing to wait for.
    pub async fn drain(&self, limit: Duration) -> bool {
        self.finish.cancel();
        let task = self.task.lock().await.take();
        if let Some(mut t) = task
            && tokio::time::timeout(limit, &mut t).await.is_err()
        {
            t.abort();
            return false;
        }
        true
    }
}
