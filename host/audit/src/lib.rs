//! zhongtai's audit trail: one record for every capability call the host
//! makes and every operator action, in a file nobody can change unseen.
//!
//! A trail is a directory:
//!
//! | file | what |
//! |---|---|
//! | `trail.jsonl` | the records, one JSON object per line ([`Record`]) |
//! | `checkpoints.jsonl` | signed checkpoints, one per line ([`Checkpoint`]) |
//! | `host.key`, `host.pub` | the host's Ed25519 key ([`HostKey`]) |
//! | `digest.key` | the secret that keys the digests of arguments and results ([`DigestKey`]); never exported |
//!
//! The directory is owner-only (0700), and so are the files in it (0600).
//!
//! Each record holds the sha256 of the line before it (`prev`), so changing,
//! removing, inserting or reordering a record breaks the chain at that
//! record. Every second or so (and on shutdown) the host signs a
//! [`Checkpoint`]: the number of records, the trail's length in bytes and
//! the hash of the last record. A checkpoint fixes everything before it: a
//! trail cut short, or rewritten with a consistent chain, no longer matches
//! the signature, and only the holder of the host's key can sign a new one.
//!
//! [`AuditLog`] is the writer. [`AuditLog::append`] returns only once the
//! record is on disk (`fdatasync`); concurrent appends share one sync (group
//! commit). There is no update or delete: the only ways to write are
//! appending a record and appending a checkpoint. [`verify`] checks a trail
//! (the host's own, or an export given to a third party with the host's
//! public key) and names the first thing that is wrong; [`Filter`] selects
//! records for `zhongtai audit show` and the admin API.
//!
//! A long trail is kept in segments: the two files above are the open
//! segment, and sealed ones (a million records each by default) move to
//! `segments/<first record>/` with the same two files, so that old
//! records can be archived and no reader holds more than one segment's
//! checkpoints (see [`Segment`]).
//!
//! [`merkle`] holds the RFC 6962 Merkle tree over leaf hashes — tree
//! heads, inclusion and consistency proofs and their verifiers — on which
//! proofs of single records and of a log that only grew are built;
//! [`note`] writes and checks tree heads as C2SP checkpoints in signed
//! notes, and witnesses' cosignatures of them.
//!
//! Modules, in dependency order: `record` (the format), `time`, `problem`,
//! `chain` (walking the hash chain), `segment` (the files of a long
//! trail), `trail` (reading), `verify`, `log` (the writer), `key`,
//! `merkle` and `note` (standalone).

mod chain;
mod digest;
mod key;
mod log;
pub mod merkle;
pub mod note;
mod problem;
mod proof;
mod record;
mod segment;
mod time;
mod trail;
mod tree;
mod verify;

use std::path::Path;

pub use digest::{DIGEST_KEY_FILE, DIGEST_PREFIX, DigestKey, RequestKey};
pub use key::{HostKey, VerifyKey, same_secret};
pub use log::{
    AuditLog, AuditOptions, CheckpointSink, SyncObserver, SyncReport, Witness, default_origin,
};
pub use problem::Problem;
pub use proof::{
    COSIGNATURES_FILE, ConsistencyProof, CosignError, InclusionProof, ProofError, Prover,
    open_checkpoint,
};
pub use record::{
    Checkpoint, Entry, GENESIS, Kind, MAX_FIELD_BYTES, Record, hash_json, sha256_hex,
};
pub use segment::{SEGMENTS_DIR, Segment, segments};
pub use time::{format_time, parse_time};
pub use trail::{Filter, Page, Trail, each_record, latest};
pub use tree::TREE_FILE;
pub use verify::{Report, export, verify, verify_dir};

/// The records file in a trail directory.
pub const TRAIL_FILE: &str = "trail.jsonl";
/// The checkpoints file in a trail directory.
pub const CHECKPOINTS_FILE: &str = "checkpoints.jsonl";
/// The host's secret key in a trail directory.
pub const KEY_FILE: &str = "host.key";
/// The host's public key in a trail directory.
pub const PUBLIC_KEY_FILE: &str = "host.pub";

/// Why the trail could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A key file is not a key.
    #[error("{path}: not a zhongtai Ed25519 key: {message}")]
    Key {
        /// The file.
        path: String,
        /// What was expected.
        message: String,
    },
    /// The trail on disk does not verify, so the host will not add to it.
    #[error(
        "the audit trail in {dir} does not verify, so nothing more is appended to it: {problem} \
         (run `zhongtai audit verify` for details; keep the directory as evidence and start with an empty one)"
    )]
    Broken {
        /// The trail directory.
        dir: String,
        /// The first problem.
        problem: Problem,
    },
    /// A write failed (a full disk, say): the records of that write were
    /// not kept; the next append tries again.
    #[error("the audit trail could not be written: {0}")]
    Unavailable(String),
}

/// Makes `dir` (and its parents) if missing and makes it owner-only
/// (0700): trails, keys and state are nobody else's to read.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

impl AuditError {
    pub(crate) fn io(path: &Path, error: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            message: error.to_string(),
        }
    }
}
