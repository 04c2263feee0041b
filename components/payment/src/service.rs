//! Payment operations: orders, idempotency and the double-entry ledger.
//!
//! Every mutating call holds the lock of its idempotency key (so that
//! duplicates of one request take turns) and then the `ledger` lock (so that
//! order transitions, ledger entries and balances change together) until it
//! has written everything it changes in one atomic batch.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zhongtai_ids::{SubjectId, department_id};

use crate::channel;
use crate::model::{
    CNY, EntryKind, LedgerEntry, MAX_AMOUNT, Money, NewOrder, Order, OrderStatus, PaymentError,
};
use zhongtai_guest::{Platform, Storage};

/// Longest purpose or refund reason, in characters.
pub const MAX_TEXT_CHARS: usize = 256;
/// Most entries one ledger page returns.
pub const MAX_PAGE: u32 = 500;

/// What an idempotency key remembers: the request and its outcome.
#[derive(Serialize, Deserialize)]
struct Remembered {
    fingerprint: String,
    outcome: Result<Order, PaymentError>,
}

/// How many entries the ledger had, as ledgers written before the
/// `ledger-sequence` counter kept it (`ledger-head`); numbering continues
/// after it.
#[derive(Default, Serialize, Deserialize)]
struct LedgerHead {
    entries: u64,
}

/// The counter that numbers ledger entries.
const LEDGER_SEQUENCE: &str = "ledger-sequence";

/// The payment capability bound to its storage and environment for one call.
pub struct Payments<'a, S: Storage, E: Platform> {
    store: &'a S,
    env: &'a E,
}

