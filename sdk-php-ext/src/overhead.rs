//! What the extension itself costs, measured where it runs (`tern.overhead_stats=1`):
//! wall-clock nanoseconds spent in the hooks' own work (not the hooked function),
//! at request start, at request end, and sending the frames, summed per process and
//! read through `tern_stats()`. Off by default: then each measuring point is one
//! relaxed load and a branch; on, two clock reads (~20 ns each).
//!
//! A worker's time between hooks belongs to PHP, so these sums are the extension's
//! direct cost, free of what other processes on the machine do to a CPU-time
//! comparison of two php-fpm pools (which is what `fpm_cpu` measures, including the
//! extension's indirect cost: caches it leaves colder for PHP).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::clock;

/// Where time is counted.
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    /// The start and end work of hooked calls.
    Hooks = 0,
    /// Request start (RINIT).
    RequestStart = 1,
    /// Request end (RSHUTDOWN), sending included.
    RequestEnd = 2,
    /// Writing the frames to the forwarder's socket (part of `RequestEnd`).
    Send = 3,
}

/// The `tern_stats()` key of each phase's nanoseconds, by `Phase as usize`.
pub const KEYS: [&str; 4] = [
    "overhead_ns_hooks",
    "overhead_ns_request_start",
    "overhead_ns_request_end",
    "overhead_ns_send",
];

static ON: AtomicBool = AtomicBool::new(false);
static NS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// Turns measuring on (module start, from `tern.overhead_stats`).
pub fn enable(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// A measurement under way: started by [`start`], counted by [`Timer::stop`].
#[derive(Debug)]
#[must_use]
pub struct Timer(u64);

/// Starts measuring (a no-op timer when measuring is off).
#[inline]
pub fn start() -> Timer {
    Timer(if ON.load(Ordering::Relaxed) {
        clock::mono_ns()
    } else {
        0
    })
}

impl Timer {
    /// Adds the time since [`start`] to `phase`.
    #[inline]
    pub fn stop(self, phase: Phase) {
        if self.0 != 0 {
            let spent = clock::mono_ns().saturating_sub(self.0);
            NS[phase as usize].fetch_add(spent, Ordering::Relaxed);
        }
    }
}

/// The nanoseconds counted so far, by phase (see [`KEYS`]).
pub fn totals() -> [u64; 4] {
    std::array::from_fn(|i| NS[i].load(Ordering::Relaxed))
}
