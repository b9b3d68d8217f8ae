//! The bounded hand-off of finished spans from application threads to the exporter
//! thread, in per-thread batches.
//!
//! Each application thread appends finished spans to its own buffer (a flag lock that
//! only it and, once per export interval, the exporter ever take: uncontended, one
//! atomic swap to take and a plain store to release; the application only tries it
//! and, in the rare moment the exporter holds it, sends its span alone instead of
//! waiting). A full buffer
//! of [`BATCH`] spans goes to the exporter in one channel operation, so the shared
//! channel and its cache lines are touched once per batch instead of once per span; the
//! exporter sends the emptied buffers back for reuse (no allocation in steady state).
//! The exporter also takes partly filled buffers at every drain, so a span waits at most
//! one export interval whatever its thread does next.
//!
//! Bounded: the channel holds `queue_size / BATCH - 1` full batches (at least one), and
//! each thread's buffer fewer than [`BATCH`] spans, so a single-threaded application
//! never has more than `queue_size` spans waiting (each further thread adds at most 63).
//! A batch that finds the channel full is dropped and counted, as is anything pushed
//! after the exporter stopped.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver as ChannelRx, Sender, TrySendError};
use thread_local::ThreadLocal;

use crate::export::{Counters, FinishedSpan};

/// Spans per thread-local batch.
pub(crate) const BATCH: usize = 64;

type Batch = Vec<FinishedSpan>;

/// One application thread's buffer behind a flag lock.
struct Local {
    busy: AtomicBool,
    buf: UnsafeCell<Batch>,
}

// SAFETY: `buf` is only reached through a `LocalGuard`, which exists while `busy` is
// held by its creator alone.
unsafe impl Sync for Local {}

impl Local {
    fn new() -> Local {
        Local {
            busy: AtomicBool::new(false),
            buf: UnsafeCell::new(Vec::with_capacity(BATCH)),
        }
    }

    #[inline]
    fn try_lock(&self) -> Option<LocalGuard<'_>> {
        (!self.busy.swap(true, Ordering::Acquire)).then_some(LocalGuard(self))
    }

    /// The exporter's side: the application holds the flag for a few instructions.
    fn lock(&self) -> LocalGuard<'_> {
        loop {
            if let Some(g) = self.try_lock() {
                return g;
            }
            std::thread::yield_now();
        }
    }
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("busy", &self.busy)
            .finish_non_exhaustive()
    }
}

struct LocalGuard<'a>(&'a Local);

impl Deref for LocalGuard<'_> {
    type Target = Batch;
    fn deref(&self) -> &Batch {
        // SAFETY: this guard holds the flag.
        unsafe { &*self.0.buf.get() }
    }
}

impl DerefMut for LocalGuard<'_> {
    fn deref_mut(&mut self) -> &mut Batch {
        // SAFETY: this guard holds the flag.
        unsafe { &mut *self.0.buf.get() }
    }
}

impl Drop for LocalGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

#[derive(Debug)]
struct Inner {
    locals: ThreadLocal<Local>,
    full: Sender<Batch>,
    spare_tx: Sender<Batch>,
    spare_rx: ChannelRx<Batch>,
    /// Spans in full batches waiting in the channel.
    queued: AtomicUsize,
    /// The exporter has stopped: pushes are dropped and counted.
    closed: AtomicBool,
}

impl Inner {
    fn spare(&self) -> Batch {
        self.spare_rx
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH))
    }

    fn recycle(&self, mut b: Batch) {
        b.clear();
        if b.capacity() >= BATCH {
            let _ = self.spare_tx.try_send(b);
        }
    }
}

/// The application side.
#[derive(Debug)]
pub(crate) struct Queue {
    inner: Arc<Inner>,
}

/// The exporter side.
#[derive(Debug)]
pub(crate) struct Receiver {
    inner: Arc<Inner>,
    full: ChannelRx<Batch>,
    /// The batch being handed out.
    current: Batch,
}

impl Queue {
    /// A queue holding about `size` spans (at least one batch).
    pub(crate) fn bounded(size: usize) -> (Queue, Receiver) {
        let batches = (size / BATCH).saturating_sub(1).max(1);
        let (full, full_rx) = crossbeam_channel::bounded(batches);
        let (spare_tx, spare_rx) = crossbeam_channel::bounded(batches + 16);
        let inner = Arc::new(Inner {
            locals: ThreadLocal::new(),
            full,
            spare_tx,
            spare_rx,
            queued: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        });
        let rx = Receiver {
            inner: inner.clone(),
            full: full_rx,
            current: Vec::new(),
        };
        (Queue { inner }, rx)
    }

    /// Never blocks: a full queue (or a stopped exporter) drops and counts.
    #[inline]
    pub(crate) fn push(&self, counters: &Counters, span: FinishedSpan) {
        let inner = &*self.inner;
        if inner.closed.load(Ordering::Relaxed) {
            counters.add_dropped(1);
            return;
        }
        let local = inner.locals.get_or(Local::new);
        // Only the exporter ever holds this lock besides us, for a swap; if it holds it
        // now (even preempted), do not wait: send this span alone.
        let Some(mut buf) = local.try_lock() else {
            return self.send(counters, vec![span]);
        };
        buf.push(span);
        if buf.len() < BATCH {
            return;
        }
        let full = std::mem::replace(&mut *buf, inner.spare());
        drop(buf);
        self.send(counters, full);
    }

