//! The ledger's rules, without SQL: what accounts and transfers are, and how a batch of
//! transfers applies to balances held in memory (TigerBeetle's model: four balances per
//! account, two-phase transfers, linked chains, client-chosen ids). The store loads and locks
//! what a batch touches, runs [`apply`] and writes back what it says changed.

use std::collections::HashMap;
use std::fmt;

/// What an account is for; the service opens one of each per tenant, campaign, influencer or
/// provider and currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// Where a brand's deposits come from; may go negative.
    Funding,
    /// A campaign's budget in one currency; must not go negative.
    Budget,
    /// What is owed to an influencer in one currency.
    Payable,
    /// Money handed to a provider (Stripe, PayPal, Tremendous) and not yet confirmed.
    Clearing,
    Fees,
    /// Products at their declared value, per campaign.
    Inventory,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Funding => "funding",
            AccountKind::Budget => "budget",
            AccountKind::Payable => "payable",
            AccountKind::Clearing => "clearing",
            AccountKind::Fees => "fees",
            AccountKind::Inventory => "inventory",
        }
    }

    pub fn parse(s: &str) -> Option<AccountKind> {
        Some(match s {
            "funding" => AccountKind::Funding,
            "budget" => AccountKind::Budget,
            "payable" => AccountKind::Payable,
            "clearing" => AccountKind::Clearing,
            "fees" => AccountKind::Fees,
            "inventory" => AccountKind::Inventory,
            _ => return None,
        })
    }
}

/// Limits an account enforces on every transfer that would raise its debits or credits
/// (pending ones count: a hold reserves the money).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct AccountFlags {
    /// `debits_pending + debits_posted <= credits_posted`: a budget cannot go negative.
    pub debits_must_not_exceed_credits: bool,
    /// `credits_pending + credits_posted <= debits_posted`.
    pub credits_must_not_exceed_debits: bool,
}

impl AccountFlags {
    /// A budget's flags.
    pub const NO_OVERDRAFT: AccountFlags = AccountFlags {
        debits_must_not_exceed_credits: true,
        credits_must_not_exceed_debits: false,
    };

    pub fn bits(self) -> i64 {
        i64::from(self.debits_must_not_exceed_credits) | (i64::from(self.credits_must_not_exceed_debits) << 1)
    }

    pub fn from_bits(bits: i64) -> AccountFlags {
        AccountFlags {
            debits_must_not_exceed_credits: bits & 1 != 0,
            credits_must_not_exceed_debits: bits & 2 != 0,
        }
    }
}

/// An account to open. `id` is the client's, unique per tenant, and makes creation idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSpec {
    pub id: String,
    pub tenant: String,
    pub kind: AccountKind,
    /// ISO 4217, upper case (`USD`).
    pub currency: String,
    pub flags: AccountFlags,
    /// The resource the account belongs to: `campaigns/...`, `influencers/...`, `providers/...`.
    pub owner: String,
}

/// An account's four balances, in minor units of its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
}

impl Balance {
    /// Credits minus debits, posted only: what a credit-normal account (a budget, a payable)
    /// holds.
    pub fn net_posted(&self) -> i64 {
        self.credits_posted.saturating_sub(self.debits_posted)
    }
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub tenant: String,
    pub kind: AccountKind,
    pub currency: String,
    pub flags: AccountFlags,
    pub owner: String,
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
    /// Unix micros.
    pub created_at: i64,
    /// Unix micros of the last transfer that touched it (its creation time before any).
    pub updated_at: i64,
}

impl Account {
    pub fn balance(&self) -> Balance {
        Balance {
            debits_pending: self.debits_pending,
            debits_posted: self.debits_posted,
            credits_pending: self.credits_pending,
            credits_posted: self.credits_posted,
        }
    }

    fn set_balance(&mut self, b: Balance) {
        self.debits_pending = b.debits_pending;
        self.debits_posted = b.debits_posted;
        self.credits_pending = b.credits_pending;
        self.credits_posted = b.credits_posted;
    }

    pub fn spec(&self) -> AccountSpec {
        AccountSpec {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            kind: self.kind,
            currency: self.currency.clone(),
            flags: self.flags,
            owner: self.owner.clone(),
        }
    }
}

/// What a transfer does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransferKind {
    /// Moves `amount` at once (posted on both accounts).
    Single,
    /// Holds `amount`: pending on both accounts until posted or voided.
    Pending,
    /// Posts `amount` of what a pending transfer still holds; 0 posts all that remains. Several
    /// partial posts may follow one another; the pending closes when nothing remains.
    PostPending { pending_id: String },
    /// Releases all that a pending transfer still holds; `amount` is 0 or exactly that.
    VoidPending { pending_id: String },
}

impl TransferKind {
    pub(crate) fn code(&self) -> i64 {
        match self {
            TransferKind::Single => 0,
            TransferKind::Pending => 1,
            TransferKind::PostPending { .. } => 2,
            TransferKind::VoidPending { .. } => 3,
        }
    }

