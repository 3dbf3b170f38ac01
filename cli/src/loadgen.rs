//! `chorus loadgen`: load generators for the performance targets. `get` drives GetInfluencer
//! open loop (requests leave on schedule whatever the responses do; latency counts from the
//! scheduled time, so a stall is not hidden) at rising rates, first against an empty tonic
//! handler in this process, then against the endpoint, and reports the highest rate each
//! sustains with its p50 and p99. `list` times first pages of ListInfluencers with filters.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chorus_proto::registry::registry_service_client::RegistryServiceClient;
use chorus_proto::registry::registry_service_server::{RegistryService, RegistryServiceServer};
use chorus_proto::registry::*;
use chorus_proto::types::{Platform, Tier};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use crate::client::{Bearer, ConnectArgs};
use crate::error::Result;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Command {
    /// GetInfluencer, open loop at rising rates: an empty handler in this process, then the endpoint.
    Get(GetArgs),
    /// ListInfluencers first pages with typical filters: latency percentiles.
    List(ListArgs),
    /// The follower classifier in this process, on one core: accounts per second.
    Classify(ClassifyArgs),
    /// SubmitAudienceSample end to end: a sample streamed over gRPC until its report is back.
    Vet(VetArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct ClassifyArgs {
    /// Accounts to classify (distinct generated accounts, cycled).
    #[arg(long, default_value_t = 20_000_000)]
    accounts: u64,
}

#[derive(clap::Args, Debug)]
pub(crate) struct VetArgs {
    /// Follower accounts per sample.
    #[arg(long, default_value_t = 10_000)]
    sample: usize,
    /// Samples to submit, one after another.
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Rows per stream message.
    #[arg(long, default_value_t = 2_000)]
    batch: usize,
}

#[derive(clap::Args, Debug)]
pub(crate) struct GetArgs {
    /// Request rates to try, per second, ascending.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2000,4000,6000,8000,10000,12000,16000,20000,24000"
    )]
    rates: Vec<u64>,
    /// Seconds at each rate.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// HTTP/2 connections the requests spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Highest p99 (ms) a rate may show and still count as sustained.
    #[arg(long, default_value_t = 50)]
    max_p99_ms: u64,
    /// Skip the empty-handler baseline.
    #[arg(long)]
    no_baseline: bool,
}

#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    /// Requests to time.
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    #[arg(long, default_value_t = 50)]
    page_size: i32,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

type Client = RegistryServiceClient<InterceptedService<Channel, Bearer>>;

pub(crate) async fn run(command: Command, connect: &ConnectArgs, json: bool) -> Result<()> {
    match command {
        Command::Get(args) => get(args, connect, json).await,
        Command::List(args) => list(args, connect, json).await,
        Command::Classify(args) => classify(args, json),
        Command::Vet(args) => vet(args, connect, json).await,
    }
}

/// Follower accounts of every kind, from bought to busy, for the classifier benchmarks.
fn followers(n: usize, seed: u64) -> Vec<FollowerAccount> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let fake = rng.random_bool(0.3);
            let length = rng.random_range(5..20);
            FollowerAccount {
                key: format!("f{i}"),
                posts_count: Some(if fake {
                    rng.random_range(0..5)
                } else {
                    rng.random_range(0..2_000)
                }),
                followers_count: Some(if fake {
                    rng.random_range(0..60)
                } else {
                    rng.random_range(20..5_000)
                }),
                following_count: Some(if fake {
                    rng.random_range(500..7_500)
                } else {
                    rng.random_range(20..1_500)
                }),
                has_profile_picture: Some(!fake || rng.random_bool(0.4)),
                is_private: Some(rng.random_bool(0.3)),
                biography_length: Some(if fake { 0 } else { rng.random_range(0..150) }),
                username_length: Some(length),
                username_digit_count: Some(if fake {
                    rng.random_range(0..length.min(8))
                } else {
                    rng.random_range(0..3)
                }),
                account_age_days: rng.random_bool(0.5).then(|| rng.random_range(1..4_000)),
            }
        })
        .collect()
}

