//! `table import`: resolve the spec's table to the deployed one, read the source, write through
//! the import pipeline (crate `deployer-import`), keep the checkpoint and the rejects file, and
//! report. AWS calls go through [`crate::aws`]; what the user sees, through [`crate::ui`].

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deployer_import::checkpoint::Checkpoint;
use deployer_import::mapping::Mapping;
use deployer_import::pipeline::{self, Ending, Event};
use deployer_import::source::{FileSource, Format, Input, Position, Start};
use deployer_import::sql::{self, Dialect};

use crate::aws::Aws;
use crate::aws::dynamodb::Table;
use crate::converge::{self, engine::Confirmation, engine::Progress, engine::Ui as _};
use crate::exit::{Code, Error};
use crate::ui::import::ImportView;
use crate::ui::record::{ImportCounts, ImportVerified, Seconds};
use crate::ui::{Human, Outcome, Reporter};

use super::args::{Output, Target};

use crate::workspace::Loaded;
use serde::Serialize;

/// `deployer table import`: what to import, and how.
#[derive(Debug, clap::Args)]
#[command(after_help = IMPORT_HELP)]
pub struct Args {
    /// The table, by its name in the spec (deployer finds the deployed table)
    pub table: String,
    #[command(flatten)]
    target: Target,
    /// The source: a file (.csv, .jsonl, .json — DynamoDB's export lines are recognised —
    /// each maybe .gz), `-` for standard input, or a postgres://, mysql:// or mariadb:// URL
    #[arg(long, value_name = "SOURCE")]
    pub from: String,
    /// The rows to import from a database: a SELECT
    #[arg(long, value_name = "SQL")]
    pub query: Option<String>,
    /// The file format, when the name does not say (and for `-`)
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pub format: Option<deployer_import::source::Format>,
    /// Build a key attribute from columns (repeatable): pk='USER#{id}'; `{{`/`}}` are braces.
    /// Without one, a key attribute comes from the column of its name
    #[arg(long = "key", value_name = "ATTR=TEMPLATE", value_parser = parse_key)]
    pub keys: Vec<deployer_import::mapping::KeyTemplate>,
    /// A column whose text is JSON, written as a map or list (repeatable): a CSV cell, or a
    /// MariaDB JSON column (text on the wire; PostgreSQL's json/jsonb need nothing)
    #[arg(long = "json-column", value_name = "COLUMN")]
    pub json_columns: Vec<String>,
    /// A query's order, for resuming: columns that identify a row [default: the columns the
    /// key is made of]
    #[arg(long, value_name = "COLUMN", value_delimiter = ',')]
    pub order_by: Vec<String>,
    /// Rejected rows tolerated before the import stops (0: stop at the first)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_errors: u64,
    /// Write units a second at most (a provisioned table's capacity caps it anyway)
    #[arg(long, value_name = "WCU")]
    pub max_wcu: Option<f64>,
    /// Requests in flight at once
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub concurrency: usize,
    /// Continue an interrupted import from its checkpoint
    #[arg(long, conflicts_with = "restart")]
    pub resume: bool,
    /// Drop an interrupted import's checkpoint and start from the first row
    #[arg(long)]
    pub restart: bool,
    /// The checkpoint file [default: .deployer/imports/<stack>.<table>.checkpoint.json]
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// The rejected rows, one JSON line each [default: .deployer/imports/<stack>.<table>.rejects.jsonl]
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Import into a protected env without asking
    #[arg(short, long)]
    pub yes: bool,
    /// At the end, read items back (BatchGetItem) and compare them with the source: N chosen
    /// at random (default 100), or `all` (the source is read again)
    #[arg(long, value_name = "N|all", num_args = 0..=1, default_missing_value = "100", value_parser = parse_verify)]
    pub verify: Option<Verify>,
    #[command(flatten)]
    output: Output,
}

impl Args {
    /// Runs `table import`.
    pub fn run(self) -> Result<(), Error> {
        let loaded = self.target.load()?;
        let reporter = self.output.reporter();
        table_import(&loaded, &self, &reporter)
    }
}

/// What `table import` did: the `summary` record (command `import`); for people `✓ <table>:
/// <message>` (`✗` unless complete), then where the rejects and the checkpoint are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Imported {
    /// How it ended.
    pub status: ImportStatus,
    /// The result, in a sentence.
    pub message: String,
    /// The table's physical name.
    pub physical_table: String,
    /// The final counters.
    #[serde(flatten)]
    pub counts: ImportCounts,
    /// Where to resume from (null once complete).
    pub checkpoint: Option<String>,
    /// The file listing rejected rows (null when none).
    pub rejects_file: Option<String>,
    /// `--verify`: items read back and compared (null without it).
    pub verified: Option<ImportVerified>,
}

/// How `table import` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ImportStatus {
    /// Every row written (and, with `--verify`, read back as written).
    #[serde(rename = "complete")]
    Complete,
    /// Every row written, but items read back differ from the source.
    #[serde(rename = "mismatch")]
    Mismatch,
    /// Ctrl-C: `--resume` continues.
    #[serde(rename = "interrupted")]
    Interrupted,
    /// More rows rejected than `--max-errors`.
    #[serde(rename = "too many errors")]
    TooManyErrors,
    /// A write or the source failed.
    #[serde(rename = "failed")]
    Failed,
}

