//! The license capability's records and errors.

use serde::{Deserialize, Serialize};

/// One named field of a license.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// 1 to 64 lowercase letters, digits or `-`.
    pub name: String,
    /// At most 1024 characters.
    pub value: String,
}

/// What an issuing department asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLicense {
    /// A known license type.
    pub license_type: String,
    /// Resident identity number or unified social credit code.
    pub holder_id: String,
    /// 1 to 128 characters.
    pub holder_name: String,
    /// At most 32.
    pub fields: Vec<Field>,
    /// `YYYY-MM-DD`, inclusive.
    pub valid_from: String,
    /// `YYYY-MM-DD`, inclusive.
    pub valid_until: String,
}

/// A decided application: a license issued once per department and
/// application id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// 1 to 128 ASCII letters, digits or `.-_/:`.
    pub application_id: String,
    /// A known license type.
    pub license_type: String,
    /// Resident identity number or unified social credit code.
    pub holder_id: String,
    /// 1 to 128 characters.
    pub holder_name: String,
    /// At most 32.
    pub fields: Vec<Field>,
    /// Days of validity from the day of issue, 1 to 36600.
    pub valid_days: u32,
}

/// A revocation, kept with the license.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Revocation {
    /// Why.
    pub reason: String,
    /// Unix seconds.
    pub revoked_at: u64,
}

/// An issued license. The field order is the canonical order the signature
/// covers (see [`crate::signing::canonical_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct License {
    /// Unique license number.
    pub number: String,
    /// The license type.
    pub license_type: String,
    /// Canonical holder id.
    pub holder_id: String,
    /// Holder's name.
    pub holder_name: String,
    /// Named fields, in issue order.
    pub fields: Vec<Field>,
    /// `YYYY-MM-DD`.
    pub valid_from: String,
    /// `YYYY-MM-DD`.
    pub valid_until: String,
    /// The department that issued it.
    pub issuing_department: String,
    /// Unix seconds.
    pub issued_at: u64,
    /// The key that signed it.
    pub key_id: String,
    /// Base64 Ed25519 signature.
    pub signature: String,
    /// Set when revoked.
    pub revoked: Option<Revocation>,
}

/// A key for verifying licenses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// Key id.
    pub key_id: String,
    /// Base64 of the 32-byte Ed25519 public key.
    pub key: String,
}

/// Why a license call failed; mirrors the WIT `error` variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenseError {
    /// Malformed holder id.
    InvalidIdentifier(String),
    /// Another bad argument.
    InvalidInput(String),
    /// The license type given.
    UnknownLicenseType(String),
    /// No such license.
    UnknownLicense,
    /// The signature does not verify.
    BadSignature,
    /// Past its validity.
    Expired,
    /// Before its validity.
    NotYetValid,
    /// Revoked, with the reason.
    Revoked(String),
    /// Not allowed.
    Forbidden(String),
    /// Storage, configuration or other failure.
    Other(String),
    /// The application id was used for a license with other contents.
    ApplicationConflict(String),
}

/// The license types this version issues, with their number codes.
pub const LICENSE_TYPES: &[(&str, &str)] = &[
    ("business-license", "BL"),
    ("food-operation-permit", "FO"),
    ("drug-retail-permit", "DR"),
    ("construction-permit", "CP"),
    ("road-transport-permit", "RT"),
];

/// The number code of a license type.
pub fn type_code(license_type: &str) -> Option<&'static str> {
    LICENSE_TYPES
        .iter()
        .find(|(name, _)| *name == license_type)
        .map(|(_, code)| *code)
}
