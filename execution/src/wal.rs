//! [`Wal`]: the write-ahead log in front of the execution store's B-tree.
//!
//! Why: a redb commit that is durable when it returns writes every page the batch
//! touched — about 30 for one 4 KiB WRITE (nine tables, each copied up to its root) — to
//! scattered places and fsyncs them: 300 µs on the test machine, 445 µs when three
//! stores sync at once (`examples/small_write_latency`), 600–900 µs inside a running
//! cluster whose 2g+1 replicas share the machine. Appending the batch's change set to a
//! preallocated file and syncing that is one sequential write, ≈ 100 µs (`dd
//! oflag=dsync conv=notrunc` of 4–64 KiB measured 90–130 µs there). So a batch is made
//! durable here, and the B-tree commits it without an fsync (redb `Durability::None`,
//! which "will not be persisted to disk unless followed by a commit with a higher
//! durability level"); the B-tree is made durable in one commit whenever the log is full
//! or a batch is too large to log, and the log starts again from its beginning
//! (`RedbStore`, `redb_store.rs`). Reopening replays the log onto the last durable
//! B-tree commit. This is the classic write-ahead rule (Gray & Reuter, *Transaction
//! Processing: Concepts and Techniques*): a change is durable once its log record is,
//! wherever its pages are.
//!
//! A record: `MAGIC`, payload length (u32), epoch (u64), sequence (u64), BLAKE3 of the
//! payload, payload (the postcard-encoded change set), all little-endian. Records follow
//! one another from offset 0; a replay takes them in order while each is whole (its
//! hash matches), belongs to the current epoch, and carries the next sequence number.
//! The epoch changes with every durable B-tree commit and is stored in that commit, so
//! records written before it — already in the B-tree, or from a state since replaced by
//! a checkpoint import — are never replayed. The file is written in full once, at
//! creation, so later appends overwrite allocated blocks and the sync writes no file
//! system metadata.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Marks a record (and the format's version).
const MAGIC: [u8; 4] = *b"PWL1";
/// magic, length, epoch, sequence, hash.
const HEADER: usize = 4 + 4 + 8 + 8 + 32;
/// Zeroes written per call while the file is first filled.
const FILL_CHUNK: usize = 1 << 20;

/// An append-only log file of fixed capacity (see the module documentation).
pub(crate) struct Wal {
    file: File,
    capacity: u64,
    /// Where the next record goes.
    position: u64,
    epoch: u64,
    /// Written in full by [`Wal::open`] or [`Wal::erase`], and not appended to since.
    fresh: bool,
}

