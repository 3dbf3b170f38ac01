//! `chorus payouts`, `chorus tax` and `chorus payee`: the payouts service from the command line.
//! A brand lists its payouts, runs them now, reverses one, records a shipment, reconciles with
//! the providers and gets the year's 1099-NEC report; an influencer reads their statement and
//! keeps their payee profile (whose is read from their token's subject).
//!
//! ```text
//! chorus payouts list --campaign campaigns/ID --state blocked
//! chorus payouts run --campaign campaigns/ID
//! chorus payouts statement influencers/ID --year 2026
//! chorus payouts ship payouts/ID --carrier USPS --tracking 9400111899223197428490
//! chorus tax report --year 2026 --out 1099-nec-2026.csv
//! chorus payee set --cash stripe --stripe-account acct_1Nv0FGQ9RKHgCVdK --tax-form w9 --tax-country US
//! ```

use std::future::Future;
use std::path::PathBuf;

use chorus_proto::contracts::{Compensation, GiftCard, Product};
use chorus_proto::payouts::{
    Address, Difference, GetPayeeRequest, GetPayoutRequest, GetStatementRequest, GetTaxReportRequest,
    GetTaxReportResponse, ListPayoutsRequest, Method, Payee, Payout, PayoutKind, PayoutState, ReconcileRequest,
    ReconcileResponse, ReversePayoutRequest, RunPayoutsRequest, RunPayoutsResponse, Statement, TaxForm,
    UpdatePayeeRequest, UpdateShipmentRequest,
};
use chorus_proto::types::Money;
use comfy_table::{Cell, CellAlignment, Table};
use serde_json::{Value, json};

use crate::campaigns::campaign_name;
use crate::client::ConnectArgs;
use crate::error::Result;
use crate::output::{self, enum_json, money, money_json, time, time_json};
use crate::terms;
use crate::vocab::{self, ProtoEnum};

proto_enum!(PayoutKind, "PAYOUT_KIND", "payout kind");
proto_enum!(PayoutState, "PAYOUT_STATE", "payout state");
proto_enum!(Method, "METHOD", "payout method");
proto_enum!(TaxForm, "TAX_FORM", "tax form");

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// Payouts, newest first; every filter given must hold.
    List(ListArgs),
    /// A payout: what, to whom, where it stands, the provider's reference, its times.
    Get {
        /// "payouts/ID" or ID.
        name: String,
    },
    /// Submit every approved payout now instead of at the next automatic run.
    Run {
        /// Only this campaign's ("campaigns/ID" or ID); default every campaign.
        #[arg(long)]
        campaign: Option<String>,
    },
    /// What an influencer was owed and paid, line by line, with the totals.
    Statement {
        /// "influencers/ID" or ID.
        #[arg(value_parser = vocab::influencer_name)]
        influencer: String,
        /// Only this year's; default every year.
        #[arg(long, value_parser = year)]
        year: Option<i32>,
    },
    /// Take back a paid cash payout; the money returns to the campaign's budget.
    Reverse {
        /// "payouts/ID" or ID.
        name: String,
        /// Why, 1-500 characters.
        #[arg(long)]
        reason: String,
    },
    /// Record a product payout's shipment, or its status when no carrier webhook reports it.
    Ship(ShipArgs),
    /// Compare the ledger's payouts with the providers' records and list each difference.
    Reconcile {
        /// Only this campaign's payouts; default the tenant's of the last 90 days.
        #[arg(long)]
        campaign: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    /// "campaigns/ID" or ID.
    #[arg(long)]
    campaign: Option<String>,
    /// "contracts/ID" or ID.
    #[arg(long, value_parser = vocab::contract_name)]
    contract: Option<String>,
    /// "influencers/ID" or ID.
    #[arg(long, value_parser = vocab::influencer_name)]
    influencer: Option<String>,
    /// requested, held, approved, blocked, submitted, paid, failed, reversed or voided.
    #[arg(long, value_parser = vocab::parse::<PayoutState>)]
    state: Option<PayoutState>,
    #[command(flatten)]
    paging: Paging,
}

impl ListArgs {
    fn request(&self) -> ListPayoutsRequest {
        ListPayoutsRequest {
            campaign: self.campaign.as_deref().map(campaign_name).unwrap_or_default(),
            contract: self.contract.clone().unwrap_or_default(),
            influencer: self.influencer.clone().unwrap_or_default(),
            state: self.state.map_or(0, i32::from),
            page_size: 0,
            page_token: String::new(),
        }
    }
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("shipment").required(true).multiple(true).args(["carrier", "status"])))]
pub(crate) struct ShipArgs {
    /// "payouts/ID" or ID.
    name: String,
    /// The carrier: USPS, UPS, FedEx, DHL...
    #[arg(long, requires = "tracking")]
    carrier: Option<String>,
    /// The carrier's tracking number.
    #[arg(long, requires = "carrier")]
    tracking: Option<String>,
    /// The carrier's status: pre_transit, in_transit, delivered (pays the payout),
    /// return_to_sender...
    #[arg(long)]
    status: Option<String>,
}

/// Which page of a list to fetch, or every page from there.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct Paging {
    /// 1..1000; default the server's.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=1000))]
    page_size: Option<i32>,
    /// Continue from the token a previous page printed.
    #[arg(long)]
    page_token: Option<String>,
    /// Follow next_page_token until the last page.
    #[arg(long)]
    all: bool,
}

impl Paging {
    /// The items of the page asked for (with --all, of it and every page after it) and the
    /// next page's token, empty after the last. `page(page_size, page_token)` fetches one.
    pub(crate) async fn fetch<T, F, Fut>(&self, mut page: F) -> Result<(Vec<T>, String)>
    where
        F: FnMut(i32, String) -> Fut,
        Fut: Future<Output = Result<(Vec<T>, String)>>,
    {
        let mut token = self.page_token.clone().unwrap_or_default();
        let mut items = Vec::new();
        loop {
            let (got, next) = page(self.page_size.unwrap_or(0), token.clone()).await?;
            items.extend(got);
            if !self.all || next.is_empty() {
                return Ok((items, next));
            }
            if next == token {
                return Err("the server returned the same page token twice".into());
            }
            token = next;
        }
    }
}

/// Prints what a list command fetched: JSON `{"<key>": [...], "next_page_token": ...}` for
/// scripts, else the table (`empty` when there is nothing) and how to ask for the next page.
pub(crate) fn print_list<T>(
    json: bool,
    key: &str,
    (items, next): &(Vec<T>, String),
    item_json: impl Fn(&T) -> Value,
    table: impl FnOnce(&[T]) -> Table,
    empty: &str,
) -> Result<()> {
    if json {
        let mut page = serde_json::Map::new();
        page.insert(key.to_owned(), items.iter().map(item_json).collect());
        page.insert("next_page_token".to_owned(), json!(next));
        return output::print_json(&Value::Object(page));
    }
    if items.is_empty() {
        outln!("{empty}");
    } else {
        outln!("{}", table(items));
    }
    if !next.is_empty() {
        outln!("next page: --page-token {next}");
    }
    Ok(())
}

/// "COLLECTION/ID" from the name whole or its bare ID; the server checks the ID.
pub(crate) fn resource(collection: &str, input: &str) -> String {
    let input = input.trim();
    match input.strip_prefix(collection).and_then(|rest| rest.strip_prefix('/')) {
        Some(_) => input.to_owned(),
        None => format!("{collection}/{input}"),
    }
}

