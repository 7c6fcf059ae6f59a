//! The gRPC services: each tfplugin6 RPC decoded, handed to the resource
//! verb, and its answer checked against Terraform's rules before it goes
//! back (destroy plans and results are null, apply results are wholly
//! known, write-only values are never returned). Also go-plugin's
//! controller (Shutdown), stdio, broker and the health check.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::identity::IdentitySchema;
use crate::pb::tfplugin6 as pb;
use crate::pb::{health, plugin};
use crate::plan;
use crate::resource::{self, Ctx, Resource};
use crate::schema::{Block, Schema};
use crate::value::{Type, Value};

/// A resource with its schema computed once.
struct Entry {
    resource: Arc<dyn Resource>,
    schema: Schema,
    ty: Type,
    identity: Option<(IdentitySchema, Type)>,
}

impl Entry {
    /// The identity of `state` to send, when the resource has one and it is wholly known.
    fn identity_of(&self, state: &Value) -> Result<Option<pb::ResourceIdentityData>, Diagnostics> {
        let Some((_, ty)) = &self.identity else { return Ok(None) };
        if state.is_null() {
            return Ok(None);
        }
        let id = self.resource.identity(state);
        if id.is_null() || !crate::identity::wholly_known(&id) {
            return Ok(None);
        }
        Ok(Some(pb::ResourceIdentityData {
            identity_data: Some(encode(&id, ty, "identity")?),
        }))
    }
}

/// The tfplugin6 `Provider` service.
pub struct ProviderService {
    name: &'static str,
    resources: HashMap<String, Entry>,
    /// Cancelled by StopProvider or Shutdown; every resource call gets it.
    stop: CancellationToken,
}

impl ProviderService {
    /// Builds the service; schemas are computed here, once.
    pub fn new(provider: crate::Provider, stop: CancellationToken) -> Self {
        let resources = provider
            .resources
            .into_iter()
            .map(|r| {
                let schema = r.schema();
                let ty = schema.value_type();
                let identity = r.identity_schema().map(|i| {
                    let ty = i.value_type();
                    (i, ty)
                });
                (
                    r.type_name().to_owned(),
                    Entry {
                        resource: r,
                        schema,
                        ty,
                        identity,
                    },
                )
            })
            .collect();
        Self {
            name: provider.name,
            resources,
            stop,
        }
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            cancel: self.stop.clone(),
        }
    }

    fn entry(&self, type_name: &str) -> Result<&Entry, Diagnostics> {
        self.resources.get(type_name).ok_or_else(|| {
            Diagnostic::error(
                "Unknown resource type",
                format!("The {} provider has no resource type {type_name:?}.", self.name),
            )
            .into()
        })
    }
}

fn decode(dv: Option<&pb::DynamicValue>, ty: &Type, what: &str) -> Result<Value, Diagnostics> {
    let Some(dv) = dv else { return Ok(Value::Null) };
    let r = if !dv.msgpack.is_empty() {
        crate::msgpack::decode(&dv.msgpack, ty).map_err(|e| e.to_string())
    } else if !dv.json.is_empty() {
        crate::json::decode(&dv.json, ty, crate::json::Unexpected::Reject).map_err(|e| e.to_string())
    } else {
        Ok(Value::Null)
    };
    r.map_err(|e| {
        Diagnostic::error(
            format!("Cannot decode {what}"),
            format!("Terraform sent a {what} this provider cannot read: {e}"),
        )
        .into()
    })
}

fn encode(v: &Value, ty: &Type, what: &str) -> Result<pb::DynamicValue, Diagnostics> {
    crate::msgpack::encode(v, ty)
        .map(|msgpack| pb::DynamicValue {
            msgpack,
            json: Vec::new(),
        })
        .map_err(|e| {
            Diagnostic::error(
                format!("Provider produced an invalid {what}"),
                format!("This is a bug in the provider: {e}"),
            )
            .into()
        })
}

