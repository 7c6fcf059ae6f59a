//! Value codecs: msgpack round trips with null and unknown at every nesting
//! level, refined unknowns and other extension values on input, dynamic
//! values, JSON state decoding, and schema type JSON.

use std::collections::BTreeMap;

use selfhosted_protocol::json::{self, Unexpected};
use selfhosted_protocol::msgpack;
use selfhosted_protocol::value::{Number, Type, Value};

fn round_trip(v: &Value, ty: &Type) -> Value {
    let bytes = msgpack::encode(v, ty).expect("encode");
    msgpack::decode(&bytes, ty).expect("decode")
}

fn every_type() -> Vec<(Type, Value)> {
    vec![
        (Type::Bool, Value::Bool(true)),
        (Type::Number, Value::from(42i64)),
        (Type::Number, Value::from(-7i64)),
        (Type::Number, Value::from(1.5f64)),
        (
            Type::Number,
            Value::Number(Number::Big("123456789012345678901234567890".into())),
        ),
        (Type::String, Value::from("héllo")),
        (Type::list(Type::String), Value::List(vec!["a".into(), "b".into()])),
        (Type::set(Type::Number), Value::Set(vec![1i64.into(), 2i64.into()])),
        (Type::map(Type::Bool), Value::map([("x", Value::Bool(false))])),
        (
            Type::object([("a", Type::String), ("b", Type::Number)]),
            Value::object([("a", "x".into()), ("b", 3i64.into())]),
        ),
        (
            Type::Tuple(vec![Type::String, Type::Bool]),
            Value::Tuple(vec!["t".into(), true.into()]),
        ),
        (
            Type::Dynamic,
            Value::Dynamic(Type::list(Type::Number), Box::new(Value::List(vec![1i64.into()]))),
        ),
    ]
}

/// Wraps `leaf` (of type `leaf_ty`) in every kind of container, so the
/// leaf sits at nesting depth 1, 2 and 3.
fn nestings(leaf_ty: &Type, leaf: &Value) -> Vec<(Type, Value)> {
    let mut out = vec![(leaf_ty.clone(), leaf.clone())];
    for _ in 0..3 {
        let prev = out.last().cloned().expect("previous level");
        let (t, v) = prev;
        out.push((Type::list(t.clone()), Value::List(vec![v.clone()])));
        out.push((Type::set(t.clone()), Value::Set(vec![v.clone()])));
        out.push((Type::map(t.clone()), Value::map([("k", v.clone())])));
        out.push((
            Type::Tuple(vec![Type::String, t.clone()]),
            Value::Tuple(vec!["x".into(), v.clone()]),
        ));
        out.push((
            Type::object([("inner", t.clone()), ("other", Type::String)]),
            Value::object([("inner", v), ("other", Value::Null)]),
        ));
    }
    out
}

#[test]
fn every_type_round_trips_known_null_and_unknown() {
    for (ty, v) in every_type() {
        assert_eq!(round_trip(&v, &ty), v, "known {ty:?}");
        assert_eq!(round_trip(&Value::Null, &ty), Value::Null, "null {ty:?}");
        assert_eq!(round_trip(&Value::Unknown, &ty), Value::Unknown, "unknown {ty:?}");
    }
}

#[test]
fn null_and_unknown_round_trip_at_every_nesting_level() {
    for (leaf_ty, _) in every_type() {
        for leaf in [Value::Null, Value::Unknown] {
            for (ty, v) in nestings(&leaf_ty, &leaf) {
                let back = round_trip(&v, &ty);
                assert_eq!(back, v, "{leaf:?} inside {}", ty.to_json());
                assert_eq!(
                    back.is_known(),
                    !matches!(leaf, Value::Unknown),
                    "is_known inside {}",
                    ty.to_json()
                );
            }
        }
    }
}

#[test]
fn unknown_is_encoded_as_extension_zero() {
    assert_eq!(
        msgpack::encode(&Value::Unknown, &Type::String).expect("encode"),
        vec![0xd4, 0x00, 0x00]
    );
    assert_eq!(
        msgpack::encode(&Value::Null, &Type::String).expect("encode"),
        vec![0xc0]
    );
}

