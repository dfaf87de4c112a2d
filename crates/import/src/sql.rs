//! Reading a SQL query's rows from PostgreSQL or MySQL/MariaDB, streamed (sqlx), in a stable
//! order so an import can resume after the last row it wrote.
//!
//! The query is wrapped: `SELECT * FROM (<query>) AS deployer_source [WHERE (<order>) > (<last>)]
//! ORDER BY <order>`; the order columns must identify a row (the table's key columns usually
//! do), or a resume could skip rows sharing the last written row's values.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::TryStreamExt;
use sqlx::{Column, Connection, Row, TypeInfo, ValueRef};

use crate::mapping::Mapping;
use crate::pipeline::Mapped;
use crate::source::{Fields, Position};
use crate::value::{Item, Value};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

impl Dialect {
    /// The dialect a URL names (`postgres://`, `postgresql://`, `mysql://`, `mariadb://`).
    pub fn of(url: &str) -> Option<Dialect> {
        let scheme = url.split_once("://")?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::MySql),
            _ => None,
        }
    }

    fn quote(self, identifier: &str) -> String {
        match self {
            Dialect::Postgres => format!("\"{}\"", identifier.replace('"', "\"\"")),
            Dialect::MySql => format!("`{}`", identifier.replace('`', "``")),
        }
    }
}

/// The statement that reads `query` in `order`, after the row whose order values are `after`
/// (type name and text of each, as a checkpoint keeps them).
pub fn statement(
    dialect: Dialect,
    query: &str,
    order: &[String],
    after: Option<&[(String, String)]>,
) -> String {
    let query = query.trim().trim_end_matches(';');
    let columns: Vec<String> = order.iter().map(|c| dialect.quote(c)).collect();
    let mut sql = format!("SELECT * FROM ({query}) AS deployer_source");
    if let Some(after) = after {
        let parameters: Vec<String> = after
            .iter()
            .enumerate()
            .map(|(i, (type_name, _))| match dialect {
                // Sent as text, read back as the column's own type, so the comparison is the
                // column's (numbers as numbers, times as times).
                Dialect::Postgres => format!("CAST(${} AS {type_name})", i + 1),
                Dialect::MySql => "?".to_string(),
            })
            .collect();
        sql.push_str(&format!(
            " WHERE ({}) > ({})",
            columns.join(", "),
            parameters.join(", ")
        ));
    }
    sql.push_str(&format!(" ORDER BY {}", columns.join(", ")));
    sql
}

/// Streams the rows of `query` on `url` to `sender`, mapped, in chunks; `after` resumes after
/// a checkpoint's row `rows_done`. `rows` counts what was read.
#[allow(clippy::too_many_arguments)]
pub async fn feed(
    url: &str,
    query: &str,
    order: &[String],
    after: Option<Vec<(String, String)>>,
    rows_done: u64,
    mapping: &Mapping,
    sender: tokio::sync::mpsc::Sender<Vec<Mapped>>,
    rows: Arc<AtomicU64>,
) -> Result<(), String> {
    let dialect = Dialect::of(url).ok_or_else(|| {
        "--from: expected a postgres://, postgresql://, mysql:// or mariadb:// URL".to_string()
    })?;
    let sql = statement(dialect, query, order, after.as_deref());
    let redacted = redact(url);
    let mut row_number = rows_done;
    let mut chunk = Vec::with_capacity(crate::CHUNK);
    let send = async |chunk: &mut Vec<Mapped>| {
        sender
            .send(std::mem::replace(chunk, Vec::with_capacity(crate::CHUNK)))
            .await
            .is_ok()
    };
    macro_rules! stream_rows {
        ($connection:ty, $convert:ident) => {{
            let mut connection = <$connection>::connect(url)
                .await
                .map_err(|e| format!("cannot connect to {redacted}: {e}"))?;
            // The query is the user's own, run with their credentials; only the identifiers we
            // add are quoted here, and the resume values are bound, never spliced in.
            let mut statement = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for (_, text) in after.iter().flatten() {
                statement = statement.bind(text.as_str());
            }
            let mut stream = statement.fetch(&mut connection);
            loop {
                let row = match stream.try_next().await {
                    Ok(Some(row)) => row,
                    Ok(None) => break,
                    Err(e) => {
                        return Err(format!("the query failed at row {}: {e}", row_number + 1));
                    }
                };
                row_number += 1;
                let converted = $convert(&row, order);
                chunk.push(mapped(mapping, row_number, converted, order.len()));
                if chunk.len() == crate::CHUNK {
                    rows.store(row_number, Ordering::Relaxed);
                    if !send(&mut chunk).await {
                        return Ok(());
                    }
                }
            }
        }};
    }
    match dialect {
        Dialect::Postgres => stream_rows!(sqlx::PgConnection, postgres_row),
        Dialect::MySql => stream_rows!(sqlx::MySqlConnection, mysql_row),
    }
    rows.store(row_number, Ordering::Relaxed);
    if !chunk.is_empty() {
        send(&mut chunk).await;
    }
    Ok(())
}

