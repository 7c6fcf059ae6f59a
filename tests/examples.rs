//! The examples as a user runs them: `terraform fmt` clean, the quickstart
//! applied, its bootstrap block planned against the placeholder hosts
//! (plans make no network calls), and each networking example planned.

mod support;

use std::process::Command;

use support::Workspace;

fn example(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("example exists")
}

#[test]
fn quickstart_applies_and_its_bootstrap_plans_against_placeholder_hosts() {
    let ws = Workspace::new(&example("examples/quickstart/main.tf"));
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
