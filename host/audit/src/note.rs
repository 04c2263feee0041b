//! Tree heads as C2SP checkpoints in signed notes, and witness
//! cosignatures — the formats of the transparency-log ecosystem
//! (`c2sp.org/signed-note`, `c2sp.org/tlog-checkpoint`,
//! `c2sp.org/tlog-cosignature`), so that tools written for Go's sumdb,
//! Sigsum or a witness network read them.
//!
//! A checkpoint's body is three lines — the log's origin, the tree size in
//! decimal, the tree head in base64 — then optional extension lines. A
//! signed note is the body, a blank line, and one line per signature:
//! `— <key name> <base64 of key id (4 bytes) and signature>`. The key id
//! is the first four bytes of `SHA-256(name || "\n" || 0x01 || public
//! key)` for an Ed25519 signer; a cosignature (0x04) signs
//! `cosignature/v1\ntime <unix seconds>\n` followed by the body, and its
//! line carries the key id, the time (8 bytes, big-endian) and the
//! signature.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::key::{HostKey, VerifyKey};
use crate::merkle::Hash;

/// The signature type of an Ed25519 signer in a key id.
const ED25519: u8 = 0x01;
/// The signature type of an Ed25519 witness cosignature.
const COSIGNATURE: u8 = 0x04;
/// What starts every signature line.
const DASH: &str = "\u{2014} ";

/// A tree head of a log, as a checkpoint says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHead {
    /// The log's name, e.g. `zhongtai.example/audit/host-1`.
    pub origin: String,
    /// How many leaves the tree has.
    pub size: u64,
    /// The tree's head.
    pub root: Hash,
}

/// Why a note or checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The text is not a signed note or its body not a checkpoint.
    #[error("not a checkpoint: {0}")]
    Malformed(String),
    /// No valid signature by the key asked for.
    #[error("no valid signature by {0}")]
    Unsigned(String),
}

