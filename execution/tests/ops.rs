//! One small test per operation and per error (RFC 1813 §3.3 semantics).
// Test helpers outside #[test] fns panic on purpose: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::Ordering;

use common::*;
use palisade_execution::{ExecError, FsConfig, MemStore, IO_MAX};
use palisade_wire::fs::*;

fn name(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[test]
fn open_formats_an_empty_root() {
    let mut h = mem();
    assert_eq!(h.fs.last_applied(), 0);
    let a = h.attr(ROOT_ID);
    assert_eq!(a.file_type, FileType::Directory);
    assert_eq!(a.mode, 0o755);
    assert_eq!((a.uid, a.gid, a.nlink, a.fileid), (0, 0, 2, ROOT_ID));
    assert_eq!(a.mtime, Timestamp::default());
    assert!(h.list(ROOT_ID, 10).is_empty());
}

#[test]
fn batches_must_come_in_order() {
    let mut h = mem();
    let before = h.fs.digest();
    for seq in [0, 2, 7] {
        let ctx = BatchContext {
            sequence: seq,
            timestamp: t(5),
        };
        let r = h.fs.apply_batch(
            &ctx,
            &[FsOp::Mkdir {
                dir: ROOT_ID,
                name: name("d"),
                attr: SetAttr::default(),
            }],
        );
        assert!(matches!(r, Err(ExecError::OutOfOrder { expected: 1, got }) if got == seq));
    }
    assert_eq!(h.fs.last_applied(), 0);
    assert_eq!(h.fs.digest(), before);
    h.mkdir(ROOT_ID, "d");
    assert_eq!(h.fs.last_applied(), 1);
}

#[test]
fn unknown_handles_are_stale() {
    let mut h = mem();
    assert_eq!(err(h.op(FsOp::GetAttr { id: 99 })), FsError::Stale);
    assert_eq!(
        err(h.op(FsOp::Read {
            id: 99,
            offset: 0,
            count: 1
        })),
        FsError::Stale
    );
    assert_eq!(
        err(h.lookup(99, "a").map(|_| FsReply::Done)),
        FsError::Stale
    );
    assert_eq!(err(h.op(FsOp::FsStat { id: 99 })), FsError::Stale);
}

#[test]
fn setattr_sets_fields_and_ctime() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    let r = h.setattr(
        f,
        SetAttr {
            mode: Some(0o170_644),
            uid: Some(7),
            gid: Some(8),
            atime: SetTime::ClientTime(t(3)),
            mtime: SetTime::ServerTime,
            ..SetAttr::default()
        },
    );
    let FsReply::Attr(a) = r.unwrap() else {
        panic!()
    };
    assert_eq!(a.mode, 0o644);
    assert_eq!((a.uid, a.gid), (7, 8));
    assert_eq!(a.atime, t(3));
    assert_eq!(a.mtime, h.now());
    assert_eq!(a.ctime, h.now());
}

#[test]
fn setattr_mode_keeps_only_permission_bits() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    h.setattr(
        f,
        SetAttr {
            mode: Some(0o177_777),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(h.attr(f).mode, 0o7777);
}

#[test]
fn setattr_guard_checks_ctime() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    let ctime = h.attr(f).ctime;
    let attr = SetAttr {
        uid: Some(1),
        ..SetAttr::default()
    };
    let wrong = Timestamp {
        seconds: ctime.seconds + 1,
        nanos: 0,
    };
    assert_eq!(
        err(h.op(FsOp::SetAttr {
            id: f,
            attr,
            guard_ctime: Some(wrong)
        })),
        FsError::NotSync
    );
    assert_eq!(h.attr(f).uid, 0);
    h.op(FsOp::SetAttr {
        id: f,
        attr,
        guard_ctime: Some(ctime),
    })
    .unwrap();
    assert_eq!(h.attr(f).uid, 1);
}

