//! Resource identity (protocol 6.9, Terraform 1.12+): a small versioned object that names
//! the remote object a resource manages, stored beside its state, so `import` blocks can
//! say `identity = { … }` instead of an opaque ID.

use crate::pb::tfplugin6 as pb;
use crate::value::{Type, Value};

/// One attribute of an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityAttribute {
    /// Its name in `identity = { name = … }`.
    pub name: &'static str,
    /// Its type.
    pub ty: Type,
    /// Whether an `import` block must give it.
    pub required_for_import: bool,
    /// What it is, for people (Markdown).
    pub description: &'static str,
}

/// The identity schema of a resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySchema {
    /// Versioned apart from the resource schema.
    pub version: i64,
    /// Its attributes.
    pub attributes: Vec<IdentityAttribute>,
}

impl IdentitySchema {
    /// The object type of identity data.
    pub fn value_type(&self) -> Type {
        Type::object(self.attributes.iter().map(|a| (a.name, a.ty.clone())))
    }

    pub(crate) fn to_proto(&self) -> pb::ResourceIdentitySchema {
        pb::ResourceIdentitySchema {
            version: self.version,
            identity_attributes: self
                .attributes
                .iter()
                .map(|a| pb::resource_identity_schema::IdentityAttribute {
                    name: a.name.to_owned(),
                    r#type: a.ty.to_json_bytes(),
                    required_for_import: a.required_for_import,
                    optional_for_import: !a.required_for_import,
                    description: a.description.to_owned(),
                })
                .collect(),
        }
    }
}

/// Whether `v` holds no unknown anywhere (identity data must be wholly known to be sent).
pub(crate) fn wholly_known(v: &Value) -> bool {
    crate::plan::first_unknown(v).is_none()
}
