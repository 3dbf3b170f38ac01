//! Finds every label of a rule set in a text: good, partial, ambiguous, brand-named, foreign
//! and negated, each with the words it covers. Where two overlap the longer wins, so
//! "thanks to Voltra for the free shoes" is one statement, not also "thanks Voltra".

use super::data::{Class, RuleSet, Words};
use super::pattern::Brands;
use super::rules::{brand_tag, negated};
use super::text::{Sigil, Text};

/// A label found in a text.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The rule set's entry; `None` for a brand-named hashtag.
    pub(crate) entry: Option<u32>,
    pub(crate) class: Class,
    /// First and last word, inclusive.
    pub(crate) first: usize,
    pub(crate) last: usize,
    /// Where the label ends, in code points (exclusive).
    pub(crate) end: u32,
    /// A negation stands before it ("not sponsored").
    pub(crate) negated: bool,
}

/// Every label in `text`, in order, none overlapping.
pub(crate) fn labels(set: &RuleSet, text: &Text<'_>, brands: &Brands) -> Vec<Found> {
    let mut found: Vec<Found> = Vec::with_capacity(8);
    for i in 0..text.tokens.len() {
        let by_word = set.entries_starting(text.word(i));
        let brand_first = set.entries_starting_with_brand();
        let by_brand = if !brand_first.is_empty() && brands.len_at(text, i).is_some() {
            brand_first
        } else {
            &[]
        };
        for &e in by_word.iter().chain(by_brand) {
            let entry = &set.entries[e as usize];
            let Some(end) = entry.pattern.match_at(text, brands, i) else {
                continue;
            };
            // A denial ("not sponsored") is found whatever stands around the word.
            if entry.pattern.is_single_word()
                && !stands_as_label(text, i, &set.words)
                && !negated::is_negated(text, i, &set.words)
            {
                continue;
            }
            if end - i == 1 && text.tokens[i].hyphenated {
                continue;
            }
            if entry.only_as_label && !set_apart(text, i, end - 1, &set.words) {
                continue;
            }
            found.push(make(text, Some(e), entry.class, i, end - 1));
        }
        if text.tokens[i].sigil == Sigil::Hash && brand_tag::is_brand_hashtag(text.word(i), brands, &set.words) {
            found.push(make(text, None, Class::BrandTag, i, i));
        }
    }
    // The longest at each place; on a tie the better class.
    found.sort_by(|a, b| {
        a.first
            .cmp(&b.first)
            .then(b.last.cmp(&a.last))
            .then(a.class.cmp(&b.class))
    });
    let mut last_kept: Option<usize> = None;
    found.retain(|f| {
        let keep = last_kept.is_none_or(|last| f.first > last);
        if keep {
            last_kept = Some(f.last);
        }
        keep
    });
    let mut kept = found;
    for f in &mut kept {
        if matches!(
            f.class,
            Class::Good | Class::Partial | Class::Foreign | Class::Ambiguous
        ) {
            f.negated = negated::is_negated(text, f.first, &set.words);
        }
    }
    kept
}

fn make(text: &Text<'_>, entry: Option<u32>, class: Class, first: usize, last: usize) -> Found {
    Found {
        entry,
        class,
        first,
        last,
        end: text.tokens[last].end,
        negated: false,
    }
}

/// A bare word that can also be an ordinary word ("ad", "Werbung") is a label when it stands
/// apart ("Ad:", "[Ad]", "(ad)", "Ad | ...", alone on a line, after a full stop) or is what
/// the sentence says the post is ("this is an ad", "ist Werbung"); "their ad on TV" is not.
pub(crate) fn stands_as_label(text: &Text<'_>, i: usize, words: &Words) -> bool {
    let t = &text.tokens[i];
    if t.sigil == Sigil::Hash {
        return true;
    }
    let opens = match t.before {
        None | Some('\n') => true,
        Some(c) => !c.is_alphanumeric() && !matches!(c, ',' | ';' | '\'' | '"' | '’' | '&' | '+'),
    };
    let closes = match t.after {
        None | Some('\n') => true,
        Some(c) => matches!(
            c,
            ':' | '|' | ')' | ']' | '}' | '-' | '–' | '—' | '•' | '/' | '·' | '*' | '»' | '>'
        ),
    };
    if opens || closes {
        return true;
    }
    let same_sentence = |k: usize| text.tokens[k].sentence == t.sentence;
    if i >= 1 && same_sentence(i - 1) {
        let prev = text.word(i - 1);
        if words.predicates.contains(prev) {
            return true;
        }
        if words.articles.contains(prev) && i >= 2 && same_sentence(i - 2) {
            return words.predicates.contains(text.word(i - 2));
        }
    }
    false
}

