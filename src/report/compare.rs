//! `report compare`: a baseline against a candidate — two envs over one range (`PROD`
//! against `Dev`), or one env over two ranges (last week against this week) — per
//! (function, operation): counts and p50/p95/p99 on both sides, the change, and whether it
//! is significant.
//!
//! A change is significant when all three hold: the Mann–Whitney U test rejects "same
//! distribution" at [`ALPHA`], the bootstrap 95 % interval of the p95 difference excludes
//! zero, and the p95 moved by at least [`MIN_CHANGE_PCT`] (with enough events any change
//! is "significant"; a 1 % one is not worth an alert). Its direction is the p95's. With
//! fewer than [`MIN_SAMPLES`] events on either side the row says `insufficient_data`.
//! Rows: regressions first (largest first), then improvements, unchanged, too few.

use super::data::{Agg, Selection, load};
use super::functions::timestamp;
use super::significance::{Bootstrap, MannWhitney, bootstrap_diff, mann_whitney};
use super::table::{Table, WIDTH};
use super::{ReportError, TimeRange, csv_line, csv_num, parse_range_spec, secs};
use crate::store::{Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;

/// Significance level of the Mann–Whitney test.
pub const ALPHA: f64 = 0.01;
/// Fewest events per side for a verdict.
pub const MIN_SAMPLES: u64 = 20;
/// Smallest p95 change (in %) called a regression or an improvement.
pub const MIN_CHANGE_PCT: f64 = 5.0;
/// Base of the per-row bootstrap seed (mixed with the row's names).
const SEED: u64 = 0x5EED_1A7E_0C0F_FEE5;

/// One side of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// Only this env (None: every env).
    pub env: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// What to compare.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareQuery {
    pub baseline: Side,
    pub candidate: Side,
    pub function: Option<String>,
    /// Only this account and region, on both sides (PROD against Dev in one region, say).
    pub account: Option<String>,
    pub region: Option<String>,
    /// One row per cause (linked operations folded under it, function-level rows under
    /// what explains them); false: every (function, operation) flat.
    pub group: bool,
    /// `[[operations]]` links (learned ones are read from the candidate's range).
    pub operations: Vec<crate::config::OperationConfig>,
}

/// One side's numbers for a row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SideStats {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// Candidate against baseline in % (null when the baseline is 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Changes {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Regression,
    Improvement,
    NoChange,
    InsufficientData,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareRow {
    pub function: String,
    pub operation: String,
    pub baseline: SideStats,
    pub candidate: SideStats,
    pub change_pct: Changes,
    /// Candidate against baseline: z > 0 when the candidate tends to be slower.
    pub mann_whitney: Option<MannWhitney>,
    /// Interval of candidate p95 − baseline p95.
    pub bootstrap_p95: Option<Bootstrap>,
    pub significant: bool,
    pub verdict: Verdict,
    /// Rows of operations that time the same call, folded under this one (grouped view).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub linked: Vec<CompareRow>,
    /// Function-level rows (`Lambda.Duration` and kin) this row's regression explains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub explains: Vec<CompareRow>,
    /// On a folded function-level row: the operation whose regression explains it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained_by: Option<String>,
}

/// A side as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideInfo {
    pub env: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Some of this side's percentiles come from rollups (within 1 %).
    pub approximate: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareReport {
    pub baseline: SideInfo,
    pub candidate: SideInfo,
    pub alpha: f64,
    pub min_samples: u64,
    pub min_change_pct: f64,
    pub rows: Vec<CompareRow>,
}

