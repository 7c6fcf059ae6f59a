//! The node contract's systemd units pass `systemd-analyze verify` (Debian `systemd`), for
//! every supported minor, with the kubelet binary swapped for `/bin/true` (the test machine
//! has no kubelet at /usr/bin).

mod common;

use std::process::Command;

use selfhosted_manifests::host::HostOs;
use selfhosted_manifests::{render, versions};
use serde_json::Value;

#[test]
fn units_verify_with_systemd_analyze() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut checked = 0;
    for row in versions::TABLE {
        let mut raw = common::raw();
        raw.kubernetes_version = Some(format!("v1.{}.0", row.minor));
        let r = render(&common::parse(&raw), &common::material()).expect("render");
        for (bu, role) in [
            (&r.node.controller_butane, "controller"),
            (&r.node.worker_butane, "worker"),
        ] {
            let doc: Value = serde_yaml_ng::from_str(bu).expect("butane is YAML");
            assert_eq!(doc["variant"], "fcos");
            let sub = dir.path().join(format!("v1.{}-{role}", row.minor));
            checked += verify_units(&sub, &doc);
        }
    }
    println!("systemd-analyze verify: {checked} units");
}

/// The Ignition validator built from `github.com/coreos/ignition/v2/validate` (Go module
/// proxy) by `tests/tools/go-tool.sh`; `scripts/test.sh` builds it and names it in
/// `SELFHOSTED_IGNITION_VALIDATE`. Under CI it must be there.
fn ignition_validator() -> Option<std::path::PathBuf> {
    let path = std::env::var("SELFHOSTED_IGNITION_VALIDATE")
        .unwrap_or_else(|_| "/var/cache/selfhosted-lane/tools/ignition-validate-v2.24.0".into());
    let path = std::path::PathBuf::from(path);
    if path.is_file() {
        return Some(path);
    }
    selfhosted_test_support::skip_or_fail(
        "Ignition validation",
        &format!(
            "no Ignition validator at {} (bash tests/tools/go-tool.sh ignition-validate github.com/coreos/ignition/v2/validate@v2.24.0)",
            path.display()
        ),
    );
    None
}

fn validate_ignition(validator: &std::path::Path, dir: &std::path::Path, name: &str, config: &str) -> (bool, String) {
    let file = dir.join(name);
    std::fs::write(&file, config).expect("write config");
    let out = Command::new(validator)
        .arg(&file)
        .output()
        .expect("run ignition-validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.trim().is_empty(), text)
}

fn file_of<'a>(config: &'a Value, path: &str) -> Option<&'a Value> {
    config["storage"]["files"]
        .as_array()?
        .iter()
        .find(|f| f["path"] == path)
}

fn contents(file: &Value) -> String {
    use base64::Engine;
    let url = file["contents"]["source"].as_str().expect("a data URL");
    let b64 = url.strip_prefix("data:;base64,").expect("base64 data URL");
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).expect("base64")).expect("UTF-8")
}