#[test]
fn refined_unknowns_and_other_extensions_decode_as_unknown() {
    // ext 12 with refinements {1: false (not null), 2: "pre" (prefix)}
    let payload = [0x82, 0x01, 0xc2, 0x02, 0xa3, b'p', b'r', b'e'];
    let mut refined = vec![0xc7, payload.len() as u8, 12];
    refined.extend_from_slice(&payload);
    assert_eq!(
        msgpack::decode(&refined, &Type::String).expect("refined"),
        Value::Unknown
    );

    // A refined unknown list with length bounds {5: 1, 6: 3}, inside an object.
    let lp = [0x82, 0x05, 0x01, 0x06, 0x03];
    let mut obj = vec![0x81, 0xa1, b'l', 0xc7, lp.len() as u8, 12];
    obj.extend_from_slice(&lp);
    let ty = Type::object([("l", Type::list(Type::String))]);
    let v = msgpack::decode(&obj, &ty).expect("object");
    assert!(v.get("l").expect("l").is_unknown());
    assert!(!v.is_known());

    // Any other extension code, any length, is also unknown.
    for bytes in [vec![0xd4, 0x05, 0xff], vec![0xd5, 0x00, 1, 2], vec![0xc7, 0x00, 0x00]] {
        assert_eq!(
            msgpack::decode(&bytes, &Type::Number).expect("ext"),
            Value::Unknown,
            "{bytes:x?}"
        );
    }
}

#[test]
fn dynamic_values_carry_their_type() {
    let ty = Type::object([("d", Type::Dynamic)]);
    let inner = Value::map([("a", Value::from("b"))]);
    let v = Value::object([("d", Value::Dynamic(Type::map(Type::String), Box::new(inner.clone())))]);
    let bytes = msgpack::encode(&v, &ty).expect("encode");
    // The dynamic value is [type JSON as binary, value].
    let needle = br#"["map","string"]"#;
    assert!(
        bytes.windows(needle.len()).any(|w| w == needle),
        "type JSON inside {bytes:x?}"
    );
    let back = msgpack::decode(&bytes, &ty).expect("decode");
    assert_eq!(back, v);
    assert_eq!(
        back.get("d").and_then(|d| d.get("a")).and_then(Value::as_str),
        Some("b")
    );

    // Plain values for a dynamic attribute get an inferred type.
    let plain = Value::object([("d", Value::List(vec![1i64.into(), 2i64.into()]))]);
    let back = msgpack::decode(&msgpack::encode(&plain, &ty).expect("encode"), &ty).expect("decode");
    assert_eq!(back.get("d").and_then(Value::as_list).map(<[Value]>::len), Some(2));

    // Null and unknown dynamic values are not wrapped.
    for leaf in [Value::Null, Value::Unknown] {
        let v = Value::object([("d", leaf.clone())]);
        assert_eq!(round_trip(&v, &ty).get("d"), Some(&leaf));
    }
}

#[test]
fn numbers_decode_from_every_msgpack_form() {
    let cases: Vec<(Vec<u8>, Value)> = vec![
        (vec![0x05], 5i64.into()),
        (vec![0xff], (-1i64).into()),
        (vec![0xcc, 0xc8], 200i64.into()),
        (vec![0xd1, 0xfc, 0x18], (-1000i64).into()),
        (
            vec![0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            Value::Number(Number::Big("18446744073709551615".into())),
        ),
        (vec![0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0], 1.5f64.into()),
        (vec![0xca, 0x40, 0x00, 0x00, 0x00], 2i64.into()),
        (vec![0xa4, b'1', b'.', b'2', b'5'], 1.25f64.into()),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            msgpack::decode(&bytes, &Type::Number).expect("number"),
            want,
            "{bytes:x?}"
        );
    }
    assert_eq!(Value::from(3.0f64).as_i64(), Some(3));
}

#[test]
fn objects_fill_missing_attributes_with_null_and_reject_extras() {
    let ty = Type::object([("a", Type::String), ("b", Type::String)]);
    let bytes = msgpack::encode(&Value::object([("a", "x".into())]), &ty).expect("encode");
    let back = msgpack::decode(&bytes, &ty).expect("decode");
    assert_eq!(back.get("b"), Some(&Value::Null));

    let err = msgpack::encode(&Value::object([("zzz", "x".into())]), &ty).expect_err("extra attribute");
    assert!(err.to_string().contains("zzz"), "{err}");

    let err = msgpack::encode(&Value::object([("a", 1i64.into())]), &ty).expect_err("wrong type");
    assert!(err.to_string().contains("a"), "{err}");
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let ty = Type::object([("a", Type::list(Type::String))]);
    for bytes in [
        vec![],
        vec![0xc1],
        vec![0x81],
        vec![0x81, 0xa1, b'a', 0xdd, 0xff, 0xff, 0xff, 0xff],
        vec![0x81, 0xa1, b'a', 0x91, 0x05],
        vec![0x81, 0xa1, b'q', 0xc0],
        vec![0xc0, 0xc0],
        vec![0xa2, 0xff, 0xfe],
    ] {
        assert!(msgpack::decode(&bytes, &ty).is_err(), "{bytes:x?} should fail");
    }
    // Deep nesting is refused rather than overflowing the stack.
    let mut deep = vec![0x91; 100_000];
    deep.push(0xc0);
    let mut t = Type::String;
    for _ in 0..300 {
        t = Type::list(t);
    }
    assert!(msgpack::decode(&deep, &t).is_err());
}

