//! `report stats --operation BedrockCallDuration`: one operation's avg/min/max/p95/p99 by
//! function (the seed's third Logs Insights query), and by function and env.

use super::data::{Agg, Selection, load};
use super::table::{Table, WIDTH};
use super::{csv_line, secs};
use crate::store::{Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;

/// One function (over every env and account, `env` null) or one (function, account,
/// region, env).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatsRow {
    pub function: String,
    pub env: Option<String>,
    /// The account and region of an env row; absent on function rows and for the default
    /// origin (a config without accounts answers as before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub count: u64,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub p95: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatsReport {
    pub from_ms: i64,
    pub to_ms: i64,
    pub operation: String,
    pub approximate: bool,
    /// Per function over every env, slowest p95 first.
    pub by_function: Vec<StatsRow>,
    /// Per (function, env), in the order of `by_function`, then env.
    pub by_function_env: Vec<StatsRow>,
}

fn row(function: &str, place: Option<(&str, &str, &str)>, mut agg: Agg) -> StatsRow {
    let q = agg.quantiles(&[0.95, 0.99]);
    let origin = place.filter(|(a, r, _)| crate::model::shows_origin([(*a, *r)]));
    StatsRow {
        function: function.to_string(),
        env: place.map(|(_, _, e)| e.to_string()),
        account: origin.map(|(a, _, _)| a.to_string()),
        region: origin.map(|(_, r, _)| r.to_string()),
        count: agg.counts.count,
        avg: agg.counts.mean(),
        min: agg.counts.min(),
        max: agg.counts.max(),
        p95: q[0],
        p99: q[1],
    }
}

/// Builds the report for `operation` over `sel`'s range, env and function.
pub async fn report(store: &Store, sel: &Selection, operation: &str) -> Result<StatsReport, StoreError> {
    let sel = Selection { operations: vec![operation.to_string()], step_ms: None, ..sel.clone() };
    let loaded = load(store, &sel).await?;
    let approximate = loaded.approximate();
    let mut per_env: BTreeMap<(String, String, String, String), Agg> = BTreeMap::new();
    for (k, agg) in loaded.groups {
        per_env.entry((k.function, k.env, k.account, k.region)).or_default().merge(agg);
    }
    let mut per_function: BTreeMap<String, Agg> = BTreeMap::new();
    for ((function, ..), agg) in &per_env {
        per_function.entry(function.clone()).or_default().merge(agg.clone());
    }
    let mut by_function: Vec<StatsRow> = per_function.into_iter().map(|(f, a)| row(&f, None, a)).collect();
    by_function.sort_by(|a, b| b.p95.total_cmp(&a.p95).then_with(|| a.function.cmp(&b.function)));
    let order: BTreeMap<&str, usize> = by_function.iter().enumerate().map(|(i, r)| (r.function.as_str(), i)).collect();
    let mut by_function_env: Vec<StatsRow> = per_env.into_iter().map(|((f, e, acc, reg), a)| row(&f, Some((&acc, &reg, &e)), a)).collect();
    by_function_env.sort_by_key(|r| (order[r.function.as_str()], r.env.clone(), r.account.clone(), r.region.clone()));
    Ok(StatsReport { from_ms: sel.from_ms, to_ms: sel.to_ms, operation: operation.to_string(), approximate, by_function, by_function_env })
}

/// One row per function (ENV `*`), followed by its envs when there are several.
pub fn table(r: &StatsReport) -> String {
    // A PLACE column (account/region) only when some row has one.
    let places = r.by_function_env.iter().any(|e| e.account.is_some());
    let mut t = Table::new().text("FUNCTION", 14).text("ENV", 4);
    if places {
        t = t.text("PLACE", 8);
    }
    let mut t = t.num("COUNT").num("AVG").num("MIN").num("MAX").num("P95").num("P99");
    let cells = |s: &StatsRow, env: &str| {
        let mut c = vec![s.function.clone(), env.to_string()];
        if places {
            c.push(match (&s.account, &s.region) {
                (Some(a), Some(r)) => format!("{a}/{r}"),
                _ if s.env.is_none() => "*".into(),
                _ => String::new(),
            });
        }
        c.extend([s.count.to_string(), secs(s.avg), secs(s.min), secs(s.max), secs(s.p95), secs(s.p99)]);
        c
    };
    for f in &r.by_function {
        let envs: Vec<&StatsRow> = r.by_function_env.iter().filter(|e| e.function == f.function).collect();
        if envs.len() == 1 {
            t.row(cells(envs[0], envs[0].env.as_deref().unwrap_or("")));
            continue;
        }
        t.row(cells(f, "*"));
        for e in envs {
            t.row(cells(e, e.env.as_deref().unwrap_or("")));
        }
    }
    format!("{}:\n{}", r.operation, t.render(WIDTH))
}

pub fn csv(r: &StatsReport) -> String {
    // Account and region go last, and only when some row has them (as in `report top`).
    let places = r.by_function_env.iter().any(|e| e.account.is_some());
    let mut head = vec!["operation", "function", "env", "count", "avg", "min", "max", "p95", "p99"];
    if places {
        head.extend(["account", "region"]);
    }
    let mut s = csv_line(&head);
    for x in r.by_function.iter().chain(&r.by_function_env) {
        let mut cells = vec![
            r.operation.clone(),
            x.function.clone(),
            x.env.clone().unwrap_or_else(|| "*".into()),
            x.count.to_string(),
            x.avg.to_string(),
            x.min.to_string(),
            x.max.to_string(),
            x.p95.to_string(),
            x.p99.to_string(),
        ];
        if places {
            cells.extend([x.account.clone().unwrap_or_default(), x.region.clone().unwrap_or_default()]);
        }
        s.push_str(&csv_line(&cells));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Source, TimingEvent};
    use crate::store::Batch;

    #[tokio::test]
    async fn by_function_and_by_env() {
        let store = Store::open_memory().await.unwrap();
        let mut events = Vec::new();
        for i in 0..10i64 {
            for (function, env, v) in [("GDSH", "Dev", 9.0), ("GDSH", "PROD", 3.0), ("LFH", "PROD", 0.6)] {
                events.push(TimingEvent {
                    time_ms: 100 + i,
                    env: env.into(),
                    function: function.into(),
                    operation: "BedrockCallDuration".into(),
                    source: Source::Logs,
                    duration_s: v + i as f64 / 100.0,
                    request_id: None,
                    trace_id: None,
                    function_version: None,
                    cold_start: false,
                    error: false,
                    idem_key: format!("{function}{env}{i}"),
                    attributes: vec![],
                });
            }
        }
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
        let r = report(&store, &Selection { from_ms: 0, to_ms: 1_000, ..Selection::default() }, "BedrockCallDuration").await.unwrap();
        assert_eq!(r.by_function.iter().map(|x| (x.function.as_str(), x.count)).collect::<Vec<_>>(), [("GDSH", 20), ("LFH", 10)]);
        assert_eq!(r.by_function[0].max, 9.09);
        assert_eq!(r.by_function[0].min, 3.0);
        assert_eq!(r.by_function_env.iter().map(|x| x.env.as_deref().unwrap()).collect::<Vec<_>>(), ["Dev", "PROD", "PROD"]);
        assert!((r.by_function_env[1].avg - 3.045).abs() < 1e-9);
        let text = table(&r);
        assert_eq!(text.lines().count(), 1 + 1 + 3 + 1, "{text}");
    }
}
