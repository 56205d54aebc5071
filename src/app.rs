//! Builds the running daemon from a validated config: opens the store (and, on a shared
//! PostgreSQL, starts the lease keeper), creates the AWS clients, spawns every task under
//! one shutdown token, serves HTTP, and on shutdown waits (bounded) for tasks to flush
//! before giving its leases back and closing the database.

use crate::config::Config;
use crate::health::Health;
use crate::http::AppState;
use crate::http::router::app;
use crate::metrics::Metrics;
use crate::services::Services;
use crate::store::{OpenMode, Store};
use crate::clock::now_ms;
use crate::cluster::keeper::KeeperConfig;
use crate::cluster::work::Work;
use crate::supervise::spawn_supervised;
use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for tasks to flush.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Runs the daemon until `shutdown` resolves. Returns once everything is flushed.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let metrics = Metrics::new();
    let health = Health::default();
    // Never names the URL (it may hold a password).
    let store = Store::connect(&config.storage, OpenMode::Writer)
        .await
        .with_context(|| if config.storage.url.is_empty() { format!("opening the database {}", config.storage.path) } else { "connecting to storage.url".to_string() })?
        .limit_requests(config.http.request_timeout);
    let sdk = crate::aws::sdk_config(&config.aws).await;

    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    // The keeper stops last: a node gives its leases back once its tasks have flushed.
    let keeper_token = CancellationToken::new();
    let keeper_tracker = TaskTracker::new();
    let work = match &store {
        Store::Postgres(pg) => {
            let cfg = KeeperConfig {
                node_id: crate::cluster::node_id(&config.cluster.node_id),
                ttl: config.cluster.lease_ttl,
                sticky: vec![crate::cluster::EVALUATOR.to_string()],
            };
            tracing::info!(node = %cfg.node_id, lease_ttl_ms = cfg.ttl.as_millis() as u64, "Sharing the PostgreSQL history; the work is split by leases.");
            let work = Work::start(pg.clone(), cfg, vec![crate::cluster::EVALUATOR.to_string()], &keeper_tracker, keeper_token.clone());
            tracker.spawn(crate::cluster::status::run(work.clone(), config.cluster.lease_ttl, health.clone(), metrics.clone(), token.clone()));
            work
        }
        Store::Sqlite(_) => Work::solo(),
    };
    let first_scope = crate::scope::scopes(&config).into_iter().next().expect("a config has at least one scope");
    let services = Services {
        config: config.clone(),
        sdk,
        scope: Arc::new(first_scope),
        store: store.clone(),
        metrics: metrics.clone(),
        health: health.clone(),
        tracker: tracker.clone(),
        shutdown: token.clone(),
        work: work.clone(),
    };

    let listener = tokio::net::TcpListener::bind(&config.http.listen)
        .await
        .with_context(|| format!("binding http.listen {}", config.http.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(listen = %local, "Serving /metrics, /healthz, /readyz and /api/v1.");

    let evaluation = crate::evaluate::Shared::default();
    let exposition = crate::sinks::prometheus::PrometheusSink::new(config.metrics.max_series, &metrics);
    let state = AppState::new(config.clone(), metrics.clone(), store.clone(), health.clone(), evaluation.clone(), exposition.clone())
        .with_work(work.clone());

    // Retention (in a fleet, by the holder of its lease).
    {
        let (store, metrics, token, config, work) = (store.clone(), metrics.clone(), token.clone(), config.clone(), work.clone());
        spawn_supervised(&tracker, token.clone(), metrics.clone(), "retention", move || {
            let (store, metrics, token, config, work) = (store.clone(), metrics.clone(), token.clone(), config.clone(), work.clone());
            async move {
                work.while_held(crate::cluster::RETENTION, &token, |stop, _| retention_loop(store.clone(), metrics.clone(), config.clone(), stop))
                    .await
            }
        });
    }

    // Rollups: hourly (and daily) per-series summaries for long-range reports (in a fleet,
    // by the holder of its lease).
    {
        let (store, token, config, m, work) = (store.clone(), token.clone(), config.clone(), metrics.clone(), work.clone());
        spawn_supervised(&tracker, token.clone(), metrics.clone(), "rollups", move || {
            let (store, token, config, m, work) = (store.clone(), token.clone(), config.clone(), m.clone(), work.clone());
            async move {
                work.while_held(crate::cluster::ROLLUPS, &token, |stop, _| {
                    crate::store::rollups::run_rollups(store.clone(), config.clone(), m.clone(), stop)
                })
                .await
            }
        });
    }

    // Evaluation: windows, budgets, alert state; alert receivers behind their own queues,
    // and the per-series exposition the evaluator hands each evaluation.
    {
        let sink = crate::sinks::alerts::spawn(config.clone(), metrics.clone(), &tracker, token.clone());
        let exposition: Arc<dyn crate::evaluate::Publish> = Arc::new(exposition.clone());
        let (store, config, metrics, evaluation, token) = (store.clone(), config.clone(), metrics.clone(), evaluation.clone(), token.clone());
        let work = work.clone();
        spawn_supervised(&tracker, token.clone(), metrics.clone(), "evaluator", move || {
            let evaluator = crate::evaluate::run::Evaluator::new(
                store.clone(),
                config.clone(),
                metrics.clone(),
                evaluation.clone(),
                Some(sink.clone()),
                Some(exposition.clone()),
            )
            .under(work.clone())
            .with_baselines(Arc::new(crate::report::anomalies::StoreBaselines { store: store.clone() }));
            crate::evaluate::run::run(evaluator, token.clone())
        });
    }

    crate::sources::spawn_all(&services).await;

    // CloudWatch metrics publisher (only when cloudwatch.enabled): events since the last
    // publish, and the evaluator's budget statuses.
    crate::sinks::cloudwatch::spawn(&services, evaluation.subscribe());

    // HTTP keeps answering until every other task has stopped, so a scrape during shutdown works.
    let http_token = CancellationToken::new();
    let server = {
        let http_token = http_token.clone();
        tokio::spawn(async move {
            // Answers are small and written at once: send them without waiting for the
            // peer's ACK of the last segment (Nagle), which only adds latency to probes.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app(state))
                .with_graceful_shutdown(async move { http_token.cancelled().await })
                .await
        })
    };

    tokio::select! {
        _ = shutdown => tracing::info!("Shutdown requested; flushing."),
        _ = token.cancelled() => {}
    }
    token.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
        tracing::warn!(grace_ms = SHUTDOWN_GRACE.as_millis() as u64, "Tasks did not stop in time; closing anyway.");
    }
    keeper_token.cancel();
    keeper_tracker.close();
    if tokio::time::timeout(Duration::from_secs(3), keeper_tracker.wait()).await.is_err() {
        tracing::warn!("Could not give the leases back in time; the other nodes take them after the TTL.");
    }
    http_token.cancel();
    match tokio::time::timeout(Duration::from_secs(2), server).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server ended with an error."),
        Err(_) => tracing::warn!("HTTP connections still open at shutdown; dropping them."),
        _ => {}
    }
    store.close().await;
    tracing::info!("Stopped.");
    Ok(())
}