/// The query for `--baseline/--candidate` envs over `range`, or for two ranges
/// (`baseline_range`/`candidate_range`, `A..B`) of `env` (or of the two envs).
#[allow(clippy::too_many_arguments)]
pub fn build_query(
    baseline: Option<&str>,
    candidate: Option<&str>,
    env: Option<&str>,
    baseline_range: Option<&str>,
    candidate_range: Option<&str>,
    range: TimeRange,
    function: Option<&str>,
    now: i64,
) -> Result<CompareQuery, ReportError> {
    let (b_range, c_range) = match (baseline_range, candidate_range) {
        (Some(b), Some(c)) => (parse_range_spec("baseline_range", b, now)?, parse_range_spec("candidate_range", c, now)?),
        (None, None) => (range, range),
        _ => return Err(ReportError::BadInput("give both baseline_range and candidate_range, or neither".into())),
    };
    let (b_env, c_env) = match (baseline, candidate) {
        (Some(b), Some(c)) => (Some(b.to_string()), Some(c.to_string())),
        (None, None) => (env.map(str::to_string), env.map(str::to_string)),
        _ => return Err(ReportError::BadInput("give both baseline and candidate envs, or neither (with two ranges)".into())),
    };
    if b_env == c_env && b_range == c_range {
        return Err(ReportError::BadInput(
            "nothing to compare: give baseline and candidate envs (baseline=PROD&candidate=Dev), or baseline_range and candidate_range"
                .into(),
        ));
    }
    Ok(CompareQuery {
        baseline: Side { env: b_env, from_ms: b_range.from_ms, to_ms: b_range.to_ms },
        candidate: Side { env: c_env, from_ms: c_range.from_ms, to_ms: c_range.to_ms },
        function: function.map(str::to_string),
        account: None,
        region: None,
        group: true,
        operations: Vec::new(),
    })
}

async fn side(store: &Store, s: &Side, q: &CompareQuery) -> Result<(BTreeMap<(String, String), Agg>, bool), StoreError> {
    let sel = Selection {
        from_ms: s.from_ms,
        to_ms: s.to_ms,
        env: s.env.clone(),
        function: q.function.clone(),
        account: q.account.clone(),
        region: q.region.clone(),
        ..Selection::default()
    };
    let loaded = load(store, &sel).await?;
    let approximate = loaded.approximate();
    let mut out: BTreeMap<(String, String), Agg> = BTreeMap::new();
    for (k, agg) in loaded.groups {
        out.entry((k.function, k.operation)).or_default().merge(agg);
    }
    Ok((out, approximate))
}

fn pct(c: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| (c - b) / b * 100.0)
}

/// Compares one (function, operation) from its two sides' events.
pub fn compare_row(function: &str, operation: &str, mut b: Agg, mut c: Agg) -> CompareRow {
    // Both sides alike: if one was read from sketches, the other joins a sketch too.
    if b.approximate() || c.approximate() {
        b.make_approximate();
        c.make_approximate();
    }
    let stats = |a: &mut Agg| {
        let q = a.quantiles(&[0.5, 0.95, 0.99]);
        SideStats { count: a.counts.count, mean: a.counts.mean(), p50: q[0], p95: q[1], p99: q[2] }
    };
    let (bs, cs) = (stats(&mut b), stats(&mut c));
    let change_pct = Changes { p50: pct(cs.p50, bs.p50), p95: pct(cs.p95, bs.p95), p99: pct(cs.p99, bs.p99) };
    let mut row = CompareRow {
        function: function.into(),
        operation: operation.into(),
        baseline: bs,
        candidate: cs,
        change_pct,
        mann_whitney: None,
        bootstrap_p95: None,
        significant: false,
        verdict: Verdict::InsufficientData,
        linked: Vec::new(),
        explains: Vec::new(),
        explained_by: None,
    };
    if bs.count < MIN_SAMPLES || cs.count < MIN_SAMPLES {
        return row;
    }
    let (bd, cd) = (b.dist(), c.dist());
    row.mann_whitney = mann_whitney(&cd, &bd);
    row.bootstrap_p95 = bootstrap_diff(&cd, &bd, 0.95, SEED ^ crate::hash::fnv1a(&format!("{function}\0{operation}")));
    let moved = change_pct.p95.is_some_and(|p| p.abs() >= MIN_CHANGE_PCT) || (bs.p95 == 0.0 && cs.p95 > 0.0);
    let differs = row.mann_whitney.is_some_and(|m| m.p_value < ALPHA);
    let (up, down) = row.bootstrap_p95.map_or((false, false), |ci| (ci.low_s > 0.0, ci.high_s < 0.0));
    row.significant = moved && differs && (up || down);
    row.verdict = match (row.significant, up) {
        (true, true) => Verdict::Regression,
        (true, false) => Verdict::Improvement,
        _ => Verdict::NoChange,
    };
    row
}

