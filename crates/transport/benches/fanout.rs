//! Fan-out bench: the same 8-file node-secret set (kubeconfig + etcd TLS, as typhoon delivers
//! to a controller) to 1, 10 and 50 test-bed hosts — with this transport, and typhoon's way on
//! the same hosts (`terraform_data` per host, 8 `file` provisioners, 1 `remote-exec` with
//! `sudo mv`). Prints medians and the ratios ours(50)/ours(1) (target ≤ 3) and
//! ours(50)/typhoon(50) (target ≤ 1/3). Needs root (the test bed); skips loudly otherwise.
//!
//! `cargo bench -p selfhosted-transport` (env: `FANOUT_REPS`, default 3; `FANOUT_SIZES`,
//! default `1,10,50`; `FANOUT_SKIP_TERRAFORM=1` to time only ours; `FANOUT_VERBOSE=1` for the
//! connect/total split and the CPU the hosts spent).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use selfhosted_transport::testbed::{Testbed, TestbedParams};
use selfhosted_transport::{CancellationToken, FileSpec, Fleet, HostSpec};

/// (remote path, size in bytes) — sizes like typhoon's rendered assets.
const FILES: [(&str, usize); 8] = [
    ("/etc/kubernetes/kubeconfig", 5600),
    ("/etc/ssl/etcd/etcd-client.crt", 1200),
    ("/etc/ssl/etcd/etcd-client.key", 1700),
    ("/etc/ssl/etcd/etcd/server-ca.crt", 1100),
    ("/etc/ssl/etcd/etcd/server.crt", 1300),
    ("/etc/ssl/etcd/etcd/server.key", 1700),
    ("/etc/ssl/etcd/etcd/peer.crt", 1300),
    ("/etc/ssl/etcd/etcd/peer.key", 1700),
];

fn content(path: &str, len: usize, rep: usize) -> Vec<u8> {
    let head = format!("# {path} rep {rep}\n");
    let mut out = head.into_bytes();
    let mut x: u32 = 2_463_534_242 ^ (rep as u32).wrapping_mul(2_654_435_761);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let c = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(x % 64) as usize];
        out.push(c);
        if out.len() % 65 == 64 {
            out.push(b'\n');
        }
    }
    out
}

fn file_set(rep: usize) -> Vec<FileSpec> {
    FILES
        .iter()
        .map(|(p, n)| FileSpec::secret(*p, content(p, *n, rep)))
        .collect()
}

async fn ours(specs: &[HostSpec], rep: usize) -> Duration {
    let files = file_set(rep);
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let (fleet, _) = Fleet::connect_all(specs, 50, &cancel).await.expect("connect all");
    let connected = started.elapsed();
    let results = fleet
        .for_each(&cancel, |s| {
            let files = files.clone();
            async move { s.upload(&files).await }
        })
        .await
        .expect("not cancelled");
    fleet.close().await;
    let took = started.elapsed();
    if std::env::var_os("FANOUT_VERBOSE").is_some() {
        eprintln!("  {} hosts: connect {connected:?}, total {took:?}", specs.len());
    }
    for (host, r) in results {
        let r = r.unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(r.changed.len(), 8, "{host}: every file is new in each rep");
    }
    took
}

/// Writes typhoon's way as a Terraform config for `hosts`.
fn typhoon_config(dir: &Path, tb: &Testbed, n: usize, rep: usize) {
    let assets = dir.join("assets");
    std::fs::create_dir_all(&assets).expect("assets dir");
    for (p, len) in FILES {
        let name = p.rsplit('/').next().unwrap_or(p);
        let local = if p.contains("/etcd/etcd/") {
            format!("etcd-{name}")
        } else {
            name.to_owned()
        };
        std::fs::write(assets.join(&local), content(p, len, rep)).expect("asset");
    }
    let mut tf = String::new();
    for h in &tb.hosts()[..n] {
        tf.push_str(&format!(
            r#"
resource "terraform_data" "copy_{name}" {{
  connection {{
    type        = "ssh"
    host        = "{addr}"
    user        = "core"
    private_key = file("{key}")
    agent       = false
    timeout     = "15m"
  }}
  provisioner "file" {{
    source      = "assets/kubeconfig"
    destination = "/home/core/kubeconfig"
  }}
  provisioner "file" {{
    source      = "assets/etcd-client.crt"
    destination = "/home/core/etcd-client.crt"
  }}
  provisioner "file" {{
    source      = "assets/etcd-client.key"
    destination = "/home/core/etcd-client.key"
  }}
  provisioner "file" {{
    source      = "assets/etcd-server-ca.crt"
    destination = "/home/core/etcd-server-ca.crt"
  }}
  provisioner "file" {{
    source      = "assets/etcd-server.crt"
    destination = "/home/core/etcd-server.crt"
  }}
  provisioner "file" {{
    source      = "assets/etcd-server.key"
    destination = "/home/core/etcd-server.key"
  }}
  provisioner "file" {{
    source      = "assets/etcd-peer.crt"
    destination = "/home/core/etcd-peer.crt"
  }}
  provisioner "file" {{
    source      = "assets/etcd-peer.key"
    destination = "/home/core/etcd-peer.key"
  }}
  provisioner "remote-exec" {{
    inline = [
      "sudo mkdir -p /etc/ssl/etcd/etcd /etc/kubernetes",
      "sudo mv /home/core/etcd-client* /etc/ssl/etcd/",
      "sudo mv /home/core/etcd-server-ca.crt /etc/ssl/etcd/etcd/server-ca.crt",
      "sudo mv /home/core/etcd-server.crt /etc/ssl/etcd/etcd/server.crt",
      "sudo mv /home/core/etcd-server.key /etc/ssl/etcd/etcd/server.key",
      "sudo mv /home/core/etcd-peer.crt /etc/ssl/etcd/etcd/peer.crt",
      "sudo mv /home/core/etcd-peer.key /etc/ssl/etcd/etcd/peer.key",
      "sudo chown -R root:root /etc/ssl/etcd",
      "sudo chmod -R 500 /etc/ssl/etcd",
      "sudo mv /home/core/kubeconfig /etc/kubernetes/kubeconfig",
    ]
  }}
}}
"#,
            name = h.name,
            addr = h.address,
            key = tb.inventory().key.display(),
        ));
    }
    std::fs::write(dir.join("main.tf"), tf).expect("main.tf");
}

