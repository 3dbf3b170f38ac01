//! `chorus seed`: generate a synthetic population (see `population`) in a producer task and
//! stream it through `ImportInfluencers` without waiting per batch, then record each stored
//! account's first metrics snapshot, regenerated from the same seed instead of kept in memory.

mod population;
mod words;

use std::collections::HashSet;
use std::time::{Instant, SystemTime};

use chorus_proto::registry::{ImportInfluencersRequest, RecordMetricsRequest};
use prost_types::Timestamp;
use serde_json::json;
use tokio::sync::mpsc;

use crate::client::{ConnectArgs, Registry};
use crate::error::{Result, RowsFailed};
use crate::import::stream;
use crate::import::{Failure, Stage, failures_json, failures_table};
use crate::output::{self, count};
use population::Population;

/// Failed rows listed in the table; JSON lists them all.
const FAILURES_SHOWN: usize = 20;

#[derive(clap::Args, Debug)]
pub(crate) struct SeedArgs {
    /// How many influencers to generate.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    influencers: u64,
    /// Random seed: the same seed gives the same people and handles.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Rows per request (the registry takes at most 5,000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=5_000))]
    batch: u64,
    /// Import the profiles only, without their metrics snapshots (for the import benchmark).
    #[arg(long, conflicts_with = "skip_import")]
    skip_metrics: bool,
    /// Record the metrics snapshots of people an earlier run with the same seed imported.
    #[arg(long)]
    skip_import: bool,
}

impl SeedArgs {
    /// `influencers` people from `seed`, with their snapshots, in batches of 1,000.
    pub(crate) fn new(influencers: u64, seed: u64) -> Self {
        SeedArgs {
            influencers,
            seed,
            batch: 1000,
            skip_metrics: false,
            skip_import: false,
        }
    }
}

pub(crate) async fn run(args: SeedArgs, connect: &ConnectArgs, json: bool) -> Result<()> {
    let started = Instant::now();
    // one clock for both passes, so the regenerated people are the same people
    let now: Timestamp = SystemTime::now().into();
    let mut client = connect.registry().await?;
    let imported = if args.skip_import {
        Imported::default()
    } else {
        import_people(&mut client, &args, now).await?
    };
    let import_seconds = started.elapsed().as_secs_f64();
    let (recorded, metrics_failures) = if args.skip_metrics {
        (0, Vec::new())
    } else {
        record_snapshots(&mut client, &args, now, &imported.refused).await?
    };
    let elapsed = started.elapsed().as_secs_f64();
    let metrics_seconds = elapsed - import_seconds;
    let per_second = args.influencers as f64 / elapsed.max(1e-9);

    let refused = imported.refused.len();
    let metrics_failed = metrics_failures.len();
    let mut failures = imported.failures;
    failures.extend(metrics_failures);
    if json {
        output::print_json(&json!({
            "influencers": args.influencers,
            "seed": args.seed,
            "created": imported.created,
            "updated": imported.updated,
            "failed": refused,
            "metrics": {"recorded": recorded, "failed": metrics_failed},
            "elapsed_seconds": elapsed,
            "import_seconds": import_seconds,
            "metrics_seconds": metrics_seconds,
            "rows_per_second": per_second,
            "failures": failures_json(&failures),
        }))?;
    } else {
        print_failures(&failures);
        outln!(
            "seeded {} influencers ({} created, {} updated, {} failed; {} snapshots recorded) in {elapsed:.1}s \
             (import {import_seconds:.1}s, metrics {metrics_seconds:.1}s), {} rows/s",
            count(args.influencers as i64),
            count(imported.created as i64),
            count(imported.updated as i64),
            count(refused as i64),
            count(recorded),
            count(per_second.round() as i64),
        );
    }
    if !failures.is_empty() {
        let total = args.influencers as usize;
        return Err(RowsFailed {
            failed: failures.len(),
            total,
        }
        .into());
    }
    Ok(())
}

