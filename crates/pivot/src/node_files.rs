//! Which asset goes to which host, with which mode and owner, in which
//! order. Files that trigger host units (the kubelet kubeconfig starts the
//! kubelet, etcd's `server.crt` starts etcd on typhoon hosts) come last, in a
//! batch of their own, so a unit never starts on half the material.

use std::collections::BTreeMap;

use selfhosted_transport::FileSpec;

use crate::inventory::Role;
use crate::paths::RemotePaths;

/// Files for one host: `files` first, then `now` is run, then `triggers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFiles {
    /// Material that starts nothing.
    pub files: Vec<FileSpec>,
    /// A command (as root) that makes what `files` set hold at once, not only from the next
    /// boot.
    pub now: Option<String>,
    /// Files whose arrival starts a unit; written after `files`.
    pub triggers: Vec<FileSpec>,
}

/// A controller's sysctl for the apiserver hand-over, set at every boot (systemd-sysctl; `-`:
/// a kernel older than 5.14 has no such key, and that is no error) and by the provider at once:
/// `net.ipv4.tcp_migrate_req` moves the connections queued on a closing apiserver listener to
/// the next one on the port. Set on the host, it spares the apiserver pods' reuseport gate
/// the privileges to set it itself.
pub const APISERVER_SYSCTL: &str = "/etc/sysctl.d/91-selfhosted-apiserver.conf";
const APISERVER_SYSCTL_CONTENT: &str = "-net.ipv4.tcp_migrate_req = 1\n";
/// Sets it now; a kernel without it (older than 5.14) changes nothing and fails nothing.
const APISERVER_SYSCTL_NOW: &str = "sysctl -q -w net.ipv4.tcp_migrate_req=1 2>/dev/null || true";

impl HostFiles {
    /// These files and `more`'s, each batch in its place; `more`'s command runs after this one's
    /// succeeded.
    #[must_use]
    pub fn and(mut self, more: HostFiles) -> Self {
        self.files.extend(more.files);
        self.triggers.extend(more.triggers);
        self.now = match (self.now, more.now) {
            (Some(a), Some(b)) => Some(format!("{{ {a}; }} && {{ {b}; }}")),
            (a, b) => a.or(b),
        };
        self
    }
}

/// An asset the host contract needs is not in the assets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the assets lack {0}; pass selfhosted_cluster_assets.<name>.assets unchanged")]
pub struct MissingAsset(pub String);

fn get<'a>(assets: &'a BTreeMap<String, String>, path: &str) -> Result<&'a str, MissingAsset> {
    assets
        .get(path)
        .map(String::as_str)
        .ok_or_else(|| MissingAsset(path.to_owned()))
}

/// The node secrets of a host. `etcd_owner`: the user etcd runs as on the
/// host (typhoon's `etcd`), when it exists there.
///
/// # Errors
/// [`MissingAsset`] when the assets are not `selfhosted_cluster_assets`'.
pub fn node_secrets(
    assets: &BTreeMap<String, String>,
    role: Role,
    paths: &RemotePaths,
    etcd_owner: Option<&str>,
) -> Result<HostFiles, MissingAsset> {
    let mut out = HostFiles::default();
    out.files
        .push(FileSpec::secret(&paths.ca_certificate, get(assets, "tls/ca.crt")?).with_mode(0o644));
    if role == Role::Controller {
        let dir = paths.etcd_tls_dir.trim_end_matches('/');
        let owner = etcd_owner.unwrap_or("root");
        let etcd = |rel: &str, asset: &str| -> Result<FileSpec, MissingAsset> {
            Ok(FileSpec::secret(format!("{dir}/{rel}"), get(assets, asset)?).with_owner(owner, owner))
        };
        out.files.extend([
            etcd("etcd-client-ca.crt", "tls/etcd-ca.crt")?,
            etcd("etcd-client.crt", "tls/etcd-client.crt")?,
            etcd("etcd-client.key", "tls/etcd-client.key")?,
            etcd("etcd/server-ca.crt", "tls/etcd-ca.crt")?,
            etcd("etcd/server.key", "tls/etcd/server.key")?,
            etcd("etcd/peer-ca.crt", "tls/etcd-ca.crt")?,
            etcd("etcd/peer.crt", "tls/etcd/peer.crt")?,
            etcd("etcd/peer.key", "tls/etcd/peer.key")?,
        ]);
        out.triggers.push(etcd("etcd/server.crt", "tls/etcd/server.crt")?);
        out.files
            .push(FileSpec::secret(APISERVER_SYSCTL, APISERVER_SYSCTL_CONTENT).with_mode(0o644));
        out.now = Some(APISERVER_SYSCTL_NOW.to_owned());
    }
    // Each role its own token: only the controllers' may obtain a controller's identity.
    let kubeconfig = match role {
        Role::Controller => "auth/controller-bootstrap.kubeconfig",
        Role::Worker => "auth/kubelet-bootstrap.kubeconfig",
    };
    out.triggers
        .push(FileSpec::secret(&paths.kubelet_kubeconfig, get(assets, kubeconfig)?));
    Ok(out)
}

