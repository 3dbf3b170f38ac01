//! Vetting storage: the newest samples' aggregates per account, the reports computed from them
//! and the metrics history, and the copies List filters on. Reports are recomputed inside the
//! transaction that brings new evidence (RecordMetrics, a sample), so a report never lags the
//! data it claims to rest on.

use std::collections::HashMap;

use chorus_kit::idempotency::Claim;
use chorus_kit::{Error, ErrorCode};
use chorus_proto::event::Envelope;
use chorus_proto::registry::{AccountVetting, MetricsSnapshot, Verdict, VettingReport};
use prost::Message;
use sqlx::{AnyConnection, Row};

use super::{CHUNK, History, Keyed, Sql, Store, by_keys};
use crate::domain::influencer::{AccountKey, micros_to_timestamp};
use crate::domain::vetting::classifier::{Model, Prior, Rates, V1_PRIOR};
use crate::domain::vetting::comments::CommentSummary;
use crate::domain::vetting::report::{self, AudienceSummary, Evidence, SCORING_VERSION};
use crate::events;

/// Snapshots per account the growth signal looks back over.
const HISTORY: i64 = 30;

/// New evidence submitted for one account.
#[derive(Debug, Clone, Copy)]
pub enum Sample {
    Audience(AudienceSummary),
    Comments(CommentSummary),
}

#[derive(Debug, Default, Clone, Copy)]
struct Inputs {
    audience: Option<AudienceSummary>,
    comments: Option<CommentSummary>,
}

/// The reports a recomputation stored, and their events.
#[derive(Debug, Default)]
pub(super) struct Revetted {
    pub(super) envelopes: Vec<Envelope>,
    pub(super) reports: HashMap<AccountKey, VettingReport>,
}

fn keyed(platform: i64, handle: String) -> AccountKey {
    AccountKey {
        platform: platform as i32,
        handle,
    }
}

fn opt_u32(r: &sqlx::any::AnyRow, col: &str) -> Result<Option<u32>, Error> {
    Ok(r.try_get::<Option<i64>, _>(col)?
        .map(|v| v.clamp(0, i64::from(u32::MAX)) as u32))
}

/// The prior and rates an audience sample was classified with. A sample stored before they
/// were kept was counted by follower-classifier-v1, whose rule is the decision at `V1_PRIOR`.
fn audience_decision(r: &sqlx::any::AnyRow) -> Result<(Prior, Rates), Error> {
    let prior = r.try_get::<Option<f64>, _>("audience_prior")?;
    let sensitivity = r.try_get::<Option<f64>, _>("audience_sensitivity")?;
    let specificity = r.try_get::<Option<f64>, _>("audience_specificity")?;
    let (fakes, reals) = (opt_u32(r, "audience_rate_fakes")?, opt_u32(r, "audience_rate_reals")?);
    match (prior.map(Prior::new), sensitivity, specificity, fakes, reals) {
        (Some(Ok(prior)), Some(sensitivity), Some(specificity), Some(fakes), Some(reals)) => Ok((
            prior,
            Rates {
                sensitivity,
                specificity,
                fakes,
                reals,
            },
        )),
        (None, ..) => Ok((V1_PRIOR, Model::current().decision(V1_PRIOR).rates())),
        _ => Err(Error::new(
            ErrorCode::Internal,
            "an audience sample without its decision",
        )),
    }
}

