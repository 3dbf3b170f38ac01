//! Group commit of SignContract and AcceptOffer, over real gRPC on PostgreSQL and SQLite:
//! calls that arrive together are applied in one transaction, and each still gets its own
//! answer, its own error, its own events in order and its own timers; a party signing the
//! same contract as the other at the same moment activates it once; a retry under the same
//! request id answers as the first call did.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Duration;

use chorus_kit::auth::{Grant, SigningKey, role};
use chorus_kit::batch::{BATCHES_METRIC, ITEMS_METRIC};
use chorus_kit::clock::Clock;
use chorus_kit::events::{Subscription, read};
use chorus_kit::runtime::Launched;
use chorus_proto::contracts::contracts_service_client::ContractsServiceClient;
use chorus_proto::contracts::*;
use chorus_proto::event::Envelope;
use chorus_proto::types::{DeliverableKind, Money, Platform};
use chorus_testkit::metrics::Metrics;
use chorus_testkit::{Authed, Backend, Stack, on_both_backends};
use futures::future::join_all;
use sqlx::Row;
use tonic::Code;

const CAMPAIGN: &str = "campaigns/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70";
/// 2027-01-15T08:00:00Z.
const START: i64 = 1_800_000_000_000_000;
const DAY: i64 = 86_400_000_000;
/// Contracts per test: enough that calls queue behind a batch being committed.
const N: usize = 24;

struct App {
    metrics: Metrics,
    stack: Stack,
    contracts: Launched,
    db: sqlx::AnyPool,
    brand: String,
}

async fn spawn(backend: Backend) -> App {
    let metrics = Metrics::install();
    let mut stack = Stack::with_clock(backend, Clock::manual(START));
    let url = stack.database().await;
    let contracts = stack
        .launch(
            &chorus_contracts::SERVICE,
            &url,
            &[("CHORUS_SEALING_KEY", SigningKey::generate().unwrap().to_pem())],
        )
        .await;
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&url).await.unwrap();
    let brand = stack.token("acme", &["contracts.read", "contracts.write"]);
    App {
        metrics,
        stack,
        contracts,
        db,
        brand,
    }
}

fn usd(minor: i64) -> Option<Money> {
    Some(Money {
        currency_code: "USD".into(),
        amount_minor: minor,
    })
}

/// Two posts, cash and a product, 30 days' exclusivity.
fn terms() -> Terms {
    Terms {
        deliverables: vec![DeliverableTerm {
            kind: DeliverableKind::FeedPost as i32,
            platform: Platform::Instagram as i32,
            count: 2,
            due_time: Some(chorus_kit::clock::timestamp(START + 20 * DAY)),
            brief: String::new(),
        }],
        compensation: Some(Compensation {
            cash: usd(20_000),
            gift_cards: vec![],
            products: vec![Product {
                sku: "PAW-HARNESS-M".into(),
                title: "Pawsome harness".into(),
                declared_value: usd(4_500),
                quantity: 1,
            }],
        }),
        exclusivity: Some(Exclusivity {
            category: "pets".into(),
            days: 30,
        }),
        disclosure_jurisdiction: "US".into(),
        disclosure_language: "en".into(),
        grace_days: 3,
        ..Default::default()
    }
}

fn with_key<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert("idempotency-key", key.parse().unwrap());
    r
}

fn sign(c: &Contract) -> SignContractRequest {
    SignContractRequest {
        name: c.name.clone(),
        terms_version: c.terms_version,
        terms_sha256: c.terms_sha256.clone(),
        ip_address: "203.0.113.7".into(),
        user_agent: "ChorusApp/1.0".into(),
    }
}

/// An influencer with a client of their own.
struct Person {
    name: String,
    client: ContractsServiceClient<Authed>,
}

impl App {
    async fn client(&self, token: &str) -> ContractsServiceClient<Authed> {
        ContractsServiceClient::new(chorus_testkit::authed(self.contracts.addr, Some(token.to_owned())).await)
    }

    async fn person(&self) -> Person {
        let name = format!("influencers/{}", uuid::Uuid::now_v7());
        let token = self.stack.mint(&Grant {
            subject: name.clone(),
            tenant: String::new(),
            role: role::INFLUENCER.into(),
            scopes: vec!["contracts.respond".into()],
        });
        Person {
            client: self.client(&token).await,
            name,
        }
    }

