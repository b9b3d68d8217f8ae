//! Trace and span ids, and W3C `traceparent` parsing and formatting.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish() | 1
}

/// A random non-zero 64-bit id from a per-thread generator (xorshift64*): no lock, no
/// system call.
pub(crate) fn next_u64() -> u64 {
    RNG.with(|c| {
        let mut x = c.get();
        loop {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let out = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            if out != 0 {
                c.set(x);
                return out;
            }
        }
    })
}

/// A random non-zero 128-bit trace id.
pub(crate) fn next_trace_id() -> u128 {
    ((next_u64() as u128) << 64) | next_u64() as u128
}

/// A parsed W3C `traceparent` header: the remote caller's trace and span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace the caller belongs to.
    pub trace_id: u128,
    /// The caller's span: the parent of the span that continues the trace.
    pub span_id: u64,
    /// The caller's sampled flag.
    pub sampled: bool,
}

impl TraceParent {
    /// Parses `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`. Returns `None` for
    /// anything malformed, an all-zero id, or version `ff`, as the W3C spec says (the
    /// receiver then starts a new trace).
    pub fn parse(header: &str) -> Option<TraceParent> {
        let header = header.trim();
        let mut parts = header.split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || version.eq_ignore_ascii_case("ff") {
            return None;
        }
        // Version 00 has exactly four fields; later versions may append more.
        if version == "00" && parts.next().is_some() {
            return None;
        }
        if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
            return None;
        }
        let all_hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
        if !all_hex(version) || !all_hex(trace) || !all_hex(span) || !all_hex(flags) {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        if trace_id == 0 || span_id == 0 {
            return None;
        }
        Some(TraceParent {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// Formats the header value, version `00`.
    pub fn to_header(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.sampled as u8
        )
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_header())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_a_w3c_traceparent() {
        let h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let tp = TraceParent::parse(h).unwrap();
        assert_eq!(tp.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(tp.span_id, 0x00f067aa0ba902b7);
        assert!(tp.sampled);
        assert_eq!(tp.to_header(), h);
    }

    #[test]
    fn rejects_malformed_traceparents() {
        for h in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473x-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(h), None, "{h}");
        }
    }

    #[test]
    fn ids_are_never_zero_and_differ() {
        let a = next_u64();
        let b = next_u64();
        assert!(a != 0 && b != 0 && a != b);
        assert_ne!(next_trace_id(), 0);
    }
}