impl Outcome for Imported {
    fn command(&self) -> &'static str {
        "import"
    }

    fn human(&self) -> Human {
        let mut details = Vec::new();
        if let Some(file) = &self.rejects_file {
            details.push(format!("  rejected rows: {file}"));
        }
        if let Some(file) = &self.checkpoint {
            details.push(format!("  checkpoint: {file}"));
        }
        Human {
            headline: Some(format!("{}: {}", self.counts.table, self.message)),
            failed: self.status != ImportStatus::Complete,
            details,
            ..Human::default()
        }
    }
}

/// `--verify`: what to read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// This many written items, chosen at random.
    Sample(usize),
    /// Every row: the source is read a second time.
    All,
}

fn parse_verify(s: &str) -> Result<Verify, String> {
    match s {
        "all" => Ok(Verify::All),
        n => n
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .map(Verify::Sample)
            .ok_or_else(|| "expected a number of items, or all".to_string()),
    }
}

const IMPORT_HELP: &str = "Examples:
  deployer table import notes --from notes.csv
  deployer table import notes --from export.json.gz --env staging --max-wcu 2000
  deployer table import notes --from \"$LEGACY_DB\" --query 'SELECT * FROM notes' \\
    --key pk='NOTE#{id}' --key sk='{created_at}' --verify
  (LEGACY_DB=mysql://app:secret@db.internal/app, or postgres://...)

Mapping: columns become attributes by name. CSV cells are strings (as in DynamoDB's own
CSV import), key cells take the key's type, empty cells are left out. JSON lines keep
their types (numbers exactly, objects as maps, arrays as lists). SQL types map to S, N,
B, BOOL, NULL; JSON columns to M and L; times to ISO 8601 strings.

A row that cannot be an item is reported with its row and line and written to the
rejects file; --max-errors says how many to tolerate. Two rows with one key: reported,
and the later one is what the table keeps.

Ctrl-C (or a crash) leaves a checkpoint: the same command with --resume continues after
the last row written (a few items may be written twice: a put is idempotent).";

fn parse_format(s: &str) -> Result<deployer_import::source::Format, String> {
    use deployer_import::source::Format;
    match s {
        "csv" => Ok(Format::Csv),
        "jsonl" | "ndjson" | "json" => Ok(Format::JsonLines),
        "dynamodb-json" | "dynamodb" => Ok(Format::DynamoDbJson),
        _ => Err("expected csv, jsonl or dynamodb-json".into()),
    }
}

fn parse_key(s: &str) -> Result<deployer_import::mapping::KeyTemplate, String> {
    deployer_import::mapping::KeyTemplate::parse(s)
}

/// Differences shown one by one before they are only counted.
const DIFFERENCES_SHOWN: u64 = 20;

/// Reading written items back (`--verify`) and comparing them with what was sent.
struct ReadBack<'a> {
    table: &'a Table,
    mapping: &'a Mapping,
    reporter: &'a Reporter,
}

impl ReadBack<'_> {
    /// The items of a sample, in batches of 100.
    async fn sample(
        &self,
        items: Vec<deployer_import::value::Item>,
    ) -> Result<ImportVerified, Error> {
        self.reporter.progress(Progress::Step(format!(
            "reading back {} items chosen at random",
            items.len()
        )));
        let mut verified = ImportVerified {
            checked: 0,
            differ: 0,
        };
        let items: Vec<_> = items.into_iter().map(|item| (None, item)).collect();
        for batch in items.chunks(100) {
            self.compare(batch, &mut verified).await?;
        }
        Ok(verified)
    }

    /// Every row of the source, read again and mapped again, but those `not_in_table`.
    async fn source(
        &self,
        source: &Source,
        format: Option<Format>,
        order: &[String],
        not_in_table: impl Fn(u64, &str) -> bool,
    ) -> Result<ImportVerified, Error> {
        self.reporter.progress(Progress::Step(
            "reading the source again to compare every item".into(),
        ));
        let (sender, mut receiver) = tokio::sync::mpsc::channel(32);
        let again: tokio::task::JoinHandle<Result<(), String>> = match source {
            Source::File(input) => {
                let file = FileSource::open(input, format, &Start::default())
                    .map_err(|e| Error::of(Code::Failed, e))?;
                let mapping = self.mapping.clone();
                tokio::task::spawn_blocking(move || {
                    deployer_import::feed(file, &mapping, sender, Arc::new(AtomicU64::new(0)))
                })
            }
            Source::Sql { url, query } => {
                let (url, query, order, mapping) = (
                    url.clone(),
                    query.clone(),
                    order.to_vec(),
                    self.mapping.clone(),
                );
                tokio::spawn(async move {
                    let rows = Arc::new(AtomicU64::new(0));
                    sql::feed(&url, &query, &order, None, 0, &mapping, sender, rows).await
                })
            }
        };
        let mut verified = ImportVerified {
            checked: 0,
            differ: 0,
        };
        let mut batch = Vec::with_capacity(100);
        while let Some(chunk) = receiver.recv().await {
            for mapped in chunk {
                let Ok((item, key, _)) = mapped.item else {
                    continue;
                };
                if not_in_table(mapped.row, &key) {
                    continue;
                }
                batch.push((Some(mapped.row), item));
                if batch.len() == 100 {
                    self.compare(&batch, &mut verified).await?;
                    batch.clear();
                }
            }
        }
        if !batch.is_empty() {
            self.compare(&batch, &mut verified).await?;
        }
        if let Ok(Err(e)) = again.await {
            return Err(Error::failed(format!(
                "reading the source again failed: {e}"
            )));
        }
        Ok(verified)
    }

    /// Reads back one batch (each item with its row, when known) and compares; the first
    /// differences are warnings.
    async fn compare(
        &self,
        batch: &[(Option<u64>, deployer_import::value::Item)],
        verified: &mut ImportVerified,
    ) -> Result<(), Error> {
        let items: Vec<_> = batch.iter().map(|(_, item)| item.clone()).collect();
        let read = self.table.get_items(&items).await.map_err(Error::failed)?;
        for ((row, written), got) in batch.iter().zip(read) {
            verified.checked += 1;
            let problem = match got {
                None => Some("not in the table".to_string()),
                Some(got) => deployer_import::value::difference(written, &got),
            };
            if let Some(problem) = problem {
                verified.differ += 1;
                if verified.differ <= DIFFERENCES_SHOWN {
                    let key = self.mapping.key_text(written);
                    let place = row.map_or_else(|| key.clone(), |r| format!("row {r} ({key})"));
                    self.reporter
                        .progress(Progress::Warning(format!("read back, {place}: {problem}")));
                }
            }
        }
        Ok(())
    }
}

