//! JSON into WIT values, driven by the type the component declares.

use serde_json::Value as Json;
use wasmtime::component::Val;
use wasmtime::component::types::{Enum, Flags, Record, ResultType, Type, Variant};

use super::{ValueError, describe_json, describe_type};

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

/// Converts `json` into a value of WIT type `ty`.
pub fn json_to_val(ty: &Type, json: &Json) -> Result<Val, ValueError> {
    let shape = || ValueError::new(describe_type(ty), json);
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
            let items = json.as_array().ok_or_else(shape)?;
            elements(std::iter::repeat(list.ty()), items).map(Val::List)
        }
        Type::FixedLengthList(list) => match json.as_array() {
            Some(items) if items.len() == list.len() as usize => {
                elements(std::iter::repeat(list.ty()), items).map(Val::FixedLengthList)
            }
            _ => Err(shape()),
        },
        Type::Tuple(tuple) => match json.as_array() {
            Some(items) if items.len() == tuple.types().len() => {
                elements(tuple.types(), items).map(Val::Tuple)
            }
            _ => Err(shape()),
        },
        Type::Map(map) => {
            let object = json.as_object().ok_or_else(shape)?;
            object
                .iter()
                .map(|(key, value)| {
                    let at = |e: ValueError| e.at(&format!(".{key}"));
                    let key_val = map_key_val(&map.key(), key).map_err(at)?;
                    let value_val = json_to_val(&map.value(), value).map_err(at)?;
                    Ok((key_val, value_val))
                })
                .collect::<Result<_, _>>()
                .map(Val::Map)
        }
        Type::Record(record) => record_val(record, json.as_object().ok_or_else(shape)?),
        Type::Variant(variant) => variant_val(ty, variant, json),
        Type::Enum(e) => enum_val(e, json).ok_or_else(shape),
        Type::Flags(flags) => flags_val(ty, flags, json.as_array().ok_or_else(shape)?),
        Type::Option(option) if matches!(option.ty(), Type::Option(_)) => match json {
            Json::Null => Ok(Val::Option(None)),
            Json::Object(map) if map.len() == 1 && map.contains_key("some") => {
                let inner = json_to_val(&option.ty(), &map["some"]).map_err(|e| e.at(".some"))?;
                Ok(Val::Option(Some(Box::new(inner))))
            }
            other => Err(ValueError::new(
                format!(
                    "{} (null, or {{\"some\": …}} holding the inner option)",
                    describe_type(ty)
                ),
                other,
            )),
        },
        Type::Option(option) => match json {
            Json::Null => Ok(Val::Option(None)),
            value => Ok(Val::Option(Some(Box::new(json_to_val(
                &option.ty(),
                value,
            )?)))),
        },
        Type::Result(result) => result_val(result, json),
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            Err(ValueError::new(
                format!("{} (which has no JSON form)", describe_type(ty)),
                json,
            ))
        }
    }
}

/// The items of a list or tuple, each of its type; errors name the index.
fn elements(types: impl Iterator<Item = Type>, items: &[Json]) -> Result<Vec<Val>, ValueError> {
    types
        .zip(items)
        .enumerate()
        .map(|(i, (ty, item))| json_to_val(&ty, item).map_err(|e| e.at(&format!("[{i}]"))))
        .collect()
}

/// An enum case given by name.
fn enum_val(e: &Enum, json: &Json) -> Option<Val> {
    json.as_str()
        .filter(|name| e.names().any(|n| n == *name))
        .map(|name| Val::Enum(name.to_owned()))
}

fn record_val(record: &Record, object: &serde_json::Map<String, Json>) -> Result<Val, ValueError> {
    let mut fields = Vec::with_capacity(record.fields().len());
    for field in record.fields() {
        let value = match (object.get(field.name), &field.ty) {
            (Some(value), _) => {
                json_to_val(&field.ty, value).map_err(|e| e.at(&format!(".{}", field.name)))?
            }
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

fn variant_val(ty: &Type, variant: &Variant, json: &Json) -> Result<Val, ValueError> {
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

fn flags_val(ty: &Type, flags: &Flags, items: &[Json]) -> Result<Val, ValueError> {
    let mut set = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(name) if flags.names().any(|n| n == name) && !set.iter().any(|s| s == name) => {
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

fn result_val(result: &ResultType, json: &Json) -> Result<Val, ValueError> {
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
            return Err(ValueError::new(describe_type(&t), &Json::Null).at(&format!(".{name}")));
        }
        (None, Some(p)) => return Err(ValueError::new("null", p).at(&format!(".{name}"))),
    };
    Ok(Val::Result(if name == "ok" {
        Ok(value)
    } else {
        Err(value)
    }))
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

/// Reads a map key of WIT type `ty` from the object key `text`.
pub fn map_key_val(ty: &Type, text: &str) -> Result<Val, ValueError> {
    let as_text = Json::String(text.to_owned());
    let refused = || {
        ValueError::new(
            format!("a map key of type {} (as text)", describe_type(ty)),
            &as_text,
        )
    };
    // Only the decimal form writing produces: no `+`, leading zeros or spaces.
    let number = || -> Result<Json, ValueError> {
        let (value, written) = match text.parse::<i64>() {
            Ok(signed) => (Json::from(signed), signed.to_string()),
            Err(_) => {
                let unsigned = text.parse::<u64>().map_err(|_| refused())?;
                (Json::from(unsigned), unsigned.to_string())
            }
        };
        if written == text {
            Ok(value)
        } else {
            Err(refused())
        }
    };
    match ty {
        Type::String | Type::Char => json_to_val(ty, &as_text).map_err(|_| refused()),
        Type::Bool => match text {
            "true" => Ok(Val::Bool(true)),
            "false" => Ok(Val::Bool(false)),
            _ => Err(refused()),
        },
        Type::S8
        | Type::U8
        | Type::S16
        | Type::U16
        | Type::S32
        | Type::U32
        | Type::S64
        | Type::U64 => json_to_val(ty, &number()?).map_err(|_| refused()),
        Type::Enum(e) => enum_val(e, &as_text).ok_or_else(refused),
        _ => Err(refused()),
    }
}
