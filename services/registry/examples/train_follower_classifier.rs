//! Trains the follower-account classifier and evaluates it (docs/follower-classifier.md).
//!
//! ```sh
//! cargo run --release -p chorus-registry --example train_follower_classifier -- \
//!     --write services/registry/models/follower-classifier-v2.json \
//!     services/registry/tests/data/followers-labelled.csv services/registry/tests/data/followers-shifted.csv
//! ```
//!
//! 1. Generates labelled accounts, deterministically from a seed, from what is published about
//!    real and bought Instagram accounts (the distributions are in `real()` and `fake()`).
//! 2. Splits them 70/30 and fits a logistic regression with a little L2 by Newton's method on
//!    the 70 (a 50/50 mix: the training prior the file records).
//! 3. Measures the ROC of the weights as written (rounded) on the held-out 30: true positives
//!    and negatives per threshold, which the registry reads to correct observed fake shares.
//! 4. Draws a second, shifted set from other distributions (`real_shifted()`,
//!    `fake_shifted()`) and reports both sets at the v1 rule and at the default prior: accuracy
//!    and precision for a sample with that share of fakes, recall, specificity, AUC.
//! 5. With `--write MODEL CSV SHIFTED_CSV`, writes the model file and both labelled sets.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop,
    missing_debug_implementations
)]

use chorus_registry::domain::vetting::classifier::{FEATURES, Features, Model, Prior, values};
use chorus_registry::domain::vetting::report::corrected_fake_share;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const SEED: u64 = 20_261_122;
const PER_CLASS: usize = 3_000;
/// The shifted set: its own seed, fewer accounts (it is only evaluated on).
const SHIFTED_SEED: u64 = 20_261_127;
const SHIFTED_PER_CLASS: usize = 1_000;
const L2: f64 = 1.0;
/// follower-classifier-v1's rule: P >= 0.56, the best training accuracy on the 50/50 mix.
const V1_THRESHOLD: f64 = 0.56;

/// exp(normal(ln median, sigma)), by Box-Muller.
fn log_normal(rng: &mut SmallRng, median: f64, sigma: f64) -> f64 {
    let (u1, u2): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (median.ln() + sigma * z).exp()
}

fn username(rng: &mut SmallRng, mean: f64, digits: u32) -> (u32, u32) {
    let len = (mean + 3.0 * (rng.random::<f64>() - 0.5) * 2.0)
        .round()
        .clamp(4.0, 30.0) as u32;
    (len.max(digits + 2), digits)
}

/// An ordinary person's account: posts, followers and follows in the hundreds with long tails;
/// about one in eight a lurker with almost no posts; nearly all with a picture; a third with no
/// biography; digits in a few usernames (birth years).
fn real(rng: &mut SmallRng) -> Features {
    let lurker = rng.random_bool(0.12);
    let posts = if lurker {
        rng.random_range(0..6)
    } else {
        log_normal(rng, 60.0, 1.3) as u64
    };
    let followers = log_normal(rng, if lurker { 120.0 } else { 300.0 }, 1.0) as u64;
    let following = (log_normal(rng, 350.0, 0.8) as u64).min(7_500);
    let digits = match rng.random_range(0..10) {
        0..=6 => 0,
        7 | 8 => rng.random_range(1..3),
        _ => rng.random_range(3..5),
    };
    let (username_length, username_digits) = username(rng, 11.0, digits);
    Features {
        posts,
        followers,
        following,
        has_profile_picture: rng.random_bool(0.96),
        is_private: rng.random_bool(0.35),
        biography_length: if rng.random_bool(0.35) {
            0
        } else {
            rng.random_range(5..150)
        },
        username_length,
        username_digits,
        account_age_days: rng.random_bool(0.5).then(|| rng.random_range(100..4_000)),
    }
}

/// A bought or bot follower: mostly no posts, a few dozen followers, following hundreds to
/// thousands (mass followers past 1,500), a picture about half the time, seldom a biography,
/// digit-heavy usernames, young when the age is known.
fn fake(rng: &mut SmallRng) -> Features {
    let posts = match rng.random_range(0..20) {
        0..=12 => 0,
        13..=17 => rng.random_range(1..6),
        _ => log_normal(rng, 12.0, 1.0) as u64,
    };
    let followers = log_normal(rng, 25.0, 1.3) as u64;
    let following = (log_normal(rng, 1_200.0, 0.9) as u64).min(7_500);
    let digits = if rng.random_bool(0.4) {
        0
    } else {
        rng.random_range(2..7)
    };
    // Username lengths: no published difference between the classes, so the same spread.
    let (username_length, username_digits) = username(rng, 11.0, digits);
    Features {
        posts,
        followers,
        following,
        has_profile_picture: rng.random_bool(0.45),
        is_private: rng.random_bool(0.25),
        biography_length: if rng.random_bool(0.85) {
            0
        } else {
            rng.random_range(5..80)
        },
        username_length,
        username_digits,
        account_age_days: rng
            .random_bool(0.5)
            .then(|| log_normal(rng, 60.0, 1.0).min(3_000.0) as u32),
    }
}

