//! The one way an audience test can refuse to run: settings out of range. Data never makes it
//! fail; too little data is a result ("not enough data yet").

/// Settings out of range, each named by its field in [`crate::Config`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audience test settings out of range: {}", fields.join(", "))]
pub struct ConfigError {
    /// The fields of [`crate::Config`] that are out of range.
    pub fields: Vec<&'static str>,
}
