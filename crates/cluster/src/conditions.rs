//! Pure predicates on API objects, and one-line descriptions of how far an object got.
//!
//! Each `is_*` returns a kube [`Condition`] for [`crate::wait`]; they compose with
//! [`Condition::and`], [`Condition::or`] and [`Condition::not`]. The plain functions below them
//! take the object (and, for leases, `now`) so they can be tested on fixtures.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
pub use kube::runtime::wait::Condition;

/// Whether a pod is Ready (condition `Ready=True`), not merely Running, and not being deleted.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether a pod has ended for good (`Failed` or `Succeeded`): nothing restarts it, and its
/// owner, if any, has made another. A kubelet that rejects a pod at admission leaves one
/// (`NodeAffinity`: the scheduler saw a node label the kubelet's cache did not have yet).
pub fn pod_terminal(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|phase| phase == "Failed" || phase == "Succeeded")
}

/// Whether a set of pods (one component's) has at least `min` pods that have not ended, and
/// all of those are Ready. Ended pods ([`pod_terminal`]) are left out: they never become Ready,
/// and a ReplicaSet keeps them (until the pod garbage collector's threshold) beside the one
/// it made in their place.
pub fn pods_ready<'a>(pods: impl IntoIterator<Item = &'a Pod>, min: usize) -> bool {
    let mut n = 0;
    for p in pods.into_iter().filter(|p| !pod_terminal(p)) {
        if !pod_ready(p) {
            return false;
        }
        n += 1;
    }
    n >= min
}

/// The total restart count of a pod's containers: the pivot requires it stable across its
/// consecutive good answers (a container that restarts is not yet serving by itself).
pub fn restart_count(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum())
}

/// Whether a node is registered and Ready.
pub fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The version a node's kubelet reports (`status.nodeInfo.kubeletVersion`).
pub fn kubelet_version(node: &Node) -> Option<&str> {
    Some(node.status.as_ref()?.node_info.as_ref()?.kubelet_version.as_str())
}

/// Whether a CRD is Established (its kinds are served).
pub fn crd_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
}

/// Whether a DaemonSet's current generation is rolled out: observed, scheduled on every node
/// that should run it, updated everywhere and available everywhere. One that no node should run
/// (a workers-only DaemonSet without workers) is rolled out once observed.
pub fn daemonset_rolled_out(ds: &DaemonSet) -> bool {
    let generation = ds.metadata.generation.unwrap_or(0);
    let Some(s) = ds.status.as_ref() else { return false };
    s.observed_generation.unwrap_or(0) >= generation.max(1)
        && s.updated_number_scheduled.unwrap_or(0) == s.desired_number_scheduled
        && s.number_available.unwrap_or(0) == s.desired_number_scheduled
        && s.number_unavailable.unwrap_or(0) == 0
}

/// Whether a Deployment's current generation is rolled out: every replica updated and
/// available, and no old replica left.
pub fn deployment_rolled_out(d: &Deployment) -> bool {
    let generation = d.metadata.generation.unwrap_or(0);
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(s) = d.status.as_ref() else { return false };
    s.observed_generation.unwrap_or(0) >= generation
        && s.updated_replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
}

/// What "a lease is held" means for a leader-elected component.
#[derive(Debug, Clone, Default)]
pub struct LeaseHeld {
    /// How old `renewTime` may be; `None` uses the lease's own `leaseDurationSeconds` (15 s
    /// for v1.20 components when absent).
    pub max_age: Option<Duration>,
    /// A former holder that does not count (e.g. the bootstrap controller-manager). Compared as
    /// whole strings: identities keep the hostname plus a unique suffix.
    pub not_holder: Option<String>,
    /// A renewal at or before this time does not count: read it once the former holder's
    /// process is gone, and only a live holder can renew after it (whatever its identity).
    pub renewed_after: Option<Timestamp>,
}

/// Whether `lease` is held at `now` according to `want`.
pub fn lease_held(lease: &Lease, now: Timestamp, want: &LeaseHeld) -> bool {
    let Some(spec) = lease.spec.as_ref() else { return false };
    let Some(holder) = spec.holder_identity.as_deref().filter(|h| !h.is_empty()) else {
        return false;
    };
    if want.not_holder.as_deref() == Some(holder) {
        return false;
    }
    let Some(renewed) = spec.renew_time.as_ref() else {
        return false;
    };
    if want.renewed_after.is_some_and(|after| renewed.0 <= after) {
        return false;
    }
    let max_age = want
        .max_age
        .unwrap_or_else(|| Duration::from_secs(spec.lease_duration_seconds.map_or(15, |s| s.max(1) as u64)));
    let age = now.duration_since(renewed.0);
    // A renewal slightly in the future (clock skew) counts as fresh.
    age.is_negative() || age.unsigned_abs() <= max_age
}

