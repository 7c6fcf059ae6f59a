//! Inputs of the renderer: the raw attribute values, their checked form, and the
//! diagnostics (with attribute paths) for values that cannot be rendered.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::extra::{self, ExtraObject};
use crate::host::HostOs;
use crate::versions::{self, FlagOwner, Version, DEFAULT_VERSION};

/// Default pod network.
pub const DEFAULT_POD_CIDR: &str = "10.2.0.0/16";
/// Default service network.
pub const DEFAULT_SERVICE_CIDR: &str = "10.3.0.0/16";
/// Default DNS domain of the cluster.
pub const DEFAULT_CLUSTER_DOMAIN_SUFFIX: &str = "cluster.local";
/// The group Kubernetes grants everything without any binding.
pub const MASTERS_GROUP: &str = "system:masters";
/// Default apiserver port.
pub const DEFAULT_API_SERVER_PORT: u16 = 6443;

/// The pod network provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Networking {
    /// flannel with VXLAN (default).
    #[default]
    Flannel,
    /// Calico with VXLAN, Kubernetes datastore.
    Calico,
    /// Cilium with VXLAN tunnelling.
    Cilium,
    /// No CNI: the user brings one (e.g. through `extra_manifests`).
    None,
}

impl Networking {
    /// Every choice, for tests and messages.
    pub const ALL: [Networking; 4] = [
        Networking::Flannel,
        Networking::Calico,
        Networking::Cilium,
        Networking::None,
    ];

    /// The attribute value naming this choice.
    pub fn name(self) -> &'static str {
        match self {
            Networking::Flannel => "flannel",
            Networking::Calico => "calico",
            Networking::Cilium => "cilium",
            Networking::None => "none",
        }
    }
}

/// A component whose image or flags a user may override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// kube-apiserver (bootstrap and self-hosted).
    KubeApiserver,
    /// kube-controller-manager (bootstrap and self-hosted).
    KubeControllerManager,
    /// kube-scheduler (bootstrap and self-hosted).
    KubeScheduler,
    /// kube-proxy.
    KubeProxy,
    /// CoreDNS.
    Coredns,
    /// flannel daemon.
    Flannel,
    /// flannel CNI plugin installer.
    FlannelCniPlugin,
    /// calico-node.
    CalicoNode,
    /// Calico CNI plugin installer.
    CalicoCni,
    /// calico-kube-controllers.
    CalicoKubeControllers,
    /// Cilium agent.
    CiliumAgent,
    /// Cilium operator.
    CiliumOperator,
    /// kubelet: flags everywhere; an image where `host_os` runs it in a container.
    Kubelet,
    /// etcd on the controllers, run by the host's units (an image where `host_os` runs it
    /// in a container).
    Etcd,
    /// The provider's node agent: the reuseport gate in every apiserver pod.
    Agent,
}

impl Component {
    /// Every component, in attribute-name order of declaration.
    pub const ALL: [Component; 15] = [
        Component::KubeApiserver,
        Component::KubeControllerManager,
        Component::KubeScheduler,
        Component::KubeProxy,
        Component::Coredns,
        Component::Flannel,
        Component::FlannelCniPlugin,
        Component::CalicoNode,
        Component::CalicoCni,
        Component::CalicoKubeControllers,
        Component::CiliumAgent,
        Component::CiliumOperator,
        Component::Kubelet,
        Component::Etcd,
        Component::Agent,
    ];

