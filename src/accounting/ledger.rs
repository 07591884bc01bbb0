//! The ledger writer: every request's [`LedgerRow`] leaves the request path through a bounded
//! queue, and one task writes them in batches (one transaction each, with the daily and spend
//! aggregates they add to). A full queue drops the record and counts it: a response is never
//! held for the ledger. A store that is down keeps the batch in hand and retries with backoff;
//! meanwhile new records wait in the queue (until it fills).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::metrics::Governance;
use crate::store::{Batch, LedgerRow, Store};

/// Where requests hand their record; cheap to clone (clones share one queue).
#[derive(Clone)]
pub struct Ledger(Arc<Inner>);

struct Inner {
    /// Swapped out (lock-free for the writers) when the ledger is closed at shutdown.
    queue: arc_swap::ArcSwapOption<mpsc::Sender<LedgerRow>>,
    metrics: Governance,
}

/// How the writer batches and keeps.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Rows per transaction at most.
    pub batch_size: usize,
    /// Longest a row waits for more to join its batch.
    pub flush_interval: Duration,
    /// Ledger rows older than this are deleted (`None`: kept).
    pub retention: Option<Duration>,
    /// Daily and hourly aggregates older than this are deleted (`None`: kept).
    pub aggregate_retention: Option<Duration>,
}

impl Ledger {
    /// A ledger that records nothing (no store configured).
    pub fn disabled(metrics: Governance) -> Self {
        Self(Arc::new(Inner { queue: arc_swap::ArcSwapOption::empty(), metrics }))
    }

    /// A ledger writing to `store`, and the writer task to run (it ends once every clone of
    /// the ledger is dropped or [`Ledger::close`]d and the queue is drained).
    pub fn new(
        store: Arc<dyn Store>,
        capacity: usize,
        settings: WriterSettings,
        metrics: Governance,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let writer = write_loop(store, rx, settings, metrics.clone());
        let queue = arc_swap::ArcSwapOption::from_pointee(tx);
        (Self(Arc::new(Inner { queue, metrics })), writer)
    }

    /// Queues a record; drops it (counted) if the queue is full.
    pub fn record(&self, row: LedgerRow) {
        let queue = self.0.queue.load();
        let Some(queue) = queue.as_deref() else { return };
        match queue.try_send(row) {
            Ok(()) => drop(self.0.metrics.ledger_queue.inc()),
            Err(_) => drop(self.0.metrics.ledger_dropped.inc()),
        }
    }

    /// Whether records are kept (a store is configured and the ledger is not closed).
    pub fn enabled(&self) -> bool {
        self.0.queue.load().is_some()
    }

    /// Stops taking records (at shutdown): the writer drains what is queued, then ends.
    pub fn close(&self) {
        self.0.queue.store(None);
    }
}

async fn write_loop(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<LedgerRow>,
    settings: WriterSettings,
    metrics: Governance,
) {
    use mpsc::error::TryRecvError;
    let batch_size = settings.batch_size.max(1);
    let mut purged_at: Option<tokio::time::Instant> = None;
    loop {
        // The writer never waits on the queue itself: a sender then has no task to wake, so
        // queueing a record costs a request no system call. It looks every flush interval.
        tokio::time::sleep(settings.flush_interval).await;
        loop {
            let mut rows = Vec::with_capacity(batch_size);
            let closed = loop {
                match rx.try_recv() {
                    Ok(row) => {
                        rows.push(row);
                        if rows.len() == batch_size {
                            break false;
                        }
                    }
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            let (count, full) = (rows.len(), rows.len() == batch_size);
            if count > 0 {
                write_with_retry(&*store, &Batch::from_rows(rows), &metrics).await;
                metrics.ledger_queue.dec_by(count as i64);
                metrics.ledger_written.inc_by(count as u64);
            }
            if closed {
                return;
            }
            if !full {
                break;
            }
        }
        if purged_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600)) {
            purged_at = Some(tokio::time::Instant::now());
            purge(&*store, settings).await;
        }
    }
}

/// Writes a batch, retrying until the store takes it: a record is only given up when the
/// queue behind it overflows, never because the database blinked.
async fn write_with_retry(store: &dyn Store, batch: &Batch, metrics: &Governance) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match store.write_batch(batch).await {
            Ok(()) => {
                metrics.store_up.set(1);
                return;
            }
            Err(error) => {
                metrics.store_up.set(0);
                metrics.store_errors.inc();
                tracing::warn!(error = %error, rows = batch.rows.len(), retry_in_ms = backoff.as_millis() as u64, "ledger batch not written; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn purge(store: &dyn Store, settings: WriterSettings) {
    if settings.retention.is_none() && settings.aggregate_retention.is_none() {
        return;
    }
    let now = crate::accounting::period::now();
    let before = |keep: Option<Duration>| keep.map_or(i64::MIN, |keep| now - keep.as_secs() as i64);
    let rows_before_ms = before(settings.retention).saturating_mul(1000);
    match store.purge(rows_before_ms, before(settings.aggregate_retention)).await {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(deleted, "ledger rows past retention deleted"),
        Err(error) => tracing::warn!(error = %error, "ledger retention purge failed; will retry in an hour"),
    }
}
