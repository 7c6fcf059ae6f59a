//! Which controllers serve from their recovery apiserver: the static pod
//! `kube-apiserver-recovery` (label `k8s-app=kube-apiserver-recovery`, mirror pod
//! `kube-apiserver-recovery-<node>`) that brings a rebooted controller back and hands back to
//! the self-hosted apiserver once that one serves (`docs/guides/disaster-recovery.md`).
//!
//! Its mirror pod is Ready while it serves, so Ready says nothing: what tells is which of its
//! containers runs. While it stands by, its first init container `standby` runs; once it
//! serves, `kube-apiserver` and `hand-back` run. One that serves for long never handed back:
//! the self-hosted apiserver cannot start on that node (an image gone, a flag that fails only
//! at boot), or it never answered as itself. The evidence says which: the hand-back's own log
//! (it prints what it sees each time that changes) and the self-hosted apiserver pod on the node.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};

use crate::diagnose;

/// Selects the recovery apiserver's mirror pods.
pub const RECOVERY_PODS: &str = "k8s-app=kube-apiserver-recovery";
/// The recovery pod's init container that waits while any apiserver listens.
pub const STANDBY_CONTAINER: &str = "standby";
/// The recovery pod's apiserver container.
pub const APISERVER_CONTAINER: &str = "kube-apiserver";
/// The recovery pod's container that confirms the self-hosted apiserver and hands back.
pub const HAND_BACK_CONTAINER: &str = "hand-back";
/// Lines of the hand-back's log kept as evidence.
pub const HAND_BACK_TAIL_LINES: i64 = 20;

/// What a recovery pod does, read from its containers' states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryState {
    /// `standby` runs: an apiserver listens on the host, the recovery apiserver waits.
    StandingBy,
    /// `standby` has ended (no apiserver listened) and the recovery apiserver is starting.
    Starting,
    /// The recovery apiserver runs: this controller serves from it until the hand-back.
    Serving,
    /// No container state yet (the kubelet has just created or replaced the pod), or one
    /// this classification does not know.
    Unknown,
}

impl RecoveryState {
    /// Whether the recovery apiserver runs, or is about to (the controller is not on its
    /// self-hosted apiserver alone).
    pub fn is_serving(self) -> bool {
        matches!(self, RecoveryState::Serving | RecoveryState::Starting)
    }
}

fn status<'a>(statuses: Option<&'a Vec<ContainerStatus>>, name: &str) -> Option<&'a ContainerStatus> {
    statuses?.iter().find(|c| c.name == name)
}

fn is_running(c: Option<&ContainerStatus>) -> bool {
    c.and_then(|c| c.state.as_ref()).is_some_and(|s| s.running.is_some())
}

fn is_terminated(c: Option<&ContainerStatus>) -> bool {
    c.and_then(|c| c.state.as_ref()).is_some_and(|s| s.terminated.is_some())
}

/// What the recovery pod `pod` does.
pub fn recovery_state(pod: &Pod) -> RecoveryState {
    let Some(s) = pod.status.as_ref() else {
        return RecoveryState::Unknown;
    };
    let inits = s.init_container_statuses.as_ref();
    let containers = s.container_statuses.as_ref();
    let apiserver = status(containers, APISERVER_CONTAINER);
    if is_running(apiserver) || is_running(status(containers, HAND_BACK_CONTAINER)) {
        return RecoveryState::Serving;
    }
    let standby = status(inits, STANDBY_CONTAINER);
    if is_running(standby) {
        return RecoveryState::StandingBy;
    }
    // `standby` ended (only when nothing listened) but the apiserver does not run yet, or
    // ran and stopped: the pod is on its way to serving, or crash-looping at it.
    if is_terminated(standby) || apiserver.is_some_and(|c| c.restart_count > 0 || c.last_state.is_some()) {
        return RecoveryState::Starting;
    }
    RecoveryState::Unknown
}

/// One controller's recovery pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryPod {
    /// The mirror pod's name.
    pub name: String,
    /// What it does.
    pub state: RecoveryState,
    /// One line on its containers (phase, each container's state and restarts).
    pub described: String,
    /// When its apiserver container started, while it runs: how long the controller has been
    /// off its self-hosted apiserver.
    pub serving_since: Option<crate::Timestamp>,
}

