//! Two real endpoints on loopback: messages of every size arrive intact; a peer with the
//! wrong static key is refused; hostile bytes close the connection without a panic and
//! the endpoint keeps serving its real peers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use palisade_net::frame::{read_noise_frame, write_noise_frame, MAX_CHUNK_PLAINTEXT};
use palisade_net::handshake::initiate;
use palisade_net::{Envelope, Inbound, Network, NetworkConfig, NodeId, NoiseKeypair, PeerInfo};
use palisade_wire::agreement::{AgreementMessage, Batch, Request, Signature, Signed};
use palisade_wire::execution::ExecutionMessage;
use palisade_wire::fs::Timestamp;
use palisade_wire::MAX_MESSAGE_BYTES;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::Receiver;

const A: NodeId = NodeId::Agreement(0);
const B: NodeId = NodeId::Execution(1);

fn small(n: u64) -> Envelope {
    Envelope::Execution(ExecutionMessage::FetchOrders { from: n })
}

/// An envelope whose encoding is exactly `size` bytes (a batch body of big requests).
fn big(size: usize) -> Envelope {
    let make = |last: usize| {
        let mut requests = Vec::new();
        let mut left = size;
        while left > 0 {
            let n = left.min(1 << 20);
            left -= n;
            let n = if left == 0 { last.min(n) } else { n };
            requests.push(Signed {
                signer: 3,
                message: Request {
                    client: 3,
                    request_id: requests.len() as u64,
                    payload: (0..n)
                        .map(|i| (i * 31 % 251) as u8)
                        .collect::<Vec<u8>>()
                        .into(),
                },
                signature: Signature([9; 64]),
            });
        }
        Envelope::Agreement(AgreementMessage::BatchBody {
            sequence: 5,
            batch: Batch {
                timestamp: Timestamp {
                    seconds: 1,
                    nanos: 2,
                },
                requests,
            },
        })
    };
    // Shrink the last payload by the encoding overhead, so the total is `size`.
    let last_full = if size.is_multiple_of(1 << 20) {
        1 << 20
    } else {
        size % (1 << 20)
    };
    let over = postcard_len(&make(last_full)) - size;
    let mut e = make(last_full - over);
    let mut k = last_full - over;
    while postcard_len(&e) < size {
        k += 1;
        e = make(k);
    }
    e
}

fn postcard_len(e: &Envelope) -> usize {
    // encode() refuses more than the maximum; count the bytes without that limit.
    let Envelope::Agreement(AgreementMessage::BatchBody { batch, .. }) = e else {
        unreachable!()
    };
    let mut sizes = 0usize;
    for r in &batch.requests {
        sizes += palisade_wire::encode(r).unwrap().len();
    }
    sizes + 1 + 1 + 1 + 1 + 1 + varint_len(batch.requests.len())
}

fn varint_len(mut n: usize) -> usize {
    let mut l = 1;
    while n >= 128 {
        n >>= 7;
        l += 1;
    }
    l
}

struct Pair {
    a: Network,
    a_rx: Receiver<Inbound>,
    b: Network,
    b_rx: Receiver<Inbound>,
    a_key: NoiseKeypair,
    b_key: NoiseKeypair,
}

/// A free loopback address below Linux's ephemeral port range (32768–60999) and above
/// the blocks `palisade up` probes (20000–31999). A port probed with port 0 came from the
/// ephemeral range, where any outgoing connection of a test running beside this one
/// could take it between the probe and the bind (CI saw "Address already in use").
fn free_addr() -> SocketAddr {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let start = (std::process::id() % 64) as u16 * 12;
    for _ in 0..768 {
        let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 32_000 + (start + i) % 768;
        if let Ok(probe) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return probe.local_addr().unwrap();
        }
    }
    panic!("no free loopback port in 32000..32768");
}

async fn pair() -> Pair {
    let a_key = NoiseKeypair::generate().unwrap();
    let b_key = NoiseKeypair::generate().unwrap();
    let (a_addr, b_addr) = (free_addr(), free_addr());
    let peer_a = PeerInfo {
        id: A,
        addr: Some(a_addr),
        noise_public: a_key.public,
    };
    let peer_b = PeerInfo {
        id: B,
        addr: Some(b_addr),
        noise_public: b_key.public,
    };
    let (a, a_rx) = Network::start(NetworkConfig::new(
        A,
        Some(a_addr),
        a_key.clone(),
        vec![peer_b.clone()],
    ))
    .await
    .unwrap();
    let (b, b_rx) = Network::start(NetworkConfig::new(
        B,
        Some(b_addr),
        b_key.clone(),
        vec![peer_a],
    ))
    .await
    .unwrap();
    Pair {
        a,
        a_rx,
        b,
        b_rx,
        a_key,
        b_key,
    }
}

