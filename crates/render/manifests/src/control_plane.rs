//! The control plane twice: the bootstrap static Pods (credentials from a hostPath folder)
//! and the self-hosted kube-apiserver DaemonSet, kube-controller-manager and kube-scheduler
//! Deployments with their accounts, RBAC and disruption budgets.
//!
//! Both apiservers bind the same port with `--permit-port-sharing` as the same user (root;
//! SO_REUSEPORT is per user), each with its own serving certificate so the pivot can tell
//! from the peer certificate which one answered. The bootstrap controller-manager and
//! scheduler serve no port, so their self-hosted successors can bind 10257/10259.

pub use crate::host::paths::{BOOTSTRAP_SECRETS_DIR, RECOVERY_SECRETS_DIR};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::images::image;
use crate::kubelet::STATIC_POD_PATH;
use crate::object::{
    apiserver_env, cluster_role_binding, controller_selector, controller_tolerations, group_subject, merge_flags, meta,
    pdb, sa_subject, service_account, spread, NAMESPACE,
};
use crate::params::{Component, ManifestParams};

/// File name of the recovery apiserver's static Pod in the kubelet's static pod folder.
pub const RECOVERY_MANIFEST: &str = "kube-apiserver-recovery.yaml";
/// The common name of the self-hosted apiserver's serving certificate (`tls/apiserver.crt`;
/// the bootstrap and recovery apiservers serve another name): the recovery pod's hand-back
/// accepts any certificate the cluster CA issued to it, so renewals need no new manifest.
pub const SELF_HOSTED_APISERVER_NAME: &str = "kube-apiserver";
/// Annotation of the recovery static Pod that `selfhosted-agent hand-back` rewrites to have
/// the kubelet replace the pod (the agent's `recovery::ROUND_ANNOTATION`).
pub const RECOVERY_ROUND_ANNOTATION: &str = "selfhosted.dev/recovery-round";
/// Where the self-hosted components mount their Secret.
pub const SECRETS_MOUNT: &str = "/etc/kubernetes/secrets";
/// Name of the self-hosted apiserver's Secret.
pub const APISERVER_SECRET: &str = "kube-apiserver";
/// Name of the self-hosted controller-manager's Secret.
pub const CONTROLLER_MANAGER_SECRET: &str = "kube-controller-manager";
/// Secure port of kube-controller-manager.
pub const CONTROLLER_MANAGER_PORT: u16 = 10257;
/// Secure port of kube-scheduler.
pub const SCHEDULER_PORT: u16 = 10259;
/// Pod-template annotation carrying [`ManifestParams::credentials_revision`].
pub const CREDENTIALS_REVISION_ANNOTATION: &str = "selfhosted.dev/credentials-revision";
/// Label key carrying the apiserver generation (blue/green upgrades).
pub const GENERATION_LABEL: &str = "app.kubernetes.io/instance";
/// User id both apiservers run as (must be equal for port sharing).
pub const APISERVER_UID: i64 = 0;
/// The common name of the front-proxy client certificate (`selfhosted_pki`'s
/// `front-proxy-client`): the only name the apiservers accept request headers
/// (`X-Remote-User`, …) from (`--requestheader-allowed-names`).
pub const FRONT_PROXY_CLIENT_CN: &str = "front-proxy-client";
/// The group (subject O) of the apiserver's kubelet client certificate (`selfhosted_pki`'s
/// `apiserver-kubelet-client`), bound to the ClusterRole `system:kubelet-api-admin`: what
/// the apiserver needs of kubelets (logs, exec, port-forward, metrics), and nothing of the
/// API, unlike `system:masters`, which RBAC cannot revoke.
pub const KUBELET_CLIENT_GROUP: &str = "selfhosted:apiserver-kubelet-clients";

/// Which apiserver a flag set is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Apiserver {
    Bootstrap,
    SelfHosted,
    Recovery,
}

