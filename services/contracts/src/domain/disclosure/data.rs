//! The rule sets as data: the TOML files under `services/contracts/rules/` read, checked and
//! compiled into lookup tables once, at start-up. The words, thresholds and texts live in the
//! files; what they mean lives in `rules/`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use chorus_proto::contracts::Connection;
use chorus_proto::types::Platform;
use serde::Deserialize;

use super::pattern::Pattern;
use super::rules;

/// FxHash (rustc's): the word tables are looked up once per word of every caption, and
/// SipHash's resistance to chosen keys buys nothing for keys fixed at start-up.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type WordSet = HashSet<Box<str>, BuildHasherDefault<FxHasher>>;

/// The rule files compiled in: (file name, contents).
pub(crate) const BUILTIN: &[(&str, &str)] = &[
    ("US-en.toml", include_str!("../../../rules/US-en.toml")),
    ("US-es.toml", include_str!("../../../rules/US-es.toml")),
    ("GB-en.toml", include_str!("../../../rules/GB-en.toml")),
    ("DE-de.toml", include_str!("../../../rules/DE-de.toml")),
    ("FR-fr.toml", include_str!("../../../rules/FR-fr.toml")),
    ("ES-es.toml", include_str!("../../../rules/ES-es.toml")),
];

pub(crate) const PLATFORMS: &str = include_str!("../../../rules/platforms.toml");

/// The connections, by the names the files use (the proto's, in kebab case).
const CONNECTIONS: &[(&str, Connection)] = &[
    ("cash", Connection::Cash),
    ("gift-card", Connection::GiftCard),
    ("free-product", Connection::FreeProduct),
    ("hosted-experience", Connection::HostedExperience),
    ("affiliate", Connection::Affiliate),
    ("discount-code", Connection::DiscountCode),
    ("contest-entry", Connection::ContestEntry),
    ("family-or-friend", Connection::FamilyOrFriend),
    ("employment", Connection::Employment),
    ("ownership", Connection::Ownership),
];

/// A set of material connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Connections(u16);

impl Connections {
    pub(crate) const ALL: Connections = Connections((1 << 11) - 2);

    pub(crate) fn of(c: Connection) -> Connections {
        Connections(1 << (c as i32))
    }

    pub(crate) fn with(self, c: Connection) -> Connections {
        Connections(self.0 | Connections::of(c).0)
    }

    pub(crate) fn union(self, o: Connections) -> Connections {
        Connections(self.0 | o.0)
    }

    pub(crate) fn minus(self, o: Connections) -> Connections {
        Connections(self.0 & !o.0)
    }

    pub(crate) fn intersects(self, o: Connections) -> bool {
        self.0 & o.0 != 0
    }

    pub(crate) fn contains(self, o: Connections) -> bool {
        self.0 & o.0 == o.0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = Connection> {
        CONNECTIONS
            .iter()
            .map(|(_, c)| *c)
            .filter(move |c| self.contains(Connections::of(*c)))
    }

    fn parse(names: &[String], what: &str) -> Result<Connections, String> {
        let mut set = Connections::default();
        for n in names {
            if n == "*" {
                set = Connections::ALL;
                continue;
            }
            let c = CONNECTIONS
                .iter()
                .find(|(name, _)| name == n)
                .ok_or_else(|| format!("{what}: unknown connection {n:?}"))?;
            set = set.with(c.1);
        }
        Ok(set)
    }
}

/// How a connection reads in a reason ("the payment and the discount code").
pub(crate) fn describe(c: Connection) -> &'static str {
    match c {
        Connection::Unspecified => "a connection",
        Connection::Cash => "the payment",
        Connection::GiftCard => "the gift card",
        Connection::FreeProduct => "the free product",
        Connection::HostedExperience => "the hosted trip or stay",
        Connection::Affiliate => "the affiliate commission",
        Connection::DiscountCode => "the discount code",
        Connection::ContestEntry => "the contest entry",
        Connection::FamilyOrFriend => "the family or friendship tie",
        Connection::Employment => "the employment",
        Connection::Ownership => "the ownership",
    }
}

