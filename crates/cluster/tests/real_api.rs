//! The cluster layer against a real kube-apiserver (the lane's, v1.34.3 unless
//! `SELFHOSTED_LANE_VERSION` says otherwise) and etcd. When the lane's binaries
//! are not built these tests fail under CI (`CI=true`) and elsewhere say loudly that they skipped.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use selfhosted_cluster::conditions::LeaseHeld;
use selfhosted_cluster::workloads::{self, ItsPods};
use selfhosted_cluster::{
    apply_manifests, collect_evidence, connect, label_node, ApplyError, Fingerprint, TlsProbe, WaitError, Waiter,
    CONTROL_PLANE_LABEL, FIELD_MANAGER,
};
use support::ApiServer;
use tokio::time::Instant;

fn soon(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

fn manifests() -> BTreeMap<String, String> {
    let files = [
        (
            "manifests/00-namespace-demo.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n",
        ),
        (
            "manifests/10-crd-widgets.example.com.yaml",
            r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
"#,
        ),
        (
            "manifests/20-clusterrole-widget-reader.yaml",
            r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: widget-reader
rules:
- apiGroups: [example.com]
  resources: [widgets]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: widget-reader
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: widget-reader}
subjects:
- {kind: ServiceAccount, name: reader, namespace: demo}
"#,
        ),
        (
            "manifests/21-serviceaccount-demo-reader.yaml",
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: reader, namespace: demo}\n",
        ),
        (
            "manifests/30-configmap-demo-settings.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: demo}\ndata: {mode: self-hosted}\n",
        ),
        (
            "manifests/90-widget-demo-w1.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: demo}\nspec: {size: 3}\n",
        ),
    ];
    files.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[tokio::test]
async fn apply_converges_and_a_rerun_changes_nothing() {
    let Some(bin) = support::apiserver_binary() else { return };
    let t0 = std::time::Instant::now();
    let server = ApiServer::start(&bin).await;
    eprintln!("etcd + kube-apiserver ready in {:?}", t0.elapsed());
    let waiter = Waiter::new(server.client());

    let files = manifests();
    let t1 = std::time::Instant::now();
    let first = waiter
        .until(soon(60), "apply", async { Ok(apply_manifests(&waiter, &files).await) })
        .await
        .unwrap()
        .unwrap();
    eprintln!("first apply of {} objects in {:?}", first.objects.len(), t1.elapsed());
    for o in &first.objects {
        eprintln!("  {o}");
    }
    assert_eq!(first.objects.len(), 7);
    assert_eq!(first.counts(), (7, 0, 0), "all created");
    assert_eq!(first.objects.last().unwrap().kind, "Widget");
    assert_eq!(first.objects.last().unwrap().namespace.as_deref(), Some("demo"));

    // The CRD is Established (apply waited for it) and the Widget is served.
    waiter
        .until(soon(5), "crd", waiter.crd_established("widgets.example.com"))
        .await
        .unwrap();

    // One field manager owns what was applied.
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "demo");
    let cm = cms.get("settings").await.unwrap();
    let managers: Vec<String> = cm
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, [FIELD_MANAGER]);

    // Rerun: no AlreadyExists, same digest. v1.20 quirk: an object whose applied fields are only
    // its name (the bare Namespace) got no managedFields entry when created by apply; the first
    // rerun writes a "before-first-apply" entry (one resourceVersion bump, no field changes).
    let second = apply_manifests(&waiter, &files).await.unwrap();
    let changed: Vec<&str> = second
        .objects
        .iter()
        .filter(|o| o.outcome != selfhosted_cluster::Outcome::Unchanged)
        .map(|o| o.kind.as_str())
        .collect();
    assert!(changed.is_empty() || changed == ["Namespace"], "{:#?}", second.objects);
    assert_eq!(second.counts().0, 0, "nothing created again");
    assert_eq!(second.digest, first.digest);
    let again = apply_manifests(&waiter, &files).await.unwrap();
    assert_eq!(again.counts(), (0, 0, 7), "a rerun is a no-op: {:#?}", again.objects);

    // Someone else changes a field we own: the forced apply takes it back.
    let patch = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "demo"}, "data": {"mode": "edited"}});
    cms.patch(
        "settings",
        &PatchParams::apply("someone-else").force(),
        &Patch::Apply(&patch),
    )
    .await
    .unwrap();
    let third = apply_manifests(&waiter, &files).await.unwrap();
    assert_eq!(third.counts(), (0, 1, 6));
    assert_eq!(cms.get("settings").await.unwrap().data.unwrap()["mode"], "self-hosted");

    // A change in the input changes the digest and configures only that object.
    let mut changed = files.clone();
    changed.insert(
        "manifests/90-widget-demo-w1.yaml".into(),
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: demo}\nspec: {size: 4}\n".into(),
    );
    let fourth = apply_manifests(&waiter, &changed).await.unwrap();
    assert_eq!(fourth.counts(), (0, 1, 6));
    assert_ne!(fourth.digest, first.digest);
}

