//! Manifest errors: each names the file, line, column and field, and says
//! what was expected.

use std::fmt;

/// One problem in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The manifest file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The field, as a dotted path (`services[0].steps[1].call`).
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.field, self.message
        )
    }
}

impl std::error::Error for ManifestError {}

/// Where something is declared in a manifest, kept after checking so that
/// later checks (against the components, at deploy) can name the place.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Place {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The field, as a dotted path (`services[0].steps[1]`).
    pub field: String,
}

impl Place {
    /// The problem `message` at this place (or at `sub`field below it) of `file`.
    pub fn error(&self, file: &str, sub: &str, message: impl Into<String>) -> ManifestError {
        ManifestError {
            file: file.to_owned(),
            line: self.line,
            column: self.column,
            field: format!("{}{sub}", self.field),
            message: message.into(),
        }
    }
}

/// Every problem found in a manifest, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ManifestErrors(pub Vec<ManifestError>);

/// Turns byte offsets into line and column numbers.
pub(crate) struct Locator<'a> {
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
}

impl Locator<'_> {
    /// The place of byte `offset`, naming `field`.
    pub(crate) fn place(&self, offset: usize, field: impl Into<String>) -> Place {
        let error = self.error(offset, field, "");
        Place {
            line: error.line,
            column: error.column,
            field: error.field,
        }
    }

    pub(crate) fn error(
        &self,
        offset: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ManifestError {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ManifestError {
            file: self.file.to_owned(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        }
    }
}
