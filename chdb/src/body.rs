//! Request and response bodies of the front: reading a request within its size limit
//! (decoding `decompress=1` block framing and `Content-Encoding` as it goes), and a
//! response that is whole or streamed from a query's producer.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use hyper::body::{Body as HttpBody, Frame, Incoming};
use tokio::sync::mpsc;

use crate::compress::{self, BlockDecoder};
use crate::front::{header_str, too_large, Failure};
use crate::protocol::Params;

/// Reads a request body, decoding `decompress=1` block framing as it goes and
/// `Content-Encoding` codings whole, within the size limit.
pub(crate) struct BodyReader {
    body: Option<Incoming>,
    blocks: Option<BlockDecoder>,
    coding: Option<String>,
    read: u64,
    limit: u64,
}

impl BodyReader {
    pub(crate) fn new(
        body: Incoming,
        headers: &HeaderMap,
        params: &Params,
        limit: u64,
    ) -> Result<Self, Failure> {
        let coding = header_str(headers, "content-encoding")
            .map(str::to_ascii_lowercase)
            .filter(|c| c != "identity");
        if let Some(coding) = &coding {
            if !matches!(coding.as_str(), "gzip" | "x-gzip" | "deflate" | "lz4") {
                return Err(Failure::new(
                    779,
                    format!("Code: 779. DB::Exception: Unsupported Content-Encoding: {coding}. (UNSUPPORTED_MEDIA_TYPE)"),
                ));
            }
        }
        Ok(Self {
            body: Some(body),
            blocks: params.decompress.then(BlockDecoder::default),
            coding,
            read: 0,
            limit,
        })
    }

    /// Ignores the body (GET).
    pub(crate) fn skip(&mut self) {
        self.body = None;
    }

    /// The next piece of decoded body, `None` at its end.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Bytes>, Failure> {
        if let Some(coding) = self.coding.take() {
            let raw = self.raw_to_end().await?;
            let decoded = compress::decode_content(&coding, &raw)
                .expect("checked coding")
                .map_err(|e| Failure::new(271, format!("Code: 271. DB::Exception: Cannot decompress the request body ({coding}): {e}. (CANNOT_DECOMPRESS)")))?;
            return self.decode(Bytes::from(decoded));
        }
        loop {
            if let Some(blocks) = self.blocks.as_mut() {
                if let Some(block) = blocks.next_block()? {
                    return Ok(Some(block));
                }
            }
            match self.raw_frame().await? {
                Some(data) => match self.blocks.as_mut() {
                    Some(blocks) => blocks.push(&data),
                    None => return Ok(Some(data)),
                },
                None => {
                    if let Some(blocks) = self.blocks.as_ref() {
                        blocks.finish()?;
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// Pushes an already-decoded-coding body through the block decoder if there is one.
    pub(crate) fn decode(&mut self, data: Bytes) -> Result<Option<Bytes>, Failure> {
        let Some(blocks) = self.blocks.as_mut() else {
            return Ok(Some(data));
        };
        blocks.push(&data);
        let mut out = Vec::new();
        while let Some(block) = blocks.next_block()? {
            out.extend_from_slice(&block);
        }
        blocks.finish()?;
        self.blocks = None;
        Ok(Some(out.into()))
    }

    pub(crate) async fn raw_frame(&mut self) -> Result<Option<Bytes>, Failure> {
        let Some(body) = self.body.as_mut() else {
            return Ok(None);
        };
        loop {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await;
            match frame {
                None => {
                    self.body = None;
                    return Ok(None);
                }
                Some(Err(error)) => {
                    return Err(Failure::new(
                        1002,
                        format!("Code: 1002. DB::Exception: Cannot read the request body: {error}. (UNKNOWN_EXCEPTION)"),
                    ))
                }
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    self.read += data.len() as u64;
                    if self.read > self.limit {
                        return Err(too_large(self.limit));
                    }
                    return Ok(Some(data));
                }
            }
        }
    }

    pub(crate) async fn raw_to_end(&mut self) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        while let Some(data) = self.raw_frame().await? {
            out.extend_from_slice(&data);
        }
        Ok(out)
    }

    /// The whole decoded body, at most `limit` bytes.
    pub(crate) async fn collect(&mut self, limit: usize) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        while let Some(chunk) = self.next_chunk().await? {
            out.extend_from_slice(&chunk);
            if out.len() > limit {
                return Err(too_large(limit as u64));
            }
        }
        Ok(out)
    }
}

/// A response body: whole, or chunks from a query's producer.
pub(crate) enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl Body {
    pub(crate) fn full(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        Body::Full((!data.is_empty()).then_some(data))
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|d| d.map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Body::Full(Some(data)) => hyper::body::SizeHint::with_exact(data.len() as u64),
            Body::Full(None) => hyper::body::SizeHint::with_exact(0),
            Body::Stream(_) => hyper::body::SizeHint::default(),
        }
    }
}