    /// The map key naming this component in `container_images` / `extra_flags`.
    pub fn name(self) -> &'static str {
        match self {
            Component::KubeApiserver => "kube_apiserver",
            Component::KubeControllerManager => "kube_controller_manager",
            Component::KubeScheduler => "kube_scheduler",
            Component::KubeProxy => "kube_proxy",
            Component::Coredns => "coredns",
            Component::Flannel => "flannel",
            Component::FlannelCniPlugin => "flannel_cni_plugin",
            Component::CalicoNode => "calico_node",
            Component::CalicoCni => "calico_cni",
            Component::CalicoKubeControllers => "calico_kube_controllers",
            Component::CiliumAgent => "cilium_agent",
            Component::CiliumOperator => "cilium_operator",
            Component::Kubelet => "kubelet",
            Component::Etcd => "etcd",
            Component::Agent => "selfhosted_agent",
        }
    }

    /// The flag namespace of this component, if it takes `extra_flags`.
    pub fn flag_owner(self) -> Option<FlagOwner> {
        match self {
            Component::KubeApiserver => Some(FlagOwner::Apiserver),
            Component::KubeControllerManager => Some(FlagOwner::ControllerManager),
            Component::KubeScheduler => Some(FlagOwner::Scheduler),
            Component::KubeProxy => Some(FlagOwner::Proxy),
            Component::Kubelet => Some(FlagOwner::Kubelet),
            _ => None,
        }
    }

    fn from_name(name: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The attribute values as Terraform hands them over (null = `None` or empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawParams {
    /// `kubernetes_version`, e.g. `v1.34.3`.
    pub kubernetes_version: Option<String>,
    /// `cluster_name`.
    pub cluster_name: String,
    /// `api_servers`: DNS names or addresses clients use for the apiserver.
    pub api_servers: Vec<String>,
    /// `api_server_port` (default 6443).
    pub api_server_port: Option<i64>,
    /// `etcd_servers`: names or addresses of the etcd members (client port 2379).
    pub etcd_servers: Vec<String>,
    /// `pod_cidr`.
    pub pod_cidr: Option<String>,
    /// `service_cidr`.
    pub service_cidr: Option<String>,
    /// `cluster_domain_suffix`.
    pub cluster_domain_suffix: Option<String>,
    /// `networking`: flannel | calico | cilium | none.
    pub networking: Option<String>,
    /// `host_os`: generic | fedora-coreos | flatcar.
    pub host_os: Option<String>,
    /// `kube_proxy` (default true).
    pub kube_proxy: Option<bool>,
    /// `coredns` (default true).
    pub coredns: Option<bool>,
    /// `container_images`: component name → full image reference.
    pub container_images: BTreeMap<String, String>,
    /// `container_registry`: prefix replacing the registry host of every default image.
    pub container_registry: Option<String>,
    /// `extra_flags`: component name → flags appended (or replacing ours of the same name).
    pub extra_flags: BTreeMap<String, Vec<String>>,
    /// `daemonset_tolerations`: taint keys of the user's own that the node agents tolerate.
    pub daemonset_tolerations: Vec<String>,
    /// `controller_replicas`.
    pub controller_replicas: Option<i64>,
    /// Number of controller hosts (from the bootstrap resource or a count input).
    pub controller_count: usize,
    /// `extra_manifests`: YAML streams added to `manifests/`.
    pub extra_manifests: Vec<String>,
    /// Group (organization) of the admin client certificate; bound to `cluster-admin`
    /// unless it is `system:masters` (default, matching selfhosted-pki's default).
    pub admin_group: Option<String>,
}

/// One step of an attribute path, as Terraform diagnostics express them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// An attribute name.
    Attribute(String),
    /// A list element.
    Index(usize),
    /// A map element.
    Key(String),
}

/// A value that cannot be rendered: where it is and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// Attribute path of the offending value.
    pub path: Vec<PathStep>,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl InputError {
    fn attr(name: &str, message: impl Into<String>) -> Self {
        InputError {
            path: vec![PathStep::Attribute(name.to_string())],
            message: message.into(),
        }
    }

    fn index(name: &str, index: usize, message: impl Into<String>) -> Self {
        InputError {
            path: vec![PathStep::Attribute(name.to_string()), PathStep::Index(index)],
            message: message.into(),
        }
    }

    fn key(name: &str, key: &str, message: impl Into<String>) -> Self {
        InputError {
            path: vec![PathStep::Attribute(name.to_string()), PathStep::Key(key.to_string())],
            message: message.into(),
        }
    }

    fn key_index(name: &str, key: &str, index: usize, message: impl Into<String>) -> Self {
        InputError {
            path: vec![
                PathStep::Attribute(name.to_string()),
                PathStep::Key(key.to_string()),
                PathStep::Index(index),
            ],
            message: message.into(),
        }
    }

    /// The path as Terraform prints it, e.g. `container_images["kube_proxy"]`.
    pub fn path_string(&self) -> String {
        let mut out = String::new();
        for step in &self.path {
            match step {
                PathStep::Attribute(a) if out.is_empty() => out.push_str(a),
                PathStep::Attribute(a) => {
                    out.push('.');
                    out.push_str(a);
                }
                PathStep::Index(i) => out.push_str(&format!("[{i}]")),
                PathStep::Key(k) => out.push_str(&format!("[{k:?}]")),
            }
        }
        out
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path_string(), self.message)
    }
}

