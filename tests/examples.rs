//! The examples as a user runs them: `terraform fmt` clean, the quickstart
//! applied, its bootstrap block planned against the placeholder hosts
//! (plans make no network calls), and each networking example planned.

mod support;

use std::process::Command;

use serde_json::json;

use support::Workspace;

fn example(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("example exists")
}

#[test]
fn quickstart_applies_and_its_bootstrap_plans_against_placeholder_hosts() {
    quickstart(Workspace::new(&example("examples/quickstart/main.tf")));
}

#[test]
fn quickstart_under_opentofu() {
    let Some(tofu) = support::tofu() else { return };
    quickstart(Workspace::new_with_cli(&example("examples/quickstart/main.tf"), &tofu));
}

#[test]
fn quickstart_under_a_newer_terraform() {
    let Some(terraform) = support::newer_terraform() else {
        return;
    };
    quickstart(Workspace::new_with_cli(
        &example("examples/quickstart/main.tf"),
        &terraform,
    ));
}

/// The quickstart applied and its bootstrap planned with the write-only key, by `ws`'s CLI.
fn quickstart(ws: Workspace) {
    ws.apply();
    assert_eq!(ws.outputs()["server_url"]["value"], "https://nemo.example.com:6443");

    let key = ws.path().join("id_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let key_var = format!("ssh_private_key_file={}", key.display());
    let plan = ws.ok(&["plan", "-input=false", "-var", "bootstrap=true", "-var", &key_var]);
    assert!(plan.contains("selfhosted_bootstrap.nemo[0] will be created"), "{plan}");
    assert!(plan.contains("1 to add, 0 to change, 0 to destroy"), "{plan}");
    assert!(!plan.contains("private_key_wo = \""), "write-only key never shown");
}

#[test]
fn networking_examples_plan() {
    for net in ["flannel", "calico", "cilium", "none"] {
        let ws = Workspace::new(&example(&format!("examples/networking/{net}/main.tf")));
        let plan = ws.ok(&["plan", "-input=false"]);
        assert!(plan.contains("1 to add"), "{net}: {plan}");
        assert!(
            plan.contains(&format!("networking                   = \"{net}\"")) || net == "flannel",
            "{net}: {plan}"
        );
    }
}

/// The hashicorp/aws filesystem mirror (`SELFHOSTED_AWS_MIRROR`, else `/opt/tf-plugins`,
/// where these machines keep hashicorp/aws 5.100.0). Under CI it must be there.
fn aws_mirror() -> Option<std::path::PathBuf> {
    let path =
        std::path::PathBuf::from(std::env::var("SELFHOSTED_AWS_MIRROR").unwrap_or_else(|_| "/opt/tf-plugins".into()));
    if path.join("registry.terraform.io/hashicorp/aws").is_dir() {
        return Some(path);
    }
    selfhosted_test_support::skip_or_fail(
        "the AWS example's plan",
        &format!("no hashicorp/aws mirror at {}", path.display()),
    );
    None
}

/// Planned resources of a `show -json` plan, `(address, type, after, after_unknown)`.
fn planned(plan: &serde_json::Value) -> Vec<(String, String, serde_json::Value, serde_json::Value)> {
    plan["resource_changes"]
        .as_array()
        .expect("resource changes")
        .iter()
        .map(|r| {
            (
                r["address"].as_str().unwrap_or_default().to_owned(),
                r["type"].as_str().unwrap_or_default().to_owned(),
                r["change"]["after"].clone(),
                r["change"]["after_unknown"].clone(),
            )
        })
        .collect()
}

/// Asserts how many resources of each type a plan makes.
fn assert_counts(resources: &[(String, String, serde_json::Value, serde_json::Value)], counts: &[(&str, usize)]) {
    for (t, n) in counts {
        assert_eq!(
            resources.iter().filter(|r| r.1 == *t).count(),
            *n,
            "{t}: {:?}",
            resources.iter().map(|r| &r.0).collect::<Vec<_>>()
        );
    }
}

/// What a `data:;base64,` URL of an Ignition config carries.
fn data_url(source: &serde_json::Value) -> String {
    use base64::Engine;
    let b64 = source
        .as_str()
        .and_then(|s| s.strip_prefix("data:;base64,"))
        .expect("a base64 data URL");
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).expect("base64")).expect("UTF-8")
}

