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

/// The numeric fields of `/proc/<id>/stat` after the command name (which may hold
/// spaces), numbered from the line's field 3 (`state`, not a number: 0) on, so field
/// `k` of proc(5) is at `k - 3`; empty when the process is gone.
pub fn stat_fields(id: u32) -> Vec<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{id}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect()
}

/// Minor page faults and context switches (voluntary + involuntary) of process `id` so
/// far (`/proc/<id>/stat`, `/proc/<id>/status`); zeros when it is gone.
pub fn faults_and_switches(id: u32) -> (u64, u64) {
    // `minflt` is field 10.
    let faults = stat_fields(id).get(10 - 3).copied().unwrap_or(0);
    let switches = std::fs::read_to_string(format!("/proc/{id}/status"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("ctxt_switches:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    (faults, switches)
}

/// The median over rounds of `f(round, base round)`, each round of a configuration taken
/// with the baseline's round of the same cycle (run minutes apart at most), so what the
/// machine's slow and fast spells move cancels out.
pub fn paired_median<T>(rounds: &[T], base: &[T], f: impl Fn(&T, &T) -> f64) -> f64 {
    median(rounds.iter().zip(base).map(|(r, b)| f(r, b)).collect())
}

/// The median of some measurements (the upper one of an even count); NaN for none.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
