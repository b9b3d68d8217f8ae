//! How a WAL is sized and how hard it tries to reach the disk.

use serde::{Deserialize, Serialize};

use crate::error::OpenError;
use crate::format::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};

/// Options of [`Wal::open`](crate::Wal::open).
///
/// It deserializes from the collector's config (unknown keys are rejected, missing keys take
/// their defaults):
///
/// ```
/// let opts: tern_wal::WalOptions = serde_json::from_str(r#"{"sync": "always"}"#).unwrap();
/// assert_eq!(opts.sync, tern_wal::SyncPolicy::Always);
/// assert_eq!(opts.max_bytes, 1 << 30);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalOptions {
    /// Size at which the WAL starts a new segment file. Default 64 MiB.
    ///
    /// Disk space comes back one whole segment at a time, once every record in it is
    /// committed. A record larger than this gets a segment of its own.
    pub segment_bytes: u64,
    /// Bound on the bytes appended and not yet committed (record frames included). Default 1 GiB.
    ///
    /// An append that would pass it fails with [`AppendError::Full`](crate::AppendError::Full)
    /// and writes nothing: the collector answers 429 / RESOURCE_EXHAUSTED. The disk holds at
    /// most about `max_bytes + segment_bytes`: the committed head of the oldest segment stays
    /// until a commit lands in a later segment.
    pub max_bytes: u64,
    /// When appends reach the disk. Default [`SyncPolicy::Never`].
    pub sync: SyncPolicy,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            max_bytes: 1 << 30,
            sync: SyncPolicy::Never,
        }
    }
}

impl WalOptions {
    pub(crate) fn validate(&self) -> Result<(), OpenError> {
        if self.segment_bytes <= SEGMENT_HEADER_LEN + FRAME_HEADER_LEN {
            return Err(OpenError::InvalidOptions(
                "segment_bytes must exceed the segment and frame headers (24 bytes)",
            ));
        }
        if self.max_bytes <= FRAME_HEADER_LEN {
            return Err(OpenError::InvalidOptions(
                "max_bytes must exceed one frame header (8 bytes)",
            ));
        }
        Ok(())
    }
}

/// When an append is made durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPolicy {
    /// An append returns once its `write` returned: the record is in the page cache. It
    /// survives the process being killed (`kill -9`, a panic, an OOM kill) but not a power
    /// loss or a kernel crash. The default: fast, and it covers the common failure.
    #[default]
    Never,
    /// Every append returns only after `fdatasync` of its segment (concurrent appends share
    /// one sync), new segments and checkpoints are synced with their directory. Survives
    /// power loss, at the cost of a disk flush per batch of concurrent appends.
    Always,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_64_mib_segments_1_gib_bound_and_no_sync() {
        let opts = WalOptions::default();
        assert_eq!(opts.segment_bytes, 64 * 1024 * 1024);
        assert_eq!(opts.max_bytes, 1024 * 1024 * 1024);
        assert_eq!(opts.sync, SyncPolicy::Never);
        assert!(opts.validate().is_ok());
    }

    #[test]
    fn tiny_segments_are_rejected() {
        let opts = WalOptions {
            segment_bytes: 24,
            ..WalOptions::default()
        };
        assert!(matches!(opts.validate(), Err(OpenError::InvalidOptions(_))));
    }
}
