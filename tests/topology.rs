//! The topology users run, through the real `terraform` CLI on the real lane: three controllers
//! (a three-member etcd over mutual TLS, grown from one) and workers, with HAProxy in front of
//! the apiservers on a host of its own playing the cloud load balancer (HTTPS `/readyz` health
//! checks, as the docs advise), `api_servers` naming it. A client sends a real API request
//! through the load balancer every 50 ms on a fresh connection throughout each apply, while
//! controllers reboot, while a controller whose disk was lost is brought back, and while the
//! control plane shrinks back to one controller.

mod support;

use std::time::{Duration, Instant};

use selfhosted_cluster::Fingerprint;
use serde_json::Value;
use support::endpoints::EndpointsWatch;
use support::lane::*;
use support::Workspace;

fn config(lane: &Lane, workers: &[usize], extra: &str) -> String {
    config_with(lane, &lane.controllers, workers, extra, "")
}

/// [`config`] of some of the lane's controllers, with more lines in `selfhosted_bootstrap`.
fn config_with(lane: &Lane, controllers: &[usize], workers: &[usize], extra: &str, bootstrap: &str) -> String {
    LaneConfig::new(lane)
        .controllers(controllers)
        .workers(workers)
        .assets(extra)
        .bootstrap(bootstrap)
        .timeouts("create = \"20m\", update = \"15m\"")
        .hcl()
}

/// Applies the configuration written while a client sends a real API request through the load
/// balancer every 50 ms, on a fresh connection, and the `kubernetes` Service's endpoints are
/// read every 0.3 s; asserts that the probe ran through the apply and that no request failed.
/// The endpoints are measured, not asserted: the old generation retires one controller at a
/// time (its exits take one address at a time), but each new apiserver removes its
/// controller's address when it starts until it is ready (upstream's rule), and the new
/// DaemonSet starts them on every controller at once (docs/guides/upgrades.md).
fn upgrade_losing_no_request(ws: &Workspace, lane: &Lane, what: &str) {
    let endpoints = EndpointsWatch::start(&ws.path().join("assets"), lane.api_address());
    let (took, samples) = apply_while_probing(ws, lane, what, Some(API_REQUEST), Duration::from_secs(3));
    eprintln!("{}", endpoints.finish().line(&format!("topology {what}")));
    let failed: Vec<&String> = samples.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    eprintln!(
        "topology {what}: apply took {took:?}; {} requests through the load balancer, {} failed",
        samples.len(),
        failed.len()
    );
    assert!(
        samples.len() > 100,
        "the probe ran through the {what}: {}",
        samples.len()
    );
    assert_eq!(
        failed.len(),
        0,
        "no failed request through the load balancer in the {what}: {failed:?}"
    );
}

/// Runs `during` while etcd's members are listed from the first controller every 0.25 s;
/// each learner seen is asked for its status at the client address it advertises. Returns
/// what `during` returned, the looks that saw a learner, and the answers a learner gave there.
fn watching_learners<T>(lane: &Lane, during: impl FnOnce() -> T) -> (T, usize, Vec<String>) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let watch = s.spawn(|| {
            let (mut looks, mut open) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let first = lane.controllers[0];
                let own = format!("https://{}:2379", lane.at(first).address);
                let list = lane.etcdctl_at(first, &own, &["member", "list", "--write-out", "json"]);
                let out: Value = serde_json::from_slice(&list.stdout).unwrap_or_default();
                let learners = out["members"].as_array().cloned().unwrap_or_default();
                let learners: Vec<&Value> = learners.iter().filter(|m| m["isLearner"] == true).collect();
                if !learners.is_empty() {
                    looks += 1;
                }
                for m in learners {
                    for url in m["clientURLs"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        // etcdctl dials for up to 2 s: what answers must say of itself that it is a
                        // learner (a member promoted meanwhile serves there, rightly).
                        let st = lane.etcdctl_at(first, url, &["endpoint", "status", "--write-out", "json"]);
                        let status: Value = serde_json::from_slice(&st.stdout).unwrap_or_default();
                        if st.status.success() && status[0]["Status"]["isLearner"] == true {
                            open.push(format!("{url}: {status}"));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            (looks, open)
        });
        let out = during();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (looks, open) = watch.join().expect("the learner watch");
        (out, looks, open)
    })
}

/// `kubectl get <what> -o json`'s items.
fn items(kubeconfig: &std::path::Path, args: &[&str]) -> Vec<Value> {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let text = kubectl(kubeconfig, &all);
    let v: Value = serde_json::from_str(&text).expect("kubectl json");
    v["items"].as_array().cloned().unwrap_or_default()
}

