//! The events the registry emits, all on one topic so their order holds: an influencer
//! upserted (created, updated or imported), metrics recorded, an influencer deleted, which
//! tells every other service to forget the person, and vetting: a report that changed, a
//! verdict that changed, an account flagged (fake followers, engagement pod).

use chorus_kit::events::envelope;
use chorus_proto::event::Envelope;
use chorus_proto::registry::{
    AccountFlagged, AccountMetrics, Influencer, InfluencerDeleted, InfluencerUpserted, MetricsRecorded, Verdict,
    VerdictChanged, VettingReport, VettingReported,
};

pub const TOPIC: &str = "chorus.registry";
pub const SOURCE: &str = "registry";
pub const INFLUENCER_UPSERTED: &str = "registry.influencer.upserted";
pub const METRICS_RECORDED: &str = "registry.metrics.recorded";
pub const INFLUENCER_DELETED: &str = "registry.influencer.deleted";
pub const VETTING_REPORTED: &str = "registry.vetting.reported";
pub const VERDICT_CHANGED: &str = "registry.vetting.verdict_changed";
pub const ACCOUNT_FLAGGED: &str = "registry.account.flagged";

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

/// A snapshot recorded, with what the registry derives from it (engagement, tier).
pub fn metrics_recorded(influencer_id: &str, metrics: AccountMetrics) -> Envelope {
    envelope(
        METRICS_RECORDED,
        SOURCE,
        "",
        &MetricsRecorded {
            influencer: format!("influencers/{influencer_id}"),
            snapshot: metrics.latest.clone(),
            metrics: Some(metrics),
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

pub fn vetting_reported(influencer_id: &str, report: &VettingReport) -> Envelope {
    envelope(
        VETTING_REPORTED,
        SOURCE,
        "",
        &VettingReported {
            influencer: format!("influencers/{influencer_id}"),
            report: Some(report.clone()),
        },
    )
}

pub fn verdict_changed(influencer_id: &str, previous: Verdict, report: &VettingReport) -> Envelope {
    envelope(
        VERDICT_CHANGED,
        SOURCE,
        "",
        &VerdictChanged {
            influencer: format!("influencers/{influencer_id}"),
            platform: report.platform,
            handle: report.handle.clone(),
            previous: previous as i32,
            current: report.verdict,
            quality_score: report.quality_score,
            report: report.name.clone(),
        },
    )
}

pub fn account_flagged(influencer_id: &str, report: &VettingReport) -> Envelope {
    envelope(
        ACCOUNT_FLAGGED,
        SOURCE,
        "",
        &AccountFlagged {
            influencer: format!("influencers/{influencer_id}"),
            platform: report.platform,
            handle: report.handle.clone(),
            flags: report.flags.clone(),
            report: report.name.clone(),
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
        VETTING_REPORTED => {
            chorus_kit::events::payload::<VettingReported>(envelope)
                .ok()?
                .influencer
        }
        VERDICT_CHANGED => chorus_kit::events::payload::<VerdictChanged>(envelope).ok()?.influencer,
        ACCOUNT_FLAGGED => chorus_kit::events::payload::<AccountFlagged>(envelope).ok()?.influencer,
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
            influencer_id(&metrics_recorded("abc", AccountMetrics::default())).as_deref(),
            Some("abc")
        );
        assert_eq!(influencer_id(&deleted("abc")).as_deref(), Some("abc"));
        let report = VettingReport::default();
        assert_eq!(influencer_id(&vetting_reported("abc", &report)).as_deref(), Some("abc"));
        assert_eq!(
            influencer_id(&verdict_changed("abc", Verdict::Ok, &report)).as_deref(),
            Some("abc")
        );
        assert_eq!(influencer_id(&account_flagged("abc", &report)).as_deref(), Some("abc"));
    }
}
