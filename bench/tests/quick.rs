//! End-to-end runs of the real `palisade-bench` binary in quick mode against
//! the in-memory baseline server. Figures are only checked for being present
//! and positive: no timing assertions (the machine is shared and noisy).

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_palisade-bench");

fn bench(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running palisade-bench")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("reading the --json file");
    serde_json::from_str(&text).expect("the --json file is valid JSON")
}

/// A memfs server started by the test itself (for --target runs), killed on
/// drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(BIN)
            .args(["serve-memfs", "--listen", &listen])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting serve-memfs");
        // Bounded wait until it accepts connections (not a timing assertion:
        // the limit is generous and only guards against hanging forever).
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(Instant::now() < deadline, "serve-memfs never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, port }
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn result<'a>(json: &'a Value, workload: &str, target: &str) -> &'a Value {
    json["results"]
        .as_array()
        .expect("results is an array")
        .iter()
        .find(|r| r["workload"] == workload && r["target"] == target)
        .unwrap_or_else(|| panic!("no result for {workload} on {target}: {json:#}"))
}

fn assert_positive_figures(r: &Value, runs: usize) {
    let samples = r["samples"].as_array().expect("samples");
    assert_eq!(samples.len(), runs, "{r:#}");
    for s in samples {
        assert!(s.as_f64().unwrap() > 0.0, "{r:#}");
    }
    for key in ["median", "min", "max"] {
        assert!(r[key].as_f64().unwrap() > 0.0, "{key} in {r:#}");
    }
    assert!(r["min"].as_f64() <= r["median"].as_f64());
    assert!(r["median"].as_f64() <= r["max"].as_f64());
}

#[test]
fn compare_quick_against_spawned_memfs() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("out.json");
    let out = bench(&[
        "compare",
        "--spawn",
        "memfs",
        "--quick",
        "--repeat",
        "2",
        "--clients",
        "3",
        "--json",
        json_path.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);

    let json = read_json(&json_path);
    let size = 4u64 << 20;
    assert_eq!(json["params"]["size"], size);
    assert_eq!(json["targets"][0], "memfs");
    // The machine's load is recorded with the figures.
    assert!(json["environment"]["start"]["cpus"].as_u64().unwrap() >= 1);
    assert!(json["environment"]["end"]["cpus"].as_u64().unwrap() >= 1);

    let w = result(&json, "seq-write", "memfs");
    assert_eq!(w["unit"], "MB/s");
    assert_positive_figures(w, 2);
    for run in w["runs"].as_array().unwrap() {
        assert_eq!(run["bytes"], size);
        // 4 MiB in 1 MiB WRITE calls.
        assert_eq!(run["ops"], 4);
    }

    let r = result(&json, "seq-read", "memfs");
    assert_positive_figures(r, 2);
    for run in r["runs"].as_array().unwrap() {
        // Every byte of the file was compared with the pattern.
        assert_eq!(run["verified_bytes"], size, "{r:#}");
    }

    let s = result(&json, "small-files", "memfs");
    assert_eq!(s["unit"], "ops/s");
    assert_positive_figures(s, 2);
    assert_positive_figures(&s["files_per_s"], 2);
    for run in s["runs"].as_array().unwrap() {
        // 3 clients x 20 files, 4 NFS calls each.
        assert_eq!(run["files"], 60);
        assert_eq!(run["ops"], 240);
    }

    // Results on stdout as a Markdown table, progress on stderr.
    assert!(
        stdout.contains("| workload | target | median | min–max | vs memfs |"),
        "{stdout}"
    );
    for w in [
        "seq-write",
        "seq-read",
        "small-files",
        "small-files (files)",
    ] {
        assert!(stdout.contains(&format!("| {w} | memfs |")), "{stdout}");
    }
    assert!(
        !stdout.contains("[bench]"),
        "progress leaked to stdout: {stdout}"
    );
    assert!(stderr.contains("stopped memfs server"), "{stderr}");

    // A spawned server's process is known: its peak memory is reported, and the memfs
    // server held at least the 4 MiB file it was sent.
    let peak = &json["server_peak_memory"][0];
    assert_eq!(peak["target"], "memfs", "{json:#}");
    assert!(peak["bytes"].as_u64().unwrap() >= size, "{peak}");
    assert!(
        stdout.contains("server peak resident memory (VmHWM, after the last run): memfs "),
        "{stdout}"
    );
}

