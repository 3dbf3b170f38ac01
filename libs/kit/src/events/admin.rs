//! The EventAdminService every service serves on its own port: its dead letters, listed oldest
//! first, and replayed through the handler of the consumer that gave up on them. Needs the scope
//! `admin.events`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chorus_proto::admin::event_admin_service_server::EventAdminService;
use chorus_proto::admin::{
    DeadLetter as DeadLetterProto, ListDeadLettersRequest, ListDeadLettersResponse, ReplayDeadLettersRequest,
    ReplayDeadLettersResponse,
};
use chorus_proto::event::Envelope;
use futures::future::BoxFuture;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::HandlerResult;
use super::dead_letters::{DeadLetter, DeadLetters};
use crate::auth::Caller;
use crate::clock::timestamp;
use crate::error::{Error, ErrorCode};
use crate::paging;

/// The scope every method needs.
pub const SCOPE: &str = "admin.events";

/// Ids one replay may name.
pub const MAX_REPLAY_IDS: usize = 1000;

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// A consumer's handler, type-erased.
pub type Handler = Box<dyn FnMut(Envelope) -> BoxFuture<'static, HandlerResult> + Send>;

/// A handler shared by its consumer and by replays.
pub type SharedHandler = Arc<Mutex<Handler>>;

/// Runs `handler` on `envelope`. The lock is held only to start the call, so a slow event
/// does not hold up a replay or the other way round.
pub async fn run(handler: &SharedHandler, envelope: Envelope) -> HandlerResult {
    let call = match handler.lock() {
        Ok(mut h) => h(envelope),
        Err(_) => return Err(Error::new(ErrorCode::Internal, "event handler lock poisoned")),
    };
    call.await
}

/// The EventAdminService of one service: its dead letters and its consumers' handlers.
#[derive(Clone)]
pub struct EventAdmin {
    dead_letters: DeadLetters,
    handlers: Arc<HashMap<(String, String), SharedHandler>>,
}

impl std::fmt::Debug for EventAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventAdmin")
            .field("consumers", &self.handlers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl EventAdmin {
    /// `handlers` by (topic, group), as the runtime registered them.
    pub fn new(dead_letters: DeadLetters, handlers: HashMap<(String, String), SharedHandler>) -> Self {
        EventAdmin {
            dead_letters,
            handlers: Arc::new(handlers),
        }
    }

    /// Runs the handler of `dead`'s (topic, group) on it again: removed when it succeeds, kept
    /// with the new error and one more attempt when it fails (the failed one is returned).
    pub async fn replay(&self, dead: &DeadLetter) -> Result<Option<DeadLetter>, Error> {
        let handled = match self.handlers.get(&(dead.topic.clone(), dead.group.clone())) {
            Some(handler) => {
                let span = crate::telemetry::process_span(&dead.topic, &dead.group, &dead.envelope);
                run(handler, dead.envelope.clone()).instrument(span).await
            }
            // Not an attempt: the letter stays as it was, its error too.
            None => {
                return Ok(Some(DeadLetter {
                    error: format!(
                        "not replayed: this service has no consumer of {} in group {} any more",
                        dead.topic, dead.group
                    ),
                    ..dead.clone()
                }));
            }
        };
        match handled {
            Ok(()) => {
                self.dead_letters.remove(dead.id).await?;
                super::count(&dead.topic, &dead.group, "replayed");
                tracing::info!(topic = %dead.topic, group = %dead.group, event_id = %dead.event_id, "dead letter replayed");
                Ok(None)
            }
            Err(e) => {
                super::count(&dead.topic, &dead.group, "replay_failed");
                tracing::warn!(topic = %dead.topic, group = %dead.group, event_id = %dead.event_id, error = %e.detail(), "dead letter failed again");
                self.dead_letters.failed_again(dead.id, &e.detail()).await
            }
        }
    }

    /// [`EventAdmin::replay`], where an error storing the outcome fails this letter only: the
    /// batch goes on, and the reply says what happened to each.
    async fn replay_one(&self, dead: &DeadLetter) -> Option<DeadLetter> {
        match self.replay(dead).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(id = dead.id, error = %e.detail(), "could not settle a replayed dead letter");
                Some(DeadLetter {
                    error: format!("replayed, but its outcome could not be stored: {}", e.detail()),
                    ..dead.clone()
                })
            }
        }
    }

    /// Replays every dead letter of this service, oldest first; those that failed again.
    async fn replay_all(&self) -> Result<(usize, Vec<DeadLetter>), Error> {
        let (mut replayed, mut failed, mut after) = (0, Vec::new(), 0);
        loop {
            let page = self.dead_letters.list(after, MAX_PAGE).await?;
            let Some(last) = page.last() else {
                return Ok((replayed, failed));
            };
            after = last.id;
            for dead in &page {
                match self.replay_one(dead).await {
                    None => replayed += 1,
                    Some(again) => failed.push(again),
                }
            }
        }
    }

    /// Replays the dead letters `ids`, all of which must exist.
    async fn replay_ids(&self, ids: &[i64]) -> Result<(usize, Vec<DeadLetter>), Error> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let found = self.dead_letters.get(&ids).await?;
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !found.iter().any(|d| d.id == **id))
            .map(i64::to_string)
            .collect();
        if !missing.is_empty() {
            return Err(
                Error::not_found(format!("dead letters {}", missing.join(", "))).with_reason("DEAD_LETTER_NOT_FOUND")
            );
        }
        let (mut replayed, mut failed) = (0, Vec::new());
        for dead in &found {
            match self.replay_one(dead).await {
                None => replayed += 1,
                Some(again) => failed.push(again),
            }
        }
        Ok((replayed, failed))
    }
}

