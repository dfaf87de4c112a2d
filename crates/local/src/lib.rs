//! `deployer local`: a rendered stack's functions served on a loopback port the way its
//! Application Load Balancer will serve them. The listener rules come from the template
//! ([`routes`]), requests and answers are converted as the load balancer does ([`alb`]), and each
//! function's built `bootstrap` runs behind a Lambda Runtime API of its own ([`runtime`]).
//!
//! No AWS SDK and no output formatting: what happens is sent as [`Event`]s for the caller to show.

#![warn(missing_docs)]

pub mod alb;
pub mod routes;
pub mod runtime;
pub mod server;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Something the caller may want to show.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A function's process started (a cold start).
    Started {
        /// The function's spec name.
        function: String,
        /// Its process id.
        pid: Option<u32>,
    },
    /// A line the function wrote (stdout or stderr).
    Log {
        /// The function's spec name.
        function: String,
        /// The line.
        line: String,
    },
    /// A function's process ended.
    Exited {
        /// The function's spec name.
        function: String,
        /// How, in words.
        how: String,
    },
    /// A request was answered.
    Request(Served),
}

/// One answered request.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// The status sent.
    pub status: u16,
    /// The function that answered (none for a fixed response or a refusal).
    pub function: Option<String>,
    /// Receipt to answer.
    pub duration: Duration,
    /// Process start to this answer, when this request started the process.
    pub cold_start: Option<Duration>,
    /// Why the load balancer answered itself (502, 413, ...).
    pub error: Option<String>,
}

/// A CPU architecture, as ELF files and Lambda name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `x86_64`.
    X86_64,
    /// `arm64` on Lambda, `aarch64` in ELF.
    Aarch64,
}

impl Arch {
    /// This machine's.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    fn qemu(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Where Debian's cross C library for this architecture lives (`libc6-<arch>-cross`).
    fn cross_sysroot(self) -> PathBuf {
        PathBuf::from(format!("/usr/{}-linux-gnu", self.qemu()))
    }
}

/// What runs a `target` binary on a `host` machine: nothing (the same architecture), or
/// qemu-user with the target's C library as its root. `qemu`: the emulator found, if any;
/// `sysroot`: a directory holding the target's dynamic loader, if any.
pub fn emulator_command(
    target: Arch,
    host: Option<Arch>,
    qemu: Option<&Path>,
    sysroot: Option<&Path>,
) -> Result<Vec<OsString>, String> {
    if host == Some(target) {
        return Ok(Vec::new());
    }
    let needs = format!(
        "an {} bootstrap on this {} machine runs under qemu-user",
        target.qemu(),
        std::env::consts::ARCH
    );
    let install = format!(
        "on Debian or Ubuntu: apt-get install qemu-user-static libc6-{0}-cross libgcc-s1-{0}-cross",
        if target == Arch::Aarch64 {
            "arm64"
        } else {
            "amd64"
        }
    );
    let qemu = qemu.ok_or_else(|| {
        format!(
            "{needs}, and neither qemu-{0}-static nor qemu-{0} is on PATH ({install})",
            target.qemu()
        )
    })?;
    let sysroot = sysroot.ok_or_else(|| {
        format!(
            "{needs}, which needs the {} C library at {} ({install})",
            target.qemu(),
            target.cross_sysroot().display()
        )
    })?;
    Ok(vec![
        qemu.as_os_str().to_owned(),
        "-L".into(),
        sysroot.as_os_str().to_owned(),
    ])
}

/// [`emulator_command`] with what this machine has: qemu on `PATH`, Debian's cross C library.
pub fn find_emulator(target: Arch) -> Result<Vec<OsString>, String> {
    let host = Arch::host();
    if host == Some(target) {
        return Ok(Vec::new());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let qemu = [
        format!("qemu-{}-static", target.qemu()),
        format!("qemu-{}", target.qemu()),
    ]
    .into_iter()
    .find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(&name))
            .find(|candidate| candidate.is_file())
    });
    let sysroot = target.cross_sysroot();
    let loader = match target {
        Arch::Aarch64 => "lib/ld-linux-aarch64.so.1",
        Arch::X86_64 => "lib64/ld-linux-x86-64.so.2",
    };
    let sysroot = sysroot.join(loader).exists().then_some(sysroot);
    emulator_command(target, host, qemu.as_deref(), sysroot.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_binary_runs_under_qemu_with_its_c_library_or_is_refused_with_the_fix() {
        let qemu = Path::new("/usr/bin/qemu-aarch64-static");
        let root = Path::new("/usr/aarch64-linux-gnu");
        let x86 = Some(Arch::X86_64);
        assert!(
            emulator_command(Arch::X86_64, x86, None, None)
                .unwrap()
                .is_empty()
        );
        assert!(
            emulator_command(Arch::Aarch64, Some(Arch::Aarch64), None, None)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            emulator_command(Arch::Aarch64, x86, Some(qemu), Some(root)).unwrap(),
            [
                OsString::from("/usr/bin/qemu-aarch64-static"),
                "-L".into(),
                "/usr/aarch64-linux-gnu".into()
            ]
        );
        let no_qemu = emulator_command(Arch::Aarch64, x86, None, Some(root)).unwrap_err();
        assert!(no_qemu.contains("qemu-aarch64-static"), "{no_qemu}");
        assert!(
            no_qemu.contains(
                "apt-get install qemu-user-static libc6-arm64-cross libgcc-s1-arm64-cross"
            )
        );
        let no_libc = emulator_command(Arch::Aarch64, x86, Some(qemu), None).unwrap_err();
        assert!(no_libc.contains("/usr/aarch64-linux-gnu"), "{no_libc}");
    }
}
