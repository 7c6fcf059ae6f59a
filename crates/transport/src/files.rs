//! Files on a host: atomic, durable, idempotent batch uploads and removal. The host compares
//! sha256, owner and mode before writing and leaves identical files untouched; a changed file
//! is written to a temporary name in its own folder, checked, given owner and mode, then
//! renamed into place. One round trip per batch (node secrets); for large batches a
//! comparison first, so unchanged content is not sent.
//!
//! # What a power loss leaves
//!
//! A batch is written in three steps: (1) every changed file's temporary (content, owner,
//! mode) is synced to disk; (2) only then are the temporaries renamed over their targets,
//! one by one in the order given, back to back in one host process; (3) then the folders
//! whose entries changed are synced, and only then does [`Session::upload`] return `Ok`.
//! Hence, at any instant, a crash of the host (power loss included) or of the connection
//! leaves:
//!
//! - each target either wholly old or wholly new (content, owner and mode), never empty or
//!   short — the zero-length files XFS (Fedora CoreOS) shows after a crash that caught a
//!   rename of unsynced data cannot happen;
//! - once `upload` has returned `Ok`, the whole batch new: a later batch (the triggers the
//!   callers send after the material they start on) never survives a power loss without the
//!   batches before it;
//! - within a batch that was cut, some targets new and the others old: POSIX promises no
//!   order for renames that were never synced; on the journaling filesystems of the supported
//!   hosts (ext4, XFS, btrfs) metadata reaches the disk in order, so the new ones are a prefix
//!   of the batch's order;
//! - completed temporaries (`.NAME.selfhosted-TOKEN` beside the target) of the files not yet
//!   renamed; the next upload of those files removes them.
//!
//! Pairs (a certificate and its key) are therefore **not** switched together: a batch cut
//! between their two renames leaves the new certificate with the old key (or the reverse)
//! until the batch is uploaded again. We keep it so rather than swap a symlinked folder,
//! which would change every path the host contract names: the window is the few
//! milliseconds between two renames of one process; the consumers refuse a pair that
//! disagrees instead of using it (Go's `tls.X509KeyPair`: "private key does not match public
//! key" — etcd and the apiservers fail to start, and are restarted, rather than serve with
//! it); and the rerun of the failed apply converges: it compares again, rewrites whatever
//! differs and removes the leftover temporaries, idempotently. A batch that fails reports
//! it, so the apply that cut it fails and says to rerun.

use sha2::{Digest, Sha256};

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::session::{shell_quote, ExecError, Session};
use crate::tar::{archive, Entry};

/// Batches up to this size are sent in one round trip without comparing first.
const ONE_PASS_LIMIT: usize = 1 << 20;

