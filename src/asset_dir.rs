//! Writes rendered assets to a local folder (`asset_dir`): files 0600,
//! folders 0700, each file written to a temporary name in its own folder and
//! renamed into place, identical files left alone, and only files this
//! provider owns (the asset paths) ever touched.
//!
//! The folder may be shared with other local users, so nothing here follows a link
//! someone planted: a folder below `asset_dir` that is a symbolic link is refused, an
//! existing one is made 0700, temporary files are created exclusively (`O_EXCL`,
//! `O_NOFOLLOW`) under unpredictable names, and a link at a file's place is replaced,
//! never written through.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// A failure writing or removing asset files.
#[derive(Debug, thiserror::Error)]
pub enum AssetDirError {
    /// An asset path would leave the folder (absolute, or with `..`).
    #[error("asset path {0:?} is not a plain relative path")]
    UnsafePath(String),
    /// A folder below `asset_dir` is a symbolic link (or not a folder): keys would land
    /// wherever it points.
    #[error(
        "{0} is a symbolic link or not a folder; remove it: keys are written only into real folders below asset_dir"
    )]
    NotAFolder(PathBuf),
    /// Creating a folder failed.
    #[error("creating folder {path}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing a file failed.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Removing a file failed.
    #[error("removing {path}")]
    Remove {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn target(dir: &Path, rel: &str) -> Result<PathBuf, AssetDirError> {
    let p = Path::new(rel);
    if rel.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(AssetDirError::UnsafePath(rel.to_owned()));
    }
    Ok(dir.join(p))
}

fn create_dirs(path: &Path) -> Result<(), AssetDirError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| AssetDirError::CreateDir {
            path: path.to_owned(),
            source,
        })
}

/// Creates the folders from `dir` (exclusive) down to `folder`, each a real folder (not a
/// link) made 0700 if it was not.
fn owned_dirs(dir: &Path, folder: &Path) -> Result<(), AssetDirError> {
    create_dirs(folder)?;
    let Ok(rel) = folder.strip_prefix(dir) else {
        return Ok(());
    };
    let mut at = dir.to_path_buf();
    for part in rel.components() {
        at.push(part);
        let meta = fs::symlink_metadata(&at).map_err(|source| AssetDirError::CreateDir {
            path: at.clone(),
            source,
        })?;
        if !meta.file_type().is_dir() {
            return Err(AssetDirError::NotAFolder(at));
        }
        if meta.permissions().mode() & 0o777 != 0o700 {
            fs::set_permissions(&at, fs::Permissions::from_mode(0o700)).map_err(|source| AssetDirError::CreateDir {
                path: at.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

/// A temporary name beside `path`, different at every call (a name planted ahead makes the
/// exclusive create fail; it is never written through).
fn temporary_name(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(format!("{:?}", std::time::SystemTime::now()).as_bytes());
    let tag = hex::encode(&h.finalize()[..8]);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{tag}"))
}

/// Writes `content` to a temporary name beside `path` (mode 0600), unless
/// `path` already holds it as a regular 0600 file; returns the temporary file to rename
/// into place.
fn stage(dir: &Path, path: &Path, content: &str) -> Result<Option<PathBuf>, AssetDirError> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        let same = meta.file_type().is_file() && meta.permissions().mode() & 0o777 == 0o600;
        if same && fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
            return Ok(None);
        }
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    owned_dirs(dir, parent)?;
    let tmp = temporary_name(path);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)?;
        f.write_all(content.as_bytes())?;
        f.set_permissions(fs::Permissions::from_mode(0o600))
    })();
    if let Err(source) = result {
        if source.kind() != std::io::ErrorKind::AlreadyExists {
            let _ = fs::remove_file(&tmp);
        }
        return Err(AssetDirError::Write {
            path: path.to_owned(),
            source,
        });
    }
    Ok(Some(tmp))
}

