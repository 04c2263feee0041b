//! On-disk cache of compiled components.
//!
//! Compiling a component with Cranelift takes a tenth of a second or more;
//! loading its compiled form takes a fraction of a millisecond. Entries are
//! named by the sha256 of the component's bytes and a hash of the engine's
//! compatibility settings, so a different wasmtime or different settings
//! never reuse an entry. Only files this cache wrote are ever deserialized —
//! never bytes that came from outside — and each is written to a temporary
//! file and renamed, so a crash leaves no partial entry behind.
//!
//! What is not cached is compiled by the runtime's
//! [`Compiler`](crate::compiler::Compiler), in this process or a child.

use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl CompileCache {
    /// A cache in `dir` for components compiled by `engine`; `None` disables
    /// caching.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            engine_key: crate::runtime::compatibility(engine),
        }
    }

    fn entry(&self, digest: &str) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|dir| dir.join(format!("{digest}-{}.cwasm", self.engine_key)))
    }

    /// The engine's compatibility hash, which names every entry.
    pub(crate) fn engine_key(&self) -> &str {
        &self.engine_key
    }

    /// Whether a compiled form of the component with this digest is cached.
    pub fn contains(&self, digest: &str) -> bool {
        self.entry(digest).is_some_and(|path| path.exists())
    }

    /// The compiled form of the component whose sha256 is `digest`: from
    /// the cache when present and loadable, else made by `compile` (which
    /// returns what `Component::serialize` would) and stored.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        digest: &str,
        compile: impl FnOnce() -> anyhow::Result<Vec<u8>>,
    ) -> anyhow::Result<(Component, bool)> {
        let path = self.entry(digest);
        if let Some(path) = path.as_ref().filter(|path| path.exists()) {
            // SAFETY: the file was produced by `Component::serialize` of this
            // engine configuration and written by this cache only (see the
            // module docs); wasmtime checks the engine compatibility again.
            match unsafe { Component::deserialize_file(engine, path) } {
                Ok(component) => return Ok((component, true)),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "discarding unloadable compiled component");
                }
            }
        }
        let compiled = compile()?;
        if let Some(path) = path {
            match store_entry(&path, &compiled) {
                // SAFETY: as above; the file now holds `compiled`.
                Ok(()) => {
                    return Ok((
                        unsafe { Component::deserialize_file(engine, &path) }?,
                        false,
                    ));
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "could not cache compiled component");
                }
            }
        }
        // SAFETY: `compiled` was made by the runtime's compiler, from an
        // engine whose compatibility hash equals `engine`'s (see
        // `crate::compiler`); wasmtime checks the compatibility again.
        Ok((unsafe { Component::deserialize(engine, &compiled) }?, false))
    }
}

fn store_entry(path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile_in(dir)?;
    std::io::Write::write_all(&mut temp.1, compiled)?;
    temp.1.sync_all()?;
    std::fs::rename(&temp.0, path)
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = format!(".tmp-{}", crate::context::new_request_id());
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}
