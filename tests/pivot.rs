//! The whole self-hosted pivot through the real `terraform` CLI on the real
//! control-plane lane (tests/lane): Kubernetes (the default version, v1.34.3, or
//! `SELFHOSTED_LANE_VERSION`) kubelet, containerd,
//! etcd and control plane on a test-bed host reached over real SSH. A client
//! probes the API throughout and records which apiserver answered.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use selfhosted_cluster::Fingerprint;
use support::endpoints::EndpointsWatch;
use support::lane::*;
use support::Workspace;

/// The longest a hand-over on one controller may leave the `kubernetes` Service with no
/// address, as this test's reads every 0.3 s see it: the provider's keeper looks every 0.1 s.
const ONE_CONTROLLER_EMPTY_AT_MOST: Duration = Duration::from_secs(1);

fn config(lane: &Lane, extra: &str) -> String {
    LaneConfig::new(lane).assets(extra).hcl()
}

#[test]
fn pivot_to_a_self_hosted_control_plane_with_no_failed_request_after_teardown() {
    let Some(lane) = Lane::up("pivot") else { return };
    let ws = Workspace::new(&config(&lane, ""));
    let assets = ws.path().join("assets");
    // Keep probing a while after apply returns: the self-hosted apiserver serves alone now.
    let endpoints = EndpointsWatch::start(&assets, lane.api_address());
    let (took, samples) = apply_while_probing(&ws, &lane, "apply", None, Duration::from_secs(5));
    let endpoints = endpoints.finish();

    let read = |p: &str| std::fs::read_to_string(assets.join(p)).unwrap();
    let self_hosted = Fingerprint::of_pem(&read("tls/apiserver.crt")).unwrap();
    let bootstrap = Fingerprint::of_pem(&read("tls/bootstrap-apiserver.crt")).unwrap();
    let last_bootstrap = samples.iter().rposition(|(_, fp)| fp.as_ref() == Ok(&bootstrap));
    let first_good = samples.iter().position(|(_, fp)| fp.is_ok());
    let after_teardown = last_bootstrap.map_or(&samples[..0], |i| &samples[i + 1..]);
    // An apiserver that is shutting down still serves requests; only its /readyz says it is
    // going away ("[-]shutdown failed"). That is a served request, counted apart.
    let draining = |e: &&String| e.contains("[-]shutdown failed");
    let failures_after: Vec<&String> = after_teardown
        .iter()
        .filter_map(|(_, fp)| fp.as_ref().err())
        .filter(|e| !draining(e))
        .collect();
    let drain_answers = after_teardown
        .iter()
        .filter_map(|(_, fp)| fp.as_ref().err())
        .filter(draining)
        .count();
    let failed_after = failures_after.len();
    let failed_during = first_good
        .zip(last_bootstrap)
        .map_or(0, |(a, b)| samples[a..=b].iter().filter(|(_, fp)| fp.is_err()).count());
    eprintln!(
        "pivot: apply took {took:?}; {} probes; {} failed while both apiservers ran; {} after the bootstrap apiserver left ({} probes; {drain_answers} answered by an apiserver shutting down)",
        samples.len(),
        failed_during,
        failed_after,
        after_teardown.len()
    );
    assert!(
        last_bootstrap.is_some(),
        "the bootstrap apiserver answered at some point"
    );
    assert!(!after_teardown.is_empty(), "the probe kept going after the teardown");
    assert_eq!(
        failed_after, 0,
        "no failed request once the bootstrap apiserver is removed: {failures_after:?}"
    );
    assert_eq!(
        samples.last().unwrap().1.as_ref(),
        Ok(&self_hosted),
        "the self-hosted apiserver answers last"
    );
    // The bootstrap apiserver writes no address (`--endpoint-reconciler-type=none`): the
    // self-hosted one adds the controller's, and the bootstrap apiserver's exit takes nothing.
    endpoints.assert_never_empty("pivot");

    // No bootstrap manifest or secret is left on the host.
    assert!(
        !lane.ls("/etc/kubernetes/manifests").contains("bootstrap"),
        "{}",
        lane.ls("/etc/kubernetes/manifests")
    );
    assert!(lane.ls("/etc/kubernetes/bootstrap-secrets").trim().is_empty());

    // The self-hosted control plane is Ready and holds its leases.
    let kubeconfig = assets.join("auth/admin.kubeconfig");
    for c in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
        let ready = kubectl(
            &kubeconfig,
            &[
                "-n",
                "kube-system",
                "get",
                "pods",
                "-l",
                &format!("k8s-app={c}"),
                "-o",
                "jsonpath={.items[*].status.conditions[?(@.type==\"Ready\")].status}",
            ],
        );
        assert!(ready.contains("True"), "{c} Ready: {ready:?}");
    }
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        let holder = lease_holder(&kubeconfig, lease);
        assert!(!holder.trim().is_empty(), "{lease} lease held");
    }
    front_proxy_and_kubelet_clients_hold_no_more_than_their_job(&ws, &lane);
    let state = ws.resource_values("selfhosted_bootstrap");
    assert_eq!(state["phase"], "verify");
    assert_eq!(
        state["control_plane_versions"]["kube-apiserver"], lane.version,
        "{state}"
    );
    assert_eq!(
        state["control_plane_versions"]["kube-scheduler"], lane.version,
        "{state}"
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "a second plan is empty:\n{text}");
    the_ssh_key_is_rotated_in_two_applies(&ws, &lane);

    // Destroy keeps the cluster serving.
    ws.ok(&[
        "destroy",
        "-auto-approve",
        "-input=false",
        "-target=selfhosted_bootstrap.lane",
    ]);
    let version = kubectl(&kubeconfig, &["get", "--raw", "/readyz"]);
    assert_eq!(version.trim(), "ok");
}

/// The guide's rotation of the SSH key (docs/resources/bootstrap.md): the new key listed beside
/// the old one, then logged in with and the old one dropped; the old key is refused by every
/// host's sshd afterwards, and the next plan is empty.
fn the_ssh_key_is_rotated_in_two_applies(ws: &Workspace, lane: &Lane) {
    let old_key = lane.tb.inventory().key.clone();
    let (new_key, new_pub) = ws.ssh_key_pair("rotated_ed25519");
    let old_pub = std::fs::read_to_string(old_key.with_extension("pub")).unwrap();
    let old_pub = old_pub.trim();
    let with_ssh = |key: &Path, keys: &[&str]| {
        let list = keys.iter().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ");
        config(lane, "").replace(
            &format!("    private_key = file(\"{}\")\n", old_key.display()),
            &format!(
                "    private_key = file(\"{}\")\n    authorized_keys = [{list}]\n",
                key.display()
            ),
        )
    };
    let ssh_with = |key: &Path| {
        let host = lane.host();
        Command::new("ssh")
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5", "-i"])
            .arg(key)
            .args(["-p", &host.port.to_string(), &format!("core@{}", host.address), "true"])
            .output()
            .expect("ssh")
    };
    assert!(
        !ssh_with(&new_key).status.success(),
        "the new key is not let in before the rotation"
    );

    // 1. Listed beside the old one: the plan updates, the apply lets it in.
    ws.write("main.tf", &with_ssh(&old_key, &[old_pub, &new_pub]));
    let (changes, text) = ws.plan_has_changes();
    assert!(
        changes && text.contains("authorized_keys"),
        "adding a key plans an update:\n{text}"
    );
    let start = Instant::now();
    ws.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let first = start.elapsed();
    assert!(ssh_with(&new_key).status.success(), "the new key is let in");

    // 2. Logged in with the new key, the old one dropped.
    ws.write("main.tf", &with_ssh(&new_key, &[&new_pub]));
    let start = Instant::now();
    ws.ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let second = start.elapsed();
    let refused = ssh_with(&old_key);
    assert!(
        !refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("Permission denied"),
        "the old key is refused: {refused:?}"
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "the plan after the rotation is empty:\n{text}");
    eprintln!("pivot: the SSH key rotated in two applies, {first:?} and {second:?}");
}

