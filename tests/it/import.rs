//! `deployer table import` end to end: the example stack deployed to moto, rows from each file
//! format written into its table and read back item by item; bad rows with their lines and the
//! rejects file; and, against crates/fake-dynamodb (which counts every put), throttling,
//! unprocessed items and 5xx answers losing nothing, and an interrupted import resumed without
//! gaps.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::common::{self, moto::Moto};

/// A project with the example spec deployed to `moto`; the notes table's physical name.
fn deployed(moto: &Moto) -> (tempfile::TempDir, String) {
    let project = common::project_with(&[("api.zip", "import")]);
    moto.deployer(
        project.path(),
        &["up", "--yes", "-q", "--artifact", "api=api.zip"],
    )
    .expect_code(0);
    let outputs = moto.deployer(project.path(), &["outputs", "--json"]);
    outputs.expect_code(0);
    let record = common::records(&outputs.stdout)
        .pop()
        .expect("an outputs record");
    let table = record["outputs"]["NotesTableName"]
        .as_str()
        .unwrap()
        .to_string();
    (project, table)
}

/// Every item of `table` in moto, by `pk|sk`, in DynamoDB's JSON.
fn scan(moto: &Moto, table: &str) -> BTreeMap<String, serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
        let mut items = BTreeMap::new();
        let mut pages = client
            .scan()
            .table_name(table)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.unwrap();
            let key = format!("{}|{}", text(&item["pk"]), text(&item["sk"]));
            let json: serde_json::Map<String, serde_json::Value> =
                item.iter().map(|(k, v)| (k.clone(), json_of(v))).collect();
            items.insert(key, serde_json::Value::Object(json));
        }
        items
    })
}

fn text(v: &AttributeValue) -> String {
    v.as_s().cloned().unwrap_or_default()
}