/// How an apiserver keeps the `default/kubernetes` Endpoints (and its EndpointSlice).
///
/// The self-hosted apiservers reconcile with leases (`lease`, the default, said explicitly):
/// each one keeps a lease of its address in etcd and writes the address of every live lease,
/// and one that stops removes its own address. The short-lived apiservers — the bootstrap one
/// of the pivot and the recovery one after a reboot — share that address (and port) with the
/// self-hosted apiserver of their controller, so their exit would remove the address the
/// self-hosted one still serves, leaving the Service without it until the survivor's next
/// reconcile (every 10 s; on one controller the list was empty for 5.6–6.2 s). They do not
/// reconcile at all (`none`): the Service is theirs to create (that does not depend on the
/// reconciler), its endpoints are the self-hosted apiservers' alone. What that means before
/// a self-hosted apiserver runs is in `docs/guides/disaster-recovery.md`.
fn endpoint_reconciler(which: Apiserver) -> &'static str {
    match which {
        Apiserver::SelfHosted => "lease",
        Apiserver::Bootstrap | Apiserver::Recovery => "none",
    }
}

/// How long a self-hosted apiserver keeps serving after SIGTERM while its `/readyz` fails
/// (`--shutdown-delay-duration`), so that a load balancer checking `/readyz` takes it out
/// before its listener closes. Without it, an OS reboot of one controller of three closed
/// the listener at once, and a connection the load balancer had just sent there was answered
/// `503 apiserver is shutting down` (the lane measured it). 5 s covers a check every second
/// that fails twice (the lane's HAProxy); a slower check needs more, set through
/// `--shutdown-delay-duration` in the apiserver's extra flags. The bootstrap and recovery
/// apiservers hand over through the shared port instead, and stop at once.
const SHUTDOWN_DELAY_SECONDS: u32 = 5;

