//! Labels on nodes: the control-plane role label, which a kubelet may not set on itself
//! (it refuses to start with a `node-role.kubernetes.io/*` label), so the provider adds it
//! once the node has registered.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

/// The label that marks a control-plane node (value `""`).
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

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
