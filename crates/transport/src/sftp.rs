//! Small upload batches through a root `sftp-server` (started with `sudo -n` on an exec
//! channel): every step — compare, write, owner, mode, folders, `fsync`, atomic rename
//! (`posix-rename@openssh.com`) — happens in that one process, so a batch costs the host three
//! process starts (shell, sudo, sftp-server) instead of one per step.
//!
//! Durability (see [`crate::files`] for the guarantee): each temporary file is synced on its
//! open handle (`fsync@openssh.com`, OpenSSH 6.5+) after its owner and mode are set, before the
//! first rename of the batch; after the renames, each folder that gained or changed an entry
//! (the targets' folders, and the parent of every folder this upload created) is opened (a
//! read-only handle on a directory, opened while the temporaries are written) and synced the
//! same way. A server that does not offer `fsync@openssh.com`, or refuses it, makes the
//! upload fall back to the shell path (which runs `sync`) before any rename: the caller logs
//! why at debug level.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};

use crate::files::FileSpec;
use crate::session::{shell_quote, ExecError, Session};

/// Why the SFTP path failed.
#[derive(Debug, thiserror::Error)]
pub enum SftpUploadError {
    /// The root sftp-server could not be started or did not speak SFTP (the caller may fall
    /// back to the shell path, which reports why).
    #[error("{host}: no root sftp-server: {reason}")]
    Unavailable {
        /// Host name.
        host: String,
        /// What went wrong.
        reason: String,
    },
    /// Looking up owner or group ids failed.
    #[error("looking up owners failed: {0}")]
    Owners(#[source] Box<ExecError>),
    /// An owner or group does not exist on the host.
    #[error("{host}: no such user or group {name:?}")]
    NoSuchOwner {
        /// Host name.
        host: String,
        /// The name.
        name: String,
    },
    /// An SFTP operation failed.
    #[error("{host}: {step} {path}: {source}")]
    Step {
        /// Host name.
        host: String,
        /// The operation.
        step: &'static str,
        /// The path concerned.
        path: String,
        /// The server's answer.
        #[source]
        source: SftpError,
    },
}

/// Starts the first sftp-server found, as root.
const SFTP_SERVER: &str = "for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server \
     /usr/libexec/sftp-server /usr/lib/ssh/sftp-server; do \
     if [ -x \"$p\" ]; then exec \"$p\"; fi; done; echo 'no sftp-server found' >&2; exit 127";

const CHUNK: usize = 32 * 1024;

/// The OpenSSH extension that syncs an open handle.
const FSYNC: &str = "fsync@openssh.com";

fn is_status(e: &SftpError, code: StatusCode) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == code)
}

/// A refusal that means "this server cannot fsync", not an I/O error.
fn is_unsupported(e: &SftpError) -> bool {
    is_status(e, StatusCode::OpUnsupported) || is_status(e, StatusCode::PermissionDenied)
}

fn ssh_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Ctx<'a> {
    host: &'a str,
    sftp: &'a RawSftpSession,
}

