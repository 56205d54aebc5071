//! The write path on PostgreSQL: a batch (events, the facts learned about them later,
//! rejected inputs, stream states, checkpoints) in one transaction, as on SQLite, with two
//! additions for a fleet. A batch made under a lease carries its [`Fence`]: the lease row
//! is read `FOR SHARE` first (a node taking the unit over skips the locked row until this
//! commit ends), and a node that lost the lease commits nothing. Events go in with one
//! `INSERT … SELECT FROM unnest(…)` of one array per column (one statement text for any
//! batch size, no parameter cap) after the events advisory lock, so their identity values
//! follow commit order and readers can follow ids; the insert skips stored events with an
//! anti-join (exact: no other insert runs meanwhile). COPY into a staging table first was
//! measured too and was slower (`benches/postgres.rs`): the planner, knowing nothing of the
//! staged rows, anti-joined them by scanning every stored event.

use super::PgStore;
use crate::clock::now_ms;
use crate::model::Source;
use crate::store::event_keys::event_key;
use crate::store::write::{LAMBDA_DURATION, attributes_json, cap_utf8, flags};
use crate::store::{Batch, BatchOutcome, NewReport, StoreError};
use std::collections::{BTreeMap, HashMap, HashSet};

pub use crate::model::lease::Fence;

/// The batch's events, one array per column.
macro_rules! insert_events {
    () => {
        "INSERT INTO events (time_ms, series, duration_s, flags, key, request_id, trace_id, attributes) \
         SELECT t, s, d, f, k, r, tr, a::jsonb FROM unnest($1::bigint[], $2::bigint[], $3::float8[], $4::int2[], $5::bigint[], \
         $6::text[], $7::text[], $8::text[]) AS u(t, s, d, f, k, r, tr, a)"
    };
}
const INSERT_EVENTS: &str = insert_events!();
/// The same, skipping the events already stored.
const INSERT_NEW_EVENTS: &str = concat!(insert_events!(), " WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.time_ms = u.t AND e.key = u.k)");

/// The advisory lock every event insert takes (any constant: one per database).
const EVENTS_LOCK: i64 = 0x5e47_1e17_0001;

/// How far before an annotation's span an invocation's first event can lie (as on SQLite).
const INVOCATION_SPAN_MS: i64 = crate::store::pack::INVOCATION_SPAN_MS;

