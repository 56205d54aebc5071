//! What this node may do, for the tasks that do it: one daemon on SQLite does everything
//! ([`Work::solo`]); a node of a fleet does the units its keeper holds ([`Work::start`]).
//! Tasks offer the units they find (a log group), ask whether they hold one, take the
//! [`Fence`] their writes carry, and run whole jobs only while they hold them
//! ([`Work::while_held`]).

use super::keeper::{self, Fleet, Held, KeeperConfig};
use crate::model::lease::Fence;
use crate::store::StoreError;
use crate::store::postgres::PgStore;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The unit of one log group (`stored_as`: the group's name in the store, scope-prefixed).
pub fn logs_unit(stored_as: &str) -> String {
    format!("logs:{stored_as}")
}

/// The unit of a scope's X-Ray poller (`label`: `account/region`).
pub fn xray_unit(label: &str) -> String {
    format!("xray:{label}")
}

/// The unit of a CloudWatch destination (empty name: the default one).
pub fn cloudwatch_unit(destination: &str) -> String {
    if destination.is_empty() { "cloudwatch".to_string() } else { format!("cloudwatch:{destination}") }
}

/// The kind of a unit (`logs`, `xray`, `evaluator`, …): the label of the lease metrics.
pub fn unit_kind(unit: &str) -> &str {
    unit.split(':').next().unwrap_or(unit)
}

/// Whether this node may do a unit now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// One daemon: all work is its own, writes carry no fence.
    Solo,
    /// Held at this epoch: writes carry the fence.
    Held(Fence),
    /// Another node's (or nobody's yet).
    NotHeld,
}

/// Cheap to clone.
#[derive(Clone, Default)]
pub struct Work {
    fleet: Option<Arc<Shared>>,
}

struct Shared {
    node: String,
    /// Units offered, by offerer (each source replaces its own list).
    offers: Mutex<BTreeMap<String, BTreeSet<String>>>,
    units: watch::Sender<Vec<String>>,
    held: watch::Receiver<Held>,
    seen: watch::Receiver<Fleet>,
}

impl Work {
    /// One daemon: every unit is held.
    pub fn solo() -> Work {
        Work { fleet: None }
    }

    /// A node of a fleet: spawns the keeper (on `tracker`, until `shutdown`), offering
    /// `base` plus what tasks offer (a task run by [`Work::while_held`] offers its unit).
    pub fn start(store: PgStore, cfg: KeeperConfig, base: Vec<String>, tracker: &TaskTracker, shutdown: CancellationToken) -> Work {
        let (units, units_rx) = watch::channel(base.clone());
        let (held_tx, held) = watch::channel(Held::new());
        let (seen_tx, seen) = watch::channel(Fleet::default());
        let node = cfg.node_id.clone();
        tracker.spawn(keeper::run(store, cfg, units_rx, held_tx, seen_tx, shutdown));
        let offers = Mutex::new(BTreeMap::from([(String::new(), base.into_iter().collect())]));
        Work { fleet: Some(Arc::new(Shared { node, offers, units, held, seen })) }
    }

    /// This node's name (None: one daemon).
    pub fn node(&self) -> Option<&str> {
        self.fleet.as_ref().map(|f| f.node.as_str())
    }

    /// Declares the units `offerer` has found (its whole list, replacing the last one).
    pub fn offer(&self, offerer: &str, units: impl IntoIterator<Item = String>) {
        let Some(f) = &self.fleet else { return };
        let mut offers = f.offers.lock().unwrap_or_else(|p| p.into_inner());
        offers.insert(offerer.to_string(), units.into_iter().collect());
        let all: BTreeSet<&String> = offers.values().flatten().collect();
        let all: Vec<String> = all.into_iter().cloned().collect();
        f.units.send_if_modified(|u| {
            let changed = *u != all;
            *u = all;
            changed
        });
    }

    pub fn grant(&self, unit: &str) -> Grant {
        let Some(f) = &self.fleet else { return Grant::Solo };
        match f.held.borrow().get(unit) {
            Some(&epoch) => Grant::Held(Fence { unit: unit.to_string(), holder: f.node.clone(), epoch }),
            None => Grant::NotHeld,
        }
    }

    pub fn holds(&self, unit: &str) -> bool {
        self.fleet.as_ref().is_none_or(|f| f.held.borrow().contains_key(unit))
    }

    /// The fence a write for `unit` carries (None: one daemon), or `LostLease` when this
    /// node does not hold it now: the write must not be made.
    pub fn fence(&self, unit: &str) -> Result<Option<Fence>, StoreError> {
        match self.grant(unit) {
            Grant::Solo => Ok(None),
            Grant::Held(f) => Ok(Some(f)),
            Grant::NotHeld => Err(StoreError::LostLease(unit.to_string())),
        }
    }

