//! The words every service uses about influencers, defined once: the niche taxonomy, the
//! follower tiers and the engagement each tier normally shows, the currencies money is in and money itself (`Money`), and
//! how a vetting score says what it rests on. The registry classifies with them; matching
//! scores briefs with them.

pub mod currency;
pub mod evidence;
pub mod money;
pub mod niche;
pub mod norms;
pub mod tier;