    pub(crate) fn pending_id(&self) -> &str {
        match self {
            TransferKind::PostPending { pending_id } | TransferKind::VoidPending { pending_id } => pending_id,
            TransferKind::Single | TransferKind::Pending => "",
        }
    }

    pub(crate) fn from_code(code: i64, pending_id: String) -> Option<TransferKind> {
        Some(match code {
            0 => TransferKind::Single,
            1 => TransferKind::Pending,
            2 => TransferKind::PostPending { pending_id },
            3 => TransferKind::VoidPending { pending_id },
            _ => return None,
        })
    }
}

/// A transfer to make. `id` is the client's, unique per tenant: the idempotency key.
///
/// For `PostPending` and `VoidPending`, `debit_account`, `credit_account` and `currency` may be
/// left empty (they are the pending transfer's) or must equal the pending transfer's; `amount`
/// 0 means "all that remains" and the stored transfer records the amount resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferSpec {
    pub id: String,
    pub tenant: String,
    pub debit_account: String,
    pub credit_account: String,
    /// Minor units, > 0 (0 allowed for post and void, see above).
    pub amount: i64,
    pub currency: String,
    pub kind: TransferKind,
    /// Chains this transfer with the next one: a chain (up to and including the first
    /// transfer that is not linked) is written whole or not at all.
    pub linked: bool,
    /// Why: "hold", "release", "payout", "deposit", ...
    pub code: String,
    /// The contract, deliverable or payout it is for.
    pub reference: String,
}

/// A transfer as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: String,
    pub tenant: String,
    pub debit_account: String,
    pub credit_account: String,
    pub amount: i64,
    pub currency: String,
    pub kind: TransferKind,
    pub linked: bool,
    pub code: String,
    pub reference: String,
    /// Unix micros; strictly increasing along each account's history, and within a batch.
    pub timestamp: i64,
}

/// Where a pending transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingState {
    /// Still holds something.
    Open,
    /// Posted in full, in one or several posts.
    Posted,
    /// What remained was released.
    Voided,
}

impl PendingState {
    pub(crate) fn code(self) -> i64 {
        match self {
            PendingState::Open => 1,
            PendingState::Posted => 2,
            PendingState::Voided => 3,
        }
    }

    pub(crate) fn from_code(code: i64) -> Option<PendingState> {
        Some(match code {
            1 => PendingState::Open,
            2 => PendingState::Posted,
            3 => PendingState::Voided,
            _ => return None,
        })
    }
}

/// A pending transfer's progress: `amount` held at first, `posted` so far, `remaining` still
/// held (0 unless open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub amount: i64,
    pub posted: i64,
    pub remaining: i64,
    pub state: PendingState,
}

/// A stored transfer with what the store keeps beside it: a pending transfer's progress and
/// both accounts' balances right after it (the account history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) transfer: Transfer,
    /// For a pending transfer: posted so far and its state.
    pub(super) hold: Option<(i64, PendingState)>,
    pub(super) debit_after: Balance,
    pub(super) credit_after: Balance,
}

impl Entry {
    pub(super) fn hold(&self) -> Option<Hold> {
        let (posted, state) = self.hold?;
        let remaining = if state == PendingState::Open {
            self.transfer.amount - posted
        } else {
            0
        };
        Some(Hold {
            amount: self.transfer.amount,
            posted,
            remaining,
            state,
        })
    }
}

/// The outcome of one account in `create_accounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountResult {
    Created,
    /// Already there with the same fields: nothing changed.
    Exists,
    /// Already there with another value of `field`: nothing changed.
    ExistsWithDifferentFields {
        field: &'static str,
    },
}

impl AccountResult {
    pub fn is_ok(&self) -> bool {
        matches!(self, AccountResult::Created | AccountResult::Exists)
    }
}

/// The outcome of one transfer in `create_transfers`. Only `Created` writes anything;
/// `Exists` is an idempotent replay (success, nothing written); the rest are refusals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferResult {
    Created,
    Exists,
    ExistsWithDifferentFields {
        id: String,
        field: &'static str,
    },
    /// A malformed field (an empty id, a currency that is not ISO 4217, ...).
    Invalid {
        field: &'static str,
        reason: String,
    },
    InvalidAmount {
        amount: i64,
    },
    SameAccount {
        account: String,
    },
    AccountNotFound {
        account: String,
    },
    CurrencyMismatch {
        account: String,
        account_currency: String,
        transfer_currency: String,
    },
    /// The debit account has `debits_must_not_exceed_credits` and `amount` is more than its
    /// `balance` (credits posted minus debits posted and pending).
    InsufficientFunds {
        account: String,
        currency: String,
        balance: i64,
        amount: i64,
        shortfall: i64,
    },
    /// The credit account has `credits_must_not_exceed_debits` and `amount` is more than its
    /// `balance` (debits posted minus credits posted and pending).
    ExceedsDebits {
        account: String,
        currency: String,
        balance: i64,
        amount: i64,
        excess: i64,
    },
    /// A balance would not fit in an i64.
    Overflow {
        account: String,
    },
    PendingNotFound {
        pending: String,
    },
    /// The transfer named to post or void is not a pending one.
    NotPending {
        pending: String,
    },
    /// An account or currency given with a post or void differs from the pending transfer's.
    PendingDifferentField {
        pending: String,
        field: &'static str,
        pending_value: String,
        given: String,
    },
    PendingAlreadyPosted {
        pending: String,
    },
    PendingAlreadyVoided {
        pending: String,
    },
    ExceedsPendingAmount {
        pending: String,
        remaining: i64,
        amount: i64,
    },
    /// Another transfer of its linked chain failed; nothing of the chain was written.
    LinkedEventFailed,
    /// The batch ends inside a linked chain (its last transfer is linked).
    LinkedEventChainOpen,
}

