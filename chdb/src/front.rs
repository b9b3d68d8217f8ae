//! The ClickHouse HTTP interface over the embedded engine: a hyper HTTP/1.1 server that
//! speaks what the `clickhouse` crate (and `curl`, and other ClickHouse tools) send.
//!
//! Inserts stream: the body is decoded as it arrives and appended to a chDB insert
//! stream, so an insert of any size holds only a few chunks in memory. Large `SELECT`
//! results stream too, block by block; an error after the headers went out is reported
//! in the body the way ClickHouse 25.11+ does (`X-ClickHouse-Exception-Tag`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::body::{Body, BodyReader};
use crate::compress::{self, Encoder};
use crate::engine::{is_streamable_format, Engine, QueryOptions, Stats};
use crate::error::Error;
use crate::protocol::{self, Params};
use crate::sql;

/// How the front listens and what it accepts.
#[derive(Debug, Clone)]
pub struct FrontConfig {
    /// Address to listen on; port 0 picks a free one (see [`Front::local_addr`]).
    /// Default: `127.0.0.1:8123`.
    pub listen: SocketAddr,
    /// Most bytes of one request body as sent (compressed or not), inserts included.
    /// Default: 1 GiB.
    pub max_body_bytes: u64,
    /// Most bytes of query text (URL parameter plus body, for anything but an insert's
    /// data). Default: 16 MiB.
    pub max_query_bytes: usize,
    /// Honour `Accept-Encoding: lz4|gzip` for results, as ClickHouse does by default
    /// (`enable_http_compression=1`). On loopback compression costs CPU and saves
    /// nothing; clients that want it off send `enable_http_compression=0` or no
    /// `Accept-Encoding`. Default: true.
    pub http_compression: bool,
    /// How long [`Front::shutdown`] waits for requests in flight. Default: 10 s.
    pub shutdown_grace: Duration,
}

impl Default for FrontConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8123)),
            max_body_bytes: 1 << 30,
            max_query_bytes: 16 << 20,
            http_compression: true,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A running ClickHouse-HTTP front. Dropping it without [`Front::shutdown`] stops
/// accepting at once.
#[derive(Debug)]
pub struct Front {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Front {
    /// Binds `config.listen` and serves `engine` on the current tokio runtime.
    pub async fn bind(engine: Engine, config: FrontConfig) -> std::io::Result<Front> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let state = Arc::new(State { engine, config });
        let task = tokio::spawn(serve(listener, state, stopped));
        tracing::info!(%addr, "clickhouse http front listening");
        Ok(Front {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, the URL to give a ClickHouse client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets requests in flight finish (up to the grace period) and
    /// returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct State {
    engine: Engine,
    config: FrontConfig,
}

async fn serve(listener: TcpListener, state: Arc<State>, mut stopped: oneshot::Receiver<()>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopped => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let service = service_fn(move |request| handle(state.clone(), request));
        let connection = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "http connection ended with an error");
            }
        });
    }
    drop(listener);
    let grace = state.config.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_s = grace.as_secs(),
            "requests still running after the grace period"
        );
    }
    tracing::info!("clickhouse http front stopped");
}

/// A ClickHouse exception to answer with.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u32,
    message: String,
}

impl Failure {
    pub(crate) fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let code = match &error {
            Error::ClickHouse { code, .. } => code.unwrap_or(1002),
            Error::InvalidArgument(_) => 36,
            _ => 1002,
        };
        Failure::new(code, error.to_string())
    }
}

impl From<compress::DecodeError> for Failure {
    fn from(error: compress::DecodeError) -> Self {
        Failure::new(error.code(), error.to_string())
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query_id = protocol::random_tag(8);
    let response = match route(&state, request, &query_id).await {
        Ok(response) => response,
        Err(failure) => error_response(&failure, &query_id),
    };
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "clickhouse http request"
    );
    Ok(response)
}