#[test]
fn setattr_size_truncates_and_extends_with_zeros() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    h.write(f, 0, b"hello world").unwrap();
    h.setattr(
        f,
        SetAttr {
            size: Some(5),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(h.read(f, 0, 100), (b"hello".to_vec(), true));
    let r = h.setattr(
        f,
        SetAttr {
            size: Some(10),
            ..SetAttr::default()
        },
    );
    let Ok(FsReply::Attr(a)) = r else {
        panic!("{r:?}")
    };
    // A size change is a data change: mtime and ctime become the batch time.
    assert_eq!((a.size, a.mtime, a.ctime), (10, h.now(), h.now()));
    assert_eq!(h.read(f, 0, 100).0, b"hello\0\0\0\0\0".to_vec());
}

#[test]
fn truncate_across_blocks_zeroes_the_tail() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 + 1).collect();
    h.write(f, 0, &data).unwrap();
    assert_eq!(h.attr(f).used, 200_000);
    h.setattr(
        f,
        SetAttr {
            size: Some(70_000),
            ..SetAttr::default()
        },
    )
    .unwrap();
    assert_eq!(h.attr(f).used, 70_000);
    h.setattr(
        f,
        SetAttr {
            size: Some(200_000),
            ..SetAttr::default()
        },
    )
    .unwrap();
    let (got, eof) = h.read(f, 0, 300_000);
    assert!(eof);
    assert_eq!(&got[..70_000], &data[..70_000]);
    assert!(got[70_000..].iter().all(|&b| b == 0));
    assert_eq!(got.len(), 200_000);
    assert_eq!(h.attr(f).used, 70_000);
}

#[test]
fn setattr_size_errors() {
    let mut h = mem_with(FsConfig {
        max_file_size: 1000,
        ..FsConfig::default()
    });
    let d = h.mkdir(ROOT_ID, "d");
    let f = h.create(ROOT_ID, "f");
    assert_eq!(
        err(h.setattr(
            d,
            SetAttr {
                size: Some(0),
                ..SetAttr::default()
            }
        )),
        FsError::IsDir
    );
    assert_eq!(
        err(h.setattr(
            f,
            SetAttr {
                size: Some(1001),
                ..SetAttr::default()
            }
        )),
        FsError::FBig
    );
}

#[test]
fn access_grants_from_type_and_mode() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    let d = h.mkdir(ROOT_ID, "d");
    let all = 0x3f;
    let granted = |h: &mut H, id, mode: u32, mask| {
        h.setattr(
            id,
            SetAttr {
                mode: Some(mode),
                ..SetAttr::default()
            },
        )
        .unwrap();
        match h.op(FsOp::Access { id, mask }).unwrap() {
            FsReply::Access { granted, .. } => granted,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        granted(&mut h, f, 0o644, all),
        ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND
    );
    assert_eq!(
        granted(&mut h, f, 0o751, all),
        ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_EXECUTE
    );
    assert_eq!(granted(&mut h, f, 0o000, all), 0);
    assert_eq!(
        granted(&mut h, f, 0o444, ACCESS3_READ | ACCESS3_MODIFY),
        ACCESS3_READ
    );
    assert_eq!(
        granted(&mut h, d, 0o755, all),
        ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE
    );
    assert_eq!(
        granted(&mut h, d, 0o555, all),
        ACCESS3_READ | ACCESS3_LOOKUP
    );
    assert_eq!(
        err(h.op(FsOp::Access { id: 77, mask: all })),
        FsError::Stale
    );
}

#[test]
fn lookup_names_and_errors() {
    let mut h = mem();
    let d = h.mkdir(ROOT_ID, "d");
    let f = h.create(d, "f");
    assert_eq!(h.lookup(d, "f"), Ok(f));
    assert_eq!(h.lookup(d, "."), Ok(d));
    assert_eq!(h.lookup(d, ".."), Ok(ROOT_ID));
    assert_eq!(h.lookup(ROOT_ID, ".."), Ok(ROOT_ID));
    assert_eq!(h.lookup(d, "g"), Err(FsError::NoEnt));
    assert_eq!(h.lookup(d, ""), Err(FsError::NoEnt));
    assert_eq!(h.lookup(d, &"x".repeat(256)), Err(FsError::NameTooLong));
    assert_eq!(h.lookup(d, "a\0b"), Err(FsError::Inval));
    assert_eq!(h.lookup(d, "a/b"), Err(FsError::Inval));
    assert_eq!(h.lookup(f, "x"), Err(FsError::NotDir));
    assert_eq!(h.lookup(1234, "x"), Err(FsError::Stale));
}

