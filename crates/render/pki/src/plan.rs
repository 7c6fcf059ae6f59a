//! Deciding, without generating any key, which items of the PKI must be
//! (re)issued and why. Every decision is derived from the prior assets and
//! the params alone (parsing the existing certificates), so read, plan and
//! apply reach the same answer.
//!
//! Rules:
//! - Material is generated once and kept.
//! - A generated CA is never replaced; inside its early-renewal window it is
//!   re-signed **with its own key and subject**, so every certificate it
//!   signed keeps verifying and nothing on the nodes must change (kubelets
//!   that kept the old CA certificate still trust new leaves).
//! - A bring-your-own kube CA is taken as given; when it changes, everything
//!   that no longer verifies against it is re-issued (a renewed CA with the
//!   same key and subject keeps every leaf). It is never renewed by us (a
//!   warning says when it enters its window). Dropping the bring-your-own
//!   inputs keeps the CA in use (no silent re-keying of the cluster); replace
//!   the resource to get a generated CA instead.
//! - A leaf is re-issued (with a fresh key) when it is missing or unreadable,
//!   no longer verifies against its CA, its SANs, subject or usages differ
//!   from what the params say (SANs compared as a set), its key algorithm differs from
//!   `key_algorithm`, or it is inside its early-renewal window and a
//!   re-issue would end later (leaves never outlive their CA; this keeps a
//!   nearly expired bring-your-own CA from causing a re-issue on every plan).
//! - `key_algorithm` changes re-issue every leaf, but keep the CAs and the
//!   service-account key (changing those breaks every kubelet's trust and
//!   every issued token; replace the resource for that).
//! - Validity changes take effect at the next issue of each certificate.
//! - A kubeconfig is re-rendered when anything it embeds changes (CA, client
//!   certificate, server URL, names).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use time::OffsetDateTime;

use crate::certs::{self, ca_spec, leaf_specs, CaId, CertFacts, CertSpec};
use crate::kubeconfig::{Credential, Kubeconfig};
use crate::params::{server_url, KeyAlgorithm, PkiParams};
use crate::renewal::renewal_due;
use crate::{keys, token, Assets, PkiError};

/// Path of the service-account private key.
pub const SERVICE_ACCOUNT_KEY: &str = "tls/service-account.key";
/// Path of the service-account public key.
pub const SERVICE_ACCOUNT_PUB: &str = "tls/service-account.pub";
/// Path of the kubelet bootstrap token (`<id>.<secret>`).
pub const BOOTSTRAP_TOKEN: &str = "auth/bootstrap-token";
/// Path of the controllers' kubelet bootstrap token: kept apart from the workers' one
/// ([`BOOTSTRAP_TOKEN`]), which reaches autoscaled workers' user data, so that only the
/// controllers' token may obtain a controller's node identity.
pub const CONTROLLER_BOOTSTRAP_TOKEN: &str = "auth/controller-bootstrap-token";
/// The bootstrap tokens: (plan item name, asset path).
pub const TOKENS: [(&str, &str); 2] = [
    ("bootstrap-token", BOOTSTRAP_TOKEN),
    ("controller-bootstrap-token", CONTROLLER_BOOTSTRAP_TOKEN),
];
/// Path of the admin kubeconfig.
pub const ADMIN_KUBECONFIG: &str = "auth/admin.kubeconfig";
/// Path of the kubelet bootstrap kubeconfig.
pub const KUBELET_BOOTSTRAP_KUBECONFIG: &str = "auth/kubelet-bootstrap.kubeconfig";
/// Path of the controllers' kubelet bootstrap kubeconfig (the controllers' token).
pub const CONTROLLER_BOOTSTRAP_KUBECONFIG: &str = "auth/controller-bootstrap.kubeconfig";
/// Path of the bootstrap controller-manager kubeconfig.
pub const CONTROLLER_MANAGER_KUBECONFIG: &str = "auth/controller-manager.kubeconfig";
/// Path of the bootstrap scheduler kubeconfig.
pub const SCHEDULER_KUBECONFIG: &str = "auth/scheduler.kubeconfig";

