//! Builds the spans of one transaction: the entry span, then its steps (methods, SQL,
//! calls into other services, third-party calls, messages), with attributes in the
//! semantic-convention generation of each service. Times are relative to the trace
//! start; every child lies within its parent.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Status};
use rand::Rng;

use super::{Mix, TraceState, FLAGS_REMOTE};
use crate::catalog::{Conv, EntryKind, ExceptionDef, ExternalDef, NameStyle, SqlDef, Step};
use crate::pool::{set_string, Attrs};
use crate::render::render;

/// Per-entry state shared by its steps.
struct EntryCx {
    svc: usize,
    slot: usize,
    /// The transaction fails through a SQL error (on its first SQL span).
    sql_error: bool,
    sql_error_done: bool,
}

/// How an entry is reached.
pub(crate) struct Incoming<'a> {
    pub(crate) svc: usize,
    pub(crate) ep: usize,
    /// The caller's CLIENT or PRODUCER span; `None` for a front-door transaction.
    pub(crate) parent: Option<u64>,
    pub(crate) start: u64,
    /// The concrete request path (or topic).
    pub(crate) path: &'a str,
    /// Instance slot of the calling service, if called over HTTP from the mix.
    pub(crate) caller: Option<usize>,
}

/// Outcome of an entry span, seen by its caller.
pub(crate) struct EntryEnd {
    pub(crate) end: u64,
    pub(crate) status: u16,
}

impl Mix {
    /// Builds an entry span and everything under it.
    pub(crate) fn entry(&mut self, t: &mut TraceState, incoming: Incoming<'_>) -> EntryEnd {
        let Incoming {
            svc,
            ep,
            parent,
            start,
            path,
            caller,
        } = incoming;
        let def = self.services[svc].def;
        let epd = &def.endpoints[ep];
        let slot = self.pick_instance(svc);
        let kind = match epd.kind {
            EntryKind::Http => SpanKind::Server,
            EntryKind::Consumer => SpanKind::Consumer,
        };
        let (idx, span_id) = self.open(t, slot, kind, parent, start);
        if parent.is_some() {
            self.scratch[idx].span.flags = FLAGS_REMOTE;
        }
        t.transactions += 1;
        let failed = self
            .rng
            .random_bool(self.options.error_rate.clamp(0.0, 1.0));
        let mut cx = EntryCx {
            svc,
            slot,
            sql_error: failed && self.rng.random_bool(0.4),
            sql_error_done: false,
        };
        let own = self.sample(epd.own);
        let head = own * 3 / 10;
        let mut end = self.steps(t, &mut cx, span_id, epd.steps, start + head) + (own - head);
        if parent.is_none() {
            if let Some(slow) = t.slow.take() {
                end += slow;
            }
        }
        let status = if failed {
            500
        } else if epd.method == "GET" && epd.route.contains('{') && self.rng.random_bool(0.01) {
            404
        } else {
            200
        };

        let conv = def.http_conv;
        let (route, method) = (epd.route, epd.method);
        let path_only = path.split('?').next().unwrap_or(path);
        let query = path.split_once('?').map(|(_, q)| q);
        let name = &mut self.scratch[idx].span.name;
        match (epd.kind, def.name_style, conv) {
            (EntryKind::Consumer, _, Conv::New) => name.push_str("process "),
            (EntryKind::Consumer, _, Conv::Old) => {}
            (EntryKind::Http, NameStyle::Route, _) => {
                name.push_str(method);
                name.push(' ');
                name.push_str(route);
            }
            (EntryKind::Http, NameStyle::RawPath, _) => {
                name.push_str(method);
                name.push(' ');
                name.push_str(path_only);
            }
            (EntryKind::Http, NameStyle::Method, _) => name.push_str(method),
        }
        if epd.kind == EntryKind::Consumer {
            name.push_str(route);
            if conv == Conv::Old {
                name.push_str(" process");
            }
        }

        let user = (parent.is_none() && self.rng.random_bool(0.6))
            .then(|| self.rng.random_range(1..50_000u32));
        let public_ip = self.rng.random_range(1..255u8);
        let offset = self.rng.random::<u32>() as i64;
        let service_name = self.services[svc].name.as_str();
        let caller = caller.map(|slot| self.instances[slot].ip.as_str());
        let mut a = Attrs {
            pool: &mut self.pool,
            out: &mut self.scratch[idx].span.attributes,
        };
        match (epd.kind, conv) {
            (EntryKind::Consumer, _) => {
                a.str("messaging.system", "kafka");
                a.str("messaging.destination.name", route);
                a.str(
                    if conv == Conv::New {
                        "messaging.operation.type"
                    } else {
                        "messaging.operation"
                    },
                    "process",
                );
                a.str("messaging.kafka.consumer.group", service_name);
                a.int("messaging.kafka.message.offset", offset);
            }
            (EntryKind::Http, Conv::New) => {
                a.str("http.request.method", method);
                a.str("url.path", path_only);
                if let Some(q) = query {
                    a.str("url.query", q);
                }
                a.str("url.scheme", "http");
                if def.sets_route {
                    a.str("http.route", route);
                }
                a.int("http.response.status_code", status as i64);
                a.str("server.address", service_name);
                a.int("server.port", def.port as i64);
                match caller {
                    Some(ip) => a.str("client.address", ip),
                    None => a.fmt("client.address", format_args!("203.0.113.{public_ip}")),
                }
                a.str("network.protocol.version", "1.1");
                if parent.is_none() {
                    a.str("user_agent.original", USER_AGENT);
                }
                if failed {
                    a.str("error.type", "500");
                }
            }
            (EntryKind::Http, Conv::Old) => {
                a.str("http.method", method);
                a.str("http.target", path);
                a.str("http.scheme", "http");
                if parent.is_none() {
                    a.str("http.host", "shop.example.com");
                    a.str("http.user_agent", USER_AGENT);
                } else {
                    a.fmt("http.host", format_args!("{service_name}:{}", def.port));
                }
                if def.sets_route {
                    a.str("http.route", route);
                }
                a.int("http.status_code", status as i64);
                match caller {
                    Some(ip) => a.str("net.sock.peer.addr", ip),
                    None => a.fmt("http.client_ip", format_args!("203.0.113.{public_ip}")),
                }
                a.str("http.flavor", "1.1");
            }
        }
        if let Some(user) = user {
            a.fmt("enduser.id", format_args!("user-{user}"));
        }
        if failed {
            let exc = if cx.sql_error_done {
                &def.sql_exception
            } else {
                &def.exception
            };
            self.fail(idx, end - (own - head) / 2, exc);
        }
        self.scratch[idx].span.end_time_unix_nano = end;
        EntryEnd { end, status }
    }

