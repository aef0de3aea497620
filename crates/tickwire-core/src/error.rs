//! The errors of configuration: one bad field ([`FieldError`], shared by every
//! section's checks) and the whole file's ([`ConfigError`]), which names every
//! bad field at once.

use std::fmt;
use std::path::PathBuf;

/// One bad field: its dotted path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config is not valid TOML: {0}")]
    Syntax(String),
    #[error("invalid config ({} problem{}):\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, list(.0))]
    Invalid(Vec<FieldError>),
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// The bad fields, when the file parsed but its values did not pass.
    pub fn fields(&self) -> &[FieldError] {
        match self {
            ConfigError::Invalid(f) => f,
            _ => &[],
        }
    }
}

/// Adds a [`FieldError`] for `field` to `errors` unless `ok`: the shape of
/// every range check.
pub(crate) fn check(errors: &mut Vec<FieldError>, ok: bool, field: &str, message: String) {
    if !ok {
        errors.push(FieldError::new(field, message));
    }
}
