//! The payload of a write-ahead log record (`wal.rs`): one batch's [`ChangeSet`], with
//! each changed data block as a patch of the block the store held before the batch.
//!
//! Why patches: a 4 KiB WRITE changes 4 KiB of a 64 KiB block, and the log's sync time
//! grows with the bytes synced (`dd oflag=dsync conv=notrunc`, three writers at once on
//! the test machine: 150 µs per 8 KiB write, 330 µs per 72 KiB). A patch is exact because a replay applies records
//! strictly in sequence on the very state they were made against (`wal.rs` replays only
//! the chain that continues the B-tree's last applied sequence).

use std::collections::BTreeMap;

use palisade_wire::checkpoint::{ClientRecord, InodeRecord, MetaRecord};
use palisade_wire::fs::FileId;
use serde::{Deserialize, Serialize};

use crate::store::{Block, ChangeSet, BLOCK_SIZE};
use crate::ExecError;

/// A changed block: `None` deletes it; otherwise its new bytes are the old block's first
/// `at` bytes, then `bytes`, then the old block's last `keep_tail` bytes.
#[derive(Deserialize)]
struct Patch {
    at: u32,
    #[serde(with = "serde_bytes")]
    bytes: Vec<u8>,
    keep_tail: u32,
}

/// [`Patch`] as it is encoded, borrowing its bytes from the new block (postcard encodes
/// both as the same fields in order).
#[derive(Serialize)]
struct PatchRef<'a> {
    at: u32,
    #[serde(with = "serde_bytes")]
    bytes: &'a [u8],
    keep_tail: u32,
}

/// A changed exactly-once record: the stored record's ids from `drop` on, then `append`
/// (a client's window slides: most batches drop a few old ids and add a few new ones,
/// where the whole record is thousands of ids).
#[derive(Serialize, Deserialize)]
struct ClientPatch {
    max_executed: u64,
    drop: u32,
    append: Vec<u64>,
}

/// What is encoded: the change set's fields in order, blocks as patches. `Encode` and
/// `Decoded` have the same fields, borrowed and owned (postcard encodes a struct as its
/// fields in order, so each decodes the other).
#[derive(Serialize)]
struct Encode<'a> {
    meta: &'a MetaRecord,
    last_applied: u64,
    durable: bool,
    inodes: &'a BTreeMap<FileId, Option<InodeRecord>>,
    entries: &'a BTreeMap<(FileId, Vec<u8>), Option<FileId>>,
    children: &'a BTreeMap<(FileId, FileId), Option<Vec<u8>>>,
    blocks: Vec<((FileId, u64), Option<PatchRef<'a>>)>,
    clients: Vec<(u64, Option<ClientPatch>)>,
    replies: &'a BTreeMap<u64, Option<Vec<[u8; 32]>>>,
}

#[derive(Deserialize)]
struct Decoded {
    meta: MetaRecord,
    last_applied: u64,
    durable: bool,
    inodes: BTreeMap<FileId, Option<InodeRecord>>,
    entries: BTreeMap<(FileId, Vec<u8>), Option<FileId>>,
    children: BTreeMap<(FileId, FileId), Option<Vec<u8>>>,
    blocks: Vec<((FileId, u64), Option<Patch>)>,
    clients: Vec<(u64, Option<ClientPatch>)>,
    replies: BTreeMap<u64, Option<Vec<[u8; 32]>>>,
}

/// Reads, as the store holds them before the batch, a data block and a client's
/// exactly-once record.
pub(crate) trait Before {
    fn block(&self, id: FileId, index: u64) -> Result<Option<Block>, ExecError>;
    fn client(&self, client: u64) -> Result<Option<ClientRecord>, ExecError>;
}

