//! `selfhosted_cluster_assets` through the real `terraform` CLI: init from a
//! filesystem mirror, plan, apply, refresh, plan-again-empty, changes that
//! re-issue only what they must, bad input at plan time, and destroy.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use support::Workspace;

fn config(api_servers: &str, extra: &str) -> String {
    format!(
        r#"
terraform {{
  required_providers {{
    selfhosted = {{ source = "selfhosted/selfhosted" }}
  }}
}}

resource "selfhosted_cluster_assets" "nemo" {{
  cluster_name = "nemo"
  api_servers  = {api_servers}
  etcd_servers = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
  asset_dir    = "${{path.module}}/assets"
{extra}
}}

output "server_url" {{ value = selfhosted_cluster_assets.nemo.server_url }}
output "dns_ip" {{ value = selfhosted_cluster_assets.nemo.cluster_dns_service_ip }}
"#
    )
}

fn assets(ws: &Workspace) -> BTreeMap<String, String> {
    serde_json::from_value(ws.resource_values("selfhosted_cluster_assets")["assets"].clone()).expect("assets map")
}

fn openssl_verify(dir: &std::path::Path, ca: &str, cert: &str) {
    let out = Command::new("openssl")
        .args(["verify", "-CAfile", ca, cert])
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl verify {cert}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn lifecycle_apply_refresh_plan_empty_change_destroy() {
    lifecycle(Workspace::new(&config(r#"["nemo.example.com", "203.0.113.10"]"#, "")));
}

#[test]
fn lifecycle_under_opentofu() {
    let Some(tofu) = support::tofu() else { return };
    lifecycle(Workspace::new_with_cli(
        &config(r#"["nemo.example.com", "203.0.113.10"]"#, ""),
        &tofu,
    ));
}

#[test]
fn lifecycle_under_a_newer_terraform() {
    let Some(terraform) = support::newer_terraform() else {
        return;
    };
    lifecycle(Workspace::new_with_cli(
        &config(r#"["nemo.example.com", "203.0.113.10"]"#, ""),
        &terraform,
    ));
}

/// Apply, refresh, an empty plan, a change that re-issues only what it must, drift on disk
/// rewritten, destroy: run by `ws`'s CLI (Terraform or OpenTofu).
fn lifecycle(ws: Workspace) {
    ws.apply();

    let out = ws.outputs();
    assert_eq!(out["server_url"]["value"], "https://nemo.example.com:6443");
    assert_eq!(out["dns_ip"]["value"], "10.3.0.10");

    // The files on disk are the state's assets, private, and they verify.
    let dir = ws.path().join("assets");
    let first = assets(&ws);
    assert!(first.len() > 30, "all material rendered: {:?}", first.keys());
    for (rel, content) in &first {
        let path = dir.join(rel);
        assert_eq!(&std::fs::read_to_string(&path).unwrap(), content, "{rel}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600,
            "{rel}"
        );
    }
    openssl_verify(&dir, "tls/ca.crt", "tls/apiserver.crt");
    openssl_verify(&dir, "tls/etcd-ca.crt", "tls/etcd/server.crt");

    // Refresh changes nothing; the next plan is empty.
    ws.ok(&["apply", "-refresh-only", "-auto-approve", "-input=false"]);
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "plan after apply must be empty:\n{text}");

    // A new api server re-issues only the apiserver certificates and what embeds the URL.
    ws.write("main.tf", &config(r#"["nemo2.example.com", "203.0.113.10"]"#, ""));
    let (changes, text) = ws.plan_has_changes();
    assert!(changes, "{text}");
    assert!(text.contains("apiserver"), "plan names what is re-issued:\n{text}");
    ws.apply();
    let second = assets(&ws);
    // PKI material: only what embeds the api servers changes.
    let changed: Vec<&String> = first
        .keys()
        .filter(|k| k.starts_with("tls/") || k.starts_with("auth/"))
        .filter(|k| first.get(*k) != second.get(*k))
        .collect();
    for k in &changed {
        assert!(
            k.starts_with("tls/apiserver.")
                || k.starts_with("tls/bootstrap-apiserver.")
                // Kubeconfigs that embed the public server URL.
                || k.as_str() == "auth/admin.kubeconfig"
                || k.as_str() == "auth/kubelet-bootstrap.kubeconfig"
                || k.as_str() == "auth/controller-bootstrap.kubeconfig",
            "{k} changed but only apiserver material may: {changed:?}"
        );
    }
    assert!(changed.iter().any(|k| k.as_str() == "tls/apiserver.crt"));
    assert_eq!(first["tls/ca.crt"], second["tls/ca.crt"], "the CA never changes");
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");

    // A file changed on disk is noticed by refresh and rewritten by apply.
    std::fs::write(dir.join("tls/ca.crt"), "tampered").unwrap();
    let (changes, _) = ws.plan_has_changes();
    assert!(changes, "tampered asset_dir plans a rewrite");
    ws.apply();
    assert_eq!(
        std::fs::read_to_string(dir.join("tls/ca.crt")).unwrap(),
        second["tls/ca.crt"]
    );

    ws.ok(&["destroy", "-auto-approve", "-input=false"]);
    assert!(!dir.join("tls/ca.crt").exists(), "destroy removes the files it wrote");
}

#[test]
fn bad_input_fails_at_plan_with_the_attribute_path() {
    let ws = Workspace::new(&config(
        r#"["nemo.example.com", "not a host!"]"#,
        "  service_cidr = \"10.3.0.0/30\"\n  daemonset_tolerations = [\"example.com/dedicated\", \"no spaces please\"]",
    ));
    let text = ws.fails(&["plan", "-input=false"]);
    assert!(text.contains("api_servers[1]"), "{text}");
    assert!(text.contains("service_cidr"), "{text}");
    assert!(text.contains("daemonset_tolerations[1]"), "{text}");
    assert!(text.contains("is not a taint key"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn unknown_inputs_plan_with_unknown_outputs() {
    let ws = Workspace::new(&format!(
        "{}\nresource \"terraform_data\" \"host\" {{\n  input = \"late.example.com\"\n}}\n",
        config(r#"[terraform_data.host.output]"#, "")
    ));
    let text = ws.ok(&["plan", "-input=false"]);
    assert!(
        text.contains("server_url") && text.contains("(known after apply)"),
        "{text}"
    );
    ws.apply();
    assert_eq!(ws.outputs()["server_url"]["value"], "https://late.example.com:6443");
}

/// What a plan knows of the resource: `(after, after_unknown)` from `show -json`.
fn planned_change(ws: &Workspace) -> (serde_json::Value, serde_json::Value) {
    ws.ok(&["plan", "-input=false", "-out=tf.plan"]);
    let plan: serde_json::Value = serde_json::from_str(&ws.ok(&["show", "-json", "tf.plan"])).expect("plan JSON");
    let change = plan["resource_changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "selfhosted_cluster_assets"))
        .expect("a cluster_assets change")["change"]
        .clone();
    (change["after"].clone(), change["after_unknown"].clone())
}

/// Whether a plan's `after_unknown` marks anything inside `v` unknown.
fn any_unknown(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Array(a) => a.iter().any(any_unknown),
        serde_json::Value::Object(o) => o.values().any(any_unknown),
        _ => false,
    }
}

#[test]
fn a_load_balancer_name_unknown_at_plan_leaves_only_what_names_it_unknown() {
    // A load balancer's DNS name is only known once it exists: the node contract (user data)
    // and the manifests that do not name it must not wait for it.
    let ws = Workspace::new(&format!(
        "{}\nresource \"terraform_data\" \"lb\" {{}}\n",
        config(r#"["lb-${terraform_data.lb.id}.example.com"]"#, "")
    ));
    let (after, unknown) = planned_change(&ws);
    assert_eq!(unknown["server_url"], true, "{unknown}");
    assert!(
        !any_unknown(&unknown["node"]),
        "the node contract names no host: {unknown}"
    );
    assert!(
        after["node"]["controller_unit"]
            .as_str()
            .is_some_and(|u| u.contains("kubelet")),
        "{after}"
    );
    assert_eq!(after["cluster_dns_service_ip"], "10.3.0.10");
    assert_eq!(after["credentials_revision"], "1");
    assert!(!any_unknown(&unknown["apiserver_generation"]), "{unknown}");
    let known = after["manifests"].as_object().expect("manifests planned as a map");
    let unknown_manifests: Vec<&String> = unknown["manifests"]
        .as_object()
        .expect("unknown only element by element")
        .iter()
        .filter(|(_, v)| **v == true)
        .map(|(k, _)| k)
        .collect();
    eprintln!("unknown at plan: {unknown_manifests:?}; known: {}", known.len());
    assert!(
        !unknown_manifests.is_empty(),
        "kube-proxy's kubeconfig names the server: {unknown}"
    );
    assert!(
        unknown_manifests.len() * 4 < known.len(),
        "only what names the server is unknown: {unknown_manifests:?}"
    );
    for (name, text) in known {
        assert!(
            !text.as_str().unwrap_or_default().contains(".invalid"),
            "{name} holds a stand-in"
        );
    }
    // Apply agrees with every value the plan knew (Terraform checks it) and fills the rest.
    ws.apply();
    let state = ws.resource_values("selfhosted_cluster_assets");
    assert_eq!(state["node"], after["node"]);
    for (name, text) in known {
        assert_eq!(&state["manifests"][name], text, "{name} as planned");
    }
    assert!(
        state["server_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://lb-")),
        "{state}"
    );
    assert!(!ws.plan_has_changes().0, "the next plan is empty");
}

/// The fields of `node` that name no etcd member.
const KUBELET_SIDE: [&str; 5] = [
    "worker_ignition",
    "worker_unit",
    "controller_unit",
    "etcd_unit",
    "kubelet_config",
];

#[test]
fn etcd_names_unknown_at_plan_leave_the_kubelets_contract_known() {
    // Records created with the cluster: the apiserver DaemonSet's name hashes its flags, so
    // the manifests wait, and so do etcd's settings; the kubelet's side does not.
    let ws = Workspace::new(&format!(
        "{}\nresource \"terraform_data\" \"etcd\" {{}}\n",
        config(r#"["nemo.example.com"]"#, "").replace(
            r#"etcd_servers = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]"#,
            r#"etcd_servers = ["etcd-${terraform_data.etcd.id}.example.com", "10.0.0.12", "10.0.0.13"]"#
        )
    ));
    let (after, unknown) = planned_change(&ws);
    for field in KUBELET_SIDE {
        assert!(!any_unknown(&unknown["node"][field]), "{field}: {unknown}");
        assert!(after["node"][field].is_string(), "{field}: {after}");
    }
    // Every member's settings list the whole cluster.
    assert!(any_unknown(&unknown["node"]["etcd_env"]), "{unknown}");
    assert_eq!(after["server_url"], "https://nemo.example.com:6443");
    assert_eq!(unknown["apiserver_generation"], true, "{unknown}");
    ws.apply();
    let state = ws.resource_values("selfhosted_cluster_assets");
    for field in KUBELET_SIDE {
        assert!(state["node"][field] == after["node"][field], "{field} as planned");
    }
}

#[test]
fn renewal_window_is_planned_by_a_plain_plan_and_renewed_in_place() {
    let ws = Workspace::new(&config(
        r#"["nemo.example.com"]"#,
        "  validity_hours      = 48\n  early_renewal_hours = 24",
    ));
    // Issue 30 hours in the past (the provider's clock only): now every leaf
    // is 30 hours into its 48, inside its 24-hour renewal window.
    let earlier = support::shifted_clock("-30h");
    let earlier: Vec<(&str, &str)> = earlier.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ws.ok_with(&["apply", "-auto-approve", "-input=false"], &earlier);
    let before = ws.resource_values("selfhosted_cluster_assets");
    assert_eq!(before["ready_for_renewal"], false);
    let (changes, text) = ws.plan_has_changes_with(&earlier);
    assert!(!changes, "nothing to renew yet:\n{text}");

    ws.ok(&["apply", "-refresh-only", "-auto-approve", "-input=false"]);
    assert_eq!(
        ws.resource_values("selfhosted_cluster_assets")["ready_for_renewal"],
        true
    );
    let (changes, text) = ws.plan_has_changes();
    assert!(changes, "renewal planned:\n{text}");
    assert!(text.contains("early-renewal window"), "plan says why:\n{text}");
    assert!(
        text.contains("updated in-place"),
        "renewal is in place, not a replacement:\n{text}"
    );
    ws.apply();

    let after = ws.resource_values("selfhosted_cluster_assets");
    assert_eq!(after["ready_for_renewal"], false);
    assert_eq!(after["ca_certificate"], before["ca_certificate"], "the CA is kept");
    let end = |v: &serde_json::Value, name: &str| v["certificate_expiry"][name].as_str().unwrap().to_owned();
    assert!(
        end(&after, "apiserver") > end(&before, "apiserver"),
        "apiserver renewed"
    );
    assert_eq!(end(&after, "ca"), end(&before, "ca"));
    // The renewal raised the revision that rolls the running control plane.
    assert_eq!(before["credentials_revision"], "1");
    assert_eq!(after["credentials_revision"], "2");
    assert_ne!(after["apiserver_generation"], before["apiserver_generation"]);
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");
}

/// A CA (and a non-CA certificate, and an unrelated key) made by openssl.
fn byo_material(dir: &std::path::Path) {
    let script = "set -e
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
        openssl req -x509 -new -key ca.key -subj /CN=byo-ca -days 3650 -out ca.crt \\
          -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key
        openssl req -x509 -new -key other.key -subj /CN=leaf -days 30 -out leaf.crt \\
          -addext basicConstraints=critical,CA:FALSE";
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bring_your_own_ca_with_a_write_only_key() {
    let ws = Workspace::new(&config(
        r#"["nemo.example.com"]"#,
        "  ca_cert_pem           = file(\"${path.module}/ca.crt\")\n  ca_private_key_pem_wo = file(\"${path.module}/ca.key\")",
    ));
    byo_material(ws.path());
    ws.apply();
    let values = ws.resource_values("selfhosted_cluster_assets");
    assert!(
        values["ca_private_key_pem_wo"].is_null(),
        "write-only value never stored"
    );
    assert_eq!(
        values["ca_certificate"].as_str().unwrap(),
        std::fs::read_to_string(ws.path().join("ca.crt")).unwrap()
    );
    openssl_verify(ws.path(), "ca.crt", "assets/tls/apiserver.crt");
    openssl_verify(ws.path(), "ca.crt", "assets/tls/admin.crt");
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");

    // A certificate that is no CA, and a key that does not match: errors at plan, on the attribute.
    ws.write(
        "main.tf",
        &config(
            r#"["nemo.example.com"]"#,
            "  ca_cert_pem        = file(\"${path.module}/leaf.crt\")\n  ca_private_key_pem = file(\"${path.module}/other.key\")",
        ),
    );
    let text = ws.fails(&["plan", "-input=false"]);
    assert!(text.contains("ca_cert_pem"), "{text}");
    ws.write(
        "main.tf",
        &config(
            r#"["nemo.example.com"]"#,
            "  ca_cert_pem        = file(\"${path.module}/ca.crt\")\n  ca_private_key_pem = file(\"${path.module}/other.key\")",
        ),
    );
    let text = ws.fails(&["plan", "-input=false"]);
    assert!(text.contains("ca_private_key_pem"), "{text}");
    assert!(
        text.to_lowercase().contains("match"),
        "says the key does not match:\n{text}"
    );
}

#[test]
fn validate_reports_every_bad_input() {
    let ws = Workspace::new(&config(
        r#"["nemo.example.com", "nemo.example.com"]"#,
        "  key_algorithm       = \"DSA\"\n  validity_hours      = 100\n  early_renewal_hours = 200\n  api_server_port     = 70000",
    ));
    let text = ws.fails(&["validate", "-no-color"]);
    for needle in [
        "api_servers[1]",
        "key_algorithm",
        "ECDSA_P256",
        "early_renewal_hours",
        "api_server_port",
    ] {
        assert!(text.contains(needle), "validate output lacks {needle}:\n{text}");
    }
}

/// Keys of a map attribute whose values differ between a plan's before and after.
fn changed_keys(change: &serde_json::Value, attr: &str) -> Vec<String> {
    let before = change["before"][attr].as_object().cloned().unwrap_or_default();
    let after = change["after"][attr].as_object().cloned().unwrap_or_default();
    let mut keys: Vec<String> = before.keys().chain(after.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter(|k| before.get(k) != after.get(k)).collect()
}

#[test]
fn version_change_plans_exactly_the_changed_manifests() {
    let ws = Workspace::new(&config(r#"["nemo.example.com"]"#, "  kubernetes_version = \"v1.33.5\""));
    ws.apply();
    ws.write(
        "main.tf",
        &config(r#"["nemo.example.com"]"#, "  kubernetes_version = \"v1.34.3\""),
    );
    ws.ok(&["plan", "-input=false", "-out=upgrade.plan"]);
    let plan: serde_json::Value = serde_json::from_str(&ws.ok(&["show", "-json", "upgrade.plan"])).unwrap();
    let change = &plan["resource_changes"][0]["change"];
    assert_eq!(
        change["actions"],
        serde_json::json!(["update"]),
        "an upgrade is an in-place update"
    );
    assert!(
        change["after_unknown"].as_object().is_none_or(|u| u
            .values()
            .all(|v| v == false || v.as_object().is_some_and(|m| m.is_empty()))),
        "nothing is unknown: the PKI does not change, so every manifest is known at plan time: {}",
        change["after_unknown"]
    );
    let manifests = changed_keys(change, "manifests");
    assert!(!manifests.is_empty(), "the control plane's manifests change");
    for k in &manifests {
        // The new apiserver generation is compared with the old one.
        let before_key = match change["before"]["manifests"][k].as_str() {
            Some(_) => k.clone(),
            None => manifests
                .iter()
                .find(|o| o.contains("kube-apiserver-v1-33"))
                .cloned()
                .unwrap_or_default(),
        };
        let before = change["before"]["manifests"][&before_key].as_str().unwrap_or_default();
        match change["after"]["manifests"][k].as_str() {
            // Every new line is about the version: an image tag, or the apiserver generation.
            Some(after) => {
                let old: std::collections::BTreeSet<&str> = before.lines().collect();
                for line in after.lines().filter(|l| !old.contains(l)) {
                    assert!(
                        line.contains("image") || line.contains("1.34") || line.contains("1-34"),
                        "{k}: a version change changed an unrelated line: {line:?}"
                    );
                }
            }
            // Only the old apiserver generation leaves (blue/green: the new one has its own name).
            None => assert!(k.contains("kube-apiserver-v1-33"), "{k} removed by a version change"),
        }
    }
    for k in changed_keys(change, "assets") {
        assert!(
            k.starts_with("manifests/")
                || k.starts_with("bootstrap-manifests/")
                || k.starts_with("recovery-manifests/")
                || k.starts_with("node/"),
            "{k} changed with the version; key material must not"
        );
    }
    assert!(
        changed_keys(change, "secret_manifests").is_empty(),
        "Secrets do not change with the version"
    );
    ws.ok(&["apply", "-input=false", "upgrade.plan"]);
    let (changes, text) = ws.plan_has_changes();
    assert!(!changes, "{text}");
}

#[test]
fn a_version_change_kubernetes_cannot_make_is_refused_at_plan() {
    let at = |v: &str| config(r#"["nemo.example.com"]"#, &format!("  kubernetes_version = \"{v}\""));
    let ws = Workspace::new(&at("v1.34.3"));
    ws.apply();
    ws.write("main.tf", &at("v1.36.1"));
    let text = ws.fails(&["plan", "-input=false", "-no-color"]);
    assert!(
        text.contains("kubernetes_version") && text.contains("skips 1.35") && text.contains("v1.35.x release first"),
        "a skipped minor is refused on the attribute, saying what to write:\n{text}"
    );
    ws.write("main.tf", &at("v1.33.5"));
    let text = ws.fails(&["plan", "-input=false", "-no-color"]);
    assert!(text.contains("does not support going back"), "{text}");
    // A patch downgrade and the next minor are fine.
    ws.write("main.tf", &at("v1.34.2"));
    assert!(ws.plan_has_changes().0);
    ws.write("main.tf", &at("v1.35.4"));
    assert!(ws.plan_has_changes().0);
}

/// What the `kubernetes` and `helm` providers take, as separate attributes: the key is
/// sensitive, and each equals the file the admin kubeconfig embeds.
#[test]
fn admin_credentials_for_the_providers_that_follow() {
    let ws = Workspace::new(&config(r#"["nemo.example.com"]"#, ""));
    ws.apply();
    let values = ws.resource_values("selfhosted_cluster_assets");
    let files = assets(&ws);
    assert_eq!(values["admin_client_certificate"], files["tls/admin.crt"].as_str());
    assert_eq!(values["admin_client_key"], files["tls/admin.key"].as_str());
    assert_eq!(values["ca_certificate"], files["tls/ca.crt"].as_str());
    let state: serde_json::Value = serde_json::from_str(&ws.ok(&["show", "-json"])).unwrap();
    let resource = &state["values"]["root_module"]["resources"][0];
    assert_eq!(
        resource["sensitive_values"]["admin_client_key"], true,
        "{}",
        resource["sensitive_values"]
    );
    assert!(
        resource["sensitive_values"].get("admin_client_certificate").is_none(),
        "a certificate is not secret"
    );
    std::fs::write(ws.path().join("admin.crt"), files["tls/admin.crt"].as_str()).unwrap();
    std::fs::write(ws.path().join("ca.crt"), files["tls/ca.crt"].as_str()).unwrap();
    openssl_verify(ws.path(), "ca.crt", "admin.crt");
}

/// The names the rendered apiservers and RBAC trust are the names the PKI issues: the
/// front-proxy client's CN (`--requestheader-allowed-names`) and the kubelet client's group
/// (bound to `system:kubelet-api-admin`).
#[test]
fn the_rendered_control_plane_trusts_the_names_the_pki_issues() {
    use selfhosted_manifests::control_plane as rendered;
    use selfhosted_pki::certs as issued;
    assert_eq!(rendered::FRONT_PROXY_CLIENT_CN, issued::FRONT_PROXY_CLIENT_CN);
    assert_eq!(rendered::KUBELET_CLIENT_GROUP, issued::KUBELET_CLIENT_GROUP);
}
