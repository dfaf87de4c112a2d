//! `deployer build` through the real multistage Dockerfile on a real Docker engine, offline.
//! The mechanics (cached dependency layer, warm rebuild, vendoring, custom Dockerfile,
//! reproducible zip) are tested on a small crate with a few dependencies; the example service's
//! own Docker build (the AWS SDK: four minutes cold on 2 cores) is bench/build's, which also
//! checks that its bootstrap serves requests.
//!
//! `scripts/test` starts a private dockerd, makes the builder base image (debootstrap + the
//! host's Rust toolchain: no registry is reachable) and exports DOCKER_HOST,
//! DEPLOYER_TEST_BUILDER_IMAGE and DEPLOYER_TEST_BUILDKIT_DOCKER (scripts/lib/docker.sh). Without
//! them these tests fail and say so; they never skip.

use crate::common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The builds share one Docker cache and two cores: one at a time.
static DOCKER: Mutex<()> = Mutex::new(());

fn builder_image() -> String {
    let image = std::env::var("DEPLOYER_TEST_BUILDER_IMAGE").unwrap_or_default();
    assert!(
        !image.is_empty(),
        "DEPLOYER_TEST_BUILDER_IMAGE is not set: run scripts/test, which starts a Docker daemon and \
         makes the offline builder image (scripts/lib/docker.sh)"
    );
    let daemon = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &image])
        .output()
        .unwrap_or_else(|e| panic!("the docker client cannot run ({e}): run scripts/test"));
    assert!(
        daemon.status.success(),
        "Docker does not answer or lacks the image {image} (DOCKER_HOST={:?}): {}; run scripts/test",
        std::env::var("DOCKER_HOST").ok(),
        String::from_utf8_lossy(&daemon.stderr).trim()
    );
    image
}

/// A small service crate with three dependencies, one of which names Windows-only crates in its
/// lockfile (same-file -> winapi-util -> windows-sys), and a spec that builds it for x86_64.
fn small_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path().join("svc");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"svc\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n\n\
         [dependencies]\nitoa = \"1\"\nsame-file = \"1\"\nmemchr = \"2\"\n\n\
         [[bin]]\nname = \"svc-api\"\npath = \"src/main.rs\"\n",
    )
    .unwrap();
    std::fs::write(
        krate.join("src/main.rs"),
        "fn main() {\n    let mut buffer = itoa::Buffer::new();\n    \
         let same = same_file::is_same_file(\"/\", \"/\").unwrap_or(false);\n    \
         let found = memchr::memchr(b'o', b\"hello\").unwrap_or(0);\n    \
         println!(\"svc {} {same} {found} on {}\", buffer.format(42), std::env::consts::ARCH);\n}\n",
    )
    .unwrap();
    // Resolved from the local registry cache when it has these crates, else from the registry.
    let lock = |offline: bool| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.arg("generate-lockfile").current_dir(&krate);
        if offline {
            cargo.arg("--offline");
        }
        cargo.output().unwrap().status.success()
    };
    assert!(lock(true) || lock(false), "cargo generate-lockfile failed");
    let lockfile = std::fs::read_to_string(krate.join("Cargo.lock")).unwrap();
    assert!(lockfile.contains("name = \"windows-sys\""), "{lockfile}");
    std::fs::write(
        dir.path().join("stack.yaml"),
        "app: svc\nfunctions:\n  api:\n    path: svc\n    architecture: x86_64\n",
    )
    .unwrap();
    dir
}

struct Build {
    lines: Vec<Value>,
    elapsed: Duration,
}

impl Build {
    fn summary(&self) -> &Value {
        let summary = self.lines.last().expect("a summary line");
        assert_eq!(summary["type"], "summary", "{summary}");
        &summary["artifacts"][0]
    }

    fn sha256(&self) -> String {
        self.summary()["sha256"].as_str().unwrap().to_string()
    }