fn payout_name(input: &str) -> String {
    resource("payouts", input)
}

/// A calendar year, 2000..=2100: what a statement or a tax report can be about.
fn year(input: &str) -> Result<i32, String> {
    match input.trim().parse::<i32>() {
        Ok(y) if (2000..=2100).contains(&y) => Ok(y),
        _ => Err(format!("\"{input}\" is not a year (2000-2100)")),
    }
}

pub(crate) async fn run(command: Command, connect: &ConnectArgs, json: bool) -> Result<()> {
    let mut client = connect.payouts().await?;
    // Each move on one payout answers with it, shown once below.
    let payout = match command {
        Command::List(args) => return list(&mut client, args, json).await,
        Command::Get { name } => {
            client
                .get_payout(GetPayoutRequest {
                    name: payout_name(&name),
                })
                .await?
                .into_inner()
                .payout
        }
        Command::Run { campaign } => {
            let campaign = campaign.as_deref().map(campaign_name).unwrap_or_default();
            let r = client
                .run_payouts(RunPayoutsRequest {
                    campaign: campaign.clone(),
                })
                .await?
                .into_inner();
            return output::show(json, || run_json(&r), || run_lines(&campaign, &r));
        }
        Command::Statement { influencer, year } => {
            let statement = client
                .get_statement(GetStatementRequest {
                    influencer,
                    year: year.unwrap_or(0),
                })
                .await?
                .into_inner()
                .statement
                .ok_or("the server answered without a statement")?;
            return output::show(
                json,
                || statement_json(&statement),
                || statement_lines(&statement, year),
            );
        }
        Command::Reverse { name, reason } => {
            client
                .reverse_payout(ReversePayoutRequest {
                    name: payout_name(&name),
                    reason,
                })
                .await?
                .into_inner()
                .payout
        }
        Command::Ship(args) => {
            client
                .update_shipment(UpdateShipmentRequest {
                    name: payout_name(&args.name),
                    carrier: args.carrier.unwrap_or_default().trim().to_owned(),
                    tracking_code: args.tracking.unwrap_or_default().trim().to_owned(),
                    status: args.status.unwrap_or_default().trim().to_ascii_lowercase(),
                })
                .await?
                .into_inner()
                .payout
        }
        Command::Reconcile { campaign } => {
            let campaign = campaign.as_deref().map(campaign_name).unwrap_or_default();
            let r = client
                .reconcile(ReconcileRequest {
                    campaign: campaign.clone(),
                })
                .await?
                .into_inner();
            // Differences are findings, not failures: the exit code stays 0.
            return output::show(json, || reconcile_json(&r), || reconcile_lines(&campaign, &r));
        }
    };
    let p = payout.ok_or("the server answered without a payout")?;
    output::show(json, || payout_json(&p), || payout_lines(&p))
}

async fn list(client: &mut crate::client::Payouts, args: ListArgs, json: bool) -> Result<()> {
    let request = args.request();
    let page = args
        .paging
        .fetch(|page_size, page_token| {
            let mut client = client.clone();
            let request = ListPayoutsRequest {
                page_size,
                page_token,
                ..request.clone()
            };
            async move {
                let page = client.list_payouts(request).await?.into_inner();
                Ok((page.payouts, page.next_page_token))
            }
        })
        .await?;
    print_list(json, "payouts", &page, payout_json, payouts_table, "no payouts")
}

// ---------------------------------------------------------------- tax

#[derive(clap::Subcommand, Debug)]
pub(crate) enum TaxCommand {
    /// The year's 1099-NEC report of the tenant's US payees at or over the threshold, as CSV.
    Report {
        #[arg(long, value_parser = year)]
        year: i32,
        /// Full tax identifiers instead of their last four digits (needs payouts.tax).
        #[arg(long)]
        unmasked: bool,
        /// Write the CSV to this file; default stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub(crate) async fn tax(command: TaxCommand, connect: &ConnectArgs, json: bool) -> Result<()> {
    let TaxCommand::Report { year, unmasked, out } = command;
    let r = connect
        .payouts()
        .await?
        .get_tax_report(GetTaxReportRequest { year, unmasked })
        .await?
        .into_inner();
    let Some(path) = out else {
        if json {
            let mut v = tax_report_json(&r);
            v["csv"] = json!(String::from_utf8_lossy(&r.csv));
            return output::print_json(&v);
        }
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&r.csv)?;
        stdout.flush()?;
        return Ok(());
    };
    std::fs::write(&path, &r.csv).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    output::show(
        json,
        || {
            let mut v = tax_report_json(&r);
            v["file"] = json!(path.display().to_string());
            v
        },
        || vec![tax_report_line(&r, &path.display().to_string())],
    )
}

/// "Wrote 1099-nec-2026.csv: 12 payees at or over $600.00 USD in 2026 (3,140 bytes)."
fn tax_report_line(r: &GetTaxReportResponse, file: &str) -> String {
    format!(
        "Wrote {file}: {} payee{} at or over {} in {} ({} bytes).",
        output::count(i64::from(r.rows)),
        if r.rows == 1 { "" } else { "s" },
        r.threshold.as_ref().map_or_else(|| "-".to_owned(), money),
        r.year,
        output::count(r.csv.len() as i64)
    )
}

fn tax_report_json(r: &GetTaxReportResponse) -> Value {
    json!({
        "year": r.year,
        "threshold": money_json(r.threshold.as_ref()),
        "rows": r.rows,
        "bytes": r.csv.len(),
    })
}

// ---------------------------------------------------------------- payee

#[derive(clap::Subcommand, Debug)]
pub(crate) enum PayeeCommand {
    /// Your payee profile, with payment details, address and tax id masked.
    Get {
        /// "payees/ID" or ID; default the influencer the token is for.
        #[arg(long)]
        payee: Option<String>,
    },
    /// Change your payee profile: each flag replaces its part, the rest is kept.
    Set(Box<PayeeArgs>),
}

#[derive(clap::Args, Debug, Default)]
pub(crate) struct PayeeArgs {
    /// "payees/ID" or ID; default the influencer the token is for.
    #[arg(long)]
    payee: Option<String>,
    /// Legal name, for tax forms.
    #[arg(long)]
    legal_name: Option<String>,
    /// Where gift cards and notices go.
    #[arg(long)]
    email: Option<String>,
    /// How cash is paid: stripe or paypal.
    #[arg(long, value_parser = cash_method)]
    cash: Option<Method>,
    /// Your Stripe connected account: "acct_...".
    #[arg(long)]
    stripe_account: Option<String>,
    /// Your PayPal account's email.
    #[arg(long)]
    paypal_email: Option<String>,
    /// The tax form on file: w9, w8ben or w8ben-e.
    #[arg(long, value_parser = tax_form)]
    tax_form: Option<TaxForm>,
    /// The date the tax form was signed (YYYY-MM-DD); required with a form.
    #[arg(long)]
    tax_form_signed_on: Option<String>,
    /// A US citizen or resident alien (a W-9 is then needed before cash is paid).
    #[arg(long)]
    us_person: bool,
    /// Your SSN, ITIN or EIN; from the environment it stays out of your shell's history.
    #[arg(long, env = "CHORUS_TAX_ID", hide_env_values = true)]
    tax_id: Option<String>,
    /// Where you are resident for tax: ISO 3166-1 alpha-2 ("US").
    #[arg(long)]
    tax_country: Option<String>,
    #[command(flatten)]
    address: AddressArgs,
}

