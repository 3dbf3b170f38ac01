//! The gRPC handlers: they find who is calling (a brand's tenant or an influencer), check the
//! scope, parse requests into domain values and hand the work to the store, the runner or the
//! payee book. Money rules are the ledger's; payout moves are the store's.

use std::sync::Arc;

use chorus_catalog::money::Money as Amount;
use chorus_kit::auth::{Caller, role};
use chorus_kit::clock::{micros, timestamp};
use chorus_kit::idempotency::{Idempotency, key_of};
use chorus_kit::names::{CampaignName, ContractName, InfluencerName, PayoutName, ResourceName};
use chorus_kit::{Error, Violations, paging};
use chorus_proto::payouts::ledger_service_server::LedgerService;
use chorus_proto::payouts::*;
use chorus_proto::types::Money;
use tonic::{Request, Response, Status};

use crate::ledger::{self, Ledger, TransferSpec};
use crate::store::{Filter, Store, Who};

pub const READ: &str = "payouts.read";
pub const WRITE: &str = "payouts.write";
/// An influencer's scope: their own payee profile, payouts and statement.
pub const SELF: &str = "payouts.self";
/// Full tax identifiers in the year-end report.
pub const TAX: &str = "payouts.tax";
/// Every payouts scope, for tokens that may do anything (`chorus up`'s dev token).
pub const SCOPES: &[&str] = &[READ, WRITE, SELF, TAX];

const PAGE: usize = 50;
const MAX_PAGE: usize = 1_000;

/// Who is calling, for a read: an influencer (payouts.self) sees their own, a brand
/// (payouts.read) its tenant's.
pub fn reader(c: &Caller) -> Result<Who, Error> {
    if c.role == role::INFLUENCER {
        c.require(SELF)?;
        let id = c
            .influencer()
            .ok_or_else(|| Error::permission_denied("the token names no influencer"))?;
        return Ok(Who::Influencer(id.to_owned()));
    }
    c.require(READ)?;
    brand(c).map(Who::Brand)
}

/// A brand's tenant, for what only brands do.
pub fn brand(c: &Caller) -> Result<String, Error> {
    if c.role == role::INFLUENCER {
        return Err(Error::permission_denied("influencers cannot do this; their brand does"));
    }
    if c.tenant.is_empty() {
        return Err(Error::permission_denied(
            "the token names no tenant; budgets and payouts belong to one",
        ));
    }
    Ok(c.tenant.clone())
}

fn tenant_of(who: &Who) -> Result<&str, Error> {
    match who {
        Who::Brand(t) => Ok(t),
        Who::Influencer(_) => Err(Error::permission_denied(
            "the ledger is the brand's; influencers read their statement",
        )),
    }
}

/// A positive amount of a known currency.
fn positive(m: Option<&Money>, field: &str) -> Result<Amount, Error> {
    let m = m.ok_or_else(|| Error::invalid_field(field, "required"))?;
    let a = Amount::from_proto(m).map_err(|e| Error::invalid_field(format!("{field}.{}", e.field()), e.to_string()))?;
    if m.amount_minor <= 0 {
        return Err(Error::invalid_field(
            format!("{field}.amount_minor"),
            "must be positive",
        ));
    }
    Ok(a)
}

/// A client-chosen id: 1..64 characters of `[A-Za-z0-9._:-]`.
fn client_id(id: &str, field: &str) -> Result<(), Error> {
    let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_field(field, "1..64 characters of A-Z a-z 0-9 . _ : -"))
    }
}

/// An account's name: "ledgerAccounts/{id}".
fn account_id<'a>(name: &'a str, field: &str) -> Result<&'a str, Error> {
    match name.strip_prefix("ledgerAccounts/") {
        Some(id) if !id.is_empty() && id.len() <= 200 && !id.contains('/') => Ok(id),
        _ if name.is_empty() => Err(Error::invalid_field(field, "required")),
        _ => Err(Error::invalid_field(field, "must be ledgerAccounts/{id}")),
    }
}

pub fn balance_of(b: &ledger::Balance, kind: ledger::AccountKind) -> Balance {
    let credit_normal = matches!(
        kind,
        ledger::AccountKind::Budget | ledger::AccountKind::Payable | ledger::AccountKind::Clearing
    );
    Balance {
        debits_pending: b.debits_pending,
        debits_posted: b.debits_posted,
        credits_pending: b.credits_pending,
        credits_posted: b.credits_posted,
        net: if credit_normal {
            b.credits_posted - b.debits_posted
        } else {
            b.debits_posted - b.credits_posted
        },
    }
}

pub fn account_of(a: &ledger::Account) -> Account {
    Account {
        name: format!("ledgerAccounts/{}", a.id),
        kind: account_kind(a.kind) as i32,
        currency_code: a.currency.clone(),
        owner: a.owner.clone(),
        balance: Some(balance_of(&a.balance(), a.kind)),
        create_time: Some(timestamp(a.created_at)),
    }
}

