//! `chorus influencers import FILE`: parse rows locally, stream the good ones to
//! `ImportInfluencers` in batches, record the metrics of stored rows with `RecordMetrics`, and
//! report every failed row by line number, whether it failed here or on the server.

mod rows;
pub(crate) mod stream;

use std::collections::HashSet;
use std::path::PathBuf;

use chorus_proto::registry::{ImportInfluencersRequest, RecordMetricsRequest};
use comfy_table::Table;
use serde_json::{Value, json};

use crate::client::ConnectArgs;
use crate::error::{Result, RowsFailed, Violation};
use crate::output;
use stream::RowFailure;

#[derive(clap::Args, Debug)]
pub(crate) struct ImportArgs {
    /// A .csv file, or JSON lines (.jsonl, .ndjson, .json): one influencer with one account
    /// per row.
    file: PathBuf,
    /// Rows per request (the registry takes at most 5,000).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=5_000))]
    batch: u64,
}

/// Where a row failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Read here, before sending.
    Parse,
    /// Refused by ImportInfluencers.
    Import,
    /// Its snapshot was refused by RecordMetrics; the influencer itself was stored.
    Metrics,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Import => "import",
            Stage::Metrics => "metrics",
        }
    }
}

/// A failed row, wherever it failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    /// Line in the file (import) or row number from 1 (seed).
    pub(crate) line: u64,
    pub(crate) stage: Stage,
    pub(crate) code: Option<&'static str>,
    pub(crate) message: String,
    pub(crate) violations: Vec<Violation>,
}

impl Failure {
    /// A server-side failure; `line_of` maps a stream row to its line.
    pub(crate) fn from_row(stage: Stage, failure: RowFailure, line_of: impl Fn(i64) -> Option<u64>) -> Self {
        let line = line_of(failure.row);
        let message = match line {
            Some(_) => failure.message,
            None => format!("server row {}: {}", failure.row, failure.message),
        };
        Failure {
            line: line.unwrap_or_default(),
            stage,
            code: failure.code,
            message,
            violations: failure.violations,
        }
    }
}