#[test]
fn read_past_eof_and_eof_flag() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    h.write(f, 0, b"0123456789").unwrap();
    assert_eq!(h.read(f, 0, 4), (b"0123".to_vec(), false));
    assert_eq!(h.read(f, 6, 4), (b"6789".to_vec(), true));
    assert_eq!(h.read(f, 8, 100), (b"89".to_vec(), true));
    assert_eq!(h.read(f, 10, 5), (Vec::new(), true));
    assert_eq!(h.read(f, 1_000_000, 5), (Vec::new(), true));
    assert_eq!(h.read(f, u64::MAX, 5), (Vec::new(), true));
}

#[test]
fn read_and_write_on_wrong_types() {
    let mut h = mem();
    let d = h.mkdir(ROOT_ID, "d");
    h.op(FsOp::Symlink {
        dir: ROOT_ID,
        name: name("s"),
        target: name("d"),
        attr: SetAttr::default(),
    })
    .unwrap();
    let s = h.lookup(ROOT_ID, "s").unwrap();
    assert_eq!(
        err(h.op(FsOp::Read {
            id: d,
            offset: 0,
            count: 1
        })),
        FsError::IsDir
    );
    assert_eq!(err(h.write(d, 0, b"x")), FsError::IsDir);
    assert_eq!(
        err(h.op(FsOp::Read {
            id: s,
            offset: 0,
            count: 1
        })),
        FsError::Inval
    );
}

#[test]
fn read_count_is_capped() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    h.setattr(
        f,
        SetAttr {
            size: Some(3 << 20),
            ..SetAttr::default()
        },
    )
    .unwrap();
    let (data, eof) = h.read(f, 0, u32::MAX);
    assert_eq!(data.len(), IO_MAX as usize);
    assert!(!eof);
}

#[test]
fn write_leaves_holes_that_read_as_zeros() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    h.write(f, 200_000, b"tail").unwrap();
    h.write(f, 3, b"head").unwrap();
    let a = h.attr(f);
    assert_eq!(a.size, 200_004);
    assert_eq!(a.used, 7 + (200_000 % 65_536) + 4);
    let (data, eof) = h.read(f, 0, 300_000);
    assert!(eof);
    assert_eq!(&data[3..7], b"head");
    assert_eq!(&data[200_000..], b"tail");
    assert!(data[7..200_000].iter().all(|&b| b == 0));
    assert!(data[..3].iter().all(|&b| b == 0));
}

#[test]
fn write_spanning_blocks_round_trips() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    h.write(f, 12_345, &data).unwrap();
    h.write(f, 100_000, b"patch").unwrap();
    let mut expect = vec![0u8; 12_345];
    expect.extend_from_slice(&data);
    expect[100_000..100_005].copy_from_slice(b"patch");
    let mut got = Vec::new();
    let mut off = 0;
    loop {
        let (chunk, eof) = h.read(f, off, 70_000);
        off += chunk.len() as u64;
        got.extend(chunk);
        if eof {
            break;
        }
    }
    assert_eq!(got, expect);
}

#[test]
fn write_limits() {
    let mut h = mem_with(FsConfig {
        capacity_bytes: 100_000,
        max_file_size: 1 << 20,
        ..FsConfig::default()
    });
    let f = h.create(ROOT_ID, "f");
    assert_eq!(err(h.write(f, (1 << 20) - 1, b"ab")), FsError::FBig);
    assert_eq!(err(h.write(f, u64::MAX, b"ab")), FsError::FBig);
    h.write(f, 0, &vec![1u8; 90_000]).unwrap();
    assert_eq!(err(h.write(f, 90_000, &vec![1u8; 10_001])), FsError::NoSpc);
    assert_eq!(h.attr(f).size, 90_000);
    // Overwriting stored bytes needs no new space.
    h.write(f, 0, &vec![2u8; 90_000]).unwrap();
    h.write(f, 90_000, &vec![1u8; 10_000]).unwrap();
    let FsReply::FsStat(s) = h.op(FsOp::FsStat { id: ROOT_ID }).unwrap() else {
        panic!()
    };
    assert_eq!(s.free_bytes, 0);
}

