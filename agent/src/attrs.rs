//! A span's attributes in a few bytes: each one is a one-byte key (the field's index in
//! its callsite's `FieldSet`, or one of the agent's own [`Key`]s), a one-byte type tag
//! and the value. The names stay in the callsite's `'static` metadata, so recording a
//! field writes about ten bytes, and moving a span record around copies a small buffer
//! instead of a vector of (name, value) pairs.
//!
//! Up to [`INLINE`] bytes (a span's three or four short fields) live inline in the span
//! record: no allocation, and no memory crosses from the application's threads to the
//! exporter thread, where freeing it would contend on the allocator.

use std::fmt;

use tracing_core::Metadata;

/// A borrowed attribute value: the OTLP writer's (`tern_php_wire::otlp`), so a span's
/// attributes are written as they are read.
pub use tern_php_wire::otlp::Value;

/// A span's callsite metadata: its name, target and field names.
pub(crate) type Meta = &'static Metadata<'static>;

/// Keys the agent writes itself, beyond the callsite's own fields (key bytes from
/// [`Key::FIRST`] on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Key {
    HttpRequestMethod = 0xF0,
    UrlPath,
    NetworkProtocolVersion,
    HttpResponseStatusCode,
    CpuTimeUs,
}

/// The attribute with the CPU time of a transaction's entry span, in µs (thread CPU time
/// between each enter and exit of the span, summed).
pub(crate) const CPU_TIME_US: &str = "tern.cpu_time_us";

impl Key {
    /// Key bytes below this are field indexes.
    pub(crate) const FIRST: u8 = 0xF0;
    const NAMES: [&'static str; 5] = [
        "http.request.method",
        "url.path",
        "network.protocol.version",
        "http.response.status_code",
        CPU_TIME_US,
    ];

    fn name(k: u8) -> Option<&'static str> {
        Key::NAMES
            .get(usize::from(k.checked_sub(Key::FIRST)?))
            .copied()
    }
}

/// The name of key byte `k` of a span of callsite `meta`.
pub(crate) fn key_name(meta: Meta, k: u8) -> &'static str {
    if k >= Key::FIRST {
        return Key::name(k).unwrap_or("");
    }
    meta.fields()
        .iter()
        .nth(usize::from(k))
        .map(|f| f.name())
        .unwrap_or("")
}

const I64: u8 = 0;
const F64: u8 = 1;
const FALSE: u8 = 2;
const TRUE: u8 = 3;
/// Followed by the length (u32, little-endian) and the UTF-8 bytes.
const STR: u8 = 4;

/// Inline bytes: four typical fields, and the whole buffer is 56 bytes.
pub(crate) const INLINE: usize = 54;

/// The encoded attributes of one span.
#[derive(Clone)]
pub enum Attrs {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl Default for Attrs {
    fn default() -> Self {
        Attrs::Inline {
            len: 0,
            buf: [0; INLINE],
        }
    }
}

impl fmt::Debug for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Attrs {
    fn bytes(&self) -> &[u8] {
        match self {
            Attrs::Inline { len, buf } => &buf[..usize::from(*len)],
            Attrs::Heap(v) => v,
        }
    }

    #[inline(always)]
    fn extend(&mut self, b: &[u8]) {
        if let Attrs::Inline { len, buf } = self {
            let l = usize::from(*len);
            if l + b.len() <= INLINE {
                buf[l..l + b.len()].copy_from_slice(b);
                *len = (l + b.len()) as u8;
                return;
            }
        }
        self.extend_slow(b);
    }

    #[inline(never)]
    fn extend_slow(&mut self, b: &[u8]) {
        if let Attrs::Inline { len, buf } = self {
            let mut v = Vec::with_capacity((usize::from(*len) + b.len()).max(2 * INLINE));
            v.extend_from_slice(&buf[..usize::from(*len)]);
            *self = Attrs::Heap(v);
        }
        if let Attrs::Heap(v) = self {
            v.extend_from_slice(b);
        }
    }

    fn len(&self) -> usize {
        self.bytes().len()
    }

    #[inline(always)]
    pub(crate) fn push_i64(&mut self, key: u8, v: i64) {
        let mut b = [0u8; 10];
        b[0] = key;
        b[1] = I64;
        b[2..].copy_from_slice(&v.to_le_bytes());
        self.extend(&b);
    }

    #[inline(always)]
    pub(crate) fn push_f64(&mut self, key: u8, v: f64) {
        let mut b = [0u8; 10];
        b[0] = key;
        b[1] = F64;
        b[2..].copy_from_slice(&v.to_le_bytes());
        self.extend(&b);
    }

    #[inline(always)]
    pub(crate) fn push_bool(&mut self, key: u8, v: bool) {
        self.extend(&[key, if v { TRUE } else { FALSE }]);
    }

    #[inline(always)]
    pub(crate) fn push_str(&mut self, key: u8, s: &str) {
        self.push_str_header(key, s.len());
        self.extend(s.as_bytes());
    }

