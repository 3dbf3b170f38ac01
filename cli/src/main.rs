//! `chorus`: run Chorus on one machine (`up`), fill it with a synthetic population (`seed`),
//! call the registry (`influencers get|list|import`, `vet`), matching (`campaigns`) and
//! contracts (`offers`, `contracts`, `deliverables`, `disclosure`), and list and replay dead letters
//! (`events`).
//! Tables by default, `--json` for scripts; any failure prints `error: ...` on stderr and
//! exits non-zero.

/// `println!` that ends the process quietly when whoever reads stdout has gone, as in
/// `chorus influencers list | head -3`, where `println!` would panic.
macro_rules! outln {
    () => { $crate::output::line(format_args!("")) };
    ($($arg:tt)*) => { $crate::output::line(format_args!($($arg)*)) };
}

mod campaigns;
mod client;
mod contracts;
mod deliverables;
mod disclosure;
mod error;
mod events;
mod import;
mod influencers;
mod loadgen;
mod offers;
mod output;
mod seed;
mod terms;
mod token;
mod up;
mod vet;
mod vocab;

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
        Command::Campaigns(command) => campaigns::run(command, &cli.connect, cli.json).await,
        Command::Offers(command) => offers::run(command, &cli.connect, cli.json).await,
        Command::Contracts(command) => contracts::run(command, &cli.connect, cli.json).await,
        Command::Deliverables(command) => deliverables::run(command, &cli.connect, cli.json).await,
        Command::Vet(args) => vet::run(args, &cli.connect, cli.json).await,
        Command::Influencers(command) => influencers::run(command, &cli.connect, cli.json).await,
        Command::Events(command) => events::run(command, &cli.connect, cli.json).await,
        Command::Disclosure(command) => disclosure::run(command, &cli.connect, cli.json).await,
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
}
