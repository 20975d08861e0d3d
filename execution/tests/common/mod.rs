//! Shared test helpers: a file system fed single-op batches with a ticking clock.
#![allow(dead_code)]

pub mod model;

use palisade_execution::{FileSystem, FsConfig, MemStore, Store};
use palisade_wire::fs::*;

pub struct H<S: Store = MemStore> {
    pub fs: FileSystem<S>,
    pub seconds: u32,
}

pub fn mem() -> H<MemStore> {
    H::new(MemStore::new(), FsConfig::default())
}

pub fn mem_with(config: FsConfig) -> H<MemStore> {
    H::new(MemStore::new(), config)
}

pub fn t(seconds: u32) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

impl<S: Store> H<S> {
    pub fn new(store: S, config: FsConfig) -> H<S> {
        let fs = FileSystem::open(store, config).expect("open");
        H { fs, seconds: 100 }
    }

    pub fn ctx(&mut self) -> BatchContext {
        self.seconds += 1;
        BatchContext {
            sequence: self.fs.last_applied() + 1,
            timestamp: t(self.seconds),
        }
    }

    /// Applies `ops` as one batch.
    pub fn batch(&mut self, ops: &[FsOp]) -> Vec<FsResult> {
        let ctx = self.ctx();
        self.fs.apply_batch(&ctx, ops).expect("batch")
    }

    pub fn op(&mut self, op: FsOp) -> FsResult {
        self.batch(&[op]).pop().expect("one result")
    }

    pub fn now(&self) -> Timestamp {
        t(self.seconds)
    }

    pub fn create(&mut self, dir: FileId, name: &str) -> FileId {
        match self.op(FsOp::Create {
            dir,
            name: name.as_bytes().to_vec(),
            how: CreateHow::Guarded(SetAttr::default()),
        }) {
            Ok(FsReply::Created { id, .. }) => id,
            other => panic!("create {name}: {other:?}"),
        }
    }

    pub fn mkdir(&mut self, dir: FileId, name: &str) -> FileId {
        match self.op(FsOp::Mkdir {
            dir,
            name: name.as_bytes().to_vec(),
            attr: SetAttr::default(),
        }) {
            Ok(FsReply::Created { id, .. }) => id,
            other => panic!("mkdir {name}: {other:?}"),
        }
    }

    pub fn write(&mut self, id: FileId, offset: u64, data: &[u8]) -> FsResult {
        self.op(FsOp::Write {
            id,
            offset,
            data: data.to_vec(),
        })
    }

    pub fn read(&mut self, id: FileId, offset: u64, count: u32) -> (Vec<u8>, bool) {
        match self.op(FsOp::Read { id, offset, count }) {
            Ok(FsReply::Read { data, eof, .. }) => (data, eof),
            other => panic!("read: {other:?}"),
        }
    }

    pub fn attr(&mut self, id: FileId) -> Attr {
        match self.op(FsOp::GetAttr { id }) {
            Ok(FsReply::Attr(a)) => a,
            other => panic!("getattr: {other:?}"),
        }
    }

    pub fn lookup(&mut self, dir: FileId, name: &str) -> Result<FileId, FsError> {
        self.op(FsOp::Lookup {
            dir,
            name: name.as_bytes().to_vec(),
        })
        .map(|r| match r {
            FsReply::Lookup { id, .. } => id,
            other => panic!("lookup: {other:?}"),
        })
    }

    /// The whole listing of `dir`, paged by `page` entries.
    pub fn list(&mut self, dir: FileId, page: u32) -> Vec<(FileId, Vec<u8>)> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            match self.op(FsOp::ReadDir {
                dir,
                after,
                max_entries: page,
            }) {
                Ok(FsReply::ReadDir { entries, end, .. }) => {
                    assert!(entries.len() <= page as usize);
                    for e in &entries {
                        assert!(e.id > after);
                        after = e.id;
                        out.push((e.id, e.name.clone()));
                    }
                    if end {
                        return out;
                    }
                    assert!(!entries.is_empty(), "no progress without end");
                }
                other => panic!("readdir: {other:?}"),
            }
        }
    }

    pub fn rename(&mut self, fd: FileId, from: &str, td: FileId, to: &str) -> FsResult {
        self.op(FsOp::Rename {
            from_dir: fd,
            from_name: from.as_bytes().to_vec(),
            to_dir: td,
            to_name: to.as_bytes().to_vec(),
        })
    }

    pub fn remove(&mut self, dir: FileId, name: &str) -> FsResult {
        self.op(FsOp::Remove {
            dir,
            name: name.as_bytes().to_vec(),
        })
    }

    pub fn rmdir(&mut self, dir: FileId, name: &str) -> FsResult {
        self.op(FsOp::Rmdir {
            dir,
            name: name.as_bytes().to_vec(),
        })
    }

    pub fn setattr(&mut self, id: FileId, attr: SetAttr) -> FsResult {
        self.op(FsOp::SetAttr {
            id,
            attr,
            guard_ctime: None,
        })
    }
}

pub fn err(r: FsResult) -> FsError {
    match r {
        Err(e) => e,
        Ok(reply) => panic!("expected an error, got {reply:?}"),
    }
}
