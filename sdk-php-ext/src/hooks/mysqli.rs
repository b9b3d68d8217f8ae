//! mysqli, procedural and object style: connections, `query`/`real_query`/`multi_query`,
//! `execute_query` (PHP 8.2), `prepare` + `mysqli_stmt::execute`, with returned or
//! affected rows, and when `tern.capture_params=1` the parameters: passed as an array
//! (`execute_query`, `execute($params)`, PHP 8.1) or the variables bound with
//! `bind_param` (their values when the statement runs; hooked only then).

use ext_php_rs::types::Zval;

use super::{discard, failure, finish, mark, open_sql, param_key_at, push_params, Hook};
use crate::db::{Bound, Conn, LastConn};
use crate::php::{self, Frame};
use crate::request::{text, Open, Tx, Val};

/// What is hooked. Procedural functions take the link (or statement) as argument 0;
/// methods have it as `$this`.
pub const HOOKS: &[Hook] = &[
    Hook::function("mysqli_connect", mark, connect_fn_end),
    Hook::function("mysqli_real_connect", mark, real_connect_fn_end),
    Hook::method("mysqli", "__construct", mark, connect_method_end),
    Hook::method("mysqli", "connect", mark, connect_method_end),
    Hook::method("mysqli", "real_connect", mark, connect_method_end),
    Hook::function("mysqli_query", query_fn_begin, query_end),
    Hook::function("mysqli_real_query", query_fn_begin, query_end),
    Hook::function("mysqli_multi_query", query_fn_begin, query_end),
    Hook::method("mysqli", "query", query_method_begin, query_end),
    Hook::method("mysqli", "real_query", query_method_begin, query_end),
    Hook::method("mysqli", "multi_query", query_method_begin, query_end),
    Hook::function(
        "mysqli_execute_query",
        execute_query_fn_begin,
        execute_query_end,
    ),
    Hook::method(
        "mysqli",
        "execute_query",
        execute_query_method_begin,
        execute_query_end,
    ),
    Hook::function("mysqli_prepare", mark, prepare_fn_end),
    Hook::method("mysqli", "prepare", mark, prepare_method_end),
    Hook::function("mysqli_stmt_execute", stmt_fn_begin, stmt_end),
    Hook::method("mysqli_stmt", "execute", stmt_method_begin, stmt_end),
    Hook::function("mysqli_stmt_bind_param", bind_fn, discard).params_only(),
    Hook::method("mysqli_stmt", "bind_param", bind_method, discard).params_only(),
];

thread_local! {
    /// The last connection's host, database and port, and what they gave.
    static LAST: std::cell::RefCell<LastConn> = Default::default();
}

/// The connection `mysqli_connect`-style arguments from `first` on describe (host,
/// user, password, database, port), remembered for the last ones.
fn conn_from(frame: Frame, first: u32) -> Conn {
    let host = frame.arg_bytes(first).unwrap_or_default();
    let db = frame.arg_bytes(first + 3).unwrap_or_default();
    let port = frame.arg(first + 4).and_then(|z| z.long());
    let port_key = port.map(i64::to_le_bytes);
    let key: [&[u8]; 3] = [host, db, port_key.as_ref().map_or(&[], |p| &p[..])];
    LAST.with(|last| {
        last.borrow_mut().get(&key, || {
            let mut c = Conn {
                system: "mysql",
                port,
                ..Conn::default()
            };
            c.host = match host.strip_prefix(b"p:").unwrap_or(host) {
                b"" => text(b"localhost"),
                h => text(h),
            };
            if !db.is_empty() {
                c.db = text(db);
            }
            c
        })
    })
}

fn connect_fn_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, _open: Open) {
    if let Some(link) = rv.and_then(php::obj_handle) {
        tx.set_conn(link, conn_from(frame, 0));
    }
}

fn real_connect_fn_end(frame: Frame, _rv: Option<&Zval>, tx: &mut Tx, _open: Open) {
    if let Some(link) = frame.arg(0).and_then(php::obj_handle) {
        tx.set_conn(link, conn_from(frame, 1));
    }
}

fn connect_method_end(frame: Frame, _rv: Option<&Zval>, tx: &mut Tx, _open: Open) {
    if let Some(link) = frame.this_handle() {
        tx.set_conn(link, conn_from(frame, 0));
    }
}

fn sql_on(tx: &Tx, link: Option<&Zval>, sql: Option<&[u8]>) -> Option<Open> {
    let link = link?;
    let mut open = open_sql(
        tx,
        php::obj_handle(link).and_then(|h| tx.conn(h)),
        text(sql?),
    );
    open.obj = php::obj_handle(link).unwrap_or(0);
    Some(open)
}

fn query_fn_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    sql_on(tx, frame.arg(0), frame.arg_bytes(1))
}

fn query_method_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    sql_on(tx, frame.this(), frame.arg_bytes(0))
}

