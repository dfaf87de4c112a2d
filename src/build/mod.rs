//! Function artifacts: a Lambda deployment zip with `bootstrap` at its root, and its sha256.
//!
//! Zips are written reproducibly (fixed timestamps and permissions), so the same binary always
//! gives the same sha256, the same S3 key, and so no upload and no update.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::exit::Error;

/// A deployment zip in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The zip bytes.
    pub bytes: Vec<u8>,
    /// Their SHA-256.
    pub sha256: [u8; 32],
}

impl Artifact {
    /// An artifact from zip bytes.
    pub fn from_zip(bytes: Vec<u8>) -> Artifact {
        let sha256 = Sha256::digest(&bytes).into();
        Artifact { bytes, sha256 }
    }

    /// The sha256 in hex: the artifact's S3 key stem.
    pub fn sha256_hex(&self) -> String {
        crate::converge::model::hex(&self.sha256)
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

/// Produces the artifact of one function.
pub fn build(source: &Source) -> Result<Artifact, Error> {
    match source {
        Source::Zip(path) => load_zip(path),
    }
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
