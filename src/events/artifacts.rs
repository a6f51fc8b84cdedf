//! Frame artifacts (`frameRef`): images and short clips a candidate's devices upload as
//! evidence, encrypted at rest. Each session has its own random 256-bit data key; it is stored
//! only wrapped (AES-256-GCM under the configured master key, the session id as associated
//! data) in `session_data_keys`. Each artifact is AES-256-GCM under its session's data key
//! with a fresh nonce and the artifact id as associated data, so bytes moved to another
//! reference do not decrypt either. Objects live in an `object_store` (a local directory by
//! default, S3-compatible when configured) at `{sessionId}/{artifactId}`; the `artifacts` table
//! says whose they are, their type and age (for retention).

use std::path::PathBuf;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use rand::RngCore;
use uuid::Uuid;

use crate::config::ArtifactStorage;
use crate::error::Error;

/// Nonce length of AES-GCM.
const NONCE: usize = 12;

/// A 256-bit key whose bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey(pub [u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A random key (demo mode, tests).
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        MasterKey(k)
    }
}

/// The accepted media types and their magic bytes.
pub const MEDIA_TYPES: [(&str, &[u8]); 3] = [
    ("image/jpeg", &[0xFF, 0xD8, 0xFF]),
    (
        "image/png",
        &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A],
    ),
    ("video/webm", &[0x1A, 0x45, 0xDF, 0xA3]),
];

/// The canonical media type when `content_type` is accepted (parameters ignored).
pub fn media_type(content_type: &str) -> Option<&'static str> {
    let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
    MEDIA_TYPES.iter().map(|(t, _)| *t).find(|t| *t == essence)
}

/// True when `bytes` start with the magic of `media_type`.
pub fn magic_matches(media_type: &str, bytes: &[u8]) -> bool {
    MEDIA_TYPES
        .iter()
        .any(|(t, magic)| *t == media_type && bytes.starts_with(magic))
}

fn seal(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let mut nonce = [0u8; NONCE];
    rand::thread_rng().fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| Error::Internal("artifact encryption failed".into()))?;
    let mut out = Vec::with_capacity(NONCE + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypts what [`seal`] produced; `None` for a wrong key, wrong associated data or tampering.
fn open(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE);
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
}

/// Wraps a session's data key under the master key.
pub fn wrap_key(master: &MasterKey, session: Uuid, data_key: &[u8; 32]) -> Result<Vec<u8>, Error> {
    seal(&master.0, data_key, session.as_bytes())
}

/// Unwraps a session's data key; `None` under another master key or for another session.
pub fn unwrap_key(master: &MasterKey, session: Uuid, wrapped: &[u8]) -> Option<[u8; 32]> {
    open(&master.0, wrapped, session.as_bytes())?
        .try_into()
        .ok()
}

/// Encrypts an artifact's bytes.
pub fn encrypt(data_key: &[u8; 32], artifact: Uuid, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
    seal(data_key, plaintext, artifact.as_bytes())
}

/// Decrypts an artifact's bytes.
pub fn decrypt(data_key: &[u8; 32], artifact: Uuid, sealed: &[u8]) -> Option<Vec<u8>> {
    open(data_key, sealed, artifact.as_bytes())
}

/// Where artifacts go, with the master key.
pub struct Artifacts {
    /// The object store (local directory or S3-compatible).
    objects: Arc<dyn ObjectStore>,
    /// Wraps the per-session data keys.
    master: MasterKey,
}

impl std::fmt::Debug for Artifacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Artifacts")
    }
}

/// An artifact as read back.
#[derive(Debug)]
pub struct Artifact {
    /// `image/jpeg`, `image/png` or `video/webm`.
    pub content_type: String,
    /// The decrypted bytes.
    pub bytes: Vec<u8>,
}

fn object_path(session: Uuid, artifact: Uuid) -> ObjectPath {
    ObjectPath::from(format!("{session}/{artifact}"))
}

fn recording_path(session: Uuid, id: Uuid) -> ObjectPath {
    ObjectPath::from(format!("{session}/rec/{id}"))
}

