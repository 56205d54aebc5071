//! Where a trace's time went: the critical path through its span tree, with each node's
//! self time attributed to a (function, operation) pair.
//!
//! The tree is built across documents by `parent_id` (a Step Functions state → its `Lambda`
//! Invoke subsegment → the AWS::Lambda service segment → the AWS::Lambda::Function segment
//! → Invocation → user subsegments). The walk is Jaeger's: from the end of a span, take
//! the child that finished last before the cursor, recurse into it, move the cursor to
//! that child's start and repeat; what no chosen child covers is the span's self time.
//! Children are first clamped to their parent's interval, because segments from different
//! hosts disagree by tens of milliseconds.
//!
//! Pure: reads a [`ParsedTrace`], no I/O.

use serde::{Deserialize, Serialize};

use crate::parse::xray::{ParsedTrace, Span, SpanKind, round_us};

/// One node on the critical path and the time spent in it and in no chosen child.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathShare {
    /// The owning Lambda function, or for nodes no function owns the enclosing segment's
    /// name (the state machine).
    pub function: String,
    /// The subsegment's name, or `"<name> (uninstrumented)"` for a container's own time.
    pub operation: String,
    /// Self time on the critical path, seconds (rounded to microseconds).
    pub self_s: f64,
    /// Time inside a container (a segment, Invocation, a state) not covered by any child:
    /// nothing recorded what happened then.
    #[serde(default)]
    pub gap: bool,
    /// 0 for the root.
    #[serde(default)]
    pub depth: usize,
    /// Span names from the root down to this node, for drawing a tree.
    #[serde(default)]
    pub path: Vec<String>,
}

/// The stored form of a critical path: every name once, and each node as `[function,
/// name, self time in µs, gap, parent]` (indices into `names`; the parent is the node's
/// index in `nodes`, -1 for the root). A node's path is its parent's plus its name, and its
/// operation its name (with " (uninstrumented)" for a gap), so nothing is written twice: a
/// path's names were repeated at every depth below them (8 KB for a 27-state workflow,
/// about 0.8 KB this way).
#[derive(Serialize, Deserialize)]
struct StoredPath {
    v: u8,
    names: Vec<String>,
    nodes: Vec<(usize, usize, u64, u8, i64)>,
}

const UNINSTRUMENTED: &str = " (uninstrumented)";

/// The shares as stored (see [`StoredPath`]); [`decode_shares`] gives them back as they were.
pub fn encode_shares(shares: &[PathShare]) -> String {
    let mut names: Vec<String> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut intern = |name: &str, names: &mut Vec<String>| -> usize {
        if let Some(&i) = index.get(name) {
            return i;
        }
        names.push(name.to_string());
        index.insert(name.to_string(), names.len() - 1);
        names.len() - 1
    };
    // The nodes are in tree order: a node's parent is the last node one level up.
    let mut at_depth: Vec<usize> = Vec::new();
    let mut nodes = Vec::with_capacity(shares.len());
    for (i, s) in shares.iter().enumerate() {
        let name = s.path.last().map(String::as_str).unwrap_or(s.operation.trim_end_matches(UNINSTRUMENTED));
        let f = intern(&s.function, &mut names);
        let n = intern(name, &mut names);
        at_depth.truncate(s.depth);
        let parent = at_depth.last().map_or(-1, |&p| p as i64);
        at_depth.push(i);
        nodes.push((f, n, (s.self_s * 1e6).round().max(0.0) as u64, u8::from(s.gap), parent));
    }
    serde_json::to_string(&StoredPath { v: 2, names, nodes }).unwrap_or_else(|_| "[]".into())
}

/// The shape of a stored critical path: [`StoredPath`] without the self times, as
/// `[function, name, gap, parent]` per node. The traces of a workflow that took the same
/// path share one shape; each keeps only its times.
#[derive(Serialize, Deserialize)]
struct StoredShape {
    v: u8,
    names: Vec<String>,
    nodes: Vec<(usize, usize, u8, i64)>,
}