/// Sets every unknown inside `v` to null (used only when reporting an
/// apply that wrongly left unknowns, so the saved state stays valid).
fn unknown_to_null(v: &mut Value) {
    match v {
        Value::Unknown => *v = Value::Null,
        Value::Dynamic(_, inner) => unknown_to_null(inner),
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => items.iter_mut().for_each(unknown_to_null),
        Value::Map(m) | Value::Object(m) => m.values_mut().for_each(unknown_to_null),
        _ => {}
    }
}

/// Write-only attributes set in configuration need a Terraform that knows
/// not to store them (1.11+); refuse them otherwise.
fn check_write_only_support(block: &Block, config: &Value, allowed: bool) -> Diagnostics {
    let mut diags = Diagnostics::new();
    if allowed {
        return diags;
    }
    for a in block.attributes.iter().filter(|a| a.write_only) {
        if config.get(&a.name).is_some_and(|v| !v.is_null()) {
            diags.push(
                Diagnostic::error(
                    "Write-only attribute needs Terraform 1.11 or later",
                    format!(
                        "{:?} is write-only: its value is never stored. This Terraform does not support \
                         write-only attributes, so it would store it. Upgrade Terraform or leave it unset.",
                        a.name
                    ),
                )
                .at(crate::diagnostics::AttributePath::root(&a.name)),
            );
        }
    }
    diags
}

