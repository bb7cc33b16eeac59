//! RFC 9162 Merkle trees over an organization's audit chain: leaf and node hashing, the frontier
//! extended as events are appended, which nodes a proof needs, and the proof verifiers.
//!
//! Leaf `i` is the event of sequence `i + 1`, its leaf input the event's 32-byte chain hash. Nodes
//! of a perfect subtree at `STORED_LEVEL` and above are stored as they complete (one row per
//! `2^STORED_LEVEL` events, amortized); the lower ones are recomputed from the at most
//! `2^STORED_LEVEL` events of their block when a proof needs them, so appending costs a hash per
//! event and an insert per block instead of an insert per node.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// The lowest level whose nodes are stored.
pub const STORED_LEVEL: u32 = 4;
/// Leaves per block: the events a stored node of `STORED_LEVEL` covers.
pub const BLOCK: u64 = 1 << STORED_LEVEL;

/// MTH({}): the hash of an empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// MTH({d}) = SHA-256(0x00 || d).
pub fn leaf_hash(input: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(input);
    h.finalize().into()
}

/// SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The leaf hash of an event whose chain hash is `hex` (64 lowercase hex digits), or `None` when
/// the stored hash is not one.
pub fn leaf_of_chain_hash(hex: &str) -> Option<Hash> {
    decode_hex32(hex).map(|bytes| leaf_hash(&bytes))
}

pub fn decode_hex32(hex: &str) -> Option<Hash> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// A perfect subtree: leaves `[index << level, (index + 1) << level)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

impl NodeId {
    pub fn start(self) -> u64 {
        self.index << self.level
    }
    pub fn end(self) -> u64 {
        (self.index + 1) << self.level
    }
    pub fn is_stored(self) -> bool {
        self.level >= STORED_LEVEL
    }
    /// The block of leaves a node below `STORED_LEVEL` is recomputed from.
    pub fn block(self) -> u64 {
        self.start() / BLOCK
    }
}

/// The roots of the perfect subtrees a tree of `size` leaves decomposes into, largest first (one
/// per set bit of `size`): enough to append, and to compute the root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; `stored` receives every node at `STORED_LEVEL` or above it completes.
    pub fn append(&mut self, leaf: Hash, mut stored: impl FnMut(NodeId, Hash)) {
        let mut hash = leaf;
        let mut id = NodeId {
            level: 0,
            index: self.size,
        };
        while id.index & 1 == 1 {
            let Some(left) = self.nodes.pop() else {
                break; // unreachable: a set bit of `size` always has its node
            };
            hash = node_hash(&left, &hash);
            id = NodeId {
                level: id.level + 1,
                index: id.index >> 1,
            };
            if id.is_stored() {
                stored(id, hash);
            }
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// MTH of the tree so far.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        match nodes.next() {
            None => empty_root(),
            Some(last) => nodes.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }

    /// Rebuilds the frontier of a tree of `size` leaves from the stored nodes of its decomposition
    /// (`stored_decomposition(size)`, in that order) and the leaf hashes of its last, partial block.
    pub fn rebuild(size: u64, stored: &[Hash], partial_block: &[Hash]) -> Option<Frontier> {
        if stored.len() != stored_decomposition(size).len()
            || partial_block.len() as u64 != size % BLOCK
        {
            return None;
        }
        let mut low = Frontier::default();
        for leaf in partial_block {
            low.append(*leaf, |_, _| {});
        }
        let mut nodes = stored.to_vec();
        nodes.extend(low.nodes);
        Some(Frontier { size, nodes })
    }
}

