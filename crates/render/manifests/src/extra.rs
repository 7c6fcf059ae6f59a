//! The user's `extra_manifests`: YAML streams split into objects, each checked enough that
//! the pivot can apply it (apiVersion, kind, metadata.name), with a message naming the
//! document when it is not.

use serde::Deserialize;
use serde_json::Value;

/// One object of `extra_manifests`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraObject {
    /// Index of the `extra_manifests` element it came from.
    pub source: usize,
    /// 1-based document number inside that element.
    pub document: usize,
    /// The object.
    pub object: Value,
}

impl ExtraObject {
    pub(crate) fn with_source(mut self, source: usize) -> Self {
        self.source = source;
        self
    }
}

/// Split a YAML stream into objects; empty documents are skipped, `List` kinds are not
/// accepted (write the items as documents).
///
/// # Errors
/// A message naming the document (1-based) and what is wrong with it.
pub fn parse_stream(text: &str) -> Result<Vec<ExtraObject>, String> {
    let mut out = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let n = i + 1;
        let value = Value::deserialize(de).map_err(|e| format!("document {n} is not valid YAML: {e}"))?;
        if value.is_null() {
            continue;
        }
        let Some(map) = value.as_object() else {
            return Err(format!(
                "document {n} is not a Kubernetes object (a YAML mapping with apiVersion, kind, metadata)"
            ));
        };
        let api = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
        if api.is_empty() {
            return Err(format!("document {n} has no apiVersion; add e.g. \"apiVersion: v1\""));
        }
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!("document {n} has no valid kind; add e.g. \"kind: ConfigMap\""));
        }
        if kind.ends_with("List") {
            return Err(format!(
                "document {n} is a {kind}; write its items as separate documents"
            ));
        }
        let name = map
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.is_empty() {
            return Err(format!(
                "document {n} ({kind}) has no metadata.name; add one (generateName cannot be applied idempotently)"
            ));
        }
        if !is_object_name(name) {
            return Err(format!("document {n} ({kind}) name {name:?} is not a valid object name (lowercase letters, digits, '-', '.', ':' up to 253)"));
        }
        if let Some(ns) = map.get("metadata").and_then(|m| m.get("namespace")) {
            match ns.as_str() {
                Some(ns) if crate::names::is_dns_label(ns) => {}
                _ => {
                    return Err(format!(
                        "document {n} ({kind} {name}) metadata.namespace is not a valid namespace name"
                    ))
                }
            }
        }
        out.push(ExtraObject {
            source: 0,
            document: n,
            object: value,
        });
    }
    Ok(out)
}

fn is_object_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:".contains(&b))
}
