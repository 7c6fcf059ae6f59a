//! The schema of `selfhosted_cluster_assets`: every attribute, its default
//! and its description (the docs are generated from these).

use selfhosted_pki::params as pki;
use selfhosted_protocol::schema::{Attribute, Block, Schema};
use selfhosted_protocol::value::{Type, Value};

/// Schema version of the state layout; bump with an `upgrade_state` step.
pub const VERSION: i64 = 0;

/// Attribute names, shared by schema, readers and outputs.
pub mod attr {
    pub use selfhosted_pki::params::attr::*;
    /// `id`
    pub const ID: &str = "id";
    /// `ca_private_key_pem_wo`
    pub const CA_PRIVATE_KEY_PEM_WO: &str = "ca_private_key_pem_wo";
    /// `ca_private_key_pem_wo_version`
    pub const CA_PRIVATE_KEY_PEM_WO_VERSION: &str = "ca_private_key_pem_wo_version";
    /// `asset_dir`
    pub const ASSET_DIR: &str = "asset_dir";
    /// `assets`
    pub const ASSETS: &str = "assets";
    /// `server_url`
    pub const SERVER_URL: &str = "server_url";
    /// `cluster_dns_service_ip`
    pub const CLUSTER_DNS_SERVICE_IP: &str = "cluster_dns_service_ip";
    /// `ca_certificate`
    pub const CA_CERTIFICATE: &str = "ca_certificate";
    /// `etcd_ca_certificate`
    pub const ETCD_CA_CERTIFICATE: &str = "etcd_ca_certificate";
    /// `admin_kubeconfig`
    pub const ADMIN_KUBECONFIG: &str = "admin_kubeconfig";
    /// `admin_client_certificate`
    pub const ADMIN_CLIENT_CERTIFICATE: &str = "admin_client_certificate";
    /// `admin_client_key`
    pub const ADMIN_CLIENT_KEY: &str = "admin_client_key";
    /// `kubelet_bootstrap_kubeconfig`
    pub const KUBELET_BOOTSTRAP_KUBECONFIG: &str = "kubelet_bootstrap_kubeconfig";
    /// `certificate_expiry`
    pub const CERTIFICATE_EXPIRY: &str = "certificate_expiry";
    /// `validity_end_time`
    pub const VALIDITY_END_TIME: &str = "validity_end_time";
    /// `ready_for_renewal`
    pub const READY_FOR_RENEWAL: &str = "ready_for_renewal";
    /// `asset_dir_sha256`
    pub const ASSET_DIR_SHA256: &str = "asset_dir_sha256";
    /// `kubernetes_version`
    pub const KUBERNETES_VERSION: &str = "kubernetes_version";
    /// `networking`
    pub const NETWORKING: &str = "networking";
    /// `host_os`
    pub const HOST_OS: &str = "host_os";
    /// `joining_worker_ignition`
    pub const JOINING_WORKER_IGNITION: &str = "joining_worker_ignition";
    /// `pod_cidr`
    pub const POD_CIDR: &str = "pod_cidr";
    /// `kube_proxy`
    pub const KUBE_PROXY: &str = "kube_proxy";
    /// `coredns`
    pub const COREDNS: &str = "coredns";
    /// `container_images`
    pub const CONTAINER_IMAGES: &str = "container_images";
    /// `container_registry`
    pub const CONTAINER_REGISTRY: &str = "container_registry";
    /// `extra_flags`
    pub const EXTRA_FLAGS: &str = "extra_flags";
    /// `daemonset_tolerations`
    pub const DAEMONSET_TOLERATIONS: &str = "daemonset_tolerations";
    /// `controller_replicas`
    pub const CONTROLLER_REPLICAS: &str = "controller_replicas";
    /// `extra_manifests`
    pub const EXTRA_MANIFESTS: &str = "extra_manifests";
    /// `manifests`
    pub const MANIFESTS: &str = "manifests";
    /// `bootstrap_manifests`
    pub const BOOTSTRAP_MANIFESTS: &str = "bootstrap_manifests";
    /// `secret_manifests`
    pub const SECRET_MANIFESTS: &str = "secret_manifests";
    /// `apiserver_generation`
    pub const APISERVER_GENERATION: &str = "apiserver_generation";
    /// `credentials_revision`
    pub const CREDENTIALS_REVISION: &str = "credentials_revision";
    /// `node`
    pub const NODE: &str = "node";
}

