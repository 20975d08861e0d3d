//! Shared helpers of the replica tests: deterministic keys (ed25519, a dealt threshold key
//! set and a body key), real PBFT ORDER certificates (commits signed with the agreement
//! keys), signed requests, and a small in-process cluster of execution replicas (g = 1)
//! with an agreement-side `DeliveryLog`, in either reply mode.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use palisade_agreement::DeliveryLog;
use palisade_crypto::{BodyKey, DealtKeys, SchemeKind, ThresholdSigner, ThresholdVerifier};
use palisade_execution::{
    ExecTimer, ExecutionReplica, FileSystem, FsConfig, MemStore, ReplicaConfig, ReplicaInput,
    ReplicaOutput, ReplyMode,
};
use palisade_wire::agreement::{
    Batch, ClientId, Commit, OrderCertificate, OrderedBatch, PbftCertificate, Request, Sequence,
    Signed,
};
use palisade_wire::execution::{BatchReply, ExecReplicaId, ExecutionMessage};
use palisade_wire::firewall::FirewallMessage;
use palisade_wire::fs::{CreateHow, FsOp, FsResult, SetAttr, Timestamp, ROOT_ID};

pub const F: usize = 1;
pub const G: usize = 1;
pub const K: u64 = 4;
pub const MAX_AHEAD: u64 = 8;
pub const TIMEOUT: Duration = Duration::from_millis(100);
pub const CLIENTS: usize = 2;

fn key(kind: u8, i: usize) -> SigningKey {
    let mut seed = [kind; 32];
    seed[1] = i as u8;
    SigningKey::from_bytes(&seed)
}

pub fn agreement_key(i: usize) -> SigningKey {
    key(1, i)
}
pub fn client_key(i: usize) -> SigningKey {
    key(2, i)
}
pub fn exec_key(i: usize) -> SigningKey {
    key(3, i)
}

pub fn exec_public() -> Vec<VerifyingKey> {
    (0..2 * G + 1)
        .map(|i| exec_key(i).verifying_key())
        .collect()
}

pub fn config(id: ExecReplicaId) -> ReplicaConfig {
    ReplicaConfig {
        id,
        g: G,
        f: F,
        agreement_keys: (0..3 * F + 1)
            .map(|i| agreement_key(i).verifying_key())
            .collect(),
        client_keys: (0..CLIENTS)
            .map(|i| client_key(i).verifying_key())
            .collect(),
        exec_keys: exec_public(),
        checkpoint_interval: K,
        max_ahead: MAX_AHEAD,
        fetch_timeout: TIMEOUT,
        body_key: None,
        replies: ReplyMode::Signed,
    }
}

/// The execution cluster's threshold key set (g+1 of 2g+1 sign), dealt from a fixed seed.
pub fn dealt() -> DealtKeys {
    palisade_crypto::deal_from_seed(SchemeKind::Blst, G, 2 * G + 1, [9; 32]).unwrap()
}

pub fn threshold_signer(id: ExecReplicaId) -> Arc<dyn ThresholdSigner> {
    let keys = dealt();
    palisade_crypto::signer_from_bytes(&keys.public, id, &keys.shares[id as usize]).unwrap()
}

pub fn threshold_verifier() -> Arc<dyn ThresholdVerifier> {
    palisade_crypto::verifier_from_bytes(&dealt().public).unwrap()
}

/// The key gateways and execution replicas share for sealed bodies.
pub fn body_key() -> BodyKey {
    BodyKey::from_bytes([5; 32]).unwrap()
}

/// The firewall configuration: sealed bodies, a threshold share per batch.
pub fn threshold_config(id: ExecReplicaId) -> ReplicaConfig {
    ReplicaConfig {
        body_key: Some(body_key()),
        replies: ReplyMode::Threshold(threshold_signer(id)),
        ..config(id)
    }
}

pub fn replica(id: ExecReplicaId) -> ExecutionReplica<MemStore> {
    replica_with(config(id))
}

pub fn threshold_replica(id: ExecReplicaId) -> ExecutionReplica<MemStore> {
    replica_with(threshold_config(id))
}

pub fn replica_with(config: ReplicaConfig) -> ExecutionReplica<MemStore> {
    let id = config.id;
    let fs = FileSystem::open(MemStore::new(), FsConfig::default()).unwrap();
    ExecutionReplica::new(config, exec_key(id as usize), fs).unwrap()
}

/// A request whose payload the gateway sealed with [`body_key`].
pub fn sealed_request(client: ClientId, request_id: u64, op: &FsOp) -> Signed<Request> {
    let plain = palisade_wire::encode(op).unwrap();
    let sealed = body_key().seal_request(client, &plain, &mut rand::rng());
    request_raw(client, request_id, sealed)
}