#[test]
fn write_count_is_capped() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    let r = h.write(f, 0, &vec![9u8; IO_MAX as usize + 10]).unwrap();
    assert!(matches!(r, FsReply::Write { count, .. } if count == IO_MAX));
    assert_eq!(h.attr(f).size, u64::from(IO_MAX));
}

#[test]
fn write_sets_mtime_and_ctime() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    h.write(f, 0, b"x").unwrap();
    let a = h.attr(f);
    assert_eq!(a.mtime, t(h.seconds - 1));
    assert_eq!(a.ctime, t(h.seconds - 1));
}

#[test]
fn read_does_not_touch_atime() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    h.write(f, 0, b"abc").unwrap();
    let before = h.attr(f);
    let d = h.fs.digest();
    h.read(f, 0, 3);
    assert_eq!(h.attr(f), before);
    assert_eq!(h.fs.digest(), d);
}

#[test]
fn create_modes() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    h.write(f, 0, b"data").unwrap();
    // GUARDED on an existing name.
    let guarded = FsOp::Create {
        dir: ROOT_ID,
        name: name("f"),
        how: CreateHow::Guarded(SetAttr::default()),
    };
    assert_eq!(err(h.op(guarded)), FsError::Exist);
    // UNCHECKED on an existing file applies the attributes; size 0 truncates.
    let r = h.op(FsOp::Create {
        dir: ROOT_ID,
        name: name("f"),
        how: CreateHow::Unchecked(SetAttr {
            size: Some(0),
            mode: Some(0o600),
            ..SetAttr::default()
        }),
    });
    let Ok(FsReply::Created { id, attr }) = r else {
        panic!("{r:?}")
    };
    assert_eq!((id, attr.size, attr.mode, attr.used), (f, 0, 0o600, 0));
    // UNCHECKED on a directory.
    h.mkdir(ROOT_ID, "d");
    let r = h.op(FsOp::Create {
        dir: ROOT_ID,
        name: name("d"),
        how: CreateHow::Unchecked(SetAttr::default()),
    });
    assert_eq!(err(r), FsError::Exist);
    // New file with attributes.
    let r = h.op(FsOp::Create {
        dir: ROOT_ID,
        name: name("g"),
        how: CreateHow::Unchecked(SetAttr {
            mode: Some(0o640),
            uid: Some(5),
            ..SetAttr::default()
        }),
    });
    let Ok(FsReply::Created { attr, .. }) = r else {
        panic!()
    };
    assert_eq!(
        (attr.mode, attr.uid, attr.size, attr.nlink),
        (0o640, 5, 0, 1)
    );
    assert_eq!(attr.ctime, h.now());
}

#[test]
fn create_exclusive_is_idempotent_per_verifier() {
    let mut h = mem();
    let op = |v| FsOp::Create {
        dir: ROOT_ID,
        name: name("x"),
        how: CreateHow::Exclusive(v),
    };
    let Ok(FsReply::Created { id, .. }) = h.op(op([1; 8])) else {
        panic!()
    };
    let Ok(FsReply::Created { id: again, .. }) = h.op(op([1; 8])) else {
        panic!()
    };
    assert_eq!(id, again);
    assert_eq!(err(h.op(op([2; 8]))), FsError::Exist);
    h.mkdir(ROOT_ID, "d");
    let r = h.op(FsOp::Create {
        dir: ROOT_ID,
        name: name("d"),
        how: CreateHow::Exclusive([1; 8]),
    });
    assert_eq!(err(r), FsError::Exist);
}