/// Why an item is (re)issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Not in the prior assets.
    Missing,
    /// Present but unusable (unparsable, or key and certificate do not match).
    Unreadable(String),
    /// The bring-your-own CA given differs from the one in the assets.
    ByoCaChanged,
    /// No longer verifies against its (new) CA.
    IssuerChanged,
    /// SANs differ from what the params say.
    NamesChanged {
        /// SANs in the certificate.
        from: Vec<String>,
        /// SANs wanted.
        to: Vec<String>,
    },
    /// Subject (CN/O) differs.
    SubjectChanged {
        /// The subject in the certificate (`O=…, CN=…`).
        from: String,
        /// The subject wanted.
        to: String,
    },
    /// Extended key usages differ.
    UsageChanged,
    /// The key algorithm differs from `key_algorithm`.
    KeyAlgorithmChanged {
        /// Current algorithm, if recognised.
        from: Option<KeyAlgorithm>,
        /// Wanted algorithm.
        to: KeyAlgorithm,
    },
    /// Inside the early-renewal window.
    Expiring {
        /// Current expiry.
        not_after: OffsetDateTime,
    },
    /// Something it embeds changed (listed by item name), or its server URL/names.
    InputsChanged(Vec<String>),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing => f.write_str("new"),
            Reason::Unreadable(why) => write!(f, "unusable: {why}"),
            Reason::ByoCaChanged => f.write_str("the given CA changed"),
            Reason::IssuerChanged => f.write_str("its CA changed"),
            Reason::NamesChanged { from, to } => {
                write!(f, "names changed from [{}] to [{}]", from.join(", "), to.join(", "))
            }
            Reason::SubjectChanged { from, to } => write!(f, "subject changed from {from} to {to}"),
            Reason::UsageChanged => f.write_str("key usage changed"),
            Reason::KeyAlgorithmChanged { from, to } => write!(
                f,
                "key algorithm changed from {} to {to}",
                from.map_or("unknown", KeyAlgorithm::as_str)
            ),
            Reason::Expiring { not_after } => {
                write!(f, "expires {not_after}, inside the early-renewal window")
            }
            Reason::InputsChanged(what) => write!(f, "{} changed", what.join(", ")),
        }
    }
}

/// What happens to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Kept byte-identical.
    Keep,
    /// (Re)issued.
    Issue {
        /// Why.
        reason: Reason,
        /// Whether a new private key is made (false: a CA re-signed with its own key).
        new_key: bool,
    },
}

/// One item of the PKI and its fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedItem {
    /// Item name: a certificate name (`apiserver`, `ca`, ...), `service-account`,
    /// `bootstrap-token`, or `<name>-kubeconfig`.
    pub name: String,
    /// Asset paths the item owns.
    pub paths: Vec<String>,
    /// What happens to it.
    pub action: Action,
}

impl PlannedItem {
    /// Paths whose content changes (a CA re-signed with its own key keeps its key file).
    pub fn changed_paths(&self) -> Vec<String> {
        match &self.action {
            Action::Keep => vec![],
            Action::Issue { new_key: false, .. } => {
                self.paths.iter().filter(|p| !p.ends_with(".key")).cloned().collect()
            }
            Action::Issue { .. } => self.paths.clone(),
        }
    }
}

/// The decision for every item, in issue order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Every item.
    pub items: Vec<PlannedItem>,
    /// Things the user should act on (e.g. a bring-your-own CA about to expire).
    pub warnings: Vec<String>,
}

