//! Inputs of the PKI: raw strings as Terraform hands them over ([`RawParams`]),
//! their checked form ([`PkiParams`]), and the errors that name the attribute
//! to fix ([`InputError`]).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use time::Duration;

use crate::keys;

/// Attribute names used in [`InputError::attribute`]; they are the schema
/// attribute names of `selfhosted_cluster_assets`.
pub mod attr {
    /// `cluster_name`
    pub const CLUSTER_NAME: &str = "cluster_name";
    /// `api_servers`
    pub const API_SERVERS: &str = "api_servers";
    /// `api_server_port`
    pub const API_SERVER_PORT: &str = "api_server_port";
    /// `etcd_servers`
    pub const ETCD_SERVERS: &str = "etcd_servers";
    /// `service_cidr`
    pub const SERVICE_CIDR: &str = "service_cidr";
    /// `cluster_domain_suffix`
    pub const CLUSTER_DOMAIN_SUFFIX: &str = "cluster_domain_suffix";
    /// `key_algorithm`
    pub const KEY_ALGORITHM: &str = "key_algorithm";
    /// `ca_validity_hours`
    pub const CA_VALIDITY_HOURS: &str = "ca_validity_hours";
    /// `validity_hours`
    pub const VALIDITY_HOURS: &str = "validity_hours";
    /// `early_renewal_hours`
    pub const EARLY_RENEWAL_HOURS: &str = "early_renewal_hours";
    /// `ca_cert_pem` (bring-your-own kube CA certificate)
    pub const CA_CERT_PEM: &str = "ca_cert_pem";
    /// `ca_private_key_pem` (bring-your-own kube CA key)
    pub const CA_PRIVATE_KEY_PEM: &str = "ca_private_key_pem";
    /// `admin_organization`
    pub const ADMIN_ORGANIZATION: &str = "admin_organization";
}

/// Default `api_server_port`.
pub const DEFAULT_API_SERVER_PORT: u16 = 6443;
/// Default `service_cidr` (typhoon's).
pub const DEFAULT_SERVICE_CIDR: &str = "10.3.0.0/16";
/// Default `cluster_domain_suffix`.
pub const DEFAULT_CLUSTER_DOMAIN_SUFFIX: &str = "cluster.local";
/// Default `ca_validity_hours` (10 years).
pub const DEFAULT_CA_VALIDITY_HOURS: i64 = 87_600;
/// Default `validity_hours` (1 year).
pub const DEFAULT_VALIDITY_HOURS: i64 = 8_760;
/// Default `early_renewal_hours` (30 days).
pub const DEFAULT_EARLY_RENEWAL_HOURS: i64 = 720;
/// Default `admin_organization`: the group Kubernetes grants cluster-admin without any binding.
pub const DEFAULT_ADMIN_ORGANIZATION: &str = "system:masters";
/// Largest accepted validity or renewal window, in hours (100 years), so dates stay representable.
pub const MAX_HOURS: i64 = 876_600;