/// The shipping address, written whole: line 1, city and country at least.
#[derive(clap::Args, Debug, Default)]
#[command(next_help_heading = "Shipping address")]
pub(crate) struct AddressArgs {
    /// Who receives it; default your legal name.
    #[arg(long, requires = "address_line1")]
    recipient: Option<String>,
    #[arg(long, requires_all = ["city", "country"])]
    address_line1: Option<String>,
    #[arg(long, requires = "address_line1")]
    address_line2: Option<String>,
    #[arg(long, requires = "address_line1")]
    city: Option<String>,
    /// State, province or region.
    #[arg(long, requires = "address_line1")]
    region: Option<String>,
    #[arg(long, requires = "address_line1")]
    postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 ("US").
    #[arg(long, requires = "address_line1")]
    country: Option<String>,
}

impl AddressArgs {
    /// The address the flags give; None when they give none (the address on file is kept).
    fn address(self) -> Option<Address> {
        let text = |s: Option<String>| s.map(|s| s.trim().to_owned()).unwrap_or_default();
        let line1 = self.address_line1?;
        Some(Address {
            name: text(self.recipient),
            line1: line1.trim().to_owned(),
            line2: text(self.address_line2),
            city: text(self.city),
            region: text(self.region),
            postal_code: text(self.postal_code),
            country_code: text(self.country).to_ascii_uppercase(),
        })
    }
}

impl PayeeArgs {
    /// The payee `name` with what the flags give; None when they give nothing.
    fn payee(self, name: String) -> Option<Payee> {
        let text = |s: Option<String>| s.map(|s| s.trim().to_owned()).unwrap_or_default();
        let payee = Payee {
            name: name.clone(),
            legal_name: text(self.legal_name),
            email: text(self.email),
            cash_method: self.cash.map_or(0, i32::from),
            stripe_account: text(self.stripe_account),
            paypal_email: text(self.paypal_email),
            shipping_address: self.address.address(),
            tax_form: self.tax_form.map_or(0, i32::from),
            tax_id: text(self.tax_id),
            tax_country: text(self.tax_country).to_ascii_uppercase(),
            cash_blocked_reason: String::new(),
            update_time: None,
            tax_form_signed_on: text(self.tax_form_signed_on),
            us_person: self.us_person,
            // Output only: the server sets it once the payee is erased.
            pseudonym: String::new(),
        };
        // UpdatePayee keeps what is unset, so a payee with only its name would change nothing.
        let unchanged = Payee {
            name,
            ..Default::default()
        };
        (payee != unchanged).then_some(payee)
    }
}

/// stripe or paypal: the ways cash is paid.
fn cash_method(input: &str) -> Result<Method, String> {
    match vocab::parse::<Method>(input) {
        Ok(m @ (Method::Stripe | Method::Paypal)) => Ok(m),
        _ => Err(format!("cash is paid by stripe or paypal, not \"{}\"", input.trim())),
    }
}

/// w9, w8ben or w8ben-e: the forms a payee can file ("missing" is the server's to say).
fn tax_form(input: &str) -> Result<TaxForm, String> {
    match vocab::parse::<TaxForm>(input) {
        Ok(TaxForm::Missing) | Err(_) => Err(format!(
            "unknown tax form \"{}\" (expected w9, w8ben or w8ben-e)",
            input.trim()
        )),
        Ok(form) => Ok(form),
    }
}

/// The payee the caller means: `--payee`, else the influencer the token is for.
fn payee_name(flag: Option<&str>, connect: &ConnectArgs) -> Result<String> {
    match flag {
        Some(p) => Ok(resource("payees", p)),
        None => Ok(payee_of_subject(&connect.subject()?)?),
    }
}

/// "influencers/ID" -> "payees/ID": an influencer's payee profile has their id.
fn payee_of_subject(subject: &str) -> Result<String, String> {
    match subject.strip_prefix("influencers/") {
        Some(id) if !id.is_empty() => Ok(format!("payees/{id}")),
        _ => Err(format!(
            "the token is for \"{subject}\", not an influencer: pass --payee payees/ID"
        )),
    }
}

pub(crate) async fn payee(command: PayeeCommand, connect: &ConnectArgs, json: bool) -> Result<()> {
    let payee = match command {
        PayeeCommand::Get { payee } => {
            let name = payee_name(payee.as_deref(), connect)?;
            connect
                .payouts()
                .await?
                .get_payee(GetPayeeRequest { name })
                .await?
                .into_inner()
                .payee
        }
        PayeeCommand::Set(args) => {
            let name = payee_name(args.payee.as_deref(), connect)?;
            let payee = args
                .payee(name)
                .ok_or("nothing to set: give what to change (--legal-name, --cash, --tax-form, ...)")?;
            connect
                .payouts()
                .await?
                .update_payee(UpdatePayeeRequest { payee: Some(payee) })
                .await?
                .into_inner()
                .payee
        }
    };
    let p = payee.ok_or("the server answered without a payee")?;
    output::show(json, || payee_json(&p), || payee_lines(&p))
}

// ---------------------------------------------------------------- reading

/// What a payout is, as the terms said it: "$250.00 USD cash", "$50.00 USD Amazon gift card",
/// "2 × Headphones (SKU-1, $45.00 USD each)".
fn describe(p: &Payout) -> String {
    let mut c = Compensation::default();
    match PayoutKind::try_from(p.kind) {
        Ok(PayoutKind::Cash) => c.cash = p.amount.clone(),
        Ok(PayoutKind::GiftCard) => c.gift_cards.push(GiftCard {
            value: p.amount.clone(),
            brand: p.gift_card_brand.clone(),
        }),
        Ok(PayoutKind::Product) => {
            let s = p.shipment.clone().unwrap_or_default();
            c.products.push(Product {
                sku: s.sku,
                title: s.title,
                declared_value: s.declared_value,
                quantity: s.quantity,
            });
        }
        _ => return p.amount.as_ref().map_or_else(|| "-".to_owned(), money),
    }
    terms::compensation(Some(&c))
}

/// Why a payout waits or failed, if it does.
fn reason(p: &Payout) -> &str {
    if p.failure_reason.is_empty() {
        &p.blocked_reason
    } else {
        &p.failure_reason
    }
}

fn payouts_table(payouts: &[Payout]) -> Table {
    let mut t = output::table(&["payout", "influencer", "what", "state", "method", "reason", "updated"]);
    for p in payouts {
        t.add_row(vec![
            Cell::new(&p.name),
            Cell::new(&p.influencer),
            Cell::new(describe(p)),
            Cell::new(vocab::label::<PayoutState>(p.state)),
            Cell::new(vocab::label::<Method>(p.method)),
            Cell::new(reason(p)),
            Cell::new(time(p.update_time.as_ref())),
        ]);
    }
    t
}