impl TransferResult {
    /// Created or an idempotent replay.
    pub fn is_ok(&self) -> bool {
        matches!(self, TransferResult::Created | TransferResult::Exists)
    }

    /// A human sentence naming the accounts and amounts, for FAILED_PRECONDITION.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// A stable UPPER_SNAKE_CASE name, for `ErrorInfo` reasons and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            TransferResult::Created => "CREATED",
            TransferResult::Exists => "EXISTS",
            TransferResult::ExistsWithDifferentFields { .. } => "EXISTS_WITH_DIFFERENT_FIELDS",
            TransferResult::Invalid { .. } => "INVALID",
            TransferResult::InvalidAmount { .. } => "INVALID_AMOUNT",
            TransferResult::SameAccount { .. } => "SAME_ACCOUNT",
            TransferResult::AccountNotFound { .. } => "ACCOUNT_NOT_FOUND",
            TransferResult::CurrencyMismatch { .. } => "CURRENCY_MISMATCH",
            TransferResult::InsufficientFunds { .. } => "INSUFFICIENT_FUNDS",
            TransferResult::ExceedsDebits { .. } => "EXCEEDS_DEBITS",
            TransferResult::Overflow { .. } => "OVERFLOW",
            TransferResult::PendingNotFound { .. } => "PENDING_NOT_FOUND",
            TransferResult::NotPending { .. } => "NOT_PENDING",
            TransferResult::PendingDifferentField { .. } => "PENDING_DIFFERENT_FIELD",
            TransferResult::PendingAlreadyPosted { .. } => "PENDING_ALREADY_POSTED",
            TransferResult::PendingAlreadyVoided { .. } => "PENDING_ALREADY_VOIDED",
            TransferResult::ExceedsPendingAmount { .. } => "EXCEEDS_PENDING_AMOUNT",
            TransferResult::LinkedEventFailed => "LINKED_EVENT_FAILED",
            TransferResult::LinkedEventChainOpen => "LINKED_EVENT_CHAIN_OPEN",
        }
    }
}

impl fmt::Display for TransferResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TransferResult as R;
        match self {
            R::Created => write!(f, "created"),
            R::Exists => write!(f, "already made with the same fields"),
            R::ExistsWithDifferentFields { id, field } => {
                write!(f, "transfer {id} already exists with a different {field}")
            }
            R::Invalid { field, reason } => write!(f, "{field}: {reason}"),
            R::InvalidAmount { amount } => write!(f, "amount {amount} is not a positive number of minor units"),
            R::SameAccount { account } => write!(f, "account {account} cannot be both debited and credited"),
            R::AccountNotFound { account } => write!(f, "account {account} not found"),
            R::CurrencyMismatch {
                account,
                account_currency,
                transfer_currency,
            } => write!(
                f,
                "account {account} is in {account_currency}, the transfer is in {transfer_currency}"
            ),
            R::InsufficientFunds {
                account,
                currency,
                balance,
                amount,
                shortfall,
            } => write!(
                f,
                "account {account} has {balance} {currency} available, the transfer needs {amount}: short by {shortfall} (minor units)"
            ),
            R::ExceedsDebits {
                account,
                currency,
                balance,
                amount,
                excess,
            } => write!(
                f,
                "account {account} may take {balance} {currency} more credits, the transfer brings {amount}: {excess} too many (minor units)"
            ),
            R::Overflow { account } => write!(f, "a balance of account {account} would overflow"),
            R::PendingNotFound { pending } => write!(f, "pending transfer {pending} not found"),
            R::NotPending { pending } => write!(f, "transfer {pending} is not a pending transfer"),
            R::PendingDifferentField {
                pending,
                field,
                pending_value,
                given,
            } => write!(
                f,
                "pending transfer {pending} has {field} {pending_value}, this transfer gives {given}"
            ),
            R::PendingAlreadyPosted { pending } => write!(f, "pending transfer {pending} is already posted in full"),
            R::PendingAlreadyVoided { pending } => write!(f, "pending transfer {pending} is already voided"),
            R::ExceedsPendingAmount {
                pending,
                remaining,
                amount,
            } => write!(
                f,
                "pending transfer {pending} holds {remaining} more, the transfer asks for {amount} (minor units)"
            ),
            R::LinkedEventFailed => write!(f, "another transfer of its linked chain failed"),
            R::LinkedEventChainOpen => write!(f, "the batch ends inside a linked chain"),
        }
    }
}

