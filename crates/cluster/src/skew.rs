//! Kubernetes' version skew policy against what runs: the kubelets a new apiserver minor
//! would serve. Checked before an upgrade hands the API to the new apiserver: kubelets move
//! after the control plane, so they must be within the policy of the new apiserver first.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, Client};

use crate::apply::Manifest;

/// The Kubernetes release a workload runs, from its first container's image tag
/// (`registry.k8s.io/kube-apiserver:v1.35.4` → `v1.35.4`); `None` for a tag that is no release.
pub fn image_release(manifest: &Manifest) -> Option<&str> {
    let image = manifest
        .object
        .data
        .pointer("/spec/template/spec/containers/0/image")?
        .as_str()?;
    let (_, tag) = image.rsplit_once(':')?;
    selfhosted_manifests::versions::release_minor(tag).map(|_| tag)
}

/// The minor of [`image_release`] (→ 35).
pub fn image_minor(manifest: &Manifest) -> Option<u32> {
    selfhosted_manifests::versions::release_minor(image_release(manifest)?)
}

/// Every registered Node, by name.
pub async fn nodes(client: &Client) -> Result<BTreeMap<String, Node>, kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    Ok(nodes
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| Some((n.metadata.name.clone()?, n)))
        .collect())
}

/// Each registered node's kubelet version, by node name.
pub async fn kubelet_versions(client: &Client) -> Result<BTreeMap<String, String>, kube::Error> {
    Ok(nodes(client)
        .await?
        .iter()
        .filter_map(|(name, n)| Some((name.clone(), crate::conditions::kubelet_version(n)?.to_owned())))
        .collect())
}

/// Every node whose kubelet an apiserver of `apiserver_minor` may not serve, as
/// `node: why` lines (empty when all are within the policy).
pub async fn kubelets_out_of_skew(client: &Client, apiserver_minor: u32) -> Result<Vec<String>, kube::Error> {
    Ok(kubelet_versions(client)
        .await?
        .iter()
        .filter_map(|(name, kubelet)| {
            selfhosted_manifests::versions::kubelet_skew(apiserver_minor, kubelet)
                .err()
                .map(|why| format!("node {name}: {why}"))
        })
        .collect())
}