/// An attribute value as DynamoDB's JSON (numbers and sets as text, binary as base64).
fn json_of(v: &AttributeValue) -> serde_json::Value {
    use base64::Engine as _;
    use serde_json::json;
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => {
            json!({"B": base64::engine::general_purpose::STANDARD.encode(b.as_ref())})
        }
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::L(l) => json!({"L": l.iter().map(json_of).collect::<Vec<_>>()}),
        AttributeValue::M(m) => {
            json!({"M": m.iter().map(|(k, v)| (k.clone(), json_of(v))).collect::<serde_json::Map<_, _>>()})
        }
        AttributeValue::Ss(s) => json!({"SS": s}),
        AttributeValue::Ns(s) => json!({"NS": s}),
        other => json!({"?": format!("{other:?}")}),
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn each_file_format_lands_in_the_table_item_by_item() {
    let moto = Moto::start();
    let (project, table) = deployed(&moto);
    let dir = project.path();
    write(
        dir,
        "notes.csv",
        "pk,sk,title,views,note\nNOTE#1,v1,\"Hello, \"\"world\"\"\",12,\nNOTE#2,v1,Ünïcødé ✓,0,second\n",
    );
    write(
        dir,
        "notes.jsonl",
        "{\"pk\": \"NOTE#3\", \"sk\": \"v1\", \"price\": 12345678901234567890.123456789, \"ok\": true, \"gone\": null, \"tags\": [\"a\", 1], \"meta\": {\"by\": \"me\"}}\n",
    );
    write(
        dir,
        "export.json",
        "{\"Item\":{\"pk\":{\"S\":\"NOTE#4\"},\"sk\":{\"S\":\"v1\"},\"blob\":{\"B\":\"AAEC\"},\"set\":{\"SS\":[\"x\",\"y\"]},\"n\":{\"N\":\"1.5\"}}}\n",
    );
    for (file, verify, checked) in [
        ("notes.csv", "--verify=all", 2),
        ("notes.jsonl", "--verify", 1),
        ("export.json", "--verify=5", 1),
    ] {
        let out = moto.deployer(
            dir,
            &["table", "import", "notes", "--from", file, verify, "--json"],
        );
        out.expect_code(0);
        let summary = common::summary(&out.stdout);
        assert_eq!(summary["command"], "import", "{}", out.stdout);
        assert_eq!(summary["status"], "complete");
        assert_eq!(summary["rejected"], 0);
        assert_eq!(summary["checkpoint"], serde_json::Value::Null);
        assert_eq!(
            summary["verified"],
            serde_json::json!({"checked": checked, "differ": 0}),
            "{file}"
        );
    }
    let items = scan(&moto, &table);
    let expected = serde_json::json!({
        "NOTE#1|v1": {"pk": {"S": "NOTE#1"}, "sk": {"S": "v1"}, "title": {"S": "Hello, \"world\""}, "views": {"S": "12"}},
        "NOTE#2|v1": {"pk": {"S": "NOTE#2"}, "sk": {"S": "v1"}, "title": {"S": "Ünïcødé ✓"}, "views": {"S": "0"}, "note": {"S": "second"}},
        "NOTE#3|v1": {"pk": {"S": "NOTE#3"}, "sk": {"S": "v1"}, "price": {"N": "12345678901234567890.123456789"},
                      "ok": {"BOOL": true}, "gone": {"NULL": true}, "tags": {"L": [{"S": "a"}, {"N": "1"}]},
                      "meta": {"M": {"by": {"S": "me"}}}},
        "NOTE#4|v1": {"pk": {"S": "NOTE#4"}, "sk": {"S": "v1"}, "blob": {"B": "AAEC"}, "set": {"SS": ["x", "y"]}, "n": {"N": "1.5"}},
    });
    assert_eq!(serde_json::to_value(&items).unwrap(), expected);
}

#[test]
fn bad_rows_are_reported_with_their_line_and_kept_in_the_rejects_file() {
    let moto = Moto::start();
    let (project, table) = deployed(&moto);
    let dir = project.path();
    // Line 3: no partition key. Line 5 (a quoted cell spans lines 4-5): fine. Line 6: too few cells.
    write(
        dir,
        "rows.csv",
        "pk,sk,body\nA,1,ok\n,2,no key\nB,3,\"two\nlines\"\nC\n",
    );
    let stopped = moto.deployer(dir, &["table", "import", "notes", "--from", "rows.csv"]);
    stopped.expect_code(1);
    assert!(
        stopped
            .stderr
            .contains("rejected row 2 (line 3): no value for the key attribute pk"),
        "{}",
        stopped.stderr
    );
    assert!(
        stopped.stderr.contains("more than --max-errors 0"),
        "{}",
        stopped.stderr
    );

    let out = moto.deployer(
        dir,
        &[
            "table",
            "import",
            "notes",
            "--from",
            "rows.csv",
            "--max-errors",
            "5",
            "--restart",
            "--json",
        ],
    );
    out.expect_code(0);
    let records = common::records(&out.stdout);
    let rejected: Vec<_> = records
        .iter()
        .filter(|r| r["type"] == "rejected")
        .map(|r| {
            (
                r["row"].as_u64().unwrap(),
                r["line"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (2, 3, "no value for the key attribute pk".to_string()),
            (4, 6, "1 fields where the header has 3".to_string()),
        ]
    );
    let summary = records.last().unwrap();
    assert_eq!(
        (summary["written"].as_u64(), summary["rejected"].as_u64()),
        (Some(2), Some(2))
    );
    let rejects_file = summary["rejects_file"].as_str().unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.join(rejects_file))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0],
        serde_json::json!({"row": 2, "line": 3, "reason": "no value for the key attribute pk"})
    );
    assert_eq!(
        scan(&moto, &table).keys().collect::<Vec<_>>(),
        ["A|1", "B|3"]
    );
}

