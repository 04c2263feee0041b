//! The WIT export layer: binds the payment logic to the platform imports.

use zhongtai_guest::wasm::{Bucket, Host};

use crate::model;
use crate::service::Payments;

zhongtai_guest::capability_bindings!("../../wit/payment", "zhongtai:payment/component");

use exports::zhongtai::payment::{ledger, orders};
use zhongtai::payment::types as wit;

struct Component;

fn with_payments<T>(
    f: impl FnOnce(&Payments<'_, Bucket, Host>) -> Result<T, model::PaymentError>,
) -> Result<T, wit::Error> {
    let bucket = Bucket::default();
    f(&Payments::new(&bucket, &Host)).map_err(error_to_wit)
}

fn status_to_wit(status: model::OrderStatus) -> wit::OrderStatus {
    match status {
        model::OrderStatus::Created => wit::OrderStatus::Created,
        model::OrderStatus::Paid => wit::OrderStatus::Paid,
        model::OrderStatus::PartlyRefunded => wit::OrderStatus::PartlyRefunded,
        model::OrderStatus::Refunded => wit::OrderStatus::Refunded,
        model::OrderStatus::Cancelled => wit::OrderStatus::Cancelled,
    }
}

fn error_to_wit(error: model::PaymentError) -> wit::Error {
    use model::PaymentError as E;
    match error {
        E::InvalidAmount(m) => wit::Error::InvalidAmount(m),
        E::UnsupportedCurrency(m) => wit::Error::UnsupportedCurrency(m),
        E::InvalidInput(m) => wit::Error::InvalidInput(m),
        E::UnknownOrder => wit::Error::UnknownOrder,
        E::UnknownChannel(m) => wit::Error::UnknownChannel(m),
        E::InvalidTransition(s) => wit::Error::InvalidTransition(status_to_wit(s)),
        E::RefundExceedsPaid(rest) => wit::Error::RefundExceedsPaid(rest),
        E::IdempotencyConflict(m) => wit::Error::IdempotencyConflict(m),
        E::ChannelDeclined(m) => wit::Error::ChannelDeclined(m),
        E::Forbidden(m) => wit::Error::Forbidden(m),
        E::Other(m) => wit::Error::Other(m),
    }
}

fn money_to_wit(money: model::Money) -> wit::Money {
    wit::Money {
        amount: money.amount,
        currency: money.currency,
    }
}

fn order_to_wit(order: model::Order) -> wit::Order {
    wit::Order {
        id: order.id,
        payer: order.payer,
        payee_department: order.payee_department,
        amount: money_to_wit(order.amount),
        purpose: order.purpose,
        status: status_to_wit(order.status),
        channel: order.channel,
        refunded: order.refunded,
        created_at: order.created_at,
        updated_at: order.updated_at,
    }
}

fn entry_to_wit(entry: model::LedgerEntry) -> wit::LedgerEntry {
    wit::LedgerEntry {
        sequence: entry.sequence,
        transfer_id: entry.transfer_id,
        order_id: entry.order_id,
        account: entry.account,
        amount: entry.amount,
        currency: entry.currency,
        kind: match entry.kind {
            model::EntryKind::Payment => wit::EntryKind::Payment,
            model::EntryKind::Refund => wit::EntryKind::Refund,
        },
        at: entry.at,
    }
}

impl orders::Guest for Component {
    fn create(request: wit::NewOrder, idempotency_key: String) -> Result<wit::Order, wit::Error> {
        let request = model::NewOrder {
            payer: request.payer,
            payee_department: request.payee_department,
            amount: model::Money {
                amount: request.amount.amount,
                currency: request.amount.currency,
            },
            purpose: request.purpose,
        };
        with_payments(|p| p.create(request, &idempotency_key)).map(order_to_wit)
    }

    fn pay(
        order_id: String,
        channel: String,
        idempotency_key: String,
    ) -> Result<wit::Order, wit::Error> {
        with_payments(|p| p.pay(&order_id, &channel, &idempotency_key)).map(order_to_wit)
    }

    fn refund(
        order_id: String,
        amount: i64,
        reason: String,
        idempotency_key: String,
    ) -> Result<wit::Order, wit::Error> {
        with_payments(|p| p.refund(&order_id, amount, &reason, &idempotency_key)).map(order_to_wit)
    }

    fn cancel(order_id: String, idempotency_key: String) -> Result<wit::Order, wit::Error> {
        with_payments(|p| p.cancel(&order_id, &idempotency_key)).map(order_to_wit)
    }

    fn get(order_id: String) -> Result<wit::Order, wit::Error> {
        with_payments(|p| p.get(&order_id)).map(order_to_wit)
    }
}

impl ledger::Guest for Component {
    fn department_entries(
        department: String,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<wit::LedgerEntry>, wit::Error> {
        with_payments(|p| p.department_entries(&department, offset, limit))
            .map(|entries| entries.into_iter().map(entry_to_wit).collect())
    }

    fn balance(account: String) -> Result<wit::Money, wit::Error> {
        with_payments(|p| p.balance(&account)).map(money_to_wit)
    }
}

export!(Component);
