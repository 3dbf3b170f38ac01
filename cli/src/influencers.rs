//! `chorus influencers get|list|import`: read one influencer, list them with filters that map
//! one to one onto `ListInfluencersRequest`, or import a file (see `import`).

use chorus_catalog::evidence::{Evidence, score_with_evidence};
use chorus_proto::registry::{
    GetInfluencerRequest, Influencer, InfluencerStatus, ListInfluencersRequest, SocialAccount, Verdict,
};
use chorus_proto::types::{CompensationKind, DeliverableKind, Platform, Tier};
use comfy_table::{Cell, CellAlignment, Table};
use serde_json::json;

use crate::client::ConnectArgs;
use crate::error::Result;
use crate::output::{self, count, money, time};
use crate::{import, vocab};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// Show one influencer: profile, accounts with metrics, rate card.
    Get(GetArgs),
    /// List influencers; every filter given must hold.
    List(Box<ListArgs>),
    /// Upsert influencers from a CSV or JSON lines file, then record their metrics.
    Import(import::ImportArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct GetArgs {
    /// "influencers/ID" or the bare ID.
    #[arg(value_parser = vocab::influencer_name)]
    name: String,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    /// Only accounts on this platform (instagram, tiktok, youtube, ...).
    #[arg(long, value_parser = vocab::parse::<Platform>)]
    platform: Option<Platform>,
    /// Any of these niche ids; repeat or separate with commas.
    #[arg(long, value_delimiter = ',')]
    niche: Vec<String>,
    /// ISO 3166-1 alpha-2 country code, for example US.
    #[arg(long)]
    country: Option<String>,
    /// Region as stored: a subdivision code such as TX.
    #[arg(long)]
    region: Option<String>,
    /// City name, for example Austin.
    #[arg(long)]
    city: Option<String>,
    /// Any of these languages (BCP 47); repeat or separate with commas.
    #[arg(long, value_delimiter = ',')]
    language: Vec<String>,
    /// Any of these tiers (nano, micro, mid, macro, mega); repeatable.
    #[arg(long, value_delimiter = ',', value_parser = vocab::parse::<Tier>)]
    tier: Vec<Tier>,
    /// At least this many followers on the matching account.
    #[arg(long)]
    min_followers: Option<i64>,
    /// At most this many followers on the matching account.
    #[arg(long)]
    max_followers: Option<i64>,
    /// Engagement by followers, as a fraction (0.05) or a percentage (5%).
    #[arg(long, value_parser = rate)]
    min_engagement: Option<f64>,
    /// Upper bound of engagement by followers, like --min-engagement.
    #[arg(long, value_parser = rate)]
    max_engagement: Option<f64>,
    /// Any of these statuses (active, paused, blocked); repeatable.
    #[arg(long, value_delimiter = ',', value_parser = vocab::parse::<InfluencerStatus>)]
    status: Vec<InfluencerStatus>,
    /// Vetting of the largest account: quality score at least this (0..100).
    #[arg(long)]
    min_quality: Option<f64>,
    /// Any of these vetting verdicts (ok, review, reject); repeatable.
    #[arg(long, value_delimiter = ',', value_parser = vocab::parse::<Verdict>)]
    verdict: Vec<Verdict>,
    /// "create_time" (default), "followers desc", "engagement_rate desc", "display_name".
    #[arg(long)]
    order_by: Option<String>,
    /// 1..1000; the server's default is 50.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=1000))]
    page_size: Option<i32>,
    /// Continue from the token a previous page printed.
    #[arg(long)]
    page_token: Option<String>,
    /// Follow next_page_token until the last page.
    #[arg(long)]
    all: bool,
}

/// "0.05" or "5%" as a fraction in 0..=1.
fn rate(input: &str) -> Result<f64, String> {
    let input = input.trim();
    let (number, scale) = match input.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (input, 1.0),
    };
    let value = number
        .parse::<f64>()
        .map_err(|_| format!("\"{input}\" is not a rate (write 0.05 or 5%)"))?
        / scale;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{input} is outside 0..1 (write 0.05 or 5%)"))
    }
}

impl ListArgs {
    fn request(&self) -> ListInfluencersRequest {
        ListInfluencersRequest {
            page_size: self.page_size.unwrap_or(0),
            page_token: self.page_token.clone().unwrap_or_default(),
            order_by: self.order_by.clone().unwrap_or_default(),
            platform: self.platform.map_or(0, i32::from),
            niches: self.niche.iter().map(|n| n.trim().to_ascii_lowercase()).collect(),
            country_code: self.country.as_deref().unwrap_or_default().trim().to_ascii_uppercase(),
            region: self.region.clone().unwrap_or_default(),
            city: self.city.clone().unwrap_or_default(),
            languages: self.language.iter().map(|l| l.trim().to_owned()).collect(),
            tiers: self.tier.iter().map(|t| i32::from(*t)).collect(),
            min_followers: self.min_followers,
            max_followers: self.max_followers,
            min_engagement_rate: self.min_engagement,
            max_engagement_rate: self.max_engagement,
            statuses: self.status.iter().map(|s| i32::from(*s)).collect(),
            min_quality_score: self.min_quality,
            verdicts: self.verdict.iter().map(|v| i32::from(*v)).collect(),
        }
    }
}

