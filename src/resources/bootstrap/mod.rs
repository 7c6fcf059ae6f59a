//! `selfhosted_bootstrap`: reaches the hosts, delivers their secrets and
//! runs the self-hosted pivot ([`selfhosted_pivot::pivot`]); later changes
//! (new assets, new hosts) are upgrades ([`selfhosted_pivot::upgrade`]).
//! Plan makes no network call; every apply is idempotent, so a failed one,
//! rerun, converges.

mod inputs;
mod refresh;
pub mod schema;

use std::collections::BTreeMap;

use selfhosted_pivot::procedure::{LeavingController, Outcome, PivotParams};
use selfhosted_pivot::run;
use selfhosted_pivot::{Phase, PivotError};
use selfhosted_protocol::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use selfhosted_protocol::resource::{
    ApplyRequest, ApplyResponse, ImportRequest, ImportResponse, PlanRequest, PlanResponse, ReadRequest, ReadResponse,
    Resource, ValidateRequest,
};
use selfhosted_protocol::schema::Schema;
use selfhosted_protocol::value::Value;

use self::inputs::{assets_digest, Config, OnDestroy};
use self::schema::attr;
use crate::resources::config::string_entries;

/// The `selfhosted_bootstrap` resource.
#[derive(Debug, Default)]
pub struct Bootstrap;

/// Host keys kept in a state.
fn learned_of(state: &Value) -> BTreeMap<String, String> {
    state
        .get(attr::LEARNED_HOST_KEYS)
        .and_then(string_entries)
        .unwrap_or_default()
}

fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Map(m.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect())
}

/// Computed attributes a change makes unknown until apply.
const COMPUTED: [&str; 9] = [
    attr::ID,
    attr::LEARNED_HOST_KEYS,
    attr::PHASE,
    attr::API_ENDPOINT,
    attr::APPLIED_DIGEST,
    attr::CONTROL_PLANE_VERSIONS,
    attr::KUBELET_VERSIONS,
    attr::ETCD_VERSIONS,
    attr::ETCD_SNAPSHOT,
];

/// Versions a run saw, or (when it saw none) the prior state's `name`, or an empty map.
fn seen_or_prior(seen: &BTreeMap<String, String>, prior: &Value, name: &str) -> Value {
    if !seen.is_empty() {
        return string_map(seen);
    }
    prior
        .get(name)
        .filter(|v| !v.is_null())
        .cloned()
        .unwrap_or_else(|| string_map(&BTreeMap::new()))
}

/// The state after a (possibly partial) run of the pivot.
fn state_after(planned: &Value, prior: &Value, config: &Config, outcome: &Outcome, done: bool) -> Value {
    let mut state = planned.clone();
    let mut learned = learned_of(prior);
    for k in &outcome.learned {
        learned.insert(k.host.clone(), k.known_hosts_line());
    }
    state.set_attr(attr::ID, Value::from(config.inventory.bootstrap().name.as_str()));
    state.set_attr(attr::LEARNED_HOST_KEYS, string_map(&learned));
    state.set_attr(attr::PHASE, Value::from(outcome.reached.map_or("none", Phase::name)));
    state.set_attr(attr::API_ENDPOINT, Value::from(outcome.api_endpoint.as_str()));
    state.set_attr(attr::ETCD_SNAPSHOT, snapshot_after(prior, outcome, done));
    state.set_attr(
        attr::KUBELET_VERSIONS,
        seen_or_prior(&outcome.kubelets, prior, attr::KUBELET_VERSIONS),
    );
    state.set_attr(
        attr::ETCD_VERSIONS,
        seen_or_prior(&outcome.etcd, prior, attr::ETCD_VERSIONS),
    );
    let keep = |name: &str| {
        prior
            .get(name)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(Value::from(""))
    };
    if done {
        state.set_attr(attr::CONTROL_PLANE_VERSIONS, string_map(&outcome.versions));
        state.set_attr(attr::APPLIED_DIGEST, Value::from(outcome.applied_digest.as_str()));
        state.set_attr(attr::ASSETS_SHA256, Value::from(assets_digest(&config.assets)));
    } else {
        // Not converged. The last complete apply's digest stays (it also says the pivot
        // was done once); the assets digest is cleared, so the next plan converges again
        // whatever the configuration is then, even one reverted to what last worked.
        state.set_attr(
            attr::CONTROL_PLANE_VERSIONS,
            seen_or_prior(&outcome.versions, prior, attr::CONTROL_PLANE_VERSIONS),
        );
        state.set_attr(attr::APPLIED_DIGEST, keep(attr::APPLIED_DIGEST));
        state.set_attr(attr::ASSETS_SHA256, Value::from(""));
        if outcome.reached.is_none_or(|p| p < Phase::RemoveNodes) {
            keep_leaving_hosts(&mut state, prior);
        }
    }
    state
}

