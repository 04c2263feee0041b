//! Proofs for whoever holds a checkpoint but not the trail: that a record
//! is in the log ([`InclusionProof`]) and that a later checkpoint extends
//! an earlier one ([`ConsistencyProof`]), each carrying the signed
//! checkpoint it is a proof against, so that it can be checked offline
//! with the host's public key alone. And the witnesses' cosignatures the
//! host keeps and publishes ([`Witnessing`]).
//!
//! Hashes are base64, as in C2SP checkpoints. A proof holds hashes only:
//! nothing of any record's contents.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::log::Witness;
use crate::merkle::{self, Hash};
use crate::note::{self, TreeHead};
use crate::record::split_lines;
use crate::{AuditError, VerifyKey};

/// The witnesses' cosignatures file in a trail directory.
pub const COSIGNATURES_FILE: &str = "cosignatures.jsonl";

/// That record `seq` is in the log whose checkpoint is `checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The log's origin.
    pub origin: String,
    /// The record's sequence number (its leaf index).
    pub seq: u64,
    /// The size of the tree the proof is against.
    pub size: u64,
    /// The record's leaf hash: SHA-256 of `0x00` and its line.
    pub leaf: String,
    /// The inclusion proof, leaf to root.
    pub proof: Vec<String>,
    /// The checkpoint of the tree of `size` records, a signed note.
    pub checkpoint: String,
    /// The record's line, when whoever made the proof could show it
    /// (`zhongtai audit prove` on the host); never served over HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

/// That the tree of `from` records is a prefix of the tree of `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// The log's origin.
    pub origin: String,
    /// The older tree's size.
    pub from: u64,
    /// The newer tree's size.
    pub to: u64,
    /// The consistency proof.
    pub proof: Vec<String>,
    /// The checkpoint of the tree of `to` records, a signed note.
    pub checkpoint: String,
}

/// Why a proof could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// What was asked for is outside the signed log.
    #[error("{0}")]
    Outside(String),
    /// The tree cannot be read now.
    #[error("{0}")]
    Unavailable(String),
}

fn encode(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| STANDARD.encode(h)).collect()
}

fn decode(what: &str, text: &str) -> Result<Hash, String> {
    STANDARD
        .decode(text)
        .ok()
        .and_then(|bytes| Hash::try_from(bytes).ok())
        .ok_or_else(|| format!("{what} is not a 32-byte hash in base64"))
}

fn decode_all(hashes: &[String]) -> Result<Vec<Hash>, String> {
    hashes
        .iter()
        .enumerate()
        .map(|(i, h)| decode(&format!("proof[{i}]"), h))
        .collect()
}

/// The tree head of `checkpoint` if `key` signed it for `origin`.
pub fn open_checkpoint(
    checkpoint: &str,
    origin: &str,
    key: &VerifyKey,
) -> Result<TreeHead, String> {
    let head = note::open(checkpoint, origin, key).map_err(|e| match e {
        note::NoteError::Unsigned(_) => format!(
            "the checkpoint is not signed by the given key under the name {origin:?}: it is not this log's, or it was altered"
        ),
        other => other.to_string(),
    })?;
    if head.origin != origin {
        return Err(format!(
            "the checkpoint is of the log {:?}, not {origin:?}",
            head.origin
        ));
    }
    Ok(head)
}

impl InclusionProof {
    /// Checks the proof against the host's public `key`: the checkpoint is
    /// signed, of this origin and size, the proof leads from the leaf to
    /// its head, and the record (when the proof carries it) hashes to the
    /// leaf. Returns the checkpoint's tree head.
    pub fn check(&self, key: &VerifyKey) -> Result<TreeHead, String> {
        let head = open_checkpoint(&self.checkpoint, &self.origin, key)?;
        if head.size != self.size {
            return Err(format!(
                "the proof is for a tree of {} records but its checkpoint has {}",
                self.size, head.size
            ));
        }
        let leaf = decode("leaf", &self.leaf)?;
        if let Some(record) = &self.record
            && merkle::leaf_hash(record.as_bytes()) != leaf
        {
            return Err(format!(
                "record {} does not hash to the leaf the proof is for: it is not the record the log holds",
                self.seq
            ));
        }
        let proof = decode_all(&self.proof)?;
        if !merkle::verify_inclusion(self.seq, self.size, &leaf, &proof, &head.root) {
            return Err(format!(
                "the proof does not lead from leaf {} to the head of the checkpoint of {} records: record {} is not in that log as given",
                self.seq, self.size, self.seq
            ));
        }
        Ok(head)
    }
}

