//! From a record's fields to an item: columns become attributes by name, the table's key
//! attributes are checked against its key schema or built from `--key` templates.

use base64::Engine as _;

use crate::source::Fields;
use crate::value::{self, Item, KeyKind, KeySchema, MAX_ITEM_BYTES, Value};

/// A key attribute built from a template: `pk='USER#{id}'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    /// The attribute it builds.
    pub attribute: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Column(String),
}

impl KeyTemplate {
    /// Parses `NAME=TEMPLATE`, where `{column}` is replaced by that column's value and `{{`,
    /// `}}` are literal braces.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (attribute, template) = text
            .split_once('=')
            .filter(|(a, _)| !a.is_empty())
            .ok_or_else(|| {
                format!("--key {text}: expected ATTRIBUTE=TEMPLATE, e.g. pk='USER#{{id}}'")
            })?;
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let column: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    if column.is_empty() {
                        return Err(format!("--key {text}: an empty {{}}"));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Column(column));
                }
                '}' => return Err(format!("--key {text}: a lone }} (write }}}} for a brace)")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        if !parts.iter().any(|p| matches!(p, Part::Column(_))) {
            return Err(format!(
                "--key {text}: names no column, so every item would get the same key"
            ));
        }
        Ok(KeyTemplate {
            attribute: attribute.to_string(),
            parts,
        })
    }

    /// The columns it reads.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Column(c) => Some(c.as_str()),
            Part::Literal(_) => None,
        })
    }

    fn render(&self, item: &Item) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Column(c) => {
                    let value = item
                        .iter()
                        .find(|(name, _)| name == c)
                        .map(|(_, v)| v)
                        .ok_or_else(|| format!("key {}: no column {c}", self.attribute))?;
                    let text = value.as_text().ok_or_else(|| {
                        format!(
                            "key {}: column {c} is {}, not a string or number",
                            self.attribute,
                            value.type_name()
                        )
                    })?;
                    out.push_str(text);
                }
            }
        }
        Ok(out)
    }
}

/// How records become items for one table.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The table's key.
    pub schema: KeySchema,
    /// Key attributes built from templates.
    pub templates: Vec<KeyTemplate>,
    /// Columns whose text is JSON, read as maps, lists and the rest (`--json-column`): a CSV cell, or
    /// MariaDB's JSON type, which is text on the wire.
    pub json_columns: Vec<String>,
}

impl Mapping {
    /// Checks that each template builds a key attribute of the table.
    pub fn new(schema: KeySchema, templates: Vec<KeyTemplate>) -> Result<Self, String> {
        for template in &templates {
            if !schema
                .attributes()
                .any(|(name, _)| name == &template.attribute)
            {
                let keys: Vec<_> = schema.attributes().map(|(n, _)| n.as_str()).collect();
                return Err(format!(
                    "--key {}: not a key attribute of the table (its key: {})",
                    template.attribute,
                    keys.join(", ")
                ));
            }
        }
        Ok(Mapping {
            schema,
            templates,
            json_columns: Vec::new(),
        })
    }

    /// The item a record's fields make, or why they make none.
    pub fn item(&self, fields: Fields) -> Result<Item, String> {
        let (mut item, strict) = match fields {
            // CSV cells are strings, as in DynamoDB's own CSV import: a key cell takes the
            // key's type; an empty cell is no attribute.
            Fields::Text { columns, cells } => (
                columns
                    .iter()
                    .zip(cells)
                    .filter(|(name, cell)| !cell.is_empty() && !name.is_empty())
                    .map(|(name, cell)| (name.clone(), Value::S(cell)))
                    .collect::<Item>(),
                false,
            ),
            Fields::Values(item) => (item, false),
            Fields::Item(item) => (item, true),
        };
        for (name, value) in item.iter_mut() {
            if let Value::S(text) = value
                && self.json_columns.contains(name)
            {
                let json: serde_json::Value = serde_json::from_str(text)
                    .map_err(|e| format!("column {name} is not JSON: {e}"))?;
                *value = crate::source::from_json(json);
            }
        }
        for template in &self.templates {
            let text = template.render(&item)?;
            set(&mut item, &template.attribute, Value::S(text));
        }
        for (name, kind) in self.schema.attributes() {
            let Some(slot) = item.iter_mut().find(|(n, _)| n == name) else {
                return Err(format!("no value for the key attribute {name}"));
            };
            slot.1 = key_value(
                name,
                *kind,
                std::mem::replace(&mut slot.1, Value::Null),
                strict,
            )?;
        }
        let size = value::item_size(&item);
        if size > MAX_ITEM_BYTES {
            return Err(format!(
                "the item is {size} bytes, over DynamoDB's 400 KB limit"
            ));
        }
        Ok(item)
    }

