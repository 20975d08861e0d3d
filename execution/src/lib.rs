//! Palisade execution: the deterministic, durable NFSv3 file-system state machine that
//! every execution replica runs (Yin et al., SOSP 2003, §3: the execution cluster), and
//! that the unreplicated gateway runs today.
//!
//! - [`FileSystem`] applies agreed batches of [`palisade_wire::fs::FsOp`] strictly in
//!   sequence order, each as ONE atomic durable commit, and answers NFSv3 semantics
//!   (RFC 1813 §3.3). It is deterministic: times come from the batch, ids from a
//!   persistent counter, directories are ordered maps; no wall clock, randomness or hash
//!   map iteration. READ does not update atime (like `noatime`), so reads change no state.
//! - [`Store`] is the seam to storage: point and range reads plus one atomic commit of a
//!   batch's [`ChangeSet`]. [`MemStore`] (in memory, for tests and the simulator) and
//!   [`RedbStore`] (durable, on redb) implement it.
//! - [`StateDigest`]: an incrementally maintained Merkle digest of the logical state
//!   (not of the sequence number), for checkpoints (Castro–Liskov §4.3, §5.3.1);
//!   `export_checkpoint` / `import_checkpoint` move state between replicas (§5.3.2);
//!   [`FsSnapshot`] keeps the state of a checkpoint readable while execution moves on.
//!
//! - [`replica`]: the execution replica core — [`ExecutionReplica`] verifies ORDER
//!   certificates, executes batches in order exactly once per request, signs replies
//!   (ed25519 per reply, or a threshold share per batch for the privacy firewall), opens
//!   sealed requests and seals replies, makes checkpoints stable and catches up by
//!   fetching orders or state.
//!
//! Module map: `exec` (dispatch and helpers), `ops_attr`, `ops_data`, `ops_dir` (the
//! operations), `overlay` (a batch's pending changes), `digest`, `checkpoint`, `names`.

mod checkpoint;
mod config;
mod deferred_sync;
mod digest;
mod error;
mod exec;
mod fs;
mod log_record;
mod mem_store;
mod names;
mod ops_attr;
mod ops_data;
mod ops_dir;
mod overlay;
mod pending;
mod redb_store;
pub mod replica;
mod snapshot;
mod store;
mod wal;

pub use config::FsConfig;
pub use deferred_sync::{DeferredSync, SyncHandle, SyncWaiter};
pub use digest::StateDigest;
pub use error::ExecError;
pub use exec::{IO_MAX, READDIR_MAX_ENTRIES};
pub use fs::{FileSystem, RanBatch};
pub use mem_store::{MemSnapshot, MemStore};
pub use redb_store::{RedbSnapshot, RedbStore, DEFAULT_LOG_BYTES};
pub use replica::{
    ExecTimer, ExecutionReplica, RedundantOrders, ReplicaConfig, ReplicaInput, ReplicaOutput,
    ReplicaStats, ReplyMode,
};
pub use snapshot::FsSnapshot;
pub use store::{Block, BlockMeta, ChangeSet, StateView, Store, BLOCK_SIZE};

/// The file system on durable storage, as replicas and the gateway run it.
pub type DurableFileSystem = FileSystem<RedbStore>;