fn classify(args: ClassifyArgs, json: bool) -> Result<()> {
    use chorus_registry::domain::vetting::classifier::{Features, Model, Prior};
    let model = Model::current();
    let decision = model.decision(Prior::DEFAULT);
    let mut v = chorus_kit::Violations::new();
    let features: Vec<Features> = followers(1 << 20, 11)
        .iter()
        .filter_map(|a| chorus_registry::api::vetting::features(a, "f", &mut v))
        .collect();
    let started = Instant::now();
    let mut fake = 0u64;
    for i in 0..args.accounts {
        let f = &features[(i as usize) & (features.len() - 1)];
        if std::hint::black_box(decision.is_fake(std::hint::black_box(f))) {
            fake += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let rate = args.accounts as f64 / seconds;
    if json {
        outln!(
            "{}",
            serde_json::json!({"accounts": args.accounts, "seconds": seconds, "accounts_per_second": rate, "fake": fake, "model": model.version()})
        );
    } else {
        outln!(
            "classified {} accounts in {seconds:.3} s on one thread: {rate:.0} accounts/s ({fake} fake), model {}",
            args.accounts,
            model.version()
        );
    }
    Ok(())
}

async fn vet(args: VetArgs, connect: &ConnectArgs, json: bool) -> Result<()> {
    let mut registry = connect.registry().await?;
    let mut vetting = connect.vetting().await?;
    let page = registry
        .list_influencers(ListInfluencersRequest {
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner();
    let account = page
        .influencers
        .first()
        .and_then(|i| i.accounts.first())
        .ok_or("no influencer to vet: seed some first")?
        .clone();
    let sample = followers(args.sample, 5);
    let mut times = Histogram::<u64>::new(3)?;
    let mut last = None;
    for _ in 0..args.runs {
        let mut messages: Vec<SubmitAudienceSampleRequest> = sample
            .chunks(args.batch.max(1))
            .map(|rows| SubmitAudienceSampleRequest {
                followers: rows.to_vec(),
                ..Default::default()
            })
            .collect();
        if let Some(first) = messages.first_mut() {
            first.platform = account.platform;
            first.handle = account.handle.clone();
        }
        let started = Instant::now();
        let reply = vetting
            .submit_audience_sample(tokio_stream::iter(messages))
            .await?
            .into_inner();
        times.record(started.elapsed().as_micros().max(1) as u64)?;
        last = Some(reply);
    }
    let ms = |q: f64| times.value_at_quantile(q) as f64 / 1000.0;
    let fake = last.map_or(0, |r| r.fake_count);
    if json {
        outln!(
            "{}",
            serde_json::json!({"sample": args.sample, "runs": args.runs, "p50_ms": ms(0.5), "p99_ms": ms(0.99), "max_ms": times.max() as f64 / 1000.0, "fake_count": fake})
        );
    } else {
        outln!(
            "SubmitAudienceSample of {} accounts to report, {} runs: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({fake} classified fake)",
            args.sample,
            args.runs,
            ms(0.5),
            ms(0.99),
            times.max() as f64 / 1000.0
        );
    }
    Ok(())
}

/// Plain clients (no compression, as the baseline gets), one per connection.
async fn clients(endpoint: &str, bearer: &Bearer, n: usize) -> Result<Vec<Client>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let channel = Channel::from_shared(endpoint.to_owned())?
            .tcp_nodelay(true)
            .connect()
            .await?;
        out.push(RegistryServiceClient::with_interceptor(channel, bearer.clone()));
    }
    Ok(out)
}

#[derive(Debug, Clone)]
struct Step {
    rate: u64,
    achieved: f64,
    errors: u64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    sustained: bool,
}

/// Sends `rate` requests a second for `seconds`, each on its own task, timing each from the
/// moment it was due.
async fn open_loop<F, Fut>(rate: u64, seconds: u64, max_p99: Duration, call: F) -> Step
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let call = Arc::new(call);
    let total = rate * seconds;
    let errors = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let collector = tokio::spawn(async move {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
            .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable_histogram()));
        let mut last = Instant::now();
        while let Some(us) = rx.recv().await {
            let _ = h.record(us.max(1));
            last = Instant::now();
        }
        (h, last)
    });
    let wall = Instant::now();
    for i in 0..total {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        tokio::time::sleep_until(due).await;
        let (call, tx, errors) = (call.clone(), tx.clone(), errors.clone());
        tokio::spawn(async move {
            let ok = tokio::time::timeout(Duration::from_secs(10), call(i))
                .await
                .unwrap_or(false);
            if !ok {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            let _ = tx.send(due.elapsed().as_micros() as u64);
        });
    }
    drop(tx);
    let (h, last) = collector
        .await
        .unwrap_or_else(|_| (unreachable_histogram(), Instant::now()));
    let elapsed = last.duration_since(wall).as_secs_f64().max(1e-9);
    let errors = errors.load(Ordering::Relaxed);
    let achieved = (h.len().saturating_sub(errors)) as f64 / elapsed;
    let p99 = h.value_at_quantile(0.99);
    Step {
        rate,
        achieved,
        errors,
        p50_us: h.value_at_quantile(0.5),
        p99_us: p99,
        max_us: h.max(),
        sustained: errors == 0 && achieved >= 0.95 * rate as f64 && p99 <= max_p99.as_micros() as u64,
    }
}

