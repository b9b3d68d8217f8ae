//! The records of spans created on this thread and still open, so that closing one on
//! the thread that created it (the common case) finds its record without a registry
//! lookup and without the extensions lock (each is a pair of atomic read-modify-writes).
//!
//! A small direct-mapped table per thread, keyed by (layer instance, span id). A span
//! closed on another thread, or whose slot was taken by a later span, is simply not
//! found: the layer then looks it up in the registry as before.
//!
//! Why an entry is never stale when it is found: `tracing_subscriber::Registry` keeps
//! spans in a `sharded_slab`, whose ids name the shard of the thread that created the
//! span; a shard allocates only on its own thread. So a live span with id X found in
//! this thread's table was created on this thread, and its creation wrote the entry
//! (replacing whatever an earlier span with the same id left). The layer enables the
//! table only on top of a `Registry` (checked in `on_layer`), and each layer instance
//! has its own token, so two subscribers on one thread never share entries.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::layer::SpanRecord;

const SLOTS: usize = 256;

#[derive(Clone, Copy)]
struct Entry {
    token: u64,
    id: u64,
    rec: Option<NonNull<SpanRecord>>,
}

const EMPTY: Entry = Entry {
    token: 0,
    id: 0,
    rec: None,
};

thread_local! {
    /// Plain cells (no borrow flag, no destructor): reading or writing an entry cannot
    /// fail, so a span's creation always replaces the entry of its id.
    static OPEN: [Cell<Entry>; SLOTS] = const { [const { Cell::new(EMPTY) }; SLOTS] };
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// A token for one layer instance (never 0).
pub(crate) fn new_token() -> u64 {
    NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
}

#[inline]
fn slot(id: u64) -> usize {
    // Registry ids of one thread differ mostly in their low bits (slab addresses).
    (id ^ (id >> 32)) as usize % SLOTS
}

/// Remembers the record of span `id`, just created on this thread (its address is
/// stable: the registry's extensions own it in a `Box` until the span is cleared,
/// after `on_close`).
#[inline]
pub(crate) fn remember(token: u64, id: u64, rec: NonNull<SpanRecord>) {
    OPEN.with(|t| {
        t[slot(id)].set(Entry {
            token,
            id,
            rec: Some(rec),
        })
    });
}

/// Forgets span `id`, returning its record if it was created on this thread and is
/// still in the table.
#[inline]
pub(crate) fn take(token: u64, id: u64) -> Option<NonNull<SpanRecord>> {
    OPEN.with(|t| {
        let cell = &t[slot(id)];
        let e = cell.get();
        if e.token != token || e.id != id {
            return None;
        }
        cell.set(EMPTY);
        e.rec
    })
}
