//! The `tracing-subscriber` Layer: per-span state in the registry's extensions, the
//! active-transaction registry, and a non-blocking hand-off of finished spans to the
//! exporter thread.

use std::any::TypeId;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};
use tracing_subscriber::Layer;

use crate::active::{ActiveRegistry, EntryIds, TxState};
use crate::attrs::{Key, Value};
use crate::classify::{Category, ErrorEvent, EventFields, Fields, OtelKind};
use crate::export::{Counters, FinishedSpan};
use crate::ids::{next_trace_id, next_u64, TraceParent};
use crate::queue::Queue;
pub(crate) use crate::record::{Parent, SpanRecord, TxRef};

/// State shared by the layer and the exporter thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub active: ActiveRegistry,
    /// Registry ids of open entry spans (their CPU time is measured).
    pub entries: EntryIds,
    pub queue: Queue,
    pub counters: Counters,
    /// Sampling ratio as `f64` bits (remote settings may change it).
    pub sample_ratio: AtomicU64,
    /// Unsampled transactions lasting at least this long (ns) still export their call
    /// tree: their spans are held until the entry span ends. 0: off. Set by the
    /// collector's remote settings (`profile_threshold_ms`).
    pub profile_threshold_ns: AtomicU64,
    pub parent_based: bool,
}

impl Shared {
    /// The sampling decision for a trace continued from a caller's `traceparent`.
    fn sampled_remote(&self, tp: &TraceParent) -> bool {
        if self.parent_based {
            tp.sampled
        } else {
            self.sampled(tp.trace_id)
        }
    }

    fn sampled(&self, trace_id: u128) -> bool {
        let ratio = f64::from_bits(self.sample_ratio.load(Ordering::Relaxed));
        if ratio >= 1.0 {
            return true;
        }
        // Deterministic by trace id: the same trace is kept or dropped everywhere.
        ((trace_id as u64) as f64) < ratio * (u64::MAX as f64)
    }
}

pub(crate) use crate::clock::now_unix_nano;

