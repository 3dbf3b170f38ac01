//! `chorus offers`: a campaign's offer template, offers to many people at once, and the moves
//! on one offer (accept, decline, counter, withdraw). A brand calls them with its token, an
//! influencer with theirs (`--token`); the server decides who may do what.
//!
//! ```text
//! chorus offers template campaigns/ID --brand "Pawsome" --deliverable instagram:feed-post:2:2027-01-30 \
//!   --cash "250 USD" --jurisdiction US
//! chorus offers create campaigns/ID --shortlist campaigns/ID/shortlists/ID
//! chorus offers accept offers/ID                          # as the influencer
//! chorus offers counter offers/ID --cash "300 USD" --message "Two posts need a shoot"
//! ```

use std::path::PathBuf;

use chorus_proto::contracts::{
    AcceptOfferRequest, CounterOfferRequest, CreateOffersRequest, DeclineOfferRequest, GetOfferRequest,
    GetOfferTemplateRequest, ListOffersRequest, Offer, OfferState, OfferTarget, OfferTemplate, Party,
    SetOfferTemplateRequest, WithdrawOfferRequest,
};
use comfy_table::Cell;
use serde_json::{Value, json};

use crate::campaigns::campaign_name;
use crate::client::{ConnectArgs, Contracts};
use crate::contracts::{contract_json, signing_hint};
use crate::error::Result;
use crate::output::{self, enum_json, time, time_json};
use crate::terms::{self, Listable, Listed, TermsArgs};
use crate::vocab;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// A campaign's offer template: show it, or set it with flags (each flag replaces its part).
    Template(Box<TemplateArgs>),
    /// One offer per influencer, from the campaign's template.
    Create(CreateArgs),
    /// The caller's offers, newest first.
    List {
        /// Only this campaign's.
        #[arg(long)]
        campaign: Option<String>,
        /// open, accepted, declined, expired or withdrawn.
        #[arg(long, value_parser = vocab::parse::<OfferState>)]
        state: Option<OfferState>,
        #[arg(long, default_value_t = 100)]
        limit: i32,
    },
    /// An offer with its terms and every version.
    Get { name: String },
    /// Accept the offer's terms: it becomes a contract, sent for signature.
    Accept {
        name: String,
        /// The version accepted; default the offer's current one.
        #[arg(long)]
        version: Option<i32>,
    },
    /// Decline the offer.
    Decline {
        name: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Propose other terms: the offer's current terms with the parts the flags give replaced.
    Counter(Box<CounterArgs>),
    /// Take back an open offer (the brand).
    Withdraw {
        name: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(clap::Args, Debug)]
pub(crate) struct TemplateArgs {
    /// The campaign: "campaigns/ID" or ID.
    campaign: String,
    /// The brand's name on offers and contracts ("Pawsome").
    #[arg(long = "brand")]
    brand: Option<String>,
    /// A name or handle the disclosure check knows the brand by ("@pawsome"); repeatable,
    /// replaces the list.
    #[arg(long = "brand-name")]
    brand_names: Vec<String>,
    /// How many days an offer stays open (1-60; the server's default is 14).
    #[arg(long)]
    valid_days: Option<i32>,
    #[command(flatten)]
    terms: TermsArgs,
}

impl TemplateArgs {
    fn changes_nothing(&self) -> bool {
        self.brand.is_none() && self.brand_names.is_empty() && self.valid_days.is_none() && self.terms.is_empty()
    }
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).multiple(true).args(["shortlist", "influencers", "from_file"])))]
pub(crate) struct CreateArgs {
    /// The campaign: "campaigns/ID" or ID.
    campaign: String,
    /// Offer to the accepted members of this shortlist of the campaign
    /// ("campaigns/ID/shortlists/ID", or the shortlist's ID).
    #[arg(long, conflicts_with_all = ["influencers", "from_file"])]
    shortlist: Option<String>,
    /// An influencer ("influencers/ID" or ID); repeatable or comma-separated.
    #[arg(long = "influencer", value_delimiter = ',')]
    influencers: Vec<String>,
    /// A file of influencers, one per line: "influencers/ID" or ID, optionally ",SEGMENT".
    #[arg(long)]
    from_file: Option<PathBuf>,
    /// Idempotency key: a retry with the same key returns the first answer.
    #[arg(long, default_value = "")]
    request_id: String,
}

#[derive(clap::Args, Debug)]
pub(crate) struct CounterArgs {
    name: String,
    /// Why the terms changed.
    #[arg(long, default_value = "")]
    message: String,
    #[command(flatten)]
    terms: TermsArgs,
}

