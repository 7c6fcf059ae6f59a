//! Everything carrying key material: the Secrets of the self-hosted apiserver and
//! controller-manager, the kubelet bootstrap-token Secrets, and the files of the bootstrap
//! control plane's hostPath folder. Kept apart from the public manifests so those stay
//! known at plan time.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::control_plane::{APISERVER_SECRET, CONTROLLER_MANAGER_SECRET};
use crate::kubelet::{CONTROLLERS_BOOTSTRAP_GROUP, WORKERS_BOOTSTRAP_GROUP};
use crate::object::{meta, NAMESPACE};
use crate::RenderError;

/// (file name in the Secret / bootstrap folder, key of the PKI material map).
const APISERVER_FILES: &[(&str, &str)] = &[
    ("ca.crt", "tls/ca.crt"),
    ("apiserver.crt", "tls/apiserver.crt"),
    ("apiserver.key", "tls/apiserver.key"),
    ("apiserver-kubelet-client.crt", "tls/apiserver-kubelet-client.crt"),
    ("apiserver-kubelet-client.key", "tls/apiserver-kubelet-client.key"),
    ("front-proxy-ca.crt", "tls/front-proxy-ca.crt"),
    ("front-proxy-client.crt", "tls/front-proxy-client.crt"),
    ("front-proxy-client.key", "tls/front-proxy-client.key"),
    ("service-account.key", "tls/service-account.key"),
    ("service-account.pub", "tls/service-account.pub"),
    ("etcd-ca.crt", "tls/etcd-ca.crt"),
    ("etcd-client.crt", "tls/etcd-client.crt"),
    ("etcd-client.key", "tls/etcd-client.key"),
];

const CONTROLLER_MANAGER_FILES: &[(&str, &str)] = &[
    ("ca.crt", "tls/ca.crt"),
    ("ca.key", "tls/ca.key"),
    ("service-account.key", "tls/service-account.key"),
    ("kubeconfig", "auth/controller-manager.kubeconfig"),
];

/// Files of `/etc/kubernetes/bootstrap-secrets/` (the bootstrap apiserver serves with its
/// own certificate, so the pivot can tell the two apiservers apart).
const BOOTSTRAP_FILES: &[(&str, &str)] = &[
    ("ca.crt", "tls/ca.crt"),
    ("ca.key", "tls/ca.key"),
    ("bootstrap-apiserver.crt", "tls/bootstrap-apiserver.crt"),
    ("bootstrap-apiserver.key", "tls/bootstrap-apiserver.key"),
    ("apiserver-kubelet-client.crt", "tls/apiserver-kubelet-client.crt"),
    ("apiserver-kubelet-client.key", "tls/apiserver-kubelet-client.key"),
    ("front-proxy-ca.crt", "tls/front-proxy-ca.crt"),
    ("front-proxy-client.crt", "tls/front-proxy-client.crt"),
    ("front-proxy-client.key", "tls/front-proxy-client.key"),
    ("service-account.key", "tls/service-account.key"),
    ("service-account.pub", "tls/service-account.pub"),
    ("etcd-ca.crt", "tls/etcd-ca.crt"),
    ("etcd-client.crt", "tls/etcd-client.crt"),
    ("etcd-client.key", "tls/etcd-client.key"),
    ("controller-manager.kubeconfig", "auth/controller-manager.kubeconfig"),
    ("scheduler.kubeconfig", "auth/scheduler.kubeconfig"),
];

/// Files of `/etc/kubernetes/recovery-secrets/` on every controller: what the recovery
/// apiserver serves with (the bootstrap apiserver's certificate, so it is never taken for the
/// self-hosted one), and the CA that issued the self-hosted apiserver's certificate it hands
/// back to. No CA key
/// and no kubeconfig: it runs no controller-manager or scheduler.
const RECOVERY_FILES: &[(&str, &str)] = &[
    ("ca.crt", "tls/ca.crt"),
    ("recovery-apiserver.crt", "tls/bootstrap-apiserver.crt"),
    ("recovery-apiserver.key", "tls/bootstrap-apiserver.key"),
    ("apiserver-kubelet-client.crt", "tls/apiserver-kubelet-client.crt"),
    ("apiserver-kubelet-client.key", "tls/apiserver-kubelet-client.key"),
    ("front-proxy-ca.crt", "tls/front-proxy-ca.crt"),
    ("front-proxy-client.crt", "tls/front-proxy-client.crt"),
    ("front-proxy-client.key", "tls/front-proxy-client.key"),
    ("service-account.key", "tls/service-account.key"),
    ("service-account.pub", "tls/service-account.pub"),
    ("etcd-ca.crt", "tls/etcd-ca.crt"),
    ("etcd-client.crt", "tls/etcd-client.crt"),
    ("etcd-client.key", "tls/etcd-client.key"),
];