#[test]
fn sets_compare_without_order() {
    assert_eq!(
        Value::Set(vec![1i64.into(), 2i64.into()]),
        Value::Set(vec![2i64.into(), 1i64.into()])
    );
    assert_ne!(
        Value::List(vec![1i64.into(), 2i64.into()]),
        Value::List(vec![2i64.into(), 1i64.into()])
    );
}

#[test]
fn schema_type_json_round_trips() {
    let cases = [
        (Type::String, r#""string""#),
        (Type::Number, r#""number""#),
        (Type::Bool, r#""bool""#),
        (Type::Dynamic, r#""dynamic""#),
        (Type::list(Type::String), r#"["list","string"]"#),
        (Type::set(Type::Number), r#"["set","number"]"#),
        (Type::map(Type::list(Type::Bool)), r#"["map",["list","bool"]]"#),
        (
            Type::object([("a", Type::String), ("b", Type::set(Type::String))]),
            r#"["object",{"a":"string","b":["set","string"]}]"#,
        ),
        (
            Type::Tuple(vec![Type::String, Type::Number]),
            r#"["tuple",["string","number"]]"#,
        ),
    ];
    for (ty, json) in cases {
        assert_eq!(String::from_utf8(ty.to_json_bytes()).expect("utf8"), json);
        assert_eq!(Type::from_json_bytes(json.as_bytes()).expect("parse"), ty);
    }
    // Optional-attribute markers (third element) are accepted.
    assert_eq!(
        Type::from_json_bytes(br#"["object",{"a":"string"},["a"]]"#).expect("optional attrs"),
        Type::object([("a", Type::String)])
    );
    for bad in [r#""strin""#, r#"["list"]"#, r#"["object","x"]"#, "7", "{"] {
        assert!(Type::from_json_bytes(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn json_state_decodes_with_the_schema_type() {
    let ty = Type::object([
        ("s", Type::String),
        ("n", Type::Number),
        ("l", Type::list(Type::Number)),
        ("m", Type::map(Type::String)),
        ("o", Type::object([("x", Type::Bool)])),
        ("t", Type::Tuple(vec![Type::String])),
        ("d", Type::Dynamic),
        ("missing", Type::String),
    ]);
    let raw = br#"{"s":"v","n":1.5,"l":[1,2],"m":{"k":"v"},"o":{"x":true},"t":["a"],
                   "d":{"type":["list","string"],"value":["z"]},"old":"dropped"}"#;
    let v = json::decode(raw, &ty, Unexpected::Drop).expect("decode");
    assert_eq!(v.get("s").and_then(Value::as_str), Some("v"));
    assert_eq!(v.get("n").and_then(Value::as_f64), Some(1.5));
    assert_eq!(v.get("l").and_then(Value::as_list).map(<[Value]>::len), Some(2));
    assert_eq!(v.get("o").and_then(|o| o.get("x")).and_then(Value::as_bool), Some(true));
    assert_eq!(
        v.get("d").and_then(Value::as_list).and_then(|l| l[0].as_str()),
        Some("z")
    );
    assert_eq!(v.get("missing"), Some(&Value::Null));
    assert!(v.get("old").is_none());
    assert!(json::decode(raw, &ty, Unexpected::Reject).is_err());

    // JSON and msgpack agree.
    let bytes = msgpack::encode(&v, &ty).expect("encode");
    assert_eq!(msgpack::decode(&bytes, &ty).expect("decode"), v);
    let again = json::from_json(&json::to_json(&v, &ty), &ty, Unexpected::Reject).expect("json round trip");
    assert_eq!(again, v);
}

#[test]
fn paths_reach_nested_values() {
    use selfhosted_protocol::diagnostics::AttributePath;
    let mut v = Value::object([(
        "a",
        Value::List(vec![Value::object([("m", Value::map([("k", Value::from("v"))]))])]),
    )]);
    let p = AttributePath::root("a").index(0).attr("m").key("k");
    assert_eq!(v.get_path(&p).and_then(Value::as_str), Some("v"));
    assert!(v.set_path(&p, Value::Unknown));
    assert!(!v.is_known());
    assert_eq!(p.to_string(), "a[0].m[\"k\"]");
    assert!(v.get_path(&AttributePath::root("a").index(5)).is_none());
    let _ = BTreeMap::<String, Value>::new();
}
