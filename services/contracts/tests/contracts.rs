//! Contracts over real gRPC, on PostgreSQL and SQLite: a campaign's template, offers to
//! shortlisted people, a counter, an acceptance, both signatures on the exact hash, the sealed
//! record verified offline, the PDF, deliverables checked for disclosure, approval that
//! releases money, and a missed deadline that breaches. Every party sees only its own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chorus_kit::auth::{Grant, SigningKey, role};
use chorus_kit::clock::Clock;
use chorus_kit::events::{HANDLED_METRIC, envelope, read};
use chorus_kit::runtime::Launched;
use chorus_proto::contracts::contracts_service_client::ContractsServiceClient;
use chorus_proto::contracts::disclosure_service_client::DisclosureServiceClient;
use chorus_proto::contracts::*;
use chorus_proto::matching::{Decision, ShortlistMemberDecided};
use chorus_proto::types::{DeliverableKind, Money, Platform};
use chorus_testkit::metrics::Metrics;
use chorus_testkit::{Authed, Backend, Stack, eventually, on_both_backends};
use tonic::Code;
use tonic_types::StatusExt;

const CAMPAIGN: &str = "campaigns/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70";
const SHORTLIST: &str =
    "campaigns/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70/shortlists/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a71";
const ANA: &str = "influencers/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a01";
const BEN: &str = "influencers/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a02";
const CLEO: &str = "influencers/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a03";
/// 2027-01-15T08:00:00Z.
const START: i64 = 1_800_000_000_000_000;
const DAY: i64 = 86_400_000_000;

struct App {
    metrics: Metrics,
    stack: Stack,
    contracts: Launched,
    brand: String,
}

async fn spawn(backend: Backend) -> App {
    let metrics = Metrics::install();
    let mut stack = Stack::with_clock(backend, Clock::manual(START));
    let db = stack.database().await;
    let contracts = stack
        .launch(
            &chorus_contracts::SERVICE,
            &db,
            &[("CHORUS_SEALING_KEY", SigningKey::generate().unwrap().to_pem())],
        )
        .await;
    let brand = stack.token("acme", &["contracts.read", "contracts.write"]);
    App {
        metrics,
        stack,
        contracts,
        brand,
    }
}

fn usd(minor: i64) -> Option<Money> {
    Some(Money {
        currency_code: "USD".into(),
        amount_minor: minor,
    })
}

fn terms(cash_minor: i64) -> Terms {
    Terms {
        deliverables: vec![DeliverableTerm {
            kind: DeliverableKind::FeedPost as i32,
            platform: Platform::Instagram as i32,
            count: 2,
            due_time: Some(chorus_kit::clock::timestamp(START + 20 * DAY)),
            brief: "Morning walk with the new harness".into(),
        }],
        compensation: Some(Compensation {
            cash: usd(cash_minor),
            gift_cards: vec![],
            products: vec![Product {
                sku: "PAW-HARNESS-M".into(),
                title: "Pawsome harness, medium".into(),
                declared_value: usd(4_500),
                quantity: 1,
            }],
        }),
        usage_rights: Some(UsageRights {
            channels: vec![UsageChannel::OrganicSocial as i32],
            days: 90,
            paid_amplification: false,
        }),
        exclusivity: Some(Exclusivity {
            category: "pets".into(),
            days: 30,
        }),
        disclosure_jurisdiction: "US".into(),
        disclosure_language: "en".into(),
        content_review: false,
        reporting: Some(ReportingDuty {
            metrics: vec!["reach".into(), "impressions".into()],
            due_days_after_post: 7,
        }),
        grace_days: 3,
        notes: String::new(),
    }
}

fn with_key<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert("idempotency-key", key.parse().unwrap());
    r
}

impl App {
    async fn client(&self, token: &str) -> ContractsServiceClient<Authed> {
        ContractsServiceClient::new(chorus_testkit::authed(self.contracts.addr, Some(token.to_owned())).await)
    }

    fn influencer(&self, name: &str) -> String {
        self.stack.mint(&Grant {
            subject: name.into(),
            tenant: String::new(),
            role: role::INFLUENCER.into(),
            scopes: vec!["contracts.respond".into()],
        })
    }

