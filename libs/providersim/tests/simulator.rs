//! The simulator speaks the providers' documented shapes: checked with a plain HTTP client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chorus_providersim::{Endpoint, Fault, Provider, SimConfig, Simulator};
use serde_json::{Value, json};

async fn start() -> (Simulator, reqwest::Client) {
    (
        Simulator::start(SimConfig::default()).await.unwrap(),
        reqwest::Client::new(),
    )
}

async fn stripe_post(sim: &Simulator, http: &reqwest::Client, key: &str, amount: &str) -> reqwest::Response {
    stripe_send(sim, http, key, amount).await.unwrap()
}

async fn stripe_send(
    sim: &Simulator,
    http: &reqwest::Client,
    key: &str,
    amount: &str,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{}/v1/transfers", sim.stripe_url()))
        .bearer_auth(&sim.config().stripe_key)
        .header("Idempotency-Key", key)
        .form(&[
            ("amount", amount),
            ("currency", "usd"),
            ("destination", "acct_1"),
            ("transfer_group", "g1"),
        ])
        .send()
        .await
}

#[tokio::test]
async fn stripe_replays_the_first_answer_and_refuses_other_parameters() {
    let (sim, http) = start().await;
    let first = stripe_post(&sim, &http, "k1", "400").await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    assert_eq!(
        (
            first["object"].as_str(),
            first["amount"].as_i64(),
            first["currency"].as_str()
        ),
        (Some("transfer"), Some(400), Some("usd"))
    );

    let replay = stripe_post(&sim, &http, "k1", "400").await;
    assert_eq!(replay.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), first);

    let other = stripe_post(&sim, &http, "k1", "500").await;
    assert_eq!(other.status(), 400);
    assert_eq!(
        other.json::<Value>().await.unwrap()["error"]["type"],
        "idempotency_error"
    );
    assert_eq!(sim.transfers().len(), 1);

    sim.forget_idempotency_keys();
    assert_eq!(
        stripe_post(&sim, &http, "k1", "500").await.status(),
        200,
        "a forgotten key runs as new"
    );
    assert_eq!(sim.transfers().len(), 2);

    let listed: Value = http
        .get(format!("{}/v1/transfers?transfer_group=g1", sim.stripe_url()))
        .bearer_auth(&sim.config().stripe_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (listed["object"].as_str(), listed["data"].as_array().unwrap().len()),
        (Some("list"), 2)
    );

    let unauthorized = http
        .get(format!(
            "{}/v1/transfers/{}",
            sim.stripe_url(),
            first["id"].as_str().unwrap()
        ))
        .bearer_auth("sk_test_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
}

#[tokio::test]
async fn dropped_connections_execute_or_not_as_planned() {
    let (sim, http) = start().await;
    sim.fault(Endpoint::StripeCreateTransfer, Fault::DropBefore, 1);
    sim.fault(Endpoint::StripeCreateTransfer, Fault::DropAfter, 1);
    // The connection closes with no status line at all.
    assert!(stripe_send(&sim, &http, "a", "1").await.is_err());
    assert_eq!(sim.transfers().len(), 0, "dropped before executing");
    assert!(stripe_send(&sim, &http, "b", "1").await.is_err());
    assert_eq!(sim.transfers().len(), 1, "dropped after executing");
    assert_eq!(
        stripe_post(&sim, &http, "b", "1")
            .await
            .headers()
            .get("idempotent-replayed")
            .unwrap(),
        "true"
    );
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let (sim, http) = start().await;
    sim.set_rate_limit(Provider::Tremendous, Some(1));
    let get = || {
        http.get(format!("{}/orders/nope", sim.tremendous_url()))
            .bearer_auth(&sim.config().tremendous_key)
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 404);
    let limited = get().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers().get("retry-after").unwrap(), "1");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(get().await.unwrap().status(), 404);
}

#[tokio::test]
async fn paypal_duplicate_batch_is_the_documented_400_with_a_link() {
    let (sim, http) = start().await;
    let config = sim.config().clone();
    let token: Value = http
        .post(format!("{}/v1/oauth2/token", sim.paypal_url()))
        .basic_auth(&config.paypal_client_id, Some(&config.paypal_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let batch = json!({"sender_batch_header": {"sender_batch_id": "2014021801"},
        "items": [{"recipient_type": "EMAIL", "amount": {"value": "9.87", "currency": "USD"}, "receiver": "a@example.com", "sender_item_id": "i-1"}]});
    let post = || {
        http.post(format!("{}/v1/payments/payouts", sim.paypal_url()))
            .bearer_auth(&token)
            .json(&batch)
            .send()
    };
    let created = post().await.unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["batch_header"]["payout_batch_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let duplicate = post().await.unwrap();
    assert_eq!(duplicate.status(), 400);
    let body: Value = duplicate.json().await.unwrap();
    assert_eq!(body["name"], "USER_BUSINESS_ERROR");
    assert_eq!(body["details"][0]["field"], "SENDER_BATCH_ID");
    assert!(
        body["details"][0]["link"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v1/payments/payouts/{id}"))
    );
    let read: Value = http
        .get(format!("{}/v1/payments/payouts/{id}", sim.paypal_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["items"][0]["payout_item"]["amount"]["value"], "9.87");
    assert_eq!(read["items"][0]["transaction_status"], "SUCCESS");
}

#[tokio::test]
async fn tremendous_external_id_same_payload_201_other_409() {
    let (sim, http) = start().await;
    let order = |denomination: f64| {
        json!({"external_id": "payout-123", "payment": {"funding_source_id": "balance"},
        "reward": {"value": {"denomination": denomination, "currency_code": "USD"}, "delivery": {"method": "LINK"},
            "recipient": {"name": "Ann", "email": "ann@example.com"}, "products": ["P1"]}})
    };
    let post = |body: Value| {
        http.post(format!("{}/orders", sim.tremendous_url()))
            .bearer_auth(&sim.config().tremendous_key)
            .json(&body)
            .send()
    };
    assert_eq!(post(order(25.0)).await.unwrap().status(), 200);
    assert_eq!(post(order(25.0)).await.unwrap().status(), 201);
    let conflict = post(order(30.0)).await.unwrap();
    assert_eq!(conflict.status(), 409);
    assert_eq!(conflict.json::<Value>().await.unwrap()["status"], 409);
    let by_external: Value = http
        .get(format!("{}/orders/payout-123", sim.tremendous_url()))
        .bearer_auth(&sim.config().tremendous_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_external["order"]["rewards"][0]["value"]["denomination"], 25.0);
    assert_eq!(sim.orders().len(), 1);
}
