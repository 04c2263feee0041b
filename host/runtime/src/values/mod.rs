//! JSON ⇄ WIT values, driven by the component's own types.
//!
//! This mapping is a public contract (the README repeats it):
//!
//! | WIT | JSON |
//! |---|---|
//! | `bool` | `true` / `false` |
//! | `s8`…`u64` | a number, range-checked, no fraction |
//! | `f32`, `f64` | a number (NaN and infinities come out as `null`) |
//! | `char` | a one-character string |
//! | `string` | a string |
//! | `list<T>`, `tuple<…>` | an array |
//! | `map<K, V>` | an object; keys as text: strings and chars as they are, integers in decimal, `true`/`false`, enum cases by name |
//! | `record` | an object with the WIT field names; a missing `option` field is `null` |
//! | `variant` | `{"case-name": payload}`, or `"case-name"` when the case has no payload |
//! | `enum` | the case name as a string |
//! | `flags` | an array of the names of the set flags |
//! | `option<T>` | `null` or the value |
//! | `result<T, E>` | `{"ok": …}` or `{"err": …}` (`null` for a missing payload) |
//!
//! Resources, futures and streams have no JSON form and are refused. A
//! mismatch is a [`ValueError`] naming where in the value it is (`claims.roles[2]`),
//! the WIT type expected and what was found.

mod from_json;
mod map_key;
mod to_json;

use serde_json::Value as Json;
use wasmtime::component::types::Type;

pub use from_json::json_to_val;
pub use map_key::{map_key_text, map_key_val};
pub use to_json::{UnrepresentableValue, val_to_json};

/// A JSON value that does not fit the WIT type it was given for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: expected {expected}, found {found}")]
pub struct ValueError {
    /// Where in the value: an argument name then `.field`, `[index]`, `.case`.
    pub path: String,
    /// The WIT type (or shape) that was expected.
    pub expected: String,
    /// What the JSON held.
    pub found: String,
}

impl ValueError {
    pub(crate) fn new(expected: impl Into<String>, found: &Json) -> Self {
        Self {
            path: String::new(),
            expected: expected.into(),
            found: describe_json(found),
        }
    }

    pub(crate) fn at(mut self, segment: &str) -> Self {
        self.path.insert_str(0, segment);
        self
    }
}

/// A short description of a JSON value for error messages.
pub fn describe_json(value: &Json) -> String {
    match value {
        Json::Null => "null".into(),
        Json::Bool(b) => format!("boolean {b}"),
        Json::Number(n) => format!("number {n}"),
        Json::String(s) if s.chars().count() > 40 => {
            format!("string \"{}…\"", s.chars().take(40).collect::<String>())
        }
        Json::String(s) => format!("string {s:?}"),
        Json::Array(items) => format!("array of {} elements", items.len()),
        Json::Object(_) => "object".into(),
    }
}

/// The WIT spelling of a type, for error messages.
pub fn describe_type(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(list) => format!("list<{}>", describe_type(&list.ty())),
        Type::FixedLengthList(list) => {
            format!("list<{}, {}>", describe_type(&list.ty()), list.len())
        }
        Type::Map(map) => format!(
            "map<{}, {}>",
            describe_type(&map.key()),
            describe_type(&map.value())
        ),
        Type::Record(record) => {
            let fields: Vec<_> = record.fields().map(|f| f.name.to_owned()).collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Tuple(tuple) => {
            let types: Vec<_> = tuple.types().map(|t| describe_type(&t)).collect();
            format!("tuple<{}>", types.join(", "))
        }
        Type::Variant(variant) => {
            let cases: Vec<_> = variant.cases().map(|c| c.name.to_owned()).collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", describe_type(&o.ty())),
        Type::Result(r) => format!(
            "result<{}, {}>",
            r.ok().map_or("_".into(), |t| describe_type(&t)),
            r.err().map_or("_".into(), |t| describe_type(&t))
        ),
        Type::Own(_) | Type::Borrow(_) => "resource".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}

/// The case names of a `result`'s error type when it is a variant or enum,
/// e.g. the cases of a capability's `error`.
pub fn error_cases(result: &Type) -> Option<Vec<String>> {
    let Type::Result(result) = result else {
        return None;
    };
    match result.err()? {
        Type::Variant(v) => Some(v.cases().map(|c| c.name.to_owned()).collect()),
        Type::Enum(e) => Some(e.names().map(str::to_owned).collect()),
        _ => None,
    }
}
