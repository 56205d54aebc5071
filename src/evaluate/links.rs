//! The links in force, read from the store: `[[operations]]` and those `cause::learn` finds
//! among the newest invocations of a range (the thin shell the evaluator and the reports
//! share).

use crate::cause::{Links, Sample, learn};
use crate::config::OperationConfig;
use crate::store::events::EventFilter;
use crate::store::{Store, StoreError};

/// Invocation events read at most (newest first).
pub const SAMPLES: usize = 20_000;

/// The links over `[from_ms, to_ms)`.
pub async fn read(store: &Store, operations: &[OperationConfig], from_ms: i64, to_ms: i64) -> Result<Links, StoreError> {
    let filter = EventFilter { from_ms, to_ms, ..EventFilter::default() };
    let rows = store.newest_invocation_events(filter, SAMPLES).await?;
    let samples: Vec<Sample> = rows
        .into_iter()
        .map(|e| Sample {
            function: e.function,
            invocation: e.request_id.or(e.trace_id).unwrap_or_default(),
            operation: e.operation,
            xray: e.source == "xray",
            duration_s: e.duration_s,
        })
        .collect();
    Ok(Links::configured(operations).with_learned(learn(&samples)))
}
