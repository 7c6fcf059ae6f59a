//! What the kernel of every host must have for containers, kube-proxy and the pod network,
//! written into the Ignition (and Butane) the contract renders: Fedora CoreOS and Flatcar
//! load neither `br_netfilter` nor `overlay` by themselves, and flannel exits at start
//! ("Failed to check br_netfilter") on a host without the first.

use crate::params::Networking;

use super::ignition::File;

/// Modules loaded at every boot by `systemd-modules-load`, before the kubelet starts.
pub const MODULES_PATH: &str = "/etc/modules-load.d/selfhosted.conf";

/// sysctls set at every boot by `systemd-sysctl` (after the modules are loaded, so the
/// `net.bridge` keys exist). Named to sort after the OS's `50-default.conf`, which it overrides.
pub const SYSCTL_PATH: &str = "/etc/sysctl.d/90-selfhosted.conf";

/// `overlay`: containerd's snapshotter. `br_netfilter`: bridged pod traffic passes iptables,
/// so Service rules (kube-proxy) and network policies see it.
pub const MODULES: [&str; 2] = ["overlay", "br_netfilter"];

/// The sysctls of `networking`, as `key = value` lines.
pub fn sysctls(networking: Networking) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        ("net.bridge.bridge-nf-call-iptables", "1"),
        ("net.bridge.bridge-nf-call-ip6tables", "1"),
        ("net.ipv4.ip_forward", "1"),
    ];
    if networking == Networking::Cilium {
        // systemd's default (2, loose) is set again on every new interface, Cilium's too,
        // and drops the replies Cilium routes back through its own devices.
        out.push(("net.ipv4.conf.default.rp_filter", "0"));
        out.push(("net.ipv4.conf.*.rp_filter", "0"));
    }
    out
}

/// The two files, for a host's config.
pub fn files(networking: Networking) -> Vec<File> {
    let modules: String = MODULES.iter().map(|m| format!("{m}\n")).collect();
    let sysctl: String = sysctls(networking)
        .iter()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    vec![File::public(MODULES_PATH, modules), File::public(SYSCTL_PATH, sysctl)]
}
