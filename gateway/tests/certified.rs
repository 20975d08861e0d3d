//! The gateway's replicated service in the firewall configuration, end to end over real
//! authenticated links: every operation leaves the gateway sealed for the execution
//! cluster, and a result is accepted only as a reply certified by the cluster's
//! combined threshold signature, relayed by an agreement node (SOSP 2003 §4; issue 4).
//!
//! The far side is a stand-in for agreement and the filter rows, driven by this test:
//! one link node `Agreement(0)` that orders what the gateway sends into certified
//! batches, runs them on three real execution replicas (g = 1, `Threshold` mode, the
//! shared body key), combines g+1 of their shares as the bottom filter row does, and
//! sends each certified reply back — after a tampered copy of it, which the gateway must
//! refuse. It also records whether any plaintext reached it.

// Test fixtures: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use palisade_client::Acceptance;
use palisade_crypto::{
    certify_replies, BodyKey, DealtKeys, SchemeKind, ThresholdSigner, ThresholdVerifier,
};
use palisade_execution::{
    ExecutionReplica, FileSystem, FsConfig, MemStore, ReplicaConfig, ReplicaInput, ReplicaOutput,
    ReplyMode,
};
use palisade_gateway::{default_client_config, FileService, ReplicatedFileService};
use palisade_net::{Envelope, Inbound, Network, NetworkConfig, NodeId, NoiseKeypair, PeerInfo};
use palisade_wire::agreement::{
    Batch, Commit, OrderCertificate, OrderedBatch, PbftCertificate, Request, Signed,
};
use palisade_wire::execution::Reply;
use palisade_wire::firewall::{CertifiedReply, FirewallMessage, ReplyEntry, SignatureShare};
use palisade_wire::fs::{CreateHow, FsError, FsOp, FsReply, SetAttr, Timestamp, ROOT_ID};
use tokio::sync::mpsc;

const CLIENT: u64 = 0;
const G: usize = 1;
const F: usize = 1;
/// Bytes that every secret of these tests contains: no link message to the agreement
/// stand-in may contain them.
const MARKER: &[u8] = b"palisade-secret-marker";

