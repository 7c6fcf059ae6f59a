//! systemd units of the contract. Each service waits for a file the provider delivers
//! (a path unit starts it when the file appears), so hosts can boot before
//! `selfhosted_bootstrap` reaches them, and a service never starts on half a configuration.

use super::etcd::{ETCD_ENV_PATH, ETCD_IMAGE_ENV_PATH, ETCD_SERVER_CERT};
use super::HostOs;
use crate::kubelet::{BOOTSTRAP_KUBECONFIG, KUBELET_KUBECONFIG};

/// Where the contract's containerd configuration goes (Fedora CoreOS and Flatcar).
pub const CONTAINERD_CONFIG_PATH: &str = "/etc/containerd/config.toml";
/// Flatcar's containerd reads its configuration from `CONTAINERD_CONFIG`: this drop-in
/// points it at [`CONTAINERD_CONFIG_PATH`].
pub const CONTAINERD_DROP_IN: &str = "10-selfhosted-config.conf";

/// A host's own kubelet settings, read by the kubelet's service if the file exists (the
/// contract never writes it): `KUBELET_EXTRA_ARGS`, flags added after the contract's (a
/// worker pool's `--node-labels` and `--register-with-taints`), and, where the kubelet runs
/// from an image, `KUBELET_IMAGE`, which replaces the image the contract names: a host's
/// kubelet moves to another version by this file and a restart, without a new machine.
pub const KUBELET_ENV_PATH: &str = "/etc/kubernetes/kubelet.env";

/// The image a rendered kubelet service runs (`KUBELET_IMAGE`), `None` on a generic host,
/// whose kubelet is a binary the host provides.
pub fn kubelet_image_of(unit: &str) -> Option<&str> {
    unit.lines().find_map(|l| l.strip_prefix("Environment=KUBELET_IMAGE="))
}

/// The image a rendered etcd service runs (`ETCD_IMAGE`), `None` on a generic host, whose
/// etcd is a binary the host provides.
pub fn etcd_image_of(unit: &str) -> Option<&str> {
    unit.lines().find_map(|l| l.strip_prefix("Environment=ETCD_IMAGE="))
}

