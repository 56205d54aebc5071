//! How an event's idempotency key is stored: 16 bytes, its time (big-endian) then a 64-bit
//! FNV-1a hash of the text key the sources give (log group, stream, event id, ...). A text
//! key is about 150 bytes and was kept twice (row and unique index); the stored form sorts
//! by time, so inserts land next to each other as events arrive (a plain hash scattered
//! them over the whole index and made ingest slower, not faster). Two distinct events
//! collide only with the same millisecond and the same 64-bit hash.
//!
//! Databases written before the stored form hold text keys; [`convert_text_keys`] rewrites
//! them once, when the store is next opened for writing.

use super::raw::{self, Bind};
use super::{Store, StoreError};

/// The stored key of an event at `time_ms` whose source key is `key`.
pub fn stored_key(time_ms: i64, key: &str) -> [u8; 16] {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&time_ms.to_be_bytes());
    out[8..].copy_from_slice(&hash.to_be_bytes());
    out
}

/// Rows converted per transaction.
const BATCH: i64 = 50_000;

const PENDING: &str = "text_event_keys_up_to";

/// Converts the text keys of events stored before keys were stored compactly, highest id
/// first, a batch per transaction with its progress, so an interrupted conversion resumes.
/// Returns how many rows were converted.
pub async fn convert_text_keys(store: &Store) -> Result<u64, StoreError> {
    convert_in_batches(store, BATCH).await
}

async fn convert_in_batches(store: &Store, batch: i64) -> Result<u64, StoreError> {
    let mut converted = 0u64;
    loop {
        let done = raw::with_conn(store, |c| {
            c.transaction(|c| {
                let mut up_to = 0i64;
                c.query("SELECT value FROM store_meta WHERE name = ?1", &[Bind::Text(PENDING)], |r| up_to = r.i64(0))?;
                if up_to <= 0 {
                    return Ok(None);
                }
                let mut rows: Vec<(i64, [u8; 16])> = Vec::new();
                c.query(
                    "SELECT id, time_ms, idem_key FROM events WHERE id <= ?1 ORDER BY id DESC LIMIT ?2",
                    &[Bind::Int(up_to), Bind::Int(batch)],
                    |r| rows.push((r.i64(0), stored_key(r.i64(1), &r.text(2)))),
                )?;
                // OR IGNORE: two old keys with the same time and hash (2^-64) keep the second as text
                // rather than failing the open.
                let mut update = c.prepare("UPDATE OR IGNORE events SET idem_key = ?2 WHERE id = ?1 AND typeof(idem_key) = 'text'")?;
                for (id, key) in &rows {
                    update.execute(&[Bind::Int(*id), Bind::Blob(key)])?;
                }
                drop(update);
                // Below the lowest id read, or done when fewer than a batch were left.
                let next = if (rows.len() as i64) < batch { 0 } else { rows.last().map_or(0, |r| r.0 - 1) };
                c.execute("UPDATE store_meta SET value = ?2 WHERE name = ?1", &[Bind::Text(PENDING), Bind::Int(next)])?;
                Ok(Some(rows.len() as u64))
            })
        })
        .await?;
        match done {
            Some(n) => converted += n,
            None => return Ok(converted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn text_keys_are_converted_batch_by_batch_and_resume() {
        let store = Store::open_memory().await.unwrap();
        for id in 1..=5i64 {
            sqlx::query("INSERT INTO events (id, time_ms, env, function, operation, source, duration_s, idem_key, ingested_ms) VALUES (?, ?, 'PROD', 'f', 'op', 'logs', 0.5, ?, 1)")
                .bind(id)
                .bind(id * 10)
                .bind(format!("key-{id}"))
                .execute(store.pool())
                .await
                .unwrap();
        }
        sqlx::query("UPDATE store_meta SET value = 5 WHERE name = ?").bind(PENDING).execute(store.pool()).await.unwrap();
        assert_eq!(convert_in_batches(&store, 2).await.unwrap(), 5);
        let keys: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT id, idem_key FROM events ORDER BY id").fetch_all(store.pool()).await.unwrap();
        for (id, key) in keys {
            assert_eq!(key, stored_key(id * 10, &format!("key-{id}")));
        }
        assert_eq!(convert_in_batches(&store, 2).await.unwrap(), 0, "nothing left: the marker is at 0");
    }

    #[test]
    fn keys_sort_by_time_and_differ_by_text() {
        assert!(stored_key(1_000, "z") < stored_key(1_001, "a"));
        assert_ne!(stored_key(1_000, "a|b|1"), stored_key(1_000, "a|b|2"));
        assert_eq!(stored_key(5, "k"), stored_key(5, "k"));
    }
}