    /// Runs `steps` one after the other from `cursor`; returns where the last one ended.
    fn steps(
        &mut self,
        t: &mut TraceState,
        cx: &mut EntryCx,
        parent: u64,
        steps: &'static [Step],
        mut cursor: u64,
    ) -> u64 {
        for step in steps {
            cursor = self.step(t, cx, parent, step, cursor);
        }
        cursor
    }

    fn step(
        &mut self,
        t: &mut TraceState,
        cx: &mut EntryCx,
        parent: u64,
        step: &'static Step,
        cursor: u64,
    ) -> u64 {
        let start = cursor + self.rng.random_range(10_000..150_000u64);
        match step {
            Step::Method { name, own, steps } => {
                let own = self.sample(*own);
                let head = own / 3;
                let (idx, id) = self.open(t, cx.slot, SpanKind::Internal, Some(parent), start);
                let end = self.steps(t, cx, id, steps, start + head) + (own - head);
                let conv = self.services[cx.svc].def.http_conv;
                set_string(&mut self.scratch[idx].span.name, name);
                let key = if conv == Conv::New {
                    "code.function.name"
                } else {
                    "code.function"
                };
                self.attrs(idx).str(key, name);
                self.scratch[idx].span.end_time_unix_nano = end;
                end
            }
            Step::Sql(def) => self.sql(t, cx, parent, def, start),
            Step::Call { service, endpoint } => self
                .call(t, cx, parent, *service, *endpoint, start)
                .unwrap_or(cursor),
            Step::External(def) => self.external(t, cx, parent, def, start),
            Step::Produce {
                topic,
                service,
                endpoint,
            } => {
                let (idx, id) = self.open(t, cx.slot, SpanKind::Producer, Some(parent), start);
                let end = start + self.rng.random_range(300_000..2_000_000u64);
                let conv = self.services[cx.svc].def.http_conv;
                let span = &mut self.scratch[idx].span;
                span.end_time_unix_nano = end;
                span.name
                    .push_str(if conv == Conv::New { "send " } else { "" });
                span.name.push_str(topic);
                span.name
                    .push_str(if conv == Conv::New { "" } else { " publish" });
                let mut a = self.attrs(idx);
                a.str("messaging.system", "kafka");
                a.str("messaging.destination.name", topic);
                a.str(
                    if conv == Conv::New {
                        "messaging.operation.type"
                    } else {
                        "messaging.operation"
                    },
                    "publish",
                );
                if let Some(peer) = self.peer(cx.svc, *service) {
                    // Consumed asynchronously, after a queueing delay; may outlive the caller.
                    let lag = self.rng.random_range(2_000_000..80_000_000u64);
                    self.entry(
                        t,
                        Incoming {
                            svc: peer,
                            ep: *endpoint,
                            parent: Some(id),
                            start: end + lag,
                            path: topic,
                            caller: None,
                        },
                    );
                }
                end
            }
            Step::Maybe(p, inner) => {
                if self.rng.random_bool(*p) {
                    self.step(t, cx, parent, inner, cursor)
                } else {
                    cursor
                }
            }
            Step::Repeat(min, max, inner) => {
                let n = self.rng.random_range(*min..=*max);
                let mut c = cursor;
                for _ in 0..n {
                    c = self.step(t, cx, parent, inner, c);
                }
                c
            }
        }
    }

