//! Terraform's protocol rules enforced by the service layer, so resources
//! need not: destroy plans are null without asking the resource, destroy
//! results are null (or the prior state when destroy failed), unknowns left
//! after apply are an error, write-only values never come back, unknown
//! resource types and undecodable values are diagnostics, not crashes.
//! Driven over real gRPC and mutual TLS.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use selfhosted_protocol::diagnostics::{Diagnostic, Diagnostics};
use selfhosted_protocol::identity::{IdentityAttribute, IdentitySchema};
use selfhosted_protocol::msgpack;
use selfhosted_protocol::resource::*;
use selfhosted_protocol::schema::{Attribute, Block, BlockNesting, NestedBlock, ObjectNesting, Schema};
use selfhosted_protocol::value::{Type, Value};
use support::pbc::tfplugin6 as pb;

/// A resource that does exactly what the test tells it to, so the service
/// layer's corrections are visible.
struct Puppet {
    plans: AtomicUsize,
    apply_result: Value,
    apply_error: bool,
}

fn schema() -> Schema {
    Schema::new(
        0,
        Block::new()
            .attribute(Attribute::new("id", Type::String).computed())
            .attribute(Attribute::new("pw", Type::String).optional().write_only())
            .attribute(Attribute::nested(
                "items",
                ObjectNesting::List,
                vec![
                    Attribute::new("name", Type::String).optional(),
                    Attribute::new("secret_wo", Type::String).optional().write_only(),
                ],
            ))
            .block(NestedBlock::new(
                "b",
                BlockNesting::Single,
                Block::new().attribute(Attribute::new("token_wo", Type::String).optional().write_only()),
            )),
    )
}

fn full_value() -> Value {
    Value::object([
        ("id", Value::from("i")),
        ("pw", Value::from("secret")),
        (
            "items",
            Value::List(vec![Value::object([("name", "n".into()), ("secret_wo", "s".into())])]),
        ),
        ("b", Value::object([("token_wo", "t".into())])),
    ])
}

#[async_trait::async_trait]
impl Resource for Puppet {
    fn type_name(&self) -> &'static str {
        "selfhosted_puppet"
    }
    fn schema(&self) -> Schema {
        schema()
    }
    async fn validate(&self, _req: ValidateRequest) -> Diagnostics {
        Diagnostics::new()
    }
    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        self.plans.fetch_add(1, Ordering::SeqCst);
        assert!(
            !req.proposed_new_state.is_null(),
            "destroy plans must not reach the resource"
        );
        PlanResponse {
            planned_state: full_value(),
            ..PlanResponse::default()
        }
    }
    async fn apply(&self, _req: ApplyRequest) -> ApplyResponse {
        let diagnostics = if self.apply_error {
            Diagnostic::error("boom", "failed").into()
        } else {
            Diagnostics::new()
        };
        ApplyResponse {
            new_state: self.apply_result.clone(),
            private: Vec::new(),
            diagnostics,
        }
    }
    async fn read(&self, req: ReadRequest) -> ReadResponse {
        ReadResponse {
            new_state: req.current_state,
            ..ReadResponse::default()
        }
    }
    async fn import(&self, req: ImportRequest) -> ImportResponse {
        let mut state = full_value();
        state.set_attr("id", Value::from(req.id.as_str()));
        ImportResponse {
            state,
            ..ImportResponse::default()
        }
    }
    fn identity_schema(&self) -> Option<IdentitySchema> {
        Some(IdentitySchema {
            version: 0,
            attributes: vec![IdentityAttribute {
                name: "name_id",
                ty: Type::String,
                required_for_import: true,
                description: "The puppet's id.",
            }],
        })
    }
    fn identity(&self, state: &Value) -> Value {
        Value::object([("name_id", state.get("id").cloned().unwrap_or(Value::Null))])
    }
    fn import_id(&self, identity: &Value) -> Option<String> {
        identity.get("name_id").and_then(Value::as_str).map(str::to_owned)
    }
}

fn identity_type() -> Type {
    Type::object([("name_id", Type::String)])
}

