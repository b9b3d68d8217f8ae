//! PDO: connections (DSN → system, host, database), `query`, `exec`, `prepare` +
//! `PDOStatement::execute`, with its parameters when `tern.capture_params=1` (passed to
//! `execute`, or bound with `bindValue`/`bindParam`, hooked only then).

use ext_php_rs::types::Zval;

use super::{discard, failure, finish, mark, open_sql, param_key, param_key_at, push_params, Hook};
use crate::db::{Bound, Conn, LastConn};
use crate::php::{self, Frame};
use crate::request::{text, Open, Tx, Val};

/// What is hooked.
pub const HOOKS: &[Hook] = &[
    Hook::method("pdo", "__construct", mark, connect_end),
    Hook::method("pdo", "query", query_begin, query_end),
    Hook::method("pdo", "exec", query_begin, exec_end),
    Hook::method("pdo", "prepare", mark, prepare_end),
    Hook::method("pdostatement", "execute", execute_begin, execute_end),
    Hook::method("pdostatement", "bindvalue", bind_value, discard).params_only(),
    Hook::method("pdostatement", "bindparam", bind_param, discard).params_only(),
];

/// Connection facts from a PDO DSN (`mysql:host=db;port=3306;dbname=shop`).
pub fn parse_dsn(dsn: &str) -> Conn {
    let (driver, rest) = dsn.split_once(':').unwrap_or((dsn, ""));
    let system = match driver.to_ascii_lowercase().as_str() {
        "sqlite" | "sqlite2" => "sqlite",
        "mysql" => "mysql",
        "pgsql" => "postgresql",
        "sqlsrv" | "dblib" | "mssql" => "microsoft.sql_server",
        "oci" => "oracle.db",
        "ibm" => "ibm.db2",
        "firebird" => "firebirdsql",
        _ => "other_sql",
    };
    let mut conn = Conn {
        system,
        ..Conn::default()
    };
    if system == "sqlite" {
        conn.db = rest.into();
        return conn;
    }
    for part in rest.split(';') {
        if let Some((k, v)) = part.split_once('=') {
            match k.trim().to_ascii_lowercase().as_str() {
                "host" | "server" => conn.host = v.trim().into(),
                "port" => conn.port = v.trim().parse().ok(),
                "dbname" | "database" => conn.db = v.trim().into(),
                "unix_socket" if conn.host.is_empty() => conn.host = "localhost".into(),
                _ => {}
            }
        }
    }
    conn
}

thread_local! {
    /// The last DSN parsed and what it gave: an application connects with the same DSN
    /// request after request.
    static LAST_DSN: std::cell::RefCell<LastConn> = Default::default();
}

/// [`parse_dsn`], remembered for the last DSN.
fn conn_of_dsn(dsn: &[u8]) -> Conn {
    LAST_DSN.with(|last| {
        last.borrow_mut()
            .get(&[dsn], || parse_dsn(&String::from_utf8_lossy(dsn)))
    })
}

fn connect_end(frame: Frame, _rv: Option<&Zval>, tx: &mut Tx, _open: Open) {
    if let (Some(this), Some(dsn)) = (frame.this_handle(), frame.arg_bytes(0)) {
        tx.set_conn(this, conn_of_dsn(dsn));
    }
}

fn query_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    let sql = frame.arg_bytes(0)?;
    let conn = frame.this_handle().and_then(|h| tx.conn(h));
    Some(open_sql(tx, conn, text(sql)))
}

fn query_end(_frame: Frame, rv: Option<&Zval>, tx: &mut Tx, open: Open) {
    finish(tx, open, None, failure(rv, "PDO::query"));
}

fn exec_end(_frame: Frame, rv: Option<&Zval>, tx: &mut Tx, open: Open) {
    let rows = rv
        .and_then(|z| z.long())
        .map(|n| ("db.response.affected_rows", Val::I(n)));
    finish(tx, open, rows, failure(rv, "PDO::exec"));
}

fn prepare_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, _open: Open) {
    let (Some(stmt), Some(sql)) = (rv.and_then(php::obj_handle), frame.arg_bytes(0)) else {
        return;
    };
    let mut conn = frame
        .this_handle()
        .and_then(|h| tx.conn(h))
        .cloned()
        .unwrap_or_default();
    conn.sql = text(sql);
    tx.set_conn(stmt, conn);
    tx.unbind(stmt);
}

fn execute_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    let this = frame.this()?;
    let handle = php::obj_handle(this)?;
    let conn = tx.conn(handle);
    let sql = match conn {
        Some(c) if !c.sql.is_empty() => c.sql.clone(),
        _ => text(&php::prop_bytes(this, "queryString")?),
    };
    let mut open = open_sql(tx, conn, sql);
    open.obj = handle;
    push_params(tx, &mut open, frame.arg(0));
    Some(open)
}

/// The attribute key of `bindValue`/`bindParam`'s first argument: a name, or a 1-based
/// position (0-based in the key, as for arrays passed to `execute`).
fn bound_key(frame: Frame) -> Option<&'static str> {
    let z = frame.arg(0)?;
    match z.long() {
        Some(n) => Some(param_key_at(n - 1)),
        None => Some(param_key(&String::from_utf8_lossy(php::zval_bytes(z)?))),
    }
}

fn bind_value(frame: Frame, tx: &mut Tx) -> Option<Open> {
    let (stmt, key) = (frame.this_handle()?, bound_key(frame)?);
    tx.bind(stmt, key, Bound::Text(php::param_text(frame.arg(1)?)));
    None
}

fn bind_param(frame: Frame, tx: &mut Tx) -> Option<Open> {
    let (stmt, key) = (frame.this_handle()?, bound_key(frame)?);
    // The variable itself (a reference): its value when the statement runs counts.
    tx.bind(
        stmt,
        key,
        Bound::Var(php::Held::new(frame.arg_as_passed(1)?)),
    );
    None
}

fn execute_end(_frame: Frame, rv: Option<&Zval>, tx: &mut Tx, open: Open) {
    finish(tx, open, None, failure(rv, "PDOStatement::execute"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsns_give_system_host_port_and_database() {
        let c = parse_dsn("mysql:host=db.local;port=3307;dbname=shop;charset=utf8mb4");
        assert_eq!(
            (c.system, &*c.host, c.port, &*c.db),
            ("mysql", "db.local", Some(3307), "shop")
        );
        let c = parse_dsn("sqlite::memory:");
        assert_eq!((c.system, &*c.db), ("sqlite", ":memory:"));
        assert_eq!(parse_dsn("pgsql:host=x").system, "postgresql");
        assert_eq!(parse_dsn("odd").system, "other_sql");
    }
}
