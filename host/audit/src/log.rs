//! The writer: appends records durably with group commit, and signs
//! checkpoints on a timer.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::chain::check_links;
use crate::digest::{DIGEST_KEY_FILE, DigestKey};
use crate::merkle;
use crate::merkle::Hash;
use crate::note::{self, TreeHead};
use crate::problem::Problem;
use crate::proof::{self, ConsistencyProof, CosignError, InclusionProof, ProofError, Witnessing};
use crate::record::{Checkpoint, Entry, GENESIS, Kind, Record, sha256_hex, split_lines};
use crate::segment::{self, SealError};
use crate::time::format_time;
use crate::tree::Stored;
use crate::tree::{TREE_FILE, TreeFile};
use crate::{
    AuditError, CHECKPOINTS_FILE, HostKey, KEY_FILE, PUBLIC_KEY_FILE, TRAIL_FILE, VerifyKey,
};

/// Where a trail's checkpoints are also published once they are signed and
/// on disk (a shared database, for an auditor who sees every host's head
/// in one place). A failure to publish is the publisher's to report; the
/// trail goes on.
#[derive(Clone)]
pub struct CheckpointSink(pub Arc<dyn Fn(&Checkpoint) + Send + Sync>);

impl std::fmt::Debug for CheckpointSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckpointSink")
    }
}

/// What one write of the trail did: how long the write and its sync took,
/// how many records and bytes it made durable, and whether it succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    /// From the start of the write to the end of its `fdatasync`.
    pub duration: Duration,
    /// Records the write made durable (or, when it failed, dropped).
    pub records: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Whether the records are durable.
    pub ok: bool,
}

/// Told of every write of the trail (for metrics), on the writer's thread
/// once the write's appenders have been answered.
#[derive(Clone)]
pub struct SyncObserver(pub Arc<dyn Fn(SyncReport) + Send + Sync>);

impl std::fmt::Debug for SyncObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncObserver")
    }
}

/// How often the host signs a checkpoint, and who it is.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// At most this long between a record and the checkpoint covering it.
    pub checkpoint_interval: Duration,
    /// A checkpoint also follows this many uncovered records.
    pub checkpoint_records: u64,
    /// The open segment is sealed once it holds this many records (at
    /// the next checkpoint covering all of them) and a new one begins.
    pub segment_records: u64,
    /// Names the host in every record it writes (when several hosts share
    /// one platform).
    pub host: Option<String>,
    /// Also publishes each checkpoint here.
    pub publish: Option<CheckpointSink>,
    /// Told of every write and sync of the trail.
    pub observe: Option<SyncObserver>,
    /// The log's name in its C2SP checkpoints (and the name its
    /// signatures are made under): [`default_origin`] when `None`. Keep
    /// it once chosen: witnesses know a log by it.
    pub origin: Option<String>,
    /// The witnesses whose cosignatures of checkpoints the host accepts
    /// and publishes.
    pub witnesses: Vec<Witness>,
}

/// A witness: another party that checks each checkpoint extends the last
/// one it saw, and cosigns it.
#[derive(Debug, Clone)]
pub struct Witness {
    /// Its name, as its cosignature lines give it.
    pub name: String,
    /// Its public key.
    pub key: VerifyKey,
}

/// The origin of the log signed with `key` when none is configured:
/// `zhongtai/audit/` and the first 8 bytes of the key's SHA-256, in hex —
/// the same for as long as the host keeps its key.
pub fn default_origin(key: &VerifyKey) -> String {
    let hash = sha256_hex(key.to_base64().as_bytes());
    format!("zhongtai/audit/{}", &hash[..16])
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_records: 10_000,
            segment_records: 1_000_000,
            host: None,
            publish: None,
            observe: None,
            origin: None,
            witnesses: Vec::new(),
        }
    }
}

/// The writer's state: records not yet on disk, and what is.
struct State {
    /// The next sequence number.
    next: u64,
    /// The hash of the last record appended (on disk or not).
    prev: String,
    /// Records appended but not yet written, in order.
    buffer: Vec<u8>,
    /// Whether a thread is writing and syncing now.
    syncing: bool,
    /// Records on disk.
    durable: u64,
    /// Bytes on disk.
    durable_bytes: u64,
    /// The hash of the last record on disk.
    durable_head: String,
    /// The Merkle tree head of the records on disk.
    durable_root: Hash,
    /// Why the last write failed, if one did.
    failed: Option<String>,
    /// How many writes have failed: records appended before a failure
    /// that were not on disk by then were dropped with it.
    failures: u64,
    /// Why the writer can append no more (its files were moved by a seal
    /// it could not finish): a restart finishes the seal.
    lost: Option<String>,
    /// Appenders waiting asynchronously: the sequence number their records
    /// end before, and how to tell them.
    waiters: Vec<(u64, Notify)>,
    /// A seal asks the writer thread not to start a write.
    hold: bool,
    /// The log is being dropped: the writer thread writes what is left
    /// and ends.
    closing: bool,
}