/// The lease's holder identity, when there is one.
pub fn lease_holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .as_deref()
        .filter(|h| !h.is_empty())
}

/// [`Condition`]: the pod is Ready.
pub fn is_pod_ready() -> impl Condition<Pod> + Clone {
    |p: Option<&Pod>| p.is_some_and(pod_ready)
}

/// [`Condition`]: the node is registered and Ready.
pub fn is_node_ready() -> impl Condition<Node> + Clone {
    |n: Option<&Node>| n.is_some_and(node_ready)
}

/// [`Condition`]: the node is Ready with its kubelet at `version` (a vendor suffix aside).
pub fn is_node_ready_at(version: String) -> impl Condition<Node> + Clone {
    use selfhosted_manifests::versions::release_core;
    move |n: Option<&Node>| {
        n.is_some_and(|n| node_ready(n) && kubelet_version(n).map(release_core) == Some(release_core(&version)))
    }
}

/// [`Condition`]: the node is registered (Ready or not).
pub fn is_node_registered() -> impl Condition<Node> + Clone {
    |n: Option<&Node>| n.is_some()
}

/// [`Condition`]: the CRD is Established.
pub fn is_crd_established() -> impl Condition<CustomResourceDefinition> + Clone {
    |c: Option<&CustomResourceDefinition>| c.is_some_and(crd_established)
}

/// [`Condition`]: the DaemonSet is rolled out.
pub fn is_daemonset_rolled_out() -> impl Condition<DaemonSet> + Clone {
    |d: Option<&DaemonSet>| d.is_some_and(daemonset_rolled_out)
}

/// [`Condition`]: the Deployment is rolled out.
pub fn is_deployment_rolled_out() -> impl Condition<Deployment> + Clone {
    |d: Option<&Deployment>| d.is_some_and(deployment_rolled_out)
}

/// [`Condition`]: the lease is held now (clock read at each event).
pub fn is_lease_held(want: LeaseHeld) -> impl Condition<Lease> + Clone {
    move |l: Option<&Lease>| l.is_some_and(|l| lease_held(l, Timestamp::now(), &want))
}

/// One line on how far a pod got: phase, Ready, and each container's state and restarts.
pub fn describe_pod(pod: &Pod) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let Some(s) = pod.status.as_ref() else {
        return format!("pod {name}: no status yet");
    };
    let phase = s.phase.as_deref().unwrap_or("Unknown");
    let ready = if pod_ready(pod) { "Ready" } else { "not Ready" };
    let mut out = format!("pod {name}: {phase}, {ready}");
    for c in s.container_statuses.iter().flatten() {
        let state = c.state.as_ref();
        let st = if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            format!("waiting ({})", w.reason.as_deref().unwrap_or("?"))
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            format!(
                "terminated ({}, exit {})",
                t.reason.as_deref().unwrap_or("?"),
                t.exit_code
            )
        } else if state.and_then(|s| s.running.as_ref()).is_some() {
            "running".to_owned()
        } else {
            "unknown".to_owned()
        };
        out.push_str(&format!(
            "; {} {st}, ready={}, restarts={}",
            c.name, c.ready, c.restart_count
        ));
    }
    out
}

/// One line on how far a DaemonSet got.
pub fn describe_daemonset(ds: &DaemonSet) -> String {
    let name = ds.metadata.name.as_deref().unwrap_or("?");
    match ds.status.as_ref() {
        None => format!("daemonset {name}: no status yet"),
        Some(s) => format!(
            "daemonset {name}: desired {}, updated {}, available {}, unavailable {} (generation {} observed {})",
            s.desired_number_scheduled,
            s.updated_number_scheduled.unwrap_or(0),
            s.number_available.unwrap_or(0),
            s.number_unavailable.unwrap_or(0),
            ds.metadata.generation.unwrap_or(0),
            s.observed_generation.unwrap_or(0)
        ),
    }
}