fn terraform(dir: &Path, args: &[&str]) {
    let out = Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", dir.join("cli.tfrc"))
        .env("TF_IN_AUTOMATION", "1")
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("terraform on PATH");
    assert!(
        out.status.success(),
        "terraform {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn typhoon(tb: &Testbed, n: usize, rep: usize) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("cli.tfrc"), "disable_checkpoint = true\n").expect("cli config");
    typhoon_config(dir.path(), tb, n, rep);
    terraform(dir.path(), &["init", "-input=false", "-no-color"]);
    let started = Instant::now();
    terraform(dir.path(), &["apply", "-auto-approve", "-input=false", "-no-color"]);
    started.elapsed()
}

/// CPU seconds the hosts' sshd listeners have reaped from finished children (sshd, shell,
/// sudo, sftp-server, tar…), summed over the first `n` hosts.
fn host_cpu(tb: &Testbed, n: usize) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    tb.hosts()[..n]
        .iter()
        .map(|h| {
            let out = tb.host_exec(&h.name, &["cat", "/proc/1/stat"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let fields: Vec<&str> = text
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            // after the command name: state is field 3; utime 14, stime 15, cutime 16, cstime 17
            let get = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (get(14) + get(15) + get(16) + get(17)) / ticks
        })
        .sum()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let reps: usize = std::env::var("FANOUT_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let sizes: Vec<usize> = std::env::var("FANOUT_SIZES")
        .unwrap_or_else(|_| "1,10,50".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let skip_tf = std::env::var_os("FANOUT_SKIP_TERRAFORM").is_some();
    let verbose = std::env::var_os("FANOUT_VERBOSE").is_some();
    let max = sizes.iter().copied().max().unwrap_or(1);
    let Some(tb) = Testbed::up(
        "bench fanout",
        &TestbedParams {
            count: max,
            ..Default::default()
        },
    )
    .expect("test bed up") else {
        return;
    };
    let specs = tb.specs().expect("specs");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // warm-up: first logins, page cache
    rt.block_on(ours(&specs, 0));

    let mut rows = Vec::new();
    let mut rep_id = 1;
    for &n in &sizes {
        let mut o = Vec::new();
        let mut t = Vec::new();
        for _ in 0..reps {
            rep_id += 1;
            let cpu_before = verbose.then(|| host_cpu(&tb, n));
            o.push(rt.block_on(ours(&specs[..n], rep_id)));
            if let Some(before) = cpu_before {
                // children are reaped a moment after the client disconnects
                std::thread::sleep(Duration::from_millis(300));
                let used = host_cpu(&tb, n) - before;
                eprintln!(
                    "  {n} hosts: host-side CPU {used:.2}s ({:.1} ms per host)",
                    used * 1000.0 / n as f64
                );
            }
            if !skip_tf {
                rep_id += 1;
                let cpu_before = verbose.then(|| host_cpu(&tb, n));
                t.push(typhoon(&tb, n, rep_id));
                if let Some(before) = cpu_before {
                    std::thread::sleep(Duration::from_millis(300));
                    let used = host_cpu(&tb, n) - before;
                    eprintln!(
                        "  {n} hosts (typhoon's way): host-side CPU {used:.2}s ({:.1} ms per host)",
                        used * 1000.0 / n as f64
                    );
                }
            }
        }
        let (om, tm) = (median(o.clone()), (!t.is_empty()).then(|| median(t.clone())));
        println!(
            "fanout {n:>3} hosts x 8 files: ours {:>7.3}s (runs {:?})  typhoon {}",
            om.as_secs_f64(),
            o.iter()
                .map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0)
                .collect::<Vec<_>>(),
            tm.map(|d| format!(
                "{:>7.3}s (runs {:?})",
                d.as_secs_f64(),
                t.iter()
                    .map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0)
                    .collect::<Vec<_>>()
            ))
            .unwrap_or_else(|| "skipped".into()),
        );
        rows.push((n, om, tm));
    }
    let find = |n: usize| rows.iter().find(|r| r.0 == n);
    if let (Some(one), Some(big)) = (find(1), find(max)) {
        println!(
            "ratio ours({max})/ours(1) = {:.2} (target <= 3)",
            big.1.as_secs_f64() / one.1.as_secs_f64()
        );
        if let Some(t) = big.2 {
            println!(
                "ratio ours({max})/typhoon({max}) = {:.3} (target <= 0.333)",
                big.1.as_secs_f64() / t.as_secs_f64()
            );
        }
    }
}