pub(crate) async fn run(command: Command, connect: &ConnectArgs, json: bool) -> Result<()> {
    let mut client = connect.contracts().await?;
    // Each move answers with the offer, shown once below.
    let offer = match command {
        Command::Template(args) => return template(&mut client, *args, json).await,
        Command::Create(args) => return create(&mut client, args, json).await,
        Command::List { campaign, state, limit } => {
            let page = client
                .list_offers(ListOffersRequest {
                    campaign: campaign.as_deref().map(campaign_name).unwrap_or_default(),
                    state: state.map_or(0, i32::from),
                    page_size: limit,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            return terms::print_page(json, &page.offers, &page.next_page_token);
        }
        Command::Get { name } => Some(get_offer(&mut client, &name).await?),
        Command::Accept { name, version } => {
            let name = vocab::offer_name(&name)?;
            let version = match version {
                Some(v) => v,
                None => get_offer(&mut client, &name).await?.version,
            };
            let r = client
                .accept_offer(AcceptOfferRequest {
                    name: name.clone(),
                    version,
                })
                .await?
                .into_inner();
            if json {
                return output::print_json(&json!({
                    "offer": r.offer.as_ref().map(offer_json),
                    "contract": r.contract.as_ref().map(contract_json),
                }));
            }
            outln!("Accepted {name}, version {version}.");
            if let Some(c) = &r.contract {
                outln!("{}", signing_hint(c));
            }
            return Ok(());
        }
        Command::Decline { name, reason } => {
            let name = vocab::offer_name(&name)?;
            client
                .decline_offer(DeclineOfferRequest { name, reason })
                .await?
                .into_inner()
                .offer
        }
        Command::Counter(args) => {
            let CounterArgs { name, message, terms } = *args;
            if terms.is_empty() {
                return Err("nothing to counter: give the terms to change (--cash, --deliverable, ...)".into());
            }
            let current = get_offer(&mut client, &name).await?;
            client
                .counter_offer(CounterOfferRequest {
                    name: current.name.clone(),
                    version: current.version,
                    terms: Some(terms.apply(current.terms.unwrap_or_default())),
                    message,
                })
                .await?
                .into_inner()
                .offer
        }
        Command::Withdraw { name, reason } => {
            let name = vocab::offer_name(&name)?;
            client
                .withdraw_offer(WithdrawOfferRequest { name, reason })
                .await?
                .into_inner()
                .offer
        }
    };
    let o = offer.ok_or(NO_OFFER)?;
    output::show(json, || offer_json(&o), || offer_lines(&o))
}

const NO_OFFER: &str = "the server answered without an offer";

async fn get_offer(client: &mut Contracts, name: &str) -> Result<Offer> {
    Ok(client
        .get_offer(GetOfferRequest {
            name: vocab::offer_name(name)?,
        })
        .await?
        .into_inner()
        .offer
        .ok_or(NO_OFFER)?)
}

/// Shows the template without flags; with flags, changes the current one (or starts one).
async fn template(client: &mut Contracts, args: TemplateArgs, json: bool) -> Result<()> {
    let campaign = campaign_name(&args.campaign);
    let current = match client
        .get_offer_template(GetOfferTemplateRequest {
            campaign: campaign.clone(),
        })
        .await
    {
        Ok(r) => r.into_inner().template,
        Err(s) if s.code() == tonic::Code::NotFound && !args.changes_nothing() => None,
        Err(s) => return Err(s.into()),
    };
    let template = if args.changes_nothing() {
        current.ok_or("the server answered without a template")?
    } else {
        let mut t = current.unwrap_or_default();
        t.campaign = campaign;
        if let Some(brand) = args.brand {
            t.brand_display_name = brand;
        }
        if !args.brand_names.is_empty() {
            t.brand_names = args.brand_names;
        }
        if let Some(days) = args.valid_days {
            t.offer_valid_days = days;
        }
        t.terms = Some(args.terms.apply(t.terms.unwrap_or_default()));
        t.update_time = None;
        client
            .set_offer_template(SetOfferTemplateRequest { template: Some(t) })
            .await?
            .into_inner()
            .template
            .ok_or("the server answered without a template")?
    };
    output::show(json, || template_json(&template), || template_lines(&template))
}

async fn create(client: &mut Contracts, args: CreateArgs, json: bool) -> Result<()> {
    let campaign = campaign_name(&args.campaign);
    let mut targets = Vec::new();
    for i in &args.influencers {
        targets.push(OfferTarget {
            influencer: vocab::influencer_name(i)?,
            segment: String::new(),
        });
    }
    if let Some(path) = &args.from_file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        targets.extend(targets_of(&text).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    let shortlist = args.shortlist.as_deref().map(|s| {
        if s.contains('/') {
            s.trim().to_owned()
        } else {
            format!("{campaign}/shortlists/{}", s.trim())
        }
    });
    let r = client
        .create_offers(CreateOffersRequest {
            campaign: campaign.clone(),
            shortlist: shortlist.unwrap_or_default(),
            targets,
            request_id: args.request_id,
        })
        .await?
        .into_inner();
    if json {
        return output::print_json(&json!({
            "offers": r.offers,
            "skipped": r.skipped.iter().map(|s| json!({
                "influencer": s.influencer, "reason": s.reason, "offer": s.offer,
            })).collect::<Vec<_>>(),
        }));
    }
    outln!(
        "Created {} offer{} for {campaign}.",
        output::count(r.offers.len() as i64),
        if r.offers.len() == 1 { "" } else { "s" }
    );
    if r.offers.len() <= 20 {
        for o in &r.offers {
            outln!("  {o}");
        }
    }
    if !r.skipped.is_empty() {
        outln!("Skipped {}:", output::count(r.skipped.len() as i64));
        let mut t = output::table(&["influencer", "reason", "offer"]);
        for s in &r.skipped {
            t.add_row(vec![
                Cell::new(&s.influencer),
                Cell::new(s.reason.to_ascii_lowercase().replace('_', " ")),
                Cell::new(&s.offer),
            ]);
        }
        outln!("{t}");
    }
    Ok(())
}

/// The targets of a file: one influencer per line ("influencers/ID" or ID), optionally
/// ",SEGMENT"; blank lines and lines starting with "#" are skipped.
fn targets_of(text: &str) -> Result<Vec<OfferTarget>, String> {
    let mut targets = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (who, segment) = line.split_once(',').unwrap_or((line, ""));
        targets.push(OfferTarget {
            influencer: vocab::influencer_name(who).map_err(|e| format!("line {}: {e}", n + 1))?,
            segment: segment.trim().to_owned(),
        });
    }
    if targets.is_empty() {
        return Err("no influencers in the file".to_owned());
    }
    Ok(targets)
}

/// An offer as people read it: who, where it stands, its terms and its versions.
fn offer_lines(o: &Offer) -> Vec<String> {
    let mut out = vec![format!("{}  {} to {}", o.name, o.brand_display_name, o.influencer)];
    let proposer = o
        .versions
        .iter()
        .find(|v| v.version == o.version)
        .map(|v| vocab::label::<Party>(v.proposed_by))
        .unwrap_or_else(|| "-".to_owned());
    out.push(format!(
        "  {}, version {} (proposed by the {proposer}); campaign {}{}",
        vocab::label::<OfferState>(o.state),
        o.version,
        o.campaign,
        if o.segment.is_empty() {
            String::new()
        } else {
            format!(", segment {}", o.segment)
        }
    ));
    if o.state == OfferState::Open as i32 {
        out.push(format!("  open until {}", time(o.expire_time.as_ref())));
    }
    if !o.contract.is_empty() {
        out.push(format!("  contract: {}", o.contract));
    }
    if !o.reason.is_empty() {
        out.push(format!("  reason: {}", o.reason));
    }
    out.extend(terms::lines(o.terms.as_ref(), "  "));
    if o.versions.len() > 1 {
        out.push("  versions:".to_owned());
        for v in &o.versions {
            out.push(format!(
                "    {}. by the {} at {}{}: {}",
                v.version,
                vocab::label::<Party>(v.proposed_by),
                time(v.create_time.as_ref()),
                if v.message.is_empty() {
                    String::new()
                } else {
                    format!(" (\"{}\")", v.message)
                },
                terms::compensation(v.terms.as_ref().and_then(|t| t.compensation.as_ref()))
            ));
        }
    }
    out
}

fn template_lines(t: &OfferTemplate) -> Vec<String> {
    let mut out = vec![format!("{} offer template", t.campaign)];
    out.push(format!(
        "  brand: {}{}; offers open {} days; updated {}",
        t.brand_display_name,
        if t.brand_names.is_empty() {
            String::new()
        } else {
            format!(" ({})", t.brand_names.join(", "))
        },
        t.offer_valid_days,
        time(t.update_time.as_ref())
    ));
    out.extend(terms::lines(t.terms.as_ref(), "  "));
    out
}

fn template_json(t: &OfferTemplate) -> Value {
    json!({
        "campaign": t.campaign,
        "terms": t.terms.as_ref().map(terms::terms_json),
        "offer_valid_days": t.offer_valid_days,
        "brand_names": t.brand_names,
        "brand_display_name": t.brand_display_name,
        "update_time": time_json(t.update_time.as_ref()),
    })
}

impl Listable for Offer {
    const WHAT: &'static str = "offer";
    const WHEN: &'static str = "expires";

    fn json(&self) -> Value {
        offer_json(self)
    }

    fn row(&self) -> Listed<'_> {
        Listed {
            name: &self.name,
            influencer: &self.influencer,
            state: vocab::label::<OfferState>(self.state),
            version: self.version,
            terms: self.terms.as_ref(),
            time: self.expire_time.as_ref(),
        }
    }
}

pub(crate) fn offer_json(o: &Offer) -> Value {
    json!({
        "name": o.name,
        "campaign": o.campaign,
        "influencer": o.influencer,
        "state": enum_json::<OfferState>(o.state),
        "terms": o.terms.as_ref().map(terms::terms_json),
        "version": o.version,
        "versions": o.versions.iter().map(|v| json!({
            "version": v.version,
            "proposed_by": enum_json::<Party>(v.proposed_by),
            "terms": v.terms.as_ref().map(terms::terms_json),
            "message": v.message,
            "create_time": time_json(v.create_time.as_ref()),
        })).collect::<Vec<_>>(),
        "expire_time": time_json(o.expire_time.as_ref()),
        "segment": o.segment,
        "contract": o.contract,
        "brand_display_name": o.brand_display_name,
        "reason": o.reason,
        "create_time": time_json(o.create_time.as_ref()),
        "update_time": time_json(o.update_time.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_proto::contracts::{Compensation, OfferVersion, Terms};
    use chorus_proto::types::Money;
    use prost_types::Timestamp;

    const ID: &str = "0190f3a1-7b2c-7d4e-8f00-123456789abc";

    #[test]
    fn a_file_gives_one_target_per_line() {
        let text = format!("# who\n{ID}\n\ninfluencers/{ID}2 , austin\n");
        let targets = targets_of(&text).unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].influencer, format!("influencers/{ID}"));
        assert_eq!(targets[0].segment, "");
        assert_eq!(targets[1].influencer, format!("influencers/{ID}2"));
        assert_eq!(targets[1].segment, "austin");
        let err = targets_of("ok\ncampaigns/x\n").unwrap_err();
        assert!(err.starts_with("line 2: "), "{err}");
        assert!(targets_of("# nobody\n").unwrap_err().contains("no influencers"));
    }

    #[test]
    fn the_source_of_offers_is_a_shortlist_or_people() {
        use clap::Parser;
        #[derive(clap::Parser, Debug)]
        struct T {
            #[command(flatten)]
            a: CreateArgs,
        }
        let t = T::try_parse_from(["t", "c", "--influencer", "a,b", "--influencer", "c"]).unwrap();
        assert_eq!(t.a.influencers, ["a", "b", "c"]);
        assert!(T::try_parse_from(["t", "c"]).is_err(), "a source is required");
        assert!(T::try_parse_from(["t", "c", "--shortlist", "s", "--influencer", "a"]).is_err());
        assert!(T::try_parse_from(["t", "c", "--influencer", "a", "--from-file", "f"]).is_ok());
    }

    #[test]
    fn an_offer_reads_with_its_versions() {
        let cash = |minor| Terms {
            compensation: Some(Compensation {
                cash: Some(Money {
                    currency_code: "USD".to_owned(),
                    amount_minor: minor,
                }),
                ..Default::default()
            }),
            disclosure_jurisdiction: "US".to_owned(),
            ..Default::default()
        };
        let at = Some(Timestamp {
            seconds: 1_800_000_000,
            nanos: 0,
        });
        let o = Offer {
            name: "offers/o1".to_owned(),
            campaign: "campaigns/c1".to_owned(),
            influencer: "influencers/i1".to_owned(),
            state: OfferState::Open as i32,
            terms: Some(cash(30_000)),
            version: 2,
            versions: vec![
                OfferVersion {
                    version: 1,
                    proposed_by: Party::Brand as i32,
                    terms: Some(cash(25_000)),
                    message: String::new(),
                    create_time: at,
                },
                OfferVersion {
                    version: 2,
                    proposed_by: Party::Influencer as i32,
                    terms: Some(cash(30_000)),
                    message: "two shoots".to_owned(),
                    create_time: at,
                },
            ],
            expire_time: at,
            brand_display_name: "Pawsome".to_owned(),
            ..Default::default()
        };
        let lines = offer_lines(&o);
        assert_eq!(lines[0], "offers/o1  Pawsome to influencers/i1");
        assert_eq!(
            lines[1],
            "  open, version 2 (proposed by the influencer); campaign campaigns/c1"
        );
        assert_eq!(lines[2], "  open until 2027-01-15T08:00:00Z");
        assert!(
            lines.contains(&"  compensation: $300.00 USD cash".to_owned()),
            "{lines:#?}"
        );
        assert_eq!(
            lines.last().unwrap(),
            "    2. by the influencer at 2027-01-15T08:00:00Z (\"two shoots\"): $300.00 USD cash"
        );
        let v = offer_json(&o);
        assert_eq!(v["state"], "OFFER_STATE_OPEN");
        assert_eq!(v["versions"][1]["proposed_by"], "PARTY_INFLUENCER");
        assert_eq!(v["terms"]["compensation"]["cash"]["amount_minor"], 30_000);
    }
}
