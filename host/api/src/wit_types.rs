//! Types a component exports, read from the WIT embedded in its binary:
//! what a service's `body = "<alias>.<interface>.<type>"` names.

use wit_parser::decoding::{DecodedWasm, decode};
use wit_parser::{Resolve, Type, TypeDefKind};
use zhongtai_manifest::WitType;

/// Deepest nesting of types followed (WIT types are not recursive; this
/// bounds a hostile binary).
const MAX_DEPTH: usize = 64;

/// The type `name` of interface `interface` in the component `bytes` of
/// `package` (`namespace:name`), as a [`WitType`].
pub fn exported_type(
    bytes: &[u8],
    package: &str,
    interface: &str,
    name: &str,
) -> Result<WitType, String> {
    let resolve = match decode(bytes) {
        Ok(DecodedWasm::Component(resolve, _)) => resolve,
        Ok(DecodedWasm::WitPackage(..)) => {
            return Err("it is a WIT package, not a component".into());
        }
        Err(e) => return Err(format!("its WIT cannot be read: {e:#}")),
    };
    let in_package = |id: wit_parser::InterfaceId| {
        resolve.interfaces[id]
            .package
            .map(|p| &resolve.packages[p].name)
            .is_some_and(|p| format!("{}:{}", p.namespace, p.name) == package)
    };
    let found = resolve
        .interfaces
        .iter()
        .filter(|(id, i)| i.name.as_deref() == Some(interface) && in_package(*id))
        .find_map(|(_, i)| i.types.get(name).copied());
    let Some(id) = found else {
        let interfaces: Vec<String> = resolve
            .interfaces
            .iter()
            .filter(|(id, _)| in_package(*id))
            .filter_map(|(_, i)| {
                // Types an interface `use`s are listed where they are defined.
                let types: Vec<&str> = i
                    .types
                    .iter()
                    .filter(|(_, id)| {
                        !matches!(resolve.types[**id].kind, TypeDefKind::Type(Type::Id(_)))
                    })
                    .map(|(name, _)| name.as_str())
                    .collect();
                let name = i.name.as_deref()?;
                (!types.is_empty()).then(|| format!("{name}.{{{}}}", types.join(", ")))
            })
            .collect();
        return Err(format!(
            "it has no type `{name}` in an interface `{interface}`; its types are {}",
            interfaces.join(", ")
        ));
    };
    convert(&resolve, &Type::Id(id), 0)
}

fn convert(resolve: &Resolve, ty: &Type, depth: usize) -> Result<WitType, String> {
    if depth > MAX_DEPTH {
        return Err("its types are nested too deep".into());
    }
    let next = |ty: &Type| convert(resolve, ty, depth + 1);
    Ok(match ty {
        Type::Bool => WitType::Bool,
        Type::U8 => integer("u8"),
        Type::U16 => integer("u16"),
        Type::U32 => integer("u32"),
        Type::U64 => integer("u64"),
        Type::S8 => integer("s8"),
        Type::S16 => integer("s16"),
        Type::S32 => integer("s32"),
        Type::S64 => integer("s64"),
        Type::F32 => WitType::Float("f32"),
        Type::F64 => WitType::Float("f64"),
        Type::Char => WitType::Char,
        Type::String => WitType::String,
        Type::ErrorContext => return Err("error-context has no JSON form".into()),
        Type::Id(id) => {
            let def = &resolve.types[*id];
            let name = def.name.clone().unwrap_or_else(|| "anonymous".into());
            match &def.kind {
                TypeDefKind::Type(inner) => next(inner)?,
                TypeDefKind::Record(record) => WitType::Record {
                    name,
                    fields: record
                        .fields
                        .iter()
                        .map(|f| Ok((f.name.clone(), next(&f.ty)?)))
                        .collect::<Result<_, String>>()?,
                },
                TypeDefKind::Variant(variant) => WitType::Variant {
                    name,
                    cases: variant
                        .cases
                        .iter()
                        .map(|c| Ok((c.name.clone(), c.ty.as_ref().map(next).transpose()?)))
                        .collect::<Result<_, String>>()?,
                },
                TypeDefKind::Enum(e) => WitType::Enum {
                    name,
                    cases: e.cases.iter().map(|c| c.name.clone()).collect(),
                },
                TypeDefKind::Flags(flags) => WitType::Flags {
                    name,
                    flags: flags.flags.iter().map(|f| f.name.clone()).collect(),
                },
                TypeDefKind::Tuple(tuple) => {
                    WitType::Tuple(tuple.types.iter().map(next).collect::<Result<_, _>>()?)
                }
                TypeDefKind::Option(inner) => WitType::Option(Box::new(next(inner)?)),
                TypeDefKind::Result(result) => WitType::Result {
                    ok: result.ok.as_ref().map(next).transpose()?.map(Box::new),
                    err: result.err.as_ref().map(next).transpose()?.map(Box::new),
                },
                TypeDefKind::List(item) => WitType::List(Box::new(next(item)?)),
                TypeDefKind::FixedLengthList(_, length) if *length > 1024 => {
                    return Err(format!(
                        "`{name}` is a list of fixed length {length}, longer than a body may be"
                    ));
                }
                TypeDefKind::FixedLengthList(item, length) => {
                    let item = next(item)?;
                    WitType::Tuple(vec![item; *length as usize])
                }
                TypeDefKind::Map(key, value) => {
                    WitType::Map(Box::new(next(key)?), Box::new(next(value)?))
                }
                TypeDefKind::Resource
                | TypeDefKind::Handle(_)
                | TypeDefKind::Future(_)
                | TypeDefKind::Stream(_)
                | TypeDefKind::Unknown => {
                    return Err(format!(
                        "`{name}` is a {}, which has no JSON form",
                        def.kind.as_str()
                    ));
                }
            }
        }
    })
}

