//! The transactions running right now. Each one is an `Arc<TxState>` shared by the
//! spans of the transaction (in the registry's extensions) and by a sharded index that
//! the live reporter reads once a second. The index is touched twice per transaction
//! (start, end), never per span; the per-transaction activity lock is taken only by
//! that transaction's spans and the once-a-second reader, so it is uncontended.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tern_proto::v1::{ActiveTransaction, ActivityKind};

use crate::export::FinishedSpan;

/// What a running transaction is doing now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Detail {
    None,
    Static(&'static str),
    Owned(String),
}

impl Detail {
    fn text(&self) -> String {
        match self {
            Detail::None => String::new(),
            Detail::Static(s) => (*s).to_string(),
            Detail::Owned(s) => s.clone(),
        }
    }
}

/// The mutable, live part of a running transaction.
#[derive(Debug)]
pub(crate) struct Live {
    pub endpoint: String,
    pub http_method: String,
    pub client_address: String,
    pub kind: ActivityKind,
    pub detail: Detail,
    pub since_unix_nano: u64,
    /// The span the current activity belongs to.
    pub span_id: u64,
    /// The first error (type, message) seen anywhere in the transaction: it marks the
    /// transaction failed.
    pub first_error: Option<(String, String)>,
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
        endpoint: String,
    ) -> TxState {
        let worker = std::thread::current()
            .name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{:?}", std::thread::current().id()));
        TxState {
            trace_id,
            span_id,
            start_unix_nano,
            sampled,
            worker,
            live: Mutex::new(Live {
                endpoint,
                http_method: String::new(),
                client_address: String::new(),
                kind: ActivityKind::Method,
                detail: Detail::None,
                since_unix_nano: start_unix_nano,
                span_id,
                first_error: None,
            }),
            children: AtomicBool::new(false),
            cpu_ns: AtomicU64::new(0),
            cpu_measured: AtomicBool::new(false),
            held: Mutex::new(Vec::new()),
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

    /// Records that the transaction now runs `span_id` doing `kind`/`detail`.
    pub(crate) fn set_activity(
        &self,
        span_id: u64,
        kind: ActivityKind,
        detail: Detail,
        since: u64,
    ) {
        let mut l = self.live.lock();
        l.span_id = span_id;
        l.kind = kind;
        l.detail = detail;
        l.since_unix_nano = since;
    }

    /// When `span_id` ends while it is the current activity, the activity falls back to
    /// `parent` (its parent span's activity, when known).
    pub(crate) fn end_activity(
        &self,
        span_id: u64,
        parent: impl FnOnce() -> Option<(u64, ActivityKind, Detail, u64)>,
    ) {
        let mut l = self.live.lock();
        if l.span_id != span_id {
            return;
        }
        let (id, kind, detail, since) = parent().unwrap_or((
            self.span_id,
            ActivityKind::Method,
            Detail::None,
            self.start_unix_nano,
        ));
        l.span_id = id;
        l.kind = kind;
        l.detail = detail;
        l.since_unix_nano = since;
    }

    fn snapshot(&self) -> ActiveTransaction {
        let l = self.live.lock();
        ActiveTransaction {
            trace_id: self.trace_id.to_be_bytes().to_vec(),
            span_id: self.span_id.to_be_bytes().to_vec(),
            endpoint: l.endpoint.clone(),
            http_method: l.http_method.clone(),
            start_time_unix_nano: self.start_unix_nano,
            client_address: l.client_address.clone(),
            worker: self.worker.clone(),
            current_kind: l.kind as i32,
            current_detail: l.detail.text(),
            current_start_unix_nano: l.since_unix_nano,
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
        Arc::new(TxState::new(7, span_id, start, true, "GET /orders".into()))
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

    #[test]
    fn tracks_the_current_activity_and_falls_back_to_the_parent() {
        let t = tx(1, 100);
        t.set_activity(5, ActivityKind::Method, Detail::Static("load_cart"), 110);
        t.set_activity(6, ActivityKind::Sql, Detail::Owned("SELECT 1".into()), 120);
        let s = t.snapshot();
        assert_eq!(s.current_kind, ActivityKind::Sql as i32);
        assert_eq!(s.current_detail, "SELECT 1");
        assert_eq!(s.current_start_unix_nano, 120);
        // A span that is not the current one ending changes nothing.
        t.end_activity(5, || None);
        assert_eq!(t.snapshot().current_detail, "SELECT 1");
        t.end_activity(6, || {
            Some((5, ActivityKind::Method, Detail::Static("load_cart"), 110))
        });
        let s = t.snapshot();
        assert_eq!(s.current_kind, ActivityKind::Method as i32);
        assert_eq!(s.current_detail, "load_cart");
        t.end_activity(5, || None);
        assert_eq!(t.snapshot().current_detail, "");
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
