//! Measurement end to end over real gRPC and HTTP on loopback, on PostgreSQL and SQLite: links
//! made and checked, redirects (302 with UTM, 404 counted, no open redirect), clicks stored
//! within a second with a hashed IP, a bot flag and a country only a trusted proxy may give,
//! Shopify's signed webhooks (bad or unknown: 401, stored nowhere; duplicates once; order ids
//! past 2^53 exact; refunds), attribution (code before click, the click window), tenant
//! isolation, contracts' events making links, codes and measurement duties, the overdue
//! event on the kit's timers, and a leaked promo code flagged once with its evidence.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use chorus_kit::clock::{Clock, timestamp};
use chorus_kit::events::{envelope, read};
use chorus_kit::runtime::Launched;
use chorus_measurement::domain::shopify;
use chorus_proto::contracts::{
    Contract, ContractActivated, DeliverableApproved, DeliverableTerm, ReportingDuty, Submission, Terms,
};
use chorus_proto::matching::{Campaign, CampaignChanged};
use chorus_proto::measurement::measurement_service_client::MeasurementServiceClient;
use chorus_proto::measurement::*;
use chorus_proto::types::Money;
use chorus_testkit::metrics::Metrics;
use chorus_testkit::{Authed, Backend, Stack, eventually, on_both_backends};
use sqlx::Row;
use tonic::Code;
use tonic_types::StatusExt;

const CAMPAIGN: &str = "campaigns/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70";
const ANA: &str = "influencers/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a01";
const BEN: &str = "influencers/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a02";
const C1: &str = "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6b01";
/// 2027-01-15T08:00:00Z.
const START: i64 = 1_800_000_000_000_000;
const HOUR: i64 = 3_600_000_000;
const SHOP: &str = "acme-store.myshopify.com";
const SECRET: &str = "shpss_acme_test";
const DEST: &str = "https://shop.example.com/spring?color=red";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
/// The proxy the service trusts; tests connect from it or from 127.0.0.1, which it does not.
const PROXY: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const DIRECT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