impl Plan {
    /// The item named `name`.
    pub fn get(&self, name: &str) -> Option<&PlannedItem> {
        self.items.iter().find(|i| i.name == name)
    }
    /// Every asset path whose content changes.
    pub fn changed_paths(&self) -> BTreeSet<String> {
        self.items.iter().flat_map(PlannedItem::changed_paths).collect()
    }
    /// Names of the items that are (re)issued.
    pub fn issued(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter(|i| i.action != Action::Keep)
            .map(|i| i.name.as_str())
            .collect()
    }
    /// Nothing changes: applying this plan returns the prior assets unchanged.
    pub fn is_noop(&self) -> bool {
        self.items.iter().all(|i| i.action == Action::Keep)
    }
    /// Whether any item is renewed because it is inside its early-renewal window.
    pub fn has_renewals(&self) -> bool {
        self.items.iter().any(|i| {
            matches!(
                i.action,
                Action::Issue {
                    reason: Reason::Expiring { .. },
                    ..
                }
            )
        })
    }
}

impl fmt::Display for Plan {
    /// One line per (re)issued item, `name: reason`; "no changes" when none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_noop() {
            return f.write_str("no changes");
        }
        let mut first = true;
        for item in &self.items {
            if let Action::Issue { reason, .. } = &item.action {
                if !first {
                    f.write_str("\n")?;
                }
                first = false;
                write!(f, "{}: {reason}", item.name)?;
            }
        }
        Ok(())
    }
}

/// What plan knows about each CA after the decision, for its leaves.
struct CaOutcome {
    /// The CA certificate as it will be, if known now (kept, given, or re-signed with its own key:
    /// in the last case the prior certificate stands in — same key and subject).
    verify_against: Option<String>,
    /// Expiry of the CA as it will be.
    not_after: OffsetDateTime,
    /// Whether anything about the CA certificate changes.
    changed: bool,
}

fn issue(reason: Reason, new_key: bool) -> Action {
    Action::Issue { reason, new_key }
}

/// SANs compared as sets: reordering names is no reason to re-issue.
fn same_names(a: &[crate::Host], b: &[crate::Host]) -> bool {
    let set = |h: &[crate::Host]| h.iter().cloned().collect::<BTreeSet<_>>();
    set(a) == set(b)
}

/// A subject as a plan shows it: `O=…, CN=…` (organizations first, as in the certificate).
fn subject_string(common_name: Option<&str>, organizations: &[String]) -> String {
    organizations
        .iter()
        .map(|o| format!("O={o}"))
        .chain(std::iter::once(format!("CN={}", common_name.unwrap_or(""))))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sans_strings(hosts: &[crate::Host]) -> Vec<String> {
    hosts.iter().map(ToString::to_string).collect()
}

/// Prior certificate and key of a spec, checked to belong together.
fn prior_pair<'a>(spec: &CertSpec, prior: &'a Assets) -> Result<(&'a str, &'a str, CertFacts), Reason> {
    let (Some(cert), Some(key)) = (prior.get(&spec.cert_path()), prior.get(&spec.key_path())) else {
        return Err(Reason::Missing);
    };
    let facts = certs::read_cert(&spec.cert_path(), cert).map_err(|e| Reason::Unreadable(e.to_string()))?;
    let kp = keys::load(key).map_err(|_| Reason::Unreadable(format!("{} is not a usable key", spec.key_path())))?;
    if kp.public_key_raw() != facts.public_key.as_slice() {
        return Err(Reason::Unreadable(format!(
            "{} does not match {}",
            spec.key_path(),
            spec.cert_path()
        )));
    }
    Ok((cert, key, facts))
}

