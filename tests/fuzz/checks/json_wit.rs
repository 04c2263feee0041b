// What the `json_wit` fuzz target checks of one input; included by the
// target and by the corpus replay in `tests/it/fuzz_corpus.rs`.

/// Any JSON is converted to each of `types` or refused with a path, never
/// a panic; and what converts, converted back to JSON and again to WIT,
/// gives the same JSON (the mapping is stable).
pub fn check(types: &[wasmtime::component::types::Type], data: &[u8]) {
    use zhongtai_runtime::values::{json_to_val, val_to_json};
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for ty in types {
        let Ok(val) = json_to_val(ty, &json) else {
            continue;
        };
        let Ok(back) = val_to_json(&val) else {
            continue;
        };
        let again = json_to_val(ty, &back).expect("JSON made from a value converts back");
        assert_eq!(val_to_json(&again).expect("converts again"), back);
    }
}

/// Every parameter type the functions of `component` take.
pub fn parameter_types(
    component: &zhongtai_runtime::LoadedComponent,
) -> Vec<wasmtime::component::types::Type> {
    component
        .interfaces()
        .values()
        .flat_map(|exported| exported.functions.values())
        .flat_map(|function| function.params.iter().map(|(_, ty)| ty.clone()))
        .collect()
}
