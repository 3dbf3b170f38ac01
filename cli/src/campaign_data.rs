//! What the simulator and `chorus campaigns status` share: a client of every service whose
//! calls each carry their caller's token, and a campaign's offers, contracts and payouts read
//! page by page.

use std::future::Future;

use chorus_proto::admin::clock_service_client::ClockServiceClient;
use chorus_proto::contracts::contracts_service_client::ContractsServiceClient;
use chorus_proto::contracts::{Contract, ContractState, ListContractsRequest, ListOffersRequest, Offer};
use chorus_proto::identity::identity_service_client::IdentityServiceClient;
use chorus_proto::measurement::measurement_service_client::MeasurementServiceClient;
use chorus_proto::payouts::ledger_service_client::LedgerServiceClient;
use chorus_proto::payouts::payouts_service_client::PayoutsServiceClient;
use chorus_proto::payouts::{ListPayoutsRequest, Payout};
use chorus_proto::registry::registry_service_client::RegistryServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::client::{ConnectArgs, connect};
use crate::error::Result;

/// Clients of every service, each call carrying its caller's token (the simulator makes calls
/// as many people over one connection per service).
#[derive(Clone)]
pub(crate) struct Clients {
    pub(crate) identity: IdentityServiceClient<Channel>,
    pub(crate) registry: RegistryServiceClient<Channel>,
    pub(crate) contracts: ContractsServiceClient<Channel>,
    pub(crate) payouts: PayoutsServiceClient<Channel>,
    pub(crate) ledger: LedgerServiceClient<Channel>,
    pub(crate) measurement: MeasurementServiceClient<Channel>,
    pub(crate) clock: ClockServiceClient<Channel>,
}

impl Clients {
    /// Connects to every endpoint `args` names (the clock is served on identity's port).
    pub(crate) async fn connect(args: &ConnectArgs) -> Result<Clients> {
        Ok(Clients {
            identity: IdentityServiceClient::new(connect(&args.identity_endpoint).await?),
            registry: RegistryServiceClient::new(connect(&args.endpoint).await?),
            contracts: ContractsServiceClient::new(connect(&args.contracts_endpoint).await?),
            payouts: PayoutsServiceClient::new(connect(&args.payouts_endpoint).await?),
            ledger: LedgerServiceClient::new(connect(&args.payouts_endpoint).await?),
            measurement: MeasurementServiceClient::new(connect(&args.measurement_endpoint).await?),
            clock: ClockServiceClient::new(connect(&args.identity_endpoint).await?),
        })
    }
}

/// A bearer token as the `authorization` header.
pub(crate) type Token = MetadataValue<Ascii>;

pub(crate) fn bearer(token: &str) -> Result<Token> {
    let mut v: Token = format!("Bearer {token}")
        .parse()
        .map_err(|_| "the token holds characters not allowed in a header")?;
    v.set_sensitive(true);
    Ok(v)
}

/// `message` as a request made with `token`.
pub(crate) fn as_<T>(token: &Token, message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert("authorization", token.clone());
    r
}

/// Every item of a paged list: `page` fetches the page a token names ("" for the first) and
/// answers its items and the next page's token ("" after the last).
pub(crate) async fn every_page<T, F, Fut>(mut page: F) -> Result<Vec<T>>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String)>>,
{
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let (items, next) = page(token).await?;
        out.extend(items);
        if next.is_empty() {
            return Ok(out);
        }
        token = next;
    }
}

/// Most items a page holds in these lists.
pub(crate) const PAGE: i32 = 1000;

/// The campaign's offers.
pub(crate) async fn list_offers(c: &Clients, brand: &Token, campaign: &str) -> Result<Vec<Offer>> {
    every_page(|page_token| {
        let mut client = c.contracts.clone();
        let request = as_(
            brand,
            ListOffersRequest {
                campaign: campaign.to_owned(),
                page_size: PAGE,
                page_token,
                ..Default::default()
            },
        );
        async move {
            let page = client.list_offers(request).await?.into_inner();
            Ok((page.offers, page.next_page_token))
        }
    })
    .await
}

/// The campaign's contracts in `state` (all of them for `Unspecified`).
pub(crate) async fn list_contracts(
    c: &Clients,
    brand: &Token,
    campaign: &str,
    state: ContractState,
) -> Result<Vec<Contract>> {
    every_page(|page_token| {
        let mut client = c.contracts.clone();
        let request = as_(
            brand,
            ListContractsRequest {
                campaign: campaign.to_owned(),
                state: state as i32,
                page_size: PAGE,
                page_token,
            },
        );
        async move {
            let page = client.list_contracts(request).await?.into_inner();
            Ok((page.contracts, page.next_page_token))
        }
    })
    .await
}

/// The campaign's payouts.
pub(crate) async fn list_payouts(c: &Clients, brand: &Token, campaign: &str) -> Result<Vec<Payout>> {
    every_page(|page_token| {
        let mut client = c.payouts.clone();
        let request = as_(
            brand,
            ListPayoutsRequest {
                campaign: campaign.to_owned(),
                page_size: PAGE,
                page_token,
                ..Default::default()
            },
        );
        async move {
            let page = client.list_payouts(request).await?.into_inner();
            Ok((page.payouts, page.next_page_token))
        }
    })
    .await
}
