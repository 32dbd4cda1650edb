//! Fleet configuration: the shipped example parses and starts; errors name the field.

use tollgate_simfleet::engine::Personality;
use tollgate_simfleet::{FleetConfig, Mode};

#[test]
fn example_config_parses_with_expected_backends() {
    let text = include_str!("../fleet.example.toml");
    let cfg = FleetConfig::from_toml_str(text).expect("example parses");
    let count = |p: Personality| cfg.backends.iter().filter(|b| b.personality == p).count();
    assert_eq!(
        (
            count(Personality::Vllm),
            count(Personality::Sglang),
            count(Personality::Mindie)
        ),
        (4, 2, 2)
    );
    let slow = cfg
        .backends
        .iter()
        .find(|b| b.name == "mindie-1")
        .expect("mindie-1");
    assert!((slow.engine.speed_factor - 0.6).abs() < 1e-9);
    assert!(slow.management_listen.is_some() && slow.metrics_listen.is_some());
    assert!(cfg.backends.iter().all(|b| b.mode == Mode::Model));
}

#[test]
fn unknown_field_error_names_field_and_line() {
    let err = FleetConfig::from_toml_str("[[backends]]\nname = \"a\"\nlisten_addr = \"x\"\n")
        .expect_err("unknown");
    assert!(
        err.contains("listen_addr") && err.contains("line 3"),
        "{err}"
    );
    let err = FleetConfig::from_toml_str("[[backends]]\nname = \"a\"\nengine = { alpha = 1.0 }\n")
        .expect_err("unknown");
    assert!(err.contains("alpha"), "{err}");
}

#[test]
fn semantic_errors_name_the_backend_field() {
    let err = FleetConfig::from_toml_str("[[backends]]\nname = \"a\"\nfaults = \"explode\"\n")
        .expect_err("bad fault");
    assert!(err.contains("backends[0].faults"), "{err}");
    let err = FleetConfig::from_toml_str("[[backends]]\nname = \"a\"\nlisten = \"nowhere\"\n")
        .expect_err("bad addr");
    assert!(err.contains("backends[0].listen"), "{err}");
    let err =
        FleetConfig::from_toml_str("[[backends]]\nname = \"a\"\n[[backends]]\nname = \"a\"\n")
            .expect_err("dup");
    assert!(err.contains("duplicate"), "{err}");
    let err = FleetConfig::from_toml_str("[[backends]]\nname = \"a\"\nfault_probability = 2.0\n")
        .expect_err("p");
    assert!(err.contains("fault_probability"), "{err}");
}

#[test]
fn minimal_config_uses_defaults() {
    let cfg =
        FleetConfig::from_toml_str("[[backends]]\nname = \"a\"\nmode = \"instant\"\n").expect("ok");
    let b = &cfg.backends[0];
    assert_eq!(b.listen, "127.0.0.1:0");
    assert_eq!(b.model, "llama-3-8b");
    assert_eq!(b.instant_events, 64);
    assert_eq!(b.personality, Personality::Vllm);
    assert_eq!(cfg.threads, 1);
}