/// Tells an asynchronous appender that its records are on disk, or why
/// they were dropped.
type Notify = tokio::sync::oneshot::Sender<Result<(), String>>;

struct Signer {
    file: File,
    last: Checkpoint,
}

struct Inner {
    dir: PathBuf,
    key: HostKey,
    digests: DigestKey,
    options: AuditOptions,
    state: Mutex<State>,
    /// Signalled when records are appended (or a seal is done): the
    /// writer thread waits on it.
    pending: Condvar,
    /// Signalled after every write.
    synced: Condvar,
    file: Mutex<File>,
    signer: Mutex<Signer>,
    covered: AtomicU64,
    /// The first record of the open segment; changed by a seal, under the
    /// signer's lock.
    segment_start: AtomicU64,
    /// The Merkle tree of all records, and its file; the writer thread
    /// appends to it after each write, before the records count as
    /// durable.
    tree: Mutex<TreeFile>,
    /// The tree file, opened for reading proofs.
    tree_reader: File,
    /// The log's name in its checkpoints.
    origin: String,
    /// The last checkpoint's signed note.
    latest: Mutex<Option<String>>,
    /// Witnesses' cosignatures.
    witnessing: Mutex<Witnessing>,
    /// Held while the writer lives: one writer per trail.
    _lock: File,
}

/// The append-only writer of one trail directory.
pub struct AuditLog {
    inner: Arc<Inner>,
    writer: Option<JoinHandle<()>>,
    stop: Option<mpsc::Sender<()>>,
    ticker: Option<JoinHandle<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Locks the trail in `dir` against other processes: one writer per trail
/// (a second would fork the chain). The lock goes with the file when the
/// process ends.
fn lock_trail(dir: &Path) -> Result<File, AuditError> {
    let path = dir.join(".lock");
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&path).map_err(|e| AuditError::io(&path, e))?;
    if let Err(e) = file.try_lock() {
        return Err(AuditError::Io {
            path: dir.join(TRAIL_FILE).display().to_string(),
            message: format!(
                "the audit trail is open in another zhongtai process ({e}); stop it or use another data directory"
            ),
        });
    }
    Ok(file)
}

/// Opens `path` for appending and cuts a last line that has no newline (a
/// write the process did not finish); returns the file and what was cut.
fn open_and_trim(path: &Path) -> Result<(File, Vec<u8>), AuditError> {
    let io = |e| AuditError::io(path, e);
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    // A trail written by an earlier version may be readable by others.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    let length = file.metadata().map_err(io)?.len();
    let mut end = length;
    let mut torn = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    // Walk back from the end to the last newline.
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        file.read_exact(part).map_err(io)?;
        if let Some(at) = part.iter().rposition(|&b| b == b'\n') {
            end = start + at as u64 + 1;
            break;
        }
        end = start;
    }
    if end < length {
        file.seek(SeekFrom::Start(end)).map_err(io)?;
        file.read_to_end(&mut torn).map_err(io)?;
        file.set_len(end).map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    Ok((file, torn))
}

/// The trail in `dir` is broken: the writer refuses it.
fn broken(dir: &Path, problem: Problem) -> AuditError {
    AuditError::Broken {
        dir: dir.display().to_string(),
        problem,
    }
}

/// The last checkpoint of the trail in `dir` (an empty one when there is
/// none), checked to be signed by `key`.
fn last_checkpoint(dir: &Path, key: &HostKey) -> Result<Checkpoint, AuditError> {
    let path = dir.join(CHECKPOINTS_FILE);
    let text = fs::read(&path).map_err(|e| AuditError::io(&path, e))?;
    let (lines, _) = split_lines(&text);
    let Some(line) = lines.last() else {
        return Ok(Checkpoint {
            records: 0,
            bytes: 0,
            head: GENESIS.to_owned(),
            time: String::new(),
            key: String::new(),
            signature: String::new(),
            note: None,
        });
    };
    let index = line.number - 1;
    let last = serde_json::from_slice::<Checkpoint>(line.bytes).map_err(|e| {
        broken(
            dir,
            Problem::checkpoint(index, format!("is not a checkpoint: {e}")),
        )
    })?;
    if last.records == 0 {
        return Ok(last);
    }
    let own = key.public();
    if last.key != own.to_base64() {
        return Err(broken(
            dir,
            Problem::checkpoint(
                index,
                format!(
                    "the last checkpoint is signed by key {}, not by this host's key {}: a trail is signed by one key; keep this trail and start a new one for a new key",
                    last.key,
                    own.to_base64()
                ),
            ),
        ));
    }
    if !own.verifies(&last.statement(), &last.signature) {
        return Err(broken(dir, Problem::checkpoint(
            index,
            "the last checkpoint's signature does not match what it says: it was forged or altered".to_owned(),
        )));
    }
    Ok(last)
}

