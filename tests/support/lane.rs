//! The real control-plane lane (`tests/lane`) from a test: test-bed hosts with controller,
//! worker and load-balancer roles, reboots, a client probing the API throughout, and the
//! `kubectl` and `terraform apply` steps the lane tests share.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use selfhosted_cluster::{ApiCredentials, Fingerprint, TlsProbe};
use selfhosted_transport::testbed::{TestHost, Testbed, TestbedParams};

use super::Workspace;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Test-bed hosts with lane roles: controllers (the first runs the bootstrap control plane),
/// workers, and optionally a load balancer host in front of the controllers' apiservers; all
/// roles are taken down on drop.
pub struct Lane {
    pub tb: Testbed,
    /// Host indexes (into `tb.hosts()`) of the controllers, workers, and the load balancer.
    pub controllers: Vec<usize>,
    pub workers: Vec<usize>,
    pub balancer: Option<usize>,
    /// The Kubernetes release the hosts run (`controller.sh`'s `SELFHOSTED_LANE_VERSION`).
    pub version: &'static str,
    /// A release whose control-plane images the hosts also hold, for an upgrade to it
    /// (`SELFHOSTED_LANE_UPGRADE_TO`); the kubelets stay at `version`.
    pub upgrade_to: Option<&'static str>,
    /// The add-on image tarballs of a lane with a real pod network (flannel, kube-proxy,
    /// CoreDNS; `tests/lane/addons.sh`); empty: loopback-only CNI, hostNetwork pods only.
    pub addon_images: Vec<String>,
}

/// The release of the lane's original build (Debian's source package); current releases are
/// built from the Go module proxy by `tests/lane/build-go.sh`.
pub const LANE_V1_20: &str = "v1.20.2";

/// Debian's etcd, which the lane's controllers run unless `/etc/etcd/image.env` names another
/// release (as `registry.k8s.io/etcd:<release>-0`).
pub const LANE_ETCD: &str = "3.4.23";

/// The etcd release an upgrade lane also holds (`tests/lane/build-etcd.sh`): the next minor
/// after [`LANE_ETCD`], which a restart on its data can take.
pub const ETCD_UPGRADE_TO: &str = "v3.5.21";

/// The release the lane tests run unless they name one: `SELFHOSTED_LANE_VERSION`, else the
/// provider's default version (what a user's first apply runs).
pub fn lane_version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        std::env::var("SELFHOSTED_LANE_VERSION").unwrap_or_else(|_| selfhosted_manifests::DEFAULT_VERSION.to_string())
    })
}

/// What a [`Lane::up_with`] brings up.
#[derive(Debug, Clone, Copy)]
pub struct Topology {
    pub controllers: usize,
    /// Workers that get the worker role (their kubelets start once the provider delivers
    /// their kubeconfig).
    pub workers: usize,
    /// A host running HAProxy in front of the controllers (`tests/lane/balancer.sh`), with
    /// HTTPS `/readyz` health checks.
    pub balancer: bool,
}

impl Topology {
    /// One controller and one worker, no load balancer.
    pub const ONE_CONTROLLER_ONE_WORKER: Topology = Topology {
        controllers: 1,
        workers: 1,
        balancer: false,
    };
}

