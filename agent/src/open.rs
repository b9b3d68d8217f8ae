//! The records of spans created on this thread and still open, so that closing one on
//! the thread that created it (the common case) finds its record without a registry
//! lookup and without the extensions lock (each is a pair of atomic read-modify-writes),
//! and a span created under one of them finds what it takes from its parent the same
//! way.
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

use crate::record::{Parent, SpanRecord};

const SLOTS: usize = 256;

#[derive(Clone, Copy)]
struct Entry {
    token: u64,
    id: u64,
    rec: Option<NonNull<SpanRecord>>,
    /// What a span created under this one takes from it, once it can no longer change
    /// (see [`set_parent`]).
    parent: Option<Parent>,
}

const EMPTY: Entry = Entry {
    token: 0,
    id: 0,
    rec: None,
    parent: None,
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
pub(crate) fn remember(token: u64, id: u64, rec: NonNull<SpanRecord>, parent: Option<Parent>) {
    OPEN.with(|t| {
        t[slot(id)].set(Entry {
            token,
            id,
            rec: Some(rec),
            parent,
        })
    });
}

/// What a new span takes from its parent `id`, if the parent was created on this
/// thread and its transaction can no longer change: it is not an entry span, or it
/// already has a span under it (a `traceparent` recorded later moves an entry span
/// to another transaction only while it has none). The parent is open (its child
/// holds it), so the transaction pointer is valid.
#[inline]
pub(crate) fn parent(token: u64, id: u64) -> Option<Parent> {
    OPEN.with(|t| {
        let e = t[slot(id)].get();
        (e.token == token && e.id == id).then_some(e.parent)?
    })
}

/// Notes what spans under `id` take from it (after the registry lookup that made its
/// transaction final by creating a first child).
#[inline]
pub(crate) fn set_parent(token: u64, id: u64, parent: Parent) {
    OPEN.with(|t| {
        let cell = &t[slot(id)];
        let mut e = cell.get();
        if e.token == token && e.id == id {
            e.parent = Some(parent);
            cell.set(e);
        }
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
