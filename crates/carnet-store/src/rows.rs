//! Decoding of stored rows into domain values, written once for both backends.
//!
//! Each macro expands where it is used, inside `on_backend!`, so `row` is a concrete
//! `SqliteRow` or `PgRow`; the conversions from columns to checked domain types are
//! shared plain functions. A stored value that no longer parses is reported as
//! [`crate::StoreError::Corrupt`], never a panic.

use carnet_domain::{
    Address, AdminId, Member, MemberId, MemberName, Phone, Practice, PracticeId, PracticeName,
    Profession, ProfessionalId, ProfessionalIdState, ProfessionalIdStatus, Role, Timestamp,
};
use uuid::Uuid;

use crate::StoreError;

/// Decodes a practice row (`id, name, address, profession, created_at`).
macro_rules! practice {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = $row;
        $crate::rows::practice_from_columns(
            row.try_get("id")?,
            &row.try_get::<String, _>("name")?,
            &row.try_get::<String, _>("address")?,
            &row.try_get::<String, _>("profession")?,
            row.try_get("created_at")?,
        )
    }};
}
pub(crate) use practice;

/// Decodes a member row joined with its latest decision (see `members_query!`).
macro_rules! member {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = $row;
        let state = $crate::rows::decision_from_columns(
            row.try_get("decision_status")?,
            row.try_get("decided_by")?,
            row.try_get("decided_at")?,
            row.try_get("reason")?,
        )?;
        $crate::rows::member_from_columns(
            $crate::rows::MemberColumns {
                id: row.try_get("id")?,
                practice_id: row.try_get("practice_id")?,
                name: row.try_get("name")?,
                role: row.try_get("role")?,
                phone: row.try_get("phone")?,
                professional_id_kind: row.try_get("professional_id_kind")?,
                professional_id_number: row.try_get("professional_id_number")?,
                created_at: row.try_get("created_at")?,
            },
            state,
        )
    }};
}
pub(crate) use member;

/// Decodes one professional-number decision row.
macro_rules! decision {
    ($row:expr) => {{
        use sqlx::Row as _;
        let row = $row;
        $crate::rows::decision_from_columns(
            row.try_get("decision_status")?,
            row.try_get("decided_by")?,
            row.try_get("decided_at")?,
            row.try_get("reason")?,
        )
    }};
}
pub(crate) use decision;

pub(crate) fn practice_from_columns(
    id: Uuid,
    name: &str,
    address: &str,
    profession: &str,
    created_at: i64,
) -> Result<Practice, StoreError> {
    Ok(Practice {
        id: PracticeId::from_uuid(id),
        name: PracticeName::parse(name).map_err(|_| StoreError::Corrupt("practice name"))?,
        address: Address::parse(address).map_err(|_| StoreError::Corrupt("practice address"))?,
        profession: Profession::parse(profession)
            .map_err(|_| StoreError::Corrupt("practice profession"))?,
        created_at: Timestamp::from_unix_millis(created_at),
    })
}

pub(crate) struct MemberColumns {
    pub id: Uuid,
    pub practice_id: Uuid,
    pub name: String,
    pub role: String,
    pub phone: String,
    pub professional_id_kind: Option<String>,
    pub professional_id_number: Option<String>,
    pub created_at: i64,
}

pub(crate) fn member_from_columns(
    columns: MemberColumns,
    professional_id_state: ProfessionalIdState,
) -> Result<Member, StoreError> {
    let professional_id = match (columns.professional_id_kind, columns.professional_id_number) {
        (Some(kind), Some(number)) => Some(
            ProfessionalId::parse(&kind, &number)
                .map_err(|_| StoreError::Corrupt("member professional number"))?,
        ),
        (None, None) => None,
        _ => return Err(StoreError::Corrupt("member professional number")),
    };
    Ok(Member {
        id: MemberId::from_uuid(columns.id),
        practice_id: PracticeId::from_uuid(columns.practice_id),
        name: MemberName::parse(&columns.name).map_err(|_| StoreError::Corrupt("member name"))?,
        role: Role::parse(&columns.role).map_err(|_| StoreError::Corrupt("member role"))?,
        phone: Phone::parse(&columns.phone).map_err(|_| StoreError::Corrupt("member phone"))?,
        professional_id,
        professional_id_state,
        created_at: Timestamp::from_unix_millis(columns.created_at),
    })
}

pub(crate) fn decision_from_columns(
    status: Option<String>,
    decided_by: Option<Uuid>,
    decided_at: Option<i64>,
    reason: Option<String>,
) -> Result<ProfessionalIdState, StoreError> {
    match (status, decided_by, decided_at, reason) {
        (None, None, None, None) => Ok(ProfessionalIdState::Pending),
        (Some(status), Some(by), Some(at), Some(reason)) => {
            let status = ProfessionalIdStatus::parse(&status)
                .filter(|status| *status != ProfessionalIdStatus::Pending)
                .ok_or(StoreError::Corrupt("decision status"))?;
            Ok(ProfessionalIdState::Decided {
                status,
                by: AdminId::from_uuid(by),
                at: Timestamp::from_unix_millis(at),
                reason,
            })
        }
        _ => Err(StoreError::Corrupt("decision columns")),
    }
}