/// When the recovery apiserver container of `pod` started, if it runs.
fn serving_since(pod: &Pod) -> Option<crate::Timestamp> {
    let containers = pod.status.as_ref()?.container_statuses.as_ref();
    let running = status(containers, APISERVER_CONTAINER)?
        .state
        .as_ref()?
        .running
        .as_ref()?;
    running.started_at.as_ref().map(|t| t.0)
}

/// The recovery pods by node: one list call.
///
/// # Errors
/// When the pods cannot be listed.
pub async fn recovery_pods(client: &Client) -> Result<BTreeMap<String, RecoveryPod>, kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let list = pods.list(&ListParams::default().labels(RECOVERY_PODS)).await?;
    Ok(list
        .items
        .iter()
        .filter_map(|pod| {
            let node = pod.spec.as_ref()?.node_name.clone()?;
            let described = describe(pod);
            Some((
                node,
                RecoveryPod {
                    name: pod.metadata.name.clone()?,
                    state: recovery_state(pod),
                    described,
                    serving_since: serving_since(pod),
                },
            ))
        })
        .collect())
}

/// [`crate::conditions::describe_pod`] with the init containers, which tell standing by.
fn describe(pod: &Pod) -> String {
    let mut out = crate::conditions::describe_pod(pod);
    for c in pod
        .status
        .as_ref()
        .and_then(|s| s.init_container_statuses.as_ref())
        .into_iter()
        .flatten()
    {
        let state = c.state.as_ref();
        let st = if state.is_some_and(|s| s.running.is_some()) {
            "running"
        } else if state.is_some_and(|s| s.terminated.is_some()) {
            "terminated"
        } else {
            "waiting"
        };
        let _ = write!(out, "; init {} {st}", c.name);
    }
    out
}

