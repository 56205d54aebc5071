//! Running long-lived tasks: each runs under the shared shutdown token; a task that fails
//! or panics is logged, counted and restarted with backoff, and never takes the daemon down.

use crate::metrics::Metrics;
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A task name made at start for one of many tasks of a kind (`logs:prod/eu-west-1`,
/// `cloudwatch:prod/eu-west-1`): the supervisor's metrics and logs keep `&'static str`
/// names, and these are made once per task, never per round.
pub fn task_name(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

/// Spawns `make()` on the tracker and keeps it running until `shutdown` is cancelled.
/// A task that returns `Ok(())` before shutdown is done and is not restarted.
pub fn spawn_supervised<F, Fut>(
    tracker: &TaskTracker,
    shutdown: CancellationToken,
    metrics: Metrics,
    name: &'static str,
    mut make: F,
) where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    tracker.spawn(async move {
        let mut failures = 0u32;
        loop {
            // A panic inside the task surfaces as a JoinError instead of unwinding into us.
            let result = tokio::spawn(make()).await;
            if shutdown.is_cancelled() {
                break;
            }
            let error = match result {
                Ok(Ok(())) => break,
                Ok(Err(e)) => format!("{e:#}"),
                Err(join) => format!("task panicked: {join}"),
            };
            failures += 1;
            metrics.task_restarts.with_label_values(&[name]).inc();
            let delay = crate::aws::backoff(failures.min(6), 1.0).max(Duration::from_secs(1));
            tracing::error!(task = name, %error, restart_in_ms = delay.as_millis() as u64, "Task failed; restarting.");
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        tracing::debug!(task = name, "Task stopped.");
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_failing_task_is_restarted_and_counted() {
        let tracker = TaskTracker::new();
        let token = CancellationToken::new();
        let metrics = Metrics::new();
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        spawn_supervised(&tracker, token.clone(), metrics.clone(), "flaky", move || {
            let r = r.clone();
            async move {
                if r.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("boom");
                }
                Ok(())
            }
        });
        tracker.close();
        tokio::time::timeout(Duration::from_secs(60), tracker.wait()).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(metrics.task_restarts.with_label_values(&["flaky"]).get(), 2);
    }
}