    #[inline(always)]
    fn push_str_header(&mut self, key: u8, len: usize) {
        let mut b = [0u8; 6];
        b[0] = key;
        b[1] = STR;
        b[2..].copy_from_slice(&(len.min(u32::MAX as usize) as u32).to_le_bytes());
        self.extend(&b);
    }

    /// Records a value formatted with `Debug`, written straight into the buffer.
    pub(crate) fn push_debug(&mut self, key: u8, value: &dyn fmt::Debug) {
        let at = self.len();
        self.push_str_header(key, 0);
        let start = self.len();
        let _ = fmt::write(&mut Appender(self), format_args!("{value:?}"));
        let n = (self.len() - start).min(u32::MAX as usize) as u32;
        let bytes = match self {
            Attrs::Inline { buf, .. } => &mut buf[..],
            Attrs::Heap(v) => &mut v[..],
        };
        bytes[at + 2..at + 6].copy_from_slice(&n.to_le_bytes());
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, key: u8, v: Value<'_>) {
        match v {
            Value::Str(s) => self.push_str(key, s),
            Value::I64(i) => self.push_i64(key, i),
            Value::F64(f) => self.push_f64(key, f),
            Value::Bool(b) => self.push_bool(key, b),
        }
    }

    /// The attributes in recording order: (key byte, value).
    pub(crate) fn iter(&self) -> Iter<'_> {
        Iter { rest: self.bytes() }
    }

    /// Removes every value of `key` (rare: values recorded again later).
    pub(crate) fn remove(&mut self, key: u8) {
        if !self.iter().any(|(k, _)| k == key) {
            return;
        }
        let mut out = Attrs::default();
        for (k, v) in self.iter().filter(|(k, _)| *k != key) {
            out.push(k, v);
        }
        *self = out;
    }
}

/// Appends formatted text (whole `str`s only, so the bytes stay UTF-8).
struct Appender<'a>(&'a mut Attrs);

impl fmt::Write for Appender<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend(s.as_bytes());
        Ok(())
    }
}

/// Iterates over encoded attributes.
pub(crate) struct Iter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Iter<'a> {
    type Item = (u8, Value<'a>);

    fn next(&mut self) -> Option<(u8, Value<'a>)> {
        let (&key, rest) = self.rest.split_first()?;
        let (&tag, rest) = rest.split_first()?;
        let eight = |r: &'a [u8]| -> Option<([u8; 8], &'a [u8])> {
            let (v, r) = r.split_at_checked(8)?;
            Some((v.try_into().ok()?, r))
        };
        let (v, rest) = match tag {
            I64 => {
                let (b, r) = eight(rest)?;
                (Value::I64(i64::from_le_bytes(b)), r)
            }
            F64 => {
                let (b, r) = eight(rest)?;
                (Value::F64(f64::from_le_bytes(b)), r)
            }
            FALSE => (Value::Bool(false), rest),
            TRUE => (Value::Bool(true), rest),
            _ => {
                let (n, r) = rest.split_at_checked(4)?;
                let n = u32::from_le_bytes(n.try_into().ok()?) as usize;
                let (s, r) = r.split_at_checked(n)?;
                // Only whole `str`s are ever written (see `Appender`).
                (Value::Str(std::str::from_utf8(s).unwrap_or("")), r)
            }
        };
        self.rest = rest;
        Some((key, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_come_back_in_order_and_long_ones_spill_to_the_heap() {
        let mut a = Attrs::default();
        a.push_i64(0, -3);
        a.push_str(1, "web");
        a.push_bool(2, true);
        a.push_f64(3, 0.5);
        assert!(matches!(a, Attrs::Inline { .. }));
        let long = "x".repeat(300);
        a.push_str(4, &long);
        a.push_debug(Key::UrlPath as u8, &"quoted");
        assert!(matches!(a, Attrs::Heap(_)));
        let got: Vec<_> = a.iter().collect();
        assert_eq!(
            got,
            [
                (0, Value::I64(-3)),
                (1, Value::Str("web")),
                (2, Value::Bool(true)),
                (3, Value::F64(0.5)),
                (4, Value::Str(&long)),
                (Key::UrlPath as u8, Value::Str("\"quoted\"")),
            ]
        );
        a.remove(1);
        assert_eq!(
            a.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            [0, 2, 3, 4, 0xF1]
        );
    }

    #[test]
    fn debug_values_are_written_in_place_with_their_length() {
        let mut a = Attrs::default();
        a.push_debug(0, &42u8);
        a.push_debug(1, &"é".repeat(40));
        a.push_bool(2, false);
        let got: Vec<_> = a.iter().map(|(_, v)| v.to_string()).collect();
        assert_eq!(
            got,
            [
                "42".to_string(),
                format!("{:?}", "é".repeat(40)),
                "false".into()
            ]
        );
    }
}
