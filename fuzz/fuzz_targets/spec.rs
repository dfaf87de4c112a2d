//! Spec parsing, validation and rendering on arbitrary input: never a panic, never a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

use deployer_render as render;
use deployer_spec as spec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = spec::parse(text, "fuzz.yaml") {
        // An env of its own, an ephemeral one, one attached to the shared load balancer.
        for (ephemeral, shared_slot) in [(false, None), (true, None), (true, Some(48))] {
            let options = render::Options {
                ephemeral,
                shared_slot,
            };
            if let Ok(template) = render::app(&spec, options) {
                let yaml = template.to_string(render::Format::Yaml);
                // What we print must read back as the same template.
                let (node, diags) = spec::yaml::parse(&yaml);
                assert!(diags.is_empty(), "rendered YAML does not parse: {diags:?}");
                assert_eq!(node.map(|n| n.to_json()), Some(template.0));
            }
        }
        if spec.alb.is_some() {
            render::shared::template(&spec, 2);
        }
    }
});