#[test]
fn create_name_rules() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    let c = |dir, n: &str| FsOp::Create {
        dir,
        name: name(n),
        how: CreateHow::Guarded(SetAttr::default()),
    };
    assert_eq!(err(h.op(c(ROOT_ID, ""))), FsError::Inval);
    assert_eq!(err(h.op(c(ROOT_ID, "."))), FsError::Exist);
    assert_eq!(err(h.op(c(ROOT_ID, ".."))), FsError::Exist);
    assert_eq!(
        err(h.op(c(ROOT_ID, &"n".repeat(256)))),
        FsError::NameTooLong
    );
    assert!(h.op(c(ROOT_ID, &"n".repeat(255))).is_ok());
    assert_eq!(err(h.op(c(ROOT_ID, "a/b"))), FsError::Inval);
    assert_eq!(err(h.op(c(ROOT_ID, "a\0"))), FsError::Inval);
    assert_eq!(err(h.op(c(f, "x"))), FsError::NotDir);
    assert_eq!(err(h.op(c(999, "x"))), FsError::Stale);
    let m = FsOp::Mkdir {
        dir: ROOT_ID,
        name: name(".."),
        attr: SetAttr::default(),
    };
    assert_eq!(err(h.op(m)), FsError::Exist);
    let m = FsOp::Mkdir {
        dir: ROOT_ID,
        name: name("f"),
        attr: SetAttr::default(),
    };
    assert_eq!(err(h.op(m)), FsError::Exist);
}

#[test]
fn ids_are_never_reused() {
    let mut h = mem();
    let a = h.create(ROOT_ID, "a");
    h.remove(ROOT_ID, "a").unwrap();
    let b = h.create(ROOT_ID, "a");
    assert_eq!((a, b), (2, 3));
    assert_eq!(err(h.op(FsOp::GetAttr { id: a })), FsError::Stale);
}

#[test]
fn mkdir_and_rmdir_keep_nlink_and_times() {
    let mut h = mem();
    let d = h.mkdir(ROOT_ID, "d");
    let now = h.now();
    let root = h.attr(ROOT_ID);
    assert_eq!((root.nlink, root.mtime, root.ctime), (3, now, now));
    let a = h.attr(d);
    assert_eq!(
        (a.nlink, a.mode, a.file_type),
        (2, 0o755, FileType::Directory)
    );
    h.mkdir(d, "e");
    h.create(d, "f");
    assert_eq!(h.attr(d).nlink, 3);
    assert_eq!(err(h.rmdir(ROOT_ID, "d")), FsError::NotEmpty);
    assert_eq!(err(h.rmdir(d, "f")), FsError::NotDir);
    assert_eq!(err(h.rmdir(d, ".")), FsError::Inval);
    assert_eq!(err(h.rmdir(d, "..")), FsError::NotEmpty);
    assert_eq!(err(h.rmdir(d, "zz")), FsError::NoEnt);
    h.rmdir(d, "e").unwrap();
    assert_eq!(h.attr(d).nlink, 2);
    h.remove(d, "f").unwrap();
    h.rmdir(ROOT_ID, "d").unwrap();
    assert_eq!(h.attr(ROOT_ID).nlink, 2);
    assert_eq!(err(h.op(FsOp::GetAttr { id: d })), FsError::Stale);
}

#[test]
fn symlink_and_readlink() {
    let mut h = mem();
    let r = h.op(FsOp::Symlink {
        dir: ROOT_ID,
        name: name("s"),
        target: name("../x/y"),
        attr: SetAttr::default(),
    });
    let Ok(FsReply::Created { id, attr }) = r else {
        panic!()
    };
    assert_eq!((attr.file_type, attr.size), (FileType::Symlink, 6));
    // The link's attributes come with its target (the same GETATTR answers).
    let Ok(FsReply::Attr(link_attr)) = h.op(FsOp::GetAttr { id }) else {
        panic!()
    };
    assert_eq!(
        h.op(FsOp::ReadLink { id }),
        Ok(FsReply::ReadLink {
            target: name("../x/y"),
            attr: link_attr
        })
    );
    let f = h.create(ROOT_ID, "f");
    assert_eq!(err(h.op(FsOp::ReadLink { id: f })), FsError::Inval);
    let long = FsOp::Symlink {
        dir: ROOT_ID,
        name: name("l"),
        target: vec![b'a'; MAX_PATH_BYTES + 1],
        attr: SetAttr::default(),
    };
    assert_eq!(err(h.op(long)), FsError::NameTooLong);
    let dup = FsOp::Symlink {
        dir: ROOT_ID,
        name: name("s"),
        target: name("t"),
        attr: SetAttr::default(),
    };
    assert_eq!(err(h.op(dup)), FsError::Exist);
    let dot = FsOp::Symlink {
        dir: ROOT_ID,
        name: name("."),
        target: name("t"),
        attr: SetAttr::default(),
    };
    assert_eq!(err(h.op(dot)), FsError::Exist);
    // A symlink is removed with REMOVE.
    h.remove(ROOT_ID, "s").unwrap();
}

