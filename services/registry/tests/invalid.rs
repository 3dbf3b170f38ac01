//! Bad input to every RPC of the registry, on PostgreSQL and on SQLite: missing fields, negative
//! counts, unknown enum values, oversize pages and messages, malformed or foreign page tokens,
//! unknown ids. Each is answered with the right code and the offending field path, and nothing
//! is written: the catalogue and the metrics history stay as they were and no event goes out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chorus_proto::google::rpc;
use chorus_proto::registry::*;
use chorus_proto::types::{CompensationKind, DeliverableKind, Money, Platform};
use chorus_registry::api::MAX_ROWS_PER_MESSAGE;
use common::*;
use prost::Message;
use prost_types::{FieldMask, Timestamp};
use tonic::{Code, Status};

// ---- helpers ----------------------------------------------------------------------------------

/// The field paths in a row's `google.rpc.Status` (import results, metrics row errors).
fn row_fields(status: &rpc::Status) -> Vec<String> {
    status
        .details
        .iter()
        .filter(|d| d.type_url.ends_with("google.rpc.BadRequest"))
        .flat_map(|d| rpc::BadRequest::decode(d.value.as_slice()).unwrap().field_violations)
        .map(|v| v.field)
        .collect()
}

/// A row's error as (code, fields).
fn row_error(status: Option<&rpc::Status>) -> (i32, Vec<String>) {
    let s = status.expect("a row error");
    (s.code, row_fields(s))
}

/// How many snapshots an influencer's history holds.
async fn history(client: &mut Client, parent: &str) -> usize {
    client
        .list_metrics_snapshots(ListMetricsSnapshotsRequest {
            parent: parent.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .snapshots
        .len()
}

/// An influencer that must exist.
async fn get(c: &mut Client, name: &str) -> Influencer {
    c.get_influencer(GetInfluencerRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .influencer
        .unwrap()
}

fn unknown_name() -> String {
    format!("influencers/{}", uuid::Uuid::now_v7())
}

fn create_req(inf: Influencer) -> CreateInfluencerRequest {
    CreateInfluencerRequest {
        influencer: Some(inf),
        request_id: String::new(),
    }
}

fn update_req(inf: Influencer, paths: &[&str]) -> UpdateInfluencerRequest {
    UpdateInfluencerRequest {
        influencer: Some(inf),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
        ..Default::default()
    }
}

/// Streams `batches` through ImportInfluencers: every result received, then the stream's error
/// if it failed.
async fn import(client: &mut Client, batches: Vec<Vec<Influencer>>) -> (Vec<ImportResult>, Option<Status>) {
    let reqs: Vec<ImportInfluencersRequest> = batches
        .into_iter()
        .map(|influencers| ImportInfluencersRequest { influencers })
        .collect();
    let mut stream = match client.import_influencers(tokio_stream::iter(reqs)).await {
        Ok(r) => r.into_inner(),
        Err(s) => return (Vec::new(), Some(s)),
    };
    let mut results = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(r)) => results.extend(r.results),
            Ok(None) => return (results, None),
            Err(s) => return (results, Some(s)),
        }
    }
}

