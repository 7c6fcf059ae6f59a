//! Pure rendering of a self-hosted Kubernetes control plane: the bootstrap static Pods
//! that start it, the self-hosted objects it hands over to, the Secrets both need, and the
//! node contract hosts must follow.
//!
//! No network, no disk, no clock: the same inputs give byte-identical output. The public
//! `manifests` depend on the parameters only ([`render_public`]), so a plan can show them
//! while the key material is still unknown.
//!
//! Use: [`parse_params`] turns attribute values into [`ManifestParams`] (or diagnostics
//! with attribute paths); [`render_public`] gives the plan-time `manifests`; [`render`]
//! adds everything that needs the PKI material. Keys of every map sort in apply order
//! (`manifests/NN-…`: 00 namespaces, 10 CRDs, 20/21 accounts and RBAC, 30 ConfigMaps and
//! Secrets, 40 Services, 50 PDBs, 60 kube-apiserver, 61 scheduler, 62 controller-manager,
//! 63 kube-proxy, 64 CNI, 65 CoreDNS, 80 other kinds); merge `manifests` and
//! `secret_manifests` and apply in key order. Every object carries
//! `app.kubernetes.io/managed-by: terraform-provider-selfhosted`; the self-hosted
//! apiserver DaemonSet is `kube-apiserver-<generation>` (see [`apiserver_generation`]),
//! so an apiserver change renders a new DaemonSet beside the old one (blue/green).
//!
//! Modules: [`params`] (inputs and their diagnostics), [`versions`] (the per-minor table),
//! [`control_plane`] (apiservers, controller-manager, scheduler), [`addons`] (kube-proxy,
//! CoreDNS), [`cni`] (flannel, Calico, Cilium), [`kubelet`] (TLS bootstrapping RBAC and
//! the node contract), [`csr_approver`] (the workers' kubelet certificate approver), [`service_policy`] (the `kubernetes` Service never emptied), [`secrets`] (everything with keys), [`extra`] (user documents),
//! [`object`] (labels, file order, YAML), [`images`] (image references).
#![recursion_limit = "512"]

pub mod addons;
pub mod cni;
pub mod control_plane;
pub mod csr_approver;
pub mod extra;
pub mod host;
pub mod images;
pub mod kubelet;
pub mod names;
pub mod object;
pub mod params;
pub mod secrets;
pub mod service_policy;
pub mod versions;

use std::collections::BTreeMap;

use serde_json::Value;

pub use control_plane::apiserver_generation;
pub use kubelet::NodeContract;
pub use params::{parse_params, Component, InputError, ManifestParams, Networking, PathStep, RawParams};
pub use versions::{Version, DEFAULT_VERSION};

/// Why rendering failed (inputs were already checked by [`parse_params`]).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A key of the PKI material map is missing.
    #[error("PKI material {0:?} is missing")]
    MissingMaterial(String),
    /// `auth/bootstrap-token` is not `<6 chars>.<16 chars>` of `[a-z0-9]`.
    #[error("auth/bootstrap-token is not a kubelet bootstrap token (<6 of [a-z0-9]>.<16 of [a-z0-9]>)")]
    BadBootstrapToken,
    /// Emitting YAML failed.
    #[error("emitting YAML")]
    Yaml(#[source] serde_yaml_ng::Error),
    /// Two objects map to one file (an extra manifest repeats one of ours).
    #[error("{file} would be rendered twice (extra_manifests[{source_index}] document {document} repeats an object of the same kind, namespace and name)")]
    Duplicate {
        /// The file both objects map to.
        file: String,
        /// Index of the extra_manifests element (or usize::MAX for our own objects).
        source_index: usize,
        /// Document number inside it.
        document: usize,
    },
}

/// Everything the assets resource exposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `manifests/NN-kind-namespace-name.yaml` → YAML. No key material: a function of the
    /// parameters alone; the `NN` prefix gives the apply order.
    pub manifests: BTreeMap<String, String>,
    /// Secrets carrying keys, tokens and kubeconfigs, same naming (sensitive).
    pub secret_manifests: BTreeMap<String, String>,
    /// `bootstrap-manifests/<name>.yaml` static Pods for the first controller's
    /// `/etc/kubernetes/manifests/`; they hold no secrets.
    pub bootstrap_manifests: BTreeMap<String, String>,
    /// `bootstrap-secrets/<file>` → content, for `/etc/kubernetes/bootstrap-secrets/` on
    /// the first controller (sensitive).
    pub bootstrap_secrets: BTreeMap<String, String>,
    /// `recovery-manifests/<name>.yaml`: the recovery apiserver's static Pod for every
    /// controller's static pod folder; it holds no secrets.
    pub recovery_manifests: BTreeMap<String, String>,
    /// `recovery-secrets/<file>` → content, for `/etc/kubernetes/recovery-secrets/` on every
    /// controller (sensitive).
    pub recovery_secrets: BTreeMap<String, String>,
    /// Generation suffix of the self-hosted apiserver DaemonSet (`kube-apiserver-<gen>`).
    pub apiserver_generation: String,
    /// What hosts must run.
    pub node: NodeContract,
}