impl Store {
    /// Stores a sample's aggregates for an account and returns its new report. NOT_FOUND when
    /// no influencer has the account.
    /// Stores a sample of `key`'s audience or comments and recomputes its report, in one
    /// transaction; `respond` makes the answer from the report, which `claim` keeps for the
    /// request id in the same transaction.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db registry.submit_sample", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn submit_sample<T: Message>(
        &self,
        key: &AccountKey,
        sample: Sample,
        claim: &Claim,
        respond: impl FnOnce(VettingReport) -> T,
    ) -> Result<T, Error> {
        let mut tx = self.db.pool.begin().await?;
        // A no-op write takes the account's row lock (PostgreSQL) or the write lock (SQLite)
        // first, so a concurrent RecordMetrics cannot compute a report without this sample.
        let row = Sql::new("UPDATE accounts SET verdict = verdict WHERE platform = ")
            .arg(key.platform)
            .push(" AND handle = ")
            .arg(key.handle.as_str())
            .push(" RETURNING influencer_id")
            .query()
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Err(Error::not_found(key));
        };
        let influencer_id: String = row.try_get("influencer_id")?;
        let now = self.now_micros();
        let mut q = Sql::new("INSERT INTO vetting_inputs (platform, handle, influencer_id, ");
        let set = match sample {
            Sample::Audience(a) => {
                q.push(
                    "audience_size, audience_real, audience_time, audience_prior, audience_sensitivity, \
                     audience_specificity, audience_rate_fakes, audience_rate_reals) VALUES ",
                )
                .row(vec![
                    key.platform.into(),
                    key.handle.clone().into(),
                    influencer_id.clone().into(),
                    i64::from(a.sample_size).into(),
                    i64::from(a.real).into(),
                    a.sample_time_micros.into(),
                    a.prior.get().into(),
                    a.rates.sensitivity.into(),
                    a.rates.specificity.into(),
                    i64::from(a.rates.fakes).into(),
                    i64::from(a.rates.reals).into(),
                ]);
                [
                    "audience_size",
                    "audience_real",
                    "audience_time",
                    "audience_prior",
                    "audience_sensitivity",
                    "audience_specificity",
                    "audience_rate_fakes",
                    "audience_rate_reals",
                ]
                .as_slice()
            }
            Sample::Comments(c) => {
                q.push(
                    "comments_total, comments_emoji, comments_generic, comments_duplicate, comments_short, \
                     comments_time) VALUES ",
                )
                .row(vec![
                    key.platform.into(),
                    key.handle.clone().into(),
                    influencer_id.clone().into(),
                    i64::from(c.total).into(),
                    i64::from(c.emoji_only).into(),
                    i64::from(c.generic).into(),
                    i64::from(c.duplicate).into(),
                    i64::from(c.short).into(),
                    now.into(),
                ]);
                [
                    "comments_total",
                    "comments_emoji",
                    "comments_generic",
                    "comments_duplicate",
                    "comments_short",
                    "comments_time",
                ]
                .as_slice()
            }
        };
        q.push(" ON CONFLICT (platform, handle) DO UPDATE SET influencer_id = excluded.influencer_id");
        for col in set {
            q.push(&format!(", {col} = excluded.{col}"));
        }
        q.query().execute(&mut *tx).await?;
        let mut revetted = self
            .revet(&mut tx, &[(key.clone(), influencer_id.clone())], true)
            .await?;
        refresh_copies(&mut tx, &[influencer_id.as_str()], now).await?;
        self.outbox
            .add_many(&mut tx, events::TOPIC, &revetted.envelopes)
            .await?;
        let report = revetted
            .reports
            .remove(key)
            .ok_or_else(|| Error::new(ErrorCode::Internal, "a forced recomputation stored no report"))?;
        let answer = respond(report);
        claim.record(&mut tx, &answer).await?;
        tx.commit().await?;
        self.outbox.committed();
        self.evict(&influencer_id);
        Ok(answer)
    }

    /// Recomputes the reports of these accounts (key, influencer id) from what `conn` sees.
    /// A report is stored, with its events, when it is the account's first, when its verdict,
    /// flags, whole-point score or number of signals with evidence changed, or when `force` is
    /// set (a sample was submitted); otherwise the account's newest report stands.
    pub(super) async fn revet(
        &self,
        conn: &mut AnyConnection,
        accounts: &[(AccountKey, String)],
        force: bool,
    ) -> Result<Revetted, Error> {
        let mut out = Revetted::default();
        if accounts.is_empty() {
            return Ok(out);
        }
        let now = self.now_micros();
        let mut ids: Vec<&str> = accounts.iter().map(|(_, id)| id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut histories: HashMap<AccountKey, Vec<MetricsSnapshot>> = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let mut q = Sql::new(
                "SELECT platform, handle, snapshot FROM (SELECT platform, handle, snapshot, observe_time, id, \
                 ROW_NUMBER() OVER (PARTITION BY platform, handle ORDER BY observe_time DESC, id DESC) AS n \
                 FROM metrics_snapshots WHERE influencer_id IN (",
            );
            q.list(chunk.iter().copied())
                .push(")) h WHERE n <= ")
                .arg(HISTORY)
                .push(" ORDER BY platform, handle, observe_time, id");
            for r in q.query().fetch_all(&mut *conn).await? {
                let bytes: Vec<u8> = r.try_get("snapshot")?;
                let s = MetricsSnapshot::decode(bytes.as_slice()).map_err(|e| Error::internal("decode snapshot", e))?;
                histories
                    .entry(keyed(r.try_get("platform")?, r.try_get("handle")?))
                    .or_default()
                    .push(s);
            }
        }
        let keys: Vec<&AccountKey> = accounts.iter().map(|(k, _)| k).collect();
        let mut inputs: HashMap<AccountKey, Inputs> = HashMap::new();
        let mut previous: HashMap<AccountKey, AccountVetting> = HashMap::new();
        for chunk in keys.chunks(CHUNK) {
            let mut q = by_keys(
                self.db.backend,
                "platform, handle, audience_size, audience_real, audience_time, audience_prior, \
                 audience_sensitivity, audience_specificity, audience_rate_fakes, audience_rate_reals, \
                 comments_total, comments_emoji, comments_generic, comments_duplicate, comments_short",
                "vetting_inputs",
                chunk,
            );
            for r in q.query().fetch_all(&mut *conn).await? {
                let audience = match (opt_u32(&r, "audience_size")?, opt_u32(&r, "audience_real")?) {
                    (Some(sample_size), Some(real)) => {
                        let (prior, rates) = audience_decision(&r)?;
                        Some(AudienceSummary {
                            sample_size,
                            real,
                            sample_time_micros: r.try_get::<Option<i64>, _>("audience_time")?.unwrap_or(0),
                            prior,
                            rates,
                        })
                    }
                    _ => None,
                };
                let comments = match opt_u32(&r, "comments_total")? {
                    Some(total) => Some(CommentSummary {
                        total,
                        emoji_only: opt_u32(&r, "comments_emoji")?.unwrap_or(0),
                        generic: opt_u32(&r, "comments_generic")?.unwrap_or(0),
                        duplicate: opt_u32(&r, "comments_duplicate")?.unwrap_or(0),
                        short: opt_u32(&r, "comments_short")?.unwrap_or(0),
                    }),
                    None => None,
                };
                inputs.insert(
                    keyed(r.try_get("platform")?, r.try_get("handle")?),
                    Inputs { audience, comments },
                );
            }
            let mut q = by_keys(self.db.backend, "platform, handle, vetting", "accounts", chunk);
            for r in q.query().fetch_all(&mut *conn).await? {
                let bytes: Option<Vec<u8>> = r.try_get("vetting")?;
                if let Some(v) = bytes.filter(|b| !b.is_empty()) {
                    let v = AccountVetting::decode(v.as_slice()).map_err(|e| Error::internal("decode vetting", e))?;
                    previous.insert(keyed(r.try_get("platform")?, r.try_get("handle")?), v);
                }
            }
        }

        let model_version = format!("{SCORING_VERSION}/{}", Model::current().version());
        let thresholds = report::thresholds_message(&self.vetting);
        let mut report_rows = Vec::new();
        let mut account_rows = Vec::new();
        for (key, influencer_id) in accounts {
            let history = histories.get(key).map_or(&[][..], Vec::as_slice);
            let input = inputs.get(key).copied().unwrap_or_default();
            if history.is_empty() && input.audience.is_none() && input.comments.is_none() {
                continue;
            }
            let a = report::assess(
                &Evidence {
                    history,
                    tier: self.tiers.classify(history.last().map_or(0, |s| s.followers)),
                    audience: input.audience,
                    comments: input.comments,
                },
                &self.vetting,
            );
            let flags: Vec<i32> = a.flags.iter().map(|f| *f as i32).collect();
            let prev = previous.get(key);
            let changed = prev.is_none_or(|p| {
                p.verdict != a.verdict as i32
                    || p.flags != flags
                    || p.quality_score.round() != a.quality_score.round()
                    || p.signals_available != a.signals_available as i32
            });
            if !changed && !force {
                continue;
            }
            let id = uuid::Uuid::now_v7().to_string();
            let report = VettingReport {
                name: format!("influencers/{influencer_id}/vettingReports/{id}"),
                platform: key.platform,
                handle: key.handle.clone(),
                quality_score: a.quality_score,
                verdict: a.verdict as i32,
                signals: a.signals,
                real_follower_share: a.real_follower_share,
                flags: flags.clone(),
                model_version: model_version.clone(),
                compute_time: Some(micros_to_timestamp(now)),
                thresholds: Some(thresholds),
                coverage: a.coverage,
                signals_available: a.signals_available as i32,
                signals_total: report::WEIGHTS.len() as i32,
                thin_evidence: a.thin_evidence,
            };
            let gist = AccountVetting {
                quality_score: report.quality_score,
                verdict: report.verdict,
                flags: flags.clone(),
                report: report.name.clone(),
                compute_time: report.compute_time,
                signals_available: report.signals_available,
                signals_total: report.signals_total,
                thin_evidence: report.thin_evidence,
            };
            let previous_verdict = prev.map_or(Verdict::Unspecified as i32, |p| p.verdict);
            out.envelopes
                .push(events::vetting_reported(&self.clock, influencer_id, &report));
            if previous_verdict != report.verdict {
                let was = Verdict::try_from(previous_verdict).unwrap_or(Verdict::Unspecified);
                out.envelopes
                    .push(events::verdict_changed(&self.clock, influencer_id, was, &report));
            }
            if flags.iter().any(|f| prev.is_none_or(|p| !p.flags.contains(f))) {
                out.envelopes
                    .push(events::account_flagged(&self.clock, influencer_id, &report));
            }
            report_rows.push(vec![
                id.into(),
                influencer_id.clone().into(),
                key.platform.into(),
                key.handle.clone().into(),
                now.into(),
                report.encode_to_vec().into(),
            ]);
            account_rows.push(vec![
                key.platform.into(),
                key.handle.clone().into(),
                gist.encode_to_vec().into(),
                report.quality_score.into(),
                report.verdict.into(),
            ]);
            out.reports.insert(key.clone(), report);
        }
        for chunk in report_rows.chunks_mut(CHUNK) {
            let mut q = Sql::new(
                "INSERT INTO vetting_reports (id, influencer_id, platform, handle, compute_time, report) VALUES ",
            );
            for (i, r) in chunk.iter_mut().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.row(std::mem::take(r));
            }
            q.query().execute(&mut *conn).await?;
        }
        for chunk in account_rows.chunks_mut(CHUNK) {
            let mut q = Sql::new(
                "UPDATE accounts SET vetting = v.column3, quality_score = v.column4, verdict = v.column5 FROM (VALUES ",
            );
            for (i, r) in chunk.iter_mut().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.row(std::mem::take(r));
            }
            q.push(") AS v WHERE accounts.platform = v.column1 AND accounts.handle = v.column2");
            q.query().execute(&mut *conn).await?;
        }
        Ok(out)
    }

    /// The account's newest report.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db registry.latest_report", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn latest_report(&self, key: &AccountKey) -> Result<Option<VettingReport>, Error> {
        let row = Sql::new("SELECT vetting FROM accounts WHERE platform = ")
            .arg(key.platform)
            .push(" AND handle = ")
            .arg(key.handle.as_str())
            .query()
            .fetch_optional(&self.db.pool)
            .await?;
        let Some(row) = row else {
            return Err(Error::not_found(key));
        };
        let bytes: Option<Vec<u8>> = row.try_get("vetting")?;
        let Some(gist) = bytes.filter(|b| !b.is_empty()) else {
            return Ok(None);
        };
        let gist = AccountVetting::decode(gist.as_slice()).map_err(|e| Error::internal("decode vetting", e))?;
        let id = gist.report.rsplit('/').next().unwrap_or_default().to_owned();
        let row = Sql::new("SELECT report FROM vetting_reports WHERE id = ")
            .arg(id)
            .query()
            .fetch_optional(&self.db.pool)
            .await?;
        row.map(|r| {
            let bytes: Vec<u8> = r.try_get("report")?;
            VettingReport::decode(bytes.as_slice()).map_err(|e| Error::internal("decode report", e))
        })
        .transpose()
    }

    /// An influencer's reports, newest first, after the `(compute_time, id)` cursor.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db registry.reports", otel.kind = "client", db.system.name = self.db.system()))]
    pub async fn reports(
        &self,
        influencer_id: &str,
        account: Option<&AccountKey>,
        limit: usize,
        after: Option<&(i64, String)>,
    ) -> Result<Keyed<VettingReport>, Error> {
        let page = History {
            table: "vetting_reports",
            time: "compute_time",
            payload: "report",
        };
        page.read(&self.db, influencer_id, account, limit, after).await
    }
}

/// The influencer row's copies of its largest account: followers and engagement (List's sort
/// keys and filters), quality score and verdict (List's vetting filters).
pub(super) async fn refresh_copies(conn: &mut AnyConnection, ids: &[&str], now: i64) -> Result<(), Error> {
    for chunk in ids.chunks(CHUNK) {
        let mut q = Sql::new(
            "UPDATE influencers SET (followers, engagement_rate, quality_score, verdict) = \
             (SELECT a.followers, a.engagement_rate, a.quality_score, a.verdict FROM accounts a \
             WHERE a.influencer_id = influencers.id ORDER BY a.followers DESC, a.handle LIMIT 1), update_time = ",
        );
        q.arg(now).push(" WHERE id IN (").list(chunk.iter().copied()).push(")");
        q.query().execute(&mut *conn).await?;
    }
    Ok(())
}