/// Shifted real accounts, for an evaluation the model was not fitted to: three in ten are
/// lurkers (one in eight in training), most of them private and without a biography, some
/// without a picture; no account age (published sets have none). The rest as in `real()`.
fn real_shifted(rng: &mut SmallRng) -> Features {
    let lurker = rng.random_bool(0.30);
    let posts = if lurker {
        rng.random_range(0..6)
    } else {
        log_normal(rng, 60.0, 1.3) as u64
    };
    let followers = log_normal(rng, if lurker { 120.0 } else { 300.0 }, 1.0) as u64;
    let following = (log_normal(rng, 350.0, 0.8) as u64).min(7_500);
    let digits = match rng.random_range(0..10) {
        0..=6 => 0,
        7 | 8 => rng.random_range(1..3),
        _ => rng.random_range(3..5),
    };
    let (username_length, username_digits) = username(rng, 11.0, digits);
    Features {
        posts,
        followers,
        following,
        has_profile_picture: rng.random_bool(if lurker { 0.85 } else { 0.96 }),
        is_private: rng.random_bool(if lurker { 0.70 } else { 0.35 }),
        biography_length: if rng.random_bool(if lurker { 0.80 } else { 0.35 }) {
            0
        } else {
            rng.random_range(5..150)
        },
        username_length,
        username_digits,
        account_age_days: None,
    }
}

/// Shifted fakes: dressed bots, four in five with a picture (45% in training) and three in ten
/// with a biography (15%); no account age. The rest as in `fake()`.
fn fake_shifted(rng: &mut SmallRng) -> Features {
    let posts = match rng.random_range(0..20) {
        0..=12 => 0,
        13..=17 => rng.random_range(1..6),
        _ => log_normal(rng, 12.0, 1.0) as u64,
    };
    let followers = log_normal(rng, 25.0, 1.3) as u64;
    let following = (log_normal(rng, 1_200.0, 0.9) as u64).min(7_500);
    let digits = if rng.random_bool(0.4) {
        0
    } else {
        rng.random_range(2..7)
    };
    let (username_length, username_digits) = username(rng, 11.0, digits);
    Features {
        posts,
        followers,
        following,
        has_profile_picture: rng.random_bool(0.80),
        is_private: rng.random_bool(0.25),
        biography_length: if rng.random_bool(0.70) {
            0
        } else {
            rng.random_range(5..80)
        },
        username_length,
        username_digits,
        account_age_days: None,
    }
}

struct Row {
    f: Features,
    fake: bool,
    test: bool,
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs())).unwrap();
        a.swap(c, p);
        b.swap(c, p);
        for r in c + 1..n {
            let k = a[r][c] / a[c][c];
            for j in c..n {
                a[r][j] -= k * a[c][j];
            }
            b[r] -= k * b[c];
        }
    }
    let mut x = vec![0.0; n];
    for c in (0..n).rev() {
        let s: f64 = (c + 1..n).map(|j| a[c][j] * x[j]).sum();
        x[c] = (b[c] - s) / a[c][c];
    }
    x
}

/// Logistic regression with L2 (not on the intercept) by Newton's method: [intercept, weights].
fn fit(rows: &[&Row]) -> Vec<f64> {
    let d = FEATURES.len() + 1;
    let mut w = vec![0.0; d];
    for _ in 0..30 {
        let mut grad = vec![0.0; d];
        let mut hess = vec![vec![0.0; d]; d];
        for r in rows {
            let mut x = vec![1.0];
            x.extend(values(&r.f));
            let z: f64 = x.iter().zip(&w).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let y = if r.fake { 1.0 } else { 0.0 };
            for i in 0..d {
                grad[i] += (p - y) * x[i];
                for j in 0..d {
                    hess[i][j] += p * (1.0 - p) * x[i] * x[j];
                }
            }
        }
        for i in 1..d {
            grad[i] += L2 * w[i];
            hess[i][i] += L2;
        }
        let step = solve(hess, grad);
        let mut moved = 0.0f64;
        for i in 0..d {
            w[i] -= step[i];
            moved = moved.max(step[i].abs());
        }
        if moved < 1e-9 {
            break;
        }
    }
    w
}

