//! Where things live on a host: the one definition the node contract, the manifests and
//! the pivot (which delivers files there) all read. Typhoon's conventions, so typhoon host
//! configs carry over.

/// The kubelet's bootstrap kubeconfig; its arrival starts the kubelet.
pub const BOOTSTRAP_KUBECONFIG: &str = "/etc/kubernetes/kubeconfig";
/// The cluster CA.
pub const CA_FILE: &str = "/etc/kubernetes/ca.crt";
/// The kubelet's static pod folder.
pub const STATIC_POD_PATH: &str = "/etc/kubernetes/manifests";
/// The contract's KubeletConfiguration.
pub const KUBELET_CONFIG_PATH: &str = "/etc/kubernetes/kubelet.yaml";
/// Credentials of the temporary control plane (first controller; removed after the pivot).
pub const BOOTSTRAP_SECRETS_DIR: &str = "/etc/kubernetes/bootstrap-secrets";
/// Credentials of the recovery apiserver (every controller).
pub const RECOVERY_SECRETS_DIR: &str = "/etc/kubernetes/recovery-secrets";
/// etcd's TLS: `etcd-client*` for the apiserver here, etcd's own in [`ETCD_TLS_DIR`].
pub const ETCD_TLS_ROOT: &str = "/etc/ssl/etcd";
/// etcd's serving and peer material.
pub const ETCD_TLS_DIR: &str = "/etc/ssl/etcd/etcd";
/// etcd's serving certificate: delivered last, so its arrival starts etcd.
pub const ETCD_SERVER_CERT: &str = "/etc/ssl/etcd/etcd/server.crt";
/// A controller's etcd settings.
pub const ETCD_ENV_PATH: &str = "/etc/etcd/etcd.env";
/// Where etcd runs from an image, the image a controller's etcd runs (`ETCD_IMAGE`), if not
/// the contract's: an update writes it to move etcd to another release without a new machine.
/// Apart from [`ETCD_ENV_PATH`], which the container reads, since etcd warns of `ETCD_*`
/// variables it does not know.
pub const ETCD_IMAGE_ENV_PATH: &str = "/etc/etcd/image.env";
/// The provider's own markers and staging (never secrets left behind).
pub const STATE_DIR: &str = "/var/lib/selfhosted";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_paths_nest() {
        assert!(ETCD_TLS_DIR.starts_with(ETCD_TLS_ROOT));
        assert!(ETCD_SERVER_CERT.starts_with(ETCD_TLS_DIR));
    }
}
