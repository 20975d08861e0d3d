//! Exactly-once execution (TOCS §4.1, generalised to many requests in flight per client,
//! like the agreement cluster's client table): the table of executed request ids, which is
//! replicated state, and the cache of recent replies, which is not.

use std::collections::{BTreeMap, BTreeSet};

use palisade_wire::agreement::ClientId;
use palisade_wire::checkpoint::ClientRecord;
use palisade_wire::execution::BatchReply;

use crate::ExecError;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Executed {
    max: u64,
    /// Executed ids above `max - window`.
    ids: BTreeSet<u64>,
}

/// Which (client, request id) pairs were executed. Deterministic (ordered maps) and
/// bounded: at most `window` ids per client, and clients are bounded by the registered
/// client keys (a request's signature is checked against the key of its client id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExecutedTable {
    window: u64,
    clients: BTreeMap<ClientId, Executed>,
}

impl ExecutedTable {
    pub(crate) fn new(window: u64) -> ExecutedTable {
        ExecutedTable {
            window: window.max(1),
            clients: BTreeMap::new(),
        }
    }

    /// True if `id` was executed for `client`, or is so old that it must be a replay.
    pub(crate) fn contains(&self, client: ClientId, id: u64) -> bool {
        match self.clients.get(&client) {
            Some(e) => id <= e.max.saturating_sub(self.window) || e.ids.contains(&id),
            None => false,
        }
    }

    /// Records that `id` of `client` was executed (call only if not `contains`).
    #[cfg(test)]
    pub(crate) fn insert(&mut self, client: ClientId, id: u64) {
        let window = self.window;
        slide(self.clients.entry(client).or_default(), id, window);
    }

    /// Applies a batch's staged changes (once the batch committed with them).
    pub(crate) fn apply(&mut self, staged: StagedClients) {
        let window = self.window;
        for (client, s) in staged.touched {
            let e = self.clients.entry(client).or_default();
            for id in s.ids {
                slide(e, id, window);
            }
        }
    }

    /// The table as it travels in a state transfer and as it is stored.
    pub(crate) fn to_records(&self) -> Vec<ClientRecord> {
        self.clients
            .iter()
            .map(|(client, e)| record(*client, e))
            .collect()
    }

    /// A hash of the table, for the checkpoint digest: fixed-width fields in key order,
    /// so equal tables hash equally on every replica.
    pub(crate) fn hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"palisade/execution/executed-table");
        h.update(&self.window.to_le_bytes());
        h.update(&(self.clients.len() as u64).to_le_bytes());
        for (client, e) in &self.clients {
            h.update(&client.to_le_bytes());
            h.update(&e.max.to_le_bytes());
            h.update(&(e.ids.len() as u64).to_le_bytes());
            for id in &e.ids {
                h.update(&id.to_le_bytes());
            }
        }
        *h.finalize().as_bytes()
    }

    /// Rebuilds a table from transferred records, refusing anything this replica could
    /// not have produced itself (unknown clients, ids outside the window, disorder).
    pub(crate) fn from_records(
        records: &[ClientRecord],
        window: u64,
        clients: usize,
    ) -> Result<ExecutedTable, ExecError> {
        let bad = |m: &str| ExecError::BadCheckpoint(format!("client table: {m}"));
        let mut table = ExecutedTable::new(window);
        for r in records {
            if usize::try_from(r.client).map_or(true, |c| c >= clients) {
                return Err(bad("unknown client"));
            }
            if table
                .clients
                .last_key_value()
                .is_some_and(|(c, _)| *c >= r.client)
            {
                return Err(bad("clients not strictly ascending"));
            }
            let floor = r.max_executed.saturating_sub(table.window);
            if r.executed.len() as u64 > table.window
                || !r.executed.windows(2).all(|w| w[0] < w[1])
                || r.executed
                    .iter()
                    .any(|id| *id <= floor || *id > r.max_executed)
                || r.executed.last() != Some(&r.max_executed)
            {
                return Err(bad("ids outside the window"));
            }
            table.clients.insert(
                r.client,
                Executed {
                    max: r.max_executed,
                    ids: r.executed.iter().copied().collect(),
                },
            );
        }
        Ok(table)
    }
}

