//! A deterministic in-process cluster for tests: n replicas, one global FIFO of messages,
//! timers that fire only when a test says so, and a clock that moves only when a test
//! ticks it. No randomness, no threads, no wall clock.

// Test support: panicking on a broken fixture is the point.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use palisade_agreement::{
    Config, Input, OrderCertificate, OrderedBatch, Output, Replica, TimerKind,
};
use palisade_wire::agreement::{
    AgreementMessage, Batch, ClientId, Digest, PrePrepare, ReplicaId, Request, Sequence, Signed,
};
use palisade_wire::fs::Timestamp;

pub fn replica_key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[i as u8 + 1; 32])
}

pub fn client_key(c: ClientId) -> SigningKey {
    SigningKey::from_bytes(&[c as u8 + 100; 32])
}

pub const CLIENTS: u64 = 3;

pub fn config(f: usize, id: ReplicaId) -> Config {
    let n = 3 * f + 1;
    let replica_keys: Vec<VerifyingKey> = (0..n).map(|i| replica_key(i).verifying_key()).collect();
    let client_keys = (0..CLIENTS)
        .map(|c| client_key(c).verifying_key())
        .collect();
    let mut config = Config::new(f, id, replica_keys, client_keys);
    config.max_batch_requests = 4;
    config.batch_delay = Duration::from_millis(2);
    config.checkpoint_interval = 4;
    config.window = 8;
    config
}

pub fn request(client: ClientId, id: u64, payload: &[u8]) -> Signed<Request> {
    Signed::sign(
        &client_key(client),
        Request {
            client,
            request_id: id,
            payload: payload.to_vec().into(),
        },
    )
    .unwrap()
}

pub fn time(seconds: u32) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

/// Decides whether a message in flight is delivered (true) or dropped (false).
/// (A filter may also tamper with the message it lets through.)
pub type Filter = Box<dyn FnMut(ReplicaId, ReplicaId, &mut AgreementMessage) -> bool>;
/// A deterministic message schedule from a seed (a linear congruential generator, so
/// a failing seed replays exactly): which of the first `window` queued messages goes
/// next, and per-mille chances to duplicate or drop it.
pub struct Schedule {
    pub state: u64,
    pub window: usize,
    pub duplicate_per_mille: u64,
    pub drop_per_mille: u64,
}

impl Schedule {
    pub fn new(seed: u64, window: usize, duplicate_per_mille: u64, drop_per_mille: u64) -> Self {
        Schedule {
            state: seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
            window,
            duplicate_per_mille,
            drop_per_mille,
        }
    }

    pub fn next(&mut self, bound: u64) -> u64 {
        self.state = self
            .state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.state >> 33) % bound.max(1)
    }
}

pub struct Cluster {
    /// Without a schedule, messages go in FIFO order.
    pub schedule: Option<Schedule>,
    pub f: usize,
    pub replicas: Vec<Replica>,
    pub queue: VecDeque<(ReplicaId, ReplicaId, AgreementMessage)>,
    pub delivered: Vec<Vec<(OrderedBatch, OrderCertificate)>>,
    /// `StateTransfer` outputs per replica: (sequence, state digest).
    pub transfers: Vec<Vec<(Sequence, Digest)>>,
    pub timers: Vec<BTreeMap<TimerKind, Duration>>,
    /// Every `SetTimer` ever asked for, per replica, in order.
    pub timer_log: Vec<Vec<(TimerKind, Duration)>>,
    /// Replicas that neither send nor receive (crashed or silent).
    pub silent: BTreeSet<ReplicaId>,
    pub filter: Option<Filter>,
    /// Checkpoints already reported to each replica by the test's "execution".
    reported: Vec<Sequence>,
    pub steps: usize,
}

impl Cluster {
    pub fn new(f: usize) -> Cluster {
        Cluster::with(f, |_| {})
    }

    pub fn with(f: usize, tweak: impl Fn(&mut Config)) -> Cluster {
        let n = 3 * f + 1;
        let replicas = (0..n)
            .map(|i| {
                let mut c = config(f, i as ReplicaId);
                tweak(&mut c);
                Replica::new(c, replica_key(i)).unwrap()
            })
            .collect();
        let mut cluster = Cluster {
            f,
            replicas,
            queue: VecDeque::new(),
            delivered: vec![Vec::new(); n],
            transfers: vec![Vec::new(); n],
            timers: vec![BTreeMap::new(); n],
            timer_log: vec![Vec::new(); n],
            silent: BTreeSet::new(),
            filter: None,
            schedule: None,
            reported: vec![0; n],
            steps: 0,
        };
        cluster.tick_all(time(1_000));
        cluster
    }

