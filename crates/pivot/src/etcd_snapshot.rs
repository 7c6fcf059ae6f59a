//! A snapshot of etcd before an update changes anything: streamed from the first controller
//! whose member answers with a leader (over an SSH channel to its `127.0.0.1:2379`, with the
//! etcd client certificate of the assets, so nothing need be installed on the host), checked
//! against the digest etcd appends, kept on that controller under the state folder (the
//! newest [`KEEP_ON_HOST`]), and, if the user names a folder, written there too. Either copy
//! restores with `etcdutl snapshot restore` (docs/guides/disaster-recovery.md).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use selfhosted_etcd::{Client, Credentials, Snapshot, Status};
use selfhosted_transport::session::shell_quote;
use selfhosted_transport::{FileSpec, Session};

use crate::phase::{chain, Phase, PivotError};

/// etcd's client port on every controller (the node contract's `ETCD_LISTEN_CLIENT_URLS`).
const ETCD_CLIENT_PORT: u16 = 2379;

/// Snapshots kept on the controller that took them; older ones are removed.
pub const KEEP_ON_HOST: usize = 3;

const PHASE: Phase = Phase::EtcdSnapshot;

/// Where a snapshot was kept, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// The controller that took and keeps it.
    pub host: String,
    /// Its path there.
    pub path: String,
    /// Its path in the user's folder, if one was named.
    pub local_path: Option<PathBuf>,
    /// Size, bytes.
    pub bytes: usize,
    /// sha256 of the file (`sha256sum` prints the same).
    pub sha256: String,
    /// The keyspace revision just before it began.
    pub revision: i64,
    /// The etcd version that took it.
    pub etcd_version: String,
    /// When it was taken (RFC 3339, UTC).
    pub taken_at: String,
}

impl SnapshotRecord {
    /// The record as string attributes, for Terraform state.
    pub fn attributes(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::from([
            ("host".to_owned(), self.host.clone()),
            ("path".to_owned(), self.path.clone()),
            ("bytes".to_owned(), self.bytes.to_string()),
            ("sha256".to_owned(), self.sha256.clone()),
            ("revision".to_owned(), self.revision.to_string()),
            ("etcd_version".to_owned(), self.etcd_version.clone()),
            ("taken_at".to_owned(), self.taken_at.clone()),
        ]);
        if let Some(p) = &self.local_path {
            m.insert("local_path".to_owned(), p.display().to_string());
        }
        m
    }
}

/// The etcd client credentials of the assets.
pub(crate) fn credentials(assets: &BTreeMap<String, String>) -> Result<Credentials, PivotError> {
    let get = |name: &str| {
        assets
            .get(name)
            .cloned()
            .ok_or_else(|| PivotError::new(PHASE, format!("the assets hold no {name}; render them again")))
    };
    Ok(Credentials {
        ca_pem: get("tls/etcd-ca.crt")?,
        cert_pem: get("tls/etcd-client.crt")?,
        key_pem: get("tls/etcd-client.key")?,
    })
}

