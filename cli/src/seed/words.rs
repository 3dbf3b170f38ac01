//! The word lists the synthetic population draws from: the niche taxonomy (exactly the ids
//! the registry accepts), weighted cities with their regions and languages, given names and
//! family names per language, and the words handles are made of.

/// Niche ids of the taxonomy (docs/niches.md) with how common each is among nanos.
pub(crate) const NICHES: &[(&str, u32)] = &[
    ("fashion", 10),
    ("beauty", 9),
    ("fitness", 8),
    ("wellness", 6),
    ("food", 9),
    ("vegan-food", 3),
    ("travel", 7),
    ("parenting", 5),
    ("pets", 5),
    ("gaming", 5),
    ("tech", 4),
    ("finance", 3),
    ("home-decor", 4),
    ("diy", 3),
    ("outdoors", 4),
    ("sports", 4),
    ("music", 4),
    ("art", 3),
    ("books", 3),
    ("education", 2),
    ("sustainability", 3),
    ("lifestyle", 10),
    ("comedy", 4),
    ("automotive", 2),
];

/// A city people live in: region is the ISO 3166-2 subdivision code without the country.
#[derive(Debug)]
pub(crate) struct City {
    pub(crate) name: &'static str,
    pub(crate) region: &'static str,
    pub(crate) country: &'static str,
    pub(crate) weight: u32,
    /// Language lists (first is the main one) and how common each is there.
    pub(crate) languages: &'static [(&'static [&'static str], u32)],
}

type Languages = &'static [(&'static [&'static str], u32)];

const US: Languages = &[(&["en"], 82), (&["en", "es"], 13), (&["es", "en"], 5)];
const US_BILINGUAL: Languages = &[(&["en"], 55), (&["en", "es"], 25), (&["es", "en"], 20)];
const GB: Languages = &[(&["en"], 92), (&["en", "fr"], 4), (&["en", "es"], 4)];
const DE: Languages = &[(&["de"], 50), (&["de", "en"], 50)];
const FR: Languages = &[(&["fr"], 60), (&["fr", "en"], 40)];
const ES: Languages = &[(&["es"], 60), (&["es", "en"], 40)];
const CA: Languages = &[(&["en"], 80), (&["en", "fr"], 20)];
const QC: Languages = &[(&["fr", "en"], 60), (&["fr"], 20), (&["en", "fr"], 20)];
const MX: Languages = &[(&["es"], 70), (&["es", "en"], 30)];

const fn city(
    name: &'static str,
    region: &'static str,
    country: &'static str,
    weight: u32,
    languages: Languages,
) -> City {
    City {
        name,
        region,
        country,
        weight,
        languages,
    }
}

/// About four in five live in the US.
pub(crate) const CITIES: &[City] = &[
    city("New York", "NY", "US", 10, US),
    city("Los Angeles", "CA", "US", 9, US_BILINGUAL),
    city("Chicago", "IL", "US", 6, US),
    city("Houston", "TX", "US", 4, US_BILINGUAL),
    city("Austin", "TX", "US", 5, US),
    city("Dallas", "TX", "US", 3, US),
    city("Denver", "CO", "US", 4, US),
    city("Seattle", "WA", "US", 4, US),
    city("Portland", "OR", "US", 3, US),
    city("San Francisco", "CA", "US", 4, US),
    city("San Diego", "CA", "US", 3, US_BILINGUAL),
    city("Miami", "FL", "US", 4, US_BILINGUAL),
    city("Orlando", "FL", "US", 2, US),
    city("Atlanta", "GA", "US", 4, US),
    city("Boston", "MA", "US", 3, US),
    city("Nashville", "TN", "US", 3, US),
    city("Phoenix", "AZ", "US", 3, US_BILINGUAL),
    city("Minneapolis", "MN", "US", 2, US),
    city("Philadelphia", "PA", "US", 3, US),
    city("Washington", "DC", "US", 3, US),
    city("Salt Lake City", "UT", "US", 2, US),
    city("New Orleans", "LA", "US", 2, US),
    city("London", "ENG", "GB", 5, GB),
    city("Manchester", "ENG", "GB", 2, GB),
    city("Berlin", "BE", "DE", 3, DE),
    city("Munich", "BY", "DE", 2, DE),
    city("Hamburg", "HH", "DE", 1, DE),
    city("Paris", "IDF", "FR", 3, FR),
    city("Lyon", "ARA", "FR", 1, FR),
    city("Madrid", "MD", "ES", 2, ES),
    city("Barcelona", "CT", "ES", 2, ES),
    city("Toronto", "ON", "CA", 3, CA),
    city("Vancouver", "BC", "CA", 2, CA),
    city("Montreal", "QC", "CA", 2, QC),
    city("Mexico City", "CMX", "MX", 3, MX),
    city("Guadalajara", "JAL", "MX", 1, MX),
    city("Monterrey", "NLE", "MX", 1, MX),
];

/// Given and family names of one language.
#[derive(Debug)]
pub(crate) struct NameSet {
    pub(crate) first: &'static [&'static str],
    pub(crate) last: &'static [&'static str],
}

