//! The one table of what differs between supported Kubernetes minors.
//!
//! Every version-dependent choice of the renderer (flags that exist or are gone, API
//! versions, default image tags) is read from [`TABLE`]; adding a minor is adding a row.

use std::fmt;

/// A Kubernetes release `v1.MINOR.PATCH` (major is always 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Minor release, e.g. 34.
    pub minor: u32,
    /// Patch release, e.g. 3.
    pub patch: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}.{}", self.minor, self.patch)
    }
}

impl Version {
    /// The image tag of the Kubernetes component images for this release (`v1.34.3`).
    pub fn tag(&self) -> String {
        self.to_string()
    }

    /// The table row of this version's minor, if the minor is supported.
    pub fn row(&self) -> Option<&'static VersionRow> {
        row(self.minor)
    }
}

/// The version used when `kubernetes_version` is not set.
///
/// v1.34.3: `registry.k8s.io/kube-{apiserver,controller-manager,scheduler,proxy}:v1.34.3`
/// and `registry.k8s.io/coredns/coredns:v1.12.1` are the images a kubeadm v1.34.3
/// cluster runs (seen in public cluster listings and renovate-pinned digests).
///
/// Sources of the other tags: kubeadm's image lists per minor for CoreDNS (1.20:
/// `registry.k8s.io/coredns:1.7.0`; 1.33 v1.12.0; and read from `CoreDNSVersion` in
/// `cmd/kubeadm/app/constants/constants.go` of the `k8s.io/kubernetes` modules the lane
/// builds: v1.34.3 v1.12.1, v1.35.4 v1.13.1, v1.36.3 v1.14.2, v1.37.2 v1.14.6); flannel v0.27.4 with
/// flannel-cni-plugin v1.8.0-flannel1, Calico v3.30.4, Cilium v1.18.4 from public
/// deployments pinning them; Calico v3.21.6 and Cilium v1.11.20 for 1.20 (releases of
/// that era that supported it).
pub const DEFAULT_VERSION: Version = Version { minor: 34, patch: 3 };

/// Where a flag belongs; flags of one component mean nothing to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlagOwner {
    /// kube-apiserver.
    Apiserver,
    /// kube-controller-manager.
    ControllerManager,
    /// kube-scheduler.
    Scheduler,
    /// kube-proxy.
    Proxy,
    /// kubelet (node contract).
    Kubelet,
}

/// What one Kubernetes minor needs from the renderer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRow {
    /// The minor this row describes.
    pub minor: u32,
    /// `apiVersion` of PodDisruptionBudget (`policy/v1` from 1.21).
    pub pdb_api_version: &'static str,
    /// DaemonSet `rollingUpdate.maxSurge` is available (beta and on from 1.22).
    pub daemonset_max_surge: bool,
    /// The insecure ports still exist and must be switched off: apiserver
    /// `--insecure-port=0`, controller-manager and scheduler `--port=0` (gone in 1.23/1.24).
    pub insecure_port_flags: bool,
    /// The kubelet needs `--container-runtime=remote` (flag gone in 1.27).
    pub kubelet_container_runtime_flag: bool,
    /// KubeletConfiguration has `containerRuntimeEndpoint` (1.27 on); before, it is a flag.
    pub kubelet_runtime_endpoint_in_config: bool,
    /// CoreDNS of this minor reads `discovery.k8s.io` EndpointSlices, so its ClusterRole
    /// grants them (the CoreDNS default of 1.21 on).
    pub endpointslices: bool,
    /// Repository of CoreDNS under `registry.k8s.io` (`coredns` up to 1.20, then
    /// `coredns/coredns`, as kubeadm of that minor pulls it).
    pub coredns_path: &'static str,
    /// Default tag of the CoreDNS image.
    pub coredns_tag: &'static str,
    /// Default tag of `registry.k8s.io/etcd` where the hosts run etcd from an image:
    /// kubeadm's `DefaultEtcdVersion` of the minor (1.30–1.33 take 1.34's).
    pub etcd_tag: &'static str,
    /// `ValidatingAdmissionPolicy` is `admissionregistration.k8s.io/v1` and on (1.30 on).
    pub validating_admission_policy: bool,
    /// Default tag of `ghcr.io/flannel-io/flannel`.
    pub flannel_tag: &'static str,
    /// Default tag of `ghcr.io/flannel-io/flannel-cni-plugin`.
    pub flannel_cni_plugin_tag: &'static str,
    /// Default tag of the `quay.io/calico/*` images.
    pub calico_tag: &'static str,
    /// Default tag of `quay.io/cilium/cilium` and `quay.io/cilium/operator-generic`.
    pub cilium_tag: &'static str,
    /// Flags that no longer exist in this minor (a component refuses to start with them).
    pub gone_flags: &'static [(FlagOwner, &'static str)],
}

