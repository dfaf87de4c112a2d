//! Tables a deleted stack kept. A table renders with `DeletionPolicy: RetainExceptOnCreate`, so
//! `down` leaves it, with the env's data, and a later `up` of the same env would create a new,
//! empty table beside it. Instead `up` finds the env's retained tables by the tags deployer puts
//! on each table (app, env, the spec's table name) and, when told to (`--adopt-retained`, or yes
//! at the prompt), brings them back into the new stack with a CloudFormation resource import
//! (a change set of type IMPORT holding only them), before the normal update adds the rest.
//! `ls --retained` lists those whose env has no stack any more, with what they cost to keep.
//!
//! Matching a table to the spec and the import template are pure ([`matching`],
//! [`import_template`]); [`find`] and [`list`] make the calls.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::cloud::Cloud;
use super::engine::{Confirmation, cloud_failure};
use super::model::{APP_TAG, ENV_TAG, ResourceToImport, TableSummary};
use crate::exit::Error;
use crate::render::TABLE_TAG;

const TABLE: &str = "AWS::DynamoDB::Table";

/// What `up` does with the tables an env's earlier stack retained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetainedChoice {
    /// Ask on a terminal; elsewhere stop (exit 2) naming the two flags.
    #[default]
    Ask,
    /// `--adopt-retained`: import them into the new stack.
    Adopt,
    /// `--fresh-tables`: create new, empty tables and leave them be.
    Fresh,
}

/// What `up` does with the retained tables it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// `plan`: say what `up` will ask, do nothing.
    Mention,
    /// Import them into the new stack.
    Adopt,
    /// Leave them; the stack gets new, empty tables.
    Fresh,
    /// Nobody chose and nobody can be asked: stop, naming the choices.
    Refuse,
}

/// The handling for `choice`; `ask` is called only when the person is to be asked.
pub fn handling(
    plan: bool,
    choice: RetainedChoice,
    ask: impl FnOnce() -> Confirmation,
) -> Handling {
    match (plan, choice) {
        (true, _) => Handling::Mention,
        (false, RetainedChoice::Adopt) => Handling::Adopt,
        (false, RetainedChoice::Fresh) => Handling::Fresh,
        (false, RetainedChoice::Ask) => match ask() {
            Confirmation::Yes => Handling::Adopt,
            Confirmation::No => Handling::Fresh,
            Confirmation::NotInteractive => Handling::Refuse,
        },
    }
}

/// A table the env's earlier stack retained, matched to a table of the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Retained {
    /// Its physical name.
    pub physical: String,
    /// The spec's name of the table.
    pub spec_table: String,
    /// The logical id the wanted template gives that table.
    pub logical_id: String,
    /// Bytes stored, as DynamoDB last counted.
    pub size_bytes: Option<i64>,
    /// Items, likewise.
    pub item_count: Option<i64>,
    /// Why it cannot be imported as the spec describes it (its key differs, or the env
    /// retained more than one table of that name); `None`: it can.
    pub obstacle: Option<String>,
}

impl Retained {
    /// `notes → notes-dev-NotesTable-1X2Y (1,234 items, 5.1 MB)`.
    pub fn describe(&self) -> String {
        let mut what = format!("{} → {}", self.spec_table, self.physical);
        if let (Some(items), Some(bytes)) = (self.item_count, self.size_bytes) {
            what.push_str(&format!(
                " ({items} items, {:.1} MB)",
                bytes as f64 / 1_000_000.0
            ));
        }
        if let Some(why) = &self.obstacle {
            what.push_str(&format!(": {why}"));
        }
        what
    }
}

/// The wanted template's tables: spec name (its `deployer:table` tag) to logical id.
fn wanted_tables(wanted: &Value) -> BTreeMap<String, String> {
    wanted["Resources"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, r)| r["Type"] == TABLE)
        .filter_map(|(id, r)| {
            let spec_name = r["Properties"]["Tags"]
                .as_array()?
                .iter()
                .find(|t| t["Key"] == TABLE_TAG)?["Value"]
                .as_str()?
                .to_string();
            Some((spec_name, id.clone()))
        })
        .collect()
}

