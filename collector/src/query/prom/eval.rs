//! The PromQL evaluator: evaluates a parsed expression at one instant over series that
//! were loaded beforehand (see [`selectors`]), with Prometheus 2.x semantics: a
//! five-minute lookback for instant selectors, closed `[t - range, t]` windows,
//! metric names dropped by arithmetic and functions, one-to-one and group_left/right
//! vector matching, subqueries at step-aligned instants. What it does not implement
//! is refused with an error, never guessed.

use std::collections::HashMap;

use promql_parser::label::Matchers;
use promql_parser::parser::token::{self, TokenType};
use promql_parser::parser::{
    AggregateExpr, BinaryExpr, Expr, LabelModifier, Offset, VectorMatchCardinality, VectorSelector,
};

use super::functions;
use super::value::{Labels, Sample, Series, Value, NAME};

/// Prometheus's default lookback delta for instant vector selectors.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// The query asks for something outside the supported subset, or is invalid.
    #[error("{0}")]
    BadData(String),
    /// The query is valid but its evaluation failed (e.g. duplicate series in matching).
    #[error("{0}")]
    Execution(String),
}

pub fn unsupported(what: impl std::fmt::Display) -> EvalError {
    EvalError::BadData(format!("{what} is not supported by Tern's PromQL subset"))
}

/// A selector of the expression and the raw time window its data must cover, relative
/// to the evaluation instant: samples in `[t - before_ms, t - offset_ms]`.
pub struct SelectorNeed<'a> {
    pub selector: &'a VectorSelector,
    pub before_ms: i64,
    pub offset_ms: i64,
}

/// The key a selector's loaded series are stored under: its address in the expression.
pub fn key(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

/// Every selector of `e`, with the window it needs; refuses unsupported constructs.
pub fn selectors(e: &Expr) -> Result<Vec<SelectorNeed<'_>>, EvalError> {
    let mut out = Vec::new();
    walk(e, &mut out, 0, 0)?;
    Ok(out)
}

fn offset_ms(vs: &VectorSelector) -> Result<i64, EvalError> {
    if vs.at.is_some() {
        return Err(unsupported("the @ modifier"));
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err(unsupported("`or` inside label matchers"));
    }
    Ok(match &vs.offset {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    })
}

fn duration_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

/// Collects the selectors of `e`. Inside subqueries, `ranges` is the sum of the
/// enclosing subqueries' ranges and `shift` the sum of their offsets: the selectors
/// are evaluated that much earlier.
fn walk<'a>(
    e: &'a Expr,
    out: &mut Vec<SelectorNeed<'a>>,
    ranges: i64,
    shift: i64,
) -> Result<(), EvalError> {
    let walk = |e: &'a Expr, out: &mut Vec<SelectorNeed<'a>>| walk(e, out, ranges, shift);
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::Paren(p) => walk(&p.expr, out),
        Expr::Unary(u) => walk(&u.expr, out),
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier {
                if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                    return Err(unsupported("fill values in vector matching"));
                }
            }
            walk(&b.lhs, out)?;
            walk(&b.rhs, out)
        }
        Expr::Aggregate(a) => {
            let supported = [
                token::T_SUM,
                token::T_AVG,
                token::T_COUNT,
                token::T_GROUP,
                token::T_MIN,
                token::T_MAX,
                token::T_TOPK,
                token::T_BOTTOMK,
                token::T_STDDEV,
                token::T_STDVAR,
                token::T_QUANTILE,
            ];
            if !supported.contains(&a.op.id()) {
                return Err(unsupported(format!("the aggregation `{}`", a.op)));
            }
            if let Some(p) = &a.param {
                walk(p, out)?;
            }
            walk(&a.expr, out)
        }
        Expr::Call(c) => {
            functions::check(c)?;
            c.args.args.iter().try_for_each(|a| walk(a, out))
        }
        Expr::VectorSelector(vs) => {
            let offset_ms = shift + offset_ms(vs)?;
            out.push(SelectorNeed {
                selector: vs,
                before_ms: ranges + offset_ms + LOOKBACK_MS,
                offset_ms,
            });
            Ok(())
        }
        Expr::MatrixSelector(ms) => {
            let offset_ms = shift + offset_ms(&ms.vs)?;
            out.push(SelectorNeed {
                selector: &ms.vs,
                before_ms: ranges + offset_ms + ms.range.as_millis() as i64,
                offset_ms,
            });
            Ok(())
        }
        Expr::Subquery(sq) => {
            if sq.at.is_some() {
                return Err(unsupported("the @ modifier"));
            }
            let range = sq.range.as_millis() as i64;
            self::walk(
                &sq.expr,
                out,
                ranges + range,
                shift + duration_ms(&sq.offset),
            )
        }
        Expr::Extension(_) => Err(unsupported("an extension expression")),
    }
}