impl ConsistencyProof {
    /// Checks that the checkpoint `old` (a signed note held from before)
    /// is extended by this proof's checkpoint, both signed by `key`.
    /// Returns the new tree head.
    pub fn check(&self, old: &str, key: &VerifyKey) -> Result<TreeHead, String> {
        let old = open_checkpoint(old, &self.origin, key).map_err(|e| format!("old {e}"))?;
        let new = open_checkpoint(&self.checkpoint, &self.origin, key)?;
        if old.size != self.from || new.size != self.to {
            return Err(format!(
                "the proof is from {} to {} records but the checkpoints have {} and {}",
                self.from, self.to, old.size, new.size
            ));
        }
        let proof = decode_all(&self.proof)?;
        if !merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &proof) {
            return Err(format!(
                "the log of {} records is not an extension of the one of {} records you hold: its history was rewritten, or the proof altered",
                new.size, old.size
            ));
        }
        Ok(new)
    }
}

/// What proofs are made from: the tree file, the log's name, and how many
/// records its latest checkpoint covers.
pub(crate) struct Source<'a> {
    pub tree: &'a File,
    pub tree_path: PathBuf,
    pub origin: &'a str,
    pub signed: u64,
}

impl Source<'_> {
    /// `size`, or the latest checkpoint's, when a checkpoint covers it.
    fn size(&self, size: Option<u64>) -> Result<u64, ProofError> {
        match size {
            Some(size) if size > self.signed => Err(ProofError::Outside(format!(
                "the latest checkpoint covers {} records; ask for a tree of at most that many",
                self.signed
            ))),
            Some(size) => Ok(size),
            None if self.signed == 0 => Err(ProofError::Outside(
                "the log has no checkpoint of any record yet".to_owned(),
            )),
            None => Ok(self.signed),
        }
    }

    /// The tree file could not be read.
    pub(crate) fn unreadable(&self, error: std::io::Error) -> ProofError {
        ProofError::Unavailable(AuditError::io(&self.tree_path, error).to_string())
    }
}

/// The proof that record `seq` is in the tree of `size` records (the
/// latest checkpoint's when `None`), with the checkpoint `checkpoint_at`
/// gives for that size.
pub(crate) fn prove_inclusion(
    source: &Source<'_>,
    seq: u64,
    size: Option<u64>,
    checkpoint_at: impl FnOnce(u64) -> Result<String, ProofError>,
) -> Result<InclusionProof, ProofError> {
    use merkle::Subtrees as _;
    let size = source.size(size)?;
    if seq >= size {
        let later = if size == source.signed {
            " (a record is covered by the next checkpoint, signed within a second or so of it: ask again)"
        } else {
            ""
        };
        return Err(ProofError::Outside(format!(
            "record {seq} is not in the tree of {size} records{later}"
        )));
    }
    let stored = crate::tree::Stored(source.tree);
    let proof = merkle::stored_inclusion_proof(&stored, seq, size)
        .map_err(|e| source.unreadable(e))?
        .unwrap_or_default();
    let leaf = stored.subtree(0, seq).map_err(|e| source.unreadable(e))?;
    Ok(InclusionProof {
        origin: source.origin.to_owned(),
        seq,
        size,
        leaf: STANDARD.encode(leaf),
        proof: encode(&proof),
        checkpoint: checkpoint_at(size)?,
        record: None,
    })
}

/// The proof that the tree of `from` records is a prefix of the tree of
/// `to` (the latest checkpoint's when `None`).
pub(crate) fn prove_consistency(
    source: &Source<'_>,
    from: u64,
    to: Option<u64>,
    checkpoint_at: impl FnOnce(u64) -> Result<String, ProofError>,
) -> Result<ConsistencyProof, ProofError> {
    let to = source.size(to)?;
    if from == 0 || from > to {
        return Err(ProofError::Outside(format!(
            "a consistency proof goes from a tree of 1 to {to} records to the tree of {to}; {from} is not one"
        )));
    }
    let proof = merkle::stored_consistency_proof(&crate::tree::Stored(source.tree), from, to)
        .map_err(|e| source.unreadable(e))?
        .unwrap_or_default();
    Ok(ConsistencyProof {
        origin: source.origin.to_owned(),
        from,
        to,
        proof: encode(&proof),
        checkpoint: checkpoint_at(to)?,
    })
}

