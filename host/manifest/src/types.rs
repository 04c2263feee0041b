//! Types of request bodies: a WIT type as its JSON form sees it.
//!
//! A service may declare the type of its request body (`body = "…"`): a
//! record the manifest defines under `[types.<name>]`, or a type a
//! component's interface exports (`<alias>.<interface>.<type>`, read from
//! the component's WIT at deploy). The host checks each body against it
//! before any step runs ([`WitType::check`]), following the JSON ⇄ WIT
//! mapping the components' arguments use, and describes it in the
//! department's OpenAPI document ([`WitType::schema`]).
//!
//! ```toml
//! [types.official]
//! id = "string"
//! name = "string"
//! roles = "list<string>"
//! note = "option<string>"   # may be left out
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Value as Json, json};

/// A WIT type with a JSON form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitType {
    /// `bool`.
    Bool,
    /// An integer type: its WIT name and range.
    Integer {
        /// `s8` … `u64`.
        name: &'static str,
        /// Smallest value.
        min: i128,
        /// Largest value.
        max: i128,
    },
    /// `f32` or `f64`.
    Float(&'static str),
    /// `char`.
    Char,
    /// `string`.
    String,
    /// `list<T>`.
    List(Box<WitType>),
    /// `tuple<…>`.
    Tuple(Vec<WitType>),
    /// `map<K, V>`: an object; keys by the text rule of the JSON mapping.
    Map(Box<WitType>, Box<WitType>),
    /// `option<T>`.
    Option(Box<WitType>),
    /// `result<T, E>`.
    Result {
        /// The `ok` payload.
        ok: Option<Box<WitType>>,
        /// The `err` payload.
        err: Option<Box<WitType>>,
    },
    /// A named record.
    Record {
        /// Its name.
        name: String,
        /// Fields in order.
        fields: Vec<(String, WitType)>,
    },
    /// A named variant.
    Variant {
        /// Its name.
        name: String,
        /// Cases in order, with their payloads.
        cases: Vec<(String, Option<WitType>)>,
    },
    /// A named enum.
    Enum {
        /// Its name.
        name: String,
        /// Cases in order.
        cases: Vec<String>,
    },
    /// Named flags.
    Flags {
        /// Its name.
        name: String,
        /// Flag names in order.
        flags: Vec<String>,
    },
}

/// Where a value differs from its type: the path below the body
/// (`.fields[2].name`), what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// `.field[1]…`, empty at the top.
    pub path: String,
    /// The type expected there.
    pub expected: String,
    /// What was given.
    pub found: String,
}

impl Mismatch {
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

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`body{}`: expected {}, found {}",
            self.path, self.expected, self.found
        )
    }
}

/// A JSON value as error messages show it.
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

const INTEGERS: &[(&str, i128, i128)] = &[
    ("s8", i8::MIN as i128, i8::MAX as i128),
    ("u8", 0, u8::MAX as i128),
    ("s16", i16::MIN as i128, i16::MAX as i128),
    ("u16", 0, u16::MAX as i128),
    ("s32", i32::MIN as i128, i32::MAX as i128),
    ("u32", 0, u32::MAX as i128),
    ("s64", i64::MIN as i128, i64::MAX as i128),
    ("u64", 0, u64::MAX as i128),
];

