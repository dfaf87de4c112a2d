//! Reading records from files: CSV with a header row, JSON lines, and DynamoDB's JSON export
//! format (`{"Item": {...}}` a line), plain or gzipped, or from standard input.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;

use crate::value::{Item, Value};

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row naming the columns.
    Csv,
    /// One JSON object a line: strings, numbers, booleans, null, arrays and objects.
    JsonLines,
    /// DynamoDB's JSON export format: one `{"Item": {"pk": {"S": "…"}, …}}` a line.
    DynamoDbJson,
}

impl Format {
    /// The format a file's name says (`.csv`, `.jsonl`, `.ndjson`, `.json`, each maybe `.gz`);
    /// JSON lines and DynamoDB JSON are told apart by the first line.
    pub fn from_name(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".csv") {
            Some(Format::Csv)
        } else if [".jsonl", ".ndjson", ".json"]
            .iter()
            .any(|s| name.ends_with(s))
        {
            Some(Format::JsonLines)
        } else {
            None
        }
    }
}

/// What a record holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Fields {
    /// CSV: one text per column of the header (shared).
    Text {
        /// The header row.
        columns: Arc<Vec<String>>,
        /// The cells.
        cells: Vec<String>,
    },
    /// JSON lines or SQL: typed values, mapped to DynamoDB's types (a number text may stand
    /// for a numeric key and the other way round).
    Values(Item),
    /// DynamoDB JSON: DynamoDB's own types, taken as they are.
    Item(Item),
}

/// Where reading can continue after a record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// A byte offset into an uncompressed file.
    Byte(u64),
    /// The type and text of each order column of a query's last row read.
    After(Vec<(String, String)>),
    /// Only the row count: a stream is re-read and that many records skipped.
    Rows,
}

/// One record of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based number among the source's records (a CSV header does not count).
    pub row: u64,
    /// 1-based line where it starts (for files; the row for SQL).
    pub line: u64,
    /// Its fields, or why they could not be read.
    pub fields: Result<Fields, String>,
    /// Where to continue after it.
    pub next: Position,
    /// Lines read through its end.
    pub lines: u64,
}

/// Where to start reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Start {
    /// Records already done.
    pub rows: u64,
    /// Lines already done.
    pub lines: u64,
    /// Where they end, when the source can seek.
    pub position: Option<Position>,
}

/// A file (or standard input) read record by record.
pub struct FileSource {
    reader: Reader,
    /// The uncompressed file's size, when known (for the ETA).
    pub total_bytes: Option<u64>,
    row: u64,
    seekable: bool,
}

enum Reader {
    Csv {
        reader: csv::Reader<Box<dyn ReadSeek>>,
        columns: Arc<Vec<String>>,
        record: csv::ByteRecord,
    },
    Lines {
        reader: BufReader<Box<dyn ReadSeek>>,
        dynamodb: bool,
        detected: bool,
        offset: u64,
        line: u64,
        buffer: Vec<u8>,
    },
}

/// `Read`, and `Seek` where the source is a plain file (a stream answers seeks with an error).
pub trait ReadSeek: Read + Seek + Send {}

impl<T: Read + Seek + Send> ReadSeek for T {}

struct Stream(Box<dyn Read + Send>);

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Seek for Stream {
    fn seek(&mut self, _: SeekFrom) -> std::io::Result<u64> {
        Err(std::io::Error::other("a stream cannot seek"))
    }
}

/// Where records come from: a path, or `-` for standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file (`.gz` is decompressed).
    Path(PathBuf),
    /// Standard input.
    Stdin,
}

/// Why a source could not be opened, or read up to where an import resumes.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be opened.
    #[error("cannot open {}", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Neither `--format` nor the name says what the file holds.
    #[error("cannot tell the format of {}: name it with --format csv|jsonl|dynamodb-json", .path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// A CSV file's first row could not be read.
    #[error("{}: cannot read the header row", .path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// Why.
        source: csv::Error,
    },
    /// A CSV file's first row names no column.
    #[error("{}: the header row is empty", .path.display())]
    EmptyHeader {
        /// The file.
        path: PathBuf,
    },
    /// The resume position could not be reached.
    #[error("{}: cannot seek", .path.display())]
    Seek {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The source ends before the rows a checkpoint says were done.
    #[error("{} has {found} records, fewer than the {wanted} the checkpoint says were done: is it the same source?", .path.display())]
    Shorter {
        /// The file.
        path: PathBuf,
        /// Records it has.
        found: u64,
        /// Records the checkpoint says were done.
        wanted: u64,
    },
}

