//! Comment authenticity: which comments in a sample look like engagement-pod or bot comments
//! (DOMAIN.md: "short or emoji-only comments"; "1-3 suspicious comments out of 20 is normal;
//! half is a red flag").
//!
//! Each comment falls in at most one class, checked in this order: emoji-only (no letter or
//! digit at all), generic (a stock phrase that fits any post), duplicate (the same words as an
//! earlier comment in the sample), very short (a single word). Anything else is authentic.

use std::collections::HashSet;

/// Stock phrases that fit any post, compared after lower-casing and dropping everything but
/// letters, digits and single spaces. Spam invitations count too.
const GENERIC: &[&str] = &[
    "nice",
    "nice pic",
    "nice picture",
    "nice photo",
    "nice post",
    "nice shot",
    "nice one",
    "nice feed",
    "great",
    "great post",
    "great pic",
    "great shot",
    "great content",
    "great photo",
    "great job",
    "love it",
    "love this",
    "love",
    "lovely",
    "so cool",
    "cool",
    "very cool",
    "awesome",
    "awesome post",
    "amazing",
    "amazing post",
    "amazing pic",
    "beautiful",
    "so beautiful",
    "wow",
    "wow amazing",
    "super",
    "perfect",
    "good",
    "good job",
    "keep it up",
    "keep going",
    "well done",
    "looks good",
    "looks great",
    "so nice",
    "fantastic",
    "incredible",
    "cute",
    "so cute",
    "stunning",
    "gorgeous",
    "follow me",
    "follow back",
    "follow for follow",
    "f4f",
    "l4l",
    "check my page",
    "check my profile",
    "check out my page",
    "dm me",
    "dm for collab",
    "dm us",
    "send pic to our page",
    "promote it on",
];

/// Counts of one comment sample, by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommentSummary {
    pub total: u32,
    pub emoji_only: u32,
    pub generic: u32,
    pub duplicate: u32,
    pub short: u32,
}

impl CommentSummary {
    pub fn suspicious(&self) -> u32 {
        self.emoji_only + self.generic + self.duplicate + self.short
    }

    /// Suspicious comments as a share of the sample; 0 for an empty one.
    pub fn suspicious_share(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            f64::from(self.suspicious()) / f64::from(self.total)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentClass {
    Authentic,
    EmojiOnly,
    Generic,
    Duplicate,
    Short,
}

/// Lower case, letters and digits only, words separated by one space.
fn words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for w in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(w.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Classifies every comment of a sample; `seen` spots duplicates across the sample.
pub fn classify(comments: &[String]) -> (CommentSummary, Vec<CommentClass>) {
    let mut seen = HashSet::with_capacity(comments.len());
    let mut summary = CommentSummary::default();
    let mut classes = Vec::with_capacity(comments.len());
    for c in comments {
        let w = words(c);
        let class = if w.is_empty() {
            CommentClass::EmojiOnly
        } else if is_generic(&w) {
            CommentClass::Generic
        } else if !seen.insert(w.clone()) {
            CommentClass::Duplicate
        } else if !w.contains(' ') {
            CommentClass::Short
        } else {
            CommentClass::Authentic
        };
        match class {
            CommentClass::EmojiOnly => summary.emoji_only += 1,
            CommentClass::Generic => summary.generic += 1,
            CommentClass::Duplicate => summary.duplicate += 1,
            CommentClass::Short => summary.short += 1,
            CommentClass::Authentic => {}
        }
        summary.total += 1;
        classes.push(class);
    }
    (summary, classes)
}

/// A stock phrase, alone or with filler around it ("wow nice pic", "nice pic bro").
fn is_generic(w: &str) -> bool {
    if GENERIC.contains(&w) {
        return true;
    }
    const FILLER: &[&str] = &[
        "so", "very", "really", "bro", "dear", "omg", "wow", "this", "is", "it", "pic", "post",
    ];
    let rest: Vec<&str> = w.split(' ').filter(|t| !FILLER.contains(t)).collect();
    !rest.is_empty() && rest.len() <= 2 && GENERIC.contains(&rest.join(" ").as_str())
        || w.starts_with("check my") && w.contains("page")
        || w.starts_with("dm ") && w.contains("collab")
        || w.contains("promote it on")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn each_comment_falls_in_one_class() {
        let (summary, classes) = classify(&sample(&[
            "🔥🔥🔥",
            "Nice pic!!",
            "Where did you get that leash? My beagle pulls so hard on ours",
            "where did you get that leash?? my beagle pulls so hard on ours",
            "Gorgeous",
            "Delicious",
            "Wow, so cute 😍",
            "CHECK MY PAGE for promo",
            "   ",
        ]));
        assert_eq!(
            classes,
            vec![
                CommentClass::EmojiOnly,
                CommentClass::Generic,
                CommentClass::Authentic,
                CommentClass::Duplicate,
                CommentClass::Generic,
                CommentClass::Short,
                CommentClass::Generic,
                CommentClass::Generic,
                CommentClass::EmojiOnly,
            ]
        );
        assert_eq!(
            summary,
            CommentSummary {
                total: 9,
                emoji_only: 2,
                generic: 4,
                duplicate: 1,
                short: 1
            }
        );
        assert_eq!(summary.suspicious(), 8);
    }

    #[test]
    fn a_real_conversation_is_mostly_authentic() {
        let (summary, _) = classify(&sample(&[
            "Made this last night with oat milk and it worked perfectly",
            "Does it freeze well? Asking for meal prep",
            "My kids devoured these, thank you for the recipe",
            "Could I swap the maple syrup for dates?",
            "love it",
            "The photo of the trail at sunrise is unreal, which park is that?",
            "Saving this for the weekend",
            "Haha your dog's face in the third slide",
        ]));
        assert_eq!(summary.total, 8);
        assert_eq!(summary.suspicious(), 1);
        assert!(summary.suspicious_share() < 0.15);
    }

    #[test]
    fn empty_sample_has_no_share() {
        assert_eq!(classify(&[]).0.suspicious_share(), 0.0);
    }
}
