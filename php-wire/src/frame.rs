//! Length-prefixed frames on the extension → forwarder unix stream socket.
//!
//! A frame is a `u32` little-endian payload length followed by the payload: one OTLP
//! `ExportTraceServiceRequest` encoded as protobuf. Payloads larger than [`MAX_FRAME`]
//! are refused on both sides.

/// Largest payload a frame may carry (4 MiB).
pub const MAX_FRAME: usize = 4 << 20;

/// Errors of the frame codec.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// A payload (or an announced length) is larger than [`MAX_FRAME`].
    #[error("frame of {0} bytes is larger than the 4 MiB limit")]
    TooLarge(usize),
}

/// Appends one frame holding `payload` to `out` (length prefix then bytes).
///
/// ```
/// let mut out = Vec::new();
/// tern_php_wire::encode_frame(b"abc", &mut out).unwrap();
/// assert_eq!(out, [3, 0, 0, 0, b'a', b'b', b'c']);
/// ```
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    if payload.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(payload.len()));
    }
    out.reserve(4 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Incremental decoder: push the bytes read from the socket, pop complete payloads.
///
/// After [`FrameError::TooLarge`] the stream cannot be resynchronised: the decoder
/// clears its buffer and the reader should close the connection.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that do not yet form a complete frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete payload, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let rest = &self.buf[self.start..];
        if rest.len() < 4 {
            self.compact();
            return Ok(None);
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > MAX_FRAME {
            self.buf.clear();
            self.start = 0;
            return Err(FrameError::TooLarge(len));
        }
        if rest.len() < 4 + len {
            self.compact();
            return Ok(None);
        }
        let payload = rest[4..4 + len].to_vec();
        self.start += 4 + len;
        Ok(Some(payload))
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_at_every_byte_decode_to_the_same_payloads() {
        let payloads: Vec<Vec<u8>> = vec![b"one".to_vec(), Vec::new(), vec![7u8; 1000]];
        let mut wire = Vec::new();
        for p in &payloads {
            encode_frame(p, &mut wire).unwrap();
        }
        for chunk in [1usize, 2, 3, 5, 64, wire.len()] {
            let mut dec = FrameDecoder::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                dec.push(piece);
                while let Some(f) = dec.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, payloads, "chunk size {chunk}");
            assert_eq!(dec.buffered(), 0);
        }
    }

    #[test]
    fn an_oversized_length_is_an_error_and_clears_the_buffer() {
        let mut dec = FrameDecoder::new();
        dec.push(&((MAX_FRAME as u32) + 1).to_le_bytes());
        dec.push(b"junk");
        assert_eq!(dec.next_frame(), Err(FrameError::TooLarge(MAX_FRAME + 1)));
        assert_eq!(dec.buffered(), 0);
        let mut wire = Vec::new();
        encode_frame(b"ok", &mut wire).unwrap();
        dec.push(&wire);
        assert_eq!(dec.next_frame().unwrap().as_deref(), Some(&b"ok"[..]));
    }

    #[test]
    fn encoding_refuses_a_payload_over_the_limit() {
        let big = vec![0u8; MAX_FRAME + 1];
        let mut out = Vec::new();
        assert_eq!(
            encode_frame(&big, &mut out),
            Err(FrameError::TooLarge(MAX_FRAME + 1))
        );
        assert!(out.is_empty());
    }
}
