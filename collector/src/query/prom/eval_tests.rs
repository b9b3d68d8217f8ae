//! Unit tests of the evaluator over in-memory series.
use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Evaluates `q` at `t` over `series`, loaded as the real path loads them.
fn eval_on(q: &str, series: &[Series], t: i64) -> Result<Value, EvalError> {
    let expr = promql_parser::parser::parse(q).unwrap();
    let mut data = HashMap::new();
    for need in selectors(&expr)? {
        let picked = series
            .iter()
            .filter(|s| selects(need.selector, &s.labels))
            .cloned()
            .collect();
        data.insert(key(need.selector), picked);
    }
    Evaluator { data: &data }.eval(&expr, t)
}

fn counter(name: &str, svc: &str, values: &[f64]) -> Series {
    Series {
        labels: labels(&[(NAME, name), ("service", svc)]),
        samples: values
            .iter()
            .enumerate()
            .map(|(i, v)| ((i as i64 + 1) * 60_000, *v))
            .collect(),
    }
}

fn data() -> Vec<Series> {
    vec![
        counter("req", "a", &[1.0, 2.0, 4.0]),
        counter("req", "b", &[10.0, 20.0, 40.0]),
        counter("err", "a", &[0.0, 1.0, 1.0]),
    ]
}

fn values(v: Value) -> Vec<(Labels, f64)> {
    let Value::Vector(mut v) = v else {
        panic!("not a vector: {v:?}")
    };
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    v.into_iter().map(|s| (s.labels, s.value)).collect()
}

#[test]
fn an_instant_selector_looks_back_five_minutes_and_no_further() {
    let d = data();
    let at = |t| values(eval_on("req{service=\"a\"}", &d, t).unwrap());
    assert_eq!(at(180_000)[0].1, 4.0);
    assert_eq!(at(180_000 + 300_000)[0].1, 4.0, "the lookback is closed");
    assert!(at(180_001 + 300_000).is_empty());
    assert!(at(59_999).is_empty());
}

#[test]
fn arithmetic_drops_the_metric_name_and_comparison_keeps_it() {
    let d = data();
    let v = values(eval_on("req * 2", &d, 180_000).unwrap());
    assert_eq!(v[0], (labels(&[("service", "a")]), 8.0));
    let v = values(eval_on("req > 5", &d, 180_000).unwrap());
    assert_eq!(v, vec![(labels(&[(NAME, "req"), ("service", "b")]), 40.0)]);
    let v = values(eval_on("req > bool 5", &d, 180_000).unwrap());
    assert_eq!(v.len(), 2);
    assert_eq!(v[0], (labels(&[("service", "a")]), 0.0));
}

#[test]
fn one_to_one_matching_pairs_series_by_their_labels() {
    let d = data();
    let v = values(eval_on("err / req", &d, 180_000).unwrap());
    assert_eq!(v, vec![(labels(&[("service", "a")]), 0.25)]);
    let v = eval_on("err / on() req", &d, 180_000);
    assert!(v.is_err_and(|e| matches!(e, EvalError::Execution(_))));
}

#[test]
fn aggregations_group_by_and_without_labels() {
    let d = data();
    let v = values(eval_on("sum(req)", &d, 180_000).unwrap());
    assert_eq!(v, vec![(Labels::new(), 44.0)]);
    let v = values(eval_on("max by (service) ({__name__=~\"req|err\"})", &d, 180_000).unwrap());
    assert_eq!(v[0], (labels(&[("service", "a")]), 4.0));
    let v = values(eval_on("count without (service) (req)", &d, 180_000).unwrap());
    assert_eq!(v, vec![(Labels::new(), 2.0)]);
    let v = values(eval_on("topk(1, req)", &d, 180_000).unwrap());
    assert_eq!(v[0].0[NAME], "req", "topk keeps the whole label set");
    assert_eq!(v[0].1, 40.0);
}

#[test]
fn offset_and_range_functions_see_the_shifted_window() {
    let d = data();
    let v = values(eval_on("req offset 1m", &d, 180_000).unwrap());
    assert_eq!(v[0].1, 2.0);
    let v = values(eval_on("increase(req[2m])", &d, 180_000).unwrap());
    // Samples at 60, 120, 180 s cover the window [60, 180] exactly: 4 - 1.
    assert_eq!(v[0], (labels(&[("service", "a")]), 3.0));
    let v = values(eval_on("sum_over_time(req[1m] offset 1m)", &d, 180_000).unwrap());
    assert_eq!(v[0].1, 3.0);
}

#[test]
fn unsupported_constructs_are_refused_before_evaluation() {
    let d = data();
    for q in [
        "count_values(\"v\", req)",
        "req @ 100",
        "timestamp(req)",
        "label_join(req, \"a\", \",\", \"service\")",
    ] {
        let e = eval_on(q, &d, 180_000).unwrap_err();
        assert!(e.to_string().contains("not supported"), "{q}: {e}");
    }
}

#[test]
fn a_computed_vector_with_two_series_of_one_label_set_is_an_error() {
    let d = data();
    let e = eval_on(
        "rate({__name__=~\"req|err\", service=\"a\"}[2m])",
        &d,
        180_000,
    )
    .unwrap_err();
    assert!(matches!(e, EvalError::Execution(_)), "{e}");
    // Selectors themselves keep the names apart.
    assert!(eval_on("{__name__=~\"req|err\"}", &d, 180_000).is_ok());
}
