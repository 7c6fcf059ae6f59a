//! The default networking, for real: `terraform apply` of a cluster with the provider's
//! default add-ons — flannel (VXLAN), kube-proxy (iptables) and CoreDNS — on a controller and a
//! worker whose hosts have no pod network until flannel's DaemonSet installs its CNI plugin and
//! config. A pod on the worker then resolves `kubernetes.default` through CoreDNS and reaches
//! the apiserver through the `kubernetes` Service's IP, as any workload does. Then an attacker
//! holding the worker's disk tries every way to the CA key, and is refused at each step.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::lane::*;
use support::Workspace;

/// Every refresh checks the hosts (node secrets, etcd members): a plan after the create must
/// find nothing, one after a worker lost its files must find them.
const CHECKS: &str = "  check_hosts_on_refresh = true\n";

fn config(lane: &Lane) -> String {
    LaneConfig::new(lane)
        .workers(&lane.workers)
        .pod_network()
        .timeouts("create = \"20m\"")
        .bootstrap(CHECKS)
        .hcl()
}

fn get(kubeconfig: &std::path::Path, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend(args);
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl(kubeconfig, &all)).expect("kubectl prints JSON")
}

fn condition(obj: &Value, kind: &str) -> bool {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

/// The last log lines of each kube-system pod container that is not ready (of its previous
/// run when it restarted), the evidence of why an add-on does not come up.
fn not_ready_logs(kubeconfig: &std::path::Path) -> String {
    let pods = get(kubeconfig, &["-n", "kube-system", "pods"]);
    let mut out = String::new();
    for pod in pods["items"].as_array().into_iter().flatten() {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        for c in pod["status"]["containerStatuses"].as_array().into_iter().flatten() {
            if c["ready"] == true {
                continue;
            }
            let container = c["name"].as_str().unwrap_or_default();
            let mut args = vec!["-n", "kube-system", "logs", name, "-c", container, "--tail=15"];
            if c["restartCount"].as_u64().unwrap_or(0) > 0 {
                args.push("--previous");
            }
            let logs = std::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .args(&args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
                .unwrap_or_else(|e| e.to_string());
            out.push_str(&format!("--- {name}/{container}\n{logs}\n"));
        }
    }
    out
}

#[test]
fn a_pod_on_a_worker_resolves_the_api_through_coredns_and_reaches_it_through_its_service() {
    let Some(lane) = Lane::up_with_pod_network("pod-network", Topology::ONE_CONTROLLER_ONE_WORKER) else {
        return;
    };
    let ws = Workspace::new(&config(&lane));
    let kubeconfig = ws.path().join("assets/auth/admin.kubeconfig");
    let started = Instant::now();
    apply_ok(&ws, &lane, "create with flannel, kube-proxy and CoreDNS");
    let applied = started.elapsed();
    let worker = lane.at(lane.workers[0]).name.clone();

    // Nodes turn Ready only once flannel has written its CNI config on them.
    eventually(Duration::from_secs(180), "both nodes Ready", || {
        let nodes = get(&kubeconfig, &["nodes"]);
        let items = nodes["items"].as_array().cloned().unwrap_or_default();
        let ready: Vec<bool> = items.iter().map(|n| condition(n, "Ready")).collect();
        if items.len() == 2 && ready.iter().all(|r| *r) {
            Ok(())
        } else {
            Err(format!("{} nodes, Ready: {ready:?}\n{}", items.len(), lane.logs()))
        }
    });
    let nodes_ready = started.elapsed();
    eventually(
        Duration::from_secs(180),
        "flannel, kube-proxy and CoreDNS running",
        || {
            let mut missing = Vec::new();
            for ds in ["flannel", "kube-proxy"] {
                let d = get(&kubeconfig, &["-n", "kube-system", "daemonset", ds]);
                if d["status"]["numberReady"] != 2 {
                    missing.push(format!("{ds}: {} of 2 ready", d["status"]["numberReady"]));
                }
            }
            let dns = get(&kubeconfig, &["-n", "kube-system", "deployment", "coredns"]);
            if !condition(&dns, "Available") {
                missing.push(format!("coredns: {}", dns["status"]));
            }
            if missing.is_empty() {
                Ok(())
            } else {
                let pods = kubectl(&kubeconfig, &["-n", "kube-system", "get", "pods", "-o", "wide"]);
                Err(format!("{missing:?}\n{pods}\n{}", not_ready_logs(&kubeconfig)))
            }
        },
    );
    let addons_ready = started.elapsed();

    // CoreDNS's pods and where they run.
    let dns = get(&kubeconfig, &["-n", "kube-system", "pods", "-l", "k8s-app=coredns"]);
    let dns_pods: Vec<(String, String)> = dns["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["status"]["podIP"].as_str().unwrap_or_default().to_owned(),
                p["spec"]["nodeName"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(!dns_pods.is_empty(), "CoreDNS has pods: {dns}");

    // A netcheck pod on each node, on the pod network (not hostNetwork), with the default DNS
    // policy: the name through the Service IP of CoreDNS, then through each CoreDNS pod
    // directly, then the API through its Service IP. Whichever node CoreDNS runs on, one of the
    // two crosses to the other node over flannel's VXLAN.
    let controller = lane.host().name.clone();
    let mut args = vec!["kubernetes.default".to_owned()];
    args.extend(dns_pods.iter().map(|(ip, _)| ip.clone()));
    let pods: Vec<(String, String)> = [&worker, &controller]
        .into_iter()
        .map(|node| (format!("netcheck-{node}"), node.clone()))
        .collect();
    for (name, node) in &pods {
        let file = ws.path().join(format!("{name}.yaml"));
        let spec = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": name, "namespace": "default" },
            "spec": {
                "nodeName": node,
                "restartPolicy": "Never",
                "tolerations": [{ "operator": "Exists" }],
                "containers": [{
                    "name": "netcheck",
                    "image": NETCHECK_IMAGE,
                    "imagePullPolicy": "Never",
                    "args": args,
                }],
            },
        });
        std::fs::write(&file, spec.to_string()).unwrap();
        kubectl(&kubeconfig, &["apply", "-f", file.to_str().unwrap()]);
    }
    for (name, node) in &pods {
        eventually(Duration::from_secs(150), &format!("{name} finished"), || {
            let p = get(&kubeconfig, &["-n", "default", "pod", name]);
            match p["status"]["phase"].as_str() {
                Some("Succeeded") | Some("Failed") => Ok(()),
                other => Err(format!("{other:?}: {}", p["status"])),
            }
        });
        let p = get(&kubeconfig, &["-n", "default", "pod", name]);
        let logs = kubectl(&kubeconfig, &["-n", "default", "logs", name]);
        let ip = p["status"]["podIP"].as_str().unwrap_or_default().to_owned();
        eprintln!("{name} on {node} (pod IP {ip}); CoreDNS pods (IP, node): {dns_pods:?}\n{logs}");
        assert_eq!(p["status"]["phase"], "Succeeded", "{name} failed:\n{logs}");
        assert!(
            logs.contains("kubernetes.default resolved to 10.3.0.1 through the pod's resolv.conf"),
            "{name} resolved the API's name through CoreDNS's Service:\n{logs}"
        );
        for (dns_ip, dns_node) in &dns_pods {
            assert!(
                logs.contains(&format!("resolved to 10.3.0.1 through the DNS pod {dns_ip}")),
                "{name} on {node} asked the CoreDNS pod {dns_ip} on {dns_node} directly:\n{logs}"
            );
        }
        assert!(
            logs.contains(&format!("200, gitVersion {}", lane.version)),
            "{name} reached the apiserver through the Service IP:\n{logs}"
        );
        // The pod's address is from its node's flannel subnet (the node's podCIDR).
        let cidr = get(&kubeconfig, &["node", node])["spec"]["podCIDR"]
            .as_str()
            .expect("the node has a podCIDR")
            .to_owned();
        let prefix = cidr
            .rsplit_once('.')
            .map(|(net, _)| format!("{net}."))
            .unwrap_or_default();
        assert!(
            !prefix.is_empty() && ip.starts_with(&prefix),
            "{name}'s IP {ip} is in {node}'s podCIDR {cidr}"
        );
    }
    eprintln!("pod network: apply {applied:?}, nodes Ready at {nodes_ready:?}, add-ons ready at {addons_ready:?}");

    // The worker joined through the provider's approver (the workers' token); now play the
    // attacker who holds that worker's disk.
    support::attacker::a_workers_disk_opens_nothing(
        &lane,
        &worker,
        &controller,
        &ws.path().join("assets"),
        &ws.path().join("attacker"),
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "the plan after the create is empty:\n{text}");
    assert!(
        !text.contains("Warning"),
        "the checked hosts are as the apply left them:\n{text}"
    );

    // --- the worker's node secrets lost (a disk wiped, a file removed by hand) ---
    // The refresh's host checks name the file, and the plan shows the update that puts it back.
    let gone = "/etc/kubernetes/ca.crt";
    let out = lane.tb.host_exec(&worker, &["rm", gone]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (changes, text) = ws.plan_has_changes();
    // Terraform folds a warning's lines.
    let text = support::flat(&text);
    assert!(
        changes
            && text.contains("the hosts differ from the last apply")
            && text.contains(&format!(
                "{worker}: node secrets missing or changed since the last apply: {gone}"
            )),
        "the plan names the lost file and plans the update:\n{text}"
    );
    let started = Instant::now();
    apply_ok(&ws, &lane, "node secrets delivered again");
    let back = lane.tb.host_exec(&worker, &["stat", "-c", "%U:%a", gone]);
    assert_eq!(
        String::from_utf8_lossy(&back.stdout).trim(),
        "root:644",
        "{gone} is back on {worker}"
    );
    eprintln!(
        "pod network: {gone} removed on {worker}, named by the plan, delivered again in {:?}",
        started.elapsed()
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(
        !changes && !text.contains("Warning"),
        "the plan after the delivery is empty:\n{text}"
    );

    // --- the worker's machine is lost for good ---
    // Powered off, never back: its Node stops reporting and is tainted unreachable. The user
    // removes it from `workers` and, in the same apply, changes kube-proxy: the rollout (one
    // node at a time) must not wait for the lost node, nor the removal for its pods, which no
    // kubelet will ever end.
    lane.power_off(&[lane.workers[0]]);
    let lost_at = Instant::now();
    eventually(
        Duration::from_secs(240),
        &format!("node {worker} tainted node.kubernetes.io/unreachable"),
        || {
            let taints = get(&kubeconfig, &["node", &worker])["spec"]["taints"].to_string();
            if taints.contains("node.kubernetes.io/unreachable") {
                Ok(())
            } else {
                Err(taints)
            }
        },
    );
    eprintln!(
        "pod network: worker {worker} powered off for good; tainted unreachable after {:?}",
        lost_at.elapsed()
    );
    let without_worker = LaneConfig::new(&lane)
        .workers(&[])
        .pod_network()
        .timeouts("create = \"20m\", update = \"10m\"")
        .bootstrap(CHECKS)
        .hcl()
        .replace(
            "\"--conntrack-max-per-core=0\"]",
            "\"--conntrack-max-per-core=0\", \"--v=3\"]",
        );
    assert!(without_worker.contains("--v=3"), "{without_worker}");
    ws.write("main.tf", &without_worker);
    let started = Instant::now();
    apply_ok(&ws, &lane, "kube-proxy changed and the lost worker removed");
    eprintln!(
        "pod network: kube-proxy rolled out and the lost worker {worker} removed in {:?}",
        started.elapsed()
    );
    let proxy = get(&kubeconfig, &["-n", "kube-system", "daemonset", "kube-proxy"]);
    let args = proxy["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(args.contains("--v=3"), "kube-proxy has the new flag: {args}");
    let status = &proxy["status"];
    assert_eq!(
        (
            status["desiredNumberScheduled"].as_u64(),
            status["updatedNumberScheduled"].as_u64(),
            status["numberAvailable"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "kube-proxy runs updated on the controller, the one node left: {status}"
    );
    let nodes = get(&kubeconfig, &["nodes"]);
    let names: Vec<&str> = nodes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, [controller.as_str()], "the lost worker's Node is deleted");
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "the plan after the removal is empty:\n{text}");
}