async fn route(
    state: &Arc<State>,
    request: Request<Incoming>,
    query_id: &str,
) -> Result<Response<Body>, Failure> {
    let method = request.method().clone();
    match (request.uri().path(), &method) {
        ("/ping" | "/replicas_status", &Method::GET | &Method::HEAD) => Ok(ok_text()),
        ("/", &Method::GET | &Method::HEAD | &Method::POST) => {
            if method != Method::POST && !has_query(&request) {
                return Ok(ok_text());
            }
            query(state, request, query_id).await
        }
        ("/", _) | ("/ping", _) => Err(Failure::new(
            1002,
            format!("Code: 1002. DB::Exception: HTTP method {method} is not supported. (UNKNOWN_EXCEPTION)"),
        )),
        (path, _) => Ok(Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "text/plain; charset=UTF-8")
            .body(Body::full(format!(
                "There is no handle {path}\n\nUse / or /ping for health checks.\n"
            )))
            .expect("valid response")),
    }
}

fn has_query(request: &Request<Incoming>) -> bool {
    request
        .uri()
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "query"))
}

fn ok_text() -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=UTF-8")
        .body(Body::full("Ok.\n"))
        .expect("valid response")
}

async fn query(
    state: &Arc<State>,
    request: Request<Incoming>,
    query_id: &str,
) -> Result<Response<Body>, Failure> {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let mut params = Params::from_query_string(parts.uri.query().unwrap_or(""));
    if let Some(database) = header_str(headers, "x-clickhouse-database") {
        params.database = Some(database.to_owned());
    }
    if let Some(format) = header_str(headers, "x-clickhouse-format") {
        params.format = Some(format.to_owned());
    }
    let query_id = params
        .query_id
        .clone()
        .unwrap_or_else(|| query_id.to_owned());
    let mut body = BodyReader::new(body, headers, &params, state.config.max_body_bytes)?;
    if parts.method != Method::POST {
        params.read_only = true;
        body.skip();
    }
    if let Some(boundary) = multipart_boundary(headers) {
        let raw = body.collect(state.config.max_query_bytes).await?;
        let fields = protocol::parse_multipart(&raw, &boundary).map_err(|e| {
            Failure::new(36, format!("Code: 36. DB::Exception: {e}. (BAD_ARGUMENTS)"))
        })?;
        for (name, value) in fields {
            params.set(&name, value);
        }
    }
    let encoder = response_encoder(&state.config, headers, &params);
    let options = QueryOptions {
        database: params.database.clone(),
        settings: std::mem::take(&mut params.settings),
        params: std::mem::take(&mut params.params),
        read_only: params.read_only,
    };
    let reply = Reply {
        query_id,
        format: params
            .format
            .clone()
            .unwrap_or_else(|| "TabSeparated".into()),
        encoder,
        whole: params.wait_end_of_query,
    };

    // `query=INSERT … FORMAT x` with the data as the body: stream it in.
    let url_query = params.query.take().unwrap_or_default();
    if let Some(split) = sql::split_insert_format(url_query.as_bytes()) {
        let sql = format!("{}FORMAT {}", split.head, split.format);
        let mut initial = split.data.to_vec();
        if !initial.is_empty() {
            initial.push(b'\n');
        }
        return insert(state, sql, options, initial.into(), body, &reply).await;
    }

    // Otherwise the text is the URL query, a line break, and the body; look at its start
    // to tell an insert with inline data from a query.
    let mut text = url_query.into_bytes();
    let peek_until = text.len() + PEEK_BYTES;
    let mut separated = text.is_empty();
    while text.len() < peek_until {
        match body.next_chunk().await? {
            Some(chunk) => {
                if !separated {
                    text.push(b'\n');
                    separated = true;
                }
                text.extend_from_slice(&chunk);
            }
            None => break,
        }
    }
    if let Some(split) = sql::split_insert_format(&text) {
        let sql = format!("{}FORMAT {}", split.head, split.format);
        let initial = Bytes::copy_from_slice(split.data);
        return insert(state, sql, options, initial, body, &reply).await;
    }
    let limit = state.config.max_query_bytes;
    while let Some(chunk) = body.next_chunk().await? {
        text.extend_from_slice(&chunk);
        if text.len() > limit {
            return Err(too_large(limit as u64));
        }
    }
    if text.len() > limit {
        return Err(too_large(limit as u64));
    }
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(Failure::new(
            62,
            "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)",
        ));
    }
    run_query(state, text, options, reply).await
}

/// How much of the body is read to find an insert's `FORMAT` clause.
const PEEK_BYTES: usize = 64 << 10;

/// How to answer a query.
struct Reply {
    query_id: String,
    format: String,
    encoder: Encoder,
    whole: bool,
}

