//! `chorus ledger`: the tenant's double-entry ledger as the payouts service keeps it. Fund a
//! campaign's budget with a deposit, read what the budget holds, list the accounts, read an
//! account's balances (now or as of a date) and its transfers with the balance after each.
//!
//! ```text
//! chorus ledger fund campaigns/ID --amount "500.00 USD" --deposit-id dep-1 --bank-transfer WIRE-778
//! chorus ledger budget campaigns/ID
//! chorus ledger accounts --owner campaigns/ID
//! chorus ledger balance ledgerAccounts/ID --as-of 2026-12-01
//! chorus ledger history ledgerAccounts/ID --all
//! ```

use chorus_proto::payouts::{
    Account, AccountEntry, AccountKind, Balance, FundCampaignRequest, GetAccountBalanceRequest,
    GetCampaignBudgetRequest, GetCampaignBudgetResponse, ListAccountTransfersRequest, ListAccountsRequest, Transfer,
    TransferKind, fund_campaign_request::Source,
};
use chorus_proto::types::Money;
use comfy_table::{Cell, CellAlignment, Table};
use prost_types::Timestamp;
use serde_json::{Value, json};

use crate::campaigns::{campaign_name, parse_money};
use crate::client::ConnectArgs;
use crate::error::Result;
use crate::output::{self, enum_json, money, money_json, time, time_json};
use crate::payouts::{Paging, print_list, resource};
use crate::terms::parse_time;
use crate::vocab::{self, ProtoEnum};

proto_enum!(AccountKind, "ACCOUNT_KIND", "account kind");
proto_enum!(TransferKind, "TRANSFER_KIND", "transfer kind");

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// Record a deposit into a campaign's budget: a bank transfer or a provider charge.
    Fund(FundArgs),
    /// What a campaign's budget holds: deposited, held for contracts, released, available.
    Budget {
        /// "campaigns/ID" or ID.
        campaign: String,
        /// ISO 4217; needed only when the budget holds several currencies.
        #[arg(long)]
        currency: Option<String>,
    },
    /// The tenant's accounts, or one campaign's or influencer's.
    Accounts {
        /// "campaigns/ID" or "influencers/ID".
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// An account's balances, now or as of a time.
    Balance {
        /// "ledgerAccounts/ID" or ID.
        account: String,
        /// A date (the end of that day, UTC) or an RFC 3339 time.
        #[arg(long, value_parser = parse_time)]
        as_of: Option<Timestamp>,
    },
    /// An account's transfers, oldest first, each with the account's balance after it.
    History {
        /// "ledgerAccounts/ID" or ID.
        account: String,
        #[command(flatten)]
        paging: Paging,
    },
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["bank_transfer", "charge"])))]
pub(crate) struct FundArgs {
    /// "campaigns/ID" or ID.
    campaign: String,
    /// What was deposited, positive: "500.00 USD", "USD 500", "$500".
    #[arg(long, value_parser = parse_amount)]
    amount: Money,
    /// Your id of the deposit (1-64 of A-Z a-z 0-9 . _ : -), its idempotency key: the same id
    /// with the same flags answers the first deposit again.
    #[arg(long)]
    deposit_id: String,
    /// The deposit is a bank transfer the brand made: its reference.
    #[arg(long, value_name = "REFERENCE")]
    bank_transfer: Option<String>,
    /// The deposit is a provider charge the brand paid: "stripe:ch_3MmlLrLkdIwHu7ix0snN0B15".
    #[arg(long, value_name = "PROVIDER:ID")]
    charge: Option<String>,
}

impl FundArgs {
    fn request(self) -> FundCampaignRequest {
        let source = match (self.bank_transfer, self.charge) {
            (Some(reference), _) => Source::BankTransfer(reference.trim().to_owned()),
            (None, Some(charge)) => Source::ProviderCharge(charge.trim().to_owned()),
            // clap's "source" group requires one of the two.
            (None, None) => Source::BankTransfer(String::new()),
        };
        FundCampaignRequest {
            campaign: campaign_name(&self.campaign),
            deposit_id: self.deposit_id.trim().to_owned(),
            amount: Some(self.amount),
            source: Some(source),
        }
    }
}

