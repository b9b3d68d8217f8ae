//! The TraceQL subset Grafana's Tempo query editor generates: one spanset of
//! conditions joined by `&&`, e.g.
//! `{resource.service.name="shop" && name="GET /x" && duration>100ms && span.http.status_code=500}`.
//! Fields: `resource.service.name`, other `resource.*` attributes, `span.*`
//! attributes, unscoped `.*` attributes (span or resource), and the intrinsics `name`, `duration`, `status`, `kind`,
//! `traceDuration`. Operators `= != =~ !~ > >= < <=`. Anything else is refused.

use std::time::Duration;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    /// The ClickHouse form of a non-regex operator.
    pub fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Re => "match",
            Op::NotRe => "NOT match",
        }
    }
}

/// What a condition compares.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// `resource.service.name` (a column).
    Service,
    /// A resource attribute other than the service name.
    Resource(String),
    /// A span attribute (`span.x`).
    Span(String),
    /// An unscoped attribute (`.x`): of the span or of its resource.
    Any(String),
    Name,
    Duration,
    Status,
    Kind,
    TraceDuration,
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Num(f64),
    /// A duration, in microseconds.
    Micros(u64),
    /// `error`, `ok`, `unset`, `server`, … (status and kind keywords).
    Keyword(String),
}

/// One `field op value` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub field: Field,
    pub op: Op,
    pub value: Lit,
}

/// Parses a query of the subset; `Err` names what is not supported.
pub fn parse(q: &str) -> Result<Vec<Cond>, String> {
    let t = tokens(q)?;
    let mut i = 0;
    let expect = |i: &mut usize, want: &str| -> Result<(), String> {
        if t.get(*i).map(String::as_str) == Some(want) {
            *i += 1;
            Ok(())
        } else {
            Err(format!("expected `{want}` in TraceQL query {q:?}"))
        }
    };
    expect(&mut i, "{")?;
    let mut out = Vec::new();
    if t.get(i).map(String::as_str) != Some("}") {
        loop {
            let field = field(t.get(i).ok_or("unexpected end of TraceQL query")?)?;
            let op = match t.get(i + 1).map(String::as_str) {
                Some("=") => Op::Eq,
                Some("!=") => Op::Ne,
                Some("=~") => Op::Re,
                Some("!~") => Op::NotRe,
                Some(">") => Op::Gt,
                Some(">=") => Op::Ge,
                Some("<") => Op::Lt,
                Some("<=") => Op::Le,
                other => return Err(format!("operator {other:?} is not supported in TraceQL")),
            };
            let value = literal(t.get(i + 2).ok_or("missing value in TraceQL query")?)?;
            out.push(Cond { field, op, value });
            i += 3;
            match t.get(i).map(String::as_str) {
                Some("&&") => i += 1,
                Some("}") => break,
                other => {
                    return Err(format!(
                        "{other:?} is not supported in TraceQL (only conditions joined by && in one spanset)"
                    ))
                }
            }
        }
    }
    expect(&mut i, "}")?;
    if i != t.len() {
        return Err("pipelines and several spansets are not supported in TraceQL".into());
    }
    Ok(out)
}

fn field(s: &str) -> Result<Field, String> {
    Ok(match s {
        "resource.service.name" | ".service.name" => Field::Service,
        "name" | ":name" => Field::Name,
        "duration" | "span:duration" => Field::Duration,
        "status" | "span:status" => Field::Status,
        "kind" | "span:kind" => Field::Kind,
        "traceDuration" | "trace:duration" => Field::TraceDuration,
        _ => {
            if let Some(a) = s.strip_prefix("resource.") {
                Field::Resource(a.into())
            } else if let Some(a) = s.strip_prefix("span.") {
                Field::Span(a.into())
            } else if let Some(a) = s.strip_prefix('.') {
                Field::Any(a.into())
            } else {
                return Err(format!("the TraceQL field {s:?} is not supported"));
            }
        }
    })
}

fn literal(s: &str) -> Result<Lit, String> {
    if let Some(body) = s.strip_prefix('"') {
        return Ok(Lit::Str(body.to_string()));
    }
    if let Ok(n) = s.parse::<f64>() {
        return Ok(Lit::Num(n));
    }
    if let Some(d) = go_duration(s) {
        return Ok(Lit::Micros(d.as_micros() as u64));
    }
    if s.chars().all(|c| c.is_ascii_alphabetic()) {
        return Ok(Lit::Keyword(s.to_string()));
    }
    Err(format!("the TraceQL value {s:?} is not supported"))
}

/// A Go-style duration (`100ms`, `1.5s`, `2m`, `250us`, `1h`).
pub fn go_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| c.is_ascii_alphabetic() || c == 'µ')?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    (n >= 0.0).then(|| Duration::from_secs_f64(n * scale))
}

/// Splits into tokens; a string token keeps its opening quote (and is unescaped).
fn tokens(q: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let c: Vec<char> = q.chars().collect();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '"' || ch == '`' {
            let mut s = String::from('"');
            i += 1;
            while i < c.len() && c[i] != ch {
                if c[i] == '\\' && ch == '"' && i + 1 < c.len() {
                    i += 1;
                }
                s.push(c[i]);
                i += 1;
            }
            if i == c.len() {
                return Err("unterminated string in TraceQL query".into());
            }
            i += 1;
            out.push(s);
        } else if "{}".contains(ch) {
            out.push(ch.to_string());
            i += 1;
        } else if "=!<>&|~".contains(ch) {
            let mut s = String::new();
            while i < c.len() && "=!<>&|~".contains(c[i]) {
                s.push(c[i]);
                i += 1;
            }
            out.push(s);
        } else {
            let mut s = String::new();
            while i < c.len() && !c[i].is_whitespace() && !"{}=!<>&|~\"".contains(c[i]) {
                s.push(c[i]);
                i += 1;
            }
            if s.is_empty() {
                return Err(format!("unexpected {ch:?} in TraceQL query"));
            }
            out.push(s);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_grafanas_editor_generates() {
        let c = parse(
            r#"{resource.service.name="shop" && name="GET /x" && duration>100ms && span.http.status_code=500 && status=error}"#,
        )
        .unwrap();
        assert_eq!(c.len(), 5);
        assert_eq!(c[0].field, Field::Service);
        assert_eq!(c[2].value, Lit::Micros(100_000));
        assert_eq!(c[3].field, Field::Span("http.status_code".into()));
        assert_eq!(c[3].value, Lit::Num(500.0));
        assert_eq!(c[4].value, Lit::Keyword("error".into()));
        assert!(parse("{}").unwrap().is_empty());
        assert!(parse("{ .a =~ \"x.*\" }").is_ok());
    }

    #[test]
    fn refuses_what_it_does_not_implement() {
        assert!(parse(r#"{name="a" || name="b"}"#).is_err());
        assert!(parse(r#"{name="a"} | count() > 1"#).is_err());
        assert!(parse(r#"{name="a"} >> {name="b"}"#).is_err());
        assert!(parse(r#"{event.name="x"}"#).is_err());
    }
}