struct App {
    stack: Stack,
    svc: Launched,
    db_url: String,
    http: String,
    brand: String,
    other: String,
    metrics: Metrics,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn spawn(backend: Backend) -> App {
    let metrics = Metrics::install();
    let mut stack = Stack::with_clock(backend, Clock::manual(START));
    let db_url = stack.database().await;
    let port = free_port();
    let settings = vec![
        ("CHORUS_MEASUREMENT_HTTP_ADDR", format!("127.0.0.1:{port}")),
        ("CHORUS_TRUSTED_PROXIES", "127.0.0.2".to_owned()),
        (
            "CHORUS_SHOPIFY_SHOPS",
            format!("{SHOP}=acme:{SECRET},globex-store.myshopify.com=globex:shpss_globex"),
        ),
        ("CHORUS_ATTRIBUTION_WINDOW_HOURS", "168".to_owned()),
    ];
    let svc = stack.launch(&chorus_measurement::SERVICE, &db_url, &settings).await;
    let scopes = ["measurement.read", "measurement.write"];
    let app = App {
        brand: stack.token("acme", &scopes),
        other: stack.token("globex", &scopes),
        stack,
        svc,
        db_url,
        http: format!("http://127.0.0.1:{port}"),
        metrics,
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

/// The field names of an INVALID_ARGUMENT.
fn fields(s: &tonic::Status) -> Vec<String> {
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    s.get_details_bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}

fn order(id: &str, at: i64, minor: i64, codes: &[&str], landing: &str) -> OrderInput {
    OrderInput {
        order_id: id.into(),
        order_time: Some(timestamp(at)),
        revenue: usd(minor),
        discount_codes: codes.iter().map(|c| (*c).to_owned()).collect(),
        click_id: String::new(),
        landing_url: landing.into(),
        country: String::new(),
    }
}

fn order_from(country: &str, id: &str, code: &str) -> OrderInput {
    OrderInput {
        country: country.into(),
        ..order(id, START + HOUR, 2_000, &[code], "")
    }
}

const CAMPAIGN2: &str = "campaigns/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a71";
const C2: &str = "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6b03";

impl App {
    async fn client(&self, token: &str) -> MeasurementServiceClient<Authed> {
        MeasurementServiceClient::new(chorus_testkit::authed(self.svc.addr, Some(token.to_owned())).await)
    }

    async fn brand(&self) -> MeasurementServiceClient<Authed> {
        self.client(&self.brand).await
    }

    async fn link(&self, influencer: &str, deliverable: &str) -> Link {
        self.brand()
            .await
            .create_link(CreateLinkRequest {
                link: Some(Link {
                    campaign: CAMPAIGN.into(),
                    influencer: influencer.into(),
                    deliverable: deliverable.into(),
                    destination_url: DEST.into(),
                    segment: "austin".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .link
            .unwrap()
    }

    /// GET `path` on the listener from `from`, not following redirects.
    async fn get(&self, path: &str, from: IpAddr, headers: &[(&str, &str)]) -> reqwest::Response {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(from)
            .build()
            .unwrap();
        let mut req = client.get(format!("{}{path}", self.http));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// Clicks `link` as a phone would; the click id the redirect carried.
    async fn click(&self, link: &Link, from: IpAddr, ua: &str) -> String {
        let r = self
            .get(&format!("/l/{}", link.code), from, &[("user-agent", ua)])
            .await;
        assert_eq!(r.status(), 302);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        chorus_measurement::domain::destination::click_of(&location).unwrap()
    }

    async fn clicks(&self, link: &Link) -> Vec<Click> {
        self.brand()
            .await
            .list_clicks(ListClicksRequest {
                link: link.name.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .clicks
    }

    /// Waits until `n` clicks of `link` are stored.
    async fn stored_clicks(&self, link: &Link, n: usize) -> Vec<Click> {
        eventually(Duration::from_secs(5), || async {
            let c = self.clicks(link).await;
            (c.len() >= n).then_some(c).ok_or("not flushed yet")
        })
        .await
    }

    async fn record(&self, orders: Vec<OrderInput>) -> Vec<RecordedConversion> {
        self.brand()
            .await
            .record_conversions(RecordConversionsRequest {
                orders,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .results
    }

    async fn conversions(&self, token: &str) -> Vec<Conversion> {
        self.client(token)
            .await
            .list_conversions(ListConversionsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .conversions
    }

    /// Posts a Shopify webhook, signed with `secret`.
    async fn webhook(
        &self,
        shop: &str,
        secret: &str,
        topic: &str,
        webhook_id: &str,
        body: &str,
    ) -> reqwest::StatusCode {
        reqwest::Client::new()
            .post(format!("{}/webhooks/shopify", self.http))
            .header("X-Shopify-Topic", topic)
            .header("X-Shopify-Shop-Domain", shop)
            .header("X-Shopify-Webhook-Id", webhook_id)
            .header(
                "X-Shopify-Hmac-Sha256",
                shopify::sign(secret.as_bytes(), body.as_bytes()),
            )
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn duty(&self, deliverable: String) -> Result<MeasurementDuty, tonic::Status> {
        let r = self
            .brand()
            .await
            .get_measurement_duty(GetMeasurementDutyRequest { deliverable })
            .await?;
        Ok(r.into_inner().duty.unwrap())
    }

    async fn publish<M: prost::Name>(&self, m: &M) -> chorus_proto::event::Envelope {
        let e = envelope(&self.stack.clock, "acme", m);
        self.stack.shared_bus().publish("chorus.contracts", &e).await.unwrap();
        e
    }

    /// Acme's contract `name` in `campaign`, activated, with `posts` deliverables.
    async fn activate(&self, name: &str, campaign: &str, posts: i32) {
        let contract = Contract {
            name: name.into(),
            campaign: campaign.into(),
            influencer: ANA.into(),
            segment: "austin".into(),
            terms: Some(Terms {
                deliverables: vec![DeliverableTerm {
                    count: posts,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        self.publish(&ContractActivated {
            contract: Some(contract),
            total_value: None,
        })
        .await;
    }

    /// Contracts' approval of Ana's post `n` of `contract`, published at START, with its
    /// metrics owed two days later.
    async fn approve(&self, contract: &str, campaign: &str, n: i32) {
        self.publish(&DeliverableApproved {
            deliverable: format!("{contract}/deliverables/{n}"),
            contract: contract.into(),
            campaign: campaign.into(),
            influencer: ANA.into(),
            index: n,
            total: 2,
            submission: Some(Submission {
                publish_time: Some(timestamp(START)),
                ..Default::default()
            }),
            reporting: Some(ReportingDuty {
                metrics: vec!["reach".into()],
                due_days_after_post: 2,
            }),
            ..Default::default()
        })
        .await;
    }

    /// The campaign report's figures for the whole campaign.
    async fn figures(&self, campaign: &str) -> Figures {
        self.brand()
            .await
            .get_campaign_report(GetCampaignReportRequest {
                campaign: campaign.into(),
                metric: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .report
            .unwrap()
            .campaign_figures
            .unwrap()
    }

    /// Every stored row of `table`, each column as text, for checks that nothing holds a value.
    async fn dump(&self, table: &str) -> String {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.db_url).await.unwrap();
        let cols =
            "day, id, tenant, link_id, campaign_id, influencer_id, click_time, country, device, referrer, ip_hash";
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {cols} FROM {table}")))
            .fetch_all(&pool)
            .await
            .unwrap();
        let mut out = String::new();
        for r in rows {
            for i in 0..r.len() {
                let v = r
                    .try_get::<String, _>(i)
                    .or_else(|_| r.try_get::<i64, _>(i).map(|n| n.to_string()));
                out.push_str(&v.unwrap_or_default());
                out.push('|');
            }
            out.push('\n');
        }
        pool.close().await;
        out
    }
}

fn shopify_order(id: &str, created: &str, total: &str, codes: &[&str], landing: &str) -> String {
    let codes: Vec<String> = codes
        .iter()
        .map(|c| format!(r#"{{"code":"{c}","amount":"5.00","type":"fixed_amount"}}"#))
        .collect();
    format!(
        r##"{{"id":{id},"name":"#1001","order_number":1001,"created_at":"{created}","currency":"USD","financial_status":"paid","total_price":"{total}","subtotal_price":"{total}","total_discounts":"0.00","discount_codes":[{}],"customer":{{"id":207119551}},"landing_site":"{landing}","referring_site":null,"note_attributes":[],"line_items":[{{"id":466157049,"sku":"SKU1","quantity":1,"price":"{total}"}}]}}"##,
        codes.join(",")
    )
}

on_both_backends! { spawn;
    links_are_checked_when_made => |app: App| async move {
        let mut c = app.brand().await;
        let e = c.create_link(CreateLinkRequest { link: Some(Link {
            campaign: "campaigns/nope".into(),
            influencer: String::new(),
            destination_url: "http://shop.example.com/".into(),
            ..Default::default()
        }),
            ..Default::default() }).await.unwrap_err();
        let f = fields(&e);
        for field in ["link.campaign", "link.influencer", "link.destination_url"] {
            assert!(f.contains(&field.to_owned()), "{field} in {f:?}");
        }
        for bad in ["https://user:pw@shop.example.com/", "https://127.0.0.1/", "javascript:alert(1)", "https://localhost/x"] {
            let e = c.create_link(CreateLinkRequest { link: Some(Link {
                campaign: CAMPAIGN.into(),
                influencer: ANA.into(),
                destination_url: bad.into(),
                ..Default::default()
            }),
                ..Default::default() }).await.unwrap_err();
            assert_eq!(fields(&e), ["link.destination_url"], "{bad}");
        }
        let e = c.create_link(CreateLinkRequest { link: None, ..Default::default() }).await.unwrap_err();
        assert_eq!(fields(&e), ["link"]);
        // One link per influencer and deliverable.
        let d = format!("{C1}/deliverables/1");
        let l = app.link(ANA, &d).await;
        assert_eq!(l.code.len(), 8);
        assert_eq!(l.utm.as_ref().unwrap().source, "chorus");
        let again = c.create_link(CreateLinkRequest { link: Some(Link {
            campaign: CAMPAIGN.into(), influencer: ANA.into(), deliverable: d, destination_url: DEST.into(), ..Default::default()
        }),
            ..Default::default() }).await.unwrap_err();
        assert_eq!(again.code(), Code::AlreadyExists);
    };

    a_link_redirects_with_utm_and_unknown_codes_are_404_and_counted => |app: App| async move {
        let l = app.link(ANA, "").await;
        let r = app.get(&format!("/l/{}?next=https://evil.example.net/", l.code), DIRECT, &[("user-agent", IPHONE)]).await;
        assert_eq!(r.status(), 302);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        let campaign_id = CAMPAIGN.trim_start_matches("campaigns/");
        let influencer_id = ANA.trim_start_matches("influencers/");
        assert!(
            location.starts_with(&format!(
                "https://shop.example.com/spring?color=red&utm_source=chorus&utm_medium=influencer&utm_campaign={campaign_id}&utm_content={influencer_id}&chorus_click="
            )),
            "{location}"
        );
        // Whatever the visitor adds, the redirect goes to the stored destination only.
        assert!(!location.contains("evil"), "{location}");
        let before = app.metrics.counter("measurement_redirect_unknown_total", &[]);
        for path in ["/l/abcdefgh", "/l/ABCDEFGH", "/l/..%2F..%2Fevil.example.net"] {
            let r = app.get(path, DIRECT, &[]).await;
            assert_eq!(r.status(), 404, "{path}");
            assert!(r.headers().get("location").is_none());
        }
        assert_eq!(app.metrics.counter("measurement_redirect_unknown_total", &[]) - before, 3);
    };

    clicks_are_stored_within_a_second_with_a_hashed_ip_a_bot_flag_and_a_trusted_country => |app: App| async move {
        let l = app.link(ANA, "").await;
        let sent = Instant::now();
        // Through the trusted proxy: its country header and forwarded address are believed.
        let r = app.get(&format!("/l/{}", l.code), PROXY, &[
            ("user-agent", IPHONE),
            ("cf-ipcountry", "de"),
            ("x-forwarded-for", "203.0.113.9"),
            ("referer", "https://www.instagram.com/p/abc/"),
        ]).await;
        assert_eq!(r.status(), 302);
        // Straight from a visitor: a country header is not believed.
        let r = app.get(&format!("/l/{}", l.code), DIRECT, &[("user-agent", GOOGLEBOT), ("cf-ipcountry", "FR")]).await;
        assert_eq!(r.status(), 302);
        let clicks = app.stored_clicks(&l, 2).await;
        let waited = sent.elapsed();
        // Flushed every second: stored within that and the time a loaded test machine takes to
        // write and read them back (a flusher that waited for a full buffer would never get here).
        assert!(waited < Duration::from_millis(2_500), "clicks took {waited:?} to be stored");
        let human = clicks.iter().find(|c| !c.bot).unwrap();
        assert_eq!(human.country, "DE");
        assert_eq!(human.device, DeviceClass::Mobile as i32);
        assert_eq!(human.referrer, "www.instagram.com");
        assert_eq!(human.ip_hash.len(), 64);
        assert!(human.ip_hash.bytes().all(|b| b.is_ascii_hexdigit()));
        let bot = clicks.iter().find(|c| c.bot).unwrap();
        assert_eq!(bot.country, "", "a visitor's own country header is not believed");
        assert_eq!(bot.device, DeviceClass::Bot as i32);
        assert_ne!(bot.ip_hash, human.ip_hash);
        // The same visitor the same day hashes alike.
        app.get(&format!("/l/{}", l.code), PROXY, &[("user-agent", IPHONE), ("x-forwarded-for", "203.0.113.9")]).await;
        let clicks = app.stored_clicks(&l, 3).await;
        assert_eq!(clicks.iter().filter(|c| c.ip_hash == human.ip_hash).count(), 2);
        // No raw address is stored anywhere in the click rows.
        let rows = app.dump("clicks").await;
        assert_eq!(rows.lines().count(), 3, "{rows}");
        for raw in ["203.0.113.9", "127.0.0.1", "127.0.0.2"] {
            assert!(!rows.contains(raw), "{raw} stored: {rows}");
        }
        // Bots are not counted.
        let got = app.brand().await.get_link(GetLinkRequest { name: l.name.clone() }).await.unwrap().into_inner().link.unwrap();
        assert_eq!(got.clicks, 2);
    };

    shopify_webhooks_are_verified_deduplicated_exact_and_refundable => |app: App| async move {
        // 2^53 + 1: a float would make it ...992.
        let body = shopify_order("9007199254740993", "2027-01-15T09:00:00+01:00", "243.00", &[], "");
        assert_eq!(app.webhook(SHOP, "wrong-secret", "orders/create", "w0", &body).await, 401);
        assert_eq!(app.webhook("unknown.myshopify.com", SECRET, "orders/create", "w0", &body).await, 401);
        assert!(app.conversions(&app.brand).await.is_empty(), "a refused webhook stored nothing");
        assert_eq!(app.webhook(SHOP, SECRET, "orders/create", "w1", &body).await, 200);
        // The same delivery again, and the same order under another webhook (orders/paid).
        assert_eq!(app.webhook(SHOP, SECRET, "orders/create", "w1", &body).await, 200);
        assert_eq!(app.webhook(SHOP, SECRET, "orders/paid", "w2", &body).await, 200);
        let all = app.conversions(&app.brand).await;
        assert_eq!(all.len(), 1, "{all:?}");
        let c = &all[0];
        assert_eq!(c.order_id, "9007199254740993");
        assert_eq!(c.source, ConversionSource::Shopify as i32);
        assert_eq!(c.shop_domain, SHOP);
        assert_eq!(c.revenue, usd(24_300));
        assert_eq!(c.order_time, Some(timestamp(START)));
        assert_eq!(c.attribution.as_ref().unwrap().method, AttributionMethod::None as i32);
        // A refund takes back part of it, once.
        let refund = r#"{"id":77,"order_id":9007199254740993,"created_at":"2027-01-16T10:00:00Z","refund_line_items":[],"transactions":[{"id":1,"kind":"refund","status":"success","amount":"41.94","currency":"USD"}],"order_adjustments":[]}"#;
        assert_eq!(app.webhook(SHOP, SECRET, "refunds/create", "w3", refund).await, 200);
        assert_eq!(app.webhook(SHOP, SECRET, "refunds/create", "w4", refund).await, 200);
        let got = app.brand().await.get_conversion(GetConversionRequest { name: c.name.clone() }).await.unwrap().into_inner().conversion.unwrap();
        assert_eq!(got.refunded, usd(4_194));
        // Globex's shop and token see nothing of Acme's.
        assert!(app.conversions(&app.other).await.is_empty());
        let e = app.client(&app.other).await.get_conversion(GetConversionRequest { name: c.name.clone() }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    };

    a_promo_code_beats_a_click_and_clicks_count_only_within_the_window => |app: App| async move {
        let ana = app.link(ANA, "").await;
        let codes = app.brand().await.create_promo_codes(CreatePromoCodesRequest {
            campaign: CAMPAIGN.into(),
            influencer: BEN.into(),
            code: "ben10".into(),
            ..Default::default()
        }).await.unwrap().into_inner().promo_codes;
        assert_eq!(codes[0].code, "BEN10");
        let click = app.click(&ana, DIRECT, IPHONE).await;
        let bot_click = app.click(&ana, DIRECT, GOOGLEBOT).await;
        let landing = |id: &str| format!("https://shop.example.com/spring?chorus_click={id}");
        let results = app.record(vec![
            order("o-code", START + HOUR, 5_000, &["ben10"], &landing(&click)),
            order("o-click", START + 2 * HOUR, 4_000, &[], &landing(&click)),
            order("o-late", START + 200 * HOUR, 3_000, &[], &landing(&click)),
            order("o-bot", START + HOUR, 2_000, &[], &landing(&bot_click)),
            order("o-click", START + 2 * HOUR, 4_000, &[], ""),
        ]).await;
        let by = |i: usize| results[i].conversion.as_ref().unwrap().clone();
        let a = |i: usize| by(i).attribution.unwrap();
        assert_eq!((a(0).method, by(0).influencer.as_str()), (AttributionMethod::PromoCode as i32, BEN));
        assert_eq!(a(0).reason, "promo code BEN10");
        assert_eq!((a(1).method, by(1).influencer.as_str()), (AttributionMethod::Click as i32, ANA));
        assert_eq!(a(1).click, click);
        assert_eq!(by(1).segment, "austin");
        assert!(a(1).reason.contains("before the order"), "{}", a(1).reason);
        assert_eq!(a(2).method, AttributionMethod::None as i32);
        assert!(a(2).reason.contains("past the 7 days window"), "{}", a(2).reason);
        assert_eq!(a(3).method, AttributionMethod::None as i32);
        assert!(a(3).reason.contains("bot"), "{}", a(3).reason);
        // The repeated order id is the first one's.
        assert!(results[4].duplicate && !results[1].duplicate);
        assert_eq!(by(4).name, by(1).name);
        assert_eq!(app.conversions(&app.brand).await.len(), 4);
        // Recording the batch again changes nothing.
        let again = app.record(vec![order("o-code", START + HOUR, 5_000, &["BEN10"], "")]).await;
        assert!(again[0].duplicate);
        let codes = app.brand().await.list_promo_codes(ListPromoCodesRequest::default()).await.unwrap().into_inner().promo_codes;
        assert_eq!(codes[0].redemptions, 1);
        // A refund by RPC reverses it, at most what is left.
        let mut c = app.brand().await;
        let r = c.record_refund(RecordRefundRequest { order_id: "o-code".into(), refund_id: "r1".into(), amount: usd(2_000), ..Default::default() }).await.unwrap().into_inner().conversion.unwrap();
        assert_eq!(r.refunded, usd(2_000));
        let e = c.record_refund(RecordRefundRequest { order_id: "o-code".into(), refund_id: "r2".into(), amount: usd(3_001), ..Default::default() }).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition);
        let e = c.record_refund(RecordRefundRequest { order_id: "nope".into(), refund_id: "r3".into(), amount: usd(1), ..Default::default() }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    };

    bad_orders_are_refused_naming_their_fields => |app: App| async move {
        let mut bad_currency = order("o2", START, 100, &[], "");
        bad_currency.revenue = Some(Money { currency_code: "usd".into(), amount_minor: -5 });
        let mut no_time = order("", START, 100, &[], "");
        no_time.order_time = None;
        let e = app.brand().await.record_conversions(RecordConversionsRequest { orders: vec![order("ok", START, 1, &[], ""), bad_currency, no_time], ..Default::default() }).await.unwrap_err();
        let f = fields(&e);
        for field in ["orders[1].revenue.currency_code", "orders[1].revenue.amount_minor", "orders[2].order_id", "orders[2].order_time"] {
            assert!(f.contains(&field.to_owned()), "{field} in {f:?}");
        }
        assert!(app.conversions(&app.brand).await.is_empty(), "nothing of a refused batch is stored");
        let e = app.brand().await.record_conversions(RecordConversionsRequest { orders: vec![], ..Default::default() }).await.unwrap_err();
        assert_eq!(fields(&e), ["orders"]);
        let e = app.brand().await.get_link(GetLinkRequest { name: "links/x".into() }).await.unwrap_err();
        assert_eq!(fields(&e), ["name"]);
    };

    another_tenants_links_are_not_found => |app: App| async move {
        let l = app.link(ANA, "").await;
        let mut globex = app.client(&app.other).await;
        let e = globex.get_link(GetLinkRequest { name: l.name.clone() }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let e = globex.list_clicks(ListClicksRequest { link: l.name.clone(), ..Default::default() }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        assert!(globex.list_links(ListLinksRequest::default()).await.unwrap().into_inner().links.is_empty());
        let mine = app.brand().await.list_links(ListLinksRequest { campaign: CAMPAIGN.into(), ..Default::default() }).await.unwrap().into_inner().links;
        assert_eq!(mine.len(), 1);
        // A token without a tenant, or without the scope, is refused.
        let reader = app.stack.token("acme", &["measurement.read"]);
        let e = app.client(&reader).await.record_conversions(RecordConversionsRequest { orders: vec![order("x", START, 1, &[], "")], ..Default::default() }).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
    };

    an_activated_contract_gets_links_and_a_code_and_an_approved_post_a_duty => |app: App| async move {
        let contract = Contract {
            name: C1.into(),
            campaign: CAMPAIGN.into(),
            influencer: ANA.into(),
            segment: "austin".into(),
            terms: Some(Terms {
                deliverables: vec![DeliverableTerm { count: 2, ..Default::default() }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = app.publish(&ContractActivated { contract: Some(contract), total_value: None }).await;
        let links = eventually(Duration::from_secs(10), || async {
            let l = app.brand().await.list_links(ListLinksRequest { influencer: ANA.into(), ..Default::default() }).await.unwrap().into_inner().links;
            (l.len() == 2).then_some(l).ok_or("no links yet")
        }).await;
        let mut deliverables: Vec<&str> = links.iter().map(|l| l.deliverable.as_str()).collect();
        deliverables.sort_unstable();
        assert_eq!(deliverables, [format!("{C1}/deliverables/1"), format!("{C1}/deliverables/2")]);
        let codes = app.brand().await.list_promo_codes(ListPromoCodesRequest { influencer: ANA.into(), ..Default::default() }).await.unwrap().into_inner().promo_codes;
        assert_eq!(codes.len(), 1);
        assert_eq!(codes[0].contract, C1);
        // The same event again changes nothing.
        app.stack.shared_bus().publish("chorus.contracts", &e).await.unwrap();
        // Before the campaign names its destination, its links go nowhere; then they do.
        assert_eq!(app.get(&format!("/l/{}", links[0].code), DIRECT, &[]).await.status(), 404);
        app.brand().await.update_campaign_settings(UpdateCampaignSettingsRequest { settings: Some(CampaignSettings {
            name: format!("{CAMPAIGN}/measurementSettings"),
            destination_url: DEST.into(),
            ..Default::default()
        }),
            ..Default::default() }).await.unwrap();
        let r = app.get(&format!("/l/{}", links[0].code), DIRECT, &[("user-agent", IPHONE)]).await;
        assert_eq!(r.status(), 302);
        assert!(r.headers()["location"].to_str().unwrap().starts_with(DEST));
        // A code sale through Shopify counts for Ana.
        let body = shopify_order("1001", "2027-01-15T09:00:00Z", "50.00", &[&codes[0].code.to_lowercase()], "");
        assert_eq!(app.webhook(SHOP, SECRET, "orders/create", "w-ana", &body).await, 200);
        let conv = app.conversions(&app.brand).await;
        assert_eq!(conv.len(), 1);
        assert_eq!(conv[0].influencer, ANA);
        assert_eq!(conv[0].segment, "austin");
        let links_again = app.brand().await.list_links(ListLinksRequest { influencer: ANA.into(), ..Default::default() }).await.unwrap().into_inner().links;
        assert_eq!(links_again.len(), 2, "a redelivered event makes no more links");

        // Approved posts owe their metrics two days after publishing.
        let mut watch = chorus_testkit::events::watch(&*app.stack.shared_bus(), "chorus.measurement").await;
        for n in [1, 2] {
            app.publish(&DeliverableApproved {
                deliverable: format!("{C1}/deliverables/{n}"),
                contract: C1.into(),
                campaign: CAMPAIGN.into(),
                influencer: ANA.into(),
                index: n,
                total: 2,
                submission: Some(Submission { publish_time: Some(timestamp(START)), ..Default::default() }),
                reporting: Some(ReportingDuty { metrics: vec!["reach".into(), "impressions".into()], due_days_after_post: 2 }),
                ..Default::default()
            }).await;
        }
        let d1 = format!("{C1}/deliverables/1");
        let d2 = format!("{C1}/deliverables/2");
        let duty = |d: String| app.duty(d);
        let first = eventually(Duration::from_secs(10), || duty(d1.clone())).await;
        assert_eq!(first.state, DutyState::Pending as i32);
        assert_eq!(first.due_time, Some(timestamp(START + 48 * HOUR)));
        eventually(Duration::from_secs(10), || duty(d2.clone())).await;
        // Ana reports the first post herself, with both metrics.
        let ana = app.stack.mint(&chorus_kit::auth::Grant {
            subject: ANA.into(),
            tenant: String::new(),
            role: chorus_kit::auth::role::INFLUENCER.into(),
            scopes: vec!["measurement.self".into()],
        });
        let snapshot = PostMetricsSnapshot { observe_time: Some(timestamp(START)), reach: Some(900), impressions: Some(1_500), likes: Some(80), ..Default::default() };
        let stored = app.client(&ana).await.record_post_metrics(RecordPostMetricsRequest { deliverable: d1.clone(), snapshot: Some(snapshot), ..Default::default() }).await.unwrap().into_inner().snapshot.unwrap();
        assert_eq!(stored.source, MetricsSource::Influencer as i32);
        assert_eq!(duty(d1.clone()).await.unwrap().state, DutyState::Met as i32);
        // Ben cannot report Ana's post.
        let ben = app.stack.mint(&chorus_kit::auth::Grant { subject: BEN.into(), tenant: String::new(), role: chorus_kit::auth::role::INFLUENCER.into(), scopes: vec!["measurement.self".into()] });
        let e = app.client(&ben).await.record_post_metrics(RecordPostMetricsRequest { deliverable: d1.clone(), snapshot: Some(PostMetricsSnapshot { observe_time: Some(timestamp(START)), reach: Some(1), ..Default::default() }), ..Default::default() }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let e = app.client(&ana).await.record_post_metrics(RecordPostMetricsRequest { deliverable: d1.clone(), snapshot: Some(PostMetricsSnapshot { observe_time: Some(timestamp(START)), reach: Some(-1), ..Default::default() }), ..Default::default() }).await.unwrap_err();
        assert_eq!(fields(&e), ["snapshot.reach"]);
        // The second is still missing when its due time passes: overdue, and said once.
        app.stack.clock.set(START + 49 * HOUR).unwrap();
        let overdue = loop {
            let d = watch.next(Duration::from_secs(10)).await.unwrap().expect("a MeasurementOverdue within 10 s");
            watch.ack(&d).await.unwrap();
            if let Some(p) = read::<MeasurementOverdue>(&d.envelope) {
                break p.unwrap();
            }
        };
        assert_eq!(overdue.deliverable, d2);
        assert_eq!(overdue.missing_metrics, ["reach", "impressions"]);
        assert_eq!(duty(d2.clone()).await.unwrap().state, DutyState::Overdue as i32);
        assert_eq!(duty(d1).await.unwrap().state, DutyState::Met as i32);
    };

    a_promo_code_redeemed_far_beyond_its_clicks_and_reach_is_flagged_once => |app: App| async move {
        let mut watch = chorus_testkit::events::watch(&*app.stack.shared_bus(), "chorus.measurement").await;
        let app = &app;
        let make = |influencer: &'static str, code: &'static str| async move {
            app.brand().await.create_promo_codes(CreatePromoCodesRequest {
                campaign: CAMPAIGN.into(),
                influencer: influencer.into(),
                code: code.into(),
                ..Default::default()
            }).await.unwrap().into_inner().promo_codes.remove(0)
        };
        let (ana_code, ben_code) = (make(ANA, "ana10").await, make(BEN, "ben10").await);
        // Ana's link is clicked twelve times; Ben's post (reach 100) twice.
        let ana = app.link(ANA, "").await;
        let ben_post = "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6b02/deliverables/1";
        let ben = app.link(BEN, ben_post).await;
        for _ in 0..12 {
            app.click(&ana, DIRECT, IPHONE).await;
        }
        for _ in 0..2 {
            app.click(&ben, DIRECT, IPHONE).await;
        }
        app.click(&ben, DIRECT, GOOGLEBOT).await;
        app.stored_clicks(&ana, 12).await;
        app.stored_clicks(&ben, 3).await;
        app.brand().await.record_post_metrics(RecordPostMetricsRequest {
            deliverable: ben_post.into(),
            snapshot: Some(PostMetricsSnapshot { observe_time: Some(timestamp(START)), reach: Some(100), ..Default::default() }),
            ..Default::default()
        }).await.unwrap();
        let orders = |prefix: &str, code: &str, n: usize| -> Vec<OrderInput> {
            (0..n).map(|i| order(&format!("{prefix}-{i}"), START + HOUR, 2_000, &[code], "")).collect()
        };
        // A few redemptions against many clicks, then 30 (not more than 3 x 12): no leak.
        app.record(orders("ana-a", "ANA10", 3)).await;
        app.record(orders("ana-b", "ANA10", 27)).await;
        // Ben's: 29 redemptions, over 3 x 2 clicks and 5% of a reach of 100, but under the 25
        // redemptions a leak needs until the batch that brings 26 more.
        app.record(orders("ben-a", "BEN10", 4)).await;
        let got = watch.next(Duration::from_millis(1_500)).await.unwrap();
        assert!(got.is_none(), "nothing flagged yet: {:?}", got.map(|d| d.envelope.r#type));
        // The Shopify webhook goes through the same ingest.
        let body = shopify_order("2001", "2027-01-15T09:00:00Z", "20.00", &["ben10"], "");
        assert_eq!(app.webhook(SHOP, SECRET, "orders/create", "w-ben", &body).await, 200);
        app.record(orders("ben-b", "BEN10", 25)).await;
        let leak = loop {
            let d = watch.next(Duration::from_secs(10)).await.unwrap().expect("a PromoCodeLeakSuspected within 10 s");
            watch.ack(&d).await.unwrap();
            if let Some(p) = read::<PromoCodeLeakSuspected>(&d.envelope) {
                assert_eq!(d.envelope.tenant, "acme");
                break p.unwrap();
            }
        };
        assert_eq!(leak.promo_code, ben_code.name);
        assert_eq!((leak.code.as_str(), leak.campaign.as_str(), leak.influencer.as_str()), ("BEN10", CAMPAIGN, BEN));
        assert_eq!((leak.redemptions, leak.clicks, leak.reach), (30, 2, 100));
        assert_eq!(leak.outside_country_share, 0.0);
        assert_eq!(leak.evidence, "30 redemptions against 2 clicks and a reach of 100");
        // Further redemptions, of either code, say nothing more.
        app.record(orders("ben-c", "BEN10", 5)).await;
        app.record(orders("ana-c", "ANA10", 1)).await;
        while let Some(d) = watch.next(Duration::from_millis(1_500)).await.unwrap() {
            watch.ack(&d).await.unwrap();
            assert!(read::<PromoCodeLeakSuspected>(&d.envelope).is_none(), "flagged again: {:?}", d.envelope);
        }
        let codes = app.brand().await.list_promo_codes(ListPromoCodesRequest::default()).await.unwrap().into_inner().promo_codes;
        let redeemed = |name: &str| codes.iter().find(|c| c.name == name).unwrap().redemptions;
        assert_eq!((redeemed(&ana_code.name), redeemed(&ben_code.name)), (31, 35));
    };

    a_campaign_the_tenant_knows_nothing_of_has_no_report => |app: App| async move {
        // The full report is checked in tests/report.rs.
        let e = app.brand().await.get_campaign_report(GetCampaignReportRequest { campaign: CAMPAIGN.into(), metric: 0 }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        app.link(ANA, "").await;
        let r = app.brand().await.get_campaign_report(GetCampaignReportRequest { campaign: CAMPAIGN.into(), metric: 0 }).await.unwrap().into_inner().report.unwrap();
        assert_eq!(r.campaign_figures.unwrap().clicks, 0);
        assert_eq!(r.segment_test.unwrap().sentence, "no segments yet: nothing to compare");
    };

    writes_under_another_tenants_campaign_or_contract_are_not_found => |app: App| async move {
        // Acme's campaign (its link claims it) and contract (contracts' event says so).
        app.link(ANA, "").await;
        app.activate(C1, CAMPAIGN, 1).await;
        let d1 = format!("{C1}/deliverables/1");
        eventually(Duration::from_secs(10), || async {
            let l = app.brand().await.list_links(ListLinksRequest { influencer: ANA.into(), ..Default::default() }).await.unwrap().into_inner().links;
            (l.len() == 2).then_some(()).ok_or("the contract's link not made yet")
        }).await;
        let mut globex = app.client(&app.other).await;
        let not_found = |r: Result<(), tonic::Status>, what: &str| {
            let e = r.unwrap_err();
            assert_eq!(e.code(), Code::NotFound, "{what}: {e:?}");
        };
        let link = |campaign: &str, deliverable: &str| CreateLinkRequest { link: Some(Link {
            campaign: campaign.into(), influencer: BEN.into(), deliverable: deliverable.into(),
            destination_url: "https://globex.example.com/".into(), ..Default::default()
        }), ..Default::default() };
        not_found(globex.create_link(link(CAMPAIGN, "")).await.map(|_| ()), "a link in acme's campaign");
        not_found(globex.create_link(link(CAMPAIGN2, &d1)).await.map(|_| ()), "a link for acme's deliverable");
        not_found(globex.create_promo_codes(CreatePromoCodesRequest {
            campaign: CAMPAIGN.into(), influencer: BEN.into(), code: "GLOBEX10".into(), ..Default::default()
        }).await.map(|_| ()), "a code in acme's campaign");
        not_found(globex.create_promo_codes(CreatePromoCodesRequest {
            campaign: CAMPAIGN2.into(), influencer: BEN.into(), contract: C1.into(), code: "GLOBEX11".into(), ..Default::default()
        }).await.map(|_| ()), "a code for acme's contract");
        not_found(globex.update_campaign_settings(UpdateCampaignSettingsRequest { settings: Some(CampaignSettings {
            name: format!("{CAMPAIGN}/measurementSettings"), destination_url: "https://globex.example.com/".into(), ..Default::default()
        }), ..Default::default() }).await.map(|_| ()), "acme's campaign settings");
        let snapshot = PostMetricsSnapshot { observe_time: Some(timestamp(START)), reach: Some(5), ..Default::default() };
        not_found(globex.record_post_metrics(RecordPostMetricsRequest {
            deliverable: d1.clone(), snapshot: Some(snapshot.clone()), ..Default::default()
        }).await.map(|_| ()), "metrics of acme's post");
        not_found(globex.list_post_metrics(ListPostMetricsRequest { deliverable: d1.clone() }).await.map(|_| ()), "acme's post's metrics");
        // Nothing of those was stored under either tenant.
        assert!(globex.list_links(ListLinksRequest::default()).await.unwrap().into_inner().links.is_empty());
        assert!(globex.list_promo_codes(ListPromoCodesRequest::default()).await.unwrap().into_inner().promo_codes.is_empty());
        assert_eq!(app.brand().await.list_links(ListLinksRequest::default()).await.unwrap().into_inner().links.len(), 2);
        assert!(app.brand().await.list_post_metrics(ListPostMetricsRequest { deliverable: d1.clone() }).await.unwrap().into_inner().snapshots.is_empty());
        let e = app.brand().await.get_campaign_settings(GetCampaignSettingsRequest { name: format!("{CAMPAIGN}/measurementSettings") }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "globex's settings did not land under acme either");
        // Acme itself writes on.
        app.brand().await.record_post_metrics(RecordPostMetricsRequest { deliverable: d1, snapshot: Some(snapshot), ..Default::default() }).await.unwrap();

        // A name nobody announced is the first writer's, until its owner's service says whose
        // it is: globex names CAMPAIGN2 first, then matching says it is acme's.
        let settings = |dest: &str| UpdateCampaignSettingsRequest { settings: Some(CampaignSettings {
            name: format!("{CAMPAIGN2}/measurementSettings"), destination_url: dest.into(), ..Default::default()
        }), ..Default::default() };
        globex.update_campaign_settings(settings("https://globex.example.com/")).await.unwrap();
        let e = app.brand().await.update_campaign_settings(settings(DEST)).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let changed = CampaignChanged { campaign: Some(Campaign { name: CAMPAIGN2.into(), ..Default::default() }) };
        app.stack.shared_bus().publish("chorus.matching", &envelope(&app.stack.clock, "acme", &changed)).await.unwrap();
        eventually(Duration::from_secs(10), || async {
            app.brand().await.update_campaign_settings(settings(DEST)).await.map(|_| ())
        }).await;
        let e = globex.update_campaign_settings(settings("https://globex.example.com/")).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    };

    a_retried_write_with_its_request_id_answers_as_the_first => |app: App| async move {
        let mut c = app.brand().await;
        let link = |dest: &str| CreateLinkRequest {
            link: Some(Link { campaign: CAMPAIGN.into(), influencer: ANA.into(), destination_url: dest.into(), ..Default::default() }),
            request_id: "link-1".into(),
        };
        let first = c.create_link(link(DEST)).await.unwrap().into_inner().link.unwrap();
        let again = c.create_link(link(DEST)).await.unwrap().into_inner().link.unwrap();
        assert_eq!(again, first);
        let e = c.create_link(link("https://shop.example.com/other")).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert!(e.message().contains("link-1"), "{e:?}");
        assert_eq!(c.list_links(ListLinksRequest::default()).await.unwrap().into_inner().links.len(), 1);
        // The same id is another tenant's own.
        let theirs = app.client(&app.other).await.create_link(CreateLinkRequest {
            link: Some(Link { campaign: CAMPAIGN2.into(), influencer: ANA.into(), destination_url: DEST.into(), ..Default::default() }),
            request_id: "link-1".into(),
        }).await.unwrap().into_inner().link.unwrap();
        assert_ne!(theirs.name, first.name);

        // Orders count once by their ids anyway; with a request id a retry also answers as the
        // first call did rather than "duplicate".
        let orders = RecordConversionsRequest { orders: vec![order("o-1", START, 1_000, &[], "")], request_id: "orders-1".into() };
        let first = c.record_conversions(orders.clone()).await.unwrap().into_inner();
        let again = c.record_conversions(orders.clone()).await.unwrap().into_inner();
        assert_eq!(again, first);
        assert!(!again.results[0].duplicate);
        let plain = c.record_conversions(RecordConversionsRequest { request_id: String::new(), ..orders }).await.unwrap().into_inner();
        assert!(plain.results[0].duplicate);
        let other = RecordConversionsRequest { orders: vec![order("o-2", START, 1_000, &[], "")], request_id: "orders-1".into() };
        assert_eq!(c.record_conversions(other).await.unwrap_err().code(), Code::FailedPrecondition);

        // A snapshot stored once; a refund and settings answered alike; the header works too.
        let d = format!("{C1}/deliverables/1");
        let snap = RecordPostMetricsRequest {
            deliverable: d.clone(),
            snapshot: Some(PostMetricsSnapshot { observe_time: Some(timestamp(START)), reach: Some(10), ..Default::default() }),
            request_id: "snap-1".into(),
        };
        let a = c.record_post_metrics(snap.clone()).await.unwrap().into_inner();
        let b = c.record_post_metrics(snap).await.unwrap().into_inner();
        assert_eq!(a, b);
        assert_eq!(c.list_post_metrics(ListPostMetricsRequest { deliverable: d }).await.unwrap().into_inner().snapshots.len(), 1);
        let refund = RecordRefundRequest { order_id: "o-1".into(), refund_id: "r-1".into(), amount: usd(100), request_id: "refund-1".into() };
        let a = c.record_refund(refund.clone()).await.unwrap().into_inner();
        assert_eq!(c.record_refund(refund).await.unwrap().into_inner(), a);
        let mut codes = tonic::Request::new(CreatePromoCodesRequest { campaign: CAMPAIGN.into(), influencer: ANA.into(), ..Default::default() });
        codes.metadata_mut().insert("idempotency-key", "codes-1".parse().unwrap());
        let a = c.create_promo_codes(codes).await.unwrap().into_inner();
        let mut codes = tonic::Request::new(CreatePromoCodesRequest { campaign: CAMPAIGN.into(), influencer: ANA.into(), ..Default::default() });
        codes.metadata_mut().insert("idempotency-key", "codes-1".parse().unwrap());
        assert_eq!(c.create_promo_codes(codes).await.unwrap().into_inner(), a, "a random code is not drawn twice");
        assert_eq!(c.list_promo_codes(ListPromoCodesRequest::default()).await.unwrap().into_inner().promo_codes.len(), 1);
    };

    a_promo_code_redeemed_mostly_outside_the_audience_country_is_flagged => |app: App| async move {
        let mut watch = chorus_testkit::events::watch(&*app.stack.shared_bus(), "chorus.measurement").await;
        app.brand().await.update_campaign_settings(UpdateCampaignSettingsRequest { settings: Some(CampaignSettings {
            name: format!("{CAMPAIGN}/measurementSettings"), audience_country: "US".into(), ..Default::default()
        }), ..Default::default() }).await.unwrap();
        let code = app.brand().await.create_promo_codes(CreatePromoCodesRequest {
            campaign: CAMPAIGN.into(), influencer: ANA.into(), code: "ana10".into(), ..Default::default()
        }).await.unwrap().into_inner().promo_codes.remove(0);
        // A big reach explains the number of orders: only the country rule can flag it.
        let post = format!("{C1}/deliverables/1");
        app.link(ANA, &post).await;
        app.brand().await.record_post_metrics(RecordPostMetricsRequest {
            deliverable: post,
            snapshot: Some(PostMetricsSnapshot { observe_time: Some(timestamp(START)), reach: Some(100_000), ..Default::default() }),
            ..Default::default()
        }).await.unwrap();
        // 22 orders, most from Germany: too few redemptions to say anything yet.
        let mut first: Vec<OrderInput> = (0..16).map(|i| order_from("de", &format!("de-{i}"), "ANA10")).collect();
        first.extend((0..6).map(|i| order_from("US", &format!("us-{i}"), "ANA10")));
        let recorded = app.record(first).await;
        assert_eq!(recorded[0].conversion.as_ref().unwrap().country, "DE");
        let got = watch.next(Duration::from_millis(1_500)).await.unwrap();
        assert!(got.is_none(), "nothing flagged yet: {:?}", got.map(|d| d.envelope.r#type));
        // One more from Germany by Shopify (its shipping address), then one and four with no
        // country in the batch that tips it.
        let body = shopify_order("3001", "2027-01-15T09:00:00Z", "20.00", &["ana10"], "")
            .replace(r#""landing_site""#, r#""shipping_address":{"country_code":"DE"},"landing_site""#);
        assert_eq!(app.webhook(SHOP, SECRET, "orders/create", "w-de", &body).await, 200);
        let shopify = app.conversions(&app.brand).await.into_iter().find(|c| c.order_id == "3001").unwrap();
        assert_eq!(shopify.country, "DE");
        let got = watch.next(Duration::from_millis(1_000)).await.unwrap();
        assert!(got.is_none(), "23 redemptions are not enough: {:?}", got.map(|d| d.envelope.r#type));
        let mut last = vec![order_from("DE", "de-x", "ANA10")];
        last.extend((0..4).map(|i| order_from("", &format!("none-{i}"), "ANA10")));
        app.record(last).await;
        let leak = loop {
            let d = watch.next(Duration::from_secs(10)).await.unwrap().expect("a PromoCodeLeakSuspected within 10 s");
            watch.ack(&d).await.unwrap();
            if let Some(p) = read::<PromoCodeLeakSuspected>(&d.envelope) {
                break p.unwrap();
            }
        };
        assert_eq!(leak.promo_code, code.name);
        assert_eq!((leak.redemptions, leak.clicks, leak.reach), (28, 0, 100_000));
        assert!((leak.outside_country_share - 0.75).abs() < 1e-9, "{}", leak.outside_country_share);
        assert_eq!(leak.evidence, "28 redemptions against 0 clicks and a reach of 100000; 18 of 24 with a known country (75%) outside US");
        let e = app.brand().await.record_conversions(RecordConversionsRequest { orders: vec![order_from("Germany", "bad", "")], ..Default::default() }).await.unwrap_err();
        assert_eq!(fields(&e), ["orders[0].country"]);
    };

    a_whole_refund_takes_back_the_conversion_and_its_redemption => |app: App| async move {
        app.brand().await.create_promo_codes(CreatePromoCodesRequest {
            campaign: CAMPAIGN.into(), influencer: ANA.into(), code: "ana10".into(), ..Default::default()
        }).await.unwrap();
        app.record(vec![
            order("o-1", START, 5_000, &["ANA10"], ""),
            order("o-2", START, 3_000, &["ANA10"], ""),
        ]).await;
        let f = app.figures(CAMPAIGN).await;
        assert_eq!((f.conversions, f.redemptions, f.revenue.unwrap().amount_minor), (2, 2, 8_000));
        let refund = |order: &str, id: &str, minor: i64| RecordRefundRequest { order_id: order.into(), refund_id: id.into(), amount: usd(minor), ..Default::default() };
        let mut c = app.brand().await;
        // A part refund lowers the revenue only.
        c.record_refund(refund("o-1", "r-1", 2_000)).await.unwrap();
        let f = app.figures(CAMPAIGN).await;
        assert_eq!((f.conversions, f.redemptions, f.revenue.unwrap().amount_minor), (2, 2, 6_000));
        // The whole of an order, in one refund or as the last of several, takes it back.
        c.record_refund(refund("o-2", "r-2", 3_000)).await.unwrap();
        let f = app.figures(CAMPAIGN).await;
        assert_eq!((f.conversions, f.redemptions, f.revenue.unwrap().amount_minor), (1, 1, 3_000));
        c.record_refund(refund("o-1", "r-3", 3_000)).await.unwrap();
        c.record_refund(refund("o-1", "r-3", 3_000)).await.unwrap();
        let f = app.figures(CAMPAIGN).await;
        assert_eq!((f.conversions, f.redemptions, f.revenue.unwrap().amount_minor), (0, 0, 0));
        // The code's own count still says how often it was used (the leak check's evidence).
        let codes = c.list_promo_codes(ListPromoCodesRequest::default()).await.unwrap().into_inner().promo_codes;
        assert_eq!(codes[0].redemptions, 2);
    };

    the_report_is_ready_once_when_every_measurement_duty_is_settled => |app: App| async move {
        let mut watch = chorus_testkit::events::watch(&*app.stack.shared_bus(), "chorus.measurement").await;
        let app = &app;
        let ana = &app.stack.mint(&chorus_kit::auth::Grant {
            subject: ANA.into(), tenant: String::new(), role: chorus_kit::auth::role::INFLUENCER.into(), scopes: vec!["measurement.self".into()],
        });
        let report = |deliverable: String| async move {
            app.client(ana).await.record_post_metrics(RecordPostMetricsRequest {
                deliverable,
                snapshot: Some(PostMetricsSnapshot { observe_time: Some(timestamp(START)), reach: Some(500), ..Default::default() }),
                ..Default::default()
            }).await.map(|_| ())
        };
        // The first campaign: two posts; one is reported, the other never is.
        app.activate(C1, CAMPAIGN, 2).await;
        app.approve(C1, CAMPAIGN, 1).await;
        app.approve(C1, CAMPAIGN, 2).await;
        let d1 = format!("{C1}/deliverables/1");
        eventually(Duration::from_secs(10), || app.duty(format!("{C1}/deliverables/2"))).await;
        eventually(Duration::from_secs(10), || report(d1.clone())).await;
        // The second campaign: its one post is reported before it is due: ready at once.
        app.activate(C2, CAMPAIGN2, 1).await;
        app.approve(C2, CAMPAIGN2, 1).await;
        eventually(Duration::from_secs(10), || app.duty(format!("{C2}/deliverables/1"))).await;
        eventually(Duration::from_secs(10), || report(format!("{C2}/deliverables/1"))).await;
        let mut ready: Vec<ReportReady> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while ready.is_empty() && Instant::now() < deadline {
            if let Some(d) = watch.next(Duration::from_millis(500)).await.unwrap() {
                watch.ack(&d).await.unwrap();
                if let Some(p) = read::<ReportReady>(&d.envelope) {
                    assert_eq!(d.envelope.tenant, "acme");
                    ready.push(p.unwrap());
                }
            }
        }
        assert_eq!(ready.len(), 1, "{ready:?}");
        assert_eq!(ready[0].campaign, CAMPAIGN2);
        assert_eq!(ready[0].data_through_time, Some(timestamp(START)));
        assert!(!ready[0].summary.is_empty());
        // The first campaign's second post falls due unreported: overdue, and then ready, once.
        app.stack.clock.set(START + 49 * HOUR).unwrap();
        let mut overdue = 0;
        while let Some(d) = watch.next(Duration::from_millis(2_000)).await.unwrap() {
            watch.ack(&d).await.unwrap();
            if read::<MeasurementOverdue>(&d.envelope).is_some() {
                overdue += 1;
            }
            if let Some(p) = read::<ReportReady>(&d.envelope) {
                ready.push(p.unwrap());
            }
        }
        assert_eq!(overdue, 1);
        let campaigns: Vec<&str> = ready.iter().map(|r| r.campaign.as_str()).collect();
        assert_eq!(campaigns, [CAMPAIGN2, CAMPAIGN], "each campaign once");
        assert_eq!(ready[1].data_through_time, Some(timestamp(START + 49 * HOUR)));
        // A report on request still works, and says nothing more.
        app.figures(CAMPAIGN).await;
        assert!(watch.next(Duration::from_millis(1_000)).await.unwrap().is_none());
    };
}
