//! A full disk: on a small filesystem of its own (tmpfs), the host refuses
//! writing work with `503 storage-low` when space runs low, keeps
//! answering reads, fails only the requests it cannot record when space
//! runs out, and takes work again by itself once space returns — with a
//! trail that still verifies.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support;
use crate::support::platform::Platform;

/// A tmpfs mounted for one test, unmounted on drop (then its mount point
/// is removed).
struct Tmpfs {
    path: PathBuf,
    _mount_point: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts `size` (as `mount -o size=` takes it), or says why not.
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(Self {
            path: dir.path().to_owned(),
            _mount_point: dir,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn free_bytes(path: &Path) -> u64 {
    let stat = rustix::fs::statvfs(path).unwrap();
    stat.f_bavail * stat.f_frsize
}

/// A resident identity number with its check digit (GB 11643).
fn citizen(n: u32) -> String {
    let first = format!("11010519900101{n:03}");
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first
        .bytes()
        .zip(weights)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{first}{check}")
}

/// Fills the filesystem of `dir` until `leave` bytes are free (0: until
/// it is full).
fn fill(dir: &Path, name: &str, leave: u64) {
    let mut file = std::fs::File::create(dir.join(name)).unwrap();
    let block = vec![7u8; 64 * 1024];
    loop {
        let free = free_bytes(dir);
        if free <= leave {
            break;
        }
        let size = usize::try_from((free - leave).min(block.len() as u64)).unwrap();
        if file.write_all(&block[..size]).is_err() {
            break;
        }
    }
    let _ = file.sync_all();
}

#[test]
fn a_nearly_full_disk_refuses_writes_keeps_reads_and_recovers_by_itself() {
    let tmpfs = match Tmpfs::mount("256m") {
        Ok(tmpfs) => tmpfs,
        Err(why) if std::env::var_os("ZHONGTAI_REQUIRE_TMPFS").is_none() => {
            eprintln!(
                "skipped: cannot mount a tmpfs here ({why}); set ZHONGTAI_REQUIRE_TMPFS to fail instead"
            );
            return;
        }
        Err(why) => panic!("cannot mount a tmpfs: {why}"),
    };
    support::guests();
    let data = tmpfs.path.join("data");
    std::fs::create_dir(&data).unwrap();
    let platform = Platform::start_with(
        &support::root().join("examples"),
        &data,
        &["--min-free-mib", "8"],
    );
    let register = |n: u32| {
        platform.send(
            "POST",
            "/public-security/citizens",
            None,
            Some(json!({"id": citizen(n), "name": "Li Lei", "password": "tea-and-silk-2026"})),
        )
    };
    let (status, body) = register(1);
    assert_eq!(status, 201, "{body}");
    let token = platform.login(&citizen(1), "tea-and-silk-2026");
    let whoami = || platform.send("GET", "/public-security/whoami", Some(&token), None);
    assert_eq!(whoami().0, 200);

    // Nearly full: writing work is refused, reads go on.
    fill(&tmpfs.path, "filler", 4 * 1024 * 1024);
    std::thread::sleep(Duration::from_millis(1100));
    let (status, body) = register(2);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "storage-low", "{body}");
    let (status, body) = whoami();
    assert_eq!(status, 200, "{body}");

    // Full: a read that cannot be recorded is refused, not answered
    // unrecorded; the host does not stop.
    // (The trail's last page may still hold a few records.)
    fill(&tmpfs.path, "more-filler", 0);
    let refused = (0..200)
        .map(|_| whoami())
        .find(|(status, _)| *status != 200)
        .expect("every read was answered on a full disk");
    assert_eq!(refused.0, 503, "{}", refused.1);
    assert_eq!(
        refused.1["error"]["code"], "audit-unavailable",
        "{}",
        refused.1
    );

    // Space returns: the host takes work again without a restart.
    std::fs::remove_file(tmpfs.path.join("filler")).unwrap();
    std::fs::remove_file(tmpfs.path.join("more-filler")).unwrap();
    let started = Instant::now();
    loop {
        let (status, body) = register(2);
        if status == 201 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still refused after space returned: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(whoami().0, 200);
    drop(platform);

    // The trail verifies: the failed write left no half record behind.
    let verified = Command::new(env!("CARGO_BIN_EXE_zhongtai"))
        .args(["audit", "verify", "--dir"])
        .arg(data.join("audit"))
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
}
