//! A small, deterministic YAML emitter for templates.
//!
//! Strings that could be read back as anything but the same string (numbers, booleans, YAML
//! syntax) are written as JSON strings, which are valid YAML double-quoted scalars.

use serde_json::Value;

/// `value` as block-style YAML, ending with a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0, false),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// `first_inline`: the first key continues the current `- ` line of a sequence item.
fn write_map(
    out: &mut String,
    map: &serde_json::Map<String, Value>,
    depth: usize,
    first_inline: bool,
) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !first_inline {
            indent(out, depth);
        }
        out.push_str(&string_text(key));
        out.push(':');
        write_value(out, value, depth + 2, false);
    }
}

fn write_seq(out: &mut String, items: &[Value], depth: usize) {
    for item in items {
        indent(out, depth);
        out.push('-');
        write_value(out, item, depth + 2, true);
    }
}

fn write_value(out: &mut String, value: &Value, depth: usize, in_seq: bool) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push(if in_seq { ' ' } else { '\n' });
            write_map(out, map, depth, in_seq);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            // Sequences under a key are not indented further, as most YAML tools write them.
            write_seq(out, items, if in_seq { depth } else { depth - 2 });
        }
        scalar => {
            out.push(' ');
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string_text(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn string_text(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("strings always serialize")
    }
}

/// Whether `s` reads back as the same string when written without quotes.
fn is_plain_safe(s: &str) -> bool {
    const RESERVED: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~",
    ];
    let Some(first) = s.chars().next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:${}*@+=, ".contains(c))
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_through_a_yaml_parser() {
        let value = json!({
            "A": "plain",
            "B": ["x", {"K": 1, "L": [true, null]}, ["n"]],
            "C": {"D": "10.0.0.0/16", "E": "true", "F": "a: b", "G": "", "H": "${X.Arn}/index/*", "I": "*x"},
            "J": {}, "K": [], "L": "multi\nline \"quoted\"", "M": "-1", "N": 1.5,
        });
        let yaml = to_yaml(&value);
        let (node, diags) = deployer_spec::yaml::parse(&yaml);
        assert!(diags.is_empty(), "{diags:?}\n{yaml}");
        assert_eq!(node.unwrap().to_json(), value, "{yaml}");
    }
}
