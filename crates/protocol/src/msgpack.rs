//! The msgpack encoding of `DynamicValue`, driven by the schema's type:
//! nil is null, any extension value is unknown (code 12 carries
//! refinements, which we accept and drop), `dynamic` travels as
//! `[type JSON, value]`. We always answer in this encoding.

use std::collections::BTreeMap;

use rmp::Marker;

use crate::diagnostics::AttributePath;
use crate::value::{Number, Type, Value};

/// Nesting deeper than this is refused instead of risking the stack.
const MAX_DEPTH: usize = 64;

/// Errors decoding or encoding msgpack values.
#[derive(Debug, thiserror::Error)]
pub enum MsgpackError {
    /// The bytes ended early.
    #[error("msgpack value is truncated")]
    Truncated,
    /// A marker byte msgpack reserves.
    #[error("msgpack value uses the reserved marker 0x{0:02x}")]
    ReservedMarker(u8),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("msgpack value nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Bytes left after the value.
    #[error("{0} unexpected bytes after the msgpack value")]
    TrailingBytes(usize),
    /// A string that is not UTF-8.
    #[error("msgpack string at {path} is not UTF-8")]
    NotUtf8 {
        /// Where.
        path: AttributePath,
    },
    /// The value does not fit the type the schema gives.
    #[error("value at {path} does not match type {expected}: found {found}")]
    TypeMismatch {
        /// Where.
        path: AttributePath,
        /// The schema type, as compact JSON.
        expected: String,
        /// What was there.
        found: String,
    },
    /// An object attribute the type does not declare.
    #[error("object at {path} has attribute {name:?}, which its type does not declare")]
    UnexpectedAttribute {
        /// Where.
        path: AttributePath,
        /// The attribute name.
        name: String,
    },
    /// The type of a dynamic value could not be read.
    #[error("dynamic value at {path} carries an invalid type")]
    DynamicType {
        /// Where.
        path: AttributePath,
        /// Why.
        #[source]
        source: crate::value::TypeError,
    },
    /// Writing to the output buffer failed (cannot happen for a `Vec`).
    #[error("writing msgpack failed")]
    Write,
}

// ---------------------------------------------------------------- decoding

/// The msgpack data model, before the schema type gives it meaning.
#[derive(Debug)]
enum Raw {
    Nil,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Vec<u8>),
    Bin(Vec<u8>),
    Array(Vec<Raw>),
    Map(Vec<(Raw, Raw)>),
    Ext,
}

