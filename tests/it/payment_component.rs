//! The payment component through the host runtime: the order life cycle,
//! every reachable error, idempotent replays, and concurrent duplicates.

use crate::support::{Capability, runtime};
use serde_json::{Value as Json, json};
use zhongtai_runtime::{HostConfig, RuntimeLimits};

const PAYER: &str = "11010519491231002X";

struct Payment {
    capability: Capability,
    _dir: tempfile::TempDir,
}

impl Payment {
    fn new() -> Self {
        let (runtime, dir) = runtime(RuntimeLimits::default(), HostConfig::default());
        Self {
            capability: Capability::load(runtime, "zhongtai-payment"),
            _dir: dir,
        }
    }

    fn call_as(&self, department: &str, function: &str, args: Json) -> Json {
        self.capability.call_as(department, function, args)
    }

    fn call(&self, function: &str, args: Json) -> Json {
        self.call_as("taxation", function, args)
    }

    fn create(&self, amount: i64, key: &str) -> Json {
        self.call(
            "orders.create",
            json!({
                "request": {
                    "payer": PAYER,
                    "payee-department": "taxation",
                    "amount": {"amount": amount, "currency": "CNY"},
                    "purpose": "vehicle and vessel tax",
                },
                "idempotency-key": key,
            }),
        )
    }

    fn pay(&self, order: &str, key: &str) -> Json {
        self.call(
            "orders.pay",
            json!({"order-id": order, "channel": "sandbox", "idempotency-key": key}),
        )
    }

    fn refund(&self, order: &str, amount: i64, key: &str) -> Json {
        self.call(
            "orders.refund",
            json!({"order-id": order, "amount": amount, "reason": "assessed twice", "idempotency-key": key}),
        )
    }

    fn balance(&self, account: &str) -> i64 {
        self.call("ledger.balance", json!({ "account": account }))["ok"]["amount"]
            .as_i64()
            .unwrap_or_else(|| panic!("no balance for {account}"))
    }
}

