//! What an upgrade does to workloads beyond applying them: wait for each
//! one's rollout by its kind, find where an old generation runs, and delete it — as a whole,
//! or (the apiserver) its DaemonSet first and then its pods one by one, reading the addresses
//! of a Service's Endpoints in between.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Endpoints, Pod};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};

use crate::apply::Manifest;
use crate::wait::{WaitError, Waiter};

/// The label that tells generations of one component apart (Kubernetes' recommended
/// `app.kubernetes.io/instance`); the rendered apiserver DaemonSets select on it.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// Why an operation on workloads failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// Listing or deleting through the API failed.
    #[error("{what}: {message}")]
    Api {
        /// What was being done.
        what: String,
        /// The API's message.
        message: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

fn api_error(what: String) -> impl FnOnce(kube::Error) -> WorkloadError {
    move |source| WorkloadError::Api {
        what,
        message: crate::retry::api_message(&source),
        source,
    }
}

/// Whether the manifest is a workload whose rollout an upgrade waits for.
pub fn is_workload(m: &Manifest) -> bool {
    m.gvk.group == "apps" && matches!(m.gvk.kind.as_str(), "DaemonSet" | "Deployment")
}

/// The label selector of a workload manifest's pods (`k=v,…`), for evidence and waits.
pub fn pod_selector(m: &Manifest) -> Option<String> {
    let labels = m
        .object
        .data
        .get("spec")?
        .get("selector")?
        .get("matchLabels")?
        .as_object()?;
    let parts: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

impl Waiter {
    /// Wait until the workload `m` (a DaemonSet or Deployment) is rolled out; other kinds
    /// have no rollout and return at once.
    pub async fn rolled_out(&self, m: &Manifest) -> Result<(), WaitError> {
        let namespace = m.object.metadata.namespace.as_deref().unwrap_or("default");
        match (m.gvk.group.as_str(), m.gvk.kind.as_str()) {
            ("apps", "DaemonSet") => self.daemonset_rolled_out(namespace, m.name()).await.map(|_| ()),
            ("apps", "Deployment") => self.deployment_rolled_out(namespace, m.name()).await.map(|_| ()),
            _ => Ok(()),
        }
    }
}

/// Where the pods matching `selector` in `namespace` run: each node, and whether a Ready
/// pod is there. An upgrade hands over only where an old pod serves.
pub async fn placements(
    client: &Client,
    namespace: &str,
    selector: &str,
) -> Result<BTreeMap<String, bool>, WorkloadError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pods = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(api_error(format!("listing pods {selector:?} in {namespace}")))?;
    let mut nodes = BTreeMap::new();
    for pod in &pods.items {
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
            *nodes.entry(node).or_insert(false) |= crate::conditions::pod_ready(pod);
        }
    }
    Ok(nodes)
}

/// What becomes of a deleted DaemonSet's pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItsPods {
    /// Deleted with it, all at once, by garbage collection.
    Go,
    /// Left running without an owner (orphaned): the caller deletes them, one at a time.
    Stay,
}

/// One pod: where it runs and what it is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedPod {
    /// The pod's name.
    pub name: String,
    /// The node it is bound to.
    pub node: String,
    /// Whether it is Ready.
    pub ready: bool,
}

/// The pods matching `selector` in `namespace` that are bound to a node, by node then name.
pub async fn placed_pods(client: &Client, namespace: &str, selector: &str) -> Result<Vec<PlacedPod>, WorkloadError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pods = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(api_error(format!("listing pods {selector:?} in {namespace}")))?;
    let mut out: Vec<PlacedPod> = pods
        .items
        .iter()
        .filter_map(|pod| {
            Some(PlacedPod {
                name: pod.metadata.name.clone()?,
                node: pod.spec.as_ref()?.node_name.clone()?,
                ready: crate::conditions::pod_ready(pod),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.node, &a.name).cmp(&(&b.node, &b.name)));
    Ok(out)
}

/// Deletes the pod `name` in `namespace` with its grace period; a pod already gone is fine.
pub async fn delete_pod(client: &Client, namespace: &str, name: &str) -> Result<(), WorkloadError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(api_error(format!("deleting pod {namespace}/{name}"))(e)),
    }
}

/// Whether the pod `name` still exists in `namespace` (terminating counts).
pub async fn pod_exists(client: &Client, namespace: &str, name: &str) -> Result<bool, WorkloadError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name)
        .await
        .map(|p| p.is_some())
        .map_err(api_error(format!("reading pod {namespace}/{name}")))
}

/// The ready addresses of the Endpoints `namespace/name` (for `default/kubernetes`: one per
/// apiserver address the apiservers' lease reconciler keeps); none when it does not exist.
pub async fn endpoint_addresses(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeSet<String>, WorkloadError> {
    let api: Api<Endpoints> = Api::namespaced(client.clone(), namespace);
    let endpoints = api
        .get_opt(name)
        .await
        .map_err(api_error(format!("reading Endpoints {namespace}/{name}")))?;
    Ok(endpoints
        .into_iter()
        .flat_map(|e| e.subsets.unwrap_or_default())
        .flat_map(|s| s.addresses.unwrap_or_default())
        .map(|a| a.ip)
        .collect())
}

/// Deletes every DaemonSet matching `selector` in `namespace` but `keep`; returns the names
/// deleted. With [`ItsPods::Go`] their pods go by garbage collection, so a caller waits for
/// them to be gone; with [`ItsPods::Stay`] they keep running, ownerless, until the caller
/// deletes them. Idempotent: a rerun finds nothing left to delete.
pub async fn delete_daemonsets_except(
    client: &Client,
    namespace: &str,
    selector: &str,
    keep: &str,
    pods: ItsPods,
) -> Result<Vec<String>, WorkloadError> {
    let params = match pods {
        ItsPods::Go => DeleteParams::background(),
        ItsPods::Stay => DeleteParams::orphan(),
    };
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(api_error(format!("listing DaemonSets {selector:?} in {namespace}")))?;
    let mut deleted = Vec::new();
    for ds in list.items {
        let Some(name) = ds.metadata.name else { continue };
        if name == keep {
            continue;
        }
        match api.delete(&name, &params).await {
            Ok(_) => deleted.push(name),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(api_error(format!("deleting DaemonSet {namespace}/{name}"))(e)),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::parse_manifests;

    fn one(yaml: &str) -> Manifest {
        let files = BTreeMap::from([("manifests/60-x.yaml".to_owned(), yaml.to_owned())]);
        parse_manifests(&files).unwrap().remove(0)
    }

    #[test]
    fn workloads_and_their_pod_selectors() {
        let ds = one("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: a, namespace: kube-system}\nspec:\n  selector:\n    matchLabels: {k8s-app: kube-apiserver, app.kubernetes.io/instance: a}\n");
        assert!(is_workload(&ds));
        assert_eq!(
            pod_selector(&ds).as_deref(),
            Some("app.kubernetes.io/instance=a,k8s-app=kube-apiserver")
        );
        let cm = one("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: kube-system}\n");
        assert!(!is_workload(&cm));
        assert_eq!(pod_selector(&cm), None);
        let job =
            one("apiVersion: batch/v1\nkind: Job\nmetadata: {name: c}\nspec: {selector: {matchLabels: {a: b}}}\n");
        assert!(!is_workload(&job), "a Job has no rollout to wait for");
    }
}
