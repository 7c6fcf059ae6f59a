//! Where files go on a host: the node contract's paths (`selfhosted_manifests::host::paths`),
//! the one definition hosts and assets share.

use selfhosted_manifests::host::paths as contract;

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
            kubelet_kubeconfig: contract::BOOTSTRAP_KUBECONFIG.into(),
            ca_certificate: contract::CA_FILE.into(),
            static_pod_dir: contract::STATIC_POD_PATH.into(),
            bootstrap_secrets_dir: contract::BOOTSTRAP_SECRETS_DIR.into(),
            recovery_secrets_dir: contract::RECOVERY_SECRETS_DIR.into(),
            etcd_tls_dir: contract::ETCD_TLS_ROOT.into(),
            state_dir: contract::STATE_DIR.into(),
        }
    }
}