/// A page token with its cursor's sort key replaced by `key` (JSON), the query fingerprint kept.
fn with_sort_key(token: &str, key: &str) -> String {
    let json = String::from_utf8(URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap();
    let start = json.find("\"key\":").expect("a sort key in the token");
    let end = start + json[start..].find('}').unwrap() + 1;
    let forged = format!("{}\"key\":{key}{}", &json[..start], &json[end..]);
    URL_SAFE_NO_PAD.encode(forged)
}

// ---- the cases ----------------------------------------------------------------------------------

async fn create_cases(app: TestApp) {
    let mut events = app.events().await;
    let mut c = app.client().await;
    let existing = create(&mut c, influencer("Existing", "taken")).await;
    assert_eq!(
        next_types(&mut events, 1).await,
        ["chorus.registry.v1.InfluencerUpserted"]
    );

    let r = c
        .create_influencer(CreateInfluencerRequest {
            influencer: None,
            request_id: String::new(),
        })
        .await;
    invalid("no influencer", r, &["influencer"]);

    let r = c
        .create_influencer(CreateInfluencerRequest {
            influencer: Some(influencer("A", "a")),
            request_id: "x".repeat(129),
        })
        .await;
    invalid("request_id too long", r, &["request_id"]);

    let r = c.create_influencer(create_req(Influencer::default())).await;
    invalid("empty profile", r, &["influencer.display_name", "influencer.accounts"]);

    let mut inf = influencer("  ", "a");
    inf.accounts.clear();
    let r = c.create_influencer(create_req(inf)).await;
    invalid(
        "blank name, no accounts",
        r,
        &["influencer.display_name", "influencer.accounts"],
    );

    // Unknown enum values.
    let mut inf = influencer("Enums", "enums");
    inf.accounts[0].platform = 99;
    inf.status = 99;
    inf.compensation_accepted = vec![CompensationKind::Cash as i32, 99];
    inf.rate_card[0].kind = 99;
    inf.audience = Some(AudienceDemographics {
        age_buckets: vec![AgeBucketShare { bucket: 99, share: 0.5 }],
        ..Default::default()
    });
    let r = c.create_influencer(create_req(inf)).await;
    invalid(
        "unknown enums",
        r,
        &[
            "influencer.accounts[0].platform",
            "influencer.audience.age_buckets[0].bucket",
            "influencer.rate_card[0].kind",
            "influencer.compensation_accepted[1]",
            "influencer.status",
        ],
    );

    let mut inf = influencer("Unspecified platform", "unspecified");
    inf.accounts[0].platform = Platform::Unspecified as i32;
    let r = c.create_influencer(create_req(inf)).await;
    invalid("unspecified platform", r, &["influencer.accounts[0].platform"]);

    // Negative amounts and shares out of range.
    let mut inf = influencer("Negative", "negative");
    inf.rate_card[0].price = Some(Money {
        currency_code: "USD".into(),
        amount_minor: -1,
    });
    inf.audience = Some(AudienceDemographics {
        gender: Some(GenderSplit {
            female: -0.1,
            male: 0.5,
            other: 0.0,
        }),
        ..Default::default()
    });
    let r = c.create_influencer(create_req(inf)).await;
    invalid(
        "negative price and share",
        r,
        &[
            "influencer.audience.gender.female",
            "influencer.rate_card[0].price.amount_minor",
        ],
    );

    let mut inf = influencer("Missing price", "noprice");
    inf.rate_card[0].price = None;
    let r = c.create_influencer(create_req(inf)).await;
    invalid("rate without price", r, &["influencer.rate_card[0].price"]);

    let mut inf = influencer("Niche", "niche");
    inf.niches = vec!["fitness".into(), "crypto-bros".into()];
    let r = c.create_influencer(create_req(inf)).await;
    invalid("unknown niche", r, &["influencer.niches[1]"]);

    let mut inf = influencer("Handles", "bad handle!");
    inf.accounts.push(account(Platform::Tiktok, ""));
    let r = c.create_influencer(create_req(inf)).await;
    invalid(
        "malformed and missing handles",
        r,
        &["influencer.accounts[0].handle", "influencer.accounts[1].handle"],
    );

    let mut inf = influencer("Twice", "twice");
    inf.accounts.push(account(Platform::Instagram, "@TWICE"));
    let r = c.create_influencer(create_req(inf)).await;
    invalid("the same account twice", r, &["influencer.accounts[1]"]);

    let mut inf = influencer("Place", "place");
    inf.location.as_mut().unwrap().country_code = "USA".into();
    inf.languages = vec!["en".into(), "english!".into()];
    inf.contact = Some(Contact {
        email: "not-an-email".into(),
        phone: String::new(),
    });
    let r = c.create_influencer(create_req(inf)).await;
    invalid(
        "country, language, email",
        r,
        &[
            "influencer.location.country_code",
            "influencer.languages[1]",
            "influencer.contact.email",
        ],
    );

    // A taken account is not a field error but a conflict.
    let r = c.create_influencer(create_req(influencer("Other", "TAKEN"))).await;
    let status = r.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");

    // A failed create does not claim its request id.
    let mut bad = influencer("", "retry");
    bad.niches = vec!["nope".into()];
    let r = c
        .create_influencer(CreateInfluencerRequest {
            influencer: Some(bad),
            request_id: "retry-1".into(),
        })
        .await;
    invalid(
        "bad create with a request id",
        r,
        &["influencer.display_name", "influencer.niches[0]"],
    );

    let stored = all(&mut c).await;
    assert_eq!(
        stored,
        [get(&mut c, &existing.name).await],
        "only the first influencer exists"
    );
    quiet(&mut events, "create").await;

    let retried = c
        .create_influencer(CreateInfluencerRequest {
            influencer: Some(influencer("Retry", "retry")),
            request_id: "retry-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .influencer
        .unwrap();
    assert_eq!(retried.display_name, "Retry", "the request id was free");
}

async fn get_batch_get_and_delete_cases(app: TestApp) {
    let mut events = app.events().await;
    let mut c = app.client().await;
    let a = create(&mut c, influencer("A", "a")).await;
    let b = create(&mut c, influencer("B", "b")).await;
    assert_eq!(next_types(&mut events, 2).await.len(), 2);
    let id = a.name.trim_start_matches("influencers/").to_owned();

    let get = |name: String| {
        let mut c = c.clone();
        async move { c.get_influencer(GetInfluencerRequest { name }).await }
    };
    invalid("get: empty name", get(String::new()).await, &["name"]);
    invalid("get: not a uuid", get("influencers/not-a-uuid".into()).await, &["name"]);
    invalid("get: bare id", get(id.clone()).await, &["name"]);
    invalid("get: other collection", get(format!("people/{id}")).await, &["name"]);
    invalid("get: trailing segment", get(format!("{}/x", a.name)).await, &["name"]);
    let missing = unknown_name();
    not_found("get: unknown id", get(missing.clone()).await, &missing);
    // The id of an existing influencer, spelled other than its canonical (lower-case, hyphenated)
    // form, is a malformed name rather than an unknown one.
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let spellings = [
        id.to_uppercase(),
        format!("{{{id}}}"),
        uuid.simple().to_string(),
        uuid.urn().to_string(),
    ];
    for spelling in &spellings {
        let r = get(format!("influencers/{spelling}")).await;
        invalid(&format!("get: id spelled {spelling}"), r, &["name"]);
    }

    let batch = |names: Vec<String>| {
        let mut c = c.clone();
        async move { c.batch_get_influencers(BatchGetInfluencersRequest { names }).await }
    };
    invalid("batch: no names", batch(vec![]).await, &["names"]);
    let many: Vec<String> = (0..1001).map(|_| unknown_name()).collect();
    invalid("batch: 1001 names", batch(many).await, &["names"]);
    let r = batch(vec![
        a.name.clone(),
        "influencers/x".into(),
        String::new(),
        b.name.clone(),
    ])
    .await;
    invalid("batch: malformed names", r, &["names[1]", "names[2]"]);
    let r = batch(vec![b.name.clone(), format!("influencers/{}", id.to_uppercase())]).await;
    invalid("batch: id in upper case", r, &["names[1]"]);
    let missing = unknown_name();
    let r = batch(vec![a.name.clone(), missing.clone(), b.name.clone()]).await;
    not_found("batch: an unknown name", r, &missing);

    let delete = |name: String| {
        let mut c = c.clone();
        async move {
            c.delete_influencer(DeleteInfluencerRequest {
                name,
                ..Default::default()
            })
            .await
        }
    };
    invalid("delete: empty name", delete(String::new()).await, &["name"]);
    invalid("delete: not a uuid", delete("influencers/123".into()).await, &["name"]);
    invalid(
        "delete: other collection",
        delete(format!("people/{id}")).await,
        &["name"],
    );
    let missing = unknown_name();
    not_found("delete: unknown id", delete(missing.clone()).await, &missing);
    for spelling in &spellings {
        let r = delete(format!("influencers/{spelling}")).await;
        invalid(&format!("delete: id spelled {spelling}"), r, &["name"]);
    }

    assert_eq!(all(&mut c).await, [a, b], "both influencers are intact");
    quiet(&mut events, "get, batch get, delete").await;
}

async fn update_cases(app: TestApp) {
    let mut events = app.events().await;
    let mut c = app.client().await;
    let created = create(&mut c, influencer("Original", "orig")).await;
    create(&mut c, influencer("Other", "other")).await;
    assert_eq!(next_types(&mut events, 2).await.len(), 2);

    let update = |req: UpdateInfluencerRequest| {
        let mut c = c.clone();
        async move { c.update_influencer(req).await }
    };
    let r = update(UpdateInfluencerRequest {
        influencer: None,
        update_mask: None,
        ..Default::default()
    })
    .await;
    invalid("no influencer", r, &["influencer"]);

    let named = |name: &str| Influencer {
        name: name.into(),
        display_name: "Changed".into(),
        ..Default::default()
    };
    for (case, name) in [
        ("empty name", String::new()),
        ("not a uuid", "influencers/nope".to_owned()),
        ("other collection", created.name.replace("influencers/", "people/")),
    ] {
        invalid(
            case,
            update(update_req(named(&name), &["display_name"])).await,
            &["influencer.name"],
        );
    }
    let missing = unknown_name();
    not_found(
        "unknown id",
        update(update_req(named(&missing), &["display_name"])).await,
        &missing,
    );

    // Paths that are not writable fields.
    let patch = named(&created.name);
    for (case, paths, fields) in [
        ("name", &["name"][..], &["update_mask.paths[0]"][..]),
        ("create_time", &["create_time"], &["update_mask.paths[0]"]),
        ("update_time", &["update_time"], &["update_mask.paths[0]"]),
        ("nope", &["display_name", "nope"], &["update_mask.paths[1]"]),
        ("nested", &["location.city"], &["update_mask.paths[0]"]),
        ("empty path", &[""], &["update_mask.paths[0]"]),
        (
            "several",
            &["name", "display_name", "create_time", "nope"],
            &["update_mask.paths[0]", "update_mask.paths[2]", "update_mask.paths[3]"],
        ),
    ] {
        invalid(case, update(update_req(patch.clone(), paths)).await, fields);
    }

    // Bad values in the masked fields.
    let mut p = named(&created.name);
    p.display_name = "   ".into();
    invalid(
        "blank display name",
        update(update_req(p, &["display_name"])).await,
        &["influencer.display_name"],
    );
    let p = named(&created.name);
    invalid(
        "no accounts",
        update(update_req(p, &["accounts"])).await,
        &["influencer.accounts"],
    );
    let mut p = named(&created.name);
    p.accounts = vec![
        account(Platform::Instagram, "orig"),
        SocialAccount {
            platform: 99,
            ..account(Platform::Instagram, "new")
        },
    ];
    invalid(
        "unknown platform",
        update(update_req(p, &["accounts"])).await,
        &["influencer.accounts[1].platform"],
    );
    let mut p = named(&created.name);
    p.status = 99;
    p.niches = vec!["crypto-bros".into()];
    invalid(
        "unknown status and niche",
        update(update_req(p, &["status", "niches"])).await,
        &["influencer.niches[0]", "influencer.status"],
    );
    let mut p = named(&created.name);
    p.rate_card = vec![RateCardEntry {
        kind: DeliverableKind::Story as i32,
        price: Some(Money {
            currency_code: "EUR".into(),
            amount_minor: -500,
        }),
    }];
    invalid(
        "negative price",
        update(update_req(p, &["rate_card"])).await,
        &["influencer.rate_card[0].price.amount_minor"],
    );
    // An empty mask replaces every writable field, so a sparse patch lacks accounts.
    let r = update(UpdateInfluencerRequest {
        influencer: Some(named(&created.name)),
        update_mask: None,
        ..Default::default()
    })
    .await;
    invalid("empty mask, sparse patch", r, &["influencer.accounts"]);

    // Taking another influencer's account is a conflict, not a field error.
    let mut p = named(&created.name);
    p.accounts = vec![account(Platform::Instagram, "other")];
    let status = update(update_req(p, &["accounts"])).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");

    assert_eq!(get(&mut c, &created.name).await, created, "the influencer is untouched");
    assert_eq!(all(&mut c).await.len(), 2);
    quiet(&mut events, "update").await;
}

async fn list_cases(app: TestApp) {
    let mut events = app.events().await;
    let mut c = app.client().await;
    for i in 0..3 {
        create(&mut c, influencer(&format!("P{i}"), &format!("p{i}"))).await;
    }
    assert_eq!(next_types(&mut events, 3).await.len(), 3);

    let list = |req: ListInfluencersRequest| {
        let mut c = c.clone();
        async move { c.list_influencers(req).await }
    };
    let cases: Vec<(&str, ListInfluencersRequest, &[&str])> = vec![
        (
            "negative page size",
            ListInfluencersRequest {
                page_size: -1,
                ..Default::default()
            },
            &["page_size"],
        ),
        (
            "oversize page",
            ListInfluencersRequest {
                page_size: 1001,
                ..Default::default()
            },
            &["page_size"],
        ),
        (
            "garbage page token",
            ListInfluencersRequest {
                page_token: "%%% not a token %%%".into(),
                ..Default::default()
            },
            &["page_token"],
        ),
        (
            "page token of valid base64 but not json",
            ListInfluencersRequest {
                page_token: URL_SAFE_NO_PAD.encode("not json"),
                ..Default::default()
            },
            &["page_token"],
        ),
        (
            "unknown platform",
            ListInfluencersRequest {
                platform: 99,
                ..Default::default()
            },
            &["platform"],
        ),
        (
            "unknown and unspecified tiers",
            ListInfluencersRequest {
                tiers: vec![99, 0],
                ..Default::default()
            },
            &["tiers[0]", "tiers[1]"],
        ),
        (
            "unknown status",
            ListInfluencersRequest {
                statuses: vec![InfluencerStatus::Active as i32, 99],
                ..Default::default()
            },
            &["statuses[1]"],
        ),
        (
            "unknown niche",
            ListInfluencersRequest {
                niches: vec!["fitness".into(), "crypto-bros".into()],
                ..Default::default()
            },
            &["niches[1]"],
        ),
        (
            "min followers over max",
            ListInfluencersRequest {
                min_followers: Some(10_000),
                max_followers: Some(5_000),
                ..Default::default()
            },
            &["max_followers"],
        ),
        (
            "negative followers",
            ListInfluencersRequest {
                min_followers: Some(-1),
                ..Default::default()
            },
            &["min_followers"],
        ),
        (
            "min engagement over max",
            ListInfluencersRequest {
                min_engagement_rate: Some(0.5),
                max_engagement_rate: Some(0.1),
                ..Default::default()
            },
            &["max_engagement_rate"],
        ),
        (
            "engagement not a fraction",
            ListInfluencersRequest {
                min_engagement_rate: Some(f64::NAN),
                max_engagement_rate: Some(-0.1),
                ..Default::default()
            },
            &["min_engagement_rate", "max_engagement_rate"],
        ),
        (
            "unknown order key",
            ListInfluencersRequest {
                order_by: "likes".into(),
                ..Default::default()
            },
            &["order_by"],
        ),
        (
            "unknown order direction",
            ListInfluencersRequest {
                order_by: "followers up".into(),
                ..Default::default()
            },
            &["order_by"],
        ),
        (
            "two order keys",
            ListInfluencersRequest {
                order_by: "followers desc, display_name".into(),
                ..Default::default()
            },
            &["order_by"],
        ),
        (
            "country and language",
            ListInfluencersRequest {
                country_code: "USA".into(),
                languages: vec!["en".into(), "english!".into()],
                ..Default::default()
            },
            &["country_code", "languages[1]"],
        ),
        (
            "everything at once",
            ListInfluencersRequest {
                page_size: 5000,
                order_by: "nope".into(),
                platform: 42,
                niches: vec!["nope".into()],
                tiers: vec![42],
                statuses: vec![42],
                min_followers: Some(2),
                max_followers: Some(1),
                ..Default::default()
            },
            &[
                "page_size",
                "order_by",
                "platform",
                "niches[0]",
                "tiers[0]",
                "max_followers",
                "statuses[0]",
            ],
        ),
    ];
    for (case, req, fields) in cases {
        invalid(case, list(req).await, fields);
    }

    // A token belongs to the filters and order it was made for.
    let first = |order_by: &str| ListInfluencersRequest {
        page_size: 1,
        order_by: order_by.into(),
        ..Default::default()
    };
    let token = list(first("")).await.unwrap().into_inner().next_page_token;
    assert!(!token.is_empty());
    let next = list(ListInfluencersRequest {
        page_token: token.clone(),
        ..first("")
    })
    .await;
    assert_eq!(
        next.unwrap().into_inner().influencers.len(),
        1,
        "the token works where it was made"
    );
    let r = list(ListInfluencersRequest {
        page_token: token.clone(),
        country_code: "US".into(),
        ..first("")
    })
    .await;
    invalid("token from other filters", r, &["page_token"]);
    let r = list(ListInfluencersRequest {
        page_token: token.clone(),
        ..first("display_name")
    })
    .await;
    invalid("token from another order", r, &["page_token"]);
    let mut truncated = token.clone();
    truncated.truncate(token.len() / 2);
    let r = list(ListInfluencersRequest {
        page_token: truncated,
        ..first("")
    })
    .await;
    invalid("truncated token", r, &["page_token"]);

    // A tampered token whose cursor does not fit its order is malformed, not an internal error.
    for (order_by, key) in [
        ("followers desc", r#"{"Text":"zzz"}"#),
        ("display_name", r#"{"Int":5}"#),
        ("engagement_rate desc", r#"{"Text":"zzz"}"#),
        ("followers", "\"Id\""),
    ] {
        let token = list(first(order_by)).await.unwrap().into_inner().next_page_token;
        let r = list(ListInfluencersRequest {
            page_token: with_sort_key(&token, key),
            ..first(order_by)
        })
        .await;
        invalid(&format!("tampered cursor for {order_by}"), r, &["page_token"]);
    }

    assert_eq!(all(&mut c).await.len(), 3);
    quiet(&mut events, "list").await;
}

async fn import_cases(app: TestApp) {
    let mut events = app.events().await;
    let mut c = app.client().await;
    let existing = create(&mut c, influencer("Existing", "existing")).await;
    assert_eq!(next_types(&mut events, 1).await.len(), 1);

    let mut enums = influencer("Enums", "enums");
    enums.accounts[0].platform = 99;
    enums.status = 99;
    let mut negative = influencer("Negative", "negative");
    negative.rate_card[0].price.as_mut().unwrap().amount_minor = -1;
    negative.audience = Some(AudienceDemographics {
        top_countries: vec![CountryShare {
            country_code: "US".into(),
            share: -0.5,
        }],
        ..Default::default()
    });
    let mut niche = influencer("Niche", "niche");
    niche.niches = vec!["crypto-bros".into()];
    let mut renamed = influencer("Existing, renamed", "EXISTING");
    renamed.niches = vec!["music".into()];
    let batch1 = vec![
        influencer("Good one", "good1"),
        Influencer::default(),
        enums,
        influencer("Good two", "good2"),
    ];
    let batch2 = vec![
        negative,
        renamed,
        niche,
        influencer("Dup", "dup"),
        influencer("Dup again", "DUP"),
        influencer("Bad handle", "no spaces allowed"),
    ];
    let (results, error) = import(&mut c, vec![batch1, batch2]).await;
    assert!(error.is_none(), "{error:?}");

    use ImportOutcome::{Created, Failed, Updated};
    let outcomes: Vec<(i64, i32)> = results.iter().map(|r| (r.row, r.outcome)).collect();
    let expected = [
        (0, Created),
        (1, Failed),
        (2, Failed),
        (3, Created),
        (4, Failed),
        (5, Updated),
        (6, Failed),
        (7, Created),
        (8, Failed),
        (9, Failed),
    ];
    assert_eq!(outcomes, expected.map(|(row, o)| (row, o as i32)));
    let invalid_row = Code::InvalidArgument as i32;
    let failures: Vec<(i64, (i32, Vec<String>))> = results
        .iter()
        .filter(|r| r.outcome == Failed as i32)
        .map(|r| (r.row, row_error(r.error.as_ref())))
        .collect();
    let want = |row: i64, fields: &[&str]| (row, (invalid_row, fields.iter().map(|f| (*f).to_owned()).collect()));
    assert_eq!(
        failures,
        [
            want(1, &["display_name", "accounts"]),
            want(2, &["accounts[0].platform", "status"]),
            want(
                4,
                &["audience.top_countries[0].share", "rate_card[0].price.amount_minor"]
            ),
            want(6, &["niches[0]"]),
            want(8, &["accounts[0]"]),
            want(9, &["accounts[0].handle"]),
        ]
    );
    for r in &results {
        if r.outcome == Failed as i32 {
            assert!(r.name.is_empty(), "row {} failed yet names {:?}", r.row, r.name);
        } else {
            assert!(r.error.is_none(), "row {} succeeded with an error", r.row);
            assert!(r.name.starts_with("influencers/"), "row {}", r.row);
        }
    }
    assert_eq!(
        results[5].name, existing.name,
        "the good update in the same message went through"
    );
    assert_eq!(get(&mut c, &existing.name).await.display_name, "Existing, renamed");
    assert_eq!(all(&mut c).await.len(), 4, "existing + good1 + good2 + dup");
    let types = next_types(&mut events, 4).await;
    assert!(
        types.iter().all(|t| t == "chorus.registry.v1.InfluencerUpserted"),
        "{types:?}"
    );
    quiet(&mut events, "import: only the good rows").await;

    // A message over the limit fails the stream, naming the field; rows sent before it stand.
    let oversize = |prefix: &str| -> Vec<Influencer> {
        (0..=MAX_ROWS_PER_MESSAGE)
            .map(|i| Influencer {
                display_name: "Bulk".into(),
                accounts: vec![account(Platform::Youtube, &format!("{prefix}{i}"))],
                ..Default::default()
            })
            .collect()
    };
    let (results, error) = import(&mut c, vec![oversize("alone")]).await;
    assert!(results.is_empty(), "{results:?}");
    let status = error.expect("the stream fails");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["influencers"]);

    let (results, error) = import(&mut c, vec![vec![influencer("Before", "before")], oversize("after")]).await;
    assert_eq!(results.len(), 1);
    assert_eq!((results[0].row, results[0].outcome), (0, Created as i32));
    let status = error.expect("the stream fails");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["influencers"]);

    assert_eq!(all(&mut c).await.len(), 5, "only the row before the oversize message");
    assert_eq!(
        next_types(&mut events, 1).await,
        ["chorus.registry.v1.InfluencerUpserted"]
    );
    quiet(&mut events, "import: oversize messages").await;
}

async fn record_metrics_cases(app: TestApp) {
    let mut events = app.events().await;
    let mut c = app.client().await;
    let m = create(&mut c, influencer("Measured", "m")).await;
    assert_eq!(next_types(&mut events, 1).await.len(), 1);

    let good = || snapshot(Platform::Instagram, "m", 5_000, 400);
    let with = |f: &dyn Fn(&mut MetricsSnapshot)| {
        let mut s = good();
        f(&mut s);
        s
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let message1 = vec![
        good(),
        with(&|s| s.followers = -1),
        with(&|s| s.window_sponsored_posts = s.window_posts + 1),
        with(&|s| s.platform = 99),
        snapshot(Platform::Tiktok, "nobody", 10, 1),
        with(&|s| s.handle = String::new()),
        with(&|s| {
            s.following = -5;
            s.window_likes = -1;
        }),
    ];
    let message2 = vec![
        with(&|s| s.handle = "@M".into()),
        with(&|s| s.window_days = 400),
        with(&|s| {
            s.observe_time = Some(Timestamp {
                seconds: now + 7 * 86_400,
                nanos: 0,
            })
        }),
        with(&|s| s.platform = Platform::Unspecified as i32),
        with(&|s| s.window_reach = Some(-1)),
    ];
    let reply = c
        .record_metrics(tokio_stream::iter(vec![
            RecordMetricsRequest { snapshots: message1 },
            RecordMetricsRequest { snapshots: message2 },
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.recorded_count, 2, "rows 0 and 7 only");
    let errors: Vec<(i64, (i32, Vec<String>))> = reply
        .errors
        .iter()
        .map(|e| (e.row, row_error(e.error.as_ref())))
        .collect();
    let bad = |row: i64, fields: &[&str]| {
        (
            row,
            (
                Code::InvalidArgument as i32,
                fields.iter().map(|f| (*f).to_owned()).collect(),
            ),
        )
    };
    assert_eq!(
        errors,
        [
            bad(1, &["followers"]),
            bad(2, &["window_sponsored_posts"]),
            bad(3, &["platform"]),
            (4, (Code::NotFound as i32, vec![])),
            bad(5, &["handle"]),
            bad(6, &["following", "window_likes"]),
            bad(8, &["window_days"]),
            bad(9, &["observe_time"]),
            bad(10, &["platform"]),
            bad(11, &["window_reach"]),
        ]
    );
    assert_eq!(history(&mut c, &m.name).await, 2);
    assert_eq!(
        next_types(&mut events, 5).await,
        // The good rows come in two messages, each re-vetting the account.
        [
            "chorus.registry.v1.MetricsRecorded",
            "chorus.registry.v1.VettingReported",
            "chorus.registry.v1.VerdictChanged",
            "chorus.registry.v1.MetricsRecorded",
            "chorus.registry.v1.VettingReported",
        ]
    );
    quiet(&mut events, "metrics: only the good rows").await;

    // A message over the limit fails the call, naming the field, and records nothing.
    let oversize: Vec<MetricsSnapshot> = (0..=MAX_ROWS_PER_MESSAGE).map(|_| good()).collect();
    let status = c
        .record_metrics(tokio_stream::iter(vec![RecordMetricsRequest { snapshots: oversize }]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["snapshots"]);

    // A message of bad rows only records nothing.
    let reply = record(&mut c, vec![with(&|s| s.followers = -1), with(&|s| s.platform = 99)]).await;
    assert_eq!(reply.recorded_count, 0);
    assert_eq!(reply.errors.iter().map(|e| e.row).collect::<Vec<_>>(), [0, 1]);

    assert_eq!(history(&mut c, &m.name).await, 2);
    let latest = get(&mut c, &m.name).await.accounts[0]
        .metrics
        .clone()
        .unwrap()
        .latest
        .unwrap();
    assert_eq!(latest.followers, 5_000, "no bad row became the latest");
    quiet(&mut events, "metrics: oversize and all-bad messages").await;
}

async fn list_metrics_snapshots_cases(app: TestApp) {
    let mut events = app.events().await;
    let mut c = app.client().await;
    let mut inf = influencer("Measured", "m");
    inf.accounts.push(account(Platform::Tiktok, "m"));
    let m = create(&mut c, inf).await;
    let other = create(&mut c, influencer("Other", "o")).await;
    let mut snaps = Vec::new();
    for (i, (platform, handle)) in [
        (Platform::Instagram, "m"),
        (Platform::Tiktok, "m"),
        (Platform::Instagram, "o"),
    ]
    .into_iter()
    .enumerate()
    {
        for day in 0..2 {
            let mut s = snapshot(platform, handle, 1_000, 100);
            s.observe_time = Some(Timestamp {
                seconds: 1_700_000_000 + (i as i64) * 10 + day * 86_400,
                nanos: 0,
            });
            snaps.push(s);
        }
    }
    assert_eq!(record(&mut c, snaps).await.recorded_count, 6);
    // Two upserts, six snapshots, and a first report (with its verdict) per account.
    let types = next_types(&mut events, 14).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "chorus.registry.v1.VettingReported")
            .count(),
        3
    );

    let list = |req: ListMetricsSnapshotsRequest| {
        let mut c = c.clone();
        async move { c.list_metrics_snapshots(req).await }
    };
    let of = |parent: &str| ListMetricsSnapshotsRequest {
        parent: parent.into(),
        ..Default::default()
    };
    let id = m.name.trim_start_matches("influencers/").to_owned();
    let cases: Vec<(&str, ListMetricsSnapshotsRequest, &[&str])> = vec![
        ("empty parent", of(""), &["parent"]),
        ("not a uuid", of("influencers/not-a-uuid"), &["parent"]),
        ("bare id", of(&id), &["parent"]),
        ("other collection", of(&format!("people/{id}")), &["parent"]),
        (
            "platform without handle",
            ListMetricsSnapshotsRequest {
                platform: Platform::Instagram as i32,
                ..of(&m.name)
            },
            &["handle"],
        ),
        (
            "handle without platform",
            ListMetricsSnapshotsRequest {
                handle: "m".into(),
                ..of(&m.name)
            },
            &["platform"],
        ),
        (
            "unknown platform",
            ListMetricsSnapshotsRequest {
                platform: 99,
                handle: "m".into(),
                ..of(&m.name)
            },
            &["platform"],
        ),
        (
            "malformed handle",
            ListMetricsSnapshotsRequest {
                platform: Platform::Instagram as i32,
                handle: "no spaces!".into(),
                ..of(&m.name)
            },
            &["handle"],
        ),
        (
            "negative page size",
            ListMetricsSnapshotsRequest {
                page_size: -1,
                ..of(&m.name)
            },
            &["page_size"],
        ),
        (
            "oversize page",
            ListMetricsSnapshotsRequest {
                page_size: 1001,
                ..of(&m.name)
            },
            &["page_size"],
        ),
        (
            "garbage page token",
            ListMetricsSnapshotsRequest {
                page_token: "%%%".into(),
                ..of(&m.name)
            },
            &["page_token"],
        ),
        (
            "everything at once",
            ListMetricsSnapshotsRequest {
                parent: "influencers/x".into(),
                platform: Platform::Tiktok as i32,
                page_size: 2000,
                ..Default::default()
            },
            &["parent", "page_size", "handle"],
        ),
    ];
    for (case, req, fields) in cases {
        invalid(case, list(req).await, fields);
    }
    let missing = unknown_name();
    not_found("unknown parent", list(of(&missing)).await, &missing);

    // A token belongs to the parent and account it was made for.
    let instagram = |parent: &str| ListMetricsSnapshotsRequest {
        platform: Platform::Instagram as i32,
        handle: "m".into(),
        page_size: 1,
        ..of(parent)
    };
    let token = list(instagram(&m.name)).await.unwrap().into_inner().next_page_token;
    assert!(!token.is_empty());
    let page = list(ListMetricsSnapshotsRequest {
        page_token: token.clone(),
        ..instagram(&m.name)
    })
    .await;
    assert_eq!(
        page.unwrap().into_inner().snapshots.len(),
        1,
        "the token works where it was made"
    );
    let r = list(ListMetricsSnapshotsRequest {
        page_token: token.clone(),
        platform: Platform::Tiktok as i32,
        ..instagram(&m.name)
    })
    .await;
    invalid("token from another account", r, &["page_token"]);
    let r = list(ListMetricsSnapshotsRequest {
        page_token: token.clone(),
        page_size: 1,
        ..of(&m.name)
    })
    .await;
    invalid("token from an account, used for all", r, &["page_token"]);
    let r = list(ListMetricsSnapshotsRequest {
        page_token: token.clone(),
        handle: "o".into(),
        ..instagram(&other.name)
    })
    .await;
    invalid("token from another parent", r, &["page_token"]);

    assert_eq!(history(&mut c, &m.name).await, 4);
    assert_eq!(history(&mut c, &other.name).await, 2);
    quiet(&mut events, "list metrics snapshots").await;
}

on_both_backends! { spawn_app;
    create_names_every_bad_field_and_writes_nothing => create_cases;
    get_batch_get_and_delete_refuse_bad_names_and_unknown_ids => get_batch_get_and_delete_cases;
    update_refuses_bad_names_masks_and_values_and_writes_nothing => update_cases;
    list_refuses_bad_pages_filters_orders_and_tokens => list_cases;
    import_fails_bad_rows_alone_and_refuses_oversize_messages => import_cases;
    record_metrics_rejects_bad_rows_and_counts_only_good_ones => record_metrics_cases;
    list_metrics_snapshots_refuses_bad_parents_filters_and_pages => list_metrics_snapshots_cases;
}