fn probability(w: &[f64], f: &Features) -> f64 {
    let z = w[0] + values(f).iter().zip(&w[1..]).map(|(a, b)| a * b).sum::<f64>();
    1.0 / (1.0 + (-z).exp())
}

#[derive(Debug, Default, Clone, Copy)]
struct Confusion {
    tp: u32,
    fp: u32,
    tn: u32,
    fn_: u32,
}

impl Confusion {
    fn of<'a>(rows: impl Iterator<Item = &'a Row>, call: impl Fn(&Features) -> bool) -> Confusion {
        let mut c = Confusion::default();
        for r in rows {
            match (call(&r.f), r.fake) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }
    fn recall(&self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fn_).max(1))
    }
    fn specificity(&self) -> f64 {
        f64::from(self.tn) / f64::from((self.tn + self.fp).max(1))
    }
    /// Accuracy and precision in a sample where fakes are `share` of the accounts: the
    /// rates of each class weighted by the mix.
    fn accuracy_at(&self, share: f64) -> f64 {
        share * self.recall() + (1.0 - share) * self.specificity()
    }
    fn precision_at(&self, share: f64) -> f64 {
        let called = share * self.recall() + (1.0 - share) * (1.0 - self.specificity());
        if called == 0.0 {
            0.0
        } else {
            share * self.recall() / called
        }
    }
}

/// Area under the ROC: the chance a random fake scores above a random real account (ties half).
fn auc(rows: &[&Row], p: impl Fn(&Features) -> f64) -> f64 {
    let mut scored: Vec<(f64, bool)> = rows.iter().map(|r| (p(&r.f), r.fake)).collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < scored.len() {
        let j = (i..scored.len())
            .find(|&j| scored[j].0 != scored[i].0)
            .unwrap_or(scored.len());
        let mid_rank = (i + j + 1) as f64 / 2.0;
        rank_sum += mid_rank * scored[i..j].iter().filter(|s| s.1).count() as f64;
        i = j;
    }
    let fakes = scored.iter().filter(|s| s.1).count() as f64;
    let reals = scored.len() as f64 - fakes;
    (rank_sum - fakes * (fakes + 1.0) / 2.0) / (fakes * reals)
}

/// Thresholds of the stored ROC, on the model's own probability: every thousandth near the ends
/// (where extreme priors put the cut), every hundredth between.
fn roc_thresholds() -> Vec<f64> {
    (1..=9)
        .chain((10..=990).step_by(10))
        .chain(991..=999)
        .map(|t| f64::from(t) / 1000.0)
        .collect()
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn csv(rows: &[Row], split: impl Fn(&Row) -> &'static str) -> String {
    let mut csv = String::from(
        "split,fake,posts_count,followers_count,following_count,has_profile_picture,is_private,biography_length,username_length,username_digit_count,account_age_days\n",
    );
    for r in rows {
        let f = &r.f;
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            split(r),
            u8::from(r.fake),
            f.posts,
            f.followers,
            f.following,
            u8::from(f.has_profile_picture),
            u8::from(f.is_private),
            f.biography_length,
            f.username_length,
            f.username_digits,
            f.account_age_days.map_or(String::new(), |a| a.to_string())
        ));
    }
    csv
}