enum Source {
    File(Input),
    Sql { url: String, query: String },
}

fn source_of(options: &Args) -> Result<Source, Error> {
    if options.from.contains("://") {
        if Dialect::of(&options.from).is_none() {
            return Err(Error::usage(format!(
                "--from {}: a URL must be postgres://, postgresql://, mysql:// or mariadb://",
                sql::redact(&options.from)
            )));
        }
        let query = options.query.clone().ok_or_else(|| {
            Error::usage("--from a database needs --query 'SELECT …' (the rows to import)")
        })?;
        return Ok(Source::Sql {
            url: options.from.clone(),
            query,
        });
    }
    if options.query.is_some() {
        return Err(Error::usage(
            "--query applies to a database source (--from postgres://… or mysql://…)",
        ));
    }
    if options.from == "-" {
        if options.format.is_none() {
            return Err(Error::usage(
                "--from - (standard input) needs --format csv|jsonl|dynamodb-json",
            ));
        }
        return Ok(Source::File(Input::Stdin));
    }
    let path = PathBuf::from(&options.from);
    if !path.is_file() {
        return Err(Error::usage(format!(
            "--from {}: no such file",
            path.display()
        )));
    }
    Ok(Source::File(Input::Path(path)))
}

/// What the checkpoint must match to resume: the same source.
fn fingerprint(source: &Source, order: &[String]) -> String {
    match source {
        Source::File(Input::Stdin) => "standard input".to_string(),
        // Size and modification time: a file rewritten since the checkpoint (even to the same
        // size) is not resumed by byte offset.
        Source::File(Input::Path(path)) => {
            let metadata = std::fs::metadata(path).ok();
            let size = metadata.as_ref().map_or(0, |m| m.len());
            let modified = metadata
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            format!("{} ({size} bytes, modified {modified})", path.display())
        }
        Source::Sql { url, query } => {
            format!("{} {query} ORDER BY {}", sql::redact(url), order.join(", "))
        }
    }
}

/// The columns a query is ordered by: `--order-by`, else the columns the key is made of.
fn order_columns(options: &Args, key: &deployer_import::value::KeySchema) -> Vec<String> {
    if !options.order_by.is_empty() {
        return options.order_by.clone();
    }
    let mut columns: Vec<String> = Vec::new();
    for (attribute, _) in key.attributes() {
        match options.keys.iter().find(|t| &t.attribute == attribute) {
            Some(template) => columns.extend(template.columns().map(str::to_string)),
            None => columns.push(attribute.clone()),
        }
    }
    let mut unique = Vec::new();
    for column in columns {
        if !unique.contains(&column) {
            unique.push(column);
        }
    }
    unique
}

/// Where an import starts.
#[derive(Debug, Clone, PartialEq)]
enum StartFrom {
    /// The first row (any old checkpoint and rejects file are dropped).
    Beginning,
    /// After this checkpoint.
    Checkpoint(Checkpoint),
}