/// Checks the records `trail` (the open segment, whose first record is
/// `segment_start`) holds after the checkpoint `last`: none cut from the
/// end, each chained to the one before. Returns the next sequence number,
/// the last record's hash and the segment's length.
fn check_since(
    dir: &Path,
    trail: &mut File,
    last: &Checkpoint,
    segment_start: u64,
) -> Result<(u64, String, u64), AuditError> {
    let trail_path = dir.join(TRAIL_FILE);
    let io = |e| AuditError::io(&trail_path, e);
    let length = trail.metadata().map_err(io)?.len();
    if length < last.bytes {
        return Err(broken(
            dir,
            Problem::record(
                None,
                format!(
                    "the trail is {length} bytes but the last checkpoint ({}) covers {} bytes and {} records: records were removed from its end",
                    last.time, last.bytes, last.records
                ),
            ),
        ));
    }
    let mut tail = Vec::new();
    trail.seek(SeekFrom::Start(last.bytes)).map_err(io)?;
    trail.read_to_end(&mut tail).map_err(io)?;
    let (lines, _) = split_lines(&tail);
    let lines_before =
        usize::try_from(last.records.saturating_sub(segment_start)).unwrap_or(usize::MAX);
    let (next, prev) = check_links(&lines, last.records, &last.head, lines_before)
        .map_err(|problem| broken(dir, problem))?;
    Ok((next, prev, length))
}

/// Signs a checkpoint every `checkpoint_interval` until the sender is
/// dropped.
fn start_ticker(inner: Arc<Inner>) -> Result<(mpsc::Sender<()>, JoinHandle<()>), AuditError> {
    let (stop, stopped) = mpsc::channel::<()>();
    let dir = inner.dir.clone();
    let ticker = std::thread::Builder::new()
        .name("audit-checkpoints".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(inner.options.checkpoint_interval)
            {
                if let Err(e) = inner.checkpoint() {
                    tracing::error!(error = %e, "audit checkpoint failed");
                }
            }
        })
        .map_err(|e| AuditError::io(&dir, e))?;
    Ok((stop, ticker))
}

