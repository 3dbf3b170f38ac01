//! A caption cut into words once, on Unicode word boundaries, with everything the rules ask of
//! a word kept beside it: where it is in code points (the API's unit), its lower-cased form,
//! whether it is a hashtag or a mention, what stands around it, and its hashtag run.

/// What precedes a word: `#tag`, `@handle` or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sigil {
    None,
    Hash,
    At,
}

/// One word of the text.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// Code points from the start of the text: the sigil's position when there is one.
    pub(crate) start: u32,
    /// Code points, exclusive.
    pub(crate) end: u32,
    /// Bytes of the original text, sigil included.
    pub(crate) byte_start: u32,
    pub(crate) byte_end: u32,
    /// Bytes of the lower-cased word (sigil excluded) in [`Text::lower`].
    lower_start: u32,
    lower_end: u32,
    pub(crate) sigil: Sigil,
    /// Counts sentence breaks (`.`, `!`, `?`, `…`, a new line) before the word.
    pub(crate) sentence: u32,
    /// The first letter is upper case in the text.
    pub(crate) capitalised: bool,
    /// The nearest character before the word that is not a space: `None` at the start of the
    /// text, `'\n'` after a line break.
    pub(crate) before: Option<char>,
    /// The nearest character after the word that is not a space, `'\n'` for a line break.
    pub(crate) after: Option<char>,
    /// Only white space lies between this word and the one before it (and there is one).
    pub(crate) spaced_from_previous: bool,
    /// Joined to a neighbouring word by a hyphen ("ad-free", "non-ad").
    pub(crate) hyphenated: bool,
}

/// A text cut into words.
#[derive(Debug)]
pub(crate) struct Text<'a> {
    pub(crate) src: &'a str,
    pub(crate) lower: String,
    pub(crate) tokens: Vec<Token>,
    /// Length in code points.
    pub(crate) chars: u32,
    /// For each word, how many words from it name one of the request's brands (0: none);
    /// empty until [`super::pattern::Brands::mark`] fills it.
    pub(crate) brand: Vec<u8>,
}

fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else {
        c.is_alphanumeric() || ('\u{300}'..='\u{36f}').contains(&c)
    }
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

fn ends_sentence(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '\n' | '¡' | '¿')
}

/// The character at byte `i` and its length; ASCII without decoding.
fn char_at(src: &str, i: usize) -> Option<(char, usize)> {
    let b = *src.as_bytes().get(i)?;
    if b < 0x80 {
        return Some((b as char, 1));
    }
    let c = src.get(i..)?.chars().next()?;
    Some((c, c.len_utf8()))
}

fn word_char_at(src: &str, i: usize) -> bool {
    char_at(src, i).is_some_and(|(c, _)| is_word_char(c))
}

