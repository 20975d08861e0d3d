//! The `palisade` binary: modes, argument errors, start-up, serving, and clean shutdown
//! on SIGTERM.

// Test helpers outside #[test] fns: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use nfs3_client::nfs3_types::nfs3::{GETATTR3args, Nfs3Result};
use nfs3_client::tokio::TokioConnector;
use nfs3_client::Nfs3ConnectionBuilder;

fn palisade() -> Command {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
}

fn run(args: &[&str]) -> (i32, String) {
    let out = palisade().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A data directory holds one configuration: a `separate` one is refused by the
/// (default) firewall mode with an error that says which mode it is.
#[test]
fn a_data_directory_of_another_mode_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let (code, err) = run(&["keygen", "--out", keys.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let data = dir.path().to_str().unwrap();
    let (code, err) = run(&["up", "--data", data, "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("holds a `separate` cluster"), "{err}");
    assert!(err.contains("--mode separate"), "{err}");
}

#[test]
fn bad_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (code, err) = run(&["up", "--data", data, "--listen", "nonsense"]);
    assert_eq!(code, 1);
    assert!(err.contains("bad listen address"), "{err}");
    let (code, err) = run(&[
        "up",
        "--mode",
        "unreplicated",
        "--data",
        data,
        "--listen",
        "nonsense",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("bad listen address"), "{err}");

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let (code, err) = run(&[
        "up",
        "--mode",
        "unreplicated",
        "--data",
        file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("data directory"), "{err}");

    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    std::fs::write(corrupt.join("state.redb"), vec![0x33u8; 8192]).unwrap();
    let (code, err) = run(&[
        "up",
        "--mode",
        "unreplicated",
        "--data",
        corrupt.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot open the data directory"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = run(&[
        "up",
        "--mode",
        "unreplicated",
        "--data",
        data,
        "--listen",
        &addr,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");

    let (code, _) = run(&["up", "--mode", "sideways"]);
    assert_eq!(code, 2, "clap usage error");
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn up_serves_prints_client_commands_and_stops_on_sigterm() {
    up_serves_and_stops("unreplicated", "state.redb");
}

/// The default mode is the firewall: keys are generated into <data>/keys (filters
/// included), the execution replicas keep their state in <data>/exec-<i>.
#[test]
fn up_firewall_is_the_default_and_serves() {
    up_serves_and_stops("", "exec-2/state.redb");
}

#[test]
fn up_separate_serves() {
    up_serves_and_stops("separate", "exec-2/state.redb");
}

type StdoutLines = std::io::Lines<BufReader<std::process::ChildStdout>>;

/// `palisade up [--mode MODE] --data DATA` on a free port, and its standard output.
fn spawn_up(mode: &str, data: &Path) -> (Running, StdoutLines) {
    let mut args = vec!["up"];
    if !mode.is_empty() {
        args.extend(["--mode", mode]);
    }
    let mut child = Running(
        palisade()
            .args(args)
            .args(["--data", data.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Sends SIGTERM; the server must exit cleanly and say so on its way out.
fn stop_with_sigterm(mut child: Running, lines: StdoutLines) {
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.0.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(rest.iter().any(|l| l == "palisade: stopped"), "{rest:?}");
}

fn up_serves_and_stops(mode: &str, state_file: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (child, mut lines) = spawn_up(mode, &data);
    let mut port = None;
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push(line.clone());
        if let Some(rest) = line.split("nfsport=").nth(1) {
            port = rest.split('&').next().map(|p| p.parse::<u16>().unwrap());
        }
        if line.contains("mount -t nfs") {
            break;
        }
    }
    let port = port.unwrap_or_else(|| panic!("no nfs-ls line in {printed:?}"));
    assert_ne!(port, 0);
    let all = printed.join("\n");
    assert!(
        all.contains(&format!(
            "nfs-ls 'nfs://127.0.0.1/?nfsport={port}&mountport={port}&version=3'"
        )),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "mount -t nfs -o vers=3,tcp,port={port},mountport={port},nolock 127.0.0.1:/ /mnt"
        )),
        "{all}"
    );

    // It really serves NFS.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", "/")
            .connect_from_privileged_port(false)
            .mount_port(port)
            .nfs3_port(port)
            .mount()
            .await
            .unwrap();
        let root = conn.root_nfs_fh3();
        let attr = conn.getattr(&GETATTR3args { object: root }).await.unwrap();
        assert!(matches!(attr, Nfs3Result::Ok(_)));
    });

    stop_with_sigterm(child, lines);
    // The data directory holds the durable state and is reusable.
    assert!(data.join(state_file).exists(), "{state_file}");
    if mode.is_empty() {
        assert!(data.join("keys/filter-3.toml").exists());
    }
}

/// A SIGTERM that arrives the moment the server says it is ready stops it cleanly: the
/// handlers are installed before the "ready" lines, not after them.
#[test]
fn sigterm_right_after_ready_stops_cleanly() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let (child, mut lines) = spawn_up("unreplicated", &dir.path().join("data"));
        for line in lines.by_ref() {
            if line.unwrap().contains("ready on") {
                break;
            }
        }
        stop_with_sigterm(child, lines);
    }
}

#[test]
fn keygen_writes_private_configs_and_bad_configs_are_clear_errors() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    let out_s = out.to_str().unwrap();
    let (code, err) = run(&[
        "keygen",
        "--f",
        "1",
        "--g",
        "1",
        "--clients",
        "2",
        "--out",
        out_s,
    ]);
    assert_eq!(code, 0, "{err}");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4 + 3 + 2, "{names:?}");
    assert!(names.contains(&"agreement-3.toml".to_string()));
    assert!(names.contains(&"execution-2.toml".to_string()));
    assert!(names.contains(&"gateway-1.toml".to_string()));
    for n in &names {
        let mode = std::fs::metadata(out.join(n)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{n}");
    }
    // A broken key: the error names the file and the field.
    let file = out.join("agreement-1.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let broken = text.replacen("signing_key = \"", "signing_key = \"zz", 1);
    std::fs::write(&file, broken).unwrap();
    let (code, err) = run(&["node", "--config", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("agreement-1.toml") && err.contains("signing_key"),
        "{err}"
    );
    // Another node's secret key: does not match this node's public key.
    let other = std::fs::read_to_string(out.join("agreement-2.toml")).unwrap();
    let other_key = other
        .lines()
        .find(|l| l.starts_with("signing_key"))
        .unwrap();
    let swapped: String = text
        .lines()
        .map(|l| {
            if l.starts_with("signing_key") {
                other_key
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&file, swapped).unwrap();
    let (code, err) = run(&["node", "--config", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("does not match"), "{err}");
    // Not TOML at all, and a missing file.
    std::fs::write(&file, "role = [").unwrap();
    let (code, err) = run(&["node", "--config", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("agreement-1.toml"), "{err}");
    let (code, err) = run(&["node", "--config", "/nonexistent/x.toml"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/x.toml"), "{err}");
}

/// `keygen --h 1`: the firewall configuration, with 4 filters; the body key is in the
/// gateway's and execution replicas' files and in no other; a filter config given one is
/// refused at start-up, naming the field.
#[test]
fn keygen_with_h_writes_the_firewall_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    let (code, err) = run(&["keygen", "--h", "1", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4 + 3 + 1 + 4, "{names:?}");
    for n in &names {
        let text = std::fs::read_to_string(out.join(n)).unwrap();
        let sealed = n.starts_with("gateway") || n.starts_with("execution");
        assert_eq!(text.contains("body_key"), sealed, "{n}");
        assert!(text.contains("threshold_public"), "{n}");
        assert_eq!(
            text.contains("threshold_share"),
            n.starts_with("execution"),
            "{n}"
        );
    }
    let gateway = std::fs::read_to_string(out.join("gateway-0.toml")).unwrap();
    let key_line = gateway.lines().find(|l| l.starts_with("body_key")).unwrap();
    let filter = out.join("filter-2.toml");
    let text = std::fs::read_to_string(&filter).unwrap();
    std::fs::write(&filter, format!("{key_line}\n{text}")).unwrap();
    let (code, err) = run(&["node", "--config", filter.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("filter-2.toml") && err.contains("body_key"),
        "{err}"
    );
}
