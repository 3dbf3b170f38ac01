//! The follower-account classifier: a logistic model over a few transformed public features of
//! an account, so every call can be explained feature by feature in log-odds. The weights live
//! in a versioned file (`models/follower-classifier-v1.json`); docs/follower-classifier.md says
//! where they come from and how well they do.

use std::sync::LazyLock;

use serde::Deserialize;

/// Public features of one follower account.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features {
    pub posts: u64,
    pub followers: u64,
    pub following: u64,
    pub has_profile_picture: bool,
    pub is_private: bool,
    pub biography_length: u32,
    pub username_length: u32,
    pub username_digits: u32,
    pub account_age_days: Option<u32>,
}

/// The transformed features, in the order of the weights file. Following more than this many
/// accounts marks a mass follower (DOMAIN.md).
pub const FEATURES: [&str; 11] = [
    "ln_posts",
    "ln_followers",
    "ln_following",
    "no_profile_picture",
    "is_private",
    "no_biography",
    "username_digit_share",
    "mass_following",
    "no_posts",
    "username_length",
    "ln_account_age",
];
const MASS_FOLLOWING: u64 = 1_500;

/// The transformed features of an account, in the order of [`FEATURES`].
pub fn values(f: &Features) -> [f64; 11] {
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    [
        (f.posts as f64).ln_1p(),
        (f.followers as f64).ln_1p(),
        (f.following as f64).ln_1p(),
        flag(!f.has_profile_picture),
        flag(f.is_private),
        flag(f.biography_length == 0),
        f64::from(f.username_digits) / f64::from(f.username_length.max(1)),
        flag(f.following > MASS_FOLLOWING),
        flag(f.posts == 0),
        f64::from(f.username_length),
        // Unknown age contributes nothing.
        f.account_age_days.map_or(0.0, |d| f64::from(d).ln_1p()),
    ]
}

#[derive(Debug, Deserialize)]
struct File {
    version: String,
    intercept: f64,
    threshold: f64,
    features: Vec<Weight>,
}

#[derive(Debug, Deserialize)]
struct Weight {
    name: String,
    weight: f64,
}

/// One feature's part in a call.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub feature: &'static str,
    pub value: f64,
    pub weight: f64,
    pub log_odds: f64,
}

#[derive(Debug)]
pub struct Model {
    version: String,
    intercept: f64,
    threshold: f64,
    weights: [f64; 11],
}

static CURRENT: LazyLock<Model> =
    LazyLock::new(
        || match Model::from_json(include_str!("../../../models/follower-classifier-v1.json")) {
            Ok(m) => m,
            // The file is part of the build and checked by a test; an empty model would call
            // everyone real, so refuse to run instead.
            Err(e) => {
                tracing::error!(error = %e, "the embedded follower classifier is invalid");
                std::process::abort()
            }
        },
    );