/// Whether a label set satisfies a selector (metric name and matchers).
pub fn selects(vs: &VectorSelector, labels: &Labels) -> bool {
    let get = |n: &str| labels.get(n).map(String::as_str).unwrap_or("");
    vs.name.as_deref().is_none_or(|n| get(NAME) == n) && matches_all(&vs.matchers, labels)
}

/// Whether a label set satisfies every matcher (a missing label reads as "").
pub fn matches_all(m: &Matchers, labels: &Labels) -> bool {
    m.matchers
        .iter()
        .all(|m| m.is_match(labels.get(&m.name).map(String::as_str).unwrap_or("")))
}

/// Evaluates expressions over loaded series.
pub struct Evaluator<'d> {
    /// Series per selector ([`key`]), samples oldest first.
    pub data: &'d HashMap<usize, Vec<Series>>,
}

impl Evaluator<'_> {
    fn loaded(&self, vs: &VectorSelector) -> &[Series] {
        self.data.get(&key(vs)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Evaluates `e` at `t` (milliseconds since the epoch).
    pub fn eval(&self, e: &Expr, t: i64) -> Result<Value, EvalError> {
        let v = self.eval_node(e, t)?;
        // Like Prometheus, refuse a computed vector with two series of one label set
        // (e.g. a function that dropped the names of two metrics).
        if let (
            Value::Vector(samples),
            Expr::Call(_) | Expr::Aggregate(_) | Expr::Binary(_) | Expr::Unary(_),
        ) = (&v, e)
        {
            let mut seen = std::collections::HashSet::with_capacity(samples.len());
            if !samples.iter().all(|s| seen.insert(&s.labels)) {
                return Err(EvalError::Execution(
                    "vector cannot contain metrics with the same labelset".into(),
                ));
            }
        }
        Ok(v)
    }

    fn eval_node(&self, e: &Expr, t: i64) -> Result<Value, EvalError> {
        match e {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(v) => Ok(Value::Vector(
                    v.into_iter()
                        .map(|s| Sample {
                            labels: drop_name(s.labels),
                            value: -s.value,
                        })
                        .collect(),
                )),
                other => Err(EvalError::BadData(format!(
                    "unary minus of a {}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => {
                let end = t - offset_ms(vs)?;
                let start = end - LOOKBACK_MS;
                let samples = self
                    .loaded(vs)
                    .iter()
                    .filter_map(|s| {
                        let i = s.samples.partition_point(|&(ts, _)| ts <= end);
                        let &(ts, v) = s.samples[..i].last()?;
                        (ts >= start).then(|| Sample {
                            labels: s.labels.clone(),
                            value: v,
                        })
                    })
                    .collect();
                Ok(Value::Vector(samples))
            }
            Expr::MatrixSelector(ms) => {
                let end = t - offset_ms(&ms.vs)?;
                let start = end - ms.range.as_millis() as i64;
                let series = self
                    .loaded(&ms.vs)
                    .iter()
                    .filter_map(|s| {
                        let a = s.samples.partition_point(|&(ts, _)| ts < start);
                        let b = s.samples.partition_point(|&(ts, _)| ts <= end);
                        (a < b).then(|| Series {
                            labels: s.labels.clone(),
                            samples: s.samples[a..b].to_vec(),
                        })
                    })
                    .collect();
                Ok(Value::Matrix(series))
            }
            Expr::Call(c) => functions::call(self, c, t),
            Expr::Aggregate(a) => self.aggregate(a, t),
            Expr::Binary(b) => self.binary(b, t),
            Expr::Subquery(sq) => {
                // Prometheus's default evaluation interval when the step is omitted.
                let step = sq.step.map_or(60_000, |d| d.as_millis() as i64);
                if step <= 0 {
                    return Err(EvalError::BadData(
                        "a subquery step must be positive".into(),
                    ));
                }
                let end = t - duration_ms(&sq.offset);
                let start = end - sq.range.as_millis() as i64;
                // The first multiple of the step at or after the window's start.
                let mut at = step * start.div_euclid(step);
                if at < start {
                    at += step;
                }
                let mut series: HashMap<Labels, Vec<(i64, f64)>> = HashMap::new();
                while at <= end {
                    match self.eval(&sq.expr, at)? {
                        Value::Scalar(v) => series.entry(Labels::new()).or_default().push((at, v)),
                        Value::Vector(v) => {
                            for x in v {
                                series.entry(x.labels).or_default().push((at, x.value));
                            }
                        }
                        other => {
                            return Err(EvalError::BadData(format!(
                                "a subquery of a {}",
                                other.type_name()
                            )))
                        }
                    }
                    at += step;
                }
                let mut out: Vec<Series> = series
                    .into_iter()
                    .map(|(labels, samples)| Series { labels, samples })
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Ok(Value::Matrix(out))
            }
            Expr::Extension(_) => Err(unsupported("an extension expression")),
        }
    }

    /// Evaluates `e` and requires an instant vector.
    pub fn vector(&self, e: &Expr, t: i64) -> Result<Vec<Sample>, EvalError> {
        match self.eval(e, t)? {
            Value::Vector(v) => Ok(v),
            other => Err(EvalError::BadData(format!(
                "expected an instant vector, got a {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates `e` and requires a scalar.
    pub fn scalar(&self, e: &Expr, t: i64) -> Result<f64, EvalError> {
        match self.eval(e, t)? {
            Value::Scalar(v) => Ok(v),
            other => Err(EvalError::BadData(format!(
                "expected a scalar, got a {}",
                other.type_name()
            ))),
        }
    }

    fn aggregate(&self, a: &AggregateExpr, t: i64) -> Result<Value, EvalError> {
        let op = a.op.id();
        let input = self.vector(&a.expr, t)?;
        let group_of = |l: &Labels| -> Labels {
            match &a.modifier {
                None => Labels::new(),
                Some(LabelModifier::Include(by)) => l
                    .iter()
                    .filter(|(k, _)| by.labels.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                Some(LabelModifier::Exclude(without)) => l
                    .iter()
                    .filter(|(k, _)| *k != NAME && !without.labels.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            }
        };
        // Groups in order of first appearance.
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, Vec<Sample>)> = Vec::new();
        for s in input {
            let g = group_of(&s.labels);
            let i = *index.entry(g.clone()).or_insert_with(|| {
                groups.push((g, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(s);
        }
        if op == token::T_TOPK || op == token::T_BOTTOMK {
            let param = a
                .param
                .as_ref()
                .ok_or_else(|| EvalError::BadData("topk/bottomk need k".into()))?;
            let k = self.scalar(param, t)?;
            if k.is_nan() {
                return Err(EvalError::BadData("k must not be NaN".into()));
            }
            let k = if k < 1.0 {
                return Ok(Value::Vector(vec![]));
            } else {
                k.min(1e9) as usize
            };
            let mut out = Vec::new();
            for (_, mut members) in groups {
                // NaN sorts last in either direction, as Prometheus's heaps keep it last.
                members.sort_by(|x, y| {
                    let (x, y) = (x.value, y.value);
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if op == token::T_TOPK => y.total_cmp(&x),
                        _ => x.total_cmp(&y),
                    }
                });
                members.truncate(k);
                out.extend(members);
            }
            return Ok(Value::Vector(out));
        }
        let q = match (op, &a.param) {
            (token::T_QUANTILE, Some(p)) => self.scalar(p, t)?,
            _ => f64::NAN,
        };
        let mut out = Vec::with_capacity(groups.len());
        for (labels, members) in groups {
            let values = members.iter().map(|s| s.value);
            let value = match op {
                token::T_SUM => values.sum(),
                token::T_AVG => {
                    // Prometheus's incremental mean.
                    let (mut mean, mut n) = (0.0, 0.0);
                    for v in values {
                        n += 1.0;
                        mean += v / n - mean / n;
                    }
                    mean
                }
                token::T_COUNT => members.len() as f64,
                token::T_GROUP => 1.0,
                token::T_STDVAR => functions::stdvar(values),
                token::T_STDDEV => functions::stdvar(values).sqrt(),
                token::T_QUANTILE => functions::quantile(q, values.collect()),
                token::T_MIN => {
                    values.fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m })
                }
                token::T_MAX => {
                    values.fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m })
                }
                _ => return Err(unsupported(format!("the aggregation `{}`", a.op))),
            };
            out.push(Sample { labels, value });
        }
        Ok(Value::Vector(out))
    }

    fn binary(&self, b: &BinaryExpr, t: i64) -> Result<Value, EvalError> {
        let op = b.op;
        let bool_mod = b.return_bool();
        let lhs = self.eval(&b.lhs, t)?;
        let rhs = self.eval(&b.rhs, t)?;
        match (lhs, rhs) {
            (Value::Scalar(l), Value::Scalar(r)) => {
                let (v, keep) = elem(op, l, r)?;
                Ok(Value::Scalar(if op.is_comparison_operator() {
                    keep as u8 as f64
                } else {
                    v
                }))
            }
            (Value::Vector(v), Value::Scalar(s)) => scalar_op(op, v, s, false, bool_mod),
            (Value::Scalar(s), Value::Vector(v)) => scalar_op(op, v, s, true, bool_mod),
            (Value::Vector(l), Value::Vector(r)) => vector_op(b, l, r),
            (l, r) => Err(EvalError::BadData(format!(
                "binary `{op}` between a {} and a {}",
                l.type_name(),
                r.type_name()
            ))),
        }
    }
}

/// Removes the metric name.
pub fn drop_name(mut l: Labels) -> Labels {
    l.remove(NAME);
    l
}

fn drops_name(op: TokenType) -> bool {
    !op.is_comparison_operator() && !op.is_set_operator()
}

/// One arithmetic or comparison operation: the value, and whether a comparison holds.
fn elem(op: TokenType, l: f64, r: f64) -> Result<(f64, bool), EvalError> {
    Ok(match op.id() {
        token::T_ADD => (l + r, true),
        token::T_SUB => (l - r, true),
        token::T_MUL => (l * r, true),
        token::T_DIV => (l / r, true),
        token::T_POW => (l.powf(r), true),
        token::T_MOD => (l % r, true),
        token::T_ATAN2 => (l.atan2(r), true),
        token::T_EQLC => (l, l == r),
        token::T_NEQ => (l, l != r),
        token::T_GTR => (l, l > r),
        token::T_LSS => (l, l < r),
        token::T_GTE => (l, l >= r),
        token::T_LTE => (l, l <= r),
        _ => return Err(unsupported(format!("the operator `{op}`"))),
    })
}

fn scalar_op(
    op: TokenType,
    v: Vec<Sample>,
    s: f64,
    scalar_left: bool,
    bool_mod: bool,
) -> Result<Value, EvalError> {
    if op.is_set_operator() {
        return Err(EvalError::BadData(format!(
            "set operator `{op}` not allowed between a scalar and a vector"
        )));
    }
    let mut out = Vec::with_capacity(v.len());
    for x in v {
        let (l, r) = if scalar_left {
            (s, x.value)
        } else {
            (x.value, s)
        };
        let (mut value, mut keep) = elem(op, l, r)?;
        if op.is_comparison_operator() && scalar_left {
            value = x.value;
        }
        if bool_mod {
            value = keep as u8 as f64;
            keep = true;
        }
        if keep {
            let labels = if drops_name(op) || bool_mod {
                drop_name(x.labels)
            } else {
                x.labels
            };
            out.push(Sample { labels, value });
        }
    }
    Ok(Value::Vector(out))
}

/// The matching signature of a label set under `on(...)` / `ignoring(...)`.
fn signature(l: &Labels, matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(on)) => l
            .iter()
            .filter(|(k, _)| on.labels.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(LabelModifier::Exclude(ign)) => l
            .iter()
            .filter(|(k, _)| *k != NAME && !ign.labels.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        None => drop_name(l.clone()),
    }
}

fn vector_op(b: &BinaryExpr, lhs: Vec<Sample>, rhs: Vec<Sample>) -> Result<Value, EvalError> {
    let op = b.op;
    let modifier = b.modifier.as_ref();
    let matching = modifier.and_then(|m| m.matching.as_ref());
    let card = modifier
        .map(|m| m.card.clone())
        .unwrap_or(VectorMatchCardinality::OneToOne);
    let bool_mod = b.return_bool();
    if op.is_set_operator() {
        let right: std::collections::HashSet<Labels> =
            rhs.iter().map(|s| signature(&s.labels, matching)).collect();
        return Ok(Value::Vector(match op.id() {
            token::T_LAND => lhs
                .into_iter()
                .filter(|s| right.contains(&signature(&s.labels, matching)))
                .collect(),
            token::T_LUNLESS => lhs
                .into_iter()
                .filter(|s| !right.contains(&signature(&s.labels, matching)))
                .collect(),
            _ => {
                let left: std::collections::HashSet<Labels> =
                    lhs.iter().map(|s| signature(&s.labels, matching)).collect();
                let mut out = lhs;
                out.extend(
                    rhs.into_iter()
                        .filter(|s| !left.contains(&signature(&s.labels, matching))),
                );
                out
            }
        }));
    }
    // group_right: the "many" side is the right one; swap so "many" is always on the left.
    let (many, one, swapped) = match card {
        VectorMatchCardinality::OneToMany(_) => (rhs, lhs, true),
        _ => (lhs, rhs, false),
    };
    let mut one_by_sig: HashMap<Labels, Sample> = HashMap::new();
    for s in one {
        let sig = signature(&s.labels, matching);
        if one_by_sig.contains_key(&sig) {
            return Err(EvalError::Execution(format!(
                "found duplicate series for the match group {sig:?} on the {} hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side",
                if swapped { "left" } else { "right" }
            )));
        }
        one_by_sig.insert(sig, s);
    }
    let mut out = Vec::new();
    let mut seen_sigs: std::collections::HashSet<Labels> = Default::default();
    let mut seen_metrics: std::collections::HashSet<Labels> = Default::default();
    for m in many {
        let sig = signature(&m.labels, matching);
        let Some(o) = one_by_sig.get(&sig) else {
            continue;
        };
        let (l, r) = if swapped {
            (o.value, m.value)
        } else {
            (m.value, o.value)
        };
        let (mut value, keep) = elem(op, l, r)?;
        if bool_mod {
            value = keep as u8 as f64;
        } else if !keep {
            continue;
        }
        let mut labels = if drops_name(op) || bool_mod {
            drop_name(m.labels.clone())
        } else {
            m.labels.clone()
        };
        match (&card, matching) {
            (VectorMatchCardinality::OneToOne, Some(LabelModifier::Include(on))) => {
                labels.retain(|k, _| on.labels.contains(k))
            }
            (VectorMatchCardinality::OneToOne, Some(LabelModifier::Exclude(ign))) => {
                labels.retain(|k, _| !ign.labels.contains(k))
            }
            (VectorMatchCardinality::OneToOne, None) => {}
            (
                VectorMatchCardinality::ManyToOne(inc) | VectorMatchCardinality::OneToMany(inc),
                _,
            ) => {
                for name in &inc.labels {
                    match o.labels.get(name) {
                        Some(v) if !v.is_empty() => {
                            labels.insert(name.clone(), v.clone());
                        }
                        _ => {
                            labels.remove(name);
                        }
                    }
                }
            }
            (VectorMatchCardinality::ManyToMany, _) => {
                return Err(unsupported("many-to-many matching"))
            }
        }
        if matches!(card, VectorMatchCardinality::OneToOne) {
            if !seen_sigs.insert(sig) {
                return Err(EvalError::Execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                ));
            }
        } else if !seen_metrics.insert(labels.clone()) {
            return Err(EvalError::Execution(
                "multiple matches for labels: grouping labels must ensure unique matches".into(),
            ));
        }
        out.push(Sample { labels, value });
    }
    Ok(Value::Vector(out))
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
