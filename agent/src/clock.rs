//! The span clock: wall-clock Unix nanoseconds, read twice per span.
//!
//! `clock_gettime(CLOCK_REALTIME)` costs ~25–40 ns on the VMs we measured; the CPU's
//! time-stamp counter (`rdtsc`) about half that. When the kernel itself keeps time with
//! the TSC (its clocksource is `tsc`: the counter is invariant and synchronized across
//! cores), the agent reads the TSC and maps ticks to Unix nanoseconds with a linear
//! calibration against the system clocks:
//!
//! - [`init`] (at `build()`) takes two samples about 2 ms apart: a first frequency.
//! - [`recalibrate`] (from the exporter thread, every export interval) re-estimates the
//!   frequency against `CLOCK_MONOTONIC` over the whole time since [`init`] (so its error
//!   shrinks as the process lives) and re-anchors the mapping on `CLOCK_REALTIME` now
//!   (so clock steps are followed within one interval).
//!
//! Readers take the calibration through a sequence lock: four plain loads, no atomic
//! read-modify-write, and never a wait (a reader that keeps meeting an update in
//! progress reads `CLOCK_REALTIME` instead). Anywhere else (no TSC clocksource, not x86_64, before [`init`]) the
//! clock is `clock_gettime(CLOCK_REALTIME)`.

use std::sync::atomic::{fence, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

const UNSET: u8 = 0;
const REALTIME: u8 = 1;
const TSC: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(UNSET);

/// Fraction bits of `MULT`.
const SHIFT: u32 = 48;

/// The mapping `unix = base_unix + (ticks - base_ticks) * mult / 2^SHIFT`, behind a
/// sequence lock (`SEQ` odd while a writer updates it).
static SEQ: AtomicU64 = AtomicU64::new(0);
static BASE_TICKS: AtomicU64 = AtomicU64::new(0);
static BASE_UNIX: AtomicU64 = AtomicU64::new(0);
static MULT: AtomicU64 = AtomicU64::new(0);

/// The first sample (ticks, `CLOCK_MONOTONIC` ns): the start of the frequency baseline.
/// Held by writers only.
static FIRST: Mutex<Option<(u64, u64)>> = Mutex::new(None);

/// Wall-clock time in Unix nanoseconds.
#[inline]
pub(crate) fn now_unix_nano() -> u64 {
    if MODE.load(Ordering::Relaxed) == TSC {
        tsc_now()
    } else {
        clock_ns(libc::CLOCK_REALTIME)
    }
}

#[cfg(test)]
/// Which clock [`now_unix_nano`] reads: `"tsc"` or `"realtime"`.
pub(crate) fn source() -> &'static str {
    if MODE.load(Ordering::Relaxed) == TSC {
        "tsc"
    } else {
        "realtime"
    }
}

/// Chooses the clock and, for the TSC, takes the first calibration (about 2 ms, once
/// per process).
pub(crate) fn init() {
    let mut first = FIRST.lock().unwrap_or_else(|e| e.into_inner());
    if MODE.load(Ordering::Relaxed) != UNSET {
        return;
    }
    if !tsc_is_the_kernel_clocksource() {
        MODE.store(REALTIME, Ordering::Relaxed);
        return;
    }
    let s0 = sample();
    let spin_until = s0.mono + 2_000_000;
    while clock_ns(libc::CLOCK_MONOTONIC) < spin_until {
        std::hint::spin_loop();
    }
    let s1 = sample();
    match mult(
        s1.mono.wrapping_sub(s0.mono),
        s1.mono_ticks.wrapping_sub(s0.mono_ticks),
    ) {
        Some(m) => {
            *first = Some((s0.mono_ticks, s0.mono));
            publish(s1.real_ticks, s1.real, m);
            MODE.store(TSC, Ordering::Release);
        }
        None => MODE.store(REALTIME, Ordering::Relaxed),
    }
}

/// Re-estimates the TSC frequency over the time since [`init`] and re-anchors the
/// mapping on the wall clock now. Cheap (a few clock reads); a no-op without the TSC.
pub(crate) fn recalibrate() {
    if MODE.load(Ordering::Relaxed) != TSC {
        return;
    }
    let first = FIRST.lock().unwrap_or_else(|e| e.into_inner());
    let Some((t0, m0)) = *first else { return };
    let s = sample();
    if let Some(m) = mult(s.mono.wrapping_sub(m0), s.mono_ticks.wrapping_sub(t0)) {
        publish(s.real_ticks, s.real, m);
    }
}

/// `2^SHIFT × ns per tick`, when the two deltas make a plausible TSC (100 MHz–20 GHz).
fn mult(d_ns: u64, d_ticks: u64) -> Option<u64> {
    if d_ticks == 0 || d_ns == 0 || d_ns > i64::MAX as u64 || d_ticks > i64::MAX as u64 {
        return None;
    }
    let m = ((d_ns as u128) << SHIFT) / d_ticks as u128;
    let (lo, hi) = ((1u128 << SHIFT) / 20, (1u128 << SHIFT) * 10); // 20 GHz, 100 MHz
    (lo..=hi).contains(&m).then_some(m as u64)
}

/// Ticks to Unix nanoseconds (ticks may be before the anchor).
fn convert(ticks: u64, base_ticks: u64, base_unix: u64, mult: u64) -> u64 {
    let delta = ticks.wrapping_sub(base_ticks) as i64 as i128;
    let ns = (delta * mult as i128 + (1 << (SHIFT - 1))) >> SHIFT;
    (base_unix as i128 + ns).max(0) as u64
}

