//! What the CloudWatch publisher has sent, per destination (the daemon's own account, or one
//! per watched account and region): a watermark over event ids (ids grow in commit order
//! and are never reused, so an event stored late with an old event time still lands above
//! the watermark), read together with the destination's events after it in one snapshot and
//! moved forward with a compare-and-set.

use super::portable::{Conn, Stmt, Value};
use super::{SqliteStore, StoreError};
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
    /// Where the event came from (`default` and "" without accounts).
    pub account: String,
    pub region: String,
}

/// One place metrics are published to, and which events go there.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Destination<'a> {
    /// The watermark's name: "" for the daemon's own account (every event).
    pub name: &'a str,
    /// Only the events of this (account, region); None: every event.
    pub origin: Option<(&'a str, &'a str)>,
}

/// The publisher's position and what lies after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unpublished {
    pub watermark: i64,
    pub events: Vec<PendingEvent>,
    /// Every event of the destination with an id up to here is in `events` (or below the
    /// watermark): after sending them the watermark may move here, past other
    /// destinations' events, so a destination with few events does not read the same
    /// stretch of ids again every round. Without a filter, the last event's id.
    pub scanned_to: i64,
    /// The watermark stood here, above every event id ever handed out (the database was
    /// replaced, say by a restored backup), and was moved down to the newest id: the events
    /// this database holds count as sent, since which of them CloudWatch has is unknown and
    /// sending a datum twice would double-count it there.
    pub reset_from: Option<i64>,
}

/// What differs between the engines in reading the published watermark's events.
pub(crate) struct EventsSql {
    /// The highest event id ever handed out.
    pub high_water: &'static str,
    /// `FROM` the events joined with `series s`, as `e`, with a duration column.
    pub from: &'static str,
    pub duration: &'static str,
}

/// The SQLite store's: the compact rows.
const SQLITE: EventsSql = EventsSql {
    high_water: "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'event_rows'), 0)",
    from: "event_rows e JOIN series s ON s.id = e.series",
    duration: super::pack::DURATION_SQL,
};

/// Where to go on from, once the destination's events up to `last_read` were read
/// (pure). Without a filter every event is the destination's: its position is its last
/// event read. With one, a read that was not cut by `limit` saw every event up to
/// `high_water`, and the watermark may pass the other destinations' events up to there.
pub(crate) fn scanned_to(filtered: bool, read: usize, limit: i64, last_read: Option<i64>, watermark: i64, high_water: i64) -> i64 {
    let full = !filtered || usize::try_from(limit).is_ok_and(|l| read >= l);
    match last_read {
        Some(last) if full => last,
        None if !filtered => watermark,
        _ => high_water.max(watermark),
    }
}

/// A destination not seen before starts at 0.
const NEW_DESTINATION: &str =
    "INSERT INTO cloudwatch_destinations (destination, last_event_id, updated_ms) VALUES (?, 0, ?) ON CONFLICT (destination) DO NOTHING";

/// The destination's watermark and up to `limit` of its events above it in id order (in
/// the caller's transaction, on either engine). A destination not seen before starts at 0.
pub(crate) async fn unpublished_in(conn: &mut Conn<'_>, sql: &EventsSql, dest: Destination<'_>, limit: i64) -> Result<Unpublished, StoreError> {
    let name = Value::Text(dest.name);
    conn.execute(&Stmt::new(NEW_DESTINATION, [name, Value::Int(now_ms())])).await?;
    let rows: Vec<(i64,)> = conn.fetch_all(&Stmt::new("SELECT last_event_id FROM cloudwatch_destinations WHERE destination = ?", [name])).await?;
    let mut watermark = rows.first().map_or(0, |r| r.0);
    let high: Vec<(i64,)> = conn.fetch_all(&Stmt::new(sql.high_water, [])).await?;
    let high_water = high.first().map_or(0, |r| r.0);
    let mut reset_from = None;
    if watermark > high_water {
        conn.execute(&Stmt::new(
            "UPDATE cloudwatch_destinations SET last_event_id = ?, updated_ms = ? WHERE destination = ?",
            [Value::Int(high_water), Value::Int(now_ms()), name],
        ))
        .await?;
        reset_from = Some(watermark);
        watermark = high_water;
    }
    let only_origin = if dest.origin.is_some() { " AND s.account = ? AND s.region = ?" } else { "" };
    let text = format!(
        "SELECT e.id, e.time_ms, s.env, s.function, s.operation, {}, s.account, s.region FROM {} WHERE e.id > ?{only_origin} ORDER BY e.id LIMIT ?",
        sql.duration, sql.from
    );
    let mut values = vec![Value::Int(watermark)];
    if let Some((account, region)) = dest.origin {
        values.extend([Value::Text(account), Value::Text(region)]);
    }
    values.push(Value::Int(limit));
    let rows: Vec<(i64, i64, String, String, String, f64, String, String)> = conn.fetch_all(&Stmt::new(text, values)).await?;
    let scanned_to = scanned_to(dest.origin.is_some(), rows.len(), limit, rows.last().map(|r| r.0), watermark, high_water);
    let events = rows
        .into_iter()
        .map(|(id, time_ms, env, function, operation, duration_s, account, region)| PendingEvent { id, time_ms, env, function, operation, duration_s, account, region })
        .collect();
    Ok(Unpublished { watermark, events, scanned_to, reset_from })
}

/// Moves the destination's watermark from `from` to `to`; false, changing nothing, when it
/// is no longer `from` (either engine).
pub(crate) async fn advance_published_in(conn: &mut Conn<'_>, destination: &str, from: i64, to: i64) -> Result<bool, StoreError> {
    // A destination not seen before is at 0 (as a read would have made it).
    conn.execute(&Stmt::new(NEW_DESTINATION, [Value::Text(destination), Value::Int(now_ms())])).await?;
    let n = conn
        .execute(&Stmt::new(
            "UPDATE cloudwatch_destinations SET last_event_id = ?, updated_ms = ? WHERE destination = ? AND last_event_id = ?",
            [Value::Int(to), Value::Int(now_ms()), Value::Text(destination), Value::Int(from)],
        ))
        .await?;
    Ok(n == 1)
}

impl SqliteStore {
    /// The watermark and up to `limit` events above it in id order, from one snapshot.
    pub async fn unpublished_events(&self, dest: Destination<'_>, limit: i64) -> Result<Unpublished, StoreError> {
        let mut tx = self.pool.begin().await?;
        let out = unpublished_in(&mut Conn::Sqlite(&mut tx), &SQLITE, dest, limit).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Moves the destination's watermark from `from` to `to` (compare-and-set).
    pub async fn advance_published(&self, destination: &str, from: i64, to: i64) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        advance_published_in(&mut Conn::Sqlite(&mut conn), destination, from, to).await
    }
}
