//! Reports read the store and answer in tables, JSON or CSV. Percentiles are nearest rank,
//! the ⌈q·n⌉-th smallest value: exact over raw events, within 1 % when rollups answer
//! (long ranges, or hours raw retention no longer holds; the rule is in [`data`]).
//!
//! - [`top`]: the slowest operations, with their budgets.
//! - [`anomalies`]: every operation against its learned baseline (and the reader the
//!   evaluator gets its baselines through).
//! - [`functions`]: whole invocations per function, cold starts, timeouts.
//! - [`opstats`]: one operation by function and env (the seed's third query).
//! - [`bottleneck`]: where the slowest traces' time went, drawn as a tree.
//! - [`compare`]: two envs or two time ranges, per (function, operation), with significance.
//! - [`history`]: one operation's percentiles over time (the API's plotting series).

pub mod anomalies;
pub mod bottleneck;
pub mod compare;
pub mod data;
pub mod functions;
pub mod history;
pub mod opstats;
pub use crate::stats::significance;
pub mod table;
pub mod top;

use crate::store::StoreError;
use std::time::Duration;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A parameter is wrong; the message names it (an HTTP 400).
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn bad(msg: impl Into<String>) -> ReportError {
    ReportError::BadInput(msg.into())
}

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

impl std::str::FromStr for Format {
    type Err = ReportError;
    fn from_str(s: &str) -> Result<Format, ReportError> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            other => Err(bad(format!("format: expected table, json or csv, got {other:?}"))),
        }
    }
}

/// A half-open time range `[from_ms, to_ms)` in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl TimeRange {
    pub fn span_ms(&self) -> i64 {
        self.to_ms - self.from_ms
    }
}

/// The earliest instant a report or request may name: 2000-01-01T00:00:00Z. Nothing Lambda
/// logged is older, and every range stays far from `i64`'s limits.
pub const EARLIEST_MS: i64 = 946_684_800_000;
/// How far after now an instant may be (clock skew, a range ending tomorrow).
pub const MAX_AHEAD_MS: i64 = 86_400_000;

/// The latest instant allowed at `now`.
fn latest_ms(now: i64) -> i64 {
    now.saturating_add(MAX_AHEAD_MS)
}

/// A duration like `90s`, `1h`, `7d` (humantime); `what` names the parameter in errors. At
/// most the time since [`EARLIEST_MS`] (a longer span could only reach before it).
pub fn parse_duration(what: &str, s: &str) -> Result<Duration, ReportError> {
    let d =
        humantime::parse_duration(s.trim()).map_err(|_| bad(format!("{what}: expected a duration like \"1h\" or \"7d\", got {s:?}")))?;
    if d.is_zero() {
        return Err(bad(format!("{what}: must be longer than zero")));
    }
    // Roughly thirty years: far beyond any history, far below i64 milliseconds.
    const LONGEST: Duration = Duration::from_secs(30 * 366 * 86_400);
    if d > LONGEST {
        return Err(bad(format!("{what}: {s:?} is longer than any history kept (at most {})", humantime::format_duration(LONGEST))));
    }
    Ok(d)
}

/// Milliseconds of a duration [`parse_duration`] accepted (it fits in an `i64`).
pub fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Checks that `t` lies in `[EARLIEST_MS, now + MAX_AHEAD_MS]`.
fn check_instant(what: &str, given: &str, t: i64, now: i64) -> Result<i64, ReportError> {
    if t < EARLIEST_MS {
        return Err(bad(format!("{what}: {given:?} is before 2000-01-01T00:00:00Z")));
    }
    if t > latest_ms(now) {
        return Err(bad(format!("{what}: {given:?} is more than a day in the future")));
    }
    Ok(t)
}

