#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! RFC 6962 Merkle tree hash and audit paths, checked against a literal transcription of
//! the RFC's recursive definitions (§2.1, §2.1.1).

use palisade_crypto::*;
use palisade_wire::agreement::Digest;
use palisade_wire::firewall::ReplyEntry;
use proptest::prelude::*;

fn h(bytes: &[u8]) -> Digest {
    Digest(*blake3::hash(bytes).as_bytes())
}

/// RFC 6962 §2.1 MTH, literally: split at the largest power of two < n.
fn mth(d: &[Digest]) -> Digest {
    match d.len() {
        0 => h(&[]),
        1 => d[0],
        n => {
            let k = split(n);
            let mut buf = vec![0x01];
            buf.extend_from_slice(&mth(&d[..k]).0);
            buf.extend_from_slice(&mth(&d[k..]).0);
            h(&buf)
        }
    }
}

/// RFC 6962 §2.1.1 PATH(m, D[n]), literally.
fn rfc_path(m: usize, d: &[Digest]) -> Vec<Digest> {
    let n = d.len();
    if n <= 1 {
        return vec![];
    }
    let k = split(n);
    if m < k {
        let mut p = rfc_path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = rfc_path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn entry(i: u64) -> ReplyEntry {
    ReplyEntry {
        client: i % 3,
        request_id: 1000 + i,
        body: vec![i as u8; (i % 7) as usize],
    }
}

fn leaves(n: usize) -> Vec<Digest> {
    (0..n as u64).map(|i| leaf_hash(&entry(i))).collect()
}

/// The root: the tree hash bound to the count, `BLAKE3(0x02 ‖ tag ‖ count ‖ MTH)`.
fn bound(count: usize, mth: Digest) -> Digest {
    let mut buf = vec![0x02];
    buf.extend_from_slice(b"palisade/firewall/reply-root");
    buf.extend_from_slice(&(count as u64).to_le_bytes());
    buf.extend_from_slice(&mth.0);
    h(&buf)
}

#[test]
fn empty_tree_hash_is_blake3_of_nothing() {
    assert_eq!(tree_hash(&[]), h(&[]));
    assert_eq!(EMPTY_TREE_HASH, h(&[]));
    assert_eq!(root(&[]), bound(0, h(&[])));
    assert_eq!(reply_root(&[]), root(&[]));
}

#[test]
fn leaf_hash_is_prefixed_and_binds_every_field() {
    let e = entry(5);
    assert_eq!(tree_hash(&[leaf_hash(&e)]), leaf_hash(&e));
    assert_eq!(root(&[leaf_hash(&e)]), bound(1, leaf_hash(&e)));
    let mut other = e.clone();
    other.client += 1;
    assert_ne!(leaf_hash(&other), leaf_hash(&e));
    let mut other = e.clone();
    other.request_id += 1;
    assert_ne!(leaf_hash(&other), leaf_hash(&e));
    let mut other = e.clone();
    other.body.push(0);
    assert_ne!(leaf_hash(&other), leaf_hash(&e));
    // A node hash never equals a leaf hash of the same bytes (0x00 vs 0x01 prefix).
    let (a, b) = (leaf_hash(&entry(1)), leaf_hash(&entry(2)));
    assert_ne!(node_hash(&a, &b), h(&[&a.0[..], &b.0[..]].concat()));
}

#[test]
fn roots_and_paths_of_1_to_17_leaves_match_the_rfc() {
    for n in 1..=17usize {
        let l = leaves(n);
        let r = root(&l);
        assert_eq!(tree_hash(&l), mth(&l), "tree hash of {n}");
        assert_eq!(r, bound(n, mth(&l)), "root of {n}");
        let all = audit_paths(&l);
        assert_eq!(all.len(), n);
        for (i, path_i) in all.iter().enumerate() {
            let p = audit_path(&l, i);
            assert_eq!(p, rfc_path(i, &l), "path {i} of {n}");
            assert_eq!(&p, path_i);
            assert_eq!(
                root_from_path(l[i], i as u32, n as u32, &p),
                Some(r),
                "path {i} of {n}"
            );
        }
        assert!(audit_path(&l, n).is_empty());
    }
}

#[test]
fn reply_root_is_the_root_over_leaf_hashes() {
    let entries: Vec<_> = (0..9).map(entry).collect();
    assert_eq!(reply_root(&entries), root(&leaves(9)));
}

#[test]
fn tampered_leaf_path_index_or_count_fails() {
    for n in 2..=17usize {
        let l = leaves(n);
        let r = root(&l);
        for i in 0..n {
            let p = audit_path(&l, i);
            let (iu, nu) = (i as u32, n as u32);
            // Another leaf.
            assert_ne!(root_from_path(leaf_hash(&entry(99)), iu, nu, &p), Some(r));
            // A tampered sibling.
            for j in 0..p.len() {
                let mut q = p.clone();
                q[j].0[0] ^= 1;
                assert_ne!(root_from_path(l[i], iu, nu, &q), Some(r));
            }
            // Another index.
            for other in 0..nu {
                if other != iu {
                    assert_ne!(
                        root_from_path(l[i], other, nu, &p),
                        Some(r),
                        "{i}->{other}/{n}"
                    );
                }
            }
            // Another count: either a wrong shape (None) or a different root (the root
            // binds the count; an RFC 6962 tree hash alone would not, e.g. 3 vs 4 leaves).
            for count in 1..=2 * nu + 1 {
                if count != nu {
                    assert_ne!(root_from_path(l[i], iu, count, &p), Some(r));
                }
            }
            // Too long or too short a path.
            let mut longer = p.clone();
            longer.push(l[0]);
            assert_eq!(root_from_path(l[i], iu, nu, &longer), None);
            if !p.is_empty() {
                assert_eq!(root_from_path(l[i], iu, nu, &p[..p.len() - 1]), None);
            }
        }
    }
}

#[test]
fn out_of_range_index_and_zero_count_have_no_root() {
    let l = leaves(4);
    assert_eq!(root_from_path(l[0], 4, 4, &[]), None);
    assert_eq!(root_from_path(l[0], 0, 0, &[]), None);
    assert_eq!(root_from_path(l[0], 0, 1, &[]), Some(root(&l[..1])));
    assert_eq!(root_from_path(l[0], 0, 1, &[l[1]]), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_path_verifies_for_any_tree(n in 1usize..300, pick in any::<prop::sample::Index>()) {
        let l = leaves(n);
        let r = root(&l);
        prop_assert_eq!(r, bound(n, mth(&l)));
        let i = pick.index(n);
        let p = audit_path(&l, i);
        prop_assert_eq!(&p, &rfc_path(i, &l));
        prop_assert_eq!(root_from_path(l[i], i as u32, n as u32, &p), Some(r));
    }

    #[test]
    fn hostile_paths_never_panic(
        index in any::<u32>(),
        count in any::<u32>(),
        path in prop::collection::vec(any::<[u8; 32]>().prop_map(Digest), 0..40),
    ) {
        let _ = root_from_path(Digest([1; 32]), index, count, &path);
    }
}