/// A table resource's primary key as (attribute, type), partition key first.
fn wanted_key(table: &Value) -> Vec<(String, String)> {
    let types = super::transition::attribute_types(table);
    let mut key: Vec<(String, String, bool)> = table["Properties"]["KeySchema"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| {
            let attr = k["AttributeName"].as_str()?;
            let range = k["KeyType"] == "RANGE";
            Some((attr.to_string(), types.get(attr)?.clone(), range))
        })
        .collect();
    key.sort_by_key(|(_, _, range)| *range);
    key.into_iter().map(|(a, t, _)| (a, t)).collect()
}

/// Which of `tables` the env `app`/`env` retained for a table of the wanted template, and
/// whether each can be imported as the template describes it. Tables of other envs, and tables
/// the spec no longer has, are left out.
pub fn matching(app: &str, env: &str, wanted: &Value, tables: &[TableSummary]) -> Vec<Retained> {
    let by_spec_name = wanted_tables(wanted);
    let ours: Vec<&TableSummary> = tables
        .iter()
        .filter(|t| {
            t.tags.get(APP_TAG).map(String::as_str) == Some(app)
                && t.tags.get(ENV_TAG).map(String::as_str) == Some(env)
        })
        .collect();
    // The spec's name of a table: its tag, or (a table made before deployer tagged tables) the
    // logical id in the name CloudFormation gave it, `<stack>-<LogicalId>-<suffix>`.
    let stack_prefix = format!("{app}-{env}-");
    let spec_name_of = |t: &TableSummary| -> Option<String> {
        if let Some(name) = t.tags.get(TABLE_TAG) {
            return Some(name.clone());
        }
        let rest = t.name.strip_prefix(&stack_prefix)?;
        let (logical_id, _suffix) = rest.rsplit_once('-')?;
        by_spec_name
            .iter()
            .find(|(_, id)| *id == logical_id)
            .map(|(spec_name, _)| spec_name.clone())
    };
    let mut found: Vec<Retained> = Vec::new();
    for info in &ours {
        let Some(spec_table) = spec_name_of(info) else {
            continue;
        };
        let Some(logical_id) = by_spec_name.get(&spec_table) else {
            continue;
        };
        let want = wanted_key(&wanted["Resources"][logical_id]);
        let same_name: Vec<&str> = ours
            .iter()
            .filter(|o| spec_name_of(o).as_ref() == Some(&spec_table))
            .map(|o| o.name.as_str())
            .collect();
        let show = |k: &[(String, String)]| {
            k.iter()
                .map(|(a, t)| format!("{a} ({t})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let obstacle = if same_name.len() > 1 {
            Some(format!(
                "the env retained {} tables for `{spec_table}` ({}): adopt one by hand",
                same_name.len(),
                same_name.join(", ")
            ))
        } else if info.key != want {
            Some(format!(
                "its key is {}, the spec's is {}",
                show(&info.key),
                show(&want)
            ))
        } else {
            None
        };
        found.push(Retained {
            physical: info.name.clone(),
            spec_table: spec_table.clone(),
            logical_id: logical_id.clone(),
            size_bytes: info.size_bytes,
            item_count: info.item_count,
            obstacle,
        });
    }
    found.sort_by(|a, b| (&a.logical_id, &a.physical).cmp(&(&b.logical_id, &b.physical)));
    found
}

/// The template of the IMPORT change set: only the adopted tables, as the wanted template
/// describes them, each kept if the import is undone (`DeletionPolicy: Retain`; the update that
/// follows sets the rendered policy). `TableName` stays out, as in every later template: the
/// identifier goes in `ResourcesToImport`, and a create-only property set now and dropped by
/// the next update would replace the table.
pub fn import_template(wanted: &Value, adopted: &[Retained]) -> Value {
    let mut resources = serde_json::Map::new();
    for table in adopted {
        let mut resource = wanted["Resources"][&table.logical_id].clone();
        resource["DeletionPolicy"] = json!("Retain");
        resource["UpdateReplacePolicy"] = json!("Retain");
        resources.insert(table.logical_id.clone(), resource);
    }
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "deployer: retained tables brought back into their env's stack",
        "Resources": resources,
    })
}

