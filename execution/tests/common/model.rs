//! A simple reference model of the file system, and op-sequence strategies.
#![allow(dead_code)]

use std::collections::BTreeMap;

use super::*;
use palisade_execution::{FileSystem, FsConfig, MemStore};
use palisade_wire::fs::*;
use proptest::prelude::*;

// ---- the reference model: whole-file data, id → node, no blocks, no times ----

#[derive(Clone, Debug)]
pub enum Kind {
    File(Vec<u8>),
    Dir(BTreeMap<Vec<u8>, FileId>),
    Link(Vec<u8>),
}

#[derive(Clone, Debug)]
pub struct Node {
    parent: FileId,
    kind: Kind,
}

#[derive(Clone, Debug)]
pub struct Model {
    nodes: BTreeMap<FileId, Node>,
    next: FileId,
}

/// What we compare of a reply: the status and the observable content.
#[derive(Debug, PartialEq, Eq)]
pub enum Obs {
    Id(FileId),
    Data(Vec<u8>, bool),
    Listing(Vec<(FileId, Vec<u8>)>),
    Attr(FileType, u64),
    Target(Vec<u8>),
    Done,
}

pub type R = Result<Obs, FsError>;

impl Model {
    pub fn new() -> Model {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            ROOT_ID,
            Node {
                parent: ROOT_ID,
                kind: Kind::Dir(BTreeMap::new()),
            },
        );
        Model { nodes, next: 2 }
    }

    fn node(&self, id: FileId) -> Result<&Node, FsError> {
        self.nodes.get(&id).ok_or(FsError::Stale)
    }

    fn dir(&self, id: FileId) -> Result<&BTreeMap<Vec<u8>, FileId>, FsError> {
        match &self.node(id)?.kind {
            Kind::Dir(e) => Ok(e),
            _ => Err(FsError::NotDir),
        }
    }

    fn dir_mut(&mut self, id: FileId) -> &mut BTreeMap<Vec<u8>, FileId> {
        match &mut self.nodes.get_mut(&id).unwrap().kind {
            Kind::Dir(e) => e,
            _ => unreachable!(),
        }
    }

    fn file(&self, id: FileId) -> Result<&Vec<u8>, FsError> {
        match &self.node(id)?.kind {
            Kind::File(d) => Ok(d),
            Kind::Dir(_) => Err(FsError::IsDir),
            Kind::Link(_) => Err(FsError::Inval),
        }
    }

    fn file_mut(&mut self, id: FileId) -> &mut Vec<u8> {
        match &mut self.nodes.get_mut(&id).unwrap().kind {
            Kind::File(d) => d,
            _ => unreachable!(),
        }
    }

    fn add(&mut self, dir: FileId, name: &[u8], kind: Kind) -> FileId {
        let id = self.next;
        self.next += 1;
        self.nodes.insert(id, Node { parent: dir, kind });
        self.dir_mut(dir).insert(name.to_vec(), id);
        id
    }

    fn is_within(&self, mut id: FileId, anc: FileId) -> bool {
        loop {
            if id == anc {
                return true;
            }
            if id == ROOT_ID {
                return false;
            }
            id = self.nodes[&id].parent;
        }
    }

    fn size(&self, id: FileId) -> u64 {
        match &self.nodes[&id].kind {
            Kind::File(d) => d.len() as u64,
            Kind::Dir(e) => e.len() as u64,
            Kind::Link(t) => t.len() as u64,
        }
    }

    pub fn apply(&mut self, op: &FsOp) -> R {
        match op {
            FsOp::GetAttr { id } => {
                let n = self.node(*id)?;
                let ty = match n.kind {
                    Kind::File(_) => FileType::Regular,
                    Kind::Dir(_) => FileType::Directory,
                    Kind::Link(_) => FileType::Symlink,
                };
                Ok(Obs::Attr(ty, self.size(*id)))
            }
            FsOp::SetAttr { id, attr, .. } => {
                self.file(*id)?;
                let size = attr.size.unwrap();
                self.file_mut(*id).resize(size as usize, 0);
                Ok(Obs::Attr(FileType::Regular, size))
            }
            FsOp::Lookup { dir, name } => {
                Ok(Obs::Id(*self.dir(*dir)?.get(name).ok_or(FsError::NoEnt)?))
            }
            FsOp::Read { id, offset, count } => {
                let d = self.file(*id)?;
                let start = (*offset as usize).min(d.len());
                let end = (start + *count as usize).min(d.len());
                Ok(Obs::Data(
                    d[start..end].to_vec(),
                    *offset + u64::from(*count) >= d.len() as u64,
                ))
            }
            FsOp::Write { id, offset, data } => {
                self.file(*id)?;
                let f = self.file_mut(*id);
                let end = *offset as usize + data.len();
                if !data.is_empty() {
                    if f.len() < end {
                        f.resize(end, 0);
                    }
                    f[*offset as usize..end].copy_from_slice(data);
                }
                Ok(Obs::Done)
            }
            FsOp::Create { dir, name, how } => {
                let existing = self.dir(*dir)?.get(name).copied();
                match (existing, how) {
                    (Some(_), CreateHow::Guarded(_)) => Err(FsError::Exist),
                    (Some(id), CreateHow::Unchecked(a)) => {
                        self.file(id).map_err(|_| FsError::Exist)?;
                        if let Some(s) = a.size {
                            self.file_mut(id).resize(s as usize, 0);
                        }
                        Ok(Obs::Id(id))
                    }
                    (None, CreateHow::Guarded(a) | CreateHow::Unchecked(a)) => {
                        let data = vec![0; a.size.unwrap_or(0) as usize];
                        Ok(Obs::Id(self.add(*dir, name, Kind::File(data))))
                    }
                    (None, CreateHow::Exclusive(_)) => unreachable!(),
                    (Some(_), CreateHow::Exclusive(_)) => unreachable!(),
                }
            }
            FsOp::Mkdir { dir, name, .. } => {
                if self.dir(*dir)?.contains_key(name) {
                    return Err(FsError::Exist);
                }
                Ok(Obs::Id(self.add(*dir, name, Kind::Dir(BTreeMap::new()))))
            }
            FsOp::Symlink {
                dir, name, target, ..
            } => {
                if self.dir(*dir)?.contains_key(name) {
                    return Err(FsError::Exist);
                }
                Ok(Obs::Id(self.add(*dir, name, Kind::Link(target.clone()))))
            }
            FsOp::ReadLink { id } => match &self.node(*id)?.kind {
                Kind::Link(t) => Ok(Obs::Target(t.clone())),
                _ => Err(FsError::Inval),
            },
            FsOp::Remove { dir, name } => {
                let id = *self.dir(*dir)?.get(name).ok_or(FsError::NoEnt)?;
                if matches!(self.nodes[&id].kind, Kind::Dir(_)) {
                    return Err(FsError::IsDir);
                }
                self.dir_mut(*dir).remove(name);
                self.nodes.remove(&id);
                Ok(Obs::Done)
            }
            FsOp::Rmdir { dir, name } => {
                let id = *self.dir(*dir)?.get(name).ok_or(FsError::NoEnt)?;
                match &self.nodes[&id].kind {
                    Kind::Dir(e) if e.is_empty() => {}
                    Kind::Dir(_) => return Err(FsError::NotEmpty),
                    _ => return Err(FsError::NotDir),
                }
                self.dir_mut(*dir).remove(name);
                self.nodes.remove(&id);
                Ok(Obs::Done)
            }
            FsOp::Rename {
                from_dir,
                from_name,
                to_dir,
                to_name,
            } => {
                self.dir(*from_dir)?;
                self.dir(*to_dir)?;
                let src = *self.dir(*from_dir)?.get(from_name).ok_or(FsError::NoEnt)?;
                if from_dir == to_dir && from_name == to_name {
                    return Ok(Obs::Done);
                }
                let src_dir = matches!(self.nodes[&src].kind, Kind::Dir(_));
                if src_dir && self.is_within(*to_dir, src) {
                    return Err(FsError::Inval);
                }
                if let Some(dst) = self.dir(*to_dir)?.get(to_name).copied() {
                    match (&self.nodes[&dst].kind, src_dir) {
                        (Kind::Dir(_), false) => return Err(FsError::IsDir),
                        (Kind::File(_) | Kind::Link(_), true) => return Err(FsError::NotDir),
                        (Kind::Dir(e), true) if !e.is_empty() => return Err(FsError::NotEmpty),
                        _ => {}
                    }
                    self.nodes.remove(&dst);
                }
                self.dir_mut(*from_dir).remove(from_name);
                self.dir_mut(*to_dir).insert(to_name.clone(), src);
                self.nodes.get_mut(&src).unwrap().parent = *to_dir;
                Ok(Obs::Done)
            }
            FsOp::ReadDir { dir, .. } => {
                let mut l: Vec<(FileId, Vec<u8>)> = self
                    .dir(*dir)?
                    .iter()
                    .map(|(n, id)| (*id, n.clone()))
                    .collect();
                l.sort();
                Ok(Obs::Listing(l))
            }
            _ => unreachable!(),
        }
    }
}

