//! The issuer's gRPC handlers: token grants, the public keys, invitations.

use std::sync::Arc;
use std::time::Duration;

use chorus_kit::Error;
use chorus_kit::auth::{Caller, Grant, Issuer, role};
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
}