/// Encodes `changes` against the state `old` reads, or gives `None` as soon as the
/// patched bytes alone pass `limit`: such a batch is not logged (a 1 MiB WRITE), and
/// encoding it only to throw it away copied its data twice at every replica.
pub(crate) fn encode(
    changes: &ChangeSet,
    old: &impl Before,
    limit: usize,
) -> Result<Option<Vec<u8>>, ExecError> {
    let mut blocks = Vec::with_capacity(changes.blocks.len());
    let mut patched = 0usize;
    for (&(id, index), block) in &changes.blocks {
        let patch = match block {
            None => None,
            Some(new) => {
                let p = patch(
                    old.block(id, index)?.as_ref().map_or(&[][..], |b| &b.data),
                    &new.data,
                );
                patched = patched.saturating_add(p.bytes.len());
                if patched > limit {
                    return Ok(None);
                }
                Some(p)
            }
        };
        blocks.push(((id, index), patch));
    }
    let mut clients = Vec::with_capacity(changes.clients.len());
    for (&client, record) in &changes.clients {
        let patch = match record {
            None => None,
            Some(new) => Some(client_patch(
                old.client(client)?
                    .as_ref()
                    .map_or(&[][..], |r| &r.executed),
                new,
            )),
        };
        clients.push((client, patch));
    }
    Ok(Some(palisade_wire::encode(&Encode {
        meta: &changes.meta,
        last_applied: changes.last_applied,
        durable: changes.durable,
        inodes: &changes.inodes,
        entries: &changes.entries,
        children: &changes.children,
        blocks,
        clients,
        replies: &changes.replies,
    })?))
}

/// Decodes a record made by [`encode`] against the state `old` reads now, which a
/// replay in sequence makes the state the record was made against.
pub(crate) fn decode(payload: &[u8], old: &impl Before) -> Result<ChangeSet, ExecError> {
    let d: Decoded = palisade_wire::decode(payload)?;
    let mut blocks = BTreeMap::new();
    for ((id, index), p) in d.blocks {
        let block = match p {
            None => None,
            Some(p) => Some(apply(
                old.block(id, index)?.as_ref().map_or(&[][..], |b| &b.data),
                &PatchRef {
                    at: p.at,
                    bytes: &p.bytes,
                    keep_tail: p.keep_tail,
                },
            )?),
        };
        blocks.insert((id, index), block);
    }
    let mut clients = BTreeMap::new();
    for (client, p) in d.clients {
        let record = match p {
            None => None,
            Some(p) => Some(apply_client(
                client,
                old.client(client)?.map(|r| r.executed).unwrap_or_default(),
                p,
            )?),
        };
        clients.insert(client, record);
    }
    Ok(ChangeSet {
        meta: d.meta,
        last_applied: d.last_applied,
        durable: d.durable,
        inodes: d.inodes,
        entries: d.entries,
        children: d.children,
        blocks,
        clients,
        replies: d.replies,
    })
}

/// The patch that turns `old` into `new`: their common prefix and suffix are kept.
fn patch<'a>(old: &[u8], new: &'a [u8]) -> PatchRef<'a> {
    let prefix = common_prefix(old, new);
    let room = old.len().min(new.len()) - prefix;
    let suffix = common_suffix(&old[prefix..], &new[prefix..]).min(room);
    PatchRef {
        // Blocks are at most BLOCK_SIZE (64 KiB).
        at: prefix as u32,
        bytes: &new[prefix..new.len() - suffix],
        keep_tail: suffix as u32,
    }
}

/// Bytes compared at once while looking for the first difference: slice equality is a
/// `memcmp`, many times faster than comparing byte by byte, which took 15% of a 4 KiB
/// WRITE's CPU in the store (`examples/small_write_latency`, docs/PERFORMANCE.md).
const COMPARE_CHUNK: usize = 256;

/// How many leading bytes `a` and `b` share.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut equal = 0;
    for (x, y) in a.chunks(COMPARE_CHUNK).zip(b.chunks(COMPARE_CHUNK)) {
        if x != y {
            return equal + x.iter().zip(y).take_while(|(p, q)| p == q).count();
        }
        equal += x.len();
    }
    equal
}

