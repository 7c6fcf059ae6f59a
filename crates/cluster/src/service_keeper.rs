//! Keeps the `default/kubernetes` Service from going empty while an apiserver hands over to
//! another on the same address.
//!
//! Both generations of a hand-over advertise their controller's address. The one that stops
//! removes it from the Service as its lease reconciler's last act (upstream's rule, kept even
//! when it is the last address), and the one that stays writes it again only at its next
//! reconcile, up to 10 s later. On one controller the list is empty meanwhile, and kube-proxy
//! refuses every in-cluster client of the Service IP (issue 22 measured 6.3 s). The keeper
//! looks every [`EVERY`] and, finding no address, writes back the addresses it saw when it
//! started, in both the Endpoints and the EndpointSlice. The reconcilers would write the same
//! (an apiserver still serves there), so nothing undoes it; a list that still holds an address
//! is never touched.

use std::time::Duration;

use k8s_openapi::api::core::v1::{EndpointSubset, Endpoints};
use kube::api::PostParams;
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use kube::{Api, Client};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// How often the keeper looks. kube-proxy syncs its rules at most once a second, so an empty
/// list that lasts less than that is usually never seen by clients.
pub const EVERY: Duration = Duration::from_millis(100);

/// The Service whose addresses are kept.
const NAMESPACE: &str = "default";
const NAME: &str = "kubernetes";

/// The EndpointSlice APIs the keeper can write, newest first (v1beta1: Kubernetes 1.20).
const SLICE_VERSIONS: [&str; 2] = ["v1", "v1beta1"];

/// A running keeper; dropping it stops it.
pub struct Keeper {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<usize>>,
}

/// What the Service held when the keeper started.
struct Held {
    subsets: Vec<EndpointSubset>,
    /// The EndpointSlice's API and its `endpoints` and `ports`, when it had a ready address.
    slice: Option<(Api<DynamicObject>, Value, Value)>,
}

impl Keeper {
    /// Starts keeping what the Service holds now. `None` when it holds no address (nothing
    /// to keep) or could not be read: the hand-over goes on as it would without a keeper.
    pub async fn start(client: &Client) -> Option<Keeper> {
        let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), NAMESPACE);
        let subsets = match endpoints.get_opt(NAME).await {
            Ok(Some(e)) if addresses(&e) > 0 => e.subsets.unwrap_or_default(),
            Ok(_) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "reading the kubernetes Service's Endpoints; not kept");
                return None;
            }
        };
        let held = Held {
            subsets,
            slice: held_slice(client).await,
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(keep(endpoints, held, stop.clone()));
        Some(Keeper { stop, task: Some(task) })
    }

    /// Stops keeping; how many times an empty list was written back.
    pub async fn stop(mut self) -> usize {
        self.stop.cancel();
        match self.task.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => 0,
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The slice of the Service in the first API version that has it, with a ready address.
async fn held_slice(client: &Client) -> Option<(Api<DynamicObject>, Value, Value)> {
    for version in SLICE_VERSIONS {
        let gvk = GroupVersionKind::gvk("discovery.k8s.io", version, "EndpointSlice");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "endpointslices");
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
        match api.get_opt(NAME).await {
            Ok(Some(slice)) if ready_in_slice(&slice.data) > 0 => {
                return Some((api, slice.data["endpoints"].clone(), slice.data["ports"].clone()));
            }
            Ok(Some(_)) => return None,
            // Not found: also what an API without this version answers.
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, version, "reading the kubernetes EndpointSlice"),
        }
    }
    None
}

