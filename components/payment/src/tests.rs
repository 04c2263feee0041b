//! Native tests of the payment logic, including property tests of the
//! ledger and of idempotency over random sequences of operations.

use proptest::prelude::*;
use zhongtai_guest::testing::{FakePlatform, MemoryStore};

use crate::model::*;
use crate::service::Payments;

type Memory = MemoryStore;

struct Env;

impl Env {
    #[allow(clippy::new_ret_no_self)]
    fn new(department: &str) -> FakePlatform {
        FakePlatform::new(department)
    }
}

const PAYER: &str = "11010519491231002X";
const DEPT: &str = "taxation";

fn new_order(amount: i64) -> NewOrder {
    NewOrder {
        payer: PAYER.into(),
        payee_department: DEPT.into(),
        amount: Money {
            amount,
            currency: "CNY".into(),
        },
        purpose: "individual income tax".into(),
    }
}

fn sum_of_balances(store: &Memory) -> i64 {
    store
        .0
        .borrow()
        .iter()
        .filter(|(k, _)| k.starts_with("balance/"))
        .map(|(_, v)| serde_json::from_slice::<i64>(v).unwrap())
        .sum()
}

#[test]
fn an_order_is_paid_and_refunded_in_parts() {
    let (store, env) = (Memory::default(), Env::new(DEPT));
    let payments = Payments::new(&store, &env);
    let order = payments.create(new_order(10_000), "c1").unwrap();
    assert_eq!(order.id, "PO00000000000000000001");
    assert_eq!(order.status, OrderStatus::Created);
    let paid = payments.pay(&order.id, "sandbox", "p1").unwrap();
    assert_eq!(paid.status, OrderStatus::Paid);
    assert_eq!(
        payments.balance("department:taxation").unwrap().amount,
        10_000
    );
    assert_eq!(
        payments.balance(&format!("payer:{PAYER}")).unwrap().amount,
        0
    );
    assert_eq!(payments.balance("channel:sandbox").unwrap().amount, -10_000);

    let part = payments.refund(&order.id, 4_000, "overpaid", "r1").unwrap();
    assert_eq!(
        (part.status, part.refunded),
        (OrderStatus::PartlyRefunded, 4_000)
    );
    assert_eq!(
        payments.refund(&order.id, 6_001, "too much", "r2"),
        Err(PaymentError::RefundExceedsPaid(6_000))
    );
    let full = payments.refund(&order.id, 6_000, "rest", "r3").unwrap();
    assert_eq!(full.status, OrderStatus::Refunded);
    assert_eq!(payments.balance("department:taxation").unwrap().amount, 0);
    assert_eq!(sum_of_balances(&store), 0);
    let entries = payments.department_entries(DEPT, 0, 10).unwrap();
    assert_eq!(
        entries.iter().map(|e| e.amount).collect::<Vec<_>>(),
        [10_000, -4_000, -6_000]
    );
    assert_eq!(
        payments.department_entries(DEPT, 1, 1).unwrap()[0].amount,
        -4_000
    );
}

#[test]
fn transitions_are_checked() {
    let (store, env) = (Memory::default(), Env::new(DEPT));
    let payments = Payments::new(&store, &env);
    let order = payments.create(new_order(500), "c1").unwrap();
    assert_eq!(
        payments.refund(&order.id, 1, "x", "r1"),
        Err(PaymentError::InvalidTransition(OrderStatus::Created))
    );
    assert_eq!(
        payments.cancel(&order.id, "x1").unwrap().status,
        OrderStatus::Cancelled
    );
    assert_eq!(
        payments.pay(&order.id, "sandbox", "p1"),
        Err(PaymentError::InvalidTransition(OrderStatus::Cancelled))
    );
    assert_eq!(
        payments.pay("PO9", "sandbox", "p2"),
        Err(PaymentError::UnknownOrder)
    );
    assert_eq!(
        payments.pay(&order.id, "cash", "p3"),
        Err(PaymentError::UnknownChannel("cash".into()))
    );
}

#[test]
fn a_declined_charge_changes_nothing_and_may_be_retried() {
    let (store, env) = (Memory::default(), Env::new(DEPT));
    let payments = Payments::new(&store, &env);
    let order = payments
        .create(new_order(crate::channel::Sandbox::DECLINED_AMOUNT), "c1")
        .unwrap();
    let before = store.snapshot();
    assert!(matches!(
        payments.pay(&order.id, "sandbox", "p1"),
        Err(PaymentError::ChannelDeclined(_))
    ));
    assert_eq!(store.snapshot(), before);
    assert!(matches!(
        payments.pay(&order.id, "sandbox", "p1"),
        Err(PaymentError::ChannelDeclined(_))
    ));
}

#[test]
fn input_is_validated() {
    let (store, env) = (Memory::default(), Env::new(DEPT));
    let payments = Payments::new(&store, &env);
    let mut usd = new_order(1);
    usd.amount.currency = "USD".into();
    assert_eq!(
        payments.create(usd, "k1"),
        Err(PaymentError::UnsupportedCurrency("USD".into()))
    );
    assert!(matches!(
        payments.create(new_order(0), "k2"),
        Err(PaymentError::InvalidAmount(_))
    ));
    assert!(matches!(
        payments.create(new_order(MAX_AMOUNT + 1), "k3"),
        Err(PaymentError::InvalidAmount(_))
    ));
    let mut bad_payer = new_order(1);
    bad_payer.payer = "110105194912310021".into();
    assert!(matches!(
        payments.create(bad_payer, "k4"),
        Err(PaymentError::InvalidInput(_))
    ));
    assert!(matches!(
        payments.create(new_order(1), "has space"),
        Err(PaymentError::InvalidInput(_))
    ));
    let mut foreign = new_order(1);
    foreign.payee_department = "customs".into();
    assert!(matches!(
        payments.create(foreign, "k5"),
        Err(PaymentError::Forbidden(_))
    ));
}

