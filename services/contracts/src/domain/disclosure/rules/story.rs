//! `story.frame_unlabelled`: each frame of a multi-frame story must carry the disclosure
//! (FTC Disclosures 101: "superimpose it over each part"; CAP Influencers' guide). A frame is
//! judged like a caption that shows whole.

pub(crate) const ID: &str = "story.frame_unlabelled";

#[cfg(test)]
mod tests {
    use chorus_proto::contracts::{Media, Severity, Verdict};
    use chorus_proto::types::DeliverableKind;

    use super::super::testing::{check, of, us};
    use super::*;

    fn story(frames: &[&str]) -> chorus_proto::contracts::CheckDisclosureRequest {
        let mut r = us("");
        r.media = Some(Media {
            kind: DeliverableKind::Story as i32,
            frames: frames.iter().map(|f| (*f).to_owned()).collect(),
            video: None,
        });
        r
    }

    #[test]
    fn every_frame_needs_the_label() {
        let r = story(&["#ad New shoes!", "Look at the grip", "#ad Link in bio"]);
        let got = of(&r, ID);
        assert_eq!(got, [(Severity::Violation, "Look at the grip".to_owned())]);
        let f = check(&r).findings.into_iter().find(|f| f.rule_id == ID).unwrap();
        assert_eq!(f.span.unwrap().field, "frames[1]");
    }

    #[test]
    fn labelled_frames_are_compliant() {
        assert_eq!(
            check(&story(&["#ad New shoes!", "Ad: look at the grip"])).verdict(),
            Verdict::Compliant
        );
    }
}
