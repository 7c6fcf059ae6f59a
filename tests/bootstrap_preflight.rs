//! `selfhosted_bootstrap` through the real `terraform` CLI against real
//! OpenSSH hosts in network namespaces: an unreachable host, a wrong host
//! key and refused sudo each fail with the host named — before anything is
//! changed on any host.

mod support;

use selfhosted_transport::testbed::{Testbed, TestbedParams};
use support::Workspace;

/// A config with three hosts; `host_line(i)` gives each host's extra attributes.
fn config(tb: &Testbed, user: &str, hosts: &[(String, String, String)]) -> String {
    let host = |(name, address, key): &(String, String, String)| {
        format!("    {{ name = \"{name}\", address = \"{address}\", host_key = \"{key}\" }},\n")
    };
    let controllers: String = hosts[..2].iter().map(host).collect();
    let workers: String = hosts[2..].iter().map(host).collect();
    format!(
        r#"
terraform {{
  required_providers {{
    selfhosted = {{ source = "selfhosted/selfhosted" }}
  }}
}}

resource "selfhosted_cluster_assets" "c" {{
  cluster_name = "c"
  api_servers  = ["{api}"]
  etcd_servers = ["{api}"]
}}

resource "selfhosted_bootstrap" "c" {{
  assets      = selfhosted_cluster_assets.c.assets
  controllers = [
{controllers}  ]
  workers = [
{workers}  ]
  ssh = {{
    user            = "{user}"
    private_key     = file("{key}")
    connect_timeout = "3s"
  }}
}}
"#,
        api = hosts[0].1,
        key = tb.inventory().key.display(),
    )
}

fn hosts(tb: &Testbed) -> Vec<(String, String, String)> {
    tb.hosts()
        .iter()
        .map(|h| (h.name.clone(), h.address.clone(), h.host_key.trim().to_owned()))
        .collect()
}

/// Nothing at all exists below our folders on any host.
fn untouched(tb: &Testbed) {
    left_on_hosts(tb, "");
}