fn storage_error(e: object_store::Error) -> Error {
    tracing::warn!(error = %e, "artifact storage failed");
    Error::Unavailable {
        code: "ARTIFACT_STORE_UNAVAILABLE",
        message: "the artifact store is unavailable; retry shortly".into(),
        retry_after: 2,
    }
}

impl Artifacts {
    /// Opens the configured storage (creating the local directory if needed).
    pub fn open(storage: &ArtifactStorage, master: MasterKey) -> Result<Self, Error> {
        let objects: Arc<dyn ObjectStore> = match storage {
            ArtifactStorage::Local(dir) => Arc::new(local(dir)?),
            ArtifactStorage::S3(s3) => {
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_allow_http(s3.allow_http);
                if let Some(e) = &s3.endpoint {
                    b = b.with_endpoint(e);
                }
                if let Some(k) = &s3.access_key_id {
                    b = b.with_access_key_id(k);
                }
                if let Some(s) = &s3.secret_access_key {
                    b = b.with_secret_access_key(secrecy::ExposeSecret::expose_secret(s));
                }
                Arc::new(
                    b.build()
                        .map_err(|e| Error::Config(format!("HUB_ARTIFACT_S3_*: {e}")))?,
                )
            }
        };
        Ok(Artifacts { objects, master })
    }

    /// The session's data key, created on first use (concurrent first uses agree: the first
    /// insert wins and everyone reads it back).
    async fn data_key(
        &self,
        db: &sqlx::PgPool,
        session: Uuid,
        create: bool,
    ) -> Result<Option<[u8; 32]>, Error> {
        let read = || async {
            sqlx::query_scalar::<_, Vec<u8>>(
                "SELECT wrapped_key FROM session_data_keys WHERE session_id = $1",
            )
            .bind(session)
            .fetch_optional(db)
            .await
        };
        let wrapped = match read().await? {
            Some(w) => w,
            None if create => {
                let mut dk = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut dk);
                sqlx::query(
                    "INSERT INTO session_data_keys (session_id, wrapped_key) VALUES ($1, $2)
                     ON CONFLICT (session_id) DO NOTHING",
                )
                .bind(session)
                .bind(wrap_key(&self.master, session, &dk)?)
                .execute(db)
                .await?;
                read()
                    .await?
                    .ok_or_else(|| Error::Internal("data key vanished".into()))?
            }
            None => return Ok(None),
        };
        unwrap_key(&self.master, session, &wrapped)
            .map(Some)
            .ok_or_else(|| {
                Error::Internal("a data key does not unwrap under the master key".into())
            })
    }

    /// Encrypts and stores `bytes`; returns the new `frameRef`.
    pub async fn put(
        &self,
        db: &sqlx::PgPool,
        session: Uuid,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Uuid, Error> {
        let key = self
            .data_key(db, session, true)
            .await?
            .ok_or_else(|| Error::Internal("no data key".into()))?;
        let artifact = Uuid::new_v4();
        let sealed = encrypt(&key, artifact, bytes)?;
        self.objects
            .put(&object_path(session, artifact), sealed.into())
            .await
            .map_err(storage_error)?;
        sqlx::query(
            "INSERT INTO artifacts (id, session_id, content_type, byte_size) VALUES ($1, $2, $3, $4)",
        )
        .bind(artifact)
        .bind(session)
        .bind(media_type)
        .bind(bytes.len() as i64)
        .execute(db)
        .await?;
        Ok(artifact)
    }

    /// Reads and decrypts an artifact; `None` when unknown.
    pub async fn get(&self, db: &sqlx::PgPool, artifact: Uuid) -> Result<Option<Artifact>, Error> {
        let row: Option<(Uuid, String)> =
            sqlx::query_as("SELECT session_id, content_type FROM artifacts WHERE id = $1")
                .bind(artifact)
                .fetch_optional(db)
                .await?;
        let Some((session, content_type)) = row else {
            return Ok(None);
        };
        let Some(key) = self.data_key(db, session, false).await? else {
            return Ok(None);
        };
        let sealed = match self.objects.get(&object_path(session, artifact)).await {
            Ok(r) => r.bytes().await.map_err(storage_error)?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(storage_error(e)),
        };
        let bytes = decrypt(&key, artifact, &sealed)
            .ok_or_else(|| Error::Internal("an artifact does not decrypt".into()))?;
        Ok(Some(Artifact {
            content_type,
            bytes,
        }))
    }

    /// Encrypts a recording segment under its session's data key (its id as associated data)
    /// and stores it at `{session}/rec/{id}`.
    pub async fn put_recording(
        &self,
        db: &sqlx::PgPool,
        session: Uuid,
        id: Uuid,
        bytes: &[u8],
    ) -> Result<(), Error> {
        let key = self
            .data_key(db, session, true)
            .await?
            .ok_or_else(|| Error::Internal("no data key".into()))?;
        let sealed = encrypt(&key, id, bytes)?;
        self.objects
            .put(&recording_path(session, id), sealed.into())
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    /// Reads and decrypts a recording segment; `None` when its object is gone.
    pub async fn get_recording(
        &self,
        db: &sqlx::PgPool,
        session: Uuid,
        id: Uuid,
    ) -> Result<Option<Vec<u8>>, Error> {
        let Some(key) = self.data_key(db, session, false).await? else {
            return Ok(None);
        };
        let sealed = match self.objects.get(&recording_path(session, id)).await {
            Ok(r) => r.bytes().await.map_err(storage_error)?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(storage_error(e)),
        };
        decrypt(&key, id, &sealed)
            .map(Some)
            .ok_or_else(|| Error::Internal("a recording does not decrypt".into()))
    }

    /// Deletes one recording segment's object (the caller deletes its row).
    pub async fn delete_recording(&self, session: Uuid, id: Uuid) -> Result<(), Error> {
        match self.objects.delete(&recording_path(session, id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error(e)),
        }
    }

    /// Deletes one artifact's object (the caller deletes its row).
    pub async fn delete_object(&self, session: Uuid, artifact: Uuid) -> Result<(), Error> {
        match self.objects.delete(&object_path(session, artifact)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error(e)),
        }
    }
}