fn empty_schema() -> pb::Schema {
    Schema::default().to_proto()
}

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: false,
        get_provider_schema_optional: false,
        move_resource_state: false,
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::provider_server::Provider for ProviderService {
    async fn get_metadata(&self, _req: Request<pb::get_metadata::Request>) -> Reply<pb::get_metadata::Response> {
        tracing::debug!("GetMetadata");
        let mut resources: Vec<_> = self
            .resources
            .keys()
            .map(|k| pb::get_metadata::ResourceMetadata { type_name: k.clone() })
            .collect();
        resources.sort_by(|a, b| a.type_name.cmp(&b.type_name));
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(capabilities()),
            resources,
            ..Default::default()
        }))
    }

    async fn get_resource_identity_schemas(
        &self,
        _req: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Reply<pb::get_resource_identity_schemas::Response> {
        tracing::debug!("GetResourceIdentitySchemas");
        Ok(Response::new(pb::get_resource_identity_schemas::Response {
            identity_schemas: self
                .resources
                .iter()
                .filter_map(|(k, e)| e.identity.as_ref().map(|(i, _)| (k.clone(), i.to_proto())))
                .collect(),
            diagnostics: Vec::new(),
        }))
    }

    async fn upgrade_resource_identity(
        &self,
        req: Request<pb::upgrade_resource_identity::Request>,
    ) -> Reply<pb::upgrade_resource_identity::Response> {
        let req = req.into_inner();
        tracing::debug!(type_name = %req.type_name, version = req.version, "UpgradeResourceIdentity");
        let r = async {
            let e = self.entry(&req.type_name)?;
            let Some((schema, ty)) = &e.identity else {
                return Err(Diagnostic::error(
                    "No identity",
                    format!("{} keeps no resource identity.", req.type_name),
                )
                .into());
            };
            if req.version != schema.version {
                return Err(Diagnostic::error(
                    "Unsupported identity version",
                    format!(
                        "The stored identity of {} has version {}; this provider reads version {}. Use the provider release that wrote it.",
                        req.type_name, req.version, schema.version
                    ),
                )
                .into());
            }
            let json = req.raw_identity.map(|r| r.json).unwrap_or_default();
            let identity = crate::json::decode(&json, ty, crate::json::Unexpected::Reject).map_err(|err| {
                Diagnostics::from(Diagnostic::error(
                    "Cannot read the stored identity",
                    format!("{}: {err}", req.type_name),
                ))
            })?;
            Ok::<_, Diagnostics>(pb::upgrade_resource_identity::Response {
                upgraded_identity: Some(pb::ResourceIdentityData {
                    identity_data: Some(encode(&identity, ty, "identity")?),
                }),
                diagnostics: Vec::new(),
            })
        }
        .await;
        Ok(Response::new(r.unwrap_or_else(|d| {
            pb::upgrade_resource_identity::Response {
                diagnostics: d.to_proto(),
                ..Default::default()
            }
        })))
    }

    async fn get_provider_schema(
        &self,
        _req: Request<pb::get_provider_schema::Request>,
    ) -> Reply<pb::get_provider_schema::Response> {
        tracing::debug!("GetProviderSchema");
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(empty_schema()),
            resource_schemas: self
                .resources
                .iter()
                .map(|(k, e)| (k.clone(), e.schema.to_proto()))
                .collect(),
            data_source_schemas: HashMap::new(),
            diagnostics: Vec::new(),
            provider_meta: Some(empty_schema()),
            server_capabilities: Some(capabilities()),
        }))
    }

    async fn validate_provider_config(
        &self,
        _req: Request<pb::validate_provider_config::Request>,
    ) -> Reply<pb::validate_provider_config::Response> {
        tracing::debug!("ValidateProviderConfig");
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: Vec::new(),
        }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Reply<pb::validate_resource_config::Response> {
        let req = req.into_inner();
        tracing::debug!(type_name = %req.type_name, "ValidateResourceConfig");
        let diags = async {
            let e = self.entry(&req.type_name)?;
            let config = decode(req.config.as_ref(), &e.ty, "configuration")?;
            let allowed = req
                .client_capabilities
                .as_ref()
                .is_some_and(|c| c.write_only_attributes_allowed);
            let mut diags = check_write_only_support(&e.schema.block, &config, allowed);
            diags.append(
                e.resource
                    .validate(resource::ValidateRequest {
                        ctx: self.ctx(),
                        config,
                    })
                    .await,
            );
            Ok::<_, Diagnostics>(diags)
        }
        .await
        .unwrap_or_else(|d| d);
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: diags.to_proto(),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> Reply<pb::validate_data_resource_config::Response> {
        let req = req.into_inner();
        let d = Diagnostic::error(
            "Unknown data source",
            format!(
                "The {} provider has no data sources; {:?} does not exist.",
                self.name, req.type_name
            ),
        );
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: vec![d.to_proto()],
        }))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Reply<pb::upgrade_resource_state::Response> {
        let req = req.into_inner();
        tracing::debug!(type_name = %req.type_name, version = req.version, "UpgradeResourceState");
        let r = (|| {
            let e = self.entry(&req.type_name)?;
            let raw = req.raw_state.unwrap_or_default();
            if raw.json.is_empty() {
                if raw.flatmap.is_empty() {
                    return Ok((Value::Null, Diagnostics::new(), e));
                }
                return Err(Diagnostic::error(
                    "Unsupported state format",
                    "The stored state is in the legacy flatmap format, which this provider never wrote.",
                )
                .into());
            }
            let raw_json: serde_json::Value = serde_json::from_slice(&raw.json).map_err(|err| {
                Diagnostics::from(Diagnostic::error(
                    "Cannot read stored state",
                    format!("It is not valid JSON: {err}"),
                ))
            })?;
            let state = crate::json::from_json(&raw_json, &e.ty, crate::json::Unexpected::Drop).unwrap_or(Value::Null);
            let resp = e.resource.upgrade_state(resource::UpgradeRequest {
                version: req.version,
                state,
                raw_json,
            });
            let mut state = resp.state;
            plan::null_write_only(&e.schema.block, &mut state);
            Ok((state, resp.diagnostics, e))
        })();
        let (upgraded_state, diagnostics) = match r {
            Ok((state, mut diags, e)) => match encode(&state, &e.ty, "upgraded state") {
                Ok(dv) => (Some(dv), diags),
                Err(d) => {
                    diags.append(d);
                    (None, diags)
                }
            },
            Err(d) => (None, d),
        };
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics: diagnostics.to_proto(),
        }))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Reply<pb::configure_provider::Response> {
        let req = req.into_inner();
        tracing::info!(terraform_version = %req.terraform_version, "ConfigureProvider");
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: Vec::new(),
        }))
    }

    async fn read_resource(&self, req: Request<pb::read_resource::Request>) -> Reply<pb::read_resource::Response> {
        let req = req.into_inner();
        tracing::debug!(type_name = %req.type_name, "ReadResource");
        let r = async {
            let e = self.entry(&req.type_name)?;
            let current_state = decode(req.current_state.as_ref(), &e.ty, "current state")?;
            let resp = e
                .resource
                .read(resource::ReadRequest {
                    ctx: self.ctx(),
                    current_state,
                    private: req.private,
                })
                .await;
            let mut state = resp.new_state;
            plan::null_write_only(&e.schema.block, &mut state);
            let mut diags = resp.diagnostics;
            let new_identity = e.identity_of(&state).unwrap_or_else(|d| {
                diags.append(d);
                None
            });
            let new_state = match encode(&state, &e.ty, "state") {
                Ok(dv) => Some(dv),
                Err(d) => {
                    diags.append(d);
                    None
                }
            };
            Ok::<_, Diagnostics>(pb::read_resource::Response {
                new_state,
                diagnostics: diags.to_proto(),
                private: resp.private,
                deferred: None,
                new_identity,
            })
        }
        .await;
        Ok(Response::new(r.unwrap_or_else(|d| pb::read_resource::Response {
            diagnostics: d.to_proto(),
            ..Default::default()
        })))
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Reply<pb::plan_resource_change::Response> {
        let req = req.into_inner();
        tracing::debug!(type_name = %req.type_name, "PlanResourceChange");
        let r = async {
            let e = self.entry(&req.type_name)?;
            let prior_state = decode(req.prior_state.as_ref(), &e.ty, "prior state")?;
            let proposed_new_state = decode(req.proposed_new_state.as_ref(), &e.ty, "proposed new state")?;
            let config = decode(req.config.as_ref(), &e.ty, "configuration")?;
            if proposed_new_state.is_null() {
                // Destroy: the plan is null, nothing for the resource to decide.
                return Ok(pb::plan_resource_change::Response {
                    planned_state: Some(encode(&Value::Null, &e.ty, "planned state")?),
                    planned_private: req.prior_private,
                    planned_identity: req.prior_identity,
                    ..Default::default()
                });
            }
            let resp = e
                .resource
                .plan(resource::PlanRequest {
                    ctx: self.ctx(),
                    prior_state,
                    proposed_new_state,
                    config,
                    prior_private: req.prior_private,
                })
                .await;
            let mut diags = resp.diagnostics;
            let mut planned = resp.planned_state;
            if planned.is_null() && !diags.has_errors() {
                diags.push(Diagnostic::error(
                    "Provider produced an empty plan",
                    format!(
                        "This is a bug in the provider: {} planned a null state for a create or update.",
                        req.type_name
                    ),
                ));
            }
            plan::null_write_only(&e.schema.block, &mut planned);
            // Unknown until apply (a create): the prior identity, if any, stands.
            let planned_identity = match e.identity_of(&planned) {
                Ok(Some(id)) => Some(id),
                Ok(None) => req.prior_identity,
                Err(d) => {
                    diags.append(d);
                    None
                }
            };
            let planned_state = match encode(&planned, &e.ty, "planned state") {
                Ok(dv) => Some(dv),
                Err(d) => {
                    diags.append(d);
                    None
                }
            };
            Ok::<_, Diagnostics>(pb::plan_resource_change::Response {
                planned_state,
                requires_replace: resp.requires_replace.iter().map(|p| p.to_proto()).collect(),
                planned_private: resp.planned_private,
                diagnostics: diags.to_proto(),
                legacy_type_system: false,
                deferred: None,
                planned_identity,
            })
        }
        .await;
        Ok(Response::new(r.unwrap_or_else(|d| {
            pb::plan_resource_change::Response {
                diagnostics: d.to_proto(),
                ..Default::default()
            }
        })))
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Reply<pb::apply_resource_change::Response> {
        let req = req.into_inner();
        tracing::debug!(type_name = %req.type_name, "ApplyResourceChange");
        let r = async {
            let e = self.entry(&req.type_name)?;
            let prior_state = decode(req.prior_state.as_ref(), &e.ty, "prior state")?;
            let planned_state = decode(req.planned_state.as_ref(), &e.ty, "planned state")?;
            let config = decode(req.config.as_ref(), &e.ty, "configuration")?;
            let destroy = planned_state.is_null();
            let resp = e
                .resource
                .apply(resource::ApplyRequest {
                    ctx: self.ctx(),
                    prior_state: prior_state.clone(),
                    planned_state,
                    config,
                    planned_private: req.planned_private,
                })
                .await;
            let mut diags = resp.diagnostics;
            let mut new_state = resp.new_state;
            if destroy {
                if !diags.has_errors() {
                    new_state = Value::Null;
                } else if new_state.is_null() {
                    // The object may still exist: keep it in state.
                    new_state = prior_state;
                }
            } else if new_state.is_null() && !diags.has_errors() {
                diags.push(Diagnostic::error(
                    "Provider returned no state after apply",
                    format!(
                        "This is a bug in the provider: {} returned a null state without an error.",
                        req.type_name
                    ),
                ));
            } else if let Some(p) = plan::first_unknown(&new_state) {
                diags.push(Diagnostic::error(
                    "Provider returned an unknown value after apply",
                    format!(
                        "This is a bug in the provider: {} left {p} unknown after apply.",
                        req.type_name
                    ),
                ));
                unknown_to_null(&mut new_state);
            }
            plan::null_write_only(&e.schema.block, &mut new_state);
            let new_identity = e.identity_of(&new_state).unwrap_or_else(|d| {
                diags.append(d);
                None
            });
            let new_state = match encode(&new_state, &e.ty, "new state") {
                Ok(dv) => Some(dv),
                Err(d) => {
                    diags.append(d);
                    None
                }
            };
            Ok::<_, Diagnostics>(pb::apply_resource_change::Response {
                new_state,
                private: resp.private,
                diagnostics: diags.to_proto(),
                legacy_type_system: false,
                new_identity,
            })
        }
        .await;
        Ok(Response::new(r.unwrap_or_else(|d| {
            pb::apply_resource_change::Response {
                diagnostics: d.to_proto(),
                ..Default::default()
            }
        })))
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Reply<pb::import_resource_state::Response> {
        let req = req.into_inner();
        tracing::debug!(type_name = %req.type_name, "ImportResourceState");
        let r = async {
            let e = self.entry(&req.type_name)?;
            let id = match (&req.identity, &e.identity) {
                // An `import` block with `identity = { … }` instead of `id`.
                (Some(given), Some((_, ty))) if req.id.is_empty() => {
                    let identity = decode(given.identity_data.as_ref(), ty, "identity")?;
                    e.resource.import_id(&identity).ok_or_else(|| {
                        Diagnostics::from(Diagnostic::error(
                            "Incomplete identity",
                            format!(
                                "The identity given for {} names no object it can import.",
                                req.type_name
                            ),
                        ))
                    })?
                }
                _ => req.id,
            };
            let resp = e.resource.import(resource::ImportRequest { ctx: self.ctx(), id }).await;
            let mut diags = resp.diagnostics;
            if diags.has_errors() {
                return Ok(pb::import_resource_state::Response {
                    diagnostics: diags.to_proto(),
                    ..Default::default()
                });
            }
            let mut state = resp.state;
            if let Some(p) = plan::first_unknown(&state) {
                diags.push(Diagnostic::error(
                    "Provider returned an unknown value on import",
                    format!("This is a bug in the provider: {} left {p} unknown.", req.type_name),
                ));
                unknown_to_null(&mut state);
            }
            plan::null_write_only(&e.schema.block, &mut state);
            let identity = e.identity_of(&state)?;
            let state = encode(&state, &e.ty, "imported state")?;
            Ok::<_, Diagnostics>(pb::import_resource_state::Response {
                imported_resources: vec![pb::import_resource_state::ImportedResource {
                    type_name: req.type_name.clone(),
                    state: Some(state),
                    private: resp.private,
                    identity,
                }],
                diagnostics: diags.to_proto(),
                deferred: None,
            })
        }
        .await;
        Ok(Response::new(r.unwrap_or_else(|d| {
            pb::import_resource_state::Response {
                diagnostics: d.to_proto(),
                ..Default::default()
            }
        })))
    }

    async fn get_functions(&self, _req: Request<pb::get_functions::Request>) -> Reply<pb::get_functions::Response> {
        Ok(Response::new(pb::get_functions::Response {
            diagnostics: Vec::new(),
        }))
    }

    async fn stop_provider(&self, _req: Request<pb::stop_provider::Request>) -> Reply<pb::stop_provider::Response> {
        tracing::info!("StopProvider: cancelling in-flight operations");
        self.stop.cancel();
        Ok(Response::new(pb::stop_provider::Response { error: String::new() }))
    }
}

/// go-plugin's controller: Shutdown asks the process to exit.
pub struct Controller {
    /// Cancelled when the host asks us to exit.
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl plugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _req: Request<plugin::Empty>) -> Reply<plugin::Empty> {
        tracing::debug!("Shutdown requested by Terraform");
        self.shutdown.cancel();
        Ok(Response::new(plugin::Empty {}))
    }
}

/// A stream that stays open and silent until shutdown.
type Silent<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn silent_until<T: Send + 'static>(shutdown: CancellationToken) -> Silent<T> {
    Box::pin(futures::stream::once(async move {
        shutdown.cancelled_owned().await;
        Err(Status::unavailable("plugin shutting down"))
    }))
}