    /// What the build tool printed (`-v` puts every line in the JSON stream).
    fn tool_output(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| l["type"] == "build_output")
            .map(|l| l["line"].as_str().unwrap().to_string())
            .collect()
    }

    /// The crates cargo compiled, by name.
    fn compiled(&self) -> Vec<String> {
        self.tool_output()
            .iter()
            .filter_map(|l| l.split("Compiling ").nth(1))
            .map(|rest| rest.split(' ').next().unwrap().to_string())
            .collect()
    }
}

fn deployer_build(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Build {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(dir)
        .args(["build", "-s", "stack.yaml", "--json", "-v"])
        .args(args)
        .env("DEPLOYER_BUILDER_IMAGE", builder_image())
        .env_remove("DOCKER_BUILDKIT")
        .env_remove("DEPLOYER_DOCKER")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "deployer build failed ({:?}):\n{}\nstderr:\n{}",
        output.status,
        stdout.lines().rev().take(40).collect::<Vec<_>>().join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = common::records(&stdout);
    Build { lines, elapsed }
}

/// The zip holds exactly `bootstrap`, executable; returns its bytes.
fn bootstrap_of(zip_path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(zip_path).unwrap();
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let names: Vec<String> = archive
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .collect();
    assert_eq!(
        names,
        ["bootstrap"],
        "a Lambda zip holds bootstrap at its root"
    );
    let mut file = archive.by_name("bootstrap").unwrap();
    assert_eq!(file.unix_mode().map(|m| m & 0o777), Some(0o755));
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut out).unwrap();
    out
}

/// Runs the extracted `bootstrap` and returns what it printed.
fn run_bootstrap(dir: &Path, bootstrap: &[u8]) -> String {
    let extracted = dir.join("bootstrap");
    std::fs::write(&extracted, bootstrap).unwrap();
    std::fs::set_permissions(
        &extracted,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = Command::new(&extracted).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_service_builds_through_the_multistage_dockerfile_with_cached_dependencies() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let project = small_project();
    let dir = project.path();

    // Cold: every dependency compiles inside the builder stage. --no-cache because the daemon's
    // data root outlives a run (scripts/test keeps it, and the builder image, between runs).
    let cold = deployer_build(dir, &[], &["--no-cache"]);
    let summary = cold.summary().clone();
    assert_eq!(summary["function"], "api");
    assert_eq!(
        summary["method"], "docker (classic)",
        "no buildx here: the classic builder"
    );
    let zip_path = PathBuf::from(summary["path"].as_str().unwrap());
    assert_eq!(
        zip_path,
        dir.join("svc/target/lambda/svc-api/bootstrap.zip")
    );
    let output = cold.tool_output().join("\n");
    assert!(
        output.contains("Step 1/"),
        "the classic builder ran: {output}"
    );
    assert!(
        output.contains("FROM scratch"),
        "the multistage Dockerfile ran"
    );
    // The context carries no Windows code: the crates no Linux build compiles are emptied, and
    // the build still resolves and compiles (above and below).
    assert!(
        output.contains("vendored crates that no Linux build compiles"),
        "{output}"
    );
    let vendor = dir.join("svc/target/deployer/docker/svc-api/vendor");
    let windows: Vec<PathBuf> = std::fs::read_dir(&vendor)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("windows")
        })
        .collect();
    assert!(!windows.is_empty(), "the lockfile names windows-sys");
    for krate in windows {
        assert!(krate.join("Cargo.toml").metadata().unwrap().len() > 0);
        assert_eq!(
            krate.join("src/lib.rs").metadata().unwrap().len(),
            0,
            "{krate:?}"
        );
    }
    let compiled = cold.compiled();
    for dependency in ["itoa", "same-file", "memchr"] {
        assert!(compiled.iter().any(|c| c == dependency), "{compiled:?}");
    }
    let bootstrap = bootstrap_of(&zip_path);
    assert_eq!(
        deployer::build::elf::architecture(&bootstrap),
        Ok(deployer::spec::Architecture::X86_64)
    );
    let glibc = deployer::build::elf::glibc_needed(&bootstrap)
        .unwrap()
        .expect("links glibc");
    assert!(glibc <= deployer::build::elf::RUNTIME_GLIBC, "{glibc:?}");
    assert_eq!(summary["size"], std::fs::metadata(&zip_path).unwrap().len());
    assert!(summary["size"].as_u64().unwrap() < 5_000_000, "{summary}");
    assert_eq!(run_bootstrap(dir, &bootstrap), "svc 42 true 4 on x86_64\n");

    // Warm: one source line changes; only the service's own crate compiles again. The change
    // is new to this run, so no layer of an earlier run can hold it.
    let lib = dir.join("svc/src/main.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let changed = source.replacen(
        "println!(\"svc ",
        &format!("println!(\"svc {} ", unique_word()),
        1,
    );
    assert_ne!(changed, source);
    std::fs::write(&lib, &changed).unwrap();
    let warm = deployer_build(dir, &[], &[]);
    assert_eq!(
        warm.compiled(),
        ["svc"],
        "dependencies come from the cached layer"
    );
    assert!(warm.tool_output().iter().any(|l| l.contains("Using cache")));
    assert_ne!(
        warm.sha256(),
        cold.sha256(),
        "the change is in the artifact"
    );
    // Straight to stderr, not eprintln!: the test harness captures that, and this line belongs
    // in the CI log.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "docker build of a small service: cold {:.1} s, warm after a one-line change {:.1} s ({:.0} % of cold)",
        cold.elapsed.as_secs_f64(),
        warm.elapsed.as_secs_f64(),
        100.0 * warm.elapsed.as_secs_f64() / cold.elapsed.as_secs_f64()
    );

    // Reproducible: the original source again, built from nothing by another builder
    // (BuildKit keeps its own cache), gives the cold build's sha256.
    std::fs::write(&lib, &source).unwrap();
    let docker = buildkit_docker();
    let again = deployer_build(
        dir,
        &[("DEPLOYER_DOCKER", &docker), ("DOCKER_BUILDKIT", "1")],
        &["--no-cache"],
    );
    let method = again.summary()["method"].as_str().unwrap().to_string();
    assert!(
        method == "docker (buildkit)" || method == "docker (buildx)",
        "{method}"
    );
    assert!(
        again.compiled().iter().any(|c| c == "same-file"),
        "--no-cache rebuilt the dependencies"
    );
    assert_eq!(again.sha256(), cold.sha256(), "same source, same sha256");
    assert_eq!(
        std::fs::read(&zip_path).unwrap().len() as u64,
        summary["size"]
    );
}

