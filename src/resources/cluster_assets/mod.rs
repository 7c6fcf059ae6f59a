//! `selfhosted_cluster_assets`: the cluster's PKI and kubeconfigs as
//! Terraform state. Every decision about what to (re)issue is the PKI
//! crate's ([`selfhosted_pki::plan`]); this module maps schema ↔ inputs,
//! keeps plan and apply consistent (apply issues at the instant plan
//! decided at), and writes the optional `asset_dir`.

mod import;
mod inputs;
mod outputs;
mod render;
pub mod schema;

use std::path::Path;

use selfhosted_pki::Assets;
use selfhosted_protocol::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use selfhosted_protocol::resource::{
    ApplyRequest, ApplyResponse, ImportRequest, ImportResponse, PlanRequest, PlanResponse, ReadRequest, ReadResponse,
    Resource, UpgradeRequest, UpgradeResponse, ValidateRequest,
};
use selfhosted_protocol::schema::Schema;
use selfhosted_protocol::value::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use self::inputs::{Inputs, StandIns};
use self::outputs::PlannedAssets;
use self::schema::attr;
use crate::asset_dir;
use crate::clock::Clock;
use crate::resources::config::string_entries;

/// The `selfhosted_cluster_assets` resource.
pub struct ClusterAssets {
    clock: Clock,
}

impl ClusterAssets {
    /// The resource, deciding renewals by `clock`.
    pub fn new(clock: Clock) -> Self {
        ClusterAssets { clock }
    }
}

/// The assets kept in a state, if it has any.
fn assets_of(state: &Value) -> Option<Assets> {
    state.get(attr::ASSETS).and_then(string_entries)
}

fn string_attr<'a>(state: &'a Value, name: &str) -> Option<&'a str> {
    state.get(name).and_then(Value::as_str)
}

/// Whether the change from `prior` to `planned` replaces the resource.
/// An imported state has no cluster name yet: adopting one is no replacement.
fn replaces(prior: &Value, planned: &Value) -> bool {
    match (string_attr(prior, attr::CLUSTER_NAME), planned.get(attr::CLUSTER_NAME)) {
        (Some(old), Some(new)) => new.as_str() != Some(old),
        _ => false,
    }
}

/// The instant plan decided at, carried to apply in private state.
#[derive(serde::Serialize, serde::Deserialize)]
struct Private {
    now: String,
}

fn encode_now(now: OffsetDateTime) -> Vec<u8> {
    let now = now.format(&Rfc3339).unwrap_or_default();
    serde_json::to_vec(&Private { now }).unwrap_or_default()
}

fn decode_now(private: &[u8]) -> Option<OffsetDateTime> {
    let p: Private = serde_json::from_slice(private).ok()?;
    OffsetDateTime::parse(&p.now, &Rfc3339).ok()
}

/// A change of `kubernetes_version` that Kubernetes cannot make in one step (a skipped or
/// reverted minor) is refused at plan, before anything is rendered or contacted.
fn version_step(prior: &Value, planned: &Value) -> Result<(), Diagnostics> {
    let parse = |state: &Value| {
        string_attr(state, attr::KUBERNETES_VERSION).and_then(|v| selfhosted_manifests::params::parse_version(v).ok())
    };
    let (Some(from), Some(to)) = (parse(prior), parse(planned)) else {
        return Ok(());
    };
    selfhosted_manifests::versions::upgrade_step(from, to).map_err(|detail| {
        error("This Kubernetes version change cannot be made", detail)
            .with_path(AttributePath::root(attr::KUBERNETES_VERSION))
    })
}

fn error(summary: &str, detail: impl std::fmt::Display) -> Diagnostics {
    Diagnostic::error(summary, detail.to_string()).into()
}

/// The full error chain of a failure, for the detail of a diagnostic.
use selfhosted_pivot::chain;

