//! Playing the attacker who holds a worker's disk: every way from the bootstrap token and the
//! worker's own kubelet certificate to the CA key in the controller-manager's Secret (or the
//! apiserver's keys), each step tried against the real cluster and expected to be refused.
//! The report names the step that refused each attempt.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use super::lane::{kubectl, Lane};

/// The Secrets that hold what opens the cluster: the CA key (controller-manager), the
/// service-account signing key and etcd client key (apiserver).
const CROWN_JEWELS: [&str; 2] = ["kube-controller-manager", "kube-apiserver"];

/// How the attacker authenticates.
enum As<'a> {
    /// A kubeconfig (the worker's bootstrap kubeconfig).
    Kubeconfig(&'a Path),
    /// A client certificate and key, with the cluster's server and CA.
    Cert { cert: &'a Path, key: &'a Path },
}

struct Attacker {
    dir: PathBuf,
    server: String,
    ca: PathBuf,
    admin: PathBuf,
    report: Vec<String>,
}

impl Attacker {
    fn kubectl(&self, who: &As<'_>, args: &[&str]) -> Output {
        let mut cmd = Command::new("kubectl");
        match who {
            As::Kubeconfig(k) => {
                cmd.arg("--kubeconfig").arg(k);
            }
            As::Cert { cert, key } => {
                cmd.arg("--kubeconfig")
                    .arg("/dev/null")
                    .arg("--server")
                    .arg(&self.server)
                    .arg("--certificate-authority")
                    .arg(&self.ca)
                    .arg("--client-certificate")
                    .arg(cert)
                    .arg("--client-key")
                    .arg(key);
            }
        }
        cmd.args(args).output().expect("kubectl runs")
    }

    /// `args` must be refused with Forbidden; records which step refused.
    fn refused(&mut self, step: &str, who: &As<'_>, args: &[&str]) {
        let out = self.kubectl(who, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "ATTACK SUCCEEDED at {step}: kubectl {args:?} answered:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.contains("Forbidden") || stderr.contains("forbidden"),
            "{step}: refused, but not by authorization: {stderr}"
        );
        self.report.push(format!(
            "refused: {step}: {}",
            stderr.lines().next().unwrap_or_default()
        ));
    }

