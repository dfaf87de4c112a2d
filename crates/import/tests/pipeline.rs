//! The pipeline against a scripted sink: throttling, unprocessed items, an invalid item, a
//! transient failure, duplicate keys, an interrupt and its resume, the error budget.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deployer_import::checkpoint::Mark;
use deployer_import::pipeline::{self, Ending, Event, Mapped, Options, Sink, WriteError};
use deployer_import::source::Position;
use deployer_import::value::{Item, Value};

/// A table in memory: key → (puts, last item), and a script of faults by request number.
#[derive(Default)]
struct Table {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    requests: u64,
    items: BTreeMap<String, (u64, Item)>,
    /// Requests (1-based) answered with this error.
    fail: BTreeMap<u64, WriteError>,
    /// Requests whose last item is left unprocessed.
    leave_last: Vec<u64>,
    /// Keys refused as invalid.
    invalid: Vec<String>,
}

fn key(item: &Item) -> String {
    item.iter()
        .find(|(n, _)| n == "pk")
        .and_then(|(_, v)| v.as_text())
        .unwrap()
        .to_string()
}

impl Sink for Table {
    async fn write_batch(&self, items: &[Item]) -> Result<Vec<usize>, WriteError> {
        let mut s = self.state.lock().unwrap();
        s.requests += 1;
        let n = s.requests;
        if let Some(e) = s.fail.remove(&n) {
            return Err(e);
        }
        let mut keys: Vec<String> = items.iter().map(key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), items.len(), "a batch holds a key twice");
        if items.iter().any(|i| s.invalid.contains(&key(i))) {
            return Err(WriteError::Invalid("ValidationException: bad item".into()));
        }
        let leave = s.leave_last.contains(&n);
        let mut unprocessed = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if leave && i + 1 == items.len() {
                unprocessed.push(i);
                continue;
            }
            let entry = s.items.entry(key(item)).or_insert((0, Vec::new()));
            entry.0 += 1;
            entry.1 = item.clone();
        }
        Ok(unprocessed)
    }

    async fn put(&self, item: &Item) -> Result<(), WriteError> {
        let mut s = self.state.lock().unwrap();
        s.requests += 1;
        if s.invalid.contains(&key(item)) {
            return Err(WriteError::Invalid("ValidationException: bad item".into()));
        }
        let entry = s.items.entry(key(item)).or_insert((0, Vec::new()));
        entry.0 += 1;
        entry.1 = item.clone();
        Ok(())
    }
}

/// Rows 1..=n with keys k1..kn (or the keys given), each its own mark.
fn rows(keys: &[String], first_row: u64) -> Vec<Mapped> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let row = first_row + i as u64;
            let item = if k.is_empty() {
                Err("no value for the key attribute pk".to_string())
            } else {
                Ok((
                    vec![
                        ("pk".to_string(), Value::S(k.clone())),
                        ("row".to_string(), Value::N(row.to_string())),
                    ],
                    format!("pk={k}"),
                    1,
                ))
            };
            Mapped {
                row,
                line: row + 1,
                mark: Mark {
                    rows: row,
                    lines: row + 1,
                    position: Position::Byte(row * 10),
                },
                item,
            }
        })
        .collect()
}

fn keys(range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    range.map(|i| format!("k{i}")).collect()
}

fn options() -> Options {
    Options {
        concurrency: 4,
        max_errors: 0,
        max_wcu: None,
        progress_every: Duration::from_millis(50),
        sample: 0,
    }
}