use FlagOwner::{Apiserver, ControllerManager, Kubelet, Proxy, Scheduler};

/// Flags removed before 1.20 that still circulate in old guides.
const GONE_BEFORE_1_20: &[(FlagOwner, &str)] = &[
    (Apiserver, "--basic-auth-file"),
    (Apiserver, "--enable-swagger-ui"),
    (Apiserver, "--repair-malformed-updates"),
    (Apiserver, "--storage-versions"),
    (
        ControllerManager,
        "--insecure-experimental-approve-all-kubelet-csrs-for-group",
    ),
    (Kubelet, "--allow-privileged"),
    (Kubelet, "--cadvisor-port"),
    (Proxy, "--resource-container"),
];

/// Gone in 1.30 (and later): everything of [`GONE_BEFORE_1_20`] plus the removals of 1.21–1.30.
const GONE_1_30: &[(FlagOwner, &str)] = &[
    (Apiserver, "--basic-auth-file"),
    (Apiserver, "--enable-swagger-ui"),
    (Apiserver, "--repair-malformed-updates"),
    (Apiserver, "--storage-versions"),
    (Apiserver, "--insecure-port"),
    (Apiserver, "--insecure-bind-address"),
    (Apiserver, "--port"),
    (Apiserver, "--address"),
    (Apiserver, "--kubelet-https"),
    (Apiserver, "--service-account-api-audiences"),
    (Apiserver, "--master-service-namespace"),
    (
        ControllerManager,
        "--insecure-experimental-approve-all-kubelet-csrs-for-group",
    ),
    (ControllerManager, "--port"),
    (ControllerManager, "--address"),
    (ControllerManager, "--horizontal-pod-autoscaler-use-rest-clients"),
    (ControllerManager, "--experimental-cluster-signing-duration"),
    (ControllerManager, "--pod-eviction-timeout"),
    (ControllerManager, "--enable-taint-manager"),
    (Scheduler, "--port"),
    (Scheduler, "--address"),
    (Scheduler, "--policy-config-file"),
    (Scheduler, "--policy-configmap"),
    (Scheduler, "--policy-configmap-namespace"),
    (Scheduler, "--use-legacy-policy-config"),
    (Scheduler, "--algorithm-provider"),
    (Scheduler, "--hard-pod-affinity-symmetric-weight"),
    (Kubelet, "--allow-privileged"),
    (Kubelet, "--cadvisor-port"),
    (Kubelet, "--container-runtime"),
    (Kubelet, "--network-plugin"),
    (Kubelet, "--network-plugin-mtu"),
    (Kubelet, "--cni-bin-dir"),
    (Kubelet, "--cni-conf-dir"),
    (Kubelet, "--cni-cache-dir"),
    (Kubelet, "--docker-endpoint"),
    (Kubelet, "--image-pull-progress-deadline"),
    (Kubelet, "--experimental-dockershim-root-directory"),
    (Kubelet, "--dynamic-config-dir"),
    (Kubelet, "--master-service-namespace"),
    (Proxy, "--resource-container"),
];

