//! Reading a trail: its two files as they are on disk, and the records a
//! [`Filter`] selects (for `zhongtai audit show` and the admin API).
//! [`latest`] reads from the end of the trail and [`each_record`] from its
//! start, segment by segment and a block at a time: memory stays flat at
//! any length of trail.

use std::fs;
use std::path::Path;

use crate::record::{Record, split_lines};
use crate::segment::{listed, no_trail};
use crate::{AuditError, CHECKPOINTS_FILE, TRAIL_FILE};

/// A trail's two files — its open segment's, for a trail long enough to
/// have sealed some — read checkpoints first so that every checkpoint read
/// covers records that were already on disk when the trail was read.
#[derive(Debug, Clone, Default)]
pub struct Trail {
    /// `trail.jsonl`.
    pub records: Vec<u8>,
    /// `checkpoints.jsonl`.
    pub checkpoints: Vec<u8>,
}

impl Trail {
    /// Reads the open segment of the trail in `dir`.
    pub fn read(dir: &Path) -> Result<Self, AuditError> {
        let read = |name: &str| {
            let path = dir.join(name);
            match fs::read(&path) {
                Ok(bytes) => Ok(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_trail(&path)),
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

/// Which records `zhongtai audit show` and the admin API return.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this department's.
    pub department: Option<String>,
    /// Only this service's.
    pub service: Option<String>,
    /// Only this subject's.
    pub subject: Option<String>,
    /// Only this request's: the host's id, or the client's.
    pub request: Option<String>,
    /// At or after this time (the records' form, see [`crate::parse_time`]).
    pub since: Option<String>,
    /// Before this time (the records' form).
    pub until: Option<String>,
    /// At most this many, the latest.
    pub limit: Option<usize>,
    /// Only records of this kind.
    pub kind: Option<crate::Kind>,
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
            && (same(&self.request, &record.entry.request)
                || same(&self.request, &record.entry.client_request))
            && self.since.as_ref().is_none_or(|s| &record.time >= s)
            && self.until.as_ref().is_none_or(|u| &record.time < u)
            && self.kind.is_none_or(|kind| record.entry.kind == kind)
    }
}

/// How much of a trail is read at a time by [`latest`] and [`each_record`].
const BLOCK_BYTES: usize = 1024 * 1024;

/// Records of a trail selected newest first, returned oldest first.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The records, oldest first.
    pub records: Vec<Record>,
    /// When older matching records may remain: the `before` that pages
    /// on to them (the oldest record's sequence number).
    pub next_before: Option<u64>,
}

/// The latest records of the trail in `dir` that `filter` selects (at most
/// `filter.limit`, default all) among those numbered below `before`,
/// read from the end of the trail backwards; unreadable lines are skipped
/// (`verify` names them), and so is a last record still being written.
pub fn latest(dir: &Path, filter: &Filter, before: Option<u64>) -> Result<Page, AuditError> {
    latest_in_blocks(dir, filter, before, BLOCK_BYTES)
}

/// [`latest`], reading `block` bytes at a time.
pub(crate) fn latest_in_blocks(
    dir: &Path,
    filter: &Filter,
    before: Option<u64>,
    block_bytes: usize,
) -> Result<Page, AuditError> {
    let limit = filter.limit.unwrap_or(usize::MAX);
    let mut page = Page::default();
    if limit == 0 {
        return Ok(page);
    }
    for segment in listed(dir)?.iter().rev() {
        if before.is_some_and(|before| segment.first >= before) {
            continue;
        }
        let full = latest_in_segment(&segment.dir, filter, before, block_bytes, limit, &mut page)?;
        if full {
            page.next_before = page.records.last().map(|r| r.seq).filter(|seq| *seq > 0);
            break;
        }
    }
    page.records.reverse();
    Ok(page)
}

/// Adds to `page.records`, newest first, the records of the segment in
/// `dir` that [`latest`] selects, until it holds `limit`; whether it does.
fn latest_in_segment(
    dir: &Path,
    filter: &Filter,
    before: Option<u64>,
    block_bytes: usize,
    limit: usize,
    page: &mut Page,
) -> Result<bool, AuditError> {
    use std::io::{Read, Seek, SeekFrom};
    let path = dir.join(TRAIL_FILE);
    let io = |e| AuditError::io(&path, e);
    let mut file = fs::File::open(&path).map_err(io)?;
    let mut end = file.metadata().map_err(io)?.len();
    if let Some(before) = before {
        // Start at the first checkpoint covering record `before`: the
        // records after it are not wanted, and need not be read.
        end = end.min(covering_end(dir, before).unwrap_or(u64::MAX));
    }
    // Bytes from `end` up to the start of the last line taken: the end of
    // a line whose start is further back. Ends with a newline.
    let mut pending: Vec<u8> = Vec::new();
    let mut first = true;
    while end > 0 {
        let start = end.saturating_sub(block_bytes as u64);
        let mut block = vec![0u8; (end - start) as usize];
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        file.read_exact(&mut block).map_err(io)?;
        block.extend_from_slice(&pending);
        if first {
            // A last line without its newline is a record being written.
            let complete = block
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |at| at + 1);
            block.truncate(complete);
            first = false;
        }
        let mut lines: Vec<&[u8]> = block.split(|&b| b == b'\n').collect();
        lines.pop(); // what follows the last newline: nothing
        let partial = if start > 0 && !lines.is_empty() {
            Some(lines.remove(0))
        } else {
            None
        };
        for line in lines.iter().rev() {
            let Ok(record) = serde_json::from_slice::<Record>(line) else {
                continue;
            };
            if before.is_some_and(|before| record.seq >= before) || !filter.matches(&record) {
                continue;
            }
            page.records.push(record);
            if page.records.len() == limit {
                return Ok(true);
            }
        }
        pending = match partial {
            Some(partial) => {
                let mut kept = partial.to_vec();
                kept.push(b'\n');
                kept
            }
            None => Vec::new(),
        };
        end = start;
    }
    Ok(false)
}

