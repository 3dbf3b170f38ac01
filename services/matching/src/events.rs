//! What matching consumes: the registry's events keep the match index current, and a
//! streaming read of the registry (ExportInfluencers) fills it at start-up; contracts'
//! ExclusivityStarted leaves people under an exclusive contract out of matches.
//!
//! Order of start-up: join a consumer group of this replica's own first (so nothing published
//! from then on is missed), then read the catalogue page by page while events already apply.
//! The two overlap; the index keeps whichever copy is newer (see `domain::index`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chorus_kit::Error;
use chorus_kit::events::{SubscribeOptions, read};
use chorus_kit::runtime::Parts;
use chorus_proto::contracts::ExclusivityStarted;
use chorus_proto::event::Envelope;
use chorus_proto::registry::registry_service_client::RegistryServiceClient;
use chorus_proto::registry::{
    ExportInfluencersRequest, InfluencerDeleted, InfluencerUpserted, MetricsRecorded, VettingReported,
};

use crate::api::SharedIndex;
use crate::domain::index::parse_id;
use crate::store::Store;

/// The registry's topic (the registry's contract, see proto/chorus/registry/v1/events.proto).
pub const REGISTRY_TOPIC: &str = "chorus.registry";

/// Applies one registry event to the index; returns the id of a deleted influencer, whose
/// other traces the caller then erases. Events of other types are not matching's concern.
pub fn apply(shared: &SharedIndex, event: &Envelope) -> Result<Option<String>, Error> {
    let mut index = shared
        .index
        .write()
        .map_err(|_| Error::new(chorus_kit::ErrorCode::Internal, "index lock poisoned"))?;
    if let Some(p) = read::<InfluencerUpserted>(event) {
        if let Some(i) = p?.influencer {
            index.upsert(&i);
        }
    } else if let Some(p) = read::<MetricsRecorded>(event) {
        let p = p?;
        if let (Some(m), Some(s)) = (&p.metrics, &p.snapshot) {
            index.metrics(&p.influencer, s.platform, &s.handle, m);
        }
    } else if let Some(p) = read::<VettingReported>(event) {
        let p = p?;
        if let Some(r) = &p.report {
            index.vetting(&p.influencer, r);
        }
    } else if let Some(p) = read::<InfluencerDeleted>(event) {
        let p = p?;
        index.delete(&p.influencer);
        return Ok(p.influencer.strip_prefix("influencers/").map(str::to_owned));
    }
    Ok(None)
}

/// Gets a bearer token.
pub type Mint = Arc<dyn Fn() -> futures::future::BoxFuture<'static, Result<String, Error>> + Send + Sync>;

/// Where the start-up read comes from.
#[derive(Clone)]
pub struct RegistrySource {
    pub url: String,
    /// A fresh `registry.read` token for each attempt, so retries never run on an expired one.
    pub token: Mint,
}

impl std::fmt::Debug for RegistrySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySource")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RegistrySource {
    async fn token(&self) -> Result<String, Error> {
        (self.token)().await
    }
}

/// Declares the index feed: a consumer group of this replica's own on the registry's topic
/// (joined by the runtime before any task starts, so nothing published from then on is
/// missed), and a task that reads the catalogue into the index and marks it loaded.
pub fn feed(parts: &mut Parts, shared: Arc<SharedIndex>, store: Store, source: RegistrySource) {
    let options = SubscribeOptions {
        start_at_end: true,
        delete_group_on_exit: true,
        ..Default::default()
    };
    let (for_events, for_events_store) = (shared.clone(), store.clone());
    parts.consume(
        REGISTRY_TOPIC,
        chorus_kit::events::process_group("matching-index"),
        options,
        move |event| {
            let applied = apply(&for_events, &event);
            let store = for_events_store.clone();
            async move {
                if let Some(id) = applied? {
                    store.forget(&id).await?;
                }
                Ok(())
            }
        },
    );
    parts.task("match index load", move |stop| async move {
        tokio::select! {
            loaded = load(&shared, &source, &store) => loaded,
            () = stop.cancelled() => Ok(()),
        }
    });
}

