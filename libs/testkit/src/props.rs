//! Property tests of request validators. The strategies make the requests a careless or
//! hostile caller might send: empty, plausible and random Unicode text (control characters
//! included), strings around and far past their bounds, lists longer than allowed, unknown enum
//! numbers, NaN and infinities. [`assert_named`] is the property every validator keeps: it
//! never panics, and every error is INVALID_ARGUMENT whose violations each name a field of the
//! message and say what is wrong in a description that does not grow with the input.

use std::fmt::Debug;

use chorus_kit::{Error, ErrorCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};

/// Cases per property: enough to find the usual mistakes, few enough to keep the suite fast.
pub const CASES: u32 = 256;

/// Longest violation description accepted: room for a short value quoted back, far below the
/// huge inputs the strategies send.
pub const MAX_DESCRIPTION: usize = 1_000;

/// The runner's settings: [`CASES`] cases, and no regression files written into the sources.
pub fn config() -> Config {
    Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Any text: empty, short and plausible, random Unicode, control characters, or long.
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        2 => Just(String::new()),
        3 => "[a-z][a-z0-9._-]{0,15}",
        3 => any::<String>(),
        1 => "[\\x00-\\x1f\\x7f]{1,4}",
        2 => long_text(),
    ]
    .boxed()
}

/// One of `plausible` (values a validator should take), or any text.
pub fn text_or(plausible: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(plausible).prop_map(str::to_owned),
        2 => text(),
    ]
    .boxed()
}

/// A run of one character (one to four bytes, or a control character): up to 300 characters,
/// around 2,000 (the longest bounds), or 10,000 (far past any; not more, as a list at its bound
/// repeats one element thousands of times).
pub fn long_text() -> BoxedStrategy<String> {
    let lengths = prop_oneof![0usize..300, 2_000usize..2_300, Just(10_000usize)];
    (
        prop::sample::select(vec!['a', 'é', '中', '😀', '\0', ' ', '-']),
        lengths,
    )
        .prop_map(|(c, n)| std::iter::repeat_n(c, n).collect())
        .boxed()
}

/// A resource name `{collection}/{uuid}`, or any text.
pub fn resource_name(collection: &'static str) -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
            .prop_map(move |id| format!("{collection}/{id}")),
        2 => text(),
    ]
    .boxed()
}

/// An enum number: mostly `0..=max` (the unspecified value and the known ones), or any.
pub fn enum_number(max: i32) -> BoxedStrategy<i32> {
    prop_oneof![4 => 0..=max, 1 => any::<i32>()].boxed()
}

/// A count: small, or any (negative and huge included).
pub fn count() -> BoxedStrategy<i64> {
    prop_oneof![3 => -2i64..100_000, 1 => any::<i64>()].boxed()
}

/// A number: a fraction, a score, or any float (NaN and infinities included).
pub fn number() -> BoxedStrategy<f64> {
    prop_oneof![2 => 0.0..1.0f64, 2 => -10.0..200.0f64, 1 => any::<f64>()].boxed()
}

/// A list for a field bounded by `bound` entries: mostly short, sometimes just under, at or
/// just over the bound (one element repeated, so a long list stays cheap to make).
pub fn list<T: Debug + Clone + 'static>(
    element: impl Strategy<Value = T> + Clone + 'static,
    bound: usize,
) -> BoxedStrategy<Vec<T>> {
    let short = prop::collection::vec(element.clone(), 0..=bound.min(6) + 1);
    let edge = (element, bound.saturating_sub(1)..=bound + 1).prop_map(|(e, n)| vec![e; n]);
    prop_oneof![6 => short, 1 => edge].boxed()
}

/// A field path with its indexes blanked: `accounts[3].handle` is `accounts[].handle`.
pub fn shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            c if in_index && c.is_ascii_digit() => {}
            c => out.push(c),
        }
    }
    out
}

/// The property: `result` is fine, or INVALID_ARGUMENT with at least one violation, each on a
/// field whose [`shape`] is one of `known` and with a short, non-empty description.
pub fn assert_named<T>(result: &Result<T, Error>, known: &[&str]) -> Result<(), TestCaseError> {
    let Err(e) = result else { return Ok(()) };
    prop_assert_eq!(e.code(), ErrorCode::InvalidArgument, "{}", e);
    prop_assert!(
        !e.violations().is_empty(),
        "INVALID_ARGUMENT without a violation: {}",
        e
    );
    for v in e.violations() {
        prop_assert!(
            known.contains(&shape(&v.field).as_str()),
            "a violation on {:?}, which is not a field of the message ({})",
            v.field,
            v.description
        );
        prop_assert!(!v.description.is_empty(), "no description for {:?}", v.field);
        let length = v.description.chars().count();
        prop_assert!(
            length <= MAX_DESCRIPTION,
            "the description of {:?} is {} characters: it grows with the input",
            v.field,
            length
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_blank_indexes_only() {
        assert_eq!(shape("a.accounts[12].handle"), "a.accounts[].handle");
        assert_eq!(shape("names[0]"), "names[]");
        assert_eq!(shape("window_days"), "window_days");
    }

    #[test]
    fn the_property_refuses_unknown_fields_other_codes_and_long_descriptions() {
        let ok: Result<(), Error> = Ok(());
        assert!(assert_named(&ok, &[]).is_ok());
        let named = Err::<(), _>(Error::invalid_field("accounts[3].handle", "required"));
        assert!(assert_named(&named, &["accounts[].handle"]).is_ok());
        assert!(assert_named(&named, &["accounts[].url"]).is_err());
        let other = Err::<(), _>(Error::not_found("x"));
        assert!(assert_named(&other, &["x"]).is_err());
        let long = Err::<(), _>(Error::invalid_field("x", "y".repeat(MAX_DESCRIPTION + 1)));
        assert!(assert_named(&long, &["x"]).is_err());
    }
}