/// What the import pass left behind.
#[derive(Debug, Default)]
struct Imported {
    created: u64,
    updated: u64,
    /// Indexes (from 0) of the people the server refused.
    refused: HashSet<u64>,
    failures: Vec<Failure>,
}

/// Streams every person through `ImportInfluencers` while the producer keeps generating.
async fn import_people(client: &mut Registry, args: &SeedArgs, now: Timestamp) -> Result<Imported> {
    let (tx, rx) = stream::batch_channel();
    tokio::spawn(produce(args.seed, now, args.influencers, args.batch, tx, |people| {
        ImportInfluencersRequest {
            influencers: people.into_iter().map(|(_, p)| p.influencer).collect(),
        }
    }));
    let bar = stream::progress_bar(args.influencers, "import")?;
    let tally = stream::import(client, rx, &bar).await;
    bar.finish_and_clear();
    let tally = tally?;
    if tally.acknowledged != args.influencers {
        let message = format!(
            "the server acknowledged {} of {} rows",
            tally.acknowledged, args.influencers
        );
        return Err(message.into());
    }
    Ok(Imported {
        created: tally.created,
        updated: tally.updated,
        refused: tally.failures.iter().map(|f| f.row as u64).collect(),
        failures: tally
            .failures
            .into_iter()
            .map(|f| Failure::from_row(Stage::Import, f, |row| u64::try_from(row).ok().map(|r| r + 1)))
            .collect(),
    })
}

/// Regenerates the people and records the snapshots of those the server stored.
async fn record_snapshots(
    client: &mut Registry,
    args: &SeedArgs,
    now: Timestamp,
    refused: &HashSet<u64>,
) -> Result<(i64, Vec<Failure>)> {
    // row numbers (from 1) of the snapshots in the order they are sent
    let sent: Vec<u64> = (0..args.influencers)
        .filter(|i| !refused.contains(i))
        .map(|i| i + 1)
        .collect();
    let skip = refused.clone();
    let (tx, rx) = stream::batch_channel();
    tokio::spawn(produce(
        args.seed,
        now,
        args.influencers,
        args.batch,
        tx,
        move |people| RecordMetricsRequest {
            snapshots: people
                .into_iter()
                .filter(|(index, _)| !skip.contains(index))
                .map(|(_, p)| p.snapshot)
                .collect(),
        },
    ));
    let bar = stream::progress_bar(sent.len() as u64, "metrics")?;
    let tally = stream::record_metrics(client, rx, &bar).await;
    bar.finish_and_clear();
    let tally = tally?;
    let failures = tally
        .failures
        .into_iter()
        .map(|f| {
            Failure::from_row(Stage::Metrics, f, |row| {
                usize::try_from(row).ok().and_then(|r| sent.get(r).copied())
            })
        })
        .collect();
    Ok((tally.recorded, failures))
}

fn print_failures(failures: &[Failure]) {
    if failures.is_empty() {
        return;
    }
    let shown = failures.len().min(FAILURES_SHOWN);
    outln!("{}", failures_table("row", &failures[..shown]));
    if failures.len() > shown {
        outln!(
            "... and {} more failed rows (--json lists them all)",
            failures.len() - shown
        );
    }
}

/// Generates `total` people in batches and sends `wrap(batch)` for each, with each person's
/// index from 0; stops early when the call has ended.
async fn produce<R>(
    seed: u64,
    now: Timestamp,
    total: u64,
    batch: u64,
    tx: mpsc::Sender<R>,
    wrap: impl Fn(Vec<(u64, population::Person)>) -> R,
) where
    R: Send + 'static,
{
    let mut population = Population::new(seed, now);
    let mut index = 0;
    while index < total {
        let end = total.min(index + batch);
        let people: Vec<_> = (index..end).map(|i| (i, population.person(i))).collect();
        index = end;
        if tx.send(wrap(people)).await.is_err() {
            return; // the call ended; its error is reported by the reader
        }
    }
}