pub(crate) async fn run(args: ImportArgs, connect: &ConnectArgs, json: bool) -> Result<()> {
    let parsed = rows::read(&args.file)?;
    if !parsed.unknown_fields.is_empty() {
        let names: Vec<&str> = parsed.unknown_fields.iter().map(String::as_str).collect();
        eprintln!("warning: ignored unknown fields: {}", names.join(", "));
    }
    let total = parsed.rows.len() + parsed.bad.len();
    let mut failures: Vec<Failure> = parsed
        .bad
        .into_iter()
        .map(|b| Failure {
            line: b.line,
            stage: Stage::Parse,
            code: None,
            message: b.message,
            violations: b.violations,
        })
        .collect();
    let mut summary = Summary::default();
    if !parsed.rows.is_empty() {
        summary = send(parsed.rows, args.batch as usize, connect, &mut failures).await?;
    }
    failures.sort_by_key(|f| f.line);
    let failed_rows = failures
        .iter()
        .filter(|f| f.stage != Stage::Metrics)
        .map(|f| f.line)
        .collect::<HashSet<_>>()
        .len();
    if json {
        output::print_json(&json!({
            "file": args.file.display().to_string(),
            "rows": total,
            "created": summary.created,
            "updated": summary.updated,
            "failed": failed_rows,
            "metrics": {"sent": summary.metrics_sent, "recorded": summary.metrics_recorded,
                "failed": summary.metrics_failed},
            "failures": failures_json(&failures),
        }))?;
    } else {
        outln!(
            "{}: {total} rows: {} created, {} updated, {failed_rows} failed",
            args.file.display(),
            summary.created,
            summary.updated
        );
        if summary.metrics_sent > 0 {
            outln!(
                "metrics: {} recorded, {} failed",
                summary.metrics_recorded,
                summary.metrics_failed
            );
        }
        if !failures.is_empty() {
            outln!("{}", failures_table("line", &failures));
        }
    }
    let failed = failed_rows + summary.metrics_failed;
    if failed > 0 {
        return Err(RowsFailed { failed, total }.into());
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Summary {
    created: u64,
    updated: u64,
    metrics_sent: usize,
    metrics_recorded: i64,
    metrics_failed: usize,
}

/// Imports the rows, then records the metrics of the rows the server stored.
async fn send(
    rows: Vec<rows::Row>,
    batch: usize,
    connect: &ConnectArgs,
    failures: &mut Vec<Failure>,
) -> Result<Summary> {
    let mut client = connect.registry().await?;
    let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
    let (influencers, snapshots): (Vec<_>, Vec<_>) = rows.into_iter().map(|r| (r.influencer, r.metrics)).unzip();

    let bar = stream::progress_bar(lines.len() as u64, "import")?;
    let batches = stream::send_in_batches(influencers, batch, |influencers| ImportInfluencersRequest {
        influencers,
    });
    let tally = stream::import(&mut client, batches, &bar).await;
    bar.finish_and_clear();
    let tally = tally?;
    if tally.acknowledged != lines.len() as u64 {
        return Err(format!("the server acknowledged {} of {} rows", tally.acknowledged, lines.len()).into());
    }
    let refused: HashSet<i64> = tally.failures.iter().map(|f| f.row).collect();
    failures.extend(
        tally
            .failures
            .into_iter()
            .map(|f| Failure::from_row(Stage::Import, f, line_in(&lines))),
    );

    let (metric_lines, snapshots): (Vec<u64>, Vec<_>) = snapshots
        .into_iter()
        .zip(lines.iter().copied())
        .enumerate()
        .filter(|(row, _)| !refused.contains(&(*row as i64)))
        .filter_map(|(_, (snapshot, line))| Some((line, snapshot?)))
        .unzip();
    let mut summary = Summary {
        created: tally.created,
        updated: tally.updated,
        metrics_sent: snapshots.len(),
        ..Summary::default()
    };
    if !snapshots.is_empty() {
        let bar = stream::progress_bar(snapshots.len() as u64, "metrics")?;
        let batches = stream::send_in_batches(snapshots, batch, |snapshots| RecordMetricsRequest { snapshots });
        let recorded = stream::record_metrics(&mut client, batches, &bar).await;
        bar.finish_and_clear();
        let recorded = recorded?;
        summary.metrics_recorded = recorded.recorded;
        summary.metrics_failed = recorded.failures.len();
        failures.extend(
            recorded
                .failures
                .into_iter()
                .map(|f| Failure::from_row(Stage::Metrics, f, line_in(&metric_lines))),
        );
    }
    Ok(summary)
}

/// Looks a stream row up in the lines of the rows sent.
fn line_in(lines: &[u64]) -> impl Fn(i64) -> Option<u64> + '_ {
    |row| usize::try_from(row).ok().and_then(|r| lines.get(r).copied())
}

pub(crate) fn failures_json(failures: &[Failure]) -> Value {
    failures
        .iter()
        .map(|f| {
            json!({
                "line": f.line,
                "stage": f.stage.as_str(),
                "code": f.code,
                "message": f.message,
                "field_violations": output::violations_json(&f.violations),
            })
        })
        .collect()
}

/// Failed rows: where, what, and which fields; `place` names the first column.
pub(crate) fn failures_table(place: &str, failures: &[Failure]) -> Table {
    let mut table = output::table(&[place, "stage", "error", "field violations"]);
    for f in failures {
        let error = match f.code {
            Some(code) => format!("{code}: {}", f.message),
            None => f.message.clone(),
        };
        let fields: Vec<String> = f.violations.iter().map(Violation::to_string).collect();
        table.add_row(vec![
            f.line.to_string(),
            f.stage.as_str().to_owned(),
            error,
            fields.join("\n"),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_rows_map_back_to_file_lines() {
        let failure = |row| RowFailure {
            row,
            code: Some("INVALID_ARGUMENT"),
            message: "bad niche".to_owned(),
            violations: vec![Violation::new("niches[0]", "unknown niche")],
        };
        let lines = [2, 5, 9];
        let f = Failure::from_row(Stage::Import, failure(1), line_in(&lines));
        assert_eq!((f.line, f.stage, f.message.as_str()), (5, Stage::Import, "bad niche"));
        let lost = Failure::from_row(Stage::Import, failure(7), line_in(&lines));
        assert_eq!(lost.line, 0);
        assert!(lost.message.starts_with("server row 7"));
        let json = failures_json(&[f]);
        assert_eq!(json[0]["field_violations"][0]["field"], "niches[0]");
        assert_eq!(json[0]["code"], "INVALID_ARGUMENT");
    }
}
