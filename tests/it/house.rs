//! The house rules a reader relies on, checked on the source itself: functions short enough to
//! read at once (the few longer ones named here, each with its reason), and converge modules
//! that do not import each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lines a function may have.
const LONGEST: usize = 80;

/// The functions allowed to be longer, with why (at most five).
const LONGER: &[(&str, &str, &str)] = &[(
    "crates/render/src/bootstrap.rs",
    "template",
    "a data table: the bootstrap stack's resources as one JSON literal",
)];

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The non-test source files of the workspace: `src/` and each crate's `src/`, without the
/// `tests.rs` files of table tests.
fn sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    for krate in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    files.retain(|f| !f.ends_with("tests.rs"));
    files.sort();
    files
}

/// The functions of a file (rustfmt's layout: a body ends at the `}` of the `fn`'s indent) with
/// their lengths in lines, outside `#[cfg(test)]` items.
fn functions(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let item_end = |from: usize| {
        let close = format!("{}}}", " ".repeat(indent(lines[from])));
        (from..lines.len())
            .find(|&j| lines[j] == close)
            .unwrap_or(lines.len() - 1)
    };
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        if line.starts_with("#[cfg(test)]") {
            i = item_end(i + 1) + 1;
            continue;
        }
        let signature = line
            .trim_start_matches("pub ")
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("const ")
            .trim_start_matches("async ")
            .trim_start_matches("unsafe ");
        if let Some(rest) = signature.strip_prefix("fn ") {
            // A declaration without a body (a trait's) ends with `;` before any `{`.
            let has_body = lines[i..]
                .iter()
                .find(|l| l.contains('{') || l.trim_end().ends_with(';'))
                .is_some_and(|l| l.contains('{'));
            if has_body {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let end = item_end(i);
                found.push((name, end - i + 1));
            }
        }
        i += 1;
    }
    found
}

#[test]
fn functions_are_short_but_for_the_few_named_with_a_reason() {
    assert!(LONGER.len() <= 5, "at most five long functions");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut long = Vec::new();
    let mut counted = 0;
    for file in sources() {
        let relative = file.strip_prefix(root).unwrap().display().to_string();
        for (name, length) in functions(&std::fs::read_to_string(&file).unwrap()) {
            counted += 1;
            if length > LONGEST {
                long.push((relative.clone(), name, length));
            }
        }
    }
    assert!(counted > 500, "the scan found only {counted} functions");
    let unexplained: Vec<String> = long
        .iter()
        .filter(|(file, name, _)| !LONGER.iter().any(|(f, n, _)| f == file && n == name))
        .map(|(file, name, length)| format!("{file}: {name} ({length} lines)"))
        .collect();
    assert!(
        unexplained.is_empty(),
        "functions over {LONGEST} lines: split them, or name them in LONGER with a reason:\n{}",
        unexplained.join("\n")
    );
}

#[test]
fn the_scan_measures_what_rustfmt_writes() {
    let text = "fn a() {\n    1;\n}\n\ntrait T {\n    fn b(&self)\n        -> u8;\n}\n\n#[cfg(test)]\nmod tests {\n    fn c() {}\n}\n\nimpl S {\n    pub async fn d(\n        x: u8,\n    ) {\n        x;\n    }\n}\n";
    assert_eq!(
        functions(text),
        [("a".to_string(), 3), ("d".to_string(), 5)]
    );
}

/// The converge modules each module of `src/converge` names (`super::x`), outside its tests.
fn converge_imports() -> BTreeMap<String, BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/converge");
    let mut imports = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut named = BTreeSet::new();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("super::") {
                let rest = &line[at + "super::".len()..];
                // `super::{a, b::C}` names each of a and b (on this line).
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(list) => list
                        .split(['}'])
                        .next()
                        .unwrap_or_default()
                        .split(',')
                        .collect(),
                    None => vec![rest],
                };
                for item in names {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != "super" && name != module {
                        named.insert(name);
                    }
                }
            }
        }
        imports.insert(module, named);
    }
    imports
}

#[test]
fn no_two_converge_modules_import_each_other() {
    let imports = converge_imports();
    assert!(imports["engine"].contains("model"), "{imports:?}");
    // A braced import names each module in it.
    assert!(imports["shared_alb"].contains("ephemeral"), "{imports:?}");
    let mut pairs = Vec::new();
    for (module, named) in &imports {
        for other in named {
            if imports.get(other).is_some_and(|back| back.contains(module)) && module < other {
                pairs.push(format!("{module} <-> {other}"));
            }
        }
    }
    assert!(
        pairs.is_empty(),
        "modules that import each other: {pairs:?}"
    );
}
