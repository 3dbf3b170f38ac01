//! `chorus campaigns`: write a brief from flags, then match, select and shortlist against it.
//!
//! ```text
//! chorus campaigns create --name "Vegan dog treats" --niche pets=2 --niche wellness \
//!   --city US:Austin --city US:Denver --deliverable instagram:feed-post --deliverable instagram:story \
//!   --compensation product,cash --budget "5000 USD" --headcount 50 --jurisdiction US
//! chorus campaigns match campaigns/ID --top 20
//! chorus campaigns select campaigns/ID --save-as "first pick"
//! chorus campaigns shortlist decide campaigns/ID/shortlists/ID --accept ID --reject ID
//! ```

use chorus_proto::matching::{
    AudienceTarget, Brief, Campaign, CampaignStatus, CancelCampaignRequest, Candidate, CreateCampaignRequest,
    DecideShortlistMembersRequest, Decision, DeliverableWanted, DiversityCaps, Exclusions, GetCampaignRequest,
    GetShortlistRequest, ListCampaignsRequest, ListShortlistsRequest, MatchInfluencersRequest, MemberDecision,
    NicheWeight, Objective, Segment, SelectInfluencersRequest, Shortlist,
};
use chorus_proto::registry::AgeBucket;
use chorus_proto::types::{CompensationKind, DeliverableKind, Location, Money, Platform, Tier};
use comfy_table::{Cell, CellAlignment};
use serde_json::{Value, json};