/// A row, converted (its item and where to resume after it), mapped to an item; a resume
/// position without every order column resumes by counting rows.
fn mapped(
    mapping: &Mapping,
    row: u64,
    converted: Result<(Item, Position), String>,
    order_columns: usize,
) -> Mapped {
    let (fields, position) = match converted {
        Ok((item, position)) => (Ok(Fields::Values(item)), position),
        Err(e) => (Err(e), Position::Rows),
    };
    let next = match position {
        Position::After(values) if values.len() == order_columns => Position::After(values),
        _ => Position::Rows,
    };
    crate::map(
        mapping,
        crate::source::Record {
            row,
            line: row,
            fields,
            next,
            lines: row,
        },
    )
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) => {
            let credentials = &rest[..at - scheme.len() - 3];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{}", &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

fn number_text(text: String, column: &str) -> Result<Value, String> {
    crate::value::number(&text)
        .map(Value::N)
        .map_err(|e| format!("column {column}: {e}"))
}

fn float(value: f64, column: &str) -> Result<Value, String> {
    if value.is_finite() {
        Ok(Value::N(value.to_string()))
    } else {
        Err(format!(
            "column {column}: {value} is not a number DynamoDB stores"
        ))
    }
}

/// Dates and times as ISO 8601 text (a time zone only where the column has one).
fn date(value: chrono::NaiveDate) -> Value {
    Value::S(value.to_string())
}

fn datetime(value: chrono::NaiveDateTime) -> Value {
    Value::S(value.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
}

fn timestamp(value: chrono::DateTime<chrono::Utc>) -> Value {
    Value::S(value.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// A row's order values: each order column's type and text.
fn order_values(item: &Item, types: &[(String, String)], order: &[String]) -> Position {
    let mut values = Vec::with_capacity(order.len());
    for column in order {
        let Some((_, value)) = item.iter().find(|(n, _)| n == column) else {
            return Position::Rows;
        };
        let Some(text) = value.as_text() else {
            return Position::Rows;
        };
        let type_name = types
            .iter()
            .find(|(n, _)| n == column)
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        values.push((type_name, text.to_string()));
    }
    Position::After(values)
}

fn postgres_row(row: &sqlx::postgres::PgRow, order: &[String]) -> Result<(Item, Position), String> {
    let mut item = Vec::with_capacity(row.len());
    let mut types = Vec::new();
    for (i, column) in row.columns().iter().enumerate() {
        let name = column.name();
        let type_name = column.type_info().name().to_string();
        let raw = row
            .try_get_raw(i)
            .map_err(|e| format!("column {name}: {e}"))?;
        if order.iter().any(|c| c == name) {
            types.push((name.to_string(), type_name.clone()));
        }
        if raw.is_null() {
            item.push((name.to_string(), Value::Null));
            continue;
        }
        let get_error = |e: sqlx::Error| format!("column {name} ({type_name}): {e}");
        let value = match type_name.as_str() {
            "BOOL" => Value::Bool(row.try_get(i).map_err(get_error)?),
            "INT2" => Value::N(row.try_get::<i16, _>(i).map_err(get_error)?.to_string()),
            "INT4" => Value::N(row.try_get::<i32, _>(i).map_err(get_error)?.to_string()),
            "INT8" => Value::N(row.try_get::<i64, _>(i).map_err(get_error)?.to_string()),
            "FLOAT4" => float(
                f64::from(row.try_get::<f32, _>(i).map_err(get_error)?),
                name,
            )?,
            "FLOAT8" => float(row.try_get::<f64, _>(i).map_err(get_error)?, name)?,
            "NUMERIC" => number_text(
                row.try_get::<bigdecimal::BigDecimal, _>(i)
                    .map_err(get_error)?
                    .to_plain_string(),
                name,
            )?,
            "BYTEA" => Value::B(row.try_get::<Vec<u8>, _>(i).map_err(get_error)?),
            "JSON" | "JSONB" => {
                crate::source::from_json(row.try_get::<serde_json::Value, _>(i).map_err(get_error)?)
            }
            "UUID" => Value::S(
                row.try_get::<uuid::Uuid, _>(i)
                    .map_err(get_error)?
                    .to_string(),
            ),
            "DATE" => date(row.try_get(i).map_err(get_error)?),
            "TIMESTAMP" => datetime(row.try_get(i).map_err(get_error)?),
            "TIMESTAMPTZ" => timestamp(row.try_get(i).map_err(get_error)?),
            "TIME" => Value::S(
                row.try_get::<chrono::NaiveTime, _>(i)
                    .map_err(get_error)?
                    .to_string(),
            ),
            _ => match row.try_get::<String, _>(i) {
                // TEXT, VARCHAR, CHAR, NAME, CITEXT and the like.
                Ok(text) => Value::S(text),
                Err(_) => {
                    return Err(format!(
                        "column {name}: type {type_name} is not mapped; cast it in the query (e.g. {name}::text)"
                    ));
                }
            },
        };
        item.push((name.to_string(), value));
    }
    let position = order_values(&item, &types, order);
    Ok((item, position))
}

fn mysql_row(row: &sqlx::mysql::MySqlRow, order: &[String]) -> Result<(Item, Position), String> {
    let mut item = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let name = column.name();
        let type_name = column.type_info().name().to_string();
        let raw = row
            .try_get_raw(i)
            .map_err(|e| format!("column {name}: {e}"))?;
        if raw.is_null() {
            item.push((name.to_string(), Value::Null));
            continue;
        }
        let get_error = |e: sqlx::Error| format!("column {name} ({type_name}): {e}");
        let value = match type_name.as_str() {
            "BOOLEAN" => Value::Bool(row.try_get::<bool, _>(i).map_err(get_error)?),
            "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" => {
                Value::N(row.try_get::<i64, _>(i).map_err(get_error)?.to_string())
            }
            "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "INT UNSIGNED" | "MEDIUMINT UNSIGNED"
            | "BIGINT UNSIGNED" | "YEAR" => {
                Value::N(row.try_get::<u64, _>(i).map_err(get_error)?.to_string())
            }
            "FLOAT" => float(
                f64::from(row.try_get::<f32, _>(i).map_err(get_error)?),
                name,
            )?,
            "DOUBLE" => float(row.try_get::<f64, _>(i).map_err(get_error)?, name)?,
            // DECIMAL travels as text in both protocols: read it as is, every digit kept.
            "DECIMAL" => number_text(
                row.try_get_unchecked::<String, _>(i).map_err(get_error)?,
                name,
            )?,
            // A text column with a binary collation (`utf8mb4_bin`, MariaDB's JSON) is flagged
            // binary too: the collation tells text from bytes.
            "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB"
                if <String as sqlx::Type<sqlx::MySql>>::compatible(column.type_info()) =>
            {
                Value::S(row.try_get_unchecked::<String, _>(i).map_err(get_error)?)
            }
            "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" | "BIT" => {
                Value::B(row.try_get_unchecked::<Vec<u8>, _>(i).map_err(get_error)?)
            }
            "JSON" => {
                crate::source::from_json(row.try_get::<serde_json::Value, _>(i).map_err(get_error)?)
            }
            "DATE" => date(row.try_get(i).map_err(get_error)?),
            "DATETIME" => datetime(row.try_get(i).map_err(get_error)?),
            "TIMESTAMP" => timestamp(row.try_get(i).map_err(get_error)?),
            // CHAR, VARCHAR, the TEXTs, ENUM, SET, TIME: their text.
            _ => Value::S(row.try_get_unchecked::<String, _>(i).map_err(get_error)?),
        };
        item.push((name.to_string(), value));
    }
    // MySQL compares a bound text with the column's type itself: no type names needed.
    let types: Vec<(String, String)> = Vec::new();
    let position = order_values(&item, &types, order);
    Ok((item, position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_wrapped_in_a_stable_order() {
        assert_eq!(
            statement(
                Dialect::Postgres,
                "SELECT * FROM users;",
                &["id".into()],
                None
            ),
            r#"SELECT * FROM (SELECT * FROM users) AS deployer_source ORDER BY "id""#
        );
        let after = [
            ("INT4".to_string(), "7".to_string()),
            ("TEXT".to_string(), "x".to_string()),
        ];
        assert_eq!(
            statement(
                Dialect::Postgres,
                "SELECT 1",
                &["a".into(), "b\"c".into()],
                Some(&after)
            ),
            r#"SELECT * FROM (SELECT 1) AS deployer_source WHERE ("a", "b""c") > (CAST($1 AS INT4), CAST($2 AS TEXT)) ORDER BY "a", "b""c""#
        );
        assert_eq!(
            statement(Dialect::MySql, "SELECT 1", &["a".into()], Some(&after[..1])),
            "SELECT * FROM (SELECT 1) AS deployer_source WHERE (`a`) > (?) ORDER BY `a`"
        );
    }

    #[test]
    fn urls_are_told_apart_and_redacted() {
        assert_eq!(Dialect::of("postgres://u:p@h/db"), Some(Dialect::Postgres));
        assert_eq!(Dialect::of("mariadb://h/db"), Some(Dialect::MySql));
        assert_eq!(Dialect::of("sqlite://x"), None);
        assert_eq!(
            redact("mysql://root:secret@127.0.0.1:3306/app"),
            "mysql://root@127.0.0.1:3306/app"
        );
        assert_eq!(redact("postgres://localhost/db"), "postgres://localhost/db");
    }
}
