//! Segments: a long trail is a run of files, not one ever-growing pair.
//!
//! `trail.jsonl` and `checkpoints.jsonl` at the top of the trail directory
//! are the *open* segment, where records are appended. Once it holds
//! [`crate::AuditOptions::segment_records`] records and a checkpoint
//! covers all of them, the writer *seals* it: both files move to
//! `segments/<number of its first record, 20 digits>/`, and a new open
//! segment starts whose checkpoints file begins with an *opening
//! checkpoint* — the records before it and the hash of the last one,
//! signed, with `bytes` 0 since none of them is in its file.
//!
//! A checkpoint's `records` and `head` count the whole trail; its `bytes`
//! count its own segment's file. So each segment verifies on its own from
//! its opening checkpoint, consecutive segments must meet (one opens where
//! the one before it ends), old segments can be archived elsewhere and
//! what remains still verifies, and no reader ever holds more than one
//! segment's checkpoints.
//!
//! Sealing renames files in an order that [`finish_seal`] (run when the
//! writer opens the trail) can complete from any point a crash leaves:
//! the new open segment is written in full under `segments/.next/` first;
//! then the old files move into `segments/.sealing-<name>/`, the new ones
//! to the top, and `.sealing-<name>` is renamed to `<name>`.

use std::fs;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::record::{Checkpoint, GENESIS};
use crate::{AuditError, CHECKPOINTS_FILE, TRAIL_FILE};

/// The directory of sealed segments in a trail directory.
pub const SEGMENTS_DIR: &str = "segments";

/// Where a sealing's new open segment is prepared.
const NEXT: &str = ".next";
/// The prefix of the directory a segment is sealed into before it takes
/// its name.
const SEALING: &str = ".sealing-";

/// One segment of a trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The directory holding its `trail.jsonl` and `checkpoints.jsonl`
    /// (the trail directory itself for the open segment).
    pub dir: PathBuf,
    /// Its files' place relative to the trail directory: empty for the
    /// open segment, `segments/<name>/` for a sealed one.
    pub prefix: String,
    /// The number of its first record.
    pub first: u64,
    /// Whether it is sealed (nothing more is appended to it).
    pub sealed: bool,
}

/// A sealed segment's directory name: its first record, 20 digits.
pub(crate) fn name(first: u64) -> String {
    format!("{first:020}")
}

fn parse_name(name: &str) -> Option<u64> {
    (name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}

/// The segments of the trail in `dir`, oldest first: the sealed ones,
/// then the open one (when its files exist).
pub fn segments(dir: &Path) -> Result<Vec<Segment>, AuditError> {
    let mut found = Vec::new();
    let sealed_dir = dir.join(SEGMENTS_DIR);
    match fs::read_dir(&sealed_dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(|e| AuditError::io(&sealed_dir, e))?;
                let file_name = entry.file_name();
                let Some(first) = file_name.to_str().and_then(parse_name) else {
                    continue;
                };
                found.push(Segment {
                    dir: entry.path(),
                    prefix: format!("{SEGMENTS_DIR}/{}/", name(first)),
                    first,
                    sealed: true,
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(AuditError::io(&sealed_dir, e)),
    }
    found.sort_by_key(|segment| segment.first);
    if dir.join(TRAIL_FILE).exists() || dir.join(CHECKPOINTS_FILE).exists() {
        let first = opening(&dir.join(CHECKPOINTS_FILE))?.map_or(0, |c| c.records);
        found.push(Segment {
            dir: dir.to_owned(),
            prefix: String::new(),
            first,
            sealed: false,
        });
    }
    Ok(found)
}

/// The records file of `segment`, opened at the last checkpoint at or
/// before record `seq` (checkpoints hold their byte offset into their
/// segment's file), and the number of the record it is at: reaching `seq`
/// reads at most the records between two checkpoints, not the segment.
pub(crate) fn records_from(
    segment: &Segment,
    seq: u64,
) -> Result<(u64, std::io::BufReader<fs::File>), AuditError> {
    use std::io::{Seek, SeekFrom};
    let checkpoints = segment.dir.join(CHECKPOINTS_FILE);
    let text = fs::read(&checkpoints).map_err(|e| AuditError::io(&checkpoints, e))?;
    let (mut at_seq, mut at_byte) = (segment.first, 0);
    for line in crate::record::split_lines(&text).0 {
        if let Ok(checkpoint) = serde_json::from_slice::<Checkpoint>(line.bytes)
            && checkpoint.records <= seq
            && checkpoint.records >= at_seq
        {
            (at_seq, at_byte) = (checkpoint.records, checkpoint.bytes);
        }
    }
    let path = segment.dir.join(TRAIL_FILE);
    let io = |e| AuditError::io(&path, e);
    let mut file = fs::File::open(&path).map_err(io)?;
    file.seek(SeekFrom::Start(at_byte)).map_err(io)?;
    Ok((at_seq, std::io::BufReader::with_capacity(1 << 20, file)))
}

/// [`segments`], or, when there are none, the error that `dir` holds no
/// trail.
pub(crate) fn listed(dir: &Path) -> Result<Vec<Segment>, AuditError> {
    let listed = segments(dir)?;
    if listed.is_empty() {
        return Err(no_trail(&dir.join(TRAIL_FILE)));
    }
    Ok(listed)
}

/// The error for a trail file `path` that is not there.
pub(crate) fn no_trail(path: &Path) -> AuditError {
    AuditError::Io {
        path: path.display().to_string(),
        message: "no audit trail here (expected trail.jsonl and checkpoints.jsonl)".into(),
    }
}

/// Where a segment's records start: the number of the first and the hash
/// of the record before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    pub seq: u64,
    pub prev: String,
}

impl Start {
    /// The start of a trail: record 0, after nothing.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            prev: GENESIS.to_owned(),
        }
    }

    /// Where the segment whose checkpoints file begins with `first` starts.
    pub fn of(first: Option<&Checkpoint>) -> Self {
        match first {
            Some(opening) if is_opening(opening) => Self {
                seq: opening.records,
                prev: opening.head.clone(),
            },
            _ => Self::genesis(),
        }
    }
}