fn other(e: impl std::fmt::Display) -> PaymentError {
    PaymentError::Other(e.to_string())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, PaymentError> {
    zhongtai_guest::to_json(value).map_err(PaymentError::Other)
}

fn check_text(what: &str, text: &str) -> Result<(), PaymentError> {
    let length = text.trim().chars().count();
    if length == 0 || length > MAX_TEXT_CHARS {
        return Err(PaymentError::InvalidInput(format!(
            "{what} must be 1 to {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), PaymentError> {
    let valid = (1..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        Ok(())
    } else {
        Err(PaymentError::InvalidInput(
            "idempotency-key must be 1 to 128 printable ASCII characters without spaces".into(),
        ))
    }
}

fn check_amount(amount: i64) -> Result<(), PaymentError> {
    if amount <= 0 {
        return Err(PaymentError::InvalidAmount(format!(
            "amount must be positive, got {amount}"
        )));
    }
    if amount > MAX_AMOUNT {
        return Err(PaymentError::InvalidAmount(format!(
            "amount must be at most {MAX_AMOUNT} fen, got {amount}"
        )));
    }
    Ok(())
}

fn fingerprint(operation: &str, request: &impl Serialize) -> String {
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(request).unwrap_or_default());
    hex::encode(hasher.finalize())
}

fn order_key(id: &str) -> String {
    format!("order/{id}")
}

/// Writes collected during one operation, applied together.
#[derive(Default)]
struct Batch(Vec<(String, Vec<u8>)>);

impl Batch {
    fn put(&mut self, key: String, value: &impl Serialize) -> Result<(), PaymentError> {
        self.0.push((key, encode(value)?));
        Ok(())
    }
}

impl<'a, S: Storage, E: Platform> Payments<'a, S, E> {
    /// Binds the capability to `store` and `env`.
    pub fn new(store: &'a S, env: &'a E) -> Self {
        Self { store, env }
    }

    fn load<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, PaymentError> {
        zhongtai_guest::load_json(self.store, key).map_err(PaymentError::Other)
    }

    fn order(&self, id: &str) -> Result<Order, PaymentError> {
        if id.len() > 64 {
            return Err(PaymentError::UnknownOrder);
        }
        self.load(&order_key(id))?.ok_or(PaymentError::UnknownOrder)
    }

    fn require_payee(&self, order: &Order, action: &str) -> Result<(), PaymentError> {
        let caller = self.env.caller_department();
        if caller != order.payee_department {
            return Err(PaymentError::Forbidden(format!(
                "only {} may {action} order {}, not {caller}",
                order.payee_department, order.id
            )));
        }
        Ok(())
    }

    /// Runs `operation` once per idempotency key: a repeat of the same
    /// request returns the remembered outcome, a different request under the
    /// same key is a conflict.
    fn idempotent(
        &self,
        key: &str,
        fingerprint: String,
        operation: impl FnOnce(&mut Batch) -> Result<Order, PaymentError>,
    ) -> Result<Order, PaymentError> {
        check_key(key)?;
        let caller = self.env.caller_department();
        let remembered_key = format!("idempotency/{caller}/{key}");
        // Locks are held until the call's writes are committed: the order
        // (`order/<id>`) by the operations that change one, and every
        // account a transfer touches (`account/<name>`, in name order) by
        // the ledger; unrelated payments do not wait for each other.
        let _key_guard = self.env.lock(&remembered_key).map_err(other)?;
        if let Some(remembered) = self.load::<Remembered>(&remembered_key)? {
            if remembered.fingerprint != fingerprint {
                return Err(PaymentError::IdempotencyConflict(format!(
                    "key {key:?} was used by {caller} for a different request"
                )));
            }
            return remembered.outcome;
        }
        let mut batch = Batch::default();
        let outcome = operation(&mut batch);
        match &outcome {
            Err(error) if !error.is_deterministic() => return outcome,
            Err(_) => batch = Batch::default(),
            Ok(_) => {}
        }
        batch.put(
            remembered_key,
            &Remembered {
                fingerprint,
                outcome: outcome.clone(),
            },
        )?;
        self.store.set_many(batch.0).map_err(other)?;
        outcome
    }

    /// Creates an order; see the WIT docs of `orders.create`.
    pub fn create(&self, request: NewOrder, idempotency_key: &str) -> Result<Order, PaymentError> {
        let fingerprint = fingerprint("create", &request);
        self.idempotent(idempotency_key, fingerprint, |batch| {
            let payer =
                SubjectId::parse_party(&request.payer).map_err(PaymentError::InvalidInput)?;
            let payee =
                department_id(&request.payee_department).map_err(PaymentError::InvalidInput)?;
            if request.amount.currency != CNY {
                return Err(PaymentError::UnsupportedCurrency(
                    request.amount.currency.clone(),
                ));
            }
            check_amount(request.amount.amount)?;
            check_text("purpose", &request.purpose)?;
            let caller = self.env.caller_department();
            if caller != payee {
                return Err(PaymentError::Forbidden(format!(
                    "orders paying {payee} can only be created by {payee}, not {caller}"
                )));
            }
            let number = self.store.increment("order-sequence", 1).map_err(other)?;
            let now = self.env.now();
            let order = Order {
                id: format!("PO{number:020}"),
                payer: payer.as_str().to_owned(),
                payee_department: payee,
                amount: request.amount.clone(),
                purpose: request.purpose.trim().to_owned(),
                status: OrderStatus::Created,
                channel: None,
                refunded: 0,
                created_at: now,
                updated_at: now,
            };
            batch.put(order_key(&order.id), &order)?;
            Ok(order)
        })
    }

    /// Pays an order; see the WIT docs of `orders.pay`.
    pub fn pay(
        &self,
        order_id: &str,
        channel_name: &str,
        idempotency_key: &str,
    ) -> Result<Order, PaymentError> {
        let fingerprint = fingerprint("pay", &(order_id, channel_name));
        self.idempotent(idempotency_key, fingerprint, |batch| {
            let channel = channel::find(channel_name)
                .ok_or_else(|| PaymentError::UnknownChannel(channel_name.to_owned()))?;
            let _order_turn = self.env.lock(&order_key(order_id)).map_err(other)?;
            let mut order = self.order(order_id)?;
            if order.status != OrderStatus::Created {
                return Err(PaymentError::InvalidTransition(order.status));
            }
            channel.charge(&order)?;
            let amount = order.amount.amount;
            let payer = format!("payer:{}", order.payer);
            let payee = format!("department:{}", order.payee_department);
            let mut ledger = self.ledger_writer(2)?;
            ledger.transfer(
                &order,
                &channel::account(channel.as_ref()),
                &payer,
                amount,
                EntryKind::Payment,
            );
            ledger.transfer(&order, &payer, &payee, amount, EntryKind::Payment);
            order.status = OrderStatus::Paid;
            order.channel = Some(channel.name().to_owned());
            order.updated_at = self.env.now();
            ledger.finish(self, batch)?;
            batch.put(order_key(&order.id), &order)?;
            Ok(order)
        })
    }

    /// Refunds an order; see the WIT docs of `orders.refund`.
    pub fn refund(
        &self,
        order_id: &str,
        amount: i64,
        reason: &str,
        idempotency_key: &str,
    ) -> Result<Order, PaymentError> {
        let fingerprint = fingerprint("refund", &(order_id, amount, reason));
        self.idempotent(idempotency_key, fingerprint, |batch| {
            check_amount(amount)?;
            check_text("reason", reason)?;
            let _order_turn = self.env.lock(&order_key(order_id)).map_err(other)?;
            let mut order = self.order(order_id)?;
            self.require_payee(&order, "refund")?;
            if !matches!(
                order.status,
                OrderStatus::Paid | OrderStatus::PartlyRefunded
            ) {
                return Err(PaymentError::InvalidTransition(order.status));
            }
            let refundable = order.amount.amount - order.refunded;
            if amount > refundable {
                return Err(PaymentError::RefundExceedsPaid(refundable));
            }
            let channel_name = order.channel.clone().unwrap_or_default();
            let channel =
                channel::find(&channel_name).ok_or(PaymentError::UnknownChannel(channel_name))?;
            channel.refund(&order, amount)?;
            let payer = format!("payer:{}", order.payer);
            let payee = format!("department:{}", order.payee_department);
            let mut ledger = self.ledger_writer(2)?;
            ledger.transfer(&order, &payee, &payer, amount, EntryKind::Refund);
            ledger.transfer(
                &order,
                &payer,
                &channel::account(channel.as_ref()),
                amount,
                EntryKind::Refund,
            );
            order.refunded += amount;
            order.status = if order.refunded == order.amount.amount {
                OrderStatus::Refunded
            } else {
                OrderStatus::PartlyRefunded
            };
            order.updated_at = self.env.now();
            ledger.finish(self, batch)?;
            batch.put(order_key(&order.id), &order)?;
            Ok(order)
        })
    }

    /// Cancels an order; see the WIT docs of `orders.cancel`.
    pub fn cancel(&self, order_id: &str, idempotency_key: &str) -> Result<Order, PaymentError> {
        let fingerprint = fingerprint("cancel", &order_id);
        self.idempotent(idempotency_key, fingerprint, |batch| {
            let _order_turn = self.env.lock(&order_key(order_id)).map_err(other)?;
            let mut order = self.order(order_id)?;
            self.require_payee(&order, "cancel")?;
            if order.status != OrderStatus::Created {
                return Err(PaymentError::InvalidTransition(order.status));
            }
            order.status = OrderStatus::Cancelled;
            order.updated_at = self.env.now();
            batch.put(order_key(&order.id), &order)?;
            Ok(order)
        })
    }

    /// Returns an order; see the WIT docs of `orders.get`.
    pub fn get(&self, order_id: &str) -> Result<Order, PaymentError> {
        let order = self.order(order_id)?;
        self.require_payee(&order, "read")?;
        Ok(order)
    }

    /// Lists a department's entries; see the WIT docs of `ledger.department-entries`.
    pub fn department_entries(
        &self,
        department: &str,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<LedgerEntry>, PaymentError> {
        let department = department_id(department).map_err(PaymentError::InvalidInput)?;
        let caller = self.env.caller_department();
        if caller != department {
            return Err(PaymentError::Forbidden(format!(
                "only {department} may list its ledger entries, not {caller}"
            )));
        }
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(PaymentError::InvalidInput(format!(
                "limit must be 1 to {MAX_PAGE}"
            )));
        }
        let account = format!("department:{department}");
        let count: u64 = self
            .load(&format!("account-entries/{account}"))?
            .unwrap_or(0);
        let mut entries = Vec::new();
        for position in
            offset.saturating_add(1)..=count.min(offset.saturating_add(u64::from(limit)))
        {
            let sequence: u64 = self
                .load(&format!("account-entry/{account}/{position:020}"))?
                .ok_or_else(|| {
                    other(format!(
                        "ledger index of {account} is missing position {position}"
                    ))
                })?;
            let entry: LedgerEntry = self
                .load(&format!("ledger/{sequence:020}"))?
                .ok_or_else(|| other(format!("ledger entry {sequence} is missing")))?;
            entries.push(entry);
        }
        Ok(entries)
    }

    /// An account's balance; see the WIT docs of `ledger.balance`.
    pub fn balance(&self, account: &str) -> Result<Money, PaymentError> {
        let (kind, name) = account.split_once(':').ok_or_else(|| {
            PaymentError::InvalidInput(format!(
                "account {account:?} must be payer:…, department:… or channel:…"
            ))
        })?;
        match kind {
            "payer" => drop(SubjectId::parse_party(name).map_err(PaymentError::InvalidInput)?),
            "department" => {
                department_id(name).map_err(PaymentError::InvalidInput)?;
                let caller = self.env.caller_department();
                if caller != name {
                    return Err(PaymentError::Forbidden(format!(
                        "only {name} may read its balance, not {caller}"
                    )));
                }
            }
            "channel" if channel::find(name).is_some() => {}
            "channel" => return Err(PaymentError::UnknownChannel(name.to_owned())),
            _ => {
                return Err(PaymentError::InvalidInput(format!(
                    "account {account:?} must be payer:…, department:… or channel:…"
                )));
            }
        }
        let amount = self.load(&format!("balance/{account}"))?.unwrap_or(0);
        Ok(Money {
            amount,
            currency: CNY.to_owned(),
        })
    }

    /// A writer for `transfers` transfers (two entries each), their entry
    /// numbers taken from the ledger's sequence. A sequence number taken by
    /// a call that then fails is skipped: entries are numbered in order, not
    /// without gaps.
    fn ledger_writer(&self, transfers: u64) -> Result<LedgerWriter, PaymentError> {
        if self.store.get(LEDGER_SEQUENCE).map_err(other)?.is_none() {
            let _first = self.env.lock(LEDGER_SEQUENCE).map_err(other)?;
            if self.store.get(LEDGER_SEQUENCE).map_err(other)?.is_none() {
                let head: LedgerHead = self.load("ledger-head")?.unwrap_or_default();
                self.store
                    .increment(LEDGER_SEQUENCE, head.entries)
                    .map_err(other)?;
            }
        }
        let last = self
            .store
            .increment(LEDGER_SEQUENCE, 2 * transfers)
            .map_err(other)?;
        Ok(LedgerWriter {
            next: last + 1 - 2 * transfers,
            entries: Vec::new(),
            at: self.env.now(),
        })
    }
}

/// Entries of one operation, numbered from the sequence numbers it took.
struct LedgerWriter {
    next: u64,
    entries: Vec<LedgerEntry>,
    at: u64,
}

impl LedgerWriter {
    fn entry(
        &mut self,
        transfer_id: &str,
        order: &Order,
        account: &str,
        amount: i64,
        kind: EntryKind,
    ) {
        let sequence = self.next;
        self.next += 1;
        self.entries.push(LedgerEntry {
            sequence,
            transfer_id: transfer_id.to_owned(),
            order_id: order.id.clone(),
            account: account.to_owned(),
            amount,
            currency: order.amount.currency.clone(),
            kind,
            at: self.at,
        });
    }

    /// Debits `from` and credits `to` by `amount`.
    fn transfer(&mut self, order: &Order, from: &str, to: &str, amount: i64, kind: EntryKind) {
        let transfer_id = format!("TR{:020}", self.next / 2 + 1);
        self.entry(&transfer_id, order, from, -amount, kind);
        self.entry(&transfer_id, order, to, amount, kind);
    }

    /// Adds the entries, indexes and balances to `batch`, with every
    /// account it touches locked (in name order, so two transfers never wait
    /// for each other in a circle).
    fn finish<S: Storage, E: Platform>(
        self,
        payments: &Payments<'_, S, E>,
        batch: &mut Batch,
    ) -> Result<(), PaymentError> {
        let mut accounts: Vec<&str> = self.entries.iter().map(|e| e.account.as_str()).collect();
        accounts.sort_unstable();
        accounts.dedup();
        let mut _turns = Vec::with_capacity(accounts.len());
        for account in accounts {
            _turns.push(
                payments
                    .env
                    .lock(&format!("account/{account}"))
                    .map_err(other)?,
            );
        }
        let mut balances: Vec<(String, i64)> = Vec::new();
        let mut counts: Vec<(String, u64)> = Vec::new();
        for entry in &self.entries {
            batch.put(format!("ledger/{:020}", entry.sequence), entry)?;
            match balances
                .iter_mut()
                .find(|(account, _)| *account == entry.account)
            {
                Some((_, balance)) => *balance += entry.amount,
                None => {
                    let stored: i64 = payments
                        .load(&format!("balance/{}", entry.account))?
                        .unwrap_or(0);
                    balances.push((entry.account.clone(), stored + entry.amount));
                }
            }
            let position = match counts
                .iter_mut()
                .find(|(account, _)| *account == entry.account)
            {
                Some((_, count)) => {
                    *count += 1;
                    *count
                }
                None => {
                    let stored: u64 = payments
                        .load(&format!("account-entries/{}", entry.account))?
                        .unwrap_or(0);
                    counts.push((entry.account.clone(), stored + 1));
                    stored + 1
                }
            };
            batch.put(
                format!("account-entry/{}/{position:020}", entry.account),
                &entry.sequence,
            )?;
        }
        for (account, balance) in balances {
            batch.put(format!("balance/{account}"), &balance)?;
        }
        for (account, count) in counts {
            batch.put(format!("account-entries/{account}"), &count)?;
        }
        Ok(())
    }
}
