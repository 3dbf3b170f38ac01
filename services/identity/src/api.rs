//! The issuer's gRPC handlers: token grants, the public keys, invitations.

use std::sync::Arc;
use std::time::Duration;

use chorus_kit::Error;
use chorus_kit::auth::{Caller, Grant, Issuer, role};
use chorus_proto::identity::identity_service_server::IdentityService;
use chorus_proto::identity::*;
use tonic::{Request, Response, Status};

use chorus_kit::auth::api_key::ApiKey;
use chorus_kit::clock::timestamp;
use chorus_kit::names::{ApiKeyName, ResourceName};
use chorus_proto::identity as proto;

use crate::domain::{self, Client, invalid_grant};
use crate::store::{AuditEvent, Granted, KeyRecord, Store};

/// Who may create invitations.
pub const INVITE: &str = "identity.invite";
/// Who may make, list, rotate and revoke their tenant's API keys.
pub const KEYS: &str = domain::KEYS_SCOPE;
/// Who may read the audit log.
pub const AUDIT: &str = "identity.audit";
pub const SCOPES: &[&str] = &[INVITE, KEYS, AUDIT];

/// Longest page of ListApiKeys, and the page when none is asked for.
const MAX_KEY_PAGE: usize = 100;
const DEFAULT_KEY_PAGE: usize = 50;

/// How tokens are granted.
#[derive(Debug, Clone)]
pub struct Policy {
    pub clients: Vec<Client>,
    /// Scopes an influencer's token may hold.
    pub influencer_scopes: Vec<String>,
    /// Life of an access token.
    pub token_ttl: Duration,
    /// Life of a refresh token.
    pub refresh_ttl: Duration,
    /// Where an invitation's link points; the code goes in its fragment.
    pub invitation_url: String,
}

#[derive(Debug, Clone)]
pub struct Identity {
    issuer: Arc<Issuer>,
    store: Store,
    policy: Arc<Policy>,
}

impl Identity {
    pub fn new(issuer: Arc<Issuer>, store: Store, policy: Policy) -> Self {
        Identity {
            issuer,
            store,
            policy: Arc::new(policy),
        }
    }

    /// A new refresh token for `granted`, stored by hash.
    async fn refresh_token(&self, granted: &Granted) -> Result<String, Error> {
        let token = domain::new_secret(32)?;
        let expire = self.store.now_micros() + self.policy.refresh_ttl.as_micros() as i64;
        self.store.add_refresh(&domain::hash(&token), granted, expire).await?;
        Ok(token)
    }

    fn answer(&self, granted: &Granted, refresh_token: String) -> Result<IssueTokenResponse, Error> {
        self.answer_for(granted, refresh_token, self.policy.token_ttl)
    }

    /// A token for `granted` living at most `ttl` (and at most the policy's token life).
    fn answer_for(&self, granted: &Granted, refresh_token: String, ttl: Duration) -> Result<IssueTokenResponse, Error> {
        let grant = Grant {
            subject: granted.subject.clone(),
            tenant: granted.tenant.clone(),
            role: granted.role.clone(),
            scopes: granted.scopes.clone(),
        };
        let (access_token, ttl) = self.issuer.mint(&grant, ttl.min(self.policy.token_ttl))?;
        Ok(IssueTokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: ttl.as_secs() as i64,
            refresh_token,
            scopes: granted.scopes.clone(),
            subject: granted.subject.clone(),
            tenant: granted.tenant.clone(),
        })
    }

    /// The caller, when it may manage keys and acts for a tenant (keys belong to one).
    fn key_manager<T>(request: &Request<T>) -> Result<Caller, Error> {
        let caller = Caller::of(request)?.clone();
        caller.require(KEYS)?;
        if caller.tenant.is_empty() {
            return Err(
                Error::permission_denied("API keys belong to a tenant, and this caller acts for none")
                    .with_reason("TENANT_REQUIRED"),
            );
        }
        Ok(caller)
    }

    /// A new key record (and the key) for `tenant`, living `ttl` from now.
    fn new_key(
        &self,
        caller: &Caller,
        display_name: &str,
        scopes: Vec<String>,
        ttl: Duration,
    ) -> Result<(ApiKey, KeyRecord), Error> {
        let key = ApiKey::generate()?;
        let now = self.store.now_micros();
        let record = KeyRecord {
            id: ApiKeyName::generate().id().to_owned(),
            tenant: caller.tenant.clone(),
            display_name: display_name.to_owned(),
            visible_prefix: key.visible().to_owned(),
            scopes,
            creator: caller.subject.clone(),
            create_time: now,
            expire_time: now.saturating_add(ttl.as_micros() as i64),
            last_use_time: None,
            revoke_time: None,
            successor: None,
        };
        Ok((key, record))
    }
}