/// Whether `s` looks like an ISO 4217 code: three upper-case ASCII letters.
pub fn is_currency(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// Checks an account spec before it is stored: the field and what is wrong.
pub(super) fn check_account(spec: &AccountSpec) -> Result<(), (&'static str, String)> {
    if spec.id.is_empty() {
        return Err(("id", "must not be empty".into()));
    }
    if spec.tenant.is_empty() {
        return Err(("tenant", "must not be empty".into()));
    }
    if !is_currency(&spec.currency) {
        return Err(("currency", format!("{:?} is not an ISO 4217 code", spec.currency)));
    }
    if spec.flags.debits_must_not_exceed_credits && spec.flags.credits_must_not_exceed_debits {
        return Err(("flags", "the two limits are mutually exclusive".into()));
    }
    Ok(())
}

/// The first field where a stored account differs from a spec with the same id.
pub(super) fn account_difference(existing: &AccountSpec, spec: &AccountSpec) -> Option<&'static str> {
    if existing.kind != spec.kind {
        Some("kind")
    } else if existing.currency != spec.currency {
        Some("currency")
    } else if existing.flags != spec.flags {
        Some("flags")
    } else if existing.owner != spec.owner {
        Some("owner")
    } else {
        None
    }
}

/// What a batch reads and changes: the accounts it touches and the transfers it names (by id,
/// or as the pending transfer to post or void), loaded and locked by the store.
#[derive(Debug, Default)]
pub(super) struct Book {
    pub(super) accounts: HashMap<String, Account>,
    pub(super) transfers: HashMap<String, Entry>,
}

/// What applying a batch changed.
#[derive(Debug, Default)]
pub(super) struct Applied {
    /// One per spec, in order.
    pub(super) results: Vec<TransferResult>,
    /// Ids of the transfers to insert, in order (their entries are in the book).
    pub(super) created: Vec<String>,
    /// Ids of pending transfers loaded from the store whose progress changed.
    pub(super) holds_changed: Vec<String>,
    /// Ids of accounts whose balances changed.
    pub(super) accounts_changed: Vec<String>,
}

/// What to put back when a linked chain fails.
#[derive(Debug)]
enum Undo {
    Account(String, Balance, i64),
    Hold(String, Option<(i64, PendingState)>),
    Created(String),
}

/// Applies `specs` in order to `book`: each transfer is checked against the balances left by
/// the ones before it; a refused transfer changes nothing, and a refused member of a linked
/// chain undoes the whole chain. Timestamps start at `now` or just after the latest one of
/// the accounts in the book, whichever is later, and rise by at least 1 per transfer.
pub(super) fn apply(book: &mut Book, now: i64, specs: &[TransferSpec]) -> Applied {
    let latest = book.accounts.values().map(|a| a.updated_at).max().unwrap_or(i64::MIN);
    let mut batch = Batch {
        book,
        clock: now.max(latest.saturating_add(1)),
        undo: Vec::new(),
        applied: Applied::default(),
    };
    let mut start = 0;
    while start < specs.len() {
        // A chain runs up to the first transfer that is not linked.
        let end = specs[start..]
            .iter()
            .position(|s| !s.linked)
            .map_or(specs.len(), |i| start + i + 1);
        let chain = &specs[start..end];
        let open = chain.last().is_some_and(|s| s.linked);
        batch.chain(chain, open);
        start = end;
    }
    let Batch { mut applied, book, .. } = batch;
    dedup_in_order(&mut applied.holds_changed);
    dedup_in_order(&mut applied.accounts_changed);
    // A hold made and posted within the batch is inserted with its final progress.
    let created: std::collections::HashSet<&String> = applied.created.iter().collect();
    let holds = std::mem::take(&mut applied.holds_changed);
    applied.holds_changed = holds
        .into_iter()
        .filter(|id| !created.contains(id) && book.transfers.contains_key(id))
        .collect();
    applied
}

fn dedup_in_order(ids: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
}

struct Batch<'a> {
    book: &'a mut Book,
    clock: i64,
    undo: Vec<Undo>,
    applied: Applied,
}

