//! Moves events stored before the compact rows (migration 0015 renamed their table to
//! `events_v1`) into `event_rows`, keeping their ids: a batch per transaction, each moved
//! batch deleted from the old table in the same transaction, so an interrupted conversion
//! resumes where it stopped and the file does not grow by a second copy. The old table is
//! dropped once empty. Runs when the store is opened, before anything reads events.

use super::event_keys::{event_key, key_of_stored, request_id_text_sql};
use super::pack::{self, PackedEvent, Packer};
use super::raw::{self, Bind, RawConn};
use super::write::series_ids;
use super::{SqliteStore, StoreError};

/// The timeout flag as reports read it from the old rows.
const TIMEOUT_SQL: &str =
    "(operation = 'Lambda.Duration' AND attributes IS NOT NULL AND instr(lower(attributes), '\"status\":\"timeout\"') > 0)";

/// Rows moved per transaction.
const BATCH: i64 = 20_000;

/// One stored row of the old table, owned (read before the writes of its batch).
struct OldRow {
    id: i64,
    time_ms: i64,
    names: [String; 4],
    duration_s: f64,
    request_id: Option<String>,
    trace_id: Option<String>,
    flags: i64,
    attributes: Option<String>,
    key: i64,
}

/// Converts every row still in `events_v1`; returns how many it moved.
pub async fn convert_old_events(store: &SqliteStore) -> Result<u64, StoreError> {
    convert_in_batches(store, BATCH, None).await
}

/// As [`convert_old_events`], `batch` rows per transaction, stopping after `max_batches`
/// transactions when given (how the tests interrupt it).
pub(super) async fn convert_in_batches(store: &SqliteStore, batch: i64, max_batches: Option<usize>) -> Result<u64, StoreError> {
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'events_v1'").fetch_one(store.pool()).await?;
    if pending == 0 {
        return Ok(0);
    }
    let mut moved = 0u64;
    let mut batches = 0usize;
    loop {
        if max_batches.is_some_and(|m| batches >= m) {
            return Ok(moved);
        }
        let n = raw::with_conn(store, |conn| conn.transaction(|conn| move_batch(conn, batch))).await?;
        batches += 1;
        moved += n;
        if n == 0 {
            sqlx::query("DROP TABLE IF EXISTS events_v1").execute(store.pool()).await?;
            return Ok(moved);
        }
        tracing::info!(moved, "Converting events stored by an earlier version to the compact rows.");
    }
}

