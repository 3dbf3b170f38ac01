//! From events to messages, each event at most once. A consumer hands every event of
//! `chorus.contracts` and `chorus.payouts` to [`Notifications::handle`], which picks the four
//! that tell an influencer something, and for each:
//!
//! 1. skips it when the `notifications` table already holds its id (a replay, a redelivery);
//! 2. asks the registry for the influencer's address with contracts' own `registry.contacts`
//!    scope, so the registry's one consent rule decides: no consent, no address, no mail;
//! 3. writes the message from what contracts holds now (a reminder for an offer already
//!    answered or a post already in review is moot) and, for an offer, a sign-in link from the
//!    identity service;
//! 4. hands it to the notifier and records the outcome (sent, refused, no address, moot) with
//!    the event id. A transient failure records nothing: the bus brings the event again.
//!
//! The address is never stored, logged or put in an event. A crash between sending and
//! recording sends that one message again on redelivery, with the same `Message-ID`.

use std::sync::Arc;

use chorus_kit::events::read;
use chorus_kit::{Error, ErrorCode};
use chorus_proto::contracts::{
    ContractState, DeliverableChangesRequested, DeliverableState, OfferSent, OfferState, Party, ReminderDue,
    ReminderKind,
};
use chorus_proto::event::Envelope;
use chorus_proto::identity::CreateInvitationRequest;
use chorus_proto::identity::identity_service_client::IdentityServiceClient;
use chorus_proto::payouts::PayoutPaid;
use chorus_proto::registry::GetInfluencerRequest;
use chorus_proto::registry::registry_service_client::RegistryServiceClient;
use futures::future::BoxFuture;
use tonic::transport::Channel;

use super::{Address, Delivered, Kind, Message, Notifier};
use crate::store::{Notified, Store, Who, id_of};

/// The scope contracts makes invitations with.
pub const INVITE: &str = "identity.invite";
/// The scopes contracts reads an influencer's address with: the registry shows it only to
/// holders of `registry.contacts`, and only of people whose consent allows contact.
pub const CONTACTS: &[&str] = &["registry.read", "registry.contacts"];

/// Counter of notifications by `kind` and `outcome` (sent, refused, no_address, moot, or
/// duplicate for an event already dealt with).
pub const METRIC: &str = "chorus_notifications_total";

/// A service token for the scopes asked (contracts' own identity).
pub type Tokens = Arc<dyn Fn(&'static [&'static str]) -> BoxFuture<'static, Result<String, Error>> + Send + Sync>;

/// Turns events into notifications.
#[derive(Clone)]
pub struct Notifications {
    pub store: Store,
    /// None: nothing is configured to deliver (`CHORUS_SMTP_URL`, `CHORUS_MAIL_DIR`); each
    /// notification is only logged, without link or address.
    pub notifier: Option<Arc<dyn Notifier>>,
    /// The identity service (invitations) and the registry (addresses).
    pub identity: Channel,
    pub registry: Channel,
    pub tokens: Tokens,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications")
            .field("notifier", &self.notifier)
            .finish_non_exhaustive()
    }
}

/// What an event asks to tell, before anything is looked up.
#[derive(Debug)]
enum Notice {
    Offer(Box<chorus_proto::contracts::Offer>),
    Reminder(ReminderDue),
    ChangesRequested(DeliverableChangesRequested),
    Paid(PayoutPaid),
}

impl Notice {
    fn of(e: &Envelope) -> Result<Option<Notice>, Error> {
        if let Some(p) = read::<OfferSent>(e) {
            return Ok(p?.offer.map(|o| Notice::Offer(Box::new(o))));
        }
        if let Some(p) = read::<ReminderDue>(e) {
            return Ok(Some(Notice::Reminder(p?)));
        }
        if let Some(p) = read::<DeliverableChangesRequested>(e) {
            return Ok(Some(Notice::ChangesRequested(p?)));
        }
        if let Some(p) = read::<PayoutPaid>(e) {
            return Ok(Some(Notice::Paid(p?)));
        }
        Ok(None)
    }