/// An instant: `now`, an RFC 3339 time (`2026-11-22T10:00:00Z`), epoch milliseconds, or a
/// duration meaning that long before `now` (`2d`). It must lie between 2000-01-01 and a day
/// after `now`.
pub fn parse_instant(what: &str, s: &str, now: i64) -> Result<i64, ReportError> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        let ms = match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(_) => i64::MIN,
        };
        return check_instant(what, s, ms, now);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.len() >= 12 {
        let ms: i64 = s.parse().map_err(|_| bad(format!("{what}: {s:?} is out of range")))?;
        return check_instant(what, s, ms, now);
    }
    match humantime::parse_duration(s) {
        Ok(d) => {
            let ago = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            check_instant(what, s, now.saturating_sub(ago), now)
        }
        Err(_) => Err(bad(format!(
            "{what}: expected \"now\", an RFC 3339 time like 2026-11-22T10:00:00Z, epoch ms, or a duration ago like \"2d\"; got {s:?}"
        ))),
    }
}

/// The range of `--since` or of `--from`/`--to` (either may be left out: `--from` alone
/// runs until now; `--to` alone starts `since` before it). Both ends lie between
/// 2000-01-01 and a day after `now`.
pub fn parse_range(since: Option<&str>, from: Option<&str>, to: Option<&str>, now: i64) -> Result<TimeRange, ReportError> {
    let to_ms = match to {
        Some(t) => parse_instant("to", t, now)?,
        None => now + 1,
    };
    let from_ms = match (from, since) {
        (Some(f), _) => parse_instant("from", f, now)?,
        (None, Some(s)) => {
            let from = to_ms.saturating_sub(duration_ms(parse_duration("since", s)?));
            check_instant("since", s, from, now)?
        }
        (None, None) => to_ms - 3_600_000,
    };
    check_range("from/to", TimeRange { from_ms, to_ms })
}

/// A range written `A..B` (each end as in [`parse_instant`]; `B` may be left out for now):
/// `14d..7d` is last week, `7d..` this week.
pub fn parse_range_spec(what: &str, s: &str, now: i64) -> Result<TimeRange, ReportError> {
    let (a, b) = s.split_once("..").ok_or_else(|| bad(format!("{what}: expected FROM..TO like \"14d..7d\" or \"7d..now\", got {s:?}")))?;
    let to_ms = if b.trim().is_empty() { now + 1 } else { parse_instant(what, b, now)? };
    check_range(what, TimeRange { from_ms: parse_instant(what, a, now)?, to_ms })
}

fn check_range(what: &str, r: TimeRange) -> Result<TimeRange, ReportError> {
    if r.from_ms >= r.to_ms {
        return Err(bad(format!("{what}: the range is empty (from is not before to)")));
    }
    Ok(r)
}

/// Seconds for people: `950ms`, `9.23s`, `1m40s`-style for long ones.
pub fn secs(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v < 1.0 {
        format!("{:.0}ms", v * 1000.0)
    } else if v < 100.0 {
        format!("{v:.2}s")
    } else {
        format!("{v:.0}s")
    }
}

/// A CSV field, quoted when it must be.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// One CSV line from fields.
pub fn csv_line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = fields.iter().map(|f| csv_field(f.as_ref())).collect::<Vec<_>>().join(",");
    line.push('\n');
    line
}

/// `s` cut to `n` characters, the last one an ellipsis when cut.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else if n == 0 {
        String::new()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// An optional number for CSV (empty when absent).
