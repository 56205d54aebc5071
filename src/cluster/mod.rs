//! Several daemons sharing one PostgreSQL history split the work by leases: each unit of
//! work (a log group of an account and region, an X-Ray poller, the evaluator, the
//! CloudWatch publisher, rollups, retention) is a lease row that one node holds and renews.
//! [`plan`] decides how many units a node should hold (pure); [`keeper`] is the task that
//! renews, takes and gives back leases every third of the TTL and publishes what the node
//! holds to the tasks that do the work; [`work`] is how those tasks ask.

pub mod keeper;
pub mod plan;
pub mod status;
pub mod work;

/// The units every node offers whatever its sources find: one evaluator for the fleet, one
/// of each background job.
pub const EVALUATOR: &str = "evaluator";
pub const ROLLUPS: &str = "rollups";
pub const RETENTION: &str = "retention";

/// This node's name: the configured one, else `hostname-pid` (unique on a machine, and
/// readable in `/readyz`).
pub fn node_id(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "node".to_string());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_configured_name_wins_else_host_and_pid() {
        assert_eq!(super::node_id("a"), "a");
        let id = super::node_id("");
        assert!(id.ends_with(&format!("-{}", std::process::id())), "{id}");
    }
}