    fn kind(&self) -> Kind {
        match self {
            Notice::Offer(_) => Kind::Offer,
            Notice::Reminder(_) => Kind::Reminder,
            Notice::ChangesRequested(_) => Kind::ChangesRequested,
            Notice::Paid(_) => Kind::Paid,
        }
    }

    fn influencer(&self) -> &str {
        match self {
            Notice::Offer(o) => &o.influencer,
            Notice::Reminder(r) => &r.influencer,
            Notice::ChangesRequested(c) => &c.influencer,
            Notice::Paid(p) => &p.influencer,
        }
    }

    fn about(&self) -> &str {
        match self {
            Notice::Offer(o) => &o.name,
            Notice::Reminder(r) => &r.subject,
            Notice::ChangesRequested(c) => &c.deliverable,
            Notice::Paid(p) => &p.payout,
        }
    }
}

/// What became of a notification.
#[derive(Debug)]
enum Outcome {
    Sent,
    Refused(String),
    NoAddress,
    Moot,
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Refused(_) => "refused",
            Outcome::NoAddress => "no_address",
            Outcome::Moot => "moot",
        }
    }
}

fn count(kind: Kind, outcome: &'static str) {
    metrics::counter!(METRIC, "kind" => kind.as_str(), "outcome" => outcome).increment(1);
}

fn bearer<T>(request: &mut tonic::Request<T>, token: &str) -> Result<(), Error> {
    let header = format!("Bearer {token}")
        .parse()
        .map_err(|e| Error::internal("bearer header", e))?;
    request.metadata_mut().insert("authorization", header);
    Ok(())
}

fn unavailable(what: &str, s: &tonic::Status) -> Error {
    Error::new(ErrorCode::Unavailable, format!("{what}: {}", s.message()))
}

impl Notifications {
    /// Deals with one event of `chorus.contracts` or `chorus.payouts`; an error hands it back
    /// to the bus, which brings it again.
    pub async fn handle(&self, e: &Envelope) -> Result<(), Error> {
        let Some(notice) = Notice::of(e)? else {
            return Ok(());
        };
        let (kind, about) = (notice.kind(), notice.about().to_owned());
        let Some(notifier) = &self.notifier else {
            tracing::debug!(kind = kind.as_str(), %about, "no notifier configured (CHORUS_SMTP_URL or CHORUS_MAIL_DIR): not sent");
            return Ok(());
        };
        if self.store.notified(&e.id).await? {
            count(kind, "duplicate");
            return Ok(());
        }
        let outcome = match self.address(notice.influencer()).await? {
            None => Outcome::NoAddress,
            Some(to) => match self.message(e, &notice).await? {
                None => Outcome::Moot,
                Some(message) => match notifier.deliver(&to, &message).await? {
                    Delivered::Sent => Outcome::Sent,
                    Delivered::Refused(reply) => Outcome::Refused(reply),
                },
            },
        };
        let detail = match &outcome {
            Outcome::Refused(reply) => reply.clone(),
            _ => String::new(),
        };
        tracing::info!(kind = kind.as_str(), %about, outcome = outcome.as_str(), %detail, "notification");
        self.store
            .record_notification(&Notified {
                event_id: &e.id,
                tenant: &e.tenant,
                kind: kind.as_str(),
                influencer_id: id_of(notice.influencer(), "influencers"),
                about: &about,
                outcome: outcome.as_str(),
                detail: &detail,
            })
            .await?;
        count(kind, outcome.as_str());
        Ok(())
    }

    /// The influencer's address, if the registry shows it to contracts (they consented to be
    /// contacted and gave one); None for someone erased.
    async fn address(&self, influencer: &str) -> Result<Option<Address>, Error> {
        let mut request = tonic::Request::new(GetInfluencerRequest {
            name: influencer.to_owned(),
        });
        bearer(&mut request, &(self.tokens)(CONTACTS).await?)?;
        match RegistryServiceClient::new(self.registry.clone())
            .get_influencer(request)
            .await
        {
            Ok(r) => Ok(r
                .into_inner()
                .influencer
                .and_then(|i| i.contact)
                .map(|c| c.email)
                .filter(|email| !email.trim().is_empty())
                .map(Address::new)),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(unavailable("read the influencer's contact at the registry", &s)),
        }
    }

