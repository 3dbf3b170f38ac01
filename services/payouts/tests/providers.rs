//! The provider adapters against the provider simulator, over real HTTP on loopback: each pays
//! once whatever fails around the call, maps the provider's statuses, and reconciliation finds
//! every difference planted in the simulator.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chorus_kit::config::Secret;
use chorus_payouts::providers::easypost::{TrackerStatus, WebhookError, verify_tracker_webhook};
use chorus_payouts::providers::paypal::{PayPal, PayPalConfig};
use chorus_payouts::providers::stripe::{Stripe, StripeConfig};
use chorus_payouts::providers::tremendous::{Tremendous, TremendousConfig};
use chorus_payouts::providers::{
    Destination, Difference, HttpSettings, LedgerView, Outcome, PayoutOrder, Period, Provider, ProviderError,
    RecordStatus, reconcile,
};
use chorus_providersim::{Endpoint, Fault, ItemOutcome, Provider as Sim, SimConfig, Simulator};

const HOUR_MICROS: i64 = 3_600 * 1_000_000;

async fn simulator() -> Simulator {
    Simulator::start(SimConfig::default()).await.unwrap()
}

/// Quick retries, so a test's faults are retried within milliseconds.
fn quick() -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_secs(2),
        max_attempts: 4,
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_secs(3),
        rate_per_second: None,
        concurrency: 4,
    }
}

fn once() -> HttpSettings {
    HttpSettings {
        max_attempts: 1,
        ..quick()
    }
}

fn stripe(sim: &Simulator, http: HttpSettings) -> Stripe {
    let api_key = Secret::new(sim.config().stripe_key.clone());
    Stripe::new(StripeConfig {
        base_url: sim.stripe_url(),
        api_key,
        http,
    })
    .unwrap()
}

fn paypal(sim: &Simulator, http: HttpSettings) -> PayPal {
    let config = sim.config();
    PayPal::new(PayPalConfig {
        base_url: sim.paypal_url(),
        client_id: config.paypal_client_id.clone(),
        client_secret: Secret::new(config.paypal_secret.clone()),
        http,
    })
    .unwrap()
}

