//! The lease vocabulary shared by the store (which reads and writes the lease table) and
//! the cluster (which decides from it).

/// One lease as a node read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    pub unit: String,
    /// The node holding it (None: free).
    pub holder: Option<String>,
    /// Whether its holder renewed it within the TTL (by the database's clock).
    pub live: bool,
}

/// The lease a write is made under: `holder` must still hold `unit` at `epoch`, or the
/// write is refused (a node that lost its lease cannot commit a stale checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub unit: String,
    pub holder: String,
    pub epoch: i64,
}
