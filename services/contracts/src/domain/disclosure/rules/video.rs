//! The rules of a video, short video or live stream: the disclosure belongs in the video
//! itself, said and shown, at the start, prominent; a live stream repeats it (FTC Disclosures
//! 101; ASA rulings on small, low-contrast labels; French law: kept through the whole video).
//! One function per rule; each returns the level the video reaches under it when it applies.

use chorus_proto::contracts::{Prominence, VideoDisclosure};
use chorus_proto::types::DeliverableKind;

use super::{Ctx, Level};
use crate::domain::disclosure::data::Judgement;

pub(crate) const NOT_IN_VIDEO: &str = "video.not_in_video";
pub(crate) const CAPTION_ONLY: &str = "video.caption_only";
pub(crate) const NOT_PROMINENT: &str = "video.not_prominent";
pub(crate) const NOT_AT_START: &str = "video.not_at_start";
pub(crate) const SAID_OR_SHOWN_ONLY: &str = "video.said_or_shown_only";
pub(crate) const PROMINENCE_UNKNOWN: &str = "video.prominence_unknown";
pub(crate) const NOT_REPEATED: &str = "video.not_repeated";

pub(crate) fn is_video(kind: DeliverableKind) -> bool {
    matches!(
        kind,
        DeliverableKind::Video | DeliverableKind::ShortVideo | DeliverableKind::LiveStream
    )
}

/// Neither said nor shown: only in the description, if anywhere.
pub(crate) fn not_in_video(v: &VideoDisclosure) -> Option<Level> {
    (!v.spoken && !v.on_screen).then_some(Level::None)
}

/// A short video whose caption, laid over it, opens with a good label and nothing else in
/// the video: in the video or not is a judgement, unless the rule set says it is not
/// (`short_video_caption`).
pub(crate) fn caption_only(
    ctx: &Ctx<'_>,
    kind: DeliverableKind,
    v: &VideoDisclosure,
    caption_opens_with_label: bool,
) -> Option<Level> {
    if kind != DeliverableKind::ShortVideo || !caption_opens_with_label || not_in_video(v).is_none() {
        return None;
    }
    Some(match ctx.set.policy.short_video_caption {
        Judgement::Review => Level::Review,
        Judgement::Violation => Level::None,
    })
}

/// Shown small or low-contrast: not prominent. Not said either: a breach; said: a judgement.
pub(crate) fn not_prominent(v: &VideoDisclosure) -> Option<Level> {
    (v.on_screen && v.prominence() == Prominence::SmallOrLowContrast).then_some(if v.spoken {
        Level::Review
    } else {
        Level::None
    })
}

/// Said or shown, but not at the start: a breach once; repeated through it, a judgement.
pub(crate) fn not_at_start(v: &VideoDisclosure) -> Option<Level> {
    ((v.spoken || v.on_screen) && !v.at_start).then_some(if v.repeated { Level::Review } else { Level::None })
}

/// Only said or only shown (and shown clearly, if shown).
pub(crate) fn said_or_shown_only(v: &VideoDisclosure) -> Option<Level> {
    (v.spoken != v.on_screen && not_prominent(v).is_none()).then_some(Level::Review)
}

/// Shown, but how prominently is not said.
pub(crate) fn prominence_unknown(v: &VideoDisclosure) -> Option<Level> {
    (v.on_screen && v.prominence() == Prominence::Unspecified).then_some(Level::Review)
}

/// A live stream, or any video where the rule set wants it kept throughout
/// (`video_throughout`), that does not repeat the disclosure.
pub(crate) fn not_repeated(ctx: &Ctx<'_>, kind: DeliverableKind, v: &VideoDisclosure) -> Option<Level> {
    let must = kind == DeliverableKind::LiveStream || ctx.set.policy.video_throughout;
    (must && (v.spoken || v.on_screen) && !v.repeated).then_some(Level::None)
}

