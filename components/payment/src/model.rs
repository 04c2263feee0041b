//! The payment capability's records and errors.

use serde::{Deserialize, Serialize};

/// The only currency accepted in `zhongtai:payment@1.0.0`.
pub const CNY: &str = "CNY";
/// The largest amount of one order, in fen (ten billion yuan).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// An amount of money in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Fen.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrderStatus {
    /// Created, not paid.
    Created,
    /// Paid in full, nothing refunded.
    Paid,
    /// Some of the payment refunded.
    PartlyRefunded,
    /// All of the payment refunded.
    Refunded,
    /// Cancelled before payment.
    Cancelled,
}

/// What a caller asks for when creating an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    /// Resident identity number or unified social credit code.
    pub payer: String,
    /// Department that receives the money.
    pub payee_department: String,
    /// How much.
    pub amount: Money,
    /// Why.
    pub purpose: String,
}

/// A payment order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// `PO` and 20 digits.
    pub id: String,
    /// Canonical payer id.
    pub payer: String,
    /// Receiving department.
    pub payee_department: String,
    /// How much.
    pub amount: Money,
    /// Why.
    pub purpose: String,
    /// Where it is in its life.
    pub status: OrderStatus,
    /// Channel it was paid through.
    pub channel: Option<String>,
    /// Fen refunded so far.
    pub refunded: i64,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub updated_at: u64,
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// Money in for an order.
    Payment,
    /// Money back for an order.
    Refund,
}

/// One side of a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Position in the ledger, from 1.
    pub sequence: u64,
    /// Shared by both sides of a transfer.
    pub transfer_id: String,
    /// The order moved for.
    pub order_id: String,
    /// `payer:…`, `department:…` or `channel:…`.
    pub account: String,
    /// Credit positive, debit negative.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Payment or refund.
    pub kind: EntryKind,
    /// Unix seconds.
    pub at: u64,
}

/// Why a payment call failed; mirrors the WIT `error` variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaymentError {
    /// Bad amount, with the reason.
    InvalidAmount(String),
    /// Currency code given.
    UnsupportedCurrency(String),
    /// Another bad argument.
    InvalidInput(String),
    /// No such order.
    UnknownOrder,
    /// No such channel.
    UnknownChannel(String),
    /// Status does not allow it.
    InvalidTransition(OrderStatus),
    /// The refundable rest.
    RefundExceedsPaid(i64),
    /// Key reused for another request.
    IdempotencyConflict(String),
    /// Channel refused.
    ChannelDeclined(String),
    /// Not allowed.
    Forbidden(String),
    /// Storage or other failure.
    Other(String),
}

impl PaymentError {
    /// Whether the same request would fail the same way again, so the
    /// outcome may be remembered under its idempotency key.
    pub fn is_deterministic(&self) -> bool {
        !matches!(
            self,
            PaymentError::Other(_) | PaymentError::ChannelDeclined(_)
        )
    }
}