    /// Hands a batch to the exporter, or drops and counts it.
    fn send(&self, counters: &Counters, full: Batch) {
        let inner = &*self.inner;
        let n = full.len();
        inner.queued.fetch_add(n, Ordering::Relaxed);
        if let Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) =
            inner.full.try_send(full)
        {
            inner.queued.fetch_sub(n, Ordering::Relaxed);
            counters.add_dropped(n as u64);
            inner.recycle(b);
        }
    }

    /// Spans waiting for the exporter now.
    pub(crate) fn len(&self) -> usize {
        let partial: usize = self.inner.locals.iter().map(|l| l.lock().len()).sum();
        self.inner.queued.load(Ordering::Relaxed) + partial
    }
}

impl Receiver {
    /// Moves up to `max - out.len()` spans into `out`: full batches first, then what the
    /// application threads' buffers hold.
    pub(crate) fn fill(&mut self, out: &mut Vec<FinishedSpan>, max: usize) {
        let mut stolen = false;
        while out.len() < max {
            if self.current.is_empty() && !self.next_batch(&mut stolen) {
                return;
            }
            let n = (max - out.len()).min(self.current.len());
            out.extend(self.current.drain(..n));
        }
    }

    /// Makes `current` a non-empty batch if there is one.
    fn next_batch(&mut self, stolen: &mut bool) -> bool {
        let inner = &*self.inner;
        if let Ok(b) = self.full.try_recv() {
            inner.queued.fetch_sub(b.len(), Ordering::Relaxed);
            inner.recycle(std::mem::replace(&mut self.current, b));
            return true;
        }
        if *stolen {
            return false;
        }
        // Once per fill: take the partly filled buffers.
        *stolen = true;
        for local in inner.locals.iter() {
            let mut buf = local.lock();
            if buf.is_empty() {
                continue;
            }
            let mut b = std::mem::replace(&mut *buf, inner.spare());
            drop(buf);
            if self.current.is_empty() {
                std::mem::swap(&mut self.current, &mut b);
            } else {
                self.current.append(&mut b);
            }
            inner.recycle(b);
        }
        !self.current.is_empty()
    }

    /// Stops the queue (later pushes are dropped and counted) and throws away what it
    /// still holds; returns how many spans that was.
    pub(crate) fn close(&mut self) -> u64 {
        self.inner.closed.store(true, Ordering::Relaxed);
        let mut n = self.current.len();
        self.current.clear();
        while let Ok(b) = self.full.try_recv() {
            self.inner.queued.fetch_sub(b.len(), Ordering::Relaxed);
            n += b.len();
        }
        for local in self.inner.locals.iter() {
            let mut buf = local.lock();
            n += buf.len();
            buf.clear();
        }
        n as u64
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Category;

    fn span(id: u64) -> FinishedSpan {
        FinishedSpan {
            trace_id: 1,
            span_id: id,
            parent_span_id: 0,
            category: Category::Method,
            fields: crate::classify::testing::capture(|| drop(tracing::info_span!("s"))),
            start_unix_nano: 1,
            end_unix_nano: 2,
        }
    }

    fn ids(v: &[FinishedSpan]) -> Vec<u64> {
        v.iter().map(|s| s.span_id).collect()
    }

    #[test]
    fn hands_over_full_batches_and_partly_filled_buffers_in_order() {
        let (q, mut rx) = Queue::bounded(1_000);
        let c = Counters::default();
        for i in 0..(BATCH as u64 + 5) {
            q.push(&c, span(i));
        }
        assert_eq!(q.len(), BATCH + 5);
        let mut out = Vec::new();
        rx.fill(&mut out, 10);
        assert_eq!(ids(&out), (0..10).collect::<Vec<_>>(), "at most max");
        out.clear();
        rx.fill(&mut out, 1_000);
        assert_eq!(ids(&out), (10..BATCH as u64 + 5).collect::<Vec<_>>());
        assert_eq!(q.len(), 0);
        out.clear();
        rx.fill(&mut out, 1_000);
        assert!(out.is_empty());
    }

    #[test]
    fn collects_the_buffers_of_every_thread_even_after_they_exit() {
        let (q, mut rx) = Queue::bounded(1_000);
        let q = Arc::new(q);
        let c = Arc::new(Counters::default());
        let threads: Vec<_> = (0..3u64)
            .map(|t| {
                let (q, c) = (q.clone(), c.clone());
                std::thread::spawn(move || {
                    for i in 0..7 {
                        q.push(&c, span(t * 100 + i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut out = Vec::new();
        rx.fill(&mut out, 1_000);
        let mut got = ids(&out);
        got.sort();
        let want: Vec<u64> = (0..3u64)
            .flat_map(|t| (0..7).map(move |i| t * 100 + i))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_span_pushed_while_the_exporter_holds_the_buffer_goes_alone_without_waiting() {
        let (q, mut rx) = Queue::bounded(1_000);
        let c = Counters::default();
        q.push(&c, span(1));
        {
            let local = q.inner.locals.get().unwrap();
            let _exporter = local.lock();
            q.push(&c, span(2));
        }
        assert_eq!(q.len(), 2);
        let mut out = Vec::new();
        rx.fill(&mut out, 10);
        let mut got = ids(&out);
        got.sort();
        assert_eq!(got, [1, 2]);
        assert_eq!(c.dropped(), 0);
    }

    #[test]
    fn drops_and_counts_whole_batches_when_full_and_everything_after_close() {
        let (q, mut rx) = Queue::bounded(2 * BATCH); // one full batch and one partial
        let c = Counters::default();
        for i in 0..(2 * BATCH as u64 + 5) {
            q.push(&c, span(i));
        }
        assert_eq!(
            c.dropped(),
            BATCH as u64,
            "the second full batch found no room"
        );
        assert_eq!(
            rx.close(),
            BATCH as u64 + 5,
            "one queued and one partial batch"
        );
        q.push(&c, span(0));
        assert_eq!(c.dropped(), BATCH as u64 + 1);
        let mut out = Vec::new();
        rx.fill(&mut out, 10);
        assert!(out.is_empty());
    }
}
