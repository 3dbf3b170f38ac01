//! Matching over real gRPC, beside a real registry, on PostgreSQL and on SQLite: campaigns
//! and tenant walls, the index following the registry's events, match and select, shortlists
//! and rejections, and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use chorus_kit::events::{Bus, SubscribeOptions};
use chorus_proto::matching::*;
use chorus_proto::registry::{DeleteInfluencerRequest, UpdateInfluencerRequest};
use chorus_proto::types::Location;
use common::*;
use tonic::Code;

on_both_backends! { spawn;
    campaigns_belong_to_their_tenant => |app: App| async move {
        let mut a = app.matching().await;
        let created = create_campaign(&mut a, dog_treats()).await;
        assert!(created.name.starts_with("campaigns/"));
        assert_eq!(created.tenant, "brand-a");
        assert_eq!(created.status, CampaignStatus::Draft as i32);

        // Update one brief field by mask; the rest is kept.
        let mut change = created.clone();
        change.brief.as_mut().unwrap().headcount = 20;
        change.display_name = "ignored: not in the mask".into();
        let updated = a
            .update_campaign(UpdateCampaignRequest {
                campaign: Some(change),
                update_mask: Some(prost_types::FieldMask { paths: vec!["brief.headcount".into()] }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .campaign
            .unwrap();
        assert_eq!(updated.brief.as_ref().unwrap().headcount, 20);
        assert_eq!(updated.display_name, "Vegan dog treats");
        assert_eq!(updated.brief.as_ref().unwrap().niches.len(), 2);

        // Another tenant sees nothing and changes nothing.
        let mut b = app.matching_as("brand-b", &["matching.read", "matching.write"]).await;
        code("get", b.get_campaign(GetCampaignRequest { name: created.name.clone() }).await, Code::NotFound);
        code(
            "cancel",
            b.cancel_campaign(CancelCampaignRequest { name: created.name.clone(), ..Default::default() }).await,
            Code::NotFound,
        );
        code(
            "match",
            b.match_influencers(MatchInfluencersRequest { campaign: created.name.clone(), page_size: 10 }).await,
            Code::NotFound,
        );
        let theirs = b.list_campaigns(ListCampaignsRequest::default()).await.unwrap().into_inner();
        assert!(theirs.campaigns.is_empty());
        // Read scope only: no writes.
        let mut reader = app.matching_as("brand-a", &["matching.read"]).await;
        code(
            "create without write",
            reader.create_campaign(CreateCampaignRequest { campaign: Some(dog_treats()), request_id: String::new() }).await,
            Code::PermissionDenied,
        );

        // Pages, newest first.
        for i in 0..3 {
            let mut c = dog_treats();
            c.display_name = format!("Campaign {i}");
            create_campaign(&mut a, c).await;
        }
        let first = a.list_campaigns(ListCampaignsRequest { page_size: 3, ..Default::default() }).await.unwrap().into_inner();
        assert_eq!(first.campaigns.iter().map(|c| c.display_name.as_str()).collect::<Vec<_>>(), ["Campaign 2", "Campaign 1", "Campaign 0"]);
        let second = a
            .list_campaigns(ListCampaignsRequest { page_size: 3, page_token: first.next_page_token, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(second.campaigns.len(), 1);
        assert_eq!(second.campaigns[0].name, created.name);
        assert!(second.next_page_token.is_empty());

        // Cancel is final and repeatable; a cancelled campaign no longer changes or matches.
        let cancelled = a.cancel_campaign(CancelCampaignRequest { name: created.name.clone(), ..Default::default() }).await.unwrap().into_inner();
        assert_eq!(cancelled.campaign.unwrap().status, CampaignStatus::Cancelled as i32);
        a.cancel_campaign(CancelCampaignRequest { name: created.name.clone(), ..Default::default() }).await.unwrap();
        code(
            "update cancelled",
            a.update_campaign(UpdateCampaignRequest { campaign: Some(updated.clone()), update_mask: None, ..Default::default() }).await,
            Code::FailedPrecondition,
        );
        code(
            "match cancelled",
            a.match_influencers(MatchInfluencersRequest { campaign: created.name.clone(), page_size: 10 }).await,
            Code::FailedPrecondition,
        );
        code(
            "shortlist on a cancelled campaign",
            a.create_shortlist(CreateShortlistRequest {
                parent: created.name.clone(),
                shortlist: Some(Shortlist { display_name: "late".into(), ..Default::default() }),
                ..Default::default()
            })
            .await,
            Code::FailedPrecondition,
        );
        // Idempotent create.
        let req = || CreateCampaignRequest { campaign: Some(dog_treats()), request_id: "req-1".into() };
        let one = a.create_campaign(req()).await.unwrap().into_inner().campaign.unwrap();
        let two = a.create_campaign(req()).await.unwrap().into_inner().campaign.unwrap();
        assert_eq!(one.name, two.name);
        // Two tries of one request at once: both answer with the one campaign created.
        let req = || CreateCampaignRequest { campaign: Some(dog_treats()), request_id: "req-2".into() };
        let (mut x, mut y) = (a.clone(), a.clone());
        let (one, two) = tokio::join!(x.create_campaign(req()), y.create_campaign(req()));
        assert_eq!(one.unwrap().into_inner().campaign.unwrap().name, two.unwrap().into_inner().campaign.unwrap().name);
        // The same id with another campaign is refused, naming the id.
        let mut other = dog_treats();
        other.display_name = "Cat treats".into();
        let err = a.create_campaign(CreateCampaignRequest { campaign: Some(other), request_id: "req-2".into() }).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(err.message().contains("req-2"), "{}", err.message());
        // Another tenant's id of the same name is its own.
        let mut b = app.matching_as("brand-b", &["matching.read", "matching.write"]).await;
        let theirs = b.create_campaign(req()).await.unwrap().into_inner().campaign.unwrap();
        assert_eq!(theirs.tenant, "brand-b");
        // A retried cancel answers as the first did.
        let fresh = create_campaign(&mut a, dog_treats()).await;
        let cancel = CancelCampaignRequest { name: fresh.name.clone(), request_id: "c-1".into() };
        let first = a.cancel_campaign(cancel.clone()).await.unwrap().into_inner().campaign.unwrap();
        let again = a.cancel_campaign(cancel).await.unwrap().into_inner().campaign.unwrap();
        assert_eq!(first, again, "update time included");
    };

    bad_briefs_are_refused_by_field_and_nothing_is_written => |app: App| async move {
        let mut a = app.matching().await;
        invalid(
            "empty",
            a.create_campaign(CreateCampaignRequest { campaign: Some(Campaign::default()), request_id: String::new() }).await,
            &["campaign.display_name", "campaign.objective", "campaign.brief"],
        );
        let mut c = dog_treats();
        {
            let b = c.brief.as_mut().unwrap();
            b.budget = Some(usd(-100));
            b.niches[1].niche = "dog-stuff".into();
            b.niches[0].weight = -1.0;
            b.diversity_caps = Some(DiversityCaps { max_city_share: 1.2, max_niche_share: 0.0 });
        }
        invalid(
            "bad values",
            a.create_campaign(CreateCampaignRequest { campaign: Some(c), request_id: String::new() }).await,
            &[
                "campaign.brief.niches[0].weight",
                "campaign.brief.niches[1].niche",
                "campaign.brief.budget.amount_minor",
                "campaign.brief.diversity_caps.max_city_share",
            ],
        );
        invalid(
            "malformed name",
            a.get_campaign(GetCampaignRequest { name: "campaign/1".into() }).await,
            &["name"],
        );
        invalid(
            "oversize match page",
            a.match_influencers(MatchInfluencersRequest { campaign: format!("campaigns/{}", uuid::Uuid::now_v7()), page_size: 9_999 }).await,
            &["page_size"],
        );
        code(
            "unknown campaign",
            a.get_campaign(GetCampaignRequest { name: format!("campaigns/{}", uuid::Uuid::now_v7()) }).await,
            Code::NotFound,
        );
        let created = create_campaign(&mut a, dog_treats()).await;
        let mut worse = created.clone();
        worse.brief.as_mut().unwrap().headcount = 0;
        invalid(
            "update to an invalid brief",
            a.update_campaign(UpdateCampaignRequest {
                campaign: Some(worse),
                update_mask: Some(prost_types::FieldMask { paths: vec!["brief.headcount".into(), "brief.nope".into()] }),
                ..Default::default()
            })
            .await,
            &["update_mask.paths[1]"],
        );
        let mut worse = created.clone();
        worse.brief.as_mut().unwrap().headcount = 0;
        invalid(
            "update to an invalid brief",
            a.update_campaign(UpdateCampaignRequest {
                campaign: Some(worse),
                update_mask: Some(prost_types::FieldMask { paths: vec!["brief.headcount".into()] }),
                ..Default::default()
            })
            .await,
            &["campaign.brief.headcount"],
        );
        let mut no_status = created.clone();
        no_status.status = 0;
        invalid(
            "a status mask without a status",
            a.update_campaign(UpdateCampaignRequest {
                campaign: Some(no_status),
                update_mask: Some(prost_types::FieldMask { paths: vec!["status".into()] }),
                ..Default::default()
            })
            .await,
            &["campaign.status"],
        );
        let mut yen = dog_treats();
        yen.brief.as_mut().unwrap().budget.as_mut().unwrap().currency_code = "XYZ".into();
        invalid(
            "a currency ISO 4217 does not have",
            a.create_campaign(CreateCampaignRequest { campaign: Some(yen), request_id: String::new() }).await,
            &["campaign.brief.budget.currency_code"],
        );
        let on_mars = || vec![ShortlistMember { influencer: format!("influencers/{}", uuid::Uuid::now_v7()), segment: "mars".into(), ..Default::default() }];
        invalid(
            "a shortlist with a long name and a segment the brief does not have",
            a.create_shortlist(CreateShortlistRequest {
                parent: created.name.clone(),
                shortlist: Some(Shortlist {
                    display_name: "x".repeat(201),
                    members: on_mars(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
            &["shortlist.display_name"],
        );
        invalid(
            "a segment the brief does not have",
            a.create_shortlist(CreateShortlistRequest {
                parent: created.name.clone(),
                shortlist: Some(Shortlist {
                    display_name: "picks".into(),
                    members: on_mars(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
            &["shortlist.members[0].segment"],
        );
        // Nothing of the refused calls was stored.
        let listed = a.list_campaigns(ListCampaignsRequest::default()).await.unwrap().into_inner();
        assert_eq!(listed.campaigns.len(), 1);
        assert_eq!(listed.campaigns[0], created);
        let shortlists = a
            .list_shortlists(ListShortlistsRequest { parent: created.name.clone(), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert!(shortlists.shortlists.is_empty());
    };

    the_index_follows_the_registry_and_explains_its_ranking => |app: App| async move {
        let mut reg = app.registry().await;
        let mut m = app.matching().await;
        let campaign = create_campaign(&mut m, dog_treats()).await;
        let ana = add(&mut reg, person("Ana", "ana", "Austin", &["pets", "wellness"]), snapshot("ana", 6_000, 0.06)).await;
        add(&mut reg, person("Dan", "dan", "Denver", &["pets"]), snapshot("dan", 4_000, 0.05)).await;
        add(&mut reg, person("Hal", "hal", "Houston", &["pets"]), snapshot("hal", 4_000, 0.05)).await;
        add(&mut reg, person("Mia", "mia", "Austin", &["pets"]), snapshot("mia", 60_000, 0.03)).await;
        add(&mut reg, person("Tom", "tom", "Austin", &["gaming"]), snapshot("tom", 5_000, 0.05)).await;

        // Each person arrives as two events (profile, then metrics): wait for the last one.
        let settled = |r: &MatchInfluencersResponse| {
            r.matched_count == 2 && r.filter_counts.iter().any(|f| f.filter == "niche" && f.removed_count == 1)
        };
        let r = match_until(&mut m, &campaign.name, settled).await;
        assert_eq!(names(&r), ["Ana", "Dan"], "Ana covers both niches and engages more");
        assert_eq!(r.considered_count, 5);
        let removed: Vec<(&str, i64)> = r
            .filter_counts
            .iter()
            .filter(|f| f.removed_count > 0)
            .map(|f| (f.filter.as_str(), f.removed_count))
            .collect();
        assert_eq!(removed, [("tier", 1), ("location", 1), ("niche", 1)]);
        let top = &r.candidates[0];
        assert_eq!(top.influencer, ana);
        assert_eq!(top.handle, "ana");
        assert_eq!(top.followers, 6_000);
        assert_eq!(top.cost.as_ref().unwrap().amount_minor, 8_500, "a post and a story off the rate card");
        assert!(!top.cost_estimated);
        let parts: Vec<&str> = top.breakdown.iter().map(|p| p.part.as_str()).collect();
        assert_eq!(
            parts,
            ["niche_fit", "location", "engagement", "audience_quality", "demographic_fit", "cost_efficiency", "sponsored_saturation"]
        );
        let sum: f64 = top.breakdown.iter().map(|p| p.contribution).sum();
        assert!((sum - top.score).abs() < 0.05, "{sum} vs {}", top.score);
        assert!(top.breakdown.iter().all(|p| !p.explanation.is_empty()));
        assert!(top.reason.contains("Austin"), "{}", top.reason);

        // A move to Houston takes Ana out within seconds; a deletion removes Dan for good.
        let mut moved = reg.get_influencer(chorus_proto::registry::GetInfluencerRequest { name: ana.clone() }).await.unwrap().into_inner().influencer.unwrap();
        moved.location = Some(Location { country_code: "US".into(), region: String::new(), city: "Houston".into() });
        reg.update_influencer(UpdateInfluencerRequest {
            influencer: Some(moved),
            update_mask: Some(prost_types::FieldMask { paths: vec!["location".into()] }),
            ..Default::default()
        })
        .await
        .unwrap();
        let r = match_until(&mut m, &campaign.name, |r| r.matched_count == 1).await;
        assert_eq!(names(&r), ["Dan"]);
        let dan = r.candidates[0].influencer.clone();
        reg.delete_influencer(DeleteInfluencerRequest { name: dan, ..Default::default() }).await.unwrap();
        let r = match_until(&mut m, &campaign.name, |r| r.matched_count == 0).await;
        assert!(r.candidates.is_empty());

        // New metrics move the ranking: Mia drops to nano size and enters.
        reg.record_metrics(futures::stream::iter(vec![chorus_proto::registry::RecordMetricsRequest {
            snapshots: vec![snapshot("mia", 9_000, 0.07)],
        }]))
        .await
        .unwrap();
        let r = match_until(&mut m, &campaign.name, |r| r.matched_count == 1).await;
        assert_eq!(names(&r), ["Mia"]);
        assert_eq!(r.candidates[0].followers, 9_000);
    };

    health_waits_for_the_index => |mut app: App| async move {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        async fn statuses(addr: std::net::SocketAddr) -> Vec<i32> {
            let mut health = HealthClient::new(App::channel(addr).await);
            let mut out = Vec::new();
            for service in ["", "chorus.matching.v1.MatchingService"] {
                out.push(health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status);
            }
            out
        }
        // Loaded from a reachable registry: SERVING.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while statuses(app.matching_addr).await != [1, 1] {
            assert!(std::time::Instant::now() < deadline, "never SERVING");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // No registry to read from: NOT_SERVING, and Match says so rather than answer from an
        // empty index.
        app.start_matching_against("http://127.0.0.1:1".into()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(statuses(app.matching_addr).await, [2, 2], "NOT_SERVING while the index is empty");
        let mut m = app.matching().await;
        let c = create_campaign(&mut m, dog_treats()).await;
        code(
            "match before the index loaded",
            m.match_influencers(MatchInfluencersRequest { campaign: c.name, page_size: 10 }).await,
            Code::Unavailable,
        );
        app.stop_matching().await;
    };

    a_restarted_service_rebuilds_its_index_from_the_registry => |mut app: App| async move {
        let mut reg = app.registry().await;
        for (i, city) in ["Austin", "Denver", "Austin"].iter().enumerate() {
            add(&mut reg, person(&format!("P{i}"), &format!("p{i}"), city, &["pets"]), snapshot(&format!("p{i}"), 3_000 + i as i64, 0.05)).await;
        }
        let mut m = app.matching().await;
        let campaign = create_campaign(&mut m, dog_treats()).await;
        match_until(&mut m, &campaign.name, |r| r.matched_count == 3).await;
        app.stop_matching().await;
        // Written while matching is down: only the start-up read can know.
        add(&mut reg, person("Late", "late", "Denver", &["pets"]), snapshot("late", 5_000, 0.05)).await;
        app.start_matching().await;
        let mut m = app.matching().await;
        let r = match_until(&mut m, &campaign.name, |r| r.matched_count == 4).await;
        assert!(names(&r).contains(&"Late".to_owned()));
        assert_eq!(r.considered_count, 4);

        // Contracts' ExclusivityStarted, as the bus carries it: the running index leaves the
        // person out of briefs that exclude the category at once, and a restarted service,
        // which loads what was stored, still does.
        let late = r.candidates.iter().find(|c| c.display_name == "Late").unwrap().influencer.clone();
        let now = chorus_kit::clock::Clock::system().now_micros();
        let day = 86_400_000_000;
        let event = chorus_kit::events::envelope(
            &chorus_kit::clock::Clock::system(),
            "brand-a",
            &chorus_proto::contracts::ExclusivityStarted {
                influencer: late.clone(),
                category: "pet-food".into(),
                start_time: Some(chorus_kit::clock::timestamp(now)),
                end_time: Some(chorus_kit::clock::timestamp(now + day)),
                contract: "contracts/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b".into(),
            },
        );
        app.publish("chorus.contracts", &event).await;
        let mut exclusive_now = dog_treats();
        exclusive_now.brief.as_mut().unwrap().exclusions =
            Some(Exclusions { exclusivity_categories: vec!["pet-food".into()], ..Default::default() });
        let exclusive_now = create_campaign(&mut m, exclusive_now).await;
        let r = match_until(&mut m, &exclusive_now.name, |r| r.matched_count == 3).await;
        assert!(!names(&r).contains(&"Late".to_owned()), "the running index heard of the contract");
        app.stop_matching().await;
        app.start_matching().await;
        let mut m = app.matching().await;
        let mut exclusive = dog_treats();
        exclusive.brief.as_mut().unwrap().exclusions =
            Some(Exclusions { exclusivity_categories: vec!["pet-food".into()], ..Default::default() });
        let exclusive = create_campaign(&mut m, exclusive).await;
        let r = match_until(&mut m, &exclusive.name, |r| r.matched_count == 3).await;
        assert!(!names(&r).contains(&"Late".to_owned()), "under an exclusive contract in pet-food");
        let again = match_until(&mut m, &campaign.name, |r| r.matched_count == 4).await;
        assert!(names(&again).contains(&"Late".to_owned()), "a brief without the category still finds them");
    };

    select_fits_budget_and_caps_and_shortlists_remember_rejections => |mut app: App| async move {
        let mut reg = app.registry().await;
        for i in 0..12 {
            // The eight largest live in Austin: without the cap they would all be chosen.
            let city = if i >= 4 { "Austin" } else { "Denver" };
            add(&mut reg, person(&format!("P{i:02}"), &format!("p{i}"), city, &["pets"]), snapshot(&format!("p{i}"), 2_000 + 500 * i, 0.06)).await;
        }
        let mut m = app.matching().await;
        let mut c = dog_treats();
        {
            let b = c.brief.as_mut().unwrap();
            b.budget = Some(usd(60_000)); // seven packages of $85
            b.headcount = 10;
            b.diversity_caps = Some(DiversityCaps { max_city_share: 0.5, max_niche_share: 0.0 });
        }
        let campaign = create_campaign(&mut m, c).await;
        match_until(&mut m, &campaign.name, |r| r.matched_count == 12).await;
        let select = |save_as: &str| SelectInfluencersRequest {
            campaign: campaign.name.clone(),
            candidate_limit: 0,
            save_as: save_as.into(),
            ..Default::default()
        };
        let s = m.select_influencers(select("")).await.unwrap().into_inner();
        assert_eq!(s.selected.len(), 7, "{}", s.shortfall);
        assert_eq!(s.total_cost.as_ref().unwrap().amount_minor, 7 * 8_500);
        assert_eq!(s.leftover_budget.as_ref().unwrap().amount_minor, 60_000 - 7 * 8_500);
        assert_eq!(s.shortfall, "the budget is spent");
        let austin = s.selected.iter().filter(|c| c.city == "Austin").count();
        assert_eq!(austin, 5, "half of the headcount of 10 at most");
        let again = m.select_influencers(select("")).await.unwrap().into_inner();
        assert_eq!(again.selected, s.selected, "deterministic");

        // Saved as a shortlist; a rejected member never comes back in a match.
        let mut sub = app
            .bus()
            .subscribe("chorus.matching", "test", "t", SubscribeOptions { start_at_end: true, ..Default::default() })
            .await
            .unwrap();
        let saved = m.select_influencers(select("first pick")).await.unwrap().into_inner().shortlist.unwrap();
        assert_eq!(saved.members.len(), 7);
        assert!(saved.members.iter().all(|m| m.decision == Decision::Pending as i32));
        let got = m.get_shortlist(GetShortlistRequest { name: saved.name.clone() }).await.unwrap().into_inner().shortlist.unwrap();
        assert_eq!(got, saved);
        let out = saved.members[0].influencer.clone();
        let kept = saved.members[1].influencer.clone();
        let decided = m
            .decide_shortlist_members(DecideShortlistMembersRequest {
                name: saved.name.clone(),
                decisions: vec![
                    MemberDecision { influencer: out.clone(), decision: Decision::Rejected as i32 },
                    MemberDecision { influencer: kept.clone(), decision: Decision::Accepted as i32 },
                ],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .shortlist
            .unwrap();
        assert_eq!(decided.members[0].decision, Decision::Rejected as i32);
        assert_eq!(decided.members[1].decision, Decision::Accepted as i32);
        let r = match_until(&mut m, &campaign.name, |r| r.matched_count == 11).await;
        assert!(r.candidates.iter().all(|c| c.influencer != out));
        assert_eq!(r.filter_counts.iter().find(|f| f.filter == "excluded").unwrap().removed_count, 1);
        // Both decisions went out as events, for contracts.
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let d = sub.next(Duration::from_secs(5)).await.unwrap().expect("member decided events");
            if d.envelope.r#type == "chorus.matching.v1.ShortlistMemberDecided" {
                let p: ShortlistMemberDecided = chorus_kit::events::payload(&d.envelope).unwrap();
                assert_eq!(d.envelope.tenant, "brand-a");
                seen.push((p.influencer, p.decision));
            }
        }
        assert_eq!(seen, [(out.clone(), Decision::Rejected as i32), (kept.clone(), Decision::Accepted as i32)]);

        // A rejection stands whatever another shortlist says of the person.
        let second = m
            .create_shortlist(CreateShortlistRequest {
                parent: campaign.name.clone(),
                shortlist: Some(Shortlist {
                    display_name: "second look".into(),
                    members: vec![ShortlistMember { influencer: out.clone(), ..Default::default() }],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .shortlist
            .unwrap();
        m.decide_shortlist_members(DecideShortlistMembersRequest {
            name: second.name.clone(),
            decisions: vec![MemberDecision { influencer: out.clone(), decision: Decision::Accepted as i32 }],
            ..Default::default()
        })
        .await
        .unwrap();
        let r = match_until(&mut m, &campaign.name, |r| r.matched_count == 11).await;
        assert!(r.candidates.iter().all(|c| c.influencer != out), "still rejected on the first shortlist");

        // Erasure reaches shortlists: a deleted person leaves every one of them.
        reg.delete_influencer(DeleteInfluencerRequest { name: kept.clone(), ..Default::default() }).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let s = m.get_shortlist(GetShortlistRequest { name: saved.name.clone() }).await.unwrap().into_inner().shortlist.unwrap();
            if s.members.iter().all(|x| x.influencer != kept) {
                assert_eq!(s.members.len(), 6);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the deleted member is still on the shortlist");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // A deletion while matching is down reaches it too: the start-up read tells who is gone.
        let gone_while_down = saved.members[2].influencer.clone();
        app.stop_matching().await;
        reg.delete_influencer(DeleteInfluencerRequest { name: gone_while_down.clone(), ..Default::default() }).await.unwrap();
        app.start_matching().await;
        let mut m = app.matching().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match m.get_shortlist(GetShortlistRequest { name: saved.name.clone() }).await {
                Ok(s) if s.get_ref().shortlist.as_ref().unwrap().members.iter().all(|x| x.influencer != gone_while_down) => {
                    assert_eq!(s.into_inner().shortlist.unwrap().members.len(), 5);
                    break;
                }
                _ => {}
            }
            assert!(std::time::Instant::now() < deadline, "deleted while matching was down, still on the shortlist");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Another tenant cannot read or decide on the shortlist.
        let mut b = app.matching_as("brand-b", &["matching.read", "matching.write"]).await;
        code("foreign shortlist", b.get_shortlist(GetShortlistRequest { name: saved.name.clone() }).await, Code::NotFound);
        code(
            "foreign decision",
            b.decide_shortlist_members(DecideShortlistMembersRequest {
                name: saved.name.clone(),
                decisions: vec![MemberDecision { influencer: out.clone(), decision: Decision::Accepted as i32 }],
                ..Default::default()
            })
            .await,
            Code::NotFound,
        );
        invalid(
            "not a member",
            m.decide_shortlist_members(DecideShortlistMembersRequest {
                name: saved.name.clone(),
                decisions: vec![MemberDecision { influencer: format!("influencers/{}", uuid::Uuid::now_v7()), decision: Decision::Accepted as i32 }],
                ..Default::default()
            })
            .await,
            &["decisions[0].influencer"],
        );
        let listed = m
            .list_shortlists(ListShortlistsRequest { parent: campaign.name.clone(), page_size: 0, page_token: String::new() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.shortlists.len(), 2);
    };

    an_audience_test_balances_its_segments => |app: App| async move {
        let mut reg = app.registry().await;
        for i in 0..9 {
            let city = if i < 6 { "Austin" } else { "Denver" };
            add(&mut reg, person(&format!("P{i}"), &format!("p{i}"), city, &["pets"]), snapshot(&format!("p{i}"), 3_000 + 100 * i, 0.06)).await;
        }
        let mut m = app.matching().await;
        let mut c = dog_treats();
        c.objective = Objective::AudienceTest as i32;
        {
            let b = c.brief.as_mut().unwrap();
            b.headcount = 6;
            b.segments = vec![
                Segment { label: "austin".into(), city: "Austin".into(), ..Default::default() },
                Segment { label: "denver".into(), city: "Denver".into(), ..Default::default() },
            ];
        }
        let campaign = create_campaign(&mut m, c).await;
        match_until(&mut m, &campaign.name, |r| r.matched_count == 9).await;
        let s = m
            .select_influencers(SelectInfluencersRequest { campaign: campaign.name.clone(), candidate_limit: 0, save_as: "test".into(), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        let counts: Vec<(String, i32, i32)> = s.segments.iter().map(|g| (g.label.clone(), g.selected_count, g.target_count)).collect();
        assert_eq!(counts, [("austin".to_owned(), 3, 3), ("denver".to_owned(), 3, 3)]);
        assert!(s.selected.iter().all(|c| c.segment == c.city.to_lowercase()), "each carries its segment label");
        let members = s.shortlist.unwrap().members;
        assert!(members.iter().all(|m| !m.segment.is_empty()), "labels carried forward on the shortlist");
    };
}
