//! The traffic model: picks front-door transactions from the catalog and builds the
//! spans of their traces, across services, into OTLP export requests.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::ScopeSpans;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::catalog::{ServiceDef, SERVICES};
use crate::pool::{set_bytes, set_string, Attrs, Pool};

mod spans;
use spans::Incoming;
#[cfg(test)]
mod tests;

/// Ends of the traces in one request are spread over this much time before `now`.
const SPREAD_NS: u64 = 250_000_000;
const NO_GROUP: u32 = u32::MAX;
/// W3C "sampled" plus "has is-remote" span flags.
pub(crate) const FLAGS_LOCAL: u32 = 0x101;
/// As [`FLAGS_LOCAL`], with the parent remote (entry spans called by another service).
pub(crate) const FLAGS_REMOTE: u32 = 0x301;

/// Knobs of the traffic model. `Default` gives the standard mix.
#[derive(Debug, Clone, PartialEq)]
pub struct MixOptions {
    /// Number of services. The base application has 5 (`shop-frontend`,
    /// `order-service`, `payment-service`, `inventory-service`, `notification-worker`);
    /// fewer keeps the first ones, more repeats the application as `shop-frontend-2`, ….
    /// Default 5.
    pub services: usize,
    /// Share of transactions (entry spans) that fail with an exception. Default 0.02.
    pub error_rate: f64,
    /// Share of traces with a slow outlier (a SQL or external call of seconds).
    /// Default 0.005.
    pub slow_rate: f64,
}

impl Default for MixOptions {
    fn default() -> Self {
        MixOptions {
            services: SERVICES.len(),
            error_rate: 0.02,
            slow_rate: 0.005,
        }
    }
}

/// What one call of [`Mix::fill_request`] generated.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Generated {
    /// Traces, each started by one front-door transaction.
    pub traces: u64,
    /// Transactions: entry spans (SERVER or CONSUMER) in all services.
    pub transactions: u64,
    /// All spans.
    pub spans: u64,
}

impl std::ops::AddAssign for Generated {
    fn add_assign(&mut self, o: Generated) {
        self.traces += o.traces;
        self.transactions += o.transactions;
        self.spans += o.spans;
    }
}

/// A service of the mix: a catalog entry, possibly a numbered copy.
pub(crate) struct Service {
    pub(crate) def: &'static ServiceDef,
    pub(crate) name: String,
    /// Which copy of the base application (0 = the plain names).
    copy: usize,
    /// Instance slots, indices into `Mix::instances`.
    slots: std::ops::Range<usize>,
}

/// One running instance: the resource its spans are sent under.
pub(crate) struct Instance {
    resource: Resource,
    scope: InstrumentationScope,
    schema_url: &'static str,
    pub(crate) ip: String,
}

/// A span of the trace being built, with the instance it belongs to.
pub(crate) struct Pending {
    pub(crate) slot: usize,
    pub(crate) span: opentelemetry_proto::tonic::trace::v1::Span,
}

/// Per-trace state while its spans are built.
pub(crate) struct TraceState {
    pub(crate) trace_id: [u8; 16],
    /// A slow outlier still to be placed on some SQL or external call (ns).
    pub(crate) slow: Option<u64>,
    pub(crate) transactions: u64,
}

/// The generator: deterministic from its seed, cheap per span.
///
/// ```
/// use std::time::SystemTime;
/// use tern_loadgen::{Mix, MixOptions};
///
/// let mut mix = Mix::new(1, MixOptions::default());
/// let req = mix.next_request(10, SystemTime::now());
/// assert!(!req.resource_spans.is_empty());
/// ```
pub struct Mix {
    pub(crate) rng: SmallRng,
    pub(crate) options: MixOptions,
    pub(crate) services: Vec<Service>,
    pub(crate) instances: Vec<Instance>,
    /// Front-door endpoints: (cumulative weight, service, endpoint).
    roots: Vec<(u32, usize, usize)>,
    pub(crate) pool: Pool,
    pub(crate) scratch: Vec<Pending>,
    /// Reused path buffers (calls nest, so a stack).
    pub(crate) bufs: Vec<String>,
    slot_group: Vec<u32>,
}

