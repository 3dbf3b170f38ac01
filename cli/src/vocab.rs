//! The proto vocabulary in both directions: enum values from what people type ("instagram",
//! "gift-card", "PLATFORM_INSTAGRAM"), back to proto names for JSON and short labels for tables,
//! and influencer resource names.

use chorus_proto::contracts::{
    ContractState, DeliverableState, Funding, OfferState, Party, Prominence, Severity, UsageChannel,
    Verdict as DisclosureVerdict,
};
use chorus_proto::matching::{CampaignStatus, Decision, Objective};
use chorus_proto::registry::{AgeBucket, EngagementDenominator, ImportOutcome, InfluencerStatus, Verdict, VettingFlag};
use chorus_proto::types::{CompensationKind, DeliverableKind, Platform, Tier};

/// A proto enum whose value names are `<PREFIX>_<VALUE>` and whose 0 is `UNSPECIFIED`.
pub(crate) trait ProtoEnum: Sized + Copy + TryFrom<i32> + Into<i32> {
    /// The value-name prefix, for example "PLATFORM".
    const PREFIX: &'static str;
    /// What the values are called in messages, for example "platform".
    const WHAT: &'static str;
    fn from_name(name: &str) -> Option<Self>;
    fn name(self) -> &'static str;
}

macro_rules! proto_enum {
    ($ty:ty, $prefix:literal, $what:literal) => {
        impl ProtoEnum for $ty {
            const PREFIX: &'static str = $prefix;
            const WHAT: &'static str = $what;
            fn from_name(name: &str) -> Option<Self> {
                <$ty>::from_str_name(name)
            }
            fn name(self) -> &'static str {
                self.as_str_name()
            }
        }
    };
}

proto_enum!(Platform, "PLATFORM", "platform");
proto_enum!(Tier, "TIER", "tier");
proto_enum!(CompensationKind, "COMPENSATION_KIND", "compensation kind");
proto_enum!(DeliverableKind, "DELIVERABLE_KIND", "deliverable kind");
proto_enum!(InfluencerStatus, "INFLUENCER_STATUS", "status");
proto_enum!(
    EngagementDenominator,
    "ENGAGEMENT_DENOMINATOR",
    "engagement denominator"
);
proto_enum!(ImportOutcome, "IMPORT_OUTCOME", "import outcome");
proto_enum!(AgeBucket, "AGE_BUCKET", "age bucket");
proto_enum!(Verdict, "VERDICT", "verdict");
proto_enum!(VettingFlag, "VETTING_FLAG", "vetting flag");
proto_enum!(Objective, "OBJECTIVE", "objective");
proto_enum!(CampaignStatus, "CAMPAIGN_STATUS", "campaign status");
proto_enum!(Decision, "DECISION", "decision");
proto_enum!(chorus_proto::contracts::Connection, "CONNECTION", "connection");
proto_enum!(UsageChannel, "USAGE_CHANNEL", "usage channel");
proto_enum!(OfferState, "OFFER_STATE", "offer state");
proto_enum!(ContractState, "CONTRACT_STATE", "contract state");
proto_enum!(Party, "PARTY", "party");
proto_enum!(Funding, "FUNDING", "funding");
proto_enum!(DeliverableState, "DELIVERABLE_STATE", "deliverable state");
proto_enum!(DisclosureVerdict, "VERDICT", "verdict");
proto_enum!(Severity, "SEVERITY", "severity");
proto_enum!(Prominence, "PROMINENCE", "prominence");

/// Parses a value as people write it: the short label in any case, with "-", "_" or " " between
/// words, or the full proto name. UNSPECIFIED is never accepted.
pub(crate) fn parse<E: ProtoEnum>(input: &str) -> Result<E, String> {
    let key = input.trim().to_ascii_uppercase().replace(['-', ' '], "_");
    let found = E::from_name(&format!("{}_{key}", E::PREFIX)).or_else(|| E::from_name(&key));
    match found {
        Some(value) if value.into() != 0 => Ok(value),
        _ => Err(format!(
            "unknown {} \"{}\" (expected one of: {})",
            E::WHAT,
            input.trim(),
            labels::<E>().join(", ")
        )),
    }
}

/// Every label of `E` except UNSPECIFIED, in value order.
fn labels<E: ProtoEnum>() -> Vec<String> {
    (1..64).filter_map(|v| E::try_from(v).ok()).map(label_of::<E>).collect()
}

/// The proto name of a raw enum value; None when this build does not know the value.
pub(crate) fn proto_name<E: ProtoEnum>(value: i32) -> Option<&'static str> {
    E::try_from(value).ok().map(E::name)
}