impl Batch<'_> {
    /// Applies one chain (a lone transfer is a chain of one); `open` when the batch ended
    /// inside it.
    fn chain(&mut self, chain: &[TransferSpec], open: bool) {
        let first = self.applied.results.len();
        let mut failed = None;
        self.undo.clear();
        if open {
            failed = Some((chain.len() - 1, TransferResult::LinkedEventChainOpen));
        } else {
            for (i, spec) in chain.iter().enumerate() {
                let result = self.one(spec);
                if !result.is_ok() {
                    failed = Some((i, result));
                    break;
                }
                self.applied.results.push(result);
            }
        }
        let Some((at, error)) = failed else {
            return;
        };
        self.rollback();
        self.applied.results.truncate(first);
        for i in 0..chain.len() {
            self.applied.results.push(if i == at {
                error.clone()
            } else {
                TransferResult::LinkedEventFailed
            });
        }
    }

    fn rollback(&mut self) {
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Account(id, balance, updated_at) => {
                    if let Some(a) = self.book.accounts.get_mut(&id) {
                        a.set_balance(balance);
                        a.updated_at = updated_at;
                    }
                }
                Undo::Hold(id, hold) => {
                    if let Some(e) = self.book.transfers.get_mut(&id) {
                        e.hold = hold;
                    }
                }
                Undo::Created(id) => {
                    self.book.transfers.remove(&id);
                    if let Some(pos) = self.applied.created.iter().rposition(|c| *c == id) {
                        self.applied.created.remove(pos);
                    }
                }
            }
        }
    }

    fn one(&mut self, spec: &TransferSpec) -> TransferResult {
        if spec.id.is_empty() {
            return TransferResult::Invalid {
                field: "id",
                reason: "must not be empty".into(),
            };
        }
        if let Some(existing) = self.book.transfers.get(&spec.id) {
            return match transfer_difference(&existing.transfer, spec) {
                None => TransferResult::Exists,
                Some(field) => TransferResult::ExistsWithDifferentFields {
                    id: spec.id.clone(),
                    field,
                },
            };
        }
        match &spec.kind {
            TransferKind::Single | TransferKind::Pending => self.move_money(spec),
            TransferKind::PostPending { pending_id } | TransferKind::VoidPending { pending_id } => {
                self.settle(spec, pending_id)
            }
        }
    }

    /// A single or pending transfer.
    fn move_money(&mut self, spec: &TransferSpec) -> TransferResult {
        if spec.amount <= 0 {
            return TransferResult::InvalidAmount { amount: spec.amount };
        }
        if !is_currency(&spec.currency) {
            return TransferResult::Invalid {
                field: "currency",
                reason: format!("{:?} is not an ISO 4217 code", spec.currency),
            };
        }
        if spec.debit_account == spec.credit_account {
            return TransferResult::SameAccount {
                account: spec.debit_account.clone(),
            };
        }
        let (debit, credit) = match self.accounts(&spec.debit_account, &spec.credit_account, &spec.currency) {
            Ok(pair) => pair,
            Err(refusal) => return refusal,
        };
        let pending = spec.kind == TransferKind::Pending;
        if let Some(refusal) = limits(debit, credit, spec.amount) {
            return refusal;
        }
        let (Some(debit_after), Some(credit_after)) = (
            raise(debit.balance(), spec.amount, pending, true),
            raise(credit.balance(), spec.amount, pending, false),
        ) else {
            let account = if raise(debit.balance(), spec.amount, pending, true).is_none() {
                &debit.id
            } else {
                &credit.id
            };
            return TransferResult::Overflow {
                account: account.clone(),
            };
        };
        let transfer = Transfer {
            id: spec.id.clone(),
            tenant: spec.tenant.clone(),
            debit_account: spec.debit_account.clone(),
            credit_account: spec.credit_account.clone(),
            amount: spec.amount,
            currency: spec.currency.clone(),
            kind: spec.kind.clone(),
            linked: spec.linked,
            code: spec.code.clone(),
            reference: spec.reference.clone(),
            timestamp: 0,
        };
        let hold = pending.then_some((0, PendingState::Open));
        self.write(transfer, hold, debit_after, credit_after);
        TransferResult::Created
    }

    /// A post or void of a pending transfer.
    fn settle(&mut self, spec: &TransferSpec, pending_id: &str) -> TransferResult {
        let void = matches!(spec.kind, TransferKind::VoidPending { .. });
        let pending = match self.pending(spec, pending_id) {
            Ok(p) => p,
            Err(refusal) => return refusal,
        };
        let Some(hold) = pending.hold() else {
            return TransferResult::NotPending {
                pending: pending_id.to_owned(),
            };
        };
        match hold.state {
            PendingState::Voided => {
                return TransferResult::PendingAlreadyVoided {
                    pending: pending_id.to_owned(),
                };
            }
            PendingState::Posted => {
                return TransferResult::PendingAlreadyPosted {
                    pending: pending_id.to_owned(),
                };
            }
            PendingState::Open => {}
        }
        if spec.amount < 0 {
            return TransferResult::InvalidAmount { amount: spec.amount };
        }
        if spec.amount > hold.remaining {
            return TransferResult::ExceedsPendingAmount {
                pending: pending_id.to_owned(),
                remaining: hold.remaining,
                amount: spec.amount,
            };
        }
        if void && spec.amount != 0 && spec.amount != hold.remaining {
            return TransferResult::Invalid {
                field: "amount",
                reason: format!(
                    "a void releases all that pending transfer {pending_id} holds ({}): give 0 or that",
                    hold.remaining
                ),
            };
        }
        let amount = if spec.amount == 0 { hold.remaining } else { spec.amount };
        let original = pending.transfer.clone();
        let (Some(debit), Some(credit)) = (
            self.book.accounts.get(&original.debit_account),
            self.book.accounts.get(&original.credit_account),
        ) else {
            // The store loads a pending transfer's accounts with it; missing means corrupt.
            return TransferResult::AccountNotFound {
                account: original.debit_account.clone(),
            };
        };
        let debit_after = settle_balance(debit.balance(), amount, void, true);
        let credit_after = settle_balance(credit.balance(), amount, void, false);
        let posted = hold.posted + if void { 0 } else { amount };
        let state = if void {
            PendingState::Voided
        } else if posted == hold.amount {
            PendingState::Posted
        } else {
            PendingState::Open
        };
        self.undo.push(Undo::Hold(pending_id.to_owned(), pending.hold));
        if let Some(p) = self.book.transfers.get_mut(pending_id) {
            p.hold = Some((posted, state));
        }
        self.applied.holds_changed.push(pending_id.to_owned());
        let transfer = Transfer {
            id: spec.id.clone(),
            tenant: spec.tenant.clone(),
            debit_account: original.debit_account,
            credit_account: original.credit_account,
            amount,
            currency: original.currency,
            kind: spec.kind.clone(),
            linked: spec.linked,
            code: spec.code.clone(),
            reference: spec.reference.clone(),
            timestamp: 0,
        };
        self.write(transfer, None, debit_after, credit_after);
        TransferResult::Created
    }

    /// The pending transfer a post or void names, checked against the fields it repeats.
    fn pending(&self, spec: &TransferSpec, pending_id: &str) -> Result<&Entry, TransferResult> {
        if pending_id.is_empty() {
            return Err(TransferResult::Invalid {
                field: "pending_id",
                reason: "must name the pending transfer".into(),
            });
        }
        let pending = self
            .book
            .transfers
            .get(pending_id)
            .ok_or_else(|| TransferResult::PendingNotFound {
                pending: pending_id.to_owned(),
            })?;
        let t = &pending.transfer;
        for (field, pending_value, given) in [
            ("debit_account", &t.debit_account, &spec.debit_account),
            ("credit_account", &t.credit_account, &spec.credit_account),
            ("currency", &t.currency, &spec.currency),
        ] {
            if !given.is_empty() && given != pending_value {
                return Err(TransferResult::PendingDifferentField {
                    pending: pending_id.to_owned(),
                    field,
                    pending_value: pending_value.clone(),
                    given: given.clone(),
                });
            }
        }
        Ok(pending)
    }

    /// Both accounts of a transfer, in its currency.
    fn accounts(&self, debit: &str, credit: &str, currency: &str) -> Result<(&Account, &Account), TransferResult> {
        let find = |id: &str| {
            let a = self
                .book
                .accounts
                .get(id)
                .ok_or_else(|| TransferResult::AccountNotFound { account: id.to_owned() })?;
            if a.currency != currency {
                return Err(TransferResult::CurrencyMismatch {
                    account: id.to_owned(),
                    account_currency: a.currency.clone(),
                    transfer_currency: currency.to_owned(),
                });
            }
            Ok(a)
        };
        Ok((find(debit)?, find(credit)?))
    }

    /// Records a transfer and both accounts' new balances, stamping it with the next time.
    fn write(&mut self, mut transfer: Transfer, hold: Option<(i64, PendingState)>, debit: Balance, credit: Balance) {
        transfer.timestamp = self.clock;
        self.clock = self.clock.saturating_add(1);
        for (id, balance) in [(&transfer.debit_account, debit), (&transfer.credit_account, credit)] {
            if let Some(a) = self.book.accounts.get_mut(id) {
                self.undo.push(Undo::Account(id.clone(), a.balance(), a.updated_at));
                a.set_balance(balance);
                a.updated_at = transfer.timestamp;
                self.applied.accounts_changed.push(id.clone());
            }
        }
        let id = transfer.id.clone();
        self.undo.push(Undo::Created(id.clone()));
        self.applied.created.push(id.clone());
        self.book.transfers.insert(
            id,
            Entry {
                transfer,
                hold,
                debit_after: debit,
                credit_after: credit,
            },
        );
    }
}

