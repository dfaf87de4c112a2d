//! The import: mapped records in, batches of 25 out, many in flight, paced by [`Rate`],
//! retried until written or rejected, the watermark reported as checkpoints.

use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::checkpoint::{Mark, Watermark};
use crate::rate::Rate;
use crate::value::Item;

/// Items in one BatchWriteItem: DynamoDB's limit.
pub const BATCH: usize = 25;
/// Attempts at a batch that fails for a reason other than throttling (5xx, timeouts).
const ATTEMPTS: u32 = 10;

/// Why a write failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The table pushed back (ProvisionedThroughputExceeded, ThrottlingException,
    /// RequestLimitExceeded): retried, and the rate drops.
    #[error("throttled: {0}")]
    Throttled(String),
    /// Worth another try: a 5xx, a timeout, a dropped connection.
    #[error("{0}")]
    Transient(String),
    /// DynamoDB refused the request as invalid: some item of it is; each is then put alone to
    /// find which.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Nothing will work: no table, no permission, no credentials. The import stops.
    #[error("{0}")]
    Fatal(String),
}

/// Where items go: DynamoDB, or a test's stand-in.
pub trait Sink: Send + Sync + 'static {
    /// BatchWriteItem of `items` (at most 25, distinct keys): the indices of those DynamoDB
    /// left unprocessed.
    fn write_batch(
        &self,
        items: &[Item],
    ) -> impl Future<Output = Result<Vec<usize>, WriteError>> + Send;
    /// PutItem of one item.
    fn put(&self, item: &Item) -> impl Future<Output = Result<(), WriteError>> + Send;
}

/// A record, mapped: where it was, and its item or why it has none.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// Its row number.
    pub row: u64,
    /// Its line.
    pub line: u64,
    /// Where reading continues after it.
    pub mark: Mark,
    /// The item with its key as text and its write units, or why it was rejected.
    pub item: Result<(Item, String, u64), String>,
}

/// How to write.
#[derive(Debug, Clone)]
pub struct Options {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Rejected rows tolerated (0: stop at the first).
    pub max_errors: u64,
    /// Write units a second at most (the table's provisioned capacity, `--max-wcu`).
    pub max_wcu: Option<f64>,
    /// How often a `Progress` event comes.
    pub progress_every: Duration,
    /// Written items to keep, chosen uniformly at random, for `--verify` to read back.
    pub sample: usize,
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Records read (each row once, rejected or not).
    pub read: u64,
    /// Items DynamoDB acknowledged.
    pub written: u64,
    /// Write units of those items.
    pub write_units: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Rows whose key an earlier row had (the later one wins).
    pub duplicates: u64,
    /// Requests the table pushed back (throttled, or items left unprocessed).
    pub throttles: u64,
    /// Requests sent again.
    pub retries: u64,
    /// The rate limit, write units a second (`None`: unlimited).
    pub limit: Option<f64>,
    /// Time since the start.
    pub elapsed: Duration,
}

/// What happened, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A row was not written: its row and line, why.
    Rejected {
        /// Row number.
        row: u64,
        /// Line.
        line: u64,
        /// Why.
        reason: String,
    },
    /// A row's key was an earlier row's: the later one wins.
    Duplicate {
        /// The later row.
        row: u64,
        /// Its line.
        line: u64,
        /// The key.
        key: String,
    },
    /// Every row up to `mark` is written or rejected.
    Checkpoint {
        /// Where to resume.
        mark: Mark,
        /// Items written before it.
        written: u64,
        /// Rows rejected before it.
        rejected: u64,
    },
    /// The counters, every `progress_every`.
    Progress(Progress),
}

/// What `run` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// How it ended.
    pub ending: Ending,
    /// The final counters.
    pub progress: Progress,
    /// Up to `Options::sample` written items (for a key written twice, its last version).
    pub sample: Vec<Item>,
}

/// A uniform sample of the items written (reservoir sampling); a key written again replaces
/// its sampled version, so the sample is what the table holds.
struct Sample {
    capacity: usize,
    seen: u64,
    items: Vec<(u64, Item)>,
    index: HashMap<u64, usize>,
}

