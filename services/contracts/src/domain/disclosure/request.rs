//! A CheckDisclosureRequest checked once, every bad field named at once (INVALID_ARGUMENT with
//! field violations), before any rule reads it.

use chorus_kit::error::{Error, Violations};
use chorus_proto::contracts::{CheckDisclosureRequest, Connection, Prominence};
use chorus_proto::types::{DeliverableKind, Platform};

use super::data::Connections;

pub(crate) const MAX_TEXT: usize = 10_000;
pub(crate) const MAX_CONNECTIONS: usize = 10;
pub(crate) const MAX_BRANDS: usize = 20;
pub(crate) const MAX_BRAND: usize = 100;
pub(crate) const MAX_FRAMES: usize = 50;
pub(crate) const MAX_FRAME: usize = 2_000;

/// What validation learnt.
#[derive(Debug)]
pub(crate) struct Valid {
    pub(crate) connections: Connections,
    /// Unspecified reads as a feed post.
    pub(crate) kind: DeliverableKind,
}

/// The name of a platform in the rule files and in reasons.
pub(crate) fn platform_name(p: Platform) -> &'static str {
    match p {
        Platform::Unspecified => "the platform",
        Platform::Instagram => "Instagram",
        Platform::Tiktok => "TikTok",
        Platform::Youtube => "YouTube",
        Platform::X => "X",
        Platform::Facebook => "Facebook",
        Platform::Twitch => "Twitch",
        Platform::Pinterest => "Pinterest",
        Platform::Blog => "a blog",
    }
}

/// Longer than `max` characters; a string of at most `max` bytes never is.
fn too_long(s: &str, max: usize) -> bool {
    s.len() > max && chorus_kit::error::too_long(s, max)
}

fn two_letters(s: &str, upper: bool) -> bool {
    s.len() == 2
        && s.bytes().all(|b| {
            if upper {
                b.is_ascii_uppercase()
            } else {
                b.is_ascii_lowercase()
            }
        })
}

/// Checks every field (the messages are built only for a bad one: this runs on every check); `known` says whether a jurisdiction has rule sets, `supported` lists them.
pub(crate) fn validate(
    r: &CheckDisclosureRequest,
    known: impl Fn(&str) -> bool,
    supported: &str,
) -> Result<Valid, Error> {
    let mut v = Violations::new();
    if too_long(&r.text, MAX_TEXT) {
        v.add("text", format!("at most {MAX_TEXT} characters"));
    }
    match Platform::try_from(r.platform) {
        Ok(Platform::Unspecified) => v.add("platform", "required"),
        Err(_) => v.add("platform", format!("unknown platform {}", r.platform)),
        Ok(_) => {}
    }
    if !two_letters(&r.jurisdiction, true) {
        v.add(
            "jurisdiction",
            "must be two upper-case letters (ISO 3166-1 alpha-2), such as \"US\"",
        );
    } else if !known(&r.jurisdiction) {
        v.add(
            "jurisdiction",
            format!("no rule set for {:?}; supported: {supported}", r.jurisdiction),
        );
    }
    if !r.language.is_empty() && !two_letters(&r.language, false) {
        v.add(
            "language",
            "must be empty (detect it) or two lower-case letters (ISO 639-1), such as \"en\"",
        );
    }
    let mut connections = Connections::default();
    if r.connections.len() > MAX_CONNECTIONS {
        v.add("connections", format!("at most {MAX_CONNECTIONS}"));
    }
    for (i, c) in r.connections.iter().enumerate() {
        match Connection::try_from(*c) {
            Ok(Connection::Unspecified) => v.add(format!("connections[{i}]"), "must not be unspecified"),
            Err(_) => v.add(format!("connections[{i}]"), format!("unknown connection {c}")),
            Ok(c) => connections = connections.with(c),
        }
    }
    if r.brand_names.len() > MAX_BRANDS {
        v.add("brand_names", format!("at most {MAX_BRANDS}"));
    }
    for (i, b) in r.brand_names.iter().enumerate() {
        if too_long(b, MAX_BRAND) {
            v.add(format!("brand_names[{i}]"), format!("at most {MAX_BRAND} characters"));
        }
        if b.trim().is_empty() {
            v.add(format!("brand_names[{i}]"), "must not be empty");
        }
    }
    let mut kind = DeliverableKind::FeedPost;
    if let Some(m) = &r.media {
        match DeliverableKind::try_from(m.kind) {
            Ok(DeliverableKind::Unspecified) => {}
            Ok(k) => kind = k,
            Err(_) => v.add("media.kind", format!("unknown kind {}", m.kind)),
        }
        if m.frames.len() > MAX_FRAMES {
            v.add("media.frames", format!("at most {MAX_FRAMES}"));
        }
        for (i, f) in m.frames.iter().enumerate() {
            if too_long(f, MAX_FRAME) {
                v.add(format!("media.frames[{i}]"), format!("at most {MAX_FRAME} characters"));
            }
        }
        if let Some(video) = &m.video
            && Prominence::try_from(video.prominence).is_err()
        {
            v.add(
                "media.video.prominence",
                format!("unknown prominence {}", video.prominence),
            );
        }
    }
    v.finish()?;
    Ok(Valid { connections, kind })
}

/// A language the jurisdiction has no rule set for.
pub(crate) fn unknown_language(r: &CheckDisclosureRequest, supported: String) -> Error {
    Error::invalid_field(
        "language",
        format!(
            "no rule set for {:?} in {}; supported: {supported}",
            r.language, r.jurisdiction
        ),
    )
}

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::Media;

    use super::super::rules::testing::us;
    use super::*;

    fn fields(r: &CheckDisclosureRequest) -> Vec<String> {
        match validate(r, |j| j == "US", "US") {
            Ok(_) => vec![],
            Err(e) => e.violations().iter().map(|v| v.field.clone()).collect(),
        }
    }

    #[test]
    fn a_good_request_passes() {
        assert_eq!(fields(&us("#ad hi")), Vec::<String>::new());
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let mut r = us(&"x".repeat(MAX_TEXT + 1));
        r.platform = 0;
        r.jurisdiction = "us".into();
        r.language = "EN".into();
        r.connections = vec![0; MAX_CONNECTIONS + 1];
        r.brand_names = vec!["b".repeat(MAX_BRAND + 1)];
        r.media = Some(Media {
            kind: 99,
            frames: vec!["f".repeat(MAX_FRAME + 1)],
            video: None,
        });
        let got = fields(&r);
        for f in [
            "text",
            "platform",
            "jurisdiction",
            "language",
            "connections",
            "connections[0]",
            "brand_names[0]",
            "media.kind",
            "media.frames[0]",
        ] {
            assert!(got.iter().any(|g| g == f), "{f} in {got:?}");
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let mut r = us(&"é".repeat(MAX_TEXT));
        r.brand_names = vec!["b".repeat(MAX_BRAND); MAX_BRANDS];
        r.media = Some(Media {
            kind: DeliverableKind::Story as i32,
            frames: vec!["f".repeat(MAX_FRAME); MAX_FRAMES],
            video: None,
        });
        assert_eq!(fields(&r), Vec::<String>::new());
        r.brand_names.push("one more".into());
        assert_eq!(fields(&r), ["brand_names"]);
    }
}
