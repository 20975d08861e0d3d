//! The state digest without I/O (MemStore): the 16-ary Merkle tree over inodes that
//! checkpoints certify. Measured after one batch of 64 small WRITEs into a file system
//! of 2,000 files (the incremental case every checkpoint pays: only dirty leaves and
//! their paths are rehashed), and for the first digest of those 2,000 files (every
//! leaf hashed, as after a restart or a state transfer).
//!
//! `cargo bench -p palisade-execution --bench digest`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use palisade_execution::{FileSystem, FsConfig, MemStore};
use palisade_wire::fs::{BatchContext, CreateHow, FsOp, FsReply, SetAttr, Timestamp, ROOT_ID};

const FILES: usize = 2000;
const WRITES: usize = 64;

fn ctx(sequence: u64) -> BatchContext {
    BatchContext {
        sequence,
        timestamp: Timestamp {
            seconds: 1_700_000_000 + sequence as u32,
            nanos: 0,
        },
    }
}

/// A file system holding `FILES` files of 8 KiB, and their ids.
fn populated() -> (FileSystem<MemStore>, Vec<u64>) {
    let mut fs = FileSystem::open(MemStore::new(), FsConfig::default()).unwrap();
    let creates: Vec<FsOp> = (0..FILES)
        .map(|i| FsOp::Create {
            dir: ROOT_ID,
            name: format!("f{i}").into_bytes(),
            how: CreateHow::Guarded(SetAttr::default()),
        })
        .collect();
    let ids: Vec<u64> = fs
        .apply_batch(&ctx(1), &creates)
        .unwrap()
        .into_iter()
        .map(|r| match r {
            Ok(FsReply::Created { id, .. }) => id,
            other => panic!("create: {other:?}"),
        })
        .collect();
    let writes: Vec<FsOp> = ids
        .iter()
        .map(|&id| FsOp::Write {
            id,
            offset: 0,
            data: vec![id as u8; 8192],
        })
        .collect();
    for r in fs.apply_batch(&ctx(2), &writes).unwrap() {
        r.unwrap();
    }
    (fs, ids)
}

fn digests(c: &mut Criterion) {
    let mut g = c.benchmark_group("state_digest");
    g.sample_size(20);
    g.throughput(Throughput::Elements(FILES as u64));
    g.bench_function("first_digest_of_2000_files", |b| {
        b.iter_batched(
            || populated().0,
            |mut fs| fs.try_digest().unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.throughput(Throughput::Elements(WRITES as u64));
    g.bench_function("after_64_small_writes_among_2000_files", |b| {
        let (mut fs, ids) = populated();
        fs.try_digest().unwrap();
        let mut seq = 3;
        // Only the digest is timed; applying the batch that dirties the leaves is not.
        b.iter_custom(|iters| {
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..iters {
                let writes: Vec<FsOp> = (0..WRITES)
                    .map(|i| FsOp::Write {
                        id: ids[(seq as usize * 131 + i * 31) % ids.len()],
                        offset: 4096,
                        data: vec![seq as u8; 512],
                    })
                    .collect();
                fs.apply_batch(&ctx(seq), &writes).unwrap();
                seq += 1;
                let t = std::time::Instant::now();
                std::hint::black_box(fs.try_digest().unwrap());
                spent += t.elapsed();
            }
            spent
        })
    });
    g.finish();
}

criterion_group!(benches, digests);
criterion_main!(benches);
