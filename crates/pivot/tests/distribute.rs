//! Preflight and file distribution against real OpenSSH servers in network
//! namespaces (the test bed): idempotent reruns, and bad hosts refused
//! before anything changes on any host.

use std::collections::BTreeMap;

use selfhosted_pivot::preflight::preflight;
use selfhosted_pivot::{distribute, health};
use selfhosted_pivot::{Host, Inventory, Phase, RemotePaths, Role};
use selfhosted_transport::testbed::{Testbed, TestbedParams};
use selfhosted_transport::{CancellationToken, HostKeyPolicy};

fn assets() -> BTreeMap<String, String> {
    [
        "tls/ca.crt",
        "tls/etcd-ca.crt",
        "tls/etcd-client.crt",
        "tls/etcd-client.key",
        "tls/etcd/server.crt",
        "tls/etcd/server.key",
        "tls/etcd/peer.crt",
        "tls/etcd/peer.key",
        "auth/kubelet-bootstrap.kubeconfig",
        "auth/controller-bootstrap.kubeconfig",
        "bootstrap-secrets/apiserver.key",
        "bootstrap-manifests/bootstrap-kube-apiserver.yaml",
    ]
    .into_iter()
    .map(|k| (k.to_owned(), format!("content of {k}\n")))
    .collect()
}

/// Three test-bed hosts with a stand-in kubelet, or `None` when not root.
fn hosts_with_kubelet(test: &str) -> Option<Testbed> {
    let tb = Testbed::up(
        test,
        &TestbedParams {
            count: 3,
            ..Default::default()
        },
    )
    .unwrap()?;
    tb.install_executable("/usr/local/bin/kubelet", "#!/bin/sh")
        .expect("stand-in kubelet");
    Some(tb)
}

fn inventory(tb: &Testbed) -> Inventory {
    let specs = tb.specs().unwrap();
    let hosts: Vec<Host> = tb
        .hosts()
        .iter()
        .zip(specs)
        .enumerate()
        .map(|(i, (h, ssh))| Host {
            name: h.name.clone(),
            role: if i < 2 { Role::Controller } else { Role::Worker },
            ssh,
        })
        .collect();
    let (controllers, workers) = hosts.split_at(2);
    Inventory::try_new(controllers.to_vec(), workers.to_vec()).unwrap()
}

/// Three test-bed hosts past preflight, with the default paths and the stand-in assets.
struct Connected {
    tb: Testbed,
    inv: Inventory,
    cancel: CancellationToken,
    paths: RemotePaths,
    a: BTreeMap<String, String>,
    ready: selfhosted_pivot::preflight::Ready,
}

async fn connected(test: &str) -> Option<Connected> {
    let tb = hosts_with_kubelet(test)?;
    let inv = inventory(&tb);
    let cancel = CancellationToken::new();
    let ready = preflight(&inv, &cancel).await.expect("preflight");
    Some(Connected {
        tb,
        inv,
        cancel,
        paths: RemotePaths::default(),
        a: assets(),
        ready,
    })
}

