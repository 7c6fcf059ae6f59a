//! The computed attributes, derived from the assets. Each output is a pure
//! function of the assets (and the inputs), so plan — where some assets are
//! not yet known — and apply derive them the same way.

use std::collections::BTreeMap;

use selfhosted_pki::{Assets, PkiParams};
use selfhosted_protocol::value::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::schema::attr;

/// Assets as they will be: `None` for a file whose content is only known after apply.
pub type PlannedAssets = BTreeMap<String, Option<String>>;

/// Known assets as planned assets.
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

/// Sets every computed attribute of `state` from the planned assets.
/// `known_now`: the subset of assets that is already known, for parsing.
pub fn set_all(state: &mut Value, params: &PkiParams, assets: &PlannedAssets) {
    let known_assets: Assets = assets
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
        .collect();
    state.set_attr(attr::ID, Value::from(params.cluster_name.as_str()));
    state.set_attr(
        attr::ASSETS,
        Value::Map(
            assets
                .iter()
                .map(|(k, v)| (k.clone(), v.as_deref().map_or(Value::Unknown, Value::from)))
                .collect(),
        ),
    );
    state.set_attr(
        attr::SERVER_URL,
        selfhosted_pki::server_url(params).map_or(Value::Null, Value::from),
    );
    state.set_attr(
        attr::CLUSTER_DNS_SERVICE_IP,
        selfhosted_pki::cluster_dns_ip(&params.service_cidr).map_or(Value::Null, |ip| Value::from(ip.to_string())),
    );
    state.set_attr(attr::CA_CERTIFICATE, file(assets, "tls/ca.crt"));
    state.set_attr(attr::ETCD_CA_CERTIFICATE, file(assets, "tls/etcd-ca.crt"));
    state.set_attr(
        attr::ADMIN_KUBECONFIG,
        file(assets, selfhosted_pki::plan::ADMIN_KUBECONFIG),
    );
    state.set_attr(
        attr::KUBELET_BOOTSTRAP_KUBECONFIG,
        file(assets, selfhosted_pki::plan::KUBELET_BOOTSTRAP_KUBECONFIG),
    );

    // Expiries: parse what is known; a certificate not yet issued is unknown.
    let parsed = selfhosted_pki::expiries(&known_assets).unwrap_or_default();
    let mut expiry = BTreeMap::new();
    let mut all_known = true;
    for (name, path) in selfhosted_pki::certificate_paths(params) {
        let v = match (assets.get(&path), parsed.get(name)) {
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
}

/// The digest `asset_dir` should have for these assets, if all are known.
pub fn asset_dir_digest(assets: &PlannedAssets) -> Value {
    if assets.values().any(Option::is_none) {
        return Value::Unknown;
    }
    Value::from(crate::asset_dir::digest(
        assets
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref().unwrap_or_default().as_bytes())),
    ))
}
