//! The gateway node: a [`ReplicatedFileService`] (the BFT client) on this gateway's
//! links, served over NFSv3 + MOUNT.
//!
//! In the firewall configuration the client accepts one reply certified by the execution
//! cluster's threshold signature (relayed by agreement nodes from the top filter row);
//! in `separate`, g+1 matching ed25519-signed replies from execution nodes. With a body
//! key (always in the firewall configuration) it seals every operation for the
//! execution cluster and opens every result.

use std::net::SocketAddr;
use std::sync::Arc;

use palisade_client::Acceptance;
use palisade_gateway::{
    default_client_config, ClientCommands, NfsServer, NfsStatsSnapshot, ReplicatedFileService,
    ReplicatedStats, DEFAULT_EXPORT_NAME,
};
use palisade_net::{Network, NodeId};
use tracing::info;

use crate::config::NodeConfig;
use crate::error::NodeError;

/// A running gateway.
pub struct GatewayNode {
    server: Option<NfsServer>,
    service: Arc<ReplicatedFileService>,
}

impl GatewayNode {
    /// Starts the gateway of `cfg`, serving NFS on `nfs_listen` (or the config's).
    pub async fn start(
        cfg: &NodeConfig,
        nfs_listen: Option<SocketAddr>,
        export_name: Option<&str>,
    ) -> Result<GatewayNode, NodeError> {
        let listen = nfs_listen
            .or(cfg.nfs_listen)
            .ok_or_else(|| NodeError::Config {
                file: cfg.path.clone(),
                field: "nfs_listen".into(),
                problem: "a gateway needs an NFS listen address".into(),
            })?;
        let (net, inbound) = Network::start(cfg.network_config().await?).await?;
        let net = Arc::new(net);
        let mut client =
            default_client_config(cfg.id, cfg.g, cfg.execution_keys(), cfg.agreement.len());
        if cfg.is_firewall() {
            let verifier = cfg.threshold.clone().ok_or_else(|| NodeError::Config {
                file: cfg.path.clone(),
                field: "threshold_public".into(),
                problem: "a gateway of the firewall configuration needs the threshold key set"
                    .into(),
            })?;
            client.acceptance = Acceptance::Certified(verifier);
        }
        let agreement = (0..cfg.agreement.len() as u32)
            .map(NodeId::Agreement)
            .collect();
        let service = Arc::new(ReplicatedFileService::start(
            client,
            cfg.signing_key.clone(),
            net,
            inbound,
            agreement,
            cfg.body_key.clone(),
        ));
        let server = match NfsServer::bind(
            service.clone(),
            listen,
            export_name.unwrap_or(DEFAULT_EXPORT_NAME),
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                service.shutdown().await;
                return Err(NodeError::Other(format!("gateway: {e}")));
            }
        };
        info!(node = %cfg.node_id(), nfs = %server.local_addr(), "gateway started");
        Ok(GatewayNode {
            server: Some(server),
            service,
        })
    }

    /// Where NFS is served (0.0.0.0 when `nfs_listen` was a wildcard).
    pub fn nfs_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|s| s.local_addr())
    }

    pub fn client_commands(&self) -> Option<ClientCommands> {
        self.nfs_addr().map(ClientCommands::for_addr)
    }

    pub fn stats(&self) -> ReplicatedStats {
        self.service.stats()
    }

    pub fn nfs_stats(&self) -> Option<NfsStatsSnapshot> {
        self.server.as_ref().map(|s| s.stats())
    }

    /// The file service itself (to drive operations without NFS, e.g. at shutdown).
    pub fn service(&self) -> &Arc<ReplicatedFileService> {
        &self.service
    }

    /// Stops serving NFS, then stops the client and its links.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.server.take() {
            let _ = s.stop().await;
        }
        self.service.shutdown().await;
    }
}
