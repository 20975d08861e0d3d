//! [`Network`]: one node's set of authenticated links.
//!
//! Sending: every peer with an address has one outgoing connection, owned by a dialer
//! task that connects when there is something to send, redials with exponential back-off
//! after a failure, and drains a bounded queue (count and bytes). A message for a full
//! queue is dropped and counted: the protocols above retransmit (PBFT status messages,
//! client retransmission, FetchOrders), while an unbounded queue would let one slow or
//! dead peer exhaust our memory.
//!
//! Receiving: the listener authenticates each incoming connection (Noise IK, the dialer's
//! static key must be a configured peer's), then a reader task decrypts, reassembles and
//! decodes messages into one bounded inbound channel. A full channel makes the reader
//! wait, which pushes back on the peer through TCP flow control.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_wire::envelope::Envelope;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::error::NetError;
use crate::frame::{MessageReader, MessageWriter};
use crate::handshake;
use crate::peer::{NodeId, NoiseKeypair, PeerInfo};
use crate::stats::{bump, NetStats, NetStatsSnapshot};

/// How a network is set up.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    pub me: NodeId,
    /// Where to accept connections; `None`: this node never receives unsolicited
    /// connections. Port 0 picks a free port ([`Network::local_addr`] tells which).
    pub listen: Option<SocketAddr>,
    pub keypair: NoiseKeypair,
    pub peers: Vec<PeerInfo>,
    /// Most messages queued for one peer.
    pub queue_messages: usize,
    /// Most bytes queued for one peer.
    pub queue_bytes: usize,
    /// Capacity of the inbound channel (messages).
    pub inbound_capacity: usize,
    /// How long an incoming connection may take to complete its handshake.
    pub handshake_timeout: Duration,
    /// Most incoming connections at once (bounds tasks and buffers a flood can cost).
    pub max_incoming: usize,
    /// First and largest redial delay.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl NetworkConfig {
    /// Defaults: 4096 messages or 256 MiB per peer queue, 8192 inbound, 5 s handshake
    /// timeout, 1024 incoming connections, redial after 20 ms doubling up to 1 s.
    pub fn new(
        me: NodeId,
        listen: Option<SocketAddr>,
        keypair: NoiseKeypair,
        peers: Vec<PeerInfo>,
    ) -> Self {
        Self {
            me,
            listen,
            keypair,
            peers,
            queue_messages: 4096,
            queue_bytes: 256 << 20,
            inbound_capacity: 8192,
            handshake_timeout: Duration::from_secs(5),
            max_incoming: 1024,
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_secs(1),
        }
    }
}

/// A message received on an authenticated link.
#[derive(Debug)]
pub struct Inbound {
    /// Who sent it, as the link's static key proved.
    pub from: NodeId,
    pub envelope: Envelope,
}

struct PeerQueue {
    tx: mpsc::Sender<Arc<Vec<u8>>>,
    bytes: Arc<AtomicUsize>,
}

