//! `report bottleneck`: where the slowest traces' time went. Per workflow (the trace's root
//! span), the traces at or above the chosen percentile of total duration are taken, their
//! critical-path shares (`trace_attribution`, from the X-Ray poller) averaged per path
//! node, and drawn like the seed's "X-Ray Trace Timeline Example": the workflow, each
//! function with its share of the time, its operations, uninstrumented time shown as such,
//! and the node with the most time marked as the bottleneck.

use super::{csv_line, secs};
use crate::store::attribution::{StoredPath, TraceRange};
use crate::store::{Store, StoreError};
use serde::Serialize;
use std::collections::HashMap;

/// Most slow traces read per workflow.
pub const MAX_TRACES: i64 = 1_000;
/// Most workflows reported when none is named.
pub const MAX_WORKFLOWS: i64 = 5;
/// Trace ids listed per workflow.
const LISTED_TRACES: usize = 20;

/// What to look at.
#[derive(Debug, Clone, PartialEq)]
pub struct BottleneckQuery {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Only traces whose root span has this name.
    pub workflow: Option<String>,
    /// Only traces with an event in this env.
    pub env: Option<String>,
    /// Only traces of this account and region.
    pub account: Option<String>,
    pub region: Option<String>,
    /// Traces at or above this percentile of total duration (0 < p ≤ 100).
    pub percentile: f64,
}

/// A node on the critical path, averaged over the slow traces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub path: Vec<String>,
    pub function: String,
    pub operation: String,
    pub gap: bool,
    pub depth: usize,
    /// Mean self time over the slow traces (0 where a trace lacks the node), seconds.
    pub self_s: f64,
    /// self_s / avg_total_s.
    pub share: f64,
}

/// One operation of a function in the tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationShare {
    pub operation: String,
    pub gap: bool,
    pub self_s: f64,
    pub share: f64,
    pub bottleneck: bool,
}

/// A function (or the workflow itself, for time no function owns) in the tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionShare {
    pub function: String,
    /// The env most of the slow traces' events of this function carry, if known.
    pub env: Option<String>,
    pub self_s: f64,
    pub share: f64,
    pub operations: Vec<OperationShare>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workflow {
    pub root: String,
    /// Traces of this workflow in the range.
    pub traces_in_range: u64,
    /// Total duration at the percentile: traces at or above it are the slow ones.
    pub threshold_s: f64,
    /// Slow traces averaged.
    pub traces: u64,
    pub avg_total_s: f64,
    /// The node with the most time.
    pub bottleneck: Option<Node>,
    pub functions: Vec<FunctionShare>,
    /// Every node, in tree order.
    pub nodes: Vec<Node>,
    /// The slowest traces' ids, slowest first (at most 20).
    pub trace_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BottleneckReport {
    pub from_ms: i64,
    pub to_ms: i64,
    pub percentile: f64,
    pub workflows: Vec<Workflow>,
}

impl BottleneckQuery {
    fn traces(&self) -> TraceRange<'_> {
        TraceRange {
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            env: self.env.as_deref(),
            account: self.account.as_deref(),
            region: self.region.as_deref(),
        }
    }
}

/// Builds the report.
pub async fn report(store: &Store, q: &BottleneckQuery) -> Result<BottleneckReport, StoreError> {
    let roots: Vec<String> = match &q.workflow {
        Some(w) => vec![w.clone()],
        None => store.attribution_roots(q.traces(), MAX_WORKFLOWS).await?,
    };
    let mut workflows = Vec::new();
    for root in roots {
        if let Some(w) = workflow(store, q, &root).await? {
            workflows.push(w);
        }
    }
    Ok(BottleneckReport { from_ms: q.from_ms, to_ms: q.to_ms, percentile: q.percentile, workflows })
}

