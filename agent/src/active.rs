//! The transactions running right now. Each one is an `Arc<TxState>` shared by the
//! spans of the transaction (in the registry's extensions) and by a sharded index that
//! the live reporter reads once a second. The index is touched twice per transaction
//! (start, end), never per span; the per-transaction activity lock is taken only by
//! that transaction's spans and the once-a-second reader, so it is uncontended.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tern_proto::v1::{ActiveTransaction, ActivityKind};

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
}

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
        }
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
}