/// Key algorithm of every generated key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (`ECDSA_P256`), the default: small and fast.
    #[default]
    EcdsaP256,
    /// RSA 2048 (`RSA_2048`).
    Rsa2048,
    /// RSA 3072 (`RSA_3072`).
    Rsa3072,
    /// RSA 4096 (`RSA_4096`).
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every algorithm, in the order error messages list them.
    pub const ALL: [KeyAlgorithm; 4] = [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
    ];

    /// The attribute value naming this algorithm (`ECDSA_P256`, `RSA_2048`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ECDSA_P256",
            KeyAlgorithm::Rsa2048 => "RSA_2048",
            KeyAlgorithm::Rsa3072 => "RSA_3072",
            KeyAlgorithm::Rsa4096 => "RSA_4096",
        }
    }

    /// RSA modulus size in bits, `None` for ECDSA.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyAlgorithm::EcdsaP256 => None,
            KeyAlgorithm::Rsa2048 => Some(2048),
            KeyAlgorithm::Rsa3072 => Some(3072),
            KeyAlgorithm::Rsa4096 => Some(4096),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key algorithm name that is not one of [`KeyAlgorithm::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key algorithm {given:?}; write one of ECDSA_P256, RSA_2048, RSA_3072, RSA_4096")]
pub struct UnknownKeyAlgorithm {
    /// What was given.
    pub given: String,
}

impl FromStr for KeyAlgorithm {
    type Err = UnknownKeyAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownKeyAlgorithm { given: s.to_owned() })
    }
}

/// A server name: a DNS name or an IP address, as it goes into a SAN and a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// An RFC 1123 DNS name, lowercase, no wildcard, no trailing dot.
    Dns(String),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
}

impl Host {
    /// Parses an IP address or a DNS name; the error says what to write instead.
    pub fn try_parse(s: &str) -> Result<Host, String> {
        if let Ok(ip) = IpAddr::from_str(s) {
            return Ok(Host::Ip(ip));
        }
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            if IpAddr::from_str(inner).is_ok() {
                return Err(format!("{s:?} has brackets; write the address alone: {inner}"));
            }
        }
        check_dns_name(s).map(|()| Host::Dns(s.to_owned()))
    }

    /// The host as it appears in an `https://` URL (IPv6 in brackets).
    pub fn url_host(&self) -> String {
        match self {
            Host::Dns(name) => name.clone(),
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
            Host::Ip(ip) => ip.to_string(),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Dns(name) => f.write_str(name),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Checks an RFC 1123 DNS name (lowercase, no wildcard, no trailing dot).
fn check_dns_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty; write a DNS name such as api.example.com or an IP address".into());
    }
    if s.trim() != s {
        return Err(format!("{s:?} has surrounding spaces; write {:?}", s.trim()));
    }
    if let Some(rest) = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")) {
        let host = rest.split([':', '/']).next().unwrap_or(rest);
        return Err(format!("{s:?} is a URL; write the host name alone: {host}"));
    }
    if s.contains(':') {
        return Err(format!(
            "{s:?} is neither a DNS name nor an IP address; write a host without a port (the port is api_server_port)"
        ));
    }
    if s.contains('*') {
        return Err(format!("{s:?} is a wildcard; write the exact DNS name of the server"));
    }
    if let Some(stripped) = s.strip_suffix('.') {
        return Err(format!("{s:?} ends with a dot; write {stripped:?}"));
    }
    if s.len() > 253 {
        return Err(format!(
            "DNS name is {} characters long; at most 253 are allowed",
            s.len()
        ));
    }
    let labels: Vec<&str> = s.split('.').collect();
    if s.chars().any(|c| c.is_ascii_uppercase()) {
        let lower = s.to_ascii_lowercase();
        // Suggest the lowercase spelling only when it is itself a valid name.
        return Err(if lower.split('.').all(|l| check_dns_label(l).is_ok()) {
            format!("{s:?} has uppercase letters; write it in lowercase: {lower}")
        } else {
            format!(
                "{s:?} is not a valid DNS name: labels of lowercase letters, digits and '-' joined by single dots, e.g. \"cluster.local\""
            )
        });
    }
    for label in &labels {
        check_dns_label(label).map_err(|m| format!("{s:?} is not a valid DNS name: {m}"))?;
    }
    if labels.last().is_some_and(|l| l.chars().all(|c| c.is_ascii_digit())) {
        return Err(format!(
            "{s:?} is not a valid IP address, and a DNS name cannot end in a numeric label; write a valid IPv4/IPv6 address or a DNS name"
        ));
    }
    Ok(())
}

/// Checks one RFC 1123 label: 1–63 of `[a-z0-9-]`, not starting or ending with `-`.
fn check_dns_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("it has an empty label (two dots in a row, or a leading dot)".into());
    }
    if label.len() > 63 {
        return Err(format!(
            "label {label:?} is {} characters; at most 63 are allowed",
            label.len()
        ));
    }
    if let Some(bad) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "label {label:?} contains {bad:?}; only lowercase letters, digits and '-' are allowed"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!("label {label:?} starts or ends with '-'"));
    }
    Ok(())
}

/// A bring-your-own certificate authority: certificate and private key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct CaPair {
    /// The CA certificate (one `CERTIFICATE` PEM block).
    pub cert_pem: String,
    /// The CA private key (PKCS#8 `PRIVATE KEY`; [`parse`] also accepts PKCS#1 `RSA PRIVATE KEY` and converts it).
    pub key_pem: String,
}

