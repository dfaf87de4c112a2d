//! Checks on a built `bootstrap` before it is zipped: that Lambda's custom runtime can run it.
//!
//! Caught here rather than at the first invocation: a binary for the wrong CPU fails with
//! `Runtime.InvalidEntrypoint`, and one linked against a newer glibc than the runtime's with
//! `GLIBC_2.xx not found`, both only after the deploy has succeeded.

use crate::exit::Error;
use crate::spec::Architecture;

/// The glibc of Lambda's `provided.al2023` runtime (Amazon Linux 2023).
pub const RUNTIME_GLIBC: (u32, u32) = (2, 34);

/// The CPU an ELF executable is for, or why it is not one Lambda can run.
pub fn architecture(binary: &[u8]) -> Result<Architecture, String> {
    if binary.len() < 20 || &binary[..4] != b"\x7fELF" {
        return Err("not an ELF executable".into());
    }
    if binary[4] != 2 || binary[5] != 1 {
        return Err("not a 64-bit little-endian ELF".into());
    }
    match u16::from_le_bytes([binary[18], binary[19]]) {
        0x3e => Ok(Architecture::X86_64),
        0xb7 => Ok(Architecture::Arm64),
        other => Err(format!(
            "an ELF for machine type {other:#x}, not x86_64 or arm64"
        )),
    }
}

/// The newest glibc symbol version the binary needs (`GLIBC_2.34` → `(2, 34)`), if it links
/// glibc at all. Version names sit in the dynamic string table as plain text.
pub fn glibc_needed(binary: &[u8]) -> Option<(u32, u32)> {
    let marker = b"GLIBC_";
    let mut newest = None;
    let mut i = 0;
    while let Some(at) = find(&binary[i..], marker) {
        let start = i + at + marker.len();
        let digits = binary[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .count();
        let text = std::str::from_utf8(&binary[start..start + digits]).unwrap_or("");
        let mut parts = text.split('.').map(|p| p.parse::<u32>());
        if let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) {
            newest = newest.max(Some((major, minor)));
        }
        i = start;
    }
    newest
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Checks `bootstrap` is an executable for `wanted` that `provided.al2023` can load.
pub fn check(binary: &[u8], wanted: Architecture, function: &str) -> Result<(), Error> {
    let found = architecture(binary)
        .map_err(|why| Error::failed(format!("the build of `{function}` produced {why}")))?;
    if found != wanted {
        return Err(Error::failed(format!(
            "the build of `{function}` produced an {} binary, but the spec says {}: \
             build on (or for) the function's architecture",
            found.as_str(),
            wanted.as_str()
        )));
    }
    if let Some(needed) = glibc_needed(binary)
        && needed > RUNTIME_GLIBC
    {
        return Err(Error::failed(format!(
            "`{function}` needs glibc {}.{}, but Lambda's provided.al2023 runtime has {}.{}: \
             build on an older distribution (the default builder is Debian bookworm, glibc 2.36, \
             whose Rust binaries need at most 2.34) or with `--build-method cargo-lambda` \
             (zig links against an older glibc)",
            needed.0, needed.1, RUNTIME_GLIBC.0, RUNTIME_GLIBC.1
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16) -> Vec<u8> {
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(b"\x7fELF");
        header[4] = 2;
        header[5] = 1;
        header[18..20].copy_from_slice(&machine.to_le_bytes());
        header
    }

    #[test]
    fn the_machine_field_names_the_architecture() {
        assert_eq!(architecture(&elf(0x3e)), Ok(Architecture::X86_64));
        assert_eq!(architecture(&elf(0xb7)), Ok(Architecture::Arm64));
        assert!(architecture(&elf(0x28)).unwrap_err().contains("0x28"));
        assert_eq!(
            architecture(b"#!/bin/sh\n").unwrap_err(),
            "not an ELF executable"
        );
        let mut elf32 = elf(0x3e);
        elf32[4] = 1;
        assert!(architecture(&elf32).unwrap_err().contains("64-bit"));
    }

    #[test]
    fn the_newest_glibc_version_wins() {
        let mut binary = elf(0x3e);
        binary.extend_from_slice(b"\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.17\0GLIBC_PRIVATE\0");
        assert_eq!(glibc_needed(&binary), Some((2, 34)));
        assert_eq!(glibc_needed(&elf(0x3e)), None);
    }

    #[test]
    fn wrong_architecture_and_newer_glibc_are_refused_with_the_way_out() {
        let mut binary = elf(0x3e);
        assert!(check(&binary, Architecture::X86_64, "api").is_ok());
        let err = check(&binary, Architecture::Arm64, "api").unwrap_err();
        assert!(
            err.message
                .contains("x86_64 binary, but the spec says arm64"),
            "{err}"
        );
        binary.extend_from_slice(b"\0GLIBC_2.39\0");
        let err = check(&binary, Architecture::X86_64, "api").unwrap_err();
        assert!(err.message.contains("needs glibc 2.39"), "{err}");
        assert!(err.message.contains("cargo-lambda"), "{err}");
        let err = check(b"junk", Architecture::X86_64, "api").unwrap_err();
        assert!(err.message.contains("not an ELF"), "{err}");
    }
}
