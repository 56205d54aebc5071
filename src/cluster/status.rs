//! What a node of a fleet tells about its leases: the readiness entry `cluster` (not ready
//! while its lease rounds fail: the database is unreachable, so it does no leased work) and
//! the lease metrics, updated after every round. `/readyz` adds the fleet's table itself.

use super::keeper::{Fleet, Held};
use super::work::{Work, unit_kind};
use crate::clock::now_ms;
use crate::health::Health;
use crate::metrics::Metrics;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The readiness entry's name.
pub const SOURCE: &str = "cluster";

/// Units held, by kind.
pub fn by_kind(held: &Held) -> BTreeMap<&str, i64> {
    let mut out = BTreeMap::new();
    for unit in held.keys() {
        *out.entry(unit_kind(unit)).or_default() += 1;
    }
    out
}

/// Keeps `health` and `metrics` up to date with the keeper's rounds until shutdown.
pub async fn run(work: Work, ttl: Duration, health: Health, metrics: Metrics, shutdown: CancellationToken) {
    let Some(mut seen) = work.subscribe_fleet() else { return };
    // A round runs every third of the TTL: three missed rounds are the TTL.
    health.register(SOURCE, 2 * ttl.as_millis() as i64);
    let mut kinds: Vec<String> = Vec::new();
    let mut evaluator: Option<String> = None;
    loop {
        let fleet: Fleet = seen.borrow_and_update().clone();
        match &fleet.error {
            None => health.success(SOURCE, now_ms()),
            Some(e) => health.failure(SOURCE, format!("lease round: {e}")),
        }
        let held = work.held();
        for kind in kinds.drain(..) {
            metrics.cluster_leases.with_label_values(&[&kind]).set(0);
        }
        for (kind, n) in by_kind(&held) {
            metrics.cluster_leases.with_label_values(&[kind]).set(n);
            kinds.push(kind.to_string());
        }
        if fleet.error.is_none() {
            metrics.cluster_nodes.set(fleet.live_nodes.len() as i64);
            let holder = fleet.holders.get(super::EVALUATOR).cloned();
            if holder != evaluator {
                if let Some(old) = evaluator.take() {
                    let _ = metrics.cluster_evaluator.remove_label_values(&[&old]);
                }
                if let Some(h) = &holder {
                    metrics.cluster_evaluator.with_label_values(&[h]).set(1);
                }
                evaluator = holder;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = seen.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn held_units_are_counted_by_kind() {
        let held = [("logs:/aws/lambda/a", 1), ("logs:/aws/lambda/b", 3), ("evaluator", 2), ("xray:prod/eu-west-1", 1)]
            .into_iter()
            .map(|(u, e)| (u.to_string(), e))
            .collect();
        let kinds = super::by_kind(&held);
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), vec![("evaluator", 1), ("logs", 2), ("xray", 1)]);
    }
}
