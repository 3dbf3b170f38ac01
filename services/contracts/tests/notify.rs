//! Notifications to influencers over real SMTP, on PostgreSQL and SQLite: a sink the test starts
//! (Python's aiosmtpd) receives the offer, the reminders, the changes a brand asks for and the
//! payment, each once; the registry decides whose address may be used (their consent); a
//! server that defers a message does not lose it; a refusal is recorded; a replayed event
//! mails nothing after a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chorus_contracts::notify::send::METRIC;
use chorus_kit::auth::SigningKey;
use chorus_kit::clock::Clock;
use chorus_kit::events::{envelope, read};
use chorus_kit::runtime::Launched;
use chorus_proto::contracts::contracts_service_client::ContractsServiceClient;
use chorus_proto::contracts::*;
use chorus_proto::event::Envelope;
use chorus_proto::identity::identity_service_client::IdentityServiceClient;
use chorus_proto::identity::{IssueTokenRequest, issue_token_request};
use chorus_proto::payouts::PayoutPaid;
use chorus_proto::registry::registry_service_client::RegistryServiceClient;
use chorus_proto::registry::{Consent, Contact, CreateInfluencerRequest, Influencer, SocialAccount};
use chorus_proto::types::{DeliverableKind, Money, Platform};
use chorus_testkit::metrics::Metrics;
use chorus_testkit::{Authed, Backend, Stack, eventually, on_both_backends};
use serde_json::Value;

const CAMPAIGN: &str = "campaigns/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70";
/// 2027-01-15T08:00:00Z.
const START: i64 = 1_800_000_000_000_000;
const DAY: u64 = 86_400;
/// Deliveries the sink defers before it takes one: more than the adapter's three tries, so the
/// bus must bring the event again.
const DEFERRALS: usize = 4;