impl Wal {
    /// Opens the log at `path`, creating it if needed; a file shorter than `capacity` is
    /// written up to it (zeroes past its end, then one sync), keeping what it holds.
    /// Appends start at offset 0 under the epoch [`Wal::reset`] gives; until then the
    /// log is only read.
    pub(crate) fn open(path: &Path, capacity: u64) -> io::Result<Wal> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut wal = Wal {
            file,
            capacity,
            position: 0,
            epoch: 0,
            fresh: false,
        };
        let len = wal.file.metadata()?.len();
        if len < capacity {
            wal.zero_from(len)?;
            wal.fresh = len == 0;
        }
        Ok(wal)
    }

    /// Overwrites the whole log with zeroes and syncs it: no record survives.
    pub(crate) fn erase(&mut self) -> io::Result<()> {
        self.zero_from(0)?;
        self.position = 0;
        self.fresh = true;
        Ok(())
    }

    /// Writes zeroes from `from` to the capacity, then syncs the file.
    fn zero_from(&mut self, from: u64) -> io::Result<()> {
        let zeroes = vec![0u8; FILL_CHUNK];
        let mut at = from;
        while at < self.capacity {
            let n = (self.capacity - at).min(FILL_CHUNK as u64) as usize;
            self.file.write_all_at(&zeroes[..n], at)?;
            at += n as u64;
        }
        self.file.sync_all()
    }

    /// Whether the log holds no record: nothing was appended since it was written in
    /// full.
    pub(crate) fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// The epoch appends are written under.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Starts the log again from offset 0 under `epoch` (after a durable B-tree commit
    /// that stored `epoch`: everything logged before is in the B-tree).
    pub(crate) fn reset(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.position = 0;
    }

    /// Whether a record of `payload_len` bytes fits after the ones already logged.
    pub(crate) fn fits(&self, payload_len: usize) -> bool {
        (HEADER as u64)
            .saturating_add(payload_len as u64)
            .saturating_add(self.position)
            <= self.capacity
    }

    /// Appends the record of `sequence`; with `sync`, it and every record before it are
    /// durable when this returns. Returns where it starts, for [`Wal::rewind`]. On an
    /// error the position is unchanged (the next append overwrites what was written).
    pub(crate) fn append(&mut self, sequence: u64, payload: &[u8], sync: bool) -> io::Result<u64> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|_| self.fits(payload.len()))
            .ok_or_else(|| io::Error::other("record larger than the log's free space"))?;
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(&MAGIC);
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&self.epoch.to_le_bytes());
        record.extend_from_slice(&sequence.to_le_bytes());
        record.extend_from_slice(blake3::hash(payload).as_bytes());
        record.extend_from_slice(payload);
        let at = self.position;
        self.fresh = false;
        self.file.write_all_at(&record, at)?;
        if sync {
            self.file.sync_data()?;
        }
        self.position = at + record.len() as u64;
        Ok(at)
    }

    /// Forgets the records from `at` on (their batch did not commit); the next append
    /// overwrites them.
    pub(crate) fn rewind(&mut self, at: u64) {
        self.position = self.position.min(at);
    }

    /// Hands `apply`, in order, the payloads of the records that continue a state whose
    /// last applied sequence is `last` — from offset 0, each whole, of `epoch`, each of
    /// the sequence after the one before, the first at or below `last + 1` — and returns
    /// where that chain ends. Records at or below `last` are passed over: the B-tree
    /// already holds them (its non-durable commits of them reached the disk, as redb
    /// makes them when it closes cleanly), while a later record of the chain may not be
    /// there yet (`RedbStore` writes a logged batch into the B-tree after its record). An I/O
    /// error is an error (a log that cannot be read must not silently lose what it
    /// holds). Memory is bounded by the log's capacity, one record at a time.
    pub(crate) fn replay<E: From<io::Error>>(
        &self,
        epoch: u64,
        last: u64,
        mut apply: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut at = 0u64;
        let next = last.saturating_add(1);
        // The sequence the next record must have; the first may be any up to `next`.
        let mut expected: Option<u64> = None;
        let mut header = [0u8; HEADER];
        loop {
            if at.saturating_add(HEADER as u64) > self.capacity {
                return Ok(at);
            }
            self.file.read_exact_at(&mut header, at)?;
            let (magic, rest) = header.split_at(4);
            let (len, rest) = rest.split_at(4);
            let (rec_epoch, rest) = rest.split_at(8);
            let (sequence, hash) = rest.split_at(8);
            let len = u64::from(u32::from_le_bytes(le(len)));
            let sequence = u64::from_le_bytes(le(sequence));
            let in_chain = match expected {
                None => sequence <= next,
                Some(e) => sequence == e,
            };
            if magic != MAGIC
                || u64::from_le_bytes(le(rec_epoch)) != epoch
                || !in_chain
                || at + HEADER as u64 + len > self.capacity
            {
                return Ok(at);
            }
            let mut payload = vec![0u8; len as usize];
            self.file.read_exact_at(&mut payload, at + HEADER as u64)?;
            if blake3::hash(&payload).as_bytes() != hash {
                // A crash while this record was being written: it was never synced, so
                // its batch was never answered as durable.
                tracing::warn!(
                    offset = at,
                    sequence,
                    "the write-ahead log ends in a torn record; replay stops before it"
                );
                return Ok(at);
            }
            if sequence >= next {
                apply(sequence, &payload)?;
            }
            at += HEADER as u64 + len;
            expected = Some(sequence.saturating_add(1));
        }
    }
}