impl fmt::Debug for CaPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaPair")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Checked inputs of the PKI. Build it with [`parse`] from [`RawParams`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiParams {
    /// Cluster name, a DNS label; names the cluster and context in the admin kubeconfig.
    pub cluster_name: String,
    /// Names of the API servers; the first forms the server URL. All go into the apiserver SANs.
    pub api_servers: Vec<Host>,
    /// Port of the API servers.
    pub api_server_port: u16,
    /// etcd member addresses; they go into the etcd server and peer SANs.
    pub etcd_servers: Vec<Host>,
    /// Service network; its first address is the `kubernetes` Service, its 10th the cluster DNS.
    pub service_cidr: IpNet,
    /// Cluster DNS domain (`cluster.local`).
    pub cluster_domain_suffix: String,
    /// Algorithm of generated keys.
    pub key_algorithm: KeyAlgorithm,
    /// Validity of generated CAs.
    pub ca_validity: Duration,
    /// Validity of leaf certificates (capped at their CA's expiry).
    pub leaf_validity: Duration,
    /// A certificate is renewed once `now` is within this window before its expiry.
    pub early_renewal: Duration,
    /// Bring-your-own kube CA (the etcd and front-proxy CAs are always generated).
    pub byo_ca: Option<CaPair>,
    /// Organization (group) of the admin client certificate.
    pub admin_organization: String,
}

/// Inputs as raw values, the way a Terraform resource holds them.
///
/// `None` means "not known": [`validate`] skips it (an unknown value at plan
/// time), [`parse`] uses the default for attributes that have one and reports
/// the required ones (`cluster_name`, `api_servers`, `etcd_servers`).
/// For an attribute that is null in the configuration, pass its default
/// (start from [`RawParams::defaults`]) so the cross-checks (validity vs.
/// renewal window) run at validate time too.
/// The two `ca_*` attributes are optional: `None` means no bring-your-own CA.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawParams {
    /// `cluster_name`
    pub cluster_name: Option<String>,
    /// `api_servers`
    pub api_servers: Option<Vec<String>>,
    /// `api_server_port` (default 6443)
    pub api_server_port: Option<i64>,
    /// `etcd_servers`
    pub etcd_servers: Option<Vec<String>>,
    /// `service_cidr` (default 10.3.0.0/16)
    pub service_cidr: Option<String>,
    /// `cluster_domain_suffix` (default cluster.local)
    pub cluster_domain_suffix: Option<String>,
    /// `key_algorithm` (default ECDSA_P256)
    pub key_algorithm: Option<String>,
    /// `ca_validity_hours` (default 87600)
    pub ca_validity_hours: Option<i64>,
    /// `validity_hours` (default 8760)
    pub validity_hours: Option<i64>,
    /// `early_renewal_hours` (default 720)
    pub early_renewal_hours: Option<i64>,
    /// `ca_cert_pem`: bring-your-own kube CA certificate.
    pub ca_cert_pem: Option<String>,
    /// `ca_private_key_pem`: bring-your-own kube CA key.
    pub ca_private_key_pem: Option<String>,
    /// `admin_organization` (default system:masters)
    pub admin_organization: Option<String>,
}

impl RawParams {
    /// Every attribute that has a default set to it; the others `None`.
    pub fn defaults() -> RawParams {
        RawParams {
            api_server_port: Some(i64::from(DEFAULT_API_SERVER_PORT)),
            service_cidr: Some(DEFAULT_SERVICE_CIDR.to_owned()),
            cluster_domain_suffix: Some(DEFAULT_CLUSTER_DOMAIN_SUFFIX.to_owned()),
            key_algorithm: Some(KeyAlgorithm::default().as_str().to_owned()),
            ca_validity_hours: Some(DEFAULT_CA_VALIDITY_HOURS),
            validity_hours: Some(DEFAULT_VALIDITY_HOURS),
            early_renewal_hours: Some(DEFAULT_EARLY_RENEWAL_HOURS),
            admin_organization: Some(DEFAULT_ADMIN_ORGANIZATION.to_owned()),
            ..RawParams::default()
        }
    }
}