/// The stored nodes of a tree of `size` leaves' decomposition, largest first.
pub fn stored_decomposition(size: u64) -> Vec<NodeId> {
    (STORED_LEVEL..64)
        .rev()
        .filter(|level| (size >> level) & 1 == 1)
        .map(|level| NodeId {
            level,
            index: (size >> level) - 1,
        })
        .collect()
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// A range of leaves `[start, end)` whose MTH is one element of a proof; `start` is aligned to a
/// power of two at least `end - start`, as RFC 9162's recursions produce.
pub type Span = (u64, u64);

/// RFC 9162 §2.1.3.1 PATH(index, D[size]) as spans, from the leaf upward.
pub fn inclusion_spans(index: u64, size: u64) -> Vec<Span> {
    fn path(m: u64, start: u64, end: u64, out: &mut Vec<Span>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < start + k {
            path(m, start, start + k, out);
            out.push((start + k, end));
        } else {
            path(m, start + k, end, out);
            out.push((start, start + k));
        }
    }
    let mut out = Vec::new();
    if index < size {
        path(index, 0, size, &mut out);
    }
    out
}

/// RFC 9162 §2.1.4.1 PROOF(from, D[to]) as spans (empty when `from` is 0 or equals `to`).
pub fn consistency_spans(from: u64, to: u64) -> Vec<Span> {
    fn subproof(m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<Span>) {
        let n = end - start;
        if m == n {
            if !whole {
                out.push((start, end));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            subproof(m, start, start + k, whole, out);
            out.push((start + k, end));
        } else {
            subproof(m - k, start + k, end, false, out);
            out.push((start, start + k));
        }
    }
    let mut out = Vec::new();
    if from > 0 && from < to {
        subproof(from, 0, to, true, &mut out);
    }
    out
}

/// The perfect subtrees a span decomposes into, left to right; MTH(span) folds them from the right.
pub fn span_nodes((mut start, end): Span) -> Vec<NodeId> {
    let mut out = Vec::new();
    while start < end {
        let mut level = 63 - (end - start).leading_zeros();
        // The span's start is aligned to its own size; the guard keeps a bad span from looping.
        while level > 0 && start % (1u64 << level) != 0 {
            level -= 1;
        }
        out.push(NodeId {
            level,
            index: start >> level,
        });
        start += 1u64 << level;
    }
    out
}

/// MTH(span) from the hashes of its `span_nodes`, in order.
pub fn fold_span(hashes: &[Hash]) -> Option<Hash> {
    let mut it = hashes.iter().rev();
    let last = *it.next()?;
    Some(it.fold(last, |acc, left| node_hash(left, &acc)))
}

/// The hash of a perfect subtree below `STORED_LEVEL` from the leaf hashes of its block
/// (`block_leaves[j]` is leaf `block * BLOCK + j`).
pub fn node_from_block(id: NodeId, block_leaves: &[Hash]) -> Option<Hash> {
    let offset = (id.start() - id.block() * BLOCK) as usize;
    let width = 1usize << id.level;
    let leaves = block_leaves.get(offset..offset + width)?;
    let mut level: Vec<Hash> = leaves.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    level.first().copied()
}

/// RFC 9162 §2.1.3.2: does `path` prove that `leaf` (a leaf hash) is leaf `index` of the tree of
/// `size` leaves whose root is `root`?
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
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
    s == 0 && r == *root
}

/// RFC 9162 §2.1.4.2: does `proof` show that the tree of `from` leaves with root `first` is a
/// prefix of the tree of `to` leaves with root `second`?
pub fn verify_consistency(from: u64, to: u64, proof: &[Hash], first: &Hash, second: &Hash) -> bool {
    if from > to {
        return false;
    }
    if from == to {
        return proof.is_empty() && first == second;
    }
    if from == 0 {
        return proof.is_empty();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if from.is_power_of_two() {
        path.push(*first);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (from - 1, to - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *first && sr == *second && s == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MTH straight from RFC 9162 §2.1.1, the reference the incremental code must equal.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// A proof element resolved from the leaves, as the store resolves it from nodes and blocks.
    fn resolve(all: &[Hash], span: Span) -> Hash {
        let hashes: Vec<Hash> = span_nodes(span)
            .into_iter()
            .map(|id| mth(&all[id.start() as usize..id.end() as usize]))
            .collect();
        fold_span(&hashes).unwrap()
    }

    #[test]
    fn the_frontier_root_equals_the_reference_and_stores_each_block_node_once() {
        let all = leaves(300);
        let mut frontier = Frontier::default();
        let mut stored = std::collections::BTreeMap::new();
        for (i, leaf) in all.iter().enumerate() {
            frontier.append(*leaf, |id, hash| {
                assert!(stored.insert(id, hash).is_none());
            });
            assert_eq!(frontier.root(), mth(&all[..=i]), "size {}", i + 1);
            let size = i as u64 + 1;
            let decomposition: Vec<Hash> = stored_decomposition(size)
                .iter()
                .map(|id| stored[id])
                .collect();
            let block_start = (size / BLOCK * BLOCK) as usize;
            let rebuilt = Frontier::rebuild(size, &decomposition, &all[block_start..=i]).unwrap();
            assert_eq!(rebuilt, frontier);
        }
        for (id, hash) in &stored {
            assert_eq!(*hash, mth(&all[id.start() as usize..id.end() as usize]));
        }
        assert_eq!(
            stored.len(),
            300 / 16 + 300 / 32 + 300 / 64 + 300 / 128 + 300 / 256
        );
    }

    #[test]
    fn inclusion_and_consistency_proofs_verify_and_a_flipped_bit_does_not() {
        let all = leaves(70);
        for size in 1..=70u64 {
            let root = mth(&all[..size as usize]);
            for index in 0..size {
                let path: Vec<Hash> = inclusion_spans(index, size)
                    .into_iter()
                    .map(|s| resolve(&all, s))
                    .collect();
                assert!(verify_inclusion(
                    &all[index as usize],
                    index,
                    size,
                    &path,
                    &root
                ));
                if let Some(first) = path.first() {
                    let mut bad = path.clone();
                    bad[0][0] ^= 1;
                    assert_ne!(bad[0], *first);
                    assert!(!verify_inclusion(
                        &all[index as usize],
                        index,
                        size,
                        &bad,
                        &root
                    ));
                }
                assert!(!verify_inclusion(
                    &all[index as usize],
                    size,
                    size,
                    &path,
                    &root
                ));
            }
            for from in 1..=size {
                let first = mth(&all[..from as usize]);
                let proof: Vec<Hash> = consistency_spans(from, size)
                    .into_iter()
                    .map(|s| resolve(&all, s))
                    .collect();
                assert!(
                    verify_consistency(from, size, &proof, &first, &root),
                    "{from}->{size}"
                );
                if from < size {
                    let mut bad = proof.clone();
                    let last = bad.len() - 1;
                    bad[last][31] ^= 0x80;
                    assert!(!verify_consistency(from, size, &bad, &first, &root));
                    let mut other = first;
                    other[0] ^= 1;
                    assert!(!verify_consistency(from, size, &proof, &other, &root));
                }
            }
        }
    }

    #[test]
    fn rfc_6962_test_vector_root() {
        // The 8-leaf tree of the Certificate Transparency test vectors (certificate-transparency-go
        // merkle tests): leaves "", 0x00, 0x10, 0x2021, 0x3031, 0x40414243, ...
        let inputs: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        let mut frontier = Frontier::default();
        for input in inputs {
            frontier.append(leaf_hash(input), |_, _| {});
        }
        assert_eq!(
            super::super::audit::hex(&frontier.root()),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
    }
}
