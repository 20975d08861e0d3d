//! `palisade`: the command-line entry point of Palisade.
//!
//! - `palisade up` brings up a Palisade NFS export: `--mode firewall` (the default) runs
//!   a gateway, 4 agreement nodes, 4 filters in 2 rows and 3 execution nodes (f, g and h
//!   all 1) in this process on loopback, with keys generated into `<data>/keys` on first
//!   start; `--mode separate` the same without the filters (signed replies straight from
//!   the execution nodes); `--mode unreplicated` one gateway with a local durable file
//!   system.
//! - `palisade keygen` writes one config file (keys, peers, addresses) per node; `--h N`
//!   makes the firewall configuration ((N+1)² filters and a threshold key set).
//! - `palisade node --config FILE` runs one node of any role.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use palisade_gateway::{FsConfig, Gateway, GatewayOptions, DEFAULT_EXPORT_NAME};
use palisade_node::{
    ClusterMode, KeygenOptions, Layout, LocalCluster, LocalClusterOptions, RunningNode,
};
mod allocator;

use tracing::info;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "palisade",
    version,
    about = "Byzantine-fault-tolerant NFSv3 file service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve an NFSv3 export until Ctrl-C or SIGTERM.
    Up(UpArgs),
    /// Generate keys and one config file per node (files are mode 0600).
    Keygen(KeygenArgs),
    /// Run one node (agreement, filter, execution or gateway) from its config file.
    Node(NodeArgs),
}