const ENGLISH: NameSet = NameSet {
    first: &[
        "Emma", "Olivia", "Ava", "Sophia", "Mia", "Harper", "Chloe", "Grace", "Zoe", "Lily", "Maya", "Nora", "Hannah",
        "Aria", "Leah", "Liam", "Noah", "Ethan", "Mason", "Lucas", "Jack", "Owen", "Caleb", "Ryan", "Jordan", "Taylor",
        "Alex", "Sam", "Jamie", "Riley",
    ],
    last: &[
        "Smith", "Johnson", "Brown", "Garcia", "Miller", "Davis", "Wilson", "Anderson", "Thomas", "Moore", "Martin",
        "Lee", "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Carter",
        "Mitchell", "Turner", "Parker", "Collins", "Murphy", "Cooper", "Reed", "Nguyen", "Patel", "Kim", "Chen",
    ],
};

const SPANISH: NameSet = NameSet {
    first: &[
        "Sofía",
        "Valentina",
        "Camila",
        "Lucía",
        "Isabella",
        "Daniela",
        "Mariana",
        "Paula",
        "Elena",
        "Carmen",
        "Mateo",
        "Santiago",
        "Diego",
        "Alejandro",
        "Javier",
        "Pablo",
        "Andrés",
        "Carlos",
        "Luis",
        "Miguel",
    ],
    last: &[
        "García",
        "Martínez",
        "López",
        "Hernández",
        "González",
        "Rodríguez",
        "Pérez",
        "Sánchez",
        "Ramírez",
        "Torres",
        "Flores",
        "Rivera",
        "Gómez",
        "Díaz",
        "Morales",
        "Ortiz",
        "Castillo",
        "Romero",
        "Vargas",
        "Ruiz",
    ],
};

const GERMAN: NameSet = NameSet {
    first: &[
        "Anna",
        "Lena",
        "Lea",
        "Hannah",
        "Mia",
        "Laura",
        "Julia",
        "Sophie",
        "Marie",
        "Emilia",
        "Lukas",
        "Leon",
        "Finn",
        "Jonas",
        "Paul",
        "Felix",
        "Maximilian",
        "Elias",
        "Noah",
        "Tim",
    ],
    last: &[
        "Müller",
        "Schmidt",
        "Schneider",
        "Fischer",
        "Weber",
        "Meyer",
        "Wagner",
        "Becker",
        "Schulz",
        "Hoffmann",
        "Koch",
        "Richter",
        "Klein",
        "Wolf",
        "Neumann",
        "Schwarz",
        "Braun",
        "Zimmermann",
        "Krüger",
        "Hartmann",
    ],
};

const FRENCH: NameSet = NameSet {
    first: &[
        "Emma", "Louise", "Chloé", "Inès", "Léa", "Manon", "Camille", "Jade", "Alice", "Lina", "Gabriel", "Louis",
        "Hugo", "Arthur", "Jules", "Raphaël", "Lucas", "Nathan", "Théo", "Adam",
    ],
    last: &[
        "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon",
        "Laurent", "Lefebvre", "Michel", "Garnier", "Rousseau", "Fournier", "Girard", "Bonnet", "Lambert",
    ],
};

/// Names for a person whose main language is `language`.
pub(crate) fn names(language: &str) -> &'static NameSet {
    match language {
        "es" => &SPANISH,
        "de" => &GERMAN,
        "fr" => &FRENCH,
        _ => &ENGLISH,
    }
}

pub(crate) const ADJECTIVES: &[&str] = &[
    "sunny", "wild", "cozy", "urban", "little", "happy", "golden", "lazy", "brave", "quiet", "salty", "spicy", "green",
    "daily", "simple", "curious", "rustic", "bold", "lucky", "mellow", "vivid", "humble", "fresh", "nomad", "cosmic",
    "gentle", "misty", "bright", "sweet", "local", "retro", "tiny",
];

pub(crate) const NOUNS: &[&str] = &[
    "fox", "kitchen", "trail", "studio", "bee", "nest", "wanderer", "lens", "sprout", "table", "runner", "garden",
    "pixel", "maker", "bloom", "paws", "journal", "atlas", "canvas", "crumb", "tribe", "wave", "summit", "closet",
    "beats", "page", "spoon", "lab", "grove", "roots", "ride", "pantry",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_niche_ids_are_the_taxonomy() {
        let ids: Vec<&str> = NICHES.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), 24);
        for id in [
            "fashion",
            "vegan-food",
            "home-decor",
            "diy",
            "sustainability",
            "automotive",
        ] {
            assert!(ids.contains(&id), "{id}");
        }
    }

    #[test]
    fn tables_are_never_empty_and_mostly_us() {
        assert!(CITIES.iter().all(|c| !c.languages.is_empty() && c.weight > 0));
        let total: u32 = CITIES.iter().map(|c| c.weight).sum();
        let us: u32 = CITIES.iter().filter(|c| c.country == "US").map(|c| c.weight).sum();
        let share = f64::from(us) / f64::from(total);
        assert!((0.7..0.85).contains(&share), "{share}");
        for lang in ["en", "es", "de", "fr"] {
            assert!(!names(lang).first.is_empty() && !names(lang).last.is_empty());
        }
    }
}