/// From the checkpoint found (if any), `--resume` and `--restart`: a leftover checkpoint is never
/// ignored silently, and one is resumed only for the same table and source.
fn starting_point(
    previous: Option<Checkpoint>,
    resume: bool,
    restart: bool,
    table: &str,
    source: &str,
) -> Result<StartFrom, String> {
    match (previous, resume, restart) {
        (_, _, true) | (None, false, _) => Ok(StartFrom::Beginning),
        (None, true, _) => Err("nothing to resume: no checkpoint (run without --resume)".into()),
        (Some(checkpoint), false, false) => Err(format!(
            "an import into {} stopped after row {}: --resume continues it, --restart starts over",
            checkpoint.table, checkpoint.mark.rows
        )),
        (Some(checkpoint), true, false)
            if checkpoint.table != table || checkpoint.source != source =>
        {
            Err(format!(
                "the checkpoint is for {} from {}, not {table} from {source}: --restart to start over",
                checkpoint.table, checkpoint.source
            ))
        }
        (Some(checkpoint), true, false) => Ok(StartFrom::Checkpoint(checkpoint)),
    }
}

fn default_file(stack: &str, table: &str, suffix: &str) -> PathBuf {
    PathBuf::from(".deployer/imports").join(format!("{stack}.{table}.{suffix}"))
}

/// `deployer table import`.
pub fn table_import(loaded: &Loaded, options: &Args, reporter: &Reporter) -> Result<(), Error> {
    let spec = &loaded.spec;
    let source = check_request(spec, options)?;
    let stack = spec.stack_name();
    if spec.is_protected() && !options.yes {
        confirm_protected(reporter, &stack, &options.table)?;
    }
    let files = Files {
        checkpoint: options
            .checkpoint
            .clone()
            .unwrap_or_else(|| default_file(&stack, &options.table, "checkpoint.json")),
        rejects: options
            .rejects
            .clone()
            .unwrap_or_else(|| default_file(&stack, &options.table, "rejects.jsonl")),
    };
    // Two workers: the SDK's serialization and signing of many requests in flight use both
    // cores while the reader thread parses.
    let runtime = crate::commands::two_worker_runtime()?;
    runtime.block_on(async {
        let aws = Aws::connect(spec.region.as_deref(), reporter.call_log()).await?;
        aws.check_credentials().await?;
        let target = Destination::find(&aws, &stack, options, &source).await?;
        let resumed = resume_point(&target, options, &files, reporter)?;
        let imported = import(
            &target,
            &source,
            options,
            &files,
            resumed.as_ref(),
            reporter,
        )
        .await?;
        let verified = verify_written(&target, &source, options, &imported, reporter).await?;
        let differ = verified.as_ref().map_or(0, |v| v.differ);
        let (status, message) = result_of(
            &target.physical,
            options.max_errors,
            files.checkpoint.exists(),
            &imported,
            verified.as_ref(),
        );
        if status == ImportStatus::Complete || status == ImportStatus::Mismatch {
            let _ = std::fs::remove_file(&files.checkpoint);
        }
        let checkpoint_file = (status != ImportStatus::Complete && files.checkpoint.exists())
            .then(|| files.checkpoint.display().to_string());
        reporter.import_finished(&imported.counts);
        reporter.finish(&Imported {
            status,
            message,
            physical_table: target.physical.clone(),
            counts: imported.counts,
            checkpoint: checkpoint_file,
            rejects_file: imported.rejects_file.map(|p| p.display().to_string()),
            verified,
        });
        if let Some(e) = imported.checkpoint_error {
            return Err(Error::of(Code::Failed, e));
        }
        // The summary said why: the exit code is all that is left to say.
        match imported.ending {
            Ending::Complete if imported.read_failure.is_none() && differ == 0 => Ok(()),
            Ending::Interrupted => Err(Error::code_only(Code::Interrupted)),
            _ => Err(Error::code_only(Code::Failed)),
        }
    })
}

/// What is refused before any AWS call: a table the spec does not have, `--verify all` of
/// standard input. The source, understood.
fn check_request(spec: &crate::spec::Spec, options: &Args) -> Result<Source, Error> {
    if !spec.tables.contains_key(&options.table) {
        let tables: Vec<&str> = spec.tables.keys().map(String::as_str).collect();
        return Err(Error::usage(format!(
            "the spec has no table `{}` (tables: {})",
            options.table,
            if tables.is_empty() {
                "none".to_string()
            } else {
                tables.join(", ")
            }
        )));
    }
    let source = source_of(options)?;
    if matches!(source, Source::File(Input::Stdin)) && options.verify == Some(Verify::All) {
        return Err(Error::usage(
            "--verify all reads the source a second time: not possible for standard input (--verify N reads back a sample)",
        ));
    }
    Ok(source)
}

/// A protected env is written into only when someone says so.
fn confirm_protected(reporter: &Reporter, stack: &str, table: &str) -> Result<(), Error> {
    let question = format!("{stack} is a protected env: write into its table `{table}`?");
    match reporter.confirm(&question) {
        Confirmation::Yes => Ok(()),
        Confirmation::No => Err(Error::new(Code::Failed, "import cancelled")),
        Confirmation::NotInteractive => Err(Error::usage(format!(
            "{stack} is a protected env (`protected_envs`): pass --yes to import into it"
        ))),
    }
}

/// The checkpoint and the rejects files.
struct Files {
    checkpoint: PathBuf,
    rejects: PathBuf,
}