    /// A one-time sign-in link for `influencer`. A retry makes a new code, which replaces the
    /// earlier one (identity keeps only the last).
    async fn invite(&self, influencer: &str) -> Result<String, Error> {
        let mut request = tonic::Request::new(CreateInvitationRequest {
            influencer: influencer.to_owned(),
            scopes: Vec::new(),
            ttl: None,
        });
        bearer(&mut request, &(self.tokens)(&[INVITE]).await?)?;
        let invitation = IdentityServiceClient::new(self.identity.clone())
            .create_invitation(request)
            .await
            .map_err(|s| unavailable("create invitation", &s))?
            .into_inner();
        Ok(invitation.link)
    }

    /// The message `notice` makes as things stand, None when it is moot.
    async fn message(&self, e: &Envelope, notice: &Notice) -> Result<Option<Message>, Error> {
        let text = match notice {
            Notice::Offer(o) => Some(super::offer(o, &self.invite(&o.influencer).await?)),
            Notice::Reminder(r) => self.reminder(r).await?,
            Notice::ChangesRequested(x) => self
                .deliverable(&x.contract, &x.deliverable)
                .await?
                .map(|(c, d)| super::changes_requested(&c, &d, &x.reason)),
            Notice::Paid(p) => {
                let brand = self
                    .store
                    .contract(&Who::System, id_of(&p.contract, "contracts"))
                    .await?
                    .map_or_else(|| "The brand".to_owned(), |(c, _)| c.brand_display_name);
                Some(super::paid(p, &brand))
            }
        };
        Ok(text.map(|(subject, body)| Message {
            id: e.id.clone(),
            kind: notice.kind(),
            about: notice.about().to_owned(),
            subject,
            body,
        }))
    }

    /// A reminder's text, unless what it reminds of is done: an offer no longer open, a
    /// contract the influencer signed or that is no longer waiting for signatures, a post
    /// approved or in review.
    async fn reminder(&self, r: &ReminderDue) -> Result<Option<(String, String)>, Error> {
        match ReminderKind::try_from(r.kind).unwrap_or(ReminderKind::Unspecified) {
            ReminderKind::OfferExpiring => {
                let offer = self.store.offer(&Who::System, id_of(&r.subject, "offers")).await?;
                Ok(offer
                    .filter(|o| o.state == OfferState::Open as i32)
                    .map(|o| super::offer_expiring(&o)))
            }
            ReminderKind::SignatureDue => {
                let contract = self
                    .store
                    .contract(&Who::System, id_of(&r.subject, "contracts"))
                    .await?;
                Ok(contract
                    .map(|(c, _)| c)
                    .filter(|c| {
                        [ContractState::Sent as i32, ContractState::SignedByOne as i32].contains(&c.state)
                            && !c.signatures.iter().any(|s| s.party == Party::Influencer as i32)
                    })
                    .map(|c| super::signature_due(&c)))
            }
            ReminderKind::DeliverableDue => {
                let contract = r.subject.split("/deliverables/").next().unwrap_or_default();
                Ok(self
                    .deliverable(contract, &r.subject)
                    .await?
                    .filter(|(c, d)| {
                        c.state == ContractState::Active as i32
                            && ![DeliverableState::Approved as i32, DeliverableState::InReview as i32]
                                .contains(&d.state)
                    })
                    .map(|(c, d)| super::deliverable_due(&c, &d)))
            }
            ReminderKind::Unspecified => Ok(None),
        }
    }

    async fn deliverable(
        &self,
        contract: &str,
        deliverable: &str,
    ) -> Result<Option<(chorus_proto::contracts::Contract, chorus_proto::contracts::Deliverable)>, Error> {
        let id = id_of(contract, "contracts");
        let Some((c, _)) = self.store.contract(&Who::System, id).await? else {
            return Ok(None);
        };
        let found = self
            .store
            .deliverables(&Who::System, id)
            .await?
            .unwrap_or_default()
            .into_iter()
            .find(|d| d.name == deliverable);
        Ok(found.map(|d| (c, d)))
    }
}