pub(crate) async fn run(command: Command, connect: &ConnectArgs, json: bool) -> Result<()> {
    match command {
        Command::Get(args) => get(args, connect, json).await,
        Command::List(args) => list(*args, connect, json).await,
        Command::Import(args) => import::run(args, connect, json).await,
    }
}

async fn get(args: GetArgs, connect: &ConnectArgs, json: bool) -> Result<()> {
    let mut client = connect.registry().await?;
    let response = client.get_influencer(GetInfluencerRequest { name: args.name }).await?;
    let influencer = response
        .into_inner()
        .influencer
        .ok_or("the server answered without an influencer")?;
    if json {
        output::print_json(&output::influencer_json(&influencer))
    } else {
        outln!("{}", detail_table(&influencer));
        Ok(())
    }
}

async fn list(args: ListArgs, connect: &ConnectArgs, json: bool) -> Result<()> {
    let mut client = connect.registry().await?;
    let mut request = args.request();
    let mut influencers = Vec::new();
    let next = loop {
        let page = client.list_influencers(request.clone()).await?.into_inner();
        influencers.extend(page.influencers);
        if !args.all || page.next_page_token.is_empty() {
            break page.next_page_token;
        }
        if page.next_page_token == request.page_token {
            return Err("the server returned the same page token twice".into());
        }
        request.page_token = page.next_page_token;
    };
    if json {
        let items: Vec<_> = influencers.iter().map(output::influencer_json).collect();
        return output::print_json(&json!({"influencers": items, "next_page_token": next}));
    }
    outln!("{}", list_table(&influencers));
    if !next.is_empty() {
        outln!("next page: --page-token {next}");
    }
    Ok(())
}

fn list_table(influencers: &[Influencer]) -> Table {
    let header = [
        "name",
        "display name",
        "account",
        "followers",
        "engagement",
        "tier",
        "quality",
        "city",
        "country",
        "niches",
    ];
    let mut table = output::table(&header);
    for i in influencers {
        let top = output::top_account(i);
        let metrics = top.and_then(|a| a.metrics.as_ref());
        let location = i.location.clone().unwrap_or_default();
        table.add_row(vec![
            Cell::new(&i.name),
            Cell::new(&i.display_name),
            Cell::new(top.map_or_else(|| "-".to_owned(), account_label)),
            Cell::new(top.and_then(output::followers).map_or_else(|| "-".to_owned(), count))
                .set_alignment(CellAlignment::Right),
            Cell::new(followers_rate(metrics)).set_alignment(CellAlignment::Right),
            Cell::new(metrics.map_or_else(|| "-".to_owned(), |m| vocab::label::<Tier>(m.tier))),
            Cell::new(top.map_or_else(|| "-".to_owned(), vetting_label)),
            Cell::new(location.city),
            Cell::new(location.country_code),
            Cell::new(i.niches.join(", ")),
        ]);
    }
    table
}

/// The engagement rate by followers alone, the one the list filters and sorts by.
fn followers_rate(metrics: Option<&chorus_proto::registry::AccountMetrics>) -> String {
    use chorus_proto::registry::EngagementDenominator;
    metrics
        .and_then(|m| {
            m.engagement_rates
                .iter()
                .find(|r| r.denominator == EngagementDenominator::Followers as i32)
        })
        .map_or_else(|| "-".to_owned(), |r| output::percent(r.rate))
}

/// "100, thin evidence: 2 of 6 signals (review)", "82, 6 of 6 signals (ok)", or "-" before the
/// account's first vetting report: a score says what it rests on, so a REVIEW beside a 100 reads
/// as what it is.
fn vetting_label(account: &SocialAccount) -> String {
    account.vetting.as_ref().map_or_else(
        || "-".to_owned(),
        |v| {
            format!(
                "{} ({})",
                score_with_evidence(v.quality_score, Evidence::from(v)),
                vocab::label::<Verdict>(v.verdict)
            )
        },
    )
}

fn account_label(account: &SocialAccount) -> String {
    format!("{} @{}", vocab::label::<Platform>(account.platform), account.handle)
}

