//! Cost per span of the writer's CPU work, on the demo workload: protobuf decode of a
//! logged request, and deriving rows. Figures only.
//!
//!     cargo run --release -p tern-collector --example derive_cost

use std::time::{Instant, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tern_collector::model::derive::Deriver;
use tern_loadgen::{Mix, MixOptions};

fn main() {
    let mut mix = Mix::new(1, MixOptions::default());
    let bodies: Vec<Vec<u8>> = (0..200)
        .map(|_| mix.next_request(100, SystemTime::now()).encode_to_vec())
        .collect();
    let spans: usize = bodies
        .iter()
        .map(|b| {
            ExportTraceServiceRequest::decode(&b[..])
                .unwrap()
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum::<usize>()
        })
        .sum();
    let mut deriver = Deriver::new(1000);
    for round in 0..3 {
        let t = Instant::now();
        let decoded: Vec<ExportTraceServiceRequest> = bodies
            .iter()
            .map(|b| ExportTraceServiceRequest::decode(&b[..]).unwrap())
            .collect();
        let decode = t.elapsed();
        let t = Instant::now();
        let mut rows = 0;
        for r in &decoded {
            rows += deriver.derive(r, 0).spans.len();
        }
        let derive = t.elapsed();
        let t = Instant::now();
        let bytes: usize = decoded.iter().map(|r| r.encode_to_vec().len()).sum();
        let encode = t.elapsed();
        println!(
            "round {round}: {spans} spans ({rows} rows, {bytes} bytes): decode {:.0} ns/span, derive {:.0} ns/span, encode {:.0} ns/span",
            decode.as_nanos() as f64 / spans as f64,
            derive.as_nanos() as f64 / spans as f64,
            encode.as_nanos() as f64 / spans as f64,
        );
    }
}
