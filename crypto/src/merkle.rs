//! RFC 6962 §2.1 Merkle tree hash over a batch's replies, with BLAKE3 as the hash:
//!
//! - `MTH({}) = BLAKE3()` — the tree hash of zero leaves is BLAKE3 of the empty string
//!   ([`EMPTY_TREE_HASH`]), as the RFC defines it for its hash;
//! - leaf: `BLAKE3(0x00 ‖ leaf data)`; node: `BLAKE3(0x01 ‖ left ‖ right)` (the prefixes
//!   keep a leaf from ever passing for a node, RFC 6962 §2.1);
//! - n > 1 leaves split at k, the largest power of two < n: the left subtree is perfect.
//!
//! **The root binds the leaf count.** An RFC 6962 tree hash does not commit to the number
//! of leaves: leaf 0 of a 3-leaf tree has the same audit path and tree hash when read as
//! leaf 0 of 4 leaves. RFC 6962 signs the tree size beside the hash (§3.5); we sign
//! [`reply_root_message`](palisade_wire::firewall::reply_root_message)`(sequence, root)`
//! only, so the root that is signed is
//! `BLAKE3(0x02 ‖ "palisade/firewall/reply-root" ‖ count (u64 LE) ‖ MTH)` ([`root`]).
//! Without this a compromised filter could rewrite `leaf_count` of a certified reply and
//! still pass every check above it — a covert channel through the firewall (SOSP 2003
//! §4: the bytes leaving must be a function of the agreed request and state alone).
//!
//! Audit paths are RFC 6962 §2.1.1 (siblings from the leaf up) and are checked with the
//! algorithm of RFC 9162 §2.1.3.2, which also refuses a path of the wrong length for its
//! (index, count).
//!
//! The tree is built level by level: pairing neighbours and carrying an odd last node up
//! unchanged gives exactly the RFC's recursive split (a test checks this against a literal
//! transcription of the RFC), in O(n) hashes, and every audit path in O(n log n) total.

use palisade_wire::agreement::Digest;
use palisade_wire::firewall::ReplyEntry;

/// Domain tag at the start of a reply leaf's data, so a reply leaf is never confused with
/// any other BLAKE3 input of the system.
const LEAF_DOMAIN: &[u8] = b"palisade/firewall/reply-entry\0";

/// Domain tag of the count-binding step of [`root`].
const ROOT_DOMAIN: &[u8] = b"palisade/firewall/reply-root";

/// The tree hash of zero leaves: BLAKE3 of the empty string (RFC 6962 §2.1,
/// `MTH({}) = HASH()`). The *root* of zero leaves is `bind_count(0, EMPTY_TREE_HASH)`.
pub const EMPTY_TREE_HASH: Digest = Digest([
    0xaf, 0x13, 0x49, 0xb9, 0xf5, 0xf9, 0xa1, 0xa6, 0xa0, 0x40, 0x4d, 0xea, 0x36, 0xdc, 0xc9, 0x49,
    0x9b, 0xcb, 0x25, 0xc9, 0xad, 0xc1, 0x12, 0xb7, 0xcc, 0x9a, 0x93, 0xca, 0xe4, 0x1f, 0x32, 0x62,
]);

/// The leaf hash of one reply: `BLAKE3(0x00 ‖ tag ‖ client ‖ request_id ‖ len ‖ body)`,
/// integers little-endian u64. This fixed, length-prefixed layout is the leaf's canonical
/// encoding: unambiguous, and hashed in one pass without copying a 1 MiB body.
pub fn leaf_hash(entry: &ReplyEntry) -> Digest {
    leaf_hash_of(entry.client, entry.request_id, &entry.body)
}

/// [`leaf_hash`] of the entry these fields make, without building it (a reply's body
/// may be a megabyte).
pub fn leaf_hash_of(client: u64, request_id: u64, body: &[u8]) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(&[0x00]);
    h.update(LEAF_DOMAIN);
    h.update(&client.to_le_bytes());
    h.update(&request_id.to_le_bytes());
    h.update(&(body.len() as u64).to_le_bytes());
    h.update(body);
    Digest(*h.finalize().as_bytes())
}

/// `BLAKE3(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(&[0x01]);
    h.update(&left.0);
    h.update(&right.0);
    Digest(*h.finalize().as_bytes())
}

