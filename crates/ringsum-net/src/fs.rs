//! Files the service and the participants write: one way to replace a
//! file, so that a crash at any moment leaves either the old contents or
//! the new ones, never half a file, and the new ones survive a power cut
//! once the call returns.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{NetError, Result};

/// Who may read a file written by [`write_atomic`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Readable by others (mode 0644 before the umask): models, logs,
    /// certificates, exported data.
    Shared,
    /// The owner only (mode 0600): secrets, and what a participant keeps
    /// of its own messages.
    Private,
}

/// Replaces `path` with `bytes`: writes a temporary file beside it, syncs
/// it, renames it over `path` and syncs the directory, so that the rename
/// itself is durable.
///
/// # Errors
/// [`NetError::Io`] naming the file that failed; the temporary file is
/// removed then.
pub fn write_atomic(path: &Path, bytes: &[u8], access: Access) -> Result<()> {
    let tmp = temporary(path);
    let written = write_synced(&tmp, bytes, access).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(NetError::io(path))?;
        sync_dir(path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Removes `path` if it exists and syncs its directory, so that the
/// removal survives a crash too.
///
/// # Errors
/// [`NetError::Io`].
pub fn remove_durably(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetError::io(path)(e)),
    }
}

/// Creates `dir` (and its parents) if missing.
///
/// # Errors
/// [`NetError::Io`].
pub fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(NetError::io(dir))
}

/// Creates `path` empty with mode 0600 if it does not exist (a store is
/// then opened on it), so that no umask makes it readable by others.
pub(crate) fn create_private(path: &Path) -> std::io::Result<()> {
    match private_options().create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// A name beside `path` that no other writer of this process uses.
fn temporary(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

fn write_synced(tmp: &Path, bytes: &[u8], access: Access) -> Result<()> {
    let mut options = match access {
        Access::Private => private_options(),
        Access::Shared => {
            let mut o = OpenOptions::new();
            o.write(true);
            o
        }
    };
    let mut file = options
        .create(true)
        .truncate(true)
        .open(tmp)
        .map_err(NetError::io(tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(NetError::io(tmp))
}

/// Syncs the directory holding `path`, which makes a rename or removal in
/// it durable.
fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(NetError::io(dir))
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        write_atomic(&path, b"first", Access::Shared).unwrap();
        write_atomic(&path, b"second", Access::Private).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["model.json"]);
        remove_durably(&path).unwrap();
        remove_durably(&path).unwrap();
        assert!(!path.exists());
        // A directory that does not exist: the error names the file.
        let error = write_atomic(&dir.path().join("no/such.json"), b"x", Access::Shared)
            .unwrap_err()
            .to_string();
        assert!(error.contains("such.json"), "{error}");
    }
}