#[test]
fn key_templates_build_the_key_and_duplicates_keep_the_later_row() {
    let moto = Moto::start();
    let (project, table) = deployed(&moto);
    let dir = project.path();
    write(
        dir,
        "users.jsonl",
        "{\"id\": 7, \"v\": \"first\"}\n{\"id\": 8, \"v\": \"x\"}\n{\"id\": 7, \"v\": \"second\"}\n",
    );
    let import = |sk: &str| {
        let args = [
            "table",
            "import",
            "notes",
            "--from",
            "users.jsonl",
            "--key",
            "pk=USER#{id}",
            "--key",
            sk,
            "--json",
        ];
        moto.deployer(dir, &args)
    };
    let out = import("sk=profile");
    // `sk=profile` names no column: every item would share it, so it is refused up front.
    out.expect_code(2);
    assert!(out.stderr.contains("names no column"), "{}", out.stderr);
    let out = import("sk={{profile}}#{id}");
    out.expect_code(0);
    let records = common::records(&out.stdout);
    let duplicate = records
        .iter()
        .find(|r| r["type"] == "duplicate")
        .expect("a duplicate record");
    assert_eq!(
        (duplicate["row"].as_u64(), duplicate["key"].as_str()),
        (Some(3), Some("pk=USER#7 sk={profile}#7"))
    );
    let items = scan(&moto, &table);
    assert_eq!(
        items["USER#7|{profile}#7"]["v"],
        serde_json::json!({"S": "second"})
    );
    assert_eq!(items.len(), 2);
}

#[test]
fn a_missing_table_source_or_checkpoint_is_a_clear_usage_error() {
    let moto = Moto::start();
    let (project, _) = deployed(&moto);
    let dir = project.path();
    write(dir, "a.csv", "pk,sk\nx,y\n");
    let cases: [(&[&str], &str); 5] = [
        (
            &["table", "import", "nope", "--from", "a.csv"],
            "the spec has no table `nope` (tables: notes)",
        ),
        (
            &["table", "import", "notes", "--from", "missing.csv"],
            "--from missing.csv: no such file",
        ),
        (
            &["table", "import", "notes", "--from", "-"],
            "needs --format",
        ),
        (
            &["table", "import", "notes", "--from", "a.csv", "--resume"],
            "nothing to resume",
        ),
        (
            &[
                "table",
                "import",
                "notes",
                "--from",
                "sqlite://x",
                "--query",
                "SELECT 1",
            ],
            "must be postgres://",
        ),
    ];
    for (args, message) in cases {
        let out = moto.deployer(dir, args);
        out.expect_code(2);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
    }
}

/// The fake DynamoDB on a runtime of its own, serving `table` like the example's notes table.
fn fake(
    table: &str,
    configure: impl FnOnce(&mut deployer_fake_dynamodb::Config),
) -> (tokio::runtime::Runtime, deployer_fake_dynamodb::Fake) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut config = deployer_fake_dynamodb::Config::new(table, "pk");
    config.range_key = Some(("sk".into(), deployer_fake_dynamodb::KeyType::S));
    config.store = true;
    configure(&mut config);
    let fake = runtime
        .block_on(deployer_fake_dynamodb::start(config, 0))
        .unwrap();
    (runtime, fake)
}

fn rows_csv(dir: &Path, name: &str, rows: usize) {
    let mut text = String::from("pk,sk,n\n");
    for i in 0..rows {
        text.push_str(&format!("K{i},s,{i}\n"));
    }
    write(dir, name, &text);
}

#[test]
fn throttles_unprocessed_items_and_5xx_lose_nothing() {
    let moto = Moto::start();
    let (project, table) = deployed(&moto);
    let dir = project.path();
    rows_csv(dir, "rows.csv", 3000);
    let (_runtime, fake) = fake(&table, |c| {
        c.write_rate = Some(1500.0);
        c.unprocessed_every = Some(7);
        c.fail_every = Some(11);
    });
    let out = moto.deployer_with(
        dir,
        &["table", "import", "notes", "--from", "rows.csv", "--json"],
        &[("AWS_ENDPOINT_URL_DYNAMODB", &fake.url())],
    );
    out.expect_code(0);
    let summary = common::summary(&out.stdout);
    assert_eq!(summary["written"], 3000);
    let stats = fake.stats();
    assert!(
        stats.throttled + stats.unprocessed > 0,
        "the fake never pushed back: {stats:?}"
    );
    assert!(stats.failed > 0, "{stats:?}");
    assert!(summary["throttles"].as_u64().unwrap() > 0, "{summary}");
    let items = fake.items();
    assert_eq!(items.len(), 3000, "every row present");
    assert!(
        items.iter().all(|(_, puts, _)| *puts == 1),
        "a row was written twice"
    );
}