fn integer(name: &str) -> WitType {
    WitType::integer(name).expect("a WIT integer type")
}

/// The WIT the component `bytes` exports, as `zhongtai inspect` prints
/// it: each interface of the packages it exports, with its types in full
/// (record fields with their types, variant cases with their payloads,
/// enum cases, flags) and its functions, types named as the WIT names
/// them; and the first exported package's name (`namespace:name`).
pub fn wit_text(bytes: &[u8]) -> Result<(String, String), String> {
    let (resolve, world) = match decode(bytes) {
        Ok(DecodedWasm::Component(resolve, world)) => (resolve, world),
        Ok(DecodedWasm::WitPackage(..)) => {
            return Err("it is a WIT package, not a component".into());
        }
        Err(e) => return Err(format!("its WIT cannot be read: {e:#}")),
    };
    let mut packages = Vec::new();
    for item in resolve.worlds[world].exports.values() {
        if let wit_parser::WorldItem::Interface { id, .. } = item
            && let Some(package) = resolve.interfaces[*id].package
            && !packages.contains(&package)
        {
            packages.push(package);
        }
    }
    let package_name = packages
        .first()
        .map(|p| {
            let name = &resolve.packages[*p].name;
            format!("{}:{}", name.namespace, name.name)
        })
        .unwrap_or_default();
    let mut out = String::new();
    for (id, interface) in resolve.interfaces.iter() {
        if !interface.package.is_some_and(|p| packages.contains(&p)) {
            continue;
        }
        out.push_str(&resolve.id_of(id).unwrap_or_else(|| "(interface)".into()));
        out.push('\n');
        // Types this interface takes from another, by that interface.
        let mut used: Vec<(String, Vec<&str>)> = Vec::new();
        let mut defined = String::new();
        for (name, type_id) in &interface.types {
            let def = &resolve.types[*type_id];
            if let TypeDefKind::Type(Type::Id(other)) = &def.kind
                && let wit_parser::TypeOwner::Interface(from) = resolve.types[*other].owner
                && from != id
            {
                let from = resolve.interfaces[from].name.clone().unwrap_or_default();
                match used.iter_mut().find(|(i, _)| *i == from) {
                    Some((_, names)) => names.push(name),
                    None => used.push((from, vec![name])),
                }
                continue;
            }
            defined.push_str(&type_definition(&resolve, name, &def.kind));
        }
        for (from, names) in &used {
            out.push_str(&format!("  use {from}.{{{}}};\n", names.join(", ")));
        }
        out.push_str(&defined);
        for (name, function) in &interface.functions {
            let params: Vec<String> = function
                .params
                .iter()
                .map(|p| format!("{}: {}", p.name, type_name(&resolve, &p.ty)))
                .collect();
            let result = function
                .result
                .as_ref()
                .map_or(String::new(), |t| format!(" -> {}", type_name(&resolve, t)));
            out.push_str(&format!("  {name}: func({}){result};\n", params.join(", ")));
        }
    }
    Ok((package_name, out))
}