/// Hosts an update removes stay in the state of a run that failed before it removed them:
/// the rerun must know them to finish (drain and delete their nodes; in a shrink, remove
/// the etcd members and clear the hosts of the controllers that leave). Workers the
/// configuration dropped are kept after the configured ones; in a shrink the controllers
/// stay as they were.
fn keep_leaving_hosts(state: &mut Value, prior: &Value) {
    let before = host_names(prior.get(attr::CONTROLLERS));
    let now = host_names(state.get(attr::CONTROLLERS));
    if now.len() < before.len() && before.starts_with(&now) {
        if let Some(controllers) = prior.get(attr::CONTROLLERS) {
            state.set_attr(attr::CONTROLLERS, controllers.clone());
        }
    }
    let now = host_names(state.get(attr::WORKERS));
    let gone: Vec<Value> = prior
        .get(attr::WORKERS)
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter(|w| {
            w.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| !now.iter().any(|m| m == n))
        })
        .cloned()
        .collect();
    if !gone.is_empty() {
        let mut workers = state
            .get(attr::WORKERS)
            .and_then(Value::as_list)
            .map(<[Value]>::to_vec)
            .unwrap_or_default();
        workers.extend(gone);
        state.set_attr(attr::WORKERS, Value::List(workers));
    }
}

/// What an update will do with each host's kubelet, from the versions the prior state recorded.
fn kubelet_preview(config: &Config, prior: &Value) -> Option<String> {
    let recorded = recorded_kubelets(prior, &removed_nodes(prior, config));
    let hosts: Vec<(String, selfhosted_pivot::Role)> = config
        .inventory
        .hosts()
        .iter()
        .map(|h| (h.name.clone(), h.role))
        .collect();
    selfhosted_pivot::kubelets::preview(&config.assets, &hosts, &recorded)
}

/// What an update will do with each controller's etcd, from the releases the prior state
/// recorded.
fn etcd_preview(config: &Config, prior: &Value) -> Option<String> {
    let recorded = prior
        .get(attr::ETCD_VERSIONS)
        .and_then(string_entries)
        .unwrap_or_default();
    let controllers: Vec<String> = config
        .inventory
        .hosts()
        .iter()
        .filter(|h| h.role == selfhosted_pivot::Role::Controller)
        .map(|h| h.name.clone())
        .collect();
    selfhosted_pivot::etcd_release::preview(&config.assets, &controllers, &recorded)
}

/// The kubelet versions the prior state recorded, but for the nodes that leave in this update
/// (their nodes are deleted: there is nothing to say of their kubelets).
fn recorded_kubelets(prior: &Value, leaving: &[String]) -> BTreeMap<String, String> {
    let mut recorded = prior
        .get(attr::KUBELET_VERSIONS)
        .and_then(string_entries)
        .unwrap_or_default();
    recorded.retain(|node, _| !leaving.contains(node));
    recorded
}

/// Marks, in `etcd_snapshot`, a snapshot whose update has not converged yet.
const SNAPSHOT_PENDING: &str = "pending";

/// The host path of the snapshot a failed update took, which its reruns keep until one
/// converges: the record is still marked pending. A converged cluster (also one a refresh
/// found drifted), and a run that failed before taking its snapshot, get a new one.
fn earlier_snapshot(prior: &Value) -> Option<String> {
    let snapshot = prior.get(attr::ETCD_SNAPSHOT)?;
    let pending = snapshot.get(SNAPSHOT_PENDING).and_then(Value::as_str) == Some("true");
    let path = snapshot.get("path")?.as_str()?;
    (pending && !path.is_empty()).then(|| path.to_owned())
}

/// `etcd_snapshot` after a run: this run's record, else the last one; marked pending while
/// its update has not converged.
fn snapshot_after(prior: &Value, outcome: &Outcome, done: bool) -> Value {
    let mut record: BTreeMap<String, String> = match &outcome.etcd_snapshot {
        Some(r) => r.attributes(),
        None => prior
            .get(attr::ETCD_SNAPSHOT)
            .and_then(Value::as_map)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
    };
    if done {
        record.remove(SNAPSHOT_PENDING);
    } else if outcome.etcd_snapshot.is_some() {
        record.insert(SNAPSHOT_PENDING.to_owned(), "true".to_owned());
    }
    string_map(&record)
}

