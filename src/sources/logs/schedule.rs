//! Adaptive polling: a group that just yielded events is polled again after `poll_interval`;
//! each empty poll doubles its wait up to `idle_poll_interval`; a failure backs off the same
//! way. Busy groups thus get most of the account-wide request budget.

use std::time::Duration;

/// What the last poll of a group found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollResult {
    Events,
    Empty,
    Failed,
}

/// The wait before the next poll, given the previous wait and what this poll found.
pub fn next_interval(previous: Duration, result: PollResult, busy: Duration, idle: Duration) -> Duration {
    match result {
        PollResult::Events => busy,
        PollResult::Empty | PollResult::Failed => (previous.max(busy) * 2).min(idle).max(busy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_stays_fast_idle_slows_down_to_the_cap() {
        let busy = Duration::from_secs(5);
        let idle = Duration::from_secs(60);
        assert_eq!(next_interval(Duration::from_secs(40), PollResult::Events, busy, idle), busy);
        let mut d = busy;
        let mut seen = vec![];
        for _ in 0..6 {
            d = next_interval(d, PollResult::Empty, busy, idle);
            seen.push(d.as_secs());
        }
        assert_eq!(seen, vec![10, 20, 40, 60, 60, 60]);
        assert_eq!(next_interval(Duration::ZERO, PollResult::Failed, busy, idle), Duration::from_secs(10));
    }
}