#[tokio::test]
async fn apply_errors_name_the_file_object_and_api_message() {
    let Some(bin) = support::apiserver_binary() else { return };
    let server = ApiServer::start(&bin).await;
    let waiter = Waiter::new(server.client());

    let bad: BTreeMap<String, String> = [(
        "manifests/50-deployment-default-broken.yaml".to_owned(),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: broken, namespace: default}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: x}]\n".to_owned(),
    )]
    .into();
    let err = apply_manifests(&waiter, &bad).await.unwrap_err();
    let text = err.to_string();
    eprintln!("{text}");
    assert!(matches!(err, ApplyError::Apply { .. }), "{err:?}");
    assert!(text.contains("manifests/50-deployment-default-broken.yaml"), "{text}");
    assert!(text.contains("Deployment default/broken"), "{text}");
    assert!(text.contains("spec.selector"), "the API's own message: {text}");

    let unknown: BTreeMap<String, String> = [(
        "manifests/60-gadget.yaml".to_owned(),
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g, namespace: default}\n".to_owned(),
    )]
    .into();
    let err = apply_manifests(&waiter, &unknown).await.unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, ApplyError::Discover { .. }), "{err:?}");
    assert!(
        err.to_string().contains("manifests/60-gadget.yaml: Gadget default/g"),
        "{err}"
    );
}

#[tokio::test]
async fn waits_on_nodes_pods_and_leases() {
    let Some(bin) = support::apiserver_binary() else { return };
    let server = ApiServer::start(&bin).await;
    let client = server.client();
    let waiter = Waiter::new(client.clone());

    // A node registers (as a kubelet would), not Ready: the Ready wait reports how far it got.
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "c0", "labels": {"node.kubernetes.io/controller": "true"}}
    }))
    .unwrap();
    let registering = {
        let w = waiter.clone();
        tokio::spawn(async move { w.node_registered("c0").await })
    };
    nodes.create(&PostParams::default(), &node).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), registering)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let err = waiter
        .until(soon(2), "node c0 Ready", waiter.node_ready("c0"))
        .await
        .unwrap_err();
    assert!(matches!(err, WaitError::DeadlineExceeded { .. }), "{err}");
    assert!(
        err.to_string().contains("node c0: registered, no Ready condition yet"),
        "{err}"
    );

    // The control-plane label, idempotently, keeping the kubelet's own labels.
    let labels = BTreeMap::from([(CONTROL_PLANE_LABEL.to_owned(), String::new())]);
    label_node(&client, "c0", &labels).await.unwrap();
    let labelled = label_node(&client, "c0", &labels).await.unwrap();
    let l = labelled.metadata.labels.unwrap();
    assert_eq!(l.get(CONTROL_PLANE_LABEL).map(String::as_str), Some(""));
    assert_eq!(l.get("node.kubernetes.io/controller").map(String::as_str), Some("true"));
    let err = label_node(&client, "absent", &labels).await.unwrap_err();
    assert!(
        err.to_string().contains("labelling node absent") && err.to_string().contains("404"),
        "{err}"
    );

    // Ready arrives while waiting: the watch sees it.
    let ready = {
        let w = waiter.clone();
        tokio::spawn(async move { w.node_ready("c0").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
    nodes
        .patch_status("c0", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // Pods of a component: Running is not enough, Ready is.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "kube-scheduler-c0", "labels": {"k8s-app": "kube-scheduler"}},
        "spec": {"nodeName": "c0", "containers": [{"name": "kube-scheduler", "image": "k8s.gcr.io/kube-scheduler:v1.20.2"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let running =
        serde_json::json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}});
    pods.patch_status("kube-scheduler-c0", &PatchParams::default(), &Patch::Merge(&running))
        .await
        .unwrap();
    let err = waiter
        .until(
            soon(2),
            "scheduler Ready",
            waiter.pods_ready("kube-system", "k8s-app=kube-scheduler", 1),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("pod kube-scheduler-c0: Running, not Ready"),
        "{err}"
    );
    let ready_pods = {
        let w = waiter.clone();
        tokio::spawn(async move { w.pods_ready("kube-system", "k8s-app=kube-scheduler", 1).await })
    };
    let ready = serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    pods.patch_status("kube-scheduler-c0", &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), ready_pods)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);

    // Leases: held by a fresh holder, not by the former one (whole-string comparison).
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let lease = |holder: &str| -> Lease {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "kube-controller-manager"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "renewTime": k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}
        }))
        .unwrap()
    };
    leases
        .create(&PostParams::default(), &lease("c0_bootstrap-1111"))
        .await
        .unwrap();
    let held = waiter
        .until(
            soon(5),
            "lease",
            waiter.lease_held("kube-system", "kube-controller-manager", LeaseHeld::default()),
        )
        .await
        .unwrap();
    assert_eq!(held.spec.unwrap().holder_identity.as_deref(), Some("c0_bootstrap-1111"));
    let former = waiter
        .lease_holder("kube-system", "kube-controller-manager")
        .await
        .unwrap();
    assert_eq!(former.as_deref(), Some("c0_bootstrap-1111"));
    assert_eq!(
        waiter.lease_holder("kube-system", "kube-scheduler").await.unwrap(),
        None
    );
    let not_bootstrap = LeaseHeld {
        not_holder: Some("c0_bootstrap-1111".into()),
        ..LeaseHeld::default()
    };
    let err = waiter
        .until(
            soon(2),
            "lease hand-over",
            waiter.lease_held("kube-system", "kube-controller-manager", not_bootstrap.clone()),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("holder \"c0_bootstrap-1111\""), "{err}");
    let handover = {
        let w = waiter.clone();
        tokio::spawn(async move {
            w.lease_held("kube-system", "kube-controller-manager", not_bootstrap)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let new = lease("c0_selfhosted-2222");
    leases
        .patch(
            "kube-controller-manager",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"spec": new.spec})),
        )
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), handover)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.spec.unwrap().holder_identity.as_deref(), Some("c0_selfhosted-2222"));

    // Cancellation ends a wait at once, with its progress.
    let token = selfhosted_cluster::CancellationToken::new();
    let w = Waiter::new(client.clone()).with_cancel(token.clone());
    let never = tokio::spawn(async move { w.until(soon(60), "node c9", w.node_ready("c9")).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    token.cancel();
    let err = tokio::time::timeout(Duration::from_secs(5), never)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, WaitError::Cancelled { .. }), "{err}");
    assert!(err.to_string().contains("Node c9: not found"), "{err}");
}

