//! A minimal ustar archive writer: regular files only, with owner/group names and mode, so one
//! `tar -x` on the host writes a whole batch (contents, owners, modes, missing folders) in a
//! single process.

/// Why an entry cannot be archived.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    /// The path does not fit the ustar name/prefix fields.
    #[error("path {0:?} is too long for a tar header")]
    PathTooLong(String),
    /// Owner or group name longer than 31 bytes.
    #[error("owner or group {0:?} is too long for a tar header")]
    NameTooLong(String),
}

/// One regular file of an archive.
pub(crate) struct Entry<'a> {
    /// Path relative to the extraction root (no leading `/`).
    pub path: &'a str,
    pub content: &'a [u8],
    pub mode: u32,
    pub owner: &'a str,
    pub group: &'a str,
    pub mtime: u64,
}

const BLOCK: usize = 512;
const RECORD: usize = 20 * BLOCK;

fn put(header: &mut [u8; BLOCK], at: usize, len: usize, value: &[u8]) {
    let n = value.len().min(len);
    header[at..at + n].copy_from_slice(&value[..n]);
}

fn octal(header: &mut [u8; BLOCK], at: usize, len: usize, value: u64) {
    // zero-padded, NUL-terminated
    let text = format!("{value:0width$o}", width = len - 1);
    put(header, at, len - 1, text.as_bytes());
}

fn split_path(path: &str) -> Result<(&str, &str), TarError> {
    if path.len() <= 100 {
        return Ok(("", path));
    }
    // prefix/name split at a '/', prefix ≤ 155, name ≤ 100
    for (i, c) in path.char_indices() {
        if c == '/' && i <= 155 && path.len() - i - 1 <= 100 && i > 0 {
            return Ok((&path[..i], &path[i + 1..]));
        }
    }
    Err(TarError::PathTooLong(path.to_owned()))
}

/// Builds a ustar archive of `entries` (ends with two zero blocks, padded to a 10 KiB record).
pub(crate) fn archive(entries: &[Entry<'_>]) -> Result<Vec<u8>, TarError> {
    let mut out = Vec::with_capacity(
        entries
            .iter()
            .map(|e| BLOCK + e.content.len().div_ceil(BLOCK) * BLOCK)
            .sum::<usize>()
            + RECORD,
    );
    for e in entries {
        let (prefix, name) = split_path(e.path)?;
        for n in [e.owner, e.group] {
            if n.len() > 31 {
                return Err(TarError::NameTooLong(n.to_owned()));
            }
        }
        let mut h = [0u8; BLOCK];
        put(&mut h, 0, 100, name.as_bytes());
        octal(&mut h, 100, 8, u64::from(e.mode & 0o7777));
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, e.content.len() as u64);
        octal(&mut h, 136, 12, e.mtime);
        h[148..156].copy_from_slice(b"        ");
        h[156] = b'0';
        put(&mut h, 257, 6, b"ustar\0");
        put(&mut h, 263, 2, b"00");
        put(&mut h, 265, 32, e.owner.as_bytes());
        put(&mut h, 297, 32, e.group.as_bytes());
        put(&mut h, 345, 155, prefix.as_bytes());
        let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
        let text = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(text.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(e.content);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    out.resize(out.len().div_ceil(RECORD) * RECORD, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real `tar` reads what we write: names, sizes, owners, modes, contents.
    #[test]
    fn gnu_tar_lists_and_extracts_the_archive() {
        let long = format!("etc/{}/{}", "d".repeat(120), "f".repeat(90));
        let entries = [
            Entry {
                path: "etc/kubernetes/.kubeconfig.tmp",
                content: b"apiVersion: v1\n",
                mode: 0o600,
                owner: "root",
                group: "root",
                mtime: 1_700_000_000,
            },
            Entry {
                path: &long,
                content: &[7u8; 1000],
                mode: 0o644,
                owner: "nobody",
                group: "nogroup",
                mtime: 1_700_000_000,
            },
        ];
        let bytes = archive(&entries).unwrap();
        assert_eq!(bytes.len() % RECORD, 0);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.tar");
        std::fs::write(&file, &bytes).unwrap();
        let list = std::process::Command::new("tar")
            .args(["-tvf"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(list.status.success(), "{list:?}");
        let text = String::from_utf8_lossy(&list.stdout);
        assert!(text.contains("-rw------- root/root") && text.contains("15 "), "{text}");
        assert!(
            text.contains("-rw-r--r-- nobody/nogroup") && text.contains(&long),
            "{text}"
        );
        let out = std::process::Command::new("tar")
            .args(["-xf"])
            .arg(&file)
            .arg("-C")
            .arg(dir.path())
            .arg("--no-same-owner")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let got = std::fs::read(dir.path().join("etc/kubernetes/.kubeconfig.tmp")).unwrap();
        assert_eq!(got, b"apiVersion: v1\n");
        assert_eq!(std::fs::read(dir.path().join(&long)).unwrap(), vec![7u8; 1000]);
        assert!(split_path(&"x".repeat(300)).is_err());
    }
}