impl AuditLog {
    /// Opens the trail in `dir` (made when missing), signing with `key`, or
    /// with `dir/host.key` (made when missing) when `key` is `None`.
    ///
    /// A record the process was writing when it died (no newline yet) is
    /// cut and a [`Kind::Recovery`] record says so. Records written since
    /// the last checkpoint are checked before the host signs them: a trail
    /// that does not verify from its last checkpoint on is refused, so the
    /// host never vouches for records someone changed while it was down.
    pub fn open(
        dir: &Path,
        key: Option<HostKey>,
        options: AuditOptions,
    ) -> Result<Self, AuditError> {
        crate::private_dir(dir).map_err(|e| AuditError::io(dir, e))?;
        let digests = DigestKey::load_or_create(&dir.join(DIGEST_KEY_FILE))?;
        let key = match key {
            Some(key) => key,
            None => HostKey::load_or_create(&dir.join(KEY_FILE))?,
        };
        let lock = lock_trail(dir)?;
        segment::finish_seal(dir)?;
        let trail_path = dir.join(TRAIL_FILE);
        let (mut trail, torn) = open_and_trim(&trail_path)?;

        let checkpoints_path = dir.join(CHECKPOINTS_FILE);
        let (mut checkpoints_file, _) = open_and_trim(&checkpoints_path)?;
        let mut last = last_checkpoint(dir, &key)?;
        let public = dir.join(PUBLIC_KEY_FILE);
        fs::write(&public, key.public().to_text() + "\n")
            .map_err(|e| AuditError::io(&public, e))?;
        let empty = trail
            .metadata()
            .map_err(|e| AuditError::io(&trail_path, e))?
            .len()
            == 0;
        if last.records == 0
            && empty
            && let Some(sealed) = segment::segments(dir)?.into_iter().rev().find(|s| s.sealed)
        {
            // The open segment's files are gone (or were never written
            // after a seal): open it again after the last sealed record,
            // so that numbering goes on from there.
            let end = last_checkpoint(&sealed.dir, &key)?;
            last = sign(&key, None, end.records, 0, end.head);
            last.note = end.note;
            write_checkpoint(&mut checkpoints_file, &checkpoints_path, &last)?;
        }
        let segment_start = segment::opening(&checkpoints_path)?.map_or(0, |c| c.records);
        let (next, prev, length) = check_since(dir, &mut trail, &last, segment_start)?;
        let origin = options
            .origin
            .clone()
            .unwrap_or_else(|| default_origin(&key.public()));
        let tree = open_tree(dir, &last, next)?;
        let tree_path = dir.join(TREE_FILE);
        let tree_reader = File::open(&tree_path).map_err(|e| AuditError::io(&tree_path, e))?;
        let witnessing = Witnessing::open(dir, &options.witnesses, next)?;
        let latest = last.note.clone();

        let inner = Arc::new(Inner {
            dir: dir.to_owned(),
            key,
            digests,
            options,
            state: Mutex::new(State {
                next,
                prev: prev.clone(),
                buffer: Vec::new(),
                syncing: false,
                durable: next,
                durable_bytes: length,
                durable_head: prev,
                durable_root: tree.root(),
                failed: None,
                failures: 0,
                lost: None,
                waiters: Vec::new(),
                hold: false,
                closing: false,
            }),
            pending: Condvar::new(),
            synced: Condvar::new(),
            file: Mutex::new(trail),
            covered: AtomicU64::new(last.records),
            segment_start: AtomicU64::new(segment_start),
            signer: Mutex::new(Signer {
                file: checkpoints_file,
                last,
            }),
            tree: Mutex::new(tree),
            tree_reader,
            origin,
            latest: Mutex::new(latest),
            witnessing: Mutex::new(witnessing),
            _lock: lock,
        });
        let writer = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("audit-writer".into())
                .spawn(move || inner.write_loop())
                .map_err(|e| AuditError::io(dir, e))?
        };
        // From here on, dropping `log` stops the writer.
        let mut log = Self {
            inner,
            writer: Some(writer),
            stop: None,
            ticker: None,
        };
        let inner = &log.inner;
        if !torn.is_empty() {
            let mut entry = Entry::new(Kind::Recovery);
            entry.action = Some("discard-partial-record".to_owned());
            entry.detail = Some(format!(
                "the host stopped while writing a record and was never answered for it; its {} bytes (sha256 {}) were cut from the end of the trail",
                torn.len(),
                sha256_hex(&torn)
            ));
            inner.append(entry)?;
        }
        inner.checkpoint()?;
        let (stop, ticker) = start_ticker(inner.clone())?;
        log.stop = Some(stop);
        log.ticker = Some(ticker);
        Ok(log)
    }

    /// Appends `entry`; returns its sequence number once it is on disk.
    pub fn append(&self, entry: Entry) -> Result<u64, AuditError> {
        self.inner.append(entry)
    }

    /// Appends `entries` in order as one write; returns their sequence
    /// numbers once all are on disk.
    pub fn append_all(&self, entries: Vec<Entry>) -> Result<std::ops::Range<u64>, AuditError> {
        self.inner.append_all(entries)
    }

    /// [`AuditLog::append_all`] for async code: the records are chained
    /// at once, and the future resolves once they are on disk without
    /// holding a thread while the writer syncs.
    pub fn append_all_async(
        &self,
        entries: Vec<Entry>,
    ) -> impl Future<Output = Result<std::ops::Range<u64>, AuditError>> + Send + 'static {
        let (notify, done) = tokio::sync::oneshot::channel();
        let enqueued = self.inner.enqueue(entries, Some(notify));
        async move {
            let (range, _) = enqueued?;
            match done.await {
                Ok(Ok(())) => Ok(range),
                Ok(Err(failure)) => Err(AuditError::Unavailable(failure)),
                Err(_) => Err(AuditError::Unavailable(
                    "the audit trail's writer stopped".into(),
                )),
            }
        }
    }

    /// Signs a checkpoint covering every record on disk now, unless the
    /// last one already does; returns it if one was written.
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        self.inner.checkpoint()
    }

    /// The trail's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The public key checkpoints are signed with.
    pub fn public_key(&self) -> crate::VerifyKey {
        self.inner.key.public()
    }

    /// The secret that keys the digests of arguments and results.
    pub fn digests(&self) -> &DigestKey {
        &self.inner.digests
    }

    /// The log's name in its checkpoints.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// How many records the latest checkpoint covers.
    pub fn signed_size(&self) -> u64 {
        self.inner.covered.load(Ordering::Acquire)
    }

    /// The latest checkpoint as a signed note, with the witnesses'
    /// cosignatures of it; `None` before the first.
    pub fn latest_checkpoint(&self) -> Option<String> {
        let latest = lock(&self.inner.latest).clone()?;
        let size = TreeHead::parse(note::body(&latest).ok()?).ok()?.size;
        Some(latest + &lock(&self.inner.witnessing).lines_for(size))
    }

    /// The latest checkpoint a witness cosigned, with every cosignature of
    /// it; `None` when no witness has cosigned one yet.
    pub fn witnessed_checkpoint(&self) -> Result<Option<String>, ProofError> {
        let Some(size) = lock(&self.inner.witnessing).witnessed() else {
            return Ok(None);
        };
        self.inner.checkpoint_at(size).map(Some)
    }

    /// The proof that record `seq` is in the tree of `size` records (the
    /// latest checkpoint's when `None`).
    pub fn inclusion_proof(
        &self,
        seq: u64,
        size: Option<u64>,
    ) -> Result<InclusionProof, ProofError> {
        let inner = &self.inner;
        inner.proofs_available()?;
        proof::prove_inclusion(&inner.source(), seq, size, |size| inner.checkpoint_at(size))
    }

    /// [`AuditLog::inclusion_proof`] with the record's line, for whoever
    /// may read the record (its department, the operator).
    pub fn inclusion_proof_with_record(
        &self,
        seq: u64,
        size: Option<u64>,
    ) -> Result<InclusionProof, ProofError> {
        let mut proof = self.inclusion_proof(seq, size)?;
        proof.record = proof::record_line(&self.inner.dir, seq)
            .map_err(|e| ProofError::Unavailable(e.to_string()))?;
        Ok(proof)
    }

    /// The proof that the tree of `from` records is a prefix of the tree
    /// of `to` (the latest checkpoint's when `None`).
    pub fn consistency_proof(
        &self,
        from: u64,
        to: Option<u64>,
    ) -> Result<ConsistencyProof, ProofError> {
        let inner = &self.inner;
        inner.proofs_available()?;
        proof::prove_consistency(&inner.source(), from, to, |size| inner.checkpoint_at(size))
    }

    /// Keeps and publishes the witnesses' cosignatures on `note`, a
    /// checkpoint this log signed; returns the witnesses' names.
    pub fn add_cosignatures(&self, note: &str) -> Result<Vec<String>, CosignError> {
        let inner = &self.inner;
        let head = proof::open_checkpoint(note, &inner.origin, &inner.key.public())
            .map_err(CosignError::NotOurs)?;
        let signed = self.signed_size();
        let ours = head.size <= signed
            && head.size > 0
            && lock(&inner.tree).behind().is_none()
            && merkle::stored_root(&Stored(&inner.tree_reader), head.size).ok() == Some(head.root);
        if !ours {
            return Err(CosignError::NotOurs(format!(
                "the checkpoint of {} records is not one this log signed (its latest covers {signed})",
                head.size
            )));
        }
        lock(&inner.witnessing).add(note, &head)
    }
}

