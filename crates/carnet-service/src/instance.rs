//! The instance itself: which key it was created with, and whether it is ready to serve.

use carnet_audit::{Action, ChainId, Outcome, Targets};
use carnet_crypto::{InstanceKey, KeyMaterial};
use carnet_store::{MigrationStatus, StoreError};

use crate::{Actor, Caller, ServiceError, Services};

const KEY_CHECK: &str = "instance_key_check";
/// The instance root, wrapped by the instance key (ADR 0011).
const ROOT: &str = "instance_root";
/// How instances made before the root was wrapped derived it from their first key.
const DERIVED_ROOT_PURPOSE: &str = "carnet/authentication/v1";
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

    /// The instance root: the secret that every instance-level key (practice key
    /// wrapping, TOTP secrets, the PIN, the device authority, code hashing) is derived
    /// from, kept in the database wrapped by the instance key. A new instance draws it at
    /// random (`new_instance`); an instance made before the root was wrapped gets its old
    /// root (derived from its first key) recorded, unchanged, so its data still opens.
    /// Call after [`Services::check_instance_key`].
    pub async fn instance_root(
        &self,
        key: &InstanceKey,
        new_instance: bool,
    ) -> Result<KeyMaterial, ServiceError> {
        if let Some(wrapped) = self.store.instance_meta(ROOT).await? {
            return key
                .unwrap_root(&wrapped)
                .map_err(|_| ServiceError::Integrity);
        }
        let root = if new_instance {
            KeyMaterial::generate(self.random.as_ref()).map_err(|_| ServiceError::Randomness)?
        } else {
            key.derive(DERIVED_ROOT_PURPOSE)
                .map_err(|_| ServiceError::Randomness)?
        };
        let wrapped = key
            .wrap_root(&root, self.random.as_ref())
            .map_err(|_| ServiceError::Randomness)?;
        match self
            .store
            .insert_instance_meta(ROOT, &wrapped, self.now())
            .await
        {
            Ok(()) => Ok(root),
            // Another node recorded it first: use theirs.
            Err(StoreError::Conflict) => {
                let wrapped = self
                    .store
                    .instance_meta(ROOT)
                    .await?
                    .ok_or(ServiceError::Integrity)?;
                key.unwrap_root(&wrapped)
                    .map_err(|_| ServiceError::Integrity)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Replaces the instance key (the operator, at the console): the root is re-wrapped
    /// by `next` and the key check value replaced, in one audited transaction, only if
    /// `current` is still the instance's key. Online: running nodes keep the root they
    /// opened at start, so nothing they hold changes; at their next start they need `next`.
    pub async fn rotate_instance_key(
        &self,
        caller: &Caller,
        current: &InstanceKey,
        next: &InstanceKey,
    ) -> Result<(), ServiceError> {
        if caller.actor != Actor::Operator {
            return Err(ServiceError::Forbidden);
        }
        let wrapped = self
            .store
            .instance_meta(ROOT)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let root = current
            .unwrap_root(&wrapped)
            .map_err(|_| ServiceError::Integrity)?;
        let rewrapped = next
            .wrap_root(&root, self.random.as_ref())
            .map_err(|_| ServiceError::Randomness)?;
        let previous_check = current.check_value().to_vec();
        let next_check = next.check_value().to_vec();
        let event = self.audit_event(
            caller,
            ChainId::Instance,
            Action::KeyRotated,
            Targets::default(),
            Outcome::Success,
        );
        self.audited(vec![event], move |tx| {
            Box::pin(async move {
                tx.replace_instance_meta(KEY_CHECK, &previous_check, &next_check)
                    .await?;
                tx.replace_instance_meta(ROOT, &wrapped, &rewrapped).await
            })
        })
        .await
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
