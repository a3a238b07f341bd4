//! How the command line ends: an exit code and one sentence for the operator.

use std::fmt;

/// Exit code for a refusal to run with the given configuration, keys or data (EX_CONFIG).
pub const EXIT_REFUSED: u8 = 78;
/// Exit code for a failure while running.
pub const EXIT_FAILED: u8 = 1;

/// An error that ends the program.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    /// Carnet refuses to start or run: configuration, keys or data are not acceptable.
    pub fn refusal(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_REFUSED,
            message: message.into(),
        }
    }

    /// Something failed while running.
    pub fn failure(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_FAILED,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<crate::config::ConfigError> for CliError {
    fn from(error: crate::config::ConfigError) -> Self {
        Self::refusal(error.to_string())
    }
}