/// Moves `e` to record `id` as executed: an id above the highest one slides the window
/// up to it (like IPsec anti-replay, RFC 4303 §3.4.3), and every id at or below the new
/// floor counts as executed without being listed — a gateway that restarts takes a
/// clock-derived request-id base far above its old ids, and its old ids must never run.
fn slide(e: &mut Executed, id: u64, window: u64) {
    if id > e.max {
        e.max = id;
        let floor = id.saturating_sub(window);
        // Usually a few ids fall out at the bottom: pop them rather than split the set.
        while e.ids.first().is_some_and(|first| *first <= floor) {
            e.ids.pop_first();
        }
    }
    if id > e.max.saturating_sub(window) {
        e.ids.insert(id);
    }
}

fn record(client: ClientId, e: &Executed) -> ClientRecord {
    ClientRecord {
        client,
        max_executed: e.max,
        executed: e.ids.iter().copied().collect(),
    }
}

/// One batch's changes to the table, staged beside it: each request is checked against
/// the table as the batch's earlier requests left it, and the table changes only if the
/// batch commits, with these records in the same store commit. Only what the batch adds
/// is staged (the highest id and the new ids), not a copy of each touched client's
/// window: that copy, a thousand ids, cost more than the rest of the bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct StagedClients {
    touched: BTreeMap<ClientId, Staged>,
}

/// A client's changes in one batch.
#[derive(Debug, Default)]
struct Staged {
    /// The highest id with the batch applied.
    max: u64,
    /// Ids the batch executes, in batch order.
    ids: Vec<u64>,
}

impl StagedClients {
    /// `contains` over the table with this batch's earlier requests applied.
    pub(crate) fn contains(&self, table: &ExecutedTable, client: ClientId, id: u64) -> bool {
        let old = table.clients.get(&client);
        let staged = self.touched.get(&client);
        let max = match (old, staged) {
            (_, Some(s)) => s.max,
            (Some(e), None) => e.max,
            (None, None) => return false,
        };
        id <= max.saturating_sub(table.window)
            || old.is_some_and(|e| e.ids.contains(&id))
            || staged.is_some_and(|s| s.ids.contains(&id))
    }

    /// Stages that `id` of `client` was executed (call only if not `contains`).
    pub(crate) fn insert(&mut self, table: &ExecutedTable, client: ClientId, id: u64) {
        let s = self.touched.entry(client).or_insert_with(|| Staged {
            max: table.clients.get(&client).map_or(0, |e| e.max),
            ids: Vec::new(),
        });
        s.max = s.max.max(id);
        s.ids.push(id);
    }

    /// The records to store with the batch: each touched client's entry as
    /// [`ExecutedTable::apply`] will leave it.
    pub(crate) fn records(&self, table: &ExecutedTable) -> BTreeMap<u64, Option<ClientRecord>> {
        self.touched
            .iter()
            .map(|(c, s)| {
                let floor = s.max.saturating_sub(table.window);
                let mut executed: Vec<u64> = table
                    .clients
                    .get(c)
                    .map(|e| e.ids.range(floor.saturating_add(1)..).copied().collect())
                    .unwrap_or_default();
                executed.extend(s.ids.iter().copied().filter(|id| *id > floor));
                executed.sort_unstable();
                let record = ClientRecord {
                    client: *c,
                    max_executed: s.max,
                    executed,
                };
                (*c, Some(record))
            })
            .collect()
    }
}

/// Recent replies per client (with their batch signature and path), for retransmission (TOCS §4.1: a replica re-sends
/// the reply of a request it already executed). Bounded per client by count and bytes;
/// the lowest request ids go first. Not part of the replicated state: whether a cached
/// reply is still there changes only whether a copy is re-sent.
#[derive(Debug, Default)]
pub(crate) struct ReplyCache {
    clients: BTreeMap<ClientId, (BTreeMap<u64, BatchReply>, usize)>,
    max_entries: usize,
    max_bytes: usize,
}