impl Model {
    /// The model shipped with this build.
    pub fn current() -> &'static Model {
        &CURRENT
    }

    pub fn from_json(text: &str) -> Result<Model, String> {
        let file: File = serde_json::from_str(text).map_err(|e| format!("weights file: {e}"))?;
        if !file.version.starts_with("follower-classifier-v") {
            return Err(format!("unexpected model version {:?}", file.version));
        }
        let names: Vec<&str> = file.features.iter().map(|w| w.name.as_str()).collect();
        if names != FEATURES {
            return Err(format!(
                "the weights file names {names:?}; this build computes {FEATURES:?}"
            ));
        }
        if !(0.0..=1.0).contains(&file.threshold) {
            return Err("threshold must be a probability".into());
        }
        let mut weights = [0.0; 11];
        for (w, f) in weights.iter_mut().zip(&file.features) {
            *w = f.weight;
        }
        Ok(Model {
            version: file.version,
            intercept: file.intercept,
            threshold: file.threshold,
            weights,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    fn logit(&self, f: &Features) -> f64 {
        let v = values(f);
        self.intercept + v.iter().zip(&self.weights).map(|(x, w)| x * w).sum::<f64>()
    }

    /// Probability that the account is fake.
    pub fn fake_probability(&self, f: &Features) -> f64 {
        1.0 / (1.0 + (-self.logit(f)).exp())
    }

    pub fn explain(&self, f: &Features) -> Vec<Contribution> {
        values(f)
            .iter()
            .zip(self.weights)
            .zip(FEATURES)
            .map(|((value, weight), feature)| Contribution {
                feature,
                value: *value,
                weight,
                log_odds: weight * value,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real() -> Features {
        Features {
            posts: 180,
            followers: 420,
            following: 380,
            has_profile_picture: true,
            is_private: false,
            biography_length: 48,
            username_length: 11,
            username_digits: 0,
            account_age_days: None,
        }
    }

    fn bought() -> Features {
        Features {
            posts: 0,
            followers: 3,
            following: 2_400,
            has_profile_picture: false,
            is_private: false,
            biography_length: 0,
            username_length: 10,
            username_digits: 5,
            account_age_days: None,
        }
    }

    #[test]
    fn archetypes_are_called_right() {
        let m = Model::current();
        assert!(m.fake_probability(&bought()) > 0.95);
        assert!(m.fake_probability(&real()) < 0.05);
        // Hard cases: a private lurker with no biography is a person; a bot with a picture,
        // a handful of posts and a biography still follows thousands and is followed by few.
        let lurker = Features {
            posts: 3,
            followers: 80,
            following: 300,
            is_private: true,
            biography_length: 0,
            username_length: 12,
            ..real()
        };
        assert!(m.fake_probability(&lurker) < m.threshold());
        let dressed_bot = Features {
            posts: 4,
            followers: 15,
            following: 3_500,
            has_profile_picture: true,
            biography_length: 30,
            username_digits: 4,
            ..bought()
        };
        assert!(m.fake_probability(&dressed_bot) >= m.threshold());
    }

    #[test]
    fn features_move_the_probability_the_right_way() {
        let m = Model::current();
        let p = |f: Features| m.fake_probability(&f);
        let base = Features { posts: 5, ..real() };
        assert!(p(Features { posts: 50, ..base }) < p(base));
        assert!(
            p(Features {
                following: 3_000,
                ..base
            }) > p(base)
        );
        assert!(
            p(Features {
                has_profile_picture: false,
                ..base
            }) > p(base)
        );
    }

    #[test]
    fn contributions_add_up_to_the_logit() {
        let m = Model::current();
        let f = bought();
        let sum: f64 = m.intercept + m.explain(&f).iter().map(|c| c.log_odds).sum::<f64>();
        let p = m.fake_probability(&f);
        assert!((sum - (p / (1.0 - p)).ln()).abs() < 1e-6);
    }

    /// The held-out rows of the committed labelled set (docs/follower-classifier.md).
    fn held_out() -> Vec<(Features, bool)> {
        let text = include_str!("../../../tests/data/followers-labelled.csv");
        text.lines()
            .skip(1)
            .filter(|l| l.starts_with("test,"))
            .map(|l| {
                let c: Vec<&str> = l.split(',').collect();
                let n = |i: usize| c[i].parse::<u64>().unwrap();
                let f = Features {
                    posts: n(2),
                    followers: n(3),
                    following: n(4),
                    has_profile_picture: c[5] == "1",
                    is_private: c[6] == "1",
                    biography_length: n(7) as u32,
                    username_length: n(8) as u32,
                    username_digits: n(9) as u32,
                    account_age_days: c[10].parse().ok(),
                };
                (f, c[1] == "1")
            })
            .collect()
    }

    #[test]
    fn held_out_accounts_are_classified_as_documented() {
        let m = Model::current();
        let rows = held_out();
        assert_eq!(rows.len(), 1_800);
        let (mut tp, mut fp, mut tn, mut fn_) = (0u32, 0u32, 0u32, 0u32);
        for (f, fake) in &rows {
            match (m.fake_probability(f) >= m.threshold(), *fake) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, false) => tn += 1,
                (false, true) => fn_ += 1,
            }
        }
        let accuracy = f64::from(tp + tn) / rows.len() as f64;
        let precision = f64::from(tp) / f64::from(tp + fp);
        let recall = f64::from(tp) / f64::from(tp + fn_);
        // docs/follower-classifier.md: 0.9722, 0.9786, 0.9656.
        assert!(accuracy >= 0.97, "accuracy {accuracy}");
        assert!(precision >= 0.975, "precision {precision}");
        assert!(recall >= 0.96, "recall {recall}");
    }

    #[test]
    fn the_weights_file_must_name_exactly_the_features() {
        let text = include_str!("../../../models/follower-classifier-v1.json");
        assert!(Model::from_json(text).is_ok());
        assert!(Model::from_json(&text.replace("\"ln_account_age\"", "\"ln_age\"")).is_err());
    }
}
