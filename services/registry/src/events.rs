//! The events the registry emits, all on one topic so their order holds: an influencer
//! upserted (created, updated or imported), metrics recorded, an influencer deleted, which
//! tells every other service to forget the person, and vetting: a report that changed, a
//! verdict that changed, an account flagged (fake followers, engagement pod).

use chorus_kit::clock::Clock;
use chorus_kit::events::{envelope, read};
use chorus_proto::event::Envelope;
use chorus_proto::registry::{
    AccountFlagged, AccountMetrics, Influencer, InfluencerDeleted, InfluencerUpserted, MetricsRecorded, Verdict,
    VerdictChanged, VettingReport, VettingReported,
};

/// The registry's topic: `chorus_kit::events::topic_of` any of its events.
pub const TOPIC: &str = "chorus.registry";

/// The profile as stored, without its contact details: PII stays out of event payloads
/// (consumers that need it read the registry with `registry.contacts`).
pub fn upserted(clock: &Clock, influencer: &Influencer) -> Envelope {
    envelope(
        clock,
        "",
        &InfluencerUpserted {
            influencer: Some(Influencer {
                contact: None,
                ..influencer.clone()
            }),
        },
    )
}

/// A snapshot recorded, with what the registry derives from it (engagement, tier).
pub fn metrics_recorded(clock: &Clock, influencer_id: &str, metrics: AccountMetrics) -> Envelope {
    envelope(
        clock,
        "",
        &MetricsRecorded {
            influencer: format!("influencers/{influencer_id}"),
            snapshot: metrics.latest.clone(),
            metrics: Some(metrics),
        },
    )
}

pub fn deleted(clock: &Clock, influencer_id: &str) -> Envelope {
    envelope(
        clock,
        "",
        &InfluencerDeleted {
            influencer: format!("influencers/{influencer_id}"),
        },
    )
}

pub fn vetting_reported(clock: &Clock, influencer_id: &str, report: &VettingReport) -> Envelope {
    envelope(
        clock,
        "",
        &VettingReported {
            influencer: format!("influencers/{influencer_id}"),
            report: Some(report.clone()),
        },
    )
}

pub fn verdict_changed(clock: &Clock, influencer_id: &str, previous: Verdict, report: &VettingReport) -> Envelope {
    envelope(
        clock,
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

pub fn account_flagged(clock: &Clock, influencer_id: &str, report: &VettingReport) -> Envelope {
    envelope(
        clock,
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
    let name = if let Some(p) = read::<InfluencerUpserted>(envelope) {
        p.ok()?.influencer?.name
    } else if let Some(p) = read::<MetricsRecorded>(envelope) {
        p.ok()?.influencer
    } else if let Some(p) = read::<InfluencerDeleted>(envelope) {
        p.ok()?.influencer
    } else if let Some(p) = read::<VettingReported>(envelope) {
        p.ok()?.influencer
    } else if let Some(p) = read::<VerdictChanged>(envelope) {
        p.ok()?.influencer
    } else if let Some(p) = read::<AccountFlagged>(envelope) {
        p.ok()?.influencer
    } else {
        return None;
    };
    name.strip_prefix("influencers/").map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_names_its_influencer() {
        let clock = &Clock::system();
        let inf = Influencer {
            name: "influencers/abc".into(),
            ..Default::default()
        };
        assert_eq!(influencer_id(&upserted(clock, &inf)).as_deref(), Some("abc"));
        assert_eq!(
            influencer_id(&metrics_recorded(clock, "abc", AccountMetrics::default())).as_deref(),
            Some("abc")
        );
        assert_eq!(influencer_id(&deleted(clock, "abc")).as_deref(), Some("abc"));
        let report = VettingReport::default();
        assert_eq!(
            influencer_id(&vetting_reported(clock, "abc", &report)).as_deref(),
            Some("abc")
        );
        assert_eq!(
            influencer_id(&verdict_changed(clock, "abc", Verdict::Ok, &report)).as_deref(),
            Some("abc")
        );
        assert_eq!(
            influencer_id(&account_flagged(clock, "abc", &report)).as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn an_upserted_event_carries_no_contact_details() {
        let inf = Influencer {
            name: "influencers/abc".into(),
            display_name: "Maya".into(),
            contact: Some(chorus_proto::registry::Contact {
                email: "maya@example.com".into(),
                phone: "+1 512 555 0100".into(),
            }),
            ..Default::default()
        };
        let event = upserted(&Clock::system(), &inf);
        let payload = read::<InfluencerUpserted>(&event).unwrap().unwrap().influencer.unwrap();
        assert_eq!(payload.display_name, "Maya");
        assert_eq!(payload.contact, None);
    }

    #[test]
    fn events_travel_on_the_registry_topic_typed_by_their_message() {
        assert_eq!(TOPIC, chorus_kit::events::topic_of::<InfluencerUpserted>());
        let e = deleted(&Clock::system(), "abc");
        assert_eq!(e.r#type, "chorus.registry.v1.InfluencerDeleted");
        assert_eq!(e.source, "registry");
    }

    #[test]
    fn a_first_release_event_still_names_its_influencer() {
        let mut e = deleted(&Clock::system(), "abc");
        e.r#type = "registry.influencer.deleted".into();
        assert_eq!(influencer_id(&e).as_deref(), Some("abc"));
    }
}
