//! How an event's idempotency key is stored: 16 bytes, its time (big-endian) then a 64-bit
//! FNV-1a hash of the text key the sources give (log group, stream, event id, ...). A text
//! key is about 150 bytes and was kept twice (row and unique index); the stored form sorts
//! by time, so inserts land next to each other as events arrive (a plain hash scattered
//! them over the whole index and made ingest slower, not faster). Two distinct events
//! collide only with the same millisecond and the same 64-bit hash.
//!
//! Databases written before the stored form hold text keys; [`convert_text_keys`] rewrites
//! them once, when the store is next opened for writing.
//!
//! Request ids in Lambda's form (a lowercase UUID, 36 characters) are stored as their 16
//! bytes, in the row and in the request index; any other request id stays text. SQL reads
//! them back through [`REQUEST_ID_TEXT`], writes compare through [`stored_request_id_sql`].

use super::raw::{self, Bind};
use super::{Store, StoreError};

/// The stored key of an event at `time_ms` whose source key is `key`.
pub fn stored_key(time_ms: i64, key: &str) -> [u8; 16] {
    let hash = crate::hash::fnv1a(key);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&time_ms.to_be_bytes());
    out[8..].copy_from_slice(&hash.to_be_bytes());
    out
}

/// The 16 bytes of a request id in Lambda's form (`8-4-4-4-12` lowercase hex digits), the
/// form it is stored in; `None` for any other request id (stored as text).
pub fn request_id_bytes(rid: &str) -> Option<[u8; 16]> {
    let b = rid.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut out = [0u8; 16];
    let mut digits = b.iter().filter(|&&c| c != b'-');
    for byte in &mut out {
        let mut v = 0u8;
        for _ in 0..2 {
            let d = match digits.next()? {
                c @ b'0'..=b'9' => c - b'0',
                c @ b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            v = v << 4 | d;
        }
        *byte = v;
    }
    digits.next().is_none().then_some(out)
}

/// `events.request_id` as text: a stored UUID back in its 36-character form.
pub const REQUEST_ID_TEXT: &str = "CASE WHEN typeof(request_id) = 'blob' THEN lower(substr(hex(request_id), 1, 8) || '-' || \
     substr(hex(request_id), 9, 4) || '-' || substr(hex(request_id), 13, 4) || '-' || substr(hex(request_id), 17, 4) || '-' || \
     substr(hex(request_id), 21, 12)) ELSE request_id END";

/// The SQL of the stored form of the text request id `expr` (as [`request_id_bytes`] decides).
pub fn stored_request_id_sql(expr: &str) -> String {
    let hex = "[0-9a-f]";
    let glob = [8, 4, 4, 4, 12].map(|n| hex.repeat(n)).join("-");
    format!("CASE WHEN length({expr}) = 36 AND {expr} GLOB '{glob}' THEN unhex(replace({expr}, '-', '')) ELSE {expr} END")
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
    fn lambda_request_ids_take_sixteen_bytes_and_others_stay_text() {
        let rid = "1c8df7d3-a1b2-46da-9778-518e6eca8125";
        let b = request_id_bytes(rid).unwrap();
        assert_eq!(b[0], 0x1c);
        assert_eq!(b[15], 0x25);
        for other in ["1C8DF7D3-A1B2-46DA-9778-518E6ECA8125", "req-1", "1c8df7d3a1b246da9778518e6eca8125", "1c8df7d3-a1b2-46da-9778-518e6eca812g", ""] {
            assert_eq!(request_id_bytes(other), None, "{other}");
        }
    }

    /// The SQL forms agree with the Rust one both ways.
    #[tokio::test]
    async fn the_sql_forms_agree_with_request_id_bytes() {
        let store = Store::open_memory().await.unwrap();
        for rid in ["1c8df7d3-a1b2-46da-9778-518e6eca8125", "req-1", "1C8DF7D3-A1B2-46DA-9778-518E6ECA8125"] {
            let stored: Vec<u8> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT CAST({} AS BLOB)", stored_request_id_sql("?1")))).bind(rid).fetch_one(store.pool()).await.unwrap();
            assert_eq!(stored, request_id_bytes(rid).map_or(rid.as_bytes().to_vec(), |b| b.to_vec()), "{rid}");
            let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT {REQUEST_ID_TEXT} FROM (SELECT {} AS request_id)",
                stored_request_id_sql("?1")
            )))
            .bind(rid)
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert_eq!(text, rid);
        }
    }

    /// Request ids stored as text before are converted in place by the migration.
    #[tokio::test]
    async fn stored_lambda_request_ids_are_converted_by_the_migration() {
        use sqlx::ConnectOptions;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let rid = "1c8df7d3-a1b2-46da-9778-518e6eca8125";
        {
            let mut old = sqlx::migrate!();
            old.migrations = std::borrow::Cow::Owned(old.migrations.iter().filter(|m| m.version < 20261127000013).cloned().collect());
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true).connect().await.unwrap();
            old.run(&mut conn).await.unwrap();
            for (i, r) in [rid, "req-1", "1C8DF7D3-A1B2-46DA-9778-518E6ECA8125"].into_iter().enumerate() {
                sqlx::query("INSERT INTO events (time_ms, env, function, operation, source, duration_s, request_id, idem_key, ingested_ms) VALUES (1, 'PROD', 'f', 'op', 'logs', ?, ?, ?, 1)")
                    .bind(i as f64)
                    .bind(r)
                    .bind(vec![i as u8; 16])
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
        let store = Store::open(&path, crate::store::OpenMode::Writer, 4096).await.unwrap();
        let types: Vec<String> = sqlx::query_scalar("SELECT typeof(request_id) FROM events ORDER BY id").fetch_all(store.pool()).await.unwrap();
        assert_eq!(types, ["blob", "text", "text"]);
        let filter = crate::store::events::EventFilter { from_ms: 0, to_ms: i64::MAX, env: None, function: None, operations: &[] };
        let read: Vec<Option<String>> = store.slowest_events(filter, 10).await.unwrap().into_iter().map(|e| e.request_id).collect();
        assert_eq!(read, [Some("1C8DF7D3-A1B2-46DA-9778-518E6ECA8125".into()), Some("req-1".into()), Some(rid.into())]);
    }

    #[test]
    fn keys_sort_by_time_and_differ_by_text() {
        assert!(stored_key(1_000, "z") < stored_key(1_001, "a"));
        assert_ne!(stored_key(1_000, "a|b|1"), stored_key(1_000, "a|b|2"));
        assert_eq!(stored_key(5, "k"), stored_key(5, "k"));
    }
}
