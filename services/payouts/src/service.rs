//! PayoutsService: payouts, runs, shipments, statements, reconciliation, the tax report and
//! the payee profile. Thin: each handler checks who calls and hands over to the store, the
//! runner, the shipments or the payee book.

use chorus_kit::Error;
use chorus_kit::auth::{Caller, role};
use chorus_kit::clock::micros;
use chorus_kit::idempotency::key_of;
use chorus_kit::names::{CampaignName, InfluencerName, PayeeName, PayoutName, ResourceName};
use chorus_proto::payouts::payouts_service_server::PayoutsService;
use chorus_proto::payouts::*;
use chorus_proto::types::Money;
use tonic::{Request, Response, Status};

use crate::api::{PayoutsApi, READ, SELF, TAX, WRITE, brand, reader};
use crate::store::{Filter, Who, id_of};

#[tonic::async_trait]
impl PayoutsService for PayoutsApi {
    async fn get_payout(&self, request: Request<GetPayoutRequest>) -> Result<Response<GetPayoutResponse>, Status> {
        Ok(Response::new(self.get(&request).await?))
    }

    async fn list_payouts(
        &self,
        request: Request<ListPayoutsRequest>,
    ) -> Result<Response<ListPayoutsResponse>, Status> {
        Ok(Response::new(self.list(&request).await?))
    }