/// The opened input: its bytes, its size when known, whether it can seek, its name.
struct Opened {
    raw: Box<dyn ReadSeek>,
    total_bytes: Option<u64>,
    seekable: bool,
    name: PathBuf,
}

impl Opened {
    fn of(input: &Input) -> Result<Opened, SourceError> {
        Ok(match input {
            Input::Stdin => Opened {
                raw: Box::new(Stream(Box::new(std::io::stdin()))),
                total_bytes: None,
                seekable: false,
                name: PathBuf::from("-"),
            },
            Input::Path(path) => {
                let file = File::open(path).map_err(|source| SourceError::Open {
                    path: path.clone(),
                    source,
                })?;
                if path.extension().is_some_and(|e| e == "gz") {
                    let gz = flate2::read::MultiGzDecoder::new(BufReader::new(file));
                    Opened {
                        raw: Box::new(Stream(Box::new(gz))),
                        total_bytes: None,
                        seekable: false,
                        name: path.clone(),
                    }
                } else {
                    Opened {
                        total_bytes: file.metadata().map(|m| m.len()).ok(),
                        raw: Box::new(file),
                        seekable: true,
                        name: path.clone(),
                    }
                }
            }
        })
    }
}

/// A CSV reader past the header row (and at `seek_to`, when given).
fn csv_reader(
    raw: Box<dyn ReadSeek>,
    name: &Path,
    seek_to: Option<u64>,
    start: &Start,
) -> Result<Reader, SourceError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(raw);
    let columns = reader
        .headers()
        .map_err(|source| SourceError::Header {
            path: name.to_path_buf(),
            source,
        })?
        .iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    if columns.iter().all(String::is_empty) {
        return Err(SourceError::EmptyHeader {
            path: name.to_path_buf(),
        });
    }
    if let Some(offset) = seek_to {
        let mut position = csv::Position::new();
        position
            .set_byte(offset)
            .set_line(start.lines + 1)
            .set_record(start.rows + 1);
        reader.seek(position).map_err(|e| SourceError::Seek {
            path: name.to_path_buf(),
            source: e.into(),
        })?;
    }
    Ok(Reader::Csv {
        reader,
        columns: Arc::new(columns),
        record: csv::ByteRecord::new(),
    })
}

/// A JSON-lines reader (at `seek_to`, when given).
fn lines_reader(
    mut raw: Box<dyn ReadSeek>,
    name: &Path,
    seek_to: Option<u64>,
    start: &Start,
    format: Format,
) -> Result<Reader, SourceError> {
    let (offset, line) = match seek_to {
        Some(offset) => {
            raw.seek(SeekFrom::Start(offset))
                .map_err(|e| SourceError::Seek {
                    path: name.to_path_buf(),
                    source: e.into(),
                })?;
            (offset, start.lines)
        }
        None => (0, 0),
    };
    Ok(Reader::Lines {
        reader: BufReader::with_capacity(256 * 1024, raw),
        dynamodb: format == Format::DynamoDbJson,
        detected: format == Format::DynamoDbJson,
        offset,
        line,
        buffer: Vec::new(),
    })
}

impl FileSource {
    /// Opens `input` in `format` (from the name when `None`), continuing after `start`.
    pub fn open(input: &Input, format: Option<Format>, start: &Start) -> Result<Self, SourceError> {
        let Opened {
            raw,
            total_bytes,
            seekable,
            name,
        } = Opened::of(input)?;
        let format = format
            .or_else(|| Format::from_name(&name))
            .ok_or_else(|| SourceError::UnknownFormat { path: name.clone() })?;
        let seek_to = match (&start.position, seekable) {
            (Some(Position::Byte(offset)), true) => Some(*offset),
            _ => None,
        };
        let reader = match format {
            Format::Csv => csv_reader(raw, &name, seek_to, start)?,
            Format::JsonLines | Format::DynamoDbJson => {
                lines_reader(raw, &name, seek_to, start, format)?
            }
        };
        let mut source = FileSource {
            reader,
            total_bytes,
            row: 0,
            seekable,
        };
        if seek_to.is_some() {
            source.row = start.rows;
        } else {
            source.skip_done(start.rows, &name)?;
        }
        Ok(source)
    }

