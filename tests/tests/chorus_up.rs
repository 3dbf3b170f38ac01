//! The single-node experience, as a newcomer lives it: `chorus up` on a fresh data directory,
//! then the `chorus` client (finding the dev token there) imports a CSV with one bad row, lists
//! the people, seeds a population and filters it by tier; ctrl-c stops it cleanly, and a second
//! `chorus up` on the same directory still has the data and still honours the first token.
//! And a contract from offer to sealed record, through the CLI alone, as a brand and an
//! influencer each with their own token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chorus_e2e::free_port;
use common::*;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Three good rows (with metrics, all nano) and, on line 5, a row the server refuses: "crypto"
/// is not a niche of the taxonomy, which only the registry checks.
const PEOPLE_CSV: &str = "\
display_name,platform,handle,niches,country,region,city,languages,followers,window_posts,window_likes,window_comments
Maya Chen,instagram,@E2E.Maya,vegan-food;pets,US,TX,Austin,en,4200,12,3000,150
Tom Baker,tiktok,e2e.tom,tech,GB,ENG,London,en,2500,20,1500,90
Ana Ruiz,youtube,e2e.ana,travel;food,MX,OAX,Oaxaca,es,1800,4,300,20
Rex Coin,x,e2e.rex,crypto,US,FL,Miami,en,1500,3,10,1
";

/// One person the CSV creates, as the registry should store them.
struct Person {
    name: &'static str,
    /// As stored: lower case, without "@".
    handle: &'static str,
    city: &'static str,
    country: &'static str,
    niches: &'static [&'static str],
    followers: i64,
}

const PEOPLE: [Person; 3] = [
    Person {
        name: "Maya Chen",
        handle: "e2e.maya",
        city: "Austin",
        country: "US",
        niches: &["vegan-food", "pets"],
        followers: 4200,
    },
    Person {
        name: "Tom Baker",
        handle: "e2e.tom",
        city: "London",
        country: "GB",
        niches: &["tech"],
        followers: 2500,
    },
    Person {
        name: "Ana Ruiz",
        handle: "e2e.ana",
        city: "Oaxaca",
        country: "MX",
        niches: &["travel", "food"],
        followers: 1800,
    },
];

const SEEDED: usize = 200;

