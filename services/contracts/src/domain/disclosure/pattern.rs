//! The small pattern language of the rule sets' labels and statements, matched against a
//! text's words (never its characters, so "#adventure" cannot match "ad").
//!
//! A pattern is words separated by spaces: `ad`, `paid partnership`, `{brand} gave|sent me`,
//! `i earn * commission`. A word matches case-insensitively, as a bare word or a hashtag;
//! `#word` matches only the hashtag; `a|b` is either word; `{brand}` is one of the request's
//! brand names or handles (any capitalised word or @handle when none is given); `*` skips up to
//! three words. Every word of a match lies in one sentence.

use super::text::{Sigil, Text};

/// How many words `*` may skip.
const GAP: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Element {
    Word { alternatives: Vec<Box<str>>, hashtag: bool },
    Brand,
    Gap,
}

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    elements: Vec<Element>,
    source: Box<str>,
}

/// The brands of one request, as lower-cased word sequences ("Blue Bottle" is "blue",
/// "bottle"; "@voltra" is "voltra"), cut by the text's own tokenizer, all in one buffer.
#[derive(Debug)]
pub(crate) struct Brands {
    /// Every brand's words, lower case, one after the other.
    buf: String,
    /// Per brand, the byte ranges of its words in `buf`.
    names: Vec<Vec<(u32, u32)>>,
    /// Per brand, its words joined without spaces ("bluebottle"), for brand-named hashtags.
    joined: Vec<String>,
    /// Which bytes a brand's first word may start with.
    first_bytes: [bool; 256],
}

impl Brands {
    pub(crate) fn new<S: AsRef<str>>(names: &[S]) -> Brands {
        let mut all = String::new();
        let mut ends = Vec::with_capacity(names.len());
        for n in names {
            all.push_str(n.as_ref());
            all.push('\n');
            ends.push(all.len());
        }
        let t = Text::new(&all);
        let mut brands = Brands {
            buf: String::with_capacity(t.lower.len()),
            names: Vec::with_capacity(names.len()),
            joined: Vec::with_capacity(names.len()),
            first_bytes: [false; 256],
        };
        let mut k = 0;
        for end in ends {
            let mut words = Vec::new();
            let mut joined = String::new();
            while k < t.tokens.len() && (t.tokens[k].byte_end as usize) < end {
                let w = t.word(k);
                let start = brands.buf.len() as u32;
                brands.buf.push_str(w);
                words.push((start, brands.buf.len() as u32));
                joined.push_str(w);
                k += 1;
            }
            let duplicate = brands.joined.contains(&joined) && brands.names.iter().any(|n| brands.same(n, &words));
            if words.is_empty() || duplicate {
                continue;
            }
            if let Some(b) = joined.bytes().next() {
                brands.first_bytes[usize::from(b)] = true;
            }
            brands.names.push(words);
            brands.joined.push(joined);
        }
        brands
    }

    fn word(&self, (a, b): (u32, u32)) -> &str {
        &self.buf[a as usize..b as usize]
    }