fn apiserver_flags(p: &ManifestParams, which: Apiserver) -> Vec<String> {
    let (dir, serving) = match which {
        Apiserver::Bootstrap => (BOOTSTRAP_SECRETS_DIR, "bootstrap-apiserver"),
        Apiserver::SelfHosted => (SECRETS_MOUNT, "apiserver"),
        Apiserver::Recovery => (RECOVERY_SECRETS_DIR, "recovery-apiserver"),
    };
    let etcd = p
        .etcd_servers
        .iter()
        .map(|e| format!("https://{}:2379", bracket(e)))
        .collect::<Vec<_>>()
        .join(",");
    let mut f = vec![
        "--advertise-address=$(POD_IP)".to_string(),
        "--allow-privileged=true".into(),
        "--authorization-mode=Node,RBAC".into(),
        format!("--client-ca-file={dir}/ca.crt"),
        "--enable-admission-plugins=NodeRestriction".into(),
        "--enable-bootstrap-token-auth=true".into(),
        format!("--endpoint-reconciler-type={}", endpoint_reconciler(which)),
        format!("--etcd-cafile={dir}/etcd-ca.crt"),
        format!("--etcd-certfile={dir}/etcd-client.crt"),
        format!("--etcd-keyfile={dir}/etcd-client.key"),
        format!("--etcd-servers={etcd}"),
    ];
    if p.row().insecure_port_flags {
        f.push("--insecure-port=0".into());
    }
    f.extend([
        format!("--kubelet-client-certificate={dir}/apiserver-kubelet-client.crt"),
        format!("--kubelet-client-key={dir}/apiserver-kubelet-client.key"),
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname".into(),
        "--permit-port-sharing=true".into(),
        format!("--proxy-client-cert-file={dir}/front-proxy-client.crt"),
        format!("--proxy-client-key-file={dir}/front-proxy-client.key"),
        // Without it, any certificate of the front-proxy CA could assert any user and group.
        format!("--requestheader-allowed-names={FRONT_PROXY_CLIENT_CN}"),
        format!("--requestheader-client-ca-file={dir}/front-proxy-ca.crt"),
        "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
        "--requestheader-group-headers=X-Remote-Group".into(),
        "--requestheader-username-headers=X-Remote-User".into(),
        format!("--secure-port={}", p.api_server_port),
    ]);
    if which == Apiserver::SelfHosted {
        f.push(format!("--shutdown-delay-duration={SHUTDOWN_DELAY_SECONDS}s"));
    }
    f.extend([
        format!(
            "--service-account-issuer=https://kubernetes.default.svc.{}",
            p.cluster_domain_suffix
        ),
        format!("--service-account-key-file={dir}/service-account.pub"),
        format!("--service-account-signing-key-file={dir}/service-account.key"),
        format!("--service-cluster-ip-range={}", p.service_cidr),
        format!("--tls-cert-file={dir}/{serving}.crt"),
        format!("--tls-private-key-file={dir}/{serving}.key"),
    ]);
    merge_flags(p, Component::KubeApiserver, f)
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn pod_ip_env() -> Value {
    json!([{ "name": "POD_IP", "valueFrom": { "fieldRef": { "fieldPath": "status.podIP" } } }])
}

fn apiserver_probes(p: &ManifestParams) -> (Value, Value) {
    let live = json!({
        "httpGet": { "path": "/livez", "port": p.api_server_port, "scheme": "HTTPS" },
        "initialDelaySeconds": 15, "periodSeconds": 10, "timeoutSeconds": 15, "failureThreshold": 8
    });
    let ready = json!({
        "httpGet": { "path": "/readyz", "port": p.api_server_port, "scheme": "HTTPS" },
        "periodSeconds": 5, "timeoutSeconds": 15, "failureThreshold": 3
    });
    (live, ready)
}

/// The init container that attaches the reuseport gate (`selfhosted-agent gate`) to the
/// apiserver port before the apiserver joins it: while an older apiserver serves there, it
/// keeps every connection but loopback ones, so this apiserver takes no client before it
/// serves, and takes them all at once when the older one leaves. Same user as the
/// apiservers (a reuseport group is per user), with no capability and no privilege: binding
/// the apiserver's (unprivileged) port and attaching a classic BPF program need none. The
/// host sets `net.ipv4.tcp_migrate_req`, which moves connections queued on a closing
/// listener on (the provider delivers it to every controller before the kubelet starts).
fn reuseport_gate(p: &ManifestParams, apiserver_flags: &[String]) -> Value {
    let mut command = vec![
        "selfhosted-agent".to_string(),
        "gate".into(),
        "--port".into(),
        p.api_server_port.to_string(),
    ];
    if let Some(address) = apiserver_flags.iter().find_map(|f| f.strip_prefix("--bind-address=")) {
        command.extend(["--address".into(), address.to_string()]);
    }
    json!({
        "name": "reuseport-gate",
        "image": image(p, Component::Agent),
        "command": command,
        "securityContext": agent_security()
    })
}

/// Every agent container's: no capability, no privilege escalation, nothing written but its
/// mounts. Within the apiserver pods' user (root, for the reuseport group), that still lets
/// the hand-back rewrite the recovery manifest and read the CA, files root owns; it needs no
/// capability to override a file's permissions.
fn agent_security() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": { "drop": ["ALL"] }
    })
}

/// The apiserver user: root for both apiservers (SO_REUSEPORT is per user).
fn apiserver_security() -> Value {
    json!({ "runAsUser": APISERVER_UID, "runAsGroup": APISERVER_UID, "runAsNonRoot": false,
            "seccompProfile": { "type": "RuntimeDefault" } })
}

fn kcm_flags(p: &ManifestParams, bootstrap: bool) -> Vec<String> {
    let (dir, kubeconfig) = if bootstrap {
        (
            BOOTSTRAP_SECRETS_DIR,
            format!("{BOOTSTRAP_SECRETS_DIR}/controller-manager.kubeconfig"),
        )
    } else {
        (SECRETS_MOUNT, format!("{SECRETS_MOUNT}/kubeconfig"))
    };
    let mut f = vec!["--allocate-node-cidrs=true".to_string()];
    if !bootstrap {
        f.push(format!("--authentication-kubeconfig={kubeconfig}"));
        f.push(format!("--authorization-kubeconfig={kubeconfig}"));
    }
    f.extend([
        format!("--cluster-cidr={}", p.pod_cidr),
        format!("--cluster-name={}", p.cluster_name),
        format!("--cluster-signing-cert-file={dir}/ca.crt"),
        format!("--cluster-signing-key-file={dir}/ca.key"),
        "--controllers=*,bootstrapsigner,tokencleaner".into(),
        format!("--kubeconfig={kubeconfig}"),
        "--leader-elect=true".into(),
    ]);
    if !bootstrap {
        // A rollout starts the new pod beside the old one on the same port (see `deploy`).
        f.push("--permit-port-sharing=true".into());
    }
    if p.row().insecure_port_flags {
        f.push("--port=0".into());
    }
    f.extend([
        format!("--root-ca-file={dir}/ca.crt"),
        format!("--secure-port={}", if bootstrap { 0 } else { CONTROLLER_MANAGER_PORT }),
        format!("--service-account-private-key-file={dir}/service-account.key"),
        format!("--service-cluster-ip-range={}", p.service_cidr),
        "--use-service-account-credentials=true".into(),
    ]);
    merge_flags(p, Component::KubeControllerManager, f)
}

