//! Uploads against real sshd: idempotent (inode and mtime unchanged on a second run), owner and
//! mode applied, per-host isolation, atomic when the connection dies mid-upload; durable
//! (temporaries synced before the first rename, folders after the last, on both paths); a
//! batch cut between two renames leaves each file wholly old or new and a rerun converges;
//! removal, its folders synced; command failures and refused sudo reported clearly.

use std::time::Duration;

use selfhosted_transport::testbed::{Testbed, TestbedParams};
use selfhosted_transport::{ExecError, FileSpec, FilesError, Session};

fn hosts(test: &str, count: usize) -> Option<Testbed> {
    Testbed::up(
        test,
        &TestbedParams {
            count,
            ..Default::default()
        },
    )
    .expect("test bed up")
}

/// `inode mtime(ns) owner group mode` of a file, read inside the host without SSH.
fn stat(tb: &Testbed, host: &str, path: &str) -> String {
    let out = tb.host_exec(host, &["stat", "-c", "%i %.9Y %U %G %a", path]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn read(tb: &Testbed, host: &str, path: &str) -> Option<Vec<u8>> {
    let out = tb.host_exec(host, &["cat", path]);
    out.status.success().then_some(out.stdout)
}

#[tokio::test]
async fn upload_is_idempotent_with_owner_and_mode() {
    let Some(tb) = hosts("upload_is_idempotent_with_owner_and_mode", 2) else {
        return;
    };
    let (session, _) = Session::connect(&tb.spec(0).unwrap()).await.unwrap();
    let files = vec![
        FileSpec::secret("/etc/kubernetes/kubeconfig", "apiVersion: v1\n"),
        FileSpec::secret("/etc/ssl/etcd/etcd/server.key", "KEY\n"),
        FileSpec::secret("/etc/kubernetes/ca.crt", "CA\n").with_mode(0o644),
        FileSpec::secret("/home/core/note", "mine\n")
            .with_owner("core", "core")
            .with_mode(0o640),
    ];
    let first = session.upload(&files).await.unwrap();
    assert_eq!(first.changed.len(), 4, "{first:?}");
    assert!(first.unchanged.is_empty());
    let before: Vec<String> = files.iter().map(|f| stat(&tb, "h1", &f.path)).collect();
    assert!(before[0].ends_with("root root 600"), "{}", before[0]);
    assert!(before[2].ends_with("root root 644"), "{}", before[2]);
    assert!(before[3].ends_with("core core 640"), "{}", before[3]);
    assert_eq!(
        read(&tb, "h1", "/etc/kubernetes/kubeconfig").unwrap(),
        b"apiVersion: v1\n"
    );
    // folders created readable (0755), files not
    let dir = tb.host_exec("h1", &["stat", "-c", "%a", "/etc/ssl/etcd/etcd"]);
    assert_eq!(String::from_utf8_lossy(&dir.stdout).trim(), "755");

    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = session.upload(&files).await.unwrap();
    assert!(second.changed.is_empty(), "{second:?}");
    assert_eq!(second.unchanged.len(), 4);
    let after: Vec<String> = files.iter().map(|f| stat(&tb, "h1", &f.path)).collect();
    assert_eq!(before, after, "a second run must not touch any file (inode, mtime)");

    // one changed content and one changed mode: only those are rewritten
    let mut changed = files.clone();
    changed[1].content = b"NEW KEY\n".to_vec();
    changed[2].mode = 0o600;
    let third = session.upload(&changed).await.unwrap();
    assert_eq!(third.changed, vec![files[1].path.clone(), files[2].path.clone()]);
    let now: Vec<String> = files.iter().map(|f| stat(&tb, "h1", &f.path)).collect();
    assert_eq!(now[0], before[0]);
    assert_eq!(now[3], before[3]);
    assert_ne!(
        now[1].split(' ').next(),
        before[1].split(' ').next(),
        "replaced by rename"
    );
    assert!(now[2].ends_with("root root 600"), "{}", now[2]);
    assert_eq!(read(&tb, "h1", "/etc/ssl/etcd/etcd/server.key").unwrap(), b"NEW KEY\n");

    // no temporary files left beside the targets
    let ls = tb.host_exec("h1", &["ls", "-A", "/etc/ssl/etcd/etcd", "/etc/kubernetes"]);
    assert!(!String::from_utf8_lossy(&ls.stdout).contains("selfhosted-"), "{ls:?}");
    // each host has its own /etc; the machine's own /etc is untouched
    assert!(read(&tb, "h2", "/etc/kubernetes/kubeconfig").is_none());
    assert!(
        !std::path::Path::new("/etc/ssl/etcd/etcd/server.key").exists()
            || std::fs::read("/etc/ssl/etcd/etcd/server.key").unwrap() != b"NEW KEY\n"
    );

    let removed = session
        .remove(&["/etc/kubernetes/kubeconfig", "/etc/kubernetes/absent"])
        .await
        .unwrap();
    assert_eq!(removed, vec!["/etc/kubernetes/kubeconfig".to_owned()]);
    assert!(read(&tb, "h1", "/etc/kubernetes/kubeconfig").is_none());

    let bad = session.upload(&[FileSpec::secret("relative/path", "x")]).await;
    assert!(matches!(bad, Err(FilesError::InvalidSpec { .. })), "{bad:?}");
}

fn big(seed: u8, len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn upload_is_atomic_when_the_connection_dies() {
    let Some(tb) = hosts("upload_is_atomic_when_the_connection_dies", 1) else {
        return;
    };
    let spec = tb.spec(0).unwrap();
    let path = "/var/lib/selfhosted/big.bin";
    let old = b"old content\n".to_vec();
    let new = big(7, 32 << 20);
    let (session, _) = Session::connect(&spec).await.unwrap();
    session.upload(&[FileSpec::secret(path, old.clone())]).await.unwrap();

    let uploader = {
        let session = session.clone();
        let new = new.clone();
        tokio::spawn(async move { session.upload(&[FileSpec::secret(path, new)]).await })
    };
    // wait until the temporary file is being written, then kill the host's sshd sessions
    let mut seen = false;
    for _ in 0..1000 {
        let out = tb.host_exec(
            "h1",
            &[
                "sh",
                "-c",
                "stat -c %s /var/lib/selfhosted/.big.bin.selfhosted-* 2>/dev/null",
            ],
        );
        let size: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
        if size > 0 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen, "the upload never started writing");
    let killed = tb.kill_sessions("h1");
    assert!(killed.status.success(), "{killed:?}");
    let result = uploader.await.unwrap();
    assert!(result.is_err(), "the upload cannot have succeeded: {result:?}");

    let content = read(&tb, "h1", path).expect("the old file is still in place");
    assert!(
        content == old || content == new,
        "half-written file: {} bytes",
        content.len()
    );
    assert_eq!(content, old, "the rename happens only after the full content arrived");

    // a retry on a fresh connection completes and clears the leftover temporary file
    let (session, _) = Session::connect(&spec).await.unwrap();
    let report = session.upload(&[FileSpec::secret(path, new.clone())]).await.unwrap();
    assert_eq!(report.changed, vec![path.to_owned()]);
    assert_eq!(read(&tb, "h1", path).unwrap(), new);
    let ls = tb.host_exec("h1", &["ls", "-A", "/var/lib/selfhosted"]);
    assert_eq!(String::from_utf8_lossy(&ls.stdout).trim(), "big.bin");
    // large batches are compared before sending: nothing changes the second time
    let before = stat(&tb, "h1", path);
    let again = session.upload(&[FileSpec::secret(path, new)]).await.unwrap();
    assert_eq!(again.unchanged, vec![path.to_owned()]);
    assert_eq!(stat(&tb, "h1", path), before);
}

#[tokio::test]
async fn failures_quote_stderr_and_refused_sudo_is_clear() {
    let Some(tb) = hosts("failures_quote_stderr_and_refused_sudo_is_clear", 1) else {
        return;
    };
    let (session, _) = Session::connect(&tb.spec(0).unwrap()).await.unwrap();
    let err = session.run("echo starting; echo boom >&2; exit 3").await.unwrap_err();
    match &err {
        ExecError::Failed {
            host,
            status,
            stderr_tail,
            ..
        } => {
            assert_eq!(host, "h1");
            assert_eq!(status, "exit status 3");
            assert_eq!(stderr_tail, "boom");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let out = session.exec("exit 4").await.unwrap();
    assert_eq!(out.status, Some(4));
    assert_eq!(session.sudo("id -u").await.unwrap().stdout_text().trim(), "0");

    let mut spec = tb.spec(0).unwrap();
    spec.host.user = tb.inventory().nosudo_user.clone();
    let (guest, _) = Session::connect(&spec).await.unwrap();
    assert_eq!(guest.run("whoami").await.unwrap().stdout_text().trim(), "guest");
    let err = guest.sudo("true").await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ExecError::SudoRefused { .. }), "{err:?}");
    assert!(
        msg.contains("h1") && msg.contains("guest") && msg.contains("sudo"),
        "{msg}"
    );
    let err = guest
        .upload(&[FileSpec::secret("/etc/kubernetes/x", "x")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sudo refused"), "{err}");
}

#[tokio::test]
async fn small_batches_stay_atomic_when_the_connection_dies() {
    let Some(tb) = hosts("small_batches_stay_atomic", 1) else {
        return;
    };
    let spec = tb.spec(0).unwrap();
    let path = "/etc/kubernetes/manifests/kube-apiserver.yaml";
    // under 1 MiB: the one-round-trip SFTP path
    let a = big(1, 900 << 10);
    let b = big(2, 900 << 10);
    let (session, _) = Session::connect(&spec).await.unwrap();
    session.upload(&[FileSpec::secret(path, a.clone())]).await.unwrap();
    let writer = {
        let session = session.clone();
        let (a, b) = (a.clone(), b.clone());
        tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let content = if n.is_multiple_of(2) { b.clone() } else { a.clone() };
                if session.upload(&[FileSpec::secret(path, content)]).await.is_err() {
                    return n;
                }
                n += 1;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(tb.kill_sessions("h1").status.success());
    let done = tokio::time::timeout(Duration::from_secs(20), writer)
        .await
        .expect("upload loop ends")
        .unwrap();
    assert!(done >= 1, "some uploads completed before the kill");
    let content = read(&tb, "h1", path).unwrap();
    assert!(
        content == a || content == b,
        "half-written file: {} bytes",
        content.len()
    );

    let (session, _) = Session::connect(&spec).await.unwrap();
    let c = big(3, 900 << 10);
    let report = session.upload(&[FileSpec::secret(path, c.clone())]).await.unwrap();
    assert_eq!(report.changed, vec![path.to_owned()]);
    assert_eq!(read(&tb, "h1", path).unwrap(), c);
    let ls = tb.host_exec("h1", &["ls", "-A", "/etc/kubernetes/manifests"]);
    assert_eq!(
        String::from_utf8_lossy(&ls.stdout).trim(),
        "kube-apiserver.yaml",
        "leftovers removed"
    );
}

#[tokio::test]
async fn a_command_flooding_stdout_is_stopped_and_stderr_keeps_its_end() {
    let Some(tb) = hosts("a_command_flooding_stdout_is_stopped", 1) else {
        return;
    };
    let (session, _) = Session::connect(&tb.spec(0).unwrap()).await.unwrap();
    let limit = selfhosted_transport::session::MAX_STDOUT;
    let err = session
        .exec(&format!("head -c {} /dev/zero", limit + 1))
        .await
        .expect_err("more than the limit is refused");
    assert!(matches!(err, ExecError::TooMuchOutput { .. }), "{err}");
    assert!(err.to_string().contains("h1"), "names the host: {err}");
    // The same connection still runs commands.
    let out = session
        .exec(&format!("head -c {limit} /dev/zero | wc -c"))
        .await
        .unwrap();
    assert_eq!(out.stdout_text().trim(), limit.to_string());
    // stderr keeps a bounded tail: the last line survives two MiB of noise.
    let out = session
        .exec("head -c 2097152 /dev/zero | tr '\\0' x >&2; echo; echo the-end >&2")
        .await
        .unwrap();
    assert!(out.stderr.len() <= 1 << 20, "{}", out.stderr.len());
    assert!(out.stderr_tail().ends_with("the-end"), "{}", out.stderr_tail());
}

/// Makes host `host` start its `sftp-server` with `-e -l VERBOSE` (and `extra`), logging each
/// open, fsync and rename to its `/var/log/sftp-server.log`: a wrapper bind-mounted over
/// `/usr/lib/openssh/sftp-server` in the host's own mount namespace (the machine's file is
/// untouched). Called again, it rewrites the wrapper in place.
fn log_sftp_server(tb: &Testbed, host: &str, extra: &str) {
    let script = format!(
        "set -e\n\
         w=/usr/local/libexec/sftp-server.logged; mkdir -p /usr/local/libexec\n\
         [ -x /usr/local/libexec/sftp-server.real ] || cp /usr/lib/openssh/sftp-server /usr/local/libexec/sftp-server.real\n\
         printf '#!/bin/sh\\nexec /usr/local/libexec/sftp-server.real -e -l VERBOSE {extra} \"$@\" 2>>/var/log/sftp-server.log\\n' > $w\n\
         chmod 755 $w\n\
         if ! grep -q ' /usr/lib/openssh/sftp-server ' /proc/self/mountinfo; then mount --bind $w /usr/lib/openssh/sftp-server; fi"
    );
    let out = tb.host_exec(host, &["sh", "-c", &script]);
    assert!(out.status.success(), "{out:?}");
}

/// The lines of a host's log file (empty when absent).
fn log_lines(tb: &Testbed, host: &str, path: &str) -> Vec<String> {
    read(tb, host, path)
        .map(|b| String::from_utf8_lossy(&b).lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A stand-in `sync` ahead of the real one in root's PATH, recording its arguments.
const SYNC_STAND_IN: &str = "#!/bin/sh\necho \"$*\" >> /var/log/sync.log\nexec /bin/sync \"$@\"";

fn index_of(lines: &[String], what: impl Fn(&str) -> bool) -> Option<usize> {
    lines.iter().position(|l| what(l))
}

#[tokio::test]
async fn sftp_uploads_sync_temporaries_before_renames_and_folders_after() {
    let Some(tb) = hosts("sftp_uploads_sync_temporaries_before_renames", 1) else {
        return;
    };
    log_sftp_server(&tb, "h1", "");
    tb.install_executable("/usr/local/bin/sync", SYNC_STAND_IN).unwrap();
    let (session, _) = Session::connect(&tb.spec(0).unwrap()).await.unwrap();
    let files = vec![
        FileSpec::secret("/etc/kubernetes/ca.crt", "CA\n").with_mode(0o644),
        FileSpec::secret("/etc/ssl/etcd/etcd/peer.crt", "CRT\n"),
        FileSpec::secret("/etc/ssl/etcd/etcd/peer.key", "KEY\n"),
    ];
    let report = session.upload(&files).await.unwrap();
    assert_eq!(report.changed.len(), 3, "{report:?}");
    let log = log_lines(&tb, "h1", "/var/log/sftp-server.log");
    let text = log.join("\n");
    assert_eq!(text.matches("session opened").count(), 1, "one sftp-server:\n{text}");
    let renames: Vec<usize> = files
        .iter()
        .map(|f| {
            index_of(&log, |l| {
                l.contains("posix-rename old") && l.contains(&format!("new \"{}\"", f.path))
            })
            .unwrap_or_else(|| panic!("no rename onto {}:\n{text}", f.path))
        })
        .collect();
    assert!(
        renames.windows(2).all(|w| w[0] < w[1]),
        "renames in the order given:\n{text}"
    );
    for f in &files {
        let (dir, base) = f.path.rsplit_once('/').unwrap();
        let temp = format!("fsync \"{dir}/.{base}.selfhosted-");
        let synced = index_of(&log, |l| l.contains(&temp)).unwrap_or_else(|| panic!("{temp} missing:\n{text}"));
        assert!(
            synced < renames[0],
            "{} synced before the first rename:\n{text}",
            f.path
        );
    }
    // the targets' folders, and the parents of the folders the upload created, after the last
    for dir in [
        "/etc/kubernetes",
        "/etc/ssl/etcd/etcd",
        "/etc",
        "/etc/ssl",
        "/etc/ssl/etcd",
    ] {
        let synced = log
            .iter()
            .rposition(|l| l.ends_with(&format!("fsync \"{dir}\"")))
            .unwrap_or_else(|| panic!("folder {dir} not synced:\n{text}"));
        assert!(synced > renames[2], "{dir} synced after the renames:\n{text}");
    }
    assert!(
        log_lines(&tb, "h1", "/var/log/sync.log").is_empty(),
        "no sync process on the SFTP path"
    );

    // nothing changed: nothing written, renamed or synced
    let before = log.len();
    let again = session.upload(&files).await.unwrap();
    assert_eq!(again.unchanged.len(), 3, "{again:?}");
    let log = log_lines(&tb, "h1", "/var/log/sftp-server.log");
    assert!(
        !log[before..]
            .iter()
            .any(|l| l.contains("fsync") || l.contains("rename")),
        "{:#?}",
        &log[before..]
    );

    // a server without fsync@openssh.com (`-P fsync`: denied, not offered): the shell path,
    // which syncs with `sync`
    log_sftp_server(&tb, "h1", "-P fsync");
    let mut changed = files.clone();
    changed[2].content = b"NEW KEY\n".to_vec();
    let report = session.upload(&changed).await.unwrap();
    assert_eq!(report.changed, vec![files[2].path.clone()]);
    assert_eq!(read(&tb, "h1", &files[2].path).unwrap(), b"NEW KEY\n");
    let syncs = log_lines(&tb, "h1", "/var/log/sync.log");
    assert_eq!(syncs.len(), 2, "{syncs:?}");
    assert!(
        syncs[0].starts_with("-- /etc/ssl/etcd/etcd/.peer.key.selfhosted-"),
        "{syncs:?}"
    );
    assert_eq!(
        syncs[0].split(' ').count(),
        2,
        "only the changed file's temporary: {syncs:?}"
    );
    assert!(syncs[1].starts_with("-- / /etc "), "{syncs:?}");
    let ls = tb.host_exec("h1", &["ls", "-A", "/etc/ssl/etcd/etcd"]);
    assert_eq!(
        String::from_utf8_lossy(&ls.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["peer.crt", "peer.key"]
    );
}

#[tokio::test]
async fn shell_uploads_sync_temporaries_before_renames_and_folders_after() {
    let Some(tb) = hosts("shell_uploads_sync_temporaries_before_renames", 1) else {
        return;
    };
    tb.install_executable("/usr/local/bin/sync", SYNC_STAND_IN).unwrap();
    let (session, _) = Session::connect(&tb.spec(0).unwrap()).await.unwrap();
    // over 1 MiB: compared first, then the tar stream and its script
    let files = vec![
        FileSpec::secret("/var/lib/selfhosted/images/a.bin", big(1, 700 << 10)),
        FileSpec::secret("/var/lib/selfhosted/b.bin", big(2, 700 << 10)),
    ];
    session.upload(&files).await.unwrap();
    let syncs = log_lines(&tb, "h1", "/var/log/sync.log");
    assert_eq!(syncs.len(), 2, "{syncs:?}");
    let temps: Vec<&str> = syncs[0].split(' ').skip(1).collect();
    assert_eq!(temps.len(), 2, "{syncs:?}");
    assert!(
        temps[0].starts_with("/var/lib/selfhosted/images/.a.bin.selfhosted-"),
        "{syncs:?}"
    );
    assert!(
        temps[1].starts_with("/var/lib/selfhosted/.b.bin.selfhosted-"),
        "{syncs:?}"
    );
    assert_eq!(
        syncs[1], "-- / /var /var/lib /var/lib/selfhosted /var/lib/selfhosted/images",
        "the folders, and those above them (tar created two)"
    );
    // unchanged: no sync
    session.upload(&files).await.unwrap();
    assert_eq!(log_lines(&tb, "h1", "/var/log/sync.log").len(), 2);

    // a removal syncs the folders it changed, once; removing nothing syncs nothing
    let removed = session
        .remove(&["/var/lib/selfhosted/b.bin", "/var/lib/selfhosted/gone/c.bin"])
        .await
        .unwrap();
    assert_eq!(removed, vec!["/var/lib/selfhosted/b.bin".to_owned()]);
    let syncs = log_lines(&tb, "h1", "/var/log/sync.log");
    assert_eq!(syncs[2..], ["-- /var/lib/selfhosted"], "{syncs:?}");
    session.remove(&["/var/lib/selfhosted/b.bin"]).await.unwrap();
    assert_eq!(log_lines(&tb, "h1", "/var/log/sync.log").len(), 3);
}

/// Uploads `new` over `old` with the second target made a mount point (rename fails with
/// EBUSY), as if the host died between the first and the second rename; checks that every
/// temporary was synced before the first rename and what the host holds, then that a rerun
/// converges and removes the leftovers.
async fn cut_between_two_renames(tb: &Testbed, old: &[FileSpec], new: &[FileSpec]) {
    let spec = tb.spec(0).unwrap();
    let (session, _) = Session::connect(&spec).await.unwrap();
    session.upload(old).await.unwrap();
    let pinned = &old[1].path;
    let out = tb.host_exec("h1", &["mount", "--bind", pinned, pinned]);
    assert!(out.status.success(), "{out:?}");
    log_sftp_server(tb, "h1", "");
    tb.install_executable("/usr/local/bin/sync", SYNC_STAND_IN).unwrap();

    let err = session.upload(new).await.expect_err("the second rename fails");
    assert!(err.to_string().contains("h1"), "{err}");
    // every temporary was on disk before the first rename (SFTP: fsync on its handle; shell:
    // one `sync -- TEMPS…`)
    let sftp = log_lines(tb, "h1", "/var/log/sftp-server.log");
    let syncs = log_lines(tb, "h1", "/var/log/sync.log");
    let first_rename = index_of(&sftp, |l| l.contains("posix-rename old")).unwrap_or(usize::MAX);
    for f in new {
        let (dir, base) = f.path.rsplit_once('/').unwrap();
        let temp = format!("{dir}/.{base}.selfhosted-");
        let by_sftp = index_of(&sftp, |l| l.contains(&format!("fsync \"{temp}"))).is_some_and(|i| i < first_rename);
        let by_sync = syncs.first().is_some_and(|l| l.contains(&temp));
        assert!(
            by_sftp || by_sync,
            "{temp}* not synced before the renames:\n{sftp:#?}\n{syncs:#?}"
        );
    }
    // every target wholly old or wholly new: the first new, the others old
    assert_eq!(read(tb, "h1", &new[0].path).unwrap(), new[0].content, "first renamed");
    for (o, n) in old.iter().zip(new).skip(1) {
        assert_eq!(
            read(tb, "h1", &o.path).unwrap(),
            o.content,
            "{} kept its old content",
            o.path
        );
        // their complete temporaries wait beside them, with owner and mode
        let (dir, base) = n.path.rsplit_once('/').unwrap();
        let found = tb.host_exec(
            "h1",
            &[
                "sh",
                "-c",
                &format!("for t in {dir}/.{base}.selfhosted-*; do stat -c '%U %a' \"$t\"; cat \"$t\"; done"),
            ],
        );
        let mut expected = b"root 600\n".to_vec();
        expected.extend_from_slice(&n.content);
        assert!(
            found.stdout == expected,
            "{}'s temporary: {} bytes",
            n.path,
            found.stdout.len()
        );
    }
    let out = tb.host_exec("h1", &["umount", pinned]);
    assert!(out.status.success(), "{out:?}");

    // the rerun (a fresh connection, as a rerun of the apply) converges
    let (session, _) = Session::connect(&spec).await.unwrap();
    let report = session.upload(new).await.unwrap();
    assert_eq!(report.unchanged, vec![new[0].path.clone()]);
    assert_eq!(
        report.changed,
        new[1..].iter().map(|f| f.path.clone()).collect::<Vec<_>>()
    );
    for f in new {
        assert_eq!(read(tb, "h1", &f.path).unwrap(), f.content, "{}", f.path);
    }
    let (dir, _) = new[0].path.rsplit_once('/').unwrap();
    let ls = tb.host_exec("h1", &["ls", "-A", dir]);
    let mut names: Vec<&str> = new.iter().map(|f| f.path.rsplit_once('/').unwrap().1).collect();
    names.sort_unstable();
    assert_eq!(
        String::from_utf8_lossy(&ls.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        names,
        "leftover temporaries removed"
    );
}

#[tokio::test]
async fn a_crash_between_two_renames_leaves_each_file_old_or_new_sftp() {
    let Some(tb) = hosts("a_crash_between_two_renames_sftp", 1) else {
        return;
    };
    let batch = |tag: &str| {
        vec![
            FileSpec::secret("/etc/ssl/etcd/etcd/peer.crt", format!("{tag} CRT\n")),
            FileSpec::secret("/etc/ssl/etcd/etcd/peer.key", format!("{tag} KEY\n")),
            FileSpec::secret("/etc/ssl/etcd/etcd/server.crt", format!("{tag} SERVER\n")),
        ]
    };
    cut_between_two_renames(&tb, &batch("old"), &batch("new")).await;
}

#[tokio::test]
async fn a_crash_between_two_renames_leaves_each_file_old_or_new_shell() {
    let Some(tb) = hosts("a_crash_between_two_renames_shell", 1) else {
        return;
    };
    // over 1 MiB: the shell path
    let batch = |seed: u8| {
        vec![
            FileSpec::secret("/var/lib/selfhosted/a.bin", big(seed, 600 << 10)),
            FileSpec::secret("/var/lib/selfhosted/b.bin", big(seed + 1, 300 << 10)),
            FileSpec::secret("/var/lib/selfhosted/c.bin", big(seed + 2, 300 << 10)),
        ]
    };
    cut_between_two_renames(&tb, &batch(10), &batch(20)).await;
}