/// `curl` of `path` on the lane's apiserver with the client certificate `cert`/`key` (paths
/// relative to `dir`) and extra request headers; the HTTP status it got.
fn status_with_cert(dir: &Path, lane: &Lane, cert: &str, key: &str, headers: &[&str], path: &str) -> String {
    let mut cmd = Command::new("curl");
    cmd.current_dir(dir).args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
        "--cacert",
        "assets/tls/ca.crt",
        "--cert",
        cert,
        "--key",
        key,
        "--resolve",
        &format!("kubernetes:6443:{}", lane.api_address()),
    ]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd
        .arg(format!("https://kubernetes:6443{path}"))
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Issue 22, item 3, tried as an attacker with a controller's files would: request headers
/// (`X-Remote-User`, `X-Remote-Group`) count only from the front-proxy client's own name, not
/// from any other certificate of the front-proxy CA; the apiserver's kubelet client is no
/// member of `system:masters` (it cannot list Secrets), and the apiserver still reaches
/// kubelets with it (`kubectl logs`).
fn front_proxy_and_kubelet_clients_hold_no_more_than_their_job(ws: &Workspace, lane: &Lane) {
    let dir = ws.path();
    let kubeconfig = dir.join("assets/auth/admin.kubeconfig");
    let as_masters = ["X-Remote-User: system:admin", "X-Remote-Group: system:masters"];
    let secrets = "/api/v1/namespaces/kube-system/secrets";
    // Another certificate of the front-proxy CA (its key is only in the assets; a holder of it
    // could mint one): its headers do not count, nor does it authenticate otherwise.
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("client.ext"),
        "extendedKeyUsage=clientAuth
",
    )
    .unwrap();
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "other-proxy.key",
        "-subj",
        "/CN=not-the-front-proxy",
        "-out",
        "other-proxy.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "other-proxy.csr",
        "-CA",
        "assets/tls/front-proxy-ca.crt",
        "-CAkey",
        "assets/tls/front-proxy-ca.key",
        "-set_serial",
        "22",
        "-days",
        "1",
        "-extfile",
        "client.ext",
        "-out",
        "other-proxy.crt",
    ]);
    let other = status_with_cert(dir, lane, "other-proxy.crt", "other-proxy.key", &as_masters, secrets);
    // The front-proxy client itself, naming a user without groups: `system:admin` is nobody in
    // RBAC (the request is authenticated as that user and refused by authorization).
    let proxy_user = status_with_cert(
        dir,
        lane,
        "assets/tls/front-proxy-client.crt",
        "assets/tls/front-proxy-client.key",
        &as_masters[..1],
        secrets,
    );
    let kubelet_client = status_with_cert(
        dir,
        lane,
        "assets/tls/apiserver-kubelet-client.crt",
        "assets/tls/apiserver-kubelet-client.key",
        &[],
        "/api/v1/secrets",
    );
    eprintln!(
        "pivot: listing Secrets with another front-proxy CA certificate as system:admin/system:masters: {other}; the front-proxy client as system:admin: {proxy_user}; the kubelet client: {kubelet_client}"
    );
    assert_eq!(
        other, "401",
        "a front-proxy CA certificate other than front-proxy-client cannot assert a user"
    );
    assert_eq!(proxy_user, "403", "system:admin has no rights of its own");
    assert_eq!(kubelet_client, "403", "the kubelet client cannot list Secrets");
    let apiserver_pod = kubectl(
        &kubeconfig,
        &[
            "-n",
            "kube-system",
            "get",
            "pods",
            "-l",
            "k8s-app=kube-apiserver",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ],
    );
    let logs = kubectl(
        &kubeconfig,
        &[
            "-n",
            "kube-system",
            "logs",
            apiserver_pod.trim(),
            "-c",
            "kube-apiserver",
            "--tail=3",
        ],
    );
    assert!(
        !logs.trim().is_empty(),
        "the apiserver reaches the kubelet for a control-plane pod's logs"
    );
}

#[test]
fn a_bootstrap_apiserver_that_cannot_start_fails_with_its_own_error_line() {
    let Some(lane) = Lane::up("pivot bad flag") else { return };
    let cfg = LaneConfig::new(&lane)
        .assets("  extra_flags = { \"kube_apiserver\" = [\"--no-such-flag=1\"] }")
        .timeouts("create = \"75s\"")
        .hcl();
    let ws = Workspace::new(&cfg);
    let started = Instant::now();
    let text = ws.fails(&["apply", "-auto-approve", "-input=false"]);
    let took = started.elapsed();
    eprintln!("bad flag: apply failed after {took:?}");
    assert!(
        took < Duration::from_secs(150),
        "fails within the timeout, took {took:?}"
    );
    assert!(text.contains("wait-for-apiserver"), "names the phase:\n{text}");
    assert!(text.contains(&lane.host().name), "names the host:\n{text}");
    assert!(
        text.contains("unknown flag: --no-such-flag"),
        "quotes the apiserver's own error:\n{text}"
    );
    // The partial state says how far it got.
    assert_eq!(
        ws.resource_values("selfhosted_bootstrap")["phase"],
        "bootstrap-control-plane"
    );
}