impl Model {
    /// Selector → id: below 24 it is a raw id (often stale or of the wrong type, to test
    /// errors); otherwise it picks a live inode of the kind the operation wants.
    fn pick(&self, sel: FileId, want_dir: bool) -> FileId {
        if sel < 24 {
            return sel / 2;
        }
        let fits: Vec<FileId> = self
            .nodes
            .iter()
            .filter(|(_, n)| matches!(n.kind, Kind::Dir(_)) == want_dir)
            .map(|(id, _)| *id)
            .collect();
        if fits.is_empty() {
            ROOT_ID
        } else {
            fits[sel as usize % fits.len()]
        }
    }

    pub fn resolve(&self, op: &FsOp) -> FsOp {
        let mut op = op.clone();
        match &mut op {
            FsOp::GetAttr { id } | FsOp::ReadLink { id } => *id = self.pick(*id, *id % 3 == 0),
            FsOp::SetAttr { id, .. } | FsOp::Read { id, .. } | FsOp::Write { id, .. } => {
                *id = self.pick(*id, false)
            }
            FsOp::Lookup { dir, .. }
            | FsOp::Create { dir, .. }
            | FsOp::Mkdir { dir, .. }
            | FsOp::Symlink { dir, .. }
            | FsOp::Remove { dir, .. }
            | FsOp::Rmdir { dir, .. }
            | FsOp::ReadDir { dir, .. } => *dir = self.pick(*dir, true),
            FsOp::Rename {
                from_dir, to_dir, ..
            } => {
                *from_dir = self.pick(*from_dir, true);
                *to_dir = self.pick(*to_dir, true);
            }
            _ => {}
        }
        op
    }
}

