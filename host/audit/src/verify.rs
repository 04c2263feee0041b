//! Checking a trail, and exporting it for a third party.
//!
//! [`verify`] walks the records in order — each must carry the next
//! sequence number and the hash of the line before it — and then every
//! checkpoint: signed by the expected key, over records that are all still
//! there, whose last record still hashes to what was signed. It names the
//! first thing that is wrong: which record, on which line, and what was done
//! to it as far as the trail can tell (changed, removed, reordered, cut off,
//! or a checkpoint forged).

use std::fmt;
use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::chain::{chain, short};
use crate::merkle::{self, Frontier};
use crate::note::{self, TreeHead};
use crate::problem::Problem;
use crate::record::{Checkpoint, split_lines};
use crate::segment::{self, Segment, Start};
use crate::trail::Trail;
use crate::{AuditError, CHECKPOINTS_FILE, PUBLIC_KEY_FILE, TRAIL_FILE, VerifyKey};

/// What a trail that verifies holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Records in the trail (numbered `0..records`).
    pub records: u64,
    /// The first record present: those before it are in segments that
    /// were archived elsewhere (0 when none were).
    pub first_record: u64,
    /// Segments (1 for a trail never sealed).
    pub segments: usize,
    /// Checkpoints.
    pub checkpoints: usize,
    /// Records covered by the last checkpoint; the rest are chained but not
    /// yet signed.
    pub signed: u64,
    /// When the last checkpoint was signed.
    pub last_checkpoint: Option<String>,
    /// The time of the first record.
    pub first: Option<String>,
    /// The time of the last record.
    pub last: Option<String>,
    /// The key checkpoints were checked against.
    pub key: String,
    /// Bytes after the last complete record (a record being written).
    pub incomplete_bytes: usize,
    /// Checkpoints carrying a Merkle tree head (a C2SP checkpoint) whose
    /// signature was checked.
    pub tree_heads: usize,
    /// Whether those tree heads were also computed again from the records
    /// (not when the first records are archived elsewhere).
    pub tree_heads_recomputed: bool,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "trail verifies: {} records, {} checkpoints signed by {}",
            self.records, self.checkpoints, self.key
        )?;
        if self.segments > 1 {
            writeln!(f, "in {} segments", self.segments)?;
        }
        if self.first_record > 0 {
            writeln!(
                f,
                "records 0 to {} are not here: their segments were archived (this trail starts with a checkpoint of them)",
                self.first_record - 1
            )?;
        }
        if let (Some(first), Some(last)) = (&self.first, &self.last) {
            writeln!(f, "records from {first} to {last}")?;
        }
        match &self.last_checkpoint {
            Some(time) => writeln!(
                f,
                "the last checkpoint ({time}) covers {} records; {} after it are chained but not yet signed",
                self.signed,
                self.records - self.signed
            )?,
            None => writeln!(
                f,
                "no checkpoint yet: the {} records are chained but not signed",
                self.records
            )?,
        }
        if self.tree_heads > 0 {
            let how = if self.tree_heads_recomputed {
                "each equal to the Merkle tree of the records it covers"
            } else {
                "signed (not computed again: the first records are archived)"
            };
            writeln!(
                f,
                "{} checkpoints carry a Merkle tree head, {how}",
                self.tree_heads
            )?;
        }
        if self.incomplete_bytes > 0 {
            writeln!(
                f,
                "{} bytes after the last record are a record still being written (or cut short by a crash); they are not counted",
                self.incomplete_bytes
            )?;
        }
        Ok(())
    }
}

/// How much of a trail is read at a time when verifying: memory stays
/// near this however long the trail is.
const BLOCK_BYTES: usize = 8 * 1024 * 1024;

