//! Import: adopt the assets of an existing asset directory (as this provider
//! or bootkube-style tooling wrote it), so a cluster made elsewhere keeps its
//! keys. Only `tls/` and `auth/` files are read.

use std::path::{Path, PathBuf};

use selfhosted_pki::Assets;

/// A failure reading an asset directory.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The folder could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The folder lacks the kube CA certificate.
    #[error("{0} has no tls/ca.crt: not an asset directory")]
    NotAssets(PathBuf),
}

fn walk(root: &Path, rel: &str, out: &mut Assets) -> Result<(), ImportError> {
    let dir = root.join(rel);
    let entries = std::fs::read_dir(&dir).map_err(|source| ImportError::Read {
        path: dir.clone(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| ImportError::Read {
            path: dir.clone(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let child = format!("{rel}/{name}");
        let path = entry.path();
        if path.is_dir() {
            walk(root, &child, out)?;
        } else {
            let content = std::fs::read_to_string(&path).map_err(|source| ImportError::Read {
                path: path.clone(),
                source,
            })?;
            out.insert(child, content);
        }
    }
    Ok(())
}

/// Reads `tls/**` and `auth/**` of an asset directory.
///
/// # Errors
/// An unreadable file, or a folder that is not an asset directory.
pub fn from_dir(root: &Path) -> Result<Assets, ImportError> {
    let mut out = Assets::new();
    for top in ["tls", "auth"] {
        if root.join(top).is_dir() {
            walk(root, top, &mut out)?;
        }
    }
    if !out.contains_key("tls/ca.crt") {
        return Err(ImportError::NotAssets(root.to_owned()));
    }
    Ok(out)
}

/// The credentials revision the imported manifests carry (their pod-template annotation),
/// so an import does not plan a new apiserver generation.
pub fn credentials_revision(assets: &Assets) -> Option<String> {
    let key = format!(
        "{}:",
        selfhosted_manifests::control_plane::CREDENTIALS_REVISION_ANNOTATION
    );
    assets
        .iter()
        .filter(|(path, _)| path.starts_with("manifests/"))
        .flat_map(|(_, text)| text.lines())
        .find_map(|line| line.trim().strip_prefix(key.as_str()))
        .map(|v| v.trim().trim_matches(['\'', '"']).to_owned())
}