impl Ctx<'_> {
    fn err(&self, step: &'static str, path: &str) -> impl FnOnce(SftpError) -> SftpUploadError {
        let host = self.host.to_owned();
        let path = path.to_owned();
        move |source| SftpUploadError::Step {
            host,
            step,
            path,
            source,
        }
    }

    /// True when `f` is already in place with the same content, owner and mode.
    async fn is_current(&self, f: &FileSpec, uid: u32, gid: u32) -> Result<bool, SftpUploadError> {
        let attrs = match self.sftp.lstat(f.path.as_str()).await {
            Ok(a) => a.attrs,
            Err(e) if is_status(&e, StatusCode::NoSuchFile) => return Ok(false),
            Err(e) => return Err(self.err("lstat", &f.path)(e)),
        };
        let same_meta = attrs.is_regular()
            && attrs.uid == Some(uid)
            && attrs.gid == Some(gid)
            && attrs.permissions.map(|p| p & 0o7777) == Some(f.mode)
            && attrs.size == Some(f.content.len() as u64);
        if !same_meta {
            return Ok(false);
        }
        let handle = self
            .sftp
            .open(f.path.as_str(), OpenFlags::READ, FileAttributes::default())
            .await
            .map_err(self.err("open", &f.path))?
            .handle;
        let mut data = Vec::with_capacity(f.content.len());
        while data.len() < f.content.len() {
            match self.sftp.read(handle.as_str(), data.len() as u64, CHUNK as u32).await {
                Ok(d) if d.data.is_empty() => break,
                Ok(d) => data.extend_from_slice(&d.data),
                Err(e) if is_status(&e, StatusCode::Eof) => break,
                Err(e) => return Err(self.err("read", &f.path)(e)),
            }
        }
        let _ = self.sftp.close(handle.as_str()).await;
        Ok(data == f.content)
    }

    /// Creates `dir` and its missing parents (mode 0755); returns the folders it created.
    async fn mkdirs(&self, dir: &str) -> Result<Vec<String>, SftpUploadError> {
        let mut missing = Vec::new();
        let mut cur = dir.to_owned();
        loop {
            match self.sftp.stat(cur.as_str()).await {
                Ok(_) => break,
                Err(e) if is_status(&e, StatusCode::NoSuchFile) => {
                    missing.push(cur.clone());
                    match cur.rfind('/') {
                        Some(0) | None => break,
                        Some(i) => cur.truncate(i),
                    }
                }
                Err(e) => return Err(self.err("stat", &cur)(e)),
            }
        }
        let mut created = Vec::new();
        for d in missing.iter().rev() {
            let attrs = FileAttributes {
                permissions: Some(0o755),
                ..FileAttributes::default()
            };
            match self.sftp.mkdir(d.as_str(), attrs).await {
                Ok(_) => created.push(d.clone()),
                // another file of the batch may have made it meanwhile (and records it)
                Err(e) => {
                    if self.sftp.stat(d.as_str()).await.is_err() {
                        return Err(self.err("mkdir", d)(e));
                    }
                }
            }
        }
        Ok(created)
    }

    /// A read-only handle on folder `dir`, to sync it once the renames are done.
    async fn open_dir(&self, dir: &str) -> Result<String, SftpUploadError> {
        Ok(self
            .sftp
            .open(dir, OpenFlags::READ, FileAttributes::default())
            .await
            .map_err(self.err("open folder", dir))?
            .handle)
    }

    /// Syncs `handle` (of `path`) to disk; a server that refuses is [`SftpUploadError::Unavailable`].
    async fn fsync(&self, handle: &str, path: &str) -> Result<(), SftpUploadError> {
        match self.sftp.fsync(handle).await {
            Ok(_) => Ok(()),
            Err(e) if is_unsupported(&e) => Err(SftpUploadError::Unavailable {
                host: self.host.to_owned(),
                reason: format!("the sftp-server refused fsync@openssh.com on {path}: {e}"),
            }),
            Err(e) => Err(self.err("sync", path)(e)),
        }
    }

    /// Removes temporaries that interrupted uploads left in `dir` for `bases`.
    async fn remove_leftovers(&self, dir: &str, bases: &[&str]) -> Result<(), SftpUploadError> {
        let handle = match self.sftp.opendir(dir).await {
            Ok(h) => h.handle,
            Err(_) => return Ok(()),
        };
        let mut stale = Vec::new();
        while let Ok(name) = self.sftp.readdir(handle.as_str()).await {
            for entry in name.files {
                let n = entry.filename;
                if bases.iter().any(|b| n.starts_with(&format!(".{b}.selfhosted-"))) {
                    stale.push(format!("{}/{n}", dir.trim_end_matches('/')));
                }
            }
        }
        let _ = self.sftp.close(handle.as_str()).await;
        for p in stale {
            let _ = self.sftp.remove(p.as_str()).await;
        }
        Ok(())
    }

    /// Writes `f` to `temp` with owner and mode, and syncs it to disk.
    async fn write_temp(&self, f: &FileSpec, temp: &str, uid: u32, gid: u32) -> Result<(), SftpUploadError> {
        let attrs = FileAttributes {
            permissions: Some(0o600),
            ..FileAttributes::default()
        };
        let handle = self
            .sftp
            .open(
                temp,
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::EXCLUDE,
                attrs,
            )
            .await
            .map_err(self.err("create", temp))?
            .handle;
        let writes = f
            .content
            .chunks(CHUNK)
            .enumerate()
            .map(|(i, chunk)| self.sftp.write(handle.as_str(), (i * CHUNK) as u64, chunk.to_vec()));
        try_join_all(writes).await.map_err(self.err("write", temp))?;
        let meta = FileAttributes {
            uid: Some(uid),
            gid: Some(gid),
            permissions: Some(f.mode),
            ..FileAttributes::default()
        };
        self.sftp
            .fsetstat(handle.as_str(), meta)
            .await
            .map_err(self.err("set owner and mode of", temp))?;
        self.fsync(handle.as_str(), temp).await?;
        self.sftp
            .close(handle.as_str())
            .await
            .map_err(self.err("close", temp))?;
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), SftpUploadError> {
        let mut data = Vec::new();
        ssh_string(&mut data, from);
        ssh_string(&mut data, to);
        match self.sftp.extended("posix-rename@openssh.com", data).await {
            Ok(Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
            Ok(Packet::Status(s)) => Err(self.err("rename onto", to)(SftpError::Status(s))),
            Ok(_) => Err(self.err("rename onto", to)(SftpError::UnexpectedPacket)),
            Err(e) => Err(self.err("rename onto", to)(e)),
        }
    }
}