fn tremendous(sim: &Simulator, http: HttpSettings) -> Tremendous {
    let api_key = Secret::new(sim.config().tremendous_key.clone());
    Tremendous::new(TremendousConfig {
        base_url: sim.tremendous_url(),
        api_key,
        funding_source_id: "balance".into(),
        http,
    })
    .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn order(destination: Destination, amount_minor: i64) -> PayoutOrder {
    PayoutOrder {
        payout_id: uuid::Uuid::now_v7().to_string(),
        tenant: "tenant-1".into(),
        amount_minor,
        currency: "USD".into(),
        destination,
        description: "Reel for the spring campaign".into(),
        first_attempt_at: now(),
    }
}

fn to_account(account: &str, amount: i64) -> PayoutOrder {
    order(Destination::StripeAccount(account.into()), amount)
}

fn to_paypal(email: &str, amount: i64) -> PayoutOrder {
    order(Destination::PayPal { email: email.into() }, amount)
}

fn gift_card(email: &str, amount: i64) -> PayoutOrder {
    order(
        Destination::GiftCard {
            name: "Ann".into(),
            email: email.into(),
            product: "OKMHM2X2OHYV".into(),
        },
        amount,
    )
}

async fn submit_one(provider: &dyn Provider, order: &PayoutOrder, now: i64) -> Result<Outcome, ProviderError> {
    provider.submit(std::slice::from_ref(order), now).await.remove(0)
}

fn paid_reference(outcome: Result<Outcome, ProviderError>) -> String {
    match outcome {
        Ok(Outcome::Paid { reference }) => reference,
        other => panic!("expected Paid, got {other:?}"),
    }
}

// --- Stripe ----------------------------------------------------------------------------------

#[tokio::test]
async fn stripe_pays_once_across_retries_of_the_same_payout() {
    let sim = simulator().await;
    let stripe = stripe(&sim, quick());
    let payout = to_account("acct_once", 1_250);
    let first = paid_reference(submit_one(&stripe, &payout, now()).await);
    for _ in 0..3 {
        assert_eq!(paid_reference(submit_one(&stripe, &payout, now()).await), first);
    }
    let transfers = sim.transfers();
    assert_eq!(transfers.len(), 1);
    assert_eq!((transfers[0].amount, transfers[0].currency.as_str()), (1_250, "usd"));
    assert_eq!(transfers[0].transfer_group.as_deref(), Some(payout.payout_id.as_str()));
    assert_eq!(sim.movements("acct_once"), 1);
    assert_eq!(sim.requests(Endpoint::StripeCreateTransfer), 4);
}

#[tokio::test]
async fn stripe_connection_dropped_after_the_transfer_then_a_retry_pays_once() {
    let sim = simulator().await;
    sim.fault(Endpoint::StripeCreateTransfer, Fault::DropAfter, 1);
    // One try per call: the caller sees the failure, as after a crash, and submits again.
    let stripe = stripe(&sim, once());
    let payout = to_account("acct_drop", 700);
    let first = submit_one(&stripe, &payout, now()).await;
    assert!(matches!(first, Err(ProviderError::Transient { .. })), "{first:?}");
    assert_eq!(
        sim.transfers().len(),
        1,
        "the simulator made the transfer before dropping"
    );
    let reference = paid_reference(submit_one(&stripe, &payout, now()).await);
    assert_eq!(sim.transfers().len(), 1);
    assert_eq!(sim.transfers()[0].id, reference);
    assert_eq!(sim.movements("acct_drop"), 1);
}

#[tokio::test]
async fn stripe_retries_inside_one_call_after_a_drop_and_a_500() {
    let sim = simulator().await;
    // A 500 before executing, then a drop after executing, then the key's replay.
    sim.fault(Endpoint::StripeCreateTransfer, Fault::ServerError, 1);
    sim.fault(Endpoint::StripeCreateTransfer, Fault::DropAfter, 1);
    let stripe = stripe(&sim, quick());
    let payout = to_account("acct_retry", 300);
    paid_reference(submit_one(&stripe, &payout, now()).await);
    assert_eq!(sim.requests(Endpoint::StripeCreateTransfer), 3);
    assert_eq!(sim.movements("acct_retry"), 1);
}

#[tokio::test]
async fn stripe_timeout_after_the_transfer_then_retries_pay_once() {
    let sim = simulator().await;
    sim.fault(
        Endpoint::StripeCreateTransfer,
        Fault::Slow(Duration::from_millis(1_500)),
        1,
    );
    let stripe = stripe(
        &sim,
        HttpSettings {
            timeout: Duration::from_millis(300),
            ..once()
        },
    );
    let payout = to_account("acct_slow", 900);
    let timed_out = submit_one(&stripe, &payout, now()).await;
    assert!(
        matches!(timed_out, Err(ProviderError::Transient { .. })),
        "{timed_out:?}"
    );
    // The first request still holds its key: Stripe answers 409, which waits for later.
    let in_flight = submit_one(&stripe, &payout, now()).await;
    match in_flight {
        Err(ProviderError::Transient {
            reason,
            retry_after: Some(_),
        }) => assert!(reason.contains("idempotency_key_in_use"), "{reason}"),
        other => panic!("expected the key in flight, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(1_400)).await;
    let reference = paid_reference(submit_one(&stripe, &payout, now()).await);
    assert_eq!(sim.transfers().len(), 1);
    assert_eq!(sim.transfers()[0].id, reference);
}

#[tokio::test]
async fn concurrent_duplicate_submissions_pay_once() {
    let sim = simulator().await;
    // A slow answer keeps the first request in flight while the duplicate arrives.
    sim.fault(
        Endpoint::StripeCreateTransfer,
        Fault::Slow(Duration::from_millis(300)),
        1,
    );
    let stripe = stripe(&sim, once());
    let payout = to_account("acct_twice", 100);
    let (a, b) = tokio::join!(submit_one(&stripe, &payout, now()), submit_one(&stripe, &payout, now()));
    let paid = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Ok(Outcome::Paid { .. })))
        .count();
    let in_flight = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(ProviderError::Transient { .. })))
        .count();
    assert_eq!((paid, in_flight), (1, 1), "{a:?} {b:?}");
    assert_eq!(sim.movements("acct_twice"), 1);

    let tremendous = tremendous(&sim, quick());
    let card = gift_card("twice@example.com", 1_000);
    let (a, b) = tokio::join!(
        submit_one(&tremendous, &card, now()),
        submit_one(&tremendous, &card, now())
    );
    assert_eq!(paid_reference(a), paid_reference(b));
    assert_eq!(sim.movements("twice@example.com"), 1);
}