fn identity_data(v: &Value) -> pb::ResourceIdentityData {
    pb::ResourceIdentityData {
        identity_data: Some(pb::DynamicValue {
            msgpack: msgpack::encode(v, &identity_type()).expect("encode"),
            json: Vec::new(),
        }),
    }
}

fn decode_identity(d: Option<pb::ResourceIdentityData>) -> Value {
    let dv = d.and_then(|d| d.identity_data).expect("identity data");
    msgpack::decode(&dv.msgpack, &identity_type()).expect("decode")
}

#[tokio::test]
async fn identity_schemas_imports_by_identity_and_upgrades() {
    let mut h = harness(Value::Null, false).await;
    let schemas = h
        .client
        .get_resource_identity_schemas(pb::get_resource_identity_schemas::Request {})
        .await
        .expect("schemas")
        .into_inner();
    let puppet = &schemas.identity_schemas["selfhosted_puppet"];
    assert_eq!(puppet.version, 0);
    assert_eq!(puppet.identity_attributes[0].name, "name_id");
    assert!(puppet.identity_attributes[0].required_for_import);
    assert_eq!(puppet.identity_attributes[0].r#type, b"\"string\"");

    // An import block with `identity` and no ID: the identity names the object.
    let wanted = Value::object([("name_id", Value::from("by-identity"))]);
    let r = h
        .client
        .import_resource_state(pb::import_resource_state::Request {
            type_name: "selfhosted_puppet".into(),
            id: String::new(),
            client_capabilities: None,
            identity: Some(identity_data(&wanted)),
        })
        .await
        .expect("import")
        .into_inner();
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    assert_eq!(decode_identity(r.imported_resources[0].identity.clone()), wanted);

    // Read reports the identity of the state it returns.
    let state = r.imported_resources[0].state.clone();
    let read = h
        .client
        .read_resource(pb::read_resource::Request {
            type_name: "selfhosted_puppet".into(),
            current_state: state,
            ..Default::default()
        })
        .await
        .expect("read")
        .into_inner();
    assert_eq!(decode_identity(read.new_identity), wanted);

    // Stored identity JSON of the current version comes back as is; another version is refused.
    let upgrade = |version| pb::upgrade_resource_identity::Request {
        type_name: "selfhosted_puppet".into(),
        version,
        raw_identity: Some(pb::RawState {
            json: br#"{"name_id":"stored"}"#.to_vec(),
            ..Default::default()
        }),
    };
    let up = h
        .client
        .upgrade_resource_identity(upgrade(0))
        .await
        .expect("upgrade")
        .into_inner();
    assert_eq!(
        decode_identity(up.upgraded_identity),
        Value::object([("name_id", Value::from("stored"))])
    );
    let refused = h
        .client
        .upgrade_resource_identity(upgrade(7))
        .await
        .expect("upgrade")
        .into_inner();
    assert!(refused.upgraded_identity.is_none());
    assert!(
        refused.diagnostics[0].summary.contains("identity version"),
        "{:?}",
        refused.diagnostics
    );
}

struct Harness {
    running: Option<selfhosted_protocol::Running>,
    client: pb::provider_client::ProviderClient<tonic::transport::Channel>,
    puppet: Arc<Puppet>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown_token().cancel();
        }
    }
}

async fn harness(apply_result: Value, apply_error: bool) -> Harness {
    let puppet = Arc::new(Puppet {
        plans: AtomicUsize::new(0),
        apply_result,
        apply_error,
    });
    let id = support::p256_client();
    let provider = selfhosted_protocol::Provider {
        name: "test",
        resources: vec![puppet.clone()],
    };
    let running = selfhosted_protocol::start(provider, &id.cert_pem).await.expect("start");
    let ch = support::channel(running.addr(), running.server_cert_der().to_vec(), Some(&id))
        .await
        .expect("connect");
    Harness {
        running: Some(running),
        client: pb::provider_client::ProviderClient::new(ch),
        puppet,
    }
}

fn dv(v: &Value) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack: msgpack::encode(v, &schema().value_type()).expect("encode"),
        json: Vec::new(),
    })
}

