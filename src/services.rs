//! What the daemon's tasks share, built once at start: the config, the AWS SDK
//! configuration, the store, the metrics, readiness, the task tracker and the shutdown
//! token. Sources and sinks take it; neither owns it.

use crate::config::Config;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::Store;
use aws_config::SdkConfig;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The shared services; cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub sdk: SdkConfig,
    pub store: Store,
    pub metrics: Metrics,
    pub health: Health,
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
}
