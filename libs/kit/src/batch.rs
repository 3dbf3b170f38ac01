//! Group commit: calls of one kind that arrive together are applied in one transaction. Each
//! call hands its item to a [`Batcher`] and waits for its own answer; one writer task takes
//! what is queued (up to `max` items: as many as are waiting, so a lone call is not held back)
//! and applies it as one batch. Under load a batch grows to what arrived while the previous
//! one committed, so statements and commits are shared by many calls.
//!
//! The batch function answers each item on its own: an item's error (not found, a state that
//! forbids the move) is that item's answer, and the others go on. When the batch as a whole
//! fails (its transaction did not commit: a lost connection, a deadlock, a request id taken
//! over by a retry), nothing of it was written, and the writer applies each item again alone,
//! in its own batch of one, so one bad item cannot fail its neighbours.
//!
//! ```ignore
//! let (signing, writer) = Batcher::new("signatures", 64, move |items: Vec<Sign>| {
//!     let store = store.clone();
//!     async move { store.sign_all(&items).await }
//! });
//! parts.task("signatures", move |stop| writer.run(stop));
//! let answer = signing.submit(item).await?;
//! ```

use std::future::Future;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, ErrorCode};

/// What a batch function returns: one answer per item, in the items' order; or, when the
/// batch's transaction did not commit, the error (nothing of the batch was written).
pub type Outcome<O> = Result<Vec<Result<O, Error>>, Error>;

/// Items queued per batcher beyond which callers wait to queue.
const QUEUE_PER_ITEM: usize = 16;

/// Items processed per batch, counted per batcher (`queue` label).
pub const ITEMS_METRIC: &str = "chorus_batch_items_total";
/// Batches applied, counted per batcher (`queue` label).
pub const BATCHES_METRIC: &str = "chorus_batches_total";

struct Job<I, O> {
    item: I,
    reply: oneshot::Sender<Result<O, Error>>,
}

type Apply<I, O> = Box<dyn Fn(Vec<I>) -> BoxFuture<'static, Outcome<O>> + Send + Sync>;

/// The callers' end of a group-commit queue. Cheap to clone.
pub struct Batcher<I, O> {
    name: &'static str,
    queue: mpsc::Sender<Job<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Batcher {
            name: self.name,
            queue: self.queue.clone(),
        }
    }
}

impl<I, O> std::fmt::Debug for Batcher<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The writer's end: run it as a service task ([`Writer::run`]).
pub struct Writer<I, O> {
    name: &'static str,
    max: usize,
    queue: mpsc::Receiver<Job<I, O>>,
    apply: Apply<I, O>,
}

impl<I, O> std::fmt::Debug for Writer<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("name", &self.name)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl<I, O> Batcher<I, O>
where
    I: Clone + Send + 'static,
    O: Send + 'static,
{
    /// A queue named `name` (the metrics' `queue` label) whose writer applies up to `max`
    /// items at a time with `apply`. `apply` gets the items in the order they were queued
    /// and must answer each, in that order.
    pub fn new<A, F>(name: &'static str, max: usize, apply: A) -> (Self, Writer<I, O>)
    where
        A: Fn(Vec<I>) -> F + Send + Sync + 'static,
        F: Future<Output = Outcome<O>> + Send + 'static,
    {
        let max = max.max(1);
        let (tx, rx) = mpsc::channel(max * QUEUE_PER_ITEM);
        let apply: Apply<I, O> = Box::new(move |items| apply(items).boxed());
        (
            Batcher { name, queue: tx },
            Writer {
                name,
                max,
                queue: rx,
                apply,
            },
        )
    }

    /// Queues `item` and waits for its answer. UNAVAILABLE when the writer has stopped.
    pub async fn submit(&self, item: I) -> Result<O, Error> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { item, reply })
            .await
            .map_err(|_| stopped(self.name))?;
        answer.await.unwrap_or_else(|_| Err(stopped(self.name)))
    }
}

fn stopped(name: &str) -> Error {
    Error::new(
        ErrorCode::Unavailable,
        format!("the {name} queue is shutting down; retry"),
    )
}