/// The short lower-case label of a raw value ("gift card", "instagram"), for tables.
pub(crate) fn label<E: ProtoEnum>(value: i32) -> String {
    match E::try_from(value) {
        Ok(e) if value != 0 => label_of(e),
        Ok(_) => "-".to_owned(),
        Err(_) => format!("{} {value}", E::WHAT),
    }
}

fn label_of<E: ProtoEnum>(e: E) -> String {
    let name = e.name();
    let short = name
        .strip_prefix(E::PREFIX)
        .and_then(|s| s.strip_prefix('_'))
        .unwrap_or(name);
    short.to_ascii_lowercase().replace('_', " ")
}

/// Accepts "influencers/ID" or a bare ID and returns the resource name.
pub(crate) fn influencer_name(input: &str) -> Result<String, String> {
    resource_name("influencers", "an influencer", input)
}

/// Accepts "offers/ID" or a bare ID.
pub(crate) fn offer_name(input: &str) -> Result<String, String> {
    resource_name("offers", "an offer", input)
}

/// Accepts "contracts/ID" or a bare ID.
pub(crate) fn contract_name(input: &str) -> Result<String, String> {
    resource_name("contracts", "a contract", input)
}

/// Accepts "COLLECTION/ID" or a bare ID and returns the resource name; `what` names it in
/// errors ("an influencer").
fn resource_name(collection: &str, what: &str, input: &str) -> Result<String, String> {
    let input = input.trim();
    let id = input
        .strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(input);
    if id.is_empty() {
        return Err(format!("{what} name is \"{collection}/ID\" or a bare ID"));
    }
    if id.contains('/') || id.chars().any(char::is_whitespace) {
        return Err(format!(
            "\"{input}\" is not {what} name (expected \"{collection}/ID\" or ID)"
        ));
    }
    Ok(format!("{collection}/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_values_parse_from_labels_and_proto_names() {
        assert_eq!(parse::<Platform>("instagram"), Ok(Platform::Instagram));
        assert_eq!(parse::<Platform>(" TikTok "), Ok(Platform::Tiktok));
        assert_eq!(parse::<Platform>("PLATFORM_YOUTUBE"), Ok(Platform::Youtube));
        assert_eq!(parse::<CompensationKind>("gift-card"), Ok(CompensationKind::GiftCard));
        assert_eq!(parse::<CompensationKind>("gift card"), Ok(CompensationKind::GiftCard));
        assert_eq!(parse::<Tier>("nano"), Ok(Tier::Nano));
        assert_eq!(parse::<InfluencerStatus>("Active"), Ok(InfluencerStatus::Active));
    }

    #[test]
    fn unknown_and_unspecified_values_are_refused_with_the_choices() {
        let err = parse::<Platform>("myspace").unwrap_err();
        assert!(err.contains("unknown platform \"myspace\""), "{err}");
        assert!(err.contains("instagram, tiktok, youtube"), "{err}");
        assert!(parse::<Platform>("unspecified").is_err());
        assert!(parse::<Tier>("").is_err());
    }

    #[test]
    fn labels_and_names_render_raw_values() {
        assert_eq!(label::<CompensationKind>(2), "gift card");
        assert_eq!(label::<DeliverableKind>(1), "feed post");
        assert_eq!(label::<Platform>(0), "-");
        assert_eq!(label::<Platform>(99), "platform 99");
        assert_eq!(proto_name::<Platform>(1), Some("PLATFORM_INSTAGRAM"));
        assert_eq!(proto_name::<Platform>(99), None);
    }

    #[test]
    fn influencer_names_accept_full_and_bare_ids() {
        let id = "0190f3a1-7b2c-7d4e-8f00-123456789abc";
        assert_eq!(influencer_name(id), Ok(format!("influencers/{id}")));
        assert_eq!(
            influencer_name(&format!("influencers/{id}")),
            Ok(format!("influencers/{id}"))
        );
        assert!(influencer_name("").is_err());
        assert!(influencer_name("influencers/").is_err());
        assert!(influencer_name("campaigns/abc").is_err());
        assert!(influencer_name("influencers/a/b").is_err());
        assert_eq!(offer_name("abc"), Ok("offers/abc".to_owned()));
        assert_eq!(contract_name(" contracts/abc "), Ok("contracts/abc".to_owned()));
        let err = contract_name("offers/abc").unwrap_err();
        assert!(err.contains("not a contract name"), "{err}");
    }

    #[test]
    fn contracts_values_parse_from_labels() {
        assert_eq!(parse::<UsageChannel>("paid-social"), Ok(UsageChannel::PaidSocial));
        assert_eq!(parse::<OfferState>("open"), Ok(OfferState::Open));
        assert_eq!(parse::<ContractState>("signed-by-one"), Ok(ContractState::SignedByOne));
        assert_eq!(label::<DeliverableState>(3), "changes requested");
        assert_eq!(label::<DisclosureVerdict>(2), "non compliant");
    }
}
