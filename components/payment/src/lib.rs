//! `zhongtai:payment` — electronic payment.
//!
//! Orders move created → paid → partly-refunded → refunded, or created →
//! cancelled; every movement of money is a transfer in a double-entry ledger,
//! so all balances always sum to zero; every mutating call carries an
//! idempotency key. The domain logic ([`service::Payments`]) is plain Rust
//! over the `zhongtai_guest` ports (`Storage`, `Platform`); the `guest` module
//! binds them to `wasi:keyvalue` and the platform's context and locks.

pub mod channel;
pub mod model;
pub mod service;

#[cfg(target_arch = "wasm32")]
mod guest;

pub use model::{LedgerEntry, Money, NewOrder, Order, OrderStatus, PaymentError};
pub use service::Payments;

#[cfg(test)]
mod tests;