    fn same(&self, a: &[(u32, u32)], b: &[(u32, u32)]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| self.word(*x) == self.word(*y))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Each brand as one word without spaces ("bluebottle"), for brand-named hashtags.
    pub(crate) fn joined(&self) -> impl Iterator<Item = &str> + '_ {
        self.joined.iter().map(String::as_str)
    }

    /// How many words from `i` name a brand in a pattern: one of the names, or any @handle
    /// ("sponsored by @brisa_es"); without names, also any capitalised word.
    pub(crate) fn len_at(&self, text: &Text<'_>, i: usize) -> Option<usize> {
        let t = &text.tokens[i];
        if self.names.is_empty() {
            return (t.sigil == Sigil::At || t.capitalised).then_some(1);
        }
        self.named_at(text, i).or((t.sigil == Sigil::At).then_some(1))
    }

    /// How many words from `i` are one of the brand names: from the marks [`Brands::mark`]
    /// left on the text, else worked out.
    pub(crate) fn named_at(&self, text: &Text<'_>, i: usize) -> Option<usize> {
        match text.brand.get(i) {
            Some(0) => None,
            Some(n) => Some(usize::from(*n)),
            None => self.find_at(text, i),
        }
    }

    /// Marks every word of `text` that starts a brand name, once, for the rules to read.
    pub(crate) fn mark(&self, text: &mut Text<'_>) {
        if self.names.is_empty() {
            return;
        }
        let marks: Vec<u8> = (0..text.tokens.len())
            .map(|i| self.find_at(text, i).map_or(0, |n| n.min(255) as u8))
            .collect();
        text.brand = marks;
    }

    fn find_at(&self, text: &Text<'_>, i: usize) -> Option<usize> {
        let tokens = &text.tokens;
        let first = text.first_byte(i)?;
        if !self.first_bytes[usize::from(first)] {
            return None;
        }
        'brand: for words in &self.names {
            if i + words.len() > tokens.len() {
                continue;
            }
            for (k, w) in words.iter().enumerate() {
                let w = self.word(*w);
                let got = text.word(i + k);
                let last = k + 1 == words.len();
                if got != w && !(last && got.strip_suffix("'s").is_some_and(|g| g == w)) {
                    continue 'brand;
                }
                if k > 0 && tokens[i + k].sentence != tokens[i].sentence {
                    continue 'brand;
                }
            }
            return Some(words.len());
        }
        None
    }
}

