//! The campaign report over real gRPC and HTTP on loopback, on PostgreSQL and SQLite: a
//! campaign of three segments fed the way production feeds it (matching's shortlist decisions,
//! contracts' activations and approvals, payouts' paid and reversed payouts on the bus; clicks
//! through the redirect; orders by RPC; post metrics by RPC), then `GetCampaignReport` checked
//! against figures computed by hand, with one segment difference significant and another not;
//! a malformed campaign name is INVALID_ARGUMENT and another tenant's campaign NOT_FOUND.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use chorus_kit::clock::{Clock, timestamp};
use chorus_kit::events::envelope;
use chorus_kit::runtime::Launched;
use chorus_proto::contracts::{
    CheckDisclosureResponse, Contract, ContractActivated, DeliverableApproved, DeliverableOverdue, DeliverableTerm,
    Submission, Terms, Verdict,
};
use chorus_proto::matching::{Candidate, Decision, ShortlistMemberDecided};
use chorus_proto::measurement::measurement_service_client::MeasurementServiceClient;
use chorus_proto::measurement::*;
use chorus_proto::payouts::{PayoutPaid, PayoutReversed};
use chorus_proto::types::{Money, Tier};
use chorus_testkit::{Authed, Backend, Stack, eventually, on_both_backends};
use tonic::Code;
use tonic_types::StatusExt;

const CAMPAIGN: &str = "campaigns/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70";
/// 2027-01-15T08:00:00Z.
const START: i64 = 1_800_000_000_000_000;
const DEST: &str = "https://shop.example.com/spring";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const DIRECT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

/// Ten influencers per segment: (clicks, conversions) each. Austin converts at 10.5%, Denver
/// at 3.25% and Portland at 3.5%: Austin against either is a real difference, Denver against
/// Portland is noise.
const AUSTIN: [(u32, u32); 10] = [
    (40, 4),
    (40, 5),
    (40, 3),
    (40, 4),
    (40, 6),
    (40, 4),
    (40, 5),
    (40, 3),
    (40, 4),
    (40, 4),
];
const DENVER: [(u32, u32); 10] = [
    (40, 1),
    (40, 2),
    (40, 1),
    (40, 1),
    (40, 2),
    (40, 1),
    (40, 1),
    (40, 2),
    (40, 1),
    (40, 1),
];
const PORTLAND: [(u32, u32); 10] = [
    (40, 1),
    (40, 2),
    (40, 2),
    (40, 1),
    (40, 1),
    (40, 2),
    (40, 1),
    (40, 1),
    (40, 2),
    (40, 1),
];
/// Every order is $25.00.
const ORDER_MINOR: i64 = 2_500;
/// Each influencer is paid $50.00 cash; Austin's also get a $20.00 gift card, and the first
/// Denver influencer a product worth $30.00.
const CASH: i64 = 5_000;
const GIFT: i64 = 2_000;
const PRODUCT: i64 = 3_000;
/// Planned cost per influencer (matching's estimate).
const PLANNED: i64 = 6_000;

