//! The compact event rows (migration 0015): an event's own columns in `event_rows`, what the
//! events of one invocation share (request id, trace id) once in `invocations`, each
//! attribute set once in `attribute_sets`, and the time span of every block of 1024 ids in
//! `event_blocks`. The write path and the conversion of rows stored before both store
//! events through [`Packer`], so both keep these tables consistent the same way.

use super::StoreError;
use super::event_keys::{request_id_bytes, trace_id_bytes};
use super::raw::{Bind, RawConn, Stmt};
use std::collections::{BTreeMap, HashMap, HashSet};

/// `event_rows.flags` bits.
pub const ERROR: i64 = 1;
pub const COLD_START: i64 = 2;
pub const TIMEOUT: i64 = 4;

/// Ids per `event_blocks` row (as a shift): a time range reads whole blocks, so a block is
/// small enough that late events widen few of them, large enough that the table stays tiny.
pub const BLOCK_SHIFT: u32 = 10;

/// How far an invocation's events lie from its first one: a Lambda invocation lasts at most
/// 15 minutes, plus a minute for clocks. Events of the same request id further apart (async
/// retries days later) belong to another invocation row.
pub const INVOCATION_SPAN_MS: i64 = 16 * 60_000;

/// The rows `alias` of events in `[?a, ?b)` by event time, through the blocks that overlap
/// it: the tables to put after `FROM` (more can be joined after them) and the conditions to
/// put after `WHERE`, for `?a` and `?b` given as placeholder numbers. `CROSS JOIN` keeps the
/// blocks the outer loop, `+` keeps SQLite from reading the time through the key index
/// instead of the row id ranges.
pub fn time_range_sql(alias: &str, a: usize, b: usize) -> (String, String) {
    let shift = BLOCK_SHIFT;
    let last = (1i64 << shift) - 1;
    (
        format!("event_blocks b CROSS JOIN event_rows {alias} ON {alias}.id BETWEEN (b.block << {shift}) AND (b.block << {shift}) + {last}"),
        format!("b.max_ms >= ?{a} AND b.min_ms < ?{b} AND +{alias}.time_ms >= ?{a} AND +{alias}.time_ms < ?{b}"),
    )
}

/// `e.duration` in seconds, as it was given: see [`stored_duration`].
pub const DURATION_SQL: &str = "(CASE WHEN typeof(e.duration) = 'integer' THEN e.duration / 1000000.0 ELSE e.duration END)";

/// The stored duration in column `i` of `row`, in seconds (as [`DURATION_SQL`] reads it,
/// without SQLite evaluating an expression per row).
pub fn read_duration(row: &super::raw::Row<'_>, i: usize) -> f64 {
    if row.is_int(i) { row.i64(i) as f64 / 1e6 } else { row.f64(i) }
}

/// A duration as stored: whole microseconds as an integer (3 or 4 bytes instead of 8) when
/// dividing them by 10⁶ gives back exactly `seconds` (what log lines print: milliseconds
/// with a few decimals), else the seconds themselves.
pub fn stored_duration(seconds: f64) -> Bind<'static> {
    let us = (seconds * 1e6).round();
    if us.abs() < 9.0e15 && us / 1e6 == seconds {
        Bind::Int(us as i64)
    } else {
        Bind::Real(seconds)
    }
}

/// An event as the rows keep it.
#[derive(Debug, Clone)]
pub struct PackedEvent<'a> {
    /// Kept when converting rows stored before (their ids are watermarks' references);
    /// `None`: the next id.
    pub id: Option<i64>,
    pub time_ms: i64,
    pub series: i64,
    /// The function its series names (an invocation belongs to one function).
    pub function: &'a str,
    pub duration_s: f64,
    pub flags: i64,
    pub key: i64,
    pub request_id: Option<&'a str>,
    pub trace_id: Option<&'a str>,
    /// The attributes as JSON (sorted keys), `None` when there are none.
    pub attributes: Option<&'a str>,
}

