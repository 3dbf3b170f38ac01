//! The issuer over real gRPC, on PostgreSQL and SQLite: client credentials, invitations used
//! once, refresh tokens rotated, the public keys, and who may ask for what.

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

const INFLUENCER: &str = "influencers/01a20347-0252-7361-8f14-67b0d553d3c0";

struct App {
    stack: Stack,
    identity: Launched,
}

fn sha256_hex(s: &str) -> String {
    chorus_identity::domain::hash(s)
}

async fn spawn(backend: Backend) -> App {
    let mut stack = Stack::with_clock(backend, Clock::manual(1_800_000_000_000_000));
    let db = stack.database().await;
    let clients = serde_json::json!([
        {"id": "matching", "secret_sha256": sha256_hex("matching-secret"), "role": "service", "scopes": ["registry.read"]},
        {"id": "offers", "secret_sha256": sha256_hex("offers-secret"), "role": "service", "scopes": ["identity.invite", "registry.read"]},
    ]);
    let identity = stack
        .launch(
            &chorus_identity::SERVICE,
            &db,
            &[
                ("CHORUS_SIGNING_KEY", stack.signing_key_pem()),
                ("CHORUS_IDENTITY_CLIENTS", clients.to_string()),
                ("CHORUS_INVITATION_URL", "https://brand.example/sign-in".to_owned()),
            ],
        )
        .await;
    App { stack, identity }
}

impl App {
    async fn client(&self, token: Option<String>) -> IdentityServiceClient<Authed> {
        IdentityServiceClient::new(chorus_testkit::authed(self.identity.addr, token).await)
    }

    async fn credentials(&self, id: &str, secret: &str, scopes: &[&str]) -> Result<IssueTokenResponse, tonic::Status> {
        self.client(None)
            .await
            .issue_token(IssueTokenRequest {
                grant: Some(issue_token_request::Grant::ClientCredentials(ClientCredentials {
                    client_id: id.into(),
                    client_secret: secret.into(),
                })),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            })
            .await
            .map(|r| r.into_inner())
    }

    async fn exchange(&self, grant: issue_token_request::Grant) -> Result<IssueTokenResponse, tonic::Status> {
        self.client(None)
            .await
            .issue_token(IssueTokenRequest {
                grant: Some(grant),
                scopes: vec![],
            })
            .await
            .map(|r| r.into_inner())
    }

    /// A verifier that knows only what GetJwks publishes, as every other service does.
    async fn verifier(&self) -> Verifier {
        let keys = self
            .client(None)
            .await
            .get_jwks(GetJwksRequest {})
            .await
            .unwrap()
            .into_inner()
            .keys;
        Verifier::new(KeySource::Static(keys), Duration::from_secs(86_400))
    }