/// Cuts `items` (read with one more than a page) to `size`; the next page's token, if any.
fn next_page<T>(items: &mut Vec<T>, size: usize, query: u64, id: impl Fn(&T) -> &String) -> String {
    if items.len() <= size {
        return String::new();
    }
    items.truncate(size);
    items
        .last()
        .map(|i| chorus_kit::paging::encode(query, id(i)))
        .unwrap_or_default()
}

/// Where a call came from: the peer's address, then what a proxy said it forwarded for.
fn source<T>(request: &Request<T>) -> String {
    let peer = request.remote_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    let forwarded = request
        .metadata()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(200).collect::<String>());
    match forwarded {
        Some(f) => format!("{peer} for {f}"),
        None => peer,
    }
}

/// An audit event of `caller` doing `action` to `target` now.
fn audit(store: &Store, caller: &Caller, action: &str, target: &ApiKeyName, source: &str) -> AuditEvent {
    AuditEvent {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        event_time: store.now_micros(),
        actor: caller.subject.clone(),
        tenant: caller.tenant.clone(),
        action: action.to_owned(),
        target: target.to_string(),
        source: source.to_owned(),
    }
}

/// A key's record as the API shows it: never the key.
fn key_proto(k: &KeyRecord) -> proto::ApiKey {
    let name = |id: &str| ApiKeyName::from_id(id).map(|n| n.to_string()).unwrap_or_default();
    proto::ApiKey {
        name: name(&k.id),
        display_name: k.display_name.clone(),
        visible_prefix: k.visible_prefix.clone(),
        scopes: k.scopes.clone(),
        create_time: Some(timestamp(k.create_time)),
        expire_time: Some(timestamp(k.expire_time)),
        last_use_time: k.last_use_time.map(timestamp),
        revoke_time: k.revoke_time.map(timestamp),
        successor: k.successor.as_deref().map(name).unwrap_or_default(),
        creator: k.creator.clone(),
    }
}

/// NOT_FOUND for a key the caller's tenant does not have (another tenant's included).
fn no_key(name: &ApiKeyName) -> Error {
    Error::not_found(name)
}

#[tonic::async_trait]
impl IdentityService for Identity {
    async fn issue_token(&self, request: Request<IssueTokenRequest>) -> Result<Response<IssueTokenResponse>, Status> {
        let r = request.into_inner();
        domain::check_issue_token(&r)?;
        let answer = match r.grant {
            None => return Err(Error::invalid_field("grant", "required").into()),
            Some(issue_token_request::Grant::ClientCredentials(c)) => {
                let client = self
                    .policy
                    .clients
                    .iter()
                    .find(|k| k.id == c.client_id && k.check_secret(&c.client_secret))
                    .ok_or_else(|| {
                        Error::unauthenticated("unknown client or wrong secret").with_reason("INVALID_CLIENT")
                    })?;
                let granted = Granted {
                    subject: client.subject(),
                    role: client.role.clone(),
                    tenant: client.tenant.clone(),
                    scopes: domain::narrow(&client.scopes, &r.scopes)?,
                };
                self.answer(&granted, String::new())?
            }
            Some(issue_token_request::Grant::InvitationCode(code)) => {
                let (influencer, allowed) = self
                    .store
                    .use_invitation(&domain::hash(&code))
                    .await?
                    .ok_or_else(invalid_grant)?;
                let granted = Granted {
                    subject: influencer,
                    role: role::INFLUENCER.into(),
                    tenant: String::new(),
                    scopes: domain::narrow(&allowed, &r.scopes)?,
                };
                let refresh = self.refresh_token(&granted).await?;
                self.answer(&granted, refresh)?
            }
            Some(issue_token_request::Grant::RefreshToken(token)) => {
                let mut granted = self
                    .store
                    .use_refresh(&domain::hash(&token))
                    .await?
                    .ok_or_else(invalid_grant)?;
                granted.scopes = domain::narrow(&granted.scopes, &r.scopes)?;
                let refresh = self.refresh_token(&granted).await?;
                self.answer(&granted, refresh)?
            }
            Some(issue_token_request::Grant::ApiKey(key)) => {
                // The checksum was checked above, before this read.
                let hash = ApiKey::parse(&key).map(|k| k.hash()).unwrap_or_default();
                let record = self.store.use_api_key(&hash).await?.ok_or_else(|| {
                    Error::unauthenticated("unknown, revoked or expired API key").with_reason("INVALID_API_KEY")
                })?;
                let granted = Granted {
                    subject: format!("apiKeys/{}", record.id),
                    role: role::BRAND.into(),
                    tenant: record.tenant.clone(),
                    scopes: domain::narrow(&record.scopes, &r.scopes)?,
                };
                // No token outlives its key.
                let left = (record.expire_time - self.store.now_micros()).max(1_000_000);
                self.answer_for(&granted, String::new(), Duration::from_micros(left as u64))?
            }
        };
        Ok(Response::new(answer))
    }