/// Builds the report.
pub async fn report(store: &Store, q: &CompareQuery) -> Result<CompareReport, StoreError> {
    let (mut base, base_approx) = side(store, &q.baseline, q).await?;
    let (mut cand, cand_approx) = side(store, &q.candidate, q).await?;
    let keys: std::collections::BTreeSet<(String, String)> = base.keys().chain(cand.keys()).cloned().collect();
    let mut rows: Vec<CompareRow> = keys
        .into_iter()
        .map(|k| {
            let b = base.remove(&k).unwrap_or_default();
            let c = cand.remove(&k).unwrap_or_default();
            compare_row(&k.0, &k.1, b, c)
        })
        .collect();
    if q.group {
        let links = crate::evaluate::links::read(store, &q.operations, q.candidate.from_ms, q.candidate.to_ms).await?;
        rows = by_cause(rows, &links);
    }
    rows.sort_by(|a, b| {
        let (ca, cb) = (a.change_pct.p95.unwrap_or(0.0), b.change_pct.p95.unwrap_or(0.0));
        rank(a.verdict)
            .cmp(&rank(b.verdict))
            .then_with(|| match a.verdict {
                Verdict::Regression => cb.total_cmp(&ca),
                Verdict::Improvement => ca.total_cmp(&cb),
                Verdict::NoChange => cb.abs().total_cmp(&ca.abs()),
                Verdict::InsufficientData => (b.baseline.count + b.candidate.count).cmp(&(a.baseline.count + a.candidate.count)),
            })
            .then_with(|| (&a.function, &a.operation).cmp(&(&b.function, &b.operation)))
    });
    let info = |s: &Side, approximate| SideInfo { env: s.env.clone(), from_ms: s.from_ms, to_ms: s.to_ms, approximate };
    Ok(CompareReport {
        baseline: info(&q.baseline, base_approx),
        candidate: info(&q.candidate, cand_approx),
        alpha: ALPHA,
        min_samples: MIN_SAMPLES,
        min_change_pct: MIN_CHANGE_PCT,
        rows,
    })
}

fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Regression => 0,
        Verdict::Improvement => 1,
        Verdict::NoChange => 2,
        Verdict::InsufficientData => 3,
    }
}

/// One row per cause: rows of linked operations fold under the cause's row (the most
/// telling verdict leads, the cause's own name first among equals), and a function-level
/// regression folds under the largest regression of another operation of its function,
/// which explains it.
pub fn by_cause(rows: Vec<CompareRow>, links: &crate::cause::Links) -> Vec<CompareRow> {
    let mut groups: BTreeMap<(String, String), Vec<CompareRow>> = BTreeMap::new();
    for r in rows {
        let cause = links.canonical(&r.function, &r.operation).to_string();
        groups.entry((r.function.clone(), cause)).or_default().push(r);
    }
    let mut out: Vec<CompareRow> = Vec::new();
    for ((_, cause), mut members) in groups {
        members.sort_by_key(|r| (rank(r.verdict), r.operation != cause));
        let mut lead = members.remove(0);
        lead.linked = members;
        out.push(lead);
    }
    // The explaining regression per function: the largest p95 change that is not itself
    // function-level.
    let mut explainer: BTreeMap<String, (String, f64)> = BTreeMap::new();
    for r in out.iter().filter(|r| r.verdict == Verdict::Regression && !crate::cause::is_function_level(&r.operation)) {
        let change = r.change_pct.p95.unwrap_or(0.0);
        let e = explainer.entry(r.function.clone()).or_insert((r.operation.clone(), change));
        if change > e.1 {
            *e = (r.operation.clone(), change);
        }
    }
    let (explained, mut kept): (Vec<CompareRow>, Vec<CompareRow>) = out.into_iter().partition(|r| {
        r.verdict == Verdict::Regression && crate::cause::is_function_level(&r.operation) && explainer.contains_key(&r.function)
    });
    for mut r in explained {
        let (op, _) = explainer[&r.function].clone();
        r.explained_by = Some(op.clone());
        if let Some(host) = kept.iter_mut().find(|k| k.function == r.function && k.operation == op) {
            host.explains.push(r);
        }
    }
    kept
}

fn describe(s: &SideInfo) -> String {
    format!("{} {} .. {}", s.env.as_deref().unwrap_or("all envs"), timestamp(s.from_ms), timestamp(s.to_ms))
}