    pub fn n(&self) -> usize {
        self.replicas.len()
    }

    pub fn keys(&self) -> Vec<VerifyingKey> {
        (0..self.n())
            .map(|i| replica_key(i).verifying_key())
            .collect()
    }

    /// Feeds one input to replica `to` and carries out its outputs.
    pub fn input(&mut self, to: ReplicaId, input: Input) -> Vec<Output> {
        let outputs = self.replicas[to as usize].step(input);
        self.apply(to, outputs.clone());
        outputs
    }

    pub fn apply(&mut self, from: ReplicaId, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { to, message } => self.queue.push_back((from, to, message)),
                Output::Broadcast(message) => {
                    for to in 0..self.n() as ReplicaId {
                        if to != from {
                            self.queue.push_back((from, to, message.clone()));
                        }
                    }
                }
                Output::SetTimer { kind, after } => {
                    self.timers[from as usize].insert(kind, after);
                    self.timer_log[from as usize].push((kind, after));
                }
                Output::CancelTimer(kind) => {
                    self.timers[from as usize].remove(&kind);
                }
                Output::Deliver { batch, certificate } => {
                    self.delivered[from as usize].push((batch, certificate));
                }
                Output::StateTransfer {
                    sequence,
                    state_digest,
                } => self.transfers[from as usize].push((sequence, state_digest)),
            }
        }
    }

    /// The execution cluster tells each of `replicas` that its checkpoint at `sequence`,
    /// with `state_digest`, is stable (`Input::StableCheckpoint`).
    pub fn execution_checkpoint(
        &mut self,
        replicas: impl IntoIterator<Item = ReplicaId>,
        sequence: Sequence,
        state_digest: Digest,
    ) {
        for i in replicas {
            self.input(
                i,
                Input::StableCheckpoint {
                    sequence,
                    state_digest,
                },
            );
        }
    }

    pub fn tick_all(&mut self, now: Timestamp) {
        for i in 0..self.n() as ReplicaId {
            self.input(i, Input::Tick(now));
        }
    }

    /// A client sends its request to every replica (TOCS §4.1, after a timeout; we do it
    /// at once so backups can suspect a primary that hides it), over its own
    /// authenticated link, as the runtime does (`Input::LinkRequest`).
    pub fn submit(&mut self, request: Signed<Request>) {
        for i in 0..self.n() as ReplicaId {
            if !self.silent.contains(&i) {
                self.input(i, Input::LinkRequest(request.clone()));
            }
        }
    }

    /// Delivers messages in FIFO order until none is left.
    pub fn run(&mut self) {
        while let Some((from, to, mut message)) = self.next_message() {
            self.steps += 1;
            assert!(self.steps < 1_000_000, "cluster does not quiesce");
            if self.silent.contains(&from) || self.silent.contains(&to) {
                continue;
            }
            if let Some(filter) = self.filter.as_mut() {
                if !filter(from, to, &mut message) {
                    continue;
                }
            }
            self.input(to, Input::Message { from, message });
        }
    }

    fn next_message(&mut self) -> Option<(ReplicaId, ReplicaId, AgreementMessage)> {
        let Some(schedule) = self.schedule.as_mut() else {
            return self.queue.pop_front();
        };
        loop {
            if self.queue.is_empty() {
                return None;
            }
            let window = self.queue.len().min(schedule.window) as u64;
            let index = schedule.next(window) as usize;
            let item = self.queue.remove(index)?;
            if schedule.next(1000) < schedule.duplicate_per_mille {
                self.queue.push_back(item.clone());
            }
            if schedule.next(1000) < schedule.drop_per_mille {
                continue;
            }
            return Some(item);
        }
    }

    /// Fires `kind` on every live replica that has it armed; returns how many fired.
    pub fn fire_all(&mut self, kind: TimerKind) -> usize {
        let mut fired = 0;
        for i in 0..self.n() {
            if self.silent.contains(&(i as ReplicaId)) {
                continue;
            }
            if self.timers[i].remove(&kind).is_some() {
                fired += 1;
                self.input(i as ReplicaId, Input::Timer(kind));
            }
        }
        fired
    }

    /// Runs, firing batch timers as they get armed, until nothing moves.
    pub fn settle(&mut self) {
        loop {
            self.run();
            if self.fire_all(TimerKind::Batch) == 0 {
                break;
            }
        }
    }

    /// The test's stand-in for execution: at every multiple of K a replica delivered,
    /// report a stable checkpoint whose digest is a hash of the delivered history.
    pub fn report_checkpoints(&mut self) {
        for i in 0..self.n() {
            if self.silent.contains(&(i as ReplicaId)) {
                continue;
            }
            let k = self.replicas[i].config().checkpoint_interval;
            let delivered: Vec<Sequence> =
                self.delivered[i].iter().map(|(b, _)| b.sequence).collect();
            for seq in delivered {
                if seq % k == 0 && seq > self.reported[i] {
                    self.reported[i] = seq;
                    let digest = self.history_digest(i, seq);
                    self.input(
                        i as ReplicaId,
                        Input::StableCheckpoint {
                            sequence: seq,
                            state_digest: digest,
                        },
                    );
                }
            }
        }
    }

    pub fn history_digest(&self, replica: usize, upto: Sequence) -> Digest {
        let mut bytes = Vec::new();
        for (b, _) in &self.delivered[replica] {
            if b.sequence <= upto {
                bytes.extend_from_slice(&b.batch.digest().unwrap().0);
            }
        }
        Digest::of(b"test-state", &bytes)
    }

    /// Invariants: every replica delivered a gap-free prefix 1, 2, 3, ...; at each
    /// sequence all replicas delivered the same batch; every certificate verifies.
    pub fn check_invariants(&self) {
        let keys = self.keys();
        let mut by_sequence: BTreeMap<Sequence, &OrderedBatch> = BTreeMap::new();
        for (i, delivered) in self.delivered.iter().enumerate() {
            let mut expected = 1;
            for (batch, cert) in delivered {
                // A gap is allowed only where a state transfer jumped over it.
                let jumped = self.transfers[i]
                    .iter()
                    .any(|(seq, _)| *seq + 1 == batch.sequence && *seq >= expected);
                assert!(
                    batch.sequence == expected || jumped,
                    "replica {i} skipped or reordered at {}",
                    batch.sequence
                );
                expected = batch.sequence + 1;
                cert.verify(batch, &keys, self.f).unwrap();
                if let Some(other) = by_sequence.get(&batch.sequence) {
                    assert_eq!(*other, batch, "two batches delivered at {}", batch.sequence);
                } else {
                    by_sequence.insert(batch.sequence, batch);
                }
            }
        }
    }

    /// (client, request id) of every request replica `i` delivered, in order.
    pub fn delivered_requests(&self, i: usize) -> Vec<(ClientId, u64)> {
        self.delivered[i]
            .iter()
            .flat_map(|(b, _)| b.batch.requests.iter())
            .map(|r| (r.message.client, r.message.request_id))
            .collect()
    }
}