    async fn run_payouts(&self, request: Request<RunPayoutsRequest>) -> Result<Response<RunPayoutsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(WRITE)?;
        let tenant = brand(caller)?;
        let r = request.get_ref();
        let campaign = if r.campaign.is_empty() {
            None
        } else {
            Some(CampaignName::from_field(&r.campaign, "campaign")?)
        };
        let answer = self
            .extra
            .runner
            .run_once(Some(&tenant), campaign.as_ref().map(|c| c.id()))
            .await?;
        Ok(Response::new(answer))
    }

    async fn reverse_payout(
        &self,
        request: Request<ReversePayoutRequest>,
    ) -> Result<Response<ReversePayoutResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        caller.require(WRITE)?;
        let tenant = brand(&caller)?;
        let r = request.get_ref();
        let mut v = chorus_kit::Violations::new();
        let name = v.take(PayoutName::from_field(&r.name, "name"))?;
        v.check(
            r.reason.trim().is_empty() || r.reason.chars().count() > 500,
            "reason",
            "1..500 characters",
        );
        v.finish()?;
        let Some(name) = name else {
            return Err(Error::invalid_field("name", "required").into());
        };
        let extra = self.extra.clone();
        let reason = r.reason.trim().to_owned();
        let key = key_of(&request, "");
        let payout = self
            .keys()
            .once(
                &caller,
                "ReversePayout",
                &key,
                request.get_ref(),
                move |_claim| async move { extra.reverse(&tenant, name.id(), &reason).await },
            )
            .await?;
        Ok(Response::new(ReversePayoutResponse { payout: Some(payout) }))
    }

    async fn update_shipment(
        &self,
        request: Request<UpdateShipmentRequest>,
    ) -> Result<Response<UpdateShipmentResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(WRITE)?;
        let tenant = brand(caller)?;
        let r = request.get_ref();
        let name = PayoutName::from_field(&r.name, "name")?;
        let mut v = chorus_kit::Violations::new();
        v.check(r.carrier.chars().count() > 50, "carrier", "at most 50 characters");
        v.check(
            r.tracking_code.chars().count() > 100,
            "tracking_code",
            "at most 100 characters",
        );
        v.check(
            !r.status.is_empty() && !crate::shipments::STATUSES.contains(&r.status.as_str()),
            "status",
            format!("one of {}", crate::shipments::STATUSES.join(", ")),
        );
        v.check(
            r.carrier.is_empty() && r.tracking_code.is_empty() && r.status.is_empty(),
            "status",
            "set a carrier and tracking code, or a status",
        );
        v.finish()?;
        let payout = self
            .extra
            .shipments
            .update(&Who::Brand(tenant), name.id(), &r.carrier, &r.tracking_code, &r.status)
            .await?;
        Ok(Response::new(UpdateShipmentResponse { payout: Some(payout) }))
    }

    async fn get_statement(
        &self,
        request: Request<GetStatementRequest>,
    ) -> Result<Response<GetStatementResponse>, Status> {
        let who = reader(Caller::of(&request)?)?;
        let r = request.get_ref();
        let influencer = InfluencerName::from_field(&r.influencer, "influencer")?;
        if let Who::Influencer(me) = &who
            && me != influencer.id()
        {
            return Err(Error::permission_denied("an influencer reads only their own statement").into());
        }
        if r.year != 0 && !(2000..=2100).contains(&r.year) {
            return Err(Error::invalid_field("year", "from 2000 to 2100, or 0 for all years").into());
        }
        let filter = Filter {
            influencer_id: Some(influencer.id().to_owned()),
            ..Filter::default()
        };
        let payouts = self.store().payouts(&who, &filter, None, 100_000).await?;
        let mut statement = statement(&influencer.to_string(), payouts, r.year);
        // The pseudonym once the payee is erased; the legal name only to the payee themself,
        // since a brand never reads a payee's personal details.
        if let Some(payee) = self.extra.payees.get(influencer.id()).await? {
            let shown = match &who {
                Who::Influencer(_) => Some(payee.display_name()),
                _ => payee.pseudonym(),
            };
            shown.unwrap_or_default().clone_into(&mut statement.payee);
        }
        Ok(Response::new(GetStatementResponse {
            statement: Some(statement),
        }))
    }

    async fn reconcile(&self, request: Request<ReconcileRequest>) -> Result<Response<ReconcileResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(READ)?;
        let tenant = brand(caller)?;
        let r = request.get_ref();
        let campaign = if r.campaign.is_empty() {
            None
        } else {
            Some(CampaignName::from_field(&r.campaign, "campaign")?)
        };
        let answer = self.extra.reconcile(&tenant, campaign.as_ref().map(|c| c.id())).await?;
        Ok(Response::new(answer))
    }

    async fn get_tax_report(
        &self,
        request: Request<GetTaxReportRequest>,
    ) -> Result<Response<GetTaxReportResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(READ)?;
        let tenant = brand(caller)?;
        let r = request.get_ref();
        if !(2000..=2100).contains(&r.year) {
            return Err(Error::invalid_field("year", "from 2000 to 2100").into());
        }
        if r.unmasked {
            caller.require(TAX)?;
        }
        Ok(Response::new(self.extra.tax_report(&tenant, r.year, r.unmasked).await?))
    }

    async fn get_payee(&self, request: Request<GetPayeeRequest>) -> Result<Response<GetPayeeResponse>, Status> {
        let me = own_payee(Caller::of(&request)?, &request.get_ref().name, "name")?;
        let record = self.extra.payees.get(&me).await?.ok_or_else(|| {
            Error::new(
                chorus_kit::ErrorCode::NotFound,
                format!("payees/{me} has no profile yet: set it with UpdatePayee"),
            )
        })?;
        Ok(Response::new(GetPayeeResponse {
            payee: Some(record.masked(crate::payees::today(self.store().clock().now_micros()))),
        }))
    }

    async fn update_payee(
        &self,
        request: Request<UpdatePayeeRequest>,
    ) -> Result<Response<UpdatePayeeResponse>, Status> {
        let r = request.get_ref();
        let patch = r
            .payee
            .as_ref()
            .ok_or_else(|| Error::invalid_field("payee", "required"))?;
        let me = own_payee(Caller::of(&request)?, &patch.name, "payee.name")?;
        let record = self.extra.payees.update(&me, patch).await?;
        Ok(Response::new(UpdatePayeeResponse {
            payee: Some(record.masked(crate::payees::today(self.store().clock().now_micros()))),
        }))
    }
}

/// The payee profile is the influencer's own: nobody else reads or writes it.
fn own_payee(caller: &Caller, name: &str, field: &str) -> Result<String, Error> {
    let payee = PayeeName::from_field(name, field)?;
    if caller.role != role::INFLUENCER {
        return Err(Error::permission_denied(
            "a payee profile is kept by the influencer themselves",
        ));
    }
    caller.require(SELF)?;
    match caller.influencer() {
        Some(me) if me == payee.id() => Ok(me.to_owned()),
        _ => Err(Error::permission_denied(
            "an influencer keeps only their own payee profile",
        )),
    }
}

/// States in which a released payout is owed but not yet paid.
const OWED: [PayoutState; 4] = [
    PayoutState::Approved,
    PayoutState::Blocked,
    PayoutState::Submitted,
    PayoutState::Failed,
];