/// A snippet as a user passes one: an Ignition config (rendered from Butane) that writes a
/// file of its own.
fn snippet(role: &str) -> String {
    format!(
        r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{"files":[{{"path":"/etc/snippet-{role}","mode":420,"contents":{{"source":"data:,{role}"}}}}]}}}}"#
    )
}

/// An override of the example's module call that gives it `lines` (snippets, say).
fn module_override(ws: &Workspace, lines: &str) {
    ws.write("snippets_override.tf", &format!("module \"nemo\" {{\n{lines}\n}}\n"));
}

/// Both roles' snippets given to the example's module call, as a user writes them in HCL.
fn snippets_override(ws: &Workspace) {
    let line = |name: &str, role: &str| format!("  {name} = [<<-EOT\n    {}\n  EOT\n  ]", snippet(role));
    module_override(
        ws,
        &format!(
            "{}\n{}",
            line("controller_snippets", "controller"),
            line("worker_snippets", "worker")
        ),
    );
}

/// Asserts that `outer` (a host's user data) merges `snippet(role)` after the provider's
/// config, compressed, and that Ignition's validator takes the snippet as the host would.
fn assert_merges_the_snippet(ws: &Workspace, what: &str, outer: &serde_json::Value, role: &str) {
    use base64::Engine;
    use std::io::Write;
    let merge = outer["ignition"]["config"]["merge"].as_array().expect("merge");
    assert_eq!(merge.len(), 2, "{what}: the provider's config, then the snippet");
    assert_eq!(merge[1]["compression"], "gzip", "{what}");
    let b64 = merge[1]["source"]
        .as_str()
        .and_then(|s| s.strip_prefix("data:;base64,"))
        .expect("a base64 data URL");
    let gz = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
    let mut gunzip = Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    gunzip.stdin.take().unwrap().write_all(&gz).unwrap();
    let out = gunzip.wait_with_output().unwrap();
    assert!(out.status.success(), "{what}: gzip");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim(), snippet(role), "{what}");
    ignition_valid(ws, what, &[&text]);
}

/// The module's key is the whole set the provider keeps on the hosts it lists: a rotated key
/// reaches machines whose user data is read at first boot only.
fn assert_the_module_keeps_its_key(resources: &[(String, String, serde_json::Value, serde_json::Value)], public: &str) {
    let bootstrap = resources
        .iter()
        .find(|r| r.1 == "selfhosted_bootstrap")
        .expect("bootstrap");
    assert_eq!(bootstrap.2["ssh"]["authorized_keys"], serde_json::json!([public]));
}

