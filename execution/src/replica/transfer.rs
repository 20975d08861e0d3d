//! State transfer pieces (TOCS §5.3.2): cutting an exported snapshot into bounded chunks,
//! and reassembling the chunks one peer sent, bounded in memory, until a stable
//! checkpoint certificate says which snapshot may be installed.

use std::collections::{BTreeMap, BTreeSet};

use palisade_wire::agreement::Sequence;
use palisade_wire::checkpoint::ReplicaSnapshot;
use palisade_wire::execution::{ExecReplicaId, ExecutionMessage, STATE_CHUNK_BYTES};

use super::MAX_TRANSFER_BYTES;

/// Why a chunk or an assembled snapshot was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ChunkError {
    /// Inconsistent with the chunks already held (another count, an older sequence).
    Inconsistent,
    /// The assembly would exceed [`MAX_TRANSFER_BYTES`].
    TooLarge,
    /// The assembled bytes are not a snapshot.
    Malformed,
}

/// Cuts the canonical bytes of `snapshot` into `State` messages, or `None` if they exceed
/// [`MAX_TRANSFER_BYTES`] (or cannot be encoded).
pub(crate) fn chunk(
    sequence: Sequence,
    snapshot: &ReplicaSnapshot,
) -> Option<Vec<ExecutionMessage>> {
    // postcard directly: the whole snapshot may exceed one message's limit; each chunk
    // stays below it.
    let bytes = postcard::to_stdvec(snapshot).ok()?;
    if bytes.len() > MAX_TRANSFER_BYTES {
        return None;
    }
    let pieces: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[]]
    } else {
        bytes.chunks(STATE_CHUNK_BYTES).collect()
    };
    let count = u32::try_from(pieces.len()).ok()?;
    Some(
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, data)| ExecutionMessage::State {
                sequence,
                index: u32::try_from(i).unwrap_or(u32::MAX),
                count,
                data: data.to_vec(),
            })
            .collect(),
    )
}

/// The chunks of one snapshot from one peer.
#[derive(Debug)]
struct Assembly {
    sequence: Sequence,
    count: u32,
    chunks: BTreeMap<u32, Vec<u8>>,
    bytes: usize,
}

/// A state transfer in progress at the asking replica.
#[derive(Debug, Default)]
pub(crate) struct Transfer {
    /// Peers asked (only their chunks are accepted).
    pub(crate) asked: BTreeSet<ExecReplicaId>,
    /// Back-off exponent of the retry timer.
    pub(crate) backoff: u32,
    assemblies: BTreeMap<ExecReplicaId, Assembly>,
    /// Complete snapshots by peer, waiting for a certificate of their sequence.
    pub(crate) ready: BTreeMap<ExecReplicaId, (Sequence, ReplicaSnapshot)>,
}

impl Transfer {
    /// Adds a chunk from `from`; returns true when it completed a snapshot (now in
    /// `ready`). A newer sequence from the same peer replaces an older assembly.
    pub(crate) fn add_chunk(
        &mut self,
        from: ExecReplicaId,
        sequence: Sequence,
        index: u32,
        count: u32,
        data: Vec<u8>,
    ) -> Result<bool, ChunkError> {
        let assembly = self.assemblies.entry(from).or_insert_with(|| Assembly {
            sequence,
            count,
            chunks: BTreeMap::new(),
            bytes: 0,
        });
        if assembly.sequence != sequence || assembly.count != count {
            if sequence > assembly.sequence {
                *assembly = Assembly {
                    sequence,
                    count,
                    chunks: BTreeMap::new(),
                    bytes: 0,
                };
            } else {
                return Err(ChunkError::Inconsistent);
            }
        }
        if assembly.chunks.contains_key(&index) {
            return Ok(false);
        }
        let bytes = assembly.bytes.saturating_add(data.len());
        if bytes > MAX_TRANSFER_BYTES {
            self.assemblies.remove(&from);
            return Err(ChunkError::TooLarge);
        }
        assembly.bytes = bytes;
        assembly.chunks.insert(index, data);
        if assembly.chunks.len() < count as usize {
            return Ok(false);
        }
        let Some(done) = self.assemblies.remove(&from) else {
            return Ok(false);
        };
        let mut all = Vec::with_capacity(done.bytes);
        for piece in done.chunks.into_values() {
            all.extend_from_slice(&piece);
        }
        let snapshot: ReplicaSnapshot =
            postcard::from_bytes(&all).map_err(|_| ChunkError::Malformed)?;
        self.ready.insert(from, (sequence, snapshot));
        Ok(true)
    }

    /// Forgets partial and complete snapshots at or below `sequence`.
    pub(crate) fn drop_upto(&mut self, sequence: Sequence) {
        self.assemblies.retain(|_, a| a.sequence > sequence);
        self.ready.retain(|_, (s, _)| *s > sequence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_wire::checkpoint::{BatchLeaves, Checkpoint, ClientRecord, MetaRecord};

    fn snapshot(inodes: usize) -> ReplicaSnapshot {
        ReplicaSnapshot {
            checkpoint: Checkpoint {
                last_applied: 8,
                digest: [3; 32],
                meta: MetaRecord::default(),
                live_ids: (1..=inodes as u64).collect(),
                inodes: vec![],
            },
            clients: vec![ClientRecord {
                client: 0,
                max_executed: 2,
                executed: vec![1, 2],
            }],
            replies: vec![BatchLeaves {
                sequence: 7,
                leaves: vec![[9; 32]; 2],
            }],
        }
    }

    fn parts(msgs: Vec<ExecutionMessage>) -> Vec<(Sequence, u32, u32, Vec<u8>)> {
        msgs.into_iter()
            .map(|m| match m {
                ExecutionMessage::State {
                    sequence,
                    index,
                    count,
                    data,
                } => (sequence, index, count, data),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn large_snapshots_travel_in_bounded_chunks_in_any_order() {
        // 600k ids of up to 3 bytes each: about 1.7 MB, two chunks.
        let snap = snapshot(600_000);
        let mut chunks = parts(chunk(8, &snap).unwrap());
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|c| c.3.len() <= STATE_CHUNK_BYTES));
        chunks.reverse();
        let mut t = Transfer::default();
        let last = chunks.pop().unwrap();
        for (s, i, n, d) in chunks.clone() {
            assert_eq!(t.add_chunk(1, s, i, n, d), Ok(false));
        }
        // A duplicate chunk changes nothing.
        let (s, i, n, d) = chunks[0].clone();
        assert_eq!(t.add_chunk(1, s, i, n, d), Ok(false));
        assert_eq!(t.add_chunk(1, last.0, last.1, last.2, last.3), Ok(true));
        assert_eq!(t.ready.get(&1), Some(&(8, snap)));
    }

    #[test]
    fn inconsistent_and_malformed_chunks_are_refused() {
        let mut t = Transfer::default();
        assert_eq!(t.add_chunk(2, 8, 0, 2, vec![1]), Ok(false));
        assert_eq!(
            t.add_chunk(2, 4, 0, 2, vec![1]),
            Err(ChunkError::Inconsistent)
        );
        assert_eq!(
            t.add_chunk(2, 8, 1, 3, vec![1]),
            Err(ChunkError::Inconsistent)
        );
        assert_eq!(
            t.add_chunk(2, 8, 1, 2, vec![0xff; 9]),
            Err(ChunkError::Malformed)
        );
        assert!(t.ready.is_empty());
    }
}
