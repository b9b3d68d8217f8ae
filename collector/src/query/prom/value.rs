//! PromQL values (scalar, instant vector, range vector) and their JSON form, exactly as
//! Prometheus's HTTP API writes them: sample values as strings, timestamps as float
//! seconds.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

/// A label set, `__name__` included. Sorted, so it is its own identity.
pub type Labels = BTreeMap<String, String>;

/// The metric name label.
pub const NAME: &str = "__name__";

/// One series with its samples, `(milliseconds since the epoch, value)`, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// The result of evaluating an expression at one instant.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    String(String),
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

impl Value {
    /// Prometheus's name of the value's type, for errors and `resultType`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(_) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// A sample value as Prometheus writes it (Go's `FormatFloat(v, 'f', -1, 64)`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Milliseconds as Prometheus's float seconds.
pub fn seconds(ms: i64) -> Json {
    json!(ms as f64 / 1000.0)
}

fn point(t: i64, v: f64) -> Json {
    json!([seconds(t), format_value(v)])
}

/// The `data` object of an instant query's answer.
pub fn instant_json(v: &Value, t: i64) -> Json {
    let result = match v {
        Value::Scalar(x) => point(t, *x),
        Value::String(s) => json!([seconds(t), s]),
        Value::Vector(samples) => Json::Array(
            samples
                .iter()
                .map(|s| json!({ "metric": s.labels, "value": point(t, s.value) }))
                .collect(),
        ),
        Value::Matrix(series) => matrix_json(series),
    };
    json!({ "resultType": v.type_name(), "result": result })
}

/// A matrix as Prometheus writes it.
pub fn matrix_json(series: &[Series]) -> Json {
    Json::Array(
        series
            .iter()
            .map(|s| {
                let values: Vec<Json> = s.samples.iter().map(|&(t, v)| point(t, v)).collect();
                json!({ "metric": s.labels, "values": values })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_formatted_like_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
    }
}
