//! The CloudWatch publisher's watermarks on PostgreSQL: the SQLite store's statements and
//! decisions (`crate::store::published`) over this engine's events table.

use super::PgStore;
use crate::store::portable::Conn;
use crate::store::published::{Destination, EventsSql, Unpublished, advance_published_in, unpublished_in};
use crate::store::StoreError;

const POSTGRES: EventsSql = EventsSql {
    high_water: "SELECT COALESCE((SELECT last_value FROM events_id_seq WHERE is_called), 0)",
    from: "events e JOIN series s ON s.id = e.series",
    duration: "e.duration_s",
};

impl PgStore {
    /// The destination's watermark and up to `limit` of its events above it, in id order.
    pub async fn unpublished_events(&self, dest: Destination<'_>, limit: i64) -> Result<Unpublished, StoreError> {
        let mut tx = self.pool.begin().await?;
        let out = unpublished_in(&mut Conn::Postgres(&mut tx), &POSTGRES, dest, limit).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Moves the destination's watermark from `from` to `to` (compare-and-set).
    pub async fn advance_published(&self, destination: &str, from: i64, to: i64) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        advance_published_in(&mut Conn::Postgres(&mut conn), destination, from, to).await
    }
}