async fn workflow(store: &Store, q: &BottleneckQuery, root: &str) -> Result<Option<Workflow>, StoreError> {
    let n = store.attribution_count(root, q.traces()).await?;
    if n == 0 {
        return Ok(None);
    }
    // The slow ones: at or above the nearest-rank percentile of total duration.
    let rank = crate::quantile::rank(q.percentile / 100.0, n.unsigned_abs()) as i64;
    let slow = (n - rank + 1).min(MAX_TRACES);
    let rows: Vec<(String, f64, StoredPath)> =
        store.slowest_attributions(root, q.traces(), slow).await?.into_iter().map(|r| (r.trace_id, r.total_s, r.path)).collect();
    let threshold_s = store.attribution_total_at(root, q.traces(), rank - 1).await?.unwrap_or(0.0);

    // Average every path node over the slow traces.
    let mut index: HashMap<Vec<String>, usize> = HashMap::new();
    let mut nodes: Vec<Node> = Vec::new();
    let mut total = 0.0;
    let mut used = 0u64;
    for (_, total_s, shares) in &rows {
        let shares = match shares {
            StoredPath::Apart { shape, self_us } => crate::critical_path::decode_path(shape, self_us),
            StoredPath::Whole(whole) => crate::critical_path::decode_shares(whole),
        };
        let Some(shares) = shares else {
            continue;
        };
        used += 1;
        total += total_s;
        for s in shares {
            let path = if s.path.is_empty() { vec![s.function.clone(), s.operation.clone()] } else { s.path };
            let k = *index.entry(path.clone()).or_insert_with(|| {
                nodes.push(Node {
                    path,
                    function: s.function,
                    operation: s.operation,
                    gap: s.gap,
                    depth: s.depth,
                    self_s: 0.0,
                    share: 0.0,
                });
                nodes.len() - 1
            });
            nodes[k].self_s += s.self_s;
        }
    }
    if used == 0 {
        return Ok(None);
    }
    let avg_total_s = total / used as f64;
    for node in &mut nodes {
        node.self_s /= used as f64;
        node.share = if avg_total_s > 0.0 { node.self_s / avg_total_s } else { 0.0 };
    }
    let bottleneck = nodes.iter().enumerate().max_by(|a, b| a.1.self_s.total_cmp(&b.1.self_s).then(b.0.cmp(&a.0))).map(|(i, _)| i);

    // Group by function (first seen first), then operation (first seen first).
    let envs = function_envs(store, rows.iter().map(|r| r.0.as_str())).await?;
    let mut functions: Vec<FunctionShare> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let f = match functions.iter().position(|f| f.function == node.function) {
            Some(f) => f,
            None => {
                functions.push(FunctionShare {
                    function: node.function.clone(),
                    env: envs.get(&node.function).cloned(),
                    self_s: 0.0,
                    share: 0.0,
                    operations: Vec::new(),
                });
                functions.len() - 1
            }
        };
        let f = &mut functions[f];
        f.self_s += node.self_s;
        f.share += node.share;
        let is_bottleneck = bottleneck == Some(i);
        match f.operations.iter_mut().find(|o| o.operation == node.operation) {
            Some(o) => {
                o.self_s += node.self_s;
                o.share += node.share;
                o.bottleneck |= is_bottleneck;
            }
            None => f.operations.push(OperationShare {
                operation: node.operation.clone(),
                gap: node.gap,
                self_s: node.self_s,
                share: node.share,
                bottleneck: is_bottleneck,
            }),
        }
    }
    Ok(Some(Workflow {
        root: root.to_string(),
        traces_in_range: n as u64,
        threshold_s,
        traces: used,
        avg_total_s,
        bottleneck: bottleneck.map(|i| nodes[i].clone()),
        functions,
        nodes,
        trace_ids: rows.iter().take(LISTED_TRACES).map(|r| r.0.clone()).collect(),
    }))
}