/// One bad input: which attribute (and list element), and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", self.path())]
pub struct InputError {
    /// Schema attribute name (see [`attr`]).
    pub attribute: &'static str,
    /// Index in a list attribute, if the error is about one element.
    pub index: Option<usize>,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl InputError {
    fn new(attribute: &'static str, index: Option<usize>, message: impl Into<String>) -> Self {
        InputError {
            attribute,
            index,
            message: message.into(),
        }
    }

    /// `attribute` or `attribute[index]`.
    pub fn path(&self) -> String {
        match self.index {
            Some(i) => format!("{}[{i}]", self.attribute),
            None => self.attribute.to_owned(),
        }
    }
}

/// Checks every known input and returns all errors (empty = fine). Never panics.
/// Unknown (`None`) values are skipped, and so are the cross-checks that need them.
pub fn validate(raw: &RawParams) -> Vec<InputError> {
    check(raw, false).1
}

/// Turns raw inputs into [`PkiParams`], applying defaults for absent values.
///
/// # Errors
/// Every bad or missing input, each with its attribute path.
pub fn parse(raw: &RawParams) -> Result<PkiParams, Vec<InputError>> {
    match check(raw, true) {
        (Some(p), errors) if errors.is_empty() => Ok(p),
        (_, errors) => Err(errors),
    }
}

/// Shared by [`validate`] and [`parse`]: `complete` = absent means default/required.
fn check(raw: &RawParams, complete: bool) -> (Option<PkiParams>, Vec<InputError>) {
    let mut errs = Vec::new();
    let required = |errs: &mut Vec<InputError>, a: &'static str, what: &str| {
        if complete {
            errs.push(InputError::new(a, None, format!("is required; write {what}")));
        }
    };

    let cluster_name = match &raw.cluster_name {
        Some(name) => match check_dns_label(name) {
            Ok(()) => Some(name.clone()),
            Err(m) => {
                errs.push(InputError::new(
                    attr::CLUSTER_NAME,
                    None,
                    format!("must be a DNS label (1-63 of a-z, 0-9, '-'): {m}"),
                ));
                None
            }
        },
        None => {
            required(&mut errs, attr::CLUSTER_NAME, "a DNS label such as \"prod\"");
            None
        }
    };

    let api_servers = match &raw.api_servers {
        Some(list) => check_hosts(&mut errs, attr::API_SERVERS, list),
        None => {
            required(&mut errs, attr::API_SERVERS, "the DNS names or IPs of the API servers");
            None
        }
    };
    let etcd_servers = match &raw.etcd_servers {
        Some(list) => check_hosts(&mut errs, attr::ETCD_SERVERS, list),
        None => {
            required(
                &mut errs,
                attr::ETCD_SERVERS,
                "the DNS names or IPs of the etcd members",
            );
            None
        }
    };