fn id(order: &Json) -> String {
    order["ok"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an order, got {order}"))
        .to_owned()
}

#[test]
fn create_pay_refund_and_read_the_ledger() {
    let payment = Payment::new();
    let order = payment.create(36_000, "bill-2026-001");
    assert_eq!(order["ok"]["status"], "created");
    assert_eq!(
        order["ok"]["amount"],
        json!({"amount": 36000, "currency": "CNY"})
    );
    let order_id = id(&order);
    let paid = payment.pay(&order_id, "pay-2026-001");
    assert_eq!(paid["ok"]["status"], "paid");
    assert_eq!(paid["ok"]["channel"], "sandbox");
    assert_eq!(payment.balance("department:taxation"), 36_000);

    let partly = payment.refund(&order_id, 6_000, "refund-1");
    assert_eq!(partly["ok"]["status"], "partly-refunded");
    assert_eq!(partly["ok"]["refunded"], 6000);
    assert_eq!(
        payment.refund(&order_id, 30_001, "refund-2"),
        json!({"err": {"refund-exceeds-paid": 30000}})
    );
    assert_eq!(
        payment.refund(&order_id, 30_000, "refund-3")["ok"]["status"],
        "refunded"
    );
    assert_eq!(payment.balance("department:taxation"), 0);
    assert_eq!(payment.balance(&format!("payer:{PAYER}")), 0);
    assert_eq!(payment.balance("channel:sandbox"), 0);

    let entries = payment.call(
        "ledger.department-entries",
        json!({"department": "taxation", "offset": 0, "limit": 10}),
    );
    let amounts: Vec<i64> = entries["ok"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [36_000, -6_000, -30_000]);
    assert_eq!(entries["ok"][0]["kind"], "payment");
    assert_eq!(
        payment.call("orders.get", json!({"order-id": order_id}))["ok"]["status"],
        "refunded"
    );
}

#[test]
fn every_reachable_error() {
    let payment = Payment::new();
    let create = |request: Json, key: &str| {
        payment.call(
            "orders.create",
            json!({"request": request, "idempotency-key": key}),
        )
    };
    let request = |amount: Json, currency: &str| json!({"payer": PAYER, "payee-department": "taxation", "amount": {"amount": amount, "currency": currency}, "purpose": "fee"});
    assert!(create(request(json!(0), "CNY"), "k1")["err"]["invalid-amount"].is_string());
    assert_eq!(
        create(request(json!(5), "EUR"), "k2"),
        json!({"err": {"unsupported-currency": "EUR"}})
    );
    let mut bad_payer = request(json!(5), "CNY");
    bad_payer["payer"] = json!("12345");
    assert!(create(bad_payer, "k3")["err"]["invalid-input"].is_string());
    let mut other_payee = request(json!(5), "CNY");
    other_payee["payee-department"] = json!("customs");
    assert!(create(other_payee, "k4")["err"]["forbidden"].is_string());

    let order_id = id(&payment.create(500, "c1"));
    assert_eq!(
        payment.pay("PO00000000000000000999", "p0"),
        json!({"err": "unknown-order"})
    );
    assert_eq!(
        payment.call(
            "orders.pay",
            json!({"order-id": order_id, "channel": "cash", "idempotency-key": "p1"})
        ),
        json!({"err": {"unknown-channel": "cash"}})
    );
    assert_eq!(
        payment.refund(&order_id, 1, "r0"),
        json!({"err": {"invalid-transition": "created"}})
    );
    assert!(payment.create(999, "c1")["err"]["idempotency-conflict"].is_string());
    let foreign = payment.call_as(
        "customs",
        "orders.cancel",
        json!({"order-id": order_id, "idempotency-key": "x"}),
    );
    assert!(foreign["err"]["forbidden"].is_string(), "{foreign}");
    let cancelled = payment.call(
        "orders.cancel",
        json!({"order-id": order_id, "idempotency-key": "x1"}),
    );
    assert_eq!(cancelled["ok"]["status"], "cancelled");
    assert_eq!(
        payment.pay(&order_id, "p2"),
        json!({"err": {"invalid-transition": "cancelled"}})
    );
    let declined = id(&payment.create(40_002, "c-declined"));
    assert!(payment.pay(&declined, "p-declined")["err"]["channel-declined"].is_string());
    let too_many = payment.call(
        "ledger.department-entries",
        json!({"department": "taxation", "offset": 0, "limit": 0}),
    );
    assert!(too_many["err"]["invalid-input"].is_string());
}

#[test]
fn a_replayed_payment_returns_the_first_result_and_charges_once() {
    let payment = Payment::new();
    let order_id = id(&payment.create(1_000, "c1"));
    let first = payment.pay(&order_id, "pay-once");
    let replay = payment.pay(&order_id, "pay-once");
    assert_eq!(first, replay);
    assert_eq!(
        payment.pay(&order_id, "pay-twice"),
        json!({"err": {"invalid-transition": "paid"}})
    );
    assert_eq!(payment.balance("department:taxation"), 1_000);
}

#[test]
fn concurrent_duplicates_charge_exactly_once() {
    let payment = Payment::new();
    let order_id = id(&payment.create(2_500, "c1"));
    // Eight calls race with the same key, eight more with keys of their own.
    let outcomes: Vec<Json> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let (payment, order_id) = (&payment, &order_id);
                scope.spawn(move || {
                    let key = if i < 8 {
                        "shared-key".to_owned()
                    } else {
                        format!("own-key-{i}")
                    };
                    payment.pay(order_id, &key)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let paid: Vec<&Json> = outcomes.iter().filter(|o| o.get("ok").is_some()).collect();
    let shared_ok = outcomes[..8]
        .iter()
        .filter(|o| o.get("ok").is_some())
        .count();
    assert!(
        shared_ok == 8 || shared_ok == 0,
        "one key, one outcome: {outcomes:?}"
    );
    assert_eq!(
        paid.iter()
            .map(|o| &o["ok"])
            .collect::<std::collections::HashSet<_>>()
            .len(),
        1
    );
    for refused in outcomes.iter().filter(|o| o.get("err").is_some()) {
        assert_eq!(refused, &json!({"err": {"invalid-transition": "paid"}}));
    }
    assert_eq!(
        payment.balance("department:taxation"),
        2_500,
        "charged exactly once"
    );
    let entries = payment.call(
        "ledger.department-entries",
        json!({"department": "taxation", "offset": 0, "limit": 100}),
    );
    assert_eq!(entries["ok"].as_array().unwrap().len(), 1);
}