/// A running set of links. Dropping it stops every task and closes every connection.
pub struct Network {
    me: NodeId,
    local_addr: Option<SocketAddr>,
    queues: BTreeMap<NodeId, PeerQueue>,
    queue_bytes: usize,
    stats: Arc<NetStats>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

impl Network {
    /// Binds the listener (if any), starts one dialer per addressed peer, and returns the
    /// network and the receiving end of its inbound channel.
    pub async fn start(
        config: NetworkConfig,
    ) -> Result<(Network, mpsc::Receiver<Inbound>), NetError> {
        let stats = Arc::new(NetStats::default());
        let (stop, stop_rx) = watch::channel(false);
        let (in_tx, in_rx) = mpsc::channel(config.inbound_capacity.max(1));
        let keypair = Arc::new(config.keypair.clone());
        let mut tasks = Vec::new();
        let mut local_addr = None;
        if let Some(addr) = config.listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| NetError::Bind { addr, source })?;
            local_addr = Some(listener.local_addr()?);
            let known: HashMap<[u8; 32], NodeId> = config
                .peers
                .iter()
                .map(|p| (p.noise_public, p.id))
                .collect();
            let acceptor = Acceptor {
                me: config.me,
                keypair: keypair.clone(),
                known: Arc::new(known),
                stats: stats.clone(),
                inbound: in_tx.clone(),
                stop: stop_rx.clone(),
                handshake_timeout: config.handshake_timeout,
                slots: Arc::new(Semaphore::new(config.max_incoming.max(1))),
                current: Arc::new(Mutex::new(HashMap::new())),
            };
            tasks.push(tokio::spawn(acceptor.run(listener)));
            info!(node = %config.me, addr = ?local_addr, "listening");
        }
        let mut queues = BTreeMap::new();
        for peer in &config.peers {
            let Some(addr) = peer.addr else { continue };
            if peer.id == config.me {
                continue;
            }
            let (tx, rx) = mpsc::channel(config.queue_messages.max(1));
            let bytes = Arc::new(AtomicUsize::new(0));
            let dialer = Dialer {
                me: config.me,
                peer: peer.id,
                addr,
                remote_key: peer.noise_public,
                keypair: keypair.clone(),
                stats: stats.clone(),
                bytes: bytes.clone(),
                backoff_min: config.backoff_min,
                backoff_max: config.backoff_max,
            };
            tasks.push(tokio::spawn(dialer.run(rx)));
            queues.insert(peer.id, PeerQueue { tx, bytes });
        }
        Ok((
            Network {
                me: config.me,
                local_addr,
                queues,
                queue_bytes: config.queue_bytes,
                stats,
                tasks: Mutex::new(tasks),
                stop,
            },
            in_rx,
        ))
    }

    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The address the listener bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    pub fn stats(&self) -> NetStatsSnapshot {
        self.stats.snapshot()
    }

    /// Queues `envelope` for `to`. Returns false (and counts why) if it was dropped: no
    /// such addressed peer, the queue is full, or it does not encode.
    pub fn send(&self, to: NodeId, envelope: &Envelope) -> bool {
        match palisade_wire::encode(envelope) {
            Ok(bytes) => self.send_encoded(to, Arc::new(bytes)),
            Err(e) => {
                warn!(node = %self.me, %to, error = %e, "message does not encode; dropped");
                false
            }
        }
    }

    /// Queues one `envelope` for each of `to`, encoding it once.
    pub fn send_many<I: IntoIterator<Item = NodeId>>(&self, to: I, envelope: &Envelope) {
        match palisade_wire::encode(envelope) {
            Ok(bytes) => {
                let bytes = Arc::new(bytes);
                for peer in to {
                    self.send_encoded(peer, bytes.clone());
                }
            }
            Err(e) => warn!(node = %self.me, error = %e, "message does not encode; dropped"),
        }
    }

    fn send_encoded(&self, to: NodeId, bytes: Arc<Vec<u8>>) -> bool {
        let Some(queue) = self.queues.get(&to) else {
            bump(&self.stats.dropped_unknown_peer);
            debug!(node = %self.me, %to, "no address for peer; dropped");
            return false;
        };
        let len = bytes.len();
        let before = queue.bytes.fetch_add(len, Ordering::Relaxed);
        if before.saturating_add(len) > self.queue_bytes {
            queue.bytes.fetch_sub(len, Ordering::Relaxed);
            bump(&self.stats.dropped_queue_full);
            debug!(node = %self.me, %to, "send queue full (bytes); dropped");
            return false;
        }
        if queue.tx.try_send(bytes).is_err() {
            queue.bytes.fetch_sub(len, Ordering::Relaxed);
            bump(&self.stats.dropped_queue_full);
            debug!(node = %self.me, %to, "send queue full; dropped");
            return false;
        }
        true
    }

    /// Stops every task and closes every connection (also done on drop). The tasks end
    /// asynchronously; [`Network::close`] waits for them (and so for the listening
    /// socket to be released).
    pub fn shutdown(&self) {
        for t in self.take_tasks() {
            t.abort();
        }
    }

    /// [`Network::shutdown`], then waits until every task has ended: when this returns
    /// the listen address is free again (a restarted node can bind it).
    pub async fn close(&self) {
        let tasks = self.take_tasks();
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    fn take_tasks(&self) -> Vec<JoinHandle<()>> {
        let _ = self.stop.send(true);
        match self.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Dialer {
    me: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    remote_key: [u8; 32],
    keypair: Arc<NoiseKeypair>,
    stats: Arc<NetStats>,
    bytes: Arc<AtomicUsize>,
    backoff_min: Duration,
    backoff_max: Duration,
}

impl Dialer {
    async fn run(self, mut rx: mpsc::Receiver<Arc<Vec<u8>>>) {
        let mut backoff = self.backoff_min;
        // Connect only once there is something to send; that message waits (it is not
        // dropped) while we redial, later ones wait in the bounded queue.
        let mut held: Option<Arc<Vec<u8>>> = None;
        loop {
            let first = match held.take() {
                Some(m) => m,
                None => match rx.recv().await {
                    Some(m) => {
                        self.bytes.fetch_sub(m.len(), Ordering::Relaxed);
                        m
                    }
                    None => return,
                },
            };
            let (stream, mut transport) = match self.connect().await {
                Ok(c) => c,
                Err(e) => {
                    bump(&self.stats.connect_failures);
                    debug!(node = %self.me, peer = %self.peer, addr = %self.addr, error = %e,
                        "connect failed; retrying after {backoff:?}");
                    held = Some(first);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.backoff_max);
                    continue;
                }
            };
            backoff = self.backoff_min;
            bump(&self.stats.connects);
            debug!(node = %self.me, peer = %self.peer, "connected");
            let mut w = stream;
            let mut out = MessageWriter::new();
            let mut next = Some(first);
            let result: Result<(), NetError> = async {
                loop {
                    let msg = match next.take() {
                        Some(m) => m,
                        None => match rx.try_recv() {
                            Ok(m) => {
                                self.bytes.fetch_sub(m.len(), Ordering::Relaxed);
                                m
                            }
                            Err(_) => {
                                // Queue empty: push what we have, then wait.
                                out.flush(&mut w).await?;
                                match rx.recv().await {
                                    Some(m) => {
                                        self.bytes.fetch_sub(m.len(), Ordering::Relaxed);
                                        m
                                    }
                                    None => return Ok(()),
                                }
                            }
                        },
                    };
                    out.push(&mut transport, &msg)?;
                    if out.pending() >= MessageWriter::FLUSH_AT {
                        out.flush(&mut w).await?;
                    }
                    bump(&self.stats.sent);
                }
            }
            .await;
            match result {
                Ok(()) => return,
                Err(e) => {
                    debug!(node = %self.me, peer = %self.peer, error = %e, "link lost; redialling");
                }
            }
        }
    }

    async fn connect(&self) -> Result<(TcpStream, snow::TransportState), NetError> {
        let mut stream =
            tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(self.addr))
                .await
                .map_err(|_| NetError::HandshakeTimeout)??;
        stream.set_nodelay(true)?;
        let transport = tokio::time::timeout(
            Duration::from_secs(5),
            handshake::initiate(&mut stream, &self.keypair, &self.remote_key),
        )
        .await
        .map_err(|_| NetError::HandshakeTimeout)??;
        Ok((stream, transport))
    }
}

