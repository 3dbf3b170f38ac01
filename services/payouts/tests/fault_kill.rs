//! Payouts under kill -9: the real `chorus-payouts` binary, on a fresh PostgreSQL database and
//! the provider simulator, is killed (SIGKILL) at each step of a payout run and started again;
//! every payee must then be paid exactly once and the ledger must balance. A fault test (the
//! binary's name): nextest runs it alone, beside the other tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chorus_kit::auth::{Grant, role};
use chorus_kit::clock::Clock;
use chorus_kit::events::envelope;
use chorus_kit::storage::Database;
use chorus_proto::contracts::{Compensation, Contract, ContractActivated, DeliverableApproved, DeliverableTerm, Terms};
use chorus_proto::payouts::ledger_service_client::LedgerServiceClient;
use chorus_proto::payouts::payouts_service_client::PayoutsServiceClient;
use chorus_proto::payouts::*;
use chorus_proto::types::Money;
use chorus_providersim::{Endpoint, Fault, Provider, SimConfig, Simulator};
use chorus_testkit::fault::PrivateRedis;
use chorus_testkit::{Backend, Stack};
use sqlx::Row;

/// Payees, one contract and one approved deliverable each.
const N: usize = 20;
/// What each is owed, in cents.
const CASH: i64 = 1_500;
const CAMPAIGN: &str = "campaigns/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a70";
const PII_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const PAID: i32 = PayoutState::Paid as i32;

fn influencer(i: usize) -> String {
    format!("influencers/0190a5b2-7c3d-7e4f-8a1b-{:012x}", 0xa000 + i)
}

fn contract_name(i: usize) -> String {
    format!("contracts/0190a5b2-7c3d-7e4f-8a1b-{:012x}", 0xb000 + i)
}

/// Where payee `i` is paid: a Stripe connected account or a PayPal email.
fn destination(method: Method, i: usize) -> String {
    match method {
        Method::Paypal => format!("payee{i}.paypal@example.com"),
        _ => format!("acct_kill{i:02}"),
    }
}

fn usd(minor: i64) -> Option<Money> {
    Some(Money {
        currency_code: "USD".into(),
        amount_minor: minor,
    })
}

/// A payout run's state, prepared in process, in a database the binary then takes over.
struct Prepared {
    method: Method,
    stack: Stack,
    db_url: String,
    db: Database,
    sim: Simulator,
    redis: PrivateRedis,
    dir: tempfile::TempDir,
}

/// Funds the campaign, onboards N payees (paid by `method`, a W-9 on file) and has contracts publish their
/// activations and approvals, with the in-process service's runner idle (a one-hour interval):
/// N payouts APPROVED, none submitted. The service's first run happens as it starts, before
/// anything is approved, so nothing is paid here (asserted).
async fn prepare(sim_config: SimConfig, method: Method) -> Prepared {
    let sim = Simulator::start(sim_config).await.unwrap();
    let mut stack = Stack::new(Backend::Postgres);
    let db_url = stack.database().await;
    let settings = vec![
        ("CHORUS_PII_KEYS", PII_KEYS.to_owned()),
        ("CHORUS_PROVIDERS_SIMULATOR", sim.stripe_url()),
        ("CHORUS_PAYOUT_INTERVAL_MS", "3600000".to_owned()),
    ];
    let service = stack.launch(&chorus_payouts::SERVICE, &db_url, &settings).await;
    let brand = stack.token("acme", &["payouts.read", "payouts.write"]);
    let channel = chorus_testkit::authed(service.addr, Some(brand)).await;
    LedgerServiceClient::new(channel)
        .fund_campaign(FundCampaignRequest {
            campaign: CAMPAIGN.into(),
            deposit_id: "dep-1".into(),
            amount: usd(CASH * N as i64 * 2),
            source: Some(fund_campaign_request::Source::BankTransfer("WIRE-001".into())),
        })
        .await
        .unwrap();
    for i in 0..N {
        onboard(&stack, service.addr, method, i).await;
    }
    let bus = stack.shared_bus();
    let clock = Clock::system();
    for i in 0..N {
        let activated = ContractActivated {
            contract: Some(contract(i)),
            total_value: usd(CASH),
        };
        bus.publish("chorus.contracts", &envelope(&clock, "acme", &activated))
            .await
            .unwrap();
    }
    let db = Database::connect(
        &db_url,
        &[&chorus_kit::storage::KIT_MIGRATIONS, &chorus_payouts::MIGRATIONS],
        2,
    )
    .await
    .unwrap();
    wait(Duration::from_secs(20), None, || async {
        let held = count(&db, PayoutState::Held as i32).await;
        (held == N).then_some(()).ok_or(format!("{held} of {N} held"))
    })
    .await;
    for i in 0..N {
        bus.publish("chorus.contracts", &envelope(&clock, "acme", &approval(i)))
            .await
            .unwrap();
    }
    wait(Duration::from_secs(20), None, || async {
        let approved = count(&db, PayoutState::Approved as i32).await;
        (approved == N)
            .then_some(())
            .ok_or(format!("{approved} of {N} approved"))
    })
    .await;
    service.shutdown().await.unwrap();
    assert!(sim.transfers().is_empty(), "nothing is paid before the binary runs");
    Prepared {
        method,
        stack,
        db_url,
        db,
        sim,
        redis: PrivateRedis::new().await,
        dir: tempfile::tempdir().unwrap(),
    }
}

