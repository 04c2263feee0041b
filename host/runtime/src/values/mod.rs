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
//! Map keys: a JSON object's keys are text, so a `map<K, V>` key is written
//! as text both ways by one rule ([`map_key_text`], [`map_key_val`]), and
//! reading accepts exactly what writing produces, so every map round-trips.
//!
//! Resources, futures and streams have no JSON form and are refused. A
//! mismatch is a [`ValueError`] naming where in the value it is (`claims.roles[2]`),
//! the WIT type expected and what was found.

mod from_json;
mod to_json;

use serde_json::Value as Json;
use wasmtime::component::types::Type;

pub use from_json::{json_to_val, map_key_val};
pub use to_json::{UnrepresentableValue, map_key_text, val_to_json};

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use wasmtime::component::Val;

    fn round_trips(ty: &Type, key: Val) {
        let text = map_key_text(&key).unwrap();
        assert_eq!(map_key_val(ty, &text).unwrap(), key, "{text:?}");
    }

    proptest! {
        #[test]
        fn integer_keys_round_trip(
            a in any::<i8>(), b in any::<u8>(), c in any::<i16>(), d in any::<u16>(),
            e in any::<i32>(), f in any::<u32>(), g in any::<i64>(), h in any::<u64>(),
        ) {
            round_trips(&Type::S8, Val::S8(a));
            round_trips(&Type::U8, Val::U8(b));
            round_trips(&Type::S16, Val::S16(c));
            round_trips(&Type::U16, Val::U16(d));
            round_trips(&Type::S32, Val::S32(e));
            round_trips(&Type::U32, Val::U32(f));
            round_trips(&Type::S64, Val::S64(g));
            round_trips(&Type::U64, Val::U64(h));
        }

        #[test]
        fn text_keys_round_trip(text in ".*", c in any::<char>(), b in any::<bool>()) {
            round_trips(&Type::String, Val::String(text));
            round_trips(&Type::Char, Val::Char(c));
            round_trips(&Type::Bool, Val::Bool(b));
        }
    }

    #[test]
    fn an_enum_key_is_its_case_name_not_json_text() {
        assert_eq!(map_key_text(&Val::Enum("red".into())).unwrap(), "red");
    }

    #[test]
    fn keys_that_writing_never_produces_are_refused() {
        for (ty, text) in [
            (Type::U32, "07"),
            (Type::U32, "+7"),
            (Type::U32, "-1"),
            (Type::U8, "256"),
            (Type::Bool, "True"),
            (Type::Char, "ab"),
            (Type::S64, " 1"),
        ] {
            let error = map_key_val(&ty, text).unwrap_err();
            assert!(error.expected.starts_with("a map key of type"), "{error}");
        }
    }
}
