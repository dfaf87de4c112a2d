//! `deployer init`: a deployable service in one command, from the scaffold in `templates/`.

use std::path::{Path, PathBuf};

use crate::exit::Error;
use crate::spec::names;

/// `deployer init`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  deployer init my-service && cd my-service && deployer validate\n  deployer init . --name notes\n\nWrites service/Cargo.toml, service/src/main.rs, stacks/<name>.yaml and .gitignore;\nrefuses to overwrite any of them."
)]
pub struct Args {
    /// Where to create it
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// App name [default: from the directory's name]
    #[arg(long)]
    name: Option<String>,
}

impl Args {
    /// Runs `init`.
    pub fn run(self) -> Result<(), Error> {
        let files = init(&self.dir, self.name.as_deref())?;
        for file in &files {
            crate::ui::note(format!("created {}", file.display()));
        }
        crate::ui::note(format!(
            "next: cd {} && deployer validate && deployer up   (up builds the service first)",
            self.dir.display()
        ));
        Ok(())
    }
}

/// The scaffold, embedded so the binary works anywhere: (path under the target dir, template).
const FILES: &[(&str, &str)] = &[
    (
        "service/Cargo.toml",
        include_str!("../../templates/service/Cargo.toml.tmpl"),
    ),
    (
        "service/src/main.rs",
        include_str!("../../templates/service/src/main.rs"),
    ),
    (
        "stacks/{{name}}.yaml",
        include_str!("../../templates/stack.yaml.tmpl"),
    ),
    (".gitignore", include_str!("../../templates/gitignore.tmpl")),
];

/// The app name from the directory's name: lowercase, dashes for anything else.
pub fn name_from_dir(dir: &Path) -> Option<String> {
    let base = std::fs::canonicalize(dir)
        .ok()
        .unwrap_or_else(|| dir.to_path_buf());
    let raw = base.file_name()?.to_string_lossy().to_ascii_lowercase();
    let mut name = String::new();
    for c in raw.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name
        .trim_end_matches('-')
        .chars()
        .take(31)
        .collect::<String>();
    names::check_app(&name).ok().map(|()| name)
}

/// Writes the scaffold (and `deployer.schema.json`) into `dir`; refuses, writing nothing, if any file exists. Returns the files.
pub fn init(dir: &Path, name: Option<&str>) -> Result<Vec<PathBuf>, Error> {
    let name = match name {
        Some(n) => {
            names::check_app(n).map_err(|why| Error::usage(format!("--name `{n}` {why}")))?;
            n.to_string()
        }
        None => name_from_dir(dir).ok_or_else(|| {
            Error::usage(format!(
                "cannot make an app name from `{}`: pass --name",
                dir.display()
            ))
        })?,
    };
    let mut files: Vec<(PathBuf, String)> = FILES
        .iter()
        .map(|(path, template)| {
            (
                dir.join(path.replace("{{name}}", &name)),
                template.replace("{{name}}", &name),
            )
        })
        .collect();
    // The spec's first line points editors at this schema.
    files.push((dir.join("deployer.schema.json"), crate::spec::schema()));
    let existing: Vec<String> = files
        .iter()
        .filter(|(p, _)| p.exists())
        .map(|(p, _)| format!("  {}", p.display()))
        .collect();
    if !existing.is_empty() {
        return Err(Error::usage(format!(
            "refusing to overwrite existing files (nothing was written):\n{}",
            existing.join("\n")
        )));
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::failed(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(path, text)
            .map_err(|e| Error::failed(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_directories() {
        assert_eq!(
            name_from_dir(Path::new("/x/My Service")).as_deref(),
            Some("my-service")
        );
        assert_eq!(
            name_from_dir(Path::new("/x/notes_api2")).as_deref(),
            Some("notes-api2")
        );
        assert_eq!(name_from_dir(Path::new("/x/123")), None);
    }
}