impl WitType {
    /// The integer type named `name` (`s8` … `u64`).
    pub fn integer(name: &str) -> Option<Self> {
        INTEGERS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|&(name, min, max)| WitType::Integer { name, min, max })
    }

    /// Parses a type as a manifest writes it: `string`, `bool`, `u32`,
    /// `f64`, `char`, `list<T>`, `option<T>`, `tuple<A, B>`,
    /// `map<string, T>`, or the name of a type in `named`.
    pub fn parse(text: &str, named: &BTreeMap<String, WitType>) -> Result<Self, String> {
        let text = text.trim();
        if let Some((outer, inner)) = text
            .strip_suffix('>')
            .and_then(|t| t.split_once('<'))
            .map(|(o, i)| (o.trim(), i))
        {
            let arguments = split_arguments(inner)
                .into_iter()
                .map(|a| Self::parse(a, named))
                .collect::<Result<Vec<_>, _>>()?;
            let one = |arguments: Vec<WitType>| -> Result<Box<WitType>, String> {
                match <[WitType; 1]>::try_from(arguments) {
                    Ok([t]) => Ok(Box::new(t)),
                    Err(_) => Err(format!("`{text}`: {outer}<…> takes one type")),
                }
            };
            return match outer {
                "list" => Ok(WitType::List(one(arguments)?)),
                "option" => Ok(WitType::Option(one(arguments)?)),
                "tuple" if !arguments.is_empty() => Ok(WitType::Tuple(arguments)),
                "map" => match <[WitType; 2]>::try_from(arguments) {
                    Ok([key, value]) if key.is_map_key() => {
                        Ok(WitType::Map(Box::new(key), Box::new(value)))
                    }
                    _ => Err(format!(
                        "`{text}`: map<K, V> takes a key type (string, char, bool, an integer or an enum) and a value type"
                    )),
                },
                _ => Err(format!(
                    "`{text}`: unknown type; types are bool, s8…s64, u8…u64, f32, f64, char, string, list<T>, option<T>, tuple<…>, map<K, V> or a name under [types]"
                )),
            };
        }
        match text {
            "bool" => Ok(WitType::Bool),
            "f32" | "f64" => Ok(WitType::Float(if text == "f32" { "f32" } else { "f64" })),
            "char" => Ok(WitType::Char),
            "string" => Ok(WitType::String),
            _ => Self::integer(text)
                .or_else(|| named.get(text).cloned())
                .ok_or_else(|| {
                    format!(
                        "`{text}` is not a type: types are bool, s8…s64, u8…u64, f32, f64, char, string, list<T>, option<T>, tuple<…>, map<K, V> or a name under [types]"
                    )
                }),
        }
    }

    fn is_map_key(&self) -> bool {
        matches!(
            self,
            WitType::String
                | WitType::Char
                | WitType::Bool
                | WitType::Integer { .. }
                | WitType::Enum { .. }
        )
    }

    /// The fields of a record type, `None` for any other.
    pub fn record_fields(&self) -> Option<&[(String, WitType)]> {
        match self {
            WitType::Record { fields, .. } => Some(fields),
            _ => None,
        }
    }

    /// Checks `value` against the type and returns it as the steps see
    /// it: a left-out `option` field of a record is there as `null`, and a
    /// case without payload written `{"case": null}` is `"case"`.
    pub fn check(&self, value: &Json) -> Result<Json, Mismatch> {
        let mismatch = || Mismatch::new(self.to_string(), value);
        match self {
            WitType::Bool => value
                .is_boolean()
                .then(|| value.clone())
                .ok_or_else(mismatch),
            WitType::Integer { name, min, max } => {
                let n = value
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| value.as_u64().map(i128::from));
                match n {
                    Some(n) if (*min..=*max).contains(&n) => Ok(value.clone()),
                    _ => Err(Mismatch::new(
                        format!("{name} (an integer from {min} to {max})"),
                        value,
                    )),
                }
            }
            WitType::Float(_) => value
                .is_number()
                .then(|| value.clone())
                .ok_or_else(mismatch),
            WitType::Char => match value.as_str().map(|s| s.chars().count()) {
                Some(1) => Ok(value.clone()),
                _ => Err(Mismatch::new("char (a one-character string)", value)),
            },
            WitType::String => value
                .is_string()
                .then(|| value.clone())
                .ok_or_else(mismatch),
            WitType::List(item) => {
                let items = value.as_array().ok_or_else(mismatch)?;
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| item.check(v).map_err(|e| e.at(&format!("[{i}]"))))
                    .collect::<Result<_, _>>()
                    .map(Json::Array)
            }
            WitType::Tuple(types) => match value.as_array() {
                Some(items) if items.len() == types.len() => types
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (t, v))| t.check(v).map_err(|e| e.at(&format!("[{i}]"))))
                    .collect::<Result<_, _>>()
                    .map(Json::Array),
                _ => Err(mismatch()),
            },
            WitType::Map(key, item) => {
                let object = value.as_object().ok_or_else(mismatch)?;
                let mut out = serde_json::Map::new();
                for (k, v) in object {
                    key.check_key(k).map_err(|e| e.at(&format!(".{k}")))?;
                    out.insert(
                        k.clone(),
                        item.check(v).map_err(|e| e.at(&format!(".{k}")))?,
                    );
                }
                Ok(Json::Object(out))
            }
            // An option inside an option: `some(x)` is `{"some": x}`.
            WitType::Option(inner) if matches!(**inner, WitType::Option(_)) => match value {
                Json::Null => Ok(Json::Null),
                Json::Object(map) if map.len() == 1 && map.contains_key("some") => {
                    let checked = inner.check(&map["some"]).map_err(|e| e.at(".some"))?;
                    Ok(json!({ "some": checked }))
                }
                _ => Err(Mismatch::new(
                    format!("{self} (null, or {{\"some\": …}} holding the inner option)"),
                    value,
                )),
            },
            WitType::Option(inner) => match value {
                Json::Null => Ok(Json::Null),
                present => inner.check(present),
            },
            WitType::Result { ok, err } => {
                let (case, payload) = match single_case(value) {
                    Some((case @ ("ok" | "err"), payload)) => (case, payload),
                    _ => return Err(Mismatch::new(r#"{"ok": …} or {"err": …}"#, value)),
                };
                let side = if case == "ok" { ok } else { err };
                let checked = check_payload(side.as_deref(), payload, case)?;
                Ok(json!({ case: checked }))
            }
            WitType::Record { fields, .. } => {
                let object = value.as_object().ok_or_else(mismatch)?;
                if let Some(unknown) = object
                    .keys()
                    .find(|k| !fields.iter().any(|(name, _)| name == *k))
                {
                    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(Mismatch {
                        path: format!(".{unknown}"),
                        expected: format!(
                            "no field by this name (the fields are: {})",
                            names.join(", ")
                        ),
                        found: describe_json(&object[unknown]),
                    });
                }
                let mut out = serde_json::Map::new();
                for (name, ty) in fields {
                    let checked = match (object.get(name), ty) {
                        (Some(v), _) => ty.check(v).map_err(|e| e.at(&format!(".{name}")))?,
                        (None, WitType::Option(_)) => Json::Null,
                        (None, _) => {
                            return Err(Mismatch {
                                path: format!(".{name}"),
                                expected: ty.to_string(),
                                found: "nothing (the field is missing)".into(),
                            });
                        }
                    };
                    out.insert(name.clone(), checked);
                }
                Ok(Json::Object(out))
            }
            WitType::Variant { cases, .. } => {
                let (case, payload) = single_case(value).ok_or_else(mismatch)?;
                let (_, ty) = cases
                    .iter()
                    .find(|(name, _)| name == case)
                    .ok_or_else(mismatch)?;
                match check_payload(ty.as_ref(), payload, case)? {
                    Json::Null if ty.is_none() => Ok(Json::String(case.to_owned())),
                    checked => Ok(json!({ case: checked })),
                }
            }
            WitType::Enum { cases, .. } => match value.as_str() {
                Some(case) if cases.iter().any(|c| c == case) => Ok(value.clone()),
                _ => Err(mismatch()),
            },
            WitType::Flags { flags, .. } => {
                let items = value.as_array().ok_or_else(mismatch)?;
                let mut seen: Vec<&str> = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(flag) if flags.iter().any(|f| f == flag) && !seen.contains(&flag) => {
                            seen.push(flag);
                        }
                        _ => {
                            return Err(Mismatch::new(
                                format!("a distinct flag name of {self}"),
                                item,
                            )
                            .at(&format!("[{i}]")));
                        }
                    }
                }
                Ok(value.clone())
            }
        }
    }

    /// Checks an object key as the key type's text form.
    fn check_key(&self, key: &str) -> Result<(), Mismatch> {
        let as_text = Json::String(key.to_owned());
        let fits = match self {
            WitType::String => true,
            WitType::Char => key.chars().count() == 1,
            WitType::Bool => key == "true" || key == "false",
            WitType::Integer { min, max, .. } => key
                .parse::<i128>()
                .is_ok_and(|n| (*min..=*max).contains(&n) && n.to_string() == key),
            WitType::Enum { cases, .. } => cases.iter().any(|c| c == key),
            _ => false,
        };
        if fits {
            Ok(())
        } else {
            Err(Mismatch::new(format!("a key of type {self}"), &as_text))
        }
    }

    /// The type as a JSON Schema (2020-12, as OpenAPI 3.1 uses): exactly
    /// the values [`WitType::check`] accepts.
    pub fn schema(&self) -> Json {
        match self {
            WitType::Bool => json!({"type": "boolean"}),
            WitType::Integer { min, max, .. } => {
                json!({"type": "integer", "minimum": number(*min), "maximum": number(*max)})
            }
            WitType::Float(_) => json!({"type": "number"}),
            WitType::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
            WitType::String => json!({"type": "string"}),
            WitType::List(item) => json!({"type": "array", "items": item.schema()}),
            WitType::Tuple(types) => json!({
                "type": "array",
                "prefixItems": types.iter().map(WitType::schema).collect::<Vec<_>>(),
                "items": false,
                "minItems": types.len(),
            }),
            WitType::Map(key, value) => {
                let mut schema = json!({"type": "object", "additionalProperties": value.schema()});
                if let Some(names) = key.key_schema() {
                    schema["propertyNames"] = names;
                }
                schema
            }
            WitType::Option(inner) if matches!(**inner, WitType::Option(_)) => json!({
                "anyOf": [{"type": "null"}, case_schema("some", Some(inner))],
            }),
            WitType::Option(inner) => json!({"anyOf": [{"type": "null"}, inner.schema()]}),
            WitType::Result { ok, err } => json!({
                "oneOf": [
                    case_schema("ok", ok.as_deref()),
                    case_schema("err", err.as_deref()),
                ]
            }),
            WitType::Record { name, fields } => {
                let properties: serde_json::Map<String, Json> = fields
                    .iter()
                    .map(|(field, ty)| (field.clone(), ty.schema()))
                    .collect();
                let required: Vec<&str> = fields
                    .iter()
                    .filter(|(_, ty)| !matches!(ty, WitType::Option(_)))
                    .map(|(field, _)| field.as_str())
                    .collect();
                json!({
                    "title": name,
                    "type": "object",
                    "properties": properties,
                    "required": required,
                    "additionalProperties": false,
                })
            }
            WitType::Variant { name, cases } => {
                let mut one_of = Vec::new();
                for (case, ty) in cases {
                    match ty {
                        None => {
                            one_of.push(json!({"const": case}));
                            one_of.push(case_schema(case, None));
                        }
                        Some(ty) => one_of.push(case_schema(case, Some(ty))),
                    }
                }
                json!({"title": name, "oneOf": one_of})
            }
            WitType::Enum { name, cases } => {
                json!({"title": name, "type": "string", "enum": cases})
            }
            WitType::Flags { name, flags } => json!({
                "title": name,
                "type": "array",
                "items": {"type": "string", "enum": flags},
                "uniqueItems": true,
            }),
        }
    }

    /// The schema of a map key's text, where it can say more than "a
    /// string".
    fn key_schema(&self) -> Option<Json> {
        match self {
            WitType::Char => Some(json!({"minLength": 1, "maxLength": 1})),
            WitType::Bool => Some(json!({"enum": ["true", "false"]})),
            WitType::Integer { min, .. } if *min < 0 => {
                Some(json!({"pattern": "^(0|-?[1-9][0-9]*)$"}))
            }
            WitType::Integer { .. } => Some(json!({"pattern": "^(0|[1-9][0-9]*)$"})),
            WitType::Enum { cases, .. } => Some(json!({"enum": cases})),
            _ => None,
        }
    }
}

