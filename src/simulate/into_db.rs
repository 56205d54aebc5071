//! `simulate --into-db`: writes the history straight into a SQLite store instead of an AWS
//! endpoint. The executions are generated and rendered as for AWS, then their log lines go
//! through the tailer's own parser, attribution and commit (`process_page`, `Store::commit`);
//! no X-Ray, no AWS call. Days of history in seconds, for tests of learned baselines.

use super::*;
use crate::attribute::Attributor;
use crate::sources::logs::process::{PageEvent, StreamMemory, process_page};
use crate::store::{Batch, OpenMode, Store};
use std::collections::HashMap;
use std::path::Path;

/// Events committed together.
const COMMIT_EVENTS: usize = 10_000;

/// The deployment the history claims: each environment its own version (its index + 1).
fn fake_deployment(envs: &[String]) -> Deployment {
    let versions = ATLAS
        .iter()
        .flat_map(|f| envs.iter().enumerate().map(move |(i, e)| ((f.name.to_string(), e.clone()), (i + 1).to_string())))
        .collect();
    Deployment { region: "us-east-1".into(), account: "123456789012".into(), versions }
}

/// Writes `settings.duration` of history ending now into the store at `path` (created if
/// missing).
pub async fn write_into_db(path: &Path, settings: Settings) -> anyhow::Result<Summary> {
    use anyhow::Context as _;
    let store = Store::open(path, OpenMode::Writer, 4096).await.with_context(|| format!("opening {}", path.display()))?;
    let result = write_history(&store, settings).await;
    store.close().await;
    result
}

/// Records the aliases, then commits what a blocking thread generates and parses, one batch
/// in flight: parsing and SQLite overlap, as in `ingest`.
async fn write_history(store: &Store, settings: Settings) -> anyhow::Result<Summary> {
    let t0 = now_ms();
    let deployment = fake_deployment(&settings.envs);
    // The aliases, seen routing before the history starts: every event is attributed.
    let seen_ms = t0 - settings.duration.as_millis() as i64 - 3_600_000;
    for f in &ATLAS {
        let routes: Vec<(String, String, f64)> =
            settings.envs.iter().map(|e| (e.clone(), deployment.versions[&(f.name.to_string(), e.clone())].clone(), 1.0)).collect();
        store.record_aliases(f.name, &routes, seen_ms).await?;
    }
    let attributor = Attributor::new(&crate::config::EnvironmentsConfig::default());
    attributor.set_history(store.alias_history().await?);
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let producer = tokio::task::spawn_blocking(move || parse_history(settings, deployment, &attributor, t0, &tx));
    let mut committed = Ok(());
    while let Some(batch) = rx.recv().await {
        if let Err(e) = store.commit(&batch).await {
            committed = Err(e);
            break;
        }
    }
    // A failed commit: the producer sees the channel closed and stops.
    drop(rx);
    let summary = producer.await?;
    committed?;
    tracing::info!(executions = summary.executions.values().sum::<u64>(), log_events = summary.log_events, "Wrote the simulated history into the store.");
    Ok(summary)
}

