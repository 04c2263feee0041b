//! WIT values into JSON, by the contract in the module above.

use serde_json::{Map, Number, Value as Json};
use wasmtime::component::Val;

/// A WIT value with no JSON form, such as a resource handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: a {kind} has no JSON form")]
pub struct UnrepresentableValue {
    /// Where in the value.
    pub path: String,
    /// What kind of value it was.
    pub kind: &'static str,
}

impl UnrepresentableValue {
    /// A `kind` of value with no JSON form, at the top of the value.
    fn of(kind: &'static str) -> Self {
        Self {
            path: String::new(),
            kind,
        }
    }
}

/// Converts a WIT value into JSON.
pub fn val_to_json(val: &Val) -> Result<Json, UnrepresentableValue> {
    let at = |segment: String| {
        move |mut e: UnrepresentableValue| {
            e.path.insert_str(0, &segment);
            e
        }
    };
    Ok(match val {
        Val::Bool(b) => Json::Bool(*b),
        Val::S8(v) => Json::from(*v),
        Val::U8(v) => Json::from(*v),
        Val::S16(v) => Json::from(*v),
        Val::U16(v) => Json::from(*v),
        Val::S32(v) => Json::from(*v),
        Val::U32(v) => Json::from(*v),
        Val::S64(v) => Json::from(*v),
        Val::U64(v) => Json::from(*v),
        Val::Float32(v) => Number::from_f64(f64::from(*v)).map_or(Json::Null, Json::Number),
        Val::Float64(v) => Number::from_f64(*v).map_or(Json::Null, Json::Number),
        Val::Char(c) => Json::String(c.to_string()),
        Val::String(s) => Json::String(s.clone()),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| val_to_json(v).map_err(at(format!("[{i}]"))))
                .collect::<Result<_, _>>()?,
        ),
        Val::Map(entries) => {
            let mut object = Map::with_capacity(entries.len());
            for (key, value) in entries {
                let key = map_key_text(key)?;
                let value = val_to_json(value).map_err(at(format!(".{key}")))?;
                object.insert(key, value);
            }
            Json::Object(object)
        }
        Val::Record(fields) => {
            let mut object = Map::with_capacity(fields.len());
            for (name, value) in fields {
                object.insert(
                    name.clone(),
                    val_to_json(value).map_err(at(format!(".{name}")))?,
                );
            }
            Json::Object(object)
        }
        Val::Variant(name, None) | Val::Enum(name) => Json::String(name.clone()),
        Val::Variant(name, Some(payload)) => {
            let mut object = Map::with_capacity(1);
            object.insert(
                name.clone(),
                val_to_json(payload).map_err(at(format!(".{name}")))?,
            );
            Json::Object(object)
        }
        Val::Flags(names) => Json::Array(names.iter().cloned().map(Json::String).collect()),
        Val::Option(None) => Json::Null,
        // An option inside an option: `some(x)` of the outer is
        // `{"some": x}`, so that `some(none)` differs from `none`.
        Val::Option(Some(value)) if matches!(**value, Val::Option(_)) => {
            serde_json::json!({ "some": val_to_json(value)? })
        }
        Val::Option(Some(value)) => val_to_json(value)?,
        Val::Result(result) => {
            let (name, payload) = match result {
                Ok(payload) => ("ok", payload),
                Err(payload) => ("err", payload),
            };
            let payload = match payload {
                Some(value) => val_to_json(value).map_err(at(format!(".{name}")))?,
                None => Json::Null,
            };
            let mut object = Map::with_capacity(1);
            object.insert(name.to_owned(), payload);
            Json::Object(object)
        }
        Val::Resource(_) => return Err(UnrepresentableValue::of("resource")),
        Val::Future(_) => return Err(UnrepresentableValue::of("future")),
        Val::Stream(_) => return Err(UnrepresentableValue::of("stream")),
        Val::ErrorContext(_) => return Err(UnrepresentableValue::of("error-context")),
    })
}

/// The object key a map key is written as.
pub fn map_key_text(key: &Val) -> Result<String, UnrepresentableValue> {
    Ok(match key {
        Val::String(text) => text.clone(),
        Val::Char(c) => c.to_string(),
        Val::Bool(b) => b.to_string(),
        Val::S8(v) => v.to_string(),
        Val::U8(v) => v.to_string(),
        Val::S16(v) => v.to_string(),
        Val::U16(v) => v.to_string(),
        Val::S32(v) => v.to_string(),
        Val::U32(v) => v.to_string(),
        Val::S64(v) => v.to_string(),
        Val::U64(v) => v.to_string(),
        Val::Enum(name) => name.clone(),
        _ => return Err(UnrepresentableValue::of("map key of this type")),
    })
}
