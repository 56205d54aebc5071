//! How many units of work this node should hold, decided from what the lease table shows
//! (pure: the keeper reads the table, asks here, and writes the answer). Balanced by count:
//! every node computes the same targets from the live nodes' names (⌊units / nodes⌋, one
//! more for the first `units mod nodes` by name), takes free or expired units up to its own
//! and gives back what it holds above it, so a node that joins gets work and the survivors
//! of one that died take its work over.

pub use crate::model::lease::LeaseView;

/// What to do this round.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// How many free or expired units to try to take (others may take some first).
    pub take: usize,
    /// Units to give back (held above the fair share).
    pub release: Vec<String>,
}

/// How many of `units` node `me` aims at among `live_nodes` (names, sorted; `me` counts as
/// one of them even when not listed yet): the same answer on every node, summing to `units`.
pub fn target(units: usize, live_nodes: &[String], me: &str) -> usize {
    let listed = live_nodes.iter().any(|n| n == me);
    let n = live_nodes.len() + usize::from(!listed);
    let rank = live_nodes.iter().position(|x| x == me).unwrap_or(n - 1);
    units / n + usize::from(rank < units % n)
}

/// The plan of node `me` over `leases` with `live_nodes` alive (by name). Units listed in
/// `sticky` (the evaluator: moving it re-reads its windows) are given back last.
pub fn plan(me: &str, leases: &[LeaseView], live_nodes: &[String], sticky: &[&str]) -> Plan {
    let share = target(leases.len(), live_nodes, me);
    let mut mine: Vec<&str> = leases.iter().filter(|l| l.live && l.holder.as_deref() == Some(me)).map(|l| l.unit.as_str()).collect();
    let free = leases.iter().filter(|l| !l.live || l.holder.is_none()).count();
    if mine.len() < share {
        return Plan { take: (share - mine.len()).min(free), release: Vec::new() };
    }
    // Give back the surplus, highest names first, sticky units only when nothing else is left.
    mine.sort_by(|a, b| sticky.contains(a).cmp(&sticky.contains(b)).then_with(|| b.cmp(a)));
    let surplus = mine.len() - share;
    Plan { take: 0, release: mine.into_iter().take(surplus).map(str::to_string).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lease(unit: &str, holder: Option<&str>, live: bool) -> LeaseView {
        LeaseView { unit: unit.into(), holder: holder.map(str::to_string), live }
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn targets_are_the_same_everywhere_and_sum_to_the_units() {
        let nodes = names(&["a", "b", "c"]);
        assert_eq!(["a", "b", "c"].map(|n| target(40, &nodes, n)), [14, 13, 13]);
        assert_eq!(target(40, &names(&["b"]), "a"), 20, "a node not listed yet counts itself");
        assert_eq!(target(2, &nodes, "c"), 0);
    }

    #[test]
    fn a_node_takes_up_to_its_target_and_gives_back_the_surplus() {
        let free: Vec<LeaseView> = (0..10).map(|i| lease(&format!("u{i:02}"), None, false)).collect();
        assert_eq!(plan("a", &free, &names(&["a", "b", "c"]), &[]), Plan { take: 4, release: vec![] }, "10 = 4 + 3 + 3");
        let mut held: Vec<LeaseView> = (0..10).map(|i| lease(&format!("u{i:02}"), Some("a"), true)).collect();
        held[9] = lease("evaluator", Some("a"), true);
        let p = plan("a", &held, &names(&["a", "b"]), &["evaluator"]);
        assert_eq!(p.take, 0);
        assert_eq!(p.release, ["u08", "u07", "u06", "u05", "u04"], "the evaluator stays");
        // An expired lease of another node is free to take; a live one is not.
        let mixed = vec![lease("x", Some("b"), false), lease("y", Some("b"), true), lease("z", None, false)];
        assert_eq!(plan("a", &mixed, &names(&["a", "b"]), &[]).take, 2);
        assert_eq!(plan("a", &mixed, &names(&["a"]), &[]).take, 2, "alone, it takes every free unit it can");
    }

    proptest! {
        /// Whatever the table shows, nobody aims above its target, and nodes below it never
        /// give anything back; the targets of all nodes sum to the units.
        #[test]
        fn never_above_the_target(units in 0usize..60, nodes in 1usize..6, held in 0usize..60) {
            let leases: Vec<LeaseView> = (0..units).map(|i| {
                let holder = if i < held { Some("me") } else if i % 2 == 0 { Some("other") } else { None };
                lease(&format!("u{i}"), holder, i % 3 != 0)
            }).collect();
            let mut live: Vec<String> = (1..nodes).map(|i| format!("n{i}")).collect();
            live.push("me".into());
            live.sort();
            prop_assert_eq!(live.iter().map(|n| target(units, &live, n)).sum::<usize>(), units);
            let p = plan("me", &leases, &live, &[]);
            let mine = leases.iter().filter(|l| l.live && l.holder.as_deref() == Some("me")).count();
            let share = target(units, &live, "me");
            prop_assert!(mine + p.take <= share.max(mine));
            prop_assert!(mine - p.release.len() <= share);
            prop_assert!(p.take == 0 || p.release.is_empty());
        }
    }
}