/// The bootstrap control plane for the first controller: its credentials
/// (`bootstrap-secrets/…`), then its static Pods (`bootstrap-manifests/…`),
/// which the kubelet starts as soon as they appear.
///
/// # Errors
/// [`MissingAsset`] when the assets hold no bootstrap manifests.
pub fn bootstrap_control_plane(
    assets: &BTreeMap<String, String>,
    paths: &RemotePaths,
) -> Result<HostFiles, MissingAsset> {
    static_pods_with_secrets(assets, paths, "bootstrap", &paths.bootstrap_secrets_dir)
}

/// The recovery apiserver for every controller: its credentials (`recovery-secrets/…`), then
/// its static Pod (`recovery-manifests/…`), which stands by while an apiserver runs.
///
/// # Errors
/// [`MissingAsset`] when the assets hold no recovery manifest.
pub fn recovery_apiserver(assets: &BTreeMap<String, String>, paths: &RemotePaths) -> Result<HostFiles, MissingAsset> {
    static_pods_with_secrets(assets, paths, "recovery", &paths.recovery_secrets_dir)
}

/// `<kind>-secrets/…` into `secrets_dir` (0600), then `<kind>-manifests/…` into the static
/// pod folder.
fn static_pods_with_secrets(
    assets: &BTreeMap<String, String>,
    paths: &RemotePaths,
    kind: &str,
    secrets_dir: &str,
) -> Result<HostFiles, MissingAsset> {
    let secrets = format!("{kind}-secrets/");
    let manifests = format!("{kind}-manifests/");
    let mut out = HostFiles::default();
    for (rel, content) in assets {
        if let Some(name) = rel.strip_prefix(&secrets) {
            let dest = format!("{}/{name}", secrets_dir.trim_end_matches('/'));
            out.files.push(FileSpec::secret(dest, content.as_bytes()));
        } else if let Some(name) = rel.strip_prefix(&manifests) {
            let dest = format!("{}/{name}", paths.static_pod_dir.trim_end_matches('/'));
            out.triggers
                .push(FileSpec::secret(dest, content.as_bytes()).with_mode(0o644));
        }
    }
    if out.triggers.is_empty() {
        return Err(MissingAsset(manifests));
    }
    Ok(out)
}

/// Remote paths of the bootstrap control plane, for its removal.
pub fn bootstrap_paths(assets: &BTreeMap<String, String>, paths: &RemotePaths) -> Vec<String> {
    removal_order(bootstrap_control_plane(assets, paths))
}

/// Remote paths of the recovery apiserver, for teardown.
pub fn recovery_paths(assets: &BTreeMap<String, String>, paths: &RemotePaths) -> Vec<String> {
    removal_order(recovery_apiserver(assets, paths))
}

