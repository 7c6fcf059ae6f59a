//! The node contract's systemd units pass `systemd-analyze verify` (Debian `systemd`), for
//! every supported minor, with the kubelet binary swapped for `/bin/true` (the test machine
//! has no kubelet at /usr/bin).

mod common;

use std::process::Command;

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
            std::fs::create_dir_all(&sub).expect("mkdir");
            let mut paths = Vec::new();
            for unit in doc["systemd"]["units"].as_array().expect("units") {
                let name = unit["name"].as_str().expect("name");
                let text = unit["contents"]
                    .as_str()
                    .expect("contents")
                    .replace("/usr/bin/kubelet", "/bin/true");
                let path = sub.join(name);
                std::fs::write(&path, text).expect("write unit");
                paths.push(path);
            }
            let out = Command::new("systemd-analyze")
                .args(["verify", "--man=no"])
                .args(&paths)
                .output()
                .expect("systemd-analyze (Debian package systemd) must be installed");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && stderr.trim().is_empty(),
                "v1.{} {role}: {stderr}",
                row.minor
            );
            checked += paths.len();
        }
    }
    println!("systemd-analyze verify: {checked} units");
}