/// The env most events of each function in these traces carry.
async fn function_envs(store: &Store, trace_ids: impl Iterator<Item = &str>) -> Result<HashMap<String, String>, StoreError> {
    let ids: Vec<&str> = trace_ids.collect();
    let mut counts: HashMap<(String, String), i64> = HashMap::new();
    for (f, e, c) in store.trace_function_envs(&ids).await? {
        *counts.entry((f, e)).or_default() += c;
    }
    let mut best: HashMap<String, (String, i64)> = HashMap::new();
    for ((f, e), c) in counts {
        let slot = best.entry(f).or_insert((e.clone(), c));
        if c > slot.1 || (c == slot.1 && e < slot.0) {
            *slot = (e, c);
        }
    }
    Ok(best.into_iter().map(|(f, (e, _))| (f, e)).collect())
}

fn pct(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// The trees, one per workflow, and a headline naming each bottleneck.
pub fn text(r: &BottleneckReport) -> String {
    if r.workflows.is_empty() {
        return "No complete traces in this range.\n".into();
    }
    let mut out = String::new();
    for w in &r.workflows {
        out.push_str(&format!(
            "{} ({} avg over the {} slowest of {} traces, total ≥ {})\n",
            w.root,
            secs(w.avg_total_s),
            w.traces,
            w.traces_in_range,
            secs(w.threshold_s)
        ));
        let shown: Vec<&FunctionShare> = w.functions.iter().filter(|f| f.self_s >= 0.0005).collect();
        for (fi, f) in shown.iter().enumerate() {
            let last_f = fi + 1 == shown.len();
            let name = if f.function == w.root {
                format!("{} (workflow)", f.function)
            } else {
                match &f.env {
                    Some(env) => format!("{}:{}", f.function, env),
                    None => f.function.clone(),
                }
            };
            out.push_str(&format!("{}─ {} ({}, {})\n", if last_f { "└" } else { "├" }, name, secs(f.self_s), pct(f.share)));
            let ops: Vec<&OperationShare> = f.operations.iter().filter(|o| o.self_s >= 0.0005 || o.bottleneck).collect();
            for (oi, o) in ops.iter().enumerate() {
                let mark = match (o.bottleneck, o.gap) {
                    (true, true) => " ← BOTTLENECK (uninstrumented)",
                    (true, false) => " ← BOTTLENECK",
                    _ => "",
                };
                out.push_str(&format!(
                    "{}  {}─ {} ({}, {}){}\n",
                    if last_f { " " } else { "│" },
                    if oi + 1 == ops.len() { "└" } else { "├" },
                    o.operation,
                    secs(o.self_s),
                    pct(o.share),
                    mark
                ));
            }
        }
        if let Some(b) = &w.bottleneck {
            let what = if b.gap {
                format!("uninstrumented time in {} ({})", b.function, b.operation)
            } else {
                format!("{} → {}", b.function, b.operation)
            };
            out.push_str(&format!("Bottleneck: {what}: {} of {} ({})\n", secs(b.self_s), secs(w.avg_total_s), pct(b.share)));
        }
        if !w.trace_ids.is_empty() {
            out.push_str(&format!("Slowest traces: {}\n", w.trace_ids.iter().take(2).cloned().collect::<Vec<_>>().join(" ")));
        }
        out.push('\n');
    }
    out
}

/// Every node of every workflow.
pub fn csv(r: &BottleneckReport) -> String {
    let mut s =
        csv_line(&["workflow", "traces", "avg_total_s", "function", "operation", "gap", "depth", "self_s", "share", "bottleneck", "path"]);
    for w in &r.workflows {
        for n in &w.nodes {
            let is_b = w.bottleneck.as_ref().is_some_and(|b| b.path == n.path);
            s.push_str(&csv_line(&[
                w.root.clone(),
                w.traces.to_string(),
                w.avg_total_s.to_string(),
                n.function.clone(),
                n.operation.clone(),
                n.gap.to_string(),
                n.depth.to_string(),
                n.self_s.to_string(),
                n.share.to_string(),
                is_b.to_string(),
                n.path.join(" > "),
            ]));
        }
    }
    s
}
