//! The instance itself: which key it was created with, and whether it is ready to serve.

use carnet_crypto::InstanceKey;
use carnet_store::{MigrationStatus, StoreError};

use crate::Services;

const KEY_CHECK: &str = "instance_key_check";
const AUDIT_PUBLIC_KEY: &str = "audit_public_key";

/// The outcome of comparing the instance key with the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceKeyCheck {
    /// The database had no key recorded: this key is now recorded as its key.
    Recorded,
    /// The key is the one the database was created with.
    Matches,
    /// The key is not the database's key: the server must not start.
    Mismatch,
}

/// Whether the instance can serve requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub database_reachable: bool,
    pub migrations_current: bool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.database_reachable && self.migrations_current
    }
}

impl Services {
    /// Compares `key` with the database's recorded key check value, recording it when the
    /// database has none yet (first start).
    pub async fn check_instance_key(
        &self,
        key: &InstanceKey,
    ) -> Result<InstanceKeyCheck, StoreError> {
        match self.store.instance_meta(KEY_CHECK).await? {
            Some(stored) if key.matches_check_value(&stored) => Ok(InstanceKeyCheck::Matches),
            Some(_) => Ok(InstanceKeyCheck::Mismatch),
            None => {
                self.store
                    .insert_instance_meta(KEY_CHECK, &key.check_value(), self.now())
                    .await?;
                Ok(InstanceKeyCheck::Recorded)
            }
        }
    }

    /// Compares the audit public key with the one recorded at the instance's creation,
    /// recording it on first start: a replaced audit key is refused like a wrong
    /// instance key (it could sign forged checkpoints).
    pub async fn check_audit_public_key(
        &self,
        public_key: &[u8],
    ) -> Result<InstanceKeyCheck, StoreError> {
        match self.store.instance_meta(AUDIT_PUBLIC_KEY).await? {
            Some(stored) if stored == public_key => Ok(InstanceKeyCheck::Matches),
            Some(_) => Ok(InstanceKeyCheck::Mismatch),
            None => {
                self.store
                    .insert_instance_meta(AUDIT_PUBLIC_KEY, public_key, self.now())
                    .await?;
                Ok(InstanceKeyCheck::Recorded)
            }
        }
    }

    /// Whether the database was ever given an instance key (it holds data of an instance).
    pub async fn has_recorded_instance_key(&self) -> Result<bool, StoreError> {
        Ok(self.store.instance_meta(KEY_CHECK).await?.is_some())
    }

    /// Database reachable and schema current.
    pub async fn readiness(&self) -> Readiness {
        let database_reachable = self.store.ping().await.is_ok();
        let migrations_current = database_reachable
            && self
                .store
                .migration_status()
                .await
                .as_ref()
                .is_ok_and(MigrationStatus::is_current);
        Readiness {
            database_reachable,
            migrations_current,
        }
    }
}