/// Whether `checkpoint` opens a segment: it covers records, none of which
/// are in its segment's file.
pub(crate) fn is_opening(checkpoint: &Checkpoint) -> bool {
    checkpoint.bytes == 0 && checkpoint.records > 0
}

/// The opening checkpoint of the segment whose checkpoints file is
/// `path`, if its first line is one (read alone: a checkpoints file can
/// be long).
pub(crate) fn opening(path: &Path) -> Result<Option<Checkpoint>, AuditError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuditError::io(path, e)),
    };
    let mut line = Vec::new();
    std::io::BufReader::new(file)
        .read_until(b'\n', &mut line)
        .map_err(|e| AuditError::io(path, e))?;
    Ok(serde_json::from_slice::<Checkpoint>(&line)
        .ok()
        .filter(is_opening))
}

/// Makes what `path`'s directory says about its entries durable.
pub(crate) fn sync_dir(path: &Path) -> std::io::Result<()> {
    fs::File::open(path)?.sync_all()
}

fn private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Why a seal did not happen, or did not finish.
#[derive(Debug)]
pub(crate) enum SealError {
    /// Nothing was moved: the open segment stays open.
    NotStarted(AuditError),
    /// Files were being moved when this failed: [`finish_seal`] completes
    /// the move.
    Interrupted(AuditError),
}

/// Seals the open segment of the trail in `dir`, whose first record is
/// `first`, and opens a new one beginning with `opening` (already signed).
/// The caller holds the writer still: nothing is written meanwhile.
pub(crate) fn seal(dir: &Path, first: u64, opening: &Checkpoint) -> Result<(), SealError> {
    let sealed_dir = dir.join(SEGMENTS_DIR);
    let next = sealed_dir.join(NEXT);
    let prepare = || -> Result<(), AuditError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |e| AuditError::io(&path, e)
        };
        crate::private_dir(&sealed_dir).map_err(io(&sealed_dir))?;
        if next.exists() {
            fs::remove_dir_all(&next).map_err(io(&next))?;
        }
        crate::private_dir(&next).map_err(io(&next))?;
        let mut line = serde_json::to_vec(opening).unwrap_or_default();
        line.push(b'\n');
        let checkpoints = next.join(CHECKPOINTS_FILE);
        private_file(&checkpoints, &line).map_err(io(&checkpoints))?;
        let trail = next.join(TRAIL_FILE);
        private_file(&trail, b"").map_err(io(&trail))?;
        sync_dir(&next).map_err(io(&next))?;
        sync_dir(&sealed_dir).map_err(io(&sealed_dir))
    };
    if let Err(error) = prepare() {
        let _ = fs::remove_dir_all(&next);
        return Err(SealError::NotStarted(error));
    }
    let sealing = sealed_dir.join(format!("{SEALING}{}", name(first)));
    let commit = || -> std::io::Result<()> {
        crate::private_dir(&sealing)?;
        for file in [CHECKPOINTS_FILE, TRAIL_FILE] {
            fs::rename(dir.join(file), sealing.join(file))?;
        }
        for file in [CHECKPOINTS_FILE, TRAIL_FILE] {
            fs::rename(next.join(file), dir.join(file))?;
        }
        fs::rename(&sealing, sealed_dir.join(name(first)))?;
        fs::remove_dir(&next)?;
        sync_dir(&sealed_dir)?;
        sync_dir(dir)
    };
    commit().map_err(|e| SealError::Interrupted(AuditError::io(&sealing, e)))
}

