//! The ClickHouse schema, as versioned migrations. The same DDL runs on the embedded
//! engine and on a server.
//!
//! Cost choices (bytes per stored span is a tracked figure, see docs/benchmarks.md):
//! spans are ordered by trace id, so the spans of one trace sit together (trace by id is a
//! primary-key lookup, and ids, names and attributes of a trace compress against each
//! other); ZSTD everywhere, Delta/T64 on times and durations, LowCardinality on names.
//! Transactions are ordered by (service, end time) for the X-View. Minute rollups are
//! AggregatingMergeTree tables fed by materialized views: every column merges by sum or
//! max and the latency histogram by `sumMap` over fixed log-scale buckets, so rollups
//! written by several collectors, or at several times, merge exactly. The histogram is a
//! `SimpleAggregateFunction` (plain arrays), not an `AggregateFunction` state: merging
//! states cost 230 ms for an hour of 600 endpoints, plain arrays 30 ms. Rollups are
//! sorted by minute first: dashboards ask for a time range, and this reads only it.

/// One migration: a version, a name, and its statements (`{db}`, `{ttl_days}` and
/// `{rollup_ttl_days}` are substituted).
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub statements: &'static [&'static str],
}

/// Histogram buckets per doubling of the elapsed time: bucket `i` holds elapsed times
/// in `(2^((i-1)/8), 2^(i/8)]` microseconds, so a percentile read from it is within
/// about ±4.5 % of the true value.
pub const BUCKETS_PER_DOUBLING: f64 = 8.0;

/// Upper bound, in microseconds, of histogram bucket `i`.
pub fn bucket_upper_us(i: u16) -> f64 {
    (i as f64 / BUCKETS_PER_DOUBLING).exp2()
}

