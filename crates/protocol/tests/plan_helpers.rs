//! Plan helpers resources compose: computed attributes become unknown,
//! use-state-for-unknown keeps prior values, requires-replace reports only
//! changed paths, unknowns are found at depth.

use selfhosted_protocol::diagnostics::AttributePath;
use selfhosted_protocol::plan;
use selfhosted_protocol::schema::{Attribute, Block};
use selfhosted_protocol::value::{Type, Value};

fn block() -> Block {
    Block::new()
        .attribute(Attribute::new("id", Type::String).computed())
        .attribute(Attribute::new("name", Type::String).required())
        .attribute(Attribute::new("port", Type::Number).optional().computed())
        .attribute(Attribute::new("out", Type::String).computed())
}

#[test]
fn computed_attributes_not_in_config_become_unknown() {
    let config = Value::object([
        ("name", "n".into()),
        ("port", 80i64.into()),
        ("id", Value::Null),
        ("out", Value::Null),
    ]);
    let mut planned = config.clone();
    plan::mark_computed_unknown(&block(), &config, &mut planned);
    assert!(planned.get("id").expect("id").is_unknown());
    assert!(planned.get("out").expect("out").is_unknown());
    assert_eq!(
        planned.get("port").and_then(Value::as_i64),
        Some(80),
        "configured optional+computed kept"
    );
    assert_eq!(planned.get("name").and_then(Value::as_str), Some("n"));
}

#[test]
fn use_state_for_unknown_copies_prior_values_only_where_unknown() {
    let prior = Value::object([("id", "old-id".into()), ("out", "old-out".into())]);
    let mut planned = Value::object([("id", Value::Unknown), ("out", Value::Unknown)]);
    plan::use_state_for_unknown(&mut planned, &prior, &[AttributePath::root("id")]);
    assert_eq!(planned.get("id").and_then(Value::as_str), Some("old-id"));
    assert!(planned.get("out").expect("out").is_unknown());

    // On create there is nothing to keep.
    let mut planned = Value::object([("id", Value::Unknown)]);
    plan::use_state_for_unknown(&mut planned, &Value::Null, &[AttributePath::root("id")]);
    assert!(planned.get("id").expect("id").is_unknown());
}

#[test]
fn changed_paths_report_only_what_changed() {
    let prior = Value::object([("a", "1".into()), ("b", "2".into())]);
    let planned = Value::object([("a", "1".into()), ("b", "3".into())]);
    let paths = [AttributePath::root("a"), AttributePath::root("b")];
    assert_eq!(
        plan::changed_paths(&prior, &planned, &paths),
        vec![AttributePath::root("b")]
    );
    assert!(
        plan::changed_paths(&Value::Null, &planned, &paths).is_empty(),
        "create replaces nothing"
    );
    let unknown = Value::object([("a", Value::Unknown), ("b", "2".into())]);
    assert_eq!(
        plan::changed_paths(&prior, &unknown, &paths),
        vec![AttributePath::root("a")]
    );
}

#[test]
fn first_unknown_finds_the_path() {
    let v = Value::object([("x", Value::List(vec!["a".into(), Value::map([("k", Value::Unknown)])]))]);
    assert_eq!(
        plan::first_unknown(&v),
        Some(AttributePath::root("x").index(1).key("k"))
    );
    assert_eq!(plan::first_unknown(&Value::object([("x", "a".into())])), None);
}

#[test]
fn write_only_detection() {
    assert!(!plan::has_write_only(&block()));
    let b = block().attribute(Attribute::new("pw", Type::String).optional().write_only());
    assert!(plan::has_write_only(&b));
}
