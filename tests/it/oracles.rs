//! Every template deployer renders passes oracles we did not write: cfn-lint with zero findings,
//! and checkov with only the skips listed (each with a reason) in tests/oracles/checkov-skips.txt.

use crate::common;

use std::process::Command;

use deployer::render::{self, Format, Options};

/// Writes every template the test specs render, in every variant, into a fresh directory.
fn render_all() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: String, template: render::Template| {
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            template.to_string(Format::Yaml),
        )
        .unwrap();
    };
    write("bootstrap".into(), render::bootstrap::template());
    for path in common::good_specs() {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let spec = common::load(&path);
        write(
            name.clone(),
            render::app(&spec, Options::default()).unwrap(),
        );
        write(
            format!("{name}-ephemeral"),
            render::app(
                &spec,
                Options {
                    ephemeral: true,
                    shared_slot: None,
                },
            )
            .unwrap(),
        );
        // Attached to the shared load balancer (slot 3), and the shared stack itself.
        if spec.alb.is_some() {
            let attached = Options {
                ephemeral: true,
                shared_slot: Some(3),
            };
            if let Ok(template) = render::app(&spec, attached) {
                write(format!("{name}-attached"), template);
            }
            write(
                format!("{name}-shared-alb"),
                render::shared::template(&spec, 1),
            );
        }
        if let Some(protected) = spec.protected_envs.first() {
            let spec = spec.for_env(protected).unwrap();
            write(
                format!("{name}-{protected}"),
                render::app(&spec, Options::default()).unwrap(),
            );
        }
    }
    dir
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn cfn_lint_finds_nothing() {
    let dir = render_all();
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() >= 13, "{files:?}");
    let out = Command::new(common::python_tool("cfn-lint"))
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cfn-lint found problems:\n{}",
        output_text(&out)
    );
}

#[test]
fn checkov_passes_with_only_documented_skips() {
    let skips_file = common::root().join("tests/oracles/checkov-skips.txt");
    let skips: Vec<String> = std::fs::read_to_string(&skips_file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (id, reason) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            assert!(
                reason.trim().len() > 10,
                "skip {id} has no reason in {}",
                skips_file.display()
            );
            id.to_string()
        })
        .collect();
    let dir = render_all();
    let out = Command::new(common::python_tool("checkov"))
        .args([
            "--framework",
            "cloudformation",
            "--compact",
            "--quiet",
            "--skip-check",
            &skips.join(","),
        ])
        .arg("-d")
        .arg(dir.path())
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "checkov failed:\n{}",
        output_text(&out)
    );
}

#[test]
fn the_json_schema_accepts_every_good_spec_and_is_committed_current() {
    let schema = deployer::spec::schema();
    let committed = std::fs::read_to_string(common::root().join("deployer.schema.json")).unwrap();
    assert_eq!(
        committed, schema,
        "deployer.schema.json is stale: run `deployer schema > deployer.schema.json`"
    );
    let check = r#"
import json, sys, yaml, jsonschema
def any_tag(loader, suffix, node):  # CloudFormation short forms such as !Sub: keep the value
    if isinstance(node, yaml.ScalarNode): return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode): return loader.construct_sequence(node)
    return loader.construct_mapping(node)
yaml.SafeLoader.add_multi_constructor("!", any_tag)
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
bad = 0
for path in sys.argv[2:]:
    for error in validator.iter_errors(yaml.safe_load(open(path))):
        bad += 1
        print(f"{path}: {error.json_path}: {error.message}")
sys.exit(1 if bad else 0)
"#;
    let out = Command::new(common::python_tool("python"))
        .arg("-c")
        .arg(check)
        .arg(common::root().join("deployer.schema.json"))
        .args(common::good_specs())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the schema rejects a good spec:\n{}",
        output_text(&out)
    );
}

/// The spec's name rules are stated once (`deployer_spec::names`) and hold the same in the
/// JSON Schema editors check with and in `validate`: the same names fed to both.
#[test]
fn the_schema_and_validate_agree_on_every_name() {
    let names = [
        "a", "notes", "pr-42", "a-b-c", "a1", "a--b", "app-", "-app", "1app", "App", "a_b", "a.b",
        "",
    ];
    let long = ["a".repeat(31), "a".repeat(32), "a".repeat(33)];
    let names: Vec<String> = names
        .iter()
        .map(|n| n.to_string())
        .chain(long.iter().cloned())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut specs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for field in ["app", "env"] {
            let yaml = match field {
                "app" => format!("app: \"{name}\"\n"),
                _ => format!("app: notes\nenv: \"{name}\"\n"),
            };
            let path = dir.path().join(format!("{field}-{i}.yaml"));
            std::fs::write(&path, yaml).unwrap();
            specs.push((field, name.clone(), path));
        }
    }
    let check = r#"
import json, sys, yaml, jsonschema
validator = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))
for path in sys.argv[2:]:
    print("ok" if validator.is_valid(yaml.safe_load(open(path))) else "bad")
"#;
    let out = Command::new(common::python_tool("python"))
        .arg("-c")
        .arg(check)
        .arg(common::root().join("deployer.schema.json"))
        .args(specs.iter().map(|(_, _, p)| p))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let by_schema: Vec<bool> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l == "ok")
        .collect();
    assert_eq!(by_schema.len(), specs.len());
    let mut disagree = Vec::new();
    for ((field, name, path), schema_ok) in specs.iter().zip(by_schema) {
        let validated = Command::new(assert_cmd::cargo::cargo_bin("deployer"))
            .args(["validate", "-s"])
            .arg(path)
            .output()
            .unwrap();
        let validate_ok = validated.status.success();
        if validate_ok != schema_ok {
            disagree.push(format!(
                "{field} `{name}`: schema {schema_ok}, validate {validate_ok}"
            ));
        }
    }
    assert!(disagree.is_empty(), "{disagree:#?}");
}

/// The pre-flight's actions per resource type are handler permissions of that type's
/// CloudFormation resource schema (as cfn-lint ships them), not guesses: asked through the
/// venv's Python, which reads cfn-lint's schema files.
#[test]
fn preflight_actions_come_from_the_resource_schemas() {
    let python = common::python_tool("python");
    use deployer::converge::preflight::{PROPERTY_ACTIONS, RESOURCE_ACTIONS};
    let table: Vec<(String, Vec<String>)> = RESOURCE_ACTIONS
        .iter()
        .map(|t| {
            let actions = t.write.iter().chain(t.delete);
            (t.kind.to_string(), actions.map(|s| s.to_string()).collect())
        })
        .chain(PROPERTY_ACTIONS.iter().map(|p| {
            let actions = p.write.iter().map(|s| s.to_string());
            (p.kind.to_string(), actions.collect())
        }))
        .collect();
    let script = r#"
import json, sys, pathlib, cfnlint
schemas = pathlib.Path(cfnlint.__file__).parent / "data" / "schemas"
providers = json.loads((schemas / "providers" / "us-east-1.json").read_text())
wrong = []
for kind, actions in json.load(sys.stdin):
    schema = json.loads((schemas / "resources" / (providers[kind] + ".json")).read_text())
    handlers = schema.get("handlers", {})
    allowed = set()
    for h in ("create", "update", "delete"):
        allowed |= set(handlers.get(h, {}).get("permissions", []))
    wrong += [f"{kind}: {a}" for a in actions if a not in allowed]
print("\n".join(wrong))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&table).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let wrong = String::from_utf8_lossy(&out.stdout);
    assert!(
        wrong.trim().is_empty(),
        "actions no handler of the type lists:\n{wrong}"
    );
}
