//! What the SQL hooks remember of a request's database work between calls: connections
//! and prepared statements by object handle (with their span attributes encoded once),
//! the last connection made from the same arguments, and the parameters bound to
//! statements (`tern.capture_params=1`), within the limits that keep this bounded.

use crate::request::{Text, Tx, MAX_HANDLES};
use crate::{otlp, php};

/// Most parameters recorded per statement.
pub const MAX_PARAMS: usize = 32;

/// SQL parameters not recorded because a statement had more than [`MAX_PARAMS`] or a
/// request bound more than its limit (`tern_stats()["params_dropped"]`).
pub static PARAMS_DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts `n` parameters not recorded.
pub fn params_dropped(n: usize) {
    if n > 0 {
        PARAMS_DROPPED.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What is known about a database connection or prepared statement, by object handle.
#[derive(Debug, Clone)]
pub struct Conn {
    /// `db.system.name` (`sqlite`, `mysql`, `postgresql`, ...).
    pub system: &'static str,
    /// `server.address`.
    pub host: Text,
    /// `server.port`.
    pub port: Option<i64>,
    /// `db.namespace`.
    pub db: Text,
    /// SQL of a prepared statement.
    pub sql: Text,
    /// Its `db.operation.name` (set by [`Tx::set_conn`]).
    pub op: &'static str,
    /// The span attributes every call on this connection has (`db.system.name`,
    /// `db.namespace`, `server.address`, `server.port`), encoded once (by
    /// [`Tx::set_conn`] when still empty) and copied into each span as they are. A
    /// statement's `Conn` is its connection's with only `sql` changed, so it keeps them.
    pub attrs: std::rc::Rc<[u8]>,
}

thread_local! {
    /// The empty text and bytes every new `Conn` starts with (shared, no allocation).
    static EMPTY: (Text, std::rc::Rc<[u8]>) = (Text::from(""), std::rc::Rc::from(&[][..]));
}

impl Default for Conn {
    fn default() -> Self {
        let (text, bytes) = EMPTY.with(|e| e.clone());
        Conn {
            system: "",
            host: text.clone(),
            port: None,
            db: text.clone(),
            sql: text,
            op: "",
            attrs: bytes,
        }
    }
}

/// The connection a driver hook made last, by the arguments it came from, with its span
/// attributes encoded: an application connects with the same DSN or server request
/// after request, so they are worked out once.
#[derive(Debug, Default)]
pub struct LastConn {
    /// The arguments, each behind its length.
    key: Vec<u8>,
    conn: Option<Conn>,
}

impl LastConn {
    /// The connection the arguments `key` describe: the remembered one when they are the
    /// last ones, else `make()`'s (then remembered).
    pub fn get(&mut self, key: &[&[u8]], make: impl FnOnce() -> Conn) -> Conn {
        match &self.conn {
            Some(conn) if self.is(key) => conn.clone(),
            _ => {
                let mut conn = make();
                conn.attrs = otlp::conn_attrs(&conn);
                self.key.clear();
                for part in key {
                    self.key
                        .extend_from_slice(&(part.len() as u64).to_le_bytes());
                    self.key.extend_from_slice(part);
                }
                self.conn = Some(conn.clone());
                conn
            }
        }
    }

    fn is(&self, key: &[&[u8]]) -> bool {
        let mut rest = &self.key[..];
        for part in key {
            let Some((len, tail)) = rest.split_first_chunk::<8>() else {
                return false;
            };
            if u64::from_le_bytes(*len) != part.len() as u64 || !tail.starts_with(part) {
                return false;
            }
            rest = &tail[part.len()..];
        }
        rest.is_empty()
    }
}

/// A parameter bound to a prepared statement: `bindValue`'s value as text then,
/// `bindParam`'s variable (a reference, held until the request ends) read when the
/// statement runs.
#[derive(Debug)]
pub enum Bound {
    /// The value, as text.
    Text(String),
    /// The variable.
    Var(php::Held),
}

impl Bound {
    /// Gives back the variable held, if any.
    pub fn release(self) {
        if let Bound::Var(v) = self {
            v.release();
        }
    }
}

/// A parameter bound to statement `stmt` (object handle) under attribute `key`.
#[derive(Debug)]
pub struct Bind {
    /// The statement.
    pub stmt: u32,
    /// `db.query.parameter.<name or position>`.
    pub key: &'static str,
    /// What was bound.
    pub value: Bound,
}

impl Tx {
    /// Remembers what is known about a connection or statement.
    pub fn set_conn(&mut self, handle: u32, mut conn: Conn) {
        if conn.attrs.is_empty() {
            conn.attrs = otlp::conn_attrs(&conn);
        }
        if !conn.sql.is_empty() {
            conn.op = crate::hooks::sql_operation(&conn.sql);
        }
        if let Some(c) = self.conns.iter_mut().find(|(h, _)| *h == handle) {
            c.1 = conn;
            return;
        }
        if self.conns.len() >= MAX_HANDLES {
            self.conns.remove(0);
        }
        self.conns.push((handle, conn));
    }

    /// Remembers a parameter bound to statement `stmt` (the last binding of a key wins).
    pub fn bind(&mut self, stmt: u32, key: &'static str, value: Bound) {
        if let Some(b) = self
            .binds
            .iter_mut()
            .find(|b| b.stmt == stmt && b.key == key)
        {
            std::mem::replace(&mut b.value, value).release();
        } else if self.binds.len() < MAX_HANDLES
            && self.binds.iter().filter(|b| b.stmt == stmt).count() < MAX_PARAMS
        {
            self.binds.push(Bind { stmt, key, value });
        } else {
            params_dropped(1);
            value.release();
        }
    }

    /// Forgets the parameters bound to `stmt` (a new statement under a reused handle,
    /// or bound anew), giving back the variables held.
    pub fn unbind(&mut self, stmt: u32) {
        for b in self.binds.extract_if(.., |b| b.stmt == stmt) {
            b.value.release();
        }
    }

    /// What is known about a connection or statement.
    pub fn conn(&self, handle: u32) -> Option<&Conn> {
        self.conns
            .iter()
            .rev()
            .find(|(h, _)| *h == handle)
            .map(|(_, c)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_worked_out_once_per_run_of_the_same_arguments() {
        let mut last = LastConn::default();
        let made = std::cell::Cell::new(0);
        let make = |system| {
            made.set(made.get() + 1);
            Conn {
                system,
                ..Conn::default()
            }
        };
        let a = last.get(&[b"ab", b"c"], || make("mysql"));
        assert_eq!((a.system, made.get()), ("mysql", 1));
        assert!(
            !a.attrs.is_empty(),
            "attributes encoded with the connection"
        );
        last.get(&[b"ab", b"c"], || make("other"));
        assert_eq!(made.get(), 1, "same arguments: remembered");
        // The same bytes split differently are other arguments.
        let b = last.get(&[b"a", b"bc"], || make("sqlite"));
        assert_eq!((b.system, made.get()), ("sqlite", 2));
        last.get(&[b"a", b"bc", b""], || make("sqlite"));
        assert_eq!(made.get(), 3, "one argument more");
    }
}
