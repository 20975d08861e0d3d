//! A workload generator: file-system operations over a small shared namespace, so that
//! clients collide (creates of one name, renames over each other's files, removes of
//! what another just wrote). What it learns of file ids comes from accepted results.

use std::collections::BTreeMap;

use palisade_wire::agreement::LARGE_BATCH_BYTES;
use palisade_wire::fs::{CreateHow, FileId, FsOp, FsReply, FsResult, SetAttr, ROOT_ID};

use crate::rng::SimRng;

/// Writes per thousand that carry more than [`LARGE_BATCH_BYTES`].
const LARGE_WRITES_PER_MILLE: u64 = 100;

/// Names every client draws from.
const NAMES: [&[u8]; 6] = [b"a", b"b", b"c", b"d", b"e", b"f"];

/// One client's generator.
#[derive(Debug, Default)]
pub struct Workload {
    /// Name (in the root directory) → the file id last seen for it.
    known: BTreeMap<Vec<u8>, FileId>,
    /// Operations in flight, by request id, to learn from their results.
    in_flight: BTreeMap<u64, FsOp>,
}

impl Workload {
    pub fn new() -> Workload {
        Workload::default()
    }

    fn name(rng: &mut SimRng) -> Vec<u8> {
        NAMES[rng.index(NAMES.len())].to_vec()
    }

    /// A file id to operate on: a known one mostly, sometimes a guess (which may be
    /// stale or never have existed: errors are results too).
    fn some_id(&self, rng: &mut SimRng) -> FileId {
        if !self.known.is_empty() && !rng.chance(150) {
            let i = rng.index(self.known.len());
            if let Some(id) = self.known.values().nth(i) {
                return *id;
            }
        }
        rng.between(ROOT_ID, ROOT_ID + 12)
    }

    /// The next operation.
    pub fn next_op(&self, rng: &mut SimRng) -> FsOp {
        match rng.below(10) {
            0 | 1 => FsOp::Create {
                dir: ROOT_ID,
                name: Self::name(rng),
                how: CreateHow::Unchecked(SetAttr::default()),
            },
            2 => FsOp::Mkdir {
                dir: ROOT_ID,
                name: Self::name(rng),
                attr: SetAttr::default(),
            },
            3 | 4 => {
                // Now and then a write large enough that its batch is pushed by one
                // agreement replica only (`palisade_agreement::pushers`).
                let len = if rng.chance(LARGE_WRITES_PER_MILLE) {
                    LARGE_BATCH_BYTES + rng.below(1024) as usize
                } else {
                    rng.between(1, 64) as usize
                };
                FsOp::Write {
                    id: self.some_id(rng),
                    offset: rng.below(256),
                    data: rng.bytes(len),
                }
            }
            5 => FsOp::Read {
                id: self.some_id(rng),
                offset: rng.below(128),
                count: rng.between(1, 256) as u32,
            },
            6 => FsOp::Rename {
                from_dir: ROOT_ID,
                from_name: Self::name(rng),
                to_dir: ROOT_ID,
                to_name: Self::name(rng),
            },
            7 => FsOp::Remove {
                dir: ROOT_ID,
                name: Self::name(rng),
            },
            8 => FsOp::ReadDir {
                dir: ROOT_ID,
                after: 0,
                max_entries: 16,
            },
            _ => {
                let attr = if rng.chance(500) {
                    SetAttr {
                        size: Some(rng.below(200)),
                        ..SetAttr::default()
                    }
                } else {
                    SetAttr {
                        mode: Some(0o600 + rng.below(0o100) as u32),
                        ..SetAttr::default()
                    }
                };
                FsOp::SetAttr {
                    id: self.some_id(rng),
                    attr,
                    guard_ctime: None,
                }
            }
        }
    }

    /// Remembers what request `request_id` carries.
    pub fn sent(&mut self, request_id: u64, op: FsOp) {
        self.in_flight.insert(request_id, op);
    }

    /// What request `request_id` carries, while it is in flight.
    pub fn op(&self, request_id: u64) -> Option<&FsOp> {
        self.in_flight.get(&request_id)
    }

    /// Drops what an abandoned request carried (its client crashed).
    pub fn forget(&mut self, request_id: u64) {
        self.in_flight.remove(&request_id);
    }

    /// Learns from an accepted result.
    pub fn completed(&mut self, request_id: u64, result: &[u8]) {
        let Some(op) = self.in_flight.remove(&request_id) else {
            return;
        };
        let Ok(result) = palisade_wire::decode::<FsResult>(result) else {
            return;
        };
        match (op, result) {
            (
                FsOp::Create { name, .. } | FsOp::Mkdir { name, .. },
                Ok(FsReply::Created { id, .. }),
            ) => {
                self.known.insert(name, id);
            }
            (FsOp::Remove { name, .. }, Ok(FsReply::Done)) => {
                self.known.remove(&name);
            }
            (
                FsOp::Rename {
                    from_name, to_name, ..
                },
                Ok(FsReply::Done),
            ) => {
                if let Some(id) = self.known.remove(&from_name) {
                    self.known.insert(to_name, id);
                }
            }
            _ => {}
        }
    }
}