    /// The units held now, with their epochs (empty for one daemon).
    pub fn held(&self) -> Held {
        self.fleet.as_ref().map(|f| f.held.borrow().clone()).unwrap_or_default()
    }

    /// What the keeper's last round saw (None: one daemon).
    pub fn fleet(&self) -> Option<Fleet> {
        self.fleet.as_ref().map(|f| f.seen.borrow().clone())
    }

    /// A watch on what this node holds, for tasks that decide unit by unit (the log
    /// tailer): its `changed` resolves at each change after the last one it saw.
    pub fn subscribe(&self) -> HeldWatch {
        HeldWatch(self.fleet.as_ref().map(|f| f.held.clone()))
    }

    /// A watch on what the keeper's rounds see (None: one daemon).
    pub fn subscribe_fleet(&self) -> Option<watch::Receiver<Fleet>> {
        self.fleet.as_ref().map(|f| f.seen.clone())
    }

    /// Runs `job` while this node holds `unit`: waits for the lease, starts `job` with a
    /// token that is cancelled when the lease is lost (or at shutdown) and the lease's
    /// fence, waits for it to stop, and waits for the lease again. One daemon runs `job`
    /// once with `shutdown` and no fence. Returns when `job` ends on its own or at shutdown.
    pub async fn while_held<F, Fut>(&self, unit: &str, shutdown: &CancellationToken, mut job: F) -> anyhow::Result<()>
    where
        F: FnMut(CancellationToken, Option<Fence>) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let Some(f) = &self.fleet else { return job(shutdown.clone(), None).await };
        self.offer(unit, [unit.to_string()]);
        let mut held = f.held.clone();
        loop {
            let epoch = loop {
                if let Some(&e) = held.borrow_and_update().get(unit) {
                    break e;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    r = held.changed() => if r.is_err() { return Ok(()) },
                }
            };
            tracing::info!(unit, epoch, node = %f.node, "Lease taken; starting its work.");
            let stop = shutdown.child_token();
            let run = job(stop.clone(), Some(Fence { unit: unit.to_string(), holder: f.node.clone(), epoch }));
            tokio::pin!(run);
            let lost = async {
                loop {
                    if held.changed().await.is_err() || held.borrow().get(unit) != Some(&epoch) {
                        return;
                    }
                }
            };
            let ended = tokio::select! {
                r = &mut run => Some(r),
                _ = lost => None,
            };
            match ended {
                // Ended on its own while still held (or at shutdown): its result is ours.
                Some(r) if shutdown.is_cancelled() || held.borrow().get(unit) == Some(&epoch) => return r,
                // Its writes were refused: the lease went before the keeper said so.
                Some(r) => tracing::info!(unit, node = %f.node, error = ?r.err(), "Lease lost; its work stopped."),
                None => {
                    tracing::info!(unit, node = %f.node, "Lease lost; stopping its work.");
                    stop.cancel();
                    if let Err(e) = run.await {
                        tracing::info!(unit, error = %e, "The work of a lost lease ended with an error.");
                    }
                }
            }
            if shutdown.is_cancelled() {
                return Ok(());
            }
        }
    }
}

/// See [`Work::subscribe`].
pub struct HeldWatch(Option<watch::Receiver<Held>>);

impl HeldWatch {
    /// Resolves when the held units change (never, for one daemon, or once the keeper is gone).
    pub async fn changed(&mut self) {
        let alive = match &mut self.0 {
            Some(rx) => rx.changed().await.is_ok(),
            None => false,
        };
        if !alive {
            std::future::pending::<()>().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_daemon_holds_everything_and_fences_nothing() {
        let w = Work::solo();
        assert_eq!(w.grant("logs:/aws/lambda/a"), Grant::Solo);
        assert!(w.holds("evaluator"));
        assert_eq!(w.fence("evaluator").unwrap(), None);
        w.offer("logs", ["logs:x".to_string()]);
        assert!(w.held().is_empty() && w.fleet().is_none() && w.node().is_none());
    }

    #[test]
    fn units_are_named_by_kind() {
        assert_eq!(logs_unit("prod|eu-west-1|/aws/lambda/a"), "logs:prod|eu-west-1|/aws/lambda/a");
        assert_eq!(unit_kind(&logs_unit("/aws/lambda/a")), "logs");
        assert_eq!(unit_kind(&xray_unit("prod/eu-west-1")), "xray");
        assert_eq!(unit_kind(&cloudwatch_unit("")), "cloudwatch");
        assert_eq!(unit_kind(super::super::EVALUATOR), "evaluator");
    }
}
