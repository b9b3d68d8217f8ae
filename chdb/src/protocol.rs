//! The ClickHouse HTTP interface, as far as it is plain data: which URL parameters are
//! protocol and which are settings, multipart bodies, exception codes to HTTP statuses,
//! and the `X-ClickHouse-*` response headers.

use crate::engine::Stats;

/// What a request asks for, from its URL parameters, headers and multipart fields.
#[derive(Debug, Default, Clone)]
pub(crate) struct Params {
    /// `query=`, possibly with more text from the body.
    pub query: Option<String>,
    /// `database=` or `X-ClickHouse-Database`.
    pub database: Option<String>,
    /// `default_format=` or `X-ClickHouse-Format`.
    pub format: Option<String>,
    /// `compress=1`: respond in ClickHouse block framing.
    pub compress: bool,
    /// `decompress=1`: the body is in ClickHouse block framing.
    pub decompress: bool,
    /// `enable_http_compression=`: `Some(false)` refuses `Accept-Encoding`.
    pub http_compression: Option<bool>,
    /// `query_id=`.
    pub query_id: Option<String>,
    /// `readonly=` other than 0.
    pub read_only: bool,
    /// `wait_end_of_query=1`: buffer the whole result before answering.
    pub wait_end_of_query: bool,
    /// `param_<name>=`, by name.
    pub params: Vec<(String, String)>,
    /// Everything else: ClickHouse settings.
    pub settings: Vec<(String, String)>,
}

/// Parameters that belong to the HTTP interface itself, or that cannot apply to an
/// embedded engine, and are accepted without effect.
const IGNORED: &[&str] = &[
    "user",
    "password",
    "quota_key",
    "role",
    "session_id",
    "session_timeout",
    "session_check",
    "buffer_size",
    "client_protocol_version",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "http_zlib_compression_level",
    "http_native_compression_disable_checksumming_on_decompress",
    "add_http_cors_header",
    "cancel_http_readonly_queries_on_client_close",
    "http_wait_end_of_query",
    "http_response_buffer_size",
    "output_format_enable_streaming",
    "stacktrace",
];

impl Params {
    /// Reads the URL query string.
    pub(crate) fn from_query_string(query: &str) -> Self {
        let mut params = Params::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            params.set(&name, value.into_owned());
        }
        params
    }

    /// Takes one name/value pair (URL parameter or multipart field).
    pub(crate) fn set(&mut self, name: &str, value: String) {
        let flag = |v: &str| !matches!(v, "" | "0" | "false");
        match name {
            "query" => self.query = Some(value),
            "database" => self.database = Some(value).filter(|v| !v.is_empty()),
            "default_format" => self.format = Some(value).filter(|v| !v.is_empty()),
            "compress" => self.compress = flag(&value),
            "decompress" => self.decompress = flag(&value),
            "enable_http_compression" => self.http_compression = Some(flag(&value)),
            "query_id" => self.query_id = Some(value).filter(|v| !v.is_empty()),
            "readonly" => self.read_only = flag(&value),
            "wait_end_of_query" => self.wait_end_of_query = flag(&value),
            _ if IGNORED.contains(&name) => {}
            _ => match name.strip_prefix("param_") {
                Some(param) => self.params.push((param.to_owned(), value)),
                None => self.settings.push((name.to_owned(), value)),
            },
        }
    }
}