    let api_server_port = match raw.api_server_port {
        Some(p) => match u16::try_from(p) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                errs.push(InputError::new(
                    attr::API_SERVER_PORT,
                    None,
                    format!(
                        "{p} is not a TCP port; write a number from 1 to 65535 (default {DEFAULT_API_SERVER_PORT})"
                    ),
                ));
                None
            }
        },
        None => complete.then_some(DEFAULT_API_SERVER_PORT),
    };

    let service_cidr = match raw.service_cidr.as_deref() {
        Some(s) => check_service_cidr(&mut errs, s),
        None if complete => IpNet::from_str(DEFAULT_SERVICE_CIDR).ok(),
        None => None,
    };

    let cluster_domain_suffix = match raw.cluster_domain_suffix.as_deref() {
        Some(s) => match check_dns_name(s) {
            Ok(()) => Some(s.to_owned()),
            Err(m) => {
                errs.push(InputError::new(
                    attr::CLUSTER_DOMAIN_SUFFIX,
                    None,
                    format!("{m} (default {DEFAULT_CLUSTER_DOMAIN_SUFFIX})"),
                ));
                None
            }
        },
        None => complete.then(|| DEFAULT_CLUSTER_DOMAIN_SUFFIX.to_owned()),
    };

    let key_algorithm = match raw.key_algorithm.as_deref() {
        Some(s) => match KeyAlgorithm::from_str(s) {
            Ok(a) => Some(a),
            Err(e) => {
                errs.push(InputError::new(attr::KEY_ALGORITHM, None, e.to_string()));
                None
            }
        },
        None => complete.then_some(KeyAlgorithm::default()),
    };

    let mut hours = |a: &'static str, v: Option<i64>, default: i64, min: i64| match v {
        Some(h) if (min..=MAX_HOURS).contains(&h) => Some(h),
        Some(h) => {
            errs.push(InputError::new(
                a,
                None,
                format!("{h} is out of range; write a number of hours from {min} to {MAX_HOURS} (default {default})"),
            ));
            None
        }
        None => complete.then_some(default),
    };
    let ca_validity = hours(
        attr::CA_VALIDITY_HOURS,
        raw.ca_validity_hours,
        DEFAULT_CA_VALIDITY_HOURS,
        1,
    );
    let leaf_validity = hours(attr::VALIDITY_HOURS, raw.validity_hours, DEFAULT_VALIDITY_HOURS, 1);
    let early_renewal = hours(
        attr::EARLY_RENEWAL_HOURS,
        raw.early_renewal_hours,
        DEFAULT_EARLY_RENEWAL_HOURS,
        0,
    );
    if let Some(r) = early_renewal {
        for (a, v) in [
            (attr::VALIDITY_HOURS, leaf_validity),
            (attr::CA_VALIDITY_HOURS, ca_validity),
        ] {
            if let Some(v) = v {
                if v <= r {
                    errs.push(InputError::new(
                        a,
                        None,
                        format!(
                            "{v} hours is not longer than early_renewal_hours ({r}), so every plan would renew; write more than {r} hours or lower early_renewal_hours"
                        ),
                    ));
                }
            }
        }
    }

    if let (Some(ca), Some(leaf)) = (ca_validity, leaf_validity) {
        // One complaint per attribute: a CA inside the renewal window is reported above.
        if ca < leaf && early_renewal.is_none_or(|r| ca > r) {
            errs.push(InputError::new(
                attr::CA_VALIDITY_HOURS,
                None,
                format!(
                    "{ca} hours is shorter than validity_hours ({leaf}): every certificate would expire with its CA; write at least {leaf} (default {DEFAULT_CA_VALIDITY_HOURS})"
                ),
            ));
        }
    }

    let admin_organization = match raw.admin_organization.as_deref() {
        Some("") => {
            errs.push(InputError::new(
                attr::ADMIN_ORGANIZATION,
                None,
                format!("is empty; write a group name such as {DEFAULT_ADMIN_ORGANIZATION}"),
            ));
            None
        }
        Some(s) if s.len() > 64 => {
            errs.push(InputError::new(
                attr::ADMIN_ORGANIZATION,
                None,
                format!("is {} characters; X.509 allows at most 64", s.len()),
            ));
            None
        }
        Some(s) => Some(s.to_owned()),
        None => Some(DEFAULT_ADMIN_ORGANIZATION.to_owned()),
    };

    let byo_ca = match (&raw.ca_cert_pem, &raw.ca_private_key_pem) {
        (None, None) => Some(None),
        (Some(_), None) if complete => {
            errs.push(InputError::new(
                attr::CA_PRIVATE_KEY_PEM,
                None,
                "is required with ca_cert_pem; write the CA's private key (PEM), or drop ca_cert_pem to let the provider generate a CA",
            ));
            None
        }
        (None, Some(_)) if complete => {
            errs.push(InputError::new(
                attr::CA_CERT_PEM,
                None,
                "is required with ca_private_key_pem; write the CA certificate (PEM), or drop ca_private_key_pem",
            ));
            None
        }
        (Some(cert), Some(key)) => match keys::check_byo_ca(cert, key) {
            Ok(pair) => Some(Some(pair)),
            Err(e) => {
                errs.extend(e);
                None
            }
        },
        _ => None,
    };

    let params = (|| {
        Some(PkiParams {
            cluster_name: cluster_name?,
            api_servers: api_servers?,
            api_server_port: api_server_port?,
            etcd_servers: etcd_servers?,
            service_cidr: service_cidr?,
            cluster_domain_suffix: cluster_domain_suffix?,
            key_algorithm: key_algorithm?,
            ca_validity: Duration::hours(ca_validity?),
            leaf_validity: Duration::hours(leaf_validity?),
            early_renewal: Duration::hours(early_renewal?),
            byo_ca: byo_ca?,
            admin_organization: admin_organization?,
        })
    })();
    (params, errs)
}

