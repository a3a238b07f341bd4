//! Documents and their versions (ADR 0010): wrapped keys, sealed metadata and the name of
//! the encrypted blob; never a clear byte. Scoped by practice.

use carnet_domain::{PracticeId, Timestamp};
use uuid::Uuid;

use crate::tx::{RowScope, on_tx};
use crate::{StoreError, Tx};

/// One version of a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentVersionRecord {
    pub version_id: Uuid,
    pub document_id: Uuid,
    pub patient_id: Uuid,
    pub number: i64,
    pub wrapped_key: Vec<u8>,
    pub sealed_meta: Vec<u8>,
    pub blob_name: String,
    pub created_at: Timestamp,
    pub created_by: Uuid,
}

type VersionRow = (Uuid, Uuid, Uuid, i64, Vec<u8>, Vec<u8>, String, i64, Uuid);

fn version_of(row: VersionRow) -> DocumentVersionRecord {
    let (version_id, document_id, patient_id, number, wrapped_key, sealed_meta, blob, at, by) = row;
    DocumentVersionRecord {
        version_id,
        document_id,
        patient_id,
        number,
        wrapped_key,
        sealed_meta,
        blob_name: blob,
        created_at: Timestamp::from_unix_millis(at),
        created_by: by,
    }
}

const VERSION_COLUMNS: &str = "v.id, v.document_id, d.patient_id, v.number, v.wrapped_key, \
     v.sealed_meta, v.blob_name, v.created_at, v.created_by \
     FROM documents d JOIN document_versions v ON v.document_id = d.id";

impl Tx {
    /// Records a version (and the document, for version 1).
    pub async fn insert_document_version(
        &mut self,
        practice_id: PracticeId,
        version: &DocumentVersionRecord,
    ) -> Result<(), StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        self.before_write().await?;
        on_tx!(self, |conn| {
            if version.number == 1 {
                sqlx::query(
                    "INSERT INTO documents (id, practice_id, patient_id, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(version.document_id)
                .bind(practice_id.as_uuid())
                .bind(version.patient_id)
                .bind(version.created_at.unix_millis())
                .bind(version.created_by)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::from_write)?;
            }
            sqlx::query(
                "INSERT INTO document_versions (id, document_id, practice_id, number, \
                 wrapped_key, sealed_meta, blob_name, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(version.version_id)
            .bind(version.document_id)
            .bind(practice_id.as_uuid())
            .bind(version.number)
            .bind(&version.wrapped_key)
            .bind(&version.sealed_meta)
            .bind(&version.blob_name)
            .bind(version.created_at.unix_millis())
            .bind(version.created_by)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    /// The versions of the patient's documents (one document, or all), newest first.
    pub async fn document_versions(
        &mut self,
        practice_id: PracticeId,
        patient_id: Uuid,
        document_id: Option<Uuid>,
    ) -> Result<Vec<DocumentVersionRecord>, StoreError> {
        self.scope_rows(RowScope::Practice(practice_id)).await?;
        let sql = format!(
            "SELECT {VERSION_COLUMNS} WHERE d.practice_id = $1 AND d.patient_id = $2 \
             AND ($3 IS NULL OR d.id = $3) ORDER BY d.created_at DESC, d.id, v.number DESC"
        );
        on_tx!(self, |conn| {
            let rows: Vec<VersionRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(practice_id.as_uuid())
                .bind(patient_id)
                .bind(document_id)
                .fetch_all(&mut *conn)
                .await?;
            Ok(rows.into_iter().map(version_of).collect())
        })
    }
}

impl crate::Store {
    /// The (version number, blob name) of each version of a document, whatever its
    /// practice: for the operator's `carnet restore document` at the console (structural
    /// metadata only, no key and no sealed value; instance-wide, so outside row-level
    /// security's practice scope).
    pub async fn document_blob_names(
        &self,
        document_id: Uuid,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let mut tx = self.reads().await?;
        tx.scope_rows(RowScope::Instance).await?;
        let rows = on_tx!(tx, |conn| {
            sqlx::query_as::<_, (i64, String)>(
                "SELECT number, blob_name FROM document_versions WHERE document_id = $1 \
                 ORDER BY number",
            )
            .bind(document_id)
            .fetch_all(&mut *conn)
            .await?
        });
        tx.rollback().await?;
        Ok(rows)
    }

    /// Every blob name the database refers to (a restore drill checks they all came
    /// back; instance-wide, like [`Self::document_blob_names`]).
    pub async fn all_blob_names(&self) -> Result<Vec<String>, StoreError> {
        let mut tx = self.reads().await?;
        tx.scope_rows(RowScope::Instance).await?;
        let rows = on_tx!(tx, |conn| {
            sqlx::query_scalar::<_, String>("SELECT blob_name FROM document_versions")
                .fetch_all(&mut *conn)
                .await?
        });
        tx.rollback().await?;
        Ok(rows)
    }
}
