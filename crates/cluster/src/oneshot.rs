//! A one-shot pod on one node: a host-level step the provider cannot take over SSH on hosts
//! that have no tools (Fedora CoreOS, Flatcar), run instead from an image the node already
//! holds, through the API.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, LogParams, PostParams};
use kube::{Api, Client};
use tokio::time::Instant;

use crate::retry::api_message;

/// Pause between looks at the pod's phase.
const POLL: Duration = Duration::from_millis(250);

/// How a one-shot pod ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Whether its container exited 0.
    pub succeeded: bool,
    /// Its log (the tail, as the kubelet keeps it).
    pub log: String,
}

/// Why a one-shot pod did not finish.
#[derive(Debug, thiserror::Error)]
pub enum OneShotError {
    /// The API refused a step.
    #[error("one-shot pod {name}: {message}")]
    Api {
        /// The pod.
        name: String,
        /// The API's message.
        message: String,
    },
    /// It did not end before the deadline (it is deleted anyway).
    #[error("one-shot pod {name} did not finish in time (phase {phase})")]
    Timeout {
        /// The pod.
        name: String,
        /// Its last phase.
        phase: String,
    },
}

/// Runs `container` (a Pod container, JSON) as pod `namespace/name` on `node` with the host's
/// network, as root, tolerating every taint; waits until it ends or `deadline`, reads its log and
/// deletes it. A pod of that name left by an earlier run is replaced.
///
/// # Errors
/// [`OneShotError`] when the API refuses, or the pod does not end in time.
pub async fn run_on_node(
    client: &Client,
    namespace: &str,
    name: &str,
    node: &str,
    container: serde_json::Value,
    deadline: Instant,
) -> Result<Finished, OneShotError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let api_err = |e: kube::Error| OneShotError::Api {
        name: name.to_owned(),
        message: api_message(&e),
    };
    remove(&pods, name).await.map_err(api_err)?;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { "app.kubernetes.io/managed-by": "terraform-provider-selfhosted" }
        },
        "spec": {
            "nodeName": node,
            "hostNetwork": true,
            "restartPolicy": "Never",
            "priorityClassName": "system-node-critical",
            "tolerations": [{ "operator": "Exists" }],
            "terminationGracePeriodSeconds": 0,
            "containers": [container]
        }
    }))
    .map_err(|e| OneShotError::Api {
        name: name.to_owned(),
        message: format!("not a pod: {e}"),
    })?;
    pods.create(&PostParams::default(), &pod).await.map_err(api_err)?;
    let outcome = loop {
        let phase = pods
            .get(name)
            .await
            .map_err(api_err)?
            .status
            .and_then(|s| s.phase)
            .unwrap_or_default();
        match phase.as_str() {
            "Succeeded" | "Failed" => {
                let log = pods.logs(name, &LogParams::default()).await.unwrap_or_default();
                break Ok(Finished {
                    succeeded: phase == "Succeeded",
                    log: log.trim_end().to_owned(),
                });
            }
            _ if Instant::now() + POLL >= deadline => {
                break Err(OneShotError::Timeout {
                    name: name.to_owned(),
                    phase,
                })
            }
            _ => tokio::time::sleep(POLL).await,
        }
    };
    remove(&pods, name).await.map_err(api_err)?;
    outcome
}

/// Deletes pod `name` at once, if it exists.
async fn remove(pods: &Api<Pod>, name: &str) -> Result<(), kube::Error> {
    match pods.delete(name, &DeleteParams::default().grace_period(0)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
