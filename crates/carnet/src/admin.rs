//! `carnet admin …`, and the setup link `carnet serve` prints on an instance without a
//! platform administrator.

use carnet_service::{Caller, Services};

use crate::config::Config;
use crate::exit::CliError;
use crate::instance::{self, OpenMode};
use crate::output::say;

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Prints a one-time link (valid 1 hour) that creates the first platform
    /// administrator; any earlier unused link stops working. Refused once an
    /// administrator exists.
    Bootstrap,
}

pub async fn run(config: &Config, command: &AdminCommand) -> Result<(), CliError> {
    match command {
        AdminCommand::Bootstrap => {
            let instance = instance::open(config, OpenMode::CreateIfMissing).await?;
            let link = setup_link(config, &instance.services).await?;
            instance.store.close().await;
            match link {
                Some(link) => {
                    say(&link);
                    Ok(())
                }
                None => Err(CliError::refusal(
                    "un administrateur de la plateforme existe déjà : aucun lien d'installation \
                     n'est émis (un administrateur crée les suivants)",
                )),
            }
        }
    }
}

/// On an instance without administrator, prints a fresh setup link (the links are
/// stored hashed: an earlier one cannot be shown again, so each start issues a new one
/// and retires the unused ones).
pub async fn print_setup_link_if_needed(
    config: &Config,
    services: &Services,
) -> Result<(), CliError> {
    if let Some(link) = setup_link(config, services).await? {
        say(&format!(
            "Aucun administrateur : créez le premier avec ce lien (valable 1 heure, une seule \
             fois) :\n{link}"
        ));
    }
    Ok(())
}

async fn setup_link(config: &Config, services: &Services) -> Result<Option<String>, CliError> {
    let origin = config
        .public_origin()
        .map_err(|error| CliError::refusal(error.to_string()))?;
    let issued = services
        .issue_setup_link(&Caller::operator())
        .await
        .map_err(|error| CliError::failure(format!("lien d'installation impossible ({error})")))?;
    Ok(issued.map(|link| format!("{origin}/installation?jeton={}", link.token.expose())))
}