impl Drop for AuditLog {
    /// Stops the timer and signs a last checkpoint, so a clean shutdown
    /// leaves every record covered.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
        lock(&self.inner.state).closing = true;
        self.inner.pending.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        if let Err(e) = self.inner.checkpoint() {
            tracing::error!(error = %e, "audit checkpoint at shutdown failed");
        }
    }
}

impl Inner {
    /// Refuses proofs while the tree file is behind the tree.
    fn proofs_available(&self) -> Result<(), ProofError> {
        match lock(&self.tree).behind() {
            Some(why) => Err(ProofError::Unavailable(format!(
                "the log's Merkle tree could not be written ({why}); proofs are served again once the host restarts"
            ))),
            None => Ok(()),
        }
    }

    /// What proofs are made from.
    fn source(&self) -> proof::Source<'_> {
        proof::Source {
            tree: &self.tree_reader,
            tree_path: self.dir.join(TREE_FILE),
            origin: &self.origin,
            signed: self.covered.load(Ordering::Acquire),
        }
    }

    /// The checkpoint of the tree of `size` records (at most the latest
    /// checkpoint's), signed, with the cosignatures of it. Signatures are
    /// deterministic: the checkpoint of a size signed before is the same
    /// note again.
    fn checkpoint_at(&self, size: u64) -> Result<String, ProofError> {
        let latest = lock(&self.latest).clone().filter(|latest| {
            note::body(latest)
                .ok()
                .and_then(|body| TreeHead::parse(body).ok())
                .is_some_and(|head| head.size == size)
        });
        let note = match latest {
            Some(note) => note,
            None => {
                let root = merkle::stored_root(&Stored(&self.tree_reader), size)
                    .map_err(|e| self.source().unreadable(e))?;
                let head = TreeHead {
                    origin: self.origin.clone(),
                    size,
                    root,
                };
                note::sign(&head.body(), &self.origin, &self.key)
            }
        };
        Ok(note + &lock(&self.witnessing).lines_for(size))
    }

    fn append(&self, entry: Entry) -> Result<u64, AuditError> {
        self.append_all(vec![entry]).map(|range| range.start)
    }

    fn append_all(&self, entries: Vec<Entry>) -> Result<std::ops::Range<u64>, AuditError> {
        let (range, failures) = self.enqueue(entries, None)?;
        let mut state = lock(&self.state);
        while state.durable < range.end {
            if state.failures != failures {
                let failure = state.failed.clone().unwrap_or_default();
                return Err(AuditError::Unavailable(failure));
            }
            state = self.synced.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        Ok(range)
    }

    /// Chains `entries` after the last record and hands them to the
    /// writer thread; `waiter` is told when they are on disk (or dropped).
    /// Returns their numbers and the failure count they were added under.
    fn enqueue(
        &self,
        entries: Vec<Entry>,
        waiter: Option<Notify>,
    ) -> Result<(std::ops::Range<u64>, u64), AuditError> {
        let mut state = lock(&self.state);
        if let Some(lost) = &state.lost {
            return Err(AuditError::Unavailable(lost.clone()));
        }
        let first = state.next;
        let time = format_time(SystemTime::now());
        for mut entry in entries {
            if entry.host.is_none() {
                entry.host.clone_from(&self.options.host);
            }
            entry.bound();
            let record = Record {
                seq: state.next,
                prev: state.prev.clone(),
                time: time.clone(),
                entry,
            };
            let line = serde_json::to_vec(&record).map_err(|e| AuditError::Io {
                path: self.dir.join(TRAIL_FILE).display().to_string(),
                message: format!("record not serializable: {e}"),
            })?;
            state.prev = sha256_hex(&line);
            state.buffer.extend_from_slice(&line);
            state.buffer.push(b'\n');
            state.next += 1;
        }
        let range = first..state.next;
        if let Some(notify) = waiter {
            if range.is_empty() {
                let _ = notify.send(Ok(()));
            } else {
                state.waiters.push((range.end, notify));
            }
        }
        let failures = state.failures;
        drop(state);
        self.pending.notify_one();
        Ok((range, failures))
    }

    /// The writer thread: writes and syncs everything appended so far, one
    /// write at a time (group commit: the records appended while one write
    /// is syncing go together in the next), tells the appenders, and signs
    /// a checkpoint or seals the segment when one is due. Ends once the
    /// log is closing and everything appended is written.
    fn write_loop(&self) {
        let mut state = lock(&self.state);
        loop {
            if !state.hold && !state.buffer.is_empty() {
                state = self.write_pending(state);
                continue;
            }
            if state.closing && state.buffer.is_empty() {
                return;
            }
            state = self.pending.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Writes the buffer (the caller holds `state` and found it not empty).
    fn write_pending<'a>(&'a self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        state.syncing = true;
        let buffer = std::mem::take(&mut state.buffer);
        let (upto, head) = (state.next, state.prev.clone());
        let durable_bytes = state.durable_bytes;
        let records = upto.saturating_sub(state.durable);
        drop(state);
        let started = Instant::now();
        let written = {
            let mut file = lock(&self.file);
            let written = file.write_all(&buffer).and_then(|()| file.sync_data());
            if written.is_err() {
                // Cut what part of the write landed: the trail ends
                // with its last durable record again.
                let _ = file.set_len(durable_bytes).and_then(|()| file.sync_all());
            }
            written
        };
        // The records count as durable once the tree holds them too, so
        // that every checkpoint's tree head is of records on disk.
        let root = written.is_ok().then(|| {
            let mut tree = lock(&self.tree);
            let lines = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
            tree.append(lines.split(|&b| b == b'\n'));
            tree.root()
        });
        let report = SyncReport {
            duration: started.elapsed(),
            records,
            bytes: buffer.len() as u64,
            ok: written.is_ok(),
        };
        let mut state = lock(&self.state);
        state.syncing = false;
        let told: Vec<(Notify, Result<(), String>)> = match written {
            Ok(()) => {
                state.durable = upto;
                state.durable_bytes += buffer.len() as u64;
                state.durable_head = head;
                if let Some(root) = root {
                    state.durable_root = root;
                }
                state.failed = None;
                let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.waiters)
                    .into_iter()
                    .partition(|(end, _)| *end <= upto);
                state.waiters = waiting;
                done.into_iter()
                    .map(|(_, notify)| (notify, Ok(())))
                    .collect()
            }
            Err(e) => {
                // Not a latch: the records of this write, and those
                // chained after them meanwhile, are dropped (their
                // appenders are told), and the next append starts
                // again from the last durable record. A full disk
                // refuses work while it is full, not until a restart.
                let failure = AuditError::io(&self.dir.join(TRAIL_FILE), e).to_string();
                tracing::error!(error = %failure, "audit records not written");
                state.failed = Some(failure.clone());
                state.failures += 1;
                state.buffer.clear();
                state.next = state.durable;
                state.prev = state.durable_head.clone();
                std::mem::take(&mut state.waiters)
                    .into_iter()
                    .map(|(_, notify)| (notify, Err(failure.clone())))
                    .collect()
            }
        };
        self.synced.notify_all();
        let durable = state.durable;
        drop(state);
        for (notify, result) in told {
            let _ = notify.send(result);
        }
        if let Some(observe) = &self.options.observe {
            (observe.0)(report);
        }
        let due = durable.saturating_sub(self.covered.load(Ordering::Relaxed))
            >= self.options.checkpoint_records
            || self.segment_due(durable);
        if due && let Err(e) = self.checkpoint() {
            tracing::error!(error = %e, "audit checkpoint failed");
        }
        lock(&self.state)
    }

    fn checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        let mut signer = lock(&self.signer);
        let (records, bytes, head, root) = {
            let state = lock(&self.state);
            (
                state.durable,
                state.durable_bytes,
                state.durable_head.clone(),
                state.durable_root,
            )
        };
        // A trail written before it had a tree gets its first tree head
        // at once.
        let due = records > signer.last.records || (records > 0 && signer.last.note.is_none());
        let written = if due {
            Some(self.sign_and_write(&mut signer, records, bytes, head, root)?)
        } else {
            None
        };
        // Also when no checkpoint was due: a seal that could not start
        // before is tried again.
        if self.segment_due(signer.last.records) {
            self.seal(&mut signer);
        }
        Ok(written)
    }

    /// Whether the open segment, with `records` records in the trail, is
    /// due to be sealed.
    fn segment_due(&self, records: u64) -> bool {
        records.saturating_sub(self.segment_start.load(Ordering::Relaxed))
            >= self.options.segment_records
    }

    /// Signs a checkpoint of `records` records ending with `head`, `bytes`
    /// into the open segment, with the tree head `root`, writes it, and
    /// publishes it. The tree file holds that tree already (the writer
    /// appends to it before records count as durable); it is not synced
    /// here: a process killed keeps it in the page cache, and after a
    /// power loss the host finds it short of the signed head on start and
    /// makes it again from the records, which are synced.
    fn sign_and_write(
        &self,
        signer: &mut Signer,
        records: u64,
        bytes: u64,
        head: String,
        root: Hash,
    ) -> Result<Checkpoint, AuditError> {
        let tree = TreeHead {
            origin: self.origin.clone(),
            size: records,
            root,
        };
        let checkpoint = sign(&self.key, Some(&tree), records, bytes, head);
        let path = self.dir.join(CHECKPOINTS_FILE);
        write_checkpoint(&mut signer.file, &path, &checkpoint)?;
        signer.last = checkpoint.clone();
        lock(&self.latest).clone_from(&checkpoint.note);
        self.covered.store(records, Ordering::Release);
        if let Some(publish) = &self.options.publish {
            (publish.0)(&checkpoint);
        }
        Ok(checkpoint)
    }

    /// Seals the open segment: waits for the write in flight, signs a
    /// checkpoint covering every record on disk if the last one does not,
    /// and moves the segment's files while no write can start. Records
    /// appended meanwhile wait in the buffer and go to the new segment.
    fn seal(&self, signer: &mut Signer) {
        let mut state = lock(&self.state);
        state.hold = true;
        while state.syncing {
            state = self.synced.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        self.seal_held(signer, &mut state);
        state.hold = false;
        drop(state);
        self.pending.notify_all();
    }

    /// [`Inner::seal`] once no write is in flight and none can start.
    fn seal_held(&self, signer: &mut Signer, state: &mut State) {
        if state.durable > signer.last.records {
            let head = state.durable_head.clone();
            if let Err(error) = self.sign_and_write(
                signer,
                state.durable,
                state.durable_bytes,
                head,
                state.durable_root,
            ) {
                tracing::warn!(error = %error, "the audit segment could not be sealed; it stays open for now");
                return;
            }
        }
        let mut file = lock(&self.file);
        let sealed = signer.last.clone();
        let opening = Checkpoint {
            note: sealed.note.clone(),
            ..sign(&self.key, None, sealed.records, 0, sealed.head.clone())
        };
        let first = self.segment_start.load(Ordering::Relaxed);
        match segment::seal(&self.dir, first, &opening) {
            Ok(()) => {}
            Err(SealError::NotStarted(error)) => {
                tracing::warn!(error = %error, "the audit segment could not be sealed; it stays open for now");
                return;
            }
            Err(SealError::Interrupted(error)) => {
                tracing::error!(error = %error, "sealing the audit segment was interrupted; finishing it");
                if let Err(error) = segment::finish_seal(&self.dir) {
                    state.lost = Some(format!(
                        "sealing a segment of the trail failed ({error}); restart the host to finish it"
                    ));
                    return;
                }
            }
        }
        let reopened = open_and_trim(&self.dir.join(TRAIL_FILE)).and_then(|(trail, _)| {
            let (checkpoints, _) = open_and_trim(&self.dir.join(CHECKPOINTS_FILE))?;
            Ok((trail, checkpoints))
        });
        match reopened {
            Ok((trail, checkpoints)) => {
                *file = trail;
                signer.file = checkpoints;
                signer.last = opening;
                self.segment_start.store(sealed.records, Ordering::Relaxed);
                state.durable_bytes = 0;
                tracing::info!(
                    records = sealed.records,
                    "sealed an audit segment; new records go to a new one"
                );
            }
            Err(error) => {
                state.lost = Some(format!(
                    "the trail's new segment could not be opened ({error}); restart the host"
                ));
            }
        }
    }
}