    /// A stream (or a start without an offset): reads and drops what was done.
    fn skip_done(&mut self, rows: u64, name: &Path) -> Result<(), SourceError> {
        while self.row < rows {
            if self.read_record().is_none() {
                return Err(SourceError::Shorter {
                    path: name.to_path_buf(),
                    found: self.row,
                    wanted: rows,
                });
            }
        }
        Ok(())
    }

    /// Bytes read so far (of the uncompressed file).
    pub fn bytes_read(&self) -> u64 {
        match &self.reader {
            Reader::Csv { reader, .. } => reader.position().byte(),
            Reader::Lines { offset, .. } => *offset,
        }
    }

    /// The next record; `None` at the end. A read error of the file itself ends it with a
    /// record whose fields are the error and whose row is 0.
    pub fn read_record(&mut self) -> Option<Record> {
        let position = |byte| match self.seekable {
            true => Position::Byte(byte),
            false => Position::Rows,
        };
        match &mut self.reader {
            Reader::Csv {
                reader,
                columns,
                record,
            } => read_csv(reader, columns, record, &mut self.row, position),
            Reader::Lines {
                reader,
                dynamodb,
                detected,
                offset,
                line,
                buffer,
            } => loop {
                buffer.clear();
                match reader.read_until(b'\n', buffer) {
                    Ok(0) => return None,
                    Ok(n) => {
                        *offset += n as u64;
                        *line += 1;
                        let text = buffer.trim_ascii();
                        if text.is_empty() {
                            continue;
                        }
                        self.row += 1;
                        if !*detected {
                            *detected = true;
                            *dynamodb = text.starts_with(br#"{"Item""#);
                        }
                        return Some(Record {
                            row: self.row,
                            line: *line,
                            fields: parse_json_line(text, *dynamodb),
                            next: position(*offset),
                            lines: *line,
                        });
                    }
                    Err(e) => {
                        return Some(Record {
                            row: 0,
                            line: *line + 1,
                            fields: Err(format!("cannot read: {e}")),
                            next: Position::Rows,
                            lines: *line,
                        });
                    }
                }
            },
        }
    }
}

/// The next CSV record, or the CSV error that ends the file.
fn read_csv(
    reader: &mut csv::Reader<Box<dyn ReadSeek>>,
    columns: &Arc<Vec<String>>,
    record: &mut csv::ByteRecord,
    row: &mut u64,
    position: impl Fn(u64) -> Position,
) -> Option<Record> {
    match reader.read_byte_record(record) {
        Ok(false) => None,
        Ok(true) => {
            *row += 1;
            let line = record.position().map_or(0, csv::Position::line);
            let next = reader.position().byte();
            let lines = reader.position().line().saturating_sub(1);
            Some(Record {
                row: *row,
                line,
                fields: csv_fields(record, columns),
                next: position(next),
                lines,
            })
        }
        Err(e) => {
            // A CSV error names its own position; the reader cannot go on past it reliably (an
            // unclosed quote swallows the rest).
            let line = e.position().map_or(0, csv::Position::line);
            Some(Record {
                row: 0,
                line,
                fields: Err(e.to_string()),
                next: Position::Rows,
                lines: line,
            })
        }
    }
}

/// A CSV record's cells, as text, under their columns.
fn csv_fields(record: &csv::ByteRecord, columns: &Arc<Vec<String>>) -> Result<Fields, String> {
    if record.len() != columns.len() {
        return Err(format!(
            "{} fields where the header has {}",
            record.len(),
            columns.len()
        ));
    }
    record
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            String::from_utf8(cell.to_vec())
                .map_err(|_| format!("column {}: not valid UTF-8", columns[i]))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|cells| Fields::Text {
            columns: columns.clone(),
            cells,
        })
}