/// The shares as stored apart: the path's shape (JSON, shared by every trace that took
/// it) and each node's self time in µs; [`decode_path`] gives them back as they were.
pub fn encode_path(shares: &[PathShare]) -> (String, Vec<u64>) {
    let Ok(stored) = serde_json::from_str::<StoredPath>(&encode_shares(shares)) else {
        return ("{}".into(), Vec::new());
    };
    let self_us = stored.nodes.iter().map(|n| n.2).collect();
    let shape = StoredShape { v: 3, names: stored.names, nodes: stored.nodes.into_iter().map(|(f, n, _, gap, parent)| (f, n, gap, parent)).collect() };
    (serde_json::to_string(&shape).unwrap_or_else(|_| "{}".into()), self_us)
}

/// A path stored apart back as [`PathShare`]s; `None` when shape and times do not fit.
pub fn decode_path(shape: &str, self_us: &[u64]) -> Option<Vec<PathShare>> {
    let shape: StoredShape = serde_json::from_str(shape).ok()?;
    if shape.nodes.len() != self_us.len() {
        return None;
    }
    let nodes = shape.nodes.into_iter().zip(self_us).map(|((f, n, gap, parent), &us)| (f, n, us, gap, parent)).collect();
    decode_stored(StoredPath { v: 2, names: shape.names, nodes })
}

/// Stored shares back as [`PathShare`]s: the compact form, or the list of objects written
/// before it (rows written by an earlier version); `None` when the text is neither.
pub fn decode_shares(text: &str) -> Option<Vec<PathShare>> {
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text).ok();
    }
    decode_stored(serde_json::from_str(text).ok()?)
}

fn decode_stored(stored: StoredPath) -> Option<Vec<PathShare>> {
    let mut shares: Vec<PathShare> = Vec::with_capacity(stored.nodes.len());
    for (i, &(f, n, us, gap, parent)) in stored.nodes.iter().enumerate() {
        let name = stored.names.get(n)?;
        let mut path = match usize::try_from(parent) {
            Ok(p) if p < i => shares[p].path.clone(),
            Ok(_) => return None,
            Err(_) => Vec::new(),
        };
        path.push(name.clone());
        shares.push(PathShare {
            function: stored.names.get(f)?.clone(),
            operation: if gap != 0 { format!("{name}{UNINSTRUMENTED}") } else { name.clone() },
            self_s: us as f64 / 1e6,
            gap: gap != 0,
            depth: path.len() - 1,
            path,
        });
    }
    Some(shares)
}

/// A trace's critical path, in tree order (a node before its children, children
/// chronologically); every node on the path appears once, even with zero self time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceAttribution {
    pub trace_id: String,
    /// Name of the root span (the state machine, or the first Lambda segment).
    pub root_name: String,
    /// Root duration, seconds; the shares' `self_s` add up to it (within rounding).
    pub total_s: f64,
    pub shares: Vec<PathShare>,
}

impl TraceAttribution {
    /// The share with the most self time (the first one on a tie).
    pub fn largest(&self) -> Option<&PathShare> {
        self.shares
            .iter()
            .reduce(|best, s| if s.self_s > best.self_s { s } else { best })
    }
}

