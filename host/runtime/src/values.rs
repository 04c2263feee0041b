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

use serde_json::{Map, Number, Value as Json};
use wasmtime::component::Val;
use wasmtime::component::types::Type;

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
    fn new(expected: impl Into<String>, found: &Json) -> Self {
        Self {
            path: String::new(),
            expected: expected.into(),
            found: describe_json(found),
        }
    }

    fn at(mut self, segment: &str) -> Self {
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

macro_rules! integer {
    ($json:expr, $ty:ty, $variant:ident, $name:literal) => {{
        let json = $json;
        let value = match json {
            Json::Number(n) => n
                .as_i64()
                .and_then(|i| <$ty>::try_from(i).ok())
                .or_else(|| n.as_u64().and_then(|u| <$ty>::try_from(u).ok())),
            _ => None,
        };
        match value {
            Some(v) => Ok(Val::$variant(v)),
            None => Err(ValueError::new(
                format!(
                    "{} (an integer from {} to {})",
                    $name,
                    <$ty>::MIN,
                    <$ty>::MAX
                ),
                json,
            )),
        }
    }};
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

/// Converts `json` into a value of WIT type `ty`.
pub fn json_to_val(ty: &Type, json: &Json) -> Result<Val, ValueError> {
    match ty {
        Type::Bool => json
            .as_bool()
            .map(Val::Bool)
            .ok_or_else(|| ValueError::new("bool", json)),
        Type::S8 => integer!(json, i8, S8, "s8"),
        Type::U8 => integer!(json, u8, U8, "u8"),
        Type::S16 => integer!(json, i16, S16, "s16"),
        Type::U16 => integer!(json, u16, U16, "u16"),
        Type::S32 => integer!(json, i32, S32, "s32"),
        Type::U32 => integer!(json, u32, U32, "u32"),
        Type::S64 => integer!(json, i64, S64, "s64"),
        Type::U64 => integer!(json, u64, U64, "u64"),
        Type::Float32 => json
            .as_f64()
            .map(|f| Val::Float32(f as f32))
            .ok_or_else(|| ValueError::new("f32", json)),
        Type::Float64 => json
            .as_f64()
            .map(Val::Float64)
            .ok_or_else(|| ValueError::new("f64", json)),
        Type::Char => {
            let mut chars = json.as_str().map(str::chars);
            match chars.as_mut().map(|c| (c.next(), c.next())) {
                Some((Some(c), None)) => Ok(Val::Char(c)),
                _ => Err(ValueError::new("char (a one-character string)", json)),
            }
        }
        Type::String => json
            .as_str()
            .map(|s| Val::String(s.to_owned()))
            .ok_or_else(|| ValueError::new("string", json)),
        Type::List(list) => {
            let items = json
                .as_array()
                .ok_or_else(|| ValueError::new(describe_type(ty), json))?;
            let element = list.ty();
            items
                .iter()
                .enumerate()
                .map(|(i, item)| json_to_val(&element, item).map_err(|e| e.at(&format!("[{i}]"))))
                .collect::<Result<_, _>>()
                .map(Val::List)
        }
        Type::FixedLengthList(list) => {
            let items = json
                .as_array()
                .ok_or_else(|| ValueError::new(describe_type(ty), json))?;
            if items.len() != list.len() as usize {
                return Err(ValueError::new(describe_type(ty), json));
            }
            let element = list.ty();
            items
                .iter()
                .enumerate()
                .map(|(i, item)| json_to_val(&element, item).map_err(|e| e.at(&format!("[{i}]"))))
                .collect::<Result<_, _>>()
                .map(Val::FixedLengthList)
        }
        Type::Map(map) => {
            let object = json
                .as_object()
                .ok_or_else(|| ValueError::new(describe_type(ty), json))?;
            let (key_ty, value_ty) = (map.key(), map.value());
            object
                .iter()
                .map(|(key, value)| {
                    let key_val = json_to_val(&key_ty, &Json::String(key.clone()))
                        .map_err(|e| e.at(&format!(".{key}")))?;
                    let value_val =
                        json_to_val(&value_ty, value).map_err(|e| e.at(&format!(".{key}")))?;
                    Ok((key_val, value_val))
                })
                .collect::<Result<_, _>>()
                .map(Val::Map)
        }
        Type::Record(record) => {
            let object = json
                .as_object()
                .ok_or_else(|| ValueError::new(describe_type(ty), json))?;
            let mut fields = Vec::with_capacity(record.fields().len());
            for field in record.fields() {
                let value = match (object.get(field.name), &field.ty) {
                    (Some(value), _) => json_to_val(&field.ty, value)
                        .map_err(|e| e.at(&format!(".{}", field.name)))?,
                    (None, Type::Option(_)) => Val::Option(None),
                    (None, _) => {
                        return Err(ValueError {
                            path: format!(".{}", field.name),
                            expected: describe_type(&field.ty),
                            found: "nothing (the field is missing)".into(),
                        });
                    }
                };
                fields.push((field.name.to_owned(), value));
            }
            if let Some(unknown) = object
                .keys()
                .find(|k| !record.fields().any(|f| f.name == k.as_str()))
            {
                return Err(ValueError {
                    path: format!(".{unknown}"),
                    expected: format!(
                        "no field by this name (the fields are: {})",
                        record
                            .fields()
                            .map(|f| f.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    found: describe_json(&object[unknown]),
                });
            }
            Ok(Val::Record(fields))
        }
        Type::Tuple(tuple) => {
            let items = json
                .as_array()
                .ok_or_else(|| ValueError::new(describe_type(ty), json))?;
            if items.len() != tuple.types().len() {
                return Err(ValueError::new(describe_type(ty), json));
            }
            tuple
                .types()
                .zip(items)
                .enumerate()
                .map(|(i, (t, item))| json_to_val(&t, item).map_err(|e| e.at(&format!("[{i}]"))))
                .collect::<Result<_, _>>()
                .map(Val::Tuple)
        }
        Type::Variant(variant) => {
            let (name, payload) =
                single_case(json).ok_or_else(|| ValueError::new(describe_type(ty), json))?;
            let case = variant
                .cases()
                .find(|c| c.name == name)
                .ok_or_else(|| ValueError::new(describe_type(ty), json))?;
            let payload = match (case.ty, payload) {
                (None, None | Some(Json::Null)) => None,
                (Some(t), Some(p)) => Some(Box::new(
                    json_to_val(&t, p).map_err(|e| e.at(&format!(".{name}")))?,
                )),
                (Some(t), None) => {
                    return Err(ValueError {
                        path: format!(".{name}"),
                        expected: describe_type(&t),
                        found: "nothing (the case needs a payload)".into(),
                    });
                }
                (None, Some(p)) => {
                    return Err(ValueError::new("no payload", p).at(&format!(".{name}")));
                }
            };
            Ok(Val::Variant(name.to_owned(), payload))
        }
        Type::Enum(e) => match json.as_str() {
            Some(name) if e.names().any(|n| n == name) => Ok(Val::Enum(name.to_owned())),
            _ => Err(ValueError::new(describe_type(ty), json)),
        },
        Type::Flags(flags) => {
            let items = json
                .as_array()
                .ok_or_else(|| ValueError::new(describe_type(ty), json))?;
            let mut set = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(name)
                        if flags.names().any(|n| n == name) && !set.iter().any(|s| s == name) =>
                    {
                        set.push(name.to_owned())
                    }
                    _ => {
                        return Err(ValueError::new(
                            format!("a distinct flag name of {}", describe_type(ty)),
                            item,
                        )
                        .at(&format!("[{i}]")));
                    }
                }
            }
            Ok(Val::Flags(set))
        }
        Type::Option(option) => match json {
            Json::Null => Ok(Val::Option(None)),
            value => Ok(Val::Option(Some(Box::new(json_to_val(
                &option.ty(),
                value,
            )?)))),
        },
        Type::Result(result) => {
            let (name, payload) = match single_case(json) {
                Some((name @ ("ok" | "err"), payload)) => (name, payload),
                _ => return Err(ValueError::new(r#"{"ok": …} or {"err": …}"#, json)),
            };
            let side = if name == "ok" {
                result.ok()
            } else {
                result.err()
            };
            let value = match (side, payload) {
                (None, None | Some(Json::Null)) => None,
                (Some(t), Some(p)) => Some(Box::new(
                    json_to_val(&t, p).map_err(|e| e.at(&format!(".{name}")))?,
                )),
                (Some(t), None) => {
                    return Err(
                        ValueError::new(describe_type(&t), &Json::Null).at(&format!(".{name}"))
                    );
                }
                (None, Some(p)) => return Err(ValueError::new("null", p).at(&format!(".{name}"))),
            };
            Ok(Val::Result(if name == "ok" {
                Ok(value)
            } else {
                Err(value)
            }))
        }
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            Err(ValueError::new(
                format!("{} (which has no JSON form)", describe_type(ty)),
                json,
            ))
        }
    }
}

/// `"name"` or `{"name": payload}`.
fn single_case(json: &Json) -> Option<(&str, Option<&Json>)> {
    match json {
        Json::String(name) => Some((name, None)),
        Json::Object(map) if map.len() == 1 => {
            map.iter().next().map(|(k, v)| (k.as_str(), Some(v)))
        }
        _ => None,
    }
}

/// A WIT value with no JSON form, such as a resource handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: a {kind} has no JSON form")]
pub struct UnrepresentableValue {
    /// Where in the value.
    pub path: String,
    /// What kind of value it was.
    pub kind: &'static str,
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
                let key = match key {
                    Val::String(s) => s.clone(),
                    other => val_to_json(other)?.to_string(),
                };
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
        Val::Resource(_) => {
            return Err(UnrepresentableValue {
                path: String::new(),
                kind: "resource",
            });
        }
        Val::Future(_) => {
            return Err(UnrepresentableValue {
                path: String::new(),
                kind: "future",
            });
        }
        Val::Stream(_) => {
            return Err(UnrepresentableValue {
                path: String::new(),
                kind: "stream",
            });
        }
        Val::ErrorContext(_) => {
            return Err(UnrepresentableValue {
                path: String::new(),
                kind: "error-context",
            });
        }
    })
}
