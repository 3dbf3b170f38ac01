//! The tenant's chart of accounts: which ledger account each kind of value sits in, by a name
//! made from what owns it, so every write finds the same account without a lookup. A brand's
//! deposits come from its funding account into a campaign's budget; a contract's cash and
//! gift cards are held on the budget (products on the campaign's inventory) for the
//! influencer's payable account; paid payouts move from payable to the provider's clearing
//! account.

use crate::ledger::{AccountFlags, AccountKind, AccountSpec};

/// Where a brand's deposits come from, per currency. It may go below zero: that is what the
/// brand paid in.
pub fn funding(tenant: &str, currency: &str) -> AccountSpec {
    spec(
        tenant,
        format!("funding.{currency}"),
        AccountKind::Funding,
        currency,
        "",
        AccountFlags::default(),
    )
}

/// A campaign's budget: never below zero, so a hold it cannot cover fails.
pub fn budget(tenant: &str, campaign_id: &str, currency: &str) -> AccountSpec {
    spec(
        tenant,
        format!("budget.{campaign_id}.{currency}"),
        AccountKind::Budget,
        currency,
        &format!("campaigns/{campaign_id}"),
        AccountFlags {
            debits_must_not_exceed_credits: true,
            ..AccountFlags::default()
        },
    )
}

/// A campaign's products at declared value: the brand's own goods, so not limited by deposits.
pub fn inventory(tenant: &str, campaign_id: &str, currency: &str) -> AccountSpec {
    spec(
        tenant,
        format!("inventory.{campaign_id}.{currency}"),
        AccountKind::Inventory,
        currency,
        &format!("campaigns/{campaign_id}"),
        AccountFlags::default(),
    )
}

/// What is owed to an influencer: never paid out beyond what was released to it.
pub fn payable(tenant: &str, influencer_id: &str, currency: &str) -> AccountSpec {
    spec(
        tenant,
        format!("payable.{influencer_id}.{currency}"),
        AccountKind::Payable,
        currency,
        &format!("influencers/{influencer_id}"),
        AccountFlags {
            debits_must_not_exceed_credits: true,
            ..AccountFlags::default()
        },
    )
}

/// Value handed to a provider ("stripe", "paypal", "tremendous", "shipment").
pub fn clearing(tenant: &str, provider: &str, currency: &str) -> AccountSpec {
    spec(
        tenant,
        format!("clearing.{provider}.{currency}"),
        AccountKind::Clearing,
        currency,
        &format!("providers/{provider}"),
        AccountFlags::default(),
    )
}

fn spec(tenant: &str, id: String, kind: AccountKind, currency: &str, owner: &str, flags: AccountFlags) -> AccountSpec {
    AccountSpec {
        id,
        tenant: tenant.to_owned(),
        kind,
        currency: currency.to_owned(),
        flags,
        owner: owner.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_limits_sit_where_money_must_not_go_negative() {
        let b = budget("acme", "c1", "USD");
        assert_eq!((b.id.as_str(), b.owner.as_str()), ("budget.c1.USD", "campaigns/c1"));
        assert!(b.flags.debits_must_not_exceed_credits);
        assert!(payable("acme", "i1", "EUR").flags.debits_must_not_exceed_credits);
        assert!(!funding("acme", "USD").flags.debits_must_not_exceed_credits);
        assert!(!inventory("acme", "c1", "USD").flags.debits_must_not_exceed_credits);
        assert_eq!(clearing("acme", "stripe", "USD").id, "clearing.stripe.USD");
    }
}
