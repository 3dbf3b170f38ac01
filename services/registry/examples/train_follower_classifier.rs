//! Trains the follower-account classifier and evaluates it (docs/follower-classifier.md).
//!
//! ```sh
//! cargo run --release -p chorus-registry --example train_follower_classifier -- \
//!     --write services/registry/models/follower-classifier-v1.json services/registry/tests/data/followers-labelled.csv
//! ```
//!
//! 1. Generates labelled accounts, deterministically from a seed, from what is published about
//!    real and bought Instagram accounts (the distributions are in `real()` and `fake()`).
//! 2. Splits them 70/30, fits a logistic regression with a little L2 by Newton's method on the
//!    70, chooses the threshold that maximises accuracy on the 70.
//! 3. Reports precision, recall and accuracy on the held-out 30, at two class mixes.
//! 4. With `--write MODEL CSV`, writes the weights file and the labelled data.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop,
    missing_debug_implementations
)]

use chorus_registry::domain::vetting::classifier::{FEATURES, Features, Model, values};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const SEED: u64 = 20_261_122;
const PER_CLASS: usize = 3_000;
const L2: f64 = 1.0;

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
    fn accuracy(&self) -> f64 {
        f64::from(self.tp + self.tn) / f64::from(self.tp + self.tn + self.fp + self.fn_)
    }
    fn precision(&self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fp).max(1))
    }
    fn recall(&self) -> f64 {
        f64::from(self.tp) / f64::from((self.tp + self.fn_).max(1))
    }
    /// The same rates with the real accounts weighted so that there are `ratio` of them per fake.
    fn accuracy_at(&self, ratio: f64) -> f64 {
        let fakes = f64::from(self.tp + self.fn_);
        let reals = f64::from(self.tn + self.fp);
        let k = ratio * fakes / reals;
        (f64::from(self.tp) + k * f64::from(self.tn)) / (fakes + k * reals)
    }
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
    let train: Vec<&Row> = rows.iter().filter(|r| !r.test).collect();
    let w = fit(&train);
    // The threshold with the best training accuracy, on a grid of 0.01.
    let threshold = (5..96)
        .map(|t| f64::from(t) / 100.0)
        .max_by(|a, b| {
            let acc = |t: f64| Confusion::of(train.iter().copied(), |f| probability(&w, f) >= t).accuracy();
            acc(*a).total_cmp(&acc(*b))
        })
        .unwrap();
    let held = Confusion::of(rows.iter().filter(|r| r.test), |f| probability(&w, f) >= threshold);
    println!("weights (log-odds per unit):");
    println!("  intercept {:+.4}", w[0]);
    for (name, weight) in FEATURES.iter().zip(&w[1..]) {
        println!("  {name:<22} {weight:+.4}");
    }
    println!("threshold {threshold:.2}");
    println!(
        "held-out ({} accounts, 1:1): accuracy {:.4}  precision {:.4}  recall {:.4}  tp {} fp {} tn {} fn {}",
        held.tp + held.fp + held.tn + held.fn_,
        held.accuracy(),
        held.precision(),
        held.recall(),
        held.tp,
        held.fp,
        held.tn,
        held.fn_
    );
    println!(
        "held-out accuracy re-weighted to 5 real per fake (InstaFake's mix): {:.4}",
        held.accuracy_at(5.0)
    );

    let json = serde_json::json!({
        "version": "follower-classifier-v1",
        "created": "2026-11-22",
        "trained_on": format!("{} generated accounts (seed {SEED}), 70% of them; see docs/follower-classifier.md", 2 * PER_CLASS),
        "intercept": (w[0] * 1e4).round() / 1e4,
        "threshold": threshold,
        "features": FEATURES.iter().zip(&w[1..]).map(|(n, x)| serde_json::json!({"name": n, "weight": (x * 1e4).round() / 1e4})).collect::<Vec<_>>(),
    });
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--write") {
        let (model_path, csv_path) = (&args[i + 1], &args[i + 2]);
        let text = serde_json::to_string_pretty(&json).unwrap() + "\n";
        Model::from_json(&text).unwrap();
        std::fs::write(model_path, text).unwrap();
        let mut csv = String::from(
            "split,fake,posts_count,followers_count,following_count,has_profile_picture,is_private,biography_length,username_length,username_digit_count,account_age_days\n",
        );
        for r in &rows {
            let f = &r.f;
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                if r.test { "test" } else { "train" },
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
        std::fs::write(csv_path, csv).unwrap();
        println!("wrote {model_path} and {csv_path}");
    }
}
