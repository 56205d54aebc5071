//! Alert state and history: the current phase of every active alert (so a restart neither
//! re-fires nor forgets one) and every transition, written together in one transaction.
//! Written once for both engines (`portable`); `SqliteStore` and `postgres::PgStore` each run it
//! in their own transaction.

use super::portable::{Conn, Stmt, Value};
use super::{SqliteStore, StoreError};
use crate::model::alert::{Phase, Transition};
use serde::Serialize;

/// The identity and latest observation of one alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    pub key: String,
    pub budget: String,
    pub account: String,
    pub region: String,
    pub env: String,
    pub function: String,
    pub operation: String,
    pub quantile: f64,
    pub phase: Phase,
    pub value_s: Option<f64>,
    pub budget_s: f64,
    pub samples: u64,
    pub severity: String,
}

/// A recorded transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionRow {
    pub time_ms: i64,
    pub alert_key: String,
    pub budget: String,
    pub account: String,
    pub region: String,
    pub env: String,
    pub function: String,
    pub operation: String,
    pub quantile: f64,
    pub transition: String,
    pub value_s: Option<f64>,
    pub budget_s: f64,
    pub samples: i64,
    pub severity: String,
}

const DELETE_STATE: &str = "DELETE FROM alert_state WHERE alert_key = ?";
const UPSERT_STATE: &str = "INSERT INTO alert_state (alert_key, budget, account, region, env, function, operation, quantile, phase, value_s, budget_s, samples, updated_ms) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert_key) DO UPDATE SET phase = excluded.phase, \
     value_s = excluded.value_s, budget_s = excluded.budget_s, samples = excluded.samples, updated_ms = excluded.updated_ms";
const INSERT_TRANSITION: &str = "INSERT INTO alert_transitions (time_ms, alert_key, budget, account, region, env, function, operation, quantile, transition, value_s, budget_s, samples, severity) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const PHASES: &str = "SELECT alert_key, phase FROM alert_state";
const TRANSITIONS: &str = "SELECT time_ms, alert_key, budget, account, region, env, function, operation, quantile, transition, value_s, budget_s, samples, severity \
     FROM alert_transitions WHERE time_ms >= ? ORDER BY time_ms DESC, id DESC LIMIT ?";

type TransitionTuple = (i64, String, String, String, String, String, String, String, f64, String, Option<f64>, f64, i64, String);

/// An alert's key, budget, place, names and quantile: the leading values of both its state
/// row and its transitions.
fn identity(a: &AlertRow) -> [Value<'_>; 8] {
    [
        Value::Text(&a.key),
        Value::Text(&a.budget),
        Value::Text(&a.account),
        Value::Text(&a.region),
        Value::Text(&a.env),
        Value::Text(&a.function),
        Value::Text(&a.operation),
        Value::Float(a.quantile),
    ]
}

/// Writes the alerts whose phase changed and their transitions (in the caller's
/// transaction, on either engine). Inactive alerts are deleted from the state table.
pub(super) async fn save_alerts_in(conn: &mut Conn<'_>, changed: &[AlertRow], transitions: &[(i64, &AlertRow, Transition)], now_ms: i64) -> Result<(), StoreError> {
    for a in changed {
        if a.phase == Phase::Inactive {
            conn.execute(&Stmt::new(DELETE_STATE, [Value::Text(&a.key)])).await?;
            continue;
        }
        let phase = serde_json::to_string(&a.phase).map_err(|e| StoreError::Sql(sqlx::Error::Encode(Box::new(e))))?;
        let samples = i64::try_from(a.samples).unwrap_or(i64::MAX);
        let values = identity(a).into_iter().chain([Value::Text(&phase), Value::OptFloat(a.value_s), Value::Float(a.budget_s), Value::Int(samples), Value::Int(now_ms)]);
        conn.execute(&Stmt::new(UPSERT_STATE, values)).await?;
    }
    for (time_ms, a, transition) in transitions {
        let samples = i64::try_from(a.samples).unwrap_or(i64::MAX);
        let values = std::iter::once(Value::Int(*time_ms)).chain(identity(a)).chain([
            Value::Text(transition.name()),
            Value::OptFloat(a.value_s),
            Value::Float(a.budget_s),
            Value::Int(samples),
            Value::Text(&a.severity),
        ]);
        conn.execute(&Stmt::new(INSERT_TRANSITION, values)).await?;
    }
    Ok(())
}

