//! Checkpoint images of the file-system state, for state transfer between execution
//! replicas (Castro–Liskov §4.3 "Garbage collection" and §5.3.2 "State transfer").
//!
//! A [`Checkpoint`] carries the logical state of the file system in its canonical form: the
//! meta record, the list of every live file id, and the full image of some inodes (all of
//! them for a full checkpoint, only those whose Merkle leaf differs from the receiver's for
//! a partial one). The receiver applies it atomically and accepts it only if the state it
//! reaches has the digest the checkpoint claims — and the caller must check that digest
//! against a *certified* (stable) checkpoint digest before trusting it at all.
//!
//! The records here are also the execution replicas' stored records, so what is hashed,
//! stored and transferred is one encoding ([`crate::encode`]).

use serde::{Deserialize, Serialize};

use crate::fs::{FileId, FileType, Timestamp};

/// The state of one inode, without its content (directory entries or file data).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct InodeRecord {
    pub file_type: FileType,
    /// Permission bits (low 12 bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Regular file: length in bytes. Directory: number of entries. Symlink: target length.
    pub size: u64,
    /// Bytes of file data actually stored (holes excluded); 0 for other types.
    pub used: u64,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    /// The directory holding this inode (the root's parent is the root).
    pub parent: FileId,
    /// Directories: number of subdirectories (NFS nlink = 2 + subdirs).
    pub subdirs: u64,
    /// Symlinks: the target.
    #[serde(with = "serde_bytes")]
    pub target: Vec<u8>,
    /// The verifier of an EXCLUSIVE create (RFC 1813 §3.3.8), kept so that a retransmission
    /// is recognised.
    pub verifier: Option<[u8; 8]>,
}

/// The file-system-wide record. The sequence number is deliberately NOT part of it: two
/// replicas that applied the same operations in different batch splits must agree.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MetaRecord {
    /// The next file id to hand out (ids are never reused).
    pub next_id: FileId,
    /// Bytes of file data stored in total.
    pub used_bytes: u64,
    /// Number of live inodes (the root included).
    pub inode_count: u64,
}

/// One stored data block of a regular file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BlockImage {
    pub index: u64,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// One directory entry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EntryImage {
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    pub id: FileId,
}

/// The content of an inode: data blocks, entries (ascending child id), or nothing (a
/// symlink's target is in its record).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum InodeContent {
    File(Vec<BlockImage>),
    Dir(Vec<EntryImage>),
    Symlink,
}

/// The full image of one inode.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct InodeImage {
    pub id: FileId,
    pub record: InodeRecord,
    pub content: InodeContent,
}

/// A full or partial checkpoint of the file-system state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The sequence number of the last batch reflected in this state.
    pub last_applied: u64,
    /// The state digest (Merkle root) this checkpoint must reproduce.
    pub digest: [u8; 32],
    pub meta: MetaRecord,
    /// Every live file id, ascending. Inodes of the receiver not listed are deleted.
    pub live_ids: Vec<FileId>,
    /// Images of the inodes that differ (all of them in a full checkpoint), ascending id.
    pub inodes: Vec<InodeImage>,
}

/// One client's entry of an execution replica's exactly-once table: the highest request
/// id executed for it, and which ids in the window just below were executed (ids at or
/// below `max_executed - window` count as executed without being listed).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ClientRecord {
    pub client: u64,
    pub max_executed: u64,
    /// Executed ids above the window floor, ascending (includes `max_executed`).
    pub executed: Vec<u64>,
}

/// The leaf hashes of the replies one recent batch produced, in batch order (what an
/// execution replica's threshold share, or its batch signature, signs the root of).
/// Replicated state, so that a replica that skipped the batch can still sign it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BatchLeaves {
    pub sequence: u64,
    pub leaves: Vec<[u8; 32]>,
}

/// What an execution replica's state transfer moves: the file-system checkpoint, the
/// exactly-once table (ascending client id) and the reply leaves of recent batches
/// (ascending sequence). All are covered by the replica's checkpoint digest, so a replica
/// that installs a certified snapshot executes later duplicates exactly as its peers do,
/// and can sign its share of a recent batch it never executed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ReplicaSnapshot {
    pub checkpoint: Checkpoint,
    pub clients: Vec<ClientRecord>,
    pub replies: Vec<BatchLeaves>,
}