/// The units of a config (Ignition's or Butane's `systemd.units`), written out with the host
/// binaries swapped for `/bin/true`, checked by `systemd-analyze verify`.
fn verify_units(dir: &std::path::Path, config: &Value) -> usize {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut paths = Vec::new();
    for unit in config["systemd"]["units"].as_array().expect("units") {
        let Some(text) = unit["contents"].as_str() else {
            continue;
        };
        let mut text = text.to_owned();
        for bin in [
            "/usr/bin/kubelet",
            "/usr/bin/etcd",
            "/usr/bin/podman",
            "/usr/bin/docker",
        ] {
            text = text.replace(bin, "/bin/true");
        }
        let path = dir.join(unit["name"].as_str().expect("name"));
        std::fs::write(&path, text).expect("write unit");
        paths.push(path);
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Only etcd's user is missing on a machine without etcd installed as a service.
    let problems: Vec<&str> = stderr.lines().filter(|l| !l.contains("User=etcd")).collect();
    assert!(
        out.status.success() && problems.is_empty(),
        "{}: {stderr}",
        dir.display()
    );
    paths.len()
}

#[test]
fn ignition_configs_pass_ignitions_own_validator_for_every_host_os() {
    let Some(validator) = ignition_validator() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // The validator can fail: a relative path and a mode outside 0–07777 are refused.
    let (ok, text) = validate_ignition(
        &validator,
        dir.path(),
        "bad.ign",
        r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"etc/x","mode":99999}]}}"#,
    );
    assert!(!ok, "a bad config passed: {text}");

    let mut checked = Vec::new();
    for os in HostOs::ALL {
        let mut raw = common::raw();
        raw.host_os = Some(os.name().into());
        let r = render(&common::parse(&raw), &common::material()).expect("render");
        let node = &r.node;
        assert_eq!(node.controller_ignition.len(), 3, "one per etcd member");
        let joining = selfhosted_manifests::kubelet::joining_worker_ignition(node, "KUBECONFIG", "CA");
        let configs = node
            .controller_ignition
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("{os}-controller{i}"), c.clone()))
            .chain([
                (format!("{os}-worker"), node.worker_ignition.clone()),
                (format!("{os}-joining-worker"), joining),
            ]);
        for (name, text) in configs {
            let (ok, out) = validate_ignition(&validator, dir.path(), &format!("{name}.ign"), &text);
            assert!(ok, "{name}: {out}\n{text}");
            let config: Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(config["ignition"]["version"], os.ignition_version(), "{name}");
            let kubelet = file_of(&config, "/etc/kubernetes/kubelet.yaml").expect("kubelet.yaml");
            assert_eq!(kubelet["mode"], 0o644, "{name}: 0644 is 420 in Ignition");
            assert_eq!(contents(kubelet), node.kubelet_config, "{name}");
            let units: Vec<&str> = config["systemd"]["units"]
                .as_array()
                .expect("units")
                .iter()
                .filter_map(|u| u["name"].as_str())
                .collect();
            assert!(units.contains(&"kubelet.path"), "{name}: {units:?}");
            if let Some(i) = name.strip_prefix(&format!("{os}-controller")) {
                let env = contents(file_of(&config, "/etc/etcd/etcd.env").expect("etcd.env"));
                assert!(env.contains(&format!("ETCD_NAME=etcd{i}\n")), "{name}: {env}");
                assert!(
                    env.contains(&format!(
                        "ETCD_ADVERTISE_CLIENT_URLS=https://etcd{i}.example.com:2379\n"
                    )),
                    "{name}: {env}"
                );
                assert!(units.contains(&"etcd-member.path"), "{name}: {units:?}");
            } else {
                assert!(
                    file_of(&config, "/etc/etcd/etcd.env").is_none(),
                    "{name}: etcd only on controllers"
                );
            }
            if name.ends_with("joining-worker") {
                let kubeconfig = file_of(&config, "/etc/kubernetes/kubeconfig").expect("kubeconfig");
                assert_eq!(kubeconfig["mode"], 0o600, "{name}: credentials are 0600");
                assert_eq!(contents(kubeconfig), "KUBECONFIG");
            } else {
                assert!(
                    file_of(&config, "/etc/kubernetes/kubeconfig").is_none(),
                    "{name}: the provider delivers credentials over SSH"
                );
            }
            let unit_count = verify_units(&dir.path().join(&name), &config);
            checked.push(format!("{name}: {unit_count} units"));
        }
        // Where hosts run no kubelet binary, the units start the images.
        if let Some(engine) = os.container_engine() {
            assert!(
                node.worker_unit.contains(&format!("{engine} run")),
                "{}",
                node.worker_unit
            );
            assert!(
                node.worker_unit.contains("quay.io/poseidon/kubelet:v1.34.3"),
                "{}",
                node.worker_unit
            );
            assert!(
                node.etcd_unit.contains("registry.k8s.io/etcd:3.6.5-0"),
                "{}",
                node.etcd_unit
            );
        } else {
            assert!(
                node.worker_unit.contains("ExecStart=/usr/bin/kubelet"),
                "{}",
                node.worker_unit
            );
        }
    }
    println!("ignition-validate and systemd-analyze verify: {checked:?}");
}