/// The observable part of a real reply (or of the listing, fetched in pages).
pub fn observe<S: palisade_execution::Store>(h: &mut H<S>, op: &FsOp, r: FsResult) -> R {
    Ok(match (op, r?) {
        (_, FsReply::Lookup { id, .. } | FsReply::Created { id, .. }) => Obs::Id(id),
        (_, FsReply::Read { data, eof, .. }) => Obs::Data(data, eof),
        (_, FsReply::Attr(a)) => Obs::Attr(a.file_type, a.size),
        (_, FsReply::ReadLink { target, .. }) => Obs::Target(target),
        (FsOp::ReadDir { dir, .. }, FsReply::ReadDir { .. }) => Obs::Listing(h.list(*dir, 2)),
        (_, FsReply::Done | FsReply::Write { .. }) => Obs::Done,
        (_, other) => panic!("unexpected {other:?}"),
    })
}

pub fn name_s() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"a".to_vec()),
        Just(b"b".to_vec()),
        Just(b"c".to_vec())
    ]
}

/// An id selector: resolved against the model before the op runs (see `resolve`).
pub fn id_s() -> impl Strategy<Value = FileId> {
    0u64..256
}

/// Offsets: mostly near the start (so reads find data), sometimes across blocks.
pub fn off_s() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..2_000, 1 => 0u64..140_000]
}

