//! Wall-clock time as the daemon counts it: epoch milliseconds. One place, so every module
//! reads the same clock (and none reaches into the store for it).

/// Current wall-clock time in epoch milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}
