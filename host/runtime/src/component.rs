//! A loaded component: compiled code, its prepared instance and a catalog of
//! the functions it exports, with their WIT types.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre};

use crate::error::CallError;
use crate::platform::HostState;
use crate::values::describe_type;

/// One exported function: where to find it and its signature.
#[derive(Clone)]
pub struct ExportedFunction {
    pub(crate) index: ComponentExportIndex,
    /// Parameters by name, in order.
    pub params: Vec<(String, Type)>,
    /// Result types (zero or one for WIT functions).
    pub results: Vec<Type>,
}

impl fmt::Debug for ExportedFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.signature())
    }
}

impl ExportedFunction {
    /// The signature in WIT syntax, e.g. `func(token: string) -> result<claims, error>`.
    pub fn signature(&self) -> String {
        let params: Vec<_> = self
            .params
            .iter()
            .map(|(name, ty)| format!("{name}: {}", describe_type(ty)))
            .collect();
        let mut text = format!("func({})", params.join(", "));
        if let Some(result) = self.results.first() {
            text.push_str(" -> ");
            text.push_str(&describe_type(result));
        }
        text
    }
}

/// The functions of one exported interface (or of the component's root,
/// named "").
#[derive(Debug, Clone, Default)]
pub struct ExportedInterface {
    /// Functions by name.
    pub functions: BTreeMap<String, ExportedFunction>,
}

/// A component ready to be instantiated, once per call.
#[derive(Clone)]
pub struct LoadedComponent {
    pub(crate) inner: Arc<LoadedInner>,
}

pub(crate) struct LoadedInner {
    pub(crate) digest: String,
    pub(crate) package: Arc<str>,
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) interfaces: BTreeMap<String, ExportedInterface>,
    pub(crate) from_cache: bool,
}

impl fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("package", &self.package())
            .field("digest", &self.digest())
            .finish_non_exhaustive()
    }
}

impl LoadedComponent {
    /// The sha256 of the component's bytes, as 64 hex digits.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// The package whose state this component uses, e.g. `zhongtai:auth`.
    pub fn package(&self) -> &str {
        &self.inner.package
    }

    /// Whether the compiled code came from the on-disk cache.
    pub fn was_cached(&self) -> bool {
        self.inner.from_cache
    }

    /// Exported interfaces by full name (`zhongtai:auth/authn@1.0.0`).
    pub fn interfaces(&self) -> &BTreeMap<String, ExportedInterface> {
        &self.inner.interfaces
    }

    /// Finds an exported function the way calls do (`authn` or the full
    /// interface name); returns `interface.function` and its signature.
    pub fn function(
        &self,
        interface: &str,
        function: &str,
    ) -> Result<(String, &ExportedFunction), CallError> {
        let interfaces = self.interfaces();
        let (interface_name, exported) =
            find_interface(interfaces, interface).ok_or_else(|| CallError::UnknownInterface {
                interface: interface.to_owned(),
                available: interfaces
                    .keys()
                    .map(|k| if k.is_empty() { "(root)" } else { k.as_str() })
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        let export =
            exported
                .functions
                .get(function)
                .ok_or_else(|| CallError::UnknownFunction {
                    interface: interface_name.to_owned(),
                    function: function.to_owned(),
                    available: exported
                        .functions
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
        let name = if interface_name.is_empty() {
            function.to_owned()
        } else {
            format!("{interface_name}.{function}")
        };
        Ok((name, export))
    }
}

/// Lists the functions `component` exports, at the root and one interface deep.
pub(crate) fn catalog(
    engine: &Engine,
    component: &Component,
) -> BTreeMap<String, ExportedInterface> {
    let mut interfaces: BTreeMap<String, ExportedInterface> = BTreeMap::new();
    let ty = component.component_type();
    for (name, export) in ty.exports(engine) {
        match export.ty {
            ComponentItem::ComponentFunc(func) => {
                if let Some(index) = component.get_export_index(None, name) {
                    interfaces
                        .entry(String::new())
                        .or_default()
                        .functions
                        .insert(name.to_owned(), describe(index, &func));
                }
            }
            ComponentItem::ComponentInstance(instance) => {
                let Some(instance_index) = component.get_export_index(None, name) else {
                    continue;
                };
                let entry = interfaces.entry(name.to_owned()).or_default();
                for (function, item) in instance.exports(engine) {
                    if let ComponentItem::ComponentFunc(func) = item.ty
                        && let Some(index) =
                            component.get_export_index(Some(&instance_index), function)
                    {
                        entry
                            .functions
                            .insert(function.to_owned(), describe(index, &func));
                    }
                }
            }
            _ => {}
        }
    }
    interfaces
}

fn describe(
    index: ComponentExportIndex,
    func: &wasmtime::component::types::ComponentFunc,
) -> ExportedFunction {
    ExportedFunction {
        index,
        params: func
            .params()
            .map(|(name, ty)| (name.to_owned(), ty))
            .collect(),
        results: func.results().collect(),
    }
}

/// The package of the first exported interface: `zhongtai:auth/authn@1.0.0`
/// gives `zhongtai:auth`.
pub(crate) fn package_of(interfaces: &BTreeMap<String, ExportedInterface>) -> Option<String> {
    interfaces
        .keys()
        .find_map(|name| name.split_once('/').map(|(package, _)| package.to_owned()))
}

/// Finds `interface` among the exports: by full name, by name without
/// version, or by the bare interface name when only one interface has it.
pub(crate) fn find_interface<'a>(
    interfaces: &'a BTreeMap<String, ExportedInterface>,
    interface: &str,
) -> Option<(&'a str, &'a ExportedInterface)> {
    if let Some((name, found)) = interfaces.get_key_value(interface) {
        return Some((name, found));
    }
    let unversioned = |name: &str| name.split('@').next().unwrap_or(name).to_owned();
    let bare = |name: &str| {
        let without_version = unversioned(name);
        without_version
            .rsplit_once('/')
            .map_or(without_version.clone(), |(_, bare)| bare.to_owned())
    };
    let mut matches = interfaces
        .iter()
        .filter(|(name, _)| unversioned(name) == interface || bare(name) == interface);
    match (matches.next(), matches.next()) {
        (Some((name, found)), None) => Some((name, found)),
        _ => None,
    }
}