struct App {
    stack: Stack,
    svc: Launched,
    http: String,
    brand: String,
    other: String,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn spawn(backend: Backend) -> App {
    let mut stack = Stack::with_clock(backend, Clock::manual(START));
    let db_url = stack.database().await;
    let port = free_port();
    let settings = vec![("CHORUS_MEASUREMENT_HTTP_ADDR", format!("127.0.0.1:{port}"))];
    let svc = stack.launch(&chorus_measurement::SERVICE, &db_url, &settings).await;
    let scopes = ["measurement.read", "measurement.write"];
    let app = App {
        brand: stack.token("acme", &scopes),
        other: stack.token("globex", &scopes),
        stack,
        svc,
        http: format!("http://127.0.0.1:{port}"),
    };
    let probe = format!("{}/l/zzzzzzzz", app.http);
    eventually(Duration::from_secs(10), || {
        let probe = probe.clone();
        async move { reqwest::get(&probe).await.map(|_| ()) }
    })
    .await;
    app
}

fn usd(minor: i64) -> Option<Money> {
    Some(Money {
        currency_code: "USD".into(),
        amount_minor: minor,
    })
}

fn minor(m: &Option<Money>) -> i64 {
    let m = m.as_ref().expect("money set");
    assert_eq!(m.currency_code, "USD");
    m.amount_minor
}

/// "influencers/…", "contracts/…" and "payouts/…" ids of influencer `i` (0..30).
fn name(collection: &str, i: usize) -> String {
    let tag = match collection {
        "influencers" => 'a',
        "contracts" => 'b',
        _ => 'c',
    };
    format!("{collection}/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f{tag}{i:03}")
}

fn segment_of(i: usize) -> (&'static str, (u32, u32), Tier) {
    match i / 10 {
        0 => ("Austin", AUSTIN[i % 10], Tier::Nano),
        1 => ("Denver", DENVER[i % 10], Tier::Micro),
        _ => ("Portland", PORTLAND[i % 10], Tier::Nano),
    }
}

/// Impressions, reach and likes/comments of influencer `i`'s post.
fn post(i: usize) -> (i64, i64, i64, i64) {
    let i = i as i64;
    (10_000 + 100 * i, 6_000 + 50 * i, 300 + i, 20)
}

impl App {
    async fn client(&self, token: &str) -> MeasurementServiceClient<Authed> {
        MeasurementServiceClient::new(chorus_testkit::authed(self.svc.addr, Some(token.to_owned())).await)
    }

    async fn publish<M: prost::Name>(&self, topic: &str, m: &M) {
        let e = envelope(&self.stack.clock, "acme", m);
        self.stack.shared_bus().publish(topic, &e).await.unwrap();
    }

    async fn report(&self, token: &str, metric: TestMetric) -> Result<CampaignReport, tonic::Status> {
        let r = self
            .client(token)
            .await
            .get_campaign_report(GetCampaignReportRequest {
                campaign: CAMPAIGN.into(),
                metric: metric as i32,
            })
            .await?;
        Ok(r.into_inner().report.unwrap())
    }