/// The named fields of a `multipart/form-data` body; `Err` names what cannot be handled
/// (file parts, i.e. external tables).
pub(crate) fn parse_multipart(
    body: &[u8],
    boundary: &str,
) -> Result<Vec<(String, String)>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut fields = Vec::new();
    let mut rest = match find(body, delimiter) {
        Some(at) => &body[at + delimiter.len()..],
        None => return Err("multipart body without its boundary".into()),
    };
    loop {
        if rest.starts_with(b"--") {
            return Ok(fields);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("malformed multipart body")?;
        let head_end = find(rest, b"\r\n\r\n").ok_or("malformed multipart part")?;
        let head = String::from_utf8_lossy(&rest[..head_end]);
        let content = &rest[head_end + 4..];
        let end = find(content, delimiter).ok_or("unterminated multipart part")?;
        let value = content[..end]
            .strip_suffix(b"\r\n")
            .unwrap_or(&content[..end]);
        let mut name = None;
        for line in head.split("\r\n") {
            let Some((key, val)) = line.split_once(':') else {
                continue;
            };
            if !key.trim().eq_ignore_ascii_case("content-disposition") {
                continue;
            }
            for attr in val.split(';').map(str::trim) {
                if let Some(n) = attr.strip_prefix("name=") {
                    name = Some(n.trim_matches('"').to_owned());
                } else if attr.starts_with("filename=") {
                    return Err("external tables (multipart files) are not supported".into());
                }
            }
        }
        let name = name.ok_or("multipart part without a name")?;
        fields.push((name, String::from_utf8_lossy(value).into_owned()));
        rest = &content[end + delimiter.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The HTTP status ClickHouse answers an exception code with
/// (`exceptionCodeToHTTPStatus.cpp`).
pub(crate) fn status_for_code(code: u32) -> u16 {
    match code {
        194 => 401,
        192 | 193 | 516 | 512 | 497 | 164 => 403,
        36 | 427 | 6 | 25 | 26 | 38 | 41 | 72 | 441 | 675 | 676 | 27 | 376 | 15 | 44 | 37 | 123
        | 8 | 167 | 168 | 223 | 62 | 117 | 53 | 321 => 400,
        60 | 46 | 47 | 50 | 56 | 81 | 115 | 152 | 63 | 73 | 336 | 78 | 511 => 404,
        229 => 413,
        48 => 501,
        209 | 76 | 439 => 503,
        381 => 411,
        159 => 408,
        779 => 415,
        _ => 500,
    }
}

/// The text of an exception as ClickHouse puts it in a body: `Code: N. DB::Exception: …`
/// (messages from the engine already have that shape).
pub(crate) fn exception_text(code: u32, message: &str) -> String {
    if message.trim_start().starts_with("Code:") {
        message.trim().to_owned()
    } else {
        format!("Code: {code}. DB::Exception: {}", message.trim())
    }
}

/// The block ClickHouse (25.11+) appends to a response body that fails after its headers
/// went out, marked by the `X-ClickHouse-Exception-Tag` it sent:
/// `\r\n__exception__\r\n<tag>\r\n<message>\n<len> <tag>\r\n__exception__\r\n`, where
/// `len` counts the message and its newline.
pub(crate) fn exception_block(tag: &str, message: &str) -> String {
    let message = format!("{}\n", message.trim());
    format!(
        "\r\n__exception__\r\n{tag}\r\n{message}{} {tag}\r\n__exception__\r\n",
        message.len()
    )
}

/// `X-ClickHouse-Summary`: a JSON object of decimal strings.
pub(crate) fn summary(stats: &Stats) -> String {
    format!(
        concat!(
            "{{\"read_rows\":\"{}\",\"read_bytes\":\"{}\",\"written_rows\":\"{}\",",
            "\"written_bytes\":\"{}\",\"total_rows_to_read\":\"{}\",\"result_rows\":\"{}\",",
            "\"result_bytes\":\"{}\",\"elapsed_ns\":\"{}\"}}"
        ),
        stats.read_rows,
        stats.read_bytes,
        stats.written_rows,
        stats.written_bytes,
        stats.read_rows,
        stats.result_rows,
        stats.result_bytes,
        stats.elapsed.as_nanos()
    )
}

/// The `Content-Type` ClickHouse gives output in `format`.
pub(crate) fn content_type(format: &str) -> &'static str {
    match format {
        f if f.starts_with("TabSeparated") || f.starts_with("TSV") => {
            "text/tab-separated-values; charset=UTF-8"
        }
        f if f.starts_with("CSV") => "text/csv; charset=UTF-8; header=absent",
        f if f.starts_with("JSON") || f == "NDJSON" => "application/json; charset=UTF-8",
        f if f.starts_with("RowBinary")
            || matches!(
                f,
                "Native" | "Parquet" | "Arrow" | "ArrowStream" | "ORC" | "Avro"
            ) =>
        {
            "application/octet-stream"
        }
        _ => "text/plain; charset=UTF-8",
    }
}

/// A short random lowercase tag (exception tags, generated query ids).
pub(crate) fn random_tag(len: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut seed = std::collections::hash_map::RandomState::new().build_hasher();
    seed.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default(),
    );
    let mut state = seed.finish() | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_url_parameters_into_protocol_params_and_settings() {
        let p = Params::from_query_string(
            "query=SELECT+1&database=db&default_format=RowBinary&compress=1&decompress=0\
             &param_x=5&max_threads=2&session_id=s&readonly=1&query_id=q",
        );
        assert_eq!(p.query.as_deref(), Some("SELECT 1"));
        assert_eq!(p.database.as_deref(), Some("db"));
        assert_eq!(p.format.as_deref(), Some("RowBinary"));
        assert!(p.compress && !p.decompress && p.read_only);
        assert_eq!(p.params, vec![("x".to_owned(), "5".to_owned())]);
        assert_eq!(p.settings, vec![("max_threads".to_owned(), "2".to_owned())]);
        assert_eq!(p.query_id.as_deref(), Some("q"));
    }

    #[test]
    fn parses_the_multipart_body_of_the_clickhouse_crate() {
        let body = b"--b1\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\nSELECT {x:UInt8}\r\n\
                     --b1\r\nContent-Disposition: form-data; name=\"param_x\"\r\n\r\n7\r\n--b1--\r\n";
        let fields = parse_multipart(body, "b1").unwrap();
        assert_eq!(
            fields,
            vec![
                ("query".to_owned(), "SELECT {x:UInt8}".to_owned()),
                ("param_x".to_owned(), "7".to_owned())
            ]
        );
    }

    #[test]
    fn maps_exception_codes_like_clickhouse() {
        assert_eq!(status_for_code(60), 404);
        assert_eq!(status_for_code(62), 400);
        assert_eq!(status_for_code(164), 403);
        assert_eq!(status_for_code(395), 500);
    }

    #[test]
    fn formats_the_exception_block_the_clickhouse_crate_parses() {
        let message = "Code: 159. DB::Exception: Timeout exceeded: elapsed 126.147987 ms, maximum: 100 ms. (TIMEOUT_EXCEEDED) (version 25.12.1.649 (official build))";
        let block = exception_block("rnywyenlaeqynhmu", message);
        assert!(block.ends_with("\n142 rnywyenlaeqynhmu\r\n__exception__\r\n"));
    }
}