impl ReplyCache {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> ReplyCache {
        ReplyCache {
            clients: BTreeMap::new(),
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    pub(crate) fn get(&self, client: ClientId, id: u64) -> Option<&BatchReply> {
        self.clients.get(&client).and_then(|(m, _)| m.get(&id))
    }

    pub(crate) fn insert(&mut self, reply: BatchReply) {
        let (client, id) = (reply.message.client, reply.message.request_id);
        let size = reply.message.result.len();
        let (map, bytes) = self.clients.entry(client).or_default();
        if let Some(old) = map.insert(id, reply) {
            *bytes = bytes.saturating_sub(old.message.result.len());
        }
        *bytes = bytes.saturating_add(size);
        while map.len() > self.max_entries || (*bytes > self.max_bytes && map.len() > 1) {
            let Some((_, gone)) = map.pop_first() else {
                break;
            };
            *bytes = bytes.saturating_sub(gone.message.result.len());
        }
    }

    pub(crate) fn clear(&mut self) {
        self.clients.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_window_and_round_trip() {
        let mut t = ExecutedTable::new(4);
        for id in [1, 2, 5] {
            assert!(!t.contains(7, id));
            t.insert(7, id);
        }
        assert!(t.contains(7, 1), "below the floor 5-4=1: a replay");
        assert!(
            !t.contains(7, 3) && !t.contains(7, 4),
            "in the window, not executed"
        );
        assert!(t.contains(7, 5) && t.contains(7, 2));
        t.insert(7, 3);
        let back = ExecutedTable::from_records(&t.to_records(), 4, 8).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.hash(), t.hash());
        t.insert(7, 4);
        assert_ne!(back.hash(), t.hash());
        assert!(ExecutedTable::from_records(&t.to_records(), 4, 7).is_err());
        let mut bad = t.to_records();
        bad[0].executed.insert(0, 1);
        assert!(ExecutedTable::from_records(&bad, 4, 8).is_err());
    }

    #[test]
    fn staged_batches_leave_the_table_as_one_by_one_inserts_do() {
        // Batches of ids, some below the floor, some repeated, some jumping far ahead
        // (a restarted gateway): staging then applying must give the same answers, the
        // same stored records and the same table as inserting one by one.
        let mut staged_table = ExecutedTable::new(8);
        let mut plain = ExecutedTable::new(8);
        let mut x = 12345u64;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        for round in 0..200u64 {
            let mut staged = StagedClients::default();
            for _ in 0..next() % 6 {
                let client = next() % 3;
                let base = plain.clients.get(&client).map_or(0, |e| e.max);
                let id = match next() % 10 {
                    0 => base + 40 + round,
                    1..=3 => base.saturating_sub(next() % 12),
                    _ => base + next() % 5,
                };
                let seen = staged.contains(&staged_table, client, id);
                assert_eq!(seen, plain.contains(client, id), "round {round} id {id}");
                if !seen {
                    staged.insert(&staged_table, client, id);
                    plain.insert(client, id);
                }
            }
            let records = staged.records(&staged_table);
            staged_table.apply(staged);
            assert_eq!(staged_table, plain, "round {round}");
            for (client, record) in records {
                let e = plain.clients.get(&client).unwrap();
                assert_eq!(record, Some(super::record(client, e)));
            }
        }
    }

    #[test]
    fn reply_cache_is_bounded() {
        let reply = |id: u64, len: usize| BatchReply {
            message: palisade_wire::execution::Reply {
                sequence: 1,
                client: 3,
                request_id: id,
                result: vec![0; len],
                replica: 0,
            },
            leaf_index: 0,
            leaf_count: 1,
            path: Vec::new(),
            signature: palisade_wire::agreement::Signature([0; 64]),
        };
        let mut c = ReplyCache::new(2, 100);
        c.insert(reply(1, 10));
        c.insert(reply(2, 10));
        c.insert(reply(3, 10));
        assert!(c.get(3, 1).is_none() && c.get(3, 2).is_some() && c.get(3, 3).is_some());
        c.insert(reply(4, 95));
        assert!(c.get(3, 3).is_none() && c.get(3, 4).is_some());
    }
}
