//! A toy provider with one resource, `selfhosted_echo`, used by this
//! crate's tests to drive the protocol layer with the real `terraform` CLI.
//! It echoes its input into computed attributes and exercises every schema
//! feature: nested attributes, blocks, sensitive and write-only values,
//! requires-replace, use-state-for-unknown, private state and import.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use selfhosted_protocol::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use selfhosted_protocol::plan;
use selfhosted_protocol::resource::*;
use selfhosted_protocol::schema::{Attribute, Block, BlockNesting, NestedBlock, ObjectNesting, Schema};
use selfhosted_protocol::value::{Type, Value};
use selfhosted_protocol::Provider;

struct Echo;

fn stable_paths() -> Vec<AttributePath> {
    vec![AttributePath::root("id"), AttributePath::root("created_at")]
}

#[async_trait::async_trait]
impl Resource for Echo {
    fn type_name(&self) -> &'static str {
        "selfhosted_echo"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            1,
            Block::new()
                .description("Echoes its input.")
                .attribute(Attribute::new("id", Type::String).computed().description("Identifier."))
                .attribute(
                    Attribute::new("input", Type::String)
                        .required()
                        .description("Text to echo."),
                )
                .attribute(
                    Attribute::new("result", Type::String)
                        .computed()
                        .description("The echoed input."),
                )
                .attribute(
                    Attribute::new("created_at", Type::String)
                        .computed()
                        .description("Set once."),
                )
                .attribute(
                    Attribute::new("replace_me", Type::String)
                        .optional()
                        .description("Changing it replaces."),
                )
                .attribute(
                    Attribute::new("secret", Type::String)
                        .optional()
                        .sensitive()
                        .description("Sensitive."),
                )
                .attribute(
                    Attribute::new("password_wo", Type::String)
                        .optional()
                        .sensitive()
                        .write_only()
                        .description("Write-only."),
                )
                .attribute(
                    Attribute::new("wo_seen", Type::Bool)
                        .computed()
                        .description("Whether apply saw password_wo."),
                )
                .attribute(
                    Attribute::new("tags", Type::map(Type::String))
                        .optional()
                        .description("Tags."),
                )
                .attribute(
                    Attribute::new("anything", Type::Dynamic)
                        .optional()
                        .description("Any value."),
                )
                .attribute(
                    Attribute::new("delay_ms", Type::Number)
                        .optional()
                        .description("Apply waits this long, or until stopped."),
                )
                .attribute(
                    Attribute::nested(
                        "servers",
                        ObjectNesting::List,
                        vec![
                            Attribute::new("name", Type::String).required().description("Name."),
                            Attribute::new("port", Type::Number).optional().description("Port."),
                        ],
                    )
                    .optional()
                    .description("Nested attributes."),
                )
                .block(NestedBlock::new(
                    "rule",
                    BlockNesting::List,
                    Block::new().attribute(Attribute::new("port", Type::Number).required().description("Port.")),
                )),
        )
    }

    async fn validate(&self, req: ValidateRequest) -> Diagnostics {
        let mut d = Diagnostics::new();
        if req.config.get("input").and_then(Value::as_str) == Some("invalid") {
            d.push(
                Diagnostic::error("Invalid input", "input must not be \"invalid\"").at(AttributePath::root("input")),
            );
        }
        d
    }

    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        let schema = self.schema();
        let mut planned = req.proposed_new_state.clone();
        if req.prior_state.is_null() {
            plan::mark_computed_unknown(&schema.block, &req.config, &mut planned);
        } else {
            let changed = req.prior_state.get("input") != planned.get("input");
            if changed {
                planned.set_attr("result", Value::Unknown);
            }
            plan::use_state_for_unknown(&mut planned, &req.prior_state, &stable_paths());
        }
        let requires_replace = plan::changed_paths(&req.prior_state, &planned, &[AttributePath::root("replace_me")]);
        PlanResponse {
            planned_state: planned,
            requires_replace,
            planned_private: req.prior_private,
            diagnostics: Diagnostics::new(),
        }
    }

    async fn apply(&self, req: ApplyRequest) -> ApplyResponse {
        if req.planned_state.is_null() {
            return ApplyResponse::default();
        }
        if let Some(ms) = req.planned_state.get("delay_ms").and_then(Value::as_i64) {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(ms.max(0) as u64)) => {}
                () = req.ctx.cancel.cancelled() => {
                    return ApplyResponse {
                        new_state: Value::Null,
                        private: Vec::new(),
                        diagnostics: Diagnostic::error("Stopped", "apply was cancelled by StopProvider").into(),
                    };
                }
            }
        }
        let mut s = req.planned_state.clone();
        let input = s.get("input").and_then(Value::as_str).unwrap_or_default().to_owned();
        if s.get("id").is_none_or(Value::is_unknown) {
            s.set_attr("id", Value::from(format!("echo-{input}")));
        }
        if s.get("created_at").is_none_or(Value::is_unknown) {
            s.set_attr("created_at", Value::from("created"));
        }
        s.set_attr("result", Value::from(input));
        if s.get("wo_seen").is_none_or(Value::is_unknown) {
            let seen = req.config.get("password_wo").is_some_and(|v| !v.is_null());
            s.set_attr("wo_seen", Value::from(seen));
        }
        // Write-only values must never reach state; the protocol layer nulls
        // them even if a resource copies them over, as this one does.
        if let Some(v) = req.config.get("password_wo") {
            s.set_attr("password_wo", v.clone());
        }
        ApplyResponse {
            new_state: s,
            private: b"echo-private".to_vec(),
            diagnostics: Diagnostics::new(),
        }
    }

    async fn read(&self, req: ReadRequest) -> ReadResponse {
        ReadResponse {
            new_state: req.current_state,
            private: req.private,
            diagnostics: Diagnostics::new(),
        }
    }

    async fn import(&self, req: ImportRequest) -> ImportResponse {
        let ty = self.schema().value_type();
        let mut s = Value::null_object(&ty);
        s.set_attr("id", Value::from(format!("echo-{}", req.id)));
        s.set_attr("input", Value::from(req.id.clone()));
        s.set_attr("result", Value::from(req.id));
        s.set_attr("created_at", Value::from("imported"));
        s.set_attr("wo_seen", Value::from(false));
        ImportResponse {
            state: s,
            private: Vec::new(),
            diagnostics: Diagnostics::new(),
        }
    }

    fn upgrade_state(&self, req: UpgradeRequest) -> UpgradeResponse {
        // Version 0 called `result` `output`.
        let mut state = req.state;
        if req.version == 0 {
            if let Some(out) = req.raw_json.get("output").and_then(|v| v.as_str()) {
                state.set_attr("result", Value::from(out));
            }
        }
        UpgradeResponse {
            state,
            diagnostics: Diagnostics::new(),
        }
    }
}

fn main() -> ExitCode {
    selfhosted_protocol::run(Provider {
        name: "selfhosted",
        resources: vec![Arc::new(Echo)],
    })
}