/// Plans every computed attribute of `planned` from inputs that are known (or stood in for).
fn plan_known(
    planned: &mut Value,
    prior_state: &Value,
    inputs: &Inputs<'_>,
    prior: Option<&Assets>,
    now: OffsetDateTime,
) -> Result<Diagnostics, Diagnostics> {
    let mut params = inputs.params()?;
    let decision =
        selfhosted_pki::plan(&params.pki, prior, now).map_err(|e| error("Cannot plan the cluster's PKI", chain(&e)))?;

    let changed = decision.changed_paths();
    // The next revision whenever anything is (re)issued, else the one in state: a counter,
    // so that plan and the final plan at apply agree.
    let prior_revision = string_attr(prior_state, attr::CREDENTIALS_REVISION)
        .and_then(|r| r.parse::<u64>().ok())
        .unwrap_or(0);
    let revision = match prior {
        None => 1,
        Some(_) if !changed.is_empty() => prior_revision + 1,
        Some(_) => prior_revision,
    }
    .to_string();
    params.manifests.credentials_revision.clone_from(&revision);
    planned.set_attr(attr::CREDENTIALS_REVISION, Value::from(revision.as_str()));
    let pki: PlannedAssets = decision
        .items
        .iter()
        .flat_map(|item| item.paths.iter())
        .map(|p| {
            let v = if changed.contains(p) {
                None
            } else {
                prior.and_then(|a| a.get(p).cloned())
            };
            (p.clone(), v)
        })
        .collect();
    let public = render::public(&params.manifests).map_err(|e| render_error(&e))?;
    let secrets = match prior {
        Some(prior) if changed.is_empty() => render::secrets(&params.manifests, prior).map_err(|e| render_error(&e))?,
        // The file names do not depend on the keys: render with the old ones to learn them.
        Some(prior) => match render::secrets(&params.manifests, prior) {
            Ok(render::Secrets::Known {
                secret_manifests,
                bootstrap_secrets,
                recovery_secrets,
            }) => render::Secrets::KeysOnly(
                secret_manifests
                    .into_keys()
                    .chain(bootstrap_secrets.into_keys())
                    .chain(recovery_secrets.into_keys())
                    .collect(),
            ),
            _ => render::Secrets::Unknown,
        },
        None => render::Secrets::Unknown,
    };
    outputs::set_all(planned, &params.pki, &pki, &public, &secrets);

    let mut diags = Diagnostics::new();
    for w in &decision.warnings {
        diags.warning("Certificate authority needs attention", w.clone());
    }
    let prior_ready = prior_state.get(attr::READY_FOR_RENEWAL).and_then(Value::as_bool);
    planned.set_attr(
        attr::READY_FOR_RENEWAL,
        Value::from(if changed.is_empty() {
            prior_ready.unwrap_or(false)
        } else {
            false
        }),
    );
    if prior.is_some() && !changed.is_empty() {
        diags.warning(
            "Cluster certificates will be re-issued",
            format!(
                "{}\nEverything else is kept. Hosts receive the new files from selfhosted_bootstrap.",
                reissue_reasons(&decision).join("\n")
            ),
        );
    }
    Ok(diags)
}

/// Computed attributes that are unknown while an input is.
const OUTPUTS: [&str; 20] = [
    attr::ID,
    attr::ASSETS,
    attr::SERVER_URL,
    attr::CLUSTER_DNS_SERVICE_IP,
    attr::CA_CERTIFICATE,
    attr::ETCD_CA_CERTIFICATE,
    attr::ADMIN_KUBECONFIG,
    attr::ADMIN_CLIENT_CERTIFICATE,
    attr::ADMIN_CLIENT_KEY,
    attr::KUBELET_BOOTSTRAP_KUBECONFIG,
    attr::CERTIFICATE_EXPIRY,
    attr::VALIDITY_END_TIME,
    attr::ASSET_DIR_SHA256,
    attr::MANIFESTS,
    attr::BOOTSTRAP_MANIFESTS,
    attr::SECRET_MANIFESTS,
    attr::APISERVER_GENERATION,
    attr::CREDENTIALS_REVISION,
    attr::NODE,
    attr::JOINING_WORKER_IGNITION,
];

fn render_error(e: &selfhosted_manifests::RenderError) -> Diagnostics {
    error("Cannot render the manifests", chain(e))
}

/// One line per (re)issued item and why, for the plan's warning.
fn reissue_reasons(decision: &selfhosted_pki::Plan) -> Vec<String> {
    decision
        .items
        .iter()
        .filter_map(|i| match &i.action {
            selfhosted_pki::Action::Issue { reason, .. } => Some(format!("{}: {reason}", i.name)),
            selfhosted_pki::Action::Keep => None,
        })
        .collect()
}

