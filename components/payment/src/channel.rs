//! Payment channels: where money comes from and goes back to. A channel is
//! an interface so that a real gateway adapter can sit beside the sandbox.

use crate::model::{Order, PaymentError};

/// A payment channel.
pub trait Channel {
    /// The channel's name, as callers give it.
    fn name(&self) -> &'static str;
    /// Collects the order's amount from the payer; returns the channel's
    /// reference for the collection.
    fn charge(&self, order: &Order) -> Result<String, PaymentError>;
    /// Returns `amount` of the order to the payer.
    fn refund(&self, order: &Order, amount: i64) -> Result<String, PaymentError>;
}

/// A channel that settles at once; for development and tests. Like a test
/// card that is always declined, it declines a charge of exactly
/// [`Sandbox::DECLINED_AMOUNT`] fen, so that callers can exercise their
/// decline handling.
pub struct Sandbox;

impl Sandbox {
    /// The amount the sandbox always declines: 400.02 CNY.
    pub const DECLINED_AMOUNT: i64 = 40_002;
}

impl Channel for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn charge(&self, order: &Order) -> Result<String, PaymentError> {
        if order.amount.amount == Self::DECLINED_AMOUNT {
            return Err(PaymentError::ChannelDeclined(format!(
                "the sandbox declines charges of {} fen",
                Self::DECLINED_AMOUNT
            )));
        }
        Ok(format!("sandbox-charge-{}", order.id))
    }

    fn refund(&self, order: &Order, amount: i64) -> Result<String, PaymentError> {
        Ok(format!("sandbox-refund-{}-{amount}", order.id))
    }
}

/// The channel called `name`, if there is one.
pub fn find(name: &str) -> Option<Box<dyn Channel>> {
    match name {
        "sandbox" => Some(Box::new(Sandbox)),
        _ => None,
    }
}

/// The account a channel's money moves through.
pub fn account(channel: &dyn Channel) -> String {
    format!("channel:{}", channel.name())
}