pub fn len_s() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0usize..3_000, 1 => 0usize..70_000]
}

pub fn op_s() -> impl Strategy<Value = FsOp> {
    prop_oneof![
        1 => id_s().prop_map(|id| FsOp::GetAttr { id }),
        1 => (id_s(), prop_oneof![0u64..3_000, 0u64..150_000]).prop_map(|(id, s)| FsOp::SetAttr {
            id,
            attr: SetAttr { size: Some(s), ..SetAttr::default() },
            guard_ctime: None
        }),
        2 => (id_s(), name_s()).prop_map(|(dir, name)| FsOp::Lookup { dir, name }),
        4 => (id_s(), off_s(), len_s()).prop_map(|(id, offset, count)| FsOp::Read { id, offset, count: count as u32 }),
        4 => (id_s(), off_s(), len_s(), any::<u8>()).prop_map(|(id, offset, len, b)| FsOp::Write {
            id,
            offset,
            data: (0..len).map(|i| b.wrapping_add(i as u8)).collect()
        }),
        4 => (id_s(), name_s(), proptest::option::of(0u64..1000), any::<bool>()).prop_map(|(dir, name, size, g)| {
            let a = SetAttr { size, ..SetAttr::default() };
            FsOp::Create { dir, name, how: if g { CreateHow::Guarded(a) } else { CreateHow::Unchecked(a) } }
        }),
        2 => (id_s(), name_s()).prop_map(|(dir, name)| FsOp::Mkdir { dir, name, attr: SetAttr::default() }),
        1 => (id_s(), name_s()).prop_map(|(dir, name)| FsOp::Symlink { dir, name, target: b"t/x".to_vec(), attr: SetAttr::default() }),
        1 => id_s().prop_map(|id| FsOp::ReadLink { id }),
        1 => (id_s(), name_s()).prop_map(|(dir, name)| FsOp::Remove { dir, name }),
        1 => (id_s(), name_s()).prop_map(|(dir, name)| FsOp::Rmdir { dir, name }),
        3 => (id_s(), name_s(), id_s(), name_s()).prop_map(|(from_dir, from_name, to_dir, to_name)| FsOp::Rename {
            from_dir,
            from_name,
            to_dir,
            to_name
        }),
        1 => id_s().prop_map(|dir| FsOp::ReadDir { dir, after: 0, max_entries: 2 }),
    ]
}

pub fn ops_s() -> impl Strategy<Value = Vec<FsOp>> {
    proptest::collection::vec(op_s(), 1..80)
}

/// The selectors of `ops` resolved against a model that runs them (the model agrees with
/// the file system, which `matches_the_reference_model` checks).
pub fn resolved(ops: &[FsOp]) -> Vec<FsOp> {
    let mut model = Model::new();
    ops.iter()
        .map(|op| {
            let op = model.resolve(op);
            let _ = model.apply(&op);
            op
        })
        .collect()
}

/// Applies `ops` split into batches at the given cut points, all with one timestamp.
pub fn run_split(ops: &[FsOp], cuts: &[usize]) -> FileSystem<MemStore> {
    let mut fs = FileSystem::open(MemStore::new(), FsConfig::default()).unwrap();
    let mut start = 0;
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (ops.len() + 1)).collect();
    bounds.push(ops.len());
    bounds.sort();
    for end in bounds {
        if end <= start {
            continue;
        }
        let ctx = BatchContext {
            sequence: fs.last_applied() + 1,
            timestamp: t(1000),
        };
        fs.apply_batch(&ctx, &ops[start..end]).unwrap();
        start = end;
    }
    fs
}