/// The refusal, if a transfer of `amount` would break either account's limit. Pending debits
/// and credits count, so a hold reserves what it holds.
fn limits(debit: &Account, credit: &Account, amount: i64) -> Option<TransferResult> {
    if debit.flags.debits_must_not_exceed_credits {
        let balance =
            i128::from(debit.credits_posted) - i128::from(debit.debits_posted) - i128::from(debit.debits_pending);
        if i128::from(amount) > balance {
            return Some(TransferResult::InsufficientFunds {
                account: debit.id.clone(),
                currency: debit.currency.clone(),
                balance: clamp(balance),
                amount,
                shortfall: clamp(i128::from(amount) - balance),
            });
        }
    }
    if credit.flags.credits_must_not_exceed_debits {
        let balance =
            i128::from(credit.debits_posted) - i128::from(credit.credits_posted) - i128::from(credit.credits_pending);
        if i128::from(amount) > balance {
            return Some(TransferResult::ExceedsDebits {
                account: credit.id.clone(),
                currency: credit.currency.clone(),
                balance: clamp(balance),
                amount,
                excess: clamp(i128::from(amount) - balance),
            });
        }
    }
    None
}

fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// A balance after a single or pending transfer of `amount` on its debit (or credit) side;
/// `None` on overflow.
fn raise(mut b: Balance, amount: i64, pending: bool, debit: bool) -> Option<Balance> {
    let field = match (pending, debit) {
        (true, true) => &mut b.debits_pending,
        (false, true) => &mut b.debits_posted,
        (true, false) => &mut b.credits_pending,
        (false, false) => &mut b.credits_posted,
    };
    *field = field.checked_add(amount)?;
    Some(b)
}

