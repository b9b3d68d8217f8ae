//! Query-string parameters shared by the API endpoints, parsed strictly: an unknown
//! parameter or a bad value is a 400 that names it.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::ApiError;

/// Parses a raw query string into `T`.
pub fn parse<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    let pairs = form_urlencoded::parse(raw.unwrap_or("").as_bytes());
    serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs)).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            ApiError::BadRequest(format!("bad query parameters: {}", e.inner()))
        } else {
            ApiError::BadRequest(format!("bad query parameter {path}: {}", e.inner()))
        }
    })
}

/// A time range with optional service / instance / endpoint filters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// Start, Unix milliseconds (inclusive). Default: one hour before `to`.
    pub from: Option<i64>,
    /// End, Unix milliseconds (exclusive). Default: now.
    pub to: Option<i64>,
    pub service: Option<String>,
    pub instance: Option<String>,
    pub endpoint: Option<String>,
    /// Only failed transactions.
    #[serde(default)]
    pub errors_only: bool,
    /// Elapsed-time box, milliseconds (inclusive).
    pub min_elapsed_ms: Option<f64>,
    pub max_elapsed_ms: Option<f64>,
    /// A transaction id (`<trace_id>` or `<trace_id>:<span_id>`, hex).
    pub txid: Option<String>,
    /// Most rows or points to return.
    pub limit: Option<u64>,
}

/// A validated time range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Range {
    pub fn seconds(&self) -> f64 {
        (self.to_ms - self.from_ms) as f64 / 1000.0
    }
}

impl Filters {
    pub fn range(&self, now_ms: i64) -> Result<Range, ApiError> {
        let to_ms = self.to.unwrap_or(now_ms);
        let from_ms = self.from.unwrap_or(to_ms - 3_600_000);
        if from_ms >= to_ms {
            return Err(ApiError::BadRequest(format!(
                "from ({from_ms}) must be before to ({to_ms}); both are Unix milliseconds"
            )));
        }
        if from_ms < 0 {
            return Err(ApiError::BadRequest("from must not be negative".into()));
        }
        Ok(Range { from_ms, to_ms })
    }

    pub fn limit(&self, default: u64, max: u64) -> Result<u64, ApiError> {
        match self.limit {
            None => Ok(default.min(max)),
            Some(0) => Err(ApiError::BadRequest("limit must be at least 1".into())),
            Some(n) if n > max => Err(ApiError::BadRequest(format!("limit must be at most {max}"))),
            Some(n) => Ok(n),
        }
    }

    /// The elapsed box in microseconds.
    pub fn elapsed_us(&self) -> Result<(Option<u64>, Option<u64>), ApiError> {
        let conv = |name: &str, v: Option<f64>| match v {
            Some(ms) if !ms.is_finite() || ms < 0.0 => Err(ApiError::BadRequest(format!(
                "{name} must be a non-negative number of milliseconds"
            ))),
            Some(ms) => Ok(Some((ms * 1000.0).round() as u64)),
            None => Ok(None),
        };
        let lo = conv("min_elapsed_ms", self.min_elapsed_ms)?;
        let hi = conv("max_elapsed_ms", self.max_elapsed_ms)?;
        if let (Some(a), Some(b)) = (lo, hi) {
            if a > b {
                return Err(ApiError::BadRequest(
                    "min_elapsed_ms is above max_elapsed_ms".into(),
                ));
            }
        }
        Ok((lo, hi))
    }
}

/// Parses a hex id of exactly `N` bytes.
pub fn hex_id<const N: usize>(name: &str, text: &str) -> Result<[u8; N], ApiError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| {
        ApiError::BadRequest(format!(
            "{name} must be {} hex characters, got {text:?}",
            2 * N
        ))
    })?;
    Ok(out)
}

/// A transaction id: `<trace_id>:<span_id>`, or a bare trace id.
pub fn txid(text: &str) -> Result<([u8; 16], Option<[u8; 8]>), ApiError> {
    match text.split_once(':') {
        Some((t, s)) => Ok((hex_id("trace_id", t)?, Some(hex_id("span_id", s)?))),
        None => Ok((hex_id("trace_id", text)?, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parameters_are_named_in_the_error() {
        let err = parse::<Filters>(Some("form=1")).unwrap_err();
        assert!(err.to_string().contains("form"), "{err}");
    }

    #[test]
    fn bad_values_name_their_parameter() {
        let err = parse::<Filters>(Some("limit=abc")).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
    }

    #[test]
    fn a_reversed_range_is_a_bad_request() {
        let f: Filters = parse(Some("from=2000&to=1000")).unwrap();
        assert!(matches!(f.range(0), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn the_default_range_is_the_last_hour() {
        let f: Filters = parse(None).unwrap();
        assert_eq!(
            f.range(10_000_000).unwrap(),
            Range {
                from_ms: 6_400_000,
                to_ms: 10_000_000
            }
        );
    }

    #[test]
    fn ids_must_be_hex_of_the_right_length() {
        assert!(txid("00112233445566778899aabbccddeeff:0011223344556677").is_ok());
        assert!(txid("0011").is_err());
        assert!(txid("zz112233445566778899aabbccddeeff").is_err());
    }
}
