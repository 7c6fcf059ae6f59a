//! etcd lane: the etcd certificates rendered by `selfhosted-pki` delivered over SSH to three
//! test-bed hosts at typhoon's paths, etcd started on each over SSH (a test-bed step standing
//! in for the hosts' own OS config), and a healthy three-member cluster proven with `etcdctl`
//! over mutual TLS from outside the hosts.

use std::process::Command;
use std::time::{Duration, Instant};

use selfhosted_pki::{issue, parse, RawParams};
use selfhosted_test_support::etcdctl;
use selfhosted_transport::testbed::{Testbed, TestbedParams};
use selfhosted_transport::{CancellationToken, FileSpec, Fleet};

/// (host path, asset name) — the controller's etcd TLS, as typhoon lays it out.
const LAYOUT: [(&str, &str); 9] = [
    ("/etc/ssl/etcd/etcd-client-ca.crt", "tls/etcd-ca.crt"),
    ("/etc/ssl/etcd/etcd-client.crt", "tls/etcd-client.crt"),
    ("/etc/ssl/etcd/etcd-client.key", "tls/etcd-client.key"),
    ("/etc/ssl/etcd/etcd/server-ca.crt", "tls/etcd-ca.crt"),
    ("/etc/ssl/etcd/etcd/peer-ca.crt", "tls/etcd-ca.crt"),
    ("/etc/ssl/etcd/etcd/peer.crt", "tls/etcd/peer.crt"),
    ("/etc/ssl/etcd/etcd/peer.key", "tls/etcd/peer.key"),
    ("/etc/ssl/etcd/etcd/server.key", "tls/etcd/server.key"),
    // last: on typhoon hosts, etcd starts when server.crt appears
    ("/etc/ssl/etcd/etcd/server.crt", "tls/etcd/server.crt"),
];

#[tokio::test]
async fn rendered_etcd_certs_make_a_healthy_three_member_cluster() {
    let Some(tb) = Testbed::up(
        "etcd_lane",
        &TestbedParams {
            count: 3,
            ..Default::default()
        },
    )
    .unwrap() else {
        return;
    };
    let addrs: Vec<String> = tb.hosts().iter().map(|h| h.address.clone()).collect();
    let params = parse(&RawParams {
        cluster_name: Some("lane".into()),
        api_servers: Some(vec![addrs[0].clone()]),
        etcd_servers: Some(addrs.clone()),
        ..RawParams::defaults()
    })
    .expect("pki params");
    let assets = issue(&params, None, time::OffsetDateTime::now_utc()).expect("rendered pki");
    let files: Vec<FileSpec> = LAYOUT
        .iter()
        .map(|(path, name)| FileSpec::secret(*path, assets[*name].clone()))
        .collect();

    let cancel = CancellationToken::new();
    let (fleet, _) = Fleet::connect_all(&tb.specs().unwrap(), 3, &cancel).await.unwrap();
    let delivered = fleet
        .for_each(&cancel, |s| {
            let files = files.clone();
            async move { s.upload(&files).await }
        })
        .await
        .unwrap();
    for (host, r) in &delivered {
        let r = r.as_ref().unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(r.changed.len(), LAYOUT.len(), "{host}");
        let out = tb.host_exec(host, &["stat", "-c", "%U:%G:%a", "/etc/ssl/etcd/etcd/server.key"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "root:root:600", "{host}");
    }

    // the test-bed step standing in for the hosts' etcd unit
    let initial: Vec<String> = tb
        .hosts()
        .iter()
        .map(|h| format!("{}=https://{}:2380", h.name, h.address))
        .collect();
    let started = fleet
        .for_each(&cancel, |s| {
            let host = tb.hosts().iter().find(|h| h.name == s.host()).cloned().unwrap();
            let initial = initial.join(",");
            async move {
                let a = &host.address;
                let cmd = format!(
                    "mkdir -p /var/lib/etcd && chmod 700 /var/lib/etcd && \
                     setsid /usr/bin/etcd --name {n} --data-dir /var/lib/etcd \
                     --listen-client-urls https://{a}:2379 --advertise-client-urls https://{a}:2379 \
                     --listen-peer-urls https://{a}:2380 --initial-advertise-peer-urls https://{a}:2380 \
                     --initial-cluster {initial} --initial-cluster-state new --initial-cluster-token lane \
                     --cert-file /etc/ssl/etcd/etcd/server.crt --key-file /etc/ssl/etcd/etcd/server.key \
                     --trusted-ca-file /etc/ssl/etcd/etcd/server-ca.crt --client-cert-auth \
                     --peer-cert-file /etc/ssl/etcd/etcd/peer.crt --peer-key-file /etc/ssl/etcd/etcd/peer.key \
                     --peer-trusted-ca-file /etc/ssl/etcd/etcd/peer-ca.crt --peer-client-cert-auth \
                     </dev/null >/var/log/etcd.log 2>&1 &",
                    n = host.name
                );
                s.sudo(&cmd).await
            }
        })
        .await
        .unwrap();
    for (host, r) in started {
        r.unwrap_or_else(|e| panic!("{host}: {e}"));
    }

    // mutual TLS from outside the hosts, with the client certificate rendered for the apiserver
    let local = tempfile::tempdir().unwrap();
    let tls = local.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    for name in ["etcd-ca.crt", "etcd-client.crt", "etcd-client.key"] {
        std::fs::write(tls.join(name), &assets[&format!("tls/{name}")]).unwrap();
    }
    let endpoints: Vec<String> = addrs.iter().map(|a| format!("https://{a}:2379")).collect();
    let endpoints = endpoints.join(",");
    let deadline = Instant::now() + Duration::from_secs(40);
    let (mut ok, mut text) = (false, String::new());
    while Instant::now() < deadline {
        (ok, text) = etcdctl(&endpoints, &tls, &["endpoint", "health"]);
        if ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let logs = |h: &str| {
        String::from_utf8_lossy(&tb.host_exec(h, &["tail", "-n", "8", "/var/log/etcd.log"]).stdout).into_owned()
    };
    assert!(ok, "not healthy: {text}\n{}", logs("h1"));
    for a in &addrs {
        assert!(text.contains(&format!("https://{a}:2379 is healthy")), "{text}");
    }
    let (ok, members) = etcdctl(&endpoints, &tls, &["member", "list"]);
    assert!(ok, "{members}");
    assert_eq!(
        members.lines().filter(|l| l.contains(", started, ")).count(),
        3,
        "{members}"
    );
    let (ok, put) = etcdctl(&endpoints, &tls, &["put", "/lane", "ok"]);
    assert!(ok && put.contains("OK"), "{put}");

    // without a client certificate, etcd refuses
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &endpoints])
        .arg("--cacert")
        .arg(tls.join("etcd-ca.crt"))
        .args(["--dial-timeout", "2s", "--command-timeout", "3s", "get", "/lane"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "etcd served a client without a certificate");

    // a second delivery changes nothing on any host
    let again = fleet
        .for_each(&cancel, |s| {
            let files = files.clone();
            async move { s.upload(&files).await }
        })
        .await
        .unwrap();
    for (host, r) in again {
        assert!(r.unwrap().changed.is_empty(), "{host}");
    }
    fleet.close().await;
}
