//! Function artifacts: a Lambda deployment zip with `bootstrap` at its root, and its sha256.
//!
//! Three ways to get one ([`Source`]): the multistage Dockerfile ([`docker`]), `cargo lambda
//! build` on the host ([`cargo_lambda`]), or a prebuilt zip. Built binaries are checked
//! ([`elf`]) and zipped reproducibly (fixed timestamps and permissions), so the same binary
//! always gives the same sha256, the same S3 key, and so no upload and no update.

pub mod cargo;
pub mod cargo_lambda;
pub mod docker;
pub mod elf;
mod process;

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::exit::Error;
use crate::spec::Architecture;

/// A deployment zip in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The zip bytes.
    pub bytes: Vec<u8>,
    /// Their SHA-256.
    pub sha256: [u8; 32],
}

/// Lowercase hex of bytes (sha256 digests: artifact keys, template keys, the deploy digest).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Artifact {
    /// An artifact from zip bytes.
    pub fn from_zip(bytes: Vec<u8>) -> Artifact {
        let sha256 = Sha256::digest(&bytes).into();
        Artifact { bytes, sha256 }
    }

    /// The sha256 in hex: the artifact's S3 key stem.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }

    /// The S3 key: `<app>/<function>/<sha256>.zip`.
    pub fn key(&self, app: &str, function: &str) -> String {
        format!("{app}/{function}/{}.zip", self.sha256_hex())
    }
}

/// Where a function's artifact comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A prebuilt zip (`--artifact FN=path` or `build: { method: zip, path }`).
    Zip(PathBuf),
    /// The multistage Dockerfile.
    Docker {
        /// What to build.
        project: Project,
        /// A Dockerfile to use instead of the shipped one.
        dockerfile: Option<PathBuf>,
        /// The builder stage's base image, else the Dockerfile's default.
        builder_image: Option<String>,
        /// Rebuild every layer (`--no-cache`).
        no_cache: bool,
    },
    /// `cargo lambda build` on the host.
    CargoLambda {
        /// What to build.
        project: Project,
    },
}

impl Source {
    /// The method's name, as the spec and `--build-method` spell it.
    pub fn method(&self) -> Method {
        match self {
            Source::Zip(_) => Method::Zip,
            Source::Docker { .. } => Method::Docker(None),
            Source::CargoLambda { .. } => Method::CargoLambda,
        }
    }
}

/// How an artifact is made: `docker`, once built `docker (classic)` (the builder that ran the
/// Dockerfile), `cargo-lambda` or `zip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A prebuilt zip.
    Zip,
    /// `cargo lambda build` on this machine.
    CargoLambda,
    /// The multistage Dockerfile; once built, with the builder that ran it.
    Docker(Option<docker::Builder>),
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Method::Zip => f.write_str("zip"),
            Method::CargoLambda => f.write_str("cargo-lambda"),
            Method::Docker(None) => f.write_str("docker"),
            Method::Docker(Some(builder)) => write!(f, "docker ({})", builder.as_str()),
        }
    }
}

impl serde::Serialize for Method {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A function's cargo project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The project directory (holding its Cargo.toml).
    pub dir: PathBuf,
    /// The binary, when the package has several or the directory is a virtual workspace.
    pub binary: Option<String>,
    /// The CPU the function runs on.
    pub architecture: Architecture,
}

/// A produced artifact and how it was made.
#[derive(Debug, Clone)]
pub struct Built {
    /// The zip.
    pub artifact: Artifact,
    /// `docker (classic)`, `cargo-lambda`, `zip`...
    pub method: Method,
    /// Where the zip is on disk.
    pub path: PathBuf,
    /// How long producing it took.
    pub elapsed: Duration,
}

/// What a build reports while it runs; the console and JSON reporters implement it.
pub trait Observer {
    /// A function's build starts.
    fn build_started(&self, function: &str, method: Method);
    /// One line of the build tool's output.
    fn build_line(&self, function: &str, line: &str);
    /// Still building (about once a second), with the latest line.
    fn build_waiting(&self, function: &str, elapsed: Duration, last_line: &str);
    /// The artifact is ready.
    fn build_finished(&self, function: &str, built: &Built);
}

/// Zips `bootstrap` (an executable) reproducibly: the same bytes always give the same zip.
pub fn zip_bootstrap(bootstrap: &[u8]) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o755);
        zip.start_file("bootstrap", options)
            .expect("writing to memory");
        zip.write_all(bootstrap).expect("writing to memory");
        zip.finish().expect("writing to memory");
    }
    out.into_inner()
}

/// Reads a prebuilt zip and checks it is a Lambda deployment package for a custom runtime.
pub fn load_zip(path: &Path) -> Result<Artifact, Error> {
    let shown = path.display();
    let bytes = std::fs::read(path)
        .map_err(|e| Error::usage(format!("cannot read artifact {shown}: {e}")))?;
    let mut archive = zip::ZipArchive::new(Cursor::new(&bytes))
        .map_err(|e| Error::usage(format!("artifact {shown} is not a zip: {e}")))?;
    if archive.by_name("bootstrap").is_err() {
        return Err(Error::usage(format!(
            "artifact {shown} has no `bootstrap` at its root: Lambda's custom runtime runs that file"
        )));
    }
    drop(archive);
    Ok(Artifact::from_zip(bytes))
}