/// Completes a seal a crash interrupted (see the module documentation),
/// or clears one that had not started moving files. Only the trail's
/// writer calls this, holding the trail's lock.
pub(crate) fn finish_seal(dir: &Path) -> Result<(), AuditError> {
    let sealed_dir = dir.join(SEGMENTS_DIR);
    let next = sealed_dir.join(NEXT);
    let entries = match fs::read_dir(&sealed_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(AuditError::io(&sealed_dir, e)),
    };
    let mut half_sealed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AuditError::io(&sealed_dir, e))?;
        if let Some(first) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix(SEALING))
            .and_then(parse_name)
        {
            half_sealed.push((entry.path(), first));
        }
    }
    for (sealing, first) in half_sealed {
        let io = |e| AuditError::io(&sealing, e);
        // The old files move in before the new ones move out: a file the
        // sealing directory lacks is still at the top, and it is the old
        // one.
        for file in [CHECKPOINTS_FILE, TRAIL_FILE] {
            if !sealing.join(file).exists() && dir.join(file).exists() {
                fs::rename(dir.join(file), sealing.join(file)).map_err(io)?;
            }
        }
        for file in [CHECKPOINTS_FILE, TRAIL_FILE] {
            if !dir.join(file).exists() && next.join(file).exists() {
                fs::rename(next.join(file), dir.join(file)).map_err(io)?;
            }
        }
        fs::rename(&sealing, sealed_dir.join(name(first))).map_err(io)?;
        tracing::warn!(
            segment = %name(first),
            "finished sealing an audit segment that a stop interrupted"
        );
    }
    if next.exists() {
        fs::remove_dir_all(&next).map_err(|e| AuditError::io(&next, e))?;
    }
    sync_dir(&sealed_dir)
        .and_then(|()| sync_dir(dir))
        .map_err(|e| AuditError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opening_at(records: u64) -> Checkpoint {
        Checkpoint {
            records,
            bytes: 0,
            head: "ab".repeat(32),
            time: String::new(),
            key: String::new(),
            signature: String::new(),
            note: None,
        }
    }

    /// A trail directory with an open segment holding `text`.
    fn open_segment(text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(TRAIL_FILE), text).unwrap();
        fs::write(dir.path().join(CHECKPOINTS_FILE), "checkpoints\n").unwrap();
        dir
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn a_seal_moves_the_open_segment_and_opens_the_next() {
        let dir = open_segment("old records\n");
        seal(dir.path(), 0, &opening_at(7)).unwrap();
        let sealed = dir.path().join("segments/00000000000000000000");
        assert_eq!(read(&sealed.join(TRAIL_FILE)), "old records\n");
        assert_eq!(read(&sealed.join(CHECKPOINTS_FILE)), "checkpoints\n");
        assert_eq!(read(&dir.path().join(TRAIL_FILE)), "");
        let listed = segments(dir.path()).unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|s| (s.first, s.sealed))
                .collect::<Vec<_>>(),
            [(0, true), (7, false)]
        );
        assert_eq!(listed[0].prefix, "segments/00000000000000000000/");
        assert!(!dir.path().join("segments/.next").exists());
    }

    /// A stop after each step of a seal: what `finish_seal` leaves is what
    /// a finished seal leaves.
    #[test]
    fn a_seal_interrupted_at_any_step_is_finished_on_open() {
        for steps in 0usize..=6 {
            let dir = open_segment("old records\n");
            let d = dir.path();
            let sealed_dir = d.join(SEGMENTS_DIR);
            let next = sealed_dir.join(NEXT);
            let sealing = sealed_dir.join(format!("{SEALING}{}", name(0)));
            fs::create_dir_all(&next).unwrap();
            fs::write(next.join(CHECKPOINTS_FILE), "opening\n").unwrap();
            fs::write(next.join(TRAIL_FILE), "").unwrap();
            let moves: [(PathBuf, PathBuf); 5] = [
                (d.join(CHECKPOINTS_FILE), sealing.join(CHECKPOINTS_FILE)),
                (d.join(TRAIL_FILE), sealing.join(TRAIL_FILE)),
                (next.join(CHECKPOINTS_FILE), d.join(CHECKPOINTS_FILE)),
                (next.join(TRAIL_FILE), d.join(TRAIL_FILE)),
                (sealing.clone(), sealed_dir.join(name(0))),
            ];
            if steps > 0 {
                fs::create_dir(&sealing).unwrap();
            }
            for (from, to) in moves.iter().take(steps.saturating_sub(1)) {
                fs::rename(from, to).unwrap();
            }
            finish_seal(d).unwrap();
            let sealed = sealed_dir.join(name(0));
            if steps == 0 {
                // Nothing had moved: the open segment stays open.
                assert_eq!(read(&d.join(TRAIL_FILE)), "old records\n", "step {steps}");
                assert!(!sealed.exists());
            } else {
                assert_eq!(
                    read(&sealed.join(TRAIL_FILE)),
                    "old records\n",
                    "step {steps}"
                );
                assert_eq!(read(&sealed.join(CHECKPOINTS_FILE)), "checkpoints\n");
                assert_eq!(read(&d.join(CHECKPOINTS_FILE)), "opening\n", "step {steps}");
                assert_eq!(read(&d.join(TRAIL_FILE)), "");
            }
            assert!(!next.exists() && !sealing.exists(), "step {steps}");
        }
    }
}