/// Only writers (holding `FIRST`) call this.
fn publish(base_ticks: u64, base_unix: u64, mult: u64) {
    let s = SEQ.load(Ordering::Relaxed);
    SEQ.store(s.wrapping_add(1), Ordering::Relaxed);
    fence(Ordering::Release);
    BASE_TICKS.store(base_ticks, Ordering::Relaxed);
    BASE_UNIX.store(base_unix, Ordering::Relaxed);
    MULT.store(mult, Ordering::Relaxed);
    SEQ.store(s.wrapping_add(2), Ordering::Release);
}

#[inline]
fn tsc_now() -> u64 {
    let ticks = rdtsc();
    for _ in 0..16 {
        let s1 = SEQ.load(Ordering::Acquire);
        let bt = BASE_TICKS.load(Ordering::Relaxed);
        let bu = BASE_UNIX.load(Ordering::Relaxed);
        let m = MULT.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if s1 & 1 == 0 && SEQ.load(Ordering::Relaxed) == s1 {
            return convert(ticks, bt, bu, m);
        }
        std::hint::spin_loop();
    }
    // A writer was preempted in the middle of an update: never wait for it.
    clock_ns(libc::CLOCK_REALTIME)
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions; it is used only when the kernel's
    // clocksource is the TSC (so the instruction exists and is not trapped).
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn rdtsc() -> u64 {
    0
}

fn tsc_is_the_kernel_clocksource() -> bool {
    cfg!(target_arch = "x86_64")
        && std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .is_ok_and(|s| s.trim() == "tsc")
}

/// A clock reading, in nanoseconds (0 if the clock cannot be read).
pub(crate) fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the clocks used here always exist on Linux.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Ticks read around each system-clock reading (midpoints), keeping the tightest of a
/// few tries so that a preemption between the reads does not skew the sample.
struct Sample {
    mono_ticks: u64,
    mono: u64,
    real_ticks: u64,
    real: u64,
}

fn sample() -> Sample {
    let mut best: Option<(u64, Sample)> = None;
    for _ in 0..5 {
        let a = rdtsc();
        let mono = clock_ns(libc::CLOCK_MONOTONIC);
        let b = rdtsc();
        let real = clock_ns(libc::CLOCK_REALTIME);
        let c = rdtsc();
        let width = c.wrapping_sub(a);
        let s = Sample {
            mono_ticks: a + b.wrapping_sub(a) / 2,
            mono,
            real_ticks: b + c.wrapping_sub(b) / 2,
            real,
        };
        if best.as_ref().is_none_or(|(w, _)| width < *w) {
            best = Some((width, s));
        }
    }
    best.map(|(_, s)| s).unwrap_or(Sample {
        mono_ticks: 0,
        mono: 0,
        real_ticks: 0,
        real: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_maps_ticks_to_nanoseconds_linearly() {
        // A 2.5 GHz counter: 2,500,000 ticks are 1 ms.
        let m = mult(1_000_000, 2_500_000).unwrap();
        let base = 1_700_000_000_000_000_000;
        assert_eq!(convert(10_000, 10_000, base, m), base);
        assert_eq!(
            convert(10_000 + 2_500_000, 10_000, base, m),
            base + 1_000_000
        );
        // One hour later, still within a nanosecond.
        let hour = 3_600 * 2_500_000_000u64;
        let t = convert(10_000 + hour, 10_000, base, m);
        assert!(t.abs_diff(base + 3_600_000_000_000) <= 1, "{t}");
        // Ticks read just before a newer anchor map to just before it.
        assert_eq!(convert(10_000 - 2_500, 10_000, base, m), base - 1_000);
    }

    #[test]
    fn implausible_frequencies_are_refused() {
        assert_eq!(mult(0, 100), None);
        assert_eq!(mult(100, 0), None);
        assert_eq!(
            mult(1_000_000, 1_000),
            None,
            "1 GHz of ns per 1 kHz of ticks"
        );
        assert_eq!(mult(1_000, 1_000_000_000), None, "a 1 THz counter");
        assert!(mult(1_000_000, 3_000_000).is_some());
    }

    #[test]
    fn the_span_clock_agrees_with_the_system_clock() {
        init();
        recalibrate();
        for _ in 0..1_000 {
            let before = clock_ns(libc::CLOCK_REALTIME);
            let now = now_unix_nano();
            let after = clock_ns(libc::CLOCK_REALTIME);
            // Within 50 µs of the interval the system clock saw around the reading
            // (calibration error, not elapsed time: the interval absorbs preemption).
            assert!(
                now + 50_000 >= before && now <= after + 50_000,
                "{} clock: {now} not within [{before}, {after}]",
                source()
            );
        }
    }

    #[test]
    fn the_span_clock_steps_back_no_more_than_the_calibration_error() {
        init();
        let mut last = now_unix_nano();
        for i in 0..10_000 {
            if i % 1_000 == 0 {
                recalibrate(); // a re-anchoring may move readings by its error
            }
            let t = now_unix_nano();
            assert!(t + 20_000 >= last, "{} clock: {t} < {last}", source());
            last = t;
        }
    }

    #[test]
    fn the_tsc_is_used_exactly_when_it_is_the_kernel_clocksource() {
        init();
        let tsc = tsc_is_the_kernel_clocksource();
        assert_eq!(source(), if tsc { "tsc" } else { "realtime" });
    }

    #[test]
    fn a_reader_never_waits_for_a_writer_stuck_in_an_update() {
        init();
        // Play a writer preempted half-way: the sequence stays odd.
        let _writers = FIRST.lock().unwrap_or_else(|e| e.into_inner());
        let s = SEQ.fetch_add(1, Ordering::Relaxed);
        let before = clock_ns(libc::CLOCK_REALTIME);
        let now = now_unix_nano();
        let after = clock_ns(libc::CLOCK_REALTIME);
        SEQ.store(s, Ordering::Release);
        assert!(
            now >= before && now <= after,
            "{now} not in [{before}, {after}]"
        );
    }
}
