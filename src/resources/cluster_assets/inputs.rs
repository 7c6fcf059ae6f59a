//! Configuration of `selfhosted_cluster_assets` → the inputs of the PKI and
//! of the manifests, and their input errors → diagnostics on the attribute
//! to fix.

use selfhosted_manifests::{ManifestParams, PathStep};
use selfhosted_pki::{InputError, PkiParams, RawParams};
use selfhosted_protocol::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use selfhosted_protocol::value::Value;

use super::schema::attr;
use crate::resources::config::Reader;

/// Inputs read from a configuration, with what was not yet known.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The PKI's raw inputs (unknowns left out or stood in for).
    pub raw: RawParams,
    /// The manifests' raw inputs.
    pub manifests: selfhosted_manifests::RawParams,
    /// Local folder to write assets to.
    pub asset_dir: Option<String>,
    conflict: bool,
    /// The CA key came from the write-only attribute: errors name that one.
    key_is_write_only: bool,
    reader: Reader<'a>,
}

/// Which family of stand-in names [`Inputs::read_with_stand_ins`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandIns {
    /// The first.
    A,
    /// A second, different in every name.
    B,
}

impl StandIns {
    fn label(self) -> &'static str {
        match self {
            StandIns::A => "a",
            StandIns::B => "b",
        }
    }
}

/// Both layers' checked inputs.
#[derive(Debug, Clone)]
pub struct Params {
    /// The PKI's.
    pub pki: PkiParams,
    /// The manifests'.
    pub manifests: ManifestParams,
}

impl<'a> Inputs<'a> {
    /// Reads the configuration (or a planned state).
    pub fn read(config: &'a Value) -> Self {
        Self::read_with_stand_ins(config, StandIns::A)
    }

    /// Reads the configuration, standing in for a host not yet known with a name of
    /// `family`: rendering with two families tells which outputs depend on the host.
    pub fn read_with_stand_ins(config: &'a Value, family: StandIns) -> Self {
        let mut r = Reader::new(config);
        // A stand-in for a not-yet-known host: valid, unique, never applied.
        let stand_in = |i: usize| format!("unknown-{i}.{}.invalid", family.label());
        let key = r.string(attr::CA_PRIVATE_KEY_PEM);
        let key_wo = r.string(attr::CA_PRIVATE_KEY_PEM_WO);
        let raw = RawParams {
            cluster_name: r.string(attr::CLUSTER_NAME),
            api_servers: r.strings(attr::API_SERVERS, stand_in),
            api_server_port: r.int(attr::API_SERVER_PORT),
            etcd_servers: r.strings(attr::ETCD_SERVERS, stand_in),
            service_cidr: r.string(attr::SERVICE_CIDR),
            cluster_domain_suffix: r.string(attr::CLUSTER_DOMAIN_SUFFIX),
            key_algorithm: r.string(attr::KEY_ALGORITHM),
            ca_validity_hours: r.int(attr::CA_VALIDITY_HOURS),
            validity_hours: r.int(attr::VALIDITY_HOURS),
            early_renewal_hours: r.int(attr::EARLY_RENEWAL_HOURS),
            ca_cert_pem: r.string(attr::CA_CERT_PEM),
            ca_private_key_pem: key.clone().or(key_wo.clone()),
            admin_organization: r.string(attr::ADMIN_ORGANIZATION),
        };
        let etcd_servers = raw.etcd_servers.clone().unwrap_or_default();
        let manifests = selfhosted_manifests::RawParams {
            kubernetes_version: r.string(attr::KUBERNETES_VERSION),
            cluster_name: raw.cluster_name.clone().unwrap_or_default(),
            api_servers: raw.api_servers.clone().unwrap_or_default(),
            api_server_port: raw.api_server_port,
            // Controllers run the etcd members, typhoon-style.
            controller_count: etcd_servers.len().max(1),
            etcd_servers,
            pod_cidr: r.string(attr::POD_CIDR),
            service_cidr: raw.service_cidr.clone(),
            cluster_domain_suffix: raw.cluster_domain_suffix.clone(),
            networking: r.string(attr::NETWORKING),
            host_os: r.string(attr::HOST_OS),
            kube_proxy: r.bool(attr::KUBE_PROXY),
            coredns: r.bool(attr::COREDNS),
            container_images: r.string_map(attr::CONTAINER_IMAGES).unwrap_or_default(),
            container_registry: r.string(attr::CONTAINER_REGISTRY),
            extra_flags: r.string_list_map(attr::EXTRA_FLAGS).unwrap_or_default(),
            daemonset_tolerations: r
                .strings(attr::DAEMONSET_TOLERATIONS, |i| {
                    format!("unknown-{i}.selfhosted.invalid/taint")
                })
                .unwrap_or_default(),
            controller_replicas: r.int(attr::CONTROLLER_REPLICAS),
            extra_manifests: r.strings(attr::EXTRA_MANIFESTS, |_| String::new()).unwrap_or_default(),
            admin_group: raw.admin_organization.clone(),
        };
        let asset_dir = r.string(attr::ASSET_DIR);
        Inputs {
            raw,
            manifests,
            asset_dir,
            conflict: key.is_some() && key_wo.is_some(),
            key_is_write_only: key.is_none() && key_wo.is_some(),
            reader: r,
        }
    }