fn account_kind(k: ledger::AccountKind) -> AccountKind {
    match k {
        ledger::AccountKind::Funding => AccountKind::BrandFunding,
        ledger::AccountKind::Budget => AccountKind::CampaignBudget,
        ledger::AccountKind::Payable => AccountKind::Payable,
        ledger::AccountKind::Clearing => AccountKind::ProviderClearing,
        ledger::AccountKind::Fees => AccountKind::Fees,
        ledger::AccountKind::Inventory => AccountKind::Inventory,
    }
}

pub fn transfer_of(t: &TransferSpec, at: i64) -> Transfer {
    let (kind, pending) = match &t.kind {
        ledger::TransferKind::Single => (TransferKind::Single, String::new()),
        ledger::TransferKind::Pending => (TransferKind::Pending, String::new()),
        ledger::TransferKind::PostPending { pending_id } => (TransferKind::PostPending, pending_id.clone()),
        ledger::TransferKind::VoidPending { pending_id } => (TransferKind::VoidPending, pending_id.clone()),
    };
    Transfer {
        name: format!("ledgerTransfers/{}", t.id),
        debit_account: format!("ledgerAccounts/{}", t.debit_account),
        credit_account: format!("ledgerAccounts/{}", t.credit_account),
        amount: Some(Money {
            currency_code: t.currency.clone(),
            amount_minor: t.amount,
        }),
        kind: kind as i32,
        pending_transfer: if pending.is_empty() {
            pending
        } else {
            format!("ledgerTransfers/{pending}")
        },
        code: t.code.clone(),
        reference: t.reference.clone(),
        create_time: Some(timestamp(at)),
    }
}

/// A written transfer's fields, as a spec.
fn spec_of(t: &ledger::Transfer) -> TransferSpec {
    TransferSpec {
        id: t.id.clone(),
        tenant: t.tenant.clone(),
        debit_account: t.debit_account.clone(),
        credit_account: t.credit_account.clone(),
        amount: t.amount,
        currency: t.currency.clone(),
        kind: t.kind.clone(),
        linked: t.linked,
        code: t.code.clone(),
        reference: t.reference.clone(),
    }
}

