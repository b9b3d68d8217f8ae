//! Compression on the HTTP interface: ClickHouse's own block framing (`decompress=1` for
//! request bodies, `compress=1` for responses), and HTTP content codings (`lz4` frames
//! and `gzip` both ways).
//!
//! Block framing: `checksum: u128 (CityHash128 of the rest, halves swapped) |
//! method: u8 | compressed size incl. this 9-byte header: u32 LE | raw size: u32 LE |
//! data`.

use std::io::{Read, Write};

use bytes::{Bytes, BytesMut};

const CHECKSUM_LEN: usize = 16;
const HEADER_LEN: usize = 9;
const METHOD_NONE: u8 = 0x02;
const METHOD_LZ4: u8 = 0x82;
const METHOD_ZSTD: u8 = 0x90;
/// ClickHouse's `max_compress_block_size`.
const BLOCK_SIZE: usize = 1 << 20;
/// Largest block accepted from a client.
const MAX_BLOCK_SIZE: usize = 1 << 30;

/// Why a body could not be decoded; shown to the client as ClickHouse would.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("Checksum doesn't match: corrupted data. (CHECKSUM_DOESNT_MATCH)")]
    Checksum,
    #[error("Unknown compression method: {0:#04x}. (UNKNOWN_COMPRESSION_METHOD)")]
    Method(u8),
    #[error("Cannot decompress: {0}. (CANNOT_DECOMPRESS)")]
    Corrupt(String),
    #[error("Unexpected end of compressed data. (CANNOT_DECOMPRESS)")]
    Truncated,
}

impl DecodeError {
    /// The ClickHouse exception code for this error.
    pub(crate) fn code(&self) -> u32 {
        match self {
            DecodeError::Checksum => 40,
            DecodeError::Method(_) => 89,
            DecodeError::Corrupt(_) | DecodeError::Truncated => 271,
        }
    }
}

/// Decodes ClickHouse block framing incrementally: push bytes as they arrive, take out
/// whole decompressed blocks.
#[derive(Default)]
pub(crate) struct BlockDecoder {
    buf: BytesMut,
}

impl BlockDecoder {
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete block, decompressed, if one is buffered.
    pub(crate) fn next_block(&mut self) -> Result<Option<Bytes>, DecodeError> {
        if self.buf.len() < CHECKSUM_LEN + HEADER_LEN {
            return Ok(None);
        }
        let header = &self.buf[CHECKSUM_LEN..CHECKSUM_LEN + HEADER_LEN];
        let method = header[0];
        let compressed = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes")) as usize;
        let raw = u32::from_le_bytes(header[5..9].try_into().expect("4 bytes")) as usize;
        if !(HEADER_LEN..=MAX_BLOCK_SIZE).contains(&compressed) || raw > MAX_BLOCK_SIZE {
            return Err(DecodeError::Corrupt(format!(
                "bad block sizes {compressed}/{raw}"
            )));
        }
        if self.buf.len() < CHECKSUM_LEN + compressed {
            return Ok(None);
        }
        let block = self.buf.split_to(CHECKSUM_LEN + compressed).freeze();
        let expected = u128::from_le_bytes(block[..CHECKSUM_LEN].try_into().expect("16 bytes"));
        let framed = &block[CHECKSUM_LEN..];
        if checksum(framed) != expected {
            return Err(DecodeError::Checksum);
        }
        let data = &framed[HEADER_LEN..];
        match method {
            METHOD_LZ4 => lz4_flex::block::decompress(data, raw)
                .map(Bytes::from)
                .map(Some)
                .map_err(|e| DecodeError::Corrupt(e.to_string())),
            METHOD_NONE => Ok(Some(block.slice(CHECKSUM_LEN + HEADER_LEN..))),
            METHOD_ZSTD => Err(DecodeError::Method(METHOD_ZSTD)),
            other => Err(DecodeError::Method(other)),
        }
    }

    /// Checks that no partial block is left over at the end of the body.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Truncated)
        }
    }
}

fn checksum(framed: &[u8]) -> u128 {
    cityhash_rs::cityhash_102_128(framed).rotate_right(64)
}

/// Frames `data` as LZ4 blocks of at most [`BLOCK_SIZE`] raw bytes each.
pub(crate) fn encode_blocks(data: &[u8], out: &mut Vec<u8>) {
    for chunk in data.chunks(BLOCK_SIZE) {
        let start = out.len();
        out.resize(start + CHECKSUM_LEN + HEADER_LEN, 0);
        out.extend_from_slice(&lz4_flex::block::compress(chunk));
        let compressed = out.len() - start - CHECKSUM_LEN;
        let header = &mut out[start + CHECKSUM_LEN..start + CHECKSUM_LEN + HEADER_LEN];
        header[0] = METHOD_LZ4;
        header[1..5].copy_from_slice(&(compressed as u32).to_le_bytes());
        header[5..9].copy_from_slice(&(chunk.len() as u32).to_le_bytes());
        let sum = checksum(&out[start + CHECKSUM_LEN..]);
        out[start..start + CHECKSUM_LEN].copy_from_slice(&sum.to_le_bytes());
    }
}

