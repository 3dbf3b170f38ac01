//! When a campaign's report is ready, and `ReportReady`, once per campaign.
//!
//! The rule, here and nowhere else: a campaign's report is ready when every measurement duty
//! of its approved posts is settled, each met or past its due time, so nothing more is owed
//! and the figures will only move by late clicks and orders. Two things can settle the last
//! duty, and each sets the campaign's `ReportDue` timer (on the kit's durable timers,
//! replacing the one before): a duty added sets it for the latest due time of the campaign's
//! duties; the snapshot that meets the last unmet duty early sets it for now. When it fires,
//! the duties are read again (one added since moved the timer on) and, if all are settled,
//! the report is built and `ReportReady` written to the outbox with a row of
//! `reports_ready` in one transaction, so it is said once even if the timer fires twice. A
//! campaign without any measurement duty is never "ready" by itself; its report is there on
//! request (`GetCampaignReport`).

use chorus_kit::Error;
use chorus_kit::clock::{Micros, timestamp};
use chorus_kit::events::envelope;
use chorus_proto::measurement::{ReportDue, ReportReady};
use sqlx::{AnyConnection, Row};

use super::report::CampaignFacts;
use super::{Store, TIMER_TOPIC, TOPIC};

/// Whether duties are all settled: some exist and none is unmet before its due time.
pub fn settled(duties: i64, unsettled: i64) -> bool {
    duties > 0 && unsettled == 0
}

fn timer(tenant: &str, campaign_id: &str) -> String {
    format!("measurement:report:{tenant}:{campaign_id}")
}

impl Store {
    /// The campaign's duties: how many, and how many are neither met nor past due at `now`.
    async fn duty_counts(
        &self,
        conn: &mut AnyConnection,
        tenant: &str,
        campaign_id: &str,
        now: Micros,
    ) -> Result<(i64, i64), Error> {
        let r = sqlx::query(
            "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN met_time IS NULL AND due_time > $3 THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM duties WHERE tenant = $1 AND campaign_id = $2",
        )
        .bind(tenant)
        .bind(campaign_id)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        Ok((r.try_get(0)?, r.try_get(1)?))
    }

    /// Sets the campaign's `ReportDue` timer, inside the transaction that added or met a duty:
    /// for `at`, or (None) the latest due time of its duties. Nothing once it was reported.
    pub(super) async fn schedule_report_due(
        &self,
        conn: &mut AnyConnection,
        tenant: &str,
        campaign_id: &str,
        at: Option<Micros>,
    ) -> Result<(), Error> {
        let done: Option<i64> =
            sqlx::query_scalar("SELECT ready_time FROM reports_ready WHERE tenant = $1 AND campaign_id = $2")
                .bind(tenant)
                .bind(campaign_id)
                .fetch_optional(&mut *conn)
                .await?;
        if done.is_some() {
            return Ok(());
        }
        let at = match at {
            Some(at) => at,
            None => {
                let latest: Option<i64> =
                    sqlx::query_scalar("SELECT MAX(due_time) FROM duties WHERE tenant = $1 AND campaign_id = $2")
                        .bind(tenant)
                        .bind(campaign_id)
                        .fetch_one(&mut *conn)
                        .await?;
                let Some(latest) = latest else { return Ok(()) };
                latest
            }
        };
        let due = ReportDue {
            campaign: format!("campaigns/{campaign_id}"),
        };
        let e = envelope(&self.clock, tenant, &due);
        self.timers
            .schedule(conn, &timer(tenant, campaign_id), at, TIMER_TOPIC, &e)
            .await
    }

    /// After the snapshot that met a duty (in its transaction): when it was the campaign's
    /// last unsettled one, the report is due now.
    pub(super) async fn duty_met(
        &self,
        conn: &mut AnyConnection,
        tenant: &str,
        deliverable: &str,
    ) -> Result<(), Error> {
        let campaign: Option<String> =
            sqlx::query_scalar("SELECT campaign_id FROM duties WHERE tenant = $1 AND deliverable = $2")
                .bind(tenant)
                .bind(deliverable)
                .fetch_optional(&mut *conn)
                .await?;
        let Some(campaign) = campaign else { return Ok(()) };
        let now = self.now();
        let (duties, unsettled) = self.duty_counts(conn, tenant, &campaign, now).await?;
        if settled(duties, unsettled) {
            self.schedule_report_due(conn, tenant, &campaign, Some(now)).await?;
        }
        Ok(())
    }

    /// The `ReportDue` timer fired: if every duty of the campaign is settled, `ReportReady`
    /// with the report's headline (`summary` of its facts), once. Whether it was published now.
    pub async fn report_due(
        &self,
        tenant: &str,
        campaign_id: &str,
        summary: impl FnOnce(&CampaignFacts, Micros) -> String,
    ) -> Result<bool, Error> {
        let now = self.now();
        let mut conn = self.db.pool.acquire().await?;
        let (duties, unsettled) = self.duty_counts(&mut conn, tenant, campaign_id, now).await?;
        drop(conn);
        if !settled(duties, unsettled) {
            return Ok(false); // a duty added since set the timer again
        }
        let facts = self.campaign_facts(tenant, campaign_id).await?;
        let ready = ReportReady {
            campaign: format!("campaigns/{campaign_id}"),
            data_through_time: Some(timestamp(now)),
            summary: summary(&facts, now),
        };
        let mut tx = self.db.pool.begin().await?;
        let fresh = sqlx::query(
            "INSERT INTO reports_ready (tenant, campaign_id, ready_time) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(campaign_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if fresh.rows_affected() != 1 {
            return Ok(false);
        }
        self.outbox
            .add(&mut tx, TOPIC, &envelope(&self.clock, tenant, &ready))
            .await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::settled;

    #[test]
    fn a_report_is_ready_when_every_duty_is_settled() {
        assert!(settled(3, 0));
        assert!(!settled(3, 1), "one still owed before its due time");
        assert!(!settled(0, 0), "a campaign without duties is never ready by itself");
    }
}
