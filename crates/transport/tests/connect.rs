//! Reaching hosts: through a bastion to hosts only it reaches, clear errors for unreachable
//! hosts within the configured timeout, streams to a port on the host, fleets in parallel.

use std::time::{Duration, Instant};

use selfhosted_transport::testbed::{Testbed, TestbedParams};
use selfhosted_transport::{CancellationToken, ConnectError, FileSpec, Fleet, HostKeyError, HostKeyPolicy, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn params(count: usize, bastion: bool) -> TestbedParams {
    TestbedParams {
        count,
        bastion,
        ..Default::default()
    }
}

#[tokio::test]
async fn bastion_reaches_hosts_only_it_can_reach() {
    let Some(tb) = Testbed::up("bastion_reaches_hosts", &params(2, true)).unwrap() else {
        return;
    };
    let bastion = tb.inventory().bastion.clone().expect("bastion");

    // directly, the hosts are unreachable from here
    let mut direct = tb.spec(0).unwrap();
    direct.bastions.clear();
    direct.connect_timeout = Duration::from_millis(500);
    let err = Session::connect(&direct).await.unwrap_err();
    assert!(matches!(err, ConnectError::TimedOut { .. }), "{err:?}");

    // through the bastion, with pinned keys on both hops
    for i in 0..2 {
        let (s, learned) = Session::connect(&tb.spec(i).unwrap()).await.expect("via bastion");
        assert!(learned.is_empty());
        let name = format!("h{}", i + 1);
        assert_eq!(s.run("hostname").await.unwrap().stdout_text().trim(), name);
        // the host sees the connection coming from the bastion's inner address
        let from = s.run("echo $SSH_CLIENT").await.unwrap().stdout_text();
        assert!(
            from.starts_with(&bastion.address.replace("10.213.", "10.214.")),
            "{from}"
        );
        assert_eq!(s.sudo("id -u").await.unwrap().stdout_text().trim(), "0");
    }

    // first use through the bastion learns both keys, bastion first
    let mut tofu = tb.spec(1).unwrap();
    tofu.bastions[0].host_key = HostKeyPolicy::TrustOnFirstUse;
    tofu.host.host_key = HostKeyPolicy::TrustOnFirstUse;
    let (_s, learned) = Session::connect(&tofu).await.unwrap();
    let got: Vec<_> = learned
        .iter()
        .map(|k| (k.host.as_str(), k.fingerprint.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("bastion", bastion.fingerprint.as_str()),
            ("h2", tb.hosts()[1].fingerprint.as_str())
        ]
    );

    // a wrong bastion key is refused, naming the bastion
    let mut wrong = tb.spec(0).unwrap();
    wrong.bastions[0].host_key = HostKeyPolicy::try_pinned(&[tb.hosts()[0].fingerprint.as_str()]).unwrap();
    match Session::connect(&wrong).await.unwrap_err() {
        ConnectError::HostKey(HostKeyError::Mismatch { host, presented, .. }) => {
            assert_eq!(host, "bastion");
            assert_eq!(presented, bastion.fingerprint);
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }

    // the bastion cannot reach a host that does not exist: clear error naming it and the bastion
    let mut ghost = tb.spec(0).unwrap();
    ghost.host.name = "ghost".into();
    ghost.host.address = ghost.host.address.rsplit_once('.').unwrap().0.to_owned() + ".250";
    ghost.connect_timeout = Duration::from_secs(2);
    let err = Session::connect(&ghost).await.unwrap_err().to_string();
    assert!(err.contains("ghost") && err.contains("bastion"), "{err}");
}

#[tokio::test]
async fn unreachable_host_fails_clearly_within_the_timeout() {
    let Some(tb) = Testbed::up("unreachable_host", &params(1, false)).unwrap() else {
        return;
    };
    // an address on the test-bed bridge where no host lives
    let mut spec = tb.spec(0).unwrap();
    spec.host.name = "nobody".into();
    spec.host.address = tb.inventory().gateway.replace(".1", ".250");
    spec.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = Session::connect(&spec).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    let msg = err.to_string();
    assert!(matches!(err, ConnectError::TimedOut { .. }), "{err:?}");
    assert!(msg.contains("nobody") && msg.contains(&spec.host.address), "{msg}");

    // a live host with no sshd on the port: the cause (refused) is named, retried until timeout
    let mut spec = tb.spec(0).unwrap();
    spec.host.port = 2222;
    spec.connect_timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let err = Session::connect(&spec).await.unwrap_err();
    let took = started.elapsed();
    let msg = err.to_string();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(msg.contains("h1") && msg.contains("refused"), "{msg}");
    match err {
        ConnectError::TimedOut { attempts, .. } => assert!(attempts > 1, "retried"),
        other => panic!("{other:?}"),
    }

    // cancellation stops the retries at once
    let cancel = CancellationToken::new();
    spec.connect_timeout = Duration::from_secs(30);
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.cancel();
    });
    let started = Instant::now();
    let err = Session::connect_cancellable(&spec, &cancel).await.unwrap_err();
    assert!(matches!(err, ConnectError::Cancelled { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn streams_reach_a_port_on_the_host_with_nothing_listening_here() {
    let Some(tb) = Testbed::up("tunnel_reaches_a_port", &params(1, true)).unwrap() else {
        return;
    };
    let (s, _) = Session::connect(&tb.spec(0).unwrap()).await.unwrap();
    // an HTTP server on the host's loopback, like an apiserver on 127.0.0.1:6443
    s.run(
        "mkdir -p /tmp/www; echo tunnelled > /tmp/www/index.txt; \
           setsid python3 -m http.server -d /tmp/www -b 127.0.0.1 6443 </dev/null >/dev/null 2>&1 &",
    )
    .await
    .unwrap();
    let mut first = None;
    for _ in 0..50 {
        match s.open_stream("127.0.0.1", 6443).await {
            Ok(stream) => {
                first = Some(stream);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let first = first.expect("the server listens");
    let mut streams = vec![first];
    for _ in 0..2 {
        streams.push(s.open_stream("127.0.0.1", 6443).await.unwrap());
    }
    // while the streams are open, this process listens nowhere another local user could connect
    assert_eq!(own_listening_sockets(), Vec::<u64>::new());
    for mut c in streams {
        c.write_all(b"GET /index.txt HTTP/1.0\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        c.read_to_string(&mut body).await.unwrap();
        assert!(
            body.starts_with("HTTP/1.0 200") && body.ends_with("tunnelled\n"),
            "{body}"
        );
    }
    // a closed port fails when the stream is opened, naming host and target
    let Err(err) = s.open_stream("127.0.0.1", 6444).await else {
        panic!("a stream to a closed port");
    };
    let err = err.to_string();
    assert!(err.contains("h1") && err.contains("127.0.0.1:6444"), "{err}");
}

/// The inodes of the TCP sockets in LISTEN state (`0A`) that this process holds.
fn own_listening_sockets() -> Vec<u64> {
    let listening: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    (fields.get(3) == Some(&"0A")).then(|| fields.get(9)?.parse().ok())?
                })
                .collect::<Vec<u64>>()
        })
        .collect();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let inode = target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
            inode.parse().ok()
        })
        .filter(|inode| listening.contains(inode))
        .collect()
}

#[tokio::test]
async fn fleet_connects_and_uploads_in_parallel() {
    let Some(tb) = Testbed::up("fleet_parallel", &params(6, false)).unwrap() else {
        return;
    };
    let cancel = CancellationToken::new();
    let mut specs = tb.specs().unwrap();
    for s in &mut specs {
        s.host.host_key = HostKeyPolicy::TrustOnFirstUse;
    }
    let (fleet, learned) = Fleet::connect_all(&specs, 3, &cancel).await.unwrap();
    assert_eq!(learned.len(), 6);
    for (k, h) in learned.iter().zip(tb.hosts()) {
        assert_eq!(
            (k.host.as_str(), k.fingerprint.as_str()),
            (h.name.as_str(), h.fingerprint.as_str())
        );
    }
    let results = fleet
        .for_each(&cancel, |s| async move {
            let f = FileSpec::secret("/etc/kubernetes/whoami", format!("{}\n", s.host()));
            s.upload(&[f]).await
        })
        .await
        .unwrap();
    assert_eq!(results.len(), 6);
    for (name, r) in results {
        assert_eq!(r.unwrap().changed.len(), 1, "{name}");
        let out = tb.host_exec(&name, &["cat", "/etc/kubernetes/whoami"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{name}\n"));
    }
    // one bad host: the error names it, with its cause
    let mut bad = tb.specs().unwrap();
    bad[4].host.port = 2222;
    bad[4].connect_timeout = Duration::from_millis(300);
    let err = Fleet::connect_all(&bad, 6, &cancel).await.unwrap_err().to_string();
    assert!(
        err.starts_with("1 of 6 hosts unreachable") && err.contains("h5"),
        "{err}"
    );
    fleet.close().await;
}

#[tokio::test]
async fn fleet_behind_a_bastion_logs_in_to_it_once() {
    let Some(tb) = Testbed::up("fleet_behind_a_bastion", &params(4, true)).unwrap() else {
        return;
    };
    let cancel = CancellationToken::new();
    let mut specs = tb.specs().unwrap();
    for s in &mut specs {
        s.bastions[0].host_key = HostKeyPolicy::TrustOnFirstUse;
    }
    let (fleet, learned) = Fleet::connect_all(&specs, 4, &cancel).await.unwrap();
    let bastion = tb.inventory().bastion.clone().unwrap();
    let names: Vec<&str> = learned.iter().map(|k| k.host.as_str()).collect();
    assert_eq!(names, vec!["bastion"], "the bastion's key is learned once");
    assert_eq!(learned[0].fingerprint, bastion.fingerprint);
    // one SSH connection from this machine to the bastion carries all four hosts
    let ss = tb.host_exec("bastion", &["ss", "-Htn", "state", "established", "( sport = :22 )"]);
    let from_us = String::from_utf8_lossy(&ss.stdout)
        .lines()
        .filter(|l| l.contains(&tb.inventory().gateway))
        .count();
    assert_eq!(from_us, 1, "{}", String::from_utf8_lossy(&ss.stdout));
    let results = fleet
        .for_each(&cancel, |s| async move { s.run("hostname").await })
        .await
        .unwrap();
    for (name, r) in results {
        assert_eq!(r.unwrap().stdout_text().trim(), name);
    }
    fleet.close().await;
}
