//! Terraform's values and types: what a resource reads from configuration,
//! plan and state, including null and unknown (known only after apply).
//! The wire codecs live in `msgpack` and `json`; the compact type JSON used
//! in schemas lives here with the type.

use std::collections::BTreeMap;

use crate::diagnostics::{AttributePath, PathStep};

/// A Terraform (cty) type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    /// `bool`
    Bool,
    /// `number` (arbitrary precision in Terraform)
    Number,
    /// `string`
    String,
    /// `list(T)`
    List(Box<Type>),
    /// `set(T)`
    Set(Box<Type>),
    /// `map(T)`, string keys
    Map(Box<Type>),
    /// `object({...})`
    Object(BTreeMap<String, Type>),
    /// `tuple([...])`
    Tuple(Vec<Type>),
    /// `dynamic`: the concrete type travels with the value
    Dynamic,
}

/// Errors reading a type from its JSON form.
#[derive(Debug, thiserror::Error)]
pub enum TypeError {
    /// The bytes were not JSON.
    #[error("type is not valid JSON")]
    ParseJson(#[source] serde_json::Error),
    /// The JSON did not describe a type.
    #[error("unsupported type specification: {0}")]
    Unsupported(String),
}

impl Type {
    /// `list(elem)`
    pub fn list(elem: Type) -> Self {
        Type::List(Box::new(elem))
    }

    /// `set(elem)`
    pub fn set(elem: Type) -> Self {
        Type::Set(Box::new(elem))
    }

    /// `map(elem)`
    pub fn map(elem: Type) -> Self {
        Type::Map(Box::new(elem))
    }

    /// `object({...})` from (name, type) pairs.
    pub fn object<I, K>(attrs: I) -> Self
    where
        I: IntoIterator<Item = (K, Type)>,
        K: Into<String>,
    {
        Type::Object(attrs.into_iter().map(|(k, t)| (k.into(), t)).collect())
    }

    /// The compact JSON form Terraform uses in schemas: `"string"`,
    /// `["list","string"]`, `["object",{"a":"number"}]`, ...
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Type::Bool => J::from("bool"),
            Type::Number => J::from("number"),
            Type::String => J::from("string"),
            Type::Dynamic => J::from("dynamic"),
            Type::List(e) => J::Array(vec!["list".into(), e.to_json()]),
            Type::Set(e) => J::Array(vec!["set".into(), e.to_json()]),
            Type::Map(e) => J::Array(vec!["map".into(), e.to_json()]),
            Type::Object(attrs) => J::Array(vec![
                "object".into(),
                J::Object(attrs.iter().map(|(k, t)| (k.clone(), t.to_json())).collect()),
            ]),
            Type::Tuple(elems) => J::Array(vec![
                "tuple".into(),
                J::Array(elems.iter().map(Type::to_json).collect()),
            ]),
        }
    }

    /// The compact JSON form as bytes, as the schema's `type` field wants.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    /// Reads a type from its compact JSON form. An object's optional
    /// attribute list (third element) is accepted and ignored.
    pub fn from_json(j: &serde_json::Value) -> Result<Self, TypeError> {
        use serde_json::Value as J;
        let unsupported = || TypeError::Unsupported(j.to_string());
        match j {
            J::String(s) => match s.as_str() {
                "bool" => Ok(Type::Bool),
                "number" => Ok(Type::Number),
                "string" => Ok(Type::String),
                "dynamic" => Ok(Type::Dynamic),
                _ => Err(unsupported()),
            },
            J::Array(parts) if parts.len() >= 2 => {
                let kind = parts[0].as_str().ok_or_else(unsupported)?;
                let arg = &parts[1];
                match (kind, arg) {
                    ("list", _) => Ok(Type::list(Type::from_json(arg)?)),
                    ("set", _) => Ok(Type::set(Type::from_json(arg)?)),
                    ("map", _) => Ok(Type::map(Type::from_json(arg)?)),
                    ("object", J::Object(attrs)) if parts.len() <= 3 => Ok(Type::Object(
                        attrs
                            .iter()
                            .map(|(k, t)| Ok((k.clone(), Type::from_json(t)?)))
                            .collect::<Result<_, TypeError>>()?,
                    )),
                    ("tuple", J::Array(elems)) if parts.len() == 2 => Ok(Type::Tuple(
                        elems.iter().map(Type::from_json).collect::<Result<_, _>>()?,
                    )),
                    _ => Err(unsupported()),
                }
            }
            _ => Err(unsupported()),
        }
    }

    /// Reads a type from compact JSON bytes.
    pub fn from_json_bytes(b: &[u8]) -> Result<Self, TypeError> {
        let j: serde_json::Value = serde_json::from_slice(b).map_err(TypeError::ParseJson)?;
        Type::from_json(&j)
    }
}

