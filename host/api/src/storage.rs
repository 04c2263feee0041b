//! Free space where the host writes. When a watched filesystem is nearly
//! full the host refuses new writing work (every method but `GET` and
//! `HEAD`, and admin changes) with `503 storage-low`, keeps answering
//! reads, and takes writing work again by itself once space returns: the
//! space is looked at again at most once a second.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ApiError;

/// How long a look at free space is believed.
const RECHECK: Duration = Duration::from_secs(1);

/// The filesystems holding the host's data and trail, and the free space
/// below which writing work is refused.
pub struct StorageWatch {
    paths: Vec<PathBuf>,
    min_free: u64,
    last: Mutex<Option<(Instant, Option<Low>)>>,
}

/// A watched path that is low on space, and its free bytes.
type Low = (PathBuf, u64);

impl StorageWatch {
    /// Watches `paths`, refusing writing work below `min_free` bytes free.
    pub fn new(paths: Vec<PathBuf>, min_free: u64) -> Self {
        Self {
            paths,
            min_free,
            last: Mutex::new(None),
        }
    }

    /// The watched path that is low on space and its free bytes, if any.
    fn low(&self) -> Option<Low> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, low)) = &*last
            && at.elapsed() < RECHECK
        {
            return low.clone();
        }
        let low = self.paths.iter().find_map(|path| {
            let free = free_bytes(path)?;
            (free < self.min_free).then(|| (path.clone(), free))
        });
        *last = Some((Instant::now(), low.clone()));
        low
    }

    /// Refuses writing work while a watched filesystem is nearly full.
    pub fn check(&self) -> Result<(), ApiError> {
        match self.low() {
            None => Ok(()),
            Some((path, free)) => Err(ApiError::new(
                503,
                "storage-low",
                format!(
                    "the host's storage is nearly full ({} KiB free at {}, {} KiB needed): it answers reads but takes no new writing work until space is freed",
                    free / 1024,
                    path.display(),
                    self.min_free / 1024
                ),
            )),
        }
    }
}

/// Bytes an unprivileged writer may still use on the filesystem of
/// `path`; `None` when it cannot be told.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threshold_above_the_free_space_refuses_and_one_below_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        let roomy = StorageWatch::new(vec![dir.path().to_owned()], 1);
        assert!(roomy.check().is_ok());
        let cramped = StorageWatch::new(vec![dir.path().to_owned()], free.saturating_mul(2));
        let refused = cramped.check().unwrap_err();
        assert_eq!(refused.status.as_u16(), 503);
        assert_eq!(refused.code, "storage-low");
    }
}
