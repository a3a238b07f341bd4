//! Audit events and their canonical, versioned byte encoding.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use carnet_domain::{PracticeId, Timestamp};
use uuid::Uuid;

/// Which chain an event belongs to: one per practice, plus one for the instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChainId {
    Instance,
    Practice(PracticeId),
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Instance => f.write_str("instance"),
            Self::Practice(id) => write!(f, "practice:{id}"),
        }
    }
}

impl FromStr for ChainId {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "instance" {
            return Ok(Self::Instance);
        }
        let id = text.strip_prefix("practice:").ok_or(())?;
        id.parse().map(Self::Practice).map_err(|_| ())
    }
}

macro_rules! closed_list {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $code:literal, $label:literal;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The stable code stored and hashed. Never change one: old entries use it.
            pub fn code(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)*
                }
            }

            /// French, for the pages.
            pub fn label_fr(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)*
                }
            }

            pub fn parse(code: &str) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

closed_list!(
    /// What happened. A closed list: every event is one of these.
    Action {
        LoginSucceeded => "login_succeeded", "connexion réussie";
        LoginFailed => "login_failed", "connexion refusée";
        SecondFactorFailed => "second_factor_failed", "second facteur refusé";
        SessionLocked => "session_locked", "session verrouillée";
        SessionRevoked => "session_revoked", "session révoquée";
        RecordRead => "record_read", "dossier consulté";
        RecordWritten => "record_written", "dossier modifié";
        DocumentDownloaded => "document_downloaded", "document téléchargé";
        Export => "export", "export";
        Share => "share", "partage";
        PinFailed => "pin_failed", "code PIN erroné";
        PinAccepted => "pin_accepted", "code PIN accepté";
        PinShown => "pin_shown", "code PIN affiché";
        PinChanged => "pin_changed", "code PIN renouvelé";
        DeviceApproved => "device_approved", "appareil approuvé";
        DeviceBlocked => "device_blocked", "appareil bloqué";
        DeviceCertificateRequested => "device_certificate_requested", "certificat d'appareil demandé";
        DeviceCertificateIssued => "device_certificate_issued", "certificat d'appareil délivré";
        DeviceCertificateRefused => "device_certificate_refused", "certificat d'appareil refusé";
        PracticeCreated => "practice_created", "cabinet créé";
        MemberAdded => "member_added", "membre ajouté";
        MemberChanged => "member_changed", "membre modifié";
        MembersListed => "members_listed", "liste des membres consultée";
        ProfessionalIdDecided => "professional_id_decided", "numéro professionnel examiné";
        AdminCreated => "admin_created", "administrateur créé";
        SetupLinkIssued => "setup_link_issued", "lien d'installation émis";
        SecondFactorChanged => "second_factor_changed", "second facteur modifié";
        AuditRead => "audit_read", "journal consulté";
        AuditExported => "audit_exported", "journal exporté";
        KeyRotated => "key_rotated", "clé renouvelée";
        Backup => "backup", "sauvegarde";
        Restored => "restored", "restauration depuis une sauvegarde";
        ConfigurationChanged => "configuration_changed", "configuration modifiée";
        IntegrityFailure => "integrity_failure", "défaut d'intégrité";
    }
);

closed_list!(
    /// How it ended.
    Outcome {
        Success => "success", "réussi";
        Denied => "denied", "refusé";
        Failure => "failure", "échec";
    }
);

closed_list!(
    /// Who acted, by kind.
    ActorKind {
        Operator => "operator", "opérateur (console)";
        PlatformAdmin => "platform_admin", "administrateur de la plateforme";
        Member => "member", "membre du cabinet";
        Anonymous => "anonymous", "anonyme";
        System => "system", "Carnet (tâche automatique)";
    }
);

/// Who acted: the kind, and the ids that apply (account, device, session) with the role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditActor {
    pub kind: ActorKind,
    pub account: Option<Uuid>,
    /// The member's role code (`holder`, `professional`, `staff`) when a member acted.
    pub role: Option<&'static str>,
    pub device: Option<Uuid>,
    pub session: Option<Uuid>,
}