fn ready(obj: &Value) -> bool {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The nodes: name → (Ready, has the control-plane role label).
fn nodes(kubeconfig: &std::path::Path) -> Vec<(String, bool, bool)> {
    items(kubeconfig, &["get", "nodes"])
        .iter()
        .map(|n| {
            (
                n["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                ready(n),
                n["metadata"]["labels"]
                    .get("node-role.kubernetes.io/control-plane")
                    .is_some(),
            )
        })
        .collect()
}

/// The least memory the machine had available, sampled every second until stopped.
struct MemoryWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

fn mem_available_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

impl MemoryWatch {
    fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut least = u64::MAX;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                least = least.min(mem_available_kib());
                std::thread::sleep(Duration::from_secs(1));
            }
            least
        });
        MemoryWatch { stop, thread }
    }

    fn least_kib(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// Create, upgrade (with all etcd members, then with one stopped), scale-out and scale-in of a
/// 3-controller, multi-worker cluster behind a load balancer, then a reboot of one controller
/// and of all three at once: no request through the load balancer fails once the bootstrap
/// apiserver has left, nor in either upgrade, nor while one controller of three reboots; after a power loss of every
/// controller the API comes back by itself; every next plan is empty.
#[test]
fn three_controllers_and_workers_behind_a_load_balancer() {
    let before = mem_available_kib();
    let memory = MemoryWatch::start();
    let Some(mut lane) = Lane::up_with(
        "topology",
        Topology {
            controllers: 3,
            workers: 3,
            balancer: true,
        },
    ) else {
        return;
    };
    // The third worker host waits for the scale-out; the cluster starts with one controller,
    // booted when it was the only one, and grows to three.
    let initial = &lane.workers[..2].to_vec();
    let first = &lane.controllers[..1].to_vec();
    lane.boot_first_controller_alone();
    let ws = Workspace::new(&config_with(&lane, first, initial, "", ""));
    let assets = ws.path().join("assets");
    let kubeconfig = assets.join("auth/admin.kubeconfig");

    // --- create ---
    let endpoints = EndpointsWatch::start(&assets, lane.api_address());
    let (took, samples) = apply_while_probing(&ws, &lane, "create", Some(API_REQUEST), Duration::from_secs(5));
    endpoints.finish().assert_never_empty("topology create");
    let read = |p: &str| std::fs::read_to_string(assets.join(p)).unwrap();
    let self_hosted = Fingerprint::of_pem(&read("tls/apiserver.crt")).unwrap();
    let bootstrap = Fingerprint::of_pem(&read("tls/bootstrap-apiserver.crt")).unwrap();
    let last_bootstrap = samples
        .iter()
        .rposition(|(_, fp)| fp.as_ref() == Ok(&bootstrap))
        .expect("the bootstrap apiserver answered through the load balancer");
    let after: Vec<&String> = samples[last_bootstrap + 1..]
        .iter()
        .filter_map(|(_, fp)| fp.as_ref().err())
        .collect();
    eprintln!(
        "topology create (1 controller, 2 workers, load balancer): apply took {took:?}; {} requests through the load balancer, {} after the bootstrap apiserver left, {} of those failed",
        samples.len(),
        samples.len() - last_bootstrap - 1,
        after.len()
    );
    assert!(
        samples.len() - last_bootstrap > 20,
        "the probe kept going after the teardown"
    );
    assert_eq!(
        after.len(),
        0,
        "no failed request once the bootstrap apiserver left: {after:?}"
    );
    assert_eq!(samples.last().unwrap().1.as_ref(), Ok(&self_hosted));
    // Host names stay for life (a new machine takes the old one's).
    let host_names: Vec<String> = lane.tb.hosts().iter().map(|h| h.name.clone()).collect();
    let names = |idx: &[usize]| -> Vec<String> { idx.iter().map(|i| host_names[*i].clone()).collect() };
    let mut seen: Vec<String> = nodes(&kubeconfig).into_iter().map(|(n, _, _)| n).collect();
    seen.sort();
    let mut want = names(first);
    want.extend(names(initial));
    want.sort();
    assert_eq!(seen, want, "one controller and two workers");
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "the plan after the create is empty:\n{text}");

    // --- growth: 1 → 3 controllers, with an apiserver flag and a controller-manager flag in
    // the same apply. Each new etcd member joins as a learner, is promoted once in sync, and
    // only then does the next join; the apiservers roll to the new etcd_servers and flag as
    // one new generation ---
    let flags = "  extra_flags = { \"kube_apiserver\" = [\"--v=3\"], \"kube_controller_manager\" = [\"--v=3\"] }";
    let generation = apiserver_generations(&kubeconfig);
    ws.write("main.tf", &config(&lane, initial, flags));
    upgrade_losing_no_request(
        &ws,
        &lane,
        "growth from 1 to 3 controllers, with apiserver and controller-manager flags",
    );
    let upgraded = assert_one_new_generation(&kubeconfig, &generation, "--v=3");
    let kcm = kubectl(
        &kubeconfig,
        &[
            "-n",
            "kube-system",
            "get",
            "deployment",
            "kube-controller-manager",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].args}",
        ],
    );
    assert!(
        kcm.contains("--v=3"),
        "the controller-manager rolled with its new flag: {kcm}"
    );
    let members = lane.etcdctl(lane.controllers[0], &["member", "list"]);
    eprintln!("topology: etcd members after the growth:\n{members}");
    assert_eq!(
        members
            .lines()
            .filter(|l| l.contains(", started, ") && l.trim_end().ends_with("false"))
            .count(),
        3,
        "three started voting members:\n{members}"
    );
    assert_eq!(members.lines().count(), 3, "no other member:\n{members}");
    let mut seen = nodes(&kubeconfig);
    seen.sort();
    let mut want: Vec<(String, bool, bool)> = names(&lane.controllers)
        .into_iter()
        .map(|n| (n, true, true))
        .chain(names(initial).into_iter().map(|n| (n, true, false)))
        .collect();
    want.sort();
    assert_eq!(
        seen, want,
        "every node Ready; controllers, and only they, labelled control plane"
    );
    let apiservers = items(
        &kubeconfig,
        &["-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-apiserver"],
    );
    let mut on: Vec<String> = apiservers
        .iter()
        .filter(|p| ready(p))
        .map(|p| p["spec"]["nodeName"].as_str().unwrap_or_default().to_owned())
        .collect();
    on.sort();
    assert_eq!(on, names(&lane.controllers), "an apiserver Ready on every controller");
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        assert!(
            !lease_holder(&kubeconfig, lease).trim().is_empty(),
            "{lease} lease held"
        );
    }
    assert!(
        !lane.ls("/etc/kubernetes/manifests").contains("bootstrap"),
        "bootstrap control plane gone"
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "the plan after the growth is empty:\n{text}");

    // --- an upgrade with one etcd member down: the other two (a quorum) carry it ---
    let third = lane.controllers[2];
    lane.stop_etcd(third);
    // the apiservers' etcd clients see the member gone before the probe starts (the stop
    // itself may cost an in-flight call, as in the reboot below)
    std::thread::sleep(Duration::from_secs(5));
    let flags = "  extra_flags = { \"kube_apiserver\" = [\"--v=2\"], \"kube_controller_manager\" = [\"--v=3\"] }";
    ws.write("main.tf", &config(&lane, initial, flags));
    upgrade_losing_no_request(&ws, &lane, "upgrade with an etcd member down");
    let upgraded = assert_one_new_generation(&kubeconfig, &upgraded, "--v=2");
    assert!(
        lane.etcd_pids(third).is_empty(),
        "the etcd member of {} stayed down through the upgrade",
        lane.at(third).name
    );
    lane.start_etcd(third);
    let (changes, text) = ws.plan_has_changes();
    assert!(
        !changes,
        "the plan after the upgrade with an etcd member down is empty:\n{text}"
    );

    // --- scale-out: a third worker joins, the control plane is left alone ---
    let all = &lane.workers[..];
    let spare = lane.at(lane.workers[2]).name.clone();
    ws.write("main.tf", &config(&lane, all, flags));
    let started = Instant::now();
    apply_ok(&ws, &lane, "scale-out");
    eprintln!("topology scale-out: apply took {:?}", started.elapsed());
    eventually(Duration::from_secs(120), &format!("node {spare} Ready"), || {
        let seen = nodes(&kubeconfig);
        match seen.iter().find(|(n, _, _)| *n == spare) {
            Some((_, true, false)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(
        apiserver_generations(&kubeconfig),
        upgraded,
        "a scale-out leaves the control plane alone"
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "the plan after the scale-out is empty:\n{text}");

    // --- scale-in: a pod on the leaving worker is evicted, its Node deleted ---
    let pinned = ws.path().join("pinned.yaml");
    std::fs::write(
        &pinned,
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: pinned, namespace: default}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: pinned}}}}\n  template:\n    metadata: {{labels: {{app: pinned}}}}\n    spec:\n      hostNetwork: true\n      nodeSelector: {{kubernetes.io/hostname: {spare}}}\n      containers: [{{name: pause, image: \"{pause}\"}}]\n",
            pause = lane.pause_image()
        ),
    )
    .unwrap();
    kubectl(&kubeconfig, &["apply", "-f", pinned.to_str().unwrap()]);
    let on_spare = || {
        items(
            &kubeconfig,
            &[
                "get",
                "pods",
                "-A",
                "--field-selector",
                &format!("spec.nodeName={spare}"),
            ],
        )
    };
    eventually(
        Duration::from_secs(120),
        "the pinned pod Running on the leaving worker",
        || {
            let running = on_spare()
                .iter()
                .any(|p| p["metadata"]["labels"]["app"] == "pinned" && p["status"]["phase"] == "Running");
            if running {
                Ok(())
            } else {
                Err(format!("{:?}", on_spare().len()))
            }
        },
    );
    ws.write("main.tf", &config(&lane, initial, flags));
    let started = Instant::now();
    apply_ok(&ws, &lane, "scale-in");
    eprintln!("topology scale-in: apply took {:?}", started.elapsed());
    assert!(
        !nodes(&kubeconfig).iter().any(|(n, _, _)| *n == spare),
        "the Node of the removed worker is deleted"
    );
    let left: Vec<String> = on_spare()
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "pinned")
        .map(|p| p["metadata"]["name"].to_string())
        .collect();
    assert!(
        left.is_empty(),
        "the pinned pod was evicted from the leaving worker: {left:?}"
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "the plan after the scale-in is empty:\n{text}");

    // --- one controller of three reboots: the other two keep serving through the load balancer ---
    let second = lane.controllers[1];
    let prober = Prober::start(&assets, lane.api_address(), Some(API_REQUEST));
    let endpoints = EndpointsWatch::start(&assets, lane.api_address());
    let down = Instant::now();
    lane.os_reboot(&[second]);
    let booted = Instant::now();
    let back = lane.await_self_hosted(
        &assets,
        &lane.at(second).address,
        &self_hosted,
        booted,
        Duration::from_secs(300),
    );
    std::thread::sleep(Duration::from_secs(5));
    let samples = prober.finish();
    // The other two controllers' addresses stay; the rebooted one leaves and comes back.
    endpoints
        .finish()
        .assert_never_empty("topology: one controller of three rebooted");
    let failed: Vec<String> = samples
        .iter()
        .filter_map(|(at, r)| {
            let offset = at.saturating_duration_since(down).as_secs_f64() - (booted - down).as_secs_f64();
            r.as_ref().err().map(|e| format!("{offset:+.1} s from the boot: {e}"))
        })
        .collect();
    eprintln!(
        "topology: {} rebooted ({:?} down); its self-hosted apiserver answered {:?} after the boot; {} requests through the load balancer, {} failed",
        lane.at(second).name,
        booted - down,
        back.self_hosted,
        samples.len(),
        failed.len()
    );
    // The one failure class seen here is not the apiserver's: while the rebooting controller's
    // etcd member stops, a surviving apiserver's etcd client may lose an in-flight call to it,
    // a 500 ("transport: missing content-type field" from the etcd client of v1.20, "malformed
    // header: missing HTTP content-type" from the newer gRPC of v1.34 on). Every other request
    // must succeed, and those may be at most a couple (docs/guides/disaster-recovery.md says so).
    let etcd_member_stopped = |f: &String| {
        f.contains("answered 500")
            && (f.contains("missing content-type field") || f.contains("missing HTTP content-type"))
    };
    let (etcd_stop, others): (Vec<&String>, Vec<&String>) = failed.iter().partition(|f| etcd_member_stopped(f));
    assert_eq!(
        others.len(),
        0,
        "no failed request while one controller of three reboots: {failed:?}"
    );
    assert!(etcd_stop.len() <= 2, "etcd member stop: {etcd_stop:?}");

    // --- every controller at once (a site's power loss): back by itself ---
    let controllers = lane.controllers.clone();
    let endpoints = EndpointsWatch::start(&assets, lane.api_address());
    lane.power_cycle(&controllers);
    let booted = Instant::now();
    let back = lane.await_self_hosted(
        &assets,
        lane.api_address(),
        &self_hosted,
        booted,
        Duration::from_secs(300),
    );
    eprintln!(
        "topology: all three controllers rebooted at once; an apiserver answered through the load balancer {:?} after the boot, the self-hosted one {:?}",
        back.any, back.self_hosted
    );
    eventually(
        Duration::from_secs(300),
        "an apiserver Ready on every controller again",
        || {
            let mut on: Vec<String> = items(
                &kubeconfig,
                &["-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-apiserver"],
            )
            .iter()
            .filter(|p| ready(p))
            .map(|p| p["spec"]["nodeName"].as_str().unwrap_or_default().to_owned())
            .collect();
            on.sort();
            if on == names(&lane.controllers) {
                Ok(())
            } else {
                Err(format!("{on:?}"))
            }
        },
    );
    // Measured only: nothing serves while every controller is down, and the recovery
    // apiservers write no address (the list from before the power loss stays).
    eprintln!(
        "{}",
        endpoints.finish().line("topology: all three controllers power-cycled")
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "the plan after the reboots is empty:\n{text}");

    // --- the third controller is a new machine under its name and address ---
    // Its etcd data, kubelet state and node secrets are gone, and its etcd.env is a first
    // boot's (a new cluster). While it keeps its SSH host key, the refresh sees the blank disk
    // and plans the update. With a new host key (a new machine) it cannot log in with the key it
    // holds and says so, naming the key the host shows; once the user pins the new key, the
    // plan updates, and the apply replaces its etcd member (removed, added again), delivers
    // its secrets, and it serves again: no request lost meanwhile.
    // The three controllers with host checks on refresh, pinning the keys the hosts have now.
    let checked = |lane: &Lane| {
        config_with(
            lane,
            &lane.controllers,
            initial,
            flags,
            "  check_hosts_on_refresh = true",
        )
    };
    ws.write("main.tf", &checked(&lane));
    apply_ok(&ws, &lane, "host checks on refresh");
    let third_name = lane.at(third).name.clone();
    let old_key = lane.at(third).fingerprint.clone();
    lane.lose_disk(third);
    let (changes, text) = ws.plan_has_changes();
    let flat = support::flat(&text);
    assert!(
        changes && flat.contains(&third_name),
        "the refresh names the blank controller and plans the update:\n{text}"
    );
    lane.new_host_key(third);
    let new_key = lane.at(third).fingerprint.clone();
    assert_ne!(old_key, new_key, "a new host key");
    let (changes, text) = ws.plan_has_changes();
    let flat = support::flat(&text);
    assert!(
        !changes
            && flat.contains("the hosts were not checked")
            && flat.contains(&third_name)
            && flat.contains(&new_key),
        "the refresh cannot log in to the new machine with its old key, and says which key it shows:\n{text}"
    );
    ws.write("main.tf", &checked(&lane));
    let (changes, text) = ws.plan_has_changes();
    assert!(changes, "the new key pinned, the plan updates:\n{text}");
    let ((), learner_looks, open) = watching_learners(&lane, || {
        upgrade_losing_no_request(&ws, &lane, "replacement of a controller whose disk was lost")
    });
    eprintln!(
        "topology replacement: etcd members listed every 0.25 s; {learner_looks} looks saw a learner, \
         {} found its client address open",
        open.len()
    );
    assert!(
        open.is_empty(),
        "a learner serves clients only on loopback (the apiservers' etcd client would send it reads it refuses): {open:?}"
    );
    let members = lane.etcdctl(lane.controllers[0], &["member", "list"]);
    let started: Vec<&str> = members.lines().filter(|l| l.contains(", started, ")).collect();
    eprintln!("topology: etcd members after the replacement:\n{members}");
    assert_eq!(started.len(), 3, "three started etcd members, none stale:\n{members}");
    assert_eq!(members.lines().count(), 3, "no other member listed:\n{members}");
    let health = lane.etcdctl(
        lane.controllers[0],
        &["endpoint", "health", "--cluster", "--write-out", "json"],
    );
    assert_eq!(
        health.matches("\"health\":true").count(),
        3,
        "every member healthy:\n{health}"
    );
    eventually(
        Duration::from_secs(120),
        &format!("{third_name} Ready with its apiserver"),
        || {
            let ok = nodes(&kubeconfig).iter().any(|(n, r, _)| *n == third_name && *r)
                && items(
                    &kubeconfig,
                    &["-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-apiserver"],
                )
                .iter()
                .any(|p| ready(p) && p["spec"]["nodeName"] == third_name.as_str());
            if ok {
                Ok(())
            } else {
                Err(format!("{:?}", nodes(&kubeconfig)))
            }
        },
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "the plan after the replacement is empty:\n{text}");

    // --- two controllers replaced at once would lose etcd's quorum: refused at plan, by name ---
    let current = checked(&lane);
    let second = &lane.at(lane.controllers[1]).name;
    let two_new = current
        .replace(&format!("name = \"{second}\""), &format!("name = \"{second}-new\""))
        .replace(
            &format!("name = \"{third_name}\""),
            &format!("name = \"{third_name}-new\""),
        );
    assert_ne!(two_new, current, "the configuration names the controllers");
    ws.write("main.tf", &two_new);
    let refused = ws.fails(&["plan", "-input=false"]);
    let flat = support::flat(&refused);
    assert!(
        flat.contains("Too many controllers replaced at once")
            && flat.contains(&format!("\"{second}\", \"{third_name}\""))
            && flat.contains("one controller per apply"),
        "the plan refuses, naming both:\n{refused}"
    );
    ws.write("main.tf", &current);
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "nothing changed by the refused plan:\n{text}");

    // --- shrink: 3 → 1 controller (and etcd_servers with it). The two that leave lose their
    // recovery apiserver, control-plane label (their apiservers stop), Nodes, etcd members and
    // the cluster's files; nothing fails through the load balancer meanwhile ---
    let leaving = &lane.controllers[1..];
    ws.write(
        "main.tf",
        &config_with(&lane, first, initial, flags, "  check_hosts_on_refresh = true"),
    );
    upgrade_losing_no_request(&ws, &lane, "shrink from 3 controllers to 1");
    let members = lane.etcdctl(lane.controllers[0], &["member", "list"]);
    eprintln!("topology: etcd members after the shrink:\n{members}");
    assert_eq!(members.lines().count(), 1, "one etcd member left:\n{members}");
    assert!(
        members.contains(&lane.at(lane.controllers[0]).address),
        "the first controller's member stays:\n{members}"
    );
    let mut seen = nodes(&kubeconfig);
    seen.sort();
    let mut want: Vec<(String, bool, bool)> = names(first)
        .into_iter()
        .map(|n| (n, true, true))
        .chain(names(initial).into_iter().map(|n| (n, true, false)))
        .collect();
    want.sort();
    assert_eq!(seen, want, "the leaving controllers' Nodes are deleted");
    let on: Vec<String> = items(
        &kubeconfig,
        &["-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-apiserver"],
    )
    .iter()
    .map(|p| p["spec"]["nodeName"].as_str().unwrap_or_default().to_owned())
    .collect();
    assert_eq!(on, names(first), "apiservers run on the controller that stays alone");
    for &i in leaving {
        let name = &lane.at(i).name;
        let manifests = lane.ls_at(i, "/etc/kubernetes/manifests");
        assert!(
            !manifests.contains("recovery"),
            "{name}'s recovery apiserver is gone: {manifests}"
        );
        for (dir, file) in [("/etc/ssl/etcd/etcd", "server.key"), ("/etc/kubernetes", "kubeconfig")] {
            let left = lane.ls_at(i, dir);
            assert!(
                !left.lines().any(|l| l == file),
                "{name}'s {dir}/{file} is removed: {left}"
            );
        }
        let calls = lane.tb.host_exec(name, &["cat", "/var/log/systemctl.log"]);
        let calls = String::from_utf8_lossy(&calls.stdout);
        assert!(
            calls.contains("disable --now etcd-member.path etcd-member.service kubelet.path kubelet.service"),
            "{name}'s etcd and kubelet are stopped for good (the test bed's systemctl records the call): {calls}"
        );
        let data = lane.ls_at(i, "/var/lib/etcd");
        assert!(
            !data.lines().any(|l| l == "member") && data.lines().any(|l| l.starts_with("member.removed-")),
            "{name}'s etcd data is moved aside, kept: {data}"
        );
        eventually(
            Duration::from_secs(30),
            &format!("etcd gone on {name}"),
            || match lane.etcd_pids(i) {
                p if p.is_empty() => Ok(()),
                p => Err(p),
            },
        );
    }
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "the plan after the shrink is empty:\n{text}");

    let least = memory.least_kib();
    eprintln!(
        "topology lane memory: MemAvailable {} MiB before, {} MiB at the least: {} MiB at the peak for 7 hosts (3 controllers, 3 workers, load balancer), terraform and the lane test that runs beside it",
        before / 1024,
        least / 1024,
        before.saturating_sub(least) / 1024
    );
}