/// Why `node` still serves from its recovery pod `pod`: the tail of the hand-back's log (what
/// it saw of the self-hosted apiserver), and the self-hosted apiserver pods bound to the node
/// (`apiserver_pods`, a label selector) with their status, events and log tails. Best effort:
/// a part that cannot be read says why.
pub async fn evidence(client: &Client, node: &str, pod: &RecoveryPod, apiserver_pods: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let mut out = format!("{node}: {}\n", pod.described);
    let params = LogParams {
        container: Some(HAND_BACK_CONTAINER.to_owned()),
        tail_lines: Some(HAND_BACK_TAIL_LINES),
        ..LogParams::default()
    };
    match pods.logs(&pod.name, &params).await {
        Ok(log) if !log.trim().is_empty() => {
            let _ = writeln!(
                out,
                "the hand-back's log on {node} (last {HAND_BACK_TAIL_LINES} lines):"
            );
            for line in log.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        Ok(_) => {
            let _ = writeln!(out, "the hand-back on {node} has printed nothing yet");
        }
        Err(e) => {
            let _ = writeln!(
                out,
                "the hand-back's log on {node} could not be read: {}",
                crate::retry::api_message(&e)
            );
        }
    }
    match diagnose::collect_evidence_on(client, "kube-system", apiserver_pods, node).await {
        Ok(e) if e.pods.is_empty() => {
            let _ = writeln!(
                out,
                "no self-hosted apiserver pod ({apiserver_pods}) is bound to {node}: see its DaemonSet's events"
            );
        }
        Ok(e) => {
            let _ = write!(out, "the self-hosted apiserver on {node}:\n{e}");
        }
        Err(e) => {
            let _ = writeln!(out, "the self-hosted apiserver on {node}: {e}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "kube-apiserver-recovery-c0" },
            "spec": { "nodeName": "c0", "containers": [] },
            "status": status,
        }))
        .unwrap()
    }

    fn running(name: &str) -> serde_json::Value {
        serde_json::json!({ "name": name, "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": { "running": {} } })
    }

    fn waiting(name: &str, restarts: i32) -> serde_json::Value {
        serde_json::json!({ "name": name, "image": "x", "imageID": "", "ready": false, "restartCount": restarts, "state": { "waiting": { "reason": "PodInitializing" } } })
    }

    fn terminated(name: &str) -> serde_json::Value {
        serde_json::json!({ "name": name, "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": { "terminated": { "exitCode": 0 } } })
    }

    #[test]
    fn the_running_container_tells_what_a_recovery_pod_does() {
        let standing_by = pod(serde_json::json!({
            "phase": "Pending",
            "initContainerStatuses": [running("standby"), waiting("reuseport-gate", 0)],
            "containerStatuses": [waiting("kube-apiserver", 0), waiting("hand-back", 0)],
        }));
        assert_eq!(recovery_state(&standing_by), RecoveryState::StandingBy);
        let serving = pod(serde_json::json!({
            "phase": "Running",
            "initContainerStatuses": [terminated("standby"), terminated("reuseport-gate")],
            "containerStatuses": [running("kube-apiserver"), running("hand-back")],
        }));
        assert_eq!(recovery_state(&serving), RecoveryState::Serving);
        assert!(recovery_state(&serving).is_serving());
        let starting = pod(serde_json::json!({
            "phase": "Pending",
            "initContainerStatuses": [terminated("standby"), running("reuseport-gate")],
            "containerStatuses": [waiting("kube-apiserver", 0), waiting("hand-back", 0)],
        }));
        assert_eq!(recovery_state(&starting), RecoveryState::Starting);
        // The recovery apiserver crash-loops: standby's state may be gone from a new status,
        // but the apiserver has restarted.
        let crashing = pod(serde_json::json!({
            "phase": "Running",
            "containerStatuses": [waiting("kube-apiserver", 3), running("hand-back")],
        }));
        assert_eq!(recovery_state(&crashing), RecoveryState::Serving);
        let restarting = pod(serde_json::json!({
            "phase": "Running",
            "containerStatuses": [waiting("kube-apiserver", 3), waiting("hand-back", 1)],
        }));
        assert_eq!(recovery_state(&restarting), RecoveryState::Starting);
        let fresh = pod(serde_json::json!({ "phase": "Pending" }));
        assert_eq!(recovery_state(&fresh), RecoveryState::Unknown);
        assert!(!recovery_state(&fresh).is_serving());
        assert!(!recovery_state(&standing_by).is_serving());
        assert!(
            describe(&standing_by).contains("init standby running"),
            "{}",
            describe(&standing_by)
        );
    }

    /// Two controllers' recovery pods as the API lists them: c0's stands by, c1's serves.
    const LISTED: &str = r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[
      {"metadata":{"name":"kube-apiserver-recovery-c0","namespace":"kube-system"},
       "spec":{"nodeName":"c0","containers":[]},
       "status":{"phase":"Pending","initContainerStatuses":[
         {"name":"standby","image":"a","imageID":"","ready":false,"restartCount":0,"state":{"running":{}}}]}},
      {"metadata":{"name":"kube-apiserver-recovery-c1","namespace":"kube-system"},
       "spec":{"nodeName":"c1","containers":[]},
       "status":{"phase":"Running","containerStatuses":[
         {"name":"kube-apiserver","image":"a","imageID":"","ready":true,"restartCount":0,"state":{"running":{}}},
         {"name":"hand-back","image":"a","imageID":"","ready":true,"restartCount":0,"state":{"running":{}}}]}}]}"#;

    #[tokio::test]
    async fn one_list_tells_each_controllers_recovery_pod() {
        use std::sync::Arc;

        use crate::testing::{Reply, TestServer};
        let server = Arc::new(TestServer::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let serving = server.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                serving.serve(tcp, Reply::Json(LISTED)).await;
            }
        });
        let client = crate::connect(&format!("https://127.0.0.1:{port}"), &server.creds, Some("kubernetes")).unwrap();
        let pods = recovery_pods(&client).await.unwrap();
        assert_eq!(pods.len(), 2);
        assert_eq!(pods["c0"].state, RecoveryState::StandingBy);
        assert_eq!(pods["c1"].state, RecoveryState::Serving);
        assert_eq!(pods["c1"].name, "kube-apiserver-recovery-c1");
        let serving: Vec<&String> = pods
            .iter()
            .filter(|(_, p)| p.state.is_serving())
            .map(|(n, _)| n)
            .collect();
        assert_eq!(serving, ["c1"]);
    }
}
