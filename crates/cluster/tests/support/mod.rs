//! A real control-plane API for tests: Debian's etcd and the kube-apiserver built for the test
//! lane (v1.34.3 from the Go module proxy, or `SELFHOSTED_LANE_VERSION`), on 127.0.0.1 with free ports, certificates made here with rcgen. Every
//! process is killed when its guard drops (also when a test fails).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use selfhosted_cluster::{connect, ApiCredentials, Client, Waiter};

/// The release the real-API tests run: `SELFHOSTED_LANE_VERSION`, else the default version.
pub fn lane_version() -> String {
    std::env::var("SELFHOSTED_LANE_VERSION").unwrap_or_else(|_| selfhosted_manifests::DEFAULT_VERSION.to_string())
}

/// Whether the components still have the insecure ports that must be switched off (gone in 1.24).
fn insecure_ports() -> bool {
    selfhosted_manifests::versions::release_minor(&lane_version()).is_some_and(|m| m < 24)
}

/// Where the lane's server binaries are (override with `SELFHOSTED_LANE_BIN`).
pub fn bin_dir() -> PathBuf {
    std::env::var_os("SELFHOSTED_LANE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/var/cache/selfhosted-lane/{}/bin", lane_version())))
}

/// The kube-apiserver binary, or `None` (with a loud message) when the lane is not built.
pub fn apiserver_binary() -> Option<PathBuf> {
    let p = bin_dir().join("kube-apiserver");
    if p.is_file() && Path::new("/usr/bin/etcd").is_file() {
        Some(p)
    } else {
        let why = format!(
            "a real-API test needs {} and /usr/bin/etcd (build the lane first: tests/lane/build-go.sh {})",
            p.display(),
            lane_version()
        );
        selfhosted_test_support::skip_or_fail("a real-API test", &why);
        None
    }
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed on drop; its output goes to a log file shown on failure.
pub struct Proc {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command, dir: &Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc { name, child, log }
    }

    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let keep = std::env::temp_dir().join("selfhosted-cluster-test-logs");
            let _ = std::fs::create_dir_all(&keep);
            let kept = keep.join(format!("{}-{}.log", std::process::id(), self.name));
            let _ = std::fs::copy(&self.log, &kept);
            eprintln!(
                "--- last lines of {} (whole log kept in {}) ---\n{}",
                self.name,
                kept.display(),
                self.log_tail(30)
            );
        }
    }
}

/// PEM of a certificate and its key.
pub struct Pair {
    pub cert: String,
    pub key: String,
}

/// The test PKI: a CA, a serving certificate for the apiserver (DNS names only, no IP: clients
/// on 127.0.0.1 must override the TLS name), an admin client, a service-account key.
pub struct Pki {
    pub ca: Pair,
    pub apiserver: Pair,
    pub other_apiserver: Pair,
    pub admin: Pair,
    pub sa_key: String,
    pub sa_pub: String,
}

impl Pki {
    pub fn new() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.distinguished_name.push(DnType::CommonName, "test-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = Pair {
            cert: ca_cert.pem(),
            key: ca_key.serialize_pem(),
        };
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>, cn: &str, org: Option<&str>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(names).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            if let Some(o) = org {
                p.distinguished_name.push(DnType::OrganizationName, o);
            }
            p.extended_key_usages = vec![usage];
            let cert = p.signed_by(&key, &issuer).unwrap();
            Pair {
                cert: cert.pem(),
                key: key.serialize_pem(),
            }
        };
        let names = vec!["kubernetes".to_owned(), "kubernetes.default.svc".to_owned()];
        let apiserver = leaf(
            names.clone(),
            "kube-apiserver",
            None,
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let other_apiserver = leaf(names, "kube-apiserver", None, ExtendedKeyUsagePurpose::ServerAuth);
        let admin = leaf(
            vec![],
            "admin",
            Some("system:masters"),
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let sa = KeyPair::generate().unwrap();
        Pki {
            ca,
            apiserver,
            other_apiserver,
            admin,
            sa_key: sa.serialize_pem(),
            sa_pub: sa.public_key_pem(),
        }
    }

    pub fn admin_credentials(&self) -> ApiCredentials {
        ApiCredentials {
            ca_pem: self.ca.cert.clone(),
            client_cert_pem: self.admin.cert.clone(),
            client_key_pem: self.admin.key.clone(),
        }
    }
}

