//! Labels on nodes: the control-plane role label, which a kubelet may not set on itself
//! (it refuses to start with a `node-role.kubernetes.io/*` label), so the provider adds it
//! once the node has registered; and the list of controllers' names that the CSR approver
//! refuses to a worker's token, written before any of them registers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

pub use selfhosted_manifests::csr_approver::{CONTROLLERS_CONFIGMAP, CONTROLLERS_KEY};
pub use selfhosted_manifests::object::CONTROL_PLANE_LABEL;

/// Why labelling failed.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// The API refused the patch (e.g. the node is not registered: 404).
    #[error("labelling node {node}: {message}")]
    Patch {
        /// The node.
        node: String,
        /// The API's message.
        message: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The API refused the list of controllers.
    #[error("recording the controllers' names in ConfigMap kube-system/{CONTROLLERS_CONFIGMAP}: {message}")]
    Record {
        /// The API's message.
        message: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

/// Add (or overwrite) `labels` on node `name` with a JSON merge patch; other labels are kept.
/// Idempotent: a rerun changes nothing.
pub async fn label_node(client: &Client, name: &str, labels: &BTreeMap<String, String>) -> Result<Node, LabelError> {
    let api: Api<Node> = Api::all(client.clone());
    let patch = serde_json::json!({ "metadata": { "labels": labels } });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| LabelError::Patch {
            node: name.to_owned(),
            message: crate::retry::api_message(&source),
            source,
        })
}

/// Mark node `name` as a control-plane node ([`CONTROL_PLANE_LABEL`]`=""`).
pub async fn label_control_plane(client: &Client, name: &str) -> Result<Node, LabelError> {
    label_node(
        client,
        name,
        &BTreeMap::from([(CONTROL_PLANE_LABEL.to_owned(), String::new())]),
    )
    .await
}

/// Takes [`CONTROL_PLANE_LABEL`] off node `name` (a controller that leaves: the control
/// plane's DaemonSets stop their pods there). `false` when there is no such node.
pub async fn unlabel_control_plane(client: &Client, name: &str) -> Result<bool, LabelError> {
    let api: Api<Node> = Api::all(client.clone());
    let patch = serde_json::json!({ "metadata": { "labels": { CONTROL_PLANE_LABEL: null } } });
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(source) => Err(LabelError::Patch {
            node: name.to_owned(),
            message: crate::retry::api_message(&source),
            source,
        }),
    }
}

/// Record `names` as the controllers (the ConfigMap [`CONTROLLERS_CONFIGMAP`] in kube-system),
/// so the CSR approver never grants a worker's token one of these names, even before the
/// controller registers. Server-side apply: idempotent, and the list is replaced whole.
pub async fn record_controllers(client: &Client, names: &[&str]) -> Result<ConfigMap, LabelError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), selfhosted_manifests::object::NAMESPACE);
    let mut list = names.join("\n");
    list.push('\n');
    let map = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONTROLLERS_CONFIGMAP,
            "labels": { selfhosted_manifests::object::MANAGED_BY_KEY: selfhosted_manifests::object::MANAGED_BY }
        },
        "data": { CONTROLLERS_KEY: list }
    });
    let params = PatchParams::apply(crate::FIELD_MANAGER).force();
    api.patch(CONTROLLERS_CONFIGMAP, &params, &Patch::Apply(&map))
        .await
        .map_err(|source| LabelError::Record {
            message: crate::retry::api_message(&source),
            source,
        })
}