#[test]
fn remove_rules_and_space() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    h.write(f, 0, &vec![1u8; 100_000]).unwrap();
    h.mkdir(ROOT_ID, "d");
    let free = |h: &mut H| match h.op(FsOp::FsStat { id: ROOT_ID }).unwrap() {
        FsReply::FsStat(s) => (s.free_bytes, s.free_files),
        _ => panic!(),
    };
    let cap = FsConfig::default().capacity_bytes;
    let files = FsConfig::default().max_files;
    assert_eq!(free(&mut h), (cap - 100_000, files - 3));
    assert_eq!(err(h.remove(ROOT_ID, "d")), FsError::IsDir);
    assert_eq!(err(h.remove(ROOT_ID, "nope")), FsError::NoEnt);
    assert_eq!(err(h.remove(ROOT_ID, ".")), FsError::Inval);
    assert_eq!(err(h.remove(ROOT_ID, "")), FsError::NoEnt);
    assert_eq!(err(h.remove(f, "x")), FsError::NotDir);
    h.remove(ROOT_ID, "f").unwrap();
    assert_eq!(free(&mut h), (cap, files - 2));
}

#[test]
fn rename_moves_and_replaces_files() {
    let mut h = mem();
    let a = h.create(ROOT_ID, "a");
    let b = h.create(ROOT_ID, "b");
    h.write(a, 0, b"AAA").unwrap();
    h.write(b, 0, b"BB").unwrap();
    let d = h.mkdir(ROOT_ID, "d");
    h.rename(ROOT_ID, "a", ROOT_ID, "b").unwrap();
    let now = h.now();
    assert_eq!(h.lookup(ROOT_ID, "b"), Ok(a));
    assert_eq!(h.lookup(ROOT_ID, "a"), Err(FsError::NoEnt));
    assert_eq!(err(h.op(FsOp::GetAttr { id: b })), FsError::Stale);
    assert_eq!(h.read(a, 0, 10).0, b"AAA".to_vec());
    assert_eq!(h.attr(a).ctime, now);
    assert_eq!(h.attr(ROOT_ID).mtime, now);
    h.rename(ROOT_ID, "b", d, "c").unwrap();
    let now = h.now();
    assert_eq!(h.lookup(d, "c"), Ok(a));
    assert_eq!(h.attr(d).mtime, now);
    assert_eq!(h.attr(ROOT_ID).ctime, now);
    let FsReply::FsStat(s) = h.op(FsOp::FsStat { id: ROOT_ID }).unwrap() else {
        panic!()
    };
    assert_eq!(s.total_bytes - s.free_bytes, 3);
}

