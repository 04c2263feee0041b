//! Importing the state of an earlier version, kept in a sled directory.

use std::path::{Path, PathBuf};

use super::{KeyValueStore, StateError, Write, unseal};

/// How the trees of the earlier store were named.
const TREE_PREFIX: &str = "kv/";

/// Copies every bucket of the sled store in the directory `sled_dir` into
/// `store`, in one commit, each value checked against its checksum; then
/// renames the directory to `<name>.imported`, so that it is imported once
/// and kept until the operator removes it. Returns how many keys were
/// imported and where the old directory went.
pub fn import_sled(
    sled_dir: &Path,
    store: &dyn KeyValueStore,
) -> Result<(usize, PathBuf), StateError> {
    let engine = |e: sled::Error| {
        StateError::Engine(format!(
            "reading the earlier store in {}: {e}",
            sled_dir.display()
        ))
    };
    let db = sled::Config::new().path(sled_dir).open().map_err(engine)?;
    let mut writes = Vec::new();
    for name in db.tree_names() {
        let name = String::from_utf8_lossy(&name).into_owned();
        let Some(bucket) = name.strip_prefix(TREE_PREFIX) else {
            continue;
        };
        for entry in db.open_tree(&name).map_err(engine)?.iter() {
            let (key, sealed) = entry.map_err(engine)?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let value = unseal(bucket, &key, &sealed)?;
            writes.push(Write {
                bucket: bucket.to_owned(),
                key,
                value: Some(value),
            });
        }
    }
    drop(db);
    let count = writes.len();
    store.commit(writes)?;
    let mut kept = sled_dir.as_os_str().to_owned();
    kept.push(".imported");
    let kept = PathBuf::from(kept);
    std::fs::rename(sled_dir, &kept).map_err(|e| {
        StateError::Engine(format!(
            "imported {count} keys, but could not rename {} to {}: {e}",
            sled_dir.display(),
            kept.display()
        ))
    })?;
    Ok((count, kept))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{SqliteStore, seal};

    #[test]
    fn an_earlier_sled_store_is_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("store");
        {
            let db = sled::Config::new().path(&old).open().unwrap();
            let tree = db.open_tree("kv/zhongtai:auth/state").unwrap();
            tree.insert("subject/1", seal(b"{\"id\":1}")).unwrap();
            tree.insert("n", seal(b"7")).unwrap();
            db.flush().unwrap();
        }
        let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        let (count, kept) = import_sled(&old, &store).unwrap();
        assert_eq!(count, 2);
        assert!(!old.exists() && kept.ends_with("store.imported"));
        assert_eq!(
            store
                .get("zhongtai:auth/state", "subject/1")
                .unwrap()
                .as_deref(),
            Some(&b"{\"id\":1}"[..])
        );
        assert_eq!(store.increment("zhongtai:auth/state", "n", 1).unwrap(), 8);
    }
}
