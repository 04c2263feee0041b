//! `zhongtai:credit` — social credit.
//!
//! Departments record credit events against citizens and legal entities;
//! evaluation turns a subject's active events into a score, a level and the
//! serious-dishonesty flag by the formula in [`scoring`]; the issuing
//! department (and only it) may withdraw an event, keeping the reason. The
//! logic ([`service::Credit`]) runs on the ports of `zhongtai-guest`.

pub mod model;
pub mod scoring;
pub mod service;

#[cfg(target_arch = "wasm32")]
mod guest;

pub use model::{Category, CreditError, CreditEvent, Evaluation, Level, NewEvent, Severity};
pub use service::Credit;

#[cfg(test)]
mod tests;