/// etcd + kube-apiserver on 127.0.0.1, torn down on drop.
pub struct ApiServer {
    pub port: u16,
    pub etcd_port: u16,
    pub pki: Pki,
    // Field order is drop order: the apiserver stops before etcd, the folder goes last.
    pub apiserver: Proc,
    pub etcd: Proc,
    pub dir: tempfile::TempDir,
}

impl ApiServer {
    /// Start etcd and the apiserver and wait (at most 90 s) for `/readyz`.
    pub async fn start(binary: &Path) -> ApiServer {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let pki = Pki::new();
        let write = |name: &str, text: &str| {
            let p = d.join(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        };
        write("ca.crt", &pki.ca.cert);
        let crt = write("apiserver.crt", &pki.apiserver.cert);
        let key = write("apiserver.key", &pki.apiserver.key);
        write("other-apiserver.crt", &pki.other_apiserver.cert);
        write("other-apiserver.key", &pki.other_apiserver.key);
        write("sa.key", &pki.sa_key);
        write("sa.pub", &pki.sa_pub);

        let (client_port, peer_port, port) = (free_port(), free_port(), free_port());
        let etcd = Proc::spawn(
            "etcd",
            Command::new("/usr/bin/etcd")
                .arg("--name=test")
                .arg(format!("--data-dir={}", d.join("etcd").display()))
                .arg(format!("--listen-client-urls=http://127.0.0.1:{client_port}"))
                .arg(format!("--advertise-client-urls=http://127.0.0.1:{client_port}"))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
                .arg(format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"))
                .arg(format!("--initial-cluster=test=http://127.0.0.1:{peer_port}"))
                .arg("--log-level=warn"),
            d,
        );
        let apiserver = spawn_apiserver("kube-apiserver", binary, d, client_port, port, &crt, &key);
        let server = ApiServer {
            port,
            etcd_port: client_port,
            pki,
            dir,
            apiserver,
            etcd,
        };
        let waiter = Waiter::new(server.client());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        if let Err(e) = waiter.until(deadline, "test apiserver /readyz", waiter.readyz()).await {
            panic!("apiserver never became ready: {e}\n{}", server.apiserver.log_tail(40));
        }
        server
    }

    /// A second apiserver on the same etcd and the same (shared) port, with its own serving
    /// certificate — as the self-hosted apiserver starts beside the bootstrap one.
    pub fn start_second_apiserver(&self, binary: &Path) -> Proc {
        let d = self.dir.path();
        let crt = d.join("other-apiserver.crt").display().to_string();
        let key = d.join("other-apiserver.key").display().to_string();
        spawn_apiserver(
            "second-kube-apiserver",
            binary,
            d,
            self.etcd_port,
            self.port,
            &crt,
            &key,
        )
    }

    /// Stop the first apiserver (the "bootstrap" one).
    pub fn stop_first(&mut self) {
        let _ = self.apiserver.child.kill();
        let _ = self.apiserver.child.wait();
    }

    /// The server URL.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// An admin client (TLS name overridden to `kubernetes`, as over a tunnel).
    pub fn client(&self) -> Client {
        connect(&self.url(), &self.pki.admin_credentials(), Some("kubernetes")).unwrap()
    }

    /// A kubeconfig file for the admin, for other real components (scheduler, kubectl).
    pub fn kubeconfig(&self) -> PathBuf {
        use std::fmt::Write;
        let b64 = |s: &str| {
            let out = Command::new("base64")
                .arg("-w0")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write as _;
            out.stdin.as_ref().unwrap().write_all(s.as_bytes()).unwrap();
            String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap()
        };
        let mut k = String::new();
        writeln!(k, "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:").unwrap();
        writeln!(k, "    server: {}\n    tls-server-name: kubernetes", self.url()).unwrap();
        writeln!(k, "    certificate-authority-data: {}", b64(&self.pki.ca.cert)).unwrap();
        writeln!(k, "users:\n- name: admin\n  user:").unwrap();
        writeln!(k, "    client-certificate-data: {}", b64(&self.pki.admin.cert)).unwrap();
        writeln!(k, "    client-key-data: {}", b64(&self.pki.admin.key)).unwrap();
        writeln!(
            k,
            "contexts:\n- name: t\n  context: {{cluster: t, user: admin}}\ncurrent-context: t"
        )
        .unwrap();
        let p = self.dir.path().join("admin.kubeconfig");
        std::fs::write(&p, k).unwrap();
        p
    }

    /// Start the real kube-controller-manager (DaemonSet, Deployment and ReplicaSet controllers,
    /// leader election on a Lease) against this apiserver (killed on drop).
    pub fn start_controller_manager(&self) -> Proc {
        let kc = self.kubeconfig();
        Proc::spawn(
            "kube-controller-manager",
            Command::new(bin_dir().join("kube-controller-manager"))
                .arg(format!("--kubeconfig={}", kc.display()))
                .arg(format!("--authentication-kubeconfig={}", kc.display()))
                .arg(format!("--authorization-kubeconfig={}", kc.display()))
                .arg("--controllers=daemonset,deployment,replicaset")
                .arg("--leader-elect=true")
                .arg("--leader-elect-resource-lock=leases")
                .args(insecure_ports().then_some("--port=0"))
                .arg("--secure-port=0")
                .arg("--v=2"),
            self.dir.path(),
        )
    }

    /// Start the real kube-scheduler against this apiserver (killed on drop).
    pub fn start_scheduler(&self) -> Proc {
        let kc = self.kubeconfig();
        Proc::spawn(
            "kube-scheduler",
            Command::new(bin_dir().join("kube-scheduler"))
                .arg(format!("--kubeconfig={}", kc.display()))
                .arg(format!("--authentication-kubeconfig={}", kc.display()))
                .arg(format!("--authorization-kubeconfig={}", kc.display()))
                .arg("--leader-elect=false")
                .args(insecure_ports().then_some("--port=0"))
                .arg("--secure-port=0")
                .arg("--v=1"),
            self.dir.path(),
        )
    }
}

fn spawn_apiserver(
    name: &'static str,
    binary: &Path,
    d: &Path,
    etcd_port: u16,
    port: u16,
    crt: &str,
    key: &str,
) -> Proc {
    let f = |n: &str| d.join(n).display().to_string();
    Proc::spawn(
        name,
        Command::new(binary)
            .arg(format!("--etcd-servers=http://127.0.0.1:{etcd_port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg(format!("--secure-port={port}"))
            .args(insecure_ports().then_some("--insecure-port=0"))
            .arg(format!("--cert-dir={}", f(&format!("certs-{name}"))))
            .arg(format!("--client-ca-file={}", f("ca.crt")))
            .arg(format!("--tls-cert-file={crt}"))
            .arg(format!("--tls-private-key-file={key}"))
            .arg(format!("--service-account-key-file={}", f("sa.pub")))
            .arg(format!("--service-account-signing-key-file={}", f("sa.key")))
            .arg("--service-account-issuer=https://kubernetes.default.svc")
            .arg("--service-cluster-ip-range=10.3.0.0/16")
            .arg("--authorization-mode=Node,RBAC")
            .arg("--endpoint-reconciler-type=none")
            .arg("--disable-admission-plugins=ServiceAccount")
            .arg("--permit-port-sharing=true")
            .arg("--allow-privileged=true")
            .arg("--v=1"),
        d,
    )
}
