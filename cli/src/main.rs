//! `chorus`: run Chorus on one machine (`up`), fill it with a synthetic population (`seed`),
//! call the registry (`influencers get|list|import`, `vet`), matching (`campaigns`) and
//! contracts (`offers`, `contracts`, `deliverables`, `disclosure`), payouts (`payouts`, `ledger`,
//! `tax`, `payee`), and list and replay dead letters (`events`).
//! Tables by default, `--json` for scripts; any failure prints `error: ...` on stderr and
//! exits non-zero.

/// `println!` that ends the process quietly when whoever reads stdout has gone, as in
/// `chorus influencers list | head -3`, where `println!` would panic.
macro_rules! outln {
    () => { $crate::output::line(format_args!("")) };
    ($($arg:tt)*) => { $crate::output::line(format_args!($($arg)*)) };
}

// First: the modules below register their proto enums with its `proto_enum!`.
#[macro_use]
mod vocab;

mod campaign_data;
mod campaign_status;
mod campaigns;
mod client;
mod contracts;
mod deliverables;
mod disclosure;
mod error;
mod events;
mod import;
mod influencers;
mod ledger;
mod loadgen;
mod measurement;
mod offers;
mod output;
mod payouts;
mod seed;
mod simulate;
mod terms;
mod token;
mod up;
mod vet;

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "chorus", version, about = "Nano-influencer campaigns at scale")]
struct Cli {
    #[command(flatten)]
    connect: client::ConnectArgs,

    /// Print JSON instead of tables, for scripts.
    #[arg(long, global = true, help_heading = client::GLOBAL)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Run every Chorus service on this machine.
    Up(up::UpArgs),
    /// Generate a synthetic influencer population and load it.
    Seed(seed::SeedArgs),
    /// Play a whole campaign with N nanos against `chorus up --simulated-clock`, and check it.
    Simulate(simulate::SimulateArgs),
    /// Read, list and import influencers.
    #[command(subcommand)]
    Influencers(influencers::Command),
    /// Campaigns: write a brief, match, select and shortlist influencers.
    #[command(subcommand)]
    Campaigns(campaigns::Command),
    /// Offers: a campaign's template, offers to many people, accept, decline, counter.
    #[command(subcommand)]
    Offers(offers::Command),
    /// Contracts: sign, amend, send, cancel; the PDF, the sealed record and its offline check.
    #[command(subcommand)]
    Contracts(contracts::Command),
    /// Deliverables: submit a post (checked for ad disclosure), review it.
    #[command(subcommand)]
    Deliverables(deliverables::Command),
    /// Vetting: an account's report with its evidence, or classify follower accounts.
    Vet(vet::VetArgs),
    /// Ad disclosure: check a caption against a jurisdiction's rules, list the rule sets.
    #[command(subcommand)]
    Disclosure(disclosure::Command),
    /// Payouts: list, run, reverse, record shipments, reconcile; an influencer's statement.
    #[command(subcommand)]
    Payouts(payouts::Command),
    /// The ledger: fund a campaign, its budget, the accounts, their balances and transfers.
    #[command(subcommand)]
    Ledger(ledger::Command),
    /// Tax: the year's 1099-NEC report of the tenant's US payees, as CSV.
    #[command(subcommand)]
    Tax(payouts::TaxCommand),
    /// Your payee profile (influencers): how you are paid, your tax form, your address.
    #[command(subcommand)]
    Payee(payouts::PayeeCommand),
    /// Tracked links: make one for an influencer, list them with their clicks.
    #[command(subcommand)]
    Links(measurement::LinksCommand),
    /// Conversions: record an order (attributed by promo code or click), list them.
    #[command(subcommand)]
    Conversions(measurement::ConversionsCommand),
    /// A campaign's report: figures per influencer, segment and tier, and whether segment
    /// differences are real; `--json`, `--csv` or `--html FILE`.
    Report(measurement::ReportArgs),
    /// Dead letters: events a service's consumers gave up on; list and replay them.
    #[command(subcommand)]
    Events(events::Command),
    /// Mint a bearer token with the issuer's signing key.
    Token(token::TokenArgs),
    /// Load generators for the performance targets (see docs/performance.md).
    #[command(subcommand)]
    Loadgen(loadgen::Command),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up::run(args, &cli.connect.data_dir)
            .await
            .map_err(|e| error::Error::from(e.to_string())),
        Command::Token(args) => token::run(args, &cli.connect.data_dir),
        Command::Loadgen(command) => loadgen::run(command, &cli.connect, cli.json).await,
        Command::Seed(args) => seed::run(args, &cli.connect, cli.json).await,
        Command::Simulate(args) => simulate::run(args, &cli.connect).await,
        Command::Campaigns(command) => campaigns::run(command, &cli.connect, cli.json).await,
        Command::Offers(command) => offers::run(command, &cli.connect, cli.json).await,
        Command::Contracts(command) => contracts::run(command, &cli.connect, cli.json).await,
        Command::Deliverables(command) => deliverables::run(command, &cli.connect, cli.json).await,
        Command::Vet(args) => vet::run(args, &cli.connect, cli.json).await,
        Command::Influencers(command) => influencers::run(command, &cli.connect, cli.json).await,
        Command::Events(command) => events::run(command, &cli.connect, cli.json).await,
        Command::Disclosure(command) => disclosure::run(command, &cli.connect, cli.json).await,
        Command::Payouts(command) => payouts::run(command, &cli.connect, cli.json).await,
        Command::Ledger(command) => ledger::run(command, &cli.connect, cli.json).await,
        Command::Tax(command) => payouts::tax(command, &cli.connect, cli.json).await,
        Command::Payee(command) => payouts::payee(command, &cli.connect, cli.json).await,
        Command::Links(command) => measurement::links(command, &cli.connect, cli.json).await,
        Command::Conversions(command) => measurement::conversions(command, &cli.connect, cli.json).await,
        Command::Report(args) => measurement::report(args, &cli.connect, cli.json).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error::report(e.as_ref());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from([
            "chorus",
            "influencers",
            "get",
            "abc",
            "--json",
            "--endpoint",
            "http://h:1",
            "--token",
            "t",
        ])
        .unwrap();
        assert!(cli.json);
        assert_eq!(cli.connect.endpoint, "http://h:1");
        assert_eq!(cli.connect.token.unwrap().expose(), "t");
    }

    #[test]
    fn the_payouts_commands_take_their_own_endpoint() {
        let cli = Cli::try_parse_from([
            "chorus",
            "ledger",
            "balance",
            "ledgerAccounts/a1",
            "--payouts-endpoint",
            "http://payouts:50054",
        ])
        .unwrap();
        assert_eq!(cli.connect.payouts_endpoint, "http://payouts:50054");
        assert!(matches!(cli.command, Command::Ledger(ledger::Command::Balance { .. })));
        for argv in [
            &["chorus", "payouts", "run"][..],
            &["chorus", "tax", "report", "--year", "2026"],
            &["chorus", "payee", "get"],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap();
            assert_eq!(cli.connect.payouts_endpoint, "http://127.0.0.1:50054", "{argv:?}");
        }
        assert!(
            Cli::try_parse_from(["chorus", "tax", "report"]).is_err(),
            "the year is required"
        );
    }
}