impl Sample {
    fn offer(&mut self, hash: u64, item: &Item) {
        if self.capacity == 0 {
            return;
        }
        if let Some(&i) = self.index.get(&hash) {
            self.items[i].1 = item.clone();
            return;
        }
        self.seen += 1;
        let slot = if self.items.len() < self.capacity {
            self.items.push((hash, item.clone()));
            self.items.len() - 1
        } else {
            let j = fastrand::u64(0..self.seen) as usize;
            if j >= self.capacity {
                return;
            }
            self.index.remove(&self.items[j].0);
            self.items[j] = (hash, item.clone());
            j
        };
        self.index.insert(hash, slot);
    }
}

/// How the import ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Every record read, written or rejected.
    Complete,
    /// Stopped on request; the last checkpoint is where to resume.
    Interrupted,
    /// More rows rejected than `max_errors` allows.
    TooManyErrors,
    /// A write failed for good.
    Failed(String),
}

struct Batch {
    number: u64,
    items: Vec<Item>,
    /// Row and line of each item.
    rows: Vec<(u64, u64)>,
    keys: Vec<u64>,
    units: Vec<u64>,
    mark: Option<Mark>,
    written: u64,
    rejected: u64,
    attempts: u32,
    /// Holds a key an earlier batch may still be writing: sent only when nothing is in flight.
    barrier: bool,
}

impl Batch {
    fn new(number: u64) -> Self {
        Batch {
            number,
            items: Vec::with_capacity(BATCH),
            rows: Vec::with_capacity(BATCH),
            keys: Vec::with_capacity(BATCH),
            units: Vec::with_capacity(BATCH),
            mark: None,
            written: 0,
            rejected: 0,
            attempts: 0,
            barrier: false,
        }
    }

    fn units(&self) -> u64 {
        self.units.iter().sum()
    }

    /// Keeps only the items at `indices` (the unprocessed ones).
    fn keep(&mut self, indices: &[usize]) {
        fn keep<T>(v: &mut Vec<T>, indices: &[usize]) {
            let old = std::mem::take(v);
            *v = old
                .into_iter()
                .enumerate()
                .filter(|(i, _)| indices.contains(i))
                .map(|(_, x)| x)
                .collect();
        }
        keep(&mut self.items, indices);
        keep(&mut self.rows, indices);
        keep(&mut self.keys, indices);
        keep(&mut self.units, indices);
    }
}

/// What a send did: items left to retry, and items DynamoDB refused one by one.
struct Sent {
    unprocessed: Vec<usize>,
    refused: Vec<(usize, String)>,
    throttled: bool,
}

async fn send<S: Sink>(sink: Arc<S>, batch: Batch) -> (Batch, Result<Sent, WriteError>) {
    let result = match sink.write_batch(&batch.items).await {
        Ok(unprocessed) => Ok(Sent {
            throttled: !unprocessed.is_empty(),
            unprocessed,
            refused: Vec::new(),
        }),
        // One item spoils the batch, and DynamoDB does not say which: put each alone.
        Err(WriteError::Invalid(_)) => {
            let mut sent = Sent {
                unprocessed: Vec::new(),
                refused: Vec::new(),
                throttled: false,
            };
            let mut fatal = None;
            for (i, item) in batch.items.iter().enumerate() {
                match sink.put(item).await {
                    Ok(()) => {}
                    Err(WriteError::Invalid(reason)) => sent.refused.push((i, reason)),
                    Err(WriteError::Throttled(_)) => {
                        sent.throttled = true;
                        sent.unprocessed.push(i);
                    }
                    Err(WriteError::Transient(_)) => sent.unprocessed.push(i),
                    Err(WriteError::Fatal(e)) => {
                        fatal = Some(e);
                        break;
                    }
                }
            }
            match fatal {
                Some(e) => Err(WriteError::Fatal(e)),
                None => Ok(sent),
            }
        }
        Err(e) => Err(e),
    };
    (batch, result)
}

/// Hashes are already hashes: no second hashing in the sets.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeySet = HashSet<u64, BuildHasherDefault<Identity>>;

