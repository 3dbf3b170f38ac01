//! Deliveries end to end: events published on the bus reach the endpoints subscribed to them,
//! signed; failures are retried on the schedule as the clock moves, survive a restart, and run
//! out into a disabled endpoint; replays, rotation and the SSRF guard. Every case on both
//! engines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use chorus_proto::contracts::ContractSigned;
use chorus_proto::webhooks::*;
use common::*;
use tonic::Code;

const SECOND: i64 = 1_000_000;

fn next_at(d: &WebhookDelivery) -> i64 {
    let t = d.next_attempt_time.unwrap();
    t.seconds * SECOND + i64::from(t.nanos) / 1000
}

on_both_backends! { spawn;
    a_subscribed_event_arrives_signed_and_nothing_else_does => |mut app: App| async move {
        let campaigns_url = app.receiver.url("/campaigns");
        let contracts_url = app.receiver.url("/contracts");
        let (campaigns, secret) = create(&mut app.a, &campaigns_url, &[CAMPAIGN_CHANGED]).await;
        let (contracts, contract_secret) = create(&mut app.a, &contracts_url, &[CONTRACT_SIGNED]).await;
        // Another tenant's campaign goes first on the same topic: had it been delivered to A,
        // it would be there by the time A's own arrives.
        app.campaign("brand-b", "B's campaign").await;
        let signed = app.emit("brand-a", &ContractSigned { contract: "contracts/x".into(), ..Default::default() }).await;
        let mine = app.campaign("brand-a", "A's campaign").await;

        let got = app.receiver.wait_for("/campaigns", 1).await;
        let contract = app.receiver.wait_for("/contracts", 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(app.receiver.got_at("/campaigns").len(), 1, "one event for the campaigns endpoint");
        assert_eq!(app.receiver.got_at("/contracts").len(), 1, "one event for the contracts endpoint");
        let r = &got[0];
        assert_eq!(r.id, mine.id, "webhook-id is the event id");
        assert!(r.signed_by(&secret), "the signature verifies: {r:?}");
        assert!(!r.signed_by(&contract_secret));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        assert!((r.timestamp.parse::<i64>().unwrap() - now).abs() < 60, "webhook-timestamp is now: {}", r.timestamp);
        let body = r.json();
        assert_eq!(body["type"], CAMPAIGN_CHANGED);
        assert_eq!(body["timestamp"], "2026-11-02T00:00:00Z");
        assert_eq!(body["data"]["campaign"]["displayName"], "A's campaign");
        assert_eq!(body["data"]["campaign"]["tenant"], "brand-a");
        assert_eq!(contract[0].id, signed.id);
        assert_eq!(contract[0].json()["data"]["contract"], "contracts/x");
        assert!(contract[0].signed_by(&contract_secret));

        let listed = attempts(&app.a, &campaigns.name, 1).await;
        assert_eq!(deliveries(&mut app.a, &campaigns.name).await.len(), 1);
        assert_eq!(listed.name, format!("{}/deliveries/{}", campaigns.name, mine.id));
        assert_eq!(listed.state(), DeliveryState::Succeeded);
        assert_eq!(listed.event_type, CAMPAIGN_CHANGED);
        assert_eq!((listed.attempts[0].status_code, listed.attempts[0].error.as_str()), (200, ""));
        assert_eq!(deliveries(&mut app.a, &contracts.name).await.len(), 1);
    };

    failures_are_retried_on_the_schedule_across_a_restart_until_one_succeeds => |mut app: App| async move {
        app.receiver.answer(&[500, 503]);
        let url = app.receiver.url("/hook");
        let (endpoint, secret) = create(&mut app.a, &url, &[]).await;
        let event = app.campaign("brand-a", "retried").await;

        let first = attempts(&app.a, &endpoint.name, 1).await;
        assert_eq!(first.state(), DeliveryState::Pending);
        assert_eq!((first.attempts[0].status_code, first.attempts[0].error.as_str()), (500, "answered 500 Internal Server Error"));
        assert_eq!(next_at(&first), START + 5 * SECOND, "the second attempt 5 s after the first");
        // Nothing more until the clock gets there, and the wait survives a restart.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(app.receiver.got().len(), 1);
        app.restart().await;
        app.advance(Duration::from_secs(5));
        let second = attempts(&app.a, &endpoint.name, 2).await;
        assert_eq!(second.attempts[1].status_code, 503);
        assert_eq!(next_at(&second), START + 5 * SECOND + 300 * SECOND, "then 5 minutes");
        app.advance(Duration::from_secs(300));
        let third = attempts(&app.a, &endpoint.name, 3).await;
        assert_eq!(third.state(), DeliveryState::Succeeded);
        assert_eq!(third.attempts[2].status_code, 200);
        let got = app.receiver.got();
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|r| r.id == event.id && r.signed_by(&secret) && r.body == got[0].body),
            "the same id and body, signed, every time");
    };

    an_endpoint_failing_through_the_schedule_is_disabled_and_replay_sends_again => |mut app: App| async move {
        app.receiver.always(500);
        let url = app.receiver.url("/down");
        let (endpoint, _) = create(&mut app.a, &url, &[]).await;
        let event = app.campaign("brand-a", "never received").await;
        // The 4-5 day rule is configured at 24 h here (the schedule spans 27.5 h).
        let waits = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
        for (i, wait) in waits.iter().enumerate() {
            let d = attempts(&app.a, &endpoint.name, i + 1).await;
            assert_eq!(d.state(), DeliveryState::Pending, "after attempt {}", i + 1);
            app.advance(Duration::from_secs(*wait));
        }
        let failed = attempts(&app.a, &endpoint.name, 8).await;
        assert_eq!(failed.state(), DeliveryState::Failed);
        assert!(failed.attempts.iter().all(|a| a.status_code == 500), "{failed:?}");
        let disabled = get(&mut app.a, &endpoint.name).await;
        assert!(disabled.disabled, "{disabled:?}");
        assert!(disabled.disabled_reason.contains("answered 500"), "{}", disabled.disabled_reason);
        assert!(disabled.disable_time.is_some());

        // A disabled endpoint gets nothing new, and a replay waits for it to be enabled.
        app.campaign("brand-a", "while disabled").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(deliveries(&mut app.a, &endpoint.name).await.len(), 1);
        let replay = ReplayWebhookDeliveryRequest { name: failed.name.clone() };
        let refused = app.a.replay_webhook_delivery(replay.clone()).await.unwrap_err();
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        assert!(refused.message().contains("disabled"), "{refused:?}");

        app.receiver.always(204);
        let enabled = app.a.update_webhook_endpoint(UpdateWebhookEndpointRequest {
            endpoint: Some(WebhookEndpoint { name: endpoint.name.clone(), disabled: false, ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["disabled".into()] }),
        }).await.unwrap().into_inner().endpoint.unwrap();
        assert!(!enabled.disabled && enabled.disabled_reason.is_empty() && enabled.disable_time.is_none());
        let replayed = app.a.replay_webhook_delivery(replay).await.unwrap().into_inner().delivery.unwrap();
        assert_eq!(replayed.state(), DeliveryState::Pending);
        let done = attempts(&app.a, &endpoint.name, 9).await;
        assert_eq!(done.state(), DeliveryState::Succeeded);
        assert_eq!(done.attempts[8].status_code, 204);
        assert_eq!(app.receiver.got().last().unwrap().id, event.id, "the same webhook-id");
    };

    a_rotated_secret_signs_beside_the_new_one_for_the_overlap => |mut app: App| async move {
        let url = app.receiver.url("/rotating");
        let (endpoint, old) = create(&mut app.a, &url, &[]).await;
        let rotated = app.a.rotate_webhook_secret(RotateWebhookSecretRequest {
            name: endpoint.name.clone(),
            overlap: None,
        }).await.unwrap().into_inner();
        let new = rotated.secret;
        assert!(new.starts_with("whsec_") && new != old);
        let until = rotated.endpoint.unwrap().previous_secret_expire_time.unwrap();
        assert_eq!(until.seconds * SECOND, START + 24 * 3600 * SECOND, "24 hours by default");

        app.campaign("brand-a", "during the overlap").await;
        let during = app.receiver.wait_for("/rotating", 1).await;
        let signatures: Vec<&str> = during[0].signature.split(' ').collect();
        assert_eq!(signatures.len(), 2, "{signatures:?}");
        assert!(during[0].signed_by(&new) && during[0].signed_by(&old));

        app.advance(Duration::from_secs(24 * 3600));
        app.campaign("brand-a", "after the overlap").await;
        let after = app.receiver.wait_for("/rotating", 2).await;
        assert_eq!(after[1].signature.split(' ').count(), 1, "{}", after[1].signature);
        assert!(after[1].signed_by(&new) && !after[1].signed_by(&old));
    };

    a_redirect_is_a_failure_and_is_not_followed => |mut app: App| async move {
        app.receiver.answer(&[302]);
        let url = app.receiver.url("/moved");
        let (endpoint, _) = create(&mut app.a, &url, &[]).await;
        app.campaign("brand-a", "redirected").await;
        let d = attempts(&app.a, &endpoint.name, 1).await;
        assert_eq!(d.state(), DeliveryState::Pending);
        assert_eq!(d.attempts[0].status_code, 302);
        assert!(d.attempts[0].error.contains("redirects are not followed"), "{d:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(app.receiver.got_at("/landed").is_empty(), "the redirect was followed");
    };

    another_tenant_finds_nothing_and_bad_input_names_its_fields => |mut app: App| async move {
        let url = app.receiver.url("/mine");
        let (endpoint, _) = create(&mut app.a, &url, &[]).await;
        app.campaign("brand-a", "mine").await;
        let d = attempts(&app.a, &endpoint.name, 1).await;

        let b = &mut app.b;
        let hidden = [
            b.get_webhook_endpoint(GetWebhookEndpointRequest { name: endpoint.name.clone() }).await.map(|_| ()),
            b.delete_webhook_endpoint(DeleteWebhookEndpointRequest { name: endpoint.name.clone() }).await.map(|_| ()),
            b.rotate_webhook_secret(RotateWebhookSecretRequest { name: endpoint.name.clone(), overlap: None }).await.map(|_| ()),
            b.list_webhook_deliveries(ListWebhookDeliveriesRequest { parent: endpoint.name.clone(), ..Default::default() }).await.map(|_| ()),
            b.replay_webhook_delivery(ReplayWebhookDeliveryRequest { name: d.name.clone() }).await.map(|_| ()),
            b.update_webhook_endpoint(UpdateWebhookEndpointRequest {
                endpoint: Some(WebhookEndpoint { name: endpoint.name.clone(), description: "taken".into(), ..Default::default() }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["description".into()] }),
            }).await.map(|_| ()),
        ];
        for (i, r) in hidden.into_iter().enumerate() {
            assert_eq!(r.unwrap_err().code(), Code::NotFound, "call {i}");
        }
        let listed = b.list_webhook_endpoints(ListWebhookEndpointsRequest::default()).await.unwrap().into_inner();
        assert!(listed.endpoints.is_empty());
        assert_eq!(get(&mut app.a, &endpoint.name).await.description, "test", "B changed nothing");

        let bad = app.a.create_webhook_endpoint(CreateWebhookEndpointRequest {
            endpoint: Some(WebhookEndpoint {
                url: "ftp://hooks.example.com/in".into(),
                description: "x".repeat(501),
                event_types: vec![CAMPAIGN_CHANGED.into(), "chorus.matching.v1.Nothing".into(), "chorus.contracts.v1.TimerFired".into()],
                ..Default::default()
            }),
        }).await.unwrap_err();
        assert_eq!(fields(&bad), ["endpoint.url", "endpoint.description", "endpoint.event_types[1]", "endpoint.event_types[2]"]);
        assert!(bad.message().contains("not an event type") || format!("{bad:?}").contains("not an event type"));
        let missing = app.a.create_webhook_endpoint(CreateWebhookEndpointRequest { endpoint: None }).await.unwrap_err();
        assert_eq!(fields(&missing), ["endpoint"]);
        let not_a_name = app.a.get_webhook_endpoint(GetWebhookEndpointRequest { name: "webhookEndpoints/1".into() }).await.unwrap_err();
        assert_eq!(fields(&not_a_name), ["name"]);
        let mask = app.a.update_webhook_endpoint(UpdateWebhookEndpointRequest {
            endpoint: Some(WebhookEndpoint { name: endpoint.name.clone(), ..Default::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["secret".into()] }),
        }).await.unwrap_err();
        assert_eq!(fields(&mask), ["update_mask.paths[0]"]);
        let overlap = app.a.rotate_webhook_secret(RotateWebhookSecretRequest {
            name: endpoint.name.clone(),
            overlap: Some(prost_types::Duration { seconds: 8 * 86_400, nanos: 0 }),
        }).await.unwrap_err();
        assert_eq!(fields(&overlap), ["overlap"]);

        let stack = &app.stack;
        let addr = app.webhooks.as_ref().unwrap().addr;
        let mut unscoped = chorus_proto::webhooks::webhooks_service_client::WebhooksServiceClient::new(
            authed(addr, Some(stack.token("brand-a", &["matching.read"]))).await,
        );
        let denied = unscoped.list_webhook_endpoints(ListWebhookEndpointsRequest::default()).await.unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
    };
}

