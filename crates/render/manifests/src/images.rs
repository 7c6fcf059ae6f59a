//! Image references: the version table's defaults, a registry prefix, per-component overrides.

use crate::params::{Component, ManifestParams};

/// Where each release of this provider publishes its node agent image, tagged `v<version>`
/// (the same version as the provider).
pub const AGENT_REPOSITORY: &str = "selfhosted-dev/selfhosted-agent";

/// (registry, repository path, tag) of a component's default image.
fn default_parts(p: &ManifestParams, c: Component) -> (&'static str, &'static str, String) {
    let row = p.row();
    let kube = p.kubernetes_version.tag();
    match c {
        Component::KubeApiserver => ("registry.k8s.io", "kube-apiserver", kube),
        Component::KubeControllerManager => ("registry.k8s.io", "kube-controller-manager", kube),
        Component::KubeScheduler => ("registry.k8s.io", "kube-scheduler", kube),
        Component::KubeProxy => ("registry.k8s.io", "kube-proxy", kube),
        // Kubernetes publishes no kubelet image; typhoon's is built for each release.
        Component::Kubelet => ("quay.io", "poseidon/kubelet", kube),
        Component::Etcd => ("registry.k8s.io", "etcd", row.etcd_tag.into()),
        Component::Coredns => ("registry.k8s.io", row.coredns_path, row.coredns_tag.into()),
        Component::Flannel => ("ghcr.io", "flannel-io/flannel", row.flannel_tag.into()),
        Component::FlannelCniPlugin => (
            "ghcr.io",
            "flannel-io/flannel-cni-plugin",
            row.flannel_cni_plugin_tag.into(),
        ),
        Component::CalicoNode => ("quay.io", "calico/node", row.calico_tag.into()),
        Component::CalicoCni => ("quay.io", "calico/cni", row.calico_tag.into()),
        Component::CalicoKubeControllers => ("quay.io", "calico/kube-controllers", row.calico_tag.into()),
        Component::CiliumAgent => ("quay.io", "cilium/cilium", row.cilium_tag.into()),
        Component::CiliumOperator => ("quay.io", "cilium/operator-generic", row.cilium_tag.into()),
        Component::Agent => ("ghcr.io", AGENT_REPOSITORY, format!("v{}", env!("CARGO_PKG_VERSION"))),
    }
}

/// The image a component runs: the override if given, else the default with the registry
/// host replaced by `container_registry` when set.
pub fn image(p: &ManifestParams, c: Component) -> String {
    if let Some(i) = p.container_images.get(&c) {
        return i.clone();
    }
    let (registry, path, tag) = default_parts(p, c);
    let registry = p.container_registry.as_deref().unwrap_or(registry);
    format!("{registry}/{path}:{tag}")
}