fn scheduler_flags(p: &ManifestParams, bootstrap: bool) -> Vec<String> {
    let mut f = Vec::new();
    if bootstrap {
        f.push(format!("--kubeconfig={BOOTSTRAP_SECRETS_DIR}/scheduler.kubeconfig"));
    }
    f.push("--leader-elect=true".to_string());
    if !bootstrap {
        f.push("--permit-port-sharing=true".into());
    }
    if p.row().insecure_port_flags {
        f.push("--port=0".into());
    }
    f.push(format!("--secure-port={}", if bootstrap { 0 } else { SCHEDULER_PORT }));
    merge_flags(p, Component::KubeScheduler, f)
}

fn host_secrets_volume() -> Value {
    json!({ "name": "secrets", "hostPath": { "path": BOOTSTRAP_SECRETS_DIR, "type": "Directory" } })
}

fn secrets_mount() -> Value {
    json!({ "name": "secrets", "mountPath": SECRETS_MOUNT, "readOnly": true })
}

fn bootstrap_mount() -> Value {
    json!({ "name": "secrets", "mountPath": BOOTSTRAP_SECRETS_DIR, "readOnly": true })
}

fn static_pod(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(name, Some(NAMESPACE), &[("k8s-app", name), ("tier", "control-plane")]),
        "spec": spec
    })
}

/// The apiserver container of a static Pod, its credentials from the host (`mount`).
fn static_apiserver(p: &ManifestParams, flags: Vec<String>, mount: Value) -> Value {
    let (live, ready) = apiserver_probes(p);
    json!({
        "name": "kube-apiserver",
        "image": image(p, Component::KubeApiserver),
        "command": ["kube-apiserver"],
        "args": flags,
        "env": pod_ip_env(),
        "livenessProbe": live,
        "readinessProbe": ready,
        "volumeMounts": [mount]
    })
}

/// The three bootstrap static Pods, `(file name, object)`.
pub fn bootstrap_pods(p: &ManifestParams) -> Vec<(String, Value)> {
    let flags = apiserver_flags(p, Apiserver::Bootstrap);
    let apiserver = static_pod(
        "bootstrap-kube-apiserver",
        json!({
            "hostNetwork": true,
            "priorityClassName": "system-node-critical",
            "securityContext": apiserver_security(),
            "initContainers": [reuseport_gate(p, &flags)],
            "containers": [static_apiserver(p, flags, bootstrap_mount())],
            "volumes": [host_secrets_volume()]
        }),
    );
    let kcm = static_pod(
        "bootstrap-kube-controller-manager",
        json!({
            "hostNetwork": true,
            "priorityClassName": "system-node-critical",
            "containers": [{
                "name": "kube-controller-manager",
                "image": image(p, Component::KubeControllerManager),
                "command": ["kube-controller-manager"],
                "args": kcm_flags(p, true),
                "volumeMounts": [bootstrap_mount()]
            }],
            "volumes": [host_secrets_volume()]
        }),
    );
    let sched = static_pod(
        "bootstrap-kube-scheduler",
        json!({
            "hostNetwork": true,
            "priorityClassName": "system-node-critical",
            "containers": [{
                "name": "kube-scheduler",
                "image": image(p, Component::KubeScheduler),
                "command": ["kube-scheduler"],
                "args": scheduler_flags(p, true),
                "volumeMounts": [bootstrap_mount()]
            }],
            "volumes": [host_secrets_volume()]
        }),
    );
    vec![
        ("bootstrap-manifests/bootstrap-kube-apiserver.yaml".into(), apiserver),
        ("bootstrap-manifests/bootstrap-kube-controller-manager.yaml".into(), kcm),
        ("bootstrap-manifests/bootstrap-kube-scheduler.yaml".into(), sched),
    ]
}