/// The tenant's account `id`, or NOT_FOUND naming `name`.
async fn one_account(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    id: &str,
    name: &str,
) -> Result<ledger::Account, Error> {
    Ledger::accounts(conn, tenant, &[id.to_owned()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::not_found(name))
}

#[derive(Debug, Clone)]
pub struct LedgerApi {
    store: Store,
    keys: Idempotency,
}

impl LedgerApi {
    pub fn new(store: Store, keys: Idempotency) -> Self {
        LedgerApi { store, keys }
    }
}

#[tonic::async_trait]
impl LedgerService for LedgerApi {
    async fn fund_campaign(
        &self,
        request: Request<FundCampaignRequest>,
    ) -> Result<Response<FundCampaignResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        caller.require(WRITE)?;
        let tenant = brand(&caller)?;
        let r = request.get_ref();
        let mut v = Violations::new();
        let campaign = v.take(CampaignName::from_field(&r.campaign, "campaign"))?;
        v.absorb("", client_id(&r.deposit_id, "deposit_id"))?;
        let amount = v.take(positive(r.amount.as_ref(), "amount"))?;
        let source = match &r.source {
            Some(fund_campaign_request::Source::ProviderCharge(s)) if !s.is_empty() && s.len() <= 200 => {
                format!("charge:{s}")
            }
            Some(fund_campaign_request::Source::BankTransfer(s)) if !s.is_empty() && s.len() <= 200 => {
                format!("bank:{s}")
            }
            _ => {
                v.add("source", "provider_charge or bank_transfer, 1..200 characters");
                String::new()
            }
        };
        v.finish()?;
        let (Some(campaign), Some(amount)) = (campaign, amount) else {
            return Err(Error::invalid_field("campaign", "required").into());
        };
        let store = self.store.clone();
        let deposit_id = r.deposit_id.clone();
        // The deposit id is the idempotency key: a repeat answers the first deposit.
        let key = if key_of(&request, "").is_empty() {
            format!("deposit:{deposit_id}")
        } else {
            key_of(&request, "")
        };
        let response = self
            .keys
            .once(
                &caller,
                "FundCampaign",
                &key,
                request.get_ref(),
                move |claim| async move {
                    store
                        .fund(&tenant, campaign.id(), &deposit_id, &amount.to_proto(), &source, &claim)
                        .await
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn get_campaign_budget(
        &self,
        request: Request<GetCampaignBudgetRequest>,
    ) -> Result<Response<GetCampaignBudgetResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(READ)?;
        let tenant = brand(caller)?;
        let r = request.get_ref();
        let campaign = CampaignName::from_field(&r.campaign, "campaign")?;
        let mut conn = self.store.db().pool.acquire().await.map_err(Error::from)?;
        let owned = Ledger::list_accounts(&mut conn, &tenant, &campaign.to_string(), None, 100).await?;
        let budgets: Vec<&ledger::Account> = owned
            .iter()
            .filter(|a| a.kind == ledger::AccountKind::Budget)
            .filter(|a| r.currency_code.is_empty() || a.currency == r.currency_code)
            .collect();
        let budget = match budgets.as_slice() {
            [] => return Err(Error::not_found(format!("a budget of {campaign}: fund it first")).into()),
            [one] => *one,
            _ => {
                return Err(
                    Error::invalid_field("currency_code", "the budget has several currencies: name one").into(),
                );
            }
        };
        let c = &budget.currency;
        let m = |minor| {
            Some(Money {
                currency_code: c.clone(),
                amount_minor: minor,
            })
        };
        Ok(Response::new(GetCampaignBudgetResponse {
            campaign: campaign.to_string(),
            deposited: m(budget.credits_posted),
            held: m(budget.debits_pending),
            released: m(budget.debits_posted),
            available: m(budget.credits_posted - budget.debits_posted - budget.debits_pending),
        }))
    }

    async fn list_accounts(
        &self,
        request: Request<ListAccountsRequest>,
    ) -> Result<Response<ListAccountsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(READ)?;
        let tenant = brand(caller)?;
        let r = request.get_ref();
        if !r.owner.is_empty() && CampaignName::parse(&r.owner).is_none() && InfluencerName::parse(&r.owner).is_none() {
            return Err(Error::invalid_field("owner", "campaigns/{id} or influencers/{id}").into());
        }
        let size = paging::page_size(r.page_size, PAGE, MAX_PAGE)?;
        let query = paging::fingerprint(&("accounts", &tenant, &r.owner));
        let after: Option<String> = paging::decode(&r.page_token, query)?;
        let mut conn = self.store.db().pool.acquire().await.map_err(Error::from)?;
        let mut found = Ledger::list_accounts(&mut conn, &tenant, &r.owner, after.as_deref(), size + 1).await?;
        let next = if found.len() > size {
            found.truncate(size);
            found.last().map(|a| paging::encode(query, &a.id)).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListAccountsResponse {
            accounts: found.iter().map(account_of).collect(),
            next_page_token: next,
        }))
    }

    async fn get_account_balance(
        &self,
        request: Request<GetAccountBalanceRequest>,
    ) -> Result<Response<GetAccountBalanceResponse>, Status> {
        let caller = Caller::of(&request)?;
        let who = reader(caller)?;
        let tenant = tenant_of(&who)?;
        let r = request.get_ref();
        let id = account_id(&r.account, "account")?;
        let mut conn = self.store.db().pool.acquire().await.map_err(Error::from)?;
        let account = one_account(&mut conn, tenant, id, &r.account).await?;
        let now = self.store.clock().now_micros();
        let at = r.as_of_time.as_ref().map_or(now, micros);
        let balance = if r.as_of_time.is_none() {
            account.balance()
        } else {
            Ledger::balance_as_of(&mut conn, tenant, id, at)
                .await?
                .unwrap_or_default()
        };
        Ok(Response::new(GetAccountBalanceResponse {
            balance: Some(balance_of(&balance, account.kind)),
            account: Some(account_of(&account)),
            as_of_time: Some(timestamp(at)),
        }))
    }

    async fn list_account_transfers(
        &self,
        request: Request<ListAccountTransfersRequest>,
    ) -> Result<Response<ListAccountTransfersResponse>, Status> {
        let caller = Caller::of(&request)?;
        let who = reader(caller)?;
        let tenant = tenant_of(&who)?;
        let r = request.get_ref();
        let id = account_id(&r.account, "account")?;
        let size = paging::page_size(r.page_size, PAGE, MAX_PAGE)?;
        let query = paging::fingerprint(&("transfers", tenant, id));
        let after: Option<i64> = paging::decode(&r.page_token, query)?;
        let mut conn = self.store.db().pool.acquire().await.map_err(Error::from)?;
        let account = one_account(&mut conn, tenant, id, &r.account).await?;
        let (entries, next) = Ledger::history(&mut conn, tenant, id, after, size).await?;
        Ok(Response::new(ListAccountTransfersResponse {
            entries: entries
                .iter()
                .map(|(t, b)| AccountEntry {
                    transfer: Some(transfer_of(&spec_of(t), t.timestamp)),
                    balance_after: Some(balance_of(b, account.kind)),
                })
                .collect(),
            next_page_token: next.map(|c| paging::encode(query, &c)).unwrap_or_default(),
        }))
    }
}

