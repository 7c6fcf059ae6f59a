//! The manifests side of the assets: the part known from the inputs alone
//! (shown in plans) and the Secrets, which need the key material.

use std::collections::BTreeMap;

use selfhosted_manifests::{ManifestParams, NodeContract, RenderError};
use selfhosted_pki::Assets;

/// Everything rendered from the inputs alone: known at plan time.
#[derive(Debug, Clone)]
pub struct Public {
    /// `manifests/…` without key material.
    pub manifests: BTreeMap<String, String>,
    /// `bootstrap-manifests/…` static Pods.
    pub bootstrap_manifests: BTreeMap<String, String>,
    /// `recovery-manifests/…`: the recovery apiserver's static Pod for every controller.
    pub recovery_manifests: BTreeMap<String, String>,
    /// The host side of the contract.
    pub node: NodeContract,
    /// The apiserver DaemonSet's generation.
    pub generation: String,
}

impl Public {
    /// Node contract files in the asset layout (`node/…`).
    pub fn node_files(&self) -> BTreeMap<String, String> {
        let n = &self.node;
        [
            ("node/kubelet.yaml", &n.kubelet_config),
            ("node/kubelet-controller.service", &n.controller_unit),
            ("node/kubelet-worker.service", &n.worker_unit),
            ("node/delete-node.service", &n.delete_node_unit),
            ("node/etcd-member.service", &n.etcd_unit),
            ("node/controller.bu", &n.controller_butane),
            ("node/worker.bu", &n.worker_butane),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }

    /// Every public file in the asset layout.
    pub fn files(&self) -> BTreeMap<String, String> {
        let mut out = self.manifests.clone();
        out.extend(self.bootstrap_manifests.clone());
        out.extend(self.recovery_manifests.clone());
        out.extend(self.node_files());
        out
    }
}

/// The Secrets, as far as they are known.
#[derive(Debug, Clone)]
pub enum Secrets {
    /// Rendered from known material.
    Known {
        /// `manifests/…` Secrets.
        secret_manifests: BTreeMap<String, String>,
        /// `bootstrap-secrets/…` files for the first controller.
        bootstrap_secrets: BTreeMap<String, String>,
        /// `recovery-secrets/…` files for every controller.
        recovery_secrets: BTreeMap<String, String>,
    },
    /// The material changes: the files are known, their contents are not.
    KeysOnly(Vec<String>),
    /// Nothing is known yet (the first plan).
    Unknown,
}

/// Renders what the inputs alone decide.
///
/// # Errors
/// A render failure (an extra manifest repeating one of ours).
pub fn public(p: &ManifestParams) -> Result<Public, RenderError> {
    let mut bootstrap_manifests = BTreeMap::new();
    for (file, pod) in selfhosted_manifests::control_plane::bootstrap_pods(p) {
        bootstrap_manifests.insert(file, selfhosted_manifests::object::to_yaml(&pod)?);
    }
    let (file, pod) = selfhosted_manifests::control_plane::recovery_pod(p);
    let recovery_manifests = BTreeMap::from([(file, selfhosted_manifests::object::to_yaml(&pod)?)]);
    Ok(Public {
        manifests: selfhosted_manifests::render_public(p)?,
        bootstrap_manifests,
        recovery_manifests,
        node: selfhosted_manifests::kubelet::contract(p)?,
        generation: selfhosted_manifests::apiserver_generation(p),
    })
}

/// Renders the Secrets from known material.
///
/// # Errors
/// Missing or malformed material.
pub fn secrets(p: &ManifestParams, material: &Assets) -> Result<Secrets, RenderError> {
    let r = selfhosted_manifests::render(p, material)?;
    Ok(Secrets::Known {
        secret_manifests: r.secret_manifests,
        bootstrap_secrets: r.bootstrap_secrets,
        recovery_secrets: r.recovery_secrets,
    })
}