thread_local! {
    /// Entry spans entered on this thread: (layer, span id, thread CPU ns at enter).
    static ENTERED: std::cell::RefCell<Vec<(usize, u64, u64)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`: a system call, so it is
/// read only around entry spans).
fn thread_cpu_ns() -> u64 {
    crate::clock::clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// The Tern layer. Add it next to your other layers:
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
/// let (tern, _guard) = tern_agent::builder().service_name("shop").build().unwrap();
/// tracing_subscriber::registry().with(tern).init();
/// ```
#[derive(Debug, Clone)]
pub struct TernLayer {
    pub(crate) shared: Arc<Shared>,
    /// This instance's key in the per-thread table of open spans (`open.rs`); 0: the
    /// table is not used (the layer is not on top of a `tracing_subscriber::Registry`).
    pub(crate) token: u64,
}

impl TernLayer {
    /// The agent's counters (exported, dropped, retried, active).
    pub fn stats(&self) -> crate::Stats {
        crate::export::stats(&self.shared)
    }

    fn profile_threshold(&self) -> u64 {
        self.shared.profile_threshold_ns.load(Ordering::Relaxed)
    }

    #[inline(never)]
    fn entry_entered(&self, id: &Id) {
        let key = Arc::as_ptr(&self.shared) as usize;
        let cpu = thread_cpu_ns();
        let _ = ENTERED.try_with(|e| e.borrow_mut().push((key, id.into_u64(), cpu)));
    }

    #[inline(never)]
    fn entry_exited<S>(&self, id: &Id, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let key = Arc::as_ptr(&self.shared) as usize;
        let entered = ENTERED
            .try_with(|e| {
                let mut e = e.borrow_mut();
                let i = e
                    .iter()
                    .rposition(|&(k, i, _)| k == key && i == id.into_u64())?;
                Some(e.remove(i).2)
            })
            .ok()
            .flatten();
        let (Some(start), Some(span)) = (entered, ctx.span(id)) else {
            return;
        };
        let used = thread_cpu_ns().saturating_sub(start);
        let ext = span.extensions();
        if let Some(rec) = ext.get::<SpanRecord>() {
            rec.tx.add_cpu(used);
        }
    }

    /// A `traceparent` recorded on an entry span after it was created
    /// (`span.record("traceparent", header)`): the transaction continues the caller's
    /// trace, as if the header had been given at creation, provided no span was created
    /// under it yet (its children already carry the trace id they were given). Later, or
    /// for the same trace, the value stays an attribute only.
    fn continue_remote_trace(&self, rec: &mut SpanRecord, tp: TraceParent) {
        let old = &rec.tx;
        if old.has_children() || (old.trace_id == tp.trace_id && rec.parent_span_id == tp.span_id) {
            return;
        }
        let tx = Arc::new(TxState::new(
            tp.trace_id,
            rec.span_id,
            old.start_unix_nano,
            self.shared.sampled_remote(&tp),
        ));
        tx.live.lock().first_error = old.live.lock().first_error.take();
        if let Some(ns) = old.cpu_ns() {
            tx.add_cpu(ns);
        }
        self.shared.active.remove(rec.span_id);
        self.shared.active.insert(tx.clone());
        if let TxRef::Entry(old) = std::mem::replace(&mut rec.tx, TxRef::Entry(tx)) {
            rec.retired = Some(old);
        }
        rec.parent_span_id = tp.span_id;
        rec.fields.otel_kind.get_or_insert(OtelKind::Server);
    }

    /// Starts a transaction for an entry span.
    #[inline(never)]
    fn start_transaction(
        &self,
        fields: &mut Fields,
        span_id: u64,
        start: u64,
        parent: Option<&Parent>,
        id: &Id,
    ) -> (TxRef, u64) {
        let (trace_id, parent_span_id, sampled) = match (fields.traceparent(), parent) {
            (Some(tp), _) => (tp.trace_id, tp.span_id, self.shared.sampled_remote(tp)),
            (None, Some(p)) => {
                // SAFETY: the parent span is open while its child is created.
                let ptx = unsafe { p.tx.as_ref() };
                (ptx.trace_id, p.span_id, ptx.sampled)
            }
            (None, None) => {
                let t = next_trace_id();
                (t, 0, self.shared.sampled(t))
            }
        };
        if fields.tower_http || fields.traceparent().is_some() {
            fields.otel_kind.get_or_insert(OtelKind::Server);
        }
        let tx = Arc::new(TxState::new(trace_id, span_id, start, sampled));
        update_live(&tx, fields);
        self.shared.active.insert(tx.clone());
        self.shared.entries.insert(id.into_u64());
        (TxRef::Entry(tx), parent_span_id)
    }
}

impl TernLayer {
    /// The new span's parent as the agent knows it: from this thread's table of open
    /// spans when the parent was created here (no registry lookup), else from the
    /// parent's record in the registry (`span.parent()` honours per-layer filters).
    #[inline]
    fn parent<S>(
        &self,
        attrs: &Attributes<'_>,
        span: &SpanRef<'_, S>,
        ctx: &Context<'_, S>,
    ) -> Option<Parent>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        // The registry's parent: the current span, or the one given explicitly.
        let parent_id = if attrs.is_root() {
            return None;
        } else if attrs.is_contextual() {
            ctx.current_span().id()?.into_u64()
        } else {
            attrs.parent()?.into_u64()
        };
        if self.token != 0 {
            if let Some(p) = crate::open::parent(self.token, parent_id) {
                return Some(p);
            }
        }
        let parent = span.parent()?;
        let p = {
            let ext = parent.extensions();
            let r = ext.get::<SpanRecord>()?;
            r.tx.mark_child();
            r.as_parent()
        };
        if self.token != 0 {
            // The parent now has a child: its transaction is final.
            crate::open::set_parent(self.token, parent.id().into_u64(), p);
        }
        Some(p)
    }
}

/// Field names the live view of a transaction is made of (see [`update_live`]).
const LIVE_KEYS: [&str; 9] = [
    "http.request.method",
    "http.method",
    "http.route",
    "url.path",
    "http.target",
    "otel.name",
    "client.address",
    "http.client_ip",
    "net.peer.ip",
];

/// Whether `fields` (recorded later on an entry span) change its live view.
fn changes_live(fields: &Fields) -> bool {
    fields.otel_name().is_some() || fields.iter().any(|(name, _)| LIVE_KEYS.contains(&name))
}

