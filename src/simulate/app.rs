//! The simulated application: the seed's four Atlas Engine functions, the calls each makes
//! with their normal latency, and the state machine that runs them in turn.

use super::*;

/// One instrumented call inside a function.
#[derive(Debug, PartialEq)]
pub struct OpSpec {
    /// The X-Ray subsegment name (`Bedrock.InvokeModel`).
    pub name: &'static str,
    /// The seed's TIMING `metric` (`BedrockCallDuration`).
    pub metric: &'static str,
    /// Latency when nothing overrides it.
    pub default: Dist,
}

/// One Lambda function of the application.
#[derive(Debug, PartialEq)]
pub struct FunctionSpec {
    pub name: &'static str,
    /// The seed's `function_name` abbreviation.
    pub abbr: &'static str,
    /// The state machine state that invokes it.
    pub state: &'static str,
    pub memory_mb: u32,
    pub timeout_s: u32,
    /// Typical `Max Memory Used` (MB).
    pub memory_used_mb: u32,
    /// The calls it makes, in order.
    pub ops: &'static [OpSpec],
    /// Exception type of a simulated failure.
    pub error_type: &'static str,
}

const fn ln(median: f64, sigma: f64) -> Dist {
    Dist::LogNormal { median, sigma }
}

/// The seed's application, in workflow order.
pub static ATLAS: [FunctionSpec; 4] = [
    FunctionSpec {
        name: "LexFulfillmentHandler",
        abbr: "LFH",
        state: "LexFulfillment",
        memory_mb: 512,
        timeout_s: 30,
        memory_used_mb: 118,
        ops: &[
            OpSpec { name: "Bedrock.InvokeModel", metric: "BedrockCallDuration", default: ln(0.6, 0.25) },
            OpSpec { name: "SecretsManager.GetSecret", metric: "SecretsManagerDuration", default: ln(0.035, 0.3) },
            OpSpec { name: "Salesforce.OAuth", metric: "SalesforceAuthDuration", default: ln(0.25, 0.3) },
        ],
        error_type: "botocore.exceptions.ClientError",
    },
    FunctionSpec {
        name: "GenerateDynamicScenarioHandler",
        abbr: "GDSH",
        state: "GenerateDynamicScenario",
        memory_mb: 1024,
        timeout_s: 60,
        memory_used_mb: 164,
        ops: &[OpSpec { name: "Bedrock.InvokeModel", metric: "BedrockCallDuration", default: ln(2.5, 0.2) }],
        error_type: "botocore.errorfactory.ThrottlingException",
    },
    FunctionSpec {
        name: "InvokeOutboundCallHandler",
        abbr: "IOCH",
        state: "InvokeOutboundCall",
        memory_mb: 256,
        timeout_s: 15,
        memory_used_mb: 92,
        ops: &[
            OpSpec { name: "DynamoDB.PutItem", metric: "DynamoDBPutDuration", default: ln(0.025, 0.3) },
            OpSpec { name: "Connect.StartOutboundCall", metric: "ConnectCallDuration", default: ln(1.0, 0.25) },
            OpSpec { name: "DynamoDB.UpdateItem", metric: "DynamoDBUpdateDuration", default: ln(0.02, 0.3) },
        ],
        error_type: "botocore.errorfactory.LimitExceededException",
    },
    FunctionSpec {
        name: "UpdateLeadHandler",
        abbr: "ULH",
        state: "UpdateLead",
        memory_mb: 256,
        timeout_s: 15,
        memory_used_mb: 86,
        ops: &[
            OpSpec { name: "Salesforce.Authenticate", metric: "SalesforceAuthDuration", default: ln(0.18, 0.3) },
            OpSpec { name: "Salesforce.UpdateLead", metric: "SalesforceUpdateDuration", default: ln(0.3, 0.25) },
        ],
        error_type: "simple_salesforce.exceptions.SalesforceGeneralError",
    },
];

/// The state machine's name.
pub const STATE_MACHINE: &str = "AtlasEngineWorkflow";
/// The seed's END line key, stored by the daemon as an operation of its own.
pub const TOTAL_METRIC: &str = "total_function_duration";
/// CloudWatch Logs refuses events older than 14 days; keep a margin for slow writes.
pub const MAX_HISTORY: Duration = Duration::from_secs(14 * 86_400 - 3_600);

/// The state machine name an environment's executions run under: the seed keeps
/// `AtlasEngineWorkflow` for PROD and suggests `AtlasEngineWorkflow-Dev` for the Dev aliases.
pub fn state_machine_name(env: &str) -> String {
    if env.eq_ignore_ascii_case("PROD") { STATE_MACHINE.to_string() } else { format!("{STATE_MACHINE}-{env}") }
}

pub(super) fn find_function(name: &str) -> Option<usize> {
    ATLAS.iter().position(|f| f.name == name || f.abbr.eq_ignore_ascii_case(name))
}
