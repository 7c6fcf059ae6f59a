//! Where files go on a host. The defaults are typhoon's conventions, so
//! typhoon host configs carry over; every one can be overridden because
//! hosts differ (Fedora CoreOS, Flatcar, Debian).

/// Remote paths of the host contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePaths {
    /// Kubelet kubeconfig (bootstrap token); its arrival starts the kubelet on typhoon hosts.
    pub kubelet_kubeconfig: String,
    /// Cluster CA certificate.
    pub ca_certificate: String,
    /// The kubelet's static pod folder (controllers).
    pub static_pod_dir: String,
    /// Credentials of the temporary control plane (first controller; removed after the pivot).
    pub bootstrap_secrets_dir: String,
    /// Credentials of the recovery apiserver (every controller; where the rendered recovery
    /// Pod reads them).
    pub recovery_secrets_dir: String,
    /// etcd TLS: `etcd-client*` here, serving and peer material in `etcd/` below it.
    pub etcd_tls_dir: String,
    /// The provider's own markers and staging; never secrets left behind.
    pub state_dir: String,
}

impl Default for RemotePaths {
    fn default() -> Self {
        RemotePaths {
            kubelet_kubeconfig: "/etc/kubernetes/kubeconfig".into(),
            ca_certificate: "/etc/kubernetes/ca.crt".into(),
            static_pod_dir: "/etc/kubernetes/manifests".into(),
            bootstrap_secrets_dir: "/etc/kubernetes/bootstrap-secrets".into(),
            recovery_secrets_dir: "/etc/kubernetes/recovery-secrets".into(),
            etcd_tls_dir: "/etc/ssl/etcd".into(),
            state_dir: "/var/lib/selfhosted".into(),
        }
    }
}
