//! `chorus links` and `chorus conversions`: tracked links and the orders they bring, as the
//! measurement service keeps them (`--measurement-endpoint`, default `http://127.0.0.1:50055`).

use chorus_proto::measurement::{
    Conversion, CreateLinkRequest, Link, ListConversionsRequest, ListLinksRequest, OrderInput, RecordConversionsRequest,
};
use comfy_table::Table;
use serde_json::{Value, json};

use crate::campaigns::parse_money;
use crate::client::ConnectArgs;
use crate::error::Result;
use crate::output::{self, money, money_json};
use crate::payouts::{Paging, print_list, resource};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum LinksCommand {
    /// Make a tracked link (`/l/{code}` on measurement's HTTP listener) for an influencer.
    Create {
        /// campaigns/{id}, or the id.
        #[arg(long)]
        campaign: String,
        /// influencers/{id}, or the id.
        #[arg(long)]
        influencer: String,
        /// Where it goes: an https URL.
        #[arg(long)]
        destination: String,
        /// contracts/{c}/deliverables/{n}, when the link is a deliverable's.
        #[arg(long, default_value = "")]
        deliverable: String,
        /// The audience segment ("austin").
        #[arg(long, default_value = "")]
        segment: String,
    },
    /// The tenant's links, newest first, with their click counts.
    List {
        #[arg(long)]
        campaign: Option<String>,
        #[arg(long)]
        influencer: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum ConversionsCommand {
    /// Record one order; it is attributed by its promo code or its click, once per order id.
    Record {
        #[arg(long)]
        order_id: String,
        /// The order's total: "49.99 USD".
        #[arg(long)]
        amount: String,
        /// When it was placed (RFC 3339); default now.
        #[arg(long)]
        time: Option<String>,
        /// A discount code the order used (repeatable).
        #[arg(long = "code")]
        codes: Vec<String>,
        /// The `chorus_click` the landing page carried.
        #[arg(long, default_value = "")]
        click: String,
    },
    /// The tenant's conversions, newest first, with why each counts for whom.
    List {
        #[arg(long)]
        campaign: Option<String>,
        #[arg(long)]
        influencer: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
}

fn link_json(l: &Link) -> Value {
    json!({
        "name": l.name, "code": l.code, "campaign": l.campaign, "influencer": l.influencer,
        "deliverable": l.deliverable, "destination_url": l.destination_url, "segment": l.segment,
        "clicks": l.clicks,
    })
}

fn conversion_json(c: &Conversion) -> Value {
    let a = c.attribution.clone().unwrap_or_default();
    json!({
        "name": c.name, "order_id": c.order_id, "campaign": c.campaign, "influencer": c.influencer,
        "segment": c.segment, "revenue": money_json(c.revenue.as_ref()),
        "refunded": money_json(c.refunded.as_ref()), "attribution": a.reason,
    })
}

pub(crate) async fn links(command: LinksCommand, connect: &ConnectArgs, json: bool) -> Result<()> {
    let mut client = connect.measurement().await?;
    match command {
        LinksCommand::Create {
            campaign,
            influencer,
            destination,
            deliverable,
            segment,
        } => {
            let link = client
                .create_link(CreateLinkRequest {
                    link: Some(Link {
                        campaign: resource("campaigns", &campaign),
                        influencer: resource("influencers", &influencer),
                        destination_url: destination,
                        deliverable,
                        segment,
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await?
                .into_inner()
                .link
                .unwrap_or_default();
            output::show(
                json,
                || link_json(&link),
                || vec![format!("{}  /l/{}  {}", link.name, link.code, link.destination_url)],
            )
        }
        LinksCommand::List {
            campaign,
            influencer,
            paging,
        } => {
            let page = paging
                .fetch(|page_size, page_token| {
                    let mut client = client.clone();
                    let request = ListLinksRequest {
                        campaign: optional("campaigns", campaign.as_deref()),
                        influencer: optional("influencers", influencer.as_deref()),
                        page_size,
                        page_token,
                    };
                    async move {
                        let r = client.list_links(request).await?.into_inner();
                        Ok((r.links, r.next_page_token))
                    }
                })
                .await?;
            print_list(
                json,
                "links",
                &page,
                link_json,
                |links| {
                    let mut t = Table::new();
                    t.set_header(["link", "code", "influencer", "deliverable", "clicks"]);
                    for l in links {
                        t.add_row([
                            l.name.clone(),
                            l.code.clone(),
                            l.influencer.clone(),
                            l.deliverable.clone(),
                            l.clicks.to_string(),
                        ]);
                    }
                    t
                },
                "no links",
            )
        }
    }
}

pub(crate) async fn conversions(command: ConversionsCommand, connect: &ConnectArgs, json: bool) -> Result<()> {
    let mut client = connect.measurement().await?;
    match command {
        ConversionsCommand::Record {
            order_id,
            amount,
            time,
            codes,
            click,
        } => {
            let order_time = match time {
                Some(t) => crate::terms::parse_time(&t)?,
                None => prost_types::Timestamp::from(std::time::SystemTime::now()),
            };
            let results = client
                .record_conversions(RecordConversionsRequest {
                    orders: vec![OrderInput {
                        order_id,
                        order_time: Some(order_time),
                        revenue: Some(parse_money(&amount)?),
                        discount_codes: codes,
                        click_id: click,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .await?
                .into_inner()
                .results;
            let Some(r) = results.first() else {
                return Err("the service answered no result".into());
            };
            let c = r.conversion.clone().unwrap_or_default();
            let duplicate = r.duplicate;
            output::show(
                json,
                || json!({"conversion": conversion_json(&c), "duplicate": duplicate}),
                || {
                    let why = c.attribution.as_ref().map(|a| a.reason.clone()).unwrap_or_default();
                    let what = if duplicate { "already recorded" } else { "recorded" };
                    vec![format!("{} {what}: {}", c.name, why)]
                },
            )
        }
        ConversionsCommand::List {
            campaign,
            influencer,
            paging,
        } => {
            let page = paging
                .fetch(|page_size, page_token| {
                    let mut client = client.clone();
                    let request = ListConversionsRequest {
                        campaign: optional("campaigns", campaign.as_deref()),
                        influencer: optional("influencers", influencer.as_deref()),
                        page_size,
                        page_token,
                    };
                    async move {
                        let r = client.list_conversions(request).await?.into_inner();
                        Ok((r.conversions, r.next_page_token))
                    }
                })
                .await?;
            print_list(
                json,
                "conversions",
                &page,
                conversion_json,
                |items| {
                    let mut t = Table::new();
                    t.set_header(["order", "influencer", "revenue", "why"]);
                    for c in items {
                        let why = c.attribution.as_ref().map(|a| a.reason.clone()).unwrap_or_default();
                        let revenue = c.revenue.as_ref().map(money).unwrap_or_default();
                        t.add_row([c.order_id.clone(), c.influencer.clone(), revenue, why]);
                    }
                    t
                },
                "no conversions",
            )
        }
    }
}

/// The resource name of an optional filter: empty when not given.
fn optional(collection: &str, input: Option<&str>) -> String {
    input.map(|i| resource(collection, i)).unwrap_or_default()
}

/// `chorus report CAMPAIGN`: the campaign's report. Plain, a summary; `--json`, the report in
/// proto3 JSON; `--csv`, a row per influencer, segment, tier and the campaign; `--html FILE`, a
/// self-contained page with its charts (the same one measurement's HTTP listener serves).
#[derive(clap::Args, Debug)]
pub(crate) struct ReportArgs {
    /// campaigns/{id}, or the id.
    campaign: String,
    /// The rate the segment test compares: conversions_per_click (the default),
    /// engagements_per_impression or revenue_per_influencer.
    #[arg(long)]
    metric: Option<String>,
    /// Print CSV instead.
    #[arg(long, conflicts_with = "html")]
    csv: bool,
    /// Write the HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
}

pub(crate) async fn report(args: ReportArgs, connect: &ConnectArgs, json: bool) -> Result<()> {
    use chorus_measurement::render;
    use chorus_proto::measurement::GetCampaignReportRequest;

    let Some(metric) = chorus_measurement::http::metric_named(args.metric.as_deref()) else {
        return Err(
            "--metric: one of conversions_per_click, engagements_per_impression, revenue_per_influencer".into(),
        );
    };
    let report = connect
        .measurement()
        .await?
        .get_campaign_report(GetCampaignReportRequest {
            campaign: resource("campaigns", &args.campaign),
            metric: metric as i32,
        })
        .await?
        .into_inner()
        .report
        .unwrap_or_default();
    if let Some(path) = &args.html {
        std::fs::write(path, render::html(&report)).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        if !json {
            outln!("wrote {}", path.display());
            return Ok(());
        }
    }
    if args.csv {
        use std::io::Write;
        let csv = render::csv(&report).map_err(|e| e.to_string())?;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(csv.as_bytes())?;
        stdout.flush()?;
        return Ok(());
    }
    let test = report.segment_test.clone().unwrap_or_default();
    let as_json = if json {
        render::json(&report).map_err(|e| e.to_string())?
    } else {
        serde_json::Value::Null
    };
    output::show(
        json,
        || as_json,
        || {
            let mut t = Table::new();
            t.set_header([
                "segment",
                "influencers",
                "clicks",
                "conversions",
                "revenue",
                "cost",
                "ROAS",
            ]);
            let campaign = (
                "campaign".to_owned(),
                report.campaign_figures.clone().unwrap_or_default(),
            );
            for (name, f) in report
                .segments
                .iter()
                .map(|s| (s.segment.clone(), s.figures.clone().unwrap_or_default()))
                .chain(std::iter::once(campaign))
            {
                t.add_row([
                    name,
                    f.influencers.to_string(),
                    f.clicks.to_string(),
                    f.conversions.to_string(),
                    f.revenue.as_ref().map(money).unwrap_or_default(),
                    f.cost.as_ref().map(money).unwrap_or_default(),
                    format!("{:.2}", f.roas),
                ]);
            }
            let emv = report
                .campaign_figures
                .as_ref()
                .and_then(|f| f.earned_media_value.as_ref());
            vec![
                test.sentence.clone(),
                t.to_string(),
                format!(
                    "earned media value {} (rate card {}), not in revenue",
                    emv.map(money).unwrap_or_else(|| "none".to_owned()),
                    report.rate_card_version
                ),
            ]
        },
    )
}