    /// Thirty influencers through the other services' events, their clicks, orders and posts.
    async fn run_campaign(&self) {
        let brand = self.client(&self.brand).await;
        brand
            .clone()
            .update_campaign_settings(UpdateCampaignSettingsRequest {
                settings: Some(CampaignSettings {
                    name: format!("{CAMPAIGN}/measurementSettings"),
                    destination_url: DEST.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap();
        for i in 0..30 {
            let (segment, _, tier) = segment_of(i);
            let influencer = name("influencers", i);
            let contract = name("contracts", i);
            let deliverable = format!("{contract}/deliverables/1");
            self.publish(
                "chorus.matching",
                &ShortlistMemberDecided {
                    shortlist: format!("{CAMPAIGN}/shortlists/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a99"),
                    campaign: CAMPAIGN.into(),
                    influencer: influencer.clone(),
                    decision: Decision::Accepted as i32,
                    segment: segment.into(),
                    candidate: Some(Candidate {
                        influencer: influencer.clone(),
                        tier: tier as i32,
                        cost: usd(PLANNED),
                        segment: segment.into(),
                        ..Default::default()
                    }),
                },
            )
            .await;
            self.publish(
                "chorus.contracts",
                &ContractActivated {
                    contract: Some(Contract {
                        name: contract.clone(),
                        campaign: CAMPAIGN.into(),
                        influencer: influencer.clone(),
                        segment: segment.into(),
                        terms: Some(Terms {
                            deliverables: vec![DeliverableTerm {
                                count: 1,
                                ..Default::default()
                            }],
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    total_value: None,
                },
            )
            .await;
            // Influencer 5 was late; every third post's disclosure needs review.
            if i == 5 {
                self.publish(
                    "chorus.contracts",
                    &DeliverableOverdue {
                        deliverable: deliverable.clone(),
                        contract: contract.clone(),
                        campaign: CAMPAIGN.into(),
                        influencer: influencer.clone(),
                        ..Default::default()
                    },
                )
                .await;
            }
            let verdict = if i % 3 == 0 {
                Verdict::NeedsReview
            } else {
                Verdict::Compliant
            };
            self.publish(
                "chorus.contracts",
                &DeliverableApproved {
                    deliverable: deliverable.clone(),
                    contract: contract.clone(),
                    campaign: CAMPAIGN.into(),
                    influencer: influencer.clone(),
                    index: 1,
                    total: 1,
                    submission: Some(Submission {
                        publish_time: Some(timestamp(START)),
                        check: Some(CheckDisclosureResponse {
                            verdict: verdict as i32,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    segment: segment.into(),
                    ..Default::default()
                },
            )
            .await;
            let mut paid = vec![(1, CASH)];
            if segment == "Austin" {
                paid.push((2, GIFT));
            }
            if i == 10 {
                paid.push((3, PRODUCT));
            }
            for (n, (kind, amount)) in paid.into_iter().enumerate() {
                self.publish(
                    "chorus.payouts",
                    &PayoutPaid {
                        payout: format!("{}{n}", name("payouts", i)),
                        contract: contract.clone(),
                        campaign: CAMPAIGN.into(),
                        influencer: influencer.clone(),
                        deliverable: deliverable.clone(),
                        kind,
                        amount: usd(amount),
                        provider: "stripe".into(),
                    },
                )
                .await;
            }
        }
        // A payout paid twice (a redelivery) counts once; a reversed one not at all.
        let extra = format!("{}9", name("payouts", 29));
        for _ in 0..2 {
            self.publish(
                "chorus.payouts",
                &PayoutPaid {
                    payout: extra.clone(),
                    campaign: CAMPAIGN.into(),
                    influencer: name("influencers", 29),
                    kind: 1,
                    amount: usd(99_999),
                    ..Default::default()
                },
            )
            .await;
        }
        self.publish(
            "chorus.payouts",
            &PayoutReversed {
                payout: extra,
                campaign: CAMPAIGN.into(),
                influencer: name("influencers", 29),
                amount: usd(99_999),
                ..Default::default()
            },
        )
        .await;

        // The links and codes contracts' activations made.
        let (links, codes) = eventually(Duration::from_secs(20), || {
            let mut brand = brand.clone();
            async move {
                let links = brand
                    .list_links(ListLinksRequest {
                        campaign: CAMPAIGN.into(),
                        page_size: 100,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .links;
                let codes = brand
                    .list_promo_codes(ListPromoCodesRequest {
                        campaign: CAMPAIGN.into(),
                        page_size: 100,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .promo_codes;
                (links.len() == 30 && codes.len() == 30)
                    .then_some((links, codes))
                    .ok_or("contracts' events not applied yet")
            }
        })
        .await;
        let web = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(DIRECT)
            .build()
            .unwrap();
        let mut orders = Vec::new();
        for i in 0..30 {
            let influencer = name("influencers", i);
            let (_, (clicks, conversions), _) = segment_of(i);
            let link = links.iter().find(|l| l.influencer == influencer).unwrap();
            let code = codes.iter().find(|c| c.influencer == influencer).unwrap();
            for _ in 0..clicks {
                let r = web
                    .get(format!("{}/l/{}", self.http, link.code))
                    .header("user-agent", IPHONE)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 302);
            }
            for n in 0..conversions {
                orders.push(OrderInput {
                    order_id: format!("order-{i}-{n}"),
                    order_time: Some(timestamp(START + 1_000_000)),
                    revenue: usd(ORDER_MINOR),
                    discount_codes: vec![code.code.clone()],
                    ..Default::default()
                });
            }
            let (impressions, reach, likes, comments) = post(i);
            brand
                .clone()
                .record_post_metrics(RecordPostMetricsRequest {
                    deliverable: link.deliverable.clone(),
                    snapshot: Some(PostMetricsSnapshot {
                        observe_time: Some(timestamp(START)),
                        impressions: Some(impressions),
                        reach: Some(reach),
                        likes: Some(likes),
                        comments: Some(comments),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        // An older snapshot, recorded later, does not replace the newest.
        let first = links.iter().find(|l| l.influencer == name("influencers", 0)).unwrap();
        brand
            .clone()
            .record_post_metrics(RecordPostMetricsRequest {
                deliverable: first.deliverable.clone(),
                snapshot: Some(PostMetricsSnapshot {
                    observe_time: Some(timestamp(START - 3_600_000_000)),
                    impressions: Some(1),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap();
        brand
            .clone()
            .record_conversions(RecordConversionsRequest {
                orders,
                ..Default::default()
            })
            .await
            .unwrap();
        // A refund of one Austin order takes $10.00 back.
        brand
            .clone()
            .record_refund(RecordRefundRequest {
                order_id: "order-0-0".into(),
                refund_id: "refund-1".into(),
                amount: usd(1_000),
                ..Default::default()
            })
            .await
            .unwrap();
    }
}

/// Opens the page in headless Chromium (Debian's `chromium`): its screenshot must not be blank
/// and the page must log nothing to the console. Chromium writes every console message of the
/// page to stderr with `--enable-logging=stderr --v=0` as `CONSOLE(...)` lines (uncaught
/// errors as "Uncaught ...", blocked resources as "Refused to ..."), so those are looked for.
fn browse(html: &str) {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let shot = dir.path().join("report.png");
    std::fs::write(&page, html).unwrap();
    let out = std::process::Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .args(["--enable-logging=stderr", "--v=0", "--window-size=1000,1600"])
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium is installed (scripts/test installs Debian's package)");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {log}");
    for bad in ["CONSOLE", "Uncaught", "Refused to"] {
        assert!(!log.contains(bad), "the page logged to the console: {log}");
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert!(info.width >= 1000 && info.height >= 1000, "{info:?}");
    let px = info.color_type.samples();
    let frame = &pixels[..info.buffer_size()];
    let first = &frame[..px];
    let differing = frame.chunks(px).filter(|p| p != &first).count();
    // Text, three charts and tables: a good share of the page is not background.
    assert!(
        differing > frame.len() / px / 100,
        "the screenshot is (nearly) blank: {differing} pixels differ"
    );
}

on_both_backends! { spawn;
    a_report_says_what_worked_and_which_difference_is_real => |app: App| async move {
        app.run_campaign().await;
        // Clicks are flushed within a second; payouts' events arrive on their own.
        let report = eventually(Duration::from_secs(20), || async {
            let r = app.report(&app.brand, TestMetric::Unspecified).await.unwrap();
            let f = r.campaign_figures.clone().unwrap();
            (f.clicks == 1_200 && minor(&f.cost) == 30 * CASH + 10 * GIFT + PRODUCT && f.deliverables == 30)
                .then_some(r)
                .ok_or("not everything counted yet")
        })
        .await;
        assert_eq!(report.campaign, CAMPAIGN);
        assert_eq!(report.currency_code, "USD");
        assert_eq!(report.rate_card_version, "chorus-2026-11");

        // The campaign, by hand: 69 orders of $25.00 less a $10.00 refund.
        let c = report.campaign_figures.clone().unwrap();
        let conversions: u32 = AUSTIN.iter().chain(&DENVER).chain(&PORTLAND).map(|p| p.1).sum();
        assert_eq!(conversions, 69);
        assert_eq!(c.influencers, 30);
        assert_eq!(c.conversions, 69);
        assert_eq!(c.redemptions, 69);
        assert_eq!(minor(&c.revenue), 69 * ORDER_MINOR - 1_000);
        assert_eq!(c.delivered_on_time, 29, "influencer 5 was overdue");
        assert_eq!(c.disclosure_compliant, 20, "every third post needs review");
        // Σ (10,000 + 100 i) over i < 30 = 343,500; reach Σ (6,000 + 50 i) = 201,750;
        // engagements Σ (300 + i + 20) = 10,035.
        assert_eq!(c.impressions, 343_500);
        assert_eq!(c.reach, 201_750);
        assert_eq!(c.engagements, 10_035);
        assert!((c.engagement_rate - 10_035.0 / 343_500.0).abs() < 1e-12);
        assert!((c.ctr - 1_200.0 / 343_500.0).abs() < 1e-12);
        let cost = 30 * CASH + 10 * GIFT + PRODUCT;
        assert_eq!(minor(&c.cost), cost);
        assert_eq!(minor(&c.cost_cash), 30 * CASH);
        assert_eq!(minor(&c.cost_gift_cards), 10 * GIFT);
        assert_eq!(minor(&c.cost_products), PRODUCT);
        // $1,730.00 / 10,035 engagements = 17.24 cents; × 1,000 / 343,500 impressions = 503.64.
        assert_eq!(minor(&c.cost_per_engagement), 17);
        assert_eq!(minor(&c.cpm), 504);
        assert!((c.roas - (69.0 * 2_500.0 - 1_000.0) / cost as f64).abs() < 1e-12);
        // Rate card: 343,500 × 800 / 1,000 + 10,035 × 10 + 1,200 × 60 = 274,800 + 100,350 + 72,000.
        assert_eq!(minor(&c.earned_media_value), 447_150);
        assert!(minor(&c.revenue) < minor(&c.earned_media_value), "earned media is never in revenue");

        // One influencer: Austin's first, with the refund and the newest snapshot.
        let ana = report.influencers.iter().find(|i| i.influencer == name("influencers", 0)).unwrap();
        assert_eq!(ana.segment, "Austin");
        assert_eq!(ana.tier, Tier::Nano as i32);
        let f = ana.figures.clone().unwrap();
        assert_eq!((f.clicks, f.conversions, f.impressions, f.engagements), (40, 4, 10_000, 320));
        assert_eq!(minor(&f.revenue), 4 * ORDER_MINOR - 1_000);
        assert_eq!(minor(&f.cost), CASH + GIFT);
        assert!((f.roas - 9_000.0 / 7_000.0).abs() < 1e-12);
        assert_eq!(f.disclosure_compliant, 0);
        assert_eq!(f.delivered_on_time, 1);

        // Segments and tiers.
        let names: Vec<&str> = report.segments.iter().map(|s| s.segment.as_str()).collect();
        assert_eq!(names, ["Austin", "Denver", "Portland"]);
        let denver = report.segments[1].figures.clone().unwrap();
        assert_eq!((denver.influencers, denver.clicks, denver.conversions), (10, 400, 13));
        assert_eq!(minor(&denver.cost), 10 * CASH + PRODUCT);
        let tiers: Vec<(i32, i64)> = report.tiers.iter().map(|t| (t.tier, t.figures.as_ref().unwrap().influencers)).collect();
        assert_eq!(tiers, [(Tier::Nano as i32, 20), (Tier::Micro as i32, 10)]);

        // The audience test: conversions per click, influencer as the unit.
        let t = report.segment_test.clone().unwrap();
        assert_eq!(t.metric, TestMetric::ConversionsPerClick as i32);
        assert_eq!(t.alpha, 0.05);
        assert!(t.enough_data);
        let rates: Vec<(&str, f64, f64)> = t.rates.iter().map(|r| (r.segment.as_str(), r.numerator, r.denominator)).collect();
        assert_eq!(rates, [("Austin", 42.0, 400.0), ("Denver", 13.0, 400.0), ("Portland", 14.0, 400.0)]);
        assert!((t.rates[0].rate - 0.105).abs() < 1e-12);
        assert!(t.rates[0].ci_low < 0.105 && 0.105 < t.rates[0].ci_high);
        assert!(t.rates[0].probability_best > 0.99);
        let pair = |a: &str, b: &str| t.differences.iter().find(|d| d.segment_a == a && d.segment_b == b).unwrap().clone();
        let ad = pair("Austin", "Denver");
        assert!(ad.significant && ad.p_value_holm < 0.05, "{ad:?}");
        assert!((ad.difference - (0.105 - 0.0325)).abs() < 1e-12);
        assert!(ad.p_value_holm >= ad.p_value);
        let dp = pair("Denver", "Portland");
        assert!(!dp.significant && dp.p_value_holm > 0.5, "{dp:?}");
        assert!(t.sentence.starts_with("Austin converts better than"), "{}", t.sentence);
        // The plan: ten influencers and $600.00 per segment; Austin got more spend than its share.
        assert_eq!(t.allocation.len(), 3);
        assert!(t.allocation.iter().all(|a| a.planned_influencers == 10 && a.actual_influencers == 10));
        assert_eq!(minor(&t.allocation[0].planned_spend), 10 * PLANNED);
        assert_eq!(minor(&t.allocation[0].actual_spend), 10 * (CASH + GIFT));
        assert!(!t.allocation[0].as_planned);

        // Engagements per impression on request.
        let e = app.report(&app.brand, TestMetric::EngagementsPerImpression).await.unwrap().segment_test.unwrap();
        assert_eq!(e.metric, TestMetric::EngagementsPerImpression as i32);
        assert_eq!(e.rates[0].denominator, (0..10).map(|i| post(i).0 as f64).sum::<f64>());

        // Bad input and other tenants.
        let err = app.client(&app.brand).await.get_campaign_report(GetCampaignReportRequest { campaign: "campaigns/nope".into(), metric: 99 }).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let mut bad: Vec<String> = err.get_details_bad_request().unwrap().field_violations.iter().map(|v| v.field.clone()).collect();
        bad.sort();
        assert_eq!(bad, ["campaign", "metric"]);
        let err = app.report(&app.other, TestMetric::Unspecified).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        let influencer = app.stack.token("acme", &["measurement.self"]);
        assert_eq!(app.report(&influencer, TestMetric::Unspecified).await.unwrap_err().code(), Code::PermissionDenied);

        // The same report over HTTP, as JSON, CSV and a page: the bearer token, its scope and
        // its tenant are checked as gRPC checks them.
        let url = format!("{}/v1/{CAMPAIGN}/report", app.http);
        let get = |format: &str, token: Option<&str>| {
            let mut r = reqwest::Client::new().get(format!("{url}?format={format}"));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        assert_eq!(get("json", None).await.unwrap().status(), 401);
        assert_eq!(get("json", Some("not-a-token")).await.unwrap().status(), 401);
        assert_eq!(get("json", Some(&influencer)).await.unwrap().status(), 403);
        assert_eq!(get("json", Some(&app.other)).await.unwrap().status(), 404);
        assert_eq!(get("pdf", Some(&app.brand)).await.unwrap().status(), 400);
        let json: serde_json::Value = get("json", Some(&app.brand)).await.unwrap().json().await.unwrap();
        assert_eq!(json["campaign"], CAMPAIGN);
        assert_eq!(json["campaignFigures"]["clicks"], "1200", "int64 is a string in proto3 JSON");
        assert_eq!(json["campaignFigures"]["revenue"]["amountMinor"], (69 * ORDER_MINOR - 1_000).to_string());
        assert_eq!(json["segmentTest"]["metric"], "TEST_METRIC_CONVERSIONS_PER_CLICK");
        assert_eq!(json["influencers"].as_array().unwrap().len(), 30);
        assert_eq!(json["daily"][0]["clicks"], "1200");
        let csv = get("csv", Some(&app.brand)).await.unwrap().text().await.unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1 + 30 + 3 + 2 + 1, "header, influencers, segments, tiers, campaign");
        assert!(lines[0].starts_with("row,name,segment,tier,influencers"));
        let last = lines.last().unwrap();
        assert!(last.starts_with(&format!("campaign,{CAMPAIGN},,,30,")), "{last}");
        assert!(last.contains(",USD,1715.00,1730.00,1500.00,200.00,30.00,0.17,5.04,"), "{last}");
        let page = get("html", Some(&app.brand)).await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
        let html = page.text().await.unwrap();
        assert_eq!(html.matches("<svg").count(), 3);
        assert!(html.contains("Austin converts better than"));
        for external in ["src=", "<link", "<script", "url("] {
            assert!(!html.contains(external), "no scripts and no external assets: {external}");
        }
        browse(&html);
    };
}
