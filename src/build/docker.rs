//! Build method `docker`: the multistage Dockerfile (`templates/Dockerfile`) run offline.
//!
//! deployer writes the build context itself: the workspace's sources, a skeleton of its
//! manifests (so dependencies get their own cached layer), and its crates from `cargo vendor`
//! (so the build runs with `--network=none` and the same inputs give the same binary). The
//! context lives under the workspace's target directory and keeps `vendor/` while Cargo.lock
//! is unchanged.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::cargo::{Workspace, cargo_program};
use super::process;
use crate::exit::Error;
use crate::spec::Architecture;

/// The Dockerfile shipped with deployer.
pub const DOCKERFILE: &str = include_str!("../../templates/Dockerfile");

/// The builder image when the spec and command line name none (the Dockerfile's default).
pub const DEFAULT_BUILDER_IMAGE: &str = "rust:1-bookworm";

/// The image deployer derives from the default builder image to cross-compile: the target's
/// standard library and Debian's cross gcc, added once (the only build step with network) and
/// tagged by target and base image, so the function builds stay offline.
const CROSS_DOCKERFILE: &str = "\
ARG BASE
FROM ${BASE}
ARG TARGET
ARG PACKAGES
RUN echo \"deployer: adding $TARGET to the builder image on $(uname -m)\" \\
 && if [ ! -d \"$(rustc --print sysroot)/lib/rustlib/$TARGET/lib\" ]; then rustup target add \"$TARGET\"; fi \\
 && apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES \\
 && rm -rf /var/lib/apt/lists/*
";

/// How the image is built and `/bootstrap` taken out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    /// `docker buildx build --output type=local`.
    Buildx,
    /// `docker build --output type=local` with `DOCKER_BUILDKIT=1` (clients that carry BuildKit
    /// themselves, as Debian's docker.io 20.10 does).
    BuildKit,
    /// The classic builder, then `docker create` and `docker cp`.
    Classic,
}

impl Builder {
    /// How it shows in progress and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Builder::Buildx => "buildx",
            Builder::BuildKit => "buildkit",
            Builder::Classic => "classic",
        }
    }
}

/// Which builder to use: `DOCKER_BUILDKIT=0` forces the classic builder and `=1` BuildKit (as the
/// docker CLI reads it); otherwise buildx when installed, else the classic builder.
pub fn choose_builder(docker_buildkit: Option<&str>, buildx_installed: bool) -> Builder {
    match docker_buildkit.map(str::trim) {
        Some("0" | "false") => Builder::Classic,
        Some("1" | "true") if buildx_installed => Builder::Buildx,
        Some("1" | "true") => Builder::BuildKit,
        _ if buildx_installed => Builder::Buildx,
        _ => Builder::Classic,
    }
}

/// The Docker platform of a function's architecture.
pub fn platform(architecture: Architecture) -> &'static str {
    match architecture {
        Architecture::X86_64 => "linux/amd64",
        Architecture::Arm64 => "linux/arm64",
    }
}

/// The Debian cross compiler (the linker) for building `architecture` elsewhere, and the
/// packages that hold it and the target's C library.
pub fn cross_toolchain(architecture: Architecture) -> (&'static str, [&'static str; 2]) {
    match architecture {
        Architecture::X86_64 => (
            "x86_64-linux-gnu-gcc",
            ["gcc-x86-64-linux-gnu", "libc6-dev-amd64-cross"],
        ),
        Architecture::Arm64 => (
            "aarch64-linux-gnu-gcc",
            ["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"],
        ),
    }
}

/// Which builder image a build runs on, decided before anything is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuilderPlan {
    /// The function's platform is the build platform: the image as named (none: the
    /// Dockerfile's default), no linker argument.
    Native(Option<String>),
    /// Cross-compiling with the image as named: it must carry the target's standard library and
    /// `linker` (the Dockerfile checks both first).
    Given {
        /// The user's image.
        image: String,
        /// The cross linker it must have.
        linker: &'static str,
    },
    /// Cross-compiling with the default image: derive one that has the target and `linker`.
    Derive {
        /// The default builder image.
        base: &'static str,
        /// The cross linker the derived image gets.
        linker: &'static str,
    },
}

/// The plan for `architecture` on an engine whose platform is `build_platform`, given the
/// builder image the spec or command line named.
pub fn builder_plan(
    build_platform: &str,
    architecture: Architecture,
    named_image: Option<&str>,
) -> BuilderPlan {
    if build_platform == platform(architecture) {
        return BuilderPlan::Native(named_image.map(str::to_string));
    }
    let (linker, _) = cross_toolchain(architecture);
    match named_image {
        Some(image) => BuilderPlan::Given {
            image: image.to_string(),
            linker,
        },
        None => BuilderPlan::Derive {
            base: DEFAULT_BUILDER_IMAGE,
            linker,
        },
    }
}

/// The Rust target triple of a function's architecture.
pub fn rust_target(architecture: Architecture) -> &'static str {
    match architecture {
        Architecture::X86_64 => "x86_64-unknown-linux-gnu",
        Architecture::Arm64 => "aarch64-unknown-linux-gnu",
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The function's cargo workspace.
    pub workspace: &'a Workspace,
    /// The package holding the binary.
    pub package: &'a str,
    /// The binary.
    pub binary: &'a str,
    /// The function's architecture.
    pub architecture: Architecture,
    /// A Dockerfile to use instead of the shipped one.
    pub dockerfile: Option<&'a Path>,
    /// The builder stage's base image (else the Dockerfile's default).
    pub builder_image: Option<&'a str>,
    /// Rebuild every layer.
    pub no_cache: bool,
}

/// The docker program: `$DEPLOYER_DOCKER`, else `docker` on PATH. `DOCKER_HOST` reaches it.
fn docker_program() -> std::ffi::OsString {
    std::env::var_os("DEPLOYER_DOCKER").unwrap_or_else(|| "docker".into())
}

fn docker() -> Command {
    Command::new(docker_program())
}

/// The engine's platform (`linux/amd64`): the build platform. Fails with a usage error naming
/// the other methods when no Docker daemon answers.
pub fn check_daemon() -> Result<String, Error> {
    let output = docker()
        .args(["version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"])
        .output();
    let why = match output {
        Ok(out) if out.status.success() => {
            return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            format!("its daemon does not answer ({})", first.trim())
        }
        Err(e) => format!(
            "the `{}` command cannot run ({e})",
            docker_program().to_string_lossy()
        ),
    };
    Err(Error::usage(format!(
        "cannot build with Docker: {why}. Start Docker (or point DOCKER_HOST at a daemon), or use \
         another build method: `--build-method cargo-lambda` (needs cargo-lambda on this machine) or \
         `--build-method zip` with a prebuilt artifact (`--artifact FN=path/to/bootstrap.zip`)"
    )))
}

fn buildx_installed() -> bool {
    docker()
        .args(["buildx", "version"])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Where and with what a build runs, once the plan is carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builds {
    /// The engine's platform.
    pub build_platform: String,
    /// The builder image to pass (none: the Dockerfile's default).
    pub builder_image: Option<String>,
    /// The cross linker, when cross-compiling.
    pub linker: Option<&'static str>,
    /// The classic builder, which does not set `BUILDPLATFORM` itself.
    pub classic: bool,
}

/// The docker arguments of one build (without the context path and output options).
pub fn build_args(request: &Request<'_>, dockerfile: &Path, on: &Builds) -> Vec<String> {
    // The function's platform applies to the final stage only. The classic builder cannot take
    // it: given `--platform`, it refuses a COPY into a stage pinned to another platform (the
    // builder), so it builds on the build platform, and the bootstrap, cross-compiled, is taken
    // out of the final stage by `docker cp` all the same.
    let target_platform = if on.classic {
        on.build_platform.clone()
    } else {
        platform(request.architecture).to_string()
    };
    let mut args = vec![
        "--network=none".to_string(),
        format!("--platform={target_platform}"),
        "--file".into(),
        dockerfile.display().to_string(),
        "--build-arg".into(),
        format!("TARGET={}", rust_target(request.architecture)),
        "--build-arg".into(),
        format!("PACKAGE={}", request.package),
        "--build-arg".into(),
        format!("BINARY={}", request.binary),
    ];
    if on.classic {
        args.extend([
            "--build-arg".into(),
            format!("CLASSIC_BUILDPLATFORM={}", on.build_platform),
        ]);
    }
    if let Some(linker) = on.linker {
        args.extend(["--build-arg".into(), format!("LINKER={linker}")]);
    }
    if let Some(image) = &on.builder_image {
        args.extend(["--build-arg".into(), format!("BUILDER_IMAGE={image}")]);
    }
    if request.no_cache {
        args.push("--no-cache".into());
    }
    args
}

/// cargo's source replacement for the container: `cargo vendor` prints it with the host's
/// vendor path, which becomes the path the Dockerfile copies vendor/ to.
pub fn container_cargo_config(vendor_stdout: &str) -> String {
    vendor_stdout
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("directory = ") {
                "directory = \"/deployer/vendor\"".to_string()
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Builds `request` and returns the `bootstrap` bytes and the builder used.
pub fn build(
    request: &Request<'_>,
    on_line: &mut dyn FnMut(&str),
) -> Result<(Vec<u8>, Builder), Error> {
    let build_platform = check_daemon()?;
    let builder = choose_builder(
        std::env::var("DOCKER_BUILDKIT").ok().as_deref(),
        buildx_installed(),
    );
    let on = match builder_plan(&build_platform, request.architecture, request.builder_image) {
        BuilderPlan::Native(image) => Builds {
            build_platform,
            builder_image: image,
            linker: None,
            classic: builder == Builder::Classic,
        },
        BuilderPlan::Given { image, linker } => Builds {
            build_platform,
            builder_image: Some(image),
            linker: Some(linker),
            classic: builder == Builder::Classic,
        },
        BuilderPlan::Derive { base, linker } => Builds {
            builder_image: Some(derive_cross_image(
                base,
                &build_platform,
                request.architecture,
                builder,
                on_line,
            )?),
            build_platform,
            linker: Some(linker),
            classic: builder == Builder::Classic,
        },
    };
    let context = request
        .workspace
        .target_dir
        .join("deployer/docker")
        .join(request.binary);
    on_line(&format!(
        "deployer: writing the build context in {}",
        context.display()
    ));
    write_context(request, &context, on_line)?;
    let dockerfile = context.join("Dockerfile");
    let mut args = build_args(request, &dockerfile, &on);
    let output_dir = context.join("out");
    let _ = std::fs::remove_dir_all(&output_dir);
    let tag = format!("deployer-build/{}:latest", request.binary.to_lowercase());
    let mut command = build_command(builder);
    if builder == Builder::Classic {
        command.args(["--tag", &tag]);
    }
    if builder != Builder::Classic {
        args.push(format!("--output=type=local,dest={}", output_dir.display()));
    }
    command.args(&args).arg(&context);
    let finished = process::run(&mut command, on_line)?;
    if !finished.success {
        return Err(Error::failed(format!(
            "docker build of `{}` failed; its last lines:\n{}",
            request.binary,
            finished.tail.join("\n")
        )));
    }
    let bootstrap = output_dir.join("bootstrap");
    if builder == Builder::Classic {
        extract(&tag, &output_dir, on_line)?;
    }
    let bytes = std::fs::read(&bootstrap).map_err(|e| {
        Error::failed(format!(
            "the image built for `{}` has no /bootstrap ({e}): a custom Dockerfile must copy the \
             binary to /bootstrap in its final stage",
            request.binary
        ))
    })?;
    Ok((bytes, builder))
}

/// The builder image for cross-compiling to `architecture`, derived from `base` once and reused:
/// tagged `deployer-cross/<target>:<base image id>`, so a new toolchain gets a new image.
fn derive_cross_image(
    base: &str,
    build_platform: &str,
    architecture: Architecture,
    builder: Builder,
    on_line: &mut dyn FnMut(&str),
) -> Result<String, Error> {
    let image_id = |image: &str| {
        docker()
            .args(["image", "inspect", "--format", "{{.Id}}", image])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let base_id = match image_id(base) {
        Some(id) => id,
        None => {
            let mut pull = docker();
            pull.args(["pull", "--platform", build_platform, base]);
            let pulled = process::run(&mut pull, on_line)?;
            image_id(base).filter(|_| pulled.success).ok_or_else(|| {
                Error::failed(format!(
                    "cannot pull the builder image {base}: {}",
                    pulled.tail.join("\n")
                ))
            })?
        }
    };
    let target = rust_target(architecture);
    let hex = base_id.trim_start_matches("sha256:");
    let tag = format!("deployer-cross/{target}:{}", &hex[..hex.len().min(12)]);
    if image_id(&tag).is_some() {
        on_line(&format!("deployer: cross-compiling with {tag}"));
        return Ok(tag);
    }
    let (_, packages) = cross_toolchain(architecture);
    on_line(&format!(
        "deployer: deriving {tag} from {base} (once per toolchain and target: {} and Rust's {target} standard library)",
        packages.join(", ")
    ));
    let dir = std::env::temp_dir().join(format!("deployer-cross-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| io_failed(&dir, e))?;
    std::fs::write(dir.join("Dockerfile"), CROSS_DOCKERFILE)
        .map_err(|e| io_failed(&dir.join("Dockerfile"), e))?;
    let mut command = build_command(builder);
    if builder == Builder::Buildx {
        // Into the engine's image store, where the function builds find it.
        command.arg("--load");
    }
    // The one build with network: the target's standard library and the cross linker.
    command
        .args([
            "--network=host",
            "--platform",
            build_platform,
            "--tag",
            &tag,
        ])
        .args(["--build-arg", &format!("BASE={base}")])
        .args(["--build-arg", &format!("TARGET={target}")])
        .args(["--build-arg", &format!("PACKAGES={}", packages.join(" "))])
        .arg(&dir);
    let finished = process::run(&mut command, on_line);
    let _ = std::fs::remove_dir_all(&dir);
    let finished = finished?;
    if !finished.success {
        return Err(Error::failed(format!(
            "cannot derive the cross-compiling builder image {tag} from {base}; its last lines:\n{}",
            finished.tail.join("\n")
        )));
    }
    Ok(tag)
}

/// `docker build` (or `buildx build`) by `builder`, before its options.
fn build_command(builder: Builder) -> Command {
    let mut command = docker();
    match builder {
        Builder::Buildx => {
            command.args(["buildx", "build", "--progress=plain"]);
        }
        Builder::BuildKit => {
            command
                .env("DOCKER_BUILDKIT", "1")
                .args(["build", "--progress=plain"]);
        }
        Builder::Classic => {
            command
                .env("DOCKER_BUILDKIT", "0")
                .args(["build", "--force-rm"]);
        }
    }
    command
}

/// Takes /bootstrap out of a classic-builder image: create a container (never started), copy, remove.
fn extract(tag: &str, output_dir: &Path, on_line: &mut dyn FnMut(&str)) -> Result<(), Error> {
    std::fs::create_dir_all(output_dir).map_err(|e| io_failed(output_dir, e))?;
    let created = docker()
        .args(["create", tag, "/bootstrap"])
        .output()
        .map_err(|e| Error::failed(format!("docker create: {e}")))?;
    if !created.status.success() {
        return Err(Error::failed(format!(
            "docker create {tag}: {}",
            String::from_utf8_lossy(&created.stderr).trim()
        )));
    }
    let id = String::from_utf8_lossy(&created.stdout).trim().to_string();
    on_line(&format!("deployer: docker cp {id}:/bootstrap"));
    let copied = docker()
        .arg("cp")
        .arg(format!("{id}:/bootstrap"))
        .arg(output_dir.join("bootstrap"))
        .output();
    let _ = docker().args(["rm", &id]).output();
    match copied {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(Error::failed(format!(
            "docker cp {id}:/bootstrap: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
        Err(e) => Err(Error::failed(format!("docker cp: {e}"))),
    }
}

fn io_failed(path: &Path, e: std::io::Error) -> Error {
    Error::failed(format!("cannot prepare the build at {}", path.display())).caused_by(e)
}

/// Writes the build context: Dockerfile, workspace/, skeleton/, vendor/, cargo-config.toml.
fn write_context(
    request: &Request<'_>,
    context: &Path,
    on_line: &mut dyn FnMut(&str),
) -> Result<(), Error> {
    let ws = request.workspace;
    let dockerfile = match request.dockerfile {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            Error::usage(format!(
                "cannot read the Dockerfile {}: {e}",
                path.display()
            ))
        })?,
        None => DOCKERFILE.to_string(),
    };
    for dir in ["workspace", "skeleton"] {
        let dir = context.join(dir);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io_failed(&dir, e))?;
        }
    }
    std::fs::create_dir_all(context).map_err(|e| io_failed(context, e))?;
    std::fs::write(context.join("Dockerfile"), dockerfile)
        .map_err(|e| io_failed(&context.join("Dockerfile"), e))?;

    copy_workspace(&ws.root, &ws.target_dir, &context.join("workspace"))?;
    // Ignored or not (libraries often ignore Cargo.lock), the build needs every manifest.
    for manifest in ws.skeleton_manifests() {
        let (from, to) = (
            ws.root.join(&manifest),
            context.join("workspace").join(&manifest),
        );
        if from.exists() && !to.exists() {
            copy_file(&from, &to)?;
        }
    }

    let skeleton = context.join("skeleton");
    for manifest in ws.skeleton_manifests() {
        let from = ws.root.join(&manifest);
        if from.exists() {
            copy_file(&from, &skeleton.join(&manifest))?;
        }
    }
    // The project's cargo config (rustflags, profiles) must be the same in both stages, or the
    // second stage recompiles every dependency.
    let cargo_dir = ws.root.join(".cargo");
    if cargo_dir.is_dir() {
        copy_tree(&cargo_dir, &skeleton.join(".cargo"), &|_| false)?;
    }
    for (path, stub) in ws.skeleton_stubs() {
        let path = skeleton.join(path);
        std::fs::create_dir_all(path.parent().expect("stubs are files"))
            .map_err(|e| io_failed(&path, e))?;
        std::fs::write(&path, stub).map_err(|e| io_failed(&path, e))?;
    }
    vendor(ws, context, on_line)
}

/// `cargo vendor` into `context/vendor`, skipped while Cargo.lock is unchanged.
fn vendor(ws: &Workspace, context: &Path, on_line: &mut dyn FnMut(&str)) -> Result<(), Error> {
    let lock = ws.root.join("Cargo.lock");
    let lock_bytes = std::fs::read(&lock).map_err(|e| {
        Error::usage(format!(
            "{}: {e}. The Docker build is offline and pinned: run `cargo generate-lockfile` \
             (or any cargo build) in {} first",
            lock.display(),
            ws.root.display()
        ))
    })?;
    let stamp_path = context.join("vendor.sha256");
    let digest: [u8; 32] = Sha256::digest(&lock_bytes).into();
    // The suffix marks a vendor directory thinned to Linux (older ones are redone).
    let stamp = format!("{} linux-only", super::hex(&digest));
    let config_path = context.join("cargo-config.toml");
    let vendor_dir = context.join("vendor");
    if std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp)
        && config_path.exists()
        && vendor_dir.is_dir()
    {
        on_line("deployer: vendored crates are current (Cargo.lock unchanged)");
        return Ok(());
    }
    on_line("deployer: cargo vendor (every crate Cargo.lock names, for an offline build)");
    // From nothing: cargo vendor skips a versioned directory that has a checksum file, so a
    // crate emptied for an earlier lockfile would stay empty when a new one needs it.
    if vendor_dir.exists() {
        std::fs::remove_dir_all(&vendor_dir).map_err(|e| io_failed(&vendor_dir, e))?;
    }
    let mut command = Command::new(cargo_program());
    command
        .args(["vendor", "--locked", "--versioned-dirs", "--manifest-path"])
        .arg(ws.root.join("Cargo.toml"))
        .arg(&vendor_dir);
    let output = command
        .output()
        .map_err(|e| Error::usage(format!("cannot run cargo vendor: {e}")))?;
    if !output.status.success() {
        return Err(Error::failed(format!(
            "cargo vendor failed in {}:\n{}",
            ws.root.display(),
            String::from_utf8_lossy(&output.stderr).trim_end()
        )));
    }
    // stdout is the source-replacement config for the host path; nothing when the workspace
    // has no dependencies, and then there is no vendor directory either.
    let config = String::from_utf8_lossy(&output.stdout);
    let config = if config.contains("[source.") {
        let (crates, bytes) = thin_vendor(&ws.root, &vendor_dir)?;
        on_line(&format!(
            "deployer: emptied {crates} vendored crates that no Linux build compiles ({:.1} MB)",
            bytes as f64 / 1e6
        ));
        container_cargo_config(&config)
    } else {
        std::fs::create_dir_all(&vendor_dir).map_err(|e| io_failed(&vendor_dir, e))?;
        "# No dependencies: nothing to vendor.\n".to_string()
    };
    std::fs::write(&config_path, config).map_err(|e| io_failed(&config_path, e))?;
    std::fs::write(&stamp_path, stamp).map_err(|e| io_failed(&stamp_path, e))
}

/// Host and target platforms a Lambda build compiles for: the shipped Dockerfile builds natively
/// under the function's `--platform`; a Dockerfile of one's own may cross-compile between the
/// two architectures or link with musl.
const LINUX_PLATFORMS: [&str; 4] = [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
];

/// Empties the vendored crates that no Linux build compiles (windows-sys and its import
/// libraries, wasm-bindgen, core-foundation...): a third of the example's 300 MB, which the
/// classic builder sends on every build. Returns how many crates and bytes.
fn thin_vendor(root: &Path, vendor_dir: &Path) -> Result<(usize, u64), Error> {
    let mut needed = std::collections::BTreeSet::new();
    for triple in LINUX_PLATFORMS {
        needed.extend(super::cargo::packages_for_platform(root, triple)?);
    }
    let (mut crates, mut bytes) = (0, 0);
    for entry in std::fs::read_dir(vendor_dir).map_err(|e| io_failed(vendor_dir, e))? {
        let entry = entry.map_err(|e| io_failed(vendor_dir, e))?;
        let unneeded = !needed.contains(entry.file_name().to_string_lossy().as_ref());
        if unneeded && entry.path().join(".cargo-checksum.json").is_file() {
            bytes += empty_vendored_crate(&entry.path())?;
            crates += 1;
        }
    }
    Ok((crates, bytes))
}

/// Leaves a vendored crate that cargo reads but never compiles: its manifest (to check
/// Cargo.lock against), every other file's name with no content (paths the manifest names must
/// exist), and a checksum file that keeps the package checksum but lists no files to verify.
/// Returns the bytes removed.
fn empty_vendored_crate(dir: &Path) -> Result<u64, Error> {
    let checksum_path = dir.join(".cargo-checksum.json");
    let checksum: serde_json::Value = std::fs::read(&checksum_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            Error::failed(format!("{}: not a checksum file", checksum_path.display()))
        })?;
    let mut removed = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(|e| io_failed(&current, e))? {
            let entry = entry.map_err(|e| io_failed(&current, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| io_failed(&path, e))?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && path != checksum_path && path != dir.join("Cargo.toml") {
                removed += entry.metadata().map_err(|e| io_failed(&path, e))?.len();
                std::fs::write(&path, b"").map_err(|e| io_failed(&path, e))?;
            }
        }
    }
    let stub = serde_json::json!({ "files": {}, "package": checksum["package"] });
    std::fs::write(&checksum_path, stub.to_string()).map_err(|e| io_failed(&checksum_path, e))?;
    Ok(removed)
}

fn copy_file(from: &Path, to: &Path) -> Result<(), Error> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_failed(parent, e))?;
    }
    std::fs::copy(from, to).map_err(|e| io_failed(from, e))?;
    Ok(())
}

/// Copies the workspace into the context as `git` and `docker build` would see it: without what
/// `.gitignore` and `.dockerignore` exclude (a `.env` with secrets, say), `.git`, and build
/// output (`target_dir`, any directory with a `CACHEDIR.TAG`); hidden files are kept
/// (`.cargo/config.toml` changes how the service compiles). Symlinks stay symlinks.
fn copy_workspace(root: &Path, target_dir: &Path, to: &Path) -> Result<(), Error> {
    let target_dir = target_dir.to_path_buf();
    let walk = ignore::WalkBuilder::new(root)
        .hidden(false)
        .require_git(false)
        .git_global(false)
        .add_custom_ignore_filename(".dockerignore")
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |entry| {
            let path = entry.path();
            path != target_dir
                && entry.file_name() != ".git"
                && !(entry.file_type().is_some_and(|t| t.is_dir())
                    && path.join("CACHEDIR.TAG").exists())
        })
        .build();
    std::fs::create_dir_all(to).map_err(|e| io_failed(to, e))?;
    for entry in walk {
        let entry = entry.map_err(|e| Error::failed(format!("cannot read the workspace: {e}")))?;
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .expect("the walk stays under its root");
        if relative.as_os_str().is_empty() {
            continue;
        }
        let dest = to.join(relative);
        let kind = entry.file_type().expect("only stdin has no file type");
        if kind.is_symlink() {
            let link = std::fs::read_link(path).map_err(|e| io_failed(path, e))?;
            std::os::unix::fs::symlink(link, &dest).map_err(|e| io_failed(&dest, e))?;
        } else if kind.is_dir() {
            std::fs::create_dir_all(&dest).map_err(|e| io_failed(&dest, e))?;
        } else {
            std::fs::copy(path, &dest).map_err(|e| io_failed(path, e))?;
        }
    }
    Ok(())
}

/// Copies a directory tree; symlinks stay symlinks; `skip` prunes paths.
fn copy_tree(from: &Path, to: &Path, skip: &dyn Fn(&Path) -> bool) -> Result<(), Error> {
    std::fs::create_dir_all(to).map_err(|e| io_failed(to, e))?;
    let entries = std::fs::read_dir(from).map_err(|e| io_failed(from, e))?;
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if skip(&path) {
            continue;
        }
        let dest: PathBuf = to.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| io_failed(&path, e))?;
        if kind.is_symlink() {
            let link = std::fs::read_link(&path).map_err(|e| io_failed(&path, e))?;
            std::os::unix::fs::symlink(link, &dest).map_err(|e| io_failed(&dest, e))?;
        } else if kind.is_dir() {
            copy_tree(&path, &dest, skip)?;
        } else {
            std::fs::copy(&path, &dest).map_err(|e| io_failed(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_leaves_out_what_git_and_docker_ignore_but_keeps_hidden_config() {
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path();
        let files = [
            ("Cargo.toml", "[package]"),
            ("src/main.rs", "fn main() {}"),
            (".cargo/config.toml", "[build]"),
            (".gitignore", "/target\n.env\n"),
            (".dockerignore", "notes/\n"),
            (".env", "AWS_SECRET_ACCESS_KEY=secret"),
            ("notes/todo.md", "private"),
            ("target/debug/big", "build output"),
            (
                "out/CACHEDIR.TAG",
                "Signature: 8a477f597d28d172789f06886806bc55",
            ),
            ("out/x", "cache"),
            (".git/config", "[core]"),
        ];
        for (path, text) in files {
            std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            std::fs::write(root.join(path), text).unwrap();
        }
        let to = tempfile::tempdir().unwrap();
        copy_workspace(root, &root.join("target"), to.path()).unwrap();
        let mut copied: Vec<String> = ignore::WalkBuilder::new(to.path())
            .hidden(false)
            .ignore(false)
            .git_ignore(false)
            .build()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
            .map(|e| {
                e.path()
                    .strip_prefix(to.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        copied.sort();
        assert_eq!(
            copied,
            [
                ".cargo/config.toml",
                ".dockerignore",
                ".gitignore",
                "Cargo.toml",
                "src/main.rs"
            ]
        );
    }

    #[test]
    fn an_emptied_vendored_crate_keeps_its_manifest_its_file_names_and_package_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let krate = dir.path().join("windows-sys-0.52.0");
        std::fs::create_dir_all(krate.join("src/Windows")).unwrap();
        let manifest = "[package]\nname = \"windows-sys\"\nversion = \"0.52.0\"\n";
        std::fs::write(krate.join("Cargo.toml"), manifest).unwrap();
        std::fs::write(krate.join("src/lib.rs"), "pub mod Windows;\n").unwrap();
        std::fs::write(krate.join("src/Windows/mod.rs"), [b'x'; 1000]).unwrap();
        std::fs::write(
            krate.join(".cargo-checksum.json"),
            r#"{"files":{"Cargo.toml":"aa","src/lib.rs":"bb","src/Windows/mod.rs":"cc"},"package":"1234"}"#,
        )
        .unwrap();
        assert_eq!(empty_vendored_crate(&krate).unwrap(), 1017);
        let read = |path: &str| std::fs::read_to_string(krate.join(path)).unwrap();
        assert_eq!(read("Cargo.toml"), manifest);
        assert_eq!(read("src/lib.rs"), "");
        assert_eq!(read("src/Windows/mod.rs"), "");
        let checksum: serde_json::Value =
            serde_json::from_str(&read(".cargo-checksum.json")).unwrap();
        assert_eq!(
            checksum,
            serde_json::json!({ "files": {}, "package": "1234" })
        );

        std::fs::remove_file(krate.join(".cargo-checksum.json")).unwrap();
        let err = empty_vendored_crate(&krate).unwrap_err();
        assert!(err.message.contains("not a checksum file"), "{err}");
    }

    #[test]
    fn docker_buildkit_decides_first_then_buildx_presence() {
        use Builder::*;
        assert_eq!(choose_builder(None, true), Buildx);
        assert_eq!(choose_builder(None, false), Classic);
        assert_eq!(choose_builder(Some("0"), true), Classic);
        assert_eq!(choose_builder(Some("false"), false), Classic);
        assert_eq!(choose_builder(Some("1"), true), Buildx);
        assert_eq!(choose_builder(Some("1"), false), BuildKit);
        assert_eq!(choose_builder(Some(""), false), Classic);
    }

    #[test]
    fn build_arguments_pin_the_platform_target_and_network() {
        let ws = Workspace {
            root: "/w".into(),
            target_dir: "/w/target".into(),
            packages: Vec::new(),
        };
        let mut request = Request {
            workspace: &ws,
            package: "notes",
            binary: "notes-api",
            architecture: Architecture::Arm64,
            dockerfile: None,
            builder_image: None,
            no_cache: false,
        };
        let native = Builds {
            build_platform: "linux/arm64".into(),
            builder_image: None,
            linker: None,
            classic: false,
        };
        let args = build_args(&request, Path::new("/ctx/Dockerfile"), &native);
        assert_eq!(
            args,
            [
                "--network=none",
                "--platform=linux/arm64",
                "--file",
                "/ctx/Dockerfile",
                "--build-arg",
                "TARGET=aarch64-unknown-linux-gnu",
                "--build-arg",
                "PACKAGE=notes",
                "--build-arg",
                "BINARY=notes-api"
            ]
        );
        request.architecture = Architecture::X86_64;
        request.no_cache = true;
        let cross_classic = Builds {
            build_platform: "linux/arm64".into(),
            builder_image: Some("local/rust:1".into()),
            linker: Some("x86_64-linux-gnu-gcc"),
            classic: true,
        };
        let args = build_args(&request, Path::new("/ctx/Dockerfile"), &cross_classic);
        assert!(
            args.contains(&"--platform=linux/arm64".to_string()),
            "the classic builder builds every stage on the build platform"
        );
        assert!(args.contains(&"TARGET=x86_64-unknown-linux-gnu".to_string()));
        assert!(args.contains(&"BUILDER_IMAGE=local/rust:1".to_string()));
        assert!(args.contains(&"LINKER=x86_64-linux-gnu-gcc".to_string()));
        assert!(
            args.contains(&"CLASSIC_BUILDPLATFORM=linux/arm64".to_string()),
            "the classic builder does not set BUILDPLATFORM itself"
        );
        assert_eq!(args.last().unwrap(), "--no-cache");
    }

    #[test]
    fn the_builder_runs_on_the_build_platform_and_cross_compiles_with_a_derived_or_given_image() {
        use BuilderPlan::*;
        let cases = [
            ("linux/amd64", Architecture::X86_64, None, Native(None)),
            (
                "linux/amd64",
                Architecture::X86_64,
                Some("my/rust:1"),
                Native(Some("my/rust:1".into())),
            ),
            (
                "linux/amd64",
                Architecture::Arm64,
                None,
                Derive {
                    base: DEFAULT_BUILDER_IMAGE,
                    linker: "aarch64-linux-gnu-gcc",
                },
            ),
            (
                "linux/amd64",
                Architecture::Arm64,
                Some("my/rust:1"),
                Given {
                    image: "my/rust:1".into(),
                    linker: "aarch64-linux-gnu-gcc",
                },
            ),
            // An arm64 engine (Apple silicon, Graviton) building an x86_64 function.
            (
                "linux/arm64",
                Architecture::X86_64,
                None,
                Derive {
                    base: DEFAULT_BUILDER_IMAGE,
                    linker: "x86_64-linux-gnu-gcc",
                },
            ),
            ("linux/arm64", Architecture::Arm64, None, Native(None)),
        ];
        for (engine, architecture, named, expected) in cases {
            assert_eq!(
                builder_plan(engine, architecture, named),
                expected,
                "{engine} {architecture:?} {named:?}"
            );
        }
        assert!(
            DOCKERFILE.contains(&format!("ARG BUILDER_IMAGE={DEFAULT_BUILDER_IMAGE}")),
            "the Dockerfile's default is the image deployer derives from"
        );
        assert!(DOCKERFILE.contains(
            "FROM --platform=${CLASSIC_BUILDPLATFORM:-$BUILDPLATFORM} ${BUILDER_IMAGE} AS builder"
        ));
        assert_eq!(
            cross_toolchain(Architecture::Arm64).1,
            ["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"]
        );
    }

    #[test]
    fn the_vendor_directory_moves_to_the_containers_path() {
        let host = "[source.crates-io]\nreplace-with = \"vendored-sources\"\n\n[source.vendored-sources]\ndirectory = \"/home/me/api/target/deployer/docker/api/vendor\"\n";
        let config = container_cargo_config(host);
        assert!(
            config.contains("directory = \"/deployer/vendor\""),
            "{config}"
        );
        assert!(config.contains("replace-with = \"vendored-sources\""));
        assert!(!config.contains("/home/me"));
    }

    #[test]
    fn the_shipped_dockerfile_is_multistage_offline_and_ends_in_scratch() {
        assert!(DOCKERFILE.contains("ARG BUILDER_IMAGE="));
        assert!(DOCKERFILE.contains("COPY skeleton/ ./"));
        assert!(DOCKERFILE.contains("COPY workspace/ ./"));
        assert!(DOCKERFILE.contains("--offline"));
        let skeleton = DOCKERFILE.find("COPY skeleton/").unwrap();
        let sources = DOCKERFILE.find("COPY workspace/").unwrap();
        assert!(
            skeleton < sources,
            "dependencies are built before the sources arrive"
        );
        let last_from = DOCKERFILE.rfind("\nFROM ").unwrap();
        assert!(DOCKERFILE[last_from..].starts_with("\nFROM scratch"));
    }
}