/// Restart the second apiserver if it exited, as a kubelet would.
fn supervise(server: &ApiServer, bin: &std::path::Path, second: &mut support::Proc, restarts: &mut u32) {
    if let Ok(Some(status)) = second.child.try_wait() {
        *restarts += 1;
        let fatal = second
            .log_tail(200)
            .lines()
            .filter(|l| l.starts_with('F'))
            .collect::<Vec<_>>()
            .join("\n");
        eprintln!("second apiserver exited ({status}), restarting it: {fatal}");
        *second = server.start_second_apiserver(bin);
    }
}

#[tokio::test]
async fn identity_tells_apiservers_on_a_shared_port_apart() {
    let Some(bin) = support::apiserver_binary() else { return };
    let mut server = ApiServer::start(&bin).await;
    let creds = server.pki.admin_credentials();
    let own = Fingerprint::of_pem(&server.pki.apiserver.cert).unwrap();

    // The certificate has no IP SAN: by IP alone, the client refuses; with the name override it works.
    let by_ip = Waiter::new(connect(&server.url(), &creds, None).unwrap());
    let err = by_ip.until(soon(2), "readyz by IP", by_ip.readyz()).await.unwrap_err();
    eprintln!("by IP without a name override: {err}");
    assert!(matches!(err, WaitError::DeadlineExceeded { .. }), "{err}");
    assert!(
        err.to_string().contains("certificate not valid for name"),
        "the TLS reason is in the message: {err}"
    );
    let named = Waiter::new(selfhosted_cluster::connect_local_port(server.port, &creds, "kubernetes").unwrap());
    named.until(soon(5), "readyz", named.readyz()).await.unwrap();
    // The same over connections a dialer opens, as the pivot's SSH channels are.
    let port = server.port;
    let dialer =
        selfhosted_cluster::Dialer::new("a dialer", move || tokio::net::TcpStream::connect(("127.0.0.1", port)));
    let url = server.url();
    let through = Waiter::new(selfhosted_cluster::connect_through(&url, dialer.clone(), &creds, "kubernetes").unwrap());
    through
        .until(soon(5), "readyz through a dialer", through.readyz())
        .await
        .unwrap();
    assert!(through
        .client()
        .apiserver_version()
        .await
        .unwrap()
        .git_version
        .starts_with('v'));
    let answer = TlsProbe::through(&creds, dialer, "kubernetes")
        .unwrap()
        .ask()
        .await
        .unwrap();
    assert_eq!((answer.fingerprint, answer.is_ready()), (own, true));

    let probe = TlsProbe::new(&creds, "127.0.0.1", server.port, "kubernetes").unwrap();
    let answer = probe.ask().await.unwrap();
    assert_eq!(answer.fingerprint, own, "the apiserver's own serving certificate");
    assert!(answer.is_ready(), "{} {:?}", answer.status, answer.body);
    let wrong_name = TlsProbe::new(&creds, "127.0.0.1", server.port, "not-in-the-cert").unwrap();
    let e = wrong_name.ask().await.unwrap_err();
    assert!(e.to_string().contains("TLS handshake with 127.0.0.1"), "{e}");

    // A second apiserver (own key, same names) joins on the same port, as the self-hosted one does.
    let other = Fingerprint::of_pem(&server.pki.other_apiserver.cert).unwrap();
    // Supervised like a kubelet would: its loopback client may reach the first process (a
    // certificate from another CA) and exit on start-up ("Unable to perform initial IP
    // allocation check: ... x509: certificate signed by unknown authority"); then it restarts.
    let mut second = server.start_second_apiserver(&bin);
    let mut restarts = 0;
    let waiter = Waiter::new(server.client());
    let mut seen = std::collections::HashMap::new();
    let t0 = std::time::Instant::now();
    while seen.len() < 2 && t0.elapsed() < Duration::from_secs(90) {
        supervise(&server, &bin, &mut second, &mut restarts);
        if let Ok(a) = probe.ask().await {
            *seen.entry(a.fingerprint).or_insert(0) += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("answers by certificate while both serve: {seen:?}; second apiserver restarts: {restarts}");
    assert!(
        seen.contains_key(&own) && seen.contains_key(&other),
        "both processes answer on the shared port: {seen:?}"
    );

    // Once the first ("bootstrap") one stops, every answer comes from the second: require 5 in a row.
    server.stop_first();
    let stopped = std::time::Instant::now();
    let mut revived = false;
    let served = waiter.until(
        soon(60),
        "answers from the second apiserver",
        waiter.served_by(&probe, other, 5, Duration::from_millis(100)),
    );
    let mut served = std::pin::pin!(served);
    let got = loop {
        supervise(&server, &bin, &mut second, &mut restarts);
        // A second apiserver whose start-up IP allocation check reached the first process
        // (its loopback client does not trust another process's certificate) may keep that
        // post-start hook failed instead of exiting (v1.34: `[-]poststarthook/start-service-
        // ip-repair-controllers failed`, for over a minute). `/livez` lists the same hook, so a
        // kubelet's liveness probe restarts it; so does this supervisor, once, after 20 s.
        if !revived && stopped.elapsed() > Duration::from_secs(20) {
            if let Ok(a) = probe.ask().await {
                if a.fingerprint == other && !a.is_ready() {
                    let failed: Vec<&str> = a.body.lines().filter(|l| l.starts_with("[-]")).collect();
                    eprintln!("second apiserver not ready 20 s after the first stopped ({failed:?}); restarting it");
                    let _ = second.child.kill();
                    let _ = second.child.wait();
                    revived = true;
                    supervise(&server, &bin, &mut second, &mut restarts);
                }
            }
        }
        tokio::select! {
            r = &mut served => break r.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    };
    assert_eq!(got.fingerprint, other);
    eprintln!("second apiserver restarts in all: {restarts}");
    drop(second);
}

#[tokio::test]
async fn diagnose_a_pod_that_cannot_run() {
    let Some(bin) = support::apiserver_binary() else { return };
    let server = ApiServer::start(&bin).await;
    let client = server.client();
    let _scheduler = server.start_scheduler();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "kube-apiserver-x", "labels": {"k8s-app": "kube-apiserver"}},
        "spec": {"containers": [{"name": "kube-apiserver", "image": "k8s.gcr.io/kube-apiserver:v1.20.2"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();

    // The real scheduler finds no node and says so in an Event; wait for the evidence.
    let t0 = std::time::Instant::now();
    let text = loop {
        let ev = collect_evidence(&client, "kube-system", "k8s-app=kube-apiserver")
            .await
            .unwrap();
        let text = ev.to_string();
        if text.contains("FailedScheduling") || t0.elapsed() > Duration::from_secs(60) {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("{text}");
    assert!(
        text.contains("pod kube-system/kube-apiserver-x on (not scheduled): phase Pending"),
        "{text}"
    );
    assert!(text.contains("condition PodScheduled=False Unschedulable"), "{text}");
    assert!(text.contains("Warning FailedScheduling"), "{text}");
    assert!(
        text.contains("log of kube-apiserver (current): unavailable: the container has not started"),
        "{text}"
    );

    let none = collect_evidence(&client, "kube-system", "k8s-app=nothing")
        .await
        .unwrap();
    assert_eq!(
        none.to_string(),
        "no pod matches \"k8s-app=nothing\" in namespace kube-system\n"
    );
}

/// Play the kubelet for every pod bound to a node in `namespace`: mark it Running and Ready.
fn pods_api(client: &kube::Client) -> Api<Pod> {
    Api::namespaced(client.clone(), "kube-system")
}

async fn play_kubelet(client: kube::Client, namespace: &str, stop: selfhosted_cluster::CancellationToken) {
    use futures::StreamExt;
    use kube::runtime::watcher;
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let mut stream = std::pin::pin!(watcher::watcher(pods.clone(), watcher::Config::default()));
    loop {
        let ev = tokio::select! {
            e = stream.next() => e,
            _ = stop.cancelled() => return,
        };
        let Some(Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p))) = ev else {
            continue;
        };
        let bound = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
        if bound && !selfhosted_cluster::conditions::pod_ready(&p) {
            let now = k8s_openapi::jiff::Timestamp::now().to_string();
            let c = p.spec.as_ref().unwrap().containers[0].name.clone();
            let ready = serde_json::json!({"status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
                "containerStatuses": [{"name": c, "ready": true, "restartCount": 0, "image": "x", "imageID": "",
                    "started": true, "state": {"running": {"startedAt": now}}}]}});
            let _ = pods
                .patch_status(
                    &p.metadata.name.clone().unwrap(),
                    &PatchParams::default(),
                    &Patch::Merge(&ready),
                )
                .await;
        }
    }
}

#[tokio::test]
async fn rollouts_and_the_lease_of_a_real_controller_manager() {
    let Some(bin) = support::apiserver_binary() else { return };
    let server = ApiServer::start(&bin).await;
    let client = server.client();
    let waiter = Waiter::new(client.clone());
    let kcm = server.start_controller_manager();
    let _sched = server.start_scheduler();

    // The real controller-manager takes its Lease: a non-empty holder, renewed recently.
    let t0 = std::time::Instant::now();
    let lease = waiter
        .until(
            soon(60),
            "controller-manager lease",
            waiter.lease_held("kube-system", "kube-controller-manager", LeaseHeld::default()),
        )
        .await
        .unwrap();
    let holder = lease.spec.unwrap().holder_identity.unwrap();
    eprintln!(
        "kube-controller-manager holds its lease as {holder:?} after {:?}",
        t0.elapsed()
    );
    assert!(holder.contains('_'), "hostname_uuid: {holder}");

    // A schedulable node, and a "kubelet" that marks bound pods Ready.
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": "c0"}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = serde_json::json!({"status": {
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
    nodes
        .patch_status("c0", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    // The apiserver taints new nodes not-ready; the node lifecycle controller (not run here)
    // would lift it once Ready.
    nodes
        .patch(
            "c0",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"spec": {"taints": null}})),
        )
        .await
        .unwrap();
    let stop = selfhosted_cluster::CancellationToken::new();
    let kubelet = tokio::spawn(play_kubelet(client.clone(), "kube-system", stop.clone()));
    let _stop_kubelet = stop.clone().drop_guard();

    let workloads: BTreeMap<String, String> = [
        (
            "manifests/80-daemonset-kube-system-kube-apiserver.yaml".to_owned(),
            r#"apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kube-apiserver, namespace: kube-system}
spec:
  selector: {matchLabels: {k8s-app: kube-apiserver}}
  template:
    metadata: {labels: {k8s-app: kube-apiserver}}
    spec:
      containers: [{name: kube-apiserver, image: k8s.gcr.io/kube-apiserver:v1.20.2}]
"#
            .to_owned(),
        ),
        (
            "manifests/81-deployment-kube-system-kube-scheduler.yaml".to_owned(),
            r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: kube-scheduler, namespace: kube-system}
spec:
  replicas: 1
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 0, maxUnavailable: 1}}
  selector: {matchLabels: {k8s-app: kube-scheduler}}
  template:
    metadata: {labels: {k8s-app: kube-scheduler}}
    spec:
      containers: [{name: kube-scheduler, image: k8s.gcr.io/kube-scheduler:v1.20.2}]
"#
            .to_owned(),
        ),
    ]
    .into();
    apply_manifests(&waiter, &workloads).await.unwrap();
    let t1 = std::time::Instant::now();
    let ds = waiter
        .until(
            soon(60),
            "apiserver DaemonSet rollout",
            waiter.daemonset_rolled_out("kube-system", "kube-apiserver"),
        )
        .await
        .unwrap();
    assert_eq!(ds.status.unwrap().number_available, Some(1));
    waiter
        .until(
            soon(60),
            "scheduler Deployment rollout",
            waiter.deployment_rolled_out("kube-system", "kube-scheduler"),
        )
        .await
        .unwrap();
    let pods = waiter
        .until(
            soon(10),
            "apiserver pods",
            waiter.pods_ready("kube-system", "k8s-app=kube-apiserver", 1),
        )
        .await
        .unwrap();
    assert_eq!(pods[0].spec.as_ref().unwrap().node_name.as_deref(), Some("c0"));
    eprintln!("DaemonSet and Deployment rolled out in {:?}", t1.elapsed());
    stop.cancel();
    kubelet.await.unwrap();

    // An old apiserver generation retires one pod at a time: its DaemonSet goes, its pods stay
    // (ownerless), and each is deleted by name; the `kubernetes` Service's addresses are read.
    let apiserver_pods = "k8s-app=kube-apiserver";
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), "kube-system");
    let labelled = serde_json::json!({"metadata": {"labels": {"k8s-app": "kube-apiserver"}}});
    daemonsets
        .patch("kube-apiserver", &PatchParams::default(), &Patch::Merge(&labelled))
        .await
        .unwrap();
    let retired =
        workloads::delete_daemonsets_except(&client, "kube-system", apiserver_pods, "the-new-one", ItsPods::Stay)
            .await
            .unwrap();
    assert_eq!(retired, ["kube-apiserver"]);
    // Gone once the garbage collector has orphaned its pods; until then it is being deleted
    // (and its controller leaves its pods alone).
    let ds = daemonsets.get_opt("kube-apiserver").await.unwrap();
    assert!(
        ds.is_none_or(|ds| ds.metadata.deletion_timestamp.is_some()),
        "the old DaemonSet is deleted"
    );
    let left = workloads::placed_pods(&client, "kube-system", apiserver_pods)
        .await
        .unwrap();
    assert_eq!(left.len(), 1, "its pod stays: {left:?}");
    assert_eq!(left[0].node, "c0");
    workloads::delete_pod(&client, "kube-system", &left[0].name)
        .await
        .unwrap();
    workloads::delete_pod(&client, "kube-system", "no-such-pod")
        .await
        .unwrap();
    let pod = pods_api(&client).get(&left[0].name).await.unwrap();
    assert!(
        pod.metadata.deletion_timestamp.is_some(),
        "deleted by name, with its grace period (no kubelet here to finish it)"
    );
    assert!(workloads::pod_exists(&client, "kube-system", &left[0].name)
        .await
        .unwrap());
    // (This apiserver runs `--endpoint-reconciler-type=none`: Endpoints of the test's making.)
    let endpoints: Api<k8s_openapi::api::core::v1::Endpoints> = Api::namespaced(client.clone(), "default");
    let made = serde_json::json!({"metadata": {"name": "two"}, "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"name": "https", "port": 6443}]}]});
    endpoints
        .create(&PostParams::default(), &serde_json::from_value(made).unwrap())
        .await
        .unwrap();
    let addresses = workloads::endpoint_addresses(&client, "default", "two").await.unwrap();
    assert_eq!(addresses.into_iter().collect::<Vec<_>>(), ["10.0.0.1", "10.0.0.2"]);
    assert!(workloads::endpoint_addresses(&client, "default", "none-such")
        .await
        .unwrap()
        .is_empty());

    // Hand-over (pitfall 13): the old holder stops without releasing; a new controller-manager
    // takes the lease once it expires. The wait accepts only a holder other than the former one.
    let former = waiter
        .lease_holder("kube-system", "kube-controller-manager")
        .await
        .unwrap();
    assert_eq!(former.as_deref(), Some(holder.as_str()));
    drop(kcm);
    let _kcm2 = server.start_controller_manager();
    let t2 = std::time::Instant::now();
    let want = LeaseHeld {
        not_holder: former,
        ..LeaseHeld::default()
    };
    let lease = waiter
        .until(
            soon(60),
            "lease hand-over",
            waiter.lease_held("kube-system", "kube-controller-manager", want),
        )
        .await
        .unwrap();
    let new_holder = lease.spec.unwrap().holder_identity.unwrap();
    eprintln!("lease moved from {holder:?} to {new_holder:?} in {:?}", t2.elapsed());
    assert_ne!(new_holder, holder);
}

/// The project's own rendered manifests (every networking choice) are accepted by a real
/// apiserver of the same version, CRDs (Calico, Cilium) before their objects, and a rerun
/// converges.
#[tokio::test]
async fn the_rendered_manifests_apply_to_a_real_apiserver_of_their_version() {
    let Some(bin) = support::apiserver_binary() else { return };
    let server = ApiServer::start(&bin).await;
    let waiter = Waiter::new(server.client());
    for networking in ["none", "flannel", "calico", "cilium"] {
        let raw = selfhosted_manifests::RawParams {
            kubernetes_version: Some(support::lane_version()),
            cluster_name: "lane".into(),
            api_servers: vec!["c0.lane.test".into()],
            etcd_servers: vec!["c0.lane.test".into()],
            networking: Some(networking.into()),
            controller_count: 1,
            ..Default::default()
        };
        let params = selfhosted_manifests::parse_params(&raw).unwrap_or_else(|e| panic!("{e:?}"));
        let files = selfhosted_manifests::render_public(&params).unwrap();
        let t = std::time::Instant::now();
        let first = waiter
            .until(soon(120), networking, async {
                Ok(apply_manifests(&waiter, &files).await)
            })
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{networking}: {e}"));
        let (created, configured, unchanged) = first.counts();
        eprintln!(
            "{networking}: {} objects from {} files in {:?} (created {created}, configured {configured}, unchanged {unchanged})",
            first.objects.len(),
            files.len(),
            t.elapsed()
        );
        // Converges: at most the v1.20 first-rerun managedFields write, then nothing.
        apply_manifests(&waiter, &files).await.unwrap();
        let again = apply_manifests(&waiter, &files).await.unwrap();
        let changed: Vec<String> = again
            .objects
            .iter()
            .filter(|o| o.outcome != selfhosted_cluster::Outcome::Unchanged)
            .map(|o| o.to_string())
            .collect();
        assert!(changed.is_empty(), "{networking}: a rerun changed {changed:#?}");
        assert_eq!(again.digest, first.digest);
    }
}

/// Before a kubelet moves, its node is drained as `kubectl drain` does: a disruption budget
/// that allows no eviction holds the drain until the deadline, which names the pod and the
/// budget's answer (the node stays cordoned); once the budget goes, the pod is evicted, while
/// pods of the spared namespace stay. The node is then awaited Ready at the new kubelet
/// version, and uncordoned.
#[tokio::test]
async fn a_drain_respects_disruption_budgets_and_a_moved_kubelet_is_awaited_at_its_version() {
    let Some(bin) = support::apiserver_binary() else { return };
    let server = ApiServer::start(&bin).await;
    let client = server.client();
    let waiter = Waiter::new(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": "w1"}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let ready_at = |version: &str| {
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        serde_json::json!({"status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "",
                "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "nodeInfo": {"kubeletVersion": version, "machineID": "", "systemUUID": "", "bootID": "",
                "kernelVersion": "", "osImage": "", "containerRuntimeVersion": "", "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": "amd64"}}})
    };
    nodes
        .patch_status("w1", &PatchParams::default(), &Patch::Merge(&ready_at("v1.34.3")))
        .await
        .unwrap();
    assert_eq!(
        selfhosted_cluster::skew::kubelet_versions(&client).await.unwrap(),
        BTreeMap::from([("w1".to_owned(), "v1.34.3".to_owned())])
    );

    // A workload pod under a budget that allows no eviction, and a control-plane pod.
    let pod = |ns: &str, name: &str| -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
            "spec": {"nodeName": "w1", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}
        }))
        .unwrap()
    };
    let web: Api<Pod> = Api::namespaced(client.clone(), "default");
    let kubelet_stop = selfhosted_cluster::CancellationToken::new();
    let kubelet = tokio::spawn(play_kubelet(client.clone(), "default", kubelet_stop.clone()));
    web.create(&PostParams::default(), &pod("default", "web-0"))
        .await
        .unwrap();
    waiter
        .until(soon(10), "web-0 Ready", waiter.pods_ready("default", "app=web", 1))
        .await
        .unwrap();
    kubelet_stop.cancel();
    kubelet.await.unwrap();
    pods_api(&client)
        .create(&PostParams::default(), &pod("kube-system", "scheduler-0"))
        .await
        .unwrap();
    let minor = client.apiserver_version().await.unwrap().minor;
    let policy = if minor.trim_end_matches('+').parse::<u32>().unwrap() >= 21 {
        "policy/v1"
    } else {
        "policy/v1beta1"
    };
    let budget = serde_json::json!({"apiVersion": policy, "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
    let pdb_path = format!("/apis/{policy}/namespaces/default/poddisruptionbudgets");
    let request = http::Request::post(&pdb_path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&budget).unwrap())
        .unwrap();
    client.request_text(request).await.unwrap();
    // What the disruption controller would write: no eviction allowed.
    let status = serde_json::json!({"status": {"observedGeneration": 1, "disruptionsAllowed": 0,
        "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}});
    let request = http::Request::patch(format!("{pdb_path}/web/status"))
        .header(http::header::CONTENT_TYPE, "application/merge-patch+json")
        .body(serde_json::to_vec(&status).unwrap())
        .unwrap();
    client.request_text(request).await.unwrap();

    use selfhosted_cluster::drain::{CordonFor, Spare};
    // The pods here have no owner: a kubelet move leaves such pods alone (evicted they would
    // be gone for good), so this drain moves them as a removal would, sparing kube-system.
    let spare = Spare {
        namespace: Some("kube-system"),
        unowned: false,
    };
    let kept = selfhosted_cluster::drain::drain(
        &client,
        "w1",
        CordonFor::KubeletMove,
        Spare {
            namespace: Some("kube-system"),
            unowned: true,
        },
        soon(5),
    )
    .await
    .unwrap();
    assert_eq!(kept, Some(vec![]), "pods without an owner are spared by a kubelet move");
    let err = selfhosted_cluster::drain::drain(&client, "w1", CordonFor::KubeletMove, spare, soon(5))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "node w1 still runs 1 pods at the deadline: default/web-0: kept by disruption budget default/web: \
             it allows no disruption now (1 healthy pods, 1 needed)"
        ),
        "{text}"
    );
    let cordoned = nodes.get("w1").await.unwrap();
    assert_eq!(cordoned.spec.unwrap().unschedulable, Some(true), "left cordoned");

    // The budget relaxed (gone): the pod is evicted and ended (as its kubelet would end it);
    // the spared namespace's pod stays.
    let request = http::Request::delete(format!("{pdb_path}/web"))
        .body(Vec::new())
        .unwrap();
    client.request_text(request).await.unwrap();
    let stop = selfhosted_cluster::CancellationToken::new();
    let ender = tokio::spawn(end_deleted_pods(client.clone(), stop.clone()));
    let evicted = selfhosted_cluster::drain::drain(&client, "w1", CordonFor::KubeletMove, spare, soon(30))
        .await
        .unwrap();
    stop.cancel();
    ender.await.unwrap();
    assert_eq!(evicted, Some(vec!["default/web-0".to_owned()]));
    assert!(pods_api(&client).get_opt("scheduler-0").await.unwrap().is_some());
    assert_eq!(
        selfhosted_cluster::drain::drain(&client, "absent", CordonFor::Removal, Spare::default(), soon(5))
            .await
            .unwrap(),
        None
    );

    // The kubelet moves: the wait names the version it still sees, then ends once it reports the new one.
    let err = waiter
        .until(soon(2), "node w1 at v1.35.4", waiter.node_ready_at("w1", "v1.35.4"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("kubelet v1.34.3"), "{err}");
    let moved = {
        let w = waiter.clone();
        tokio::spawn(async move { w.node_ready_at("w1", "v1.35.4").await })
    };
    nodes
        .patch_status("w1", &PatchParams::default(), &Patch::Merge(&ready_at("v1.35.4")))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), moved)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        !selfhosted_cluster::drain::uncordon(&client, "w1", CordonFor::Removal)
            .await
            .unwrap(),
        "only the cordon's own purpose lifts it"
    );
    assert!(
        selfhosted_cluster::drain::uncordon(&client, "w1", CordonFor::KubeletMove)
            .await
            .unwrap()
    );
    let w1 = nodes.get("w1").await.unwrap();
    assert_eq!(w1.spec.unwrap().unschedulable, None);
    assert!(
        !w1.metadata
            .annotations
            .unwrap_or_default()
            .contains_key(selfhosted_cluster::drain::CORDONED_FOR),
        "the provider's mark goes with its cordon"
    );

    // The provider's cordon lifted by an operator (`kubectl uncordon` leaves the mark): the
    // stale mark goes at the provider's next look, so the operator's own cordon later (for
    // maintenance) is not taken for the provider's.
    assert_eq!(
        selfhosted_cluster::drain::drain(&client, "w1", CordonFor::KubeletMove, spare, soon(5))
            .await
            .unwrap(),
        Some(vec![])
    );
    let mark = |n: &Node| {
        n.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(selfhosted_cluster::drain::CORDONED_FOR))
    };
    let set = |unschedulable: serde_json::Value| {
        let nodes = nodes.clone();
        async move {
            nodes
                .patch(
                    "w1",
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({"spec": {"unschedulable": unschedulable}})),
                )
                .await
                .unwrap()
        }
    };
    let w1 = set(serde_json::Value::Null).await;
    assert!(
        mark(&w1) && selfhosted_cluster::drain::stale_mark(&w1),
        "kubectl uncordon leaves the mark"
    );
    assert!(
        !selfhosted_cluster::drain::uncordon(&client, "w1", CordonFor::KubeletMove)
            .await
            .unwrap()
    );
    assert!(!mark(&nodes.get("w1").await.unwrap()), "the stale mark is gone");
    let w1 = set(serde_json::Value::Bool(true)).await;
    assert!(!selfhosted_cluster::drain::cordoned_for(&w1, CordonFor::KubeletMove));
    assert!(
        !selfhosted_cluster::drain::uncordon(&client, "w1", CordonFor::KubeletMove)
            .await
            .unwrap(),
        "the operator's cordon stays"
    );
    assert_eq!(nodes.get("w1").await.unwrap().spec.unwrap().unschedulable, Some(true));
    set(serde_json::Value::Null).await;

    // A node an operator cordoned stays cordoned through a drain and is not uncordoned after.
    nodes
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    assert_eq!(
        selfhosted_cluster::drain::drain(&client, "w1", CordonFor::KubeletMove, spare, soon(5))
            .await
            .unwrap(),
        Some(vec![])
    );
    assert!(
        !selfhosted_cluster::drain::uncordon(&client, "w1", CordonFor::KubeletMove)
            .await
            .unwrap()
    );
    assert_eq!(nodes.get("w1").await.unwrap().spec.unwrap().unschedulable, Some(true));
}

/// Ends pods that were deleted gracefully, as their kubelet would (there is none here).
async fn end_deleted_pods(client: kube::Client, stop: selfhosted_cluster::CancellationToken) {
    let pods: Api<Pod> = Api::all(client.clone());
    while !stop.is_cancelled() {
        for p in pods
            .list(&Default::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            if p.metadata.deletion_timestamp.is_some() {
                let ns: Api<Pod> =
                    Api::namespaced(client.clone(), p.metadata.namespace.as_deref().unwrap_or("default"));
                let _ = ns
                    .delete(
                        p.metadata.name.as_deref().unwrap_or_default(),
                        &kube::api::DeleteParams::default().grace_period(0),
                    )
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
