//! The JSON encoding of values, which Terraform uses for stored state handed
//! to `UpgradeResourceState`. JSON has no unknowns; `dynamic` travels as
//! `{"type": ..., "value": ...}`.

use std::collections::BTreeMap;

use serde_json::Value as J;

use crate::diagnostics::{AttributePath, PathStep};
use crate::value::{Number, Type, Value};

/// Errors decoding a JSON value.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The bytes were not JSON.
    #[error("state is not valid JSON")]
    Parse(#[source] serde_json::Error),
    /// The value does not fit the type.
    #[error("value at {path} does not match type {expected}")]
    TypeMismatch {
        /// Where.
        path: AttributePath,
        /// The expected type, as compact JSON.
        expected: String,
    },
    /// An attribute the type does not declare (strict mode only).
    #[error("object at {path} has attribute {name:?}, which its type does not declare")]
    UnexpectedAttribute {
        /// Where.
        path: AttributePath,
        /// The attribute name.
        name: String,
    },
    /// A dynamic value whose type could not be read.
    #[error("dynamic value at {path} carries an invalid type")]
    DynamicType {
        /// Where.
        path: AttributePath,
        /// Why.
        #[source]
        source: crate::value::TypeError,
    },
}

/// How to treat object attributes the type does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unexpected {
    /// Refuse them.
    Reject,
    /// Drop them (reading state written by an older schema).
    Drop,
}

/// Decodes JSON bytes as a value of the given type.
///
/// # Errors
/// Invalid JSON or a value that does not fit the type.
pub fn decode(bytes: &[u8], ty: &Type, unexpected: Unexpected) -> Result<Value, JsonError> {
    let j: J = serde_json::from_slice(bytes).map_err(JsonError::Parse)?;
    from_json(&j, ty, unexpected)
}

/// Decodes a parsed JSON value as a value of the given type.
///
/// # Errors
/// A value that does not fit the type.
pub fn from_json(j: &J, ty: &Type, unexpected: Unexpected) -> Result<Value, JsonError> {
    let mut path = AttributePath::default();
    walk(j, ty, unexpected, &mut path)
}

fn walk(j: &J, ty: &Type, un: Unexpected, path: &mut AttributePath) -> Result<Value, JsonError> {
    let mismatch = |path: &AttributePath| JsonError::TypeMismatch {
        path: path.clone(),
        expected: ty.to_json().to_string(),
    };
    if j.is_null() {
        return Ok(Value::Null);
    }
    let step = |path: &mut AttributePath, s: PathStep, j: &J, t: &Type| {
        path.0.push(s);
        let r = walk(j, t, un, path);
        path.0.pop();
        r
    };
    match (ty, j) {
        (Type::Bool, J::Bool(b)) => Ok(Value::Bool(*b)),
        (Type::Number, J::Number(n)) => Ok(Value::Number(if let Some(i) = n.as_i64() {
            Number::Int(i)
        } else if let Some(f) = n.as_f64() {
            Number::from_decimal(&n.to_string()).unwrap_or(Number::from_f64(f))
        } else {
            Number::Big(n.to_string())
        })),
        // Terraform writes numbers as JSON numbers, but be forgiving.
        (Type::Number, J::String(s)) => Number::from_decimal(s).map(Value::Number).ok_or_else(|| mismatch(path)),
        (Type::String, J::String(s)) => Ok(Value::String(s.clone())),
        (Type::List(e) | Type::Set(e), J::Array(items)) => {
            let vals = items
                .iter()
                .enumerate()
                .map(|(i, x)| step(path, PathStep::Index(i as i64), x, e))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if matches!(ty, Type::List(_)) {
                Value::List(vals)
            } else {
                Value::Set(vals)
            })
        }
        (Type::Tuple(elems), J::Array(items)) if elems.len() == items.len() => Ok(Value::Tuple(
            items
                .iter()
                .zip(elems)
                .enumerate()
                .map(|(i, (x, t))| step(path, PathStep::Index(i as i64), x, t))
                .collect::<Result<Vec<_>, _>>()?,
        )),
        (Type::Map(e), J::Object(m)) => Ok(Value::Map(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), step(path, PathStep::Key(k.clone()), x, e)?)))
                .collect::<Result<BTreeMap<_, _>, JsonError>>()?,
        )),
        (Type::Object(attrs), J::Object(m)) => {
            let mut out = BTreeMap::new();
            for (k, x) in m {
                match attrs.get(k) {
                    Some(t) => {
                        out.insert(k.clone(), step(path, PathStep::Attribute(k.clone()), x, t)?);
                    }
                    None if un == Unexpected::Drop => {}
                    None => {
                        return Err(JsonError::UnexpectedAttribute {
                            path: path.clone(),
                            name: k.clone(),
                        })
                    }
                }
            }
            for k in attrs.keys() {
                out.entry(k.clone()).or_insert(Value::Null);
            }
            Ok(Value::Object(out))
        }
        (Type::Dynamic, J::Object(m)) if m.contains_key("type") && m.contains_key("value") => {
            let t = Type::from_json(&m["type"]).map_err(|source| JsonError::DynamicType {
                path: path.clone(),
                source,
            })?;
            let v = walk(&m["value"], &t, un, path)?;
            Ok(if v.is_null() {
                Value::Null
            } else {
                Value::Dynamic(t, Box::new(v))
            })
        }
        _ => Err(mismatch(path)),
    }
}

/// Encodes a known value of the given type as JSON (unknowns become null,
/// JSON cannot carry them).
pub fn to_json(v: &Value, ty: &Type) -> J {
    match (v, ty) {
        (Value::Null | Value::Unknown, _) => J::Null,
        (Value::Dynamic(t, inner), Type::Dynamic) => {
            serde_json::json!({"type": t.to_json(), "value": to_json(inner, t)})
        }
        (Value::Dynamic(_, inner), t) => to_json(inner, t),
        (v, Type::Dynamic) => {
            let t = crate::msgpack::infer_type(v);
            serde_json::json!({"type": t.to_json(), "value": to_json(v, &t)})
        }
        (Value::Bool(b), _) => J::Bool(*b),
        (Value::Number(n), _) => match n {
            Number::Int(i) => J::from(*i),
            Number::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Number::Big(s) => serde_json::from_str(s).unwrap_or_else(|_| J::String(s.clone())),
        },
        (Value::String(s), _) => J::String(s.clone()),
        (Value::List(items) | Value::Set(items) | Value::Tuple(items), t) => J::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let et = match t {
                        Type::List(e) | Type::Set(e) => e.as_ref(),
                        Type::Tuple(es) => es.get(i).unwrap_or(&Type::Dynamic),
                        _ => &Type::Dynamic,
                    };
                    to_json(x, et)
                })
                .collect(),
        ),
        (Value::Map(m) | Value::Object(m), t) => J::Object(
            m.iter()
                .map(|(k, x)| {
                    let et = match t {
                        Type::Map(e) => e.as_ref(),
                        Type::Object(attrs) => attrs.get(k).unwrap_or(&Type::Dynamic),
                        _ => &Type::Dynamic,
                    };
                    (k.clone(), to_json(x, et))
                })
                .collect(),
        ),
    }
}
