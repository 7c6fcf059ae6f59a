//! The node side: kubelet TLS bootstrapping RBAC and admin access objects for the cluster,
//! and the [`NodeContract`] — the kubelet settings hosts must use so hosts and assets
//! cannot disagree.

use serde_json::{json, Value};

use crate::host::ignition::{self, File, Unit};
use crate::host::{etcd, kernel, units, HostOs};
use crate::object::{cluster_role_binding, group_subject, meta, CONTROLLER_LABEL, CONTROL_PLANE_TAINT};
use crate::params::{Component, ManifestParams, MASTERS_GROUP};
use crate::RenderError;

/// A suggested admin group: bound to `cluster-admin`, so admin access can be revoked
/// (unlike `system:masters`).
pub const ADMIN_GROUP: &str = "selfhosted:cluster-admins";
pub use crate::host::paths::{BOOTSTRAP_KUBECONFIG, CA_FILE, KUBELET_CONFIG_PATH, STATIC_POD_PATH};
/// The group the workers' bootstrap token adds: its certificate requests are decided by the
/// provider's approver (`selfhosted-agent approve-csrs`), which never grants a controller's name.
pub const WORKERS_BOOTSTRAP_GROUP: &str = "system:bootstrappers:selfhosted:workers";
/// The group the controllers' bootstrap token adds: Kubernetes' own approver grants its
/// requests. The token is delivered to controllers only, whose disks hold CA keys anyway.
pub const CONTROLLERS_BOOTSTRAP_GROUP: &str = "system:bootstrappers:selfhosted:controllers";
/// Where the kubelet keeps the client certificate it obtained (its own kubeconfig).
pub const KUBELET_KUBECONFIG: &str = "/var/lib/kubelet/kubeconfig";
/// containerd's CRI socket.
pub const RUNTIME_ENDPOINT: &str = "unix:///run/containerd/containerd.sock";

/// The role that lets a kubelet delete a Node: its own only, as NodeRestriction admits (a
/// worker's `delete-node.service` at shutdown).
pub const NODE_SELF_DELETE: &str = "selfhosted:node-self-delete";

/// RBAC for kubelet TLS bootstrapping and admin access (applied first: the kubelet backs
/// off up to 32 s between tries). Every token may request a certificate; only the
/// controllers' has Kubernetes' approver grant it (for any name, as that approver does), so
/// a worker's disk cannot yield a controller's identity.
pub fn rbac(p: &ManifestParams) -> Vec<Value> {
    let mut out = vec![
        cluster_role_binding(
            "selfhosted:kubelet-bootstrap",
            "system:node-bootstrapper",
            group_subject("system:bootstrappers"),
        ),
        cluster_role_binding(
            "selfhosted:kubelet-bootstrap-node-approver",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            group_subject(CONTROLLERS_BOOTSTRAP_GROUP),
        ),
        cluster_role_binding(
            "selfhosted:kubelet-csr-renewal",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            group_subject("system:nodes"),
        ),
    ];
    out.extend([
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta(NODE_SELF_DELETE, None, &[]),
            "rules": [{ "apiGroups": [""], "resources": ["nodes"], "verbs": ["delete"] }]
        }),
        cluster_role_binding(NODE_SELF_DELETE, NODE_SELF_DELETE, group_subject("system:nodes")),
    ]);
    if p.admin_group != MASTERS_GROUP {
        out.push(cluster_role_binding(
            "selfhosted:cluster-admins",
            "cluster-admin",
            group_subject(&p.admin_group),
        ));
    }
    out
}

/// What a host must run for the assets to work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeContract {
    /// KubeletConfiguration YAML for [`KUBELET_CONFIG_PATH`].
    pub kubelet_config: String,
    /// kubelet flags every host uses.
    pub kubelet_flags: Vec<String>,
    /// Extra kubelet flags of controllers (the controller label and taint).
    pub controller_kubelet_flags: Vec<String>,
    /// Cluster DNS address (10th address of the service network).
    pub cluster_dns_ip: String,
    /// Cluster DNS domain.
    pub cluster_domain: String,
    /// Static pod folder.
    pub static_pod_path: String,
    /// Bootstrap kubeconfig path.
    pub bootstrap_kubeconfig_path: String,
    /// Cluster CA path.
    pub ca_path: String,
    /// Label controllers set on themselves (`key=value`).
    pub controller_label: String,
    /// Taint controllers register with (`key:Effect`).
    pub controller_taint: String,
    /// systemd unit for a controller's kubelet.
    pub controller_unit: String,
    /// systemd unit for a worker's kubelet.
    pub worker_unit: String,
    /// A worker's `delete-node.service` ([`units::delete_node`]), in every worker's config.
    pub delete_node_unit: String,
    /// systemd path unit (`kubelet.path`) starting the kubelet once its bootstrap
    /// kubeconfig lands, so hosts can boot before the provider delivers it.
    pub path_unit: String,
    /// Butane (Fedora CoreOS config) snippet for a controller: the config file and units.
    pub controller_butane: String,
    /// Butane snippet for a worker.
    pub worker_butane: String,
    /// What the hosts run (`host_os`).
    pub host_os: HostOs,
    /// systemd unit running etcd on a controller (`etcd-member.service`).
    pub etcd_unit: String,
    /// systemd path unit starting etcd once its TLS material lands.
    pub etcd_path_unit: String,
    /// `/etc/etcd/etcd.env` of each controller, in the order of `etcd_servers`.
    pub etcd_env: Vec<String>,
    /// containerd's configuration where the contract writes it (Fedora CoreOS, Flatcar).
    pub containerd_config: Option<String>,
    /// Ignition config of each controller, in the order of `etcd_servers`.
    pub controller_ignition: Vec<String>,
    /// Ignition config of a worker the provider reaches over SSH (no credentials in it).
    pub worker_ignition: String,
    /// The kernel's modules and sysctls every host's config writes ([`kernel`]).
    pub kernel_files: Vec<File>,
}