/// Decides which items must be (re)issued and why. Generates no key; cheap.
///
/// # Errors
/// [`PkiError::Params`] if the params cannot describe a PKI (e.g. no API
/// server); prior assets never cause an error, only re-issues.
pub fn plan(params: &PkiParams, prior: Option<&Assets>, now: OffsetDateTime) -> Result<Plan, PkiError> {
    let empty = Assets::new();
    let prior = prior.unwrap_or(&empty);
    let mut items = Vec::new();
    let mut warnings = Vec::new();
    let mut cas: BTreeMap<CaId, CaOutcome> = BTreeMap::new();

    // Certificate authorities.
    for ca in CaId::ALL {
        let spec = ca_spec(ca);
        let prior_pair = prior_pair(&spec, prior);
        let (action, outcome) = match (ca, &params.byo_ca) {
            (CaId::Kube, Some(byo)) => {
                let facts = certs::read_cert(&spec.cert_path(), &byo.cert_pem)?;
                let same = prior.get(&spec.cert_path()) == Some(&byo.cert_pem)
                    && prior.get(&spec.key_path()) == Some(&byo.key_pem);
                if renewal_due(facts.not_after, params.early_renewal, now) {
                    warnings.push(format!(
                        "the given kube CA (ca_cert_pem) expires {}, inside the early-renewal window; supply a renewed CA (same key and subject keeps every certificate)",
                        facts.not_after
                    ));
                }
                let action = if same {
                    Action::Keep
                } else if prior.contains_key(&spec.cert_path()) {
                    issue(Reason::ByoCaChanged, true)
                } else {
                    issue(Reason::Missing, true)
                };
                let changed = action != Action::Keep;
                (
                    action,
                    CaOutcome {
                        verify_against: Some(byo.cert_pem.clone()),
                        not_after: facts.not_after,
                        changed,
                    },
                )
            }
            _ => match prior_pair {
                Err(reason) => (
                    issue(reason, true),
                    CaOutcome {
                        verify_against: None,
                        not_after: now.saturating_add(params.ca_validity),
                        changed: true,
                    },
                ),
                Ok((_, _, facts)) if !facts.is_ca => (
                    issue(
                        Reason::Unreadable(format!("{} is not a CA certificate", spec.cert_path())),
                        true,
                    ),
                    CaOutcome {
                        verify_against: None,
                        not_after: now.saturating_add(params.ca_validity),
                        changed: true,
                    },
                ),
                // A CA we did not make (a bring-your-own CA whose inputs were dropped): kept
                // as it is, never re-keyed silently, never re-signed under our subject.
                Ok((cert, _, facts)) if facts.common_name.as_deref() != Some(spec.common_name.as_str()) => {
                    if renewal_due(facts.not_after, params.early_renewal, now) {
                        warnings.push(format!(
                            "{} was not generated here and expires {}, inside the early-renewal window; supply a renewed CA through ca_cert_pem/ca_private_key_pem",
                            spec.cert_path(),
                            facts.not_after
                        ));
                    }
                    (
                        Action::Keep,
                        CaOutcome {
                            verify_against: Some(cert.to_owned()),
                            not_after: facts.not_after,
                            changed: false,
                        },
                    )
                }
                Ok((cert, _, facts)) if renewal_due(facts.not_after, params.early_renewal, now) => (
                    issue(
                        Reason::Expiring {
                            not_after: facts.not_after,
                        },
                        false,
                    ),
                    CaOutcome {
                        verify_against: Some(cert.to_owned()),
                        not_after: now.saturating_add(params.ca_validity),
                        changed: true,
                    },
                ),
                Ok((cert, _, facts)) => (
                    Action::Keep,
                    CaOutcome {
                        verify_against: Some(cert.to_owned()),
                        not_after: facts.not_after,
                        changed: false,
                    },
                ),
            },
        };
        items.push(PlannedItem {
            name: spec.name.to_owned(),
            paths: vec![spec.cert_path(), spec.key_path()],
            action,
        });
        cas.insert(ca, outcome);
    }

    // Leaf certificates.
    for spec in leaf_specs(params) {
        let Some(ca) = spec.issuer.and_then(|id| cas.get(&id)) else {
            continue;
        };
        let wanted_end = leaf_not_after(params, now, ca.not_after);
        let action = match prior_pair(&spec, prior) {
            Err(reason) => issue(reason, true),
            Ok((cert, _, facts)) => {
                let verifies = ca
                    .verify_against
                    .as_deref()
                    .is_some_and(|ca_pem| certs::is_signed_by(cert, ca_pem));
                if !verifies {
                    issue(Reason::IssuerChanged, true)
                } else if !same_names(&facts.sans, &spec.sans) {
                    issue(
                        Reason::NamesChanged {
                            from: sans_strings(&facts.sans),
                            to: sans_strings(&spec.sans),
                        },
                        true,
                    )
                } else if facts.common_name.as_deref() != Some(spec.common_name.as_str())
                    || facts.organizations != spec.organizations
                {
                    issue(
                        Reason::SubjectChanged {
                            from: subject_string(facts.common_name.as_deref(), &facts.organizations),
                            to: subject_string(Some(&spec.common_name), &spec.organizations),
                        },
                        true,
                    )
                } else if (facts.server_auth, facts.client_auth) != (spec.server_auth, spec.client_auth) {
                    issue(Reason::UsageChanged, true)
                } else if facts.key_algorithm != Some(params.key_algorithm) {
                    issue(
                        Reason::KeyAlgorithmChanged {
                            from: facts.key_algorithm,
                            to: params.key_algorithm,
                        },
                        true,
                    )
                } else if renewal_due(facts.not_after, params.early_renewal, now) && wanted_end > facts.not_after {
                    issue(
                        Reason::Expiring {
                            not_after: facts.not_after,
                        },
                        true,
                    )
                } else {
                    Action::Keep
                }
            }
        };
        items.push(PlannedItem {
            name: spec.name.to_owned(),
            paths: vec![spec.cert_path(), spec.key_path()],
            action,
        });
    }

    // Service-account key pair.
    let sa_action = match (prior.get(SERVICE_ACCOUNT_KEY), prior.get(SERVICE_ACCOUNT_PUB)) {
        (Some(key), Some(public)) => match keys::load(key) {
            Ok(kp) if kp.public_key_pem() == *public => Action::Keep,
            Ok(_) => issue(
                Reason::Unreadable(format!("{SERVICE_ACCOUNT_PUB} does not match {SERVICE_ACCOUNT_KEY}")),
                true,
            ),
            Err(_) => issue(
                Reason::Unreadable(format!("{SERVICE_ACCOUNT_KEY} is not a usable key")),
                true,
            ),
        },
        _ => issue(Reason::Missing, true),
    };
    items.push(PlannedItem {
        name: "service-account".into(),
        paths: vec![SERVICE_ACCOUNT_KEY.into(), SERVICE_ACCOUNT_PUB.into()],
        action: sa_action,
    });

    // Bootstrap tokens.
    for (name, path) in TOKENS {
        let action = match prior.get(path) {
            Some(t) if token::is_valid(t) => Action::Keep,
            Some(_) => issue(Reason::Unreadable(format!("{path} is not <6>.<16> of [a-z0-9]")), true),
            None => issue(Reason::Missing, true),
        };
        items.push(PlannedItem {
            name: name.into(),
            paths: vec![path.into()],
            action,
        });
    }

    // Kubeconfigs: re-rendered when an embedded item changes, or when a render from the
    // kept inputs differs from the prior file (server URL, names).
    let changed: BTreeSet<String> = items
        .iter()
        .filter(|i| i.action != Action::Keep)
        .map(|i| i.name.clone())
        .collect();
    let kube_ca_changed = cas.get(&CaId::Kube).is_none_or(|c| c.changed);
    for kc in kubeconfig_specs(params)? {
        let mut inputs: Vec<String> = kc
            .inputs
            .iter()
            .filter(|n| changed.contains(**n))
            .map(|n| (*n).to_owned())
            .collect();
        if kube_ca_changed && !inputs.iter().any(|n| n == "ca") {
            inputs.insert(0, "ca".into());
        }
        let action = match prior.get(kc.path) {
            None => issue(Reason::Missing, true),
            Some(_) if !inputs.is_empty() => issue(Reason::InputsChanged(inputs), true),
            Some(old) => match render_kubeconfig(params, &kc, prior) {
                Some(new) if new == *old => Action::Keep,
                _ => issue(Reason::InputsChanged(vec!["server or names".into()]), true),
            },
        };
        items.push(PlannedItem {
            name: kc.name.to_owned(),
            paths: vec![kc.path.to_owned()],
            action,
        });
    }
    Ok(Plan { items, warnings })
}