/// A positive amount as people write it, the currency after or before the number ("500.00 USD",
/// "USD 500", "$500"), in the currency's minor units exactly.
pub(crate) fn parse_amount(input: &str) -> Result<Money, String> {
    let s = input.trim();
    let code_first = s
        .split_once(char::is_whitespace)
        .filter(|(code, _)| code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()));
    let written = match code_first {
        Some((code, number)) => format!("{} {code}", number.trim()),
        None => s.to_owned(),
    };
    // parse_money multiplies without checking; 14 whole digits fit i64 with up to 4 decimals.
    let whole = written.split(['.', ' ']).next().unwrap_or_default();
    if whole.chars().filter(char::is_ascii_digit).count() > 14 {
        return Err(format!("amount \"{s}\" is too large"));
    }
    let m = parse_money(&written).map_err(|e| e.to_string())?;
    if m.amount_minor <= 0 {
        return Err(format!("amount \"{s}\" must be more than zero"));
    }
    Ok(m)
}

/// "ledgerAccounts/ID" from the name whole or its bare ID.
fn account_name(input: &str) -> String {
    resource("ledgerAccounts", input)
}

pub(crate) async fn run(command: Command, connect: &ConnectArgs, json: bool) -> Result<()> {
    let mut client = connect.ledger().await?;
    match command {
        Command::Fund(args) => {
            let r = client.fund_campaign(args.request()).await?.into_inner();
            let transfer = r.transfer.ok_or("the server answered without the transfer")?;
            let budget = r.budget.ok_or("the server answered without the budget")?;
            output::show(
                json,
                || json!({"transfer": transfer_json(&transfer), "budget": account_json(&budget)}),
                || fund_lines(&transfer, &budget),
            )
        }
        Command::Budget { campaign, currency } => {
            let r = client
                .get_campaign_budget(GetCampaignBudgetRequest {
                    campaign: campaign_name(&campaign),
                    currency_code: currency.unwrap_or_default().trim().to_ascii_uppercase(),
                })
                .await?
                .into_inner();
            output::show(json, || budget_json(&r), || budget_lines(&r))
        }
        Command::Accounts { owner, paging } => {
            let owner = owner.map(|o| o.trim().to_owned()).unwrap_or_default();
            let page = paging
                .fetch(|page_size, page_token| {
                    let mut client = client.clone();
                    let request = ListAccountsRequest {
                        owner: owner.clone(),
                        page_size,
                        page_token,
                    };
                    async move {
                        let page = client.list_accounts(request).await?.into_inner();
                        Ok((page.accounts, page.next_page_token))
                    }
                })
                .await?;
            print_list(json, "accounts", &page, account_json, accounts_table, "no accounts")
        }
        Command::Balance { account, as_of } => {
            let r = client
                .get_account_balance(GetAccountBalanceRequest {
                    account: account_name(&account),
                    as_of_time: as_of,
                })
                .await?
                .into_inner();
            let a = r.account.ok_or("the server answered without the account")?;
            let b = r.balance.ok_or("the server answered without a balance")?;
            let at = r.as_of_time;
            output::show(
                json,
                || {
                    json!({
                        "account": account_json(&a),
                        "balance": balance_json(&b),
                        "as_of_time": time_json(at.as_ref()),
                    })
                },
                || balance_lines(&a, &b, at.as_ref()),
            )
        }
        Command::History { account, paging } => {
            let account = account_name(&account);
            let page = paging
                .fetch(|page_size, page_token| {
                    let mut client = client.clone();
                    let request = ListAccountTransfersRequest {
                        account: account.clone(),
                        page_size,
                        page_token,
                    };
                    async move {
                        let page = client.list_account_transfers(request).await?.into_inner();
                        Ok((page.entries, page.next_page_token))
                    }
                })
                .await?;
            let empty = format!("no transfers on {account}");
            print_list(
                json,
                "entries",
                &page,
                entry_json,
                |e| history_table(&account, e),
                &empty,
            )
        }
    }
}

// ---------------------------------------------------------------- reading

/// An amount of an account's currency: balances come as bare minor units.
fn in_currency(code: &str, amount_minor: i64) -> Money {
    Money {
        currency_code: code.to_owned(),
        amount_minor,
    }
}

/// What is reserved on an account and not posted yet, or "-" when nothing is.
fn pending(code: &str, b: &Balance) -> String {
    if b.credits_pending == 0 && b.debits_pending == 0 {
        return "-".to_owned();
    }
    format!(
        "credits {}, debits {}",
        money(&in_currency(code, b.credits_pending)),
        money(&in_currency(code, b.debits_pending))
    )
}

fn fund_lines(t: &Transfer, budget: &Account) -> Vec<String> {
    let amount = t.amount.as_ref().map_or_else(|| "-".to_owned(), money);
    let net = budget.balance.as_ref().map_or(0, |b| b.net);
    vec![
        format!("Deposited {amount} ({}, {}).", t.reference, t.name),
        format!(
            "{} budget {} holds {}.",
            budget.owner,
            budget.name,
            money(&in_currency(&budget.currency_code, net))
        ),
    ]
}