async fn import(
    table: Arc<Table>,
    records: Vec<Mapped>,
    options: Options,
    stop_after: Option<Duration>,
) -> (Ending, pipeline::Progress, Vec<Event>) {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let feeder = tokio::spawn(async move {
        for chunk in records.chunks(10) {
            let chunk: Vec<Mapped> = chunk.to_vec();
            if sender.send(chunk).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
    });
    let stop = async move {
        match stop_after {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    let mut events = Vec::new();
    let outcome = pipeline::run(table, receiver, options, stop, |e| events.push(e)).await;
    let (ending, progress) = (outcome.ending, outcome.progress);
    feeder.abort();
    (ending, progress, events)
}

fn last_checkpoint(events: &[Event]) -> Option<Mark> {
    events.iter().rev().find_map(|e| match e {
        Event::Checkpoint { mark, .. } => Some(mark.clone()),
        _ => None,
    })
}

#[tokio::test]
async fn every_row_is_written_once_through_throttles_unprocessed_items_and_a_5xx() {
    let table = Arc::new(Table::default());
    {
        let mut s = table.state.lock().unwrap();
        s.fail.insert(
            2,
            WriteError::Throttled("ProvisionedThroughputExceededException".into()),
        );
        s.fail
            .insert(5, WriteError::Transient("InternalServerError".into()));
        s.leave_last = vec![3, 4, 7];
    }
    let (ending, progress, events) =
        import(table.clone(), rows(&keys(1..=260), 1), options(), None).await;
    assert_eq!(ending, Ending::Complete);
    let s = table.state.lock().unwrap();
    assert_eq!(s.items.len(), 260);
    assert!(
        s.items.values().all(|(puts, _)| *puts == 1),
        "an item was written twice"
    );
    assert_eq!(progress.written, 260);
    assert_eq!(progress.read, 260);
    assert!(progress.throttles >= 4, "{progress:?}");
    assert!(progress.retries >= 5, "{progress:?}");
    assert_eq!(last_checkpoint(&events).unwrap().rows, 260);
}

#[tokio::test]
async fn an_invalid_item_is_found_by_putting_its_batch_one_by_one() {
    let table = Arc::new(Table::default());
    table.state.lock().unwrap().invalid = vec!["k7".into()];
    let opts = Options {
        max_errors: 5,
        ..options()
    };
    let (ending, progress, events) =
        import(table.clone(), rows(&keys(1..=30), 1), opts, None).await;
    assert_eq!(ending, Ending::Complete);
    assert_eq!(progress.rejected, 1);
    assert_eq!(progress.written, 29);
    let rejected: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Rejected { row, line, reason } => Some((*row, *line, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        [(
            7,
            8,
            "DynamoDB refused it: ValidationException: bad item".to_string()
        )]
    );
    assert_eq!(table.state.lock().unwrap().items.len(), 29);
}

#[tokio::test]
async fn the_first_rejected_row_stops_the_import_by_default() {
    let table = Arc::new(Table::default());
    let mut names = keys(1..=100);
    names[49] = String::new();
    let (ending, progress, events) = import(table.clone(), rows(&names, 1), options(), None).await;
    assert_eq!(ending, Ending::TooManyErrors);
    assert_eq!(progress.rejected, 1);
    // The checkpoint never passes the rejected row's batch unless it finished.
    let mark = last_checkpoint(&events).map_or(0, |m| m.rows);
    assert!(mark <= 50, "{mark}");
    let written = table.state.lock().unwrap().items.len() as u64;
    assert!(
        written >= mark.saturating_sub(1),
        "{written} written, checkpoint at {mark}"
    );
}

#[tokio::test]
async fn a_key_seen_again_is_reported_and_the_later_row_wins() {
    let table = Arc::new(Table::default());
    // k3 twice in one batch; k1 again much later (another batch, maybe still in flight).
    let mut names = keys(1..=60);
    names[5] = "k3".into();
    names[55] = "k1".into();
    let (ending, progress, events) = import(table.clone(), rows(&names, 1), options(), None).await;
    assert_eq!(ending, Ending::Complete);
    assert_eq!(progress.duplicates, 2);
    let duplicates: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Duplicate { row, key, .. } => Some((*row, key.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        duplicates,
        [(6, "pk=k3".to_string()), (56, "pk=k1".to_string())]
    );
    let s = table.state.lock().unwrap();
    assert_eq!(
        s.items["k3"].1[1].1,
        Value::N("6".into()),
        "the later row wins within a batch"
    );
    assert_eq!(
        s.items["k1"].1[1].1,
        Value::N("56".into()),
        "the later row wins across batches"
    );
}

#[tokio::test]
async fn an_interrupted_import_resumes_from_its_checkpoint_without_gaps() {
    let table = Arc::new(Table::default());
    let all = keys(1..=2000);
    // Slow writes, so the stop comes mid-import.
    struct Slow(Arc<Table>);
    impl Sink for Slow {
        async fn write_batch(&self, items: &[Item]) -> Result<Vec<usize>, WriteError> {
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.0.write_batch(items).await
        }
        async fn put(&self, item: &Item) -> Result<(), WriteError> {
            self.0.put(item).await
        }
    }
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let records = rows(&all, 1);
    let feeder = tokio::spawn(async move {
        for chunk in records.chunks(10) {
            let chunk: Vec<Mapped> = chunk.to_vec();
            if sender.send(chunk).await.is_err() {
                return;
            }
        }
    });
    let mut events = Vec::new();
    let (ending, _) = {
        let outcome = pipeline::run(
            Arc::new(Slow(table.clone())),
            receiver,
            options(),
            tokio::time::sleep(Duration::from_millis(60)),
            |e| events.push(e),
        )
        .await;
        (outcome.ending, outcome.progress)
    };
    feeder.abort();
    assert_eq!(ending, Ending::Interrupted);
    let mark = last_checkpoint(&events).expect("a checkpoint before the interrupt");
    assert!(mark.rows > 0 && mark.rows < 2000, "{}", mark.rows);
    {
        let s = table.state.lock().unwrap();
        for i in 1..=mark.rows {
            assert!(
                s.items.contains_key(&format!("k{i}")),
                "row {i} is before the checkpoint but was not written"
            );
        }
    }
    // Resume: the rows after the mark.
    let rest = rows(&all[mark.rows as usize..], mark.rows + 1);
    let (ending, _, _) = import(table.clone(), rest, options(), None).await;
    assert_eq!(ending, Ending::Complete);
    let s = table.state.lock().unwrap();
    assert_eq!(s.items.len(), 2000, "every row present");
    let rewritten = s.items.values().filter(|(puts, _)| *puts > 1).count();
    assert!(
        rewritten <= 4 * 25,
        "only what was in flight at the stop is written again ({rewritten})"
    );
}

#[tokio::test]
async fn a_throttling_table_is_paced_below_what_it_accepts() {
    // 100 write units a second, one second of burst; 600 items of 1 unit.
    struct Bucket {
        table: Table,
        tokens: Mutex<(f64, tokio::time::Instant)>,
    }
    impl Sink for Bucket {
        async fn write_batch(&self, items: &[Item]) -> Result<Vec<usize>, WriteError> {
            let fits = {
                let mut t = self.tokens.lock().unwrap();
                let now = tokio::time::Instant::now();
                t.0 = (t.0 + now.duration_since(t.1).as_secs_f64() * 100.0).min(100.0);
                t.1 = now;
                let fits = (t.0.floor() as usize).min(items.len());
                t.0 -= fits as f64;
                fits
            };
            if fits == 0 {
                return Err(WriteError::Throttled(
                    "ProvisionedThroughputExceededException".into(),
                ));
            }
            self.table.write_batch(&items[..fits]).await?;
            Ok((fits..items.len()).collect())
        }
        async fn put(&self, item: &Item) -> Result<(), WriteError> {
            self.table.put(item).await
        }
    }
    let bucket = Arc::new(Bucket {
        table: Table::default(),
        tokens: Mutex::new((100.0, tokio::time::Instant::now())),
    });
    let (sender, receiver) = tokio::sync::mpsc::channel(100);
    for chunk in rows(&keys(1..=600), 1).chunks(25) {
        let chunk: Vec<Mapped> = chunk.to_vec();
        sender.send(chunk).await.unwrap();
    }
    drop(sender);
    let started = tokio::time::Instant::now();
    let outcome = pipeline::run(
        bucket.clone(),
        receiver,
        options(),
        std::future::pending(),
        |_| {},
    )
    .await;
    let (ending, progress) = (outcome.ending, outcome.progress);
    assert_eq!(ending, Ending::Complete);
    assert_eq!(bucket.table.state.lock().unwrap().items.len(), 600);
    assert!(progress.limit.is_some(), "the first throttle sets a limit");
    // 600 units at 100 a second after a burst of 100: about 5 s; far longer means over-braking.
    let took = started.elapsed().as_secs_f64();
    assert!(took < 8.0, "{took} s");
}

#[tokio::test]
async fn the_sample_holds_what_the_table_holds() {
    let table = Arc::new(Table::default());
    let mut names = keys(1..=300);
    names[299] = "k1".into(); // k1 written again last: its sampled version must be the later one
    let opts = Options {
        sample: 300,
        ..options()
    };
    let (sender, receiver) = tokio::sync::mpsc::channel(100);
    for chunk in rows(&names, 1).chunks(25) {
        let chunk: Vec<Mapped> = chunk.to_vec();
        sender.send(chunk).await.unwrap();
    }
    drop(sender);
    let outcome = pipeline::run(
        table.clone(),
        receiver,
        opts,
        std::future::pending(),
        |_| {},
    )
    .await;
    assert_eq!(outcome.sample.len(), 299, "one per key");
    {
        let s = table.state.lock().unwrap();
        for item in &outcome.sample {
            assert_eq!(
                &s.items[&key(item)].1,
                item,
                "the sample differs from the table"
            );
        }
    }
    let small = Options {
        sample: 10,
        ..options()
    };
    let (sender, receiver) = tokio::sync::mpsc::channel(100);
    sender.send(rows(&keys(1..=100), 1)).await.unwrap();
    drop(sender);
    let outcome = pipeline::run(
        Arc::new(Table::default()),
        receiver,
        small,
        std::future::pending(),
        |_| {},
    )
    .await;
    assert_eq!(outcome.sample.len(), 10);
}
