//! The demo workload (tern-loadgen's traffic model) is valid input: every span passes
//! validation, and it derives the transactions it claims to contain.

use std::time::SystemTime;

use tern_collector::ingest::validate::validate;
use tern_collector::model::derive::Deriver;
use tern_loadgen::{Mix, MixOptions};

#[test]
fn every_span_of_the_demo_workload_passes_validation() {
    let mut mix = Mix::new(7, MixOptions::default());
    let mut deriver = Deriver::new(1000);
    let (mut spans, mut transactions) = (0u64, 0usize);
    for _ in 0..200 {
        let now = SystemTime::now();
        let now_ns = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let mut req = mix.next_request(100, now);
        let verdict = validate(&mut req, now_ns);
        assert_eq!(verdict.rejected, 0, "{}", verdict.message);
        spans += verdict.accepted;
        transactions += deriver
            .derive(&req, (now_ns / 1_000_000) as i64)
            .transactions
            .len();
    }
    assert!(spans > 100_000);
    let per_txn = spans as f64 / transactions as f64;
    assert!(
        (4.0..7.0).contains(&per_txn),
        "{per_txn} spans per transaction"
    );
}