fn undv(d: Option<pb::DynamicValue>) -> Value {
    msgpack::decode(&d.expect("dynamic value").msgpack, &schema().value_type()).expect("decode")
}

fn write_only_nulled(v: &Value) {
    assert_eq!(v.get("pw"), Some(&Value::Null), "{v:?}");
    let items = v.get("items").and_then(Value::as_list).expect("items");
    assert_eq!(items[0].get("secret_wo"), Some(&Value::Null));
    assert_eq!(items[0].get("name").and_then(Value::as_str), Some("n"));
    assert_eq!(v.get("b").and_then(|b| b.get("token_wo")), Some(&Value::Null));
}

#[tokio::test]
async fn schema_is_served_with_write_only_flags_and_nested_types() {
    let mut h = harness(Value::Null, false).await;
    let s = h
        .client
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .expect("schema")
        .into_inner();
    let r = &s.resource_schemas["selfhosted_puppet"];
    let block = r.block.as_ref().expect("block");
    let pw = block.attributes.iter().find(|a| a.name == "pw").expect("pw");
    assert!(pw.write_only && pw.optional);
    assert_eq!(pw.r#type, br#""string""#);
    let items = block.attributes.iter().find(|a| a.name == "items").expect("items");
    assert!(items.r#type.is_empty());
    let nested = items.nested_type.as_ref().expect("nested type");
    assert_eq!(nested.nesting, 2, "LIST");
    assert!(nested.attributes.iter().any(|a| a.name == "secret_wo" && a.write_only));
    assert_eq!(block.block_types[0].type_name, "b");
    let md = h
        .client
        .get_metadata(pb::get_metadata::Request {})
        .await
        .expect("metadata")
        .into_inner();
    assert_eq!(md.resources[0].type_name, "selfhosted_puppet");
}

#[tokio::test]
async fn plan_nulls_write_only_and_destroy_is_planned_without_the_resource() {
    let mut h = harness(Value::Null, false).await;
    let r = h
        .client
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "selfhosted_puppet".into(),
            prior_state: dv(&Value::Null),
            proposed_new_state: dv(&full_value()),
            config: dv(&full_value()),
            ..Default::default()
        })
        .await
        .expect("plan")
        .into_inner();
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    write_only_nulled(&undv(r.planned_state));

    let r = h
        .client
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "selfhosted_puppet".into(),
            prior_state: dv(&full_value()),
            proposed_new_state: dv(&Value::Null),
            config: dv(&Value::Null),
            prior_private: b"keep".to_vec(),
            ..Default::default()
        })
        .await
        .expect("destroy plan")
        .into_inner();
    assert_eq!(undv(r.planned_state), Value::Null);
    assert_eq!(r.planned_private, b"keep");
    assert_eq!(
        h.puppet.plans.load(Ordering::SeqCst),
        1,
        "destroy plan reached the resource"
    );
}

async fn apply(h: &mut Harness, planned: &Value) -> pb::apply_resource_change::Response {
    h.client
        .apply_resource_change(pb::apply_resource_change::Request {
            type_name: "selfhosted_puppet".into(),
            prior_state: dv(&full_value()),
            planned_state: dv(planned),
            config: dv(planned),
            ..Default::default()
        })
        .await
        .expect("apply")
        .into_inner()
}

#[tokio::test]
async fn apply_results_are_checked() {
    // Write-only values the resource copies into state are nulled.
    let mut h = harness(full_value(), false).await;
    let r = apply(&mut h, &full_value()).await;
    assert!(r.diagnostics.is_empty());
    write_only_nulled(&undv(r.new_state));

    // A successful destroy is null whatever the resource returned.
    let r = apply(&mut h, &Value::Null).await;
    assert_eq!(undv(r.new_state), Value::Null);

    // Unknowns left after apply are an error, and not stored.
    let mut with_unknown = full_value();
    with_unknown.set_attr("id", Value::Unknown);
    let mut h = harness(with_unknown, false).await;
    let r = apply(&mut h, &full_value()).await;
    assert_eq!(r.diagnostics.len(), 1);
    assert!(r.diagnostics[0].detail.contains("id"), "{:?}", r.diagnostics);
    assert!(undv(r.new_state).is_known());

    // A failed destroy that returns nothing keeps the object in state.
    let mut h = harness(Value::Null, true).await;
    let r = apply(&mut h, &Value::Null).await;
    assert_eq!(r.diagnostics.len(), 1);
    assert_eq!(undv(r.new_state).get("id").and_then(Value::as_str), Some("i"));

    // A create that returns no state without an error is a provider bug.
    let mut h = harness(Value::Null, false).await;
    let r = apply(&mut h, &full_value()).await;
    assert_eq!(r.diagnostics.len(), 1);
}

