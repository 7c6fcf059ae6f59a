//! Schemas: what a resource's configuration and state look like — attributes
//! (plain or nested), blocks, and the flags Terraform enforces (required,
//! optional, computed, sensitive, write-only).

use std::collections::BTreeMap;

use crate::pb::tfplugin6 as pb;
use crate::value::Type;

/// A resource schema: the top-level block and its version (bump it when the
/// state layout changes, and upgrade old state in `upgrade_state`).
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Version recorded in state next to each instance.
    pub version: i64,
    /// The top-level block.
    pub block: Block,
}

impl Schema {
    /// A schema of the given version.
    pub fn new(version: i64, block: Block) -> Self {
        Self { version, block }
    }

    /// The object type of a whole instance, for decoding its values.
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }

    pub(crate) fn to_proto(&self) -> pb::Schema {
        pb::Schema {
            version: self.version,
            block: Some(self.block.to_proto(self.version)),
        }
    }
}

/// A block: attributes plus nested block types.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// Attributes, in the order docs should show them.
    pub attributes: Vec<Attribute>,
    /// Nested block types.
    pub blocks: Vec<NestedBlock>,
    /// Markdown description.
    pub description: String,
    /// Whether the whole block is deprecated.
    pub deprecated: bool,
}

impl Block {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an attribute.
    pub fn attribute(mut self, a: Attribute) -> Self {
        self.attributes.push(a);
        self
    }

    /// Adds a nested block type.
    pub fn block(mut self, b: NestedBlock) -> Self {
        self.blocks.push(b);
        self
    }

    /// Sets the Markdown description.
    pub fn description(mut self, d: &str) -> Self {
        self.description = d.to_owned();
        self
    }

    /// Marks the block deprecated.
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }

    /// The object type of the whole block, for decoding its values.
    pub fn value_type(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.value_type()))
            .collect();
        for b in &self.blocks {
            attrs.insert(b.type_name.clone(), b.value_type());
        }
        Type::Object(attrs)
    }

    /// An attribute by name.
    pub fn find_attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// A nested block type by name.
    pub fn find_block(&self, name: &str) -> Option<&NestedBlock> {
        self.blocks.iter().find(|b| b.type_name == name)
    }

    pub(crate) fn to_proto(&self, version: i64) -> pb::schema::Block {
        pb::schema::Block {
            version,
            attributes: self.attributes.iter().map(Attribute::to_proto).collect(),
            block_types: self.blocks.iter().map(NestedBlock::to_proto).collect(),
            description: self.description.clone(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: self.deprecated,
        }
    }
}

/// How the objects of a nested attribute are collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectNesting {
    /// One object.
    Single,
    /// A list of objects.
    List,
    /// A set of objects.
    Set,
    /// A map of objects.
    Map,
}

/// The attributes inside a nested attribute.
#[derive(Debug, Clone)]
pub struct NestedAttributes {
    /// How the objects are collected.
    pub nesting: ObjectNesting,
    /// Attributes of each object.
    pub attributes: Vec<Attribute>,
}

impl NestedAttributes {
    /// The object type of one element.
    pub fn object_type(&self) -> Type {
        Type::Object(
            self.attributes
                .iter()
                .map(|a| (a.name.clone(), a.value_type()))
                .collect(),
        )
    }

    /// The type of the whole attribute value.
    pub fn value_type(&self) -> Type {
        let obj = self.object_type();
        match self.nesting {
            ObjectNesting::Single => obj,
            ObjectNesting::List => Type::list(obj),
            ObjectNesting::Set => Type::set(obj),
            ObjectNesting::Map => Type::map(obj),
        }
    }
}

/// One attribute. Build with [`Attribute::new`] and the flag methods.
#[derive(Debug, Clone)]
pub struct Attribute {
    /// Name in configuration.
    pub name: String,
    /// Type (ignored when `nested` is set).
    pub ty: Type,
    /// Nested attributes, instead of a plain type.
    pub nested: Option<NestedAttributes>,
    /// Markdown description.
    pub description: String,
    /// Must be set in configuration.
    pub required: bool,
    /// May be set in configuration.
    pub optional: bool,
    /// The provider may set it (alone: read-only; with optional: defaulted).
    pub computed: bool,
    /// Terraform hides the value in output.
    pub sensitive: bool,
    /// Accepted in configuration, never stored in plan or state.
    pub write_only: bool,
    /// Set to warn users who still set it.
    pub deprecated: bool,
}