/// Checked inputs of [`crate::render`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestParams {
    /// Kubernetes release; its minor has a row in [`versions::TABLE`].
    pub kubernetes_version: Version,
    /// Cluster name (controller-manager `--cluster-name`).
    pub cluster_name: String,
    /// Names/addresses of the apiserver as clients dial it; the first is used in-cluster.
    pub api_servers: Vec<String>,
    /// Apiserver secure port, shared by the bootstrap and self-hosted apiservers.
    pub api_server_port: u16,
    /// etcd members (client URLs `https://<name>:2379`).
    pub etcd_servers: Vec<String>,
    /// Pod network.
    pub pod_cidr: IpNet,
    /// Service network; its 1st address is the `kubernetes` Service, its 10th cluster DNS.
    pub service_cidr: IpNet,
    /// Cluster DNS domain.
    pub cluster_domain_suffix: String,
    /// Pod network provider.
    pub networking: Networking,
    /// What the hosts run: how their units start the kubelet and etcd.
    pub host_os: HostOs,
    /// Render the kube-proxy DaemonSet.
    pub kube_proxy: bool,
    /// Render CoreDNS.
    pub coredns: bool,
    /// Per-component image overrides (win over `container_registry`).
    pub container_images: BTreeMap<Component, String>,
    /// Registry prefix replacing the registry host of the default images.
    pub container_registry: Option<String>,
    /// Per-component extra flags (`--name=value`), replacing our flag of the same name.
    pub extra_flags: BTreeMap<Component, Vec<String>>,
    /// Taint keys of the user's own (dedicated node pools) that kube-proxy and the pod
    /// network's node agent tolerate, any effect; see [`crate::object::node_agent_tolerations`].
    pub daemonset_tolerations: Vec<String>,
    /// Explicit controller-manager/scheduler replicas.
    pub controller_replicas: Option<u32>,
    /// Number of controller hosts.
    pub controller_count: usize,
    /// The user's extra objects, parsed and checked.
    pub extra_manifests: Vec<ExtraObject>,
    /// Group of the admin certificate, bound to `cluster-admin` unless `system:masters`.
    pub admin_group: String,
    /// Changes whenever the control plane's credentials are (re)issued, known at plan time
    /// (the caller decides it, not the key material; `selfhosted_cluster_assets` counts). It is part of the apiserver generation
    /// and a pod-template annotation of the controller-manager and scheduler, so renewed
    /// certificates reach running components: blue/green for the apiserver, a rolling
    /// restart for the others. Empty: no annotation.
    pub credentials_revision: String,
}