fn verdict_text(r: &CompareRow) -> &'static str {
    match r.verdict {
        Verdict::Regression => "REGRESSION",
        Verdict::Improvement => "improvement",
        Verdict::NoChange => "no change",
        Verdict::InsufficientData => "insufficient data",
    }
}

pub fn table(r: &CompareReport) -> String {
    let mut out = format!("baseline:  {}\ncandidate: {}\n", describe(&r.baseline), describe(&r.candidate));
    if r.baseline.approximate || r.candidate.approximate {
        out.push_str("(percentiles partly from hourly rollups: within 1 %)\n");
    }
    let mut t = Table::new().text("FUNCTION", 12).text("OPERATION", 12).num("N BASE/CAND");
    t = t.num("P95 BASE").num("P95 CAND").num("CHANGE").num("P-VALUE").text("VERDICT", 10);
    let line = |row: &CompareRow, operation: String, verdict: String| {
        vec![
            row.function.clone(),
            operation,
            format!("{}/{}", row.baseline.count, row.candidate.count),
            secs(row.baseline.p95),
            secs(row.candidate.p95),
            row.change_pct.p95.map_or("-".into(), |p| format!("{p:+.0}%")),
            row.mann_whitney.map_or("-".into(), |m| if m.p_value < 0.001 { "<0.001".into() } else { format!("{:.3}", m.p_value) }),
            verdict,
        ]
    };
    for row in &r.rows {
        t.row(line(row, row.operation.clone(), verdict_text(row).into()));
        for l in &row.linked {
            t.row(line(l, format!("  = {}", l.operation), format!("{} (same call)", verdict_text(l))));
        }
        for e in &row.explains {
            t.row(line(e, format!("  > {}", e.operation), "explained".into()));
        }
    }
    out.push_str(&t.render(WIDTH));
    if r.rows.iter().any(|x| !x.linked.is_empty() || !x.explains.is_empty()) {
        out.push_str("= another name for the same call; > a whole-invocation row this cause explains (--no-group: every row flat)\n");
    }
    out
}