pub fn request(client: ClientId, request_id: u64, op: &FsOp) -> Signed<Request> {
    request_raw(client, request_id, palisade_wire::encode(op).unwrap())
}

pub fn request_raw(client: ClientId, request_id: u64, payload: Vec<u8>) -> Signed<Request> {
    Signed::sign(
        &client_key(client as usize),
        Request {
            client,
            request_id,
            payload: payload.into(),
        },
    )
    .unwrap()
}

pub fn batch(sequence: Sequence, requests: Vec<Signed<Request>>) -> OrderedBatch {
    OrderedBatch {
        sequence,
        batch: Batch {
            timestamp: Timestamp {
                seconds: 1000 + sequence as u32,
                nanos: 0,
            },
            requests,
        },
    }
}

/// A PBFT ORDER certificate signed by the agreement replicas `signers` in view 0.
pub fn certificate_by(batch: &OrderedBatch, signers: &[usize]) -> OrderCertificate {
    let digest = batch.batch.digest().unwrap();
    let commits = signers
        .iter()
        .map(|i| {
            Signed::sign(
                &agreement_key(*i),
                Commit {
                    view: 0,
                    sequence: batch.sequence,
                    digest,
                    replica: *i as u32,
                },
            )
            .unwrap()
        })
        .collect();
    OrderCertificate::Pbft(PbftCertificate {
        view: 0,
        sequence: batch.sequence,
        digest,
        commits,
    })
}

/// A certificate with commits from all 3f+1 agreement replicas.
pub fn certificate(batch: &OrderedBatch) -> OrderCertificate {
    certificate_by(batch, &[0, 1, 2, 3])
}

pub fn order(sequence: Sequence, requests: Vec<Signed<Request>>) -> ReplicaInput {
    let b = batch(sequence, requests);
    let certificate = certificate(&b);
    ReplicaInput::Order {
        batch: b,
        certificate,
    }
}

