//! Partner API keys over real gRPC, on PostgreSQL and SQLite: made and shown once, listed
//! without the secret, exchanged for tokens of their tenant and scopes, rotated with an
//! overlap, revoked at once, and invisible to other tenants.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chorus_kit::auth::{KeySource, Verifier};
use chorus_kit::clock::Clock;
use chorus_kit::runtime::Launched;
use chorus_proto::identity::identity_service_client::IdentityServiceClient;
use chorus_proto::identity::*;
use chorus_testkit::{Authed, Backend, Stack, on_both_backends};
use tonic::Code;
use tonic_types::StatusExt;

struct App {
    stack: Stack,
    identity: Launched,
    db: String,
}

async fn spawn(backend: Backend) -> App {
    let mut stack = Stack::with_clock(backend, Clock::manual(1_800_000_000_000_000));
    let db = stack.database().await;
    let identity = stack
        .launch(
            &chorus_identity::SERVICE,
            &db,
            &[("CHORUS_SIGNING_KEY", stack.signing_key_pem())],
        )
        .await;
    App { stack, identity, db }
}

impl App {
    /// A client acting for `tenant` with identity.keys and two registry scopes.
    async fn admin(&self, tenant: &str) -> IdentityServiceClient<Authed> {
        let token = self
            .stack
            .token(tenant, &["identity.keys", "registry.read", "registry.write"]);
        IdentityServiceClient::new(chorus_testkit::authed(self.identity.addr, Some(token)).await)
    }