/// All migrations, oldest first. Never edit a released one: add a new version.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "spans, transactions, fingerprints, resources and minute rollups",
    statements: &[
        r#"CREATE TABLE IF NOT EXISTS {db}.spans (
            trace_id FixedString(16) CODEC(ZSTD(3)),
            span_id FixedString(8) CODEC(ZSTD(3)),
            parent_span_id FixedString(8) CODEC(ZSTD(3)),
            start_us DateTime64(6) CODEC(Delta, ZSTD(3)),
            duration_us UInt64 CODEC(T64, ZSTD(3)),
            service LowCardinality(String) CODEC(ZSTD(3)),
            instance LowCardinality(String) CODEC(ZSTD(3)),
            name LowCardinality(String) CODEC(ZSTD(3)),
            kind UInt8 CODEC(ZSTD(3)),
            category UInt8 CODEC(ZSTD(3)),
            status UInt8 CODEC(ZSTD(3)),
            status_message String CODEC(ZSTD(3)),
            error_type LowCardinality(String) CODEC(ZSTD(3)),
            sql_hash UInt64 CODEC(ZSTD(3)),
            target LowCardinality(String) CODEC(ZSTD(3)),
            scope LowCardinality(String) CODEC(ZSTD(3)),
            attributes Map(LowCardinality(String), String) CODEC(ZSTD(3)),
            events String CODEC(ZSTD(3))
        ) ENGINE = MergeTree
        PARTITION BY toDate(start_us)
        ORDER BY (trace_id, span_id)
        TTL toDateTime(start_us) + INTERVAL {ttl_days} DAY
        SETTINGS non_replicated_deduplication_window = 1000"#,
        r#"CREATE TABLE IF NOT EXISTS {db}.transactions (
            end_ms DateTime64(3) CODEC(DoubleDelta, ZSTD(1)),
            elapsed_us UInt64 CODEC(T64, ZSTD(1)),
            service LowCardinality(String),
            instance LowCardinality(String),
            endpoint LowCardinality(String),
            http_method LowCardinality(String),
            http_status UInt16 CODEC(T64, ZSTD(1)),
            error UInt8 CODEC(T64, ZSTD(1)),
            error_type LowCardinality(String),
            error_message String CODEC(ZSTD(3)),
            cpu_us UInt64 CODEC(T64, ZSTD(1)),
            sql_count UInt32 CODEC(T64, ZSTD(1)),
            sql_us UInt64 CODEC(T64, ZSTD(1)),
            ext_count UInt32 CODEC(T64, ZSTD(1)),
            ext_us UInt64 CODEC(T64, ZSTD(1)),
            fetch_us UInt64 CODEC(T64, ZSTD(1)),
            client_address String CODEC(ZSTD(3)),
            user_id String CODEC(ZSTD(3)),
            trace_id FixedString(16) CODEC(ZSTD(1)),
            span_id FixedString(8) CODEC(ZSTD(1)),
            INDEX trace_idx trace_id TYPE bloom_filter(0.01) GRANULARITY 1
        ) ENGINE = MergeTree
        PARTITION BY toDate(end_ms)
        ORDER BY (service, end_ms)
        TTL toDateTime(end_ms) + INTERVAL {ttl_days} DAY
        SETTINGS non_replicated_deduplication_window = 1000"#,
        r#"CREATE TABLE IF NOT EXISTS {db}.sql_fingerprints (
            sql_hash UInt64,
            fingerprint String CODEC(ZSTD(3)),
            db_system LowCardinality(String)
        ) ENGINE = ReplacingMergeTree ORDER BY sql_hash"#,
        r#"CREATE TABLE IF NOT EXISTS {db}.resources (
            service LowCardinality(String),
            instance LowCardinality(String),
            seen_ms DateTime64(3),
            attributes Map(LowCardinality(String), String)
        ) ENGINE = ReplacingMergeTree(seen_ms) ORDER BY (service, instance)"#,
        r#"CREATE TABLE IF NOT EXISTS {db}.endpoint_minutes (
            minute DateTime CODEC(DoubleDelta, ZSTD(1)),
            service LowCardinality(String),
            endpoint LowCardinality(String),
            instance LowCardinality(String),
            calls SimpleAggregateFunction(sum, UInt64),
            errors SimpleAggregateFunction(sum, UInt64),
            elapsed_sum_us SimpleAggregateFunction(sum, UInt64),
            elapsed_max_us SimpleAggregateFunction(max, UInt64),
            cpu_us SimpleAggregateFunction(sum, UInt64),
            sql_count SimpleAggregateFunction(sum, UInt64),
            sql_us SimpleAggregateFunction(sum, UInt64),
            ext_count SimpleAggregateFunction(sum, UInt64),
            ext_us SimpleAggregateFunction(sum, UInt64),
            histogram SimpleAggregateFunction(sumMap, Tuple(Array(UInt16), Array(UInt64)))
        ) ENGINE = AggregatingMergeTree
        PARTITION BY toYYYYMM(minute)
        ORDER BY (minute, service, endpoint, instance)
        TTL minute + INTERVAL {rollup_ttl_days} DAY
        SETTINGS non_replicated_deduplication_window = 1000"#,
        r#"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.endpoint_minutes_mv TO {db}.endpoint_minutes AS
        SELECT toStartOfMinute(end_ms) AS minute, service, endpoint, instance,
            count() AS calls, sum(toUInt64(error)) AS errors,
            sum(elapsed_us) AS elapsed_sum_us, max(elapsed_us) AS elapsed_max_us,
            sum(cpu_us) AS cpu_us,
            sum(toUInt64(sql_count)) AS sql_count, sum(sql_us) AS sql_us,
            sum(toUInt64(ext_count)) AS ext_count, sum(ext_us) AS ext_us,
            sumMap([toUInt16(ceil(log2(greatest(elapsed_us, 1)) * 8))], [toUInt64(1)]) AS histogram
        FROM {db}.transactions
        GROUP BY minute, service, endpoint, instance"#,
        r#"CREATE TABLE IF NOT EXISTS {db}.call_minutes (
            minute DateTime CODEC(DoubleDelta, ZSTD(1)),
            category UInt8,
            service LowCardinality(String),
            target LowCardinality(String),
            sql_hash UInt64,
            name LowCardinality(String),
            calls SimpleAggregateFunction(sum, UInt64),
            errors SimpleAggregateFunction(sum, UInt64),
            total_us SimpleAggregateFunction(sum, UInt64),
            max_us SimpleAggregateFunction(max, UInt64)
        ) ENGINE = AggregatingMergeTree
        PARTITION BY toYYYYMM(minute)
        ORDER BY (minute, category, service, target, sql_hash, name)
        TTL minute + INTERVAL {rollup_ttl_days} DAY
        SETTINGS non_replicated_deduplication_window = 1000"#,
        r#"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.call_minutes_mv TO {db}.call_minutes AS
        SELECT toStartOfMinute(start_us) AS minute, category, service, target, sql_hash,
            if(category = 2, '', name) AS name,
            count() AS calls, countIf(status = 2) AS errors,
            sum(duration_us) AS total_us, max(duration_us) AS max_us
        FROM {db}.spans
        WHERE category IN (2, 3)
        GROUP BY minute, category, service, target, sql_hash, name"#,
    ],
}];

/// Substitutes the placeholders of a migration statement.
pub fn render(statement: &str, db: &str, ttl_days: u32, rollup_ttl_days: u32) -> String {
    statement
        .replace("{db}", db)
        .replace("{ttl_days}", &ttl_days.to_string())
        .replace("{rollup_ttl_days}", &rollup_ttl_days.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_versions_increase_strictly() {
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version);
        }
    }

    #[test]
    fn rendering_leaves_no_placeholder() {
        for m in MIGRATIONS {
            for s in m.statements {
                let out = render(s, "tern", 7, 90);
                assert!(!out.contains('{') || !out.contains("_days}"), "{out}");
                assert!(!out.contains("{db}"));
            }
        }
    }

    #[test]
    fn bucket_bounds_double_every_eight_buckets() {
        assert_eq!(bucket_upper_us(0), 1.0);
        assert!((bucket_upper_us(8) - 2.0).abs() < 1e-9);
        assert!((bucket_upper_us(160) - 1_048_576.0).abs() < 1e-3);
    }
}