fn kubelet_config(p: &ManifestParams) -> Value {
    let mut c = json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": { "enabled": false },
            "webhook": { "enabled": true },
            "x509": { "clientCAFile": CA_FILE }
        },
        "authorization": { "mode": "Webhook" },
        "cgroupDriver": "systemd",
        "clusterDNS": [p.cluster_dns_ip().to_string()],
        "clusterDomain": p.cluster_domain_suffix,
        "healthzBindAddress": "127.0.0.1",
        "readOnlyPort": 0,
        "resolvConf": "/run/systemd/resolve/resolv.conf",
        "rotateCertificates": true,
        "staticPodPath": STATIC_POD_PATH,
        "volumePluginDir": "/var/lib/kubelet/volumeplugins"
    });
    if p.row().kubelet_runtime_endpoint_in_config {
        c["containerRuntimeEndpoint"] = json!(RUNTIME_ENDPOINT);
    }
    c
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn butane(os: HostOs, config: &str, unit: &str, more: &[File], more_units: &[Unit]) -> String {
    let variant = if os == HostOs::Flatcar {
        "variant: flatcar\nversion: 1.0.0"
    } else {
        "variant: fcos\nversion: 1.5.0"
    };
    let file = |path: &str, contents: &str| {
        format!(
            "    - path: {path}\n      mode: 0644\n      contents:\n        inline: |\n{}\n",
            indent(contents, 10)
        )
    };
    let files: String = std::iter::once(file(KUBELET_CONFIG_PATH, config))
        .chain(more.iter().map(|f| file(&f.path, &f.contents)))
        .collect();
    let more_units: String = more_units
        .iter()
        .filter_map(|u| {
            u.contents.as_ref().map(|c| {
                format!(
                    "    - name: {}\n      enabled: {}\n      contents: |\n{}\n",
                    u.name,
                    u.enabled,
                    indent(c, 8)
                )
            })
        })
        .collect();
    format!(
        "{variant}\nstorage:\n  files:\n{files}systemd:\n  units:\n    - name: kubelet.service\n      enabled: true\n      contents: |\n{}\n    - name: kubelet.path\n      enabled: true\n      contents: |\n{}\n{more_units}",
        indent(unit, 8),
        indent(&units::kubelet_path(), 8)
    )
}