#[test]
fn only_the_payee_refunds_cancels_and_reads() {
    let (store, env) = (Memory::default(), Env::new(DEPT));
    let payments = Payments::new(&store, &env);
    let order = payments.create(new_order(100), "c1").unwrap();
    env.call_as("public-security");
    assert!(matches!(
        payments.cancel(&order.id, "x"),
        Err(PaymentError::Forbidden(_))
    ));
    assert!(matches!(
        payments.get(&order.id),
        Err(PaymentError::Forbidden(_))
    ));
    // Anyone may pay.
    assert_eq!(
        payments.pay(&order.id, "sandbox", "p").unwrap().status,
        OrderStatus::Paid
    );
    assert!(matches!(
        payments.refund(&order.id, 1, "x", "r"),
        Err(PaymentError::Forbidden(_))
    ));
    assert!(matches!(
        payments.balance("department:taxation"),
        Err(PaymentError::Forbidden(_))
    ));
    assert!(matches!(
        payments.department_entries(DEPT, 0, 5),
        Err(PaymentError::Forbidden(_))
    ));
}

#[test]
fn replays_return_the_first_result_and_conflicts_are_refused() {
    let (store, env) = (Memory::default(), Env::new(DEPT));
    let payments = Payments::new(&store, &env);
    let first = payments.create(new_order(100), "same").unwrap();
    let again = payments.create(new_order(100), "same").unwrap();
    assert_eq!(first, again);
    assert!(matches!(
        payments.create(new_order(200), "same"),
        Err(PaymentError::IdempotencyConflict(_))
    ));
    payments.pay(&first.id, "sandbox", "pay-1").unwrap();
    let snapshot = store.0.borrow().clone();
    let replay = payments.pay(&first.id, "sandbox", "pay-1").unwrap();
    assert_eq!(replay.status, OrderStatus::Paid);
    assert_eq!(*store.0.borrow(), snapshot, "a replay writes nothing");
    // A second payment under a new key is a transition error, not a second charge.
    assert_eq!(
        payments.pay(&first.id, "sandbox", "pay-2"),
        Err(PaymentError::InvalidTransition(OrderStatus::Paid))
    );
}

#[derive(Debug, Clone)]
enum Op {
    Create(i64),
    Pay(usize),
    Refund(usize, i64),
    Cancel(usize),
    Replay(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1i64..100_000).prop_map(Op::Create),
        (0usize..8).prop_map(Op::Pay),
        ((0usize..8), (1i64..60_000)).prop_map(|(o, a)| Op::Refund(o, a)),
        (0usize..8).prop_map(Op::Cancel),
        (0usize..64).prop_map(Op::Replay),
    ]
}

/// A request with its order resolved, so it can be replayed exactly.
#[derive(Debug, Clone)]
enum Request {
    Create(i64),
    Pay(String),
    Refund(String, i64),
    Cancel(String),
}

proptest! {
    #[test]
    fn the_ledger_balances_refunds_stay_within_payments_and_replays_change_nothing(ops in proptest::collection::vec(op(), 1..40)) {
        let (store, env) = (Memory::default(), Env::new(DEPT));
        let payments = Payments::new(&store, &env);
        let mut orders: Vec<String> = Vec::new();
        // Every request made so far, with its key and first outcome.
        let mut history: Vec<(Request, String, Result<Order, PaymentError>)> = Vec::new();
        let run = |request: &Request, key: &str| match request {
            Request::Create(amount) => payments.create(new_order(*amount), key),
            Request::Pay(id) => payments.pay(id, "sandbox", key),
            Request::Refund(id, amount) => payments.refund(id, *amount, "correction", key),
            Request::Cancel(id) => payments.cancel(id, key),
        };
        for (n, op) in ops.iter().enumerate() {
            let order = |i: &usize| orders.get(i % orders.len().max(1)).cloned();
            let request = match op {
                Op::Replay(i) => {
                    if history.is_empty() { continue; }
                    let (request, key, outcome) = history[i % history.len()].clone();
                    let snapshot = store.0.borrow().clone();
                    let replayed = run(&request, &key);
                    prop_assert_eq!(&replayed, &outcome);
                    prop_assert_eq!(&*store.0.borrow(), &snapshot);
                    continue;
                }
                Op::Create(amount) => Request::Create(*amount),
                Op::Pay(i) => match order(i) { Some(id) => Request::Pay(id), None => continue },
                Op::Refund(i, amount) => match order(i) { Some(id) => Request::Refund(id, *amount), None => continue },
                Op::Cancel(i) => match order(i) { Some(id) => Request::Cancel(id), None => continue },
            };
            let key = format!("key-{n}");
            let outcome = run(&request, &key);
            if let (Request::Create(_), Ok(order)) = (&request, &outcome) {
                orders.push(order.id.clone());
            }
            history.push((request, key, outcome));
            prop_assert_eq!(sum_of_balances(&store), 0);
            for id in &orders {
                let order = payments.get(id).unwrap();
                prop_assert!(order.refunded >= 0 && order.refunded <= order.amount.amount);
                if order.status != OrderStatus::Created && order.status != OrderStatus::Cancelled {
                    prop_assert!(order.channel.is_some());
                }
            }
        }
        let entries: i64 = store.0.borrow().iter()
            .filter(|(k, _)| k.starts_with("ledger/"))
            .map(|(_, v)| serde_json::from_slice::<LedgerEntry>(v).unwrap().amount)
            .sum();
        prop_assert_eq!(entries, 0, "debits equal credits");
    }
}
