//! Live per-second windows: what the dashboard shows before the store has it.
//!
//! The writer hands every derived transaction to [`LiveWindows::record`]. Each is
//! counted in the bucket of the second it ended in, per service (the total is the sum
//! over services): calls, errors, elapsed sum and an hdrhistogram of elapsed time. The
//! newest [`KEEP_SECS`] seconds are kept; older buckets are dropped. The same call keeps
//! the transaction as an X-View point in a bounded ring (newest [`MAX_POINTS`]), each
//! with a sequence number, so a live view asks for "the points after N" every tick.
//!
//! One mutex guards it; the writer takes it once per derived batch, readers once per
//! tick. No lock is taken on the ingest path.

use std::collections::{BTreeMap, HashMap, VecDeque};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;

use crate::model::rows::TransactionRow;

/// Seconds of per-second buckets kept.
pub const KEEP_SECS: i64 = 300;
/// Most recent points kept for the live X-View.
pub const MAX_POINTS: usize = 200_000;
/// Seconds that keep their histogram (the live rates need the newest few only; older
/// seconds keep their sums, ~13 KB less each).
pub const HIST_KEEP_SECS: i64 = 15;
/// Highest elapsed time the histograms track exactly (longer ones are clamped): one hour.
const HIST_MAX_US: u64 = 3_600_000_000;

/// Per-second windows and the newest points. Shared by the writer and the UI.
pub struct LiveWindows {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Second (Unix) → service → bucket.
    seconds: BTreeMap<i64, HashMap<String, Bucket>>,
    points: VecDeque<LivePoint>,
    next_seq: u64,
}

struct Bucket {
    calls: u64,
    errors: u64,
    elapsed_sum_us: u64,
    /// `None` once the second is older than [`HIST_KEEP_SECS`].
    hist: Option<Histogram<u32>>,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            calls: 0,
            errors: 0,
            elapsed_sum_us: 0,
            hist: Some(Histogram::new_with_bounds(1, HIST_MAX_US, 2).expect("valid bounds")),
        }
    }

    fn add(&mut self, other: &Bucket) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.elapsed_sum_us += other.elapsed_sum_us;
        // Same bounds on both sides: the add cannot fail.
        if let (Some(h), Some(o)) = (&mut self.hist, &other.hist) {
            let _ = h.add(o);
        }
    }
}

/// A finished transaction as the live X-View draws it.
#[derive(Debug, Clone, Serialize)]
pub struct LivePoint {
    pub seq: u64,
    pub end_ms: i64,
    pub elapsed_ms: f64,
    pub error: bool,
    pub service: String,
    pub instance: String,
    pub endpoint: String,
    /// `<trace_id hex>:<span_id hex>`
    pub id: String,
}

/// Rates of one service (or all) over a trailing window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rates {
    pub service: String,
    /// Calls in the window.
    pub calls: u64,
    pub errors: u64,
    pub tps: f64,
    pub avg_ms: f64,
    pub error_rate: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

/// One second of all services: for the live charts.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SecondTotal {
    /// Start of the second, Unix milliseconds.
    pub t_ms: i64,
    pub calls: u64,
    pub errors: u64,
    pub avg_ms: f64,
}

impl Default for LiveWindows {
    fn default() -> Self {
        LiveWindows {
            inner: Mutex::new(Inner::default()),
        }
    }
}

impl LiveWindows {
    pub fn new() -> LiveWindows {
        LiveWindows::default()
    }

    /// Counts finished transactions (as derived by the writer). Transactions that ended
    /// more than [`KEEP_SECS`] before `now_ms` are ignored.
    pub fn record(&self, rows: &[TransactionRow], now_ms: i64) {
        if rows.is_empty() {
            return;
        }
        let oldest = now_ms.div_euclid(1000) - KEEP_SECS;
        let mut inner = self.inner.lock();
        for t in rows {
            let sec = t.end_ms.div_euclid(1000);
            // A replayed log after a restart holds old transactions: not live news.
            if sec < oldest {
                continue;
            }
            let services = inner.seconds.entry(sec).or_default();
            if !services.contains_key(&t.service) {
                services.insert(t.service.clone(), Bucket::new());
            }
            let bucket = services.get_mut(&t.service).expect("inserted above");
            bucket.calls += 1;
            bucket.errors += u64::from(t.error == 1);
            bucket.elapsed_sum_us += t.elapsed_us;
            if let Some(h) = &mut bucket.hist {
                h.saturating_record(t.elapsed_us.clamp(1, HIST_MAX_US));
            }
            let seq = inner.next_seq;
            inner.next_seq += 1;
            if inner.points.len() == MAX_POINTS {
                inner.points.pop_front();
            }
            inner.points.push_back(LivePoint {
                seq,
                end_ms: t.end_ms,
                elapsed_ms: t.elapsed_us as f64 / 1000.0,
                error: t.error == 1,
                service: t.service.clone(),
                instance: t.instance.clone(),
                endpoint: t.endpoint.clone(),
                id: format!("{}:{}", hex::encode(t.trace_id), hex::encode(t.span_id)),
            });
        }
        inner.seconds.retain(|s, _| *s >= oldest);
        let hist_oldest = now_ms.div_euclid(1000) - HIST_KEEP_SECS;
        for (_, services) in inner.seconds.range_mut(..hist_oldest) {
            for b in services.values_mut() {
                b.hist = None;
            }
        }
    }