impl Mix {
    /// A mix with its services, instances and random stream fixed by `seed`.
    pub fn new(seed: u64, options: MixOptions) -> Mix {
        let mut rng = SmallRng::seed_from_u64(seed);
        let n = options.services.max(1);
        let mut services = Vec::with_capacity(n);
        let mut instances = Vec::new();
        for i in 0..n {
            let def = &SERVICES[i % SERVICES.len()];
            let copy = i / SERVICES.len();
            let name = if copy == 0 {
                def.name.to_string()
            } else {
                format!("{}-{}", def.name, copy + 1)
            };
            let count = rng.random_range(1..=def.max_instances.max(1)) as usize;
            let first = instances.len();
            for k in 0..count {
                instances.push(new_instance(&mut rng, def, &name, i, k));
            }
            services.push(Service {
                def,
                name,
                copy,
                slots: first..instances.len(),
            });
        }
        let mut roots = Vec::new();
        let mut total = 0;
        for (si, s) in services.iter().enumerate() {
            for (ei, ep) in s.def.endpoints.iter().enumerate() {
                if ep.root_weight > 0 {
                    total += ep.root_weight;
                    roots.push((total, si, ei));
                }
            }
        }
        let slot_group = vec![NO_GROUP; instances.len()];
        Mix {
            rng,
            options,
            services,
            instances,
            roots,
            pool: Pool::default(),
            scratch: Vec::new(),
            bufs: Vec::new(),
            slot_group,
        }
    }

    /// Names of the services in the mix, in order.
    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(|s| s.name.as_str())
    }

    /// Number of instances (resources) over all services.
    pub fn instance_count(&self) -> usize {
        self.instances.len()
    }

    /// A new request holding `traces` traces that end shortly before `now`.
    ///
    /// Allocates every part; a sender that keeps its request should use
    /// [`Mix::fill_request`], which reuses the previous contents.
    pub fn next_request(&mut self, traces: usize, now: SystemTime) -> ExportTraceServiceRequest {
        let mut req = ExportTraceServiceRequest::default();
        self.fill_request(&mut req, traces, now);
        req
    }

    /// Replaces the contents of `req` with `traces` new traces that end within 250 ms
    /// before `now`, reusing its strings and vectors. Returns what was generated.
    ///
    /// A trace is one front-door transaction with its spans in every service it
    /// reaches; all spans of a trace are in the same request, grouped by instance and
    /// ordered by end time (children before their parents), as SDKs export them.
    pub fn fill_request(
        &mut self,
        req: &mut ExportTraceServiceRequest,
        traces: usize,
        now: SystemTime,
    ) -> Generated {
        self.pool.recycle_request(req);
        self.slot_group.fill(NO_GROUP);
        let now_ns = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut generated = Generated::default();
        for _ in 0..traces {
            let transactions = self.trace();
            generated.traces += 1;
            generated.transactions += transactions;
            generated.spans += self.scratch.len() as u64;
            self.place_trace(req, now_ns);
        }
        generated
    }

    /// Builds one trace into `scratch`, times relative to its start. Returns its
    /// transaction count.
    fn trace(&mut self) -> u64 {
        let mut trace_id = self.rng.random::<u128>();
        while trace_id == 0 {
            trace_id = self.rng.random();
        }
        let slow = self
            .rng
            .random_bool(self.options.slow_rate.clamp(0.0, 1.0))
            .then(|| self.rng.random_range(1_000_000_000..8_000_000_000u64));
        let mut t = TraceState {
            trace_id: trace_id.to_be_bytes(),
            slow,
            transactions: 0,
        };
        let pick = self
            .rng
            .random_range(0..self.roots.last().map_or(1, |r| r.0));
        let (_, svc, ep) = self.roots[self.roots.partition_point(|r| r.0 <= pick)];
        let mut path = self.bufs.pop().unwrap_or_default();
        path.clear();
        crate::render::render(
            self.services[svc].def.endpoints[ep].path,
            &mut self.rng,
            &mut path,
        );
        let incoming = Incoming {
            svc,
            ep,
            parent: None,
            start: 0,
            path: &path,
            caller: None,
        };
        self.entry(&mut t, incoming);
        self.bufs.push(path);
        t.transactions
    }

    /// Shifts the trace in `scratch` to end before `now_ns` and moves its spans into
    /// the groups of `req`.
    fn place_trace(&mut self, req: &mut ExportTraceServiceRequest, now_ns: u64) {
        let last_end = self
            .scratch
            .iter()
            .map(|p| p.span.end_time_unix_nano)
            .max()
            .unwrap_or(0);
        let jitter = self.rng.random_range(0..SPREAD_NS);
        let base = now_ns.saturating_sub(jitter + last_end);
        for p in &mut self.scratch {
            p.span.start_time_unix_nano += base;
            p.span.end_time_unix_nano += base;
            for ev in &mut p.span.events {
                ev.time_unix_nano += base;
            }
        }
        self.scratch.sort_by_key(|p| p.span.end_time_unix_nano);
        for p in self.scratch.drain(..) {
            let mut g = self.slot_group[p.slot];
            if g == NO_GROUP {
                g = req.resource_spans.len() as u32;
                self.slot_group[p.slot] = g;
                let inst = &self.instances[p.slot];
                let mut rs = self.pool.group().unwrap_or_default();
                rs.resource = Some(inst.resource.clone());
                rs.scope_spans.truncate(1);
                if rs.scope_spans.is_empty() {
                    rs.scope_spans.push(ScopeSpans::default());
                }
                let ss = &mut rs.scope_spans[0];
                ss.scope = Some(inst.scope.clone());
                set_string(&mut ss.schema_url, inst.schema_url);
                req.resource_spans.push(rs);
            }
            req.resource_spans[g as usize].scope_spans[0]
                .spans
                .push(p.span);
        }
    }

    /// The service of copy `from`'s application with base index `base`, if in the mix.
    pub(crate) fn peer(&self, from: usize, base: usize) -> Option<usize> {
        let i = self.services[from].copy * SERVICES.len() + base;
        (i < self.services.len()).then_some(i)
    }

    /// A random instance slot of service `svc`.
    pub(crate) fn pick_instance(&mut self, svc: usize) -> usize {
        let slots = self.services[svc].slots.clone();
        self.rng.random_range(slots)
    }

    /// Opens a span at `start` (relative ns) in `scratch`; returns its index and id.
    pub(crate) fn open(
        &mut self,
        t: &TraceState,
        slot: usize,
        kind: SpanKind,
        parent: Option<u64>,
        start: u64,
    ) -> (usize, u64) {
        let mut id = self.rng.random::<u64>();
        while id == 0 {
            id = self.rng.random();
        }
        let mut span = self.pool.span();
        set_bytes(&mut span.trace_id, &t.trace_id);
        set_bytes(&mut span.span_id, &id.to_be_bytes());
        match parent {
            Some(p) => set_bytes(&mut span.parent_span_id, &p.to_be_bytes()),
            None => span.parent_span_id.clear(),
        }
        span.kind = kind as i32;
        span.start_time_unix_nano = start;
        span.end_time_unix_nano = start;
        span.name.clear();
        span.status = None;
        span.flags = FLAGS_LOCAL;
        self.scratch.push(Pending { slot, span });
        (self.scratch.len() - 1, id)
    }

    /// Attribute writer for the span at `idx` of `scratch`.
    pub(crate) fn attrs(&mut self, idx: usize) -> Attrs<'_> {
        Attrs {
            pool: &mut self.pool,
            out: &mut self.scratch[idx].span.attributes,
        }
    }

    /// A log-normal sample in nanoseconds.
    pub(crate) fn sample(&mut self, lat: crate::catalog::Lat) -> u64 {
        // Box–Muller; the tail is cut at 4 sigma (outliers are placed separately).
        let u1: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.random();
        let z = ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()).clamp(-4.0, 4.0);
        (lat.median_ms * 1e6 * (lat.sigma * z).exp()) as u64
    }
}

