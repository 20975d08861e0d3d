//! `NfsServer`: an NFSv3 + MOUNT listener (nfsserve) serving one [`FileService`], that
//! reports its actual address (port 0 binds an ephemeral port) and can be stopped.

use std::net::SocketAddr;
use std::sync::Arc;

use nfsserve::tcp::{NFSTcp, NFSTcpListener};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::error::GatewayError;
use crate::file_service::FileService;
use crate::nfs::PalisadeNfs;
use crate::nfs_stats::{NfsStats, NfsStatsSnapshot};

/// A running NFS listener.
pub struct NfsServer {
    addr: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
    stats: Arc<NfsStats>,
}

impl NfsServer {
    /// Binds `listen` and starts serving `service` as the export `export_name` (the name
    /// fixes the file handles; the MOUNT path is always `/`).
    pub async fn bind<S: FileService>(
        service: S,
        listen: SocketAddr,
        export_name: &str,
    ) -> Result<Self, GatewayError> {
        if listen.is_ipv6() {
            return Err(GatewayError::Ipv6Unsupported(listen));
        }
        let fs = PalisadeNfs::new(service, export_name);
        let stats = fs.stats();
        let listener = NFSTcpListener::bind(&listen.to_string(), fs)
            .await
            .map_err(|source| GatewayError::Bind {
                addr: listen,
                source,
            })?;
        let addr = SocketAddr::new(listener.get_listen_ip(), listener.get_listen_port());
        let task = tokio::spawn(async move { listener.handle_forever().await });
        info!(%addr, export = export_name, "NFSv3 + MOUNT listening");
        Ok(Self { addr, task, stats })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> NfsStatsSnapshot {
        self.stats.snapshot()
    }

    /// Stops accepting connections and closes the listening socket. Connections already
    /// open are not tracked by nfsserve; their further calls reach the service, which
    /// the owner shuts down next.
    pub async fn stop(mut self) -> Result<(), GatewayError> {
        self.task.abort();
        match (&mut self.task).await {
            Err(e) if e.is_cancelled() => Ok(()),
            Err(e) => Err(GatewayError::ServerTask(e.to_string())),
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                warn!(error = %e, "NFS listener had failed");
                Err(GatewayError::ServerTask(e.to_string()))
            }
        }
    }
}

/// A server dropped without `stop` still stops listening (the accept loop would otherwise
/// live on in the runtime, holding the service).
impl Drop for NfsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