    /// The sequence number the next point will get: a live view starts from here.
    pub fn next_seq(&self) -> u64 {
        self.inner.lock().next_seq
    }

    /// Points with `seq >= after`, at most `max` (the newest when there are more), and
    /// the sequence number to ask from next time.
    pub fn points_since(&self, after: u64, max: usize) -> (Vec<LivePoint>, u64) {
        let inner = self.inner.lock();
        let first = inner.points.front().map_or(inner.next_seq, |p| p.seq);
        let skip = after.saturating_sub(first) as usize;
        let available = inner.points.len().saturating_sub(skip);
        let skip = skip + available.saturating_sub(max);
        let out = inner.points.iter().skip(skip).cloned().collect();
        (out, inner.next_seq)
    }

    /// Points that ended at or after `cutoff_ms` (the newest `max`), and the sequence
    /// number to ask from next: a live view that connects late fills its gap with them.
    pub fn points_ending_after(&self, cutoff_ms: i64, max: usize) -> (Vec<LivePoint>, u64) {
        let inner = self.inner.lock();
        let mut out: Vec<LivePoint> = inner
            .points
            .iter()
            .rev()
            .filter(|p| p.end_ms >= cutoff_ms)
            .take(max)
            .cloned()
            .collect();
        out.reverse();
        (out, inner.next_seq)
    }

    /// Per-service rates (sorted by service) and the total, over the `secs` seconds
    /// before the second holding `now_ms` (the current second is still filling).
    pub fn rates(&self, now_ms: i64, secs: i64) -> (Vec<Rates>, Rates) {
        let end = now_ms.div_euclid(1000);
        let start = end - secs.max(1);
        let inner = self.inner.lock();
        let mut per: BTreeMap<&str, Bucket> = BTreeMap::new();
        let mut total = Bucket::new();
        for (_, services) in inner.seconds.range(start..end) {
            for (name, b) in services {
                per.entry(name.as_str()).or_insert_with(Bucket::new).add(b);
                total.add(b);
            }
        }
        let rates = |service: &str, b: &Bucket| Rates {
            service: service.to_string(),
            calls: b.calls,
            errors: b.errors,
            tps: b.calls as f64 / secs.max(1) as f64,
            avg_ms: if b.calls == 0 {
                0.0
            } else {
                b.elapsed_sum_us as f64 / b.calls as f64 / 1000.0
            },
            error_rate: if b.calls == 0 {
                0.0
            } else {
                b.errors as f64 / b.calls as f64
            },
            p95_ms: if b.calls == 0 {
                0.0
            } else {
                b.hist.as_ref().map_or(0, |h| h.value_at_quantile(0.95)) as f64 / 1000.0
            },
            max_ms: if b.calls == 0 {
                0.0
            } else {
                b.hist.as_ref().map_or(0, |h| h.max()) as f64 / 1000.0
            },
        };
        let list = per.iter().map(|(s, b)| rates(s, b)).collect();
        let all = rates("", &total);
        (list, all)
    }