fn key_hash(key: &str) -> u64 {
    // SipHash with fixed keys: stable across runs, and collisions (which would only make a row
    // wait for earlier writes and be reported as a duplicate) are 1 in 2^64.
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

fn backoff(attempts: u32) -> Duration {
    let base = 50u64 << attempts.min(6);
    let jittered = base / 2 + fastrand::u64(0..=base);
    Duration::from_millis(jittered.min(3_000))
}

/// Runs the import: reads `records` until they end (or `stop` resolves), writes through `sink`,
/// and tells `events` what happens.
pub async fn run<S: Sink>(
    sink: Arc<S>,
    mut records: mpsc::Receiver<Vec<Mapped>>,
    options: Options,
    stop: impl Future<Output = ()>,
    mut events: impl FnMut(Event),
) -> Outcome {
    let mut run = Run::new(&options);
    let mut in_flight: JoinSet<(Batch, Result<Sent, WriteError>)> = JoinSet::new();
    let mut ticker = tokio::time::interval(options.progress_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    tokio::pin!(stop);

    loop {
        let now = Instant::now();
        run.release_due_retries(now);
        run.fill_batches(&options, &mut events);
        let timer = run.send_ready(&options, &sink, &mut in_flight, now, &mut events);

        let idle = in_flight.is_empty() && run.pending.is_empty() && run.waiting.is_empty();
        if idle && (run.ending.is_some() || (run.source_done && run.buffered.is_empty())) {
            break;
        }
        if run.ending.is_some() && in_flight.is_empty() {
            break;
        }

        let want_records = run.ending.is_none()
            && !run.source_done
            && run.buffered.is_empty()
            && run.pending.len() < options.concurrency;
        tokio::select! {
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => match joined {
                Ok((batch, result)) => run.sent(&options, batch, result, &mut events),
                Err(e) => run.ending = Some(Ending::Failed(format!("a write task failed: {e}"))),
            },
            chunk = records.recv(), if want_records => {
                match chunk {
                    Some(chunk) => run.buffered.extend(chunk),
                    None => run.source_done = true,
                }
            }
            () = sleep_until(timer), if timer.is_some() => {}
            () = &mut stop, if run.ending.is_none() => {
                run.ending = Some(Ending::Interrupted);
            }
            _ = ticker.tick() => {
                run.progress.elapsed = run.started.elapsed();
                events(Event::Progress(run.progress.clone()));
            }
        }
    }
    run.end(&mut events)
}

/// The state of a run between its wake-ups.
struct Run {
    sample: Sample,
    started: Instant,
    rate: Rate,
    progress: Progress,
    watermark: Watermark,
    /// Hashes of every key sent so far.
    seen: KeySet,
    /// Records read, not yet in a batch.
    buffered: VecDeque<Mapped>,
    /// The batch being filled.
    current: Batch,
    next_number: u64,
    /// Batches ready to send, in order.
    pending: VecDeque<Batch>,
    /// Retries waiting out their backoff, soonest first.
    delayed: BinaryHeap<std::cmp::Reverse<(Instant, u64)>>,
    waiting: HashMap<u64, Batch>,
    /// When the front batch may go, as the rate reserved it.
    front_ready: Option<(u64, Instant)>,
    source_done: bool,
    ending: Option<Ending>,
    last_checkpoint: Instant,
}

impl Run {
    fn new(options: &Options) -> Self {
        let started = Instant::now();
        let rate = Rate::new(options.max_wcu, 0.0);
        Run {
            sample: Sample {
                capacity: options.sample,
                seen: 0,
                items: Vec::new(),
                index: HashMap::new(),
            },
            started,
            progress: Progress {
                limit: rate.limit(),
                ..Progress::default()
            },
            rate,
            watermark: Watermark::default(),
            seen: KeySet::default(),
            buffered: VecDeque::new(),
            current: Batch::new(0),
            next_number: 1,
            pending: VecDeque::new(),
            delayed: BinaryHeap::new(),
            waiting: HashMap::new(),
            front_ready: None,
            source_done: false,
            ending: None,
            last_checkpoint: started,
        }
    }

    fn seconds(&self, at: Instant) -> f64 {
        at.duration_since(self.started).as_secs_f64()
    }

    /// Retries whose backoff is over go first.
    fn release_due_retries(&mut self, now: Instant) {
        while let Some(std::cmp::Reverse((at, number))) = self.delayed.peek().copied() {
            if at > now {
                break;
            }
            self.delayed.pop();
            if let Some(batch) = self.waiting.remove(&number) {
                self.pending.push_front(batch);
            }
        }
    }

    /// The batch being filled goes to `pending`; a new one is started.
    fn close_batch(&mut self) {
        let next = Batch::new(self.next_number);
        self.pending
            .push_back(std::mem::replace(&mut self.current, next));
        self.next_number += 1;
    }

    /// Fills batches from what was read, while there is room to send them.
    fn fill_batches(&mut self, options: &Options, events: &mut impl FnMut(Event)) {
        while self.ending.is_none() && self.pending.len() < options.concurrency {
            let Some(record) = self.buffered.pop_front() else {
                if self.source_done && self.current.mark.is_some() {
                    self.close_batch();
                }
                break;
            };
            self.progress.read += 1;
            self.current.mark = Some(record.mark);
            match record.item {
                Err(reason) => {
                    self.progress.rejected += 1;
                    self.current.rejected += 1;
                    events(Event::Rejected {
                        row: record.row,
                        line: record.line,
                        reason,
                    });
                    if self.progress.rejected > options.max_errors {
                        self.ending = Some(Ending::TooManyErrors);
                    }
                }
                Ok((item, key, units)) => {
                    self.add(item, key, units, (record.row, record.line), events)
                }
            }
            if self.current.items.len() == BATCH {
                self.close_batch();
            }
        }
    }

    /// Adds an item to the batch being filled.
    fn add(
        &mut self,
        item: Item,
        key: String,
        units: u64,
        (row, line): (u64, u64),
        events: &mut impl FnMut(Event),
    ) {
        let hash = key_hash(&key);
        let current = &mut self.current;
        if let Some(i) = current.keys.iter().position(|k| *k == hash) {
            // The same key twice in one batch: DynamoDB refuses that; the later row replaces
            // the earlier, which is superseded, neither written nor rejected.
            self.progress.duplicates += 1;
            events(Event::Duplicate { row, line, key });
            current.items[i] = item;
            current.rows[i] = (row, line);
            current.units[i] = units;
            return;
        }
        if !self.seen.insert(hash) {
            self.progress.duplicates += 1;
            events(Event::Duplicate { row, line, key });
            // An earlier batch may still be writing this key: this one waits.
            current.barrier = true;
        }
        current.items.push(item);
        current.rows.push((row, line));
        current.keys.push(hash);
        current.units.push(units);
    }

    /// Sends what the rate and the concurrency allow; returns when to wake up for the next.
    fn send_ready<S: Sink>(
        &mut self,
        options: &Options,
        sink: &Arc<S>,
        in_flight: &mut JoinSet<(Batch, Result<Sent, WriteError>)>,
        now: Instant,
        events: &mut impl FnMut(Event),
    ) -> Option<Instant> {
        let mut timer: Option<Instant> = self.delayed.peek().map(|r| r.0.0);
        if self.ending.is_some() {
            return timer;
        }
        while in_flight.len() < options.concurrency {
            let Some(front) = self.pending.front() else {
                break;
            };
            if front.barrier && (!in_flight.is_empty() || !self.waiting.is_empty()) {
                break;
            }
            if front.items.is_empty() {
                // Rejects only: finished without a request.
                let batch = self.pending.pop_front().expect("a front");
                finish(
                    &mut self.watermark,
                    batch,
                    events,
                    &mut self.last_checkpoint,
                );
                continue;
            }
            let ready = match self.front_ready {
                Some((number, at)) if number == front.number => at,
                _ => {
                    let (number, units) = (front.number, front.units());
                    let wait = self.rate.reserve(units, self.seconds(now));
                    let at = now + Duration::from_secs_f64(wait);
                    self.front_ready = Some((number, at));
                    at
                }
            };
            if ready > now {
                timer = Some(timer.map_or(ready, |t| t.min(ready)));
                break;
            }
            self.front_ready = None;
            let mut batch = self.pending.pop_front().expect("a front");
            batch.barrier = false;
            if batch.attempts > 0 {
                self.progress.retries += 1;
            }
            batch.attempts += 1;
            in_flight.spawn(send(sink.clone(), batch));
        }
        timer
    }

    /// A send came back: count what was written, report what was refused, retry the rest.
    fn sent(
        &mut self,
        options: &Options,
        batch: Batch,
        result: Result<Sent, WriteError>,
        events: &mut impl FnMut(Event),
    ) {
        let at = self.seconds(Instant::now());
        match result {
            Ok(sent) => self.written(options, batch, sent, at, events),
            Err(WriteError::Throttled(_)) => {
                self.progress.throttles += 1;
                self.rate.throttled(at);
                retry(batch, &mut self.delayed, &mut self.waiting);
            }
            Err(WriteError::Transient(_)) if batch.attempts < ATTEMPTS => {
                retry(batch, &mut self.delayed, &mut self.waiting);
            }
            Err(WriteError::Transient(e) | WriteError::Fatal(e) | WriteError::Invalid(e)) => {
                let (row, _) = batch.rows.first().copied().unwrap_or_default();
                self.ending = Some(Ending::Failed(format!(
                    "writing the batch from row {row} failed after {} attempts: {e}",
                    batch.attempts
                )));
            }
        }
        self.progress.limit = self.rate.limit();
    }

    /// A send DynamoDB answered: some items written, some refused, some left unprocessed.
    fn written(
        &mut self,
        options: &Options,
        mut batch: Batch,
        sent: Sent,
        at: f64,
        events: &mut impl FnMut(Event),
    ) {
        let refused: Vec<usize> = sent.refused.iter().map(|(i, _)| *i).collect();
        for (i, reason) in sent.refused {
            let (row, line) = batch.rows[i];
            self.progress.rejected += 1;
            batch.rejected += 1;
            events(Event::Rejected {
                row,
                line,
                reason: format!("DynamoDB refused it: {reason}"),
            });
        }
        if self.progress.rejected > options.max_errors {
            self.ending = Some(Ending::TooManyErrors);
        }
        let done: Vec<usize> = (0..batch.items.len())
            .filter(|i| !sent.unprocessed.contains(i) && !refused.contains(i))
            .collect();
        for &i in &done {
            self.sample.offer(batch.keys[i], &batch.items[i]);
        }
        let units: u64 = done.iter().map(|&i| batch.units[i]).sum();
        self.progress.written += done.len() as u64;
        self.progress.write_units += units;
        batch.written += done.len() as u64;
        if units > 0 {
            self.rate.accepted(units, at);
        }
        if sent.throttled {
            self.progress.throttles += 1;
            self.rate.throttled(at);
        }
        if sent.unprocessed.is_empty() {
            finish(
                &mut self.watermark,
                batch,
                events,
                &mut self.last_checkpoint,
            );
        } else {
            batch.keep(&sent.unprocessed);
            retry(batch, &mut self.delayed, &mut self.waiting);
        }
    }

    /// The last checkpoint, whatever the ending, and the final counters.
    fn end(mut self, events: &mut impl FnMut(Event)) -> Outcome {
        if let Some(mark) = self.watermark.mark() {
            events(Event::Checkpoint {
                mark: mark.clone(),
                written: self.watermark.written(),
                rejected: self.watermark.rejected(),
            });
        }
        self.progress.elapsed = self.started.elapsed();
        self.progress.limit = self.rate.limit();
        events(Event::Progress(self.progress.clone()));
        Outcome {
            ending: self.ending.unwrap_or(Ending::Complete),
            progress: self.progress,
            sample: self
                .sample
                .items
                .into_iter()
                .map(|(_, item)| item)
                .collect(),
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn retry(
    batch: Batch,
    delayed: &mut BinaryHeap<std::cmp::Reverse<(Instant, u64)>>,
    waiting: &mut HashMap<u64, Batch>,
) {
    let at = Instant::now() + backoff(batch.attempts);
    delayed.push(std::cmp::Reverse((at, batch.number)));
    waiting.insert(batch.number, batch);
}

fn finish(
    watermark: &mut Watermark,
    batch: Batch,
    events: &mut impl FnMut(Event),
    last_checkpoint: &mut Instant,
) {
    let Some(mark) = batch.mark else { return };
    if watermark.finished(batch.number, mark, batch.written, batch.rejected)
        && last_checkpoint.elapsed() >= Duration::from_secs(1)
    {
        *last_checkpoint = Instant::now();
        events(Event::Checkpoint {
            mark: watermark.mark().cloned().expect("moved"),
            written: watermark.written(),
            rejected: watermark.rejected(),
        });
    }
}
