//! The firewall configuration's keys and configs (`keygen` with `h`): who holds which key,
//! what a config file of each role may and may not contain, and which links each node
//! has (the topology the threat model needs: SOSP 2003 §4, DESIGN §2).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use palisade_net::NodeId;
use palisade_node::config::{file_name, ConfigFile};
use palisade_node::{keygen, KeygenOptions, Layout, NodeConfig, NodeError, Role};

fn generate(dir: &Path, h: Option<usize>) -> Vec<std::path::PathBuf> {
    keygen(&KeygenOptions {
        f: 1,
        g: 1,
        h,
        clients: 1,
        out: dir.to_path_buf(),
        base_port: 7100,
        nfs_port: 11111,
        layout: Layout::Loopback,
        checkpoint_interval: 64,
    })
    .unwrap()
}

fn parsed(path: &Path) -> ConfigFile {
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn field_error(path: &Path, file: ConfigFile) -> (String, String) {
    match NodeConfig::from_file(path, file) {
        Err(NodeError::Config {
            file,
            field,
            problem,
        }) => {
            assert_eq!(file, path);
            (field, problem)
        }
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("must be refused"),
    }
}

#[test]
fn firewall_configs_load_and_only_gateways_and_execution_hold_the_body_key() {
    let dir = tempfile::tempdir().unwrap();
    let files = generate(dir.path(), Some(1));
    assert_eq!(files.len(), 4 + 3 + 1 + 4);
    let mut gateway_key = None;
    let mut execution_keys = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let c = NodeConfig::load(path).unwrap();
        assert_eq!(c.h, Some(1));
        assert_eq!(c.filters.len(), 4);
        assert!(c.threshold.is_some(), "{}", path.display());
        match c.role {
            Role::Agreement | Role::Filter => {
                // The confidentiality promise: routing nodes cannot open a body.
                assert!(!text.contains("body_key"), "{}", path.display());
                assert!(c.body_key.is_none());
                assert!(!text.contains("threshold_share"), "{}", path.display());
            }
            Role::Gateway => {
                assert!(c.threshold_signer.is_none());
                gateway_key = Some(c.body_key.unwrap().to_bytes());
            }
            Role::Execution => {
                let signer = c.threshold_signer.unwrap();
                assert_eq!(u64::from(signer.index()), c.id);
                execution_keys.push(c.body_key.unwrap().to_bytes());
            }
        }
    }
    // One body key, shared by the two ends of the sealed channel.
    assert_eq!(execution_keys.len(), 3);
    assert!(execution_keys.iter().all(|k| Some(*k) == gateway_key));
    // The dealt key set works: g+1 = 2 execution shares combine into a signature that
    // the filters' and the gateway's key set verifies.
    let load = |role, id| NodeConfig::load(&dir.path().join(file_name(role, id))).unwrap();
    let filter = load(Role::Filter, 2);
    let verifier = filter.threshold.unwrap();
    let message = palisade_wire::firewall::stable_message(64);
    let shares: Vec<_> = [0u64, 2]
        .iter()
        .map(|&i| {
            let s = load(Role::Execution, i).threshold_signer.unwrap();
            (s.index(), s.sign_share(&message))
        })
        .collect();
    let signature = verifier.combine(&shares).unwrap();
    assert!(verifier.verify(&message, &signature));
    // Separate: a body key for the two ends, no threshold keys, no filters.
    let sep = tempfile::tempdir().unwrap();
    for path in generate(sep.path(), None) {
        let c = NodeConfig::load(&path).unwrap();
        assert!(c.threshold.is_none() && c.filters.is_empty());
        let holds = matches!(c.role, Role::Gateway | Role::Execution);
        assert_eq!(c.body_key.is_some(), holds, "{}", path.display());
    }
}

