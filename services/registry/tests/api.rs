//! The registry over real gRPC on a loopback port, on PostgreSQL and on SQLite: each RPC's
//! behaviour, the events it emits, and who may call it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chorus_proto::registry::*;
use chorus_proto::types::{Platform, Tier};
use common::*;
use prost_types::FieldMask;
use tonic::Code;

async fn count(client: &mut Client) -> usize {
    all(client).await.len()
}

on_both_backends! { spawn_app;
    export_streams_the_whole_catalogue_in_pages => |app: TestApp| async move {
        let mut c = app.client().await;
        let mut names = Vec::new();
        for i in 0..5 {
            names.push(create(&mut c, influencer(&format!("P{i}"), &format!("p{i}"))).await.name);
        }
        record(&mut c, vec![snapshot(Platform::Instagram, "p3", 4_000, 2_000)]).await;
        let mut stream = c
            .export_influencers(ExportInfluencersRequest { page_size: 2 })
            .await
            .unwrap()
            .into_inner();
        let mut pages = Vec::new();
        while let Some(page) = stream.message().await.unwrap() {
            pages.push(page.influencers);
        }
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        let got: Vec<Influencer> = pages.into_iter().flatten().collect();
        assert_eq!(got.iter().map(|i| i.name.clone()).collect::<Vec<_>>(), names, "oldest first");
        assert!(got[3].accounts[0].metrics.is_some(), "with each account's metrics");
        assert!(got[3].create_time.is_some() && got[3].update_time.is_some());
        let bad = c.export_influencers(ExportInfluencersRequest { page_size: 5_000 }).await;
        invalid("oversize export page", bad, &["page_size"]);
    };

    create_then_get_returns_the_normalized_profile => |app: TestApp| async move {
        let mut events = app.events().await;
        let mut c = app.client().await;
        let mut inf = influencer("  Maya  ", "@Maya.Bakes");
        inf.create_time = Some(prost_types::Timestamp { seconds: 1, nanos: 0 });
        let created = create(&mut c, inf).await;
        assert!(created.name.starts_with("influencers/"));
        assert_eq!(created.display_name, "Maya");
        assert_eq!(created.accounts[0].handle, "maya.bakes");
        assert_ne!(created.create_time.unwrap().seconds, 1, "output-only fields are ignored on input");
        let got = c.get_influencer(GetInfluencerRequest { name: created.name.clone() }).await.unwrap().into_inner().influencer.unwrap();
        assert_eq!(got, created);
        assert_eq!(next_types(&mut events, 1).await, ["chorus.registry.v1.InfluencerUpserted"]);
    };

    a_taken_account_is_already_exists_and_writes_nothing => |app: TestApp| async move {
        let mut c = app.client().await;
        create(&mut c, influencer("A", "same")).await;
        let err = c.create_influencer(CreateInfluencerRequest { influencer: Some(influencer("B", "SAME")), request_id: String::new() }).await.unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists);
        assert_eq!(count(&mut c).await, 1);
    };

    a_retried_create_with_the_same_request_id_returns_the_first => |app: TestApp| async move {
        let mut c = app.client().await;
        let req = CreateInfluencerRequest { influencer: Some(influencer("A", "a")), request_id: "req-1".into() };
        let first = c.create_influencer(req.clone()).await.unwrap().into_inner().influencer.unwrap();
        let second = c.create_influencer(req).await.unwrap().into_inner().influencer.unwrap();
        assert_eq!(first.name, second.name);
        assert_eq!(count(&mut c).await, 1);
        let twice = c
            .batch_get_influencers(BatchGetInfluencersRequest { names: vec![first.name.clone(), first.name.clone()] })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(twice.influencers.len(), 2, "a repeated name comes back in each place asked");
        // Two tries of one request at the same time: both answer with the one influencer.
        let req = CreateInfluencerRequest { influencer: Some(influencer("B", "b")), request_id: "req-2".into() };
        let (mut x, mut y) = (c.clone(), c.clone());
        let (one, two) = tokio::join!(x.create_influencer(req.clone()), y.create_influencer(req));
        assert_eq!(one.unwrap().into_inner().influencer.unwrap().name, two.unwrap().into_inner().influencer.unwrap().name);
        assert_eq!(count(&mut c).await, 2);
        // The same id for another request is refused, naming the id, and writes nothing.
        let other = CreateInfluencerRequest { influencer: Some(influencer("C", "c")), request_id: "req-2".into() };
        let err = c.create_influencer(other).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(err.message().contains("req-2"), "{}", err.message());
        assert_eq!(count(&mut c).await, 2);
        // An error is the first answer too: the retry of a refused create is refused alike,
        // even once the account is free.
        let taken = CreateInfluencerRequest { influencer: Some(influencer("D", "a")), request_id: "req-3".into() };
        assert_eq!(c.create_influencer(taken.clone()).await.unwrap_err().code(), Code::AlreadyExists);
        c.delete_influencer(DeleteInfluencerRequest { name: first.name.clone(), ..Default::default() }).await.unwrap();
        assert_eq!(c.create_influencer(taken).await.unwrap_err().code(), Code::AlreadyExists, "the first answer");
        // The header works as the field does (the gateway's Idempotency-Key).
        let mut keyed = tonic::Request::new(CreateInfluencerRequest { influencer: Some(influencer("E", "e")), request_id: String::new() });
        keyed.metadata_mut().insert("idempotency-key", "hdr-1".parse().unwrap());
        let e1 = c.create_influencer(keyed).await.unwrap().into_inner().influencer.unwrap();
        let mut keyed = tonic::Request::new(CreateInfluencerRequest { influencer: Some(influencer("E", "e")), request_id: String::new() });
        keyed.metadata_mut().insert("idempotency-key", "hdr-1".parse().unwrap());
        assert_eq!(c.create_influencer(keyed).await.unwrap().into_inner().influencer.unwrap().name, e1.name);
    };

    a_retried_delete_or_update_answers_as_the_first_did => |app: TestApp| async move {
        let mut events = app.events().await;
        let mut c = app.client().await;
        let created = create(&mut c, influencer("A", "a")).await;
        let patch = Influencer { name: created.name.clone(), display_name: "B".into(), ..Default::default() };
        let update = UpdateInfluencerRequest { influencer: Some(patch), update_mask: Some(FieldMask { paths: vec!["display_name".into()] }), request_id: "u-1".into() };
        let first = c.update_influencer(update.clone()).await.unwrap().into_inner().influencer.unwrap();
        let second = c.update_influencer(update).await.unwrap().into_inner().influencer.unwrap();
        assert_eq!(first, second, "the same stored profile, update time included");
        let delete = DeleteInfluencerRequest { name: created.name.clone(), request_id: "d-1".into() };
        c.delete_influencer(delete.clone()).await.unwrap();
        c.delete_influencer(delete).await.expect("a retried delete is OK, not NOT_FOUND");
        assert_eq!(
            next_types(&mut events, 3).await,
            ["chorus.registry.v1.InfluencerUpserted", "chorus.registry.v1.InfluencerUpserted", "chorus.registry.v1.InfluencerDeleted"]
        );
        quiet(&mut events, "retries change nothing").await;
        let fresh = DeleteInfluencerRequest { name: created.name.clone(), request_id: "d-2".into() };
        assert_eq!(c.delete_influencer(fresh).await.unwrap_err().code(), Code::NotFound);
    };

    update_changes_only_the_masked_fields => |app: TestApp| async move {
        let mut c = app.client().await;
        let created = create(&mut c, influencer("Old", "h")).await;
        let mut patch = Influencer { name: created.name.clone(), display_name: "New".into(), ..Default::default() };
        patch.niches = vec!["gaming".into()];
        let updated = c
            .update_influencer(UpdateInfluencerRequest { influencer: Some(patch), update_mask: Some(FieldMask { paths: vec!["display_name".into()] }), ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .influencer
            .unwrap();
        assert_eq!(updated.display_name, "New");
        assert_eq!(updated.niches, created.niches, "niches were not in the mask");
        assert_eq!(updated.create_time, created.create_time);
        let t = |x: &Influencer| x.update_time.map(|t| (t.seconds, t.nanos));
        assert!(t(&updated) > t(&created));
    };

    an_update_may_not_take_another_influencers_account => |app: TestApp| async move {
        let mut c = app.client().await;
        create(&mut c, influencer("A", "taken")).await;
        let b = create(&mut c, influencer("B", "free")).await;
        let mut patch = b.clone();
        patch.accounts.push(account(Platform::Instagram, "taken"));
        let err = c.update_influencer(UpdateInfluencerRequest { influencer: Some(patch), update_mask: None, ..Default::default() }).await.unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists);
        let still = c.get_influencer(GetInfluencerRequest { name: b.name }).await.unwrap().into_inner().influencer.unwrap();
        assert_eq!(still.accounts.len(), 1);
    };

    delete_erases_the_person_and_says_so => |app: TestApp| async move {
        let mut events = app.events().await;
        let mut c = app.client().await;
        let created = create(&mut c, influencer("Gone", "gone")).await;
        record(&mut c, vec![snapshot(Platform::Instagram, "gone", 5_000, 4_000)]).await;
        c.delete_influencer(DeleteInfluencerRequest { name: created.name.clone(), ..Default::default() }).await.unwrap();
        let err = c.get_influencer(GetInfluencerRequest { name: created.name.clone() }).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = c.delete_influencer(DeleteInfluencerRequest { name: created.name.clone(), ..Default::default() }).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        // The handle is free again, and no history is left behind.
        let again = create(&mut c, influencer("New person", "gone")).await;
        let history = c.list_metrics_snapshots(ListMetricsSnapshotsRequest { parent: again.name, ..Default::default() }).await.unwrap().into_inner();
        assert!(history.snapshots.is_empty());
        assert_eq!(
            next_types(&mut events, 6).await,
            [
                "chorus.registry.v1.InfluencerUpserted",
                "chorus.registry.v1.MetricsRecorded",
                "chorus.registry.v1.VettingReported",
                "chorus.registry.v1.VerdictChanged",
                "chorus.registry.v1.InfluencerDeleted",
                "chorus.registry.v1.InfluencerUpserted"
            ]
        );
    };

    recording_a_snapshot_again_changes_nothing => |app: TestApp| async move {
        let mut c = app.client().await;
        let created = create(&mut c, influencer("R", "r")).await;
        let mut events = app.events().await;
        let mut snap = snapshot(Platform::Instagram, "r", 4_000, 1_000);
        snap.observe_time = Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 0 });
        // The same moment twice in one message, then the whole message again (a retry).
        for _ in 0..2 {
            let reply = record(&mut c, vec![snap.clone(), snap.clone()]).await;
            assert_eq!(reply.recorded_count, 2, "a repeat is not an error");
        }
        let history = c
            .list_metrics_snapshots(ListMetricsSnapshotsRequest { parent: created.name.clone(), page_size: 10, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(history.snapshots.len(), 1, "one snapshot per account and moment");
        let mut recorded = 0;
        while let Some(d) = events.next(std::time::Duration::from_millis(700)).await.unwrap() {
            recorded += usize::from(d.envelope.r#type == "chorus.registry.v1.MetricsRecorded");
            events.ack(&d).await.unwrap();
        }
        assert_eq!(recorded, 1, "one event, for the first recording; none for the repeats");
    };

    metrics_derive_engagement_and_tier_and_keep_history => |app: TestApp| async move {
        let mut c = app.client().await;
        let created = create(&mut c, influencer("M", "m")).await;
        let mut old = snapshot(Platform::Instagram, "m", 4_000, 1_000);
        old.observe_time = Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 0 });
        let mut new = snapshot(Platform::Instagram, "m", 20_000, 10_000);
        new.observe_time = Some(prost_types::Timestamp { seconds: 1_700_086_400, nanos: 0 });
        let mut unknown = snapshot(Platform::Tiktok, "m", 1, 1);
        unknown.observe_time = new.observe_time;
        // Sent newest first: the newest still wins.
        let reply = record(&mut c, vec![new.clone(), old.clone(), unknown]).await;
        assert_eq!(reply.recorded_count, 2);
        assert_eq!(reply.errors.len(), 1);
        assert_eq!(reply.errors[0].row, 2);
        assert_eq!(reply.errors[0].error.as_ref().unwrap().code, Code::NotFound as i32);

        let got = c.get_influencer(GetInfluencerRequest { name: created.name.clone() }).await.unwrap().into_inner().influencer.unwrap();
        let m = got.accounts[0].metrics.clone().unwrap();
        assert_eq!(m.latest.unwrap().followers, 20_000);
        assert_eq!(m.tier, Tier::Micro as i32);
        // (10,000 likes + 1,000 comments) / 10 posts / 20,000 followers = 5.5%
        assert_eq!(m.engagement_rates[0].denominator, EngagementDenominator::Followers as i32);
        assert!((m.engagement_rates[0].rate - 0.055).abs() < 1e-9);
        assert!((m.sponsored_share - 0.1).abs() < 1e-9);

        let history = c.list_metrics_snapshots(ListMetricsSnapshotsRequest { parent: created.name.clone(), page_size: 1, ..Default::default() }).await.unwrap().into_inner();
        assert_eq!(history.snapshots[0].followers, 20_000, "newest first");
        let rest = c.list_metrics_snapshots(ListMetricsSnapshotsRequest { parent: created.name, page_size: 1, page_token: history.next_page_token, ..Default::default() }).await.unwrap().into_inner();
        assert_eq!(rest.snapshots[0].followers, 4_000);
    };

    list_filters_orders_and_pages => |app: TestApp| async move {
        let mut c = app.client().await;
        let cities = [("Austin", "TX", "US"), ("Denver", "CO", "US"), ("London", "", "GB")];
        let mut snaps = Vec::new();
        for i in 0..30i64 {
            let (city, region, country) = cities[(i % 3) as usize];
            let mut inf = influencer(&format!("Person {i:02}"), &format!("p{i}"));
            inf.location = Some(chorus_proto::types::Location { country_code: country.into(), region: region.into(), city: city.into() });
            inf.niches = if i % 2 == 0 { vec!["fitness".into()] } else { vec!["books".into(), "travel".into()] };
            inf.languages = if country == "GB" { vec!["en-GB".into()] } else { vec!["en-US".into(), "es".into()] };
            create(&mut c, inf).await;
            snaps.push(snapshot(Platform::Instagram, &format!("p{i}"), 1_000 + i * 1_000, 500 + i * 37));
        }
        record(&mut c, snaps).await;

        let list = |req: ListInfluencersRequest| {
            let mut c = c.clone();
            async move { c.list_influencers(req).await.unwrap().into_inner() }
        };
        let austin = list(ListInfluencersRequest { city: "austin".into(), page_size: 100, ..Default::default() }).await;
        assert_eq!(austin.influencers.len(), 10);
        assert!(austin.influencers.iter().all(|i| i.location.as_ref().unwrap().city == "Austin"));

        let fit_us = list(ListInfluencersRequest { niches: vec!["Fitness".into()], country_code: "us".into(), page_size: 100, ..Default::default() }).await;
        assert_eq!(fit_us.influencers.len(), 10);

        let english = list(ListInfluencersRequest { languages: vec!["en".into()], page_size: 100, ..Default::default() }).await;
        assert_eq!(english.influencers.len(), 30, "en matches en-US and en-GB");

        // Followers run 1k..30k: nano is 1k..10k.
        let nano = list(ListInfluencersRequest { tiers: vec![Tier::Nano as i32], page_size: 100, ..Default::default() }).await;
        assert_eq!(nano.influencers.len(), 9);
        let band = list(ListInfluencersRequest { min_followers: Some(5_000), max_followers: Some(7_000), platform: Platform::Instagram as i32, page_size: 100, ..Default::default() }).await;
        assert_eq!(band.influencers.len(), 3);
        let tiktok = list(ListInfluencersRequest { platform: Platform::Tiktok as i32, page_size: 100, ..Default::default() }).await;
        assert!(tiktok.influencers.is_empty());

        // Sorted by followers, walked 7 at a time, every person exactly once.
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = list(ListInfluencersRequest { order_by: "followers desc".into(), page_size: 7, page_token: token, ..Default::default() }).await;
            seen.extend(page.influencers.iter().map(|i| i.accounts[0].metrics.as_ref().unwrap().latest.as_ref().unwrap().followers));
            if page.next_page_token.is_empty() { break; }
            token = page.next_page_token;
        }
        assert_eq!(seen.len(), 30);
        assert!(seen.windows(2).all(|w| w[0] > w[1]), "descending by followers: {seen:?}");

        let engaged = list(ListInfluencersRequest { min_engagement_rate: Some(0.02), order_by: "engagement_rate desc".into(), page_size: 100, ..Default::default() }).await;
        let rates: Vec<f64> = engaged.influencers.iter().map(|i| i.accounts[0].metrics.as_ref().unwrap().engagement_rates[0].rate).collect();
        assert!(!rates.is_empty() && rates.iter().all(|r| *r >= 0.02));
        assert!(rates.windows(2).all(|w| w[0] >= w[1]));
    };

    import_reports_each_row_and_upserts_by_handle => |app: TestApp| async move {
        let mut events = app.events().await;
        let mut c = app.client().await;
        let mut bad = influencer("", "bad");
        bad.niches = vec!["not-a-niche".into()];
        let batch1 = vec![influencer("One", "one"), bad, influencer("Two", "two")];
        let mut renamed = influencer("One, renamed", "ONE");
        renamed.niches = vec!["music".into()];
        let batch2 = vec![renamed, influencer("Three", "three"), influencer("Dup", "three")];
        let reqs = vec![ImportInfluencersRequest { influencers: batch1 }, ImportInfluencersRequest { influencers: batch2 }];
        let mut stream = c.import_influencers(tokio_stream::iter(reqs)).await.unwrap().into_inner();
        let mut results = Vec::new();
        while let Some(r) = stream.message().await.unwrap() {
            results.extend(r.results);
        }
        let outcomes: Vec<(i64, i32)> = results.iter().map(|r| (r.row, r.outcome)).collect();
        use ImportOutcome::*;
        assert_eq!(outcomes, [(0, Created as i32), (1, Failed as i32), (2, Created as i32), (3, Updated as i32), (4, Created as i32), (5, Failed as i32)]);
        let status = results[1].error.as_ref().unwrap();
        assert_eq!(status.code, Code::InvalidArgument as i32);
        let bad_request = status.details.iter().find(|d| d.type_url.ends_with("google.rpc.BadRequest")).expect("field violations");
        let br: chorus_proto::google::rpc::BadRequest = prost::Message::decode(bad_request.value.as_slice()).unwrap();
        let fields: Vec<_> = br.field_violations.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["display_name", "niches[0]"]);
        assert_eq!(results[3].name, results[0].name, "same handle, same influencer");
        // Block "Two", then re-import it without a status: it stays blocked.
        let two = c.get_influencer(GetInfluencerRequest { name: results[2].name.clone() }).await.unwrap().into_inner().influencer.unwrap();
        assert_eq!(two.status, InfluencerStatus::Active as i32, "new rows without a status are active");
        let blocked = Influencer { status: InfluencerStatus::Blocked as i32, ..two.clone() };
        c.update_influencer(UpdateInfluencerRequest { influencer: Some(blocked), update_mask: Some(FieldMask { paths: vec!["status".into()] }), ..Default::default() }).await.unwrap();
        let mut again = c.import_influencers(tokio_stream::iter(vec![ImportInfluencersRequest { influencers: vec![influencer("Two", "two")] }])).await.unwrap().into_inner();
        while again.message().await.unwrap().is_some() {}
        let two = c.get_influencer(GetInfluencerRequest { name: results[2].name.clone() }).await.unwrap().into_inner().influencer.unwrap();
        assert_eq!(two.status, InfluencerStatus::Blocked as i32, "a re-import without a status keeps it");
        let one = c.get_influencer(GetInfluencerRequest { name: results[0].name.clone() }).await.unwrap().into_inner().influencer.unwrap();
        assert_eq!(one.display_name, "One, renamed");
        assert_eq!(count(&mut c).await, 3);
        assert_eq!(next_types(&mut events, 4).await.len(), 4, "one event per stored row");
    };

    an_update_keeps_the_stored_metrics_of_kept_accounts_and_drops_the_rest => |app: TestApp| async move {
        let mut c = app.client().await;
        let mut two = influencer("Bo", "bo.gram");
        two.accounts.push(account(Platform::Tiktok, "bo.tok"));
        let created = create(&mut c, two).await;
        record(&mut c, vec![snapshot(Platform::Instagram, "bo.gram", 4_000, 2_000), snapshot(Platform::Tiktok, "bo.tok", 9_000, 3_000)]).await;
        // Re-import with the Instagram account only: TikTok goes, Instagram keeps its metrics,
        // and the copy List filters on follows the largest remaining account.
        let mut stream = c
            .import_influencers(tokio_stream::iter(vec![ImportInfluencersRequest { influencers: vec![influencer("Bo", "bo.gram")] }]))
            .await
            .unwrap()
            .into_inner();
        while stream.message().await.unwrap().is_some() {}
        let got = c.get_influencer(GetInfluencerRequest { name: created.name.clone() }).await.unwrap().into_inner().influencer.unwrap();
        assert_eq!(got.accounts.len(), 1);
        assert_eq!(got.accounts[0].metrics.as_ref().unwrap().latest.as_ref().unwrap().followers, 4_000);
        let listed = c
            .list_influencers(ListInfluencersRequest { min_followers: Some(5_000), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert!(listed.influencers.is_empty(), "the 9,000-follower TikTok account is gone from the copy");
        let listed = c
            .list_influencers(ListInfluencersRequest { min_followers: Some(3_000), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.influencers.len(), 1);
        // Its handle is free again for someone else.
        create(&mut c, influencer("Cy", "bo.tok")).await;
    };

    callers_need_a_token_and_the_right_scope => |app: TestApp| async move {
        let mut anonymous = app.client_with(None).await;
        let err = anonymous.list_influencers(ListInfluencersRequest::default()).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        let mut forged = app.client_with(Some("not.a.jwt".into())).await;
        assert_eq!(forged.list_influencers(ListInfluencersRequest::default()).await.unwrap_err().code(), Code::Unauthenticated);
        let mut reader = app.client_with(Some(app.token(&["registry.read"]))).await;
        reader.list_influencers(ListInfluencersRequest::default()).await.unwrap();
        let err = reader.create_influencer(CreateInfluencerRequest { influencer: Some(influencer("X", "x")), request_id: String::new() }).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        let mut writer = app.client_with(Some(app.token(&["registry.read", "registry.curate"]))).await;
        let created = create(&mut writer, influencer("X", "x")).await;
        let err = writer.delete_influencer(DeleteInfluencerRequest { name: created.name, ..Default::default() }).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "erasure needs registry.admin");
    };

    health_and_reflection_answer_without_a_token => |app: TestApp| async move {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let mut health = HealthClient::new(app.channel().await);
        for service in ["", "chorus.registry.v1.RegistryService"] {
            let status = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status;
            assert_eq!(status, 1, "SERVING for {service:?}");
        }
        // Reflection v1 and v1alpha (what grpcio-reflection and several GUI clients speak), each
        // listing exactly what this port serves.
        let expected = [
            "chorus.admin.v1.ClockService",
            "chorus.admin.v1.EventAdminService",
            "chorus.registry.v1.RegistryService",
            "chorus.registry.v1.VettingService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ];
        {
            use tonic_reflection::pb::v1::{ServerReflectionRequest, server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest, server_reflection_response::MessageResponse};
            let mut reflection = ServerReflectionClient::new(app.channel().await);
            let req = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::ListServices(String::new())) };
            let mut replies = reflection.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
            let Some(MessageResponse::ListServicesResponse(list)) = replies.message().await.unwrap().unwrap().message_response else { panic!("list services") };
            let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            names.sort();
            assert_eq!(names, expected, "v1 lists this port's services and no other's");
            let req = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::FileContainingSymbol("chorus.registry.v1.RegistryService".into())) };
            let mut replies = reflection.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
            let found = replies.message().await.unwrap().unwrap().message_response;
            assert!(matches!(found, Some(MessageResponse::FileDescriptorResponse(_))), "{found:?}");
        }
        {
            use tonic_reflection::pb::v1alpha::{ServerReflectionRequest, server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest, server_reflection_response::MessageResponse};
            let mut reflection = ServerReflectionClient::new(app.channel().await);
            let req = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::ListServices(String::new())) };
            let mut replies = reflection.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
            let Some(MessageResponse::ListServicesResponse(list)) = replies.message().await.unwrap().unwrap().message_response else { panic!("list services") };
            let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            names.sort();
            assert_eq!(names, expected, "v1alpha too");
        }
    };

    a_replica_sees_another_replicas_writes_despite_its_cache => |mut app: TestApp| async move {
        let replica = app.replica().await;
        let mut a = app.client().await;
        let mut b = app.client_at(replica.addr).await;
        let created = create(&mut a, influencer("Before", "cached")).await;
        let get = GetInfluencerRequest { name: created.name.clone() };
        assert_eq!(b.get_influencer(get.clone()).await.unwrap().into_inner().influencer.unwrap().display_name, "Before");
        let patch = Influencer { name: created.name.clone(), display_name: "After".into(), ..Default::default() };
        a.update_influencer(UpdateInfluencerRequest { influencer: Some(patch), update_mask: Some(FieldMask { paths: vec!["display_name".into()] }), ..Default::default() }).await.unwrap();
        // The writer sees its write at once; the other replica as soon as the event arrives.
        assert_eq!(a.get_influencer(get.clone()).await.unwrap().into_inner().influencer.unwrap().display_name, "After");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let seen = b.get_influencer(get.clone()).await.unwrap().into_inner().influencer.unwrap().display_name;
            if seen == "After" { break; }
            assert!(std::time::Instant::now() < deadline, "replica b still serves {seen:?}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        a.delete_influencer(DeleteInfluencerRequest { name: created.name.clone(), ..Default::default() }).await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while b.get_influencer(get.clone()).await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "replica b still serves a deleted influencer");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        replica.shutdown().await.unwrap();
    };

    a_callers_deadline_ends_the_call => |app: TestApp| async move {
        let mut c = app.client().await;
        // An import stream that never ends, under a 300 ms deadline.
        let mut req = tonic::Request::new(futures::stream::pending::<ImportInfluencersRequest>());
        req.set_timeout(std::time::Duration::from_millis(300));
        let started = std::time::Instant::now();
        let outcome = match c.import_influencers(req).await {
            Err(status) => status,
            Ok(resp) => resp.into_inner().message().await.expect_err("the deadline ends the stream"),
        };
        assert!(matches!(outcome.code(), Code::DeadlineExceeded | Code::Cancelled), "{outcome:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    };

    shutdown_reports_not_serving_and_drains => |app: TestApp| async move {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let mut c = app.client().await;
        create(&mut c, influencer("Before", "before")).await;
        // A watcher, as a load balancer is, on the port that will close.
        let mut health = HealthClient::new(app.channel().await);
        let mut watch = health
            .watch(HealthCheckRequest { service: "chorus.registry.v1.RegistryService".into() })
            .await
            .unwrap()
            .into_inner();
        let status = |m: Option<tonic_health::pb::HealthCheckResponse>| m.map(|m| m.status);
        assert_eq!(status(watch.message().await.unwrap()), Some(ServingStatus::Serving as i32));

        app.begin_stop();
        let told = tokio::time::timeout(std::time::Duration::from_secs(5), watch.message()).await;
        assert_eq!(
            told.expect("a status within 5 s").map(status).expect("the stream is still open"),
            Some(ServingStatus::NotServing as i32),
            "NOT_SERVING reaches the watcher while its connection is open"
        );
        // The watch is a call in flight: hung up, it lets the drain finish at once.
        drop(watch);
        drop(health);
        let addr = app.addr;
        app.stop().await;
        let refused = tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await;
        assert!(refused.is_err(), "the listener is closed after shutdown");
    };
}

async fn a_vetted_influencer_can_still_be_updated(backend: Backend) {
    let app = spawn_app_with(backend, 1).await;
    // Regression: the create bound a NULL quality score, which sqlx declared as float4 and
    // cached; the update's real score (a float8) was then refused by PostgreSQL. One
    // connection makes the reuse certain.
    let mut c = app.client().await;
    let created = create(&mut c, influencer("Ana", "ana.v")).await;
    let r = record(&mut c, vec![snapshot(Platform::Instagram, "ana.v", 5_000, 3_000)]).await;
    assert_eq!(r.recorded_count, 1);
    let mut again = c
        .get_influencer(GetInfluencerRequest {
            name: created.name.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .influencer
        .unwrap();
    assert!(again.accounts[0].vetting.is_some(), "metrics produce a report");
    again.display_name = "Ana B".into();
    let updated = c
        .update_influencer(UpdateInfluencerRequest {
            influencer: Some(again),
            update_mask: Some(FieldMask {
                paths: vec!["display_name".into()],
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .influencer
        .unwrap();
    assert_eq!(updated.display_name, "Ana B");
    assert!(updated.accounts[0].vetting.is_some());
}

#[tokio::test]
async fn a_vetted_influencer_can_still_be_updated_on_postgres() {
    a_vetted_influencer_can_still_be_updated(Backend::Postgres).await;
}

#[tokio::test]
async fn a_vetted_influencer_can_still_be_updated_on_sqlite() {
    a_vetted_influencer_can_still_be_updated(Backend::Sqlite).await;
}

/// A write planned as an update of someone erased since (the plan read the catalogue before
/// the deletion committed) must not bring them back: the store checks under lock.
async fn an_update_planned_before_an_erasure_does_not_resurrect(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut c = app.client().await;
    let created = create(&mut c, influencer("Ana", "ana.r")).await;
    c.delete_influencer(DeleteInfluencerRequest {
        name: created.name.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let db = chorus_registry::SERVICE
        .spec
        .connect(&app.database_url, 2)
        .await
        .unwrap();
    let store = chorus_registry::store::Store::new(
        db,
        chorus_kit::events::outbox::Outbox::new(),
        chorus_kit::clock::Clock::system(),
        Default::default(),
        0,
    );
    let id = created.name.trim_start_matches("influencers/").to_owned();
    let err = store
        .write(
            vec![created.clone()],
            chorus_registry::store::WriteMode::Replace(id.clone()),
            &chorus_kit::idempotency::Claim::none(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), chorus_kit::ErrorCode::NotFound, "{err}");
    assert!(!store.exists(&id).await.unwrap(), "still erased");
    assert_eq!(count(&mut c).await, 0);
}

#[tokio::test]
async fn an_update_planned_before_an_erasure_does_not_resurrect_on_postgres() {
    an_update_planned_before_an_erasure_does_not_resurrect(Backend::Postgres).await;
}

#[tokio::test]
async fn an_update_planned_before_an_erasure_does_not_resurrect_on_sqlite() {
    an_update_planned_before_an_erasure_does_not_resurrect(Backend::Sqlite).await;
}
