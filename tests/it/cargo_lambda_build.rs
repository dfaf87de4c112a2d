//! `deployer build` with method `cargo-lambda`: the real `cargo lambda` (PyPI's cargo-lambda, with
//! zig from ziglang, installed into .venv by scripts/setup-python) on a small service crate.

use crate::common;

use std::io::Cursor;
use std::process::Command;

/// PATH with the venv's bin first: `cargo lambda` and the python that finds zig.
fn path_with_venv() -> std::ffi::OsString {
    let cargo_lambda = common::python_tool("cargo-lambda");
    let bin = cargo_lambda.parent().unwrap().to_path_buf();
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

fn service(dir: &std::path::Path) {
    service_for(dir, "x86_64");
}

fn service_for(dir: &std::path::Path, architecture: &str) {
    common::hello_crate(dir);
    std::fs::write(
        dir.join("stack.yaml"),
        format!(
            "app: hello\nfunctions:\n  api:\n    path: hello\n    binary: hello-api\n    \
             architecture: {architecture}\n    build: {{ method: cargo-lambda }}\n"
        ),
    )
    .unwrap();
}

/// Runs an arm64 `bootstrap` under qemu-user with Debian's arm64 glibc (libc6-arm64-cross) as
/// its root; fails with what to install when either is missing.
fn run_arm64(bootstrap: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let qemu = ["/usr/bin/qemu-aarch64-static", "/usr/bin/qemu-aarch64"]
        .into_iter()
        .find(|q| std::path::Path::new(q).exists())
        .unwrap_or_else(|| {
            panic!(
                "qemu-user is not installed: apt-get install qemu-user-static (scripts/test does)"
            )
        });
    let sysroot = std::path::Path::new("/usr/aarch64-linux-gnu");
    assert!(
        sysroot.join("lib").exists(),
        "no arm64 glibc at {}: apt-get install libc6-arm64-cross (scripts/test does)",
        sysroot.display()
    );
    Command::new(qemu)
        .arg("-L")
        .arg(sysroot)
        .arg(bootstrap)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// `deployer build ARGS` in `dir`, cargo-lambda on PATH: the first artifact of its summary.
fn deployer_build(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(dir)
        .arg("build")
        .args(args)
        .arg("--json")
        .env("PATH", path_with_venv())
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = common::summary(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(summary["command"], "build");
    summary["artifacts"][0].clone()
}

/// The zip's only entry, `bootstrap`: an ELF for `architecture` linking a glibc no newer than
/// Lambda's provided.al2023 has (zig links against an old one).
fn lambda_bootstrap(zip: &std::path::Path, architecture: deployer::spec::Architecture) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(Cursor::new(std::fs::read(zip).unwrap())).unwrap();
    let names: Vec<String> = archive
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .collect();
    assert_eq!(names, ["bootstrap"]);
    let mut bootstrap = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("bootstrap").unwrap(), &mut bootstrap).unwrap();
    assert_eq!(
        deployer::build::elf::architecture(&bootstrap),
        Ok(architecture)
    );
    let glibc = deployer::build::elf::glibc_needed(&bootstrap)
        .unwrap()
        .expect("links glibc");
    assert!(glibc <= deployer::build::elf::RUNTIME_GLIBC, "{glibc:?}");
    bootstrap
}

#[test]
fn cargo_lambda_builds_a_runnable_bootstrap_and_the_zip_is_reproducible() {
    for architecture in ["x86_64", "arm64"] {
        builds_a_runnable_bootstrap(architecture);
    }
}

fn builds_a_runnable_bootstrap(architecture: &str) {
    let dir = tempfile::tempdir().unwrap();
    service_for(dir.path(), architecture);
    let build = || deployer_build(dir.path(), &["-s", "stack.yaml"]);
    let first = build();
    assert_eq!(first["method"], "cargo-lambda");
    let zip_path = dir
        .path()
        .join("hello/target/lambda/hello-api/bootstrap.zip");
    assert_eq!(first["path"], zip_path.display().to_string());
    let (expected, machine) = match architecture {
        "arm64" => (deployer::spec::Architecture::Arm64, "aarch64"),
        _ => (deployer::spec::Architecture::X86_64, "x86_64"),
    };
    lambda_bootstrap(&zip_path, expected);
    let built = dir.path().join("hello/target/lambda/hello-api/bootstrap");
    let run = if architecture == "arm64" {
        run_arm64(&built, &[])
    } else {
        Command::new(&built).output().unwrap()
    };
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("hello from {machine}\n"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // Unchanged source: the same sha256, so `up` would skip the upload and the update.
    let second = build();
    assert_eq!(second["sha256"], first["sha256"]);
}

#[test]
fn without_cargo_lambda_the_error_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    service(dir.path());
    // Only cargo's own directory: no cargo-lambda there.
    let cargo_dir = std::path::Path::new(env!("CARGO")).parent().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(dir.path())
        .args(["build", "-s", "stack.yaml"])
        .env("PATH", cargo_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("pip install cargo-lambda"), "{stderr}");
}

#[test]
fn up_builds_then_deploys_and_an_unchanged_service_is_neither_uploaded_nor_updated() {
    let dir = tempfile::tempdir().unwrap();
    service(dir.path());
    let moto = common::moto::Moto::start();
    let path = path_with_venv();
    let path = path.to_str().unwrap();
    let up = || {
        moto.deployer_with(
            dir.path(),
            &["up", "-s", "stack.yaml", "--yes", "--json"],
            &[("PATH", path)],
        )
    };
    let first = up();
    first.expect_code(0);
    assert_eq!(common::summary(&first.stdout)["command"], "up");
    assert!(
        first.stdout.contains(r#""type":"build""#),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains(r#""uploaded":true"#),
        "{}",
        first.stdout
    );
    let zip_puts = || {
        moto.requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.url.contains(".zip"))
            .count()
    };
    assert_eq!(zip_puts(), 1, "one artifact uploaded");

    moto.reset_recording();
    let second = up();
    second.expect_code(0);
    assert!(
        second.stdout.contains(r#""type":"build""#),
        "built again: {}",
        second.stdout
    );
    assert!(
        second.stdout.contains(r#""status":"no changes""#),
        "{}",
        second.stdout
    );
    assert_eq!(zip_puts(), 0, "same sha256: no upload");
    assert_eq!(moto.count("CreateChangeSet"), 0, "same sha256: no update");
}

/// The example service as its spec says, arm64, built by cargo-lambda on this x86_64 machine
/// (zig cross-compiles; no QEMU in the build), then started under qemu-user: it loads, links
/// against the arm64 glibc and runs until it looks for the Lambda Runtime API; then served by
/// `deployer local`, where it answers real requests.
#[test]
fn the_example_builds_for_arm64_and_its_bootstrap_starts_under_qemu() {
    let root = common::root();
    let build = || {
        deployer_build(
            &root,
            &[
                "-s",
                "stacks/example.yaml",
                "--build-method",
                "cargo-lambda",
            ],
        )
    };
    let first = build();
    let zip_path = std::path::PathBuf::from(first["path"].as_str().unwrap());
    let bootstrap = lambda_bootstrap(&zip_path, deployer::spec::Architecture::Arm64);

    let unpacked = tempfile::tempdir().unwrap();
    let binary = unpacked.path().join("bootstrap");
    std::fs::write(&binary, &bootstrap).unwrap();
    std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // With its table named, the service gets as far as the Lambda runtime's own configuration,
    // which only Lambda (or a Runtime API) provides.
    let run = run_arm64(
        &binary,
        &[("TABLE_NOTES", "notes"), ("AWS_REGION", "us-east-1")],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("Missing AWS_LAMBDA_FUNCTION_NAME env var"),
        "exit {:?}: {stderr}",
        run.status.code()
    );

    // Warm and unchanged: the same sha256.
    assert_eq!(build()["sha256"], first["sha256"]);

    // Served through `deployer local`: the arm64 bootstrap runs under qemu-user behind the
    // Runtime API and answers the real API, its writes landing in moto.
    crate::local::the_notes_api_answers_through_local(&root, "stacks/example.yaml", &zip_path);
}
