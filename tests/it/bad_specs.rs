//! The bad-input corpus: each file in tests/bad-specs/ starts with `# expect: LINE:COL: message`,
//! and `deployer validate` must print exactly that one error and exit 2, without panicking.

use crate::common;

use assert_cmd::Command;

#[test]
fn every_bad_spec_gives_its_exact_error() {
    let dir = common::root().join("tests/bad-specs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 25,
        "the corpus must hold at least 25 specs, found {}",
        files.len()
    );
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let expected = source
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no `# expect:` first line", file.display()));
        let shown = format!(
            "tests/bad-specs/{}",
            file.file_name().unwrap().to_string_lossy()
        );
        let out = Command::cargo_bin("deployer")
            .unwrap()
            .current_dir(common::root())
            .env("NO_COLOR", "1")
            .args(["validate", "-s", &shown])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{shown}: {stderr}");
        assert_eq!(stderr, format!("error: {shown}:{expected}\n"), "{shown}");
        assert!(out.stdout.is_empty(), "{shown}");
    }
}

#[test]
fn every_problem_is_reported_at_once_in_source_order() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("x.yaml");
    std::fs::write(
        &spec,
        "app: Notes\nfunctions:\n  api:\n    path: svc\n    memory: 64\n    timeuot: 5\n    tables: { nope: read }\n",
    )
    .unwrap();
    let out = Command::cargo_bin("deployer")
        .unwrap()
        .env("NO_COLOR", "1")
        .arg("validate")
        .arg("-s")
        .arg(&spec)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let file = spec.display();
    assert_eq!(
        lines,
        [
            format!(
                "error: {file}:1:6: app `Notes` must be a lowercase letter followed by up to 30 lowercase letters, digits or single dashes"
            ),
            format!("{file}:5:13: `memory` must be from 128 to 10240, found 64"),
            format!("{file}:6:5: unknown key `timeuot` in function `api`; did you mean `timeout`?"),
            format!(
                "{file}:7:15: function `api` uses table `nope`, which is not defined under `tables`"
            ),
        ]
    );
}

#[test]
fn a_good_spec_validates() {
    let out = Command::cargo_bin("deployer")
        .unwrap()
        .current_dir(common::root())
        .args(["validate", "-s", "stacks/example.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "stacks/example.yaml: ok (stack notes-dev)\n"
    );
}

#[test]
fn the_only_spec_in_stacks_is_the_default_and_several_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        Command::cargo_bin("deployer")
            .unwrap()
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .arg("validate")
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no `stacks/` directory here"));
    std::fs::create_dir(dir.path().join("stacks")).unwrap();
    std::fs::write(dir.path().join("stacks/a.yaml"), "app: a\n").unwrap();
    assert!(run().status.success());
    std::fs::write(dir.path().join("stacks/b.yaml"), "app: b\n").unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: several specs in `stacks/`; pick one with -s:\n  stacks/a.yaml\n  stacks/b.yaml\n"
    );
}

#[test]
fn env_from_the_command_line_is_validated() {
    let out = Command::cargo_bin("deployer")
        .unwrap()
        .current_dir(common::root())
        .env("NO_COLOR", "1")
        .args(["render", "-s", "stacks/example.yaml", "--env", "Pr_42"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: stacks/example.yaml: environment `Pr_42` must be a lowercase letter followed by up to 31 lowercase letters, digits or single dashes\n"
    );
}