fn budget_lines(r: &GetCampaignBudgetResponse) -> Vec<String> {
    let row = |what: &str, m: Option<&Money>| format!("  {what:<10} {}", m.map_or_else(|| "-".to_owned(), money));
    vec![
        format!("{} budget", r.campaign),
        row("deposited", r.deposited.as_ref()),
        row("held", r.held.as_ref()),
        row("released", r.released.as_ref()),
        row("available", r.available.as_ref()),
    ]
}

fn balance_lines(a: &Account, b: &Balance, as_of: Option<&Timestamp>) -> Vec<String> {
    let code = a.currency_code.as_str();
    let m = |minor| money(&in_currency(code, minor));
    vec![
        format!(
            "{}  {} of {}, {code}",
            a.name,
            vocab::label::<AccountKind>(a.kind),
            a.owner
        ),
        format!("  balance {} as of {}", m(b.net), time(as_of)),
        format!(
            "  posted: credits {}, debits {}",
            m(b.credits_posted),
            m(b.debits_posted)
        ),
        format!("  pending: {}", pending(code, b)),
    ]
}

fn accounts_table(accounts: &[Account]) -> Table {
    let mut t = output::table(&["account", "kind", "owner", "balance", "pending", "created"]);
    for a in accounts {
        let b = a.balance.unwrap_or_default();
        t.add_row(vec![
            Cell::new(&a.name),
            Cell::new(vocab::label::<AccountKind>(a.kind)),
            Cell::new(&a.owner),
            Cell::new(money(&in_currency(&a.currency_code, b.net))).set_alignment(CellAlignment::Right),
            Cell::new(pending(&a.currency_code, &b)),
            Cell::new(time(a.create_time.as_ref())),
        ]);
    }
    t
}

/// Each transfer from `account`'s side: whether it debited or credited it, the other account,
/// and the account's balance after it.
fn history_table(account: &str, entries: &[AccountEntry]) -> Table {
    let mut t = output::table(&[
        "time",
        "transfer",
        "code",
        "kind",
        "side",
        "other account",
        "amount",
        "reference",
        "balance after",
    ]);
    for e in entries {
        let tr = e.transfer.clone().unwrap_or_default();
        let (side, other) = if tr.credit_account == account {
            ("credit", &tr.debit_account)
        } else {
            ("debit", &tr.credit_account)
        };
        let code = tr.amount.as_ref().map_or("", |m| m.currency_code.as_str());
        let after = e.balance_after.as_ref().map_or(0, |b| b.net);
        t.add_row(vec![
            Cell::new(time(tr.create_time.as_ref())),
            Cell::new(&tr.name),
            Cell::new(&tr.code),
            Cell::new(vocab::label::<TransferKind>(tr.kind)),
            Cell::new(side),
            Cell::new(other),
            Cell::new(tr.amount.as_ref().map_or_else(|| "-".to_owned(), money)).set_alignment(CellAlignment::Right),
            Cell::new(&tr.reference),
            Cell::new(money(&in_currency(code, after))).set_alignment(CellAlignment::Right),
        ]);
    }
    t
}

// ---------------------------------------------------------------- JSON

fn balance_json(b: &Balance) -> Value {
    json!({
        "debits_pending": b.debits_pending,
        "debits_posted": b.debits_posted,
        "credits_pending": b.credits_pending,
        "credits_posted": b.credits_posted,
        "net": b.net,
    })
}

pub(crate) fn account_json(a: &Account) -> Value {
    json!({
        "name": a.name,
        "kind": enum_json::<AccountKind>(a.kind),
        "currency_code": a.currency_code,
        "owner": a.owner,
        "balance": a.balance.as_ref().map(balance_json),
        "create_time": time_json(a.create_time.as_ref()),
    })
}

fn transfer_json(t: &Transfer) -> Value {
    json!({
        "name": t.name,
        "debit_account": t.debit_account,
        "credit_account": t.credit_account,
        "amount": money_json(t.amount.as_ref()),
        "kind": enum_json::<TransferKind>(t.kind),
        "pending_transfer": t.pending_transfer,
        "code": t.code,
        "reference": t.reference,
        "create_time": time_json(t.create_time.as_ref()),
    })
}

fn entry_json(e: &AccountEntry) -> Value {
    json!({
        "transfer": e.transfer.as_ref().map(transfer_json),
        "balance_after": e.balance_after.as_ref().map(balance_json),
    })
}