fn contract(i: usize) -> Contract {
    Contract {
        name: contract_name(i),
        campaign: CAMPAIGN.into(),
        influencer: influencer(i),
        terms: Some(Terms {
            deliverables: vec![DeliverableTerm {
                count: 1,
                ..Default::default()
            }],
            compensation: Some(Compensation {
                cash: usd(CASH),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn approval(i: usize) -> DeliverableApproved {
    DeliverableApproved {
        deliverable: format!("{}/deliverables/1", contract_name(i)),
        contract: contract_name(i),
        campaign: CAMPAIGN.into(),
        influencer: influencer(i),
        index: 1,
        total: 1,
        cash_release: usd(CASH),
        r#final: true,
        ..Default::default()
    }
}

/// Payee `i` fills in their profile: paid by `method`, a W-9 on file.
async fn onboard(stack: &Stack, addr: SocketAddr, method: Method, i: usize) {
    let who = influencer(i);
    let token = stack.mint(&Grant {
        subject: who.clone(),
        tenant: String::new(),
        role: role::INFLUENCER.into(),
        scopes: vec!["payouts.self".into()],
    });
    let payee = Payee {
        name: format!("payees/{}", who.trim_start_matches("influencers/")),
        legal_name: format!("Payee {i}"),
        email: format!("payee{i}@example.com"),
        cash_method: method as i32,
        stripe_account: if method == Method::Stripe {
            destination(method, i)
        } else {
            String::new()
        },
        paypal_email: if method == Method::Paypal {
            destination(method, i)
        } else {
            String::new()
        },
        tax_form: TaxForm::W9 as i32,
        tax_form_signed_on: "2026-01-05".into(),
        tax_id: format!("123-45-{:04}", 6700 + i),
        tax_country: "US".into(),
        ..Default::default()
    };
    PayoutsServiceClient::new(chorus_testkit::authed(addr, Some(token)).await)
        .update_payee(UpdatePayeeRequest { payee: Some(payee) })
        .await
        .unwrap();
}

/// Payouts in `state`.
async fn count(db: &Database, state: i32) -> usize {
    let row = sqlx::query("SELECT COUNT(*) FROM payouts WHERE state = $1")
        .bind(state)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    usize::try_from(row.get::<i64, _>(0)).unwrap()
}

/// The `chorus-payouts` binary as a child process; its output goes to `log`.
struct Binary {
    child: Child,
}

impl Prepared {
    /// Starts the binary with the settings a deployment gives it, providers at `providers`.
    fn start(&self, providers: &str, extra: &[(&str, &str)]) -> Binary {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let jwks = chorus_kit::auth::verify::jwks_json(&self.stack.issuer().jwks());
        let mut command = Command::new(env!("CARGO_BIN_EXE_chorus-payouts"));
        command
            .env_clear()
            .env("DATABASE_URL", &self.db_url)
            .env("CHORUS_GRPC_ADDR", format!("127.0.0.1:{port}"))
            .env("CHORUS_JWKS", jwks)
            .env("CHORUS_PII_KEYS", PII_KEYS)
            .env("CHORUS_PROVIDERS_SIMULATOR", providers)
            .env("CHORUS_PAYOUT_INTERVAL_MS", "100")
            .env("CHORUS_PAYOUT_LEASE_MS", "500")
            .env("REDIS_URL", self.redis.url())
            .env("RUST_LOG", "info");
        for (k, v) in extra {
            command.env(k, v);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Binary { child }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("payouts.log")
    }

    /// Waits until every payout is PAID, then checks each payee was paid exactly once and the
    /// ledger balances.
    async fn all_paid_once(&self, deadline: Duration) {
        let log = self.log();
        wait(deadline, Some(&log), || async {
            let paid = count(&self.db, PAID).await;
            (paid == N).then_some(()).ok_or(format!("{paid} of {N} paid"))
        })
        .await;
        for i in 0..N {
            let to = destination(self.method, i);
            assert_eq!(self.sim.movements(&to), 1, "payee {i} is paid exactly once");
        }
        let amounts: Vec<i64> = match self.method {
            Method::Paypal => self.sim.payout_items().iter().map(|i| i.amount_minor).collect(),
            _ => self.sim.transfers().iter().map(|t| t.amount).collect(),
        };
        assert_eq!(amounts, vec![CASH; N], "one provider payment per payout");
        let clearing = match self.method {
            Method::Paypal => "clearing.paypal.USD",
            _ => "clearing.stripe.USD",
        };
        ledger_balances(&self.db, clearing).await;
    }
}

impl Binary {
    /// SIGKILL (std's `kill` on Unix), then reap it.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        // A test that fails mid-way leaves no process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The books balance: debits equal credits over all accounts, pending and posted; every
/// payable is back to zero; one `paid.` transfer per payout, all to the provider's clearing
/// account.
async fn ledger_balances(db: &Database, clearing: &str) {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(debits_pending), 0) AS BIGINT), CAST(COALESCE(SUM(credits_pending), 0) AS BIGINT), \
         CAST(COALESCE(SUM(debits_posted), 0) AS BIGINT), CAST(COALESCE(SUM(credits_posted), 0) AS BIGINT) \
         FROM ledger_accounts",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let sums: Vec<i64> = (0..4).map(|c| row.get::<i64, _>(c)).collect();
    assert_eq!(sums[0], sums[1], "pending debits == pending credits: {sums:?}");
    assert_eq!(sums[2], sums[3], "posted debits == posted credits: {sums:?}");
    let payables = sqlx::query(
        "SELECT id, debits_pending, credits_pending, debits_posted, credits_posted FROM ledger_accounts \
         WHERE id LIKE 'payable.%'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(payables.len(), N);
    for p in &payables {
        let b: Vec<i64> = (1..5).map(|c| p.get::<i64, _>(c)).collect();
        assert_eq!(
            b,
            [0, 0, CASH, CASH],
            "{} is paid out in full, once",
            p.get::<String, _>(0)
        );
    }
    let paid = sqlx::query(
        "SELECT COUNT(*), CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_transfers \
         WHERE id LIKE 'paid.%' AND credit_account = $1",
    )
    .bind(clearing)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        (paid.get::<i64, _>(0), paid.get::<i64, _>(1)),
        (N as i64, CASH * N as i64)
    );
}

/// Polls `probe` until it is Ok; on timeout panics with the binary's log, if any.
async fn wait<F, Fut>(deadline: Duration, log: Option<&Path>, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let end = Instant::now() + deadline;
    loop {
        let last = match probe().await {
            Ok(()) => return,
            Err(e) => e,
        };
        if Instant::now() > end {
            let log = log
                .map(|l| std::fs::read_to_string(l).unwrap_or_default())
                .unwrap_or_default();
            let tail: String = log
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            panic!("gave up after {deadline:?}: {last}\n--- payouts log ---\n{tail}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A "provider" that accepts connections and never answers: requests hang in flight, none
/// is executed. It counts the connections it holds.
async fn black_hole() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let held = Arc::new(AtomicUsize::new(0));
    let counter = held.clone();
    tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (url, held)
}

/// (a) Killed while the requests are in flight and before the provider executed any: the
/// simulator's `Slow` executes first and then waits, so a provider that never answers stands
/// in for one (a black hole), which also makes sure nothing was executed. After the restart
/// the lease runs out and the same batch goes to the real provider.
#[tokio::test]
async fn killed_before_the_provider_executes_pays_once() {
    let p = prepare(SimConfig::default(), Method::Stripe).await;
    let (hole, held) = black_hole().await;
    let binary = p.start(&hole, &[]);
    // The Stripe adapter sends 8 calls at a time: all 8 hang.
    wait(Duration::from_secs(15), Some(&p.log()), || async {
        let n = held.load(Ordering::SeqCst);
        (n >= 8).then_some(()).ok_or(format!("{n} requests in flight"))
    })
    .await;
    binary.kill();
    assert_eq!(
        count(&p.db, PayoutState::Submitted as i32).await,
        N,
        "submitted before the call"
    );
    assert_eq!(p.sim.requests(Endpoint::StripeCreateTransfer), 0);
    let _again = p.start(&p.sim.stripe_url(), &[]);
    p.all_paid_once(Duration::from_secs(20)).await;
}

/// (b) Killed after the provider executed and before the outcome was recorded: the first 8
/// transfers are made and answered 10 s late; the process dies during the wait. On restart the
/// same idempotency keys are sent: Stripe says "in progress" (409) until the slow requests are
/// done, then replays their transfers; nobody is paid twice.
#[tokio::test]
async fn killed_after_the_provider_executed_pays_once() {
    let p = prepare(SimConfig::default(), Method::Stripe).await;
    p.sim
        .fault(Endpoint::StripeCreateTransfer, Fault::Slow(Duration::from_secs(10)), 8);
    let binary = p.start(&p.sim.stripe_url(), &[]);
    wait(Duration::from_secs(15), Some(&p.log()), || async {
        let n = p.sim.transfers().len();
        (n == 8).then_some(()).ok_or(format!("{n} transfers made"))
    })
    .await;
    binary.kill();
    assert_eq!(count(&p.db, PAID).await, 0, "nothing was recorded");
    assert_eq!(p.sim.transfers().len(), 8);
    let _again = p.start(&p.sim.stripe_url(), &[]);
    p.all_paid_once(Duration::from_secs(30)).await;
}

/// (c) Killed in the middle of a batch: Stripe at 5 requests a second, killed once about half
/// of the 20 transfers are made (none recorded: a batch is recorded whole). The restart sends
/// the batch again; the first half is answered from the idempotency keys.
#[tokio::test]
async fn killed_during_a_batch_pays_once() {
    let mut config = SimConfig::default();
    config.rate_limits.insert(Provider::Stripe, 5);
    let p = prepare(config, Method::Stripe).await;
    let paced = [("CHORUS_STRIPE_RATE", "5")];
    let binary = p.start(&p.sim.stripe_url(), &paced);
    wait(Duration::from_secs(15), Some(&p.log()), || async {
        let n = p.sim.transfers().len();
        (n >= N / 2).then_some(()).ok_or(format!("{n} transfers made"))
    })
    .await;
    binary.kill();
    let made = p.sim.transfers().len();
    assert!(made < N, "killed mid-batch: {made} of {N} made");
    let _again = p.start(&p.sim.stripe_url(), &paced);
    p.all_paid_once(Duration::from_secs(20)).await;
}

/// (b) with PayPal: the batch is made and answered 10 s late; killed during the wait. On
/// restart the same batch is sent again under the same sender_batch_id: PayPal refuses the
/// duplicate and names the first batch, whose items are read back; nobody is paid twice.
#[tokio::test]
async fn killed_after_paypal_made_the_batch_pays_once() {
    let p = prepare(SimConfig::default(), Method::Paypal).await;
    p.sim
        .fault(Endpoint::PayPalCreateBatch, Fault::Slow(Duration::from_secs(10)), 1);
    let binary = p.start(&p.sim.paypal_url(), &[]);
    wait(Duration::from_secs(15), Some(&p.log()), || async {
        let n = p.sim.payout_items().len();
        (n == N).then_some(()).ok_or(format!("{n} items made"))
    })
    .await;
    binary.kill();
    assert_eq!(count(&p.db, PAID).await, 0, "nothing was recorded");
    let _again = p.start(&p.sim.paypal_url(), &[]);
    p.all_paid_once(Duration::from_secs(20)).await;
    assert_eq!(
        p.sim.paypal_batches().len(),
        1,
        "one batch: {:?}",
        p.sim.paypal_batches()
    );
}

/// Killed again and again, each time a little later after its start (Stripe at 5/s), so the
/// kills land on different steps: starting up, waiting for the lease, between the commit and
/// the call, mid-batch. Then it runs to the end: still one payment per payee.
#[tokio::test]
async fn killed_again_and_again_pays_once() {
    let mut config = SimConfig::default();
    config.rate_limits.insert(Provider::Stripe, 5);
    let p = prepare(config, Method::Stripe).await;
    let paced = [("CHORUS_STRIPE_RATE", "5")];
    let mut trail = Vec::new();
    for ms in [150, 300, 450, 600, 750, 900] {
        let binary = p.start(&p.sim.stripe_url(), &paced);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        binary.kill();
        trail.push((ms, p.sim.transfers().len(), count(&p.db, PAID).await));
    }
    eprintln!("kills (ms after start, transfers made, recorded paid): {trail:?}");
    assert!(
        trail.iter().any(|&(_, made, paid)| made > paid && made < N),
        "some kill came between a payment and its record: (ms, made, recorded) {trail:?}"
    );
    let _last = p.start(&p.sim.stripe_url(), &paced);
    p.all_paid_once(Duration::from_secs(20)).await;
}