    /// Whether the only unknowns are hosts in `api_servers` or `etcd_servers` (a load
    /// balancer's or a DNS record's name): then the outputs that do not mention them are
    /// known at plan.
    pub fn only_hosts_unknown(&self) -> bool {
        self.reader
            .only_elements_unknown(&[attr::API_SERVERS, attr::ETCD_SERVERS])
    }

    /// Whether any input is not yet known (plan then leaves outputs unknown).
    pub fn any_unknown(&self) -> bool {
        self.reader.any_unknown()
    }

    /// Every problem with the known inputs, on the attribute to fix.
    pub fn diagnostics(&self) -> Diagnostics {
        let mut out = Diagnostics::new();
        if self.conflict {
            out.push(
                Diagnostic::error(
                    "Two CA keys given",
                    "Set either ca_private_key_pem or ca_private_key_pem_wo, not both.",
                )
                .at(AttributePath::root(attr::CA_PRIVATE_KEY_PEM_WO)),
            );
        }
        for e in selfhosted_pki::validate(&self.raw) {
            if self.reader.was_unknown(e.attribute, e.index) || self.ca_key_unknown(&e) {
                continue;
            }
            out.push(self.pki_diagnostic(&e));
        }
        if let Err(errors) = selfhosted_manifests::parse_params(&self.manifests) {
            for e in errors {
                let (name, index) = match e.path.as_slice() {
                    [PathStep::Attribute(a), PathStep::Index(i), ..] => (attribute_name(a), Some(*i)),
                    [PathStep::Attribute(a), ..] => (attribute_name(a), None),
                    _ => ("", None),
                };
                // Shared inputs (names, CIDRs) are reported once, by the PKI.
                let path = manifest_path(&e.path);
                let seen = out.iter().any(|d| d.attribute.as_ref() == Some(&path));
                if seen || self.reader.was_unknown(name, index) || self.host_list_unknown(name) {
                    continue;
                }
                out.push(Diagnostic::error(format!("Invalid {}", shown(&e.path)), e.message).at(path));
            }
        }
        out
    }

    /// The manifests' host checks see stand-ins for unknown hosts; skip them.
    fn host_list_unknown(&self, name: &str) -> bool {
        (name == attr::API_SERVERS || name == attr::ETCD_SERVERS || name == attr::CLUSTER_NAME)
            && self.reader.any_unknown()
    }

    fn ca_key_unknown(&self, e: &InputError) -> bool {
        e.attribute == attr::CA_PRIVATE_KEY_PEM
            && (self.reader.was_unknown(attr::CA_PRIVATE_KEY_PEM, None)
                || self.reader.was_unknown(attr::CA_PRIVATE_KEY_PEM_WO, None))
    }

    /// A PKI input error as a diagnostic on its attribute (and list element).
    fn pki_diagnostic(&self, e: &InputError) -> Diagnostic {
        let attribute = match e.attribute {
            attr::CA_PRIVATE_KEY_PEM if self.key_is_write_only => attr::CA_PRIVATE_KEY_PEM_WO,
            a => a,
        };
        let mut path = AttributePath::root(attribute);
        if let Some(i) = e.index {
            path = path.index(i as i64);
        }
        let shown = match e.index {
            Some(i) => format!("{attribute}[{i}]"),
            None => attribute.to_owned(),
        };
        Diagnostic::error(format!("Invalid {shown}"), e.message.clone()).at(path)
    }

    /// The checked inputs of both layers, or the diagnostics saying what to fix.
    pub fn params(&self) -> Result<Params, Diagnostics> {
        let mut diags = self.diagnostics();
        if diags.has_errors() {
            return Err(diags);
        }
        let pki = selfhosted_pki::parse(&self.raw).map_err(|errs| {
            for e in &errs {
                diags.push(self.pki_diagnostic(e));
            }
            diags.clone()
        })?;
        let manifests = selfhosted_manifests::parse_params(&self.manifests).map_err(|errs| {
            let mut diags = Diagnostics::new();
            for e in errs {
                diags.push(
                    Diagnostic::error(format!("Invalid {}", shown(&e.path)), e.message).at(manifest_path(&e.path)),
                );
            }
            diags
        })?;
        Ok(Params { pki, manifests })
    }
}

/// The manifests' name for an attribute this resource calls otherwise.
fn attribute_name(name: &str) -> &str {
    match name {
        "admin_group" => attr::ADMIN_ORGANIZATION,
        other => other,
    }
}

fn manifest_path(steps: &[PathStep]) -> AttributePath {
    let mut path = AttributePath(Vec::new());
    for s in steps {
        path = match s {
            PathStep::Attribute(a) => path.attr(attribute_name(a)),
            PathStep::Index(i) => path.index(*i as i64),
            PathStep::Key(k) => path.key(k),
        };
    }
    path
}

fn shown(steps: &[PathStep]) -> String {
    let mut out = String::new();
    for s in steps {
        match s {
            PathStep::Attribute(a) if out.is_empty() => out.push_str(attribute_name(a)),
            PathStep::Attribute(a) => {
                out.push('.');
                out.push_str(a);
            }
            PathStep::Index(i) => out.push_str(&format!("[{i}]")),
            PathStep::Key(k) => out.push_str(&format!("[{k:?}]")),
        }
    }
    out
}
