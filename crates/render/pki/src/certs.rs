//! The certificates of a cluster: what each one must say ([`CertSpec`], built
//! from the params), issuing one, and reading back an issued one
//! ([`CertFacts`]) so a plan can compare it with what it must say.

use std::net::{IpAddr, Ipv4Addr};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::keys;
use crate::params::{first_service_ip, Host, KeyAlgorithm, PkiParams};

/// Certificates are valid from this long before `now`, for clocks that lag.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Subject CN of the front-proxy client certificate: the one name the apiservers accept
/// request headers from (`--requestheader-allowed-names`, rendered by `selfhosted_manifests`).
pub const FRONT_PROXY_CLIENT_CN: &str = "front-proxy-client";

/// Subject O of the apiserver's kubelet client certificate: a group the rendered RBAC binds
/// to the ClusterRole `system:kubelet-api-admin` (what the apiserver needs of kubelets).
/// Not `system:masters`, which no RBAC can revoke (certificates before this had it; a plan
/// re-issues them, "subject changed").
pub const KUBELET_CLIENT_GROUP: &str = "selfhosted:apiserver-kubelet-clients";

/// Failures of issuing or reading a certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A name could not be put into a SAN.
    #[error("certificate {cert}: SAN {name:?}")]
    San {
        /// Certificate name.
        cert: &'static str,
        /// The name.
        name: String,
        /// Cause.
        #[source]
        source: rcgen::Error,
    },
    /// Signing failed.
    #[error("certificate {cert}: signing")]
    Sign {
        /// Certificate name.
        cert: &'static str,
        /// Cause.
        #[source]
        source: rcgen::Error,
    },
    /// The issuing CA certificate could not be loaded as an issuer.
    #[error("certificate {cert}: loading its CA")]
    LoadIssuer {
        /// Certificate name.
        cert: &'static str,
        /// Cause.
        #[source]
        source: rcgen::Error,
    },
    /// A PEM certificate could not be parsed.
    #[error("{path}: not a PEM certificate")]
    Parse {
        /// Asset path.
        path: String,
    },
}

/// The three certificate authorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CaId {
    /// Kubernetes CA: apiserver, clients, kubelets (may be bring-your-own).
    Kube,
    /// etcd CA: etcd server, peer and client.
    Etcd,
    /// Front-proxy CA: the aggregation layer's client.
    FrontProxy,
}

impl CaId {
    /// All CAs.
    pub const ALL: [CaId; 3] = [CaId::Kube, CaId::Etcd, CaId::FrontProxy];

    /// Certificate name (as in [`crate::expiries`]).
    pub fn name(self) -> &'static str {
        match self {
            CaId::Kube => "ca",
            CaId::Etcd => "etcd-ca",
            CaId::FrontProxy => "front-proxy-ca",
        }
    }

    fn common_name(self) -> &'static str {
        match self {
            CaId::Kube => "kubernetes-ca",
            CaId::Etcd => "etcd-ca",
            CaId::FrontProxy => "front-proxy-ca",
        }
    }
}

/// What one certificate must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    /// Certificate name, e.g. `apiserver`.
    pub name: &'static str,
    /// Asset path without extension; `.crt` and `.key` are appended.
    pub stem: &'static str,
    /// The CA that signs it; `None` for a CA itself.
    pub issuer: Option<CaId>,
    /// Subject CN.
    pub common_name: String,
    /// Subject O (Kubernetes groups).
    pub organizations: Vec<String>,
    /// Subject alternative names, in order, without duplicates.
    pub sans: Vec<Host>,
    /// Extended key usage serverAuth.
    pub server_auth: bool,
    /// Extended key usage clientAuth.
    pub client_auth: bool,
}

impl CertSpec {
    /// Path of the certificate.
    pub fn cert_path(&self) -> String {
        format!("{}.crt", self.stem)
    }
    /// Path of the key.
    pub fn key_path(&self) -> String {
        format!("{}.key", self.stem)
    }
    /// Whether this is a CA.
    pub fn is_ca(&self) -> bool {
        self.issuer.is_none()
    }
}

