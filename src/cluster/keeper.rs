//! The lease keeper: every third of the TTL it renews this node's row and leases, lists the
//! units of work that exist, takes free or expired ones up to the fair share and gives back
//! the surplus ([`super::plan`]), and publishes what the node holds (unit → epoch) on a
//! watch channel; the tasks doing the work start and stop by it. A round that fails (the
//! database is down) publishes nothing new: after the TTL the node's leases have expired in
//! the database, so the keeper also drops them locally then, and its tasks stop; the
//! others take the work over. On shutdown it gives everything back at once.

use super::plan::plan;
use crate::store::postgres::PgStore;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the node holds: unit → epoch (the fence its writes for that unit carry).
pub type Held = BTreeMap<String, i64>;

/// The keeper's settings.
#[derive(Debug, Clone)]
pub struct KeeperConfig {
    pub node_id: String,
    pub ttl: Duration,
    /// Units given back last when over the share (moving them is costly: the evaluator).
    pub sticky: Vec<String>,
}

/// What the last round saw of the fleet (for `/readyz` and the metrics).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fleet {
    /// Nodes renewing their row, by name.
    pub live_nodes: Vec<String>,
    /// Live leases: unit → holder.
    pub holders: BTreeMap<String, String>,
    /// The last round's error (None: it succeeded). Never names the URL.
    pub error: Option<String>,
}

/// Runs until `shutdown`, then gives every lease back. `units` is the work that exists
/// (sources add their log groups to it); `held` receives what the node holds after each
/// round, `fleet` what the round saw.
pub async fn run(
    store: PgStore,
    cfg: KeeperConfig,
    units: watch::Receiver<Vec<String>>,
    held: watch::Sender<Held>,
    fleet: watch::Sender<Fleet>,
    shutdown: CancellationToken,
) {
    let period = cfg.ttl / 3;
    let sticky: Vec<&str> = cfg.sticky.iter().map(String::as_str).collect();
    let mut last_renewed = Instant::now();
    loop {
        let wanted = units.borrow().clone();
        match round(&store, &cfg, &wanted, &sticky).await {
            Ok((now_held, seen)) => {
                last_renewed = Instant::now();
                held.send_if_modified(|h| {
                    let changed = *h != now_held;
                    *h = now_held;
                    changed
                });
                // After `held`, so who reads both on this change sees the round's whole result.
                fleet.send_replace(seen);
            }
            Err(e) => {
                tracing::warn!(error = %e, node = %cfg.node_id, "Lease round failed; the work held goes on until the leases expire.");
                fleet.send_modify(|f| f.error = Some(e.to_string()));
                // Held past the TTL without renewal: the database considers them gone.
                if last_renewed.elapsed() >= cfg.ttl {
                    held.send_if_modified(|h| {
                        let had = !h.is_empty();
                        h.clear();
                        had
                    });
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(period) => {}
        }
    }
    held.send_replace(Held::new());
    if let Err(e) = store.leave(&cfg.node_id).await {
        tracing::warn!(error = %e, "Could not give the leases back; the others take them after the TTL.");
    }
}

/// One round: renew, read, decide, take or give back. Returns what the node holds.
async fn round(store: &PgStore, cfg: &KeeperConfig, units: &[String], sticky: &[&str]) -> Result<(Held, Fleet), crate::store::StoreError> {
    let r = store.lease_round(&cfg.node_id, units, cfg.ttl).await?;
    let mut fleet = Fleet {
        live_nodes: r.live_nodes.clone(),
        holders: r.leases.iter().filter(|l| l.live).filter_map(|l| Some((l.unit.clone(), l.holder.clone()?))).collect(),
        error: None,
    };
    let mut held: Held = r.held.into_iter().collect();
    let p = plan(&cfg.node_id, &r.leases, &r.live_nodes, sticky);
    if !p.release.is_empty() {
        store.release_leases(&cfg.node_id, &p.release).await?;
        for u in &p.release {
            held.remove(u);
        }
    }
    held.extend(store.take_leases(&cfg.node_id, p.take, cfg.ttl).await?);
    for u in &p.release {
        fleet.holders.remove(u);
    }
    for u in held.keys() {
        fleet.holders.insert(u.clone(), cfg.node_id.clone());
    }
    Ok((held, fleet))
}