impl ManifestParams {
    /// Defaults for everything but the cluster identity; handy for tests and callers
    /// that fill a few fields.
    pub fn new(cluster_name: &str, api_servers: Vec<String>, etcd_servers: Vec<String>) -> ManifestParams {
        ManifestParams {
            kubernetes_version: DEFAULT_VERSION,
            cluster_name: cluster_name.to_string(),
            api_servers,
            api_server_port: DEFAULT_API_SERVER_PORT,
            etcd_servers,
            pod_cidr: IpNet::from_str(DEFAULT_POD_CIDR).unwrap_or_else(|_| fallback_net()),
            service_cidr: IpNet::from_str(DEFAULT_SERVICE_CIDR).unwrap_or_else(|_| fallback_net()),
            cluster_domain_suffix: DEFAULT_CLUSTER_DOMAIN_SUFFIX.to_string(),
            networking: Networking::Flannel,
            host_os: HostOs::Generic,
            kube_proxy: true,
            coredns: true,
            container_images: BTreeMap::new(),
            container_registry: None,
            extra_flags: BTreeMap::new(),
            daemonset_tolerations: Vec::new(),
            controller_replicas: None,
            controller_count: 1,
            extra_manifests: Vec::new(),
            admin_group: MASTERS_GROUP.to_string(),
            credentials_revision: String::new(),
        }
    }

    /// The version table row (the version was checked when the params were parsed).
    pub fn row(&self) -> &'static versions::VersionRow {
        self.kubernetes_version
            .row()
            .unwrap_or(&versions::TABLE[versions::TABLE.len() - 1])
    }

    /// Controller-manager/scheduler replicas: the input, else one per controller.
    ///
    /// Both run with hostNetwork on controllers and hold fixed ports, so more replicas
    /// than controllers can never be scheduled (the design's "max(2, controllers)" would
    /// leave a Pending pod forever on a single controller).
    pub fn controller_replicas(&self) -> u32 {
        self.controller_replicas
            .unwrap_or_else(|| u32::try_from(self.controller_count.max(1)).unwrap_or(u32::MAX))
    }

    /// Cluster DNS address: the 10th address of the service network.
    pub fn cluster_dns_ip(&self) -> IpAddr {
        nth_address(self.service_cidr, 10)
    }

    /// The `kubernetes` Service address: the 1st address of the service network.
    pub fn kubernetes_service_ip(&self) -> IpAddr {
        nth_address(self.service_cidr, 1)
    }

    /// The in-cluster server address (first of `api_servers`).
    pub fn in_cluster_host(&self) -> &str {
        self.api_servers.first().map(String::as_str).unwrap_or("127.0.0.1")
    }
}

fn fallback_net() -> IpNet {
    IpNet::V4(ipnet::Ipv4Net::default())
}

/// The n-th address after the network address (n ≥ 1).
pub fn nth_address(net: IpNet, n: u32) -> IpAddr {
    match net {
        IpNet::V4(v4) => {
            let base = u32::from(v4.network());
            IpAddr::V4(std::net::Ipv4Addr::from(base.wrapping_add(n)))
        }
        IpNet::V6(v6) => {
            let base = u128::from(v6.network());
            IpAddr::V6(std::net::Ipv6Addr::from(base.wrapping_add(u128::from(n))))
        }
    }
}

/// Parse `v1.NN.P` into a supported [`Version`]. Written one way only, as Kubernetes tags its
/// releases: the value is kept in state as written, so `1.34.3` and `v1.34.3` would otherwise be
/// two spellings of one cluster (and a diff between them).
pub fn parse_version(raw: &str) -> Result<Version, String> {
    let malformed =
        || format!("{raw:?} is not a Kubernetes release; write it as \"v1.MINOR.PATCH\", e.g. \"{DEFAULT_VERSION}\"");
    let unsupported = || {
        format!(
            "Kubernetes {raw} is not supported; supported minors are {}; write e.g. \"{DEFAULT_VERSION}\"",
            versions::supported_minors()
        )
    };
    match raw.strip_prefix('v').map(parse_release) {
        Some(Ok(v)) => Ok(v),
        Some(Err(VersionError::Malformed)) => Err(malformed()),
        Some(Err(VersionError::Unsupported)) => Err(unsupported()),
        // Only suggest a spelling that is itself right.
        None => match parse_release(raw.trim().trim_start_matches('v')) {
            Ok(_) => Err(format!(
                "{raw:?}: write \"v{}\", as Kubernetes tags its releases (a leading v, no spaces)",
                raw.trim().trim_start_matches('v')
            )),
            Err(VersionError::Malformed) => Err(malformed()),
            Err(VersionError::Unsupported) => Err(unsupported()),
        },
    }
}

