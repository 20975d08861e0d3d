//! The Palisade gateway: the NFSv3 front end of every Palisade configuration.
//!
//! An NFS client (kernel, libnfs, ...) talks NFSv3 + MOUNT to an nfsserve listener
//! ([`NfsServer`]); [`PalisadeNfs`] turns each NFS call into one file-system operation
//! (`palisade_wire::fs::FsOp`) and hands it to a [`FileService`]. Which service answers
//! is the configuration:
//!
//! - unreplicated (this issue): [`LocalFileService`] — one durable file system
//!   (`palisade_execution::DurableFileSystem`) on a dedicated executor thread with group
//!   commit ([`executor`]); [`Gateway`] bundles it with the listener;
//! - separate agreement/execution: [`ReplicatedFileService`] — the BFT client core
//!   (`palisade-client`) over authenticated links (`palisade-net`);
//! - the privacy firewall (a later issue): a BFT client behind the same trait.
//!
//! File handles ([`handle`]) are a pure function of the export name and the file id, so
//! they survive restarts and are identical on every replica.

pub mod clock;
pub mod convert;
mod error;
pub mod executor;
mod file_service;
mod gateway;
pub mod handle;
mod local;
mod nfs;
mod nfs_stats;
mod replicated;
mod server;

pub use error::GatewayError;
pub use executor::ExecutorStatsSnapshot;
pub use file_service::FileService;
pub use gateway::{ClientCommands, Gateway, GatewayOptions, DEFAULT_EXPORT_NAME};
pub use local::LocalFileService;
pub use nfs::PalisadeNfs;
pub use nfs_stats::{NfsStats, NfsStatsSnapshot};
pub use replicated::{default_client_config, ReplicatedFileService, ReplicatedStats};
pub use server::NfsServer;

/// The file system's configuration (capacity, file count and file size limits).
pub use palisade_execution::FsConfig;

#[cfg(test)]
mod executor_tests;
#[cfg(test)]
mod nfs_tests;