struct Acceptor {
    me: NodeId,
    keypair: Arc<NoiseKeypair>,
    known: Arc<HashMap<[u8; 32], NodeId>>,
    stats: Arc<NetStats>,
    inbound: mpsc::Sender<Inbound>,
    stop: watch::Receiver<bool>,
    handshake_timeout: Duration,
    slots: Arc<Semaphore>,
    /// The live incoming connection of each peer. A peer dials one link to us; a new one
    /// (it restarted, or its old link broke unnoticed) supersedes the old, so a peer can
    /// never hold more than one connection's buffers here.
    current: Arc<Mutex<HashMap<NodeId, Arc<tokio::sync::Notify>>>>,
}

impl Acceptor {
    async fn run(self, listener: TcpListener) {
        let this = Arc::new(self);
        loop {
            let permit = match this.slots.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => return,
            };
            let (stream, remote) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    warn!(node = %this.me, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let this = this.clone();
            tokio::spawn(async move {
                this.serve(stream, remote).await;
                drop(permit);
            });
        }
    }

    async fn serve(&self, mut stream: TcpStream, remote: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let known = self.known.clone();
        let hs = tokio::time::timeout(
            self.handshake_timeout,
            handshake::respond(&mut stream, &self.keypair, |key| known.get(key).copied()),
        )
        .await;
        let (mut transport, from) = match hs {
            Ok(Ok(ok)) => ok,
            Ok(Err(NetError::UnknownPeer)) => {
                bump(&self.stats.unknown_peers);
                warn!(node = %self.me, %remote, "refused a connection from an unknown static key");
                return;
            }
            Ok(Err(e)) => {
                bump(&self.stats.handshake_failures);
                warn!(node = %self.me, %remote, error = %e, "handshake failed; connection closed");
                return;
            }
            Err(_) => {
                bump(&self.stats.handshake_failures);
                warn!(node = %self.me, %remote, "handshake timed out; connection closed");
                return;
            }
        };
        bump(&self.stats.accepted);
        debug!(node = %self.me, peer = %from, %remote, "accepted");
        let superseded = Arc::new(tokio::sync::Notify::new());
        let old = match self.current.lock() {
            Ok(mut m) => m.insert(from, superseded.clone()),
            Err(p) => p.into_inner().insert(from, superseded.clone()),
        };
        if let Some(old) = old {
            old.notify_one();
        }
        let mut r = MessageReader::new(stream);
        let mut stop = self.stop.clone();
        loop {
            let next = tokio::select! {
                m = r.read_message(&mut transport) => m,
                _ = stop.changed() => return,
                _ = superseded.notified() => {
                    debug!(node = %self.me, peer = %from, "link superseded by a newer one");
                    return;
                }
            };
            let bytes = match next {
                Ok(Some(b)) => b,
                Ok(None) => {
                    debug!(node = %self.me, peer = %from, "peer closed the link");
                    return;
                }
                Err(NetError::Io(e)) => {
                    debug!(node = %self.me, peer = %from, error = %e, "link lost");
                    return;
                }
                Err(e @ NetError::Oversized(_)) => {
                    bump(&self.stats.oversized);
                    warn!(node = %self.me, peer = %from, error = %e, "oversized message; connection closed");
                    return;
                }
                Err(e) => {
                    bump(&self.stats.malformed_frames);
                    warn!(node = %self.me, peer = %from, error = %e, "malformed frame; connection closed");
                    return;
                }
            };
            let envelope = match palisade_wire::codec::decode_shared::<Envelope>(
                &bytes::Bytes::from(bytes),
            ) {
                Ok(e) => e,
                Err(e) => {
                    bump(&self.stats.decode_errors);
                    warn!(node = %self.me, peer = %from, error = %e, "undecodable message; connection closed");
                    return;
                }
            };
            bump(&self.stats.received);
            if self.inbound.send(Inbound { from, envelope }).await.is_err() {
                return;
            }
        }
    }
}
