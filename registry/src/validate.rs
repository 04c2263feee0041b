//! What a published blob must be: a WebAssembly component (not a core
//! module) of bounded size, whose WIT world decodes and whose imports the
//! platform provides.

use serde::{Deserialize, Serialize};
use wit_parser::decoding::{DecodedWasm, decode};
use wit_parser::{WorldItem, WorldKey};

/// Largest component accepted, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 32 * 1024 * 1024;

/// The WIT world of a component: what it imports and exports, by
/// interface name with package version (`wasi:keyvalue/store@0.2.0-draft`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorldSummary {
    /// Imported interfaces and functions.
    pub imports: Vec<String>,
    /// Exported interfaces and functions.
    pub exports: Vec<String>,
}

/// Why a blob was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Too large.
    #[error("component is {size} bytes; at most {MAX_COMPONENT_BYTES} are accepted")]
    TooLarge {
        /// Its size.
        size: usize,
    },
    /// A core module.
    #[error(
        "this is a core WebAssembly module, not a component; build for wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    /// Not WebAssembly.
    #[error("not a WebAssembly component (it does not start with the wasm magic bytes)")]
    NotWasm,
    /// The WIT world could not be read.
    #[error("the component's WIT world cannot be decoded: {0}")]
    Undecodable(String),
    /// The component imports what the platform does not provide.
    #[error("the component imports what the platform does not provide: {}", missing.join(", "))]
    MissingImports {
        /// The unprovided imports.
        missing: Vec<String>,
    },
    /// The component exports nothing a department could call.
    #[error("the component exports no interface or function")]
    NoExports,
}

/// Reads a component's world, refusing anything that is not a component.
pub fn inspect(bytes: &[u8]) -> Result<WorldSummary, ValidationError> {
    if bytes.len() > MAX_COMPONENT_BYTES {
        return Err(ValidationError::TooLarge { size: bytes.len() });
    }
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => return Err(ValidationError::CoreModule),
        Some([0, b'a', b's', b'm', ..]) => {}
        _ => return Err(ValidationError::NotWasm),
    }
    let (resolve, world) = match decode(bytes) {
        Ok(DecodedWasm::Component(resolve, world)) => (resolve, world),
        Ok(DecodedWasm::WitPackage(..)) => {
            return Err(ValidationError::Undecodable(
                "this is a WIT package, not a component".into(),
            ));
        }
        Err(e) => return Err(ValidationError::Undecodable(format!("{e:#}"))),
    };
    let world = &resolve.worlds[world];
    let names = |items: &wit_parser::IndexMap<WorldKey, WorldItem>| -> Vec<String> {
        let mut names: Vec<String> = items
            .iter()
            .filter_map(|(key, item)| match item {
                // An interface of types only (a capability's `types`) needs
                // nothing linked; the host cannot lack it.
                WorldItem::Interface { id, .. } if resolve.interfaces[*id].functions.is_empty() => {
                    None
                }
                WorldItem::Interface { id, .. } => Some(
                    resolve
                        .id_of(*id)
                        .unwrap_or_else(|| resolve.name_world_key(key)),
                ),
                WorldItem::Function(f) => Some(f.name.clone()),
                WorldItem::Type { .. } => None,
            })
            .collect();
        names.sort();
        names
    };
    Ok(WorldSummary {
        imports: names(&world.imports),
        exports: names(&world.exports),
    })
}

/// Splits `ns:pkg/iface@1.2.3` into the name and its version.
fn split_version(name: &str) -> (&str, Option<semver::Version>) {
    match name.rsplit_once('@') {
        Some((base, version)) => (base, semver::Version::parse(version).ok()),
        None => (name, None),
    }
}

/// Whether an import of version `wanted` is met by `provided`, as wasmtime
/// links them: the same release, or a newer compatible one (same major, or
/// same minor below 1.0); pre-releases only exactly.
fn compatible(wanted: &Option<semver::Version>, provided: &Option<semver::Version>) -> bool {
    match (wanted, provided) {
        (None, None) => true,
        (Some(w), Some(p)) if !w.pre.is_empty() || !p.pre.is_empty() => w == p,
        (Some(w), Some(p)) if w.major == 0 => p.major == 0 && p.minor == w.minor && p >= w,
        (Some(w), Some(p)) => p.major == w.major && p >= w,
        _ => false,
    }
}

/// Checks a world against what the platform provides and returns the
/// imports it lacks.
pub fn missing_imports(world: &WorldSummary, provided: &[String]) -> Vec<String> {
    world
        .imports
        .iter()
        .filter(|import| {
            let (name, version) = split_version(import);
            !provided.iter().any(|p| {
                let (provided_name, provided_version) = split_version(p);
                provided_name == name && compatible(&version, &provided_version)
            })
        })
        .cloned()
        .collect()
}

/// Inspects `bytes` and checks its imports against `provided`.
pub fn validate(bytes: &[u8], provided: &[String]) -> Result<WorldSummary, ValidationError> {
    let world = inspect(bytes)?;
    if world.exports.is_empty() {
        return Err(ValidationError::NoExports);
    }
    let missing = missing_imports(&world, provided);
    if !missing.is_empty() {
        return Err(ValidationError::MissingImports { missing });
    }
    Ok(world)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_matched_as_wasmtime_links_them() {
        let provided = vec![
            "wasi:io/streams@0.2.12".to_owned(),
            "wasi:keyvalue/store@0.2.0-draft".to_owned(),
            "zhongtai:platform/context@1.0.0".to_owned(),
        ];
        let world = |imports: &[&str]| WorldSummary {
            imports: imports.iter().map(|s| s.to_string()).collect(),
            exports: vec!["x".into()],
        };
        assert!(
            missing_imports(
                &world(&["wasi:io/streams@0.2.0", "wasi:io/streams@0.2.12"]),
                &provided
            )
            .is_empty()
        );
        assert!(
            missing_imports(&world(&["wasi:keyvalue/store@0.2.0-draft"]), &provided).is_empty()
        );
        assert_eq!(
            missing_imports(&world(&["wasi:io/streams@0.3.0"]), &provided),
            ["wasi:io/streams@0.3.0"]
        );
        assert_eq!(
            missing_imports(&world(&["wasi:keyvalue/store@0.2.0-draft2"]), &provided),
            ["wasi:keyvalue/store@0.2.0-draft2"]
        );
        assert_eq!(
            missing_imports(&world(&["zhongtai:platform/context@1.1.0"]), &provided),
            ["zhongtai:platform/context@1.1.0"]
        );
        assert_eq!(
            missing_imports(&world(&["wasi:http/handler@0.2.0"]), &provided),
            ["wasi:http/handler@0.2.0"]
        );
    }

    #[test]
    fn non_components_are_refused() {
        assert_eq!(
            inspect(b"\0asm\x01\0\0\0"),
            Err(ValidationError::CoreModule)
        );
        assert_eq!(inspect(b"hello"), Err(ValidationError::NotWasm));
        assert!(matches!(
            inspect(b"\0asm\x0d\0\x01\0garbage"),
            Err(ValidationError::Undecodable(_))
        ));
    }
}
