//! Calls `authn.verify` in a fresh instance in a loop, for profilers:
//! `cargo run --release -p zhongtai-runtime --example fresh_calls -- 200000`.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use zhongtai_runtime::{
    CallContext, HostConfig, Runtime, RuntimeLimits, RuntimeOptions, Slug, SqliteStore,
};

fn context() -> CallContext {
    CallContext::new(
        Slug::parse("department", "bench").expect("department"),
        Slug::parse("service", "verify").expect("service"),
    )
}

fn main() -> anyhow::Result<()> {
    let calls: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built = zhongtai_build::build(&root, &["zhongtai-auth"], true)?;
    let mut config = HostConfig::default();
    config.set(
        "zhongtai:auth",
        "signing-keys",
        "bench:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=",
    );
    config.set("zhongtai:auth", "argon2-memory-kib", "256");
    config.set("zhongtai:auth", "argon2-iterations", "1");
    let runtime = Runtime::new(RuntimeOptions {
        limits: RuntimeLimits::default(),
        cache_dir: None,
        config,
        store: Arc::new(SqliteStore::temporary()?),
        compiler: Default::default(),
    })?;
    let auth = runtime.load(&std::fs::read(&built["zhongtai-auth"])?)?;
    let citizen = "11010519491231002X";
    let register = json!({"kind": "citizen", "id": citizen, "display-name": "Li", "password": "s3cret-password"});
    runtime.call(&auth, context(), "authn", "register", &register)?;
    let login = json!({"id": citizen, "password": "s3cret-password"});
    let session = runtime
        .call(&auth, context(), "authn", "login", &login)?
        .json;
    let args = json!({ "token": session["ok"]["token"] });
    println!(
        "pagemap scan available: {}",
        wasmtime::PoolingAllocationConfig::is_pagemap_scan_available()
    );
    let instantiate_only = std::env::args().nth(2).as_deref() == Some("instantiate");
    let started = Instant::now();
    for _ in 0..calls {
        if instantiate_only {
            drop(runtime.instantiate(&auth, context())?);
        } else {
            runtime.call(&auth, context(), "authn", "verify", &args)?;
        }
    }
    let per_call = started.elapsed() / calls;
    let what = if instantiate_only {
        "instantiations"
    } else {
        "fresh-instance verify calls"
    };
    println!("{calls} {what}: {per_call:?} each");
    Ok(())
}
