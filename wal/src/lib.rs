//! Tern's write-ahead log: the collector's promise that nothing it acknowledged is lost.
//!
//! An OTLP request is acknowledged only after its spans were [appended](Wal::append). One
//! store writer [reads](Wal::read) the log in order, inserts into ClickHouse, and
//! [commits](Wal::commit) what the store confirmed. The same log is the spill buffer while
//! the store is down (it grows up to [`WalOptions::max_bytes`], then appends fail with
//! [`AppendError::Full`]), and the replay source after a crash: [`Wal::open`] cuts off a
//! torn tail and resumes at the [checkpoint](Wal::checkpoint).
//!
//! A store writer loop:
//!
//! ```no_run
//! # async fn store(_: &[tern_wal::Record]) {}
//! # async fn run(wal: tern_wal::Wal) -> Result<(), tern_wal::ReadError> {
//! let mut at = wal.checkpoint();
//! loop {
//!     let batch = wal.read(at, 8 << 20)?;
//!     let Some(last) = batch.last() else {
//!         wal.wait_for_append(at).await;
//!         continue;
//!     };
//!     at = last.next;
//!     store(&batch).await; // retried until the store confirms
//!     wal.commit(at).expect("checkpoint written");
//! }
//! # }
//! ```
//!
//! The on-disk format is described in the `format` module source and in the crate README;
//! the recovery rules in [`RecoveryReport`] and the `recovery` module.

mod error;
mod format;
mod lock;
mod options;
mod position;
mod read;
mod recovery;
mod stats;
mod wal;

pub use error::{AppendError, CommitError, OpenError, ReadError};
pub use format::MAX_RECORD_BYTES;
pub use options::{SyncPolicy, WalOptions};
pub use position::Position;
pub use read::Record;
pub use stats::{Damage, RecoveryReport, Truncation, WalStats};
pub use wal::Wal;
