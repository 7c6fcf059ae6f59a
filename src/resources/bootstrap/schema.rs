//! The schema of `selfhosted_bootstrap`.

use selfhosted_protocol::schema::{Attribute, Block, ObjectNesting, Schema};
use selfhosted_protocol::value::Type;

/// Schema version of the state layout.
pub const VERSION: i64 = 0;

/// Attribute names.
pub mod attr {
    /// `assets`
    pub const ASSETS: &str = "assets";
    /// `controllers`
    pub const CONTROLLERS: &str = "controllers";
    /// `workers`
    pub const WORKERS: &str = "workers";
    /// `ssh`
    pub const SSH: &str = "ssh";
    /// `api_access`
    pub const API_ACCESS: &str = "api_access";
    /// `timeouts`
    pub const TIMEOUTS: &str = "timeouts";
    /// `paths`
    pub const PATHS: &str = "paths";
    /// `on_destroy`
    pub const ON_DESTROY: &str = "on_destroy";
    /// `id`
    pub const ID: &str = "id";
    /// `learned_host_keys`
    pub const LEARNED_HOST_KEYS: &str = "learned_host_keys";
    /// `phase`
    pub const PHASE: &str = "phase";
    /// `api_endpoint`
    pub const API_ENDPOINT: &str = "api_endpoint";
    /// `applied_digest`
    pub const APPLIED_DIGEST: &str = "applied_digest";
    /// `assets_sha256`
    pub const ASSETS_SHA256: &str = "assets_sha256";
    /// `control_plane_versions`
    pub const CONTROL_PLANE_VERSIONS: &str = "control_plane_versions";
    /// `kubelet_versions`
    pub const KUBELET_VERSIONS: &str = "kubelet_versions";
    /// `etcd_versions`
    pub const ETCD_VERSIONS: &str = "etcd_versions";
    /// `kubelet_max_unavailable`
    pub const KUBELET_MAX_UNAVAILABLE: &str = "kubelet_max_unavailable";
    /// `etcd_snapshot_dir`
    pub const ETCD_SNAPSHOT_DIR: &str = "etcd_snapshot_dir";
    /// `etcd_snapshot`
    pub const ETCD_SNAPSHOT: &str = "etcd_snapshot";
    /// `converge_trigger`
    pub const CONVERGE_TRIGGER: &str = "converge_trigger";
    /// `check_hosts_on_refresh`
    pub const CHECK_HOSTS_ON_REFRESH: &str = "check_hosts_on_refresh";
}

fn opt(name: &str, ty: Type, d: &str) -> Attribute {
    Attribute::new(name, ty).optional().description(d)
}

fn host_attributes() -> Vec<Attribute> {
    vec![
        Attribute::new("name", Type::String)
            .required()
            .description("Node name: the kubelet's hostname, unique in the cluster; names the host in every error."),
        Attribute::new("address", Type::String).required().description(
            "Address or DNS name to reach the host over SSH (from the provider, or from the last bastion).",
        ),
        opt("port", Type::Number, "SSH port of this host; default `ssh.port`."),
        opt("user", Type::String, "SSH user of this host; default `ssh.user`."),
        opt(
            "host_key",
            Type::String,
            "This host's SSH host key, pinned: a known_hosts line, a public key or a `SHA256:` fingerprint.",
        ),
    ]
}