const INSERT: &str = "INSERT OR IGNORE INTO event_rows (id, time_ms, series, duration, flags, key, invocation, attributes) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id";
const FIND_BY_REQUEST: &str = "SELECT i.id, i.first_ms FROM invocations i JOIN series s ON s.id = i.series \
     WHERE i.request_id = ?1 AND i.first_ms BETWEEN ?2 AND ?3 AND i.trace_id IS ?4 AND s.function = ?5 ORDER BY i.id DESC LIMIT 1";
const FIND_BY_TRACE: &str = "SELECT id, first_ms FROM invocations \
     WHERE request_id IS NULL AND trace_id = ?1 AND first_ms BETWEEN ?2 AND ?3 ORDER BY id DESC LIMIT 1";
const NEW_INVOCATION: &str = "INSERT INTO invocations (series, request_id, trace_id, first_ms, first_event, last_event) \
     VALUES (?1, ?2, ?3, ?4, 9223372036854775807, 0) RETURNING id";
const TOUCH_INVOCATION: &str = "UPDATE invocations SET first_event = MIN(first_event, ?2), last_event = MAX(last_event, ?3) WHERE id = ?1";
const DROP_INVOCATION: &str = "DELETE FROM invocations WHERE id = ?1";
const FIND_ATTRIBUTES: &str = "SELECT id FROM attribute_sets WHERE json = ?1";
const NEW_ATTRIBUTES: &str = "INSERT INTO attribute_sets (json, last_event) VALUES (?1, 0) RETURNING id";
const TOUCH_ATTRIBUTES: &str = "UPDATE attribute_sets SET last_event = MAX(last_event, ?2) WHERE id = ?1";
const DROP_ATTRIBUTES: &str = "DELETE FROM attribute_sets WHERE id = ?1";
const TOUCH_BLOCK: &str = "INSERT INTO event_blocks (block, min_ms, max_ms) VALUES (?1, ?2, ?3) \
     ON CONFLICT (block) DO UPDATE SET min_ms = MIN(min_ms, excluded.min_ms), max_ms = MAX(max_ms, excluded.max_ms)";

/// A stored request or trace id: 16 bytes in AWS's form, else the text.
enum IdForm<'a> {
    Bytes([u8; 16]),
    Text(&'a str),
}

impl<'a> IdForm<'a> {
    fn of(text: &'a str, bytes: impl Fn(&str) -> Option<[u8; 16]>) -> IdForm<'a> {
        bytes(text).map_or(IdForm::Text(text), IdForm::Bytes)
    }

    fn bind(&self) -> Bind<'_> {
        match self {
            IdForm::Bytes(b) => Bind::Blob(b),
            IdForm::Text(t) => Bind::Text(t),
        }
    }
}

/// (function, request id, trace id) of an invocation row; the function is empty for
/// X-Ray's own spans (one row per trace, whatever functions it crosses).
type InvocationKey<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

/// Stores events for one transaction; [`Packer::finish`] completes the invocation, attribute
/// and block rows they touched.
pub struct Packer<'c, 'a> {
    insert: Stmt<'c>,
    find_by_request: Stmt<'c>,
    find_by_trace: Stmt<'c>,
    new_invocation: Stmt<'c>,
    find_attributes: Stmt<'c>,
    new_attributes: Stmt<'c>,
    conn: &'c RawConn,
    invocations: HashMap<InvocationKey<'a>, (i64, i64)>,
    attribute_ids: HashMap<&'a str, i64>,
    /// Invocation → (lowest, highest) id stored for it in this transaction.
    invocation_span: HashMap<i64, (i64, i64)>,
    attribute_last: HashMap<i64, i64>,
    created_invocations: HashSet<i64>,
    created_attributes: HashSet<i64>,
    blocks: BTreeMap<i64, (i64, i64)>,
}

