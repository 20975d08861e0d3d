//! `palisade`: the command-line entry point of Palisade.
//!
//! `palisade up` brings up a Palisade NFS export. Today only the unreplicated mode
//! exists (one gateway, one durable file system on this machine); the replicated modes
//! (`separate`: agreement and execution clusters; `firewall`: plus the privacy
//! firewall) come in later issues and are refused with exit code 2 until then.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use palisade_gateway::{FsConfig, Gateway, GatewayOptions, DEFAULT_EXPORT_NAME};
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
}

#[derive(Args)]
struct UpArgs {
    /// Which configuration to run (default: the most complete one available).
    #[arg(long, value_enum, default_value_t = Mode::Unreplicated)]
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
    /// Agreement + privacy firewall + execution (not available yet).
    Firewall,
    /// Agreement separated from execution, no firewall (not available yet).
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

/// Exit code for "this mode does not exist yet" (also clap's usage-error code).
const EXIT_UNAVAILABLE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Up(args) => {
            let name = match args.mode {
                Mode::Firewall => Some("firewall"),
                Mode::Separate => Some("separate"),
                Mode::Unreplicated => None,
            };
            if let Some(name) = name {
                eprintln!("error: mode `{name}` is not available yet; use `--mode unreplicated`");
                return ExitCode::from(EXIT_UNAVAILABLE);
            }
            match up_unreplicated(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn up_unreplicated(args: &UpArgs) -> Result<()> {
    let listen: SocketAddr = args.listen.parse().with_context(|| {
        format!(
            "bad listen address {:?} (expected IPv4 ip:port, e.g. 127.0.0.1:11111)",
            args.listen
        )
    })?;
    prepare_data_dir(&args.data)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
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
        wait_for_stop_signal().await?;
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

async fn wait_for_stop_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot wait for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
