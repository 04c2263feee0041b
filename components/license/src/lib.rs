//! `zhongtai:license` — electronic licenses.
//!
//! A department issues a license of a known type to a holder; every license
//! is signed with Ed25519 over documented canonical bytes
//! ([`signing::canonical_bytes`]), so anyone holding the public key can verify
//! it offline with [`signing::verify_offline`]. Online verification also
//! checks the validity period and revocation; only the issuing department may
//! revoke. The logic ([`service::Licenses`]) runs on the ports of
//! `zhongtai-guest`.

pub mod model;
pub mod service;
pub mod signing;

#[cfg(target_arch = "wasm32")]
mod guest;

pub use model::{Application, Field, License, LicenseError, NewLicense, PublicKey};
pub use service::Licenses;

#[cfg(test)]
mod tests;
