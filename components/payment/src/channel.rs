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

/// A channel that settles at once and never declines; for development and
/// tests.
pub struct Sandbox;

impl Channel for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn charge(&self, order: &Order) -> Result<String, PaymentError> {
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