fn budget_json(r: &GetCampaignBudgetResponse) -> Value {
    json!({
        "campaign": r.campaign,
        "deposited": money_json(r.deposited.as_ref()),
        "held": money_json(r.held.as_ref()),
        "released": money_json(r.released.as_ref()),
        "available": money_json(r.available.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("ledger").chain(args.iter().copied())).map(|c| c.command)
    }

    fn usd(amount_minor: i64) -> Money {
        in_currency("USD", amount_minor)
    }

    const BUDGET: &str = "ledgerAccounts/0193a5b2-bbbb-7bbb-8bbb-bbbbbbbbbbbb";
    const PAYABLE: &str = "ledgerAccounts/0193a5b2-aaaa-7aaa-8aaa-aaaaaaaaaaaa";
    /// 2026-12-01T23:59:59Z.
    const AS_OF: i64 = 1_796_169_599;

    #[test]
    fn amounts_are_exact_minor_units_with_the_code_before_or_after() {
        assert_eq!(parse_amount("500.00 USD"), Ok(usd(50_000)));
        assert_eq!(parse_amount("USD 500"), Ok(usd(50_000)));
        assert_eq!(parse_amount(" usd 0.10 "), Ok(usd(10)));
        assert_eq!(parse_amount("$1,250.5"), Ok(usd(125_050)));
        assert_eq!(parse_amount("JPY 5000"), Ok(in_currency("JPY", 5_000)));
        assert_eq!(parse_amount("1.234 KWD"), Ok(in_currency("KWD", 1_234)));
        let err = parse_amount("1.5 JPY").unwrap_err();
        assert!(err.contains("JPY has 0 decimal places"), "{err}");
        let err = parse_amount("1.001 USD").unwrap_err();
        assert!(err.contains("USD has 2 decimal places"), "{err}");
        assert!(parse_amount("0 USD").unwrap_err().contains("more than zero"));
        assert!(parse_amount("USD -5").unwrap_err().contains("more than zero"));
        assert!(parse_amount("500").unwrap_err().contains("a number and a currency"));
        // Past i64 in minor units: refused, not wrapped.
        assert!(
            parse_amount("100000000000000000 USD")
                .unwrap_err()
                .contains("too large")
        );
        assert!(
            parse_amount("USD 999,999,999,999,999.99")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(
            parse_amount("999,999,999,999,999 USD").unwrap_err(),
            "amount \"999,999,999,999,999 USD\" is too large"
        );
        assert_eq!(parse_amount("99999999999999.99 USD"), Ok(usd(9_999_999_999_999_999)));
    }

    #[test]
    fn fund_takes_exactly_one_source() {
        let base = ["fund", "c1", "--amount", "USD 500", "--deposit-id", "dep-1"];
        let Command::Fund(args) = parse(&[&base[..], &["--charge", "stripe:ch_1"]].concat()).unwrap() else {
            panic!("not fund");
        };
        let r = args.request();
        assert_eq!(r.campaign, "campaigns/c1");
        assert_eq!(r.deposit_id, "dep-1");
        assert_eq!(r.amount, Some(usd(50_000)));
        assert_eq!(r.source, Some(Source::ProviderCharge("stripe:ch_1".to_owned())));
        let Command::Fund(args) = parse(&[&base[..], &["--bank-transfer", "WIRE-778"]].concat()).unwrap() else {
            panic!("not fund");
        };
        assert_eq!(args.request().source, Some(Source::BankTransfer("WIRE-778".to_owned())));
        assert!(parse(&base).is_err(), "a source is required");
        assert!(parse(&[&base[..], &["--charge", "stripe:ch_1", "--bank-transfer", "W"]].concat()).is_err());
        let err = parse(&["fund", "c1", "--amount", "lots", "--deposit-id", "d", "--charge", "x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("amount \"lots\""), "{err}");
    }

    #[test]
    fn balance_and_history_take_names_dates_and_paging() {
        let Command::Balance { account, as_of } = parse(&["balance", "abc", "--as-of", "2026-12-01"]).unwrap() else {
            panic!("not balance");
        };
        assert_eq!(account_name(&account), "ledgerAccounts/abc");
        assert_eq!(account_name(" ledgerAccounts/abc "), "ledgerAccounts/abc");
        assert_eq!(as_of.unwrap().seconds, AS_OF);
        assert!(parse(&["balance", "abc", "--as-of", "December"]).is_err());
        assert!(matches!(
            parse(&["history", "abc", "--page-size", "10", "--all"]).unwrap(),
            Command::History { .. }
        ));
        assert!(parse(&["history", "abc", "--page-size", "0"]).is_err());
    }

    fn budget_account() -> Account {
        Account {
            name: BUDGET.to_owned(),
            kind: AccountKind::CampaignBudget as i32,
            currency_code: "USD".to_owned(),
            owner: "campaigns/c1".to_owned(),
            balance: Some(Balance {
                debits_pending: 25_000,
                debits_posted: 10_000,
                credits_pending: 0,
                credits_posted: 50_000,
                net: 40_000,
            }),
            create_time: Some(Timestamp {
                seconds: AS_OF,
                nanos: 0,
            }),
        }
    }

    #[test]
    fn an_account_reads_with_its_balances() {
        let a = budget_account();
        let b = a.balance.unwrap();
        let at = Timestamp {
            seconds: AS_OF,
            nanos: 0,
        };
        assert_eq!(
            balance_lines(&a, &b, Some(&at)),
            [
                format!("{BUDGET}  campaign budget of campaigns/c1, USD"),
                "  balance $400.00 USD as of 2026-12-01T23:59:59Z".to_owned(),
                "  posted: credits $500.00 USD, debits $100.00 USD".to_owned(),
                "  pending: credits $0.00 USD, debits $250.00 USD".to_owned(),
            ]
        );
        let table = accounts_table(std::slice::from_ref(&a)).to_string();
        assert!(table.contains(BUDGET), "{table}");
        assert!(table.contains("campaign budget"), "{table}");
        assert!(table.contains("$400.00 USD"), "{table}");
        let v = account_json(&a);
        assert_eq!(v["kind"], "ACCOUNT_KIND_CAMPAIGN_BUDGET");
        assert_eq!(v["balance"]["net"], 40_000);
        assert_eq!(v["create_time"], "2026-12-01T23:59:59Z");
        let quiet = Balance::default();
        assert_eq!(pending("USD", &quiet), "-");
    }

    #[test]
    fn history_shows_each_transfer_from_the_accounts_side() {
        let entry = |name: &str, debit: &str, credit: &str, minor, net| AccountEntry {
            transfer: Some(Transfer {
                name: name.to_owned(),
                debit_account: debit.to_owned(),
                credit_account: credit.to_owned(),
                amount: Some(usd(minor)),
                kind: TransferKind::Single as i32,
                code: "deposit".to_owned(),
                reference: "dep-1".to_owned(),
                ..Default::default()
            }),
            balance_after: Some(Balance {
                net,
                ..Default::default()
            }),
        };
        let entries = [
            entry("ledgerTransfers/t1", "ledgerAccounts/funding", BUDGET, 50_000, 50_000),
            entry("ledgerTransfers/t2", BUDGET, PAYABLE, 12_345, 37_655),
        ];
        let table = history_table(BUDGET, &entries).to_string();
        let row = |needle: &str| table.lines().find(|l| l.contains(needle)).unwrap().to_owned();
        let first = row("ledgerTransfers/t1");
        assert!(
            first.contains("credit") && first.contains("ledgerAccounts/funding"),
            "{first}"
        );
        assert!(first.contains("$500.00 USD"), "{first}");
        let second = row("ledgerTransfers/t2");
        assert!(second.contains("debit") && second.contains(PAYABLE), "{second}");
        assert!(
            second.contains("$123.45 USD") && second.contains("$376.55 USD"),
            "{second}"
        );
        let v = entry_json(&entries[1]);
        assert_eq!(
            v["transfer"]["amount"],
            json!({"currency_code": "USD", "amount_minor": 12_345})
        );
        assert_eq!(v["transfer"]["kind"], "TRANSFER_KIND_SINGLE");
        assert_eq!(v["balance_after"]["net"], 37_655);
    }

    #[test]
    fn a_budget_and_a_deposit_read_in_money() {
        let r = GetCampaignBudgetResponse {
            campaign: "campaigns/c1".to_owned(),
            deposited: Some(usd(50_000)),
            held: Some(usd(25_000)),
            released: Some(usd(10_000)),
            available: Some(usd(15_000)),
        };
        assert_eq!(
            budget_lines(&r),
            [
                "campaigns/c1 budget",
                "  deposited  $500.00 USD",
                "  held       $250.00 USD",
                "  released   $100.00 USD",
                "  available  $150.00 USD",
            ]
        );
        assert_eq!(budget_json(&r)["available"]["amount_minor"], 15_000);
        let t = Transfer {
            name: "ledgerTransfers/dep-1".to_owned(),
            amount: Some(usd(50_000)),
            reference: "deposit dep-1".to_owned(),
            ..Default::default()
        };
        assert_eq!(
            fund_lines(&t, &budget_account()),
            [
                "Deposited $500.00 USD (deposit dep-1, ledgerTransfers/dep-1).".to_owned(),
                format!("campaigns/c1 budget {BUDGET} holds $400.00 USD."),
            ]
        );
    }
}