/// Asserts that Ignition's own validator finds nothing to say of each of `configs` (`what`'s).
fn ignition_valid(ws: &Workspace, what: &str, configs: &[&str]) {
    let validator = std::env::var("SELFHOSTED_IGNITION_VALIDATE")
        .unwrap_or_else(|_| "/var/cache/selfhosted-lane/tools/ignition-validate-v2.24.0".into());
    for (i, config) in configs.iter().enumerate() {
        let file = ws.path().join("config.ign");
        std::fs::write(&file, config).expect("write");
        let out = Command::new(&validator).arg(&file).output().expect("ignition-validate");
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "{what}, config {i}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn aws_example_plans_offline_with_the_real_aws_provider() {
    let Some(mirror) = aws_mirror() else {
        return;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/aws");
    let ws = Workspace::from_tree(&root, &[(&mirror, "registry.terraform.io/hashicorp/aws")]);
    // Offline: fake credentials and no AWS calls while planning (plans of new resources need none).
    ws.write(
        "offline_override.tf",
        r#"provider "aws" {
  region                      = "eu-central-1"
  access_key                  = "AKIAOFFLINEPLAN00000"
  secret_key                  = "offline-plan-only"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}
"#,
    );
    let (key, public) = ws.ssh_key_pair("id_ed25519");
    // The module looks the region's zones up when none are given: a data source, which
    // needs AWS. Offline, the zones are given (an override file, as a user may write one).
    ws.write(
        "zones_override.tf",
        "module \"nemo\" {\n  availability_zones = [\"eu-central-1a\", \"eu-central-1b\", \"eu-central-1c\"]\n}\n",
    );
    // A worker pool built outside the module from its outputs, as typhoon's `workers/` is
    // used: spot workers with a disk of their own.
    ws.write(
        "pool.tf",
        r#"module "spot_pool" {
  source = "./kubernetes/workers"

  name               = "nemo-spot"
  ami                = module.nemo.ami
  instance_type      = "t3.large"
  disk_size          = 50
  spot_price         = "0.03"
  desired_count      = 1
  subnet_ids         = module.nemo.subnet_ids
  security_group_ids = [module.nemo.worker_security_group_id]
  ignition_version   = module.nemo.ignition_version
  ssh_authorized_key = var.ssh_authorized_key
  joining_ignition   = module.nemo.joining_worker_ignition
  target_group_arns  = module.nemo.worker_target_groups
  node_labels        = ["node.kubernetes.io/pool=spot", "example.com/gpu=false"]
  node_taints        = ["example.com/spot=true:NoSchedule"]
}

output "spot_pool_kubelet_extra_args" {
  value = module.spot_pool.kubelet_extra_args
}
"#,
    );
    ws.write(
        "terraform.tfvars",
        &format!(
            "ami = \"ami-0123456789abcdef0\"\ndns_zone = \"aws.example.com\"\ndns_zone_id = \"Z0123456789ABCDEFGHIJ\"\nssh_authorized_key = \"{}\"\nssh_private_key_file = \"{}\"\n",
            public.trim(),
            key.display()
        ),
    );
    snippets_override(&ws);
    ws.ok(&["init", "-input=false"]); // the pool is a module call of its own
    ws.ok(&["validate"]);
    ws.ok(&["plan", "-input=false", "-out=tf.plan"]);
    let plan: serde_json::Value = serde_json::from_str(&ws.ok(&["show", "-json", "tf.plan"])).expect("plan JSON");
    let resources = planned(&plan);
    assert_counts(
        &resources,
        &[
            ("aws_instance", 3),
            ("aws_route53_record", 4),
            ("aws_lb", 1),
            // The apiservers (6443, to the controllers) and ingress (80, 443, to the workers).
            ("aws_lb_listener", 3),
            ("aws_lb_target_group", 3),
            ("aws_lb_target_group_attachment", 3),
            ("aws_launch_template", 2),
            ("aws_autoscaling_group", 2),
            ("aws_subnet", 3),
            ("selfhosted_cluster_assets", 1),
            ("selfhosted_bootstrap", 1),
        ],
    );
    assert_the_module_keeps_its_key(&resources, &public);
    // A public key that is not the private key's half is refused at plan, before any machine.
    let stranger = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICjRVqpiGaWBDZSVhV4OfOTSnv7vQU497KVQ/eGosOqm stranger";
    let flat = ws.fails_flat(&[
        "plan",
        "-input=false",
        "-no-color",
        &format!("-var=ssh_authorized_key={stranger}"),
    ]);
    assert!(
        flat.contains("The login key is not listed") && flat.contains(public.split_whitespace().nth(1).unwrap()),
        "{flat}"
    );
    // The module's workers join the ingress target groups (HTTP and HTTPS), whose listeners sit
    // beside the apiservers' on the load balancer; the pool of its own joins them from the
    // module's output. (Set-typed, their ARNs are wholly unknown at plan: the wiring is read
    // from the configuration.)
    let calls = &plan["configuration"]["root_module"]["module_calls"];
    let references = |call: &serde_json::Value| {
        call["expressions"]["target_group_arns"]["references"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let module_workers = references(&calls["nemo"]["module"]["module_calls"]["workers"]);
    assert!(
        module_workers.iter().any(|r| r == "aws_lb_target_group.workers"),
        "{module_workers:?}"
    );
    let spot = references(&calls["spot_pool"]);
    assert!(spot.iter().any(|r| r == "module.nemo.worker_target_groups"), "{spot:?}");
    // With `ami` null the module boots the newest AMI of `os_stream`, looked up while planning:
    // `terraform test` plans it with the lookup's answer given (no AWS here).
    ws.write(
        "ami_lookup.tftest.hcl",
        r#"variables {
  ami = null
}

override_data {
  target = module.nemo.data.aws_ami.os[0]
  values = { image_id = "ami-0f0c05f0c05f0c05f" }
}

run "the_newest_ami_of_the_stream" {
  command = plan

  assert {
    condition     = module.nemo.ami == "ami-0f0c05f0c05f0c05f"
    error_message = "the module boots the AMI it looked up"
  }
}
"#,
    );
    let tested = ws.ok(&["test"]);
    assert!(tested.contains("1 passed, 0 failed"), "{tested}");
    let mut ports: Vec<i64> = resources
        .iter()
        .filter(|r| r.1 == "aws_lb_listener")
        .filter_map(|r| r.2["port"].as_i64())
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, [80, 443, 6443]);
    // The controllers' user data is known at plan: instances do not wait for the load
    // balancer or for anything else created with them.
    let user_data = plan["planned_values"]["outputs"]["controller_user_data"]["value"]
        .as_array()
        .expect("controller user data known at plan")
        .clone();
    assert_eq!(user_data.len(), 3);
    for (i, (address, _, _, unknown)) in resources.iter().filter(|r| r.1 == "aws_instance").enumerate() {
        assert_ne!(unknown["user_data"], true, "{address}: user data unknown at plan");
        let user_data = user_data[i].as_str().expect("user data");
        let outer: serde_json::Value = serde_json::from_str(user_data).expect("user data is Ignition JSON");
        let inner = data_url(&outer["ignition"]["config"]["merge"][0]["source"]);
        assert!(inner.contains("etcd-member.service"), "{address}");
        ignition_valid(&ws, address, &[user_data, &inner]);
        assert_merges_the_snippet(&ws, address, &outer, "controller");
        // Each controller is its own etcd member, under the name the DNS record gives it.
        let config: serde_json::Value = serde_json::from_str(&inner).expect("JSON");
        let env = config["storage"]["files"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["path"] == "/etc/etcd/etcd.env"))
            .map(|f| data_url(&f["contents"]["source"]))
            .expect("etcd.env");
        assert!(
            env.contains(&format!(
                "ETCD_ADVERTISE_CLIENT_URLS=https://nemo-etcd{i}.aws.example.com:2379"
            )),
            "{address}: {env}"
        );
        // Credentials come over SSH, never in user data (which any process on the host can read).
        assert!(!inner.contains("/etc/kubernetes/kubeconfig\""), "{address}");
        // The pod network's kernel modules (flannel exits without br_netfilter), from the first boot.
        let modules = config["storage"]["files"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["path"] == "/etc/modules-load.d/selfhosted.conf"))
            .map(|f| data_url(&f["contents"]["source"]))
            .expect("modules-load.d file");
        assert!(modules.lines().any(|l| l == "br_netfilter"), "{address}: {modules}");
    }
    // Each zone's load balancer address reaches the controllers of every zone.
    let lb = resources.iter().find(|r| r.1 == "aws_lb").expect("aws_lb");
    assert_eq!(
        lb.2["enable_cross_zone_load_balancing"], true,
        "cross-zone load balancing"
    );
    // Workers' kubelets answer other workers (metrics-server, Prometheus).
    assert!(
        resources
            .iter()
            .any(|r| r.0.ends_with("between_hosts[\"worker-kubelet-self\"]")),
        "worker to worker 10250"
    );
    // Pinned: the Kubernetes version is the example's, not the provider's default.
    let assets_values = &resources
        .iter()
        .find(|r| r.1 == "selfhosted_cluster_assets")
        .expect("assets")
        .2;
    assert_eq!(assets_values["kubernetes_version"], "v1.34.3");
    // What the kubernetes and helm providers need, as root outputs (the key sensitive).
    let outputs = &plan["output_changes"];
    for name in [
        "server_url",
        "ca_certificate",
        "admin_client_certificate",
        "admin_client_key",
    ] {
        assert!(outputs.get(name).is_some(), "output {name}: {outputs}");
    }
    assert_eq!(
        outputs["admin_client_key"]["after_sensitive"], true,
        "the key is sensitive"
    );
    // The manifests are known too: the plan of a version change can show them.
    let assets = resources
        .iter()
        .find(|r| r.1 == "selfhosted_cluster_assets")
        .expect("assets");
    assert!(
        assets.2["manifests"].as_object().is_some_and(|m| m.len() > 20),
        "manifests known at plan"
    );
    // Autoscaled workers carry the bootstrap kubeconfig: known only once the token exists,
    // and sensitive.
    let template = resources
        .iter()
        .find(|r| r.1 == "aws_launch_template")
        .expect("template");
    assert_eq!(template.3["user_data"], true, "worker user data waits for the token");
    // The pool outside the module: spot, with its own disk, in the module's subnets.
    let pool = resources
        .iter()
        .find(|r| r.0 == "module.spot_pool.aws_launch_template.worker")
        .expect("the pool's launch template");
    assert_eq!(pool.2["instance_market_options"][0]["market_type"], "spot");
    assert_eq!(
        pool.2["instance_market_options"][0]["spot_options"][0]["max_price"],
        "0.03"
    );
    assert_eq!(pool.2["block_device_mappings"][0]["ebs"][0]["volume_size"], 50);
    assert_eq!(
        pool.3["user_data"], true,
        "the pool's user data waits for the token too"
    );
    // Its labels and taints reach its kubelets through the contract's kubelet.env.
    assert_eq!(
        plan["planned_values"]["outputs"]["spot_pool_kubelet_extra_args"]["value"],
        "--node-labels=node.kubernetes.io/pool=spot,example.com/gpu=false --register-with-taints=example.com/spot=true:NoSchedule"
    );
    let own = resources
        .iter()
        .find(|r| r.0 == "module.nemo.module.workers.aws_launch_template.worker")
        .expect("the module's launch template");
    assert!(
        own.2["instance_market_options"].as_array().is_none_or(Vec::is_empty),
        "the module's own workers are on-demand: {}",
        own.2["instance_market_options"]
    );
    // flannel (the default): VXLAN on UDP 4789 between hosts, no Cilium health rules.
    let rule_ports: Vec<(String, serde_json::Value)> = resources
        .iter()
        .filter(|r| r.1 == "aws_vpc_security_group_ingress_rule")
        .map(|r| (r.0.clone(), r.2["from_port"].clone()))
        .collect();
    let port_of = |key: &str| rule_ports.iter().find(|(a, _)| a.contains(key)).map(|(_, p)| p.clone());
    assert_eq!(
        port_of("worker-vxlan-self"),
        Some(serde_json::json!(4789)),
        "{rule_ports:?}"
    );
    assert!(port_of("cilium-health").is_none(), "{rule_ports:?}");
    let text = ws.ok(&["show", "tf.plan"]);
    assert!(
        !text.contains("BEGIN OPENSSH PRIVATE KEY"),
        "the SSH key never appears in a plan"
    );

    // A role label a kubelet may not set (it would refuse to start) is refused at plan.
    ws.write(
        "pool_override.tf",
        "module \"spot_pool\" {\n  node_labels = [\"node-role.kubernetes.io/worker=true\"]\n}\n",
    );
    let refused = ws.fails_flat(&["validate"]);
    assert!(
        refused.contains("set roles (node-role.kubernetes.io/...) through the API"),
        "{refused}"
    );
    std::fs::remove_file(ws.path().join("pool_override.tf")).expect("remove the override");

    // arm64 hosts need a node agent built for arm64: refused at plan without one, planned with one.
    ws.write("arch_override.tf", "module \"nemo\" {\n  arch = \"arm64\"\n}\n");
    let refused = ws.fails_flat(&["plan", "-input=false"]);
    assert!(
        refused.contains("needs the node agent built for arm64") && refused.contains("container_images"),
        "{refused}"
    );
    ws.write(
        "arch_override.tf",
        "module \"nemo\" {\n  arch = \"arm64\"\n  container_images = { selfhosted_agent = \"registry.example.com/selfhosted-agent:arm64\" }\n}\n",
    );
    ws.ok(&["plan", "-input=false"]);
    std::fs::remove_file(ws.path().join("arch_override.tf")).expect("remove the override");

    // A snippet that is Butane, not Ignition, is refused at validate with what to do.
    module_override(&ws, "  worker_snippets = [\"variant: fcos\\nversion: 1.5.0\\n\"]");
    let refused = ws.fails_flat(&["validate"]);
    assert!(
        refused.contains("Each of worker_snippets is an Ignition config") && refused.contains("butane --strict"),
        "{refused}"
    );
    // A snippet of a newer spec than the OS's Ignition reads (Flatcar's 3.3.0) is refused at plan.
    module_override(
        &ws,
        &format!(
            "  host_os = \"flatcar\"\n  worker_snippets = [{:?}]",
            snippet("worker").replace("3.3.0", "3.4.0")
        ),
    );
    let refused = ws.fails_flat(&["plan", "-input=false"]);
    assert!(
        refused.contains("newer than the OS's Ignition reads (3.3.0)"),
        "{refused}"
    );
    std::fs::remove_file(ws.path().join("snippets_override.tf")).expect("remove the override");

    // Cilium: its VXLAN port and health checks open between hosts, flannel's port closed.
    ws.write(
        "networking_override.tf",
        "module \"nemo\" {\n  networking = \"cilium\"\n}\n",
    );
    ws.ok(&["plan", "-input=false", "-out=cilium.plan"]);
    let plan: serde_json::Value = serde_json::from_str(&ws.ok(&["show", "-json", "cilium.plan"])).expect("plan JSON");
    let rules: Vec<(String, serde_json::Value, serde_json::Value)> = planned(&plan)
        .into_iter()
        .filter(|r| r.1 == "aws_vpc_security_group_ingress_rule")
        .map(|r| (r.0, r.2["from_port"].clone(), r.2["ip_protocol"].clone()))
        .collect();
    let port_of = |key: &str| {
        rules
            .iter()
            .find(|(a, _, _)| a.contains(key))
            .map(|(_, p, q)| (p.clone(), q.clone()))
    };
    assert_eq!(
        port_of("worker-vxlan-self"),
        Some((json!(8472), json!("udp"))),
        "{rules:?}"
    );
    assert!(!rules.iter().any(|(_, p, _)| *p == json!(4789)), "{rules:?}");
    let health = rules.iter().filter(|(a, _, _)| a.contains("cilium-health")).count();
    assert_eq!(health, 4, "controller and worker, from each: {rules:?}");
    assert_eq!(
        port_of("worker-cilium-health-controller"),
        Some((json!(4240), json!("tcp")))
    );
}