/// Proofs from a trail directory without its writer — on the host's
/// machine while it runs, or from a copy — against the checkpoints the
/// trail holds (`zhongtai audit prove`). Unlike the host, it signs
/// nothing: a proof is against a tree size a checkpoint was signed for.
pub struct Prover {
    dir: PathBuf,
    tree: File,
    origin: String,
    /// Tree size → signed note, of every checkpoint carrying one.
    notes: std::collections::BTreeMap<u64, String>,
}

impl Prover {
    /// Reads the checkpoints of the trail in `dir` (every segment) and
    /// opens its tree file.
    pub fn open(dir: &Path) -> Result<Self, AuditError> {
        let mut notes = std::collections::BTreeMap::new();
        let mut origin = None;
        for segment in crate::segment::listed(dir)? {
            let path = segment.dir.join(crate::CHECKPOINTS_FILE);
            let text = std::fs::read(&path).map_err(|e| AuditError::io(&path, e))?;
            for line in split_lines(&text).0 {
                let Ok(checkpoint) = serde_json::from_slice::<crate::Checkpoint>(line.bytes) else {
                    continue;
                };
                let Some(text) = checkpoint.note else {
                    continue;
                };
                let Some(head) = note::body(&text).ok().and_then(|b| TreeHead::parse(b).ok())
                else {
                    continue;
                };
                origin = Some(head.origin);
                notes.insert(head.size, text);
            }
        }
        let tree_path = dir.join(crate::TREE_FILE);
        let tree = File::open(&tree_path).map_err(|e| AuditError::io(&tree_path, e))?;
        let origin = origin.ok_or_else(|| AuditError::Io {
            path: dir.join(crate::CHECKPOINTS_FILE).display().to_string(),
            message:
                "no checkpoint carries a Merkle tree head yet: start the host on this trail once"
                    .to_owned(),
        })?;
        let signed = notes.keys().next_back().copied().unwrap_or(0);
        let held = merkle::stored_size(
            tree.metadata()
                .map_err(|e| AuditError::io(&tree_path, e))?
                .len()
                / 32,
        );
        if held < signed {
            return Err(AuditError::Io {
                path: tree_path.display().to_string(),
                message: format!(
                    "the tree file holds {held} records but the latest checkpoint covers {signed}: start the host on this trail once to make it again"
                ),
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            tree,
            origin,
            notes,
        })
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The latest checkpoint, with the cosignatures the trail keeps of it.
    pub fn latest_checkpoint(&self) -> Option<String> {
        let (size, note) = self.notes.iter().next_back()?;
        Some(note.clone() + &kept_lines(&self.dir, *size))
    }

    fn source(&self) -> Source<'_> {
        Source {
            tree: &self.tree,
            tree_path: self.dir.join(crate::TREE_FILE),
            origin: &self.origin,
            signed: self.notes.keys().next_back().copied().unwrap_or(0),
        }
    }

    fn checkpoint_at(&self, size: u64) -> Result<String, ProofError> {
        match self.notes.get(&size) {
            Some(note) => Ok(note.clone() + &kept_lines(&self.dir, size)),
            None => Err(ProofError::Outside(format!(
                "no checkpoint of this trail is of exactly {size} records; ask for the size of one it holds (the latest is {}), or ask the running host's /audit/v1/ API, which signs any size",
                self.source().signed
            ))),
        }
    }

    /// [`crate::AuditLog::inclusion_proof`], with the record's line.
    pub fn inclusion_proof(
        &self,
        seq: u64,
        size: Option<u64>,
    ) -> Result<InclusionProof, ProofError> {
        let mut proof = prove_inclusion(&self.source(), seq, size, |s| self.checkpoint_at(s))?;
        proof.record =
            record_line(&self.dir, seq).map_err(|e| ProofError::Unavailable(e.to_string()))?;
        Ok(proof)
    }

    /// [`crate::AuditLog::consistency_proof`].
    pub fn consistency_proof(
        &self,
        from: u64,
        to: Option<u64>,
    ) -> Result<ConsistencyProof, ProofError> {
        prove_consistency(&self.source(), from, to, |s| self.checkpoint_at(s))
    }
}

/// The cosignature lines kept in the trail `dir` for the tree of `size`
/// records (each was checked when the host took it).
fn kept_lines(dir: &Path, size: u64) -> String {
    let text = std::fs::read(dir.join(COSIGNATURES_FILE)).unwrap_or_default();
    let mut latest: Vec<Kept> = Vec::new();
    for line in split_lines(&text).0 {
        if let Ok(kept) = serde_json::from_slice::<Kept>(line.bytes) {
            latest.retain(|k| k.witness != kept.witness);
            latest.push(kept);
        }
    }
    latest
        .iter()
        .filter(|k| k.size == size)
        .map(|k| k.line.as_str())
        .collect()
}

/// The line of record `seq`, when its segment is in `dir`.
pub(crate) fn record_line(dir: &Path, seq: u64) -> Result<Option<String>, AuditError> {
    use std::io::BufRead;
    let listed = crate::segment::listed(dir)?;
    let Some(segment) = listed.iter().rev().find(|s| s.first <= seq) else {
        return Ok(None);
    };
    let (at, reader) = crate::segment::records_from(segment, seq)?;
    match reader.lines().nth((seq - at) as usize) {
        Some(line) => line
            .map(Some)
            .map_err(|e| AuditError::io(&segment.dir.join(crate::TRAIL_FILE), e)),
        None => Ok(None),
    }
}

/// Why a cosignature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignError {
    /// Not a checkpoint this log signed.
    #[error("{0}")]
    NotOurs(String),
    /// No cosignature by a witness the host knows.
    #[error("{0}")]
    Unknown(String),
}

