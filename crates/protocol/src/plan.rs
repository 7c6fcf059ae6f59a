//! Plan helpers resources compose in `plan` (computed attributes become
//! unknown, some keep their prior value, some force replacement), plus the
//! schema walks the service layer applies to every response (write-only
//! values nulled, unknowns found).

use crate::diagnostics::{AttributePath, PathStep};
use crate::schema::{Attribute, Block, BlockNesting, ObjectNesting};
use crate::value::Value;

/// Sets every top-level computed attribute that the configuration leaves
/// null to `Unknown` in `planned`: its value will be known after apply.
/// Call it when something changes (or on create); follow with
/// [`use_state_for_unknown`] for attributes that the change does not touch.
pub fn mark_computed_unknown(block: &Block, config: &Value, planned: &mut Value) {
    for a in block.attributes.iter().filter(|a| a.computed) {
        let configured = config.get(&a.name).is_some_and(|v| !v.is_null());
        if !configured {
            planned.set_attr(&a.name, Value::Unknown);
        }
    }
}

/// For each path whose planned value is unknown, copies the prior value
/// when there is one: "this computed attribute does not change". A no-op on
/// create (prior is null).
pub fn use_state_for_unknown(planned: &mut Value, prior: &Value, paths: &[AttributePath]) {
    if prior.is_null() {
        return;
    }
    for p in paths {
        let Some(old) = prior.get_path(p) else {
            continue;
        };
        if let Some(slot) = planned.get_path_mut(p) {
            if slot.is_unknown() {
                *slot = old.clone();
            }
        }
    }
}

/// The subset of `paths` whose value differs between prior state and plan —
/// what to return as `requires_replace` for attributes that force a new
/// resource. Empty on create (prior is null). An unknown planned value
/// counts as a change.
pub fn changed_paths(prior: &Value, planned: &Value, paths: &[AttributePath]) -> Vec<AttributePath> {
    if prior.is_null() || planned.is_null() {
        return Vec::new();
    }
    paths
        .iter()
        .filter(|p| {
            let old = prior.get_path(p).unwrap_or(&Value::Null);
            let new = planned.get_path(p).unwrap_or(&Value::Null);
            old != new
        })
        .cloned()
        .collect()
}

/// The path of the first unknown inside `v`, if any (apply results must be
/// wholly known).
pub fn first_unknown(v: &Value) -> Option<AttributePath> {
    fn walk(v: &Value, path: &mut AttributePath) -> bool {
        match v.inner() {
            Value::Unknown => true,
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
                for (i, x) in items.iter().enumerate() {
                    path.0.push(PathStep::Index(i as i64));
                    if walk(x, path) {
                        return true;
                    }
                    path.0.pop();
                }
                false
            }
            Value::Object(m) | Value::Map(m) => {
                let object = matches!(v.inner(), Value::Object(_));
                for (k, x) in m {
                    path.0.push(if object {
                        PathStep::Attribute(k.clone())
                    } else {
                        PathStep::Key(k.clone())
                    });
                    if walk(x, path) {
                        return true;
                    }
                    path.0.pop();
                }
                false
            }
            _ => false,
        }
    }
    let mut path = AttributePath::default();
    walk(v, &mut path).then_some(path)
}

/// Sets every write-only attribute (at any depth) to null. Terraform
/// refuses plans and states that carry a value for one.
pub fn null_write_only(block: &Block, v: &mut Value) {
    if !v.is_null() && !v.is_unknown() {
        null_in_block(block, v);
    }
}

fn null_in_block(block: &Block, obj: &mut Value) {
    for a in &block.attributes {
        if let Some(slot) = obj.get_mut(&a.name) {
            null_in_attribute(a, slot);
        }
    }
    for nb in &block.blocks {
        let Some(slot) = obj.get_mut(&nb.type_name) else {
            continue;
        };
        match nb.nesting {
            BlockNesting::Single | BlockNesting::Group => null_write_only(&nb.block, slot),
            BlockNesting::List | BlockNesting::Set | BlockNesting::Map => {
                for_each_element(slot, |e| null_write_only(&nb.block, e));
            }
        }
    }
}

fn null_in_attribute(a: &Attribute, slot: &mut Value) {
    if a.write_only {
        *slot = Value::Null;
        return;
    }
    let Some(n) = &a.nested else { return };
    let nested_block = Block {
        attributes: n.attributes.clone(),
        ..Block::default()
    };
    match n.nesting {
        ObjectNesting::Single => null_write_only(&nested_block, slot),
        ObjectNesting::List | ObjectNesting::Set | ObjectNesting::Map => {
            for_each_element(slot, |e| null_write_only(&nested_block, e));
        }
    }
}

fn for_each_element(v: &mut Value, f: impl FnMut(&mut Value)) {
    match v {
        Value::Dynamic(_, inner) => for_each_element(inner, f),
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => items.iter_mut().for_each(f),
        Value::Map(m) | Value::Object(m) => m.values_mut().for_each(f),
        _ => {}
    }
}

/// Whether the schema has a write-only attribute anywhere.
pub fn has_write_only(block: &Block) -> bool {
    fn attr(a: &Attribute) -> bool {
        a.write_only || a.nested.as_ref().is_some_and(|n| n.attributes.iter().any(attr))
    }
    block.attributes.iter().any(attr) || block.blocks.iter().any(|b| has_write_only(&b.block))
}