fn to_proto(d: DeadLetter) -> DeadLetterProto {
    DeadLetterProto {
        id: d.id,
        topic: d.topic,
        group: d.group,
        event_id: d.event_id,
        event_type: d.event_type,
        attempts: i32::try_from(d.attempts).unwrap_or(i32::MAX),
        error: d.error,
        dead_time: Some(timestamp(d.dead_at)),
    }
}

/// Page tokens of ListDeadLetters belong to this query: it has no filters.
const LIST_QUERY: u64 = 0x0dead;

#[tonic::async_trait]
impl EventAdminService for EventAdmin {
    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        Caller::of(&request)?.require(SCOPE)?;
        let request = request.into_inner();
        let size = paging::page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let after: i64 = paging::decode(&request.page_token, LIST_QUERY)?.unwrap_or(0);
        let mut page = self.dead_letters.list(after, size + 1).await?;
        let next_page_token = if page.len() > size {
            page.truncate(size);
            page.last()
                .map(|d| paging::encode(LIST_QUERY, &d.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListDeadLettersResponse {
            dead_letters: page.into_iter().map(to_proto).collect(),
            next_page_token,
        }))
    }

    async fn replay_dead_letters(
        &self,
        request: Request<ReplayDeadLettersRequest>,
    ) -> Result<Response<ReplayDeadLettersResponse>, Status> {
        Caller::of(&request)?.require(SCOPE)?;
        let ids = request.into_inner().ids;
        if ids.len() > MAX_REPLAY_IDS {
            return Err(Error::invalid_field(
                "ids",
                format!("at most {MAX_REPLAY_IDS} ids per call, got {}", ids.len()),
            )
            .into());
        }
        let (replayed, failed) = if ids.is_empty() {
            self.replay_all().await?
        } else {
            self.replay_ids(&ids).await?
        };
        Ok(Response::new(ReplayDeadLettersResponse {
            replayed_count: i32::try_from(replayed).unwrap_or(i32::MAX),
            failed: failed.into_iter().map(to_proto).collect(),
        }))
    }
}