/// A checkpoint of `records` records ending with `head`, `bytes` into
/// its segment's file, signed now with `key`; with `tree` (the Merkle
/// tree head of the same records) as a signed note when given.
fn sign(
    key: &HostKey,
    tree: Option<&TreeHead>,
    records: u64,
    bytes: u64,
    head: String,
) -> Checkpoint {
    let mut checkpoint = Checkpoint {
        records,
        bytes,
        head,
        time: format_time(SystemTime::now()),
        key: key.public().to_base64(),
        signature: String::new(),
        note: tree.map(|tree| note::sign(&tree.body(), &tree.origin, key)),
    };
    checkpoint.signature = key.sign(&checkpoint.statement());
    checkpoint
}

/// Opens the trail's Merkle tree and brings it to the `records` records
/// on disk. The part the last checkpoint `last` signed is kept when its
/// head is the one signed; the rest is made again from the records (a
/// trail from before the tree is hashed whole, once).
fn open_tree(dir: &Path, last: &Checkpoint, records: u64) -> Result<TreeFile, AuditError> {
    let mut tree = TreeFile::open(&dir.join(TREE_FILE))?;
    let signed = last
        .note
        .as_deref()
        .and_then(|text| TreeHead::parse(note::body(text).ok()?).ok())
        .filter(|head| head.size == last.records && head.size <= tree.size());
    let keep = match signed {
        Some(head) if tree.root_at(head.size)? == head.root => head.size,
        _ => 0,
    };
    tree.truncate(keep)?;
    if keep < records {
        if keep == 0 && records > 1000 {
            tracing::info!(
                records,
                "making the audit trail's Merkle tree from its records"
            );
        }
        feed_records(dir, &mut tree, records)?;
    }
    if tree.size() != records {
        return Err(AuditError::Io {
            path: dir.join(TREE_FILE).display().to_string(),
            message: format!(
                "the Merkle tree could be made of {} records but the trail holds {records}",
                tree.size()
            ),
        });
    }
    tree.sync()?;
    Ok(tree)
}