/// The run's warnings, for Terraform to show.
fn outcome_warnings(outcome: &Outcome) -> Diagnostics {
    let mut d = Diagnostics::default();
    for w in &outcome.warnings {
        d.warning(w.summary, w.detail.clone());
    }
    d
}

fn pivot_diagnostic(e: &PivotError) -> Diagnostic {
    let summary = match &e.host {
        Some(h) => format!("Bootstrap failed in phase {} on {h}", e.phase),
        None => format!("Bootstrap failed in phase {}", e.phase),
    };
    Diagnostic::error(
        summary,
        format!(
            "{}\n\nEvery phase is idempotent: fix the cause and run terraform apply again; it continues where this run stopped.",
            e.detail()
        ),
    )
}

/// The `name`s of a hosts list (`controllers` or `workers`) of a state or configuration.
fn host_names(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .filter_map(|h| h.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// Hosts of the prior state that the configuration no longer names: workers removed, and
/// controllers replaced by a new machine under a new name. Their nodes leave the cluster in
/// the update, and so do controllers a shrink drops.
fn removed_nodes(prior: &Value, config: &Config) -> Vec<String> {
    let now: Vec<String> = config.inventory.hosts().iter().map(|h| h.name.clone()).collect();
    [attr::CONTROLLERS, attr::WORKERS]
        .iter()
        .flat_map(|a| host_names(prior.get(a)))
        .filter(|n| !now.contains(n))
        .collect()
}

/// The controllers a shrink drops (the end of the prior list), each with how to reach it: the
/// configuration's logins and the prior state's entry for its host. A host that cannot be
/// read so (no host key left for it, say) is still taken out of etcd, just not cleared.
fn leaving_controllers(prior: &Value, config: &Value, learned: &BTreeMap<String, String>) -> Vec<LeavingController> {
    let before = host_names(prior.get(attr::CONTROLLERS));
    let now = host_names(config.get(attr::CONTROLLERS));
    if now.len() >= before.len() || !before.starts_with(&now) {
        return Vec::new();
    }
    let mut with_prior = config.clone();
    if let Some(controllers) = prior.get(attr::CONTROLLERS) {
        with_prior.set_attr(attr::CONTROLLERS, controllers.clone());
    }
    let hosts = Config::read(&with_prior, learned)
        .ok()
        .flatten()
        .map(|c| c.inventory.hosts().to_vec())
        .unwrap_or_default();
    before[now.len()..]
        .iter()
        .map(|name| LeavingController {
            name: name.clone(),
            ssh: hosts.iter().find(|h| &h.name == name).map(|h| h.ssh.clone()),
        })
        .collect()
}

/// Controllers of the prior state that the configuration drops. Another machine in a dropped
/// one's place (as many controllers as before, or more) is a replacement: the update moves
/// its etcd member to the new machine. Fewer controllers, the first ones kept in their order,
/// is a shrink: the update removes the leaving ones' etcd members and nodes. Refused: a shrink
/// that is not the list's end (or that also replaces a controller), and more replaced at once
/// than etcd's quorum allows (each replaced member is lost until its machine has joined).
///
/// A controller whose name the plan does not know yet, at a place the prior state fills (a
/// machine replaced in this same apply, e.g. `-replace` of its instance, whose new name comes
/// from it), counts as replaced: two of three so would be destroyed by Terraform before the
/// update could refuse them.
fn removed_controllers(prior: &Value, config: &Value) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let Some(list) = config.get(attr::CONTROLLERS).and_then(Value::as_list) else {
        return diags;
    };
    let before = host_names(prior.get(attr::CONTROLLERS));
    let unknown: Vec<usize> = list
        .iter()
        .enumerate()
        .take(before.len())
        .filter(|(_, h)| h.get("name").is_none_or(|n| !n.is_known()))
        .map(|(i, _)| i)
        .collect();
    let now = host_names(config.get(attr::CONTROLLERS));
    let gone: Vec<String> = before
        .iter()
        .filter(|n| !now.contains(n))
        .map(|n| format!("{n:?}"))
        .collect();
    if gone.is_empty() {
        return diags;
    }
    let at = AttributePath::root(attr::CONTROLLERS);
    if !unknown.is_empty() {
        // Known only after apply: no shrink can be told from a replacement, only the count.
        if list.len() >= before.len() {
            let places = unknown
                .iter()
                .map(|i| format!("controllers[{i}]"))
                .collect::<Vec<_>>()
                .join(", ");
            too_many_replaced(
                &mut diags,
                &at,
                &format!("{} (now known only after apply: {places})", gone.join(", ")),
                before.len(),
                before.len() - gone.len(),
            );
        }
        return diags;
    }
    if now.len() < before.len() {
        if before.starts_with(&now) {
            return diags;
        }
        let keep = before[..now.len()]
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let names = gone.join(", ");
        diags.push(
            Diagnostic::error(
                "Controllers leave from the end of the list",
                format!(
                    "Removing {names} from `controllers` shrinks the control plane, which takes controllers off the \
                     end of the list, the others kept in their order: here `controllers` would start with {keep}. \
                     Reorder the list (each controller keeps its place, as in `etcd_servers`), and replace a \
                     machine in a separate apply (same position, its own name and address)."
                ),
            )
            .at(at),
        );
        return diags;
    }
    too_many_replaced(
        &mut diags,
        &at,
        &gone.join(", "),
        before.len(),
        before.len() - gone.len(),
    );
    diags
}

/// Refuses replacing the controllers `names` of `members` when the `kept` ones are short of
/// etcd's quorum.
fn too_many_replaced(diags: &mut Diagnostics, at: &AttributePath, names: &str, members: usize, kept: usize) {
    let quorum = members / 2 + 1;
    if kept < quorum {
        diags.push(
            Diagnostic::error(
                "Too many controllers replaced at once",
                format!(
                    "Replacing {names} leaves {kept} of the {members} etcd members running while the new machines \
                     join, and etcd needs {quorum} for quorum: the cluster would stop. Replace one controller per \
                     apply (keep the others' names in `controllers`; with `-replace`, name one machine), waiting \
                     for each apply to finish.{}",
                    if members < 3 {
                        " With fewer than 3 controllers no controller can be replaced without losing etcd: \
                         restore from a snapshot instead (docs/guides/disaster-recovery.md)."
                    } else {
                        ""
                    }
                ),
            )
            .at(at.clone()),
        );
    }
}

impl Bootstrap {
    fn plan_inner(&self, req: &PlanRequest) -> Result<(Value, Diagnostics), Diagnostics> {
        let mut planned = req.proposed_new_state.clone();
        if !req.prior_state.is_null() && !req.proposed_new_state.is_null() {
            let refused = removed_controllers(&req.prior_state, &req.config);
            if refused.has_errors() {
                return Err(refused);
            }
        }
        let learned = learned_of(&req.prior_state);
        let config = Config::read(&req.config, &learned)?;
        // Just imported (no hosts in state yet): the ID named the first controller.
        let imported = req.prior_state.get(attr::CONTROLLERS).is_none_or(Value::is_null) && !req.prior_state.is_null();
        if let (true, Some(c), Some(id)) = (imported, &config, req.prior_state.get(attr::ID).and_then(Value::as_str)) {
            let first = c.inventory.bootstrap().name.as_str();
            if first != id {
                return Err(Diagnostic::error(
                    "Imported under another controller's name",
                    format!("The import ID was {id:?}, but controllers[0].name is {first:?}: import again with {first:?}, or list the controllers in the order the cluster was created."),
                )
                .at(AttributePath::root(attr::CONTROLLERS).index(0).attr("name"))
                .into());
            }
        }
        let digest = config.as_ref().map(|c| assets_digest(&c.assets));
        let prior_digest = req
            .prior_state
            .get(attr::ASSETS_SHA256)
            .and_then(Value::as_str)
            .map(str::to_owned);
        // Null and absent (a state written before the attribute existed) are the same.
        let authorized_keys = |v: &Value| {
            v.get(attr::SSH)
                .and_then(|s| s.get("authorized_keys"))
                .filter(|k| !k.is_null())
                .cloned()
        };
        let inputs_changed = [attr::CONTROLLERS, attr::WORKERS, attr::CONVERGE_TRIGGER]
            .iter()
            .any(|a| req.prior_state.get(a) != req.config.get(a))
            || authorized_keys(&req.prior_state) != authorized_keys(&req.config);
        let create = req.prior_state.is_null();
        let changed = create || inputs_changed || digest.is_none() || digest != prior_digest;
        if changed {
            for name in COMPUTED {
                planned.set_attr(name, Value::Unknown);
            }
            // The first controller's name, known even while the assets are not.
            let first = req
                .config
                .get(attr::CONTROLLERS)
                .and_then(Value::as_list)
                .and_then(|l| l.first())
                .and_then(|c| c.get("name"))
                .filter(|n| n.is_known());
            if let Some(name) = first {
                planned.set_attr(attr::ID, name.clone());
            }
            planned.set_attr(attr::ASSETS_SHA256, digest.map_or(Value::Unknown, Value::from));
        }
        let mut warnings = Diagnostics::new();
        if let (true, false, Some(c)) = (changed, create, &config) {
            if let Some(text) = kubelet_preview(c, &req.prior_state) {
                warnings.warning("selfhosted_bootstrap: kubelets follow kubernetes_version", text);
            }
            if let Some(text) = etcd_preview(c, &req.prior_state) {
                warnings.warning("selfhosted_bootstrap: etcd follows its image", text);
            }
        }
        Ok((planned, warnings))
    }

    async fn converge(&self, req: &ApplyRequest, update: bool) -> ApplyResponse {
        let learned = learned_of(&req.prior_state);
        let config = match Config::read(&req.config, &learned) {
            Ok(Some(c)) => c,
            Ok(None) => {
                return ApplyResponse {
                    new_state: req.prior_state.clone(),
                    diagnostics: Diagnostic::error(
                        "Configuration not known at apply",
                        "A value was still unknown during apply; this is a bug.",
                    )
                    .into(),
                    ..ApplyResponse::default()
                }
            }
            Err(diagnostics) => {
                return ApplyResponse {
                    new_state: req.prior_state.clone(),
                    diagnostics,
                    ..ApplyResponse::default()
                }
            }
        };
        let timeout = if update {
            config.update_timeout
        } else {
            config.create_timeout
        };
        let params = PivotParams {
            assets: config.assets.clone(),
            paths: config.paths.clone(),
            access: config.access.clone(),
            api_port: api_port(&config.assets),
            deadline: tokio::time::Instant::now() + timeout,
            consecutive_answers: 5,
            removed_nodes: removed_nodes(&req.prior_state, &config),
            leaving_controllers: leaving_controllers(&req.prior_state, &req.config, &learned),
            etcd_snapshot_dir: config.etcd_snapshot_dir.clone(),
            kubelet_max_unavailable: config.kubelet_max_unavailable,
            earlier_snapshot: earlier_snapshot(&req.prior_state),
        };
        // A cluster that once completed the pivot (or was imported as one) is upgraded in
        // place; one whose pivot never completed resumes the pivot.
        let pivoted = req
            .prior_state
            .get(attr::APPLIED_DIGEST)
            .and_then(Value::as_str)
            .is_some_and(|d| !d.is_empty())
            || req.prior_state.get(attr::PHASE).and_then(Value::as_str) == Some(selfhosted_pivot::Phase::Verify.name());
        let result = if update && pivoted {
            run::update(&config.inventory, &params, &req.ctx.cancel).await
        } else {
            run::create(&config.inventory, &params, &req.ctx.cancel).await
        };
        match result {
            Ok(outcome) => ApplyResponse {
                new_state: state_after(&req.planned_state, &req.prior_state, &config, &outcome, true),
                diagnostics: outcome_warnings(&outcome),
                ..ApplyResponse::default()
            },
            Err(failed) => {
                let (outcome, e) = *failed;
                ApplyResponse {
                    new_state: state_after(&req.planned_state, &req.prior_state, &config, &outcome, false),
                    diagnostics: {
                        let mut d = outcome_warnings(&outcome);
                        d.push(pivot_diagnostic(&e));
                        d
                    },
                    ..ApplyResponse::default()
                }
            }
        }
    }

    async fn destroy(&self, req: &ApplyRequest) -> ApplyResponse {
        if OnDestroy::of(&req.prior_state) != Ok(OnDestroy::Teardown) {
            return ApplyResponse::default();
        }
        let learned = learned_of(&req.prior_state);
        // The write-only key is not in state: teardown needs a key or agent kept in state.
        let config = match Config::read(&req.prior_state, &learned) {
            Ok(Some(c)) => c,
            Ok(None) | Err(_) => {
                return ApplyResponse {
                    new_state: req.prior_state.clone(),
                    diagnostics: Diagnostic::error(
                        "Cannot tear down",
                        "on_destroy = \"teardown\" needs ssh.private_key or ssh.agent (a write-only key is not kept in state). Set on_destroy = \"keep\" to forget the resource instead.",
                    )
                    .into(),
                    ..ApplyResponse::default()
                }
            }
        };
        let deadline = tokio::time::Instant::now() + config.delete_timeout;
        let work =
            selfhosted_pivot::teardown::teardown(&config.inventory, &config.assets, &config.paths, &req.ctx.cancel);
        let result = tokio::select! {
            r = work => r,
            () = tokio::time::sleep_until(deadline) => Err(PivotError::new(Phase::Preflight, "timed out tearing down")),
        };
        match result {
            Ok(()) => ApplyResponse::default(),
            Err(e) => ApplyResponse {
                new_state: req.prior_state.clone(),
                diagnostics: pivot_diagnostic(&e).into(),
                ..ApplyResponse::default()
            },
        }
    }
}

/// The apiserver port, from the admin kubeconfig's server URL.
fn api_port(assets: &BTreeMap<String, String>) -> u16 {
    assets
        .get("auth/admin.kubeconfig")
        .and_then(|k| k.lines().find_map(|l| l.trim().strip_prefix("server: ")))
        .and_then(|url| url.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(6443)
}

#[async_trait::async_trait]
impl Resource for Bootstrap {
    fn type_name(&self) -> &'static str {
        "selfhosted_bootstrap"
    }

    fn schema(&self) -> Schema {
        schema::schema()
    }

    async fn validate(&self, req: ValidateRequest) -> Diagnostics {
        match Config::read(&req.config, &BTreeMap::new()) {
            Ok(_) => Diagnostics::new(),
            Err(d) => d,
        }
    }

    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        match self.plan_inner(&req) {
            Ok((planned_state, diagnostics)) => PlanResponse {
                planned_state,
                diagnostics,
                ..PlanResponse::default()
            },
            Err(diagnostics) => PlanResponse {
                diagnostics,
                ..PlanResponse::default()
            },
        }
    }

    async fn apply(&self, req: ApplyRequest) -> ApplyResponse {
        if req.planned_state.is_null() {
            return self.destroy(&req).await;
        }
        let update = !req.prior_state.is_null();
        // The plan found nothing for the hosts to do (only settings such as timeouts,
        // etcd_snapshot_dir or check_hosts_on_refresh changed): it kept every computed value,
        // and the new state is the plan's.
        if update && req.planned_state.get(attr::PHASE).is_some_and(Value::is_known) {
            return ApplyResponse {
                new_state: req.planned_state.clone(),
                ..ApplyResponse::default()
            };
        }
        self.converge(&req, update).await
    }

    async fn read(&self, req: ReadRequest) -> ReadResponse {
        // No network on refresh unless the user asked for host checks; even then, an
        // unreachable cluster never removes the resource: it is a warning.
        let (new_state, diagnostics) = refresh::check_hosts(&req.current_state, &req.ctx.cancel).await;
        ReadResponse {
            new_state,
            private: req.private,
            diagnostics,
        }
    }

    fn identity_schema(&self) -> Option<selfhosted_protocol::identity::IdentitySchema> {
        Some(selfhosted_protocol::identity::IdentitySchema {
            version: 0,
            attributes: vec![selfhosted_protocol::identity::IdentityAttribute {
                name: IDENTITY_FIRST_CONTROLLER,
                ty: selfhosted_protocol::value::Type::String,
                required_for_import: true,
                description: "Node name of the first controller (`controllers[0].name`), which ran the pivot.",
            }],
        })
    }

    fn identity(&self, state: &Value) -> Value {
        Value::object([(
            IDENTITY_FIRST_CONTROLLER,
            state.get(attr::ID).cloned().unwrap_or(Value::Null),
        )])
    }

    fn import_id(&self, identity: &Value) -> Option<String> {
        identity
            .get(IDENTITY_FIRST_CONTROLLER)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// Adopts a cluster this provider already made self-hosted (its state lost, or made by
    /// another configuration): the ID is the first controller's node name. The next apply
    /// then runs as an update on the running cluster (preflight, node files, the manifests
    /// applied, a hand-over only if the apiserver differs): never the pivot again.
    async fn import(&self, req: ImportRequest) -> ImportResponse {
        let name = req.id.trim();
        if !selfhosted_manifests::names::is_dns_subdomain(name) {
            return ImportResponse {
                diagnostics: Diagnostic::error(
                    "Cannot import selfhosted_bootstrap",
                    format!(
                        "{name:?} is not a node name. The import ID is the name of the first controller, as in controllers[0].name, e.g. \"nemo-controller-0\"."
                    ),
                )
                .into(),
                ..ImportResponse::default()
            };
        }
        let mut state = Value::null_object(&schema::schema().value_type());
        state.set_attr(attr::ID, Value::from(name));
        // The pivot is done: what is left for apply is the update that confirms the cluster.
        state.set_attr(attr::PHASE, Value::from(selfhosted_pivot::Phase::Verify.name()));
        ImportResponse {
            state,
            ..ImportResponse::default()
        }
    }
}

/// The identity attribute of a `selfhosted_bootstrap`: a cluster is named by its first
/// controller, as its `id` is.
const IDENTITY_FIRST_CONTROLLER: &str = "first_controller";

#[cfg(test)]
mod tests {
    use super::*;

    fn with_controllers(names: &[&str]) -> Value {
        let hosts = names
            .iter()
            .map(|n| Value::object([("name", Value::from(*n)), ("address", Value::from("203.0.113.10"))]))
            .collect();
        Value::object([(attr::CONTROLLERS, Value::List(hosts))])
    }

    #[test]
    fn controllers_leave_from_the_end_of_the_list_only() {
        let prior = with_controllers(&["c0", "c1", "c2"]);
        assert!(!removed_controllers(&prior, &with_controllers(&["c0", "c1", "c2"])).has_errors());
        assert!(!removed_controllers(&prior, &with_controllers(&["c0", "c1", "c2", "c3"])).has_errors());
        // A shrink: the end of the list leaves.
        assert!(!removed_controllers(&prior, &with_controllers(&["c0", "c1"])).has_errors());
        assert!(!removed_controllers(&prior, &with_controllers(&["c0"])).has_errors());
        // Not the end, or a replacement in the same apply: refused, saying what to keep.
        for config in [&["c0", "c2"][..], &["c0", "n1"][..], &["c1", "c0"][..]] {
            let refused = removed_controllers(&prior, &with_controllers(config));
            let text = format!("{refused:?}");
            assert!(
                refused.has_errors()
                    && text.contains("Controllers leave from the end of the list")
                    && text.contains("would start with \\\"c0\\\", \\\"c1\\\""),
                "{config:?}: {text}"
            );
        }
        // Not known yet (a controllers list from another resource): nothing to say at plan time.
        let unknown = Value::object([(attr::CONTROLLERS, Value::Unknown)]);
        assert!(!removed_controllers(&prior, &unknown).has_errors());
    }

    #[test]
    fn machines_replaced_in_the_same_apply_count_by_their_unknown_names() {
        // Names from the machines (an instance's private DNS name): a machine replaced in this
        // apply has a name known only after apply.
        let hosts = |names: &[Option<&str>]| {
            let list = names
                .iter()
                .map(|n| {
                    let name = n.map_or(Value::Unknown, Value::from);
                    Value::object([("name", name), ("address", Value::Unknown)])
                })
                .collect();
            Value::object([(attr::CONTROLLERS, Value::List(list))])
        };
        let prior = with_controllers(&["c0", "c1", "c2"]);
        // One replaced, or nothing replaced while addresses are unknown: planned.
        assert!(!removed_controllers(&prior, &hosts(&[Some("c0"), Some("c1"), None])).has_errors());
        assert!(!removed_controllers(&prior, &hosts(&[Some("c0"), Some("c1"), Some("c2")])).has_errors());
        // Growth: the new places are unknown, the old ones kept.
        assert!(!removed_controllers(&prior, &hosts(&[Some("c0"), Some("c1"), Some("c2"), None, None])).has_errors());
        // Two of three: refused at plan, before Terraform destroys either machine.
        let refused = removed_controllers(&prior, &hosts(&[Some("c0"), None, None]));
        let text = format!("{refused:?}");
        assert!(
            refused.has_errors()
                && text.contains("Too many controllers replaced at once")
                && text.contains("controllers[1], controllers[2]")
                && text.contains("-replace"),
            "{text}"
        );
    }

    #[test]
    fn the_plan_says_nothing_of_the_kubelets_of_nodes_that_leave() {
        let versions = [("c0", "v1.34.3"), ("w0", "v1.34.3"), ("w1", "v1.34.3")]
            .into_iter()
            .map(|(n, v)| (n.to_owned(), Value::from(v)))
            .collect();
        let prior = Value::object([(attr::KUBELET_VERSIONS, Value::Map(versions))]);
        let kept = recorded_kubelets(&prior, &["w1".to_owned()]);
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["c0", "w0"]);
        assert_eq!(recorded_kubelets(&Value::Null, &[]), BTreeMap::new());
    }

    #[test]
    fn a_failed_update_keeps_the_hosts_it_had_still_to_remove() {
        let hosts = |names: &[&str]| {
            Value::List(
                names
                    .iter()
                    .map(|n| Value::object([("name", Value::from(*n))]))
                    .collect(),
            )
        };
        let state = |c: &[&str], w: &[&str]| Value::object([(attr::CONTROLLERS, hosts(c)), (attr::WORKERS, hosts(w))]);
        let prior = state(&["c0", "c1", "c2"], &["w0", "w1"]);
        // A shrink and a worker removed (and one added): all kept for the rerun.
        let mut after = state(&["c0"], &["w0", "w2"]);
        keep_leaving_hosts(&mut after, &prior);
        assert_eq!(after, state(&["c0", "c1", "c2"], &["w0", "w2", "w1"]));
        // A controller replaced, or none removed: the configuration's lists stand.
        let mut after = state(&["c0", "c1", "n2"], &["w0", "w1"]);
        keep_leaving_hosts(&mut after, &prior);
        assert_eq!(after, state(&["c0", "c1", "n2"], &["w0", "w1"]));
    }

    #[test]
    fn a_shrink_reaches_the_leaving_controllers_with_the_configurations_logins() {
        let prior = with_controllers(&["c0", "c1", "c2"]);
        assert!(leaving_controllers(&prior, &with_controllers(&["c0", "c1", "c2"]), &BTreeMap::new()).is_empty());
        assert!(leaving_controllers(&prior, &with_controllers(&["c0", "n1"]), &BTreeMap::new()).is_empty());
        let names = |l: Vec<LeavingController>| l.into_iter().map(|l| l.name).collect::<Vec<_>>();
        assert_eq!(
            names(leaving_controllers(
                &prior,
                &with_controllers(&["c0"]),
                &BTreeMap::new()
            )),
            ["c1", "c2"]
        );
    }

    #[test]
    fn a_controller_replaced_under_a_new_name_is_allowed_one_at_a_time() {
        let prior = with_controllers(&["c0", "c1", "c2"]);
        // A new machine in c2's place (an AWS instance replaced): the update moves its member.
        assert!(!removed_controllers(&prior, &with_controllers(&["c0", "c1", "c3"])).has_errors());
        let refused = removed_controllers(&prior, &with_controllers(&["c0", "c3", "c4"]));
        let text = format!("{refused:?}");
        assert!(
            refused.has_errors() && text.contains("Too many controllers replaced at once"),
            "{text}"
        );
        assert!(
            text.contains("\\\"c1\\\", \\\"c2\\\"") && text.contains("needs 2 for quorum"),
            "{text}"
        );
        assert!(text.contains("one controller per apply"), "{text}");
        // The only controller cannot be replaced: its etcd member is the whole cluster.
        let one = removed_controllers(&with_controllers(&["c0"]), &with_controllers(&["n0"]));
        assert!(format!("{one:?}").contains("restore from a snapshot"), "{one:?}");
    }

    #[test]
    fn the_reruns_of_a_failed_update_keep_the_snapshot_its_first_run_took() {
        let path = "/var/lib/selfhosted/etcd-snapshots/etcd-20261206T114329Z-r1073.db";
        let record = selfhosted_pivot::etcd_snapshot::SnapshotRecord {
            host: "c0".into(),
            path: path.into(),
            local_path: None,
            bytes: 1,
            sha256: "ab".into(),
            revision: 7,
            etcd_version: "3.5.21".into(),
            taken_at: "2026-12-06T11:43:29Z".into(),
        };
        let state = |snapshot: Value| Value::object([(attr::ETCD_SNAPSHOT, snapshot)]);
        let took = Outcome {
            etcd_snapshot: Some(record),
            ..Outcome::default()
        };
        // The first run takes one and fails: its reruns keep it...
        let failed = state(snapshot_after(&Value::Null, &took, false));
        assert_eq!(earlier_snapshot(&failed), Some(path.to_owned()));
        // ...also through a rerun that failed again, at preflight or later...
        let again = state(snapshot_after(&failed, &Outcome::default(), false));
        assert_eq!(earlier_snapshot(&again), Some(path.to_owned()));
        // ...until one converges: the next update takes a new one.
        let converged = state(snapshot_after(&again, &Outcome::default(), true));
        assert_eq!(earlier_snapshot(&converged), None);
        assert_eq!(
            converged
                .get(attr::ETCD_SNAPSHOT)
                .and_then(|s| s.get("path"))
                .and_then(Value::as_str),
            Some(path)
        );
        // A converged run's own snapshot is never pending; nor is a failure before any.
        assert_eq!(
            earlier_snapshot(&state(snapshot_after(&Value::Null, &took, true))),
            None
        );
        assert_eq!(
            earlier_snapshot(&state(snapshot_after(&converged, &Outcome::default(), false))),
            None
        );
    }
}