pub fn csv_num(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantile::nearest_rank;
    use proptest::prelude::*;

    #[test]
    fn ranges_and_instants() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_range(Some("1h"), None, None, now).unwrap(), TimeRange { from_ms: now + 1 - 3_600_000, to_ms: now + 1 });
        let r = parse_range(None, Some("2026-11-22T10:00:00Z"), Some("2026-11-22T11:00:00Z"), now).unwrap();
        assert_eq!(r.span_ms(), 3_600_000);
        assert_eq!(parse_range_spec("baseline-range", "14d..7d", now).unwrap().span_ms(), 7 * 86_400_000);
        assert_eq!(parse_range_spec("r", "7d..", now).unwrap().to_ms, now + 1);
        assert_eq!(parse_instant("from", "1700000000000", now).unwrap(), 1_700_000_000_000);
        for bad in ["soon", "", "1h..2h"] {
            assert!(parse_instant("from", bad, now).is_err() || parse_range_spec("r", bad, now).is_err(), "{bad}");
        }
        assert!(parse_range_spec("r", "1h..2h", now).unwrap_err().to_string().contains("empty"));
        assert!(parse_duration("since", "0s").is_err());
        assert!(parse_duration("since", "fast").unwrap_err().to_string().starts_with("since:"));
        // Out of the window 2000-01-01 .. now + 1 day: refused, naming the parameter.
        for (to, why) in [("9223372036854775807", "future"), ("1999-12-31T23:59:59Z", "before 2000"), ("0000000000000", "before 2000")] {
            let e = parse_range(None, None, Some(to), now).unwrap_err().to_string();
            assert!(e.starts_with("to:") && e.contains(why), "{to}: {e}");
        }
        let e = parse_range(Some("100000000000000000000d"), None, None, now).unwrap_err().to_string();
        assert!(e.starts_with("since:"), "{e}");
        let e = parse_range(Some("40y"), None, None, now).unwrap_err().to_string();
        assert!(e.starts_with("since:"), "{e}");
        assert!(parse_range(Some("30y"), None, None, now).unwrap_err().to_string().contains("before 2000"));
        assert!(parse_instant("from", "9999999999999999999999", now).is_err());
        assert_eq!(parse_instant("to", "1d", now).unwrap(), now - 86_400_000);
        assert!(parse_range(None, None, Some("2026-11-23T00:00:00Z"), 1_795_341_600_000).is_ok(), "within a day ahead");
        assert_eq!("csv".parse::<Format>().unwrap(), Format::Csv);
        assert!("xml".parse::<Format>().is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(secs(0.95), "950ms");
        assert_eq!(secs(9.234), "9.23s");
        assert_eq!(secs(250.0), "250s");
        assert_eq!(clip("GenerateDynamicScenarioHandler", 10), "GenerateD…");
        assert_eq!(csv_line(&["a,b", "c\"d", "e"]), "\"a,b\",\"c\"\"d\",e\n");
    }

    proptest! {
        /// Whatever the text, a parsed range lies inside the allowed window and is not empty.
        #[test]
        fn parsed_ranges_stay_in_the_window(since in ".{0,24}", from in ".{0,24}", to in ".{0,24}", digits in "[0-9]{12,20}", pick in 0u8..4) {
            let now = 1_795_341_600_000;
            let pick_text = |s: &String| if pick == 0 { digits.clone() } else { s.clone() };
            let (since, from, to) = (pick_text(&since), pick_text(&from), pick_text(&to));
            for r in [
                parse_range(Some(&since), None, None, now),
                parse_range(None, Some(&from), Some(&to), now),
                parse_range(Some(&since), None, Some(&to), now),
                parse_range_spec("r", &format!("{from}..{to}"), now),
            ]
            .into_iter()
            .flatten()
            {
                prop_assert!(r.from_ms >= EARLIEST_MS && r.to_ms <= now + MAX_AHEAD_MS + 1 && r.from_ms < r.to_ms, "{r:?}");
            }
        }

        #[test]
        fn quantiles_are_ordered_and_within_range(mut v in proptest::collection::vec(0.0f64..100.0, 1..200)) {
            v.sort_by(f64::total_cmp);
            let p50 = nearest_rank(&v, 0.5).unwrap();
            let p95 = nearest_rank(&v, 0.95).unwrap();
            let p99 = nearest_rank(&v, 0.99).unwrap();
            prop_assert!(v[0] <= p50 && p50 <= p95 && p95 <= p99 && p99 <= *v.last().unwrap());
        }
    }
}