impl TreeHead {
    /// The checkpoint body: origin, size, head, each on its line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Reads a checkpoint body (extension lines after the third are
    /// allowed and ignored).
    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::Malformed(why.to_owned());
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size = lines
            .next()
            .filter(|s| s == &"0" || !s.starts_with('0'))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("the second line is not a tree size in decimal"))?;
        let root = lines
            .next()
            .and_then(|r| STANDARD.decode(r).ok())
            .and_then(|r| <Hash>::try_from(r).ok())
            .ok_or_else(|| bad("the third line is not a 32-byte hash in base64"))?;
        if !body.ends_with('\n') {
            return Err(bad("the body does not end with a newline"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

fn public_bytes(key: &VerifyKey) -> [u8; 32] {
    STANDARD
        .decode(key.to_base64())
        .ok()
        .and_then(|b| b.try_into().ok())
        .expect("a public key is 32 bytes")
}

/// The key id of `name` with `key` for signature type `kind`.
fn key_id(name: &str, kind: u8, key: &VerifyKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([kind]);
    hasher.update(public_bytes(key));
    let hash = hasher.finalize();
    [hash[0], hash[1], hash[2], hash[3]]
}

fn raw_signature(key: &HostKey, message: &[u8]) -> Vec<u8> {
    STANDARD
        .decode(key.sign(message))
        .expect("a signature is base64")
}

/// `body` signed by `key` under `name`: a signed note.
pub fn sign(body: &str, name: &str, key: &HostKey) -> String {
    let mut payload = key_id(name, ED25519, &key.public()).to_vec();
    payload.extend(raw_signature(key, body.as_bytes()));
    format!("{body}\n{DASH}{name} {}\n", STANDARD.encode(payload))
}

/// The message a witness signs for `body` at `time` (Unix seconds).
fn cosigned_message(body: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{body}")
}

/// A witness's cosignature line for the checkpoint `body` at `time`.
pub fn cosign(body: &str, name: &str, key: &HostKey, time: u64) -> String {
    let mut payload = key_id(name, COSIGNATURE, &key.public()).to_vec();
    payload.extend(time.to_be_bytes());
    payload.extend(raw_signature(key, cosigned_message(body, time).as_bytes()));
    format!("{DASH}{name} {}\n", STANDARD.encode(payload))
}

/// A signature line: the signer's name and the decoded payload.
type SignatureLine<'a> = (&'a str, Vec<u8>);

/// Splits a signed note into its body and signature lines.
fn split(note: &str) -> Result<(&str, Vec<SignatureLine<'_>>), NoteError> {
    let at = note
        .rfind("\n\n")
        .ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
    let (body, signatures) = (&note[..=at], &note[at + 2..]);
    let mut lines = Vec::new();
    for line in signatures.lines() {
        let (name, payload) = line
            .strip_prefix(DASH)
            .and_then(|l| l.split_once(' '))
            .ok_or_else(|| NoteError::Malformed(format!("{line:?} is not a signature line")))?;
        let payload = STANDARD
            .decode(payload)
            .map_err(|_| NoteError::Malformed(format!("the signature of {name} is not base64")))?;
        lines.push((name, payload));
    }
    Ok((body, lines))
}

/// The checkpoint of `note` when `key` signed it under `name`.
pub fn open(note: &str, name: &str, key: &VerifyKey) -> Result<TreeHead, NoteError> {
    let (body, lines) = split(note)?;
    let id = key_id(name, ED25519, key);
    let signed = lines.iter().any(|(n, payload)| {
        *n == name
            && payload.len() == 68
            && payload[..4] == id
            && key.verifies(body.as_bytes(), &STANDARD.encode(&payload[4..]))
    });
    if !signed {
        return Err(NoteError::Unsigned(name.to_owned()));
    }
    TreeHead::parse(body)
}

/// A witness's cosignature of a checkpoint, as found in a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// When the witness cosigned (Unix seconds).
    pub time: u64,
    /// Its signature line, newline included, to append to the note.
    pub line: String,
}

/// The cosignature of the witness `name` with `key` on the checkpoint in
/// `note`, when it has one.
pub fn cosigned(note: &str, name: &str, key: &VerifyKey) -> Result<Cosignature, NoteError> {
    let (body, lines) = split(note)?;
    let id = key_id(name, COSIGNATURE, key);
    lines
        .iter()
        .filter(|(n, payload)| *n == name && payload.len() == 76 && payload[..4] == id)
        .find_map(|(_, payload)| {
            let time = u64::from_be_bytes(payload[4..12].try_into().ok()?);
            let message = cosigned_message(body, time);
            key.verifies(message.as_bytes(), &STANDARD.encode(&payload[12..]))
                .then(|| Cosignature {
                    time,
                    line: format!("{DASH}{name} {}\n", STANDARD.encode(payload)),
                })
        })
        .ok_or_else(|| NoteError::Unsigned(name.to_owned()))
}

/// The body of a signed note (up to the blank line before its
/// signatures).
pub fn body(note: &str) -> Result<&str, NoteError> {
    split(note).map(|(body, _)| body)
}

/// The verifier key of `name` with `key` as signed-note tools write it:
/// `<name>+<key id, hex>+<base64 of 0x01 and the public key>`.
pub fn verifier_key(name: &str, key: &VerifyKey) -> String {
    let mut encoded = vec![ED25519];
    encoded.extend(public_bytes(key));
    format!(
        "{name}+{}+{}",
        hex::encode(key_id(name, ED25519, key)),
        STANDARD.encode(encoded)
    )
}

/// Reads a verifier key (see [`verifier_key`]): its name and key.
pub fn parse_verifier_key(text: &str) -> Result<(String, VerifyKey), NoteError> {
    let bad = || NoteError::Malformed(format!("{text:?} is not a verifier key (name+id+key)"));
    // A name has no '+'; base64 may.
    let mut parts = text.trim().splitn(3, '+');
    let (name, id, encoded) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    let bytes = STANDARD.decode(encoded).map_err(|_| bad())?;
    let (kind, public) = bytes.split_first().ok_or_else(bad)?;
    if *kind != ED25519 || public.len() != 32 {
        return Err(bad());
    }
    let key = VerifyKey::from_text(&STANDARD.encode(public)).map_err(|_| bad())?;
    if hex::encode(key_id(name, ED25519, &key)) != id {
        return Err(NoteError::Malformed(format!(
            "the key id in {text:?} does not match its name and key"
        )));
    }
    Ok((name.to_owned(), key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier as _;

    fn head() -> TreeHead {
        let leaves: Vec<Hash> = (0..5u8).map(|i| crate::merkle::leaf_hash(&[i])).collect();
        TreeHead {
            origin: "zhongtai.example/audit/host-1".into(),
            size: 5,
            root: crate::merkle::root(&leaves),
        }
    }

    #[test]
    fn a_checkpoint_is_signed_as_a_note_and_read_back() {
        let key = HostKey::generate().unwrap();
        let body = head().body();
        assert_eq!(body.lines().count(), 3);
        let note = sign(&body, "host-1", &key);
        assert!(
            note.starts_with(&body) && note.contains("\n\n\u{2014} host-1 "),
            "{note}"
        );
        assert_eq!(open(&note, "host-1", &key.public()).unwrap(), head());

        // An independent check of the signature line: key id as the spec
        // computes it, Ed25519 over the body.
        let line = note.lines().last().unwrap();
        let payload = STANDARD.decode(line.rsplit_once(' ').unwrap().1).unwrap();
        let public = public_bytes(&key.public());
        let id = &Sha256::digest([b"host-1\n".as_slice(), &[0x01], &public].concat())[..4];
        assert_eq!(&payload[..4], id);
        let verifying = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
        let signature = ed25519_dalek::Signature::from_slice(&payload[4..]).unwrap();
        assert!(verifying.verify(body.as_bytes(), &signature).is_ok());

        // Another key, another name, a changed size or head: refused.
        let other = HostKey::generate().unwrap();
        assert!(open(&note, "host-1", &other.public()).is_err());
        assert!(open(&note, "host-2", &key.public()).is_err());
        let changed = note.replacen("\n5\n", "\n4\n", 1);
        assert!(open(&changed, "host-1", &key.public()).is_err());
    }

    #[test]
    fn a_witness_cosigns_and_its_cosignature_is_checked() {
        let (host, witness) = (HostKey::generate().unwrap(), HostKey::generate().unwrap());
        let body = head().body();
        let mut note = sign(&body, "host-1", &host);
        note.push_str(&cosign(&body, "witness-a", &witness, 1_790_000_000));
        assert_eq!(open(&note, "host-1", &host.public()).unwrap(), head());
        let cosignature = cosigned(&note, "witness-a", &witness.public()).unwrap();
        assert_eq!(cosignature.time, 1_790_000_000);
        assert!(note.ends_with(&cosignature.line));
        assert!(cosigned(&note, "witness-a", &host.public()).is_err());
        let forged = note.replace(&body, &TreeHead { size: 6, ..head() }.body());
        assert!(cosigned(&forged, "witness-a", &witness.public()).is_err());
    }

    #[test]
    fn a_verifier_key_names_its_signer() {
        let key = HostKey::generate().unwrap();
        let text = verifier_key("zhongtai/audit/host-1", &key.public());
        let (name, read) = parse_verifier_key(&text).unwrap();
        assert_eq!(name, "zhongtai/audit/host-1");
        assert_eq!(read.to_base64(), key.public().to_base64());
        let other = text.replacen("host-1", "host-2", 1);
        assert!(
            parse_verifier_key(&other)
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
    }

    #[test]
    fn malformed_checkpoints_say_what_is_wrong() {
        for (body, why) in [
            ("\n5\nAAAA\n", "no origin line"),
            ("o\n05\nAAAA\n", "tree size"),
            ("o\n5\nAAAA\n", "32-byte hash"),
        ] {
            assert!(
                TreeHead::parse(body).unwrap_err().to_string().contains(why),
                "{body:?}"
            );
        }
    }
}
