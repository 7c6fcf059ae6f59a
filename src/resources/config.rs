//! Reading configuration values that may be null or not yet known.
//!
//! Terraform validates and plans with values that other resources will only
//! know after apply. Readers here turn a [`Value`] into plain Rust inputs and
//! record which attributes (or list elements) were unknown, so checks can
//! skip exactly those and report everything else.

use std::collections::{BTreeMap, BTreeSet};

use selfhosted_protocol::diagnostics::{AttributePath, Diagnostic};
use selfhosted_protocol::value::Value;

/// The string entries of a map (others skipped); `None` when `value` is not a map.
pub fn string_entries(value: &Value) -> Option<BTreeMap<String, String>> {
    value.as_map().map(|entries| {
        entries
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
            .collect()
    })
}

/// Where an unknown value sits: attribute name and, for list elements, index.
pub type UnknownAt = (String, Option<usize>);

/// Reads attributes of one configuration object, remembering unknowns.
#[derive(Debug)]
pub struct Reader<'a> {
    object: &'a Value,
    unknown: BTreeSet<UnknownAt>,
    wrong_type: Vec<Diagnostic>,
}

impl<'a> Reader<'a> {
    /// A reader over a configuration (or state) object.
    pub fn new(object: &'a Value) -> Self {
        Reader {
            object,
            unknown: BTreeSet::new(),
            wrong_type: Vec::new(),
        }
    }

    fn get(&mut self, name: &str) -> Option<&'a Value> {
        match self.object.get(name) {
            None => None,
            Some(v) if v.is_null() => None,
            Some(v) if v.is_unknown() => {
                self.unknown.insert((name.to_owned(), None));
                None
            }
            Some(v) => Some(v),
        }
    }

    fn type_error(&mut self, name: &str, want: &str) {
        self.wrong_type.push(
            Diagnostic::error(
                format!("{name} must be {want}"),
                "Terraform passed a value of another type.",
            )
            .at(AttributePath::root(name)),
        );
    }

    /// A string attribute; `None` when null or unknown.
    pub fn string(&mut self, name: &str) -> Option<String> {
        let v = self.get(name)?;
        match v.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                self.type_error(name, "a string");
                None
            }
        }
    }

    /// A whole-number attribute; `None` when null or unknown.
    pub fn int(&mut self, name: &str) -> Option<i64> {
        let v = self.get(name)?;
        match v.as_i64() {
            Some(i) => Some(i),
            None => {
                self.type_error(name, "a whole number");
                None
            }
        }
    }

    /// A bool attribute; `None` when null or unknown.
    pub fn bool(&mut self, name: &str) -> Option<bool> {
        let v = self.get(name)?;
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                self.type_error(name, "true or false");
                None
            }
        }
    }

    /// A list of strings; unknown elements are replaced by `placeholder(i)`
    /// (a value that passes checks and is unique) and recorded.
    pub fn strings(&mut self, name: &str, placeholder: impl Fn(usize) -> String) -> Option<Vec<String>> {
        let v = self.get(name)?;
        let Some(items) = v.as_list() else {
            self.type_error(name, "a list of strings");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if item.is_unknown() {
                self.unknown.insert((name.to_owned(), Some(i)));
                out.push(placeholder(i));
            } else if let Some(s) = item.as_str() {
                out.push(s.to_owned());
            } else {
                self.wrong_type.push(
                    Diagnostic::error(format!("{name}[{i}] must be a string"), "Write a string here.")
                        .at(AttributePath::root(name).index(i as i64)),
                );
            }
        }
        Some(out)
    }

    /// A map of strings; `None` when null or unknown (an unknown element
    /// makes the whole map unknown).
    pub fn string_map(&mut self, name: &str) -> Option<BTreeMap<String, String>> {
        let v = self.get(name)?;
        let Some(entries) = v.as_map() else {
            self.type_error(name, "a map of strings");
            return None;
        };
        if entries.values().any(Value::is_unknown) {
            self.unknown.insert((name.to_owned(), None));
            return None;
        }
        string_entries(v)
    }

    /// A map of lists of strings; `None` when null or unknown (an unknown
    /// anywhere inside makes the whole map unknown).
    pub fn string_list_map(&mut self, name: &str) -> Option<BTreeMap<String, Vec<String>>> {
        let v = self.get(name)?;
        let Some(entries) = v.as_map() else {
            self.type_error(name, "a map of lists of strings");
            return None;
        };
        if !v.is_known() {
            self.unknown.insert((name.to_owned(), None));
            return None;
        }
        Some(
            entries
                .iter()
                .map(|(k, list)| {
                    let items = list.as_list().unwrap_or_default();
                    (
                        k.clone(),
                        items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
                    )
                })
                .collect(),
        )
    }

    /// Whether anything read so far was unknown.
    pub fn any_unknown(&self) -> bool {
        !self.unknown.is_empty()
    }

    /// Whether every unknown was an element of one of `lists` (a host that another resource
    /// creates), so the rest can be rendered around a stand-in.
    pub fn only_elements_unknown(&self, lists: &[&str]) -> bool {
        self.unknown
            .iter()
            .all(|(name, index)| index.is_some() && lists.contains(&name.as_str()))
    }

    /// Whether the attribute, or the given element of it, was unknown.
    pub fn was_unknown(&self, name: &str, index: Option<usize>) -> bool {
        self.unknown.contains(&(name.to_owned(), None))
            || index.is_some_and(|i| self.unknown.contains(&(name.to_owned(), Some(i))))
    }

    /// Type errors met while reading.
    pub fn into_type_errors(self) -> Vec<Diagnostic> {
        self.wrong_type
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_unknown_attributes_and_elements() {
        let cfg = Value::object([
            ("a", Value::Unknown),
            ("b", Value::List(vec![Value::from("x"), Value::Unknown])),
            ("c", Value::Null),
            ("d", Value::from(7i64)),
        ]);
        let mut r = Reader::new(&cfg);
        assert_eq!(r.string("a"), None);
        assert_eq!(r.strings("b", |i| format!("u{i}")), Some(vec!["x".into(), "u1".into()]));
        assert_eq!(r.string("c"), None);
        assert_eq!(r.int("d"), Some(7));
        assert!(r.was_unknown("a", None));
        assert!(r.was_unknown("b", Some(1)));
        assert!(!r.was_unknown("b", Some(0)));
        assert!(!r.was_unknown("c", None));
        assert!(r.any_unknown());
        assert!(r.into_type_errors().is_empty());
    }

    #[test]
    fn wrong_types_become_diagnostics_with_paths() {
        let cfg = Value::object([("a", Value::from(true)), ("b", Value::List(vec![Value::from(1i64)]))]);
        let mut r = Reader::new(&cfg);
        assert_eq!(r.string("a"), None);
        assert_eq!(r.strings("b", |_| String::new()), Some(vec![]));
        let errs = r.into_type_errors();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[1].attribute, Some(AttributePath::root("b").index(0)));
    }
}
