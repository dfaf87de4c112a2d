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

/// The newest glibc symbol version the binary needs (`GLIBC_2.34` → `(2, 34)`), read from its
/// version-needs section (`.gnu.version_r`): `None` for a binary that needs none (static). A
/// `GLIBC_` string anywhere else (data, messages) is not a need.
pub fn glibc_needed(binary: &[u8]) -> Result<Option<(u32, u32)>, String> {
    use object::read::elf::FileHeader as _;
    let unreadable = |e: object::read::Error| format!("an ELF whose sections cannot be read ({e})");
    let header =
        object::elf::FileHeader64::<object::Endianness>::parse(binary).map_err(unreadable)?;
    let endian = header.endian().map_err(unreadable)?;
    let sections = header.sections(endian, binary).map_err(unreadable)?;
    let Some((mut needs, link)) = sections.gnu_verneed(endian, binary).map_err(unreadable)? else {
        return Ok(None);
    };
    let strings = sections.strings(endian, binary, link).map_err(unreadable)?;
    let mut newest = None;
    while let Some((_, mut versions)) = needs.next().map_err(unreadable)? {
        while let Some(version) = versions.next().map_err(unreadable)? {
            let name = version.name(endian, strings).map_err(unreadable)?;
            let Some(number) = name.strip_prefix(b"GLIBC_") else {
                continue;
            };
            let text = std::str::from_utf8(number).unwrap_or("");
            let mut parts = text.split('.').map(|p| p.parse::<u32>());
            if let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) {
                newest = newest.max(Some((major, minor)));
            }
        }
    }
    Ok(newest)
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
    let needed = glibc_needed(binary)
        .map_err(|why| Error::failed(format!("the build of `{function}` produced {why}")))?;
    if let Some(needed) = needed
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

    /// A real dynamically linked executable from the machine's C compiler, printing `text`.
    fn compiled(text: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("main.c");
        std::fs::write(
            &source,
            format!("#include <stdio.h>\nint main(void) {{ puts(\"{text}\"); return 0; }}\n"),
        )
        .unwrap();
        let out = dir.path().join("main");
        let status = std::process::Command::new("cc")
            .arg(&source)
            .arg("-o")
            .arg(&out)
            .status()
            .expect("these tests need a C compiler as `cc` (Debian: apt-get install gcc)");
        assert!(status.success(), "cc failed");
        std::fs::read(out).unwrap()
    }

    /// `binary` with every `from` replaced by `to` (same length).
    fn patched(binary: &[u8], from: &str, to: &str) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let mut out = binary.to_vec();
        let mut i = 0;
        while let Some(at) = out[i..]
            .windows(from.len())
            .position(|w| w == from.as_bytes())
        {
            out[i + at..i + at + to.len()].copy_from_slice(to.as_bytes());
            i += at + to.len();
        }
        out
    }

    #[test]
    fn only_the_version_needs_count_not_glibc_text_elsewhere() {
        let binary = compiled("GLIBC_2.99 is only a message");
        let needed = glibc_needed(&binary)
            .unwrap()
            .expect("cc links glibc dynamically");
        assert!(needed < (2, 99), "{needed:?}");
        assert!(needed >= (2, 2), "{needed:?}");
        assert_eq!(
            glibc_needed(b"\x7fELF junk"),
            Err(
                "an ELF whose sections cannot be read (Invalid ELF header size or alignment)"
                    .into()
            )
        );
    }

    #[test]
    fn wrong_architecture_and_newer_glibc_are_refused_with_the_way_out() {
        let binary = compiled("hello");
        let host = glibc_needed(&binary).unwrap().unwrap();
        let arch = architecture(&binary).unwrap();
        let other = if arch == Architecture::X86_64 {
            Architecture::Arm64
        } else {
            Architecture::X86_64
        };
        let err = check(&binary, other, "api").unwrap_err();
        assert!(
            err.message.contains(&format!(
                "{} binary, but the spec says {}",
                arch.as_str(),
                other.as_str()
            )),
            "{err}"
        );
        // The newest version it needs, renamed in the string table to one Lambda lacks.
        let found = format!("GLIBC_{}.{}", host.0, host.1);
        let newer = format!("GLIBC_{}.{}", host.0, "9".repeat(found.len() - 8));
        let binary = patched(&binary, &format!("{found}\0"), &format!("{newer}\0"));
        let err = check(&binary, arch, "api").unwrap_err();
        assert!(
            err.message
                .contains(&format!("needs glibc {}", &newer[6..])),
            "{err}"
        );
        assert!(err.message.contains("cargo-lambda"), "{err}");
        let err = check(b"junk", Architecture::X86_64, "api").unwrap_err();
        assert!(err.message.contains("not an ELF"), "{err}");
    }
}
