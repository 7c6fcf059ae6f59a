//! Snapshots of the keyspace, streamed from one member: the backend database followed by
//! its sha256, as `etcdctl snapshot save` writes it, so `etcdutl snapshot restore` (and
//! etcd 3.4's `etcdctl snapshot restore`) checks it as it restores.

use sha2::{Digest, Sha256};

use crate::client::{Client, EtcdError};
use crate::pb::SnapshotRequest;

/// Length of the sha256 etcd appends to the database it streams.
const DIGEST_LEN: usize = 32;

/// How long the stream may stall before the member is given up (a connection that died
/// without closing): the caller then asks the next one.
const IDLE_WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

/// One snapshot, whole and checked.
#[derive(Clone)]
pub struct Snapshot {
    /// The file, as `etcdctl snapshot save` writes it. It holds every Secret of the cluster.
    pub data: Vec<u8>,
    /// The keyspace revision just before the snapshot began (the snapshot holds at least it).
    pub revision: i64,
    /// The version of the etcd that took it.
    pub etcd_version: String,
    /// The member that took it.
    pub member_id: crate::Id,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("bytes", &self.data.len())
            .field("revision", &self.revision)
            .field("etcd_version", &self.etcd_version)
            .field("member_id", &self.member_id)
            .finish()
    }
}

impl Snapshot {
    /// The lowercase hex sha256 of the whole file (what `sha256sum` prints for it).
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.data))
    }
}

/// Whether `file` ends with the sha256 of what comes before it, as every snapshot etcd
/// streams does: `Err` says why not.
///
/// # Errors
/// A short file, or one whose trailing digest does not match.
pub fn check(file: &[u8]) -> Result<(), String> {
    let Some(split) = file.len().checked_sub(DIGEST_LEN).filter(|n| *n > 0) else {
        return Err(format!(
            "{} bytes is too short for a database and its sha256",
            file.len()
        ));
    };
    let (db, digest) = file.split_at(split);
    if Sha256::digest(db)[..] == *digest {
        Ok(())
    } else {
        Err(format!(
            "the sha256 etcd appended ({}) is not that of the {split} bytes before it",
            hex::encode(digest)
        ))
    }
}

impl Client {
    /// Streams a snapshot from the member, after checking that it has a leader: held in
    /// memory (a cluster's database is typically tens of MiB; etcd's default quota is 2 GiB),
    /// and checked against the digest etcd appends before it is returned.
    ///
    /// # Errors
    /// [`EtcdError::Call`] when the member refuses or has no leader; [`EtcdError::Snapshot`]
    /// when the stream ends early or does not match its digest.
    pub async fn snapshot(&self) -> Result<Snapshot, EtcdError> {
        const CALL: &str = "Maintenance.Snapshot";
        let status = self.status().await?;
        if !status.has_leader {
            return Err(EtcdError::Call {
                route: self.route().to_owned(),
                call: CALL,
                message: format!(
                    "member {} has no leader (quorum lost?): a snapshot now could miss committed writes",
                    status.member_id
                ),
            });
        }
        let mut stream = self
            .maintenance()
            .snapshot(SnapshotRequest {})
            .await
            .map_err(|s| self.call_error(CALL, &s))?
            .into_inner();
        let mut data = Vec::with_capacity(usize::try_from(status.db_size).unwrap_or(0) + DIGEST_LEN);
        let mut complete = false;
        loop {
            let next = match tokio::time::timeout(IDLE_WITHIN, stream.message()).await {
                Ok(next) => next.map_err(|s| self.call_error(CALL, &s))?,
                Err(_) => {
                    return Err(EtcdError::Call {
                        route: self.route().to_owned(),
                        call: CALL,
                        message: format!("no data for {IDLE_WITHIN:?} after {} bytes", data.len()),
                    })
                }
            };
            let Some(chunk) = next else { break };
            data.extend_from_slice(&chunk.blob);
            complete = chunk.remaining_bytes == 0;
        }
        let unusable = |reason: String| EtcdError::Snapshot {
            route: self.route().to_owned(),
            reason,
        };
        if !complete {
            return Err(unusable(format!(
                "the stream ended after {} bytes, before its last chunk",
                data.len()
            )));
        }
        check(&data).map_err(unusable)?;
        tracing::info!(route = %self.route(), bytes = data.len(), revision = status.revision, "etcd snapshot taken");
        Ok(Snapshot {
            data,
            revision: status.revision,
            etcd_version: status.version,
            member_id: status.member_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_digest(db: &[u8]) -> Vec<u8> {
        let mut f = db.to_vec();
        f.extend_from_slice(&Sha256::digest(db));
        f
    }

    #[test]
    fn a_file_ending_with_its_digest_passes() {
        assert_eq!(check(&with_digest(b"bolt database pages")), Ok(()));
    }

    #[test]
    fn a_changed_byte_or_a_cut_file_fails() {
        let mut f = with_digest(b"bolt database pages");
        f[3] ^= 1;
        assert!(check(&f).unwrap_err().contains("is not that of the 19 bytes"));
        let f = with_digest(b"bolt database pages");
        assert!(check(&f[..f.len() - 1]).is_err());
        assert!(check(&f[..DIGEST_LEN]).unwrap_err().contains("too short"));
    }

    #[test]
    fn debug_never_prints_the_data() {
        let s = Snapshot {
            data: b"secret".to_vec(),
            revision: 7,
            etcd_version: "3.5.21".into(),
            member_id: crate::Id(0x8e9e_05c5_2164_694d),
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("secret") && shown.contains("bytes: 6"), "{shown}");
    }
}
