//! A YAML document as a tree of nodes that remember where they came from.
//!
//! serde-based YAML crates stop at the first error and forget positions once a value is built; the
//! spec validator needs both every error and the `line:col` of each node, so it walks this tree.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::diag::{Diag, Pos};

/// Upper bound on nodes after alias expansion: stops "billion laughs" documents from eating memory.
const MAX_NODES: usize = 100_000;

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts in the source.
    pub pos: Pos,
    /// What the node holds.
    pub value: Value,
    /// A local tag such as `!Ref` (CloudFormation short form), without the `!`.
    pub tag: Option<String>,
}

/// The content of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar; `plain` is false for quoted and block scalars, which are always strings.
    Scalar {
        /// The text.
        text: String,
        /// Written without quotes or block style.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order; keys are unique (duplicates are reported while parsing).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The node's scalar text when it is a scalar that is not null.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    /// YAML 1.2 core-schema null: `~`, `null`, or an empty plain scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A short description of the node's kind, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            _ if self.is_null() => "nothing",
            Value::Scalar { plain: false, .. } => "a string",
            Value::Scalar { text, .. } if parse_bool(text).is_some() => "a boolean",
            Value::Scalar { text, .. } if parse_int(text).is_some() => "a number",
            Value::Scalar { .. } => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The value as a JSON value, with YAML 1.2 core-schema typing of plain scalars and
    /// CloudFormation short-form tags (`!Ref X`, `!GetAtt A.B`, `!Sub …`) expanded to long form.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        let plain = match &self.value {
            Value::Scalar { text, plain } => {
                if !plain {
                    J::String(text.clone())
                } else if self.is_null() {
                    J::Null
                } else if let Some(b) = parse_bool(text) {
                    J::Bool(b)
                } else if let Some(i) = parse_int(text) {
                    J::from(i)
                } else if let Some(f) = text.parse::<f64>().ok().filter(|f| f.is_finite()) {
                    serde_json::Number::from_f64(f).map_or(J::String(text.clone()), J::Number)
                } else {
                    J::String(text.clone())
                }
            }
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v.to_json()))
                    .collect(),
            ),
        };
        match self.tag.as_deref() {
            None => plain,
            Some("Ref") => serde_json::json!({ "Ref": plain }),
            Some("GetAtt") => match plain {
                J::String(s) => match s.split_once('.') {
                    Some((resource, attribute)) => {
                        serde_json::json!({ "Fn::GetAtt": [resource, attribute] })
                    }
                    None => serde_json::json!({ "Fn::GetAtt": s }),
                },
                other => serde_json::json!({ "Fn::GetAtt": other }),
            },
            Some("Condition") => serde_json::json!({ "Condition": plain }),
            Some(function) => serde_json::json!({ format!("Fn::{function}"): plain }),
        }
    }
}

/// YAML 1.2 core-schema booleans.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// YAML 1.2 core-schema decimal integers (no octal/hex: nobody writes memory sizes that way).
pub fn parse_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        col: span.start.col() + 1,
    }
}

/// Parses one YAML document. Returns the root node (if the text was parseable at all) and every
/// problem found on the way: syntax errors, duplicate keys, unsupported constructs.
pub fn parse(source: &str) -> (Option<Node>, Vec<Diag>) {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(source).keep_tags(true);
    while let Some(event) = parser.next_event() {
        match event {
            Ok((event, span)) => {
                if let Err(diag) = builder.on_event(event, span) {
                    builder.diags.push(diag);
                    return (None, builder.diags);
                }
            }
            Err(e) => {
                let m = e.marker();
                builder.diags.push(Diag::new(
                    Pos {
                        line: m.line(),
                        col: m.col() + 1,
                    },
                    format!("invalid YAML: {}", e.info()),
                ));
                return (None, builder.diags);
            }
        }
    }
    match builder.root {
        Some(root) => (Some(root), builder.diags),
        None => {
            builder
                .diags
                .push(Diag::new(Pos { line: 1, col: 1 }, "the spec is empty"));
            (None, builder.diags)
        }
    }
}

enum Frame {
    Seq(Node),
    /// A mapping under construction and the key waiting for its value.
    Map(Node, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Frame, usize)>,
    anchors: std::collections::HashMap<usize, Node>,
    root: Option<Node>,
    documents: usize,
    nodes: usize,
    diags: Vec<Diag>,
}

