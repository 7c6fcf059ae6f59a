//! Every rendered object of every supported minor × networking choice × kube-proxy and
//! CoreDNS on/off validates with `kubernetes-validate --strict` (PyPI, schemas 1.25–1.37).
//!
//! v1.20 has no schema there: its renders are validated against the 1.25 schema (the
//! oldest shipped); objects whose API 1.25 no longer serves (`policy/v1beta1`
//! PodDisruptionBudget, removed in 1.25) are reported as skipped, and the test fails if
//! anything else is missing a schema.

mod common;

use std::fmt::Write as _;
use std::process::Command;

use selfhosted_manifests::{render, versions, Networking};

#[test]
fn every_combination_validates_strictly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut jobs = String::new();
    let mut combos = 0usize;
    let mut files = 0usize;
    for row in versions::TABLE {
        for net in Networking::ALL {
            for kube_proxy in [true, false] {
                for coredns in [true, false] {
                    let mut raw = common::raw();
                    raw.kubernetes_version = Some(format!("v1.{}.0", row.minor));
                    raw.networking = Some(net.name().into());
                    raw.kube_proxy = Some(kube_proxy);
                    raw.coredns = Some(coredns);
                    if kube_proxy && coredns {
                        raw.admin_group = Some("selfhosted:cluster-admins".into());
                        raw.extra_manifests = vec![
                            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n  namespace: apps\ndata:\n  a: b\n".into(),
                        ];
                    }
                    let p = common::parse(&raw);
                    let r = render(&p, &common::material()).expect("render");
                    combos += 1;
                    let schema = if row.minor < 25 {
                        "1.25".to_string()
                    } else {
                        format!("1.{}", row.minor)
                    };
                    let base = dir.path().join(format!(
                        "v1.{}-{}-kp{}-dns{}",
                        row.minor,
                        net.name(),
                        kube_proxy,
                        coredns
                    ));
                    for map in [&r.manifests, &r.secret_manifests, &r.bootstrap_manifests] {
                        for (name, yaml) in map {
                            let path = base.join(name);
                            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                            std::fs::write(&path, yaml).expect("write");
                            writeln!(jobs, "{schema}\t{}", path.display()).expect("fmt");
                            files += 1;
                        }
                    }
                }
            }
        }
    }
    let jobs_file = dir.path().join("jobs.tsv");
    std::fs::write(&jobs_file, jobs).expect("write jobs");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/validate.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&jobs_file)
        .output()
        .expect("python3 with kubernetes-validate (pip install kubernetes-validate) must be installed");
    assert!(
        out.status.success(),
        "validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("validator JSON");
    let failures = report["failures"].as_array().expect("failures");
    let missing = report["missing"].as_array().expect("missing");
    for m in missing {
        let in_120 = m["path"].as_str().is_some_and(|p| p.contains("/v1.20-"));
        assert!(
            in_120 && m["apiVersion"] == "policy/v1beta1" && m["kind"] == "PodDisruptionBudget",
            "no schema for an object outside the documented v1.20 exception: {m}"
        );
    }
    assert!(
        failures.is_empty(),
        "{} objects fail strict validation, e.g. {:#}",
        failures.len(),
        failures[0]
    );
    let objects = report["objects"].as_u64().expect("objects");
    let validated = objects - missing.len() as u64;
    println!(
        "kubernetes-validate --strict: {combos} combinations ({} minors x {} networking x kube_proxy on/off x coredns on/off), {files} files, {objects} objects, {validated} validated ({} distinct), {} skipped (v1.20 policy/v1beta1 PDB, no schema in 1.25+)",
        versions::TABLE.len(),
        Networking::ALL.len(),
        report["unique"],
        missing.len()
    );
    assert!(validated > 0);
}