    /// All services' totals per second, for the `secs` seconds before the one holding
    /// `now_ms`, oldest first (seconds without calls included, as zeros).
    pub fn seconds(&self, now_ms: i64, secs: i64) -> Vec<SecondTotal> {
        let end = now_ms.div_euclid(1000);
        let inner = self.inner.lock();
        (end - secs..end)
            .map(|s| {
                let (mut calls, mut errors, mut sum) = (0, 0, 0);
                if let Some(services) = inner.seconds.get(&s) {
                    for b in services.values() {
                        calls += b.calls;
                        errors += b.errors;
                        sum += b.elapsed_sum_us;
                    }
                }
                SecondTotal {
                    t_ms: s * 1000,
                    calls,
                    errors,
                    avg_ms: if calls == 0 {
                        0.0
                    } else {
                        sum as f64 / calls as f64 / 1000.0
                    },
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(service: &str, end_ms: i64, elapsed_ms: u64, error: bool) -> TransactionRow {
        TransactionRow {
            end_ms,
            elapsed_us: elapsed_ms * 1000,
            service: service.into(),
            instance: "i".into(),
            endpoint: "GET /".into(),
            http_method: "GET".into(),
            http_status: 200,
            error: u8::from(error),
            error_type: String::new(),
            error_message: String::new(),
            cpu_us: 0,
            sql_count: 0,
            sql_us: 0,
            ext_count: 0,
            ext_us: 0,
            fetch_us: 0,
            client_address: String::new(),
            user_id: String::new(),
            trace_id: [1; 16],
            span_id: [2; 8],
        }
    }

    #[test]
    fn rates_count_the_whole_seconds_before_now() {
        let w = LiveWindows::new();
        let now = 1_000_000_500;
        w.record(
            &[
                row("a", 999_999_100, 10, false),
                row("a", 999_998_100, 30, true),
                row("b", 999_997_100, 20, false),
                // the current second is not counted yet
                row("a", 1_000_000_100, 1000, false),
            ],
            now,
        );
        let (per, total) = w.rates(now, 5);
        assert_eq!(per.len(), 2);
        assert_eq!(per[0].service, "a");
        assert_eq!(per[0].calls, 2);
        assert_eq!(per[0].errors, 1);
        assert_eq!(per[0].avg_ms, 20.0);
        assert_eq!(per[0].error_rate, 0.5);
        assert_eq!(total.calls, 3);
        assert_eq!(total.tps, 3.0 / 5.0);
        assert!((total.max_ms - 30.0).abs() < 0.5, "{}", total.max_ms);
        let secs = w.seconds(now, 3);
        assert_eq!(secs.iter().map(|s| s.calls).collect::<Vec<_>>(), [1, 1, 1]);
        assert_eq!(secs[2].t_ms, 999_999_000);
    }

    #[test]
    fn old_seconds_are_dropped_and_older_histograms_freed() {
        let w = LiveWindows::new();
        let now = 2_000_000_000;
        w.record(&[row("a", now - (KEEP_SECS + 10) * 1000, 5, false)], now);
        w.record(
            &[
                row("a", now - (HIST_KEEP_SECS + 5) * 1000, 5, false),
                row("a", now - 2000, 5, false),
            ],
            now,
        );
        let inner = w.inner.lock();
        assert_eq!(inner.seconds.len(), 2);
        let hists: Vec<bool> = inner
            .seconds
            .values()
            .map(|s| s["a"].hist.is_some())
            .collect();
        assert_eq!(hists, [false, true]);
    }

    #[test]
    fn points_ending_after_a_cutoff_fill_a_late_view() {
        let w = LiveWindows::new();
        let rows: Vec<_> = [5000, 1000, 7000, 9000]
            .iter()
            .map(|e| row("a", *e, 5, false))
            .collect();
        w.record(&rows, 9000);
        let (p, next) = w.points_ending_after(5000, 100);
        assert_eq!(
            p.iter().map(|p| p.end_ms).collect::<Vec<_>>(),
            [5000, 7000, 9000]
        );
        assert_eq!(next, 4);
        let (p, _) = w.points_ending_after(5000, 1);
        assert_eq!(p[0].end_ms, 9000);
    }

    #[test]
    fn points_since_returns_only_newer_points_and_at_most_max() {
        let w = LiveWindows::new();
        let rows: Vec<_> = (0..10).map(|i| row("a", 1000 + i, 5, false)).collect();
        w.record(&rows, 1000);
        let (p, next) = w.points_since(0, 100);
        assert_eq!((p.len(), next), (10, 10));
        let (p, _) = w.points_since(7, 100);
        assert_eq!(p.iter().map(|p| p.seq).collect::<Vec<_>>(), [7, 8, 9]);
        let (p, _) = w.points_since(0, 4);
        assert_eq!(p.first().map(|p| p.seq), Some(6));
        let (p, next) = w.points_since(10, 4);
        assert!(p.is_empty());
        assert_eq!(next, 10);
    }
}