/// Stricter than [`stands_as_label`], for ordinary phrases: words `first..=last` are in
/// brackets, close a line or a segment ("affiliate link:", "(affiliate link)"), or follow
/// "this is (a)"; a phrase opening a sentence of prose ("Affiliate links in my bio") is not.
pub(crate) fn set_apart(text: &Text<'_>, first: usize, last: usize, words: &Words) -> bool {
    let (a, b) = (&text.tokens[first], &text.tokens[last]);
    let bracketed = matches!(a.before, Some('(' | '[' | '{' | '*' | '|'));
    let closes = match b.after {
        None | Some('\n') => true,
        Some(c) => matches!(c, ':' | '|' | ')' | ']' | '}' | '-' | '–' | '—' | '•' | '/' | '*'),
    };
    let after_predicate = first >= 1 && text.tokens[first - 1].sentence == a.sentence && {
        let prev = text.word(first - 1);
        words.predicates.contains(prev)
            || (words.articles.contains(prev) && first >= 2 && words.predicates.contains(text.word(first - 2)))
    };
    bracketed || closes || after_predicate
}

#[cfg(test)]
mod tests {
    use super::super::data::{BUILTIN, parse_rule_sets};
    use super::*;

    fn found(set: &str, text: &str, brands: &[&str]) -> Vec<(Class, String, bool)> {
        let sets = parse_rule_sets(BUILTIN).unwrap();
        let set = sets.iter().find(|s| s.name == set).unwrap();
        let t = Text::new(text);
        labels(set, &t, &Brands::new(brands))
            .into_iter()
            .map(|f| (f.class, t.quote(f.first, f.last).to_owned(), f.negated))
            .collect()
    }

    #[test]
    fn a_label_is_a_word_of_its_own() {
        assert_eq!(found("US-en", "#adventure #adidas Adorable ADHD ad-free", &[]), []);
        let f = found("US-en", "✨#AD✨ [Ad] (ad) AD: great", &[]);
        assert_eq!(f.len(), 4);
        assert!(f.iter().all(|(c, _, n)| *c == Class::Good && !n));
    }

    #[test]
    fn an_ordinary_ad_is_not_a_label() {
        assert_eq!(found("US-en", "I saw their ad on TV and loved it", &[]), []);
        assert_eq!(found("US-en", "Honestly this is an ad for Voltra", &[]).len(), 1);
    }

    #[test]
    fn an_ordinary_phrase_counts_only_set_apart() {
        assert_eq!(found("GB-en", "Affiliate links in my bio for everything", &[]), []);
        assert_eq!(
            found("GB-en", "Desk essentials (affiliate links) from Kinderly", &[]).len(),
            1
        );
        assert_eq!(found("GB-en", "These are affiliate links, thanks", &[]).len(), 1);
    }

    #[test]
    fn the_longest_label_wins() {
        let f = found("US-en", "Paid partnership with Voltra. Loving it", &["Voltra"]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].1, "Paid partnership");
    }

    #[test]
    fn ambiguous_foreign_negated_and_brand_tags_are_found() {
        let f = found("US-en", "Not sponsored! #sp #anzeige #VoltraPartner", &["Voltra"]);
        let classes: Vec<Class> = f.iter().map(|x| x.0).collect();
        assert_eq!(
            classes,
            [Class::Good, Class::Ambiguous, Class::Foreign, Class::BrandTag]
        );
        assert!(f[0].2, "negated");
    }
}