/// How many trailing bytes `a` and `b` share.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mut equal = 0;
    for (x, y) in a.rchunks(COMPARE_CHUNK).zip(b.rchunks(COMPARE_CHUNK)) {
        if x != y {
            return equal
                + x.iter()
                    .rev()
                    .zip(y.iter().rev())
                    .take_while(|(p, q)| p == q)
                    .count();
        }
        equal += x.len();
    }
    equal
}

/// The patch that turns a record with ids `old` into `new`: drop the ids before the
/// first one `new` starts with, if what is left of `old` begins `new`; else replace all.
fn client_patch(old: &[u64], new: &ClientRecord) -> ClientPatch {
    let whole = ClientPatch {
        max_executed: new.max_executed,
        drop: u32::try_from(old.len()).unwrap_or(u32::MAX),
        append: new.executed.clone(),
    };
    let Some(&first) = new.executed.first() else {
        return whole;
    };
    let drop = old.partition_point(|&id| id < first);
    let kept = &old[drop..];
    match (u32::try_from(drop), new.executed.strip_prefix(kept)) {
        (Ok(d), Some(append)) => ClientPatch {
            max_executed: new.max_executed,
            drop: d,
            append: append.to_vec(),
        },
        _ => whole,
    }
}

fn apply_client(client: u64, mut old: Vec<u64>, p: ClientPatch) -> Result<ClientRecord, ExecError> {
    let drop = p.drop as usize;
    if drop > old.len() {
        return Err(ExecError::Corrupt(format!(
            "a log record drops {drop} of client {client}'s {} ids",
            old.len()
        )));
    }
    old.drain(..drop);
    old.extend(p.append);
    Ok(ClientRecord {
        client,
        max_executed: p.max_executed,
        executed: old,
    })
}