impl PgStore {
    /// Commits a batch atomically (under `fence` when given: [`StoreError::LostLease`] and
    /// nothing written when the lease is gone).
    pub async fn commit(&self, batch: &Batch, fence: Option<&Fence>) -> Result<BatchOutcome, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        if let Some(f) = fence {
            check_fence(&mut tx, f).await?;
        }
        let mut outcome = BatchOutcome::default();
        let mut stored_before: HashSet<(&str, &str)> = HashSet::new();
        if !batch.events.is_empty() {
            let series = series_ids(&mut tx, batch).await?;
            let n = batch.events.len();
            let (mut time, mut ser, mut dur, mut flag, mut key) =
                (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
            let (mut rid, mut tid, mut attrs) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
            // A repeat of a (time, key) within the batch is a duplicate: only its first copy
            // is offered to the insert.
            let mut offered_keys: HashSet<(i64, i64)> = HashSet::with_capacity(n);
            for e in &batch.events {
                let k = event_key(&e.idem_key);
                if !offered_keys.insert((e.time_ms, k)) {
                    continue;
                }
                time.push(e.time_ms);
                ser.push(series[&(e.env.as_str(), e.function.as_str(), e.operation.as_str(), e.source.as_str())]);
                dur.push(e.duration_s);
                flag.push(i16::try_from(flags(e)).unwrap_or(0));
                key.push(k);
                rid.push(e.request_id.as_deref());
                tid.push(e.trace_id.as_deref());
                attrs.push(attributes_json(&e.attributes));
            }
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(EVENTS_LOCK).execute(&mut *tx).await?;
            // Under the lock no other insert of events runs, so skipping the stored ones with
            // an anti-join is exact, and cheaper than ON CONFLICT's speculative insertion
            // (about 40 % of the insert). Ids grow with each insert: the batch's new events
            // are the ones above the highest id before it; most pages hold no duplicate, and
            // then nothing needs reading back.
            let (before, newest): (i64, i64) =
                sqlx::query_as("SELECT COALESCE(max(id), 0), COALESCE(max(time_ms), -1) FROM events").fetch_one(&mut *tx).await?;
            // A batch wholly newer than every stored event (a catch-up reading history in
            // order) cannot repeat one: it skips the anti-join's index probe per row.
            let all_newer = time.iter().min().is_some_and(|&t| t > newest);
            let insert = if all_newer { INSERT_EVENTS } else { INSERT_NEW_EVENTS };
            let added = sqlx::query(insert)
                .bind(&time)
                .bind(&ser)
                .bind(&dur)
                .bind(&flag)
                .bind(&key)
                .bind(&rid)
                .bind(&tid)
                .bind(&attrs)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // Which of the batch's events are new: each (time, key) stored by this insert
            // counts once (a repeat within the batch is a duplicate).
            let mut fresh: HashSet<(i64, i64)> = if added as usize == offered_keys.len() {
                offered_keys
            } else {
                let rows: Vec<(i64, i64)> =
                    sqlx::query_as("SELECT time_ms, key FROM events WHERE id > $1").bind(before).fetch_all(&mut *tx).await?;
                rows.into_iter().collect()
            };
            let mut offered = [0u64; Source::ALL.len()];
            let mut stored = [0u64; Source::ALL.len()];
            for e in &batch.events {
                let s = e.source as usize;
                offered[s] += 1;
                if !fresh.remove(&(e.time_ms, event_key(&e.idem_key))) {
                    if let Some(r) = &e.request_id {
                        stored_before.insert((&e.function, r));
                    }
                    continue;
                }
                stored[s] += 1;
                if e.source == Source::Report && e.operation == LAMBDA_DURATION {
                    let attr = |k: &str| e.attributes.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
                    outcome.new_reports.push(NewReport {
                        env: e.env.clone(),
                        function: e.function.clone(),
                        cold_start: e.cold_start,
                        error: e.error,
                        timeout: attr("status") == Some("timeout"),
                        max_memory_mb: attr("max_memory_mb").and_then(|v| v.parse().ok()),
                    });
                }
            }
            for source in Source::ALL {
                let s = source as usize;
                if offered[s] > 0 {
                    outcome.duplicates += offered[s] - stored[s];
                    outcome.inserted.push((source, stored[s]));
                }
            }
        }
        annotate(&mut tx, batch, &stored_before, &mut outcome).await?;
        for r in &batch.rejections {
            let n = sqlx::query(
                "INSERT INTO rejected (seen_ms, time_ms, source, origin, reason, detail, raw) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (source, origin, reason) DO NOTHING",
            )
            .bind(now)
            .bind(r.time_ms)
            .bind(&r.source)
            .bind(&r.origin)
            .bind(r.reason)
            .bind(cap_utf8(&r.detail, 1024))
            .bind(cap_utf8(&r.raw, self.rejected_max_bytes))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            outcome.rejected += n;
        }
        for s in &batch.stream_states {
            sqlx::query(
                "INSERT INTO stream_state (log_group, stream, state, updated_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (log_group, stream) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
            )
            .bind(&s.log_group)
            .bind(&s.stream)
            .bind(&s.state)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        for c in &batch.checkpoints {
            // Positions never move backwards (as on SQLite).
            sqlx::query(
                "INSERT INTO checkpoints (source, key, position_ms, state, updated_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (source, key) DO UPDATE SET position_ms = GREATEST(checkpoints.position_ms, excluded.position_ms), \
                 state = excluded.state, updated_ms = excluded.updated_ms",
            )
            .bind(&c.source)
            .bind(&c.key)
            .bind(c.position_ms)
            .bind(&c.state)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// The trace id and flags of a request's events, in time order.
    pub async fn annotated(&self, request_id: &str) -> Result<Vec<(Option<String>, i16)>, StoreError> {
        Ok(sqlx::query_as("SELECT trace_id, flags FROM events WHERE request_id = $1 ORDER BY time_ms, id").bind(request_id).fetch_all(&self.pool).await?)
    }

    /// Events stored per `account|region|env|function|operation|source`.
    pub async fn event_counts(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT s.account || '|' || s.region || '|' || s.env || '|' || s.function || '|' || s.operation || '|' || s.source, count(*) \
             FROM events e JOIN series s ON s.id = e.series GROUP BY 1",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }
}

/// The fence, inside the caller's transaction: the lease row read FOR SHARE (a node taking
/// the unit over skips it until this transaction ends); [`StoreError::LostLease`] when the
/// node no longer holds it at that epoch.
pub(super) async fn check_fence(tx: &mut sqlx::PgConnection, f: &Fence) -> Result<(), StoreError> {
    let held: Option<i32> = sqlx::query_scalar("SELECT 1 FROM leases WHERE unit = $1 AND holder = $2 AND epoch = $3 AND expires_at > now() FOR SHARE")
        .bind(&f.unit)
        .bind(&f.holder)
        .bind(f.epoch)
        .fetch_optional(&mut *tx)
        .await?;
    if held.is_none() {
        return Err(StoreError::LostLease(f.unit.clone()));
    }
    Ok(())
}

type SeriesName<'a> = (&'a str, &'a str, &'a str, &'a str);

/// The series numbers of the batch's (env, function, operation, source), within its origin,
/// added when new.
async fn series_ids<'b>(tx: &mut sqlx::PgConnection, batch: &'b Batch) -> Result<HashMap<SeriesName<'b>, i64>, StoreError> {
    let names: Vec<SeriesName<'b>> = {
        let mut seen = HashSet::new();
        batch
            .events
            .iter()
            .map(|e| (e.env.as_str(), e.function.as_str(), e.operation.as_str(), e.source.as_str()))
            .filter(|n| seen.insert(*n))
            .collect()
    };
    let col = |i: usize| -> Vec<&str> { names.iter().map(|n| [n.0, n.1, n.2, n.3][i]).collect() };
    let (env, function, operation, source) = (col(0), col(1), col(2), col(3));
    let (account, region) = (&batch.origin.account, &batch.origin.region);
    sqlx::query(
        "INSERT INTO series (account, region, env, function, operation, source) \
         SELECT $1, $2, e, f, o, s FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) AS u(e, f, o, s) ORDER BY 3, 4, 5, 6 \
         ON CONFLICT DO NOTHING",
    )
    .bind(account)
    .bind(region)
    .bind(&env)
    .bind(&function)
    .bind(&operation)
    .bind(&source)
    .execute(&mut *tx)
    .await?;
    let rows: Vec<(i64, String, String, String, String)> = sqlx::query_as(
        "SELECT s.id, s.env, s.function, s.operation, s.source FROM series s \
         JOIN unnest($3::text[], $4::text[], $5::text[], $6::text[]) AS u(e, f, o, src) \
           ON s.env = u.e AND s.function = u.f AND s.operation = u.o AND s.source = u.src \
         WHERE s.account = $1 AND s.region = $2",
    )
    .bind(account)
    .bind(region)
    .bind(&env)
    .bind(&function)
    .bind(&operation)
    .bind(&source)
    .fetch_all(&mut *tx)
    .await?;
    let mut out = HashMap::new();
    for (id, e, f, o, s) in rows {
        if let Some(n) = names.iter().find(|n| n.0 == e && n.1 == f && n.2 == o && n.3 == s) {
            out.insert(*n, id);
        }
    }
    Ok(out)
}

/// Gives the batch's annotations to stored events, as on SQLite: merged per invocation;
/// those all of whose events were in this batch were given the fact in memory already.
async fn annotate(
    tx: &mut sqlx::PgConnection,
    batch: &Batch,
    stored_before: &HashSet<(&str, &str)>,
    outcome: &mut BatchOutcome,
) -> Result<(), StoreError> {
    type Facts<'a> = (Option<&'a str>, bool, bool, bool, i64, i64);
    let mut merged: BTreeMap<(&str, &str), Facts> = BTreeMap::new();
    for a in &batch.annotations {
        let key = (a.function.as_str(), a.request_id.as_str());
        if !a.tells_something() || (a.in_batch && !stored_before.contains(&key)) {
            continue;
        }
        let m = merged.entry(key).or_insert((None, false, false, false, a.from_ms, a.to_ms));
        m.0 = m.0.or(a.trace_id.as_deref());
        m.1 |= a.error || a.timeout;
        m.2 |= a.cold_start;
        m.3 |= a.timeout;
        m.4 = m.4.min(a.from_ms);
        m.5 = m.5.max(a.to_ms);
    }
    for ((function, rid), (trace_id, error, cold_start, timeout, from_ms, to_ms)) in merged {
        let from = from_ms.saturating_sub(INVOCATION_SPAN_MS);
        let bits: i16 = (if error { 1 } else { 0 }) | (if cold_start { 2 } else { 0 });
        sqlx::query(
            "UPDATE events SET trace_id = COALESCE(trace_id, $5), flags = flags | $6 \
             WHERE request_id = $1 AND time_ms BETWEEN $2 AND $3 AND series IN (SELECT id FROM series WHERE function = $4) \
             AND (($5::text IS NOT NULL AND trace_id IS NULL) OR (flags & $6) <> $6)",
        )
        .bind(rid)
        .bind(from)
        .bind(to_ms)
        .bind(function)
        .bind(trace_id)
        .bind(bits)
        .execute(&mut *tx)
        .await?;
        if timeout {
            let marked: Vec<(String, String)> = sqlx::query_as(
                "UPDATE events e SET flags = e.flags | 5 FROM series s \
                 WHERE s.id = e.series AND s.function = $4 AND s.operation = 'Lambda.Duration' \
                 AND e.request_id = $1 AND e.time_ms BETWEEN $2 AND $3 AND e.flags & 4 = 0 RETURNING s.env, s.function",
            )
            .bind(rid)
            .bind(from)
            .bind(to_ms)
            .bind(function)
            .fetch_all(&mut *tx)
            .await?;
            outcome.timeouts_marked.extend(marked);
        }
    }
    Ok(())
}
