//! Writes rendered assets to a local folder (`asset_dir`): files 0600,
//! folders 0700, each file written to a temporary name in its own folder and
//! renamed into place, identical files left alone, and only files this
//! provider owns (the asset paths) ever touched.

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

/// Writes `content` to a temporary name beside `path` (mode 0600), unless
/// `path` already holds it; returns the temporary file to rename into place.
fn stage(path: &Path, content: &str) -> Result<Option<PathBuf>, AssetDirError> {
    if let Ok(meta) = fs::metadata(path) {
        let same_mode = meta.permissions().mode() & 0o777 == 0o600;
        if same_mode && fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
            return Ok(None);
        }
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    create_dirs(parent)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(content.as_bytes())?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&tmp);
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
        match stage(path, content) {
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
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Digest of the files named by `paths` as they are on disk now (a missing
/// file or wrong mode counts as different content), comparable with
/// [`digest`] of the assets.
pub fn digest_on_disk<'a>(dir: &Path, paths: impl IntoIterator<Item = &'a str>) -> String {
    let files: Vec<(&str, Vec<u8>)> = paths
        .into_iter()
        .map(|rel| {
            let content = target(dir, rel)
                .ok()
                .filter(|p| fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o777 == 0o600))
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
}
