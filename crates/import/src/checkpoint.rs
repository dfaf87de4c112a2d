//! Where an import can resume: batches finish out of order, so the checkpoint is the end of the
//! longest run of finished batches from the start (the watermark), written atomically.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::source::Position;

/// The end of a batch: the last record it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// Records read through it.
    pub rows: u64,
    /// Lines read through it.
    pub lines: u64,
    /// Where reading continues after it.
    pub position: Position,
}

/// Batches numbered 0, 1, 2… finish in any order; the watermark is the mark of the last batch
/// before which every batch has finished.
#[derive(Debug, Default)]
pub struct Watermark {
    next: u64,
    finished: BTreeMap<u64, (Mark, u64, u64)>,
    mark: Option<Mark>,
    written: u64,
    rejected: u64,
}

impl Watermark {
    /// Batch `number` finished at `mark`, having written and rejected that many rows; returns
    /// whether the watermark moved.
    pub fn finished(&mut self, number: u64, mark: Mark, written: u64, rejected: u64) -> bool {
        self.finished.insert(number, (mark, written, rejected));
        let mut moved = false;
        while let Some((mark, written, rejected)) = self.finished.remove(&self.next) {
            self.mark = Some(mark);
            self.written += written;
            self.rejected += rejected;
            self.next += 1;
            moved = true;
        }
        moved
    }

    /// Items written before the watermark.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Rows rejected before the watermark.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// The watermark's mark, once any batch from the first on has finished.
    pub fn mark(&self) -> Option<&Mark> {
        self.mark.as_ref()
    }

    /// Batches before the watermark.
    pub fn batches_done(&self) -> u64 {
        self.next
    }
}

/// The checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The physical table written to.
    pub table: String,
    /// What was read: the file's path and size, or the query.
    pub source: String,
    /// Where to continue.
    pub mark: Mark,
    /// Items written before the mark.
    pub written: u64,
    /// Rows rejected before the mark.
    pub rejected: u64,
}

impl Checkpoint {
    /// Reads `path`; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, CheckpointError> {
        let path_buf = || path.to_path_buf();
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|source| {
                CheckpointError::NotACheckpoint {
                    path: path_buf(),
                    source,
                }
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CheckpointError::Read {
                path: path_buf(),
                source,
            }),
        }
    }

    /// Writes it to `path` atomically (a crash leaves the old one or the new one).
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let temporary = path.with_extension("tmp");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let text = serde_json::to_vec_pretty(self).expect("a checkpoint serializes");
        std::fs::write(&temporary, text)
            .and_then(|()| std::fs::rename(&temporary, path))
            .map_err(|source| CheckpointError::Write {
                path: path.to_path_buf(),
                source,
            })
    }
}

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a checkpoint.
    #[error("{} is not a checkpoint", .path.display())]
    NotACheckpoint {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The file (or its directory) could not be written.
    #[error("cannot write the checkpoint {}", .path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(rows: u64) -> Mark {
        Mark {
            rows,
            lines: rows + 1,
            position: Position::Byte(rows * 10),
        }
    }

    #[test]
    fn the_watermark_waits_for_every_earlier_batch() {
        let mut watermark = Watermark::default();
        assert!(!watermark.finished(1, mark(50), 25, 0));
        assert!(!watermark.finished(2, mark(75), 24, 1));
        assert_eq!(watermark.mark(), None);
        assert!(watermark.finished(0, mark(25), 25, 0));
        assert_eq!(watermark.mark(), Some(&mark(75)));
        assert_eq!((watermark.written(), watermark.rejected()), (74, 1));
        assert_eq!(watermark.batches_done(), 3);
        assert!(!watermark.finished(4, mark(125), 25, 0));
        assert_eq!(watermark.mark(), Some(&mark(75)));
        assert_eq!(watermark.written(), 74);
    }

    #[test]
    fn saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/checkpoint.json");
        assert_eq!(Checkpoint::load(&path).unwrap(), None);
        let checkpoint = Checkpoint {
            table: "t".into(),
            source: "a.csv (10 bytes)".into(),
            mark: mark(3),
            written: 2,
            rejected: 1,
        };
        checkpoint.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), Some(checkpoint));
    }
}