#[tokio::test]
async fn stripe_payout_older_than_24h_is_looked_up_by_transfer_group_before_resubmitting() {
    let sim = simulator().await;
    let stripe = stripe(&sim, quick());
    let payout = to_account("acct_old", 4_000);
    let first = paid_reference(submit_one(&stripe, &payout, payout.first_attempt_at).await);
    sim.forget_idempotency_keys();
    let a_day_later = payout.first_attempt_at + 25 * HOUR_MICROS;
    assert_eq!(paid_reference(submit_one(&stripe, &payout, a_day_later).await), first);
    assert_eq!(sim.movements("acct_old"), 1);
    assert_eq!(sim.requests(Endpoint::StripeListTransfers), 1);
    assert_eq!(
        sim.requests(Endpoint::StripeCreateTransfer),
        1,
        "no second POST once the transfer is found"
    );

    // Why the lookup matters: a forgotten key runs as a new request and pays again.
    let control = to_account("acct_control", 4_000);
    submit_one(&stripe, &control, now()).await.unwrap();
    sim.forget_idempotency_keys();
    submit_one(&stripe, &control, now()).await.unwrap();
    assert_eq!(sim.movements("acct_control"), 2);
}

#[tokio::test]
async fn stripe_payout_older_than_24h_with_no_transfer_is_submitted() {
    let sim = simulator().await;
    let stripe = stripe(&sim, quick());
    let payout = to_account("acct_late", 100);
    paid_reference(submit_one(&stripe, &payout, payout.first_attempt_at + 30 * HOUR_MICROS).await);
    assert_eq!(sim.movements("acct_late"), 1);
}

#[tokio::test]
async fn stripe_rate_limit_429_waits_for_retry_after_and_succeeds() {
    let sim = simulator().await;
    sim.set_rate_limit(Sim::Stripe, Some(2));
    let stripe = stripe(&sim, quick());
    let payouts: Vec<PayoutOrder> = (0..4).map(|n| to_account(&format!("acct_rl{n}"), 100)).collect();
    let started = Instant::now();
    let outcomes = stripe.submit(&payouts, now()).await;
    for outcome in outcomes {
        paid_reference(outcome);
    }
    assert!(
        sim.requests(Endpoint::StripeCreateTransfer) > 4,
        "some requests met a 429"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After (1 s) was honoured: {:?}",
        started.elapsed()
    );
    assert_eq!(sim.transfers().len(), 4);
}

