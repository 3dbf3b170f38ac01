//! `chorus vet ACCOUNT`: an account's vetting report, signal by signal with its evidence.
//! `chorus vet classify FILE`: classify follower accounts from a CSV or JSON lines file.
//! `chorus vet sample ACCOUNT FILE`: submit such a file as the account's audience sample.
//!
//! Follower files have one account per row with the columns (or JSON keys) posts_count,
//! followers_count, following_count, has_profile_picture, is_private, biography_length,
//! username_length, username_digit_count and optionally key and account_age_days. A `username`
//! column may stand in for username_length and username_digit_count.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chorus_catalog::evidence::{Evidence, score_with_evidence};
use chorus_proto::registry::{
    ClassifyAccountsRequest, FollowerAccount, GetVettingReportRequest, RealFollowerShare, SubmitAudienceSampleRequest,
    Verdict, VettingFlag, VettingReport,
};
use chorus_proto::types::Platform;
use comfy_table::{Cell, CellAlignment, Table};
use serde_json::{Value, json};

use crate::client::ConnectArgs;
use crate::error::Result;
use crate::output::{self, percent};
use crate::vocab;

/// Accounts per ClassifyAccounts call (the server takes up to 10,000).
const CLASSIFY_BATCH: usize = 5_000;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct VetArgs {
    /// The account: "instagram:handle", or a handle on --platform.
    account: Option<String>,
    /// The platform of a bare handle.
    #[arg(long, default_value = "instagram", value_parser = vocab::parse::<Platform>)]
    platform: Platform,
    #[command(subcommand)]
    command: Option<VetCommand>,
}

#[derive(clap::Subcommand, Debug)]
enum VetCommand {
    /// Classify follower accounts (CSV or JSON lines) as fake or real; nothing is stored.
    Classify {
        file: PathBuf,
        /// Print only the summary, not one row per account.
        #[arg(long)]
        summary: bool,
        /// The share of fakes expected among these accounts, strictly between 0 and 1 (default:
        /// the registry's, CHORUS_VETTING_FAKE_PRIOR).
        #[arg(long)]
        prior: Option<f64>,
    },
    /// Submit a file of follower accounts as an account's audience sample; prints the new report.
    Sample {
        account: String,
        file: PathBuf,
        #[arg(long, default_value = "instagram", value_parser = vocab::parse::<Platform>)]
        platform: Platform,
    },
}

pub(crate) async fn run(args: VetArgs, connect: &ConnectArgs, json: bool) -> Result<()> {
    match (args.command, args.account) {
        (Some(VetCommand::Classify { file, summary, prior }), _) => {
            classify(&file, summary, prior, connect, json).await
        }
        (
            Some(VetCommand::Sample {
                account,
                file,
                platform,
            }),
            _,
        ) => {
            let (platform, handle) = parse_account(&account, platform)?;
            let followers = read_followers(&file)?;
            let mut messages: Vec<SubmitAudienceSampleRequest> = followers
                .chunks(CLASSIFY_BATCH)
                .map(|rows| SubmitAudienceSampleRequest {
                    followers: rows.to_vec(),
                    ..Default::default()
                })
                .collect();
            if let Some(first) = messages.first_mut() {
                first.platform = platform as i32;
                first.handle = handle;
            }
            let reply = connect
                .vetting()
                .await?
                .submit_audience_sample(tokio_stream::iter(messages))
                .await?
                .into_inner();
            let report = reply.report.ok_or("the server answered without a report")?;
            show(&report, json)
        }
        (None, Some(account)) => {
            let (platform, handle) = parse_account(&account, args.platform)?;
            let report = connect
                .vetting()
                .await?
                .get_vetting_report(GetVettingReportRequest {
                    platform: platform as i32,
                    handle,
                })
                .await?
                .into_inner()
                .report
                .ok_or("the server answered without a report")?;
            show(&report, json)
        }
        (None, None) => Err("name an account (chorus vet instagram:handle) or a subcommand (classify, sample)".into()),
    }
}

/// "instagram:maya", "@maya" or "maya" (on `default`).
fn parse_account(input: &str, default: Platform) -> Result<(Platform, String)> {
    let (platform, handle) = match input.split_once(':') {
        Some((p, h)) => (vocab::parse::<Platform>(p)?, h),
        None => (default, input),
    };
    let handle = handle.trim().trim_start_matches('@');
    if handle.is_empty() {
        return Err(format!("\"{input}\" names no handle").into());
    }
    Ok((platform, handle.to_owned()))
}