fn move_batch(conn: &mut RawConn, batch: i64) -> Result<u64, StoreError> {
    let sql = format!(
        "SELECT id, time_ms, env, function, operation, source, duration_s, request_id IS NULL, {rid}, trace_id, \
         error, cold_start, {timeout}, attributes, typeof(idem_key), idem_key \
         FROM events_v1 ORDER BY id LIMIT ?1",
        rid = request_id_text_sql("request_id"),
        timeout = TIMEOUT_SQL
    );
    let mut rows = Vec::new();
    conn.query(&sql, &[Bind::Int(batch)], |r| {
        let key = match r.text(14).as_ref() {
            "blob" => key_of_stored(r.bytes(15)).unwrap_or(0),
            _ => event_key(&r.text(15)),
        };
        let opt = |i: usize, null: bool| (!null).then(|| r.text(i).into_owned());
        rows.push(OldRow {
            id: r.i64(0),
            time_ms: r.i64(1),
            names: [r.text(2).into_owned(), r.text(3).into_owned(), r.text(4).into_owned(), r.text(5).into_owned()],
            duration_s: r.f64(6),
            request_id: opt(8, r.i64(7) != 0),
            trace_id: opt(9, r.bytes(9).is_empty()),
            flags: (if r.i64(10) != 0 { pack::ERROR } else { 0 })
                | (if r.i64(11) != 0 { pack::COLD_START } else { 0 })
                | (if r.i64(12) != 0 { pack::TIMEOUT } else { 0 }),
            attributes: opt(13, r.bytes(13).is_empty()),
            key,
        });
    })?;
    let Some(last) = rows.last().map(|r| r.id) else {
        return Ok(0);
    };
    let series = series_ids(conn, &crate::model::Origin::default(), rows.iter().map(|r| (r.names[0].as_str(), r.names[1].as_str(), r.names[2].as_str(), r.names[3].as_str())))?;
    {
        let mut packer = Packer::new(conn)?;
        for r in &rows {
            packer.insert(&PackedEvent {
                id: Some(r.id),
                time_ms: r.time_ms,
                series: series[&(r.names[0].as_str(), r.names[1].as_str(), r.names[2].as_str(), r.names[3].as_str())],
                function: &r.names[1],
                duration_s: r.duration_s,
                flags: r.flags,
                key: r.key,
                request_id: r.request_id.as_deref(),
                trace_id: r.trace_id.as_deref(),
                attributes: r.attributes.as_deref(),
            })?;
        }
        packer.finish()?;
    }
    conn.execute("DELETE FROM events_v1 WHERE id <= ?1", &[Bind::Int(last)])?;
    Ok(rows.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows as the release before the compact rows stored them, in the table the migration
    /// renamed: text and 16-byte keys, Lambda request ids as bytes and others as text, trace
    /// ids as text, a timeout in the attributes.
    async fn old_rows(store: &SqliteStore) {
        let mut key16 = [0u8; 16];
        key16[..8].copy_from_slice(&1_000i64.to_be_bytes());
        key16[8..].copy_from_slice(&crate::hash::fnv1a("g|s|1").to_be_bytes());
        let rid = request_id_bytes_of("1c8df7d3-a1b2-46da-9778-518e6eca8125");
        let rows: [(i64, i64, &str, &str, Option<Vec<u8>>, Option<&str>, Option<&str>, Vec<u8>); 5] = [
            (3, 1_000, "Bedrock.InvokeModel", "logs", Some(rid.clone()), None, None, key16.to_vec()),
            (4, 1_500, "Lambda.Duration", "report", Some(rid), Some("1-5f8a1b2c-0123456789abcdef01234567"), Some(r#"{"status":"timeout"}"#), b"g|s|2".to_vec()),
            (7, 2_000, "Bedrock.InvokeModel", "xray", None, Some("1-5f8a1b2c-0123456789abcdef01234567"), Some(r#"{"namespace":"aws"}"#), b"t|1".to_vec()),
            (8, 2_500, "Lambda.Duration", "report", Some(b"req-1".to_vec()), None, None, b"g|s|3".to_vec()),
            (12, 3_000, "total_function_duration", "logs", None, None, None, b"g|s|4".to_vec()),
        ];
        for (id, t, op, source, rid, tid, attrs, key) in rows {
            let rid_is_text = rid.as_deref() == Some(b"req-1".as_slice());
            let q = sqlx::query(
                "INSERT INTO events_v1 (id, time_ms, env, function, operation, source, duration_s, request_id, trace_id, cold_start, error, attributes, idem_key, ingested_ms) \
                 VALUES (?, ?, 'Dev', 'f', ?, ?, ?, ?, ?, ?, 0, ?, ?, 1)",
            )
            .bind(id)
            .bind(t)
            .bind(op)
            .bind(source)
            .bind(id as f64 / 10.0);
            let q = if rid_is_text { q.bind("req-1") } else { q.bind(rid) };
            let q = q.bind(tid).bind(i64::from(id == 3)).bind(attrs);
            let q = if key.len() == 16 { q.bind(key) } else { q.bind(String::from_utf8(key).unwrap()) };
            q.execute(store.pool()).await.unwrap();
        }
    }

    fn request_id_bytes_of(rid: &str) -> Vec<u8> {
        crate::store::event_keys::request_id_bytes(rid).unwrap().to_vec()
    }

    /// Interrupted after one batch, the conversion resumes on the next call; the rows read
    /// through the `events` view exactly as they were stored, ids kept, and re-ingesting one
    /// of them is a duplicate.
    #[tokio::test]
    async fn the_conversion_resumes_and_keeps_every_fact() {
        let store = SqliteStore::open_memory().await.unwrap();
        old_rows(&store).await;
        assert_eq!(convert_in_batches(&store, 2, Some(1)).await.unwrap(), 2);
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events_v1").fetch_one(store.pool()).await.unwrap();
        assert_eq!(left, 3, "one batch moved and deleted, the rest waits");
        assert_eq!(convert_in_batches(&store, 2, None).await.unwrap(), 3);
        let gone: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'events_v1'").fetch_one(store.pool()).await.unwrap();
        assert_eq!(gone, 0);
        type Read = (i64, i64, String, String, f64, Option<String>, Option<String>, i64, i64, i64, Option<String>);
        let rows: Vec<Read> = sqlx::query_as(
            "SELECT id, time_ms, operation, source, duration_s, request_id, trace_id, cold_start, error, timeout, attributes FROM events ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let tid = Some("1-5f8a1b2c-0123456789abcdef01234567".to_string());
        let rid = Some("1c8df7d3-a1b2-46da-9778-518e6eca8125".to_string());
        assert_eq!(
            rows,
            vec![
                (3, 1_000, "Bedrock.InvokeModel".into(), "logs".into(), 0.3, rid.clone(), None, 1, 0, 0, None),
                (4, 1_500, "Lambda.Duration".into(), "report".into(), 0.4, rid, tid.clone(), 0, 0, 1, Some(r#"{"status":"timeout"}"#.into())),
                (7, 2_000, "Bedrock.InvokeModel".into(), "xray".into(), 0.7, None, tid, 0, 0, 0, Some(r#"{"namespace":"aws"}"#.into())),
                (8, 2_500, "Lambda.Duration".into(), "report".into(), 0.8, Some("req-1".into()), None, 0, 0, 0, None),
                (12, 3_000, "total_function_duration".into(), "logs".into(), 1.2, None, None, 0, 0, 0, None),
            ]
        );
        let e = crate::model::TimingEvent {
            time_ms: 1_000,
            env: "Dev".into(),
            function: "f".into(),
            operation: "Bedrock.InvokeModel".into(),
            source: crate::model::Source::Logs,
            duration_s: 0.3,
            request_id: None,
            trace_id: None,
            function_version: None,
            cold_start: false,
            error: false,
            idem_key: "g|s|1".into(),
            attributes: vec![],
        };
        let outcome = store.commit(&crate::store::Batch { events: vec![e], ..Default::default() }).await.unwrap();
        assert_eq!((outcome.inserted_total(), outcome.duplicates), (0, 1), "a converted 16-byte key still knows its event");
        assert!(store.event_id_high_water().await.unwrap() >= 12, "ids go on above the converted ones");
    }
}
