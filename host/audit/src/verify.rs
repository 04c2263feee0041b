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
use crate::problem::Problem;
use crate::record::{Checkpoint, GENESIS, split_lines};
use crate::trail::Trail;
use crate::{AuditError, CHECKPOINTS_FILE, PUBLIC_KEY_FILE, TRAIL_FILE, VerifyKey};

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