/// A payout as people read it: what and to whom, where it stands, what it is for, its times.
fn payout_lines(p: &Payout) -> Vec<String> {
    let mut out = vec![format!("{}  {} to {}", p.name, describe(p), p.influencer)];
    let mut status = vec![vocab::label::<PayoutState>(p.state)];
    if p.method != 0 {
        status.push(format!("via {}", vocab::label::<Method>(p.method)));
    }
    if !p.provider_reference.is_empty() {
        status.push(format!("reference {}", p.provider_reference));
    }
    if p.attempts > 0 {
        status.push(format!(
            "{} attempt{}",
            p.attempts,
            if p.attempts == 1 { "" } else { "s" }
        ));
    }
    out.push(format!("  {}", status.join("; ")));
    out.push(format!(
        "  contract {}; campaign {}; released by {}",
        p.contract, p.campaign, p.deliverable
    ));
    if !p.blocked_reason.is_empty() {
        out.push(format!("  blocked: {}", p.blocked_reason));
    }
    if !p.failure_reason.is_empty() {
        out.push(format!("  failed: {}", p.failure_reason));
    }
    if let Some(s) = p
        .shipment
        .as_ref()
        .filter(|s| !s.carrier.is_empty() || !s.status.is_empty())
    {
        let tracked = if s.carrier.is_empty() {
            String::new()
        } else {
            format!("{} {}, ", s.carrier, s.tracking_code)
        };
        let status = if s.status.is_empty() {
            "no status yet"
        } else {
            &s.status
        };
        out.push(format!(
            "  shipment: {tracked}{} at {}",
            status.replace('_', " "),
            time(s.status_time.as_ref())
        ));
    }
    let times: Vec<String> = [
        ("created", &p.create_time),
        ("approved", &p.approve_time),
        ("submitted", &p.submit_time),
        ("paid", &p.paid_time),
    ]
    .into_iter()
    .filter_map(|(what, t)| t.as_ref().map(|t| format!("{what} {}", time(Some(t)))))
    .collect();
    out.push(format!("  {}", times.join("; ")));
    out
}

fn run_lines(campaign: &str, r: &RunPayoutsResponse) -> Vec<String> {
    let of = if campaign.is_empty() {
        String::new()
    } else {
        format!(" of {campaign}")
    };
    let mut out = vec![format!(
        "Submitted {} payout{}{of}: {} paid, {} failed, {} pending at the provider; {} blocked.",
        output::count(i64::from(r.submitted)),
        if r.submitted == 1 { "" } else { "s" },
        output::count(i64::from(r.paid)),
        output::count(i64::from(r.failed)),
        output::count(i64::from(r.pending)),
        output::count(i64::from(r.blocked)),
    )];
    if r.blocked > 0 {
        out.push("Why they are blocked: chorus payouts list --state blocked".to_owned());
    }
    out
}

/// Each line a payout, then the totals per currency.
fn statement_lines(s: &Statement, year: Option<i32>) -> Vec<String> {
    let period = year.map_or_else(|| "every year".to_owned(), |y| y.to_string());
    let whom = if s.payee.is_empty() {
        s.influencer.clone()
    } else {
        format!("{} ({})", s.influencer, s.payee)
    };
    let mut out = vec![format!("Statement of {whom}, {period}")];
    if s.lines.is_empty() {
        out.push("no payouts".to_owned());
    } else {
        let mut t = output::table(&["payout", "what", "amount", "state", "approved", "paid", "reference"]);
        for l in &s.lines {
            t.add_row(vec![
                Cell::new(&l.payout),
                Cell::new(&l.description),
                Cell::new(l.amount.as_ref().map_or_else(|| "-".to_owned(), money)).set_alignment(CellAlignment::Right),
                Cell::new(vocab::label::<PayoutState>(l.state)),
                Cell::new(time(l.approve_time.as_ref())),
                Cell::new(time(l.paid_time.as_ref())),
                Cell::new(&l.provider_reference),
            ]);
        }
        out.push(t.to_string());
    }
    out.push(format!("Paid: {}", totals(&s.paid)));
    out.push(format!("Owed: {}", totals(&s.owed)));
    out
}

/// "$1,250.00 USD, 40.00 EUR", or "nothing".
fn totals(amounts: &[Money]) -> String {
    if amounts.is_empty() {
        return "nothing".to_owned();
    }
    amounts.iter().map(money).collect::<Vec<_>>().join(", ")
}

fn reconcile_lines(campaign: &str, r: &ReconcileResponse) -> Vec<String> {
    let of = if campaign.is_empty() {
        " of the last 90 days".to_owned()
    } else {
        format!(" of {campaign}")
    };
    let compared = format!("Compared {} payouts{of}", output::count(i64::from(r.compared)));
    if r.differences.is_empty() {
        return vec![format!("{compared}: no differences.")];
    }
    let n = r.differences.len();
    let mut t = output::table(&["payout", "payee", "difference", "provider", "reference", "detail"]);
    for d in &r.differences {
        t.add_row(vec![
            Cell::new(&d.payout),
            Cell::new(&d.payee),
            Cell::new(d.kind.replace('_', " ")),
            Cell::new(&d.provider),
            Cell::new(&d.provider_reference),
            Cell::new(&d.detail),
        ]);
    }
    vec![
        format!(
            "{compared}: {} difference{}.",
            output::count(n as i64),
            if n == 1 { "" } else { "s" }
        ),
        t.to_string(),
    ]
}

/// A payee as people read it; the server has masked what is secret.
fn payee_lines(p: &Payee) -> Vec<String> {
    let or_dash = |s: &str| if s.is_empty() { "-".to_owned() } else { s.to_owned() };
    if !p.pseudonym.is_empty() {
        return vec![format!("{}  erased, shown as {}", p.name, p.pseudonym)];
    }
    let mut out = vec![format!(
        "{}  {} <{}>",
        p.name,
        or_dash(&p.legal_name),
        or_dash(&p.email)
    )];
    let account = match Method::try_from(p.cash_method) {
        Ok(Method::Stripe) => format!(", account {}", or_dash(&p.stripe_account)),
        Ok(Method::Paypal) => format!(", {}", or_dash(&p.paypal_email)),
        _ => String::new(),
    };
    out.push(format!("  cash: {}{account}", vocab::label::<Method>(p.cash_method)));
    out.push(format!(
        "  tax: form {}, resident in {}, id {}",
        vocab::label::<TaxForm>(p.tax_form),
        or_dash(&p.tax_country),
        or_dash(&p.tax_id)
    ));
    let address = p.shipping_address.clone().unwrap_or_default();
    let place: Vec<&str> = [
        &address.line1,
        &address.line2,
        &address.city,
        &address.region,
        &address.postal_code,
        &address.country_code,
    ]
    .into_iter()
    .map(String::as_str)
    .filter(|s| !s.is_empty())
    .collect();
    out.push(format!("  ship to: {}", or_dash(&place.join(", "))));
    out.push(if p.cash_blocked_reason.is_empty() {
        "  cash payouts: nothing stops them".to_owned()
    } else {
        format!("  cash payouts blocked: {}", p.cash_blocked_reason)
    });
    out.push(format!("  updated {}", time(p.update_time.as_ref())));
    out
}

// ---------------------------------------------------------------- JSON

pub(crate) fn payout_json(p: &Payout) -> Value {
    json!({
        "name": p.name,
        "contract": p.contract,
        "campaign": p.campaign,
        "influencer": p.influencer,
        "deliverable": p.deliverable,
        "kind": enum_json::<PayoutKind>(p.kind),
        "amount": money_json(p.amount.as_ref()),
        "state": enum_json::<PayoutState>(p.state),
        "method": enum_json::<Method>(p.method),
        "gift_card_brand": p.gift_card_brand,
        "shipment": p.shipment.as_ref().map(|s| json!({
            "sku": s.sku,
            "title": s.title,
            "quantity": s.quantity,
            "declared_value": money_json(s.declared_value.as_ref()),
            "carrier": s.carrier,
            "tracking_code": s.tracking_code,
            "status": s.status,
            "status_time": time_json(s.status_time.as_ref()),
        })),
        "provider_reference": p.provider_reference,
        "blocked_reason": p.blocked_reason,
        "failure_reason": p.failure_reason,
        "attempts": p.attempts,
        "create_time": time_json(p.create_time.as_ref()),
        "approve_time": time_json(p.approve_time.as_ref()),
        "submit_time": time_json(p.submit_time.as_ref()),
        "paid_time": time_json(p.paid_time.as_ref()),
        "update_time": time_json(p.update_time.as_ref()),
    })
}