/// The recovery apiserver's static Pod for every controller, `(file name, object)`: it
/// brings the API back after a reboot by itself (see `docs/guides/disaster-recovery.md`).
///
/// - `standby` (init) waits while any apiserver listens on the port, so the pod serves only
///   when none runs on the host: after a reboot, or when the self-hosted one is gone.
/// - `reuseport-gate` (init) as in every apiserver pod, so the self-hosted apiserver that the
///   kubelet starts again beside it takes no client before it serves.
/// - `kube-apiserver`: the current flags and version, credentials from
///   [`RECOVERY_SECRETS_DIR`], serving the bootstrap apiserver's certificate.
/// - `hand-back` waits until the self-hosted apiserver answers `/readyz` with a certificate the
///   cluster CA issued to [`SELF_HOSTED_APISERVER_NAME`] (through loopback, which the gate sends to the newest apiserver, and through
///   the host address, which reaches the oldest) in every round for 15 s with the same
///   listeners on the port (a restart starts the 15 s again), then rewrites this pod's
///   [`RECOVERY_ROUND_ANNOTATION`] unless the provider rewrote the manifest meanwhile: the
///   kubelet replaces the pod, and the new one stands by. The provider's `verify` fails an
///   apply while a controller's recovery pod still serves.
pub fn recovery_pod(p: &ManifestParams) -> (String, Value) {
    let flags = apiserver_flags(p, Apiserver::Recovery);
    let port = p.api_server_port.to_string();
    let agent = |name: &str, command: Vec<String>| json!({ "name": name, "image": image(p, Component::Agent), "command": command, "securityContext": agent_security() });
    let standby = agent(
        "standby",
        vec![
            "selfhosted-agent".into(),
            "standby".into(),
            "--port".into(),
            port.clone(),
        ],
    );
    let mut hand_back = agent(
        "hand-back",
        [
            "selfhosted-agent",
            "hand-back",
            "--port",
            &port,
            "--ca",
            &format!("{RECOVERY_SECRETS_DIR}/ca.crt"),
            "--name",
            SELF_HOSTED_APISERVER_NAME,
            "--manifest",
            &format!("{STATIC_POD_PATH}/{RECOVERY_MANIFEST}"),
            "--via",
            "::1",
            "--via",
            "127.0.0.1",
            "--via",
            "$(POD_IP)",
        ]
        .map(String::from)
        .to_vec(),
    );
    hand_back["env"] = pod_ip_env();
    let recovery_mount = json!({ "name": "secrets", "mountPath": RECOVERY_SECRETS_DIR, "readOnly": true });
    hand_back["volumeMounts"] = json!([recovery_mount, { "name": "static-pods", "mountPath": STATIC_POD_PATH }]);
    let mut pod = static_pod(
        "kube-apiserver-recovery",
        json!({
            "hostNetwork": true,
            "priorityClassName": "system-node-critical",
            "securityContext": apiserver_security(),
            "initContainers": [standby, reuseport_gate(p, &flags)],
            "containers": [static_apiserver(p, flags, recovery_mount), hand_back],
            "volumes": [
                { "name": "secrets", "hostPath": { "path": RECOVERY_SECRETS_DIR, "type": "Directory" } },
                { "name": "static-pods", "hostPath": { "path": STATIC_POD_PATH, "type": "Directory" } }
            ]
        }),
    );
    pod["metadata"]["annotations"] = json!({ RECOVERY_ROUND_ANNOTATION: "0" });
    (format!("recovery-manifests/{RECOVERY_MANIFEST}"), pod)
}