// ---------------------------------------------------------------------------------------------
// The files as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSetFile {
    #[serde(default)]
    #[allow(dead_code)]
    base: Option<String>,
    jurisdiction: String,
    language: String,
    /// The jurisdiction's main rule set, which language detection falls back to.
    primary: bool,
    language_name: String,
    detect_as: String,
    version: String,
    sources: Vec<String>,
    suggested_label: String,
    policy: PolicyFile,
    words: WordsFile,
    labels: LabelsFile,
    rules: BTreeMap<String, RuleTextFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    placement: Placement,
    brand_tag: Judgement,
    platform_label_alone: Judgement,
    short_video_caption: Judgement,
    video_throughout: bool,
    buried_among_hashtags: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WordsFile {
    predicates: Vec<String>,
    articles: Vec<String>,
    lead_in: Vec<String>,
    negations: Vec<String>,
    brand_tag_words: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelsFile {
    good: Vec<String>,
    #[serde(default)]
    partial: Vec<PartialFile>,
    ambiguous: Vec<AmbiguousFile>,
    #[serde(default)]
    negated: Vec<String>,
    #[serde(default)]
    brand_tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialFile {
    text: String,
    covers: Vec<String>,
    #[serde(default)]
    unconditional_gift_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AmbiguousFile {
    text: String,
    why: String,
    #[serde(default)]
    review_for: Vec<String>,
    #[serde(default)]
    review_only_unconditional: bool,
    /// An ordinary phrase ("affiliate links in my bio") that counts only where it stands as a
    /// label: in brackets, before ':' or '|', at the end of a line, or after "this is".
    #[serde(default)]
    only_as_label: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleTextFile {
    citation: Option<String>,
    reason: String,
    suggestion: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlatformsFile {
    platform: BTreeMap<String, PlatformFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlatformFile {
    visible_chars: u32,
    #[serde(default)]
    label_before_brand_mention: bool,
}

// ---------------------------------------------------------------------------------------------
// The compiled rule sets.

/// Where a good label must stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Placement {
    /// Anywhere before the platform's cut-off (FTC).
    Visible,
    /// The first thing in the text (ASA "up front"; German and Spanish guidance).
    UpFront,
}

/// What an unclear case is: a judgement for a person, or a breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Judgement {
    Review,
    Violation,
}

#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) placement: Placement,
    pub(crate) brand_tag: Judgement,
    pub(crate) platform_label_alone: Judgement,
    pub(crate) short_video_caption: Judgement,
    pub(crate) video_throughout: bool,
    pub(crate) buried_among_hashtags: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Words {
    pub(crate) predicates: WordSet,
    pub(crate) articles: WordSet,
    /// Words that may open a sentence before a label that still counts as up front ("This
    /// post is an ad").
    pub(crate) lead_in: WordSet,
    pub(crate) negations: WordSet,
    pub(crate) brand_tag_words: WordSet,
}

/// What a label does when found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Class {
    /// Discloses the connections it covers (every one, for "#ad").
    Good,
    /// A statement or label that covers only some connections ("Voltra gave me this").
    Partial,
    /// Does not disclose alone ("#sp", "#collab").
    Ambiguous,
    /// Names the brand ("#VoltraPartner", "proud Voltra partner").
    BrandTag,
    /// A good label of another language ("#anzeige" in English).
    Foreign,
    /// Says there is no ad ("#notsponsored").
    Negated,
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) pattern: Pattern,
    pub(crate) class: Class,
    pub(crate) covers: Connections,
    pub(crate) unconditional_gift_only: bool,
    pub(crate) review_for: Connections,
    pub(crate) review_only_unconditional: bool,
    pub(crate) only_as_label: bool,
    /// Why an ambiguous label does not disclose; the language of a foreign one.
    pub(crate) why: Box<str>,
}

/// One rule's texts in one rule set.
#[derive(Debug, Clone)]
pub(crate) struct RuleText {
    pub(crate) citation: String,
    pub(crate) reason: String,
    pub(crate) suggestion: String,
}

#[derive(Debug)]
pub(crate) struct RuleSet {
    pub(crate) name: String,
    pub(crate) jurisdiction: String,
    pub(crate) language: String,
    pub(crate) primary: bool,
    pub(crate) language_name: String,
    pub(crate) detect_as: whatlang::Lang,
    pub(crate) version: String,
    pub(crate) sources: Vec<String>,
    pub(crate) suggested_label: String,
    pub(crate) policy: Policy,
    pub(crate) words: Words,
    pub(crate) entries: Vec<Entry>,
    /// Entries by the lower-case words they can start with.
    index: HashMap<Box<str>, Vec<u32>, BuildHasherDefault<FxHasher>>,
    /// Entries that start with `{brand}`.
    brand_first: Vec<u32>,
    /// A bit per (first byte, second byte) of the words in `index`: most words of a caption
    /// start no label, and this says so without hashing them.
    starts: Box<[u64; 1024]>,
    texts: HashMap<&'static str, RuleText>,
    pub(crate) good_labels: Vec<String>,
    pub(crate) ambiguous_labels: Vec<String>,
}

impl RuleSet {
    pub(crate) fn entries_starting(&self, word: &str) -> &[u32] {
        let bit = start_bit(word);
        if self.starts[bit / 64] & (1 << (bit % 64)) == 0 {
            return &[];
        }
        self.index.get(word).map_or(&[], |v| v.as_slice())
    }

    pub(crate) fn entries_starting_with_brand(&self) -> &[u32] {
        &self.brand_first
    }

    /// The texts of a rule; every rule has them (checked at load).
    pub(crate) fn text(&self, rule: &str) -> Option<&RuleText> {
        self.texts.get(rule)
    }

    fn add(&mut self, entry: Entry) {
        let n = self.entries.len() as u32;
        match entry.pattern.first_words() {
            Some(words) => {
                for w in words {
                    let bit = start_bit(w);
                    self.starts[bit / 64] |= 1 << (bit % 64);
                    let list = self.index.entry(w.into()).or_default();
                    if !list.contains(&n) {
                        list.push(n);
                    }
                }
            }
            None => self.brand_first.push(n),
        }
        self.entries.push(entry);
    }
}

/// The bit of a word's first two bytes in [`RuleSet::starts`].
fn start_bit(word: &str) -> usize {
    let b = word.as_bytes();
    (usize::from(b.first().copied().unwrap_or(0)) << 8) | usize::from(b.get(1).copied().unwrap_or(0))
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct PlatformRule {
    pub(crate) visible_chars: u32,
    pub(crate) label_before_brand_mention: bool,
}

/// The platforms by the names the files use.
const PLATFORM_NAMES: &[(&str, Platform)] = &[
    ("instagram", Platform::Instagram),
    ("tiktok", Platform::Tiktok),
    ("youtube", Platform::Youtube),
    ("x", Platform::X),
    ("facebook", Platform::Facebook),
    ("twitch", Platform::Twitch),
    ("pinterest", Platform::Pinterest),
    ("blog", Platform::Blog),
];

/// The placeholders a reason or suggestion may use.
pub(crate) const PLACEHOLDERS: &[&str] = &[
    "quote",
    "label",
    "platform",
    "visible",
    "connections",
    "why",
    "language",
    "frame",
];

pub(crate) fn parse_platforms(src: &str) -> Result<HashMap<i32, PlatformRule>, String> {
    let file: PlatformsFile = toml::from_str(src).map_err(|e| format!("platforms.toml: {e}"))?;
    let mut out = HashMap::new();
    for (name, p) in &file.platform {
        let (_, platform) = PLATFORM_NAMES
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| format!("platforms.toml: unknown platform {name:?}"))?;
        if p.visible_chars == 0 {
            return Err(format!("platforms.toml: {name}: visible_chars must be positive"));
        }
        out.insert(
            *platform as i32,
            PlatformRule {
                visible_chars: p.visible_chars,
                label_before_brand_mention: p.label_before_brand_mention,
            },
        );
    }
    for (name, platform) in PLATFORM_NAMES {
        if !out.contains_key(&(*platform as i32)) {
            return Err(format!("platforms.toml: no entry for {name}"));
        }
    }
    Ok(out)
}

/// Reads every rule file (a file may name a `base` whose keys it inherits and overrides),
/// checks it, and adds each set the good labels of the other languages as foreign labels.
pub(crate) fn parse_rule_sets(files: &[(&str, &str)]) -> Result<Vec<RuleSet>, String> {
    let mut tables: BTreeMap<String, toml::Table> = BTreeMap::new();
    for (file, src) in files {
        let name = file.strip_suffix(".toml").unwrap_or(file).to_owned();
        let table: toml::Table = toml::from_str(src).map_err(|e| format!("{file}: {e}"))?;
        tables.insert(name, table);
    }
    let mut sets = Vec::new();
    for (name, table) in &tables {
        let merged = resolve(name, table, &tables, 0)?;
        let file: RuleSetFile = merged.try_into().map_err(|e| format!("{name}.toml: {e}"))?;
        sets.push(compile(name, file).map_err(|e| format!("{name}.toml: {e}"))?);
    }
    add_foreign_labels(&mut sets)?;
    Ok(sets)
}

fn resolve(
    name: &str,
    table: &toml::Table,
    all: &BTreeMap<String, toml::Table>,
    depth: u32,
) -> Result<toml::Table, String> {
    let Some(base) = table.get("base") else {
        return Ok(table.clone());
    };
    let base = base
        .as_str()
        .ok_or_else(|| format!("{name}.toml: base must be a rule set's name"))?;
    let parent = all
        .get(base)
        .ok_or_else(|| format!("{name}.toml: no base rule set {base:?}"))?;
    if depth > 4 {
        return Err(format!("{name}.toml: bases nest too deep"));
    }
    let mut merged = resolve(base, parent, all, depth + 1)?;
    merge(&mut merged, table);
    Ok(merged)
}

/// Tables merge key by key; any other value replaces the base's.
fn merge(into: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (into.get_mut(k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            _ => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

fn word_set(words: &[String], what: &str) -> Result<WordSet, String> {
    let mut out = WordSet::default();
    for w in words {
        let p = Pattern::parse(w).map_err(|e| format!("{what}: {e}"))?;
        let first: Vec<&str> = p.first_words().map(|f| f.collect()).unwrap_or_default();
        if !p.is_single_word() || first.len() != 1 {
            return Err(format!("{what}: {w:?} must be one plain word"));
        }
        out.insert(first[0].into());
    }
    Ok(out)
}

fn compile(name: &str, f: RuleSetFile) -> Result<RuleSet, String> {
    let expected = format!("{}-{}", f.jurisdiction, f.language);
    if expected != name {
        return Err(format!(
            "jurisdiction and language make {expected:?}, not the file's name"
        ));
    }
    let detect_as = whatlang::Lang::from_code(&f.detect_as)
        .ok_or_else(|| format!("detect_as: {:?} is not an ISO 639-3 code whatlang knows", f.detect_as))?;
    if f.version.trim().is_empty() || f.sources.is_empty() || f.labels.good.is_empty() {
        return Err("version, sources and good labels are required".to_owned());
    }
    let p = &f.policy;
    let policy = Policy {
        placement: p.placement,
        brand_tag: p.brand_tag,
        platform_label_alone: p.platform_label_alone,
        short_video_caption: p.short_video_caption,
        video_throughout: p.video_throughout,
        buried_among_hashtags: p.buried_among_hashtags,
    };
    let words = Words {
        predicates: word_set(&f.words.predicates, "words.predicates")?,
        articles: word_set(&f.words.articles, "words.articles")?,
        lead_in: word_set(&f.words.lead_in, "words.lead_in")?,
        negations: word_set(&f.words.negations, "words.negations")?,
        brand_tag_words: word_set(&f.words.brand_tag_words, "words.brand_tag_words")?,
    };
    let mut texts = HashMap::new();
    for (id, t) in &f.rules {
        let Some(&rule) = rules::ALL.iter().find(|r| *r == id) else {
            return Err(format!("rules: unknown rule {id:?}"));
        };
        for (what, s) in [("reason", &t.reason), ("suggestion", &t.suggestion)] {
            check_template(s).map_err(|e| format!("rules.{id}.{what}: {e}"))?;
        }
        let citation = t.citation.clone().unwrap_or_else(|| f.sources[0].clone());
        texts.insert(
            rule,
            RuleText {
                citation,
                reason: t.reason.clone(),
                suggestion: t.suggestion.clone(),
            },
        );
    }
    if let Some(missing) = rules::ALL.iter().find(|r| !texts.contains_key(*r)) {
        return Err(format!("rules: no texts for {missing:?}"));
    }
    let mut set = RuleSet {
        name: name.to_owned(),
        jurisdiction: f.jurisdiction,
        language: f.language,
        primary: f.primary,
        language_name: f.language_name,
        detect_as,
        version: f.version,
        sources: f.sources,
        suggested_label: f.suggested_label,
        policy,
        words,
        entries: Vec::new(),
        index: HashMap::default(),
        brand_first: Vec::new(),
        starts: Box::new([0; 1024]),
        texts,
        good_labels: f.labels.good.clone(),
        ambiguous_labels: f.labels.ambiguous.iter().map(|a| a.text.clone()).collect(),
    };
    let entry = |text: &str, class: Class| -> Result<Entry, String> {
        Ok(Entry {
            pattern: Pattern::parse(text).map_err(|e| format!("labels: {e}"))?,
            class,
            covers: Connections::ALL,
            unconditional_gift_only: false,
            review_for: Connections::default(),
            review_only_unconditional: false,
            only_as_label: false,
            why: "".into(),
        })
    };
    for g in &f.labels.good {
        set.add(entry(g, Class::Good)?);
    }
    for p in &f.labels.partial {
        let mut e = entry(&p.text, Class::Partial)?;
        e.covers = Connections::parse(&p.covers, &format!("labels.partial {:?}", p.text))?;
        e.unconditional_gift_only = p.unconditional_gift_only;
        set.add(e);
    }
    for a in &f.labels.ambiguous {
        let mut e = entry(&a.text, Class::Ambiguous)?;
        e.why = a.why.as_str().into();
        e.review_for = Connections::parse(&a.review_for, &format!("labels.ambiguous {:?}", a.text))?;
        e.review_only_unconditional = a.review_only_unconditional;
        e.only_as_label = a.only_as_label;
        set.add(e);
    }
    for n in &f.labels.negated {
        set.add(entry(n, Class::Negated)?);
    }
    for b in &f.labels.brand_tags {
        let e = entry(b, Class::BrandTag)?;
        if !e.pattern.mentions_brand() {
            return Err(format!("labels.brand_tags: {b:?} must name {{brand}}"));
        }
        set.add(e);
    }
    Ok(set)
}

fn check_template(s: &str) -> Result<(), String> {
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or("an unclosed {")?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!("unknown placeholder {{{name}}}"));
        }
        rest = &after[close + 1..];
    }
    if s.trim().is_empty() {
        return Err("empty".to_owned());
    }
    Ok(())
}

/// Each set learns the good labels of the other languages: found in its texts they are in the
/// wrong language, unless the set itself lists the same words.
fn add_foreign_labels(sets: &mut [RuleSet]) -> Result<(), String> {
    let mut foreign: Vec<(String, String, String)> = Vec::new(); // (language, language name, label)
    for s in sets.iter() {
        for g in &s.good_labels {
            foreign.push((s.language.clone(), s.language_name.clone(), g.clone()));
        }
    }
    for s in sets.iter_mut() {
        let own: HashSet<String> = s.entries.iter().map(|e| e.pattern.source().to_lowercase()).collect();
        let mut seen = HashSet::new();
        for (language, language_name, label) in &foreign {
            if *language == s.language || own.contains(&label.to_lowercase()) || !seen.insert(label.to_lowercase()) {
                continue;
            }
            let pattern = Pattern::parse(label)?;
            if pattern.mentions_brand() {
                continue;
            }
            s.add(Entry {
                pattern,
                class: Class::Foreign,
                covers: Connections::default(),
                unconditional_gift_only: false,
                review_for: Connections::default(),
                review_only_unconditional: false,
                only_as_label: false,
                why: language_name.as_str().into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_files_compile() {
        let sets = parse_rule_sets(BUILTIN).unwrap();
        let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["DE-de", "ES-es", "FR-fr", "GB-en", "US-en", "US-es"]);
        let platforms = parse_platforms(PLATFORMS).unwrap();
        assert_eq!(platforms[&(Platform::Instagram as i32)].visible_chars, 125);
        assert!(platforms[&(Platform::Blog as i32)].label_before_brand_mention);
    }

    #[test]
    fn a_base_is_inherited_and_overridden() {
        let sets = parse_rule_sets(BUILTIN).unwrap();
        let es = sets.iter().find(|s| s.name == "US-es").unwrap();
        assert_eq!(es.language, "es");
        assert!(es.text("label.after_truncation").is_some());
    }

    #[test]
    fn foreign_labels_are_learnt_from_the_other_languages() {
        let sets = parse_rule_sets(BUILTIN).unwrap();
        let us = sets.iter().find(|s| s.name == "US-en").unwrap();
        let anzeige = us.entries_starting("anzeige");
        assert!(anzeige.iter().any(|&i| us.entries[i as usize].class == Class::Foreign));
        assert!(
            us.entries_starting("ad")
                .iter()
                .all(|&i| us.entries[i as usize].class != Class::Foreign)
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let us = BUILTIN[0].1;
        let bad = us.replacen("placement = \"visible\"", "placement = \"somewhere\"", 1);
        assert!(
            parse_rule_sets(&[("US-en.toml", &bad)])
                .unwrap_err()
                .contains("US-en.toml")
        );
        let bad = us.replacen("[rules.\"label.buried\"]", "[rules.\"label.nope\"]", 1);
        assert!(
            parse_rule_sets(&[("US-en.toml", &bad)])
                .unwrap_err()
                .contains("unknown rule")
        );
        assert!(
            parse_rule_sets(&[("IT-it.toml", us)])
                .unwrap_err()
                .contains("file's name")
        );
        assert!(check_template("put {nothing} here").is_err());
        assert!(Connections::parse(&["money".to_owned()], "x").is_err());
        assert!(parse_platforms("[platform.instagram]\nvisible_chars = 125\n").is_err());
    }

    #[test]
    fn connection_sets() {
        let s = Connections::of(Connection::Cash).with(Connection::FreeProduct);
        assert!(s.contains(Connections::of(Connection::Cash)));
        assert_eq!(s.iter().count(), 2);
        assert!(Connections::ALL.contains(s));
        assert_eq!(
            s.minus(Connections::of(Connection::Cash)),
            Connections::of(Connection::FreeProduct)
        );
    }
}