/// Why an upload or removal failed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A file spec is unusable (relative path, odd characters, bad owner or mode).
    #[error("invalid file spec for {path:?}: {reason}")]
    InvalidSpec {
        /// The path given.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading the current state of the files failed.
    #[error("comparing files on the host failed: {0}")]
    Compare(#[source] Box<ExecError>),
    /// The host answered the comparison with something unexpected.
    #[error("{host}: unexpected answer comparing {path}: {line:?}")]
    CompareOutput {
        /// Host name.
        host: String,
        /// The file concerned.
        path: String,
        /// The line received.
        line: String,
    },
    /// Writing the files failed; files not yet renamed keep their old content.
    #[error("writing files on the host failed: {0}")]
    Write(#[source] Box<ExecError>),
    /// The SFTP path failed.
    #[error(transparent)]
    Sftp(crate::sftp::SftpUploadError),
    /// Removing files failed.
    #[error("removing files on the host failed: {0}")]
    Remove(#[source] Box<ExecError>),
}

/// One file to place on a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// Absolute path on the host.
    pub path: String,
    /// Full content.
    pub content: Vec<u8>,
    /// Permission bits, e.g. `0o600` for secrets.
    pub mode: u32,
    /// Owning user name.
    pub owner: String,
    /// Owning group name.
    pub group: String,
}

impl FileSpec {
    /// A root-owned secret (mode 0600).
    pub fn secret(path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.into(),
            content: content.into(),
            mode: 0o600,
            owner: "root".into(),
            group: "root".into(),
        }
    }

    /// The same file with another mode.
    #[must_use]
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// The same file with another owner and group.
    #[must_use]
    pub fn with_owner(mut self, owner: impl Into<String>, group: impl Into<String>) -> Self {
        self.owner = owner.into();
        self.group = group.into();
        self
    }

    fn validate(&self) -> Result<(), FilesError> {
        let fail = |reason: &str| FilesError::InvalidSpec {
            path: self.path.clone(),
            reason: reason.to_owned(),
        };
        if !self.path.starts_with('/') || self.path.ends_with('/') {
            return Err(fail("path must be absolute and name a file"));
        }
        if !self
            .path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+@:,=~".contains(c))
        {
            return Err(fail("path may hold only letters, digits and / . _ - + @ : , = ~"));
        }
        if self.path.split('/').any(|part| part == ".." || part == ".") {
            return Err(fail("path may not hold `.` or `..` parts"));
        }
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        if !name_ok(&self.owner) || !name_ok(&self.group) {
            return Err(fail("owner and group must be plain user/group names"));
        }
        if self.mode > 0o7777 {
            return Err(fail("mode must be at most 0o7777"));
        }
        Ok(())
    }

    pub(crate) fn split(&self) -> (&str, &str) {
        let at = self.path.rfind('/').unwrap_or(0);
        let dir = if at == 0 { "/" } else { &self.path[..at] };
        (dir, &self.path[at + 1..])
    }
}

/// What an upload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadReport {
    /// Paths written (new content, owner or mode).
    pub changed: Vec<String>,
    /// Paths already as wanted, left untouched.
    pub unchanged: Vec<String>,
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Prints `<sha256> <owner>:<group>:<octal mode>` or `-` for each path, in order.
fn compare_script(files: &[FileSpec]) -> String {
    let args: Vec<String> = files.iter().map(|f| shell_quote(&f.path)).collect();
    format!(
        "set -e; set -- {}; for p in \"$@\"; do if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then \
         printf '%s %s\\n' \"$(sha256sum < \"$p\" | cut -c1-64)\" \"$(stat -c '%U:%G:%a' \"$p\")\"; \
         else echo -; fi; done",
        args.join(" ")
    )
}

/// A name unique to one upload, for its temporary files.
fn upload_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{n:x}{:x}", nanos, std::process::id())
}

/// The temporary name of `f` for upload `token`: a dotfile beside the target.
fn temp_path(f: &FileSpec, token: &str) -> String {
    let (dir, base) = f.split();
    let dir = if dir == "/" { "" } else { dir };
    format!("{dir}/.{base}.selfhosted-{token}")
}

/// The folders of `files` and every folder above them (those a `tar -x` into `/` may have
/// created or changed), in order.
fn sync_dirs(files: &[&FileSpec]) -> Vec<String> {
    let mut dirs = std::collections::BTreeSet::new();
    for f in files {
        let mut dir = f.split().0;
        dirs.insert(dir);
        while dir != "/" {
            dir = match dir.rfind('/') {
                Some(0) | None => "/",
                Some(i) => &dir[..i],
            };
            dirs.insert(dir);
        }
    }
    dirs.into_iter().map(str::to_owned).collect()
}