#[test]
fn firewall_config_mistakes_are_refused_and_named() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), Some(1));
    let path_of = |role, id| dir.path().join(file_name(role, id));
    let gateway = parsed(&path_of(Role::Gateway, 0));
    let body_key = gateway.body_key.clone().unwrap();

    // A filter or an agreement node given the body key.
    for role in [Role::Filter, Role::Agreement] {
        let path = path_of(role, 1);
        let mut f = parsed(&path);
        f.body_key = Some(body_key.clone());
        let (field, problem) = field_error(&path, f);
        assert_eq!(field, "body_key");
        assert!(problem.contains("must never hold"), "{problem}");
    }

    // Missing threshold key set (a filter, the gateway).
    for (role, id) in [(Role::Filter, 0), (Role::Gateway, 0)] {
        let path = path_of(role, id);
        let mut f = parsed(&path);
        f.threshold_public = None;
        let (field, problem) = field_error(&path, f);
        assert_eq!(field, "threshold_public");
        assert!(problem.contains("missing"), "{problem}");
    }

    // An execution replica without its share, or with another replica's.
    let path = path_of(Role::Execution, 1);
    let exec = parsed(&path);
    let mut f = exec.clone();
    f.threshold_share = None;
    assert_eq!(field_error(&path, f).0, "threshold_share");
    let mut f = exec.clone();
    f.threshold_share = parsed(&path_of(Role::Execution, 0)).threshold_share;
    assert_eq!(field_error(&path, f).0, "threshold_share");
    // ... or without the body key.
    let mut f = exec.clone();
    f.body_key = None;
    assert_eq!(field_error(&path, f).0, "body_key");

    // A share where none belongs.
    let path = path_of(Role::Gateway, 0);
    let mut f = gateway.clone();
    f.threshold_share = exec.threshold_share.clone();
    assert_eq!(field_error(&path, f).0, "threshold_share");

    // A key set of another size (g = 2 dealt, g = 1 configured), and garbage.
    let other = tempfile::tempdir().unwrap();
    keygen(&KeygenOptions {
        f: 1,
        g: 2,
        h: Some(1),
        clients: 1,
        out: other.path().to_path_buf(),
        base_port: 7200,
        nfs_port: 11111,
        layout: Layout::Loopback,
        checkpoint_interval: 64,
    })
    .unwrap();
    let path = path_of(Role::Filter, 3);
    let mut f = parsed(&path);
    f.threshold_public = parsed(&other.path().join(file_name(Role::Filter, 3))).threshold_public;
    let (field, problem) = field_error(&path, f);
    assert_eq!(field, "threshold_public");
    assert!(problem.contains("expected g = 1"), "{problem}");
    let mut f = parsed(&path);
    f.threshold_public = Some("0102xyz".into());
    assert_eq!(field_error(&path, f).0, "threshold_public");
    let mut f = parsed(&path);
    f.threshold_public = Some("01".repeat(40));
    assert_eq!(field_error(&path, f).0, "threshold_public");

    // Filters: (h+1)² of them, and only with h.
    let mut f = parsed(&path);
    f.filter.pop();
    let (field, problem) = field_error(&path, f);
    assert_eq!(field, "filter");
    assert!(problem.contains("expected 4"), "{problem}");
    let mut f = parsed(&path);
    f.h = None;
    f.threshold_public = None;
    assert_eq!(field_error(&path, f).0, "filter");
    let mut f = parsed(&path);
    f.h = None;
    f.filter.clear();
    f.threshold_public = None;
    assert_eq!(field_error(&path, f).0, "h");
    // Threshold keys in a `separate` file.
    let path = path_of(Role::Agreement, 0);
    let mut f = parsed(&path);
    f.h = None;
    f.filter.clear();
    assert_eq!(field_error(&path, f).0, "threshold_public");
}

#[test]
fn links_follow_the_firewall_topology() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), Some(1));
    let load = |role, id| NodeConfig::load(&dir.path().join(file_name(role, id))).unwrap();
    let sorted = |mut v: Vec<NodeId>| {
        v.sort();
        v
    };
    let agreement: Vec<NodeId> = (0..4).map(NodeId::Agreement).collect();
    let execution: Vec<NodeId> = (0..3).map(NodeId::Execution).collect();
    let top = vec![NodeId::Filter(0), NodeId::Filter(1)];
    let bottom = vec![NodeId::Filter(2), NodeId::Filter(3)];

    // An execution replica: the bottom row and its peers, nobody else.
    let e = load(Role::Execution, 1);
    let mut want = vec![NodeId::Execution(0), NodeId::Execution(2)];
    want.extend(bottom.clone());
    assert_eq!(sorted(e.link_peers()), sorted(want));
    // A bottom filter: the top row above, the execution replicas below.
    let mut want = top.clone();
    want.extend(execution.clone());
    assert_eq!(sorted(load(Role::Filter, 3).link_peers()), sorted(want));
    // A top filter: agreement above, the bottom row below.
    let mut want = agreement.clone();
    want.extend(bottom.clone());
    assert_eq!(sorted(load(Role::Filter, 0).link_peers()), sorted(want));
    // An agreement node: its peers, the top row, the gateway; no execution replica.
    let mut want: Vec<NodeId> = vec![
        NodeId::Agreement(0),
        NodeId::Agreement(1),
        NodeId::Agreement(3),
    ];
    want.extend(top.clone());
    want.push(NodeId::Client(0));
    assert_eq!(sorted(load(Role::Agreement, 2).link_peers()), sorted(want));
    // The gateway: agreement only.
    assert_eq!(sorted(load(Role::Gateway, 0).link_peers()), agreement);
}
