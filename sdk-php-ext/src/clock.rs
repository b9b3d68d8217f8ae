//! Clocks and ids for the hot path: vDSO clock reads, a per-process xorshift generator.

use std::cell::Cell;

/// Monotonic nanoseconds (vDSO `CLOCK_MONOTONIC`, ~20 ns).
#[inline]
pub fn mono_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// Unix-epoch nanoseconds.
pub fn unix_ns() -> u64 {
    read(libc::CLOCK_REALTIME)
}

#[inline]
fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// Reseeds the id generator (at each process's first request: forked workers must not
/// share a sequence).
pub fn reseed() {
    let mut seed = [0u8; 8];
    // SAFETY: valid buffer; getrandom does not block once the pool is initialised.
    let n = unsafe { libc::getrandom(seed.as_mut_ptr().cast(), 8, libc::GRND_NONBLOCK) };
    let mut s = u64::from_le_bytes(seed);
    if n != 8 {
        // SAFETY: getpid has no preconditions.
        s = unix_ns() ^ ((unsafe { libc::getpid() } as u64) << 32);
    }
    RNG.with(|r| r.set(s | 1));
}

/// A random non-zero u64 (xorshift64*).
pub fn rand_u64() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        if x == 0 {
            x = unix_ns() | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D).max(1)
    })
}

/// A random span id.
pub fn span_id() -> [u8; 8] {
    rand_u64().to_le_bytes()
}

/// A random trace id.
pub fn trace_id() -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&rand_u64().to_le_bytes());
    t[8..].copy_from_slice(&rand_u64().to_le_bytes());
    t
}