/// Reads the exclusivities in force and the whole catalogue into the index, retrying until
/// the database and the registry answer.
async fn load(shared: &SharedIndex, source: &RegistrySource, store: &Store) -> Result<(), Error> {
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let read = async {
            let exclusivities = store.exclusivities(store.now_micros()).await?;
            {
                let mut index = shared.index.write().map_err(|_| poisoned())?;
                for (id, category, end) in exclusivities {
                    index.set_exclusive(id, &category, end);
                }
            }
            let n = read_all(shared, source).await?;
            shared.index.write().map_err(|_| poisoned())?.finish_loading();
            forget_the_deleted(shared, store).await?;
            Ok::<_, Error>(n)
        };
        match read.await {
            Ok(n) => {
                shared.loaded.store(true, Ordering::Release);
                shared.on_loaded.notify_waiters();
                tracing::info!(
                    influencers = n,
                    seconds = started.elapsed().as_secs_f64(),
                    "match index loaded"
                );
                return Ok(());
            }
            Err(e) => {
                let wait = Duration::from_millis(200 * u64::from(attempt.min(25)));
                tracing::warn!(error = %e, attempt, "loading the index failed, retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Erases what this service keeps about people the registry no longer has: a deletion
/// published while this replica was down reached no group of its own (groups start at the
/// end), but the catalogue it just read tells.
async fn forget_the_deleted(shared: &SharedIndex, store: &Store) -> Result<(), Error> {
    let remembered = store.remembered_ids().await?;
    let gone: Vec<String> = {
        let index = shared.index.read().map_err(|_| poisoned())?;
        remembered
            .into_iter()
            .filter(|id| parse_id(id).is_some_and(|n| index.get(n).is_none()))
            .collect()
    };
    for id in &gone {
        store.forget(id).await?;
    }
    if !gone.is_empty() {
        tracing::info!(
            forgotten = gone.len(),
            "erased people deleted from the registry while matching was down"
        );
    }
    Ok(())
}

/// The hook for contracts: `influencer_id` is under an exclusive contract in `category`
/// until `end_micros`, from now on left out of matches whose brief excludes that category.
/// Stored (a restart loads it again) and applied to the running index at once; called for the
/// contracts service's ExclusivityStarted ([`exclusivity_feed`]).
pub async fn exclusivity_started(
    shared: &SharedIndex,
    store: &Store,
    influencer_id: &str,
    category: &str,
    end_micros: i64,
) -> Result<(), Error> {
    let id = parse_id(influencer_id).ok_or_else(|| Error::invalid_field("influencer", "not an influencer id"))?;
    store.add_exclusivity(influencer_id, category, end_micros).await?;
    shared
        .index
        .write()
        .map_err(|_| poisoned())?
        .set_exclusive(id, category, end_micros);
    Ok(())
}

/// Contracts' topic (proto/chorus/contracts/v1/events.proto).
pub const CONTRACTS_TOPIC: &str = "chorus.contracts";

/// Hears contracts' ExclusivityStarted twice over: in the service's durable group, so an event
/// published while no replica runs is stored when one comes back, and in a group of this
/// replica's own, so every replica's index applies it at once. Both store it (the same row,
/// harmlessly) and apply it to the replica's index.
pub fn exclusivity_feed(parts: &mut Parts, shared: Arc<SharedIndex>, store: Store) {
    let own = SubscribeOptions {
        start_at_end: true,
        delete_group_on_exit: true,
        ..Default::default()
    };
    for (group, options) in [
        ("matching".to_owned(), SubscribeOptions::default()),
        (chorus_kit::events::process_group("matching-exclusivity"), own),
    ] {
        let (shared, store) = (shared.clone(), store.clone());
        parts.consume(CONTRACTS_TOPIC, group, options, move |event| {
            let (shared, store) = (shared.clone(), store.clone());
            async move {
                let Some(p) = read::<ExclusivityStarted>(&event) else {
                    return Ok(());
                };
                let p = p?;
                let end = p.end_time.as_ref().map_or(0, chorus_kit::clock::micros);
                let id = p.influencer.trim_start_matches("influencers/");
                exclusivity_started(&shared, &store, id, &p.category, end).await
            }
        });
    }
}

fn poisoned() -> Error {
    Error::new(chorus_kit::ErrorCode::Internal, "index lock poisoned")
}

/// One whole read of the catalogue into the index; how many influencers it held.
pub async fn read_all(shared: &SharedIndex, source: &RegistrySource) -> Result<u64, Error> {
    let channel = tonic::transport::Endpoint::from_shared(source.url.clone())
        .map_err(|e| Error::invalid_field("CHORUS_REGISTRY_URL", e.to_string()))?
        .connect()
        .await
        .map_err(|e| {
            Error::new(
                chorus_kit::ErrorCode::Unavailable,
                format!("connect to the registry: {e}"),
            )
        })?;
    let header: tonic::metadata::MetadataValue<_> = format!("Bearer {}", source.token().await?)
        .parse()
        .map_err(|_| Error::invalid_field("token", "not a valid header value"))?;
    let mut client = RegistryServiceClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("authorization", header.clone());
        Ok(r)
    })
    .max_decoding_message_size(64 << 20);
    let mut stream = client
        .export_influencers(ExportInfluencersRequest { page_size: 1_000 })
        .await
        .map_err(|s| Error::new(chorus_kit::ErrorCode::Unavailable, format!("export: {}", s.message())))?
        .into_inner();
    let mut n = 0u64;
    while let Some(page) = stream
        .message()
        .await
        .map_err(|s| Error::new(chorus_kit::ErrorCode::Unavailable, format!("export: {}", s.message())))?
    {
        let mut index = shared
            .index
            .write()
            .map_err(|_| Error::new(chorus_kit::ErrorCode::Internal, "index lock poisoned"))?;
        for i in &page.influencers {
            index.upsert(i);
        }
        n += page.influencers.len() as u64;
    }
    Ok(n)
}