enum VersionError {
    Malformed,
    Unsupported,
}

/// `1.NN.P` (without the `v`) of a supported minor.
fn parse_release(body: &str) -> Result<Version, VersionError> {
    let parts: Vec<&str> = body.split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(VersionError::Malformed);
    }
    let number = |p: &str| p.parse::<u32>().map_err(|_| VersionError::Malformed);
    let (major, minor, patch) = (number(parts[0])?, number(parts[1])?, number(parts[2])?);
    if major != 1 || versions::row(minor).is_none() {
        return Err(VersionError::Unsupported);
    }
    Ok(Version { minor, patch })
}

fn parse_cidr(name: &str, raw: Option<&str>, default: &str, errors: &mut Vec<InputError>) -> Option<IpNet> {
    let text = raw.unwrap_or(default);
    match IpNet::from_str(text.trim()) {
        Ok(net) if net.network() != net.addr() => {
            errors.push(InputError::attr(
                name,
                format!(
                    "{text:?} has host bits set; write the network address, e.g. \"{}\"",
                    net.trunc()
                ),
            ));
            None
        }
        Ok(net) if net.hosts().nth(10).is_none() => {
            errors.push(InputError::attr(
                name,
                format!("{text:?} is too small; it needs at least 16 addresses, e.g. a /24 or larger"),
            ));
            None
        }
        Ok(net) => Some(net),
        Err(_) => {
            errors.push(InputError::attr(
                name,
                format!("{text:?} is not a CIDR; write it like \"{default}\""),
            ));
            None
        }
    }
}

fn is_dns_label_text(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':' || b == b'[' || b == b']')
}

/// Check the raw attribute values; every problem is reported, each with its attribute path.
///
/// # Errors
/// All the problems found, each naming the attribute (and index/key) and what to write instead.
pub fn parse_params(raw: &RawParams) -> Result<ManifestParams, Vec<InputError>> {
    let mut errors = Vec::new();
    // Read in attribute order, which is the order of the errors.
    let version = kubernetes_version(raw.kubernetes_version.as_deref(), &mut errors);
    check_cluster_name(&raw.cluster_name, &mut errors);
    check_servers(
        "api_servers",
        &raw.api_servers,
        "needs at least one DNS name or address clients use for the apiserver",
        &mut errors,
    );
    check_servers(
        "etcd_servers",
        &raw.etcd_servers,
        "needs at least one etcd member name or address",
        &mut errors,
    );
    let port = api_server_port(raw.api_server_port, &mut errors);
    let (pod, svc) = cidrs(raw, &mut errors);
    let domain = cluster_domain_suffix(raw.cluster_domain_suffix.as_deref(), &mut errors);
    let networking = networking(raw.networking.as_deref(), &mut errors);
    let host_os = host_os(raw.host_os.as_deref(), &mut errors);
    let images = container_images(&raw.container_images, &mut errors);
    let registry = container_registry(raw.container_registry.as_deref(), &mut errors);
    let flags = extra_flags(&raw.extra_flags, version, &mut errors);
    daemonset_tolerations(&raw.daemonset_tolerations, &mut errors);
    let replicas = controller_replicas(raw.controller_replicas, &mut errors);
    let admin_group = admin_group(raw.admin_group.as_deref(), &mut errors);
    let extras = extra_manifests(&raw.extra_manifests, &mut errors);

    if !errors.is_empty() {
        return Err(errors);
    }
    let params = match (version, port, pod, svc, networking, host_os) {
        (
            Some(kubernetes_version),
            Some(api_server_port),
            Some(pod_cidr),
            Some(service_cidr),
            Some(networking),
            Some(host_os),
        ) => ManifestParams {
            kubernetes_version,
            cluster_name: raw.cluster_name.trim().to_string(),
            api_servers: raw.api_servers.clone(),
            api_server_port,
            etcd_servers: raw.etcd_servers.clone(),
            pod_cidr,
            service_cidr,
            cluster_domain_suffix: domain,
            networking,
            host_os,
            kube_proxy: raw.kube_proxy.unwrap_or(true),
            coredns: raw.coredns.unwrap_or(true),
            container_images: images,
            container_registry: registry,
            extra_flags: flags,
            daemonset_tolerations: raw.daemonset_tolerations.clone(),
            controller_replicas: replicas,
            controller_count: raw.controller_count,
            extra_manifests: extras,
            admin_group,
            credentials_revision: String::new(),
        },
        _ => return Err(vec![InputError::attr("kubernetes_version", "inputs incomplete")]),
    };
    check_no_repeated_objects(params)
}