/// Every host config of every host OS and pod network loads the modules and sets the sysctls
/// the pod network and kube-proxy need (Fedora CoreOS and Flatcar have neither by default:
/// flannel exits on a host without `br_netfilter`), in Ignition and in Butane alike.
#[test]
fn every_host_config_loads_the_pod_networks_kernel_modules_and_sets_its_sysctls() {
    use selfhosted_manifests::host::kernel::{MODULES_PATH, SYSCTL_PATH};
    use selfhosted_manifests::Networking;
    for os in HostOs::ALL {
        for net in Networking::ALL {
            let mut raw = common::raw();
            raw.host_os = Some(os.name().into());
            raw.networking = Some(net.name().into());
            let r = render(&common::parse(&raw), &common::material()).expect("render");
            let node = &r.node;
            let joining = selfhosted_manifests::kubelet::joining_worker_ignition(node, "KUBECONFIG", "CA");
            let configs = node.controller_ignition.iter().chain([&node.worker_ignition, &joining]);
            let mut seen = 0;
            for text in configs {
                let config: Value = serde_json::from_str(text).expect("JSON");
                let what = format!("{os} {} config {seen}", net.name());
                let modules = contents(file_of(&config, MODULES_PATH).expect("modules-load.d file"));
                let lines: Vec<&str> = modules.lines().collect();
                for m in ["br_netfilter", "overlay"] {
                    assert!(lines.contains(&m), "{what}: {m} in {modules:?}");
                }
                let sysctl = contents(file_of(&config, SYSCTL_PATH).expect("sysctl.d file"));
                let set: Vec<(String, String)> = sysctl
                    .lines()
                    .map(|l| {
                        let (k, v) = l.split_once('=').expect("key = value");
                        (k.trim().to_owned(), v.trim().to_owned())
                    })
                    .collect();
                let has = |k: &str, v: &str| set.iter().any(|(a, b)| a == k && b == v);
                for key in [
                    "net.bridge.bridge-nf-call-iptables",
                    "net.bridge.bridge-nf-call-ip6tables",
                    "net.ipv4.ip_forward",
                ] {
                    assert!(has(key, "1"), "{what}: {key} = 1 in {sysctl:?}");
                }
                assert_eq!(
                    has("net.ipv4.conf.*.rp_filter", "0"),
                    net == Networking::Cilium,
                    "{what}: rp_filter off for Cilium only: {sysctl:?}"
                );
                seen += 1;
            }
            assert_eq!(seen, 5, "3 controllers, a worker, a joining worker");
            for butane in [&node.controller_butane, &node.worker_butane] {
                let doc: Value = serde_yaml_ng::from_str(butane).expect("Butane YAML");
                let files = doc["storage"]["files"].as_array().expect("files");
                for f in &node.kernel_files {
                    let found = files.iter().find(|b| b["path"] == f.path.as_str()).expect("in Butane");
                    assert_eq!(
                        found["contents"]["inline"].as_str().unwrap().trim_end(),
                        f.contents.trim_end()
                    );
                }
            }
        }
    }
}

