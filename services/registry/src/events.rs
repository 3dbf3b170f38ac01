//! The events the registry emits, all on one topic so their order holds: an influencer
//! upserted (created, updated or imported), metrics recorded, and an influencer deleted, which
//! tells every other service to forget the person.

use chorus_kit::events::envelope;
use chorus_proto::event::Envelope;
use chorus_proto::registry::{Influencer, InfluencerDeleted, InfluencerUpserted, MetricsRecorded, MetricsSnapshot};

pub const TOPIC: &str = "chorus.registry";
pub const SOURCE: &str = "registry";
pub const INFLUENCER_UPSERTED: &str = "registry.influencer.upserted";
pub const METRICS_RECORDED: &str = "registry.metrics.recorded";
pub const INFLUENCER_DELETED: &str = "registry.influencer.deleted";

pub fn upserted(influencer: &Influencer) -> Envelope {
    envelope(
        INFLUENCER_UPSERTED,
        SOURCE,
        "",
        &InfluencerUpserted {
            influencer: Some(influencer.clone()),
        },
    )
}

pub fn metrics_recorded(influencer_id: &str, snapshot: &MetricsSnapshot) -> Envelope {
    envelope(
        METRICS_RECORDED,
        SOURCE,
        "",
        &MetricsRecorded {
            influencer: format!("influencers/{influencer_id}"),
            snapshot: Some(snapshot.clone()),
        },
    )
}

pub fn deleted(influencer_id: &str) -> Envelope {
    envelope(
        INFLUENCER_DELETED,
        SOURCE,
        "",
        &InfluencerDeleted {
            influencer: format!("influencers/{influencer_id}"),
        },
    )
}
