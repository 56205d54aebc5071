//! How an event's identities are stored. Its idempotency key: a 47-bit FNV-1a hash of the
//! text key the sources give (log group, stream, event id, ...), unique together with the
//! event's time (`event_rows_key (time_ms, key)`): two distinct events collide only with the
//! same millisecond and the same 47 bits. A text key is about 150 bytes; a release kept it
//! twice, the next one as 16 bytes (time, then the 64-bit hash: [`key_of_stored`] reads it).
//!
//! Request ids in Lambda's form (a lowercase UUID, 36 characters) and trace ids in X-Ray's
//! (`1-` 8 hex `-` 24 hex, lowercase) are stored as their 16 bytes; any other id stays text.
//! SQL reads them back as text through [`request_id_text_sql`] and [`trace_id_text_sql`].

/// The stored key of an event whose source key is `key` (0 ≤ key < 2⁴⁷: six bytes in SQLite).
pub fn event_key(key: &str) -> i64 {
    (crate::hash::fnv1a(key) >> 17) as i64
}

/// The key of a row stored with the 16-byte form (time, then the 64-bit hash, big-endian).
pub fn key_of_stored(stored: &[u8]) -> Option<i64> {
    let hash: [u8; 8] = stored.get(8..16)?.try_into().ok()?;
    Some((u64::from_be_bytes(hash) >> 17) as i64)
}

/// The 16 bytes of a request id in Lambda's form (`8-4-4-4-12` lowercase hex digits), the
/// form it is stored in; `None` for any other request id (stored as text).
pub fn request_id_bytes(rid: &str) -> Option<[u8; 16]> {
    let b = rid.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    sixteen_bytes(b)
}

/// The 16 bytes of a trace id in X-Ray's form (`1-` 8 lowercase hex digits `-` 24), `None`
/// for any other id (stored as text).
pub fn trace_id_bytes(tid: &str) -> Option<[u8; 16]> {
    let b = tid.as_bytes();
    if b.len() != 35 || !tid.starts_with("1-") || b[10] != b'-' {
        return None;
    }
    sixteen_bytes(&b[2..])
}

/// The 16 bytes written as exactly 32 lowercase hex digits in `text`, dashes skipped.
fn sixteen_bytes(text: &[u8]) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    let mut digits = text.iter().filter(|&&c| c != b'-');
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

/// The stored request id `col` as text: 16 bytes back in the 36-character form.
pub fn request_id_text_sql(col: &str) -> String {
    format!(
        "CASE WHEN typeof({col}) = 'blob' THEN lower(substr(hex({col}), 1, 8) || '-' || substr(hex({col}), 9, 4) || '-' || \
         substr(hex({col}), 13, 4) || '-' || substr(hex({col}), 17, 4) || '-' || substr(hex({col}), 21, 12)) ELSE {col} END"
    )
}

/// The stored trace id `col` as text.
pub fn trace_id_text_sql(col: &str) -> String {
    format!("CASE WHEN typeof({col}) = 'blob' THEN '1-' || lower(substr(hex({col}), 1, 8)) || '-' || lower(substr(hex({col}), 9, 24)) ELSE {col} END")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

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

    #[test]
    fn xray_trace_ids_take_sixteen_bytes_and_others_stay_text() {
        let tid = "1-5f8a1b2c-0123456789abcdef01234567";
        let b = trace_id_bytes(tid).unwrap();
        assert_eq!((b[0], b[4], b[15]), (0x5f, 0x01, 0x67));
        for other in ["1-5F8A1B2C-0123456789ABCDEF01234567", "2-5f8a1b2c-0123456789abcdef01234567", "1-5f8a1b2c-0123456789abcdef0123456", "t-1", ""] {
            assert_eq!(trace_id_bytes(other), None, "{other}");
        }
    }

    /// The SQL text forms give back exactly the ids the Rust forms stored.
    #[tokio::test]
    async fn the_sql_text_forms_read_back_the_stored_ids() {
        let store = SqliteStore::open_memory().await.unwrap();
        let cases: [(&str, fn(&str) -> Option<[u8; 16]>, String); 2] =
            [("1c8df7d3-a1b2-46da-9778-518e6eca8125", request_id_bytes, request_id_text_sql("?1")), ("1-5f8a1b2c-0123456789abcdef01234567", trace_id_bytes, trace_id_text_sql("?1"))];
        for (id, bytes, sql) in cases {
            let stored = bytes(id).unwrap().to_vec();
            let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT {sql}"))).bind(stored).fetch_one(store.pool()).await.unwrap();
            assert_eq!(text, id);
            let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT {sql}"))).bind("req-1").fetch_one(store.pool()).await.unwrap();
            assert_eq!(text, "req-1");
        }
    }

    #[test]
    fn keys_fit_six_bytes_differ_by_text_and_match_the_earlier_stored_form() {
        for k in ["a|b|1", "a|b|2", "", "x".repeat(300).as_str()] {
            let key = event_key(k);
            assert!((0..1i64 << 47).contains(&key), "{k}");
            let mut earlier = [0u8; 16];
            earlier[..8].copy_from_slice(&123i64.to_be_bytes());
            earlier[8..].copy_from_slice(&crate::hash::fnv1a(k).to_be_bytes());
            assert_eq!(key_of_stored(&earlier), Some(key));
        }
        assert_ne!(event_key("a|b|1"), event_key("a|b|2"));
        assert_eq!(key_of_stored(&[0u8; 4]), None);
    }
}