/// The SMTP sink, stopped when dropped.
struct Sink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sink {
    fn start() -> Sink {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join(".tools/venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: scripts/test installs aiosmtpd there",
            python.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py"))
            .arg(port.to_string())
            .arg(dir.path())
            .args(["--defer", &DEFERRALS.to_string(), "--refuse-domain", "refused.example"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        Sink { child, port, dir }
    }

    /// Every message taken so far, in order.
    fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap())
            .collect()
    }

    fn deferred(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("deferred.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// Waits for a message whose subject is `subject`.
    async fn wait_for(&self, subject: &str) -> Value {
        eventually(Duration::from_secs(20), || async move {
            self.messages()
                .into_iter()
                .find(|m| m["subject"] == subject)
                .ok_or_else(|| format!("no message {subject:?} yet: {:?}", self.messages()))
        })
        .await
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn body(m: &Value) -> String {
    m["body"].as_str().unwrap().replace("\r\n", "\n")
}

struct App {
    metrics: Metrics,
    stack: Stack,
    registry: Launched,
    db: String,
    settings: Vec<(&'static str, String)>,
    contracts: Option<Launched>,
    brand: String,
    sink: Sink,
}

async fn spawn(backend: Backend) -> App {
    let metrics = Metrics::install();
    let sink = Sink::start();
    let mut stack = Stack::with_clock(backend, Clock::manual(START));
    let registry_db = stack.database().await;
    let registry = stack.launch(&chorus_registry::SERVICE, &registry_db, &[]).await;
    let db = stack.database().await;
    let settings = vec![
        ("CHORUS_SEALING_KEY", SigningKey::generate().unwrap().to_pem()),
        ("CHORUS_SMTP_URL", format!("smtp://127.0.0.1:{}", sink.port)),
        ("CHORUS_SMTP_FROM", "Chorus <no-reply@chorus.test>".to_owned()),
        ("CHORUS_SMTP_RETRY_DELAY_MS", "50".to_owned()),
        ("CHORUS_REGISTRY_URL", format!("http://{}", registry.addr)),
    ];
    let contracts = stack.launch(&chorus_contracts::SERVICE, &db, &settings).await;
    let brand = stack.token("acme", &["contracts.read", "contracts.write"]);
    App {
        metrics,
        stack,
        registry,
        db,
        settings,
        contracts: Some(contracts),
        brand,
        sink,
    }
}

impl App {
    async fn client(&self, token: &str) -> ContractsServiceClient<Authed> {
        let addr = self.contracts.as_ref().unwrap().addr;
        ContractsServiceClient::new(chorus_testkit::authed(addr, Some(token.to_owned())).await)
    }

    /// A profile in the catalogue with `email`, consenting to contact or not.
    async fn person(&self, handle: &str, email: &str, consent: bool) -> String {
        let token = self.stack.token("curators", &["registry.curate"]);
        RegistryServiceClient::new(chorus_testkit::authed(self.registry.addr, Some(token)).await)
            .create_influencer(CreateInfluencerRequest {
                influencer: Some(Influencer {
                    display_name: handle.into(),
                    accounts: vec![SocialAccount {
                        platform: Platform::Instagram as i32,
                        handle: handle.into(),
                        ..Default::default()
                    }],
                    languages: vec!["en".into()],
                    contact: Some(Contact {
                        email: email.into(),
                        phone: String::new(),
                    }),
                    consent: Some(Consent {
                        contact_allowed: consent,
                        data_processing_allowed: true,
                        consent_time: Some(chorus_kit::clock::timestamp(START)),
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .influencer
            .unwrap()
            .name
    }

    fn counted(&self, kind: &str, outcome: &str) -> u64 {
        self.metrics.counter(METRIC, &[("kind", kind), ("outcome", outcome)])
    }

    async fn wait_counted(&self, kind: &str, outcome: &str, n: u64) {
        eventually(Duration::from_secs(20), || async move {
            match self.counted(kind, outcome) {
                c if c >= n => Ok(()),
                c => Err(format!("{c} of {n} {kind} notifications {outcome}")),
            }
        })
        .await;
    }

    async fn restart_contracts(&mut self) {
        self.contracts.take().unwrap().shutdown().await.unwrap();
        let settings: Vec<(&str, String)> = self.settings.clone();
        self.contracts = Some(self.stack.launch(&chorus_contracts::SERVICE, &self.db, &settings).await);
    }
}

/// The OfferSent event of `influencer`'s offer, read from `events`.
async fn offer_sent_to(events: &mut Box<dyn chorus_kit::events::Subscription>, influencer: &str) -> Envelope {
    loop {
        let d = events
            .next(Duration::from_secs(5))
            .await
            .unwrap()
            .expect("an OfferSent event");
        events.ack(&d).await.unwrap();
        if let Some(sent) = read::<OfferSent>(&d.envelope)
            && sent.unwrap().offer.unwrap().influencer == influencer
        {
            return d.envelope;
        }
    }
}

fn usd(minor: i64) -> Option<Money> {
    Some(Money {
        currency_code: "USD".into(),
        amount_minor: minor,
    })
}

fn terms() -> Terms {
    Terms {
        deliverables: vec![DeliverableTerm {
            kind: DeliverableKind::FeedPost as i32,
            platform: Platform::Instagram as i32,
            count: 2,
            due_time: Some(chorus_kit::clock::timestamp(START + 20 * DAY as i64 * 1_000_000)),
            brief: "Morning walk with the new harness".into(),
        }],
        compensation: Some(Compensation {
            cash: usd(25_000),
            ..Default::default()
        }),
        disclosure_jurisdiction: "US".into(),
        disclosure_language: "en".into(),
        content_review: true,
        grace_days: 3,
        ..Default::default()
    }
}

on_both_backends! { spawn;
    each_notification_reaches_the_influencer_once_by_smtp => |app: App| async move {
        let mut app = app;
        let mut events = chorus_testkit::events::watch(app.stack.shared_bus().as_ref(), "chorus.contracts").await;
        let ana = app.person("ana", "ana@example.com", true).await;
        let ben = app.person("ben", "ben@example.com", false).await;
        let cleo = app.person("cleo", "cleo@refused.example", true).await;

        let mut brand = app.client(&app.brand).await;
        brand
            .set_offer_template(SetOfferTemplateRequest {
                template: Some(OfferTemplate {
                    campaign: CAMPAIGN.into(),
                    terms: Some(terms()),
                    offer_valid_days: 7,
                    brand_names: vec!["Pawsome".into()],
                    brand_display_name: "Pawsome".into(),
                    update_time: None,
                }),
            })
            .await
            .unwrap();
        let targets = [&ana, &ben, &cleo].map(|i| OfferTarget { influencer: i.to_string(), segment: String::new() });
        let made = brand
            .create_offers(CreateOffersRequest { campaign: CAMPAIGN.into(), shortlist: String::new(), targets: targets.to_vec(), request_id: String::new() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(made.offers.len(), 3, "{made:?}");
        let offers = brand.list_offers(ListOffersRequest { campaign: CAMPAIGN.into(), ..Default::default() }).await.unwrap().into_inner().offers;
        let ana_offer = offers.iter().find(|o| o.influencer == ana).unwrap().clone();

        // Ana's invitation arrives once, although the server deferred it more often than the
        // adapter tries: the bus brought the event again. Ben did not consent to contact: no
        // address, no mail. Cleo's server refuses her for good: recorded, not retried.
        let invitation = app.sink.wait_for("Pawsome invites you to a campaign").await;
        assert_eq!(invitation["to"], serde_json::json!(["ana@example.com"]));
        assert_eq!(invitation["from"], "no-reply@chorus.test");
        let text = body(&invitation);
        assert!(text.contains(&format!("({})", ana_offer.name)), "{text}");
        assert!(text.contains("/sign-in#code="), "{text}");
        assert!(text.contains("open until 2027-01-22 08:00 UTC"), "{text}");
        assert_eq!(app.sink.deferred(), DEFERRALS);
        app.wait_counted("offer", "refused", 1).await;
        app.wait_counted("offer", "no_address", 1).await;
        app.wait_counted("offer", "sent", 1).await;
        assert_eq!(app.counted("offer", "sent"), 1);
        let ana_sent = offer_sent_to(&mut events, &ana).await;
        assert_eq!(invitation["message_id"], format!("<{}@chorus>", ana_sent.id));

        // Two days before the offer expires: a reminder, without a sign-in code.
        app.stack.clock.advance(Duration::from_secs(5 * DAY + 60)).unwrap();
        let reminder = app.sink.wait_for("Reminder: Pawsome's offer closes soon").await;
        assert!(body(&reminder).contains(&format!("({}) is open until 2027-01-22 08:00 UTC", ana_offer.name)), "{}", body(&reminder));
        assert!(!body(&reminder).contains("code="));

        // Ana signs in with the code of her invitation, accepts, and both sign; her post goes
        // to the brand's review, which asks for changes.
        let code = text.rsplit("#code=").next().unwrap().split_whitespace().next().unwrap().to_owned();
        let identity = tonic::transport::Endpoint::from_shared(app.stack.identity_url().unwrap()).unwrap().connect().await.unwrap();
        let ana_token = IdentityServiceClient::new(identity)
            .issue_token(IssueTokenRequest { grant: Some(issue_token_request::Grant::InvitationCode(code)), scopes: vec![] })
            .await
            .expect("the mailed code signs Ana in")
            .into_inner()
            .access_token;
        let mut ana_client = app.client(&ana_token).await;
        let contract = ana_client.accept_offer(AcceptOfferRequest { name: ana_offer.name.clone(), version: 1 }).await.unwrap().into_inner().contract.unwrap();
        let sign = SignContractRequest { name: contract.name.clone(), terms_version: 1, terms_sha256: contract.terms_sha256.clone(), ip_address: "203.0.113.7".into(), user_agent: "ChorusApp/1.0".into() };
        ana_client.sign_contract(sign.clone()).await.unwrap();
        brand.sign_contract(sign).await.unwrap();
        let parts = ana_client.list_deliverables(ListDeliverablesRequest { parent: contract.name.clone() }).await.unwrap().into_inner().deliverables;
        let first = parts[0].name.clone();
        let submitted = ana_client
            .submit_deliverable(SubmitDeliverableRequest { name: first.clone(), submission: Some(Submission {
                url: "https://www.instagram.com/p/Cx1".into(),
                platform: Platform::Instagram as i32,
                kind: DeliverableKind::FeedPost as i32,
                caption: "#ad Morning walks just got better with the @pawsome harness".into(),
                ..Default::default()
            }) })
            .await
            .unwrap()
            .into_inner()
            .deliverable
            .unwrap();
        assert_eq!(submitted.state, DeliverableState::InReview as i32);
        brand
            .review_deliverable(ReviewDeliverableRequest { name: first.clone(), decision: ReviewDecision::RequestChanges as i32, reason: "Show the harness's logo".into() })
            .await
            .unwrap();
        let changes = app.sink.wait_for("Pawsome asks for changes to your post").await;
        let text = body(&changes);
        assert!(text.contains("\n\nShow the harness's logo\n\n"), "{text}");
        assert!(text.contains(&format!("the feed post on Instagram due 2027-02-04 08:00 UTC ({first})")), "{text}");

        // Two days before the posts are due: a reminder for each (the first was sent back, so
        // it is still owed).
        app.stack.clock.advance(Duration::from_secs(13 * DAY)).unwrap();
        app.wait_counted("reminder", "sent", 3).await;
        let due: Vec<Value> = app.sink.messages().into_iter().filter(|m| m["subject"] == "Reminder: your post for Pawsome is due soon").collect();
        assert_eq!(due.len(), 2, "{due:?}");
        for p in &parts {
            assert!(due.iter().any(|m| body(m).contains(&format!("({})", p.name))), "no reminder for {}: {due:?}", p.name);
        }

        // Payouts paid the first post's share.
        let paid = envelope(&app.stack.clock, "acme", &PayoutPaid {
            payout: "payouts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6aa1".into(),
            contract: contract.name.clone(),
            campaign: CAMPAIGN.into(),
            influencer: ana.clone(),
            deliverable: first.clone(),
            kind: 1,
            amount: usd(12_500),
            provider: "stripe".into(),
        });
        app.stack.shared_bus().publish("chorus.payouts", &paid).await.unwrap();
        let payment = app.sink.wait_for("Pawsome paid you USD 125.00").await;
        assert!(body(&payment).contains(&format!("(payouts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6aa1, for {first}, contract {})", contract.name)), "{}", body(&payment));

        // Everything went to Ana, once each: invitation, two kinds of reminder (three in all),
        // the changes asked for, the payment.
        let all = app.sink.messages();
        assert_eq!(all.len(), 6, "{all:?}");
        assert!(all.iter().all(|m| m["to"] == serde_json::json!(["ana@example.com"])), "{all:?}");

        // After a restart (no memory of what this process saw), the same events again mail
        // nothing: the notifications table remembers them.
        app.restart_contracts().await;
        app.stack.shared_bus().publish("chorus.contracts", &ana_sent).await.unwrap();
        app.stack.shared_bus().publish("chorus.payouts", &paid).await.unwrap();
        app.wait_counted("offer", "duplicate", 1).await;
        app.wait_counted("paid", "duplicate", 1).await;
        assert_eq!(app.sink.messages().len(), 6);
    };
}
