//! The transactions running right now. Each one is an `Arc<TxState>` shared by the
//! spans of the transaction (in the registry's extensions) and by a sharded index that
//! the live reporter reads once a second. The index is touched twice per transaction
//! (start, end), never per span; the per-transaction activity lock is taken only by
//! that transaction's spans and the once-a-second reader, so it is uncontended.

use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tern_proto::v1::{ActiveTransaction, ActivityKind};
use tracing_core::Metadata;

use crate::attrs::Meta;
use crate::export::FinishedSpan;

/// The mutable, rarely written part of a running transaction.
#[derive(Debug)]
pub(crate) struct Live {
    pub endpoint: String,
    pub http_method: String,
    pub client_address: String,
    /// The first error (type, message) seen anywhere in the transaction: it marks the
    /// transaction failed.
    pub first_error: Option<(String, String)>,
}

/// What a transaction is doing now: which span, of what kind, since when. Written at
/// every span start and end without a lock (a sequence lock: one compare-and-swap per
/// update, plain stores, nothing for readers to wait on); read by the once-a-second
/// reporter, which retries when it meets an update in progress.
///
/// Writers of one transaction on several threads at once are rare (a transaction's
/// spawned tasks starting spans in the same nanoseconds); the one that finds another
/// update in progress retries a few times and then skips its own (the live view is a
/// sample; the exported spans are unaffected).
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Odd while a writer updates the fields below.
    seq: AtomicU64,
    span_id: AtomicU64,
    /// `ActivityKind` as a number.
    kind: AtomicU64,
    /// The span's callsite (its name is the detail of a method span); null: none.
    meta: AtomicPtr<Metadata<'static>>,
    since: AtomicU64,
}

/// An update of [`Activity`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Doing {
    pub span_id: u64,
    pub kind: ActivityKind,
    /// The span's callsite, `None` for the transaction's entry span.
    pub meta: Option<Meta>,
    pub since: u64,
}

impl Activity {
    /// Runs `write` as the only writer, or returns `false` after a few tries if other
    /// writers keep holding the sequence (never waits longer).
    #[inline]
    fn write(&self, write: impl FnOnce(&Self)) -> bool {
        for _ in 0..16 {
            let s = self.seq.load(Ordering::Relaxed);
            if s & 1 == 0
                && self
                    .seq
                    .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                fence(Ordering::Release);
                write(self);
                self.seq.store(s + 2, Ordering::Release);
                return true;
            }
            std::hint::spin_loop();
        }
        false
    }

    #[inline]
    fn store(&self, d: Doing) {
        self.span_id.store(d.span_id, Ordering::Relaxed);
        self.kind.store(d.kind as u64, Ordering::Relaxed);
        let meta = d.meta.map_or(std::ptr::null_mut(), |m| {
            m as *const Metadata<'static> as *mut Metadata<'static>
        });
        self.meta.store(meta, Ordering::Relaxed);
        self.since.store(d.since, Ordering::Relaxed);
    }

    /// A consistent reading, or `None` if writers kept updating it.
    fn read(&self) -> Option<Doing> {
        for _ in 0..1_000 {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let span_id = self.span_id.load(Ordering::Relaxed);
                let kind = self.kind.load(Ordering::Relaxed);
                let meta = self.meta.load(Ordering::Relaxed);
                let since = self.since.load(Ordering::Relaxed);
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == s1 {
                    let kind = ActivityKind::try_from(kind as i32).unwrap_or(ActivityKind::Method);
                    // SAFETY: only `&'static Metadata` pointers (or null) are stored.
                    let meta = unsafe { meta.cast_const().as_ref() };
                    return Some(Doing {
                        span_id,
                        kind,
                        meta,
                        since,
                    });
                }
            }
            std::hint::spin_loop();
        }
        None
    }
}