fn kubernetes_version(raw: Option<&str>, errors: &mut Vec<InputError>) -> Option<Version> {
    match raw {
        None => Some(DEFAULT_VERSION),
        Some(v) => match parse_version(v) {
            Ok(v) => Some(v),
            Err(m) => {
                errors.push(InputError::attr("kubernetes_version", m));
                None
            }
        },
    }
}

fn check_cluster_name(raw: &str, errors: &mut Vec<InputError>) {
    if raw.trim().is_empty() {
        errors.push(InputError::attr(
            "cluster_name",
            "must not be empty; write a short name such as \"nemo\"",
        ));
    }
}

/// `api_servers` or `etcd_servers`: not empty, each a DNS name or address.
fn check_servers(name: &str, servers: &[String], when_empty: &str, errors: &mut Vec<InputError>) {
    if servers.is_empty() {
        errors.push(InputError::attr(name, when_empty));
    }
    for (i, s) in servers.iter().enumerate() {
        if !is_dns_label_text(s) {
            errors.push(InputError::index(
                name,
                i,
                format!("{s:?} is not a DNS name or IP address"),
            ));
        }
    }
}

fn api_server_port(raw: Option<i64>, errors: &mut Vec<InputError>) -> Option<u16> {
    match raw {
        None => Some(DEFAULT_API_SERVER_PORT),
        Some(p) => match u16::try_from(p) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                errors.push(InputError::attr(
                    "api_server_port",
                    format!("{p} is not a TCP port; write 1–65535, e.g. 6443"),
                ));
                None
            }
        },
    }
}

/// `pod_cidr` and `service_cidr`, which must not overlap.
fn cidrs(raw: &RawParams, errors: &mut Vec<InputError>) -> (Option<IpNet>, Option<IpNet>) {
    let pod = parse_cidr("pod_cidr", raw.pod_cidr.as_deref(), DEFAULT_POD_CIDR, errors);
    let svc = parse_cidr(
        "service_cidr",
        raw.service_cidr.as_deref(),
        DEFAULT_SERVICE_CIDR,
        errors,
    );
    if let (Some(p), Some(s)) = (pod, svc) {
        if p.contains(&s.network()) || s.contains(&p.network()) {
            errors.push(InputError::attr(
                "service_cidr",
                format!("{s} overlaps pod_cidr {p}; choose disjoint networks, e.g. pod_cidr \"{DEFAULT_POD_CIDR}\" and service_cidr \"{DEFAULT_SERVICE_CIDR}\""),
            ));
        }
    }
    (pod, svc)
}

fn cluster_domain_suffix(raw: Option<&str>, errors: &mut Vec<InputError>) -> String {
    let domain = raw.unwrap_or(DEFAULT_CLUSTER_DOMAIN_SUFFIX).to_string();
    if !crate::names::is_dns_subdomain(&domain) {
        errors.push(InputError::attr(
            "cluster_domain_suffix",
            format!(
                "{domain:?} is not a DNS domain of lowercase labels; write e.g. \"{DEFAULT_CLUSTER_DOMAIN_SUFFIX}\""
            ),
        ));
    }
    domain
}