/// Runs `deployer ARGS` against `fake` and sends SIGINT once the fake has taken 1,500 items;
/// the interrupted run's output (exit 130 checked).
fn interrupted(
    moto: &Moto,
    dir: &Path,
    args: &[&str],
    fake: &deployer_fake_dynamodb::Fake,
) -> std::process::Output {
    let child = moto
        .command(assert_cmd::cargo::cargo_bin("deployer"))
        .current_dir(dir)
        .args(args)
        .env("AWS_ENDPOINT_URL_DYNAMODB", fake.url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fake.stats().items < 1500 {
        assert!(
            std::time::Instant::now() < deadline,
            "the import never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn an_interrupted_import_resumes_with_every_item_present() {
    let moto = Moto::start();
    let (project, table) = deployed(&moto);
    let dir = project.path();
    rows_csv(dir, "rows.csv", 6000);
    // 2,000 items a second: three seconds of work, interrupted after about one.
    let (_runtime, fake) = fake(&table, |c| c.write_rate = Some(2000.0));
    let out = interrupted(
        &moto,
        dir,
        &["table", "import", "notes", "--from", "rows.csv", "--json"],
        &fake,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = common::summary(&stdout);
    assert_eq!(summary["status"], "interrupted");
    let checkpoint = summary["checkpoint"]
        .as_str()
        .expect("a checkpoint")
        .to_string();
    assert!(dir.join(&checkpoint).exists());
    let before = fake.stats().items;
    assert!(
        before < 6000,
        "the interrupt came too late to test anything ({before} written)"
    );

    // The same command again refuses to start over silently.
    let again = moto.deployer_with(
        dir,
        &["table", "import", "notes", "--from", "rows.csv"],
        &[("AWS_ENDPOINT_URL_DYNAMODB", &fake.url())],
    );
    again.expect_code(2);
    assert!(
        again.stderr.contains("--resume continues it"),
        "{}",
        again.stderr
    );

    let resumed = moto.deployer_with(
        dir,
        &[
            "table", "import", "notes", "--from", "rows.csv", "--resume", "--json",
        ],
        &[("AWS_ENDPOINT_URL_DYNAMODB", &fake.url())],
    );
    resumed.expect_code(0);
    let summary = common::summary(&resumed.stdout);
    assert_eq!(summary["status"], "complete");
    assert_eq!(summary["read"], 6000);
    assert!(
        !dir.join(&checkpoint).exists(),
        "a complete import leaves no checkpoint"
    );
    let items = fake.items();
    assert_eq!(items.len(), 6000, "every row present after the resume");
    let twice = items.iter().filter(|(_, puts, _)| *puts > 1).count();
    // Only what was in flight at the interrupt (16 requests of 25 at most) is written again.
    assert!(twice <= 16 * 25, "{twice} items written twice");
}

/// What both SQL tests expect of the same awkward rows, in DynamoDB's JSON.
fn expected_sql_items() -> serde_json::Value {
    let doc = serde_json::json!({"M": {"a": {"L": [{"N": "1"}, {"S": "b"}, {"NULL": true}]}, "n": {"N": "1.5"}}});
    serde_json::json!({
        "NOTE#1|2024-05-06": {
            "pk": {"S": "NOTE#1"}, "sk": {"S": "2024-05-06"}, "id": {"N": "1"}, "day": {"S": "2024-05-06"},
            "title": {"S": "Ünïcødé ✓ \"quoted\""},
            "price": {"N": "12345678901234567890.123456789"},
            "ratio": {"N": "0.1"}, "flag": {"BOOL": true}, "data": {"B": "AAEC/w=="},
            "doc": doc, "nothing": {"NULL": true}, "big": {"N": "9223372036854775807"},
        },
        "NOTE#2|2024-05-07": {
            "pk": {"S": "NOTE#2"}, "sk": {"S": "2024-05-07"}, "id": {"N": "2"}, "day": {"S": "2024-05-07"},
            "title": {"S": ""}, "price": {"N": "-0.0000000001"}, "ratio": {"N": "-0.00000015"},
            "flag": {"BOOL": false}, "data": {"B": ""}, "doc": {"NULL": true}, "nothing": {"NULL": true},
            "big": {"N": "-1"},
        },
    })
}

fn import_sql(
    moto: &Moto,
    dir: &Path,
    url: &str,
    query: &str,
    extra: &[&str],
) -> crate::common::moto::Output {
    let mut args = vec![
        "table",
        "import",
        "notes",
        "--from",
        url,
        "--query",
        query,
        "--key",
        "pk=NOTE#{id}",
        "--key",
        "sk={day}",
        "--json",
    ];
    args.extend(extra);
    moto.deployer(dir, &args)
}

#[test]
fn postgres_rows_with_awkward_types_land_item_by_item() {
    let postgres = common::databases::Postgres::start();
    postgres.execute(
        "CREATE TABLE notes (id int PRIMARY KEY, day date NOT NULL, title text, price numeric(40,10), \
         ratio double precision, flag boolean, data bytea, doc jsonb, nothing text, big bigint);
         INSERT INTO notes VALUES
           (2, '2024-05-07', '', -0.0000000001, -1.5e-7, false, '', NULL, NULL, -1),
           (1, '2024-05-06', 'Ünïcødé ✓ \"quoted\"', 12345678901234567890.1234567890, 0.1, true, '\\x000102ff', \
            '{\"a\": [1, \"b\", null], \"n\": 1.5}', NULL, 9223372036854775807);",
    );
    let moto = Moto::start();
    let (project, table) = deployed(&moto);
    let out = import_sql(
        &moto,
        project.path(),
        &postgres.url(),
        "SELECT * FROM notes",
        &[],
    );
    out.expect_code(0);
    assert_eq!(common::summary(&out.stdout)["written"], 2);
    same_items(&scan(&moto, &table), &expected_sql_items());
    // A type deployer does not map is named, with the cast that fixes it.
    let odd = import_sql(
        &moto,
        project.path(),
        &postgres.url(),
        "SELECT id, day, point(1, 2) AS p FROM notes",
        &["--restart"],
    );
    odd.expect_code(1);
    assert!(
        odd.stdout
            .contains("type POINT is not mapped; cast it in the query (e.g. p::text)"),
        "{}",
        odd.stdout
    );
}

#[test]
fn mariadb_rows_with_awkward_types_land_item_by_item() {
    let mariadb = common::databases::MariaDb::start();
    mariadb.execute(
        "CREATE DATABASE app CHARACTER SET utf8mb4;
         CREATE TABLE app.notes (id INT PRIMARY KEY, day DATE NOT NULL, title VARCHAR(100), price DECIMAL(38,10), \
         ratio DOUBLE, flag BOOLEAN, data VARBINARY(16), doc JSON, nothing TEXT, big BIGINT);
         INSERT INTO app.notes VALUES
           (2, '2024-05-07', '', -0.0000000001, -1.5e-7, false, '', NULL, NULL, -1),
           (1, '2024-05-06', 'Ünïcødé ✓ \"quoted\"', 1234567890123456789.1234567890, 0.1, true, x'000102ff', \
            '{\"a\": [1, \"b\", null], \"n\": 1.5}', NULL, 9223372036854775807);",
    );
    let moto = Moto::start();
    let (project, table) = deployed(&moto);
    // MariaDB's JSON is LONGTEXT on the wire: `--json-column doc` reads it as JSON.
    let out = import_sql(
        &moto,
        project.path(),
        &mariadb.url("app"),
        "SELECT * FROM notes",
        &["--json-column", "doc"],
    );
    out.expect_code(0);
    assert_eq!(common::summary(&out.stdout)["written"], 2);
    let mut expected = expected_sql_items();
    // DECIMAL(38,10) holds 28 digits before the point: the row has 19.
    expected["NOTE#1|2024-05-06"]["price"] =
        serde_json::json!({"N": "1234567890123456789.123456789"});
    same_items(&scan(&moto, &table), &expected);
}

/// Item by item, attribute by attribute, naming the first difference.
fn same_items(actual: &BTreeMap<String, serde_json::Value>, expected: &serde_json::Value) {
    let expected = expected.as_object().unwrap();
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "keys"
    );
    for (key, want) in expected {
        let got = &actual[key];
        for (name, value) in want.as_object().unwrap() {
            assert_eq!(&got[name], value, "{key}: attribute {name}");
        }
        for name in got.as_object().unwrap().keys() {
            assert!(
                want.get(name).is_some(),
                "{key}: unexpected attribute {name} = {}",
                got[name]
            );
        }
    }
}

#[test]
fn an_interrupted_query_resumes_after_the_last_row_written_in_its_order() {
    let postgres = common::databases::Postgres::start();
    // Inserted out of order: only the import's ORDER BY makes "after the last row" mean anything.
    postgres.execute(
        "CREATE TABLE big (id int PRIMARY KEY, sk text NOT NULL);
         INSERT INTO big SELECT (i * 7919) % 6000, 's' FROM generate_series(0, 5999) AS i;",
    );
    let moto = Moto::start();
    let (project, table) = deployed(&moto);
    let dir = project.path();
    let (_runtime, fake) = fake(&table, |c| c.write_rate = Some(2000.0));
    let args = [
        "table",
        "import",
        "notes",
        "--from",
        &postgres.url(),
        "--query",
        "SELECT id, sk FROM big",
        "--key",
        "pk=K{id}",
        "--json",
    ];
    interrupted(&moto, dir, &args, &fake);
    let checkpoint: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join(".deployer/imports/notes-dev.notes.checkpoint.json")).unwrap(),
    )
    .unwrap();
    // The query's order is by the key's column: the checkpoint holds the last id written.
    let after = &checkpoint["mark"]["position"]["after"][0];
    assert_eq!(after[0], "INT4", "{checkpoint}");
    assert!(fake.stats().items < 6000);

    let mut resume = args.to_vec();
    resume.push("--resume");
    let resumed = moto.deployer_with(dir, &resume, &[("AWS_ENDPOINT_URL_DYNAMODB", &fake.url())]);
    resumed.expect_code(0);
    let items = fake.items();
    assert_eq!(items.len(), 6000, "every row present after the resume");
    let twice = items.iter().filter(|(_, puts, _)| *puts > 1).count();
    assert!(twice <= 16 * 25, "{twice} items written twice");
}

#[test]
fn reading_back_finds_the_writes_a_table_lost() {
    let moto = Moto::start();
    let (project, table) = deployed(&moto);
    let dir = project.path();
    rows_csv(dir, "rows.csv", 500);
    // A table that acknowledges every write and keeps all but every 100th.
    let (_runtime, fake) = fake(&table, |c| c.lose_every = Some(100));
    let out = moto.deployer_with(
        dir,
        &[
            "table", "import", "notes", "--from", "rows.csv", "--verify", "all", "--json",
        ],
        &[("AWS_ENDPOINT_URL_DYNAMODB", &fake.url())],
    );
    out.expect_code(1);
    let records = common::records(&out.stdout);
    let summary = records.last().unwrap();
    assert_eq!(summary["status"], "mismatch");
    assert_eq!(
        summary["verified"],
        serde_json::json!({"checked": 500, "differ": 5})
    );
    let warnings: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "warning")
        .filter_map(|r| r["message"].as_str())
        .collect();
    assert_eq!(warnings.len(), 5, "{warnings:?}");
    assert!(
        warnings.iter().all(|w| w.ends_with("not in the table")),
        "{warnings:?}"
    );
}

