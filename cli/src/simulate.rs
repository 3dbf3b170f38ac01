//! `chorus simulate`: one campaign with N nanos against a running `chorus up --simulated-clock`,
//! playing every side but the brand's decisions, which it takes by a policy (accept every
//! offer, every counter within budget; review every post and approve it once its disclosure is
//! right). Each nano has a persona drawn from the seed: most accept, some decline or counter,
//! most post with a lawful disclosure, some with the mistakes DOMAIN.md lists (then fix them),
//! a few never deliver (the clock is moved past their due date and grace period). Shoppers
//! click the nanos' links and buy with their promo codes, one segment converting twice as often
//! as the other; some refund. The simulator ends by checking what the services did against
//! what it planted, and fails with the checks that did not hold.

mod persona;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

use chorus_proto::admin::{AdvanceClockRequest, GetTimeRequest};
use chorus_proto::contracts::{
    AcceptOfferRequest, Compensation, ContractState, CounterOfferRequest, CreateOffersRequest, DeclineOfferRequest,
    DeliverableState, DeliverableTerm, OfferTarget, OfferTemplate, ReportingDuty, ReviewDecision,
    ReviewDeliverableRequest, SetOfferTemplateRequest, SignContractRequest, Submission, SubmitDeliverableRequest,
    Terms, Verdict,
};
use chorus_proto::identity::{CreateInvitationRequest, IssueTokenRequest, issue_token_request::Grant};
use chorus_proto::measurement::{
    CampaignReport, CampaignSettings, GetCampaignReportRequest, ListLinksRequest, ListPromoCodesRequest, OrderInput,
    PostMetricsSnapshot, RecordConversionsRequest, RecordPostMetricsRequest, RecordRefundRequest, TestMetric,
    UpdateCampaignSettingsRequest,
};
use chorus_proto::payouts::{
    FundCampaignRequest, GetCampaignBudgetRequest, Method, Payee, PayoutState, RunPayoutsRequest, TaxForm,
    UpdatePayeeRequest, fund_campaign_request::Source,
};
use chorus_proto::registry::ListInfluencersRequest;
use chorus_proto::types::{DeliverableKind, Money, Platform, Tier};
use futures::{StreamExt, TryStreamExt, stream};
use prost_types::Timestamp;

use crate::campaign_data::{Clients, PAGE, Token, as_, bearer, every_page, list_contracts, list_offers, list_payouts};
use crate::client::ConnectArgs;
use crate::error::Result;
use crate::output::count;
use persona::{Answer, Persona, Post};

/// The brand's name in captions and in the offer template.
const BRAND: &str = "@pawsome";
/// What each nano is paid, and what a counter asks for (within the budget per head).
const CASH_MINOR: i64 = 25_000;
const COUNTER_MINOR: i64 = 27_500;
/// Days until the post is due, and the grace period after it before the contract is breached.
const DUE_DAYS: i64 = 7;
const GRACE_DAYS: i32 = 3;
/// Days after the post its metrics are due.
const REPORT_DAYS: i32 = 3;
/// Clicks on each delivering nano's link; the chance a click converts in each segment: the
/// planted difference (2×) the report must find significant.
const CLICKS_PER_NANO: usize = 10;
const CONVERSION_RATE: [f64; 2] = [0.12, 0.06];
/// Each order's revenue, and the share of orders refunded.
const ORDER_MINOR: i64 = 4_000;
const REFUND_RATE: f64 = 0.05;
/// How long to wait for what the services do on their own (events, timers, payouts).
const SETTLE: Duration = Duration::from_secs(120);
const DAY_MICROS: i64 = 86_400_000_000;

#[derive(clap::Args, Debug)]
pub(crate) struct SimulateArgs {
    /// How many nanos the campaign offers to (the catalogue is seeded if it has too few).
    #[arg(long, value_parser = clap::value_parser!(u64).range(10..=100_000))]
    influencers: u64,
    /// Random seed of the personas and shoppers: the same seed plays the same campaign.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// The two audience segments of the test (labels); nanos alternate between them, and the
    /// first converts twice as often.
    #[arg(long, value_delimiter = ',', default_value = "a,b", value_parser = segment_label)]
    segments: Vec<String>,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Measurement's link listener (GET /l/{code}), as HOST:PORT.
    #[arg(long, env = "CHORUS_LINKS_ADDR", default_value = "127.0.0.1:50056")]
    links_addr: String,
}

fn segment_label(s: &str) -> std::result::Result<String, String> {
    let s = s.trim();
    match !s.is_empty() && s.len() <= 40 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        true => Ok(s.to_owned()),
        false => Err(format!("segment \"{s}\": 1..40 letters, digits, - or _")),
    }
}