/// `find` over our folders on every host (with `filter`, e.g. `-type f`) finds nothing.
fn left_on_hosts(tb: &Testbed, filter: &str) {
    for h in tb.hosts() {
        let cmd = format!("find /etc/kubernetes /etc/ssl/etcd -mindepth 1 {filter} 2>/dev/null | wc -l");
        let out = tb.host_exec(&h.name, &["sh", "-c", &cmd]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "left on {}", h.name);
    }
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

#[test]
fn bad_hosts_fail_preflight_by_name_and_change_nothing() {
    let Some(tb) = hosts_with_kubelet("bootstrap preflight") else {
        return;
    };
    let user = tb.inventory().user.clone();

    // A host whose address answers nobody (inside the test bed's own subnet).
    let mut h = hosts(&tb);
    let dead = h[2].1.rsplit_once('.').map(|(net, _)| format!("{net}.250")).unwrap();
    h[2].1 = dead.clone();
    let ws = Workspace::new(&config(&tb, &user, &h));
    let started = std::time::Instant::now();
    let text = ws.fails(&["apply", "-auto-approve", "-input=false"]);
    assert!(text.contains("preflight"), "{text}");
    assert!(
        text.contains(&h[2].0) && text.contains(&dead),
        "names the host and address:\n{text}"
    );
    assert!(
        started.elapsed().as_secs() < 60,
        "within the connect timeout (3s + retries)"
    );
    untouched(&tb);

    // A host presenting another key than the pinned one: both fingerprints shown.
    let mut h = hosts(&tb);
    h[1].2 = h[0].2.clone();
    ws.write("main.tf", &config(&tb, &user, &h));
    let text = ws.fails(&["apply", "-auto-approve", "-input=false"]);
    assert!(text.contains(&tb.hosts()[1].name), "{text}");
    assert!(
        text.contains(&tb.hosts()[1].fingerprint),
        "presented fingerprint:\n{text}"
    );
    assert!(
        text.contains(&tb.hosts()[0].fingerprint),
        "expected fingerprint:\n{text}"
    );
    untouched(&tb);

    // A user sudo refuses.
    let h = hosts(&tb);
    ws.write("main.tf", &config(&tb, &tb.inventory().nosudo_user, &h));
    let text = ws.fails(&["apply", "-auto-approve", "-input=false"]);
    assert!(text.contains("sudo"), "{text}");
    assert!(text.contains(&h[0].0), "{text}");
    untouched(&tb);
}

#[test]
fn bad_ssh_settings_fail_at_validate_with_the_attribute_path() {
    let Some(tb) = Testbed::up(
        "bootstrap validate",
        &TestbedParams {
            count: 3,
            ..Default::default()
        },
    )
    .unwrap() else {
        return;
    };
    let mut h = hosts(&tb);
    h[0].2 = "not a key".into();
    let cfg = config(&tb, "core", &h).replace("connect_timeout = \"3s\"", "connect_timeout = \"soon\"");
    let ws = Workspace::new(&cfg);
    let text = ws.fails(&["validate", "-no-color"]);
    assert!(text.contains("host_key") && text.contains("known_hosts"), "{text}");
    assert!(text.contains("connect_timeout") || text.contains("duration"), "{text}");

    // An empty snapshot folder: its path and what to write.
    let cfg = config(&tb, "core", &hosts(&tb)).replace(
        "  assets      = selfhosted",
        "  etcd_snapshot_dir = \" \"\n  assets      = selfhosted",
    );
    ws.write("main.tf", &cfg);
    let text = ws.fails(&["validate", "-no-color"]);
    assert!(
        text.contains("Invalid folder: etcd_snapshot_dir") && text.contains("path.root"),
        "{text}"
    );

    // A teardown on destroy cannot use the write-only key: Terraform sends no configuration
    // then. Said at validate, on on_destroy.
    let cfg = config(&tb, "core", &hosts(&tb))
        .replace("private_key     = file(", "private_key_wo  = file(")
        .replace(
            "  assets      = selfhosted",
            "  on_destroy  = \"teardown\"\n  assets      = selfhosted",
        );
    ws.write("main.tf", &cfg);
    let text = ws.fails(&["validate", "-no-color"]);
    assert!(
        text.contains("Teardown cannot log in") && text.contains("on_destroy"),
        "{text}"
    );
    ws.write(
        "main.tf",
        &cfg.replace("on_destroy  = \"teardown\"", "on_destroy  = \"keep\""),
    );
    ws.ok(&["validate", "-no-color"]);

    // Nor can a refresh that checks the hosts: it gets only the state.
    ws.write(
        "main.tf",
        &cfg.replace("on_destroy  = \"teardown\"", "check_hosts_on_refresh = true"),
    );
    let text = ws.fails(&["validate", "-no-color"]);
    assert!(
        text.contains("Refresh cannot log in") && text.contains("check_hosts_on_refresh"),
        "{text}"
    );

    // Authorized keys: a line that is no key is named by its place; a list without the key the
    // provider logs in with is refused, with the line to add (the test bed's client key).
    let login = std::fs::read_to_string(tb.inventory().key.with_extension("pub")).expect("the client's public key");
    let login = login.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICjRVqpiGaWBDZSVhV4OfOTSnv7vQU497KVQ/eGosOqm new@laptop";
    let keys = |list: &str| {
        config(&tb, "core", &hosts(&tb)).replace(
            "    connect_timeout = \"3s\"",
            &format!("    connect_timeout = \"3s\"\n    authorized_keys = {list}"),
        )
    };
    ws.write("main.tf", &keys(&format!("[\"{login}\", \"ssh-ed25519 not-a-key\"]")));
    let text = ws.fails(&["validate", "-no-color"]);
    assert!(
        text.contains("Invalid authorized keys: ssh.authorized_keys[1]") && text.contains("entry 1"),
        "{text}"
    );
    ws.write("main.tf", &keys(&format!("[\"{other}\"]")));
    let text = ws.fails_flat(&["validate", "-no-color"]);
    assert!(
        text.contains("The login key is not listed") && text.contains(&login),
        "{text}"
    );
    ws.write("main.tf", &keys(&format!("[\"restrict {login}\"]")));
    let text = ws.fails_flat(&["validate", "-no-color"]);
    assert!(
        text.contains("The login key is restricted") && text.contains("(restrict)"),
        "{text}"
    );
    ws.write("main.tf", &keys("[]"));
    let text = ws.fails(&["validate", "-no-color"]);
    assert!(text.contains("the list is empty"), "{text}");
    ws.write("main.tf", &keys(&format!("[\"{other}\", \"{login} me@ci\"]")));
    ws.ok(&["validate", "-no-color"]);
}

#[test]
fn teardown_on_destroy_removes_what_a_failed_apply_left() {
    let Some(tb) = hosts_with_kubelet("bootstrap teardown") else {
        return;
    };
    // No control plane can start on these hosts: the apply stops at wait-for-apiserver.
    let cfg = config(&tb, &tb.inventory().user, &hosts(&tb)).replace(
        "connect_timeout = \"3s\"",
        "connect_timeout = \"3s\"\n  }\n  on_destroy = \"teardown\"\n  timeouts = {\n    create = \"6s\"",
    );
    let ws = Workspace::new(&cfg);
    let text = ws.fails(&["apply", "-auto-approve", "-input=false"]);
    assert!(text.contains("wait-for-apiserver"), "{text}");
    let state = ws.resource_values("selfhosted_bootstrap");
    assert_eq!(
        state["phase"], "bootstrap-control-plane",
        "the partial state says how far it got"
    );
    assert_eq!(
        state["learned_host_keys"].as_object().map(|m| m.len()),
        Some(0),
        "all keys were pinned"
    );
    let first = &tb.hosts()[0].name;
    let out = tb.host_exec(
        first,
        &["ls", "/etc/kubernetes/manifests", "/etc/kubernetes/kubeconfig"],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("bootstrap-kube-apiserver.yaml"));

    // The state folder is a user input (`/etc` is a valid one): teardown never removes it
    // recursively, so a file the provider did not write survives.
    tb.host_exec(
        first,
        &[
            "sh",
            "-c",
            "mkdir -p /var/lib/selfhosted && echo mine > /var/lib/selfhosted/keep",
        ],
    );
    ws.ok(&["destroy", "-auto-approve", "-input=false"]);
    left_on_hosts(&tb, "-type f");
    let kept = tb.host_exec(first, &["cat", "/var/lib/selfhosted/keep"]);
    assert_eq!(
        String::from_utf8_lossy(&kept.stdout).trim(),
        "mine",
        "teardown kept what is not its own"
    );
}

/// Host checks that do not depend on the assets run at the first plan, while
/// `assets` is still unknown (the normal way: it comes from `selfhosted_cluster_assets`),
/// each on its attribute; a bad login setting does not also claim the hosts are missing.
#[test]
fn bad_hosts_fail_at_the_first_plan_while_the_assets_are_unknown() {
    let with_hosts = |controllers: &str, ssh: &str| {
        format!(
            r#"
terraform {{
  required_providers {{
    selfhosted = {{ source = "selfhosted/selfhosted" }}
  }}
}}

resource "selfhosted_cluster_assets" "c" {{
  cluster_name = "c"
  api_servers  = ["10.0.0.1"]
  etcd_servers = ["10.0.0.1"]
}}

resource "selfhosted_bootstrap" "c" {{
  assets      = selfhosted_cluster_assets.c.assets
  controllers = {controllers}
  workers     = [{{ name = "Worker_1", address = "10.0.0.9" }}, {{ name = "Node-2", address = "10.0.0.10" }}]
  ssh = {{
    user = "core"
    {ssh}
  }}
}}
"#
        )
    };
    let ws = Workspace::new(
        &with_hosts(
            r#"[{ name = "ctl-0", address = "10.0.0.1", port = 22.5 }, { name = "ctl-0", address = "" }]"#,
            r#"private_key = "not a key"
    bastions    = [{ address = " " }]
    host_keys   = { "ctl-0" = "nonsense" }"#,
        )
        .replace("  ssh = {", "  kubelet_max_unavailable = 0\n  ssh = {"),
    );
    let text = ws.fails(&["plan", "-input=false", "-no-color"]);
    for want in [
        "Duplicate host name: controllers[1].name",
        "Invalid address: controllers[1].address",
        "Invalid node name: workers[0].name",
        "Invalid node name: workers[1].name",
        "write \"node-2\"",
        "Invalid address: ssh.bastions[0].address",
        "Invalid port: controllers[0].port",
        "Unreadable SSH private key: ssh.private_key",
        "Invalid host key: ssh.host_keys[\"ctl-0\"]",
        "Invalid kubelet_max_unavailable: kubelet_max_unavailable",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    for unwanted in ["No controller", "Invalid hosts", "controllers[0].host_key"] {
        assert!(!text.contains(unwanted), "no {unwanted:?} in:\n{text}");
    }

    ws.write(
        "main.tf",
        &with_hosts("[]", "private_key = file(\"/dev/null\")")
            .replace("Worker_1", "w-1")
            .replace("Node-2", "w-2"),
    );
    let text = ws.fails(&["plan", "-input=false", "-no-color"]);
    assert!(text.contains("No controller: controllers"), "{text}");

    // The node contract's paths are defined once: an override that disagrees is refused at
    // plan, one that repeats the contract is accepted (the attribute is deprecated).
    let key = ws.path().join("id_ed25519");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success());
    let with_paths = |paths: &str| {
        with_hosts(
            r#"[{ name = "ctl-0", address = "10.0.0.1" }]"#,
            &format!("private_key = file({:?})", key.display().to_string()),
        )
        .replace("Worker_1", "w-1")
        .replace("Node-2", "w-2")
        .replace("  ssh = {", &format!("  paths = {{ {paths} }}\n  ssh = {{"))
    };
    ws.write(
        "main.tf",
        &with_paths(r#"static_pod_dir = "/opt/manifests", state_dir = "var/lib/x""#),
    );
    let text = ws.fails(&["plan", "-input=false", "-no-color"]);
    for want in [
        "Path fixed by the node contract: paths.static_pod_dir",
        "remove paths.static_pod_dir",
        "Invalid path: paths.state_dir",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    ws.write(
        "main.tf",
        &with_paths(r#"static_pod_dir = "/etc/kubernetes/manifests", state_dir = "/var/lib/x""#),
    );
    let text = ws.ok(&["plan", "-input=false", "-no-color"]);
    assert!(text.contains("state_dir      = \"/var/lib/x\""), "{text}");
}

#[test]
fn an_import_block_by_identity_adopts_a_cluster_under_a_newer_terraform() {
    // Terraform 1.12+ keeps a resource identity beside the state: selfhosted_bootstrap's is
    // its first controller, and an `import` block may give it instead of an ID.
    let Some(terraform) = support::newer_terraform() else {
        return;
    };
    let key = tempfile::tempdir().expect("tempdir");
    let key_file = key.path().join("id_ed25519");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key_file)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success());
    let config = |identity: &str| {
        format!(
            r#"
terraform {{
  required_providers {{
    selfhosted = {{ source = "selfhosted/selfhosted" }}
  }}
}}

resource "selfhosted_cluster_assets" "c" {{
  cluster_name = "c"
  api_servers  = ["c.example.com"]
  etcd_servers = ["203.0.113.10"]
}}

import {{
  to       = selfhosted_bootstrap.c
  identity = {{ {identity} }}
}}

resource "selfhosted_bootstrap" "c" {{
  assets      = selfhosted_cluster_assets.c.assets
  controllers = [{{ name = "c-controller-0", address = "203.0.113.10" }}]
  ssh = {{
    user        = "core"
    private_key = file({key:?})
  }}
}}
"#,
            key = key_file.display().to_string()
        )
    };
    let ws = Workspace::new_with_cli(&config(r#"first_controller = "c-controller-0""#), &terraform);
    let schema: serde_json::Value =
        serde_json::from_str(&ws.ok(&["providers", "schema", "-json"])).expect("schema JSON");
    let identity = &schema["provider_schemas"]["registry.terraform.io/selfhosted/selfhosted"]
        ["resource_identity_schemas"]["selfhosted_bootstrap"];
    assert_eq!(
        identity["attributes"]["first_controller"]["required_for_import"], true,
        "{identity}"
    );
    let plan = ws.ok(&["plan", "-input=false", "-no-color"]);
    assert!(
        plan.contains("Preparing import... [identity=first_controller=c-controller-0]"),
        "{plan}"
    );
    assert!(plan.contains("(will be imported first)"), "{plan}");
    assert!(plan.contains("1 to import"), "{plan}");
    assert!(
        !plan.contains("id                     = \"c-controller-0\" ->"),
        "the ID stays: {plan}"
    );
    // An identity that names nothing is refused, saying what is missing.
    ws.write("main.tf", &config(r#"first_controller = "Not A Node""#));
    let text = ws.fails(&["plan", "-input=false", "-no-color"]);
    assert!(text.contains("is not a node name"), "{text}");
}