/// go-plugin's stdio service: our logs go straight to stderr, so the stream
/// carries nothing; it ends at shutdown.
pub struct Stdio {
    /// Ends the stream.
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl plugin::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = Silent<plugin::StdioData>;

    async fn stream_stdio(&self, _req: Request<plugin::Empty>) -> Reply<Self::StreamStdioStream> {
        Ok(Response::new(silent_until(self.shutdown.clone())))
    }
}

/// go-plugin's broker: we never broker connections; the stream is held
/// open so the host's broker does not log an error.
pub struct Broker {
    /// Ends the stream.
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl plugin::grpc_broker_server::GrpcBroker for Broker {
    type StartStreamStream = Silent<plugin::ConnInfo>;

    async fn start_stream(&self, _req: Request<tonic::Streaming<plugin::ConnInfo>>) -> Reply<Self::StartStreamStream> {
        Ok(Response::new(silent_until(self.shutdown.clone())))
    }
}

/// gRPC health: go-plugin's Ping asks about the service "plugin".
pub struct Health;

#[tonic::async_trait]
impl health::health_server::Health for Health {
    async fn check(&self, req: Request<health::HealthCheckRequest>) -> Reply<health::HealthCheckResponse> {
        let service = req.into_inner().service;
        let status = if service.is_empty() || service == "plugin" {
            health::health_check_response::ServingStatus::Serving
        } else {
            health::health_check_response::ServingStatus::ServiceUnknown
        };
        Ok(Response::new(health::HealthCheckResponse { status: status as i32 }))
    }
}