/// The etcd release an image's tag names (`registry.k8s.io/etcd:3.6.6-0` → `3.6.6`, as etcd
/// reports its version), if its tag is one.
pub fn etcd_image_release(image: &str) -> Option<String> {
    let name = image.split('@').next()?;
    let (_, tag) = name.rsplit_once(':').filter(|(_, t)| !t.contains('/'))?;
    let core = tag.strip_prefix('v').unwrap_or(tag);
    // Only the image's own revision (`-0`) goes; a pre-release (`-rc.1`) is no release etcd
    // reports as `X.Y.Z`.
    let core = match core.split_once('-') {
        Some((c, rev)) if !rev.is_empty() && rev.bytes().all(|b| b.is_ascii_digit()) => c,
        Some(_) => return None,
        None => core,
    };
    let parts: Vec<&str> = core.split('.').collect();
    (parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
    .then(|| core.to_owned())
}

/// The release an image's tag names (`quay.io/poseidon/kubelet:v1.35.4` → `v1.35.4`), if its
/// tag is one.
pub fn image_release(image: &str) -> Option<&str> {
    let name = image.split('@').next()?;
    let (_, tag) = name.rsplit_once(':').filter(|(_, t)| !t.contains('/'))?;
    crate::versions::release_minor(tag).map(|_| tag)
}

/// A shell command (run as root) that moves a controller's etcd to `image`: it sets
/// `ETCD_IMAGE` in [`ETCD_IMAGE_ENV_PATH`] and restarts etcd, which comes back on the same
/// data under the new release.
pub fn etcd_image_switch(image: &str) -> String {
    image_switch(ETCD_IMAGE_ENV_PATH, "ETCD_IMAGE", image, "etcd-member.service")
}

/// A shell command (run as root) that moves a host's kubelet to `image`: it sets
/// `KUBELET_IMAGE` in [`KUBELET_ENV_PATH`] and restarts the kubelet, whose running containers
/// carry on.
pub fn kubelet_image_switch(image: &str) -> String {
    image_switch(KUBELET_ENV_PATH, "KUBELET_IMAGE", image, "kubelet.service")
}

/// Sets `key=image` in the env file `path` (written anew beside it and renamed over it; the
/// host's other lines kept), then restarts `unit`.
fn image_switch(path: &str, key: &str, image: &str, unit: &str) -> String {
    let quoted = format!("'{}'", image.replace('\'', r"'\''"));
    format!(
        "set -e; f={path}; mkdir -p \"$(dirname \"$f\")\"; \
         {{ grep -v '^{key}=' \"$f\" 2>/dev/null || true; printf '{key}=%s\\n' {quoted}; }} > \"$f.new\"; \
         chmod 0644 \"$f.new\"; sync \"$f.new\" 2>/dev/null || true; mv -f \"$f.new\" \"$f\"; \
         systemctl restart {unit}"
    )
}

/// Folders the kubelet needs before it starts.
const KUBELET_DIRS: &str = "/etc/kubernetes/manifests /var/lib/kubelet/volumeplugins /var/log/pods";

/// Host folders a containerised kubelet sees at the same paths (`source:target[:options]`).
fn kubelet_volumes(os: HostOs) -> Vec<String> {
    let os_release = match os {
        HostOs::FedoraCoreos => "/usr/lib/os-release:/etc/os-release:ro",
        _ => "/etc/os-release:/etc/os-release:ro",
    };
    let mut v = vec![
        "/etc/kubernetes:/etc/kubernetes:ro",
        "/etc/machine-id:/etc/machine-id:ro",
        os_release,
        "/lib/modules:/lib/modules:ro",
        "/run:/run",
        "/sys/fs/cgroup:/sys/fs/cgroup",
        "/var/lib/kubelet:/var/lib/kubelet:rshared",
        "/var/log:/var/log",
        "/etc/cni/net.d:/etc/cni/net.d:ro",
        "/opt/cni/bin:/opt/cni/bin",
    ];
    if os == HostOs::FedoraCoreos {
        v.extend(["/etc/selinux:/etc/selinux", "/sys/fs/selinux:/sys/fs/selinux"]);
    }
    v.into_iter().map(String::from).collect()
}

/// The host's extra kubelet flags: `$VAR` (not `${VAR}`) splits into words, and is no word
/// at all when unset.
const EXTRA_ARGS: &str = "$KUBELET_EXTRA_ARGS";

fn continued(out: &mut String, args: impl IntoIterator<Item = String>) {
    for a in args {
        out.push_str(" \\\n  ");
        out.push_str(&a);
    }
}

/// `engine run` of `image` as the container `name`, in the host's namespaces `options` name.
fn container_run(engine: &str, name: &str, options: &[String], volumes: &[String], image: &str) -> String {
    let mut s = format!("{engine} run --rm --name {name}");
    continued(
        &mut s,
        options
            .iter()
            .cloned()
            .chain(volumes.iter().map(|v| format!("--volume {v}")))
            .chain([image.to_owned()]),
    );
    s
}

/// The kubelet's service: `/usr/bin/kubelet` on a generic host, the kubelet image under the
/// OS's container engine elsewhere.
pub fn kubelet(os: HostOs, image: &str, flags: &[String]) -> String {
    let mut s = String::from(
        "[Unit]\nDescription=Kubelet (terraform-provider-selfhosted contract)\nWants=containerd.service\nAfter=containerd.service\n",
    );
    s.push_str(&format!("ConditionPathExists={BOOTSTRAP_KUBECONFIG}\n\n[Service]\n"));
    if os.container_engine().is_some() {
        s.push_str(&format!("Environment=KUBELET_IMAGE={image}\n"));
    }
    s.push_str(&format!("EnvironmentFile=-{KUBELET_ENV_PATH}\n"));
    s.push_str(&format!(
        "ExecStartPre=/bin/mkdir -p {KUBELET_DIRS} /etc/cni/net.d /opt/cni/bin\n"
    ));
    match os.container_engine() {
        None => {
            s.push_str("ExecStart=/usr/bin/kubelet");
            continued(&mut s, flags.iter().cloned().chain([EXTRA_ARGS.to_owned()]));
            s.push('\n');
        }
        Some(engine) => {
            s.push_str(&format!("ExecStartPre=-{engine} rm --force kubelet\nExecStart="));
            let options = ["--privileged", "--pid host", "--network host"].map(String::from);
            s.push_str(&container_run(
                engine,
                "kubelet",
                &options,
                &kubelet_volumes(os),
                "${KUBELET_IMAGE}",
            ));
            continued(&mut s, flags.iter().cloned().chain([EXTRA_ARGS.to_owned()]));
            s.push_str(&format!("\nExecStop=-{engine} stop kubelet\nDelegate=yes\n"));
        }
    }
    s.push_str("Restart=always\nRestartSec=5\n\n[Install]\nWantedBy=multi-user.target\n");
    s
}

/// A worker's `delete-node.service`: when the machine shuts down cleanly (an autoscaling
/// group's scale-in or instance refresh, a spot reclaim, a power-off), the worker deletes its
/// own Node with its kubelet's credentials, so no `NotReady` Node is left behind (typhoon's
/// workers do the same); a worker that boots again registers anew. Kubernetes lets a kubelet
/// delete its own Node only (NodeRestriction), with the role [`crate::kubelet::NODE_SELF_DELETE`].
/// The node name is the host name, lowercased, as the kubelet's default. On a generic host it
/// needs `/usr/bin/kubectl` (else it does nothing); elsewhere it runs `kubectl` from the
/// kubelet's image (`KUBELET_IMAGE`, as the kubelet's service).
pub fn delete_node(os: HostOs, image: &str) -> String {
    let mut s = String::from(
        "[Unit]\nDescription=Delete this worker's Node at shutdown (terraform-provider-selfhosted contract)\n\
         Wants=network-online.target\n",
    );
    let after = match os {
        HostOs::Flatcar => "network-online.target docker.service kubelet.service",
        _ => "network-online.target kubelet.service",
    };
    s.push_str(&format!(
        "After={after}\n\n[Service]\nType=oneshot\nRemainAfterExit=true\n"
    ));
    let name = "\"$$(tr A-Z a-z </proc/sys/kernel/hostname)\"";
    let args = format!("--kubeconfig={KUBELET_KUBECONFIG} --request-timeout=20s delete node {name} --wait=false");
    let command = match os.container_engine() {
        None => {
            format!("[ -f {KUBELET_KUBECONFIG} ] && [ -x /usr/bin/kubectl ] || exit 0; exec /usr/bin/kubectl {args}")
        }
        Some(engine) => {
            s.push_str(&format!(
                "Environment=KUBELET_IMAGE={image}\nEnvironmentFile=-{KUBELET_ENV_PATH}\n"
            ));
            format!(
                "[ -f {KUBELET_KUBECONFIG} ] || exit 0; exec {engine} run --rm --network host --security-opt label=disable \
                 --volume /etc/kubernetes:/etc/kubernetes:ro --volume /var/lib/kubelet:/var/lib/kubelet:ro \
                 --entrypoint /usr/local/bin/kubectl \"$$KUBELET_IMAGE\" {args}"
            )
        }
    };
    s.push_str(&format!(
        "ExecStart=/bin/true\nExecStop=/bin/sh -c '{command}'\nTimeoutStopSec=60\n\n[Install]\nWantedBy=multi-user.target\n"
    ));
    s
}

/// A path unit starting `unit` once `file` exists.
pub fn path_unit(what: &str, file: &str, unit: &str) -> String {
    format!(
        "[Unit]\nDescription=Start {what} once {file} exists\n\n[Path]\nPathExists={file}\nUnit={unit}\n\n[Install]\nWantedBy=multi-user.target\n"
    )
}

/// The kubelet's path unit (`kubelet.path`).
pub fn kubelet_path() -> String {
    path_unit("the kubelet", BOOTSTRAP_KUBECONFIG, "kubelet.service")
}

/// etcd's path unit (`etcd-member.path`): etcd starts once its TLS material is delivered.
pub fn etcd_path() -> String {
    path_unit("etcd", ETCD_SERVER_CERT, "etcd-member.service")
}

/// etcd's service (`etcd-member.service`), reading its settings from [`ETCD_ENV_PATH`] and,
/// where it runs from an image, the image from `ETCD_IMAGE`: the contract's, unless the
/// host's [`ETCD_IMAGE_ENV_PATH`] names another (systemd reads the file after the default).
pub fn etcd(os: HostOs, image: &str) -> String {
    let mut s = format!(
        "[Unit]\nDescription=etcd (terraform-provider-selfhosted contract)\nWants=network-online.target\nAfter=network-online.target\n\
         ConditionPathExists={ETCD_SERVER_CERT}\n\n[Service]\n"
    );
    if os.container_engine().is_some() {
        s.push_str(&format!(
            "Environment=ETCD_IMAGE={image}\nEnvironmentFile=-{ETCD_IMAGE_ENV_PATH}\n"
        ));
    }
    s.push_str(&format!(
        "EnvironmentFile={ETCD_ENV_PATH}\nExecStartPre=+/bin/mkdir -p /var/lib/etcd\n"
    ));
    match os.container_engine() {
        None => {
            // The provider hands etcd's TLS files to the `etcd` user where it exists.
            s.push_str("ExecStartPre=+/bin/chown etcd:etcd /var/lib/etcd\nUser=etcd\nExecStart=/usr/bin/etcd\n");
        }
        Some(engine) => {
            // SELinux on Fedora CoreOS: the data folder private to etcd, the TLS folder shared.
            let (private, shared) = if os == HostOs::FedoraCoreos {
                (",Z", ",z")
            } else {
                ("", "")
            };
            let options = ["--network host".to_owned(), format!("--env-file {ETCD_ENV_PATH}")];
            let volumes = [
                format!("/var/lib/etcd:/var/lib/etcd:rw{private}"),
                format!("/etc/ssl/etcd:/etc/ssl/etcd:ro{shared}"),
            ];
            s.push_str(&format!("ExecStartPre=-{engine} rm --force etcd\nExecStart="));
            s.push_str(&container_run(engine, "etcd", &options, &volumes, "${ETCD_IMAGE}"));
            continued(&mut s, ["/usr/local/bin/etcd".to_owned()]);
            s.push_str(&format!("\nExecStop=-{engine} stop etcd\n"));
        }
    }
    s.push_str("Restart=always\nRestartSec=10s\nTimeoutStartSec=0\nLimitNOFILE=40000\n\n[Install]\nWantedBy=multi-user.target\n");
    s
}

/// containerd's configuration: the systemd cgroup driver the KubeletConfiguration names,
/// and the CRI plugin on.
pub fn containerd_config() -> String {
    "# terraform-provider-selfhosted contract: the CRI plugin with the systemd cgroup driver\n\
     version = 2\n\
     [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n\
     [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n  SystemdCgroup = true\n"
        .to_owned()
}

/// Flatcar's containerd drop-in pointing it at [`CONTAINERD_CONFIG_PATH`].
pub fn containerd_drop_in() -> String {
    format!("[Service]\nEnvironment=CONTAINERD_CONFIG={CONTAINERD_CONFIG_PATH}\n")
}