/// The upload script, straight-line POSIX sh with few processes (on a small host the process
/// count, not the bytes, is what costs). stdin is a tar archive holding every file under its
/// temporary name (a dotfile beside the target) with owner and mode; one `tar -x` writes them
/// all and creates missing folders. All digests are checked at once; the temporaries of
/// files whose target already has that content, owner and mode are dropped, the others
/// synced to disk (`sync -- FILE…`, one process); then for each file, in the order given,
/// `= path` is printed for the unchanged, or the temporary is renamed over the target and
/// `+ path` printed; last, if anything was renamed, the targets' folders and those above them
/// are synced (`sync -- DIR…`), so the renames survive a power loss.
///
/// `sync` with operands is coreutils 8.24+ (Debian 12 has 9.1, Fedora CoreOS and Flatcar 9.x;
/// BusyBox's takes them too); an older `sync` ignores them and syncs every filesystem, which is
/// as durable, only slower.
fn write_script(files: &[&FileSpec], token: &str) -> String {
    let q = |s: &str| shell_quote(s);
    let paths: Vec<String> = files.iter().map(|f| q(&f.path)).collect();
    let temps: Vec<String> = files.iter().map(|f| q(&temp_path(f, token))).collect();
    let mut s = String::from("set -e\numask 077\nnl='\n'\n");
    s.push_str(&format!(
        "cur=\"$nl$( {{ stat -c '%F %U:%G:%a %n' -- {p} 2>/dev/null; sha256sum -- {p} 2>/dev/null; }} || true )$nl\"\n",
        p = paths.join(" ")
    ));
    let stale: Vec<String> = files.iter().map(|f| format!("{}*", q(&temp_path(f, "")))).collect();
    // leftovers of interrupted uploads; `rm` runs only if there are any
    s.push_str(&format!(
        "set --\nfor f in {}; do if [ -e \"$f\" ]; then set -- \"$@\" \"$f\"; fi; done\n\
         if [ $# -gt 0 ]; then rm -f -- \"$@\"; fi\n",
        stale.join(" ")
    ));
    s.push_str("umask 022\ntar -x -p -m -C / -f -\numask 077\n");
    s.push_str("if ! sha256sum -c --quiet --strict <<'SUMS'\n");
    for f in files {
        s.push_str(&format!("{}  {}\n", sha256_hex(&f.content), temp_path(f, token)));
    }
    s.push_str(&format!(
        "SUMS\nthen rm -f -- {}; echo 'the content arrived incomplete' >&2; exit 3; fi\n",
        temps.join(" ")
    ));
    s.push_str("set --\n");
    for (i, f) in files.iter().enumerate() {
        s.push_str(&format!(
            "u{i}=0; case \"$cur\" in *\"${{nl}}regular file {o}:{g}:{m:o} {p}${{nl}}\"*) \
             case \"$cur\" in *\"${{nl}}{h}  {p}${{nl}}\"*) u{i}=1; set -- \"$@\" {t};; esac;; esac\n",
            o = f.owner,
            g = f.group,
            m = f.mode,
            p = f.path,
            h = sha256_hex(&f.content),
            t = temps[i],
        ));
    }
    s.push_str("if [ $# -gt 0 ]; then rm -f -- \"$@\"; fi\nset --\n");
    for (i, t) in temps.iter().enumerate() {
        s.push_str(&format!("if [ $u{i} = 0 ]; then set -- \"$@\" {t}; fi\n"));
    }
    // every new file's content, owner and mode on disk before the first rename
    s.push_str("if [ $# -gt 0 ]; then sync -- \"$@\"; fi\n");
    for (i, f) in files.iter().enumerate() {
        s.push_str(&format!(
            "if [ $u{i} = 1 ]; then echo {eq}; else mv -f -- {t} {p}; echo {plus}; fi\n",
            eq = q(&format!("= {}", f.path)),
            plus = q(&format!("+ {}", f.path)),
            t = temps[i],
            p = paths[i],
        ));
    }
    // then the renames: the targets' folders, and their parents (`tar` may have created them)
    let dirs: Vec<String> = sync_dirs(files).iter().map(|d| q(d)).collect();
    s.push_str(&format!("if [ $# -gt 0 ]; then sync -- {}; fi\n", dirs.join(" ")));
    s
}

