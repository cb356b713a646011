//! Applying the work of many deliveries with one statement. A consumer runs
//! many deliveries at once; each hands what it would write to one applier
//! task ([`Batcher::submit`]), which takes whatever is waiting at that moment
//! (up to a maximum), applies it together, and answers each delivery with its
//! own result. Under light load a batch is one item and nothing waits; under
//! load the statements per job fall, which is what a database on two cores
//! needs (see the benchmark notes in ARCHITECTURE.md).
//!
//! The batch is only a way of writing: each delivery still settles on its
//! own outcome, and a failed batch fails each of its deliveries, which the
//! queue retries — handlers batched this way must be idempotent, as every
//! handler already is.

use std::{collections::HashMap, future::Future, hash::Hash, sync::Arc};

use opentelemetry::trace::TraceContextExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Why a submitted item got no result.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("the batch applier has stopped")]
    Stopped,
    #[error("the batched write returned no result for this item")]
    MissingResult,
}

/// An item, where its answer goes, and the submitter's `batch` span (with
/// when it was submitted, for the wait).
type Waiting<T, R> = (T, oneshot::Sender<R>, Submitted);

struct Submitted {
    span: Span,
    at: Instant,
}

/// Hands items to an applier task that applies them in batches.
pub struct Batcher<T, R> {
    name: &'static str,
    applier: mpsc::Sender<Waiting<T, R>>,
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the applier task. `apply` gets up to `max_batch` items in the
    /// order they came and must return one result per item, in the same
    /// order. The task ends when the batcher is dropped. Must be called
    /// inside the Tokio runtime. Each batch's size is recorded in
    /// `dispatch311.batch.size`, labelled `name` (a fixed name per writer).
    pub fn spawn<F, Fut>(name: &'static str, max_batch: usize, mut apply: F) -> Self
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send,
    {
        let max_batch = max_batch.max(1);
        let (applier, mut waiting) = mpsc::channel::<Waiting<T, R>>(max_batch * 4);
        let sizes = dispatch311_telemetry::metrics::meter()
            .u64_histogram("dispatch311.batch.size")
            .with_unit("{item}")
            .with_description("Items written together by a batch writer")
            .with_boundaries(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
            ])
            .build();
        let labels = [opentelemetry::KeyValue::new("batch", name)];
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max_batch);
            while waiting.recv_many(&mut batch, max_batch).await > 0 {
                sizes.record(batch.len() as u64, &labels);
                let write = write_span(name, &batch);
                let mut items = Vec::with_capacity(batch.len());
                let mut answers = Vec::with_capacity(batch.len());
                for (item, answer, _) in batch.drain(..) {
                    items.push(item);
                    answers.push(answer);
                }
                let results = apply(items).instrument(write).await;
                debug_assert_eq!(results.len(), answers.len(), "one result per item");
                // a delivery abandoned meanwhile (shutdown) has nobody to tell;
                // an item left without a result gets `Stopped` when its sender drops
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result);
                }
            }
        });
        Self { name, applier }
    }

    /// Waits for `item`'s turn and returns its result.
    ///
    /// The wait and the write show in the caller's trace as a span `batch`
    /// with the batch's size and how long the item waited for it; the write's
    /// own span (and its SQL) is in the trace of the batch's first item,
    /// linked from the others.
    pub async fn submit(&self, item: T) -> Result<R, BatchError> {
        if !dispatch311_telemetry::detail_spans() {
            return self.submit_in(item, Span::none()).await;
        }
        let span = tracing::info_span!(
            "batch",
            otel.name = %format_args!("batch {}", self.name),
            dispatch311.batch.name = self.name,
            dispatch311.batch.size = tracing::field::Empty,
            dispatch311.batch.wait_ms = tracing::field::Empty,
        );
        self.submit_in(item, span).await
    }

    async fn submit_in(&self, item: T, span: Span) -> Result<R, BatchError> {
        let (answer, result) = oneshot::channel();
        let submitted = Submitted {
            span: span.clone(),
            at: Instant::now(),
        };
        async {
            self.applier
                .send((item, answer, submitted))
                .await
                .map_err(|_| BatchError::Stopped)?;
            result.await.map_err(|_| BatchError::Stopped)
        }
        .instrument(span)
        .await
    }
}

/// The span of one batch's write: a child of its first item's `batch` span,
/// linked from the others, each of which learns the batch's size and its wait.
fn write_span<T, R>(name: &'static str, batch: &[Waiting<T, R>]) -> Span {
    if !dispatch311_telemetry::detail_spans() {
        return Span::none();
    }
    let size = i64::try_from(batch.len()).unwrap_or(i64::MAX);
    let write = tracing::info_span!(
        "write",
        otel.name = %format_args!("write {name}"),
        dispatch311.batch.name = name,
        dispatch311.batch.size = size,
    );
    for (index, (_, _, submitted)) in batch.iter().enumerate() {
        let waited = i64::try_from(submitted.at.elapsed().as_millis()).unwrap_or(i64::MAX);
        submitted.span.record("dispatch311.batch.size", size);
        submitted.span.record("dispatch311.batch.wait_ms", waited);
        let context = submitted.span.context();
        if index == 0 {
            // fails only when no OpenTelemetry layer is installed (unit tests)
            let _ = write.set_parent(context);
        } else {
            write.add_link(context.span().span_context().clone());
        }
    }
    write
}