fn apply(old: &[u8], p: &PatchRef<'_>) -> Result<Block, ExecError> {
    let (at, keep) = (p.at as usize, p.keep_tail as usize);
    if at.saturating_add(keep) > old.len()
        || (at + keep).saturating_add(p.bytes.len()) as u64 > BLOCK_SIZE
    {
        return Err(ExecError::Corrupt(format!(
            "a log record patches {at}+{keep} bytes of a block of {}",
            old.len()
        )));
    }
    let mut data = Vec::with_capacity(at + p.bytes.len() + keep);
    data.extend_from_slice(&old[..at]);
    data.extend_from_slice(p.bytes);
    data.extend_from_slice(&old[old.len() - keep..]);
    Ok(Block::new(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_patch_rebuilds_the_new_block_from_the_old(
            old in proptest::collection::vec(0u8..3, 0..300),
            new in proptest::collection::vec(0u8..3, 0..300),
        ) {
            let p = patch(&old, &new);
            prop_assert_eq!(apply(&old, &p).unwrap().data, new);
        }

        /// The chunked search finds exactly the common prefix and suffix a byte-by-byte
        /// one does (so the patch is as small), across chunk boundaries.
        #[test]
        fn a_patch_keeps_the_longest_common_prefix_and_suffix(
            old in proptest::collection::vec(0u8..2, 0..3000),
            cut in 0usize..3000,
            len in 0usize..700,
            fill in proptest::collection::vec(0u8..2, 0..700),
        ) {
            let mut new = old.clone();
            let at = cut.min(new.len());
            new.splice(at..(at + len).min(new.len()), fill);
            let p = patch(&old, &new);
            let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
            let suffix = old[prefix..].iter().rev().zip(new[prefix..].iter().rev())
                .take_while(|(a, b)| a == b).count();
            prop_assert_eq!((p.at as usize, p.keep_tail as usize), (prefix, suffix));
            prop_assert_eq!(apply(&old, &p).unwrap().data, new);
        }
    }

    #[test]
    fn a_small_write_into_a_full_block_is_a_small_patch() {
        let old = vec![1u8; BLOCK_SIZE as usize];
        let mut new = old.clone();
        new[1000..5096].fill(9);
        let p = patch(&old, &new);
        assert_eq!((p.at, p.bytes.len(), p.keep_tail), (1000, 4096, 60440));
    }

    #[test]
    fn a_patch_that_does_not_fit_its_block_is_corrupt() {
        let p = PatchRef {
            at: 10,
            bytes: &[1],
            keep_tail: 10,
        };
        assert!(matches!(apply(&[0u8; 15], &p), Err(ExecError::Corrupt(_))));
    }

    /// One stored block (3, 0) and one stored client (9).
    struct Stored {
        block: Block,
        client: ClientRecord,
    }

    impl Before for Stored {
        fn block(&self, id: FileId, index: u64) -> Result<Option<Block>, ExecError> {
            Ok(((id, index) == (3, 0)).then(|| self.block.clone()))
        }
        fn client(&self, client: u64) -> Result<Option<ClientRecord>, ExecError> {
            Ok((client == 9).then(|| self.client.clone()))
        }
    }

    proptest! {
        #[test]
        fn a_client_patch_rebuilds_the_new_record(
            old in proptest::collection::btree_set(0u64..60, 0..40),
            new in proptest::collection::btree_set(0u64..60, 0..40),
        ) {
            let old: Vec<u64> = old.into_iter().collect();
            let new = ClientRecord { client: 1, max_executed: 99, executed: new.into_iter().collect() };
            let p = client_patch(&old, &new);
            prop_assert_eq!(apply_client(1, old, p).unwrap(), new);
        }
    }

    #[test]
    fn a_change_set_round_trips_through_a_record() {
        let mut c = ChangeSet {
            last_applied: 7,
            durable: true,
            ..ChangeSet::default()
        };
        let old = Block::new(vec![5u8; 1000]);
        let mut data = old.data.clone();
        data[10] = 6;
        c.blocks.insert((3, 0), Some(Block::new(data.clone())));
        c.blocks.insert((3, 1), None);
        c.blocks.insert((4, 0), Some(Block::new(vec![1, 2, 3])));
        c.entries.insert((1, b"name".to_vec()), Some(3));
        let stored_client = ClientRecord {
            client: 9,
            max_executed: 1500,
            executed: (500..=1500).collect(),
        };
        let new_client = ClientRecord {
            client: 9,
            max_executed: 1503,
            executed: (503..=1503).collect(),
        };
        c.clients.insert(9, Some(new_client.clone()));
        c.clients.insert(10, None);
        let fresh = ClientRecord {
            client: 11,
            max_executed: 4,
            executed: vec![2, 4],
        };
        c.clients.insert(11, Some(fresh));
        let stored = Stored {
            block: old,
            client: stored_client,
        };
        let bytes = encode(&c, &stored, usize::MAX).unwrap().unwrap();
        assert!(
            bytes.len() < 200,
            "one byte of a block and three ids of a client changed: {} bytes",
            bytes.len()
        );
        let back = decode(&bytes, &stored).unwrap();
        assert_eq!(back.last_applied, 7);
        assert_eq!(back.entries, c.entries);
        assert_eq!(back.blocks, c.blocks);
        assert_eq!(back.clients, c.clients);
    }

    /// A batch whose patched bytes pass the limit is not encoded at all (it is not
    /// logged); one that stays within is encoded whole, its small patches included.
    #[test]
    fn a_batch_patching_more_than_the_limit_gives_no_record() {
        let stored = Stored {
            block: Block::new(vec![5u8; 4096]),
            client: ClientRecord {
                client: 9,
                max_executed: 0,
                executed: Vec::new(),
            },
        };
        let mut c = ChangeSet::default();
        // One byte of the stored block (3, 0) changes: a 1-byte patch.
        let mut one = vec![5u8; 4096];
        one[7] = 1;
        c.blocks.insert((3, 0), Some(Block::new(one.clone())));
        // Two blocks that were not stored: 4 KiB patches each.
        c.blocks.insert((3, 1), Some(Block::new(one)));
        c.blocks.insert((3, 2), Some(Block::new(vec![9u8; 4096])));
        assert!(encode(&c, &stored, 8192).unwrap().is_none());
        let record = encode(&c, &stored, 8193).unwrap().unwrap();
        assert_eq!(decode(&record, &stored).unwrap().blocks, c.blocks);
    }
}