fn show(report: &VettingReport, json: bool) -> Result<()> {
    if json {
        return output::print_json(&report_json(report));
    }
    outln!("{}", summary_table(report));
    outln!("{}", signals_table(report));
    Ok(())
}

fn summary_table(r: &VettingReport) -> Table {
    let mut t = output::table(&["field", "value"]);
    let mut row = |k: &str, v: String| {
        t.add_row(vec![k.to_owned(), v]);
    };
    row(
        "account",
        format!("{} @{}", vocab::label::<Platform>(r.platform), r.handle),
    );
    row("quality score", score_with_evidence(r.quality_score, Evidence::from(r)));
    row("verdict", vocab::label::<Verdict>(r.verdict));
    let flags: Vec<String> = r.flags.iter().map(|f| vocab::label::<VettingFlag>(*f)).collect();
    row("flags", if flags.is_empty() { "-".into() } else { flags.join(", ") });
    if let Some(s) = &r.real_follower_share {
        let (seen, decided) = fake_followers(s);
        row("fake followers", seen);
        row("classified", decided);
    }
    let needed = r
        .thresholds
        .as_ref()
        .map(|th| format!("; {} needed to clear anyone", percent(th.min_coverage)))
        .unwrap_or_default();
    row(
        "evidence",
        format!(
            "{}, carrying {} of the weight{needed}",
            Evidence::from(r).describe().unwrap_or_else(|| "signals".to_owned()),
            percent(r.coverage)
        ),
    );
    if let Some(th) = &r.thresholds {
        row(
            "thresholds",
            format!("ok at {:.0}, reject below {:.0}", th.ok_at, th.reject_below),
        );
    }
    row("model", r.model_version.clone());
    row("computed", output::time(r.compute_time.as_ref()));
    row("report", r.name.clone());
    t
}

/// What the audience sample shows ("12.0% of 400 sampled called fake; corrected for the
/// classifier's errors, 11.4% (95% interval 7.8% to 15.4%)") and how it was classified ("for a
/// prior of 15.0% fakes: finds 90.0% of fakes, calls 2.0% of real accounts fake").
fn fake_followers(s: &RealFollowerShare) -> (String, String) {
    let seen = format!("{} of {} sampled called fake", percent(1.0 - s.share), s.sample_size);
    if s.sensitivity == 0.0 && s.specificity == 0.0 {
        // A report from before the correction: the observed share alone.
        return (seen, "-".to_owned());
    }
    let clamped = if s.fake_share_clamped { ", clamped" } else { "" };
    (
        format!(
            "{seen}; corrected for the classifier's errors, {}{clamped} (95% interval {} to {})",
            percent(s.fake_share),
            percent(s.fake_share_lower),
            percent(s.fake_share_upper),
        ),
        format!(
            "for a prior of {} fakes: finds {} of fakes, calls {} of real accounts fake",
            percent(s.fake_prior),
            percent(s.sensitivity),
            percent(1.0 - s.specificity)
        ),
    )
}

fn signals_table(r: &VettingReport) -> Table {
    let mut t = output::table(&["signal", "value", "norm", "weight", "score", "points", "why"]);
    for s in &r.signals {
        let value = if !s.available {
            "-".to_owned()
        } else if s.unit == "fraction" {
            percent(s.value)
        } else if s.unit == "count" {
            format!("{:.0}", s.value)
        } else {
            format!("{:.2}", s.value)
        };
        t.add_row(vec![
            Cell::new(s.id.replace('_', " ")),
            Cell::new(value).set_alignment(CellAlignment::Right),
            Cell::new(if s.norm.is_empty() { "-" } else { &s.norm }),
            Cell::new(percent(s.weight)).set_alignment(CellAlignment::Right),
            Cell::new(if s.available {
                format!("{:.2}", s.score)
            } else {
                "-".into()
            })
            .set_alignment(CellAlignment::Right),
            Cell::new(if s.available {
                format!("{:.1}", s.contribution)
            } else {
                "-".into()
            })
            .set_alignment(CellAlignment::Right),
            Cell::new(&s.explanation),
        ]);
    }
    t
}