/// The resources an IMPORT change set brings in, by table name.
pub fn imports(adopted: &[Retained]) -> Vec<ResourceToImport> {
    adopted
        .iter()
        .map(|t| ResourceToImport {
            resource_type: TABLE.into(),
            logical_id: t.logical_id.clone(),
            identifier: BTreeMap::from([("TableName".to_string(), t.physical.clone())]),
        })
        .collect()
}

/// The tables the env's earlier stacks retained, for the wanted template of `stack_name`.
/// CloudFormation names a table `<stack>-<LogicalId>-<suffix>`, so only tables with that prefix
/// are described (one ListTables, then a DescribeTable and ListTagsOfResource each).
pub async fn find<C: Cloud>(
    cloud: &C,
    stack_name: &str,
    app: &str,
    env: &str,
    wanted: &Value,
) -> Result<Vec<Retained>, Error> {
    if wanted_tables(wanted).is_empty() {
        return Ok(Vec::new());
    }
    let tables = describe_all(cloud, &format!("{stack_name}-")).await?;
    Ok(matching(app, env, wanted, &tables))
}

/// Describes every table whose name starts with `prefix`.
async fn describe_all<C: Cloud>(cloud: &C, prefix: &str) -> Result<Vec<TableSummary>, Error> {
    let names = cloud
        .table_names(prefix)
        .await
        .map_err(|e| cloud_failure("cannot list the region's DynamoDB tables", e))?;
    let mut tables = Vec::new();
    for name in names {
        let info = cloud
            .table_summary(&name)
            .await
            .map_err(|e| cloud_failure(&format!("cannot describe table {name}"), e))?;
        tables.push(info);
    }
    Ok(tables)
}

/// A table kept after its env's stack was deleted, as `ls --retained` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Orphan {
    /// The table's name.
    pub table: String,
    /// Its app, env and spec name (from its tags).
    pub app: String,
    /// The env.
    pub env: String,
    /// The spec's name of the table.
    pub spec_table: String,
    /// Bytes stored.
    pub size_bytes: Option<i64>,
    /// Items.
    pub item_count: Option<i64>,
}

/// Storage of a DynamoDB Standard table, per GB-month, in USD: us-east-1's price (DynamoDB
/// pricing, "Data storage"; other regions differ by up to about a fifth), after the free 25 GB
/// per account and region, which this estimate does not subtract.
pub const STORAGE_USD_PER_GB_MONTH: f64 = 0.25;

/// What storing `bytes` costs a month at [`STORAGE_USD_PER_GB_MONTH`] (GB of 2^30 bytes, as
/// AWS bills storage).
pub fn monthly_storage_usd(bytes: i64) -> f64 {
    bytes.max(0) as f64 / (1u64 << 30) as f64 * STORAGE_USD_PER_GB_MONTH
}

/// Which of `tables` (deployer's, by their tags) belong to an env without a stack among
/// `stacks` (`<app>-<env>` names), optionally of one `app` only.
pub fn orphans(
    tables: &[TableSummary],
    stacks: &BTreeSet<String>,
    app: Option<&str>,
) -> Vec<Orphan> {
    let mut found: Vec<Orphan> = tables
        .iter()
        .filter_map(|t| {
            // Tables made before deployer tagged them carry the stack's tags only.
            let (a, e) = (t.tags.get(APP_TAG)?, t.tags.get(ENV_TAG)?);
            let s = t.tags.get(TABLE_TAG).cloned().unwrap_or_default();
            let gone = !stacks.contains(&format!("{a}-{e}"));
            (gone && app.is_none_or(|wanted| wanted == a)).then(|| Orphan {
                table: t.name.clone(),
                app: a.clone(),
                env: e.clone(),
                spec_table: s,
                size_bytes: t.size_bytes,
                item_count: t.item_count,
            })
        })
        .collect();
    found.sort_by(|a, b| (&a.app, &a.env, &a.table).cmp(&(&b.app, &b.env, &b.table)));
    found
}