impl Builder {
    fn on_event(&mut self, event: Event<'_>, span: Span) -> Result<(), Diag> {
        let pos = pos_of(&span);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(Diag::new(
                        pos,
                        "a spec holds exactly one YAML document; remove the second `---`",
                    ));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = Node {
                    pos,
                    value: Value::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain && tag.is_none(),
                    },
                    tag: local_tag(tag.as_deref()),
                };
                self.finish(node, anchor)?;
            }
            Event::SequenceStart(anchor, tag) => {
                let node = Node {
                    pos,
                    value: Value::Seq(Vec::new()),
                    tag: local_tag(tag.as_deref()),
                };
                self.stack.push((Frame::Seq(node), anchor));
            }
            Event::MappingStart(anchor, tag) => {
                let node = Node {
                    pos,
                    value: Value::Map(Vec::new()),
                    tag: local_tag(tag.as_deref()),
                };
                self.stack.push((Frame::Map(node, None), anchor));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                // The parser balances start and end events; an unbalanced end is ignored.
                let Some((frame, anchor)) = self.stack.pop() else {
                    return Ok(());
                };
                let (Frame::Seq(node) | Frame::Map(node, _)) = frame;
                self.finish(node, anchor)?;
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| {
                    Diag::new(
                        pos,
                        "alias refers to an anchor that is not defined before it",
                    )
                })?;
                self.nodes += count_nodes(&node);
                self.finish(node, 0)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    /// Attaches a completed node to its parent (or makes it the root).
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), Diag> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Diag::new(
                node.pos,
                format!(
                    "the spec expands to more than {MAX_NODES} nodes (aliases nested too deep?)"
                ),
            ));
        }
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some((Frame::Seq(parent), _)) => {
                if let Value::Seq(items) = &mut parent.value {
                    items.push(node);
                }
            }
            Some((Frame::Map(_, key @ None), _)) => {
                if !matches!(node.value, Value::Scalar { .. }) {
                    return Err(Diag::new(node.pos, "mapping keys must be plain strings"));
                }
                *key = Some(node);
            }
            Some((Frame::Map(parent, key @ Some(_)), _)) => {
                if let (Some(key), Value::Map(entries)) = (key.take(), &mut parent.value) {
                    if let Some((first, _)) = entries
                        .iter()
                        .find(|(k, _)| k.as_str().is_some() && k.as_str() == key.as_str())
                    {
                        self.diags.push(Diag::new(
                            key.pos,
                            format!(
                                "duplicate key `{}` (first defined at line {})",
                                key.as_str().unwrap_or_default(),
                                first.pos.line
                            ),
                        ));
                    } else {
                        entries.push((key, node));
                    }
                }
            }
        }
        Ok(())
    }
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Scalar { .. } => 1,
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
    }
}

/// Keeps local tags (`!Ref`); standard `!!str`-style tags only force the scalar to be a string.
fn local_tag(tag: Option<&saphyr_parser::Tag>) -> Option<String> {
    tag.filter(|t| t.handle == "!").map(|t| t.suffix.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(src: &str) -> Node {
        let (node, diags) = parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        node.unwrap()
    }

    #[test]
    fn positions_are_one_based() {
        let node = root("a: 1\nb:\n  c: x\n");
        let Value::Map(entries) = &node.value else {
            panic!()
        };
        assert_eq!(entries[1].0.pos, Pos { line: 2, col: 1 });
        let Value::Map(inner) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!(inner[0].1.pos, Pos { line: 3, col: 6 });
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let (_, diags) = parse("a: 1\nb: 2\na: 3\n");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].pos, Pos { line: 3, col: 1 });
        assert_eq!(
            diags[0].message,
            "duplicate key `a` (first defined at line 1)"
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let (node, diags) = parse("a: [1, 2\nb: 3\n");
        assert!(node.is_none());
        assert!(diags[0].message.starts_with("invalid YAML: "), "{diags:?}");
    }

    #[test]
    fn aliases_expand_but_not_without_bound() {
        let node = root("x: &a {k: v}\ny: *a\n");
        assert_eq!(
            node.to_json(),
            serde_json::json!({"x": {"k": "v"}, "y": {"k": "v"}})
        );
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let (_, diags) = parse(&bomb);
        assert!(
            diags[0].message.contains("more than 100000 nodes"),
            "{diags:?}"
        );
    }

    #[test]
    fn core_schema_typing_and_cloudformation_tags() {
        let node = root(
            "a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: !Ref Bucket\ng: !GetAtt Fn.Arn\nh: !Sub 'x-${Y}'\n",
        );
        assert_eq!(
            node.to_json(),
            serde_json::json!({
                "a": 1, "b": "1", "c": true, "d": null, "e": 1.5,
                "f": {"Ref": "Bucket"}, "g": {"Fn::GetAtt": ["Fn", "Arn"]}, "h": {"Fn::Sub": "x-${Y}"}
            })
        );
    }

    #[test]
    fn several_documents_or_none_are_errors() {
        assert_eq!(parse("a: 1\n---\nb: 2\n").1[0].pos.line, 2);
        assert_eq!(parse("").1[0].message, "the spec is empty");
    }
}