fn report_json(r: &VettingReport) -> Value {
    let signals: Vec<Value> = r
        .signals
        .iter()
        .map(|s| {
            json!({
                "id": s.id, "available": s.available, "value": s.value, "unit": s.unit,
                "norm_low": s.norm_low, "norm_high": s.norm_high, "norm": s.norm,
                "weight": s.weight, "score": s.score, "contribution": s.contribution,
                "explanation": s.explanation,
            })
        })
        .collect();
    json!({
        "name": r.name,
        "platform": output::enum_json::<Platform>(r.platform),
        "handle": r.handle,
        "quality_score": r.quality_score,
        "verdict": output::enum_json::<Verdict>(r.verdict),
        "flags": r.flags.iter().map(|f| output::enum_json::<VettingFlag>(*f)).collect::<Vec<_>>(),
        "coverage": r.coverage,
        "signals_available": r.signals_available,
        "signals_total": r.signals_total,
        "thin_evidence": r.thin_evidence,
        "real_follower_share": r.real_follower_share.as_ref().map(|s| json!({
            "share": s.share, "lower": s.lower, "upper": s.upper, "sample_size": s.sample_size,
            "observed_fake_share": s.observed_fake_share, "fake_share": s.fake_share,
            "fake_share_lower": s.fake_share_lower, "fake_share_upper": s.fake_share_upper,
            "fake_share_clamped": s.fake_share_clamped, "sensitivity": s.sensitivity,
            "specificity": s.specificity, "fake_prior": s.fake_prior,
        })),
        "signals": signals,
        "model_version": r.model_version,
        "compute_time": output::time_json(r.compute_time.as_ref()),
    })
}

async fn classify(file: &Path, summary: bool, prior: Option<f64>, connect: &ConnectArgs, json: bool) -> Result<()> {
    let followers = read_followers(file)?;
    let mut client = connect.vetting().await?;
    let mut all = Vec::with_capacity(followers.len());
    let mut version = String::new();
    let mut used_prior = prior.unwrap_or_default();
    for batch in followers.chunks(CLASSIFY_BATCH) {
        let reply = client
            .classify_accounts(ClassifyAccountsRequest {
                accounts: batch.to_vec(),
                prior,
            })
            .await?
            .into_inner();
        version = reply.model_version;
        used_prior = reply.prior;
        all.extend(reply.classifications);
    }
    let fake = all.iter().filter(|c| c.fake).count();
    if json {
        let rows: Vec<Value> = all
            .iter()
            .map(
                |c| json!({"key": c.key, "fake": c.fake, "fake_probability": c.fake_probability, "reasons": c.reasons}),
            )
            .collect();
        return output::print_json(
            &json!({"model_version": version, "prior": used_prior, "fake_count": fake, "classifications": rows}),
        );
    }
    if !summary {
        let mut t = output::table(&["account", "call", "p(fake)", "why"]);
        for c in &all {
            t.add_row(vec![
                Cell::new(&c.key),
                Cell::new(if c.fake { "fake" } else { "real" }),
                Cell::new(format!("{:.3}", c.fake_probability)).set_alignment(CellAlignment::Right),
                Cell::new(c.reasons.join("; ")),
            ]);
        }
        outln!("{t}");
    }
    outln!(
        "{} accounts: {fake} called fake ({}), model {version}, for a prior of {} fakes",
        all.len(),
        percent(if all.is_empty() {
            0.0
        } else {
            fake as f64 / all.len() as f64
        }),
        percent(used_prior)
    );
    Ok(())
}

/// Reads follower rows from a CSV or JSON lines file; a bad row stops the read with its line.
fn read_followers(path: &Path) -> Result<Vec<FollowerAccount>> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let text = std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut records: Vec<(u64, BTreeMap<String, String>)> = Vec::new();
    match extension.as_str() {
        "csv" => {
            let mut csv = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_reader(text.as_bytes());
            let header: Vec<String> = csv
                .headers()
                .map_err(|e| format!("read the CSV header: {e}"))?
                .iter()
                .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
                .collect();
            for record in csv.records() {
                let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
                let line = record.position().map_or(0, csv::Position::line);
                records.push((
                    line,
                    header.iter().cloned().zip(record.iter().map(str::to_owned)).collect(),
                ));
            }
        }
        "jsonl" | "ndjson" | "json" => {
            for (n, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let value: Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
                let Value::Object(map) = value else {
                    return Err(format!("line {}: expected a JSON object", n + 1).into());
                };
                let fields = map
                    .into_iter()
                    .map(|(k, v)| {
                        let text = match v {
                            Value::String(s) => s,
                            Value::Null => String::new(),
                            other => other.to_string(),
                        };
                        (k.to_ascii_lowercase(), text)
                    })
                    .collect();
                records.push(((n + 1) as u64, fields));
            }
        }
        _ => {
            return Err(format!("cannot tell the format of {}: name it .csv or .jsonl", path.display()).into());
        }
    }
    records
        .into_iter()
        .map(|(line, fields)| follower(&fields).map_err(|e| format!("line {line}: {e}").into()))
        .collect()
}