#[test]
fn a_bad_row_in_each_format_is_named_with_its_line() {
    let moto = Moto::start();
    let (project, table) = deployed(&moto);
    let dir = project.path();
    write(
        dir,
        "a.jsonl",
        "{\"pk\": \"A\", \"sk\": \"1\"}\n\n{\"pk\": \"B\", \"sk\": 2\n{\"pk\": \"C\", \"sk\": \"3\"}\n",
    );
    write(
        dir,
        "b.json",
        "{\"Item\":{\"pk\":{\"S\":\"D\"},\"sk\":{\"S\":\"4\"}}}\n{\"Item\":{\"pk\":{\"S\":\"E\"},\"sk\":{\"N\":\"5\"}}}\n",
    );
    let cases = [
        (
            "a.jsonl",
            2,
            3,
            "not JSON: EOF while parsing an object at line 1 column 19",
        ),
        ("b.json", 2, 2, "the key attribute sk must be S, not N"),
    ];
    for (file, row, line, reason) in cases {
        let out = moto.deployer(
            dir,
            &[
                "table",
                "import",
                "notes",
                "--from",
                file,
                "--max-errors",
                "1",
                "--json",
            ],
        );
        out.expect_code(0);
        let records = common::records(&out.stdout);
        let rejected: Vec<_> = records.iter().filter(|r| r["type"] == "rejected").collect();
        assert_eq!(rejected.len(), 1, "{file}: {}", out.stdout);
        assert_eq!(
            (
                rejected[0]["row"].as_u64(),
                rejected[0]["line"].as_u64(),
                rejected[0]["reason"].as_str()
            ),
            (Some(row), Some(line), Some(reason)),
            "{file}"
        );
    }
    assert_eq!(
        scan(&moto, &table).keys().collect::<Vec<_>>(),
        ["A|1", "C|3", "D|4"]
    );
}