fn run_json(r: &RunPayoutsResponse) -> Value {
    json!({
        "submitted": r.submitted,
        "paid": r.paid,
        "failed": r.failed,
        "blocked": r.blocked,
        "pending": r.pending,
    })
}

fn statement_json(s: &Statement) -> Value {
    let amounts = |m: &[Money]| m.iter().map(|m| money_json(Some(m))).collect::<Vec<_>>();
    json!({
        "influencer": s.influencer,
        "payee": s.payee,
        "lines": s.lines.iter().map(|l| json!({
            "payout": l.payout,
            "contract": l.contract,
            "deliverable": l.deliverable,
            "campaign": l.campaign,
            "kind": enum_json::<PayoutKind>(l.kind),
            "amount": money_json(l.amount.as_ref()),
            "state": enum_json::<PayoutState>(l.state),
            "description": l.description,
            "approve_time": time_json(l.approve_time.as_ref()),
            "paid_time": time_json(l.paid_time.as_ref()),
            "provider_reference": l.provider_reference,
        })).collect::<Vec<_>>(),
        "paid": amounts(&s.paid),
        "owed": amounts(&s.owed),
    })
}

fn reconcile_json(r: &ReconcileResponse) -> Value {
    json!({
        "compared": r.compared,
        "differences": r.differences.iter().map(difference_json).collect::<Vec<_>>(),
    })
}

fn difference_json(d: &Difference) -> Value {
    json!({
        "payout": d.payout,
        "payee": d.payee,
        "kind": d.kind,
        "provider": d.provider,
        "provider_reference": d.provider_reference,
        "detail": d.detail,
    })
}

