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

/// The upgrade's cluster: hosts whose kubelet and etcd run from images (Flatcar's contract),
/// which the test bed's agent plays by running the binaries of those images' releases. etcd's
/// image is pinned to the releases the lane has: Debian's at `FROM`, the next minor's at `TO`.
fn image_kubelet_config(lane: &Lane, version: &str) -> String {
    image_kubelet_config_within(lane, version, "update = \"10m\"")
}

/// The etcd image a cluster at `version` runs on the lane.
fn etcd_image(version: &str) -> String {
    let release = if version == FROM {
        LANE_ETCD
    } else {
        ETCD_UPGRADE_TO.trim_start_matches('v')
    };
    format!("registry.k8s.io/etcd:{release}-0")
}

/// As [`image_kubelet_config`], with the update's timeout.
fn image_kubelet_config_within(lane: &Lane, version: &str, update: &str) -> String {
    image_config(lane, version, &etcd_image(version), update)
}

/// The upgrade's cluster at `version` with etcd's image `etcd` and the update's timeout.
fn image_config(lane: &Lane, version: &str, etcd: &str, update: &str) -> String {
    let timeouts = format!("create = \"10m\", {update}");
    let assets = format!("  host_os = \"flatcar\"\n  container_images = {{ etcd = \"{etcd}\" }}");
    LaneConfig::new(lane)
        .version(version)
        .assets(&assets)
        .timeouts(&timeouts)
        .hcl()
}

/// A workload on the controller (one replica, host network, tolerating the control plane's
/// taint but not a cordon) and a disruption budget that allows no eviction of it. (A pod no
/// controller owns would be spared: a kubelet move leaves those where they are.)
const HELD: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: held
  namespace: default