    async fn invite(&self, ttl: Option<prost_types::Duration>) -> CreateInvitationResponse {
        let token = self
            .credentials("offers", "offers-secret", &["identity.invite"])
            .await
            .unwrap()
            .access_token;
        self.client(Some(token))
            .await
            .create_invitation(CreateInvitationRequest {
                influencer: INFLUENCER.into(),
                scopes: vec![],
                ttl,
            })
            .await
            .unwrap()
            .into_inner()
    }
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

async fn a_client_signs_in_for_the_scopes_it_is_allowed(app: App) {
    let issued = app.credentials("matching", "matching-secret", &[]).await.unwrap();
    assert_eq!((issued.token_type.as_str(), issued.expires_in), ("Bearer", 3600));
    assert_eq!(issued.subject, "service:matching");
    assert!(issued.refresh_token.is_empty(), "clients sign in again instead");
    let caller = app.verifier().await.verify(&issued.access_token).await.unwrap();
    assert_eq!(caller.subject, "service:matching");
    assert_eq!(caller.role, "service");
    assert!(caller.require("registry.read").is_ok());
    assert!(caller.require("registry.write").is_err());

    let wrong = app.credentials("matching", "nope", &[]).await.unwrap_err();
    assert_eq!(
        (wrong.code(), reason(&wrong).as_str()),
        (Code::Unauthenticated, "INVALID_CLIENT")
    );
    let unknown = app.credentials("mallory", "matching-secret", &[]).await.unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
    assert_eq!(
        unknown.message(),
        wrong.message(),
        "nothing tells a wrong id from a wrong secret"
    );
    let greedy = app
        .credentials("matching", "matching-secret", &["registry.write"])
        .await
        .unwrap_err();
    assert_eq!(greedy.code(), Code::PermissionDenied);
    assert!(greedy.message().contains("registry.write"), "{}", greedy.message());
    let none = app
        .client(None)
        .await
        .issue_token(IssueTokenRequest::default())
        .await
        .unwrap_err();
    assert_eq!(none.code(), Code::InvalidArgument);
}

async fn an_influencer_signs_in_once_from_an_invitation_and_stays_signed_in(app: App) {
    // Only a holder of identity.invite may invite.
    let anonymous = app
        .client(None)
        .await
        .create_invitation(CreateInvitationRequest {
            influencer: INFLUENCER.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let matching = app
        .credentials("matching", "matching-secret", &[])
        .await
        .unwrap()
        .access_token;
    let denied = app
        .client(Some(matching))
        .await
        .create_invitation(CreateInvitationRequest {
            influencer: INFLUENCER.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    let invitation = app.invite(None).await;
    assert_eq!(
        invitation.link,
        format!("https://brand.example/sign-in#code={}", invitation.code)
    );
    let signed_in = app
        .exchange(issue_token_request::Grant::InvitationCode(invitation.code.clone()))
        .await
        .unwrap();
    let caller = app.verifier().await.verify(&signed_in.access_token).await.unwrap();
    assert_eq!(
        (caller.role.as_str(), caller.subject.as_str()),
        ("influencer", INFLUENCER)
    );
    assert_eq!(caller.influencer(), Some(INFLUENCER.trim_start_matches("influencers/")));
    assert!(caller.tenant.is_empty(), "an influencer is nobody's tenant");
    // By default, everything an influencer does: answer offers and post, read their own
    // profile, keep their payee details, report their posts' metrics.
    for scope in ["contracts.respond", "registry.self", "payouts.self", "measurement.self"] {
        assert!(caller.require(scope).is_ok(), "{scope}");
    }

    let again = app
        .exchange(issue_token_request::Grant::InvitationCode(invitation.code))
        .await
        .unwrap_err();
    assert_eq!(
        (again.code(), reason(&again).as_str()),
        (Code::Unauthenticated, "INVALID_GRANT")
    );

    // The refresh token keeps them signed in; each one works once.
    let refreshed = app
        .exchange(issue_token_request::Grant::RefreshToken(
            signed_in.refresh_token.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(refreshed.subject, INFLUENCER);
    assert_ne!(refreshed.refresh_token, signed_in.refresh_token);
    let replayed = app
        .exchange(issue_token_request::Grant::RefreshToken(signed_in.refresh_token))
        .await
        .unwrap_err();
    assert_eq!(replayed.code(), Code::Unauthenticated);
    app.exchange(issue_token_request::Grant::RefreshToken(refreshed.refresh_token))
        .await
        .unwrap();
}

async fn invitations_expire_and_a_newer_one_replaces_the_older(app: App) {
    let day = prost_types::Duration {
        seconds: 86_400,
        nanos: 0,
    };
    let old = app.invite(Some(day)).await;
    let new = app.invite(Some(day)).await;
    assert_ne!(old.code, new.code);
    let replaced = app
        .exchange(issue_token_request::Grant::InvitationCode(old.code))
        .await
        .unwrap_err();
    assert_eq!(replaced.code(), Code::Unauthenticated, "the newer code replaced it");
    app.stack.clock.advance(Duration::from_secs(86_401)).unwrap();
    let expired = app
        .exchange(issue_token_request::Grant::InvitationCode(new.code))
        .await
        .unwrap_err();
    assert_eq!(expired.code(), Code::Unauthenticated, "past its day");
    let token = app
        .credentials("offers", "offers-secret", &["identity.invite"])
        .await
        .unwrap()
        .access_token;
    let bad = app
        .client(Some(token))
        .await
        .create_invitation(CreateInvitationRequest {
            influencer: "people/1".into(),
            scopes: vec!["registry.write".into()],
            ttl: Some(prost_types::Duration {
                seconds: 40 * 86_400,
                nanos: 0,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = bad
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(fields, ["influencer", "scopes", "ttl"]);
}

async fn keys_and_tokens_need_no_token_but_nothing_else_is_open(app: App) {
    let keys = app
        .client(None)
        .await
        .get_jwks(GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(
        (k.kty.as_str(), k.crv.as_str(), k.alg.as_str(), k.r#use.as_str()),
        ("OKP", "Ed25519", "EdDSA", "sig")
    );
    assert_eq!(
        k.kid,
        app.stack.issuer().jwks()[0].kid,
        "the configured key, named by its thumbprint"
    );
    let forged = app
        .client(Some("not.a.token".into()))
        .await
        .get_jwks(GetJwksRequest {})
        .await
        .unwrap_err();
    assert_eq!(
        forged.code(),
        Code::Unauthenticated,
        "a bad token is refused even where none is needed"
    );
}

on_both_backends! { spawn;
    a_client_signs_in_for_the_scopes_it_is_allowed => super::a_client_signs_in_for_the_scopes_it_is_allowed;
    an_influencer_signs_in_once_from_an_invitation_and_stays_signed_in => super::an_influencer_signs_in_once_from_an_invitation_and_stays_signed_in;
    invitations_expire_and_a_newer_one_replaces_the_older => super::invitations_expire_and_a_newer_one_replaces_the_older;
    keys_and_tokens_need_no_token_but_nothing_else_is_open => super::keys_and_tokens_need_no_token_but_nothing_else_is_open;
}