impl<'c, 'a> Packer<'c, 'a> {
    pub fn new(conn: &'c RawConn) -> Result<Self, StoreError> {
        Ok(Packer {
            insert: conn.prepare(INSERT)?,
            find_by_request: conn.prepare(FIND_BY_REQUEST)?,
            find_by_trace: conn.prepare(FIND_BY_TRACE)?,
            new_invocation: conn.prepare(NEW_INVOCATION)?,
            find_attributes: conn.prepare(FIND_ATTRIBUTES)?,
            new_attributes: conn.prepare(NEW_ATTRIBUTES)?,
            conn,
            invocations: HashMap::new(),
            attribute_ids: HashMap::new(),
            invocation_span: HashMap::new(),
            attribute_last: HashMap::new(),
            created_invocations: HashSet::new(),
            created_attributes: HashSet::new(),
            blocks: BTreeMap::new(),
        })
    }

    /// Stores `e` unless an event with its time and key is stored: its id, or `None`.
    pub fn insert(&mut self, e: &PackedEvent<'a>) -> Result<Option<i64>, StoreError> {
        let invocation = self.invocation(e)?;
        let attributes = match e.attributes {
            Some(json) => Some(self.attribute_set(json)?),
            None => None,
        };
        let mut id = None;
        self.insert.query(
            &[
                e.id.map_or(Bind::Null, Bind::Int),
                Bind::Int(e.time_ms),
                Bind::Int(e.series),
                stored_duration(e.duration_s),
                Bind::Int(e.flags),
                Bind::Int(e.key),
                invocation.map_or(Bind::Null, Bind::Int),
                attributes.map_or(Bind::Null, Bind::Int),
            ],
            |r| id = Some(r.i64(0)),
        )?;
        if let Some(id) = id {
            if let Some(inv) = invocation {
                let span = self.invocation_span.entry(inv).or_insert((id, id));
                span.0 = span.0.min(id);
                span.1 = span.1.max(id);
            }
            if let Some(set) = attributes {
                let last = self.attribute_last.entry(set).or_insert(id);
                *last = (*last).max(id);
            }
            let block = self.blocks.entry(id >> BLOCK_SHIFT).or_insert((e.time_ms, e.time_ms));
            block.0 = block.0.min(e.time_ms);
            block.1 = block.1.max(e.time_ms);
        }
        Ok(id)
    }

