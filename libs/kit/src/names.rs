//! Resource names (AIP-122): `influencers/{id}`, `campaigns/{c}/shortlists/{s}`. A name is
//! parsed once, where it enters a service, into a type that can only hold a well-formed name;
//! past that point code passes the type and reads its ids, never re-splitting strings.
//!
//! Ids are UUIDs in the canonical form Chorus issues them (lower case, hyphenated): any other
//! spelling would never match a stored id, so it is refused rather than looked up.

use std::fmt;

use crate::Error;

/// A resource name type: its pattern, how to read one from a request field.
pub trait ResourceName: Sized + fmt::Display {
    /// The pattern, as written in errors and docs (`influencers/{influencer}`).
    const PATTERN: &'static str;

    /// The name, when `name` matches the pattern with canonical ids.
    fn parse(name: &str) -> Option<Self>;

    /// The name in request field `field`: INVALID_ARGUMENT naming the field when it is empty
    /// ("required") or not of the pattern.
    fn from_field(name: &str, field: &str) -> Result<Self, Error> {
        if name.is_empty() {
            return Err(Error::invalid_field(field, "required"));
        }
        Self::parse(name).ok_or_else(|| {
            Error::invalid_field(
                field,
                format!("must be {} with UUID ids (lower case, hyphenated)", Self::PATTERN),
            )
        })
    }
}

/// Whether `id` is a UUID in canonical form.
pub fn is_canonical_id(id: &str) -> bool {
    id.len() == 36 && uuid::Uuid::try_parse(id).is_ok_and(|u| u.hyphenated().to_string() == id)
}

/// The ids of `name` when it is `c0/{id}/c1/{id}...` for the collections given, each id canonical.
fn ids<const N: usize>(name: &str, collections: [&str; N]) -> Option<[String; N]> {
    let mut parts = name.split('/');
    let mut out: [String; N] = std::array::from_fn(|_| String::new());
    for (slot, collection) in out.iter_mut().zip(collections) {
        if parts.next()? != collection {
            return None;
        }
        let id = parts.next()?;
        if !is_canonical_id(id) {
            return None;
        }
        *slot = id.to_owned();
    }
    parts.next().is_none().then_some(out)
}

macro_rules! single {
    ($(#[$doc:meta])* $ty:ident, $collection:literal, $pattern:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            /// The name of the resource with id `id`, when `id` is canonical.
            pub fn from_id(id: &str) -> Option<Self> {
                is_canonical_id(id).then(|| $ty(id.to_owned()))
            }

            /// A new id (UUIDv7: ordered by creation).
            pub fn generate() -> Self {
                $ty(uuid::Uuid::now_v7().hyphenated().to_string())
            }

            pub fn id(&self) -> &str {
                &self.0
            }
        }

        impl ResourceName for $ty {
            const PATTERN: &'static str = $pattern;

            fn parse(name: &str) -> Option<Self> {
                let [id] = ids(name, [$collection])?;
                Some($ty(id))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($collection, "/{}"), self.0)
            }
        }
    };
}

single!(
    /// `influencers/{influencer}`: an influencer of the registry.
    InfluencerName,
    "influencers",
    "influencers/{influencer}"
);
single!(
    /// `campaigns/{campaign}`: a brand's campaign in matching.
    CampaignName,
    "campaigns",
    "campaigns/{campaign}"
);

single!(
    /// `offers/{offer}`: an offer of the contracts service.
    OfferName,
    "offers",
    "offers/{offer}"
);
single!(
    /// `contracts/{contract}`: a contract of the contracts service.
    ContractName,
    "contracts",
    "contracts/{contract}"
);
single!(
    /// `payouts/{payout}`: one part of a contract's compensation, paid by the payouts service.
    PayoutName,
    "payouts",
    "payouts/{payout}"
);
single!(
    /// `apiKeys/{api_key}`: a partner app's API key, kept by the identity service.
    ApiKeyName,
    "apiKeys",
    "apiKeys/{api_key}"
);
single!(
    /// `payees/{influencer}`: an influencer's payee profile (payment details, tax form).
    PayeeName,
    "payees",
    "payees/{influencer}"
);

single!(
    /// `webhookEndpoints/{endpoint}`: where a tenant's events are sent (the webhooks service).
    WebhookEndpointName,
    "webhookEndpoints",
    "webhookEndpoints/{endpoint}"
);

/// `webhookEndpoints/{endpoint}/deliveries/{event}`: one event for one endpoint; the event's id
/// is the delivery's `webhook-id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebhookDeliveryName {
    endpoint: WebhookEndpointName,
    event: String,
}

impl WebhookDeliveryName {
    /// The delivery of event `event` to `endpoint`, when the id is canonical.
    pub fn new(endpoint: WebhookEndpointName, event: &str) -> Option<Self> {
        is_canonical_id(event).then(|| WebhookDeliveryName {
            endpoint,
            event: event.to_owned(),
        })
    }

    pub fn endpoint(&self) -> &WebhookEndpointName {
        &self.endpoint
    }

    /// The event's id.
    pub fn event(&self) -> &str {
        &self.event
    }
}

impl ResourceName for WebhookDeliveryName {
    const PATTERN: &'static str = "webhookEndpoints/{endpoint}/deliveries/{event}";

    fn parse(name: &str) -> Option<Self> {
        let [endpoint, event] = ids(name, ["webhookEndpoints", "deliveries"])?;
        Some(WebhookDeliveryName {
            endpoint: WebhookEndpointName(endpoint),
            event,
        })
    }
}

