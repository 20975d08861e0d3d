//! Starting one node from its config file, whatever its role.

use std::path::Path;

use crate::config::{NodeConfig, Role};
use crate::error::NodeError;
use crate::gateway_node::GatewayNode;
use crate::handle::NodeHandle;

/// A node of any role.
pub enum RunningNode {
    Replica(NodeHandle),
    Gateway(GatewayNode),
}

impl RunningNode {
    /// Loads `path` and starts the node it describes.
    pub async fn start(path: &Path) -> Result<RunningNode, NodeError> {
        let cfg = NodeConfig::load(path)?;
        Self::start_config(&cfg).await
    }

    pub async fn start_config(cfg: &NodeConfig) -> Result<RunningNode, NodeError> {
        Ok(match cfg.role {
            Role::Agreement => RunningNode::Replica(crate::agreement_node::start(cfg).await?),
            Role::Execution => RunningNode::Replica(crate::execution_node::start(cfg).await?),
            Role::Gateway => RunningNode::Gateway(GatewayNode::start(cfg, None, None).await?),
            Role::Filter => RunningNode::Replica(crate::filter_node::start(cfg).await?),
        })
    }

    pub async fn stop(self) {
        match self {
            RunningNode::Replica(h) => h.stop().await,
            RunningNode::Gateway(g) => g.shutdown().await,
        }
    }
}