    async fn get_jwks(&self, _: Request<GetJwksRequest>) -> Result<Response<GetJwksResponse>, Status> {
        Ok(Response::new(GetJwksResponse {
            keys: self.issuer.jwks(),
        }))
    }

    async fn create_invitation(
        &self,
        request: Request<CreateInvitationRequest>,
    ) -> Result<Response<CreateInvitationResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        caller.require(INVITE)?;
        let r = request.into_inner();
        let ttl = domain::check_invitation(&r, &self.policy.influencer_scopes)?;
        let scopes = domain::narrow(&self.policy.influencer_scopes, &r.scopes)?;
        let code = domain::new_secret(16)?;
        let expire = self.store.now_micros() + ttl.as_micros() as i64;
        self.store
            .create_invitation(&domain::hash(&code), &r.influencer, &scopes, &caller.subject, expire)
            .await?;
        Ok(Response::new(CreateInvitationResponse {
            link: format!("{}#code={code}", self.policy.invitation_url),
            code,
            expire_time: Some(chorus_kit::clock::timestamp(expire)),
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        let caller = Self::key_manager(&request)?;
        let from = source(&request);
        let r = request.into_inner();
        let allowed: Vec<String> = caller.scopes.iter().cloned().collect();
        let ttl = domain::check_create_api_key(&r, &allowed)?;
        let mut scopes = r.scopes.clone();
        scopes.sort();
        scopes.dedup();
        let (key, record) = self.new_key(&caller, r.display_name.trim(), scopes, ttl)?;
        let name =
            ApiKeyName::from_id(&record.id).ok_or_else(|| Error::new(chorus_kit::ErrorCode::Internal, "a key id"))?;
        let event = AuditEvent {
            event_time: record.create_time,
            ..audit(&self.store, &caller, "api_key.create", &name, &from)
        };
        self.store.create_api_key(&record, &key.hash(), &event).await?;
        tracing::info!(key = %record.id, tenant = %record.tenant, creator = %record.creator, "api key created");
        Ok(Response::new(CreateApiKeyResponse {
            api_key: Some(key_proto(&record)),
            key: key.expose().to_owned(),
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        let caller = Self::key_manager(&request)?;
        let r = request.into_inner();
        let size = chorus_kit::paging::page_size(r.page_size, DEFAULT_KEY_PAGE, MAX_KEY_PAGE)?;
        let query = chorus_kit::paging::fingerprint(&("api keys", &caller.tenant));
        let after: Option<String> = chorus_kit::paging::decode(&r.page_token, query)?;
        let mut keys = self
            .store
            .list_api_keys(&caller.tenant, after.as_deref(), size + 1)
            .await?;
        let next_page_token = next_page(&mut keys, size, query, |k| &k.id);
        Ok(Response::new(ListApiKeysResponse {
            api_keys: keys.iter().map(key_proto).collect(),
            next_page_token,
        }))
    }

    async fn rotate_api_key(
        &self,
        request: Request<RotateApiKeyRequest>,
    ) -> Result<Response<RotateApiKeyResponse>, Status> {
        let caller = Self::key_manager(&request)?;
        let from = source(&request);
        let r = request.into_inner();
        let name = ApiKeyName::from_field(&r.name, "name")?;
        let overlap = domain::check_overlap(r.overlap.as_ref())?;
        let old = self
            .store
            .api_key(&caller.tenant, name.id())
            .await?
            .ok_or_else(|| no_key(&name))?;
        let now = self.store.now_micros();
        if !old.alive(now) || old.successor.is_some() {
            return Err(Error::new(
                chorus_kit::ErrorCode::FailedPrecondition,
                format!("{name} is already rotated, revoked or expired; rotate its successor or make a new key"),
            )
            .with_reason("KEY_NOT_ROTATABLE")
            .into());
        }
        // The successor lives as long as the old key was made to.
        let lifetime = Duration::from_micros((old.expire_time - old.create_time).max(0) as u64);
        let (key, successor) = self.new_key(&caller, &old.display_name, old.scopes.clone(), lifetime)?;
        let previous = self
            .store
            .rotate_api_key(
                &caller.tenant,
                name.id(),
                &successor,
                &key.hash(),
                now.saturating_add(overlap.as_micros() as i64),
                &audit(&self.store, &caller, "api_key.rotate", &name, &from),
            )
            .await?
            .ok_or_else(|| {
                Error::new(
                    chorus_kit::ErrorCode::Aborted,
                    format!("{name} changed while it was being rotated; try again"),
                )
            })?;
        tracing::info!(key = %previous.id, successor = %successor.id, tenant = %caller.tenant, by = %caller.subject, "api key rotated");
        Ok(Response::new(RotateApiKeyResponse {
            api_key: Some(key_proto(&successor)),
            key: key.expose().to_owned(),
            previous: Some(key_proto(&previous)),
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<RevokeApiKeyRequest>,
    ) -> Result<Response<RevokeApiKeyResponse>, Status> {
        let caller = Self::key_manager(&request)?;
        let from = source(&request);
        let r = request.into_inner();
        let name = ApiKeyName::from_field(&r.name, "name")?;
        let revoked = self
            .store
            .revoke_api_key(
                &caller.tenant,
                name.id(),
                &audit(&self.store, &caller, "api_key.revoke", &name, &from),
            )
            .await?
            .ok_or_else(|| no_key(&name))?;
        tracing::info!(key = %revoked.id, tenant = %caller.tenant, by = %caller.subject, "api key revoked");
        Ok(Response::new(RevokeApiKeyResponse {
            api_key: Some(key_proto(&revoked)),
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<ListAuditEventsRequest>,
    ) -> Result<Response<ListAuditEventsResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        caller.require(AUDIT)?;
        // An operator acting for no tenant reads every tenant's entries.
        let tenant = match (caller.tenant.is_empty(), caller.role == role::ADMIN) {
            (false, _) => Some(caller.tenant.as_str()),
            (true, true) => None,
            (true, false) => {
                return Err(
                    Error::permission_denied("the audit log is read by a tenant's or the platform's admins")
                        .with_reason("TENANT_REQUIRED")
                        .into(),
                );
            }
        };
        let r = request.into_inner();
        let size = chorus_kit::paging::page_size(r.page_size, DEFAULT_KEY_PAGE, MAX_KEY_PAGE)?;
        let query = chorus_kit::paging::fingerprint(&("audit events", tenant));
        let after: Option<String> = chorus_kit::paging::decode(&r.page_token, query)?;
        let mut events = self.store.list_audit_events(tenant, after.as_deref(), size + 1).await?;
        let next_page_token = next_page(&mut events, size, query, |e| &e.id);
        Ok(Response::new(ListAuditEventsResponse {
            audit_events: events
                .into_iter()
                .map(|e| proto::AuditEvent {
                    name: format!("auditEvents/{}", e.id),
                    event_time: Some(timestamp(e.event_time)),
                    actor: e.actor,
                    tenant: e.tenant,
                    action: e.action,
                    target: e.target,
                    source: e.source,
                })
                .collect(),
            next_page_token,
        }))
    }
}
