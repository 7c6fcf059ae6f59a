//! The resource trait every managed resource implements, and the request and
//! response types of its verbs. The service layer handles Terraform's
//! protocol rules around these (null planned state on destroy, no unknowns
//! after apply, write-only values never stored), so resources do not.

use tokio_util::sync::CancellationToken;

use crate::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use crate::schema::Schema;
use crate::value::Value;

/// Per-call context.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Cancelled when Terraform asks the provider to stop (StopProvider,
    /// e.g. on Ctrl-C) or to exit; long operations should select on it and
    /// return an error diagnostic promptly.
    pub cancel: CancellationToken,
}

/// Input to `validate`: the configuration, possibly with unknowns.
#[derive(Debug, Clone)]
pub struct ValidateRequest {
    /// Call context.
    pub ctx: Ctx,
    /// The resource's configuration.
    pub config: Value,
}

/// Input to `plan`.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// Call context.
    pub ctx: Ctx,
    /// State before; `Null` when creating.
    pub prior_state: Value,
    /// Terraform's proposal: configuration merged with prior state for
    /// computed attributes. Never `Null` (destroy is planned by the service
    /// layer, which never asks the resource).
    pub proposed_new_state: Value,
    /// The configuration.
    pub config: Value,
    /// Private bytes stored with the prior state.
    pub prior_private: Vec<u8>,
}

/// Output of `plan`.
#[derive(Debug, Clone, Default)]
pub struct PlanResponse {
    /// The planned state: known values where the result is known now,
    /// `Unknown` where it will be known after apply.
    pub planned_state: Value,
    /// Attributes whose change forces replacement.
    pub requires_replace: Vec<AttributePath>,
    /// Private bytes handed to apply.
    pub planned_private: Vec<u8>,
    /// Problems found.
    pub diagnostics: Diagnostics,
}

impl PlanResponse {
    /// A plan response that failed with one error.
    pub fn error(d: Diagnostic) -> Self {
        Self {
            planned_state: Value::Null,
            diagnostics: d.into(),
            ..Self::default()
        }
    }
}

/// Input to `apply`.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    /// Call context.
    pub ctx: Ctx,
    /// State before; `Null` when creating.
    pub prior_state: Value,
    /// The planned state; `Null` means destroy.
    pub planned_state: Value,
    /// The configuration (`Null` on destroy); carries write-only values.
    pub config: Value,
    /// Private bytes from plan.
    pub planned_private: Vec<u8>,
}

/// Output of `apply`.
#[derive(Debug, Clone, Default)]
pub struct ApplyResponse {
    /// The new state, wholly known; `Null` after destroy (the service layer
    /// forces that).
    pub new_state: Value,
    /// Private bytes stored with the state.
    pub private: Vec<u8>,
    /// Problems found.
    pub diagnostics: Diagnostics,
}

/// Input to `read` (refresh).
#[derive(Debug, Clone)]
pub struct ReadRequest {
    /// Call context.
    pub ctx: Ctx,
    /// The stored state.
    pub current_state: Value,
    /// Private bytes stored with it.
    pub private: Vec<u8>,
}

/// Output of `read`.
#[derive(Debug, Clone, Default)]
pub struct ReadResponse {
    /// The refreshed state; `Null` means the object is gone.
    pub new_state: Value,
    /// Private bytes to store.
    pub private: Vec<u8>,
    /// Problems found.
    pub diagnostics: Diagnostics,
}

/// Input to `import`.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// Call context.
    pub ctx: Ctx,
    /// The ID the user gave `terraform import` or an `import` block.
    pub id: String,
}

/// Output of `import`. Terraform calls `read` next with this state.
#[derive(Debug, Clone, Default)]
pub struct ImportResponse {
    /// The imported state.
    pub state: Value,
    /// Private bytes to store.
    pub private: Vec<u8>,
    /// Problems found.
    pub diagnostics: Diagnostics,
}

/// Input to `upgrade_state`.
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    /// Schema version the state was written with.
    pub version: i64,
    /// The stored state decoded with the current schema's type, attributes
    /// the current schema lacks dropped; `Null` if it does not decode.
    pub state: Value,
    /// The stored state as JSON, for reading old layouts.
    pub raw_json: serde_json::Value,
}

/// Output of `upgrade_state`.
#[derive(Debug, Clone, Default)]
pub struct UpgradeResponse {
    /// State in the current schema's layout.
    pub state: Value,
    /// Problems found.
    pub diagnostics: Diagnostics,
}

/// A managed resource type. Every resource implements the same verbs.
#[async_trait::async_trait]
pub trait Resource: Send + Sync + 'static {
    /// Full type name, e.g. `selfhosted_cluster_assets`.
    fn type_name(&self) -> &'static str;

    /// The schema (called once at startup and cached).
    fn schema(&self) -> Schema;

    /// Checks configuration (values may be unknown).
    async fn validate(&self, req: ValidateRequest) -> Diagnostics;

    /// Plans a create or update.
    async fn plan(&self, req: PlanRequest) -> PlanResponse;

    /// Creates, updates or (when `planned_state` is `Null`) destroys.
    async fn apply(&self, req: ApplyRequest) -> ApplyResponse;

    /// Refreshes state from the real world.
    async fn read(&self, req: ReadRequest) -> ReadResponse;

    /// Imports an existing object by ID.
    async fn import(&self, req: ImportRequest) -> ImportResponse;

    /// The identity schema, for resources that name a remote object (Terraform 1.12+ stores
    /// the identity beside the state and lets `import` blocks give it). Default: none.
    fn identity_schema(&self) -> Option<crate::identity::IdentitySchema> {
        None
    }

    /// The identity of the object a (planned) state manages, as an object of
    /// [`Resource::identity_schema`]'s type; may hold unknowns while planning.
    fn identity(&self, _state: &Value) -> Value {
        Value::Null
    }

    /// The import ID an `import` block's identity stands for.
    fn import_id(&self, _identity: &Value) -> Option<String> {
        None
    }

    /// Upgrades state written with an older schema version. The default
    /// accepts the current version unchanged and refuses any other.
    fn upgrade_state(&self, req: UpgradeRequest) -> UpgradeResponse {
        let current = self.schema().version;
        if req.version == current {
            UpgradeResponse {
                state: req.state,
                diagnostics: Diagnostics::new(),
            }
        } else {
            UpgradeResponse {
                state: Value::Null,
                diagnostics: Diagnostic::error(
                    "Unsupported state version",
                    format!(
                        "{} state has schema version {}, but this provider only reads version {}. \
                         Use the provider release that wrote this state, or remove the resource from \
                         state and import it again.",
                        self.type_name(),
                        req.version,
                        current
                    ),
                )
                .into(),
            }
        }
    }
}