impl<I, O> Writer<I, O>
where
    I: Clone + Send + 'static,
    O: Send + 'static,
{
    /// Applies queued items until `stop` is cancelled, then takes no more and applies what
    /// is already queued.
    pub async fn run(mut self, stop: CancellationToken) -> Result<(), Error> {
        loop {
            let first = tokio::select! {
                biased;
                job = self.queue.recv() => job,
                () = stop.cancelled() => break,
            };
            let Some(first) = first else {
                return Ok(()); // every Batcher is gone
            };
            self.flush(first).await;
        }
        self.queue.close();
        while let Some(first) = self.queue.recv().await {
            self.flush(first).await;
        }
        Ok(())
    }

    /// Applies `first` with whatever else is waiting, up to `max` items.
    async fn flush(&mut self, first: Job<I, O>) {
        let mut jobs = vec![first];
        while jobs.len() < self.max {
            match self.queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (items, replies): (Vec<I>, Vec<_>) = jobs.into_iter().map(|j| (j.item, j.reply)).unzip();
        let n = items.len();
        metrics::counter!(ITEMS_METRIC, "queue" => self.name).increment(n as u64);
        metrics::counter!(BATCHES_METRIC, "queue" => self.name).increment(1);
        if n == 1 {
            let answer = self.one(items).await;
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(answer);
            }
            return;
        }
        match self.apply_guarded(items.clone()).await {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    // A caller that went away needs no answer.
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                tracing::debug!(queue = self.name, items = n, error = %e, "batch failed; applying its items one by one");
                for (item, reply) in items.into_iter().zip(replies) {
                    let answer = self.one(vec![item]).await;
                    metrics::counter!(BATCHES_METRIC, "queue" => self.name).increment(1);
                    let _ = reply.send(answer);
                }
            }
        }
    }

    /// A batch of one: its error is the item's answer.
    async fn one(&self, item: Vec<I>) -> Result<O, Error> {
        match self.apply_guarded(item).await {
            Ok(mut answers) => answers
                .pop()
                .unwrap_or_else(|| Err(Error::new(ErrorCode::Internal, "no answer"))),
            Err(e) => Err(e),
        }
    }

    /// Runs the batch function on a task of its own (a panic fails the batch, not the
    /// writer) and checks it answered every item.
    async fn apply_guarded(&self, items: Vec<I>) -> Result<Vec<Result<O, Error>>, Error> {
        let n = items.len();
        let answers = tokio::spawn((self.apply)(items))
            .await
            .map_err(|e| Error::internal("apply a batch", e))??;
        if answers.len() != n {
            return Err(Error::new(
                ErrorCode::Internal,
                format!("the {} batch answered {} of {n} items", self.name, answers.len()),
            ));
        }
        Ok(answers)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    type Doubler = (Batcher<u32, u32>, Writer<u32, u32>, Arc<Mutex<Vec<Vec<u32>>>>);

    /// A batcher over numbers that records each batch it applied. An item's answer is twice
    /// the number; 13 is a bad item (its own error); a batch holding 7 fails whole; 99 panics.
    fn doubler(max: usize) -> Doubler {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let (b, w) = Batcher::new("test", max, move |items: Vec<u32>| {
            let log = log.clone();
            async move {
                // Long enough for the other callers to queue behind the first batch.
                tokio::time::sleep(Duration::from_millis(20)).await;
                log.lock().unwrap().push(items.clone());
                if items.contains(&99) {
                    panic!("a bug in the batch function");
                }
                if items.contains(&7) {
                    return Err(Error::new(ErrorCode::Aborted, "the transaction failed"));
                }
                Ok(items
                    .iter()
                    .map(|&n| {
                        if n == 13 {
                            Err(Error::new(ErrorCode::FailedPrecondition, "13 is unlucky"))
                        } else {
                            Ok(n * 2)
                        }
                    })
                    .collect())
            }
        });
        (b, w, seen)
    }

    async fn submit_all(b: &Batcher<u32, u32>, items: &[u32]) -> Vec<Result<u32, Error>> {
        futures::future::join_all(items.iter().map(|&n| {
            let b = b.clone();
            async move { b.submit(n).await }
        }))
        .await
    }

    #[tokio::test]
    async fn callers_that_arrive_together_share_batches_and_get_their_own_answers() {
        let (b, w, seen) = doubler(8);
        let stop = CancellationToken::new();
        let writer = tokio::spawn(w.run(stop.clone()));
        let items: Vec<u32> = (100..140).collect();
        let answers = submit_all(&b, &items).await;
        for (n, a) in items.iter().zip(&answers) {
            assert_eq!(*a.as_ref().unwrap(), n * 2);
        }
        let batches = seen.lock().unwrap().clone();
        assert!(batches.iter().all(|b| b.len() <= 8), "{batches:?}");
        assert!(batches.len() < items.len(), "no batching happened: {batches:?}");
        let mut all: Vec<u32> = batches.concat();
        all.sort_unstable();
        assert_eq!(all, items, "every item applied exactly once");
        stop.cancel();
        writer.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_bad_item_fails_alone() {
        let (b, w, seen) = doubler(64);
        let stop = CancellationToken::new();
        tokio::spawn(w.run(stop.clone()));
        let answers = submit_all(&b, &[1, 13, 2, 7, 3, 99, 4]).await;
        assert_eq!(*answers[0].as_ref().unwrap(), 2);
        assert_eq!(answers[1].as_ref().unwrap_err().code(), ErrorCode::FailedPrecondition);
        assert_eq!(*answers[2].as_ref().unwrap(), 4);
        assert_eq!(
            answers[3].as_ref().unwrap_err().code(),
            ErrorCode::Aborted,
            "7 fails its own batch"
        );
        assert_eq!(*answers[4].as_ref().unwrap(), 6);
        assert_eq!(
            answers[5].as_ref().unwrap_err().code(),
            ErrorCode::Internal,
            "a panic is an internal error"
        );
        assert_eq!(*answers[6].as_ref().unwrap(), 8);
        // The failed batches were applied again one item at a time.
        let batches = seen.lock().unwrap().clone();
        assert!(batches.iter().any(|b| b.len() > 1), "{batches:?}");
        assert!(batches.contains(&vec![7]) && batches.contains(&vec![99]), "{batches:?}");
        assert!(batches.contains(&vec![4]), "{batches:?}");
        stop.cancel();
    }

    #[tokio::test]
    async fn stopping_applies_what_is_queued_then_refuses() {
        let (b, w, seen) = doubler(2);
        let stop = CancellationToken::new();
        let writer = tokio::spawn(w.run(stop.clone()));
        let queued = {
            let b = b.clone();
            tokio::spawn(async move { submit_all(&b, &[1, 2, 3, 4, 5]).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        stop.cancel();
        let answers = queued.await.unwrap();
        assert_eq!(
            answers.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            [2, 4, 6, 8, 10]
        );
        writer.await.unwrap().unwrap();
        let e = b.submit(6).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unavailable);
        assert_eq!(seen.lock().unwrap().concat().len(), 5);
    }
}