/// The influencers of a `chorus influencers list --json` answer.
/// Matches `campaign` until the index has loaded and someone fits; the match as JSON.
fn wait_for_match(up: &Up, data_dir: &Path, campaign: &str) -> Value {
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    loop {
        let m = campaigns(up, data_dir, &["match", campaign, "--top", "5", "--json"]);
        if m.status.success() && m.json()["matched_count"].as_i64().unwrap_or(0) > 0 {
            return m.json();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no match in time\n{}",
            m.describe()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn influencers(run: &Run) -> Vec<Value> {
    let json = run.json();
    json["influencers"]
        .as_array()
        .unwrap_or_else(|| panic!("no \"influencers\" array\n{}", run.describe()))
        .clone()
}

/// Checks that the three people of the CSV are in `listed`, as imported, and the bad row not.
fn assert_people(listed: &[Value], context: &str) {
    for Person {
        name,
        handle,
        city,
        country,
        niches,
        followers,
    } in PEOPLE
    {
        let person = listed
            .iter()
            .find(|i| i["display_name"] == name)
            .unwrap_or_else(|| panic!("{context}: {name} is not listed; got {listed:#?}"));
        assert_eq!(person["location"]["city"], city, "{context}: city of {name}");
        assert_eq!(
            person["location"]["country_code"], country,
            "{context}: country of {name}"
        );
        assert_eq!(
            person["niches"],
            serde_json::json!(niches),
            "{context}: niches of {name}"
        );
        let account = &person["accounts"][0];
        assert_eq!(
            account["handle"], handle,
            "{context}: handle of {name}, stored lower case"
        );
        assert_eq!(
            account["metrics"]["latest"]["followers"], followers,
            "{context}: followers recorded for {name}"
        );
        assert_eq!(account["metrics"]["tier"], "TIER_NANO", "{context}: tier of {name}");
        assert!(
            person["name"].as_str().is_some_and(|n| n.starts_with("influencers/")),
            "{context}: resource name of {name}: {}",
            person["name"]
        );
    }
    assert!(
        !listed.iter().any(|i| i["display_name"] == "Rex Coin"),
        "{context}: the refused row must not be stored"
    );
}

#[test]
fn chorus_up_serves_the_client_stops_cleanly_and_keeps_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let port = free_port();

    // ---------------------------------------------------------------- first run
    let mut up = Up::start(&data_dir, port, tmp.path().join("up-1.stderr"));
    up.wait_up();
    let token_path = data_dir.join("dev-token");
    let first_token = std::fs::read_to_string(&token_path)
        .unwrap_or_else(|e| panic!("{} should exist once up ({e})\n{}", token_path.display(), up.output()));
    let first_token = first_token.trim().to_owned();
    assert!(!first_token.is_empty(), "the dev token file is empty");
    assert_eq!(
        up.printed_token(),
        first_token,
        "the token printed is the one written to dev-token"
    );

    // Import: three rows created (with their metrics), the fourth refused by the server.
    let csv = tmp.path().join("people.csv");
    std::fs::write(&csv, PEOPLE_CSV).unwrap();
    let import = client(port, &data_dir, &["influencers", "import", csv.to_str().unwrap()]);
    assert_eq!(
        import.status.code(),
        Some(1),
        "a failed row makes the import exit 1\n{}",
        import.describe()
    );
    assert!(
        import.stdout.contains("4 rows: 3 created, 0 updated, 1 failed"),
        "the summary counts the rows\n{}",
        import.describe()
    );
    assert!(
        import.stdout.contains("metrics: 3 recorded, 0 failed"),
        "the good rows' metrics are recorded\n{}",
        import.describe()
    );
    assert!(
        import.stdout.contains("INVALID_ARGUMENT") && import.stdout.contains("niches[0]"),
        "the failed row is reported with its code and field\n{}",
        import.describe()
    );
    assert!(
        import.stderr.contains("error: 1 of 4 rows failed"),
        "stderr says why the exit code is non-zero\n{}",
        import.describe()
    );

    let listed = client(port, &data_dir, &["influencers", "list", "--json"]);
    assert!(listed.status.success(), "list failed\n{}", listed.describe());
    let people = influencers(&listed);
    assert_eq!(people.len(), 3, "only the three imported people\n{}", listed.describe());
    assert_people(&people, "after import");

    // Seed a small population, then filter it by tier.
    let seeded = client(port, &data_dir, &["seed", "--influencers", &SEEDED.to_string()]);
    assert!(seeded.status.success(), "seed failed\n{}", seeded.describe());
    assert!(
        seeded
            .stdout
            .contains(&format!("seeded {SEEDED} influencers ({SEEDED} created")),
        "seed reports what it created\n{}",
        seeded.describe()
    );
    // An outside client that knows nothing of Chorus: Python's grpcio with grpcio-reflection
    // (v1alpha), building its request from what reflection sent, with the dev token.
    let outside = outside_client(port, &data_dir);
    assert_eq!(
        outside[0]["services"],
        serde_json::json!([
            "chorus.admin.v1.ClockService",
            "chorus.admin.v1.EventAdminService",
            "chorus.registry.v1.RegistryService",
            "chorus.registry.v1.VettingService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"
        ]),
        "the registry's port lists what it serves, not matching's"
    );
    assert_eq!(outside[1]["list"]["influencers"].as_array().map(Vec::len), Some(2));
    let refused = &outside[2]["refused"];
    assert_eq!(refused["code"], "INVALID_ARGUMENT");
    assert_eq!(
        refused["details"][0]["google.rpc.ErrorInfo"]["reason"],
        "FIELD_VIOLATION"
    );
    assert_eq!(
        refused["details"][1]["google.rpc.BadRequest"]["fieldViolations"][0]["field"],
        "page_size"
    );

    // Output into a pipe whose reader has gone (`chorus influencers list | head -1`) ends
    // quietly with success, not with a panic.
    let mut closed = chorus();
    closed
        .args(["--endpoint", &format!("http://127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["influencers", "list", "--all"]);
    let mut child = closed.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let closed = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert!(
        closed.status.success() && !stderr.contains("panicked"),
        "list into a closed pipe: {:?}\n{stderr}",
        closed.status
    );

    let nano = client(port, &data_dir, &["influencers", "list", "--tier", "nano", "--json"]);
    assert!(nano.status.success(), "list --tier nano failed\n{}", nano.describe());
    let nano = influencers(&nano);
    assert!(!nano.is_empty(), "a seeded population has nano influencers");
    for i in &nano {
        let tiers: Vec<&Value> = i["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["metrics"]["tier"])
            .collect();
        assert!(
            tiers.iter().any(|t| *t == "TIER_NANO"),
            "{} was listed as nano, its accounts' tiers are {tiers:?}",
            i["name"]
        );
    }

    // Vetting: Maya's imported metrics gave her a report; a follower file classifies.
    let vet = client(port, &data_dir, &["vet", "instagram:e2e.maya", "--json"]);
    assert!(vet.status.success(), "vet failed\n{}", vet.describe());
    let report = vet.json();
    assert_eq!(report["handle"], "e2e.maya", "{}", vet.describe());
    assert_eq!(
        report["signals"].as_array().map(Vec::len),
        Some(6),
        "{}",
        vet.describe()
    );
    let engagement = &report["signals"][0];
    assert_eq!(engagement["id"], "engagement_vs_tier");
    // (3,000 + 150) / 12 posts / 4,200 followers.
    assert!((engagement["value"].as_f64().unwrap() - 3_150.0 / 12.0 / 4_200.0).abs() < 1e-9);
    let table = client(port, &data_dir, &["vet", "@e2e.maya"]);
    assert!(
        table.status.success() && table.stdout.contains("quality score") && table.stdout.contains("engagement vs tier"),
        "the report prints as a table\n{}",
        table.describe()
    );
    let followers = tmp.path().join("followers.csv");
    std::fs::write(
        &followers,
        "username,posts_count,followers_count,following_count,has_profile_picture,is_private,biography_length\n\
         anna_83921,0,3,2400,false,false,0\n\
         maya.bakes,212,640,410,true,false,52\n",
    )
    .unwrap();
    let classified = client(
        port,
        &data_dir,
        &["vet", "classify", followers.to_str().unwrap(), "--json"],
    );
    assert!(
        classified.status.success(),
        "vet classify failed\n{}",
        classified.describe()
    );
    let calls: Vec<(String, bool)> = classified.json()["classifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["key"].as_str().unwrap().to_owned(), c["fake"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        calls,
        [("anna_83921".to_owned(), true), ("maya.bakes".to_owned(), false)]
    );
    let missing = client(port, &data_dir, &["vet", "instagram:nobody-here"]);
    assert_eq!(missing.status.code(), Some(1), "{}", missing.describe());
    assert!(missing.stderr.contains("NOT_FOUND"), "{}", missing.describe());

    // Matching runs beside the registry: a brief over the seeded catalogue, ranked with its
    // evidence, then a selection saved as a shortlist.
    let created = campaigns(
        &up,
        &data_dir,
        &[
            "create",
            "--name",
            "E2E treats",
            "--country",
            "US",
            "--country",
            "GB",
            "--tier",
            "nano,micro",
            "--deliverable",
            "instagram:feed-post",
            "--deliverable",
            "instagram:story",
            "--compensation",
            "cash,product,gift-card",
            "--budget",
            "2000 USD",
            "--headcount",
            "10",
            "--json",
        ],
    );
    assert!(created.status.success(), "{}", created.describe());
    let campaign = created.json()["name"].as_str().unwrap().to_owned();
    let matched = wait_for_match(&up, &data_dir, &campaign);
    let best = &matched["candidates"][0];
    assert_eq!(best["breakdown"].as_array().unwrap().len(), 7, "{best}");
    assert!(!best["reason"].as_str().unwrap().is_empty(), "{best}");
    let selected = campaigns(&up, &data_dir, &["select", &campaign, "--save-as", "e2e", "--json"]);
    assert!(selected.status.success(), "{}", selected.describe());
    let selected = selected.json();
    let spent = selected["total_cost"]["amount_minor"].as_i64().unwrap();
    assert!(spent > 0 && spent <= 200_000, "{selected}");
    assert!(selected["shortlist"]["name"].as_str().unwrap().starts_with(&campaign));

    // ctrl-c: a clean exit that says so.
    let status = up.stop("-INT");
    let stdout = up.drain();
    assert!(
        status.success(),
        "clean exit after SIGINT, got {status}\n{}",
        up.output()
    );
    assert!(stdout.contains("stopping..."), "it says it is stopping\n{stdout}");
    assert!(
        stdout.contains(&format!("stopped; data kept in {}", data_dir.display())),
        "it says it stopped and where the data is\n{stdout}"
    );
    drop(up);

    // ---------------------------------------------------------------- second run, same data
    let mut up = Up::start(&data_dir, port, tmp.path().join("up-2.stderr"));
    up.wait_up();

    let everyone = client(port, &data_dir, &["influencers", "list", "--all", "--json"]);
    assert!(
        everyone.status.success(),
        "list after restart failed\n{}",
        everyone.describe()
    );
    let everyone = influencers(&everyone);
    assert_eq!(
        everyone.len(),
        3 + SEEDED,
        "every imported and seeded influencer survives the restart"
    );
    assert_people(&everyone, "after restart");

    // The token of the first run still works: the signing secret is kept in the data dir.
    let with_old_token = client(
        port,
        &data_dir,
        &["--token", &first_token, "influencers", "list", "--json"],
    );
    assert!(
        with_old_token.status.success(),
        "the first run's dev token is still accepted\n{}",
        with_old_token.describe()
    );
    assert!(
        !influencers(&with_old_token).is_empty(),
        "{}",
        with_old_token.describe()
    );

    // The campaign survived, and the match index was rebuilt from the registry.
    let again = wait_for_match(&up, &data_dir, &campaign);
    assert_eq!(
        again["matched_count"], matched["matched_count"],
        "same catalogue, same fit"
    );

    // SIGTERM stops it as cleanly as ctrl-c.
    let status = up.stop("-TERM");
    let stdout = up.drain();
    assert!(
        status.success(),
        "clean exit after SIGTERM, got {status}\n{}",
        up.output()
    );
    assert!(stdout.contains("stopped; data kept in"), "{stdout}");
}

/// The display names in the InfluencerUpserted events of the registry's topic in the bus file
/// of `data_dir` (read while `chorus up` is stopped, by a group that is not kept).
fn upserted_in_the_event_log(data_dir: &Path) -> Vec<String> {
    use chorus_kit::events::memory::MemoryBus;
    use chorus_kit::events::{Bus, SubscribeOptions, read};
    use chorus_proto::registry::InfluencerUpserted;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bus = MemoryBus::open(data_dir.join("events.db")).await.unwrap();
        let options = SubscribeOptions {
            delete_group_on_exit: true,
            ..Default::default()
        };
        let mut events = bus
            .subscribe("chorus.registry", "e2e-reader", "e2e", options)
            .await
            .unwrap();
        let mut names = Vec::new();
        while let Some(d) = events.next(Duration::from_millis(300)).await.unwrap() {
            if let Some(upserted) = read::<InfluencerUpserted>(&d.envelope) {
                names.push(upserted.unwrap().influencer.unwrap().display_name);
            }
        }
        drop(events);
        bus.close().await.unwrap();
        names.sort();
        names
    })
}

/// Events published while nothing consumes them are not lost across a restart: the registry
/// runs alone (`--only registry`) and imports, `chorus up` stops with the events in its data
/// directory, and the whole node then started finds every person in matching's index.
#[test]
fn chorus_up_restarted_between_publish_and_consume_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let port = free_port();
    let mut up = Up::start_registry_only(&data_dir, port, tmp.path().join("up-1.stderr"));
    up.wait_registry_up();
    let csv = tmp.path().join("people.csv");
    std::fs::write(&csv, PEOPLE_CSV).unwrap();
    let import = client(port, &data_dir, &["influencers", "import", csv.to_str().unwrap()]);
    assert!(import.stdout.contains("3 created"), "{}", import.describe());
    let status = up.stop("-INT");
    assert!(status.success(), "{}", up.output());
    drop(up);

    let mut people: Vec<String> = PEOPLE.iter().map(|p| p.name.to_owned()).collect();
    people.sort();
    assert_eq!(
        upserted_in_the_event_log(&data_dir),
        people,
        "each import's event was published and kept, once"
    );

    let mut up = Up::start(&data_dir, port, tmp.path().join("up-2.stderr"));
    up.wait_up();
    let created = campaigns(
        &up,
        &data_dir,
        &[
            "create",
            "--name",
            "After the restart",
            "--deliverable",
            "instagram:feed-post",
            "--compensation",
            "cash,product",
            "--budget",
            "2000 USD",
            "--headcount",
            "10",
            "--json",
        ],
    );
    assert!(created.status.success(), "{}", created.describe());
    let campaign = created.json()["name"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let m = campaigns(&up, &data_dir, &["match", &campaign, "--json"]);
        if m.status.success() && m.json()["considered_count"].as_i64() == Some(3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "matching's index never held the three people\n{}",
            m.describe()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = up.stop("-INT");
    assert!(status.success(), "{}", up.output());
}

/// A client that opens an HTTP/2 connection and then never answers (hung, or stopped in a
/// debugger) must not keep ctrl-c from stopping `chorus up`.
#[test]
fn a_silent_client_does_not_keep_chorus_up_from_stopping() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let port = free_port();
    let mut up = Up::start(&data_dir, port, tmp.path().join("up.stderr"));
    up.wait_up();

    let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // The HTTP/2 connection preface and an empty SETTINGS frame; then nothing, ever.
    silent
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let status = up.stop("-INT");
    let stdout = up.drain();
    assert!(status.success(), "exit after SIGINT, got {status}\n{}", up.output());
    assert!(stdout.contains("stopped; data kept in"), "{stdout}");
    let stderr = std::fs::read_to_string(tmp.path().join("up.stderr")).unwrap();
    assert!(
        stderr.contains("connections still open") || stdout.contains("connections still open"),
        "it says why it did not wait\n{stdout}\n{stderr}"
    );
    drop(silent);
}

/// Traces a reader can follow: with an OTLP receiver (a real OTLP/gRPC endpoint the test runs),
/// `chorus up` exports spans named by OpenTelemetry's RPC conventions, and an event's publish and
/// its consumers' work join the trace of the call that caused it.
#[test]
fn chorus_up_exports_traces_that_follow_a_call_into_its_events() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
    use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use std::sync::{Arc, Mutex};

    #[derive(Default, Clone)]
    struct Receiver(Arc<Mutex<Vec<Span>>>);
    #[tonic::async_trait]
    impl TraceService for Receiver {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let spans = request
                .into_inner()
                .resource_spans
                .into_iter()
                .flat_map(|r| r.scope_spans)
                .flat_map(|s| s.spans);
            self.0.lock().unwrap().extend(spans);
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        }
    }

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let receiver = Receiver::default();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let otlp = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let port = free_port();
    let mut up = Up::start_with(
        &data_dir,
        port,
        tmp.path().join("up.stderr"),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str())],
    );
    up.wait_up();
    let csv = tmp.path().join("people.csv");
    std::fs::write(&csv, PEOPLE_CSV).unwrap();
    let imported = client(port, &data_dir, &["influencers", "import", csv.to_str().unwrap()]);
    assert!(imported.stdout.contains("3 created"), "{}", imported.describe());
    let status = up.stop("-INT");
    assert!(status.success(), "{}", up.output());

    let spans = receiver.0.lock().unwrap().clone();
    let attr = |s: &Span, key: &str| -> Option<Any> {
        s.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.clone())
            .and_then(|v| v.value)
    };
    let import = spans
        .iter()
        .find(|s| s.name == "chorus.registry.v1.RegistryService/ImportInfluencers")
        .unwrap_or_else(|| {
            let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
            panic!("no span for the import among {names:?}")
        });
    assert_eq!(import.kind, 2, "a server span");
    assert_eq!(attr(import, "rpc.system"), Some(Any::StringValue("grpc".into())));
    assert_eq!(
        attr(import, "rpc.service"),
        Some(Any::StringValue("chorus.registry.v1.RegistryService".into()))
    );
    assert_eq!(
        attr(import, "rpc.method"),
        Some(Any::StringValue("ImportInfluencers".into()))
    );
    assert_eq!(attr(import, "rpc.grpc.status_code"), Some(Any::IntValue(0)));

    let trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == import.trace_id).collect();
    let ids: std::collections::HashSet<&[u8]> = trace.iter().map(|s| s.span_id.as_slice()).collect();
    let write = trace.iter().find(|s| s.name == "db registry.write").unwrap_or_else(|| {
        panic!(
            "a database span in the import's trace: {:?}",
            trace.iter().map(|s| s.name.as_str()).collect::<Vec<_>>()
        )
    });
    assert_eq!(write.kind, 3, "a client span");
    assert_eq!(attr(write, "db.system.name"), Some(Any::StringValue("sqlite".into())));
    assert!(ids.contains(write.parent_span_id.as_slice()), "under the call");
    let publishes: Vec<&&Span> = trace.iter().filter(|s| s.name == "publish chorus.registry").collect();
    assert!(
        publishes.len() >= 3,
        "a publish span per event of the import, in its trace: {:?}",
        trace.iter().map(|s| s.name.as_str()).collect::<Vec<_>>()
    );
    for p in &publishes {
        assert_eq!(p.kind, 4, "a producer span");
        assert!(
            ids.contains(p.parent_span_id.as_slice()),
            "the publish hangs under the call"
        );
    }
    let publish_ids: std::collections::HashSet<&[u8]> = publishes.iter().map(|s| s.span_id.as_slice()).collect();
    let processed: Vec<&&Span> = trace.iter().filter(|s| s.name == "process chorus.registry").collect();
    assert!(
        processed.len() >= 3,
        "consumers' work joins the producer's trace: {:?}",
        trace.iter().map(|s| s.name.as_str()).collect::<Vec<_>>()
    );
    for p in &processed {
        assert_eq!(p.kind, 5, "a consumer span");
        assert!(
            publish_ids.contains(p.parent_span_id.as_slice()),
            "a child of its publish"
        );
    }
}