/// What a retention pass at `now` deletes, from the config (see `store::retention` for the
/// bound of every table).
pub fn retention_plan(config: &Config, now: i64) -> crate::store::retention::RetentionPlan {
    use crate::store::retention::{REJECTED_MAX_ROWS, RetentionPlan, TRANSITIONS_MAX_ROWS};
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    // A stream's memory (the invocation its lines belong to) is needed while a re-read may
    // reach its events: the overlap every poll re-reads, or the reconciliation sweep's window,
    // plus the longest invocation before them.
    let reread = config.logs.ingestion_delay.max(config.logs.reconcile_window);
    RetentionPlan {
        events_before_ms: now.saturating_sub(ms(config.storage.retention)),
        transitions_before_ms: now.saturating_sub(ms(config.storage.rollup_retention)),
        streams_idle_before_ms: now.saturating_sub(ms(reread + crate::sources::logs::LONGEST_INVOCATION)),
        rejected_max_rows: REJECTED_MAX_ROWS,
        transitions_max_rows: TRANSITIONS_MAX_ROWS,
    }
}

async fn retention_loop(store: Store, metrics: Metrics, config: Arc<Config>, token: CancellationToken) -> anyhow::Result<()> {
    loop {
        match store.purge(&retention_plan(&config, now_ms())).await {
            Ok(p) => {
                for (table, n) in p.by_table() {
                    if n > 0 {
                        metrics.retention_deleted.with_label_values(&[table]).inc_by(n);
                    }
                }
                if p.total() > 0 {
                    tracing::info!(deleted = p.total(), events = p.events, streams = p.streams, "Retention removed old rows.");
                }
            }
            Err(e) => {
                metrics.store_errors.with_label_values(&[e.code()]).inc();
                tracing::warn!(error = %e, "Retention failed; will retry.");
            }
        }
        // After retention, so the figure shows what is kept (and the pages it freed).
        match store.storage_size().await {
            Ok(size) => {
                for (file, bytes) in [("database", size.database), ("free", size.free), ("wal", size.wal)] {
                    metrics.storage_bytes.with_label_values(&[file]).set(bytes.min(i64::MAX as u64) as i64);
                }
            }
            Err(e) => metrics.store_errors.with_label_values(&[e.code()]).inc(),
        }
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            _ = tokio::time::sleep(config.storage.retention_interval) => {}
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_states_live_as_long_as_a_reread_can_reach_them() {
        let mut config = Config::default();
        let now = 1_795_341_600_000;
        config.logs.ingestion_delay = Duration::from_secs(120);
        config.logs.reconcile_window = Duration::from_secs(3600);
        let plan = retention_plan(&config, now);
        assert_eq!(plan.streams_idle_before_ms, now - 3_600_000 - 900_000, "the sweep's window plus the longest invocation");
        config.logs.reconcile_window = Duration::ZERO;
        assert_eq!(retention_plan(&config, now).streams_idle_before_ms, now - 120_000 - 900_000, "without a sweep, the polls' overlap");
        assert_eq!(plan.events_before_ms, now - 30 * 86_400_000);
        assert_eq!(plan.transitions_before_ms, now - 400 * 86_400_000);
    }
}