impl Attribute {
    /// An attribute of a plain type; flags default to none (set one of
    /// required, optional, computed).
    pub fn new(name: &str, ty: Type) -> Self {
        Self {
            name: name.to_owned(),
            ty,
            nested: None,
            description: String::new(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecated: false,
        }
    }

    /// An attribute holding nested attributes.
    pub fn nested(name: &str, nesting: ObjectNesting, attributes: Vec<Attribute>) -> Self {
        let nested = NestedAttributes { nesting, attributes };
        let mut a = Self::new(name, nested.value_type());
        a.nested = Some(nested);
        a
    }

    /// Must be set in configuration.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// May be set in configuration.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// The provider sets it.
    pub fn computed(mut self) -> Self {
        self.computed = true;
        self
    }

    /// Hidden in Terraform's output.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Never stored in plan or state (Terraform 1.11+).
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }

    /// Deprecated.
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }

    /// Markdown description.
    pub fn description(mut self, d: &str) -> Self {
        self.description = d.to_owned();
        self
    }

    /// The attribute's value type.
    pub fn value_type(&self) -> Type {
        self.nested
            .as_ref()
            .map_or_else(|| self.ty.clone(), NestedAttributes::value_type)
    }

    pub(crate) fn to_proto(&self) -> pb::schema::Attribute {
        let (ty, nested_type) = match &self.nested {
            Some(n) => (
                Vec::new(),
                Some(pb::schema::Object {
                    attributes: n.attributes.iter().map(Attribute::to_proto).collect(),
                    nesting: match n.nesting {
                        ObjectNesting::Single => pb::schema::object::NestingMode::Single,
                        ObjectNesting::List => pb::schema::object::NestingMode::List,
                        ObjectNesting::Set => pb::schema::object::NestingMode::Set,
                        ObjectNesting::Map => pb::schema::object::NestingMode::Map,
                    } as i32,
                    #[allow(deprecated)]
                    min_items: 0,
                    #[allow(deprecated)]
                    max_items: 0,
                }),
            ),
            None => (self.ty.to_json_bytes(), None),
        };
        pb::schema::Attribute {
            name: self.name.clone(),
            r#type: ty,
            nested_type,
            description: self.description.clone(),
            required: self.required,
            optional: self.optional,
            computed: self.computed,
            sensitive: self.sensitive,
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: self.deprecated,
            write_only: self.write_only,
        }
    }
}

/// How the blocks of a nested block type are collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockNesting {
    /// At most one block; null when absent.
    Single,
    /// An ordered list of blocks.
    List,
    /// A set of blocks.
    Set,
    /// Blocks keyed by their single label.
    Map,
    /// Exactly one block; Terraform fills it in with nulls when absent.
    Group,
}

/// A nested block type.
#[derive(Debug, Clone)]
pub struct NestedBlock {
    /// Block type name in configuration.
    pub type_name: String,
    /// Contents of each block.
    pub block: Block,
    /// How the blocks are collected.
    pub nesting: BlockNesting,
    /// Fewest blocks allowed (list and set only).
    pub min_items: i64,
    /// Most blocks allowed, 0 for no limit (list and set only).
    pub max_items: i64,
}

impl NestedBlock {
    /// A nested block type.
    pub fn new(type_name: &str, nesting: BlockNesting, block: Block) -> Self {
        Self {
            type_name: type_name.to_owned(),
            block,
            nesting,
            min_items: 0,
            max_items: 0,
        }
    }

    /// Sets the allowed number of blocks.
    pub fn items(mut self, min: i64, max: i64) -> Self {
        self.min_items = min;
        self.max_items = max;
        self
    }

    /// The type of the whole block collection.
    pub fn value_type(&self) -> Type {
        let obj = self.block.value_type();
        match self.nesting {
            BlockNesting::Single | BlockNesting::Group => obj,
            BlockNesting::List => Type::list(obj),
            BlockNesting::Set => Type::set(obj),
            BlockNesting::Map => Type::map(obj),
        }
    }

    pub(crate) fn to_proto(&self) -> pb::schema::NestedBlock {
        use pb::schema::nested_block::NestingMode;
        pb::schema::NestedBlock {
            type_name: self.type_name.clone(),
            block: Some(self.block.to_proto(0)),
            nesting: match self.nesting {
                BlockNesting::Single => NestingMode::Single,
                BlockNesting::List => NestingMode::List,
                BlockNesting::Set => NestingMode::Set,
                BlockNesting::Map => NestingMode::Map,
                BlockNesting::Group => NestingMode::Group,
            } as i32,
            min_items: self.min_items,
            max_items: self.max_items,
        }
    }
}