    /// A key and a certificate request for `cn` in `system:nodes`, submitted as a kubelet
    /// would with `who`; returns the CSR object's name and the key's path.
    fn request(&self, who: &As<'_>, name: &str, cn: &str) -> PathBuf {
        let key = self.dir.join(format!("{name}.key"));
        let csr = self.dir.join(format!("{name}.csr"));
        let out = Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .args(["-subj", &format!("/O=system:nodes/CN={cn}")])
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = std::fs::read(&csr).unwrap();
        let object = json!({
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": { "name": name },
            "spec": {
                "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                "usages": ["digital signature", "client auth"],
                "request": base64::engine::general_purpose::STANDARD.encode(pem),
            }
        });
        let file = self.dir.join(format!("{name}.json"));
        std::fs::write(&file, object.to_string()).unwrap();
        let out = self.kubectl(who, &["create", "-f", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "a bootstrapper may request a certificate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        key
    }

    /// The request's decision once one is made: (`Approved`/`Denied`, message, certificate).
    fn decision(&self, name: &str, within: Duration) -> (String, String, Option<Vec<u8>>) {
        let start = Instant::now();
        loop {
            let csr: Value = serde_json::from_str(&kubectl(&self.admin, &["get", "csr", name, "-o", "json"])).unwrap();
            let conditions = csr["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let decided = conditions
                .iter()
                .find(|c| c["type"] == "Denied" || c["type"] == "Approved");
            let cert = csr["status"]["certificate"]
                .as_str()
                .map(|c| base64::engine::general_purpose::STANDARD.decode(c).unwrap());
            match decided {
                Some(c) if c["type"] == "Denied" || cert.is_some() => {
                    let kind = c["type"].as_str().unwrap_or_default().to_owned();
                    let message = format!("{} ({})", c["message"].as_str().unwrap_or_default(), c["reason"]);
                    return (kind, message, cert);
                }
                _ if start.elapsed() > within => {
                    return (
                        "undecided".into(),
                        format!("no decision within {within:?}: {csr}"),
                        None,
                    );
                }
                _ => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }
}

/// Everything a worker's disk could open, tried. Panics naming the step that succeeded.
pub fn a_workers_disk_opens_nothing(lane: &Lane, worker: &str, controller: &str, assets: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let admin = assets.join("auth/admin.kubeconfig");
    let server = kubectl(
        &admin,
        &[
            "config",
            "view",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ],
    );
    let mut at = Attacker {
        dir: dir.to_owned(),
        server,
        ca: assets.join("tls/ca.crt"),
        admin: admin.clone(),
        report: Vec::new(),
    };
    let read = |path: &str| {
        let out = lane.tb.host_exec(worker, &["cat", path]);
        assert!(
            out.status.success(),
            "{path} on {worker}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    // What the disk holds: the bootstrap kubeconfig (the workers' token) and the kubelet's own
    // client certificate.
    let token_kubeconfig = dir.join("worker-bootstrap.kubeconfig");
    std::fs::write(&token_kubeconfig, read("/etc/kubernetes/kubeconfig")).unwrap();
    let own = dir.join("worker-kubelet.pem");
    std::fs::write(&own, read("/var/lib/kubelet/pki/kubelet-client-current.pem")).unwrap();
    let token = As::Kubeconfig(&token_kubeconfig);
    let worker_identity = As::Cert { cert: &own, key: &own };

    // 1. The token reads no Secret.
    for secret in CROWN_JEWELS {
        at.refused(
            &format!("the workers' token reads Secret kube-system/{secret}"),
            &token,
            &["-n", "kube-system", "get", "secret", secret],
        );
    }
    // 2. The worker's own identity reads no control-plane Secret (the Node authorizer: no
    //    control-plane pod is bound to it).
    for secret in CROWN_JEWELS {
        at.refused(
            &format!("the worker's node identity system:node:{worker} reads Secret kube-system/{secret}"),
            &worker_identity,
            &["-n", "kube-system", "get", "secret", secret],
        );
    }
    // 3. The token asks for a controller's identity: denied by the approver.
    at.request(
        &token,
        "attack-controller-identity",
        &format!("system:node:{controller}"),
    );
    let (kind, message, cert) = at.decision("attack-controller-identity", Duration::from_secs(60));
    assert!(
        kind == "Denied" && cert.is_none(),
        "ATTACK SUCCEEDED: a certificate for system:node:{controller} was {kind}: {message}"
    );
    at.report.push(format!(
        "refused: a certificate for system:node:{controller} from the workers' token: Denied: {message}"
    ));

    // 4. A new node name is granted (any worker may join), but that identity draws no
    //    control-plane pod onto itself: the control-plane label is refused to it, and the label
    //    a kubelet may set schedules nothing.
    let key = at.request(&token, "attack-intruder", "system:node:intruder");
    let (kind, message, cert) = at.decision("attack-intruder", Duration::from_secs(60));
    let cert =
        cert.unwrap_or_else(|| panic!("a worker's new name is granted, as a joining worker's is: {kind}: {message}"));
    let cert_path = dir.join("intruder.crt");
    std::fs::write(&cert_path, cert).unwrap();
    let intruder = As::Cert {
        cert: &cert_path,
        key: &key,
    };
    // Registered Ready with room for pods, as a kubelet registers its node: the DaemonSet
    // controller and the scheduler act on it.
    let node = |labels: Value| {
        let file = dir.join("intruder-node.json");
        let obj = json!({
            "apiVersion": "v1", "kind": "Node", "metadata": { "name": "intruder", "labels": labels },
            "status": {
                "capacity": { "cpu": "4", "memory": "8Gi", "pods": "110" },
                "allocatable": { "cpu": "4", "memory": "8Gi", "pods": "110" },
                "conditions": [{ "type": "Ready", "status": "True", "reason": "KubeletReady", "message": "intruder" }]
            }
        });
        std::fs::write(&file, obj.to_string()).unwrap();
        file
    };
    let with_role =
        node(json!({ "node-role.kubernetes.io/control-plane": "", "node.kubernetes.io/controller": "true" }));
    at.refused(
        "system:node:intruder registers with the control-plane label",
        &intruder,
        &["create", "-f", with_role.to_str().unwrap()],
    );
    let self_labelled = node(json!({ "node.kubernetes.io/controller": "true" }));
    let out = at.kubectl(&intruder, &["create", "-f", self_labelled.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "a node may register itself with the label kubelets set: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // kube-proxy, which tolerates every taint, is bound there; the apiserver's DaemonSet would
    // have been too, by the selector a kubelet may set.
    let bound_to_intruder = || {
        kubectl(
            &admin,
            &[
                "get",
                "pods",
                "-A",
                "--field-selector",
                "spec.nodeName=intruder",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name} {end}",
            ],
        )
    };
    super::lane::eventually(Duration::from_secs(60), "a DaemonSet pod bound to the intruder", || {
        let bound = bound_to_intruder();
        if bound.contains("kube-proxy") {
            Ok(())
        } else {
            Err(bound)
        }
    });
    let bound = bound_to_intruder();
    // No control-plane pod is bound there, nor even meant for it (a DaemonSet's pod names its
    // node in its affinity before the scheduler binds it).
    let pods: Value =
        serde_json::from_str(&kubectl(&admin, &["-n", "kube-system", "get", "pods", "-o", "json"])).unwrap();
    for pod in pods["items"].as_array().into_iter().flatten() {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        if ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]
            .iter()
            .any(|c| name.starts_with(c))
        {
            assert!(
                !pod["spec"].to_string().contains("\"intruder\""),
                "ATTACK SUCCEEDED: {name} is meant for the intruder: {}",
                pod["spec"]
            );
        }
    }
    at.report.push(format!(
        "refused: control-plane pods on a self-labelled node (bound there: [{}])",
        bound.trim()
    ));
    for secret in CROWN_JEWELS {
        at.refused(
            &format!("system:node:intruder reads Secret kube-system/{secret}"),
            &intruder,
            &["-n", "kube-system", "get", "secret", secret],
        );
    }
    kubectl(&admin, &["delete", "node", "intruder", "--wait=false"]);
    kubectl(
        &admin,
        &["delete", "csr", "attack-controller-identity", "attack-intruder"],
    );
    eprintln!("a worker's disk, played as an attacker:\n  {}", at.report.join("\n  "));
}