/// Numeric ids of the owners and groups of `files` (root is 0 without asking the host).
async fn owner_ids(
    session: &Session,
    files: &[&FileSpec],
) -> Result<(BTreeMap<String, u32>, BTreeMap<String, u32>), SftpUploadError> {
    let mut users = BTreeMap::from([("root".to_owned(), 0)]);
    let mut groups = BTreeMap::from([("root".to_owned(), 0)]);
    let mut script = String::new();
    for f in files {
        if !users.contains_key(&f.owner) && !script.contains(&format!("u {} ", f.owner)) {
            script.push_str(&format!(
                "echo u {o} $(id -u {q} 2>/dev/null || echo -); ",
                o = f.owner,
                q = shell_quote(&f.owner)
            ));
        }
        if !groups.contains_key(&f.group) && !script.contains(&format!("g {} ", f.group)) {
            script.push_str(&format!(
                "echo g {g} $(getent group {q} | cut -d: -f3); ",
                g = f.group,
                q = shell_quote(&f.group)
            ));
        }
    }
    if script.is_empty() {
        return Ok((users, groups));
    }
    let out = session
        .run(&script)
        .await
        .map_err(|e| SftpUploadError::Owners(Box::new(e)))?
        .stdout_text();
    for line in out.lines() {
        let mut it = line.split_whitespace();
        match (it.next(), it.next(), it.next().and_then(|n| n.parse().ok())) {
            (Some("u"), Some(name), Some(id)) => {
                users.insert(name.to_owned(), id);
            }
            (Some("g"), Some(name), Some(id)) => {
                groups.insert(name.to_owned(), id);
            }
            _ => {}
        }
    }
    Ok((users, groups))
}

