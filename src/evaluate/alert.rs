//! The alert life cycle as a pure function: inactive → pending (over budget with enough
//! samples) → firing (after `for`) → resolved (under budget for `keep_firing_for`); a pending
//! alert that clears is dropped. Time is an argument, so tests step it by hand.

use crate::model::alert::{Phase, Transition};

/// One evaluation step.
pub fn step(prev: Phase, breached: bool, now_ms: i64, for_ms: i64, keep_firing_for_ms: i64) -> (Phase, Option<Transition>) {
    match (prev, breached) {
        (Phase::Inactive, false) => (Phase::Inactive, None),
        (Phase::Inactive, true) if for_ms <= 0 => {
            (Phase::Firing { active_at: now_ms, fired_at: now_ms, last_breach: now_ms }, Some(Transition::Firing))
        }
        (Phase::Inactive, true) => (Phase::Pending { active_at: now_ms }, Some(Transition::Pending)),
        (Phase::Pending { .. }, false) => (Phase::Inactive, Some(Transition::Cleared)),
        (Phase::Pending { active_at }, true) if now_ms - active_at >= for_ms => {
            (Phase::Firing { active_at, fired_at: now_ms, last_breach: now_ms }, Some(Transition::Firing))
        }
        (p @ Phase::Pending { .. }, true) => (p, None),
        (Phase::Firing { active_at, fired_at, .. }, true) => (Phase::Firing { active_at, fired_at, last_breach: now_ms }, None),
        (f @ Phase::Firing { last_breach, .. }, false) => {
            if now_ms - last_breach >= keep_firing_for_ms {
                (Phase::Inactive, Some(Transition::Resolved))
            } else {
                (f, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FOR: i64 = 60_000;
    const KEEP: i64 = 120_000;

    #[test]
    fn full_life_cycle() {
        let (p, t) = step(Phase::Inactive, true, 0, FOR, KEEP);
        assert_eq!((p, t), (Phase::Pending { active_at: 0 }, Some(Transition::Pending)));
        let (p, t) = step(p, true, 30_000, FOR, KEEP);
        assert_eq!((p, t), (Phase::Pending { active_at: 0 }, None));
        let (p, t) = step(p, true, 60_000, FOR, KEEP);
        assert_eq!(t, Some(Transition::Firing));
        assert_eq!(p, Phase::Firing { active_at: 0, fired_at: 60_000, last_breach: 60_000 });
        // Under budget, but not yet for keep_firing_for: still firing.
        let (p, t) = step(p, false, 150_000, FOR, KEEP);
        assert_eq!((p.name(), t), ("firing", None));
        let (p, t) = step(p, false, 180_000, FOR, KEEP);
        assert_eq!((p, t), (Phase::Inactive, Some(Transition::Resolved)));
    }

    #[test]
    fn a_pending_alert_that_clears_is_dropped_and_for_zero_fires_at_once() {
        let (p, _) = step(Phase::Inactive, true, 0, FOR, KEEP);
        assert_eq!(step(p, false, 10_000, FOR, KEEP), (Phase::Inactive, Some(Transition::Cleared)));
        let (p, t) = step(Phase::Inactive, true, 5, 0, 0);
        assert_eq!((p.name(), t), ("firing", Some(Transition::Firing)));
        assert_eq!(step(p, false, 6, 0, 0), (Phase::Inactive, Some(Transition::Resolved)));
    }

    #[tokio::test(start_paused = true)]
    async fn transitions_with_paused_time() {
        let start = tokio::time::Instant::now();
        let ms = |i: tokio::time::Instant| (i - start).as_millis() as i64;
        let mut p = Phase::Inactive;
        let mut seen = Vec::new();
        for breached in [true, true, true, false, false, false, false] {
            let (next, t) = step(p, breached, ms(tokio::time::Instant::now()), FOR, KEEP);
            if let Some(t) = t {
                seen.push(t);
            }
            p = next;
            tokio::time::advance(std::time::Duration::from_secs(45)).await;
        }
        assert_eq!(seen, vec![Transition::Pending, Transition::Firing, Transition::Resolved]);
    }

    proptest! {
        #[test]
        fn with_for_above_zero_inactive_never_jumps_to_firing(
            breaches in proptest::collection::vec(any::<bool>(), 1..50),
            gaps in proptest::collection::vec(0i64..100_000, 50),
            for_ms in 1i64..200_000,
            keep in 0i64..200_000,
        ) {
            let mut p = Phase::Inactive;
            let mut now = 0;
            for (i, b) in breaches.iter().enumerate() {
                now += gaps[i];
                let (next, _) = step(p, *b, now, for_ms, keep);
                if p == Phase::Inactive {
                    let fired = matches!(next, Phase::Firing { .. });
                    prop_assert!(!fired, "inactive jumped to firing");
                }
                if let (Phase::Pending { active_at }, Phase::Firing { .. }) = (p, next) {
                    prop_assert!(now - active_at >= for_ms);
                }
                p = next;
            }
        }
    }
}