/// `min`/`max` as a JSON number.
fn number(n: i128) -> Json {
    match (i64::try_from(n), u64::try_from(n)) {
        (Ok(i), _) => json!(i),
        (_, Ok(u)) => json!(u),
        _ => json!(n as f64),
    }
}

/// `{"<case>": payload}` as a schema; a case without payload holds `null`.
fn case_schema(case: &str, payload: Option<&WitType>) -> Json {
    let payload = payload.map_or_else(|| json!({"type": "null"}), WitType::schema);
    json!({
        "type": "object",
        "properties": { case: payload },
        "required": [case],
        "additionalProperties": false,
    })
}

/// The payload of `case` checked against `ty` (none: it must be absent or
/// `null`).
fn check_payload(
    ty: Option<&WitType>,
    payload: Option<&Json>,
    case: &str,
) -> Result<Json, Mismatch> {
    match (ty, payload) {
        (None, None | Some(Json::Null)) => Ok(Json::Null),
        (Some(ty), Some(p)) => ty.check(p).map_err(|e| e.at(&format!(".{case}"))),
        (Some(ty), None) => Err(Mismatch {
            path: format!(".{case}"),
            expected: ty.to_string(),
            found: "nothing (the case needs a payload)".into(),
        }),
        (None, Some(p)) => Err(Mismatch::new("no payload", p).at(&format!(".{case}"))),
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

/// Splits `a, list<b, c>, d` at its top-level commas.
fn split_arguments(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

impl fmt::Display for WitType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |types: &[WitType]| {
            types
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            WitType::Bool => f.write_str("bool"),
            WitType::Integer { name, .. } | WitType::Float(name) => f.write_str(name),
            WitType::Char => f.write_str("char"),
            WitType::String => f.write_str("string"),
            WitType::List(item) => write!(f, "list<{item}>"),
            WitType::Tuple(types) => write!(f, "tuple<{}>", list(types)),
            WitType::Map(key, value) => write!(f, "map<{key}, {value}>"),
            WitType::Option(inner) => write!(f, "option<{inner}>"),
            WitType::Result { ok, err } => {
                let side =
                    |t: &Option<Box<WitType>>| t.as_ref().map_or("_".to_owned(), |t| t.to_string());
                write!(f, "result<{}, {}>", side(ok), side(err))
            }
            WitType::Record { name, .. } => write!(f, "record {name}"),
            WitType::Variant { name, .. } => write!(f, "variant {name}"),
            WitType::Enum { name, .. } => write!(f, "enum {name}"),
            WitType::Flags { name, .. } => write!(f, "flags {name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> WitType {
        let named = BTreeMap::new();
        WitType::Record {
            name: "application".into(),
            fields: vec![
                ("id".into(), WitType::parse("string", &named).unwrap()),
                ("days".into(), WitType::parse("u32", &named).unwrap()),
                (
                    "tags".into(),
                    WitType::parse("list<string>", &named).unwrap(),
                ),
                (
                    "note".into(),
                    WitType::parse("option<string>", &named).unwrap(),
                ),
            ],
        }
    }

    #[test]
    fn a_body_is_checked_and_its_left_out_options_are_null() {
        let checked = record()
            .check(&json!({"tags": ["a"], "days": 30, "id": "x"}))
            .unwrap();
        assert_eq!(
            checked,
            json!({"id": "x", "days": 30, "tags": ["a"], "note": null})
        );
    }

    #[test]
    fn mismatches_name_the_place_the_type_and_what_was_given() {
        let cases = [
            (
                json!({"id": "x", "days": -1, "tags": []}),
                "`body.days`: expected u32 (an integer from 0 to 4294967295), found number -1",
            ),
            (
                json!({"id": "x", "days": 1, "tags": ["a", 2]}),
                "`body.tags[1]`: expected string, found number 2",
            ),
            (
                json!({"id": "x", "tags": []}),
                "`body.days`: expected u32, found nothing (the field is missing)",
            ),
            (
                json!({"id": "x", "days": 1, "tags": [], "extra": true}),
                "`body.extra`: expected no field by this name (the fields are: id, days, tags, note), found boolean true",
            ),
            (
                json!([1]),
                "`body`: expected record application, found array of 1 elements",
            ),
            (
                json!({"id": "x", "days": 1.5, "tags": []}),
                "`body.days`: expected u32 (an integer from 0 to 4294967295), found number 1.5",
            ),
        ];
        for (value, message) in cases {
            assert_eq!(record().check(&value).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn manifest_type_expressions_parse_or_say_what_types_there_are() {
        let mut named = BTreeMap::new();
        named.insert("application".to_owned(), record());
        let parsed = WitType::parse("list<tuple<u8, option<application>>>", &named).unwrap();
        assert_eq!(
            parsed.to_string(),
            "list<tuple<u8, option<record application>>>"
        );
        assert!(WitType::parse("map<string, u64>", &named).is_ok());
        assert!(
            WitType::parse("map<list<u8>, u64>", &named)
                .unwrap_err()
                .contains("key type")
        );
        assert!(
            WitType::parse("strin", &named)
                .unwrap_err()
                .contains("is not a type")
        );
        assert!(
            WitType::parse("list<string, u8>", &named)
                .unwrap_err()
                .contains("one type")
        );
    }

    #[test]
    fn an_option_inside_an_option_says_some_at_the_outer_level() {
        let nested = WitType::parse("option<option<u32>>", &BTreeMap::new()).unwrap();
        for value in [json!(null), json!({"some": null}), json!({"some": 7})] {
            assert_eq!(nested.check(&value).unwrap(), value);
        }
        assert_eq!(
            nested.check(&json!(7)).unwrap_err().to_string(),
            "`body`: expected option<option<u32>> (null, or {\"some\": …} holding the inner option), found number 7"
        );
        assert!(nested.check(&json!({"some": "x"})).unwrap_err().path == ".some");
    }

    #[test]
    fn variants_results_enums_and_flags_follow_the_json_mapping() {
        let variant = WitType::Variant {
            name: "payer".into(),
            cases: vec![
                ("anonymous".into(), None),
                ("person".into(), Some(WitType::String)),
            ],
        };
        assert_eq!(
            variant.check(&json!("anonymous")).unwrap(),
            json!("anonymous")
        );
        assert_eq!(
            variant.check(&json!({"anonymous": null})).unwrap(),
            json!("anonymous")
        );
        assert_eq!(
            variant.check(&json!({"person": "li"})).unwrap(),
            json!({"person": "li"})
        );
        assert!(variant.check(&json!("person")).is_err());
        let result = WitType::Result {
            ok: Some(Box::new(WitType::Bool)),
            err: None,
        };
        assert_eq!(
            result.check(&json!({"err": null})).unwrap(),
            json!({"err": null})
        );
        assert!(result.check(&json!({"ok": 1})).is_err());
        let flags = WitType::Flags {
            name: "f".into(),
            flags: vec!["a".into(), "b".into()],
        };
        assert!(flags.check(&json!(["a", "b"])).is_ok());
        assert!(flags.check(&json!(["a", "a"])).is_err());
    }
}
