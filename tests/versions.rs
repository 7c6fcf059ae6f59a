//! Current Kubernetes releases on the real lane (binaries built from the Go module proxy by
//! `tests/lane/build-go.sh`, cached): a minor-version upgrade of the control plane through
//! `terraform apply`, blue/green, under a prober; and the newest minor we claim, pivoted.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::lane::*;
use support::Workspace;

/// The release a cluster is created at, and the next minor it is upgraded to.
const FROM: &str = "v1.34.3";
const TO: &str = "v1.35.4";
/// The newest minor the provider claims.
const NEWEST: &str = "v1.37.2";

fn config(lane: &Lane, version: &str) -> String {
    LaneConfig::new(lane)
        .version(version)
        .timeouts("create = \"10m\", update = \"10m\"")
        .hcl()
}

/// `gitVersion` of the apiserver that answers.
fn apiserver_version(kubeconfig: &std::path::Path) -> String {
    let v: Value = serde_json::from_str(&kubectl(kubeconfig, &["get", "--raw", "/version"])).expect("/version json");
    v["gitVersion"].as_str().unwrap_or_default().to_owned()
}

/// The keys of the `manifests` map that a saved plan adds, removes or changes.
fn changed_manifests(ws: &Workspace) -> Vec<String> {
    ws.ok(&["plan", "-input=false", "-out=upgrade.tfplan"]);
    let plan: Value = serde_json::from_str(&ws.ok(&["show", "-json", "upgrade.tfplan"])).expect("plan json");
    let change = &plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "selfhosted_cluster_assets")
        .expect("the assets change")["change"];
    assert_eq!(
        change["actions"],
        serde_json::json!(["update"]),
        "an upgrade is an in-place update"
    );
    let before = change["before"]["manifests"].as_object().cloned().unwrap_or_default();
    let after = change["after"]["manifests"].as_object().cloned().unwrap_or_default();
    let mut keys: Vec<String> = before.keys().chain(after.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| before.get(k) != after.get(k)).collect()
}

#[test]
fn a_minor_version_upgrade_hands_the_control_plane_over_with_no_failed_request() {
    let Some(lane) = Lane::up_for_upgrade("minor upgrade", FROM, TO) else {
        return;
    };
    let ws = Workspace::new(&config(&lane, FROM));
    let (took, samples) = apply_while_probing(&ws, &lane, "pivot", None, Duration::from_secs(3));
    eprintln!(
        "minor upgrade: pivot at {FROM} took {took:?} ({} probes)",
        samples.len()
    );
    let kubeconfig = ws.path().join("assets/auth/admin.kubeconfig");
    assert_eq!(apiserver_version(&kubeconfig), FROM);

    // The plan changes exactly the control plane's manifests: a new apiserver generation
    // (blue/green) in place of the old, the controller-manager and the scheduler.
    ws.write("main.tf", &config(&lane, TO));
    let changed = changed_manifests(&ws);
    for component in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
        assert!(
            changed.iter().any(|k| k.contains(component)),
            "{component} changes: {changed:?}"
        );
    }
    assert!(
        changed
            .iter()
            .all(|k| ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]
                .iter()
                .any(|c| k.contains(c))),
        "only the control plane changes: {changed:?}"
    );

    let before = apiserver_generations(&kubeconfig);
    let (took, samples) = apply_while_probing(&ws, &lane, "minor upgrade", Some(API_REQUEST), Duration::from_secs(3));
    let failures: Vec<&String> = samples.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    let after = apiserver_generations(&kubeconfig);
    eprintln!(
        "minor upgrade: {FROM} → {TO} took {took:?}; {} requests, {} failed; apiserver generation {before} → {after}",
        samples.len(),
        failures.len()
    );
    assert!(
        samples.len() > 20,
        "the probe ran throughout: {} requests",
        samples.len()
    );
    assert_eq!(failures.len(), 0, "no failed request during the upgrade: {failures:?}");
    assert_eq!(
        apiserver_version(&kubeconfig),
        TO,
        "the apiserver reports the new version"
    );
    let state = ws.resource_values("selfhosted_bootstrap");
    for component in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
        assert_eq!(state["control_plane_versions"][component], TO, "{state}");
    }
    let kubelet = kubectl(
        &kubeconfig,
        &[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[*].status.nodeInfo.kubeletVersion}",
        ],
    );
    assert_eq!(kubelet.trim(), FROM, "the kubelet stays where the host put it");
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "the next plan is empty:\n{text}");
}

#[test]
fn the_newest_minor_pivots() {
    let Some(lane) = Lane::up_at("newest minor", NEWEST) else {
        return;
    };
    let ws = Workspace::new(&config(&lane, NEWEST));
    let (took, samples) = apply_while_probing(&ws, &lane, "pivot", None, Duration::from_secs(3));
    let kubeconfig = ws.path().join("assets/auth/admin.kubeconfig");
    eprintln!(
        "newest minor: pivot at {NEWEST} took {took:?} ({} probes)",
        samples.len()
    );
    assert_eq!(apiserver_version(&kubeconfig), NEWEST);
    let state = ws.resource_values("selfhosted_bootstrap");
    assert_eq!(state["phase"], "verify");
    for component in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
        assert_eq!(state["control_plane_versions"][component], NEWEST, "{state}");
    }
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "the next plan is empty:\n{text}");
}

/// Kubelets are the hosts' job: an update that a registered kubelet may not follow (here a
/// kubelet newer than the control plane) fails in preflight, naming the node, before anything
/// changes.
#[test]
fn an_update_refuses_a_control_plane_older_than_a_kubelet() {
    let Some(lane) = Lane::up_for_upgrade("kubelet skew", TO, FROM) else {
        return;
    };
    // The hosts run kubelet TO and also hold FROM's control-plane images: the cluster is FROM.
    let ws = Workspace::new(&config(&lane, FROM));
    apply_ok(&ws, &lane, "pivot");
    let kubeconfig = ws.path().join("assets/auth/admin.kubeconfig");
    let before = apiserver_generations(&kubeconfig);
    ws.write(
        "main.tf",
        &LaneConfig::new(&lane)
            .version(FROM)
            .assets("  extra_flags = { \"kube_apiserver\" = [\"--v=2\"] }")
            .timeouts("create = \"10m\", update = \"5m\"")
            .hcl(),
    );
    let text = ws.fails(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    // Terraform wraps long diagnostic lines.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("preflight"), "names the phase:\n{text}");
    assert!(
        flat.contains(&format!(
            "node {}: kubelet {TO} is newer than the apiserver (1.34)",
            lane.host().name
        )),
        "names the node and its kubelet:\n{text}"
    );
    assert_eq!(apiserver_generations(&kubeconfig), before, "nothing changed");
}
