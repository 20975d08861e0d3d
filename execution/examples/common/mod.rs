//! What the measurement examples share: a durable file system fed one batch at a time.
// A measurement tool: any failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use palisade_execution::{FileSystem, FsConfig, RedbStore};
use palisade_wire::fs::*;

/// A file system and the next batch's sequence number (also its timestamp, in seconds).
pub struct Batches {
    pub fs: FileSystem<RedbStore>,
    sequence: u64,
}

impl Batches {
    pub fn new(store: RedbStore) -> Batches {
        Batches {
            fs: FileSystem::open(store, FsConfig::default()).unwrap(),
            sequence: 0,
        }
    }

    /// Applies `ops` as the next batch.
    pub fn run(&mut self, ops: Vec<FsOp>) -> Vec<FsResult> {
        self.sequence += 1;
        let ctx = BatchContext {
            sequence: self.sequence,
            timestamp: Timestamp {
                seconds: self.sequence as u32,
                nanos: 0,
            },
        };
        self.fs.apply_batch(&ctx, &ops).unwrap()
    }

    /// Creates `name` in the root directory, in a batch of its own.
    pub fn create(&mut self, name: &str) -> FileId {
        let r = self.run(vec![FsOp::Create {
            dir: ROOT_ID,
            name: name.as_bytes().to_vec(),
            how: CreateHow::Guarded(SetAttr::default()),
        }]);
        let Ok(FsReply::Created { id, .. }) = &r[0] else {
            panic!("create {name}: {:?}", r[0])
        };
        *id
    }
}
