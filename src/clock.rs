//! Wall-clock time as pmr publishes it: milliseconds since the Unix epoch,
//! the unit of every timestamp in events, `jlist` rows, logs and the dump.
//! A module of its own so the layers below the supervisor (logs, the dump
//! file) can read the clock without depending on the supervisor.

/// Milliseconds since the Unix epoch; 0 on a clock set before 1970.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
