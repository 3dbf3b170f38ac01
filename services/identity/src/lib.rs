//! Identity: the one token issuer. It holds the Ed25519 signing key; every other service holds
//! only the public keys it publishes (GetJwks). Registered clients (each service, operators'
//! and partners' tools) exchange their credentials for short-lived tokens; influencers sign in
//! with the one-time code of an invitation and keep a refresh token. A service of the kit's
//! runtime: its binary and `chorus up` both run [`SERVICE`].

pub mod api;
pub mod domain;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use chorus_kit::auth::{Issuer, KeySource, SigningKey};
use chorus_kit::config::Reader;
use chorus_kit::runtime::{Context, Declared, Parts, Spec, declare};
use chorus_kit::storage::Migrations;
use chorus_kit::{Error, tuned};
use chorus_proto::identity::JsonWebKey;
use chorus_proto::identity::identity_service_server::IdentityServiceServer;

use crate::api::Policy;
use crate::domain::Client;

pub static MIGRATIONS: Migrations = Migrations {
    postgres: &[
        (2, "identity", include_str!("../migrations/postgres/0002_identity.sql")),
        (3, "api keys", include_str!("../migrations/postgres/0003_api_keys.sql")),
        (
            4,
            "audit events",
            include_str!("../migrations/postgres/0004_audit_events.sql"),
        ),
    ],
    sqlite: &[
        (2, "identity", include_str!("../migrations/sqlite/0002_identity.sql")),
        (3, "api keys", include_str!("../migrations/sqlite/0003_api_keys.sql")),
        (
            4,
            "audit events",
            include_str!("../migrations/sqlite/0004_audit_events.sql"),
        ),
    ],
};

/// Scopes an influencer's token holds unless configured otherwise: answering their own offers
/// and posting, reading and changing their own profile, keeping their payee details, reporting
/// their posts' metrics.
pub const INFLUENCER_SCOPES: &str = "contracts.respond registry.self payouts.self measurement.self";

/// What the issuer reads from its environment beyond the kit's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CHORUS_SIGNING_KEY_FILE` (a PKCS#8 PEM file) or `CHORUS_SIGNING_KEY` (the PEM itself):
    /// the Ed25519 key tokens are signed with.
    pub key: Option<SigningKey>,
    /// `CHORUS_RETIRED_JWKS`: public keys that no longer sign but whose tokens may live on.
    pub retired: Vec<JsonWebKey>,
    /// `CHORUS_IDENTITY_CLIENTS` (JSON) or `CHORUS_IDENTITY_CLIENTS_FILE`: the registered clients.
    pub clients: Vec<Client>,
    /// `CHORUS_INFLUENCER_SCOPES`: what an influencer's token may hold.
    pub influencer_scopes: Vec<String>,
    /// `CHORUS_TOKEN_TTL_S`: life of an access token (3600).
    pub token_ttl: Duration,
    /// `CHORUS_REFRESH_TTL_DAYS`: life of a refresh token (30).
    pub refresh_ttl: Duration,
    /// `CHORUS_INVITATION_URL`: the sign-in page an invitation links to.
    pub invitation_url: String,
}

impl Config {
    pub fn read(r: &mut Reader<'_>) -> Self {
        let key = SigningKey::from_settings(r, "CHORUS_SIGNING_KEY", "the key tokens are signed with");
        let retired = match r.optional("CHORUS_RETIRED_JWKS") {
            None => Vec::new(),
            Some(json) => chorus_kit::auth::verify::parse_jwks(&json).unwrap_or_else(|e| {
                r.check(true, "CHORUS_RETIRED_JWKS", e.message().to_owned());
                Vec::new()
            }),
        };
        let clients_json = match (
            r.optional("CHORUS_IDENTITY_CLIENTS_FILE"),
            r.secret("CHORUS_IDENTITY_CLIENTS"),
        ) {
            (Some(path), _) => std::fs::read_to_string(&path).unwrap_or_else(|e| {
                r.check(true, "CHORUS_IDENTITY_CLIENTS_FILE", format!("cannot read {path}: {e}"));
                "[]".to_owned()
            }),
            (None, Some(json)) => json.expose().clone(),
            (None, None) => "[]".to_owned(),
        };
        let clients = domain::parse_clients(&clients_json).unwrap_or_else(|why| {
            r.check(true, "CHORUS_IDENTITY_CLIENTS", why);
            Vec::new()
        });
        let token_ttl_s: u64 = r.parse("CHORUS_TOKEN_TTL_S", 3600);
        r.check(token_ttl_s == 0, "CHORUS_TOKEN_TTL_S", "at least 1");
        let refresh_days: u64 = r.parse("CHORUS_REFRESH_TTL_DAYS", 30);
        r.check(refresh_days == 0, "CHORUS_REFRESH_TTL_DAYS", "at least 1");
        Config {
            key,
            retired,
            clients,
            influencer_scopes: r
                .string("CHORUS_INFLUENCER_SCOPES", INFLUENCER_SCOPES)
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            token_ttl: Duration::from_secs(token_ttl_s),
            refresh_ttl: Duration::from_secs(refresh_days * 86_400),
            invitation_url: r.string("CHORUS_INVITATION_URL", "http://127.0.0.1:8080/sign-in"),
        }
    }
}

/// The issuer, as the kit's runtime runs it.
#[derive(Debug)]
pub struct Identity;

/// The issuer's declaration, for its binary and `chorus up`.
pub static SERVICE: Declared = declare::<Identity>();

impl chorus_kit::runtime::Service for Identity {
    type Config = Config;

    const SPEC: Spec = Spec {
        name: "identity",
        port: 50050,
        migrations: &MIGRATIONS,
        scopes: api::SCOPES,
        consumes: &[],
        db_connections: 4,
        needs: &[],
        issues_tokens: true,
    };

    fn configure(r: &mut Reader<'_>) -> Config {
        Config::read(r)
    }

    async fn start(config: Config, ctx: &Context, parts: &mut Parts) -> Result<(), Error> {
        let key = config
            .key
            .ok_or_else(|| Error::invalid_field("CHORUS_SIGNING_KEY_FILE", "required"))?;
        let issuer = Arc::new(Issuer::new(key, ctx.token_max_lifetime).with_retired(config.retired));
        let store = store::Store::new(ctx.db.clone(), ctx.clock.clone());
        let policy = Policy {
            clients: config.clients,
            influencer_scopes: config.influencer_scopes,
            token_ttl: config.token_ttl,
            refresh_ttl: config.refresh_ttl,
            invitation_url: config.invitation_url,
        };
        let sweeper = store.clone();
        let clock = ctx.clock.clone();
        parts
            .task("expired invitations", move |stop| async move {
                loop {
                    if let Err(e) = sweeper.sweep().await {
                        tracing::warn!(error = %e, "could not delete expired invitations");
                    }
                    tokio::select! {
                        () = stop.cancelled() => return Ok(()),
                        () = clock.sleep(Duration::from_secs(3600)) => {}
                    }
                }
            })
            // The issuer verifies the tokens it is shown with its own keys.
            .verify_with(KeySource::Static(issuer.jwks()), ctx.token_max_lifetime)
            .grpc(tuned!(
                IdentityServiceServer::new(api::Identity::new(issuer, store, policy)),
                ctx
            ));
        Ok(())
    }
}
