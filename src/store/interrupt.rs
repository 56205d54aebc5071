//! Bounding a request's reads: a deadline and a cancel flag that SQLite itself checks while
//! it steps a statement (its progress handler), so a request that timed out, or whose client
//! went away, stops scanning at once instead of holding a connection and a core until its
//! statement ends.
//!
//! A request gets a [`SqliteStore`](super::SqliteStore) view through [`SqliteStore::for_request`](super::SqliteStore::for_request):
//! its reads run on the read-only connections and carry an [`Interrupt`]; the
//! [`CancelOnDrop`] it also gets cancels them when the request's future is dropped.

use std::ffi::{c_int, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// SQLite virtual-machine steps between two checks (a check is an atomic load and a clock
/// read: tens of nanoseconds against the microseconds a thousand steps take).
pub(super) const CHECK_EVERY_STEPS: c_int = 1_000;

#[derive(Debug)]
struct State {
    deadline: Instant,
    cancelled: AtomicBool,
}

/// When a request's reads must stop. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Interrupt {
    state: Arc<State>,
}

/// Cancels the [`Interrupt`] it came with when dropped: held by the request's future, it
/// fires when that future ends early (a timeout, a client that disconnected).
#[derive(Debug)]
pub struct CancelOnDrop {
    state: Arc<State>,
    armed: bool,
}

impl Interrupt {
    /// An interrupt firing at `deadline`, and the guard that fires it early.
    pub fn new(deadline: Instant) -> (Interrupt, CancelOnDrop) {
        let state = Arc::new(State { deadline, cancelled: AtomicBool::new(false) });
        (Interrupt { state: state.clone() }, CancelOnDrop { state, armed: true })
    }

    /// Whether reads must stop now.
    pub fn fired(&self) -> bool {
        should_stop(&self.state)
    }

    /// The deadline.
    pub fn deadline(&self) -> Instant {
        self.state.deadline
    }

    /// The context pointer handed to SQLite; valid while `self` (or a clone) lives.
    pub(super) fn as_ctx(&self) -> *mut c_void {
        Arc::as_ptr(&self.state) as *mut c_void
    }
}

impl CancelOnDrop {
    /// The work finished: dropping the guard no longer counts as a cancellation.
    pub fn disarm(mut self) {
        self.armed = false;
    }

    /// Whether the reads were stopped (by the deadline or a cancellation).
    pub fn fired(&self) -> bool {
        should_stop(&self.state)
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.state.cancelled.store(true, Ordering::Release);
        }
    }
}

fn should_stop(s: &State) -> bool {
    s.cancelled.load(Ordering::Acquire) || Instant::now() >= s.deadline
}

/// SQLite's progress handler: a non-zero answer makes the running statement fail with
/// `SQLITE_INTERRUPT`.
pub(super) extern "C" fn progress_handler(ctx: *mut c_void) -> c_int {
    // SAFETY: `ctx` is `Interrupt::as_ctx` of an interrupt the installing guard keeps alive
    // until it removes the handler (`raw::Watch`).
    let state = unsafe { &*(ctx as *const State) };
    c_int::from(should_stop(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_at_the_deadline_or_when_the_guard_drops() {
        let (i, guard) = Interrupt::new(Instant::now() + Duration::from_secs(60));
        assert!(!i.fired());
        assert_eq!(progress_handler(i.as_ctx()), 0);
        drop(guard);
        assert!(i.fired());
        assert_eq!(progress_handler(i.as_ctx()), 1);

        let (i, guard) = Interrupt::new(Instant::now() + Duration::from_secs(60));
        guard.disarm();
        assert!(!i.fired(), "a finished request's guard does not cancel");

        let (i, _guard) = Interrupt::new(Instant::now());
        assert!(i.fired(), "past its deadline");
    }
}