impl AuditActor {
    pub fn of_kind(kind: ActorKind) -> Self {
        Self {
            kind,
            account: None,
            role: None,
            device: None,
            session: None,
        }
    }
}

/// What the event is about: ids only, never content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Targets {
    pub patient: Option<Uuid>,
    pub record: Option<Uuid>,
    pub document: Option<Uuid>,
    pub member: Option<Uuid>,
}

/// One audited fact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub chain: ChainId,
    pub at: Timestamp,
    pub actor: AuditActor,
    pub action: Action,
    pub targets: Targets,
    pub outcome: Outcome,
    /// The request id (ours, never the client's), at most 64 printable ASCII characters.
    pub request_id: Option<String>,
    pub client_address: Option<IpAddr>,
}

/// The version byte of the canonical encoding.
pub const ENCODING_VERSION: u8 = 1;

impl Event {
    /// The canonical bytes of this event at position `seq` after `prev_hash`: versioned,
    /// fixed field order, every variable field length-prefixed, absent values marked, so
    /// two different entries never share an encoding.
    pub fn canonical_bytes(&self, seq: u64, prev_hash: &[u8; 32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"carnet-audit");
        out.push(ENCODING_VERSION);
        put_text(&mut out, &self.chain.to_string());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(prev_hash);
        out.extend_from_slice(&self.at.unix_millis().to_be_bytes());
        put_text(&mut out, self.actor.kind.code());
        put_uuid(&mut out, self.actor.account);
        put_optional_text(&mut out, self.actor.role);
        put_uuid(&mut out, self.actor.device);
        put_uuid(&mut out, self.actor.session);
        put_text(&mut out, self.action.code());
        put_uuid(&mut out, self.targets.patient);
        put_uuid(&mut out, self.targets.record);
        put_uuid(&mut out, self.targets.document);
        put_uuid(&mut out, self.targets.member);
        put_text(&mut out, self.outcome.code());
        put_optional_text(&mut out, self.request_id.as_deref());
        put_optional_text(
            &mut out,
            self.client_address
                .map(|address| address.to_string())
                .as_deref(),
        );
        out
    }
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    let length = u32::try_from(text.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&text.as_bytes()[..length as usize]);
}

fn put_optional_text(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => out.push(0),
        Some(text) => {
            out.push(1);
            put_text(out, text);
        }
    }
}

fn put_uuid(out: &mut Vec<u8>, id: Option<Uuid>) {
    match id {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(id.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for action in Action::ALL {
            assert!(seen.insert(action.code()), "duplicate {}", action.code());
            assert_eq!(Action::parse(action.code()), Some(*action));
        }
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.code()), Some(*outcome));
        }
        for kind in ActorKind::ALL {
            assert_eq!(ActorKind::parse(kind.code()), Some(*kind));
        }
    }

    #[test]
    fn chain_ids_round_trip_through_text() {
        let practice = ChainId::Practice(PracticeId::new_v7(1, &[7; 10]));
        assert_eq!(practice.to_string().parse::<ChainId>(), Ok(practice));
        assert_eq!("instance".parse::<ChainId>(), Ok(ChainId::Instance));
        assert!("practice:nope".parse::<ChainId>().is_err());
    }

    #[test]
    fn absent_and_empty_values_encode_differently() {
        let base = Event {
            chain: ChainId::Instance,
            at: Timestamp::from_unix_millis(1),
            actor: AuditActor::of_kind(ActorKind::System),
            action: Action::Backup,
            targets: Targets::default(),
            outcome: Outcome::Success,
            request_id: None,
            client_address: None,
        };
        let empty = Event {
            request_id: Some(String::new()),
            ..base.clone()
        };
        assert_ne!(
            base.canonical_bytes(1, &[0; 32]),
            empty.canonical_bytes(1, &[0; 32])
        );
        assert_ne!(
            base.canonical_bytes(1, &[0; 32]),
            base.canonical_bytes(2, &[0; 32])
        );
    }
}