impl<'a> Text<'a> {
    /// Cuts `src` into words in one pass (ASCII without decoding: the hot path of the checker).
    pub(crate) fn new(src: &'a str) -> Text<'a> {
        let mut tokens: Vec<Token> = Vec::with_capacity(src.len() / 5 + 1);
        let mut lower = String::with_capacity(src.len());
        let bytes = src.as_bytes();
        let mut i = 0usize; // byte of the next character
        let mut idx: u32 = 0; // its code point index
        let mut sentence = 0u32;
        let mut last_non_space: Option<char> = None;
        let mut only_space_since_token = true;
        let mut prev_char: Option<char> = None;
        while let Some((c, len)) = char_at(src, i) {
            if c == ' ' {
                // The commonest character between words: nothing to record.
                i += 1;
                idx += 1;
                prev_char = Some(' ');
                continue;
            }
            let sigil = match c {
                '#' => Sigil::Hash,
                '@' => Sigil::At,
                _ => Sigil::None,
            };
            // A sigil counts only when a word follows it directly.
            let word_starts_here = if sigil == Sigil::None {
                is_word_char(c)
            } else {
                word_char_at(src, i + len)
            };
            if !word_starts_here {
                i += len;
                idx += 1;
                if ends_sentence(c) {
                    sentence += 1;
                }
                let seen = if c == '\n' {
                    Some('\n')
                } else if c.is_whitespace() {
                    None
                } else {
                    only_space_since_token = false;
                    Some(c)
                };
                if let Some(seen) = seen {
                    last_non_space = Some(seen);
                    if let Some(t) = tokens.last_mut()
                        && t.after.is_none()
                    {
                        t.after = Some(seen);
                    }
                }
                prev_char = Some(c);
                continue;
            }
            let start = idx;
            let byte_start = i;
            if let Some(t) = tokens.last_mut()
                && t.after.is_none()
            {
                t.after = Some(c);
            }
            let hyphen_before = prev_char == Some('-') && tokens.last().is_some_and(|t| t.byte_end as usize + 1 == i);
            if sigil != Sigil::None {
                i += len;
                idx += 1;
            }
            let lower_start = lower.len();
            let capitalised = char_at(src, i).is_some_and(|(c2, _)| c2.is_uppercase());
            let word_start = i;
            while let Some(&b2) = bytes.get(i) {
                // A run of ASCII letters and digits, the common case: copied and lower-cased
                // whole.
                if b2.is_ascii_alphanumeric() {
                    let run = bytes[i..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
                    let at = lower.len();
                    lower.push_str(&src[i..i + run]);
                    if let Some(copied) = lower.get_mut(at..) {
                        copied.make_ascii_lowercase();
                    }
                    i += run;
                    idx += run as u32;
                    continue;
                }
                let Some((c2, len2)) = char_at(src, i) else { break };
                let inner = is_word_char(c2)
                    || (sigil != Sigil::None && c2 == '_')
                    || ((is_apostrophe(c2) || (sigil == Sigil::At && c2 == '.'))
                        && i > word_start
                        && word_char_at(src, i + len2));
                if !inner {
                    break;
                }
                if c2.is_ascii() {
                    lower.push(c2);
                } else if is_apostrophe(c2) {
                    lower.push('\'');
                } else {
                    lower.extend(c2.to_lowercase());
                }
                i += len2;
                idx += 1;
            }
            prev_char = src.get(..i).and_then(|s| s.chars().next_back());
            let byte_end = i;
            let hyphen_after = bytes.get(byte_end) == Some(&b'-') && word_char_at(src, byte_end + 1);
            if hyphen_before && let Some(t) = tokens.last_mut() {
                t.hyphenated = true;
            }
            tokens.push(Token {
                start,
                end: idx,
                byte_start: byte_start as u32,
                byte_end: byte_end as u32,
                lower_start: lower_start as u32,
                lower_end: lower.len() as u32,
                sigil,
                sentence,
                capitalised,
                before: last_non_space,
                after: None,
                spaced_from_previous: only_space_since_token && !tokens.is_empty(),
                hyphenated: hyphen_before || hyphen_after,
            });
            last_non_space = prev_char;
            only_space_since_token = true;
        }
        Text {
            src,
            lower,
            tokens,
            chars: idx,
            brand: Vec::new(),
        }
    }

    /// The first byte of the lower-cased word.
    pub(crate) fn first_byte(&self, i: usize) -> Option<u8> {
        self.lower.as_bytes().get(self.tokens[i].lower_start as usize).copied()
    }

    /// The lower-cased word, without its sigil.
    pub(crate) fn word(&self, i: usize) -> &str {
        let t = &self.tokens[i];
        &self.lower[t.lower_start as usize..t.lower_end as usize]
    }

    /// The original characters of tokens `first..=last`, sigils included.
    pub(crate) fn quote(&self, first: usize, last: usize) -> &'a str {
        let (a, b) = (self.tokens[first].byte_start, self.tokens[last].byte_end);
        &self.src[a as usize..b as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<(String, Sigil)> {
        let t = Text::new(s);
        (0..t.tokens.len())
            .map(|i| (t.word(i).to_owned(), t.tokens[i].sigil))
            .collect()
    }

    #[test]
    fn words_are_cut_on_unicode_boundaries_and_lower_cased() {
        let w = words("✨#AD✨ Publicité: l’été! @my_brand.co #Voltra_Partner ÜBER");
        let plain: Vec<&str> = w.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            plain,
            ["ad", "publicité", "l'été", "my_brand.co", "voltra_partner", "über"]
        );
        assert_eq!(w[0].1, Sigil::Hash);
        assert_eq!(w[3].1, Sigil::At);
        assert_eq!(w[1].1, Sigil::None);
    }

    #[test]
    fn positions_are_code_points_and_quotes_are_the_original() {
        let t = Text::new("🏃‍♀️ ¡Publicidad! #ad");
        let i = t.tokens.iter().position(|x| x.sigil == Sigil::Hash).unwrap();
        let tok = &t.tokens[i];
        assert_eq!(t.quote(i, i), "#ad");
        assert_eq!(
            t.src
                .chars()
                .skip(tok.start as usize)
                .take((tok.end - tok.start) as usize)
                .collect::<String>(),
            "#ad"
        );
        assert_eq!(tok.end, t.chars);
        assert_eq!(t.word(0), "publicidad");
        assert_eq!(t.tokens[0].before, Some('¡'));
        assert_eq!(t.tokens[0].after, Some('!'));
    }

    #[test]
    fn a_lone_sigil_is_punctuation() {
        assert_eq!(
            words("# ad @ x"),
            [("ad".to_owned(), Sigil::None), ("x".to_owned(), Sigil::None)]
        );
    }

    #[test]
    fn hyphens_sentences_and_spacing_are_recorded() {
        let t = Text::new("Ad-free life. #a #b\n#c,#d");
        assert!(t.tokens[0].hyphenated && t.tokens[1].hyphenated);
        assert!(!t.tokens[2].hyphenated);
        assert_eq!(t.tokens[3].sentence, 1);
        assert!(t.tokens[4].spaced_from_previous && t.tokens[5].spaced_from_previous);
        assert!(!t.tokens[6].spaced_from_previous);
        assert_eq!(t.tokens[4].before, Some('a'));
        assert_eq!(t.tokens[5].before, Some('\n'));
        assert!(t.tokens[0].capitalised);
    }
}
