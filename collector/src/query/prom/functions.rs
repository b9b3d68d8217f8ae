//! The PromQL functions Tern implements, with Prometheus 2.x semantics: `rate`,
//! `increase`, `delta`, `irate` (with Prometheus's extrapolation), `idelta`, `changes`,
//! `resets`, `deriv`, `predict_linear`, the `*_over_time`
//! family, `histogram_quantile`, math functions, `clamp*`, `round`, `sort*`, `absent`,
//! `label_replace`, `scalar`, `vector`, `time`. Any other function is refused.

use promql_parser::parser::{Call, Expr};

use super::eval::{drop_name, unsupported, EvalError, Evaluator};
use super::value::{Labels, Sample, Series, Value};

const SUPPORTED: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "sum_over_time",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
    "present_over_time",
    "absent_over_time",
    "changes",
    "resets",
    "idelta",
    "deriv",
    "predict_linear",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "sort",
    "sort_desc",
    "round",
    "absent",
    "label_replace",
    "histogram_quantile",
    "abs",
    "ceil",
    "floor",
    "sqrt",
    "exp",
    "ln",
    "log2",
    "log10",
    "clamp",
    "clamp_min",
    "clamp_max",
    "scalar",
    "vector",
    "time",
];

/// Refuses a function outside the supported set (before any data is read).
pub fn check(c: &Call) -> Result<(), EvalError> {
    if SUPPORTED.contains(&c.func.name) {
        Ok(())
    } else {
        Err(unsupported(format!("the function `{}`", c.func.name)))
    }
}

fn arg(c: &Call, i: usize) -> Result<&Expr, EvalError> {
    c.args
        .args
        .get(i)
        .map(|b| b.as_ref())
        .ok_or_else(|| EvalError::BadData(format!("`{}` needs argument {}", c.func.name, i + 1)))
}