/// The deployed table, and how rows become its items.
struct Destination {
    physical: String,
    table: Arc<Table>,
    info: crate::aws::dynamodb::TableInfo,
    mapping: Mapping,
    order: Vec<String>,
    /// The source's fingerprint, which a checkpoint must match.
    print: String,
    /// Write units a second at most: `--max-wcu`, and a provisioned table's capacity.
    cap: Option<f64>,
}

impl Destination {
    /// The spec table's deployed table (from its stack output), described.
    async fn find(
        aws: &Aws,
        stack: &str,
        options: &Args,
        source: &Source,
    ) -> Result<Destination, Error> {
        let cloud = aws.cloud();
        let deployed = converge::describe(&cloud, stack).await?.ok_or_else(|| {
            Error::failed(format!("{stack} does not exist: run `deployer up` first"))
        })?;
        let output = format!(
            "{}TableName",
            crate::spec::names::logical_id(&options.table)
        );
        let physical = deployed.output(&output).map(str::to_string).ok_or_else(|| {
            Error::failed(format!(
                "{stack} has no output {output}: deploy the spec with table `{}` first (`deployer up`)",
                options.table
            ))
        })?;
        let mut table = Table::new(&aws.config, &physical);
        let info = table.describe().await.map_err(Error::failed)?;
        let mut mapping =
            Mapping::new(info.key.clone(), options.keys.clone()).map_err(Error::usage)?;
        mapping.json_columns = options.json_columns.clone();
        let order = order_columns(options, &info.key);
        let print = fingerprint(source, &order);
        let cap = match (options.max_wcu, info.write_capacity) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(Destination {
            physical,
            table: Arc::new(table),
            info,
            mapping,
            order,
            print,
            cap,
        })
    }
}

/// Where to start: the checkpoint (`--resume`), or the first row (its files removed).
fn resume_point(
    target: &Destination,
    options: &Args,
    files: &Files,
    reporter: &Reporter,
) -> Result<Option<Checkpoint>, Error> {
    let previous = Checkpoint::load(&files.checkpoint).map_err(|e| Error::of(Code::Failed, e))?;
    let start = starting_point(
        previous,
        options.resume,
        options.restart,
        &target.physical,
        &target.print,
    )
    .map_err(|e| Error::usage(format!("{e} (checkpoint {})", files.checkpoint.display())))?;
    let resumed = match start {
        StartFrom::Beginning => {
            let _ = std::fs::remove_file(&files.checkpoint);
            let _ = std::fs::remove_file(&files.rejects);
            None
        }
        StartFrom::Checkpoint(checkpoint) => Some(checkpoint),
    };
    if let Some(checkpoint) = &resumed {
        reporter.progress(Progress::Step(format!(
            "resuming after row {} ({} items written before it)",
            checkpoint.mark.rows, checkpoint.written
        )));
    }
    reporter.progress(Progress::Step(format!(
        "importing into {} ({}{})",
        target.physical,
        target.info.billing,
        target
            .cap
            .map(|c| format!(", at most {c:.0} WCU/s"))
            .unwrap_or_default()
    )));
    Ok(resumed)
}

/// The reader of the source: a blocking thread for files, a task for a query, sending mapped
/// records; with the source's size when known, and the bytes (or rows) read so far.
type Reading = (
    tokio::task::JoinHandle<Result<(), String>>,
    tokio::sync::mpsc::Receiver<Vec<pipeline::Mapped>>,
    Option<u64>,
    Arc<AtomicU64>,
);

fn start_reader(
    source: &Source,
    target: &Destination,
    options: &Args,
    files: &Files,
    resumed: Option<&Checkpoint>,
) -> Result<Reading, Error> {
    let (sender, receiver) = tokio::sync::mpsc::channel(32);
    let progress = Arc::new(AtomicU64::new(0));
    let mapping = target.mapping.clone();
    match source {
        Source::File(input) => {
            let start = resumed.map_or_else(Start::default, |c| Start {
                rows: c.mark.rows,
                lines: c.mark.lines,
                position: Some(c.mark.position.clone()),
            });
            let file = FileSource::open(input, options.format, &start)
                .map_err(|e| Error::of(Code::Usage, e))?;
            let total_bytes = file.total_bytes;
            let bytes = progress.clone();
            let reader = tokio::task::spawn_blocking(move || {
                deployer_import::feed(file, &mapping, sender, bytes)
            });
            Ok((reader, receiver, total_bytes, progress))
        }
        Source::Sql { url, query } => {
            let after = resumed.and_then(|c| match &c.mark.position {
                Position::After(values) => Some(values.clone()),
                _ => None,
            });
            if resumed.is_some() && after.is_none() {
                return Err(Error::usage(format!(
                    "the checkpoint {} has no position in the query's order: --restart to start over",
                    files.checkpoint.display()
                )));
            }
            let start_rows = resumed.map_or(0, |c| c.mark.rows);
            let (url, query, order, rows) = (
                url.clone(),
                query.clone(),
                target.order.clone(),
                progress.clone(),
            );
            let reader = tokio::spawn(async move {
                sql::feed(
                    &url, &query, &order, after, start_rows, &mapping, sender, rows,
                )
                .await
            });
            Ok((reader, receiver, None, progress))
        }
    }
}

