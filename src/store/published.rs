//! What the CloudWatch publisher has sent: a watermark over `events.id` (ids grow in commit
//! order and are never reused, so an event stored late with an old event time still lands
//! above the watermark), read together with the events after it in one snapshot and moved
//! forward with a compare-and-set.

use super::{Store, StoreError};
use crate::clock::now_ms;

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

/// The publisher's position and what lies after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unpublished {
    pub watermark: i64,
    pub events: Vec<PendingEvent>,
    /// The watermark stood here, above every event id ever handed out (the database was
    /// replaced, say by a restored backup), and was moved down to the newest id: the events
    /// this database holds count as sent, since which of them CloudWatch has is unknown and
    /// sending a datum twice would double-count it there.
    pub reset_from: Option<i64>,
}

impl Store {
    /// The watermark and up to `limit` events above it in id order, from one snapshot.
    pub async fn unpublished_events(&self, limit: i64) -> Result<Unpublished, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut watermark: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(last_event_id), 0) FROM cloudwatch_published")
            .fetch_one(&mut *tx)
            .await?;
        let high_water: i64 = sqlx::query_scalar("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'event_rows'), 0)")
            .fetch_one(&mut *tx)
            .await?;
        let mut reset_from = None;
        if watermark > high_water {
            sqlx::query("UPDATE cloudwatch_published SET last_event_id = ?, updated_ms = ? WHERE id = 1")
                .bind(high_water)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            reset_from = Some(watermark);
            watermark = high_water;
        }
        let rows: Vec<(i64, i64, String, String, String, f64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT e.id, e.time_ms, s.env, s.function, s.operation, {} FROM event_rows e JOIN series s ON s.id = e.series \
             WHERE e.id > ? ORDER BY e.id LIMIT ?",
            super::pack::DURATION_SQL
        )))
        .bind(watermark)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let events = rows
            .into_iter()
            .map(|(id, time_ms, env, function, operation, duration_s)| PendingEvent { id, time_ms, env, function, operation, duration_s })
            .collect();
        Ok(Unpublished { watermark, events, reset_from })
    }

    /// Moves the watermark from `from` to `to`. Returns false, changing nothing, when it is no
    /// longer `from` (it was reset meanwhile): the caller re-reads.
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
        let u = store.unpublished_events(2).await.unwrap();
        assert_eq!(u.watermark, 0);
        assert_eq!(u.events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2]);
        assert!(store.advance_published(0, 2).await.unwrap());
        assert!(!store.advance_published(0, 3).await.unwrap(), "a stale `from` changes nothing");
        // A late event with an older time gets a newer id: still published.
        store_events(&store, &[("late", 1_000)]).await;
        let u = store.unpublished_events(100).await.unwrap();
        assert_eq!(u.watermark, 2);
        assert_eq!(u.events.iter().map(|e| (e.id, e.time_ms)).collect::<Vec<_>>(), vec![(3, 7_000), (4, 1_000)]);
    }

    #[tokio::test]
    async fn ids_are_never_reused_after_retention_and_a_watermark_ahead_is_reset() {
        let store = Store::open_memory().await.unwrap();
        store_events(&store, &[("a", 100_000), ("b", 100_000), ("old", 1_000)]).await;
        assert!(store.advance_published(0, 3).await.unwrap());
        // Retention removes the highest id (an old event stored late), then the whole table:
        // the next event still gets a new id, above the watermark.
        store.purge_before(50_000).await.unwrap();
        store_events(&store, &[("new", 200_000)]).await;
        let u = store.unpublished_events(100).await.unwrap();
        assert_eq!((u.watermark, u.reset_from), (3, None));
        assert_eq!(u.events.iter().map(|e| (e.id, e.time_ms)).collect::<Vec<_>>(), vec![(4, 200_000)]);
        store.purge_before(i64::MAX).await.unwrap();
        store_events(&store, &[("after-empty", 300_000)]).await;
        let u = store.unpublished_events(100).await.unwrap();
        assert_eq!(u.events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![5], "the emptied table's next id is new too");
        // A watermark above every id ever handed out (a replaced database) is moved down to
        // the newest id, and says so.
        assert!(store.advance_published(3, 1_000).await.unwrap());
        let u = store.unpublished_events(100).await.unwrap();
        assert_eq!((u.watermark, u.reset_from, u.events.len()), (5, Some(1_000), 0));
        store_events(&store, &[("next", 400_000)]).await;
        let u = store.unpublished_events(100).await.unwrap();
        assert_eq!(u.events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![6]);
    }
}
