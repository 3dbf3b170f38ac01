//! HTTP/JSON through the gateway to a real registry and matching, on both engines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{App, influencer, spawn};
use serde_json::{Value, json};

chorus_testkit::on_both_backends! { spawn;
    creates_and_gets_an_influencer => |app: App| async move {
        let body = influencer("Ada Barks", "ada.barks", "US");
        let created = app
            .send(
                app.http
                    .post(app.url("/v1/influencers"))
                    .bearer_auth(&app.token)
                    .header("Idempotency-Key", "create-ada-1")
                    .json(&body),
            )
            .await;
        assert_eq!(created.status, 200, "{}", created.text);
        assert_eq!(created.headers["content-type"], "application/json");
        // response_body: the bare influencer, in proto3 JSON.
        let name = created.json["name"].as_str().expect("a name").to_owned();
        assert!(name.starts_with("influencers/"), "{name}");
        assert_eq!(created.json["displayName"], "Ada Barks");
        assert_eq!(created.json["accounts"][0]["platform"], "PLATFORM_INSTAGRAM");
        assert_eq!(created.json["rateCard"][0]["price"]["amountMinor"], "25000", "int64 as a string");
        assert!(created.json["createTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", created.text);

        // The Idempotency-Key reaches the kit: the retry gets the first answer.
        let again = app
            .send(
                app.http
                    .post(app.url("/v1/influencers"))
                    .bearer_auth(&app.token)
                    .header("Idempotency-Key", "create-ada-1")
                    .json(&body),
            )
            .await;
        assert_eq!(again.status, 200, "{}", again.text);
        assert_eq!(again.json["name"], name.as_str());

        let got = app.get(&format!("/v1/{name}")).await;
        assert_eq!(got.status, 200, "{}", got.text);
        assert_eq!(got.json, created.json);

        // PATCH with the name from the path and a field mask from the query.
        let patched = app
            .send(
                app.http
                    .patch(app.url(&format!("/v1/{name}?update_mask=displayName")))
                    .bearer_auth(&app.token)
                    .json(&json!({ "displayName": "Ada B." })),
            )
            .await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        assert_eq!(patched.json["displayName"], "Ada B.");
        assert_eq!(patched.json["name"], name.as_str());
    };

    lists_with_query_parameters => |app: App| async move {
        app.create_influencer("One", "one.us", "US").await;
        let fr = app.create_influencer("Deux", "deux.fr", "FR").await;
        app.create_influencer("Trois", "trois.fr", "FR").await;

        let page = app.get("/v1/influencers?country_code=FR&page_size=1&order_by=create_time").await;
        assert_eq!(page.status, 200, "{}", page.text);
        let list = page.json["influencers"].as_array().expect("influencers");
        assert_eq!(list.len(), 1, "{}", page.text);
        assert_eq!(list[0]["name"], fr["name"]);
        let token = page.json["nextPageToken"].as_str().expect("a next page").to_owned();

        // lowerCamelCase names work too (the token is bound to the same filters).
        let next = app
            .get(&format!(
                "/v1/influencers?countryCode=FR&pageSize=1&orderBy=create_time&pageToken={}",
                urlencode(&token)
            ))
            .await;
        assert_eq!(next.status, 200, "{}", next.text);
        let list = next.json["influencers"].as_array().expect("influencers");
        assert_eq!(list.len(), 1, "{}", next.text);
        assert_eq!(list[0]["displayName"], "Trois");

        // Repeated fields repeat; enums by name.
        let active = app
            .get("/v1/influencers?statuses=INFLUENCER_STATUS_ACTIVE&statuses=INFLUENCER_STATUS_PAUSED&platform=PLATFORM_INSTAGRAM&niches=pets&niches=travel")
            .await;
        assert_eq!(active.status, 200, "{}", active.text);
        assert_eq!(active.json["influencers"].as_array().map_or(0, Vec::len), 3, "{}", active.text);
        let tiktok = app.get("/v1/influencers?platform=PLATFORM_TIKTOK").await;
        assert_eq!(tiktok.status, 200, "{}", tiktok.text);
        assert!(tiktok.json.get("influencers").is_none(), "{}", tiktok.text);

        let none = app.get("/v1/influencers?country_code=DE").await;
        assert_eq!(none.status, 200, "{}", none.text);
        assert!(none.json.get("influencers").is_none(), "{}", none.text);
    };

    field_violations_come_back_as_bad_request_details => |app: App| async move {
        let mut body = influencer("", "x", "USA");
        body["displayName"] = json!("");
        let a = app.post("/v1/influencers", &body).await;
        assert_eq!(a.status, 400, "{}", a.text);
        assert_eq!(a.json["code"], 3);
        let details = a.json["details"].as_array().expect("details");
        let bad = details
            .iter()
            .find(|d| d["@type"] == "type.googleapis.com/google.rpc.BadRequest")
            .unwrap_or_else(|| panic!("no BadRequest in {}", a.text));
        let fields: Vec<&str> = bad["fieldViolations"]
            .as_array()
            .expect("violations")
            .iter()
            .filter_map(|v| v["field"].as_str())
            .collect();
        assert!(fields.iter().any(|f| f.contains("display_name")), "{fields:?}");
        assert!(fields.iter().any(|f| f.contains("country_code")), "{fields:?}");
        assert!(
            details.iter().any(|d| d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" && d["domain"] == "chorus"),
            "{}",
            a.text
        );
    };

    missing_and_forbidden_answer_404_401_403 => |app: App| async move {
        let missing = app.get("/v1/influencers/0190c3d2-7a3e-7b4c-9d5e-123456789abc").await;
        assert_eq!(missing.status, 404, "{}", missing.text);
        assert_eq!(missing.json["code"], 5);

        let anonymous = app.send(app.http.get(app.url("/v1/influencers"))).await;
        assert_eq!(anonymous.status, 401, "{}", anonymous.text);
        assert_eq!(anonymous.json["code"], 16);

        let reader = app.stack.token("brand-a", &["registry.read"]);
        let denied = app
            .send(app.http.post(app.url("/v1/influencers")).bearer_auth(reader).json(&influencer("Z", "z.z", "US")))
            .await;
        assert_eq!(denied.status, 403, "{}", denied.text);
        assert_eq!(denied.json["code"], 7);
    };

    contact_details_need_the_scope_and_consent_in_json_too => |app: App| async move {
        let mut body = influencer("Cora", "cora.calls", "US");
        body["contact"] = json!({ "email": "cora@example.com" });
        body["consent"] = json!({ "contactAllowed": true });
        let created = app.post("/v1/influencers", &body).await;
        assert_eq!(created.status, 200, "{}", created.text);
        assert!(!created.text.contains("cora@example.com"), "no registry.contacts: {}", created.text);
        let name = created.json["name"].as_str().unwrap().to_owned();
        let contacts = app.stack.token("brand-b", &["registry.read", "registry.contacts"]);
        for (path, token, shown) in [
            (format!("/v1/{name}"), &app.token, false),
            (format!("/v1/{name}"), &contacts, true),
            ("/v1/influencers".to_owned(), &app.token, false),
            ("/v1/influencers".to_owned(), &contacts, true),
            ("/v1/influencers:export".to_owned(), &app.token, false),
            ("/v1/influencers:export".to_owned(), &contacts, true),
        ] {
            let got = app.send(app.http.get(app.url(&path)).bearer_auth(token)).await;
            assert_eq!(got.status, 200, "{path}: {}", got.text);
            assert_eq!(got.text.contains("cora@example.com"), shown, "{path}: {}", got.text);
        }
    };

    exports_stream_as_an_array_or_ndjson => |app: App| async move {
        for i in 0..5 {
            app.create_influencer(&format!("Streamer {i}"), &format!("streamer.{i}"), "US").await;
        }
        // Pages of two: three messages.
        let array = app.get("/v1/influencers:export?page_size=2").await;
        assert_eq!(array.status, 200, "{}", array.text);
        let pages = array.json.as_array().unwrap_or_else(|| panic!("an array: {}", array.text));
        assert_eq!(pages.len(), 3, "{}", array.text);
        let total: usize = pages.iter().map(|p| p["influencers"].as_array().map_or(0, Vec::len)).sum();
        assert_eq!(total, 5);

        let nd = app
            .send(
                app.http
                    .get(app.url("/v1/influencers:export?page_size=2"))
                    .bearer_auth(&app.token)
                    .header("Accept", "application/x-ndjson"),
            )
            .await;
        assert_eq!(nd.status, 200, "{}", nd.text);
        assert_eq!(nd.headers["content-type"], "application/x-ndjson");
        let lines: Vec<Value> = nd.text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
        assert_eq!(lines, *pages);

        // An error before the first message is an ordinary error answer.
        let bad = app.get("/v1/influencers:export?page_size=100000").await;
        assert_eq!(bad.status, 400, "{}", bad.text);
    };

    creates_and_reads_a_campaign_in_matching => |app: App| async move {
        let campaign = json!({
            "displayName": "Vegan dog treats",
            "objective": "OBJECTIVE_AWARENESS",
            "brief": {
                "niches": [{ "niche": "pets", "weight": 2 }],
                "locations": [{ "countryCode": "US", "city": "Austin" }],
                "deliverables": [{ "kind": "DELIVERABLE_KIND_FEED_POST", "count": 1, "platform": "PLATFORM_INSTAGRAM" }],
                "compensationOffered": ["COMPENSATION_KIND_CASH"],
                "budget": { "currencyCode": "USD", "amountMinor": "500000" },
                "headcount": 20,
                "disclosureJurisdiction": "US"
            }
        });
        let created = app.post("/v1/campaigns", &campaign).await;
        assert_eq!(created.status, 200, "{}", created.text);
        let name = created.json["name"].as_str().expect("a name").to_owned();
        assert!(name.starts_with("campaigns/"));
        assert_eq!(created.json["tenant"], "brand-a");
        assert_eq!(created.json["brief"]["budget"]["amountMinor"], "500000");

        let got = app.get(&format!("/v1/{name}")).await;
        assert_eq!(got.status, 200, "{}", got.text);
        assert_eq!(got.json["displayName"], "Vegan dog treats");

        // Another tenant does not see it.
        let other = app.stack.token("brand-b", &["matching.read"]);
        let hidden = app.send(app.http.get(app.url(&format!("/v1/{name}"))).bearer_auth(other)).await;
        assert_eq!(hidden.status, 404, "{}", hidden.text);

        let listed = app.get("/v1/campaigns?page_size=10").await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        assert_eq!(listed.json["campaigns"][0]["name"], name.as_str());
    };

    refuses_what_it_cannot_transcode => |app: App| async move {
        let unknown = app.get("/v1/nothing/here").await;
        assert_eq!(unknown.status, 404, "{}", unknown.text);
        assert_eq!(unknown.json["code"], 5);

        let wrong = app.send(app.http.put(app.url("/v1/influencers")).bearer_auth(&app.token)).await;
        assert_eq!(wrong.status, 405, "{}", wrong.text);
        assert_eq!(wrong.headers["allow"], "GET, POST");

        // A custom method's path is that method's only: GET on `…:batchGet` is not
        // GetInfluencer of an influencer named `influencers:batchGet`.
        let custom = app.send(app.http.put(app.url("/v1/influencers:batchGet")).bearer_auth(&app.token)).await;
        assert_eq!(custom.status, 405, "{}", custom.text);
        assert_eq!(custom.headers["allow"], "GET");
        let verb = app
            .send(app.http.delete(app.url("/v1/offers/00000000-0000-4000-8000-000000000000:accept")).bearer_auth(&app.token))
            .await;
        assert_eq!(verb.status, 405, "{}", verb.text);
        assert_eq!(verb.headers["allow"], "POST");

        let malformed = app
            .send(
                app.http
                    .post(app.url("/v1/influencers"))
                    .bearer_auth(&app.token)
                    .header("content-type", "application/json")
                    .body("{\"displayName\": "),
            )
            .await;
        assert_eq!(malformed.status, 400, "{}", malformed.text);
        assert!(malformed.json["message"].as_str().unwrap_or_default().contains("malformed JSON"), "{}", malformed.text);

        let mut extra = influencer("X", "x.x", "US");
        extra["favouriteColour"] = json!("blue");
        let unknown_field = app.post("/v1/influencers", &extra).await;
        assert_eq!(unknown_field.status, 400, "{}", unknown_field.text);
        assert!(unknown_field.text.contains("favouriteColour"), "{}", unknown_field.text);

        let mut bad_enum = influencer("X", "x.x", "US");
        bad_enum["accounts"][0]["platform"] = json!("PLATFORM_MYSPACE");
        let a = app.post("/v1/influencers", &bad_enum).await;
        assert_eq!(a.status, 400, "{}", a.text);
        assert!(a.text.contains("PLATFORM_MYSPACE"), "{}", a.text);

        let query = app.get("/v1/influencers?colour=blue").await;
        assert_eq!(query.status, 400, "{}", query.text);
        assert_eq!(query.json["details"][0]["fieldViolations"][0]["field"], "colour", "{}", query.text);

        let not_int = app.get("/v1/influencers?page_size=ten").await;
        assert_eq!(not_int.status, 400, "{}", not_int.text);
        assert_eq!(not_int.json["details"][0]["fieldViolations"][0]["field"], "page_size", "{}", not_int.text);

        let body_on_get = app
            .send(app.http.get(app.url("/v1/influencers")).bearer_auth(&app.token).json(&json!({"pageSize": 1})))
            .await;
        assert_eq!(body_on_get.status, 400, "{}", body_on_get.text);

        let not_json = app
            .send(
                app.http
                    .post(app.url("/v1/influencers"))
                    .bearer_auth(&app.token)
                    .header("content-type", "text/plain")
                    .body("hello"),
            )
            .await;
        assert_eq!(not_json.status, 415, "{}", not_json.text);
    };
}

/// A gateway whose upstream is down answers 503 UNAVAILABLE, not a hang or a 500.
#[tokio::test]
async fn an_unreachable_upstream_is_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let gateway = common::start_gateway(vec![
        ("CHORUS_GATEWAY_ADDR".into(), "127.0.0.1:0".into()),
        (
            "CHORUS_GATEWAY_UPSTREAM_REGISTRY".into(),
            format!("http://127.0.0.1:{port}"),
        ),
    ])
    .await;
    let response = reqwest::get(format!("http://{}/v1/influencers", gateway.addr))
        .await
        .expect("an answer");
    assert_eq!(response.status().as_u16(), 503);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["code"], 14);
    gateway.shutdown().await.expect("stops");
}