/// Appends to `tree` the records it lacks, up to `records`, read from
/// the trail's segments.
fn feed_records(dir: &Path, tree: &mut TreeFile, records: u64) -> Result<(), AuditError> {
    use std::io::BufRead;
    let from = tree.size();
    let listed = segment::listed(dir)?;
    let start = listed.first().map_or(0, |s| s.first);
    if start > from {
        return Err(AuditError::Io {
            path: dir.join(TREE_FILE).display().to_string(),
            message: format!(
                "the Merkle tree must be made again from record {from} on, but the trail's first segment starts at record {start}: put the archived segments back under {}/ for one start of the host",
                segment::SEGMENTS_DIR
            ),
        });
    }
    for (index, segment) in listed.iter().enumerate() {
        let end = listed.get(index + 1).map_or(records, |next| next.first);
        if end <= tree.size() {
            continue;
        }
        let path = segment.dir.join(TRAIL_FILE);
        let io = |e| AuditError::io(&path, e);
        let (mut seq, mut reader) = segment::records_from(segment, from.max(segment.first))?;
        // Lines to add, appended a few thousand at a time.
        let mut batch = Vec::new();
        let mut lines = 0;
        while seq < end {
            let at = batch.len();
            if reader.read_until(b'\n', &mut batch).map_err(io)? == 0 || !batch.ends_with(b"\n") {
                batch.truncate(at);
                break;
            }
            if seq < from {
                batch.truncate(at);
            } else {
                lines += 1;
            }
            seq += 1;
            if lines == 4096 {
                add_lines(tree, &batch);
                (batch, lines) = (Vec::new(), 0);
            }
        }
        add_lines(tree, &batch);
    }
    Ok(())
}

/// Appends the newline-ended `lines` to `tree`.
fn add_lines(tree: &mut TreeFile, lines: &[u8]) {
    if let Some(lines) = lines.strip_suffix(b"\n") {
        tree.append(lines.split(|&b| b == b'\n'));
    }
}

/// Appends `checkpoint` to the checkpoints file `file` (at `path`) and
/// syncs it.
fn write_checkpoint(
    file: &mut File,
    path: &Path,
    checkpoint: &Checkpoint,
) -> Result<(), AuditError> {
    let mut line = serde_json::to_vec(checkpoint).unwrap_or_default();
    line.push(b'\n');
    file.write_all(&line)
        .and_then(|()| file.sync_data())
        .map_err(|e| AuditError::io(path, e))
}