/// The DigitalOcean provider release `examples/digitalocean` was written and checked against;
/// `tests/fixtures` holds what the module uses of its schema (tests/tools/record-schema.py).
const DIGITALOCEAN: &str = "2.99.1";

/// A filesystem mirror with `digitalocean/digitalocean` at [`DIGITALOCEAN`], and what serves
/// it. The real provider is not installable here (no registry, and the Go module proxy refuses
/// its module): `SELFHOSTED_DIGITALOCEAN_MIRROR` may name a mirror holding a build of it from
/// source; otherwise the `recorded_schema` stand-in serves the recorded schema, so that the
/// module cannot drift from the resource types and attributes it was written for.
fn digitalocean_mirror(scratch: &std::path::Path) -> (std::path::PathBuf, &'static str) {
    if let Some(real) = std::env::var_os("SELFHOSTED_DIGITALOCEAN_MIRROR") {
        return (real.into(), "the DigitalOcean provider built from source");
    }
    let exe = std::env::current_exe().expect("test exe path");
    let profile_dir = exe.parent().and_then(std::path::Path::parent).expect("profile dir");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "selfhosted-protocol",
            "--example",
            "recorded_schema",
        ])
        .status()
        .expect("cargo build --example recorded_schema");
    assert!(status.success(), "building the recorded_schema stand-in failed");
    let dir = scratch.join(format!(
        "registry.terraform.io/digitalocean/digitalocean/{DIGITALOCEAN}/linux_amd64"
    ));
    std::fs::create_dir_all(&dir).expect("mirror dir");
    std::fs::copy(
        profile_dir.join("examples/recorded_schema"),
        dir.join(format!("terraform-provider-digitalocean_v{DIGITALOCEAN}")),
    )
    .expect("copy the stand-in");
    (scratch.to_owned(), "its recorded schema (stand-in)")
}

