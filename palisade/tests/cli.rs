//! The `palisade` binary: modes, argument errors, start-up, serving, and clean shutdown
//! on SIGTERM.

// Test helpers outside #[test] fns: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
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

#[test]
fn replicated_modes_are_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    for mode in ["separate", "firewall"] {
        let (code, err) = run(&["up", "--mode", mode, "--data", data]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("not available yet"), "{err}");
        assert!(err.contains(mode), "{err}");
    }
}

#[test]
fn bad_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (code, err) = run(&["up", "--data", data, "--listen", "nonsense"]);
    assert_eq!(code, 1);
    assert!(err.contains("bad listen address"), "{err}");

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let (code, err) = run(&[
        "up",
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
        "--data",
        corrupt.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot open the data directory"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = run(&["up", "--data", data, "--listen", &addr]);
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
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Running(
        palisade()
            .args([
                "up",
                "--data",
                data.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
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

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.0.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(rest.iter().any(|l| l == "palisade: stopped"), "{rest:?}");
    // The data directory holds the durable state and is reusable.
    assert!(data.join("state.redb").exists());
}