impl Reply {
    fn headers(&self, builder: http::response::Builder) -> http::response::Builder {
        builder
            .header("X-ClickHouse-Query-Id", &self.query_id)
            .header("X-ClickHouse-Server-Display-Name", "tern-chdb")
    }
}

pub(crate) fn too_large(limit: u64) -> Failure {
    Failure::new(
        229,
        format!("Code: 229. DB::Exception: Request body is larger than the limit of {limit} bytes. (QUERY_IS_TOO_LARGE)"),
    )
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn multipart_boundary(headers: &HeaderMap) -> Option<String> {
    let content_type = header_str(headers, "content-type")?;
    let rest = content_type.strip_prefix("multipart/form-data")?;
    rest.split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_owned())
        .next()
}

fn response_encoder(config: &FrontConfig, headers: &HeaderMap, params: &Params) -> Encoder {
    if params.compress {
        return Encoder::Blocks;
    }
    if !config.http_compression || params.http_compression == Some(false) {
        return Encoder::Identity;
    }
    let accepted = header_str(headers, "accept-encoding").unwrap_or("");
    let accepts = |name: &str| {
        accepted.split(',').any(|c| {
            c.split(';')
                .next()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case(name))
        })
    };
    if accepts("lz4") {
        Encoder::lz4()
    } else if accepts("gzip") {
        Encoder::gzip()
    } else {
        Encoder::Identity
    }
}

/// Feeds an insert stream from the request body on a blocking thread.
async fn insert(
    state: &Arc<State>,
    sql: String,
    options: QueryOptions,
    initial: Bytes,
    mut body: BodyReader,
    reply: &Reply,
) -> Result<Response<Body>, Failure> {
    enum Feed {
        Data(Bytes),
        End,
    }
    let engine = state.engine.clone();
    let (tx, mut rx) = mpsc::channel::<Feed>(4);
    let worker = tokio::task::spawn_blocking(move || -> Result<Stats, Error> {
        let mut stream = engine.insert_stream(&sql, &options)?;
        loop {
            match rx.blocking_recv() {
                Some(Feed::Data(data)) => stream.append(&data)?,
                Some(Feed::End) => return stream.finish(),
                // The request failed: dropping the stream cancels the insert.
                None => return Err(Error::InvalidArgument("insert aborted".into())),
            }
        }
    });
    let mut fed = if initial.is_empty() {
        true
    } else {
        tx.send(Feed::Data(initial)).await.is_ok()
    };
    let mut body_error = None;
    while fed {
        match body.next_chunk().await {
            Ok(Some(chunk)) => fed = tx.send(Feed::Data(chunk)).await.is_ok(),
            Ok(None) => {
                let _ = tx.send(Feed::End).await;
                break;
            }
            Err(failure) => {
                body_error = Some(failure);
                break;
            }
        }
    }
    drop(tx);
    let outcome = worker
        .await
        .map_err(|e| Failure::new(1002, format!("insert worker failed: {e}")))?;
    if let Some(failure) = body_error {
        return Err(failure);
    }
    let stats = outcome?;
    Ok(reply
        .headers(Response::builder())
        .header(header::CONTENT_TYPE, "text/plain; charset=UTF-8")
        .header("X-ClickHouse-Summary", protocol::summary(&stats))
        .body(Body::full(Bytes::new()))
        .expect("valid response"))
}