/// The rows, oldest first. 1.20 is the oldest because the only control plane that can be
/// built and run in our test bed is v1.20.2.
pub const TABLE: &[VersionRow] = &[
    VersionRow {
        minor: 20,
        pdb_api_version: "policy/v1beta1",
        daemonset_max_surge: false,
        insecure_port_flags: true,
        kubelet_container_runtime_flag: true,
        kubelet_runtime_endpoint_in_config: false,
        endpointslices: false,
        coredns_path: "coredns",
        coredns_tag: "1.7.0",
        etcd_tag: "3.4.13-0",
        validating_admission_policy: false,
        flannel_tag: "v0.27.4",
        flannel_cni_plugin_tag: "v1.8.0-flannel1",
        calico_tag: "v3.21.6",
        cilium_tag: "v1.11.20",
        gone_flags: GONE_BEFORE_1_20,
    },
    modern(30, "v1.11.1", "3.6.5-0", "v3.30.4", "v1.18.4"),
    modern(31, "v1.11.3", "3.6.5-0", "v3.30.4", "v1.18.4"),
    modern(32, "v1.11.3", "3.6.5-0", "v3.30.4", "v1.18.4"),
    modern(33, "v1.12.0", "3.6.5-0", "v3.30.4", "v1.18.4"),
    modern(34, "v1.12.1", "3.6.5-0", "v3.30.4", "v1.18.4"),
    modern(35, "v1.13.1", "3.6.6-0", "v3.30.4", "v1.18.4"),
    modern(36, "v1.14.2", "3.6.8-0", "v3.30.4", "v1.18.4"),
    modern(37, "v1.14.6", "3.7.0-0", "v3.30.4", "v1.18.4"),
];

/// A row for a minor ≥ 1.30: only image tags differ between these today.
const fn modern(
    minor: u32,
    coredns_tag: &'static str,
    etcd_tag: &'static str,
    calico_tag: &'static str,
    cilium_tag: &'static str,
) -> VersionRow {
    VersionRow {
        minor,
        pdb_api_version: "policy/v1",
        daemonset_max_surge: true,
        insecure_port_flags: false,
        kubelet_container_runtime_flag: false,
        kubelet_runtime_endpoint_in_config: true,
        endpointslices: true,
        coredns_path: "coredns/coredns",
        coredns_tag,
        etcd_tag,
        validating_admission_policy: true,
        flannel_tag: "v0.27.4",
        flannel_cni_plugin_tag: "v1.8.0-flannel1",
        calico_tag,
        cilium_tag,
        gone_flags: GONE_1_30,
    }
}

/// The row of a supported minor.
pub fn row(minor: u32) -> Option<&'static VersionRow> {
    TABLE.iter().find(|r| r.minor == minor)
}

/// The supported minors as `1.NN`, for error messages.
pub fn supported_minors() -> String {
    TABLE
        .iter()
        .map(|r| format!("1.{}", r.minor))
        .collect::<Vec<_>>()
        .join(", ")
}

impl VersionRow {
    /// Is `flag` (`--name`, without value) gone for `owner` in this minor?
    pub fn flag_gone(&self, owner: FlagOwner, flag: &str) -> bool {
        self.gone_flags.iter().any(|(o, f)| *o == owner && *f == flag)
    }
}

/// How many minors a kubelet may be older than the apiserver (Kubernetes' version skew
/// policy from 1.28 on; a kubelet is never newer than the apiserver).
pub const KUBELET_MAX_MINORS_BEHIND: u32 = 3;

/// Whether the control plane may go from `from` to `to` in one apply: a patch release either
/// way, or the next minor. Kubernetes upgrades one minor at a time (each minor migrates stored
/// objects the next one relies on) and supports no minor downgrade (etcd holds objects in the
/// newer encoding). `Err` says what to write instead.
pub fn upgrade_step(from: Version, to: Version) -> Result<(), String> {
    if to.minor == from.minor || to.minor == from.minor + 1 {
        return Ok(());
    }
    if to.minor < from.minor {
        return Err(format!(
            "the cluster runs {from}; Kubernetes does not support going back a minor version ({from} → {to}): \
             keep kubernetes_version at a v1.{}.x release, or replace the cluster",
            from.minor
        ));
    }
    Err(format!(
        "the cluster runs {from}; {to} skips {}: Kubernetes upgrades one minor version at a time, so set \
         kubernetes_version to a v1.{}.x release first, apply, then go on",
        (from.minor + 1..to.minor)
            .map(|m| format!("1.{m}"))
            .collect::<Vec<_>>()
            .join(", "),
        from.minor + 1
    ))
}

