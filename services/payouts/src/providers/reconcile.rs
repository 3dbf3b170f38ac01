//! Reconciliation, pure: our ledger's view of the payouts against what a provider says it did,
//! listing each difference once (missing, unknown, amount, currency, status, destination, paid
//! twice), in the order of our payouts and then the provider's unknown records.

use std::collections::HashMap;

use super::{ProviderRecord, RecordStatus};

/// What our ledger says about one payout sent to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerView {
    pub payout_id: String,
    /// What `submit` returned (PayPal: the batch id), when we recorded it.
    pub reference: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    /// Account id or email, as in [`super::Destination::key`].
    pub destination: String,
    pub status: RecordStatus,
}

/// One way the provider's records and ours disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// We think money moved (or is moving); the provider has no record of it.
    MissingAtProvider { payout_id: String },
    /// The provider has a record no payout of ours asked for.
    UnknownToUs {
        reference: String,
        payout_id: Option<String>,
        amount_minor: i64,
        currency: String,
        destination: String,
    },
    AmountDiffers {
        payout_id: String,
        reference: String,
        ours: i64,
        theirs: i64,
    },
    CurrencyDiffers {
        payout_id: String,
        reference: String,
        ours: String,
        theirs: String,
    },
    StatusDiffers {
        payout_id: String,
        reference: String,
        ours: RecordStatus,
        theirs: RecordStatus,
    },
    DestinationDiffers {
        payout_id: String,
        reference: String,
        ours: String,
        theirs: String,
    },
    /// More than one record moved money for one payout.
    PaidTwice { payout_id: String, references: Vec<String> },
}

/// `ours` should be the ledger's whole view of the provider account (every tenant's payouts on
/// it, for the period the records cover): a record made for a payout not in `ours` is
/// reported as unknown, since one platform account serves all tenants.
pub fn reconcile(ours: &[LedgerView], theirs: &[ProviderRecord]) -> Vec<Difference> {
    let mut by_payout: HashMap<&str, Vec<&ProviderRecord>> = HashMap::new();
    let known: HashMap<&str, &LedgerView> = ours.iter().map(|v| (v.payout_id.as_str(), v)).collect();
    let mut differences = Vec::new();
    let mut unknown = Vec::new();
    for record in theirs {
        match record.payout_id.as_deref().filter(|id| known.contains_key(id)) {
            Some(id) => by_payout.entry(id).or_default().push(record),
            None => unknown.push(record),
        }
    }
    for view in ours {
        let records = by_payout.remove(view.payout_id.as_str()).unwrap_or_default();
        differences.extend(compare(view, &records));
    }
    differences.extend(unknown.into_iter().map(|r| Difference::UnknownToUs {
        reference: r.reference.clone(),
        payout_id: r.payout_id.clone(),
        amount_minor: r.amount_minor,
        currency: r.currency.clone(),
        destination: r.destination.clone(),
    }));
    differences
}