/// The snapshot's file name: UTC time first, so names sort by age.
fn file_name(taken: time::OffsetDateTime, revision: i64) -> String {
    let t = taken.to_offset(time::UtcOffset::UTC);
    format!(
        "etcd-{:04}{:02}{:02}T{:02}{:02}{:02}Z-r{revision}.db",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The etcd member on `session`'s host, through an SSH channel to its loopback.
pub(crate) async fn member(session: &Session, creds: &Credentials) -> Result<Client, String> {
    let s = session.clone();
    let open = move || {
        let s = s.clone();
        async move {
            s.open_stream("127.0.0.1", ETCD_CLIENT_PORT)
                .await
                .map_err(std::io::Error::other)
        }
    };
    let route = format!("ssh tunnel {} → 127.0.0.1:{ETCD_CLIENT_PORT}", session.host());
    Client::connect(route, open, creds, "localhost")
        .await
        .map_err(|e| chain(&e))
}

/// The member on `session`'s host and what it says of itself; `Err` says why it did not
/// answer.
pub(crate) async fn member_status(session: &Session, creds: &Credentials) -> Result<(Client, Status), String> {
    let client = member(session, creds).await?;
    let status = client.status().await.map_err(|e| chain(&e))?;
    Ok((client, status))
}

/// Asks the member on `session`'s host every `poll` until `accept` takes what it says of
/// itself, or `until` passes; then `Err` is its last answer, or why there was none.
pub(crate) async fn await_member<T>(
    session: &Session,
    creds: &Credentials,
    until: tokio::time::Instant,
    poll: std::time::Duration,
    accept: impl Fn(&Status) -> Result<T, String>,
) -> Result<T, String> {
    loop {
        let last = match member_status(session, creds).await {
            Ok((_, status)) => match accept(&status) {
                Ok(t) => return Ok(t),
                Err(why) => why,
            },
            Err(why) => why,
        };
        if tokio::time::Instant::now() + poll > until {
            return Err(last);
        }
        tokio::time::sleep(poll).await;
    }
}

/// Streams a snapshot from the member on `session`'s host.
async fn stream_from(session: &Session, creds: &Credentials) -> Result<Snapshot, String> {
    member(session, creds).await?.snapshot().await.map_err(|e| chain(&e))
}

/// Takes the snapshot from the first of `controllers` whose member serves one, keeps it
/// there under `<state_dir>/etcd-snapshots/` and in `local_dir` if given.
///
/// # Errors
/// When no member gave a snapshot (each one's reason is evidence), or it could not be kept.
pub async fn take(
    controllers: &[&Session],
    assets: &BTreeMap<String, String>,
    state_dir: &str,
    local_dir: Option<&Path>,
) -> Result<SnapshotRecord, PivotError> {
    let creds = credentials(assets)?;
    let mut refused = Vec::new();
    for session in controllers {
        let snapshot = match stream_from(session, &creds).await {
            Ok(s) => s,
            Err(why) => {
                refused.push(format!("{}: {why}", session.host()));
                continue;
            }
        };
        let taken = time::OffsetDateTime::now_utc();
        let name = file_name(taken, snapshot.revision);
        let dir = format!("{}/etcd-snapshots", state_dir.trim_end_matches('/'));
        let path = format!("{dir}/{name}");
        let (bytes, sha256) = (snapshot.data.len(), snapshot.sha256());
        // Moved, not copied: a snapshot may be large.
        let file = FileSpec::secret(&path, snapshot.data);
        keep_on_host(session, &dir, &file).await?;
        let local_path = match local_dir {
            Some(d) => Some(keep_locally(d, &name, &file.content).map_err(|e| {
                PivotError::new(
                    PHASE,
                    format!(
                        "the snapshot is kept on {} at {path}, but cannot be written to etcd_snapshot_dir {}: {e}",
                        session.host(),
                        d.display()
                    ),
                )
            })?),
            None => None,
        };
        return Ok(SnapshotRecord {
            host: session.host().to_owned(),
            path,
            local_path,
            bytes,
            sha256,
            revision: snapshot.revision,
            etcd_version: snapshot.etcd_version,
            taken_at: taken
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        });
    }
    let mut err = PivotError::new(
        PHASE,
        "no etcd member gave a snapshot, so nothing was changed: an update starts only once one is kept. \
         If etcd lost quorum, restore it first (docs/guides/disaster-recovery.md), then apply again",
    );
    for r in refused {
        err = err.with_evidence(r);
    }
    Err(err)
}

/// Writes the snapshot on the host (root, 0600, synced, atomic), then removes all but the
/// newest [`KEEP_ON_HOST`] there, never the one just written (names sort by the clock of the
/// machine running Terraform, which may be behind the last one's). A failed removal is only
/// logged: the snapshot is kept.
async fn keep_on_host(session: &Session, dir: &str, file: &FileSpec) -> Result<(), PivotError> {
    let path = &file.path;
    session.upload(std::slice::from_ref(file)).await.map_err(|e| {
        PivotError::on(
            PHASE,
            session.host(),
            format!("cannot write the snapshot to {path}: {}", chain(&e)),
        )
    })?;
    let name = path.rsplit('/').next().unwrap_or(path);
    let prune = format!(
        "cd {} && ls -1 etcd-*-r*.db | grep -vxF {} | sort | head -n -{} | xargs -r rm -f --",
        shell_quote(dir),
        shell_quote(name),
        KEEP_ON_HOST - 1
    );
    if let Err(e) = session.sudo(&prune).await {
        tracing::warn!(host = %session.host(), error = %chain(&e), "older etcd snapshots not removed");
    }
    Ok(())
}

/// Writes `data` as `dir/name`, 0600, through a synced temporary renamed into place; the
/// folder is made 0700 if missing. Returns the absolute path (a relative `dir` is the
/// working folder's, which is Terraform's).
fn keep_locally(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = &std::path::absolute(dir)?;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let target = dir.join(name);
    let temp = dir.join(format!(".{name}.partial"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&temp, &target)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_the_time_they_were_taken() {
        let t = time::macros::datetime!(2026-12-06 09:05:03 UTC);
        assert_eq!(file_name(t, 42), "etcd-20261206T090503Z-r42.db");
        let later = time::macros::datetime!(2026-12-06 10:00:00 +01:00);
        assert!(file_name(later, 1) < file_name(t, 42), "10:00+01 is 09:00 UTC");
    }

    #[test]
    fn a_local_copy_is_private_and_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("snapshots");
        let p = keep_locally(&folder, "etcd-x.db", b"db").unwrap();
        assert!(p.is_absolute());
        assert_eq!(std::fs::read(&p).unwrap(), b"db");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 1, "no temporary left");
    }

    #[test]
    fn missing_client_credentials_say_what_to_do() {
        let e = credentials(&BTreeMap::new()).unwrap_err();
        assert_eq!(e.phase, Phase::EtcdSnapshot);
        assert!(
            e.message.contains("tls/etcd-ca.crt") && e.message.contains("render"),
            "{e}"
        );
    }
}
