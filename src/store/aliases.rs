//! Alias history rows: what each Lambda alias pointed at, and since when. Written once for
//! both engines (`portable`).

use super::portable::{Conn, Stmt, Value};
use super::{SqliteStore, StoreError};
use crate::attribute::{AliasHistory, AliasSpan};

const LATEST: &str = "SELECT version, weight, first_seen_ms FROM alias_history WHERE function = ? AND alias = ? \
     AND first_seen_ms = (SELECT MAX(first_seen_ms) FROM alias_history WHERE function = ? AND alias = ?)";
const EXTEND: &str = "UPDATE alias_history SET last_seen_ms = ? WHERE function = ? AND alias = ? AND first_seen_ms = ?";
const OPEN: &str = "INSERT INTO alias_history (function, alias, version, weight, first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?, ?, ?) \
     ON CONFLICT (function, alias, version, first_seen_ms) DO UPDATE SET weight = excluded.weight, last_seen_ms = excluded.last_seen_ms";
const HISTORY: &str = "SELECT function, alias, version, weight, first_seen_ms, last_seen_ms FROM alias_history \
     WHERE substr(function, 1, length(?)) = ? ORDER BY first_seen_ms, function, alias, version";

/// Whether an alias still routes as it did at its latest span: the same versions with the
/// same weights (pure).
pub(super) fn same_routes(latest: &[(String, f64, i64)], current: &[(String, f64)]) -> bool {
    latest.len() == current.len() && current.iter().all(|(v, w)| latest.iter().any(|(lv, lw, _)| lv == v && (lw - w).abs() < 1e-9))
}

/// Records one ListAliases observation of `function` at `now_ms` (in the caller's
/// transaction, on either engine): routes unchanged since the last observation extend their
/// span; changed ones open a new span.
pub(super) async fn record_aliases_in(conn: &mut Conn<'_>, function: &str, routes: &[(String, String, f64)], now_ms: i64) -> Result<(), StoreError> {
    let mut aliases: Vec<&str> = routes.iter().map(|(a, _, _)| a.as_str()).collect();
    aliases.dedup();
    for alias in aliases {
        let current: Vec<(String, f64)> = routes.iter().filter(|(a, _, _)| a == alias).map(|(_, v, w)| (v.clone(), *w)).collect();
        let (f, a) = (Value::Text(function), Value::Text(alias));
        let latest: Vec<(String, f64, i64)> = conn.fetch_all(&Stmt::new(LATEST, [f, a, f, a])).await?;
        if same_routes(&latest, &current) {
            conn.execute(&Stmt::new(EXTEND, [Value::Int(now_ms), f, a, Value::Int(latest[0].2)])).await?;
        } else {
            for (v, w) in &current {
                conn.execute(&Stmt::new(OPEN, [f, a, Value::Text(v), Value::Float(*w), Value::Int(now_ms), Value::Int(now_ms)])).await?;
            }
        }
    }
    Ok(())
}

/// The alias history of the functions whose stored names start with `prefix` (one scope's:
/// see `crate::scope::Scope::key`), with the prefix taken off (either engine).
pub(super) async fn alias_history_in(conn: &mut Conn<'_>, prefix: &str) -> Result<AliasHistory, StoreError> {
    let rows: Vec<(String, String, String, f64, i64, i64)> = conn.fetch_all(&Stmt::new(HISTORY, [Value::Text(prefix), Value::Text(prefix)])).await?;
    let mut h = AliasHistory::default();
    for (function, alias, version, weight, first_seen_ms, last_seen_ms) in rows {
        let function = function[prefix.len()..].to_string();
        h.by_function.entry(function).or_default().push(AliasSpan { alias, version, weight, first_seen_ms, last_seen_ms });
    }
    Ok(h)
}

impl SqliteStore {
    /// Records one ListAliases observation of `function` (see [`record_aliases_in`]).
    pub async fn record_aliases(&self, function: &str, routes: &[(String, String, f64)], now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        record_aliases_in(&mut Conn::Sqlite(&mut tx), function, routes, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The whole alias history.
    pub async fn alias_history(&self) -> Result<AliasHistory, StoreError> {
        self.alias_history_under("").await
    }

    /// The alias history of one scope (see [`alias_history_in`]).
    pub async fn alias_history_under(&self, prefix: &str) -> Result<AliasHistory, StoreError> {
        let mut conn = self.pool.acquire().await?;
        alias_history_in(&mut Conn::Sqlite(&mut conn), prefix).await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::SqliteStore;

    #[tokio::test]
    async fn unchanged_routes_extend_changed_routes_open_a_span() {
        let s = SqliteStore::open_memory().await.unwrap();
        let v = |a: &str, ver: &str, w: f64| (a.to_string(), ver.to_string(), w);
        s.record_aliases("f", &[v("PROD", "3", 1.0), v("Dev", "4", 1.0)], 100).await.unwrap();
        s.record_aliases("f", &[v("PROD", "3", 1.0), v("Dev", "4", 1.0)], 200).await.unwrap();
        s.record_aliases("f", &[v("PROD", "3", 1.0), v("Dev", "5", 0.9), v("Dev", "4", 0.1)], 300).await.unwrap();
        let h = s.alias_history().await.unwrap();
        let spans = &h.by_function["f"];
        assert_eq!(spans.len(), 4);
        assert_eq!(spans.iter().find(|x| x.alias == "PROD").unwrap().last_seen_ms, 300);
        assert_eq!(h.resolve("f", "4", 150), Some("Dev"));
        assert_eq!(h.resolve("f", "5", 350), Some("Dev"));
        assert_eq!(h.resolve("f", "5", 250), None, "5 was not routed before 300");
        // Another scope's function of the same name has its own history.
        s.record_aliases("prod|eu-west-1|f", &[v("PROD", "9", 1.0)], 400).await.unwrap();
        let prod = s.alias_history_under("prod|eu-west-1|").await.unwrap();
        assert_eq!(prod.resolve("f", "9", 450), Some("PROD"));
        assert_eq!(prod.resolve("f", "3", 150), None, "not the default scope's spans");
    }
}