fn unreachable_histogram() -> Histogram<u64> {
    // Histogram::new(3) only fails for precision > 5.
    Histogram::new(2).unwrap_or_else(|_| std::process::abort())
}

/// Steps through the rates until one is not sustained; returns every step run.
async fn ramp<F, Fut>(label: &str, args: &GetArgs, call: F) -> Vec<Step>
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let mut steps = Vec::new();
    for &rate in &args.rates {
        let step = open_loop(rate, args.seconds, Duration::from_millis(args.max_p99_ms), call.clone()).await;
        eprintln!(
            "{label:>9} rate {:>6}/s  achieved {:>8.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}{}",
            step.rate,
            step.achieved,
            step.p50_us as f64 / 1000.0,
            step.p99_us as f64 / 1000.0,
            step.errors,
            if step.sustained { "" } else { "  (not sustained)" }
        );
        let sustained = step.sustained;
        steps.push(step);
        if !sustained {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    steps
}

fn best(steps: &[Step]) -> Option<&Step> {
    steps
        .iter()
        .filter(|s| s.sustained)
        .max_by(|a, b| a.achieved.total_cmp(&b.achieved))
}

async fn get(args: GetArgs, connect: &ConnectArgs, json: bool) -> Result<()> {
    let bearer = Bearer::new(&connect.token()?)?;
    // Names to ask for: a sample of the catalogue.
    let mut registry = clients(&connect.endpoint, &bearer, 1).await?.remove(0);
    let page = registry
        .list_influencers(ListInfluencersRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await?
        .into_inner();
    let names: Arc<Vec<String>> = Arc::new(page.influencers.into_iter().map(|i| i.name).collect());
    if names.is_empty() {
        return Err("the catalogue is empty: run `chorus seed` first".into());
    }

    let mut baseline = Vec::new();
    if !args.no_baseline {
        let (listener, addr) = chorus_kit::server::bind("127.0.0.1:0".parse()?).await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .add_service(RegistryServiceServer::new(Empty))
                .serve_with_incoming_shutdown(chorus_kit::server::incoming(listener), async {
                    let _ = stopped.await;
                }),
        );
        let pool = Arc::new(clients(&format!("http://{addr}"), &bearer, args.connections).await?);
        let names = names.clone();
        baseline = ramp("empty", &args, move |i| {
            let mut c = pool[i as usize % pool.len()].clone();
            let name = names[i as usize % names.len()].clone();
            async move { c.get_influencer(GetInfluencerRequest { name }).await.is_ok() }
        })
        .await;
        let _ = stop.send(());
        let _ = server.await;
    }

    let pool = Arc::new(clients(&connect.endpoint, &bearer, args.connections).await?);
    let target = ramp("registry", &args, move |i| {
        let mut c = pool[i as usize % pool.len()].clone();
        let name = names[(i as usize * 7919) % names.len()].clone();
        async move { c.get_influencer(GetInfluencerRequest { name }).await.is_ok() }
    })
    .await;

    let summary = |steps: &[Step]| {
        best(steps).map(|s| {
            serde_json::json!({"rate": s.rate, "achieved_per_s": s.achieved.round(), "p50_ms": s.p50_us as f64 / 1000.0,
            "p99_ms": s.p99_us as f64 / 1000.0, "max_ms": s.max_us as f64 / 1000.0})
        })
    };
    let ratio = match (best(&target), best(&baseline)) {
        (Some(t), Some(b)) => Some(t.achieved / b.achieved),
        _ => None,
    };
    if json {
        outln!(
            "{}",
            serde_json::json!({"empty_handler": summary(&baseline), "registry": summary(&target), "ratio": ratio})
        );
    } else {
        for (label, steps) in [("empty handler", &baseline), ("registry", &target)] {
            if let Some(s) = best(steps) {
                outln!(
                    "{label:<14} sustained {:>8.0} req/s   p50 {:.2} ms   p99 {:.2} ms",
                    s.achieved,
                    s.p50_us as f64 / 1000.0,
                    s.p99_us as f64 / 1000.0
                );
            }
        }
        if let Some(r) = ratio {
            outln!("registry / empty handler throughput: {:.2}", r);
        }
    }
    Ok(())
}

async fn list(args: ListArgs, connect: &ConnectArgs, json: bool) -> Result<()> {
    let bearer = Bearer::new(&connect.token()?)?;
    let mut client = clients(&connect.endpoint, &bearer, 1).await?.remove(0);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(args.seed);
    let countries = ["US", "US", "US", "GB", "DE", "CA"];
    let cities = ["Austin", "Denver", "New York", "Chicago", "Seattle", "Los Angeles"];
    let niches = [
        "fitness",
        "food",
        "beauty",
        "pets",
        "travel",
        "vegan-food",
        "gaming",
        "parenting",
    ];
    let mut all = Histogram::<u64>::new(3)?;
    let mut empty_pages = 0;
    for _ in 0..args.requests {
        let mut req = ListInfluencersRequest {
            page_size: args.page_size,
            ..Default::default()
        };
        // A typical brief: a place, a niche or two, a tier, sometimes engagement and an order.
        match rng.random_range(0..3) {
            0 => req.country_code = countries[rng.random_range(0..countries.len())].into(),
            1 => req.city = cities[rng.random_range(0..cities.len())].into(),
            _ => {}
        }
        req.niches.push(niches[rng.random_range(0..niches.len())].into());
        if rng.random_bool(0.3) {
            req.niches.push(niches[rng.random_range(0..niches.len())].into());
        }
        if rng.random_bool(0.7) {
            req.tiers.push(Tier::Nano as i32);
        }
        if rng.random_bool(0.3) {
            req.min_engagement_rate = Some(0.04);
        }
        if rng.random_bool(0.3) {
            req.platform = Platform::Instagram as i32;
        }
        if rng.random_bool(0.3) {
            req.order_by = "followers desc".into();
        }
        let started = Instant::now();
        let page = client.list_influencers(req).await?.into_inner();
        all.record(started.elapsed().as_micros().max(1) as u64)?;
        if page.influencers.is_empty() {
            empty_pages += 1;
        }
    }
    let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    if json {
        outln!(
            "{}",
            serde_json::json!({"requests": args.requests, "p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99),
            "max_ms": all.max() as f64 / 1000.0, "empty_pages": empty_pages})
        );
    } else {
        outln!(
            "ListInfluencers first page ({} requests, page size {}): p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} empty pages)",
            args.requests,
            args.page_size,
            ms(0.5),
            ms(0.9),
            ms(0.99),
            all.max() as f64 / 1000.0,
            empty_pages
        );
    }
    Ok(())
}

/// The baseline: a tonic handler that does nothing.
#[derive(Debug, Clone, Copy)]
struct Empty;

type ImportStream = Pin<Box<dyn futures::Stream<Item = Result<ImportInfluencersResponse, Status>> + Send>>;
type ExportStream = Pin<Box<dyn futures::Stream<Item = Result<ExportInfluencersResponse, Status>> + Send>>;

#[tonic::async_trait]
impl RegistryService for Empty {
    async fn get_influencer(
        &self,
        _: Request<GetInfluencerRequest>,
    ) -> Result<Response<GetInfluencerResponse>, Status> {
        Ok(Response::new(GetInfluencerResponse::default()))
    }
    async fn create_influencer(
        &self,
        _: Request<CreateInfluencerRequest>,
    ) -> Result<Response<CreateInfluencerResponse>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    async fn batch_get_influencers(
        &self,
        _: Request<BatchGetInfluencersRequest>,
    ) -> Result<Response<BatchGetInfluencersResponse>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    async fn update_influencer(
        &self,
        _: Request<UpdateInfluencerRequest>,
    ) -> Result<Response<UpdateInfluencerResponse>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    async fn delete_influencer(
        &self,
        _: Request<DeleteInfluencerRequest>,
    ) -> Result<Response<DeleteInfluencerResponse>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    async fn list_influencers(
        &self,
        _: Request<ListInfluencersRequest>,
    ) -> Result<Response<ListInfluencersResponse>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    type ImportInfluencersStream = ImportStream;
    async fn import_influencers(
        &self,
        _: Request<Streaming<ImportInfluencersRequest>>,
    ) -> Result<Response<ImportStream>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    async fn record_metrics(
        &self,
        _: Request<Streaming<RecordMetricsRequest>>,
    ) -> Result<Response<RecordMetricsResponse>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    async fn list_metrics_snapshots(
        &self,
        _: Request<ListMetricsSnapshotsRequest>,
    ) -> Result<Response<ListMetricsSnapshotsResponse>, Status> {
        Err(Status::unimplemented("baseline"))
    }
    type ExportInfluencersStream = ExportStream;
    async fn export_influencers(&self, _: Request<ExportInfluencersRequest>) -> Result<Response<ExportStream>, Status> {
        Err(Status::unimplemented("baseline"))
    }
}
