//! What is wrong with a trail: the first problem [`crate::verify`] finds,
//! or the reason the writer refuses a trail it opens.

use std::fmt;

use serde::Serialize;

use crate::{CHECKPOINTS_FILE, TRAIL_FILE};

/// The first thing wrong with a trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file, relative to the trail directory: `trail.jsonl` or
    /// `checkpoints.jsonl`, or the same in a sealed segment
    /// (`segments/<first record>/trail.jsonl`).
    pub file: String,
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
            file: TRAIL_FILE.to_owned(),
            line,
            record: None,
            checkpoint: None,
            message,
        }
    }

    pub(crate) fn at_record(record: u64, line: usize, message: String) -> Self {
        Self {
            record: Some(record),
            ..Self::record(Some(line), message)
        }
    }

    pub(crate) fn checkpoint(index: usize, message: String) -> Self {
        Self {
            file: CHECKPOINTS_FILE.to_owned(),
            line: Some(index + 1),
            record: None,
            checkpoint: Some(index),
            message,
        }
    }

    /// The same problem, found in the segment whose files are under
    /// `prefix` (`segments/<first record>/`; empty for the open segment).
    pub(crate) fn in_segment(mut self, prefix: &str) -> Self {
        if !prefix.is_empty() {
            self.file = format!("{prefix}{}", self.file);
        }
        self
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