fn follower(f: &BTreeMap<String, String>) -> std::result::Result<FollowerAccount, String> {
    let get = |k: &str| f.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let int = |k: &str| -> std::result::Result<Option<i64>, String> {
        get(k)
            .map(|v| {
                v.parse::<f64>()
                    .map(|x| x as i64)
                    .map_err(|_| format!("{k}: \"{v}\" is not a number"))
            })
            .transpose()
    };
    let flag = |k: &str| -> std::result::Result<Option<bool>, String> {
        get(k)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "y" => Ok(true),
                "0" | "false" | "no" | "n" => Ok(false),
                _ => Err(format!("{k}: \"{v}\" is not true or false")),
            })
            .transpose()
    };
    let username = get("username").unwrap_or_default();
    let small = |k: &str, derived: Option<usize>| -> std::result::Result<Option<i32>, String> {
        Ok(int(k)?.map(|v| v as i32).or(derived.map(|d| d as i32)))
    };
    let derived_length = (!username.is_empty()).then(|| username.chars().count());
    let derived_digits = (!username.is_empty()).then(|| username.chars().filter(char::is_ascii_digit).count());
    Ok(FollowerAccount {
        key: get("key").or(get("username")).unwrap_or_default().to_owned(),
        posts_count: int("posts_count")?,
        followers_count: int("followers_count")?,
        following_count: int("following_count")?,
        has_profile_picture: flag("has_profile_picture")?,
        is_private: flag("is_private")?,
        biography_length: small("biography_length", None)?,
        username_length: small("username_length", derived_length)?,
        username_digit_count: small("username_digit_count", derived_digits)?,
        account_age_days: small("account_age_days", None)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_parse_with_or_without_a_platform() {
        assert_eq!(
            parse_account("tiktok:@Maya", Platform::Instagram).unwrap(),
            (Platform::Tiktok, "Maya".to_owned())
        );
        assert_eq!(
            parse_account("@maya", Platform::Instagram).unwrap().0,
            Platform::Instagram
        );
        assert!(parse_account("instagram:", Platform::Instagram).is_err());
        assert!(parse_account("myspace:maya", Platform::Instagram).is_err());
    }

    #[test]
    fn follower_rows_read_from_csv_and_derive_username_features() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.csv");
        std::fs::write(
            &path,
            "username,posts_count,followers_count,following_count,has_profile_picture,is_private,biography_length\n\
             anna_83921,0,3,2400,false,no,0\n",
        )
        .unwrap();
        let rows = read_followers(&path).unwrap();
        assert_eq!(rows[0].key, "anna_83921");
        assert_eq!(
            (rows[0].username_length, rows[0].username_digit_count),
            (Some(10), Some(5))
        );
        assert_eq!(
            (rows[0].has_profile_picture, rows[0].is_private),
            (Some(false), Some(false))
        );
        assert_eq!(rows[0].account_age_days, None);
        std::fs::write(&path, "posts_count\nmany\n").unwrap();
        let err = read_followers(&path).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("posts_count"), "{err}");
    }

    #[test]
    fn the_report_shows_the_observed_and_the_corrected_fake_share_and_the_evidence() {
        let share = RealFollowerShare {
            share: 0.88,
            sample_size: 400,
            observed_fake_share: 0.12,
            fake_share: 0.1136,
            fake_share_lower: 0.0779,
            fake_share_upper: 0.1539,
            sensitivity: 0.9,
            specificity: 0.98,
            fake_prior: 0.15,
            ..RealFollowerShare::default()
        };
        assert_eq!(
            fake_followers(&share),
            (
                "12.0% of 400 sampled called fake; corrected for the classifier's errors, 11.4% (95% \
                 interval 7.8% to 15.4%)"
                    .to_owned(),
                "for a prior of 15.0% fakes: finds 90.0% of fakes, calls 2.0% of real accounts fake".to_owned()
            )
        );
        let report = VettingReport {
            quality_score: 100.0,
            coverage: 0.45,
            signals_available: 3,
            signals_total: 6,
            thin_evidence: true,
            ..VettingReport::default()
        };
        let table = summary_table(&report).to_string();
        assert!(table.contains("100, thin evidence: 3 of 6 signals"), "{table}");
    }
}
