//! Alias history rows: what each Lambda alias pointed at, and since when.

use super::{Store, StoreError};
use crate::attribute::{AliasHistory, AliasSpan};

impl Store {
    /// Records one ListAliases observation of `function` at `now_ms`: routes unchanged since
    /// the last observation extend their span; changed ones open a new span.
    pub async fn record_aliases(&self, function: &str, routes: &[(String, String, f64)], now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut aliases: Vec<&str> = routes.iter().map(|(a, _, _)| a.as_str()).collect();
        aliases.dedup();
        for alias in aliases {
            let current: Vec<(String, f64)> =
                routes.iter().filter(|(a, _, _)| a == alias).map(|(_, v, w)| (v.clone(), *w)).collect();
            // The latest span set of this alias.
            let latest: Vec<(String, f64, i64)> = sqlx::query_as(
                "SELECT version, weight, first_seen_ms FROM alias_history WHERE function = ? AND alias = ? \
                 AND first_seen_ms = (SELECT MAX(first_seen_ms) FROM alias_history WHERE function = ? AND alias = ?)",
            )
            .bind(function)
            .bind(alias)
            .bind(function)
            .bind(alias)
            .fetch_all(&mut *tx)
            .await?;
            let mut same = latest.len() == current.len();
            if same {
                for (v, w) in &current {
                    same &= latest.iter().any(|(lv, lw, _)| lv == v && (lw - w).abs() < 1e-9);
                }
            }
            if same {
                sqlx::query("UPDATE alias_history SET last_seen_ms = ? WHERE function = ? AND alias = ? AND first_seen_ms = ?")
                    .bind(now_ms)
                    .bind(function)
                    .bind(alias)
                    .bind(latest[0].2)
                    .execute(&mut *tx)
                    .await?;
            } else {
                for (v, w) in &current {
                    sqlx::query(
                        "INSERT OR REPLACE INTO alias_history (function, alias, version, weight, first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?, ?, ?)",
                    )
                    .bind(function)
                    .bind(alias)
                    .bind(v)
                    .bind(w)
                    .bind(now_ms)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The whole alias history.
    pub async fn alias_history(&self) -> Result<AliasHistory, StoreError> {
        self.alias_history_under("").await
    }

    /// The history of the functions stored under `prefix` (one scope's: see
    /// `crate::scope::Scope::key`), keyed by the function names without it.
    pub async fn alias_history_under(&self, prefix: &str) -> Result<AliasHistory, StoreError> {
        let rows: Vec<(String, String, String, f64, i64, i64)> = sqlx::query_as(
            "SELECT function, alias, version, weight, first_seen_ms, last_seen_ms FROM alias_history \
             WHERE substr(function, 1, length(?1)) = ?1 ORDER BY first_seen_ms",
        )
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        let mut h = AliasHistory::default();
        for (function, alias, version, weight, first_seen_ms, last_seen_ms) in rows {
            let function = function[prefix.len()..].to_string();
            h.by_function.entry(function).or_default().push(AliasSpan { alias, version, weight, first_seen_ms, last_seen_ms });
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[tokio::test]
    async fn unchanged_routes_extend_changed_routes_open_a_span() {
        let s = Store::open_memory().await.unwrap();
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