/// Static Pods first (the kubelet stops them), then what they read.
fn removal_order(files: Result<HostFiles, MissingAsset>) -> Vec<String> {
    files
        .map(|f| f.triggers.into_iter().chain(f.files).map(|s| s.path).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assets() -> BTreeMap<String, String> {
        [
            "tls/ca.crt",
            "tls/etcd-ca.crt",
            "tls/etcd-client.crt",
            "tls/etcd-client.key",
            "tls/etcd/server.crt",
            "tls/etcd/server.key",
            "tls/etcd/peer.crt",
            "tls/etcd/peer.key",
            "auth/kubelet-bootstrap.kubeconfig",
            "auth/controller-bootstrap.kubeconfig",
            "bootstrap-secrets/apiserver.key",
            "bootstrap-manifests/bootstrap-kube-apiserver.yaml",
            "recovery-secrets/recovery-apiserver.key",
            "recovery-manifests/kube-apiserver-recovery.yaml",
        ]
        .into_iter()
        .map(|k| (k.to_owned(), format!("content of {k}")))
        .collect()
    }

    #[test]
    fn workers_get_the_kubeconfig_and_ca_only_and_the_kubeconfig_last() {
        let f = node_secrets(&assets(), Role::Worker, &RemotePaths::default(), None).unwrap();
        let paths: Vec<&str> = f.files.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["/etc/kubernetes/ca.crt"]);
        assert_eq!(f.triggers.len(), 1);
        assert_eq!(f.triggers[0].path, "/etc/kubernetes/kubeconfig");
        assert_eq!(f.triggers[0].mode, 0o600);
        assert_eq!(f.triggers[0].content, b"content of auth/kubelet-bootstrap.kubeconfig");
        assert!(f.now.is_none(), "workers run no apiserver");
    }

    #[test]
    fn controllers_get_etcd_tls_with_server_crt_as_a_trigger() {
        let f = node_secrets(&assets(), Role::Controller, &RemotePaths::default(), Some("etcd")).unwrap();
        assert_eq!(f.files.len(), 10);
        assert!(f
            .files
            .iter()
            .all(|s| s.path == "/etc/kubernetes/ca.crt" || s.path == APISERVER_SYSCTL || s.owner == "etcd"));
        // The hand-over's sysctl, on the host at once and at every boot.
        let sysctl = f
            .files
            .iter()
            .find(|s| s.path == APISERVER_SYSCTL)
            .expect("sysctl.d file");
        assert_eq!((sysctl.mode, sysctl.owner.as_str()), (0o644, "root"));
        assert_eq!(sysctl.content, b"-net.ipv4.tcp_migrate_req = 1\n");
        assert!(f
            .now
            .as_deref()
            .is_some_and(|c| c.contains("net.ipv4.tcp_migrate_req=1")));
        let triggers: Vec<&str> = f.triggers.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            triggers,
            ["/etc/ssl/etcd/etcd/server.crt", "/etc/kubernetes/kubeconfig"]
        );
        // The controllers' token, never the workers'.
        assert_eq!(
            f.triggers[1].content,
            b"content of auth/controller-bootstrap.kubeconfig"
        );
        assert!(f.files.iter().any(|s| s.path == "/etc/ssl/etcd/etcd/peer-ca.crt"));
    }

    #[test]
    fn missing_material_names_the_asset() {
        let mut a = assets();
        a.remove("tls/etcd/peer.key");
        let err = node_secrets(&a, Role::Controller, &RemotePaths::default(), None).unwrap_err();
        assert_eq!(err, MissingAsset("tls/etcd/peer.key".into()));
    }

    #[test]
    fn bootstrap_secrets_before_static_pods() {
        let f = bootstrap_control_plane(&assets(), &RemotePaths::default()).unwrap();
        assert_eq!(f.files[0].path, "/etc/kubernetes/bootstrap-secrets/apiserver.key");
        assert_eq!(
            f.triggers[0].path,
            "/etc/kubernetes/manifests/bootstrap-kube-apiserver.yaml"
        );
        assert_eq!(f.files.len(), 1, "no recovery file in the bootstrap control plane");
    }

    #[test]
    fn recovery_secrets_before_its_static_pod_and_removed_after_it() {
        let f = recovery_apiserver(&assets(), &RemotePaths::default()).unwrap();
        let files: Vec<(&str, u32)> = f.files.iter().map(|s| (s.path.as_str(), s.mode)).collect();
        assert_eq!(
            files,
            [("/etc/kubernetes/recovery-secrets/recovery-apiserver.key", 0o600)]
        );
        assert_eq!(f.triggers.len(), 1);
        assert_eq!(
            f.triggers[0].path,
            "/etc/kubernetes/manifests/kube-apiserver-recovery.yaml"
        );
        assert_eq!(
            recovery_paths(&assets(), &RemotePaths::default()),
            [
                "/etc/kubernetes/manifests/kube-apiserver-recovery.yaml",
                "/etc/kubernetes/recovery-secrets/recovery-apiserver.key"
            ]
        );
        let mut a = assets();
        a.remove("recovery-manifests/kube-apiserver-recovery.yaml");
        assert_eq!(
            recovery_apiserver(&a, &RemotePaths::default()).unwrap_err(),
            MissingAsset("recovery-manifests/".into())
        );
    }
}