    /// The invocation row `e` belongs to: one within [`INVOCATION_SPAN_MS`] of its time with
    /// the same function, request id and trace id, else a new one.
    fn invocation(&mut self, e: &PackedEvent<'a>) -> Result<Option<i64>, StoreError> {
        let key: InvocationKey<'a> = match (e.request_id, e.trace_id) {
            (None, None) => return Ok(None),
            (None, Some(_)) => ("", None, e.trace_id),
            (Some(_), _) => (e.function, e.request_id, e.trace_id),
        };
        if let Some(&(id, first_ms)) = self.invocations.get(&key) {
            if (e.time_ms - first_ms).abs() <= INVOCATION_SPAN_MS {
                return Ok(Some(id));
            }
        }
        let rid = e.request_id.map(|r| IdForm::of(r, request_id_bytes));
        let tid = e.trace_id.map(|t| IdForm::of(t, trace_id_bytes));
        let tid_bind = tid.as_ref().map_or(Bind::Null, IdForm::bind);
        let (lo, hi) = (e.time_ms.saturating_sub(INVOCATION_SPAN_MS), e.time_ms.saturating_add(INVOCATION_SPAN_MS));
        let mut found = None;
        match &rid {
            Some(rid) => self.find_by_request.query(
                &[rid.bind(), Bind::Int(lo), Bind::Int(hi), tid_bind.clone(), Bind::Text(e.function)],
                |r| found = Some((r.i64(0), r.i64(1))),
            )?,
            None => self.find_by_trace.query(&[tid_bind.clone(), Bind::Int(lo), Bind::Int(hi)], |r| found = Some((r.i64(0), r.i64(1))))?,
        };
        let (id, first_ms) = match found {
            Some(f) => f,
            None => {
                let mut id = 0;
                let rid_bind = rid.as_ref().map_or(Bind::Null, IdForm::bind);
                self.new_invocation.query(&[Bind::Int(e.series), rid_bind, tid_bind, Bind::Int(e.time_ms)], |r| id = r.i64(0))?;
                self.created_invocations.insert(id);
                (id, e.time_ms)
            }
        };
        self.invocations.insert(key, (id, first_ms));
        Ok(Some(id))
    }

    fn attribute_set(&mut self, json: &'a str) -> Result<i64, StoreError> {
        if let Some(&id) = self.attribute_ids.get(json) {
            return Ok(id);
        }
        let mut id = None;
        self.find_attributes.query(&[Bind::Text(json)], |r| id = Some(r.i64(0)))?;
        let id = match id {
            Some(id) => id,
            None => {
                let mut id = 0;
                self.new_attributes.query(&[Bind::Text(json)], |r| id = r.i64(0))?;
                self.created_attributes.insert(id);
                id
            }
        };
        self.attribute_ids.insert(json, id);
        Ok(id)
    }

    /// Records where the stored events went: their invocations' id ranges, their attribute
    /// sets' last use (retention drops unused ones), the blocks' time spans; drops the rows
    /// created for events that turned out to be stored already.
    pub fn finish(self) -> Result<(), StoreError> {
        let conn = self.conn;
        {
            let mut touch = conn.prepare(TOUCH_INVOCATION)?;
            for (&id, &(lo, hi)) in &self.invocation_span {
                touch.execute(&[Bind::Int(id), Bind::Int(lo), Bind::Int(hi)])?;
            }
            let mut drop = conn.prepare(DROP_INVOCATION)?;
            for id in self.created_invocations.iter().filter(|id| !self.invocation_span.contains_key(id)) {
                drop.execute(&[Bind::Int(*id)])?;
            }
        }
        {
            let mut touch = conn.prepare(TOUCH_ATTRIBUTES)?;
            for (&id, &last) in &self.attribute_last {
                touch.execute(&[Bind::Int(id), Bind::Int(last)])?;
            }
            let mut drop = conn.prepare(DROP_ATTRIBUTES)?;
            for id in self.created_attributes.iter().filter(|id| !self.attribute_last.contains_key(id)) {
                drop.execute(&[Bind::Int(*id)])?;
            }
        }
        let mut touch = conn.prepare(TOUCH_BLOCK)?;
        for (&block, &(lo, hi)) in &self.blocks {
            touch.execute(&[Bind::Int(block), Bind::Int(lo), Bind::Int(hi)])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A duration reads back bit for bit, whichever form it was stored in; the ones log
    /// lines print take the integer form.
    #[tokio::test]
    async fn durations_read_back_exactly_in_either_form() {
        let store = crate::store::SqliteStore::open_memory().await.unwrap();
        let mut values = vec![3.125, 0.031, 9123.45 / 1000.0, 412.5 / 1000.0, 0.0, 900.0, 1795804066.376 - 1795804066.125, 1.0 / 3.0, 1e-7];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push((x % 900_000_000) as f64 / [1e3, 1e6, 1e5, 7e5][(x % 4) as usize]);
        }
        let mut ints = 0;
        for d in values {
            let stored = stored_duration(d);
            ints += usize::from(matches!(stored, Bind::Int(_)));
            let sql = format!("SELECT {DURATION_SQL} FROM (SELECT ?1 AS duration) e");
            let q = sqlx::query_scalar::<_, f64>(sqlx::AssertSqlSafe(sql));
            let q = match stored {
                Bind::Int(us) => q.bind(us),
                Bind::Real(r) => q.bind(r),
                other => panic!("{other:?}"),
            };
            let back = q.fetch_one(store.pool()).await.unwrap();
            assert_eq!(back.to_bits(), d.to_bits(), "{d}");
        }
        assert!(matches!(stored_duration(3.125), Bind::Int(3_125_000)) && matches!(stored_duration(0.031), Bind::Int(31_000)));
        assert!(matches!(stored_duration(1.0 / 3.0), Bind::Real(_)));
        assert!(ints > 1_000, "{ints}");
    }
}
