//! The data every stage passes along: timing events, their sources, rejected inputs and
//! source positions, and the alert vocabulary ([`alert`]). Nothing here does I/O; the store
//! owns persistence.

pub mod alert;
pub mod counts;
pub mod lease;

use serde::{Deserialize, Serialize};

/// Where a timing event was read from. Stored as its `as_str()` form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// An application's structured timing line (the seed's `TIMING`/`END` JSON).
    Logs,
    /// A Lambda platform record (`REPORT` text line or JSON `platform.report`).
    Report,
    /// A CloudWatch Embedded Metric Format record.
    Emf,
    /// An X-Ray segment or subsegment.
    Xray,
}

impl Source {
    pub const ALL: [Source; 4] = [Source::Logs, Source::Report, Source::Emf, Source::Xray];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Logs => "logs",
            Source::Report => "report",
            Source::Emf => "emf",
            Source::Xray => "xray",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The account and region events came from (each source polls one of each).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The account's configured name (`default` without `[[accounts]]`).
    pub account: String,
    /// The region; empty for a config without `[[accounts]]` (its one region is implied).
    pub region: String,
}

impl Default for Origin {
    fn default() -> Self {
        Origin { account: DEFAULT_ACCOUNT.to_string(), region: String::new() }
    }
}

/// Whether `account` is the one of a config without `[[accounts]]` (for serde's
/// `skip_serializing_if`: reports and the API leave it out, and answer as before accounts).
pub fn is_default_account(account: &String) -> bool {
    *account == DEFAULT_ACCOUNT
}

/// Whether any of these (account, region) is not the default origin's: then tables and CSV
/// get account and region columns.
pub fn shows_origin<'a>(places: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
    places.into_iter().any(|(account, region)| account != DEFAULT_ACCOUNT || !region.is_empty())
}

/// The account name of a config without `[[accounts]]`.
pub const DEFAULT_ACCOUNT: &str = "default";

/// One measured duration of one operation, attributed to an environment and a function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingEvent {
    /// Event time in epoch milliseconds: the AWS event's own time, never arrival time.
    pub time_ms: i64,
    /// Environment (Lambda alias such as `PROD`/`Dev`, `$LATEST`, or a configured default).
    pub env: String,
    /// Lambda function name (from the log group or the trace), never an app abbreviation.
    pub function: String,
    /// Operation name (`Bedrock.InvokeModel`, `BedrockCallDuration`, `Lambda.Duration`, ...).
    pub operation: String,
    pub source: Source,
    /// Duration in seconds; finite and non-negative (parsers reject anything else).
    pub duration_s: f64,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    /// Resolved function version (`12`, `$LATEST`) when known.
    pub function_version: Option<String>,
    pub cold_start: bool,
    pub error: bool,
    /// Unique per AWS observation; storing the same key twice is a no-op.
    pub idem_key: String,
    /// Extra, allow-listed attributes (app abbreviation, aws.operation, namespace...).
    pub attributes: Vec<(String, String)>,
}

/// An input that could not be used, kept for inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// When it was seen (event time if known), epoch ms.
    pub time_ms: i64,
    /// `logs` or `xray`.
    pub source: String,
    /// Where it came from (log group + stream + event id, or trace id + segment id).
    pub origin: String,
    /// A short, bounded reason code (`invalid_json`, `bad_value`, `too_large`, ...).
    pub reason: &'static str,
    /// Human detail for the operator.
    pub detail: String,
    /// The raw input, capped by the store before it is written.
    pub raw: String,
}

/// A source position: what a source has committed up to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// `logs` or `xray`.
    pub source: String,
    /// Position key inside the source (a log group name, `traces`).
    pub key: String,
    /// Committed high-water mark, epoch ms.
    pub position_ms: i64,
    /// Free-form state the source needs to resume (JSON).
    pub state: Option<String>,
}
