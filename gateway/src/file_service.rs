//! The seam between the NFS front end and whatever executes file-system operations.
//!
//! Every Palisade configuration fills this one trait: the unreplicated
//! [`LocalFileService`](crate::LocalFileService) today, the replicated BFT clients
//! (separate agreement/execution, and the privacy firewall) later. Keeping it this small
//! (one operation in, one result out) is what lets the NFS adapter and the integration
//! checks run unchanged against every mode.

use std::sync::Arc;

use async_trait::async_trait;
use palisade_wire::fs::{FsOp, FsResult};

/// Executes one file-system operation and answers it.
///
/// Implementations order operations as they see fit (the local service batches them;
/// replicated services send them through agreement). An error that is not the file
/// system's answer (storage failure, no quorum, shut down) is reported as
/// [`FsError::Io`](palisade_wire::fs::FsError::Io) or another `FsError`, never a panic.
#[async_trait]
pub trait FileService: Send + Sync + 'static {
    async fn call(&self, op: FsOp) -> FsResult;
}

/// Lets a service be shared (e.g. between the NFS adapter and its owner, which shuts it
/// down) without a wrapper type.
#[async_trait]
impl<T: FileService + ?Sized> FileService for Arc<T> {
    async fn call(&self, op: FsOp) -> FsResult {
        (**self).call(op).await
    }
}