/// What a kubeconfig embeds.
pub(crate) struct KubeconfigSpec {
    pub name: &'static str,
    pub path: &'static str,
    /// Item names it embeds (besides the kube CA).
    pub inputs: &'static [&'static str],
    pub server: String,
    pub cluster: String,
    pub user: String,
    pub context: String,
}

/// The five kubeconfigs for these params.
pub(crate) fn kubeconfig_specs(p: &PkiParams) -> Result<Vec<KubeconfigSpec>, PkiError> {
    let public = server_url(p)?;
    let local = format!("https://127.0.0.1:{}", p.api_server_port);
    let spec = |name, path, inputs, server: &str, cluster: &str, user: &str, context: &str| KubeconfigSpec {
        name,
        path,
        inputs,
        server: server.to_owned(),
        cluster: cluster.to_owned(),
        user: user.to_owned(),
        context: context.to_owned(),
    };
    let c = p.cluster_name.as_str();
    Ok(vec![
        spec(
            "admin-kubeconfig",
            ADMIN_KUBECONFIG,
            &["admin"],
            &public,
            c,
            &format!("{c}-admin"),
            &format!("admin@{c}"),
        ),
        spec(
            "kubelet-bootstrap-kubeconfig",
            KUBELET_BOOTSTRAP_KUBECONFIG,
            &["bootstrap-token"],
            &public,
            "local",
            "kubelet-bootstrap",
            "kubelet-bootstrap",
        ),
        spec(
            "controller-bootstrap-kubeconfig",
            CONTROLLER_BOOTSTRAP_KUBECONFIG,
            &["controller-bootstrap-token"],
            &public,
            "local",
            "kubelet-bootstrap",
            "kubelet-bootstrap",
        ),
        spec(
            "controller-manager-kubeconfig",
            CONTROLLER_MANAGER_KUBECONFIG,
            &["controller-manager"],
            &local,
            "local",
            "system:kube-controller-manager",
            "default",
        ),
        spec(
            "scheduler-kubeconfig",
            SCHEDULER_KUBECONFIG,
            &["scheduler"],
            &local,
            "local",
            "system:kube-scheduler",
            "default",
        ),
    ])
}