fn networking(raw: Option<&str>, errors: &mut Vec<InputError>) -> Option<Networking> {
    let Some(n) = raw.map(str::trim) else {
        return Some(Networking::Flannel);
    };
    let found = Networking::ALL.into_iter().find(|x| x.name() == n);
    if found.is_none() {
        errors.push(InputError::attr(
            "networking",
            format!("{n:?} is not a networking choice; write one of \"flannel\", \"calico\", \"cilium\", \"none\""),
        ));
    }
    found
}

fn host_os(raw: Option<&str>, errors: &mut Vec<InputError>) -> Option<HostOs> {
    match raw.map(str::trim) {
        None => Some(HostOs::Generic),
        Some(h) => HostOs::from_name(h).or_else(|| {
            let choices = HostOs::ALL.map(|x| format!("{:?}", x.name())).join(", ");
            errors.push(InputError::attr(
                "host_os",
                format!("{h:?} is not a host OS this provider writes units for; write one of {choices}"),
            ));
            None
        }),
    }
}

/// The images that are references of known components; the rest are errors.
fn container_images(raw: &BTreeMap<String, String>, errors: &mut Vec<InputError>) -> BTreeMap<Component, String> {
    let image_names: Vec<&str> = Component::ALL.iter().map(|c| c.name()).collect();
    let mut images = BTreeMap::new();
    for (key, image) in raw {
        match Component::from_name(key) {
            Some(c) => {
                if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
                    errors.push(InputError::key(
                        "container_images",
                        key,
                        format!("{image:?} is not an image reference; write e.g. \"registry.example.com/kube-apiserver:v1.34.3\""),
                    ));
                } else {
                    images.insert(c, image.clone());
                }
            }
            None => errors.push(InputError::key(
                "container_images",
                key,
                format!("unknown component {key:?}; write one of {}", image_names.join(", ")),
            )),
        }
    }
    images
}

/// Without trailing slashes.
fn container_registry(raw: Option<&str>, errors: &mut Vec<InputError>) -> Option<String> {
    match raw.map(|r| r.trim().trim_end_matches('/')) {
        None => None,
        Some(r) if r.is_empty() || r.chars().any(char::is_whitespace) || r.contains('@') => {
            errors.push(InputError::attr(
                "container_registry",
                format!("{r:?} is not a registry prefix; write e.g. \"registry.example.com/mirror\""),
            ));
            None
        }
        Some(r) => Some(r.to_string()),
    }
}

/// The flags of components that take flags; `version` (when valid) tells which flags are gone.
fn extra_flags(
    raw: &BTreeMap<String, Vec<String>>,
    version: Option<Version>,
    errors: &mut Vec<InputError>,
) -> BTreeMap<Component, Vec<String>> {
    let flag_names: Vec<&str> = Component::ALL
        .iter()
        .filter(|c| c.flag_owner().is_some())
        .map(|c| c.name())
        .collect();
    let mut flags = BTreeMap::new();
    for (key, list) in raw {
        let Some(c) = Component::from_name(key).filter(|c| c.flag_owner().is_some()) else {
            errors.push(InputError::key(
                "extra_flags",
                key,
                format!(
                    "unknown component {key:?} for flags; write one of {}",
                    flag_names.join(", ")
                ),
            ));
            continue;
        };
        check_flags(key, c, list, version, errors);
        flags.insert(c, list.clone());
    }
    flags
}