#[test]
fn seq_read_catches_a_server_that_returns_a_wrong_byte() {
    // 1_234_567 is inside the 4 MiB file and not at a call boundary.
    let server = Server::start(&["--corrupt-read-at", "1234567"]);
    let out = bench(&["seq-read", "--target", &server.target(), "--quick"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "corruption went unnoticed:\n{stderr}"
    );
    assert!(
        stderr.contains("data mismatch at file offset 1234567"),
        "{stderr}"
    );
}

#[test]
fn single_workloads_on_an_external_target_with_odd_sizes() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = 1_000_003;
    let io: u64 = 65_537;
    let calls = size.div_ceil(io);

    // seq-read alone first writes the file (untimed), then verifies it, with
    // calls that are neither aligned nor equal-sized, one at a time.
    let json_path = dir.path().join("read.json");
    let out = bench(&[
        "seq-read",
        "--host",
        "127.0.0.1",
        "--port",
        &server.port.to_string(),
        "--size",
        &size.to_string(),
        "--io-size",
        &io.to_string(),
        "--depth",
        "1",
        "--warmup",
        "1",
        "--repeat",
        "3",
        "--json",
        json_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = read_json(&json_path);
    assert_eq!(json["results"].as_array().unwrap().len(), 1);
    let target = server.target();
    let r = result(&json, "seq-read", &target);
    assert_positive_figures(r, 3);
    for run in r["runs"].as_array().unwrap() {
        assert_eq!(run["verified_bytes"], size);
        assert_eq!(run["ops"], calls);
    }

    // seq-write with deep concurrency on the same server.
    let json_path = dir.path().join("write.json");
    let out = bench(&[
        "seq-write",
        "--target",
        &target,
        "--size",
        &size.to_string(),
        "--io-size",
        &io.to_string(),
        "--depth",
        "8",
        "--quick",
        "--json",
        json_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = read_json(&json_path);
    let w = result(&json, "seq-write", &target);
    assert_positive_figures(w, 1);
    assert_eq!(w["runs"][0]["ops"], calls);
}

#[test]
fn missing_palisade_binary_is_a_clear_error() {
    let out = bench(&[
        "compare",
        "--spawn",
        "unreplicated",
        "--palisade-bin",
        "/nonexistent/palisade",
        "--quick",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("/nonexistent/palisade does not exist"),
        "{stderr}"
    );
}

#[test]
fn nonsense_parameters_are_refused() {
    for args in [
        &["seq-write", "--io-size", "0"][..],
        &["seq-write", "--depth", "0"][..],
        &["small-files", "--repeat", "0"][..],
        &["seq-write", "--size", "lots"][..],
    ] {
        let out = bench(args);
        assert!(!out.status.success(), "{args:?} was accepted");
    }
}

#[test]
fn compare_two_targets_gives_a_ratio_for_each() {
    let external = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("cmp.json");
    let out = bench(&[
        "compare",
        "--spawn",
        "memfs",
        "--target",
        &external.target(),
        "--quick",
        "--json",
        json_path.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = read_json(&json_path);
    let names: Vec<&str> = json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names, ["memfs", external.target().as_str()]);
    for w in ["seq-write", "seq-read", "small-files"] {
        for t in &names {
            assert_positive_figures(result(&json, w, t), 1);
        }
        // The first target is the baseline of its own ratio.
        assert!(stdout.contains(&format!("| {w} | memfs |")), "{stdout}");
        let row = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {w} | {} |", external.target())))
            .unwrap_or_else(|| panic!("no {w} row for the external target: {stdout}"));
        assert!(row.trim_end().ends_with("× |"), "no ratio in {row}");
    }
}

/// The unreplicated Palisade gateway, when its binary has been built next to
/// this one (`cargo build -p palisade` into the same target dir). Without it
/// the test says so on stderr and checks nothing, except under CI, where it fails.
#[test]
fn compare_memfs_and_unreplicated_when_palisade_is_built() {
    let palisade = Path::new(BIN).with_file_name("palisade");
    if !palisade.is_file() {
        // `cargo test --workspace` builds it; CI must never skip this comparison.
        assert!(
            std::env::var_os("CI").is_none(),
            "{} not built under CI",
            palisade.display()
        );
        eprintln!(
            "NOTE: {} not built; skipping the unreplicated comparison",
            palisade.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("cmp.json");
    let out = bench(&[
        "compare",
        "--spawn",
        "memfs,unreplicated",
        "--palisade-bin",
        palisade.to_str().unwrap(),
        "--quick",
        "--json",
        json_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = read_json(&json_path);
    for w in ["seq-write", "seq-read", "small-files"] {
        assert_positive_figures(result(&json, w, "unreplicated"), 1);
    }
    let r = result(&json, "seq-read", "unreplicated");
    assert_eq!(r["runs"][0]["verified_bytes"], 4u64 << 20);
}

/// The loopback port a spawned server was started on, from the progress line
/// "[bench] starting KIND on 127.0.0.1:PORT: ...".
fn spawned_port(stderr: &str) -> u16 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("[bench] starting "))
        .unwrap_or_else(|| panic!("no 'starting' line in {stderr}"));
    let addr = line
        .split(" on ")
        .nth(1)
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap();
    addr.parse().unwrap()
}

fn port_is_closed(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err()
}

#[test]
fn a_spawned_server_is_stopped_when_the_run_fails() {
    // The export does not exist, so the readiness check never succeeds.
    let out = bench(&[
        "compare",
        "--spawn",
        "memfs",
        "--export",
        "/no-such-export",
        "--quick",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("refused to mount"), "{stderr}");
    assert!(stderr.contains("MNT3ERR_NOENT"), "{stderr}");
    // The server's own log is shown to explain the failure.
    assert!(stderr.contains("memfs: serving NFSv3"), "{stderr}");
    assert!(port_is_closed(spawned_port(&stderr)), "{stderr}");
}

#[test]
fn ctrl_c_stops_the_run_and_its_server() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(BIN)
        .args(["seq-write", "--spawn", "memfs", "--size", "4MiB"])
        .args(["--warmup", "0", "--repeat", "1000000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    // Wait until a measured run has finished, so the server is busy serving.
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("seq-write run 1/") {
            break;
        }
    }
    let port = spawned_port(&seen);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let exit = child.wait().unwrap();
    assert!(!exit.success(), "{seen}");
    assert!(seen.contains("error: interrupted"), "{seen}");
    assert!(seen.contains("stopped memfs server"), "{seen}");
    assert!(port_is_closed(port), "{seen}");
}