/// A contract through the CLI alone: the brand sets an offer template and offers it to one
/// person; the influencer, with a token of their own, accepts and signs; the brand signs, which
/// seals it; nothing is deposited, so payouts cannot hold the pay and contracts marks it
/// unfunded until the brand deposits; the influencer onboards as a payee and posts, the post is
/// approved, and the cash is paid through the provider simulator `chorus up` started, once, to
/// a statement; the sealed record verifies offline, and no longer does once one byte of a
/// signer's IP is changed.
#[test]
fn a_contract_goes_from_offer_to_a_verified_seal_and_a_paid_statement_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut up = Up::start(&data_dir, free_port(), tmp.path().join("up.stderr"));
    up.wait_up();
    let brand = |args: &[&str]| {
        let r = contracts(&up, &data_dir, None, args);
        assert!(r.status.success(), "{}", r.describe());
        r
    };
    let campaign = format!("campaigns/{}", uuid::Uuid::now_v7());
    let influencer = format!("influencers/{}", uuid::Uuid::now_v7());

    let template = brand(&offer_template(&campaign)).json();
    assert_eq!(template["terms"]["compensation"]["cash"]["amount_minor"], 25_000);
    let bare_id = influencer.trim_start_matches("influencers/");
    let created = brand(&["offers", "create", &campaign, "--influencer", bare_id, "--json"]).json();
    let offer = created["offers"][0].as_str().unwrap().to_owned();

    // The influencer's own token, minted with the issuer's key of the data directory.
    let token = influencer_token(&up, &data_dir, &influencer);
    let as_influencer = |args: &[&str]| {
        let r = contracts(&up, &data_dir, Some(&token), args);
        assert!(r.status.success(), "{}", r.describe());
        r
    };
    let accepted = as_influencer(&["offers", "accept", &offer, "--json"]).json();
    assert_eq!(accepted["offer"]["state"], "OFFER_STATE_ACCEPTED", "{accepted}");
    let contract = accepted["contract"]["name"].as_str().unwrap().to_owned();
    let sha = accepted["contract"]["terms_sha256"].as_str().unwrap().to_owned();

    let signed = as_influencer(&["contracts", "sign", &contract, "--ip", "203.0.113.7"]);
    assert!(
        signed
            .stdout
            .contains(&format!("Signed terms version 1 of {contract}: sha256 {sha}")),
        "{}",
        signed.describe()
    );
    let sealed = brand(&["contracts", "sign", &contract, "--ip", "198.51.100.4", "--json"]).json();
    assert_eq!(sealed["contract"]["state"], "CONTRACT_STATE_ACTIVE", "{sealed}");

    // Nothing was deposited: payouts cannot hold the compensation, contracts hears of it.
    let unfunded = wait_until(|| {
        let c = brand(&["contracts", "get", &contract, "--json"]).json();
        (c["funding"] == "FUNDING_UNFUNDED").then_some(c)
    });
    assert!(
        unfunded["reason"].as_str().unwrap().contains("short by USD 250.00"),
        "{unfunded}"
    );
    // The brand deposits; the hold is made and the contract is funded.
    fund_until_held(&brand, &campaign, &contract, "wire-1");
    let budget = brand(&["ledger", "budget", &campaign, "--json"]).json();
    assert_eq!(budget["held"]["amount_minor"], 25_000, "{budget}");
    // The influencer onboards as a payee (PayPal, a W-9), posts with a clear #ad, and the post
    // is approved at once (no content review): the cash is released and paid by PayPal (the
    // simulator chorus up started).
    onboard_payee(&as_influencer, "Ana Lima", "ana@example.com");
    let posted = as_influencer(&[
        "deliverables",
        "submit",
        &format!("{contract}/deliverables/1"),
        "--url",
        "https://instagram.com/p/abc",
        "--caption",
        "#ad Morning walk with @pawsome, thanks for the treats",
        "--json",
    ])
    .json();
    assert_eq!(posted["state"], "DELIVERABLE_STATE_APPROVED", "{posted}");
    let statement = wait_until(|| {
        brand(&["payouts", "run", "--campaign", &campaign]);
        let s = brand(&["payouts", "statement", &influencer, "--json"]).json();
        (s["paid"][0]["amount_minor"] == 25_000).then_some(s)
    });
    assert_eq!(statement["lines"].as_array().unwrap().len(), 1, "{statement}");
    let budget = brand(&["ledger", "budget", &campaign, "--json"]).json();
    assert_eq!(
        (
            budget["held"]["amount_minor"].clone(),
            budget["released"]["amount_minor"].clone(),
            budget["available"]["amount_minor"].clone()
        ),
        (json!(0), json!(25_000), json!(75_000)),
        "{budget}"
    );

    let record = tmp.path().join("f.json");
    let keys = tmp.path().join("keys.json");
    let record_arg = record.to_str().unwrap();
    brand(&["contracts", "pdf", &contract, "--sealed", "-o", record_arg]);
    std::fs::write(&keys, brand(&["contracts", "keys"]).stdout).unwrap();
    // Without --keys the keys come from the endpoint, with no token needed: this data
    // directory holds none.
    let no_token = tmp.path().join("no-token");
    let valid = contracts(&up, &no_token, None, &["contracts", "verify", record_arg]);
    assert!(valid.status.success(), "{}", valid.describe());
    assert!(
        valid
            .stdout
            .starts_with(&format!("valid: {contract}, terms version 1 sha256 {sha}")),
        "{}",
        valid.describe()
    );
    assert!(valid.stdout.contains("from 203.0.113.7"), "{}", valid.describe());

    let text = std::fs::read_to_string(&record).unwrap();
    assert!(text.contains("203.0.113.7"), "{text}");
    std::fs::write(&record, text.replace("203.0.113.7", "203.0.113.8")).unwrap();
    let keys_arg = keys.to_str().unwrap();
    let tampered = contracts(
        &up,
        &data_dir,
        None,
        &["contracts", "verify", record_arg, "--keys", keys_arg],
    );
    assert_eq!(tampered.status.code(), Some(1), "{}", tampered.describe());
    assert!(
        tampered
            .stdout
            .starts_with("invalid: the seal's signature does not match the record"),
        "{}",
        tampered.describe()
    );

    let status = up.stop("-INT");
    assert!(status.success(), "{}", up.output());
}
