//! Inputs the fuzzer (or anyone) found troublesome, replayed through the same checks as
//! `fuzz/fuzz_targets/spec.rs`: parse, validate, render, and read the rendered YAML back.

use crate::common;

#[test]
fn every_saved_input_parses_or_fails_cleanly_and_renders_round_trip() {
    let dir = common::root().join("tests/fuzz-regressions");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let good = common::good_specs();
    for path in &good {
        // A known-good spec that stops parsing or rendering is a regression, not a clean failure.
        let spec = common::load(path);
        deployer::render::app(&spec, deployer::render::Options::default())
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    }
    inputs.extend(good);
    inputs.sort();
    for path in inputs {
        let bytes = std::fs::read(&path).unwrap();
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        if let Ok(spec) = deployer::spec::parse(text, "fuzz.yaml") {
            for (ephemeral, shared_slot) in [(false, None), (true, None), (true, Some(48))] {
                if let Ok(template) = deployer::render::app(
                    &spec,
                    deployer::render::Options {
                        ephemeral,
                        shared_slot,
                    },
                ) {
                    let yaml = template.to_string(deployer::render::Format::Yaml);
                    let (node, diags) = deployer::spec::yaml::parse(&yaml);
                    assert!(
                        diags.is_empty(),
                        "{}: rendered YAML does not parse: {diags:?}",
                        path.display()
                    );
                    assert_eq!(
                        node.map(|n| n.to_json()),
                        Some(template.0),
                        "{}",
                        path.display()
                    );
                }
            }
        }
    }
}
