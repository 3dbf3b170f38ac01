//! Telling influencers. Four notifications, each made from one event: an offer (OfferSent, with a
//! sign-in link), a reminder (ReminderDue: an offer expiring, a signature or a post due), changes
//! requested (DeliverableChangesRequested: the brand's review sent a post back) and paid
//! (payouts' PayoutPaid). [`send`] turns the events into [`Message`]s, finds the address and
//! keeps each event from being mailed twice; the texts are here, one function each; the port
//! is [`Notifier`], with two adapters ([`adapters`]): SMTP and files in a directory (what
//! `chorus up` uses: `.chorus/mail/`).

pub mod adapters;
pub mod send;

use chorus_catalog::money::Money;
use chorus_kit::Error;
use chorus_proto::contracts::{Contract, Deliverable, Offer};
use chorus_proto::payouts::PayoutPaid;

use crate::domain::terms::{DeliverableKind, Platform};

/// What a message tells of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Offer,
    Reminder,
    ChangesRequested,
    Paid,
}

impl Kind {
    /// As stored and counted ("offer", "reminder", "changes_requested", "paid").
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Offer => "offer",
            Kind::Reminder => "reminder",
            Kind::ChangesRequested => "changes_requested",
            Kind::Paid => "paid",
        }
    }
}

/// One message to one influencer, made from one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The event's id: the message's `Message-ID` and the key that keeps it from going twice.
    pub id: String,
    pub kind: Kind,
    /// The offer, contract, deliverable or payout it is about (for logs: never the address).
    pub about: String,
    pub subject: String,
    pub body: String,
}

impl Message {
    /// The `Message-ID` header: the same for every attempt, so a receiving server that sees a
    /// message twice can tell.
    pub fn message_id(&self) -> String {
        format!("<{}@chorus>", self.id)
    }
}

/// An influencer's email address. Its Debug shows nothing of it, so it cannot reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Address(String);

impl Address {
    pub fn new(address: impl Into<String>) -> Self {
        Address(address.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Address(***)")
    }
}

/// What became of a message the notifier took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Sent,
    /// Refused for good (an SMTP 5xx reply): sending it again would not help.
    Refused(String),
}

/// The port every notification goes through.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// Delivers `message` to `to`. An error means it may work later (a 4xx reply after the
    /// adapter's own retries, a server that cannot be reached): the event comes again.
    async fn deliver(&self, to: &Address, message: &Message) -> Result<Delivered, Error>;
}

/// A time as people read it: "2027-01-22 08:00 UTC".
fn when(t: Option<&prost_types::Timestamp>) -> String {
    let Some(t) = t else {
        return "soon".to_owned();
    };
    let text = t.to_string();
    // RFC 3339 from prost: "2027-01-22T08:00:00Z"; keep the minute.
    match (text.get(..10), text.get(11..16)) {
        (Some(day), Some(minute)) => format!("{day} {minute} UTC"),
        _ => text,
    }
}

/// "the feed post on Instagram due 2027-02-04 08:00 UTC (contracts/C/deliverables/1)".
fn post(d: &Deliverable) -> String {
    let kind = DeliverableKind::from_proto(d.kind).map_or("post", DeliverableKind::label);
    let platform = Platform::from_proto(d.platform).map_or("", Platform::label);
    let on = if platform.is_empty() {
        String::new()
    } else {
        format!(" on {platform}")
    };
    format!("the {kind}{on} due {} ({})", when(d.due_time.as_ref()), d.name)
}

/// An offer's invitation: the brand, the offer, the link to sign in and answer.
pub fn offer(offer: &Offer, link: &str) -> (String, String) {
    let subject = format!("{} invites you to a campaign", offer.brand_display_name);
    let body = format!(
        "{} offers you a paid collaboration ({}).\n\nSign in to read the terms and accept, counter or decline:\n{link}\n\nThe offer is open until {}.\n",
        offer.brand_display_name,
        offer.name,
        when(offer.expire_time.as_ref()),
    );
    (subject, body)
}

/// An open offer expires soon.
pub fn offer_expiring(offer: &Offer) -> (String, String) {
    let subject = format!("Reminder: {}'s offer closes soon", offer.brand_display_name);
    let body = format!(
        "{}'s offer ({}) is open until {}.\n\nSign in with the link of your invitation to accept, counter or decline it before then.\n",
        offer.brand_display_name,
        offer.name,
        when(offer.expire_time.as_ref()),
    );
    (subject, body)
}

/// A contract waits for the influencer's signature.
pub fn signature_due(contract: &Contract) -> (String, String) {
    let subject = format!("Reminder: sign your contract with {}", contract.brand_display_name);
    let body = format!(
        "Your contract with {} ({}) waits for your signature until {}; unsigned, it lapses then.\n",
        contract.brand_display_name,
        contract.name,
        when(contract.sign_by_time.as_ref()),
    );
    (subject, body)
}

/// A post is due soon.
pub fn deliverable_due(contract: &Contract, d: &Deliverable) -> (String, String) {
    let subject = format!("Reminder: your post for {} is due soon", contract.brand_display_name);
    let body = format!(
        "Your contract with {} ({}) asks for {}.\n\nSubmit it before then; past the contract's grace period a missing post breaches the contract.\n",
        contract.brand_display_name,
        contract.name,
        post(d),
    );
    (subject, body)
}

