//! The command line itself: help that teaches, completions that load.

use assert_cmd::Command;

fn deployer(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("deployer")
        .unwrap()
        .args(args)
        .output()
        .unwrap()
}

/// Every verb, from clap's own command tree (nested ones as `table import`), so that a new
/// verb is held to the same rules without being listed here.
fn verbs() -> Vec<String> {
    use clap::CommandFactory as _;
    fn leaves(command: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for sub in command.get_subcommands().filter(|c| c.get_name() != "help") {
            let path = format!("{prefix}{}", sub.get_name());
            if sub.has_subcommands() {
                leaves(sub, &format!("{path} "), out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    leaves(&deployer::cli::Cli::command(), "", &mut out);
    assert!(out.len() >= 16, "{out:?}");
    out
}

#[test]
fn every_subcommand_help_has_an_example() {
    for verb in verbs() {
        let args: Vec<&str> = verb.split(' ').chain(["--help"]).collect();
        let out = deployer(&args);
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
    for code in ["0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "6 ", "10 ", "130 "] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(code)),
            "exit code {code}missing:\n{help}"
        );
    }
    for verb in verbs() {
        let top = verb.split(' ').next().unwrap();
        assert!(help.contains(top), "{top} missing from --help");
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
    // Each shell parses its script without running it (scripts/setup-shells installs them).
    for (shell, no_execute) in [("zsh", "-n"), ("fish", "--no-execute")] {
        let out = deployer(&["completions", shell]);
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
        let script = dir.path().join(format!("deployer.{shell}"));
        std::fs::write(&script, &out.stdout).unwrap();
        let check = std::process::Command::new(shell)
            .arg(no_execute)
            .arg(&script)
            .output()
            .unwrap_or_else(|e| {
                panic!("{shell} is needed to check its completions ({e}): scripts/setup-shells installs it")
            });
        assert!(
            check.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("adopt-retained"), "{shell}");
    }
    assert_eq!(deployer(&["completions", "tcsh"]).status.code(), Some(2));
}

/// Runs `deployer ARGS` with `env` on a pseudo-terminal (util-linux `script`) or on a pipe.
fn first_bytes(env: &[(&str, &str)], on_terminal: bool) -> Vec<u8> {
    let bin = assert_cmd::cargo::cargo_bin("deployer");
    let spec = common_root().join("tests/bad-specs/04-app-uppercase.yaml");
    let command = format!("{} validate -s {}", bin.display(), spec.display());
    let mut cmd = if on_terminal {
        let mut c = std::process::Command::new("script");
        c.args(["-qec", &command, "/dev/null"]);
        c
    } else {
        let mut c = std::process::Command::new("sh");
        c.args(["-c", &format!("{command} 2>&1")]);
        c
    };
    cmd.env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR");
    let out = cmd
        .envs(env.iter().copied())
        .output()
        .expect("util-linux `script` and sh are installed");
    out.stdout.into_iter().take(8).collect()
}

fn common_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn colour_follows_the_terminal_no_color_and_clicolor_force() {
    let coloured = |bytes: Vec<u8>| bytes.first() == Some(&0x1b);
    assert!(coloured(first_bytes(&[], true)), "a terminal gets colour");
    assert!(
        !coloured(first_bytes(&[("NO_COLOR", "1")], true)),
        "NO_COLOR turns it off"
    );
    assert!(!coloured(first_bytes(&[], false)), "a pipe gets none");
    assert!(
        coloured(first_bytes(&[("CLICOLOR_FORCE", "1")], false)),
        "CLICOLOR_FORCE forces it"
    );
}

#[test]
fn init_scaffolds_a_service_that_validates_renders_and_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("shop");
    let out = Command::cargo_bin("deployer")
        .unwrap()
        .arg("init")
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in [
        "service/Cargo.toml",
        "service/src/main.rs",
        "stacks/shop.yaml",
        ".gitignore",
        "deployer.schema.json",
    ] {
        assert!(target.join(file).is_file(), "{file} missing");
    }
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(target.join("deployer.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(schema["title"], "deployer stack spec");
    let spec = std::fs::read_to_string(target.join("stacks/shop.yaml")).unwrap();
    assert!(spec.starts_with("# yaml-language-server: $schema=../deployer.schema.json\n"));
    let run = |args: &[&str]| {
        Command::cargo_bin("deployer")
            .unwrap()
            .current_dir(&target)
            .args(args)
            .output()
            .unwrap()
    };
    let validate = run(&["validate"]);
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stderr)
    );
    let render = run(&["render", "--format", "json"]);
    assert!(render.status.success());
    let template: serde_json::Value = serde_json::from_slice(&render.stdout).unwrap();
    assert_eq!(
        template["Resources"]["ApiFunction"]["Properties"]["FunctionName"],
        "shop-dev-api"
    );

    // Running it again refuses and changes nothing.
    let main_rs = std::fs::read_to_string(target.join("service/src/main.rs")).unwrap();
    let again = Command::cargo_bin("deployer")
        .unwrap()
        .arg("init")
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite existing files")
    );
    assert_eq!(
        std::fs::read_to_string(target.join("service/src/main.rs")).unwrap(),
        main_rs
    );

    // The generated crate type-checks (`cargo check`: no code generation or link, which the
    // Docker and cargo-lambda tests cover; its own target dir: no lock shared with this run).
    let build = std::process::Command::new(env!("CARGO"))
        .args(["check", "--quiet", "--manifest-path"])
        .arg(target.join("service/Cargo.toml"))
        .env("CARGO_TARGET_DIR", common_root().join("target/init-check"))
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let checked = std::fs::read_dir(common_root().join("target/init-check/debug/deps"))
        .unwrap()
        .any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("libshop-")
        });
    assert!(checked, "cargo check left no metadata for the `shop` crate");
}

#[test]
fn an_unreachable_endpoint_is_exit_6_in_one_sentence_without_hanging() {
    // A loopback port nobody listens on: connection refused, the SDK's attempts run out quickly.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("deployer"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .current_dir(common_root())
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_REGION", "eu-west-9")
        .env("AWS_ACCESS_KEY_ID", "AKIATESTINGONLY00000")
        .env("AWS_SECRET_ACCESS_KEY", "never-printed-secret")
        .env("AWS_MAX_ATTEMPTS", "2")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .args(["status", "-s", "stacks/example.yaml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert_eq!(
        stderr,
        "error: cannot describe stack notes-dev: no answer from AWS: Connection refused (os error 111): check the network, AWS_ENDPOINT_URL, and that the region exists\n"
    );
    assert!(!stderr.contains("never-printed-secret"));
}