impl ClusterAssets {
    fn plan_inner(&self, req: &PlanRequest) -> Result<(Value, Vec<u8>, Diagnostics), Diagnostics> {
        let mut planned = req.proposed_new_state.clone();
        for (name, default) in schema::defaults() {
            if req.config.get(name).is_none_or(Value::is_null) {
                planned.set_attr(name, default);
            }
        }
        if !replaces(&req.prior_state, &planned) {
            version_step(&req.prior_state, &planned)?;
        }
        let inputs = Inputs::read(&req.config);
        let prior = if replaces(&req.prior_state, &planned) {
            None
        } else {
            assets_of(&req.prior_state)
        };
        let now = (self.clock)();
        if !inputs.any_unknown() {
            let diags = plan_known(&mut planned, &req.prior_state, &inputs, prior.as_ref(), now)?;
            return Ok((planned, encode_now(now), diags));
        }
        // A host another resource creates (a load balancer's name): render around two
        // different stand-ins and keep known what came out the same. Only at creation: with
        // assets in state, whether certificates are re-issued depends on the real name.
        if prior.is_none() && inputs.only_hosts_unknown() {
            let mut other = planned.clone();
            let diags = plan_known(&mut planned, &req.prior_state, &inputs, None, now)?;
            let b = Inputs::read_with_stand_ins(&req.config, StandIns::B);
            plan_known(&mut other, &req.prior_state, &b, None, now)?;
            for name in OUTPUTS {
                if let (Some(a), Some(b)) = (planned.get(name), other.get(name)) {
                    let same = outputs::where_same(a, b);
                    planned.set_attr(name, same);
                }
            }
            return Ok((planned, encode_now(now), diags));
        }
        for name in OUTPUTS {
            planned.set_attr(name, Value::Unknown);
        }
        planned.set_attr(attr::READY_FOR_RENEWAL, Value::from(false));
        if inputs.asset_dir.is_none() && !req.config.get(attr::ASSET_DIR).is_some_and(Value::is_unknown) {
            planned.set_attr(attr::ASSET_DIR_SHA256, Value::Null);
        }
        Ok((planned, Vec::new(), Diagnostics::new()))
    }

    fn apply_inner(&self, req: &ApplyRequest) -> Result<Value, Diagnostics> {
        if req.planned_state.is_null() {
            if let (Some(dir), Some(assets)) = (
                string_attr(&req.prior_state, attr::ASSET_DIR),
                assets_of(&req.prior_state),
            ) {
                asset_dir::remove(Path::new(dir), assets.into_keys())
                    .map_err(|e| error("Cannot remove the asset files", chain(&e)))?;
            }
            return Ok(Value::Null);
        }
        let inputs = Inputs::read(&req.config);
        let mut params = inputs.params()?;
        let prior = if replaces(&req.prior_state, &req.planned_state) {
            None
        } else {
            assets_of(&req.prior_state)
        };
        let now = decode_now(&req.planned_private).unwrap_or_else(|| (self.clock)());
        // Plan decided the revision; it is known there.
        params.manifests.credentials_revision = string_attr(&req.planned_state, attr::CREDENTIALS_REVISION)
            .unwrap_or_default()
            .to_owned();
        let material = selfhosted_pki::issue(&params.pki, prior.as_ref(), now)
            .map_err(|e| error("Cannot issue the cluster's PKI", chain(&e)))?;
        let public = render::public(&params.manifests).map_err(|e| render_error(&e))?;
        let secrets = render::secrets(&params.manifests, &material).map_err(|e| render_error(&e))?;
        let pki = outputs::known(&material);
        let files: Assets = outputs::all_files(&pki, &public, &secrets)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();

        // What plan promised must hold: every file it knew stays as it said.
        if let Some(planned) = req.planned_state.get(attr::ASSETS).and_then(Value::as_map) {
            for (path, v) in planned {
                if let Some(want) = v.as_str() {
                    if files.get(path).map(String::as_str) != Some(want) {
                        return Err(error(
                            "Rendered assets differ from the plan",
                            format!("{path} was planned unchanged but came out different. This is a bug in the provider; please report it. Nothing was written."),
                        ));
                    }
                }
            }
        }

        let mut state = req.planned_state.clone();
        outputs::set_all(&mut state, &params.pki, &pki, &public, &secrets);
        state.set_attr(attr::READY_FOR_RENEWAL, Value::from(false));
        if let Some(dir) = &inputs.asset_dir {
            let same_dir = string_attr(&req.prior_state, attr::ASSET_DIR) == Some(dir.as_str());
            let previous: Vec<String> = if same_dir {
                assets_of(&req.prior_state)
                    .map(|a| a.into_keys().collect())
                    .unwrap_or_default()
            } else {
                vec![]
            };
            asset_dir::sync(Path::new(dir), &files, previous).map_err(|e| {
                error("Cannot write the asset files", chain(&e)).with_path(AttributePath::root(attr::ASSET_DIR))
            })?;
        }
        if let Some(old) = string_attr(&req.prior_state, attr::ASSET_DIR) {
            if Some(old) != inputs.asset_dir.as_deref() {
                if let Some(old_files) = assets_of(&req.prior_state) {
                    asset_dir::remove(Path::new(old), old_files.into_keys())
                        .map_err(|e| error("Cannot remove the files in the previous asset_dir", chain(&e)))?;
                }
            }
        }
        Ok(state)
    }