/// Uploads `files` (with temporaries named by `temps`) through a root sftp-server; returns,
/// per file, whether it was changed.
pub(crate) async fn upload(
    session: &Session,
    files: &[&FileSpec],
    temps: &[String],
) -> Result<Vec<bool>, SftpUploadError> {
    let host = session.host();
    let (users, groups) = owner_ids(session, files).await?;
    let mut ids = Vec::with_capacity(files.len());
    for f in files {
        let uid = *users.get(&f.owner).ok_or_else(|| SftpUploadError::NoSuchOwner {
            host: host.to_owned(),
            name: f.owner.clone(),
        })?;
        let gid = *groups.get(&f.group).ok_or_else(|| SftpUploadError::NoSuchOwner {
            host: host.to_owned(),
            name: f.group.clone(),
        })?;
        ids.push((uid, gid));
    }
    let unavailable = |reason: String| SftpUploadError::Unavailable {
        host: host.to_owned(),
        reason,
    };
    let (channel, _permit) = session
        .open_exec(&session.as_root(SFTP_SERVER))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let sftp = RawSftpSession::new(channel.into_stream());
    let version = sftp.init().await.map_err(|e| unavailable(e.to_string()))?;
    let ctx = &Ctx { host, sftp: &sftp };

    let current = try_join_all(
        files
            .iter()
            .zip(&ids)
            .map(|(f, (uid, gid))| ctx.is_current(f, *uid, *gid)),
    )
    .await?;
    let mut by_dir: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (f, same) in files.iter().zip(&current) {
        if !same {
            let (dir, base) = f.split();
            by_dir.entry(dir).or_default().push(base);
        }
    }
    if by_dir.is_empty() {
        let _ = sftp.close_session();
        return Ok(current.iter().map(|same| !same).collect());
    }
    if !version.extensions.contains_key(FSYNC) {
        // before anything is written: the shell path syncs with `sync`
        let _ = sftp.close_session();
        return Err(unavailable(format!("the sftp-server does not offer {FSYNC}")));
    }
    let created = try_join_all(by_dir.iter().map(|(dir, bases)| async {
        let created = ctx.mkdirs(dir).await?;
        ctx.remove_leftovers(dir, bases).await?;
        Ok::<_, SftpUploadError>(created)
    }))
    .await?;
    // the folders whose entries change: the targets' and the parents of new folders
    let mut dirs: BTreeSet<String> = by_dir.keys().map(|d| (*d).to_owned()).collect();
    dirs.extend(created.iter().flatten().map(|d| parent(d).to_owned()));
    let writes = try_join_all(
        files
            .iter()
            .zip(temps)
            .zip(&ids)
            .zip(&current)
            .filter(|(_, same)| !**same)
            .map(|(((f, t), (uid, gid)), _)| ctx.write_temp(f, t, *uid, *gid)),
    );
    let opens = try_join_all(dirs.iter().map(|d| async move { Ok((d, ctx.open_dir(d).await?)) }));
    // every temporary is on disk (content, owner, mode) before the first rename
    let (_, dir_handles) = futures::try_join!(writes, opens)?;
    // renames one by one, in the order given: files that trigger host units go last
    for ((f, t), same) in files.iter().zip(temps).zip(&current) {
        if !same {
            ctx.rename(t, &f.path).await?;
        }
    }
    // the renames themselves on disk before the upload reports success
    let sftp = &sftp;
    try_join_all(dir_handles.iter().map(|(d, h)| async move {
        // past the renames a refusal is an error, not a reason to fall back
        let (synced, _) = futures::join!(sftp.fsync(h.as_str()), sftp.close(h.as_str()));
        synced.map(drop).map_err(ctx.err("sync folder", d))
    }))
    .await?;
    let _ = sftp.close_session();
    Ok(current.iter().map(|same| !same).collect())
}

/// The folder holding `path` (`/` for a top-level name).
fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

#[cfg(test)]
mod tests {
    use super::parent;

    #[test]
    fn parents() {
        assert_eq!(parent("/etc/ssl/etcd"), "/etc/ssl");
        assert_eq!(parent("/etc"), "/");
    }
}
