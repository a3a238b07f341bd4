//! `carnet practice …`: the operator's commands for the practices of the local instance.

use carnet_service::{Caller, NewPracticeInput, ServiceError};

use crate::config::Config;
use crate::exit::CliError;
use crate::instance::{self, OpenMode};
use crate::output::say;

#[derive(Debug, clap::Subcommand)]
pub enum PracticeCommand {
    /// Creates a practice and prints its id.
    Create {
        /// The practice's name, e.g. "Cabinet infirmier des Tilleuls".
        #[arg(long)]
        name: String,
        /// Postal address, one line.
        #[arg(long)]
        address: String,
        /// nurse, physician, dentist, physiotherapist or midwife.
        #[arg(long)]
        profession: String,
    },
    /// Lists the practices: id, profession, creation date, name.
    List,
}

pub async fn run(config: &Config, command: &PracticeCommand) -> Result<(), CliError> {
    let instance = instance::open(config, OpenMode::MustExist).await?;
    let services = &instance.services;
    let result = match command {
        PracticeCommand::Create {
            name,
            address,
            profession,
        } => {
            let input = NewPracticeInput {
                name: name.clone(),
                address: address.clone(),
                profession: profession.clone(),
            };
            services
                .create_practice(&Caller::operator(), &input)
                .await
                .map(|practice| say(&practice.id.to_string()))
        }
        PracticeCommand::List => {
            services
                .list_practices(&Caller::operator())
                .await
                .map(|practices| {
                    for practice in practices {
                        say(&format!(
                            "{}\t{}\t{}\t{}",
                            practice.id,
                            practice.profession.as_str(),
                            practice.created_at.to_rfc3339(),
                            practice.name.as_str()
                        ));
                    }
                })
        }
    };
    instance.store.close().await;
    result.map_err(|error| match error {
        ServiceError::Invalid { .. } => CliError::refusal(error.to_string()),
        other => CliError::failure(other.to_string()),
    })
}
