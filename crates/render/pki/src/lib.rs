//! Pure rendering of the PKI of a self-hosted Kubernetes cluster: the three
//! CAs, every certificate and key, the service-account key pair, the kubelet
//! bootstrap token and the kubeconfigs — as an [`Assets`] map of relative
//! path → content in a bootkube-like layout. No network, no disk, no async;
//! keys come from OS randomness, time is passed in.
//!
//! - [`params`]: raw inputs, their checks ([`validate`], [`parse`]) and [`PkiParams`].
//! - [`plan`](mod@plan): which items must be (re)issued and why, without generating keys.
//! - [`issue`](fn@issue): carry out the plan.
//! - [`renewal`]: the single early-renewal rule.
//! - `certs`, `keys`, `kubeconfig`, `token`: the pieces.
//!
//! Layout of [`Assets`] (`.crt`/`.key` pairs, keys PKCS#8 PEM):
//!
//! | path | what |
//! |---|---|
//! | `tls/ca.*` | kube CA (may be bring-your-own) |
//! | `tls/apiserver.*` | self-hosted apiserver serving cert |
//! | `tls/bootstrap-apiserver.*` | bootstrap apiserver serving cert: same names, own key |
//! | `tls/apiserver-kubelet-client.*` | apiserver → kubelet client (O=selfhosted:apiserver-kubelet-clients, bound to `system:kubelet-api-admin`) |
//! | `tls/admin.*` | admin client (CN admin, O admin_organization) |
//! | `tls/controller-manager.*`, `tls/scheduler.*` | bootstrap control-plane clients |
//! | `tls/front-proxy-ca.*`, `tls/front-proxy-client.*` | aggregation layer |
//! | `tls/service-account.key`, `tls/service-account.pub` | token signing key pair |
//! | `tls/etcd-ca.*`, `tls/etcd-client.*` | etcd CA, apiserver → etcd client |
//! | `tls/etcd/server.*`, `tls/etcd/peer.*` | etcd serving and peer (serverAuth + clientAuth) |
//! | `auth/admin.kubeconfig` | admin, public server URL |
//! | `auth/kubelet-bootstrap.kubeconfig` | kubelet TLS bootstrapping of workers (the workers' token) |
//! | `auth/controller-bootstrap.kubeconfig` | kubelet TLS bootstrapping of controllers (the controllers' token) |
//! | `auth/controller-manager.kubeconfig`, `auth/scheduler.kubeconfig` | bootstrap control plane, `https://127.0.0.1:<port>` |
//! | `auth/bootstrap-token`, `auth/controller-bootstrap-token` | `<id>.<secret>`: the workers', the controllers' |

pub mod certs;
mod issue;
pub mod keys;
mod kubeconfig;
pub mod params;
pub mod plan;
pub mod renewal;
pub mod token;

use std::collections::BTreeMap;

use time::OffsetDateTime;

pub use certs::{CaId, CertError, CertFacts};
pub use issue::issue;
pub use keys::KeyError;
pub use params::{
    cluster_dns_ip, first_service_ip, parse, server_url, validate, CaPair, Host, InputError, KeyAlgorithm, NoApiServer,
    PkiParams, RawParams, UnknownKeyAlgorithm,
};
pub use plan::{plan, Action, Plan, PlannedItem, Reason};

/// Relative path → content of every rendered file.
pub type Assets = BTreeMap<String, String>;

/// Failures of planning or issuing.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The params cannot describe a PKI.
    #[error("the params cannot describe a PKI")]
    Params(#[from] NoApiServer),
    /// A certificate could not be issued or read.
    #[error("issuing or reading a certificate")]
    Cert(#[from] CertError),
    /// A key could not be generated or loaded.
    #[error("generating or loading a key")]
    Key(#[from] KeyError),
    /// Internal inconsistency between plan and issue (a bug, reported instead of a panic).
    #[error("inconsistent plan: {0}")]
    Inconsistent(String),
}

/// Whether the asset at `path` is secret (private keys, the bootstrap token,
/// kubeconfigs holding a key or token); certificates and public keys are not.
pub fn is_secret(path: &str) -> bool {
    path.ends_with(".key") || path.ends_with(".kubeconfig") || plan::TOKENS.iter().any(|(_, p)| *p == path)
}

/// Names and paths of every certificate, CAs first.
pub fn certificate_paths(params: &PkiParams) -> Vec<(&'static str, String)> {
    CaId::ALL
        .into_iter()
        .map(certs::ca_spec)
        .chain(certs::leaf_specs(params))
        .map(|s| (s.name, s.cert_path()))
        .collect()
}

/// Expiry of every certificate in `assets`, by certificate name (`ca`, `apiserver`, `etcd-server`, ...).
///
/// # Errors
/// [`PkiError::Cert`] if a certificate in the layout is unreadable.
pub fn expiries(assets: &Assets) -> Result<BTreeMap<String, OffsetDateTime>, PkiError> {
    let mut out = BTreeMap::new();
    let specs = CaId::ALL
        .into_iter()
        .map(certs::ca_spec)
        .chain(certs::leaf_specs(&layout_params()));
    for spec in specs {
        if let Some(pem) = assets.get(&spec.cert_path()) {
            out.insert(
                spec.name.to_owned(),
                certs::read_cert(&spec.cert_path(), pem)?.not_after,
            );
        }
    }
    Ok(out)
}

/// Whether a plain plan at `now` would renew something because it is inside
/// its early-renewal window (the same rule [`plan`](fn@plan) applies). For a
/// Terraform read: if true, mark the resource for an in-place update.
///
/// # Errors
/// As [`plan`](fn@plan).
pub fn is_ready_for_renewal(params: &PkiParams, assets: &Assets, now: OffsetDateTime) -> Result<bool, PkiError> {
    Ok(plan::plan(params, Some(assets), now)?.has_renewals())
}

/// The earliest time a certificate in `assets` enters its early-renewal window
/// (`None` if there is no certificate). A bring-your-own CA's window is
/// included although only its leaves get renewed.
///
/// # Errors
/// As [`expiries`].
pub fn next_renewal(assets: &Assets, early_renewal: time::Duration) -> Result<Option<OffsetDateTime>, PkiError> {
    Ok(expiries(assets)?
        .into_values()
        .map(|t| renewal::renewal_time(t, early_renewal))
        .min())
}

/// Params whose only use is listing the layout (names and paths do not depend on them).
fn layout_params() -> PkiParams {
    PkiParams {
        cluster_name: String::new(),
        api_servers: vec![],
        api_server_port: params::DEFAULT_API_SERVER_PORT,
        etcd_servers: vec![],
        service_cidr: ipnet::IpNet::V4(ipnet::Ipv4Net::default()),
        cluster_domain_suffix: String::new(),
        key_algorithm: KeyAlgorithm::default(),
        ca_validity: time::Duration::ZERO,
        leaf_validity: time::Duration::ZERO,
        early_renewal: time::Duration::ZERO,
        byo_ca: None,
        admin_organization: String::new(),
    }
}
