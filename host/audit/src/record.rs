//! The trail's on-disk format: what one audit record says, the signed
//! checkpoints, the hashes that chain records together, and splitting a
//! file into its lines.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first record: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What kind of event a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A capability call: a workflow step, or `zhongtai call`.
    Call,
    /// An operator's action on the host: deploy, upgrade, rollback.
    Admin,
    /// A change to the registry: publish, yank, unyank.
    Registry,
    /// The host restarted after a crash and discarded a half-written record
    /// (whose request was never answered).
    Recovery,
}

/// An event to record, as the caller describes it; the log adds the
/// sequence number, the previous record's hash and the time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// What kind of event.
    pub kind: Kind,
    /// For admin and registry records: `deploy`, `upgrade`, `rollback`,
    /// `publish`, `yank`, `unyank`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The calling department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// The department's service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The request id shared by every call made for one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The id the client gave the request (`x-request-id`), beside the
    /// host's own in `request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request: Option<String>,
    /// The authenticated subject (a citizen, an official, the operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The component's package, e.g. `zhongtai:auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The component's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The component's digest, `sha256:<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The exported interface called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The function called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// `ok`; `error` (the component answered an error case, named in
    /// `case`); `refused` (not granted, not authorised, invalid); or how the
    /// call failed: `trap`, `timeout`, `memory-limit`, `busy`, …
    pub outcome: String,
    /// The error case or refusal reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// Microseconds the call or action took.
    pub duration_us: u64,
    /// The arguments' keyed digest (`hmac-sha256:<hex>`, see
    /// [`crate::DigestKey`]), never the arguments; for an operator action,
    /// the sha256 (hex) of what was deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    /// The result's keyed digest, never the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// A short description for people (a deployment's revision and pins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The host that wrote the record, when several hosts share one
    /// platform ([`AuditOptions::host`](crate::AuditOptions::host)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Entry {
    /// An entry of `kind` with outcome `ok` and nothing else set.
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            action: None,
            department: None,
            service: None,
            request: None,
            client_request: None,
            subject: None,
            package: None,
            version: None,
            digest: None,
            interface: None,
            function: None,
            outcome: "ok".to_owned(),
            case: None,
            duration_us: 0,
            args: None,
            result: None,
            detail: None,
            host: None,
        }
    }
}

/// Longest text a record's field keeps, in bytes; the rest is cut, with a
/// note of how long it was. A record is at most a few kilobytes whatever a
/// caller sends.
pub const MAX_FIELD_BYTES: usize = 2048;

/// `text` cut to [`MAX_FIELD_BYTES`] at a character boundary, with a note.
fn bounded(text: &mut String) {
    if text.len() <= MAX_FIELD_BYTES {
        return;
    }
    let length = text.len();
    let mut end = MAX_FIELD_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!("… (cut from {length} bytes)"));
}

impl Entry {
    /// Cuts every text field to [`MAX_FIELD_BYTES`]; the writer does this
    /// to every record.
    pub fn bound(&mut self) {
        for field in [
            &mut self.action,
            &mut self.department,
            &mut self.service,
            &mut self.request,
            &mut self.client_request,
            &mut self.subject,
            &mut self.package,
            &mut self.version,
            &mut self.digest,
            &mut self.interface,
            &mut self.function,
            &mut self.case,
            &mut self.args,
            &mut self.result,
            &mut self.detail,
            &mut self.host,
        ]
        .into_iter()
        .flatten()
        {
            bounded(field);
        }
        bounded(&mut self.outcome);
    }

    /// Sets the outcome of a call that returned: `error` with the error
    /// `case` the caller read from the function's WIT result type, else
    /// `ok`.
    pub fn settle(&mut self, case: Option<&str>) {
        match case {
            None => self.outcome = "ok".to_owned(),
            Some(case) => {
                self.outcome = "error".to_owned();
                self.case = Some(case.to_owned());
            }
        }
    }

    /// Sets how long the call took.
    pub fn took(&mut self, elapsed: std::time::Duration) {
        self.duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    }
}

/// One line of the trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Position in the trail, from 0.
    pub seq: u64,
    /// sha256 (hex) of the previous record's line; [`GENESIS`] for record 0.
    pub prev: String,
    /// When it was appended, RFC 3339 UTC with microseconds.
    pub time: String,
    /// The event.
    #[serde(flatten)]
    pub entry: Entry,
}

/// sha256 (hex) of bytes: a record line's hash, or the hash of arguments.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// sha256 (hex) of a JSON value as serialized (object keys sorted, as
/// serde_json's map keeps them).
pub fn hash_json(value: &serde_json::Value) -> String {
    sha256_hex(value.to_string().as_bytes())
}

/// A signed statement of how the trail stood: its first `records` records,
/// `bytes` long, ending with a record whose line hashes to `head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// How many records it covers (records `0..records`).
    pub records: u64,
    /// The length of the trail file up to the end of the last covered record.
    pub bytes: u64,
    /// sha256 (hex) of the last covered record's line ([`GENESIS`] for none).
    pub head: String,
    /// When it was signed.
    pub time: String,
    /// The signing key, base64.
    pub key: String,
    /// Ed25519 signature (base64) of [`Checkpoint::statement`].
    pub signature: String,
    /// The same records as a C2SP checkpoint — the log's origin, the
    /// tree size and the Merkle tree head of records `0..records` — in a
    /// signed note by the same key under the origin's name. Absent in
    /// checkpoints written before the trail had a Merkle tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Checkpoint {
    /// The bytes the signature covers:
    /// `zhongtai-audit-checkpoint-v1\n<records>\n<bytes>\n<head>\n<time>\n`.
    pub fn statement(&self) -> Vec<u8> {
        format!(
            "zhongtai-audit-checkpoint-v1\n{}\n{}\n{}\n{}\n",
            self.records, self.bytes, self.head, self.time
        )
        .into_bytes()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_keeps_a_few_kilobytes_of_whatever_it_is_given() {
        let mut entry = Entry::new(Kind::Admin);
        entry.department = Some("x".repeat(60_000));
        entry.detail = Some("说".repeat(10_000));
        entry.bound();
        let department = entry.department.unwrap();
        assert!(department.starts_with(&"x".repeat(MAX_FIELD_BYTES)));
        assert!(department.ends_with("… (cut from 60000 bytes)"));
        let detail = entry.detail.unwrap();
        assert!(detail.len() <= MAX_FIELD_BYTES + 40, "{}", detail.len());
        assert!(detail.ends_with("… (cut from 30000 bytes)"));
        let mut short = Entry::new(Kind::Call);
        short.service = Some("verify".into());
        short.bound();
        assert_eq!(short.service.as_deref(), Some("verify"));
    }
}