/// Evaluates a function call at `t`.
pub fn call(ev: &Evaluator, c: &Call, t: i64) -> Result<Value, EvalError> {
    let name = c.func.name;
    match name {
        "time" => Ok(Value::Scalar(t as f64 / 1000.0)),
        "vector" => Ok(Value::Vector(vec![Sample {
            labels: Labels::new(),
            value: ev.scalar(arg(c, 0)?, t)?,
        }])),
        "scalar" => {
            let v = ev.vector(arg(c, 0)?, t)?;
            Ok(Value::Scalar(if v.len() == 1 {
                v[0].value
            } else {
                f64::NAN
            }))
        }
        "sort" | "sort_desc" => {
            let mut v = ev.vector(arg(c, 0)?, t)?;
            // NaN last either way, as Prometheus sorts.
            v.sort_by(|x, y| match (x.value.is_nan(), y.value.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if name == "sort" => x.value.total_cmp(&y.value),
                _ => y.value.total_cmp(&x.value),
            });
            Ok(Value::Vector(v))
        }
        "round" => {
            let to = match c.args.args.get(1) {
                Some(e) => ev.scalar(e, t)?,
                None => 1.0,
            };
            let inv = 1.0 / to;
            Ok(map_vector(ev.vector(arg(c, 0)?, t)?, |x| {
                (x * inv + 0.5).floor() / inv
            }))
        }
        "absent" => {
            if !ev.vector(arg(c, 0)?, t)?.is_empty() {
                return Ok(Value::Vector(vec![]));
            }
            Ok(Value::Vector(vec![Sample {
                labels: absent_labels(arg(c, 0)?),
                value: 1.0,
            }]))
        }
        "label_replace" => label_replace(ev, c, t),
        "quantile_over_time" => {
            let q = ev.scalar(arg(c, 0)?, t)?;
            let Value::Matrix(series) = ev.eval(arg(c, 1)?, t)? else {
                return Err(EvalError::BadData(
                    "`quantile_over_time` needs a range vector".into(),
                ));
            };
            Ok(Value::Vector(
                series
                    .into_iter()
                    .map(|s| Sample {
                        value: quantile(q, s.samples.iter().map(|p| p.1).collect()),
                        labels: drop_name(s.labels),
                    })
                    .collect(),
            ))
        }
        "histogram_quantile" => {
            let q = ev.scalar(arg(c, 0)?, t)?;
            Ok(Value::Vector(histogram_quantile(
                q,
                ev.vector(arg(c, 1)?, t)?,
            )))
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let v = ev.vector(arg(c, 0)?, t)?;
            let (lo, hi) = match name {
                "clamp" => (ev.scalar(arg(c, 1)?, t)?, ev.scalar(arg(c, 2)?, t)?),
                "clamp_min" => (ev.scalar(arg(c, 1)?, t)?, f64::INFINITY),
                _ => (f64::NEG_INFINITY, ev.scalar(arg(c, 1)?, t)?),
            };
            if lo > hi {
                return Ok(Value::Vector(vec![]));
            }
            Ok(map_vector(v, |x| x.max(lo).min(hi)))
        }
        "abs" | "ceil" | "floor" | "sqrt" | "exp" | "ln" | "log2" | "log10" => {
            let f: fn(f64) -> f64 = match name {
                "abs" => f64::abs,
                "ceil" => f64::ceil,
                "floor" => f64::floor,
                "sqrt" => f64::sqrt,
                "exp" => f64::exp,
                "ln" => f64::ln,
                "log2" => f64::log2,
                _ => f64::log10,
            };
            Ok(map_vector(ev.vector(arg(c, 0)?, t)?, f))
        }
        _ => {
            let (range_ms, offset) = match strip_parens(arg(c, 0)?) {
                Expr::MatrixSelector(ms) => (ms.range.as_millis() as i64, &ms.vs.offset),
                Expr::Subquery(sq) => (sq.range.as_millis() as i64, &sq.offset),
                _ => return Err(EvalError::BadData(format!("`{name}` needs a range vector"))),
            };
            let offset = match offset {
                Some(promql_parser::parser::Offset::Pos(d)) => d.as_millis() as i64,
                Some(promql_parser::parser::Offset::Neg(d)) => -(d.as_millis() as i64),
                None => 0,
            };
            let Value::Matrix(series) = ev.eval(arg(c, 0)?, t)? else {
                return Err(EvalError::BadData(format!("`{name}` needs a range vector")));
            };
            if name == "absent_over_time" {
                if !series.is_empty() {
                    return Ok(Value::Vector(vec![]));
                }
                return Ok(Value::Vector(vec![Sample {
                    labels: absent_labels(arg(c, 0)?),
                    value: 1.0,
                }]));
            }
            let seconds = match name {
                "predict_linear" => ev.scalar(arg(c, 1)?, t)?,
                _ => f64::NAN,
            };
            let end = t - offset;
            let out = series
                .into_iter()
                .filter_map(|s| {
                    let value = if name == "predict_linear" {
                        let (slope, intercept) = linear_regression(&s.samples, t)?;
                        slope * seconds + intercept
                    } else {
                        over_range(name, &s, end - range_ms, end)?
                    };
                    // Prometheus 2.x keeps the name for last_over_time only.
                    let labels = if name == "last_over_time" {
                        s.labels
                    } else {
                        drop_name(s.labels)
                    };
                    Some(Sample { labels, value })
                })
                .collect();
            Ok(Value::Vector(out))
        }
    }
}

/// The labels `absent()` gives: the equality matchers of a selector argument.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match strip_parens(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::new(),
    };
    vs.matchers
        .matchers
        .iter()
        .filter(|m| m.op == promql_parser::label::MatchOp::Equal && m.name != super::value::NAME)
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect()
}

/// Least-squares slope (per second) and intercept at `at` (ms) of the samples;
/// `None` with fewer than two.
fn linear_regression(v: &[(i64, f64)], at: i64) -> Option<(f64, f64)> {
    if v.len() < 2 {
        return None;
    }
    let first = v[0].1;
    if v.iter().all(|p| p.1 == first) {
        return Some(if first.is_infinite() {
            (f64::NAN, f64::NAN)
        } else {
            (0.0, first)
        });
    }
    let (mut n, mut sx, mut sy, mut sxy, mut sx2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(t, y) in v {
        let x = (t - at) as f64 / 1e3;
        n += 1.0;
        sx += x;
        sy += y;
        sxy += x * y;
        sx2 += x * x;
    }
    let slope = (sxy - sx * sy / n) / (sx2 - sx * sx / n);
    Some((slope, sy / n - slope * sx / n))
}

fn strip_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip_parens(&p.expr),
        other => other,
    }
}