/// Attributes of the `node` object: the host side of the contract.
pub const NODE_ATTRIBUTES: [(&str, bool); 22] = [
    // (name, is a list of strings)
    ("kubelet_config", false),
    ("kubelet_flags", true),
    ("controller_kubelet_flags", true),
    ("cluster_dns_ip", false),
    ("cluster_domain", false),
    ("static_pod_path", false),
    ("bootstrap_kubeconfig_path", false),
    ("ca_path", false),
    ("controller_label", false),
    ("controller_taint", false),
    ("controller_unit", false),
    ("worker_unit", false),
    ("controller_butane", false),
    ("worker_butane", false),
    ("kubelet_config_path", false),
    ("host_os", false),
    ("etcd_unit", false),
    ("etcd_path_unit", false),
    ("etcd_env", true),
    ("containerd_config", false),
    ("controller_ignition", true),
    ("worker_ignition", false),
];

/// Type of the `node` object.
pub fn node_type() -> Type {
    Type::object(
        NODE_ATTRIBUTES
            .iter()
            .map(|(n, list)| (*n, if *list { Type::list(Type::String) } else { Type::String })),
    )
}

/// Defaults of optional inputs, filled into the plan when the configuration
/// leaves them null (so state and plan always show the value in force).
pub fn defaults() -> Vec<(&'static str, Value)> {
    vec![
        (
            attr::API_SERVER_PORT,
            Value::from(i64::from(pki::DEFAULT_API_SERVER_PORT)),
        ),
        (attr::SERVICE_CIDR, Value::from(pki::DEFAULT_SERVICE_CIDR)),
        (
            attr::CLUSTER_DOMAIN_SUFFIX,
            Value::from(pki::DEFAULT_CLUSTER_DOMAIN_SUFFIX),
        ),
        (
            attr::KEY_ALGORITHM,
            Value::from(selfhosted_pki::KeyAlgorithm::default().as_str()),
        ),
        (attr::CA_VALIDITY_HOURS, Value::from(pki::DEFAULT_CA_VALIDITY_HOURS)),
        (attr::VALIDITY_HOURS, Value::from(pki::DEFAULT_VALIDITY_HOURS)),
        (attr::EARLY_RENEWAL_HOURS, Value::from(pki::DEFAULT_EARLY_RENEWAL_HOURS)),
        (attr::ADMIN_ORGANIZATION, Value::from(pki::DEFAULT_ADMIN_ORGANIZATION)),
        (
            attr::KUBERNETES_VERSION,
            Value::from(selfhosted_manifests::DEFAULT_VERSION.to_string()),
        ),
        (
            attr::NETWORKING,
            Value::from(selfhosted_manifests::Networking::default().name()),
        ),
        (
            attr::POD_CIDR,
            Value::from(selfhosted_manifests::params::DEFAULT_POD_CIDR),
        ),
        (attr::KUBE_PROXY, Value::from(true)),
        (attr::COREDNS, Value::from(true)),
        (
            attr::HOST_OS,
            Value::from(selfhosted_manifests::host::HostOs::default().name()),
        ),
    ]
}

fn input(name: &str, ty: Type, description: &str) -> Attribute {
    Attribute::new(name, ty).optional().description(description)
}

fn defaulted(name: &str, ty: Type, description: &str) -> Attribute {
    input(name, ty, description).computed()
}

fn output(name: &str, ty: Type, description: &str) -> Attribute {
    Attribute::new(name, ty).computed().description(description)
}