/// Bad settings stop the start, naming the setting.
#[test]
fn a_bad_upstream_setting_is_named() {
    let source = chorus_kit::config::Source::from_pairs([("CHORUS_GATEWAY_UPSTREAM_REGISTRY", "registry:50051")]);
    let e = chorus_gateway::Config::read(&source).expect_err("refused");
    assert!(
        e.violations()
            .iter()
            .any(|v| v.field == "CHORUS_GATEWAY_UPSTREAM_REGISTRY"),
        "{e} {:?}",
        e.violations()
    );
}

fn urlencode(s: &str) -> String {
    url_escape(s)
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An upstream that accepts connections and never answers: the caller gets 504 at the
/// deadline, not a request held open; while it waits, a call over the in-flight limit is shed
/// at once with 503 and Retry-After.
#[tokio::test]
async fn a_silent_upstream_times_out_and_overload_is_shed() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let port = silent.local_addr().expect("addr").port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket); // kept open, never read or written
        }
    });
    let gateway = common::start_gateway(vec![
        ("CHORUS_GATEWAY_ADDR".into(), "127.0.0.1:0".into()),
        (
            "CHORUS_GATEWAY_UPSTREAM_REGISTRY".into(),
            format!("http://127.0.0.1:{port}"),
        ),
        ("CHORUS_GATEWAY_DEADLINE_MS".into(), "1500".into()),
        ("CHORUS_GATEWAY_MAX_IN_FLIGHT".into(), "1".into()),
    ])
    .await;
    let url = format!("http://{}/v1/influencers", gateway.addr);
    let started = std::time::Instant::now();
    let first = tokio::spawn(reqwest::get(url.clone()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let shed = reqwest::get(url.clone()).await.expect("an answer");
    assert_eq!(shed.status().as_u16(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    let body: Value = shed.json().await.expect("JSON");
    assert_eq!(body["code"], 14, "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1400),
        "shed at once, not queued"
    );

    let timed_out = first.await.expect("joined").expect("an answer");
    let status = timed_out.status().as_u16();
    let body: Value = timed_out.json().await.expect("JSON");
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["code"], 4, "{body}");
    assert!(
        body["message"].as_str().unwrap_or_default().contains("1500 ms"),
        "{body}"
    );
    let waited = started.elapsed();
    assert!(waited >= std::time::Duration::from_millis(1500), "{waited:?}");

    // The slot is free again once the first call has been answered.
    let again = reqwest::get(url).await.expect("an answer");
    assert_eq!(again.status().as_u16(), 504);
    gateway.shutdown().await.expect("stops");
    held.abort();
}