fn check_hosts(errs: &mut Vec<InputError>, a: &'static str, list: &[String]) -> Option<Vec<Host>> {
    if list.is_empty() {
        errs.push(InputError::new(
            a,
            None,
            "is empty; write at least one DNS name or IP address",
        ));
        return None;
    }
    let before = errs.len();
    let mut hosts: Vec<Host> = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        match Host::try_parse(s) {
            Ok(h) => {
                if let Some(first) = hosts.iter().position(|seen| *seen == h) {
                    errs.push(InputError::new(
                        a,
                        Some(i),
                        format!("{s:?} is a duplicate of {a}[{first}]; remove it"),
                    ));
                }
                hosts.push(h);
            }
            Err(m) => {
                errs.push(InputError::new(a, Some(i), m));
                hosts.push(Host::Dns(String::new()));
            }
        }
    }
    (errs.len() == before).then_some(hosts)
}

fn check_service_cidr(errs: &mut Vec<InputError>, s: &str) -> Option<IpNet> {
    let net = match IpNet::from_str(s) {
        Ok(n) => n,
        Err(_) => {
            errs.push(InputError::new(
                attr::SERVICE_CIDR,
                None,
                format!("{s:?} is not a CIDR; write a network such as {DEFAULT_SERVICE_CIDR}"),
            ));
            return None;
        }
    };
    if net.trunc() != net {
        errs.push(InputError::new(
            attr::SERVICE_CIDR,
            None,
            format!("{s:?} has host bits set; write the network address: {}", net.trunc()),
        ));
        return None;
    }
    let (min, max) = match net {
        IpNet::V4(_) => (12, 28),
        IpNet::V6(_) => (108, 124),
    };
    if net.prefix_len() > max {
        errs.push(InputError::new(
            attr::SERVICE_CIDR,
            None,
            format!(
                "{s} is too small: it must hold the kubernetes Service (1st address), the cluster DNS (10th address) and room for more; write a prefix of /{max} or shorter, e.g. {}",
                IpNet::new(net.network(), max.min(16).max(min)).map(|n| n.trunc().to_string()).unwrap_or_default()
            ),
        ));
        return None;
    }
    if net.prefix_len() < min {
        errs.push(InputError::new(
            attr::SERVICE_CIDR,
            None,
            format!("{s} is too large for Kubernetes (at most 20 host bits); write a prefix of /{min} or longer"),
        ));
        return None;
    }
    Some(net)
}

/// Address number `n` of a network (0 = the network address itself); `None` if outside.
pub fn nth_address(net: &IpNet, n: u32) -> Option<IpAddr> {
    let candidate = match net.network() {
        IpAddr::V4(a) => IpAddr::V4(u32::from(a).checked_add(n)?.into()),
        IpAddr::V6(a) => IpAddr::V6(u128::from(a).checked_add(u128::from(n))?.into()),
    };
    (net.contains(&candidate) && candidate != net.broadcast()).then_some(candidate)
}

/// The first address of the service network: the `kubernetes` Service, a SAN of the apiserver.
pub fn first_service_ip(service_cidr: &IpNet) -> Option<IpAddr> {
    nth_address(service_cidr, 1)
}

/// The 10th address of the service network: the cluster DNS Service (typhoon's convention).
pub fn cluster_dns_ip(service_cidr: &IpNet) -> Option<IpAddr> {
    nth_address(service_cidr, 10)
}

/// `https://<first api server>:<port>`, the URL every kubeconfig except the bootstrap control plane's uses.
///
/// # Errors
/// [`NoApiServer`] if `api_servers` is empty (which [`parse`] refuses).
pub fn server_url(params: &PkiParams) -> Result<String, NoApiServer> {
    let host = params.api_servers.first().ok_or(NoApiServer)?;
    Ok(format!("https://{}:{}", host.url_host(), params.api_server_port))
}

/// `api_servers` is empty, so there is no server URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("api_servers is empty; there is no server URL")]
pub struct NoApiServer;