pub fn run_script(script: &str, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> std::process::Output {
    Command::new("bash")
        .envs(env.iter().copied())
        .arg(repo().join(script))
        .args(args.iter().take(1))
        .arg("--dir")
        .arg(dir)
        .args(args.iter().skip(1))
        .output()
        .unwrap_or_else(|e| panic!("{script} runs: {e}"))
}

impl Lane {
    /// One controller.
    pub fn up(test: &str) -> Option<Lane> {
        Self::up_at(test, lane_version())
    }

    /// One controller running Kubernetes `version`.
    pub fn up_at(test: &str, version: &'static str) -> Option<Lane> {
        Self::up_with_version(
            test,
            Topology {
                controllers: 1,
                workers: 0,
                balancer: false,
            },
            version,
        )
    }

    /// The hosts of `topology`, roles up in parallel (controllers share one etcd cluster).
    pub fn up_with(test: &str, topology: Topology) -> Option<Lane> {
        Self::up_with_version(test, topology, lane_version())
    }

    /// As [`Lane::up_with`], the hosts running Kubernetes `version` (built once, cached).
    pub fn up_with_version(test: &str, topology: Topology, version: &'static str) -> Option<Lane> {
        Self::start(test, topology, version, None)
    }

    /// One controller running Kubernetes `from`, holding the control-plane images of `to`.
    pub fn up_for_upgrade(test: &str, from: &'static str, to: &'static str) -> Option<Lane> {
        let one = Topology {
            controllers: 1,
            workers: 0,
            balancer: false,
        };
        Self::up_for_upgrade_with(test, one, from, to)
    }

    /// The hosts of `topology` running Kubernetes `from`, holding the control-plane images of
    /// `to` and the etcd release [`ETCD_UPGRADE_TO`].
    pub fn up_for_upgrade_with(test: &str, topology: Topology, from: &'static str, to: &'static str) -> Option<Lane> {
        Self::start(test, topology, from, Some(to))
    }

    /// The agent's log of the host at `index` (`tests/lane/agent.sh`: one `HH:MM:SS.mmm agent:`
    /// line per thing it does).
    pub fn agent_log(&self, index: usize) -> String {
        let p = self
            .tb
            .dir()
            .join(format!("lane/{}/logs/agent.log", self.at(index).name));
        std::fs::read_to_string(&p).unwrap_or_default()
    }

    /// The hosts of `topology` with a real pod network: no CNI until flannel's DaemonSet
    /// installs its own, and the images of the add-ons the provider deploys by default (plus
    /// the `netcheck` test pod), named as the manifests of `lane_version()` name them.
    pub fn up_with_pod_network(test: &str, topology: Topology) -> Option<Lane> {
        Self::start_with(test, topology, lane_version(), None, true)
    }

    fn start(test: &str, topology: Topology, version: &'static str, upgrade_to: Option<&'static str>) -> Option<Lane> {
        Self::start_with(test, topology, version, upgrade_to, false)
    }

    fn start_with(
        test: &str,
        topology: Topology,
        version: &'static str,
        upgrade_to: Option<&'static str>,
        pod_network: bool,
    ) -> Option<Lane> {
        for v in std::iter::once(version).chain(upgrade_to) {
            let mut build = Command::new("bash");
            if v == LANE_V1_20 {
                build.arg(repo().join("tests/lane/build.sh"));
            } else {
                build.arg(repo().join("tests/lane/build-go.sh")).arg(v);
            }
            let build = build.output().expect("the lane build runs");
            assert!(
                build.status.success(),
                "lane build of {v}: {}",
                String::from_utf8_lossy(&build.stderr)
            );
        }
        let addon_images = if pod_network { addon_images(version) } else { Vec::new() };
        let count = topology.controllers + topology.workers + usize::from(topology.balancer);
        let tb = Testbed::up(
            test,
            &TestbedParams {
                count,
                ..Default::default()
            },
        )
        .unwrap()?;
        let controllers: Vec<usize> = (0..topology.controllers).collect();
        let workers: Vec<usize> = (topology.controllers..topology.controllers + topology.workers).collect();
        let balancer = topology.balancer.then_some(count - 1);
        let lane = Lane {
            tb,
            controllers,
            workers,
            balancer,
            version,
            upgrade_to,
            addon_images,
        };
        let roles: Vec<usize> = lane.controllers.iter().chain(&lane.workers).copied().collect();
        lane.each("up", &roles);
        if let Some(b) = balancer {
            let mut args = vec![
                "up".to_owned(),
                "--host".into(),
                lane.tb.hosts()[b].name.clone(),
                "--check".into(),
                "readyz".into(),
            ];
            for &c in &lane.controllers {
                args.extend(["--backend".into(), lane.tb.hosts()[c].address.clone()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run_script("tests/lane/balancer.sh", &args, lane.tb.dir(), &lane.script_env());
            assert!(
                out.status.success(),
                "balancer up: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Some(lane)
    }

    /// The sandbox image the hosts hold (`controller.sh`'s `PAUSE_IMAGE`), for test pods.
    pub fn pause_image(&self) -> String {
        let role = self.tb.dir().join(format!("lane/{}/role.json", self.host().name));
        let text = std::fs::read_to_string(&role).unwrap_or_else(|e| panic!("{}: {e}", role.display()));
        let v: serde_json::Value = serde_json::from_str(&text).expect("role.json is JSON");
        v["pause_image"]
            .as_str()
            .expect("role.json names the pause image")
            .to_owned()
    }

    /// What the lane scripts read of this lane from their environment.
    fn script_env(&self) -> Vec<(&'static str, &'static str)> {
        let mut env = vec![("SELFHOSTED_LANE_VERSION", self.version)];
        env.extend(self.upgrade_to.map(|to| ("SELFHOSTED_LANE_UPGRADE_TO", to)));
        // An upgrade's etcd moves too: from Debian's to this release's binary.
        env.extend(
            self.upgrade_to
                .map(|_| ("SELFHOSTED_LANE_ETCD_RELEASES", ETCD_UPGRADE_TO)),
        );
        env
    }

    /// The first controller (it runs the bootstrap control plane).
    pub fn host(&self) -> &TestHost {
        &self.tb.hosts()[self.controllers[0]]
    }

    /// Where clients reach the API: the load balancer, else the first controller.
    pub fn api_address(&self) -> &str {
        &self.tb.hosts()[self.balancer.unwrap_or(self.controllers[0])].address
    }

    /// The test-bed host at `index`.
    pub fn at(&self, index: usize) -> &TestHost {
        &self.tb.hosts()[index]
    }

    /// `ls -A DIR` on the first controller.
    pub fn ls(&self, dir: &str) -> String {
        self.ls_at(self.controllers[0], dir)
    }

    /// `ls -A DIR` on the host at `index` (empty when there is no such folder).
    pub fn ls_at(&self, index: usize, dir: &str) -> String {
        let out = self.tb.host_exec(&self.at(index).name, &["ls", "-A", dir]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The tails of the kubelet and agent logs of every host with a role.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for &i in self.controllers.iter().chain(&self.workers) {
            let name = &self.tb.hosts()[i].name;
            for f in ["kubelet", "agent"] {
                let p = self.tb.dir().join(format!("lane/{name}/logs/{f}.log"));
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                out.push_str(&format!(
                    "--- {name} {f}.log\n{}\n",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
        }
        out
    }
}

/// How long a reboot took to bring the API back.
pub struct Rebooted {
    /// `controller.sh up` returned (the kubelet starts then) → any apiserver answers `/readyz`.
    pub any: Duration,
    /// → the self-hosted apiserver answers `/readyz` on the host address by itself.
    pub self_hosted: Duration,
}

impl Lane {
    /// `controller.sh COMMAND` for the first controller (`up` with its role's arguments).
    pub fn controller_sh(&self, command: &str) {
        self.role_sh(command, self.controllers[0]);
    }

    /// `controller.sh COMMAND` for the host at `index`, with its role's arguments for `up`.
    fn role_sh(&self, command: &str, index: usize) {
        let name = self.at(index).name.clone();
        let (command, graceful) = match command.strip_suffix(" --graceful") {
            Some(c) => (c, true),
            None => (command, false),
        };
        let mut args = vec![command.to_owned(), "--host".into(), name.clone()];
        if command == "up" {
            args.extend(self.role_args(index));
        }
        if graceful {
            args.push("--graceful".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_script("tests/lane/controller.sh", &args, self.tb.dir(), &self.script_env());
        assert!(
            out.status.success(),
            "{name} {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The role arguments of `controller.sh up` for the host at `index`. A controller runs
    /// etcd with the node contract's settings for its member (`node.etcd_env`, rendered here
    /// for `etcd_servers` = the controllers' addresses), as a host booting from the contract's
    /// Ignition would.
    fn role_args(&self, index: usize) -> Vec<String> {
        let mut args = Vec::new();
        if !self.addon_images.is_empty() {
            args.extend(["--network".into(), "flannel".into()]);
            for t in &self.addon_images {
                args.extend(["--image".into(), t.clone()]);
            }
        }
        let Some(member) = self.controllers.iter().position(|&i| i == index) else {
            args.extend(["--role".into(), "worker".into()]);
            return args;
        };
        let env = self.etcd_env(&self.controllers, member);
        let file = self.tb.dir().join(format!("etcd-{}.env", self.at(index).name));
        std::fs::write(&file, env).expect("write etcd.env");
        args.extend([
            "--etcd-env".into(),
            file.display().to_string(),
            "--role".into(),
            "controller".into(),
        ]);
        args
    }

    /// The node contract's `etcd.env` of the `member`-th of `controllers` (lane indexes), for
    /// `etcd_servers` = their addresses.
    fn etcd_env(&self, controllers: &[usize], member: usize) -> String {
        let addresses: Vec<String> = controllers.iter().map(|&i| self.at(i).address.clone()).collect();
        let params = selfhosted_manifests::parse_params(&selfhosted_manifests::RawParams {
            cluster_name: "lane".into(),
            api_servers: vec![addresses[0].clone()],
            controller_count: addresses.len(),
            etcd_servers: addresses,
            ..Default::default()
        })
        .expect("the lane's addresses are valid etcd_servers");
        selfhosted_manifests::host::etcd::env(&params, member).expect("a member's settings")
    }

    /// Gives the first controller the `etcd.env` of a cluster of one, as a controller booted
    /// when it was the only one (`etcd_servers` = its address alone): the cluster starts with
    /// one controller and grows. Before its etcd ever ran.
    pub fn boot_first_controller_alone(&self) {
        let first = self.controllers[0];
        let env = self.etcd_env(&[first], 0);
        let name = &self.at(first).name;
        let out = self
            .tb
            .host_exec(name, &["sh", "-c", "printf %s \"$1\" > /etc/etcd/etcd.env", "sh", &env]);
        assert!(
            out.status.success(),
            "etcd.env on {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Powers the hosts at `indexes` off together (every process and container killed at
    /// once, disk kept), then boots them together; returns when their agents run again.
    pub fn power_cycle(&self, indexes: &[usize]) {
        self.each("down", indexes);
        self.each("up", indexes);
    }

    /// As [`Lane::power_cycle`], but shut down as an OS reboot does: containers get SIGTERM and
    /// time to finish (an apiserver drains its requests) before anything is killed.
    /// The hosts at `indexes` lose power and never come back (a terminated instance).
    pub fn power_off(&self, indexes: &[usize]) {
        self.each("down", indexes);
    }

    pub fn os_reboot(&self, indexes: &[usize]) {
        self.each("down --graceful", indexes);
        self.each("up", indexes);
    }

    /// The host at `index` loses its disk and boots blank, as a replaced machine under the same
    /// name and address does: powered off; its etcd data, kubelet state and everything the
    /// provider delivered (node secrets, recovery files and static Pods, the state folder)
    /// removed; booted from its "OS image" again (an `etcd.env` for a new cluster, as Ignition
    /// writes it on a first boot). Its SSH host key stays (see [`Lane::new_host_key`]).
    pub fn lose_disk(&self, index: usize) {
        self.each("down", &[index]);
        let name = &self.at(index).name;
        let data = self.tb.dir().join("lane").join(name).join("data");
        for d in ["etcd", "kubelet"] {
            let dir = data.join(d);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("remove {}: {e}", dir.display()));
            }
        }
        let out = self.tb.host_exec(
            name,
            &[
                "sh",
                "-c",
                "rm -rf /etc/kubernetes/kubeconfig /etc/kubernetes/ca.crt /etc/kubernetes/recovery-secrets \
                 /etc/kubernetes/manifests/* /etc/ssl/etcd/* /var/lib/selfhosted",
            ],
        );
        assert!(
            out.status.success(),
            "wipe {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.each("up", &[index]);
    }

    /// The host at `index` gets a new SSH host key, as a new machine in its place has;
    /// [`Lane::at`] names the new key.
    pub fn new_host_key(&mut self, index: usize) {
        let name = self.at(index).name.clone();
        self.tb
            .rekey(&name)
            .unwrap_or_else(|e| panic!("a new host key for {name}: {e}"));
    }

    /// Stops the etcd member of the controller at `index` and keeps it stopped (the agent's
    /// `systemctl stop etcd-member`); returns once no etcd process runs there.
    pub fn stop_etcd(&self, index: usize) {
        let name = &self.at(index).name;
        self.tb.host_exec(name, &["touch", "/run/selfhosted-lane/etcd.stopped"]);
        eventually(
            Duration::from_secs(30),
            &format!("etcd stopped on {name}"),
            || match self.etcd_pids(index) {
                p if p.is_empty() => Ok(()),
                p => Err(format!("etcd still runs: {p}")),
            },
        );
    }

    /// Starts the etcd member stopped by [`Lane::stop_etcd`]; returns once it reports healthy
    /// (`etcdctl endpoint health` on its own endpoint, with the host's client certificate).
    pub fn start_etcd(&self, index: usize) {
        let host = self.at(index);
        self.tb
            .host_exec(&host.name, &["rm", "-f", "/run/selfhosted-lane/etcd.stopped"]);
        eventually(
            Duration::from_secs(60),
            &format!("etcd healthy on {}", host.name),
            || {
                let out = self.etcdctl_output(index, &["endpoint", "health"]);
                if out.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ))
                }
            },
        );
    }

    /// `etcdctl ARGS` on the controller at `index`, against its own member, with the client
    /// certificate the provider delivered there.
    fn etcdctl_output(&self, index: usize, args: &[&str]) -> std::process::Output {
        let endpoint = format!("https://{}:2379", self.at(index).address);
        self.etcdctl_at(index, &endpoint, args)
    }

    /// `etcdctl ARGS` run on the controller at `index` against the member at `endpoint`.
    pub fn etcdctl_at(&self, index: usize, endpoint: &str, args: &[&str]) -> std::process::Output {
        let host = self.at(index);
        let mut all = vec![
            "env",
            "ETCDCTL_API=3",
            "etcdctl",
            "--endpoints",
            endpoint,
            "--cacert",
            "/etc/ssl/etcd/etcd-client-ca.crt",
            "--cert",
            "/etc/ssl/etcd/etcd-client.crt",
            "--key",
            "/etc/ssl/etcd/etcd-client.key",
        ];
        all.extend(args);
        self.tb.host_exec(&host.name, &all)
    }

    /// [`Lane::etcdctl_output`]'s standard output; panics when etcdctl fails.
    pub fn etcdctl(&self, index: usize, args: &[&str]) -> String {
        let out = self.etcdctl_output(index, args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} on {}: {}{}",
            self.at(index).name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The etcd processes running on the host at `index` (empty: none).
    pub fn etcd_pids(&self, index: usize) -> String {
        let out = self.tb.host_exec(&self.at(index).name, &["pgrep", "-x", "etcd"]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `controller.sh COMMAND` for the hosts at `indexes`, in parallel.
    fn each(&self, command: &str, indexes: &[usize]) {
        std::thread::scope(|s| {
            let jobs: Vec<_> = indexes
                .iter()
                .map(|&i| s.spawn(move || self.role_sh(command, i)))
                .collect();
            for j in jobs {
                j.join().expect("controller.sh");
            }
        });
    }

    /// Powers the first controller off and on; then waits until the self-hosted apiserver
    /// (`self_hosted`) answers on its address by itself, as a client sees it.
    pub fn reboot(&self, assets: &Path, self_hosted: &Fingerprint, within: Duration) -> Rebooted {
        self.power_cycle(&[self.controllers[0]]);
        self.await_self_hosted(assets, &self.host().address, self_hosted, Instant::now(), within)
    }

    /// Waits until `self_hosted` answers `/readyz` at `address` (times counted from `booted`).
    pub fn await_self_hosted(
        &self,
        assets: &Path,
        address: &str,
        self_hosted: &Fingerprint,
        booted: Instant,
        within: Duration,
    ) -> Rebooted {
        let probe = api_probe(assets, address);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut any = None;
        let mut last = String::new();
        while booted.elapsed() < within {
            let answer =
                rt.block_on(async { tokio::time::timeout(Duration::from_secs(3), probe.get("/readyz")).await });
            match answer {
                Ok(Ok(a)) if a.is_ready() => {
                    any.get_or_insert(booted.elapsed());
                    if &a.fingerprint == self_hosted {
                        return Rebooted {
                            any: any.unwrap_or_default(),
                            self_hosted: booted.elapsed(),
                        };
                    }
                    last = format!("{} answered (not the self-hosted apiserver)", a.fingerprint);
                }
                Ok(Ok(a)) => last = format!("{} answered {} {:?}", a.fingerprint, a.status, a.body),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "no answer within 3 s".into(),
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "the self-hosted apiserver did not answer at {address} within {within:?} of the boot (any apiserver after {any:?}); last: {last}\n{}\n{}",
            self.logs(),
            self.pod_logs("kube-apiserver-recovery")
        );
    }

    /// The last lines of each container log of the pods whose name starts with `prefix`.
    pub fn pod_logs(&self, prefix: &str) -> String {
        let dir = self.tb.dir().join(format!("lane/{}/pod-logs", self.host().name));
        let mut out = String::new();
        let Ok(pods) = std::fs::read_dir(&dir) else { return out };
        for pod in pods.flatten() {
            if !pod
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("kube-system_{prefix}"))
            {
                continue;
            }
            for container in std::fs::read_dir(pod.path()).into_iter().flatten().flatten() {
                for log in std::fs::read_dir(container.path()).into_iter().flatten().flatten() {
                    let text = std::fs::read_to_string(log.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(12).collect();
                    out.push_str(&format!(
                        "--- {}\n{}\n",
                        log.path().display(),
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    ));
                }
            }
        }
        out
    }
}

/// The image the lane's network test pods run (`tests/lane/netcheck`).
pub const NETCHECK_IMAGE: &str = "selfhosted.test/netcheck:latest";

/// Builds (once, cached) the images of the add-ons the provider deploys by default at
/// `version`, named as its manifests name them, and the netcheck image; their tarballs.
fn addon_images(version: &str) -> Vec<String> {
    use selfhosted_manifests::{images::image, Component};
    let params = selfhosted_manifests::parse_params(&selfhosted_manifests::RawParams {
        kubernetes_version: Some(version.to_owned()),
        cluster_name: "lane".into(),
        api_servers: vec!["10.0.0.1".into()],
        etcd_servers: vec!["10.0.0.1".into()],
        ..Default::default()
    })
    .expect("the lane's version renders");
    let mut refs: Vec<String> = [
        Component::KubeProxy,
        Component::Flannel,
        Component::FlannelCniPlugin,
        Component::Coredns,
    ]
    .into_iter()
    .map(|c| image(&params, c))
    .collect();
    refs.push(NETCHECK_IMAGE.into());
    let out = Command::new("bash")
        .arg(repo().join("tests/lane/addons.sh"))
        .args(&refs)
        .output()
        .expect("addons.sh runs");
    assert!(
        out.status.success(),
        "add-on images {refs:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    let tars: Vec<String> = listed
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, tar)| tar.to_owned()))
        .collect();
    assert_eq!(tars.len(), refs.len(), "one tarball per image: {listed}");
    tars
}

/// A TLS client of the API as the admin, from the assets on disk.
pub fn api_probe(assets: &Path, addr: &str) -> TlsProbe {
    let read = |p: &str| std::fs::read_to_string(assets.join(p)).unwrap();
    let creds = ApiCredentials {
        ca_pem: read("tls/ca.crt"),
        client_cert_pem: read("tls/admin.crt"),
        client_key_pem: read("tls/admin.key"),
    };
    TlsProbe::new(&creds, addr, 6443, "kubernetes").unwrap()
}

impl Drop for Lane {
    fn drop(&mut self) {
        let _ = run_script("tests/lane/controller.sh", &["down"], self.tb.dir(), &self.script_env());
    }
}

/// A real API request, what a client sees (where `/readyz` also fails while an apiserver starts).
pub const API_REQUEST: &str = "/api/v1/namespaces/kube-system";

/// One probe answer: when, and which certificate served a good `/readyz` (Err: what failed).
pub type Sample = (Instant, Result<Fingerprint, String>);

/// Probes the apiserver every 50 ms on fresh TLS connections until stopped.
pub struct Prober {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Prober {
    /// Asks `/readyz` (a good answer: `200 ok`) or, with `path`, a real API request (a good
    /// answer: `200`).
    pub fn start(assets: &Path, addr: &str, path: Option<&'static str>) -> Prober {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st, assets, addr) = (samples.clone(), stop.clone(), assets.to_owned(), addr.to_owned());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut probe: Option<TlsProbe> = None;
            while !st.load(Ordering::Relaxed) {
                if probe.is_none() {
                    // The assets appear on disk once the assets resource is applied.
                    let read = |p: &str| std::fs::read_to_string(assets.join(p)).ok();
                    if let (Some(ca), Some(cert), Some(key)) =
                        (read("tls/ca.crt"), read("tls/admin.crt"), read("tls/admin.key"))
                    {
                        let creds = ApiCredentials {
                            ca_pem: ca,
                            client_cert_pem: cert,
                            client_key_pem: key,
                        };
                        probe = TlsProbe::new(&creds, &addr, 6443, "kubernetes").ok();
                    }
                }
                if let Some(p) = &probe {
                    let answer = rt.block_on(async {
                        tokio::time::timeout(Duration::from_secs(3), p.get(path.unwrap_or("/readyz"))).await
                    });
                    let good = |a: &selfhosted_cluster::Answer| match path {
                        None => a.is_ready(),
                        Some(_) => a.status == 200,
                    };
                    let fp = match answer {
                        Ok(Ok(a)) if good(&a) => Ok(a.fingerprint),
                        Ok(Ok(a)) => Err(format!("{} answered {} {:?}", a.fingerprint, a.status, a.body)),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("no answer within 3 s".to_owned()),
                    };
                    s.lock().unwrap().push((Instant::now(), fp));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Prober {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.samples.lock().unwrap())
    }
}

/// `terraform apply` that must succeed; on failure, terraform's output and the lane's logs.
pub fn apply_ok(ws: &Workspace, lane: &Lane, what: &str) {
    apply_ok_with(ws, lane, what, &[]);
}

/// As [`apply_ok`], with extra environment variables for terraform and the provider.
pub fn apply_ok_with(ws: &Workspace, lane: &Lane, what: &str, env: &[(&str, &str)]) {
    apply_args_ok(ws, lane, what, &[], env);
}

/// As [`apply_ok_with`], with more arguments for `terraform apply` (e.g. `-replace=…`).
pub fn apply_args_ok(ws: &Workspace, lane: &Lane, what: &str, args: &[&str], env: &[(&str, &str)]) {
    let mut all = vec!["apply", "-auto-approve", "-input=false"];
    all.extend_from_slice(args);
    let out = ws.run_with(&all, env);
    assert!(
        out.status.success(),
        "{what}:\n{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        lane.logs()
    );
}

/// `terraform apply`, which must succeed, while a [`Prober`] asks `path` (see
/// [`Prober::start`]) and for `linger` after it; the apply's duration and the answers.
pub fn apply_while_probing(
    ws: &Workspace,
    lane: &Lane,
    what: &str,
    path: Option<&'static str>,
    linger: Duration,
) -> (Duration, Vec<Sample>) {
    let prober = Prober::start(&ws.path().join("assets"), lane.api_address(), path);
    let started = Instant::now();
    let out = ws.run(&["apply", "-auto-approve", "-input=false"]);
    let took = started.elapsed();
    std::thread::sleep(linger);
    let samples = prober.finish();
    assert!(
        out.status.success(),
        "{what} failed after {took:?}:\n{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        lane.logs()
    );
    (took, samples)
}

/// The names of the apiserver DaemonSets (one per generation), space-separated.
pub fn apiserver_generations(kubeconfig: &Path) -> String {
    kubectl(kubeconfig, &GENERATIONS)
}

/// `kubectl` arguments listing the apiserver generation DaemonSets' names.
const GENERATIONS: [&str; 8] = [
    "-n",
    "kube-system",
    "get",
    "daemonsets",
    "-l",
    "k8s-app=kube-apiserver",
    "-o",
    "jsonpath={.items[*].metadata.name}",
];

/// As [`apiserver_generations`], but empty instead of a panic when the API does not answer
/// within 2 s (for polling while an apply changes things).
pub fn apiserver_generations_now(kubeconfig: &Path) -> String {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=2s")
        .args(GENERATIONS)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Asserts that one apiserver generation, other than `before`, runs now, with `flag` among
/// its arguments; returns its name.
pub fn assert_one_new_generation(kubeconfig: &Path, before: &str, flag: &str) -> String {
    let after = apiserver_generations(kubeconfig);
    assert!(
        !after.contains(' ') && !after.is_empty() && after != before,
        "one new apiserver generation replaced the old: {before} → {after}"
    );
    let args = kubectl(
        kubeconfig,
        &[
            "-n",
            "kube-system",
            "get",
            "pods",
            "-l",
            "k8s-app=kube-apiserver",
            "-o",
            "jsonpath={.items[*].spec.containers[0].args}",
        ],
    );
    assert!(args.contains(flag), "the running apiserver has {flag}: {args}");
    after
}

pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    kubectl_result(kubeconfig, args).unwrap_or_else(|e| panic!("{e}"))
}

/// [`kubectl`]'s output, or what it said when it failed (the API may be changing hands).
pub fn kubectl_result(kubeconfig: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// `jsonpath` of the kube-system pods `selector` picks (and `more` arguments of `kubectl get`).
pub fn kube_system_pods(kubeconfig: &Path, selector: &str, more: &[&str], jsonpath: &str) -> String {
    kube_system_pods_result(kubeconfig, selector, more, jsonpath).unwrap_or_else(|e| panic!("{e}"))
}

/// [`kube_system_pods`], or what kubectl said when it failed (the API may be changing hands).
pub fn kube_system_pods_result(
    kubeconfig: &Path,
    selector: &str,
    more: &[&str],
    jsonpath: &str,
) -> Result<String, String> {
    let jsonpath = format!("jsonpath={jsonpath}");
    let mut args = vec!["-n", "kube-system", "get", "pods", "-l", selector];
    args.extend_from_slice(more);
    args.extend(["-o", jsonpath.as_str()]);
    kubectl_result(kubeconfig, &args)
}

/// The name of the generation of every running self-hosted apiserver pod, space-separated.
pub fn running_apiserver_generations(kubeconfig: &Path) -> String {
    kube_system_pods(
        kubeconfig,
        "k8s-app=kube-apiserver",
        &["--field-selector=status.phase=Running"],
        "{.items[*].metadata.labels.app\\.kubernetes\\.io/instance}",
    )
}

/// Who holds the leader lease `lease` in kube-system.
pub fn lease_holder(kubeconfig: &Path, lease: &str) -> String {
    kubectl(
        kubeconfig,
        &[
            "-n",
            "kube-system",
            "get",
            "lease",
            lease,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
    )
}

/// Waits until `check` holds (polling every second) or panics with `what` after `within`.
pub fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let started = Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(last) if started.elapsed() > within => panic!("{what} within {within:?}; last: {last}"),
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

/// The Terraform configuration of a lane test: the lane's controllers (all of them etcd
/// members, the first or the load balancer as `api_servers`), the chosen workers, networking
/// off (loopback-only CNI) unless [`LaneConfig::pod_network`], and extra lines in the assets.
pub struct LaneConfig<'a> {
    lane: &'a Lane,
    version: &'a str,
    controllers: &'a [usize],
    workers: &'a [usize],
    pod_network: bool,
    assets: &'a str,
    bootstrap: &'a str,
    timeouts: &'a str,
}

impl<'a> LaneConfig<'a> {
    pub fn new(lane: &'a Lane) -> Self {
        LaneConfig {
            lane,
            version: lane.version,
            controllers: &lane.controllers,
            workers: &[],
            pod_network: false,
            assets: "",
            bootstrap: "",
            timeouts: "create = \"8m\"",
        }
    }

    /// The cluster's `kubernetes_version` (default: the lane's).
    pub fn version(mut self, version: &'a str) -> Self {
        self.version = version;
        self
    }

    /// The lane's controllers (indexes) in `controllers` and `etcd_servers` (default: all).
    pub fn controllers(mut self, controllers: &'a [usize]) -> Self {
        self.controllers = controllers;
        self
    }

    /// The hosts (lane indexes) that join as workers.
    pub fn workers(mut self, workers: &'a [usize]) -> Self {
        self.workers = workers;
        self
    }

    /// networking, kube_proxy and coredns at their defaults (flannel, on, on), for a lane
    /// built with [`Lane::up_with_pod_network`].
    pub fn pod_network(mut self) -> Self {
        self.pod_network = true;
        self
    }

    /// Lines added to `selfhosted_cluster_assets`.
    pub fn assets(mut self, lines: &'a str) -> Self {
        self.assets = lines;
        self
    }

    /// Lines added to `selfhosted_bootstrap`.
    pub fn bootstrap(mut self, lines: &'a str) -> Self {
        self.bootstrap = lines;
        self
    }

    /// The body of the bootstrap's `timeouts` (default `create = "8m"`).
    pub fn timeouts(mut self, timeouts: &'a str) -> Self {
        self.timeouts = timeouts;
        self
    }

    pub fn hcl(&self) -> String {
        let lane = self.lane;
        let host = |i: &usize| {
            let h = lane.at(*i);
            format!(
                "{{ name = \"{}\", address = \"{}\", host_key = \"{}\" }}",
                h.name,
                h.address,
                h.host_key.trim()
            )
        };
        let list = |hosts: &[usize]| hosts.iter().map(host).collect::<Vec<_>>().join(",\n    ");
        let etcd = self
            .controllers
            .iter()
            .map(|i| format!("\"{}\"", lane.at(*i).address))
            .collect::<Vec<_>>()
            .join(", ");
        let networking = if self.pod_network {
            // The test bed's hosts are network namespaces (as kind's nodes are): nf_conntrack_max
            // is the machine's, and kube-proxy may not set it from one. A host of its own
            // leaves this out.
            "  # networking, kube_proxy and coredns at their defaults: flannel, on, on\n  extra_flags = { kube_proxy = [\"--conntrack-max-per-core=0\"] }"
        } else {
            "  networking         = \"none\"\n  kube_proxy         = false\n  coredns            = false"
        };
        format!(
            r#"
terraform {{
  required_providers {{
    selfhosted = {{ source = "selfhosted/selfhosted" }}
  }}
}}

resource "selfhosted_cluster_assets" "lane" {{
  cluster_name       = "lane"
  api_servers        = ["{api}"]
  etcd_servers       = [{etcd}]
  kubernetes_version = "{version}"
{networking}
  asset_dir          = "${{path.module}}/assets"
{extra}
}}

resource "selfhosted_bootstrap" "lane" {{
  assets      = selfhosted_cluster_assets.lane.assets
  controllers = [
    {controllers}
  ]
  workers = [
    {workers}
  ]
  ssh = {{
    user        = "core"
    private_key = file("{key_file}")
  }}
{bootstrap}
  timeouts = {{ {timeouts} }}
}}
"#,
            api = lane.api_address(),
            version = self.version,
            controllers = list(self.controllers),
            workers = list(self.workers),
            extra = self.assets,
            bootstrap = self.bootstrap,
            timeouts = self.timeouts,
            key_file = lane.tb.inventory().key.display(),
        )
    }
}
