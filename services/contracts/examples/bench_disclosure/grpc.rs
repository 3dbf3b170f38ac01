//! CheckDisclosure over loopback gRPC against an empty handler, driven by the same client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chorus_proto::contracts::disclosure_service_client::DisclosureServiceClient;
use chorus_proto::contracts::disclosure_service_server::{DisclosureService, DisclosureServiceServer};
use chorus_proto::contracts::{
    CheckDisclosureRequest, CheckDisclosureResponse, ListRuleSetsRequest, ListRuleSetsResponse,
};
use chorus_testkit::{Authed, Backend, Stack};
use tonic::{Request, Response, Status};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) seconds: u64,
    pub(crate) in_flight: usize,
    pub(crate) rounds: usize,
    pub(crate) connections: usize,
}

/// Answers every call at once with an empty response: the most a tonic server on this
/// machine can do with these messages.
struct Empty;

#[tonic::async_trait]
impl DisclosureService for Empty {
    async fn check_disclosure(
        &self,
        _request: Request<CheckDisclosureRequest>,
    ) -> Result<Response<CheckDisclosureResponse>, Status> {
        Ok(Response::new(CheckDisclosureResponse::default()))
    }

    async fn list_rule_sets(
        &self,
        _request: Request<ListRuleSetsRequest>,
    ) -> Result<Response<ListRuleSetsResponse>, Status> {
        Ok(Response::new(ListRuleSetsResponse::default()))
    }
}

struct Run {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// `in_flight` callers, each sending its next request as soon as the last is answered, over
/// `connections` channels, for `seconds`.
async fn drive(
    clients: &[DisclosureServiceClient<Authed>],
    requests: Arc<Vec<CheckDisclosureRequest>>,
    o: Options,
) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(o.seconds);
    let start = Instant::now();
    let callers: Vec<_> = (0..o.in_flight)
        .map(|k| {
            let mut client = clients[k % clients.len()].clone();
            let (requests, next, errors) = (requests.clone(), next.clone(), errors.clone());
            tokio::spawn(async move {
                let mut times = Vec::new();
                while Instant::now() < until {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let sent = Instant::now();
                    if client
                        .check_disclosure(requests[i % requests.len()].clone())
                        .await
                        .is_err()
                    {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    times.push(sent.elapsed().as_micros() as u32);
                }
                times
            })
        })
        .collect();
    let mut times = Vec::new();
    for c in callers {
        times.extend(c.await.expect("a caller"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    times.sort_unstable();
    let at = |q: f64| f64::from(times[((times.len() - 1) as f64 * q) as usize]) / 1000.0;
    let errors = errors.load(Ordering::Relaxed);
    Run {
        per_second: (times.len() as u64 - errors) as f64 / elapsed,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        errors,
    }
}

async fn clients(addr: std::net::SocketAddr, token: &str, n: usize) -> Vec<DisclosureServiceClient<Authed>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(DisclosureServiceClient::new(
            chorus_testkit::authed(addr, Some(token.to_owned())).await,
        ));
    }
    out
}

fn report(label: &str, r: &Run) {
    println!(
        "{label:<16} {:>8.0} calls/s   p50 {:>6.2} ms   p99 {:>6.2} ms   errors {}",
        r.per_second, r.p50_ms, r.p99_ms, r.errors
    );
}

pub(crate) fn main(requests: Vec<CheckDisclosureRequest>, o: Options) {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(run(requests, o));
}

async fn run(requests: Vec<CheckDisclosureRequest>, o: Options) {
    let requests = Arc::new(requests);
    // The empty handler: plain tonic, Nagle off as the kit serves.
    let (listener, empty_addr) = chorus_kit::server::bind(([127, 0, 0, 1], 0).into())
        .await
        .expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let empty = tokio::spawn(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(DisclosureServiceServer::new(Empty))
            .serve_with_incoming_shutdown(chorus_kit::server::incoming(listener), async {
                let _ = stopped.await;
            }),
    );
    // The contracts service as its binary runs it (on SQLite: CheckDisclosure reads no table).
    let mut stack = Stack::new(Backend::Sqlite);
    let db = stack.database().await;
    let service = stack
        .launch(
            &chorus_contracts::SERVICE,
            &db,
            &[(
                "CHORUS_SEALING_KEY",
                chorus_kit::auth::SigningKey::generate().expect("a key").to_pem(),
            )],
        )
        .await;
    let token = stack.token("bench", &["contracts.read"]);
    let to_empty = clients(empty_addr, &token, o.connections).await;
    let to_service = clients(service.addr, &token, o.connections).await;
    println!(
        "CheckDisclosure over gRPC: {} requests in the mix (language given), {} in flight over {} connections, {} s a run",
        requests.len(),
        o.in_flight,
        o.connections,
        o.seconds
    );
    // Warm both up (connections, the token cache), then alternate.
    let warm = Options { seconds: 1, ..o };
    drive(&to_empty, requests.clone(), warm).await;
    drive(&to_service, requests.clone(), warm).await;
    let (mut e, mut s) = (Vec::new(), Vec::new());
    for _ in 0..o.rounds {
        let r = drive(&to_empty, requests.clone(), o).await;
        report("empty handler", &r);
        e.push(r.per_second);
        let r = drive(&to_service, requests.clone(), o).await;
        report("contracts", &r);
        s.push(r.per_second);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (e, s) = (median(&mut e), median(&mut s));
    println!(
        "median: empty handler {e:.0} calls/s, contracts {s:.0} calls/s; ratio {:.2}",
        s / e
    );
    let _ = stop.send(());
    let _ = empty.await;
    service.shutdown().await.expect("stop the service");
}
