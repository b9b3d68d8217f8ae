//! Retry timing: `Retry-After` parsing and exponential backoff with jitter.

use std::time::{Duration, SystemTime};

/// Longest wait honoured from a `Retry-After`, so a bad value cannot stall the run.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Parses an HTTP `Retry-After` value: delay-seconds or an HTTP date (relative to
/// `now`). Capped at [`MAX_RETRY_AFTER`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tern_loadgen::send::parse_retry_after;
/// assert_eq!(parse_retry_after("2", SystemTime::now()), Some(Duration::from_secs(2)));
/// assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(secs) = value.parse::<f64>() {
        Duration::try_from_secs_f64(secs).ok()?
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Exponential backoff: 100 ms doubling to 5 s, with ±20 % jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Self::INITIAL,
        }
    }
}

impl Backoff {
    const INITIAL: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    /// The wait before the next attempt; `retry_after` (from the server) wins when given.
    pub fn wait(&mut self, retry_after: Option<Duration>) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        match retry_after {
            Some(d) => d,
            None => base.mul_f64(rand::random_range(0.8..1.2)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        // 1445412480 is Wed, 21 Oct 2015 07:28:00 GMT.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("99999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn backoff_doubles_up_to_a_cap_and_defers_to_the_server() {
        let mut b = Backoff::default();
        let first = b.wait(None);
        assert!(first >= Duration::from_millis(80) && first <= Duration::from_millis(120));
        for _ in 0..10 {
            b.wait(None);
        }
        assert!(b.wait(None) <= Duration::from_secs(6));
        assert_eq!(b.wait(Some(Duration::from_secs(2))), Duration::from_secs(2));
    }
}
