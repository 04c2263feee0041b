//! Component state survives `kill -9` at any moment: payments are made one
//! process at a time (`zhongtai call`) and the process group is killed at a
//! random instant; after each kill the store opens and every payment that
//! was acknowledged is there, paid, exactly once in the ledger.
//!
//! `ZHONGTAI_CRASH_ROUNDS` sets how many kills (default 25; the figure in
//! BENCHMARKS.md comes from 200).

use crate::support;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;
use zhongtai_runtime::{KeyValueStore, SqliteStore};

const BUCKET: &str = "zhongtai:payment/default";

/// Rounds to run: `ZHONGTAI_CRASH_ROUNDS`, else `default`.
pub fn crash_rounds(default: u64) -> u64 {
    std::env::var("ZHONGTAI_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A pseudo-random sequence (SplitMix64) for kill times.
pub struct Moments(pub u64);

impl Moments {
    /// The next moment, between `low` and `high` milliseconds.
    pub fn next(&mut self, low: u64, high: u64) -> Duration {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Duration::from_millis(low + z % (high - low))
    }
}

/// Kills the process group of `child` with SIGKILL and waits until all of
/// it is gone.
pub fn kill_group(child: &mut std::process::Child) {
    let group = format!("-{}", child.id());
    let killed = Command::new("kill")
        .args(["-9", "--", &group])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = child.wait();
    while Command::new("kill")
        .args(["-0", "--", &group])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
    {
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn every_acknowledged_payment_survives_kill_9() {
    let payment = support::guests()["zhongtai-payment"].clone();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let acked = work.path().join("acked");
    // Orders are created and paid, one process per call; a payment is
    // acknowledged (written to `acked`) only after its call has answered.
    let script = r#"
        n=0
        while :; do
          n=$((n+1))
          key="$ROUND-$n"
          out=$("$ZHONGTAI" call "$WASM" --package zhongtai:payment orders.create --department taxation --data-dir "$DATA" \
            "{\"request\": {\"payer\": \"11010519491231002X\", \"payee-department\": \"taxation\", \"amount\": {\"amount\": 100, \"currency\": \"CNY\"}, \"purpose\": \"crash $key\"}, \"idempotency-key\": \"c$key\"}" 2>/dev/null) || exit 1
          id=$(printf '%s' "$out" | sed -n 's/.*"id": "\(PO[0-9]*\)".*/\1/p')
          "$ZHONGTAI" call "$WASM" --package zhongtai:payment orders.pay --department taxation --data-dir "$DATA" \
            "{\"order-id\": \"$id\", \"channel\": \"sandbox\", \"idempotency-key\": \"p$key\"}" 2>/dev/null | grep -q '"status": "paid"' || exit 1
          echo "$id" >> "$ACKED"
        done
    "#;
    // One call to the end first: the component is compiled into the data
    // directory's cache once, so that the kills below land in payments,
    // not in a compile (which takes longer than a round on a busy machine,
    // and would then never finish).
    let warm = Command::new(env!("CARGO_BIN_EXE_zhongtai"))
        .args(["call", payment.to_str().unwrap(), "--package", "zhongtai:payment"])
        .args(["orders.create", "--department", "taxation", "--data-dir"])
        .arg(&data)
        .arg(r#"{"request": {"payer": "11010519491231002X", "payee-department": "taxation", "amount": {"amount": 100, "currency": "CNY"}, "purpose": "warm the cache"}, "idempotency-key": "warm"}"#)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        warm.status.success(),
        "the first call failed: {}",
        String::from_utf8_lossy(&warm.stderr)
    );
    let rounds = crash_rounds(25);
    let mut moments = Moments(0x5eed ^ rounds);
    let mut acknowledged = 0;
    for round in 0..rounds {
        let mut child = Command::new("sh")
            .args(["-c", script])
            .env("ZHONGTAI", env!("CARGO_BIN_EXE_zhongtai"))
            .env("WASM", &payment)
            .env("DATA", &data)
            .env("ACKED", &acked)
            .env("ROUND", round.to_string())
            .env("RUST_LOG", "error")
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(moments.next(50, 700));
        if let Ok(Some(status)) = child.try_wait() {
            panic!("round {round}: the payment loop stopped by itself: {status}");
        }
        kill_group(&mut child);

        // The restart: the store opens and holds every acknowledged payment.
        let store = SqliteStore::open(&data.join("state.db"))
            .unwrap_or_else(|e| panic!("round {round}: the store does not open: {e}"));
        let ids = std::fs::read_to_string(&acked).unwrap_or_default();
        for id in ids.lines() {
            let order = store
                .get(BUCKET, &format!("order/{id}"))
                .unwrap_or_else(|e| panic!("round {round}: {id}: {e}"))
                .unwrap_or_else(|| panic!("round {round}: acknowledged {id} is gone"));
            let order: Json = serde_json::from_slice(&order).unwrap();
            assert_eq!(order["status"], "paid", "round {round}: {id}: {order}");
        }
        acknowledged = ids.lines().count();
    }
    assert!(
        acknowledged > 0,
        "no payment was ever acknowledged; nothing was tested"
    );

    // The ledger holds each payment once: the payee's balance is exactly
    // what was paid (payments that committed but were not acknowledged
    // count too, so there are at least the acknowledged ones).
    let store = SqliteStore::open(&data.join("state.db")).unwrap();
    let balance = store
        .get(BUCKET, "balance/department:taxation")
        .unwrap()
        .map(|b| serde_json::from_slice::<i64>(&b).unwrap())
        .unwrap_or(0);
    let paid = support::bucket_contents(&store, BUCKET)
        .iter()
        .filter(|(k, _)| k.starts_with("order/"))
        .filter(|(_, o)| serde_json::from_slice::<Json>(o).unwrap()["status"] == "paid")
        .count() as i64;
    assert_eq!(
        balance,
        100 * paid,
        "every paid order is in the ledger once"
    );
    assert!(paid >= acknowledged as i64);
}

/// The state file belongs to the host that has it open: another process
/// opening it is told at once (not after a wait) that it is in use, and
/// opens it once the host has stopped, finding what the host wrote.
#[test]
fn the_state_file_belongs_to_the_host_that_has_it_open() {
    let data = tempfile::tempdir().unwrap();
    let platform =
        support::platform::Platform::start(&support::root().join("examples"), data.path());
    platform.register_and_login(
        "/public-security/citizens",
        "11010519491231002X",
        "Li Lei",
        "tea-and-silk-2026",
    );
    let path = data.path().join("state.db");

    let started = std::time::Instant::now();
    let refused = SqliteStore::open(&path)
        .err()
        .expect("the running host holds the file");
    assert!(
        refused
            .to_string()
            .contains("is open in another zhongtai process"),
        "{refused}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "told at once, not after a wait"
    );

    drop(platform);
    let store = SqliteStore::open(&path).expect("the file opens once the host has stopped");
    assert!(
        !support::bucket_contents(&store, "zhongtai:auth/default").is_empty(),
        "the citizen the host registered is there"
    );
}
