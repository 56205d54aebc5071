//! Reads of the shared history with the same answers as the SQLite store's: where a source
//! resumes (checkpoints, stream states) and what the evaluator follows (events by id, in
//! commit order, and from a time on).

use super::PgStore;
use crate::model::Checkpoint;
use crate::store::StoreError;
use crate::store::events::WindowEvent;
use crate::store::portable::Conn;

/// The columns a [`WindowEvent`] is read from.
const WINDOW: &str = "SELECT e.id, s.account, s.region, s.env, s.function, s.operation, s.source, e.time_ms, e.duration_s, e.flags \
                      FROM events e JOIN series s ON s.id = e.series";

type WindowRow = (i64, String, String, String, String, String, String, i64, f64, i16);

fn window_event((id, account, region, env, function, operation, source, time_ms, duration_s, flags): WindowRow) -> WindowEvent {
    WindowEvent { id, account, region, env, function, operation, source, time_ms, duration_s, error: flags & 1 != 0 }
}

impl PgStore {
    /// A source's position under `key`, if it has one (as the SQLite store answers).
    pub async fn checkpoint(&self, source: &str, key: &str) -> Result<Option<Checkpoint>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        crate::store::checkpoint_in(&mut Conn::Postgres(&mut conn), source, key).await
    }

    /// Every checkpoint of a source, by key.
    pub async fn checkpoints(&self, source: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        crate::store::checkpoints_in(&mut Conn::Postgres(&mut conn), source).await
    }

    /// The saved states of these streams of one log group (those that have one), by name.
    pub async fn stream_states_of(&self, log_group: &str, streams: &[&str]) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT stream, state FROM stream_state WHERE log_group = $1 AND stream = ANY($2) ORDER BY stream")
            .bind(log_group)
            .bind(streams)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Stored events (of one source).
    pub async fn count_events(&self, source: Option<&str>) -> Result<i64, StoreError> {
        Ok(match source {
            Some(s) => {
                sqlx::query_scalar("SELECT count(*) FROM events WHERE series IN (SELECT id FROM series WHERE source = $1)")
                    .bind(s)
                    .fetch_one(&self.pool)
                    .await?
            }
            None => sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&self.pool).await?,
        })
    }

    /// The highest event id handed out (0 before the first): a watermark above it belongs to
    /// another database.
    pub async fn event_id_high_water(&self) -> Result<i64, StoreError> {
        // The identity's sequence: ids deleted by retention are never handed out again.
        Ok(sqlx::query_scalar("SELECT COALESCE((SELECT last_value FROM events_id_seq WHERE is_called), 0)").fetch_one(&self.pool).await?)
    }

    /// Up to `limit` events with ids above `after_id`, in id order (commit order: inserts
    /// hold the events lock to commit).
    pub async fn events_after(&self, after_id: i64, limit: i64) -> Result<Vec<WindowEvent>, StoreError> {
        let rows: Vec<WindowRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{WINDOW} WHERE e.id > $1 ORDER BY e.id LIMIT $2")))
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(window_event).collect())
    }

    /// The events with event time from `from_ms` on and ids up to `up_to_id`.
    pub async fn events_from(&self, from_ms: i64, up_to_id: i64) -> Result<Vec<WindowEvent>, StoreError> {
        let rows: Vec<WindowRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{WINDOW} WHERE e.time_ms >= $1 AND e.id <= $2 ORDER BY e.id")))
            .bind(from_ms)
            .bind(up_to_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(window_event).collect())
    }
}