/// Checks `trail` (one segment read into memory: the open one for
/// [`Trail::read`]) against the host's public `key`.
pub fn verify(trail: &Trail, key: &VerifyKey) -> Result<Report, Problem> {
    let start = start_of(&trail.checkpoints);
    let mut tree = (start.seq == 0).then(Frontier::new);
    match walk(
        trail.records.as_slice(),
        &trail.checkpoints,
        key,
        BLOCK_BYTES,
        &start,
        &mut tree,
    ) {
        Ok(checked) => checked.map(|(report, _)| report),
        Err(error) => unreachable!("reading a trail in memory failed: {error}"),
    }
}

/// Where the segment whose checkpoints are `checkpoints` starts: after its
/// opening checkpoint, or at record 0.
fn start_of(checkpoints: &[u8]) -> Start {
    let (lines, _) = split_lines(checkpoints);
    let first = lines
        .first()
        .and_then(|line| serde_json::from_slice::<Checkpoint>(line.bytes).ok());
    Start::of(first.as_ref())
}

/// Checks the trail in `dir` against `key`, segment by segment, reading
/// records a block at a time: a trail of ten million records takes no
/// more memory than one of ten. Each segment's checkpoints are read before
/// its records, so every one read covers records that were on disk when
/// the records were read; each segment must open where the one before it
/// ends. A segment sealed while this ran is looked at again.
pub fn verify_dir(dir: &Path, key: &VerifyKey) -> Result<Result<Report, Problem>, AuditError> {
    let mut listed = segment::listed(dir)?;
    for _ in 0..3 {
        let checked = verify_segments(&listed, key)?;
        if checked.is_ok() {
            return Ok(checked);
        }
        let now = segment::segments(dir)?;
        if now == listed {
            return Ok(checked);
        }
        listed = now;
    }
    verify_segments(&listed, key)
}

/// [`verify_dir`] over the segments `listed`, oldest first.
fn verify_segments(
    listed: &[Segment],
    key: &VerifyKey,
) -> Result<Result<Report, Problem>, AuditError> {
    let mut total: Option<Report> = None;
    let mut end: Option<Start> = None;
    // The tree spans every segment; it can be made again only when the
    // first records are here.
    let mut tree = (listed.first().map(|s| s.first) == Some(0)).then(Frontier::new);
    for (index, segment) in listed.iter().enumerate() {
        let checkpoints_path = segment.dir.join(CHECKPOINTS_FILE);
        let checkpoints =
            fs::read(&checkpoints_path).map_err(|e| AuditError::io(&checkpoints_path, e))?;
        let start = start_of(&checkpoints);
        if let Some(end) = &end
            && *end != start
        {
            let opens = match start.seq {
                0 => "opens at record 0 (it has no opening checkpoint)".to_owned(),
                seq => format!("opens after record {} ({})", seq - 1, short(&start.prev)),
            };
            return Ok(Err(Problem::checkpoint(
                0,
                format!(
                    "this segment {opens}, but the segment before it ends after record {} ({}): records between them were removed, added or changed",
                    end.seq.saturating_sub(1),
                    short(&end.prev)
                ),
            )
            .in_segment(&segment.prefix)));
        }
        let trail_path = segment.dir.join(TRAIL_FILE);
        let file = fs::File::open(&trail_path).map_err(|e| AuditError::io(&trail_path, e))?;
        let (report, head) = match walk(file, &checkpoints, key, BLOCK_BYTES, &start, &mut tree)
            .map_err(|e| AuditError::io(&trail_path, e))?
        {
            Ok(walked) => walked,
            Err(problem) => return Ok(Err(problem.in_segment(&segment.prefix))),
        };
        let last = index + 1 == listed.len();
        if !last && report.incomplete_bytes > 0 {
            return Ok(Err(Problem::record(
                None,
                format!(
                    "this sealed segment ends with {} bytes that are not a record: they were added after it was sealed",
                    report.incomplete_bytes
                ),
            )
            .in_segment(&segment.prefix)));
        }
        end = Some(Start {
            seq: report.records,
            prev: head,
        });
        total = Some(match total {
            None => report,
            Some(before) => Report {
                checkpoints: before.checkpoints + report.checkpoints,
                tree_heads: before.tree_heads + report.tree_heads,
                first: before.first.or(report.first),
                last: report.last.or(before.last),
                first_record: before.first_record,
                segments: before.segments + 1,
                ..report
            },
        });
    }
    Ok(Ok(total.expect("at least one segment")))
}