/// The self-hosted apiserver's pod template without its generation labels.
fn apiserver_pod_spec(p: &ManifestParams) -> Value {
    let (live, ready) = apiserver_probes(p);
    let flags = apiserver_flags(p, Apiserver::SelfHosted);
    json!({
        "hostNetwork": true,
        "nodeSelector": controller_selector(),
        "tolerations": controller_tolerations(),
        "priorityClassName": "system-cluster-critical",
        "serviceAccountName": "kube-apiserver",
        "automountServiceAccountToken": false,
        "securityContext": apiserver_security(),
        "initContainers": [reuseport_gate(p, &flags)],
        "containers": [{
            "name": "kube-apiserver",
            "image": image(p, Component::KubeApiserver),
            "command": ["kube-apiserver"],
            "args": flags,
            "env": pod_ip_env(),
            "livenessProbe": live,
            "readinessProbe": ready,
            "resources": { "requests": { "cpu": "150m", "memory": "256Mi" } },
            "volumeMounts": [secrets_mount()]
        }],
        "volumes": [{ "name": "secrets", "secret": { "secretName": APISERVER_SECRET, "defaultMode": 0o400 } }],
        "terminationGracePeriodSeconds": termination_grace(&flags)
    })
}

/// The pod's grace period: the shutdown delay (a user's, when set) plus the 30 s Kubernetes
/// gives by default to drain in-flight requests, so a long delay is not cut by SIGKILL.
fn termination_grace(flags: &[String]) -> u64 {
    let delay = flags
        .iter()
        .find_map(|f| f.strip_prefix("--shutdown-delay-duration="))
        .and_then(|d| humantime::parse_duration(d).ok())
        .map_or(0, |d| d.as_secs());
    delay + 30
}

/// The apiserver generation: version plus a digest of the pod template, so any change
/// of the apiserver pod yields a new DaemonSet name (blue/green hand-over) and an
/// unchanged input keeps the name.
pub fn apiserver_generation(p: &ManifestParams) -> String {
    let spec = apiserver_pod_spec(p);
    // Canonical (sorted) form, so the name does not depend on map ordering features.
    let mut hasher = Sha256::new();
    hasher.update(crate::object::to_yaml(&spec).unwrap_or_default());
    if !p.credentials_revision.is_empty() {
        hasher.update(b"\0credentials-revision=");
        hasher.update(p.credentials_revision.as_bytes());
    }
    let digest = hasher.finalize();
    let hex = hex::encode(&digest[..4]);
    format!("v1-{}-{}-{hex}", p.kubernetes_version.minor, p.kubernetes_version.patch)
}

/// Pod-template metadata: `labels`, and the credentials revision when there is one, so a
/// renewal changes the template and the workload rolls.
fn template_metadata(p: &ManifestParams, labels: Value) -> Value {
    let mut meta = json!({ "labels": labels });
    if !p.credentials_revision.is_empty() {
        meta["annotations"] = json!({ CREDENTIALS_REVISION_ANNOTATION: p.credentials_revision });
    }
    meta
}

