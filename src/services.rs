//! What the daemon's tasks share, built once at start: the config, the AWS SDK
//! configuration, the store, the metrics, readiness, the task tracker and the shutdown
//! token, and the work this node may do (its leases, in a fleet). Sources and sinks take it;
//! neither owns it. A source of one (account, region)
//! takes a copy whose SDK configuration and scope are that one's ([`Services::for_scope`]).

use crate::config::Config;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::scope::Scope;
use crate::store::Store;
use aws_config::SdkConfig;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The shared services; cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    /// The SDK configuration of `scope` (its region, its assumed role).
    pub sdk: SdkConfig,
    /// The (account, region) this copy works in: the first one of the config for the tasks
    /// that are not per scope.
    pub scope: Arc<Scope>,
    pub store: Store,
    pub metrics: Metrics,
    pub health: Health,
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
    /// What this node may do: everything (one daemon) or the units its leases hold.
    pub work: crate::cluster::work::Work,
}

impl Services {
    /// The copy a source of `scope` runs with.
    pub fn for_scope(&self, scope: Scope, sdk: SdkConfig) -> Services {
        Services { sdk, scope: Arc::new(scope), ..self.clone() }
    }

    /// A source's name in readiness and task names: `logs`, or `logs:prod/eu-west-1` when
    /// the config names accounts.
    pub fn source_name(&self, source: &str) -> String {
        if self.scope.is_default() { source.to_string() } else { format!("{source}:{}", self.scope.label()) }
    }

    /// Makes a batch this scope's: its origin, and event keys and rejection origins unique to
    /// the scope (unchanged without `[[accounts]]`).
    pub fn scope_batch(&self, batch: &mut crate::store::Batch) {
        batch.origin = self.origin();
        if self.scope.is_default() {
            return;
        }
        for e in &mut batch.events {
            e.idem_key = self.scope.key(&e.idem_key);
        }
        for r in &mut batch.rejections {
            r.origin = self.scope.key(&r.origin);
        }
    }

    /// The `account` and `region` label values of this copy's metrics (as its events'
    /// origin: `default` and empty without `[[accounts]]`).
    pub fn origin_labels(&self) -> [&str; 2] {
        if self.scope.is_default() { [crate::model::DEFAULT_ACCOUNT, ""] } else { [&self.scope.account, &self.scope.region] }
    }

    /// The labels of the per-log-group families: the group, then this scope's account and
    /// region.
    pub fn group_labels<'a>(&'a self, group: &'a str) -> [&'a str; 3] {
        let [account, region] = self.origin_labels();
        [group, account, region]
    }

    /// Where this copy's events come from.
    pub fn origin(&self) -> crate::model::Origin {
        if self.scope.is_default() {
            crate::model::Origin::default()
        } else {
            crate::model::Origin { account: self.scope.account.clone(), region: self.scope.region.clone() }
        }
    }
}