/// The kubelet's service reads the host's own `/etc/kubernetes/kubelet.env` if it exists:
/// `KUBELET_EXTRA_ARGS` after the contract's flags, and, where the kubelet runs from an image,
/// `KUBELET_IMAGE` in place of the contract's (which is the default). So a pool labels its
/// nodes, and a host's kubelet moves to another version, without a new machine.
#[test]
fn the_kubelet_service_takes_extra_flags_and_another_image_from_the_hosts_env_file() {
    use selfhosted_manifests::host::units::KUBELET_ENV_PATH;
    for os in HostOs::ALL {
        let mut raw = common::raw();
        raw.host_os = Some(os.name().into());
        let r = render(&common::parse(&raw), &common::material()).expect("render");
        for unit in [&r.node.worker_unit, &r.node.controller_unit] {
            let lines: Vec<&str> = unit.lines().collect();
            let env_file = lines
                .iter()
                .position(|l| *l == format!("EnvironmentFile=-{KUBELET_ENV_PATH}"))
                .unwrap_or_else(|| panic!("{os}: an optional EnvironmentFile: {unit}"));
            let exec = exec_start(unit);
            let words: Vec<&str> = exec.split_whitespace().filter(|w| *w != "\\").collect();
            assert_eq!(
                words.last(),
                Some(&"$KUBELET_EXTRA_ARGS"),
                "{os}: the host's flags come last: {exec}"
            );
            if os.container_engine().is_some() {
                // The default first, then the file, which overrides it (systemd reads in order).
                let default = lines
                    .iter()
                    .position(|l| *l == "Environment=KUBELET_IMAGE=quay.io/poseidon/kubelet:v1.34.3")
                    .unwrap_or_else(|| panic!("{os}: the contract's image as the default: {unit}"));
                assert!(default < env_file, "{os}: {unit}");
                assert!(words.contains(&"${KUBELET_IMAGE}"), "{os}: {exec}");
                assert!(
                    !exec.contains("poseidon/kubelet"),
                    "{os}: the image only through the variable: {exec}"
                );
            } else {
                assert!(
                    !unit.contains("KUBELET_IMAGE"),
                    "{os}: the kubelet binary is the host's: {unit}"
                );
            }
        }
    }
}

/// The provider moves a host's kubelet by the same file: the image the rendered unit names is
/// read back from it, and the switch (run by `sh`, here on a copy of the file and with
/// `systemctl` recorded) replaces `KUBELET_IMAGE`, keeps the host's other lines, and restarts
/// the kubelet; run twice, it leaves one `KUBELET_IMAGE` line.
#[test]
fn the_provider_moves_a_kubelet_by_its_env_file_keeping_the_hosts_lines() {
    use selfhosted_manifests::host::units::{image_release, kubelet_image_of, kubelet_image_switch, KUBELET_ENV_PATH};
    let mut raw = common::raw();
    raw.host_os = Some("flatcar".into());
    raw.kubernetes_version = Some("v1.35.4".into());
    let r = render(&common::parse(&raw), &common::material()).expect("render");
    let image = kubelet_image_of(&r.node.worker_unit).expect("the worker unit names an image");
    assert_eq!(image, "quay.io/poseidon/kubelet:v1.35.4");
    assert_eq!(image_release(image), Some("v1.35.4"));
    assert_eq!(
        image_release("mirror.example:5000/kubelet:v1.35.4@sha256:ab"),
        Some("v1.35.4")
    );
    assert_eq!(image_release("mirror.example:5000/kubelet"), None);
    assert_eq!(image_release("quay.io/poseidon/kubelet:latest"), None);
    let generic = render(&common::parse(&common::raw()), &common::material()).expect("render");
    assert_eq!(kubelet_image_of(&generic.node.worker_unit), None);

    let dir = tempfile::tempdir().expect("tempdir");
    let env = dir.path().join("kubelet.env");
    std::fs::write(
        &env,
        "KUBELET_EXTRA_ARGS=\"--node-labels=pool=a\"\nKUBELET_IMAGE=quay.io/poseidon/kubelet:v1.34.3\n",
    )
    .unwrap();
    let script = kubelet_image_switch(image).replace(KUBELET_ENV_PATH, &env.display().to_string());
    let log = run_twice_recording_systemctl(dir.path(), &script);
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        "KUBELET_EXTRA_ARGS=\"--node-labels=pool=a\"\nKUBELET_IMAGE=quay.io/poseidon/kubelet:v1.35.4\n"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&env).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644);
    assert_eq!(log, "restart kubelet.service\nrestart kubelet.service\n");
}

