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

    /// Whether a GETATTR is cheap enough to make just for the optional weak cache
    /// consistency attributes of NFSv3 replies (RFC 1813 §2.6). True for a local file
    /// system; a replicated service, where every call is one more ordered request (a
    /// round of agreement, execution and reply certification), answers false, and the
    /// NFS front end then sends only the operation itself (see `PalisadeNfs`).
    fn cheap_getattr(&self) -> bool {
        true
    }
}

/// Lets a service be shared (e.g. between the NFS adapter and its owner, which shuts it
/// down) without a wrapper type.
#[async_trait]
impl<T: FileService + ?Sized> FileService for Arc<T> {
    async fn call(&self, op: FsOp) -> FsResult {
        (**self).call(op).await
    }
    fn cheap_getattr(&self) -> bool {
        (**self).cheap_getattr()
    }
}