#[test]
fn rename_directories() {
    let mut h = mem();
    let a = h.mkdir(ROOT_ID, "a");
    let b = h.mkdir(ROOT_ID, "b");
    let sub = h.mkdir(a, "sub");
    h.create(b, "file");
    let e = h.mkdir(ROOT_ID, "empty");
    h.create(ROOT_ID, "f");
    assert_eq!(err(h.rename(ROOT_ID, "a", ROOT_ID, "b")), FsError::NotEmpty);
    assert_eq!(err(h.rename(ROOT_ID, "a", ROOT_ID, "f")), FsError::NotDir);
    assert_eq!(err(h.rename(ROOT_ID, "f", ROOT_ID, "a")), FsError::IsDir);
    assert_eq!(err(h.rename(ROOT_ID, "a", sub, "x")), FsError::Inval);
    assert_eq!(err(h.rename(ROOT_ID, "a", a, "x")), FsError::Inval);
    // Directory onto an empty directory: replaces it.
    h.rename(ROOT_ID, "a", ROOT_ID, "empty").unwrap();
    assert_eq!(h.lookup(ROOT_ID, "empty"), Ok(a));
    assert_eq!(err(h.op(FsOp::GetAttr { id: e })), FsError::Stale);
    // Move into another directory: ".." and nlink follow.
    assert_eq!(h.attr(ROOT_ID).nlink, 4);
    h.rename(ROOT_ID, "empty", b, "moved").unwrap();
    assert_eq!(h.lookup(a, ".."), Ok(b));
    assert_eq!(h.lookup(sub, ".."), Ok(a));
    assert_eq!(h.attr(b).nlink, 3);
    assert_eq!(h.attr(ROOT_ID).nlink, 3);
}

#[test]
fn rename_onto_itself_is_a_no_op() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    let before = h.attr(ROOT_ID);
    let d = h.fs.digest();
    assert_eq!(h.rename(ROOT_ID, "f", ROOT_ID, "f"), Ok(FsReply::Done));
    assert_eq!(h.attr(ROOT_ID), before);
    assert_eq!(h.lookup(ROOT_ID, "f"), Ok(f));
    assert_eq!(h.fs.digest(), d);
}

#[test]
fn rename_name_errors() {
    let mut h = mem();
    let f = h.create(ROOT_ID, "f");
    assert_eq!(err(h.rename(ROOT_ID, ".", ROOT_ID, "x")), FsError::Inval);
    assert_eq!(err(h.rename(ROOT_ID, "f", ROOT_ID, "..")), FsError::Inval);
    assert_eq!(err(h.rename(ROOT_ID, "f", ROOT_ID, "")), FsError::Inval);
    assert_eq!(err(h.rename(ROOT_ID, "nope", ROOT_ID, "x")), FsError::NoEnt);
    assert_eq!(err(h.rename(ROOT_ID, "f", f, "x")), FsError::NotDir);
    assert_eq!(err(h.rename(ROOT_ID, "f", 500, "x")), FsError::Stale);
    assert_eq!(
        err(h.rename(ROOT_ID, "f", ROOT_ID, &"x".repeat(256))),
        FsError::NameTooLong
    );
}

#[test]
fn readdir_pages_in_id_order_and_resumes_after_deleted_cookie() {
    let mut h = mem();
    let d = h.mkdir(ROOT_ID, "d");
    let ids: Vec<FileId> = (0..10)
        .map(|i| h.create(d, &format!("n{}", 9 - i)))
        .collect();
    let listed = h.list(d, 3);
    assert_eq!(listed.iter().map(|e| e.0).collect::<Vec<_>>(), ids);
    assert_eq!(listed[0].1, b"n9".to_vec());
    // Resume after a cookie whose entry is gone.
    h.remove(d, "n6").unwrap();
    let r = h
        .op(FsOp::ReadDir {
            dir: d,
            after: ids[3],
            max_entries: 2,
        })
        .unwrap();
    let FsReply::ReadDir { entries, end, dir } = r else {
        panic!()
    };
    assert_eq!(
        entries.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[4], ids[5]]
    );
    assert!(!end);
    assert_eq!(entries[0].attr.fileid, ids[4]);
    // The directory's own attributes come with the listing: 9 entries left after the
    // remove, and the same attributes GETATTR answers in that state.
    assert_eq!(dir.fileid, d);
    assert_eq!(dir.size, 9);
    assert_eq!(h.op(FsOp::GetAttr { id: d }).unwrap(), FsReply::Attr(dir));
    let r = h
        .op(FsOp::ReadDir {
            dir: d,
            after: ids[9],
            max_entries: 2,
        })
        .unwrap();
    assert!(
        matches!(r, FsReply::ReadDir { ref entries, end: true, ref dir } if entries.is_empty() && dir.fileid == d)
    );
    let r = h
        .op(FsOp::ReadDir {
            dir: d,
            after: ids[7],
            max_entries: 2,
        })
        .unwrap();
    assert!(
        matches!(r, FsReply::ReadDir { ref entries, end: true, ref dir } if entries.len() == 2 && dir.fileid == d)
    );
    let f = ids[0];
    assert_eq!(
        err(h.op(FsOp::ReadDir {
            dir: f,
            after: 0,
            max_entries: 2
        })),
        FsError::NotDir
    );
}

