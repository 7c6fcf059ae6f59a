//! A real etcd on loopback, with the TLS the assets render: a snapshot streamed through
//! connections the test opens (as the provider opens SSH channels) is a file that etcd's own
//! tools accept, and a member restored from it holds the keys written before it and not the
//! ones written after.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use selfhosted_etcd::{rejoin, Client, Credentials, Id, Rejoin};
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
    let peer = format!("https://127.0.0.1:{}", free_port());
    let cluster = format!("{name}={peer}");
    start_member(tls, data, name, &peer, &cluster, extra)
}

/// Starts member `name` of the cluster `initial_cluster` (`name=peer-url,…`), its peer URL
/// `peer`, on a free client port; waits until it answers.
fn start_member(tls: &Path, data: &Path, name: &str, peer: &str, initial_cluster: &str, extra: &[&str]) -> Etcd {
    let etcd = spawn_member(tls, data, name, peer, initial_cluster, extra);
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

/// As [`start_member`], without waiting (a learner serves no reads until promoted).
fn spawn_member(tls: &Path, data: &Path, name: &str, peer: &str, initial_cluster: &str, extra: &[&str]) -> Etcd {
    let endpoint = format!("https://127.0.0.1:{}", free_port());
    let log = data.with_extension("log");
    let child = Command::new("etcd")
        .args(["--name", name, "--data-dir"])
        .arg(data)
        .args(["--listen-client-urls", &endpoint, "--advertise-client-urls", &endpoint])
        .args(["--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer])
        .args(["--initial-cluster", initial_cluster])
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
    Etcd { child, endpoint, log }
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

/// etcd and etcdctl present (else the test skips, or fails in CI), the rendered PKI written
/// under a new folder's `tls/`; returns the folder, `tls/` and the client credentials.
fn setup(test: &str) -> Option<(tempfile::TempDir, PathBuf, Credentials)> {
    for tool in ["etcd", "etcdctl"] {
        if Command::new(tool).arg("--version").output().is_err() {
            selfhosted_test_support::skip_or_fail(
                test,
                &format!("{tool} is not installed (apt-get install etcd-server etcd-client)"),
            );
            return None;
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
    let creds = Credentials {
        ca_pem: assets["tls/etcd-ca.crt"].clone(),
        cert_pem: assets["tls/etcd-client.crt"].clone(),
        key_pem: assets["tls/etcd-client.key"].clone(),
    };
    Some((dir, tls, creds))
}

/// A client of the member at `endpoint`, over TCP connections the test opens, as the provider
/// opens SSH channels.
async fn client(endpoint: &str, creds: &Credentials) -> Result<Client, selfhosted_etcd::EtcdError> {
    let addr = endpoint.trim_start_matches("https://").to_owned();
    let open = move || {
        let addr = addr.clone();
        async move { tokio::net::TcpStream::connect(addr).await }
    };
    Client::connect("loopback test member", open, creds, "localhost").await
}

#[test]
fn a_snapshot_through_an_opened_connection_restores_what_was_written_before_it() {
    let Some((dir, tls, creds)) = setup("a_snapshot_through_an_opened_connection_restores_what_was_written_before_it")
    else {
        return;
    };
    let member = start(&tls, &dir.path().join("member"), "etcd0", &[]);
    put(&member.endpoint, &tls, "/registry/configmaps/default/before");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let snapshot = rt
        .block_on(async { client(&member.endpoint, &creds).await?.snapshot().await })
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

#[test]
fn a_member_whose_data_is_gone_joins_again_after_remove_and_add() {
    let Some((dir, tls, creds)) = setup("a_member_whose_data_is_gone_joins_again_after_remove_and_add") else {
        return;
    };
    let peers: Vec<String> = (0..3).map(|_| format!("https://127.0.0.1:{}", free_port())).collect();
    let cluster = peers
        .iter()
        .enumerate()
        .map(|(i, p)| format!("etcd{i}={p}"))
        .collect::<Vec<_>>()
        .join(",");
    let data = |i: usize| dir.path().join(format!("member{i}"));
    // Three members starting together: each waits for the others' votes.
    let mut members: Vec<Etcd> = std::thread::scope(|s| {
        let jobs: Vec<_> = (0..3)
            .map(|i| {
                let (tls, peers, cluster, data) = (&tls, &peers, &cluster, data(i));
                s.spawn(move || start_member(tls, &data, &format!("etcd{i}"), &peers[i], cluster, &[]))
            })
            .collect();
        jobs.into_iter().map(|j| j.join().expect("member started")).collect()
    });
    put(&members[0].endpoint, &tls, "/registry/configmaps/default/before");

    // The third member's disk is lost.
    drop(members.pop());
    std::fs::remove_dir_all(data(2)).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (first, second) = (members[0].endpoint.clone(), members[1].endpoint.clone());
    let logs = || {
        members
            .iter()
            .map(|m| std::fs::read_to_string(&m.log).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let initial_cluster = rt.block_on(async {
        let c = client(&first, &creds).await.expect("client");
        let answering: Vec<Id> = {
            let mut ids = Vec::new();
            for e in [&first, &second] {
                ids.push(client(e, &creds).await.unwrap().status().await.unwrap().member_id);
            }
            ids
        };
        let list = c.members().await.expect("member list");
        assert_eq!(list.len(), 3, "{list:?}");
        let plan = Rejoin::plan(&list, "etcd2", &peers[2]);
        assert_eq!(plan.remove.len(), 1, "{plan:?}");
        assert!(plan.add);
        // With only one other member answering, the change is refused before it is made.
        let refused = plan.check(&list, &answering[..1]).unwrap_err();
        assert!(refused.contains("lose quorum"), "{refused}");
        plan.check(&list, &answering).expect("two of three answer");
        let done = match rejoin(&c, "etcd2", &peers[2], &answering).await {
            Ok(done) => done,
            Err(e) => panic!("remove and add: {e}\n{}", logs()),
        };
        assert_eq!(done.changes.len(), 2, "{done:?}");
        let list = c.members().await.unwrap();
        assert!(
            list.iter()
                .any(|m| !m.started() && m.is_learner && m.peer_urls == [peers[2].clone()]),
            "{list:?}"
        );
        // A rerun before the new member starts changes nothing.
        assert!(Rejoin::plan(&list, "etcd2", &peers[2]).is_empty(), "{list:?}");
        let again = rejoin(&c, "etcd2", &peers[2], &answering).await.unwrap();
        assert!(again.changes.is_empty(), "{again:?}");
        assert_eq!(again.initial_cluster, done.initial_cluster);
        again.initial_cluster
    });

    // The empty member joins the running cluster and gets its data.
    let mut names: Vec<&str> = initial_cluster
        .split(',')
        .map(|m| m.split('=').next().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["etcd0", "etcd1", "etcd2"], "{initial_cluster}");
    // It joins as a learner, and is promoted once in sync.
    let rejoined = spawn_member(
        &tls,
        &data(2),
        "etcd2",
        &peers[2],
        &initial_cluster,
        &["--initial-cluster-state", "existing"],
    );
    rt.block_on(async {
        let c = client(&first, &creds).await.unwrap();
        let until = tokio::time::Instant::now() + Duration::from_secs(60);
        let promoted = selfhosted_etcd::promote(&c, Some(&peers[2]), until)
            .await
            .expect("promoted");
        assert_eq!(promoted.len(), 1, "{promoted:?}");
        let list = c.members().await.unwrap();
        assert!(list.iter().all(|m| m.started() && !m.is_learner), "{list:?}");
        assert!(Rejoin::plan(&list, "etcd2", &peers[2]).remove.len() == 1);
    });
    assert!(has(&rejoined.endpoint, &tls, "/registry/configmaps/default/before"));
    let (ok, text) = etcdctl(&members[0].endpoint, &tls, &["member", "list"]);
    assert!(ok, "{text}");
    assert_eq!(text.lines().filter(|l| l.contains(", started, ")).count(), 3, "{text}");
    assert!(!text.contains("true"), "no learner left: {text}");
}
