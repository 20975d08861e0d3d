//! The firewall's fences at run time (SOSP 2003 §4; DESIGN §2: execution replicas have no
//! path out but through the filters). A node that holds an execution replica's keys — a
//! compromised replica — tries to talk past the firewall:
//!
//! - to an agreement node and to a top-row filter directly: both refuse the handshake
//!   (its static key is no peer of theirs), so nothing it sends is ever received;
//! - to a bottom-row filter, its legitimate neighbour: the link is accepted, but what is
//!   not a share, a body or a stable share for an outstanding sequence is dropped by the
//!   filter core, counted by reason, and nothing goes up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use palisade_net::{Envelope, Network, NetworkConfig, NodeId, PeerInfo};
use palisade_node::config::file_name;
use palisade_node::{keygen, KeygenOptions, Layout, NodeConfig, NodeHandle, Probe, Role};
use palisade_wire::firewall::{FirewallMessage, ReplyBody, ReplyEntry};

/// `n` consecutive free loopback ports.
fn free_ports(n: u16) -> u16 {
    let start = 40_000 + (std::process::id() % 300) as u16 * 50;
    for base in (start..60_000).step_by(20) {
        if (0..n).all(|i| TcpListener::bind((Ipv4Addr::LOCALHOST, base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no free ports");
}

fn load(dir: &Path, role: Role, id: u64) -> NodeConfig {
    NodeConfig::load(&dir.join(file_name(role, id))).unwrap()
}

/// Waits (bounded) until `done` holds; false if it never did.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

/// A network with execution replica 0's identity and keys whose only peer is `target`.
async fn impostor(exec: &NodeConfig, target: &NodeConfig, id: NodeId) -> Network {
    let peer = PeerInfo {
        id,
        addr: Some(target.listen),
        noise_public: target.noise.public,
    };
    let config = NetworkConfig::new(exec.node_id(), None, exec.noise.clone(), vec![peer]);
    Network::start(config).await.unwrap().0
}

fn body(sequence: u64) -> Envelope {
    Envelope::Firewall(FirewallMessage::ReplyBody(ReplyBody {
        sequence,
        replica: 0,
        entry: ReplyEntry {
            client: 0,
            request_id: 1,
            body: b"file contents an attacker wants out".to_vec(),
        },
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_replica_reaches_nobody_but_the_bottom_filters() {
    let dir = tempfile::tempdir().unwrap();
    keygen(&KeygenOptions {
        f: 1,
        g: 1,
        h: Some(1),
        clients: 1,
        out: dir.path().to_path_buf(),
        base_port: free_ports(12),
        nfs_port: 11111,
        layout: Layout::Loopback,
        checkpoint_interval: 64,
    })
    .unwrap();
    let exec = load(dir.path(), Role::Execution, 0);
    let agreement_cfg = load(dir.path(), Role::Agreement, 0);
    let top_cfg = load(dir.path(), Role::Filter, 0);
    let bottom_cfg = load(dir.path(), Role::Filter, 2);
    let agreement: NodeHandle = palisade_node::agreement_node::start(&agreement_cfg)
        .await
        .unwrap();
    let top = palisade_node::filter_node::start(&top_cfg).await.unwrap();
    let bottom = palisade_node::filter_node::start(&bottom_cfg)
        .await
        .unwrap();

    // Straight to an agreement node, and to a top filter: refused at the handshake.
    for (target, id, handle) in [
        (&agreement_cfg, NodeId::Agreement(0), &agreement),
        (&top_cfg, NodeId::Filter(0), &top),
    ] {
        let net = impostor(&exec, target, id).await;
        let done = eventually(|| {
            net.send(id, &body(1));
            handle.net_stats().unknown_peers >= 2
        })
        .await;
        assert!(done, "{id} did not refuse: {:?}", handle.net_stats());
        assert_eq!(handle.net_stats().received, 0, "{id} received something");
        net.close().await;
    }
    assert_eq!(Probe::get(&agreement.probe().refused), 0);

    // To a bottom filter, its neighbour: accepted on the link, dropped by the core.
    let net = impostor(&exec, &bottom_cfg, NodeId::Filter(2)).await;
    net.send(NodeId::Filter(2), &body(5));
    let unsolicited = Envelope::Firewall(FirewallMessage::Stable(
        palisade_wire::firewall::StableCertificate {
            sequence: 64,
            signature: palisade_wire::firewall::ThresholdSignature(vec![7; 96]),
        },
    ));
    net.send(NodeId::Filter(2), &unsolicited);
    let done = eventually(|| {
        bottom
            .filter_stats()
            .is_some_and(|s| s.total_dropped() >= 2)
    })
    .await;
    let stats = bottom.filter_stats().unwrap();
    assert!(done, "{stats:?}");
    assert_eq!(stats.dropped("not outstanding"), 1, "{stats:?}");
    assert_eq!(stats.dropped("unexpected from below"), 1, "{stats:?}");
    assert_eq!(stats.replies_forwarded + stats.stables_forwarded, 0);
    // Nothing went up: the top filter never heard from the bottom one.
    assert_eq!(top.net_stats().received, 0);
    assert_eq!(Probe::get(&bottom.probe().forwarded_up), 0);
    net.close().await;
    agreement.stop().await;
    top.stop().await;
    bottom.stop().await;
}