#[test]
fn fsinfo_numbers() {
    let mut h = mem();
    let FsReply::FsInfo(i) = h.op(FsOp::FsInfo { id: ROOT_ID }).unwrap() else {
        panic!()
    };
    assert_eq!(
        (i.read_max, i.write_max, i.time_delta_nanos),
        (1 << 20, 1 << 20, 1)
    );
    assert_eq!(i.max_file_size, FsConfig::default().max_file_size);
}

#[test]
fn max_files_gives_nospc() {
    let mut h = mem_with(FsConfig {
        max_files: 3,
        ..FsConfig::default()
    });
    h.create(ROOT_ID, "a");
    h.mkdir(ROOT_ID, "b");
    let r = h.op(FsOp::Create {
        dir: ROOT_ID,
        name: name("c"),
        how: CreateHow::Guarded(SetAttr::default()),
    });
    assert_eq!(err(r), FsError::NoSpc);
    let FsReply::FsStat(s) = h.op(FsOp::FsStat { id: ROOT_ID }).unwrap() else {
        panic!()
    };
    assert_eq!((s.total_files, s.free_files), (3, 0));
}

#[test]
fn later_ops_in_a_batch_see_earlier_ones() {
    let mut h = mem();
    let r = h.batch(&[
        FsOp::Mkdir {
            dir: ROOT_ID,
            name: name("d"),
            attr: SetAttr::default(),
        },
        FsOp::Create {
            dir: 2,
            name: name("f"),
            how: CreateHow::Guarded(SetAttr::default()),
        },
        FsOp::Write {
            id: 3,
            offset: 0,
            data: name("xyz"),
        },
        FsOp::Read {
            id: 3,
            offset: 0,
            count: 10,
        },
        FsOp::Remove {
            dir: 2,
            name: name("f"),
        },
        FsOp::GetAttr { id: 3 },
    ]);
    assert!(matches!(r[3], Ok(FsReply::Read { ref data, eof: true, .. }) if data == b"xyz"));
    assert_eq!(r[5], Err(FsError::Stale));
}

#[test]
fn storage_failure_applies_nothing() {
    let store = MemStore::new();
    let faults = store.fault_injector();
    let mut h = H::new(store, FsConfig::default());
    let f = h.create(ROOT_ID, "f");
    h.write(f, 0, b"before").unwrap();
    let digest = h.fs.digest();
    let meta = h.fs.meta();
    faults.store(1, Ordering::SeqCst);
    let ctx = h.ctx();
    let r = h.fs.apply_batch(
        &ctx,
        &[
            FsOp::Write {
                id: f,
                offset: 0,
                data: name("after!"),
            },
            FsOp::Mkdir {
                dir: ROOT_ID,
                name: name("d"),
                attr: SetAttr::default(),
            },
        ],
    );
    assert!(matches!(r, Err(ExecError::Storage(_))));
    assert_eq!(h.fs.last_applied(), ctx.sequence - 1);
    assert_eq!(h.fs.digest(), digest);
    assert_eq!(h.fs.meta(), meta);
    assert_eq!(h.read(f, 0, 10).0, b"before".to_vec());
    assert_eq!(h.lookup(ROOT_ID, "d"), Err(FsError::NoEnt));
    // The same sequence number is accepted again afterwards (read above used it).
    let d = h.mkdir(ROOT_ID, "d");
    assert_eq!(d, 3);
}
