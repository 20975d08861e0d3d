//! A leaking execution replica ([`ExecFault::Leaking`](crate::scenario::ExecFault)): it
//! executes honestly, and tries every way out it has to get file state past the
//! firewall. What it leaks is real secret: the plaintext of the requests it opens with
//! the body key (the file data clients write) and its state digest.
//!
//! Per executed batch it sends to every bottom-row filter, besides its honest messages
//! (SOSP 2003 §4's threat: a compromised replica encodes state in what it sends):
//! - its share with the secret in place of the signature bytes, every other batch;
//! - a body for a real request of the batch carrying the secret (uncertified);
//! - bodies for requests never made;
//! - a stable share whose bytes are the secret;
//! - a share whose "leaf hashes" are the secret, 32 bytes each;
//! - raw bytes;
//! - a flood of [`FLOOD`] more such messages;
//!
//! and raw bytes straight to an agreement node and a client, which the deployment has no
//! link for (the network drops them, [`crate::topology`]).

use palisade_crypto::BodyKey;
use palisade_wire::agreement::{Digest, OrderedBatch};
use palisade_wire::execution::ExecReplicaId;
use palisade_wire::firewall::{
    FirewallMessage, ReplyBody, ReplyEntry, ReplyShare, SignatureShare, StableShare,
};

use crate::message::{Msg, NodeId};

/// Extra messages per executed batch.
pub const FLOOD: usize = 16;
/// Most secret bytes remembered.
const MAX_SECRET: usize = 4096;
/// Bytes of secret per flooded body.
const CHUNK: usize = 512;

/// What a leaking replica knows and has sent.
#[derive(Debug, Default)]
pub struct Leaker {
    secret: Vec<u8>,
    batches: u64,
    /// Leaking messages it sent (before the network and the filters had their say).
    pub sent: u64,
}

impl Leaker {
    /// Learns the plaintext of an order's requests (as the replica itself opens them).
    pub fn observe_order(&mut self, batch: &OrderedBatch, key: Option<&BodyKey>) {
        for r in &batch.batch.requests {
            let plain = match key {
                Some(k) => k.open_request(r.message.client, &r.message.payload).ok(),
                None => Some(r.message.payload.to_vec()),
            };
            if let Some(p) = plain {
                self.learn(&p);
            }
        }
    }

    /// Learns its state digest.
    pub fn observe_digest(&mut self, digest: &Digest) {
        self.learn(&digest.0);
    }

    fn learn(&mut self, bytes: &[u8]) {
        self.secret.extend_from_slice(bytes);
        if self.secret.len() > MAX_SECRET {
            let cut = self.secret.len() - MAX_SECRET;
            self.secret.drain(..cut);
        }
    }

    fn chunk(&self, i: usize, len: usize) -> Vec<u8> {
        if self.secret.is_empty() {
            return b"secret".to_vec();
        }
        let start = (i * len) % self.secret.len();
        self.secret
            .iter()
            .cycle()
            .skip(start)
            .take(len.min(self.secret.len()))
            .copied()
            .collect()
    }

    /// Rewrites this step's firewall messages (the bad share) and adds the leaks.
    /// `honest` are the messages the core sent toward the firewall this step.
    pub fn leak(
        &mut self,
        me: ExecReplicaId,
        honest: Vec<FirewallMessage>,
        bottom: &[NodeId],
    ) -> Vec<(NodeId, Msg)> {
        let mut out = Vec::new();
        let mut share_seen = None;
        let mut real_request = None;
        let mut messages = Vec::with_capacity(honest.len());
        for m in honest {
            match m {
                FirewallMessage::ReplyShare(mut s) => {
                    share_seen = Some(s.sequence);
                    if self.batches % 2 == 1 {
                        s.share = SignatureShare(self.chunk(0, 96));
                    }
                    messages.push(FirewallMessage::ReplyShare(s));
                }
                FirewallMessage::ReplyBody(b) => {
                    real_request.get_or_insert((b.entry.client, b.entry.request_id));
                    messages.push(FirewallMessage::ReplyBody(b));
                }
                other => messages.push(other),
            }
        }
        let mut msgs: Vec<Msg> = messages.into_iter().map(Msg::Firewall).collect();
        if let Some(sequence) = share_seen {
            self.batches += 1;
            let (client, request_id) = real_request.unwrap_or((0, 1));
            let body = |client, request_id, body| {
                Msg::Firewall(FirewallMessage::ReplyBody(ReplyBody {
                    sequence,
                    replica: me,
                    entry: ReplyEntry {
                        client,
                        request_id,
                        body,
                    },
                }))
            };
            let mut leaks = vec![
                body(client, request_id, self.chunk(1, CHUNK)),
                body(client, (1 << 62) + self.batches, self.chunk(2, CHUNK)),
                Msg::Firewall(FirewallMessage::StableShare(StableShare {
                    sequence,
                    replica: me,
                    share: SignatureShare(self.chunk(3, 96)),
                })),
                Msg::Firewall(FirewallMessage::ReplyShare(ReplyShare {
                    sequence,
                    replica: me,
                    leaves: self
                        .chunk(4, 256)
                        .chunks(32)
                        .map(|c| {
                            let mut d = [0u8; 32];
                            d[..c.len()].copy_from_slice(c);
                            Digest(d)
                        })
                        .collect(),
                    share: SignatureShare(self.chunk(5, 96)),
                })),
                Msg::Opaque(self.chunk(6, CHUNK)),
            ];
            for i in 0..FLOOD {
                let id = if i % 2 == 0 {
                    request_id
                } else {
                    (1 << 62) + (self.batches << 8) + i as u64
                };
                leaks.push(body(client, id, self.chunk(7 + i, CHUNK)));
            }
            self.sent += (leaks.len() * bottom.len()) as u64 + 2;
            msgs.extend(leaks);
            out.push((NodeId::Agreement(0), Msg::Opaque(self.chunk(0, CHUNK))));
            out.push((NodeId::Client(0), Msg::Opaque(self.chunk(1, CHUNK))));
        }
        for msg in msgs {
            for to in bottom {
                out.push((*to, msg.clone()));
            }
        }
        out
    }
}