/// The critical path of a trace, or `None` if it has no complete root span. The root is
/// the span whose parent is not in the trace (the longest, if several). In-progress spans
/// below the root are ignored.
pub fn critical_path(trace: &ParsedTrace) -> Option<TraceAttribution> {
    let spans = &trace.spans;
    let n = spans.len();
    let parents = trace.parent_indices();
    let owners = trace.owner_names();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, p) in parents.iter().enumerate() {
        if let Some(p) = *p {
            children[p].push(i);
        }
    }

    let root = (0..n)
        .filter(|&i| parents[i].is_none() && spans[i].end_s.is_some())
        .max_by(|&a, &b| {
            let (da, db) = (length(&spans[a]), length(&spans[b]));
            da.total_cmp(&db).then(b.cmp(&a)) // longest; the first one on a tie
        })?;
    let (root_s, root_e) = interval(trace, &children, root)?;

    // Phase 1: walk the path, recording each node's self time and chosen children.
    struct Node {
        span: usize,
        self_s: f64,
        /// Children on the path, as indices into `nodes`.
        chosen: Vec<usize>,
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut work: Vec<(usize, f64, f64, usize)> = vec![(root, root_s, root_e, usize::MAX)];
    let mut visited = vec![false; n];
    while let Some((i, s, e, parent_node)) = work.pop() {
        if std::mem::replace(&mut visited[i], true) {
            continue; // cannot happen in a tree; guards against surprises
        }
        let mut candidates: Vec<(usize, f64, f64)> = children[i]
            .iter()
            .filter_map(|&c| {
                let (cs, ce) = interval(trace, &children, c)?;
                let (cs, ce) = (cs.max(s), ce.min(e));
                (ce > cs).then_some((c, cs, ce))
            })
            .collect();
        // Latest end first; on a tie the longer child, then document order.
        candidates.sort_by(|a, b| {
            b.2.total_cmp(&a.2)
                .then(a.1.total_cmp(&b.1))
                .then(a.0.cmp(&b.0))
        });
        let me = nodes.len();
        nodes.push(Node {
            span: i,
            self_s: 0.0,
            chosen: Vec::new(),
        });
        if parent_node != usize::MAX {
            nodes[parent_node].chosen.push(me);
        }
        let mut cursor = e;
        let mut self_s = 0.0;
        let mut picked = Vec::new();
        for (c, cs, ce) in candidates {
            if ce > cursor {
                continue; // overlaps a child already on the path
            }
            self_s += cursor - ce;
            picked.push((c, cs, ce));
            cursor = cs;
        }
        self_s += cursor - s;
        nodes[me].self_s = self_s;
        // Walk order does not matter: the emit phase sorts children by start.
        for (c, cs, ce) in picked {
            work.push((c, cs, ce, me));
        }
    }

    // Phase 2: emit in tree order, children chronologically.
    let root_name = spans[root].name.clone();
    let mut shares = Vec::with_capacity(nodes.len());
    let mut stack: Vec<(usize, Vec<String>)> = vec![(0, vec![spans[root].name.clone()])];
    while let Some((k, path)) = stack.pop() {
        let node = &nodes[k];
        let span = &spans[node.span];
        let gap = is_container(trace, &parents, node.span);
        let function = owners[node.span].unwrap_or(&root_name).to_string();
        let operation = if gap {
            format!("{} (uninstrumented)", span.name)
        } else {
            span.name.clone()
        };
        // Children sorted by start, pushed in reverse so the earliest is emitted first.
        let mut kids = node.chosen.clone();
        kids.sort_by(|&a, &b| {
            let (sa, sb) = (&spans[nodes[a].span], &spans[nodes[b].span]);
            sa.start_s.total_cmp(&sb.start_s).then(a.cmp(&b))
        });
        for &kid in kids.iter().rev() {
            let mut p = path.clone();
            p.push(spans[nodes[kid].span].name.clone());
            stack.push((kid, p));
        }
        shares.push(PathShare {
            function,
            operation,
            self_s: round_us(node.self_s.max(0.0)),
            gap,
            depth: path.len() - 1,
            path,
        });
    }

    Some(TraceAttribution {
        trace_id: trace.trace_id.clone(),
        root_name,
        total_s: round_us(root_e - root_s),
        shares,
    })
}

fn length(span: &Span) -> f64 {
    span.end_s.map_or(f64::NEG_INFINITY, |e| e - span.start_s)
}

/// A span's interval for the walk; `None` while in progress. A function segment is widened
/// to cover its own subsegments: Lambda records `Initialization` before the segment starts.
fn interval(trace: &ParsedTrace, children: &[Vec<usize>], i: usize) -> Option<(f64, f64)> {
    let span = &trace.spans[i];
    let (mut s, mut e) = (span.start_s, span.end_s?);
    if span.kind == SpanKind::Function {
        for &c in &children[i] {
            let child = &trace.spans[c];
            if child.segment_id == span.segment_id
                && let Some(ce) = child.end_s
            {
                s = s.min(child.start_s);
                e = e.max(ce);
            }
        }
    }
    Some((s, e))
}

