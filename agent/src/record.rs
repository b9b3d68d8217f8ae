//! Per-span state: the record each span keeps in the registry's extensions, the
//! transaction it belongs to, and what moves to the exporter when it ends.

use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;

use tern_proto::v1::ActivityKind;

use crate::active::{Doing, TxState};
use crate::classify::{Category, ErrorEvent, Fields};
use crate::export::FinishedSpan;

/// A span's transaction: owned by the transaction's entry span, borrowed by the spans
/// under it (no reference count to touch per span).
#[derive(Debug)]
pub(crate) enum TxRef {
    Entry(Arc<TxState>),
    /// The entry span's transaction, read by a span under it.
    ///
    /// Valid while this span is open: the registry keeps every span's parent open until
    /// the span has closed (each span holds a reference to its parent, released only
    /// after the span's `on_close`, when the registry clears it), so the entry span and
    /// its record, which owns the `Arc`, outlive every callback of this span. The
    /// pointer is only dereferenced in those callbacks, never when the record is
    /// dropped. An entry that switches to another transaction (a `traceparent`
    /// recorded later) keeps the old one alive (`SpanRecord::retired`).
    Child(NonNull<TxState>),
}

// SAFETY: `TxState` is `Send + Sync`; see `TxRef::Child` for the pointer's lifetime.
unsafe impl Send for TxRef {}
// SAFETY: as above.
unsafe impl Sync for TxRef {}

impl Deref for TxRef {
    type Target = TxState;

    #[inline]
    fn deref(&self) -> &TxState {
        match self {
            TxRef::Entry(tx) => tx,
            // SAFETY: see `TxRef::Child`.
            TxRef::Child(tx) => unsafe { tx.as_ref() },
        }
    }
}

/// Per-span state, kept in the span's registry extensions.
#[derive(Debug)]
pub(crate) struct SpanRecord {
    pub tx: TxRef,
    pub span_id: u64,
    pub parent_span_id: u64,
    pub start_unix_nano: u64,
    pub category: Category,
    pub fields: Fields,
    /// What the transaction goes back to doing when this span ends: the parent's
    /// activity, captured at creation so closing needs no lookup.
    pub parent_doing: Option<Doing>,
    /// Entry spans only: the transaction this span belonged to before a `traceparent`
    /// recorded later moved it to the caller's trace (kept alive for `TxRef::Child`).
    pub retired: Option<Arc<TxState>>,
}

impl SpanRecord {
    /// What a span created under this one takes from it.
    pub(crate) fn as_parent(&self) -> Parent {
        Parent {
            tx: NonNull::from(&*self.tx),
            span_id: self.span_id,
            doing: self.doing(),
        }
    }

    /// What this span does, as the live view shows it.
    pub(crate) fn doing(&self) -> Doing {
        let (kind, meta) = match self.category {
            Category::Sql => (ActivityKind::Sql, Some(self.fields.meta)),
            Category::External => (ActivityKind::External, Some(self.fields.meta)),
            Category::Method => (ActivityKind::Method, Some(self.fields.meta)),
            Category::Entry => (ActivityKind::Method, None),
        };
        Doing {
            span_id: self.span_id,
            kind,
            meta,
            since: self.start_unix_nano,
        }
    }
}

/// What a new span takes from its parent's record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parent {
    pub tx: NonNull<TxState>,
    pub span_id: u64,
    pub doing: Doing,
}

impl FinishedSpan {
    /// Moves the exportable parts out of a closing span's record.
    #[inline]
    pub(crate) fn take(
        rec: &mut SpanRecord,
        end: u64,
        first_error: Option<(String, String)>,
    ) -> FinishedSpan {
        let empty = Fields::empty(rec.fields.meta);
        let mut fields = std::mem::replace(&mut rec.fields, empty);
        if first_error.is_some() || rec.category == Category::Entry {
            name_entry(&mut fields, rec.category, end, first_error);
        }
        FinishedSpan {
            trace_id: rec.tx.trace_id,
            span_id: rec.span_id,
            parent_span_id: rec.parent_span_id,
            start_unix_nano: rec.start_unix_nano,
            end_unix_nano: end,
            category: rec.category,
            fields,
        }
    }
}

/// The transaction's first error on its entry span; HTTP server spans are named
/// `{method} {route}` (OpenTelemetry HTTP conventions), whatever the span was called in
/// code.
#[inline(never)]
fn name_entry(
    fields: &mut Fields,
    category: Category,
    end: u64,
    first_error: Option<(String, String)>,
) {
    if let Some((error_type, message)) = first_error {
        let rare = fields.rare_mut();
        rare.error = Some(message.clone());
        if rare.errors.is_empty() {
            rare.errors.push(ErrorEvent {
                time_unix_nano: end,
                error_type,
                message,
            });
        }
    }
    if category == Category::Entry
        && fields.otel_name().is_none()
        && (fields.tower_http
            || fields
                .get(&["http.request.method", "http.method"])
                .is_some())
    {
        let name = fields.endpoint();
        fields.rare_mut().name = Some(name);
    }
}
