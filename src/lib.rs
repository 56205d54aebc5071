//! # Latency Sentinel
//!
//! A long-running collector that tails Lambda log groups and polls X-Ray, stores every
//! timing event in SQLite, and tells which operation is slow, since when, in which
//! environment, and whether it is over its budget.
//!
//! ## Layout (data flows one way: sources → parse → store → evaluate → sinks)
//! - [`config`]: the TOML config, documented structs, all errors at once.
//! - [`model`]: timing events, sources, rejected inputs, checkpoints; the alert vocabulary;
//!   the counters every aggregate keeps. [`clock`]: wall-clock time.
//! - [`lambda`]: Lambda's names: log streams and groups, function ARNs and qualifiers.
//! - [`parse`]: pure parsers for every log and trace format (no I/O, no clock).
//! - [`attribute`]: env attribution. [`critical_path`]: where a trace's time went.
//! - [`sources`]: the AWS pollers (CloudWatch Logs, X-Ray, Lambda aliases).
//! - [`store`]: the only owner of SQLite (the only module that speaks SQL).
//! - [`evaluate`]: windows, budgets and the alert life cycle; the evaluator task.
//! - [`sinks`]: alert receivers, CloudWatch metrics, the Prometheus exposition.
//! - [`report`]: reports over the store. [`quantile`], [`sketch`]: how percentiles are taken.
//! - [`http`]: `/metrics`, `/healthz`, `/readyz`, `/api/v1/*` (state, guards, routes).
//! - [`aws`]: SDK config, retry policy, rate limiters. [`endpoints`]: where the SDK would
//!   send a call. [`services`]: what the daemon's tasks share.
//! - [`metrics`], [`health`]: the daemon's own metrics and readiness; [`exposition`]: the
//!   Prometheus text format.
//! - [`supervise`]: restart-with-backoff for tasks; [`app`]: wires it all together.
//! - [`glob`]: budget patterns. [`shard`]: which log groups an instance owns.
//! - [`cluster`]: daemons sharing one PostgreSQL history split the work by leases.
//! - [`ingest`]: offline ingest. [`simulate`]: the `simulate` command, writing the seed's
//!   application into an AWS endpoint.

/// The daemon allocates and frees millions of small strings an hour (log lines, keys,
/// labels); mimalloc does that with less time and fragmentation than the system allocator
/// (about a tenth of the ingest path's time went to glibc's free lists). Declared in the
/// library so the daemon, its benchmarks and its tests all run on the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod app;
pub mod attribute;
pub mod cause;
pub mod aws;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod critical_path;
pub mod doctor;
pub mod endpoints;
pub mod evaluate;
pub mod exposition;
pub mod glob;
pub mod hash;
pub mod health;
pub mod init;
pub mod http;
pub mod ingest;
pub mod lambda;
pub mod metrics;
pub mod model;
pub mod parse;
pub mod priority;
pub mod quantile;
pub mod report;
pub mod scope;
pub mod services;
pub mod shard;
pub mod simulate;
pub mod sketch;
pub mod stats;
pub mod sinks;
pub mod sources;
pub mod store;
pub mod supervise;