/// The provider process terraform started (its child), if running.
fn provider_child(terraform_pid: u32) -> Option<u32> {
    let out = Command::new("pgrep")
        .args(["-P", &terraform_pid.to_string(), "-f", "terraform-provider-selfhosted"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().next()?.trim().parse().ok()
}

#[test]
fn a_provider_killed_mid_pivot_and_a_reboot_converge_on_the_next_apply() {
    let Some(lane) = Lane::up("pivot killed") else { return };
    let ws = Workspace::new(&config(&lane, ""));
    let mut apply = ws
        .command(&["apply", "-auto-approve", "-input=false"])
        .spawn()
        .expect("terraform starts");
    // Kill the provider once the pivot is under way: the bootstrap control plane runs and the
    // self-hosted apiserver's DaemonSet has been applied through it.
    let kubeconfig = ws.path().join("assets/auth/admin.kubeconfig");
    let applied = || {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "--request-timeout=2s",
                "-n",
                "kube-system",
                "get",
                "daemonsets",
                "-o",
                "name",
            ])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("kube-apiserver"))
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut killed = false;
    while Instant::now() < deadline {
        if lane
            .ls("/etc/kubernetes/manifests")
            .contains("bootstrap-kube-apiserver")
            && applied()
        {
            if let Some(pid) = provider_child(apply.id()) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                killed = true;
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = apply.wait().expect("terraform ends");
    assert!(killed, "the provider was killed mid-pivot");
    assert!(!status.success(), "the killed apply fails");
    assert!(
        lane.ls("/etc/kubernetes/manifests").contains("bootstrap"),
        "it left the bootstrap control plane behind"
    );
    // And the controller reboots before anyone reruns the apply: containers gone, the
    // bootstrap static Pods still on disk.
    lane.power_cycle(&[lane.controllers[0]]);

    // Terraform may have kept a tainted partial state or none at all; either way the rerun converges.
    apply_ok(&ws, &lane, "rerun after the kill and a reboot");
    assert_eq!(ws.resource_values("selfhosted_bootstrap")["phase"], "verify");
    assert!(!lane.ls("/etc/kubernetes/manifests").contains("bootstrap"));
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");
}

#[test]
fn a_provider_killed_mid_upgrade_leaves_the_old_apiserver_serving_and_the_next_apply_converges() {
    let Some(lane) = Lane::up("upgrade killed") else { return };
    let ws = Workspace::new(&config(&lane, ""));
    apply_ok(&ws, &lane, "pivot");
    let assets = ws.path().join("assets");
    let kubeconfig = assets.join("auth/admin.kubeconfig");
    let before = apiserver_generations(&kubeconfig);

    // A changed apiserver flag: a new apiserver generation beside the old one, then the hand-over.
    ws.write(
        "main.tf",
        &config(&lane, "  extra_flags = { \"kube_apiserver\" = [\"--v=2\"] }"),
    );
    let prober = Prober::start(&assets, &lane.host().address, Some(API_REQUEST));
    let mut apply = ws
        .command(&["apply", "-auto-approve", "-input=false"])
        .spawn()
        .expect("terraform starts");
    // Kill the provider (SIGKILL: no chance to clean up) once both generations exist.
    let generations_now = || apiserver_generations_now(&kubeconfig);
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut killed_during = None;
    while Instant::now() < deadline {
        let now = generations_now();
        if now.split_whitespace().count() == 2 {
            if let Some(pid) = provider_child(apply.id()) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                killed_during = Some(now);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = apply.wait().expect("terraform ends");
    let killed_during = killed_during.expect("the provider was killed with two apiserver generations");
    assert!(!status.success(), "the killed apply fails");
    // Nobody reruns at once: the API keeps being served meanwhile.
    std::thread::sleep(Duration::from_secs(10));
    let left = generations_now();

    apply_ok(&ws, &lane, "rerun after the kill mid-upgrade");
    let samples = prober.finish();
    let after = apiserver_generations_now(&kubeconfig);
    let failures: Vec<&String> = samples.iter().filter_map(|(_, fp)| fp.as_ref().err()).collect();
    eprintln!(
        "provider killed mid-upgrade: generations {before} → killed during [{killed_during}], 10 s later [{left}] → after the rerun {after}; {} requests from before the kill to the end of the rerun, {} failed",
        samples.len(),
        failures.len()
    );
    assert!(samples.len() > 100, "the probe ran throughout: {}", samples.len());
    assert_eq!(
        failures.len(),
        0,
        "no failed request through the kill, the wait and the rerun: {failures:?}"
    );
    assert_one_new_generation(&kubeconfig, &before, "--v=2");
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");
}

/// Runs `terraform apply` (output captured) and, once `reached` holds (`what`), `act` (given
/// terraform's PID); returns how terraform ended, its output, and the time from `act` to its
/// end. Its output is read while it runs: a plan larger than a pipe's buffer would otherwise
/// stop terraform before it applies anything.
fn apply_until(
    ws: &Workspace,
    what: &str,
    mut reached: impl FnMut() -> bool,
    act: impl FnOnce(u32),
) -> (std::process::Output, String, Duration) {
    use std::io::Read;
    let mut apply = ws
        .command(&["apply", "-auto-approve", "-input=false"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("terraform starts");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(apply.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(apply.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut acted = None;
    while Instant::now() < deadline {
        if reached() {
            act(apply.id());
            acted = Some(Instant::now());
            break;
        }
        if apply.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if acted.is_none() {
        let _ = apply.kill();
    }
    let status = apply.wait().expect("terraform ends");
    let out = std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(acted) = acted else {
        panic!("the apply never reached {what}; terraform said:\n{text}");
    };
    let ended_after = acted.elapsed();
    (out, text, ended_after)
}

/// [`apply_until`] the bootstrap control plane's static Pods are on the first controller.
fn apply_until_the_bootstrap_control_plane(
    ws: &Workspace,
    lane: &Lane,
    act: impl FnOnce(u32),
) -> (std::process::Output, String, Duration) {
    apply_until(
        ws,
        "the bootstrap control plane",
        || {
            lane.ls("/etc/kubernetes/manifests")
                .contains("bootstrap-kube-apiserver")
        },
        act,
    )
}

/// Cuts the provider's SSH connection to the first controller once `reached` holds: sshd's
/// listener stays, the provider's session processes go (as when sshd restarts or a NAT
/// forgets the flow). Asserts the apply then ends at once, naming the host and one of
/// `phases`.
fn cut_ssh_when(ws: &Workspace, lane: &Lane, what: &str, reached: impl FnMut() -> bool, phases: &[&str]) {
    let host = lane.host().name.clone();
    let (out, text, ended_after) = apply_until(ws, what, reached, |_| {
        let out = lane.tb.host_exec(&host, &["pkill", "-f", "sshd: core"]);
        assert!(
            out.status.success(),
            "the provider's SSH session processes were there to kill"
        );
    });
    let error: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Error") || l.contains(&host))
        .collect();
    eprintln!(
        "SSH cut at {what}: terraform ended {ended_after:?} after the cut; its error:\n{}",
        error.join("\n")
    );
    assert!(!out.status.success(), "the apply fails:\n{text}");
    assert!(
        ended_after < Duration::from_secs(60),
        "the apply ended soon after the cut, not at the deadline: {ended_after:?}\n{text}"
    );
    assert!(
        text.contains("Bootstrap failed in phase") && text.contains(&format!(" on {host}")),
        "the error names the phase and the host:\n{text}"
    );
    assert!(
        phases.iter().any(|p| text.contains(&format!("phase {p}"))),
        "the error names one of the phases {phases:?}:\n{text}"
    );
}

/// The SSH connection cut three times, each on the rerun of the last: while the provider
/// waits for the bootstrap apiserver, once it applied the self-hosted manifests, and once it
/// labelled the controllers (waiting for the self-hosted control plane); the fourth apply
/// converges.
#[test]
fn an_ssh_connection_cut_mid_pivot_ends_the_apply_at_once_naming_the_host_and_the_next_apply_converges() {
    let Some(lane) = Lane::up("pivot ssh cut") else { return };
    let ws = Workspace::new(&config(&lane, ""));
    cut_ssh_when(
        &ws,
        &lane,
        "the bootstrap control plane",
        || {
            lane.ls("/etc/kubernetes/manifests")
                .contains("bootstrap-kube-apiserver")
        },
        &["bootstrap-control-plane", "wait-for-apiserver", "apply-manifests"],
    );
    let kubeconfig = ws.path().join("assets/auth/admin.kubeconfig");
    cut_ssh_when(
        &ws,
        &lane,
        "the self-hosted apiserver's DaemonSet",
        || !apiserver_generations_now(&kubeconfig).trim().is_empty(),
        &["apply-manifests", "label-controllers", "wait-for-self-hosted"],
    );
    let labelled = || {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "--request-timeout=2s",
                "get",
                "nodes",
                "-l",
                "node-role.kubernetes.io/control-plane",
                "-o",
                "name",
            ])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty())
    };
    cut_ssh_when(
        &ws,
        &lane,
        "the controllers labelled",
        labelled,
        &["label-controllers", "wait-for-self-hosted", "remove-bootstrap"],
    );

    apply_ok(&ws, &lane, "rerun after the SSH cuts");
    assert_eq!(ws.resource_values("selfhosted_bootstrap")["phase"], "verify");
    assert!(!lane.ls("/etc/kubernetes/manifests").contains("bootstrap"));
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");
}

#[test]
fn ctrl_c_during_the_pivot_stops_it_within_seconds_and_the_next_apply_converges() {
    let Some(lane) = Lane::up("pivot ctrl-c") else { return };
    let ws = Workspace::new(&config(&lane, ""));
    // The provider is then waiting on the bootstrap control plane (or already applying through it).
    let (out, text, stopped_after) = apply_until_the_bootstrap_control_plane(&ws, &lane, |terraform| {
        let _ = Command::new("kill").args(["-INT", &terraform.to_string()]).status();
    });
    assert!(!out.status.success(), "the interrupted apply fails:\n{text}");
    // Terraform waits for the provider: the whole apply ends within seconds of Ctrl-C, and
    // says where it stopped.
    eprintln!("terraform exited {:.1} s after SIGINT", stopped_after.as_secs_f64());
    assert!(stopped_after < Duration::from_secs(30), "{stopped_after:?}\n{text}");
    assert!(
        [
            "wait-for-apiserver",
            "apply-manifests",
            "label-controllers",
            "wait-for-self-hosted"
        ]
        .iter()
        .any(|p| text.contains(p)),
        "the error names the phase:\n{text}"
    );
    apply_ok(&ws, &lane, "rerun after Ctrl-C");
    assert_eq!(ws.resource_values("selfhosted_bootstrap")["phase"], "verify");
    assert!(!lane.ls("/etc/kubernetes/manifests").contains("bootstrap"));
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");
}

#[test]
fn a_cluster_whose_state_was_lost_is_imported_and_adopted_without_a_second_pivot() {
    let Some(lane) = Lane::up("pivot import") else { return };
    let ws = Workspace::new(&config(&lane, ""));
    apply_ok(&ws, &lane, "pivot");
    let kubeconfig = ws.path().join("assets/auth/admin.kubeconfig");
    let apiservers = || apiserver_generations(&kubeconfig);
    let before = apiservers();
    // The temporary control plane's credentials: none after the pivot, and a second pivot
    // would put them back.
    let bootstrap_left = || !lane.ls("/etc/kubernetes/bootstrap-secrets").trim().is_empty();
    assert!(
        !bootstrap_left(),
        "the pivot removed its temporary control plane's credentials"
    );

    // The state is lost; the cluster runs on.
    ws.ok(&["state", "rm", "selfhosted_bootstrap.lane"]);
    // A wrong ID is caught at plan, on the attribute it disagrees with.
    ws.ok(&[
        "import",
        "-input=false",
        "selfhosted_bootstrap.lane",
        "not-the-first-controller",
    ]);
    let text = ws.fails(&["plan", "-input=false"]);
    assert!(text.contains("Imported under another controller's name"), "{text}");
    ws.ok(&["state", "rm", "selfhosted_bootstrap.lane"]);
    let name = lane.host().name.clone();
    ws.ok(&["import", "-input=false", "selfhosted_bootstrap.lane", &name]);
    assert_eq!(ws.resource_values("selfhosted_bootstrap")["phase"], "verify");
    let plan = ws.ok(&["plan", "-input=false"]);
    assert!(
        plan.contains("selfhosted_bootstrap.lane will be updated in-place"),
        "{plan}"
    );
    assert!(
        !plan.contains("must be replaced") && !plan.contains("will be created"),
        "{plan}"
    );

    apply_ok(&ws, &lane, "adopting the imported cluster");
    // An update, not a pivot: no temporary control plane came back, the apiserver generation
    // is the one that ran before.
    assert!(
        !bootstrap_left(),
        "no second pivot: {:?}",
        lane.ls("/etc/kubernetes/bootstrap-secrets")
    );
    assert_eq!(apiservers(), before, "the running apiserver was kept");
    assert_eq!(ws.resource_values("selfhosted_bootstrap")["phase"], "verify");
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");
}

#[test]
fn a_worker_joins_from_the_joining_ignition_alone_by_tls_bootstrapping() {
    // An autoscaling group's worker: nobody logs in to it. What its Ignition carries
    // (`joining_worker_ignition`: the bootstrap kubeconfig and the CA) is all it gets.
    let Some(lane) = Lane::up_with("pivot joining worker", Topology::ONE_CONTROLLER_ONE_WORKER) else {
        return;
    };
    let ws = Workspace::new(&config(&lane, ""));
    apply_ok(&ws, &lane, "pivot (the worker is not listed)");
    let worker = lane.at(lane.workers[0]).name.clone();
    let ignition = ws.resource_values("selfhosted_cluster_assets")["joining_worker_ignition"]
        .as_str()
        .expect("joining_worker_ignition in state")
        .to_owned();
    let config: serde_json::Value = serde_json::from_str(&ignition).expect("Ignition JSON");
    // The files as Ignition writes them, the kubeconfig last, as its arrival starts the
    // kubelet. Not the ones for systemd, which the lane runs without: it keeps its own
    // KubeletConfiguration, and its kernel is the machine's (modules-load.d, sysctl.d).
    let for_systemd = |path: &str| {
        path == "/etc/kubernetes/kubelet.yaml"
            || path.starts_with("/etc/modules-load.d/")
            || path.starts_with("/etc/sysctl.d/")
    };
    let mut files: Vec<&serde_json::Value> = config["storage"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter(|f| !for_systemd(f["path"].as_str().unwrap_or_default()))
        .collect();
    files.sort_by_key(|f| f["path"] == "/etc/kubernetes/kubeconfig");
    assert_eq!(files.len(), 2, "{files:?}");
    for f in files {
        let path = f["path"].as_str().expect("path");
        let b64 = f["contents"]["source"]
            .as_str()
            .and_then(|s| s.strip_prefix("data:;base64,"))
            .expect("a base64 data URL");
        let mode = format!("{:o}", f["mode"].as_u64().expect("mode"));
        let script = format!(
            "mkdir -p \"$(dirname {path})\" && echo {b64} | base64 -d > {path}.tmp && chmod {mode} {path}.tmp && mv {path}.tmp {path}"
        );
        let out = lane.tb.host_exec(&worker, &["sh", "-c", &script]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let kubeconfig = ws.path().join("assets/auth/admin.kubeconfig");
    eventually(Duration::from_secs(180), "the worker to register and be Ready", || {
        let nodes = kubectl(
            &kubeconfig,
            &[
                "get",
                "nodes",
                "-o",
                r#"jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
            ],
        );
        if nodes.lines().any(|l| l == format!("{worker}=True")) {
            Ok(())
        } else {
            Err(format!("nodes: {nodes:?}"))
        }
    });
    // It holds a client certificate of its own, issued through its approved CSR.
    let csrs = kubectl(&kubeconfig, &["get", "csr", "-o", "jsonpath={.items[*].spec.username}"]);
    assert!(
        csrs.contains("system:bootstrap:"),
        "a CSR by the bootstrap token: {csrs}"
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");

    // Its group scales in: at shutdown, its delete-node.service deletes its Node with the
    // kubelet's own credentials. The lane has no systemd: the unit's ExecStop runs as systemd
    // runs it (`$$` is systemd's literal `$`). Those credentials delete no other Node
    // (NodeRestriction).
    let unit = config["systemd"]["units"]
        .as_array()
        .expect("units")
        .iter()
        .find(|u| u["name"] == "delete-node.service")
        .and_then(|u| u["contents"].as_str())
        .expect("the joining worker's Ignition has delete-node.service");
    let stop = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStop="))
        .expect("ExecStop")
        .replace("$$", "$");
    let script = stop
        .strip_prefix("/bin/sh -c '")
        .and_then(|c| c.strip_suffix('\''))
        .unwrap_or_else(|| panic!("a shell command: {stop}"));
    let controller = lane.host().name.clone();
    let refused = lane.tb.host_exec(
        &worker,
        &[
            "kubectl",
            "--kubeconfig=/var/lib/kubelet/kubeconfig",
            "delete",
            "node",
            &controller,
            "--wait=false",
        ],
    );
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && why.contains("forbidden"),
        "a worker's credentials cannot delete the controller's Node: {why}"
    );
    let out = lane.tb.host_exec(&worker, &["sh", "-c", script]);
    assert!(
        out.status.success(),
        "delete-node's ExecStop: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let names = kubectl(
        &kubeconfig,
        &["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"],
    );
    assert_eq!(
        names.split_whitespace().collect::<Vec<_>>(),
        [controller.as_str()],
        "the worker's Node is deleted, the controller's stays"
    );
    eprintln!(
        "joining worker: its delete-node.service deleted its Node; deleting {controller}'s was refused: {}",
        why.trim()
    );
}

#[test]
fn an_update_hands_the_apiserver_over_blue_green_with_no_failed_request() {
    let Some(lane) = Lane::up("pivot update") else { return };
    // Every update also keeps its etcd snapshot here (see the restore at the end).
    let with_snapshots = |extra: &str, bootstrap: &str| {
        LaneConfig::new(&lane)
            .assets(extra)
            .bootstrap(&format!(
                "  etcd_snapshot_dir = \"${{path.root}}/etcd-snapshots\"\n{bootstrap}"
            ))
            .hcl()
    };
    let ws = Workspace::new(&with_snapshots("", ""));
    apply_ok(&ws, &lane, "apply");
    let assets = ws.path().join("assets");
    let kubeconfig = assets.join("auth/admin.kubeconfig");
    let generations = || apiserver_generations(&kubeconfig);
    let before = generations();
    kubectl(&kubeconfig, &["create", "configmap", "made-before-the-update"]);

    // A changed apiserver flag (a new apiserver generation) and a new object.
    let extra = "  extra_flags = { \"kube_apiserver\" = [\"--v=2\"] }\n  extra_manifests = [<<-EOT\n    apiVersion: v1\n    kind: ConfigMap\n    metadata:\n      name: added-later\n      namespace: kube-system\n    data:\n      k: v\n  EOT\n  ]";
    ws.write("main.tf", &with_snapshots(extra, ""));
    let (changes, text) = ws.plan_has_changes();
    assert!(
        changes && text.contains("selfhosted_bootstrap.lane will be updated in-place"),
        "{text}"
    );
    // What a client sees: a real API request on a fresh connection every 50 ms.
    let endpoints = EndpointsWatch::start(&assets, lane.api_address());
    let (took, samples) = apply_while_probing(&ws, &lane, "update", Some(API_REQUEST), Duration::from_secs(3));
    // One controller: the old apiserver's exit removes the address the new one writes again
    // only at its next reconcile (up to 10 s; 6.3 s measured before the keeper). The provider
    // writes it back at once (docs/guides/upgrades.md).
    endpoints
        .finish()
        .assert_empty_at_most("update (one controller)", ONE_CONTROLLER_EMPTY_AT_MOST);
    let after = generations();
    let bootstrap =
        Fingerprint::of_pem(&std::fs::read_to_string(assets.join("tls/bootstrap-apiserver.crt")).unwrap()).unwrap();
    let failures: Vec<&String> = samples.iter().filter_map(|(_, fp)| fp.as_ref().err()).collect();
    eprintln!(
        "update: apply took {took:?}; {} requests, {} failed; apiserver generation {before} → {after}",
        samples.len(),
        failures.len()
    );
    assert!(
        samples.len() > 20,
        "the probe ran throughout: {} requests",
        samples.len()
    );
    assert!(
        !samples.iter().any(|(_, fp)| fp.as_ref() == Ok(&bootstrap)),
        "an update never brings back the bootstrap apiserver"
    );
    assert_eq!(
        failures.len(),
        0,
        "no failed request during the hand-over: {failures:?}"
    );
    what_the_update_made_is_there(&kubeconfig, &before);
    the_kubernetes_service_keeps_its_last_address(&kubeconfig);
    assert!(
        !lane.ls("/etc/kubernetes/manifests").contains("bootstrap"),
        "no bootstrap control plane is left"
    );
    assert_eq!(ws.resource_values("selfhosted_bootstrap")["phase"], "verify");
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");

    restore_the_snapshot_the_update_took(
        &ws,
        &lane,
        &before,
        &with_snapshots(extra, "  converge_trigger = \"restored\"\n"),
    );
}

/// The admission policy the provider renders (1.30 on) refuses the write that empties the
/// `kubernetes` Service, the one a stopping apiserver makes, and lets every other write of it
/// through.
fn the_kubernetes_service_keeps_its_last_address(kubeconfig: &Path) {
    let empty = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", "default", "patch", "endpoints", "kubernetes", "--type=json"])
        .args(["-p", r#"[{"op":"replace","path":"/subsets","value":[]}]"#])
        .output()
        .expect("kubectl runs");
    let said = String::from_utf8_lossy(&empty.stderr);
    eprintln!("emptying the kubernetes Endpoints: {}", said.trim());
    assert!(
        !empty.status.success() && said.contains("keeps its last address"),
        "emptying the kubernetes Endpoints is refused by the policy: {said}"
    );
    kubectl(
        kubeconfig,
        &["-n", "default", "label", "endpoints", "kubernetes", "selfhosted-test=1"],
    );
    kubectl(
        kubeconfig,
        &["-n", "default", "label", "endpoints", "kubernetes", "selfhosted-test-"],
    );
    let ips = kubectl(
        kubeconfig,
        &[
            "-n",
            "default",
            "get",
            "endpoints",
            "kubernetes",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}",
        ],
    );
    assert!(
        !ips.trim().is_empty(),
        "the kubernetes Endpoints keep their address: {ips:?}"
    );
}

/// The update's apiserver generation (one, with its flag, not `before`) and its new object.
fn what_the_update_made_is_there(kubeconfig: &Path, before: &str) {
    assert_one_new_generation(kubeconfig, before, "--v=2");
    let value = kubectl(
        kubeconfig,
        &[
            "-n",
            "kube-system",
            "get",
            "configmap",
            "added-later",
            "-o",
            "jsonpath={.data.k}",
        ],
    );
    assert_eq!(value, "v", "the update's ConfigMap");
}

/// The etcd snapshot an update took before changing anything, checked as etcd's own tool
/// reads it; then etcd's data lost, restored from the copy kept on the controller with the
/// guide's commands, the controller rebooted, and the update run again by `converge_trigger`:
/// what was made before the snapshot is back, what came after it is gone until the apply
/// puts back what the configuration holds.
fn restore_the_snapshot_the_update_took(ws: &Workspace, lane: &Lane, before: &str, restored_config: &str) {
    let assets = ws.path().join("assets");
    let kubeconfig = assets.join("auth/admin.kubeconfig");
    let snapshot = ws.resource_values("selfhosted_bootstrap")["etcd_snapshot"].clone();
    let field = |k: &str| {
        snapshot[k]
            .as_str()
            .unwrap_or_else(|| panic!("etcd_snapshot.{k}: {snapshot}"))
            .to_owned()
    };
    let (on_host, local) = (field("path"), std::path::PathBuf::from(field("local_path")));
    assert_eq!(field("host"), lane.host().name, "{snapshot}");
    assert!(
        on_host.starts_with("/var/lib/selfhosted/etcd-snapshots/etcd-"),
        "{snapshot}"
    );
    let data = std::fs::read(&local).expect("the local copy");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&local).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the local copy is private");
    }
    assert_eq!(data.len().to_string(), field("bytes"));
    let sha = |args: &[&str]| {
        let out = lane.tb.host_exec(&lane.host().name, args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let host_copy = sha(&[
        "sh",
        "-c",
        &format!("sha256sum {on_host} | cut -d' ' -f1; stat -c %U:%a {on_host}"),
    ]);
    assert_eq!(
        host_copy,
        format!("{}\nroot:600", field("sha256")),
        "the copy on the controller"
    );
    let status = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", "--write-out", "json"])
        .arg(&local)
        .output()
        .expect("etcdctl");
    assert!(
        status.status.success(),
        "etcdctl snapshot status: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    eprintln!("etcd snapshot: {snapshot}; etcdctl snapshot status: {status}");
    assert!(
        status["revision"].as_i64() >= field("revision").parse().ok(),
        "{status}"
    );

    // After the snapshot: lost with etcd's data.
    kubectl(&kubeconfig, &["create", "configmap", "made-after-the-snapshot"]);
    let started = Instant::now();
    lane.stop_etcd(0);
    let address = &lane.host().address;
    let restore = format!(
        "set -e; rm -rf /var/lib/etcd/* /var/lib/etcd-restored; \
         ETCDCTL_API=3 etcdctl snapshot restore {on_host} --name etcd0 \
           --initial-cluster etcd0=https://{address}:2380 --initial-advertise-peer-urls https://{address}:2380 \
           --data-dir /var/lib/etcd-restored; \
         mv /var/lib/etcd-restored/member /var/lib/etcd/; rmdir /var/lib/etcd-restored; chown -R etcd:etcd /var/lib/etcd"
    );
    let out = lane.tb.host_exec(&lane.host().name, &["sh", "-c", &restore]);
    assert!(
        out.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lane.start_etcd(0);
    let self_hosted = Fingerprint::of_pem(&std::fs::read_to_string(assets.join("tls/apiserver.crt")).unwrap()).unwrap();
    let rebooted = lane.reboot(&assets, &self_hosted, Duration::from_secs(240));
    let present = |name: &str| {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["get", "configmap", name, "--ignore-not-found", "-o", "name"])
            .output()
            .expect("kubectl");
        out.status.success().then_some(!out.stdout.is_empty())
    };
    eventually(
        Duration::from_secs(60),
        "the API reads the restored keyspace",
        || match (present("made-before-the-update"), present("made-after-the-snapshot")) {
            (Some(true), Some(false)) => Ok(()),
            other => Err(format!("(before, after) present: {other:?}")),
        },
    );
    eprintln!(
        "restore: etcd restored and the controller rebooted; self-hosted apiserver back after {:?}, {:?} in all",
        rebooted.self_hosted,
        started.elapsed()
    );

    // What the update applied after its snapshot is back once the update runs again.
    ws.write("main.tf", restored_config);
    let (changes, text) = ws.plan_has_changes();
    assert!(changes && text.contains("converge_trigger"), "{text}");
    let converged = Instant::now();
    apply_ok(ws, lane, "apply after the restore");
    eprintln!("restore: the converging apply took {:?}", converged.elapsed());
    what_the_update_made_is_there(&kubeconfig, before);
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");

    // A setting that gives the hosts nothing to do is applied without an update: no new
    // snapshot, the state as planned.
    let taken = ws.resource_values("selfhosted_bootstrap")["etcd_snapshot"].clone();
    assert!(
        taken.get("pending").is_none(),
        "a converged update's snapshot is not pending: {taken}"
    );
    ws.write(
        "main.tf",
        &restored_config.replace("/etcd-snapshots\"", "/etcd-snapshots-elsewhere\""),
    );
    let quick = Instant::now();
    apply_ok(ws, lane, "only etcd_snapshot_dir changed");
    assert_eq!(
        ws.resource_values("selfhosted_bootstrap")["etcd_snapshot"],
        taken,
        "no update ran (it would have taken a snapshot)"
    );
    eprintln!("restore: a settings-only apply took {:?}", quick.elapsed());
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");
}

#[test]
fn an_upgrade_to_an_apiserver_that_cannot_start_keeps_the_old_one_serving() {
    let Some(lane) = Lane::up("pivot bad upgrade") else {
        return;
    };
    // This test reaches the API directly at the controller's address, not through a tunnel.
    let direct = |extra: &'static str| {
        LaneConfig::new(&lane)
            .assets(extra)
            .bootstrap("  api_access = \"direct\"")
    };
    let ws = Workspace::new(&direct("").hcl());
    apply_ok(&ws, &lane, "apply");
    let kubeconfig = ws.path().join("assets/auth/admin.kubeconfig");
    let generations = || apiserver_generations(&kubeconfig);
    let good = generations();

    // bootkube's fault: an in-place apiserver update on one controller is an outage.
    // Here the bad generation runs beside the good one, which keeps serving.
    let bad = direct("  extra_flags = { \"kube_apiserver\" = [\"--no-such-flag=1\"] }")
        .timeouts("create = \"8m\", update = \"60s\"")
        .hcl();
    ws.write("main.tf", &bad);
    let started = Instant::now();
    let text = ws.fails(&["apply", "-auto-approve", "-input=false"]);
    let took = started.elapsed();
    eprintln!("bad upgrade: apply failed after {took:?}");
    assert!(
        took < Duration::from_secs(150),
        "fails within the timeout, took {took:?}"
    );
    assert!(text.contains("apiserver-hand-over"), "names the phase:\n{text}");
    assert!(
        text.contains("unknown flag: --no-such-flag"),
        "quotes the new apiserver's own error:\n{text}"
    );
    let ready = kubectl(&kubeconfig, &["get", "--raw", "/readyz"]);
    assert_eq!(ready.trim(), "ok", "the old generation keeps serving");
    let both = generations();
    assert!(
        both.contains(&good) && both.split_whitespace().count() == 2,
        "the old generation is kept beside the failed one: {both}"
    );

    // Back to the good configuration: the failed generation is removed and the plan settles.
    ws.write("main.tf", &direct("").hcl());
    apply_ok(&ws, &lane, "apply");
    assert_eq!(generations(), good, "only the good generation is left");
    let state = ws.resource_values("selfhosted_bootstrap");
    assert_eq!(state["phase"], "verify");
    assert_eq!(
        state["api_endpoint"],
        format!("https://{}:6443", lane.host().address),
        "reached directly"
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");
}

/// A renewal cut after the hand-over, then a reboot before the rerun: recovery follows renewals.
#[test]
fn a_certificate_renewal_reaches_the_running_control_plane() {
    let Some(lane) = Lane::up("pivot renewal") else { return };
    let ws = Workspace::new(
        &LaneConfig::new(&lane)
            .assets("  validity_hours      = 48\n  early_renewal_hours = 24")
            .timeouts("create = \"8m\", update = \"4m\"")
            .hcl(),
    );
    // The cluster is set up with certificates issued 30 hours ago (the provider's clock
    // only): now they are 30 hours into their 48, inside the 24-hour renewal window.
    let earlier = support::shifted_clock("-30h");
    let earlier: Vec<(&str, &str)> = earlier.iter().map(|(k, v)| (*k, v.as_str())).collect();
    apply_ok_with(&ws, &lane, "pivot with certificates issued 30 h ago", &earlier);
    let assets = ws.path().join("assets");
    let kubeconfig = assets.join("auth/admin.kubeconfig");
    let read = |p: &str| std::fs::read_to_string(assets.join(p)).unwrap();
    let old_cert = Fingerprint::of_pem(&read("tls/apiserver.crt")).unwrap();
    let old_generation = apiserver_generations(&kubeconfig);

    // A plain apply at the real time renews, and the upgrade brings the new certificates to the
    // running control plane. This one is cut — the provider SIGKILLed — once the renewed
    // generation alone serves (after the hand-over, before the recovery-apiserver phase writes
    // the renewed recovery files), and the controller then reboots: its recovery apiserver,
    // with the previous files, must hand back to the renewed self-hosted apiserver by itself,
    // and the rerun converge with no failed request.
    let host_file = |path: &str| {
        let out = lane.tb.host_exec(&lane.host().name, &["cat", path]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let recovery_cert = "/etc/kubernetes/recovery-secrets/recovery-apiserver.crt";
    let recovery_before = host_file(recovery_cert);
    let endpoints = EndpointsWatch::start(&assets, lane.api_address());
    let prober = Prober::start(&assets, &lane.host().address, Some(API_REQUEST));
    let started = Instant::now();
    let (out, text, _) = apply_until(
        &ws,
        "the renewed apiserver generation alone",
        || {
            let now = apiserver_generations_now(&kubeconfig);
            !now.trim().is_empty() && !now.trim().contains(' ') && now.trim() != old_generation.trim()
        },
        |terraform| {
            if let Some(pid) = provider_child(terraform) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        },
    );
    let cut_after = started.elapsed();
    let samples = prober.finish();
    eprintln!("{}", endpoints.finish().line("renewal (one controller)"));
    assert!(!out.status.success(), "the killed apply fails:\n{text}");
    assert_eq!(
        host_file(recovery_cert),
        recovery_before,
        "the provider was killed before the recovery-apiserver phase wrote the renewed files"
    );
    let new_cert = Fingerprint::of_pem(&read("tls/apiserver.crt")).unwrap();
    let failures: Vec<&String> = samples.iter().filter_map(|(_, fp)| fp.as_ref().err()).collect();
    let new_generation = apiserver_generations(&kubeconfig);
    eprintln!(
        "renewal cut after the hand-over at {cut_after:?}: {} requests, {} failed; apiserver generation {old_generation} → {new_generation}",
        samples.len(),
        failures.len()
    );
    assert_ne!(new_cert, old_cert, "the apiserver certificate was renewed");
    assert_eq!(
        samples.last().unwrap().1.as_ref(),
        Ok(&new_cert),
        "the running apiserver serves the renewed certificate"
    );
    assert_eq!(failures.len(), 0, "no failed request during the renewal: {failures:?}");
    assert!(
        !new_generation.contains(' ') && new_generation != old_generation,
        "a renewal is a new apiserver generation: {old_generation} → {new_generation}"
    );

    // The reboot, with the previous recovery files on disk: the renewed apiserver comes back.
    let rebooted = lane.reboot(&assets, &new_cert, Duration::from_secs(300));
    eprintln!(
        "reboot after the cut renewal: an apiserver answered {:?} after the boot, the renewed self-hosted one {:?}",
        rebooted.any, rebooted.self_hosted
    );
    assert_eq!(running_apiserver_generations(&kubeconfig).trim(), new_generation.trim());

    // The rerun converges, losing no request, and the recovery pod stands by again.
    let (took, samples) = apply_while_probing(
        &ws,
        &lane,
        "rerun of the cut renewal",
        Some(API_REQUEST),
        Duration::from_secs(3),
    );
    let failures: Vec<&String> = samples.iter().filter_map(|(_, fp)| fp.as_ref().err()).collect();
    eprintln!(
        "rerun after the cut renewal and the reboot: {took:?}; {} requests, {} failed",
        samples.len(),
        failures.len()
    );
    assert_eq!(failures.len(), 0, "no failed request during the rerun: {failures:?}");
    assert_ne!(
        host_file(recovery_cert),
        recovery_before,
        "the rerun wrote the renewed recovery files"
    );
    recovery_stands_by(&lane, &kubeconfig);
    let revision = ws.resource_values("selfhosted_cluster_assets")["credentials_revision"]
        .as_str()
        .unwrap()
        .to_owned();
    for deployment in ["kube-controller-manager", "kube-scheduler"] {
        let annotation = kubectl(
            &kubeconfig,
            &[
                "-n",
                "kube-system",
                "get",
                "deployment",
                deployment,
                "-o",
                "jsonpath={.spec.template.metadata.annotations.selfhosted\\.dev/credentials-revision}",
            ],
        );
        assert_eq!(annotation, revision, "{deployment} rolled with the new credentials");
    }
    assert_eq!(ws.resource_values("selfhosted_bootstrap")["phase"], "verify");
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");
}

/// Apiserver hand-overs in a row on one cluster, each to a new generation (a flag that changes
/// every round), under a prober sending a real API request on a fresh connection every 50 ms:
/// none may lose a request. `SELFHOSTED_HANDOVER_ROUNDS` sets how many (2 unless set;
/// `scripts/handover-soak.sh` runs more).
#[test]
fn apiserver_hand_overs_in_a_row_lose_no_request() {
    let rounds: u32 = std::env::var("SELFHOSTED_HANDOVER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let Some(lane) = Lane::up("pivot hand-overs") else {
        return;
    };
    let ws = Workspace::new(&config(&lane, ""));
    apply_ok(&ws, &lane, "apply");
    let kubeconfig = ws.path().join("assets/auth/admin.kubeconfig");
    let (mut sent, mut failed) = (0, Vec::new());
    for round in 1..=rounds {
        let before = apiserver_generations(&kubeconfig);
        let flag = format!("  extra_flags = {{ \"kube_apiserver\" = [\"--v={}\"] }}", round % 4 + 1);
        ws.write("main.tf", &config(&lane, &flag));
        let (took, samples) = apply_while_probing(&ws, &lane, "hand-over", Some(API_REQUEST), Duration::from_secs(3));
        let after = apiserver_generations(&kubeconfig);
        let failures: Vec<String> = samples.iter().filter_map(|(_, r)| r.clone().err()).collect();
        eprintln!(
            "hand-over {round}/{rounds}: apply took {took:?}; {} requests, {} failed; {before} → {after}",
            samples.len(),
            failures.len()
        );
        assert!(
            after != before && !after.contains(' '),
            "round {round}: {before} → {after}"
        );
        assert!(
            samples.len() > 20,
            "round {round}: the probe ran: {} requests",
            samples.len()
        );
        sent += samples.len();
        failed.extend(failures.into_iter().map(|f| format!("round {round}: {f}")));
    }
    eprintln!("hand-overs: {rounds} rounds, {sent} requests, {} failed", failed.len());
    assert_eq!(failed.len(), 0, "no failed request in any hand-over: {failed:?}");
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");
}

/// The value of the ConfigMap the reboot test makes before its first reboot.
/// When the recovery pod of the first controller stands by: the start time of its `standby`
/// init container, empty while it serves.
fn recovery_standby(kubeconfig: &Path) -> String {
    kube_system_pods(
        kubeconfig,
        "k8s-app=kube-apiserver-recovery",
        &[],
        "{.items[*].status.initContainerStatuses[0].state.running.startedAt}",
    )
}

/// Waits until the recovery apiserver has handed back and stands by again: one listener on the
/// apiserver port, the recovery pod in `standby`.
fn recovery_stands_by(lane: &Lane, kubeconfig: &Path) {
    eventually(
        Duration::from_secs(90),
        "the recovery apiserver hands back and stands by again",
        || {
            let listeners = lane
                .tb
                .host_exec(&lane.host().name, &["sh", "-c", "ss -Hltn 'sport = :6443' | wc -l"]);
            let n = String::from_utf8_lossy(&listeners.stdout).trim().to_owned();
            let standby = recovery_standby(kubeconfig);
            if n == "1" && !standby.trim().is_empty() {
                Ok(())
            } else {
                Err(format!("{n} listening on 6443; standby {standby:?}"))
            }
        },
    )
}

fn kept(kubeconfig: &Path) -> String {
    kubectl(
        kubeconfig,
        &[
            "-n",
            "default",
            "get",
            "configmap",
            "before-reboot",
            "-o",
            "jsonpath={.data.k}",
        ],
    )
}

/// #22 item 4: a self-hosted apiserver that cannot start (its image gone, here by a hand edit of
/// its DaemonSet) leaves the controller on its recovery apiserver, whose mirror pod is Ready.
/// A refresh that checks the hosts names the controller once it has served past a hand-back's
/// time, with the evidence, and plans the update that applies the control plane's manifests
/// again; that apply brings the self-hosted apiserver back and the recovery pod stands by.
/// `assets`: the configuration's lines in the assets (unchanged by this step).
fn a_recovery_apiserver_that_never_hands_back_is_named_and_the_next_apply_brings_it_back(
    ws: &Workspace,
    lane: &Lane,
    kubeconfig: &Path,
    assets: &str,
) {
    let checked = LaneConfig::new(lane)
        .assets(assets)
        .bootstrap("  check_hosts_on_refresh = true")
        .hcl();
    ws.write("main.tf", &checked);
    ws.ok(&["apply", "-auto-approve", "-input=false"]);
    let daemonset = apiserver_generations(kubeconfig);
    let gone = "registry.invalid/kube-apiserver:gone";
    kubectl(
        kubeconfig,
        &[
            "-n",
            "kube-system",
            "set",
            "image",
            &format!("daemonset/{}", daemonset.trim()),
            &format!("kube-apiserver={gone}"),
        ],
    );
    let broken = Instant::now();
    eventually(
        Duration::from_secs(120),
        "the recovery apiserver serves once the self-hosted one is gone",
        || {
            let started = kube_system_pods_result(
                kubeconfig,
                "k8s-app=kube-apiserver-recovery",
                &[],
                "{.items[*].status.containerStatuses[?(@.name==\"kube-apiserver\")].state.running.startedAt}",
            )?;
            if started.trim().is_empty() {
                Err("the recovery apiserver does not run".to_owned())
            } else {
                Ok(())
            }
        },
    );
    let on_recovery = broken.elapsed();
    // Plans before the hand-back's time has passed say nothing; the first after names it.
    let node = lane.host().name.clone();
    let (named, text) = loop {
        let (changes, text) = ws.plan_has_changes();
        let flat = support::flat(&text);
        if flat.contains("served from its recovery apiserver") {
            break (broken.elapsed(), (changes, flat));
        }
        assert!(!changes, "no update is planned before the report:\n{text}");
        assert!(
            broken.elapsed() < Duration::from_secs(240),
            "no report within 4 min:\n{text}"
        );
        std::thread::sleep(Duration::from_secs(10));
    };
    let (changes, flat) = text;
    assert!(
        changes,
        "the report plans the update that applies the manifests again:\n{flat}"
    );
    assert!(
        flat.contains(&format!("- {node}: it has served from its recovery apiserver")) && flat.contains(gone),
        "the controller is named, with its apiserver pod's evidence (the image it cannot pull):\n{flat}"
    );
    let report = flat.find("the hosts differ").map_or(flat.as_str(), |at| &flat[at..]);
    eprintln!("the plan's report: {}", report.chars().take(1200).collect::<String>());
    let started = Instant::now();
    apply_ok(ws, lane, "apply after the recovery report");
    let applied = started.elapsed();
    recovery_stands_by(lane, kubeconfig);
    let image = kube_system_pods(
        kubeconfig,
        "k8s-app=kube-apiserver",
        &["--field-selector=status.phase=Running"],
        "{.items[*].spec.containers[?(@.name==\"kube-apiserver\")].image}",
    );
    assert!(
        !image.trim().is_empty() && !image.contains(gone),
        "the contract's image runs: {image:?}"
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(
        !changes && !text.contains("recovery apiserver"),
        "the next plan is empty and reports nothing:\n{text}"
    );
    eprintln!(
        "recovery never handing back: serving {on_recovery:?} after the image was gone, named by the plan after {named:?}, \
         the apply brought the self-hosted apiserver back in {applied:?}"
    );
    ws.write("main.tf", &config(lane, assets));
}

/// A controller's reboot (containers gone, disk kept) brings the API back by itself: the
/// recovery apiserver that stood by starts, the kubelet runs the self-hosted pods again, and
/// the recovery apiserver hands back and stands by again. Objects survive; after an upgrade,
/// the new generation comes back, never the old one. Recovery files removed by hand leave a
/// rebooted cluster down, and `terraform apply -replace` on the bootstrap resource brings it
/// back and restores them.
#[test]
fn a_rebooted_controller_brings_the_api_back_by_itself() {
    let Some(lane) = Lane::up("pivot reboot") else { return };
    let ws = Workspace::new(&config(&lane, ""));
    apply_ok(&ws, &lane, "pivot");
    let assets = ws.path().join("assets");
    let kubeconfig = assets.join("auth/admin.kubeconfig");
    let self_hosted = Fingerprint::of_pem(&std::fs::read_to_string(assets.join("tls/apiserver.crt")).unwrap()).unwrap();
    let within = Duration::from_secs(300);

    // The recovery apiserver stands by on the controller, its credentials root-only.
    assert!(lane
        .ls("/etc/kubernetes/manifests")
        .contains("kube-apiserver-recovery.yaml"));
    let modes = lane.tb.host_exec(
        &lane.host().name,
        &["sh", "-c", "stat -c '%a %U %n' /etc/kubernetes/recovery-secrets/*"],
    );
    let modes = String::from_utf8_lossy(&modes.stdout).into_owned();
    assert!(modes.lines().count() >= 10, "{modes}");
    assert!(modes.lines().all(|l| l.starts_with("600 root ")), "{modes}");
    eventually(
        Duration::from_secs(60),
        "the recovery pod stands by in its first init container",
        || {
            let s = recovery_standby(&kubeconfig);
            if s.trim().is_empty() {
                Err(s)
            } else {
                Ok(())
            }
        },
    );
    kubectl(
        &kubeconfig,
        &[
            "-n",
            "default",
            "create",
            "configmap",
            "before-reboot",
            "--from-literal=k=v",
        ],
    );

    let endpoints = EndpointsWatch::start(&assets, lane.api_address());
    let first = lane.reboot(&assets, &self_hosted, within);
    eprintln!(
        "reboot after the pivot: an apiserver answered {:?} after the boot, the self-hosted one {:?}",
        first.any, first.self_hosted
    );
    assert_eq!(kept(&kubeconfig), "v", "an object made before the reboot is kept");
    let stands_by = || recovery_stands_by(&lane, &kubeconfig);
    stands_by();
    std::thread::sleep(Duration::from_secs(2));
    // The recovery apiserver writes no address (`--endpoint-reconciler-type=none`): from the
    // boot to the hand-back and after, the Service keeps the controller's address.
    endpoints
        .finish()
        .assert_never_empty("reboot and recovery hand-back (one controller)");
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        eventually(
            Duration::from_secs(120),
            &format!("{lease} lease renewed after the reboot"),
            || {
                let holder = lease_holder(&kubeconfig, lease);
                if holder.trim().is_empty() {
                    Err(holder)
                } else {
                    Ok(())
                }
            },
        );
    }

    // An upgrade, then a reboot: the new generation comes back.
    ws.write(
        "main.tf",
        &config(&lane, "  extra_flags = { \"kube_apiserver\" = [\"--v=3\"] }"),
    );
    let endpoints = EndpointsWatch::start(&assets, lane.api_address());
    apply_ok(&ws, &lane, "upgrade");
    endpoints
        .finish()
        .assert_empty_at_most("upgrade (one controller)", ONE_CONTROLLER_EMPTY_AT_MOST);
    let upgraded = apiserver_generations(&kubeconfig);
    let endpoints = EndpointsWatch::start(&assets, lane.api_address());
    let second = lane.reboot(&assets, &self_hosted, within);
    eprintln!(
        "reboot after an upgrade: an apiserver answered {:?} after the boot, the self-hosted one {:?}",
        second.any, second.self_hosted
    );
    stands_by();
    std::thread::sleep(Duration::from_secs(2));
    endpoints
        .finish()
        .assert_never_empty("reboot after an upgrade and recovery hand-back (one controller)");
    assert_eq!(
        running_apiserver_generations(&kubeconfig).trim(),
        upgraded.trim(),
        "the current generation runs"
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "a plan after the reboot is empty:\n{text}");
    a_recovery_apiserver_that_never_hands_back_is_named_and_the_next_apply_brings_it_back(
        &ws,
        &lane,
        &kubeconfig,
        "  extra_flags = { \"kube_apiserver\" = [\"--v=3\"] }",
    );

    // Recovery files removed by hand: a reboot leaves the API down; apply -replace is the way out.
    lane.tb.host_exec(
        &lane.host().name,
        &[
            "sh",
            "-c",
            "rm -f /etc/kubernetes/manifests/kube-apiserver-recovery.yaml /etc/kubernetes/recovery-secrets/*",
        ],
    );
    lane.controller_sh("down");
    lane.controller_sh("up");
    std::thread::sleep(Duration::from_secs(45));
    let probe = api_probe(&assets, &lane.host().address);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let down = rt.block_on(async { tokio::time::timeout(Duration::from_secs(3), probe.get("/readyz")).await });
    assert!(
        !matches!(down, Ok(Ok(ref a)) if a.is_ready()),
        "without recovery files nothing serves after a reboot"
    );
    let started = Instant::now();
    apply_args_ok(
        &ws,
        &lane,
        "apply -replace",
        &["-replace=selfhosted_bootstrap.lane"],
        &[],
    );
    eprintln!("apply -replace brought the cluster back in {:?}", started.elapsed());
    assert_eq!(kubectl(&kubeconfig, &["get", "--raw", "/readyz"]).trim(), "ok");
    assert_eq!(kept(&kubeconfig), "v", "an object made before the reboot is kept");
    assert!(
        lane.ls("/etc/kubernetes/manifests")
            .contains("kube-apiserver-recovery.yaml"),
        "the recovery files are back"
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");
}
