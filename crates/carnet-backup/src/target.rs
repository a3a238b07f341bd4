//! Backup targets: where repositories live, named by the operator.

use std::path::PathBuf;

use carnet_service::S3Settings;

/// One backup target: a repository on a local (or mounted) disk, or in an S3-compatible
/// bucket.
#[derive(Clone, Debug)]
pub struct Target {
    /// Short name (`disque`, `hors-site`): letters, digits and dashes.
    pub name: String,
    pub location: Location,
    /// The server's credentials can add but not delete (ransomware posture): the server
    /// never forgets or prunes here; `carnet backup prune` runs elsewhere.
    pub append_only: bool,
}

#[derive(Clone, Debug)]
pub enum Location {
    Local(PathBuf),
    S3(S3Settings),
}

/// Why a target description was refused (one French sentence).
#[derive(Debug, thiserror::Error)]
#[error("cible de sauvegarde « {spec} » : {reason}")]
pub struct TargetSpecError {
    spec: String,
    reason: &'static str,
}

/// What an S3 target needs besides its address.
#[derive(Clone, Debug, Default)]
pub struct S3Credentials {
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Target {
    /// Parses `NAME=/absolute/path` or `NAME=s3:https://host[:port]/bucket[/prefix]`
    /// (the address form restic uses, so the same string works with `restic -r`).
    pub fn parse(spec: &str, s3: &S3Credentials) -> Result<Self, TargetSpecError> {
        let refuse = |reason| TargetSpecError {
            spec: spec.to_owned(),
            reason,
        };
        let (name, address) = spec
            .split_once('=')
            .ok_or_else(|| refuse("attendu NOM=/chemin ou NOM=s3:https://hôte/seau/préfixe"))?;
        let name_ok = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            return Err(refuse(
                "le nom doit faire 1 à 32 caractères parmi a-z, 0-9 et le tiret",
            ));
        }
        let location = if let Some(url) = address.strip_prefix("s3:") {
            let (scheme, rest) = url
                .split_once("://")
                .ok_or_else(|| refuse("l'adresse S3 doit commencer par https://"))?;
            let mut parts = rest.splitn(3, '/');
            let host = parts.next().unwrap_or_default();
            let bucket = parts.next().unwrap_or_default();
            let prefix = parts.next().unwrap_or_default().trim_matches('/');
            if host.is_empty() || bucket.is_empty() {
                return Err(refuse("l'adresse S3 doit nommer l'hôte et le seau"));
            }
            if s3.access_key_id.is_empty() || s3.secret_access_key.is_empty() {
                return Err(refuse(
                    "une cible S3 demande backup_s3_access_key_id et backup_s3_secret_access_key",
                ));
            }
            Location::S3(S3Settings {
                endpoint: format!("{scheme}://{host}"),
                region: s3.region.clone(),
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
                access_key_id: s3.access_key_id.clone(),
                secret_access_key: s3.secret_access_key.clone(),
            })
        } else {
            let path = PathBuf::from(address);
            if !path.is_absolute() {
                return Err(refuse("le chemin d'une cible locale doit être absolu"));
            }
            Location::Local(path)
        };
        Ok(Self {
            name: name.to_owned(),
            location,
            append_only: false,
        })
    }

    /// Where the repository is, without secrets (for messages and the monitoring page).
    pub fn address(&self) -> String {
        match &self.location {
            Location::Local(path) => path.display().to_string(),
            Location::S3(s3) => {
                let prefix = if s3.prefix.is_empty() {
                    String::new()
                } else {
                    format!("/{}", s3.prefix)
                };
                format!("s3:{}/{}{prefix}", s3.endpoint, s3.bucket)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Location, S3Credentials, Target};

    fn credentials() -> S3Credentials {
        S3Credentials {
            region: "eu-west-3".into(),
            access_key_id: "id".into(),
            secret_access_key: "secret".into(),
        }
    }

    #[test]
    fn local_and_s3_targets_parse() {
        let local = Target::parse("disque=/mnt/sauvegarde", &credentials()).expect("local");
        assert_eq!(local.name, "disque");
        assert!(
            matches!(local.location, Location::Local(ref p) if p.as_os_str() == "/mnt/sauvegarde")
        );
        let s3 = Target::parse(
            "hors-site=s3:https://s3.example.fr/seau/carnet/cabinet",
            &credentials(),
        )
        .expect("s3");
        let Location::S3(settings) = &s3.location else {
            panic!("an S3 target")
        };
        assert_eq!(settings.endpoint, "https://s3.example.fr");
        assert_eq!(settings.bucket, "seau");
        assert_eq!(settings.prefix, "carnet/cabinet");
        assert_eq!(settings.region, "eu-west-3");
        assert_eq!(s3.address(), "s3:https://s3.example.fr/seau/carnet/cabinet");
    }

    #[test]
    fn bad_targets_are_refused_with_a_reason() {
        for (spec, reason) in [
            ("/mnt/sauvegarde", "attendu NOM="),
            ("Disque=/mnt/x", "le nom doit"),
            ("disque=relatif/x", "absolu"),
            ("s=s3:s3.example.fr/seau", "https://"),
            ("s=s3:https://s3.example.fr", "le seau"),
        ] {
            let error = Target::parse(spec, &credentials()).expect_err(spec);
            assert!(error.to_string().contains(reason), "{spec}: {error}");
        }
        let error = Target::parse("s=s3:https://h/b", &S3Credentials::default())
            .expect_err("no credentials");
        assert!(error.to_string().contains("backup_s3_access_key_id"));
    }
}