/// The resource schema.
pub fn schema() -> Schema {
    let hop = vec![
        Attribute::new("address", Type::String)
            .required()
            .description("Bastion address or DNS name."),
        opt("port", Type::Number, "Bastion SSH port. Default `22`."),
        opt("user", Type::String, "Bastion user; default `ssh.user`."),
        opt(
            "host_key",
            Type::String,
            "The bastion's host key, pinned (as a host's `host_key`).",
        ),
    ];
    let ssh = vec![
        opt("user", Type::String, "SSH user on every host (typhoon's `core`). Default `core`."),
        opt("port", Type::Number, "SSH port. Default `22`."),
        opt("private_key", Type::String, "Private key (OpenSSH, PKCS#8 or PKCS#1 PEM) to log in with.").sensitive(),
        opt(
            "private_key_wo",
            Type::String,
            "Write-only variant of `private_key` (Terraform 1.11+): never stored in plan or state.",
        )
        .sensitive()
        .write_only(),
        opt("private_key_passphrase", Type::String, "Passphrase of an encrypted `private_key`.").sensitive(),
        opt("agent", Type::Bool, "Log in through the SSH agent at `SSH_AUTH_SOCK` (when no private key is given)."),
        opt(
            "authorized_keys",
            Type::list(Type::String),
            "Public keys (`authorized_keys` lines) the SSH user of every listed host lets in, and no other: kept on the hosts by every apply that reaches them (a change of the list is an update), so a key can be rotated on machines whose OS config set it at first boot only. Must hold the public half of `private_key` or `private_key_wo`, on a line without options. Unset: the hosts' keys are left as they are.",
        ),
        opt(
            "host_keys",
            Type::map(Type::String),
            "Pinned host keys by host name (known_hosts lines, public keys or `SHA256:` fingerprints); a host's own `host_key` wins.",
        ),
        opt(
            "trust_on_first_use",
            Type::Bool,
            "Accept an unpinned host's key on first contact and keep it in `learned_host_keys`, pinned from then on. Default `true`; set `false` to require pins.",
        ),
        Attribute::nested("bastions", ObjectNesting::List, hop)
            .optional()
            .description("Bastions to jump through, outermost first."),
        opt("connect_timeout", Type::String, "How long to keep retrying SSH connections (hosts may still be booting), e.g. `5m`. Default `5m`."),
    ];
    let timeouts = vec![
        opt(
            "create",
            Type::String,
            "Deadline of the pivot, e.g. `30m`. Default `20m`.",
        ),
        opt("update", Type::String, "Deadline of an update. Default `20m`."),
        opt("delete", Type::String, "Deadline of a teardown. Default `5m`."),
    ];
    // Fixed by the node contract: accepted only with the contract's value, for configurations
    // written before they were fixed.
    let fixed = |name: &str, path: &str| {
        opt(
            name,
            Type::String,
            &format!("Deprecated: fixed by the node contract at `{path}`; any other value is an error."),
        )
        .deprecated()
    };
    use selfhosted_manifests::host::paths as contract;
    let paths = vec![
        fixed("kubelet_kubeconfig", contract::BOOTSTRAP_KUBECONFIG),
        fixed("ca_certificate", contract::CA_FILE),
        fixed("static_pod_dir", contract::STATIC_POD_PATH),
        fixed("bootstrap_secrets_dir", contract::BOOTSTRAP_SECRETS_DIR),
        fixed("etcd_tls_dir", contract::ETCD_TLS_ROOT),
        opt(
            "state_dir",
            Type::String,
            "The provider's own markers and staging on each host. Default `/var/lib/selfhosted`.",
        ),
    ];
    let block = Block::new()
        .description(
            "Reaches the hosts over SSH, delivers their secrets and runs the self-hosted pivot: a temporary \
             control plane from static Pods on the first controller, the self-hosted control plane applied \
             through it, then the temporary one removed once the self-hosted apiserver answers by itself. \
             Every phase is idempotent: a failed apply, rerun, converges.",
        )
        .attribute(
            Attribute::new(attr::ASSETS, Type::map(Type::String))
                .required()
                .sensitive()
                .description("`selfhosted_cluster_assets.<name>.assets`."),
        )
        .attribute(
            Attribute::nested(attr::CONTROLLERS, ObjectNesting::List, host_attributes())
                .required()
                .description(
                    "Controller hosts, in the order of `etcd_servers`; the first runs the bootstrap control plane. \
                     More can be added (each joins etcd as a learner, promoted once in sync); a new machine may take \
                     a controller's place under a new name, one per apply; controllers leave from the end of the list (a shrink: \
                     their etcd members and nodes are removed, their hosts cleared).",
                ),
        )
        .attribute(
            Attribute::nested(attr::WORKERS, ObjectNesting::List, host_attributes())
                .optional()
                .description("Worker hosts."),
        )
        .attribute(
            Attribute::nested(attr::SSH, ObjectNesting::Single, ssh)
                .required()
                .description("How to reach the hosts."),
        )
        .attribute(opt(
            attr::API_ACCESS,
            Type::String,
            "`tunnel` (default): reach the API through an SSH tunnel to the first controller, so runners behind NAT work; `direct`: dial the first controller's address.",
        ))
        .attribute(
            Attribute::nested(attr::TIMEOUTS, ObjectNesting::Single, timeouts)
                .optional()
                .description("Deadlines of the operations."),
        )
        .attribute(
            Attribute::nested(attr::PATHS, ObjectNesting::Single, paths)
                .optional()
                .description("Remote paths. Only `state_dir` may differ from the node contract's paths (`node` of `selfhosted_cluster_assets`)."),
        )
        .attribute(opt(
            attr::ON_DESTROY,
            Type::String,
            "`keep` (default): destroying this resource never harms the cluster; `teardown`: remove this provider's files from the hosts.",
        ))
        .attribute(opt(
            attr::ETCD_SNAPSHOT_DIR,
            Type::String,
            "A folder on the machine running Terraform that also keeps the etcd snapshot each update takes before it changes anything (files `etcd-<UTC time>-r<revision>.db`, 0600; the folder is made 0700 if missing; none is ever removed here). The snapshot holds every Secret of the cluster: keep the folder private. Without it, snapshots are kept only on the controller that took them, under `<state_dir>/etcd-snapshots/` (the newest 3).",
        ))
        .attribute(opt(
            attr::KUBELET_MAX_UNAVAILABLE,
            Type::Number,
            "How many workers' nodes an update may have cordoned at once while their kubelets move to a new version (`kubernetes_version`): drained, moved and awaited Ready together. Default 1. Controllers always move one at a time, before the workers.",
        ))
        .attribute(opt(
            attr::CONVERGE_TRIGGER,
            Type::String,
            "Any change of this value makes the next apply run an update (a snapshot, node secrets, every manifest applied and awaited) though nothing else changed: after restoring etcd from a snapshot, or to put back objects changed by hand. E.g. the date of the restore.",
        ))
        .attribute(opt(
            attr::CHECK_HOSTS_ON_REFRESH,
            Type::Bool,
            "Whether a refresh (every `terraform plan` and `apply` unless `-refresh=false`) logs in to the hosts and checks them: node secrets missing or changed (a wiped or replaced disk) make the plan show an update that delivers them again; an etcd member that does not answer, has no leader or raises an alarm is named in a warning; a controller serving from its recovery apiserver for over a minute is named, and the plan shows the update that applies the control plane again. Reads only. Default `false`: a refresh never touches the network. Needs `ssh.private_key` or `ssh.agent` (a write-only key is not kept for refreshes).",
        ))
        .attribute(Attribute::new(attr::ID, Type::String).computed().description("The cluster's first controller."))
        .attribute(
            Attribute::new(attr::LEARNED_HOST_KEYS, Type::map(Type::String))
                .computed()
                .description("Host keys accepted on first use, by host name (known_hosts lines); pinned from then on."),
        )
        .attribute(Attribute::new(attr::PHASE, Type::String).computed().description("The last pivot phase completed."))
        .attribute(Attribute::new(attr::API_ENDPOINT, Type::String).computed().description("How the API was reached."))
        .attribute(
            Attribute::new(attr::APPLIED_DIGEST, Type::String)
                .computed()
                .description("Digest of the manifests applied to the cluster."),
        )
        .attribute(
            Attribute::new(attr::CONTROL_PLANE_VERSIONS, Type::map(Type::String))
                .computed()
                .description("Versions observed at the end of the pivot: `kube-apiserver` as the answering apiserver reports itself, the controller-manager's and scheduler's image tags."),
        )
        .attribute(
            Attribute::new(attr::KUBELET_VERSIONS, Type::map(Type::String))
                .computed()
                .description("Each node's kubelet version (node name → version) when the last apply verified the cluster. The plan of a `kubernetes_version` change compares against it and names, in a warning, each kubelet it will move (`from → to`) and each it cannot. An apply that cannot list the nodes keeps the last one's, with a warning."),
        )
        .attribute(
            Attribute::new(attr::ETCD_VERSIONS, Type::map(Type::String))
                .computed()
                .description("Each controller's etcd release (host name → version, as etcd reports it) when the last apply verified the cluster. The plan of an etcd image change (a `kubernetes_version` change, or `container_images[\"etcd\"]`) compares against it and names, in a warning, each member it will move (`from → to`) and each step etcd would refuse. Members that did not answer keep no entry; an apply that reaches none keeps the last one's."),
        )
        .attribute(
            Attribute::new(attr::ETCD_SNAPSHOT, Type::map(Type::String))
                .computed()
                .description("The etcd snapshot the last update took before changing anything: `host` and `path` where it is kept, `local_path` in `etcd_snapshot_dir`, `bytes`, `sha256`, `revision`, `etcd_version`, `taken_at` (RFC 3339); `pending` = `true` while the update that took it has not converged (its reruns keep this snapshot rather than take one of a half-changed cluster). Empty until the first update."),
        )
        .attribute(
            Attribute::new(attr::ASSETS_SHA256, Type::String)
                .computed()
                .description("Digest of the assets delivered; a change plans an update. Empty after a failed apply, so the next plan converges again."),
        );
    Schema::new(VERSION, block)
}
