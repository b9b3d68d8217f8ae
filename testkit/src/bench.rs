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

/// Minor page faults and context switches (voluntary + involuntary) of process `id` so
/// far (`/proc/<id>/stat`, `/proc/<id>/status`); zeros when it is gone.
pub fn faults_and_switches(id: u32) -> (u64, u64) {
    let faults = std::fs::read_to_string(format!("/proc/{id}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start at `state`;
            // `minflt` is the 10th field of the line, the 8th after the name.
            let rest = &s[s.rfind(')')? + 2..];
            rest.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0);
    let switches = std::fs::read_to_string(format!("/proc/{id}/status"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("ctxt_switches:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    (faults, switches)
}

/// The median of some measurements (the upper one of an even count); NaN for none.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
