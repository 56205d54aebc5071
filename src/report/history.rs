//! One operation's percentiles over time, a point per step per env: the series behind
//! `GET /api/v1/operations/{function}/{operation}/history`.

use super::data::{Agg, Selection, load};
use super::{ReportError, TimeRange};
use crate::store::Store;
use crate::store::rollups::{HOUR_MS, floor_to};
use serde::Serialize;
use std::collections::BTreeMap;

/// Most points a history may have (range / step).
pub const MAX_POINTS: i64 = 2_000;
/// Shortest step.
pub const MIN_STEP_MS: i64 = 60_000;

/// One step.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Point {
    /// Start of the step, epoch ms (a multiple of the step).
    pub t_ms: i64,
    pub count: u64,
    pub errors: u64,
    pub avg: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// The points of one env (of one account and region); steps without events have no point.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EnvSeries {
    /// Left out for the default origin (a config without accounts answers as before).
    #[serde(skip_serializing_if = "crate::model::is_default_account")]
    pub account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub region: String,
    pub env: String,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct History {
    pub function: String,
    pub operation: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub step_ms: i64,
    pub approximate: bool,
    pub series: Vec<EnvSeries>,
}

/// Which env, account and region a history reads (None: all).
#[derive(Debug, Clone, Copy, Default)]
pub struct Only<'a> {
    pub env: Option<&'a str>,
    pub account: Option<&'a str>,
    pub region: Option<&'a str>,
}

/// The history of (function, operation) over `range` in steps of `step_ms` (the range's
/// start is aligned down to the step). Steps over 24 h ranges must be whole hours.
pub async fn history(
    store: &Store,
    function: &str,
    operation: &str,
    only: Only<'_>,
    range: TimeRange,
    step_ms: i64,
) -> Result<History, ReportError> {
    if step_ms < MIN_STEP_MS {
        return Err(ReportError::BadInput("step: must be at least 1m".into()));
    }
    let from_ms = floor_to(range.from_ms, step_ms);
    let points = (range.to_ms - from_ms + step_ms - 1) / step_ms;
    if points > MAX_POINTS {
        return Err(ReportError::BadInput(format!("step: {points} points over this range; at most {MAX_POINTS} (use a longer step)")));
    }
    if range.to_ms - from_ms > super::data::RAW_SPAN_MS && step_ms % HOUR_MS != 0 {
        return Err(ReportError::BadInput("step: must be a whole number of hours for ranges over 24h (rollups are hourly)".into()));
    }
    let sel = Selection {
        from_ms,
        to_ms: range.to_ms,
        env: only.env.map(str::to_string),
        account: only.account.map(str::to_string),
        region: only.region.map(str::to_string),
        function: Some(function.to_string()),
        operations: vec![operation.to_string()],
        step_ms: Some(step_ms),
        invocations: false,
        ..Selection::default()
    };
    let loaded = load(store, &sel).await?;
    let approximate = loaded.approximate();
    let mut per: BTreeMap<(String, String, String), BTreeMap<i64, Agg>> = BTreeMap::new();
    for (k, agg) in loaded.groups {
        per.entry((k.env, k.account, k.region)).or_default().entry(k.bucket_ms).or_default().merge(agg);
    }
    let series = per
        .into_iter()
        .map(|((env, account, region), buckets)| EnvSeries {
            account,
            region,
            env,
            points: buckets
                .into_iter()
                .map(|(t_ms, mut a)| {
                    let q = a.quantiles(&[0.5, 0.95, 0.99]);
                    Point { t_ms, count: a.counts.count, errors: a.counts.errors, avg: a.counts.mean(), p50: q[0], p95: q[1], p99: q[2], max: a.counts.max() }
                })
                .collect(),
        })
        .collect();
    Ok(History { function: function.into(), operation: operation.into(), from_ms, to_ms: range.to_ms, step_ms, approximate, series })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Source, TimingEvent};
    use crate::store::Batch;

    #[tokio::test]
    async fn points_per_step_and_env_and_bounds() {
        let store = Store::open_memory().await.unwrap();
        let t0 = 1_735_689_600_000;
        let events = (0..120)
            .map(|i| TimingEvent {
                time_ms: t0 + i * 60_000,
                env: if i % 2 == 0 { "Dev" } else { "PROD" }.into(),
                function: "GDSH".into(),
                operation: "Bedrock.InvokeModel".into(),
                source: Source::Xray,
                duration_s: 1.0 + (i / 60) as f64,
                request_id: None,
                trace_id: None,
                function_version: None,
                cold_start: false,
                error: false,
                idem_key: format!("k{i}"),
                attributes: vec![],
            })
            .collect();
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        let range = TimeRange { from_ms: t0 + 1, to_ms: t0 + 2 * HOUR_MS };
        let h = history(&store, "GDSH", "Bedrock.InvokeModel", Only::default(), range, HOUR_MS).await.unwrap();
        assert_eq!(h.from_ms, t0);
        assert_eq!(h.series.len(), 2);
        let dev = &h.series[0];
        assert_eq!(dev.env, "Dev");
        assert_eq!(dev.points.iter().map(|p| (p.t_ms, p.count, p.p95)).collect::<Vec<_>>(), [(t0, 30, 1.0), (t0 + HOUR_MS, 30, 2.0)]);
        let only = history(&store, "GDSH", "Bedrock.InvokeModel", Only { env: Some("PROD"), ..Only::default() }, range, 30 * 60_000).await.unwrap();
        assert_eq!((only.series.len(), only.series[0].points.len()), (1, 4));
        assert!(history(&store, "GDSH", "x", Only::default(), range, 1_000).await.is_err());
        let long = TimeRange { from_ms: t0, to_ms: t0 + 30 * 86_400_000 };
        assert!(history(&store, "GDSH", "x", Only::default(), long, 60_000).await.unwrap_err().to_string().contains("points"));
        assert!(history(&store, "GDSH", "x", Only::default(), long, 90 * 60_000).await.unwrap_err().to_string().contains("whole number of hours"));
    }
}
