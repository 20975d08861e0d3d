//! Errors of the gateway library (start-up and shutdown; per-operation failures are
//! NFS status codes, not `GatewayError`s).

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a gateway could not start, or could not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The data directory could not be opened: unreadable, locked by another process,
    /// or corrupt. The file system refuses to start rather than serve damaged state.
    #[error("cannot open the data directory {dir}: {source}")]
    OpenData {
        dir: PathBuf,
        /// Usually a `palisade_execution::ExecError`.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The executor thread could not be started.
    #[error("cannot start the executor thread: {0}")]
    SpawnExecutor(#[source] std::io::Error),
    /// The executor thread ended abnormally (it panicked).
    #[error("the executor thread ended abnormally")]
    ExecutorPanicked,
    /// The NFS listener could not bind its address (bad address, port in use, ...).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// nfsserve 0.11 parses its listen address as `ip:port` with a plain split on ':',
    /// so it cannot bind IPv6 addresses.
    #[error("cannot listen on {0}: only IPv4 listen addresses are supported")]
    Ipv6Unsupported(SocketAddr),
    /// The server task ended in an unexpected way.
    #[error("the NFS server task failed: {0}")]
    ServerTask(String),
}