#[test]
fn standard_input_and_a_provisioned_tables_capacity() {
    let moto = Moto::start();
    let (project, table) = deployed(&moto);
    let dir = project.path();
    // A provisioned table of 800 write units (the fake says so in DescribeTable): the import's
    // rate is capped there, and says so.
    let (_runtime, fake) = fake(&table, |c| {
        c.provisioned_wcu = Some(800);
        c.write_rate = Some(800.0);
    });
    let mut child = moto
        .command(assert_cmd::cargo::cargo_bin("deployer"))
        .current_dir(dir)
        .args(["table", "import", "notes", "--from", "-", "--format", "csv"])
        .env("AWS_ENDPOINT_URL_DYNAMODB", fake.url())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"pk,sk\n").unwrap();
        for i in 0..1200 {
            writeln!(stdin, "K{i},s").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("(PROVISIONED, at most 800 WCU/s)"),
        "{stderr}"
    );
    assert_eq!(fake.items().len(), 1200);
    // The fake throttles above 800 too: paced under the capacity from the start, nothing was.
    let stats = fake.stats();
    assert_eq!((stats.throttled, stats.unprocessed), (0, 0), "{stats:?}");
}

#[test]
fn a_protected_env_asks_first() {
    let project = common::project_with(&[]);
    std::fs::write(project.path().join("a.csv"), "pk,sk\nx,y\n").unwrap();
    let moto = Moto::start();
    let out = moto.deployer(
        project.path(),
        &[
            "table", "import", "notes", "--env", "prod", "--from", "a.csv",
        ],
    );
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("notes-prod is a protected env (`protected_envs`): pass --yes"),
        "{}",
        out.stderr
    );
}