    async fn create(&self, tenant: &str, scopes: &[&str]) -> CreateApiKeyResponse {
        self.admin(tenant)
            .await
            .create_api_key(CreateApiKeyRequest {
                display_name: "Shopify sync".into(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                ttl: None,
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn exchange(&self, key: &str) -> Result<IssueTokenResponse, tonic::Status> {
        IdentityServiceClient::new(chorus_testkit::authed(self.identity.addr, None).await)
            .issue_token(IssueTokenRequest {
                grant: Some(issue_token_request::Grant::ApiKey(key.to_owned())),
                scopes: vec![],
            })
            .await
            .map(|r| r.into_inner())
    }

    async fn rotate(&self, tenant: &str, name: &str) -> Result<RotateApiKeyResponse, tonic::Status> {
        self.admin(tenant)
            .await
            .rotate_api_key(RotateApiKeyRequest {
                name: name.to_owned(),
                overlap: None,
            })
            .await
            .map(|r| r.into_inner())
    }

    async fn revoke(&self, tenant: &str, name: &str) -> Result<ApiKey, tonic::Status> {
        self.admin(tenant)
            .await
            .revoke_api_key(RevokeApiKeyRequest { name: name.to_owned() })
            .await
            .map(|r| r.into_inner().api_key.unwrap())
    }

    async fn list(&self, tenant: &str) -> Vec<ApiKey> {
        self.admin(tenant)
            .await
            .list_api_keys(ListApiKeysRequest::default())
            .await
            .unwrap()
            .into_inner()
            .api_keys
    }
}

fn field(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

async fn a_key_is_shown_once_and_exchanged_for_its_tenants_token(app: App) {
    let made = app.create("brand-a", &["registry.read"]).await;
    let record = made.api_key.unwrap();
    assert!(made.key.starts_with("chk_") && made.key.len() == 40, "{}", made.key);
    assert_eq!(record.visible_prefix, made.key[..8]);
    assert!(record.name.starts_with("apiKeys/"), "{}", record.name);
    assert_eq!(record.scopes, ["registry.read"]);
    assert_eq!(record.creator, "test-user");
    assert!(record.last_use_time.is_none());
    let lifetime = record.expire_time.unwrap().seconds - record.create_time.unwrap().seconds;
    assert_eq!(lifetime, 90 * 86_400, "90 days unless asked");

    let issued = app.exchange(&made.key).await.unwrap();
    assert_eq!(issued.subject, record.name);
    assert_eq!(issued.tenant, "brand-a");
    assert_eq!(issued.scopes, ["registry.read"]);
    let keys = IdentityServiceClient::new(chorus_testkit::authed(app.identity.addr, None).await)
        .get_jwks(GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    let caller = Verifier::new(KeySource::Static(keys), Duration::from_secs(86_400))
        .verify(&issued.access_token)
        .await
        .unwrap();
    assert_eq!(
        (caller.tenant.as_str(), caller.role.as_str(), caller.subject.as_str()),
        ("brand-a", "brand", record.name.as_str())
    );
    assert!(caller.require("registry.read").is_ok());
    assert!(caller.require("registry.write").is_err());

    // The list never holds the key, and tells when it was last used.
    let listed = app.list("brand-a").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, record.name);
    assert!(
        !format!("{listed:?}").contains(&made.key[8..]),
        "the secret is never listed"
    );
    assert_eq!(listed[0].last_use_time, app.stack.clock.now().into());
    // A use within the minute is not written again.
    app.stack.clock.advance(Duration::from_secs(30)).unwrap();
    app.exchange(&made.key).await.unwrap();
    assert_eq!(app.list("brand-a").await[0].last_use_time, listed[0].last_use_time);
    // A minute after the last write, the next use is written.
    app.stack.clock.advance(Duration::from_secs(30)).unwrap();
    app.exchange(&made.key).await.unwrap();
    assert_eq!(app.list("brand-a").await[0].last_use_time, app.stack.clock.now().into());
}

async fn a_typo_is_refused_before_lookup_and_an_unknown_key_is_unauthenticated(app: App) {
    let made = app.create("brand-a", &["registry.read"]).await;
    let mut typo = made.key.clone().into_bytes();
    typo[12] = if typo[12] == b'x' { b'y' } else { b'x' };
    let refused = app.exchange(&String::from_utf8(typo).unwrap()).await.unwrap_err();
    assert_eq!(
        (refused.code(), field(&refused).as_str()),
        (Code::InvalidArgument, "api_key")
    );
    let unknown = app
        .exchange(chorus_kit::auth::api_key::ApiKey::generate().unwrap().expose())
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
    // More scopes than the key holds are refused too.
    let greedy = IdentityServiceClient::new(chorus_testkit::authed(app.identity.addr, None).await)
        .issue_token(IssueTokenRequest {
            grant: Some(issue_token_request::Grant::ApiKey(made.key.clone())),
            scopes: vec!["registry.write".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(greedy.code(), Code::PermissionDenied);
}

async fn a_key_holds_only_what_its_maker_may_grant(app: App) {
    let mut admin = app.admin("brand-a").await;
    for (scopes, why) in [
        (vec!["payouts.write"], "not among the caller's scopes"),
        (vec!["identity.keys"], "cannot be given to a key"),
        (vec![], "at least one"),
    ] {
        let refused = admin
            .create_api_key(CreateApiKeyRequest {
                display_name: "x".into(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                ttl: None,
            })
            .await
            .unwrap_err();
        assert_eq!(
            (refused.code(), field(&refused).as_str()),
            (Code::InvalidArgument, "scopes")
        );
        assert!(refused.message().contains(why) || format!("{:?}", refused.get_error_details()).contains(why));
    }
    let unnamed = admin
        .create_api_key(CreateApiKeyRequest {
            display_name: " ".into(),
            scopes: vec!["registry.read".into()],
            ttl: Some(prost_types::Duration {
                seconds: 400 * 86_400,
                nanos: 0,
            }),
        })
        .await
        .unwrap_err();
    let details = unnamed.get_error_details();
    let fields: Vec<&str> = details
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["display_name", "ttl"]);
    // Without identity.keys, nothing.
    let token = app.stack.token("brand-a", &["registry.read"]);
    let denied = IdentityServiceClient::new(chorus_testkit::authed(app.identity.addr, Some(token)).await)
        .list_api_keys(ListApiKeysRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(app.list("brand-a").await.is_empty(), "nothing half-made");
}

async fn a_rotated_key_works_beside_its_successor_until_the_overlap_ends(app: App) {
    let old = app.create("brand-a", &["registry.read"]).await;
    let name = old.api_key.unwrap().name;
    let rotated = app.rotate("brand-a", &name).await.unwrap();
    let new = rotated.api_key.unwrap();
    let previous = rotated.previous.unwrap();
    assert_ne!(rotated.key, old.key);
    assert_eq!(previous.successor, new.name);
    assert_eq!(new.scopes, ["registry.read"]);
    assert_eq!(
        previous.expire_time.unwrap().seconds - app.stack.clock.now().seconds,
        86_400,
        "24 hours of overlap unless asked"
    );
    app.exchange(&old.key).await.unwrap();
    app.exchange(&rotated.key).await.unwrap();
    // A rotated key is not rotated again: its successor is.
    let again = app.rotate("brand-a", &name).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);

    app.stack.clock.advance(Duration::from_secs(86_400)).unwrap();
    assert_eq!(app.exchange(&old.key).await.unwrap_err().code(), Code::Unauthenticated);
    app.exchange(&rotated.key).await.unwrap();
    assert_eq!(app.list("brand-a").await.len(), 2);
}

async fn a_revoked_key_is_refused_at_once(app: App) {
    let made = app.create("brand-a", &["registry.read"]).await;
    let name = made.api_key.unwrap().name;
    app.exchange(&made.key).await.unwrap();
    let revoked = app.revoke("brand-a", &name).await.unwrap();
    assert!(revoked.revoke_time.is_some());
    assert_eq!(app.exchange(&made.key).await.unwrap_err().code(), Code::Unauthenticated);
    // Revoking again changes nothing.
    let again = app.revoke("brand-a", &name).await.unwrap();
    assert_eq!(again.revoke_time, revoked.revoke_time);
}

async fn another_tenants_key_is_not_found(app: App) {
    let made = app.create("brand-a", &["registry.read"]).await;
    let name = made.api_key.unwrap().name;
    let revoke = app.revoke("brand-b", &name).await.unwrap_err();
    assert_eq!(revoke.code(), Code::NotFound);
    let rotate = app.rotate("brand-b", &name).await.unwrap_err();
    assert_eq!(rotate.code(), Code::NotFound);
    assert_eq!(rotate.message(), revoke.message());
    assert!(app.list("brand-b").await.is_empty());
    let malformed = app.revoke("brand-b", "apiKeys/nope").await.unwrap_err();
    assert_eq!(
        (malformed.code(), field(&malformed).as_str()),
        (Code::InvalidArgument, "name")
    );
    // Brand A's key still works.
    app.exchange(&made.key).await.unwrap();
}

async fn keys_are_listed_newest_first_page_by_page(app: App) {
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(app.create("brand-a", &["registry.read"]).await.api_key.unwrap().name);
    }
    let mut admin = app.admin("brand-a").await;
    let first = admin
        .list_api_keys(ListApiKeysRequest {
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let second = admin
        .list_api_keys(ListApiKeysRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<String> = first
        .api_keys
        .iter()
        .chain(&second.api_keys)
        .map(|k| k.name.clone())
        .collect();
    made.reverse();
    assert_eq!(names, made);
    assert!(second.next_page_token.is_empty());
}

async fn key_acts_are_audited_append_only(app: App) {
    let made = app.create("brand-a", &["registry.read"]).await;
    let name = made.api_key.unwrap().name;
    let rotated = app.rotate("brand-a", &name).await.unwrap();
    let revoked = app.revoke("brand-a", &rotated.api_key.unwrap().name).await.unwrap();
    app.create("brand-b", &["registry.read"]).await;

    let audit = |tenant: &str| {
        let token = app.stack.token(tenant, &["identity.audit"]);
        async move {
            IdentityServiceClient::new(chorus_testkit::authed(app.identity.addr, Some(token)).await)
                .list_audit_events(ListAuditEventsRequest::default())
                .await
                .map(|r| r.into_inner().audit_events)
        }
    };
    let events = audit("brand-a").await.unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["api_key.revoke", "api_key.rotate", "api_key.create"],
        "newest first"
    );
    assert_eq!(events[0].event_time, revoked.revoke_time, "the act's own time");
    assert_eq!(events[1].target, name);
    assert_eq!(events[2].target, name);
    for e in &events {
        assert_eq!((e.actor.as_str(), e.tenant.as_str()), ("test-user", "brand-a"));
        assert_eq!(e.source, "127.0.0.1", "the peer the issuer saw");
        assert!(e.event_time.is_some() && e.name.starts_with("auditEvents/"));
    }
    assert_eq!(audit("brand-b").await.unwrap().len(), 1, "a tenant sees its own");
    assert_eq!(audit("").await.unwrap().len(), 4, "an operator sees every tenant's");
    let denied = IdentityServiceClient::new(
        chorus_testkit::authed(app.identity.addr, Some(app.stack.token("brand-a", &["identity.keys"]))).await,
    )
    .list_audit_events(ListAuditEventsRequest::default())
    .await
    .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // Nothing changes or removes an entry, not even SQL.
    let db = chorus_identity::SERVICE.spec.connect(&app.db, 1).await.unwrap();
    for sql in [
        "UPDATE audit_events SET actor = 'someone else'",
        "DELETE FROM audit_events",
    ] {
        let refused = sqlx::query(sql).execute(&db.pool).await.unwrap_err();
        assert!(refused.to_string().contains("append-only"), "{sql}: {refused}");
    }
    assert_eq!(audit("").await.unwrap().len(), 4);
}

on_both_backends! { spawn;
    key_acts_audited => key_acts_are_audited_append_only;
    key_shown_once_and_exchanged => a_key_is_shown_once_and_exchanged_for_its_tenants_token;
    typo_and_unknown_key_refused => a_typo_is_refused_before_lookup_and_an_unknown_key_is_unauthenticated;
    key_scopes_bounded_by_maker => a_key_holds_only_what_its_maker_may_grant;
    rotation_overlaps_then_expires => a_rotated_key_works_beside_its_successor_until_the_overlap_ends;
    revoked_key_refused => a_revoked_key_is_refused_at_once;
    other_tenants_key_not_found => another_tenants_key_is_not_found;
    keys_listed_newest_first => keys_are_listed_newest_first_page_by_page;
}