/// The minor of a release as Kubernetes reports or tags it (`v1.35.4`, `v1.35.4+vendor.1`).
pub fn release_minor(release: &str) -> Option<u32> {
    let mut parts = release.strip_prefix("v1.")?.split('.');
    let minor = parts.next()?.parse().ok()?;
    parts.next().is_some().then_some(minor)
}

/// A release without a vendor's suffix (`v1.35.4+vendor.1`, `v1.35.4-eks-1a2b` → `v1.35.4`):
/// a kubelet built by a vendor is at the release its tag names. A pre-release
/// (`v1.36.0-rc.1`) is not the release and keeps its suffix.
pub fn release_core(release: &str) -> &str {
    let built = release.split('+').next().unwrap_or(release);
    match built.split_once('-') {
        Some((core, suffix)) if !["alpha", "beta", "rc"].iter().any(|p| suffix.starts_with(p)) => core,
        _ => built,
    }
}

/// Whether a kubelet reporting `kubelet` (`v1.34.3`, `v1.34.3+vendor`, …) may serve an
/// apiserver of minor `apiserver_minor`: same minor, or up to
/// [`KUBELET_MAX_MINORS_BEHIND`] older; never newer. `Err` says what is wrong; an unparsable
/// version is not judged (`Ok`).
pub fn kubelet_skew(apiserver_minor: u32, kubelet: &str) -> Result<(), String> {
    let Some(minor) = release_minor(kubelet) else {
        return Ok(());
    };
    if minor > apiserver_minor {
        Err(format!(
            "kubelet {kubelet} is newer than the apiserver (1.{apiserver_minor}); a kubelet may not be newer than the apiserver"
        ))
    } else if minor + KUBELET_MAX_MINORS_BEHIND < apiserver_minor {
        Err(format!(
            "kubelet {kubelet} is more than {KUBELET_MAX_MINORS_BEHIND} minor versions behind the apiserver (1.{apiserver_minor}); \
             upgrade the kubelet to at least v1.{}.x first",
            apiserver_minor - KUBELET_MAX_MINORS_BEHIND
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(minor: u32, patch: u32) -> Version {
        Version { minor, patch }
    }

    #[test]
    fn upgrades_go_one_minor_at_a_time_and_never_back() {
        assert!(upgrade_step(v(34, 3), v(34, 3)).is_ok());
        assert!(upgrade_step(v(34, 3), v(34, 2)).is_ok(), "a patch downgrade is allowed");
        assert!(upgrade_step(v(34, 3), v(35, 4)).is_ok());
        let skip = upgrade_step(v(34, 3), v(36, 1)).unwrap_err();
        assert!(
            skip.contains("skips 1.35") && skip.contains("v1.35.x release first"),
            "{skip}"
        );
        let back = upgrade_step(v(35, 4), v(34, 3)).unwrap_err();
        assert!(
            back.contains("does not support going back") && back.contains("v1.35.x"),
            "{back}"
        );
    }

    #[test]
    fn kubelets_may_be_up_to_three_minors_older_and_never_newer() {
        assert!(kubelet_skew(35, "v1.35.4").is_ok());
        assert!(kubelet_skew(35, "v1.34.3").is_ok());
        assert!(kubelet_skew(35, "v1.32.0+k3s1").is_ok());
        assert!(kubelet_skew(35, "v1.31.9").unwrap_err().contains("at least v1.32.x"));
        assert!(kubelet_skew(34, "v1.35.0")
            .unwrap_err()
            .contains("newer than the apiserver"));
        assert!(kubelet_skew(34, "unknown").is_ok());
        assert_eq!(release_minor("v1.35.4+vendor.1"), Some(35));
        assert_eq!(release_core("v1.35.4+vendor.1"), "v1.35.4");
        assert_eq!(release_core("v1.35.4-eks-1a2b"), "v1.35.4");
        assert_eq!(release_core("v1.35.4"), "v1.35.4");
        assert_eq!(
            release_core("v1.36.0-rc.1"),
            "v1.36.0-rc.1",
            "a pre-release is not the release"
        );
        assert_eq!(release_core("v1.36.0-beta.0+build.3"), "v1.36.0-beta.0");
        assert_eq!(release_minor("v1.35"), None);
        assert_eq!(release_minor("latest"), None);
    }
}