    /// `n` people, each with an open offer from the brand (in the order of the people).
    async fn offers(&self, n: usize) -> Vec<(Person, String)> {
        let mut brand = self.client(&self.brand).await;
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
        let mut people = Vec::new();
        for _ in 0..n {
            people.push(self.person().await);
        }
        let made = brand
            .create_offers(CreateOffersRequest {
                campaign: CAMPAIGN.into(),
                shortlist: String::new(),
                targets: people
                    .iter()
                    .map(|p| OfferTarget {
                        influencer: p.name.clone(),
                        segment: String::new(),
                    })
                    .collect(),
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let offers = brand
            .list_offers(ListOffersRequest {
                campaign: CAMPAIGN.into(),
                page_size: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .offers;
        assert_eq!(made.offers.len(), n);
        people
            .into_iter()
            .map(|p| {
                let o = offers.iter().find(|o| o.influencer == p.name).unwrap().name.clone();
                (p, o)
            })
            .collect()
    }

    /// `n` people, each with a contract sent for signature, all accepted at once.
    async fn contracts(&self, n: usize) -> Vec<(Person, Contract)> {
        let offers = self.offers(n).await;
        let accepted = join_all(offers.into_iter().map(|(mut p, offer)| async move {
            let r = p
                .client
                .accept_offer(AcceptOfferRequest {
                    name: offer.clone(),
                    version: 1,
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.offer.unwrap().state, OfferState::Accepted as i32);
            let c = r.contract.unwrap();
            assert_eq!(
                (c.state, c.offer.as_str()),
                (ContractState::Sent as i32, offer.as_str())
            );
            (p, c)
        }))
        .await;
        let mut names: Vec<&str> = accepted.iter().map(|(_, c)| c.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "one contract per offer");
        accepted
    }

    /// How many items and batches the queue `queue` applied so far.
    fn batching(&self, queue: &str) -> (u64, u64) {
        let labels: &[(&str, &str)] = &[("queue", queue)];
        (
            self.metrics.counter(ITEMS_METRIC, labels),
            self.metrics.counter(BATCHES_METRIC, labels),
        )
    }

    /// Asserts some of the queue's batches held more than one call: the calls of a test were
    /// grouped, so what it checks ran in shared transactions.
    fn assert_grouped(&self, queue: &str) {
        let (items, batches) = self.batching(queue);
        assert!(
            items > batches,
            "{queue}: {items} calls in {batches} batches; none were grouped"
        );
    }

    /// Timers whose key starts with `prefix`.
    async fn timers(&self, prefix: &str) -> i64 {
        sqlx::query("SELECT COUNT(*) FROM timers WHERE key LIKE $1")
            .bind(format!("{prefix}%"))
            .fetch_one(&self.db)
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }
}

/// Events read from `sub` until `n` of type `until` arrived.
async fn events_until(sub: &mut Box<dyn Subscription>, until: &str, n: usize) -> Vec<Envelope> {
    let mut seen = Vec::new();
    let mut count = 0;
    while count < n {
        let d = sub
            .next(Duration::from_secs(10))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{count} of {n} {until} within 10 s"));
        sub.ack(&d).await.unwrap();
        count += usize::from(d.envelope.r#type == until);
        seen.push(d.envelope);
    }
    seen
}

/// Each event's type and the contract it is about, in the order published.
fn by_contract(events: &[Envelope]) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for e in events {
        let short = e.r#type.trim_start_matches("chorus.contracts.v1.").to_owned();
        let contract = if let Some(s) = read::<ContractSigned>(e) {
            let s = s.unwrap();
            out.entry(s.contract.clone())
                .or_default()
                .push(format!("{short}:{}", s.state));
            continue;
        } else if let Some(a) = read::<ContractActivated>(e) {
            a.unwrap().contract.unwrap().name
        } else if let Some(x) = read::<ExclusivityStarted>(e) {
            x.unwrap().contract
        } else if let Some(a) = read::<OfferAccepted>(e) {
            a.unwrap().contract
        } else {
            continue;
        };
        out.entry(contract).or_default().push(short);
    }
    out
}

const SIGNED_BY_ONE: i32 = ContractState::SignedByOne as i32;
const ACTIVE: i32 = ContractState::Active as i32;

on_both_backends! { spawn;
    many_signatures_at_once_each_land_with_their_events_and_timers => |app: App| async move {
        let mut sub = chorus_testkit::events::watch(app.stack.shared_bus().as_ref(), "chorus.contracts").await;
        let contracts = app.contracts(N).await;
        app.assert_grouped("contracts.acceptances");
        assert_eq!(app.timers("contract-sign-by:").await, N as i64);
        assert_eq!(app.timers("contract-remind:").await, N as i64);

        // Every influencer signs at once, then the brand signs every contract at once.
        let firsts = join_all(contracts.iter().map(|(p, c)| {
            let mut client = p.client.clone();
            let request = sign(c);
            async move { client.sign_contract(request).await.unwrap().into_inner().contract.unwrap() }
        }))
        .await;
        for ((p, c), first) in contracts.iter().zip(&firsts) {
            assert_eq!((first.name.as_str(), first.state), (c.name.as_str(), SIGNED_BY_ONE));
            assert_eq!(first.signatures.len(), 1);
            assert_eq!(first.signatures[0].signer, p.name);
            assert!(first.seal.is_none());
        }
        let brand = app.client(&app.brand).await;
        let seconds = join_all(contracts.iter().map(|(_, c)| {
            let mut client = brand.clone();
            let request = sign(c);
            async move { client.sign_contract(request).await.unwrap().into_inner().contract.unwrap() }
        }))
        .await;
        for ((_, c), second) in contracts.iter().zip(&seconds) {
            assert_eq!((second.name.as_str(), second.state), (c.name.as_str(), ACTIVE));
            assert_eq!(second.signatures.len(), 2);
            assert!(second.seal.is_some(), "sealed at activation");
        }
        app.assert_grouped("contracts.signatures");

        // Each contract's events, in order, once each.
        let seen = events_until(&mut sub, "chorus.contracts.v1.ExclusivityStarted", N).await;
        let events = by_contract(&seen);
        for (_, c) in &contracts {
            assert_eq!(
                events[&c.name],
                [
                    "OfferAccepted".to_owned(),
                    format!("ContractSigned:{SIGNED_BY_ONE}"),
                    format!("ContractSigned:{ACTIVE}"),
                    "ContractActivated".to_owned(),
                    "ExclusivityStarted".to_owned(),
                ],
                "{}", c.name
            );
        }
        chorus_testkit::events::quiet(&mut sub, "after the last activation").await;

        // Each has its two deliverables, each deliverable its reminder and due date; the
        // signing deadlines and their reminders are gone.
        for (p, c) in &contracts {
            let parts = p.client.clone().list_deliverables(ListDeliverablesRequest { parent: c.name.clone() }).await.unwrap().into_inner().deliverables;
            assert_eq!(parts.len(), 2, "{}", c.name);
            assert!(parts.iter().all(|d| d.state == DeliverableState::Pending as i32));
        }
        assert_eq!(app.timers("deliverable-due:").await, 2 * N as i64);
        assert_eq!(app.timers("deliverable-remind:").await, 2 * N as i64);
        assert_eq!(app.timers("contract-sign-by:").await, 0);
        assert_eq!(app.timers("contract-remind:").await, 0);
        // The contracts as stored are the ones answered.
        for (_, c) in &contracts {
            let stored = brand.clone().get_contract(GetContractRequest { name: c.name.clone() }).await.unwrap().into_inner().contract.unwrap();
            assert_eq!(stored, seconds.iter().find(|s| s.name == c.name).unwrap().clone());
        }
    };

    both_parties_signing_one_contract_at_once_activate_it_once => |app: App| async move {
        let contracts = app.contracts(N).await;
        let mut sub = chorus_testkit::events::watch(app.stack.shared_bus().as_ref(), "chorus.contracts").await;
        let brand = app.client(&app.brand).await;
        // Both parties of every contract sign at the same moment.
        let pairs = join_all(contracts.iter().map(|(p, c)| {
            let (mut theirs, mut ours) = (p.client.clone(), brand.clone());
            let (a, b) = (sign(c), sign(c));
            async move {
                let (x, y) = futures::join!(theirs.sign_contract(a), ours.sign_contract(b));
                (x.unwrap().into_inner().contract.unwrap(), y.unwrap().into_inner().contract.unwrap())
            }
        }))
        .await;
        for ((_, c), (x, y)) in contracts.iter().zip(&pairs) {
            let (mut states, mut want) = ([x.state, y.state], [ACTIVE, SIGNED_BY_ONE]);
            states.sort_unstable();
            want.sort_unstable();
            assert_eq!(states, want, "{}: one signature first, the other activates", c.name);
            let active = if x.state == ACTIVE { x } else { y };
            assert_eq!(active.signatures.len(), 2);
            let parties: Vec<i32> = active.signatures.iter().map(|s| s.party).collect();
            assert!(parties.contains(&(Party::Brand as i32)) && parties.contains(&(Party::Influencer as i32)), "{parties:?}");
        }
        app.assert_grouped("contracts.signatures");
        let seen = events_until(&mut sub, "chorus.contracts.v1.ExclusivityStarted", N).await;
        let events = by_contract(&seen);
        for (_, c) in &contracts {
            let activated = events[&c.name].iter().filter(|t| *t == "ContractActivated").count();
            assert_eq!(activated, 1, "{}: {:?}", c.name, events[&c.name]);
        }
        chorus_testkit::events::quiet(&mut sub, "one activation each").await;
        assert_eq!(app.timers("deliverable-due:").await, 2 * N as i64);
        // A signature after activation names the state.
        let (p, c) = &contracts[0];
        let again = p.client.clone().sign_contract(sign(c)).await.unwrap_err();
        assert_eq!(again.code(), Code::FailedPrecondition, "an active contract is signed already");
        assert!(again.message().contains("contract is active"), "{}", again.message());
    };

    a_bad_call_among_many_fails_alone => |app: App| async move {
        let contracts = app.contracts(N).await;
        let brand = app.client(&app.brand).await;
        let rival = app.client(&app.stack.token("globex", &["contracts.read", "contracts.write"])).await;
        // One contract is cancelled before the signatures come.
        let cancelled = &contracts[1].1;
        brand.clone().cancel_contract(CancelContractRequest { name: cancelled.name.clone(), reason: "paused".into() }).await.unwrap();
        let mut bad_hash = sign(&contracts[0].1);
        bad_hash.terms_sha256 = "0".repeat(64);
        let calls: Vec<(&str, ContractsServiceClient<Authed>, SignContractRequest)> = contracts
            .iter()
            .map(|(p, c)| ("good", p.client.clone(), sign(c)))
            .chain([
                ("bad hash", brand.clone(), bad_hash),
                ("another tenant", rival.clone(), sign(&contracts[2].1)),
                ("unknown", brand.clone(), SignContractRequest { name: "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b".into(), ..sign(&contracts[3].1) }),
            ])
            .collect();
        let answers = join_all(calls.into_iter().map(|(what, mut client, request)| async move {
            let name = request.name.clone();
            (what, name, client.sign_contract(request).await)
        }))
        .await;
        for (what, name, answer) in &answers {
            match (*what, answer) {
                ("good", Ok(r)) if *name == cancelled.name => panic!("a cancelled contract was signed: {r:?}"),
                ("good", Err(e)) if *name == cancelled.name => {
                    assert_eq!(e.code(), Code::FailedPrecondition);
                    assert!(e.message().contains("contract is cancelled"), "{}", e.message());
                }
                ("good", Ok(r)) => assert_eq!(r.get_ref().contract.as_ref().unwrap().state, SIGNED_BY_ONE, "{name}"),
                ("bad hash", Err(e)) => {
                    assert_eq!(e.code(), Code::FailedPrecondition);
                    assert!(e.message().contains(&contracts[0].1.terms_sha256), "{}", e.message());
                }
                ("another tenant" | "unknown", Err(e)) => assert_eq!(e.code(), Code::NotFound, "{what}: {}", e.message()),
                (what, answer) => panic!("{what} {name}: {answer:?}"),
            }
        }
        app.assert_grouped("contracts.signatures");
        // The bad hash left its contract as the influencer's good signature made it; the
        // rival's call left the contract to its parties.
        for i in [0, 2] {
            let c = brand.clone().get_contract(GetContractRequest { name: contracts[i].1.name.clone() }).await.unwrap().into_inner().contract.unwrap();
            assert_eq!((c.state, c.signatures.len()), (SIGNED_BY_ONE, 1), "{}", c.name);
            assert_eq!(c.signatures[0].party, Party::Influencer as i32);
        }

        // Acceptances: a wrong version and a second acceptance of one offer fail alone.
        let offers = app.offers(N).await;
        let calls: Vec<(&str, ContractsServiceClient<Authed>, AcceptOfferRequest)> = offers[3..]
            .iter()
            .map(|(p, o)| ("good", p.client.clone(), AcceptOfferRequest { name: o.clone(), version: 1 }))
            .chain([
                ("twice", offers[0].0.client.clone(), AcceptOfferRequest { name: offers[0].1.clone(), version: 1 }),
                ("twice", offers[0].0.client.clone(), AcceptOfferRequest { name: offers[0].1.clone(), version: 1 }),
                ("wrong version", offers[1].0.client.clone(), AcceptOfferRequest { name: offers[1].1.clone(), version: 2 }),
                ("not hers", offers[2].0.client.clone(), AcceptOfferRequest { name: offers[3].1.clone(), version: 1 }),
            ])
            .collect();
        let answers = join_all(calls.into_iter().map(|(what, mut client, request)| async move {
            let name = request.name.clone();
            (what, name, client.accept_offer(request).await)
        }))
        .await;
        let mut first_offer_answers = Vec::new();
        for (what, name, answer) in answers {
            match (what, &answer) {
                (_, _) if name == offers[0].1 => first_offer_answers.push(answer),
                ("good", Ok(r)) => assert!(r.get_ref().contract.is_some(), "{name}"),
                ("wrong version", Err(e)) => {
                    assert_eq!(e.code(), Code::FailedPrecondition);
                    assert!(e.message().contains("current version is 1"), "{}", e.message());
                }
                ("not hers", Err(e)) => assert_eq!(e.code(), Code::NotFound),
                (what, answer) => panic!("{what} {name}: {answer:?}"),
            }
        }
        let won: Vec<_> = first_offer_answers.iter().filter_map(|a| a.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "{first_offer_answers:?}");
        let lost = first_offer_answers.iter().find_map(|a| a.as_ref().err()).unwrap();
        assert_eq!(lost.code(), Code::FailedPrecondition, "{}", lost.message());
        app.assert_grouped("contracts.acceptances");
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM contracts WHERE offer_id = $1")
            .bind(offers[0].1.trim_start_matches("offers/"))
            .fetch_one(&app.db)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(n, 1, "one contract for the offer accepted twice");
        let open = offers[1].0.client.clone().get_offer(GetOfferRequest { name: offers[1].1.clone() }).await.unwrap().into_inner().offer.unwrap();
        assert_eq!(open.state, OfferState::Open as i32, "the wrong version left the offer open");
    };

    a_retry_answers_as_the_first_call_did => |app: App| async move {
        let contracts = app.contracts(N).await;
        let brand = app.client(&app.brand).await;
        // Every influencer signs under a request id, each call sent twice at once.
        let firsts = join_all(contracts.iter().enumerate().map(|(i, (p, c))| {
            let (mut a, mut b) = (p.client.clone(), p.client.clone());
            let (x, y) = (with_key(sign(c), &format!("sign-{i}")), with_key(sign(c), &format!("sign-{i}")));
            async move {
                let (x, y) = futures::join!(a.sign_contract(x), b.sign_contract(y));
                (x.unwrap().into_inner().contract.unwrap(), y.unwrap().into_inner().contract.unwrap())
            }
        }))
        .await;
        for (x, y) in &firsts {
            assert_eq!(x, y, "the same call twice, one answer");
            assert_eq!((x.state, x.signatures.len()), (SIGNED_BY_ONE, 1));
        }
        app.assert_grouped("contracts.signatures");
        // The brand signs; the influencers' retries still answer as their first calls did.
        join_all(contracts.iter().map(|(_, c)| {
            let mut client = brand.clone();
            let request = sign(c);
            async move { assert_eq!(client.sign_contract(request).await.unwrap().into_inner().contract.unwrap().state, ACTIVE) }
        }))
        .await;
        let retries = join_all(contracts.iter().enumerate().map(|(i, (p, c))| {
            let mut client = p.client.clone();
            let request = with_key(sign(c), &format!("sign-{i}"));
            async move { client.sign_contract(request).await.unwrap().into_inner().contract.unwrap() }
        }))
        .await;
        for ((x, _), retry) in firsts.iter().zip(&retries) {
            assert_eq!(retry, x, "a retry gets the first answer");
        }
        // A kept error is kept too, and an acceptance under a request id answers one contract.
        let (p, c) = &contracts[0];
        let mut wrong = sign(c);
        wrong.terms_sha256 = "f".repeat(64);
        let mut client = p.client.clone();
        let e1 = client.sign_contract(with_key(wrong.clone(), "wrong")).await.unwrap_err();
        let e2 = client.sign_contract(with_key(wrong, "wrong")).await.unwrap_err();
        assert_eq!((e1.code(), e2.code()), (Code::FailedPrecondition, Code::FailedPrecondition));
        assert_eq!(e1.message(), e2.message());
        let offers = app.offers(4).await;
        let answers = join_all(offers.iter().flat_map(|(p, o)| {
            [0, 1].map(|_| {
                let mut client = p.client.clone();
                let request = with_key(AcceptOfferRequest { name: o.clone(), version: 1 }, &format!("accept-{o}"));
                async move { client.accept_offer(request).await.unwrap().into_inner() }
            })
        }))
        .await;
        for pair in answers.chunks(2) {
            assert_eq!(pair[0], pair[1], "one answer for one request id");
        }
        let made: i64 = sqlx::query("SELECT COUNT(*) FROM contracts").fetch_one(&app.db).await.unwrap().try_get(0).unwrap();
        assert_eq!(made, (N + 4) as i64);
    };
}