#[derive(Args)]
struct KeygenArgs {
    /// Agreement faults tolerated (3f+1 agreement nodes).
    #[arg(long, default_value_t = 1)]
    f: usize,
    /// Execution faults tolerated (2g+1 execution nodes).
    #[arg(long, default_value_t = 1)]
    g: usize,
    /// Filter faults tolerated: the firewall configuration, (h+1)² filters in h+1 rows
    /// and a threshold key set for the execution cluster. Without it: `separate`.
    #[arg(long)]
    h: Option<usize>,
    /// Number of gateways (BFT clients).
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// First link port (loopback: one port per node from here; docker: every node's port).
    #[arg(long, default_value_t = 7100)]
    base_port: u16,
    /// First NFS port of the gateways.
    #[arg(long, default_value_t = 11111)]
    nfs_port: u16,
    /// Address layout: loopback (one machine) or docker (one container per node).
    #[arg(long, value_enum, default_value_t = LayoutArg::Loopback)]
    layout: LayoutArg,
    /// Execution checkpoint interval K.
    #[arg(long, default_value_t = 64)]
    checkpoint_interval: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LayoutArg {
    Loopback,
    Docker,
}

#[derive(Args)]
struct NodeArgs {
    /// The node's config file (from `palisade keygen`).
    #[arg(long)]
    config: PathBuf,
}

#[derive(Args)]
struct UpArgs {
    /// Which configuration to run (default: the most complete one, the firewall).
    #[arg(long, value_enum, default_value_t = Mode::Firewall)]
    mode: Mode,
    /// Data directory (created if missing).
    #[arg(long, default_value = "./palisade-data")]
    data: PathBuf,
    /// NFS + MOUNT listen address (IPv4 `ip:port`; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:11111")]
    listen: String,
    /// Export name; file handles are derived from it, so keep it across restarts.
    #[arg(long, default_value = DEFAULT_EXPORT_NAME)]
    export_name: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// A gateway, 4 agreement nodes, 2 rows of 2 filters and 3 execution nodes on
    /// loopback (f = g = h = 1): threshold-signed replies, sealed bodies.
    Firewall,
    /// A gateway, 4 agreement and 3 execution nodes on loopback (f = g = 1), no firewall.
    Separate,
    /// One gateway with a local durable file system.
    Unreplicated,
}

/// Log filter unless RUST_LOG says otherwise. nfsserve's per-procedure handlers log
/// every refused operation (an existing name, a missing file) at ERROR level; the
/// gateway already logs those at the right level (debug for refusals, warn for server
/// failures), so the handlers' own lines are off by default
/// (`RUST_LOG=info,nfsserve=debug` shows them).
const DEFAULT_LOG: &str = "info,nfsserve::nfs_handlers=off";

fn main() -> ExitCode {
    allocator::keep_freed_memory();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a log file or a pipe gets plain text to grep.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Up(args) => match args.mode {
            Mode::Firewall => up_cluster(&args, ClusterMode::Firewall),
            Mode::Separate => up_cluster(&args, ClusterMode::Separate),
            Mode::Unreplicated => up_unreplicated(&args),
        },
        Command::Keygen(args) => run_keygen(&args),
        Command::Node(args) => run_node(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_listen(listen: &str) -> Result<SocketAddr> {
    listen.parse().with_context(|| {
        format!("bad listen address {listen:?} (expected IPv4 ip:port, e.g. 127.0.0.1:11111)")
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run_keygen(args: &KeygenArgs) -> Result<()> {
    let files = palisade_node::keygen(&KeygenOptions {
        f: args.f,
        g: args.g,
        h: args.h,
        clients: args.clients,
        out: args.out.clone(),
        base_port: args.base_port,
        nfs_port: args.nfs_port,
        layout: match args.layout {
            LayoutArg::Loopback => Layout::Loopback,
            LayoutArg::Docker => Layout::Docker,
        },
        checkpoint_interval: args.checkpoint_interval,
    })
    .context("keygen failed")?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}

fn run_node(args: &NodeArgs) -> Result<()> {
    runtime()?.block_on(async {
        let stop = StopSignals::install()?;
        let node = RunningNode::start(&args.config)
            .await
            .with_context(|| format!("cannot start the node of {}", args.config.display()))?;
        if let RunningNode::Gateway(g) = &node {
            if let Some(c) = g.client_commands() {
                println!("palisade: gateway ready on {:?}", g.nfs_addr());
                println!("  libnfs: {}", c.nfs_ls);
                println!("  kernel: {}", c.mount);
            }
        } else {
            println!("palisade: node of {} running", args.config.display());
        }
        stop.wait().await;
        info!("stopping");
        node.stop().await;
        Ok(())
    })
}

fn up_cluster(args: &UpArgs, mode: ClusterMode) -> Result<()> {
    let listen = parse_listen(&args.listen)?;
    prepare_data_dir(&args.data)?;
    runtime()?.block_on(async {
        let stop = StopSignals::install()?;
        let cluster = LocalCluster::start(&LocalClusterOptions {
            mode,
            data: args.data.clone(),
            nfs_listen: listen,
            base_port: None,
            export_name: Some(args.export_name.clone()),
        })
        .await
        .with_context(|| format!("cannot start the {} cluster", mode.name()))?;
        let addr = cluster
            .nfs_addr()
            .context("the gateway has no NFS address")?;
        let commands = palisade_gateway::ClientCommands::for_addr(addr);
        let nodes = match mode {
            ClusterMode::Firewall => "4 agreement nodes, 2 rows of 2 filters, 3 execution nodes",
            ClusterMode::Separate => "4 agreement, 3 execution nodes",
        };
        println!(
            "palisade: {} cluster ({nodes}, keys in {}) ready on {}",
            mode.name(),
            cluster.keys_dir().display(),
            addr
        );
        println!("  libnfs: {}", commands.nfs_ls);
        println!("  kernel: {}", commands.mount);
        println!("Ctrl-C or SIGTERM stops it.");
        stop.wait().await;
        info!("stopping");
        cluster.shutdown().await;
        println!("palisade: stopped");
        Ok(())
    })
}

fn up_unreplicated(args: &UpArgs) -> Result<()> {
    let listen = parse_listen(&args.listen)?;
    prepare_data_dir(&args.data)?;
    runtime()?.block_on(async {
        let stop = StopSignals::install()?;
        let options = GatewayOptions {
            listen,
            export_name: args.export_name.clone(),
        };
        let gateway = Gateway::start(&args.data, FsConfig::default(), &options)
            .await
            .context("cannot start the unreplicated gateway")?;
        let commands = gateway.client_commands();
        println!(
            "palisade: unreplicated export of {} ready on {}",
            args.data.display(),
            gateway.local_addr()
        );
        println!("  libnfs: {}", commands.nfs_ls);
        println!("  kernel: {}", commands.mount);
        println!("Ctrl-C or SIGTERM stops it.");
        stop.wait().await;
        info!("stopping");
        gateway
            .shutdown()
            .await
            .context("gateway did not stop cleanly")?;
        println!("palisade: stopped");
        Ok(())
    })
}

/// Creates the data directory if needed and checks that it can be read, so that a bad
/// path fails here with a clear message rather than deep inside the store.
fn prepare_data_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    std::fs::read_dir(dir)
        .with_context(|| format!("cannot read data directory {}", dir.display()))?;
    Ok(())
}

/// SIGTERM and SIGINT (Ctrl-C), caught from before a server says it is ready: a stop
/// that arrives right after the "ready" lines must shut it down cleanly. Installed only
/// when the wait began, the handlers left a moment in which SIGTERM killed the process
/// outright (a test that stops the server as soon as it answered once saw it).
struct StopSignals {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Must run inside the runtime.
    fn install() -> Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?,
            interrupt: signal(SignalKind::interrupt())
                .context("cannot install the SIGINT handler")?,
        })
    }

    /// Until either signal arrives (or arrived since `install`).
    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}
