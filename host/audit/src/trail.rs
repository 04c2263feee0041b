//! Reading a trail: its two files as they are on disk, and the records a
//! [`Filter`] selects (for `zhongtai audit show` and the admin API).

use std::fs;
use std::path::Path;

use crate::record::{Record, split_lines};
use crate::{AuditError, CHECKPOINTS_FILE, TRAIL_FILE};

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
    }
}