/// One level up: pair neighbours, carry an odd last node unchanged.
fn parent_level(level: &[Digest]) -> Vec<Digest> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => node_hash(l, r),
            [single] => *single,
            _ => EMPTY_TREE_HASH, // chunks(2) yields one or two items; never reached
        })
        .collect()
}

/// All levels of the tree, leaves first, root level (one node) last. Empty for no leaves.
fn levels(leaves: &[Digest]) -> Vec<Vec<Digest>> {
    let mut out = Vec::new();
    if leaves.is_empty() {
        return out;
    }
    out.push(leaves.to_vec());
    while let Some(top) = out.last() {
        if top.len() <= 1 {
            break;
        }
        let next = parent_level(top);
        out.push(next);
    }
    out
}

fn path_in_levels(levels: &[Vec<Digest>], mut index: usize) -> Vec<Digest> {
    let mut path = Vec::new();
    for level in levels {
        if level.len() <= 1 {
            break;
        }
        let sibling = index ^ 1;
        if let Some(s) = level.get(sibling) {
            path.push(*s);
        }
        // An odd last node has no sibling here: it is carried up, adding nothing.
        index /= 2;
    }
    path
}

/// The plain RFC 6962 Merkle tree hash `MTH` of `leaves` (already leaf hashes), without
/// the leaf count. What is signed is [`root`].
pub fn tree_hash(leaves: &[Digest]) -> Digest {
    let mut level = match leaves.len() {
        0 => return EMPTY_TREE_HASH,
        1 => return leaves[0],
        _ => parent_level(leaves),
    };
    while level.len() > 1 {
        level = parent_level(&level);
    }
    level.first().copied().unwrap_or(EMPTY_TREE_HASH)
}

/// `BLAKE3(0x02 ‖ "palisade/firewall/reply-root" ‖ count (u64 LE) ‖ tree_hash)`: a root
/// that commits to the number of leaves as well as to them.
pub fn bind_count(count: u64, tree_hash: &Digest) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(&[0x02]);
    h.update(ROOT_DOMAIN);
    h.update(&count.to_le_bytes());
    h.update(&tree_hash.0);
    Digest(*h.finalize().as_bytes())
}

/// The root of `leaves` (already leaf hashes): the RFC 6962 tree hash bound to the leaf
/// count ([`bind_count`]). Zero leaves: `bind_count(0, EMPTY_TREE_HASH)`, a fixed value.
pub fn root(leaves: &[Digest]) -> Digest {
    bind_count(leaves.len() as u64, &tree_hash(leaves))
}

/// The RFC 6962 §2.1.1 audit path of leaf `index`: sibling hashes from the leaf up.
/// Empty when `index` is out of range (and for a one-leaf tree, whose path is empty).
pub fn audit_path(leaves: &[Digest], index: usize) -> Vec<Digest> {
    if index >= leaves.len() {
        return Vec::new();
    }
    path_in_levels(&levels(leaves), index)
}

/// Every leaf's audit path at once, in O(n log n): index `i` of the result is
/// `audit_path(leaves, i)`.
pub fn audit_paths(leaves: &[Digest]) -> Vec<Vec<Digest>> {
    let levels = levels(leaves);
    (0..leaves.len())
        .map(|i| path_in_levels(&levels, i))
        .collect()
}

/// The [`root`] that `path` leads to from `leaf` at `index` of `count` leaves (RFC 9162
/// §2.1.3.2, then bound to `count`). `None` if `index >= count` or the path's length does
/// not fit the shape.
pub fn root_from_path(leaf: Digest, index: u32, count: u32, path: &[Digest]) -> Option<Digest> {
    if index >= count {
        return None;
    }
    let mut f = index;
    let mut s = count - 1;
    let mut r = leaf;
    for p in path {
        if s == 0 {
            return None; // path longer than the tree is deep
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                // Right edge of an unbalanced tree: climb past the levels where this
                // node was carried up without a sibling.
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return None; // path shorter than the tree is deep
    }
    Some(bind_count(u64::from(count), &r))
}

/// The reply root of a batch: [`root`] over [`leaf_hash`] of each entry, in batch order.
pub fn reply_root(entries: &[ReplyEntry]) -> Digest {
    let leaves: Vec<Digest> = entries.iter().map(leaf_hash).collect();
    root(&leaves)
}
