//! Checking a trail, selecting records from it, exporting it.
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

use crate::log::Checkpoint;
use crate::record::{GENESIS, Record, sha256_hex};
use crate::{AuditError, CHECKPOINTS_FILE, PUBLIC_KEY_FILE, TRAIL_FILE, VerifyKey};

/// The first thing wrong with a trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `trail.jsonl` or `checkpoints.jsonl`.
    pub file: &'static str,
    /// The line (from 1), when one is to blame.
    pub line: Option<usize>,
    /// The record, when one is to blame.
    pub record: Option<u64>,
    /// The checkpoint (from 0), when one is to blame.
    pub checkpoint: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    pub(crate) fn record(line: Option<usize>, message: String) -> Self {
        Self {
            file: TRAIL_FILE,
            line,
            record: None,
            checkpoint: None,
            message,
        }
    }

    fn at_record(record: u64, line: usize, message: String) -> Self {
        Self {
            record: Some(record),
            ..Self::record(Some(line), message)
        }
    }

    pub(crate) fn checkpoint(index: usize, message: String) -> Self {
        Self {
            file: CHECKPOINTS_FILE,
            line: Some(index + 1),
            record: None,
            checkpoint: Some(index),
            message,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// What a trail that verifies holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Records in the trail.
    pub records: u64,
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
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "trail verifies: {} records, {} checkpoints signed by {}",
            self.records, self.checkpoints, self.key
        )?;
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

/// One line of a file.
pub(crate) struct Line<'a> {
    /// From 1.
    pub number: usize,
    /// Offset of the byte after its newline.
    pub end: u64,
    pub bytes: &'a [u8],
}

