//! The trail's Merkle tree on disk: `tree.hashes` in the trail directory,
//! the heads of every perfect subtree of the tree over all records (32
//! bytes each, in [`merkle::stored_position`] order: about 64 bytes per
//! record). It only grows at its end, like the trail, and is not split into
//! segments: proofs of records whose segments were archived still work.
//!
//! The file is derived from the records and can always be made again from
//! them. The writer appends to it after each write of the trail, before
//! the records count as durable, but does not sync it (the records are
//! synced; one more sync per write or checkpoint would slow every append).
//! On opening, the file is kept up to the last checkpoint when its head
//! there is the signed one, and the rest is made again from the records: a
//! killed process leaves a half-written tail, a power loss a file shorter
//! than the signed tree (then it is made again whole).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::AuditError;
use crate::merkle::{self, Frontier, Hash, Subtrees};

/// The tree file in a trail directory.
pub const TREE_FILE: &str = "tree.hashes";

const HASH: u64 = 32;

/// The writer's handle on the tree file, with the tree's frontier.
pub(crate) struct TreeFile {
    path: PathBuf,
    file: File,
    frontier: Frontier,
    /// Why the file fell behind the tree, if a write failed: proofs are
    /// refused until a restart makes it again.
    behind: Option<String>,
    stored: Vec<Hash>,
    /// Whether something was written since the last sync.
    dirty: bool,
}

impl TreeFile {
    /// Opens (or makes) the tree file at `path`, cut to the last whole
    /// tree it holds.
    pub(crate) fn open(path: &Path) -> Result<Self, AuditError> {
        let io = |e| AuditError::io(path, e);
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(io)?;
        let count = file.metadata().map_err(io)?.len() / HASH;
        let size = merkle::stored_size(count);
        let mut tree = Self {
            path: path.to_owned(),
            file,
            frontier: Frontier::new(),
            behind: None,
            stored: Vec::new(),
            dirty: false,
        };
        tree.truncate(size)?;
        Ok(tree)
    }

    /// How many leaves the tree has.
    pub(crate) fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The tree head.
    pub(crate) fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The head of the tree of its first `size` leaves, read from the file.
    pub(crate) fn root_at(&self, size: u64) -> Result<Hash, AuditError> {
        merkle::stored_root(&Stored(&self.file), size).map_err(|e| AuditError::io(&self.path, e))
    }

    /// Cuts the tree to its first `size` leaves.
    pub(crate) fn truncate(&mut self, size: u64) -> Result<(), AuditError> {
        let io = |e| AuditError::io(&self.path, e);
        let length = merkle::stored_count(size) * HASH;
        if self.file.metadata().map_err(io)?.len() != length {
            self.file.set_len(length).map_err(io)?;
            self.dirty = true;
        }
        self.frontier = Frontier::from_subtrees(&Stored(&self.file), size).map_err(io)?;
        Ok(())
    }

    /// Appends the leaves `lines` (records, without their newlines).
    pub(crate) fn append<'a>(&mut self, lines: impl Iterator<Item = &'a [u8]>) {
        self.stored.clear();
        for line in lines {
            self.frontier
                .push_stored(merkle::leaf_hash(line), &mut self.stored);
        }
        if self.behind.is_some() {
            return;
        }
        let bytes: Vec<u8> = self.stored.iter().flatten().copied().collect();
        self.dirty = true;
        if let Err(e) = self.file.write_all(&bytes) {
            let why = AuditError::io(&self.path, e).to_string();
            tracing::error!(error = %why, "the audit trail's Merkle tree file fell behind; proofs are refused until a restart makes it again");
            self.behind = Some(why);
        }
    }

    /// Makes what was appended durable (nothing to do when nothing was).
    pub(crate) fn sync(&mut self) -> Result<(), AuditError> {
        if self.dirty {
            self.file
                .sync_data()
                .map_err(|e| AuditError::io(&self.path, e))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Why proofs cannot be served, if they cannot.
    pub(crate) fn behind(&self) -> Option<&str> {
        self.behind.as_deref()
    }
}

/// Reads subtree heads from a tree file.
pub(crate) struct Stored<'a>(pub &'a File);

impl Subtrees for Stored<'_> {
    type Error = std::io::Error;

    fn subtree(&self, level: u32, index: u64) -> std::io::Result<Hash> {
        let mut hash = [0u8; 32];
        read_at(
            self.0,
            &mut hash,
            merkle::stored_position(level, index) * HASH,
        )?;
        Ok(hash)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
}

#[cfg(not(unix))]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file.try_clone()?;
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
        range.map(|i| format!("record {i}").into_bytes()).collect()
    }

    #[test]
    fn a_tree_file_reopens_where_it_ended_and_cuts_a_torn_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TREE_FILE);
        let all = lines(0..77);
        let leaves: Vec<Hash> = all.iter().map(|l| merkle::leaf_hash(l)).collect();
        let mut tree = TreeFile::open(&path).unwrap();
        tree.append(all[..40].iter().map(Vec::as_slice));
        tree.append(all[40..].iter().map(Vec::as_slice));
        assert_eq!((tree.size(), tree.root()), (77, merkle::root(&leaves)));
        drop(tree);

        // A leaf without the head it completes, and half a hash: cut.
        // (Whole pushes of garbage look like leaves: the log cuts the file
        // to its last signed size and makes the rest again from the
        // records.)
        let whole = std::fs::metadata(&path).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[7u8; 32 + 16]).unwrap();
        drop(file);
        let mut tree = TreeFile::open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        assert_eq!(tree.size(), 77);
        assert_eq!(tree.root(), merkle::root(&leaves));
        for size in [1, 31, 32, 33, 64, 77] {
            assert_eq!(
                tree.root_at(size).unwrap(),
                merkle::root(&leaves[..size as usize])
            );
        }
        tree.truncate(33).unwrap();
        assert_eq!(tree.root(), merkle::root(&leaves[..33]));
        tree.append(all[33..].iter().map(Vec::as_slice));
        assert_eq!(tree.root(), merkle::root(&leaves));
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            merkle::stored_count(77) * HASH
        );
    }
}