/// Produces the artifact of one function, blocking; `on_line` gets the build tool's output.
pub fn build(
    function: &str,
    source: &Source,
    on_line: &mut dyn FnMut(&str),
) -> Result<Built, Error> {
    let started = Instant::now();
    let project = match source {
        Source::Zip(path) => {
            return Ok(Built {
                artifact: load_zip(path)?,
                method: Method::Zip,
                path: path.clone(),
                elapsed: started.elapsed(),
            });
        }
        Source::Docker { project, .. } | Source::CargoLambda { project } => project,
    };
    let ws = cargo::workspace(&project.dir)?;
    let (package, binary) = ws.binary(&project.dir, project.binary.as_deref())?;
    let (bytes, method) = if let Source::Docker {
        dockerfile,
        builder_image,
        no_cache,
        ..
    } = source
    {
        let request = docker::Request {
            workspace: &ws,
            package: &package.name,
            binary: &binary,
            architecture: project.architecture,
            dockerfile: dockerfile.as_deref(),
            builder_image: builder_image.as_deref(),
            no_cache: *no_cache,
        };
        let (bytes, builder) = docker::build(&request, on_line)?;
        (bytes, Method::Docker(Some(builder)))
    } else {
        let bytes = cargo_lambda::build(&ws, package, &binary, project.architecture, on_line)?;
        (bytes, Method::CargoLambda)
    };
    elf::check(&bytes, project.architecture, function)?;
    let artifact = Artifact::from_zip(zip_bootstrap(&bytes));
    let path = ws
        .target_dir
        .join("lambda")
        .join(&binary)
        .join("bootstrap.zip");
    write_file(&path, &artifact.bytes)?;
    Ok(Built {
        artifact,
        method,
        path,
        elapsed: started.elapsed(),
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let failed = |e: std::io::Error| Error::failed(format!("cannot write {}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    std::fs::write(path, bytes).map_err(failed)
}

/// Produces every function's artifact, one build at a time (builds use every core), while the
/// caller's other futures (bootstrap, describe) go on; progress goes to `observer`.
pub async fn build_all(
    sources: &[(String, Source)],
    observer: &dyn Observer,
) -> Result<Vec<(String, Built)>, Error> {
    let mut built = Vec::new();
    for (function, source) in sources {
        if let Source::Zip(_) = source {
            built.push((function.clone(), build(function, source, &mut |_| {})?));
            continue;
        }
        observer.build_started(function, source.method());
        let result = build_in_background(function, source, observer).await?;
        observer.build_finished(function, &result);
        built.push((function.clone(), result));
    }
    Ok(built)
}

/// Runs one build on its own thread, forwarding its lines to `observer` on this one.
async fn build_in_background(
    function: &str,
    source: &Source,
    observer: &dyn Observer,
) -> Result<Built, Error> {
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let (name, job) = (function.to_string(), source.clone());
    std::thread::spawn(move || {
        let result = build(&name, &job, &mut |line| {
            let _ = lines_tx.send(line.to_string());
        });
        let _ = done_tx.send(result);
    });
    let started = Instant::now();
    let mut last = String::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => {
                    observer.build_line(function, &line);
                    if !line.trim().is_empty() {
                        last = line;
                    }
                }
                None => break,
            },
            _ = tick.tick() => observer.build_waiting(function, started.elapsed(), &last),
        }
    }
    done.await.unwrap_or_else(|_| {
        Err(Error::failed(format!(
            "the build of `{function}` stopped unexpectedly"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zips_are_reproducible_and_hold_an_executable_bootstrap() {
        let a = zip_bootstrap(b"\x7fELF binary");
        assert_eq!(a, zip_bootstrap(b"\x7fELF binary"));
        assert_ne!(a, zip_bootstrap(b"\x7fELF other"));
        let mut archive = zip::ZipArchive::new(Cursor::new(&a)).unwrap();
        let file = archive.by_name("bootstrap").unwrap();
        assert_eq!(file.unix_mode().map(|m| m & 0o777), Some(0o755));
    }

    #[test]
    fn prebuilt_zips_must_hold_bootstrap() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.zip");
        std::fs::write(&good, zip_bootstrap(b"x")).unwrap();
        let artifact = load_zip(&good).unwrap();
        assert_eq!(
            artifact.key("notes", "api"),
            format!("notes/api/{}.zip", artifact.sha256_hex())
        );
        let bad = dir.path().join("bad.zip");
        std::fs::write(&bad, b"not a zip").unwrap();
        assert!(load_zip(&bad).unwrap_err().message.contains("is not a zip"));
        let missing = dir.path().join("nope.zip");
        assert!(
            load_zip(&missing)
                .unwrap_err()
                .message
                .contains("cannot read artifact")
        );
    }
}