fn update_live(tx: &TxState, fields: &Fields) {
    let mut l = tx.live.lock();
    l.endpoint = fields.endpoint();
    if let Some(m) = fields.get(&["http.request.method", "http.method"]) {
        l.http_method = m.to_string();
    }
    if let Some(a) = fields.get(&["client.address", "http.client_ip", "net.peer.ip"]) {
        l.client_address = a.to_string();
    }
}

/// The statement or URL shown for a running SQL or external call.
#[inline(never)]
fn activity_text(category: Category, fields: &Fields) -> Option<String> {
    let name = fields.meta.name();
    match category {
        Category::Sql => Some(fields.sql().unwrap_or(name).to_string()),
        Category::External => Some(fields.url().unwrap_or_else(|| name.to_string())),
        Category::Method | Category::Entry => None,
    }
}

impl<S> Layer<S> for TernLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::new(attrs.metadata());
        attrs.record(&mut fields);
        let start = now_unix_nano();
        let span_id = next_u64();
        let parent = self.parent(attrs, &span, &ctx);
        let category = fields.category(parent.is_none());
        let (tx, parent_span_id, parent_doing) = match (category, &parent) {
            (Category::Entry, parent) => {
                let (tx, pid) =
                    self.start_transaction(&mut fields, span_id, start, parent.as_ref(), id);
                (tx, pid, None)
            }
            (_, Some(p)) => (TxRef::Child(p.tx), p.span_id, Some(p.doing)),
            // Not reachable: a span without a known parent is an entry.
            (_, None) => return,
        };
        let rec = SpanRecord {
            tx,
            span_id,
            parent_span_id,
            start_unix_nano: start,
            category,
            fields,
            parent_doing,
            retired: None,
        };
        match category {
            Category::Entry => {}
            Category::Method => rec.tx.set_activity(rec.doing(), None),
            _ => rec
                .tx
                .set_activity(rec.doing(), activity_text(category, &rec.fields)),
        }
        let mut ext = span.extensions_mut();
        ext.insert(rec);
        if self.token != 0 {
            if let Some(rec) = ext.get_mut::<SpanRecord>() {
                let parent = (category != Category::Entry).then(|| rec.as_parent());
                crate::open::remember(self.token, id.into_u64(), NonNull::from(rec), parent);
            }
        }
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        let registry = TypeId::of::<tracing_subscriber::Registry>();
        // SAFETY: `downcast_raw` is only called to test for the type, not to cast.
        if unsafe { subscriber.downcast_raw(registry) }.is_some() {
            self.token = crate::open::new_token();
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        // Record outside the extensions lock: a field's `Debug` impl is user code and
        // may itself use tracing (or `current_traceparent`) on this span.
        let mut later = Fields::new(span.metadata());
        values.record(&mut later);
        let mut ext = span.extensions_mut();
        let Some(rec) = ext.get_mut::<SpanRecord>() else {
            return;
        };
        let remote = later.traceparent().copied();
        let live = rec.category == Category::Entry && changes_live(&later);
        rec.fields.merge(later);
        if rec.category != Category::Entry {
            return;
        }
        if let Some(tp) = remote {
            self.continue_remote_trace(rec, tp);
        }
        if live || remote.is_some() {
            update_live(&rec.tx, &rec.fields);
        }
    }

    #[inline]
    fn on_enter(&self, id: &Id, _ctx: Context<'_, S>) {
        // Entry spans only: one load decides, no registry lookup for other spans.
        if self.shared.entries.contains(id.into_u64()) {
            self.entry_entered(id);
        }
    }

    #[inline]
    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if self.shared.entries.contains(id.into_u64()) {
            self.entry_exited(id, ctx);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let is_error = *meta.level() == Level::ERROR;
        let tower = meta.target().starts_with("tower_http");
        if !is_error && !tower {
            return;
        }
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut ef = EventFields::default();
        event.record(&mut ef);
        let mut ext = span.extensions_mut();
        let Some(rec) = ext.get_mut::<SpanRecord>() else {
            return;
        };
        if let Some(status) = ef.status.filter(|_| tower) {
            rec.fields
                .set(Key::HttpResponseStatusCode, Value::I64(status));
        }
        if !is_error {
            return;
        }
        let error_type = ef.error_type.unwrap_or_else(|| meta.target().to_string());
        {
            let mut live = rec.tx.live.lock();
            if live.first_error.is_none() {
                live.first_error = Some((error_type.clone(), ef.message.clone()));
            }
        }
        let rare = rec.fields.rare_mut();
        rare.error.get_or_insert_with(|| ef.message.clone());
        rare.errors.push(ErrorEvent {
            time_unix_nano: now_unix_nano(),
            error_type,
            message: ef.message,
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if self.token != 0 {
            if let Some(mut rec) = crate::open::take(self.token, id.into_u64()) {
                // SAFETY: the record of this span, created on this thread (see
                // `open.rs`). It is still in the registry's extensions (they are cleared
                // after `on_close`), and no other thread can reach the span: its
                // reference count is zero, so this is the only access.
                return self.close(unsafe { rec.as_mut() }, &id);
            }
        }
        let Some(span) = ctx.span(&id) else { return };
        let mut ext = span.extensions_mut();
        // The record stays in place (the registry frees it with the span); only its
        // fields move out.
        if let Some(rec) = ext.get_mut::<SpanRecord>() {
            self.close(rec, &id);
        }
    }
}

impl TernLayer {
    /// Ends a span: the live view and the transaction index are updated, its fields go
    /// to the exporter.
    #[inline]
    fn close(&self, rec: &mut SpanRecord, id: &Id) {
        let end = now_unix_nano();
        if rec.category == Category::Entry {
            return self.close_entry(rec, id, end);
        }
        rec.tx.end_activity(rec.span_id, rec.parent_doing);
        if rec.tx.sampled {
            let span = FinishedSpan::take(rec, end, None);
            self.shared.queue.push(&self.shared.counters, span);
        } else if self.profile_threshold() > 0 {
            // Held until the transaction ends: kept if it turns out slow.
            let span = FinishedSpan::take(rec, end, None);
            if !rec.tx.hold(span) {
                self.shared.counters.add_dropped(1);
            }
        }
    }

    /// Ends a transaction's entry span (and sends the call tree of a slow unsampled one).
    fn close_entry(&self, rec: &mut SpanRecord, id: &Id, end: u64) {
        self.shared.active.remove(rec.span_id);
        self.shared.entries.remove(id.into_u64());
        if let Some(ns) = rec.tx.cpu_ns() {
            let us = i64::try_from(ns / 1_000).unwrap_or(i64::MAX);
            rec.fields.set(Key::CpuTimeUs, Value::I64(us));
        }
        let first_error = if rec.fields.error().is_none() {
            rec.tx.live.lock().first_error.clone()
        } else {
            None
        };
        self.shared.queue.push(
            &self.shared.counters,
            FinishedSpan::take(rec, end, first_error),
        );
        if !rec.tx.sampled {
            // A slow unsampled transaction gets its call tree after all.
            let held = rec.tx.take_held();
            let threshold = self.profile_threshold();
            if threshold > 0 && end.saturating_sub(rec.start_unix_nano) >= threshold {
                for span in held {
                    self.shared.queue.push(&self.shared.counters, span);
                }
            }
        }
    }
}

/// The W3C `traceparent` of the current span, to send with an outgoing call so that the
/// called service continues this trace. `None` outside a span or when the subscriber
/// is not a `tracing_subscriber::Registry` with the Tern layer.
///
/// ```no_run
/// # fn send(_: &str, _: &str) {}
/// let _span = tracing::info_span!("call inventory", otel.kind = "client", url.full = "http://inventory/items").entered();
/// if let Some(tp) = tern_agent::current_traceparent() {
///     send("traceparent", &tp.to_header());
/// }
/// ```
pub fn current_traceparent() -> Option<TraceParent> {
    let span = tracing::Span::current();
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(id)?;
        let ext = span.extensions();
        let rec = ext.get::<SpanRecord>()?;
        Some(TraceParent {
            trace_id: rec.tx.trace_id,
            span_id: rec.span_id,
            sampled: rec.tx.sampled,
        })
    })
    .flatten()
}

#[cfg(test)]
mod tests;
