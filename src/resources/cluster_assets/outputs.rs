//! The computed attributes, derived from the PKI assets and the rendered
//! manifests. Plan — where some contents are not yet known — and apply
//! derive them the same way.

use std::collections::BTreeMap;

use selfhosted_pki::{Assets, PkiParams};
use selfhosted_protocol::value::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::render::{Public, Secrets};
use super::schema::{attr, NODE_ATTRIBUTES};

/// Files as they will be: `None` for a file whose content is only known after apply.
pub type PlannedAssets = BTreeMap<String, Option<String>>;

/// Known files as planned files.
pub fn known(assets: &Assets) -> PlannedAssets {
    assets.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect()
}

fn rfc3339(t: OffsetDateTime) -> Value {
    t.format(&Rfc3339).map(Value::from).unwrap_or(Value::Unknown)
}

fn file(assets: &PlannedAssets, path: &str) -> Value {
    match assets.get(path) {
        Some(Some(s)) => Value::from(s.as_str()),
        Some(None) => Value::Unknown,
        None => Value::Null,
    }
}

fn planned_map(files: &PlannedAssets) -> Value {
    Value::Map(
        files
            .iter()
            .map(|(k, v)| (k.clone(), v.as_deref().map_or(Value::Unknown, Value::from)))
            .collect(),
    )
}