/// The tables deployer made whose env has no stack any more (`stacks`: the stacks that exist).
pub async fn list<C: Cloud>(
    cloud: &C,
    stacks: &BTreeSet<String>,
    app: Option<&str>,
) -> Result<Vec<Orphan>, Error> {
    // A table is named after its stack, which starts with its app.
    let prefix = app.map(|a| format!("{a}-")).unwrap_or_default();
    let tables = describe_all(cloud, &prefix).await?;
    Ok(orphans(&tables, stacks, app))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, tags: &[(&str, &str)], key: &[(&str, &str)]) -> TableSummary {
        TableSummary {
            name: name.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            key: key
                .iter()
                .map(|(a, t)| (a.to_string(), t.to_string()))
                .collect(),
            size_bytes: Some(5_100_000),
            item_count: Some(1234),
        }
    }

    fn wanted() -> Value {
        json!({ "Resources": {
            "NotesTable": { "Type": TABLE, "DeletionPolicy": "RetainExceptOnCreate", "Properties": {
                "KeySchema": [{ "AttributeName": "sk", "KeyType": "RANGE" }, { "AttributeName": "pk", "KeyType": "HASH" }],
                "AttributeDefinitions": [{ "AttributeName": "pk", "AttributeType": "S" }, { "AttributeName": "sk", "AttributeType": "S" }],
                "Tags": [{ "Key": "deployer:app", "Value": "notes" }, { "Key": "deployer:env", "Value": "dev" }, { "Key": "deployer:table", "Value": "notes" }],
            }},
            "ApiFunction": { "Type": "AWS::Lambda::Function", "Properties": {} },
        }})
    }

    const OURS: &[(&str, &str)] = &[
        ("deployer:app", "notes"),
        ("deployer:env", "dev"),
        ("deployer:table", "notes"),
    ];
    const KEY: &[(&str, &str)] = &[("pk", "S"), ("sk", "S")];

    #[test]
    fn only_the_envs_own_tables_of_the_spec_are_matched() {
        let tables = vec![
            table("notes-dev-NotesTable-1", OURS, KEY),
            table(
                "notes-prod-NotesTable-2",
                &[
                    ("deployer:app", "notes"),
                    ("deployer:env", "prod"),
                    ("deployer:table", "notes"),
                ],
                KEY,
            ),
            table(
                "notes-dev-UsersTable-3",
                &[
                    ("deployer:app", "notes"),
                    ("deployer:env", "dev"),
                    ("deployer:table", "users"),
                ],
                KEY,
            ),
            table("notes-dev-Other-4", &[], KEY),
        ];
        // Made before tables carried `deployer:table`: known by the name CloudFormation gave it.
        let untagged = table(
            "notes-dev-NotesTable-9",
            &[("deployer:app", "notes"), ("deployer:env", "dev")],
            KEY,
        );
        let legacy = matching("notes", "dev", &wanted(), &[untagged]);
        assert_eq!(legacy.len(), 1);
        assert_eq!(
            (legacy[0].spec_table.as_str(), legacy[0].logical_id.as_str()),
            ("notes", "NotesTable")
        );
        let found = matching("notes", "dev", &wanted(), &tables);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].physical, "notes-dev-NotesTable-1");
        assert_eq!(found[0].logical_id, "NotesTable");
        assert_eq!(found[0].obstacle, None);
        assert_eq!(
            found[0].describe(),
            "notes → notes-dev-NotesTable-1 (1234 items, 5.1 MB)"
        );
    }

    #[test]
    fn a_different_key_or_two_candidates_cannot_be_imported() {
        let other_key = table("notes-dev-NotesTable-1", OURS, &[("id", "N")]);
        let found = matching("notes", "dev", &wanted(), &[other_key]);
        assert_eq!(
            found[0].obstacle.as_deref(),
            Some("its key is id (N), the spec's is pk (S), sk (S)")
        );
        let two = [
            table("notes-dev-NotesTable-1", OURS, KEY),
            table("notes-dev-NotesTable-2", OURS, KEY),
        ];
        let found = matching("notes", "dev", &wanted(), &two);
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|f| {
            f.obstacle
                .as_deref()
                .is_some_and(|o| o.contains("2 tables for `notes`"))
        }));
    }

    #[test]
    fn the_import_template_holds_only_the_tables_kept_if_undone() {
        let found = matching(
            "notes",
            "dev",
            &wanted(),
            &[table("notes-dev-NotesTable-1", OURS, KEY)],
        );
        let t = import_template(&wanted(), &found);
        let resources = t["Resources"].as_object().unwrap();
        assert_eq!(resources.keys().collect::<Vec<_>>(), ["NotesTable"]);
        assert_eq!(t["Resources"]["NotesTable"]["DeletionPolicy"], "Retain");
        assert_eq!(
            t["Resources"]["NotesTable"]["UpdateReplacePolicy"],
            "Retain"
        );
        assert_eq!(
            t["Resources"]["NotesTable"]["Properties"],
            wanted()["Resources"]["NotesTable"]["Properties"]
        );
        let imports = imports(&found);
        assert_eq!(imports[0].identifier["TableName"], "notes-dev-NotesTable-1");
        assert_eq!(imports[0].resource_type, TABLE);
    }

    #[test]
    fn orphans_are_tables_of_envs_without_a_stack() {
        let tables = vec![
            table("notes-dev-NotesTable-1", OURS, KEY),
            table(
                "notes-pr-7-NotesTable-2",
                &[
                    ("deployer:app", "notes"),
                    ("deployer:env", "pr-7"),
                    ("deployer:table", "notes"),
                ],
                KEY,
            ),
            table(
                "billing-x",
                &[
                    ("deployer:app", "billing"),
                    ("deployer:env", "dev"),
                    ("deployer:table", "t"),
                ],
                KEY,
            ),
            table("hand-made", &[], KEY),
        ];
        let stacks = BTreeSet::from(["notes-dev".to_string()]);
        let all = orphans(&tables, &stacks, None);
        assert_eq!(
            all.iter().map(|o| o.table.as_str()).collect::<Vec<_>>(),
            ["billing-x", "notes-pr-7-NotesTable-2"]
        );
        let notes = orphans(&tables, &stacks, Some("notes"));
        assert_eq!(notes.len(), 1);
        assert_eq!(
            (notes[0].env.as_str(), notes[0].spec_table.as_str()),
            ("pr-7", "notes")
        );
    }

    #[test]
    fn the_flag_decides_else_the_answer_and_plan_only_mentions() {
        use Confirmation::*;
        use RetainedChoice::*;
        for (plan, choice, answer, want) in [
            (true, Ask, Yes, Handling::Mention),
            (true, Adopt, Yes, Handling::Mention),
            (false, Adopt, No, Handling::Adopt),
            (false, Fresh, Yes, Handling::Fresh),
            (false, Ask, Yes, Handling::Adopt),
            (false, Ask, No, Handling::Fresh),
            (false, Ask, NotInteractive, Handling::Refuse),
        ] {
            let mut asked = false;
            let got = handling(plan, choice, || {
                asked = true;
                answer
            });
            assert_eq!(got, want, "{plan} {choice:?} {answer:?}");
            assert_eq!(
                asked,
                !plan && choice == Ask,
                "asked only when there is no choice"
            );
        }
    }

    #[test]
    fn storage_costs_a_quarter_a_gb_month() {
        // 10 GiB at $0.25 per GB-month: $2.50.
        assert!((monthly_storage_usd(10 * (1 << 30)) - 2.5).abs() < 1e-9);
        assert_eq!(monthly_storage_usd(0), 0.0);
    }
}
