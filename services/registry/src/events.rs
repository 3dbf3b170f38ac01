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

/// The influencer id an event is about, whatever its type.
pub fn influencer_id(envelope: &Envelope) -> Option<String> {
    let name = match envelope.r#type.as_str() {
        INFLUENCER_UPSERTED => {
            chorus_kit::events::payload::<InfluencerUpserted>(envelope)
                .ok()?
                .influencer?
                .name
        }
        METRICS_RECORDED => {
            chorus_kit::events::payload::<MetricsRecorded>(envelope)
                .ok()?
                .influencer
        }
        INFLUENCER_DELETED => {
            chorus_kit::events::payload::<InfluencerDeleted>(envelope)
                .ok()?
                .influencer
        }
        _ => return None,
    };
    name.strip_prefix("influencers/").map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_names_its_influencer() {
        let inf = Influencer {
            name: "influencers/abc".into(),
            ..Default::default()
        };
        assert_eq!(influencer_id(&upserted(&inf)).as_deref(), Some("abc"));
        assert_eq!(
            influencer_id(&metrics_recorded("abc", &MetricsSnapshot::default())).as_deref(),
            Some("abc")
        );
        assert_eq!(influencer_id(&deleted("abc")).as_deref(), Some("abc"));
    }
}