fn agreement_key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[30 + i as u8; 32])
}
fn exec_key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[40 + i as u8; 32])
}
fn client_key() -> SigningKey {
    SigningKey::from_bytes(&[50; 32])
}
fn dealt() -> DealtKeys {
    palisade_crypto::deal_from_seed(SchemeKind::Blst, G, 2 * G + 1, [8; 32]).unwrap()
}
fn verifier() -> Arc<dyn ThresholdVerifier> {
    palisade_crypto::verifier_from_bytes(&dealt().public).unwrap()
}
fn signer(i: u32) -> Arc<dyn ThresholdSigner> {
    let k = dealt();
    palisade_crypto::signer_from_bytes(&k.public, i, &k.shares[i as usize]).unwrap()
}
fn body_key() -> BodyKey {
    BodyKey::from_bytes([6; 32]).unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PBFT ORDER certificate with commits from all 3f+1 agreement replicas.
fn certificate(batch: &OrderedBatch) -> OrderCertificate {
    let digest = batch.batch.digest().unwrap();
    let commits = (0..3 * F + 1)
        .map(|i| {
            Signed::sign(
                &agreement_key(i),
                Commit {
                    view: 0,
                    sequence: batch.sequence,
                    digest,
                    replica: i as u32,
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

/// Three execution replicas in `Threshold` mode, and what the bottom filter row does
/// with their output: combine g+1 shares, cut the signature into certified replies.
struct Cluster {
    replicas: Vec<ExecutionReplica<MemStore>>,
    verifier: Arc<dyn ThresholdVerifier>,
    next: u64,
}

impl Cluster {
    fn new() -> Cluster {
        let replicas = (0..2 * G + 1)
            .map(|i| {
                let config = ReplicaConfig {
                    id: i as u32,
                    g: G,
                    f: F,
                    agreement_keys: (0..3 * F + 1)
                        .map(|a| agreement_key(a).verifying_key())
                        .collect(),
                    client_keys: vec![client_key().verifying_key()],
                    exec_keys: (0..2 * G + 1)
                        .map(|e| exec_key(e).verifying_key())
                        .collect(),
                    checkpoint_interval: 16,
                    max_ahead: 64,
                    fetch_timeout: Duration::from_millis(100),
                    body_key: Some(body_key()),
                    replies: ReplyMode::Threshold(signer(i as u32)),
                };
                let fs = FileSystem::open(MemStore::new(), FsConfig::default()).unwrap();
                ExecutionReplica::new(config, exec_key(i), fs).unwrap()
            })
            .collect();
        Cluster {
            replicas,
            verifier: verifier(),
            next: 1,
        }
    }

    /// Orders `requests` as the next batch and returns its certified replies.
    fn order(&mut self, requests: Vec<Signed<Request>>) -> Vec<CertifiedReply> {
        let sequence = self.next;
        self.next += 1;
        let batch = OrderedBatch {
            sequence,
            batch: Batch {
                timestamp: Timestamp {
                    seconds: 1_000 + sequence as u32,
                    nanos: 0,
                },
                requests,
            },
        };
        let certificate = certificate(&batch);
        let mut shares: Vec<(u32, SignatureShare)> = Vec::new();
        let mut bodies: Vec<Vec<ReplyEntry>> = vec![Vec::new(); self.replicas.len()];
        for (i, r) in self.replicas.iter_mut().enumerate() {
            let out = r.step(ReplicaInput::Order {
                batch: batch.clone(),
                certificate: certificate.clone(),
            });
            for o in out {
                match o {
                    ReplicaOutput::ToFirewall(FirewallMessage::ReplyShare(s)) => {
                        shares.push((s.replica, s.share))
                    }
                    ReplicaOutput::ToFirewall(FirewallMessage::ReplyBody(b)) => {
                        bodies[i].push(b.entry)
                    }
                    _ => {}
                }
            }
        }
        // Sealed deterministically: every replica sent the same bodies.
        assert!(bodies.iter().all(|b| *b == bodies[0]));
        if shares.is_empty() {
            return Vec::new(); // only duplicates: nothing certified
        }
        let signature = self.verifier.combine(&shares[..G + 1]).unwrap();
        certify_replies(sequence, &bodies[0], &signature)
    }

    /// Orders `requests` as the next batch, but certifies replies whose bodies are NOT
    /// sealed for their requests (what only g+1 colluding replicas could make): the
    /// gateway must answer `Io`, not garbage.
    fn order_unopenable(&mut self, requests: Vec<Signed<Request>>) -> Vec<CertifiedReply> {
        let certs = self.order(requests);
        let Some(sequence) = certs.first().map(|c| c.sequence) else {
            return certs;
        };
        let entries: Vec<ReplyEntry> = certs
            .into_iter()
            .map(|c| ReplyEntry {
                body: body_key().seal_reply(sequence, CLIENT, c.entry.request_id + 1, b"x"),
                ..c.entry
            })
            .collect();
        let message = palisade_wire::firewall::reply_root_message(
            sequence,
            &palisade_crypto::reply_root(&entries),
        );
        let shares: Vec<_> = (0..=G as u32)
            .map(|i| (i, signer(i).sign_share(&message)))
            .collect();
        let signature = self.verifier.combine(&shares).unwrap();
        certify_replies(sequence, &entries, &signature)
    }
}

/// What the agreement stand-in saw and how it behaves.
#[derive(Default)]
struct Far {
    /// Requests received.
    requests: AtomicU64,
    /// Requests whose payload contained the plaintext marker.
    plaintext_seen: AtomicU64,
    /// Requests whose payload opened with the body key.
    sealed: AtomicU64,
    /// Order this many requests per batch (0: whatever arrived together).
    batch_size: AtomicUsize,
    /// Certify the next batch with bodies that do not open.
    unopenable_next: AtomicBool,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn agreement_stand_in(
    net: Arc<Network>,
    mut inbound: mpsc::Receiver<Inbound>,
    far: Arc<Far>,
) {
    let mut cluster = Cluster::new();
    let mut pending: Vec<Signed<Request>> = Vec::new();
    let gateway = NodeId::Client(CLIENT);
    while let Some(Inbound { from, envelope }) = inbound.recv().await {
        let (NodeId::Client(CLIENT), Envelope::Request(request)) = (from, envelope) else {
            continue;
        };
        far.requests.fetch_add(1, Ordering::SeqCst);
        let payload = &request.message.payload;
        if contains(payload, MARKER) {
            far.plaintext_seen.fetch_add(1, Ordering::SeqCst);
        }
        if body_key().open_request(CLIENT, payload).is_ok() {
            far.sealed.fetch_add(1, Ordering::SeqCst);
        }
        pending.push(request);
        let size = far.batch_size.load(Ordering::SeqCst);
        if size > 0 && pending.len() < size {
            continue;
        }
        let requests = std::mem::take(&mut pending);
        let certs = if far.unopenable_next.swap(false, Ordering::SeqCst) {
            cluster.order_unopenable(requests)
        } else {
            cluster.order(requests)
        };
        for c in certs {
            // A hostile copy first: the body changed under the same signature and path.
            let mut bad = c.clone();
            bad.entry.body[0] ^= 1;
            net.send(
                gateway,
                &Envelope::Firewall(FirewallMessage::CertifiedReply(bad)),
            );
            net.send(
                gateway,
                &Envelope::Firewall(FirewallMessage::CertifiedReply(c)),
            );
        }
    }
}

struct Setup {
    service: Arc<ReplicatedFileService>,
    far: Arc<Far>,
    agreement_net: Arc<Network>,
}

async fn setup() -> Setup {
    let gw_noise = NoiseKeypair::generate().unwrap();
    let ag_noise = NoiseKeypair::generate().unwrap();
    let gw_addr: SocketAddr = (Ipv4Addr::LOCALHOST, free_port()).into();
    let ag_addr: SocketAddr = (Ipv4Addr::LOCALHOST, free_port()).into();
    let (ag_net, ag_in) = Network::start(NetworkConfig::new(
        NodeId::Agreement(0),
        Some(ag_addr),
        ag_noise.clone(),
        vec![PeerInfo {
            id: NodeId::Client(CLIENT),
            addr: Some(gw_addr),
            noise_public: gw_noise.public,
        }],
    ))
    .await
    .unwrap();
    let (gw_net, gw_in) = Network::start(NetworkConfig::new(
        NodeId::Client(CLIENT),
        Some(gw_addr),
        gw_noise,
        vec![PeerInfo {
            id: NodeId::Agreement(0),
            addr: Some(ag_addr),
            noise_public: ag_noise.public,
        }],
    ))
    .await
    .unwrap();
    let far = Arc::new(Far::default());
    let ag_net = Arc::new(ag_net);
    tokio::spawn(agreement_stand_in(ag_net.clone(), ag_in, far.clone()));
    let mut config = default_client_config(
        CLIENT,
        G,
        (0..2 * G + 1)
            .map(|e| exec_key(e).verifying_key())
            .collect(),
        1,
    );
    config.acceptance = Acceptance::Certified(verifier());
    // No retransmission during the test: every request is answered at once.
    config.retransmit_after = Duration::from_secs(600);
    let service = Arc::new(ReplicatedFileService::start(
        config,
        client_key(),
        Arc::new(gw_net),
        gw_in,
        vec![NodeId::Agreement(0)],
        Some(body_key()),
    ));
    Setup {
        service,
        far,
        agreement_net: ag_net,
    }
}

fn named(prefix: &str, i: usize) -> Vec<u8> {
    let mut name = prefix.as_bytes().to_vec();
    name.extend_from_slice(MARKER);
    name.extend_from_slice(format!("-{i}").as_bytes());
    name
}

fn secret_data(len: usize) -> Vec<u8> {
    MARKER.iter().copied().cycle().take(len).collect()
}

async fn create(service: &ReplicatedFileService, name: Vec<u8>) -> u64 {
    match service
        .call(FsOp::Create {
            dir: ROOT_ID,
            name,
            how: CreateHow::Guarded(SetAttr::default()),
        })
        .await
    {
        Ok(FsReply::Created { id, .. }) => id,
        other => panic!("create: {other:?}"),
    }
}

/// Operations go out sealed, come back certified and sealed, and open to the right
/// results; tampered copies are refused; the replies of one batch cost one signature
/// check; a certified body that does not open is `Io`, counted; signed replies from an
/// agreement node are not accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_operations_complete_on_certified_replies_only() {
    let Setup {
        service,
        far,
        agreement_net,
    } = setup().await;
    far.batch_size.store(1, Ordering::SeqCst);

    // One at a time: create, write, read back, look up.
    let id = create(&service, named("file", 0)).await;
    let data = secret_data(100_000);
    match service
        .call(FsOp::Write {
            id,
            offset: 0,
            data: data.clone(),
        })
        .await
    {
        Ok(FsReply::Write { count, .. }) => assert_eq!(count as usize, data.len()),
        other => panic!("write: {other:?}"),
    }
    match service
        .call(FsOp::Read {
            id,
            offset: 0,
            count: 200_000,
        })
        .await
    {
        Ok(FsReply::Read {
            data: back, eof, ..
        }) => {
            assert!(eof);
            assert_eq!(back, data);
        }
        other => panic!("read: {other:?}"),
    }
    match service
        .call(FsOp::Lookup {
            dir: ROOT_ID,
            name: named("file", 0),
        })
        .await
    {
        Ok(FsReply::Lookup { id: found, .. }) => assert_eq!(found, id),
        other => panic!("lookup: {other:?}"),
    }
    assert_eq!(
        service
            .call(FsOp::Create {
                dir: ROOT_ID,
                name: named("file", 0),
                how: CreateHow::Guarded(SetAttr::default()),
            })
            .await,
        Err(FsError::Exist)
    );
    let c = service.client_stats();
    assert_eq!(c.completed, 5);
    assert_eq!(c.bad_certificates, 5, "every tampered copy refused: {c:?}");
    assert_eq!(c.certificates_cached, 0, "one reply per batch so far");

    // 32 at once, ordered 8 per batch: 4 batches, so 4 signature checks and 28 replies
    // accepted on a verified root.
    far.batch_size.store(8, Ordering::SeqCst);
    let calls: Vec<_> = (0..32)
        .map(|i| {
            let s = service.clone();
            tokio::spawn(async move { create(&s, named("many", i)).await })
        })
        .collect();
    let mut ids = Vec::new();
    for c in calls {
        ids.push(c.await.unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 32);
    let c = service.client_stats();
    assert_eq!(c.completed, 37);
    assert_eq!(c.certificates_cached, 28, "{c:?}");
    assert_eq!(c.bad_certificates, 37);

    // A certified reply whose body does not open: Io, counted.
    far.batch_size.store(1, Ordering::SeqCst);
    far.unopenable_next.store(true, Ordering::SeqCst);
    assert_eq!(
        service.call(FsOp::GetAttr { id: ROOT_ID }).await,
        Err(FsError::Io)
    );
    assert_eq!(service.stats().unsealable_results, 1);

    // A signed reply relayed by an agreement node is not a kind the gateway takes from
    // it: dropped and counted before the core sees it.
    let forged = palisade_crypto::sign_batch_replies(
        &exec_key(0),
        vec![Reply {
            sequence: 1,
            client: CLIENT,
            request_id: 1,
            result: vec![],
            replica: 0,
        }],
    )
    .remove(0);
    agreement_net.send(NodeId::Client(CLIENT), &Envelope::Reply(forged));
    // The next operation's reply travels the same ordered link, after it.
    assert!(matches!(
        service.call(FsOp::GetAttr { id: ROOT_ID }).await,
        Ok(FsReply::Attr(_))
    ));
    let stats = service.stats();
    assert_eq!(stats.unexpected_messages, 1, "{stats:?}");
    assert_eq!(stats.completed, 39);
    assert_eq!(stats.undecodable_results, 0);

    // Nothing the agreement side saw carried plaintext; everything opened with the key.
    let requests = far.requests.load(Ordering::SeqCst);
    assert_eq!(requests, 39);
    assert_eq!(far.plaintext_seen.load(Ordering::SeqCst), 0);
    assert_eq!(far.sealed.load(Ordering::SeqCst), requests);
    service.shutdown().await;
    agreement_net.close().await;
}
