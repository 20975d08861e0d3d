//! Throwaway measurement: write then read a 64 MiB file through an in-process
//! unreplicated gateway with `nfs3_client`, in 1 MiB operations.
//!
//! `CARGO_TARGET_DIR=/work/target-gw cargo run --release -p palisade-gateway --example seq_rw`

use std::error::Error;
use std::time::Instant;

use nfs3_client::nfs3_types::nfs3::{
    createhow3, diropargs3, sattr3, stable_how, CREATE3args, Nfs3Option, Nfs3Result, READ3args,
    WRITE3args,
};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::TokioConnector;
use nfs3_client::Nfs3ConnectionBuilder;
use palisade_gateway::{FsConfig, Gateway, GatewayOptions};

const MIB: usize = 1 << 20;
const TOTAL_MIB: usize = 64;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let options = GatewayOptions {
        listen: "127.0.0.1:0".parse()?,
        ..GatewayOptions::default()
    };
    let gw = Gateway::start(dir.path(), FsConfig::default(), &options).await?;
    let port = gw.local_addr().port();
    let mut nfs = Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", "/")
        .connect_from_privileged_port(false)
        .mount_port(port)
        .nfs3_port(port)
        .mount()
        .await?;
    let root = nfs.root_nfs_fh3();
    let created = nfs
        .create(&CREATE3args {
            where_: diropargs3 {
                dir: root,
                name: b"big".to_vec().into(),
            },
            how: createhow3::GUARDED(sattr3::default()),
        })
        .await?;
    let file = match created {
        Nfs3Result::Ok(ok) => match ok.obj {
            Nfs3Option::Some(fh) => fh,
            Nfs3Option::None => return Err("no handle".into()),
        },
        Nfs3Result::Err((s, _)) => return Err(format!("create: {s:?}").into()),
    };
    let chunk: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();

    let start = Instant::now();
    for i in 0..TOTAL_MIB {
        let res = nfs
            .write(&WRITE3args {
                file: file.clone(),
                offset: (i * MIB) as u64,
                count: MIB as u32,
                stable: stable_how::FILE_SYNC,
                data: Opaque::borrowed(&chunk),
            })
            .await?;
        if let Nfs3Result::Err((s, _)) = res {
            return Err(format!("write: {s:?}").into());
        }
    }
    let write_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut read = 0usize;
    for i in 0..TOTAL_MIB {
        let res = nfs
            .read(&READ3args {
                file: file.clone(),
                offset: (i * MIB) as u64,
                count: MIB as u32,
            })
            .await?;
        match res {
            Nfs3Result::Ok(ok) => {
                if ok.data.as_ref() != chunk.as_slice() {
                    return Err(format!("data mismatch at MiB {i}").into());
                }
                read += ok.data.len();
            }
            Nfs3Result::Err((s, _)) => return Err(format!("read: {s:?}").into()),
        }
    }
    let read_s = start.elapsed().as_secs_f64();
    drop(nfs);
    gw.shutdown().await?;
    println!(
        "64 MiB in 1 MiB ops: write {write_s:.2} s ({:.0} MiB/s), read {read_s:.2} s ({:.0} MiB/s), total {:.2} s, read back {} MiB",
        TOTAL_MIB as f64 / write_s,
        TOTAL_MIB as f64 / read_s,
        write_s + read_s,
        read / MIB
    );
    Ok(())
}
