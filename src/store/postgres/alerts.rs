//! Alert state and history on PostgreSQL: the same statements and decisions as the SQLite
//! store's (`crate::store::alerts`), in a PostgreSQL transaction.

use super::PgStore;
use crate::model::alert::{Phase, Transition};
use crate::store::StoreError;
use crate::store::alerts::{AlertRow, TransitionRow, alert_phases_in, alert_transitions_in, save_alerts_in};
use crate::store::portable::Conn;

impl PgStore {
    /// Writes the alerts whose phase changed and their transitions, atomically.
    pub async fn save_alerts(
        &self,
        changed: &[AlertRow],
        transitions: &[(i64, &AlertRow, Transition)],
        now_ms: i64,
        fence: Option<&super::write::Fence>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(f) = fence {
            super::write::check_fence(&mut tx, f).await?;
        }
        save_alerts_in(&mut Conn::Postgres(&mut tx), changed, transitions, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Phases of every alert that is not inactive, and the keys whose phase does not decode.
    pub async fn alert_phases(&self) -> Result<(Vec<(String, Phase)>, Vec<String>), StoreError> {
        let mut conn = self.pool.acquire().await?;
        alert_phases_in(&mut Conn::Postgres(&mut conn)).await
    }

    /// Transitions since `since_ms`, newest first, at most `limit`.
    pub async fn alert_transitions(&self, since_ms: i64, limit: i64) -> Result<Vec<TransitionRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        alert_transitions_in(&mut Conn::Postgres(&mut conn), since_ms, limit).await
    }
}
