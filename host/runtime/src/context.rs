//! The calling context every capability call carries: which department and
//! service is calling, for which request and, if known, for which subject.
//! Components read it through `zhongtai:platform/context`.

pub use zhongtai_ids::{Slug, SlugError};

/// Who is making a capability call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// The calling department.
    pub department: Slug,
    /// The department's service making the call.
    pub service: Slug,
    /// Shared by every call made for one request; made by the host.
    pub request_id: String,
    /// The id the client gave the request (`x-request-id`), if a sensible
    /// one: kept beside the host's, never in its place.
    pub client_request_id: Option<String>,
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
            client_request_id: None,
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
    fn request_ids_differ() {
        assert_ne!(new_request_id(), new_request_id());
    }
}