/// One witness's latest cosignature, as kept in [`COSIGNATURES_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Kept {
    witness: String,
    size: u64,
    time: u64,
    line: String,
}

/// The cosignatures the host has been given: the latest of each witness
/// it knows, kept in the trail directory so that a restart publishes them
/// again.
pub(crate) struct Witnessing {
    path: PathBuf,
    file: File,
    known: Vec<Witness>,
    kept: Vec<Kept>,
}

impl Witnessing {
    /// Reads the cosignatures kept in `dir`, of the witnesses `known`, for
    /// trees of at most `records` records.
    pub(crate) fn open(dir: &Path, known: &[Witness], records: u64) -> Result<Self, AuditError> {
        let path = dir.join(COSIGNATURES_FILE);
        let io = |e| AuditError::io(&path, e);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let mut kept: Vec<Kept> = Vec::new();
        for line in split_lines(&text).0 {
            let Ok(entry) = serde_json::from_slice::<Kept>(line.bytes) else {
                continue;
            };
            if entry.size > records || !known.iter().any(|w| w.name == entry.witness) {
                continue;
            }
            kept.retain(|k| k.witness != entry.witness);
            kept.push(entry);
        }
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(io)?;
        Ok(Self {
            path,
            file,
            known: known.to_vec(),
            kept,
        })
    }

    /// The cosignature lines for the tree of `size` records.
    pub(crate) fn lines_for(&self, size: u64) -> String {
        self.kept
            .iter()
            .filter(|k| k.size == size)
            .map(|k| k.line.as_str())
            .collect()
    }

    /// The largest tree a witness has cosigned.
    pub(crate) fn witnessed(&self) -> Option<u64> {
        self.kept.iter().map(|k| k.size).max()
    }

    /// Keeps the cosignatures on `note` (a checkpoint of this log with
    /// tree head `head`, already checked) by witnesses the host knows;
    /// returns their names.
    pub(crate) fn add(&mut self, note: &str, head: &TreeHead) -> Result<Vec<String>, CosignError> {
        if self.known.is_empty() {
            return Err(CosignError::Unknown(
                "this host accepts cosignatures from no witness: start it with --witness NAME=KEY-FILE".into(),
            ));
        }
        let mut added = Vec::new();
        for witness in &self.known {
            let Ok(cosignature) = note::cosigned(note, &witness.name, &witness.key) else {
                continue;
            };
            added.push(witness.name.clone());
            if self
                .kept
                .iter()
                .any(|k| k.witness == witness.name && k.size >= head.size)
            {
                continue;
            }
            let entry = Kept {
                witness: witness.name.clone(),
                size: head.size,
                time: cosignature.time,
                line: cosignature.line,
            };
            let mut line = serde_json::to_vec(&entry).unwrap_or_default();
            line.push(b'\n');
            if let Err(e) = self
                .file
                .write_all(&line)
                .and_then(|()| self.file.sync_data())
            {
                tracing::warn!(error = %AuditError::io(&self.path, e), "a witness's cosignature is published but not kept across a restart");
            }
            self.kept.retain(|k| k.witness != witness.name);
            self.kept.push(entry);
        }
        if added.is_empty() {
            let names: Vec<&str> = self.known.iter().map(|w| w.name.as_str()).collect();
            return Err(CosignError::Unknown(format!(
                "the checkpoint carries no valid cosignature by a witness this host knows ({})",
                names.join(", ")
            )));
        }
        Ok(added)
    }
}
