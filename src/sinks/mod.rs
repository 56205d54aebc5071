//! Sinks: where evaluated results go (CloudWatch metrics, alert receivers, the Prometheus
//! endpoint). Each runs as its own task with its own queue and retries, so none can block
//! evaluation.

pub mod alerts;
pub mod cloudwatch;
pub mod prometheus;