fn execute_query_fn_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    let mut open = sql_on(tx, frame.arg(0), frame.arg_bytes(1))?;
    push_params(tx, &mut open, frame.arg(2));
    Some(open)
}

fn execute_query_method_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    let mut open = sql_on(tx, frame.this(), frame.arg_bytes(0))?;
    push_params(tx, &mut open, frame.arg(1));
    Some(open)
}

fn query_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, open: Open) {
    end_on_link(frame, rv, tx, open, "mysqli_query");
}

fn execute_query_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, open: Open) {
    end_on_link(frame, rv, tx, open, "mysqli_execute_query");
}

/// Ends a statement run on a link: rows of the result, or rows the link says were
/// affected; the link's error when it failed.
fn end_on_link(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, open: Open, what: &str) {
    let mut more = None;
    if let Some(result) = rv.filter(|z| z.is_object()) {
        if let Some(n) = php::prop_long(result, "num_rows") {
            more = Some(("db.response.returned_rows", Val::I(n)));
        }
    } else if rv.is_some_and(|z| z.is_true()) {
        let link = frame.this().or_else(|| frame.arg(0));
        if let Some(n) = link
            .and_then(|l| php::prop_long(l, "affected_rows"))
            .filter(|n| *n >= 0)
        {
            more = Some(("db.response.affected_rows", Val::I(n)));
        }
    }
    let error = failure(rv, what).map(|(kind, msg)| {
        let link = frame.this().or_else(|| frame.arg(0));
        let detail = link
            .and_then(|l| php::prop_bytes(l, "error"))
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        (kind, detail.filter(|d| !d.is_empty()).unwrap_or(msg))
    });
    finish(tx, open, more, error);
}

fn remember_stmt(tx: &mut Tx, link: Option<&Zval>, sql: Option<&[u8]>, rv: Option<&Zval>) {
    let (Some(stmt), Some(sql)) = (rv.and_then(php::obj_handle), sql) else {
        return;
    };
    let mut conn = link
        .and_then(php::obj_handle)
        .and_then(|h| tx.conn(h))
        .cloned()
        .unwrap_or(Conn {
            system: "mysql",
            ..Conn::default()
        });
    conn.sql = text(sql);
    tx.set_conn(stmt, conn);
    tx.unbind(stmt);
}

fn prepare_fn_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, _open: Open) {
    remember_stmt(tx, frame.arg(0), frame.arg_bytes(1), rv);
}

fn prepare_method_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, _open: Open) {
    remember_stmt(tx, frame.this(), frame.arg_bytes(0), rv);
}

fn stmt_on(tx: &Tx, stmt: Option<&Zval>) -> Option<Open> {
    let stmt = stmt?;
    let conn = tx.conn(php::obj_handle(stmt)?)?;
    let mut open = open_sql(tx, Some(conn), conn.sql.clone());
    open.obj = php::obj_handle(stmt).unwrap_or(0);
    Some(open)
}

fn stmt_fn_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    let mut open = stmt_on(tx, frame.arg(0))?;
    push_params(tx, &mut open, frame.arg(1));
    Some(open)
}

fn stmt_method_begin(frame: Frame, tx: &mut Tx) -> Option<Open> {
    let mut open = stmt_on(tx, frame.this())?;
    push_params(tx, &mut open, frame.arg(0));
    Some(open)
}

fn stmt_end(frame: Frame, rv: Option<&Zval>, tx: &mut Tx, open: Open) {
    let mut more = None;
    if rv.is_some_and(|z| z.is_true()) {
        let stmt = frame.this().or_else(|| frame.arg(0));
        if let Some(n) = stmt
            .and_then(|s| php::prop_long(s, "affected_rows"))
            .filter(|n| *n >= 0)
        {
            more = Some(("db.response.affected_rows", Val::I(n)));
        }
    }
    finish(tx, open, more, failure(rv, "mysqli_stmt_execute"));
}

/// `bind_param($types, &...$vars)` on `stmt`: the variables from argument `first` on
/// (positions 0, 1, ...), replacing what was bound before.
fn bind_vars(frame: Frame, tx: &mut Tx, stmt: Option<u32>, first: u32) {
    let Some(stmt) = stmt else { return };
    tx.unbind(stmt);
    // `Tx::bind` keeps the first `MAX_PARAMS` of a statement and counts the others.
    for (position, n) in (first..frame.num_args()).enumerate() {
        if let Some(var) = frame.arg_as_passed(n) {
            let key = param_key_at(position as i64);
            tx.bind(stmt, key, Bound::Var(php::Held::new(var)));
        }
    }
}

fn bind_fn(frame: Frame, tx: &mut Tx) -> Option<Open> {
    bind_vars(frame, tx, frame.arg(0).and_then(php::obj_handle), 2);
    None
}

fn bind_method(frame: Frame, tx: &mut Tx) -> Option<Open> {
    bind_vars(frame, tx, frame.this_handle(), 1);
    None
}