/// The resource schema.
pub fn schema() -> Schema {
    let algorithms: Vec<&str> = selfhosted_pki::KeyAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
    let block = Block::new()
        .description(
            "Renders the PKI of a self-hosted Kubernetes cluster: the kube, etcd and front-proxy CAs, \
             every certificate and key, the service-account key pair, a kubelet bootstrap token and the \
             kubeconfigs. Pure: no network, no disk unless `asset_dir` is set. Material is generated once \
             and kept in state; a change of `api_servers` re-issues only the apiserver certificates, a \
             change of `etcd_servers` only the etcd server and peer certificates, and a certificate inside \
             its early-renewal window is renewed in place by a plain `terraform apply`.",
        )
        .attribute(
            Attribute::new(attr::CLUSTER_NAME, Type::String)
                .required()
                .description("Cluster name, a DNS label (lowercase letters, digits, `-`). Changing it replaces the resource and every key."),
        )
        .attribute(
            Attribute::new(attr::API_SERVERS, Type::list(Type::String))
                .required()
                .description("DNS names or IP addresses of the API servers. The first forms `server_url`; all go into the apiserver certificate's SANs."),
        )
        .attribute(defaulted(
            attr::API_SERVER_PORT,
            Type::Number,
            "Port the API servers listen on. Default `6443`.",
        ))
        .attribute(
            Attribute::new(attr::ETCD_SERVERS, Type::list(Type::String))
                .required()
                .description("DNS names or IP addresses of the etcd members (typically the controllers). They go into the etcd server and peer certificates' SANs."),
        )
        .attribute(defaulted(
            attr::SERVICE_CIDR,
            Type::String,
            "Service network. Its first address is the `kubernetes` Service (and an apiserver SAN), its 10th the cluster DNS. Default `10.3.0.0/16`.",
        ))
        .attribute(defaulted(
            attr::CLUSTER_DOMAIN_SUFFIX,
            Type::String,
            "Cluster DNS domain. Default `cluster.local`.",
        ))
        .attribute(defaulted(
            attr::KEY_ALGORITHM,
            Type::String,
            &format!(
                "Algorithm of every generated key: one of {}. Default `ECDSA_P256`. Changing it re-issues every leaf certificate; CAs and the service-account key are kept.",
                algorithms.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
            ),
        ))
        .attribute(defaulted(
            attr::CA_VALIDITY_HOURS,
            Type::Number,
            "Validity of generated CAs, in hours. Default `87600` (10 years).",
        ))
        .attribute(defaulted(
            attr::VALIDITY_HOURS,
            Type::Number,
            "Validity of leaf certificates, in hours (never beyond their CA). Default `8760` (1 year). A change takes effect at each certificate's next issue.",
        ))
        .attribute(defaulted(
            attr::EARLY_RENEWAL_HOURS,
            Type::Number,
            "A certificate is renewed by the first plan within this many hours before it expires. Must be shorter than the validities. Default `720` (30 days).",
        ))
        .attribute(input(
            attr::CA_CERT_PEM,
            Type::String,
            "Bring-your-own kube CA certificate (PEM). Give its key in `ca_private_key_pem` or `ca_private_key_pem_wo`. Changing it re-issues everything it signs.",
        ))
        .attribute(
            input(
                attr::CA_PRIVATE_KEY_PEM,
                Type::String,
                "Private key (PEM, PKCS#8 or PKCS#1) of `ca_cert_pem`. Prefer `ca_private_key_pem_wo` on Terraform 1.11 and later.",
            )
            .sensitive(),
        )
        .attribute(
            input(
                attr::CA_PRIVATE_KEY_PEM_WO,
                Type::String,
                "Write-only variant of `ca_private_key_pem` (Terraform 1.11+): never stored in the plan or in this attribute's state. The controller-manager signs kubelet certificates with the CA key, so the key is still part of the sensitive `assets`. Bump `ca_private_key_pem_wo_version` when it changes.",
            )
            .sensitive()
            .write_only(),
        )
        .attribute(input(
            attr::CA_PRIVATE_KEY_PEM_WO_VERSION,
            Type::Number,
            "Any number; change it to make Terraform plan an update after changing `ca_private_key_pem_wo`.",
        ))
        .attribute(defaulted(
            attr::ADMIN_ORGANIZATION,
            Type::String,
            "Organization (Kubernetes group) of the admin client certificate. Default `system:masters`.",
        ))
        .attribute(input(
            attr::ASSET_DIR,
            Type::String,
            "Optional local folder to write every asset to (files 0600, folders 0700, atomically; only files this resource owns are touched, and removed on destroy). A folder below it that is a symbolic link is refused, and a link in place of a file is replaced, never written through.",
        ))
        .attribute(defaulted(
            attr::KUBERNETES_VERSION,
            Type::String,
            &format!(
                "Kubernetes version of the control plane, `vMAJOR.MINOR.PATCH`. Supported minors: {}. Default `{}`. A change is an upgrade: the plan shows exactly which manifests change. Minor versions go up one at a time (the plan refuses a skipped or reverted minor); kubelets must be at most 3 minors older than the new version (checked before the upgrade changes anything), and follow it on Fedora CoreOS and Flatcar hosts that `selfhosted_bootstrap` reaches, node by node.",
                selfhosted_manifests::versions::supported_minors(),
                selfhosted_manifests::DEFAULT_VERSION
            ),
        ))
        .attribute(defaulted(
            attr::NETWORKING,
            Type::String,
            "Pod network: `flannel` (default), `calico`, `cilium`, or `none` (bring your own CNI, e.g. through `extra_manifests`).",
        ))
        .attribute(defaulted(
            attr::HOST_OS,
            Type::String,
            "What the hosts run, which decides how the `node` units start the kubelet and etcd: `generic` (default: `/usr/bin/kubelet` and `/usr/bin/etcd` installed, e.g. Debian), `fedora-coreos` (the kubelet and etcd images under podman) or `flatcar` (the same under docker).",
        ))
        .attribute(defaulted(
            attr::POD_CIDR,
            Type::String,
            "Pod network range; must not overlap `service_cidr`. Default `10.2.0.0/16`.",
        ))
        .attribute(defaulted(attr::KUBE_PROXY, Type::Bool, "Run kube-proxy as a DaemonSet. Default `true`."))
        .attribute(defaulted(attr::COREDNS, Type::Bool, "Run CoreDNS. Default `true`."))
        .attribute(input(
            attr::CONTAINER_IMAGES,
            Type::map(Type::String),
            &format!(
                "Per-component image overrides, component → full image reference. Components: {}.",
                selfhosted_manifests::Component::ALL
                    .iter()
                    .map(|c| format!("`{}`", c.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
        .attribute(input(
            attr::CONTAINER_REGISTRY,
            Type::String,
            "A registry prefix (e.g. `registry.example.com/mirror`) replacing the registry of every default image, for private mirrors.",
        ))
        .attribute(input(
            attr::EXTRA_FLAGS,
            Type::map(Type::list(Type::String)),
            "Extra command-line flags per component (`kube_apiserver`, `kube_controller_manager`, `kube_scheduler`, `kube_proxy`, `kubelet`), each `--name=value`; a flag of the same name replaces ours.",
        ))
        .attribute(input(
            attr::DAEMONSET_TOLERATIONS,
            Type::list(Type::String),
            "Taint keys of your own (e.g. `example.com/dedicated` on a dedicated node pool) that kube-proxy and the pod network's node agent tolerate, any effect, as typhoon's `daemonset_tolerations`. They tolerate Kubernetes' own taints already, but not `node.kubernetes.io/unreachable`, so a vanished node does not hold up their rollouts.",
        ))
        .attribute(input(
            attr::CONTROLLER_REPLICAS,
            Type::Number,
            "Replicas of kube-controller-manager and kube-scheduler. Default: one per controller (the number of `etcd_servers`); they run with hostNetwork, so more than the controllers cannot be scheduled.",
        ))
        .attribute(input(
            attr::EXTRA_MANIFESTS,
            Type::list(Type::String),
            "Your own YAML documents (one or more per element), added to `manifests/` and applied with the control plane. Each is parsed and checked; a bad one is named by element and document.",
        ))
        .attribute(output(attr::ID, Type::String, "The cluster name."))
        .attribute(output(
            attr::MANIFESTS,
            Type::map(Type::String),
            "The self-hosted control plane, `manifests/NN-kind-namespace-name.yaml` → YAML, without key material: known at plan time, so a version change shows exactly which objects change. The `NN` prefix is the apply order.",
        ))
        .attribute(output(
            attr::BOOTSTRAP_MANIFESTS,
            Type::map(Type::String),
            "Static Pods of the temporary control plane (`bootstrap-manifests/…`), for the first controller's static pod folder. They read their credentials from `/etc/kubernetes/bootstrap-secrets`.",
        ))
        .attribute(
            output(
                attr::SECRET_MANIFESTS,
                Type::map(Type::String),
                "The Secrets of the control plane (keys, tokens, kubeconfigs), same naming as `manifests`.",
            )
            .sensitive(),
        )
        .attribute(output(
            attr::APISERVER_GENERATION,
            Type::String,
            "Generation suffix of the self-hosted apiserver DaemonSet (`kube-apiserver-<generation>`); apiserver upgrades run a new generation beside the old one.",
        ))
        .attribute(output(
            attr::CREDENTIALS_REVISION,
            Type::String,
            "Counts the (re)issues of the control plane's certificates: `1` at creation, one more at each renewal or re-issue, decided at plan. It is part of the apiserver generation and annotates the controller-manager and scheduler pods, so a renewal reaches the running control plane: a blue/green apiserver hand-over and rolling restarts, run by `selfhosted_bootstrap`.",
        ))
        .attribute(output(
            attr::NODE,
            node_type(),
            "What every host must run, so hosts and assets cannot disagree: the KubeletConfiguration, kubelet flags, the controller label and taint, systemd units for the kubelet and etcd, and the Ignition configs Fedora CoreOS and Flatcar hosts boot from (`controller_ignition[i]` for the controller at `etcd_servers[i]`, `worker_ignition`). Holds no credentials: the provider delivers those over SSH.",
        ))
        .attribute(
            output(
                attr::JOINING_WORKER_IGNITION,
                Type::String,
                "Ignition for workers that join without SSH (an autoscaling group): `node.worker_ignition` plus the kubelet's bootstrap kubeconfig and the cluster CA. Holds the bootstrap token.",
            )
            .sensitive(),
        )
        .attribute(
            output(
                attr::ASSETS,
                Type::map(Type::String),
                "Every rendered file, relative path → content, in a bootkube-like layout (`tls/…`, `auth/…`). Hand it to `selfhosted_bootstrap`.",
            )
            .sensitive(),
        )
        .attribute(output(attr::SERVER_URL, Type::String, "`https://<first api server>:<port>`."))
        .attribute(output(
            attr::CLUSTER_DNS_SERVICE_IP,
            Type::String,
            "Cluster DNS Service IP: the 10th address of `service_cidr`. Kubelets need it as `clusterDNS`.",
        ))
        .attribute(output(attr::CA_CERTIFICATE, Type::String, "The kube CA certificate (PEM)."))
        .attribute(output(attr::ETCD_CA_CERTIFICATE, Type::String, "The etcd CA certificate (PEM)."))
        .attribute(
            output(attr::ADMIN_KUBECONFIG, Type::String, "Kubeconfig with the admin client certificate.")
                .sensitive(),
        )
        .attribute(output(
            attr::ADMIN_CLIENT_CERTIFICATE,
            Type::String,
            "The admin client certificate (PEM): with `server_url`, `ca_certificate` and `admin_client_key`, what the `kubernetes` and `helm` providers take as `host`, `cluster_ca_certificate`, `client_certificate` and `client_key`.",
        ))
        .attribute(
            output(
                attr::ADMIN_CLIENT_KEY,
                Type::String,
                "The admin client certificate's private key (PEM).",
            )
            .sensitive(),
        )
        .attribute(
            output(
                attr::KUBELET_BOOTSTRAP_KUBECONFIG,
                Type::String,
                "Kubeconfig with the workers' kubelet bootstrap token, for TLS bootstrapping of workers (`/etc/kubernetes/kubeconfig`). Its certificate requests are approved for any node name except a controller's; controllers get their own token from `selfhosted_bootstrap`.",
            )
            .sensitive(),
        )
        .attribute(output(
            attr::CERTIFICATE_EXPIRY,
            Type::map(Type::String),
            "Expiry (RFC 3339) of every certificate, by name (`ca`, `apiserver`, `etcd-server`, …).",
        ))
        .attribute(output(
            attr::VALIDITY_END_TIME,
            Type::String,
            "The earliest certificate expiry (RFC 3339).",
        ))
        .attribute(output(
            attr::READY_FOR_RENEWAL,
            Type::Bool,
            "Whether a certificate is inside its early-renewal window; refresh sets it, and the plan then renews in place.",
        ))
        .attribute(output(
            attr::ASSET_DIR_SHA256,
            Type::String,
            "SHA-256 over the files in `asset_dir` as found on refresh; a change on disk plans a rewrite.",
        ));
    Schema::new(VERSION, block)
}