/// Where the records of the first checkpoint of the segment in `dir`
/// covering record `seq` end (a place to start reading back from), if a
/// checkpoint covers it.
fn covering_end(dir: &Path, seq: u64) -> Option<u64> {
    let checkpoints = fs::read(dir.join(CHECKPOINTS_FILE)).ok()?;
    let (lines, _) = split_lines(&checkpoints);
    lines
        .iter()
        .filter_map(|line| serde_json::from_slice::<crate::record::Checkpoint>(line.bytes).ok())
        .filter(|checkpoint| checkpoint.records > seq)
        .map(|checkpoint| checkpoint.bytes)
        .min()
}

/// Calls `each` with every record of the trail in `dir` that `filter`
/// selects, oldest first, segment by segment and a block at a time
/// (`filter.limit` is not applied: use [`latest`]). Unreadable lines and a
/// last record still being written are skipped.
pub fn each_record(
    dir: &Path,
    filter: &Filter,
    mut each: impl FnMut(Record) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    for segment in listed(dir)? {
        each_in_segment(&segment.dir, filter, &mut each)?;
    }
    Ok(())
}

/// [`each_record`] for the segment in `dir`.
fn each_in_segment(
    dir: &Path,
    filter: &Filter,
    each: &mut impl FnMut(Record) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    use std::io::Read;
    let path = dir.join(TRAIL_FILE);
    let io = |e| AuditError::io(&path, e);
    let mut file = fs::File::open(&path).map_err(io)?;
    let mut block: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; BLOCK_BYTES];
    loop {
        let read = file.read(&mut chunk).map_err(io)?;
        if read == 0 {
            return Ok(());
        }
        block.extend_from_slice(&chunk[..read]);
        let (lines, tail) = split_lines(&block);
        for line in &lines {
            if let Ok(record) = serde_json::from_slice::<Record>(line.bytes)
                && filter.matches(&record)
            {
                each(record)?;
            }
        }
        let consumed = block.len() - tail;
        block.drain(..consumed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditLog, AuditOptions, Entry, Kind};
    use proptest::prelude::*;

    #[test]
    fn the_latest_records_of_one_kind_are_found_behind_many_of_another() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), None, AuditOptions::default()).unwrap();
        for n in 0..1200u64 {
            let mut entry = Entry::new(if n % 400 == 7 {
                Kind::Admin
            } else {
                Kind::Call
            });
            entry.department = Some("d".into());
            log.append(entry).unwrap();
        }
        drop(log);
        let filter = Filter {
            department: Some("d".into()),
            kind: Some(Kind::Admin),
            limit: Some(10),
            ..Filter::default()
        };
        let page = latest(dir.path(), &filter, None).unwrap();
        let seqs: Vec<u64> = page.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [7, 407, 807]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Pages read from the end, in blocks of any size and across
        /// segments of any size, hold what the filter selects, and paging
        /// on reaches every record once.
        #[test]
        fn paging_from_the_end_finds_what_a_whole_read_finds(
            records in 0u64..80,
            limit in 1usize..12,
            block in 1usize..500,
            department in 0u64..4,
            every in 1u64..20,
            segment in 1u64..40,
        ) {
            let dir = tempfile::tempdir().unwrap();
            // A checkpoint every few records: paging back starts at one.
            let options = AuditOptions {
                checkpoint_records: every,
                segment_records: segment,
                ..AuditOptions::default()
            };
            let log = AuditLog::open(dir.path(), None, options).unwrap();
            for n in 0..records {
                let mut entry = Entry::new(Kind::Call);
                entry.department = Some(format!("d{}", n % 3));
                entry.detail = Some("y".repeat((n % 40) as usize));
                log.append(entry).unwrap();
            }
            drop(log);
            let filter = Filter {
                department: (department < 3).then(|| format!("d{department}")),
                ..Filter::default()
            };
            let everything: Vec<u64> = (0..records)
                .filter(|n| filter.department.as_ref().is_none_or(|d| *d == format!("d{}", n % 3)))
                .collect();
            let key = crate::VerifyKey::from_file(&dir.path().join(crate::PUBLIC_KEY_FILE)).unwrap();
            let report = crate::verify_dir(dir.path(), &key).unwrap().unwrap();
            prop_assert_eq!(report.records, records);
            let mut paged = Vec::new();
            let mut before = None;
            let limited = Filter { limit: Some(limit), ..filter.clone() };
            loop {
                let page = latest_in_blocks(dir.path(), &limited, before, block).unwrap();
                prop_assert!(page.records.len() <= limit);
                let mut seqs: Vec<u64> = page.records.iter().map(|r| r.seq).collect();
                seqs.extend(paged);
                paged = seqs;
                match page.next_before {
                    Some(next) => before = Some(next),
                    None => break,
                }
            }
            prop_assert_eq!(&paged, &everything);
            let mut streamed = Vec::new();
            each_record(dir.path(), &filter, |r| {
                streamed.push(r.seq);
                Ok(())
            })
            .unwrap();
            prop_assert_eq!(streamed, everything);
        }
    }
}