#[tokio::test]
async fn stripe_client_pacing_stays_under_the_providers_limit() {
    let sim = simulator().await;
    sim.set_rate_limit(Sim::Stripe, Some(20));
    let stripe = stripe(
        &sim,
        HttpSettings {
            rate_per_second: Some(20),
            ..quick()
        },
    );
    let payouts: Vec<PayoutOrder> = (0..30).map(|n| to_account(&format!("acct_pace{n}"), 100)).collect();
    let started = Instant::now();
    for outcome in stripe.submit(&payouts, now()).await {
        paid_reference(outcome);
    }
    assert_eq!(sim.requests(Endpoint::StripeCreateTransfer), 30, "no request met a 429");
    // The client's burst is 2 (a tenth of the rate), so the other 28 take 1.4 s at least.
    assert!(
        started.elapsed() >= Duration::from_millis(1_350),
        "30 at 20/s: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn stripe_same_payout_with_other_parameters_is_rejected() {
    let sim = simulator().await;
    let stripe = stripe(&sim, quick());
    let payout = to_account("acct_params", 500);
    paid_reference(submit_one(&stripe, &payout, now()).await);
    let changed = PayoutOrder {
        amount_minor: 600,
        ..payout
    };
    match submit_one(&stripe, &changed, now()).await {
        Err(ProviderError::Rejected { reason }) => assert!(reason.contains("idempotency_error"), "{reason}"),
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(sim.transfers().len(), 1);
}

#[tokio::test]
async fn stripe_insufficient_balance_fails_the_payout_and_a_reversal_returns_it() {
    let sim = simulator().await;
    sim.set_balance(Sim::Stripe, Some(1_000));
    let stripe = stripe(&sim, quick());
    let too_much = to_account("acct_poor", 1_001);
    match submit_one(&stripe, &too_much, now()).await {
        Ok(Outcome::Failed { reason, .. }) => assert!(reason.contains("balance_insufficient"), "{reason}"),
        other => panic!("expected Failed, got {other:?}"),
    }
    let payout = to_account("acct_rev", 800);
    let transfer = paid_reference(submit_one(&stripe, &payout, now()).await);
    assert_eq!(sim.balance(Sim::Stripe), Some(200));
    let reversal = stripe.reverse(&payout, &transfer, None).await.unwrap();
    assert!(reversal.starts_with("trr_"));
    assert_eq!(
        stripe.reverse(&payout, &transfer, None).await.unwrap(),
        reversal,
        "a reversal is made once"
    );
    assert!(matches!(
        stripe.status(&payout, Some(&transfer)).await,
        Ok(Outcome::Returned { .. })
    ));
    assert_eq!(sim.balance(Sim::Stripe), Some(1_000));
    assert!(matches!(
        stripe.status(&to_account("acct_none", 1), None).await,
        Ok(Outcome::Failed { reference: None, .. })
    ));
}

#[tokio::test]
async fn stripe_wrong_key_is_a_configuration_error() {
    let sim = simulator().await;
    let stripe = Stripe::new(StripeConfig {
        base_url: sim.stripe_url(),
        api_key: Secret::new("sk_test_wrong".into()),
        http: quick(),
    })
    .unwrap();
    assert!(matches!(
        submit_one(&stripe, &to_account("acct_x", 1), now()).await,
        Err(ProviderError::Config(_))
    ));
    assert!(format!("{stripe:?}").contains("redacted") && !format!("{stripe:?}").contains("sk_test_wrong"));
}

// --- PayPal ----------------------------------------------------------------------------------

#[tokio::test]
async fn paypal_item_statuses_are_mapped_with_their_reasons() {
    let sim = simulator().await;
    let cases = [
        ("unclaimed@example.com", ItemOutcome::Unclaimed),
        ("returned@example.com", ItemOutcome::Returned),
        ("blocked@example.com", ItemOutcome::Blocked),
        ("refunded@example.com", ItemOutcome::Refunded),
        (
            "failed@example.com",
            ItemOutcome::Failed {
                error: "RECEIVING_LIMIT_EXCEEDED".into(),
            },
        ),
        ("onhold@example.com", ItemOutcome::OnHold),
    ];
    for (email, outcome) in &cases {
        sim.set_paypal_outcome(email, outcome.clone());
    }
    let paypal = paypal(&sim, quick());
    let mut payouts: Vec<PayoutOrder> = cases.iter().map(|(email, _)| to_paypal(email, 987)).collect();
    payouts.push(to_paypal("ok@example.com", 987));
    let outcomes: Vec<Outcome> = paypal
        .submit(&payouts, now())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let batch = sim.paypal_batches();
    assert_eq!(batch.len(), 1, "one batch for all");
    let batch_id = batch[0].0.clone();
    assert_eq!(batch[0].1, PayPal::sender_batch_id(&payouts));
    match &outcomes[0] {
        Outcome::Pending {
            reference,
            reason: Some(reason),
        } => {
            assert_eq!(reference, &batch_id);
            assert!(
                reason.contains("UNCLAIMED") && reason.contains("RECEIVER_UNREGISTERED"),
                "{reason}"
            );
        }
        other => panic!("unclaimed: {other:?}"),
    }
    assert!(
        matches!(&outcomes[1], Outcome::Returned { reason, .. } if reason.contains("RETURNED")),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(&outcomes[2], Outcome::Failed { reason, .. } if reason.contains("BLOCKED")),
        "{:?}",
        outcomes[2]
    );
    assert!(
        matches!(&outcomes[3], Outcome::Returned { reason, .. } if reason.contains("REFUNDED")),
        "{:?}",
        outcomes[3]
    );
    assert!(
        matches!(&outcomes[4], Outcome::Failed { reason, .. } if reason.contains("RECEIVING_LIMIT_EXCEEDED")),
        "{:?}",
        outcomes[4]
    );
    assert!(
        matches!(&outcomes[5], Outcome::Pending { reason: None, .. }),
        "{:?}",
        outcomes[5]
    );
    assert_eq!(
        outcomes[6],
        Outcome::Paid {
            reference: batch_id.clone()
        }
    );
    let items = sim.payout_items();
    assert_eq!(
        items
            .iter()
            .find(|i| i.receiver == "ok@example.com")
            .map(|i| i.amount_minor),
        Some(987)
    );

    // An unclaimed item is cancelled back to us; the status follows it.
    let cancelled = paypal.cancel_unclaimed(&payouts[0], &batch_id).await.unwrap();
    assert!(matches!(cancelled, Outcome::Returned { .. }), "{cancelled:?}");
    assert!(matches!(
        paypal.status(&payouts[0], Some(&batch_id)).await,
        Ok(Outcome::Returned { .. })
    ));
    assert_eq!(sim.paypal_tokens_issued(), 1, "the token is cached");
}

#[tokio::test]
async fn paypal_duplicate_sender_batch_id_reads_the_original_batch() {
    let sim = simulator().await;
    let paypal = paypal(&sim, quick());
    let payouts = vec![to_paypal("a@example.com", 100), to_paypal("b@example.com", 250)];
    let first: Vec<Outcome> = paypal
        .submit(&payouts, now())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    // The same payouts in another order are the same batch.
    let again: Vec<Outcome> = paypal
        .submit(&[payouts[1].clone(), payouts[0].clone()], now())
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, vec![again[1].clone(), again[0].clone()]);
    assert_eq!(sim.paypal_batches().len(), 1);
    assert_eq!(sim.requests(Endpoint::PayPalCreateBatch), 2);
    assert_eq!(sim.movements("a@example.com") + sim.movements("b@example.com"), 2);
}

#[tokio::test]
async fn paypal_batch_dropped_after_creation_is_retried_and_found_once() {
    let sim = simulator().await;
    sim.fault(Endpoint::PayPalCreateBatch, Fault::DropAfter, 1);
    let paypal = paypal(&sim, quick());
    let payouts = vec![to_paypal("c@example.com", 100), to_paypal("d@example.com", 100)];
    for outcome in paypal.submit(&payouts, now()).await {
        assert!(matches!(outcome, Ok(Outcome::Paid { .. })), "{outcome:?}");
    }
    assert_eq!(sim.paypal_batches().len(), 1);
    assert_eq!(sim.payout_items().len(), 2);
}

#[tokio::test]
async fn paypal_renews_an_expired_token_and_reports_rate_limits() {
    let sim = simulator().await;
    let paypal = paypal(&sim, quick());
    let payout = to_paypal("e@example.com", 100);
    let batch = match submit_one(&paypal, &payout, now()).await.unwrap() {
        Outcome::Paid { reference } => reference,
        other => panic!("{other:?}"),
    };
    sim.expire_paypal_tokens();
    assert!(matches!(
        paypal.status(&payout, Some(&batch)).await,
        Ok(Outcome::Paid { .. })
    ));
    assert_eq!(sim.paypal_tokens_issued(), 2);

    sim.set_rate_limit(Sim::PayPal, Some(1));
    let started = Instant::now();
    for _ in 0..2 {
        assert!(matches!(
            paypal.status(&payout, Some(&batch)).await,
            Ok(Outcome::Paid { .. })
        ));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the 429 RATE_LIMIT_REACHED was waited out"
    );
}

#[tokio::test]
async fn paypal_insufficient_funds_fails_every_item_and_nothing_moves() {
    let sim = simulator().await;
    sim.set_balance(Sim::PayPal, Some(150));
    let paypal = paypal(&sim, quick());
    let payouts = vec![to_paypal("f@example.com", 100), to_paypal("g@example.com", 100)];
    for outcome in paypal.submit(&payouts, now()).await {
        assert!(
            matches!(&outcome, Ok(Outcome::Failed { reason, .. }) if reason.contains("INSUFFICIENT_FUNDS")),
            "{outcome:?}"
        );
    }
    assert!(sim.payout_items().is_empty());
}

// --- Tremendous ------------------------------------------------------------------------------

#[tokio::test]
async fn tremendous_orders_once_and_rejects_a_changed_payload() {
    let sim = simulator().await;
    sim.fault(Endpoint::TremendousCreateOrder, Fault::DropAfter, 1);
    let tremendous = tremendous(&sim, quick());
    let card = gift_card("ann@example.com", 2_500);
    let first = paid_reference(submit_one(&tremendous, &card, now()).await);
    assert_eq!(paid_reference(submit_one(&tremendous, &card, now()).await), first);
    let orders = sim.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(
        (orders[0].amount_minor, orders[0].external_id.as_deref()),
        (2_500, Some(card.payout_id.as_str()))
    );
    let changed = PayoutOrder {
        amount_minor: 3_000,
        ..card.clone()
    };
    match submit_one(&tremendous, &changed, now()).await {
        Err(ProviderError::Rejected { reason }) => assert!(reason.contains("external_id"), "{reason}"),
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(sim.movements("ann@example.com"), 1);
}

#[tokio::test]
async fn tremendous_statuses_with_spaces_and_unknown_values_are_read() {
    let sim = simulator().await;
    let tremendous = tremendous(&sim, quick());
    let card = gift_card("bob@example.com", 1_999);
    let order_id = paid_reference(submit_one(&tremendous, &card, now()).await);
    let cases = [
        ("PENDING APPROVAL", "pending"),
        ("OPEN", "pending"),
        ("SOMETHING NEW", "pending"),
        ("CANCELED", "failed"),
        ("EXECUTED", "paid"),
    ];
    for (status, expected) in cases {
        assert!(sim.tamper_status(&card.payout_id, status));
        // By the external id (no reference) and by the order id alike.
        for reference in [None, Some(order_id.as_str())] {
            let outcome = tremendous.status(&card, reference).await.unwrap();
            let kind = match &outcome {
                Outcome::Pending {
                    reason: Some(reason), ..
                } if reason.contains(status) => "pending",
                Outcome::Failed { .. } => "failed",
                Outcome::Paid { .. } => "paid",
                other => panic!("{status}: {other:?}"),
            };
            assert_eq!(kind, expected, "{status}");
        }
    }
    assert!(matches!(
        tremendous.status(&gift_card("nobody@example.com", 1), None).await,
        Ok(Outcome::Failed { .. })
    ));
}

// --- EasyPost --------------------------------------------------------------------------------

/// A webhook receiver on loopback that hands each request's signature and body to the test.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<(Option<String>, Vec<u8>)>) {
    use axum::http::HeaderMap;
    let (sender, received) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/webhooks/easypost",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let sender = sender.clone();
            async move {
                let signature = headers.get("x-hmac-signature").map(|v| v.to_str().unwrap().to_owned());
                sender.send((signature, body.to_vec())).unwrap();
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/easypost", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

#[tokio::test]
async fn easypost_signatures_are_checked_and_duplicate_events_detected() {
    let sim = simulator().await;
    let (url, mut received) = receiver().await;
    // A secret whose NFKD form differs from itself: "ﬁ" (U+FB01) decomposes to "fi".
    let secret = "whsec_ﬁve";
    let event_id = sim
        .send_tracker_event(&url, secret, "9400100000000000000000", "delivered")
        .await
        .unwrap();
    let (signature, body) = received.recv().await.unwrap();

    let event = verify_tracker_webhook(secret, signature.as_deref(), &body).unwrap();
    assert_eq!(event.event_id, event_id);
    assert_eq!(event.tracking_code, "9400100000000000000000");
    assert_eq!(event.status, TrackerStatus::Delivered);
    assert_eq!(event.description, "tracker.updated");
    // The key is the NFKD form, so the decomposed spelling verifies too; another does not.
    assert!(verify_tracker_webhook("whsec_five", signature.as_deref(), &body).is_ok());
    assert_eq!(
        verify_tracker_webhook("whsec_other", signature.as_deref(), &body),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verify_tracker_webhook(secret, None, &body),
        Err(WebhookError::MissingSignature)
    );
    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'9').unwrap();
    tampered[at] = b'8';
    assert_eq!(
        verify_tracker_webhook(secret, signature.as_deref(), &tampered),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verify_tracker_webhook(secret, Some("hmac-sha256-hex=zz"), &body),
        Err(WebhookError::BadSignature)
    );

    // At-least-once delivery: the same event again is recognised by its id.
    let mut seen = HashSet::new();
    assert!(seen.insert(event.event_id.clone()));
    sim.resend_tracker_event(&url, secret, &event_id).await.unwrap();
    let (signature, body) = received.recv().await.unwrap();
    let again = verify_tracker_webhook(secret, signature.as_deref(), &body).unwrap();
    assert!(!seen.insert(again.event_id), "the duplicate is detected");
    let other = sim
        .send_tracker_event(&url, secret, "9400100000000000000000", "out_for_delivery")
        .await
        .unwrap();
    let (signature, body) = received.recv().await.unwrap();
    let next = verify_tracker_webhook(secret, signature.as_deref(), &body).unwrap();
    assert_eq!(
        (next.event_id.as_str(), next.status),
        (other.as_str(), TrackerStatus::OutForDelivery)
    );
    assert!(seen.insert(next.event_id));
}

// --- Reconciliation --------------------------------------------------------------------------

fn view(order: &PayoutOrder, reference: Option<&str>) -> LedgerView {
    LedgerView {
        payout_id: order.payout_id.clone(),
        reference: reference.map(str::to_owned),
        amount_minor: order.amount_minor,
        currency: order.currency.clone(),
        destination: order.destination.key().to_owned(),
        status: RecordStatus::Paid,
    }
}

#[tokio::test]
async fn reconcile_finds_every_difference_planted_at_stripe() {
    let sim = simulator().await;
    let stripe = stripe(&sim, quick());
    let payouts: Vec<PayoutOrder> = (0..7).map(|n| to_account(&format!("acct_rec{n}"), 1_000 + n)).collect();
    let references: Vec<String> = stripe
        .submit(&payouts, now())
        .await
        .into_iter()
        .map(paid_reference)
        .collect();
    assert!(sim.tamper_amount(&references[1], 999));
    assert!(sim.tamper_currency(&references[2], "EUR"));
    assert!(sim.tamper_status(&references[3], "reversed"));
    assert!(sim.tamper_delete(&references[4]));
    let unknown = sim.plant_transfer("acct_stranger", 5_000, "usd", None);
    let second = sim.plant_transfer("acct_rec5", 1_005, "usd", Some(&payouts[5].payout_id));
    let ours: Vec<LedgerView> = payouts.iter().zip(&references).map(|(o, r)| view(o, Some(r))).collect();

    let theirs = stripe.records(&ours, &Period::ALL).await.unwrap();
    let mut found = reconcile(&ours, &theirs);
    let mut expected = vec![
        Difference::AmountDiffers {
            payout_id: payouts[1].payout_id.clone(),
            reference: references[1].clone(),
            ours: 1_001,
            theirs: 999,
        },
        Difference::CurrencyDiffers {
            payout_id: payouts[2].payout_id.clone(),
            reference: references[2].clone(),
            ours: "USD".into(),
            theirs: "EUR".into(),
        },
        Difference::StatusDiffers {
            payout_id: payouts[3].payout_id.clone(),
            reference: references[3].clone(),
            ours: RecordStatus::Paid,
            theirs: RecordStatus::Returned,
        },
        Difference::MissingAtProvider {
            payout_id: payouts[4].payout_id.clone(),
        },
        Difference::PaidTwice {
            payout_id: payouts[5].payout_id.clone(),
            references: vec![second, references[5].clone()],
        },
        Difference::UnknownToUs {
            reference: unknown,
            payout_id: None,
            amount_minor: 5_000,
            currency: "USD".into(),
            destination: "acct_stranger".into(),
        },
    ];
    sort(&mut found);
    sort(&mut expected);
    assert_eq!(found, expected);
}

#[tokio::test]
async fn stripe_records_are_read_for_the_reconcile_period_only() {
    let sim = simulator().await;
    let stripe = stripe(&sim, quick());
    // Transfers made on 1 March, 1 May and 1 July 2026 (noon UTC), by the simulator's clock.
    let (march, may, july) = (1_772_366_400, 1_777_636_800, 1_782_907_200);
    let mut made = Vec::new();
    for at in [march, may, july] {
        sim.set_clock(at);
        made.push(sim.plant_transfer("acct_window", 100, "usd", Some(&format!("p-{at}"))));
    }
    let references = |p: Period| {
        let stripe = &stripe;
        async move {
            let mut r: Vec<String> = stripe
                .records(&[], &p)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.reference)
                .collect();
            r.sort();
            r
        }
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    // What is outside the period is not read (a minute of margin: the simulator's clock runs on
    // from where it was set).
    assert_eq!(
        references(Period {
            from_secs: may,
            to_secs: july + 60
        })
        .await,
        sorted(made[1..].to_vec())
    );
    assert_eq!(
        references(Period {
            from_secs: march,
            to_secs: may - 60
        })
        .await,
        [made[0].clone()]
    );
    assert_eq!(
        references(Period {
            from_secs: july + 60,
            to_secs: i64::MAX
        })
        .await,
        Vec::<String>::new()
    );
    assert_eq!(references(Period::ALL).await, sorted(made.clone()));
    // A reconcile period is the submissions' span with a day of slack on each side.
    let p = Period::around(may * 1_000_000, july * 1_000_000);
    assert_eq!((p.from_secs, p.to_secs), (may - 86_400, july + 86_400));
    assert_eq!(references(p).await, sorted(made[1..].to_vec()));
}

#[tokio::test]
async fn reconcile_finds_differences_planted_at_paypal_and_tremendous() {
    let sim = simulator().await;
    let paypal = paypal(&sim, quick());
    let payouts: Vec<PayoutOrder> = (0..4).map(|n| to_paypal(&format!("rec{n}@example.com"), 500)).collect();
    let batch = match paypal.submit(&payouts, now()).await.remove(0).unwrap() {
        Outcome::Paid { reference } => reference,
        other => panic!("{other:?}"),
    };
    assert!(sim.tamper_amount(&payouts[0].payout_id, 499));
    assert!(sim.tamper_status(&payouts[1].payout_id, "REFUNDED"));
    assert!(sim.tamper_delete(&payouts[2].payout_id));
    sim.plant_paypal_item(&batch, "stranger@example.com", 42, "not-ours")
        .unwrap();
    let ours: Vec<LedgerView> = payouts.iter().map(|o| view(o, Some(&batch))).collect();
    let found = reconcile(&ours, &paypal.records(&ours, &Period::ALL).await.unwrap());
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(found.contains(&Difference::AmountDiffers {
        payout_id: payouts[0].payout_id.clone(),
        reference: item_id(&sim, &payouts[0]),
        ours: 500,
        theirs: 499
    }));
    assert!(found.contains(&Difference::StatusDiffers {
        payout_id: payouts[1].payout_id.clone(),
        reference: item_id(&sim, &payouts[1]),
        ours: RecordStatus::Paid,
        theirs: RecordStatus::Returned
    }));
    assert!(found.contains(&Difference::MissingAtProvider {
        payout_id: payouts[2].payout_id.clone()
    }));
    assert!(found.iter().any(
        |d| matches!(d, Difference::UnknownToUs { payout_id: Some(id), amount_minor: 42, .. } if id == "not-ours")
    ));

    let tremendous = tremendous(&sim, quick());
    let cards: Vec<PayoutOrder> = (0..3)
        .map(|n| gift_card(&format!("card{n}@example.com"), 2_500))
        .collect();
    for outcome in tremendous.submit(&cards, now()).await {
        paid_reference(outcome);
    }
    assert!(sim.tamper_amount(&cards[2].payout_id, 2_000));
    assert!(sim.tamper_status(&cards[1].payout_id, "PENDING APPROVAL"));
    let planted = sim.plant_order("card0@example.com", 2_500, Some(&cards[0].payout_id));
    let unknown = sim.plant_order("stranger@example.com", 1_000, None);
    let ours: Vec<LedgerView> = cards.iter().map(|o| view(o, None)).collect();
    let mut found = reconcile(&ours, &tremendous.records(&ours, &Period::ALL).await.unwrap());
    sort(&mut found);
    let first = sim
        .orders()
        .into_iter()
        .find(|o| o.external_id.as_deref() == Some(cards[0].payout_id.as_str()) && o.id != planted)
        .unwrap()
        .id;
    let mut expected = vec![
        Difference::PaidTwice {
            payout_id: cards[0].payout_id.clone(),
            references: vec![first, planted],
        },
        Difference::StatusDiffers {
            payout_id: cards[1].payout_id.clone(),
            reference: order_id(&sim, &cards[1]),
            ours: RecordStatus::Paid,
            theirs: RecordStatus::Pending,
        },
        Difference::AmountDiffers {
            payout_id: cards[2].payout_id.clone(),
            reference: order_id(&sim, &cards[2]),
            ours: 2_500,
            theirs: 2_000,
        },
        Difference::UnknownToUs {
            reference: unknown,
            payout_id: None,
            amount_minor: 1_000,
            currency: "USD".into(),
            destination: "stranger@example.com".into(),
        },
    ];
    sort(&mut expected);
    assert_eq!(found, expected);
}

fn order_id(sim: &Simulator, order: &PayoutOrder) -> String {
    sim.orders()
        .into_iter()
        .find(|o| o.external_id.as_deref() == Some(order.payout_id.as_str()))
        .unwrap()
        .id
}

fn item_id(sim: &Simulator, order: &PayoutOrder) -> String {
    sim.payout_items()
        .into_iter()
        .find(|i| i.sender_item_id == order.payout_id)
        .unwrap()
        .payout_item_id
}

/// Differences in a stable order, so lists compare whatever order records came in.
fn sort(differences: &mut [Difference]) {
    for difference in differences.iter_mut() {
        if let Difference::PaidTwice { references, .. } = difference {
            references.sort();
        }
    }
    differences.sort_by_key(|d| format!("{d:?}"));
}