/// Splits items into rounds in which each key appears at most once (a
/// statement may change a row only once), keeping the order of each key's
/// items. Returns indexes into the items, round by round.
pub fn rounds_by_key<K: Hash + Eq>(keys: impl IntoIterator<Item = K>) -> Vec<Vec<usize>> {
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    let mut next_round_of: HashMap<K, usize> = HashMap::new();
    for (i, key) in keys.into_iter().enumerate() {
        let round = next_round_of.entry(key).or_insert(0);
        if *round == rounds.len() {
            rounds.push(Vec::new());
        }
        rounds[*round].push(i);
        *round += 1;
    }
    rounds
}

/// Writes `items` round by round (see [`rounds_by_key`]): `write` gets the
/// items of one round and returns a result per item, in order, or an error
/// that becomes each of the round's results (shared: one statement failed
/// for all of them). Returns a result per item.
pub async fn write_in_rounds<'a, T, K, R, E, F, Fut>(
    items: &'a [T],
    key: impl Fn(&T) -> K,
    mut write: F,
) -> Vec<Result<R, Arc<E>>>
where
    K: Hash + Eq,
    E: From<BatchError>,
    F: FnMut(Vec<&'a T>) -> Fut,
    Fut: Future<Output = Result<Vec<R>, E>>,
{
    let mut results: Vec<Option<Result<R, Arc<E>>>> = items.iter().map(|_| None).collect();
    for round in rounds_by_key(items.iter().map(&key)) {
        match write(round.iter().map(|&i| &items[i]).collect()).await {
            Ok(written) => {
                for (&i, result) in round.iter().zip(written) {
                    results[i] = Some(Ok(result));
                }
            }
            Err(error) => {
                let error = Arc::new(error);
                for &i in &round {
                    results[i] = Some(Err(Arc::clone(&error)));
                }
            }
        }
    }
    results
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err(Arc::new(BatchError::MissingResult.into()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn a_key_appears_once_per_round_and_its_items_keep_their_order() {
        let rounds = rounds_by_key(["a", "b", "a", "c", "a", "b"]);
        assert_eq!(rounds, vec![vec![0, 1, 3], vec![2, 5], vec![4]]);
        assert_eq!(rounds_by_key(["a", "b", "c"]), vec![vec![0, 1, 2]]);
        assert!(rounds_by_key(Vec::<&str>::new()).is_empty());
    }

    #[derive(Debug, PartialEq)]
    enum TestError {
        Refused(&'static str),
        Batch(BatchError),
    }

    impl From<BatchError> for TestError {
        fn from(error: BatchError) -> Self {
            Self::Batch(error)
        }
    }

    #[tokio::test]
    async fn rounds_are_written_in_order_and_a_failed_round_fails_only_its_items() {
        let items = ["a1", "b1", "a2", "c1"];
        let results = write_in_rounds(
            &items,
            |item| item.as_bytes()[0],
            |round: Vec<&&str>| {
                let fail = round.iter().any(|item| **item == "a2");
                let written: Vec<String> = round.iter().map(|item| item.to_uppercase()).collect();
                async move {
                    if fail {
                        Err(TestError::Refused("a2 refused"))
                    } else {
                        Ok(written)
                    }
                }
            },
        )
        .await;
        assert_eq!(
            results,
            vec![
                Ok("A1".to_string()),
                Ok("B1".to_string()),
                Err(Arc::new(TestError::Refused("a2 refused"))),
                Ok("C1".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn an_item_the_write_returned_nothing_for_gets_an_error() {
        let items = ["a", "b"];
        let results = write_in_rounds(
            &items,
            |item| *item,
            |round: Vec<&&str>| async move { Ok::<_, TestError>(vec![round.len()]) },
        )
        .await;
        assert_eq!(
            results,
            vec![
                Ok(2),
                Err(Arc::new(TestError::Batch(BatchError::MissingResult)))
            ]
        );
    }

    #[tokio::test]
    async fn items_waiting_together_are_applied_together_and_each_gets_its_own_result() {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&batches);
        let batcher = Arc::new(Batcher::spawn("test", 8, move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.len());
            async move { items.into_iter().map(|n| n * 10).collect::<Vec<_>>() }
        }));
        let mut calls = tokio::task::JoinSet::new();
        for n in 0..20u32 {
            let batcher = Arc::clone(&batcher);
            calls.spawn(async move { (n, batcher.submit(n).await) });
        }
        while let Some(done) = calls.join_next().await {
            let (n, result) = done.unwrap();
            assert_eq!(result, Ok(n * 10));
        }
        let batches = batches.lock().unwrap();
        assert_eq!(batches.iter().sum::<usize>(), 20);
        assert!(batches.iter().all(|&size| size <= 8), "{batches:?}");
    }
}