/// A Terraform number. Terraform numbers are arbitrary-precision decimals;
/// integers that fit in 64 bits and finite floats cover what we use, and any
/// other number is kept as its decimal text so it survives a round trip.
#[derive(Debug, Clone)]
pub enum Number {
    /// A whole number that fits in `i64`.
    Int(i64),
    /// A number with a fraction (or an integer too large for `i64` that is
    /// exactly a float).
    Float(f64),
    /// Any other number, as decimal text.
    Big(String),
}

impl Number {
    /// The number as `i64`, when it is a whole number in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Number::Int(i) => Some(*i),
            Number::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(*f as i64),
            Number::Float(_) => None,
            Number::Big(s) => s.parse().ok(),
        }
    }

    /// The number as `f64` (possibly rounded).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Number::Int(i) => Some(*i as f64),
            Number::Float(f) => Some(*f),
            Number::Big(s) => s.parse().ok(),
        }
    }

    /// Normalises a float: whole floats in `i64` range become `Int`.
    pub fn from_f64(f: f64) -> Self {
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18 {
            Number::Int(f as i64)
        } else {
            Number::Float(f)
        }
    }

    /// Parses decimal text, keeping it verbatim when it does not fit.
    pub fn from_decimal(s: &str) -> Option<Self> {
        if let Ok(i) = s.parse::<i64>() {
            return Some(Number::Int(i));
        }
        let f: f64 = s.parse().ok()?;
        if f.is_finite() && f.to_string() == s {
            Some(Number::from_f64(f))
        } else {
            Some(Number::Big(s.to_owned()))
        }
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            (Number::Big(a), Number::Big(b)) => a == b,
            (Number::Int(a), Number::Float(b)) | (Number::Float(b), Number::Int(a)) => {
                (*a as f64) == *b && b.fract() == 0.0
            }
            (Number::Float(a), Number::Float(b)) => a == b,
            _ => self.as_f64() == other.as_f64() && self.as_f64().is_some(),
        }
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Float(x) => write!(f, "{x}"),
            Number::Big(s) => f.write_str(s),
        }
    }
}

/// A Terraform value. Values carry no type of their own: the schema gives
/// the type when encoding or decoding. `Unknown` is a value Terraform will
/// only know after apply (refinements Terraform may attach are dropped on
/// input, which the protocol allows).
#[derive(Debug, Clone, Default)]
pub enum Value {
    /// Absent.
    #[default]
    Null,
    /// Known only after apply.
    Unknown,
    /// `bool`
    Bool(bool),
    /// `number`
    Number(Number),
    /// `string`
    String(String),
    /// `list(T)`
    List(Vec<Value>),
    /// `set(T)`: order carries no meaning and equality ignores it.
    Set(Vec<Value>),
    /// `map(T)`
    Map(BTreeMap<String, Value>),
    /// `object({...})`
    Object(BTreeMap<String, Value>),
    /// `tuple([...])`
    Tuple(Vec<Value>),
    /// A value of a `dynamic` attribute, with the concrete type it arrived
    /// with (so it is sent back exactly). Accessors look through it.
    Dynamic(Type, Box<Value>),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) | (Unknown, Unknown) => true,
            (Bool(a), Bool(b)) => a == b,
            (Number(a), Number(b)) => a == b,
            (String(a), String(b)) => a == b,
            (List(a), List(b)) | (Tuple(a), Tuple(b)) => a == b,
            (Map(a), Map(b)) | (Object(a), Object(b)) => a == b,
            (Set(a), Set(b)) => set_eq(a, b),
            (Dynamic(ta, a), Dynamic(tb, b)) => ta == tb && a == b,
            _ => false,
        }
    }
}

/// Order-insensitive comparison of set elements (multiset equality).
fn set_eq(a: &[Value], b: &[Value]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut used = vec![false; b.len()];
    'outer: for x in a {
        for (i, y) in b.iter().enumerate() {
            if !used[i] && x == y {
                used[i] = true;
                continue 'outer;
            }
        }
        return false;
    }
    true
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Number(Number::Int(i))
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Number(Number::Int(i.into()))
    }
}
impl From<u32> for Value {
    fn from(i: u32) -> Self {
        Value::Number(Number::Int(i.into()))
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Number(Number::from_f64(f))
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::String(s.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map_or(Value::Null, Into::into)
    }
}
impl From<Number> for Value {
    fn from(n: Number) -> Self {
        Value::Number(n)
    }
}

impl Value {
    /// Looks through a `Dynamic` wrapper to the value inside.
    pub fn inner(&self) -> &Value {
        match self {
            Value::Dynamic(_, v) => v.inner(),
            v => v,
        }
    }

