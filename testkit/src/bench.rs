//! Small helpers the benchmarks share.

/// Nanoseconds thread or process `id` has spent on a CPU (user and system), from
/// `/proc/<id>/schedstat` (exact, unlike the tick-counted times of `/proc/<id>/stat`);
/// 0 when unreadable.
pub fn run_ns(id: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{id}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The median of some measurements (the upper one of an even count); NaN for none.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