    fn read_inner(&self, current: &Value) -> Value {
        let mut state = current.clone();
        let Some(assets) = assets_of(current) else { return state };
        let mut inputs = Inputs::read(current);
        // The write-only CA key is not in state; the assets hold it.
        if inputs.raw.ca_cert_pem.is_some() && inputs.raw.ca_private_key_pem.is_none() {
            inputs.raw.ca_private_key_pem = assets.get("tls/ca.key").cloned();
        }
        if let Ok(params) = inputs.params() {
            if let Ok(ready) = selfhosted_pki::is_ready_for_renewal(&params.pki, &assets, (self.clock)()) {
                state.set_attr(attr::READY_FOR_RENEWAL, Value::from(ready));
            }
        }
        if let Some(dir) = &inputs.asset_dir {
            let on_disk = asset_dir::digest_on_disk(Path::new(dir), assets.keys().map(String::as_str));
            state.set_attr(attr::ASSET_DIR_SHA256, Value::from(on_disk));
        }
        state
    }
}

/// Pins every diagnostic without a path to `path`.
trait WithPath {
    fn with_path(self, path: AttributePath) -> Self;
}

impl WithPath for Diagnostics {
    fn with_path(mut self, path: AttributePath) -> Self {
        for d in &mut self.0 {
            d.attribute.get_or_insert_with(|| path.clone());
        }
        self
    }
}

#[async_trait::async_trait]
impl Resource for ClusterAssets {
    fn type_name(&self) -> &'static str {
        "selfhosted_cluster_assets"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    async fn validate(&self, req: ValidateRequest) -> Diagnostics {
        Inputs::read(&req.config).diagnostics()
    }

    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        let requires_replace = if replaces(&req.prior_state, &req.proposed_new_state) {
            vec![AttributePath::root(attr::CLUSTER_NAME)]
        } else {
            vec![]
        };
        match self.plan_inner(&req) {
            Ok((planned_state, planned_private, diagnostics)) => PlanResponse {
                planned_state,
                requires_replace,
                planned_private,
                diagnostics,
            },
            Err(diagnostics) => PlanResponse {
                diagnostics,
                ..PlanResponse::default()
            },
        }
    }

    async fn apply(&self, req: ApplyRequest) -> ApplyResponse {
        match self.apply_inner(&req) {
            Ok(new_state) => ApplyResponse {
                new_state,
                ..ApplyResponse::default()
            },
            // Nothing was stored: keep the prior state so nothing is lost.
            Err(diagnostics) => ApplyResponse {
                new_state: req.prior_state,
                diagnostics,
                ..ApplyResponse::default()
            },
        }
    }

    async fn read(&self, req: ReadRequest) -> ReadResponse {
        ReadResponse {
            new_state: self.read_inner(&req.current_state),
            private: req.private,
            ..ReadResponse::default()
        }
    }

    async fn import(&self, req: ImportRequest) -> ImportResponse {
        match import::from_dir(Path::new(&req.id)) {
            Ok(assets) => {
                let mut state = Value::null_object(&schema::schema().value_type());
                state.set_attr(attr::ID, Value::from(req.id.as_str()));
                if let Some(revision) = import::credentials_revision(&assets) {
                    state.set_attr(attr::CREDENTIALS_REVISION, Value::from(revision.as_str()));
                }
                state.set_attr(attr::ASSET_DIR, Value::from(req.id.as_str()));
                state.set_attr(
                    attr::ASSETS,
                    Value::Map(assets.into_iter().map(|(k, v)| (k, Value::from(v))).collect()),
                );
                ImportResponse {
                    state,
                    ..ImportResponse::default()
                }
            }
            Err(e) => ImportResponse {
                diagnostics: error(
                    "Cannot import cluster assets",
                    format!(
                        "{}\nThe import ID is the path of an asset directory as this provider writes it (tls/, auth/).",
                        chain(&e)
                    ),
                ),
                ..ImportResponse::default()
            },
        }
    }

    fn upgrade_state(&self, req: UpgradeRequest) -> UpgradeResponse {
        match req.version {
            schema::VERSION if !req.state.is_null() => UpgradeResponse { state: req.state, ..UpgradeResponse::default() },
            v => UpgradeResponse {
                diagnostics: error(
                    "Cannot read the stored state",
                    format!("State schema version {v} is not one this provider knows (current: {}). Use the provider release that wrote it, or remove the resource from state and import it.", schema::VERSION),
                ),
                ..UpgradeResponse::default()
            },
        }
    }
}
