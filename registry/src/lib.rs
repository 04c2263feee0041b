//! zhongtai's versioned component registry.
//!
//! How the pieces fit: a [`store::RegistryStore`] keeps package records in
//! SQLite and blobs as files named by sha256, and accepts a version only after
//! [`validate`] has decoded its WIT world and found every import provided by
//! the platform; versions never change. [`resolve`] picks the highest
//! non-yanked version matching a semver requirement by cargo's rules.
//! [`signing`] covers publisher keys and signatures over (package, version,
//! digest). [`client::Registry`] is the one interface over an embedded
//! registry (a directory) and a remote one (a URL, served by [`api`]); the
//! CLI and the host use it, and [`client::fetch`] re-checks digest and
//! signature on every fetch.

pub mod api;
pub mod client;
pub mod error;
pub mod name;
pub mod oci;
pub mod resolve;
pub mod signing;
pub mod store;
pub mod validate;

pub use client::{LocalRegistry, Registry, RemoteRegistry, fetch, resolve as resolve_version};
pub use error::RegistryError;
pub use name::{Digest, PackageName};
pub use signing::{PublicKey, PublisherKey, Signed, TrustPolicy};
pub use store::{PackageInfo, PackageSummary, PublishOutcome, PublishRequest, VersionRecord};