fn detail_table(i: &Influencer) -> Table {
    let mut table = output::table(&["field", "value"]);
    let location = i.location.clone().unwrap_or_default();
    let place: Vec<&str> = [&location.city, &location.region, &location.country_code]
        .into_iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    let mut row = |field: &str, value: String| {
        let value = if value.is_empty() { "-".to_owned() } else { value };
        table.add_row(vec![field.to_owned(), value]);
    };
    row("name", i.name.clone());
    row("display name", i.display_name.clone());
    row("status", vocab::label::<InfluencerStatus>(i.status));
    row("location", place.join(", "));
    row("niches", i.niches.join(", "));
    row("languages", i.languages.join(", "));
    for (n, account) in i.accounts.iter().enumerate() {
        let metrics = account.metrics.as_ref();
        row(&format!("account {}", n + 1), account_label(account));
        row("  url", account.url.clone());
        row("  followers", output::followers(account).map(count).unwrap_or_default());
        row("  engagement", output::engagement(metrics));
        row(
            "  tier",
            metrics.map(|m| vocab::label::<Tier>(m.tier)).unwrap_or_default(),
        );
        row("  vetting", vetting_label(account).replace('-', ""));
        row(
            "  sponsored",
            metrics
                .filter(|m| m.latest.is_some())
                .map(|m| format!("{} of recent posts", output::percent(m.sponsored_share)))
                .unwrap_or_default(),
        );
        let observed = metrics
            .and_then(|m| m.latest.as_ref())
            .and_then(|s| s.observe_time.as_ref());
        row("  observed", observed.map(|t| time(Some(t))).unwrap_or_default());
    }
    let rates: Vec<String> = i
        .rate_card
        .iter()
        .map(|r| {
            let price = r.price.as_ref().map_or_else(|| "-".to_owned(), money);
            format!("{}: {price}", vocab::label::<DeliverableKind>(r.kind))
        })
        .collect();
    row("rate card", rates.join("\n"));
    let kinds: Vec<String> = i
        .compensation_accepted
        .iter()
        .map(|k| vocab::label::<CompensationKind>(*k))
        .collect();
    row("compensation", kinds.join(", "));
    row("email", i.contact.as_ref().map(|c| c.email.clone()).unwrap_or_default());
    row("created", time(i.create_time.as_ref()));
    row("updated", time(i.update_time.as_ref()));
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        list: ListArgs,
    }

    fn parse(args: &[&str]) -> ListArgs {
        let mut argv = vec!["list"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().list
    }

    #[test]
    fn list_flags_map_one_to_one_onto_the_request() {
        let request = parse(&[
            "--platform",
            "instagram",
            "--niche",
            "Food",
            "--niche",
            "travel,pets",
            "--country",
            "us",
            "--city",
            "Austin",
            "--tier",
            "nano",
            "--tier",
            "micro",
            "--min-followers",
            "1000",
            "--min-engagement",
            "5%",
            "--max-engagement",
            "0.2",
            "--status",
            "active",
            "--order-by",
            "followers desc",
            "--page-size",
            "100",
        ])
        .request();
        assert_eq!(request.platform, Platform::Instagram as i32);
        assert_eq!(request.niches, ["food", "travel", "pets"]);
        assert_eq!(request.country_code, "US");
        assert_eq!(request.city, "Austin");
        assert_eq!(request.tiers, [Tier::Nano as i32, Tier::Micro as i32]);
        assert_eq!(request.min_followers, Some(1000));
        assert_eq!(request.max_followers, None);
        assert_eq!(request.min_engagement_rate, Some(0.05));
        assert_eq!(request.max_engagement_rate, Some(0.2));
        assert_eq!(request.statuses, [InfluencerStatus::Active as i32]);
        assert_eq!(request.order_by, "followers desc");
        assert_eq!(request.page_size, 100);
    }

    #[test]
    fn bad_list_flags_are_refused_by_the_parser() {
        let cli = |args: &[&str]| Cli::try_parse_from([&["list"], args].concat());
        assert!(cli(&["--platform", "myspace"]).is_err());
        assert!(cli(&["--min-engagement", "1.5"]).is_err());
        assert!(cli(&["--min-engagement", "abc"]).is_err());
        assert!(cli(&["--page-size", "0"]).is_err());
        assert!(cli(&["--tier", "giant"]).is_err());
    }

    #[test]
    fn the_quality_column_says_what_the_score_rests_on() {
        use chorus_proto::registry::AccountVetting;
        let account = |vetting: Option<AccountVetting>| SocialAccount {
            vetting,
            ..SocialAccount::default()
        };
        // What `chorus seed` gives most people: a perfect score on one snapshot's signals.
        let seeded = AccountVetting {
            quality_score: 100.0,
            verdict: Verdict::Review as i32,
            signals_available: 3,
            signals_total: 6,
            thin_evidence: true,
            ..AccountVetting::default()
        };
        assert_eq!(
            vetting_label(&account(Some(seeded))),
            "100, thin evidence: 3 of 6 signals (review)"
        );
        let vetted = AccountVetting {
            quality_score: 81.6,
            verdict: Verdict::Ok as i32,
            signals_available: 6,
            signals_total: 6,
            ..AccountVetting::default()
        };
        assert_eq!(vetting_label(&account(Some(vetted))), "82, 6 of 6 signals (ok)");
        assert_eq!(vetting_label(&account(None)), "-");
    }
}
