//! Valid terms, a document and its signatures, for the domain's unit tests.

use chorus_kit::names::{CampaignName, InfluencerName};
use chorus_proto::contracts as pb;
use chorus_proto::types as pbt;

use super::document::{Brand, TermsDocument};
use super::seal::{AuditEntry, Party};
use super::terms::Terms;

pub(crate) const CONTRACT_ID: &str = "0193a5b2-7c1d-7e4f-8a9b-0c1d2e3f4a5b";
pub(crate) const CAMPAIGN_ID: &str = "0193a5b2-0000-7000-8000-00000000c0de";
pub(crate) const INFLUENCER_ID: &str = "0193a5b2-1111-7111-8111-111111111111";
/// 2026-04-01T17:00:00Z.
pub(crate) const APRIL_1: i64 = 1_775_062_800;

pub(crate) fn usd(minor: i64) -> Option<pbt::Money> {
    Some(pbt::Money {
        currency_code: "USD".into(),
        amount_minor: minor,
    })
}

pub(crate) fn at(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// Terms using every part: two entries, cash, a gift card, a product, usage rights,
/// exclusivity, reporting.
pub(crate) fn terms() -> pb::Terms {
    pb::Terms {
        deliverables: vec![
            pb::DeliverableTerm {
                kind: pbt::DeliverableKind::FeedPost as i32,
                platform: pbt::Platform::Instagram as i32,
                count: 2,
                due_time: at(APRIL_1),
                brief: "Show the bottle on a morning run".into(),
            },
            pb::DeliverableTerm {
                kind: pbt::DeliverableKind::Story as i32,
                platform: pbt::Platform::Tiktok as i32,
                count: 1,
                due_time: at(APRIL_1 + 7 * 86_400),
                brief: String::new(),
            },
        ],
        compensation: Some(pb::Compensation {
            cash: usd(25_000),
            gift_cards: vec![pb::GiftCard {
                value: usd(5_000),
                brand: "Amazon".into(),
            }],
            products: vec![pb::Product {
                sku: "VOL-BTL-750".into(),
                title: "Voltra bottle, 750 ml".into(),
                declared_value: usd(3_999),
                quantity: 2,
            }],
        }),
        usage_rights: Some(pb::UsageRights {
            channels: vec![
                pb::UsageChannel::OrganicSocial as i32,
                pb::UsageChannel::PaidSocial as i32,
            ],
            days: 90,
            paid_amplification: true,
        }),
        exclusivity: Some(pb::Exclusivity {
            category: "fitness".into(),
            days: 30,
        }),
        disclosure_jurisdiction: "US".into(),
        disclosure_language: "en".into(),
        content_review: true,
        reporting: Some(pb::ReportingDuty {
            metrics: vec!["reach".into(), "engagements".into()],
            due_days_after_post: 7,
        }),
        grace_days: 3,
        notes: "Tag @voltra in the first line.".into(),
    }
}

pub(crate) fn document() -> TermsDocument {
    TermsDocument::new(
        format!("contracts/{CONTRACT_ID}"),
        2,
        &CampaignName::from_id(CAMPAIGN_ID).unwrap(),
        Brand {
            tenant: "voltra".into(),
            display_name: "Voltra Drinks".into(),
        },
        &InfluencerName::from_id(INFLUENCER_ID).unwrap(),
        Terms::parse(&terms(), "terms").unwrap(),
    )
}

/// Both parties' signatures of `document`.
pub(crate) fn audit(document: &TermsDocument) -> Vec<AuditEntry> {
    let sha = document.sha256_hex().unwrap();
    vec![
        AuditEntry {
            party: Party::Brand,
            signer: "users/ana@voltra.example".into(),
            sign_micros: (APRIL_1 - 20 * 86_400) * 1_000_000 + 123_456,
            ip_address: "203.0.113.7".into(),
            user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4)".into(),
            terms_version: document.terms_version,
            terms_sha256: sha.clone(),
        },
        AuditEntry {
            party: Party::Influencer,
            signer: document.influencer.clone(),
            sign_micros: (APRIL_1 - 19 * 86_400) * 1_000_000,
            ip_address: "198.51.100.23".into(),
            user_agent: "Chorus/1.4 (iPhone; iOS 18.2)".into(),
            terms_version: document.terms_version,
            terms_sha256: sha,
        },
    ]
}