fn insert(
    out: &mut BTreeMap<String, String>,
    dir: &str,
    obj: &Value,
    source: Option<(usize, usize)>,
) -> Result<(), RenderError> {
    let file = object::file_name(dir, obj);
    if out.contains_key(&file) {
        let (source_index, document) = source.unwrap_or((usize::MAX, 0));
        return Err(RenderError::Duplicate {
            file,
            source_index,
            document,
        });
    }
    out.insert(file, object::to_yaml(obj)?);
    Ok(())
}

/// The public `manifests` (no key material) and the user's extra Secrets, split.
/// User Secrets with (extra_manifests index, document number).
type ExtraSecrets = Vec<(Value, usize, usize)>;

fn public_and_extra_secrets(p: &ManifestParams) -> Result<(BTreeMap<String, String>, ExtraSecrets), RenderError> {
    let mut objs = Vec::new();
    objs.extend(kubelet::rbac(p));
    objs.extend(csr_approver::objects(p));
    objs.extend(control_plane::self_hosted(p));
    objs.extend(service_policy::objects(p));
    if p.kube_proxy {
        objs.push(addons::in_cluster_kubeconfig(p));
        objs.extend(addons::kube_proxy(p));
    }
    objs.extend(cni::objects(p));
    if p.coredns {
        objs.extend(addons::coredns(p));
    }
    let mut out = BTreeMap::new();
    for o in &objs {
        insert(&mut out, "manifests", o, None)?;
    }
    let mut secrets = Vec::new();
    // The Secrets this provider renders with key material have fixed names: a user Secret
    // that repeats one (or another user Secret) is found here, at plan, like any object.
    let mut secret_files = BTreeMap::new();
    for name in [
        control_plane::APISERVER_SECRET,
        control_plane::CONTROLLER_MANAGER_SECRET,
    ] {
        let ours = serde_json::json!({ "apiVersion": "v1", "kind": "Secret", "metadata": object::meta(name, Some(object::NAMESPACE), &[]) });
        insert(&mut secret_files, "manifests", &ours, None)?;
    }
    for e in &p.extra_manifests {
        let mut obj = e.object.clone();
        object::add_managed_label(&mut obj);
        if obj.get("kind").and_then(Value::as_str) == Some("Secret") {
            insert(&mut secret_files, "manifests", &obj, Some((e.source, e.document)))?;
            secrets.push((obj, e.source, e.document));
        } else {
            insert(&mut out, "manifests", &obj, Some((e.source, e.document)))?;
        }
    }
    Ok((out, secrets))
}

/// The public `manifests` alone: computable at plan time without any key material.
///
/// # Errors
/// [`RenderError::Duplicate`] when an extra manifest repeats one of our objects.
pub fn render_public(p: &ManifestParams) -> Result<BTreeMap<String, String>, RenderError> {
    public_and_extra_secrets(p).map(|(m, _)| m)
}

/// Render everything from checked parameters and the PKI material (keys as listed in
/// [`secrets`]: `tls/…`, `auth/…`).
///
/// # Errors
/// Missing material, a malformed bootstrap token, or a duplicate object.
pub fn render(p: &ManifestParams, material: &BTreeMap<String, String>) -> Result<Rendered, RenderError> {
    let (manifests, extra_secrets) = public_and_extra_secrets(p)?;
    let mut secret_manifests = BTreeMap::new();
    for s in secrets::cluster_secrets(material)? {
        insert(&mut secret_manifests, "manifests", &s, None)?;
    }
    for (s, source, doc) in &extra_secrets {
        insert(&mut secret_manifests, "manifests", s, Some((*source, *doc)))?;
    }
    let mut bootstrap_manifests = BTreeMap::new();
    for (file, pod) in control_plane::bootstrap_pods(p) {
        bootstrap_manifests.insert(file, object::to_yaml(&pod)?);
    }
    let (file, pod) = control_plane::recovery_pod(p);
    let recovery_manifests = BTreeMap::from([(file, object::to_yaml(&pod)?)]);
    Ok(Rendered {
        manifests,
        secret_manifests,
        bootstrap_manifests,
        bootstrap_secrets: secrets::bootstrap_files(material)?,
        recovery_manifests,
        recovery_secrets: secrets::recovery_files(material)?,
        apiserver_generation: control_plane::apiserver_generation(p),
        node: kubelet::contract(p)?,
    })
}
