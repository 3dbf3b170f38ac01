//! The classifier's calls in words: what pushed an account towards "fake", compared with a
//! typical real account, so a brand can see why an account was called fake.

use chorus_proto::registry::Classification;

use super::classifier::{CUT, Decision, Features, Model};

/// A typical real account (the medians of the real class in docs/follower-classifier.md):
/// reasons say what differs from it.
const TYPICAL: Features = Features {
    posts: 60,
    followers: 300,
    following: 350,
    has_profile_picture: true,
    is_private: false,
    biography_length: 40,
    username_length: 11,
    username_digits: 0,
    account_age_days: None,
};

/// What pushed an account towards "fake" most, compared with a typical real account, in words:
/// at most three, strongest first, each worth at least half a point of log-odds.
pub fn reasons(model: &Model, f: &Features) -> Vec<String> {
    let typical = model.explain(&TYPICAL);
    let mut pushing: Vec<(f64, &'static str)> = model
        .explain(f)
        .iter()
        .zip(&typical)
        .map(|(c, t)| (c.log_odds - t.log_odds, c.feature))
        .filter(|(d, _)| *d >= 0.5)
        .collect();
    pushing.sort_by(|a, b| b.0.total_cmp(&a.0));
    pushing
        .into_iter()
        .take(3)
        .map(|(d, feature)| {
            let what = match feature {
                "ln_posts" | "no_posts" => format!("{} posts", f.posts),
                "ln_followers" => format!("{} followers", f.followers),
                "ln_following" | "mass_following" => format!("follows {} accounts", f.following),
                "no_profile_picture" => "no profile picture".to_owned(),
                "no_biography" => "no biography".to_owned(),
                "username_digit_share" => {
                    format!(
                        "{} of {} username characters are digits",
                        f.username_digits, f.username_length
                    )
                }
                "ln_account_age" => format!("account {} days old", f.account_age_days.unwrap_or(0)),
                other => other.replace('_', " "),
            };
            format!("{what} ({d:+.1} log-odds)")
        })
        .collect()
}

/// One account's classification as the API returns it: the call, its probability, and why.
pub fn classify(model: &Model, decision: &Decision<'_>, key: String, f: &Features) -> Classification {
    let p = decision.fake_probability(f);
    Classification {
        key,
        fake: p >= CUT,
        fake_probability: p,
        reasons: reasons(model, f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::vetting::classifier::Prior;
    use crate::domain::vetting::classifier::tests::bought;

    #[test]
    fn a_typical_account_has_nothing_to_explain() {
        assert!(reasons(Model::current(), &TYPICAL).is_empty());
    }

    #[test]
    fn a_bought_account_is_explained_by_at_most_three_strongest_reasons() {
        let said = reasons(Model::current(), &bought());
        assert!(!said.is_empty() && said.len() <= 3, "{said:?}");
        // Each reason names a figure of the account and its weight in log-odds, strongest first.
        let weights: Vec<f64> = said
            .iter()
            .map(|r| {
                let (_, tail) = r.rsplit_once('(').unwrap();
                tail.trim_end_matches(" log-odds)").parse().unwrap()
            })
            .collect();
        assert!(weights.iter().all(|w| *w >= 0.5), "{said:?}");
        assert!(weights.windows(2).all(|w| w[0] >= w[1]), "{said:?}");
        let words = [
            "0 posts",
            "3 followers",
            "follows 2400 accounts",
            "no profile picture",
            "no biography",
            "5 of 10 username characters are digits",
        ];
        for r in &said {
            assert!(words.iter().any(|w| r.starts_with(w)), "{r}");
        }
    }

    #[test]
    fn classify_calls_fake_at_the_cut_and_says_why() {
        let model = Model::current();
        let decision = model.decision(Prior::DEFAULT);
        let fake = classify(model, &decision, "k1".into(), &bought());
        assert_eq!(fake.key, "k1");
        assert_eq!(fake.fake, fake.fake_probability >= CUT);
        assert!(fake.fake, "p = {}", fake.fake_probability);
        assert_eq!(fake.reasons, reasons(model, &bought()));
        let real = classify(model, &decision, "k2".into(), &TYPICAL);
        assert!(!real.fake && real.reasons.is_empty(), "{real:?}");
    }
}
