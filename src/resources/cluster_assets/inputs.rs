//! Configuration of `selfhosted_cluster_assets` → the PKI's inputs, and the
//! PKI's input errors → diagnostics on the attribute to fix.

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
    /// Local folder to write assets to.
    pub asset_dir: Option<String>,
    conflict: bool,
    /// The CA key came from the write-only attribute: errors name that one.
    key_is_write_only: bool,
    reader: Reader<'a>,
}

impl<'a> Inputs<'a> {
    /// Reads the configuration (or a planned state).
    pub fn read(config: &'a Value) -> Self {
        let mut r = Reader::new(config);
        // A stand-in for a not-yet-known host: valid, unique, never rendered.
        let stand_in = |i: usize| format!("unknown-{i}.invalid");
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
        let asset_dir = r.string(attr::ASSET_DIR);
        let conflict = key.is_some() && key_wo.is_some();
        Inputs {
            raw,
            asset_dir,
            conflict,
            key_is_write_only: key.is_none() && key_wo.is_some(),
            reader: r,
        }
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
            out.push(self.diagnostic(&e));
        }
        out
    }

    /// A PKI input error as a diagnostic on its attribute (and list element).
    fn diagnostic(&self, e: &InputError) -> Diagnostic {
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

    fn ca_key_unknown(&self, e: &InputError) -> bool {
        e.attribute == attr::CA_PRIVATE_KEY_PEM
            && (self.reader.was_unknown(attr::CA_PRIVATE_KEY_PEM, None)
                || self.reader.was_unknown(attr::CA_PRIVATE_KEY_PEM_WO, None))
    }

    /// The checked PKI inputs, or the diagnostics saying what to fix.
    pub fn params(&self) -> Result<PkiParams, Diagnostics> {
        let mut diags = self.diagnostics();
        if diags.has_errors() {
            return Err(diags);
        }
        selfhosted_pki::parse(&self.raw).map_err(|errs| {
            for e in &errs {
                diags.push(self.diagnostic(e));
            }
            diags
        })
    }
}
