//! The errors of the engine, carrying ClickHouse's own text.

use std::path::PathBuf;

/// What opening the engine, running a query or streaming an insert can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `libchdb.so` is not where it was looked for.
    #[error("chDB library not found at {}; run scripts/setup.sh or set TERN_CHDB_LIB", path.display())]
    LibraryNotFound {
        /// The path that was tried.
        path: PathBuf,
    },
    /// The library file exists but could not be loaded or lacks an entry point.
    #[error("cannot load chDB library {}: {message}", path.display())]
    LibraryLoad {
        /// The library file.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// The process already loaded another `libchdb.so`; one library per process.
    #[error("chDB library {} is already loaded; cannot load {} as well", loaded.display(), requested.display())]
    LibraryMismatch {
        /// The library in use.
        loaded: PathBuf,
        /// The one asked for.
        requested: PathBuf,
    },
    /// The process already runs the engine on another data directory; chDB allows one
    /// data directory per process.
    #[error("the chDB engine already runs on {}; one data directory per process, cannot open {}", open.display(), requested.display())]
    AlreadyOpen {
        /// The directory in use.
        open: PathBuf,
        /// The one asked for.
        requested: PathBuf,
    },
    /// `chdb_connect` refused the data directory (another process holds it, bad path, …).
    #[error("cannot open chDB data directory {}: {message}", path.display())]
    Open {
        /// The data directory.
        path: PathBuf,
        /// What chDB or the file system said.
        message: String,
    },
    /// ClickHouse raised an exception; `message` is its text, as in
    /// `Code: 60. DB::Exception: Unknown table … (UNKNOWN_TABLE)`.
    #[error("{message}")]
    ClickHouse {
        /// The numeric exception code parsed from `Code: N.`, when present.
        code: Option<u32>,
        /// ClickHouse's message, verbatim.
        message: String,
    },
    /// An argument cannot be passed to the engine (NUL in a name, bad setting name, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// Wraps an exception text from the engine, parsing its `Code: N.` prefix.
    pub(crate) fn clickhouse(message: impl Into<String>) -> Self {
        let message = message.into();
        Error::ClickHouse {
            code: parse_code(&message),
            message,
        }
    }

    /// The ClickHouse exception code, when the error is a ClickHouse exception that has
    /// one.
    pub fn code(&self) -> Option<u32> {
        match self {
            Error::ClickHouse { code, .. } => *code,
            _ => None,
        }
    }
}

/// Parses the `N` of a leading `Code: N.` in an exception text.
fn parse_code(message: &str) -> Option<u32> {
    let rest = message.trim_start().strip_prefix("Code:")?.trim_start();
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_code_of_an_exception() {
        let err = Error::clickhouse("Code: 60. DB::Exception: Unknown table. (UNKNOWN_TABLE)");
        assert_eq!(err.code(), Some(60));
        assert!(err.to_string().starts_with("Code: 60. DB::Exception"));
    }

    #[test]
    fn leaves_the_code_empty_when_the_text_has_none() {
        assert_eq!(Error::clickhouse("something broke").code(), None);
        assert_eq!(Error::clickhouse("Code: x").code(), None);
    }
}
