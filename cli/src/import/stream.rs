//! Streaming rows to the registry, shared by `import` and `seed`: batches go through a bounded
//! channel into the bidi `ImportInfluencers` call while its results are read as they come, and
//! snapshots go through the client-streaming `RecordMetrics` call.

use chorus_proto::google::rpc;
use chorus_proto::registry::{ImportInfluencersRequest, ImportOutcome, ImportResult, RecordMetricsRequest, RowError};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::Registry;
use crate::error::{Result, Violation, code_name, rpc_violations};

/// Batches waiting in the channel; enough to keep the server busy, little memory.
const IN_FLIGHT_BATCHES: usize = 4;

/// A row the server refused, by its position in the stream (from 0).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowFailure {
    pub(crate) row: i64,
    pub(crate) code: Option<&'static str>,
    pub(crate) message: String,
    pub(crate) violations: Vec<Violation>,
}

impl RowFailure {
    fn new(row: i64, error: Option<&rpc::Status>) -> Self {
        match error {
            Some(status) => RowFailure {
                row,
                code: Some(code_name(tonic::Code::from_i32(status.code))),
                message: status.message.clone(),
                violations: rpc_violations(status),
            },
            None => RowFailure {
                row,
                code: None,
                message: "the server gave no outcome for this row".to_owned(),
                violations: Vec::new(),
            },
        }
    }
}

/// What the server said about the imported rows.
#[derive(Debug, Default)]
pub(crate) struct ImportTally {
    pub(crate) acknowledged: u64,
    pub(crate) created: u64,
    pub(crate) updated: u64,
    pub(crate) failures: Vec<RowFailure>,
}

impl ImportTally {
    fn add(&mut self, result: &ImportResult) {
        self.acknowledged += 1;
        match ImportOutcome::try_from(result.outcome) {
            Ok(ImportOutcome::Created) => self.created += 1,
            Ok(ImportOutcome::Updated) => self.updated += 1,
            _ => self.failures.push(RowFailure::new(result.row, result.error.as_ref())),
        }
    }
}

/// What the server said about the recorded snapshots.
#[derive(Debug, Default)]
pub(crate) struct MetricsTally {
    pub(crate) recorded: i64,
    pub(crate) failures: Vec<RowFailure>,
}

/// A bar counting rows, on stderr (hidden when stderr is not a terminal).
pub(crate) fn progress_bar(len: u64, prefix: &'static str) -> Result<ProgressBar> {
    let style = ProgressStyle::with_template(
        "{prefix:>8} [{bar:40.cyan/blue}] {human_pos}/{human_len} rows, {per_sec}, eta {eta}",
    )?
    .progress_chars("=> ");
    Ok(ProgressBar::new(len).with_style(style).with_prefix(prefix))
}

/// Sends `items` in batches of `size` from a task, through a bounded channel.
pub(crate) fn send_in_batches<T, R>(items: Vec<T>, size: usize, wrap: fn(Vec<T>) -> R) -> mpsc::Receiver<R>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let (tx, rx) = batch_channel();
    let size = size.max(1);
    tokio::spawn(async move {
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let batch: Vec<T> = items.by_ref().take(size).collect();
            if tx.send(wrap(batch)).await.is_err() {
                break; // the call ended; its error is reported by the reader
            }
        }
    });
    rx
}

/// The bounded channel producers feed.
pub(crate) fn batch_channel<R>() -> (mpsc::Sender<R>, mpsc::Receiver<R>) {
    mpsc::channel(IN_FLIGHT_BATCHES)
}

/// Streams the batches through `ImportInfluencers`, reading results while the producer sends.
pub(crate) async fn import(
    client: &mut Registry,
    batches: mpsc::Receiver<ImportInfluencersRequest>,
    bar: &ProgressBar,
) -> Result<ImportTally> {
    let mut responses = client
        .import_influencers(ReceiverStream::new(batches))
        .await?
        .into_inner();
    let mut tally = ImportTally::default();
    while let Some(response) = responses.message().await? {
        bar.inc(response.results.len() as u64);
        response.results.iter().for_each(|r| tally.add(r));
    }
    Ok(tally)
}

/// Streams the batches through `RecordMetrics`; the bar counts snapshots sent.
pub(crate) async fn record_metrics(
    client: &mut Registry,
    batches: mpsc::Receiver<RecordMetricsRequest>,
    bar: &ProgressBar,
) -> Result<MetricsTally> {
    let counter = bar.clone();
    let stream = ReceiverStream::new(batches).inspect(move |b| counter.inc(b.snapshots.len() as u64));
    let response = client.record_metrics(stream).await?.into_inner();
    Ok(MetricsTally {
        recorded: response.recorded_count,
        failures: response
            .errors
            .iter()
            .map(|RowError { row, error }| RowFailure::new(*row, error.as_ref()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_tallied_by_outcome() {
        let mut tally = ImportTally::default();
        let result = |row, outcome: ImportOutcome, error| ImportResult {
            row,
            outcome: outcome as i32,
            name: String::new(),
            error,
        };
        tally.add(&result(0, ImportOutcome::Created, None));
        tally.add(&result(1, ImportOutcome::Updated, None));
        let refused = rpc::Status {
            code: tonic::Code::InvalidArgument as i32,
            message: "invalid request: niches[0]".to_owned(),
            details: Vec::new(),
        };
        tally.add(&result(2, ImportOutcome::Failed, Some(refused)));
        tally.add(&result(3, ImportOutcome::Unspecified, None));
        assert_eq!((tally.acknowledged, tally.created, tally.updated), (4, 1, 1));
        assert_eq!(tally.failures[0].row, 2);
        assert_eq!(tally.failures[0].code, Some("INVALID_ARGUMENT"));
        assert_eq!(tally.failures[1].code, None);
    }

    #[tokio::test]
    async fn items_are_sent_in_batches_of_the_given_size() {
        let mut rx = send_in_batches((0..7).collect::<Vec<i32>>(), 3, |b| b);
        let mut batches = Vec::new();
        while let Some(b) = rx.recv().await {
            batches.push(b);
        }
        assert_eq!(batches, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
    }
}