/// What the import did, before any read-back.
struct Written {
    ending: Ending,
    counts: ImportCounts,
    elapsed: Duration,
    /// The source could not be read to its end.
    read_failure: Option<String>,
    rejects_file: Option<PathBuf>,
    checkpoint_error: Option<deployer_import::checkpoint::CheckpointError>,
    /// `--verify N`: the written items chosen to read back.
    sample: Vec<deployer_import::value::Item>,
    /// Rows rejected, and the last row of each key seen twice: neither is what the table holds.
    rejected_rows: std::collections::HashSet<u64>,
    winners: std::collections::HashMap<String, u64>,
}

/// The counters as the summary and the progress line show them: a resumed import's earlier
/// rows included, the share of the source read when its size is known.
struct Counter<'a> {
    table: &'a str,
    resumed: (u64, u64, u64),
    total_bytes: Option<u64>,
    read_bytes: Arc<AtomicU64>,
}

impl Counter<'_> {
    fn counts(&self, p: &pipeline::Progress) -> ImportCounts {
        let (start_rows, base_written, base_rejected) = self.resumed;
        ImportCounts {
            table: self.table.to_string(),
            read: start_rows + p.read,
            written: base_written + p.written,
            rejected: base_rejected + p.rejected,
            duplicates: p.duplicates,
            throttles: p.throttles,
            retries: p.retries,
            items_per_s: p.written as f64 / p.elapsed.as_secs_f64().max(0.001),
            wcu_per_s: p.write_units as f64 / p.elapsed.as_secs_f64().max(0.001),
            percent: self.total_bytes.filter(|t| *t > 0).map(|t| {
                (self.read_bytes.load(Ordering::Relaxed) as f64 / t as f64 * 100.0).min(100.0)
            }),
            elapsed_s: Seconds(p.elapsed),
        }
    }
}

/// Reads, writes and reports until the source ends, Ctrl-C, or too many rejects.
async fn import(
    target: &Destination,
    source: &Source,
    options: &Args,
    files: &Files,
    resumed: Option<&Checkpoint>,
    reporter: &Reporter,
) -> Result<Written, Error> {
    let (reader, receiver, total_bytes, read_bytes) =
        start_reader(source, target, options, files, resumed)?;
    let resumed_counts = resumed.map_or((0, 0, 0), |c| (c.mark.rows, c.written, c.rejected));
    let counter = Counter {
        table: &options.table,
        resumed: resumed_counts,
        total_bytes,
        read_bytes,
    };
    let mut events = Events {
        target,
        query: matches!(source, Source::Sql { .. }),
        checkpoint_path: &files.checkpoint,
        base: (resumed_counts.1, resumed_counts.2),
        counter: &counter,
        reporter,
        rejects: Rejects::new(files.rejects.clone()),
        view: ImportView::default(),
        checkpoint_error: None,
        winners: Default::default(),
        rejected_rows: Default::default(),
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let pipeline_options = pipeline::Options {
        concurrency: options.concurrency.max(1),
        max_errors: options.max_errors,
        max_wcu: target.cap,
        sample: match options.verify {
            Some(Verify::Sample(n)) => n,
            _ => 0,
        },
        progress_every: Duration::from_millis(if reporter.is_live() { 200 } else { 1000 }),
    };
    let outcome = pipeline::run(
        target.table.clone(),
        receiver,
        pipeline_options,
        stop,
        |e| events.on(e),
    )
    .await;
    // The reader stops when the pipeline stops reading; its own failure ends the import.
    let read_failure = match tokio::time::timeout(Duration::from_secs(5), reader).await {
        Ok(Ok(Err(e))) => Some(e),
        Ok(Err(e)) => Some(format!("the reader failed: {e}")),
        _ => None,
    };
    Ok(Written {
        ending: outcome.ending,
        counts: counter.counts(&outcome.progress),
        elapsed: outcome.progress.elapsed,
        read_failure,
        rejects_file: events.rejects.finish().map_err(Error::failed)?,
        checkpoint_error: events.checkpoint_error,
        sample: outcome.sample,
        rejected_rows: events.rejected_rows,
        winners: events.winners,
    })
}

/// What the pipeline reports, shown, written to the rejects file and saved as checkpoints.
struct Events<'a> {
    target: &'a Destination,
    /// A query's source: a checkpoint needs the order values of its last row.
    query: bool,
    checkpoint_path: &'a Path,
    /// Written and rejected before a resumed import's checkpoint.
    base: (u64, u64),
    counter: &'a Counter<'a>,
    reporter: &'a Reporter,
    rejects: Rejects,
    view: ImportView,
    checkpoint_error: Option<deployer_import::checkpoint::CheckpointError>,
    winners: std::collections::HashMap<String, u64>,
    rejected_rows: std::collections::HashSet<u64>,
}

