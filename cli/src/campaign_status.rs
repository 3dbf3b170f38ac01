//! `chorus campaigns status CAMPAIGN`: where each person of a campaign stands, across services,
//! from their list RPCs: matching's shortlists, contracts' offers, contracts and deliverables,
//! payouts' payouts. Counts per stage, and the people stuck with the reason (a contract left
//! unfunded, a payout blocked or failed, a post overdue).

use std::collections::BTreeMap;

use chorus_proto::contracts::{
    ContractState, Deliverable, DeliverableState, ListDeliverablesRequest, OfferState, Party,
};
use chorus_proto::matching::{Decision, ListShortlistsRequest};
use chorus_proto::payouts::PayoutState;
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::json;

use crate::campaign_data::{Clients, PAGE, as_, bearer, every_page, list_contracts, list_offers, list_payouts};
use crate::client::ConnectArgs;
use crate::error::Result;
use crate::output::{self, count};

/// Contracts whose deliverables are read at once.
const IN_FLIGHT: usize = 16;
/// Stuck people listed in the table; JSON lists them all.
const STUCK_SHOWN: usize = 20;

/// The stages, in the order a person goes through them.
const STAGES: [&str; 14] = [
    "shortlisted",
    "offered",
    "accepted",
    "declined",
    "countered",
    "signed",
    "active",
    "delivered",
    "approved",
    "paid",
    "completed",
    "overdue",
    "breached",
    "unfunded",
];

pub(crate) async fn run(campaign: String, connect: &ConnectArgs, json: bool) -> Result<()> {
    let brand = bearer(connect.token()?.expose())?;
    let c = Clients::connect(connect).await?;
    let matching = connect.matching().await?;
    let mut counts: BTreeMap<&str, usize> = STAGES.iter().map(|s| (*s, 0)).collect();
    let mut stuck: Vec<(String, String)> = Vec::new();

    let shortlists = every_page(|page_token| {
        let mut matching = matching.clone();
        let request = ListShortlistsRequest {
            parent: campaign.clone(),
            page_size: PAGE,
            page_token,
        };
        async move {
            match matching.list_shortlists(request).await {
                Ok(page) => {
                    let page = page.into_inner();
                    Ok((page.shortlists, page.next_page_token))
                }
                // Offers made to people directly, with no campaign in matching: no shortlists.
                Err(e) if e.code() == tonic::Code::NotFound => Ok((Vec::new(), String::new())),
                Err(e) => Err(e.into()),
            }
        }
    })
    .await?;
    *counts.entry("shortlisted").or_default() += shortlists
        .iter()
        .flat_map(|s| &s.members)
        .filter(|m| m.decision == Decision::Accepted as i32)
        .count();
    for o in list_offers(&c, &brand, &campaign).await? {
        *counts.entry("offered").or_default() += 1;
        let stage = match o.state() {
            OfferState::Accepted => Some("accepted"),
            OfferState::Declined => Some("declined"),
            _ => None,
        };
        if let Some(stage) = stage {
            *counts.entry(stage).or_default() += 1;
        }
        if o.versions.iter().any(|v| v.proposed_by == Party::Influencer as i32) {
            *counts.entry("countered").or_default() += 1;
        }
    }
    let contracts = list_contracts(&c, &brand, &campaign, ContractState::Unspecified).await?;
    for k in &contracts {
        let stage = match k.state() {
            ContractState::Active => Some("active"),
            ContractState::Completed => Some("completed"),
            ContractState::Breached => Some("breached"),
            _ => None,
        };
        if k.signatures.len() >= 2 {
            *counts.entry("signed").or_default() += 1;
        }
        if let Some(stage) = stage {
            *counts.entry(stage).or_default() += 1;
        }
        if k.funding == chorus_proto::contracts::Funding::Unfunded as i32 {
            *counts.entry("unfunded").or_default() += 1;
            stuck.push((k.influencer.clone(), format!("unfunded: {}", k.reason)));
        }
    }
    // The posts of the contracts that owe them.
    let owing: Vec<String> = contracts
        .iter()
        .filter(|k| {
            matches!(
                k.state(),
                ContractState::Active | ContractState::Completed | ContractState::Breached
            )
        })
        .map(|k| k.name.clone())
        .collect();
    let deliverables: Vec<Vec<Deliverable>> = stream::iter(owing.into_iter().map(|parent| {
        let (mut contracts, brand) = (c.contracts.clone(), brand.clone());
        async move {
            let page = contracts
                .list_deliverables(as_(&brand, ListDeliverablesRequest { parent }))
                .await?
                .into_inner();
            Ok::<_, crate::error::Error>(page.deliverables)
        }
    }))
    .buffer_unordered(IN_FLIGHT)
    .try_collect()
    .await?;
    for d in deliverables.iter().flatten() {
        if !d.submissions.is_empty() {
            *counts.entry("delivered").or_default() += 1;
        }
        if d.state() == DeliverableState::Approved {
            *counts.entry("approved").or_default() += 1;
        }
        if d.overdue {
            *counts.entry("overdue").or_default() += 1;
        }
    }
    for p in list_payouts(&c, &brand, &campaign).await? {
        match p.state() {
            PayoutState::Paid => *counts.entry("paid").or_default() += 1,
            PayoutState::Blocked => stuck.push((p.influencer.clone(), format!("payout blocked: {}", p.blocked_reason))),
            PayoutState::Failed => stuck.push((p.influencer.clone(), format!("payout failed: {}", p.failure_reason))),
            _ => {}
        }
    }
    stuck.sort();

    if json {
        return output::print_json(&json!({
            "campaign": campaign,
            "counts": counts,
            "stuck": stuck.iter().map(|(who, why)| json!({"influencer": who, "reason": why})).collect::<Vec<_>>(),
        }));
    }
    outln!("{campaign}");
    let mut t = output::table(&["stage", "people"]);
    for stage in STAGES {
        t.add_row(vec![stage.to_owned(), count(counts[stage] as i64)]);
    }
    outln!("{t}");
    if stuck.is_empty() {
        outln!("Nobody is stuck.");
        return Ok(());
    }
    outln!("Stuck ({}):", count(stuck.len() as i64));
    for (who, why) in stuck.iter().take(STUCK_SHOWN) {
        outln!("  {who}  {why}");
    }
    if stuck.len() > STUCK_SHOWN {
        outln!(
            "  ... and {} more (--json lists them all)",
            count((stuck.len() - STUCK_SHOWN) as i64)
        );
    }
    Ok(())
}
