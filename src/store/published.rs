//! What the CloudWatch publisher has sent: a watermark over `events.id` (events are
//! numbered in commit order, so an event stored late with an old event time still lands
//! above the watermark), read together with the events after it in one snapshot and moved
//! forward with a compare-and-set. See `migrations/20261122000004_cloudwatch_published.sql`
//! for why the watermark can also move back.

use super::{Store, StoreError, now_ms};

/// A stored event the publisher has not sent yet: only what a CloudWatch datum needs.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    pub id: i64,
    pub time_ms: i64,
    pub env: String,
    pub function: String,
    pub operation: String,
    pub duration_s: f64,
}

impl Store {
    /// The watermark and up to `limit` events above it in id order, from one snapshot.
    pub async fn unpublished_events(&self, limit: i64) -> Result<(i64, Vec<PendingEvent>), StoreError> {
        let mut tx = self.pool.begin().await?;
        let watermark: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(last_event_id), 0) FROM cloudwatch_published")
            .fetch_one(&mut *tx)
            .await?;
        let rows: Vec<(i64, i64, String, String, String, f64)> = sqlx::query_as(
            "SELECT id, time_ms, env, function, operation, duration_s FROM events WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(watermark)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let events = rows
            .into_iter()
            .map(|(id, time_ms, env, function, operation, duration_s)| PendingEvent { id, time_ms, env, function, operation, duration_s })
            .collect();
        Ok((watermark, events))
    }

    /// Moves the watermark from `from` to `to`. Returns false, changing nothing, when it is no
    /// longer `from` (a reused event id lowered it): the caller re-reads.
    pub async fn advance_published(&self, from: i64, to: i64) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE cloudwatch_published SET last_event_id = ?, updated_ms = ? WHERE id = 1 AND last_event_id = ?")
            .bind(to)
            .bind(now_ms())
            .bind(from)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Source, TimingEvent};
    use crate::store::{Batch, Store};

    fn event(key: &str, time_ms: i64) -> TimingEvent {
        TimingEvent {
            time_ms,
            env: "PROD".into(),
            function: "f".into(),
            operation: "op".into(),
            source: Source::Logs,
            duration_s: 0.25,
            request_id: None,
            trace_id: None,
            function_version: None,
            cold_start: false,
            error: false,
            idem_key: key.into(),
            attributes: vec![],
        }
    }

    async fn store_events(store: &Store, keys: &[(&str, i64)]) {
        let events = keys.iter().map(|(k, t)| event(k, *t)).collect();
        store.commit(&Batch { events, ..Batch::default() }).await.unwrap();
    }

    #[tokio::test]
    async fn watermark_reads_only_newer_ids_and_moves_by_compare_and_set() {
        let store = Store::open_memory().await.unwrap();
        store_events(&store, &[("a", 5_000), ("b", 6_000), ("c", 7_000)]).await;
        let (w, events) = store.unpublished_events(2).await.unwrap();
        assert_eq!(w, 0);
        assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2]);
        assert!(store.advance_published(0, 2).await.unwrap());
        assert!(!store.advance_published(0, 3).await.unwrap(), "a stale `from` changes nothing");
        // A late event with an older time gets a newer id: still published.
        store_events(&store, &[("late", 1_000)]).await;
        let (w, events) = store.unpublished_events(100).await.unwrap();
        assert_eq!(w, 2);
        assert_eq!(events.iter().map(|e| (e.id, e.time_ms)).collect::<Vec<_>>(), vec![(3, 7_000), (4, 1_000)]);
    }

    #[tokio::test]
    async fn an_id_reused_after_retention_lowers_the_watermark() {
        let store = Store::open_memory().await.unwrap();
        store_events(&store, &[("a", 100_000), ("b", 100_000), ("old", 1_000)]).await;
        assert!(store.advance_published(0, 3).await.unwrap());
        // Retention removes the highest id (an old event stored late); the next insert gets
        // id 3 again, which would hide below the watermark.
        store.purge_before(50_000).await.unwrap();
        store_events(&store, &[("new", 200_000)]).await;
        let (w, events) = store.unpublished_events(100).await.unwrap();
        assert_eq!(w, 2);
        assert_eq!(events.iter().map(|e| (e.id, e.time_ms)).collect::<Vec<_>>(), vec![(3, 200_000)]);
        assert!(!store.advance_published(3, 3).await.unwrap(), "the publisher's stale compare-and-set fails");
    }
}