/// A checkpoint as read, with what is wrong with it on its own (its form,
/// key, signature or order), and whether the records it covers still hash
/// to what it signed (found while the records are read).
struct Signed {
    checkpoint: Option<Checkpoint>,
    /// The tree head its note signs.
    tree: Option<TreeHead>,
    what: String,
    alone: Option<Problem>,
    rewritten: Option<Problem>,
}

/// The walk behind [`verify`] and [`verify_dir`]: the records from
/// `records`, a block at a time, then every checkpoint in order. Problems
/// are named in the same order whatever the block size: a broken chain
/// first, then the first checkpoint that is wrong.
pub(crate) fn walk(
    mut records: impl std::io::Read,
    checkpoints: &[u8],
    key: &VerifyKey,
    block_bytes: usize,
    start: &Start,
    tree: &mut Option<Frontier>,
) -> std::io::Result<Result<(Report, String), Problem>> {
    let expected_key = key.to_base64();
    let (checkpoint_lines, _) = split_lines(checkpoints);
    let mut signed_list: Vec<Signed> = Vec::with_capacity(checkpoint_lines.len());
    let mut covered = start.seq;
    for (index, line) in checkpoint_lines.iter().enumerate() {
        let problem = |message| Some(Problem::checkpoint(index, message));
        let parsed: Result<Checkpoint, _> = serde_json::from_slice(line.bytes);
        let mut entry = Signed {
            checkpoint: None,
            tree: None,
            what: String::new(),
            alone: None,
            rewritten: None,
        };
        match parsed {
            Err(e) => {
                entry.alone = problem(format!(
                    "checkpoint {index} is not a checkpoint any more ({e}): it was changed"
                ));
            }
            Ok(checkpoint) => {
                let what = format!(
                    "checkpoint {index} (signed {}, covering {} records)",
                    checkpoint.time, checkpoint.records
                );
                if checkpoint.key != expected_key {
                    entry.alone = problem(format!(
                        "{what} is signed by key {}, not by the host key {expected_key}: it was not written by this host",
                        checkpoint.key
                    ));
                } else if !key.verifies(&checkpoint.statement(), &checkpoint.signature) {
                    entry.alone = problem(format!(
                        "{what}: the signature does not match what the checkpoint says: it was forged or altered"
                    ));
                } else if checkpoint.records < start.seq {
                    entry.alone = problem(format!(
                        "{what} covers fewer records than come before this segment ({}): it belongs to an earlier segment",
                        start.seq
                    ));
                } else if checkpoint.records == start.seq
                    && (checkpoint.head != start.prev || checkpoint.bytes != 0)
                {
                    entry.alone = problem(format!(
                        "{what} says the records before this segment end with {} and {} bytes of it, but the segment opens after {} and 0 bytes: it was forged or belongs elsewhere",
                        short(&checkpoint.head),
                        checkpoint.bytes,
                        short(&start.prev)
                    ));
                } else if checkpoint.records < covered {
                    entry.alone = problem(format!(
                        "{what} covers fewer records than checkpoint {} ({covered}): checkpoints were reordered",
                        index - 1
                    ));
                } else {
                    covered = checkpoint.records;
                }
                if entry.alone.is_none()
                    && let Some(text) = &checkpoint.note
                {
                    match signed_tree(text, key, checkpoint.records) {
                        Ok(head) => entry.tree = Some(head),
                        Err(why) => entry.alone = problem(format!("{what}: its tree head {why}")),
                    }
                }
                entry.what = what;
                entry.checkpoint = Some(checkpoint);
            }
        }
        signed_list.push(entry);
    }
    // The checkpoints to compare with each record, by the record's number.
    let mut at_record: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
    for (index, entry) in signed_list.iter().enumerate() {
        if let Some(checkpoint) = &entry.checkpoint
            && checkpoint.records > start.seq
        {
            at_record
                .entry(checkpoint.records - 1)
                .or_default()
                .push(index);
        }
    }

    // Tree heads of checkpoints covering no record of this segment are
    // those of the tree before it.
    let mut tree_mismatch: Option<Problem> = None;
    if let Some(frontier) = tree.as_ref() {
        for (index, entry) in signed_list.iter().enumerate() {
            if let (Some(head), Some(checkpoint)) = (&entry.tree, &entry.checkpoint)
                && checkpoint.records == start.seq
                && head.root != frontier.root()
                && tree_mismatch.is_none()
            {
                tree_mismatch = Some(Problem::checkpoint(
                    index,
                    format!(
                        "{}: its Merkle tree head is not the head of the records before it: it was forged or the records rewritten",
                        entry.what
                    ),
                ));
            }
        }
    }
    let mut next_seq = start.seq;
    let mut prev = start.prev.clone();
    let mut lines_before = 0;
    let mut offset = 0u64;
    let mut first = None;
    let mut last = None;
    let mut block: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; block_bytes];
    loop {
        let read = read_full(&mut records, &mut chunk)?;
        block.extend_from_slice(&chunk[..read]);
        let at_end = read < chunk.len();
        let (lines, tail) = split_lines(&block);
        let count = lines.len();
        let chained = chain(
            &lines,
            next_seq,
            &prev,
            lines_before,
            |(record, hash, line)| {
                if first.is_none() {
                    first = Some(record.time.clone());
                }
                if line.number == count {
                    last = Some(record.time.clone());
                }
                if let Some(frontier) = tree.as_mut() {
                    frontier.push(merkle::leaf_hash(line.bytes));
                }
                let Some(indices) = at_record.get(&record.seq) else {
                    return;
                };
                let root = tree.as_ref().map(Frontier::root);
                let end = offset + line.end;
                for &index in indices {
                    let entry = &mut signed_list[index];
                    let Some(checkpoint) = &entry.checkpoint else {
                        continue;
                    };
                    if entry.rewritten.is_none()
                        && (hash != checkpoint.head || end != checkpoint.bytes)
                    {
                        entry.rewritten = Some(Problem {
                            record: Some(record.seq),
                            ..Problem::checkpoint(
                                index,
                                format!(
                                    "records up to {} were rewritten after {}: record {} hashes to {} and the trail up to it is {} bytes, but the checkpoint signed {} and {} bytes",
                                    record.seq,
                                    entry.what,
                                    record.seq,
                                    short(hash),
                                    end,
                                    short(&checkpoint.head),
                                    checkpoint.bytes
                                ),
                            )
                        });
                    }
                    if entry.rewritten.is_none()
                        && let (Some(root), Some(head)) = (root, &entry.tree)
                        && head.root != root
                    {
                        entry.rewritten = Some(Problem {
                            record: Some(record.seq),
                            ..Problem::checkpoint(
                                index,
                                format!(
                                    "{}: its Merkle tree head is not the head of records 0 to {}: records were rewritten after it was signed",
                                    entry.what, record.seq
                                ),
                            )
                        });
                    }
                }
            },
        );
        let problem = match chained {
            Ok(hash) => {
                prev = hash;
                None
            }
            Err(problem) => Some(problem),
        };
        if let Some(problem) = problem {
            if at_end {
                return Ok(Err(problem));
            }
            // Name the problem as a whole read would: its diagnosis looks
            // at the line after it (was this record changed, or the one
            // before?), so read at least one block and one line more and
            // look again.
            loop {
                let read = read_full(&mut records, &mut chunk)?;
                block.extend_from_slice(&chunk[..read]);
                if read < chunk.len() || split_lines(&block).0.len() > count {
                    break;
                }
            }
            let (lines, _) = split_lines(&block);
            let again = chain(&lines, next_seq, &prev, lines_before, |_| {});
            return Ok(Err(again.err().unwrap_or(problem)));
        }
        next_seq += count as u64;
        lines_before += count;
        let consumed = block.len() - tail;
        offset += consumed as u64;
        block.drain(..consumed);
        if at_end {
            break;
        }
    }
    let records = next_seq;
    let incomplete_bytes = block.len();
    let mut signed = start.seq;
    let mut last_checkpoint = None;
    let tree_heads = signed_list.iter().filter(|e| e.tree.is_some()).count();
    if let Some(problem) = tree_mismatch
        && signed_list.iter().all(|e| e.alone.is_none())
    {
        return Ok(Err(problem));
    }
    for (index, entry) in signed_list.into_iter().enumerate() {
        if let Some(problem) = entry.alone {
            return Ok(Err(problem));
        }
        let Some(checkpoint) = entry.checkpoint else {
            continue;
        };
        if checkpoint.records > records {
            let removed = if checkpoint.records - records == 1 {
                format!("record {records} was")
            } else {
                format!("records {records} to {} were", checkpoint.records - 1)
            };
            return Ok(Err(Problem {
                record: Some(records),
                ..Problem::checkpoint(
                    index,
                    format!(
                        "the trail ends after {records} records but {}: {removed} removed from its end",
                        entry.what
                    ),
                )
            }));
        }
        if let Some(problem) = entry.rewritten {
            return Ok(Err(problem));
        }
        signed = checkpoint.records;
        last_checkpoint = Some(checkpoint.time);
    }
    Ok(Ok((
        Report {
            records,
            first_record: start.seq,
            segments: 1,
            checkpoints: checkpoint_lines.len(),
            signed,
            last_checkpoint,
            first,
            last,
            key: expected_key,
            incomplete_bytes,
            tree_heads,
            tree_heads_recomputed: tree.is_some(),
        },
        prev,
    )))
}