/// Every video rule that applies, with the level each leaves.
pub(crate) fn judge(
    ctx: &Ctx<'_>,
    kind: DeliverableKind,
    v: &VideoDisclosure,
    caption_opens_with_label: bool,
) -> Vec<(&'static str, Level)> {
    if let Some(level) = caption_only(ctx, kind, v, caption_opens_with_label) {
        return vec![(CAPTION_ONLY, level)];
    }
    if let Some(level) = not_in_video(v) {
        return vec![(NOT_IN_VIDEO, level)];
    }
    [
        (NOT_PROMINENT, not_prominent(v)),
        (NOT_AT_START, not_at_start(v)),
        (SAID_OR_SHOWN_ONLY, said_or_shown_only(v)),
        (PROMINENCE_UNKNOWN, prominence_unknown(v)),
        (NOT_REPEATED, not_repeated(ctx, kind, v)),
    ]
    .into_iter()
    .filter_map(|(rule, level)| level.map(|l| (rule, l)))
    .collect()
}

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::{Connection, Severity, Verdict};

    use super::super::testing::{check, of, request, us, video};
    use super::*;

    fn v(spoken: bool, on_screen: bool, at_start: bool, repeated: bool, prominence: Prominence) -> VideoDisclosure {
        VideoDisclosure {
            spoken,
            on_screen,
            at_start,
            repeated,
            prominence: prominence as i32,
        }
    }

    const CLEAR: Prominence = Prominence::Clear;

    #[test]
    fn said_and_shown_clearly_at_the_start_is_compliant() {
        let r = video(
            us("New review"),
            DeliverableKind::Video,
            v(true, true, true, false, CLEAR),
        );
        assert_eq!(check(&r).verdict(), Verdict::Compliant);
    }

    #[test]
    fn only_in_the_description_is_a_violation() {
        let r = video(
            us("#ad New review"),
            DeliverableKind::Video,
            v(false, false, false, false, Prominence::Unspecified),
        );
        assert_eq!(of(&r, NOT_IN_VIDEO), [(Severity::Violation, String::new())]);
        assert_eq!(check(&r).verdict(), Verdict::NonCompliant);
    }

    #[test]
    fn a_short_videos_opening_caption_is_a_judgement_in_the_us_and_not_enough_in_france() {
        let none = v(false, false, false, false, Prominence::Unspecified);
        let r = video(us("#ad New review"), DeliverableKind::ShortVideo, none);
        assert_eq!(of(&r, CAPTION_ONLY)[0].0, Severity::Warning);
        let fr = request("FR", "fr", "Publicité : ma routine", &[Connection::Cash]);
        let fr = video(fr, DeliverableKind::ShortVideo, none);
        assert_eq!(of(&fr, CAPTION_ONLY)[0].0, Severity::Violation);
    }

    #[test]
    fn small_late_or_half_disclosures() {
        let small = video(
            us(""),
            DeliverableKind::Video,
            v(false, true, true, false, Prominence::SmallOrLowContrast),
        );
        assert_eq!(of(&small, NOT_PROMINENT)[0].0, Severity::Violation);
        let late = video(us(""), DeliverableKind::Video, v(true, true, false, false, CLEAR));
        assert_eq!(of(&late, NOT_AT_START)[0].0, Severity::Violation);
        let late_but_repeated = video(us(""), DeliverableKind::Video, v(true, true, false, true, CLEAR));
        assert_eq!(check(&late_but_repeated).verdict(), Verdict::NeedsReview);
        let said = video(
            us(""),
            DeliverableKind::Video,
            v(true, false, true, false, Prominence::Unspecified),
        );
        assert_eq!(of(&said, SAID_OR_SHOWN_ONLY)[0].0, Severity::Warning);
        let unknown = video(
            us(""),
            DeliverableKind::Video,
            v(true, true, true, false, Prominence::Unspecified),
        );
        assert_eq!(of(&unknown, PROMINENCE_UNKNOWN)[0].0, Severity::Warning);
    }

    #[test]
    fn a_live_stream_repeats_it_and_france_keeps_it_throughout() {
        let live = video(us(""), DeliverableKind::LiveStream, v(true, true, true, false, CLEAR));
        assert_eq!(of(&live, NOT_REPEATED)[0].0, Severity::Violation);
        let fr = video(
            request("FR", "fr", "", &[Connection::Cash]),
            DeliverableKind::Video,
            v(true, true, true, false, CLEAR),
        );
        assert_eq!(of(&fr, NOT_REPEATED)[0].0, Severity::Violation);
        let us_video = video(us(""), DeliverableKind::Video, v(true, true, true, false, CLEAR));
        assert_eq!(of(&us_video, NOT_REPEATED), []);
    }
}
