//! The host side of the contract: systemd units, etcd's settings and the Ignition a host
//! boots from. One renderer for every OS family, so the paths hosts use are the ones the
//! provider delivers to.

pub mod etcd;
pub mod ignition;
pub mod kernel;
pub mod paths;
pub mod units;

use std::fmt;

/// What the hosts run, which decides how the kubelet and etcd are started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum HostOs {
    /// A host with `/usr/bin/kubelet` (and `/usr/bin/etcd` on controllers) installed, and
    /// containerd: Debian, Ubuntu, or an image you build.
    #[default]
    Generic,
    /// Fedora CoreOS: the kubelet and etcd run from container images with podman.
    FedoraCoreos,
    /// Flatcar Container Linux: the kubelet and etcd run from container images with docker.
    Flatcar,
}

impl HostOs {
    /// Every choice, in the order the docs list them.
    pub const ALL: [HostOs; 3] = [HostOs::Generic, HostOs::FedoraCoreos, HostOs::Flatcar];

    /// The name written in `host_os`.
    pub fn name(self) -> &'static str {
        match self {
            HostOs::Generic => "generic",
            HostOs::FedoraCoreos => "fedora-coreos",
            HostOs::Flatcar => "flatcar",
        }
    }

    /// The choice named `name`.
    pub fn from_name(name: &str) -> Option<HostOs> {
        HostOs::ALL.into_iter().find(|h| h.name() == name)
    }

    /// The command that runs a container on this OS, if images run the host's services.
    pub fn container_engine(self) -> Option<&'static str> {
        match self {
            HostOs::Generic => None,
            HostOs::FedoraCoreos => Some("/usr/bin/podman"),
            HostOs::Flatcar => Some("/usr/bin/docker"),
        }
    }

    /// The Ignition spec version the OS's Ignition reads (Fedora CoreOS: 3.4.0 as Butane's
    /// `fcos` 1.5.0 emits; Flatcar: 3.3.0 as Butane's `flatcar` 1.0.0 emits).
    pub fn ignition_version(self) -> &'static str {
        match self {
            HostOs::Generic | HostOs::FedoraCoreos => "3.4.0",
            HostOs::Flatcar => "3.3.0",
        }
    }
}

impl fmt::Display for HostOs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
