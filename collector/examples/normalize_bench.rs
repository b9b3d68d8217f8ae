//! Per-call cost of the normalize stage over a realistic mix of inputs.
//!
//! `cargo run --release -p tern-collector --example normalize_bench`
//! Prints nanoseconds per call; figures only, nothing is asserted.

use std::hint::black_box;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use tern_collector::normalize::{
    endpoint_name, fingerprint, fingerprint_with, hash64, lookup, main_table, normalize_path,
    operation, Attrs, CardinalityGuard, Dialect, Field,
};

const SQL: &[&str] = &[
    "SELECT * FROM users WHERE id = 42",
    "select u.id, u.email, u.created_at from users u where u.email = 'bob@example.com' and u.deleted_at is null limit 1",
    "SELECT o.id, o.status, o.total, o.currency, o.created_at, o.updated_at, c.id AS customer_id, c.name, c.email \
     FROM orders o INNER JOIN customers c ON c.id = o.customer_id \
     WHERE o.created_at >= '2024-01-01 00:00:00' AND o.status IN ('paid', 'shipped', 'delivered') \
     ORDER BY o.created_at DESC LIMIT 50 OFFSET 100",
    "SELECT * FROM products WHERE id IN (101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112)",
    "INSERT INTO events (id, type, payload, created_at) VALUES ($1, $2, $3, $4), ($5, $6, $7, $8), ($9, $10, $11, $12)",
    "UPDATE accounts SET balance = balance - 25.50, updated_at = NOW() WHERE id = 7 AND balance >= 25.50",
    "/* controller:checkout */ DELETE FROM carts WHERE session_id = 'a9f3c2e1b4d5' AND updated_at < now() - interval '7 days'",
    "WITH recent AS (SELECT user_id, count(*) AS n FROM logins WHERE at > ? GROUP BY user_id) \
     SELECT u.name, r.n FROM users u JOIN recent r ON r.user_id = u.id WHERE r.n > ? ORDER BY r.n DESC",
];

const PATHS: &[&str] = &[
    "/api/orders/123/items",
    "/api/v2/users/3f2b8c1e-9d4a-4c1b-8f3e-2a1b0c9d8e7f/profile?fields=name,email",
    "/health",
    "/static/js/app.3f9a8b7c.js",
    "/files/2024-01-31/report-000123.pdf",
    "/oauth/callback?code=aB3dE5fG7hJ9kL1m&state=xyz",
    "/shop/category/electronics/product/987654321/reviews/42",
    "/u/bob@example.com/settings/notifications",
];

fn kv(k: &str, v: Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

/// Runs `f` over `inputs` repeatedly for about `budget` and returns ns per call.
fn per_call<T, R>(inputs: &[T], budget: Duration, mut f: impl FnMut(&T) -> R) -> f64 {
    for x in inputs {
        black_box(f(x)); // warm up
    }
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            for x in inputs {
                black_box(f(x));
            }
        }
        calls += 64 * inputs.len() as u64;
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

fn main() {
    let budget = Duration::from_millis(700);
    let avg_sql = SQL.iter().map(|s| s.len()).sum::<usize>() / SQL.len();
    let avg_path = PATHS.iter().map(|s| s.len()).sum::<usize>() / PATHS.len();
    let server_span = vec![
        kv("http.request.method", Value::StringValue("GET".into())),
        kv("url.path", Value::StringValue("/api/orders/123".into())),
        kv("url.scheme", Value::StringValue("https".into())),
        kv("http.route", Value::StringValue("/api/orders/{id}".into())),
        kv("http.response.status_code", Value::IntValue(200)),
        kv(
            "server.address",
            Value::StringValue("shop.example.com".into()),
        ),
        kv("client.address", Value::StringValue("203.0.113.7".into())),
        kv(
            "user_agent.original",
            Value::StringValue("Mozilla/5.0".into()),
        ),
        kv("network.protocol.version", Value::StringValue("1.1".into())),
        kv("enduser.id", Value::StringValue("u-123".into())),
        kv("tern.cpu_time_us", Value::IntValue(1830)),
        kv("thread.id", Value::IntValue(12)),
    ];
    let client_span = vec![
        kv("http.method", Value::StringValue("POST".into())),
        kv(
            "http.url",
            Value::StringValue("https://payments.example.com/v1/charges?idempotency=abc".into()),
        ),
        kv("http.status_code", Value::StringValue("201".into())),
        kv(
            "net.peer.name",
            Value::StringValue("payments.example.com".into()),
        ),
        kv("net.peer.port", Value::IntValue(443)),
    ];
    let spans = [server_span, client_span];
    let guard = CardinalityGuard::default();
    let endpoints: Vec<String> = PATHS.iter().map(|p| normalize_path(p)).collect();
    for e in &endpoints {
        guard.admit("shop", e.clone());
    }

    let filter = std::env::args().nth(1).unwrap_or_default();
    let bench = |name: &str, run: &mut dyn FnMut() -> f64| {
        if name.contains(filter.as_str()) {
            println!("{name:<44} {:>8.0}", run());
        }
    };
    println!("normalize stage, ns per call (release build, one thread)");
    bench("sql::fingerprint (generic)", &mut || {
        per_call(SQL, budget, |s| fingerprint(black_box(s)))
    });
    bench("sql::fingerprint_with (mysql)", &mut || {
        per_call(SQL, budget, |s| {
            fingerprint_with(black_box(s), Dialect::MySql)
        })
    });
    bench("  vs hash64 of the raw text (a cache key)", &mut || {
        per_call(SQL, budget, |s| hash64(black_box(s).as_bytes()))
    });
    bench("sql::operation", &mut || {
        per_call(SQL, budget, |s| operation(black_box(s)))
    });
    bench("sql::main_table", &mut || {
        per_call(SQL, budget, |s| main_table(black_box(s)))
    });
    bench("endpoint::normalize_path", &mut || {
        per_call(PATHS, budget, |p| normalize_path(black_box(p)))
    });
    bench("endpoint::endpoint_name (no route)", &mut || {
        per_call(PATHS, budget, |p| {
            endpoint_name(None, Some("GET"), Some(black_box(p)), "GET")
        })
    });
    bench("CardinalityGuard::admit (known name)", &mut || {
        per_call(&endpoints, budget, |e| {
            guard.admit("shop", black_box(e.clone()))
        })
    });
    bench("  of which the String clone", &mut || {
        per_call(&endpoints, budget, |e| black_box(e).clone())
    });
    bench("semconv::Attrs::new (12 / 5 attributes)", &mut || {
        per_call(&spans, budget, |a| {
            black_box(Attrs::new(black_box(a))).has(Field::HttpRoute)
        })
    });
    bench("  vs lookup() of 4 fields", &mut || {
        per_call(&spans, budget, |a| {
            for f in [
                Field::HttpMethod,
                Field::HttpStatus,
                Field::HttpRoute,
                Field::ServerAddress,
            ] {
                black_box(lookup(black_box(a), f));
            }
        })
    });
    bench("semconv::Attrs::new + external_target", &mut || {
        per_call(&spans, budget, |a| {
            Attrs::new(black_box(a)).external_target()
        })
    });
    println!(
        "inputs: {} SQL statements (avg {avg_sql} bytes), {} paths (avg {avg_path} bytes)",
        SQL.len(),
        PATHS.len()
    );
    for s in SQL.iter().take(3) {
        println!("  {}", fingerprint(s).text);
    }
}
