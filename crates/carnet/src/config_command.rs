//! `carnet config check` and `carnet config example`.

use crate::config::Config;
use crate::exit::CliError;
use crate::output::say;

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Checks the configuration (file, environment, flags) and prints it, secrets hidden.
    Check,
    /// Prints the documented example configuration (carnet.example.toml).
    Example,
}

pub fn run(config: &Config, command: &ConfigCommand) -> Result<(), CliError> {
    match command {
        ConfigCommand::Check => {
            crate::tls::check_files(config)?;
            say("Configuration valide :");
            say(config.to_redacted_toml().trim_end());
        }
        ConfigCommand::Example => say(crate::config::example_file().trim_end()),
    }
    Ok(())
}