/// A named type's WIT definition, indented under its interface.
fn type_definition(resolve: &Resolve, name: &str, kind: &TypeDefKind) -> String {
    let block = |keyword: &str, items: Vec<String>| {
        if items.is_empty() {
            return format!("  {keyword} {name} {{}}\n");
        }
        let lines: Vec<String> = items.iter().map(|i| format!("    {i},\n")).collect();
        format!("  {keyword} {name} {{\n{}  }}\n", lines.concat())
    };
    match kind {
        TypeDefKind::Record(record) => block(
            "record",
            record
                .fields
                .iter()
                .map(|f| format!("{}: {}", f.name, type_name(resolve, &f.ty)))
                .collect(),
        ),
        TypeDefKind::Variant(variant) => block(
            "variant",
            variant
                .cases
                .iter()
                .map(|c| match &c.ty {
                    Some(ty) => format!("{}({})", c.name, type_name(resolve, ty)),
                    None => c.name.clone(),
                })
                .collect(),
        ),
        TypeDefKind::Enum(e) => block("enum", e.cases.iter().map(|c| c.name.clone()).collect()),
        TypeDefKind::Flags(flags) => block(
            "flags",
            flags.flags.iter().map(|f| f.name.clone()).collect(),
        ),
        TypeDefKind::Resource => format!("  resource {name};\n"),
        TypeDefKind::Type(ty) => format!("  type {name} = {};\n", type_name(resolve, ty)),
        other => format!("  type {name} = {};\n", anonymous(resolve, other)),
    }
}

/// A type as a WIT signature names it.
fn type_name(resolve: &Resolve, ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::U8 => "u8".into(),
        Type::U16 => "u16".into(),
        Type::U32 => "u32".into(),
        Type::U64 => "u64".into(),
        Type::S8 => "s8".into(),
        Type::S16 => "s16".into(),
        Type::S32 => "s32".into(),
        Type::S64 => "s64".into(),
        Type::F32 => "f32".into(),
        Type::F64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::ErrorContext => "error-context".into(),
        Type::Id(id) => {
            let def = &resolve.types[*id];
            match &def.name {
                Some(name) => name.clone(),
                None => anonymous(resolve, &def.kind),
            }
        }
    }
}

/// An unnamed type: `list<T>`, `option<T>`, `result<T, E>`, ….
fn anonymous(resolve: &Resolve, kind: &TypeDefKind) -> String {
    let name = |ty: &Type| type_name(resolve, ty);
    let side = |ty: &Option<Type>| ty.as_ref().map_or("_".to_owned(), name);
    match kind {
        TypeDefKind::List(ty) => format!("list<{}>", name(ty)),
        TypeDefKind::FixedLengthList(ty, n) => format!("list<{}, {n}>", name(ty)),
        TypeDefKind::Option(ty) => format!("option<{}>", name(ty)),
        TypeDefKind::Result(r) => match (&r.ok, &r.err) {
            (None, None) => "result".into(),
            (ok, None) => format!("result<{}>", side(ok)),
            (ok, err) => format!("result<{}, {}>", side(ok), side(err)),
        },
        TypeDefKind::Tuple(t) => format!(
            "tuple<{}>",
            t.types.iter().map(name).collect::<Vec<_>>().join(", ")
        ),
        TypeDefKind::Map(k, v) => format!("map<{}, {}>", name(k), name(v)),
        TypeDefKind::Handle(wit_parser::Handle::Own(id)) => name(&Type::Id(*id)),
        TypeDefKind::Handle(wit_parser::Handle::Borrow(id)) => {
            format!("borrow<{}>", name(&Type::Id(*id)))
        }
        TypeDefKind::Future(ty) => format!("future<{}>", side(ty)),
        TypeDefKind::Stream(ty) => format!("stream<{}>", side(ty)),
        TypeDefKind::Type(ty) => name(ty),
        other => other.as_str().to_owned(),
    }
}