/// etcd follows the same way on controllers whose etcd is an image: the service takes the
/// contract's image as the default and the host's `/etc/etcd/image.env` over it (never the
/// env file the container reads, where etcd would warn of the unknown `ETCD_IMAGE`); the
/// switch (run by `sh` on a copy, `systemctl` recorded) sets it and restarts etcd. A generic
/// host's etcd is its own binary: no image, no switch.
#[test]
fn the_provider_moves_etcd_by_its_image_file() {
    use selfhosted_manifests::host::etcd::{ETCD_ENV_PATH, ETCD_IMAGE_ENV_PATH};
    use selfhosted_manifests::host::units::{etcd_image_of, etcd_image_release, etcd_image_switch};
    for os in HostOs::ALL {
        let mut raw = common::raw();
        raw.host_os = Some(os.name().into());
        raw.kubernetes_version = Some("v1.35.4".into());
        let r = render(&common::parse(&raw), &common::material()).expect("render");
        let unit = &r.node.etcd_unit;
        let lines: Vec<&str> = unit.lines().collect();
        let at = |line: &str| lines.iter().position(|l| *l == line);
        let exec = exec_start(unit);
        if os.container_engine().is_some() {
            assert_eq!(
                etcd_image_of(unit),
                Some("registry.k8s.io/etcd:3.6.6-0"),
                "{os}: {unit}"
            );
            let default = at("Environment=ETCD_IMAGE=registry.k8s.io/etcd:3.6.6-0").expect("default");
            let file = at(&format!("EnvironmentFile=-{ETCD_IMAGE_ENV_PATH}")).expect("optional image file");
            assert!(default < file, "{os}: the file overrides the default: {unit}");
            assert!(
                exec.contains("${ETCD_IMAGE}") && !exec.contains("registry.k8s.io"),
                "{os}: {exec}"
            );
            assert!(exec.contains(&format!("--env-file {ETCD_ENV_PATH}")), "{os}: {exec}");
            assert!(!exec.contains(ETCD_IMAGE_ENV_PATH), "{os}: not etcd's own env: {exec}");
        } else {
            assert_eq!(etcd_image_of(unit), None, "{os}: {unit}");
            assert!(!unit.contains("ETCD_IMAGE"), "{os}: {unit}");
        }
    }
    assert_eq!(
        etcd_image_release("registry.k8s.io/etcd:3.6.6-0").as_deref(),
        Some("3.6.6")
    );
    assert_eq!(
        etcd_image_release("quay.io/coreos/etcd:v3.5.21").as_deref(),
        Some("3.5.21")
    );
    assert_eq!(
        etcd_image_release("mirror.example:5000/etcd:3.5.21-0@sha256:ab").as_deref(),
        Some("3.5.21")
    );
    assert_eq!(etcd_image_release("mirror.example:5000/etcd"), None);
    assert_eq!(etcd_image_release("registry.k8s.io/etcd:latest"), None);
    assert_eq!(etcd_image_release("registry.k8s.io/etcd:3.6"), None);
    assert_eq!(etcd_image_release("quay.io/coreos/etcd:v3.6.0-rc.1"), None);

    let dir = tempfile::tempdir().expect("tempdir");
    let env = dir.path().join("image.env");
    let script =
        etcd_image_switch("registry.k8s.io/etcd:3.6.6-0").replace(ETCD_IMAGE_ENV_PATH, &env.display().to_string());
    let log = run_twice_recording_systemctl(dir.path(), &script);
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        "ETCD_IMAGE=registry.k8s.io/etcd:3.6.6-0\n"
    );
    assert_eq!(log, "restart etcd-member.service\nrestart etcd-member.service\n");
}

/// A unit's `ExecStart=` line with its continuation lines (ending in a backslash).
fn exec_start(unit: &str) -> String {
    let lines: Vec<&str> = unit.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("ExecStart="))
        .expect("ExecStart");
    let end = (start..lines.len()).find(|&i| !lines[i].ends_with('\\')).unwrap();
    lines[start..=end].join("\n")
}

