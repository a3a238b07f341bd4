//! `carnet member …`: the operator creates a practice's first holders and their
//! activation codes (holders then create the other members in the application).

use carnet_domain::{MemberId, PracticeId};
use carnet_service::{Caller, NewMemberInput, PracticeAction, ServiceError};

use crate::config::Config;
use crate::exit::CliError;
use crate::instance::{self, OpenMode};
use crate::output::say;

#[derive(Debug, clap::Subcommand)]
pub enum MemberCommand {
    /// Adds a holder (titulaire) to a practice and prints their id and activation code.
    AddHolder {
        #[arg(long)]
        practice: PracticeId,
        /// The holder's name, e.g. "Anne Martin".
        #[arg(long)]
        name: String,
        /// Telephone, to give the activation code by (out of band).
        #[arg(long)]
        phone: String,
        /// RPPS (11 digits) or ADELI (9 digits) number.
        #[arg(long)]
        professional_id: String,
    },
    /// Issues a new activation code for a holder (replacing the previous one).
    ActivationCode {
        #[arg(long)]
        practice: PracticeId,
        #[arg(long)]
        member: MemberId,
    },
}

pub async fn run(config: &Config, command: &MemberCommand) -> Result<(), CliError> {
    let instance = instance::open(config, OpenMode::MustExist).await?;
    let services = &instance.services;
    let caller = Caller::operator();
    let result = async {
        match command {
            MemberCommand::AddHolder {
                practice,
                name,
                phone,
                professional_id,
            } => {
                let scope = services
                    .authorize(&caller, *practice, PracticeAction::AddMember)
                    .await?;
                let input = NewMemberInput {
                    name: name.clone(),
                    role: "holder".into(),
                    phone: phone.clone(),
                    professional_id_kind: None,
                    professional_id_number: Some(professional_id.clone()),
                };
                let member = services.add_member(&scope, &input).await?;
                let (code, expires_at) = services.issue_activation_code(&scope, member.id).await?;
                say(&format!("membre : {}", member.id));
                say(&format!(
                    "code d'activation : {code} (valable jusqu'au {})",
                    expires_at.to_french_text()
                ));
                Ok::<_, ServiceError>(())
            }
            MemberCommand::ActivationCode { practice, member } => {
                let scope = services
                    .authorize(&caller, *practice, PracticeAction::AddMember)
                    .await?;
                let (code, expires_at) = services.issue_activation_code(&scope, *member).await?;
                say(&format!(
                    "code d'activation : {code} (valable jusqu'au {})",
                    expires_at.to_french_text()
                ));
                Ok(())
            }
        }
    }
    .await;
    instance.store.close().await;
    result.map_err(|error| match error {
        ServiceError::Invalid { .. } | ServiceError::NotFound | ServiceError::Forbidden => {
            CliError::refusal(error.to_string())
        }
        other => CliError::failure(other.to_string()),
    })
}