/// Renders a kubeconfig from the given assets; `None` if an embedded asset is absent.
pub(crate) fn render_kubeconfig(p: &PkiParams, kc: &KubeconfigSpec, assets: &Assets) -> Option<String> {
    let ca_pem = assets.get("tls/ca.crt")?;
    let credential = match kc.inputs.first().copied() {
        Some(item) if item.ends_with("bootstrap-token") => {
            let (_, path) = TOKENS.into_iter().find(|(name, _)| *name == item)?;
            Credential::Token(assets.get(path)?)
        }
        Some(cert) => {
            let spec = leaf_specs(p).into_iter().find(|s| s.name == cert)?;
            Credential::ClientCert {
                cert_pem: assets.get(&spec.cert_path())?,
                key_pem: assets.get(&spec.key_path())?,
            }
        }
        None => return None,
    };
    Some(
        Kubeconfig {
            cluster: &kc.cluster,
            server: &kc.server,
            ca_pem,
            user: &kc.user,
            credential,
            context: &kc.context,
        }
        .render(),
    )
}

/// The leaf validity end for a re-issue at `now` under a CA ending at `ca_not_after`.
pub(crate) fn leaf_not_after(params: &PkiParams, now: OffsetDateTime, ca_not_after: OffsetDateTime) -> OffsetDateTime {
    now.saturating_add(params.leaf_validity).min(ca_not_after)
}
