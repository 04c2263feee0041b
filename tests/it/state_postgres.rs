//! Component state on PostgreSQL, the store several hosts share: it keeps
//! what the embedded store keeps, a trapped call leaves nothing behind, and
//! two hosts on one database take turns under a named lock.
//!
//! Each test creates and drops its own database on the server at
//! `ZHONGTAI_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`).
//! Where no server answers, the tests say so and pass, unless
//! `ZHONGTAI_REQUIRE_POSTGRES` is set (as `.ci/run` does): then they fail.

use crate::support::{self, load, runtime_over};

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value as Json, json};
use zhongtai_runtime::{
    KeyValueStore, PostgresStore, RuntimeLimits, SqliteStore, StateError, Write,
};

/// A database of its own on the test server, dropped afterwards.
pub struct Database {
    server: String,
    name: String,
}

impl Database {
    /// A fresh database, or `None` (after saying why) when no server
    /// answers and none is required.
    pub fn create(test: &str) -> Option<Self> {
        let server = std::env::var("ZHONGTAI_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        let mut admin = match postgres::Client::connect(
            &format!("{server}/postgres"),
            postgres::NoTls,
        ) {
            Ok(client) => client,
            Err(error) if std::env::var_os("ZHONGTAI_REQUIRE_POSTGRES").is_none() => {
                eprintln!(
                    "skipped {test}: no PostgreSQL at {server} ({error}); set ZHONGTAI_TEST_POSTGRES to point at one"
                );
                return None;
            }
            Err(error) => {
                panic!("{test}: PostgreSQL is required but {server} does not answer: {error}")
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("zhongtai_test_{}_{nanos}", std::process::id());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        Some(Self { server, name })
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut admin) =
            postgres::Client::connect(&format!("{}/postgres", self.server), postgres::NoTls)
        {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

fn put(bucket: &str, key: &str, value: Option<&str>) -> Write {
    Write {
        bucket: bucket.into(),
        key: key.into(),
        value: value.map(|v| v.as_bytes().to_vec()),
    }
}

/// What every store must do alike.
fn conformance(store: &dyn KeyValueStore) {
    assert_eq!(store.get("b", "missing").unwrap(), None);
    store
        .commit(vec![
            put("b", "a", Some("1")),
            put("b", "B", Some("2")),
            put("b", "c", Some("3")),
            put("other", "a", Some("x")),
            put("b", "c", None),
        ])
        .unwrap();
    assert_eq!(store.get("b", "a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(
        store.get("b", "c").unwrap(),
        None,
        "later writes of a commit win"
    );
    // Keys in byte order, paged.
    let first = store.list_keys("b", None, 1).unwrap();
    assert_eq!(first.keys, ["B"]);
    let rest = store.list_keys("b", first.cursor, 10).unwrap();
    assert_eq!((rest.keys, rest.cursor), (vec!["a".to_owned()], None));
    assert_eq!(store.increment("b", "n", 5).unwrap(), 5);
    assert_eq!(store.increment("b", "n", 1).unwrap(), 6);
    assert!(matches!(
        store.increment("b", "a", u64::MAX),
        Err(StateError::CounterOverflow { .. })
    ));
    store.set("b", "text", b"abc").unwrap();
    assert!(matches!(
        store.increment("b", "text", 1),
        Err(StateError::NotACounter { .. })
    ));
    store.delete("b", "a").unwrap();
    store.delete("b", "a").unwrap();
    assert_eq!(store.get("b", "a").unwrap(), None);
}

#[test]
fn the_postgres_store_keeps_what_the_embedded_one_keeps() {
    conformance(&SqliteStore::temporary().unwrap());
    let Some(database) = Database::create("the_postgres_store_keeps_what_the_embedded_one_keeps")
    else {
        return;
    };
    conformance(&PostgresStore::connect(&database.url()).unwrap());
    // A second host's connect finds the schema in place.
    let again = PostgresStore::connect(&database.url()).unwrap();
    assert_eq!(again.get("b", "B").unwrap().as_deref(), Some(&b"2"[..]));
    let refused = PostgresStore::connect("postgres://postgres@127.0.0.1:1/none").err();
    assert!(refused.is_some_and(|e| e.to_string().contains("storage engine")));
}

fn limits() -> RuntimeLimits {
    RuntimeLimits {
        memory_bytes: 32 * 1024 * 1024,
        deadline: Duration::from_secs(2),
        // How calls end is tested here, not their priority (see
        // runtime_limits.rs).
        demote_after: None,
        ..RuntimeLimits::default()
    }
}

#[test]
fn a_trapped_call_leaves_nothing_on_postgres() {
    let Some(database) = Database::create("a_trapped_call_leaves_nothing_on_postgres") else {
        return;
    };
    let store = Arc::new(PostgresStore::connect(&database.url()).unwrap());
    let runtime = runtime_over(store, limits());
    let sampler = load(&runtime, "fixture-sampler");
    let call = |function: &str, args: Json| {
        runtime
            .call(
                &sampler,
                support::context("tests"),
                "antics",
                function,
                &args,
            )
            .map(|r| r.json)
    };
    for (then, code) in [("panic", "trap"), ("spin", "timeout"), ("hog", "memory")] {
        let key = format!("after-{then}");
        let error = call("write-then", json!({"key": key, "then": then})).unwrap_err();
        assert!(error.code().contains(code), "{then}: {error}");
        assert_eq!(call("read", json!({"key": key})).unwrap(), Json::Null);
        assert_eq!(
            call("read", json!({"key": format!("{key}/batch")})).unwrap(),
            Json::Null
        );
    }
    call("write-then", json!({"key": "k", "then": "return"})).unwrap();
    assert_eq!(call("read", json!({"key": "k"})).unwrap(), json!("written"));
}

#[test]
fn two_hosts_on_one_database_take_turns_under_a_lock() {
    let Some(database) = Database::create("two_hosts_on_one_database_take_turns_under_a_lock")
    else {
        return;
    };
    // Two runtimes with stores of their own: two hosts, one database.
    let hosts: Vec<_> = (0..2)
        .map(|_| {
            let store = Arc::new(PostgresStore::connect(&database.url()).unwrap());
            let runtime = runtime_over(store, limits());
            let sampler = load(&runtime, "fixture-sampler");
            (runtime, sampler)
        })
        .collect();
    const PER_THREAD: u64 = 15;
    let mut seen: Vec<u64> = std::thread::scope(|scope| {
        let workers: Vec<_> = hosts
            .iter()
            .flat_map(|host| std::iter::repeat_n(host, 3))
            .map(|(runtime, sampler)| {
                scope.spawn(move || {
                    (0..PER_THREAD)
                        .map(|_| {
                            runtime
                                .call(
                                    sampler,
                                    support::context("tests"),
                                    "antics",
                                    "tally",
                                    &json!({}),
                                )
                                .unwrap()
                                .json
                                .as_u64()
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    seen.sort_unstable();
    let expected: Vec<u64> = (1..=6 * PER_THREAD).collect();
    assert_eq!(seen, expected, "no update lost, none counted twice");
}