/// The brand's review sent a post back.
pub fn changes_requested(contract: &Contract, d: &Deliverable, reason: &str) -> (String, String) {
    let subject = format!("{} asks for changes to your post", contract.brand_display_name);
    let body = format!(
        "{} reviewed your submission for {} and asks for changes:\n\n{reason}\n\nSubmit the post again once it is changed.\n",
        contract.brand_display_name,
        post(d),
    );
    (subject, body)
}

/// A payout reached the influencer.
pub fn paid(p: &PayoutPaid, brand: &str) -> (String, String) {
    let amount = p
        .amount
        .as_ref()
        .and_then(|m| Money::from_proto(m).ok())
        .map_or_else(String::new, |m| m.to_string());
    let what = match p.kind {
        2 => "A gift card",
        3 => "Your product",
        _ => "Your payment",
    };
    let subject = format!("{brand} paid you {amount}");
    let delivered = if p.kind == 3 { "was delivered" } else { "was paid" };
    let mut body = format!("{what} of {amount} from {brand} {delivered} ({}", p.payout);
    if !p.deliverable.is_empty() {
        body.push_str(&format!(", for {}", p.deliverable));
    }
    body.push_str(&format!(", contract {}).\n", p.contract));
    (subject, body)
}

#[cfg(test)]
mod tests {
    use chorus_kit::clock::timestamp;
    use chorus_proto::types::Money as ProtoMoney;

    use super::*;

    /// 2027-01-22T08:00:00Z.
    const AT: i64 = 1_800_604_800_000_000;

    fn deliverable() -> Deliverable {
        Deliverable {
            name: "contracts/c1/deliverables/1".into(),
            kind: chorus_proto::types::DeliverableKind::FeedPost as i32,
            platform: chorus_proto::types::Platform::Instagram as i32,
            due_time: Some(timestamp(AT)),
            ..Default::default()
        }
    }

    fn contract() -> Contract {
        Contract {
            name: "contracts/c1".into(),
            brand_display_name: "Pawsome".into(),
            sign_by_time: Some(timestamp(AT)),
            ..Default::default()
        }
    }

    #[test]
    fn an_invitation_names_the_brand_the_offer_and_the_link() {
        let o = Offer {
            name: "offers/o1".into(),
            brand_display_name: "Pawsome".into(),
            expire_time: Some(timestamp(AT)),
            ..Default::default()
        };
        let (subject, body) = offer(&o, "http://x/sign-in#code=abc");
        assert_eq!(subject, "Pawsome invites you to a campaign");
        assert!(body.contains("(offers/o1)"), "{body}");
        assert!(body.contains("\nhttp://x/sign-in#code=abc\n"), "{body}");
        assert!(body.contains("open until 2027-01-22 08:00 UTC"), "{body}");
        let (subject, body) = offer_expiring(&o);
        assert_eq!(subject, "Reminder: Pawsome's offer closes soon");
        assert!(
            body.contains("(offers/o1) is open until 2027-01-22 08:00 UTC"),
            "{body}"
        );
        assert!(!body.contains("code="), "a reminder carries no sign-in code: {body}");
    }

    #[test]
    fn a_reminder_says_which_post_is_due_when() {
        let (subject, body) = deliverable_due(&contract(), &deliverable());
        assert_eq!(subject, "Reminder: your post for Pawsome is due soon");
        assert!(
            body.contains("the feed post on Instagram due 2027-01-22 08:00 UTC (contracts/c1/deliverables/1)"),
            "{body}"
        );
        let (_, body) = signature_due(&contract());
        assert!(
            body.contains("(contracts/c1) waits for your signature until 2027-01-22 08:00 UTC"),
            "{body}"
        );
    }

    #[test]
    fn changes_requested_quotes_the_brand() {
        let (subject, body) = changes_requested(&contract(), &deliverable(), "Show the harness's logo");
        assert_eq!(subject, "Pawsome asks for changes to your post");
        assert!(body.contains("\n\nShow the harness's logo\n\n"), "{body}");
        assert!(body.contains("contracts/c1/deliverables/1"), "{body}");
    }

    #[test]
    fn paid_states_the_amount_and_what_it_was_for() {
        let p = PayoutPaid {
            payout: "payouts/p1".into(),
            contract: "contracts/c1".into(),
            deliverable: "contracts/c1/deliverables/1".into(),
            kind: 1,
            amount: Some(ProtoMoney {
                currency_code: "USD".into(),
                amount_minor: 15_000,
            }),
            ..Default::default()
        };
        let (subject, body) = paid(&p, "Pawsome");
        assert_eq!(subject, "Pawsome paid you USD 150.00");
        assert_eq!(
            body,
            "Your payment of USD 150.00 from Pawsome was paid (payouts/p1, for contracts/c1/deliverables/1, contract contracts/c1).\n"
        );
        let gift = PayoutPaid {
            kind: 2,
            deliverable: String::new(),
            ..p
        };
        assert!(
            paid(&gift, "Pawsome")
                .1
                .starts_with("A gift card of USD 150.00 from Pawsome was paid (payouts/p1, contract contracts/c1)")
        );
    }

    #[test]
    fn an_address_never_prints() {
        let a = Address::new("ana@example.com");
        assert_eq!(format!("{a:?}"), "Address(***)");
        assert_eq!(a.expose(), "ana@example.com");
    }
}