/// One transaction, shared by all its spans.
#[derive(Debug)]
pub(crate) struct TxState {
    pub trace_id: u128,
    pub span_id: u64,
    pub start_unix_nano: u64,
    /// Whether the call tree (spans below the entry) is exported.
    pub sampled: bool,
    pub worker: String,
    pub live: Mutex<Live>,
    activity: Activity,
    /// The text of the current activity when it is a SQL or external call (its span
    /// id, the statement or URL): only those spans take this lock.
    detail: Mutex<(u64, String)>,
    /// A span was created under the transaction (it took the trace id from it).
    children: AtomicBool,
    /// Thread CPU time spent inside the entry span, summed over its enters, in ns.
    cpu_ns: AtomicU64,
    /// Whether the entry span was entered and exited at least once.
    cpu_measured: AtomicBool,
    /// Finished spans of an unsampled transaction, held until its entry span ends in
    /// case it turns out slow (see `Shared::profile_threshold_ns`).
    held: Mutex<Vec<FinishedSpan>>,
}

/// At most this many spans of one unsampled transaction are held.
const MAX_HELD: usize = 1_024;

impl TxState {
    pub(crate) fn new(
        trace_id: u128,
        span_id: u64,
        start_unix_nano: u64,
        sampled: bool,
    ) -> TxState {
        let thread = std::thread::current();
        let worker = thread
            .name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{:?}", thread.id()));
        let tx = TxState {
            trace_id,
            span_id,
            start_unix_nano,
            sampled,
            worker,
            live: Mutex::new(Live {
                endpoint: String::new(),
                http_method: String::new(),
                client_address: String::new(),
                first_error: None,
            }),
            activity: Activity::default(),
            detail: Mutex::new((0, String::new())),
            children: AtomicBool::new(false),
            cpu_ns: AtomicU64::new(0),
            cpu_measured: AtomicBool::new(false),
            held: Mutex::new(Vec::new()),
        };
        tx.activity.store(tx.idle());
        tx
    }

    /// The activity of a transaction whose entry span runs no other span.
    fn idle(&self) -> Doing {
        Doing {
            span_id: self.span_id,
            kind: ActivityKind::Method,
            meta: None,
            since: self.start_unix_nano,
        }
    }

    /// Holds a finished span of this (unsampled) transaction; `false` when it already
    /// holds [`MAX_HELD`] spans (the span is dropped).
    pub(crate) fn hold(&self, span: FinishedSpan) -> bool {
        let mut held = self.held.lock();
        if held.len() >= MAX_HELD {
            return false;
        }
        held.push(span);
        true
    }

    /// The held spans, leaving none.
    pub(crate) fn take_held(&self) -> Vec<FinishedSpan> {
        std::mem::take(&mut *self.held.lock())
    }

    /// Adds the CPU time of one enter/exit of the entry span.
    pub(crate) fn add_cpu(&self, ns: u64) {
        self.cpu_ns.fetch_add(ns, Ordering::Relaxed);
        self.cpu_measured.store(true, Ordering::Relaxed);
    }

    /// The CPU time spent inside the entry span, when it was ever entered.
    pub(crate) fn cpu_ns(&self) -> Option<u64> {
        self.cpu_measured
            .load(Ordering::Relaxed)
            .then(|| self.cpu_ns.load(Ordering::Relaxed))
    }

    /// Notes that a span was created under the transaction (a load, and a store only
    /// the first time).
    #[inline]
    pub(crate) fn mark_child(&self) {
        if !self.children.load(Ordering::Relaxed) {
            self.children.store(true, Ordering::Relaxed);
        }
    }

    /// Whether any span was created under the transaction.
    pub(crate) fn has_children(&self) -> bool {
        self.children.load(Ordering::Relaxed)
    }

    /// Records that the transaction now runs `d.span_id`; `text` is the statement or
    /// URL of a SQL or external call (shown instead of the span's name).
    #[inline]
    pub(crate) fn set_activity(&self, d: Doing, text: Option<String>) {
        if let Some(text) = text {
            *self.detail.lock() = (d.span_id, text);
        }
        self.activity.write(|a| a.store(d));
    }

    /// When `span_id` ends while it is the current activity, the activity falls back to
    /// `parent` (its parent span's activity; `None`: the entry span's).
    #[inline]
    pub(crate) fn end_activity(&self, span_id: u64, parent: Option<Doing>) {
        self.activity.write(|a| {
            if a.span_id.load(Ordering::Relaxed) == span_id {
                a.store(parent.unwrap_or_else(|| self.idle()));
            }
        });
    }