#[test]
fn digitalocean_example_plans_against_digitaloceans_schema() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch");
    let schema = root.join(format!("tests/fixtures/digitalocean-{DIGITALOCEAN}.schema.json"));
    let (mirror, served_by) = digitalocean_mirror(scratch.path());
    eprintln!("digitalocean/digitalocean {DIGITALOCEAN}: {served_by}");
    let ws = Workspace::from_tree(
        &root.join("examples/digitalocean"),
        &[(&mirror, "registry.terraform.io/digitalocean/digitalocean")],
    );
    let (key, public) = ws.ssh_key_pair("id_ed25519");
    ws.write(
        "terraform.tfvars",
        &format!(
            "os_image = \"123456789\"\ndns_zone = \"do.example.com\"\nssh_authorized_key = \"{}\"\nssh_private_key_file = \"{}\"\n",
            public.trim(),
            key.display()
        ),
    );
    snippets_override(&ws);
    // Terraform starts the provider with its own environment: the stand-in reads its schema
    // from it, and the real provider wants a token to exist (plans of new droplets make no
    // API call).
    let run = |args: &[&str]| {
        let out = ws
            .command(args)
            .env("SELFHOSTED_RECORDED_SCHEMA", &schema)
            .env("DIGITALOCEAN_TOKEN", "offline-plan-only")
            .output()
            .expect("terraform");
        assert!(
            out.status.success(),
            "terraform {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["validate"]);
    run(&["plan", "-input=false", "-out=tf.plan"]);
    let plan: serde_json::Value = serde_json::from_str(&run(&["show", "-json", "tf.plan"])).expect("plan JSON");
    let resources = planned(&plan);
    assert_counts(
        &resources,
        &[
            ("digitalocean_droplet", 5),
            ("digitalocean_record", 6),
            ("digitalocean_firewall", 3),
            ("digitalocean_vpc", 1),
            ("digitalocean_tag", 2),
            ("digitalocean_ssh_key", 1),
            ("selfhosted_cluster_assets", 1),
            ("selfhosted_bootstrap", 1),
        ],
    );
    assert_the_module_keeps_its_key(&resources, &public);
    // The apiserver's name is a round robin of the controllers; each etcd member has its own.
    let records: Vec<&serde_json::Value> = resources
        .iter()
        .filter(|r| r.1 == "digitalocean_record")
        .map(|r| &r.2)
        .collect();
    let named = |name: &str| records.iter().filter(|r| r["name"] == name).count();
    assert_eq!(named("nemo"), 3, "{records:?}");
    for i in 0..3 {
        assert_eq!(named(&format!("nemo-etcd{i}")), 1, "{records:?}");
    }
    assert!(
        records.iter().all(|r| r["type"] == "A" && r["ttl"] == 60),
        "{records:?}"
    );
    // Every droplet boots from Ignition known at plan, named as its node, with no credentials.
    // (The provider keeps a hash of `user_data` in its plan and state: the outputs show it.)
    for (address, _, _, unknown) in resources.iter().filter(|r| r.1 == "digitalocean_droplet") {
        assert_ne!(unknown["user_data"], true, "{address}: user data unknown at plan");
    }
    for (role, count) in [("controller", 3), ("worker", 2)] {
        let user_data = plan["planned_values"]["outputs"][format!("{role}_user_data")]["value"]
            .as_array()
            .unwrap_or_else(|| panic!("{role} user data known at plan"))
            .clone();
        assert_eq!(user_data.len(), count, "{role}");
        for (i, user_data) in user_data.iter().enumerate() {
            let name = format!("nemo-{role}-{i}");
            let user_data = user_data.as_str().expect("user data");
            let outer: serde_json::Value = serde_json::from_str(user_data).expect("user data is Ignition JSON");
            let inner = data_url(&outer["ignition"]["config"]["merge"][0]["source"]);
            ignition_valid(&ws, &name, &[user_data, &inner]);
            assert_merges_the_snippet(&ws, &name, &outer, role);
            let hostname = outer["storage"]["files"]
                .as_array()
                .and_then(|f| f.iter().find(|f| f["path"] == "/etc/hostname"))
                .map(|f| data_url(&f["contents"]["source"]))
                .expect("/etc/hostname");
            assert_eq!(hostname.trim(), name, "the host is named as its droplet and node");
            assert!(
                resources
                    .iter()
                    .any(|r| r.1 == "digitalocean_droplet" && r.2["name"] == name.as_str()),
                "a droplet {name}"
            );
            assert_eq!(
                inner.contains("etcd-member.service"),
                role == "controller",
                "{name}: etcd on controllers only"
            );
            assert!(
                !inner.contains("/etc/kubernetes/kubeconfig\""),
                "{name}: no credentials in user data"
            );
        }
    }
    // The pod network's VXLAN port (flannel), only between the cluster's droplets; etcd's
    // ports only between controllers.
    let firewall = |name: &str| {
        &resources
            .iter()
            .find(|r| r.1 == "digitalocean_firewall" && r.2["name"] == name)
            .unwrap_or_else(|| panic!("firewall {name}"))
            .2
    };
    let rules = |fw: &serde_json::Value| fw["inbound_rule"].as_array().cloned().unwrap_or_default();
    assert!(
        rules(firewall("nemo-nodes")).iter().any(|r| r["protocol"] == "udp"
            && r["port_range"] == "4789"
            && r["source_addresses"].as_array().is_none_or(|a| a.is_empty())),
        "{}",
        firewall("nemo-nodes")
    );
    let etcd = rules(firewall("nemo-controller"))
        .into_iter()
        .find(|r| r["port_range"] == "2379-2380")
        .expect("etcd's ports");
    assert_eq!(etcd["source_tags"], json!(["nemo-controller"]), "{etcd}");
    // The provider reaches the workers too (their kubelets move node by node).
    let bootstrap = &resources
        .iter()
        .find(|r| r.1 == "selfhosted_bootstrap")
        .expect("bootstrap")
        .2;
    let workers: Vec<&str> = bootstrap["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert_eq!(workers, ["nemo-worker-0", "nemo-worker-1"]);
    let assets = &resources
        .iter()
        .find(|r| r.1 == "selfhosted_cluster_assets")
        .expect("assets")
        .2;
    assert_eq!(assets["kubernetes_version"], "v1.34.3");
    assert_eq!(assets["api_servers"], json!(["nemo.do.example.com"]));
    assert_eq!(
        plan["output_changes"]["admin_client_key"]["after_sensitive"], true,
        "the key is sensitive"
    );
}
