//! A stand-in for another provider that serves only that provider's recorded schema: the
//! managed resource types of `terraform providers schema -json` output (the file named by
//! `SELFHOSTED_RECORDED_SCHEMA`), planned as a plugin SDK provider plans a create (every
//! computed attribute the configuration leaves unset is unknown). It cannot apply, read a
//! remote object or import. The examples test plans modules for clouds whose provider is not
//! installable here against it, so that a module cannot drift from the schema it was written
//! for; the real provider checked the module once, when the schema was recorded.

use std::process::ExitCode;
use std::sync::Arc;

use selfhosted_protocol::diagnostics::{Diagnostic, Diagnostics};
use selfhosted_protocol::plan;
use selfhosted_protocol::resource::*;
use selfhosted_protocol::schema::{Attribute, Block, BlockNesting, NestedBlock, ObjectNesting, Schema};
use selfhosted_protocol::value::{Type, Value};
use selfhosted_protocol::Provider;

/// The environment variable naming the recorded schema file.
const SCHEMA_ENV: &str = "SELFHOSTED_RECORDED_SCHEMA";

/// One resource type of the recorded schema.
struct Recorded {
    type_name: &'static str,
    schema: Schema,
}

#[async_trait::async_trait]
impl Resource for Recorded {
    fn type_name(&self) -> &'static str {
        self.type_name
    }

    fn schema(&self) -> Schema {
        self.schema.clone()
    }

    async fn validate(&self, _req: ValidateRequest) -> Diagnostics {
        Diagnostics::new()
    }

    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        let mut planned = req.proposed_new_state.clone();
        if !planned.is_null() && req.prior_state.is_null() {
            plan::mark_computed_unknown(&self.schema.block, &req.config, &mut planned);
        }
        PlanResponse {
            planned_state: planned,
            requires_replace: Vec::new(),
            planned_private: req.prior_private,
            diagnostics: Diagnostics::new(),
        }
    }

    async fn apply(&self, _req: ApplyRequest) -> ApplyResponse {
        ApplyResponse {
            new_state: Value::Null,
            private: Vec::new(),
            diagnostics: Diagnostic::error(
                "A recorded schema only",
                format!(
                    "this stand-in serves {}'s recorded schema for plans; it cannot apply",
                    self.type_name
                ),
            )
            .into(),
        }
    }

    async fn read(&self, req: ReadRequest) -> ReadResponse {
        ReadResponse {
            new_state: req.current_state,
            private: req.private,
            diagnostics: Diagnostics::new(),
        }
    }

    async fn import(&self, _req: ImportRequest) -> ImportResponse {
        ImportResponse {
            state: Value::Null,
            private: Vec::new(),
            diagnostics: Diagnostic::error("A recorded schema only", "this stand-in cannot import").into(),
        }
    }
}

/// Why a recorded schema could not be served.
type Error = String;

fn block(j: &serde_json::Value) -> Result<Block, Error> {
    let mut b = Block::new();
    for (name, a) in j["attributes"].as_object().into_iter().flatten() {
        b = b.attribute(attribute(name, a)?);
    }
    for (name, nb) in j["block_types"].as_object().into_iter().flatten() {
        let nesting = match nb["nesting_mode"].as_str() {
            Some("single") => BlockNesting::Single,
            Some("list") => BlockNesting::List,
            Some("set") => BlockNesting::Set,
            Some("map") => BlockNesting::Map,
            Some("group") => BlockNesting::Group,
            other => return Err(format!("block {name}: nesting mode {other:?}")),
        };
        let items = |k: &str| nb[k].as_i64().unwrap_or(0);
        b = b
            .block(NestedBlock::new(name, nesting, block(&nb["block"])?).items(items("min_items"), items("max_items")));
    }
    Ok(b)
}

fn attribute(name: &str, j: &serde_json::Value) -> Result<Attribute, Error> {
    let mut a = if let Some(nested) = j.get("nested_type") {
        let nesting = match nested["nesting_mode"].as_str() {
            Some("single") => ObjectNesting::Single,
            Some("list") => ObjectNesting::List,
            Some("set") => ObjectNesting::Set,
            Some("map") => ObjectNesting::Map,
            other => return Err(format!("attribute {name}: nesting mode {other:?}")),
        };
        let inner = nested["attributes"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(n, a)| attribute(n, a))
            .collect::<Result<Vec<_>, _>>()?;
        Attribute::nested(name, nesting, inner)
    } else {
        Attribute::new(
            name,
            Type::from_json(&j["type"]).map_err(|e| format!("attribute {name}: {e}"))?,
        )
    };
    let flag = |k: &str| j[k].as_bool().unwrap_or(false);
    if flag("required") {
        a = a.required();
    }
    if flag("optional") {
        a = a.optional();
    }
    if flag("computed") {
        a = a.computed();
    }
    if flag("sensitive") {
        a = a.sensitive();
    }
    if flag("write_only") {
        a = a.write_only();
    }
    Ok(a)
}

/// The resource types of the first provider in `terraform providers schema -json` output.
fn recorded(json: &str) -> Result<Vec<Arc<dyn Resource>>, Error> {
    let all: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let (_, provider) = all["provider_schemas"]
        .as_object()
        .and_then(|p| p.iter().next())
        .ok_or("no provider_schemas")?;
    provider["resource_schemas"]
        .as_object()
        .ok_or("no resource_schemas")?
        .iter()
        .map(|(name, s)| {
            let schema = Schema::new(s["version"].as_i64().unwrap_or(0), block(&s["block"])?);
            let type_name: &'static str = Box::leak(name.clone().into_boxed_str());
            Ok(Arc::new(Recorded { type_name, schema }) as Arc<dyn Resource>)
        })
        .collect()
}

fn main() -> ExitCode {
    let resources = std::env::var(SCHEMA_ENV)
        .map_err(|_| format!("{SCHEMA_ENV} names no file"))
        .and_then(|path| std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}")))
        .and_then(|json| recorded(&json));
    match resources {
        Ok(resources) => selfhosted_protocol::run(Provider {
            name: "recorded",
            resources,
        }),
        Err(e) => {
            eprintln!("recorded_schema: {e}");
            ExitCode::FAILURE
        }
    }
}