impl Raw {
    fn kind(&self) -> &'static str {
        match self {
            Raw::Nil => "nil",
            Raw::Bool(_) => "bool",
            Raw::Int(_) | Raw::UInt(_) => "integer",
            Raw::Float(_) => "float",
            Raw::Str(_) => "string",
            Raw::Bin(_) => "binary",
            Raw::Array(_) => "array",
            Raw::Map(_) => "map",
            Raw::Ext => "extension",
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MsgpackError> {
        if self.buf.len() < n {
            return Err(MsgpackError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn be(&mut self, n: usize) -> Result<u64, MsgpackError> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn len(&mut self, n: usize) -> Result<usize, MsgpackError> {
        usize::try_from(self.be(n)?).map_err(|_| MsgpackError::Truncated)
    }

    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, MsgpackError> {
        Ok(self.take(n)?.to_vec())
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Raw, MsgpackError> {
        // Every element takes at least one byte: refuse lengths the input
        // cannot hold before allocating for them.
        if n > self.buf.len() {
            return Err(MsgpackError::Truncated);
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.raw(depth + 1)?);
        }
        Ok(Raw::Array(v))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Raw, MsgpackError> {
        if n > self.buf.len() {
            return Err(MsgpackError::Truncated);
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.raw(depth + 1)?;
            let val = self.raw(depth + 1)?;
            v.push((k, val));
        }
        Ok(Raw::Map(v))
    }

    fn ext(&mut self, n: usize) -> Result<Raw, MsgpackError> {
        // One type byte, then the payload (refinements for code 12), which
        // we skip: an unknown stays an unknown without them.
        self.take(1 + n)?;
        Ok(Raw::Ext)
    }

    fn raw(&mut self, depth: usize) -> Result<Raw, MsgpackError> {
        if depth > MAX_DEPTH {
            return Err(MsgpackError::TooDeep);
        }
        let byte = self.take(1)?[0];
        Ok(match Marker::from_u8(byte) {
            Marker::Null => Raw::Nil,
            Marker::True => Raw::Bool(true),
            Marker::False => Raw::Bool(false),
            Marker::FixPos(n) => Raw::Int(i64::from(n)),
            Marker::FixNeg(n) => Raw::Int(i64::from(n)),
            Marker::U8 => Raw::UInt(self.be(1)?),
            Marker::U16 => Raw::UInt(self.be(2)?),
            Marker::U32 => Raw::UInt(self.be(4)?),
            Marker::U64 => Raw::UInt(self.be(8)?),
            Marker::I8 => Raw::Int(i64::from(self.be(1)? as u8 as i8)),
            Marker::I16 => Raw::Int(i64::from(self.be(2)? as u16 as i16)),
            Marker::I32 => Raw::Int(i64::from(self.be(4)? as u32 as i32)),
            Marker::I64 => Raw::Int(self.be(8)? as i64),
            Marker::F32 => Raw::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            Marker::F64 => Raw::Float(f64::from_bits(self.be(8)?)),
            Marker::FixStr(n) => Raw::Str(self.bytes(usize::from(n))?),
            Marker::Str8 => {
                let n = self.len(1)?;
                Raw::Str(self.bytes(n)?)
            }
            Marker::Str16 => {
                let n = self.len(2)?;
                Raw::Str(self.bytes(n)?)
            }
            Marker::Str32 => {
                let n = self.len(4)?;
                Raw::Str(self.bytes(n)?)
            }
            Marker::Bin8 => {
                let n = self.len(1)?;
                Raw::Bin(self.bytes(n)?)
            }
            Marker::Bin16 => {
                let n = self.len(2)?;
                Raw::Bin(self.bytes(n)?)
            }
            Marker::Bin32 => {
                let n = self.len(4)?;
                Raw::Bin(self.bytes(n)?)
            }
            Marker::FixArray(n) => self.array(usize::from(n), depth)?,
            Marker::Array16 => {
                let n = self.len(2)?;
                self.array(n, depth)?
            }
            Marker::Array32 => {
                let n = self.len(4)?;
                self.array(n, depth)?
            }
            Marker::FixMap(n) => self.map(usize::from(n), depth)?,
            Marker::Map16 => {
                let n = self.len(2)?;
                self.map(n, depth)?
            }
            Marker::Map32 => {
                let n = self.len(4)?;
                self.map(n, depth)?
            }
            Marker::FixExt1 => self.ext(1)?,
            Marker::FixExt2 => self.ext(2)?,
            Marker::FixExt4 => self.ext(4)?,
            Marker::FixExt8 => self.ext(8)?,
            Marker::FixExt16 => self.ext(16)?,
            Marker::Ext8 => {
                let n = self.len(1)?;
                self.ext(n)?
            }
            Marker::Ext16 => {
                let n = self.len(2)?;
                self.ext(n)?
            }
            Marker::Ext32 => {
                let n = self.len(4)?;
                self.ext(n)?
            }
            Marker::Reserved => return Err(MsgpackError::ReservedMarker(byte)),
        })
    }
}

/// Decodes a msgpack `DynamicValue` of the given type.
///
/// # Errors
/// Malformed msgpack, or a value that does not fit the type.
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, MsgpackError> {
    let mut rd = Reader { buf: bytes };
    let raw = rd.raw(0)?;
    if !rd.buf.is_empty() {
        return Err(MsgpackError::TrailingBytes(rd.buf.len()));
    }
    let mut path = AttributePath::default();
    typed(raw, ty, &mut path)
}

fn mismatch(path: &AttributePath, ty: &Type, raw: &Raw) -> MsgpackError {
    MsgpackError::TypeMismatch {
        path: path.clone(),
        expected: ty.to_json().to_string(),
        found: raw.kind().to_owned(),
    }
}

fn utf8(b: Vec<u8>, path: &AttributePath) -> Result<String, MsgpackError> {
    String::from_utf8(b).map_err(|_| MsgpackError::NotUtf8 { path: path.clone() })
}

fn with_step<T>(
    path: &mut AttributePath,
    step: crate::diagnostics::PathStep,
    f: impl FnOnce(&mut AttributePath) -> Result<T, MsgpackError>,
) -> Result<T, MsgpackError> {
    path.0.push(step);
    let r = f(path);
    path.0.pop();
    r
}

fn typed(raw: Raw, ty: &Type, path: &mut AttributePath) -> Result<Value, MsgpackError> {
    use crate::diagnostics::PathStep;
    match raw {
        Raw::Nil => return Ok(Value::Null),
        Raw::Ext => return Ok(Value::Unknown),
        _ => {}
    }
    match (ty, raw) {
        (Type::Bool, Raw::Bool(b)) => Ok(Value::Bool(b)),
        (Type::Number, Raw::Int(i)) => Ok(Value::Number(Number::Int(i))),
        (Type::Number, Raw::UInt(u)) => Ok(Value::Number(
            i64::try_from(u).map_or_else(|_| Number::Big(u.to_string()), Number::Int),
        )),
        (Type::Number, Raw::Float(f)) => Ok(Value::Number(Number::from_f64(f))),
        (Type::Number, Raw::Str(s)) => {
            let s = utf8(s, path)?;
            Number::from_decimal(&s)
                .map(Value::Number)
                .ok_or_else(|| MsgpackError::TypeMismatch {
                    path: path.clone(),
                    expected: "\"number\"".into(),
                    found: "non-numeric string".into(),
                })
        }
        (Type::String, Raw::Str(s)) => Ok(Value::String(utf8(s, path)?)),
        (Type::List(e) | Type::Set(e), Raw::Array(items)) => {
            let vals = items
                .into_iter()
                .enumerate()
                .map(|(i, r)| with_step(path, PathStep::Index(i as i64), |p| typed(r, e, p)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if matches!(ty, Type::List(_)) {
                Value::List(vals)
            } else {
                Value::Set(vals)
            })
        }
        (Type::Tuple(elems), Raw::Array(items)) if elems.len() == items.len() => {
            let vals = items
                .into_iter()
                .zip(elems)
                .enumerate()
                .map(|(i, (r, t))| with_step(path, PathStep::Index(i as i64), |p| typed(r, t, p)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::Tuple(vals))
        }
        (Type::Map(e), Raw::Map(entries)) => {
            let mut m = BTreeMap::new();
            for (k, v) in entries {
                let Raw::Str(k) = k else {
                    return Err(mismatch(path, ty, &k));
                };
                let k = utf8(k, path)?;
                let val = with_step(path, PathStep::Key(k.clone()), |p| typed(v, e, p))?;
                m.insert(k, val);
            }
            Ok(Value::Map(m))
        }
        (Type::Object(attrs), Raw::Map(entries)) => {
            let mut m = BTreeMap::new();
            for (k, v) in entries {
                let Raw::Str(k) = k else {
                    return Err(mismatch(path, ty, &k));
                };
                let k = utf8(k, path)?;
                let Some(aty) = attrs.get(&k) else {
                    return Err(MsgpackError::UnexpectedAttribute {
                        path: path.clone(),
                        name: k,
                    });
                };
                let val = with_step(path, PathStep::Attribute(k.clone()), |p| typed(v, aty, p))?;
                m.insert(k, val);
            }
            for name in attrs.keys() {
                m.entry(name.clone()).or_insert(Value::Null);
            }
            Ok(Value::Object(m))
        }
        (Type::Dynamic, Raw::Array(mut items)) if items.len() == 2 => {
            let val = items.pop().unwrap_or(Raw::Nil);
            let ty_bytes = match items.pop() {
                Some(Raw::Bin(b) | Raw::Str(b)) => b,
                Some(other) => return Err(mismatch(path, ty, &other)),
                None => return Err(MsgpackError::Truncated),
            };
            let concrete = Type::from_json_bytes(&ty_bytes).map_err(|source| MsgpackError::DynamicType {
                path: path.clone(),
                source,
            })?;
            let inner = typed(val, &concrete, path)?;
            Ok(match inner {
                Value::Null => Value::Null,
                Value::Unknown => Value::Unknown,
                v => Value::Dynamic(concrete, Box::new(v)),
            })
        }
        (_, raw) => Err(mismatch(path, ty, &raw)),
    }
}

// ---------------------------------------------------------------- encoding

/// Encodes a value of the given type as msgpack. Lists, sets and tuples are
/// interchangeable as are maps and objects, so callers may build whichever
/// is handy; an object must not carry attributes its type lacks, and
/// missing attributes are sent as null.
///
/// # Errors
/// A value that does not fit the type.
pub fn encode(v: &Value, ty: &Type) -> Result<Vec<u8>, MsgpackError> {
    let mut out = Vec::with_capacity(64);
    let mut path = AttributePath::default();
    write(&mut out, v, ty, &mut path, 0)?;
    Ok(out)
}

fn w<T, E>(r: Result<T, E>) -> Result<T, MsgpackError> {
    r.map_err(|_| MsgpackError::Write)
}

fn found(v: &Value) -> String {
    match v {
        Value::Null => "null",
        Value::Unknown => "unknown",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::List(_) => "list",
        Value::Set(_) => "set",
        Value::Map(_) => "map",
        Value::Object(_) => "object",
        Value::Tuple(_) => "tuple",
        Value::Dynamic(..) => "dynamic",
    }
    .to_owned()
}

fn enc_mismatch(path: &AttributePath, ty: &Type, v: &Value) -> MsgpackError {
    MsgpackError::TypeMismatch {
        path: path.clone(),
        expected: ty.to_json().to_string(),
        found: found(v),
    }
}

fn len32(n: usize) -> Result<u32, MsgpackError> {
    u32::try_from(n).map_err(|_| MsgpackError::Write)
}

fn write(out: &mut Vec<u8>, v: &Value, ty: &Type, path: &mut AttributePath, depth: usize) -> Result<(), MsgpackError> {
    use crate::diagnostics::PathStep;
    if depth > MAX_DEPTH {
        return Err(MsgpackError::TooDeep);
    }
    match v {
        Value::Null => return w(rmp::encode::write_nil(out)),
        Value::Unknown => {
            // Unrefined unknown: extension code 0 with a one-byte payload.
            w(rmp::encode::write_ext_meta(out, 1, 0))?;
            out.push(0);
            return Ok(());
        }
        Value::Dynamic(concrete, inner) if *ty == Type::Dynamic => {
            return write_dynamic(out, inner, concrete, path, depth);
        }
        Value::Dynamic(_, inner) => return write(out, inner, ty, path, depth),
        _ => {}
    }
    match (ty, v) {
        (Type::Dynamic, v) => {
            let concrete = infer_type(v);
            write_dynamic(out, v, &concrete, path, depth)
        }
        (Type::Bool, Value::Bool(b)) => w(rmp::encode::write_bool(out, *b)),
        (Type::Number, Value::Number(n)) => match n {
            Number::Int(i) => w(rmp::encode::write_sint(out, *i)).map(|_| ()),
            Number::Float(f) => w(rmp::encode::write_f64(out, *f)),
            Number::Big(s) => w(rmp::encode::write_str(out, s)),
        },
        (Type::String, Value::String(s)) => w(rmp::encode::write_str(out, s)),
        (Type::List(e) | Type::Set(e), Value::List(items) | Value::Set(items) | Value::Tuple(items)) => {
            w(rmp::encode::write_array_len(out, len32(items.len())?))?;
            for (i, item) in items.iter().enumerate() {
                path.0.push(PathStep::Index(i as i64));
                write(out, item, e, path, depth + 1)?;
                path.0.pop();
            }
            Ok(())
        }
        (Type::Tuple(elems), Value::List(items) | Value::Set(items) | Value::Tuple(items))
            if elems.len() == items.len() =>
        {
            w(rmp::encode::write_array_len(out, len32(items.len())?))?;
            for (i, (item, t)) in items.iter().zip(elems).enumerate() {
                path.0.push(PathStep::Index(i as i64));
                write(out, item, t, path, depth + 1)?;
                path.0.pop();
            }
            Ok(())
        }
        (Type::Map(e), Value::Map(m) | Value::Object(m)) => {
            w(rmp::encode::write_map_len(out, len32(m.len())?))?;
            for (k, item) in m {
                w(rmp::encode::write_str(out, k))?;
                path.0.push(PathStep::Key(k.clone()));
                write(out, item, e, path, depth + 1)?;
                path.0.pop();
            }
            Ok(())
        }
        (Type::Object(attrs), Value::Object(m) | Value::Map(m)) => {
            if let Some(extra) = m.keys().find(|k| !attrs.contains_key(*k)) {
                return Err(MsgpackError::UnexpectedAttribute {
                    path: path.clone(),
                    name: extra.clone(),
                });
            }
            w(rmp::encode::write_map_len(out, len32(attrs.len())?))?;
            for (k, aty) in attrs {
                w(rmp::encode::write_str(out, k))?;
                path.0.push(PathStep::Attribute(k.clone()));
                write(out, m.get(k).unwrap_or(&Value::Null), aty, path, depth + 1)?;
                path.0.pop();
            }
            Ok(())
        }
        (ty, v) => Err(enc_mismatch(path, ty, v)),
    }
}

fn write_dynamic(
    out: &mut Vec<u8>,
    v: &Value,
    concrete: &Type,
    path: &mut AttributePath,
    depth: usize,
) -> Result<(), MsgpackError> {
    match v {
        Value::Null => w(rmp::encode::write_nil(out)),
        Value::Unknown => write(out, v, concrete, path, depth),
        _ => {
            w(rmp::encode::write_array_len(out, 2))?;
            w(rmp::encode::write_bin(out, &concrete.to_json_bytes()))?;
            write(out, v, concrete, path, depth + 1)
        }
    }
}

/// The type a value most plausibly has, for values of `dynamic` attributes
/// that a resource built without a `Value::Dynamic` wrapper.
pub fn infer_type(v: &Value) -> Type {
    match v {
        Value::Null | Value::Unknown => Type::Dynamic,
        Value::Bool(_) => Type::Bool,
        Value::Number(_) => Type::Number,
        Value::String(_) => Type::String,
        Value::List(items) => Type::list(first_type(items)),
        Value::Set(items) => Type::set(first_type(items)),
        Value::Tuple(items) => Type::Tuple(items.iter().map(infer_type).collect()),
        Value::Map(m) => Type::map(first_type(m.values())),
        Value::Object(m) => Type::Object(m.iter().map(|(k, v)| (k.clone(), infer_type(v))).collect()),
        Value::Dynamic(t, _) => t.clone(),
    }
}

fn first_type<'a>(items: impl IntoIterator<Item = &'a Value>) -> Type {
    items
        .into_iter()
        .map(infer_type)
        .find(|t| *t != Type::Dynamic)
        .unwrap_or(Type::String)
}
