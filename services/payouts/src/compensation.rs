//! What a contract owes, as payouts: its compensation split into parts, each held, released and
//! paid on its own. Cash is split over the deliverables as the contract's terms release it
//! (evenly, the last taking the remainder: contracts' `Terms::cash_releases`, which sends the
//! amount in `DeliverableApproved.cash_release`); each gift card and each product line is one
//! part, released with the last deliverable.

use chorus_proto::contracts::Contract;
use chorus_proto::payouts::PayoutKind;

/// One part of a contract's compensation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Unique within the contract: "cash:2" (the second deliverable's cash), "gift:0", "product:1".
    pub key: String,
    pub kind: PayoutKind,
    /// Minor units of the contract's currency; for products, declared value times quantity.
    pub amount: i64,
    /// 1-based deliverable whose approval releases it.
    pub deliverable: i32,
    /// Gift card brand, or product SKU.
    pub label: String,
    /// Product title and quantity, for shipments and statements.
    pub title: String,
    pub quantity: i32,
    pub unit_value: i64,
}

/// The parts of `contract`'s compensation and its currency, or None when it owes nothing.
pub fn parts(contract: &Contract) -> Option<(String, Vec<Part>)> {
    let terms = contract.terms.as_ref()?;
    let comp = terms.compensation.as_ref()?;
    let deliverables: i32 = terms.deliverables.iter().map(|d| d.count.max(1)).sum::<i32>().max(1);
    let currency = comp
        .cash
        .as_ref()
        .map(|m| m.currency_code.clone())
        .or_else(|| {
            comp.gift_cards
                .iter()
                .find_map(|g| g.value.as_ref().map(|m| m.currency_code.clone()))
        })
        .or_else(|| {
            comp.products
                .iter()
                .find_map(|p| p.declared_value.as_ref().map(|m| m.currency_code.clone()))
        })?;
    let mut parts = Vec::new();
    let cash = comp.cash.as_ref().map_or(0, |m| m.amount_minor);
    if cash > 0 {
        for (i, amount) in cash_releases(cash, deliverables).into_iter().enumerate() {
            if amount > 0 {
                let n = i32::try_from(i).unwrap_or(i32::MAX).saturating_add(1);
                parts.push(Part {
                    key: format!("cash:{n}"),
                    kind: PayoutKind::Cash,
                    amount,
                    deliverable: n,
                    label: String::new(),
                    title: String::new(),
                    quantity: 1,
                    unit_value: amount,
                });
            }
        }
    }
    for (i, g) in comp.gift_cards.iter().enumerate() {
        let amount = g.value.as_ref().map_or(0, |m| m.amount_minor);
        parts.push(Part {
            key: format!("gift:{i}"),
            kind: PayoutKind::GiftCard,
            amount,
            deliverable: deliverables,
            label: g.brand.clone(),
            title: format!("{} gift card", g.brand),
            quantity: 1,
            unit_value: amount,
        });
    }
    for (i, p) in comp.products.iter().enumerate() {
        let unit = p.declared_value.as_ref().map_or(0, |m| m.amount_minor);
        let quantity = p.quantity.max(1);
        parts.push(Part {
            key: format!("product:{i}"),
            kind: PayoutKind::Product,
            amount: unit.saturating_mul(i64::from(quantity)),
            deliverable: deliverables,
            label: p.sku.clone(),
            title: p.title.clone(),
            quantity,
            unit_value: unit,
        });
    }
    (!parts.is_empty()).then_some((currency, parts))
}

/// Cash over `n` deliverables: evenly, the last taking the remainder, so the parts add up
/// exactly. The same rule as contracts' `Terms::cash_releases`.
pub fn cash_releases(cash: i64, n: i32) -> Vec<i64> {
    let n = i64::from(n.max(1));
    let each = cash / n;
    (0..n)
        .map(|i| if i + 1 == n { cash - each * (n - 1) } else { each })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chorus_proto::contracts::{Compensation, DeliverableTerm, GiftCard, Product, Terms};
    use chorus_proto::types::Money;

    use super::*;

    fn usd(minor: i64) -> Option<Money> {
        Some(Money {
            currency_code: "USD".into(),
            amount_minor: minor,
        })
    }

    fn contract(comp: Compensation, counts: &[i32]) -> Contract {
        Contract {
            terms: Some(Terms {
                deliverables: counts
                    .iter()
                    .map(|&count| DeliverableTerm {
                        count,
                        ..Default::default()
                    })
                    .collect(),
                compensation: Some(comp),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn cash_splits_like_the_contracts_terms_and_sums_exactly() {
        // The example of contracts' own test: 250.00 over three posts.
        assert_eq!(cash_releases(25_000, 3), [8_333, 8_333, 8_334]);
        for (cash, n) in [(1, 7), (199, 3), (1_000_001, 20), (5, 1)] {
            let parts = cash_releases(cash, n);
            assert_eq!(parts.len(), usize::try_from(n).unwrap());
            assert_eq!(parts.iter().sum::<i64>(), cash);
        }
    }

    #[test]
    fn every_part_of_a_mixed_compensation_is_a_payout_released_by_its_deliverable() {
        let c = contract(
            Compensation {
                cash: usd(10_000),
                gift_cards: vec![GiftCard {
                    value: usd(2_500),
                    brand: "Amazon".into(),
                }],
                products: vec![Product {
                    sku: "SKU-1".into(),
                    title: "Headphones".into(),
                    declared_value: usd(4_000),
                    quantity: 2,
                }],
            },
            &[1, 1],
        );
        let (currency, parts) = parts(&c).unwrap();
        assert_eq!(currency, "USD");
        let view: Vec<(&str, i64, i32)> = parts
            .iter()
            .map(|p| (p.key.as_str(), p.amount, p.deliverable))
            .collect();
        assert_eq!(
            view,
            [
                ("cash:1", 5_000, 1),
                ("cash:2", 5_000, 2),
                ("gift:0", 2_500, 2),
                ("product:0", 8_000, 2)
            ]
        );
    }

    #[test]
    fn cash_too_small_to_split_skips_the_empty_parts() {
        let c = contract(
            Compensation {
                cash: usd(1),
                ..Default::default()
            },
            &[3],
        );
        let (_, parts) = parts(&c).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!((parts[0].key.as_str(), parts[0].amount), ("cash:3", 1));
    }

    #[test]
    fn nothing_owed_is_no_parts() {
        assert!(parts(&contract(Compensation::default(), &[1])).is_none());
        assert!(parts(&Contract::default()).is_none());
    }
}
