//! `Gateway`: the unreplicated Palisade gateway — a [`LocalFileService`] served over NFS.
//! This is what `palisade up --mode unreplicated` runs, and what the integration tests
//! start in-process.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use palisade_execution::FsConfig;
use tracing::info;

use crate::error::GatewayError;
use crate::executor::ExecutorStatsSnapshot;
use crate::local::LocalFileService;
use crate::nfs_stats::NfsStatsSnapshot;
use crate::server::NfsServer;

/// The export name that fixes file handles unless configured otherwise.
pub const DEFAULT_EXPORT_NAME: &str = "palisade";

/// Where and how a gateway serves.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// Listen address for NFSv3 and MOUNT (one port for both). Port 0: any free port.
    pub listen: SocketAddr,
    /// Names the export; file handles embed an id derived from it, so it must stay the
    /// same across restarts (and be the same on every replica).
    pub export_name: String,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 11111)),
            export_name: DEFAULT_EXPORT_NAME.to_string(),
        }
    }
}

/// A running unreplicated gateway.
pub struct Gateway {
    server: NfsServer,
    service: Arc<LocalFileService>,
    data_dir: PathBuf,
}

impl Gateway {
    /// Opens the file system in `data_dir` (created if missing; a corrupt one is an
    /// error) and serves it on `options.listen`.
    pub async fn start(
        data_dir: &Path,
        config: FsConfig,
        options: &GatewayOptions,
    ) -> Result<Self, GatewayError> {
        let dir = data_dir.to_path_buf();
        let open_dir = dir.clone();
        let service =
            tokio::task::spawn_blocking(move || LocalFileService::open(&open_dir, config))
                .await
                .map_err(|_| GatewayError::ExecutorPanicked)??;
        let service = Arc::new(service);
        let server =
            match NfsServer::bind(service.clone(), options.listen, &options.export_name).await {
                Ok(server) => server,
                Err(e) => {
                    // Release the data directory before reporting the bind error.
                    let _ = service.shutdown().await;
                    return Err(e);
                }
            };
        Ok(Self {
            server,
            service,
            data_dir: dir,
        })
    }

    /// The address actually bound (its port is the real one when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn nfs_stats(&self) -> NfsStatsSnapshot {
        self.server.stats()
    }

    pub fn executor_stats(&self) -> ExecutorStatsSnapshot {
        self.service.stats()
    }

    /// Client commands for this export: a libnfs URL listing and a kernel mount.
    pub fn client_commands(&self) -> ClientCommands {
        ClientCommands::for_addr(self.local_addr())
    }

    /// Stops listening, lets the executor finish its batch, and closes the file system.
    pub async fn shutdown(self) -> Result<(), GatewayError> {
        let stopped = self.server.stop().await;
        self.service.shutdown().await?;
        info!(data = %self.data_dir.display(), "gateway stopped");
        stopped
    }
}

/// How to reach an export with the common clients (see shared/CLIENTS.md for the
/// libnfs URL rules: `nfsport`/`mountport`, never `port=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCommands {
    pub nfs_ls: String,
    pub mount: String,
}

impl ClientCommands {
    pub fn for_addr(addr: SocketAddr) -> Self {
        // A wildcard listen address is reachable on loopback; show that.
        let ip = if addr.ip().is_unspecified() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            addr.ip()
        };
        let port = addr.port();
        Self {
            nfs_ls: format!("nfs-ls 'nfs://{ip}/?nfsport={port}&mountport={port}&version=3'"),
            mount: format!(
                "mount -t nfs -o vers=3,tcp,port={port},mountport={port},nolock {ip}:/ /mnt"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_commands_use_the_real_port_and_libnfs_url_rules() {
        let c = ClientCommands::for_addr("127.0.0.1:40123".parse().unwrap());
        assert_eq!(
            c.nfs_ls,
            "nfs-ls 'nfs://127.0.0.1/?nfsport=40123&mountport=40123&version=3'"
        );
        assert_eq!(
            c.mount,
            "mount -t nfs -o vers=3,tcp,port=40123,mountport=40123,nolock 127.0.0.1:/ /mnt"
        );
        let any = ClientCommands::for_addr("0.0.0.0:7".parse().unwrap());
        assert!(any.nfs_ls.contains("nfs://127.0.0.1/?nfsport=7&"));
    }
}
