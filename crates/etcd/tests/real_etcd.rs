//! A real etcd on loopback, with the TLS the assets render: a snapshot streamed through
//! connections the test opens (as the provider opens SSH channels) is a file that etcd's own
//! tools accept, and a member restored from it holds the keys written before it and not the
//! ones written after.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use selfhosted_etcd::{Client, Credentials};
use selfhosted_pki::{issue, parse, RawParams};
use selfhosted_test_support::etcdctl;

struct Etcd {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts etcd on loopback with the rendered server certificate; waits until it answers.
fn start(tls: &Path, data: &Path, name: &str, extra: &[&str]) -> Etcd {
    let (client, peer) = (free_port(), free_port());
    let endpoint = format!("https://127.0.0.1:{client}");
    let log = data.with_extension("log");
    let child = Command::new("etcd")
        .args(["--name", name, "--data-dir"])
        .arg(data)
        .args(["--listen-client-urls", &endpoint, "--advertise-client-urls", &endpoint])
        .args(["--listen-peer-urls", &format!("https://127.0.0.1:{peer}")])
        .args(["--initial-advertise-peer-urls", &format!("https://127.0.0.1:{peer}")])
        .args(["--initial-cluster", &format!("{name}=https://127.0.0.1:{peer}")])
        .arg("--cert-file")
        .arg(tls.join("etcd/server.crt"))
        .arg("--key-file")
        .arg(tls.join("etcd/server.key"))
        .arg("--trusted-ca-file")
        .arg(tls.join("etcd-ca.crt"))
        .arg("--client-cert-auth")
        .arg("--peer-cert-file")
        .arg(tls.join("etcd/peer.crt"))
        .arg("--peer-key-file")
        .arg(tls.join("etcd/peer.key"))
        .arg("--peer-trusted-ca-file")
        .arg(tls.join("etcd-ca.crt"))
        .arg("--peer-client-cert-auth")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("etcd log"))
        .spawn()
        .expect("etcd");
    let etcd = Etcd { child, endpoint, log };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, text) = etcdctl(&etcd.endpoint, tls, &["endpoint", "health"]);
        if ok {
            return etcd;
        }
        assert!(
            Instant::now() < deadline,
            "etcd did not become healthy: {text}\n{}",
            std::fs::read_to_string(&etcd.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn put(endpoint: &str, tls: &Path, key: &str) {
    let (ok, text) = etcdctl(endpoint, tls, &["put", key, "v"]);
    assert!(ok, "put {key}: {text}");
}

fn has(endpoint: &str, tls: &Path, key: &str) -> bool {
    let (ok, text) = etcdctl(endpoint, tls, &["get", key, "--print-value-only"]);
    assert!(ok, "get {key}: {text}");
    text.trim() == "v"
}

#[test]
fn a_snapshot_through_an_opened_connection_restores_what_was_written_before_it() {
    for tool in ["etcd", "etcdctl"] {
        if Command::new(tool).arg("--version").output().is_err() {
            selfhosted_test_support::skip_or_fail(
                "a_snapshot_through_an_opened_connection_restores_what_was_written_before_it",
                &format!("{tool} is not installed (apt-get install etcd-server etcd-client)"),
            );
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let params = parse(&RawParams {
        cluster_name: Some("snap".into()),
        api_servers: Some(vec!["127.0.0.1".into()]),
        etcd_servers: Some(vec!["127.0.0.1".into()]),
        ..RawParams::defaults()
    })
    .expect("pki params");
    let assets = issue(&params, None, time::OffsetDateTime::now_utc()).expect("rendered pki");
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(tls.join("etcd")).unwrap();
    for name in [
        "etcd-ca.crt",
        "etcd-client.crt",
        "etcd-client.key",
        "etcd/server.crt",
        "etcd/server.key",
        "etcd/peer.crt",
        "etcd/peer.key",
    ] {
        std::fs::write(tls.join(name), &assets[&format!("tls/{name}")]).unwrap();
    }
    let member = start(&tls, &dir.path().join("member"), "etcd0", &[]);
    put(&member.endpoint, &tls, "/registry/configmaps/default/before");

    let creds = Credentials {
        ca_pem: assets["tls/etcd-ca.crt"].clone(),
        cert_pem: assets["tls/etcd-client.crt"].clone(),
        key_pem: assets["tls/etcd-client.key"].clone(),
    };
    let addr = member.endpoint.trim_start_matches("https://").to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let snapshot = rt
        .block_on(async {
            // Each connection one the test opens, as the provider opens an SSH channel.
            let open = move || {
                let addr = addr.clone();
                async move { tokio::net::TcpStream::connect(addr).await }
            };
            let client = Client::connect("loopback test member", open, &creds, "localhost").await?;
            client.snapshot().await
        })
        .expect("snapshot");
    put(&member.endpoint, &tls, "/registry/configmaps/default/after");
    assert!(snapshot.revision >= 2, "{snapshot:?}");
    assert!(!snapshot.etcd_version.is_empty(), "{snapshot:?}");

    // etcd's own tool reads it: hash, revision and keys of the database.
    let file = dir.path().join("snapshot.db");
    std::fs::write(&file, &snapshot.data).unwrap();
    let status = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", "--write-out", "json"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("snapshot status json");
    assert!(status["revision"].as_i64() >= Some(snapshot.revision), "{status}");
    assert!(status["totalKey"].as_i64() >= Some(1), "{status}");

    // Restored (etcd checks the appended sha256 as it restores), a member holds what was
    // written before the snapshot and not what came after.
    drop(member);
    let restored_dir = dir.path().join("restored");
    let peer = free_port();
    let restore = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "restore"])
        .arg(&file)
        .args(["--name", "etcd0", "--data-dir"])
        .arg(&restored_dir)
        .args(["--initial-cluster", &format!("etcd0=https://127.0.0.1:{peer}")])
        .args(["--initial-advertise-peer-urls", &format!("https://127.0.0.1:{peer}")])
        .output()
        .unwrap();
    assert!(restore.status.success(), "{}", String::from_utf8_lossy(&restore.stderr));
    let restored = start(&tls, &restored_dir, "etcd0", &[]);
    assert!(has(&restored.endpoint, &tls, "/registry/configmaps/default/before"));
    assert!(!has(&restored.endpoint, &tls, "/registry/configmaps/default/after"));

    // A cut file is refused by the check the provider runs before keeping one.
    let cut = &snapshot.data[..snapshot.data.len() - 1];
    assert!(selfhosted_etcd::snapshot::check(cut).is_err());
}