/// Phases of every alert that is not inactive, by key, and the keys whose stored phase no
/// longer decodes (their alerts start afresh; the caller says so).
pub(super) async fn alert_phases_in(conn: &mut Conn<'_>) -> Result<(Vec<(String, Phase)>, Vec<String>), StoreError> {
    let rows: Vec<(String, String)> = conn.fetch_all(&Stmt::new(PHASES, [])).await?;
    let mut phases = Vec::new();
    let mut unreadable = Vec::new();
    for (key, phase) in rows {
        match serde_json::from_str(&phase) {
            Ok(p) => phases.push((key, p)),
            Err(_) => unreadable.push(key),
        }
    }
    Ok((phases, unreadable))
}

/// Transitions since `since_ms`, newest first, at most `limit`.
pub(super) async fn alert_transitions_in(conn: &mut Conn<'_>, since_ms: i64, limit: i64) -> Result<Vec<TransitionRow>, StoreError> {
    let rows: Vec<TransitionTuple> = conn.fetch_all(&Stmt::new(TRANSITIONS, [Value::Int(since_ms), Value::Int(limit)])).await?;
    Ok(rows
        .into_iter()
        .map(|(time_ms, alert_key, budget, account, region, env, function, operation, quantile, transition, value_s, budget_s, samples, severity)| {
            TransitionRow { time_ms, alert_key, budget, account, region, env, function, operation, quantile, transition, value_s, budget_s, samples, severity }
        })
        .collect())
}

impl SqliteStore {
    /// Writes the alerts whose phase changed and their transitions, atomically. Inactive
    /// alerts are deleted from the state table.
    pub async fn save_alerts(&self, changed: &[AlertRow], transitions: &[(i64, &AlertRow, Transition)], now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        save_alerts_in(&mut Conn::Sqlite(&mut tx), changed, transitions, now_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Phases of every alert that is not inactive (see [`alert_phases_in`]).
    pub async fn alert_phases(&self) -> Result<(Vec<(String, Phase)>, Vec<String>), StoreError> {
        let mut conn = self.pool.acquire().await?;
        alert_phases_in(&mut Conn::Sqlite(&mut conn)).await
    }

    /// Transitions since `since_ms`, newest first, at most `limit`.
    pub async fn alert_transitions(&self, since_ms: i64, limit: i64) -> Result<Vec<TransitionRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        alert_transitions_in(&mut Conn::Sqlite(&mut conn), since_ms, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn state_round_trips_and_inactive_is_removed() {
        let s = SqliteStore::open_memory().await.unwrap();
        let mut a = AlertRow {
            account: "default".into(),
            region: String::new(),
            key: "k".into(),
            budget: "b".into(),
            env: "Dev".into(),
            function: "f".into(),
            operation: "op".into(),
            quantile: 0.95,
            phase: Phase::Firing { active_at: 1, fired_at: 2, last_breach: 3 },
            value_s: Some(9.0),
            budget_s: 5.0,
            samples: 30,
            severity: "warning".into(),
        };
        s.save_alerts(&[a.clone()], &[(2, &a, Transition::Firing)], 2).await.unwrap();
        assert_eq!(s.alert_phases().await.unwrap().0, vec![("k".to_string(), a.phase)]);
        a.phase = Phase::Inactive;
        s.save_alerts(&[a.clone()], &[(9, &a, Transition::Resolved)], 9).await.unwrap();
        assert!(s.alert_phases().await.unwrap().0.is_empty());
        // A stored phase that no longer decodes is reported, not dropped silently.
        s.save_alerts(&[AlertRow { phase: Phase::Pending { active_at: 3 }, ..a.clone() }], &[], 10).await.unwrap();
        sqlx::query("UPDATE alert_state SET phase = '{\"state\":\"unknown\"}'").execute(s.pool()).await.unwrap();
        assert_eq!(s.alert_phases().await.unwrap(), (vec![], vec!["k".to_string()]));
        let t = s.alert_transitions(0, 10).await.unwrap();
        assert_eq!(t.iter().map(|t| t.transition.as_str()).collect::<Vec<_>>(), vec!["resolved", "firing"]);
    }
}
