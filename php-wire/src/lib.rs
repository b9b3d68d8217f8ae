//! The contract between the Tern PHP extension (`sdk-php-ext`, loaded into every PHP
//! process) and the `tern-agent` forwarder (one process per host).
//!
//! * [`frame`]: the unix stream socket carries `u32` little-endian length-prefixed frames,
//!   each one OTLP `ExportTraceServiceRequest` protobuf, at most [`frame::MAX_FRAME`] bytes.
//! * [`active`]: a shared-memory file of fixed-size slots, one per PHP worker process,
//!   where each worker publishes the transaction it is running (seqlock, lock-free,
//!   no allocation and no syscall on the request path). The forwarder takes snapshots.
//! * [`ring`]: a shared-memory ring per slot that carries the same frames as the socket
//!   without a system call, used while the forwarder drains it (the socket otherwise).
//! * [`otlp`]: writing OTLP trace requests straight as protobuf bytes, shared by the
//!   extension (one request per PHP request) and the Rust agent's exporter.
//!
//! Deliberately tiny: `libc` and `thiserror` only, so the extension stays small.

pub mod active;
pub mod frame;
pub mod otlp;
pub mod ring;

pub use active::{ActiveError, ActiveMap, ActivityKind, SlotSnapshot, SlotWriter};
pub use frame::{encode_frame, FrameDecoder, FrameError, MAX_FRAME};
pub use ring::{Drained, RingWriter, Rings};

/// Default path of the forwarder's unix stream socket (no root needed).
pub const DEFAULT_SOCKET: &str = "/tmp/tern-agent.sock";
/// Default path of the active-transaction shared memory file.
pub const DEFAULT_ACTIVE_PATH: &str = "/dev/shm/tern-active";
/// Default collector OTLP gRPC endpoint handed to the forwarder.
pub const DEFAULT_COLLECTOR: &str = "http://127.0.0.1:4317";
