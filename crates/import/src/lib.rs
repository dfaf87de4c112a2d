//! `deployer table import`'s engine, without the AWS SDK: records read from a file (or a SQL
//! query, in the main crate), mapped to DynamoDB items by the table's key schema, written in
//! batches of 25 through a [`pipeline::Sink`] at an adaptive rate, with a checkpoint to resume.

pub mod checkpoint;
pub mod mapping;
pub mod pipeline;
pub mod rate;
pub mod source;
pub mod sql;
pub mod value;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use checkpoint::Mark;
use mapping::Mapping;
use pipeline::Mapped;
use source::{FileSource, Record};

/// Records sent to the writer at a time.
pub const CHUNK: usize = 256;

/// Maps a record (its item, key and write units, or why it cannot be one).
pub fn map(mapping: &Mapping, record: Record) -> Mapped {
    let mark = Mark {
        rows: record.row,
        lines: record.lines,
        position: record.next,
    };
    let item = record
        .fields
        .and_then(|fields| mapping.item(fields))
        .map(|item| {
            let key = mapping.key_text(&item);
            let units = value::write_units(value::item_size(&item));
            (item, key, units)
        });
    Mapped {
        row: record.row,
        line: record.line,
        mark,
        item,
    }
}

/// Reads `source` to its end on this (blocking) thread, maps each record and sends them on in
/// chunks; `bytes` follows how far it has read. Stops early when the receiver is gone; a read
/// error of the file itself is returned.
pub fn feed(
    mut source: FileSource,
    mapping: &Mapping,
    sender: tokio::sync::mpsc::Sender<Vec<Mapped>>,
    bytes: Arc<AtomicU64>,
) -> Result<(), String> {
    let mut chunk = Vec::with_capacity(CHUNK);
    while let Some(record) = source.read_record() {
        if record.row == 0 {
            let line = record.line;
            let reason = record.fields.err().unwrap_or_default();
            let _ = sender.blocking_send(chunk);
            return Err(format!("line {line}: {reason}"));
        }
        chunk.push(map(mapping, record));
        if chunk.len() == CHUNK {
            bytes.store(source.bytes_read(), Ordering::Relaxed);
            if sender
                .blocking_send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))
                .is_err()
            {
                return Ok(());
            }
        }
    }
    bytes.store(source.bytes_read(), Ordering::Relaxed);
    if !chunk.is_empty() {
        let _ = sender.blocking_send(chunk);
    }
    Ok(())
}