/// The payouts handlers.
#[derive(Debug, Clone)]
pub struct PayoutsApi {
    store: Store,
    keys: Idempotency,
    pub(crate) extra: Arc<crate::Extra>,
}

impl PayoutsApi {
    pub fn new(store: Store, keys: Idempotency, extra: Arc<crate::Extra>) -> Self {
        PayoutsApi { store, keys, extra }
    }

    fn filter(r: &ListPayoutsRequest) -> Result<Filter, Error> {
        let mut v = Violations::new();
        let campaign = if r.campaign.is_empty() {
            None
        } else {
            v.take(CampaignName::from_field(&r.campaign, "campaign"))?
        };
        let contract = if r.contract.is_empty() {
            None
        } else {
            v.take(ContractName::from_field(&r.contract, "contract"))?
        };
        let influencer = if r.influencer.is_empty() {
            None
        } else {
            v.take(InfluencerName::from_field(&r.influencer, "influencer"))?
        };
        let state = match PayoutState::try_from(r.state) {
            Ok(PayoutState::Unspecified) => None,
            Ok(s) => Some(s),
            Err(_) => {
                v.add("state", "unknown state");
                None
            }
        };
        v.finish()?;
        Ok(Filter {
            campaign_id: campaign.map(|c| c.id().to_owned()),
            contract_id: contract.map(|c| c.id().to_owned()),
            influencer_id: influencer.map(|c| c.id().to_owned()),
            state,
        })
    }
}

/// GetPayout and ListPayouts, shared by the service's handler impl in `lib.rs`' wiring.
impl PayoutsApi {
    pub async fn get(&self, request: &Request<GetPayoutRequest>) -> Result<GetPayoutResponse, Error> {
        let who = reader(Caller::of(request)?)?;
        let name = PayoutName::from_field(&request.get_ref().name, "name")?;
        let payout = self
            .store
            .payout(&who, name.id())
            .await?
            .ok_or_else(|| Error::not_found(&name))?;
        Ok(GetPayoutResponse { payout: Some(payout) })
    }

    pub async fn list(&self, request: &Request<ListPayoutsRequest>) -> Result<ListPayoutsResponse, Error> {
        let who = reader(Caller::of(request)?)?;
        let r = request.get_ref();
        let filter = Self::filter(r)?;
        let size = paging::page_size(r.page_size, PAGE, MAX_PAGE)?;
        let query = paging::fingerprint(&("payouts", &who, &filter));
        let after: Option<String> = paging::decode(&r.page_token, query)?;
        let mut payouts = self
            .store
            .payouts(&who, &filter, after.as_deref(), (size + 1) as i64)
            .await?;
        let next = if payouts.len() > size {
            payouts.truncate(size);
            payouts
                .last()
                .and_then(|p| PayoutName::parse(&p.name))
                .map(|n| paging::encode(query, &n.id().to_owned()))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListPayoutsResponse {
            payouts,
            next_page_token: next,
        })
    }

    pub fn keys(&self) -> &Idempotency {
        &self.keys
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_and_account_names_are_checked() {
        assert!(client_id("dep-2026-11:01", "deposit_id").is_ok());
        assert!(client_id("", "deposit_id").is_err());
        assert!(client_id("a b", "deposit_id").is_err());
        assert!(client_id(&"x".repeat(65), "deposit_id").is_err());
        assert_eq!(
            account_id("ledgerAccounts/budget.c.USD", "account").unwrap(),
            "budget.c.USD"
        );
        assert!(account_id("accounts/x", "account").is_err());
        assert!(account_id("ledgerAccounts/a/b", "account").is_err());
    }

    #[test]
    fn amounts_must_be_positive_and_of_a_known_currency() {
        let m = |c: &str, n| Money {
            currency_code: c.into(),
            amount_minor: n,
        };
        assert!(positive(Some(&m("USD", 100)), "amount").is_ok());
        let e = positive(Some(&m("USD", 0)), "amount").unwrap_err();
        assert_eq!(e.violations()[0].field, "amount.amount_minor");
        let e = positive(Some(&m("usd", 100)), "amount").unwrap_err();
        assert_eq!(e.violations()[0].field, "amount.currency_code");
        assert!(positive(None, "amount").is_err());
    }

    #[test]
    fn net_balance_reads_the_way_an_account_normally_runs() {
        let b = ledger::Balance {
            debits_pending: 0,
            debits_posted: 300,
            credits_pending: 0,
            credits_posted: 1_000,
        };
        assert_eq!(balance_of(&b, ledger::AccountKind::Budget).net, 700);
        assert_eq!(balance_of(&b, ledger::AccountKind::Funding).net, -700);
    }
}