    fn snapshot(&self) -> ActiveTransaction {
        let d = self.activity.read().unwrap_or_else(|| self.idle());
        let detail = match d.kind {
            ActivityKind::Sql | ActivityKind::External => {
                let text = self.detail.lock();
                (text.0 == d.span_id).then(|| text.1.clone())
            }
            _ => None,
        };
        let detail =
            detail.unwrap_or_else(|| d.meta.map(|m| m.name().to_string()).unwrap_or_default());
        let l = self.live.lock();
        ActiveTransaction {
            trace_id: self.trace_id.to_be_bytes().to_vec(),
            span_id: self.span_id.to_be_bytes().to_vec(),
            endpoint: l.endpoint.clone(),
            http_method: l.http_method.clone(),
            start_time_unix_nano: self.start_unix_nano,
            client_address: l.client_address.clone(),
            worker: self.worker.clone(),
            current_kind: d.kind as i32,
            current_detail: detail,
            current_start_unix_nano: d.since,
        }
    }
}

const SHARDS: usize = 16;

/// The index of running transactions, sharded by span id so that concurrent
/// transaction starts rarely meet on one lock.
#[derive(Debug, Default)]
pub(crate) struct ActiveRegistry {
    shards: [Mutex<HashMap<u64, Arc<TxState>>>; SHARDS],
}

impl ActiveRegistry {
    fn shard(&self, span_id: u64) -> &Mutex<HashMap<u64, Arc<TxState>>> {
        &self.shards[(span_id as usize) % SHARDS]
    }

    pub(crate) fn insert(&self, tx: Arc<TxState>) {
        self.shard(tx.span_id).lock().insert(tx.span_id, tx);
    }