fn stat(tb: &Testbed, host: &str, path: &str) -> String {
    let out = tb.host_exec(host, &["stat", "-c", "%a %U %i %Y", path]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn node_secrets_and_bootstrap_files_land_once_and_reruns_change_nothing() {
    let Some(Connected {
        tb,
        inv,
        cancel,
        paths,
        a,
        ready,
    }) = connected("pivot distribute").await
    else {
        return;
    };
    let first = distribute::node_secrets(&ready, &inv, &a, &paths, &cancel)
        .await
        .expect("node secrets");
    assert_eq!(first.count(), 2 * 12 + 2, "12 files per controller, 2 per worker");
    let boot = ready.fleet.sessions()[0].clone();
    let placed = distribute::bootstrap_control_plane(&boot, &a, &paths)
        .await
        .expect("bootstrap");
    assert_eq!(placed.len(), 2);

    let names: Vec<String> = tb.hosts().iter().map(|h| h.name.clone()).collect();
    assert!(stat(&tb, &names[0], "/etc/kubernetes/kubeconfig").starts_with("600 root"));
    assert!(stat(&tb, &names[0], "/etc/kubernetes/ca.crt").starts_with("644 root"));
    assert!(stat(&tb, &names[1], "/etc/ssl/etcd/etcd/server.crt").starts_with("600"));
    // The apiserver hand-over's sysctl: in the controllers' network namespace now (Linux 5.14
    // and later have it), and in sysctl.d for every boot; not on workers.
    let migrate = |host: &str| {
        let out = tb.host_exec(host, &["cat", "/proc/sys/net/ipv4/tcp_migrate_req"]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(migrate(&names[0]), "1", "set on a controller at once");
    assert_eq!(migrate(&names[2]), "0", "a worker's namespace is left alone");
    assert!(stat(&tb, &names[1], "/etc/sysctl.d/91-selfhosted-apiserver.conf").starts_with("644 root"));
    assert!(
        stat(&tb, &names[2], "/etc/ssl/etcd/etcd/server.crt").is_empty(),
        "workers get no etcd TLS"
    );
    assert!(stat(
        &tb,
        &names[1],
        "/etc/kubernetes/manifests/bootstrap-kube-apiserver.yaml"
    )
    .is_empty());
    let before = stat(&tb, &names[0], "/etc/kubernetes/kubeconfig");

    // A rerun converges without touching anything.
    let again = distribute::node_secrets(&ready, &inv, &a, &paths, &cancel)
        .await
        .unwrap();
    assert_eq!(again.count(), 0, "{again:?}");
    assert!(distribute::bootstrap_control_plane(&boot, &a, &paths)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        stat(&tb, &names[0], "/etc/kubernetes/kubeconfig"),
        before,
        "same inode and mtime"
    );

    let removed = distribute::remove_bootstrap(&boot, &a, &paths).await.unwrap();
    assert_eq!(removed.len(), 2);
    assert!(stat(
        &tb,
        &names[0],
        "/etc/kubernetes/manifests/bootstrap-kube-apiserver.yaml"
    )
    .is_empty());
    ready.fleet.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_host_key_or_refused_sudo_fails_preflight_naming_the_host() {
    let Some(tb) = hosts_with_kubelet("pivot preflight") else {
        return;
    };
    let cancel = CancellationToken::new();

    // Host 1 presents a key other than the pinned one.
    let mut inv_hosts: Vec<Host> = inventory(&tb).hosts().to_vec();
    inv_hosts[1].ssh.host.host_key = HostKeyPolicy::try_pinned(&[tb.hosts()[0].host_key.as_str()]).unwrap();
    let name1 = inv_hosts[1].name.clone();
    let inv = Inventory::try_new(inv_hosts[..2].to_vec(), inv_hosts[2..].to_vec()).unwrap();
    let err = preflight(&inv, &cancel).await.expect_err("wrong key refused");
    assert_eq!(err.phase, Phase::Preflight);
    let detail = err.detail();
    assert!(detail.contains(&name1), "{detail}");
    assert!(
        detail.contains(&tb.hosts()[1].fingerprint),
        "presented fingerprint shown: {detail}"
    );
    assert!(detail.contains("nothing was changed"), "{detail}");

    // A user without sudo on host 2: refused by name, before any change.
    let mut inv_hosts: Vec<Host> = inventory(&tb).hosts().to_vec();
    inv_hosts[2].ssh.host.user = tb.inventory().nosudo_user.clone();
    let name2 = inv_hosts[2].name.clone();
    let inv = Inventory::try_new(inv_hosts[..2].to_vec(), inv_hosts[2..].to_vec()).unwrap();
    let err = preflight(&inv, &cancel).await.expect_err("sudo refused");
    assert_eq!(err.host.as_deref(), Some(name2.as_str()), "{err:?}");
    assert!(err.detail().contains("sudo"), "{}", err.detail());
    for h in tb.hosts() {
        assert!(
            stat(&tb, &h.name, "/etc/kubernetes/kubeconfig").is_empty(),
            "nothing written on {}",
            h.name
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_without_a_kubelet_is_named() {
    let Some(tb) = Testbed::up(
        "pivot kubelet check",
        &TestbedParams {
            count: 1,
            ..Default::default()
        },
    )
    .unwrap() else {
        return;
    };
    let spec = tb.spec(0).unwrap();
    let name = tb.hosts()[0].name.clone();
    // The test bed's stand-in systemctl answers every query; this host has no units at all.
    let out = tb.host_exec(&name, &["rm", "-f", "/usr/local/bin/systemctl"]);
    assert!(out.status.success());
    let inv = Inventory::try_new(
        vec![Host {
            name: name.clone(),
            role: Role::Controller,
            ssh: spec,
        }],
        vec![],
    )
    .unwrap();
    let err = preflight(&inv, &CancellationToken::new())
        .await
        .expect_err("no kubelet");
    assert_eq!(err.host.as_deref(), Some(name.as_str()));
    assert!(err.detail().contains("no kubelet"), "{}", err.detail());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_check_names_missing_node_secrets_until_they_are_delivered_again() {
    let Some(Connected {
        tb,
        inv,
        cancel,
        paths,
        a,
        ready,
    }) = connected("pivot health").await
    else {
        return;
    };
    distribute::node_secrets(&ready, &inv, &a, &paths, &cancel)
        .await
        .expect("node secrets");
    let names: Vec<String> = tb.hosts().iter().map(|h| h.name.clone()).collect();

    // A worker's CA and a controller's etcd peer key gone, as a wiped disk leaves them.
    tb.host_exec(&names[2], &["rm", "/etc/kubernetes/ca.crt"]);
    tb.host_exec(&names[1], &["rm", "/etc/ssl/etcd/etcd/peer.key"]);
    let findings = health::check(&inv, &a, &paths, 6443, &cancel).await.expect("checked");
    let of = |host: &str, fixes: bool| -> Vec<String> {
        findings
            .iter()
            .filter(|f| f.host == host && f.update_fixes == fixes)
            .map(|f| f.what.clone())
            .collect()
    };
    assert!(of(&names[0], true).is_empty(), "{findings:?}");
    assert!(
        of(&names[1], true)
            .iter()
            .any(|w| w.contains("/etc/ssl/etcd/etcd/peer.key") && w.contains("next apply")),
        "{findings:?}"
    );
    assert_eq!(
        of(&names[2], true),
        ["node secrets missing or changed since the last apply: /etc/kubernetes/ca.crt (a wiped or replaced disk, or files changed by hand); the next apply delivers them again"],
        "{findings:?}"
    );
    // No etcd runs on the test bed: each controller's member is named, no worker's.
    for (host, expect) in [(&names[0], 1), (&names[1], 1), (&names[2], 0)] {
        let etcd: Vec<String> = of(host, false).into_iter().filter(|w| w.contains("etcd")).collect();
        assert_eq!(etcd.len(), expect, "{host}: {findings:?}");
        assert!(
            etcd.iter()
                .all(|w| w.contains("etcd member") && w.contains("disaster-recovery")),
            "{etcd:?}"
        );
    }
    // Nor an apiserver: the look for recovery apiservers says it could not be made, once.
    let api: Vec<&health::Finding> = findings
        .iter()
        .filter(|f| f.what.contains("API did not answer"))
        .collect();
    assert_eq!(api.len(), 1, "{findings:?}");
    assert!(
        api[0].host == names[0] && !api[0].update_fixes && api[0].what.contains("no recovery apiserver was looked for"),
        "{api:?}"
    );

    // Delivered again: only the etcd members are left to report.
    distribute::node_secrets(&ready, &inv, &a, &paths, &cancel)
        .await
        .unwrap();
    let findings = health::check(&inv, &a, &paths, 6443, &cancel).await.expect("checked");
    assert!(findings.iter().all(|f| !f.update_fixes), "{findings:?}");
    ready.fleet.close().await;
}

/// `inventory(tb)` logging in with `auth` on every host.
fn inventory_with(tb: &Testbed, auth: &selfhosted_transport::Auth) -> Inventory {
    let hosts: Vec<Host> = inventory(tb)
        .hosts()
        .iter()
        .map(|h| {
            let mut h = h.clone();
            h.ssh.host.auth = auth.clone();
            h
        })
        .collect();
    Inventory::try_new(hosts[..2].to_vec(), hosts[2..].to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn authorized_keys_rotate_the_login_key_and_drop_every_other_key() {
    use selfhosted_transport::{Auth, AuthorizedKeys};
    let Some(tb) = hosts_with_kubelet("authorized keys") else {
        return;
    };
    let (cancel, paths, a) = (CancellationToken::new(), RemotePaths::default(), assets());
    let names: Vec<String> = tb.hosts().iter().map(|h| h.name.clone()).collect();
    let first_line = |path: &std::path::Path| {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        text.lines().next().unwrap_or_default().to_owned()
    };
    let old = first_line(&tb.inventory().key.with_extension("pub"));
    // The new key pair, made as a user would.
    let new_key = tb.dir().join("rotated_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "rotated", "-f"])
        .arg(&new_key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let new = first_line(&new_key.with_extension("pub"));
    let new_auth = Auth::try_private_key(&std::fs::read_to_string(&new_key).unwrap(), None).unwrap();
    // Host 0 keeps its keys a file per source, as Fedora CoreOS does: Ignition's holds the
    // first key (the old one), and another source's a key nobody listed.
    let key_dir = "/home/core/.ssh/authorized_keys.d";
    tb.host_exec(&names[0], &["mkdir", "-p", key_dir]);
    let stray = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICjRVqpiGaWBDZSVhV4OfOTSnv7vQU497KVQ/eGosOqm stray";
    for (file, line) in [("ignition", old.as_str()), ("afterburn", stray)] {
        let out = tb.host_exec(
            &names[0],
            &[
                "sh",
                "-c",
                &format!("echo '{line}' > {key_dir}/{file} && chown -R core: /home/core/.ssh"),
            ],
        );
        assert!(out.status.success(), "{out:?}");
    }
    let new_login = || {
        let inv = inventory_with(&tb, &new_auth);
        async move { preflight(&inv, &CancellationToken::new()).await }
    };
    let refused = new_login().await.expect_err("the new key is not let in yet");
    assert!(refused.detail().contains("refused"), "{}", refused.detail());

    // 1. Both keys listed, logged in with the old one: the new one is let in everywhere.
    let both = AuthorizedKeys::parse(&[old.as_str(), new.as_str()]).unwrap();
    let inv = inventory(&tb).with_authorized_keys(Some(both.clone()));
    let ready = preflight(&inv, &cancel).await.expect("preflight with the old key");
    let written = distribute::node_secrets(&ready, &inv, &a, &paths, &cancel)
        .await
        .expect("node secrets and keys");
    ready.fleet.close().await;
    for name in &names {
        assert!(
            written.written[name].contains(&"/home/core/.ssh/authorized_keys".to_owned()),
            "{written:?}"
        );
        assert!(
            stat(&tb, name, "/home/core/.ssh/authorized_keys").starts_with("600 core"),
            "{name}"
        );
    }
    let listed = String::from_utf8(tb.host_exec(&names[0], &["ls", key_dir]).stdout).unwrap();
    assert_eq!(
        listed.trim(),
        "selfhosted",
        "the other sources' files are gone on {}",
        names[0]
    );
    let kept = String::from_utf8(
        tb.host_exec(&names[0], &["cat", &format!("{key_dir}/selfhosted")])
            .stdout,
    )
    .unwrap();
    assert_eq!(kept, both.file());
    // The cloud's key services are masked there, so none puts a dropped key back at a boot
    // (the test bed's systemctl records its calls).
    let calls = String::from_utf8(tb.host_exec(&names[0], &["cat", "/var/log/systemctl.log"]).stdout).unwrap();
    assert!(
        calls.contains("mask afterburn-sshkeys@core.service coreos-metadata-sshkeys@core.service"),
        "{calls}"
    );

    // 2. Logged in with the new key, the old one dropped: the new key works on every host ...
    let only_new = AuthorizedKeys::parse(&[new.as_str()]).unwrap();
    let inv = inventory_with(&tb, &new_auth).with_authorized_keys(Some(only_new));
    let ready = preflight(&inv, &cancel).await.expect("preflight with the new key");
    distribute::node_secrets(&ready, &inv, &a, &paths, &cancel)
        .await
        .expect("keys without the old one");
    let again = distribute::node_secrets(&ready, &inv, &a, &paths, &cancel)
        .await
        .unwrap();
    assert_eq!(again.count(), 0, "a rerun writes nothing: {again:?}");
    ready.fleet.close().await;
    // ... and the old one is refused on every host.
    let err = preflight(&inventory(&tb), &cancel)
        .await
        .expect_err("the old key is out");
    for name in &names {
        assert!(err.detail().contains(name.as_str()), "{name}: {}", err.detail());
    }
    assert!(err.detail().contains("refused"), "{}", err.detail());
}