/// The spec of a CA.
pub fn ca_spec(ca: CaId) -> CertSpec {
    CertSpec {
        name: ca.name(),
        stem: match ca {
            CaId::Kube => "tls/ca",
            CaId::Etcd => "tls/etcd-ca",
            CaId::FrontProxy => "tls/front-proxy-ca",
        },
        issuer: None,
        common_name: ca.common_name().into(),
        organizations: vec![],
        sans: vec![],
        server_auth: false,
        client_auth: false,
    }
}

fn dedup(hosts: impl IntoIterator<Item = Host>) -> Vec<Host> {
    let mut out: Vec<Host> = Vec::new();
    for h in hosts {
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// Every leaf certificate, in issue order, with what it must say for these params.
pub fn leaf_specs(p: &PkiParams) -> Vec<CertSpec> {
    let localhost = [Host::Dns("localhost".into()), Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    let apiserver_sans = dedup(
        p.api_servers
            .iter()
            .cloned()
            .chain(
                [
                    "kubernetes".to_owned(),
                    "kubernetes.default".to_owned(),
                    "kubernetes.default.svc".to_owned(),
                    format!("kubernetes.default.svc.{}", p.cluster_domain_suffix),
                ]
                .map(Host::Dns),
            )
            .chain(first_service_ip(&p.service_cidr).map(Host::Ip))
            .chain(localhost.iter().cloned()),
    );
    let etcd_sans = dedup(p.etcd_servers.iter().cloned().chain(localhost.iter().cloned()));
    let leaf = |name, stem, issuer, cn: &str, orgs: Vec<String>, sans: Vec<Host>, server, client| CertSpec {
        name,
        stem,
        issuer: Some(issuer),
        common_name: cn.to_owned(),
        organizations: orgs,
        sans,
        server_auth: server,
        client_auth: client,
    };
    vec![
        leaf(
            "apiserver",
            "tls/apiserver",
            CaId::Kube,
            "kube-apiserver",
            vec![],
            apiserver_sans.clone(),
            true,
            false,
        ),
        leaf(
            "bootstrap-apiserver",
            "tls/bootstrap-apiserver",
            CaId::Kube,
            "kube-apiserver-bootstrap",
            vec![],
            apiserver_sans,
            true,
            false,
        ),
        leaf(
            "apiserver-kubelet-client",
            "tls/apiserver-kubelet-client",
            CaId::Kube,
            "kube-apiserver-kubelet-client",
            vec![KUBELET_CLIENT_GROUP.to_owned()],
            vec![],
            false,
            true,
        ),
        leaf(
            "admin",
            "tls/admin",
            CaId::Kube,
            "admin",
            vec![p.admin_organization.clone()],
            vec![],
            false,
            true,
        ),
        leaf(
            "controller-manager",
            "tls/controller-manager",
            CaId::Kube,
            "system:kube-controller-manager",
            vec![],
            vec![],
            false,
            true,
        ),
        leaf(
            "scheduler",
            "tls/scheduler",
            CaId::Kube,
            "system:kube-scheduler",
            vec![],
            vec![],
            false,
            true,
        ),
        leaf(
            "front-proxy-client",
            "tls/front-proxy-client",
            CaId::FrontProxy,
            FRONT_PROXY_CLIENT_CN,
            vec![],
            vec![],
            false,
            true,
        ),
        leaf(
            "etcd-client",
            "tls/etcd-client",
            CaId::Etcd,
            "etcd-client",
            vec![],
            vec![],
            false,
            true,
        ),
        leaf(
            "etcd-server",
            "tls/etcd/server",
            CaId::Etcd,
            "etcd-server",
            vec![],
            etcd_sans.clone(),
            true,
            true,
        ),
        leaf(
            "etcd-peer",
            "tls/etcd/peer",
            CaId::Etcd,
            "etcd-peer",
            vec![],
            etcd_sans,
            true,
            true,
        ),
    ]
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x40; // positive, 16 bytes long
    SerialNumber::from_slice(&bytes)
}

/// rcgen parameters for a spec valid from `not_before` to `not_after`.
fn cert_params(
    spec: &CertSpec,
    alg: Option<KeyAlgorithm>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, CertError> {
    let mut p = CertificateParams::default();
    p.not_before = not_before;
    p.not_after = not_after;
    p.serial_number = Some(random_serial());
    let mut dn = DistinguishedName::new();
    for o in &spec.organizations {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    dn.push(DnType::CommonName, spec.common_name.as_str());
    p.distinguished_name = dn;
    p.subject_alt_names = spec
        .sans
        .iter()
        .map(|h| match h {
            Host::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            Host::Dns(name) => name
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|source| CertError::San {
                    cert: spec.name,
                    name: name.clone(),
                    source,
                }),
        })
        .collect::<Result<_, _>>()?;
    if spec.is_ca() {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
    } else {
        p.is_ca = IsCa::ExplicitNoCa;
        p.use_authority_key_identifier_extension = true;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if alg.is_some_and(|a| a.rsa_bits().is_some()) {
            p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        if spec.server_auth {
            p.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.client_auth {
            p.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
        }
    }
    Ok(p)
}

/// Self-signs a CA certificate with `key` (a new key, or the CA's own key on renewal).
pub(crate) fn self_sign_ca(
    spec: &CertSpec,
    key: &KeyPair,
    now: OffsetDateTime,
    validity: Duration,
) -> Result<String, CertError> {
    let params = cert_params(spec, None, now.saturating_sub(CLOCK_SKEW), now.saturating_add(validity))?;
    params
        .self_signed(key)
        .map(|c| c.pem())
        .map_err(|source| CertError::Sign {
            cert: spec.name,
            source,
        })
}

/// Issues a leaf certificate for `key`, signed by the CA (`ca_pem`, `ca_key`).
pub(crate) fn sign_leaf(
    spec: &CertSpec,
    key: &KeyPair,
    alg: KeyAlgorithm,
    ca_pem: &str,
    ca_key: &KeyPair,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<String, CertError> {
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key).map_err(|source| CertError::LoadIssuer {
        cert: spec.name,
        source,
    })?;
    let params = cert_params(spec, Some(alg), not_before, not_after)?;
    params
        .signed_by(key, &issuer)
        .map(|c| c.pem())
        .map_err(|source| CertError::Sign {
            cert: spec.name,
            source,
        })
}

/// What an issued certificate says, read back for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Subject CN.
    pub common_name: Option<String>,
    /// Subject O values, in order.
    pub organizations: Vec<String>,
    /// SANs (DNS and IP) in order.
    pub sans: Vec<Host>,
    /// EKU serverAuth.
    pub server_auth: bool,
    /// EKU clientAuth.
    pub client_auth: bool,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// Algorithm of the subject key, if one we generate.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// The raw subject public key (to match against a private key).
    pub public_key: Vec<u8>,
}

/// DER of the first `CERTIFICATE` block of a PEM string.
pub(crate) fn pem_der(pem_str: &str) -> Option<Vec<u8>> {
    pem::parse(pem_str)
        .ok()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
}

/// Reads a PEM certificate.
///
/// # Errors
/// [`CertError::Parse`] if it is not one.
pub fn read_cert(path: &str, pem_str: &str) -> Result<CertFacts, CertError> {
    let parse_err = || CertError::Parse { path: path.to_owned() };
    let der = pem_der(pem_str).ok_or_else(parse_err)?;
    let (_, x) = X509Certificate::from_der(&der).map_err(|_| parse_err())?;
    let sans = match x.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(|g| match g {
                GeneralName::DNSName(d) => Some(Host::Dns((*d).to_owned())),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => <[u8; 4]>::try_from(*b).ok().map(|a| Host::Ip(IpAddr::from(a))),
                    16 => <[u8; 16]>::try_from(*b).ok().map(|a| Host::Ip(IpAddr::from(a))),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        _ => vec![],
    };
    let (server_auth, client_auth) = match x.extended_key_usage() {
        Ok(Some(e)) => (e.value.server_auth, e.value.client_auth),
        _ => (false, false),
    };
    let common_name = x
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_owned);
    let facts = CertFacts {
        not_before: x.validity().not_before.to_datetime(),
        not_after: x.validity().not_after.to_datetime(),
        common_name,
        organizations: x
            .subject()
            .iter_organization()
            .filter_map(|a| a.as_str().ok().map(str::to_owned))
            .collect(),
        sans,
        server_auth,
        client_auth,
        is_ca: matches!(x.basic_constraints(), Ok(Some(bc)) if bc.value.ca),
        key_algorithm: keys::algorithm_of_spki(x.public_key()),
        public_key: x.public_key().subject_public_key.data.to_vec(),
    };
    Ok(facts)
}

/// Whether `leaf_pem` carries a valid signature by the key of `ca_pem`, and names it as issuer.
pub(crate) fn is_signed_by(leaf_pem: &str, ca_pem: &str) -> bool {
    let (Some(leaf_der), Some(ca_der)) = (pem_der(leaf_pem), pem_der(ca_pem)) else {
        return false;
    };
    let (Ok((_, leaf)), Ok((_, ca))) = (X509Certificate::from_der(&leaf_der), X509Certificate::from_der(&ca_der))
    else {
        return false;
    };
    leaf.issuer().as_raw() == ca.subject().as_raw() && leaf.verify_signature(Some(ca.public_key())).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, Action, Reason};
    use crate::{issue, parse, RawParams};

    fn params() -> PkiParams {
        parse(&RawParams {
            cluster_name: Some("demo".into()),
            api_servers: Some(vec!["api.demo.example".into()]),
            etcd_servers: Some(vec!["10.0.0.11".into()]),
            ..RawParams::defaults()
        })
        .expect("valid params")
    }

    fn spec(p: &PkiParams, name: &str) -> CertSpec {
        leaf_specs(p).into_iter().find(|s| s.name == name).expect(name)
    }

    #[test]
    fn the_kubelet_client_is_in_its_own_group_and_the_front_proxy_client_has_the_allowed_name() {
        let p = params();
        let kubelet_client = spec(&p, "apiserver-kubelet-client");
        assert_eq!(kubelet_client.organizations, [KUBELET_CLIENT_GROUP]);
        assert_eq!(kubelet_client.common_name, "kube-apiserver-kubelet-client");
        assert!(kubelet_client.client_auth && !kubelet_client.server_auth);
        let front_proxy = spec(&p, "front-proxy-client");
        assert_eq!(front_proxy.common_name, FRONT_PROXY_CLIENT_CN);
        assert_eq!(front_proxy.issuer, Some(CaId::FrontProxy));
        assert!(
            leaf_specs(&p)
                .iter()
                .all(|s| s.name == "admin" || !s.organizations.iter().any(|o| o == "system:masters")),
            "only the admin certificate may be in system:masters"
        );
    }

    /// A state made before the kubelet client left `system:masters`: a plain plan re-issues
    /// that certificate (and only it), and says why.
    #[test]
    fn a_kubelet_client_certificate_in_system_masters_is_reissued_by_a_plain_plan() {
        let p = params();
        let now = time::macros::datetime!(2026-01-01 00:00 UTC);
        let mut assets = issue(&p, None, now).unwrap();
        let mut old = spec(&p, "apiserver-kubelet-client");
        old.organizations = vec!["system:masters".into()];
        let key = keys::load(&assets[&old.key_path()]).unwrap();
        let ca_key = keys::load(&assets["tls/ca.key"]).unwrap();
        let pem = sign_leaf(
            &old,
            &key,
            p.key_algorithm,
            &assets["tls/ca.crt"],
            &ca_key,
            now - CLOCK_SKEW,
            now + Duration::days(300),
        )
        .unwrap();
        assets.insert(old.cert_path(), pem);

        let pl = plan(&p, Some(&assets), now + Duration::days(1)).unwrap();
        assert_eq!(pl.issued(), ["apiserver-kubelet-client"]);
        assert_eq!(
            pl.get("apiserver-kubelet-client").unwrap().action,
            Action::Issue {
                reason: Reason::SubjectChanged {
                    from: "O=system:masters, CN=kube-apiserver-kubelet-client".into(),
                    to: format!("O={KUBELET_CLIENT_GROUP}, CN=kube-apiserver-kubelet-client"),
                },
                new_key: true,
            }
        );
        let renewed = issue(&p, Some(&assets), now + Duration::days(1)).unwrap();
        let facts = read_cert("kubelet client", &renewed[&old.cert_path()]).unwrap();
        assert_eq!(facts.organizations, [KUBELET_CLIENT_GROUP]);
        assert!(plan(&p, Some(&renewed), now + Duration::days(1)).unwrap().is_noop());
    }
}
