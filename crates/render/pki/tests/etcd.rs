//! The etcd certificates proven by a real three-member etcd (Debian
//! etcd-server 3.4) on 127.0.0.11-13 (clients on 2379, peers on 2380; the RSA
//! run on 2479/2480) with mutual TLS for clients and peers:
//! `etcdctl endpoint health` with the rendered client cert → all healthy; a
//! client cert from the kube CA → refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use selfhosted_pki::{issue, Assets, KeyAlgorithm};

const MEMBERS: [&str; 3] = ["127.0.0.11", "127.0.0.12", "127.0.0.13"];

/// Kills and reaps the etcd processes (also when the test fails); the temp dir goes with it.
struct Cluster {
    children: Vec<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Cluster {
    /// Starts the three members, clients on `port`, peers on `port + 1`.
    fn start(assets: &Assets, port: u16) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        write_assets(dir.path(), assets);
        let tls = dir.path().join("tls");
        let f = |rel: &str| tls.join(rel).to_str().unwrap().to_owned();
        let initial: Vec<String> = MEMBERS
            .iter()
            .enumerate()
            .map(|(i, ip)| format!("m{i}=https://{ip}:{}", port + 1))
            .collect();
        let mut cluster = Cluster {
            children: vec![],
            dir,
            port,
        };
        for (i, ip) in MEMBERS.iter().enumerate() {
            let data = cluster.dir.path().join(format!("data{i}"));
            let log = std::fs::File::create(cluster.dir.path().join(format!("etcd{i}.log"))).unwrap();
            let child = Command::new("/usr/bin/etcd")
                .args(["--name", &format!("m{i}")])
                .args(["--data-dir", data.to_str().unwrap()])
                .args(["--listen-client-urls", &format!("https://{ip}:{port}")])
                .args(["--advertise-client-urls", &format!("https://{ip}:{port}")])
                .args(["--listen-peer-urls", &format!("https://{ip}:{}", port + 1)])
                .args(["--initial-advertise-peer-urls", &format!("https://{ip}:{}", port + 1)])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new", "--initial-cluster-token", "pki-test"])
                .args([
                    "--cert-file",
                    &f("etcd/server.crt"),
                    "--key-file",
                    &f("etcd/server.key"),
                ])
                .args(["--trusted-ca-file", &f("etcd-ca.crt"), "--client-cert-auth"])
                .args([
                    "--peer-cert-file",
                    &f("etcd/peer.crt"),
                    "--peer-key-file",
                    &f("etcd/peer.key"),
                ])
                .args(["--peer-trusted-ca-file", &f("etcd-ca.crt"), "--peer-client-cert-auth"])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start etcd");
            cluster.children.push(child);
        }
        cluster
    }

    fn tls(&self, rel: &str) -> PathBuf {
        self.dir.path().join("tls").join(rel)
    }

    fn logs(&self) -> String {
        (0..MEMBERS.len())
            .map(|i| {
                let text = std::fs::read_to_string(self.dir.path().join(format!("etcd{i}.log"))).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(8).collect();
                format!("--- etcd{i}\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn health(port: u16, ca: &Path, cert: &Path, key: &Path) -> (bool, String) {
    let endpoints: Vec<String> = MEMBERS.iter().map(|ip| format!("https://{ip}:{port}")).collect();
    let out = run(Command::new("/usr/bin/etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &endpoints.join(",")])
        .args(["--cacert", ca.to_str().unwrap()])
        .args(["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()])
        .args(["--dial-timeout", "2s", "--command-timeout", "3s"])
        .args(["endpoint", "health"]));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn three_member_etcd_runs_on_the_rendered_ecdsa_certs() {
    three_member_etcd(KeyAlgorithm::EcdsaP256, 2379);
}

#[test]
fn three_member_etcd_runs_on_the_rendered_rsa_certs() {
    three_member_etcd(KeyAlgorithm::Rsa2048, 2479);
}

fn three_member_etcd(alg: KeyAlgorithm, port: u16) {
    let mut p = default_params();
    p.key_algorithm = alg;
    let assets = issue(&p, None, time::OffsetDateTime::now_utc()).unwrap();
    let cluster = Cluster::start(&assets, port);
    let ca = cluster.tls("etcd-ca.crt");
    let deadline = Instant::now() + Duration::from_secs(40);
    let (mut ok, mut text) = (false, String::new());
    while Instant::now() < deadline {
        (ok, text) = health(
            cluster.port,
            &ca,
            &cluster.tls("etcd-client.crt"),
            &cluster.tls("etcd-client.key"),
        );
        if ok {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(ok, "not healthy: {text}\n{}", cluster.logs());
    for ip in MEMBERS {
        assert!(text.contains(&format!("https://{ip}:{port} is healthy")), "{text}");
    }

    // A client certificate of the kube CA is refused.
    let (ok, text) = health(cluster.port, &ca, &cluster.tls("admin.crt"), &cluster.tls("admin.key"));
    assert!(!ok, "admin cert accepted by etcd: {text}");
    assert!(!text.contains("is healthy"), "{text}");
    let logs = cluster.logs();
    assert!(
        logs.contains("bad certificate") || logs.contains("rejected connection"),
        "{logs}"
    );

    // The server certificate alone (serverAuth+clientAuth, etcd CA) is a valid client too,
    // which etcd's own gateway relies on.
    let (ok, text) = health(
        cluster.port,
        &ca,
        &cluster.tls("etcd/server.crt"),
        &cluster.tls("etcd/server.key"),
    );
    assert!(ok, "{text}");
}
