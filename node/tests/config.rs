//! Key generation and config loading: every generated file loads and describes the same
//! cluster; a wrong field is a clear error naming the file and the field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use palisade_node::config::{file_name, ConfigFile};
use palisade_node::{keygen, KeygenOptions, Layout, NodeConfig, NodeError, Role};

fn generate(dir: &Path, layout: Layout) -> Vec<std::path::PathBuf> {
    keygen(&KeygenOptions {
        f: 1,
        g: 1,
        h: None,
        clients: 2,
        out: dir.to_path_buf(),
        base_port: 7100,
        nfs_port: 11111,
        layout,
        checkpoint_interval: 64,
    })
    .unwrap()
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
fn generated_configs_load_and_agree_on_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let files = generate(dir.path(), Layout::Loopback);
    assert_eq!(files.len(), 4 + 3 + 2);
    let configs: Vec<NodeConfig> = files.iter().map(|f| NodeConfig::load(f).unwrap()).collect();
    let first = &configs[0];
    let mut ports = std::collections::BTreeSet::new();
    for c in &configs {
        assert_eq!(c.agreement_keys(), first.agreement_keys());
        assert_eq!(c.execution_keys(), first.execution_keys());
        assert_eq!(c.client_keys(), first.client_keys());
        assert!(ports.insert(c.listen.port()), "ports are distinct");
        assert!(c.listen.ip().is_loopback());
    }
    // Every node has its own keys.
    let mut publics = std::collections::BTreeSet::new();
    for c in &configs {
        assert!(publics.insert(c.noise.public));
        assert!(publics.insert(c.signing_key.verifying_key().to_bytes()));
    }
    let exec = NodeConfig::load(&dir.path().join(file_name(Role::Execution, 2))).unwrap();
    assert_eq!(exec.data_dir.unwrap(), dir.path().join("../exec-2"));
    let gw = NodeConfig::load(&dir.path().join(file_name(Role::Gateway, 1))).unwrap();
    assert_eq!(gw.nfs_listen.unwrap().port(), 11112);
}

/// Quiet votes are on unless an agreement node's file turns them off.
#[test]
fn quiet_votes_default_to_on_and_a_file_can_turn_them_off() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), Layout::Loopback);
    let path = dir.path().join(file_name(Role::Agreement, 3));
    assert!(NodeConfig::load(&path).unwrap().quiet_votes);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut file: ConfigFile = toml::from_str(&text).unwrap();
    assert_eq!(file.quiet_votes, None, "keygen leaves the default implicit");
    file.quiet_votes = Some(false);
    assert!(!NodeConfig::from_file(&path, file).unwrap().quiet_votes);
}

#[test]
fn docker_layout_uses_container_names() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), Layout::Docker);
    let c = NodeConfig::load(&dir.path().join(file_name(Role::Agreement, 3))).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:7100");
    assert_eq!(c.agreement[1].addr, "agreement-1:7100");
    assert_eq!(c.execution[0].addr, "execution-0:7100");
    assert_eq!(c.data_dir.unwrap(), Path::new("/data"));
}

#[test]
fn bad_fields_are_named() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), Layout::Loopback);
    let path = dir.path().join(file_name(Role::Agreement, 1));
    let file: ConfigFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();

    let mut f = file.clone();
    f.noise_key = "00".repeat(31);
    assert_eq!(field_error(&path, f).0, "noise_key");

    let mut f = file.clone();
    f.noise_key = "11".repeat(32);
    let (field, problem) = field_error(&path, f);
    assert_eq!(field, "noise_key");
    assert!(problem.contains("does not match"), "{problem}");

    let mut f = file.clone();
    f.agreement.pop();
    let (field, problem) = field_error(&path, f);
    assert_eq!(field, "agreement");
    assert!(problem.contains("expected 4"), "{problem}");

    let mut f = file.clone();
    f.execution[2].signing_public = "zz".repeat(32);
    assert_eq!(field_error(&path, f).0, "execution[2].signing_public");

    let mut f = file.clone();
    f.execution.swap(0, 1);
    assert_eq!(field_error(&path, f).0, "execution[0].id");

    let mut f = file.clone();
    f.id = 9;
    assert_eq!(field_error(&path, f).0, "id");

    let mut f = file.clone();
    f.listen = "localhost".into();
    assert_eq!(field_error(&path, f).0, "listen");

    let mut f = file.clone();
    f.checkpoint_interval = 0;
    assert_eq!(field_error(&path, f).0, "checkpoint_interval");

    // Syntax and unknown fields: named by the parser, in the file's error.
    std::fs::write(&path, "role = \"agreement\"\nwho = 1\n").unwrap();
    match NodeConfig::load(&path) {
        Err(NodeError::Config { file, field, .. }) => {
            assert_eq!(file, path);
            assert_eq!(field, "(syntax)");
        }
        other => panic!("{other:?}"),
    }
}
