//! Chunked results and streaming inserts, each holding its pooled connection until done.

use bytes::Bytes;

use crate::engine::Stats;
use crate::error::Error;
use crate::ffi;
use crate::pool::PooledConn;
use crate::raw::{c_message, RawResult};

/// Where a `RowBinaryWithNames[AndTypes]` stream stands with the header every chunk
/// repeats.
#[derive(Debug, Clone, Copy)]
enum HeaderState {
    /// The next chunk is the first: keep its header and measure it.
    First { with_types: bool },
    /// Later chunks: drop this many leading bytes.
    Len(usize),
}

/// A query's output, chunk by chunk; see [`Engine::query_stream`]. Iterating blocks.
pub struct QueryStream {
    conn: PooledConn,
    handle: Option<RawResult>,
    header: Option<HeaderState>,
    stats: Stats,
}

impl QueryStream {
    pub(crate) fn new(conn: PooledConn, handle: RawResult, format: &str) -> Self {
        let header = match format {
            "RowBinaryWithNamesAndTypes" => Some(HeaderState::First { with_types: true }),
            "RowBinaryWithNames" => Some(HeaderState::First { with_types: false }),
            _ => None,
        };
        Self {
            conn,
            handle: Some(handle),
            header,
            stats: Stats::default(),
        }
    }

    /// Totals so far (final once the iterator returned `None`).
    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn fetch(&mut self) -> Result<Option<Bytes>, Error> {
        let Some(handle) = self.handle.as_ref() else {
            return Ok(None);
        };
        let api = handle.api;
        // SAFETY: the stream handle and its connection are live; one fetch at a time.
        let raw = unsafe { (api.stream_fetch_result)(self.conn.handle(), handle.raw) };
        let chunk = RawResult::new(api, raw)?;
        chunk.check()?;
        let stats = chunk.stats();
        self.stats.elapsed += stats.elapsed;
        self.stats.result_rows += stats.result_rows;
        self.stats.result_bytes += stats.result_bytes;
        self.stats.read_rows = self.stats.read_rows.max(stats.read_rows);
        self.stats.read_bytes = self.stats.read_bytes.max(stats.read_bytes);
        if chunk.as_ref().is_empty() {
            self.handle = None;
            return Ok(None);
        }
        let mut data = Bytes::from_owner(chunk);
        match self.header {
            Some(HeaderState::First { with_types }) => {
                let len = row_binary_header_len(&data, with_types);
                self.header = Some(HeaderState::Len(len));
            }
            Some(HeaderState::Len(len)) => {
                let _ = data.split_to(len.min(data.len()));
            }
            None => {}
        }
        Ok(Some(data))
    }
}

impl Iterator for QueryStream {
    type Item = Result<Bytes, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.fetch() {
                Ok(Some(data)) if data.is_empty() => continue,
                Ok(Some(data)) => return Some(Ok(data)),
                Ok(None) => return None,
                Err(err) => {
                    self.handle = None;
                    return Some(Err(err));
                }
            }
        }
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            // SAFETY: cancels the unfinished stream on its own connection.
            unsafe { (handle.api.stream_cancel_query)(self.conn.handle(), handle.raw) };
        }
    }
}

/// The length of a `RowBinaryWithNames[AndTypes]` header: a column count, then that many
/// names (and as many types), each a varint-prefixed string.
fn row_binary_header_len(data: &[u8], with_types: bool) -> usize {
    fn varint(data: &[u8], pos: &mut usize) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *data.get(*pos)?;
            *pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    let mut pos = 0;
    let Some(columns) = varint(data, &mut pos) else {
        return 0;
    };
    let strings = if with_types { columns * 2 } else { columns };
    for _ in 0..strings {
        let Some(len) = varint(data, &mut pos) else {
            return 0;
        };
        match pos.checked_add(len as usize).filter(|&p| p <= data.len()) {
            Some(end) => pos = end,
            None => return 0,
        }
    }
    pos
}

/// A streaming insert; see [`Engine::insert_stream`]. Dropping it unfinished cancels it.
pub struct InsertStream {
    conn: PooledConn,
    raw: ffi::InsertStream,
    done: bool,
}

// SAFETY: the handle belongs to this value alone and chDB allows any thread to use it.
unsafe impl Send for InsertStream {}

impl InsertStream {
    pub(crate) fn new(conn: PooledConn, raw: ffi::InsertStream) -> Result<Self, Error> {
        let stream = Self {
            conn,
            raw,
            done: false,
        };
        let api = stream.conn.api();
        // SAFETY: `raw` is a live insert handle.
        match unsafe { c_message((api.stream_insert_error)(raw)) } {
            Some(message) => Err(Error::clickhouse(message)),
            None => Ok(stream),
        }
    }

    /// Appends a chunk of data in the insert's format; rows may span chunks.
    pub fn append(&mut self, data: &[u8]) -> Result<(), Error> {
        let api = self.conn.api();
        // SAFETY: `raw` is a live insert handle; chDB copies `data`.
        let state = unsafe { (api.stream_append)(self.raw, data.as_ptr().cast(), data.len()) };
        if state == ffi::CHDB_SUCCESS {
            return Ok(());
        }
        // SAFETY: as above.
        let message = unsafe { c_message((api.stream_insert_error)(self.raw)) };
        Err(Error::clickhouse(
            message.unwrap_or_else(|| "chDB insert stream failed".into()),
        ))
    }

    /// Ends the data, commits it, and returns what was written.
    pub fn finish(mut self) -> Result<Stats, Error> {
        let api = self.conn.api();
        self.done = true;
        // SAFETY: `raw` is a live insert handle, finished once.
        let raw = unsafe { (api.stream_done)(self.raw) };
        let result = RawResult::new(api, raw)?;
        result.check()?;
        Ok(result.stats())
    }
}

impl Drop for InsertStream {
    fn drop(&mut self) {
        let api = self.conn.api();
        // SAFETY: cancel only when unfinished; destroy exactly once.
        unsafe {
            if !self.done {
                (api.stream_cancel_insert)(self.raw);
            }
            (api.destroy_insert_stream)(self.raw);
        }
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_row_binary_headers() {
        // 2 columns: "a", "bb", types "UInt8", "String"; then a row.
        let data = b"\x02\x01a\x02bb\x05UInt8\x06String\x07rowdata";
        assert_eq!(row_binary_header_len(data, true), 1 + 2 + 3 + 6 + 7);
        assert_eq!(row_binary_header_len(data, false), 1 + 2 + 3);
    }
}
