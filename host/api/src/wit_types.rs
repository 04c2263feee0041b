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