    /// The item's key attributes, as text for messages and duplicate checks.
    pub fn key_text(&self, item: &Item) -> String {
        self.schema
            .attributes()
            .filter_map(|(name, _)| {
                item.iter().find(|(n, _)| n == name).map(|(n, v)| match v {
                    Value::B(b) => format!(
                        "{n}={}",
                        base64::engine::general_purpose::STANDARD.encode(b)
                    ),
                    v => format!("{n}={}", v.as_text().unwrap_or("?")),
                })
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn set(item: &mut Item, name: &str, value: Value) {
    match item.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value,
        None => item.push((name.to_string(), value)),
    }
}

/// A key attribute's value in the key's type. From plain sources (CSV, JSON lines, SQL) a
/// number's text may make a string key and a numeric string a number key, exactly; a binary
/// key takes base64 text. DynamoDB JSON is typed already and must match.
fn key_value(name: &str, kind: KeyKind, value: Value, strict: bool) -> Result<Value, String> {
    let mismatch = |v: &Value| {
        format!(
            "the key attribute {name} must be {kind}, not {}",
            v.type_name()
        )
    };
    let value = match (kind, value) {
        (KeyKind::S, Value::S(s)) => Value::S(s),
        (KeyKind::N, Value::N(n)) => {
            Value::N(value::number(&n).map_err(|e| format!("key {name}: {e}"))?)
        }
        (KeyKind::B, Value::B(b)) => Value::B(b),
        (_, v) if strict => return Err(mismatch(&v)),
        (KeyKind::S, Value::N(n)) => Value::S(n),
        (KeyKind::N, Value::S(s)) => {
            Value::N(value::number(&s).map_err(|e| format!("key {name}: {e}"))?)
        }
        (KeyKind::B, Value::S(s)) => Value::B(
            base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| format!("key {name}: binary keys are read as base64: {e}"))?,
        ),
        (_, Value::Null) => return Err(format!("the key attribute {name} is null")),
        (_, v) => return Err(mismatch(&v)),
    };
    match &value {
        Value::S(s) if s.is_empty() => Err(format!("the key attribute {name} is an empty string")),
        Value::B(b) if b.is_empty() => Err(format!("the key attribute {name} is empty")),
        _ => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn schema() -> KeySchema {
        KeySchema {
            hash: ("pk".into(), KeyKind::S),
            range: Some(("sk".into(), KeyKind::N)),
        }
    }

    fn csv(columns: &[&str], cells: &[&str]) -> Fields {
        Fields::Text {
            columns: Arc::new(columns.iter().map(|c| c.to_string()).collect()),
            cells: cells.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn an_empty_string_key_is_refused() {
        // DynamoDB refuses an empty string or binary as a key value.
        let mapping = Mapping::new(schema(), vec![]).unwrap();
        for fields in [
            Fields::Item(vec![
                ("pk".into(), Value::S(String::new())),
                ("sk".into(), Value::N("1".into())),
            ]),
            Fields::Values(vec![
                ("pk".into(), Value::S(String::new())),
                ("sk".into(), Value::N("1".into())),
            ]),
        ] {
            assert_eq!(
                mapping.item(fields),
                Err("the key attribute pk is an empty string".into())
            );
        }
    }

    #[test]
    fn an_empty_binary_key_is_refused() {
        let binary = KeySchema {
            hash: ("id".into(), KeyKind::B),
            range: None,
        };
        let mapping = Mapping::new(binary, vec![]).unwrap();
        assert_eq!(
            mapping.item(Fields::Item(vec![("id".into(), Value::B(vec![]))])),
            Err("the key attribute id is empty".into())
        );
        // From text, the empty base64 of an empty value: refused the same way.
        assert_eq!(
            mapping.item(Fields::Values(vec![("id".into(), Value::S(" ".into()))])),
            Err("the key attribute id is empty".into())
        );
    }

    #[test]
    fn templates_parse_and_reject_what_cannot_be_a_key() {
        let t = KeyTemplate::parse("pk=USER#{id}{{x}}").unwrap();
        assert_eq!(t.columns().collect::<Vec<_>>(), ["id"]);
        for bad in ["pk", "=x{id}", "pk=CONST", "pk={}", "pk=a}b"] {
            assert!(KeyTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rows_map_to_items_with_typed_keys() {
        let mapping =
            Mapping::new(schema(), vec![KeyTemplate::parse("pk=USER#{id}").unwrap()]).unwrap();
        let cases: Vec<(Fields, Result<Item, String>)> = vec![
            (
                csv(&["id", "sk", "note"], &["7", "12", ""]),
                Ok(vec![
                    ("id".into(), Value::S("7".into())),
                    ("sk".into(), Value::N("12".into())),
                    ("pk".into(), Value::S("USER#7".into())),
                ]),
            ),
            (
                csv(&["id", "sk"], &["7", "twelve"]),
                Err("key sk: \"twelve\" is not a number".into()),
            ),
            (
                csv(&["id", "sk"], &["", "1"]),
                Err("key pk: no column id".into()),
            ),
            (
                Fields::Values(vec![
                    ("id".into(), Value::Null),
                    ("sk".into(), Value::N("1".into())),
                ]),
                Err("key pk: column id is NULL, not a string or number".into()),
            ),
            (
                Fields::Item(vec![
                    ("id".into(), Value::S("1".into())),
                    ("sk".into(), Value::S("1".into())),
                ]),
                Err("the key attribute sk must be N, not S".into()),
            ),
            (
                Fields::Values(vec![("id".into(), Value::S("a".into()))]),
                Err("no value for the key attribute sk".into()),
            ),
            (
                Fields::Values(vec![
                    ("id".into(), Value::S("a".into())),
                    ("sk".into(), Value::N("1".into())),
                    ("big".into(), Value::S("x".repeat(MAX_ITEM_BYTES))),
                ]),
                // Names and values: id a, sk 1 (a number of one digit: 2 bytes), big, pk USER#a.
                Err(format!(
                    "the item is {} bytes, over DynamoDB's 400 KB limit",
                    MAX_ITEM_BYTES + 18
                )),
            ),
        ];
        for (fields, expected) in cases {
            let got = mapping.item(fields.clone());
            assert!(
                got == expected,
                "{:.200}: {got:.200?} != {expected:.200?}",
                format!("{fields:?}")
            );
        }
    }

    #[test]
    fn keys_without_templates_come_from_columns_of_their_name() {
        let mapping = Mapping::new(schema(), vec![]).unwrap();
        let item = mapping
            .item(Fields::Values(vec![
                ("pk".into(), Value::N("5".into())),
                ("sk".into(), Value::S("6".into())),
            ]))
            .unwrap();
        assert_eq!(mapping.key_text(&item), "pk=5 sk=6");
        assert_eq!(item[0].1, Value::S("5".into()));
        assert_eq!(
            mapping.item(csv(&["pk", "sk"], &["", "1"])),
            Err("no value for the key attribute pk".into())
        );
        assert!(Mapping::new(schema(), vec![KeyTemplate::parse("other={x}").unwrap()]).is_err());
        let mut json = Mapping::new(schema(), vec![]).unwrap();
        json.json_columns = vec!["doc".into()];
        let item = json
            .item(csv(
                &["pk", "sk", "doc"],
                &["a", "1", r#"{"x": [1, null]}"#],
            ))
            .unwrap();
        assert_eq!(
            item[2].1,
            Value::M(vec![(
                "x".into(),
                Value::L(vec![Value::N("1".into()), Value::Null])
            )])
        );
        assert_eq!(
            json.item(csv(&["pk", "sk", "doc"], &["a", "1", "{"]))
                .unwrap_err(),
            "column doc is not JSON: EOF while parsing an object at line 1 column 1"
        );
    }
}