/// A little-endian field of the header (its length is fixed by `split_at`).
fn le<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replayed(wal: &Wal, epoch: u64, last: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        wal.replay(epoch, last, |s, p| {
            out.push((s, p.to_vec()));
            Ok::<(), io::Error>(())
        })
        .unwrap();
        out
    }

    #[test]
    fn records_replay_in_order_while_they_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut wal = Wal::open(&path, 4096).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096);
        wal.reset(3);
        wal.append(10, b"ten", false).unwrap();
        wal.append(11, b"eleven", true).unwrap();
        // A record that skips a sequence ends the chain, and so does one of an old epoch.
        wal.append(13, b"thirteen", true).unwrap();
        let wal = Wal::open(&path, 4096).unwrap();
        assert_eq!(
            replayed(&wal, 3, 9),
            vec![(10, b"ten".to_vec()), (11, b"eleven".to_vec())]
        );
        // Records the state already holds are passed over, the rest of the chain applied.
        assert_eq!(replayed(&wal, 3, 10), vec![(11, b"eleven".to_vec())]);
        assert!(
            replayed(&wal, 3, 11).is_empty(),
            "the state holds the whole chain"
        );
        assert!(
            replayed(&wal, 3, 8).is_empty(),
            "a gap before the first record"
        );
        assert!(replayed(&wal, 4, 9).is_empty(), "records of another epoch");
    }

    #[test]
    fn a_torn_record_ends_the_replay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut wal = Wal::open(&path, 4096).unwrap();
        wal.reset(1);
        wal.append(1, b"one", true).unwrap();
        let second = wal.append(2, b"two", true).unwrap();
        wal.append(3, b"three", true).unwrap();
        // Flip one payload byte of the second record: its hash no longer matches.
        wal.file.write_all_at(b"X", second + HEADER as u64).unwrap();
        assert_eq!(replayed(&wal, 1, 0), vec![(1, b"one".to_vec())]);
    }

    #[test]
    fn rewind_and_reset_let_later_records_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(&dir.path().join("log"), 4096).unwrap();
        wal.reset(1);
        wal.append(1, b"one", true).unwrap();
        let at = wal.append(2, b"first try", true).unwrap();
        wal.rewind(at);
        wal.append(2, b"retry", true).unwrap();
        assert_eq!(
            replayed(&wal, 1, 0),
            vec![(1, b"one".to_vec()), (2, b"retry".to_vec())]
        );
        wal.reset(2);
        wal.append(5, b"five", true).unwrap();
        assert_eq!(replayed(&wal, 2, 4), vec![(5, b"five".to_vec())]);
        assert!(replayed(&wal, 1, 0).is_empty());
    }

    #[test]
    fn a_record_that_does_not_fit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(&dir.path().join("log"), 256).unwrap();
        assert!(wal.fits(256 - HEADER));
        assert!(!wal.fits(256 - HEADER + 1));
        assert!(wal.append(1, &[7u8; 300], true).is_err());
        wal.append(1, &[7u8; 100], true).unwrap();
        assert!(!wal.fits(200));
        assert!(wal.append(2, &[7u8; 200], true).is_err());
        assert_eq!(replayed(&wal, 0, 0).len(), 1);
    }

    #[test]
    fn a_log_shorter_than_its_capacity_keeps_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut wal = Wal::open(&path, 4096).unwrap();
        assert!(wal.is_fresh());
        wal.reset(1);
        wal.append(1, b"one", true).unwrap();
        let wal = Wal::open(&path, 8192).unwrap();
        assert!(!wal.is_fresh());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
        assert_eq!(replayed(&wal, 1, 0), vec![(1, b"one".to_vec())]);
    }

    #[test]
    fn erase_leaves_nothing_to_replay() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(&dir.path().join("log"), 4096).unwrap();
        wal.append(1, b"one", true).unwrap();
        wal.erase().unwrap();
        assert!(replayed(&wal, 0, 0).is_empty());
    }
}
