//! The command line itself: help that teaches, completions that load.

use assert_cmd::Command;

fn deployer(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("deployer")
        .unwrap()
        .args(args)
        .output()
        .unwrap()
}

const VERBS: &[&str] = &[
    "validate",
    "render",
    "schema",
    "up",
    "plan",
    "down",
    "status",
    "outputs",
    "logs",
    "gc",
    "ls",
    "bootstrap",
    "completions",
];

#[test]
fn every_subcommand_help_has_an_example() {
    for verb in VERBS {
        let out = deployer(&[verb, "--help"]);
        assert!(out.status.success(), "{verb}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("Example"),
            "`deployer {verb} --help` has no example:\n{help}"
        );
        assert!(
            help.contains(&format!("deployer {verb}")),
            "`deployer {verb} --help` example does not use the verb"
        );
    }
}

#[test]
fn help_documents_every_exit_code() {
    let out = deployer(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for code in ["0 ", "1 ", "2 ", "3 ", "4 ", "10 ", "130 "] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(code)),
            "exit code {code}missing:\n{help}"
        );
    }
    for verb in VERBS {
        assert!(help.contains(verb), "{verb} missing from --help");
    }
}

#[test]
fn completion_scripts_are_valid_shell() {
    let out = deployer(&["completions", "bash"]);
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("deployer.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("complete") && text.contains("gc") && text.contains("--allow-data-loss"));
    for shell in ["zsh", "fish"] {
        let out = deployer(&["completions", shell]);
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
    assert_eq!(deployer(&["completions", "tcsh"]).status.code(), Some(2));
}