/// Removes each of `paths` that exists (printing it), then, if any did, syncs the existing
/// folders of `paths` in one `sync` process.
fn remove_script(paths: &[&str]) -> String {
    let args: Vec<String> = paths.iter().map(|p| shell_quote(p)).collect();
    let mut dirs: Vec<&str> = paths
        .iter()
        .map(|p| match p.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &p[..i],
        })
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    let dirs: Vec<String> = dirs.iter().map(|d| shell_quote(d)).collect();
    format!(
        "set -e; n=0; for p in {}; do if [ -e \"$p\" ] || [ -L \"$p\" ]; then rm -f -- \"$p\"; echo \"$p\"; n=1; fi; done\n\
         if [ $n = 1 ]; then set --; for d in {}; do if [ -d \"$d\" ]; then set -- \"$@\" \"$d\"; fi; done; sync -- \"$@\"; fi",
        args.join(" "),
        dirs.join(" ")
    )
}

impl Session {
    /// Places `files` on the host as root in one stream; the host compares sha256, owner and
    /// mode and skips identical files (batches over 1 MiB are compared before sending). Each
    /// changed file lands under a temporary name in its own
    /// folder (created if missing), is checked against its digest, gets owner and mode, and is
    /// renamed over the target — a reader sees the old file or the new one, never a part.
    /// Every temporary is synced to disk before the first rename, and the folders after the
    /// last, before this returns `Ok` (what a crash leaves: the [module docs](self)).
    ///
    /// # Errors
    /// [`FilesError::InvalidSpec`] before touching the host; [`FilesError::Compare`] or
    /// [`FilesError::Write`] quoting the host's stderr.
    pub async fn upload(&self, files: &[FileSpec]) -> Result<UploadReport, FilesError> {
        for (i, f) in files.iter().enumerate() {
            f.validate()?;
            if files[..i].iter().any(|g| g.path == f.path) {
                return Err(FilesError::InvalidSpec {
                    path: f.path.clone(),
                    reason: "listed twice in one upload".to_owned(),
                });
            }
        }
        let mut report = UploadReport::default();
        if files.is_empty() {
            return Ok(report);
        }
        let total: usize = files.iter().map(|f| f.content.len()).sum();
        // Small batches (node secrets) go in one round trip: the host skips identical files
        // itself. Large ones are compared first so unchanged content is not sent.
        let send: Vec<&FileSpec> = if total > ONE_PASS_LIMIT {
            self.compare(files, &mut report).await?
        } else {
            files.iter().collect()
        };
        if send.is_empty() {
            return Ok(report);
        }
        let token = upload_token();
        if total <= ONE_PASS_LIMIT {
            let temps: Vec<String> = send.iter().map(|f| temp_path(f, &token)).collect();
            match crate::sftp::upload(self, &send, &temps).await {
                Ok(changed) => {
                    for (f, c) in send.iter().zip(changed) {
                        if c {
                            report.changed.push(f.path.clone());
                        } else {
                            report.unchanged.push(f.path.clone());
                        }
                    }
                    return Ok(report);
                }
                // no root sftp-server (or sudo refused): the shell path says why
                Err(crate::sftp::SftpUploadError::Unavailable { reason, .. }) => {
                    tracing::debug!(host = %self.host(), %reason, "SFTP path unavailable, using tar");
                }
                Err(e) => return Err(FilesError::Sftp(e)),
            }
        }
        let mtime = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let temps: Vec<String> = send.iter().map(|f| temp_path(f, &token)).collect();
        let entries: Vec<Entry<'_>> = send
            .iter()
            .zip(&temps)
            .map(|(f, t)| Entry {
                path: t.trim_start_matches('/'),
                content: &f.content,
                mode: f.mode,
                owner: &f.owner,
                group: &f.group,
                mtime,
            })
            .collect();
        let stream = archive(&entries).map_err(|e| FilesError::InvalidSpec {
            path: send.first().map(|f| f.path.clone()).unwrap_or_default(),
            reason: e.to_string(),
        })?;
        let out = self
            .sudo_with_input(&write_script(&send, &token), &stream)
            .await
            .map_err(|e| FilesError::Write(Box::new(e)))?
            .stdout_text();
        let mut lines = out.lines();
        for f in &send {
            match lines.next() {
                Some(l) if l.strip_prefix("= ") == Some(f.path.as_str()) => report.unchanged.push(f.path.clone()),
                Some(l) if l.strip_prefix("+ ") == Some(f.path.as_str()) => report.changed.push(f.path.clone()),
                other => {
                    return Err(FilesError::CompareOutput {
                        host: self.host().to_owned(),
                        path: f.path.clone(),
                        line: other.unwrap_or_default().to_owned(),
                    })
                }
            }
        }
        tracing::debug!(host = %self.host(), changed = report.changed.len(), unchanged = report.unchanged.len(), "upload");
        Ok(report)
    }

