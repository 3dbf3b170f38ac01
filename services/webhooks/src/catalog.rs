//! The event types a partner may subscribe to, and the JSON body of a delivery, both read from
//! the descriptor set, so a new event in a service's `events.proto` is subscribable and
//! rendered without a line here.
//!
//! An event type is a message of a `chorus/<service>/v1/events.proto` on a topic webhooks
//! consumes ([`TOPICS`]) whose comment begins "Event type ": the services' convention for their
//! published events (internal ones say "Internal event type"). The registry's topic is not
//! among them: its events are the shared catalogue's and carry no tenant, so no tenant's
//! endpoint would ever receive them.

use std::collections::BTreeSet;

use chorus_kit::{Error, ErrorCode};
use chorus_proto::event::Envelope;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

/// The topics whose events are delivered: every service that emits a tenant's events.
pub const TOPICS: &[&str] = &[
    "chorus.matching",
    "chorus.contracts",
    "chorus.payouts",
    "chorus.measurement",
];

/// The descriptor pool and the subscribable types.
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: DescriptorPool,
    types: BTreeSet<String>,
}

impl Catalog {
    /// Reads the descriptor set compiled into `chorus-proto`.
    pub fn load() -> Result<Catalog, Error> {
        let pool = DescriptorPool::decode(chorus_proto::FILE_DESCRIPTOR_SET)
            .map_err(|e| Error::new(ErrorCode::Internal, format!("the descriptor set: {e}")))?;
        let mut types = BTreeSet::new();
        for file in pool.files() {
            let package = file.package_name();
            let on_a_topic = TOPICS
                .iter()
                .any(|t| package.strip_prefix(*t).is_some_and(|rest| rest.starts_with('.')));
            if !on_a_topic || !file.name().ends_with("/events.proto") {
                continue;
            }
            let Some(info) = &file.file_descriptor_proto().source_code_info else {
                continue;
            };
            for message in file.messages() {
                let published = info
                    .location
                    .iter()
                    .find(|l| l.path == message.path())
                    .is_some_and(|l| l.leading_comments().trim_start().starts_with("Event type "));
                if published {
                    types.insert(message.full_name().to_owned());
                }
            }
        }
        Ok(Catalog { pool, types })
    }

    /// Every subscribable type, sorted.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.types.iter().map(String::as_str)
    }

    pub fn knows(&self, event_type: &str) -> bool {
        self.types.contains(event_type)
    }

    /// The delivery's body, as Standard Webhooks suggests: `{"type", "timestamp", "data"}`,
    /// `data` the payload in the proto3 JSON mapping (what the gateway answers for the same
    /// messages), `timestamp` the event's time in RFC 3339.
    pub fn body(&self, event_type: &str, envelope: &Envelope) -> Result<Vec<u8>, Error> {
        let bad = |what: String| Error::new(ErrorCode::Internal, what);
        let any = envelope
            .payload
            .as_ref()
            .ok_or_else(|| bad("an event without a payload".into()))?;
        let descriptor = self
            .pool
            .get_message_by_name(event_type)
            .ok_or_else(|| bad(format!("no descriptor for {event_type}")))?;
        let message = DynamicMessage::decode(descriptor, any.value.as_slice())
            .map_err(|e| bad(format!("{event_type} does not decode: {e}")))?;
        let data = message
            .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
            .map_err(|e| bad(format!("JSON of {event_type}: {e}")))?;
        let timestamp = envelope.occur_time.map(|t| t.to_string()).unwrap_or_default();
        let body = serde_json::json!({
            "type": event_type,
            "timestamp": timestamp,
            "data": data,
        });
        serde_json::to_vec(&body).map_err(|e| bad(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_events_of_tenants_are_subscribable_and_internal_ones_are_not() {
        let c = Catalog::load().unwrap();
        for t in [
            "chorus.contracts.v1.ContractSigned",
            "chorus.matching.v1.CampaignChanged",
            "chorus.payouts.v1.PayoutPaid",
            "chorus.measurement.v1.ReportReady",
        ] {
            assert!(c.knows(t), "{t}");
        }
        for t in [
            "chorus.contracts.v1.TimerFired",
            "chorus.measurement.v1.KeyRotationDue",
            "chorus.registry.v1.InfluencerUpserted",
            "chorus.contracts.v1.Offer",
            "chorus.webhooks.v1.WebhookEndpoint",
        ] {
            assert!(!c.knows(t), "{t}");
        }
    }
}