/// The firewall messages of one step, in order.
pub fn firewall(out: &[ReplicaOutput]) -> Vec<FirewallMessage> {
    out.iter()
        .filter_map(|o| match o {
            ReplicaOutput::ToFirewall(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

pub fn replies(out: &[ReplicaOutput]) -> Vec<BatchReply> {
    out.iter()
        .filter_map(|o| match o {
            ReplicaOutput::Reply { reply, .. } => Some(reply.clone()),
            _ => None,
        })
        .collect()
}

pub fn result(reply: &BatchReply) -> FsResult {
    palisade_wire::decode(&reply.message.result).unwrap()
}

/// The requests of batch `k` of the standard workload: client 0 creates `f{k}` and
/// appends to file 2 (created by batch 1), client 1 makes `d{k}` and stats the root.
/// Request ids: client 0 uses 2k-1 and 2k, client 1 the same.
pub fn workload(k: u64) -> Vec<Signed<Request>> {
    workload_with(k, request)
}

/// [`workload`] with payloads sealed with [`body_key`] (the firewall configuration).
pub fn sealed_workload(k: u64) -> Vec<Signed<Request>> {
    workload_with(k, sealed_request)
}

fn workload_with(
    k: u64,
    request: fn(ClientId, u64, &FsOp) -> Signed<Request>,
) -> Vec<Signed<Request>> {
    let name = |p: &str| format!("{p}{k}").into_bytes();
    vec![
        request(
            0,
            2 * k - 1,
            &FsOp::Create {
                dir: ROOT_ID,
                name: name("f"),
                how: CreateHow::Guarded(SetAttr::default()),
            },
        ),
        request(
            1,
            2 * k - 1,
            &FsOp::Mkdir {
                dir: ROOT_ID,
                name: name("d"),
                attr: SetAttr::default(),
            },
        ),
        request(
            0,
            2 * k,
            &FsOp::Write {
                id: 2,
                offset: k * 100,
                data: vec![k as u8; 100],
            },
        ),
        request(1, 2 * k, &FsOp::GetAttr { id: ROOT_ID }),
    ]
}

/// The replies one replica sent, by (client, request id), in the order sent.
pub type Replies = BTreeMap<(ClientId, u64), Vec<BatchReply>>;

/// What replica `from` sent to agreement, and what a test may rewrite on the way.
type Tamper = Box<dyn FnMut(ExecReplicaId, &mut ExecutionMessage)>;

/// 2g+1 replicas wired together in one thread. Messages between replicas are queued and
/// delivered in order; `FetchOrders` is answered at once from a `DeliveryLog` that records
/// every certified batch and collects on every stable checkpoint the replicas report, as
/// an agreement node does. Timers are only recorded: tests fire them explicitly.
pub struct Cluster {
    pub replicas: Vec<ExecutionReplica<MemStore>>,
    /// A replica that is offline receives nothing (its inputs are lost).
    pub online: Vec<bool>,
    pub log: DeliveryLog,
    /// Replies per replica, by (client, request id), in the order sent.
    pub replies: Vec<Replies>,
    pub to_agreement: Vec<Vec<ExecutionMessage>>,
    /// What each replica sent to the bottom filter row (`Threshold` mode), in order.
    pub to_firewall: Vec<Vec<FirewallMessage>>,
    pub timers: Vec<BTreeMap<ExecTimer, Duration>>,
    /// Rewrites messages a replica sends to its peers (a Byzantine sender).
    pub tamper: Option<Tamper>,
    /// Hold messages from this sender instead of delivering them.
    pub hold_from: Option<ExecReplicaId>,
    pub held: Vec<(ExecReplicaId, ReplicaInput)>,
    /// Lose every message this replica sends to its peers.
    pub drop_from: Option<ExecReplicaId>,
    /// State-transfer chunks sent to each replica.
    pub state_chunks: Vec<usize>,
    queue: VecDeque<(ExecReplicaId, ReplicaInput)>,
    pub next_sequence: Sequence,
    /// Every order delivered, by sequence (for re-delivery after the log collected it).
    delivered: BTreeMap<Sequence, (OrderedBatch, OrderCertificate)>,
}

impl Cluster {
    pub fn new() -> Cluster {
        Cluster::with(replica)
    }

    /// The firewall configuration: sealed bodies, threshold shares.
    pub fn threshold() -> Cluster {
        Cluster::with(threshold_replica)
    }

    pub fn with(make: fn(ExecReplicaId) -> ExecutionReplica<MemStore>) -> Cluster {
        let n = 2 * G + 1;
        Cluster {
            replicas: (0..n as u32).map(make).collect(),
            online: vec![true; n],
            log: DeliveryLog::default(),
            replies: vec![BTreeMap::new(); n],
            to_agreement: vec![Vec::new(); n],
            to_firewall: vec![Vec::new(); n],
            timers: vec![BTreeMap::new(); n],
            tamper: None,
            hold_from: None,
            held: Vec::new(),
            drop_from: None,
            state_chunks: vec![0; n],
            queue: VecDeque::new(),
            next_sequence: 1,
            delivered: BTreeMap::new(),
        }
    }

    /// Agreement delivers the next batch to every online replica.
    pub fn order(&mut self, requests: Vec<Signed<Request>>) -> Sequence {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let b = batch(sequence, requests);
        let certificate = certificate(&b);
        self.log.record(b.clone(), certificate.clone());
        self.delivered
            .insert(sequence, (b.clone(), certificate.clone()));
        for r in 0..self.replicas.len() {
            self.queue.push_back((
                r as u32,
                ReplicaInput::Order {
                    batch: b.clone(),
                    certificate: certificate.clone(),
                },
            ));
        }
        self.run();
        sequence
    }

    /// Agreement delivers the next batch to the replicas `targets` only (the others
    /// miss it and must fetch it from the log).
    pub fn order_to(
        &mut self,
        requests: Vec<Signed<Request>>,
        targets: &[ExecReplicaId],
    ) -> Sequence {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let b = batch(sequence, requests);
        let certificate = certificate(&b);
        self.log.record(b.clone(), certificate.clone());
        self.delivered
            .insert(sequence, (b.clone(), certificate.clone()));
        for r in targets {
            self.queue.push_back((
                *r,
                ReplicaInput::Order {
                    batch: b.clone(),
                    certificate: certificate.clone(),
                },
            ));
        }
        self.run();
        sequence
    }

    /// Twelve batches of [`workload`] (sealed for `threshold`), then replica 2 loses its
    /// data directory and catches up by state transfer at 16: it never executes 13..16,
    /// so it knows them only by what the transfer brought.
    pub fn with_replica_2_transferred_at_16(
        make: fn(ExecReplicaId) -> ExecutionReplica<MemStore>,
        work: fn(u64) -> Vec<Signed<Request>>,
    ) -> Cluster {
        let mut c = Cluster::with(make);
        for k in 1..=12 {
            c.order(work(k));
        }
        c.replicas[2] = make(2);
        c.replies[2].clear();
        c.to_firewall[2].clear();
        for k in 13..=16 {
            c.order(work(k));
        }
        assert_eq!(c.replicas[2].stats().state_transfers_completed, 1);
        assert_eq!(c.replicas[2].last_applied(), 16);
        assert!(c.replies[2].is_empty() && c.to_firewall[2].is_empty());
        c
    }

    /// Agreement re-delivers the order it delivered at `sequence` to every online
    /// replica (a client retransmitted a request of that batch).
    pub fn redeliver(&mut self, sequence: Sequence) {
        for r in 0..self.replicas.len() {
            let input = self.delivered(sequence);
            self.queue.push_back((r as u32, input));
        }
        self.run();
    }

    /// Agreement asks every online replica for the reply to (`client`, `request_id`),
    /// whose batch left its delivery log (`ExecutionMessage::ResendReply`), naming the
    /// sequence it remembers delivering it at.
    pub fn ask_for_reply(&mut self, client: u64, request_id: u64, sequence: Option<Sequence>) {
        for r in 0..self.replicas.len() {
            self.queue.push_back((
                r as u32,
                ReplicaInput::ResendReply {
                    client,
                    request_id,
                    sequence,
                },
            ));
        }
        self.run();
    }

    /// The ORDER delivered at `sequence`, as agreement would deliver it again.
    pub fn delivered(&self, sequence: Sequence) -> ReplicaInput {
        let Some((batch, certificate)) = self.delivered.get(&sequence).cloned() else {
            panic!("no order was delivered at {sequence}");
        };
        ReplicaInput::Order { batch, certificate }
    }

    pub fn fire(&mut self, replica: ExecReplicaId, timer: ExecTimer) {
        self.timers[replica as usize].remove(&timer);
        self.queue.push_back((replica, ReplicaInput::Timer(timer)));
        self.run();
    }

    pub fn release_held(&mut self) {
        self.hold_from = None;
        let held = std::mem::take(&mut self.held);
        self.queue.extend(held);
        self.run();
    }

    pub fn run(&mut self) {
        while let Some((to, input)) = self.queue.pop_front() {
            if !self.online[to as usize] {
                continue;
            }
            let out = self.replicas[to as usize].step(input);
            self.handle(to, out);
        }
    }

    fn handle(&mut self, from: ExecReplicaId, out: Vec<ReplicaOutput>) {
        for o in out {
            match o {
                ReplicaOutput::Reply { to, reply } => {
                    let key = (to, reply.message.request_id);
                    self.replies[from as usize]
                        .entry(key)
                        .or_default()
                        .push(reply);
                }
                // The cluster tests send no read-only request (`tests/read_only.rs` steps
                // replicas one at a time).
                ReplicaOutput::ReadOnlyReply { .. } => {}
                ReplicaOutput::ToExecution { .. } if self.drop_from == Some(from) => {}
                ReplicaOutput::ToExecution { to, mut message } => {
                    if let Some(t) = self.tamper.as_mut() {
                        t(from, &mut message);
                    }
                    let targets: Vec<u32> = match to {
                        Some(t) => vec![t],
                        None => (0..self.replicas.len() as u32)
                            .filter(|r| *r != from)
                            .collect(),
                    };
                    for t in targets {
                        if matches!(message, ExecutionMessage::State { .. }) {
                            self.state_chunks[t as usize] += 1;
                        }
                        let input = ReplicaInput::Message {
                            from,
                            message: message.clone(),
                        };
                        if self.hold_from == Some(from) {
                            self.held.push((t, input));
                        } else {
                            self.queue.push_back((t, input));
                        }
                    }
                }
                ReplicaOutput::ToAgreement(message) => {
                    match &message {
                        ExecutionMessage::FetchOrders { from: start } => {
                            for m in self.log.fetch(*start) {
                                if let ExecutionMessage::Order { batch, certificate } = m {
                                    self.queue.push_back((
                                        from,
                                        ReplicaInput::Order { batch, certificate },
                                    ));
                                }
                            }
                        }
                        ExecutionMessage::Stable(cert) => {
                            cert.verify(&exec_public(), G).unwrap();
                            self.log.collect(cert);
                        }
                        _ => {}
                    }
                    self.to_agreement[from as usize].push(message);
                }
                ReplicaOutput::ToFirewall(message) => {
                    self.to_firewall[from as usize].push(message);
                }
                ReplicaOutput::SetTimer { kind, after } => {
                    self.timers[from as usize].insert(kind, after);
                }
                ReplicaOutput::CancelTimer(kind) => {
                    self.timers[from as usize].remove(&kind);
                }
            }
        }
    }

    /// Every reply replica `r` sent for (client, id): exactly one, and returned.
    pub fn reply_of(&self, r: usize, client: ClientId, id: u64) -> &BatchReply {
        let v = self.replies[r]
            .get(&(client, id))
            .unwrap_or_else(|| panic!("replica {r}: no reply to ({client}, {id})"));
        &v[0]
    }
}