/// Stages every changed file, makes them durable with one `syncfs`, then
/// renames each into place and syncs the folders: every file is either the
/// old or the new one, at the cost of two flushes instead of one per file.
fn write_all(dir: &Path, files: &[(PathBuf, &str)]) -> Result<usize, AssetDirError> {
    let mut staged: Vec<(PathBuf, &Path)> = Vec::new();
    for (path, content) in files {
        match stage(dir, path, content) {
            Ok(Some(tmp)) => staged.push((tmp, path)),
            Ok(None) => {}
            Err(e) => {
                for (tmp, _) in &staged {
                    let _ = fs::remove_file(tmp);
                }
                return Err(e);
            }
        }
    }
    if staged.is_empty() {
        return Ok(0);
    }
    let flush = |path: &Path| -> Result<(), AssetDirError> {
        let err = |source| AssetDirError::Write {
            path: path.to_owned(),
            source,
        };
        let f = fs::File::open(path).map_err(err)?;
        rustix::fs::syncfs(&f).map_err(|e| err(e.into()))
    };
    if let Err(e) = flush(dir) {
        for (tmp, _) in &staged {
            let _ = fs::remove_file(tmp);
        }
        return Err(e);
    }
    let mut parents: Vec<&Path> = Vec::new();
    for (tmp, path) in &staged {
        fs::rename(tmp, path).map_err(|source| AssetDirError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(p) = path.parent() {
            if !parents.contains(&p) {
                parents.push(p);
            }
        }
    }
    for p in parents {
        fs::File::open(p)
            .and_then(|d| d.sync_all())
            .map_err(|source| AssetDirError::Write {
                path: p.to_owned(),
                source,
            })?;
    }
    Ok(staged.len())
}

/// Writes every asset under `dir`, then removes files listed in `previous`
/// that are no longer assets. Returns the number of files written.
///
/// # Errors
/// The first file or folder that could not be written or removed.
pub fn sync(
    dir: &Path,
    assets: &BTreeMap<String, String>,
    previous: impl IntoIterator<Item = String>,
) -> Result<usize, AssetDirError> {
    create_dirs(dir)?;
    let files = assets
        .iter()
        .map(|(rel, content)| Ok((target(dir, rel)?, content.as_str())))
        .collect::<Result<Vec<_>, AssetDirError>>()?;
    let written = write_all(dir, &files)?;
    let stale: Vec<String> = previous.into_iter().filter(|rel| !assets.contains_key(rel)).collect();
    remove_files(dir, stale)?;
    Ok(written)
}

fn remove_file(path: &Path) -> Result<(), AssetDirError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(AssetDirError::Remove {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Removes the files named by `paths` under `dir`, then every folder they
/// leave empty (never a folder that still holds something of the user's).
///
/// # Errors
/// The first file that could not be removed.
pub fn remove(dir: &Path, paths: impl IntoIterator<Item = String>) -> Result<(), AssetDirError> {
    remove_files(dir, paths)?;
    let _ = fs::remove_dir(dir); // only succeeds when empty
    Ok(())
}

/// Removes files under `dir` and the folders below `dir` they leave empty.
fn remove_files(dir: &Path, paths: impl IntoIterator<Item = String>) -> Result<(), AssetDirError> {
    let mut dirs = Vec::new();
    for rel in paths {
        let path = target(dir, &rel)?;
        remove_file(&path)?;
        let mut parent = path.parent();
        while let Some(p) = parent {
            if p == dir || !p.starts_with(dir) {
                break;
            }
            dirs.push(p.to_owned());
            parent = p.parent();
        }
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.dedup();
    for d in dirs {
        let _ = fs::remove_dir(d); // only succeeds when empty
    }
    Ok(())
}

/// Digest of `(path, content)` pairs: what the folder should hold.
pub fn digest<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut h = Sha256::new();
    for (path, content) in files {
        h.update(path.as_bytes());
        h.update([0]);
        h.update((content.len() as u64).to_le_bytes());
        h.update(content);
    }
    hex::encode(h.finalize())
}

/// Digest of the files named by `paths` as they are on disk now (a missing
/// file, a link in its place or a wrong mode counts as different content), comparable with
/// [`digest`] of the assets.
pub fn digest_on_disk<'a>(dir: &Path, paths: impl IntoIterator<Item = &'a str>) -> String {
    let files: Vec<(&str, Vec<u8>)> = paths
        .into_iter()
        .map(|rel| {
            let content = target(dir, rel)
                .ok()
                .filter(|p| {
                    fs::symlink_metadata(p)
                        .is_ok_and(|m| m.file_type().is_file() && m.permissions().mode() & 0o777 == 0o600)
                })
                .and_then(|p| fs::read(p).ok())
                .unwrap_or_else(|| b"\0missing".to_vec());
            (rel, content)
        })
        .collect();
    digest(files.iter().map(|(p, c)| (*p, c.as_slice())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn assets(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn writes_private_files_and_skips_identical_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("assets");
        let a = assets(&[("tls/ca.crt", "CA"), ("auth/admin.kubeconfig", "KC")]);
        assert_eq!(sync(&dir, &a, []).unwrap(), 2);
        let ca = dir.join("tls/ca.crt");
        assert_eq!(fs::metadata(&ca).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(dir.join("tls")).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let inode = fs::metadata(&ca).unwrap().ino();
        assert_eq!(sync(&dir, &a, []).unwrap(), 0, "identical files are not rewritten");
        assert_eq!(fs::metadata(&ca).unwrap().ino(), inode);
        let on_disk = digest_on_disk(&dir, a.keys().map(String::as_str));
        let wanted = digest(a.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
        assert_eq!(on_disk, wanted);
        fs::write(&ca, "tampered").unwrap();
        assert_ne!(digest_on_disk(&dir, a.keys().map(String::as_str)), wanted);
    }

    #[test]
    fn removes_only_owned_files_and_empty_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("assets");
        let a = assets(&[("tls/ca.crt", "CA"), ("tls/etcd/server.crt", "S")]);
        sync(&dir, &a, []).unwrap();
        fs::write(dir.join("tls/user-file"), "mine").unwrap();
        let shrunk = assets(&[("tls/ca.crt", "CA")]);
        sync(&dir, &shrunk, a.keys().cloned()).unwrap();
        assert!(!dir.join("tls/etcd/server.crt").exists());
        remove(&dir, shrunk.keys().cloned()).unwrap();
        assert!(!dir.join("tls/ca.crt").exists());
        assert!(dir.join("tls/user-file").exists(), "a file of the user's stays");
        assert!(!dir.join("tls/etcd").exists(), "an emptied folder goes");
    }

    #[test]
    fn refuses_paths_leaving_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["../x", "/etc/passwd", "a/../../b", ""] {
            let err = sync(tmp.path(), &assets(&[(bad, "x")]), []).unwrap_err();
            assert!(matches!(err, AssetDirError::UnsafePath(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn planted_links_are_never_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("assets");
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        fs::create_dir_all(&dir).unwrap();
        // A folder below asset_dir that is a link: refused, nothing lands where it points.
        std::os::unix::fs::symlink(&elsewhere, dir.join("tls")).unwrap();
        let a = assets(&[("tls/ca.key", "KEY")]);
        let err = sync(&dir, &a, []).unwrap_err();
        assert!(matches!(err, AssetDirError::NotAFolder(_)), "{err}");
        assert_eq!(
            fs::read_dir(&elsewhere).unwrap().count(),
            0,
            "nothing written through the link"
        );
        fs::remove_file(dir.join("tls")).unwrap();
        // A link at a file's place is replaced by the file, its target left alone.
        fs::create_dir(dir.join("tls")).unwrap();
        fs::set_permissions(dir.join("tls"), fs::Permissions::from_mode(0o755)).unwrap();
        let target = elsewhere.join("captured");
        fs::write(&target, "untouched").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("tls/ca.key")).unwrap();
        assert_eq!(sync(&dir, &a, []).unwrap(), 1);
        let meta = fs::symlink_metadata(dir.join("tls/ca.key")).unwrap();
        assert!(meta.file_type().is_file(), "the link was replaced");
        assert_eq!(fs::read_to_string(dir.join("tls/ca.key")).unwrap(), "KEY");
        assert_eq!(fs::read_to_string(&target).unwrap(), "untouched");
        assert_eq!(
            fs::metadata(dir.join("tls")).unwrap().permissions().mode() & 0o777,
            0o700,
            "an existing folder is made private"
        );
    }
}