    /// A slow outlier for this call, if the trace has one left (placed on a random
    /// eligible call).
    fn take_slow(&mut self, t: &mut TraceState) -> u64 {
        if t.slow.is_some() && self.rng.random_bool(0.5) {
            t.slow.take().unwrap_or(0)
        } else {
            0
        }
    }

    fn sql(
        &mut self,
        t: &mut TraceState,
        cx: &mut EntryCx,
        parent: u64,
        q: &'static SqlDef,
        start: u64,
    ) -> u64 {
        let def = self.services[cx.svc].def;
        let end = start + self.sample(q.lat) + self.take_slow(t);
        let failed = cx.sql_error && !cx.sql_error_done;
        cx.sql_error_done |= failed;
        let (idx, _) = self.open(t, cx.slot, SpanKind::Client, Some(parent), start);
        set_string(&mut self.scratch[idx].span.name, q.name);
        let port = if def.db_system == "mysql" { 3306 } else { 5432 };
        let mut a = Attrs {
            pool: &mut self.pool,
            out: &mut self.scratch[idx].span.attributes,
        };
        match def.db_conv {
            Conv::Old => {
                a.str("db.system", def.db_system);
                a.str("db.name", def.db_name);
                render(q.text, &mut self.rng, a.slot("db.statement"));
                a.str("db.operation", q.operation);
                a.str("db.sql.table", q.table);
                if def.db_system != "sqlite" {
                    a.str("net.peer.name", def.db_host);
                    a.int("net.peer.port", port);
                    a.str("db.user", "app");
                }
            }
            Conv::New => {
                a.str("db.system.name", def.db_system);
                a.str("db.namespace", def.db_name);
                render(q.text, &mut self.rng, a.slot("db.query.text"));
                a.str("db.operation.name", q.operation);
                a.str("db.collection.name", q.table);
                if def.db_system != "sqlite" {
                    a.str("server.address", def.db_host);
                    a.int("server.port", port);
                }
                if failed {
                    a.str("error.type", def.sql_exception.ty);
                }
            }
        }
        if failed {
            self.fail(idx, end, &def.sql_exception);
        }
        self.scratch[idx].span.end_time_unix_nano = end;
        end
    }

    /// An HTTP call into another service of the mix; `None` if it is not in the mix.
    fn call(
        &mut self,
        t: &mut TraceState,
        cx: &mut EntryCx,
        parent: u64,
        service: usize,
        endpoint: usize,
        start: u64,
    ) -> Option<u64> {
        let peer = self.peer(cx.svc, service)?;
        let (idx, id) = self.open(t, cx.slot, SpanKind::Client, Some(parent), start);
        let pdef = self.services[peer].def;
        let pep = &pdef.endpoints[endpoint];
        let mut path = self.bufs.pop().unwrap_or_default();
        path.clear();
        render(pep.path, &mut self.rng, &mut path);
        let net = self.rng.random_range(200_000..1_500_000u64);
        let incoming = Incoming {
            svc: peer,
            ep: endpoint,
            parent: Some(id),
            start: start + net / 2,
            path: &path,
            caller: Some(cx.slot),
        };
        let res = self.entry(t, incoming);
        let end = res.end + net - net / 2;
        let conv = self.services[cx.svc].def.http_conv;
        let peer_name = self.services[peer].name.as_str();
        let span = &mut self.scratch[idx].span;
        span.end_time_unix_nano = end;
        span.name
            .push_str(if conv == Conv::New { "" } else { "HTTP " });
        span.name.push_str(pep.method);
        let mut a = Attrs {
            pool: &mut self.pool,
            out: &mut span.attributes,
        };
        client_attrs(
            &mut a, conv, pep.method, "http", peer_name, pdef.port, &path, res.status,
        );
        if res.status >= 400 {
            self.scratch[idx].span.status = Some(error_status(http_reason(res.status)));
        }
        self.bufs.push(path);
        Some(end)
    }