async fn recv(rx: &mut Receiver<Inbound>) -> Inbound {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a message in time")
        .expect("channel open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_and_four_mib_messages_arrive_intact_both_ways() {
    let mut p = pair().await;
    for i in 0..100 {
        assert!(p.a.send(B, &small(i)));
    }
    for i in 0..100 {
        let m = recv(&mut p.b_rx).await;
        assert_eq!(m.from, A);
        assert_eq!(m.envelope, small(i), "in order, intact");
    }
    let huge = big(MAX_MESSAGE_BYTES);
    let len = palisade_wire::encode(&huge).unwrap().len();
    assert_eq!(len, MAX_MESSAGE_BYTES);
    assert!(p.b.send(A, &huge));
    assert!(p.b.send(A, &small(7)));
    let m = recv(&mut p.a_rx).await;
    assert_eq!(m.from, B);
    assert_eq!(m.envelope, huge);
    assert_eq!(recv(&mut p.a_rx).await.envelope, small(7));
    // One chunk exactly, and one byte over a chunk.
    for size in [
        MAX_CHUNK_PLAINTEXT - 4,
        MAX_CHUNK_PLAINTEXT - 3,
        3 * MAX_CHUNK_PLAINTEXT,
    ] {
        let e = big(size);
        p.a.send(B, &e);
        assert_eq!(recv(&mut p.b_rx).await.envelope, e);
    }
    // Too large to be legal: refused at the sender, nothing is sent.
    let sent = p.a.stats().sent;
    assert!(!p.a.send(B, &big(MAX_MESSAGE_BYTES + 4096)));
    assert_eq!(p.a.stats().sent, sent);
    // Unknown destination: dropped and counted.
    assert!(!p.a.send(NodeId::Client(9), &small(1)));
    assert_eq!(p.a.stats().dropped_unknown_peer, 1);
    let _ = (&p.a_key, &p.b_key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_the_wrong_static_key_is_refused() {
    let mut p = pair().await;
    let b_addr = p.b.local_addr().unwrap();
    // An impostor claims to be A but holds another key: B does not know its key.
    let impostor_key = NoiseKeypair::generate().unwrap();
    let (impostor, _rx) = Network::start(NetworkConfig::new(
        A,
        None,
        impostor_key,
        vec![PeerInfo {
            id: B,
            addr: Some(b_addr),
            noise_public: p.b_key.public,
        }],
    ))
    .await
    .unwrap();
    impostor.send(B, &small(666));
    wait_for(|| p.b.stats().unknown_peers >= 1).await;
    // A dialer that expects another key for B (a man in the middle's view): the handshake
    // fails at the dialer, nothing is delivered.
    let (confused, _rx2) = Network::start(NetworkConfig::new(
        A,
        None,
        p.a_key.clone(),
        vec![PeerInfo {
            id: B,
            addr: Some(b_addr),
            noise_public: NoiseKeypair::generate().unwrap().public,
        }],
    ))
    .await
    .unwrap();
    confused.send(B, &small(667));
    wait_for(|| confused.stats().connect_failures >= 1).await;
    // The real A still gets through, and only its message arrives.
    p.a.send(B, &small(1));
    let m = recv(&mut p.b_rx).await;
    assert_eq!((m.from, m.envelope), (A, small(1)));
    assert!(p.b_rx.try_recv().is_err());
    assert_eq!(p.b.stats().received, 1);
}

async fn wait_for<F: Fn() -> bool>(cond: F) {
    for _ in 0..3000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition never held");
}

/// Reads until the peer closes; true if it closed (EOF or reset).
async fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_close_the_connection_without_a_panic() {
    let mut p = pair().await;
    let b_addr = p.b.local_addr().unwrap();

    // 1. Garbage instead of a handshake.
    let mut s = TcpStream::connect(b_addr).await.unwrap();
    s.write_all(&[0x00, 0x30]).await.unwrap();
    s.write_all(&[0xAB; 0x30]).await.unwrap();
    assert!(closed_by_peer(&mut s).await);
    wait_for(|| p.b.stats().handshake_failures >= 1).await;

    // 2. A zero-length frame.
    let mut s = TcpStream::connect(b_addr).await.unwrap();
    s.write_all(&[0, 0]).await.unwrap();
    assert!(closed_by_peer(&mut s).await);
    wait_for(|| p.b.stats().handshake_failures >= 2).await;

    // 3. Authenticated, then a message announcing more than the legal maximum.
    let mut s = TcpStream::connect(b_addr).await.unwrap();
    let mut t = initiate(&mut s, &p.a_key, &p.b_key.public).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let mut first = ((MAX_MESSAGE_BYTES + 1) as u32).to_be_bytes().to_vec();
    first.extend_from_slice(&[1; 100]);
    let n = t.write_message(&first, &mut buf).unwrap();
    write_noise_frame(&mut s, &buf[..n]).await.unwrap();
    assert!(closed_by_peer(&mut s).await);
    wait_for(|| p.b.stats().oversized >= 1).await;

    // 4. Authenticated, then bytes that do not decrypt.
    let mut s = TcpStream::connect(b_addr).await.unwrap();
    let _t = initiate(&mut s, &p.a_key, &p.b_key.public).await.unwrap();
    write_noise_frame(&mut s, &[0x55; 200]).await.unwrap();
    assert!(closed_by_peer(&mut s).await);
    wait_for(|| p.b.stats().malformed_frames >= 1).await;

    // 5. Authenticated, well framed, but not an Envelope.
    let mut s = TcpStream::connect(b_addr).await.unwrap();
    let mut t = initiate(&mut s, &p.a_key, &p.b_key.public).await.unwrap();
    let mut body = 3u32.to_be_bytes().to_vec();
    body.extend_from_slice(&[0xFF, 0xFF, 0xFF]);
    let n = t.write_message(&body, &mut buf).unwrap();
    write_noise_frame(&mut s, &buf[..n]).await.unwrap();
    assert!(closed_by_peer(&mut s).await);
    wait_for(|| p.b.stats().decode_errors >= 1).await;

    // 6. A chunk that runs past the announced length; 7. a later chunk with no
    // plaintext at all (a bare tag).
    for (n, second) in [(2, &[0u8; 10_000][..]), (3, &[][..])] {
        let mut s = TcpStream::connect(b_addr).await.unwrap();
        let mut t = initiate(&mut s, &p.a_key, &p.b_key.public).await.unwrap();
        let mut body = 70_000u32.to_be_bytes().to_vec();
        body.extend_from_slice(&[0; 65_000]);
        for chunk in [&body[..], second] {
            let len = t.write_message(chunk, &mut buf).unwrap();
            write_noise_frame(&mut s, &buf[..len]).await.unwrap();
        }
        assert!(closed_by_peer(&mut s).await);
        wait_for(|| p.b.stats().malformed_frames >= n).await;
    }

    // 8. Authenticated, then a zero-length frame (no Noise message is empty).
    let mut s = TcpStream::connect(b_addr).await.unwrap();
    let _t = initiate(&mut s, &p.a_key, &p.b_key.public).await.unwrap();
    s.write_all(&[0, 0]).await.unwrap();
    assert!(closed_by_peer(&mut s).await);
    wait_for(|| p.b.stats().malformed_frames >= 4).await;

    // A handshake reply is never sent to garbage; the real peer still gets through.
    let _ = read_noise_frame::<TcpStream>;
    p.a.send(B, &small(42));
    let m = recv(&mut p.b_rx).await;
    assert_eq!((m.from, m.envelope), (A, small(42)));
    assert_eq!(p.b.stats().received, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_is_redialled() {
    let mut p = pair().await;
    p.a.send(B, &small(1));
    assert_eq!(recv(&mut p.b_rx).await.envelope, small(1));
    let b_addr = p.b.local_addr().unwrap();
    p.b.shutdown();
    drop(p.b);
    drop(p.b_rx);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (b, mut b_rx) = Network::start(NetworkConfig::new(
        B,
        Some(b_addr),
        p.b_key.clone(),
        vec![PeerInfo {
            id: A,
            addr: None,
            noise_public: p.a_key.public,
        }],
    ))
    .await
    .unwrap();
    // Sends may be lost while the link is down; keep sending until one arrives.
    let mut i = 100;
    loop {
        p.a.send(B, &small(i));
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), b_rx.recv()).await {
            assert_eq!(m.from, A);
            break;
        }
        i += 1;
        assert!(i < 400, "never reconnected");
    }
    assert!(p.a.stats().connects >= 2);
    drop(b);
}

/// A peer holds at most one incoming link: a newer authenticated connection from the
/// same peer closes the older one (bounds what one peer can make us buffer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_link_from_a_peer_supersedes_the_older_one() {
    let p = pair().await;
    let b_addr = p.b.local_addr().unwrap();
    let mut first = TcpStream::connect(b_addr).await.unwrap();
    let _t1 = initiate(&mut first, &p.a_key, &p.b_key.public)
        .await
        .unwrap();
    wait_for(|| p.b.stats().accepted >= 1).await;
    let mut second = TcpStream::connect(b_addr).await.unwrap();
    let _t2 = initiate(&mut second, &p.a_key, &p.b_key.public)
        .await
        .unwrap();
    assert!(closed_by_peer(&mut first).await, "the older link is closed");
    // The newer one stays open.
    let mut buf = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf))
            .await
            .is_err(),
        "the newer link must stay open"
    );
}
