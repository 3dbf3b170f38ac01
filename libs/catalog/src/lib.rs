//! The words every service uses about influencers, defined once: the niche taxonomy, the
//! follower tiers and the engagement each tier normally shows, and the currencies money is
//! in. The registry classifies with them; matching scores briefs with them.

pub mod currency;
pub mod niche;
pub mod norms;
pub mod tier;