impl fmt::Display for WebhookDeliveryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/deliveries/{}", self.endpoint, self.event)
    }
}

/// `contracts/{contract}/deliverables/{n}`: one post a contract owes, numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliverableName {
    contract: ContractName,
    number: u32,
}

impl DeliverableName {
    pub fn new(contract: ContractName, number: u32) -> Self {
        DeliverableName { contract, number }
    }

    pub fn contract(&self) -> &ContractName {
        &self.contract
    }

    pub fn number(&self) -> u32 {
        self.number
    }
}

impl ResourceName for DeliverableName {
    const PATTERN: &'static str = "contracts/{contract}/deliverables/{number}";

    fn parse(name: &str) -> Option<Self> {
        let (head, n) = name.rsplit_once("/deliverables/")?;
        // "3", not "03" or "+3": one spelling per deliverable.
        let number: u32 = n.parse().ok().filter(|k: &u32| *k >= 1 && k.to_string() == n)?;
        Some(DeliverableName {
            contract: ContractName::parse(head)?,
            number,
        })
    }
}

impl fmt::Display for DeliverableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/deliverables/{}", self.contract, self.number)
    }
}

/// `campaigns/{campaign}/shortlists/{shortlist}`: a saved selection of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShortlistName {
    campaign: CampaignName,
    shortlist: String,
}

impl ShortlistName {
    /// The shortlist `shortlist` of `campaign`, when the id is canonical.
    pub fn new(campaign: CampaignName, shortlist: &str) -> Option<Self> {
        is_canonical_id(shortlist).then(|| ShortlistName {
            campaign,
            shortlist: shortlist.to_owned(),
        })
    }

    pub fn campaign(&self) -> &CampaignName {
        &self.campaign
    }

    pub fn id(&self) -> &str {
        &self.shortlist
    }
}

impl ResourceName for ShortlistName {
    const PATTERN: &'static str = "campaigns/{campaign}/shortlists/{shortlist}";

    fn parse(name: &str) -> Option<Self> {
        let [campaign, shortlist] = ids(name, ["campaigns", "shortlists"])?;
        Some(ShortlistName {
            campaign: CampaignName(campaign),
            shortlist,
        })
    }
}

impl fmt::Display for ShortlistName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/shortlists/{}", self.campaign, self.shortlist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    const ID: &str = "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b";
    const OTHER: &str = "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7c";

    #[test]
    fn deliverables_are_numbered_from_one_in_one_spelling() {
        let d = DeliverableName::parse(&format!("contracts/{ID}/deliverables/3")).unwrap();
        assert_eq!((d.contract().id(), d.number()), (ID, 3));
        assert_eq!(d.to_string(), format!("contracts/{ID}/deliverables/3"));
        for bad in ["0", "03", "+3", "x", ""] {
            assert!(
                DeliverableName::parse(&format!("contracts/{ID}/deliverables/{bad}")).is_none(),
                "{bad}"
            );
        }
        assert!(DeliverableName::parse(&format!("offers/{ID}/deliverables/1")).is_none());
    }

    #[test]
    fn a_name_round_trips_and_gives_its_id() {
        let n = InfluencerName::parse(&format!("influencers/{ID}")).unwrap();
        assert_eq!(n.id(), ID);
        assert_eq!(n.to_string(), format!("influencers/{ID}"));
        let s = ShortlistName::parse(&format!("campaigns/{ID}/shortlists/{OTHER}")).unwrap();
        assert_eq!((s.campaign().id(), s.id()), (ID, OTHER));
        assert_eq!(s.to_string(), format!("campaigns/{ID}/shortlists/{OTHER}"));
        assert_eq!(InfluencerName::from_id(ID), Some(n));
    }

    #[test]
    fn only_the_canonical_spelling_of_the_pattern_is_a_name() {
        let upper = ID.to_uppercase();
        let simple = ID.replace('-', "");
        for bad in [
            String::new(),
            "influencers/".to_owned(),
            ID.to_owned(),
            format!("influencers/{upper}"),
            format!("influencers/{simple}"),
            format!("influencers/{ID}/"),
            format!("influencers/{ID}/x"),
            format!("campaigns/{ID}"),
            format!("/influencers/{ID}"),
            format!("influencers//{ID}"),
        ] {
            assert!(InfluencerName::parse(&bad).is_none(), "{bad:?}");
        }
        assert!(ShortlistName::parse(&format!("campaigns/{ID}/lists/{OTHER}")).is_none());
        assert!(ShortlistName::parse(&format!("campaigns/{ID}")).is_none());
        assert!(CampaignName::from_id("not-a-uuid").is_none());
    }

    #[test]
    fn a_field_that_is_no_name_is_named_in_the_error() {
        let empty = InfluencerName::from_field("", "parent").unwrap_err();
        assert_eq!(empty.code(), ErrorCode::InvalidArgument);
        assert_eq!(empty.violations()[0].field, "parent");
        assert!(empty.violations()[0].description.contains("required"));
        let bad = CampaignName::from_field("campaigns/42", "campaign").unwrap_err();
        assert_eq!(bad.violations()[0].field, "campaign");
        assert!(bad.violations()[0].description.contains("campaigns/{campaign}"));
    }

    #[test]
    fn generated_ids_are_canonical_and_ordered() {
        let a = CampaignName::generate();
        let b = CampaignName::generate();
        assert!(is_canonical_id(a.id()) && a < b, "{a} then {b}");
    }
}
