//! A brand's decisions on a shortlist's members: each decision must name a member, a
//! campaign that is completed or cancelled takes none, and only a member whose decision
//! changes is recorded (with its rejection and its event). The store runs the SQL.

use std::collections::HashMap;

use chorus_proto::matching::{CampaignStatus, Decision, MemberDecision, ShortlistMember};

use crate::error::MatchingError;

/// Whether a status is final: a completed or cancelled campaign changes no more.
pub fn is_final(status: i32) -> bool {
    status == CampaignStatus::Cancelled as i32 || status == CampaignStatus::Completed as i32
}

/// Refuses shortlist changes for a campaign whose status is final.
pub fn ensure_open(status: i32) -> Result<(), MatchingError> {
    if is_final(status) {
        return Err(MatchingError::CampaignClosed);
    }
    Ok(())
}

/// One member whose decision changed: its place in the shortlist's members and the decision
/// it now has. The store replaces that member's rejection by this shortlist, and records one
/// more when the decision is a rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub member: usize,
    pub decision: i32,
}

impl Change {
    /// Whether the brand turned this member down.
    pub fn rejects(&self) -> bool {
        self.decision == Decision::Rejected as i32
    }
}

/// Applies `decisions` to `members` in order and returns what changed, in the same order;
/// a decision that repeats a member's current one changes nothing. Every decision must name
/// a member (`decisions[i].influencer`), or nothing is applied.
pub fn decide(members: &mut [ShortlistMember], decisions: &[MemberDecision]) -> Result<Vec<Change>, MatchingError> {
    let mut by_name: HashMap<&str, usize> = HashMap::with_capacity(members.len());
    for (i, m) in members.iter().enumerate() {
        by_name.entry(m.influencer.as_str()).or_insert(i);
    }
    let mut places = Vec::with_capacity(decisions.len());
    let mut strangers = Vec::new();
    for (i, d) in decisions.iter().enumerate() {
        match by_name.get(d.influencer.as_str()) {
            Some(place) => places.push(*place),
            None => strangers.push(i),
        }
    }
    if !strangers.is_empty() {
        return Err(MatchingError::NotAMember(strangers));
    }
    let mut changes = Vec::new();
    for (d, member) in decisions.iter().zip(places) {
        let m = &mut members[member];
        if m.decision == d.decision {
            continue;
        }
        m.decision = d.decision;
        changes.push(Change {
            member,
            decision: d.decision,
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str]) -> Vec<ShortlistMember> {
        names
            .iter()
            .map(|n| ShortlistMember {
                influencer: format!("influencers/{n}"),
                decision: Decision::Pending as i32,
                ..Default::default()
            })
            .collect()
    }

    fn decision(name: &str, d: Decision) -> MemberDecision {
        MemberDecision {
            influencer: format!("influencers/{name}"),
            decision: d as i32,
        }
    }

    #[test]
    fn only_completed_and_cancelled_campaigns_are_final() {
        assert!(is_final(CampaignStatus::Completed as i32));
        assert!(is_final(CampaignStatus::Cancelled as i32));
        assert!(!is_final(CampaignStatus::Draft as i32));
        assert!(!is_final(CampaignStatus::Live as i32));
        assert_eq!(
            ensure_open(CampaignStatus::Cancelled as i32),
            Err(MatchingError::CampaignClosed)
        );
        assert!(ensure_open(CampaignStatus::Live as i32).is_ok());
    }

    #[test]
    fn every_decision_must_name_a_member_and_each_stranger_is_named() {
        let mut m = members(&["a", "b"]);
        let err = decide(
            &mut m,
            &[
                decision("x", Decision::Accepted),
                decision("a", Decision::Accepted),
                decision("y", Decision::Rejected),
            ],
        )
        .unwrap_err();
        assert_eq!(err, MatchingError::NotAMember(vec![0, 2]));
        assert!(
            m.iter().all(|m| m.decision == Decision::Pending as i32),
            "nothing applied"
        );
    }

    #[test]
    fn only_members_whose_decision_changes_are_recorded_in_order() {
        let mut m = members(&["a", "b", "c"]);
        m[1].decision = Decision::Accepted as i32;
        let changes = decide(
            &mut m,
            &[
                decision("c", Decision::Rejected),
                decision("b", Decision::Accepted),
                decision("a", Decision::Accepted),
            ],
        )
        .unwrap();
        assert_eq!(
            changes,
            [
                Change {
                    member: 2,
                    decision: Decision::Rejected as i32
                },
                Change {
                    member: 0,
                    decision: Decision::Accepted as i32
                },
            ]
        );
        assert!(changes[0].rejects() && !changes[1].rejects());
        assert_eq!(m[2].decision, Decision::Rejected as i32);
        assert_eq!(m[0].decision, Decision::Accepted as i32);
    }

    #[test]
    fn a_member_decided_twice_changes_twice() {
        let mut m = members(&["a"]);
        let changes = decide(
            &mut m,
            &[decision("a", Decision::Rejected), decision("a", Decision::Accepted)],
        )
        .unwrap();
        let decided: Vec<i32> = changes.iter().map(|c| c.decision).collect();
        assert_eq!(decided, [Decision::Rejected as i32, Decision::Accepted as i32]);
        assert_eq!(m[0].decision, Decision::Accepted as i32);
    }
}
