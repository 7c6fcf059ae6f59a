//! Ignition configs (the JSON Fedora CoreOS and Flatcar boot from), written directly: a
//! Butane snippet needs a transpiler the user may not have, and a hand conversion in HCL
//! gets file modes wrong (YAML's `0644` is octal, Ignition's `mode` decimal).

use base64::Engine;
use serde_json::{json, Value};

use super::HostOs;

/// A file of the config: path, mode (as the octal number it is, e.g. `0o644`), contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Absolute path on the host.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Contents.
    pub contents: String,
}

impl File {
    /// A file readable by all (`0644`).
    pub fn public(path: &str, contents: String) -> File {
        File {
            path: path.into(),
            mode: 0o644,
            contents,
        }
    }

    /// A file only root reads (`0600`): credentials.
    pub fn secret(path: &str, contents: String) -> File {
        File {
            path: path.into(),
            mode: 0o600,
            contents,
        }
    }
}

/// A systemd unit: name, contents (`None` for a unit the OS ships, only enabled), drop-ins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// `kubelet.service`, …
    pub name: String,
    /// The unit file, if the config writes it.
    pub contents: Option<String>,
    /// Started at boot.
    pub enabled: bool,
    /// `(name, contents)` of drop-ins.
    pub drop_ins: Vec<(String, String)>,
}

impl Unit {
    /// A unit the config writes and enables.
    pub fn written(name: &str, contents: String) -> Unit {
        Unit {
            name: name.into(),
            contents: Some(contents),
            enabled: true,
            drop_ins: Vec::new(),
        }
    }

    /// A unit the OS ships, enabled (with drop-ins, if any).
    pub fn shipped(name: &str, drop_ins: Vec<(String, String)>) -> Unit {
        Unit {
            name: name.into(),
            contents: None,
            enabled: true,
            drop_ins,
        }
    }
}

fn data_url(contents: &str) -> String {
    format!(
        "data:;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(contents.as_bytes())
    )
}

/// The Ignition config of `files` and `units`, in the spec version `os` reads.
pub fn config(os: HostOs, files: &[File], units: &[Unit]) -> String {
    let files: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({
                "path": f.path,
                "mode": f.mode,
                "overwrite": true,
                "contents": { "source": data_url(&f.contents) }
            })
        })
        .collect();
    let units: Vec<Value> = units
        .iter()
        .map(|u| {
            let mut v = json!({ "name": u.name, "enabled": u.enabled });
            if let Some(c) = &u.contents {
                v["contents"] = json!(c);
            }
            if !u.drop_ins.is_empty() {
                v["dropins"] = u
                    .drop_ins
                    .iter()
                    .map(|(name, contents)| json!({ "name": name, "contents": contents }))
                    .collect();
            }
            v
        })
        .collect();
    json!({
        "ignition": { "version": os.ignition_version() },
        "storage": { "files": files },
        "systemd": { "units": units }
    })
    .to_string()
}
