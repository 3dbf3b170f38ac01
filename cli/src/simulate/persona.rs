//! A nano's persona, drawn from the seed: how they answer the offer and how they post. The
//! shares are those of the brief: ~85% accept, ~8% decline, ~7% counter; ~5% never deliver;
//! ~10% first post with one of the disclosure mistakes DOMAIN.md lists.

use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    Accept,
    Decline,
    Counter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Post {
    Compliant,
    Mistake(Mistake),
    Never,
}

/// The disclosure mistakes a first caption may make (DOMAIN.md, "Ad disclosure rules").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mistake {
    /// No label at all.
    Missing,
    /// "#ad" only after the "more" cut-off of a long caption.
    Buried,
    /// A vague label alone: "#sp", "#collab".
    Ambiguous,
    /// A label in another language than the endorsement's ("#anzeige" for a US audience).
    WrongLanguage,
}

const MISTAKES: [Mistake; 4] = [
    Mistake::Missing,
    Mistake::Buried,
    Mistake::Ambiguous,
    Mistake::WrongLanguage,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Persona {
    pub(super) answer: Answer,
    pub(super) post: Post,
}

impl Persona {
    /// The persona of the `i`th nano of a run with `seed`.
    pub(super) fn draw(seed: u64, i: u64) -> Persona {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i);
        let answer = match rng.random::<f64>() {
            r if r < 0.85 => Answer::Accept,
            r if r < 0.93 => Answer::Decline,
            _ => Answer::Counter,
        };
        let post = match rng.random::<f64>() {
            r if r < 0.05 => Post::Never,
            r if r < 0.15 => Post::Mistake(MISTAKES[rng.random_range(0..MISTAKES.len())]),
            _ => Post::Compliant,
        };
        Persona { answer, post }
    }

    /// The mistake planted in the first caption, by name.
    pub(super) fn mistake(&self) -> Option<&'static str> {
        match self.post {
            Post::Mistake(m) => Some(match m {
                Mistake::Missing => "missing",
                Mistake::Buried => "buried after more",
                Mistake::Ambiguous => "ambiguous tag",
                Mistake::WrongLanguage => "wrong language",
            }),
            _ => None,
        }
    }

    /// The first caption this nano posts, None for one who never does.
    pub(super) fn caption(&self, brand: &str) -> Option<String> {
        match self.post {
            Post::Never => None,
            Post::Compliant => Some(compliant(brand)),
            Post::Mistake(m) => Some(match m {
                Mistake::Missing => format!("Morning walk with {brand}, thanks for the treats #dogsofinstagram"),
                Mistake::Buried => format!(
                    "Morning walk with {brand} along the river, the pup got his favourite treats and we met \
                     three new friends at the park before the rain came in. #dogsofinstagram #ad"
                ),
                Mistake::Ambiguous => format!("#collab Morning walk with {brand}, thanks for the treats"),
                Mistake::WrongLanguage => format!("#anzeige Morning walk with {brand}, thanks for the treats"),
            }),
        }
    }
}

/// A caption with a lawful disclosure up front.
pub(super) fn compliant(brand: &str) -> String {
    format!("#ad Morning walk with {brand}, thanks for the treats")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personas_come_in_the_planted_shares_and_repeat_with_the_seed() {
        let all: Vec<Persona> = (0..10_000).map(|i| Persona::draw(7, i)).collect();
        let share = |f: &dyn Fn(&Persona) -> bool| all.iter().filter(|p| f(p)).count() as f64 / 10_000.0;
        assert!((0.83..0.87).contains(&share(&|p| p.answer == Answer::Accept)));
        assert!((0.06..0.10).contains(&share(&|p| p.answer == Answer::Decline)));
        assert!((0.04..0.06).contains(&share(&|p| p.post == Post::Never)));
        assert!((0.08..0.12).contains(&share(&|p| p.mistake().is_some())));
        assert_eq!(Persona::draw(7, 123), all[123]);
        let buried = Persona {
            answer: Answer::Accept,
            post: Post::Mistake(Mistake::Buried),
        };
        let caption = buried.caption("@b").unwrap();
        assert!(caption.find("#ad").unwrap() > 125, "{caption}");
    }
}
