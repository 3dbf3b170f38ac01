//! Whose campaigns and contracts they are. Measurement does not own campaigns (matching does)
//! nor contracts (contracts does), yet its writes name them: links, promo codes and settings
//! name a campaign, links and post metrics a contract's deliverable. The rule, here and
//! nowhere else: a tenant writes only under names that are its own or nobody's yet.
//!
//! - The owning service's events say whose a name is (`announce`): matching's
//!   `CampaignChanged` and shortlist decisions, contracts' activation, approval and overdue
//!   events, payouts' payouts. An event wins over a claim.
//! - A name no event has named yet becomes the first writer's (`claim`), so two tenants can
//!   never share one; a later event of the owning service moves it to its owner.
//! - A write under another tenant's name is NOT_FOUND naming it, as a read of it is: the caller
//!   learns nothing it could not learn by reading.

use chorus_kit::Error;
use chorus_kit::names::{DeliverableName, ResourceName};
use sqlx::AnyConnection;

/// What kind of name an owner row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owned {
    Campaign,
    Contract,
}

impl Owned {
    fn kind(self) -> &'static str {
        match self {
            Owned::Campaign => "campaign",
            Owned::Contract => "contract",
        }
    }

    fn name(self, id: &str) -> String {
        match self {
            Owned::Campaign => format!("campaigns/{id}"),
            Owned::Contract => format!("contracts/{id}"),
        }
    }
}

/// The contract id of "contracts/{c}/deliverables/{n}", when it is one.
pub fn contract_of(deliverable: &str) -> Option<String> {
    DeliverableName::parse(deliverable).map(|d| d.contract().id().to_owned())
}

/// The owning service's event says `id` is `tenant`'s: recorded, replacing a first writer's
/// claim (never another event's word). Nothing for an event without a tenant or a name.
pub async fn announce(conn: &mut AnyConnection, tenant: &str, owned: Owned, id: &str) -> Result<(), Error> {
    if tenant.is_empty() || id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO owners (kind, id, tenant, announced) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (kind, id) DO UPDATE SET tenant = excluded.tenant, announced = 1 WHERE owners.announced = 0",
    )
    .bind(owned.kind())
    .bind(id)
    .bind(tenant)
    .execute(conn)
    .await?;
    Ok(())
}

/// A write of `tenant`'s under these names, inside its transaction: each is the tenant's, or
/// nobody's and becomes the tenant's. NOT_FOUND naming the first that is another tenant's.
pub async fn claim(conn: &mut AnyConnection, tenant: &str, names: &[(Owned, &str)]) -> Result<(), Error> {
    for (owned, id) in names {
        if id.is_empty() {
            continue;
        }
        sqlx::query("INSERT INTO owners (kind, id, tenant, announced) VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING")
            .bind(owned.kind())
            .bind(*id)
            .bind(tenant)
            .execute(&mut *conn)
            .await?;
        let owner = owner(conn, *owned, id).await?;
        if owner.as_deref() != Some(tenant) {
            return Err(Error::not_found(owned.name(id)));
        }
    }
    Ok(())
}

/// For reads: NOT_FOUND naming `id` when it is another tenant's.
pub async fn check(conn: &mut AnyConnection, tenant: &str, owned: Owned, id: &str) -> Result<(), Error> {
    match owner(conn, owned, id).await? {
        Some(t) if t != tenant => Err(Error::not_found(owned.name(id))),
        _ => Ok(()),
    }
}

async fn owner(conn: &mut AnyConnection, owned: Owned, id: &str) -> Result<Option<String>, Error> {
    Ok(
        sqlx::query_scalar("SELECT tenant FROM owners WHERE kind = $1 AND id = $2")
            .bind(owned.kind())
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}