/// One line on how far a Deployment got.
pub fn describe_deployment(d: &Deployment) -> String {
    let name = d.metadata.name.as_deref().unwrap_or("?");
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    match d.status.as_ref() {
        None => format!("deployment {name}: no status yet"),
        Some(s) => format!(
            "deployment {name}: want {want}, replicas {}, updated {}, available {} (generation {} observed {})",
            s.replicas.unwrap_or(0),
            s.updated_replicas.unwrap_or(0),
            s.available_replicas.unwrap_or(0),
            d.metadata.generation.unwrap_or(0),
            s.observed_generation.unwrap_or(0)
        ),
    }
}

/// One line on a node's Ready condition.
pub fn describe_node(node: &Node) -> String {
    let name = node.metadata.name.as_deref().unwrap_or("?");
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    let kubelet = kubelet_version(node)
        .filter(|v| !v.is_empty())
        .map(|v| format!(", kubelet {v}"))
        .unwrap_or_default();
    match ready {
        None => format!("node {name}: registered, no Ready condition yet{kubelet}"),
        Some(c) => format!(
            "node {name}: Ready={} ({}: {}){kubelet}",
            c.status,
            c.reason.as_deref().unwrap_or(""),
            c.message.as_deref().unwrap_or("")
        ),
    }
}

/// One line on a lease's holder and renewal.
pub fn describe_lease(lease: &Lease) -> String {
    let name = lease.metadata.name.as_deref().unwrap_or("?");
    let spec = lease.spec.as_ref();
    format!(
        "lease {name}: holder {:?}, renewed {}",
        spec.and_then(|s| s.holder_identity.as_deref()).unwrap_or(""),
        spec.and_then(|s| s.renew_time.as_ref())
            .map_or("never".to_owned(), |t| t.0.to_string())
    )
}

