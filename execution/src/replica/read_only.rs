//! Read-only requests (Castro–Liskov TOCS §5.1.3, the read-only optimization), `Signed`
//! mode only: a client sends a request whose operation only reads straight to every
//! execution replica, which executes it against its current state without ordering and
//! answers at once — two message delays instead of agreement's four and the reply.
//!
//! The client says `after`: the highest sequence whose result it has accepted. A replica
//! answers only once it has executed through `after` (until then the request waits here,
//! bounded), so a read always sees what its client was already told. The client accepts a
//! result only when all 2g+1 replicas sent the same one, from whatever sequence each
//! stands at (`palisade_client`, which also explains why that makes reads linearizable), and
//! otherwise sends the same request to be ordered. So a replica that answers wrongly, late
//! or not at all costs reads their fast path, never their correctness — and a request that
//! is not read-only, or does not open or decode, is simply not answered here: ordered, it
//! gets the deterministic answer every replica gives.

use std::collections::VecDeque;

use palisade_crypto::BodyKey;
use palisade_wire::agreement::{ClientId, Request, Sequence, Signed};
use palisade_wire::execution::{ExecReplicaId, Reply};
use palisade_wire::fs::FsOp;

use crate::{ExecError, FileSystem, Store};

/// Read-only requests that may wait for their `after` at once. A client's window bounds
/// what a correct one has in flight; past this the oldest are dropped (their client falls
/// back to ordering them).
pub(crate) const MAX_WAITING_READS: usize = 1024;

/// A read-only request waiting until this replica has executed through `after`.
#[derive(Debug)]
pub(crate) struct ReadAsk {
    pub client: ClientId,
    pub request: Signed<Request>,
    pub after: Sequence,
}

/// Read-only requests waiting for their `after`, oldest first, at most
/// [`MAX_WAITING_READS`].
#[derive(Debug, Default)]
pub(crate) struct WaitingReads {
    asks: VecDeque<ReadAsk>,
}

impl WaitingReads {
    /// Queues `ask`; returns the oldest one if it had to make room.
    pub(crate) fn push(&mut self, ask: ReadAsk) -> Option<ReadAsk> {
        let dropped = if self.asks.len() >= MAX_WAITING_READS {
            self.asks.pop_front()
        } else {
            None
        };
        self.asks.push_back(ask);
        dropped
    }

    /// Removes and returns, oldest first, every request whose `after` is at or below
    /// `last_applied`.
    pub(crate) fn take_ready(&mut self, last_applied: Sequence) -> Vec<ReadAsk> {
        if self.asks.iter().all(|a| a.after > last_applied) {
            return Vec::new();
        }
        let (ready, waiting): (VecDeque<ReadAsk>, VecDeque<ReadAsk>) =
            self.asks.drain(..).partition(|a| a.after <= last_applied);
        self.asks = waiting;
        ready.into()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.asks.len()
    }
}

/// Why a read-only request got no answer.
#[derive(Debug)]
pub(crate) enum NotAnswered {
    /// The sealed payload does not open with the body key.
    Unsealable,
    /// The payload is not an `FsOp`.
    Undecodable,
    /// The operation may change state.
    NotReadOnly,
    Storage(ExecError),
}

/// Executes `request` against `fs`'s current state and makes this replica's answer: the
/// result's canonical bytes (sealed for the gateway under the read-only label when there
/// is a body key, apart from the sequence, so that replicas at different sequences with
/// the same answer send the same bytes), tagged with the sequence the state is at.
pub(crate) fn answer<S: Store>(
    fs: &FileSystem<S>,
    body_key: Option<&BodyKey>,
    replica: ExecReplicaId,
    request: &Request,
) -> Result<Reply, NotAnswered> {
    let (client, request_id) = (request.client, request.request_id);
    let opened;
    let payload: &[u8] = match body_key {
        None => &request.payload,
        Some(key) => {
            opened = key
                .open_request(client, &request.payload)
                .map_err(|_| NotAnswered::Unsealable)?;
            &opened
        }
    };
    let op: FsOp = palisade_wire::decode(payload).map_err(|_| NotAnswered::Undecodable)?;
    let result = fs
        .read_only(&op)
        .map_err(NotAnswered::Storage)?
        .ok_or(NotAnswered::NotReadOnly)?;
    let sequence = fs.last_applied();
    let bytes = super::core::result_bytes(&result);
    let result = match body_key {
        None => bytes,
        Some(key) => key.seal_read_reply(client, request_id, &bytes),
    };
    Ok(Reply {
        sequence,
        client,
        request_id,
        result,
        replica,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_wire::agreement::Signature;
    use palisade_wire::payload::Payload;

    fn ask(after: Sequence, id: u64) -> ReadAsk {
        ReadAsk {
            client: 1,
            request: Signed {
                signer: 1,
                message: Request {
                    client: 1,
                    request_id: id,
                    payload: Payload::from(Vec::new()),
                },
                signature: Signature([0; 64]),
            },
            after,
        }
    }

    #[test]
    fn releases_what_the_state_reached_oldest_first_and_keeps_the_rest() {
        let mut w = WaitingReads::default();
        for (after, id) in [(5, 1), (3, 2), (9, 3), (4, 4)] {
            assert!(w.push(ask(after, id)).is_none());
        }
        assert!(w.take_ready(2).is_empty());
        let ids = |v: Vec<ReadAsk>| {
            v.iter()
                .map(|a| a.request.message.request_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(w.take_ready(5)), vec![1, 2, 4]);
        assert_eq!(w.len(), 1);
        assert_eq!(ids(w.take_ready(9)), vec![3]);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn bounded_dropping_the_oldest() {
        let mut w = WaitingReads::default();
        for id in 0..MAX_WAITING_READS as u64 {
            assert!(w.push(ask(100, id)).is_none());
        }
        let dropped = w.push(ask(100, 9999)).expect("full: the oldest goes");
        assert_eq!(dropped.request.message.request_id, 0);
        assert_eq!(w.len(), MAX_WAITING_READS);
    }
}
