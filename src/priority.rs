//! Thread priorities: work a request starts (its reads, its report arithmetic) runs on
//! threads the scheduler puts behind the daemon's own (HTTP, ingestion, evaluation), so a
//! burst of reports never competes evenly with `/healthz` or the sources.

/// Nice value of the threads a request's work runs on: under contention the scheduler gives
/// the daemon's own threads about ten times their share.
pub const REQUEST_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority (Linux: `setpriority` on a thread id
/// affects that thread only). Best effort: a failure leaves the thread as it was. Only for
/// threads made for one request: a pooled thread would keep the priority.
pub fn deprioritize_this_thread() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, REQUEST_NICE);
    }
}