fn map_vector(v: Vec<Sample>, f: impl Fn(f64) -> f64) -> Value {
    Value::Vector(
        v.into_iter()
            .map(|s| Sample {
                labels: drop_name(s.labels),
                value: f(s.value),
            })
            .collect(),
    )
}

/// A range function over the samples of one series in `[start, end]`.
fn over_range(name: &str, s: &Series, start: i64, end: i64) -> Option<f64> {
    let v = &s.samples;
    if v.is_empty() {
        return None;
    }
    let values = v.iter().map(|&(_, x)| x);
    match name {
        "rate" => extrapolated(v, start, end, true, true),
        "increase" => extrapolated(v, start, end, true, false),
        "delta" => extrapolated(v, start, end, false, false),
        "irate" => {
            if v.len() < 2 {
                return None;
            }
            let (t1, a) = v[v.len() - 2];
            let (t2, b) = v[v.len() - 1];
            let diff = if b < a { b } else { b - a };
            if t2 == t1 {
                return None;
            }
            Some(diff / ((t2 - t1) as f64 / 1000.0))
        }
        "sum_over_time" => Some(values.sum()),
        "present_over_time" => Some(1.0),
        "changes" | "resets" => {
            let mut count = 0.0;
            for w in v.windows(2) {
                let (prev, cur) = (w[0].1, w[1].1);
                let counted = if name == "changes" {
                    cur != prev && !(cur.is_nan() && prev.is_nan())
                } else {
                    cur < prev
                };
                count += counted as u8 as f64;
            }
            Some(count)
        }
        "idelta" => (v.len() >= 2).then(|| v[v.len() - 1].1 - v[v.len() - 2].1),
        "deriv" => linear_regression(v, v[0].0).map(|(slope, _)| slope),
        "stdvar_over_time" => Some(stdvar(values)),
        "stddev_over_time" => Some(stdvar(values).sqrt()),
        "count_over_time" => Some(v.len() as f64),
        "last_over_time" => Some(v[v.len() - 1].1),
        "avg_over_time" => {
            let (mut mean, mut n) = (0.0, 0.0);
            for x in values {
                n += 1.0;
                mean += x / n - mean / n;
            }
            Some(mean)
        }
        "min_over_time" => {
            Some(values.fold(f64::NAN, |m, x| if m.is_nan() || x < m { x } else { m }))
        }
        "max_over_time" => {
            Some(values.fold(f64::NAN, |m, x| if m.is_nan() || x > m { x } else { m }))
        }
        _ => None,
    }
}