    /// The paths of `files` that are missing on the host or differ from it (content, owner
    /// or mode), in the order given; the host is only read.
    ///
    /// # Errors
    /// [`FilesError::InvalidSpec`] before touching the host; [`FilesError::Compare`] or
    /// [`FilesError::CompareOutput`] quoting the host.
    pub async fn differing(&self, files: &[FileSpec]) -> Result<Vec<String>, FilesError> {
        for f in files {
            f.validate()?;
        }
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let mut report = UploadReport::default();
        let differ = self.compare(files, &mut report).await?;
        Ok(differ.into_iter().map(|f| f.path.clone()).collect())
    }

    /// Reads digest, owner and mode of `files` on the host; records the identical ones as
    /// unchanged and returns the others.
    async fn compare<'a>(
        &self,
        files: &'a [FileSpec],
        report: &mut UploadReport,
    ) -> Result<Vec<&'a FileSpec>, FilesError> {
        let current = self
            .sudo(&compare_script(files))
            .await
            .map_err(|e| FilesError::Compare(Box::new(e)))?
            .stdout_text();
        let mut lines = current.lines();
        let mut send = Vec::new();
        for f in files {
            let line = lines.next().ok_or_else(|| FilesError::CompareOutput {
                host: self.host().to_owned(),
                path: f.path.clone(),
                line: String::new(),
            })?;
            let wanted = format!("{} {}:{}:{:o}", sha256_hex(&f.content), f.owner, f.group, f.mode);
            if line == wanted {
                report.unchanged.push(f.path.clone());
            } else if line == "-" || line.len() > 65 {
                send.push(f);
            } else {
                return Err(FilesError::CompareOutput {
                    host: self.host().to_owned(),
                    path: f.path.clone(),
                    line: line.to_owned(),
                });
            }
        }
        Ok(send)
    }

    /// Removes `paths` as root; returns those that existed. When any did, their folders are
    /// synced before this returns, so a removal (the bootstrap control plane's static Pods)
    /// is not undone by a power loss.
    ///
    /// # Errors
    /// [`FilesError::InvalidSpec`] for a relative path; [`FilesError::Remove`] quoting stderr.
    pub async fn remove(&self, paths: &[&str]) -> Result<Vec<String>, FilesError> {
        for p in paths {
            if !p.starts_with('/') || p.chars().any(char::is_control) {
                return Err(FilesError::InvalidSpec {
                    path: (*p).to_owned(),
                    reason: "path must be absolute".to_owned(),
                });
            }
        }
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .sudo(&remove_script(paths))
            .await
            .map_err(|e| FilesError::Remove(Box::new(e)))?;
        Ok(out.stdout_text().lines().map(str::to_owned).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_validated() {
        assert!(FileSpec::secret("/etc/a", "x").validate().is_ok());
        assert!(FileSpec::secret("etc/a", "x").validate().is_err());
        assert!(FileSpec::secret("/etc/../a", "x").validate().is_err());
        assert!(FileSpec::secret("/etc/a\n", "x").validate().is_err());
        assert!(FileSpec::secret("/etc/a", "x")
            .with_owner("root;rm", "root")
            .validate()
            .is_err());
    }

    #[test]
    fn split_keeps_root_folder() {
        let f = FileSpec::secret("/a", "");
        assert_eq!(f.split(), ("/", "a"));
        let f = FileSpec::secret("/etc/ssl/etcd/x.crt", "");
        assert_eq!(f.split(), ("/etc/ssl/etcd", "x.crt"));
    }

    #[test]
    fn scripts_quote_paths() {
        assert!(FileSpec::secret("/etc/it's", "abc").validate().is_err());
        assert!(FileSpec::secret("/etc/a b", "abc").validate().is_err());
        let f = FileSpec::secret("/etc/k8s/ca.crt", "abc");
        let s = write_script(&[&f], "tok");
        assert!(s.contains("'/etc/k8s/ca.crt'"), "{s}");
        assert!(s.contains(&sha256_hex(b"abc")));
        assert!(compare_script(&[f]).contains("'/etc/k8s/ca.crt'"));
    }

    #[test]
    fn the_script_syncs_temporaries_before_renames_and_folders_after() {
        let cert = FileSpec::secret("/etc/ssl/etcd/etcd/peer.crt", "CRT");
        let key = FileSpec::secret("/etc/ssl/etcd/etcd/peer.key", "KEY");
        let conf = FileSpec::secret("/etc/kubernetes/kubeconfig", "K");
        let s = write_script(&[&cert, &key, &conf], "tok");
        let at = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("{needle:?} missing from\n{s}"));
        // the temporaries still to rename are collected, then synced in one process
        let sync_files = at("if [ $# -gt 0 ]; then sync -- \"$@\"; fi\n");
        let temps = [
            "/etc/ssl/etcd/etcd/.peer.crt.selfhosted-tok",
            "/etc/ssl/etcd/etcd/.peer.key.selfhosted-tok",
            "/etc/kubernetes/.kubeconfig.selfhosted-tok",
        ];
        for (i, t) in temps.iter().enumerate() {
            assert!(at(&format!("if [ $u{i} = 0 ]; then set -- \"$@\" '{t}'; fi\n")) < sync_files);
        }
        // the renames after, in the order given
        let renames: Vec<usize> = temps.iter().map(|t| at(&format!("mv -f -- '{t}' "))).collect();
        assert!(
            sync_files < renames[0] && renames[0] < renames[1] && renames[1] < renames[2],
            "{s}"
        );
        // then the folders, each once, with those above them, in one process
        let dirs = at("if [ $# -gt 0 ]; then sync -- '/' '/etc' '/etc/kubernetes' '/etc/ssl' '/etc/ssl/etcd' '/etc/ssl/etcd/etcd'; fi\n");
        assert!(renames[2] < dirs, "{s}");
        assert!(
            s.ends_with("'/etc/ssl/etcd/etcd'; fi\n"),
            "nothing after the folder sync:\n{s}"
        );
        assert_eq!(s.matches("sync --").count(), 2, "two sync processes per batch:\n{s}");
    }

    #[test]
    fn sync_dirs_climb_to_the_root_once() {
        let a = FileSpec::secret("/a", "");
        let b = FileSpec::secret("/var/lib/x/y", "");
        let c = FileSpec::secret("/var/lib/z", "");
        assert_eq!(sync_dirs(&[&a]), vec!["/"]);
        assert_eq!(sync_dirs(&[&b, &c]), vec!["/", "/var", "/var/lib", "/var/lib/x"]);
    }

    #[test]
    fn removal_syncs_the_folders_once_if_anything_went() {
        let s = remove_script(&[
            "/etc/kubernetes/manifests/a.yaml",
            "/etc/kubernetes/manifests/b.yaml",
            "/x",
        ]);
        assert!(
            s.ends_with(
                "if [ $n = 1 ]; then set --; for d in '/' '/etc/kubernetes/manifests'; do \
                 if [ -d \"$d\" ]; then set -- \"$@\" \"$d\"; fi; done; sync -- \"$@\"; fi"
            ),
            "{s}"
        );
        assert_eq!(s.matches("sync --").count(), 1, "{s}");
    }
}