#[tokio::test]
async fn import_and_read_null_write_only_values() {
    let mut h = harness(Value::Null, false).await;
    let r = h
        .client
        .import_resource_state(pb::import_resource_state::Request {
            type_name: "selfhosted_puppet".into(),
            id: "x".into(),
            client_capabilities: None,
            identity: None,
        })
        .await
        .expect("import")
        .into_inner();
    assert_eq!(r.imported_resources.len(), 1);
    assert_eq!(r.imported_resources[0].type_name, "selfhosted_puppet");
    write_only_nulled(&undv(r.imported_resources[0].state.clone()));

    let r = h
        .client
        .read_resource(pb::read_resource::Request {
            type_name: "selfhosted_puppet".into(),
            current_state: dv(&full_value()),
            private: b"p".to_vec(),
            ..Default::default()
        })
        .await
        .expect("read")
        .into_inner();
    write_only_nulled(&undv(r.new_state));
}

#[tokio::test]
async fn write_only_values_need_a_terraform_that_supports_them() {
    let mut h = harness(Value::Null, false).await;
    let validate = |caps: bool| pb::validate_resource_config::Request {
        type_name: "selfhosted_puppet".into(),
        config: dv(&full_value()),
        client_capabilities: Some(pb::ClientCapabilities {
            deferral_allowed: false,
            write_only_attributes_allowed: caps,
        }),
    };
    let r = h
        .client
        .validate_resource_config(validate(true))
        .await
        .expect("validate")
        .into_inner();
    assert!(r.diagnostics.is_empty());
    let r = h
        .client
        .validate_resource_config(validate(false))
        .await
        .expect("validate")
        .into_inner();
    assert_eq!(r.diagnostics.len(), 1);
    let step = &r.diagnostics[0].attribute.as_ref().expect("path").steps[0];
    assert_eq!(
        step.selector,
        Some(pb::attribute_path::step::Selector::AttributeName("pw".into()))
    );
}

#[tokio::test]
async fn bad_requests_are_diagnostics() {
    let mut h = harness(Value::Null, false).await;
    let r = h
        .client
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "selfhosted_nope".into(),
            ..Default::default()
        })
        .await
        .expect("plan")
        .into_inner();
    assert_eq!(r.diagnostics.len(), 1);
    assert!(r.diagnostics[0].detail.contains("selfhosted_nope"));

    let r = h
        .client
        .read_resource(pb::read_resource::Request {
            type_name: "selfhosted_puppet".into(),
            current_state: Some(pb::DynamicValue {
                msgpack: vec![0xc1, 0x00],
                json: Vec::new(),
            }),
            ..Default::default()
        })
        .await
        .expect("read")
        .into_inner();
    assert_eq!(r.diagnostics.len(), 1);
    assert_eq!(r.diagnostics[0].severity, 1, "ERROR");

    let r = h
        .client
        .upgrade_resource_state(pb::upgrade_resource_state::Request {
            type_name: "selfhosted_puppet".into(),
            version: 7,
            raw_state: Some(pb::RawState {
                json: br#"{"id":"x"}"#.to_vec(),
                flatmap: Default::default(),
            }),
        })
        .await
        .expect("upgrade")
        .into_inner();
    assert_eq!(r.diagnostics.len(), 1, "default upgrade refuses unknown versions");
    assert!(r.diagnostics[0].detail.contains('7'));
}