fn main() {
    let mut rng = SmallRng::seed_from_u64(SEED);
    let mut rows: Vec<Row> = Vec::with_capacity(2 * PER_CLASS);
    for i in 0..PER_CLASS {
        let test = i % 10 >= 7;
        rows.push(Row {
            f: real(&mut rng),
            fake: false,
            test,
        });
        rows.push(Row {
            f: fake(&mut rng),
            fake: true,
            test,
        });
    }
    let mut rng = SmallRng::seed_from_u64(SHIFTED_SEED);
    let mut shifted: Vec<Row> = Vec::with_capacity(2 * SHIFTED_PER_CLASS);
    for _ in 0..SHIFTED_PER_CLASS {
        shifted.push(Row {
            f: real_shifted(&mut rng),
            fake: false,
            test: true,
        });
        shifted.push(Row {
            f: fake_shifted(&mut rng),
            fake: true,
            test: true,
        });
    }
    let train: Vec<&Row> = rows.iter().filter(|r| !r.test).collect();
    let held: Vec<&Row> = rows.iter().filter(|r| r.test).collect();
    let training_prior = train.iter().filter(|r| r.fake).count() as f64 / train.len() as f64;
    let w: Vec<f64> = fit(&train).into_iter().map(round4).collect();
    // Everything below is measured with the weights as written, so the registry's recount of
    // the held-out ROC from the committed data matches the file exactly (a test).
    // One ROC point per line, so a refit reads as a diff.
    let roc_points: Vec<String> = roc_thresholds()
        .into_iter()
        .map(|t| {
            let c = Confusion::of(held.iter().copied(), |f| probability(&w, f) >= t);
            format!(
                "      {{\"threshold\": {t}, \"true_positives\": {}, \"true_negatives\": {}}}",
                c.tp, c.tn
            )
        })
        .collect();
    let json = serde_json::json!({
        "version": "follower-classifier-v2",
        "created": "2026-11-27",
        "trained_on": format!("{} generated accounts (seed {SEED}), the 70% marked train; the same weights as follower-classifier-v1; see docs/follower-classifier.md", 2 * PER_CLASS),
        "training_prior": training_prior,
        "intercept": w[0],
        "features": FEATURES.iter().zip(&w[1..]).map(|(n, x)| serde_json::json!({"name": n, "weight": x})).collect::<Vec<_>>(),
        "roc": {
            "measured_on": format!("the {} held-out accounts (split test), threshold on the model's own probability", held.len()),
            "fakes": held.iter().filter(|r| r.fake).count(),
            "reals": held.iter().filter(|r| !r.fake).count(),
            "points": "POINTS",
        },
    });
    let text = serde_json::to_string_pretty(&json)
        .unwrap()
        .replace("\"POINTS\"", &format!("[\n{}\n    ]", roc_points.join(",\n")))
        + "\n";
    let model = Model::from_json(&text).unwrap();
    for p in &model.roc().points {
        let c = Confusion::of(held.iter().copied(), |f| model.model_probability(f) >= p.threshold);
        assert_eq!(
            (c.tp, c.tn),
            (p.true_positives, p.true_negatives),
            "the model file's ROC"
        );
    }

    println!("weights (log-odds per unit), fitted on a share of fakes of {training_prior}:");
    println!("  intercept {:+.4}", w[0]);
    for (name, weight) in FEATURES.iter().zip(&w[1..]) {
        println!("  {name:<22} {weight:+.4}");
    }
    let prior = Prior::DEFAULT;
    let decision = model.decision(prior);
    let share = prior.get();
    let rates = decision.rates();
    for (name, set) in [
        ("held-out", held.clone()),
        ("shifted", shifted.iter().collect::<Vec<_>>()),
    ] {
        let fakes = set.iter().filter(|r| r.fake).count();
        println!(
            "\n{name}: {fakes} fake, {} real; AUC {:.4}",
            set.len() - fakes,
            auc(&set, |f| model.model_probability(f))
        );
        for (rule, threshold) in [
            ("v1 rule, P >= 0.56", V1_THRESHOLD),
            ("prior 0.15, P >= 0.85", decision.model_threshold()),
        ] {
            let c = Confusion::of(set.iter().copied(), |f| model.model_probability(f) >= threshold);
            println!(
                "  {rule:<22} tp {:>4} fn {:>4} tn {:>4} fp {:>4}  recall {:.4} specificity {:.4}  \
                 at 50/50: accuracy {:.4} precision {:.4}  at {share} fake: accuracy {:.4} precision {:.4}",
                c.tp,
                c.fn_,
                c.tn,
                c.fp,
                c.recall(),
                c.specificity(),
                c.accuracy_at(0.5),
                c.precision_at(0.5),
                c.accuracy_at(share),
                c.precision_at(share),
            );
        }
        // A sample of 10,000 with the prior's share of fakes, in expectation: what it shows,
        // and what the correction with the held-out rates makes of it.
        let c = Confusion::of(set.iter().copied(), |f| decision.is_fake(f));
        let observed = share * c.recall() + (1.0 - share) * (1.0 - c.specificity());
        let n = 10_000u32;
        let corrected = corrected_fake_share((observed * f64::from(n)).round() as u32, n, &rates);
        println!(
            "  a sample of {n} with {share} fake: observed fake share {observed:.4}, corrected {:.4} (95% {:.4} to {:.4}{})",
            corrected.share,
            corrected.lower,
            corrected.upper,
            if corrected.clamped { ", clamped" } else { "" }
        );
    }

    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--write") {
        let (model_path, csv_path, shifted_path) = (&args[i + 1], &args[i + 2], &args[i + 3]);
        std::fs::write(model_path, &text).unwrap();
        std::fs::write(csv_path, csv(&rows, |r| if r.test { "test" } else { "train" })).unwrap();
        std::fs::write(shifted_path, csv(&shifted, |_| "shifted")).unwrap();
        println!("\nwrote {model_path}, {csv_path} and {shifted_path}");
    }
}