impl Events<'_> {
    fn on(&mut self, event: Event) {
        match event {
            Event::Progress(p) => self
                .reporter
                .import_progress(&mut self.view, &self.counter.counts(&p)),
            Event::Rejected { row, line, reason } => {
                self.rejected_rows.insert(row);
                self.rejects.add(row, line, &reason);
                self.reporter.import_rejected(row, line, &reason);
            }
            Event::Duplicate { row, line, key } => {
                self.reporter
                    .import_duplicate(&mut self.view, row, line, &key);
                self.winners.insert(key, row);
            }
            // A query resumes after its last row's order values: a mark without them (its last
            // row could not be read) keeps the previous checkpoint, from which resuming writes
            // a few rows again rather than leaving any out.
            Event::Checkpoint { mark, .. }
                if self.query && !matches!(mark.position, Position::After(_)) => {}
            Event::Checkpoint {
                mark,
                written,
                rejected,
            } => {
                let checkpoint = Checkpoint {
                    table: self.target.physical.clone(),
                    source: self.target.print.clone(),
                    mark,
                    written: self.base.0 + written,
                    rejected: self.base.1 + rejected,
                };
                if let Err(e) = checkpoint.save(self.checkpoint_path) {
                    self.checkpoint_error = Some(e);
                }
            }
        }
    }
}

/// `--verify`, after a complete import: read back what was written, and compare.
async fn verify_written(
    target: &Destination,
    source: &Source,
    options: &Args,
    written: &Written,
    reporter: &Reporter,
) -> Result<Option<ImportVerified>, Error> {
    let (Ending::Complete, None, Some(verify)) =
        (&written.ending, &written.read_failure, options.verify)
    else {
        return Ok(None);
    };
    // Rejected rows are not in the table; of one key, the last row is.
    let not_in_table = |row: u64, key: &str| {
        written.rejected_rows.contains(&row)
            || written.winners.get(key).is_some_and(|&last| last > row)
    };
    let reading = ReadBack {
        table: &target.table,
        mapping: &target.mapping,
        reporter,
    };
    Ok(Some(match verify {
        Verify::Sample(_) => reading.sample(written.sample.clone()).await?,
        Verify::All => {
            reading
                .source(source, options.format, &target.order, not_in_table)
                .await?
        }
    }))
}

/// How the import ended, and the sentence that says so: a pure function of what happened (the
/// table's name, `--max-errors`, whether a checkpoint was left to resume from).
fn result_of(
    physical: &str,
    max_errors: u64,
    checkpoint_kept: bool,
    written: &Written,
    verified: Option<&ImportVerified>,
) -> (ImportStatus, String) {
    const RESUME: &str = "--resume continues after the last row written";
    let counts = &written.counts;
    let differ = verified.map_or(0, |v| v.differ);
    match (&written.ending, &written.read_failure) {
        (Ending::Failed(e), _) => (ImportStatus::Failed, format!("{e}; {RESUME}")),
        (_, Some(e)) => (
            ImportStatus::Failed,
            format!("reading the source failed: {e}; {RESUME}"),
        ),
        (Ending::Complete, None) if differ > 0 => {
            let checked = verified.map_or(0, |v| v.checked);
            (
                ImportStatus::Mismatch,
                format!(
                    "{} items written, but {differ} of {checked} read back differ from the source",
                    counts.written
                ),
            )
        }
        (Ending::Complete, None) => (
            ImportStatus::Complete,
            format!(
                "{} items written to {physical} in {:.1} s ({} rejected){}",
                counts.written,
                written.elapsed.as_secs_f64(),
                counts.rejected,
                verified
                    .map(|v| format!("; {} read back, all as written", v.checked))
                    .unwrap_or_default()
            ),
        ),
        (Ending::Interrupted, None) => (
            ImportStatus::Interrupted,
            format!("interrupted: the same command with {RESUME}"),
        ),
        (Ending::TooManyErrors, None) => (
            ImportStatus::TooManyErrors,
            format!(
                "stopped: {} rows rejected, more than --max-errors {}{}",
                counts.rejected,
                max_errors,
                if checkpoint_kept {
                    format!("; {RESUME}")
                } else {
                    String::new()
                }
            ),
        ),
    }
}

/// The rejects file: one JSON line per rejected row, appended as they come.
struct Rejects {
    path: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
    error: Option<String>,
}

impl Rejects {
    fn new(path: PathBuf) -> Self {
        Rejects {
            path,
            file: None,
            error: None,
        }
    }