/// A word no earlier run wrote: this process's id and the time.
fn unique_word() -> String {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}-{}", std::process::id(), since_epoch.as_nanos())
}

fn buildkit_docker() -> String {
    std::env::var("DEPLOYER_TEST_BUILDKIT_DOCKER").unwrap_or_else(|_| {
        panic!(
            "DEPLOYER_TEST_BUILDKIT_DOCKER is not set: run scripts/test (scripts/lib/docker.sh \
             finds a docker client that builds with BuildKit)"
        )
    })
}

#[test]
fn a_dockerfile_of_ones_own_gets_the_same_context_and_arguments() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    common::hello_crate(dir.path());
    // The shipped Dockerfile plus one step that shows it ran.
    let shipped = std::fs::read_to_string(common::root().join("templates/Dockerfile")).unwrap();
    let custom = shipped.replace(
        "FROM scratch",
        "RUN echo \"custom step for $PACKAGE/$BINARY\"\nFROM scratch",
    );
    assert_ne!(custom, shipped);
    std::fs::write(dir.path().join("Dockerfile.custom"), custom).unwrap();
    std::fs::write(
        dir.path().join("stack.yaml"),
        "app: hello\nfunctions:\n  api:\n    path: hello\n    architecture: x86_64\n    \
         build: { method: docker, dockerfile: Dockerfile.custom, builder_image: not/used:here }\n",
    )
    .unwrap();
    // DEPLOYER_BUILDER_IMAGE (set by deployer_build) wins over the spec's builder_image, which
    // does not exist: with it the build could not start.
    // --no-cache: an earlier run's cached layer would hide the custom step's output.
    let build = deployer_build(dir.path(), &[], &["--no-cache"]);
    assert!(
        build
            .tool_output()
            .iter()
            .any(|l| l.trim() == "custom step for hello/hello-api"),
        "{:?}",
        build.tool_output()
    );
    let zip = PathBuf::from(build.summary()["path"].as_str().unwrap());
    assert_eq!(
        deployer::build::elf::architecture(&bootstrap_of(&zip)),
        Ok(deployer::spec::Architecture::X86_64)
    );
}