async fn keep(endpoints: Api<Endpoints>, held: Held, stop: CancellationToken) -> usize {
    let mut written = 0;
    loop {
        let whole = |now| restored_endpoints(now, &held.subsets);
        written += usize::from(write_back(&endpoints, whole, "Endpoints").await);
        if let Some((api, ready, ports)) = &held.slice {
            let whole = |now| restored_slice(now, ready, ports);
            written += usize::from(write_back(api, whole, "EndpointSlice").await);
        }
        tokio::select! {
            () = stop.cancelled() => return written,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// Reads the Service's object of `api` and writes `whole(it)` back when that says to; whether
/// it did. A failed read or write waits for the next look (a conflict means a reconciler
/// wrote in between).
async fn write_back<K>(api: &Api<K>, whole: impl FnOnce(K) -> Option<K>, what: &str) -> bool
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let Ok(Some(now)) = api.get_opt(NAME).await else {
        return false;
    };
    let Some(whole) = whole(now) else {
        return false;
    };
    match api.replace(NAME, &PostParams::default(), &whole).await {
        Ok(_) => {
            tracing::info!("the kubernetes Service's {what} had no ready address; wrote back the ones it held");
            true
        }
        Err(e) => {
            tracing::debug!(error = %e, "writing the kubernetes {what} back; next look");
            false
        }
    }
}

fn addresses(e: &Endpoints) -> usize {
    e.subsets
        .iter()
        .flatten()
        .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
        .sum()
}

/// Endpoints of a slice that kube-proxy sends traffic to (not marked not-ready).
fn ready_in_slice(data: &Value) -> usize {
    data["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["conditions"]["ready"] != Value::Bool(false))
        .count()
}

/// `now` with the held subsets, when it has no address; `None` (leave it) otherwise. The
/// resource version read is kept, so a reconciler's write in between wins.
fn restored_endpoints(mut now: Endpoints, held: &[EndpointSubset]) -> Option<Endpoints> {
    if addresses(&now) > 0 {
        return None;
    }
    now.subsets = Some(held.to_vec());
    Some(now)
}

/// `now` with the held endpoints and ports, when none is ready; `None` otherwise.
fn restored_slice(mut now: DynamicObject, endpoints: &Value, ports: &Value) -> Option<DynamicObject> {
    if ready_in_slice(&now.data) > 0 {
        return None;
    }
    now.data["endpoints"] = endpoints.clone();
    now.data["ports"] = ports.clone();
    Some(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort};
    use serde_json::json;

    fn subset(ips: &[&str]) -> EndpointSubset {
        EndpointSubset {
            addresses: Some(
                ips.iter()
                    .map(|ip| EndpointAddress {
                        ip: (*ip).to_owned(),
                        ..EndpointAddress::default()
                    })
                    .collect(),
            ),
            ports: Some(vec![EndpointPort {
                name: Some("https".into()),
                port: 6443,
                protocol: Some("TCP".into()),
                ..EndpointPort::default()
            }]),
            ..EndpointSubset::default()
        }
    }

    fn endpoints(subsets: Option<Vec<EndpointSubset>>) -> Endpoints {
        let mut e = Endpoints::default();
        e.metadata.name = Some(NAME.into());
        e.metadata.resource_version = Some("41".into());
        e.subsets = subsets;
        e
    }

    #[test]
    fn endpoints_with_no_address_get_the_held_ones_back_at_the_version_read() {
        let held = vec![subset(&["10.0.0.1"])];
        for empty in [None, Some(vec![]), Some(vec![subset(&[])])] {
            let back = restored_endpoints(endpoints(empty), &held).expect("an empty list is written back");
            assert_eq!(back.subsets.as_deref(), Some(held.as_slice()));
            assert_eq!(back.metadata.resource_version.as_deref(), Some("41"));
        }
    }

    #[test]
    fn endpoints_that_hold_any_address_are_left_alone() {
        let held = vec![subset(&["10.0.0.1", "10.0.0.2"])];
        assert!(restored_endpoints(endpoints(Some(vec![subset(&["10.0.0.2"])])), &held).is_none());
    }

    fn slice(endpoints: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "resourceVersion": "7"},
            "addressType": "IPv4", "endpoints": endpoints, "ports": null,
        }))
        .unwrap()
    }

    #[test]
    fn a_slice_with_no_ready_endpoint_gets_the_held_ones_back() {
        let held = json!([{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}]);
        let ports = json!([{"name": "https", "port": 6443, "protocol": "TCP"}]);
        let not_ready = json!([{"addresses": ["10.0.0.1"], "conditions": {"ready": false}}]);
        for now in [json!(null), json!([]), not_ready] {
            let back = restored_slice(slice(now), &held, &ports).expect("written back");
            assert_eq!(back.data["endpoints"], held);
            assert_eq!(back.data["ports"], ports);
            assert_eq!(back.data["addressType"], "IPv4");
            assert_eq!(back.metadata.resource_version.as_deref(), Some("7"));
        }
        let ready = json!([{"addresses": ["10.0.0.2"], "conditions": {}}]);
        assert!(restored_slice(slice(ready), &held, &ports).is_none());
    }
}
