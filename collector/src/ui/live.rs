//! `/api/v1/live`: one server-sent event (`tick`) per second with the live numbers, and
//! `/api/v1/live/now`: the same numbers once, as plain JSON (without points).
//!
//! A tick holds: per-service and total rates over the last [`RATE_SECS`] whole seconds
//! (TPS, average and p95 response time, error rate) from the per-second windows; the
//! totals of each of the last [`SERIES_SECS`] seconds (late arrivals change recent
//! seconds, so every tick resends them); the active-service equalizer (running
//! transactions per service by elapsed band); and the transactions finished since the
//! previous tick as columnar X-View points.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::Stream;
use serde::Serialize;
use serde_json::{json, Value};

use super::UiState;
use crate::aggregate::LivePoint;
use crate::query::{params::parse, ApiError};

/// Seconds the rates are computed over.
pub const RATE_SECS: i64 = 5;
/// Seconds of per-second totals in every tick.
pub const SERIES_SECS: i64 = 60;
/// Most points sent in one tick (the newest when more finished).
pub const MAX_POINTS_PER_TICK: usize = 20_000;
/// Upper bounds of the equalizer's elapsed bands, in ms (the last band is open).
pub const BANDS_MS: [f64; 3] = [1000.0, 3000.0, 8000.0];

/// The X-View's columnar points plus the labels the live view filters on.
#[derive(Serialize, Default)]
struct Points {
    #[serde(flatten)]
    points: crate::query::xview::Points,
    service: Vec<String>,
    instance: Vec<String>,
    endpoint: Vec<String>,
}

impl Points {
    fn from(points: Vec<LivePoint>) -> Points {
        let mut p = Points::default();
        for x in points {
            p.points.push(x.end_ms, x.elapsed_ms, x.error, x.id);
            p.service.push(x.service);
            p.instance.push(x.instance);
            p.endpoint.push(x.endpoint);
        }
        p
    }
}

/// Running transactions per service by elapsed band: `<1 s`, `1–3 s`, `3–8 s`, `>8 s`.
fn equalizer(s: &UiState) -> Value {
    let mut per: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    let mut total = [0u64; 4];
    for a in s.live.active(None) {
        let band = BANDS_MS
            .iter()
            .position(|b| a.elapsed_ms < *b)
            .unwrap_or(BANDS_MS.len());
        per.entry(a.service).or_default()[band] += 1;
        total[band] += 1;
    }
    let services: Vec<Value> = per
        .into_iter()
        .map(|(service, counts)| json!({ "service": service, "counts": counts }))
        .collect();
    json!({ "bands": ["<1s", "1-3s", "3-8s", ">8s"], "total": total, "services": services })
}

/// The numbers of one tick, without points.
fn numbers(s: &UiState, now_ms: i64) -> serde_json::Map<String, Value> {
    let (services, total) = s.windows.rates(now_ms, RATE_SECS);
    let mut m = serde_json::Map::new();
    m.insert("t_ms".into(), json!(now_ms));
    m.insert("window_secs".into(), json!(RATE_SECS));
    m.insert("total".into(), json!(total));
    m.insert("services".into(), json!(services));
    m.insert(
        "seconds".into(),
        json!(s.windows.seconds(now_ms, SERIES_SECS)),
    );
    m.insert("active".into(), equalizer(s));
    m
}

/// `GET /api/v1/live/now`
pub async fn now(State(s): State<Arc<UiState>>) -> Json<Value> {
    Json(Value::Object(numbers(&s, crate::query::now_ms())))
}

/// Parameters of `/api/v1/live`.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LiveParams {
    /// The first tick also carries the points that ended in the last N seconds (at most
    /// [`MAX_BACKFILL_SECS`]), so a view that loaded the store a moment ago has no gap.
    backfill_secs: Option<u32>,
}

/// Most seconds of points a new stream may ask for.
pub const MAX_BACKFILL_SECS: u32 = 60;

/// `GET /api/v1/live`: a `tick` event every second until the client leaves or the
/// collector shuts down.
pub async fn stream(
    State(s): State<Arc<UiState>>,
    RawQuery(q): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let p: LiveParams = parse(q.as_deref())?;
    let backfill_secs = p.backfill_secs.unwrap_or(0);
    if backfill_secs > MAX_BACKFILL_SECS {
        return Err(ApiError::BadRequest(format!(
            "backfill_secs must be at most {MAX_BACKFILL_SECS}"
        )));
    }
    let mut iv = tokio::time::interval(Duration::from_secs(1));
    iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (backfill, seq) = if backfill_secs > 0 {
        let cutoff = crate::query::now_ms() - i64::from(backfill_secs) * 1000;
        s.windows.points_ending_after(cutoff, MAX_POINTS_PER_TICK)
    } else {
        (Vec::new(), s.windows.next_seq())
    };
    let stop = s.shutdown.clone();
    let events = futures::stream::unfold(
        (s, seq, iv, stop, backfill),
        |(s, seq, mut iv, mut stop, backfill)| async move {
            if *stop.borrow() {
                return None;
            }
            tokio::select! {
                _ = iv.tick() => {}
                _ = stop.wait_for(|v| *v) => return None,
            }
            let now_ms = crate::query::now_ms();
            let (mut points, next) = s.windows.points_since(seq, MAX_POINTS_PER_TICK);
            let missed = (next - seq).saturating_sub(points.len() as u64);
            if !backfill.is_empty() {
                let mut all = backfill;
                all.append(&mut points);
                points = all;
            }
            let mut m = numbers(&s, now_ms);
            m.insert("points".into(), json!(Points::from(points)));
            m.insert("points_dropped".into(), json!(missed));
            let event = Event::default()
                .event("tick")
                .data(Value::Object(m).to_string());
            Some((Ok(event), (s, next, iv, stop, Vec::new())))
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