/// A balance after posting (or voiding) `amount` of a hold: it leaves pending, and a post adds
/// it to posted. Cannot overflow: the amount was counted in pending, and posted plus pending
/// stays what it was.
fn settle_balance(mut b: Balance, amount: i64, void: bool, debit: bool) -> Balance {
    let (pending, posted) = if debit {
        (&mut b.debits_pending, &mut b.debits_posted)
    } else {
        (&mut b.credits_pending, &mut b.credits_posted)
    };
    *pending -= amount;
    if !void {
        *posted = posted.saturating_add(amount);
    }
    b
}

/// The first field where a stored transfer differs from a spec with the same id. A post or
/// void may leave accounts, currency and amount (0) out, as when it was first made.
fn transfer_difference(existing: &Transfer, spec: &TransferSpec) -> Option<&'static str> {
    let settles = matches!(
        spec.kind,
        TransferKind::PostPending { .. } | TransferKind::VoidPending { .. }
    );
    let same = |stored: &str, given: &str| stored == given || (settles && given.is_empty());
    if existing.kind != spec.kind {
        Some("kind")
    } else if !same(&existing.debit_account, &spec.debit_account) {
        Some("debit_account")
    } else if !same(&existing.credit_account, &spec.credit_account) {
        Some("credit_account")
    } else if existing.amount != spec.amount && !(settles && spec.amount == 0) {
        Some("amount")
    } else if !same(&existing.currency, &spec.currency) {
        Some("currency")
    } else if existing.linked != spec.linked {
        Some("linked")
    } else if existing.code != spec.code {
        Some("code")
    } else if existing.reference != spec.reference {
        Some("reference")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn account(id: &str, currency: &str, flags: AccountFlags, credits_posted: i64) -> Account {
        Account {
            id: id.into(),
            tenant: "t".into(),
            kind: AccountKind::Budget,
            currency: currency.into(),
            flags,
            owner: String::new(),
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn book() -> Book {
        let mut b = Book::default();
        for a in [
            account("budget", "USD", AccountFlags::NO_OVERDRAFT, 1000),
            account("payable", "USD", AccountFlags::default(), 0),
            account("eur", "EUR", AccountFlags::default(), 0),
        ] {
            b.accounts.insert(a.id.clone(), a);
        }
        b
    }

    fn spec(id: &str, debit: &str, credit: &str, amount: i64, kind: TransferKind) -> TransferSpec {
        TransferSpec {
            id: id.into(),
            tenant: "t".into(),
            debit_account: debit.into(),
            credit_account: credit.into(),
            amount,
            currency: "USD".into(),
            kind,
            linked: false,
            code: "hold".into(),
            reference: "contracts/1".into(),
        }
    }

    fn hold(id: &str, amount: i64) -> TransferSpec {
        spec(id, "budget", "payable", amount, TransferKind::Pending)
    }

    fn post(id: &str, pending: &str, amount: i64) -> TransferSpec {
        spec(
            id,
            "",
            "",
            amount,
            TransferKind::PostPending {
                pending_id: pending.into(),
            },
        )
    }

    fn void(id: &str, pending: &str) -> TransferSpec {
        spec(
            id,
            "",
            "",
            0,
            TransferKind::VoidPending {
                pending_id: pending.into(),
            },
        )
    }

    #[test]
    fn a_hold_reserves_and_a_partial_post_then_void_release() {
        let mut b = book();
        let applied = apply(
            &mut b,
            10,
            &[
                hold("h", 600),
                post("p1", "h", 200),
                post("p2", "h", 100),
                void("v", "h"),
            ],
        );
        assert!(
            applied.results.iter().all(TransferResult::is_ok),
            "{:?}",
            applied.results
        );
        let budget = b.accounts["budget"].balance();
        assert_eq!((budget.debits_pending, budget.debits_posted), (0, 300));
        let payable = b.accounts["payable"].balance();
        assert_eq!((payable.credits_pending, payable.credits_posted), (0, 300));
        assert_eq!(
            b.transfers["v"].transfer.amount, 300,
            "the void records what it released"
        );
        assert_eq!(b.transfers["h"].hold().unwrap().state, PendingState::Voided);
        let stamps: Vec<i64> = applied
            .created
            .iter()
            .map(|id| b.transfers[id].transfer.timestamp)
            .collect();
        assert_eq!(stamps, vec![10, 11, 12, 13]);
        // The hold was made in this batch: it is inserted with its final state, not updated.
        assert!(applied.holds_changed.is_empty());
    }

    #[test]
    fn a_hold_beyond_the_budget_names_the_shortfall() {
        let mut b = book();
        let applied = apply(&mut b, 0, &[hold("h1", 700), hold("h2", 400)]);
        assert_eq!(applied.results[0], TransferResult::Created);
        assert_eq!(
            applied.results[1],
            TransferResult::InsufficientFunds {
                account: "budget".into(),
                currency: "USD".into(),
                balance: 300,
                amount: 400,
                shortfall: 100
            }
        );
        assert!(applied.results[1].message().contains("short by 100"));
        assert_eq!(applied.created, vec!["h1".to_owned()]);
    }

    #[test]
    fn a_failed_chain_member_undoes_the_chain() {
        let mut b = book();
        let mut first = hold("a", 500);
        first.linked = true;
        let mut second = hold("b", 600);
        second.linked = true;
        let third = hold("c", 200);
        let applied = apply(&mut b, 0, &[first, second, third, hold("d", 100)]);
        assert_eq!(applied.results[0], TransferResult::LinkedEventFailed);
        assert!(matches!(applied.results[1], TransferResult::InsufficientFunds { .. }));
        assert_eq!(applied.results[2], TransferResult::LinkedEventFailed);
        assert_eq!(applied.results[3], TransferResult::Created);
        assert_eq!(applied.created, vec!["d".to_owned()]);
        assert_eq!(b.accounts["budget"].debits_pending, 100);
        assert!(!b.transfers.contains_key("a"));
    }

    #[test]
    fn an_open_chain_fails_whole() {
        let mut b = book();
        let mut open = hold("a", 5);
        open.linked = true;
        // The transfer before the open chain stands (the chain's undo must not reach it).
        let applied = apply(&mut b, 0, &[hold("before", 7), open]);
        assert_eq!(
            applied.results,
            vec![TransferResult::Created, TransferResult::LinkedEventChainOpen]
        );
        assert_eq!(applied.created, vec!["before".to_owned()]);
        assert_eq!(b.accounts["budget"].debits_pending, 7);
    }

    #[test]
    fn a_replay_exists_and_other_fields_are_named() {
        let mut b = book();
        apply(&mut b, 0, &[hold("h", 5), post("p", "h", 0)]);
        let mut other = hold("h", 6);
        let applied = apply(
            &mut b,
            0,
            &[hold("h", 5), post("p", "h", 0), post("p", "h", 5), other.clone()],
        );
        assert_eq!(
            applied.results[..3],
            [TransferResult::Exists, TransferResult::Exists, TransferResult::Exists]
        );
        assert_eq!(
            applied.results[3],
            TransferResult::ExistsWithDifferentFields {
                id: "h".into(),
                field: "amount"
            }
        );
        other.amount = 5;
        other.reference = "contracts/2".into();
        let applied = apply(&mut b, 0, &[other]);
        assert!(applied.results[0].message().contains("reference"));
        assert!(applied.created.is_empty());
    }

    #[test]
    fn settling_checks_the_pending_transfer() {
        let mut b = book();
        let mut wrong = post("p3", "h", 0);
        wrong.credit_account = "budget".into();
        let applied = apply(
            &mut b,
            0,
            &[
                spec("s", "budget", "payable", 10, TransferKind::Single),
                post("p0", "nope", 0),
                post("p1", "s", 0),
                hold("h", 50),
                post("p2", "h", 60),
                wrong,
                post("p4", "h", 0),
                post("p5", "h", 1),
                spec("x", "budget", "eur", 1, TransferKind::Single),
                spec("y", "budget", "budget", 1, TransferKind::Single),
                spec("z", "budget", "payable", 0, TransferKind::Single),
            ],
        );
        let reasons: Vec<&str> = applied.results.iter().map(TransferResult::reason).collect();
        assert_eq!(
            reasons,
            vec![
                "CREATED",
                "PENDING_NOT_FOUND",
                "NOT_PENDING",
                "CREATED",
                "EXCEEDS_PENDING_AMOUNT",
                "PENDING_DIFFERENT_FIELD",
                "CREATED",
                "PENDING_ALREADY_POSTED",
                "CURRENCY_MISMATCH",
                "SAME_ACCOUNT",
                "INVALID_AMOUNT"
            ]
        );
    }

    #[test]
    fn timestamps_follow_the_accounts_latest() {
        let mut b = book();
        if let Some(a) = b.accounts.get_mut("payable") {
            a.updated_at = 500;
        }
        let applied = apply(&mut b, 100, &[hold("h", 1)]);
        assert_eq!(applied.results[0], TransferResult::Created);
        assert_eq!(b.transfers["h"].transfer.timestamp, 501);
    }

    #[test]
    fn overflow_is_refused() {
        let mut b = book();
        let mut s = spec("a", "payable", "budget", i64::MAX, TransferKind::Single);
        let first = apply(&mut b, 0, std::slice::from_ref(&s));
        assert_eq!(
            first.results[0],
            TransferResult::Overflow {
                account: "budget".into()
            }
        );
        s.amount = i64::MAX - 1000;
        assert_eq!(
            apply(&mut b, 0, std::slice::from_ref(&s)).results[0],
            TransferResult::Created
        );
        s.id = "b".into();
        s.amount = 1;
        assert_eq!(
            apply(&mut b, 0, &[s]).results[0],
            TransferResult::Overflow {
                account: "budget".into()
            }
        );
    }
}
