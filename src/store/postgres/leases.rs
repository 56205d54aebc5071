//! The lease table: which node does which unit of work. Every statement uses the
//! database's clock (`now()`), so nodes' clocks never decide who holds what. Taking free
//! or expired units is `FOR UPDATE SKIP LOCKED` (two nodes taking at once get different
//! units, neither waits); each change of hands bumps the unit's epoch, and
//! [`PgStore::holds`] is the fence a holder's writes check.

use super::PgStore;
use crate::model::lease::LeaseView;
use crate::store::StoreError;
use std::time::Duration;

/// What one round read: the node's renewed leases (unit → epoch), every lease, and the
/// nodes alive, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseRound {
    pub held: Vec<(String, i64)>,
    pub leases: Vec<LeaseView>,
    pub live_nodes: Vec<String>,
}

/// A node as the fleet table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub node_id: String,
    pub live: bool,
    /// Units it holds.
    pub leases: i64,
}

fn interval(ttl: Duration) -> f64 {
    ttl.as_secs_f64()
}

impl PgStore {
    /// One keeper round: renews the node's row and its live leases, lists `units` as
    /// existing (adding the new ones), forgets units nobody listed for ten TTLs, and reads
    /// the table. Statement by statement, and no statement waits for a row another node
    /// has locked (`SKIP LOCKED` wherever rows of others are touched): rounds of several
    /// nodes at once never deadlock.
    pub async fn lease_round(&self, node: &str, units: &[String], ttl: Duration) -> Result<LeaseRound, StoreError> {
        let ttl_s = interval(ttl);
        sqlx::query(
            "INSERT INTO cluster_nodes (node_id, expires_at) VALUES ($1, now() + make_interval(secs => $2)) \
             ON CONFLICT (node_id) DO UPDATE SET renewed_at = now(), expires_at = excluded.expires_at",
        )
        .bind(node)
        .bind(ttl_s)
        .execute(&self.pool)
        .await?;
        let held: Vec<(String, i64)> = sqlx::query_as(
            "UPDATE leases SET expires_at = now() + make_interval(secs => $2) WHERE holder = $1 AND expires_at > now() \
             RETURNING unit, epoch",
        )
        .bind(node)
        .bind(ttl_s)
        .fetch_all(&self.pool)
        .await?;
        sqlx::query("INSERT INTO leases (unit) SELECT u FROM unnest($1::text[]) AS u ORDER BY u ON CONFLICT (unit) DO NOTHING")
            .bind(units)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "UPDATE leases SET seen_at = now() WHERE unit IN (SELECT unit FROM leases WHERE unit = ANY($1) \
             AND seen_at < now() - make_interval(secs => $2) FOR UPDATE SKIP LOCKED)",
        )
        .bind(units)
        .bind(ttl_s)
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "DELETE FROM leases WHERE unit IN (SELECT unit FROM leases WHERE seen_at < now() - make_interval(secs => $1 * 10) \
             AND (holder IS NULL OR expires_at IS NULL OR expires_at < now()) FOR UPDATE SKIP LOCKED)",
        )
        .bind(ttl_s)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM cluster_nodes WHERE expires_at < now() - make_interval(secs => $1 * 10)").bind(ttl_s).execute(&self.pool).await?;
        let rows: Vec<(String, Option<String>, bool)> =
            sqlx::query_as("SELECT unit, holder, COALESCE(expires_at > now(), false) FROM leases ORDER BY unit").fetch_all(&self.pool).await?;
        let live_nodes: Vec<String> =
            sqlx::query_scalar("SELECT node_id FROM cluster_nodes WHERE expires_at > now() ORDER BY node_id").fetch_all(&self.pool).await?;
        let mut held = held;
        held.sort();
        Ok(LeaseRound { held, leases: rows.into_iter().map(|(unit, holder, live)| LeaseView { unit, holder, live }).collect(), live_nodes })
    }

    /// Takes up to `n` free or expired units (others' locked rows are skipped, never waited
    /// for); each taken unit's epoch goes up by one. Which units a node tries first is spread
    /// by a hash of its name, so nodes starting together mostly try different ones.
    pub async fn take_leases(&self, node: &str, n: usize, ttl: Duration) -> Result<Vec<(String, i64)>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let taken: Vec<(String, i64)> = sqlx::query_as(
            "UPDATE leases SET holder = $1, epoch = epoch + 1, acquired_at = now(), expires_at = now() + make_interval(secs => $3) \
             WHERE unit IN (SELECT unit FROM leases WHERE holder IS NULL OR expires_at IS NULL OR expires_at <= now() \
                            ORDER BY md5(unit || $1) LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING unit, epoch",
        )
        .bind(node)
        .bind(i64::try_from(n).unwrap_or(i64::MAX))
        .bind(interval(ttl))
        .fetch_all(&self.pool)
        .await?;
        Ok(taken)
    }

    /// Gives `units` back (only those the node still holds).
    pub async fn release_leases(&self, node: &str, units: &[String]) -> Result<(), StoreError> {
        sqlx::query("UPDATE leases SET holder = NULL, expires_at = NULL WHERE holder = $1 AND unit = ANY($2)")
            .bind(node)
            .bind(units)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Leaves the fleet: every lease given back and the node's row gone, so the others take
    /// its work at their next round instead of after the TTL.
    pub async fn leave(&self, node: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE leases SET holder = NULL, expires_at = NULL WHERE holder = $1").bind(node).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM cluster_nodes WHERE node_id = $1").bind(node).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The fence: whether `node` still holds `unit` at `epoch` and its lease has not
    /// expired. A write made for a unit checks this in its own transaction.
    pub async fn holds(&self, node: &str, unit: &str, epoch: i64) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM leases WHERE unit = $1 AND holder = $2 AND epoch = $3 AND expires_at > now()")
            .bind(unit)
            .bind(node)
            .bind(epoch)
            .fetch_one(&self.pool)
            .await?;
        Ok(n == 1)
    }

    /// The fleet: every node not long gone, whether it is alive, and how many units it holds.
    pub async fn nodes(&self) -> Result<Vec<NodeView>, StoreError> {
        let rows: Vec<(String, bool, i64)> = sqlx::query_as(
            "SELECT n.node_id, n.expires_at > now(), \
                    (SELECT count(*) FROM leases l WHERE l.holder = n.node_id AND l.expires_at > now()) \
             FROM cluster_nodes n ORDER BY n.node_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(node_id, live, leases)| NodeView { node_id, live, leases }).collect())
    }

    /// Who holds `unit` now (None: nobody, or an expired lease).
    pub async fn holder(&self, unit: &str) -> Result<Option<String>, StoreError> {
        let h: Option<Option<String>> = sqlx::query_scalar("SELECT holder FROM leases WHERE unit = $1 AND expires_at > now()")
            .bind(unit)
            .fetch_optional(&self.pool)
            .await?;
        Ok(h.flatten())
    }
}