/// One payout against the records the provider holds for it.
fn compare(view: &LedgerView, records: &[&ProviderRecord]) -> Vec<Difference> {
    let payout_id = view.payout_id.clone();
    let moved: Vec<&&ProviderRecord> = records.iter().filter(|r| r.status != RecordStatus::Failed).collect();
    if moved.len() > 1 {
        return vec![Difference::PaidTwice {
            payout_id,
            references: moved.iter().map(|r| r.reference.clone()).collect(),
        }];
    }
    let Some(record) = moved.first().copied().or(records.first()) else {
        return match view.status {
            RecordStatus::Failed => Vec::new(),
            _ => vec![Difference::MissingAtProvider { payout_id }],
        };
    };
    let reference = record.reference.clone();
    let mut found = Vec::new();
    if record.amount_minor != view.amount_minor {
        found.push(Difference::AmountDiffers {
            payout_id: payout_id.clone(),
            reference: reference.clone(),
            ours: view.amount_minor,
            theirs: record.amount_minor,
        });
    }
    if record.currency != view.currency {
        found.push(Difference::CurrencyDiffers {
            payout_id: payout_id.clone(),
            reference: reference.clone(),
            ours: view.currency.clone(),
            theirs: record.currency.clone(),
        });
    }
    if record.status != view.status {
        found.push(Difference::StatusDiffers {
            payout_id: payout_id.clone(),
            reference: reference.clone(),
            ours: view.status,
            theirs: record.status,
        });
    }
    // Ours is empty when the payee was erased: their destination is no longer known, so there
    // is nothing to compare it with (and nothing of theirs to print).
    if !view.destination.is_empty() && record.destination != view.destination {
        found.push(Difference::DestinationDiffers {
            payout_id,
            reference,
            ours: view.destination.clone(),
            theirs: record.destination.clone(),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str, amount: i64, status: RecordStatus) -> LedgerView {
        LedgerView {
            payout_id: id.into(),
            reference: None,
            amount_minor: amount,
            currency: "USD".into(),
            destination: "acct_1".into(),
            status,
        }
    }

    fn record(id: Option<&str>, reference: &str, amount: i64, status: RecordStatus) -> ProviderRecord {
        ProviderRecord {
            payout_id: id.map(Into::into),
            reference: reference.into(),
            amount_minor: amount,
            currency: "USD".into(),
            status,
            destination: "acct_1".into(),
        }
    }

    #[test]
    fn agreeing_records_give_no_difference() {
        let ours = [view("p1", 100, RecordStatus::Paid), view("p2", 5, RecordStatus::Failed)];
        let theirs = [record(Some("p1"), "tr_1", 100, RecordStatus::Paid)];
        assert_eq!(reconcile(&ours, &theirs), vec![]);
    }

    #[test]
    fn a_failed_attempt_beside_a_paid_one_is_not_paid_twice() {
        let ours = [view("p1", 100, RecordStatus::Paid)];
        let theirs = [
            record(Some("p1"), "i1", 100, RecordStatus::Failed),
            record(Some("p1"), "i2", 100, RecordStatus::Paid),
        ];
        assert_eq!(reconcile(&ours, &theirs), vec![]);
    }

    #[test]
    fn each_kind_is_found_once() {
        let ours = [
            view("missing", 100, RecordStatus::Paid),
            view("amount", 100, RecordStatus::Paid),
            view("status", 100, RecordStatus::Paid),
            view("twice", 100, RecordStatus::Paid),
        ];
        let mut currency = record(Some("amount"), "tr_a", 90, RecordStatus::Paid);
        currency.currency = "EUR".into();
        let theirs = [
            currency,
            record(Some("status"), "tr_s", 100, RecordStatus::Returned),
            record(Some("twice"), "tr_t1", 100, RecordStatus::Paid),
            record(Some("twice"), "tr_t2", 100, RecordStatus::Paid),
            record(None, "tr_x", 7, RecordStatus::Paid),
        ];
        let found = reconcile(&ours, &theirs);
        assert_eq!(
            found,
            vec![
                Difference::MissingAtProvider {
                    payout_id: "missing".into()
                },
                Difference::AmountDiffers {
                    payout_id: "amount".into(),
                    reference: "tr_a".into(),
                    ours: 100,
                    theirs: 90
                },
                Difference::CurrencyDiffers {
                    payout_id: "amount".into(),
                    reference: "tr_a".into(),
                    ours: "USD".into(),
                    theirs: "EUR".into()
                },
                Difference::StatusDiffers {
                    payout_id: "status".into(),
                    reference: "tr_s".into(),
                    ours: RecordStatus::Paid,
                    theirs: RecordStatus::Returned
                },
                Difference::PaidTwice {
                    payout_id: "twice".into(),
                    references: vec!["tr_t1".into(), "tr_t2".into()]
                },
                Difference::UnknownToUs {
                    reference: "tr_x".into(),
                    payout_id: None,
                    amount_minor: 7,
                    currency: "USD".into(),
                    destination: "acct_1".into()
                },
            ]
        );
    }
}
