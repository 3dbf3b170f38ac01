//! Contracts: offers, signed machine-readable contracts, deliverables, and the ad-disclosure
//! checker. A service of the kit's runtime: its binary and `chorus up` both run [`SERVICE`].

pub mod domain;
