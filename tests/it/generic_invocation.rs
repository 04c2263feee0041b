//! The generic call path on a component of a package no host code knows:
//! every WIT shape maps to and from JSON as the README documents, argument
//! mismatches say where and what, and state belongs to the package.

use crate::support;

use crate::support::{assert_golden, context, guest_bytes, load, runtime};
use proptest::prelude::*;
use serde_json::{Value as Json, json};
use zhongtai_runtime::{HostConfig, LoadError, LoadedComponent, Runtime, RuntimeLimits};

fn sample() -> Json {
    json!({
        "name": "长城",
        "tiny": -128,
        "small": 65535,
        "big": 18446744073709551615u64,
        "signed": -9007199254740993i64,
        "ratio": 0.5,
        "initial": "中",
        "on": true,
        "tags": ["a", "b"],
        "color": "green",
        "permissions": ["read", "execute"],
        "shape": {"circle": 1.5},
        "nickname": null,
        "pair": [7, "seven"],
        "outcome": {"err": "nope"},
        "bytes": [0, 255],
    })
}

#[test]
fn every_wit_shape_round_trips_through_json() {
    let (runtime, _dir) = runtime(RuntimeLimits::default(), HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    assert_eq!(sampler.package(), "example:sampler");
    let echoed = runtime
        .call(
            &sampler,
            context("tests"),
            "shapes",
            "echo",
            &json!({ "value": sample() }),
        )
        .unwrap()
        .json;
    assert_eq!(echoed, sample());

    let mut bare_case = sample();
    bare_case["shape"] = json!("point");
    bare_case["outcome"] = json!({"ok": 3});
    bare_case["nickname"] = json!("Great Wall");
    let echoed = runtime
        .call(
            &sampler,
            context("tests"),
            "example:sampler/shapes@0.1.0",
            "echo",
            &json!([bare_case.clone()]),
        )
        .unwrap()
        .json;
    assert_eq!(echoed, bare_case);
}

#[test]
fn an_option_inside_an_option_keeps_some_none_apart_from_none() {
    let (runtime, _dir) = runtime(RuntimeLimits::default(), HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    for value in [
        json!(null),
        json!({"some": null}),
        json!({"some": 0}),
        json!({"some": 4294967295u64}),
    ] {
        let returned = runtime
            .call(
                &sampler,
                context("tests"),
                "shapes",
                "nested",
                &json!({ "value": value }),
            )
            .unwrap()
            .json;
        assert_eq!(returned, value);
    }
}

#[test]
fn a_missing_option_field_reads_as_none() {
    let (runtime, _dir) = runtime(RuntimeLimits::default(), HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    let mut value = sample();
    value.as_object_mut().unwrap().remove("nickname");
    let echoed = runtime
        .call(
            &sampler,
            context("tests"),
            "shapes",
            "echo",
            &json!({ "value": value }),
        )
        .unwrap()
        .json;
    assert_eq!(echoed["nickname"], Json::Null);
}

#[test]
fn mismatched_arguments_name_the_place_the_type_and_what_was_given() {
    let (runtime, _dir) = runtime(RuntimeLimits::default(), HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    let with = |field: &str, value: Json| {
        let mut v = sample();
        v[field] = value;
        json!({ "value": v })
    };
    let cases: Vec<(&str, &str, &str, Json)> = vec![
        ("wrong scalar", "shapes", "add", json!({"a": "two", "b": 3})),
        (
            "fraction for integer",
            "shapes",
            "add",
            json!({"a": 1.5, "b": 3}),
        ),
        (
            "out of range",
            "shapes",
            "add",
            json!({"a": 4294967296u64, "b": 3}),
        ),
        ("missing argument", "shapes", "add", json!({"a": 1})),
        (
            "unknown argument",
            "shapes",
            "add",
            json!({"a": 1, "b": 2, "c": 3}),
        ),
        ("positional count", "shapes", "add", json!([1])),
        ("not an object", "shapes", "add", json!("1 + 2")),
        (
            "nested list element",
            "shapes",
            "echo",
            with("tags", json!(["a", 2])),
        ),
        (
            "unknown enum case",
            "shapes",
            "echo",
            with("color", json!("purple")),
        ),
        (
            "unknown flag",
            "shapes",
            "echo",
            with("permissions", json!(["read", "fly"])),
        ),
        (
            "variant without payload",
            "shapes",
            "echo",
            with("shape", json!("circle")),
        ),
        (
            "variant with extra payload",
            "shapes",
            "echo",
            with("shape", json!({"point": 1})),
        ),
        ("result shape", "shapes", "echo", with("outcome", json!(3))),
        (
            "char too long",
            "shapes",
            "echo",
            with("initial", json!("ab")),
        ),
        ("tuple length", "shapes", "echo", with("pair", json!([1]))),
        (
            "byte out of range",
            "shapes",
            "echo",
            with("bytes", json!([256])),
        ),
        ("unknown record field", "shapes", "echo", {
            let mut v = sample();
            v["colour"] = json!("red");
            json!({ "value": v })
        }),
        (
            "nested option without some",
            "shapes",
            "nested",
            json!({"value": 5}),
        ),
        (
            "nested option, inner value of the wrong type",
            "shapes",
            "nested",
            json!({"value": {"some": "five"}}),
        ),
        ("unknown function", "shapes", "multiply", json!({})),
        ("unknown interface", "geometry", "add", json!({})),
    ];
    let mut report = String::new();
    for (label, interface, function, args) in cases {
        let error = runtime
            .call(&sampler, context("tests"), interface, function, &args)
            .expect_err(label);
        report.push_str(&format!("{label}:\n  {error}\n"));
    }
    assert_golden("argument-errors.txt", &report);
}

/// Calls `antics.count` of `component` as `department`: the new count.
fn count(runtime: &Runtime, component: &LoadedComponent, department: &str) -> Json {
    runtime
        .call(
            component,
            context(department),
            "antics",
            "count",
            &json!({}),
        )
        .unwrap()
        .json
}

#[test]
fn state_belongs_to_the_package_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let runtime =
            support::runtime_in(dir.path(), RuntimeLimits::default(), HostConfig::default());
        let sampler = load(&runtime, "fixture-sampler");
        for expected in 1..=3 {
            assert_eq!(count(&runtime, &sampler, "one-department"), json!(expected));
        }
        // Another department calling the same package shares its state.
        assert_eq!(count(&runtime, &sampler, "other-department"), json!(4));
        // The same code under another package name has state of its own.
        let renamed = runtime
            .load_as(&guest_bytes("fixture-sampler"), Some("example:renamed"))
            .unwrap();
        assert_eq!(count(&runtime, &renamed, "one-department"), json!(1));
    }
    let runtime = support::runtime_in(dir.path(), RuntimeLimits::default(), HostConfig::default());
    let sampler = load(&runtime, "fixture-sampler");
    assert!(
        sampler.was_cached(),
        "the compiled component should come from the cache"
    );
    assert_eq!(count(&runtime, &sampler, "one-department"), json!(5));
}

#[test]
fn core_modules_and_non_wasm_are_refused_with_a_reason() {
    let (runtime, _dir) = runtime(RuntimeLimits::default(), HostConfig::default());
    let core_module = b"\0asm\x01\0\0\0";
    assert!(matches!(
        runtime.load(core_module),
        Err(LoadError::CoreModule)
    ));
    assert!(matches!(
        runtime.load(b"#!/bin/sh\n"),
        Err(LoadError::NotWasm)
    ));
    let mut truncated = guest_bytes("fixture-sampler");
    truncated.truncate(truncated.len() / 2);
    let error = runtime.load(&truncated).unwrap_err();
    assert!(matches!(error, LoadError::Compile(_)), "{error}");
}

fn sample_strategy() -> impl Strategy<Value = Json> {
    let text = "[a-z0-9 中文]{0,12}";
    let exact_f32 = (any::<i16>(), 0u32..8).prop_map(|(m, e)| f64::from(m) / f64::from(1u32 << e));
    (
        (
            text,
            any::<i8>(),
            any::<u16>(),
            any::<u64>(),
            any::<i64>(),
            exact_f32,
            any::<char>(),
            any::<bool>(),
        ),
        (
            proptest::collection::vec(text, 0..4),
            prop_oneof![Just("red"), Just("green"), Just("blue")],
            proptest::sample::subsequence(vec!["read", "write", "execute"], 0..=3),
            prop_oneof![
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(|f| json!({ "circle": f })),
                any::<u32>().prop_map(|n| json!({ "square": n })),
                Just(json!("point")),
            ],
            proptest::option::of(text),
            (any::<u8>(), text),
            prop_oneof![
                any::<u32>().prop_map(|n| json!({"ok": n})),
                text.prop_map(|s| json!({"err": s}))
            ],
            proptest::collection::vec(any::<u8>(), 0..16),
        ),
    )
        .prop_map(
            |(
                (name, tiny, small, big, signed, ratio, initial, on),
                (tags, color, perms, shape, nickname, pair, outcome, bytes),
            )| {
                json!({
                    "name": name, "tiny": tiny, "small": small, "big": big, "signed": signed,
                    "ratio": ratio, "initial": initial.to_string(), "on": on, "tags": tags,
                    "color": color, "permissions": perms, "shape": shape, "nickname": nickname,
                    "pair": [pair.0, pair.1], "outcome": outcome, "bytes": bytes,
                })
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_sample_round_trips_unchanged(value in sample_strategy()) {
        static RUNTIME: std::sync::OnceLock<(zhongtai_runtime::Runtime, tempfile::TempDir, zhongtai_runtime::LoadedComponent)> =
            std::sync::OnceLock::new();
        let (runtime, _, sampler) = RUNTIME.get_or_init(|| {
            let (runtime, dir) = runtime(RuntimeLimits::default(), HostConfig::default());
            let sampler = load(&runtime, "fixture-sampler");
            (runtime, dir, sampler)
        });
        let echoed = runtime
            .call(sampler, context("tests"), "shapes", "echo", &json!({ "value": value.clone() }))
            .unwrap()
            .json;
        prop_assert_eq!(echoed, value);
    }
}
