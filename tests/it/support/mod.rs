//! Shared test support: builds the guest components once per test binary and
//! makes runtimes over temporary stores.

pub mod platform;

/// Runs `zhongtai ARGS` in `dir` (or here), quietly logged.
pub fn zhongtai_in(dir: Option<&Path>, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_zhongtai"));
    command.args(args).env("RUST_LOG", "warn");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command.output().expect("running zhongtai")
}

/// What a command that must succeed printed; its output when it failed.
pub fn succeeded(output: std::process::Output) -> String {
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    printed
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use zhongtai_runtime::{
    CallContext, HostConfig, LoadedComponent, Runtime, RuntimeLimits, RuntimeOptions, Slug,
    SqliteStore,
};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every guest component and fixture, built for wasm32-wasip2, by package.
pub fn guests() -> &'static BTreeMap<String, PathBuf> {
    static BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let packages: Vec<&str> = zhongtai_build::CAPABILITIES
            .iter()
            .chain(zhongtai_build::FIXTURES)
            .copied()
            .collect();
        zhongtai_build::build(root(), &packages, true).expect("building guest components")
    })
}

/// The bytes of one built guest.
pub fn guest_bytes(package: &str) -> Vec<u8> {
    std::fs::read(&guests()[package]).expect("reading built guest")
}

/// Compiled components are cached across test binaries here.
pub fn compile_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("compiled")
}

/// A runtime over a store in `dir`.
pub fn runtime_in(dir: &Path, limits: RuntimeLimits, config: HostConfig) -> Runtime {
    let store = SqliteStore::open(&dir.join("state.db")).expect("opening store");
    Runtime::new(RuntimeOptions {
        limits,
        cache_dir: Some(compile_cache()),
        config,
        store: Arc::new(store),
        compiler: Default::default(),
    })
    .expect("building runtime")
}

/// A runtime over `store`, with the shared compile cache.
pub fn runtime_over(
    store: Arc<dyn zhongtai_runtime::KeyValueStore>,
    limits: RuntimeLimits,
) -> Runtime {
    Runtime::new(RuntimeOptions {
        limits,
        cache_dir: Some(compile_cache()),
        config: HostConfig::default(),
        store,
        compiler: Default::default(),
    })
    .expect("building runtime")
}

/// A runtime over a fresh temporary store, with its directory.
pub fn runtime(limits: RuntimeLimits, config: HostConfig) -> (Runtime, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    (runtime_in(dir.path(), limits, config), dir)
}

/// Loads a built guest into `runtime`.
pub fn load(runtime: &Runtime, package: &str) -> LoadedComponent {
    runtime.load(&guest_bytes(package)).expect("loading guest")
}

/// A calling context for `department`.
pub fn context(department: &str) -> CallContext {
    CallContext::new(
        Slug::parse("department", department).expect("department id"),
        Slug::parse("service", "tests").expect("service id"),
    )
}

/// A registry in `dir` holding the built fixture `example:sampler@1.0.0`.
pub fn sampler_registry(dir: &Path) -> zhongtai_registry::LocalRegistry {
    use zhongtai_registry::{PackageName, PublishRequest, Registry, name::parse_version};
    let registry = zhongtai_registry::LocalRegistry::open(
        dir,
        zhongtai_runtime::platform::provided_interfaces(),
    )
    .expect("opening registry");
    registry
        .publish(PublishRequest {
            package: PackageName::parse("example:sampler").expect("package name"),
            version: parse_version("1.0.0").expect("version"),
            bytes: guest_bytes("fixture-sampler"),
            signed: None,
        })
        .expect("publishing the sampler");
    registry
}

/// Checks `actual` against the golden file `tests/golden/<name>`; with
/// `UPDATE_GOLDEN=1` the file is rewritten instead.
pub fn assert_golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("writing golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(expected, actual, "output differs from {}", path.display());
}

/// A capability component loaded in a runtime, called as a department.
pub struct Capability {
    /// The runtime.
    pub runtime: Runtime,
    /// The loaded component.
    pub component: LoadedComponent,
}

impl Capability {
    /// Loads the built guest `package` into `runtime`.
    pub fn load(runtime: Runtime, package: &str) -> Self {
        let component = load(&runtime, package);
        Self { runtime, component }
    }

    /// Calls `interface.function` (e.g. `orders.pay`) as `department` and
    /// returns the JSON result; a host error fails the test.
    pub fn call_as(
        &self,
        department: &str,
        function: &str,
        args: serde_json::Value,
    ) -> serde_json::Value {
        let (interface, function) = function.split_once('.').expect("interface.function");
        self.runtime
            .call(
                &self.component,
                context(department),
                interface,
                function,
                &args,
            )
            .unwrap_or_else(|e| panic!("{function}: {e}"))
            .json
    }
}

/// Checks every `*.toml` under `tests/<folder>` against the `.err` file
/// beside it: `render` gets the file's name as `<last folder part>/<file>`
/// and its text and returns the output to compare. With `UPDATE_GOLDEN=1`
/// the `.err` files are rewritten instead. At least `at_least` cases must
/// exist, so that the set cannot shrink unnoticed.
pub fn assert_golden_dir(
    folder: &str,
    at_least: usize,
    mut render: impl FnMut(&str, &str) -> String,
) {
    let dir = root().join("tests").join(folder);
    let label = folder.rsplit('/').next().unwrap_or(folder);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= at_least, "the golden set in {folder} shrank");
    let mut failures = Vec::new();
    for path in cases {
        let file = format!(
            "{label}/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let text = std::fs::read_to_string(&path).expect("reading a golden case");
        let actual = render(&file, &text);
        let expected_path = path.with_extension("err");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&expected_path, &actual).expect("writing golden file");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{file}\n  expected: {expected}  actual:   {actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every key of `bucket` and its value.
pub fn bucket_contents(
    store: &dyn zhongtai_runtime::KeyValueStore,
    bucket: &str,
) -> Vec<(String, Vec<u8>)> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list_keys(bucket, cursor, 1000).unwrap();
        keys.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    keys.into_iter()
        .map(|k| {
            let value = store.get(bucket, &k).unwrap().unwrap();
            (k, value)
        })
        .collect()
}
