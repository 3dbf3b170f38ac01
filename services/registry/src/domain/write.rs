//! Where each row of a write goes: which influencer id it writes, whether that creates or
//! updates, or why it cannot. The store reads who owns the accounts and runs the SQL; the
//! rules are here, free of I/O.

use std::collections::HashSet;

use chorus_proto::registry::{Influencer, InfluencerStatus};

use super::influencer::{AccountKey, keys};
use crate::error::RegistryError;

/// How a write treats accounts that already exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    /// New influencers only: an existing account is ALREADY_EXISTS.
    Create,
    /// Import: rows whose accounts exist update that influencer, others create one.
    Upsert,
    /// Replace the influencer with this id; its accounts may not belong to anyone else.
    Replace(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
}

/// The rows of one message decided so far: a later row may not repeat an earlier row's
/// account, nor write the same influencer again.
#[derive(Debug, Default)]
pub struct Batch {
    claimed_keys: HashSet<AccountKey>,
    claimed_ids: HashSet<String>,
}

impl Batch {
    pub fn new() -> Self {
        Batch::default()
    }

    /// Where one row goes: the influencer id it writes, created or updated, or why it
    /// cannot. `owner` says which influencer holds an account now, if any.
    pub fn decide<'a>(
        &mut self,
        inf: &Influencer,
        mode: &WriteMode,
        owner: impl Fn(&AccountKey) -> Option<&'a str>,
    ) -> Result<(Outcome, String), RegistryError> {
        let row_keys = keys(inf);
        for (i, k) in row_keys.iter().enumerate() {
            if self.claimed_keys.contains(k) {
                return Err(RegistryError::AccountRepeated {
                    index: i,
                    handle: k.handle.clone(),
                });
            }
        }
        let owners: Vec<(usize, &str)> = row_keys
            .iter()
            .enumerate()
            .filter_map(|(i, k)| owner(k).map(|o| (i, o)))
            .collect();
        let (outcome, id) = match mode {
            WriteMode::Create => {
                if let Some((i, _)) = owners.first() {
                    return Err(RegistryError::AccountTaken {
                        index: *i,
                        handle: row_keys[*i].handle.clone(),
                    });
                }
                (Outcome::Created, new_id())
            }
            WriteMode::Replace(id) => {
                if let Some((i, _)) = owners.iter().find(|(_, o)| o != id) {
                    return Err(RegistryError::AccountOfAnother {
                        index: *i,
                        handle: row_keys[*i].handle.clone(),
                    });
                }
                (Outcome::Updated, id.clone())
            }
            WriteMode::Upsert => {
                let distinct: HashSet<&str> = owners.iter().map(|(_, o)| *o).collect();
                match owners.first() {
                    None => (Outcome::Created, new_id()),
                    Some((_, o)) if distinct.len() == 1 => (Outcome::Updated, (*o).to_owned()),
                    Some(_) => return Err(RegistryError::RowSpansInfluencers),
                }
            }
        };
        if self.claimed_ids.contains(&id) {
            return Err(RegistryError::InfluencerRepeated);
        }
        self.claimed_ids.insert(id.clone());
        self.claimed_keys.extend(row_keys);
        Ok((outcome, id))
    }
}