pub fn csv(r: &CompareReport) -> String {
    let mut s = csv_line(&[
        "function",
        "operation",
        "baseline_count",
        "baseline_p50",
        "baseline_p95",
        "baseline_p99",
        "candidate_count",
        "candidate_p50",
        "candidate_p95",
        "candidate_p99",
        "change_p50_pct",
        "change_p95_pct",
        "change_p99_pct",
        "mann_whitney_p",
        "p95_diff_low_s",
        "p95_diff_high_s",
        "significant",
        "verdict",
    ]);
    let flat: Vec<&CompareRow> = r.rows.iter().flat_map(|x| std::iter::once(x).chain(&x.linked).chain(&x.explains)).collect();
    for x in flat {
        let verdict = serde_json::to_value(x.verdict).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        s.push_str(&csv_line(&[
            x.function.clone(),
            x.operation.clone(),
            x.baseline.count.to_string(),
            x.baseline.p50.to_string(),
            x.baseline.p95.to_string(),
            x.baseline.p99.to_string(),
            x.candidate.count.to_string(),
            x.candidate.p50.to_string(),
            x.candidate.p95.to_string(),
            x.candidate.p99.to_string(),
            csv_num(x.change_pct.p50),
            csv_num(x.change_pct.p95),
            csv_num(x.change_pct.p99),
            csv_num(x.mann_whitney.map(|m| m.p_value)),
            csv_num(x.bootstrap_p95.map(|b| b.low_s)),
            csv_num(x.bootstrap_p95.map(|b| b.high_s)),
            x.significant.to_string(),
            verdict,
        ]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::significance::SplitMix64;

    fn agg(values: impl IntoIterator<Item = f64>) -> Agg {
        let mut a = Agg::default();
        values.into_iter().for_each(|v| a.push(v, false, false, false));
        a
    }

    fn judged(function: &str, operation: &str, verdict: Verdict, change: f64) -> CompareRow {
        let mut r = compare_row(function, operation, Agg::default(), Agg::default());
        r.verdict = verdict;
        r.change_pct.p95 = Some(change);
        r
    }

    /// Dev's Bedrock call slowed: the seven regression rows of one cause become one row, the
    /// other name folded under it and the five whole-invocation rows explained by it; another
    /// function's rows are untouched, and a function-level regression with no cause stays.
    #[test]
    fn rows_fold_into_one_per_cause() {
        let gdsh = "GenerateDynamicScenarioHandler";
        let mut rows = vec![judged(gdsh, "BedrockCallDuration", Verdict::Regression, 210.0), judged(gdsh, "Bedrock.InvokeModel", Verdict::Regression, 200.0)];
        for op in crate::cause::FUNCTION_LEVEL {
            rows.push(judged(gdsh, op, Verdict::Regression, 150.0));
        }
        rows.push(judged(gdsh, "Overhead", Verdict::NoChange, 1.0));
        rows.push(judged("UpdateLeadHandler", "Lambda.Duration", Verdict::Regression, 40.0));
        let links = crate::cause::Links::configured(&[crate::config::OperationConfig {
            name: "Bedrock.InvokeModel".into(),
            also: vec!["BedrockCallDuration".into()],
        }]);
        let out = by_cause(rows, &links);
        let names: Vec<(&str, &str)> = out.iter().map(|r| (r.function.as_str(), r.operation.as_str())).collect();
        assert_eq!(names, [(gdsh, "Bedrock.InvokeModel"), (gdsh, "Overhead"), ("UpdateLeadHandler", "Lambda.Duration")]);
        let bedrock = &out[0];
        assert_eq!(bedrock.linked.iter().map(|r| r.operation.as_str()).collect::<Vec<_>>(), ["BedrockCallDuration"]);
        assert_eq!(bedrock.explains.len(), 5);
        assert!(bedrock.explains.iter().all(|r| r.explained_by.as_deref() == Some("Bedrock.InvokeModel")));
        assert!(out[2].explained_by.is_none(), "nothing explains it: it stays a row of its own");
        let report = CompareReport {
            baseline: SideInfo { env: Some("PROD".into()), from_ms: 0, to_ms: 1, approximate: false },
            candidate: SideInfo { env: Some("Dev".into()), from_ms: 0, to_ms: 1, approximate: false },
            alpha: ALPHA,
            min_samples: MIN_SAMPLES,
            min_change_pct: MIN_CHANGE_PCT,
            rows: out,
        };
        let text = table(&report);
        assert!(text.contains("  = BedrockCall") && text.contains("  > Lambda.Dur") && text.contains("explained"), "{text}");
        assert_eq!(csv(&report).lines().count(), 1 + 9, "the CSV stays flat: every row, folded or not");
    }

    #[test]
    fn verdicts() {
        let mut rng = SplitMix64(11);
        let mut lognormal = |scale: f64, n: usize| -> Vec<f64> { (0..n).map(|_| scale * (0.25 * rng.normal()).exp()).collect() };
        let base = lognormal(1.0, 400);
        let r = compare_row("f", "op", agg(base.clone()), agg(lognormal(3.0, 400)));
        assert_eq!(r.verdict, Verdict::Regression, "{r:?}");
        assert!(r.significant && r.change_pct.p95.unwrap() > 150.0);
        let r = compare_row("f", "op", agg(base.clone()), agg(lognormal(0.5, 400)));
        assert_eq!(r.verdict, Verdict::Improvement, "{r:?}");
        let r = compare_row("f", "op", agg(base.clone()), agg(lognormal(1.0, 400)));
        assert_eq!(r.verdict, Verdict::NoChange, "{r:?}");
        let r = compare_row("f", "op", agg(base.clone()), agg(lognormal(3.0, 19)));
        assert_eq!(r.verdict, Verdict::InsufficientData);
        assert!(r.mann_whitney.is_none() && !r.significant);
        // A tiny but real shift with many events is not worth a verdict.
        let r = compare_row("f", "op", agg(base.iter().copied()), agg(base.iter().map(|v| v * 1.02)));
        assert_eq!(r.verdict, Verdict::NoChange, "{r:?}");
        // A sketch on one side makes both sides sketches.
        let mut approx = agg(lognormal(3.0, 400));
        approx.make_approximate();
        let r = compare_row("f", "op", agg(base), approx);
        assert_eq!(r.verdict, Verdict::Regression);
    }
}