fn local(dir: &PathBuf) -> Result<object_store::local::LocalFileSystem, Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Config(format!("HUB_ARTIFACT_DIR {}: {e}", dir.display())))?;
    object_store::local::LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| Error::Config(format!("HUB_ARTIFACT_DIR {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_wrap_and_artifacts_encrypt_with_binding() {
        let master = MasterKey::random();
        let (session, artifact) = (Uuid::new_v4(), Uuid::new_v4());
        let mut dk = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut dk);
        let wrapped = wrap_key(&master, session, &dk).unwrap();
        assert!(!wrapped.windows(32).any(|w| w == dk));
        assert_eq!(unwrap_key(&master, session, &wrapped), Some(dk));
        assert_eq!(unwrap_key(&MasterKey::random(), session, &wrapped), None);
        assert_eq!(unwrap_key(&master, Uuid::new_v4(), &wrapped), None);

        let plain = b"\xFF\xD8\xFF a frame of the candidate".to_vec();
        let sealed = encrypt(&dk, artifact, &plain).unwrap();
        assert!(!sealed
            .windows(10)
            .any(|w| plain.windows(10).any(|p| p == w)));
        assert_eq!(decrypt(&dk, artifact, &sealed), Some(plain));
        assert_eq!(decrypt(&dk, Uuid::new_v4(), &sealed), None);
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert_eq!(decrypt(&dk, artifact, &tampered), None);
    }

    #[test]
    fn media_types_and_magic() {
        assert_eq!(media_type("image/JPEG; q=1"), Some("image/jpeg"));
        assert_eq!(media_type("image/gif"), None);
        assert!(magic_matches("image/png", b"\x89PNG\r\n\x1a\nrest"));
        assert!(!magic_matches("image/png", b"\xFF\xD8\xFFrest"));
        assert!(magic_matches("video/webm", b"\x1a\x45\xdf\xa3rest"));
    }
}
