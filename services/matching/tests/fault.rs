//! Matching's index through a Redis failure: registry and matching on a private Redis (append
//! only, fsync always) that the test kills with SIGKILL while matching consumes an import's
//! events, then starts again. The binary is named `fault`, so nextest runs it in the serial
//! `fault` group.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chorus_kit::events::HANDLED_METRIC;
use chorus_kit::events::redis::RedisBus;
use chorus_proto::matching::MatchInfluencersRequest;
use chorus_proto::registry::{ImportInfluencersRequest, ImportOutcome};
use chorus_testkit::eventually;
use chorus_testkit::fault::PrivateRedis;
use chorus_testkit::metrics::Metrics;
use common::*;

/// Labels of the matching index's consumer group on the registry's topic.
const INDEX_GROUP: &[(&str, &str)] = &[
    ("topic", "chorus.registry"),
    ("group", "matching-index"),
    ("outcome", "ok"),
];
const INDEX_DUPLICATES: &[(&str, &str)] = &[
    ("topic", "chorus.registry"),
    ("group", "matching-index"),
    ("outcome", "duplicate"),
];

/// Imports `count` people named `{tag} {i}` in one stream of requests of 50; their names.
async fn import(registry: &mut Registry, tag: &str, count: usize) -> Vec<String> {
    let rows: Vec<ImportInfluencersRequest> = (0..count)
        .collect::<Vec<_>>()
        .chunks(50)
        .map(|chunk| ImportInfluencersRequest {
            influencers: chunk
                .iter()
                .map(|i| person(&format!("{tag} {i}"), &format!("{tag}.{i}"), "Austin", &["pets"]))
                .collect(),
        })
        .collect();
    let mut results = registry
        .import_influencers(futures::stream::iter(rows))
        .await
        .unwrap()
        .into_inner();
    let mut names = Vec::new();
    while let Some(batch) = results.message().await.unwrap() {
        for r in batch.results {
            assert_eq!(r.outcome, ImportOutcome::Created as i32, "{r:?}");
            names.push(r.name);
        }
    }
    assert_eq!(names.len(), count);
    names
}

#[tokio::test]
async fn a_redis_kill_mid_stream_loses_no_event_and_applies_none_twice() {
    let metrics = Metrics::install();
    let mut redis = PrivateRedis::new().await;
    let mut stack = Stack::new(Backend::Sqlite);
    stack.use_bus(Arc::new(RedisBus::connect(&redis.url()).await.unwrap()));
    let registry_db = stack.database().await;
    let registry = stack.launch(&chorus_registry::SERVICE, &registry_db, &[]).await;
    let matching_db = stack.database().await;
    let matching = stack
        .launch(
            &chorus_matching::SERVICE,
            &matching_db,
            &[("CHORUS_REGISTRY_URL", format!("http://{}", registry.addr))],
        )
        .await;
    let ops = stack.token("ops", &["registry.read", "registry.curate"]);
    let mut registry_client = Registry::new(chorus_testkit::authed(registry.addr, Some(ops)).await);
    let brand = stack.token("brand-a", &["matching.read", "matching.write"]);
    let mut m = Matching::new(chorus_testkit::authed(matching.addr, Some(brand)).await);
    let campaign = create_campaign(&mut m, dog_treats()).await.name;
    // How many influencers the index holds (Match answers UNAVAILABLE until it has loaded).
    let indexed = || {
        let (mut m, campaign) = (m.clone(), campaign.clone());
        async move {
            m.match_influencers(MatchInfluencersRequest { campaign, page_size: 1 })
                .await
                .map(|r| r.into_inner().considered_count)
        }
    };
    let empty = eventually(Duration::from_secs(10), indexed).await;
    assert_eq!(empty, 0, "the index loaded an empty catalogue");

    // A first import streams its events; Redis dies with SIGKILL once matching is taking them.
    let mut names = import(&mut registry_client, "before", 300).await;
    eventually(Duration::from_secs(10), || async {
        match metrics.counter(HANDLED_METRIC, INDEX_GROUP) {
            0 => Err("matching has taken no event yet"),
            _ => Ok(()),
        }
    })
    .await;
    redis.kill().await;
    let at_the_kill = metrics.counter(HANDLED_METRIC, INDEX_GROUP);

    // While it is down, writes still commit: their events wait in the registry's outbox.
    names.extend(import(&mut registry_client, "during", 100).await);
    redis.start().await;

    let distinct: std::collections::HashSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), names.len(), "the imports made {} people", names.len());
    let want = names.len() as u64;
    eventually(Duration::from_secs(30), || async {
        let count = indexed().await.map_err(|s| format!("match: {s:?}"))?;
        let handled = metrics.counter(HANDLED_METRIC, INDEX_GROUP);
        if count as u64 == want && handled == want {
            Ok(())
        } else {
            Err(format!(
                "{count} indexed and {handled} events handled of {want} (at the kill: {at_the_kill})"
            ))
        }
    })
    .await;
    // The index is keyed by influencer: as many entries as people imported is each of them
    // once, nothing lost.
    // Nothing applied twice: one handled event per influencer, and redeliveries (an entry
    // published again after a failed publish, or an acknowledgement lost with the server)
    // were acknowledged without running the handler.
    assert_eq!(metrics.counter(HANDLED_METRIC, INDEX_GROUP), want);
    eprintln!(
        "handled {want} events, {at_the_kill} of them before the kill; {} duplicate deliveries absorbed",
        metrics.counter(HANDLED_METRIC, INDEX_DUPLICATES)
    );

    matching.shutdown().await.unwrap();
    registry.shutdown().await.unwrap();
}
