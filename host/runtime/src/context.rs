//! The calling context every capability call carries: which department and
//! service is calling, for which request and, if known, for which subject.
//! Components read it through `zhongtai:platform/context`.

use std::fmt;

/// A department or service id: 1 to 64 lowercase ASCII letters, digits or `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slug(String);

/// Why a [`Slug`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {given:?} is not valid: expected 1 to 64 lowercase letters, digits or '-'")]
pub struct SlugError {
    /// What the id names ("department", "service").
    pub what: &'static str,
    /// The text that was given.
    pub given: String,
}

impl Slug {
    /// Parses `text` as the id of a `what` ("department", "service").
    pub fn parse(what: &'static str, text: &str) -> Result<Self, SlugError> {
        let valid = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(SlugError {
                what,
                given: text.to_owned(),
            })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who is making a capability call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// The calling department.
    pub department: Slug,
    /// The department's service making the call.
    pub service: Slug,
    /// Shared by every call made for one request.
    pub request_id: String,
    /// The subject the service authenticated, if any.
    pub subject: Option<String>,
}

impl CallContext {
    /// A context for `department`'s `service` with a fresh request id.
    pub fn new(department: Slug, service: Slug) -> Self {
        Self {
            department,
            service,
            request_id: new_request_id(),
            subject: None,
        }
    }
}

/// A new request id: 32 hex digits, unique within this process and
/// practically unique across processes.
pub fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let mixed = u64::from(std::process::id()).rotate_left(40) ^ sequence;
    format!("{nanos:016x}{mixed:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_accept_department_ids_and_refuse_the_rest() {
        assert!(Slug::parse("department", "market-regulation").is_ok());
        for bad in ["", "Market", "a b", "x/y", &"a".repeat(65)] {
            let err = Slug::parse("department", bad).unwrap_err();
            assert!(err.to_string().starts_with("department "), "{err}");
        }
    }

    #[test]
    fn request_ids_differ() {
        assert_ne!(new_request_id(), new_request_id());
    }
}