spec:
  replicas: 1
  selector: {matchLabels: {app: held}}
  template:
    metadata:
      labels: {app: held}
    spec:
      nodeSelector: {kubernetes.io/hostname: NODE}
      hostNetwork: true
      tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]
      containers: [{name: pause, image: PAUSE}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: held
  namespace: default
spec:
  minAvailable: 1
  selector: {matchLabels: {app: held}}
"#;

/// The `held` Deployment's ready replicas.
fn held_ready(kubeconfig: &std::path::Path) -> String {
    kubectl(
        kubeconfig,
        &["get", "deployment", "held", "-o", "jsonpath={.status.readyReplicas}"],
    )
}

/// Each node's `name=kubeletVersion unschedulable`.
fn kubelets(kubeconfig: &std::path::Path) -> String {
    kubectl(
        kubeconfig,
        &[
            "get",
            "nodes",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.status.nodeInfo.kubeletVersion} {.spec.unschedulable}{\"\\n\"}{end}",
        ],
    )
}

/// The apiserver pods' restarts, summed.
fn apiserver_restarts(kubeconfig: &std::path::Path) -> u64 {
    kube_system_pods(
        kubeconfig,
        "k8s-app=kube-apiserver",
        &[],
        "{.items[*].status.containerStatuses[*].restartCount}",
    )
    .split_whitespace()
    .filter_map(|n| n.parse::<u64>().ok())
    .sum()
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
    let ws = Workspace::new(&image_kubelet_config(&lane, FROM));
    let (took, samples) = apply_while_probing(&ws, &lane, "pivot", None, Duration::from_secs(3));
    eprintln!(
        "minor upgrade: pivot at {FROM} took {took:?} ({} probes)",
        samples.len()
    );
    let kubeconfig = ws.path().join("assets/auth/admin.kubeconfig");
    assert_eq!(apiserver_version(&kubeconfig), FROM);

    // The plan changes exactly the control plane's manifests: a new apiserver generation
    // (blue/green) in place of the old, the controller-manager and the scheduler.
    ws.write("main.tf", &image_kubelet_config(&lane, TO));
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
    let kubelets_before = kubelets(&kubeconfig);
    assert!(kubelets_before.contains(&format!("={FROM}")), "{kubelets_before}");
    // The plan names the kubelet it will move, from the version the pivot recorded.
    let node = lane.host().name.clone();
    let recorded = ws.resource_values("selfhosted_bootstrap");
    assert_eq!(recorded["kubelet_versions"][&node], FROM, "{recorded}");
    let plan = ws.ok(&["plan", "-input=false"]);
    let flat = support::flat(&plan);
    assert!(
        flat.contains(&format!("- {node}: {FROM} → {TO}")),
        "the plan names the kubelet's move:\n{plan}"
    );
    // And etcd's, from the release the pivot recorded.
    assert_eq!(recorded["etcd_versions"][&node], LANE_ETCD, "{recorded}");
    let etcd_to = ETCD_UPGRADE_TO.trim_start_matches('v');
    assert!(
        flat.contains(&format!("- {node}: {LANE_ETCD} → {etcd_to}")),
        "the plan names the etcd member's move:\n{plan}"
    );

    // An etcd move etcd would refuse (3.4 → 3.6 skips a minor) is refused in preflight, naming
    // the member and what to set, before anything changes.
    ws.write(
        "main.tf",
        &image_config(&lane, TO, "registry.k8s.io/etcd:3.6.5-0", "update = \"3m\""),
    );
    let text = ws.fails(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let flat = support::flat(&text);
    assert!(
        flat.contains("preflight")
            && flat.contains(&node)
            && flat.contains(&format!("its etcd member runs {LANE_ETCD}"))
            && flat.contains("registry.k8s.io/etcd:3.5.N-0"),
        "the error names the phase, the member and the release to set:\n{text}"
    );
    assert_eq!(apiserver_version(&kubeconfig), FROM, "nothing changed");
    assert_eq!(apiserver_generations(&kubeconfig), before, "nothing changed");

    // First with a pod a disruption budget keeps on the controller: the control plane moves,
    // then the kubelet's turn fails at the deadline, naming the node and the budget, with the
    // node left cordoned and no request failed.
    ws.write(
        "held.yaml",
        &HELD.replace("NODE", &node).replace("PAUSE", &lane.pause_image()),
    );
    let held = ws.path().join("held.yaml");
    kubectl(&kubeconfig, &["apply", "-f", held.to_str().unwrap()]);
    eventually(Duration::from_secs(120), "the held workload Ready", || {
        let ready = held_ready(&kubeconfig);
        (ready == "1").then_some(()).ok_or(ready)
    });
    eventually(Duration::from_secs(60), "the budget counted", || {
        let allowed = kubectl(
            &kubeconfig,
            &[
                "get",
                "pdb",
                "held",
                "-o",
                "jsonpath={.status.disruptionsAllowed}/{.status.currentHealthy}",
            ],
        );
        (allowed == "0/1").then_some(()).ok_or(allowed)
    });
    ws.write("main.tf", &image_kubelet_config_within(&lane, TO, "update = \"3m\""));
    let prober = Prober::start(&ws.path().join("assets"), lane.api_address(), Some(API_REQUEST));
    let started = std::time::Instant::now();
    let text = ws.fails(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let held_took = started.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let held_samples = prober.finish();
    let held_failures: Vec<&String> = held_samples.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    eprintln!(
        "minor upgrade, a budget holding the node: failed after {held_took:?}; {} requests, {} failed",
        held_samples.len(),
        held_failures.len()
    );
    let flat = support::flat(&text);
    assert!(
        flat.contains("kubelets")
            && flat.contains(&node)
            && flat.contains("kept by disruption budget default/held: it allows no disruption now"),
        "the error names the phase, the node and the budget:\n{text}"
    );
    assert_eq!(held_failures.len(), 0, "no failed request: {held_failures:?}");
    assert_eq!(apiserver_version(&kubeconfig), TO, "the control plane moved first");
    let held_kubelets = kubelets(&kubeconfig);
    assert!(
        held_kubelets.contains(&format!("{node}={FROM} true")),
        "the node's kubelet did not move, and it stays cordoned: {held_kubelets}"
    );

    // The budget relaxed (here: gone), the same apply again converges.
    kubectl(&kubeconfig, &["delete", "pdb", "held"]);
    ws.write("main.tf", &image_kubelet_config(&lane, TO));
    let (took, samples) = apply_while_probing(&ws, &lane, "minor upgrade", Some(API_REQUEST), Duration::from_secs(3));
    let failures: Vec<&String> = samples.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    let after = apiserver_generations(&kubeconfig);
    eprintln!(
        "minor upgrade: {FROM} → {TO}, the rerun took {took:?}; {} requests, {} failed; apiserver generation {before} → {after}",
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
    assert_eq!(state["kubelet_versions"][&node], TO, "{state}");
    assert_eq!(
        state["etcd_versions"][&node],
        ETCD_UPGRADE_TO.trim_start_matches('v'),
        "{state}"
    );
    // The kubelets followed, after the control plane: each node at the new version and
    // schedulable again; the apiserver it carried ran on through the kubelet's restart.
    let kubelets_after = kubelets(&kubeconfig);
    eprintln!(
        "minor upgrade: kubelets {} → {}",
        kubelets_before.trim(),
        kubelets_after.trim()
    );
    for line in kubelets_after.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.trim_end().ends_with(&format!("={TO}")),
            "every kubelet at {TO} and uncordoned: {kubelets_after}"
        );
    }
    // Uncordoned, the node takes its workload back.
    eventually(Duration::from_secs(120), "the held workload Ready again", || {
        let ready = held_ready(&kubeconfig);
        (ready == "1").then_some(()).ok_or(ready)
    });
    let restarts = apiserver_restarts(&kubeconfig);
    assert_eq!(restarts, 0, "no apiserver container restarted when its kubelet moved");
    let env = lane
        .tb
        .host_exec(&lane.host().name, &["cat", "/etc/kubernetes/kubelet.env"]);
    let env = String::from_utf8_lossy(&env.stdout);
    assert!(
        env.contains(&format!("KUBELET_IMAGE=quay.io/poseidon/kubelet:{TO}")),
        "the host's kubelet.env names the new image: {env}"
    );
    // etcd followed its image, on its data: the member reports the new release, and the
    // cluster's keys are all there.
    let image_env = lane.tb.host_exec(&node, &["cat", "/etc/etcd/image.env"]);
    let image_env = String::from_utf8_lossy(&image_env.stdout);
    assert_eq!(image_env.trim(), format!("ETCD_IMAGE={}", etcd_image(TO)));
    let status = lane.etcdctl(0, &["endpoint", "status", "-w", "json"]);
    let etcd_version = ETCD_UPGRADE_TO.trim_start_matches('v');
    assert!(
        status.contains(&format!("\"version\":\"{etcd_version}\"")),
        "etcd at {etcd_version}: {status}"
    );
    eprintln!("minor upgrade: etcd {LANE_ETCD} → {etcd_version}");
    assert_eq!(
        held_ready(&kubeconfig),
        "1",
        "the cluster's objects survived etcd's move"
    );
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

/// Kubernetes' skew policy holds before anything moves: an update that a registered kubelet
/// may not follow (here a kubelet newer than the control plane) fails in preflight, naming the
/// node, before anything changes.
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
    let flat = support::flat(&text);
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

/// #24 on three controllers: etcd follows its image one member at a time, every other member
/// answering with a leader before each restart, the leader last, while the API answers
/// through the load balancer; every member then reports the image's release on its own data.
#[test]
fn etcd_follows_its_image_on_three_controllers_one_member_at_a_time_the_leader_last() {
    let three = Topology {
        controllers: 3,
        workers: 0,
        balancer: true,
    };
    let Some(lane) = Lane::up_for_upgrade_with("etcd on three", three, FROM, FROM) else {
        return;
    };
    let from = format!("registry.k8s.io/etcd:{LANE_ETCD}-0");
    let to_release = ETCD_UPGRADE_TO.trim_start_matches('v');
    let to = format!("registry.k8s.io/etcd:{to_release}-0");
    let ws = Workspace::new(&image_config(&lane, FROM, &from, "update = \"10m\""));
    let (took, _) = apply_while_probing(&ws, &lane, "pivot", None, Duration::from_secs(1));
    eprintln!("etcd on three: pivot took {took:?}");
    let kubeconfig = ws.path().join("assets/auth/admin.kubeconfig");
    kubectl(&kubeconfig, &["create", "configmap", "kept", "--from-literal=k=v"]);

    // Which member leads now, by its host.
    let status = |i: usize| -> Value {
        let own = format!("https://{}:2379", lane.at(i).address);
        let out = lane.etcdctl_at(i, &own, &["endpoint", "status", "--write-out", "json"]);
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or_default()[0]["Status"].clone()
    };
    let leader_of = |s: &Value| s["leader"].is_u64() && s["header"]["member_id"] == s["leader"];
    let leader = (0..3)
        .find(|&i| leader_of(&status(i)))
        .expect("a leader among the three");
    let leader_name = lane.at(leader).name.clone();

    // The plan names the three moves.
    ws.write("main.tf", &image_config(&lane, FROM, &to, "update = \"10m\""));
    let plan = ws.ok(&["plan", "-input=false"]);
    let flat = support::flat(&plan);
    for i in 0..3 {
        let name = &lane.at(i).name;
        assert!(
            flat.contains(&format!("- {name}: {LANE_ETCD} → {to_release}")),
            "the plan names {name}'s move:\n{plan}"
        );
    }

    let (took, samples) = apply_while_probing(
        &ws,
        &lane,
        "etcd move",
        Some("/api/v1/namespaces/default/configmaps/kept"),
        Duration::from_secs(3),
    );
    let failed: Vec<&String> = samples.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    eprintln!(
        "etcd on three: {LANE_ETCD} → {to_release} in an apply of {took:?}; {} requests through the load balancer, {} failed",
        samples.len(),
        failed.len()
    );
    assert!(samples.len() > 50, "the probe ran through the apply: {}", samples.len());
    assert!(
        failed.is_empty(),
        "no failed request through the load balancer: {failed:?}"
    );

    // Every member runs the new release, on its data, and holds a leader.
    for i in 0..3 {
        let s = status(i);
        assert_eq!(s["version"], to_release, "{}: {s}", lane.at(i).name);
        let env = lane.tb.host_exec(&lane.at(i).name, &["cat", "/etc/etcd/image.env"]);
        assert_eq!(String::from_utf8_lossy(&env.stdout).trim(), format!("ETCD_IMAGE={to}"));
    }
    assert_eq!(
        kubectl(&kubeconfig, &["get", "configmap", "kept", "-o", "jsonpath={.data.k}"]),
        "v"
    );
    // One at a time, the leader last: when each member started on the new release.
    let started_at = |i: usize| -> String {
        let log = lane.agent_log(i);
        let line = log
            .lines()
            .rfind(|l| l.contains("etcd started") && l.contains(&format!("etcd-v{to_release}")))
            .unwrap_or_else(|| panic!("{} started etcd {to_release}:\n{log}", lane.at(i).name));
        line.split_whitespace().next().unwrap_or_default().to_owned()
    };
    let mut order: Vec<(String, String)> = (0..3).map(|i| (started_at(i), lane.at(i).name.clone())).collect();
    order.sort();
    eprintln!("etcd on three: started on {to_release} at {order:?}; the leader before was {leader_name}");
    assert_eq!(order[2].1, leader_name, "the leader moves last: {order:?}");
    let recorded = ws.resource_values("selfhosted_bootstrap");
    for i in 0..3 {
        assert_eq!(recorded["etcd_versions"][&lane.at(i).name], to_release, "{recorded}");
    }
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "the plan after the move is empty:\n{text}");
}