    /// Whether the value is null.
    pub fn is_null(&self) -> bool {
        matches!(self.inner(), Value::Null)
    }

    /// Whether the value itself is unknown (not whether it contains one).
    pub fn is_unknown(&self) -> bool {
        matches!(self.inner(), Value::Unknown)
    }

    /// Whether the value is wholly known: no unknown anywhere inside.
    pub fn is_known(&self) -> bool {
        match self.inner() {
            Value::Unknown => false,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => v.iter().all(Value::is_known),
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_known),
            _ => true,
        }
    }

    /// An object attribute (or map element) by name.
    pub fn get(&self, attr: &str) -> Option<&Value> {
        match self.inner() {
            Value::Object(m) | Value::Map(m) => m.get(attr),
            _ => None,
        }
    }

    /// Mutable access to an object attribute (or map element).
    pub fn get_mut(&mut self, attr: &str) -> Option<&mut Value> {
        match self {
            Value::Dynamic(_, v) => v.get_mut(attr),
            Value::Object(m) | Value::Map(m) => m.get_mut(attr),
            _ => None,
        }
    }

    /// Sets an object attribute; no effect unless this is an object or map.
    pub fn set_attr(&mut self, attr: &str, v: Value) {
        match self {
            Value::Dynamic(_, inner) => inner.set_attr(attr, v),
            Value::Object(m) | Value::Map(m) => {
                m.insert(attr.to_owned(), v);
            }
            _ => {}
        }
    }

    /// The string, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self.inner() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as `i64`, if this is a known whole number in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self.inner() {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The number as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match self.inner() {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// The number, if this is a known number.
    pub fn as_number(&self) -> Option<&Number> {
        match self.inner() {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The bool, if this is a known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self.inner() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements of a list, set or tuple.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self.inner() {
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// The entries of a map or object.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self.inner() {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// An object from (name, value) pairs.
    pub fn object<I, K>(it: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Object(it.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A map from (key, value) pairs.
    pub fn map<I, K>(it: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Map(it.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A list of strings.
    pub fn string_list<I, S>(it: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Value::List(it.into_iter().map(|s| Value::String(s.into())).collect())
    }

    /// The null value of a type (values carry no type, so this is `Null`).
    pub fn null_of(_ty: &Type) -> Value {
        Value::Null
    }

    /// An object of the given type with every attribute null.
    pub fn null_object(ty: &Type) -> Value {
        match ty {
            Type::Object(attrs) => Value::Object(attrs.keys().map(|k| (k.clone(), Value::Null)).collect()),
            _ => Value::Null,
        }
    }

    /// The value at a path, if every step exists. Set elements are
    /// addressed by position in the order they arrived.
    pub fn get_path(&self, path: &AttributePath) -> Option<&Value> {
        let mut cur = self;
        for step in path.steps() {
            cur = match (step, cur.inner()) {
                (PathStep::Attribute(a), Value::Object(m)) => m.get(a)?,
                (PathStep::Key(k), Value::Map(m)) => m.get(k)?,
                (PathStep::Index(i), Value::List(v) | Value::Set(v) | Value::Tuple(v)) => {
                    v.get(usize::try_from(*i).ok()?)?
                }
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Mutable access to the value at a path.
    pub fn get_path_mut(&mut self, path: &AttributePath) -> Option<&mut Value> {
        let mut cur = self;
        for step in path.steps() {
            while let Value::Dynamic(_, inner) = cur {
                cur = inner;
            }
            cur = match (step, cur) {
                (PathStep::Attribute(a), Value::Object(m)) => m.get_mut(a)?,
                (PathStep::Key(k), Value::Map(m)) => m.get_mut(k)?,
                (PathStep::Index(i), Value::List(v) | Value::Set(v) | Value::Tuple(v)) => {
                    v.get_mut(usize::try_from(*i).ok()?)?
                }
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Replaces the value at a path; returns whether the path existed.
    pub fn set_path(&mut self, path: &AttributePath, v: Value) -> bool {
        match self.get_path_mut(path) {
            Some(slot) => {
                *slot = v;
                true
            }
            None => false,
        }
    }
}