    /// A call to a third-party API; a 503 is retried once.
    fn external(
        &mut self,
        t: &mut TraceState,
        cx: &mut EntryCx,
        parent: u64,
        x: &'static ExternalDef,
        start: u64,
    ) -> u64 {
        let conv = self.services[cx.svc].def.http_conv;
        let attempts = if self.rng.random_bool(x.fail_rate) {
            2
        } else {
            1
        };
        let mut path = self.bufs.pop().unwrap_or_default();
        path.clear();
        render(x.path, &mut self.rng, &mut path);
        let mut cursor = start;
        for attempt in 0..attempts {
            let begin = if attempt == 0 {
                start
            } else {
                cursor + self.rng.random_range(50_000_000..200_000_000u64)
            };
            let status = if attempt + 1 < attempts { 503 } else { 200 };
            let mut dur = self.sample(x.lat);
            if status == 503 {
                dur /= 10;
            } else {
                dur += self.take_slow(t);
            }
            let (idx, _) = self.open(t, cx.slot, SpanKind::Client, Some(parent), begin);
            let span = &mut self.scratch[idx].span;
            span.end_time_unix_nano = begin + dur;
            span.name
                .push_str(if conv == Conv::New { "" } else { "HTTP " });
            span.name.push_str(x.method);
            let mut a = Attrs {
                pool: &mut self.pool,
                out: &mut span.attributes,
            };
            client_attrs(&mut a, conv, x.method, "https", x.host, 443, &path, status);
            if attempt > 0 && conv == Conv::New {
                a.int("http.request.resend_count", attempt as i64);
            }
            if status >= 400 {
                self.scratch[idx].span.status = Some(error_status(http_reason(status)));
            }
            cursor = begin + dur;
        }
        self.bufs.push(path);
        cursor
    }

    /// Marks span `idx` failed with an `exception` event at `time`.
    fn fail(&mut self, idx: usize, time: u64, exc: &ExceptionDef) {
        let mut ev = self.pool.event();
        ev.time_unix_nano = time;
        set_string(&mut ev.name, "exception");
        ev.dropped_attributes_count = 0;
        let mut a = Attrs {
            pool: &mut self.pool,
            out: &mut ev.attributes,
        };
        a.str("exception.type", exc.ty);
        a.str("exception.message", exc.message);
        a.str("exception.stacktrace", exc.stacktrace);
        let span = &mut self.scratch[idx].span;
        span.events.push(ev);
        span.status = Some(error_status(exc.message));
    }
}

const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

fn error_status(message: &str) -> Status {
    Status {
        message: message.to_string(),
        code: StatusCode::Error as i32,
    }
}

fn http_reason(status: u16) -> &'static str {
    match status {
        404 => "HTTP 404 Not Found",
        500 => "HTTP 500 Internal Server Error",
        503 => "HTTP 503 Service Unavailable",
        _ => "HTTP error",
    }
}

/// Attributes of an HTTP CLIENT span in the given convention generation.
#[allow(clippy::too_many_arguments)]
fn client_attrs(
    a: &mut Attrs<'_>,
    conv: Conv,
    method: &str,
    scheme: &str,
    host: &str,
    port: u16,
    path: &str,
    status: u16,
) {
    let default_port = matches!((scheme, port), ("http", 80) | ("https", 443));
    let url = |s: &mut String| {
        use std::fmt::Write;
        let _ = if default_port {
            write!(s, "{scheme}://{host}{path}")
        } else {
            write!(s, "{scheme}://{host}:{port}{path}")
        };
    };
    match conv {
        Conv::New => {
            a.str("http.request.method", method);
            url(a.slot("url.full"));
            a.str("server.address", host);
            a.int("server.port", port as i64);
            a.int("http.response.status_code", status as i64);
            if status >= 400 {
                a.fmt("error.type", format_args!("{status}"));
            }
        }
        Conv::Old => {
            a.str("http.method", method);
            url(a.slot("http.url"));
            a.str("net.peer.name", host);
            a.int("net.peer.port", port as i64);
            a.int("http.status_code", status as i64);
        }
    }
}