/// Key of the workers' bootstrap token in the material map (`<id>.<secret>`).
pub const BOOTSTRAP_TOKEN_KEY: &str = "auth/bootstrap-token";
/// Key of the controllers' bootstrap token in the material map.
pub const CONTROLLER_BOOTSTRAP_TOKEN_KEY: &str = "auth/controller-bootstrap-token";

/// Each bootstrap token with the group it adds to `system:bootstrappers`: the groups are
/// what tells the two apart when a kubelet asks for its certificate.
const TOKENS: [(&str, &str, &str); 2] = [
    (
        BOOTSTRAP_TOKEN_KEY,
        WORKERS_BOOTSTRAP_GROUP,
        "kubelet TLS bootstrapping of workers (terraform-provider-selfhosted)",
    ),
    (
        CONTROLLER_BOOTSTRAP_TOKEN_KEY,
        CONTROLLERS_BOOTSTRAP_GROUP,
        "kubelet TLS bootstrapping of controllers (terraform-provider-selfhosted)",
    ),
];

fn get<'a>(material: &'a BTreeMap<String, String>, key: &str) -> Result<&'a str, RenderError> {
    material
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| RenderError::MissingMaterial(key.to_string()))
}

fn secret(name: &str, files: &[(&str, &str)], material: &BTreeMap<String, String>) -> Result<Value, RenderError> {
    let mut data = Map::new();
    for (file, key) in files {
        let v = get(material, key)?;
        data.insert(
            (*file).to_string(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
        );
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(name, Some(NAMESPACE), &[]),
        "type": "Opaque",
        "data": data
    }))
}

/// Split and check `<id>.<secret>` (6 and 16 characters of `[a-z0-9]`).
pub fn split_token(token: &str) -> Result<(&str, &str), RenderError> {
    let token = token.trim();
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    match token.split_once('.') {
        Some((id, secret)) if ok(id, 6) && ok(secret, 16) => Ok((id, secret)),
        _ => Err(RenderError::BadBootstrapToken),
    }
}

/// A `bootstrap.kubernetes.io/token` Secret for `token`, adding `group` to its holder.
fn token_secret(token: &str, group: &str, description: &str) -> Result<Value, RenderError> {
    let (id, secret) = split_token(token)?;
    let b64 = |s: &str| Value::String(base64::engine::general_purpose::STANDARD.encode(s));
    let mut data = Map::new();
    data.insert("description".into(), b64(description));
    data.insert("token-id".into(), b64(id));
    data.insert("token-secret".into(), b64(secret));
    data.insert("usage-bootstrap-authentication".into(), b64("true"));
    data.insert("usage-bootstrap-signing".into(), b64("true"));
    data.insert("auth-extra-groups".into(), b64(group));
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(&format!("bootstrap-token-{id}"), Some(NAMESPACE), &[]),
        "type": "bootstrap.kubernetes.io/token",
        "data": data
    }))
}

/// The Secrets applied into the cluster.
pub fn cluster_secrets(material: &BTreeMap<String, String>) -> Result<Vec<Value>, RenderError> {
    let mut out = vec![
        secret(APISERVER_SECRET, APISERVER_FILES, material)?,
        secret(CONTROLLER_MANAGER_SECRET, CONTROLLER_MANAGER_FILES, material)?,
    ];
    for (key, group, description) in TOKENS {
        out.push(token_secret(get(material, key)?, group, description)?);
    }
    Ok(out)
}

/// Files for `/etc/kubernetes/bootstrap-secrets/`, keyed `bootstrap-secrets/<file>`.
pub fn bootstrap_files(material: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, RenderError> {
    folder_files("bootstrap-secrets", BOOTSTRAP_FILES, material)
}

/// Files for `/etc/kubernetes/recovery-secrets/`, keyed `recovery-secrets/<file>`.
pub fn recovery_files(material: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, RenderError> {
    folder_files("recovery-secrets", RECOVERY_FILES, material)
}

fn folder_files(
    folder: &str,
    files: &[(&str, &str)],
    material: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, RenderError> {
    files
        .iter()
        .map(|(file, key)| Ok((format!("{folder}/{file}"), get(material, key)?.to_string())))
        .collect()
}