/// The node contract of these params.
///
/// # Errors
/// Only if YAML emission fails.
pub fn contract(p: &ManifestParams) -> Result<NodeContract, RenderError> {
    let config = crate::object::to_yaml(&kubelet_config(p))?;
    let mut flags = vec![
        format!("--bootstrap-kubeconfig={BOOTSTRAP_KUBECONFIG}"),
        "--cert-dir=/var/lib/kubelet/pki".to_string(),
        format!("--config={KUBELET_CONFIG_PATH}"),
    ];
    if p.row().kubelet_container_runtime_flag {
        flags.push("--container-runtime=remote".into());
    }
    if !p.row().kubelet_runtime_endpoint_in_config {
        flags.push(format!("--container-runtime-endpoint={RUNTIME_ENDPOINT}"));
    }
    flags.push(format!("--kubeconfig={KUBELET_KUBECONFIG}"));
    let flags = crate::object::merge_flags(p, Component::Kubelet, flags);
    let controller = vec![
        format!("--node-labels={CONTROLLER_LABEL}=true"),
        format!("--register-with-taints={CONTROL_PLANE_TAINT}:NoSchedule"),
    ];
    let all: Vec<String> = flags.iter().chain(controller.iter()).cloned().collect();
    let os = p.host_os;
    let kubelet_image = crate::images::image(p, Component::Kubelet);
    let controller_unit = units::kubelet(os, &kubelet_image, &all);
    let worker_unit = units::kubelet(os, &kubelet_image, &flags);
    let delete_node_unit = units::delete_node(os, &kubelet_image);
    let etcd_unit = units::etcd(os, &crate::images::image(p, Component::Etcd));
    let etcd_env: Vec<String> = (0..p.etcd_servers.len()).filter_map(|i| etcd::env(p, i)).collect();
    let containerd_config = os.container_engine().map(|_| units::containerd_config());
    let kernel_files = kernel::files(p.networking);
    let base = |unit: &str| kubelet_parts(os, &config, unit, containerd_config.as_deref(), &kernel_files);
    let controller_ignition = etcd_env
        .iter()
        .map(|env| {
            let (mut files, mut list) = base(&controller_unit);
            files.push(File::public(etcd::ETCD_ENV_PATH, env.clone()));
            list.push(Unit::written("etcd-member.service", etcd_unit.clone()));
            list.push(Unit::written("etcd-member.path", units::etcd_path()));
            ignition::config(os, &files, &list)
        })
        .collect();
    let worker_ignition = {
        let (files, mut list) = base(&worker_unit);
        list.push(delete_node(&delete_node_unit));
        ignition::config(os, &files, &list)
    };
    Ok(NodeContract {
        controller_butane: butane(os, &config, &controller_unit, &kernel_files, &[]),
        worker_butane: butane(
            os,
            &config,
            &worker_unit,
            &kernel_files,
            &[delete_node(&delete_node_unit)],
        ),
        host_os: os,
        etcd_unit,
        etcd_path_unit: units::etcd_path(),
        etcd_env,
        containerd_config,
        controller_ignition,
        worker_ignition,
        kernel_files,
        kubelet_config: config,
        kubelet_flags: flags,
        controller_kubelet_flags: controller,
        cluster_dns_ip: p.cluster_dns_ip().to_string(),
        cluster_domain: p.cluster_domain_suffix.clone(),
        static_pod_path: STATIC_POD_PATH.into(),
        bootstrap_kubeconfig_path: BOOTSTRAP_KUBECONFIG.into(),
        ca_path: CA_FILE.into(),
        controller_label: format!("{CONTROLLER_LABEL}=true"),
        controller_taint: format!("{CONTROL_PLANE_TAINT}:NoSchedule"),
        controller_unit,
        worker_unit,
        delete_node_unit,
        path_unit: units::kubelet_path(),
    })
}

/// The Ignition of a worker that joins by itself (an autoscaling group's): the worker's
/// config plus the kubelet's bootstrap kubeconfig and the cluster CA, which the provider
/// would otherwise deliver over SSH. It holds a bootstrap token: treat it as a secret.
pub fn joining_worker_ignition(c: &NodeContract, bootstrap_kubeconfig: &str, ca: &str) -> String {
    let (mut files, mut list) = kubelet_parts(
        c.host_os,
        &c.kubelet_config,
        &c.worker_unit,
        c.containerd_config.as_deref(),
        &c.kernel_files,
    );
    list.push(delete_node(&c.delete_node_unit));
    files.push(File::secret(BOOTSTRAP_KUBECONFIG, bootstrap_kubeconfig.to_owned()));
    files.push(File::public(CA_FILE, ca.to_owned()));
    ignition::config(c.host_os, &files, &list)
}

/// A worker's `delete-node.service`, enabled: started at boot (it does nothing then), so that
/// systemd stops it, deleting the Node, at shutdown.
fn delete_node(unit: &str) -> Unit {
    Unit::written("delete-node.service", unit.to_owned())
}

/// The files and units every host's Ignition has: the KubeletConfiguration, the kernel's
/// modules and sysctls, the kubelet's service and path unit, and containerd's configuration
/// where the contract writes one.
fn kubelet_parts(
    os: HostOs,
    config: &str,
    kubelet_unit: &str,
    containerd: Option<&str>,
    kernel: &[File],
) -> (Vec<File>, Vec<Unit>) {
    let mut files = vec![File::public(KUBELET_CONFIG_PATH, config.to_owned())];
    files.extend_from_slice(kernel);
    let mut list = vec![
        Unit::written("kubelet.service", kubelet_unit.to_owned()),
        Unit::written("kubelet.path", units::kubelet_path()),
    ];
    if let Some(c) = containerd {
        files.push(File::public(units::CONTAINERD_CONFIG_PATH, c.to_owned()));
        let drop_ins = if os == HostOs::Flatcar {
            vec![(units::CONTAINERD_DROP_IN.to_owned(), units::containerd_drop_in())]
        } else {
            Vec::new()
        };
        list.push(Unit::shipped("containerd.service", drop_ins));
    }
    (files, list)
}
