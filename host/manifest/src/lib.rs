//! Department manifests.
//!
//! How the pieces fit: [`model`] is the manifest as written (TOML, typed with
//! `deny_unknown_fields`, every value with its position); [`parse`] reads a
//! file and turns TOML and type errors into [`ManifestError`]s naming file,
//! line, column and field; [`validate::check`] checks everything that needs
//! no component (versions, ids, routes declared twice, CEL expressions and
//! the steps they refer to) and compiles the expressions; [`types`] holds
//! the request body types a manifest declares; [`lock`] is the
//! lock file pinning each alias to an exact version and digest. This crate
//! knows nothing of wasmtime: checks against WIT signatures happen where the
//! components are loaded.

pub mod caller;
pub mod error;
pub mod expr;
pub mod lock;
pub mod model;
pub mod policy;
pub mod types;
pub mod validate;

pub use caller::{Caller, Requirement};
pub use error::{ManifestError, ManifestErrors, Place};
pub use policy::Policy;
pub use types::WitType;
pub use validate::{Action, BodyType, Call, Checked, CheckedService, CheckedStep, ComponentSpec};

use error::Locator;

/// Parses and checks a manifest's text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Checked, ManifestErrors> {
    let manifest: model::Manifest = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
    validate::check(&manifest, file, text).map_err(ManifestErrors)
}

/// A TOML or type error in `text` (from `file`), at its line, column and
/// field.
pub(crate) fn toml_error(file: &str, text: &str, error: &toml::de::Error) -> ManifestErrors {
    let at = Locator { file, text };
    let offset = error.span().map_or(0, |s| s.start);
    let field = field_at(text, offset);
    ManifestErrors(vec![at.error(
        offset,
        field,
        error.message().trim().to_owned(),
    )])
}

/// Reads and checks a manifest file.
pub fn load(path: &std::path::Path) -> Result<Checked, ManifestErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ManifestErrors(vec![ManifestError {
            file: file.clone(),
            line: 0,
            column: 0,
            field: "(file)".into(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    parse(&text, &file)
}

/// The key on the line at `offset`, for errors TOML reports by position.
fn field_at(text: &str, offset: usize) -> String {
    let line_start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches(['[', ']']);
    if key.is_empty() {
        "(document)".into()
    } else {
        key.to_owned()
    }
}
