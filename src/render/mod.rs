//! Spec → CloudFormation. Pure and deterministic: the same spec, env and options always give the
//! same bytes, and logical ids come from spec names so an unchanged spec never replaces anything.
//!
//! Templates are built as JSON values in code, never by pasting user text into YAML.

mod alb;
pub mod bootstrap;
mod emit;
mod function;
mod network;
mod table;

use serde_json::{Map, Value, json};

use crate::spec::{Diag, Spec, names};

pub use emit::to_yaml;
pub use network::{SUBNETS_PARAMETER, VPC_PARAMETER, uses_shared_vpc};

/// How to render an app stack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// An ephemeral environment: tables are deleted with the stack instead of retained.
    pub ephemeral: bool,
}

/// A rendered CloudFormation template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template(pub Value);

/// Output formats of `deployer render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// YAML, the way people read templates.
    Yaml,
    /// JSON, the way CloudFormation stores them.
    Json,
}

impl Template {
    /// The template as text in `format`, ending with a newline.
    pub fn to_string(&self, format: Format) -> String {
        match format {
            Format::Yaml => to_yaml(&self.0),
            Format::Json => {
                let mut s =
                    serde_json::to_string_pretty(&self.0).expect("JSON values always serialize");
                s.push('\n');
                s
            }
        }
    }

    /// The template body sent to CloudFormation (compact JSON: the smallest, still deterministic).
    pub fn body(&self) -> String {
        serde_json::to_string(&self.0).expect("JSON values always serialize")
    }
}

/// The template parameters through which a function's code location is passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeParameters {
    /// The function's name in the spec.
    pub function: String,
    /// Parameter holding the artifact bucket, `<Fn>CodeBucket`.
    pub bucket: String,
    /// Parameter holding the artifact key, `<Fn>CodeKey`.
    pub key: String,
}

/// The code parameters of every function of the spec, in spec order.
pub fn code_parameters(spec: &Spec) -> Vec<CodeParameters> {
    spec.functions
        .keys()
        .map(|name| {
            let id = names::logical_id(name);
            CodeParameters {
                function: name.clone(),
                bucket: format!("{id}CodeBucket"),
                key: format!("{id}CodeKey"),
            }
        })
        .collect()
}

/// The sections of a template under construction, in the order they are printed.
#[derive(Default)]
struct Doc {
    parameters: Map<String, Value>,
    mappings: Map<String, Value>,
    conditions: Map<String, Value>,
    resources: Map<String, Value>,
    outputs: Map<String, Value>,
}

impl Doc {
    fn resource(
        &mut self,
        id: impl Into<String>,
        kind: &str,
        properties: Value,
    ) -> &mut Map<String, Value> {
        let id = id.into();
        self.resources.insert(
            id.clone(),
            json!({ "Type": kind, "Properties": properties }),
        );
        self.resources[&id]
            .as_object_mut()
            .expect("just inserted an object")
    }

    fn output(&mut self, id: impl Into<String>, description: &str, value: Value) {
        self.outputs.insert(
            id.into(),
            json!({ "Description": description, "Value": value }),
        );
    }

    fn finish(self, description: String) -> Template {
        let mut t = Map::new();
        t.insert("AWSTemplateFormatVersion".into(), json!("2010-09-09"));
        t.insert("Description".into(), json!(description));
        for (name, section) in [
            ("Parameters", self.parameters),
            ("Mappings", self.mappings),
            ("Conditions", self.conditions),
            ("Resources", self.resources),
            ("Outputs", self.outputs),
        ] {
            if !section.is_empty() {
                t.insert(name.into(), Value::Object(section));
            }
        }
        Template(Value::Object(t))
    }
}

/// Renders the app stack `<app>-<env>` for `spec.env`.
///
/// Fails only when `extra` defines a logical id that deployer renders too.
pub fn app(spec: &Spec, options: Options) -> Result<Template, Vec<Diag>> {
    let mut doc = Doc::default();
    let placement = network::place(spec, &mut doc);
    let listener = spec
        .alb
        .as_ref()
        .map(|alb| alb::render(spec, alb, &placement, &mut doc));
    for (name, function) in &spec.functions {
        function::render(spec, name, function, listener.as_ref(), &mut doc);
    }
    for (name, table) in &spec.tables {
        table::render(spec, name, table, options, &mut doc);
    }
    merge_extra(spec, &mut doc)?;
    Ok(doc.finish(format!(
        "deployer stack {} (app {}, env {})",
        spec.stack_name(),
        spec.app,
        spec.env
    )))
}

fn merge_extra(spec: &Spec, doc: &mut Doc) -> Result<(), Vec<Diag>> {
    let Some(extra) = &spec.extra else {
        return Ok(());
    };
    let mut clashes = Vec::new();
    for (section, id, pos) in &extra.positions {
        let target = match section.as_str() {
            "Resources" => &mut doc.resources,
            "Outputs" => &mut doc.outputs,
            "Conditions" => &mut doc.conditions,
            "Mappings" => &mut doc.mappings,
            _ => &mut doc.parameters,
        };
        if target.contains_key(id) {
            clashes.push(Diag::new(
                *pos,
                format!("`extra.{section}.{id}` clashes with a logical id deployer renders; pick another name"),
            ));
            continue;
        }
        if let Some(value) = extra.sections.get(section).and_then(|s| s.get(id)) {
            target.insert(id.clone(), value.clone());
        }
    }
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(clashes)
    }
}

/// `{"Ref": id}`.
fn r#ref(id: &str) -> Value {
    json!({ "Ref": id })
}

/// `{"Fn::GetAtt": [id, attribute]}`.
fn get_att(id: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [id, attribute] })
}