/// Runs `script` twice under `sh` with a `systemctl` that records its calls; returns them.
fn run_twice_recording_systemctl(dir: &std::path::Path, script: &str) -> String {
    let log = dir.join("systemctl.log");
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(
        bin.join("systemctl"),
        format!("#!/bin/sh\necho \"$*\" >> {}\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("systemctl"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for _ in 0..2 {
        let out = Command::new("sh")
            .args(["-c", script])
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .expect("sh");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::read_to_string(&log).unwrap()
}

/// Every worker's config (Ignition, the joining worker's, Butane) has `delete-node.service`,
/// enabled, which at shutdown deletes the worker's own Node with its kubelet's credentials;
/// no controller's has it. The kubelets' role allows deleting Nodes, which NodeRestriction
/// narrows to a kubelet's own.
#[test]
fn workers_delete_their_own_node_at_shutdown() {
    use selfhosted_manifests::kubelet::{joining_worker_ignition, NODE_SELF_DELETE};
    for os in HostOs::ALL {
        let mut raw = common::raw();
        raw.host_os = Some(os.name().into());
        let r = render(&common::parse(&raw), &common::material()).expect("render");
        let node = &r.node;
        let unit = &node.delete_node_unit;
        let stop = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStop=/bin/sh -c '"))
            .unwrap_or_else(|| panic!("{os}: ExecStop runs a shell: {unit}"));
        assert!(
            stop.contains("--kubeconfig=/var/lib/kubelet/kubeconfig")
                && stop.contains("delete node \"$$(tr A-Z a-z </proc/sys/kernel/hostname)\""),
            "{os}: deletes the Node named as the kubelet names it, with the kubelet's credentials: {stop}"
        );
        assert!(unit.contains("Type=oneshot\nRemainAfterExit=true\n"), "{os}: {unit}");
        assert!(
            unit.contains("kubelet.service"),
            "{os}: stops before the kubelet: {unit}"
        );
        match os.container_engine() {
            Some(engine) => assert!(
                stop.contains(&format!("exec {engine} run --rm"))
                    && stop.contains("--entrypoint /usr/local/bin/kubectl \"$$KUBELET_IMAGE\"")
                    && unit.contains("Environment=KUBELET_IMAGE=quay.io/poseidon/kubelet:v1.34.3"),
                "{os}: kubectl from the kubelet's image: {unit}"
            ),
            None => assert!(
                stop.contains("[ -x /usr/bin/kubectl ] || exit 0; exec /usr/bin/kubectl"),
                "{os}: the host's kubectl, if any: {unit}"
            ),
        }
        let joining = joining_worker_ignition(node, "KUBECONFIG", "CA");
        for (what, config) in [("worker", &node.worker_ignition), ("joining worker", &joining)] {
            let config: Value = serde_json::from_str(config).expect("Ignition JSON");
            let found = config["systemd"]["units"]
                .as_array()
                .expect("units")
                .iter()
                .find(|u| u["name"] == "delete-node.service")
                .unwrap_or_else(|| panic!("{os}: the {what}'s Ignition has delete-node.service"));
            assert_eq!(found["enabled"], true, "{os} {what}");
            assert_eq!(found["contents"].as_str(), Some(unit.as_str()), "{os} {what}");
        }
        for config in &node.controller_ignition {
            assert!(!config.contains("delete-node.service"), "{os}: not on controllers");
        }
        assert!(
            node.worker_butane
                .contains("- name: delete-node.service\n      enabled: true"),
            "{os}"
        );
        assert!(!node.controller_butane.contains("delete-node"), "{os}");
    }
    let rbac = selfhosted_manifests::kubelet::rbac(&common::parse(&common::raw()));
    let role = rbac
        .iter()
        .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == NODE_SELF_DELETE)
        .expect("the role");
    assert_eq!(
        role["rules"],
        serde_json::json!([{ "apiGroups": [""], "resources": ["nodes"], "verbs": ["delete"] }])
    );
    let binding = rbac
        .iter()
        .find(|o| o["kind"] == "ClusterRoleBinding" && o["metadata"]["name"] == NODE_SELF_DELETE)
        .expect("the binding");
    assert_eq!(binding["roleRef"]["name"], NODE_SELF_DELETE);
    assert_eq!(binding["subjects"][0]["name"], "system:nodes");
}