    pub(crate) fn remove(&self, span_id: u64) {
        self.shard(span_id).lock().remove(&span_id);
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Every running transaction, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<ActiveTransaction> {
        let mut txs: Vec<Arc<TxState>> = Vec::new();
        for s in &self.shards {
            txs.extend(s.lock().values().cloned());
        }
        let mut out: Vec<ActiveTransaction> = txs.iter().map(|t| t.snapshot()).collect();
        out.sort_by_key(|t| t.start_time_unix_nano);
        out
    }
}

/// The registry ids of open entry spans, so that entering and exiting a span can tell
/// in a few loads (no registry lookup) whether it is an entry whose CPU time is measured.
/// Open addressing without tombstones: an id lives in one of [`PROBES`] slots after its
/// hash; a count per hash says whether any id with that hash is in, so the common lookup
/// (a span that is not an entry) is one load.
#[derive(Debug)]
pub(crate) struct EntryIds {
    slots: Box<[AtomicU64]>,
    counts: Box<[AtomicU32]>,
}

const SLOTS: usize = 4096;
const PROBES: usize = 8;

impl Default for EntryIds {
    fn default() -> Self {
        EntryIds {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            counts: (0..SLOTS).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

impl EntryIds {
    #[inline]
    fn start(id: u64) -> usize {
        (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize
    }

    #[inline]
    fn probe(id: u64) -> impl Iterator<Item = usize> {
        let s = Self::start(id);
        (0..PROBES).map(move |i| (s + i) & (SLOTS - 1))
    }

    /// Adds an id (not 0); `false` when its slots are all taken (then its CPU time is
    /// not measured).
    pub(crate) fn insert(&self, id: u64) -> bool {
        let added = Self::probe(id).any(|i| {
            self.slots[i]
                .compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        });
        if added {
            self.counts[Self::start(id)].fetch_add(1, Ordering::Relaxed);
        }
        added
    }

    pub(crate) fn remove(&self, id: u64) {
        for i in Self::probe(id) {
            if self.slots[i]
                .compare_exchange(id, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.counts[Self::start(id)].fetch_sub(1, Ordering::Relaxed);
                return;
            }
        }
    }

    #[inline]
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.counts[Self::start(id)].load(Ordering::Relaxed) != 0
            && Self::probe(id).any(|i| self.slots[i].load(Ordering::Relaxed) == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(span_id: u64, start: u64) -> Arc<TxState> {
        let tx = TxState::new(7, span_id, start, true);
        tx.live.lock().endpoint = "GET /orders".into();
        Arc::new(tx)
    }

    #[test]
    fn lists_running_transactions_until_they_end() {
        let r = ActiveRegistry::default();
        r.insert(tx(2, 200));
        r.insert(tx(1, 100));
        r.insert(tx(17, 300)); // same shard as 1
        let s = r.snapshot();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].start_time_unix_nano, 100, "oldest first");
        assert_eq!(s[0].endpoint, "GET /orders");
        r.remove(1);
        r.remove(17);
        assert_eq!(r.len(), 1);
        r.remove(2);
        assert!(r.snapshot().is_empty());
    }

    fn doing(span_id: u64, kind: ActivityKind, meta: Option<Meta>, since: u64) -> Doing {
        Doing {
            span_id,
            kind,
            meta,
            since,
        }
    }

    #[test]
    fn tracks_the_current_activity_and_falls_back_to_the_parent() {
        let load_cart =
            crate::classify::testing::capture(|| drop(tracing::info_span!("load_cart"))).meta;
        let query = crate::classify::testing::capture(|| drop(tracing::info_span!("query"))).meta;
        let t = tx(1, 100);
        let s = t.snapshot();
        assert_eq!(
            (s.current_detail.as_str(), s.current_start_unix_nano),
            ("", 100)
        );
        let cart = doing(5, ActivityKind::Method, Some(load_cart), 110);
        t.set_activity(cart, None);
        t.set_activity(
            doing(6, ActivityKind::Sql, Some(query), 120),
            Some("SELECT 1".into()),
        );
        let s = t.snapshot();
        assert_eq!(s.current_kind, ActivityKind::Sql as i32);
        assert_eq!(s.current_detail, "SELECT 1");
        assert_eq!(s.current_start_unix_nano, 120);
        // A span that is not the current one ending changes nothing.
        t.end_activity(5, None);
        assert_eq!(t.snapshot().current_detail, "SELECT 1");
        t.end_activity(6, Some(cart));
        let s = t.snapshot();
        assert_eq!(s.current_kind, ActivityKind::Method as i32);
        assert_eq!(s.current_detail, "load_cart");
        t.end_activity(5, None);
        assert_eq!(t.snapshot().current_detail, "");
        // A SQL span that is current again without its own text shows its name.
        t.set_activity(doing(7, ActivityKind::Sql, Some(query), 130), None);
        assert_eq!(t.snapshot().current_detail, "query");
    }

    #[test]
    fn an_activity_update_that_keeps_meeting_another_writer_is_skipped_not_waited_for() {
        let t = tx(1, 100);
        t.activity.seq.fetch_add(1, Ordering::Relaxed); // a writer "in progress" forever
        assert!(!t.activity.write(|_| unreachable!("never runs")));
        assert_eq!(t.activity.read(), None, "no consistent reading");
        t.activity.seq.fetch_add(1, Ordering::Relaxed);
        assert!(t
            .activity
            .write(|a| a.store(doing(9, ActivityKind::External, None, 1))));
        assert_eq!(t.activity.read().map(|d| d.span_id), Some(9));
    }

    #[test]
    fn entry_ids_are_found_until_removed_and_a_full_neighbourhood_refuses() {
        let ids = EntryIds::default();
        assert!(ids.insert(42));
        assert!(ids.contains(42));
        assert!(!ids.contains(43));
        // Ids that hash to the same slot fill its neighbourhood, then are refused.
        let start = EntryIds::start(42);
        let same: Vec<u64> = (1..u64::MAX)
            .filter(|&i| i != 42 && EntryIds::start(i) == start)
            .take(PROBES)
            .collect();
        for &i in &same[..PROBES - 1] {
            assert!(ids.insert(i));
        }
        assert!(!ids.insert(same[PROBES - 1]), "all {PROBES} slots taken");
        ids.remove(42);
        assert!(!ids.contains(42));
        assert!(same[..PROBES - 1].iter().all(|&i| ids.contains(i)));
        assert!(ids.insert(same[PROBES - 1]), "a freed slot is reused");
    }

    #[test]
    fn cpu_time_is_summed_and_absent_until_measured() {
        let t = tx(1, 100);
        assert_eq!(t.cpu_ns(), None);
        t.add_cpu(1_500);
        t.add_cpu(2_000);
        assert_eq!(t.cpu_ns(), Some(3_500));
    }
}
