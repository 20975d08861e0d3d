//! Errors of the node runtime.

use std::path::PathBuf;

/// Why a node could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A config file is unreadable or wrong; names the file and the field.
    #[error("config {file}: {field}: {problem}")]
    Config {
        file: PathBuf,
        field: String,
        problem: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("network: {0}")]
    Net(#[from] palisade_net::NetError),
    #[error("agreement replica: {0}")]
    Agreement(#[from] palisade_agreement::ConfigError),
    #[error("execution replica: {0}")]
    Execution(#[from] palisade_execution::ExecError),
    #[error("cannot resolve {addr}: {problem}")]
    Resolve { addr: String, problem: String },
    #[error("{0}")]
    Other(String),
}
