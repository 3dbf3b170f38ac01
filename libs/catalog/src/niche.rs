//! The niche taxonomy: the fixed list of interest ids an influencer can be tagged with, so that
//! briefs and profiles speak the same words. Documented in docs/niches.md; add ids, never
//! rename them.

/// Every niche id with a one-line meaning.
pub const NICHES: &[(&str, &str)] = &[
    ("fashion", "clothing, style, outfits"),
    ("beauty", "make-up, skincare, hair"),
    ("fitness", "training, gyms, running"),
    ("wellness", "mental health, sleep, mindfulness"),
    ("food", "cooking, recipes, restaurants"),
    ("vegan-food", "plant-based cooking and products"),
    ("travel", "destinations, hotels, travel tips"),
    ("parenting", "babies, kids, family life"),
    ("pets", "dogs, cats, pet care"),
    ("gaming", "video games, streaming, esports"),
    ("tech", "gadgets, software, reviews"),
    ("finance", "personal finance, investing"),
    ("home-decor", "interiors, furniture, decoration"),
    ("diy", "crafts, making, repairs"),
    ("outdoors", "hiking, camping, nature"),
    ("sports", "team sports, fandom"),
    ("music", "musicians, gear, concerts"),
    ("art", "illustration, painting, photography"),
    ("books", "reading, reviews, writing"),
    ("education", "learning, teaching, study tips"),
    ("sustainability", "zero waste, ethical products"),
    ("lifestyle", "everyday life, vlogs"),
    ("comedy", "humour, sketches"),
    ("automotive", "cars, motorbikes"),
];

/// Whether `id` is a niche of the taxonomy.
pub fn is_known(id: &str) -> bool {
    NICHES.iter().any(|(n, _)| *n == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_lowercase_slugs() {
        let mut seen = std::collections::HashSet::new();
        for (id, _) in NICHES {
            assert!(seen.insert(*id), "{id} twice");
            assert!(
                id.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{id} is not a slug"
            );
        }
        assert!(is_known("vegan-food"));
        assert!(!is_known("Vegan"));
    }

    #[test]
    fn the_documented_table_is_this_list() {
        let doc = include_str!("../../../docs/niches.md");
        let rows: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| "))
            .filter_map(|l| l.split(" |").next())
            .filter(|id| *id != "id" && !id.starts_with('-'))
            .collect();
        let ids: Vec<&str> = NICHES.iter().map(|(id, _)| *id).collect();
        assert_eq!(rows, ids, "docs/niches.md lists exactly the taxonomy, in order");
    }
}
