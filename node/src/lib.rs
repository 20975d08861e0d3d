//! Palisade's node runtime: thin tokio drivers that host the pure protocol cores on the
//! authenticated links of `palisade-net` (DESIGN §3: the cores decide, the runtime
//! carries out their effects).
//!
//! - [`config`]: per-node TOML config files, and `keygen`, which writes them.
//! - [`agreement_node`]: PBFT `Replica` + `DeliveryLog`: ticks, timers, sends, delivery
//!   of ORDER-certified batches downstream (execution replicas, or the top filter row),
//!   FetchOrders, stable checkpoints; through the firewall also the relay of certified
//!   replies to gateways and threshold-signed stable certificates.
//! - [`filter_node`]: a `palisade_firewall::Filter` (SOSP 2003 §4) on its own thread,
//!   between the row (or agreement cluster) above and the row (or execution cluster)
//!   below.
//! - [`execution_node`]: `ExecutionReplica<RedbStore>` on a dedicated thread (blocking
//!   store work never runs on the async workers).
//! - [`gateway_node`]: the gateway's `ReplicatedFileService` (BFT client) behind NFS.
//! - [`cluster`]: a whole firewall or `separate` configuration in one process (what
//!   `palisade up` and the integration tests run).
//! - [`node`]: start any one node from its config file (`palisade node --config FILE`).

pub mod agreement_node;
pub mod cluster;
pub mod config;
pub mod error;
pub mod execution_node;
pub mod filter_node;
pub mod gateway_node;
pub mod handle;
pub mod hex;
pub mod node;
mod step_span;
pub mod timers;

pub use cluster::{ClusterMode, LocalCluster, LocalClusterOptions};
pub use config::{keygen, KeygenOptions, Layout, NodeConfig, Role};
pub use error::NodeError;
pub use gateway_node::GatewayNode;
pub use handle::{NodeHandle, Probe};
pub use node::RunningNode;