    fn add(&mut self, row: u64, line: u64, reason: &str) {
        if self.file.is_none() && self.error.is_none() {
            let opened = self
                .path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)
                });
            match opened {
                Ok(file) => self.file = Some(std::io::BufWriter::new(file)),
                Err(e) => self.error = Some(format!("cannot write {}: {e}", self.path.display())),
            }
        }
        if let Some(file) = &mut self.file {
            let line = serde_json::json!({"row": row, "line": line, "reason": reason});
            if let Err(e) = writeln!(file, "{line}") {
                self.error = Some(format!("cannot write {}: {e}", self.path.display()));
            }
        }
    }

    /// Flushes; the path when anything was written (now or before a resume).
    fn finish(mut self) -> Result<Option<PathBuf>, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if let Some(file) = &mut self.file {
            file.flush()
                .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        }
        Ok(Path::new(&self.path).exists().then_some(self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deployer_import::checkpoint::Mark;

    fn written(ending: Ending, read_failure: Option<&str>) -> Written {
        Written {
            ending,
            counts: ImportCounts {
                table: "notes".into(),
                read: 12,
                written: 10,
                rejected: 2,
                duplicates: 0,
                throttles: 0,
                retries: 0,
                items_per_s: 10.0,
                wcu_per_s: 10.0,
                percent: None,
                elapsed_s: Seconds(Duration::from_secs(1)),
            },
            elapsed: Duration::from_millis(1_500),
            read_failure: read_failure.map(str::to_string),
            rejects_file: None,
            checkpoint_error: None,
            sample: Vec::new(),
            rejected_rows: Default::default(),
            winners: Default::default(),
        }
    }

    #[test]
    fn the_result_is_a_function_of_how_the_import_ended() {
        let all_read = ImportVerified {
            checked: 10,
            differ: 0,
        };
        let two_differ = ImportVerified {
            checked: 10,
            differ: 2,
        };
        let cases: [(Written, Option<&ImportVerified>, bool, ImportStatus, &str); 7] = [
            (
                written(Ending::Complete, None),
                None,
                false,
                ImportStatus::Complete,
                "10 items written to t-1 in 1.5 s (2 rejected)",
            ),
            (
                written(Ending::Complete, None),
                Some(&all_read),
                false,
                ImportStatus::Complete,
                "10 items written to t-1 in 1.5 s (2 rejected); 10 read back, all as written",
            ),
            (
                written(Ending::Complete, None),
                Some(&two_differ),
                false,
                ImportStatus::Mismatch,
                "10 items written, but 2 of 10 read back differ from the source",
            ),
            (
                written(Ending::Complete, Some("gzip: bad header")),
                None,
                true,
                ImportStatus::Failed,
                "reading the source failed: gzip: bad header; --resume continues after the last row written",
            ),
            (
                written(Ending::Failed("AccessDenied".into()), None),
                None,
                true,
                ImportStatus::Failed,
                "AccessDenied; --resume continues after the last row written",
            ),
            (
                written(Ending::Interrupted, None),
                None,
                true,
                ImportStatus::Interrupted,
                "interrupted: the same command with --resume continues after the last row written",
            ),
            (
                written(Ending::TooManyErrors, None),
                None,
                false,
                ImportStatus::TooManyErrors,
                "stopped: 2 rows rejected, more than --max-errors 1",
            ),
        ];
        for (written, verified, kept, status, message) in cases {
            assert_eq!(
                result_of("t-1", 1, kept, &written, verified),
                (status, message.to_string())
            );
        }
        let kept = result_of("t-1", 1, true, &written(Ending::TooManyErrors, None), None);
        assert!(
            kept.1
                .ends_with("; --resume continues after the last row written")
        );
    }

    fn checkpoint(table: &str, source: &str) -> Checkpoint {
        Checkpoint {
            table: table.into(),
            source: source.into(),
            mark: Mark {
                rows: 40,
                lines: 41,
                position: Position::Byte(400),
            },
            written: 39,
            rejected: 1,
        }
    }

    /// A checkpoint found, `--resume`, `--restart`, and where the import starts.
    type Case = (
        Option<Checkpoint>,
        bool,
        bool,
        Result<StartFrom, &'static str>,
    );

    #[test]
    fn where_an_import_starts() {
        let same = || Some(checkpoint("t", "a.csv (9 bytes)"));
        let cases: Vec<Case> = vec![
            (None, false, false, Ok(StartFrom::Beginning)),
            (None, false, true, Ok(StartFrom::Beginning)),
            (same(), false, true, Ok(StartFrom::Beginning)),
            (
                None,
                true,
                false,
                Err("nothing to resume: no checkpoint (run without --resume)"),
            ),
            (
                same(),
                false,
                false,
                Err(
                    "an import into t stopped after row 40: --resume continues it, --restart starts over",
                ),
            ),
            (
                same(),
                true,
                false,
                Ok(StartFrom::Checkpoint(checkpoint("t", "a.csv (9 bytes)"))),
            ),
            (
                Some(checkpoint("t", "b.csv (3 bytes)")),
                true,
                false,
                Err(
                    "the checkpoint is for t from b.csv (3 bytes), not t from a.csv (9 bytes): --restart to start over",
                ),
            ),
            (
                Some(checkpoint("other", "a.csv (9 bytes)")),
                true,
                false,
                Err(
                    "the checkpoint is for other from a.csv (9 bytes), not t from a.csv (9 bytes): --restart to start over",
                ),
            ),
        ];
        for (previous, resume, restart, expected) in cases {
            let got = starting_point(previous.clone(), resume, restart, "t", "a.csv (9 bytes)");
            assert_eq!(
                got,
                expected.map_err(str::to_string),
                "{previous:?} resume={resume} restart={restart}"
            );
        }
    }
}
