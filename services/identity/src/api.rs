//! The issuer's gRPC handlers: token grants, the public keys, invitations.

use std::sync::Arc;
use std::time::Duration;

use chorus_kit::auth::{Caller, Grant, Issuer, role};
use chorus_kit::{Error, Violations};
use chorus_proto::identity::identity_service_server::IdentityService;
use chorus_proto::identity::*;
use tonic::{Request, Response, Status};

use crate::domain::{self, Client, invalid_grant};
use crate::store::{Granted, Store};

/// Who may create invitations.
pub const INVITE: &str = "identity.invite";
pub const SCOPES: &[&str] = &[INVITE];

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

    fn mint(&self, grant: &Grant) -> Result<(String, Duration), Error> {
        self.issuer.mint(grant, self.policy.token_ttl)
    }

    /// A new refresh token for `granted`, stored by hash.
    async fn refresh_token(&self, granted: &Granted) -> Result<String, Error> {
        let token = domain::new_secret(32)?;
        let expire = self.store.now_micros() + self.policy.refresh_ttl.as_micros() as i64;
        self.store.add_refresh(&domain::hash(&token), granted, expire).await?;
        Ok(token)
    }

    fn answer(&self, granted: &Granted, refresh_token: String) -> Result<IssueTokenResponse, Error> {
        let grant = Grant {
            subject: granted.subject.clone(),
            tenant: granted.tenant.clone(),
            role: granted.role.clone(),
            scopes: granted.scopes.clone(),
        };
        let (access_token, ttl) = self.mint(&grant)?;
        Ok(IssueTokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: ttl.as_secs() as i64,
            refresh_token,
            scopes: granted.scopes.clone(),
            subject: granted.subject.clone(),
        })
    }
}

#[tonic::async_trait]
impl IdentityService for Identity {
    async fn issue_token(&self, request: Request<IssueTokenRequest>) -> Result<Response<IssueTokenResponse>, Status> {
        let r = request.into_inner();
        domain::check_scopes(&r.scopes, "scopes")?;
        let answer = match r.grant {
            None => {
                return Err(Error::invalid_field(
                    "grant",
                    "required: client_credentials, invitation_code or refresh_token",
                )
                .into());
            }
            Some(issue_token_request::Grant::ClientCredentials(c)) => {
                let mut v = Violations::new();
                v.check(
                    c.client_id.is_empty() || c.client_id.len() > 64,
                    "client_credentials.client_id",
                    "1 to 64 characters",
                );
                v.check(
                    c.client_secret.is_empty() || c.client_secret.len() > 256,
                    "client_credentials.client_secret",
                    "1 to 256 characters",
                );
                v.finish()?;
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
                if code.is_empty() || code.len() > 64 {
                    return Err(Error::invalid_field("invitation_code", "1 to 64 characters").into());
                }
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
                if token.is_empty() || token.len() > 128 {
                    return Err(Error::invalid_field("refresh_token", "1 to 128 characters").into());
                }
                let mut granted = self
                    .store
                    .use_refresh(&domain::hash(&token))
                    .await?
                    .ok_or_else(invalid_grant)?;
                granted.scopes = domain::narrow(&granted.scopes, &r.scopes)?;
                let refresh = self.refresh_token(&granted).await?;
                self.answer(&granted, refresh)?
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
        let mut v = Violations::new();
        let id = r
            .influencer
            .strip_prefix("influencers/")
            .filter(|id| uuid::Uuid::try_parse(id).is_ok());
        v.check(id.is_none(), "influencer", "must be influencers/{id}");
        v.check(r.scopes.len() > 16, "scopes", "at most 16");
        if let Some(s) = r.scopes.iter().find(|s| !self.policy.influencer_scopes.contains(s)) {
            v.add(
                "scopes",
                format!(
                    "{s} is not an influencer scope ({})",
                    self.policy.influencer_scopes.join(", ")
                ),
            );
        }
        let ttl = match &r.ttl {
            None => Duration::from_secs(7 * 86_400),
            Some(d) if d.seconds > 0 && d.seconds <= 30 * 86_400 && d.nanos >= 0 => {
                Duration::from_secs(d.seconds as u64)
            }
            Some(_) => {
                v.add("ttl", "more than 0 and at most 30 days");
                Duration::ZERO
            }
        };
        v.finish()?;
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
}