/// One component's flags: each `--name=value`, once, and still in Kubernetes `version`.
fn check_flags(key: &str, c: Component, list: &[String], version: Option<Version>, errors: &mut Vec<InputError>) {
    let mut seen = BTreeSet::new();
    for (i, flag) in list.iter().enumerate() {
        let name = flag_name(flag);
        if !flag.starts_with("--") || name.len() <= 2 || flag.contains('\n') {
            errors.push(InputError::key_index(
                "extra_flags",
                key,
                i,
                format!("{flag:?} is not a flag; write it as \"--name=value\""),
            ));
            continue;
        }
        if !seen.insert(name.to_string()) {
            errors.push(InputError::key_index(
                "extra_flags",
                key,
                i,
                format!("{name} is given twice; keep one"),
            ));
        }
        if let (Some(v), Some(owner)) = (version, c.flag_owner()) {
            if v.row().is_some_and(|r| r.flag_gone(owner, name)) {
                errors.push(InputError::key_index(
                    "extra_flags",
                    key,
                    i,
                    format!(
                        "{name} no longer exists in Kubernetes {v}; remove it (the component would refuse to start)"
                    ),
                ));
            }
        }
    }
}

/// Each a taint key, once: a qualified name (`dedicated`, `example.com/dedicated`).
fn daemonset_tolerations(raw: &[String], errors: &mut Vec<InputError>) {
    let mut seen = BTreeSet::new();
    for (i, key) in raw.iter().enumerate() {
        if !is_qualified_name(key) {
            errors.push(InputError::index(
                "daemonset_tolerations",
                i,
                format!("{key:?} is not a taint key; write a name such as \"dedicated\" or \"example.com/dedicated\" (letters, digits, '-', '_', '.', at most 63, with an optional DNS prefix and '/')"),
            ));
        } else if !seen.insert(key.as_str()) {
            errors.push(InputError::index(
                "daemonset_tolerations",
                i,
                format!("{key:?} is given twice; keep one"),
            ));
        }
    }
}

/// Kubernetes' qualified name (label and taint keys): `[prefix/]name`, the prefix a DNS
/// subdomain of at most 253, the name at most 63 alphanumerics with `-`, `_`, `.` inside.
fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && l.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    });
    name_ok && prefix_ok
}

fn controller_replicas(raw: Option<i64>, errors: &mut Vec<InputError>) -> Option<u32> {
    match raw {
        None => None,
        Some(n) if (1..=100).contains(&n) => u32::try_from(n).ok(),
        Some(n) => {
            errors.push(InputError::attr(
                "controller_replicas",
                format!("{n} replicas cannot run; write a number from 1 to 100 (at most one per controller runs: they use host ports), or leave it unset for one per controller"),
            ));
            None
        }
    }
}

fn admin_group(raw: Option<&str>, errors: &mut Vec<InputError>) -> String {
    let admin_group = raw.unwrap_or(MASTERS_GROUP).to_string();
    if admin_group.trim().is_empty() || admin_group.chars().any(char::is_whitespace) {
        errors.push(InputError::attr(
            "admin_group",
            format!("{admin_group:?} is not a group name; write e.g. \"selfhosted:cluster-admins\" (the admin certificate's organization)"),
        ));
    }
    admin_group
}

/// Every object of every stream, each remembering its stream's index.
fn extra_manifests(raw: &[String], errors: &mut Vec<InputError>) -> Vec<ExtraObject> {
    let mut extras = Vec::new();
    for (i, text) in raw.iter().enumerate() {
        match extra::parse_stream(text) {
            Ok(objs) => extras.extend(objs.into_iter().map(|o| o.with_source(i))),
            Err(m) => errors.push(InputError::index("extra_manifests", i, m)),
        }
    }
    extras
}

/// An extra document that repeats one of our objects is an input error, found at plan:
/// only a render shows it.
fn check_no_repeated_objects(params: ManifestParams) -> Result<ManifestParams, Vec<InputError>> {
    match crate::render_public(&params) {
        Err(crate::RenderError::Duplicate { file, source_index, document }) if source_index != usize::MAX => {
            Err(vec![InputError::index(
                "extra_manifests",
                source_index,
                format!("document {document} repeats an object this provider renders or another document ({file}); remove it or use extra_flags/container_images instead"),
            )])
        }
        _ => Ok(params),
    }
}

/// The `--name` part of `--name=value`.
pub fn flag_name(flag: &str) -> &str {
    flag.split_once('=').map_or(flag, |(n, _)| n)
}