/// A new influencer's id: a UUIDv7, so ids sort by creation.
fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The status column a write stores: a new influencer without one is ACTIVE; 0 on an update
/// means "keep the stored status" (see the store's upsert statement).
pub fn initial_status(inf: &Influencer, outcome: Outcome) -> i32 {
    if inf.status == InfluencerStatus::Unspecified as i32 && outcome == Outcome::Created {
        InfluencerStatus::Active as i32
    } else {
        inf.status
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chorus_proto::registry::SocialAccount;

    use super::*;

    fn row(handles: &[&str]) -> Influencer {
        Influencer {
            accounts: handles
                .iter()
                .map(|h| SocialAccount {
                    platform: 1,
                    handle: (*h).to_owned(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Who owns which handle (platform 1) before the write.
    fn owners(pairs: &[(&str, &str)]) -> HashMap<AccountKey, String> {
        pairs
            .iter()
            .map(|(h, id)| {
                (
                    AccountKey {
                        platform: 1,
                        handle: (*h).to_owned(),
                    },
                    (*id).to_owned(),
                )
            })
            .collect()
    }

    fn decide(
        batch: &mut Batch,
        inf: &Influencer,
        mode: &WriteMode,
        existing: &HashMap<AccountKey, String>,
    ) -> Result<(Outcome, String), RegistryError> {
        batch.decide(inf, mode, |k| existing.get(k).map(String::as_str))
    }

    #[test]
    fn create_makes_a_new_id_and_refuses_a_taken_account() {
        let existing = owners(&[("taken", "a")]);
        let mut batch = Batch::new();
        let (outcome, id) = decide(&mut batch, &row(&["fresh"]), &WriteMode::Create, &existing).unwrap();
        assert_eq!(outcome, Outcome::Created);
        assert!(uuid::Uuid::try_parse(&id).is_ok(), "{id}");
        let err = decide(&mut batch, &row(&["other", "taken"]), &WriteMode::Create, &existing).unwrap_err();
        assert_eq!(
            err,
            RegistryError::AccountTaken {
                index: 1,
                handle: "taken".into()
            }
        );
    }

    #[test]
    fn replace_keeps_the_id_and_refuses_another_influencers_account() {
        let existing = owners(&[("mine", "a"), ("theirs", "b")]);
        let replace = WriteMode::Replace("a".into());
        let mut batch = Batch::new();
        let decided = decide(&mut batch, &row(&["mine", "new"]), &replace, &existing).unwrap();
        assert_eq!(decided, (Outcome::Updated, "a".to_owned()));
        let err = decide(&mut Batch::new(), &row(&["mine", "theirs"]), &replace, &existing).unwrap_err();
        assert_eq!(
            err,
            RegistryError::AccountOfAnother {
                index: 1,
                handle: "theirs".into()
            }
        );
    }

    #[test]
    fn upsert_updates_the_one_owner_creates_otherwise_and_refuses_two_owners() {
        let existing = owners(&[("a1", "a"), ("a2", "a"), ("b1", "b")]);
        let mut batch = Batch::new();
        let decided = decide(&mut batch, &row(&["a1", "a2", "new"]), &WriteMode::Upsert, &existing).unwrap();
        assert_eq!(decided, (Outcome::Updated, "a".to_owned()));
        let (outcome, _) = decide(&mut batch, &row(&["other"]), &WriteMode::Upsert, &existing).unwrap();
        assert_eq!(outcome, Outcome::Created);
        let err = decide(&mut Batch::new(), &row(&["a1", "b1"]), &WriteMode::Upsert, &existing).unwrap_err();
        assert_eq!(err, RegistryError::RowSpansInfluencers);
    }

    #[test]
    fn a_later_row_may_not_repeat_an_account_or_an_influencer() {
        let existing = owners(&[("a1", "a"), ("a2", "a")]);
        let mut batch = Batch::new();
        decide(&mut batch, &row(&["a1"]), &WriteMode::Upsert, &existing).unwrap();
        let err = decide(&mut batch, &row(&["x", "a1"]), &WriteMode::Upsert, &existing).unwrap_err();
        assert_eq!(
            err,
            RegistryError::AccountRepeated {
                index: 1,
                handle: "a1".into()
            }
        );
        // Another account of the same influencer: the same person twice in one message.
        let err = decide(&mut batch, &row(&["a2"]), &WriteMode::Upsert, &existing).unwrap_err();
        assert_eq!(err, RegistryError::InfluencerRepeated);
        // A refused row claims nothing: its accounts stay free for a later row.
        let mut batch = Batch::new();
        assert!(decide(&mut batch, &row(&["a1", "zz"]), &WriteMode::Create, &existing).is_err());
        assert!(decide(&mut batch, &row(&["zz"]), &WriteMode::Create, &existing).is_ok());
    }

    #[test]
    fn a_new_influencer_without_a_status_is_active_and_an_update_keeps_the_stored_one() {
        let mut inf = row(&["a"]);
        assert_eq!(initial_status(&inf, Outcome::Created), InfluencerStatus::Active as i32);
        assert_eq!(
            initial_status(&inf, Outcome::Updated),
            InfluencerStatus::Unspecified as i32
        );
        inf.status = InfluencerStatus::Blocked as i32;
        assert_eq!(initial_status(&inf, Outcome::Created), InfluencerStatus::Blocked as i32);
    }
}