/// Replica `id` of a cluster with f = 1, after its first clock reading.
pub fn replica(id: u32, tweak: impl Fn(&mut Config)) -> Replica {
    let mut c = config(1, id);
    tweak(&mut c);
    let mut r = Replica::new(c, replica_key(id as usize)).unwrap();
    // On its first clock reading a replica announces itself (a restarted one learns
    // what it missed); later readings are silent.
    assert_eq!(
        r.step(Input::Tick(time(1_000))),
        vec![Output::Broadcast(AgreementMessage::Status {
            view: 0,
            last_delivered: 0
        })]
    );
    assert!(r.step(Input::Tick(time(1_000))).is_empty());
    r
}

pub fn msg(from: u32, message: AgreementMessage) -> Input {
    Input::Message { from, message }
}

pub fn batch_at(ts: Timestamp, requests: Vec<Signed<Request>>) -> Batch {
    Batch {
        timestamp: ts,
        requests,
    }
}

/// The pre-prepare of `batch` at (`view`, `sequence`), signed by `signer`.
pub fn signed_pre_prepare(
    signer: u32,
    view: u64,
    sequence: u64,
    batch: &Batch,
) -> Signed<PrePrepare> {
    Signed::sign(
        &replica_key(signer as usize),
        PrePrepare {
            view,
            sequence,
            timestamp: batch.timestamp,
            digest: batch.digest().unwrap(),
            primary: signer,
        },
    )
    .unwrap()
}

/// A pre-prepare of `batch`, signed by `signer`, carrying the batch inline.
pub fn pre_prepare(signer: u32, view: u64, sequence: u64, batch: &Batch) -> AgreementMessage {
    AgreementMessage::PrePrepare {
        pre_prepare: signed_pre_prepare(signer, view, sequence, batch),
        batch: batch.clone(),
    }
}