#[test]
fn without_a_docker_daemon_the_error_names_the_other_methods() {
    let project = small_project();
    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(project.path())
        .args(["build", "-s", "stack.yaml"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot build with Docker"), "{stderr}");
    assert!(stderr.contains("--build-method cargo-lambda"), "{stderr}");
    assert!(stderr.contains("--build-method zip"), "{stderr}");
}

/// `deployer build` of `stack.yaml` in `dir` with the default builder image (none named): the
/// exit status, the JSON records and stderr.
fn build_with_default_image(
    dir: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (bool, Vec<Value>, String) {
    builder_image(); // the daemon answers, and rust:1-bookworm stands in for the public image
    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(dir)
        .args(["build", "-s", "stack.yaml", "--json", "-v"])
        .args(args)
        .env_remove("DEPLOYER_BUILDER_IMAGE")
        .env_remove("DOCKER_BUILDKIT")
        .env_remove("DEPLOYER_DOCKER")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    (
        output.status.success(),
        common::records(&stdout),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn tool_lines(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .filter(|l| l["type"] == "build_output")
        .map(|l| l["line"].as_str().unwrap().to_string())
        .collect()
}

/// What the builder stage reports of itself: it runs on this machine's architecture.
fn builder_stage_line(target: &str) -> String {
    format!(
        "deployer: builder stage on {}, building for {target}",
        std::env::consts::ARCH
    )
}

/// The example service, arm64 as its spec says, through the shipped Dockerfile with the default
/// builder image on this x86_64 engine: the builder stage runs on the build platform (no QEMU in
/// the build) and cross-compiles with the image deployer derives once from the default (the
/// target's standard library and Debian's cross gcc). The bootstrap then answers the real API
/// under qemu-user through `deployer local`, its writes landing in moto.
#[test]
fn the_example_cross_compiles_for_arm64_without_emulation_and_answers_through_local() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let notes = common::root().join("examples/notes");
    let copy = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mkdir {0}/notes && tar -C {1} --exclude=./target -c . | tar -x -C {0}/notes",
            dir.path().display(),
            notes.display()
        ))
        .status()
        .unwrap();
    assert!(copy.success());
    let spec = std::fs::read_to_string(common::root().join("stacks/example.yaml")).unwrap();
    assert!(spec.contains("architecture: arm64"));
    std::fs::write(
        dir.path().join("stack.yaml"),
        spec.replace("path: ../examples/notes", "path: notes"),
    )
    .unwrap();

    let (ok, records, stderr) = build_with_default_image(dir.path(), &[], &["--no-cache"]);
    let lines = tool_lines(&records);
    assert!(
        ok,
        "{stderr}\n{}",
        lines[lines.len().saturating_sub(40)..].join("\n")
    );
    assert_ne!(
        std::env::consts::ARCH,
        "aarch64",
        "this test proves a cross build"
    );
    assert!(
        lines.contains(&builder_stage_line("aarch64-unknown-linux-gnu")),
        "the builder stage runs on the build platform: {lines:#?}"
    );
    let summary = records.last().unwrap()["artifacts"][0].clone();
    assert_eq!(summary["method"], "docker (classic)");
    let zip_path = PathBuf::from(summary["path"].as_str().unwrap());
    let bootstrap = bootstrap_of(&zip_path);
    assert_eq!(
        deployer::build::elf::architecture(&bootstrap),
        Ok(deployer::spec::Architecture::Arm64)
    );
    let glibc = deployer::build::elf::glibc_needed(&bootstrap)
        .unwrap()
        .unwrap();
    assert!(glibc <= deployer::build::elf::RUNTIME_GLIBC, "{glibc:?}");

    // Reproducible: the warm rebuild gives the same zip.
    let (ok, again, stderr) = build_with_default_image(dir.path(), &[], &[]);
    assert!(ok, "{stderr}");
    assert_eq!(
        again.last().unwrap()["artifacts"][0]["sha256"],
        summary["sha256"]
    );

    crate::local::the_notes_api_answers_through_local(dir.path(), "stack.yaml", &zip_path);
}

/// BuildKit cross-compiles the same way (it sets BUILDPLATFORM itself), here deriving the
/// cross-compiling image first; a builder image of one's own is used as given, so one without
/// the target's standard library is refused by name.
#[test]
fn buildkit_cross_compiles_too_and_an_own_builder_image_must_carry_the_target() {
    let _one_at_a_time = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    let project = small_project();
    let dir = project.path();
    let spec = std::fs::read_to_string(dir.join("stack.yaml")).unwrap();
    std::fs::write(dir.join("stack.yaml"), spec.replace("x86_64", "arm64")).unwrap();

    // Without the derived image, the first build derives it (through BuildKit here): the one
    // step with network, `rustup target add` and Debian's cross gcc.
    let derived = Command::new("docker")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .arg("deployer-cross/aarch64-unknown-linux-gnu")
        .output()
        .unwrap();
    for image in String::from_utf8_lossy(&derived.stdout).lines() {
        let removed = Command::new("docker")
            .args(["rmi", image])
            .output()
            .unwrap();
        assert!(removed.status.success(), "{removed:?}");
    }
    // BuildKit's layer cache would otherwise replay an earlier derivation's step.
    let pruned = Command::new("docker")
        .args(["builder", "prune", "--all", "--force"])
        .output()
        .unwrap();
    assert!(pruned.status.success(), "{pruned:?}");
    let buildkit = buildkit_docker();
    let (ok, records, stderr) = build_with_default_image(
        dir,
        &[("DEPLOYER_DOCKER", &buildkit), ("DOCKER_BUILDKIT", "1")],
        &[],
    );
    let lines = tool_lines(&records);
    assert!(ok, "{stderr}\n{}", lines.join("\n"));
    assert!(
        lines.iter().any(|l| l
            .starts_with("deployer: deriving deployer-cross/aarch64-unknown-linux-gnu:")
            && l.contains("from rust:1-bookworm")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with(&format!(
            "deployer: adding aarch64-unknown-linux-gnu to the builder image on {}",
            std::env::consts::ARCH
        ))),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(&builder_stage_line("aarch64-unknown-linux-gnu"))),
        "{lines:#?}"
    );
    let summary = records.last().unwrap()["artifacts"][0].clone();
    assert_eq!(summary["method"], "docker (buildkit)");
    let bootstrap = bootstrap_of(Path::new(summary["path"].as_str().unwrap()));
    assert_eq!(
        deployer::build::elf::architecture(&bootstrap),
        Ok(deployer::spec::Architecture::Arm64)
    );
    // It runs, under qemu-user with the arm64 C library.
    let extracted = dir.join("bootstrap");
    std::fs::write(&extracted, &bootstrap).unwrap();
    std::fs::set_permissions(
        &extracted,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let emulator = deployer_local::find_emulator(deployer_local::Arch::Aarch64)
        .unwrap_or_else(|e| panic!("{e} (scripts/test runs scripts/setup-arm64)"));
    let run = Command::new(&emulator[0])
        .args(&emulator[1..])
        .arg(&extracted)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "svc 42 true 4 on aarch64",
        "{run:?}"
    );

    // The test builder image has no arm64 standard library: named, it is used as given and
    // refused before anything compiles.
    let (ok, records, stderr) =
        build_with_default_image(dir, &[], &["--builder-image", &builder_image()]);
    assert!(!ok);
    let said = format!("{stderr}\n{}", tool_lines(&records).join("\n"));
    assert!(
        said.contains(
            "the builder image has no Rust standard library for aarch64-unknown-linux-gnu"
        ),
        "{said}"
    );
}
