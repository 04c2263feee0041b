//! What a fresh instance per call costs: `authn.verify` of the auth component
//! (a) in a fresh instance per call, as services run it, (b) on a live
//! instance, (c) as the same Rust logic called natively over the same store;
//! plus the pieces of (a): instantiation alone, and a trivial call in a fresh
//! instance.
//!
//! Run with `cargo bench -p zhongtai-runtime --bench auth_verify`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use zhongtai_runtime::{
    CallContext, HostConfig, KeyValueStore, Runtime, RuntimeLimits, RuntimeOptions, Slug,
    SqliteStore,
};

const CITIZEN: &str = "11010519491231002X";
const KEY: &str = "bench:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";

fn context() -> CallContext {
    CallContext::new(
        Slug::parse("department", "bench").unwrap(),
        Slug::parse("service", "verify").unwrap(),
    )
}

/// The auth bucket of the host's store, as the native logic sees it.
struct NativeBucket(Arc<SqliteStore>);

const BUCKET: &str = "zhongtai:auth/default";

impl zhongtai_guest::Storage for NativeBucket {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.get(BUCKET, key).map_err(|e| e.to_string())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.0.set(BUCKET, key, value).map_err(|e| e.to_string())
    }
    fn delete(&self, key: &str) -> Result<(), String> {
        self.0.delete(BUCKET, key).map_err(|e| e.to_string())
    }
    fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), String> {
        let writes = entries
            .into_iter()
            .map(|(key, value)| zhongtai_runtime::Write {
                bucket: BUCKET.to_owned(),
                key,
                value: Some(value),
            })
            .collect();
        self.0.commit(writes).map_err(|e| e.to_string())
    }
    fn increment(&self, key: &str, delta: u64) -> Result<u64, String> {
        self.0
            .increment(BUCKET, key, delta)
            .map_err(|e| e.to_string())
    }
}

struct NativeEnvironment(HostConfig);

impl zhongtai_guest::Platform for NativeEnvironment {
    type Guard = ();
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }
    fn random(&self, buf: &mut [u8]) {
        buf.fill(7);
    }
    fn config(&self, key: &str) -> Option<String> {
        self.0.package("zhongtai:auth").get(key).cloned()
    }
    fn caller_department(&self) -> String {
        "bench".into()
    }
    fn lock(&self, _name: &str) -> Result<(), String> {
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built = zhongtai_build::build(&root, &["zhongtai-auth", "fixture-sampler"], true)
        .expect("building guests");
    let mut config = HostConfig::default();
    config.set("zhongtai:auth", "signing-keys", KEY);
    config.set("zhongtai:auth", "argon2-memory-kib", "256");
    config.set("zhongtai:auth", "argon2-iterations", "1");
    let store = Arc::new(SqliteStore::temporary().expect("store"));
    let runtime = Runtime::new(RuntimeOptions {
        limits: RuntimeLimits::default(),
        cache_dir: None,
        config: config.clone(),
        store: store.clone(),
        compiler: Default::default(),
    })
    .expect("runtime");
    let auth = runtime
        .load(&std::fs::read(&built["zhongtai-auth"]).expect("auth wasm"))
        .expect("load auth");
    let sampler = runtime
        .load(&std::fs::read(&built["fixture-sampler"]).expect("sampler wasm"))
        .expect("load sampler");
    runtime
        .call(
            &auth,
            context(),
            "authn",
            "register",
            &json!({"kind": "citizen", "id": CITIZEN, "display-name": "Li", "password": "s3cret-password"}),
        )
        .expect("register");
    let session = runtime
        .call(
            &auth,
            context(),
            "authn",
            "login",
            &json!({"id": CITIZEN, "password": "s3cret-password"}),
        )
        .expect("login")
        .json;
    let token = session["ok"]["token"].as_str().expect("token").to_owned();
    let args = json!({ "token": token });

    let mut group = c.benchmark_group("auth-verify");
    group.bench_function("a-fresh-instance-per-call", |b| {
        b.iter(|| {
            let claims = runtime
                .call(&auth, context(), "authn", "verify", &args)
                .unwrap()
                .json;
            black_box(claims);
        })
    });
    let mut live = runtime.instantiate(&auth, context()).expect("instance");
    group.bench_function("b-live-instance", |b| {
        b.iter(|| black_box(live.call("authn", "verify", &args).unwrap()))
    });
    let bucket = NativeBucket(store.clone());
    let environment = NativeEnvironment(config.clone());
    group.bench_function("c-native", |b| {
        b.iter(|| {
            let native = zhongtai_auth::Auth::new(&bucket, &environment);
            black_box(native.verify(&token).unwrap())
        })
    });
    group.bench_function("parts-instantiate-only", |b| {
        b.iter(|| black_box(runtime.instantiate(&auth, context()).unwrap()))
    });
    group.bench_function("parts-fresh-instance-trivial-call", |b| {
        b.iter(|| {
            black_box(
                runtime
                    .call(
                        &sampler,
                        context(),
                        "shapes",
                        "add",
                        &json!({"a": 1, "b": 2}),
                    )
                    .unwrap()
                    .json,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