/// The self-hosted control plane objects (no key material).
pub fn self_hosted(p: &ManifestParams) -> Vec<Value> {
    let gen = apiserver_generation(p);
    let ds_name = format!("kube-apiserver-{gen}");
    let selector = json!({ "k8s-app": "kube-apiserver", GENERATION_LABEL: ds_name });
    let mut strategy = json!({ "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 1 } });
    if p.row().daemonset_max_surge {
        // Explicit: a surge pod could not bind beside the old one on a controller it
        // shares with; upgrades are blue/green across generations instead.
        strategy["rollingUpdate"]["maxSurge"] = json!(0);
    }
    let apiserver = json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta(&ds_name, Some(NAMESPACE), &[("k8s-app", "kube-apiserver"), (GENERATION_LABEL, &ds_name), ("tier", "control-plane")]),
        "spec": {
            "selector": { "matchLabels": selector },
            "updateStrategy": strategy,
            "template": {
                "metadata": template_metadata(p, json!({ "k8s-app": "kube-apiserver", GENERATION_LABEL: ds_name, "tier": "control-plane" })),
                "spec": apiserver_pod_spec(p)
            }
        }
    });

    let replicas = p.controller_replicas();
    let deploy = |name: &str, spec: Value| {
        let labels = json!({ "k8s-app": name, "tier": "control-plane" });
        let mut pod_spec = spec;
        pod_spec["affinity"] = spread(&json!({ "k8s-app": name }));
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(name, Some(NAMESPACE), &[("k8s-app", name), ("tier", "control-plane")]),
            "spec": {
                "replicas": replicas,
                "selector": { "matchLabels": { "k8s-app": name } },
                // Surge, never replace: replacing the only scheduler (or controller-manager)
                // leaves nothing to schedule (or create) its successor. The new pod starts
                // beside the old one and shares its port (`--permit-port-sharing`, no
                // declared host port); leader election keeps one active.
                "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } },
                "template": { "metadata": template_metadata(p, labels), "spec": pod_spec }
            }
        })
    };
    let nonroot = json!({ "runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 65534,
                          "seccompProfile": { "type": "RuntimeDefault" } });
    let kcm = deploy(
        "kube-controller-manager",
        json!({
            "hostNetwork": true,
            "nodeSelector": controller_selector(),
            "tolerations": controller_tolerations(),
            "priorityClassName": "system-cluster-critical",
            "serviceAccountName": "kube-controller-manager",
            "automountServiceAccountToken": false,
            "securityContext": nonroot,
            "containers": [{
                "name": "kube-controller-manager",
                "image": image(p, Component::KubeControllerManager),
                "command": ["kube-controller-manager"],
                "args": kcm_flags(p, false),
                "livenessProbe": {
                    "httpGet": { "path": "/healthz", "port": CONTROLLER_MANAGER_PORT, "scheme": "HTTPS" },
                    "initialDelaySeconds": 15, "periodSeconds": 10, "timeoutSeconds": 15, "failureThreshold": 8
                },
                "resources": { "requests": { "cpu": "100m", "memory": "128Mi" } },
                "volumeMounts": [secrets_mount()]
            }],
            "volumes": [{ "name": "secrets", "secret": { "secretName": CONTROLLER_MANAGER_SECRET, "defaultMode": 0o440 } }]
        }),
    );
    let sched = deploy(
        "kube-scheduler",
        json!({
            "hostNetwork": true,
            "nodeSelector": controller_selector(),
            "tolerations": controller_tolerations(),
            "priorityClassName": "system-cluster-critical",
            "serviceAccountName": "kube-scheduler",
            "securityContext": nonroot,
            "containers": [{
                "name": "kube-scheduler",
                "image": image(p, Component::KubeScheduler),
                "command": ["kube-scheduler"],
                "args": scheduler_flags(p, false),
                // hostNetwork on a controller: reach the local apiserver, never through
                // a Service that needs kube-proxy.
                "env": apiserver_env("127.0.0.1", p.api_server_port),
                "livenessProbe": {
                    "httpGet": { "path": "/healthz", "port": SCHEDULER_PORT, "scheme": "HTTPS" },
                    "initialDelaySeconds": 15, "periodSeconds": 10, "timeoutSeconds": 15, "failureThreshold": 8
                },
                "resources": { "requests": { "cpu": "100m", "memory": "64Mi" } }
            }]
        }),
    );

    vec![
        service_account("kube-apiserver", false),
        service_account("kube-controller-manager", false),
        service_account("kube-scheduler", true),
        cluster_role_binding(
            "selfhosted:kube-scheduler",
            "system:kube-scheduler",
            sa_subject("kube-scheduler"),
        ),
        cluster_role_binding(
            "selfhosted:volume-scheduler",
            "system:volume-scheduler",
            sa_subject("kube-scheduler"),
        ),
        // The apiserver's kubelet client (logs, exec, port-forward, metrics through kubelets).
        cluster_role_binding(
            "selfhosted:apiserver-kubelet-api-admin",
            "system:kubelet-api-admin",
            group_subject(KUBELET_CLIENT_GROUP),
        ),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta("selfhosted:kube-scheduler-authentication-reader", Some(NAMESPACE), &[]),
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "extension-apiserver-authentication-reader" },
            "subjects": sa_subject("kube-scheduler")
        }),
        pdb(
            p,
            "kube-controller-manager",
            json!({ "k8s-app": "kube-controller-manager" }),
        ),
        pdb(p, "kube-scheduler", json!({ "k8s-app": "kube-scheduler" })),
        apiserver,
        kcm,
        sched,
    ]
}