/// One line on a CRD's Established condition.
pub fn describe_crd(crd: &CustomResourceDefinition) -> String {
    let name = crd.metadata.name.as_deref().unwrap_or("?");
    let conds: Vec<String> = crd
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| cs.iter().map(|c| format!("{}={}", c.type_, c.status)).collect())
        .unwrap_or_default();
    format!(
        "crd {name}: {}",
        if conds.is_empty() {
            "no conditions yet".to_owned()
        } else {
            conds.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn ready_pod(name: &str, ready: &str) -> Pod {
        pod(json!({
            "metadata": {"name": name},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": ready}],
                       "containerStatuses": [{"name": "c", "ready": ready == "True", "restartCount": 2,
                         "image": "i", "imageID": "", "state": {"running": {}}}]}
        }))
    }

    #[test]
    fn running_is_not_ready() {
        assert!(pod_ready(&ready_pod("a", "True")));
        assert_eq!(restart_count(&ready_pod("a", "True")), 2);
        assert!(!pod_ready(&ready_pod("a", "False")));
        let p = ready_pod("a", "True");
        let mut deleting = p.clone();
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()));
        assert!(!pod_ready(&deleting));
        assert!(is_pod_ready().matches_object(Some(&p)));
        assert!(!is_pod_ready().matches_object(None));
    }

    #[test]
    fn a_set_needs_min_pods_all_ready() {
        let a = ready_pod("a", "True");
        let b = ready_pod("b", "False");
        assert!(pods_ready([&a], 1));
        assert!(!pods_ready([&a, &b], 1));
        assert!(!pods_ready([], 1));
        assert!(!pods_ready([&a], 2));
        // A pod the kubelet rejected at admission has ended: it neither blocks nor counts.
        let mut rejected = ready_pod("c", "False");
        rejected.status.as_mut().unwrap().phase = Some("Failed".into());
        assert!(pod_terminal(&rejected) && !pod_terminal(&a) && !pod_terminal(&b));
        assert!(pods_ready([&a, &rejected], 1));
        assert!(!pods_ready([&rejected], 1));
        assert!(!pods_ready([&a, &rejected], 2));
    }

    #[test]
    fn conditions_compose() {
        let a = ready_pod("a", "True");
        let named_b = |p: Option<&Pod>| p.and_then(|p| p.metadata.name.as_deref()) == Some("b");
        assert!(!is_pod_ready().and(named_b).matches_object(Some(&a)));
        assert!(is_pod_ready().or(named_b).matches_object(Some(&a)));
        assert!(is_pod_ready().not().matches_object(Some(&ready_pod("x", "False"))));
    }

    #[test]
    fn daemonset_rollout() {
        let mut ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "kube-apiserver", "generation": 2},
            "status": {"currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberMisscheduled": 0,
                       "numberReady": 1, "updatedNumberScheduled": 1, "numberAvailable": 1, "observedGeneration": 2}
        }))
        .unwrap();
        assert!(daemonset_rolled_out(&ds));
        ds.metadata.generation = Some(3);
        assert!(!daemonset_rolled_out(&ds), "a new generation not yet observed");
        assert!(describe_daemonset(&ds).contains("generation 3 observed 2"));
        let nowhere: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "workers-only", "generation": 1},
            "status": {"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0,
                       "numberReady": 0, "observedGeneration": 1}
        }))
        .unwrap();
        assert!(
            daemonset_rolled_out(&nowhere),
            "no node should run it: rolled out once observed"
        );
        let unobserved: DaemonSet =
            serde_json::from_value(json!({"metadata": {"name": "new", "generation": 1}, "status": {"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0}}))
                .unwrap();
        assert!(!daemonset_rolled_out(&unobserved), "not yet observed by the controller");
    }

    #[test]
    fn deployment_rollout_waits_for_old_replicas() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "kube-scheduler", "generation": 1},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}
        }))
        .unwrap();
        assert!(!deployment_rolled_out(&d));
        let mut done = d.clone();
        done.status.as_mut().unwrap().replicas = Some(1);
        assert!(deployment_rolled_out(&done));
    }

    #[test]
    fn node_and_crd_conditions() {
        let n: Node = serde_json::from_value(json!({"metadata": {"name": "c0"},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]}}))
        .unwrap();
        assert!(!node_ready(&n));
        assert!(is_node_registered().matches_object(Some(&n)));
        assert!(describe_node(&n).contains("KubeletNotReady"));
        let c: CustomResourceDefinition = serde_json::from_value(json!({"metadata": {"name": "a.b"},
            "spec": {"group": "b", "names": {"kind": "A", "plural": "a"}, "scope": "Namespaced", "versions": []},
            "status": {"conditions": [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]}})).unwrap();
        assert!(crd_established(&c));
        assert!(is_crd_established().matches_object(Some(&c)));
    }

    fn lease(holder: &str, renewed: Timestamp) -> Lease {
        serde_json::from_value(json!({"metadata": {"name": "kube-controller-manager"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renewed.to_string()}}))
        .unwrap()
    }

    #[test]
    fn lease_held_needs_a_fresh_renewal_and_a_new_holder() {
        let now: Timestamp = "2026-01-01T00:00:30Z".parse().unwrap();
        let fresh = lease("c0_4f2a", "2026-01-01T00:00:25Z".parse().unwrap());
        let stale = lease("c0_4f2a", "2026-01-01T00:00:00Z".parse().unwrap());
        assert!(lease_held(&fresh, now, &LeaseHeld::default()));
        assert!(!lease_held(&stale, now, &LeaseHeld::default()));
        let custom = LeaseHeld {
            max_age: Some(Duration::from_secs(60)),
            ..LeaseHeld::default()
        };
        assert!(lease_held(&stale, now, &custom));
        // Same hostname, other process: a whole-string comparison tells them apart.
        let not_old = LeaseHeld {
            not_holder: Some("c0_1111".into()),
            ..LeaseHeld::default()
        };
        assert!(lease_held(&fresh, now, &not_old));
        let is_old = LeaseHeld {
            not_holder: Some("c0_4f2a".into()),
            ..LeaseHeld::default()
        };
        assert!(!lease_held(&fresh, now, &is_old));
        // A renewal read when the former holder was gone does not count; a later one does.
        let read_then = |t: &str| LeaseHeld {
            renewed_after: Some(t.parse().unwrap()),
            ..LeaseHeld::default()
        };
        assert!(!lease_held(&fresh, now, &read_then("2026-01-01T00:00:25Z")));
        assert!(lease_held(&fresh, now, &read_then("2026-01-01T00:00:24Z")));
        assert!(!lease_held(
            &lease("", "2026-01-01T00:00:29Z".parse().unwrap()),
            now,
            &LeaseHeld::default()
        ));
        assert_eq!(lease_holder(&fresh), Some("c0_4f2a"));
    }

    #[test]
    fn describe_pod_names_waiting_reasons_and_restarts() {
        let p = pod(json!({"metadata": {"name": "kube-apiserver-x"},
            "status": {"phase": "Running", "containerStatuses": [{"name": "kube-apiserver", "ready": false,
              "restartCount": 4, "image": "i", "imageID": "", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}));
        let d = describe_pod(&p);
        assert!(
            d.contains("not Ready") && d.contains("CrashLoopBackOff") && d.contains("restarts=4"),
            "{d}"
        );
    }
}