fn new_instance(
    rng: &mut SmallRng,
    def: &ServiceDef,
    name: &str,
    svc: usize,
    k: usize,
) -> Instance {
    use std::fmt::Write;
    let mut id = String::with_capacity(name.len() + 16);
    let _ = write!(id, "{name}-{:08x}-", rng.random::<u32>() >> 4);
    for _ in 0..5 {
        id.push(char::from(
            b"bcdfghjklmnpqrstvwxz2456789"[rng.random_range(0..27)],
        ));
    }
    let host = format!("node-{}", rng.random_range(1..=4));
    let mut attributes = Vec::new();
    let mut pool = Pool::default();
    let mut a = Attrs {
        pool: &mut pool,
        out: &mut attributes,
    };
    a.str("service.name", name);
    a.str("service.namespace", "shop");
    a.str("service.instance.id", &id);
    a.str("service.version", "1.4.2");
    a.str("host.name", &host);
    a.str("telemetry.sdk.language", def.language);
    a.str("telemetry.sdk.name", "opentelemetry");
    a.str("telemetry.sdk.version", "1.27.0");
    a.str("deployment.environment", "demo");
    let schema_url = match def.http_conv {
        crate::catalog::Conv::Old => "https://opentelemetry.io/schemas/1.17.0",
        crate::catalog::Conv::New => "https://opentelemetry.io/schemas/1.26.0",
    };
    Instance {
        resource: Resource {
            attributes,
            dropped_attributes_count: 0,
            entity_refs: Vec::new(),
        },
        scope: InstrumentationScope {
            name: def.scope.to_string(),
            version: def.scope_version.to_string(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
        },
        schema_url,
        ip: format!("10.0.{}.{}", svc % 250, 10 + k),
    }
}