fn payee_json(p: &Payee) -> Value {
    json!({
        "name": p.name,
        "legal_name": p.legal_name,
        "email": p.email,
        "cash_method": enum_json::<Method>(p.cash_method),
        "stripe_account": p.stripe_account,
        "paypal_email": p.paypal_email,
        "shipping_address": p.shipping_address.as_ref().map(|a| json!({
            "name": a.name,
            "line1": a.line1,
            "line2": a.line2,
            "city": a.city,
            "region": a.region,
            "postal_code": a.postal_code,
            "country_code": a.country_code,
        })),
        "tax_form": enum_json::<TaxForm>(p.tax_form),
        "tax_id": p.tax_id,
        "tax_country": p.tax_country,
        "cash_blocked_reason": p.cash_blocked_reason,
        "pseudonym": p.pseudonym,
        "update_time": time_json(p.update_time.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_proto::payouts::{Shipment, StatementLine};
    use clap::Parser;
    use prost_types::Timestamp;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(clap::Parser, Debug)]
    struct PayeeCli {
        #[command(subcommand)]
        command: PayeeCommand,
    }

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("payouts").chain(args.iter().copied())).map(|c| c.command)
    }

    /// `chorus payee set ARGS` as the request's payee, for payees/p1.
    fn payee_set(args: &[&str]) -> Result<Option<Payee>, clap::Error> {
        let argv = ["payee", "set"].into_iter().chain(args.iter().copied());
        match PayeeCli::try_parse_from(argv)?.command {
            PayeeCommand::Set(a) => Ok(a.payee("payees/p1".to_owned())),
            PayeeCommand::Get { .. } => panic!("not set"),
        }
    }

    fn usd(amount_minor: i64) -> Money {
        Money {
            currency_code: "USD".to_owned(),
            amount_minor,
        }
    }

    /// 2026-12-01T00:00:00Z.
    fn at() -> Option<Timestamp> {
        Some(Timestamp {
            seconds: 1_796_083_200,
            nanos: 0,
        })
    }

    const PAYOUT: &str = "payouts/0193a5b2-cccc-7ccc-8ccc-cccccccccccc";

    fn failed_cash() -> Payout {
        Payout {
            name: PAYOUT.to_owned(),
            contract: "contracts/k1".to_owned(),
            campaign: "campaigns/c1".to_owned(),
            influencer: "influencers/i1".to_owned(),
            deliverable: "contracts/k1/deliverables/2".to_owned(),
            kind: PayoutKind::Cash as i32,
            amount: Some(usd(25_000)),
            state: PayoutState::Failed as i32,
            method: Method::Paypal as i32,
            provider_reference: "5KX12345".to_owned(),
            failure_reason: "RECEIVER_UNREGISTERED".to_owned(),
            attempts: 2,
            create_time: at(),
            submit_time: at(),
            update_time: at(),
            ..Default::default()
        }
    }

    fn shipped_product() -> Payout {
        Payout {
            name: "payouts/p2".to_owned(),
            influencer: "influencers/i1".to_owned(),
            kind: PayoutKind::Product as i32,
            amount: Some(usd(9_000)),
            state: PayoutState::Paid as i32,
            method: Method::Shipment as i32,
            shipment: Some(Shipment {
                sku: "SKU-1".to_owned(),
                title: "Headphones".to_owned(),
                quantity: 2,
                declared_value: Some(usd(4_500)),
                carrier: "USPS".to_owned(),
                tracking_code: "9400111899223197428490".to_owned(),
                status: "delivered".to_owned(),
                status_time: at(),
            }),
            paid_time: at(),
            ..Default::default()
        }
    }

    #[test]
    fn list_flags_map_onto_the_request() {
        let Command::List(args) = parse(&[
            "list",
            "--campaign",
            "c1",
            "--contract",
            "k1",
            "--influencer",
            "influencers/i1",
            "--state",
            "held",
            "--page-size",
            "50",
            "--all",
        ])
        .unwrap() else {
            panic!("not list");
        };
        let r = args.request();
        assert_eq!(r.campaign, "campaigns/c1");
        assert_eq!(r.contract, "contracts/k1");
        assert_eq!(r.influencer, "influencers/i1");
        assert_eq!(r.state, PayoutState::Held as i32);
        assert_eq!(args.paging.page_size, Some(50));
        assert!(args.paging.all);
        let err = parse(&["list", "--state", "lost"]).unwrap_err().to_string();
        assert!(err.contains("unknown payout state \"lost\""), "{err}");
        assert!(err.contains("paid"), "{err}");
        assert!(parse(&["list", "--page-size", "1001"]).is_err());
    }

    #[test]
    fn names_take_the_whole_name_or_the_id() {
        assert_eq!(payout_name("abc"), "payouts/abc");
        assert_eq!(payout_name(" payouts/abc "), "payouts/abc");
        assert_eq!(resource("ledgerAccounts", "ledgerAccounts/x"), "ledgerAccounts/x");
        // Another collection's name is passed on whole, for the server to refuse.
        assert_eq!(resource("payees", "payeesX"), "payees/payeesX");
        assert!(matches!(parse(&["statement", "i1", "--year", "2026"]).unwrap(),
            Command::Statement { influencer, year: Some(2026) } if influencer == "influencers/i1"));
        assert!(parse(&["statement", "i1", "--year", "26"]).is_err());
        assert!(parse(&["reverse", "p1"]).is_err(), "a reason is required");
    }

    #[test]
    fn a_shipment_needs_a_carrier_with_its_tracking_or_a_status() {
        assert!(parse(&["ship", "p1", "--carrier", "USPS", "--tracking", "9400"]).is_ok());
        assert!(parse(&["ship", "p1", "--status", "delivered"]).is_ok());
        assert!(parse(&["ship", "p1"]).is_err());
        assert!(parse(&["ship", "p1", "--carrier", "USPS"]).is_err());
        assert!(parse(&["ship", "p1", "--tracking", "9400", "--status", "delivered"]).is_err());
    }

    #[test]
    fn a_payout_reads_with_its_state_reason_and_times() {
        let p = failed_cash();
        let lines = payout_lines(&p);
        assert_eq!(
            lines,
            [
                format!("{PAYOUT}  $250.00 USD cash to influencers/i1"),
                "  failed; via paypal; reference 5KX12345; 2 attempts".to_owned(),
                "  contract contracts/k1; campaign campaigns/c1; released by contracts/k1/deliverables/2".to_owned(),
                "  failed: RECEIVER_UNREGISTERED".to_owned(),
                "  created 2026-12-01T00:00:00Z; submitted 2026-12-01T00:00:00Z".to_owned(),
            ]
        );
        let shipped = payout_lines(&shipped_product());
        assert_eq!(
            shipped[0],
            "payouts/p2  2 × Headphones (SKU-1, $45.00 USD each) to influencers/i1"
        );
        assert!(
            shipped.contains(&"  shipment: USPS 9400111899223197428490, delivered at 2026-12-01T00:00:00Z".to_owned()),
            "{shipped:#?}"
        );
        let gift = Payout {
            kind: PayoutKind::GiftCard as i32,
            amount: Some(usd(5_000)),
            gift_card_brand: "Amazon".to_owned(),
            ..Default::default()
        };
        assert_eq!(describe(&gift), "$50.00 USD Amazon gift card");

        let table = payouts_table(&[p.clone(), shipped_product()]).to_string();
        let row = table.lines().find(|l| l.contains(PAYOUT)).unwrap();
        for cell in ["$250.00 USD cash", "failed", "paypal", "RECEIVER_UNREGISTERED"] {
            assert!(row.contains(cell), "{cell} in {row}");
        }
        assert!(table.contains("shipment"), "{table}");

        let v = payout_json(&p);
        assert_eq!(v["kind"], "PAYOUT_KIND_CASH");
        assert_eq!(v["state"], "PAYOUT_STATE_FAILED");
        assert_eq!(v["method"], "METHOD_PAYPAL");
        assert_eq!(v["amount"], json!({"currency_code": "USD", "amount_minor": 25_000}));
        assert_eq!(v["paid_time"], Value::Null);
        let v = payout_json(&shipped_product());
        assert_eq!(v["shipment"]["declared_value"]["amount_minor"], 4_500);
        assert_eq!(v["shipment"]["tracking_code"], "9400111899223197428490");
    }

    #[test]
    fn a_statement_reads_as_lines_with_totals_per_currency() {
        let s = Statement {
            influencer: "influencers/i1".to_owned(),
            lines: vec![
                StatementLine {
                    payout: "payouts/p1".to_owned(),
                    kind: PayoutKind::Cash as i32,
                    amount: Some(usd(25_000)),
                    state: PayoutState::Paid as i32,
                    description: "cash for deliverable 2 of 3".to_owned(),
                    approve_time: at(),
                    paid_time: at(),
                    provider_reference: "tr_1".to_owned(),
                    ..Default::default()
                },
                StatementLine {
                    payout: "payouts/p2".to_owned(),
                    kind: PayoutKind::GiftCard as i32,
                    amount: Some(Money {
                        currency_code: "EUR".to_owned(),
                        amount_minor: 4_000,
                    }),
                    state: PayoutState::Approved as i32,
                    description: "Amazon gift card".to_owned(),
                    ..Default::default()
                },
            ],
            paid: vec![usd(125_000)],
            owed: vec![Money {
                currency_code: "EUR".to_owned(),
                amount_minor: 4_000,
            }],
            payee: "payee-3f9a0c12d4e5b6a7".to_owned(),
        };
        let lines = statement_lines(&s, Some(2026));
        assert_eq!(lines[0], "Statement of influencers/i1 (payee-3f9a0c12d4e5b6a7), 2026");
        let row = lines[1].lines().find(|l| l.contains("payouts/p1")).unwrap();
        for cell in ["cash for deliverable 2 of 3", "$250.00 USD", "paid", "tr_1"] {
            assert!(row.contains(cell), "{cell} in {row}");
        }
        assert!(
            lines[1].contains("40.00 EUR") && lines[1].contains("approved"),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], "Paid: $1,250.00 USD");
        assert_eq!(lines[3], "Owed: 40.00 EUR");
        let empty = Statement {
            influencer: "influencers/i1".to_owned(),
            ..Default::default()
        };
        assert_eq!(
            statement_lines(&empty, None),
            [
                "Statement of influencers/i1, every year",
                "no payouts",
                "Paid: nothing",
                "Owed: nothing"
            ]
        );
        let v = statement_json(&s);
        assert_eq!(v["lines"][1]["state"], "PAYOUT_STATE_APPROVED");
        assert_eq!(v["paid"], json!([{"currency_code": "USD", "amount_minor": 125_000}]));
        assert_eq!(v["owed"][0]["currency_code"], "EUR");
    }

    #[test]
    fn a_run_and_a_reconciliation_say_what_they_found() {
        let r = RunPayoutsResponse {
            submitted: 12,
            paid: 10,
            failed: 1,
            blocked: 2,
            pending: 1,
        };
        assert_eq!(
            run_lines("campaigns/c1", &r),
            [
                "Submitted 12 payouts of campaigns/c1: 10 paid, 1 failed, 1 pending at the provider; 2 blocked.",
                "Why they are blocked: chorus payouts list --state blocked",
            ]
        );
        assert_eq!(
            run_json(&r),
            json!({"submitted": 12, "paid": 10, "failed": 1, "blocked": 2, "pending": 1})
        );

        let clean = ReconcileResponse {
            compared: 40,
            differences: vec![],
        };
        assert_eq!(
            reconcile_lines("", &clean),
            ["Compared 40 payouts of the last 90 days: no differences."]
        );
        let found = ReconcileResponse {
            compared: 40,
            differences: vec![Difference {
                payout: "payouts/p1".to_owned(),
                kind: "amount_differs".to_owned(),
                provider: "stripe".to_owned(),
                provider_reference: "tr_1".to_owned(),
                detail: "ours 25.00 USD paid, theirs 20.00 USD".to_owned(),
                payee: "payee-3f9a0c12d4e5b6a7".to_owned(),
            }],
        };
        let lines = reconcile_lines("campaigns/c1", &found);
        assert_eq!(lines[0], "Compared 40 payouts of campaigns/c1: 1 difference.");
        let row = lines[1].lines().find(|l| l.contains("payouts/p1")).unwrap();
        for cell in [
            "amount differs",
            "stripe",
            "tr_1",
            "ours 25.00 USD paid, theirs 20.00 USD",
        ] {
            assert!(row.contains(cell), "{cell} in {row}");
        }
        assert_eq!(reconcile_json(&found)["differences"][0]["kind"], "amount_differs");
    }

    #[test]
    fn payee_flags_set_only_what_they_give() {
        let p = payee_set(&[
            "--legal-name",
            " Maya Lopez ",
            "--cash",
            "stripe",
            "--stripe-account",
            "acct_1Nv0FGQ9RKHgCVdK",
            "--tax-form",
            "w8ben-e",
            "--tax-country",
            "mx",
            "--address-line1",
            "1 Main St",
            "--city",
            "Austin",
            "--region",
            "TX",
            "--country",
            "us",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(p.name, "payees/p1");
        assert_eq!(p.legal_name, "Maya Lopez");
        assert_eq!(p.cash_method, Method::Stripe as i32);
        assert_eq!(p.stripe_account, "acct_1Nv0FGQ9RKHgCVdK");
        assert_eq!(p.tax_form, TaxForm::W8benE as i32);
        assert_eq!(p.tax_country, "MX");
        assert_eq!(p.email, "", "unset: kept by the server");
        let a = p.shipping_address.unwrap();
        assert_eq!(
            (a.line1.as_str(), a.city.as_str(), a.country_code.as_str()),
            ("1 Main St", "Austin", "US")
        );

        assert_eq!(payee_set(&[]).unwrap(), None, "nothing to set");
        assert_eq!(payee_set(&["--payee", "payees/p9"]).unwrap(), None);
        let err = payee_set(&["--cash", "tremendous"]).unwrap_err().to_string();
        assert!(err.contains("stripe or paypal"), "{err}");
        assert!(payee_set(&["--city", "Austin"]).is_err(), "an address is written whole");
        assert!(payee_set(&["--address-line1", "1 Main St", "--city", "Austin"]).is_err());
        for bad in ["1040", "missing"] {
            let err = payee_set(&["--tax-form", bad]).unwrap_err().to_string();
            assert!(err.contains("expected w9, w8ben or w8ben-e"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_payee_is_the_influencer_the_token_is_for() {
        assert_eq!(payee_of_subject("influencers/abc"), Ok("payees/abc".to_owned()));
        let err = payee_of_subject("operator").unwrap_err();
        assert!(err.contains("not an influencer: pass --payee"), "{err}");
        assert!(payee_of_subject("influencers/").is_err());
    }

    #[test]
    fn a_payee_reads_masked_with_what_blocks_cash() {
        let p = Payee {
            name: "payees/p1".to_owned(),
            legal_name: "Maya Lopez".to_owned(),
            email: "maya@example.com".to_owned(),
            cash_method: Method::Stripe as i32,
            stripe_account: "acct_••••CVdK".to_owned(),
            shipping_address: Some(Address {
                city: "Austin".to_owned(),
                country_code: "US".to_owned(),
                ..Default::default()
            }),
            tax_form: TaxForm::Missing as i32,
            tax_country: "US".to_owned(),
            cash_blocked_reason: "no W-9 on file".to_owned(),
            update_time: at(),
            ..Default::default()
        };
        assert_eq!(
            payee_lines(&p),
            [
                "payees/p1  Maya Lopez <maya@example.com>",
                "  cash: stripe, account acct_••••CVdK",
                "  tax: form missing, resident in US, id -",
                "  ship to: Austin, US",
                "  cash payouts blocked: no W-9 on file",
                "  updated 2026-12-01T00:00:00Z",
            ]
        );
        let v = payee_json(&p);
        assert_eq!(v["cash_method"], "METHOD_STRIPE");
        assert_eq!(v["tax_form"], "TAX_FORM_MISSING");
        assert_eq!(v["shipping_address"]["city"], "Austin");
    }

    #[test]
    fn a_tax_report_says_what_it_wrote() {
        let r = GetTaxReportResponse {
            year: 2026,
            threshold: Some(usd(60_000)),
            csv: b"payee,legal_name\npayees/p1,Maya\n".to_vec(),
            rows: 1,
        };
        assert_eq!(
            tax_report_line(&r, "1099.csv"),
            "Wrote 1099.csv: 1 payee at or over $600.00 USD in 2026 (32 bytes)."
        );
        assert_eq!(tax_report_json(&r)["threshold"]["amount_minor"], 60_000);
    }

    /// Pages of a list held in memory, 2 items a page, tokens "1", "2", ...
    fn fake_pages(items: &[i32]) -> impl FnMut(i32, String) -> std::future::Ready<Result<(Vec<i32>, String)>> + '_ {
        move |_, token| {
            let start: usize = token.parse().unwrap_or(0);
            let end = (start + 2).min(items.len());
            let next = if end < items.len() {
                end.to_string()
            } else {
                String::new()
            };
            std::future::ready(Ok((items[start..end].to_vec(), next)))
        }
    }

    #[tokio::test]
    async fn paging_fetches_one_page_or_follows_the_tokens() {
        let items = [1, 2, 3, 4, 5];
        let one = Paging::default();
        assert_eq!(
            one.fetch(fake_pages(&items)).await.unwrap(),
            (vec![1, 2], "2".to_owned())
        );
        let from = Paging {
            page_token: Some("2".to_owned()),
            ..Default::default()
        };
        assert_eq!(
            from.fetch(fake_pages(&items)).await.unwrap(),
            (vec![3, 4], "4".to_owned())
        );
        let all = Paging {
            all: true,
            ..Default::default()
        };
        assert_eq!(
            all.fetch(fake_pages(&items)).await.unwrap(),
            (vec![1, 2, 3, 4, 5], String::new())
        );
        let stuck = all
            .fetch(|_, _| std::future::ready(Ok((vec![0], "same".to_owned()))))
            .await;
        assert!(stuck.unwrap_err().to_string().contains("same page token twice"));
    }

    // ------------------------------------------------------------ over real gRPC, on loopback

    use chorus_proto::payouts::payouts_service_server::{PayoutsService, PayoutsServiceServer};
    use chorus_proto::payouts::{
        GetPayeeResponse, GetPayoutResponse, GetStatementResponse, ListPayoutsResponse, ReversePayoutResponse,
        UpdatePayeeResponse, UpdateShipmentResponse,
    };
    use std::sync::{Arc, Mutex};
    use tonic::{Request, Response, Status};

    /// What the fake service was asked, and with which token.
    #[derive(Debug, Default)]
    struct Seen {
        lists: Vec<ListPayoutsRequest>,
        reports: Vec<GetTaxReportRequest>,
        payees: Vec<String>,
        updates: Vec<Payee>,
        reversals: Vec<ReversePayoutRequest>,
        authorization: Vec<String>,
    }

    /// A payouts service that answers from memory and records each request.
    #[derive(Debug, Clone, Default)]
    struct Fake(Arc<Mutex<Seen>>);

    const CSV: &[u8] = b"payee,legal_name,tin,box1\npayees/p1,Maya Lopez,***-**-1234,1250.00\n";

    impl Fake {
        fn note<T>(&self, r: &Request<T>) -> std::sync::MutexGuard<'_, Seen> {
            let mut seen = self.0.lock().unwrap();
            let auth = r
                .metadata()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            seen.authorization.push(auth.unwrap_or_default());
            seen
        }
    }

    #[tonic::async_trait]
    impl PayoutsService for Fake {
        async fn get_payout(&self, r: Request<GetPayoutRequest>) -> Result<Response<GetPayoutResponse>, Status> {
            drop(self.note(&r));
            let payout = Payout {
                name: r.into_inner().name,
                ..failed_cash()
            };
            Ok(Response::new(GetPayoutResponse { payout: Some(payout) }))
        }
        /// Five payouts, two a page; the token is the index of the page's first.
        async fn list_payouts(&self, r: Request<ListPayoutsRequest>) -> Result<Response<ListPayoutsResponse>, Status> {
            let request = r.get_ref().clone();
            self.note(&r).lists.push(request.clone());
            let start: usize = request.page_token.parse().unwrap_or(0);
            let end = (start + 2).min(5);
            let payouts = (start..end)
                .map(|i| Payout {
                    name: format!("payouts/p{i}"),
                    ..failed_cash()
                })
                .collect();
            let next_page_token = if end < 5 { end.to_string() } else { String::new() };
            Ok(Response::new(ListPayoutsResponse {
                payouts,
                next_page_token,
            }))
        }
        async fn run_payouts(&self, _: Request<RunPayoutsRequest>) -> Result<Response<RunPayoutsResponse>, Status> {
            Err(Status::unimplemented("not faked"))
        }
        async fn reverse_payout(
            &self,
            r: Request<ReversePayoutRequest>,
        ) -> Result<Response<ReversePayoutResponse>, Status> {
            let request = r.get_ref().clone();
            self.note(&r).reversals.push(request.clone());
            let payout = Payout {
                name: request.name,
                state: PayoutState::Reversed as i32,
                ..failed_cash()
            };
            Ok(Response::new(ReversePayoutResponse { payout: Some(payout) }))
        }
        async fn update_shipment(
            &self,
            _: Request<UpdateShipmentRequest>,
        ) -> Result<Response<UpdateShipmentResponse>, Status> {
            Err(Status::unimplemented("not faked"))
        }
        async fn get_statement(
            &self,
            _: Request<GetStatementRequest>,
        ) -> Result<Response<GetStatementResponse>, Status> {
            Err(Status::unimplemented("not faked"))
        }
        async fn reconcile(&self, _: Request<ReconcileRequest>) -> Result<Response<ReconcileResponse>, Status> {
            Err(Status::unimplemented("not faked"))
        }
        async fn get_tax_report(
            &self,
            r: Request<GetTaxReportRequest>,
        ) -> Result<Response<GetTaxReportResponse>, Status> {
            let request = *r.get_ref();
            self.note(&r).reports.push(request);
            Ok(Response::new(GetTaxReportResponse {
                year: request.year,
                threshold: Some(usd(60_000)),
                csv: CSV.to_vec(),
                rows: 1,
            }))
        }
        async fn get_payee(&self, r: Request<GetPayeeRequest>) -> Result<Response<GetPayeeResponse>, Status> {
            let name = r.get_ref().name.clone();
            self.note(&r).payees.push(name.clone());
            let payee = Payee {
                name,
                ..Default::default()
            };
            Ok(Response::new(GetPayeeResponse { payee: Some(payee) }))
        }
        async fn update_payee(&self, r: Request<UpdatePayeeRequest>) -> Result<Response<UpdatePayeeResponse>, Status> {
            let payee = r.get_ref().payee.clone().unwrap_or_default();
            self.note(&r).updates.push(payee.clone());
            Ok(Response::new(UpdatePayeeResponse { payee: Some(payee) }))
        }
    }

    /// Serves `fake` on a loopback port; the flags that reach it with `token`.
    async fn serve(fake: Fake, token: &str) -> ConnectArgs {
        let (listener, addr) = chorus_kit::server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(PayoutsServiceServer::new(fake))
                .serve_with_incoming(chorus_kit::server::incoming(listener)),
        );
        let cli = crate::client::tests_support::args(Some(token));
        ConnectArgs {
            payouts_endpoint: format!("http://{addr}"),
            ..cli
        }
    }

    /// A signed token for `subject`, as the identity service would issue it.
    fn token_for(subject: &str) -> String {
        use chorus_kit::auth::{Grant, Issuer, SigningKey};
        let life = std::time::Duration::from_secs(600);
        let issuer = Issuer::new(SigningKey::generate().unwrap(), life);
        let grant = Grant {
            subject: subject.to_owned(),
            tenant: String::new(),
            role: "influencer".to_owned(),
            scopes: vec!["payouts.self".to_owned()],
        };
        issuer.mint(&grant, life).unwrap().0
    }

    #[tokio::test]
    async fn list_all_follows_every_page_with_the_same_filters() {
        let fake = Fake::default();
        let connect = serve(fake.clone(), "brand-token").await;
        let Command::List(args) = parse(&["list", "--campaign", "c1", "--state", "failed", "--all"]).unwrap() else {
            panic!("not list");
        };
        run(Command::List(args), &connect, true).await.unwrap();
        let seen = fake.0.lock().unwrap();
        let tokens: Vec<&str> = seen.lists.iter().map(|r| r.page_token.as_str()).collect();
        assert_eq!(tokens, ["", "2", "4"]);
        for r in &seen.lists {
            assert_eq!(
                (r.campaign.as_str(), r.state),
                ("campaigns/c1", PayoutState::Failed as i32)
            );
        }
        assert_eq!(seen.authorization, ["Bearer brand-token"; 3]);
    }

    #[tokio::test]
    async fn a_reversal_sends_the_payout_name_and_reason() {
        let fake = Fake::default();
        let connect = serve(fake.clone(), "brand-token").await;
        let command = parse(&["reverse", "p1", "--reason", "posted the wrong video"]).unwrap();
        run(command, &connect, false).await.unwrap();
        let seen = fake.0.lock().unwrap();
        assert_eq!(seen.reversals[0].name, "payouts/p1");
        assert_eq!(seen.reversals[0].reason, "posted the wrong video");
    }

    #[tokio::test]
    async fn the_tax_report_lands_in_the_file_byte_for_byte() {
        let fake = Fake::default();
        let connect = serve(fake.clone(), "brand-token").await;
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("1099-nec-2026.csv");
        let command = TaxCommand::Report {
            year: 2026,
            unmasked: true,
            out: Some(out.clone()),
        };
        tax(command, &connect, false).await.unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), CSV);
        let seen = fake.0.lock().unwrap();
        assert_eq!(
            seen.reports,
            [GetTaxReportRequest {
                year: 2026,
                unmasked: true
            }]
        );
    }

    #[tokio::test]
    async fn an_influencers_payee_is_named_by_their_token() {
        let fake = Fake::default();
        let token = token_for("influencers/0193a5b2-1111-7111-8111-111111111111");
        let connect = serve(fake.clone(), &token).await;
        payee(PayeeCommand::Get { payee: None }, &connect, true).await.unwrap();
        let set = PayeeCli::try_parse_from(["payee", "set", "--cash", "paypal", "--paypal-email", "maya@example.com"])
            .unwrap()
            .command;
        payee(set, &connect, false).await.unwrap();
        {
            let seen = fake.0.lock().unwrap();
            assert_eq!(seen.payees, ["payees/0193a5b2-1111-7111-8111-111111111111"]);
            let update = &seen.updates[0];
            assert_eq!(update.name, "payees/0193a5b2-1111-7111-8111-111111111111");
            assert_eq!(update.cash_method, Method::Paypal as i32);
            assert_eq!(update.paypal_email, "maya@example.com");
            assert_eq!(update.legal_name, "", "left unset, so kept");
            assert_eq!(seen.authorization[0], format!("Bearer {token}"));
        }

        // A brand's token names no payee: the command says to pass one, and asks nothing.
        let brand = serve(fake.clone(), &token_for("users/ana")).await;
        let err = payee(PayeeCommand::Get { payee: None }, &brand, false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("pass --payee payees/ID"), "{err}");
        assert_eq!(fake.0.lock().unwrap().payees.len(), 1);
    }
}