fn known_map(files: &BTreeMap<String, String>) -> Value {
    Value::Map(
        files
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

/// Every file of the resource: PKI, public manifests, Secrets. `None` when
/// not even the file names are known yet.
pub fn all_files(pki: &PlannedAssets, public: &Public, secrets: &Secrets) -> Option<PlannedAssets> {
    let mut out = pki.clone();
    out.extend(public.files().into_iter().map(|(k, v)| (k, Some(v))));
    match secrets {
        Secrets::Known {
            secret_manifests,
            bootstrap_secrets,
            recovery_secrets,
        } => {
            out.extend(
                secret_manifests
                    .iter()
                    .chain(bootstrap_secrets)
                    .chain(recovery_secrets)
                    .map(|(k, v)| (k.clone(), Some(v.clone()))),
            );
        }
        Secrets::KeysOnly(keys) => out.extend(keys.iter().map(|k| (k.clone(), None))),
        Secrets::Unknown => return None,
    }
    Some(out)
}

/// Sets every computed attribute of `state`.
pub fn set_all(state: &mut Value, pki_params: &PkiParams, pki: &PlannedAssets, public: &Public, secrets: &Secrets) {
    let known_pki: Assets = pki
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
        .collect();
    let files = all_files(pki, public, secrets);
    state.set_attr(attr::ID, Value::from(pki_params.cluster_name.as_str()));
    state.set_attr(attr::ASSETS, files.as_ref().map_or(Value::Unknown, planned_map));
    state.set_attr(
        attr::ASSET_DIR_SHA256,
        match (state.get(attr::ASSET_DIR).is_some_and(|d| !d.is_null()), &files) {
            (false, _) => Value::Null,
            (true, Some(files)) => asset_dir_digest(files),
            (true, None) => Value::Unknown,
        },
    );
    state.set_attr(
        attr::SERVER_URL,
        selfhosted_pki::server_url(pki_params).map_or(Value::Null, Value::from),
    );
    state.set_attr(
        attr::CLUSTER_DNS_SERVICE_IP,
        selfhosted_pki::cluster_dns_ip(&pki_params.service_cidr).map_or(Value::Null, |ip| Value::from(ip.to_string())),
    );
    state.set_attr(attr::CA_CERTIFICATE, file(pki, "tls/ca.crt"));
    state.set_attr(attr::ETCD_CA_CERTIFICATE, file(pki, "tls/etcd-ca.crt"));
    state.set_attr(
        attr::ADMIN_KUBECONFIG,
        file(pki, selfhosted_pki::plan::ADMIN_KUBECONFIG),
    );
    state.set_attr(attr::ADMIN_CLIENT_CERTIFICATE, file(pki, "tls/admin.crt"));
    state.set_attr(attr::ADMIN_CLIENT_KEY, file(pki, "tls/admin.key"));
    state.set_attr(
        attr::KUBELET_BOOTSTRAP_KUBECONFIG,
        file(pki, selfhosted_pki::plan::KUBELET_BOOTSTRAP_KUBECONFIG),
    );

    // Expiries: parse what is known; a certificate not yet issued is unknown.
    let parsed = selfhosted_pki::expiries(&known_pki).unwrap_or_default();
    let mut expiry = BTreeMap::new();
    let mut all_known = true;
    for (name, path) in selfhosted_pki::certificate_paths(pki_params) {
        let v = match (pki.get(&path), parsed.get(name)) {
            (Some(Some(_)), Some(t)) => rfc3339(*t),
            (None, _) => continue,
            _ => {
                all_known = false;
                Value::Unknown
            }
        };
        expiry.insert(name.to_owned(), v);
    }
    state.set_attr(attr::CERTIFICATE_EXPIRY, Value::Map(expiry));
    state.set_attr(
        attr::VALIDITY_END_TIME,
        match parsed.values().min() {
            Some(t) if all_known => rfc3339(*t),
            _ => Value::Unknown,
        },
    );

    state.set_attr(attr::MANIFESTS, known_map(&public.manifests));
    state.set_attr(attr::BOOTSTRAP_MANIFESTS, known_map(&public.bootstrap_manifests));
    state.set_attr(
        attr::SECRET_MANIFESTS,
        match secrets {
            Secrets::Known { secret_manifests, .. } => known_map(secret_manifests),
            Secrets::KeysOnly(keys) => Value::Map(
                keys.iter()
                    .filter(|k| k.starts_with("manifests/"))
                    .map(|k| (k.clone(), Value::Unknown))
                    .collect(),
            ),
            Secrets::Unknown => Value::Unknown,
        },
    );
    state.set_attr(attr::APISERVER_GENERATION, Value::from(public.generation.as_str()));
    state.set_attr(attr::NODE, node_value(public));
    state.set_attr(
        attr::JOINING_WORKER_IGNITION,
        match (
            pki.get(selfhosted_pki::plan::KUBELET_BOOTSTRAP_KUBECONFIG),
            pki.get("tls/ca.crt"),
        ) {
            (Some(Some(kubeconfig)), Some(Some(ca))) => Value::from(
                selfhosted_manifests::kubelet::joining_worker_ignition(&public.node, kubeconfig, ca),
            ),
            _ => Value::Unknown,
        },
    );
}

fn node_value(public: &Public) -> Value {
    let n = &public.node;
    let strings = |v: &[String]| Value::string_list(v.iter().cloned());
    let value = |name: &str| -> Value {
        match name {
            "kubelet_config" => Value::from(n.kubelet_config.as_str()),
            "kubelet_flags" => strings(&n.kubelet_flags),
            "controller_kubelet_flags" => strings(&n.controller_kubelet_flags),
            "cluster_dns_ip" => Value::from(n.cluster_dns_ip.as_str()),
            "cluster_domain" => Value::from(n.cluster_domain.as_str()),
            "static_pod_path" => Value::from(n.static_pod_path.as_str()),
            "bootstrap_kubeconfig_path" => Value::from(n.bootstrap_kubeconfig_path.as_str()),
            "ca_path" => Value::from(n.ca_path.as_str()),
            "controller_label" => Value::from(n.controller_label.as_str()),
            "controller_taint" => Value::from(n.controller_taint.as_str()),
            "controller_unit" => Value::from(n.controller_unit.as_str()),
            "worker_unit" => Value::from(n.worker_unit.as_str()),
            "controller_butane" => Value::from(n.controller_butane.as_str()),
            "worker_butane" => Value::from(n.worker_butane.as_str()),
            "kubelet_config_path" => Value::from(selfhosted_manifests::kubelet::KUBELET_CONFIG_PATH),
            "host_os" => Value::from(n.host_os.name()),
            "etcd_unit" => Value::from(n.etcd_unit.as_str()),
            "etcd_path_unit" => Value::from(n.etcd_path_unit.as_str()),
            "etcd_env" => strings(&n.etcd_env),
            "containerd_config" => n.containerd_config.as_deref().map_or(Value::Null, Value::from),
            "controller_ignition" => strings(&n.controller_ignition),
            "worker_ignition" => Value::from(n.worker_ignition.as_str()),
            _ => Value::Null,
        }
    };
    Value::object(NODE_ATTRIBUTES.iter().map(|(name, _)| (*name, value(name))))
}

/// The digest `asset_dir` should have for these files, if all are known.
pub fn asset_dir_digest(files: &PlannedAssets) -> Value {
    if files.values().any(Option::is_none) {
        return Value::Unknown;
    }
    Value::from(crate::asset_dir::digest(
        files
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref().unwrap_or_default().as_bytes())),
    ))
}

/// `a` where `b` agrees with it, unknown where not: elements of maps and objects with the
/// same keys are compared one by one, so one manifest that names a host does not hide the
/// others.
pub fn where_same(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Map(x), Value::Map(y)) if x.keys().eq(y.keys()) => {
            Value::Map(x.iter().map(|(k, v)| (k.clone(), where_same(v, &y[k]))).collect())
        }
        (Value::Object(x), Value::Object(y)) if x.keys().eq(y.keys()) => {
            Value::Object(x.iter().map(|(k, v)| (k.clone(), where_same(v, &y[k]))).collect())
        }
        (Value::List(x), Value::List(y)) if x.len() == y.len() => {
            Value::List(x.iter().zip(y).map(|(v, w)| where_same(v, w)).collect())
        }
        _ if a == b => a.clone(),
        _ => Value::Unknown,
    }
}
