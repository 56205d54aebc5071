//! The sources: tasks that turn AWS pages into timing events and checkpoints and hand both
//! to the store in one call. They never decide percentiles or alerts.

use crate::config::Config;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::Store;
use aws_config::SdkConfig;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every source needs.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub sdk: SdkConfig,
    pub store: Store,
    pub metrics: Metrics,
    pub health: Health,
    pub tracker: TaskTracker,
    pub shutdown: CancellationToken,
}

/// Spawns every enabled source.
pub fn spawn_all(_ctx: &Context) {}