impl Pattern {
    pub(crate) fn parse(source: &str) -> Result<Pattern, String> {
        let mut elements = Vec::new();
        for part in source.split_whitespace() {
            let e = match part {
                "{brand}" => Element::Brand,
                "*" => Element::Gap,
                _ => {
                    let (hashtag, rest) = match part.strip_prefix('#') {
                        Some(r) => (true, r),
                        None => (false, part),
                    };
                    let mut alternatives = Vec::new();
                    for alt in rest.split('|') {
                        // The word must be one word of the text as the tokenizer cuts it.
                        let t = Text::new(alt);
                        if t.tokens.len() != 1 || t.tokens[0].sigil != Sigil::None || t.quote(0, 0) != alt {
                            return Err(format!("pattern {source:?}: {alt:?} is not one word"));
                        }
                        alternatives.push(t.word(0).into());
                    }
                    Element::Word { alternatives, hashtag }
                }
            };
            elements.push(e);
        }
        match (elements.first(), elements.last()) {
            (None, _) => return Err("empty pattern".to_owned()),
            (Some(Element::Gap), _) | (_, Some(Element::Gap)) => {
                return Err(format!("pattern {source:?}: `*` must stand between words"));
            }
            _ => {}
        }
        Ok(Pattern {
            elements,
            source: source.into(),
        })
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// The words a match can start with (lower case), or `None` when it starts with a brand.
    pub(crate) fn first_words(&self) -> Option<impl Iterator<Item = &str>> {
        match self.elements.first() {
            Some(Element::Word { alternatives, .. }) => Some(alternatives.iter().map(|a| &**a)),
            _ => None,
        }
    }

    /// A single bare word ("ad", "werbung"), which needs the context of a label to count.
    pub(crate) fn is_single_word(&self) -> bool {
        matches!(self.elements.as_slice(), [Element::Word { hashtag: false, .. }])
    }

    pub(crate) fn mentions_brand(&self) -> bool {
        self.elements.contains(&Element::Brand)
    }

    /// The index one past the last word of a match starting at word `i`.
    pub(crate) fn match_at(&self, text: &Text<'_>, brands: &Brands, i: usize) -> Option<usize> {
        let sentence = text.tokens.get(i)?.sentence;
        self.match_from(text, brands, 0, i, sentence)
    }

    fn match_from(&self, text: &Text<'_>, brands: &Brands, e: usize, i: usize, sentence: u32) -> Option<usize> {
        let Some(element) = self.elements.get(e) else {
            return Some(i);
        };
        let token = text.tokens.get(i)?;
        if token.sentence != sentence {
            return None;
        }
        match element {
            Element::Word { alternatives, hashtag } => {
                let sigil_ok = if *hashtag {
                    token.sigil == Sigil::Hash
                } else {
                    token.sigil != Sigil::At && (e == 0 || token.sigil == Sigil::None)
                };
                let w = text.word(i);
                (sigil_ok && alternatives.iter().any(|a| **a == *w))
                    .then(|| self.match_from(text, brands, e + 1, i + 1, sentence))
                    .flatten()
            }
            Element::Brand => {
                let n = brands.len_at(text, i)?;
                self.match_from(text, brands, e + 1, i + n, sentence)
            }
            Element::Gap => (0..=GAP).find_map(|skip| self.match_from(text, brands, e + 1, i + skip, sentence)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(pattern: &str, text: &str, brands: &[&str]) -> Vec<(usize, usize)> {
        let p = Pattern::parse(pattern).unwrap();
        let t = Text::new(text);
        let b = Brands::new(brands);
        (0..t.tokens.len())
            .filter_map(|i| p.match_at(&t, &b, i).map(|e| (i, e)))
            .collect()
    }

    #[test]
    fn words_match_whole_words_in_any_case() {
        assert_eq!(ends("ad", "#AD Adorable #adventure ad-free", &[]), [(0, 1), (3, 4)]);
        assert_eq!(ends("#ad", "Ad #ad", &[]), [(1, 2)]);
        assert_eq!(ends("paid partnership", "Paid Partnership with X", &[]), [(0, 2)]);
    }

    #[test]
    fn brands_alternatives_and_gaps() {
        let brands = ["Blue Bottle", "@voltra"];
        assert_eq!(
            ends("{brand} gave|sent me", "Blue Bottle sent me this", &brands),
            [(0, 4)]
        );
        assert_eq!(ends("{brand} gave|sent me", "@Voltra's team gave me", &brands), []);
        // Any handle names a brand in a pattern.
        assert_eq!(
            ends("sponsored by {brand}", "Sponsored by @brisa_es", &brands),
            [(0, 3)]
        );
        assert_eq!(ends("thanks to {brand}", "Thanks to Voltra's crew", &brands), [(0, 3)]);
        assert_eq!(ends("i earn * commission", "I earn a small commission", &[]), [(0, 5)]);
        assert_eq!(
            ends("i earn * commission", "I earn nothing at all from any commission", &[]),
            []
        );
        // Without brand names, any capitalised word or handle may be the brand.
        assert_eq!(
            ends("{brand} gave me", "Kinderly gave me; kinderly gave me", &[]),
            [(0, 3)]
        );
    }

    #[test]
    fn brand_names_are_cut_like_the_text() {
        let b = Brands::new(&["Blue Bottle", "@voltra", "@Voltra", "L'Oréal", ""]);
        let joined: Vec<&str> = b.joined().collect();
        assert_eq!(joined, ["bluebottle", "voltra", "l'oréal"]);
        let t = Text::new("Loving Blue Bottle and L'Oréal's new line");
        assert_eq!(b.named_at(&t, 1), Some(2));
        assert_eq!(b.named_at(&t, 4), Some(1));
        assert_eq!(b.named_at(&t, 0), None);
    }

    #[test]
    fn a_match_stays_in_one_sentence() {
        assert_eq!(ends("sponsored by", "Not sponsored. By the way", &[]), []);
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(Pattern::parse("").is_err());
        assert!(Pattern::parse("* ad").is_err());
        assert!(Pattern::parse("ad *").is_err());
        assert!(Pattern::parse("ad-free").is_err());
        assert!(Pattern::parse("ad|#x").is_err());
        assert!(Pattern::parse("{brand} gave me").unwrap().first_words().is_none());
        assert!(Pattern::parse("ad").unwrap().is_single_word());
        assert!(!Pattern::parse("#ad").unwrap().is_single_word());
    }
}