/// Runs a query on a blocking thread; its output comes back chunk by chunk, already
/// encoded for the response.
async fn run_query(
    state: &Arc<State>,
    sql: Vec<u8>,
    options: QueryOptions,
    reply: Reply,
) -> Result<Response<Body>, Failure> {
    let engine = state.engine.clone();
    let Reply {
        query_id,
        format,
        encoder,
        whole,
    } = reply;
    let streamed = !whole
        && is_streamable_format(&format)
        && matches!(
            sql::leading_keyword(&sql).as_deref(),
            Some("SELECT" | "WITH")
        );
    let tag = protocol::random_tag(16);
    let content_encoding = encoder.content_encoding();
    let (start_tx, start_rx) = oneshot::channel();
    let (tx, rx) = mpsc::channel(2);
    let producer = Producer {
        engine,
        sql,
        format: format.clone(),
        options,
        encoder,
        tag: tag.clone(),
        start: Some(start_tx),
        tx,
    };
    tokio::task::spawn_blocking(move || producer.run(streamed));
    let stats = match start_rx.await {
        Ok(Ok(stats)) => stats,
        Ok(Err(error)) => return Err(error.into()),
        Err(_) => return Err(Failure::new(1002, "query worker ended without an answer")),
    };
    let mut builder = Response::builder()
        .header("X-ClickHouse-Query-Id", &query_id)
        .header("X-ClickHouse-Server-Display-Name", "tern-chdb")
        .header("X-ClickHouse-Format", &format)
        .header(header::CONTENT_TYPE, protocol::content_type(&format));
    if let Some(stats) = stats {
        builder = builder.header("X-ClickHouse-Summary", protocol::summary(&stats));
    }
    if streamed {
        builder = builder.header("X-ClickHouse-Exception-Tag", &tag);
    }
    if let Some(coding) = content_encoding {
        builder = builder.header(header::CONTENT_ENCODING, coding);
    }
    Ok(builder.body(Body::Stream(rx)).expect("valid response"))
}

/// The blocking side of a query: runs it, encodes the output, sends it on.
struct Producer {
    engine: Engine,
    sql: Vec<u8>,
    format: String,
    options: QueryOptions,
    encoder: Encoder,
    tag: String,
    start: Option<oneshot::Sender<Result<Option<Stats>, Error>>>,
    tx: mpsc::Sender<Bytes>,
}

impl Producer {
    fn run(mut self, streamed: bool) {
        if !streamed {
            match self
                .engine
                .query_with(&self.sql, &self.format, &self.options)
            {
                Err(error) => self.fail(error),
                Ok(out) => {
                    if self.begin(Some(out.stats)) {
                        let _ = self.send(out.data) && self.end();
                    }
                }
            }
            return;
        }
        let mut stream = match self
            .engine
            .query_stream(&self.sql, &self.format, &self.options)
        {
            Ok(stream) => stream,
            Err(error) => return self.fail(error),
        };
        let first = match stream.next() {
            Some(Err(error)) => return self.fail(error),
            Some(Ok(chunk)) => Some(chunk),
            None => None,
        };
        if !self.begin(None) {
            return;
        }
        if let Some(chunk) = first {
            if !self.send(chunk) {
                return;
            }
        }
        for item in stream.by_ref() {
            match item {
                Ok(chunk) => {
                    if !self.send(chunk) {
                        // The client went away; dropping the stream cancels the query.
                        return;
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "query failed while streaming its result");
                    let text =
                        protocol::exception_text(error.code().unwrap_or(1002), &error.to_string());
                    let block = protocol::exception_block(&self.tag, &text);
                    let _ = self.send(Bytes::from(block));
                    break;
                }
            }
        }
        self.end();
    }

    fn fail(&mut self, error: Error) {
        if let Some(start) = self.start.take() {
            let _ = start.send(Err(error));
        }
    }

    fn begin(&mut self, stats: Option<Stats>) -> bool {
        self.start
            .take()
            .is_some_and(|start| start.send(Ok(stats)).is_ok())
    }

    fn send(&mut self, data: Bytes) -> bool {
        match self.encoder.encode(data) {
            Ok(encoded) if encoded.is_empty() => true,
            Ok(encoded) => self.tx.blocking_send(encoded).is_ok(),
            Err(error) => {
                tracing::warn!(%error, "cannot encode a response chunk");
                false
            }
        }
    }

    fn end(self) -> bool {
        match self.encoder.finish() {
            Ok(tail) if tail.is_empty() => true,
            Ok(tail) => self.tx.blocking_send(tail).is_ok(),
            Err(error) => {
                tracing::warn!(%error, "cannot finish a response body");
                false
            }
        }
    }
}

fn error_response(failure: &Failure, query_id: &str) -> Response<Body> {
    let status = StatusCode::from_u16(protocol::status_for_code(failure.code))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let text = protocol::exception_text(failure.code, &failure.message);
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=UTF-8")
        .header("X-ClickHouse-Exception-Code", failure.code.to_string())
        .header("X-ClickHouse-Query-Id", query_id)
        .header("X-ClickHouse-Server-Display-Name", "tern-chdb")
        .body(Body::full(format!("{text}\n")))
        .expect("valid response")
}