    async fn template(&self) {
        self.client(&self.brand)
            .await
            .set_offer_template(SetOfferTemplateRequest {
                template: Some(OfferTemplate {
                    campaign: CAMPAIGN.into(),
                    terms: Some(terms(25_000)),
                    offer_valid_days: 7,
                    brand_names: vec!["Pawsome".into(), "@pawsome".into()],
                    brand_display_name: "Pawsome".into(),
                    update_time: None,
                }),
            })
            .await
            .unwrap();
    }

    /// Matching's word that the brand accepted `who` on the shortlist, as the bus carries it.
    async fn shortlisted(&self, who: &str, decision: Decision) {
        let e = envelope(
            &self.stack.clock,
            "acme",
            &ShortlistMemberDecided {
                shortlist: SHORTLIST.into(),
                campaign: CAMPAIGN.into(),
                influencer: who.into(),
                decision: decision as i32,
                segment: "austin".into(),
                candidate: None,
            },
        );
        self.stack.shared_bus().publish("chorus.matching", &e).await.unwrap();
    }

    /// Offers to the accepted members of the shortlist, once contracts has taken `heard` of
    /// matching's events.
    async fn offers_from_shortlist(&self, heard: u64) -> CreateOffersResponse {
        let taken: &[(&str, &str)] = &[("topic", "chorus.matching"), ("group", "contracts"), ("outcome", "ok")];
        eventually(Duration::from_secs(10), || async move {
            match self.metrics.counter(HANDLED_METRIC, taken) {
                n if n >= heard => Ok(()),
                n => Err(format!("{n} of {heard} shortlist decisions taken")),
            }
        })
        .await;
        self.client(&self.brand)
            .await
            .create_offers(CreateOffersRequest {
                campaign: CAMPAIGN.into(),
                shortlist: SHORTLIST.into(),
                targets: vec![],
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
    }
}

fn watch_types(events: &[chorus_proto::event::Envelope]) -> Vec<String> {
    events.iter().map(|e| e.r#type.clone()).collect()
}

async fn drain(sub: &mut Box<dyn chorus_kit::events::Subscription>, until: &str) -> Vec<chorus_proto::event::Envelope> {
    let mut seen = Vec::new();
    loop {
        let d = sub
            .next(Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no {until} within 10 s; saw {:?}", watch_types(&seen)));
        let t = d.envelope.r#type.clone();
        sub.ack(&d).await.unwrap();
        seen.push(d.envelope);
        if t == until {
            return seen;
        }
    }
}

on_both_backends! { spawn;
    an_offer_becomes_a_sealed_contract_whose_posts_release_money => |app: App| async move {
        let mut sub = chorus_testkit::events::watch(app.stack.shared_bus().as_ref(), "chorus.contracts").await;
        app.template().await;
        app.shortlisted(ANA, Decision::Accepted).await;
        app.shortlisted(BEN, Decision::Accepted).await;
        app.shortlisted(CLEO, Decision::Rejected).await;
        let made = app.offers_from_shortlist(3).await;
        assert_eq!(made.offers.len(), 2, "{made:?}");
        // Asking again offers nobody twice.
        let again = app.offers_from_shortlist(3).await;
        assert_eq!(again.skipped.len(), 2, "{again:?}");
        assert!(again.offers.is_empty());
        assert!(again.skipped.iter().all(|s| s.reason == "ALREADY_OFFERED"), "{again:?}");

        let brand = app.client(&app.brand).await;
        let offers = brand.clone().list_offers(ListOffersRequest { campaign: CAMPAIGN.into(), ..Default::default() }).await.unwrap().into_inner().offers;
        let ana_offer = offers.iter().find(|o| o.influencer == ANA).unwrap().clone();
        let ben_offer = offers.iter().find(|o| o.influencer == BEN).unwrap().clone();
        assert_eq!(ana_offer.segment, "austin");

        // Ana (signed in; her invitation is tests/notify.rs's) sees her offer and not Ben's.
        let ana_token = app.influencer(ANA);
        let mut ana = app.client(&ana_token).await;
        let mine = ana.list_offers(ListOffersRequest::default()).await.unwrap().into_inner().offers;
        assert_eq!(mine.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), [ana_offer.name.as_str()]);
        let err = ana.get_offer(GetOfferRequest { name: ben_offer.name.clone() }).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        // An influencer may not set templates or withdraw offers.
        let err = ana.withdraw_offer(WithdrawOfferRequest { name: ana_offer.name.clone(), reason: String::new() }).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);

        // She counters with more cash; she cannot accept her own counter; the brand accepts it.
        let countered = ana
            .counter_offer(CounterOfferRequest { name: ana_offer.name.clone(), version: 1, terms: Some(terms(30_000)), message: "two posts is more work".into() })
            .await
            .unwrap()
            .into_inner()
            .offer
            .unwrap();
        assert_eq!((countered.version, countered.versions.len()), (2, 2));
        let err = ana.accept_offer(AcceptOfferRequest { name: ana_offer.name.clone(), version: 2 }).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(err.message().contains("the influencer proposed version 2"), "{}", err.message());
        let err = brand.clone().accept_offer(AcceptOfferRequest { name: ana_offer.name.clone(), version: 1 }).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(err.message().contains("current version is 2"), "{}", err.message());
        let accepted = brand
            .clone()
            .accept_offer(with_key(AcceptOfferRequest { name: ana_offer.name.clone(), version: 2 }, "accept-ana"))
            .await
            .unwrap()
            .into_inner();
        let contract = accepted.contract.unwrap();
        assert_eq!(contract.state, ContractState::Sent as i32);
        assert_eq!(contract.terms_sha256.len(), 64);
        // The retry of the same request answers the same contract.
        let retry = brand
            .clone()
            .accept_offer(with_key(AcceptOfferRequest { name: ana_offer.name.clone(), version: 2 }, "accept-ana"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(retry.contract.unwrap().name, contract.name);

        // Signing: a wrong hash names the current one; each party signs the hash it saw.
        let err = ana
            .sign_contract(SignContractRequest { name: contract.name.clone(), terms_version: 1, terms_sha256: "0".repeat(64), ip_address: "203.0.113.7".into(), user_agent: "ChorusApp/1.0".into() })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(err.message().contains(&contract.terms_sha256), "{}", err.message());
        let sign = |ip: &str| SignContractRequest { name: contract.name.clone(), terms_version: 1, terms_sha256: contract.terms_sha256.clone(), ip_address: ip.into(), user_agent: "ChorusApp/1.0".into() };
        let one = ana.sign_contract(sign("203.0.113.7")).await.unwrap().into_inner().contract.unwrap();
        assert_eq!(one.state, ContractState::SignedByOne as i32);
        let both = brand.clone().sign_contract(sign("198.51.100.20")).await.unwrap().into_inner().contract.unwrap();
        assert_eq!(both.state, ContractState::Active as i32);
        assert!(both.seal.is_some());
        let seen = drain(&mut sub, "chorus.contracts.v1.ExclusivityStarted").await;
        let activated = seen.iter().find_map(read::<ContractActivated>).unwrap().unwrap();
        assert_eq!(activated.total_value.unwrap().amount_minor, 30_000 + 4_500);

        // The sealed record verifies offline with the published key; the PDF carries the terms.
        let keys = ContractsServiceClient::new(chorus_testkit::authed(app.contracts.addr, None).await)
            .get_sealing_keys(GetSealingKeysRequest {})
            .await
            .expect("the sealing keys need no token")
            .into_inner()
            .keys;
        let sealed = brand.clone().get_contract_document(GetContractDocumentRequest { name: contract.name.clone(), format: DocumentFormat::SealedJson as i32 }).await.unwrap().into_inner().document.unwrap();
        let jwks: Vec<chorus_proto::identity::JsonWebKey> = keys.iter().map(|k| chorus_proto::identity::JsonWebKey { kty: k.kty.clone(), crv: k.crv.clone(), x: k.x.clone(), kid: k.kid.clone(), alg: "EdDSA".into(), r#use: "sig".into() }).collect();
        chorus_contracts::domain::seal::verify(&sealed.content, &jwks).expect("the sealed record verifies");
        let mut tampered = String::from_utf8(sealed.content.clone()).unwrap();
        tampered = tampered.replacen("203.0.113.7", "203.0.113.8", 1);
        assert!(chorus_contracts::domain::seal::verify(tampered.as_bytes(), &jwks).is_err());
        let pdf = ana.get_contract_document(GetContractDocumentRequest { name: contract.name.clone(), format: 0 }).await.unwrap().into_inner().document.unwrap();
        assert_eq!(pdf.content_type, "application/pdf");
        let text = pdftotext(&pdf.content);
        for needle in [contract.terms_sha256.as_str(), "300.00 USD", "PAW-HARNESS-M", "203.0.113.7", "198.51.100.20"] {
            assert!(text.contains(needle), "the PDF lacks {needle:?}:\n{text}");
        }

        // Deliverables: a caption whose only "ad" is #adventure goes back with the finding;
        // a disclosed one is approved (no review in these terms) and releases half the cash.
        let parts = ana.list_deliverables(ListDeliverablesRequest { parent: contract.name.clone() }).await.unwrap().into_inner().deliverables;
        assert_eq!(parts.len(), 2);
        let first = parts[0].name.clone();
        let post = |caption: &str| Submission {
            url: "https://www.instagram.com/p/Cx1".into(),
            platform: Platform::Instagram as i32,
            kind: DeliverableKind::FeedPost as i32,
            caption: caption.into(),
            ..Default::default()
        };
        let back = ana
            .submit_deliverable(SubmitDeliverableRequest { name: first.clone(), submission: Some(post("Morning walks just got better with @pawsome #adventure #dogsofinstagram")) })
            .await
            .unwrap()
            .into_inner()
            .deliverable
            .unwrap();
        assert_eq!(back.state, DeliverableState::ChangesRequested as i32);
        assert_eq!(back.submissions[0].check.as_ref().unwrap().verdict, Verdict::NonCompliant as i32);
        assert!(back.change_reason.starts_with("ad disclosure:"), "{}", back.change_reason);
        let err = brand.clone().submit_deliverable(SubmitDeliverableRequest { name: first.clone(), submission: Some(post("#ad x")) }).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        let ok = ana
            .submit_deliverable(SubmitDeliverableRequest { name: first.clone(), submission: Some(post("#ad Morning walks just got better with the @pawsome harness")) })
            .await
            .unwrap()
            .into_inner()
            .deliverable
            .unwrap();
        assert_eq!(ok.state, DeliverableState::Approved as i32, "{ok:?}");
        let seen = drain(&mut sub, "chorus.contracts.v1.DeliverableApproved").await;
        let approved = seen.iter().find_map(read::<DeliverableApproved>).unwrap().unwrap();
        assert_eq!((approved.index, approved.total, approved.r#final), (1, 2, false));
        assert_eq!(approved.cash_release.unwrap().amount_minor, 15_000);
        assert_eq!(approved.segment, "austin");

        // The second post never comes: overdue at its date, breached after three days' grace.
        app.stack.clock.advance(Duration::from_secs(21 * 86_400)).unwrap();
        let seen = drain(&mut sub, "chorus.contracts.v1.DeliverableOverdue").await;
        let overdue = seen.iter().find_map(read::<DeliverableOverdue>).unwrap().unwrap();
        assert_eq!(overdue.deliverable, parts[1].name);
        app.stack.clock.advance(Duration::from_secs(3 * 86_400)).unwrap();
        drain(&mut sub, "chorus.contracts.v1.ContractBreached").await;
        let c = brand.clone().get_contract(GetContractRequest { name: contract.name.clone() }).await.unwrap().into_inner().contract.unwrap();
        assert_eq!(c.state, ContractState::Breached as i32);
        assert!(c.reason.contains(&parts[1].name), "{}", c.reason);
    };

    another_tenant_and_another_influencer_find_nothing => |app: App| async move {
        app.template().await;
        let made = app
            .client(&app.brand)
            .await
            .create_offers(CreateOffersRequest { campaign: CAMPAIGN.into(), shortlist: String::new(), targets: vec![OfferTarget { influencer: ANA.into(), segment: String::new() }], request_id: String::new() })
            .await
            .unwrap()
            .into_inner();
        let offer = made.offers[0].clone();
        let rival = app.stack.token("globex", &["contracts.read", "contracts.write"]);
        let mut rival = app.client(&rival).await;
        let mut ben = app.client(&app.influencer(BEN)).await;
        for (who, client) in [("rival", &mut rival), ("ben", &mut ben)] {
            let e = client.get_offer(GetOfferRequest { name: offer.clone() }).await.unwrap_err();
            assert_eq!(e.code(), Code::NotFound, "{who}");
            let e = client.accept_offer(AcceptOfferRequest { name: offer.clone(), version: 1 }).await.unwrap_err();
            assert_eq!(e.code(), Code::NotFound, "{who}");
            let e = client.decline_offer(DeclineOfferRequest { name: offer.clone(), reason: String::new() }).await.unwrap_err();
            assert_eq!(e.code(), Code::NotFound, "{who}");
            let e = client.counter_offer(CounterOfferRequest { name: offer.clone(), version: 1, terms: Some(terms(1)), message: String::new() }).await.unwrap_err();
            assert_eq!(e.code(), Code::NotFound, "{who}");
            assert!(client.list_offers(ListOffersRequest::default()).await.unwrap().into_inner().offers.is_empty(), "{who}");
        }
        let e = rival.get_offer_template(GetOfferTemplateRequest { campaign: CAMPAIGN.into() }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        // Ana accepts; the contract is hers and the brand's only.
        let mut ana = app.client(&app.influencer(ANA)).await;
        let c = ana.accept_offer(AcceptOfferRequest { name: offer.clone(), version: 1 }).await.unwrap().into_inner().contract.unwrap();
        for (who, client) in [("rival", &mut rival), ("ben", &mut ben)] {
            let e = client.get_contract(GetContractRequest { name: c.name.clone() }).await.unwrap_err();
            assert_eq!(e.code(), Code::NotFound, "{who}");
            let e = client.sign_contract(SignContractRequest { name: c.name.clone(), terms_version: 1, terms_sha256: c.terms_sha256.clone(), ..Default::default() }).await.unwrap_err();
            assert_eq!(e.code(), Code::NotFound, "{who}");
            let e = client.get_contract_document(GetContractDocumentRequest { name: c.name.clone(), format: 0 }).await.unwrap_err();
            assert_eq!(e.code(), Code::NotFound, "{who}");
            let e = client.list_deliverables(ListDeliverablesRequest { parent: c.name.clone() }).await.unwrap_err();
            assert_eq!(e.code(), Code::NotFound, "{who}");
            let e = client.get_deliverable(GetDeliverableRequest { name: format!("{}/deliverables/1", c.name) }).await.unwrap_err();
            assert_eq!(e.code(), Code::NotFound, "{who}");
            assert!(client.list_contracts(ListContractsRequest::default()).await.unwrap().into_inner().contracts.is_empty(), "{who}");
        }
        let e = rival.cancel_contract(CancelContractRequest { name: c.name.clone(), reason: "mine now".into() }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let e = rival.amend_contract(AmendContractRequest { name: c.name.clone(), terms: Some(terms(1)) }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        let e = ben.submit_deliverable(SubmitDeliverableRequest { name: format!("{}/deliverables/1", c.name), submission: Some(Submission { url: "https://x.example/p".into(), platform: 1, kind: 1, ..Default::default() }) }).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    };

    amending_supersedes_signatures_and_cancelling_ends_everything => |app: App| async move {
        app.template().await;
        let mut brand = app.client(&app.brand).await;
        let made = brand.create_offers(CreateOffersRequest { campaign: CAMPAIGN.into(), shortlist: String::new(), targets: vec![OfferTarget { influencer: ANA.into(), segment: String::new() }], request_id: String::new() }).await.unwrap().into_inner();
        let mut ana = app.client(&app.influencer(ANA)).await;
        let c = ana.accept_offer(AcceptOfferRequest { name: made.offers[0].clone(), version: 1 }).await.unwrap().into_inner().contract.unwrap();
        ana.sign_contract(SignContractRequest { name: c.name.clone(), terms_version: 1, terms_sha256: c.terms_sha256.clone(), ..Default::default() }).await.unwrap();
        let amended = brand.amend_contract(AmendContractRequest { name: c.name.clone(), terms: Some(terms(40_000)) }).await.unwrap().into_inner().contract.unwrap();
        assert_eq!((amended.state, amended.terms_version), (ContractState::Draft as i32, 2));
        assert_ne!(amended.terms_sha256, c.terms_sha256);
        let e = ana.sign_contract(SignContractRequest { name: c.name.clone(), terms_version: 2, terms_sha256: amended.terms_sha256.clone(), ..Default::default() }).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition);
        assert!(e.message().contains("contract is draft"), "{}", e.message());
        brand.send_contract(SendContractRequest { name: c.name.clone() }).await.unwrap();
        let e = ana.sign_contract(SignContractRequest { name: c.name.clone(), terms_version: 1, terms_sha256: c.terms_sha256.clone(), ..Default::default() }).await.unwrap_err();
        assert!(e.message().contains(&format!("current terms are version 2, sha256 {}", amended.terms_sha256)), "{}", e.message());
        let one = ana.sign_contract(SignContractRequest { name: c.name.clone(), terms_version: 2, terms_sha256: amended.terms_sha256.clone(), ..Default::default() }).await.unwrap().into_inner().contract.unwrap();
        assert_eq!(one.state, ContractState::SignedByOne as i32, "her signature of version 1 does not count");
        let cancelled = brand.cancel_contract(CancelContractRequest { name: c.name.clone(), reason: "campaign paused".into() }).await.unwrap().into_inner().contract.unwrap();
        assert_eq!(cancelled.state, ContractState::Cancelled as i32);
        let e = brand.sign_contract(SignContractRequest { name: c.name.clone(), terms_version: 2, terms_sha256: amended.terms_sha256.clone(), ..Default::default() }).await.unwrap_err();
        assert!(e.message().contains("contract is cancelled"), "{}", e.message());
    };

    bad_input_names_the_fields => |app: App| async move {
        let mut brand = app.client(&app.brand).await;
        let e = brand.create_offers(CreateOffersRequest { campaign: CAMPAIGN.into(), targets: vec![OfferTarget { influencer: ANA.into(), segment: String::new() }], ..Default::default() }).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "no template yet: {}", e.message());
        let mut bad = terms(-5);
        bad.deliverables[0].count = 0;
        bad.disclosure_jurisdiction = "usa".into();
        let e = brand.set_offer_template(SetOfferTemplateRequest { template: Some(OfferTemplate { campaign: "campaigns/nope".into(), terms: Some(bad), offer_valid_days: 99, brand_names: vec![], brand_display_name: String::new(), update_time: None }) }).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let fields: Vec<String> = e.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
        for f in ["template.campaign", "template.terms.deliverables[0].count", "template.terms.compensation.cash", "template.terms.disclosure_jurisdiction", "template.offer_valid_days", "template.brand_display_name"] {
            assert!(fields.iter().any(|x| x.starts_with(f)), "{f} not in {fields:?}");
        }
        app.template().await;
        let e = brand.create_offers(CreateOffersRequest { campaign: CAMPAIGN.into(), shortlist: String::new(), targets: vec![OfferTarget { influencer: ANA.into(), segment: String::new() }, OfferTarget { influencer: ANA.into(), segment: String::new() }, OfferTarget { influencer: "influencers/x".into(), segment: String::new() }], request_id: String::new() }).await.unwrap_err();
        let fields: Vec<String> = e.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["targets[1].influencer", "targets[2].influencer"]);
        let e = brand.create_offers(CreateOffersRequest { campaign: CAMPAIGN.into(), shortlist: SHORTLIST.into(), targets: vec![], request_id: String::new() }).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
        let e = brand.sign_contract(SignContractRequest { name: "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b".into(), terms_version: 0, terms_sha256: "xyz".into(), ..Default::default() }).await.unwrap_err();
        let fields: Vec<String> = e.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["terms_version", "terms_sha256"]);
        let mut checker = DisclosureServiceClient::new(chorus_testkit::authed(app.contracts.addr, Some(app.brand.clone())).await);
        let e = checker.check_disclosure(CheckDisclosureRequest { text: "#ad".into(), platform: Platform::Instagram as i32, jurisdiction: "IT".into(), ..Default::default() }).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("US") || format!("{:?}", e.get_details_bad_request()).contains("US"), "{}", e.message());
    };
}

fn pdftotext(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contract.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
