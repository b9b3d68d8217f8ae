//! What a statement does and to which table, read from its tokens without parsing it:
//! enough to label SQL statistics (`SELECT orders`) and to filter by table.

use super::lexer::{Kind, Lexer};
use super::Dialect;

/// The statement's operation, uppercased: `SELECT`, `INSERT`, `UPDATE`, `DELETE`,
/// `REPLACE`, `MERGE`, `UPSERT`, `CALL`, `CREATE`, `ALTER`, `DROP`, `TRUNCATE`, `BEGIN`,
/// `COMMIT`, `ROLLBACK`, `SET`, `SHOW`, `EXPLAIN`, or `OTHER`.
///
/// Leading comments and brackets are skipped; for `WITH … AS (…) <stmt>` it is the
/// operation of the main statement. `START TRANSACTION` is `BEGIN`, `EXEC`/`EXECUTE` is `CALL`.
///
/// ```
/// use tern_collector::normalize::sql::operation;
/// assert_eq!(operation("/* app */ (select 1)"), "SELECT");
/// assert_eq!(operation("WITH x AS (SELECT 1) DELETE FROM t"), "DELETE");
/// ```
pub fn operation(sql: &str) -> &'static str {
    let mut lx = Lexer::new(sql, Dialect::Generic);
    let first = std::iter::from_fn(|| lx.next_token()).find(|t| t.kind != Kind::Open);
    let Some(first) = first else { return "OTHER" };
    match first.word() {
        "WITH" => {
            let mut depth = 0u32;
            while let Some(t) = lx.next_token() {
                match t.kind {
                    Kind::Open => depth += 1,
                    Kind::Close => depth = depth.saturating_sub(1),
                    Kind::Keyword if depth == 0 => {
                        if let w @ ("SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE") = t.word()
                        {
                            return w;
                        }
                    }
                    _ => {}
                }
            }
            "OTHER"
        }
        w @ ("SELECT" | "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "MERGE" | "UPSERT"
        | "CALL" | "CREATE" | "ALTER" | "DROP" | "TRUNCATE" | "BEGIN" | "COMMIT"
        | "ROLLBACK" | "SET" | "SHOW" | "EXPLAIN") => w,
        "START" => "BEGIN",
        "EXEC" | "EXECUTE" => "CALL",
        "VALUES" => "SELECT",
        _ => "OTHER",
    }
}

/// The main table of a statement as written (schema-qualified if it was; a lone quoted
/// name loses its quotes), when it can be told without parsing:
/// the table after `INSERT`/`REPLACE … INTO`, after `UPDATE`, or else after the least
/// nested `FROM` (so `SELECT … FROM (SELECT … FROM t) x` gives `t`).
///
/// ```
/// use tern_collector::normalize::sql::main_table;
/// assert_eq!(main_table("select * from shop.orders o where o.id = 1"), Some("shop.orders"));
/// assert_eq!(main_table("INSERT INTO `users` (id) VALUES (1)"), Some("users"));
/// assert_eq!(main_table("SELECT 1"), None);
/// ```
pub fn main_table(sql: &str) -> Option<&str> {
    let mut lx = Lexer::new(sql, Dialect::Generic);
    let op = operation(sql);
    let mut depth = 0u32;
    let mut best: Option<(u32, &str)> = None;
    while let Some(t) = lx.next_token() {
        match t.kind {
            Kind::Open => depth += 1,
            Kind::Close => depth = depth.saturating_sub(1),
            Kind::Keyword => {
                let after = match (op, t.word()) {
                    ("INSERT" | "REPLACE", "INTO") | ("UPDATE", "UPDATE") => return table_name(lx),
                    (_, "FROM") => table_name(lx),
                    _ => None,
                };
                if let Some(name) = after {
                    if best.is_none_or(|(d, _)| depth < d) {
                        best = Some((depth, name));
                    }
                }
            }
            _ => {}
        }
    }
    best.map(|(_, name)| name)
}

/// The (possibly dotted) name at the lexer, after modifiers such as `ONLY` or `IGNORE`.
fn table_name(mut lx: Lexer<'_>) -> Option<&str> {
    let mut t = lx.next_token()?;
    while t.kind == Kind::Keyword
        && matches!(t.word(), "ONLY" | "IGNORE" | "LOW_PRIORITY" | "LATERAL")
    {
        t = lx.next_token()?;
    }
    if t.kind != Kind::Ident {
        return None;
    }
    let mut end = t.end();
    let mut ahead = lx;
    while ahead.next_token().is_some_and(|n| n.kind == Kind::Dot) {
        match ahead.next_token() {
            Some(n) if n.kind == Kind::Ident => end = n.end(),
            _ => break,
        }
    }
    let name = lx.source(t.start(), end);
    let unquoted = name
        .strip_prefix(['"', '`'])
        .and_then(|n| n.strip_suffix(['"', '`']))
        .filter(|n| !n.contains(['"', '`']));
    Some(unquoted.unwrap_or(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_the_main_statement() {
        for (sql, op) in [
            ("select 1", "SELECT"),
            ("  /* c */ ( SELECT 1 ) UNION (SELECT 2)", "SELECT"),
            ("Insert into t values (1)", "INSERT"),
            ("UPDATE t SET a = 1", "UPDATE"),
            ("delete from t", "DELETE"),
            (
                "WITH x AS (SELECT 1), y AS (SELECT 2) UPDATE t SET a = 1",
                "UPDATE",
            ),
            ("START TRANSACTION", "BEGIN"),
            ("exec sp_who", "CALL"),
            ("VACUUM t", "OTHER"),
            ("", "OTHER"),
        ] {
            assert_eq!(operation(sql), op, "{sql}");
        }
    }

    #[test]
    fn main_table_finds_the_table_for_each_operation() {
        for (sql, table) in [
            (
                "SELECT a FROM orders o JOIN items i ON i.o = o.id",
                Some("orders"),
            ),
            ("SELECT * FROM (SELECT * FROM inner_t) x", Some("inner_t")),
            (
                "SELECT (SELECT max(a) FROM sub) FROM outer_t",
                Some("outer_t"),
            ),
            (
                "INSERT INTO shop.orders (a) SELECT a FROM staging",
                Some("shop.orders"),
            ),
            ("UPDATE LOW_PRIORITY `accounts` SET a = 1", Some("accounts")),
            ("DELETE FROM \"Sessions\" WHERE id = 1", Some("Sessions")),
            ("SELECT * FROM ONLY parent", Some("parent")),
            ("SELECT now()", None),
        ] {
            assert_eq!(main_table(sql), table, "{sql}");
        }
    }
}