/// An influencer's statement from their payouts: oldest first, `year` (of approval or payment)
/// or all, with totals paid and owed per currency.
pub fn statement(influencer: &str, mut payouts: Vec<Payout>, year: i32) -> Statement {
    payouts.sort_by(|a, b| a.name.cmp(&b.name));
    let in_year = |p: &Payout| {
        year == 0
            || [p.paid_time.as_ref(), p.approve_time.as_ref(), p.create_time.as_ref()]
                .into_iter()
                .flatten()
                .next()
                .is_some_and(|t| year_of(micros(t)) == year)
    };
    let mut paid: std::collections::BTreeMap<String, i64> = Default::default();
    let mut owed: std::collections::BTreeMap<String, i64> = Default::default();
    let mut lines = Vec::new();
    for p in payouts.iter().filter(|p| in_year(p)) {
        let state = PayoutState::try_from(p.state).unwrap_or(PayoutState::Unspecified);
        let amount = p.amount.clone().unwrap_or_default();
        if state == PayoutState::Paid {
            *paid.entry(amount.currency_code.clone()).or_default() += amount.amount_minor;
        } else if OWED.contains(&state) {
            *owed.entry(amount.currency_code.clone()).or_default() += amount.amount_minor;
        }
        lines.push(StatementLine {
            payout: p.name.clone(),
            contract: p.contract.clone(),
            deliverable: p.deliverable.clone(),
            campaign: p.campaign.clone(),
            kind: p.kind,
            amount: p.amount.clone(),
            state: p.state,
            description: describe(p),
            approve_time: p.approve_time,
            paid_time: p.paid_time,
            provider_reference: p.provider_reference.clone(),
        });
    }
    let totals = |m: std::collections::BTreeMap<String, i64>| {
        m.into_iter()
            .filter(|(_, v)| *v != 0)
            .map(|(currency_code, amount_minor)| Money {
                currency_code,
                amount_minor,
            })
            .collect()
    };
    Statement {
        influencer: influencer.to_owned(),
        payee: String::new(),
        lines,
        paid: totals(paid),
        owed: totals(owed),
    }
}

/// A payout in words, for statements.
fn describe(p: &Payout) -> String {
    let deliverable = p.deliverable.rsplit('/').next().unwrap_or("");
    match PayoutKind::try_from(p.kind).unwrap_or(PayoutKind::Unspecified) {
        PayoutKind::Cash => format!(
            "cash for deliverable {deliverable} of {}",
            id_of(&p.contract, "contracts")
        ),
        PayoutKind::GiftCard => format!("{} gift card", p.gift_card_brand),
        PayoutKind::Product => p
            .shipment
            .as_ref()
            .map(|s| format!("{} x {} {}", s.quantity, s.sku, s.title))
            .unwrap_or_else(|| "product".into()),
        PayoutKind::Unspecified => String::new(),
    }
}

/// The calendar year (UTC) of a time in unix micros.
pub fn year_of(micros: i64) -> i32 {
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let days = micros.div_euclid(86_400_000_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    i32::try_from(year).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_turn_at_midnight_utc() {
        // 2025-12-31T23:59:59Z and 2026-01-01T00:00:00Z.
        assert_eq!(year_of(1_767_225_599_000_000), 2025);
        assert_eq!(year_of(1_767_225_600_000_000), 2026);
        assert_eq!(year_of(0), 1970);
        assert_eq!(year_of(951_782_400_000_000), 2000); // 2000-02-29
    }

    fn payout(n: &str, kind: PayoutKind, minor: i64, state: PayoutState) -> Payout {
        Payout {
            name: format!("payouts/{n}"),
            contract: "contracts/c".into(),
            deliverable: "contracts/c/deliverables/2".into(),
            kind: kind as i32,
            amount: Some(Money {
                currency_code: "USD".into(),
                amount_minor: minor,
            }),
            state: state as i32,
            gift_card_brand: "Amazon".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_statement_totals_what_was_paid_and_what_is_owed() {
        let s = statement(
            "influencers/i",
            vec![
                payout("b", PayoutKind::GiftCard, 2_500, PayoutState::Approved),
                payout("a", PayoutKind::Cash, 10_000, PayoutState::Paid),
                payout("c", PayoutKind::Cash, 10_000, PayoutState::Held),
                payout("d", PayoutKind::Cash, 700, PayoutState::Voided),
            ],
            0,
        );
        assert_eq!(s.lines.len(), 4);
        assert_eq!(s.lines[0].description, "cash for deliverable 2 of c");
        assert_eq!(s.lines[1].description, "Amazon gift card");
        assert_eq!(
            s.paid,
            [Money {
                currency_code: "USD".into(),
                amount_minor: 10_000
            }]
        );
        assert_eq!(
            s.owed,
            [Money {
                currency_code: "USD".into(),
                amount_minor: 2_500
            }],
            "held is not owed yet, voided never"
        );
    }
}