/// One nano of the campaign, and what became of them.
#[derive(Debug, Clone)]
struct Nano {
    influencer: String,
    segment: usize,
    persona: Persona,
    offer: String,
    token: Option<Token>,
    contract: Option<String>,
    /// The verdict of the first caption posted, if any.
    first_verdict: Option<Verdict>,
    approved: bool,
    clicks: usize,
    orders: usize,
}

/// Phase timings, printed at the end.
struct Timings {
    started: Instant,
    phase: Instant,
    done: Vec<(&'static str, Duration)>,
}

impl Timings {
    fn new() -> Self {
        let now = Instant::now();
        Timings {
            started: now,
            phase: now,
            done: Vec::new(),
        }
    }

    fn end(&mut self, phase: &'static str, detail: String) {
        let took = self.phase.elapsed();
        eprintln!(
            "[{:>6.1}s] {phase}: {detail} ({:.1}s)",
            self.started.elapsed().as_secs_f64(),
            took.as_secs_f64()
        );
        self.done.push((phase, took));
        self.phase = Instant::now();
    }
}

pub(crate) async fn run(args: SimulateArgs, connect_args: &ConnectArgs) -> Result<()> {
    if args.segments.len() != 2 || args.segments[0] == args.segments[1] {
        return Err("--segments takes two different labels, for example a,b".into());
    }
    let n = usize::try_from(args.influencers).map_err(|_| "--influencers is too large")?;
    let width = usize::from(args.concurrency);
    let brand = bearer(connect_args.token()?.expose())?;
    let c = Clients::connect(connect_args).await?;
    let time = c
        .clock
        .clone()
        .get_time(as_(&brand, GetTimeRequest {}))
        .await?
        .into_inner();
    if !time.simulated {
        return Err("the clock of this Chorus is the system's: start it with `chorus up --simulated-clock`".into());
    }
    let start = chorus_kit::clock::micros(&time.now.unwrap_or_default());
    let mut t = Timings::new();

    // The catalogue: N nanos, seeded if there are too few.
    let mut people = nanos(&c, &brand, n).await?;
    if people.len() < n {
        eprintln!("the catalogue has {} nanos of the {n} needed; seeding", people.len());
        let seeded = crate::seed::SeedArgs::new((n as u64 * 3).max(1_000), args.seed);
        crate::seed::run(seeded, connect_args, false).await?;
        people = nanos(&c, &brand, n).await?;
        if people.len() < n {
            return Err(format!("the catalogue has {} nanos after seeding, {n} needed", people.len()).into());
        }
    }
    t.end("catalogue", format!("{} nanos", count(n as i64)));

    // The campaign: where links go, the budget deposited, the offer template, the offers.
    let campaign = format!("campaigns/{}", uuid::Uuid::now_v7());
    let mut cl = c.clone();
    cl.measurement
        .update_campaign_settings(as_(
            &brand,
            UpdateCampaignSettingsRequest {
                settings: Some(CampaignSettings {
                    name: format!("{campaign}/measurementSettings"),
                    destination_url: "https://shop.example.com/treats".to_owned(),
                    audience_country: "US".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await?;
    let budget = usd(COUNTER_MINOR * n as i64);
    cl.ledger
        .fund_campaign(as_(
            &brand,
            FundCampaignRequest {
                campaign: campaign.clone(),
                deposit_id: format!("sim-{}", uuid::Uuid::now_v7()),
                amount: Some(budget.clone()),
                source: Some(Source::BankTransfer("SIMULATED".to_owned())),
            },
        ))
        .await?;
    let terms = Terms {
        deliverables: vec![DeliverableTerm {
            kind: DeliverableKind::FeedPost as i32,
            platform: Platform::Instagram as i32,
            count: 1,
            due_time: Some(chorus_kit::clock::timestamp(start + DUE_DAYS * DAY_MICROS)),
            brief: "A morning walk with the treats".to_owned(),
        }],
        compensation: Some(Compensation {
            cash: Some(usd(CASH_MINOR)),
            ..Default::default()
        }),
        disclosure_jurisdiction: "US".to_owned(),
        disclosure_language: "en".to_owned(),
        content_review: true,
        reporting: Some(ReportingDuty {
            metrics: ["impressions", "reach"].map(str::to_owned).to_vec(),
            due_days_after_post: REPORT_DAYS,
        }),
        grace_days: GRACE_DAYS,
        ..Default::default()
    };
    cl.contracts
        .set_offer_template(as_(
            &brand,
            SetOfferTemplateRequest {
                template: Some(OfferTemplate {
                    campaign: campaign.clone(),
                    terms: Some(terms.clone()),
                    offer_valid_days: 14,
                    brand_names: vec![BRAND.to_owned()],
                    brand_display_name: "Pawsome".to_owned(),
                    update_time: None,
                }),
            },
        ))
        .await?;
    let mut roster: Vec<Nano> = people
        .into_iter()
        .enumerate()
        .map(|(i, influencer)| Nano {
            influencer,
            segment: i % 2,
            persona: Persona::draw(args.seed, i as u64),
            offer: String::new(),
            token: None,
            contract: None,
            first_verdict: None,
            approved: false,
            clicks: 0,
            orders: 0,
        })
        .collect();
    for chunk in roster.chunks(500) {
        let targets = chunk
            .iter()
            .map(|nano| OfferTarget {
                influencer: nano.influencer.clone(),
                segment: args.segments[nano.segment].clone(),
            })
            .collect();
        let made = cl
            .contracts
            .create_offers(as_(
                &brand,
                CreateOffersRequest {
                    campaign: campaign.clone(),
                    targets,
                    ..Default::default()
                },
            ))
            .await?
            .into_inner();
        if !made.skipped.is_empty() {
            let why: Vec<String> = made
                .skipped
                .iter()
                .map(|s| format!("{}: {}", s.influencer, s.reason))
                .collect();
            return Err(format!("offers skipped: {}", why.join("; ")).into());
        }
    }
    let offers: HashMap<String, String> = list_offers(&c, &brand, &campaign)
        .await?
        .into_iter()
        .map(|o| (o.influencer, o.name))
        .collect();
    for nano in &mut roster {
        nano.offer = offers
            .get(&nano.influencer)
            .cloned()
            .ok_or_else(|| format!("no offer for {}", nano.influencer))?;
    }
    t.end(
        "campaign",
        format!("{campaign}: funded {}, {} offers", money(&budget), count(n as i64)),
    );

    // Each nano signs in from their invitation, answers, and both parties sign.
    let roster = each(roster, width, |mut nano| {
        let (c, brand, terms) = (c.clone(), brand.clone(), terms.clone());
        async move {
            respond(&c, &brand, &terms, &mut nano).await?;
            Ok(nano)
        }
    })
    .await?;
    let signed = roster.iter().filter(|x| x.contract.is_some()).count();
    t.end(
        "offers",
        format!(
            "{} accepted, {} declined, {} countered and accepted; {} contracts active",
            count(roster.iter().filter(|x| x.persona.answer == Answer::Accept).count() as i64),
            count(roster.iter().filter(|x| x.persona.answer == Answer::Decline).count() as i64),
            count(roster.iter().filter(|x| x.persona.answer == Answer::Counter).count() as i64),
            count(signed as i64),
        ),
    );

    // Posts: payee details, the caption (fixed when the checker or the brand says so), the
    // brand's review, the post's metrics.
    let now = c
        .clock
        .clone()
        .get_time(as_(&brand, GetTimeRequest {}))
        .await?
        .into_inner()
        .now;
    let roster = each(roster, width, |mut nano| {
        let (c, brand, now) = (c.clone(), brand.clone(), now);
        async move {
            deliver(&c, &brand, now, &mut nano).await?;
            Ok(nano)
        }
    })
    .await?;
    let approved = roster.iter().filter(|x| x.approved).count();
    t.end("posts", format!("{} posts approved", count(approved as i64)));
    let roster = each(roster, width, |nano| {
        let c = c.clone();
        async move {
            report_metrics(&c, now, &nano).await?;
            Ok(nano)
        }
    })
    .await?;
    t.end("metrics", format!("{} posts' metrics reported", count(approved as i64)));

    // Shoppers: clicks on the links, orders with the promo codes, some refunds.
    let (shopped, clicks, orders, refunds) = shop(&c, &brand, &campaign, roster, &args, width).await?;
    let roster = shopped;
    t.end(
        "shoppers",
        format!(
            "{} clicks, {} orders, {} refunds",
            count(clicks as i64),
            count(orders as i64),
            count(refunds as i64)
        ),
    );
    // Every refund returns its whole order, which takes the sale out of the report.
    let standing = orders - refunds;

    // Time passes: due dates and grace periods; those who never posted are in breach.
    let by = Duration::from_secs(u64::try_from((DUE_DAYS + i64::from(GRACE_DAYS) + 1) * 86_400).unwrap_or(0));
    c.clock
        .clone()
        .advance_clock(as_(
            &brand,
            AdvanceClockRequest {
                by: Some(by.try_into().map_err(|_| "a duration out of range")?),
            },
        ))
        .await?;
    let breaching = roster
        .iter()
        .filter(|x| x.contract.is_some() && x.persona.post == Post::Never)
        .count();
    let breached = settle("breached contracts", || {
        let (c, brand, campaign) = (c.clone(), brand.clone(), campaign.clone());
        async move {
            let got = list_contracts(&c, &brand, &campaign, ContractState::Breached)
                .await?
                .len();
            Ok((got >= breaching).then_some(got))
        }
    })
    .await;
    // Payouts hears of each breach by event and voids its hold; the checks wait for that.
    let voided = settle("holds voided", || {
        let (c, brand, campaign) = (c.clone(), brand.clone(), campaign.clone());
        async move {
            let breached = list_contracts(&c, &brand, &campaign, ContractState::Breached).await?;
            let payouts = list_payouts(&c, &brand, &campaign).await?;
            let voided = breached
                .iter()
                .filter(|k| {
                    let mut of = payouts.iter().filter(|p| p.contract == k.name).peekable();
                    of.peek().is_some() && of.all(|p| p.state == PayoutState::Voided as i32)
                })
                .count();
            Ok((voided >= breaching).then_some(voided))
        }
    })
    .await;
    t.end(
        "clock",
        format!(
            "{} days ahead; {} of {breaching} contracts breached, {} holds voided",
            by.as_secs() / 86_400,
            breached.as_ref().map_or(0, |b| *b),
            voided.as_ref().map_or(0, |v| *v)
        ),
    );

    // Payouts: runs until every approved post is paid.
    let paid = settle("payouts paid", || {
        let (c, brand, campaign) = (c.clone(), brand.clone(), campaign.clone());
        async move {
            c.payouts
                .clone()
                .run_payouts(as_(
                    &brand,
                    RunPayoutsRequest {
                        campaign: campaign.clone(),
                    },
                ))
                .await?;
            let paid = list_payouts(&c, &brand, &campaign)
                .await?
                .iter()
                .filter(|p| p.state == PayoutState::Paid as i32)
                .count();
            Ok((paid >= approved).then_some(paid))
        }
    })
    .await;
    t.end("payouts", format!("{} paid", paid.as_ref().map_or(0, |p| *p)));

    // The report, once the clicks and orders are counted.
    let report = settle("the report's clicks and conversions", || {
        let (c, brand, campaign) = (c.clone(), brand.clone(), campaign.clone());
        async move {
            let r = campaign_report(&c, &brand, &campaign).await?;
            let f = r.campaign_figures.clone().unwrap_or_default();
            Ok((f.clicks as usize >= clicks && f.conversions as usize >= standing).then_some(r))
        }
    })
    .await;
    let report = match report {
        Ok(r) => r,
        Err(_) => campaign_report(&c, &brand, &campaign).await?,
    };
    t.end("report", "counted".to_owned());
    print_report(&report);

    let failed = check(&c, &brand, &campaign, &roster, &report, clicks, standing, breaching).await?;
    outln!();
    outln!("Timings:");
    for (phase, took) in &t.done {
        outln!("  {phase:<10} {:>7.1}s", took.as_secs_f64());
    }
    outln!("  {:<10} {:>7.1}s", "total", t.started.elapsed().as_secs_f64());
    outln!("Where everyone stands: chorus campaigns status {campaign}");
    if failed.is_empty() {
        outln!("All checks passed.");
        Ok(())
    } else {
        Err(format!("{} checks failed:\n  {}", failed.len(), failed.join("\n  ")).into())
    }
}

fn usd(minor: i64) -> Money {
    Money {
        currency_code: "USD".to_owned(),
        amount_minor: minor,
    }
}

fn money(m: &Money) -> String {
    format!(
        "{} {}.{:02}",
        m.currency_code,
        m.amount_minor / 100,
        m.amount_minor % 100
    )
}

/// Runs `f` on every item, `width` at a time, showing progress; fails on the first error.
async fn each<F, Fut>(items: Vec<Nano>, width: usize, f: F) -> Result<Vec<Nano>>
where
    F: Fn(Nano) -> Fut,
    Fut: Future<Output = Result<Nano>>,
{
    let bar = indicatif::ProgressBar::new(items.len() as u64);
    let out: Vec<Nano> = stream::iter(items.into_iter().map(f))
        .buffer_unordered(width)
        .inspect_ok(|_| bar.inc(1))
        .try_collect()
        .await?;
    bar.finish_and_clear();
    Ok(out)
}

/// Polls `probe` until it gives a value, for at most [`SETTLE`]; the last error or a timeout.
async fn settle<T, F, Fut>(what: &str, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + SETTLE;
    loop {
        let last = match probe().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => "not yet".to_owned(),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            return Err(format!("waited {}s for {what}: {last}", SETTLE.as_secs()).into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Up to `n` nano influencers of the catalogue.
async fn nanos(c: &Clients, brand: &Token, n: usize) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(n);
    let mut page_token = String::new();
    loop {
        let page = c
            .registry
            .clone()
            .list_influencers(as_(
                brand,
                ListInfluencersRequest {
                    page_size: 1000,
                    page_token,
                    tiers: vec![Tier::Nano as i32],
                    ..Default::default()
                },
            ))
            .await?
            .into_inner();
        out.extend(page.influencers.into_iter().map(|i| i.name));
        if out.len() >= n || page.next_page_token.is_empty() {
            out.truncate(n);
            return Ok(out);
        }
        page_token = page.next_page_token;
    }
}

async fn campaign_report(c: &Clients, brand: &Token, campaign: &str) -> Result<CampaignReport> {
    c.measurement
        .clone()
        .get_campaign_report(as_(
            brand,
            GetCampaignReportRequest {
                campaign: campaign.to_owned(),
                metric: TestMetric::ConversionsPerClick as i32,
            },
        ))
        .await?
        .into_inner()
        .report
        .ok_or_else(|| "the server answered without a report".into())
}

/// The nano signs in from an invitation, answers the offer by their persona; when there is a
/// contract, both parties sign it.
async fn respond(c: &Clients, brand: &Token, terms: &Terms, nano: &mut Nano) -> Result<()> {
    let mut c = c.clone();
    let code = c
        .identity
        .create_invitation(as_(
            brand,
            CreateInvitationRequest {
                influencer: nano.influencer.clone(),
                ..Default::default()
            },
        ))
        .await?
        .into_inner()
        .code;
    let token = c
        .identity
        .issue_token(IssueTokenRequest {
            grant: Some(Grant::InvitationCode(code)),
            scopes: Vec::new(),
        })
        .await?
        .into_inner()
        .access_token;
    let me = bearer(&token)?;
    nano.token = Some(me.clone());
    let accepted = match nano.persona.answer {
        Answer::Decline => {
            c.contracts
                .decline_offer(as_(
                    &me,
                    DeclineOfferRequest {
                        name: nano.offer.clone(),
                        reason: "Booked that week".to_owned(),
                    },
                ))
                .await?;
            return Ok(());
        }
        Answer::Accept => c
            .contracts
            .accept_offer(as_(
                &me,
                AcceptOfferRequest {
                    name: nano.offer.clone(),
                    version: 1,
                },
            ))
            .await?
            .into_inner(),
        Answer::Counter => {
            let mut asked = terms.clone();
            asked.compensation = Some(Compensation {
                cash: Some(usd(COUNTER_MINOR)),
                ..Default::default()
            });
            let countered = c
                .contracts
                .counter_offer(as_(
                    &me,
                    CounterOfferRequest {
                        name: nano.offer.clone(),
                        version: 1,
                        terms: Some(asked),
                        message: "Two posts' worth of work; 275?".to_owned(),
                    },
                ))
                .await?
                .into_inner();
            let version = countered.offer.map_or(2, |o| o.version);
            // The brand's policy: a counter within the budget per head is accepted.
            c.contracts
                .accept_offer(as_(
                    brand,
                    AcceptOfferRequest {
                        name: nano.offer.clone(),
                        version,
                    },
                ))
                .await?
                .into_inner()
        }
    };
    let contract = accepted.contract.ok_or("an accepted offer without its contract")?;
    for (who, ip) in [(&me, "203.0.113.7"), (brand, "198.51.100.4")] {
        c.contracts
            .sign_contract(as_(
                who,
                SignContractRequest {
                    name: contract.name.clone(),
                    terms_version: contract.terms_version,
                    terms_sha256: contract.terms_sha256.clone(),
                    ip_address: ip.to_owned(),
                    user_agent: "chorus-simulate".to_owned(),
                },
            ))
            .await?;
    }
    nano.contract = Some(contract.name);
    Ok(())
}

/// The nano's payee details, their post (fixed until approved) and its metrics; the brand's
/// review. Those who never deliver set up their payee details only.
async fn deliver(c: &Clients, brand: &Token, now: Option<Timestamp>, nano: &mut Nano) -> Result<()> {
    let (Some(contract), Some(me)) = (nano.contract.clone(), nano.token.clone()) else {
        return Ok(());
    };
    let mut c = c.clone();
    let id = nano.influencer.trim_start_matches("influencers/").to_owned();
    c.payouts
        .update_payee(as_(
            &me,
            UpdatePayeeRequest {
                payee: Some(Payee {
                    name: format!("payees/{id}"),
                    legal_name: format!("Nano {}", &id[id.len().saturating_sub(6)..]),
                    email: format!("{id}@nanos.example.com"),
                    cash_method: Method::Paypal as i32,
                    paypal_email: format!("{id}@paypal.example.com"),
                    tax_form: TaxForm::W9 as i32,
                    tax_id: "123-45-6789".to_owned(),
                    tax_country: "US".to_owned(),
                    tax_form_signed_on: "2026-01-15".to_owned(),
                    us_person: true,
                    ..Default::default()
                }),
            },
        ))
        .await?;
    let Some(first) = nano.persona.caption(BRAND) else {
        return Ok(());
    };
    let deliverable = format!("{contract}/deliverables/1");
    let submit = |caption: String| SubmitDeliverableRequest {
        name: deliverable.clone(),
        submission: Some(Submission {
            url: format!("https://instagram.com/p/{id}"),
            platform: Platform::Instagram as i32,
            kind: DeliverableKind::FeedPost as i32,
            publish_time: now,
            caption,
            ..Default::default()
        }),
    };
    let mut posted = c
        .contracts
        .submit_deliverable(as_(&me, submit(first)))
        .await?
        .into_inner()
        .deliverable
        .unwrap_or_default();
    let verdict = |d: &chorus_proto::contracts::Deliverable| {
        d.submissions
            .last()
            .and_then(|s| s.check.as_ref())
            .map(|c| c.verdict())
            .unwrap_or(Verdict::Unspecified)
    };
    nano.first_verdict = Some(verdict(&posted));
    // At most one fix: the second caption is the right one.
    for _ in 0..2 {
        match posted.state() {
            DeliverableState::ChangesRequested => {
                posted = c
                    .contracts
                    .submit_deliverable(as_(&me, submit(persona::compliant(BRAND))))
                    .await?
                    .into_inner()
                    .deliverable
                    .unwrap_or_default();
            }
            DeliverableState::InReview => {
                // The brand's review: approve what the checker passed; send back the rest.
                let ok = verdict(&posted) == Verdict::Compliant;
                posted = c
                    .contracts
                    .review_deliverable(as_(
                        brand,
                        ReviewDeliverableRequest {
                            name: deliverable.clone(),
                            decision: if ok {
                                ReviewDecision::Approve
                            } else {
                                ReviewDecision::RequestChanges
                            } as i32,
                            reason: if ok {
                                String::new()
                            } else {
                                "Put #ad up front, please".to_owned()
                            },
                        },
                    ))
                    .await?
                    .into_inner()
                    .deliverable
                    .unwrap_or_default();
            }
            _ => break,
        }
    }
    if posted.state() == DeliverableState::InReview {
        posted = c
            .contracts
            .review_deliverable(as_(
                brand,
                ReviewDeliverableRequest {
                    name: deliverable.clone(),
                    decision: ReviewDecision::Approve as i32,
                    reason: String::new(),
                },
            ))
            .await?
            .into_inner()
            .deliverable
            .unwrap_or_default();
    }
    nano.approved = posted.state() == DeliverableState::Approved;
    Ok(())
}

/// The nano reports their approved post's metrics, once measurement has heard of the approval
/// (the duty it keeps is what lets them).
async fn report_metrics(c: &Clients, now: Option<Timestamp>, nano: &Nano) -> Result<()> {
    let (Some(contract), Some(me), true) = (&nano.contract, &nano.token, nano.approved) else {
        return Ok(());
    };
    let id = nano.influencer.trim_start_matches("influencers/");
    let seed = id
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let impressions = 1_500 + (seed % 3_000) as i64;
    let request = RecordPostMetricsRequest {
        deliverable: format!("{contract}/deliverables/1"),
        snapshot: Some(PostMetricsSnapshot {
            observe_time: now,
            impressions: Some(impressions),
            reach: Some(impressions * 4 / 5),
            likes: Some(impressions / 12),
            comments: Some(impressions / 90),
            ..Default::default()
        }),
        ..Default::default()
    };
    settle("measurement to hear of the approval", || {
        let (mut m, request) = (c.measurement.clone(), request.clone());
        async move {
            match m.record_post_metrics(as_(me, request)).await {
                Ok(_) => Ok(Some(())),
                Err(e) if e.code() == tonic::Code::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
    })
    .await
}

/// Shoppers: each delivering nano's link is clicked; some clicks become orders with the nano's
/// promo code, more often in the first segment; a few orders are refunded. Returns the roster
/// with what each nano brought, and the clicks, orders and refunds made.
async fn shop(
    c: &Clients,
    brand: &Token,
    campaign: &str,
    mut roster: Vec<Nano>,
    args: &SimulateArgs,
    width: usize,
) -> Result<(Vec<Nano>, usize, usize, usize)> {
    use rand::{Rng, SeedableRng};
    let active = roster.iter().filter(|x| x.contract.is_some()).count();
    // Measurement makes a link and a promo code for each contract as it starts.
    let (links, codes) = settle("every contract's link and promo code", || {
        let (c, brand, campaign) = (c.clone(), brand.clone(), campaign.to_owned());
        async move {
            let (links, codes) = links_and_codes(&c, &brand, &campaign).await?;
            Ok((links.len() >= active && codes.len() >= active).then_some((links, codes)))
        }
    })
    .await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ 0x5eed_5407);
    let mut clicks: Vec<String> = Vec::new();
    let mut orders: Vec<OrderInput> = Vec::new();
    let now = c
        .clock
        .clone()
        .get_time(as_(brand, GetTimeRequest {}))
        .await?
        .into_inner()
        .now;
    for nano in roster.iter_mut().filter(|x| x.approved) {
        let (Some(link), Some(code)) = (links.get(&nano.influencer), codes.get(&nano.influencer)) else {
            return Err(format!("no link or promo code for {}", nano.influencer).into());
        };
        for _ in 0..CLICKS_PER_NANO {
            clicks.push(link.clone());
            if rng.random::<f64>() < CONVERSION_RATE[nano.segment] {
                orders.push(OrderInput {
                    order_id: format!("sim-{}", uuid::Uuid::now_v7()),
                    order_time: now,
                    revenue: Some(usd(ORDER_MINOR)),
                    discount_codes: vec![code.clone()],
                    ..Default::default()
                });
                nano.orders += 1;
            }
        }
        nano.clicks = CLICKS_PER_NANO;
    }
    let clicked = clicks.len();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(width)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    stream::iter(clicks.into_iter().map(|code| click(&http, &args.links_addr, code)))
        .buffer_unordered(width)
        .try_collect::<Vec<()>>()
        .await?;
    let m = c.measurement.clone();
    for chunk in orders.chunks(500) {
        m.clone()
            .record_conversions(as_(
                brand,
                RecordConversionsRequest {
                    orders: chunk.to_vec(),
                    ..Default::default()
                },
            ))
            .await?;
    }
    let refunded: Vec<&OrderInput> = orders.iter().filter(|_| rng.random::<f64>() < REFUND_RATE).collect();
    stream::iter(refunded.iter().map(|o| {
        let mut m = m.clone();
        let request = as_(
            brand,
            RecordRefundRequest {
                order_id: o.order_id.clone(),
                refund_id: format!("{}-refund", o.order_id),
                amount: Some(usd(ORDER_MINOR)),
                ..Default::default()
            },
        );
        async move { m.record_refund(request).await }
    }))
    .buffer_unordered(width)
    .try_collect::<Vec<_>>()
    .await?;
    Ok((roster, clicked, orders.len(), refunded.len()))
}

/// The campaign's link codes and promo codes, by influencer.
async fn links_and_codes(
    c: &Clients,
    brand: &Token,
    campaign: &str,
) -> Result<(HashMap<String, String>, HashMap<String, String>)> {
    let links = every_page(|page_token| {
        let mut m = c.measurement.clone();
        let request = as_(
            brand,
            ListLinksRequest {
                campaign: campaign.to_owned(),
                page_size: PAGE,
                page_token,
                ..Default::default()
            },
        );
        async move {
            let page = m.list_links(request).await?.into_inner();
            Ok((page.links, page.next_page_token))
        }
    })
    .await?;
    let codes = every_page(|page_token| {
        let mut m = c.measurement.clone();
        let request = as_(
            brand,
            ListPromoCodesRequest {
                campaign: campaign.to_owned(),
                page_size: PAGE,
                page_token,
                ..Default::default()
            },
        );
        async move {
            let page = m.list_promo_codes(request).await?.into_inner();
            Ok((page.promo_codes, page.next_page_token))
        }
    })
    .await?;
    Ok((
        links.into_iter().map(|l| (l.influencer, l.code)).collect(),
        codes.into_iter().map(|p| (p.influencer, p.code)).collect(),
    ))
}

/// One shopper's click: GET /l/{code}, which must redirect. Shoppers share a pool of
/// keep-alive connections, as a browser keeps one to a site it visits again.
async fn click(http: &reqwest::Client, addr: &str, code: String) -> Result<()> {
    let answer = http
        .get(format!("http://{addr}/l/{code}"))
        .header(
            reqwest::header::USER_AGENT,
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        )
        .send()
        .await
        .map_err(|e| format!("link {code} at {addr}: {e}"))?;
    match answer.status() {
        reqwest::StatusCode::FOUND => Ok(()),
        other => Err(format!("link {code} answered {other}").into()),
    }
}

fn print_report(r: &CampaignReport) {
    outln!();
    outln!("Campaign report {}:", r.campaign);
    let mut t = crate::output::table(&[
        "segment",
        "influencers",
        "deliverables",
        "compliant",
        "clicks",
        "conversions",
        "revenue",
        "cost",
    ]);
    let rows = r
        .segments
        .iter()
        .map(|s| (s.segment.clone(), s.figures.clone().unwrap_or_default()))
        .chain(std::iter::once((
            "(campaign)".to_owned(),
            r.campaign_figures.clone().unwrap_or_default(),
        )));
    for (label, f) in rows {
        t.add_row(vec![
            label,
            f.influencers.to_string(),
            f.deliverables.to_string(),
            f.disclosure_compliant.to_string(),
            f.clicks.to_string(),
            f.conversions.to_string(),
            f.revenue.as_ref().map(money).unwrap_or_default(),
            f.cost.as_ref().map(money).unwrap_or_default(),
        ]);
    }
    outln!("{t}");
    if let Some(test) = &r.segment_test {
        outln!("{}", test.sentence);
    }
}

/// What the simulator planted against what the services did; the checks that failed.
#[allow(clippy::too_many_arguments)]
async fn check(
    c: &Clients,
    brand: &Token,
    campaign: &str,
    roster: &[Nano],
    report: &CampaignReport,
    clicks: usize,
    orders: usize,
    breaching: usize,
) -> Result<Vec<String>> {
    let mut failed = Vec::new();
    let mut passed = |ok: bool, what: String| {
        outln!("  [{}] {what}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(what);
        }
    };
    outln!();
    outln!("Checks:");
    let posted: Vec<&Nano> = roster.iter().filter(|x| x.first_verdict.is_some()).collect();
    let planted: Vec<&Nano> = posted
        .iter()
        .copied()
        .filter(|x| x.persona.mistake().is_some())
        .collect();
    let caught = planted
        .iter()
        .filter(|x| x.first_verdict != Some(Verdict::Compliant))
        .count();
    let mut missed: BTreeMap<&str, usize> = BTreeMap::new();
    for x in planted.iter().filter(|x| x.first_verdict == Some(Verdict::Compliant)) {
        *missed.entry(x.persona.mistake().unwrap_or_default()).or_default() += 1;
    }
    passed(
        caught == planted.len(),
        format!(
            "{caught} of {} planted non-compliant captions caught by the disclosure checker{}",
            planted.len(),
            if missed.is_empty() {
                String::new()
            } else {
                format!(" (missed: {missed:?})")
            }
        ),
    );
    let flagged = posted
        .iter()
        .filter(|x| x.persona.mistake().is_none() && x.first_verdict != Some(Verdict::Compliant))
        .count();
    passed(flagged == 0, format!("{flagged} compliant captions flagged"));

    let payouts = list_payouts(c, brand, campaign).await?;
    let mut per_contract: HashMap<&str, Vec<&chorus_proto::payouts::Payout>> = HashMap::new();
    for p in &payouts {
        per_contract.entry(p.contract.as_str()).or_default().push(p);
    }
    let paid_of = |contract: &str| {
        per_contract.get(contract).map_or(0, |ps| {
            ps.iter().filter(|p| p.state == PayoutState::Paid as i32).count()
        })
    };
    let approved: Vec<&Nano> = roster.iter().filter(|x| x.approved).collect();
    let paid_once = approved
        .iter()
        .filter(|x| x.contract.as_deref().is_some_and(|k| paid_of(k) == 1))
        .count();
    passed(
        paid_once == approved.len(),
        format!("{paid_once} of {} approved posts paid exactly once", approved.len()),
    );
    let paid_total: i64 = payouts
        .iter()
        .filter(|p| p.state == PayoutState::Paid as i32)
        .map(|p| p.amount.as_ref().map_or(0, |m| m.amount_minor))
        .sum();
    let budget = c
        .ledger
        .clone()
        .get_campaign_budget(as_(
            brand,
            GetCampaignBudgetRequest {
                campaign: campaign.to_owned(),
                currency_code: "USD".to_owned(),
            },
        ))
        .await?
        .into_inner();
    let minor = |m: &Option<Money>| m.as_ref().map_or(0, |m| m.amount_minor);
    let balances = minor(&budget.deposited) == minor(&budget.held) + minor(&budget.released) + minor(&budget.available);
    passed(
        balances && minor(&budget.released) == paid_total,
        format!(
            "the ledger balances: deposited {} = held {} + released {} + available {}; released = paid {}",
            minor(&budget.deposited),
            minor(&budget.held),
            minor(&budget.released),
            minor(&budget.available),
            paid_total
        ),
    );
    let breached = list_contracts(c, brand, campaign, ContractState::Breached).await?;
    let voided = breached
        .iter()
        .filter(|k| {
            per_contract
                .get(k.name.as_str())
                .is_some_and(|ps| !ps.is_empty() && ps.iter().all(|p| p.state == PayoutState::Voided as i32))
        })
        .count();
    passed(
        breached.len() == breaching && voided == breaching,
        format!(
            "{} of {breaching} contracts never delivered are breached, {voided} with their hold voided",
            breached.len()
        ),
    );
    let f = report.campaign_figures.clone().unwrap_or_default();
    passed(
        f.clicks as usize == clicks && f.conversions as usize == orders,
        format!(
            "the report counts {} of {clicks} clicks and {} of {orders} orders not refunded",
            f.clicks, f.conversions
        ),
    );
    let significant = report
        .segment_test
        .as_ref()
        .is_some_and(|t| t.differences.iter().any(|d| d.significant));
    passed(
        significant,
        format!(
            "the planted difference between the segments ({:.0}% vs {:.0}% of clicks converting) is found significant",
            CONVERSION_RATE[0] * 100.0,
            CONVERSION_RATE[1] * 100.0
        ),
    );
    Ok(failed)
}