/// Spans whose own time is "uninstrumented": every top-level segment, a function's
/// Invocation, and a state machine's states.
fn is_container(trace: &ParsedTrace, parents: &[Option<usize>], i: usize) -> bool {
    let span = &trace.spans[i];
    if span.kind != SpanKind::Subsegment {
        return true;
    }
    match parents[i].map(|p| trace.spans[p].kind) {
        Some(SpanKind::StateMachine) => true,
        Some(SpanKind::Function) => span.name == "Invocation",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::xray::tests::{ALL_FIXTURES, fixture, parse_fixture};
    use crate::parse::xray::{AllowList, parse_trace};
    use proptest::prelude::*;

    fn assert_sums(a: &TraceAttribution) {
        let sum: f64 = a.shares.iter().map(|s| s.self_s).sum();
        let tolerance = 1e-6 * (a.shares.len() as f64 + 1.0);
        assert!(
            (sum - a.total_s).abs() <= tolerance,
            "shares sum {sum} ≠ total {}",
            a.total_s
        );
        assert!(
            a.shares
                .iter()
                .all(|s| s.self_s >= 0.0 && s.self_s.is_finite())
        );
    }

    /// Rows written by an earlier version (the shares as a list of objects) read back as
    /// they were; the compact form reads back the same and takes a tenth of the room.
    #[test]
    fn stored_shares_read_back_in_either_form() {
        let a = critical_path(&parse_fixture("atlas_workflow_dev.json")).unwrap();
        let old = serde_json::to_string(&a.shares).unwrap();
        assert_eq!(decode_shares(&old), Some(a.shares.clone()));
        let compact = encode_shares(&a.shares);
        assert_eq!(decode_shares(&compact), Some(a.shares.clone()));
        assert!(compact.len() * 4 < old.len(), "{} vs {} bytes", compact.len(), old.len());
        assert_eq!(decode_shares("{\"v\":2,\"names\":[\"a\"],\"nodes\":[[0,0,1,0,5]]}"), None, "a parent after its child");
        assert_eq!(decode_shares("not json"), None);
        let (shape, self_us) = encode_path(&a.shares);
        assert_eq!(decode_path(&shape, &self_us), Some(a.shares.clone()), "apart: shape and times");
        assert_eq!(decode_path(&shape, &self_us[1..]), None, "times that do not fit the shape");
        let mut slower = a.shares.clone();
        slower[1].self_s += 1.5;
        assert_eq!(encode_path(&slower).0, shape, "another trace on the same path shares the shape");
    }

    #[test]
    fn bedrock_dominates_the_workflow() {
        let t = parse_fixture("atlas_workflow_dev.json");
        let a = critical_path(&t).unwrap();
        assert_eq!(
            (a.root_name.as_str(), a.total_s),
            ("AtlasEngineWorkflow", 12.5)
        );
        assert_sums(&a);
        let top = a.largest().unwrap();
        assert_eq!(top.function, "GenerateDynamicScenarioHandler");
        assert_eq!(top.operation, "Bedrock.InvokeModel");
        assert_eq!((top.self_s, top.gap), (9.0, false));
        assert_eq!(
            top.path,
            [
                "AtlasEngineWorkflow",
                "GenerateDynamicScenario",
                "Lambda",
                "GenerateDynamicScenarioHandler",
                "GenerateDynamicScenarioHandler",
                "Invocation",
                "Bedrock.InvokeModel",
            ]
        );
        assert_eq!(top.depth, 6);
        // Every state is on the path, in order, each under the root.
        let states: Vec<&str> = a
            .shares
            .iter()
            .filter(|s| s.depth == 1)
            .map(|s| s.path[1].as_str())
            .collect();
        assert_eq!(
            states,
            [
                "LexFulfillment",
                "GenerateDynamicScenario",
                "InvokeOutboundCall",
                "UpdateLead"
            ]
        );
        let connect = a
            .shares
            .iter()
            .find(|s| s.operation == "Connect.StartOutboundCall")
            .unwrap();
        assert_eq!(
            (connect.function.as_str(), connect.self_s),
            ("InvokeOutboundCallHandler", 1.0)
        );
        // The cold start sits before the function segment and still counts.
        let init = a
            .shares
            .iter()
            .find(|s| s.operation == "Initialization")
            .unwrap();
        assert_eq!(
            (init.function.as_str(), init.self_s),
            ("UpdateLeadHandler", 0.012)
        );
        // The state machine's own time between states is a gap, owned by the state machine.
        let sm = &a.shares[0];
        assert_eq!(
            (
                sm.function.as_str(),
                sm.operation.as_str(),
                sm.gap,
                sm.depth
            ),
            (
                "AtlasEngineWorkflow",
                "AtlasEngineWorkflow (uninstrumented)",
                true,
                0
            )
        );
        // 0.10 + 0.05 + 0.05 + 0.01 + 0.01 before, between and after the states
        assert_eq!(sm.self_s, 0.22);
    }

    #[test]
    fn a_wait_between_states_dominates() {
        let t = parse_fixture("atlas_workflow_wait_gap.json");
        let a = critical_path(&t).unwrap();
        assert_sums(&a);
        let top = a.largest().unwrap();
        assert!(top.gap);
        assert_eq!(top.function, "AtlasEngineWorkflow");
        assert_eq!(top.operation, "AtlasEngineWorkflow (uninstrumented)");
        assert_eq!(top.path, ["AtlasEngineWorkflow"]);
        // 0.05 + 0.05 + 7.6 + 0.02 + 0.02
        assert_eq!(top.self_s, 7.74);
        // The biggest instrumented operation is far behind.
        let best_op = a
            .shares
            .iter()
            .filter(|s| !s.gap)
            .map(|s| s.self_s)
            .fold(0.0, f64::max);
        assert!(best_op < 1.0, "{best_op}");
    }

    #[test]
    fn python_sdk_trace_ends_in_the_boto_call() {
        let t = parse_fixture("sdk_gdsh_cold_standalone.json");
        let a = critical_path(&t).unwrap();
        assert_sums(&a);
        assert_eq!(a.root_name, "GenerateDynamicScenarioHandler");
        let top = a.largest().unwrap();
        assert_eq!(
            (top.function.as_str(), top.operation.as_str(), top.self_s),
            ("GenerateDynamicScenarioHandler", "bedrock-runtime", 8.93)
        );
        assert_eq!(
            top.path[top.path.len() - 2..],
            [
                "Bedrock.InvokeModel".to_string(),
                "bedrock-runtime".to_string()
            ]
        );
        let init = a
            .shares
            .iter()
            .find(|s| s.operation == "Initialization")
            .unwrap();
        assert_eq!(init.self_s, 0.508);
    }

    #[test]
    fn every_fixture_trace_sums() {
        for name in ALL_FIXTURES {
            for (tid, segs) in fixture(name) {
                let t = parse_trace(&tid, &segs, &AllowList::default());
                match critical_path(&t) {
                    Some(a) => assert_sums(&a),
                    None => assert!(
                        t.spans
                            .iter()
                            .all(|s| s.end_s.is_none() || s.parent_id.is_some()),
                        "{name}"
                    ),
                }
            }
        }
    }

    #[test]
    fn in_progress_root_gives_none() {
        let t = parse_fixture("in_progress.json");
        assert!(critical_path(&t).is_none());
        let empty = parse_trace("t", &[], &AllowList::default());
        assert!(critical_path(&empty).is_none());
    }

    #[test]
    fn skewed_and_overlapping_children_are_clamped() {
        // Child a starts 30 ms before its parent; b overlaps c; d ends after the parent.
        let docs = [
            r#"{"id":"r","name":"root","start_time":1727000000.0,"end_time":1727000010.0,"subsegments":[
                {"id":"a","name":"a","start_time":1726999999.97,"end_time":1727000002.0},
                {"id":"b","name":"b","start_time":1727000003.0,"end_time":1727000006.0},
                {"id":"c","name":"c","start_time":1727000005.0,"end_time":1727000007.0},
                {"id":"d","name":"d","start_time":1727000009.0,"end_time":1727000010.05},
                {"id":"z","name":"z","start_time":1727000011.0,"end_time":1727000012.0}]}"#,
        ];
        let segs: Vec<(String, String)> = docs
            .iter()
            .map(|d| ("r".to_string(), d.to_string()))
            .collect();
        let t = parse_trace("t", &segs, &AllowList::default());
        let a = critical_path(&t).unwrap();
        assert_sums(&a);
        let got: Vec<(&str, f64)> = a
            .shares
            .iter()
            .map(|s| (s.operation.as_str(), s.self_s))
            .collect();
        // d 9–10 (clamped), c 5–7, b skipped (it ends after c starts), a 0–2 (clamped), z
        // outside; the root keeps 7–9 and 2–5.
        assert_eq!(
            got,
            [
                ("root (uninstrumented)", 5.0),
                ("a", 2.0),
                ("c", 2.0),
                ("d", 1.0)
            ]
        );
    }

    /// A random tree of documents linked by parent_id, with times anywhere near the parent
    /// (before it, overlapping its end, outside it), some function segments, some open.
    fn random_trace() -> impl Strategy<Value = ParsedTrace> {
        let node = (0usize..40, -2.0f64..12.0, 0.0f64..8.0, 0u8..12);
        (prop::collection::vec(node, 0..40), 0.0f64..10.0).prop_map(|(nodes, root_len)| {
            let base = 1_727_000_000.0;
            let mut docs = vec![serde_json::json!({
                "id": "n0", "name": "root", "origin": "AWS::StepFunctions::StateMachine",
                "start_time": base, "end_time": base + root_len,
            })];
            for (k, (parent, start, len, shape)) in nodes.into_iter().enumerate() {
                let mut o = serde_json::json!({
                    "id": format!("n{}", k + 1), "name": format!("op{}", k % 5),
                    "start_time": base + start, "end_time": base + start + len,
                    "parent_id": format!("n{}", parent % (k + 1)), "type": "subsegment",
                });
                let m = o.as_object_mut().unwrap();
                match shape {
                    0 => {
                        m.remove("type");
                        m.insert("origin".into(), "AWS::Lambda::Function".into());
                        m.insert("subsegments".into(), serde_json::json!([
                            {"id": format!("i{k}"), "name": "Initialization", "start_time": base + start - 0.5, "end_time": base + start},
                            {"id": format!("v{k}"), "name": "Invocation", "start_time": base + start, "end_time": base + start + len},
                        ]));
                    }
                    1 => {
                        m.remove("end_time");
                        m.insert("in_progress".into(), true.into());
                    }
                    _ => {}
                }
                docs.push(o);
            }
            let segs: Vec<(String, String)> = docs.iter().map(|o| (o["id"].as_str().unwrap().to_string(), o.to_string())).collect();
            parse_trace("1-66f0c580-0123456789abcdef01234567", &segs, &AllowList::default())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn shares_are_non_negative_and_sum_to_total(t in random_trace()) {
            if let Some(a) = critical_path(&t) {
                let sum: f64 = a.shares.iter().map(|s| s.self_s).sum();
                prop_assert!((sum - a.total_s).abs() <= 1e-6 * (a.shares.len() as f64 + 1.0), "{} vs {}", sum, a.total_s);
                prop_assert!(a.shares.iter().all(|s| s.self_s >= 0.0));
                prop_assert!(a.shares.iter().all(|s| s.path.len() == s.depth + 1));
                prop_assert_eq!(a.shares[0].depth, 0);
                // Stored compactly, read back the same.
                let stored = encode_shares(&a.shares);
                prop_assert_eq!(decode_shares(&stored), Some(a.shares.clone()));
                let (shape, self_us) = encode_path(&a.shares);
                prop_assert_eq!(decode_path(&shape, &self_us), Some(a.shares.clone()));
            }
        }

        #[test]
        fn mutated_fixtures_keep_the_sum(
            pick in any::<prop::sample::Index>(),
            seg in any::<prop::sample::Index>(),
            shift in -5.0f64..5.0,
            which in prop::sample::select(vec!["start_time", "end_time"]),
        ) {
            let traces: Vec<_> = ALL_FIXTURES.iter().flat_map(|f| fixture(f)).collect();
            let (tid, mut segs) = pick.get(&traces).clone();
            let i = seg.index(segs.len());
            if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&segs[i].1)
                && let Some(x) = v.get(which).and_then(|x| x.as_f64())
            {
                v[which] = serde_json::json!(x + shift);
                segs[i].1 = v.to_string();
            }
            let t = parse_trace(&tid, &segs, &AllowList::default());
            if let Some(a) = critical_path(&t) {
                let sum: f64 = a.shares.iter().map(|s| s.self_s).sum();
                prop_assert!((sum - a.total_s).abs() <= 1e-6 * (a.shares.len() as f64 + 1.0));
                prop_assert!(a.shares.iter().all(|s| s.self_s >= 0.0));
            }
        }
    }
}