/// Prometheus's `extrapolatedRate`: the increase between the first and last samples
/// (counter resets corrected), extrapolated to the window's edges when the samples
/// come close to them, never below zero for counters.
fn extrapolated(v: &[(i64, f64)], start: i64, end: i64, counter: bool, rate: bool) -> Option<f64> {
    if v.len() < 2 {
        return None;
    }
    let (first_t, first_v) = v[0];
    let (last_t, last_v) = v[v.len() - 1];
    let mut result = last_v - first_v;
    if counter {
        let mut prev = first_v;
        for &(_, x) in &v[1..] {
            if x < prev {
                result += prev;
            }
            prev = x;
        }
    }
    let mut to_start = (first_t - start) as f64 / 1000.0;
    let mut to_end = (end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let average = sampled / (v.len() - 1) as f64;
    if counter && result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    to_end = if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    interval += to_end;
    result *= interval / sampled;
    if rate {
        result /= (end - start) as f64 / 1000.0;
    }
    Some(result)
}

/// Population variance, with Welford's running mean (as Prometheus computes it).
pub fn stdvar(values: impl Iterator<Item = f64>) -> f64 {
    let (mut n, mut mean, mut aux) = (0.0, 0.0, 0.0);
    for v in values {
        n += 1.0;
        let delta = v - mean;
        mean += delta / n;
        aux += delta * (v - mean);
    }
    aux / n
}

/// Prometheus's `quantile`: linear interpolation between the closest ranks.
pub fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// `label_replace(v, dst, replacement, src, regex)`: where the anchored regex matches
/// the `src` value, sets `dst` to the expanded replacement (removed when empty).
fn label_replace(ev: &Evaluator, c: &Call, t: i64) -> Result<Value, EvalError> {
    let text = |i: usize| -> Result<String, EvalError> {
        match ev.eval(arg(c, i)?, t)? {
            Value::String(s) => Ok(s),
            _ => Err(EvalError::BadData(
                "label_replace takes string arguments".into(),
            )),
        }
    };
    let (dst, replacement, src, re) = (text(1)?, text(2)?, text(3)?, text(4)?);
    let re = regex::Regex::new(&format!("^(?:{re})$")).map_err(|e| {
        EvalError::BadData(format!(
            "invalid regular expression in label_replace(): {e}"
        ))
    })?;
    let mut out = Vec::new();
    for mut s in ev.vector(arg(c, 0)?, t)? {
        let value = s.labels.get(&src).cloned().unwrap_or_default();
        if let Some(caps) = re.captures(&value) {
            let mut new = String::new();
            caps.expand(&replacement, &mut new);
            if new.is_empty() {
                s.labels.remove(&dst);
            } else {
                s.labels.insert(dst.clone(), new);
            }
        }
        out.push(s);
    }
    Ok(Value::Vector(out))
}

fn parse_le(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// `histogram_quantile(q, buckets)`: groups the buckets by their labels without `le`
/// (and the metric name), and interpolates linearly inside the bucket holding the rank.
pub fn histogram_quantile(q: f64, v: Vec<Sample>) -> Vec<Sample> {
    let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
    for s in v {
        let Some(le) = s.labels.get("le").and_then(|l| parse_le(l)) else {
            continue;
        };
        let mut labels = drop_name(s.labels);
        labels.remove("le");
        match groups.iter_mut().find(|(l, _)| *l == labels) {
            Some((_, b)) => b.push((le, s.value)),
            None => groups.push((labels, vec![(le, s.value)])),
        }
    }
    groups
        .into_iter()
        .map(|(labels, buckets)| Sample {
            labels,
            value: bucket_quantile(q, buckets),
        })
        .collect()
}

/// Prometheus's `bucketQuantile` over `(upper bound, cumulative count)` pairs.
pub fn bucket_quantile(q: f64, mut b: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    if b.last().is_none_or(|l| l.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Coalesce equal bounds, then make the counts monotonic.
    let mut c: Vec<(f64, f64)> = Vec::with_capacity(b.len());
    for (le, n) in b {
        match c.last_mut() {
            Some(last) if last.0 == le => last.1 += n,
            _ => c.push((le, n)),
        }
    }
    let mut max = f64::NEG_INFINITY;
    for x in c.iter_mut() {
        if x.1 > max {
            max = x.1;
        } else {
            x.1 = max;
        }
    }
    if c.len() < 2 {
        return f64::NAN;
    }
    let observations = c[c.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let i = c[..c.len() - 1].partition_point(|x| x.1 < rank);
    if i == c.len() - 1 {
        return c[c.len() - 2].0;
    }
    if i == 0 && c[0].0 <= 0.0 {
        return c[0].0;
    }
    let (mut start, end, mut count) = (0.0, c[i].0, c[i].1);
    if i > 0 {
        start = c[i - 1].0;
        count -= c[i - 1].1;
        rank -= c[i - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_extrapolates_to_the_window_edges_like_prometheus() {
        // Samples every 60 s, +60 per minute: rate is exactly 1/s whatever the window.
        let v: Vec<(i64, f64)> = (1..=5).map(|i| (i * 60_000, 60.0 * i as f64)).collect();
        let r = extrapolated(&v, 30_000, 330_000, true, true).unwrap();
        assert!((r - 1.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn increase_corrects_counter_resets() {
        let v = vec![(0, 10.0), (60_000, 20.0), (120_000, 5.0)];
        // 10 → 20 (+10), reset, 0 → 5 (+5): 15 over 120 s, window exactly covered.
        let r = extrapolated(&v, 0, 120_000, true, false).unwrap();
        assert!((r - 15.0).abs() < 1e-9, "{r}");
    }

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        let b = vec![(0.1, 50.0), (0.2, 100.0), (f64::INFINITY, 100.0)];
        assert!((bucket_quantile(0.5, b.clone()) - 0.1).abs() < 1e-12);
        assert!((bucket_quantile(0.75, b.clone()) - 0.15).abs() < 1e-12);
        assert!(bucket_quantile(0.5, vec![(0.1, 1.0)]).is_nan());
        assert_eq!(bucket_quantile(1.0, b), 0.2);
    }
}