/// Generates the history ending at `t0` (what has finished by then), renders its log lines
/// and parses them a time slice at a time, handing batches of about [`COMMIT_EVENTS`]
/// events to `tx`.
fn parse_history(settings: Settings, deployment: Deployment, attributor: &Attributor, t0: i64, tx: &tokio::sync::mpsc::Sender<Batch>) -> Summary {
    let mut summary = Summary { region: deployment.region.clone(), account: deployment.account.clone(), seed: settings.seed, ..Default::default() };
    for ((f, e), v) in &deployment.versions {
        summary.versions.entry(f.clone()).or_default().insert(e.clone(), v.clone());
    }
    let history = attributor.history();
    let mut done = Generator::new(settings.clone(), deployment, t0).until(t0);
    done.retain(|e| e.end_us / 1000 <= t0);
    // Per log group: its streams' memories (invocations span pages) and the next event id.
    let mut groups: HashMap<String, (HashMap<String, StreamMemory>, u64)> = HashMap::new();
    let mut pending = Batch::default();
    for slice in history_slices(&done, settings.duration) {
        let mut pages: BTreeMap<String, Vec<PageEvent>> = BTreeMap::new();
        for exec in slice {
            summary.count(exec);
            for l in log_lines(exec) {
                summary.first_event_ms = Some(summary.first_event_ms.map_or(l.time_ms, |t| t.min(l.time_ms)));
                summary.last_event_ms = Some(summary.last_event_ms.map_or(l.time_ms, |t| t.max(l.time_ms)));
                summary.log_events += 1;
                let (_, next_id) = groups.entry(l.group.clone()).or_default();
                // Zero-padded: within a millisecond, ids sort in write order, as CloudWatch's do;
                // the run's start first, so a second run into the same store adds its own.
                let event_id = format!("{t0:015}{next_id:020}");
                *next_id += 1;
                pages.entry(l.group).or_default().push(PageEvent { stream: l.stream, time_ms: l.time_ms, event_id, message: l.message });
            }
        }
        for (group, events) in pages {
            let (streams, _) = groups.entry(group.clone()).or_default();
            let (batch, _) = process_page(&group, events, streams, attributor, &history, t0);
            pending.events.extend(batch.events);
            pending.annotations.extend(batch.annotations);
            pending.rejections.extend(batch.rejections);
        }
        if pending.events.len() >= COMMIT_EVENTS && tx.blocking_send(std::mem::take(&mut pending)).is_err() {
            return summary;
        }
    }
    if !pending.is_empty() {
        let _ = tx.blocking_send(pending);
    }
    summary.traces = 0; // no X-Ray
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::events::EventFilter;

    const GDSH: &str = "GenerateDynamicScenarioHandler";

    fn filter<'a>(env: &'a str, operations: &'a [&'a str], from_ms: i64) -> EventFilter<'a> {
        EventFilter { from_ms, to_ms: i64::MAX, env: Some(env), function: Some(GDSH), account: None, region: None, operations }
    }

    #[tokio::test]
    async fn days_of_history_land_in_the_store_attributed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let slow = vec![SlowRule::parse("GenerateDynamicScenarioHandler/Bedrock.InvokeModel@Dev=9s,from=-30m").unwrap()];
        let settings = Settings { duration: Duration::from_secs(2 * 86_400), rate_per_s: 30.0 / 3600.0, seed: 7, slow, ..Settings::default() };
        let summary = write_into_db(&path, settings).await.unwrap();
        assert!(summary.log_events > 0 && summary.invocations > 0, "{summary:?}");

        let store = Store::open(&path, OpenMode::Writer, 4096).await.unwrap();
        for env in ["Dev", "PROD"] {
            for op in ["BedrockCallDuration", "Lambda.Duration"] {
                let rows = store.slowest_events(filter(env, &[op], 0), 5_000).await.unwrap();
                // About 30 an hour for 48 hours: some 1,440.
                assert!(rows.len() > 1_000, "{env} {op}: {} events", rows.len());
                let (first, last) = (rows.iter().map(|r| r.time_ms).min().unwrap(), rows.iter().map(|r| r.time_ms).max().unwrap());
                assert!(last - first >= 40 * 3_600_000, "{env} {op}: spans {} h", (last - first) / 3_600_000);
            }
        }
        let oldest = store.oldest_event_ms().await.unwrap().unwrap();
        assert!(now_ms() - oldest >= 40 * 3_600_000, "oldest event {} h ago", (now_ms() - oldest) / 3_600_000);
        assert!(store.count_events(None).await.unwrap() as u64 >= summary.invocations);
        // The slowdown: Dev's Bedrock calls of the last half hour (less a margin), not PROD's.
        let recent = now_ms() - 25 * 60_000;
        let dev = store.slowest_events(filter("Dev", &["BedrockCallDuration"], recent), 100).await.unwrap();
        assert!(!dev.is_empty() && dev.iter().all(|r| r.duration_s > 5.0), "{dev:?}");
        let prod = store.slowest_events(filter("PROD", &["BedrockCallDuration"], recent), 1).await.unwrap();
        assert!(prod.iter().all(|r| r.duration_s < 6.0), "{prod:?}");
        store.close().await;
    }
}