/// Decodes a whole request body sent with `Content-Encoding` `gzip`, `deflate` or `lz4`
/// (an LZ4 frame); `None` for an unknown coding.
pub(crate) fn decode_content(coding: &str, body: &[u8]) -> Option<std::io::Result<Vec<u8>>> {
    let mut out = Vec::new();
    let result = match coding {
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(body).read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(body).read_to_end(&mut out),
        "lz4" => lz4_flex::frame::FrameDecoder::new(body).read_to_end(&mut out),
        _ => return None,
    };
    Some(result.map(|_| out))
}

/// How a response body is encoded; chosen from the request, fed chunk by chunk.
pub(crate) enum Encoder {
    Identity,
    /// `compress=1`: ClickHouse block framing.
    Blocks,
    /// `Content-Encoding: lz4`: an LZ4 frame.
    Lz4(lz4_flex::frame::FrameEncoder<Vec<u8>>),
    /// `Content-Encoding: gzip`.
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
}

impl Encoder {
    pub(crate) fn lz4() -> Self {
        let info =
            lz4_flex::frame::FrameInfo::new().block_size(lz4_flex::frame::BlockSize::Max256KB);
        Encoder::Lz4(lz4_flex::frame::FrameEncoder::with_frame_info(
            info,
            Vec::new(),
        ))
    }

    pub(crate) fn gzip() -> Self {
        Encoder::Gzip(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ))
    }

    /// The `Content-Encoding` this encoder produces, if any.
    pub(crate) fn content_encoding(&self) -> Option<&'static str> {
        match self {
            Encoder::Identity | Encoder::Blocks => None,
            Encoder::Lz4(_) => Some("lz4"),
            Encoder::Gzip(_) => Some("gzip"),
        }
    }

    /// Encodes `data`, returning what can be sent now (everything given, flushed).
    pub(crate) fn encode(&mut self, data: Bytes) -> std::io::Result<Bytes> {
        match self {
            Encoder::Identity => Ok(data),
            Encoder::Blocks => {
                let mut out = Vec::with_capacity(data.len() / 2 + 64);
                encode_blocks(&data, &mut out);
                Ok(out.into())
            }
            Encoder::Lz4(encoder) => {
                encoder.write_all(&data)?;
                encoder.flush()?;
                Ok(std::mem::take(encoder.get_mut()).into())
            }
            Encoder::Gzip(encoder) => {
                encoder.write_all(&data)?;
                encoder.flush()?;
                Ok(std::mem::take(encoder.get_mut()).into())
            }
        }
    }

    /// Ends the encoding, returning the trailing bytes.
    pub(crate) fn finish(self) -> std::io::Result<Bytes> {
        match self {
            Encoder::Identity | Encoder::Blocks => Ok(Bytes::new()),
            Encoder::Lz4(encoder) => encoder
                .finish()
                .map(Bytes::from)
                .map_err(std::io::Error::other),
            Encoder::Gzip(encoder) => encoder.finish().map(Bytes::from),
        }
    }
}

/// Reads a whole body through `decoder` into one buffer (tests, small bodies).
#[cfg(test)]
fn decode_all(data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut decoder = BlockDecoder::default();
    let mut out = Vec::new();
    for piece in data.chunks(7) {
        decoder.push(piece);
        while let Some(block) = decoder.next_block()? {
            out.extend_from_slice(&block);
        }
    }
    decoder.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..3_000_000u32)
            .flat_map(|i| (i % 1000).to_le_bytes())
            .collect()
    }

    #[test]
    fn block_framing_round_trips_across_odd_chunking() {
        let data = sample();
        let mut framed = Vec::new();
        encode_blocks(&data, &mut framed);
        assert!(framed.len() < data.len());
        assert_eq!(decode_all(&framed).unwrap(), data);
    }

    #[test]
    fn decodes_what_the_clickhouse_crate_sends() {
        let data = sample();
        let framed = clickhouse::_priv::lz4_compress(&data).unwrap();
        assert_eq!(decode_all(&framed).unwrap(), data);
    }

    #[test]
    fn rejects_a_corrupted_block_and_a_truncated_body() {
        let mut framed = Vec::new();
        encode_blocks(b"hello hello hello", &mut framed);
        let mut bad = framed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(decode_all(&bad), Err(DecodeError::Checksum)));
        framed.pop();
        assert!(matches!(decode_all(&framed), Err(DecodeError::Truncated)));
    }

    #[test]
    fn lz4_frames_decode_with_the_standard_decoder() {
        let data = sample();
        let mut encoder = Encoder::lz4();
        let mut out = Vec::new();
        for chunk in data.chunks(300_001) {
            out.extend_from_slice(&encoder.encode(Bytes::copy_from_slice(chunk)).unwrap());
        }
        out.extend_from_slice(&encoder.finish().unwrap());
        assert_eq!(decode_content("lz4", &out).unwrap().unwrap(), data);
    }

    #[test]
    fn gzip_round_trips() {
        let mut encoder = Encoder::gzip();
        let mut out = encoder.encode(Bytes::from_static(b"abc")).unwrap().to_vec();
        out.extend_from_slice(&encoder.finish().unwrap());
        assert_eq!(decode_content("gzip", &out).unwrap().unwrap(), b"abc");
    }
}