use crate::client::ConnectArgs;
use crate::error::Result;
use crate::output::{self, count, enum_json, money, money_json, percent, time_json};
use crate::vocab;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// Create a campaign from a brief given as flags.
    Create(Box<CreateArgs>),
    /// Show a campaign and its brief.
    Get { name: String },
    /// The tenant's campaigns, newest first.
    List {
        /// Only these statuses (draft, matching, contracting, live, completed, cancelled).
        #[arg(long, value_delimiter = ',', value_parser = vocab::parse::<CampaignStatus>)]
        status: Vec<CampaignStatus>,
        #[arg(long, default_value_t = 50)]
        limit: i32,
    },
    /// Cancel a campaign.
    Cancel { name: String },
    /// Where each person of the campaign stands: counts per stage across services, and who is
    /// stuck and why.
    Status { name: String },
    /// Rank the influencers who fit the brief, with each score's breakdown.
    Match {
        name: String,
        /// How many of the best to show.
        #[arg(long, default_value_t = 20)]
        top: i32,
        /// Print every part of the score of the first N candidates.
        #[arg(long, default_value_t = 0)]
        explain: usize,
    },
    /// Choose the set with the most expected engagements within budget, headcount and caps.
    Select {
        name: String,
        /// Save the selection as a shortlist with this name.
        #[arg(long)]
        save_as: Option<String>,
    },
    /// Shortlists: show them, or accept and reject members.
    #[command(subcommand)]
    Shortlist(ShortlistCommand),
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum ShortlistCommand {
    /// A campaign's shortlists.
    List { campaign: String },
    /// One shortlist with its members and decisions.
    Get { name: String },
    /// Accept or reject members (influencer names or bare ids); rejected people leave later matches.
    Decide {
        name: String,
        #[arg(long, value_delimiter = ',')]
        accept: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        reject: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
pub(crate) struct CreateArgs {
    /// The campaign's name.
    #[arg(long)]
    name: String,
    /// awareness, content, sales or audience-test.
    #[arg(long, default_value = "awareness", value_parser = vocab::parse::<Objective>)]
    objective: Objective,
    /// A target niche, optionally weighted: "pets=2" (docs/niches.md).
    #[arg(long = "niche")]
    niches: Vec<String>,
    /// A city as COUNTRY:CITY ("US:Austin").
    #[arg(long = "city")]
    cities: Vec<String>,
    /// A region as COUNTRY:REGION ("US:TX").
    #[arg(long = "region")]
    regions: Vec<String>,
    /// A whole country ("US").
    #[arg(long = "country")]
    countries: Vec<String>,
    #[arg(long = "language")]
    languages: Vec<String>,
    /// Tiers of the account (default nano).
    #[arg(long = "tier", value_delimiter = ',', value_parser = vocab::parse::<Tier>)]
    tiers: Vec<Tier>,
    /// Minimum audience quality score from vetting, 0-100.
    #[arg(long)]
    min_quality: Option<f64>,
    /// Engagement range as fractions, "0.02..0.12" (either end may be empty).
    #[arg(long)]
    engagement: Option<String>,
    /// PLATFORM:KIND[:COUNT], for example "instagram:feed-post" or "tiktok:short-video:2".
    #[arg(long = "deliverable", required = true)]
    deliverables: Vec<String>,
    /// Compensation offered: cash, gift-card, product.
    #[arg(long, value_delimiter = ',', required = true, value_parser = vocab::parse::<CompensationKind>)]
    compensation: Vec<CompensationKind>,
    /// "5000 USD", "5000.50 EUR" or "$5000".
    #[arg(long)]
    budget: String,
    #[arg(long)]
    headcount: i32,
    /// Whose ad-disclosure rules apply (ISO country code).
    #[arg(long, default_value = "US")]
    jurisdiction: String,
    /// An influencer never to include.
    #[arg(long = "exclude")]
    exclude: Vec<String>,
    /// A competitor-exclusivity category ("pet-food").
    #[arg(long = "exclusivity")]
    exclusivity: Vec<String>,
    /// Largest share of the selection in one city, 0-1.
    #[arg(long)]
    max_city_share: Option<f64>,
    /// Largest share of the selection in one niche, 0-1.
    #[arg(long)]
    max_niche_share: Option<f64>,
    /// An audience-test segment: "LABEL=city:Austin", "LABEL=niche:pets,age:25-34".
    #[arg(long = "segment")]
    segments: Vec<String>,
    /// Target audience age buckets ("25-34").
    #[arg(long = "audience-age")]
    audience_ages: Vec<String>,
    /// Target audience countries.
    #[arg(long = "audience-country")]
    audience_countries: Vec<String>,
    /// Idempotency key: a retry with the same key returns the first campaign.
    #[arg(long, default_value = "")]
    request_id: String,
}

pub(crate) async fn run(command: Command, connect: &ConnectArgs, json: bool) -> Result<()> {
    let mut client = connect.matching().await?;
    match command {
        Command::Create(args) => {
            let campaign = brief_from(*args)?;
            let (campaign, request_id) = campaign;
            let created = client
                .create_campaign(CreateCampaignRequest {
                    campaign: Some(campaign),
                    request_id,
                })
                .await?
                .into_inner()
                .campaign
                .ok_or("the server answered without a campaign")?;
            show_campaign(&created, json)
        }
        Command::Get { name } => {
            let c = client
                .get_campaign(GetCampaignRequest {
                    name: campaign_name(&name),
                })
                .await?
                .into_inner()
                .campaign
                .ok_or("the server answered without a campaign")?;
            show_campaign(&c, json)
        }
        Command::List { status, limit } => {
            let page = client
                .list_campaigns(ListCampaignsRequest {
                    page_size: limit,
                    page_token: String::new(),
                    statuses: status.into_iter().map(i32::from).collect(),
                })
                .await?
                .into_inner();
            if json {
                return output::print_json(&json!({
                    "campaigns": page.campaigns.iter().map(campaign_json).collect::<Vec<_>>(),
                    "next_page_token": page.next_page_token,
                }));
            }
            let mut t = output::table(&["campaign", "name", "objective", "status", "budget", "headcount"]);
            for c in &page.campaigns {
                let b = c.brief.clone().unwrap_or_default();
                t.add_row(vec![
                    Cell::new(&c.name),
                    Cell::new(&c.display_name),
                    Cell::new(vocab::label::<Objective>(c.objective)),
                    Cell::new(vocab::label::<CampaignStatus>(c.status)),
                    Cell::new(b.budget.as_ref().map(money).unwrap_or_default()).set_alignment(CellAlignment::Right),
                    Cell::new(b.headcount).set_alignment(CellAlignment::Right),
                ]);
            }
            outln!("{t}");
            Ok(())
        }
        Command::Status { name } => crate::campaign_status::run(campaign_name(&name), connect, json).await,
        Command::Cancel { name } => {
            let c = client
                .cancel_campaign(CancelCampaignRequest {
                    name: campaign_name(&name),
                    ..Default::default()
                })
                .await?
                .into_inner()
                .campaign
                .ok_or("the server answered without a campaign")?;
            show_campaign(&c, json)
        }
        Command::Match { name, top, explain } => {
            let r = client
                .match_influencers(MatchInfluencersRequest {
                    campaign: campaign_name(&name),
                    page_size: top,
                })
                .await?
                .into_inner();
            if json {
                return output::print_json(&json!({
                    "candidates": r.candidates.iter().map(candidate_json).collect::<Vec<_>>(),
                    "matched_count": r.matched_count,
                    "considered_count": r.considered_count,
                    "filter_counts": r.filter_counts.iter().map(|f| json!({"filter": f.filter, "removed_count": f.removed_count})).collect::<Vec<_>>(),
                }));
            }
            outln!(
                "{} of {} influencers fit the brief; the best {}:",
                count(r.matched_count),
                count(r.considered_count),
                r.candidates.len()
            );
            outln!("{}", candidates_table(&r.candidates));
            let removed: Vec<String> = r
                .filter_counts
                .iter()
                .filter(|f| f.removed_count > 0)
                .map(|f| format!("{} {}", f.filter.replace('_', " "), count(f.removed_count)))
                .collect();
            if !removed.is_empty() {
                outln!("Left out by: {}", removed.join(", "));
            }
            for c in r.candidates.iter().take(explain) {
                outln!();
                explain_candidate(c);
            }
            Ok(())
        }
        Command::Select { name, save_as } => {
            let r = client
                .select_influencers(SelectInfluencersRequest {
                    campaign: campaign_name(&name),
                    candidate_limit: 0,
                    save_as: save_as.unwrap_or_default(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            if json {
                return output::print_json(&json!({
                    "selected": r.selected.iter().map(candidate_json).collect::<Vec<_>>(),
                    "total_cost": money_json(r.total_cost.as_ref()),
                    "leftover_budget": money_json(r.leftover_budget.as_ref()),
                    "expected_engagements": r.expected_engagements,
                    "expected_conversions": r.expected_conversions,
                    "shortfall": r.shortfall,
                    "segments": r.segments.iter().map(|s| json!({"label": s.label, "selected_count": s.selected_count, "target_count": s.target_count})).collect::<Vec<_>>(),
                    "shortlist": r.shortlist.as_ref().map(shortlist_json),
                }));
            }
            outln!("{}", candidates_table(&r.selected));
            outln!(
                "Selected {} for {}; {} left; {:.0} expected engagements.",
                r.selected.len(),
                r.total_cost.as_ref().map(money).unwrap_or_default(),
                r.leftover_budget.as_ref().map(money).unwrap_or_default(),
                r.expected_engagements
            );
            if !r.shortfall.is_empty() {
                outln!("Short of the headcount: {}.", r.shortfall);
            }
            for s in &r.segments {
                outln!("  segment {}: {} of {}", s.label, s.selected_count, s.target_count);
            }
            if let Some(s) = &r.shortlist {
                outln!("Saved as {}", s.name);
            }
            Ok(())
        }
        Command::Shortlist(ShortlistCommand::List { campaign }) => {
            let page = client
                .list_shortlists(ListShortlistsRequest {
                    parent: campaign_name(&campaign),
                    page_size: 100,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            if json {
                return output::print_json(&json!({
                    "shortlists": page.shortlists.iter().map(shortlist_json).collect::<Vec<_>>(),
                }));
            }
            let mut t = output::table(&["shortlist", "name", "members", "accepted", "rejected"]);
            for s in &page.shortlists {
                let with = |d: Decision| s.members.iter().filter(|m| m.decision == d as i32).count();
                t.add_row(vec![
                    Cell::new(&s.name),
                    Cell::new(&s.display_name),
                    Cell::new(s.members.len()),
                    Cell::new(with(Decision::Accepted)),
                    Cell::new(with(Decision::Rejected)),
                ]);
            }
            outln!("{t}");
            Ok(())
        }
        Command::Shortlist(ShortlistCommand::Get { name }) => {
            let s = client
                .get_shortlist(GetShortlistRequest { name })
                .await?
                .into_inner()
                .shortlist
                .ok_or("the server answered without a shortlist")?;
            show_shortlist(&s, json)
        }
        Command::Shortlist(ShortlistCommand::Decide { name, accept, reject }) => {
            let mut decisions = Vec::new();
            for (ids, decision) in [(accept, Decision::Accepted), (reject, Decision::Rejected)] {
                for id in ids {
                    decisions.push(MemberDecision {
                        influencer: vocab::influencer_name(&id)?,
                        decision: decision as i32,
                    });
                }
            }
            if decisions.is_empty() {
                return Err("nothing to decide: pass --accept or --reject".into());
            }
            let s = client
                .decide_shortlist_members(DecideShortlistMembersRequest {
                    name,
                    decisions,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .shortlist
                .ok_or("the server answered without a shortlist")?;
            show_shortlist(&s, json)
        }
    }
}

/// "campaigns/ID" or a bare ID.
pub(crate) fn campaign_name(input: &str) -> String {
    let input = input.trim();
    if input.starts_with("campaigns/") {
        input.to_owned()
    } else {
        format!("campaigns/{input}")
    }
}

/// "5000 USD", "5000.50EUR", "$5000" → Money in minor units.
pub(crate) fn parse_money(input: &str) -> Result<Money> {
    let s = input.trim();
    let (number, code) = if let Some(rest) = s.strip_prefix('$') {
        (rest.trim().to_owned(), "USD".to_owned())
    } else {
        let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
        (s[..split].trim().to_owned(), s[split..].trim().to_ascii_uppercase())
    };
    let bad = || format!("amount \"{input}\": expected a number and a currency, for example \"5000 USD\"");
    if code.len() != 3 {
        return Err(bad().into());
    }
    let digits = output::minor_digits(&code);
    let number = number.replace(',', "");
    let (whole, frac) = number.split_once('.').unwrap_or((&number, ""));
    if frac.len() > digits as usize {
        return Err(format!("amount \"{input}\": {code} has {digits} decimal places").into());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<width$}", width = digits as usize)
            .parse()
            .map_err(|_| bad())?
    };
    Ok(Money {
        currency_code: code,
        amount_minor: whole * 10i64.pow(digits) + frac,
    })
}

fn country_and(input: &str, what: &str) -> Result<(String, String)> {
    let (country, rest) = input
        .split_once(':')
        .ok_or_else(|| format!("{what} \"{input}\": expected COUNTRY:{}", what.to_uppercase()))?;
    Ok((country.trim().to_ascii_uppercase(), rest.trim().to_owned()))
}

fn age_bucket(input: &str) -> Result<i32> {
    let key = input.trim().replace('+', "-plus").replace('-', "_");
    Ok(vocab::parse::<AgeBucket>(&key)? as i32)
}

/// The campaign the flags describe, and the request id.
fn brief_from(a: CreateArgs) -> Result<(Campaign, String)> {
    let mut niches = Vec::new();
    for n in &a.niches {
        let (niche, weight) = match n.split_once('=') {
            Some((niche, w)) => (
                niche.trim().to_owned(),
                w.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("niche \"{n}\": the weight after = must be a number"))?,
            ),
            None => (n.trim().to_owned(), 1.0),
        };
        niches.push(NicheWeight { niche, weight });
    }
    let mut locations = Vec::new();
    for c in &a.cities {
        let (country_code, city) = country_and(c, "city")?;
        locations.push(Location {
            country_code,
            region: String::new(),
            city,
        });
    }
    for r in &a.regions {
        let (country_code, region) = country_and(r, "region")?;
        locations.push(Location {
            country_code,
            region,
            city: String::new(),
        });
    }
    for c in &a.countries {
        locations.push(Location {
            country_code: c.trim().to_ascii_uppercase(),
            ..Default::default()
        });
    }
    let mut deliverables = Vec::new();
    for d in &a.deliverables {
        let parts: Vec<&str> = d.split(':').collect();
        let (platform, kind, n) = match parts.as_slice() {
            [p, k] => (*p, *k, 1),
            [p, k, n] => (
                *p,
                *k,
                n.parse::<i32>()
                    .map_err(|_| format!("deliverable \"{d}\": the count must be a whole number"))?,
            ),
            _ => return Err(format!("deliverable \"{d}\": expected PLATFORM:KIND[:COUNT]").into()),
        };
        deliverables.push(DeliverableWanted {
            kind: vocab::parse::<DeliverableKind>(kind)? as i32,
            count: n,
            platform: vocab::parse::<Platform>(platform)? as i32,
        });
    }
    let (min_engagement_rate, max_engagement_rate) = match &a.engagement {
        None => (None, None),
        Some(range) => {
            let (lo, hi) = range
                .split_once("..")
                .ok_or_else(|| format!("engagement \"{range}\": expected MIN..MAX, for example 0.02..0.12"))?;
            let num = |s: &str| -> Result<Option<f64>> {
                let s = s.trim();
                if s.is_empty() {
                    Ok(None)
                } else {
                    Ok(Some(s.parse::<f64>().map_err(|_| {
                        format!("engagement \"{range}\": \"{s}\" is not a number")
                    })?))
                }
            };
            (num(lo)?, num(hi)?)
        }
    };
    let mut segments = Vec::new();
    for s in &a.segments {
        let (label, rules) = s
            .split_once('=')
            .ok_or_else(|| format!("segment \"{s}\": expected LABEL=key:value[,key:value]"))?;
        let mut seg = Segment {
            label: label.trim().to_owned(),
            ..Default::default()
        };
        for rule in rules.split(',') {
            let (k, v) = rule
                .split_once(':')
                .ok_or_else(|| format!("segment \"{s}\": \"{rule}\" is not key:value"))?;
            match k.trim() {
                "city" => seg.city = v.trim().to_owned(),
                "country" => seg.country_code = v.trim().to_ascii_uppercase(),
                "niche" => seg.niche = v.trim().to_owned(),
                "age" => seg.age_bucket = age_bucket(v)?,
                other => {
                    return Err(format!("segment \"{s}\": unknown key \"{other}\" (city, country, niche, age)").into());
                }
            }
        }
        segments.push(seg);
    }
    let audience = if a.audience_ages.is_empty() && a.audience_countries.is_empty() {
        None
    } else {
        Some(AudienceTarget {
            age_buckets: a.audience_ages.iter().map(|x| age_bucket(x)).collect::<Result<_>>()?,
            countries: a
                .audience_countries
                .iter()
                .map(|c| c.trim().to_ascii_uppercase())
                .collect(),
        })
    };
    let exclusions = (!a.exclude.is_empty() || !a.exclusivity.is_empty())
        .then(|| -> Result<Exclusions> {
            Ok(Exclusions {
                influencers: a
                    .exclude
                    .iter()
                    .map(|i| vocab::influencer_name(i))
                    .collect::<std::result::Result<_, _>>()?,
                exclusivity_categories: a.exclusivity.clone(),
            })
        })
        .transpose()?;
    let campaign = Campaign {
        display_name: a.name,
        objective: a.objective as i32,
        brief: Some(Brief {
            niches,
            locations,
            languages: a.languages,
            tiers: a.tiers.into_iter().map(i32::from).collect(),
            min_quality_score: a.min_quality,
            min_engagement_rate,
            max_engagement_rate,
            deliverables,
            compensation_offered: a.compensation.into_iter().map(i32::from).collect(),
            budget: Some(parse_money(&a.budget)?),
            headcount: a.headcount,
            schedule: None,
            disclosure_jurisdiction: a.jurisdiction.trim().to_ascii_uppercase(),
            exclusions,
            diversity_caps: (a.max_city_share.is_some() || a.max_niche_share.is_some()).then(|| DiversityCaps {
                max_city_share: a.max_city_share.unwrap_or(0.0),
                max_niche_share: a.max_niche_share.unwrap_or(0.0),
            }),
            segments,
            audience,
        }),
        ..Default::default()
    };
    Ok((campaign, a.request_id))
}

fn candidates_table(candidates: &[Candidate]) -> comfy_table::Table {
    let mut t = output::table(&[
        "#",
        "influencer",
        "account",
        "city",
        "followers",
        "score",
        "cost",
        "why",
    ]);
    for (i, c) in candidates.iter().enumerate() {
        t.add_row(vec![
            Cell::new(i + 1).set_alignment(CellAlignment::Right),
            Cell::new(format!(
                "{}\n{}",
                c.display_name,
                c.influencer.trim_start_matches("influencers/")
            )),
            Cell::new(format!("{} @{}", vocab::label::<Platform>(c.platform), c.handle)),
            Cell::new(if c.segment.is_empty() {
                c.city.clone()
            } else {
                format!("{} [{}]", c.city, c.segment)
            }),
            Cell::new(count(c.followers)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.1}", c.score)).set_alignment(CellAlignment::Right),
            Cell::new(format!(
                "{}{}",
                c.cost.as_ref().map(money).unwrap_or_default(),
                if c.cost_estimated { " (est.)" } else { "" }
            ))
            .set_alignment(CellAlignment::Right),
            Cell::new(&c.reason),
        ]);
    }
    t
}

fn explain_candidate(c: &Candidate) {
    outln!("{} ({}): score {:.1}", c.display_name, c.influencer, c.score);
    let mut t = output::table(&["part", "value", "weight", "points", "why"]);
    for p in &c.breakdown {
        t.add_row(vec![
            Cell::new(p.part.replace('_', " ")),
            Cell::new(format!("{:.2}", p.value)).set_alignment(CellAlignment::Right),
            Cell::new(percent(p.weight)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:+.1}", p.contribution)).set_alignment(CellAlignment::Right),
            Cell::new(&p.explanation),
        ]);
    }
    outln!("{t}");
}

fn show_campaign(c: &Campaign, json: bool) -> Result<()> {
    if json {
        return output::print_json(&campaign_json(c));
    }
    let b = c.brief.clone().unwrap_or_default();
    outln!("{}  {}", c.name, c.display_name);
    outln!(
        "  {} campaign, {}; budget {}, {} people, disclosure rules of {}",
        vocab::label::<Objective>(c.objective),
        vocab::label::<CampaignStatus>(c.status),
        b.budget.as_ref().map(money).unwrap_or_default(),
        b.headcount,
        b.disclosure_jurisdiction
    );
    if !b.niches.is_empty() {
        let n: Vec<String> = b
            .niches
            .iter()
            .map(|n| format!("{} ×{}", n.niche, if n.weight == 0.0 { 1.0 } else { n.weight }))
            .collect();
        outln!("  niches: {}", n.join(", "));
    }
    if !b.locations.is_empty() {
        let l: Vec<String> = b
            .locations
            .iter()
            .map(|l| {
                [l.city.as_str(), l.region.as_str(), l.country_code.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        outln!("  where: {}", l.join("; "));
    }
    let d: Vec<String> = b
        .deliverables
        .iter()
        .map(|d| {
            format!(
                "{} {} on {}",
                d.count,
                vocab::label::<DeliverableKind>(d.kind),
                vocab::label::<Platform>(d.platform)
            )
        })
        .collect();
    outln!("  deliverables: {}", d.join(", "));
    let k: Vec<String> = b
        .compensation_offered
        .iter()
        .map(|k| vocab::label::<CompensationKind>(*k))
        .collect();
    outln!("  compensation: {}", k.join(", "));
    for s in &b.segments {
        outln!("  segment {}", s.label);
    }
    Ok(())
}

fn show_shortlist(s: &Shortlist, json: bool) -> Result<()> {
    if json {
        return output::print_json(&shortlist_json(s));
    }
    outln!("{}  {}", s.name, s.display_name);
    let mut t = output::table(&["influencer", "segment", "decision", "score", "cost"]);
    for m in &s.members {
        t.add_row(vec![
            Cell::new(format!("{}\n{}", m.display_name, m.influencer)),
            Cell::new(&m.segment),
            Cell::new(vocab::label::<Decision>(m.decision)),
            Cell::new(
                m.candidate
                    .as_ref()
                    .map(|c| format!("{:.1}", c.score))
                    .unwrap_or_default(),
            ),
            Cell::new(
                m.candidate
                    .as_ref()
                    .and_then(|c| c.cost.as_ref())
                    .map(money)
                    .unwrap_or_default(),
            ),
        ]);
    }
    outln!("{t}");
    Ok(())
}

fn campaign_json(c: &Campaign) -> Value {
    let b = c.brief.clone().unwrap_or_default();
    json!({
        "name": c.name,
        "tenant": c.tenant,
        "display_name": c.display_name,
        "objective": enum_json::<Objective>(c.objective),
        "status": enum_json::<CampaignStatus>(c.status),
        "brief": {
            "niches": b.niches.iter().map(|n| json!({"niche": n.niche, "weight": n.weight})).collect::<Vec<_>>(),
            "locations": b.locations.iter().map(|l| json!({"country_code": l.country_code, "region": l.region, "city": l.city})).collect::<Vec<_>>(),
            "languages": b.languages,
            "tiers": b.tiers.iter().map(|t| enum_json::<Tier>(*t)).collect::<Vec<_>>(),
            "min_quality_score": b.min_quality_score,
            "min_engagement_rate": b.min_engagement_rate,
            "max_engagement_rate": b.max_engagement_rate,
            "deliverables": b.deliverables.iter().map(|d| json!({
                "kind": enum_json::<DeliverableKind>(d.kind),
                "count": d.count,
                "platform": enum_json::<Platform>(d.platform),
            })).collect::<Vec<_>>(),
            "compensation_offered": b.compensation_offered.iter().map(|k| enum_json::<CompensationKind>(*k)).collect::<Vec<_>>(),
            "budget": money_json(b.budget.as_ref()),
            "headcount": b.headcount,
            "disclosure_jurisdiction": b.disclosure_jurisdiction,
            "exclusions": b.exclusions.as_ref().map(|x| json!({"influencers": x.influencers, "exclusivity_categories": x.exclusivity_categories})),
            "diversity_caps": b.diversity_caps.as_ref().map(|d| json!({"max_city_share": d.max_city_share, "max_niche_share": d.max_niche_share})),
            "segments": b.segments.iter().map(|s| json!({
                "label": s.label, "city": s.city, "country_code": s.country_code, "niche": s.niche,
                "age_bucket": enum_json::<AgeBucket>(s.age_bucket),
            })).collect::<Vec<_>>(),
        },
        "create_time": time_json(c.create_time.as_ref()),
        "update_time": time_json(c.update_time.as_ref()),
    })
}

fn candidate_json(c: &Candidate) -> Value {
    json!({
        "influencer": c.influencer,
        "display_name": c.display_name,
        "platform": enum_json::<Platform>(c.platform),
        "handle": c.handle,
        "followers": c.followers,
        "tier": enum_json::<Tier>(c.tier),
        "city": c.city,
        "score": c.score,
        "breakdown": c.breakdown.iter().map(|p| json!({
            "part": p.part, "value": p.value, "weight": p.weight,
            "contribution": p.contribution, "explanation": p.explanation,
        })).collect::<Vec<_>>(),
        "reason": c.reason,
        "cost": money_json(c.cost.as_ref()),
        "cost_estimated": c.cost_estimated,
        "expected_engagements": c.expected_engagements,
        "expected_conversions": c.expected_conversions,
        "segment": c.segment,
    })
}

fn shortlist_json(s: &Shortlist) -> Value {
    json!({
        "name": s.name,
        "display_name": s.display_name,
        "members": s.members.iter().map(|m| json!({
            "influencer": m.influencer,
            "display_name": m.display_name,
            "segment": m.segment,
            "decision": enum_json::<Decision>(m.decision),
            "candidate": m.candidate.as_ref().map(candidate_json),
        })).collect::<Vec<_>>(),
        "create_time": time_json(s.create_time.as_ref()),
        "update_time": time_json(s.update_time.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_with_their_currency_digits() {
        let m = |s: &str| {
            parse_money(s)
                .map(|m| (m.currency_code, m.amount_minor))
                .map_err(|e| e.to_string())
        };
        assert_eq!(m("5000 USD"), Ok(("USD".into(), 500_000)));
        assert_eq!(m("$5,000.5"), Ok(("USD".into(), 500_050)));
        assert_eq!(m("120000jpy"), Ok(("JPY".into(), 120_000)));
        assert!(m("12.345 EUR").unwrap_err().contains("2 decimal places"));
        assert!(m("lots").is_err());
    }

    #[test]
    fn flags_become_a_brief() {
        use clap::Parser;
        #[derive(clap::Parser, Debug)]
        struct T {
            #[command(flatten)]
            a: CreateArgs,
        }
        let t = T::try_parse_from([
            "t",
            "--name",
            "Dog treats",
            "--niche",
            "pets=2",
            "--niche",
            "wellness",
            "--city",
            "US:Austin",
            "--deliverable",
            "instagram:feed-post",
            "--deliverable",
            "instagram:story:2",
            "--compensation",
            "product,cash",
            "--budget",
            "5000 USD",
            "--headcount",
            "50",
            "--segment",
            "young=city:Austin,age:25-34",
            "--engagement",
            "0.02..",
        ])
        .unwrap();
        let (c, _) = brief_from(t.a).unwrap();
        let b = c.brief.unwrap();
        assert_eq!(b.niches[0].weight, 2.0);
        assert_eq!(b.niches[1].weight, 1.0);
        assert_eq!(b.locations[0].city, "Austin");
        assert_eq!(b.deliverables[1].count, 2);
        assert_eq!(b.deliverables[1].kind, DeliverableKind::Story as i32);
        assert_eq!(b.budget.unwrap().amount_minor, 500_000);
        assert_eq!(b.segments[0].age_bucket, AgeBucket::AgeBucket2534 as i32);
        assert_eq!((b.min_engagement_rate, b.max_engagement_rate), (Some(0.02), None));
        assert_eq!(b.disclosure_jurisdiction, "US");
    }
}