/// Splits `text` into complete lines; returns them and the length of an
/// unterminated last line.
pub(crate) fn split_lines(text: &[u8]) -> (Vec<Line<'_>>, usize) {
    let mut lines = Vec::new();
    let mut start = 0;
    for (at, _) in text.iter().enumerate().filter(|(_, b)| **b == b'\n') {
        lines.push(Line {
            number: lines.len() + 1,
            end: at as u64 + 1,
            bytes: &text[start..at],
        });
        start = at + 1;
    }
    (lines, text.len() - start)
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn seq_of(line: &Line<'_>) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_slice::<Seq>(line.bytes)
        .ok()
        .map(|s| s.seq)
}

/// Checks that `lines` are records `first_seq, first_seq + 1, …`, the first
/// holding `first_prev` and each the hash of the one before; line numbers
/// are counted from `line_offset`. Returns the next sequence number and the
/// last record's hash.
pub(crate) fn check_links(
    lines: &[Line<'_>],
    first_seq: u64,
    first_prev: &str,
    line_offset: usize,
) -> Result<(u64, String), Problem> {
    let last = chain(lines, first_seq, first_prev, line_offset, |_| {})?;
    Ok((first_seq + lines.len() as u64, last))
}

/// The walk behind [`check_links`]; `each` sees every record and its hash.
fn chain(
    lines: &[Line<'_>],
    first_seq: u64,
    first_prev: &str,
    line_offset: usize,
    mut each: impl FnMut((&Record, &str, &Line<'_>)),
) -> Result<String, Problem> {
    let mut prev = first_prev.to_owned();
    let hashes: Vec<String> = lines.iter().map(|l| sha256_hex(l.bytes)).collect();
    for (i, line) in lines.iter().enumerate() {
        let number = line.number + line_offset;
        let expected = first_seq + i as u64;
        let record: Record = serde_json::from_slice(line.bytes).map_err(|e| {
            Problem::at_record(
                expected,
                number,
                format!("record {expected} is not an audit record any more ({e}): it was changed"),
            )
        })?;
        if record.seq != expected {
            let later = lines[i + 1..]
                .iter()
                .find(|l| seq_of(l) == Some(expected))
                .map(|l| l.number + line_offset);
            let next_seq = lines.get(i + 1).and_then(seq_of);
            let message = match later {
                Some(at) => format!(
                    "records are out of order: record {expected} belongs here but this line holds record {}, and record {expected} is at line {at}",
                    record.seq
                ),
                None if next_seq == Some(expected + 1) => format!(
                    "record {expected} was changed: it calls itself record {}",
                    record.seq
                ),
                None if record.seq > expected => {
                    let missing = record.seq - expected;
                    let range = if missing == 1 {
                        format!("record {expected} is")
                    } else {
                        format!("records {expected} to {} are", record.seq - 1)
                    };
                    let after = match expected.checked_sub(1) {
                        Some(before) => format!("right after record {before}"),
                        None => "at the start of the trail".to_owned(),
                    };
                    format!(
                        "{range} missing: this line holds record {} {after}",
                        record.seq
                    )
                }
                None => format!(
                    "a record was inserted: this line holds record {} again where record {expected} belongs",
                    record.seq
                ),
            };
            return Err(Problem::at_record(expected, number, message));
        }
        if record.prev != prev {
            if expected == 0 {
                return Err(Problem::at_record(
                    0,
                    number,
                    format!(
                        "record 0 was changed: its prev is {} where the first record holds 64 zeros",
                        short(&record.prev)
                    ),
                ));
            }
            // Changing a record changes its hash, which the next record
            // holds. If the next link holds too, this record's own `prev`
            // is intact and the one before it was changed; if the next link
            // breaks as well, this record was changed.
            let own_hash = &hashes[i];
            let next_link_holds = lines
                .get(i + 1)
                .and_then(|l| serde_json::from_slice::<Record>(l.bytes).ok())
                .is_none_or(|next| &next.prev == own_hash);
            let (blamed, line, message) = if next_link_holds {
                (
                    expected - 1,
                    number - 1,
                    format!(
                        "record {} was changed: it hashes to {}, but record {expected} holds {}",
                        expected - 1,
                        short(&prev),
                        short(&record.prev)
                    ),
                )
            } else {
                (
                    expected,
                    number,
                    format!(
                        "record {expected} was changed: its prev ({}) is not the hash of record {} ({}), and record {} no longer holds its hash",
                        short(&record.prev),
                        expected - 1,
                        short(&prev),
                        expected + 1
                    ),
                )
            };
            return Err(Problem::at_record(blamed, line, message));
        }
        each((&record, &hashes[i], line));
        prev.clone_from(&hashes[i]);
    }
    Ok(prev)
}

/// A trail's two files, read checkpoints first so that every checkpoint
/// read covers records that were already on disk when the trail was read.
#[derive(Debug, Clone, Default)]
pub struct Trail {
    /// `trail.jsonl`.
    pub records: Vec<u8>,
    /// `checkpoints.jsonl`.
    pub checkpoints: Vec<u8>,
}

impl Trail {
    /// Reads the trail in `dir`.
    pub fn read(dir: &Path) -> Result<Self, AuditError> {
        let read = |name: &str| {
            let path = dir.join(name);
            match fs::read(&path) {
                Ok(bytes) => Ok(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(AuditError::Io {
                    path: path.display().to_string(),
                    message: "no audit trail here (expected trail.jsonl and checkpoints.jsonl)"
                        .into(),
                }),
                Err(e) => Err(AuditError::io(&path, e)),
            }
        };
        let checkpoints = read(CHECKPOINTS_FILE)?;
        let records = read(TRAIL_FILE)?;
        Ok(Self {
            records,
            checkpoints,
        })
    }

    /// The records matching `filter`, oldest first; unreadable lines are
    /// skipped (`verify` names them).
    pub fn select(&self, filter: &Filter) -> Vec<Record> {
        let (lines, _) = split_lines(&self.records);
        let mut selected: Vec<Record> = lines
            .iter()
            .filter_map(|line| serde_json::from_slice::<Record>(line.bytes).ok())
            .filter(|record| filter.matches(record))
            .collect();
        if let Some(limit) = filter.limit
            && selected.len() > limit
        {
            selected.drain(..selected.len() - limit);
        }
        selected
    }
}

/// Checks `trail` against the host's public `key`.
pub fn verify(trail: &Trail, key: &VerifyKey) -> Result<Report, Problem> {
    let (lines, incomplete_bytes) = split_lines(&trail.records);
    let mut hashes = Vec::with_capacity(lines.len());
    let mut ends = Vec::with_capacity(lines.len());
    let mut first = None;
    let mut last = None;
    chain(&lines, 0, GENESIS, 0, |(record, hash, line)| {
        hashes.push(hash.to_owned());
        ends.push(line.end);
        if first.is_none() {
            first = Some(record.time.clone());
        }
        last = Some(record.time.clone());
    })?;
    let records = lines.len() as u64;
    let expected_key = key.to_base64();
    let (checkpoint_lines, _) = split_lines(&trail.checkpoints);
    let mut signed = 0;
    let mut last_checkpoint = None;
    for (index, line) in checkpoint_lines.iter().enumerate() {
        let problem = |message| Problem::checkpoint(index, message);
        let checkpoint: Checkpoint = serde_json::from_slice(line.bytes).map_err(|e| {
            problem(format!(
                "checkpoint {index} is not a checkpoint any more ({e}): it was changed"
            ))
        })?;
        let what = format!(
            "checkpoint {index} (signed {}, covering {} records)",
            checkpoint.time, checkpoint.records
        );
        if checkpoint.key != expected_key {
            return Err(problem(format!(
                "{what} is signed by key {}, not by the host key {expected_key}: it was not written by this host",
                checkpoint.key
            )));
        }
        if !key.verifies(&checkpoint.statement(), &checkpoint.signature) {
            return Err(problem(format!(
                "{what}: the signature does not match what the checkpoint says: it was forged or altered"
            )));
        }
        if checkpoint.records < signed {
            return Err(problem(format!(
                "{what} covers fewer records than checkpoint {} ({signed}): checkpoints were reordered",
                index - 1
            )));
        }
        if checkpoint.records > records {
            let removed = if checkpoint.records - records == 1 {
                format!("record {records} was")
            } else {
                format!("records {records} to {} were", checkpoint.records - 1)
            };
            return Err(Problem {
                record: Some(records),
                ..problem(format!(
                    "the trail ends after {records} records but {what}: {removed} removed from its end"
                ))
            });
        }
        if checkpoint.records > 0 {
            let at = usize::try_from(checkpoint.records - 1).unwrap_or(usize::MAX);
            if hashes[at] != checkpoint.head || ends[at] != checkpoint.bytes {
                return Err(Problem {
                    record: Some(checkpoint.records - 1),
                    ..problem(format!(
                        "records up to {} were rewritten after {what}: record {} hashes to {} and the trail up to it is {} bytes, but the checkpoint signed {} and {} bytes",
                        checkpoint.records - 1,
                        checkpoint.records - 1,
                        short(&hashes[at]),
                        ends[at],
                        short(&checkpoint.head),
                        checkpoint.bytes
                    ))
                });
            }
        }
        signed = checkpoint.records;
        last_checkpoint = Some(checkpoint.time);
    }
    Ok(Report {
        records,
        checkpoints: checkpoint_lines.len(),
        signed,
        last_checkpoint,
        first,
        last,
        key: expected_key,
        incomplete_bytes,
    })
}

/// Which records `zhongtai audit show` and the admin API return.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this department's.
    pub department: Option<String>,
    /// Only this service's.
    pub service: Option<String>,
    /// Only this subject's.
    pub subject: Option<String>,
    /// Only this request's.
    pub request: Option<String>,
    /// At or after this time (the records' form, see [`crate::parse_time`]).
    pub since: Option<String>,
    /// Before this time (the records' form).
    pub until: Option<String>,
    /// At most this many, the latest.
    pub limit: Option<usize>,
}

impl Filter {
    /// Whether `record` is selected.
    pub fn matches(&self, record: &Record) -> bool {
        let same = |wanted: &Option<String>, actual: &Option<String>| {
            wanted.as_ref().is_none_or(|w| actual.as_ref() == Some(w))
        };
        same(&self.department, &record.entry.department)
            && same(&self.service, &record.entry.service)
            && same(&self.subject, &record.entry.subject)
            && same(&self.request, &record.entry.request)
            && self.since.as_ref().is_none_or(|s| &record.time >= s)
            && self.until.as_ref().is_none_or(|u| &record.time < u)
    }
}

/// Copies the trail in `dir` to `out` for a third party: the checkpoints,
/// the records (complete lines only) and the public key. A trail that does
/// not verify is copied all the same (it is the evidence); the second result
/// says whether it verifies against its own public key.
pub fn export(dir: &Path, out: &Path) -> Result<Result<Report, Problem>, AuditError> {
    let trail = Trail::read(dir)?;
    let key = VerifyKey::from_file(&dir.join(PUBLIC_KEY_FILE))?;
    fs::create_dir_all(out).map_err(|e| AuditError::io(out, e))?;
    let complete = |bytes: &[u8]| {
        let (_, tail) = split_lines(bytes);
        bytes[..bytes.len() - tail].to_vec()
    };
    let trail = Trail {
        records: complete(&trail.records),
        checkpoints: complete(&trail.checkpoints),
    };
    for (name, bytes) in [
        (CHECKPOINTS_FILE, &trail.checkpoints),
        (TRAIL_FILE, &trail.records),
    ] {
        let path = out.join(name);
        fs::write(&path, bytes).map_err(|e| AuditError::io(&path, e))?;
    }
    let path = out.join(PUBLIC_KEY_FILE);
    fs::write(&path, key.to_text() + "\n").map_err(|e| AuditError::io(&path, e))?;
    Ok(verify(&trail, &key))
}