/// The guard as deployed: no private addresses, http to the test's hosts only so the refusal
/// is the guard's, not the scheme's.
async fn spawn_strict(backend: Backend) -> App {
    spawn_with(
        backend,
        vec![("CHORUS_WEBHOOKS_HTTP_HOSTS", "127.0.0.1,localhost,[::1]".to_owned())],
    )
    .await
}

mod guard {
    use super::*;

    on_both_backends! { spawn_strict;
        private_addresses_are_refused_when_written_and_when_resolved => |mut app: App| async move {
            for (url, why) in [
                ("https://127.0.0.1/hook", "loopback"),
                ("https://10.1.2.3/hook", "private"),
                ("https://[::1]/hook", "loopback"),
                ("https://169.254.169.254/latest/meta-data", "link-local"),
                ("https://[::ffff:10.0.0.1]/hook", "private"),
            ] {
                let e = app.a.create_webhook_endpoint(CreateWebhookEndpointRequest {
                    endpoint: Some(WebhookEndpoint { url: url.into(), ..Default::default() }),
                }).await.unwrap_err();
                assert_eq!(fields(&e), ["endpoint.url"], "{url}");
                assert!(format!("{e:?}").contains(why), "{url}: {e:?}");
            }
            // A name is checked when it is resolved, at every delivery: localhost is loopback.
            let port = app.receiver.addr.unwrap().port();
            let url = format!("http://localhost:{port}/hook");
            let (endpoint, _) = create(&mut app.a, &url, &[]).await;
            app.campaign("brand-a", "to localhost").await;
            let d = attempts(&app.a, &endpoint.name, 1).await;
            assert_eq!(d.attempts[0].status_code, 0);
            assert!(d.attempts[0].error.starts_with("refused: localhost resolves to"), "{d:?}");
            assert!(d.attempts[0].error.contains("loopback"), "{d:?}");
            assert!(app.receiver.got().is_empty(), "the guard let a request through");
        };
    }
}
