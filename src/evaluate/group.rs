//! One alert per cause (pure): the evaluator's alerts grouped by (alert name, account,
//! region, env, function, the cause's name): linked operations (`cause::Links`) fold into
//! one group, whose state is the most advanced of its members'. A group of a function-level
//! operation (`Lambda.Duration` and kin) is explained by an active group of another
//! operation of the same function: the slow call is the cause, the slow invocation its
//! effect.

use crate::cause::{Links, is_function_level};
use crate::model::alert::{AlertState, Target};
use std::collections::BTreeMap;

/// One judged alert, as grouping sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub alertname: &'static str,
    pub target: Target,
    pub prev: AlertState,
    pub next: AlertState,
}

/// A cause's alerts.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub alertname: &'static str,
    /// The member target with the cause's name as operation.
    pub target: Target,
    /// Indices into the members, the lead first (the most advanced, the cause's own name
    /// first among equals).
    pub members: Vec<usize>,
    pub prev: AlertState,
    pub next: AlertState,
    /// The operation whose active alert explains this function-level one.
    pub explained_by: Option<String>,
}

/// Groups `members` by cause.
pub fn group(members: &[Member], links: &Links) -> Vec<Group> {
    let mut by: BTreeMap<(&'static str, Target), Vec<usize>> = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        let name = links.canonical(&m.target.function, &m.target.operation).to_string();
        by.entry((m.alertname, Target { operation: name, ..m.target.clone() })).or_default().push(i);
    }
    let mut groups: Vec<Group> = by
        .into_iter()
        .map(|((alertname, target), mut idx)| {
            idx.sort_by_key(|&i| (std::cmp::Reverse(members[i].next), members[i].target.operation != target.operation, i));
            let prev = idx.iter().map(|&i| members[i].prev).max().unwrap_or(AlertState::Inactive);
            let next = idx.iter().map(|&i| members[i].next).max().unwrap_or(AlertState::Inactive);
            Group { alertname, target, members: idx, prev, next, explained_by: None }
        })
        .collect();
    // Explanations: the most advanced active non-function-level cause of the same function
    // and place (any alert name: a budget's alert explains a regression of the invocation).
    let causes: Vec<(Target, AlertState)> = groups
        .iter()
        .filter(|g| g.next != AlertState::Inactive && !is_function_level(&g.target.operation))
        .map(|g| (g.target.clone(), g.next))
        .collect();
    for g in groups.iter_mut().filter(|g| is_function_level(&g.target.operation)) {
        let t = &g.target;
        g.explained_by = causes
            .iter()
            .filter(|(c, _)| c.account == t.account && c.region == t.region && c.env == t.env && c.function == t.function)
            .max_by_key(|(c, state)| (*state, std::cmp::Reverse(c.operation.clone())))
            .map(|(c, _)| c.operation.clone());
    }
    groups
}

/// What a group's change of state tells receivers, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Pending,
    Firing,
    Resolved,
    Cleared,
}

/// The change from `prev` to `next`.
pub fn change(prev: AlertState, next: AlertState) -> Option<Change> {
    use AlertState::*;
    match (prev, next) {
        (Inactive, Pending) => Some(Change::Pending),
        (Inactive | Pending, Firing) => Some(Change::Firing),
        (Firing, Inactive | Pending) => Some(Change::Resolved),
        (Pending, Inactive) => Some(Change::Cleared),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OperationConfig;
    use AlertState::*;

    fn m(op: &str, prev: AlertState, next: AlertState) -> Member {
        Member { alertname: "LatencyRegression", target: Target::unscoped("Dev", "GDSH", op), prev, next }
    }

    #[test]
    fn linked_operations_are_one_group_and_the_invocation_is_explained() {
        let links = Links::configured(&[OperationConfig { name: "Bedrock.InvokeModel".into(), also: vec!["BedrockCallDuration".into()] }]);
        let members = vec![
            m("BedrockCallDuration", Pending, Firing),
            m("Bedrock.InvokeModel", Inactive, Pending),
            m("Lambda.Duration", Inactive, Firing),
            m("DynamoDB.PutItem", Inactive, Inactive),
        ];
        let g = group(&members, &links);
        assert_eq!(g.len(), 3);
        let bedrock = g.iter().find(|g| g.target.operation == "Bedrock.InvokeModel").unwrap();
        assert_eq!((bedrock.prev, bedrock.next, bedrock.members.clone()), (Pending, Firing, vec![0, 1]), "the firing member leads");
        let inv = g.iter().find(|g| g.target.operation == "Lambda.Duration").unwrap();
        assert_eq!(inv.explained_by.as_deref(), Some("Bedrock.InvokeModel"));
        let dynamo = g.iter().find(|g| g.target.operation == "DynamoDB.PutItem").unwrap();
        assert_eq!(dynamo.explained_by, None);
        // Nothing else active: the invocation's regression stands alone.
        let alone = group(&[m("Lambda.Duration", Inactive, Firing), m("Bedrock.InvokeModel", Inactive, Inactive)], &links);
        assert!(alone.iter().all(|g| g.explained_by.is_none()));
        assert_eq!(change(Pending, Firing), Some(Change::Firing));
        assert_eq!(change(Firing, Pending), Some(Change::Resolved));
        assert_eq!(change(Firing, Firing), None);
    }
}