fn parse_json_line(text: &[u8], dynamodb: bool) -> Result<Fields, String> {
    let value: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    let serde_json::Value::Object(object) = value else {
        return Err("not a JSON object".into());
    };
    if dynamodb {
        let item = match object.get("Item") {
            Some(serde_json::Value::Object(item)) if object.len() == 1 => item,
            _ => return Err(r#"not a DynamoDB JSON line ({"Item": {...}})"#.into()),
        };
        let mut attributes = Vec::with_capacity(item.len());
        for (name, value) in item {
            attributes.push((
                name.clone(),
                from_dynamodb_json(value).map_err(|e| format!("{name}: {e}"))?,
            ));
        }
        Ok(Fields::Item(attributes))
    } else {
        Ok(Fields::Values(
            object
                .into_iter()
                .map(|(name, value)| (name, from_json(value)))
                .collect(),
        ))
    }
}

/// A plain JSON value as a DynamoDB value: strings S, numbers N (their text, exactly),
/// booleans BOOL, null NULL, arrays L, objects M.
pub fn from_json(value: serde_json::Value) -> Value {
    match value {
        serde_json::Value::String(s) => Value::S(s),
        serde_json::Value::Number(n) => Value::N(n.to_string()),
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Array(list) => Value::L(list.into_iter().map(from_json).collect()),
        serde_json::Value::Object(map) => {
            Value::M(map.into_iter().map(|(k, v)| (k, from_json(v))).collect())
        }
    }
}

/// One attribute value in DynamoDB's JSON (`{"S": "…"}`, `{"N": "12"}`, `{"B": base64}`, …).
pub fn from_dynamodb_json(value: &serde_json::Value) -> Result<Value, String> {
    let Some((kind, inner)) = value
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return Err(format!("not one typed value: {value}"));
    };
    let text = |v: &serde_json::Value| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{kind} wants a string: {v}"))
    };
    let bytes = |v: &serde_json::Value| {
        let s = v
            .as_str()
            .ok_or_else(|| format!("{kind} wants base64 text: {v}"))?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("{kind}: not base64: {e}"))
    };
    let list = |v: &serde_json::Value| {
        v.as_array()
            .cloned()
            .ok_or_else(|| format!("{kind} wants a list: {v}"))
    };
    Ok(match kind.as_str() {
        "S" => Value::S(text(inner)?),
        "N" => Value::N(crate::value::number(&text(inner)?)?),
        "B" => Value::B(bytes(inner)?),
        "BOOL" => Value::Bool(inner.as_bool().ok_or("BOOL wants true or false")?),
        "NULL" => Value::Null,
        "L" => Value::L(
            list(inner)?
                .iter()
                .map(from_dynamodb_json)
                .collect::<Result<_, _>>()?,
        ),
        "M" => Value::M(
            inner
                .as_object()
                .ok_or("M wants an object")?
                .iter()
                .map(|(k, v)| Ok((k.clone(), from_dynamodb_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        "SS" => Value::Ss(list(inner)?.iter().map(text).collect::<Result<_, _>>()?),
        "NS" => Value::Ns(
            list(inner)?
                .iter()
                .map(|v| crate::value::number(&text(v)?))
                .collect::<Result<_, _>>()?,
        ),
        "BS" => Value::Bs(list(inner)?.iter().map(bytes).collect::<Result<_, _>>()?),
        other => return Err(format!("unknown type {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(name: &str, text: &str) -> (tempfile::TempDir, Input) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        (dir, Input::Path(path))
    }

    fn all(source: &mut FileSource) -> Vec<Record> {
        std::iter::from_fn(|| source.read_record()).collect()
    }

    #[test]
    fn csv_rows_carry_their_line_and_where_to_resume() {
        let (_dir, input) = file("a.csv", "id,name\n1,\"two\nlines\"\n2,b\n3\n");
        let mut source = FileSource::open(&input, None, &Start::default()).unwrap();
        let records = all(&mut source);
        assert_eq!(records.len(), 3);
        assert_eq!((records[0].row, records[0].line), (1, 2));
        assert_eq!((records[1].row, records[1].line), (2, 4));
        assert_eq!(
            records[2].fields,
            Err("1 fields where the header has 2".into())
        );
        let Position::Byte(after_first) = records[0].next else {
            panic!()
        };
        let start = Start {
            rows: 1,
            lines: 3,
            position: Some(Position::Byte(after_first)),
        };
        let mut resumed = FileSource::open(&input, None, &start).unwrap();
        let rest = all(&mut resumed);
        assert_eq!(rest.len(), 2);
        assert_eq!((rest[0].row, rest[0].line), (2, 4));
        assert_eq!(rest[0].fields, records[1].fields);
    }

    #[test]
    fn json_lines_keep_numbers_exact_and_resume_by_offset() {
        let (_dir, input) = file(
            "a.jsonl",
            "{\"id\": 12345678901234567890123, \"f\": 0.1, \"ok\": true, \"n\": null}\n\n{\"id\": 2, \"tags\": [\"a\"], \"m\": {\"k\": 1}}\nnot json\n",
        );
        let mut source = FileSource::open(&input, None, &Start::default()).unwrap();
        let records = all(&mut source);
        assert_eq!(records.len(), 3);
        let Ok(Fields::Values(first)) = &records[0].fields else {
            panic!()
        };
        assert_eq!(
            first[0],
            ("id".into(), Value::N("12345678901234567890123".into()))
        );
        assert_eq!(first[1], ("f".into(), Value::N("0.1".into())));
        assert_eq!(first[2], ("ok".into(), Value::Bool(true)));
        assert_eq!(first[3], ("n".into(), Value::Null));
        assert_eq!((records[1].row, records[1].line), (2, 3));
        assert!(
            records[2]
                .fields
                .as_ref()
                .unwrap_err()
                .starts_with("not JSON")
        );
        let start = Start {
            rows: 2,
            lines: 3,
            position: Some(records[1].next.clone()),
        };
        let mut resumed = FileSource::open(&input, None, &start).unwrap();
        let rest = all(&mut resumed);
        assert_eq!((rest[0].row, rest[0].line), (3, 4));
    }

    #[test]
    fn dynamodb_json_is_detected_and_typed() {
        let (_dir, input) = file(
            "export.json",
            r#"{"Item":{"pk":{"S":"a"},"n":{"N":"1.50"},"b":{"B":"AAE="},"s":{"SS":["x","y"]},"l":{"L":[{"NULL":true}]}}}
{"Item":{"pk":{"S":"b"},"n":{"N":"one"}}}
"#,
        );
        let mut source = FileSource::open(&input, None, &Start::default()).unwrap();
        let records = all(&mut source);
        let Ok(Fields::Item(item)) = &records[0].fields else {
            panic!("{:?}", records[0])
        };
        assert_eq!(item[2], ("b".into(), Value::B(vec![0, 1])));
        assert_eq!(
            item[3],
            ("s".into(), Value::Ss(vec!["x".into(), "y".into()]))
        );
        assert_eq!(records[1].fields, Err("n: \"one\" is not a number".into()));
    }

    #[test]
    fn gzip_resumes_by_skipping_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv.gz");
        let mut gz = flate2::write::GzEncoder::new(
            File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(b"id\n1\n2\n3\n").unwrap();
        gz.finish().unwrap();
        let input = Input::Path(path);
        let start = Start {
            rows: 2,
            lines: 3,
            position: Some(Position::Rows),
        };
        let mut source = FileSource::open(&input, None, &start).unwrap();
        let rest = all(&mut source);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].row, 3);
        assert_eq!(rest[0].next, Position::Rows);
        let too_far = Start { rows: 9, ..start };
        assert!(
            FileSource::open(&input, None, &too_far)
                .err()
                .unwrap()
                .to_string()
                .contains("fewer than the 9")
        );
    }

    #[test]
    fn unknown_names_need_a_format() {
        let (_dir, input) = file("data.txt", "x\n");
        let error = FileSource::open(&input, None, &Start::default())
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("--format"), "{error}");
    }
}