/// The tree head of the signed note `text` when `key` signed it under its
/// origin and it has `records` records; else what is wrong with it.
fn signed_tree(text: &str, key: &VerifyKey, records: u64) -> Result<TreeHead, String> {
    let body = note::body(text).map_err(|e| e.to_string())?;
    let origin = TreeHead::parse(body).map_err(|e| e.to_string())?.origin;
    let head = note::open(text, &origin, key).map_err(|_| {
        format!("is not signed by the host key under the log's name {origin:?}: it was forged or altered")
    })?;
    if head.size != records {
        return Err(format!(
            "says {} records, the checkpoint {records}: it was altered",
            head.size
        ));
    }
    Ok(head)
}

/// Fills `buffer` from `reader` unless it ends first; how much was read.
fn read_full(reader: &mut impl std::io::Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Copies the trail in `dir` to `out` for a third party: the checkpoints,
/// the records (complete lines only) and the public key. A trail that does
/// not verify is copied all the same (it is the evidence); the second result
/// says whether it verifies against its own public key.
pub fn export(dir: &Path, out: &Path) -> Result<Result<Report, Problem>, AuditError> {
    let key = VerifyKey::from_file(&dir.join(PUBLIC_KEY_FILE))?;
    fs::create_dir_all(out).map_err(|e| AuditError::io(out, e))?;
    // Sealed segments first, then the open one; a segment sealed while
    // this ran is copied too, and the open one again after it.
    let mut copied: Vec<u64> = Vec::new();
    let fresh = |listed: &[Segment], copied: &[u64]| {
        listed
            .iter()
            .filter(|s| s.sealed && !copied.contains(&s.first))
            .cloned()
            .collect::<Vec<_>>()
    };
    loop {
        let listed = segment::segments(dir)?;
        for segment in fresh(&listed, &copied) {
            let to = out.join(&segment.prefix);
            fs::create_dir_all(&to).map_err(|e| AuditError::io(&to, e))?;
            copy_segment(&segment.dir, &to)?;
            copied.push(segment.first);
        }
        if let Some(open) = listed.iter().find(|s| !s.sealed) {
            copy_segment(&open.dir, out)?;
        }
        if fresh(&segment::segments(dir)?, &copied).is_empty() {
            break;
        }
    }
    let path = out.join(PUBLIC_KEY_FILE);
    fs::write(&path, key.to_text() + "\n").map_err(|e| AuditError::io(&path, e))?;
    verify_dir(out, &key)
}

/// Copies the segment in `from` to `to`: checkpoints first (as a reader
/// does), then the records, each up to its last complete line, a block at
/// a time.
fn copy_segment(from: &Path, to: &Path) -> Result<(), AuditError> {
    for name in [CHECKPOINTS_FILE, TRAIL_FILE] {
        copy_complete_lines(&from.join(name), &to.join(name))?;
    }
    Ok(())
}

/// Copies `from` to `to` up to and including its last newline.
fn copy_complete_lines(from: &Path, to: &Path) -> Result<(), AuditError> {
    use std::io::{Read, Seek, Write};
    let mut source = fs::File::open(from).map_err(|e| AuditError::io(from, e))?;
    let length = source
        .metadata()
        .map_err(|e| AuditError::io(from, e))?
        .len();
    // The length up to the last newline: look back from the end.
    let mut complete = length;
    let mut back = vec![0u8; 64 * 1024];
    while complete > 0 {
        let start = complete.saturating_sub(back.len() as u64);
        let part = &mut back[..(complete - start) as usize];
        source
            .seek(std::io::SeekFrom::Start(start))
            .and_then(|_| source.read_exact(part))
            .map_err(|e| AuditError::io(from, e))?;
        if let Some(at) = part.iter().rposition(|&b| b == b'\n') {
            complete = start + at as u64 + 1;
            break;
        }
        complete = start;
    }
    source
        .seek(std::io::SeekFrom::Start(0))
        .map_err(|e| AuditError::io(from, e))?;
    let mut target = fs::File::create(to).map_err(|e| AuditError::io(to, e))?;
    std::io::copy(&mut source.take(complete), &mut target)
        .and_then(|_| target.flush())
        .map_err(|e| AuditError::io(to, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditLog, AuditOptions, Entry, Kind};
    use proptest::prelude::*;

    /// A trail of `records` records, signed every `every`.
    fn trail(records: u64, every: u64) -> (tempfile::TempDir, VerifyKey) {
        let dir = tempfile::tempdir().unwrap();
        let options = AuditOptions {
            checkpoint_interval: std::time::Duration::from_secs(3600),
            checkpoint_records: every,
            ..AuditOptions::default()
        };
        let log = AuditLog::open(dir.path(), None, options).unwrap();
        for n in 0..records {
            let mut entry = Entry::new(Kind::Call);
            entry.detail = Some("x".repeat((n % 50) as usize));
            log.append(entry).unwrap();
        }
        drop(log);
        let key = VerifyKey::from_file(&dir.path().join(PUBLIC_KEY_FILE)).unwrap();
        (dir, key)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Reading a trail in blocks of any size finds what reading it
        /// whole finds, tampered or not.
        #[test]
        fn blocks_of_any_size_give_the_same_verdict(
            records in 0u64..60,
            every in 1u64..9,
            block in 1usize..700,
            tamper in proptest::option::of((0usize..100_000, 1u8..255)),
        ) {
            let (dir, key) = trail(records, every);
            let mut whole = Trail::read(dir.path()).unwrap();
            if let Some((at, flip)) = tamper
                && !whole.records.is_empty()
            {
                let at = at % whole.records.len();
                whole.records[at] ^= flip;
            }
            let start = Start::genesis();
            let at_once = walk(whole.records.as_slice(), &whole.checkpoints, &key, whole.records.len() + 1, &start, &mut Some(Frontier::new()))
                .unwrap();
            let in_blocks = walk(whole.records.as_slice(), &whole.checkpoints, &key, block, &start, &mut Some(Frontier::new())).unwrap();
            prop_assert_eq!(at_once.map_err(|p| p.to_string()), in_blocks.map_err(|p| p.to_string()));
        }
    }
}
