//! Prints a few generated traces as indented call trees, to see what the mix sends.
//!
//! `cargo run -p tern-loadgen --example print_traces -- [traces] [seed]`

use std::collections::HashMap;
use std::time::SystemTime;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use tern_loadgen::{Mix, MixOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let traces: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let mut mix = Mix::new(seed, MixOptions::default());
    let req = mix.next_request(traces, SystemTime::now());
    // span id -> (service, span); children by parent id; roots per trace in order.
    let mut spans: Vec<(String, &Span)> = Vec::new();
    for rs in &req.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
            .map(|v| match v {
                Value::StringValue(s) => s.clone(),
                _ => String::new(),
            })
            .unwrap_or_default();
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                spans.push((service.clone(), s));
            }
        }
    }
    spans.sort_by_key(|(_, s)| s.start_time_unix_nano);
    let mut children: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (i, (_, s)) in spans.iter().enumerate() {
        children.entry(&s.parent_span_id).or_default().push(i);
    }
    for &root in children.get(&[][..]).map(Vec::as_slice).unwrap_or(&[]) {
        print_tree(
            &spans,
            &children,
            root,
            0,
            spans[root].1.start_time_unix_nano,
        );
        println!();
    }
}

fn print_tree(
    spans: &[(String, &Span)],
    children: &HashMap<&[u8], Vec<usize>>,
    i: usize,
    depth: usize,
    t0: u64,
) {
    let (service, s) = &spans[i];
    let kind =
        ["?", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"][s.kind.clamp(0, 5) as usize];
    let dur = (s.end_time_unix_nano - s.start_time_unix_nano) as f64 / 1e6;
    let at = (s.start_time_unix_nano - t0) as f64 / 1e6;
    let detail = s
        .attributes
        .iter()
        .find(|kv| {
            matches!(
                kv.key.as_str(),
                "db.statement" | "db.query.text" | "http.url" | "url.full"
            )
        })
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(v) => Some(v.as_str()),
            _ => None,
        })
        .unwrap_or("");
    let error = if s.status.as_ref().is_some_and(|st| st.code == 2) {
        " ERROR"
    } else {
        ""
    };
    println!(
        "{:indent$}{kind} [{service}] {} +{at:.1}ms {dur:.1}ms{error} {detail}",
        "",
        s.name,
        indent = depth * 2
    );
    if let Some(kids) = children.get(&s.span_id[..]) {
        for &k in kids {
            print_tree(spans, children, k, depth + 1, t0);
        }
    }
}
