//! The whole path with a real emitter: a brand creates a campaign in the matching service; its
//! CampaignChanged leaves through matching's outbox onto the bus, and webhooks POSTs it, signed,
//! to the brand's endpoint, and to no other tenant's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use chorus_proto::matching::matching_service_client::MatchingServiceClient;
use chorus_proto::matching::*;
use chorus_proto::types::{CompensationKind, DeliverableKind, Location, Money, Platform};
use common::*;

fn campaign() -> Campaign {
    Campaign {
        display_name: "Dog treats, by webhook".into(),
        objective: Objective::Awareness as i32,
        brief: Some(Brief {
            niches: vec![NicheWeight {
                niche: "pets".into(),
                weight: 1.0,
            }],
            locations: vec![Location {
                country_code: "US".into(),
                region: String::new(),
                city: "Austin".into(),
            }],
            deliverables: vec![DeliverableWanted {
                kind: DeliverableKind::FeedPost as i32,
                count: 1,
                platform: Platform::Instagram as i32,
            }],
            compensation_offered: vec![CompensationKind::Cash as i32],
            budget: Some(Money {
                currency_code: "USD".into(),
                amount_minor: 500_000,
            }),
            headcount: 10,
            disclosure_jurisdiction: "US".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

on_both_backends! { spawn;
    a_campaign_created_in_matching_reaches_its_brands_endpoint => |mut app: App| async move {
        let registry_db = app.stack.database().await;
        let registry = app.stack.launch(&chorus_registry::SERVICE, &registry_db, &[]).await;
        let matching_db = app.stack.database().await;
        let matching = app
            .stack
            .launch(
                &chorus_matching::SERVICE,
                &matching_db,
                &[("CHORUS_REGISTRY_URL", format!("http://{}", registry.addr))],
            )
            .await;
        let url = app.receiver.url("/brand-a");
        let (_, secret) = create(&mut app.a, &url, &[CAMPAIGN_CHANGED]).await;
        let other = app.receiver.url("/brand-b");
        create(&mut app.b, &other, &[]).await;

        let token = app.stack.token("brand-a", &["matching.write", "matching.read"]);
        let mut m = MatchingServiceClient::new(authed(matching.addr, Some(token)).await);
        let made = m
            .create_campaign(CreateCampaignRequest { campaign: Some(campaign()), request_id: String::new() })
            .await
            .unwrap()
            .into_inner()
            .campaign
            .unwrap();

        let got = app.receiver.wait_for("/brand-a", 1).await;
        assert!(got[0].signed_by(&secret), "{:?}", got[0]);
        let body = got[0].json();
        assert_eq!(body["type"], CAMPAIGN_CHANGED);
        assert_eq!(body["data"]["campaign"]["name"], made.name.as_str());
        assert_eq!(body["data"]["campaign"]["displayName"], "Dog treats, by webhook");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(app.receiver.got_at("/brand-b").is_empty(), "brand B heard of A's campaign");
        matching.shutdown().await.unwrap();
        registry.shutdown().await.unwrap();
    };
}
