//! The canonical codec without I/O: encode and decode of a 1 MiB WRITE operation and of
//! ordered batches (64 small signed requests; one 1 MiB request), the batch digest that
//! pre-prepares name, and verifying a batch's client signatures. A regression here shows
//! in every configuration's throughput, so it is measured on its own.
//!
//! `cargo bench -p palisade-wire --bench codec`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ed25519_dalek::{SigningKey, VerifyingKey};
use palisade_wire::agreement::{Batch, Request, Signed};
use palisade_wire::fs::{FsOp, SetAttr, Timestamp, ROOT_ID};
use palisade_wire::{decode, encode};

const MIB: usize = 1 << 20;

fn write_op(len: usize) -> FsOp {
    FsOp::Write {
        id: 42,
        offset: 7 * MIB as u64,
        data: (0..len).map(|i| (i * 31 % 251) as u8).collect(),
    }
}

fn keys(n: u64) -> (Vec<SigningKey>, Vec<VerifyingKey>) {
    let sk: Vec<SigningKey> = (0..n)
        .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
        .collect();
    let vk = sk.iter().map(SigningKey::verifying_key).collect();
    (sk, vk)
}

/// A batch of `ops`, each a signed request from client `i % clients`.
fn batch(ops: &[FsOp], sk: &[SigningKey]) -> Batch {
    let requests = ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let client = (i % sk.len()) as u64;
            let req = Request {
                client,
                request_id: i as u64 + 1,
                payload: encode(op).unwrap().into(),
            };
            Signed::sign(&sk[client as usize], req).unwrap()
        })
        .collect();
    Batch {
        timestamp: Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        },
        requests,
    }
}

fn small_ops(n: usize) -> Vec<FsOp> {
    (0..n)
        .map(|i| match i % 4 {
            0 => FsOp::Mkdir {
                dir: ROOT_ID,
                name: format!("dir-{i}").into_bytes(),
                attr: SetAttr::default(),
            },
            1 => FsOp::GetAttr { id: ROOT_ID },
            2 => write_op(4096),
            _ => FsOp::Lookup {
                dir: ROOT_ID,
                name: format!("file-{i}").into_bytes(),
            },
        })
        .collect()
}

fn write_request(c: &mut Criterion) {
    let op = write_op(MIB);
    let bytes = encode(&op).unwrap();
    let mut g = c.benchmark_group("codec_write_1MiB");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("encode", |b| b.iter(|| encode(&op).unwrap()));
    g.bench_function("decode", |b| b.iter(|| decode::<FsOp>(&bytes).unwrap()));
    g.finish();
}

fn batches(c: &mut Criterion) {
    let (sk, vk) = keys(8);
    for (name, b) in [
        ("64_small_requests", batch(&small_ops(64), &sk)),
        ("one_1MiB_write", batch(&[write_op(MIB)], &sk)),
    ] {
        let bytes = encode(&b).unwrap();
        let mut g = c.benchmark_group(format!("codec_batch_{name}"));
        g.throughput(Throughput::Elements(b.requests.len() as u64));
        g.bench_function("encode", |x| x.iter(|| encode(&b).unwrap()));
        g.bench_function("decode", |x| {
            x.iter_batched(
                || bytes.clone(),
                |bytes| decode::<Batch>(&bytes).unwrap(),
                BatchSize::SmallInput,
            )
        });
        g.bench_function("digest", |x| x.iter(|| b.digest().unwrap()));
        g.bench_function("verify_client_signatures", |x| {
            x.iter(|| b.verify(&vk).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, write_request, batches);
criterion_main!(benches);
