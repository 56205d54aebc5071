//! # Latency Sentinel
//!
//! A long-running collector that tails Lambda log groups and polls X-Ray, stores every
//! timing event in SQLite, and tells which operation is slow, since when, in which
//! environment, and whether it is over its budget.
//!
//! ## Layout (data flows one way: sources → parse → store → evaluate → sinks)
//! - [`config`]: the TOML config, documented structs, all errors at once.
//! - [`model`]: timing events, sources, rejected inputs, checkpoints.
//! - [`lambda`]: Lambda's names: log streams and groups, function ARNs and qualifiers.
//! - [`parse`]: pure parsers for every log and trace format (no I/O, no clock).
//! - [`critical_path`]: where a trace's time went.
//! - [`sources`]: the AWS pollers (CloudWatch Logs, X-Ray).
//! - [`store`]: the only owner of SQLite.
//! - [`aws`]: SDK config, retry policy, rate limiters.
//! - [`metrics`], [`health`]: the daemon's own metrics and readiness; [`exposition`]: the
//!   Prometheus text format.
//! - [`http`]: `/metrics`, `/healthz`, `/readyz`, `/api/v1/*` (state, guards, routes).
//! - [`supervise`]: restart-with-backoff for tasks; [`app`]: wires it all together.
//! - [`glob`]: budget patterns; [`quantile`]: the nearest-rank definition every number uses.
//! - [`simulate`]: the `simulate` command, writing the seed's application into an AWS endpoint.
//! - [`endpoints`]: where the SDK would send a call (simulate's guard against real accounts).

/// The daemon allocates and frees millions of small strings an hour (log lines, keys,
/// labels); mimalloc does that with less time and fragmentation than the system allocator
/// (about a tenth of the ingest path's time went to glibc's free lists). Declared in the
/// library so the daemon, its benchmarks and its tests all run on the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod app;
pub mod attribute;
pub mod aws;
pub mod clock;
pub mod config;
pub mod critical_path;
pub mod endpoints;
pub mod evaluate;
pub mod exposition;
pub mod glob;
pub mod health;
pub mod http;
pub mod ingest;
pub mod lambda;
pub mod metrics;
pub mod model;
pub mod parse;
pub mod quantile;
pub mod report;
pub mod services;
pub mod shard;
pub mod simulate;
pub mod sketch;
pub mod sinks;
pub mod sources;
pub mod store;
pub mod supervise;
